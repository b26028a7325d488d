/* em_server.c -- raw rep0 server with Hello handling and frame validation (see em_server.h). */
#include "em_server.h"

#include <ember/ember.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_log.h"

#define EM_PROTOCOL_VERSION 1
#define CLOSED_MAX          1024

struct em_server {
    nng_socket sock; /* raw rep0 */
    nng_listener listener;
    nng_aio *aio;         /* owner's receive aio */
    em_hello_fn hello_fn; /* the owner's decision on a Hello (NULL: accept) */
    void *hello_arg;
    em_conn *conns; /* connections that said Hello; owner thread only */
    size_t n_conns, cap_conns;
    int sock_id; /* nng's id of sock, to find its closed pipes */
    atomic_uint_fast64_t rejected;
};

/* Closed connections, as nng's threads report them. nng may run a pipe callback after
 * nng_close has returned, so what the callback touches lives in static storage rather than
 * in the em_server, and entries name their socket. */
static pthread_mutex_t closed_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int sock;
    uint32_t pipe;
} closed[CLOSED_MAX];
static int n_closed;

static void on_pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    pthread_mutex_lock(&closed_lock);
    if (n_closed < CLOSED_MAX) {
        closed[n_closed].sock = nng_socket_id(nng_pipe_socket(p));
        closed[n_closed++].pipe = nng_pipe_id(p);
    }
    pthread_mutex_unlock(&closed_lock);
}

/* take_closed moves up to max closed pipes of socket `sock` to pipes[] (max 0: drop them). */
static int take_closed(int sock, uint32_t *pipes, int max)
{
    int n = 0, kept = 0;
    pthread_mutex_lock(&closed_lock);
    for (int i = 0; i < n_closed; i++) {
        if (closed[i].sock == sock && (n < max || max == 0)) {
            if (max) pipes[n++] = closed[i].pipe;
            continue;
        }
        closed[kept++] = closed[i];
    }
    n_closed = kept;
    pthread_mutex_unlock(&closed_lock);
    return n;
}

int em_server_open(em_server **out, const char *url, size_t max_recv, char *bound_url,
                   size_t bound_len, char *err, size_t errlen)
{
    em_server *srv = calloc(1, sizeof *srv);
    if (!srv) return EMBER_ERR_NOMEM;
    atomic_init(&srv->rejected, 0);
    int rv = nng_rep0_open_raw(&srv->sock);
    if (rv != 0 || nng_aio_alloc(&srv->aio, NULL, NULL) != 0) {
        snprintf(err, errlen, "cannot open socket: %s", nng_strerror(rv));
        if (rv == 0) nng_close(srv->sock);
        free(srv);
        return EMBER_ERR_NOMEM;
    }
    nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ, max_recv);
    nng_socket_set_int(srv->sock, NNG_OPT_RECVBUF, 1024);
    nng_socket_set_int(srv->sock, NNG_OPT_SENDBUF, 1024);
    srv->sock_id = nng_socket_id(srv->sock);
    nng_pipe_notify(srv->sock, NNG_PIPE_EV_REM_POST, on_pipe_removed, NULL);
    if ((rv = nng_listen(srv->sock, url, &srv->listener, 0)) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", url, nng_strerror(rv));
        em_server_close(srv);
        return rv == NNG_EADDRINUSE ? EMBER_ERR_IO : EMBER_ERR_INVALID;
    }
    int port = 0;
    if (nng_listener_get_int(srv->listener, NNG_OPT_TCP_BOUND_PORT, &port) != 0) {
        snprintf(bound_url, bound_len, "%s", url); /* not TCP (inproc://): as given */
        *out = srv;
        return EMBER_OK;
    }
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    const char *colon = strrchr(host, ':');
    int host_len = colon ? (int)(colon - host) : (int)strlen(host);
    snprintf(bound_url, bound_len, "tcp://%.*s:%d", host_len, host, port);
    *out = srv;
    return EMBER_OK;
}

void em_server_on_hello(em_server *srv, em_hello_fn fn, void *arg)
{
    srv->hello_fn = fn;
    srv->hello_arg = arg;
}

void em_server_stop(em_server *srv)
{
    if (srv) nng_close(srv->sock);
}

void em_server_close(em_server *srv)
{
    if (!srv) return;
    nng_close(srv->sock);
    nng_aio_stop(srv->aio);
    nng_aio_free(srv->aio);
    take_closed(srv->sock_id, NULL, 0);
    free(srv->conns);
    free(srv);
}

static em_conn *find_conn(em_server *srv, uint32_t pipe)
{
    for (size_t i = 0; i < srv->n_conns; i++)
        if (srv->conns[i].pipe == pipe) return &srv->conns[i];
    return NULL;
}

int em_server_session_connected(em_server *srv, uint64_t session)
{
    for (size_t i = 0; i < srv->n_conns; i++)
        if (srv->conns[i].session == session) return 1;
    return 0;
}

int em_server_closed(em_server *srv, em_conn *out, int max)
{
    uint32_t pipes[64];
    int n = take_closed(srv->sock_id, pipes, max < 64 ? max : 64);
    for (int i = 0; i < n; i++) {
        em_conn *p = find_conn(srv, pipes[i]);
        out[i] = p ? *p : (em_conn){pipes[i], 0};
        if (p) *p = srv->conns[--srv->n_conns];
    }
    return n;
}

void em_server_close_pipe(em_server *srv, uint32_t pipe)
{
    nng_pipe p = NNG_PIPE_INITIALIZER;
    p.id = pipe;
    nng_pipe_close(p);
}

void em_server_close_session(em_server *srv, uint64_t session)
{
    for (size_t i = 0; i < srv->n_conns; i++)
        if (srv->conns[i].session == session) em_server_close_pipe(srv, srv->conns[i].pipe);
}

uint64_t em_server_rejected(em_server *srv) { return atomic_load(&srv->rejected); }

void em_server_drop(em_request *req)
{
    if (req->msg) nng_msg_free(req->msg);
    req->msg = NULL;
}

int em_server_reply(em_server *srv, em_request *req, em_msg_type type, const ProtobufCMessage *pb,
                    const em_iov *data, size_t n_data)
{
    nng_msg_clear(req->msg); /* keeps the routing header */
    int rc = em_frame_append(req->msg, type, pb, data, n_data);
    if (rc == EMBER_OK && nng_sendmsg(srv->sock, req->msg, 0) == 0) {
        req->msg = NULL;
        return EMBER_OK;
    }
    em_server_drop(req);
    return rc == EMBER_OK ? EMBER_ERR_CONNECT : rc;
}

int em_server_reply_error(em_server *srv, em_request *req, int code, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    Ember__ErrorReply er = EMBER__ERROR_REPLY__INIT;
    er.code = code;
    er.message = text;
    return em_server_reply(srv, req, EM_MSG_ERROR, &er.base, NULL, 0);
}

static void reject(em_server *srv, em_request *req, const char *why)
{
    uint64_t n = atomic_fetch_add(&srv->rejected, 1) + 1;
    if (n <= 10 || n % 1000 == 0)
        em_warn("rejected message pipe=%u reason=\"%s\" rejected_total=%llu", req->pipe, why,
                (unsigned long long)n);
}

/* remember_conn notes that pipe said Hello for session; 0 without memory */
static int remember_conn(em_server *srv, uint32_t pipe, uint64_t session)
{
    em_conn *p = find_conn(srv, pipe);
    if (p) {
        p->session = session;
        return 1;
    }
    if (srv->n_conns == srv->cap_conns) {
        size_t cap = srv->cap_conns ? srv->cap_conns * 2 : 64;
        em_conn *grown = realloc(srv->conns, cap * sizeof *grown);
        if (!grown) return 0;
        srv->conns = grown;
        srv->cap_conns = cap;
    }
    srv->conns[srv->n_conns++] = (em_conn){pipe, session};
    return 1;
}

/* answer_hello accepts a connection when its protocol is ours and the owner's hook agrees. */
static void answer_hello(em_server *srv, em_request *req)
{
    Ember__Hello *h = em_frame_unpack(&req->frame, EM_MSG_HELLO);
    if (!h || h->protocol_version != EM_PROTOCOL_VERSION) {
        reject(srv, req, h ? "unsupported protocol version" : "unreadable Hello");
        em_server_reply_error(srv, req, EMBER_ERR_PROTOCOL, "unsupported protocol (want %d)",
                              EM_PROTOCOL_VERSION);
        em_pb_free(h);
        return;
    }
    Ember__HelloReply hr = EMBER__HELLO_REPLY__INIT;
    hr.protocol_version = EM_PROTOCOL_VERSION;
    uint64_t session = 0;
    char why[256] = "";
    int rc =
        srv->hello_fn ? srv->hello_fn(srv->hello_arg, h, &hr, &session, why, sizeof why) : EMBER_OK;
    if (rc == EMBER_OK && !remember_conn(srv, req->pipe, session)) {
        rc = EMBER_ERR_NOMEM;
        snprintf(why, sizeof why, "server out of memory");
    }
    if (rc == EMBER_OK) {
        hr.session = session;
        em_server_reply(srv, req, EM_MSG_HELLO_REPLY, &hr.base, NULL, 0);
    } else {
        reject(srv, req, why);
        em_server_reply_error(srv, req, rc, "%s", why);
    }
    em_pb_free(h);
}

int em_server_recv(em_server *srv, em_request *req, int timeout_ms)
{
    for (;;) {
        nng_aio_set_timeout(srv->aio, timeout_ms);
        nng_recv_aio(srv->sock, srv->aio);
        nng_aio_wait(srv->aio);
        int rv = nng_aio_result(srv->aio);
        if (rv == NNG_ETIMEDOUT) return EMBER_ERR_TIMEOUT;
        if (rv != 0) return EMBER_ERR_CANCELLED;
        req->msg = nng_aio_get_msg(srv->aio);
        req->pipe = nng_pipe_id(nng_msg_get_pipe(req->msg));
        char why[256];
        if (em_frame_parse(nng_msg_body(req->msg), nng_msg_len(req->msg), &req->frame, why,
                           sizeof why) != EMBER_OK) {
            reject(srv, req, why);
            em_server_close_pipe(srv, req->pipe);
            em_server_drop(req);
            continue;
        }
        if (req->frame.type == EM_MSG_HELLO) {
            answer_hello(srv, req);
            continue;
        }
        const em_conn *conn = find_conn(srv, req->pipe);
        if (!conn) {
            reject(srv, req, "request before Hello");
            em_server_reply_error(srv, req, EMBER_ERR_UNAUTHENTICATED,
                                  "connection has not said Hello");
            continue;
        }
        req->session = conn->session;
        return EMBER_OK;
    }
}
