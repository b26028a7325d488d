/* em_server.h -- the serving side of ember's request/reply wire (driver, executor blocks).
 *
 * An em_server is a raw rep0 socket listening on one address. It hands its owner only
 * requests that are whole frames with a good checksum, on connections that said Hello first;
 * it answers Hello itself, asking the owner's hello hook (if any) whether to accept it and
 * which session the connection belongs to. A malformed frame is logged, counted and costs the
 * sender its connection; a request before Hello gets EMBER_ERR_UNAUTHENTICATED. Replies may
 * be sent later than the request arrived (long polls, job completion): a request keeps its
 * routing header until em_server_reply.
 *
 * Threads: one owner thread calls em_server_recv/reply; nng's threads only queue pipe
 * events, which the owner drains with em_server_closed_pipes.
 */
#ifndef EM_SERVER_H
#define EM_SERVER_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdint.h>

#include "em_frame.h"

typedef struct em_server em_server;

/* em_request: one validated request. Owns msg until replied to or dropped. */
typedef struct em_request {
    nng_msg *msg;     /* routing header + frame */
    uint32_t pipe;    /* connection id */
    uint64_t session; /* the connection's session, as its Hello settled it */
    em_frame frame;   /* points into msg */
} em_request;

/* em_conn: a connection that said Hello, and its session */
typedef struct em_conn {
    uint32_t pipe;
    uint64_t session;
} em_conn;

/* em_hello_fn decides on a Hello (owner thread): it returns EMBER_OK to accept the
 * connection, with its session in *session and the reply's other fields filled in, or an
 * error code (the connection is then refused with that code and err). */
typedef int (*em_hello_fn)(void *arg, const Ember__Hello *hello, Ember__HelloReply *reply,
                           uint64_t *session, char *err, size_t errlen);

/* em_server_open listens on url ("tcp://127.0.0.1:0" picks a free port); bound_url gets the
 * address actually bound. */
int em_server_open(em_server **out, const char *url, size_t max_recv, char *bound_url,
                   size_t bound_len, char *err, size_t errlen);
/* em_server_on_hello sets the hook that decides on each Hello (none: every Hello of the right
 * protocol is accepted, with session 0). */
void em_server_on_hello(em_server *srv, em_hello_fn fn, void *arg);
/* em_server_stop makes the owner's em_server_recv return EMBER_ERR_CANCELLED; any thread may
 * call it. em_server_close frees the server once the owner no longer uses it (after a stop
 * and a join, or from the owner itself). */
void em_server_stop(em_server *srv);
void em_server_close(em_server *srv);

/* em_server_recv waits up to timeout_ms for the next request.
 * Returns EMBER_OK, EMBER_ERR_TIMEOUT, or EMBER_ERR_CANCELLED once closed. */
int em_server_recv(em_server *srv, em_request *req, int timeout_ms);

/* em_server_reply sends a reply frame for req and releases it. */
int em_server_reply(em_server *srv, em_request *req, em_msg_type type, const ProtobufCMessage *pb,
                    const em_iov *data, size_t n_data);
/* em_server_reply_error answers with an ErrorReply (code, printf message). */
int em_server_reply_error(em_server *srv, em_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* em_server_drop releases a request without answering (its client then times out). */
void em_server_drop(em_request *req);

/* em_server_closed moves up to max connections closed since the last call (those that had
 * said Hello, with their sessions; pipe ids only for the others, session 0). */
int em_server_closed(em_server *srv, em_conn *out, int max);
/* em_server_session_connected: some open connection said Hello with this session. */
int em_server_session_connected(em_server *srv, uint64_t session);
/* em_server_close_pipe ends one connection (a misbehaving peer). */
void em_server_close_pipe(em_server *srv, uint32_t pipe);
/* em_server_close_session ends every connection of a session. */
void em_server_close_session(em_server *srv, uint64_t session);
/* em_server_rejected counts frames refused (malformed, unauthenticated, unexpected). */
uint64_t em_server_rejected(em_server *srv);

#endif
