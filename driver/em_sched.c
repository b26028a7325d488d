/* em_sched.c -- the scheduler core's events, effects and jobs (see em_sched.h).
 *
 * Every public event runs between begin() and end(): begin notes the event's time and
 * recycles the effect buffers the caller has consumed; end dispatches tasks when work or
 * capacity appeared, and in checked builds asserts the invariants.
 *
 * A job ends once: success when its last stage's tasks are all done, failure at the first
 * task that fails for good (or is lost max_attempts times); results that arrive after are
 * ignored. Its outcome is a JOB_DONE effect; the caller delivers it and releases the job.
 */
#include "em_sched.h"

#include <ember/ember.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_graph.h"
#include "em_hist.h"
#include "em_log.h"
#include "em_sched_int.h"

const double em_task_duration_bounds[9] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};

/* ---- events ------------------------------------------------------------------------------ */

/* em_sched_begin starts an event at `now`, reusing the effect buffers once the caller has
 * taken every effect; em_sched_end finishes it. */

void em_sched_begin(em_sched *s, int64_t now)
{
    s->now = now;
    if (s->next_effect == s->n_effects) { /* the caller took them all: reuse the buffers */
        s->n_effects = s->next_effect = 0;
        s->n_launch_buf = s->n_def_buf = s->n_drop_buf = 0;
    }
}

void em_sched_end(em_sched *s)
{
    if (s->want_dispatch) {
        s->want_dispatch = 0;
        em_dispatch(s);
    }
    if (s->n_gone > s->cfg.executors_kept) em_exec_forget_gone(s);
#ifdef EMBER_SCHED_CHECKS
    EM_ASSERT(em_sched_sanity(s));
#endif
}

void em_sched_changed(em_sched *s) { s->changes++; }

/* ---- effects ------------------------------------------------------------------------------ */

/* grow makes room for `more` elements of size `size` after *n in *buf (capacity *cap) */
static int grow(void **buf, size_t *cap, size_t n, size_t more, size_t size)
{
    if (n + more <= *cap) return 1;
    size_t want = *cap ? *cap : 16;
    while (want < n + more) want *= 2;
    void *p = realloc(*buf, want * size);
    if (!p) return 0;
    *buf = p;
    *cap = want;
    return 1;
}

static em_effect_slot *new_slot(em_sched *s)
{
    if (!grow((void **)&s->effects, &s->cap_effects, s->n_effects, 1, sizeof *s->effects)) {
        s->nomem = 1;
        return NULL;
    }
    em_effect_slot *e = &s->effects[s->n_effects++];
    memset(e, 0, sizeof *e);
    return e;
}

void em_sched_push(em_sched *s, em_effect_kind kind, em_exec_id ex, em_job_id job)
{
    em_effect_slot *e = new_slot(s);
    if (!e) return;
    e->kind = kind;
    e->ex = ex;
    e->job = job;
}

void em_sched_push_disconnect(em_sched *s, const em_exec *ex)
{
    em_effect_slot *e = new_slot(s);
    if (!e) return;
    e->kind = EM_EFFECT_DISCONNECT;
    e->ex = ex->id;
    e->session = ex->session;
}

int em_sched_tasks_room(em_sched *s, size_t max_launches)
{
    return grow((void **)&s->launch_buf, &s->cap_launch_buf, s->n_launch_buf, max_launches,
                sizeof *s->launch_buf) &&
           grow((void **)&s->def_buf, &s->cap_def_buf, s->n_def_buf, EM_DEFS_MAX,
                sizeof *s->def_buf) &&
           grow((void **)&s->drop_buf, &s->cap_drop_buf, s->n_drop_buf,
                2 * EM_DROPS_KEPT + EM_CANCELS_MAX, sizeof *s->drop_buf);
}

/* ring_since appends the entries of a ring (EM_DROPS_KEPT, `made` ever added) that an
 * executor has not been sent (*sent: what it had been sent), oldest first; returns how many */
static size_t ring_since(em_sched *s, const uint64_t *ring, uint64_t made, uint64_t *sent)
{
    size_t n = 0;
    if (made - *sent > EM_DROPS_KEPT) *sent = made - EM_DROPS_KEPT;
    for (uint64_t i = *sent; i < made; i++, n++)
        s->drop_buf[s->n_drop_buf++] = ring[i % EM_DROPS_KEPT];
    *sent = made;
    return n;
}

void em_sched_push_tasks(em_sched *s, em_exec *ex, size_t n_defs, size_t n_launches)
{
    em_effect_slot *e = new_slot(s);
    if (!e) return;
    e->kind = EM_EFFECT_TASKS;
    e->ex = ex->id;
    e->defs = s->n_def_buf;
    e->n_defs = n_defs;
    e->launches = s->n_launch_buf;
    e->n_launches = n_launches;
    s->n_def_buf += n_defs;
    s->n_launch_buf += n_launches;
    e->drops = s->n_drop_buf;
    e->n_drop_shuffles = ring_since(s, s->drops, s->drops_made, &ex->drops_sent);
    e->n_drop_cached = ring_since(s, s->drop_cached, s->drop_cached_made, &ex->drop_cached_sent);
    memcpy(s->drop_buf + s->n_drop_buf, ex->cancels, ex->n_cancels * sizeof *ex->cancels);
    s->n_drop_buf += ex->n_cancels;
    e->n_cancel_tasks = ex->n_cancels;
    ex->n_cancels = 0;
    ex->waiting = 0;
}

int em_sched_next_effect(em_sched *s, em_effect *out)
{
    if (s->next_effect == s->n_effects) return 0;
    const em_effect_slot *e = &s->effects[s->next_effect++];
    *out = (em_effect){.kind = e->kind, .ex = e->ex, .session = e->session, .job = e->job};
    if (e->kind == EM_EFFECT_TASKS) {
        out->defs = s->def_buf + e->defs;
        out->n_defs = e->n_defs;
        out->launches = s->launch_buf + e->launches;
        out->n_launches = e->n_launches;
        out->drop_shuffles = s->drop_buf + e->drops;
        out->n_drop_shuffles = e->n_drop_shuffles;
        out->drop_cached = s->drop_buf + e->drops + e->n_drop_shuffles;
        out->n_drop_cached = e->n_drop_cached;
        out->cancel_tasks = out->drop_cached + e->n_drop_cached;
        out->n_cancel_tasks = e->n_cancel_tasks;
    }
    return 1;
}

/* ---- stages -------------------------------------------------------------------------------- */

em_stage *em_sched_last_stage(const em_job *job) { return &job->stages[job->n_stages - 1]; }

static void stage_start(em_sched *s, em_stage *st)
{
    st->state = EM_RUN_RUNNING;
    st->started_us = s->now;
    s->want_dispatch = 1;
}

int em_stage_inputs_ready(const em_stage *st)
{
    for (uint32_t p = 0; p < st->plan.n_parents; p++) {
        em_run_state state = st->job->stages[st->plan.parents[p]].state;
        if (state != EM_RUN_SUCCEEDED && state != EM_RUN_SKIPPED) return 0;
    }
    return 1;
}

void em_stage_requeue(em_sched *s, em_stage *st, uint32_t part)
{
    st->tasks[part].state = EM_TASK_PENDING;
    st->tasks[part].queued_us = s->now;
    st->queue[(st->q_head + st->q_len++) % st->plan.partitions] = part;
    s->want_dispatch = 1;
}

/* start_ready_stages starts the waiting stages whose parents are done. */
static void start_ready_stages(em_sched *s, em_job *job)
{
    for (size_t i = 0; i < job->n_stages; i++)
        if (job->stages[i].state == EM_RUN_WAITING && em_stage_inputs_ready(&job->stages[i]))
            stage_start(s, &job->stages[i]);
}

/* cache_fp_of: the fingerprint of the persisted dataset a stage's tasks would read from: of
 * the persisted nodes of its chain (not through unions: their partitions map to other
 * partitions), the one nearest the end that the session has cached partitions of, else the
 * one nearest the end (its partitions are made by this stage), else 0. Executors start from
 * the same node when they hold its partition (em_persist.c), so a dataset cached by an
 * earlier action is read even when a later persisted one is not cached yet. */
static uint64_t cache_fp_of(const em_sched *s, const em_job *job, const em_stage *st)
{
    const Ember__JobGraph *g = job->submit->graph;
    uint64_t nearest = 0;
    for (uint32_t id = st->plan.node;; id = g->nodes[id]->parents[0]) {
        const Ember__Node *n = g->nodes[id];
        if (n->storage != EMBER__STORAGE_LEVEL__STORAGE_NONE) {
            uint64_t fp = job->node_fp[id];
            if (em_cache_known(s, job->session, fp)) return fp;
            if (!nearest) nearest = fp;
        }
        if (em_node_is_source(n->kind) || em_node_is_wide(n->kind) ||
            n->kind == EMBER__NODE_KIND__NODE_UNION)
            return nearest;
    }
}

/* ---- jobs ---------------------------------------------------------------------------------- */

/* free_tasks frees a stage's task records (and their accumulators) */
static void free_tasks(em_stage *st)
{
    for (uint32_t p = 0; st->tasks && p < st->plan.partitions; p++)
        em_accs_free(&st->tasks[p].accs);
    free(st->tasks);
    st->tasks = NULL;
}

static void job_free(em_job *job)
{
    if (!job) return;
    for (size_t i = 0; job->stages && i < job->n_stages; i++) {
        em_stage *st = &job->stages[i];
        free_tasks(st);
        free(st->queue);
        free(st->map_exec);
        free(st->map_stage_of);
        free(st->bucket_sizes);
        free(st->preferred);
    }
    if (job->results)
        for (uint32_t i = 0; i < em_sched_last_stage(job)->plan.partitions; i++)
            em_buf_free(&job->results[i]);
    free(job->results);
    free(job->stages);
    free(job->node_fp);
    free(job->latency);
    em_accs_free(&job->accs);
    em_buf_free(&job->data);
    if (job->submit) protobuf_c_message_free_unpacked(&job->submit->base, NULL);
    free(job);
}

/* stage_init sets up stage st of job from its plan: every partition queued. */
static int stage_init(em_sched *s, em_job *job, em_stage *st, const em_stage_plan *plan)
{
    st->id = (em_stage_id){++s->next_stage_id};
    st->job = job;
    st->plan = *plan;
    st->tasks = calloc(plan->partitions, sizeof *st->tasks);
    st->queue = malloc(plan->partitions * sizeof *st->queue);
    if (!st->tasks || !st->queue) return EMBER_ERR_NOMEM;
    for (uint32_t p = 0; p < plan->partitions; p++) {
        st->queue[p] = p;
        st->tasks[p].queued_us = s->now;
    }
    st->q_len = plan->partitions;
    job->tasks_total += plan->partitions;
    st->output_stage_id = st->id;
    st->shuffle_out = plan->shuffle_node != EM_DAG_NONE;
    if (st->shuffle_out &&
        (!(st->map_exec = calloc(plan->partitions, sizeof *st->map_exec)) ||
         !(st->map_stage_of = calloc(plan->partitions, sizeof *st->map_stage_of))))
        return EMBER_ERR_NOMEM;
    return EMBER_OK;
}

static int job_create(em_sched *s, em_session_id session, Ember__SubmitJob *submit,
                      const uint8_t *data, size_t data_len, const em_stage_plan *plan,
                      size_t n_plan, em_job **out)
{
    em_job *job = calloc(1, sizeof *job);
    if (!job) return EMBER_ERR_NOMEM;
    job->stages = calloc(n_plan, sizeof *job->stages);
    job->n_stages = n_plan;
    int rc = job->stages ? em_buf_append(&job->data, data, data_len) : EMBER_ERR_NOMEM;
    for (size_t i = 0; rc == EMBER_OK && i < n_plan; i++)
        rc = stage_init(s, job, &job->stages[i], &plan[i]);
    if (rc == EMBER_OK && submit->graph->action->kind == EMBER__ACTION_KIND__ACTION_COLLECT &&
        !(job->results = calloc(em_sched_last_stage(job)->plan.partitions, sizeof *job->results)))
        rc = EMBER_ERR_NOMEM;
    job->submit = submit;
    job->session = session;
    int skipped =
        rc == EMBER_OK && em_reuse_fingerprints(job) == EMBER_OK ? em_reuse_plan(s, job) : -1;
    if (skipped < 0) {
        job->submit = NULL; /* the caller keeps it */
        job_free(job);
        return EMBER_ERR_NOMEM;
    }
    job->tasks_total -= (uint32_t)skipped;
    for (size_t i = 0; i < job->n_stages; i++) {
        em_stage *st = &job->stages[i];
        st->cache_fp = cache_fp_of(s, job, st);
        for (uint32_t p = 0; st->map_stage_of && p < st->plan.partitions; p++)
            st->map_stage_of[p] = st->output_stage_id.v; /* where its blocks will be */
    }
    start_ready_stages(s, job);
    job->id = (em_job_id){++s->next_job_id};
    snprintf(job->name, sizeof job->name, "%s",
             submit->name[0] ? submit->name : submit->graph->library_name);
    snprintf(job->submitter, sizeof job->submitter, "%s", submit->submitter);
    job->state = EM_RUN_RUNNING;
    job->submitted_us = s->now;
    job->client_token = submit->client_token;
    job->task_timeout_us = (int64_t)submit->task_timeout_ms * 1000;
    job->max_event_time = EM_NO_WATERMARK;
    *out = job;
    return EMBER_OK;
}

static int note_session(em_sched *s, em_session_id id);

/* within_limits: a new job of session, planned as plan, stays within the limits on running
 * jobs per session and tasks per job */
static int within_limits(const em_sched *s, em_session_id session, const em_stage_plan *plan,
                         size_t n_plan, char *err, size_t errlen)
{
    uint64_t tasks = 0;
    uint32_t running = 0;
    for (size_t i = 0; i < n_plan; i++) tasks += plan[i].partitions;
    for (const em_job *job = s->jobs; job; job = job->next) running += job->session.v == session.v;
    if (running >= s->cfg.max_session_jobs) {
        snprintf(err, errlen,
                 "this submitter has %u jobs running, the driver's limit (--max-session-jobs)",
                 running);
        return EMBER_ERR_TOO_LARGE;
    }
    if (tasks > s->cfg.max_job_tasks) {
        snprintf(err, errlen,
                 "the job has %llu tasks, over the driver's limit of %u (--max-job-tasks): use "
                 "fewer partitions",
                 (unsigned long long)tasks, s->cfg.max_job_tasks);
        return EMBER_ERR_TOO_LARGE;
    }
    return EMBER_OK;
}

int em_sched_submit(em_sched *s, em_session_id session, Ember__SubmitJob *submit,
                    const uint8_t *data, size_t data_len, int64_t now, em_job_id *out, char *err,
                    size_t errlen)
{
    em_sched_begin(s, now);
    em_stage_plan *plan;
    size_t n_plan;
    em_job *job = NULL;
    int rc = em_dag_plan(submit->graph, &plan, &n_plan, err, errlen);
    if (rc == EMBER_OK && (rc = within_limits(s, session, plan, n_plan, err, errlen)) != EMBER_OK)
        free(plan);
    if (rc == EMBER_OK) {
        rc = note_session(s, session)
                 ? job_create(s, session, submit, data, data_len, plan, n_plan, &job)
                 : EMBER_ERR_NOMEM;
        free(plan);
        if (rc != EMBER_OK) snprintf(err, errlen, "driver out of memory for the job");
    }
    if (rc == EMBER_OK) {
        em_job **tail = &s->jobs;
        while (*tail) tail = &(*tail)->next;
        *tail = job;
        *out = job->id;
        em_sched_changed(s);
        const Ember__Node *src = submit->graph->nodes[em_sched_last_stage(job)->plan.source];
        em_info("job submitted job=%llu name=\"%s\" submitter=\"%s\" action=%s stages=%zu "
                "tasks=%u source=%s%s%s",
                (unsigned long long)job->id.v, job->name, job->submitter,
                em_action_kind_name(submit->graph->action->kind), job->n_stages, job->tasks_total,
                em_node_kind_name(src->kind), src->topic[0] ? ":" : "", src->topic);
    }
    em_sched_end(s);
    return rc;
}

/* cancel_tasks cancels the pending and running tasks of a stage whose job ended (a job that
 * succeeds may still have been computing lost map outputs again: no longer needed). */
static void cancel_tasks(em_sched *s, em_stage *st)
{
    for (uint32_t p = 0; p < st->plan.partitions; p++) {
        em_task *task = &st->tasks[p];
        if (task->state == EM_TASK_RUNNING) { /* its executor stops it */
            em_sched_exec(s, task->executor)->running--;
            em_exec_cancel(s, task->executor, em_task_id_of(st->id, task->attempt, p));
        }
        if (task->state == EM_TASK_PENDING || task->state == EM_TASK_RUNNING)
            task->state = EM_TASK_CANCELLED; /* results still to come are ignored */
    }
    st->n_running = st->q_len = 0;
}

/* settle_stages ends a finished job's stages: unfinished tasks cancelled, map outputs kept
 * or dropped, what only scheduling needed freed. */
static void settle_stages(em_sched *s, em_job *job)
{
    for (size_t i = 0; i < job->n_stages; i++) {
        em_stage *st = &job->stages[i];
        cancel_tasks(s, st);
        if (st->state == EM_RUN_RUNNING) {
            st->state = job->code == EMBER_OK ? EM_RUN_SUCCEEDED : EM_RUN_FAILED;
            st->finished_us = job->finished_us;
        }
        free(st->queue);
        st->queue = NULL;
        if (st->shuffle_out) em_reuse_stage_done(s, st);
        free(st->bucket_sizes);
        st->bucket_sizes = NULL;
        free(st->preferred);
        st->preferred = NULL;
    }
}

/* job_finish ends a job: it leaves the running list for the finished one, and its outcome is
 * a JOB_DONE effect. */
static void job_finish(em_sched *s, em_job *job)
{
    job->finished_us = s->now;
    job->state = job->code == EMBER_OK ? EM_RUN_SUCCEEDED : EM_RUN_FAILED;
    if (job->code == EMBER_OK)
        s->totals.jobs_succeeded++;
    else
        s->totals.jobs_failed++;
    em_log(job->code == EMBER_OK ? EM_LOG_INFO : EM_LOG_WARN,
           "job finished job=%llu name=\"%s\" state=%s tasks=%u records_in=%lld records_out=%lld "
           "duration_ms=%.3f%s%s",
           (unsigned long long)job->id.v, job->name, em_run_state_name(job->state),
           job->tasks_total, (long long)job->records_in, (long long)job->records_out,
           (job->finished_us - job->submitted_us) / 1000.0, job->code ? " error=" : "",
           job->code ? job->error : "");
    for (em_job **p = &s->jobs; *p; p = &(*p)->next)
        if (*p == job) {
            *p = job->next;
            break;
        }
    settle_stages(s, job);
    em_sched_push(s, EM_EFFECT_JOB_DONE, EM_NO_EXEC, job->id);
    job->next = s->finished;
    s->finished = job;
    if (++s->n_finished > EM_FINISHED_JOBS_KEPT) {
        em_job *j = s->finished;
        while (j->next && j->next->next) j = j->next;
        job_free(j->next);
        j->next = NULL;
        s->n_finished--;
    }
    s->want_dispatch = 1; /* its stages no longer hold executors back */
    em_sched_changed(s);
}

void em_job_fail(em_sched *s, em_job *job, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(job->error, sizeof job->error, fmt, ap);
    va_end(ap);
    job->code = code;
    job_finish(s, job);
}

void em_sched_job_release(em_sched *s, em_job_id id)
{
    em_job *job = em_sched_job(s, id);
    if (!job || job->state == EM_RUN_RUNNING || job->released) return;
    for (size_t i = 0; i < job->n_stages; i++) {
        free_tasks(&job->stages[i]);
        free(job->stages[i].map_exec);
        job->stages[i].map_exec = NULL;
    }
    if (job->results)
        for (uint32_t i = 0; i < em_sched_last_stage(job)->plan.partitions; i++)
            em_buf_free(&job->results[i]);
    free(job->results);
    job->results = NULL;
    em_buf_free(&job->data);
    job->released = 1;
}

static em_stage *find_stage(em_sched *s, em_stage_id id)
{
    for (em_job *job = s->jobs; job; job = job->next)
        if (id.v >= job->stages[0].id.v && id.v <= job->stages[job->n_stages - 1].id.v)
            return &job->stages[id.v - job->stages[0].id.v];
    return NULL;
}

/* stage_succeeded starts the stages that were waiting for it, or ends the job. */
static void stage_succeeded(em_sched *s, em_stage *st)
{
    em_job *job = st->job;
    st->state = EM_RUN_SUCCEEDED;
    st->finished_us = s->now;
    em_info("stage finished job=%llu stage=%llu tasks=%u duration_ms=%.3f",
            (unsigned long long)job->id.v, (unsigned long long)st->id.v, st->plan.partitions,
            (st->finished_us - st->started_us) / 1000.0);
    if (st == em_sched_last_stage(job)) {
        job->code = EMBER_OK;
        job_finish(s, job);
        return;
    }
    if (st->rerun) { /* its children read outputs that moved: send them new definitions */
        for (size_t i = 0; i < job->n_stages; i++)
            for (uint32_t p = 0; p < job->stages[i].plan.n_parents; p++)
                if (&job->stages[job->stages[i].plan.parents[p]] == st)
                    job->stages[i].def_version++;
        st->rerun = 0;
    }
    start_ready_stages(s, job);
    s->want_dispatch = 1; /* held-back children may run now */
}

static int keep_result(em_sched *s, em_job *job, uint32_t part, const uint8_t *data, size_t len)
{
    if (job->result_bytes + len > s->cfg.max_result) {
        em_job_fail(s, job, EMBER_ERR_TOO_LARGE,
                    "job %llu: collected result exceeds the driver's limit of %llu bytes "
                    "(--max-result-mb); save it to Kafka or files instead",
                    (unsigned long long)job->id.v, (unsigned long long)s->cfg.max_result);
        return 0;
    }
    em_buf_free(&job->results[part]);
    if (em_buf_append(&job->results[part], data, len) != EMBER_OK) {
        em_job_fail(s, job, EMBER_ERR_NOMEM, "job %llu: driver out of memory for results",
                    (unsigned long long)job->id.v);
        return 0;
    }
    job->result_bytes += len;
    return 1;
}

/* count_task_done adds a finished task (any outcome) to the totals. */
static void count_task_done(em_totals *t, const Ember__TaskResult *res)
{
    double secs = res->duration_us / 1e6;
    size_t b = 0;
    while (b < 9 && secs > em_task_duration_bounds[b]) b++;
    t->task_duration_buckets[b]++;
    t->task_seconds_sum += secs;
    if (res->code != EMBER_OK) {
        t->tasks_failed++;
        return;
    }
    t->tasks_succeeded++;
    t->records_read += (uint64_t)res->records_in;
    t->records_written += (uint64_t)res->records_out;
    t->result_bytes += res->data_len;
    t->bytes_read += (uint64_t)res->bytes_in;
    t->bytes_written += (uint64_t)res->bytes_out;
    for (size_t i = 0; i < res->n_bucket_bytes; i++) t->bytes_shuffled += res->bucket_bytes[i];
}

/* note_outputs records what a successful task left behind: cached partitions, map output */
static void note_outputs(em_sched *s, em_exec *ex, em_stage *st, uint32_t part,
                         const Ember__TaskResult *res)
{
    em_job *job = st->job;
    int lost = st->cache_fp && !res->from_cache ? em_cache_lost_reason(s, job, st->cache_fp, part)
                                                : -1; /* it computed a lost cached partition */
    if (lost >= 0) {
        st->n_recomputed[lost]++;
        s->totals.tasks_recomputed[lost]++;
    }
    for (size_t c = 0; c < res->n_cached; c++)
        em_cache_stored(s, job, ex->id, res->cached[c]->fingerprint, res->cached[c]->partition,
                        res->cached[c]->bytes);
    if (res->from_cache) {
        st->cache_hits++;
        s->totals.cache_hits++;
        em_cache_hit(s, job, st->cache_fp);
    }
    if (st->shuffle_out) {
        st->map_exec[part] = ex->id;
        st->map_stage_of[part] = st->id.v;
        em_locality_map_output(st, part, res->bucket_bytes, res->n_bucket_bytes);
        for (size_t b = 0; b < res->n_bucket_bytes; b++) {
            st->shuffle_bytes += res->bucket_bytes[b];
            ex->shuffle_bytes += res->bucket_bytes[b];
        }
    }
}

/* launched_here: the stage of the task a result names, if the task runs on ex as that
 * attempt; else NULL (a stale attempt, a task of a job that ended, or none of ex's) */
static em_stage *launched_here(em_sched *s, em_exec *ex, em_task_id id)
{
    em_stage *st = find_stage(s, em_task_stage(id));
    uint32_t part = em_task_part(id);
    if (!st || st->state != EM_RUN_RUNNING || part >= st->plan.partitions) return NULL;
    const em_task *task = &st->tasks[part];
    return task->state == EM_TASK_RUNNING && em_exec_is(ex, task->executor) &&
                   task->attempt == em_task_attempt(id)
               ? st
               : NULL;
}

/* note_latency adds a final task's histogram of record ages to its job's */
static void note_latency(em_job *job, const Ember__TaskResult *res)
{
    size_t n = res->n_latency_buckets < res->n_latency_counts ? res->n_latency_buckets
                                                              : res->n_latency_counts;
    if (n == 0 || (!job->latency && !(job->latency = calloc(1, sizeof *job->latency)))) return;
    for (size_t i = 0; i < n; i++)
        em_hist_add_bucket(job->latency, res->latency_buckets[i], res->latency_counts[i]);
}

/* note_accumulators counts a done task's accumulator additions into its job (a task done again
 * after its output was lost had its earlier additions taken out by em_task_accs_forget) */
static void note_accumulators(em_job *job, em_task *task, const Ember__TaskResult *res)
{
    em_accs_free(&task->accs);
    if (res->n_accumulators == 0) return;
    if (em_accs_merge(&task->accs, res->accumulators, res->n_accumulators, 1) != EMBER_OK ||
        em_accs_merge_set(&job->accs, &task->accs, 1) != EMBER_OK)
        em_warn("accumulators of job %llu not counted: a name used as an int64 and a double, "
                "over %d names, or out of memory",
                (unsigned long long)job->id.v, EM_ACCS_MAX);
}

static void task_result(em_sched *s, em_exec *ex, const Ember__TaskResult *res, const uint8_t *data)
{
    em_task_id id = {res->task_id};
    em_stage *st = launched_here(s, ex, id);
    if (!st) { /* its slot is free again, if it was one of ours */
        if (ex->assigned > ex->running) ex->assigned--;
        return;
    }
    uint32_t part = em_task_part(id);
    em_task *task = &st->tasks[part];
    em_job *job = st->job;
    st->n_running--;
    ex->running--;
    ex->assigned--;
    task->duration_us = res->duration_us;
    task->records_in = res->records_in;
    task->records_out = res->records_out;
    task->late_records = res->late_records;
    task->state_keys = res->state_keys;
    task->state_bytes = res->state_bytes;
    task->state_expired = res->state_expired;
    task->bytes_out = res->data_len;
    task->bytes_in = res->bytes_in;
    task->spilled_bytes = res->spilled_bytes;
    task->input_wait_us = res->input_wait_us;
    task->shuffle_bytes = 0;
    for (size_t b = 0; b < res->n_bucket_bytes; b++) task->shuffle_bytes += res->bucket_bytes[b];
    count_task_done(&s->totals, res);
    if (res->code != EMBER_OK) {
        ex->tasks_failed++;
        em_recover_failed_task(s, ex, st, part, res);
        return;
    }
    ex->tasks_completed++;
    task->state = EM_TASK_DONE;
    st->n_done++;
    job->tasks_done++;
    st->task_us_total += res->duration_us;
    st->records_in += res->records_in;
    st->records_out += res->records_out;
    if (st->plan.n_parents == 0) job->records_in += res->records_in;
    job->late_records += res->late_records;
    job->state_keys += res->state_keys;
    job->state_bytes += res->state_bytes;
    job->state_expired += res->state_expired;
    note_accumulators(job, task, res);
    note_latency(job, res);
    if (res->has_event_time && res->max_event_time > job->max_event_time)
        job->max_event_time = res->max_event_time;
    note_outputs(s, ex, st, part, res);
    if (st == em_sched_last_stage(job)) {
        job->records_out += res->records_out;
        if (job->results && !keep_result(s, job, part, data, res->data_len)) return;
    }
    if (st->n_done == st->plan.partitions) stage_succeeded(s, st);
}

void em_sched_task_results(em_sched *s, em_exec *ex, Ember__TaskResult *const *results,
                           size_t n_results, const uint8_t *data, size_t data_len,
                           Ember__CachedBlock *const *evicted, size_t n_evicted, int64_t now)
{
    em_sched_begin(s, now);
    for (size_t i = 0; i < n_evicted; i++) /* before the results that caused them */
        em_cache_evicted(s, ex->id, evicted[i]->fingerprint, evicted[i]->partition);
    uint64_t off = 0;
    for (size_t i = 0; i < n_results; i++) {
        EM_ASSERT(results[i]->data_len <= data_len - off); /* the caller checked the lengths */
        task_result(s, ex, results[i], data + off);
        off += results[i]->data_len;
    }
    s->want_dispatch = 1; /* its slots are free again */
    em_sched_changed(s);
    em_sched_end(s);
}

/* ---- sessions ------------------------------------------------------------------------------ */

em_session *em_session_find(em_sched *s, em_session_id id)
{
    for (size_t i = 0; i < s->n_sessions; i++)
        if (s->sessions[i].id.v == id.v) return &s->sessions[i];
    return NULL;
}

/* note_session remembers a session that submits a job (0 without memory). */
static int note_session(em_sched *s, em_session_id id)
{
    em_session *se = em_session_find(s, id);
    if (se) {
        se->detached_us = 0;
        return 1;
    }
    if (!grow((void **)&s->sessions, &s->cap_sessions, s->n_sessions, 1, sizeof *s->sessions))
        return 0;
    s->sessions[s->n_sessions++] = (em_session){id, 0};
    return 1;
}

static void forget_session(em_sched *s, em_session_id id)
{
    em_session *se = em_session_find(s, id);
    if (se) *se = s->sessions[--s->n_sessions];
}

/* cancel_jobs fails the running jobs of a session */
static void cancel_jobs(em_sched *s, em_session_id session)
{
    em_job *job = s->jobs;
    while (job) {
        em_job *next = job->next; /* em_job_fail unlinks job */
        if (job->session.v == session.v)
            em_job_fail(s, job, EMBER_ERR_CANCELLED,
                        "job %llu cancelled: its submitter disconnected",
                        (unsigned long long)job->id.v);
        job = next;
    }
}

void em_sched_session_detached(em_sched *s, em_session_id session, int64_t now)
{
    em_sched_begin(s, now);
    cancel_jobs(s, session);
    em_session *se = em_session_find(s, session);
    if (se && (em_session_owns_kept(s, session) || em_session_owns_cached(s, session))) {
        se->detached_us = now ? now : 1;
        em_info("session detached session=%016llx grace_ms=%u", (unsigned long long)session.v,
                s->cfg.session_grace_ms);
    } else if (se) {
        forget_session(s, session);
    }
    em_sched_end(s);
}

void em_sched_session_attached(em_sched *s, em_session_id session)
{
    em_session *se = em_session_find(s, session);
    if (se && se->detached_us) {
        se->detached_us = 0;
        em_info("session resumed session=%016llx", (unsigned long long)session.v);
    }
}

static void session_end(em_sched *s, em_session_id session)
{
    cancel_jobs(s, session);
    em_reuse_forget_session(s, session);
    em_cache_drop(s, session, 0);
    forget_session(s, session);
}

void em_sched_session_ended(em_sched *s, em_session_id session, int64_t now)
{
    em_sched_begin(s, now);
    session_end(s, session);
    em_sched_end(s);
}

void em_sched_unpersist(em_sched *s, em_session_id session, uint64_t fingerprint)
{
    em_cache_drop(s, session, fingerprint);
}

/* expire_sessions ends the sessions whose grace is over */
static void expire_sessions(em_sched *s)
{
    int64_t grace = (int64_t)s->cfg.session_grace_ms * 1000;
    for (size_t i = s->n_sessions; i-- > 0;) {
        em_session se = s->sessions[i];
        if (se.detached_us && s->now - se.detached_us >= grace) {
            em_info("session ended session=%016llx reason=\"no reconnection within %u ms\"",
                    (unsigned long long)se.id.v, s->cfg.session_grace_ms);
            session_end(s, se.id);
        }
    }
}

/* time_out fails task part of st, which ran past its job's task timeout, and tells its
 * executor to stop it (its slot stays taken until the executor reports it stopped). */
static void time_out(em_sched *s, em_stage *st, uint32_t part)
{
    em_task *task = &st->tasks[part];
    em_exec *ex = em_sched_exec(s, task->executor);
    char message[96];
    snprintf(message, sizeof message, "timed out after %.1f s", st->job->task_timeout_us / 1e6);
    Ember__TaskResult res = EMBER__TASK_RESULT__INIT;
    res.code = EMBER_ERR_TIMEOUT;
    res.message = message;
    res.duration_us = s->now - task->launched_us;
    em_exec_cancel(s, ex->id, em_task_id_of(st->id, task->attempt, part));
    em_warn("task timed out job=%llu stage=%llu partition=%u attempt=%u executor=%u after_ms=%lld",
            (unsigned long long)st->job->id.v, (unsigned long long)st->id.v, part,
            task->attempt + 1, ex->id.v, (long long)(res.duration_us / 1000));
    st->n_running--;
    ex->running--;
    ex->tasks_failed++;
    task->duration_us = res.duration_us;
    count_task_done(&s->totals, &res);
    em_recover_failed_task(s, ex, st, part, &res);
}

/* expire_tasks fails the tasks that ran past their job's task timeout */
static void expire_tasks(em_sched *s)
{
    em_job *job = s->jobs;
    while (job) {
        em_job *next = job->next; /* a failure unlinks job */
        for (size_t i = 0; job->task_timeout_us && i < job->n_stages; i++) {
            em_stage *st = &job->stages[i];
            for (uint32_t p = 0;
                 st->state == EM_RUN_RUNNING && st->n_running && p < st->plan.partitions; p++)
                if (st->tasks[p].state == EM_TASK_RUNNING &&
                    s->now - st->tasks[p].launched_us >= job->task_timeout_us)
                    time_out(s, st, p);
            if (job->state != EM_RUN_RUNNING) break;
        }
        job = next;
    }
}

void em_sched_tick(em_sched *s, int64_t now)
{
    em_sched_begin(s, now);
    em_dispatch_answer_waiting(s);
    em_exec_check_timeouts(s);
    expire_sessions(s);
    expire_tasks(s);
    s->want_dispatch = 1; /* locality waits may have run out */
    em_sched_end(s);
}

/* ---- queries and lifetime ---------------------------------------------------------------- */

em_job *em_sched_job(const em_sched *s, em_job_id id)
{
    for (int finished = 0; finished < 2; finished++)
        for (em_job *job = finished ? s->finished : s->jobs; job; job = job->next)
            if (job->id.v == id.v) return job;
    return NULL;
}

em_job *em_sched_job_by_token(const em_sched *s, em_session_id session, uint64_t client_token)
{
    for (em_job *job = s->jobs; client_token && job; job = job->next)
        if (job->client_token == client_token && job->session.v == session.v) return job;
    return NULL;
}

em_sched_config em_sched_config_defaults(void)
{
    return (em_sched_config){.heartbeat_ms = 1000,
                             .executor_timeout_ms = 10000,
                             .crash_grace_ms = 300,
                             .session_grace_ms = 30000,
                             .max_attempts = 4,
                             .locality_wait_ms = 3000,
                             .shuffle_locality_wait_ms = 0,
                             .kafka_affinity = 1,
                             .queue_depth = 64,
                             .max_executors = 4096,
                             .max_session_jobs = 64,
                             .max_job_tasks = 4000000,
                             .executors_kept = 256,
                             .max_result = 256u << 20};
}

void em_sched_init(em_sched *s, const em_sched_config *cfg)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
}

void em_sched_fini(em_sched *s)
{
    for (em_job *lists[2] = {s->jobs, s->finished}, **l = lists; l < lists + 2; l++)
        while (*l) {
            em_job *next = (*l)->next;
            job_free(*l);
            *l = next;
        }
    em_reuse_free(s);
    em_cache_free(s);
    for (size_t i = 0; i < s->n_execs; i++) free(s->execs[i]);
    free(s->execs);
    free(s->sessions);
    free(s->effects);
    free(s->launch_buf);
    free(s->def_buf);
    free(s->drop_buf);
    memset(s, 0, sizeof *s);
}

const char *em_run_state_name(em_run_state st)
{
    static const char *const names[] = {"waiting", "running", "succeeded", "failed", "skipped"};
    return names[st];
}

const char *em_task_state_name(em_task_state st)
{
    static const char *const names[] = {"pending", "running", "done", "failed", "cancelled"};
    return names[st];
}

const char *em_exec_state_name(em_exec_state st)
{
    static const char *const names[] = {"alive", "lost", "stopped"};
    return names[st];
}

const char *em_recompute_reason_name(em_recompute_reason r)
{
    static const char *const names[EM_RECOMPUTE_REASONS] = {"executor_lost", "fetch_failure",
                                                            "eviction"};
    return names[r];
}

void em_sched_submit_failed(em_sched *s, const char *name, const char *submitter,
                            const char *action, const char *error, int64_t at_unix_ms)
{
    em_submit_failure *f = &s->submit_failures[s->n_submit_failures++ % EM_SUBMIT_FAILURES_KEPT];
    f->at_unix_ms = at_unix_ms;
    snprintf(f->name, sizeof f->name, "%s", name);
    snprintf(f->submitter, sizeof f->submitter, "%s", submitter);
    snprintf(f->action, sizeof f->action, "%s", action);
    snprintf(f->error, sizeof f->error, "%s", error);
    em_sched_changed(s);
}
