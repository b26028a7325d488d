/* em_dispatch.c -- the task scheduler: hands pending tasks to executors' waiting polls.
 *
 * An idle executor keeps one Poll parked at the driver; dispatch answers it with a batch of
 * tasks (at most EM_LAUNCH_MAX), preceded by the StageDef of every stage the executor has not
 * seen. An executor gets as many tasks as it has free slots, so long tasks spread over the
 * cluster; once a stage's tasks prove short (mean under SHORT_TASK_US), it may also queue
 * queue_depth tasks per slot, which amortizes the round trip over many tasks.
 * Tasks go out in job order, then stage order, then partition order (deterministic).
 */
#include <ember/ember.h>
#include <stdlib.h>

#include "em_driver.h"
#include "em_log.h"

#define SHORT_TASK_US 2000

typedef struct launch {
    em_stage *st;
    uint32_t part;
} launch;

/* per-dispatch scratch, reused between calls */
static launch scratch[EM_LAUNCH_MAX];
static Ember__TaskLaunch launch_msgs[EM_LAUNCH_MAX];
static Ember__TaskLaunch *launch_ptrs[EM_LAUNCH_MAX];
static em_iov launch_data[EM_LAUNCH_MAX];

static em_stage *next_runnable_stage(em_driver *d)
{
    for (em_job *job = d->jobs; job; job = job->next)
        for (size_t i = 0; i < job->n_stages; i++)
            if (job->stages[i].state == EM_RUN_RUNNING && job->stages[i].q_len > 0)
                return &job->stages[i];
    return NULL;
}

static int short_tasks(const em_stage *st)
{
    return st->n_done > 0 && st->task_us_total / st->n_done < SHORT_TASK_US;
}

static int knows_stage(const em_exec *ex, uint64_t stage_id)
{
    for (int i = 0; i < EM_KNOWN_STAGES; i++)
        if (ex->known_stages[i] == stage_id) return 1;
    return 0;
}

/* take pops up to `max` pending tasks for ex into out[]; returns how many. */
static uint32_t take(em_driver *d, em_exec *ex, uint32_t max, launch *out)
{
    uint32_t n = 0;
    int64_t now = em_now_us();
    while (n < max) {
        em_stage *st = next_runnable_stage(d);
        if (!st) break;
        while (n < max && st->q_len > 0) {
            uint32_t part = st->queue[st->q_head];
            st->q_head = (st->q_head + 1) % st->plan.partitions;
            st->q_len--;
            em_task *task = &st->tasks[part];
            task->state = EM_TASK_RUNNING;
            task->executor = ex->id;
            task->launched_us = now;
            st->n_running++;
            out[n++] = (launch){st, part};
        }
    }
    ex->assigned += n;
    d->totals.tasks_launched += n;
    return n;
}

/* send_tasks answers ex's parked poll with n launches. */
static void send_tasks(em_driver *d, em_exec *ex, const launch *ls, uint32_t n)
{
    Ember__StageDef defs[8], *def_ptrs[8];
    size_t n_defs = 0, n_data = 0;
    uint64_t data_off = 0;
    for (uint32_t i = 0; i < n; i++) {
        em_stage *st = ls[i].st;
        if (!knows_stage(ex, st->id) && n_defs < 8) {
            ember__stage_def__init(&defs[n_defs]);
            defs[n_defs].stage_id = st->id;
            defs[n_defs].job_id = st->job->id;
            defs[n_defs].graph = st->job->submit->graph;
            def_ptrs[n_defs] = &defs[n_defs];
            n_defs++;
            ex->known_stages[ex->known_next++ % EM_KNOWN_STAGES] = st->id;
        }
        Ember__TaskLaunch *tl = &launch_msgs[i];
        ember__task_launch__init(tl);
        tl->task_id = EM_TASK_ID(st->id, st->tasks[ls[i].part].attempt, ls[i].part);
        tl->stage_id = st->id;
        tl->partition = ls[i].part;
        tl->attempt = st->tasks[ls[i].part].attempt;
        const Ember__Node *src = st->job->submit->graph->nodes[st->plan.source];
        if (src->kind == EMBER__NODE_KIND__NODE_PARALLELIZE) {
            uint64_t lo = src->data_offsets[ls[i].part], hi = src->data_offsets[ls[i].part + 1];
            tl->data_offset = data_off;
            tl->data_len = hi - lo;
            launch_data[n_data++] = (em_iov){st->job->data.data + lo, (size_t)(hi - lo)};
            data_off += hi - lo;
        }
        launch_ptrs[i] = tl;
    }
    Ember__Tasks msg = EMBER__TASKS__INIT;
    msg.n_stages = n_defs;
    msg.stages = def_ptrs;
    msg.n_tasks = n;
    msg.tasks = launch_ptrs;
    ex->has_poll = 0;
    if (em_server_reply(d->srv, &ex->poll, EM_MSG_TASKS, &msg.base, launch_data, n_data) != EMBER_OK)
        em_exec_lost(d, ex, "cannot send tasks");
}

void em_dispatch(em_driver *d)
{
    em_stage *st;
    for (size_t i = 0; i < d->n_execs && (st = next_runnable_stage(d)); i++) {
        em_exec *ex = &d->execs[i];
        if (ex->state != EM_EXEC_ALIVE || !ex->has_poll) continue;
        uint32_t limit = ex->slots * (short_tasks(st) ? 1 + d->cfg.queue_depth : 1);
        if (ex->assigned >= limit) continue;
        uint32_t want = limit - ex->assigned;
        uint32_t n = take(d, ex, want < EM_LAUNCH_MAX ? want : EM_LAUNCH_MAX, scratch);
        send_tasks(d, ex, scratch, n);
        d->dirty = 1;
    }
}

void em_dispatch_answer_poll(em_driver *d, em_exec *ex, em_request *req)
{
    if (ex->has_poll) { /* a newer poll replaces the parked one */
        Ember__Tasks none = EMBER__TASKS__INIT;
        em_server_reply(d->srv, &ex->poll, EM_MSG_TASKS, &none.base, NULL, 0);
    }
    ex->poll = *req;
    ex->has_poll = 1;
    ex->poll_since_us = em_now_us();
    em_dispatch(d);
}

void em_dispatch_expire_polls(em_driver *d, int64_t now)
{
    int64_t period = (int64_t)d->cfg.heartbeat_ms * 1000;
    for (size_t i = 0; i < d->n_execs; i++) {
        em_exec *ex = &d->execs[i];
        if (ex->state == EM_EXEC_ALIVE && ex->has_poll && now - ex->poll_since_us >= period) {
            Ember__Tasks none = EMBER__TASKS__INIT;
            ex->has_poll = 0;
            em_server_reply(d->srv, &ex->poll, EM_MSG_TASKS, &none.base, NULL, 0);
        }
    }
}
