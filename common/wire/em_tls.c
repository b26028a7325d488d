/* em_tls.c -- TLS configurations of listeners and dialers (see em_tls.h), with nng's mbedtls. */
#include "em_tls.h"

#include "em_args.h"

#include <ember/ember.h>
#include <nng/supplemental/tls/tls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void em_tls_files_defaults(em_tls_files *f)
{
    const char *env;
    if (!f->cert[0] && (env = getenv("EMBER_TLS_CERT")))
        snprintf(f->cert, sizeof f->cert, "%s", env);
    if (!f->key[0] && (env = getenv("EMBER_TLS_KEY"))) snprintf(f->key, sizeof f->key, "%s", env);
    if (!f->ca[0] && (env = getenv("EMBER_TLS_CA"))) snprintf(f->ca, sizeof f->ca, "%s", env);
}

int em_tls_option(int opt, const char *value, em_tls_files *f, char *err, size_t errlen)
{
    switch (opt) {
    case EM_OPT_TLS_CERT:
        return em_arg_string("--tls-cert", value, f->cert, sizeof f->cert, err, errlen);
    case EM_OPT_TLS_KEY:
        return em_arg_string("--tls-key", value, f->key, sizeof f->key, err, errlen);
    default: return em_arg_string("--tls-ca", value, f->ca, sizeof f->ca, err, errlen);
    }
}

int em_url_is_tls(const char *url) { return strncmp(url, "tls+tcp://", 10) == 0; }

char *em_tls_read(const char *path)
{
    enum { PEM_MAX = 1 << 20 }; /* certificate chains are a few kB: anything larger is refused */
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    char *text = malloc(PEM_MAX + 1);
    size_t len = text ? fread(text, 1, PEM_MAX + 1, fp) : 0;
    int bad = ferror(fp) || len > PEM_MAX;
    fclose(fp);
    if (!text || bad) {
        free(text);
        return NULL;
    }
    text[len] = '\0';
    char *fitted = realloc(text, len + 1);
    return fitted ? fitted : text;
}

int em_tls_server_config(const em_tls_files *f, const char *url, nng_tls_config **out, char *err,
                         size_t errlen)
{
    *out = NULL;
    if (!em_url_is_tls(url)) return EMBER_OK;
    if (!f->cert[0] || !f->key[0]) {
        snprintf(err, errlen,
                 "%s needs a certificate and its key: --tls-cert and --tls-key "
                 "(docs/security.md)",
                 url);
        return EMBER_ERR_INVALID;
    }
    char *cert = em_tls_read(f->cert), *key = em_tls_read(f->key);
    int rv = !cert || !key ? NNG_ENOENT : nng_tls_config_alloc(out, NNG_TLS_MODE_SERVER);
    if (rv == 0) rv = nng_tls_config_own_cert(*out, cert, key, NULL);
    if (rv == 0) rv = nng_tls_config_auth_mode(*out, NNG_TLS_AUTH_MODE_NONE);
    free(cert);
    free(key);
    if (rv == 0) return EMBER_OK;
    snprintf(err, errlen, "cannot use the certificate %s and key %s: %s", f->cert, f->key,
             rv == NNG_ENOENT ? "cannot read them" : nng_strerror(rv));
    if (*out) nng_tls_config_free(*out);
    *out = NULL;
    return EMBER_ERR_INVALID;
}

int em_tls_client_config(const em_tls_files *f, const char *url, nng_tls_config **out, char *err,
                         size_t errlen)
{
    *out = NULL;
    if (!em_url_is_tls(url)) return EMBER_OK;
    if (!f->ca[0]) {
        snprintf(err, errlen,
                 "%s: a TLS server is verified against a CA: give --tls-ca (or "
                 "EMBER_TLS_CA)",
                 url);
        return EMBER_ERR_INVALID;
    }
    char host[256];
    const char *h = url + 10, *colon = strrchr(h, ':');
    snprintf(host, sizeof host, "%.*s", colon ? (int)(colon - h) : (int)strlen(h), h);
    char *ca = em_tls_read(f->ca);
    int rv = !ca ? NNG_ENOENT : nng_tls_config_alloc(out, NNG_TLS_MODE_CLIENT);
    if (rv == 0) rv = nng_tls_config_ca_chain(*out, ca, NULL);
    if (rv == 0) rv = nng_tls_config_server_name(*out, host);
    if (rv == 0) rv = nng_tls_config_auth_mode(*out, NNG_TLS_AUTH_MODE_REQUIRED);
    free(ca);
    if (rv == 0) return EMBER_OK;
    snprintf(err, errlen, "cannot use the CA %s: %s", f->ca,
             rv == NNG_ENOENT ? "cannot read it" : nng_strerror(rv));
    if (*out) nng_tls_config_free(*out);
    *out = NULL;
    return EMBER_ERR_INVALID;
}
