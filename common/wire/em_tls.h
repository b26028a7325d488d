/* em_tls.h -- optional TLS on ember's links: a tls+tcp:// URL instead of tcp://.
 *
 * A listener on tls+tcp:// presents its certificate (cert and key, PEM files); a client
 * dialing tls+tcp:// verifies the server's certificate against the CA file and the host name
 * of the URL. The cluster secret's handshake (em_auth.h) still authenticates both sides on
 * top: TLS adds confidentiality and the server's identity. Every program takes the three
 * files from --tls-cert, --tls-key, --tls-ca, else EMBER_TLS_CERT, EMBER_TLS_KEY,
 * EMBER_TLS_CA. The driver's status endpoint serves HTTPS with the same certificate.
 */
#ifndef EM_TLS_H
#define EM_TLS_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stddef.h>

typedef struct em_tls_files {
    char cert[1024]; /* this process's certificate (PEM), for its listeners */
    char key[1024];  /* its private key (PEM) */
    char ca[1024];   /* the CA that signed the servers' certificates, to verify them */
} em_tls_files;

/* getopt_long values of --tls-cert, --tls-key and --tls-ca in the programs' option tables;
 * em_tls_option stores the value of one of them in f (err says what is wrong with it) */
enum { EM_OPT_TLS_CERT = 0x7100, EM_OPT_TLS_KEY, EM_OPT_TLS_CA };
int em_tls_option(int opt, const char *value, em_tls_files *f, char *err, size_t errlen);

/* em_tls_files_defaults fills the fields left empty from EMBER_TLS_CERT, _KEY and _CA. */
void em_tls_files_defaults(em_tls_files *f);
/* em_url_is_tls: url is a tls+tcp:// address */
int em_url_is_tls(const char *url);
/* em_tls_server_config makes the TLS configuration of a listener on url: cert and key are
 * required (err says so); NULL in *out for a url that is not TLS. */
int em_tls_server_config(const em_tls_files *f, const char *url, nng_tls_config **out, char *err,
                         size_t errlen);
/* em_tls_client_config makes the TLS configuration of a dialer to url: the CA is required,
 * and the server's certificate must name url's host; NULL in *out for a url that is not TLS. */
int em_tls_client_config(const em_tls_files *f, const char *url, nng_tls_config **out, char *err,
                         size_t errlen);
/* em_tls_read reads a PEM file into a new NUL-terminated string (caller frees), or NULL. */
char *em_tls_read(const char *path);

#endif
