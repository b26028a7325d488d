/* em_sched_recovery.c -- when work is lost: task retries, lost map outputs recomputed from
 * lineage.
 *
 * - A task that fails runs again, on another executor when one is alive, until it has been
 *   launched max_attempts times; then its job fails with one message naming the job, stage,
 *   partition, attempts, executor and cause. A failure the executor marks fatal (a missing
 *   symbol, an invalid graph: no other attempt can cure it) fails the job at once.
 * - A reduce task that cannot read a map output reports a fetch failure: that map output,
 *   and the stage's other outputs on the same executor, are computed again (their stage runs
 *   again for them alone), and the reduce task waits for them.
 * - An executor lost: its running tasks run again; every map output it held that a stage of a
 *   running job has still to read is computed again. Only the lost partitions run: the map
 *   stage goes back to running with those tasks queued, its children wait (their queued tasks
 *   are held until em_stage_inputs_ready), and get a new definition naming the new holders.
 *   Stages are looked at children first, so an output lost by a stage that must itself run
 *   again makes the outputs it reads needed too.
 * Each relaunch is counted per stage and reason (/api/v1/jobs).
 */
#include <ember/ember.h>
#include <stdio.h>

#include "em_log.h"
#include "em_sched_int.h"

/* still_read: some stage of st's job has st as a parent and has not finished reading it */
static int still_read(const em_stage *st)
{
    const em_job *job = st->job;
    uint32_t self = (uint32_t)(st - job->stages);
    for (size_t i = 0; i < job->n_stages; i++) {
        const em_stage *child = &job->stages[i];
        if (child->state == EM_RUN_SUCCEEDED || child->state == EM_RUN_SKIPPED) continue;
        for (uint32_t p = 0; p < child->plan.n_parents; p++)
            if (child->plan.parents[p] == self) return 1;
    }
    return 0;
}

static void unskip(em_sched *s, em_stage *st);

/* make_runnable puts a stage that must run (again) back in the running or waiting state. */
static void make_runnable(em_sched *s, em_stage *st)
{
    if (st->state == EM_RUN_RUNNING || st->state == EM_RUN_WAITING) return;
    if (st->state == EM_RUN_SUCCEEDED || st->state == EM_RUN_SKIPPED) st->rerun = 1;
    st->finished_us = 0;
    /* a kept output that lost a part is recomputed from the stage's own inputs */
    for (uint32_t p = 0; p < st->plan.n_parents; p++)
        unskip(s, &st->job->stages[st->plan.parents[p]]);
    st->state = em_stage_inputs_ready(st) ? EM_RUN_RUNNING : EM_RUN_WAITING;
    if (!st->started_us) st->started_us = s->now;
}

/* unskip runs a stage skipped because no running stage needed it, now that one does. */
static void unskip(em_sched *s, em_stage *st)
{
    if (st->state != EM_RUN_SKIPPED || st->reused) return;
    for (uint32_t p = 0; p < st->plan.partitions; p++) em_stage_requeue(s, st, p);
    st->job->tasks_total += st->plan.partitions;
    st->state = EM_RUN_WAITING;
    make_runnable(s, st);
}

/* lose_output: map partition part of st (done) must be computed again. */
static void lose_output(em_sched *s, em_stage *st, uint32_t part, em_recompute_reason why)
{
    em_task *task = &st->tasks[part];
    if (task->state != EM_TASK_DONE) return; /* already being recomputed */
    st->n_done--;
    st->records_in -= task->records_in; /* counted again when it is done again */
    st->records_out -= task->records_out;
    if (st->plan.n_parents == 0) st->job->records_in -= task->records_in;
    st->job->late_records -= task->late_records;
    st->job->state_keys -= task->state_keys;
    st->job->state_bytes -= task->state_bytes;
    st->job->state_expired -= task->state_expired;
    em_accs_merge_set(&st->job->accs, &task->accs, -1); /* added again when it is done again */
    em_accs_free(&task->accs);
    st->job->tasks_total++; /* tasks_done keeps counting the launch that was lost */
    st->n_recomputed[why]++;
    s->totals.tasks_recomputed[why]++;
    em_stage_requeue(s, st, part);
    make_runnable(s, st);
    em_info("map output lost job=%llu stage=%llu partition=%u executor=%u reason=%s",
            (unsigned long long)st->job->id.v, (unsigned long long)st->id.v, part,
            st->map_exec[part].v, em_recompute_reason_name(why));
}

/* lose_holder_outputs: map output `reported` could not be read by a reader launched at
 * reader_launched_us, so none of that stage's outputs on the same executor is trusted (as
 * Spark does): they are all computed again, at once, rather than one fetch failure -- and one
 * attempt of the reader -- at a time. Outputs launched after the reader are newer than what
 * it read (a reader starts once every output it reads is done): another reader's earlier
 * report already had them computed again, so a late report leaves them alone, and when the
 * reported output itself is newer, wherever it now is, the report is about nothing there is. */
static void lose_holder_outputs(em_sched *s, em_stage *st, uint32_t reported,
                                int64_t reader_launched_us)
{
    if (st->tasks[reported].launched_us > reader_launched_us) return; /* moved on since */
    em_exec_id holder = st->map_exec[reported];
    for (uint32_t p = 0; p < st->plan.partitions; p++)
        if (st->map_exec[p].v == holder.v && st->tasks[p].launched_us <= reader_launched_us)
            lose_output(s, st, p, EM_RECOMPUTE_FETCH_FAILURE);
}

/* map_stage_with_blocks finds the stage of job whose partition part's blocks carry block_stage. */
static em_stage *map_stage_with_blocks(em_job *job, uint64_t block_stage, uint32_t part)
{
    for (size_t i = 0; i < job->n_stages; i++) {
        em_stage *st = &job->stages[i];
        if (st->shuffle_out && part < st->plan.partitions && st->map_stage_of[part] == block_stage)
            return st;
    }
    return NULL;
}

void em_recover_failed_task(em_sched *s, em_exec *ex, em_stage *st, uint32_t part,
                            const Ember__TaskResult *res)
{
    em_job *job = st->job;
    em_task *task = &st->tasks[part];
    int code = res->code < 0 ? res->code : EMBER_ERR_PROTOCOL;
    em_stage *lost = res->fetch_failed ? map_stage_with_blocks(job, res->fetch_map_stage,
                                                               res->fetch_map_partition)
                                       : NULL;
    if (task->attempt + 1u < s->cfg.max_attempts && (lost || !res->fatal)) {
        task->attempt++;
        task->avoid = lost || !em_exec_others_alive(s, ex) ? EM_NO_EXEC : ex->id;
        em_stage_requeue(s, st, part);
        if (lost) { /* not this task's fault: recompute what it could not read */
            st->n_recomputed[EM_RECOMPUTE_FETCH_FAILURE]++;
            s->totals.tasks_recomputed[EM_RECOMPUTE_FETCH_FAILURE]++;
            lose_holder_outputs(s, lost, res->fetch_map_partition, task->launched_us);
        } else {
            st->n_retried++;
            s->totals.tasks_retried++;
        }
        em_info("task will run again job=%llu stage=%llu partition=%u attempt=%u reason=%s",
                (unsigned long long)job->id.v, (unsigned long long)st->id.v, part,
                task->attempt + 1, lost ? "fetch_failure" : "task_failure");
        return;
    }
    task->state = EM_TASK_FAILED;
    em_job_fail(s, job, code,
                "job %llu (%s) failed: stage %llu partition %u failed %u time%s (attempt %u on "
                "executor %u at %s): %s [%s]",
                (unsigned long long)job->id.v, job->name, (unsigned long long)st->id.v, part,
                task->attempt + 1, task->attempt ? "s" : "", task->attempt + 1, ex->id.v,
                ex->address, res->message, ember_err_name(code));
}

/* relaunch_running puts the tasks of st running on ex back in the queue; returns 0 if the job
 * failed because one of them was lost too often. */
static int relaunch_running(em_sched *s, em_exec *ex, em_stage *st)
{
    em_job *job = st->job;
    for (uint32_t p = 0; p < st->plan.partitions; p++) {
        em_task *task = &st->tasks[p];
        if (task->state != EM_TASK_RUNNING || !em_exec_is(ex, task->executor)) continue;
        st->n_running--;
        ex->running--;
        task->state = EM_TASK_PENDING;
        /* with a crash report, only the tasks it lists could have caused the crash: the
         * others (queued, or running beside) run again without an attempt lost */
        em_task_id launched = em_task_id_of(st->id, task->attempt, p);
        int blamed = ex->n_crash_tasks == 0 || em_exec_crash_ran(ex, launched);
        if (blamed && ++task->attempt >= s->cfg.max_attempts) {
            em_job_fail(s, job, EMBER_ERR_EXECUTOR_LOST,
                        "job %llu (%s) failed: stage %llu partition %u lost its executor %u "
                        "times (last: executor %u at %s, %s%s)",
                        (unsigned long long)job->id.v, job->name, (unsigned long long)st->id.v, p,
                        (unsigned)task->attempt, ex->id.v, ex->address, ex->lost_reason,
                        em_exec_crash_ran(ex, launched) ? " while running this task" : "");
            return 0;
        }
        em_stage_requeue(s, st, p);
        st->n_recomputed[EM_RECOMPUTE_EXECUTOR_LOST]++;
        s->totals.tasks_relaunched++;
        s->totals.tasks_recomputed[EM_RECOMPUTE_EXECUTOR_LOST]++;
    }
    return 1;
}

void em_recover_lost_executor(em_sched *s, em_exec *ex)
{
    em_job *job = s->jobs;
    while (job) {
        em_job *next = job->next; /* em_job_fail unlinks job */
        int alive = 1;
        for (size_t i = 0; i < job->n_stages && alive; i++)
            if (job->stages[i].state == EM_RUN_RUNNING)
                alive = relaunch_running(s, ex, &job->stages[i]);
        /* map outputs it held that stages have still to read, children first */
        for (size_t i = job->n_stages; alive && i-- > 0;) {
            em_stage *st = &job->stages[i];
            if (!st->shuffle_out || !still_read(st)) continue;
            for (uint32_t p = 0; p < st->plan.partitions; p++)
                if (em_exec_is(ex, st->map_exec[p]) && st->tasks[p].state == EM_TASK_DONE)
                    lose_output(s, st, p, EM_RECOMPUTE_EXECUTOR_LOST);
        }
        job = next;
    }
}
