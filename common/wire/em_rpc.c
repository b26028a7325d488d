/* em_rpc.c -- request/reply client over nng req0 (see em_rpc.h). */
#include "em_rpc.h"

#include <ember/ember.h>
#include <malloc.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "em_log.h"

#define EM_PROTOCOL_VERSION 2

void em_process_init(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* connections are bounded by each server's own limits, not by a low soft file limit */
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    /* setting the mmap threshold also pins glibc's trim threshold at 128 KiB: every batch of
     * freed buffers went back to the kernel and came back as page faults (bench/shuffle) */
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    /* one arena: a thread's own arena gives a heap back to the kernel as soon as it is all
     * free, so every message nng's I/O threads received (a shuffle bucket, a few MiB) came in
     * fresh pages, one page fault per 4 KiB (bench/shuffle: 537 MB of new pages per GiB
     * shuffled before, none after); small allocations still go through each thread's tcache
     * without the lock */
    mallopt(M_ARENA_MAX, 1);
}

int em_socket_limit(nng_socket sock, size_t max_recv)
{
    return nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, max_recv) == 0 ? EMBER_OK
                                                                       : EMBER_ERR_INVALID;
}

static int nng_to_ember(int rv)
{
    switch (rv) {
    case 0: return EMBER_OK;
    case NNG_ETIMEDOUT: return EMBER_ERR_TIMEOUT;
    case NNG_ENOMEM: return EMBER_ERR_NOMEM;
    case NNG_EMSGSIZE: return EMBER_ERR_TOO_LARGE;
    case NNG_ECANCELED: return EMBER_ERR_CANCELLED;
    default: return EMBER_ERR_CONNECT;
    }
}

/* chan_cb runs on an nng thread whenever the channel's aio completes. After a good send it
 * posts the receive at once, so the reply is taken (and a connection lost afterwards cannot
 * drop it) while the owner is busy elsewhere. nng_aio_wait returns only once the receive
 * posted here has completed too. */
static void chan_cb(void *arg)
{
    em_rpc_chan *ch = arg;
    if (ch->receiving) return;
    if (nng_aio_result(ch->aio) != 0) {
        nng_msg *req = nng_aio_get_msg(ch->aio); /* a failed send gives the request back */
        nng_aio_set_msg(ch->aio, NULL);
        if (req) nng_msg_free(req);
        ch->send_failed = 1;
        return;
    }
    ch->receiving = 1;
    nng_ctx_recv(ch->ctx, ch->aio);
}

int em_rpc_chan_open(em_rpc *rpc, em_rpc_chan *ch)
{
    memset(ch, 0, sizeof *ch);
    if (nng_ctx_open(&ch->ctx, rpc->sock) != 0) return EMBER_ERR_NOMEM;
    if (nng_aio_alloc(&ch->aio, chan_cb, ch) != 0) {
        ch->aio = NULL;
        nng_ctx_close(ch->ctx);
        return EMBER_ERR_NOMEM;
    }
    return EMBER_OK;
}

void em_rpc_chan_close(em_rpc_chan *ch)
{
    if (!ch->aio) return;
    nng_aio_stop(ch->aio); /* cancels a request in flight; no receive is posted after this */
    nng_msg *reply = nng_aio_get_msg(ch->aio); /* a reply nobody collected */
    if (reply) nng_msg_free(reply);
    nng_aio_free(ch->aio);
    ch->aio = NULL;
    nng_ctx_close(ch->ctx); /* forgets the request, and frees a reply nng still held */
}

void em_rpc_reply_free(em_rpc_reply *reply)
{
    if (reply->msg) nng_msg_free(reply->msg);
    reply->msg = NULL;
}

/* send_msg puts msg on its way on ch; the reply is awaited by wait_reply */
static void send_msg(em_rpc_chan *ch, nng_msg *msg, int timeout_ms)
{
    ch->receiving = 0;
    ch->send_failed = 0;
    nng_aio_set_timeout(ch->aio, timeout_ms < 0 ? NNG_DURATION_INFINITE : timeout_ms);
    nng_aio_set_msg(ch->aio, msg);
    nng_ctx_send(ch->ctx, ch->aio); /* chan_cb goes on from here */
}

static int wait_reply(em_rpc *rpc, em_rpc_chan *ch, em_rpc_reply *reply, char *err, size_t errlen);

/* part_msg builds the part of the frame `whole` (total bytes) at offset */
static int part_msg(nng_msg **out, const uint8_t *whole, size_t total, size_t offset)
{
    Ember__Part part = EMBER__PART__INIT;
    size_t len = total - offset < EM_PART_MAX ? total - offset : EM_PART_MAX;
    part.total = total;
    part.offset = offset;
    part.last = offset + len == total;
    em_iov iov = {whole + offset, len};
    return em_frame_new(out, EM_MSG_PART, &part.base, &iov, 1);
}

/* send_leading_parts sends every part of the frame *msg but the last, each acknowledged, and
 * replaces *msg with its last part (to be sent like any request) */
static int send_leading_parts(em_rpc *rpc, em_rpc_chan *ch, nng_msg **msg, int timeout_ms,
                              char *err, size_t errlen)
{
    nng_msg *whole = *msg, *part;
    size_t total = nng_msg_len(whole), offset = 0;
    int rc = EMBER_OK;
    for (; rc == EMBER_OK && total - offset > EM_PART_MAX; offset += EM_PART_MAX) {
        if ((rc = part_msg(&part, nng_msg_body(whole), total, offset)) != EMBER_OK) {
            snprintf(err, errlen, "cannot build a part: %s", ember_strerror(rc));
            break;
        }
        send_msg(ch, part, timeout_ms);
        em_rpc_reply ack = {0};
        if ((rc = wait_reply(rpc, ch, &ack, err, errlen)) == EMBER_OK &&
            ack.frame.type != EM_MSG_PART_ACK) {
            snprintf(err, errlen, "%s answered a part with %s", rpc->url,
                     em_msg_name(ack.frame.type));
            rc = EMBER_ERR_PROTOCOL;
        }
        em_rpc_reply_free(&ack);
    }
    if (rc == EMBER_OK && (rc = part_msg(&part, nng_msg_body(whole), total, offset)) != EMBER_OK)
        snprintf(err, errlen, "cannot build a part: %s", ember_strerror(rc));
    nng_msg_free(whole);
    if (rc == EMBER_OK) *msg = part;
    return rc;
}

int em_rpc_call_start(em_rpc *rpc, em_rpc_chan *ch, em_msg_type type, const ProtobufCMessage *pb,
                      const em_iov *data, size_t n_data, int timeout_ms, char *err, size_t errlen)
{
    /* the channel is already on rpc's socket */
    if (rpc->fail_fast && atomic_load(&rpc->had_pipe) && atomic_load(&rpc->pipes) == 0) {
        snprintf(err, errlen, "%s: the connection to %s is lost", em_msg_name(type), rpc->url);
        return EMBER_ERR_CONNECT;
    }
    nng_msg *req;
    int rc = em_frame_new(&req, type, pb, data, n_data);
    if (rc != EMBER_OK) {
        snprintf(err, errlen, "cannot build %s request: %s", em_msg_name(type), ember_strerror(rc));
        return rc;
    }
    ch->type = type;
    ch->pb = pb;
    ch->data = data;
    ch->n_data = n_data;
    ch->timeout_ms = timeout_ms;
    if (nng_msg_len(req) > EM_PART_MAX &&
        (rc = send_leading_parts(rpc, ch, &req, timeout_ms, err, errlen)) != EMBER_OK)
        return rc;
    send_msg(ch, req, timeout_ms);
    return EMBER_OK;
}

/* wait_reply waits for the reply to ch's request and validates its frame. */
static int wait_reply(em_rpc *rpc, em_rpc_chan *ch, em_rpc_reply *reply, char *err, size_t errlen)
{
    reply->msg = NULL;
    nng_aio_wait(ch->aio);
    int rv = nng_aio_result(ch->aio);
    if (rv != 0) {
        snprintf(err, errlen, "%s: %s", rpc->url,
                 !ch->send_failed && rv == NNG_ECONNRESET ? "connection lost" : nng_strerror(rv));
        return nng_to_ember(rv);
    }
    reply->msg = nng_aio_get_msg(ch->aio);
    nng_aio_set_msg(ch->aio, NULL);
    EM_ASSERT(ch->receiving && reply->msg);
    int rc = em_frame_parse(nng_msg_body(reply->msg), nng_msg_len(reply->msg), &reply->frame, err,
                            errlen);
    if (rc != EMBER_OK) {
        em_rpc_reply_free(reply);
        return rc;
    }
    if (reply->frame.type != EM_MSG_ERROR) return EMBER_OK;
    Ember__ErrorReply *er = em_frame_unpack(&reply->frame, EM_MSG_ERROR);
    rc = er && er->code < 0 ? er->code : EMBER_ERR_PROTOCOL;
    snprintf(err, errlen, "%s", er ? er->message : "unreadable error reply");
    em_pb_free(er);
    em_rpc_reply_free(reply);
    return rc;
}

/* prove answers the server's Challenge with our proof, once the server proved itself; on
 * EMBER_OK *reply is the server's answer to it */
static int prove(em_rpc *rpc, em_rpc_chan *ch, int timeout_ms, const uint8_t *client_nonce,
                 uint64_t session, em_rpc_reply *reply, char *err, size_t errlen)
{
    Ember__Challenge *c = em_frame_unpack(&reply->frame, EM_MSG_CHALLENGE);
    em_rpc_reply_free(reply);
    uint8_t want[EM_PROOF_LEN], proof[EM_PROOF_LEN];
    int rc = EMBER_ERR_UNAUTHENTICATED;
    if (!rpc->secret.set) {
        snprintf(err, errlen,
                 "%s requires the cluster secret, and this process has none: give it with "
                 "--secret-file or EMBER_SECRET_FILE (docs/security.md)",
                 rpc->url);
    } else if (!c || c->nonce.len != EM_NONCE_LEN) {
        snprintf(err, errlen, "%s sent an unreadable challenge", rpc->url);
    } else {
        em_auth_proof(&rpc->secret, 'S', rpc->role, session, client_nonce, c->nonce.data, want);
        rc = em_auth_proof_ok(c->proof.data, c->proof.len, want) ? EMBER_OK
                                                                 : EMBER_ERR_UNAUTHENTICATED;
        /* our proof goes even to a server that failed its own, so that it counts the failure:
         * it is bound to that server's nonce, which no real server of the cluster issued */
        em_auth_proof(&rpc->secret, 'C', rpc->role, session, client_nonce, c->nonce.data, proof);
        Ember__Auth a = EMBER__AUTH__INIT;
        a.proof = (ProtobufCBinaryData){EM_PROOF_LEN, proof};
        char why[512];
        int sent =
            em_rpc_call_start(rpc, ch, EM_MSG_AUTH, &a.base, NULL, 0, timeout_ms, why, sizeof why);
        if (sent == EMBER_OK) sent = wait_reply(rpc, ch, reply, why, sizeof why);
        if (rc != EMBER_OK) {
            em_rpc_reply_free(reply);
            snprintf(err, errlen,
                     "%s could not prove the cluster secret: it has another secret file", rpc->url);
        } else if (sent != EMBER_OK) {
            rc = sent;
            snprintf(err, errlen, "%s", why);
        }
    }
    em_pb_free(c);
    return rc;
}

/* hello goes through the handshake on ch (em_auth.h) */
static int hello(em_rpc *rpc, em_rpc_chan *ch, int timeout_ms, char *err, size_t errlen)
{
    Ember__Hello h = EMBER__HELLO__INIT;
    uint8_t nonce[EM_NONCE_LEN];
    h.protocol_version = EM_PROTOCOL_VERSION;
    h.role = rpc->role;
    h.session = rpc->session;
    if (rpc->secret.set) {
        if (!em_auth_nonce(nonce)) {
            snprintf(err, errlen, "no random bytes for the handshake");
            return EMBER_ERR_IO;
        }
        h.nonce = (ProtobufCBinaryData){EM_NONCE_LEN, nonce};
    }
    em_rpc_reply reply = {0};
    int rc = em_rpc_call_start(rpc, ch, EM_MSG_HELLO, &h.base, NULL, 0, timeout_ms, err, errlen);
    if (rc == EMBER_OK) rc = wait_reply(rpc, ch, &reply, err, errlen);
    if (rc == EMBER_OK && reply.frame.type == EM_MSG_CHALLENGE)
        rc = prove(rpc, ch, timeout_ms, nonce, h.session, &reply, err, errlen);
    else if (rc == EMBER_OK && rpc->secret.set) {
        snprintf(err, errlen,
                 "%s does not authenticate connections (started without the cluster secret?)",
                 rpc->url);
        em_rpc_reply_free(&reply);
        rc = EMBER_ERR_UNAUTHENTICATED;
    }
    if (rc != EMBER_OK) return rc;
    Ember__HelloReply *hr = em_frame_unpack(&reply.frame, EM_MSG_HELLO_REPLY);
    if (!hr || hr->protocol_version != EM_PROTOCOL_VERSION) {
        snprintf(err, errlen,
                 "%s: unexpected answer to Hello (not an ember server of protocol %d?)", rpc->url,
                 EM_PROTOCOL_VERSION);
        rc = EMBER_ERR_PROTOCOL;
    } else {
        snprintf(rpc->kafka, sizeof rpc->kafka, "%s", hr->kafka_bootstrap);
        rpc->session = hr->session;
    }
    em_pb_free(hr);
    em_rpc_reply_free(&reply);
    return rc;
}

int em_rpc_call_finish(em_rpc *rpc, em_rpc_chan *ch, em_rpc_reply *reply, char *err, size_t errlen)
{
    int rc = wait_reply(rpc, ch, reply, err, errlen);
    if (rc != EMBER_ERR_UNAUTHENTICATED) return rc;
    /* the connection was re-established since our Hello: say it again, then retry once */
    em_rpc_chan req = *ch; /* the request, which hello's own call replaces */
    if ((rc = hello(rpc, ch, req.timeout_ms, err, errlen)) != EMBER_OK) return rc;
    rc = em_rpc_call_start(rpc, ch, req.type, req.pb, req.data, req.n_data, req.timeout_ms, err,
                           errlen);
    return rc == EMBER_OK ? wait_reply(rpc, ch, reply, err, errlen) : rc;
}

int em_rpc_call(em_rpc *rpc, em_rpc_chan *ch, em_msg_type type, const ProtobufCMessage *pb,
                const em_iov *data, size_t n_data, int timeout_ms, em_rpc_reply *reply, char *err,
                size_t errlen)
{
    reply->msg = NULL;
    int rc = em_rpc_call_start(rpc, ch, type, pb, data, n_data, timeout_ms, err, errlen);
    return rc == EMBER_OK ? em_rpc_call_finish(rpc, ch, reply, err, errlen) : rc;
}

/* pipe_event counts the socket's connections (nng_pipe_notify, on an nng thread) */
static void pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    (void)pipe;
    em_rpc *rpc = arg;
    if (ev == NNG_PIPE_EV_ADD_POST) {
        atomic_fetch_add(&rpc->pipes, 1);
        atomic_store(&rpc->had_pipe, 1);
    } else if (ev == NNG_PIPE_EV_REM_POST)
        atomic_fetch_sub(&rpc->pipes, 1);
}

/* dial connects sock to url, through TLS when tls is set; waits for the connection */
static int dial(nng_socket sock, const char *url, nng_tls_config *tls)
{
    nng_dialer d;
    int rv = nng_dialer_create(&d, sock, url);
    if (rv == 0 && tls) rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls);
    if (rv == 0) rv = nng_dialer_start(d, 0);
    return rv;
}

int em_rpc_open(em_rpc *rpc, const char *url, const em_rpc_opts *opts, char *err, size_t errlen)
{
    memset(rpc, 0, sizeof *rpc);
    snprintf(rpc->url, sizeof rpc->url, "%s", url);
    snprintf(rpc->role, sizeof rpc->role, "%s", opts->role);
    if (opts->secret) rpc->secret = *opts->secret;
    size_t max_recv = opts->max_recv;
    int connect_timeout_ms = opts->connect_timeout_ms;
    int rv = nng_req0_open(&rpc->sock);
    if (rv != 0) {
        snprintf(err, errlen, "cannot open socket: %s", nng_strerror(rv));
        return EMBER_ERR_NOMEM;
    }
    em_socket_limit(rpc->sock, max_recv);
    nng_socket_set_ms(rpc->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_ms(rpc->sock, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(rpc->sock, NNG_OPT_RECONNMAXT, 1000);
    rpc->fail_fast = opts->fail_fast;
    nng_pipe_notify(rpc->sock, NNG_PIPE_EV_ADD_POST, pipe_event, rpc);
    nng_pipe_notify(rpc->sock, NNG_PIPE_EV_REM_POST, pipe_event, rpc);
    int rc = EMBER_ERR_CONNECT;
    nng_time deadline = nng_clock() + (nng_time)(connect_timeout_ms > 0 ? connect_timeout_ms : 0);
    nng_tls_config *tls = NULL;
    static const em_tls_files no_tls;
    if ((rc = em_tls_client_config(opts->tls ? opts->tls : &no_tls, url, &tls, err, errlen)) !=
        EMBER_OK) {
        nng_close(rpc->sock);
        return rc;
    }
    rc = EMBER_ERR_CONNECT;
    for (;;) {
        rv = dial(rpc->sock, url, tls);
        if (rv == 0) break;
        if (rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP || rv == NNG_ECRYPTO || rv == NNG_EPEERAUTH ||
            (rv == NNG_ECONNREFUSED && opts->fail_fast) || nng_clock() >= deadline) {
            snprintf(err, errlen, "cannot reach %s: %s", url,
                     rv == NNG_ECRYPTO || rv == NNG_EPEERAUTH
                         ? "TLS handshake failed (is its certificate signed by --tls-ca, for this "
                           "host name?)"
                         : nng_strerror(rv));
            if (rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP) rc = EMBER_ERR_INVALID;
            if (rv == NNG_ECRYPTO || rv == NNG_EPEERAUTH) rc = EMBER_ERR_UNAUTHENTICATED;
            if (tls) nng_tls_config_free(tls);
            nng_close(rpc->sock);
            return rc;
        }
        nng_msleep(100);
    }
    if (tls) nng_tls_config_free(tls); /* the dialer holds its own reference */
    em_rpc_chan ch = {0};
    if ((rc = em_rpc_chan_open(rpc, &ch)) == EMBER_OK) {
        rc = hello(rpc, &ch, connect_timeout_ms > 0 ? connect_timeout_ms : 5000, err, errlen);
        em_rpc_chan_close(&ch);
    }
    if (rc != EMBER_OK) nng_close(rpc->sock);
    return rc;
}

void em_rpc_close(em_rpc *rpc)
{
    nng_close(rpc->sock);
    memset(&rpc->secret, 0, sizeof rpc->secret);
}
