/* em_server.h -- the serving side of ember's request/reply wire (driver, executor blocks).
 *
 * An em_server is a raw rep0 socket listening on one address. It hands its owner only
 * requests that are whole frames with a good checksum, on connections that finished the
 * handshake (em_auth.h), from a role allowed to send them. It answers the handshake itself,
 * asking the owner's hello hook (if any) whether to accept a connection and which session it
 * belongs to. A malformed frame, a failed proof, or a handshake not finished within
 * handshake_ms costs the sender its connection; a request before Hello gets
 * EMBER_ERR_UNAUTHENTICATED (a client that reconnected says Hello again); a message outside
 * the connection's role is refused. Each of these is logged (rate-limited) and counted.
 * Replies may be sent later than the request arrived (long polls, job completion): a request
 * keeps its routing header until em_server_reply.
 *
 * Threads: one owner thread calls em_server_recv/reply; nng's threads only queue pipe
 * events, which the owner drains.
 */
#ifndef EM_SERVER_H
#define EM_SERVER_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdint.h>

#include "em_auth.h"
#include "em_frame.h"
#include "em_tls.h"

typedef struct em_server em_server;

/* em_request: one validated request. Owns msg until replied to or dropped. */
typedef struct em_request {
    nng_msg *msg;       /* routing header + frame (of the last part, for one that came in
                           parts) */
    uint8_t *assembled; /* the whole frame of a request that came in parts (owned), or NULL */
    uint32_t pipe;      /* connection id */
    uint64_t session;   /* the connection's session, as its Hello settled it */
    em_role role;       /* the connection's role */
    em_frame frame;     /* points into msg */
} em_request;

/* em_conn: a connection, and what its handshake settled */
typedef struct em_conn {
    uint32_t pipe;
    uint64_t session;
    em_role role;
    int state;                       /* NEW, CHALLENGED, READY (em_server.c) */
    int64_t since_ms;                /* when it was seen first */
    uint64_t wanted_session;         /* the session its Hello asked for */
    uint8_t nonces[2][EM_NONCE_LEN]; /* client's, server's: while CHALLENGED */
    uint8_t *parts;                  /* a frame coming in parts (owned), or NULL */
    size_t parts_len, parts_total;
    int64_t parts_since_ms; /* when its first part came */
} em_conn;

/* em_server_opts: how a server admits connections */
typedef struct em_server_opts {
    size_t max_recv;         /* largest request accepted; one over EM_PART_MAX comes in parts,
                                each a message of its own (em_frame.h) */
    const em_secret *secret; /* the cluster secret; NULL or unset: no authentication */
    unsigned roles;          /* the em_role bits it serves */
    uint32_t handshake_ms;   /* a connection not through its handshake by then is closed
                                (0: 10000) */
    uint32_t max_conns;      /* connections at once (0: 1024); more are closed at once */
    const em_tls_files *tls; /* for a tls+tcp:// url: its certificate and key (em_tls.h) */
} em_server_opts;

/* em_hello_fn decides on a connection that passed the handshake (owner thread): it returns
 * EMBER_OK to accept it, with its session in *session (wanted: the session the client asked
 * to resume, 0 for a new one) and the reply's other fields filled in, or an error code (the
 * connection is then refused with that code and err). */
typedef int (*em_hello_fn)(void *arg, em_role role, uint64_t wanted, Ember__HelloReply *reply,
                           uint64_t *session, char *err, size_t errlen);

/* em_server_open listens on url ("tcp://127.0.0.1:0" picks a free port); bound_url gets the
 * address actually bound. */
int em_server_open(em_server **out, const char *url, const em_server_opts *opts, char *bound_url,
                   size_t bound_len, char *err, size_t errlen);
/* em_server_on_hello sets the hook that decides on each connection (none: every one that
 * passed the handshake is accepted, with session 0). */
void em_server_on_hello(em_server *srv, em_hello_fn fn, void *arg);
/* em_server_stop makes the owner's em_server_recv return EMBER_ERR_CANCELLED; any thread may
 * call it. em_server_close frees the server once the owner no longer uses it (after a stop
 * and a join, or from the owner itself). */
void em_server_stop(em_server *srv);
/* em_server_wake makes the owner's em_server_recv return now (EMBER_ERR_TIMEOUT), or the next
 * one at once; any thread may call it, for work that came from elsewhere than the wire. */
void em_server_wake(em_server *srv);
void em_server_close(em_server *srv);

/* em_server_recv waits up to timeout_ms for the next request.
 * Returns EMBER_OK, EMBER_ERR_TIMEOUT (also when woken), or EMBER_ERR_CANCELLED once closed. */
int em_server_recv(em_server *srv, em_request *req, int timeout_ms);

/* em_server_reply sends a reply frame for req and releases it. */
int em_server_reply(em_server *srv, em_request *req, em_msg_type type, const ProtobufCMessage *pb,
                    const em_iov *data, size_t n_data);
/* em_server_reply_error answers with an ErrorReply (code, printf message). */
int em_server_reply_error(em_server *srv, em_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* em_server_drop releases a request without answering (its client then times out). */
void em_server_drop(em_request *req);

/* em_server_closed moves up to max connections closed since the last call (a connection that
 * never finished its handshake has session 0 and role none). */
int em_server_closed(em_server *srv, em_conn *out, int max);
/* em_server_session_connected: some open connection finished its handshake with session. */
int em_server_session_connected(em_server *srv, uint64_t session);
/* em_server_close_pipe ends one connection (a misbehaving peer). */
void em_server_close_pipe(em_server *srv, uint32_t pipe);
/* em_server_close_session ends every connection of a session. */
void em_server_close_session(em_server *srv, uint64_t session);
/* em_url_is_local: url can be reached from this host only (loopback or inproc://) */
int em_url_is_local(const char *url);

/* em_server_rejected counts frames refused (malformed, before Hello, outside their role);
 * em_server_auth_failures counts handshakes that failed (a wrong or missing proof, too
 * late, too many connections). */
uint64_t em_server_rejected(em_server *srv);
uint64_t em_server_auth_failures(em_server *srv);

#endif
