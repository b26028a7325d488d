/* test_auth.c -- the cluster secret and the handshake (em_secret.h, em_auth.h, em_server.h,
 * em_rpc.h), with a server thread over inproc://.
 *
 * Covers: a secret file is found through the option, then EMBER_SECRET_FILE; a missing file
 * means no secret, one that others may read or that is not 64 hex digits is refused with what
 * to do; ember-secret's create makes a 0600 file once. Proofs differ by side, role, session
 * and nonce, and compare only at full length. Handshakes: the same secret connects; a wrong
 * secret, no secret against a server that has one, and a secret against a server without one
 * each fail with a message saying so; a recorded Auth replayed on another connection is
 * refused and counted; a connection that says nothing is closed after the handshake deadline;
 * a role the server does not serve is refused; a message outside the connection's role is
 * refused, and the connection goes on serving the messages its role allows.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include <ember/ember.h>

#include "em_auth.h"
#include "em_log.h"
#include "em_rpc.h"
#include "em_secret.h"
#include "em_server.h"
#include "em_time.h"

static char dir[64];

static void write_file(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    chmod(path, mode);
}

static em_secret secret_of(char byte)
{
    em_secret s = {.set = 1};
    memset(s.key, byte, sizeof s.key);
    return s;
}

/* ---- secret files ------------------------------------------------------------------------ */

static void secret_files(void **state)
{
    (void)state;
    char path[256], found[1024], err[1200];
    em_secret s;
    snprintf(path, sizeof path, "%s/a.secret", dir);
    setenv("EMBER_SECRET_FILE", "/from/env", 1);
    assert_string_equal(em_secret_path("/from/option", found, sizeof found), "/from/option");
    assert_string_equal(em_secret_path(NULL, found, sizeof found), "/from/env");
    assert_string_equal(em_secret_path("", found, sizeof found), "/from/env");
    unsetenv("EMBER_SECRET_FILE");
    assert_non_null(strstr(em_secret_path(NULL, found, sizeof found), "/.ember/cluster.secret"));

    unlink(path);
    assert_int_equal(em_secret_load(path, &s, err, sizeof err), EMBER_OK);
    assert_false(s.set); /* missing: no secret */
    int created;
    assert_int_equal(em_secret_create(path, &created, err, sizeof err), EMBER_OK);
    assert_true(created);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(em_secret_load(path, &s, err, sizeof err), EMBER_OK);
    assert_true(s.set);
    em_secret again;
    assert_int_equal(em_secret_create(path, &created, err, sizeof err), EMBER_OK);
    assert_false(created); /* kept */
    assert_int_equal(em_secret_load(path, &again, err, sizeof err), EMBER_OK);
    assert_memory_equal(s.key, again.key, EM_SECRET_LEN);

    chmod(path, 0644);
    assert_int_equal(em_secret_load(path, &s, err, sizeof err), EMBER_ERR_INVALID);
    assert_non_null(strstr(err, "chmod 600"));
    assert_false(s.set);
    write_file(path, "not hex at all\n", 0600);
    assert_int_equal(em_secret_load(path, &s, err, sizeof err), EMBER_ERR_MALFORMED);
    assert_non_null(strstr(err, "64 hex digits"));
    write_file(path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeFF\n", 0400);
    assert_int_equal(em_secret_load(path, &s, err, sizeof err), EMBER_OK);
    assert_int_equal(s.key[0], 0x00);
    assert_int_equal(s.key[31], 0xff);
    unlink(path);
}

static void proofs(void **state)
{
    (void)state;
    em_secret a = secret_of(1), b = secret_of(2);
    uint8_t cn[EM_NONCE_LEN], sn[EM_NONCE_LEN], p1[EM_PROOF_LEN], p2[EM_PROOF_LEN];
    assert_true(em_auth_nonce(cn));
    assert_true(em_auth_nonce(sn));
    assert_memory_not_equal(cn, sn, EM_NONCE_LEN);
    em_auth_proof(&a, 'S', "executor", 7, cn, sn, p1);
    em_auth_proof(&a, 'S', "executor", 7, cn, sn, p2);
    assert_true(em_auth_proof_ok(p1, EM_PROOF_LEN, p2));
    assert_false(em_auth_proof_ok(p1, EM_PROOF_LEN - 1, p2)); /* a short proof */
    em_auth_proof(&a, 'C', "executor", 7, cn, sn, p2);
    assert_false(em_auth_proof_ok(p1, EM_PROOF_LEN, p2)); /* the other side */
    em_auth_proof(&a, 'S', "submitter", 7, cn, sn, p2);
    assert_false(em_auth_proof_ok(p1, EM_PROOF_LEN, p2)); /* another role */
    em_auth_proof(&a, 'S', "executor", 8, cn, sn, p2);
    assert_false(em_auth_proof_ok(p1, EM_PROOF_LEN, p2)); /* another session */
    em_auth_proof(&a, 'S', "executor", 7, sn, cn, p2);
    assert_false(em_auth_proof_ok(p1, EM_PROOF_LEN, p2)); /* other nonces */
    em_auth_proof(&b, 'S', "executor", 7, cn, sn, p2);
    assert_false(em_auth_proof_ok(p1, EM_PROOF_LEN, p2)); /* another secret */
}

/* ---- a server over inproc ----------------------------------------------------------------- */

typedef struct server {
    em_server *srv;
    char url[128];
    pthread_t thread;
    volatile int stop;
    _Atomic int closed; /* connections the server saw close */
} server;

/* serve answers every request it is handed with ReportReply{known}, until stopped */
static void *serve(void *arg)
{
    server *sv = arg;
    while (!sv->stop) {
        em_request req;
        int rc = em_server_recv(sv->srv, &req, 20);
        em_conn gone[8];
        sv->closed += em_server_closed(sv->srv, gone, 8);
        if (rc == EMBER_ERR_CANCELLED) break;
        if (rc != EMBER_OK) continue;
        Ember__ReportReply rr = EMBER__REPORT_REPLY__INIT;
        rr.known = 1;
        em_server_reply(sv->srv, &req, EM_MSG_REPORT_REPLY, &rr.base, NULL, 0);
    }
    return NULL;
}

static void server_start(server *sv, const em_secret *secret, unsigned roles, uint32_t hs_ms)
{
    static int n;
    memset(sv, 0, sizeof *sv);
    char url[128], err[256];
    snprintf(url, sizeof url, "inproc://test-auth-%d-%d", (int)getpid(), n++);
    em_server_opts o = {
        .max_recv = 1 << 20, .secret = secret, .roles = roles, .handshake_ms = hs_ms};
    assert_int_equal(em_server_open(&sv->srv, url, &o, sv->url, sizeof sv->url, err, sizeof err),
                     EMBER_OK);
    assert_int_equal(pthread_create(&sv->thread, NULL, serve, sv), 0);
}

static void server_stop(server *sv)
{
    sv->stop = 1;
    pthread_join(sv->thread, NULL);
    em_server_close(sv->srv);
}

/* connect_as opens an rpc to sv as role with secret (NULL: none); returns the code, err */
static int connect_as(server *sv, const char *role, const em_secret *secret, em_rpc *rpc, char *err,
                      size_t errlen)
{
    em_rpc_opts o = {role, 1 << 20, 2000, secret, NULL, 0};
    return em_rpc_open(rpc, sv->url, &o, err, errlen);
}

/* call sends a Goodbye (allowed to submitters and executors) and returns the code */
static int call(em_rpc *rpc, em_msg_type type, char *err, size_t errlen)
{
    em_rpc_chan ch = {0};
    em_rpc_reply reply = {0};
    Ember__Goodbye g = EMBER__GOODBYE__INIT;
    assert_int_equal(em_rpc_chan_open(rpc, &ch), EMBER_OK);
    int rc = em_rpc_call(rpc, &ch, type, &g.base, NULL, 0, 2000, &reply, err, errlen);
    em_rpc_reply_free(&reply);
    em_rpc_chan_close(&ch);
    return rc;
}

static void same_secret_connects(void **state)
{
    (void)state;
    em_secret s = secret_of(7);
    server sv;
    server_start(&sv, &s, EM_ROLE_SUBMITTER | EM_ROLE_EXECUTOR, 0);
    em_rpc rpc;
    char err[512] = "";
    assert_int_equal(connect_as(&sv, "submitter", &s, &rpc, err, sizeof err), EMBER_OK);
    assert_int_equal(call(&rpc, EM_MSG_GOODBYE, err, sizeof err), EMBER_OK);
    /* outside its role: refused, and the connection goes on */
    assert_int_equal(call(&rpc, EM_MSG_REGISTER, err, sizeof err), EMBER_ERR_PROTOCOL);
    assert_non_null(strstr(err, "REGISTER may not be sent by a submitter"));
    assert_int_equal(call(&rpc, EM_MSG_GOODBYE, err, sizeof err), EMBER_OK);
    assert_int_equal(em_server_auth_failures(sv.srv), 0);
    assert_int_equal(em_server_rejected(sv.srv), 1);
    em_rpc_close(&rpc);
    server_stop(&sv);
}

static void wrong_or_missing_secret_refused(void **state)
{
    (void)state;
    em_secret s = secret_of(7), other = secret_of(8);
    server sv;
    server_start(&sv, &s, EM_ROLE_SUBMITTER, 0);
    em_rpc rpc;
    char err[512] = "";
    assert_int_equal(connect_as(&sv, "submitter", &other, &rpc, err, sizeof err),
                     EMBER_ERR_UNAUTHENTICATED);
    assert_non_null(strstr(err, "could not prove the cluster secret"));
    assert_int_equal(connect_as(&sv, "submitter", NULL, &rpc, err, sizeof err),
                     EMBER_ERR_UNAUTHENTICATED);
    assert_non_null(strstr(err, "requires the cluster secret"));
    assert_true(em_server_auth_failures(sv.srv) >= 1); /* a Hello without a nonce */
    server_stop(&sv);
    /* a client with a secret does not trust a server without one */
    server_start(&sv, NULL, EM_ROLE_SUBMITTER, 0);
    assert_int_equal(connect_as(&sv, "submitter", &s, &rpc, err, sizeof err),
                     EMBER_ERR_UNAUTHENTICATED);
    assert_non_null(strstr(err, "does not authenticate connections"));
    assert_int_equal(connect_as(&sv, "submitter", NULL, &rpc, err, sizeof err), EMBER_OK);
    em_rpc_close(&rpc);
    server_stop(&sv);
}

static void role_not_served_refused(void **state)
{
    (void)state;
    em_secret s = secret_of(7);
    server sv;
    server_start(&sv, &s, EM_ROLE_PEER, 0);
    em_rpc rpc;
    char err[512] = "";
    assert_int_equal(connect_as(&sv, "submitter", &s, &rpc, err, sizeof err),
                     EMBER_ERR_UNAUTHENTICATED);
    assert_non_null(strstr(err, "a role this server does not serve"));
    assert_int_equal(connect_as(&sv, "probe", &s, &rpc, err, sizeof err),
                     EMBER_ERR_UNAUTHENTICATED);
    assert_int_equal(em_server_auth_failures(sv.srv), 2);
    server_stop(&sv);
}

/* raw: a bare req socket that speaks frames, for what em_rpc will not send */
static nng_msg *raw_call(nng_socket s, em_msg_type type, const ProtobufCMessage *pb)
{
    nng_msg *msg, *reply = NULL;
    assert_int_equal(em_frame_new(&msg, type, pb, NULL, 0), EMBER_OK);
    assert_int_equal(nng_sendmsg(s, msg, 0), 0);
    if (nng_recvmsg(s, &reply, 0) != 0) return NULL;
    return reply;
}

static em_msg_type raw_type(nng_msg *m, void **pb, em_msg_type expect)
{
    em_frame f;
    char err[128];
    assert_int_equal(em_frame_parse(nng_msg_body(m), nng_msg_len(m), &f, err, sizeof err),
                     EMBER_OK);
    if (pb) *pb = em_frame_unpack(&f, expect);
    return f.type;
}

static nng_socket raw_open(server *sv)
{
    nng_socket s;
    assert_int_equal(nng_req0_open(&s), 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 2000);
    nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    assert_int_equal(nng_dial(s, sv->url, NULL, 0), 0);
    return s;
}

/* handshake_raw goes through the handshake by hand with secret s and client nonce cn;
 * returns the Auth it sent in *auth_proof */
static void handshake_raw(nng_socket sock, const em_secret *s, const uint8_t *cn,
                          uint8_t auth_proof[EM_PROOF_LEN])
{
    Ember__Hello h = EMBER__HELLO__INIT;
    h.protocol_version = 2;
    h.role = "submitter";
    h.nonce = (ProtobufCBinaryData){EM_NONCE_LEN, (uint8_t *)cn};
    nng_msg *reply = raw_call(sock, EM_MSG_HELLO, &h.base);
    Ember__Challenge *c;
    assert_int_equal(raw_type(reply, (void **)&c, EM_MSG_CHALLENGE), EM_MSG_CHALLENGE);
    em_auth_proof(s, 'C', "submitter", 0, cn, c->nonce.data, auth_proof);
    em_pb_free(c);
    nng_msg_free(reply);
    Ember__Auth a = EMBER__AUTH__INIT;
    a.proof = (ProtobufCBinaryData){EM_PROOF_LEN, auth_proof};
    reply = raw_call(sock, EM_MSG_AUTH, &a.base);
    assert_int_equal(raw_type(reply, NULL, EM_MSG_NONE), EM_MSG_HELLO_REPLY);
    nng_msg_free(reply);
}

static void replayed_auth_refused(void **state)
{
    (void)state;
    em_secret s = secret_of(7);
    server sv;
    server_start(&sv, &s, EM_ROLE_SUBMITTER, 0);
    uint8_t cn[EM_NONCE_LEN], recorded[EM_PROOF_LEN];
    assert_true(em_auth_nonce(cn));
    nng_socket first = raw_open(&sv);
    handshake_raw(first, &s, cn, recorded); /* a good handshake, recorded */
    nng_close(first);
    /* an eavesdropper replays it on a connection of its own: same Hello, same Auth */
    nng_socket second = raw_open(&sv);
    Ember__Hello h = EMBER__HELLO__INIT;
    h.protocol_version = 2;
    h.role = "submitter";
    h.nonce = (ProtobufCBinaryData){EM_NONCE_LEN, cn};
    nng_msg *reply = raw_call(second, EM_MSG_HELLO, &h.base);
    assert_int_equal(raw_type(reply, NULL, EM_MSG_NONE), EM_MSG_CHALLENGE); /* a new nonce */
    nng_msg_free(reply);
    Ember__Auth a = EMBER__AUTH__INIT;
    a.proof = (ProtobufCBinaryData){EM_PROOF_LEN, recorded};
    reply = raw_call(second, EM_MSG_AUTH, &a.base);
    assert_non_null(reply);
    Ember__ErrorReply *er;
    assert_int_equal(raw_type(reply, (void **)&er, EM_MSG_ERROR), EM_MSG_ERROR);
    assert_int_equal(er->code, EMBER_ERR_UNAUTHENTICATED);
    assert_non_null(strstr(er->message, "authentication failed"));
    em_pb_free(er);
    nng_msg_free(reply);
    assert_int_equal(em_server_auth_failures(sv.srv), 1);
    /* and nothing else is accepted on it */
    Ember__Goodbye g = EMBER__GOODBYE__INIT;
    reply = raw_call(second, EM_MSG_GOODBYE, &g.base);
    if (reply) { /* answered before the server closed it: refused */
        assert_int_equal(raw_type(reply, (void **)&er, EM_MSG_ERROR), EM_MSG_ERROR);
        assert_int_equal(er->code, EMBER_ERR_UNAUTHENTICATED);
        em_pb_free(er);
        nng_msg_free(reply);
    }
    nng_close(second);
    server_stop(&sv);
}

/* serve_sizes: like serve, and says in ReportReply.known how many data bytes came */
static void *serve_sizes(void *arg)
{
    server *sv = arg;
    while (!sv->stop) {
        em_request req;
        int rc = em_server_recv(sv->srv, &req, 20);
        if (rc == EMBER_ERR_CANCELLED) break;
        if (rc != EMBER_OK) continue;
        Ember__ReportReply rr = EMBER__REPORT_REPLY__INIT;
        rr.known = req.frame.data_len == (5u << 20) + 3 && req.frame.data[5u << 20] == 'e';
        em_server_reply(sv->srv, &req, EM_MSG_REPORT_REPLY, &rr.base, NULL, 0);
    }
    return NULL;
}

static void big_requests_travel_in_parts(void **state)
{
    (void)state;
    em_secret s = secret_of(7);
    server sv;
    memset(&sv, 0, sizeof sv);
    char url[128], err[512] = "";
    snprintf(url, sizeof url, "inproc://test-auth-parts-%d", (int)getpid());
    em_server_opts o = {.max_recv = 8u << 20, .secret = &s, .roles = EM_ROLE_SUBMITTER};
    assert_int_equal(em_server_open(&sv.srv, url, &o, sv.url, sizeof sv.url, err, sizeof err),
                     EMBER_OK);
    assert_int_equal(pthread_create(&sv.thread, NULL, serve_sizes, &sv), 0);
    em_rpc rpc;
    assert_int_equal(connect_as(&sv, "submitter", &s, &rpc, err, sizeof err), EMBER_OK);
    size_t len = (5u << 20) + 3; /* six parts, the last a short one */
    char *big = malloc(len);
    assert_non_null(big);
    memset(big, 'x', len);
    big[5u << 20] = 'e';
    em_iov iov = {big, len};
    Ember__Goodbye g = EMBER__GOODBYE__INIT;
    em_rpc_chan ch = {0};
    em_rpc_reply reply = {0};
    assert_int_equal(em_rpc_chan_open(&rpc, &ch), EMBER_OK);
    assert_int_equal(
        em_rpc_call(&rpc, &ch, EM_MSG_GOODBYE, &g.base, &iov, 1, 5000, &reply, err, sizeof err),
        EMBER_OK);
    Ember__ReportReply *rr = em_frame_unpack(&reply.frame, EM_MSG_REPORT_REPLY);
    assert_non_null(rr);
    assert_true(rr->known); /* every byte arrived, in order */
    em_pb_free(rr);
    em_rpc_reply_free(&reply);
    iov.len = 9u << 20; /* over the server's limit: refused, saying so */
    char *bigger = realloc(big, iov.len);
    assert_non_null(bigger);
    iov.p = bigger;
    assert_int_equal(
        em_rpc_call(&rpc, &ch, EM_MSG_GOODBYE, &g.base, &iov, 1, 5000, &reply, err, sizeof err),
        EMBER_ERR_TOO_LARGE);
    assert_non_null(strstr(err, "a request over the server's limit"));
    free(bigger);
    em_rpc_chan_close(&ch);
    em_rpc_close(&rpc);
    server_stop(&sv);
}

static void silent_connection_closed_after_deadline(void **state)
{
    (void)state;
    em_secret s = secret_of(7);
    server sv;
    server_start(&sv, &s, EM_ROLE_SUBMITTER, 200);
    nng_socket quiet = raw_open(&sv); /* connects, says nothing */
    int64_t deadline = em_now_ms() + 5000;
    while (sv.closed == 0 && em_now_ms() < deadline) em_sleep_ms(10);
    assert_true(sv.closed >= 1);
    assert_int_equal(em_server_auth_failures(sv.srv), 0); /* not a failure: only too slow */
    nng_close(quiet);
    server_stop(&sv);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/ember-test-auth-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    em_log_init("test", EM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(secret_files),
        cmocka_unit_test(proofs),
        cmocka_unit_test(same_secret_connects),
        cmocka_unit_test(wrong_or_missing_secret_refused),
        cmocka_unit_test(role_not_served_refused),
        cmocka_unit_test(replayed_auth_refused),
        cmocka_unit_test(silent_connection_closed_after_deadline),
        cmocka_unit_test(big_requests_travel_in_parts),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(dir);
    nng_fini();
    return failed;
}
