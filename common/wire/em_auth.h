/* em_auth.h -- the handshake that opens every connection: roles, nonces, proofs.
 *
 * With a cluster secret, a connection is authenticated both ways before anything else is
 * accepted on it:
 *   client -> Hello {role, session, client nonce}
 *   server -> Challenge {server nonce, server proof}        the client checks the proof
 *   client -> Auth {client proof}                           the server checks the proof
 *   server -> HelloReply {session, ...}
 * A proof is HMAC-SHA256(secret, "ember-auth-1" | side | role | session | client nonce |
 * server nonce), side 'S' or 'C'. Both nonces are 32 fresh random bytes, so a recorded
 * handshake proves nothing on another connection; proofs are compared in constant time.
 * Without a secret, Hello is answered by HelloReply at once (loopback only, see docs).
 *
 * The role a connection takes in its Hello is fixed for its life; each message type says
 * which roles may send it (EM_MESSAGES in em_frame.h), and a server refuses the others.
 */
#ifndef EM_AUTH_H
#define EM_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "em_secret.h"

#define EM_NONCE_LEN 32
#define EM_PROOF_LEN 32

/* em_role: who a connection speaks for (bits, so a message can allow several) */
typedef enum em_role {
    EM_ROLE_NONE = 0,
    EM_ROLE_SUBMITTER = 1,  /* ember-submit: jobs, libraries, progress */
    EM_ROLE_EXECUTOR = 2,   /* an executor to the driver: register, poll, report */
    EM_ROLE_SUPERVISOR = 4, /* an executor's monitor: crash reports */
    EM_ROLE_PEER = 8        /* an executor to another: block fetches */
} em_role;

/* em_role_parse: the role named (as in Hello.role), or EM_ROLE_NONE */
em_role em_role_parse(const char *name);
const char *em_role_name(em_role role);

/* em_auth_nonce fills out with fresh random bytes; returns 0 if the system has none. */
int em_auth_nonce(uint8_t out[EM_NONCE_LEN]);
/* em_auth_proof computes the proof of side 'S' (server) or 'C' (client). */
void em_auth_proof(const em_secret *secret, char side, const char *role, uint64_t session,
                   const uint8_t client_nonce[EM_NONCE_LEN],
                   const uint8_t server_nonce[EM_NONCE_LEN], uint8_t out[EM_PROOF_LEN]);
/* em_auth_proof_ok compares a received proof with the expected one in constant time. */
int em_auth_proof_ok(const uint8_t *got, size_t got_len, const uint8_t want[EM_PROOF_LEN]);

#endif
