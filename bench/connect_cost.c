/* connect_cost.c -- what a new connection costs, for bench/handshake.
 *
 *   connect_cost serve URL [--tls-cert PEM --tls-key PEM]
 *       an nng rep0 echo server on URL (tcp:// or tls+tcp://, port 0 for a free one): prints
 *       "serving URL" with the bound address, then answers every request with its own bytes
 *       until killed. The floor: nng's connection and one round trip, nothing of ember.
 *   connect_cost echo URL N [--tls-ca PEM]
 *       N times: a new req0 socket dials URL, sends 64 bytes, waits for them back, closes.
 *   connect_cost ember URL N [--tls-ca PEM]
 *       N times: em_rpc_open (dial, then ember's handshake: with the cluster secret of
 *       EMBER_SECRET_FILE, the mutual HMAC challenge; without, Hello alone), em_rpc_close.
 *
 * The dialing modes time each connection alone with clock_gettime(CLOCK_MONOTONIC), from
 * before the dial to its first reply (echo) or the end of the handshake (ember), after 20
 * untimed ones, and print:
 *   connect_cost mode=M n=N median_us=X p99_us=Y mean_us=Z
 * They exit 1 if any connection failed.
 */
#include <arpa/inet.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "em_rpc.h"
#include "em_secret.h"
#include "em_tls.h"

enum { WARMUP = 20, ECHO_BYTES = 64 };

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int die(const char *what, const char *why)
{
    fprintf(stderr, "connect_cost: %s: %s\n", what, why);
    return 1;
}

/* options after the positional arguments: --tls-cert, --tls-key, --tls-ca */
static int parse_tls(int argc, char **argv, int first, em_tls_files *tls)
{
    for (int i = first; i + 1 < argc; i += 2) {
        char *field = strcmp(argv[i], "--tls-cert") == 0  ? tls->cert
                      : strcmp(argv[i], "--tls-key") == 0 ? tls->key
                      : strcmp(argv[i], "--tls-ca") == 0  ? tls->ca
                                                          : NULL;
        if (!field) return -1;
        snprintf(field, sizeof tls->ca, "%s", argv[i + 1]);
    }
    return (argc - first) % 2 == 0 ? 0 : -1;
}

static int serve(const char *url, const em_tls_files *tls)
{
    nng_socket sock;
    nng_listener l;
    nng_tls_config *cfg = NULL;
    char err[512] = "";
    if (em_tls_server_config(tls, url, &cfg, err, sizeof err) != 0) return die(url, err);
    int rv = nng_rep0_open(&sock);
    if (rv == 0) rv = nng_listener_create(&l, sock, url);
    if (rv == 0 && cfg) rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg);
    if (rv == 0) rv = nng_listener_start(l, 0);
    if (rv != 0) return die(url, nng_strerror(rv));
    nng_sockaddr sa;
    nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa);
    printf("serving %s127.0.0.1:%u\n", em_url_is_tls(url) ? "tls+tcp://" : "tcp://",
           (unsigned)ntohs(sa.s_in.sa_port));
    fflush(stdout);
    for (;;) {
        nng_msg *msg;
        if (nng_recvmsg(sock, &msg, 0) != 0) continue;
        if (nng_sendmsg(sock, msg, 0) != 0) nng_msg_free(msg);
    }
}

/* echo_once: a new socket, one request and its reply */
static int echo_once(const char *url, nng_tls_config *cfg)
{
    nng_socket sock;
    nng_dialer d;
    char buf[ECHO_BYTES] = {1};
    void *reply = NULL;
    size_t len = 0;
    int rv = nng_req0_open(&sock);
    if (rv != 0) return rv;
    nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 5000);
    rv = nng_dialer_create(&d, sock, url);
    if (rv == 0 && cfg) rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
    if (rv == 0) rv = nng_dialer_start(d, 0);
    if (rv == 0) rv = nng_send(sock, buf, sizeof buf, 0);
    if (rv == 0) rv = nng_recv(sock, &reply, &len, NNG_FLAG_ALLOC);
    if (rv == 0 && len != sizeof buf) rv = NNG_EPROTO;
    if (reply) nng_free(reply, len);
    nng_close(sock);
    return rv;
}

static int ember_once(const char *url, const em_rpc_opts *opts, char *err, size_t errlen)
{
    em_rpc rpc;
    int rc = em_rpc_open(&rpc, url, opts, err, errlen);
    if (rc == 0) em_rpc_close(&rpc);
    return rc;
}

int main(int argc, char **argv)
{
    em_tls_files tls = {0};
    if (argc < 3 || parse_tls(argc, argv, strcmp(argv[1], "serve") == 0 ? 3 : 4, &tls) != 0) {
        fprintf(stderr, "usage: connect_cost serve URL [--tls-cert PEM --tls-key PEM]\n"
                        "       connect_cost echo|ember URL N [--tls-ca PEM]\n");
        return 2;
    }
    const char *mode = argv[1], *url = argv[2];
    if (strcmp(mode, "serve") == 0) return serve(url, &tls);
    int n = argc > 3 ? atoi(argv[3]) : 0;
    if (n <= 0 || (strcmp(mode, "echo") != 0 && strcmp(mode, "ember") != 0))
        return die(mode, "expected echo or ember and a count");

    char err[512] = "", path[1024];
    em_secret secret;
    if (em_secret_load(em_secret_path(NULL, path, sizeof path), &secret, err, sizeof err) != 0)
        return die(path, err);
    em_rpc_opts opts = {"submitter", 1 << 20, 5000, &secret, &tls, 0};
    nng_tls_config *cfg = NULL;
    if (strcmp(mode, "echo") == 0 && em_tls_client_config(&tls, url, &cfg, err, sizeof err) != 0)
        return die(url, err);

    double *us = calloc((size_t)n, sizeof *us), sum = 0;
    if (!us) return die("memory", "out of memory");
    for (int i = -WARMUP; i < n; i++) {
        double t0 = now_us();
        int rc = strcmp(mode, "echo") == 0 ? echo_once(url, cfg)
                                           : ember_once(url, &opts, err, sizeof err);
        double t = now_us() - t0;
        if (rc != 0) return die(url, strcmp(mode, "echo") == 0 ? nng_strerror(rc) : err);
        if (i >= 0) sum += (us[i] = t);
    }
    qsort(us, (size_t)n, sizeof *us, cmp_double);
    size_t p99 = (size_t)((n * 99 + 99) / 100) - 1; /* nearest rank */
    printf("connect_cost mode=%s n=%d median_us=%.1f p99_us=%.1f mean_us=%.1f\n", mode, n,
           us[n / 2], us[p99], sum / n);
    free(us);
    if (cfg) nng_tls_config_free(cfg);
    return 0;
}
