/* em_status.h -- the driver's HTTP status endpoint (libmicrohttpd), read-only but for one
 * authenticated request: stopping a streaming query.
 *
 * The driver loop publishes a snapshot (em_status_publish, at most every 50 ms while things
 * change, else every second): one rendered document per path. HTTP handlers, on nng's
 * threads, copy a document under a short lock and never touch scheduler state, so requests
 * cannot slow scheduling down. Paths and documents: docs/status-api.md.
 */
#ifndef EM_STATUS_H
#define EM_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "em_sched.h"
#include "em_secret.h"
#include "em_stream.h"
#include "em_tls.h"

/* em_wire_counts: what the driver's server refused */
typedef struct em_wire_counts {
    uint64_t rejected;      /* messages: malformed, before the handshake, outside their role */
    uint64_t auth_failures; /* handshakes: wrong or missing proofs, too many connections */
} em_wire_counts;

typedef struct em_status em_status;

/* em_status_start serves HTTP on hostport ("host:port", port 0 picks one), HTTPS when tls
 * names a certificate. em_status_new makes one that serves nothing (its answers are asked for
 * with em_status_answer). */
em_status *em_status_new(void);
int em_status_start(em_status **out, const char *hostport, const em_tls_files *tls, char *err,
                    size_t errlen);
/* em_status_publish renders a new snapshot of the scheduler's state and of the streaming
 * queries (streams may be NULL); driver loop only. driver_url and the wire's counters go in
 * /api/v1/driver and /metrics. */
void em_status_publish(em_status *st, const em_sched *s, em_streams *streams,
                       const char *driver_url, const em_wire_counts *wire, int64_t now);
/* em_status_job_finished renders a finished job's documents once (before the scheduler
 * releases its tasks): its own, and its stages' summaries and task lists; they are served
 * for as long as the scheduler lists the job, and a snapshot only renders the running jobs.
 * Driver loop only. */
void em_status_job_finished(em_status *st, const em_job *job);
/* em_status_url is the endpoint's base URL (http://host:port). */
const char *em_status_url(const em_status *st);

/* em_http_answer: the answer to one HTTP request */
typedef struct em_http_answer {
    unsigned status;
    const char *type; /* Content-Type */
    char *body;       /* malloc'd (the caller frees), or NULL */
    size_t len;
    const char *allow;        /* the Allow header of a 405, else NULL */
    const char *authenticate; /* the WWW-Authenticate header of a 401, else NULL */
} em_http_answer;

/* em_status_answer answers a request (method, URL with any query, its Authorization header or
 * NULL) from the current snapshot; any thread. */
void em_status_answer(em_status *st, const char *method, const char *url, const char *authorization,
                      em_http_answer *a);
/* em_status_allow_stop turns on POST /api/v1/streaming/queries/NAME/stop, which calls
 * stop_query(arg, NAME) (any thread; returns 0 when there is no such query) for a request
 * carrying the stop token of `secret` (em_secret_token, EM_STOP_TOKEN_PURPOSE). Without a
 * secret it stays off (403). Call before requests come. */
void em_status_allow_stop(em_status *st, const em_secret *secret,
                          int (*stop_query)(void *arg, const char *name), void *arg);
void em_status_stop(em_status *st);

#endif
