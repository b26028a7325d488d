/* em_driver.h -- the driver's state: executors, jobs, stages, tasks, and its configuration.
 *
 * The driver is one event loop (em_driver_run) that owns every structure here; nothing else
 * touches them. The status endpoint reads only the JSON snapshot the loop publishes
 * (em_status.h), so HTTP requests never block scheduling. The driver runs no user code.
 *
 * Task ids carry their coordinates: stage_id << 24 | attempt << 20 | partition, so a result
 * finds its task without a lookup table and a stale attempt's result is recognised.
 */
#ifndef EM_DRIVER_H
#define EM_DRIVER_H

#include <stdint.h>

#include "em_buf.h"
#include "em_dag.h"
#include "em_server.h"
#include "em_text.h"
#include "em_time.h"

#define EM_TASK_ID(stage, attempt, part)                                                           \
    ((uint64_t)(stage) << 24 | (uint64_t)(attempt) << 20 | (part))
#define EM_TASK_STAGE(id)     ((id) >> 24)
#define EM_TASK_ATTEMPT(id)   ((uint32_t)((id) >> 20) & 15u)
#define EM_TASK_PART(id)      ((uint32_t)(id)&0xfffffu)
#define EM_MAX_ATTEMPTS_LIMIT 15
#define EM_KNOWN_STAGES       32 /* stage definitions the driver remembers sending to an executor */
#define EM_LAUNCH_MAX         512 /* tasks per Tasks message */
#define EM_FINISHED_JOBS_KEPT 100
#define EM_DROPS_KEPT         256 /* finished map stages remembered for executors to drop */

typedef struct em_driver_config {
    char listen[256];      /* nng address for executors and submitters */
    char status[256];      /* host:port of the HTTP status endpoint ("" = off) */
    char kafka[1024];      /* default Kafka bootstrap announced to clients */
    char ready_file[1024]; /* written once listening: bound addresses */
    uint32_t heartbeat_ms; /* long-poll period = executor heartbeat */
    uint32_t executor_timeout_ms;
    uint32_t max_attempts;     /* launches of one task before its job fails */
    uint32_t locality_wait_ms; /* how long a task waits for the executor caching its input */
    uint32_t shuffle_locality_wait_ms; /* ... for the one holding most of its shuffle input */
    uint32_t queue_depth;    /* extra tasks per slot queued on executors for short tasks */
    uint64_t max_message;    /* largest message accepted */
    uint64_t max_result;     /* largest collect result per job */
    uint32_t crash_grace_ms; /* a closed connection with tasks running waits this long for
                                a crash report before its executor is lost (0: no wait) */
} em_driver_config;

/* an executor is alive until it says Goodbye (stopped) or is lost (silence, dropped link) */
typedef enum em_exec_state { EM_EXEC_ALIVE, EM_EXEC_LOST, EM_EXEC_STOPPED } em_exec_state;

/* em_exec: one registered executor (kept after loss for the status endpoint). */
typedef struct em_exec {
    uint32_t id;
    uint32_t pipe; /* its connection */
    char address[256];
    char host[128];
    int32_t pid;
    uint32_t slots;
    uint64_t memory_cap, memory_used, blocks;
    uint64_t disk_used, spilled_bytes; /* spill files now; bytes ever spilled */
    em_exec_state state;
    char lost_reason[128];
    int64_t registered_us, last_seen_us;
    uint32_t assigned; /* tasks launched and not yet reported */
    uint64_t tasks_completed, tasks_failed;
    uint64_t shuffle_bytes; /* shuffle output its map tasks stored */
    int has_poll;           /* a Poll waits in `poll` for tasks */
    em_request poll;
    int64_t poll_since_us;
    uint64_t known_stages[EM_KNOWN_STAGES]; /* ring of stage ids whose StageDef it has */
    uint32_t known_next;
    uint64_t drops_sent;       /* d->drops_made when its last Tasks message was built */
    uint64_t drop_cached_sent; /* d->drop_cached_made, likewise */
    /* crash grace: closed_us is when its connection closed while tasks ran (0: open); it is
     * lost once the grace is over unless its monitor's crash report comes first. While that
     * report is applied, crash_tasks lists the tasks its process was running (not owned). */
    int64_t closed_us;
    const uint64_t *crash_tasks;
    size_t n_crash_tasks;
} em_exec;

/* a task is pending, running, done, failed (its job failed with it), or cancelled (its job
 * ended before it ran or finished) */
typedef enum em_task_state {
    EM_TASK_PENDING,
    EM_TASK_RUNNING,
    EM_TASK_DONE,
    EM_TASK_FAILED,
    EM_TASK_CANCELLED
} em_task_state;

typedef struct em_task {
    int64_t queued_us;       /* when it last went into its stage's queue (locality wait) */
    uint32_t executor;       /* executor of the current attempt */
    uint32_t avoid_executor; /* where its last attempt failed: elsewhere if possible (0: any) */
    uint8_t state;           /* em_task_state */
    uint8_t attempt;         /* 0-based attempt of the current launch */
    uint8_t preferred;       /* the current launch went to the executor it would rather run on */
    int64_t launched_us;
    int64_t duration_us; /* as measured by the executor, once done */
    int64_t records_in, records_out;
    uint64_t bytes_out; /* result bytes sent to the driver (collect) */
} em_task;

/* why work is done again (per stage counters, /api/v1/jobs) */
typedef enum em_recompute_reason {
    EM_RECOMPUTE_EXECUTOR_LOST, /* a running task's executor, or a map output's holder, died */
    EM_RECOMPUTE_FETCH_FAILURE, /* a reduce task could not read a map output */
    EM_RECOMPUTE_EVICTION,      /* a cached partition was evicted to make room */
    EM_RECOMPUTE_REASONS
} em_recompute_reason;

typedef enum em_run_state {
    EM_RUN_WAITING,
    EM_RUN_RUNNING,
    EM_RUN_SUCCEEDED,
    EM_RUN_FAILED,
    EM_RUN_SKIPPED /* a stage that did not need to run (em_reuse.h) */
} em_run_state;

struct em_job;

/* em_stage: the tasks of one planned stage. Pending partitions wait in a ring queue. */
typedef struct em_stage {
    uint64_t id;
    struct em_job *job;
    em_stage_plan plan;
    em_run_state state;
    em_task *tasks;  /* one per partition */
    uint32_t *queue; /* ring of pending partitions, capacity plan.partitions */
    uint32_t q_head, q_len;
    uint32_t n_done, n_running;
    uint32_t n_launched;                         /* task launches, recomputations included */
    uint32_t n_retried;                          /* launches again after the task failed */
    uint32_t n_recomputed[EM_RECOMPUTE_REASONS]; /* launches again of work that was lost */
    uint32_t def_version;       /* bumped when the map outputs it reads move: StageDefs resent */
    int rerun;                  /* ran again after succeeding: children get a new definition */
    uint32_t cache_hits;        /* tasks that read a cached partition instead of computing it */
    uint64_t cache_fp;          /* the persisted node whose partitions its tasks read or store,
                                   nearest its end (0: none): tasks go where theirs is cached */
    uint64_t *bucket_sizes;     /* a map stage: bytes of bucket r of partition m at m * R + r,
                                   for reduce tasks' locality (NULL: too many to keep) */
    uint32_t *preferred;        /* a reduce stage: the executor holding most of each
                                   partition's input, or 0 (em_locality.c) */
    uint32_t preferred_version; /* def_version + 1 when preferred was worked out */
    uint32_t n_preferred;       /* partitions with a preferred executor in preferred */
    int64_t task_us_total;      /* summed durations of finished tasks */
    int64_t records_in, records_out;
    int64_t started_us, finished_us;
    struct em_text *doc; /* status JSON with its tasks, frozen once the job has finished */
    int shuffle_out;     /* a map stage: its output feeds the wide node shuffle_node */
    uint32_t shuffle_node;
    uint32_t *map_exec;       /* a map stage: the executor holding each partition's output */
    uint64_t *map_stage_of;   /* a map stage: the stage id in each partition's block ids */
    uint64_t shuffle_bytes;   /* a map stage: bytes its tasks stored for the shuffle */
    uint64_t fingerprint;     /* a map stage: its lineage and partitioning (em_reuse.h) */
    uint64_t output_stage_id; /* a map stage: whose blocks hold its output (its own id, or
                                 that of an earlier job's stage when reused) */
    int reused;               /* skipped: its output was kept by an earlier job */
} em_stage;

typedef struct em_job {
    uint64_t id;
    char name[128];
    char submitter[128];
    em_run_state state;
    em_request reply; /* the SubmitJob request, answered when the job ends */
    int has_reply;
    struct Ember__SubmitJob *submit; /* the job's graph (owned) */
    em_buf data;                     /* parallelized records */
    em_stage *stages;
    size_t n_stages;
    em_buf *results; /* collect: one batch buffer per partition of the last stage */
    uint64_t result_bytes;
    int64_t records_in, records_out;
    uint32_t tasks_total, tasks_done;
    int64_t submitted_us, finished_us;
    int64_t submitted_unix_ms; /* wall clock, for people */
    uint64_t client_token;     /* the submitter's handle for JobProgress */
    uint64_t *node_fp;         /* fingerprint of each graph node's lineage (em_reuse.h) */
    int code;
    char error[1024];
    struct em_job *next;
} em_job;

/* em_totals: counters since the driver started (Prometheus counters). */
typedef struct em_totals {
    uint64_t jobs_succeeded, jobs_failed;
    uint64_t tasks_launched, tasks_succeeded, tasks_failed, tasks_relaunched;
    uint64_t tasks_retried, tasks_recomputed[EM_RECOMPUTE_REASONS];
    uint64_t cache_hits, cache_evictions;
    uint64_t records_read, records_written, result_bytes;
    uint64_t bytes_read, bytes_written, bytes_shuffled;
    uint64_t task_duration_buckets[10]; /* 9 bounds + Inf: duration_buckets in em_metrics.c */
    double task_seconds_sum;
} em_totals;

typedef struct em_libstore em_libstore;
typedef struct em_status em_status;

typedef struct em_driver {
    em_driver_config cfg;
    char bound_url[256];
    em_server *srv;
    em_exec *execs; /* index = id - 1 */
    size_t n_execs, cap_execs;
    em_job *jobs;     /* running jobs, oldest first */
    em_job *finished; /* finished jobs, newest first, at most EM_FINISHED_JOBS_KEPT */
    size_t n_finished;
    uint64_t next_job_id, next_stage_id;
    em_libstore *libs;
    em_status *status;
    int dirty;      /* something changed since the last snapshot */
    int redispatch; /* tasks were queued again outside a request: dispatch at the loop's end */
    int64_t snapshot_us;
    em_totals totals;
    uint64_t
        drops[EM_DROPS_KEPT]; /* ring of map stage ids whose shuffle blocks are no longer needed */
    uint64_t drops_made;      /* entries ever added to drops */
    struct em_kept_shuffle *kept; /* map outputs kept for later actions (em_reuse.h) */
    struct em_cached_set *cached; /* cached partitions of persisted datasets (em_cache.h) */
    size_t n_cached, cap_cached;
    uint64_t drop_cached[EM_DROPS_KEPT]; /* ring of fingerprints whose cached blocks go */
    uint64_t drop_cached_made;
    size_t n_kept, cap_kept;
    uint64_t kept_seq;
    volatile int stop;
} em_driver;

static inline em_exec *em_exec_get(em_driver *d, uint32_t id)
{
    return id >= 1 && id <= d->n_execs ? &d->execs[id - 1] : 0;
}

/* em_driver.c */
int em_driver_start(em_driver *d, char *err, size_t errlen);
void em_driver_run(em_driver *d);
void em_driver_stop(em_driver *d);

/* em_executors.c */
int em_exec_register(em_driver *d, em_request *req);
void em_exec_lost(em_driver *d, em_exec *ex, const char *why);
void em_exec_goodbye(em_driver *d, em_request *req);
/* em_exec_closed: ex's connection closed. Lost at once, or after the crash grace when it was
 * running tasks, so that its monitor's crash report can say why it died. */
void em_exec_closed(em_driver *d, em_exec *ex);
/* em_exec_crashed handles ExecutorCrashed from a supervised executor's monitor: the executor
 * is lost (if it was not yet) with the signal that killed it as the reason. */
void em_exec_crashed(em_driver *d, em_request *req);
/* em_exec_crash_ran: ex's crash report, being applied, lists task_id as running. */
int em_exec_crash_ran(const em_exec *ex, uint64_t task_id);
void em_exec_check_timeouts(em_driver *d, int64_t now);
em_exec *em_exec_by_pipe(em_driver *d, uint32_t pipe);

/* em_jobs.c */
int em_job_submit(em_driver *d, em_request *req);
void em_job_task_result(em_driver *d, em_exec *ex, const struct Ember__TaskResult *res,
                        const uint8_t *data);
void em_job_submitter_gone(em_driver *d, uint32_t pipe);
void em_job_fail(em_driver *d, em_job *job, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* em_stage_inputs_ready: every stage st reads from has its whole output */
int em_stage_inputs_ready(const em_stage *st);
/* em_stage_requeue puts partition part back in st's queue (its task becomes pending). */
void em_stage_requeue(em_stage *st, uint32_t part);

/* em_locality.c */
/* em_preferred_executor: the live executor a task of st would rather run on (caching its
 * partition, or holding most of its shuffle input), or 0. */
uint32_t em_preferred_executor(em_driver *d, em_stage *st, uint32_t part);
/* em_stage_has_preferences: some task of st may prefer an executor (else dispatch need not
 * look for them: a stage of many tasks is not scanned at every poll). */
int em_stage_has_preferences(em_driver *d, em_stage *st);
/* em_locality_map_output keeps a map task's bucket sizes for the reduce tasks' preferences. */
void em_locality_map_output(em_stage *st, uint32_t part, const uint64_t *bucket_bytes, size_t n);

/* em_recovery.c */
/* em_recover_failed_task: task part of st failed on ex: run it again (elsewhere when
 * possible) up to max_attempts, recompute a map output it could not fetch, or fail the job. */
void em_recover_failed_task(em_driver *d, em_exec *ex, em_stage *st, uint32_t part,
                            const struct Ember__TaskResult *res);
/* em_recover_lost_executor: its running tasks run again, and the map outputs it held that a
 * running job still needs are recomputed. */
void em_recover_lost_executor(em_driver *d, em_exec *ex);
const char *em_recompute_reason_name(em_recompute_reason r);
void em_job_free(em_job *job);
void em_jobs_free_all(em_driver *d);

void em_job_progress(em_driver *d, em_request *req);

/* em_dispatch.c */
void em_dispatch(em_driver *d);
void em_dispatch_expire_polls(em_driver *d, int64_t now);
void em_dispatch_answer_poll(em_driver *d, em_exec *ex, em_request *req);

#endif
