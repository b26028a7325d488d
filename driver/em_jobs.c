/* em_jobs.c -- jobs, their stages and tasks: intake, results, failure, completion.
 *
 * Invariants: a running job is on d->jobs; a stage in EM_RUN_RUNNING has every partition in
 * exactly one of: its queue (PENDING), an executor (RUNNING, counted in n_running), or DONE.
 * A job ends once: success when its last stage's tasks are all done, failure at the first task
 * that fails (or is lost max_attempts times); results that arrive after are ignored.
 */
#include <ember/ember.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_cache.h"
#include "em_driver.h"
#include "em_graph.h"
#include "em_libstore.h"
#include "em_log.h"
#include "em_metrics.h"
#include "em_reuse.h"
#include "em_status.h"

static em_stage *last_stage(em_job *job) { return &job->stages[job->n_stages - 1]; }

static void stage_start(em_stage *st)
{
    st->state = EM_RUN_RUNNING;
    st->started_us = em_now_us();
}

int em_stage_inputs_ready(const em_stage *st)
{
    for (uint32_t p = 0; p < st->plan.n_parents; p++) {
        em_run_state s = st->job->stages[st->plan.parents[p]].state;
        if (s != EM_RUN_SUCCEEDED && s != EM_RUN_SKIPPED) return 0;
    }
    return 1;
}

void em_stage_requeue(em_stage *st, uint32_t part)
{
    st->tasks[part].state = EM_TASK_PENDING;
    st->tasks[part].queued_us = em_now_us();
    st->queue[(st->q_head + st->q_len++) % st->plan.partitions] = part;
}

/* start_ready_stages starts the waiting stages whose parents are done. */
static void start_ready_stages(em_job *job)
{
    for (size_t i = 0; i < job->n_stages; i++)
        if (job->stages[i].state == EM_RUN_WAITING && em_stage_inputs_ready(&job->stages[i]))
            stage_start(&job->stages[i]);
}

/* cache_fp_of: the fingerprint of the persisted node nearest the end of a stage's chain (not
 * through unions: their partitions map to other partitions), or 0 */
static uint64_t cache_fp_of(const em_job *job, const em_stage *st)
{
    const Ember__JobGraph *g = job->submit->graph;
    for (uint32_t id = st->plan.node;; id = g->nodes[id]->parents[0]) {
        const Ember__Node *n = g->nodes[id];
        if (n->storage != EMBER__STORAGE_LEVEL__STORAGE_NONE) return job->node_fp[id];
        if (em_node_is_source(n->kind) || em_node_is_wide(n->kind) ||
            n->kind == EMBER__NODE_KIND__NODE_UNION)
            return 0;
    }
}

static int job_create(em_driver *d, Ember__SubmitJob *s, em_request *req, em_stage_plan *plan,
                      size_t n_plan, em_job **out)
{
    em_job *job = calloc(1, sizeof *job);
    if (!job) return EMBER_ERR_NOMEM;
    job->stages = calloc(n_plan, sizeof *job->stages);
    if (!job->stages ||
        em_buf_append(&job->data, req->frame.data, req->frame.data_len) != EMBER_OK) {
        em_job_free(job);
        return EMBER_ERR_NOMEM;
    }
    job->n_stages = n_plan;
    for (size_t i = 0; i < n_plan; i++) {
        em_stage *st = &job->stages[i];
        st->id = ++d->next_stage_id;
        st->job = job;
        st->plan = plan[i];
        st->tasks = calloc(plan[i].partitions, sizeof *st->tasks);
        st->queue = malloc(plan[i].partitions * sizeof *st->queue);
        if (!st->tasks || !st->queue) {
            em_job_free(job);
            return EMBER_ERR_NOMEM;
        }
        int64_t now = em_now_us();
        for (uint32_t p = 0; p < plan[i].partitions; p++) {
            st->queue[p] = p;
            st->tasks[p].queued_us = now;
        }
        st->q_len = plan[i].partitions;
        job->tasks_total += plan[i].partitions;
        st->output_stage_id = st->id;
        st->shuffle_out = plan[i].shuffle_node != EM_DAG_NONE;
        st->shuffle_node = plan[i].shuffle_node;
        if (st->shuffle_out &&
            (!(st->map_exec = calloc(plan[i].partitions, sizeof *st->map_exec)) ||
             !(st->map_stage_of = calloc(plan[i].partitions, sizeof *st->map_stage_of)))) {
            em_job_free(job);
            return EMBER_ERR_NOMEM;
        }
    }
    if (s->graph->action->kind == EMBER__ACTION_KIND__ACTION_COLLECT &&
        !(job->results = calloc(last_stage(job)->plan.partitions, sizeof *job->results))) {
        em_job_free(job);
        return EMBER_ERR_NOMEM;
    }
    job->submit = s; /* the caller frees s if this fails */
    int skipped = em_reuse_fingerprints(job) == EMBER_OK ? em_reuse_plan(d, job, req->pipe) : -1;
    if (skipped < 0) {
        job->submit = NULL;
        em_job_free(job);
        return EMBER_ERR_NOMEM;
    }
    job->tasks_total -= (uint32_t)skipped;
    for (size_t i = 0; i < job->n_stages; i++)
        job->stages[i].cache_fp = cache_fp_of(job, &job->stages[i]);
    for (size_t i = 0; i < job->n_stages; i++) /* where each map partition's blocks will be */
        for (uint32_t p = 0; job->stages[i].map_stage_of && p < job->stages[i].plan.partitions; p++)
            job->stages[i].map_stage_of[p] = job->stages[i].output_stage_id;
    start_ready_stages(job);
    job->id = ++d->next_job_id;
    snprintf(job->name, sizeof job->name, "%s", s->name[0] ? s->name : s->graph->library_name);
    snprintf(job->submitter, sizeof job->submitter, "%s", s->submitter);
    job->state = EM_RUN_RUNNING;
    job->submit = s;
    job->reply = *req;
    job->has_reply = 1;
    job->submitted_us = em_now_us();
    job->submitted_unix_ms = em_unix_ms();
    job->client_token = s->client_token;
    *out = job;
    return EMBER_OK;
}

int em_job_submit(em_driver *d, em_request *req)
{
    char why[512];
    Ember__SubmitJob *s = em_frame_unpack(&req->frame, EM_MSG_SUBMIT_JOB);
    int rc = EMBER_ERR_INVALID;
    if (!s || !s->graph || strnlen(s->name, 128) > 127 || strnlen(s->submitter, 128) > 127) {
        snprintf(why, sizeof why, "SubmitJob: unreadable request");
        goto fail;
    }
    if ((rc = em_graph_validate(s->graph, req->frame.data_len, why, sizeof why)) != EMBER_OK)
        goto fail;
    if (!em_libstore_has(d->libs, s->graph->library_sha256.data)) {
        rc = EMBER_ERR_NOT_FOUND;
        snprintf(why, sizeof why, "job library %s was not uploaded to the driver",
                 s->graph->library_name);
        goto fail;
    }
    em_stage_plan *plan;
    size_t n_plan;
    if ((rc = em_dag_plan(s->graph, &plan, &n_plan, why, sizeof why)) != EMBER_OK) goto fail;
    em_job *job;
    rc = job_create(d, s, req, plan, n_plan, &job);
    free(plan);
    if (rc != EMBER_OK) {
        snprintf(why, sizeof why, "driver out of memory for the job");
        goto fail;
    }
    em_job **tail = &d->jobs;
    while (*tail) tail = &(*tail)->next;
    *tail = job;
    d->dirty = 1;
    const Ember__Node *src = s->graph->nodes[last_stage(job)->plan.source];
    em_info("job submitted job=%llu name=\"%s\" submitter=\"%s\" action=%s stages=%zu tasks=%u "
            "source=%s%s%s",
            (unsigned long long)job->id, job->name, job->submitter,
            em_action_kind_name(s->graph->action->kind), job->n_stages, job->tasks_total,
            em_node_kind_name(src->kind), src->topic[0] ? ":" : "", src->topic);
    return EMBER_OK;
fail:
    em_pb_free(s);
    em_warn("job rejected reason=\"%s\"", why);
    return em_server_reply_error(d->srv, req, rc, "%s", why);
}

/* job_reply answers the submitter with the job's outcome and collected records. */
static void job_reply(em_driver *d, em_job *job)
{
    if (!job->has_reply) return;
    Ember__JobResult r = EMBER__JOB_RESULT__INIT;
    r.job_id = job->id;
    r.code = job->code;
    r.message = job->error;
    r.records_in = job->records_in;
    r.records_out = job->records_out;
    r.tasks = job->tasks_total;
    r.stages = (uint32_t)job->n_stages;
    r.duration_us = job->finished_us - job->submitted_us;
    size_t n_iov = job->code == EMBER_OK && job->results ? last_stage(job)->plan.partitions : 0;
    em_iov *iov = n_iov ? malloc(n_iov * sizeof *iov) : NULL;
    if (n_iov && !iov) {
        r.code = EMBER_ERR_NOMEM;
        r.message = "driver out of memory sending the result";
        n_iov = 0;
    }
    for (size_t i = 0; i < n_iov; i++) iov[i] = (em_iov){job->results[i].data, job->results[i].len};
    if (em_server_reply(d->srv, &job->reply, EM_MSG_JOB_RESULT, &r.base, iov, n_iov) != EMBER_OK)
        em_warn("job result not delivered job=%llu", (unsigned long long)job->id);
    free(iov);
    job->has_reply = 0;
}

/* job_finish ends a job: answers the submitter and moves the job to the finished list. */
static void job_finish(em_driver *d, em_job *job)
{
    job->finished_us = em_now_us();
    job->state = job->code == EMBER_OK ? EM_RUN_SUCCEEDED : EM_RUN_FAILED;
    if (job->code == EMBER_OK)
        d->totals.jobs_succeeded++;
    else
        d->totals.jobs_failed++;
    em_log(job->code == EMBER_OK ? EM_LOG_INFO : EM_LOG_WARN,
           "job finished job=%llu name=\"%s\" state=%s tasks=%u records_in=%lld records_out=%lld "
           "duration_ms=%.3f%s%s",
           (unsigned long long)job->id, job->name, job->code == EMBER_OK ? "succeeded" : "failed",
           job->tasks_total, (long long)job->records_in, (long long)job->records_out,
           (job->finished_us - job->submitted_us) / 1000.0, job->code ? " error=" : "",
           job->code ? job->error : "");
    job_reply(d, job);
    for (em_job **p = &d->jobs; *p; p = &(*p)->next)
        if (*p == job) {
            *p = job->next;
            break;
        }
    /* keep a summary for the status endpoint; release the heavy parts now */
    for (size_t i = 0; i < job->n_stages; i++) {
        em_stage *st = &job->stages[i];
        for (uint32_t p = 0; job->code != EMBER_OK && st->tasks && p < st->plan.partitions; p++)
            if (st->tasks[p].state == EM_TASK_PENDING || st->tasks[p].state == EM_TASK_RUNNING)
                st->tasks[p].state = EM_TASK_CANCELLED; /* results still to come are ignored */
        if (job->code != EMBER_OK) st->n_running = st->q_len = 0;
        if (st->state == EM_RUN_RUNNING) {
            st->state = job->code == EMBER_OK ? EM_RUN_SUCCEEDED : EM_RUN_FAILED;
            st->finished_us = job->finished_us;
        }
        free(st->queue);
        st->queue = NULL;
        if (st->shuffle_out) em_reuse_stage_done(d, st);
        free(st->map_exec);
        st->map_exec = NULL;
        free(st->bucket_sizes);
        st->bucket_sizes = NULL;
        free(st->preferred);
        st->preferred = NULL;
    }
    em_status_freeze_job(job); /* its task lists become text; the tasks themselves go */
    if (job->results)
        for (uint32_t i = 0; i < last_stage(job)->plan.partitions; i++)
            em_buf_free(&job->results[i]);
    free(job->results);
    job->results = NULL;
    em_buf_free(&job->data);
    job->next = d->finished;
    d->finished = job;
    if (++d->n_finished > EM_FINISHED_JOBS_KEPT) {
        em_job *j = d->finished;
        while (j->next && j->next->next) j = j->next;
        em_job_free(j->next);
        j->next = NULL;
        d->n_finished--;
    }
    d->dirty = 1;
}

void em_job_fail(em_driver *d, em_job *job, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(job->error, sizeof job->error, fmt, ap);
    va_end(ap);
    job->code = code;
    job_finish(d, job);
}

static em_stage *find_stage(em_driver *d, uint64_t stage_id)
{
    for (em_job *job = d->jobs; job; job = job->next)
        if (stage_id >= job->stages[0].id && stage_id <= job->stages[job->n_stages - 1].id)
            return &job->stages[stage_id - job->stages[0].id];
    return NULL;
}

/* stage_succeeded starts the stages that were waiting for it, or ends the job. */
static void stage_succeeded(em_driver *d, em_stage *st)
{
    em_job *job = st->job;
    st->state = EM_RUN_SUCCEEDED;
    st->finished_us = em_now_us();
    em_info("stage finished job=%llu stage=%llu tasks=%u duration_ms=%.3f",
            (unsigned long long)job->id, (unsigned long long)st->id, st->plan.partitions,
            (st->finished_us - st->started_us) / 1000.0);
    if (st == last_stage(job)) {
        job->code = EMBER_OK;
        job_finish(d, job);
        return;
    }
    if (st->rerun) { /* its children read outputs that moved: send them new definitions */
        for (size_t i = 0; i < job->n_stages; i++)
            for (uint32_t p = 0; p < job->stages[i].plan.n_parents; p++)
                if (&job->stages[job->stages[i].plan.parents[p]] == st)
                    job->stages[i].def_version++;
        st->rerun = 0;
    }
    start_ready_stages(job);
}

static int keep_result(em_driver *d, em_job *job, uint32_t part, const uint8_t *data, size_t len)
{
    if (job->result_bytes + len > d->cfg.max_result) {
        em_job_fail(d, job, EMBER_ERR_TOO_LARGE,
                    "job %llu: collected result exceeds the driver's limit of %llu bytes "
                    "(--max-result); save it to Kafka or files instead",
                    (unsigned long long)job->id, (unsigned long long)d->cfg.max_result);
        return 0;
    }
    em_buf_free(&job->results[part]);
    if (em_buf_append(&job->results[part], data, len) != EMBER_OK) {
        em_job_fail(d, job, EMBER_ERR_NOMEM, "job %llu: driver out of memory for results",
                    (unsigned long long)job->id);
        return 0;
    }
    job->result_bytes += len;
    return 1;
}

void em_job_task_result(em_driver *d, em_exec *ex, const Ember__TaskResult *res,
                        const uint8_t *data)
{
    em_stage *st = find_stage(d, EM_TASK_STAGE(res->task_id));
    uint32_t part = EM_TASK_PART(res->task_id);
    if (!st || st->state != EM_RUN_RUNNING || part >= st->plan.partitions) return;
    em_task *task = &st->tasks[part];
    if (task->state != EM_TASK_RUNNING || task->executor != ex->id ||
        task->attempt != EM_TASK_ATTEMPT(res->task_id))
        return; /* a stale attempt */
    em_job *job = st->job;
    st->n_running--;
    task->duration_us = res->duration_us;
    task->records_in = res->records_in;
    task->records_out = res->records_out;
    task->bytes_out = res->data_len;
    em_metrics_task_done(&d->totals, res);
    if (res->code != EMBER_OK) {
        ex->tasks_failed++;
        em_recover_failed_task(d, ex, st, part, res);
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
    int lost = st->cache_fp && !res->from_cache
                   ? em_cache_lost_reason(d, job, st->cache_fp, part)
                   : -1; /* it computed a cached partition that was lost: a recomputation */
    if (lost >= 0) {
        st->n_recomputed[lost]++;
        d->totals.tasks_recomputed[lost]++;
    }
    for (size_t c = 0; c < res->n_cached; c++)
        em_cache_stored(d, job, ex->id, res->cached[c]->fingerprint, res->cached[c]->partition,
                        res->cached[c]->bytes);
    if (res->from_cache) {
        st->cache_hits++;
        d->totals.cache_hits++;
        em_cache_hit(d, job, st->cache_fp);
    }
    if (st->shuffle_out) {
        st->map_exec[part] = ex->id;
        st->map_stage_of[part] = st->id;
        em_locality_map_output(st, part, res->bucket_bytes, res->n_bucket_bytes);
        for (size_t b = 0; b < res->n_bucket_bytes; b++) {
            st->shuffle_bytes += res->bucket_bytes[b];
            ex->shuffle_bytes += res->bucket_bytes[b];
        }
    }
    if (st == last_stage(job)) {
        job->records_out += res->records_out;
        if (job->results && !keep_result(d, job, part, data, res->data_len)) return;
    }
    if (st->n_done == st->plan.partitions) stage_succeeded(d, st);
}

void em_job_submitter_gone(em_driver *d, uint32_t pipe)
{
    em_reuse_forget_pipe(d, pipe);
    em_cache_drop(d, pipe, 0);
    em_job *job = d->jobs;
    while (job) {
        em_job *next = job->next;
        if (job->has_reply && job->reply.pipe == pipe) {
            em_server_drop(&job->reply);
            job->has_reply = 0;
            em_job_fail(d, job, EMBER_ERR_CANCELLED,
                        "job %llu cancelled: its submitter disconnected",
                        (unsigned long long)job->id);
        }
        job = next;
    }
}

void em_job_free(em_job *job)
{
    if (!job) return;
    for (size_t i = 0; job->stages && i < job->n_stages; i++) {
        free(job->stages[i].tasks);
        free(job->stages[i].queue);
        free(job->stages[i].map_exec);
        free(job->stages[i].map_stage_of);
        free(job->stages[i].bucket_sizes);
        free(job->stages[i].preferred);
        em_text_unref(job->stages[i].doc);
    }
    if (job->results)
        for (uint32_t i = 0; i < last_stage(job)->plan.partitions; i++)
            em_buf_free(&job->results[i]);
    free(job->results);
    free(job->stages);
    free(job->node_fp);
    em_buf_free(&job->data);
    if (job->has_reply) em_server_drop(&job->reply);
    em_pb_free(job->submit);
    free(job);
}

void em_jobs_free_all(em_driver *d)
{
    for (em_job *lists[2] = {d->jobs, d->finished}, **l = lists; l < lists + 2; l++)
        while (*l) {
            em_job *next = (*l)->next;
            em_job_free(*l);
            *l = next;
        }
    d->jobs = d->finished = NULL;
}

void em_job_progress(em_driver *d, em_request *req)
{
    Ember__JobProgress *q = em_frame_unpack(&req->frame, EM_MSG_JOB_PROGRESS);
    Ember__JobProgressReply r = EMBER__JOB_PROGRESS_REPLY__INIT;
    for (em_job *job = d->jobs; q && q->client_token && job; job = job->next) {
        if (job->client_token != q->client_token || !job->has_reply || job->reply.pipe != req->pipe)
            continue;
        r.found = 1;
        r.job_id = job->id;
        r.stages = (uint32_t)job->n_stages;
        for (size_t i = 0; i < job->n_stages; i++)
            r.stages_done +=
                job->stages[i].state == EM_RUN_SUCCEEDED || job->stages[i].state == EM_RUN_SKIPPED;
        r.tasks_done = job->tasks_done;
        r.tasks = job->tasks_total;
        r.records_in = job->records_in;
        r.elapsed_us = em_now_us() - job->submitted_us;
        break;
    }
    em_pb_free(q);
    em_server_reply(d->srv, req, EM_MSG_JOB_PROGRESS_REPLY, &r.base, NULL, 0);
}
