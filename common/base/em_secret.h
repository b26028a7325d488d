/* em_secret.h -- the cluster secret: what every connection of a cluster proves it knows.
 *
 * One place says where it is, for every program: the --secret-file option, else the
 * EMBER_SECRET_FILE environment variable, else ~/.ember/cluster.secret. The file holds 64
 * hex digits (32 random bytes) and a newline, and must be readable by its owner only (mode
 * 0600 or stricter): a daemon refuses a secret others can read. `ember-secret` and the deploy
 * scripts create it; the bytes never appear in a log or a message.
 */
#ifndef EM_SECRET_H
#define EM_SECRET_H

#include <stddef.h>
#include <stdint.h>

#define EM_SECRET_LEN 32

typedef struct em_secret {
    int set; /* 0: no secret (the file does not exist): connections are not authenticated */
    uint8_t key[EM_SECRET_LEN];
} em_secret;

/* em_secret_path writes the secret file's path to buf: option if not NULL or empty, else
 * $EMBER_SECRET_FILE, else $HOME/.ember/cluster.secret. Returns buf. */
const char *em_secret_path(const char *option, char *buf, size_t len);
/* em_secret_load reads the secret at path. A missing file is not an error: *out is left unset.
 * A file others may read, or that is not 64 hex digits, is an error saying what to do. */
int em_secret_load(const char *path, em_secret *out, char *err, size_t errlen);
/* em_secret_create writes a new random secret to path (mode 0600, its directory made with
 * mode 0700 when missing) unless the file exists; *created says which. */
int em_secret_create(const char *path, int *created, char *err, size_t errlen);
/* em_secret_parse reads 64 hex digits (and optional trailing white space) into out. */
int em_secret_parse(const char *text, size_t len, em_secret *out);

/* EM_STOP_TOKEN_PURPOSE: what the status endpoint's stop token is for */
#define EM_STOP_TOKEN_PURPOSE "ember status endpoint: stop streaming queries"
/* em_secret_token writes a token for one purpose, 64 hex digits and a NUL:
 * HMAC-SHA256(secret, purpose). It grants that purpose only and does not reveal the secret. */
void em_secret_token(const em_secret *s, const char *purpose, char hex[65]);
/* em_secret_token_matches: `given` (NUL-terminated) is the token for purpose; compared in
 * constant time. 0 when s is not set. */
int em_secret_token_matches(const em_secret *s, const char *purpose, const char *given);

#endif
