/* fuzz_handshake.c -- what a stranger can send before it is known: a Hello or an Auth (as the
 * server reads them), a Challenge (as a client reads it), and a cluster secret file's text.
 * data[0] picks which; the rest is its protobuf bytes (or the file's text). A proof that comes
 * with it is checked as the server checks one, in constant time. */
#include <ember/ember.h>

#include "em_auth.h"
#include "em_secret.h"
#include "ember.pb-c.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const em_secret secret = {1, {7}};
    static const uint8_t nonce[EM_NONCE_LEN] = {1};
    uint8_t want[EM_PROOF_LEN];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] % 4) {
    case 0: {
        Ember__Hello *h = ember__hello__unpack(NULL, n, p);
        if (h && em_role_parse(h->role) != EM_ROLE_NONE && h->nonce.len == EM_NONCE_LEN)
            em_auth_proof(&secret, 'S', h->role, h->session, h->nonce.data, nonce, want);
        if (h) ember__hello__free_unpacked(h, NULL);
        break;
    }
    case 1: {
        Ember__Auth *a = ember__auth__unpack(NULL, n, p);
        em_auth_proof(&secret, 'C', "submitter", 0, nonce, nonce, want);
        if (a) em_auth_proof_ok(a->proof.data, a->proof.len, want);
        if (a) ember__auth__free_unpacked(a, NULL);
        break;
    }
    case 2: {
        Ember__Challenge *c = ember__challenge__unpack(NULL, n, p);
        if (c && c->nonce.len == EM_NONCE_LEN) {
            em_auth_proof(&secret, 'S', "executor", 0, nonce, c->nonce.data, want);
            em_auth_proof_ok(c->proof.data, c->proof.len, want);
        }
        if (c) ember__challenge__free_unpacked(c, NULL);
        break;
    }
    default: {
        em_secret parsed;
        em_secret_parse((const char *)p, n, &parsed);
    }
    }
    return 0;
}
