/* em_sched_dispatch.c -- the task scheduler: which waiting executor runs which pending task.
 *
 * A waiting executor gets a batch of tasks (at most EM_LAUNCH_MAX) as one Tasks effect, with
 * the definition of every stage it does not hold yet. It gets as many tasks as it has free
 * slots, so long tasks spread over the cluster; once a stage's tasks prove short (mean under
 * SHORT_TASK_US) it may also queue queue_depth tasks per slot, which amortizes the round
 * trip over many tasks. Tasks go out in job order, then stage order, then partition order
 * (deterministic); in each stage the tasks that would rather run on the executor go first, a
 * task whose last attempt failed on it is left for another executor, and one that would
 * rather run on another executor waits for it (up to the locality wait; with no wait, it is
 * still left for that executor when it is idle and offered later in the same round).
 */
#include <ember/ember.h>
#include <stdlib.h>

#include "em_sched_int.h"

#define SHORT_TASK_US 2000

/* runnable: a stage with queued tasks whose inputs are all there (a parent that lost map
 * outputs holds its children back until they are computed again) */
static int runnable(const em_stage *st)
{
    return st->state == EM_RUN_RUNNING && st->q_len > 0 && em_stage_inputs_ready(st);
}

static em_stage *next_runnable_stage(em_sched *s)
{
    for (em_job *job = s->jobs; job; job = job->next)
        for (size_t i = 0; i < job->n_stages; i++)
            if (runnable(&job->stages[i])) return &job->stages[i];
    return NULL;
}

static int short_tasks(const em_stage *st)
{
    return st->n_done > 0 && st->task_us_total / st->n_done < SHORT_TASK_US;
}

/* known_key: a stage definition as executors hold it (a new version replaces the old) */
static uint64_t known_key(const em_stage *st) { return st->id.v << 8 | (st->def_version & 255u); }

static int knows_stage(const em_exec *ex, const em_stage *st)
{
    for (int i = 0; i < EM_KNOWN_STAGES; i++)
        if (ex->known_stages[i] == known_key(st)) return 1;
    return 0;
}

/* picker: which queued tasks of a stage an executor may take now */
typedef struct picker {
    em_sched *s;
    em_exec *ex;
    int others;         /* another live executor could take the tasks ex should avoid */
    int preferred_only; /* only tasks that would rather run on ex */
    int stage_prefers;  /* some task of the stage looked at may prefer an executor */
    em_launch *out;     /* where launches go */
    uint32_t n, max;
} picker;

/* waits_for_preferred: task part of st would rather run on another live executor, and has
 * waited less than the locality wait for it, or would only be queued here (no free slot
 * left), or that executor is idle and comes later in this round of offers (so it takes the
 * task now) */
static int waits_for_preferred(const picker *pk, em_stage *st, uint32_t part)
{
    em_sched *s = pk->s;
    if (!pk->stage_prefers) return 0;
    em_exec_id preferred = em_preferred_executor(s, st, part);
    if (!preferred.v || em_exec_is(pk->ex, preferred) || preferred.v == st->tasks[part].avoid.v)
        return 0;
    uint32_t wait_ms = st->cache_fp         ? s->cfg.locality_wait_ms
                       : st->plan.n_parents ? s->cfg.shuffle_locality_wait_ms
                                            : 0; /* a Kafka reader: no wait */
    if (s->now - st->tasks[part].queued_us < (int64_t)wait_ms * 1000) return 1;
    if (pk->ex->assigned + pk->n >= pk->ex->slots) return 1;
    const em_exec *other = em_sched_exec(s, preferred);
    return other->index > pk->ex->index && other->waiting && other->assigned < other->slots;
}

static int may_take(const picker *pk, em_stage *st, uint32_t part)
{
    if (pk->preferred_only) return em_exec_is(pk->ex, em_preferred_executor(pk->s, st, part));
    return !(pk->others && em_exec_is(pk->ex, st->tasks[part].avoid)) &&
           !waits_for_preferred(pk, st, part);
}

/* take_from launches queued tasks of st that pk allows on its executor, until pk is full;
 * the others keep their order at the back of the queue. Returns how many it took. */
static uint32_t take_from(picker *pk, em_stage *st)
{
    uint32_t taken = 0;
    for (uint32_t seen = 0, queued = st->q_len; pk->n < pk->max && seen < queued; seen++) {
        uint32_t part = st->queue[st->q_head];
        st->q_head = (st->q_head + 1) % st->plan.partitions;
        st->q_len--;
        if (!may_take(pk, st, part)) { /* back of the queue */
            st->queue[(st->q_head + st->q_len++) % st->plan.partitions] = part;
            continue;
        }
        em_task *task = &st->tasks[part];
        task->state = EM_TASK_RUNNING;
        task->executor = pk->ex->id;
        task->launched_us = pk->s->now;
        task->preferred = (uint8_t)pk->preferred_only;
        st->n_running++;
        st->n_launched++;
        pk->ex->running++;
        pk->out[pk->n++] = (em_launch){st, part};
        taken++;
    }
    return taken;
}

/* take fills pk with pending tasks for its executor from at most EM_DEFS_MAX stages, and
 * the definitions of those stages the executor does not hold into defs; returns how many
 * definitions. */
static size_t take(picker *pk, em_stage **defs)
{
    size_t n_defs = 0, stages = 0;
    for (em_job *job = pk->s->jobs; job && pk->n < pk->max && stages < EM_DEFS_MAX; job = job->next)
        for (size_t i = 0; i < job->n_stages && pk->n < pk->max && stages < EM_DEFS_MAX; i++) {
            em_stage *st = &job->stages[i];
            if (!runnable(st)) continue;
            uint32_t taken = 0;
            pk->stage_prefers = em_stage_has_preferences(pk->s, st);
            if (pk->stage_prefers) {
                pk->preferred_only = 1;
                taken = take_from(pk, st);
                pk->preferred_only = 0;
            }
            taken += take_from(pk, st);
            if (taken == 0) continue;
            stages++;
            if (!knows_stage(pk->ex, st)) {
                defs[n_defs++] = st;
                pk->ex->known_stages[pk->ex->known_next++ % EM_KNOWN_STAGES] = known_key(st);
            }
        }
    return n_defs;
}

/* offer gives executor ex the tasks it has room for, as one Tasks effect. */
static void offer(em_sched *s, em_exec *ex, em_stage *first)
{
    uint32_t limit = ex->slots * (short_tasks(first) ? 1 + s->cfg.queue_depth : 1);
    if (ex->assigned >= limit) return;
    uint32_t want = limit - ex->assigned;
    picker pk = {s,
                 ex,
                 em_exec_others_alive(s, ex),
                 0,
                 0,
                 NULL,
                 0,
                 want < EM_LAUNCH_MAX ? want : EM_LAUNCH_MAX};
    if (!em_sched_tasks_room(s, pk.max)) {
        s->nomem = 1;
        return;
    }
    pk.out = s->launch_buf + s->n_launch_buf;
    size_t n_defs = take(&pk, s->def_buf + s->n_def_buf);
    if (pk.n == 0) return; /* all left for other executors: it keeps waiting */
    ex->assigned += pk.n;
    s->totals.tasks_launched += pk.n;
    em_sched_push_tasks(s, ex, n_defs, pk.n);
    em_sched_changed(s);
}

void em_dispatch(em_sched *s)
{
    em_stage *st;
    for (size_t i = 0; i < s->n_execs && (st = next_runnable_stage(s)); i++) {
        em_exec *ex = s->execs[i];
        if (ex->state == EM_EXEC_ALIVE && ex->waiting) offer(s, ex, st);
    }
    for (size_t i = 0; i < s->n_execs; i++) { /* launches to stop go out at once */
        em_exec *ex = s->execs[i];
        if (ex->state == EM_EXEC_ALIVE && ex->waiting && ex->n_cancels > 0 &&
            em_sched_tasks_room(s, 0))
            em_sched_push_tasks(s, ex, 0, 0);
    }
}

void em_dispatch_answer_waiting(em_sched *s)
{
    int64_t period = (int64_t)s->cfg.heartbeat_ms * 1000;
    for (size_t i = 0; i < s->n_execs; i++) {
        em_exec *ex = s->execs[i];
        if (ex->state == EM_EXEC_ALIVE && ex->waiting && s->now - ex->waiting_since_us >= period &&
            em_sched_tasks_room(s, 0))
            em_sched_push_tasks(s, ex, 0, 0);
    }
}
