/* em_driver.h -- the driver: the wire around the scheduler core.
 *
 * One thread runs em_driver_run: it receives validated requests from the server socket,
 * decodes them into scheduler events (em_sched.h), carries out the effects the scheduler
 * returns (tasks to a parked poll, a job's result to its parked submission, a connection to
 * close), feeds it the time, and publishes the status snapshot. The status view reads the
 * scheduler's state; the scheduler never calls it. The driver runs no user code.
 */
#ifndef EM_DRIVER_H
#define EM_DRIVER_H

#include <stdint.h>

#include "em_sched.h"
#include "em_server.h"
#include "em_stream.h"

typedef struct em_driver_config {
    char listen[256];      /* nng address for executors and submitters */
    char status[256];      /* host:port of the HTTP status endpoint ("" = off) */
    char kafka[1024];      /* default Kafka bootstrap announced to clients */
    char ready_file[1024]; /* written once listening: bound addresses */
    char state_dir[1024];  /* detached queries kept here (em_query_store.h; "" = not kept) */
    uint64_t max_message;  /* largest message accepted */
    uint64_t max_library;  /* largest job library accepted */
    em_secret secret;      /* the cluster secret (unset: connections are not authenticated,
                              which em_driver_start allows on loopback only) */
    em_tls_files tls;      /* its certificate and key, for tls+tcp:// and an HTTPS status */
    em_sched_config sched;
} em_driver_config;

/* em_parked_poll: an executor's Poll waiting for tasks or a heartbeat */
typedef struct em_parked_poll {
    em_exec_id ex;
    em_request req;
} em_parked_poll;

/* em_parked_job: a SubmitJob request waiting for its job to end */
typedef struct em_parked_job {
    em_job_id job;
    em_request reply;
} em_parked_job;

typedef struct em_libstore em_libstore;
typedef struct em_status em_status;
typedef struct em_stream_runner em_stream_runner;

typedef struct em_driver {
    em_driver_config cfg;
    char bound_url[256];
    em_server *srv;
    em_sched sched;
    em_libstore *libs;
    em_status *status;
    em_parked_poll *polls; /* executors' parked Polls, one each at most */
    size_t n_polls, cap_polls;
    em_parked_job *parked; /* SubmitJob requests of running jobs */
    size_t n_parked, cap_parked;
    em_streams streams;         /* streaming queries (em_stream.h) */
    int streams_ready;          /* streams initialized */
    em_stream_runner *runner;   /* the stream thread */
    uint64_t published;         /* sched.changes when the snapshot was last published */
    uint64_t published_streams; /* streams.changes then */
    int64_t snapshot_us;        /* when it was */
    int64_t snapshot_cost_us;   /* how long it took to render */
    int64_t ticked_us;          /* when the scheduler's timers were last looked at */
    volatile int stop;
} em_driver;

/* em_driver_config_defaults fills cfg with the documented defaults. */
void em_driver_config_defaults(em_driver_config *cfg);
/* em_driver_start opens the listener (and the status endpoint). On failure err says why;
 * call em_driver_stop either way. */
int em_driver_start(em_driver *d, char *err, size_t errlen);
/* em_driver_run serves until d->stop is set or the server is closed. */
void em_driver_run(em_driver *d);
void em_driver_stop(em_driver *d);

/* em_driver_wire.c: the messages the driver sends, built from the scheduler's state */
/* em_wire_send_tasks answers ex's parked poll with a Tasks effect. */
int em_wire_send_tasks(em_driver *d, em_request *poll, const em_effect *e);
/* em_wire_send_result answers a job's parked submission with its outcome. */
int em_wire_send_result(em_driver *d, em_request *reply, const em_job *job);

/* em_driver_stamp_job notes the wall-clock time a job was submitted (the scheduler keeps
 * monotonic time only), for people reading the status view. */
void em_driver_stamp_job(em_driver *d, em_job_id id);

/* em_driver_streams.c: streaming queries on the driver's side of the wire */
/* em_driver_query_request answers StartQuery, GetQuery and StopQuery. */
void em_driver_query_request(em_driver *d, em_request *req);
/* em_driver_submit_batches submits the batch jobs the stream thread prepared (the caller then
 * carries out the scheduler's effects). */
void em_driver_submit_batches(em_driver *d);
/* em_driver_restore_queries registers the detached queries kept in the state directory by an
 * earlier driver (em_query_store.h); they resume from their checkpoints. */
void em_driver_restore_queries(em_driver *d);

/* em_valid_text: a printable string of 1..max bytes, safe in JSON and logs unescaped */
int em_valid_text(const char *s, size_t max);

#endif
