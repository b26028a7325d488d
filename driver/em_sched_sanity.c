/* em_sched_sanity.c -- the scheduler's invariants, checked (see em_sched.h).
 *
 * Cost: one pass over every task of the running jobs. Checked builds (Debug, sanitizers:
 * EMBER_SCHED_CHECKS) run it after every event; tests call it directly.
 */
#include <stdlib.h>

#include "em_log.h"
#include "em_sched_int.h"

#define BROKEN(...)                                                                                \
    do {                                                                                           \
        em_error("scheduler invariant broken: " __VA_ARGS__);                                      \
        return 0;                                                                                  \
    } while (0)

/* stage_ok: a waiting or running stage accounts for each partition exactly once */
static int stage_ok(const em_sched *s, const em_stage *st, uint32_t *running_on)
{
    uint32_t pending = 0, running = 0, done = 0;
    for (uint32_t p = 0; p < st->plan.partitions; p++) {
        const em_task *task = &st->tasks[p];
        pending += task->state == EM_TASK_PENDING;
        done += task->state == EM_TASK_DONE;
        if (task->state != EM_TASK_RUNNING) continue;
        running++;
        const em_exec *ex = em_sched_exec(s, task->executor);
        if (!em_exec_alive(ex))
            BROKEN("stage %llu partition %u runs on executor %u, which is not alive",
                   (unsigned long long)st->id.v, p, task->executor.v);
        running_on[ex->index]++;
    }
    if (pending != st->q_len || running != st->n_running || done != st->n_done)
        BROKEN("stage %llu counts pending/running/done %u/%u/%u, tasks say %u/%u/%u",
               (unsigned long long)st->id.v, st->q_len, st->n_running, st->n_done, pending, running,
               done);
    for (uint32_t i = 0; i < st->q_len; i++) {
        uint32_t part = st->queue[(st->q_head + i) % st->plan.partitions];
        if (part >= st->plan.partitions || st->tasks[part].state != EM_TASK_PENDING)
            BROKEN("stage %llu queues partition %u, which is not pending",
                   (unsigned long long)st->id.v, part);
    }
    return 1;
}

/* inputs_held: a running stage with its inputs ready reads only live holders */
static int inputs_held(const em_sched *s, const em_stage *st)
{
    if (st->state != EM_RUN_RUNNING || !em_stage_inputs_ready(st)) return 1;
    for (uint32_t k = 0; k < st->plan.n_parents; k++) {
        const em_stage *map = &st->job->stages[st->plan.parents[k]];
        for (uint32_t m = 0; m < map->plan.partitions; m++)
            if (!em_exec_alive(em_sched_exec(s, map->map_exec[m])))
                BROKEN("stage %llu reads map output %u of stage %llu from executor %u, which "
                       "is not alive",
                       (unsigned long long)st->id.v, m, (unsigned long long)map->id.v,
                       map->map_exec[m].v);
    }
    return 1;
}

static int jobs_ok(const em_sched *s, uint32_t *running_on)
{
    for (const em_job *job = s->jobs; job; job = job->next) {
        if (job->state != EM_RUN_RUNNING)
            BROKEN("job %llu is listed as running", (unsigned long long)job->id.v);
        if (job->tasks_done > job->tasks_total)
            BROKEN("job %llu has %u of %u tasks done", (unsigned long long)job->id.v,
                   job->tasks_done, job->tasks_total);
        for (size_t i = 0; i < job->n_stages; i++) {
            const em_stage *st = &job->stages[i];
            if ((st->state == EM_RUN_WAITING || st->state == EM_RUN_RUNNING) &&
                !stage_ok(s, st, running_on))
                return 0;
            if (!inputs_held(s, st)) return 0;
        }
    }
    return 1;
}

/* holders_ok: kept outputs and cached partitions name live executors, or none */
static int holders_ok(const em_sched *s)
{
    for (size_t i = 0; i < s->n_kept; i++)
        for (uint32_t p = 0; p < s->kept[i].partitions; p++)
            if (!em_exec_alive(em_sched_exec(s, s->kept[i].map_exec[p])))
                BROKEN("kept output of stage %llu names executor %u, which is not alive",
                       (unsigned long long)s->kept[i].stage_id.v, s->kept[i].map_exec[p].v);
    for (size_t i = 0; i < s->n_cached; i++)
        for (uint32_t p = 0; p < s->cached[i].partitions; p++)
            if (s->cached[i].holder[p].v &&
                !em_exec_alive(em_sched_exec(s, s->cached[i].holder[p])))
                BROKEN("cached partition %u of %016llx names executor %u, which is not alive", p,
                       (unsigned long long)s->cached[i].fingerprint, s->cached[i].holder[p].v);
    return 1;
}

int em_sched_sanity(const em_sched *s)
{
    uint32_t *running_on = calloc(s->n_execs + 1, sizeof *running_on);
    if (!running_on) return 1; /* nothing to check with */
    int ok = jobs_ok(s, running_on) && holders_ok(s);
    for (size_t i = 0; ok && i < s->n_execs; i++) {
        const em_exec *ex = s->execs[i];
        if (ex->running != running_on[i] || ex->assigned < ex->running || ex->index != i) {
            em_error("scheduler invariant broken: executor %u counts %u tasks running and %u "
                     "assigned; %u run on it",
                     ex->id.v, ex->running, ex->assigned, running_on[i]);
            ok = 0;
        }
        if (ex->waiting && ex->state != EM_EXEC_ALIVE) {
            em_error("scheduler invariant broken: executor %u waits for tasks but is not alive",
                     ex->id.v);
            ok = 0;
        }
    }
    free(running_on);
    return ok;
}
