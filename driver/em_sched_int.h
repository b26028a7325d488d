/* em_sched_int.h -- what the scheduler's own files share (em_sched*.c); nothing else
 * includes it.
 *
 *   em_sched.c           events in, effects out; jobs: intake, results, completion; sanity
 *   em_sched_exec.c      the executor registry: registration, liveness, loss, crashes
 *   em_sched_dispatch.c  which waiting executor runs which pending task
 *   em_sched_recovery.c  task retries; lost map outputs recomputed from lineage
 *   em_sched_reuse.c     lineage fingerprints; shuffle outputs kept for later actions
 *   em_sched_cache.c     cached partitions of persisted datasets
 *   em_sched_locality.c  where a task would rather run
 *
 * Every internal function runs inside an event: s->now is that event's time.
 */
#ifndef EM_SCHED_INT_H
#define EM_SCHED_INT_H

#include "em_sched.h"

/* em_kept_shuffle: one map output kept for a session's later actions */
struct em_kept_shuffle {
    em_session_id session;
    uint64_t fingerprint; /* of the map stage */
    em_stage_id stage_id; /* the stage that wrote the blocks: shuffle_<stage_id>_... */
    uint32_t partitions;
    em_exec_id *map_exec; /* executor holding each map partition's output */
    uint64_t kept_seq;    /* order of keeping, to drop the oldest first */
};

/* em_session: a submitter session that owns something here */
struct em_session {
    em_session_id id;
    int64_t detached_us; /* when its connection closed (0: attached) */
};

/* em_effect_slot: a queued effect; its arrays are ranges of the scheduler's buffers */
struct em_effect_slot {
    em_effect_kind kind;
    em_exec_id ex;
    em_session_id session;
    em_job_id job;
    size_t defs, n_defs, launches, n_launches, drops, n_drop_shuffles, n_drop_cached;
    size_t n_cancel_tasks; /* after the drops in drop_buf */
};

static inline int em_exec_alive(const em_exec *ex) { return ex && ex->state == EM_EXEC_ALIVE; }
static inline int em_exec_is(const em_exec *ex, em_exec_id id) { return ex->id.v == id.v; }

/* em_sched.c */
/* em_sched_begin and em_sched_end open and close every public event: begin notes its time
 * and recycles consumed effect buffers; end dispatches if work or capacity appeared, and
 * asserts the invariants in checked builds. */
void em_sched_begin(em_sched *s, int64_t now);
void em_sched_end(em_sched *s);
void em_sched_changed(em_sched *s);
/* em_sched_tasks_room makes room for one Tasks effect of up to max_launches launches and
 * EM_DEFS_MAX definitions, written at s->launch_buf + s->n_launch_buf and s->def_buf +
 * s->n_def_buf; returns 0 without memory. em_sched_push_tasks then queues the effect for ex
 * with the n_defs and n_launches written, and the drop lists ex has not been sent yet. */
int em_sched_tasks_room(em_sched *s, size_t max_launches);
void em_sched_push_tasks(em_sched *s, em_exec *ex, size_t n_defs, size_t n_launches);
void em_sched_push(em_sched *s, em_effect_kind kind, em_exec_id ex, em_job_id job);
/* em_sched_push_disconnect queues the closing of ex's connections */
void em_sched_push_disconnect(em_sched *s, const em_exec *ex);
void em_stage_requeue(em_sched *s, em_stage *st, uint32_t part);
void em_job_fail(em_sched *s, em_job *job, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
em_session *em_session_find(em_sched *s, em_session_id id);

/* em_sched_exec.c */
/* em_exec_cancel tells ex to stop a launch it runs (now if it waits, else with its next
 * tasks). */
void em_exec_cancel(em_sched *s, em_exec_id ex, em_task_id task);
void em_exec_retire(em_sched *s, em_exec *ex, em_exec_state state, const char *why, int disconnect);
/* em_exec_forget_gone frees the oldest lost and stopped executors beyond executors_kept (at
 * the end of an event: no pointer to them is held then). */
void em_exec_forget_gone(em_sched *s);
void em_exec_check_timeouts(em_sched *s);
int em_exec_crash_ran(const em_exec *ex, em_task_id task);
int em_exec_others_alive(const em_sched *s, const em_exec *ex);

/* em_sched_dispatch.c */
void em_dispatch(em_sched *s);
void em_dispatch_answer_waiting(em_sched *s);

/* em_sched_recovery.c */
/* em_recover_failed_task: task part of st failed on ex: run it again (elsewhere when
 * possible) up to max_attempts, recompute a map output it could not fetch, or fail the job. */
void em_recover_failed_task(em_sched *s, em_exec *ex, em_stage *st, uint32_t part,
                            const Ember__TaskResult *res);
/* em_recover_lost_executor: its running tasks run again, and the map outputs it held that a
 * running job still needs are recomputed. */
void em_recover_lost_executor(em_sched *s, em_exec *ex);

/* em_sched_reuse.c */
int em_reuse_fingerprints(em_job *job);
/* em_reuse_plan marks the stages of a new job that need not run: map stages whose output its
 * session kept, and stages only those needed. Returns the tasks skipped, or < 0 without
 * memory. */
int em_reuse_plan(em_sched *s, em_job *job);
/* em_reuse_stage_done settles the output of a map stage of a job that just ended (and left
 * s->jobs): kept for its session when the job succeeded, else dropped unless kept or read by
 * another running job. */
void em_reuse_stage_done(em_sched *s, const em_stage *st);
void em_reuse_forget_session(em_sched *s, em_session_id session);
void em_reuse_forget_executor(em_sched *s, em_exec_id ex);
void em_reuse_free(em_sched *s);
/* em_shuffle_drop tells executors (in their next Tasks) to remove a map stage's blocks. */
void em_shuffle_drop(em_sched *s, em_stage_id map_stage);
int em_session_owns_kept(const em_sched *s, em_session_id session);

/* em_sched_cache.c */
void em_cache_stored(em_sched *s, const em_job *job, em_exec_id ex, uint64_t fingerprint,
                     uint32_t part, uint64_t bytes);
/* em_cache_lost_reason: a task of this job computed partition part of a persisted node: if
 * it had been cached and was lost, why (else -1). Call before its stored partitions are
 * recorded. */
int em_cache_lost_reason(em_sched *s, const em_job *job, uint64_t fingerprint, uint32_t part);
void em_cache_hit(em_sched *s, const em_job *job, uint64_t fingerprint);
void em_cache_evicted(em_sched *s, em_exec_id ex, uint64_t fingerprint, uint32_t part);
/* em_cache_holder: the live executor holding that partition for the session, or none. */
em_exec_id em_cache_holder(const em_sched *s, em_session_id session, uint64_t fingerprint,
                           uint32_t part);
void em_cache_forget_executor(em_sched *s, em_exec_id ex);
/* em_cache_drop removes a session's cached partitions (fingerprint 0: all of them). */
void em_cache_drop(em_sched *s, em_session_id session, uint64_t fingerprint);
void em_cache_free(em_sched *s);
int em_session_owns_cached(const em_sched *s, em_session_id session);
/* em_cache_known: the session has had partitions of that persisted dataset cached */
int em_cache_known(const em_sched *s, em_session_id session, uint64_t fingerprint);

/* em_sched_locality.c */
/* em_preferred_executor: the live executor a task of st would rather run on (caching its
 * partition, or holding most of its shuffle input), or none. */
em_exec_id em_preferred_executor(em_sched *s, em_stage *st, uint32_t part);
/* em_stage_has_preferences: some task of st may prefer an executor (else dispatch need not
 * look for them: a stage of many tasks is not scanned at every dispatch). */
int em_stage_has_preferences(em_sched *s, em_stage *st);
/* em_locality_map_output keeps a map task's bucket sizes for the reduce tasks' preferences. */
void em_locality_map_output(em_stage *st, uint32_t part, const uint64_t *bucket_bytes, size_t n);

#endif
