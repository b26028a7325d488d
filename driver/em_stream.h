/* em_stream.h -- streaming queries in the driver: the registry, each query's batch cycle, and
 * the plan of a batch's offsets.
 *
 * A query is a graph whose source is a Kafka stream (docs/streaming.md). The driver runs it
 * as a cycle of batches, each an ordinary job of em_sched:
 *
 *   IDLE --trigger--> SUBMIT --loop submits--> RUNNING --job ends--> DONE --commit--> IDLE
 *
 * Two threads share the registry under its lock. The stream thread (em_stream_runner.c) does
 * the I/O of the cycle: it reads the topic's watermarks, plans the batch (em_stream_plan),
 * writes it to the checkpoint's offsets log, builds its job (SUBMIT), and once the job ended
 * commits the output and writes the commits log (DONE -> IDLE). The driver loop owns em_sched:
 * it submits SUBMIT batches and reports their jobs' ends (em_streams_take_submit,
 * em_streams_job_started, em_streams_job_done). Neither waits for the other: each hands the
 * query over and wakes the other (the thread's condition variable, the loop's wake hook).
 * Nothing here does I/O.
 */
#ifndef EM_STREAM_H
#define EM_STREAM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "em_rate.h"
#include "em_sched.h"
#include "ember.pb-c.h"

#define EM_QUERY_NAME_MAX   127
#define EM_QUERY_RECENT     64 /* batches kept per query for the status view */
#define EM_QUERY_MIN_MS     10
#define EM_QUERIES_MAX      64
#define EM_VIEW_PARTITIONS  256 /* partitions whose lag the status view shows */
#define EM_BATCH_PARTITIONS 32  /* partitions whose lag each batch in the view keeps */

typedef enum em_query_state {
    EM_QUERY_STARTING, /* the stream thread is opening its checkpoint */
    EM_QUERY_RUNNING,
    EM_QUERY_STOPPED, /* stopped on request, or with its submitter; output complete */
    EM_QUERY_FAILED,  /* error says why */
} em_query_state;

typedef enum em_batch_phase {
    EM_BATCH_IDLE,    /* waiting for the trigger at due_us */
    EM_BATCH_SUBMIT,  /* planned and logged; `submit` waits for the loop */
    EM_BATCH_RUNNING, /* its job runs */
    EM_BATCH_DONE,    /* its job ended (job_code): the stream thread commits or fails */
} em_batch_phase;

/* em_stream_range: the offsets [from, until) of one partition in one batch */
typedef struct em_stream_range {
    int32_t partition;
    int64_t from, until;
} em_stream_range;

/* em_sink_marks: where a Kafka sink's partitions ended when a batch was planned (`from` of
 * each; nothing of the batch can be before), and whether the batch may have run before (a
 * replay after a restart: its tasks read back what it wrote, em_kafka_fence.c) */
typedef struct em_sink_marks {
    em_stream_range *marks;
    size_t n;
    int replay;
} em_sink_marks;

/* em_partition_lag: records of one partition behind the topic's end */
typedef struct em_partition_lag {
    int32_t partition;
    int64_t lag;
} em_partition_lag;

/* em_event_times: what a batch's windows' watermarks follow: the largest event time of the
 * batches before it (applied: a window node's watermark is applied minus its delay), and what
 * the batch before it applied (its windows final up to there were emitted already).
 * EM_NO_WATERMARK: no event time seen yet. */
typedef struct em_event_times {
    int64_t applied, previous;
    int64_t batch_time_ms; /* the batch's trigger (wall clock): keyed state's time-to-live */
} em_event_times;

/* em_batch_stats: one completed batch, for the status view (em_batch_total_us: planning to
 * commit) */
typedef struct em_batch_stats {
    int64_t batch;
    int64_t started_unix_ms;
    int64_t records_in, records_out;
    int64_t plan_us;                 /* watermarks read and offsets planned */
    int64_t log_us;                  /* the offsets log written */
    int64_t queue_us;                /* from submitted to the loop to the job's start */
    int64_t run_us;                  /* the job */
    int64_t commit_us;               /* output committed and the commits log written */
    int64_t delay_us;                /* how late the batch started after its trigger (0: on time) */
    int64_t lag;                     /* records left behind the topic's end when it was planned */
    int64_t watermark_ms;            /* its first window's watermark (EM_NO_WATERMARK: none) */
    int64_t event_time_max;          /* the largest event time it read (EM_NO_WATERMARK: none) */
    int64_t late_records;            /* records it found behind the watermark */
    int64_t state_keys, state_bytes; /* map_with_state: kept after it */
    int64_t state_expired;           /* map_with_state: keys it dropped for their TTL */
    int64_t latency_p50_ms, latency_p99_ms;         /* its records' end-to-end latency (-1: none) */
    uint32_t partitions;                            /* partitions it was planned over */
    em_partition_lag part_lag[EM_BATCH_PARTITIONS]; /* the first ones' lag when planned */
} em_batch_stats;

int64_t em_batch_total_us(const em_batch_stats *b);

typedef struct em_query {
    uint64_t id;
    char name[EM_QUERY_NAME_MAX + 1];
    char submitter[128];
    char checkpoint[1024];
    em_session_id owner;   /* the submitter whose session it ends with (0: detached) */
    int kept;              /* detached and kept in the driver's state directory, until it ends */
    em_session_id session; /* the session its batch jobs run in */
    uint32_t interval_ms;
    /* the query's graph (owned), its stream node and sink */
    Ember__JobGraph *graph;
    int32_t stream_node;
    int64_t created_unix_ms;

    em_query_state state;
    int stop_requested;
    char error[1024];  /* FAILED: why */
    char warning[512]; /* a passing problem, e.g. the broker out of reach ("" when none) */

    /* the batch cycle */
    em_batch_phase phase;
    int64_t due_us;          /* IDLE: the next trigger */
    int64_t batch;           /* the batch planned, running or being committed */
    em_stream_range *ranges; /* its offsets (owned) */
    size_t n_ranges;
    Ember__SubmitJob *submit; /* SUBMIT: the batch's job, until the loop takes it */
    em_job_id job;            /* RUNNING: its job */
    int job_code;             /* DONE: EMBER_OK or why the job failed (job_error) */
    char job_error[1024];
    em_batch_stats current; /* the batch's figures so far */
    int64_t submit_us, run_start_us;

    /* event time, in queries with windows */
    int64_t window_delay_ms; /* the first window's allowed delay (-1: no windows) */
    int64_t event_time_max;  /* the largest event time of the committed batches */
    em_event_times times;    /* what the batch planned last applied */

    /* back-pressure */
    int backpressure;           /* the adaptive rate bounds each batch */
    em_rate rate;               /* its estimate, updated by every committed batch */
    em_partition_lag *part_lag; /* each partition's lag at the last trigger (owned) */
    size_t n_part_lag;

    /* progress of this run */
    uint64_t triggers;      /* triggers that read the topic's watermarks, with or without news */
    int64_t last_committed; /* -1: none */
    uint64_t batches;
    int64_t records_in, records_out, lag, late_records, state_expired;
    em_accs accs;       /* accumulator totals of its committed batches (a flow's per-node
                           counts: since this driver started it) */
    em_accs batch_accs; /* the finished batch job's, until the batch is committed */
    em_batch_stats recent[EM_QUERY_RECENT]; /* ring, recent_next is the oldest slot */
    size_t n_recent, recent_next;

    struct em_query_io *io; /* the stream thread's own (its Kafka handle...), or NULL */

    struct em_query *next;
} em_query;

typedef struct em_streams {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* the stream thread waits on it */
    em_query *queries;      /* newest first */
    size_t n_queries;
    uint64_t next_id;
    int stopping;                 /* the stream thread is to end */
    _Atomic uint64_t changes;     /* bumped on every change the status view shows (the driver loop
                                     reads it without the lock) */
    const char *state_dir;        /* where detached queries are kept (NULL: not kept) */
    void (*wake_loop)(void *arg); /* tells the driver loop a batch waits to be submitted */
    void *wake_arg;
} em_streams;

/* em_stream_plan cuts the next batch of one partition: from its last batch's end `from` (-1:
 * none yet: `low` when earliest, else `high`), up to `high`, at most `cap` records (0: no cap).
 * *lag gets the records left after the batch. Returns the batch's range. */
em_stream_range em_stream_plan(int32_t partition, int64_t from, int64_t low, int64_t high,
                               int earliest, int64_t cap, int64_t *lag);

/* registry ---------------------------------------------------------------------------------- */
void em_streams_init(em_streams *s);
void em_streams_fini(em_streams *s); /* after the stream thread ended */

/* em_query_watermark: a window's watermark when the largest event time is `max` */
int64_t em_query_watermark(int64_t max, int64_t delay_ms);
/* em_query_first_watermark: the watermark of q's first window when the largest event time is
 * `max` (EM_NO_WATERMARK: no windows, or no event time) */
int64_t em_query_first_watermark(const em_query *q, int64_t max);
/* em_query_windows_due: whether a batch applying event times `next` would make a window of
 * g final that one applying `last` did not (an idle topic's windows close by no-data batches) */
int em_query_windows_due(const Ember__JobGraph *g, int64_t last, int64_t next);

/* em_streams_start registers a query from a validated StartQuery (taken over on EMBER_OK),
 * owned by session `owner` unless detached; the stream thread opens it next. A query of the
 * same name that still runs is an error; one that ended is replaced. */
int em_streams_start(em_streams *s, Ember__StartQuery *q, int32_t stream_node, em_session_id owner,
                     int64_t now_unix_ms, char *err, size_t errlen);
/* em_streams_live: whether a query of that name runs (or is starting) */
int em_streams_live(em_streams *s, const char *name);
/* em_streams_stop asks a query to stop after its running batch; 0 if there is none by name */
int em_streams_stop(em_streams *s, const char *name);
/* em_streams_owner_gone stops the client-mode queries of a submitter session that ended */
void em_streams_owner_gone(em_streams *s, em_session_id owner);
/* em_streams_status fills a QueryStatus of the named query (strings copied into its buffers) */
typedef struct em_query_status_buf {
    Ember__QueryStatus msg;
    char name[EM_QUERY_NAME_MAX + 1], state[16], error[1024], warning[512];
    em_acc accs[EM_ACCS_MAX]; /* the accumulators msg points into */
    Ember__Accumulator acc_items[EM_ACCS_MAX], *acc_ptrs[EM_ACCS_MAX];
} em_query_status_buf;
void em_streams_status(em_streams *s, const char *name, em_query_status_buf *out);
const char *em_query_state_name(em_query_state st);

/* em_query_view: a copy of a query's state for the status view, made under the lock */
typedef struct em_query_view {
    uint64_t id;
    char name[EM_QUERY_NAME_MAX + 1], submitter[128], checkpoint[1024];
    char topic[256], sink[1024], sink_kind[8]; /* "files", "kafka" or "redis" */
    char state[16], error[1024], warning[512], phase[12];
    int detached;
    uint32_t interval_ms;
    int64_t created_unix_ms;
    int64_t batch; /* the batch planned, running or being committed (last_committed + 1 when
                      idle) */
    int64_t last_committed, records_in, records_out, lag;
    int64_t window_delay_ms; /* -1: no windows */
    int64_t watermark_ms;    /* of the first window, as of the last batch (EM_NO_WATERMARK: none) */
    int64_t event_time_max, late_records;
    int64_t state_keys, state_bytes, state_expired; /* keyed state: as of the last batch; dropped */
    int backpressure;
    double rate_limit; /* the adaptive rate, records/s (0: none yet, or no back-pressure) */
    em_partition_lag part_lag[EM_VIEW_PARTITIONS];
    size_t n_part_lag; /* the first EM_VIEW_PARTITIONS partitions */
    uint64_t batches, triggers;
    double input_rate;      /* records/s arriving, over the kept batches */
    double processing_rate; /* records/s the batches' jobs processed, over their run time */
    em_batch_stats recent[EM_QUERY_RECENT]; /* oldest first */
    size_t n_recent;
    em_acc accs[EM_ACCS_MAX]; /* accumulator totals of its committed batches */
    size_t n_accs;
} em_query_view;

/* em_streams_view copies every query into *out (malloc'd; freed by the caller), newest first;
 * returns how many. */
size_t em_streams_view(em_streams *s, em_query_view **out);

/* driver loop side ---------------------------------------------------------------------------- */

/* em_streams_take_submit hands the loop the next batch job to submit (its query's id and
 * session in *query and *session); 0 when none waits. */
int em_streams_take_submit(em_streams *s, uint64_t *query, em_session_id *session,
                           Ember__SubmitJob **submit);
/* em_streams_job_started: the loop submitted query's batch as `job`, or could not (code and
 * why: the batch fails). */
void em_streams_job_started(em_streams *s, uint64_t query, em_job_id job, int code, const char *why,
                            int64_t now_us);
/* em_streams_job_done: `job` ended; returns 1 if it was a query's batch (its figures noted,
 * the stream thread woken), 0 for any other job. */
int em_streams_job_done(em_streams *s, const em_job *job, int64_t now_us);

/* stream thread side ----------------------------------------------------------------------------
 */

/* em_query_record_batch notes a committed batch (its stats) and sets the query IDLE, due at
 * the next interval after `trigger_us` (or now, if that is past). Called under the lock. */
void em_query_record_batch(em_query *q, int64_t trigger_us, int64_t now_us);
/* em_query_fail ends the query with an error. Called under the lock. */
void em_query_fail(em_query *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
