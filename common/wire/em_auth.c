/* em_auth.c -- roles, nonces and proofs of the handshake (see em_auth.h), with mbedtls. */
#include "em_auth.h"

#include <mbedtls/constant_time.h>
#include <mbedtls/md.h>
#include <string.h>
#include <sys/random.h>

static const char *const role_names[] = {"submitter", "executor", "supervisor", "peer"};

em_role em_role_parse(const char *name)
{
    for (int i = 0; name && i < 4; i++)
        if (strcmp(name, role_names[i]) == 0) return (em_role)(1 << i);
    return EM_ROLE_NONE;
}

const char *em_role_name(em_role role)
{
    for (int i = 0; i < 4; i++)
        if (role == (em_role)(1 << i)) return role_names[i];
    return "none";
}

int em_auth_nonce(uint8_t out[EM_NONCE_LEN])
{
    return getrandom(out, EM_NONCE_LEN, 0) == EM_NONCE_LEN;
}

void em_auth_proof(const em_secret *secret, char side, const char *role, uint64_t session,
                   const uint8_t client_nonce[EM_NONCE_LEN],
                   const uint8_t server_nonce[EM_NONCE_LEN], uint8_t out[EM_PROOF_LEN])
{
    static const char label[] = "ember-auth-1";
    uint8_t session_le[8];
    for (int i = 0; i < 8; i++) session_le[i] = (uint8_t)(session >> (8 * i));
    mbedtls_md_context_t md;
    mbedtls_md_init(&md);
    mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
    mbedtls_md_hmac_starts(&md, secret->key, EM_SECRET_LEN);
    mbedtls_md_hmac_update(&md, (const uint8_t *)label, sizeof label); /* its NUL too */
    mbedtls_md_hmac_update(&md, (const uint8_t *)&side, 1);
    mbedtls_md_hmac_update(&md, (const uint8_t *)role, strlen(role) + 1);
    mbedtls_md_hmac_update(&md, session_le, sizeof session_le);
    mbedtls_md_hmac_update(&md, client_nonce, EM_NONCE_LEN);
    mbedtls_md_hmac_update(&md, server_nonce, EM_NONCE_LEN);
    mbedtls_md_hmac_finish(&md, out);
    mbedtls_md_free(&md);
}

int em_auth_proof_ok(const uint8_t *got, size_t got_len, const uint8_t want[EM_PROOF_LEN])
{
    return got_len == EM_PROOF_LEN && mbedtls_ct_memcmp(got, want, EM_PROOF_LEN) == 0;
}
