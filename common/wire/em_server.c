/* em_server.c -- raw rep0 server: handshake, roles, frame validation (see em_server.h).
 *
 * A connection goes NEW (its pipe exists) -> CHALLENGED (Hello answered with a Challenge,
 * when there is a secret) -> READY (HelloReply sent). Only READY connections' requests reach
 * the owner. Connections are tracked from the moment nng opens their pipe, so one that says
 * nothing, or never finishes its handshake, is closed after handshake_ms.
 */
#include "em_server.h"

#include <arpa/inet.h>
#include <ember/ember.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_log.h"
#include "em_time.h"

#define EM_PROTOCOL_VERSION 2
#define EVENTS_MAX          1024  /* pipe events queued between two receives */
#define FAILURE_LOG_MS      10000 /* a peer address's handshake failures: one line this often */
#define DOOMED_MS           200   /* a refused connection is closed this long after its answer */
#define PARTS_MS            60000 /* a frame coming in parts must be whole within this */

/* connection states; DOOMED: refused, closed once its answer had time to leave */
enum { CONN_NEW, CONN_CHALLENGED, CONN_READY, CONN_DOOMED };

/* failure_log: when a peer address last had a handshake failure logged */
typedef struct failure_log {
    uint32_t addr;
    int64_t at_ms;
    uint64_t since; /* failures not logged since */
} failure_log;

struct em_server {
    nng_socket sock; /* raw rep0 */
    nng_listener listener;
    nng_aio *aio; /* owner's receive aio */
    em_server_opts opts;
    em_secret secret;     /* a copy of opts.secret */
    em_hello_fn hello_fn; /* the owner's decision on a connection (NULL: accept) */
    void *hello_arg;
    em_conn *conns; /* open connections; owner thread only */
    size_t n_conns, cap_conns;
    em_conn *gone; /* closed connections the owner has not taken yet (em_server_closed) */
    size_t n_gone, cap_gone;
    int sock_id; /* nng's id of sock, to find its pipe events */
    failure_log failures[16];
    atomic_uint_fast64_t rejected, auth_failures;
    atomic_int woken; /* em_server_wake was called: the owner's receive returns */
};

/* Pipe events, as nng's threads report them. nng may run a pipe callback after nng_close has
 * returned, so what the callback touches lives in static storage rather than in the
 * em_server, and entries name their socket. */
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int sock;
    uint32_t pipe;
    int added; /* 1: opened, 0: closed */
} events[EVENTS_MAX];
static int n_events;

static void on_pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&events_lock);
    if (n_events < EVENTS_MAX) {
        events[n_events].sock = nng_socket_id(nng_pipe_socket(p));
        events[n_events].pipe = nng_pipe_id(p);
        events[n_events++].added = ev == NNG_PIPE_EV_ADD_POST;
    } else if (ev == NNG_PIPE_EV_ADD_POST) {
        nng_pipe_close(p); /* more connections at once than can be followed: refused */
    }
    pthread_mutex_unlock(&events_lock);
}

/* take_events moves up to max pipe events of socket `sock` (max 0: drops them all) */
static int take_events(int sock, uint32_t *pipes, int *added, int max)
{
    int n = 0, kept = 0;
    pthread_mutex_lock(&events_lock);
    for (int i = 0; i < n_events; i++) {
        if (events[i].sock == sock && (n < max || max == 0)) {
            if (max) {
                pipes[n] = events[i].pipe;
                added[n++] = events[i].added;
            }
            continue;
        }
        events[kept++] = events[i];
    }
    n_events = kept;
    pthread_mutex_unlock(&events_lock);
    return n;
}

/* ---- connections -------------------------------------------------------------------------- */

static em_conn *find_conn(em_server *srv, uint32_t pipe)
{
    for (size_t i = 0; i < srv->n_conns; i++)
        if (srv->conns[i].pipe == pipe) return &srv->conns[i];
    return NULL;
}

/* add_conn starts following a new connection; NULL when there are too many or no memory */
static em_conn *add_conn(em_server *srv, uint32_t pipe)
{
    if (srv->n_conns >= srv->opts.max_conns) return NULL;
    if (srv->n_conns == srv->cap_conns) {
        size_t cap = srv->cap_conns ? srv->cap_conns * 2 : 64;
        em_conn *grown = realloc(srv->conns, cap * sizeof *grown);
        if (!grown) return NULL;
        srv->conns = grown;
        srv->cap_conns = cap;
    }
    em_conn *c = &srv->conns[srv->n_conns++];
    memset(c, 0, sizeof *c);
    c->pipe = pipe;
    c->state = CONN_NEW;
    c->since_ms = em_now_ms();
    return c;
}

void em_server_close_pipe(em_server *srv, uint32_t pipe)
{
    (void)srv;
    nng_pipe p = NNG_PIPE_INITIALIZER;
    p.id = pipe;
    nng_pipe_close(p);
}

/* peer_addr: the IPv4 address of a connection's peer (0 if it has none: inproc, IPv6) */
static uint32_t peer_addr(uint32_t pipe)
{
    nng_pipe p = NNG_PIPE_INITIALIZER;
    p.id = pipe;
    nng_sockaddr sa;
    if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0 || sa.s_family != NNG_AF_INET) return 0;
    return sa.s_in.sa_addr;
}

/* doom closes connection c (of pipe) DOOMED_MS from now, so that the answer saying why it was
 * refused reaches the client first; at once when the server does not follow it */
static void doom(em_server *srv, em_conn *c, uint32_t pipe)
{
    if (c && c->state != CONN_DOOMED) { /* doomed already: its time runs on */
        c->state = CONN_DOOMED;
        c->since_ms = em_now_ms();
    } else if (!c) {
        em_server_close_pipe(srv, pipe);
    }
}

/* handshake_failed counts a failed handshake, logs it at most once per FAILURE_LOG_MS per
 * peer address, and closes the connection (DOOMED_MS later, so that the answer saying why
 * reaches the client first). */
static void handshake_failed(em_server *srv, uint32_t pipe, const char *why)
{
    atomic_fetch_add(&srv->auth_failures, 1);
    uint32_t addr = peer_addr(pipe);
    int64_t now = em_now_ms();
    failure_log *slot = &srv->failures[0];
    for (size_t i = 0; i < 16; i++) { /* the address's slot, else the one logged longest ago */
        if (srv->failures[i].addr == addr) {
            slot = &srv->failures[i];
            break;
        }
        if (srv->failures[i].at_ms < slot->at_ms) slot = &srv->failures[i];
    }
    if (slot->addr == addr && slot->at_ms && now - slot->at_ms < FAILURE_LOG_MS) {
        slot->since++;
    } else {
        char text[INET_ADDRSTRLEN] = "local";
        struct in_addr in = {addr};
        if (addr) inet_ntop(AF_INET, &in, text, sizeof text);
        em_warn("connection refused peer=%s reason=\"%s\" refused_since_last=%llu "
                "auth_failures_total=%llu",
                text, why, (unsigned long long)(slot->addr == addr ? slot->since : 0),
                (unsigned long long)atomic_load(&srv->auth_failures));
        *slot = (failure_log){addr, now, 0};
    }
    doom(srv, find_conn(srv, pipe), pipe);
}

/* note_gone keeps a closed connection for the owner (dropped without memory: the owner then
 * misses one close, which costs an executor its crash grace or a session its grace) */
static void note_gone(em_server *srv, const em_conn *c)
{
    if (srv->n_gone == srv->cap_gone) {
        size_t cap = srv->cap_gone ? 2 * srv->cap_gone : 64;
        em_conn *grown = realloc(srv->gone, cap * sizeof *grown);
        if (!grown) return;
        srv->gone = grown;
        srv->cap_gone = cap;
    }
    srv->gone[srv->n_gone++] = *c;
}

/* follow_pipes applies the pipe events nng queued: new connections are followed (or refused
 * when there are too many), closed ones are kept for em_server_closed. */
static void follow_pipes(em_server *srv)
{
    uint32_t pipes[64];
    int added[64], n;
    while ((n = take_events(srv->sock_id, pipes, added, 64)) > 0)
        for (int i = 0; i < n; i++) {
            em_conn *c = find_conn(srv, pipes[i]);
            if (added[i]) {
                if (!c && !add_conn(srv, pipes[i]))
                    handshake_failed(srv, pipes[i], "too many connections");
                continue;
            }
            if (c) {
                free(c->parts);
                c->parts = NULL;
            }
            note_gone(srv, c ? c : &(em_conn){.pipe = pipes[i]});
            if (c) *c = srv->conns[--srv->n_conns];
        }
}

/* expire_handshakes closes refused connections, and those that did not finish their
 * handshake in time. */
static void expire_handshakes(em_server *srv)
{
    int64_t now = em_now_ms();
    for (size_t i = 0; i < srv->n_conns; i++) {
        em_conn *c = &srv->conns[i];
        if (c->parts && now - c->parts_since_ms > PARTS_MS) { /* a frame that never ends */
            free(c->parts);
            c->parts = NULL;
            atomic_fetch_add(&srv->rejected, 1);
            em_warn("connection closed pipe=%u reason=\"a frame in parts not whole within %d s\"",
                    c->pipe, PARTS_MS / 1000);
            em_server_close_pipe(srv, c->pipe);
        }
        if (c->state == CONN_DOOMED && now - c->since_ms > DOOMED_MS) {
            c->since_ms = INT64_MAX / 2; /* closed once: its close event removes it */
            em_server_close_pipe(srv, c->pipe);
        } else if (c->state != CONN_READY && c->state != CONN_DOOMED &&
                   now - c->since_ms > (int64_t)srv->opts.handshake_ms) {
            c->since_ms = now; /* closed once: its close event removes it */
            /* not counted as a failure: a client that reconnected by itself stays silent until
             * its next call, which dials and says Hello again */
            em_debug("connection closed pipe=%u reason=\"no handshake within %u ms\"", c->pipe,
                     srv->opts.handshake_ms);
            em_server_close_pipe(srv, c->pipe);
        }
    }
}

int em_server_closed(em_server *srv, em_conn *out, int max)
{
    follow_pipes(srv);
    int n = srv->n_gone < (size_t)max ? (int)srv->n_gone : max;
    if (n == 0) return 0;
    memcpy(out, srv->gone, (size_t)n * sizeof *out);
    memmove(srv->gone, srv->gone + n, (srv->n_gone - (size_t)n) * sizeof *out);
    srv->n_gone -= (size_t)n;
    return n;
}

int em_server_session_connected(em_server *srv, uint64_t session)
{
    for (size_t i = 0; i < srv->n_conns; i++)
        if (srv->conns[i].state == CONN_READY && srv->conns[i].session == session) return 1;
    return 0;
}

void em_server_close_session(em_server *srv, uint64_t session)
{
    for (size_t i = 0; i < srv->n_conns; i++)
        if (srv->conns[i].session == session) em_server_close_pipe(srv, srv->conns[i].pipe);
}

/* ---- socket ------------------------------------------------------------------------------- */

/* bound_address: the address a listener on url bound (its port resolved) */
static void bound_address(em_server *srv, const char *url, char *bound_url, size_t bound_len)
{
    int port = 0;
    if (nng_listener_get_int(srv->listener, NNG_OPT_TCP_BOUND_PORT, &port) != 0) {
        snprintf(bound_url, bound_len, "%s", url); /* not TCP (inproc://): as given */
        return;
    }
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    const char *colon = strrchr(host, ':');
    int host_len = colon ? (int)(colon - host) : (int)strlen(host);
    snprintf(bound_url, bound_len, "%s%.*s:%d", em_url_is_tls(url) ? "tls+tcp://" : "tcp://",
             host_len, host, port);
}

int em_server_open(em_server **out, const char *url, const em_server_opts *opts, char *bound_url,
                   size_t bound_len, char *err, size_t errlen)
{
    em_server *srv = calloc(1, sizeof *srv);
    if (!srv) return EMBER_ERR_NOMEM;
    atomic_init(&srv->rejected, 0);
    atomic_init(&srv->auth_failures, 0);
    srv->opts = *opts;
    if (!srv->opts.handshake_ms) srv->opts.handshake_ms = 10000;
    if (!srv->opts.max_conns) srv->opts.max_conns = 1024;
    if (opts->secret) srv->secret = *opts->secret;
    srv->opts.secret = NULL;
    int rv = nng_rep0_open_raw(&srv->sock);
    if (rv != 0 || nng_aio_alloc(&srv->aio, NULL, NULL) != 0) {
        snprintf(err, errlen, "cannot open socket: %s", nng_strerror(rv));
        if (rv == 0) nng_close(srv->sock);
        free(srv);
        return EMBER_ERR_NOMEM;
    }
    /* one message is at most a part, whatever the whole request may be */
    nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ,
                        opts->max_recv < EM_RECV_MAX ? opts->max_recv : EM_RECV_MAX);
    nng_socket_set_int(srv->sock, NNG_OPT_RECVBUF, 1024);
    nng_socket_set_int(srv->sock, NNG_OPT_SENDBUF, 1024);
    srv->sock_id = nng_socket_id(srv->sock);
    nng_pipe_notify(srv->sock, NNG_PIPE_EV_ADD_POST, on_pipe_event, NULL);
    nng_pipe_notify(srv->sock, NNG_PIPE_EV_REM_POST, on_pipe_event, NULL);
    static const em_tls_files no_tls;
    nng_tls_config *tls = NULL;
    int rc = em_tls_server_config(opts->tls ? opts->tls : &no_tls, url, &tls, err, errlen);
    if (rc != EMBER_OK) {
        em_server_close(srv);
        return rc;
    }
    rv = nng_listener_create(&srv->listener, srv->sock, url);
    if (rv == 0 && tls) rv = nng_listener_set_ptr(srv->listener, NNG_OPT_TLS_CONFIG, tls);
    if (rv == 0) rv = nng_listener_start(srv->listener, 0);
    if (tls) nng_tls_config_free(tls); /* the listener holds its own reference */
    if (rv != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", url, nng_strerror(rv));
        em_server_close(srv);
        return rv == NNG_EADDRINUSE ? EMBER_ERR_IO : EMBER_ERR_INVALID;
    }
    bound_address(srv, url, bound_url, bound_len);
    *out = srv;
    return EMBER_OK;
}

void em_server_on_hello(em_server *srv, em_hello_fn fn, void *arg)
{
    srv->hello_fn = fn;
    srv->hello_arg = arg;
}

void em_server_wake(em_server *srv)
{
    atomic_store(&srv->woken, 1);
    nng_aio_cancel(srv->aio); /* a receive in progress ends; a later one sees the flag */
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
    uint32_t none[1];
    int added[1];
    take_events(srv->sock_id, none, added, 0);
    for (size_t i = 0; i < srv->n_conns; i++) free(srv->conns[i].parts);
    free(srv->conns);
    free(srv->gone);
    memset(&srv->secret, 0, sizeof srv->secret);
    free(srv);
}

int em_url_is_local(const char *url)
{
    if (strncmp(url, "inproc://", 9) == 0) return 1;
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    return strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost:", 10) == 0 ||
           strncmp(host, "[::1]:", 6) == 0;
}

uint64_t em_server_rejected(em_server *srv) { return atomic_load(&srv->rejected); }

uint64_t em_server_auth_failures(em_server *srv) { return atomic_load(&srv->auth_failures); }

void em_server_drop(em_request *req)
{
    if (req->msg) nng_msg_free(req->msg);
    req->msg = NULL;
    free(req->assembled);
    req->assembled = NULL;
}

int em_server_reply(em_server *srv, em_request *req, em_msg_type type, const ProtobufCMessage *pb,
                    const em_iov *data, size_t n_data)
{
    nng_msg_clear(req->msg); /* keeps the routing header */
    int rc = em_frame_append(req->msg, type, pb, data, n_data);
    free(req->assembled); /* the reply is built: the request's frame is no longer read */
    req->assembled = NULL;
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

/* ---- handshake ---------------------------------------------------------------------------- */

/* accept_conn asks the owner about a connection that proved itself, and answers HelloReply */
static void accept_conn(em_server *srv, em_request *req, em_conn *c)
{
    Ember__HelloReply hr = EMBER__HELLO_REPLY__INIT;
    hr.protocol_version = EM_PROTOCOL_VERSION;
    uint64_t session = 0;
    char why[256] = "";
    int rc = srv->hello_fn ? srv->hello_fn(srv->hello_arg, c->role, c->wanted_session, &hr,
                                           &session, why, sizeof why)
                           : EMBER_OK;
    if (rc != EMBER_OK) {
        handshake_failed(srv, c->pipe, why); /* counted before the answer leaves */
        em_server_reply_error(srv, req, rc, "%s", why);
        return;
    }
    c->state = CONN_READY;
    c->session = session;
    memset(c->nonces, 0, sizeof c->nonces);
    hr.session = session;
    em_server_reply(srv, req, EM_MSG_HELLO_REPLY, &hr.base, NULL, 0);
}

/* challenge answers a Hello with the server's nonce and proof */
static int challenge(em_server *srv, em_request *req, em_conn *c, const Ember__Hello *h)
{
    if (h->nonce.len != EM_NONCE_LEN) return 0;
    memcpy(c->nonces[0], h->nonce.data, EM_NONCE_LEN);
    if (!em_auth_nonce(c->nonces[1])) return 0;
    uint8_t proof[EM_PROOF_LEN];
    em_auth_proof(&srv->secret, 'S', em_role_name(c->role), c->wanted_session, c->nonces[0],
                  c->nonces[1], proof);
    Ember__Challenge ch = EMBER__CHALLENGE__INIT;
    ch.nonce = (ProtobufCBinaryData){EM_NONCE_LEN, c->nonces[1]};
    ch.proof = (ProtobufCBinaryData){EM_PROOF_LEN, proof};
    c->state = CONN_CHALLENGED;
    em_server_reply(srv, req, EM_MSG_CHALLENGE, &ch.base, NULL, 0);
    return 1;
}

/* answer_hello: a connection says who it is; with a secret it must now prove it */
static void answer_hello(em_server *srv, em_request *req)
{
    Ember__Hello *h = em_frame_unpack(&req->frame, EM_MSG_HELLO);
    em_conn *c = find_conn(srv, req->pipe);
    if (!c) c = add_conn(srv, req->pipe);
    em_role role = h ? em_role_parse(h->role) : EM_ROLE_NONE;
    const char *why = NULL;
    if (!h || h->protocol_version != EM_PROTOCOL_VERSION)
        why = h ? "unsupported protocol version" : "unreadable Hello";
    else if (c && c->state == CONN_DOOMED)
        why = "refused already";
    else if (!c)
        why = "too many connections";
    else if (!(role & srv->opts.roles))
        why = "a role this server does not serve";
    else if (srv->secret.set && h->nonce.len != EM_NONCE_LEN)
        why = "this server requires the cluster secret and the client has none: give it with "
              "--secret-file or EMBER_SECRET_FILE (docs/security.md)";
    if (why) {
        handshake_failed(srv, req->pipe, why);
        em_server_reply_error(srv, req, EMBER_ERR_UNAUTHENTICATED, "connection refused: %s", why);
        em_pb_free(h);
        return;
    }
    c->role = role;
    c->wanted_session = h->session;
    c->state = CONN_NEW;
    if (!srv->secret.set)
        accept_conn(srv, req, c);
    else if (!challenge(srv, req, c, h))
        handshake_failed(srv, req->pipe, "no random nonce"), em_server_drop(req);
    em_pb_free(h);
}

/* answer_auth: the client's proof, answering our challenge */
static void answer_auth(em_server *srv, em_request *req)
{
    Ember__Auth *a = em_frame_unpack(&req->frame, EM_MSG_AUTH);
    em_conn *c = find_conn(srv, req->pipe);
    uint8_t want[EM_PROOF_LEN];
    int ok = a && c && c->state == CONN_CHALLENGED;
    if (ok) {
        em_auth_proof(&srv->secret, 'C', em_role_name(c->role), c->wanted_session, c->nonces[0],
                      c->nonces[1], want);
        ok = em_auth_proof_ok(a->proof.data, a->proof.len, want);
    }
    em_pb_free(a);
    if (ok) {
        accept_conn(srv, req, c);
        return;
    }
    handshake_failed(srv, req->pipe,
                     c && c->state == CONN_CHALLENGED ? "wrong proof (another cluster secret?)"
                                                      : "Auth without a challenge");
    em_server_reply_error(srv, req, EMBER_ERR_UNAUTHENTICATED,
                          "connection refused: authentication failed");
}

/* admit: a frame of a connection that finished its handshake, from a role allowed to send
 * it; else it is answered here and 0 returned */
static int admit(em_server *srv, em_request *req)
{
    const em_conn *c = find_conn(srv, req->pipe);
    if (!c || c->state != CONN_READY) {
        reject(srv, req, "request before the handshake");
        em_server_reply_error(srv, req, EMBER_ERR_UNAUTHENTICATED, "connection has not said Hello");
        return 0;
    }
    if (!(em_msg_roles(req->frame.type) & c->role)) {
        char why[96];
        snprintf(why, sizeof why, "%s from a %s", em_msg_name(req->frame.type),
                 em_role_name(c->role));
        reject(srv, req, why);
        em_server_reply_error(srv, req, EMBER_ERR_PROTOCOL, "%s may not be sent by a %s",
                              em_msg_name(req->frame.type), em_role_name(c->role));
        return 0;
    }
    req->session = c->session;
    req->role = c->role;
    return 1;
}

/* part_fault: what is wrong with part p of a frame on connection c (NULL: nothing) */
static const char *part_fault(const em_server *srv, const em_conn *c, const Ember__Part *p,
                              size_t len)
{
    if (!c || c->state != CONN_READY) return "a part before the handshake";
    if (!p) return "an unreadable part";
    if (p->total > srv->opts.max_recv) return "a request over the server's limit";
    if (p->offset != c->parts_len || (c->parts && p->total != c->parts_total) ||
        len > p->total - p->offset || (uint64_t)p->last != (p->offset + len == p->total))
        return "a part out of order";
    return NULL;
}

/* take_part adds a part to its connection's frame: 1 when the frame is whole (req then holds
 * it), 0 when more parts are to come (answered here), -1 for a bad part (answered, and the
 * connection closed once the answer left) */
static int take_part(em_server *srv, em_request *req)
{
    em_conn *c = find_conn(srv, req->pipe);
    Ember__Part *p = em_frame_unpack(&req->frame, EM_MSG_PART);
    const char *why = part_fault(srv, c, p, req->frame.data_len);
    if (!why && !c->parts) {
        if (!(c->parts = malloc(p->total ? p->total : 1))) why = "no memory for the request";
        c->parts_total = p->total;
        c->parts_since_ms = em_now_ms();
    }
    if (why) {
        reject(srv, req, why);
        em_server_reply_error(srv, req, EMBER_ERR_TOO_LARGE, "request refused: %s", why);
        if (c) {
            free(c->parts);
            c->parts = NULL;
            c->parts_len = 0;
        }
        doom(srv, c, req->pipe);
        em_pb_free(p);
        return -1;
    }
    memcpy(c->parts + c->parts_len, req->frame.data, req->frame.data_len);
    c->parts_len += req->frame.data_len;
    int last = p->last;
    em_pb_free(p);
    if (!last) {
        Ember__PartAck ack = EMBER__PART_ACK__INIT;
        ack.received = c->parts_len;
        em_server_reply(srv, req, EM_MSG_PART_ACK, &ack.base, NULL, 0);
        return 0;
    }
    req->assembled = c->parts;
    c->parts = NULL;
    c->parts_len = 0;
    char err[256];
    if (em_frame_parse(req->assembled, c->parts_total, &req->frame, err, sizeof err) != EMBER_OK ||
        req->frame.type == EM_MSG_PART) {
        reject(srv, req, "a request in parts that is no frame");
        em_server_close_pipe(srv, req->pipe);
        em_server_drop(req);
        return -1;
    }
    return 1;
}

int em_server_recv(em_server *srv, em_request *req, int timeout_ms)
{
    for (;;) {
        follow_pipes(srv);
        expire_handshakes(srv);
        if (atomic_exchange(&srv->woken, 0)) return EMBER_ERR_TIMEOUT;
        nng_aio_set_timeout(srv->aio, timeout_ms);
        nng_recv_aio(srv->sock, srv->aio);
        if (atomic_load(&srv->woken)) nng_aio_cancel(srv->aio); /* woken just before */
        nng_aio_wait(srv->aio);
        int rv = nng_aio_result(srv->aio);
        if (rv == NNG_ETIMEDOUT) return EMBER_ERR_TIMEOUT;
        if (rv == NNG_ECANCELED && atomic_exchange(&srv->woken, 0)) return EMBER_ERR_TIMEOUT;
        if (rv != 0) return EMBER_ERR_CANCELLED;
        req->msg = nng_aio_get_msg(srv->aio);
        req->assembled = NULL;
        req->pipe = nng_pipe_id(nng_msg_get_pipe(req->msg));
        char why[256];
        if (em_frame_parse(nng_msg_body(req->msg), nng_msg_len(req->msg), &req->frame, why,
                           sizeof why) != EMBER_OK) {
            reject(srv, req, why);
            em_server_close_pipe(srv, req->pipe);
            em_server_drop(req);
            continue;
        }
        if (req->frame.type == EM_MSG_HELLO)
            answer_hello(srv, req);
        else if (req->frame.type == EM_MSG_AUTH)
            answer_auth(srv, req);
        else if (req->frame.type == EM_MSG_PART ? take_part(srv, req) == 1 && admit(srv, req)
                                                : admit(srv, req))
            return EMBER_OK;
    }
}
