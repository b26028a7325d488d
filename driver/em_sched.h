/* em_sched.h -- the scheduler core: every job, stage, task, executor, map output and cached
 * partition the driver knows, and every transition of them.
 *
 * The scheduler is driven by domain events -- a plan submitted, an executor registering,
 * waiting for work, reporting results, lost; a submitter's session ending; time passing --
 * and answers with effects for its caller to carry out: tasks to send to a waiting executor,
 * a job's outcome to deliver, a connection to close. It does no I/O, reads no clock (every
 * event carries `now`) and knows nothing of sockets, requests or the status view, so the same
 * events always give the same effects: tests drive it directly, without processes or sleeps.
 * A plan may come from any source: ember-submit through the driver, or a timer.
 *
 * Invariants (em_sched_sanity checks them; Debug and sanitizer builds assert it after every
 * event):
 *   - a stage in WAITING or RUNNING has each partition in exactly one of: its queue (PENDING),
 *     an executor (RUNNING, counted in n_running), DONE (counted in n_done);
 *   - every RUNNING task is on an executor that is alive;
 *   - a running stage whose inputs are ready reads only map outputs held by live executors;
 *   - every kept map output and cached partition names a live holder, or none;
 *   - an executor's `running` is the number of RUNNING tasks it holds, and its `assigned` at
 *     least that (it also counts launches of finished jobs whose results are still to come);
 *   - a kept map output is whole: every partition's holder is alive.
 *
 * Threads: one. Everything here belongs to the thread that feeds the events (the driver loop).
 */
#ifndef EM_SCHED_H
#define EM_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "em_accs.h"
#include "em_buf.h"
#include "em_dag.h"
#include "ember.pb-c.h"

/* ---- identities: one-field structs, so that an executor id cannot pass for a stage id ---- */

typedef struct em_job_id {
    uint64_t v;
} em_job_id;
typedef struct em_stage_id {
    uint64_t v;
} em_stage_id;
typedef struct em_exec_id {
    uint32_t v; /* 1, 2, ...; 0: none */
} em_exec_id;
/* em_session_id: a submitter, as given at Hello; it outlives a connection (a reconnecting
 * submitter keeps its cached datasets and kept shuffle outputs for --session-grace-ms) */
typedef struct em_session_id {
    uint64_t v;
} em_session_id;
/* em_task_id: one launch of a task: stage << 24 | attempt << 20 | partition, so a result
 * finds its task without a table and a stale attempt is recognised */
typedef struct em_task_id {
    uint64_t v;
} em_task_id;

#define EM_NO_EXEC ((em_exec_id){0})

static inline em_task_id em_task_id_of(em_stage_id stage, uint32_t attempt, uint32_t part)
{
    return (em_task_id){stage.v << 24 | (uint64_t)attempt << 20 | part};
}
static inline em_stage_id em_task_stage(em_task_id t) { return (em_stage_id){t.v >> 24}; }
static inline uint32_t em_task_attempt(em_task_id t) { return (uint32_t)(t.v >> 20) & 15u; }
static inline uint32_t em_task_part(em_task_id t) { return (uint32_t)t.v & 0xfffffu; }

#define EM_MAX_ATTEMPTS_LIMIT 15
#define EM_MAX_PARTITIONS     (1u << 20) /* partitions of one stage: 20 bits of a task id */
#define EM_KNOWN_STAGES       32         /* stage definitions remembered as sent to an executor */
#define EM_LAUNCH_MAX         512        /* tasks per Tasks message */
#define EM_DEFS_MAX           8          /* stage definitions per Tasks message */
#define EM_FINISHED_JOBS_KEPT 100
#define EM_DROPS_KEPT         256 /* map stages and cached datasets remembered for dropping */
#define EM_KEPT_SHUFFLES      8   /* map outputs kept per session for its later actions */
#define EM_CANCELS_MAX        64  /* task launches an executor is still to be told to stop */

typedef struct em_sched_config {
    uint32_t heartbeat_ms;        /* a waiting executor is answered at least this often */
    uint32_t executor_timeout_ms; /* an executor silent this long is lost */
    uint32_t crash_grace_ms;      /* a closed connection with tasks running waits this long
                                     for a crash report before its executor is lost (0: none) */
    uint32_t session_grace_ms;    /* a disconnected session's cached data waits this long */
    uint32_t max_attempts;        /* launches of one task before its job fails */
    uint32_t locality_wait_ms;    /* how long a task waits for the executor caching its input */
    uint32_t shuffle_locality_wait_ms; /* ... for the one holding most of its shuffle input */
    uint32_t kafka_affinity;   /* 1: a task reading a Kafka partition prefers the executor the
                                  partition hashes to, without waiting for it */
    uint32_t queue_depth;      /* extra tasks per slot queued on executors for short tasks */
    uint32_t max_executors;    /* live executors at once; more registrations are refused */
    uint32_t max_session_jobs; /* running jobs of one session at once; more are refused */
    uint32_t max_job_tasks;    /* tasks of one job, every stage counted */
    uint32_t executors_kept;   /* lost and stopped executors remembered for the status view */
    uint64_t max_result;       /* largest collect result per job, bytes */
} em_sched_config;

/* em_store_stats: an executor's block store and process, as it last reported them */
typedef struct em_store_stats {
    uint64_t memory_used, blocks;
    uint64_t disk_used;             /* bytes in spill files now */
    uint64_t spilled_bytes;         /* bytes ever spilled */
    uint64_t rss_bytes;             /* the executor process's resident memory */
    uint64_t kafka_fetched_records; /* records ember's own Kafka fetcher read, ever */
    uint64_t kafka_fetch_fallbacks; /* fetches it handed to librdkafka, ever */
} em_store_stats;

/* an executor is alive until it says Goodbye (stopped) or is lost (silence, dropped link) */
typedef enum em_exec_state { EM_EXEC_ALIVE, EM_EXEC_LOST, EM_EXEC_STOPPED } em_exec_state;

/* em_exec: one registered executor (kept after loss for the status view). */
typedef struct em_exec {
    em_exec_id id;
    uint32_t index;        /* its place in em_sched.execs (changes as gone ones are forgotten) */
    int64_t gone_us;       /* when it was lost or stopped */
    em_session_id session; /* its connection's session */
    char address[256];     /* where it serves blocks */
    char host[128];
    int32_t pid;
    uint32_t slots;
    uint64_t memory_cap;
    em_store_stats store;
    em_exec_state state;
    char lost_reason[128];
    int64_t registered_us, last_seen_us;
    uint32_t running;  /* tasks of running jobs it runs now */
    uint32_t assigned; /* tasks launched and not yet reported: running ones, and those of
                          jobs that ended meanwhile (they still hold its slots) */
    uint64_t tasks_completed, tasks_failed;
    uint64_t shuffle_bytes; /* shuffle output its map tasks stored */
    int waiting;            /* it waits for tasks (its Poll is parked by the caller) */
    int64_t waiting_since_us;
    uint64_t known_stages[EM_KNOWN_STAGES]; /* ring of stage definitions it holds */
    uint32_t known_next;
    uint64_t cancels[EM_CANCELS_MAX]; /* launches it runs that it must stop (task ids) */
    uint32_t n_cancels;
    uint64_t drops_sent;       /* s->drops_made when it was last sent the drop lists */
    uint64_t drop_cached_sent; /* s->drop_cached_made, likewise */
    /* crash grace: closed_us is when its connection closed while tasks ran (0: open); it is
     * lost once the grace is over unless its monitor's crash report comes first. While that
     * report is applied, crash_tasks lists the tasks its process was running (not owned). */
    int64_t closed_us;
    const uint64_t *crash_tasks;
    size_t n_crash_tasks;
} em_exec;

typedef enum em_task_state {
    EM_TASK_PENDING,
    EM_TASK_RUNNING,
    EM_TASK_DONE,
    EM_TASK_FAILED,   /* its job failed with it */
    EM_TASK_CANCELLED /* its job ended before it ran or finished */
} em_task_state;

typedef struct em_task {
    int64_t queued_us;   /* when it last went into its stage's queue (locality wait) */
    em_exec_id executor; /* executor of the current attempt */
    em_exec_id avoid;    /* where its last attempt failed: elsewhere if possible */
    uint8_t state;       /* em_task_state */
    uint8_t attempt;     /* 0-based attempt of the current launch */
    uint8_t preferred;   /* the current launch went to the executor it would rather run on */
    int64_t launched_us;
    int64_t duration_us; /* as measured by the executor, once done */
    int64_t records_in, records_out;
    int64_t late_records; /* a window's map side: records behind the watermark */
    int64_t state_keys, state_bytes, state_expired; /* map_with_state's reduce side */
    uint64_t bytes_out;                             /* result bytes sent to the driver (collect) */
    int64_t bytes_in;       /* key and value bytes it read (source, cache or shuffle) */
    uint64_t shuffle_bytes; /* a map task: the bytes of the buckets it stored */
    uint64_t spilled_bytes; /* of which went to spill files */
    int64_t input_wait_us;  /* time it waited for input (Kafka fetches, buckets from peers) */
    em_accs accs;           /* the accumulator additions of its last successful attempt (owned) */
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
    EM_RUN_SKIPPED /* a stage that did not need to run (em_sched_reuse.c) */
} em_run_state;

struct em_job;

/* em_stage: the tasks of one planned stage. Pending partitions wait in a ring queue. */
typedef struct em_stage {
    em_stage_id id;
    struct em_job *job;
    em_stage_plan plan;
    em_run_state state;
    em_task *tasks;  /* one per partition; NULL once its job is released */
    uint32_t *queue; /* ring of pending partitions, capacity plan.partitions */
    uint32_t q_head, q_len;
    uint32_t n_done, n_running;
    uint32_t n_launched;                         /* task launches, recomputations included */
    uint32_t n_retried;                          /* launches again after the task failed */
    uint32_t n_recomputed[EM_RECOMPUTE_REASONS]; /* launches again of work that was lost */
    uint32_t def_version;       /* bumped when the map outputs it reads move: definitions resent */
    int rerun;                  /* ran again after succeeding: children get a new definition */
    uint32_t cache_hits;        /* tasks that read a cached partition instead of computing it */
    uint64_t cache_fp;          /* the persisted node whose partitions its tasks read or store,
                                   nearest its end (0: none): tasks go where theirs is cached */
    uint64_t *bucket_sizes;     /* a map stage: bytes of bucket r of partition m at m * R + r,
                                   for reduce tasks' locality (NULL: too many to keep) */
    em_exec_id *preferred;      /* a reduce stage: the executor holding most of each
                                   partition's input, or none (em_sched_locality.c) */
    uint32_t preferred_version; /* def_version + 1 when preferred was worked out */
    uint32_t n_preferred;       /* partitions with a preferred executor */
    int64_t task_us_total;      /* summed durations of finished tasks */
    int64_t records_in, records_out;
    int64_t started_us, finished_us;
    int shuffle_out;             /* a map stage: its output feeds the wide node plan.shuffle_node */
    em_exec_id *map_exec;        /* a map stage: the executor holding each partition's output */
    uint64_t *map_stage_of;      /* a map stage: the stage id in each partition's block ids */
    uint64_t shuffle_bytes;      /* a map stage: bytes its tasks stored for the shuffle */
    uint64_t fingerprint;        /* a map stage: its lineage and partitioning (em_sched_reuse.c) */
    em_stage_id output_stage_id; /* a map stage: whose blocks hold its output (its own id, or
                                    that of an earlier job's stage when reused) */
    int reused;                  /* skipped: its output was kept by an earlier job */
} em_stage;

typedef struct em_job {
    em_job_id id;
    char name[128];
    char submitter[128];   /* user@host:pid, for people */
    em_session_id session; /* whose job it is */
    uint64_t client_token; /* the submitter's handle for progress queries */
    em_run_state state;
    Ember__SubmitJob *submit; /* the job's graph (owned) */
    em_buf data;              /* parallelized records */
    em_stage *stages;
    size_t n_stages;
    em_buf *results; /* collect: one batch buffer per partition of the last stage */
    uint64_t result_bytes;
    int64_t records_in, records_out;
    int64_t max_event_time; /* windows: the largest event time read (EM_NO_WATERMARK: none) */
    int64_t late_records;   /* windows: records behind the watermark */
    int64_t state_keys, state_bytes, state_expired; /* map_with_state: kept, dropped */
    em_accs accs;            /* accumulator totals: each done task's additions once */
    struct em_hist *latency; /* a sink's records' ages when written (NULL: none reported) */
    uint32_t tasks_total, tasks_done;
    int64_t submitted_us, finished_us;
    int64_t submitted_unix_ms; /* wall clock, for people */
    int64_t task_timeout_us;   /* a task running longer fails and is cancelled (0: no limit) */
    uint64_t *node_fp;         /* fingerprint of each graph node's lineage */
    int released;              /* em_sched_job_release freed its tasks and results */
    int code;
    char error[1024];
    struct em_job *next;
} em_job;

/* em_totals: counters since the scheduler started (Prometheus counters). */
typedef struct em_totals {
    uint64_t jobs_succeeded, jobs_failed;
    uint64_t tasks_launched, tasks_succeeded, tasks_failed, tasks_relaunched;
    uint64_t tasks_retried, tasks_recomputed[EM_RECOMPUTE_REASONS];
    uint64_t cache_hits, cache_evictions;
    uint64_t records_read, records_written, result_bytes;
    uint64_t bytes_read, bytes_written, bytes_shuffled;
    uint64_t task_duration_buckets[10]; /* 9 bounds + Inf: em_task_duration_bounds */
    double task_seconds_sum;
} em_totals;

extern const double em_task_duration_bounds[9]; /* seconds */

/* ---- effects ------------------------------------------------------------------------------ */

typedef enum em_effect_kind {
    EM_EFFECT_TASKS,        /* answer ex's parked poll: stage definitions, launches, drops */
    EM_EFFECT_RELEASE_POLL, /* let go of ex's parked poll unanswered (it is leaving) */
    EM_EFFECT_DISCONNECT,   /* close ex's connection (lost) */
    EM_EFFECT_JOB_DONE      /* the job ended: deliver its outcome, then em_sched_job_release */
} em_effect_kind;

/* em_launch: one task launch, in a Tasks effect */
typedef struct em_launch {
    em_stage *st;
    uint32_t part;
} em_launch;

/* em_effect: what the caller must do. The arrays point into the scheduler and are valid
 * until the next event. */
typedef struct em_effect {
    em_effect_kind kind;
    em_exec_id ex;         /* TASKS, RELEASE_POLL, DISCONNECT */
    em_session_id session; /* DISCONNECT: the session whose connections close */
    em_job_id job;         /* JOB_DONE */
    em_stage **defs;       /* TASKS: stages to define first (the executor does not hold them) */
    size_t n_defs;
    const em_launch *launches;
    size_t n_launches;
    const uint64_t *drop_shuffles; /* map stages whose blocks executors may remove */
    size_t n_drop_shuffles;
    const uint64_t *drop_cached; /* fingerprints of cached datasets they may remove */
    size_t n_drop_cached;
    const uint64_t *cancel_tasks; /* launches ex must stop (task ids) */
    size_t n_cancel_tasks;
} em_effect;

/* em_cached_set: the cached partitions of one persisted dataset of one session
 * (em_sched_cache.c) */
typedef struct em_cached_set {
    em_session_id session;
    uint64_t fingerprint;
    uint32_t partitions;
    em_exec_id *holder; /* per partition, none: not cached */
    uint64_t *bytes;
    uint8_t *lost;      /* per partition: 1 + the em_recompute_reason it went for, or 0 */
    int storage;        /* Ember__StorageLevel */
    const char *kind;   /* the node's operation, for people */
    uint64_t hits;      /* tasks that read a cached partition */
    uint64_t evictions; /* partitions evicted to make room */
} em_cached_set;

/* ---- the scheduler ---------------------------------------------------------------------- */

typedef struct em_kept_shuffle em_kept_shuffle;
typedef struct em_session em_session;

#define EM_SUBMIT_FAILURES_KEPT 32 /* jobs that failed in their submitter, newest kept */

/* em_submit_failure: a job that failed in ember-submit before it reached the driver */
typedef struct em_submit_failure {
    int64_t at_unix_ms;
    char name[128], submitter[128], action[32], error[512];
} em_submit_failure;
typedef struct em_effect_slot em_effect_slot;

typedef struct em_sched {
    em_sched_config cfg;
    em_exec **execs; /* live executors and the last gone ones (owned), by id; ids are never
                        reused */
    size_t n_execs, cap_execs;
    uint32_t last_exec_id;
    size_t n_alive, n_gone;
    em_job *jobs;     /* running jobs, oldest first */
    em_job *finished; /* finished jobs, newest first, at most EM_FINISHED_JOBS_KEPT */
    size_t n_finished;
    uint64_t next_job_id, next_stage_id;
    em_totals totals;
    int64_t now;       /* the time of the event being applied */
    uint64_t changes;  /* bumped by every change a status view would show */
    int want_dispatch; /* work or capacity appeared: dispatch before the event returns */
    uint64_t drops[EM_DROPS_KEPT]; /* ring of map stages whose shuffle blocks may go */
    uint64_t drops_made;
    uint64_t drop_cached[EM_DROPS_KEPT]; /* ring of fingerprints whose cached blocks may go */
    uint64_t drop_cached_made;
    em_kept_shuffle *kept; /* map outputs kept for sessions' later actions */
    size_t n_kept, cap_kept;
    uint64_t kept_seq;
    em_cached_set *cached; /* cached partitions of persisted datasets */
    size_t n_cached, cap_cached;
    em_session *sessions; /* sessions that own jobs, kept outputs or cached data */
    size_t n_sessions, cap_sessions;
    /* effects not yet taken by the caller, and the arrays they point into */
    em_effect_slot *effects;
    size_t n_effects, cap_effects, next_effect;
    em_launch *launch_buf;
    size_t n_launch_buf, cap_launch_buf;
    em_stage **def_buf;
    size_t n_def_buf, cap_def_buf;
    uint64_t *drop_buf;
    size_t n_drop_buf, cap_drop_buf;
    int nomem; /* an effect could not be queued: the caller should stop (em_sched_failed) */
    em_submit_failure submit_failures[EM_SUBMIT_FAILURES_KEPT]; /* a ring, */
    uint64_t n_submit_failures;                                 /* of this many ever noted */
} em_sched;

/* em_sched_submit_failed notes a job that failed in its submitter (the oldest of the kept ones
 * goes); the strings are cut to their fields' sizes */
void em_sched_submit_failed(em_sched *s, const char *name, const char *submitter,
                            const char *action, const char *error, int64_t at_unix_ms);

/* em_sched_config_defaults: the driver's defaults (the ember-driver options of the same names) */
em_sched_config em_sched_config_defaults(void);
/* em_sched_init prepares s with cfg; em_sched_fini frees everything it holds. */
void em_sched_init(em_sched *s, const em_sched_config *cfg);
void em_sched_fini(em_sched *s);

/* em_sched_next_effect moves the oldest pending effect to *out; returns 0 when none is left.
 * The caller carries each out before feeding the next event. */
int em_sched_next_effect(em_sched *s, em_effect *out);

/* ---- events: executors -------------------------------------------------------------------- */

/* em_exec_info: what an executor says when it registers (validated by the caller) */
typedef struct em_exec_info {
    const char *address, *host;
    int32_t pid;
    uint32_t slots;
    uint64_t memory_cap;
} em_exec_info;

/* em_sched_register adds an executor; an executor registering again on the same session
 * replaces its older self, which is lost. Returns EMBER_OK, EMBER_ERR_TOO_LARGE when
 * max_executors are alive, or EMBER_ERR_NOMEM. */
int em_sched_register(em_sched *s, em_session_id session, const em_exec_info *info, int64_t now,
                      em_exec_id *out);
/* em_sched_executor: the live executor of a session, and whether it claims to be `claimed`
 * (0: any); NULL if none. */
em_exec *em_sched_executor(em_sched *s, em_session_id session, em_exec_id claimed);
/* em_sched_exec: an executor by id (live or not), or NULL. */
em_exec *em_sched_exec(const em_sched *s, em_exec_id id);
/* em_sched_heard records that ex spoke (any request) and its block store figures. */
void em_sched_heard(em_sched *s, em_exec *ex, const em_store_stats *store, int64_t now);
/* em_sched_wait_for_tasks: ex waits for tasks (its poll is parked by the caller, who
 * answered any older one). */
void em_sched_wait_for_tasks(em_sched *s, em_exec *ex, int64_t now);
/* em_sched_task_results applies a batch of results from ex; data holds their collected
 * records back to back (data_len each). Evicted cached partitions are applied first. */
void em_sched_task_results(em_sched *s, em_exec *ex, Ember__TaskResult *const *results,
                           size_t n_results, const uint8_t *data, size_t data_len,
                           Ember__CachedBlock *const *evicted, size_t n_evicted, int64_t now);
/* em_sched_executor_stopped: ex said Goodbye: its tasks go elsewhere, it is not lost. */
void em_sched_executor_stopped(em_sched *s, em_exec *ex, int64_t now);
/* em_sched_executor_closed: ex's connection closed. Lost at once, or after the crash grace
 * when it was running tasks, so that its monitor's crash report can say why it died. */
void em_sched_executor_closed(em_sched *s, em_exec *ex, int64_t now);
/* em_sched_executor_lost: ex is gone for `why` (a send to it failed, ...). */
void em_sched_executor_lost(em_sched *s, em_exec *ex, const char *why, int64_t now);
/* em_crash: how a supervised executor's process died, as its monitor tells */
typedef struct em_crash {
    int signal;               /* the signal that killed it, or 0: it exited */
    int exit_status;          /* when it exited */
    const char *reason;       /* why it stopped itself ("" or NULL: it did not say) */
    const uint64_t *task_ids; /* the tasks it was running (the one to blame, when known) */
    size_t n_task_ids;
} em_crash;

/* em_sched_executor_crashed applies a supervised executor's crash report. Returns 0 if ex is
 * not one that could crash (already stopped). */
int em_sched_executor_crashed(em_sched *s, em_exec *ex, const em_crash *crash, int64_t now);

/* ---- events: sessions and jobs ------------------------------------------------------------ */

/* em_sched_submit plans and queues a job of `session` from a validated SubmitJob (the graph
 * checked by em_graph_validate, its library present) and its parallelized data. On EMBER_OK
 * the scheduler owns submit and *out is the job's id; else the caller keeps submit and err
 * says why. */
int em_sched_submit(em_sched *s, em_session_id session, Ember__SubmitJob *submit,
                    const uint8_t *data, size_t data_len, int64_t now, em_job_id *out, char *err,
                    size_t errlen);
/* em_sched_session_detached: the session's connection closed. Its running jobs are cancelled
 * (nobody is left to receive their results); what it cached and kept waits session_grace_ms
 * for it to come back (em_sched_session_attached). */
void em_sched_session_detached(em_sched *s, em_session_id session, int64_t now);
void em_sched_session_attached(em_sched *s, em_session_id session);
/* em_sched_session_ended: the session said Goodbye (or its grace is over): its cached
 * partitions and kept outputs are dropped now. */
void em_sched_session_ended(em_sched *s, em_session_id session, int64_t now);
/* em_sched_unpersist drops a session's cached partitions of the dataset `fingerprint`. */
void em_sched_unpersist(em_sched *s, em_session_id session, uint64_t fingerprint);

/* em_sched_tick: time passed: answers waiting executors every heartbeat, loses silent ones
 * and those whose crash grace is over, ends sessions whose grace is over, and dispatches
 * tasks whose locality wait ran out. */
void em_sched_tick(em_sched *s, int64_t now);

/* ---- queries ------------------------------------------------------------------------------- */

/* em_sched_job finds a job, running or finished, or NULL. */
em_job *em_sched_job(const em_sched *s, em_job_id id);
/* em_sched_job_by_token: the running job a session submitted with client_token, or NULL. */
em_job *em_sched_job_by_token(const em_sched *s, em_session_id session, uint64_t client_token);
/* em_sched_job_release frees a finished job's tasks, results and data once its outcome was
 * delivered (JOB_DONE); its summary stays for the status view. */
void em_sched_job_release(em_sched *s, em_job_id id);
/* em_sched_last_stage: the stage a job's action runs on */
em_stage *em_sched_last_stage(const em_job *job);
/* em_sched_sanity checks the invariants above; returns 1 if they hold (else logs the first
 * broken one). */
int em_sched_sanity(const em_sched *s);
const char *em_recompute_reason_name(em_recompute_reason r);
const char *em_run_state_name(em_run_state st);
const char *em_task_state_name(em_task_state st);
const char *em_exec_state_name(em_exec_state st);

/* em_fingerprint_nodes sets fp[i] to the fingerprint of node i's lineage: every node it
 * depends on, packed without ids (resolved Kafka ranges and parallelized bytes included), and
 * the job library. data: the job's parallelized records. */
int em_fingerprint_nodes(const Ember__JobGraph *g, const em_buf *data, uint64_t *fp);

/* em_stage_inputs_ready: every stage st reads from has its whole output */
int em_stage_inputs_ready(const em_stage *st);

#endif
