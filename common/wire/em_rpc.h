/* em_rpc.h -- request/reply over nng for ember's clients (executors and ember-submit).
 *
 * One em_rpc is one req socket dialed to a server (the driver, or another executor). Every
 * connection starts with Hello; em_rpc_call redoes the Hello once by itself when the server
 * says the connection is unknown (after a reconnect). Requests are never resent by nng: a
 * dropped connection fails the pending call with EMBER_ERR_CONNECT. A call started while the
 * connection is down waits for nng to reconnect (within its timeout), unless the client was
 * opened with fail_fast: then it fails at once (a peer executor that is gone does not come
 * back; the driver computes its blocks again).
 *
 * A call is em_rpc_call_start (build and send) then em_rpc_call_finish (wait for the reply and
 * validate it); em_rpc_call does both. Between the two the request is in flight on its channel
 * (nng sends it and receives the reply by itself), so one thread may keep several requests in
 * flight, one per channel, and collect the replies in any order.
 *
 * Threads: em_rpc_call may be called from several threads at once, each with its own
 * em_rpc_chan (a channel is one outstanding request; channels are not shared).
 */
#ifndef EM_RPC_H
#define EM_RPC_H

#include <nng/nng.h>
#include <stddef.h>
#include <stdint.h>

#include "em_auth.h"
#include "em_frame.h"
#include "em_tls.h"

typedef struct em_rpc {
    nng_socket sock;  /* req0 socket */
    char url[256];    /* server address */
    char role[16];    /* sent in Hello */
    em_secret secret; /* the cluster secret (unset: none) */
    char kafka[256];  /* the server's default Kafka bootstrap, from HelloReply */
    /* the session the server gave this client at its first Hello, said again in every later
     * Hello (after a reconnect) so that the server knows it is the same client; written by
     * whichever thread says Hello, read by any */
    _Atomic uint64_t session;
    _Atomic int pipes;    /* connections up now (nng's pipe events) */
    _Atomic int had_pipe; /* one was up once */
    int fail_fast;        /* em_rpc_opts.fail_fast */
} em_rpc;

/* em_rpc_chan: one request context and its aio, and the request in flight on it. The aio's
 * callback (an nng thread) posts the receive once the send is done; the owner reads the
 * fields below only after nng_aio_wait. An open channel must not move in memory. */
typedef struct em_rpc_chan {
    nng_ctx ctx;
    nng_aio *aio;    /* NULL: closed */
    int receiving;   /* the aio's operation: 0 the send, 1 the receive */
    int send_failed; /* the send failed: nng_aio_result is the send's */
    /* the request in flight, kept to send it again after a re-Hello (not owned) */
    em_msg_type type;
    const ProtobufCMessage *pb;
    const em_iov *data;
    size_t n_data;
    int timeout_ms;
} em_rpc_chan;

/* em_rpc_reply: a validated reply; frame points into msg. */
typedef struct em_rpc_reply {
    nng_msg *msg;
    em_frame frame;
} em_rpc_reply;

/* em_rpc_opts: how a client connects */
typedef struct em_rpc_opts {
    const char *role;        /* said in Hello: "submitter", "executor", "supervisor", "peer" */
    size_t max_recv;         /* largest reply accepted */
    int connect_timeout_ms;  /* how long to wait for the server at first */
    const em_secret *secret; /* the cluster secret (NULL or unset: none) */
    const em_tls_files *tls; /* for a tls+tcp:// url: the CA to verify the server (em_tls.h) */
    int fail_fast; /* a refused dial, and a call while the connection is down, fail at once */
} em_rpc_opts;

/* em_rpc_open dials `url` (waiting up to connect_timeout_ms for the server) and goes through
 * the handshake (em_auth.h): with a secret, the server must prove it too. On failure nothing
 * is left open and err says why. The em_rpc must not move in memory while open. */
int em_rpc_open(em_rpc *rpc, const char *url, const em_rpc_opts *opts, char *err, size_t errlen);
void em_rpc_close(em_rpc *rpc);

/* em_rpc_chan_open opens a channel on rpc's socket. em_rpc_chan_close accepts a closed (or
 * zeroed) channel; a request still in flight is cancelled and its reply, if any, freed. */
int em_rpc_chan_open(em_rpc *rpc, em_rpc_chan *ch);
void em_rpc_chan_close(em_rpc_chan *ch);

/* em_rpc_call sends one request and waits for its reply (timeout_ms < 0: no limit).
 * An ErrorReply from the server becomes its code and message (in err). On success the caller
 * owns reply->msg (em_rpc_reply_free). */
int em_rpc_call(em_rpc *rpc, em_rpc_chan *ch, em_msg_type type, const ProtobufCMessage *pb,
                const em_iov *data, size_t n_data, int timeout_ms, em_rpc_reply *reply, char *err,
                size_t errlen);
/* em_rpc_call_start builds the request and sends it on ch without waiting (timeout_ms applies
 * to the send, then to the reply). On EMBER_OK the request is in flight: call
 * em_rpc_call_finish, or em_rpc_chan_close to abandon it; pb and data must stay valid until
 * then (a re-Hello sends them again). On failure nothing is in flight and err says why. */
int em_rpc_call_start(em_rpc *rpc, em_rpc_chan *ch, em_msg_type type, const ProtobufCMessage *pb,
                      const em_iov *data, size_t n_data, int timeout_ms, char *err, size_t errlen);
/* em_rpc_call_finish waits for the reply of ch's request and validates it like em_rpc_call
 * (which it then is): bad frames and ErrorReply become a code and err; UNAUTHENTICATED makes
 * it say Hello again and resend the request once, synchronously. */
int em_rpc_call_finish(em_rpc *rpc, em_rpc_chan *ch, em_rpc_reply *reply, char *err, size_t errlen);
void em_rpc_reply_free(em_rpc_reply *reply);

/* em_socket_limit sets the maximum message size a socket accepts (nng's default is none). */
int em_socket_limit(nng_socket sock, size_t max_recv);

/* em_process_init prepares a daemon or tool: SIGPIPE ignored, the soft limit on open files
 * raised to the hard one, large nng messages kept out of
 * glibc's mmap path (see FACTS.md: 8 MiB mmap threshold), and up to 256 MiB of freed heap
 * kept in the process rather than returned to the kernel and faulted in again. */
void em_process_init(void);

#endif
