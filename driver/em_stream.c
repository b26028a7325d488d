/* em_stream.c -- the registry of streaming queries and their batch cycle (see em_stream.h). */
#include "em_stream.h"

#include <ember/ember.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_frame.h"
#include "em_graph.h"
#include "em_hist.h"
#include "em_log.h"

/* batch jobs run in sessions of their own, far from the random ones of clients */
#define QUERY_SESSION_BASE 0xE57E000000000000ull

em_stream_range em_stream_plan(int32_t partition, int64_t from, int64_t low, int64_t high,
                               int earliest, int64_t cap, int64_t *lag)
{
    if (from < 0) from = earliest ? low : high;
    if (from < low) from = low; /* the records before low are gone (retention) */
    if (from > high) from = high;
    int64_t until = cap > 0 && high - from > cap ? from + cap : high;
    *lag = high - until;
    return (em_stream_range){partition, from, until};
}

int64_t em_query_watermark(int64_t max, int64_t delay_ms)
{
    return max == EM_NO_WATERMARK ? EM_NO_WATERMARK : max - delay_ms;
}

int64_t em_query_first_watermark(const em_query *q, int64_t max)
{
    return q->window_delay_ms < 0 ? EM_NO_WATERMARK : em_query_watermark(max, q->window_delay_ms);
}

int em_query_windows_due(const Ember__JobGraph *g, int64_t last, int64_t next)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        const Ember__Node *n = g->nodes[i];
        if (n->kind != EMBER__NODE_KIND__NODE_WINDOW) continue;
        int64_t was = em_query_watermark(last, n->watermark_delay_ms);
        int64_t will = em_query_watermark(next, n->watermark_delay_ms);
        if (will == EM_NO_WATERMARK) continue;
        /* windows end at multiples of the slide: one is final once the watermark reaches it */
        if (was == EM_NO_WATERMARK ||
            em_floor_div(will, n->window_slide_ms) > em_floor_div(was, n->window_slide_ms))
            return 1;
    }
    return 0;
}

/* first_window_delay: the allowed delay of g's first window (-1: none) */
static int64_t first_window_delay(const Ember__JobGraph *g)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->kind == EMBER__NODE_KIND__NODE_WINDOW)
            return g->nodes[i]->watermark_delay_ms;
    return -1;
}

void em_streams_init(em_streams *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* waits follow em_now_us */
    pthread_cond_init(&s->changed, &attr);
    pthread_condattr_destroy(&attr);
    s->next_id = 1;
}

static void query_free(em_query *q)
{
    if (q->graph) ember__job_graph__free_unpacked(q->graph, NULL);
    em_pb_free(q->submit);
    free(q->ranges);
    free(q->part_lag);
    em_accs_free(&q->accs);
    em_accs_free(&q->batch_accs);
    free(q);
}

void em_streams_fini(em_streams *s)
{
    while (s->queries) {
        em_query *q = s->queries;
        s->queries = q->next;
        query_free(q);
    }
    pthread_cond_destroy(&s->changed);
    pthread_mutex_destroy(&s->lock);
}

const char *em_query_state_name(em_query_state st)
{
    switch (st) {
    case EM_QUERY_STARTING: return "starting";
    case EM_QUERY_RUNNING: return "running";
    case EM_QUERY_STOPPED: return "stopped";
    default: return "failed";
    }
}

static int query_ended(const em_query *q)
{
    return q->state == EM_QUERY_STOPPED || q->state == EM_QUERY_FAILED;
}

static em_query *find_by_name(em_streams *s, const char *name)
{
    for (em_query *q = s->queries; q; q = q->next)
        if (strcmp(q->name, name) == 0) return q;
    return NULL;
}

static em_query *find_by_id(em_streams *s, uint64_t id)
{
    for (em_query *q = s->queries; q; q = q->next)
        if (q->id == id) return q;
    return NULL;
}

/* unlink removes q from the registry (not freed) */
static void unlink_query(em_streams *s, em_query *q)
{
    for (em_query **p = &s->queries; *p; p = &(*p)->next)
        if (*p == q) {
            *p = q->next;
            s->n_queries--;
            return;
        }
}

static void changed(em_streams *s)
{
    s->changes++;
    pthread_cond_broadcast(&s->changed);
}

int em_streams_start(em_streams *s, Ember__StartQuery *start, int32_t stream_node,
                     em_session_id owner, int64_t now_unix_ms, char *err, size_t errlen)
{
    int rc = EMBER_OK;
    pthread_mutex_lock(&s->lock);
    em_query *old = find_by_name(s, start->name);
    size_t live = 0;
    for (em_query *q = s->queries; q; q = q->next) live += !query_ended(q);
    em_query *q = NULL;
    if (old && !query_ended(old)) {
        snprintf(err, errlen, "query '%s' is running already (query %llu); stop it first",
                 start->name, (unsigned long long)old->id);
        rc = EMBER_ERR_STATE;
    } else if (live >= EM_QUERIES_MAX) {
        snprintf(err, errlen, "the driver runs %d queries already, its limit", EM_QUERIES_MAX);
        rc = EMBER_ERR_TOO_LARGE;
    } else if (!(q = calloc(1, sizeof *q))) {
        snprintf(err, errlen, "out of memory");
        rc = EMBER_ERR_NOMEM;
    }
    if (rc != EMBER_OK) {
        pthread_mutex_unlock(&s->lock);
        return rc;
    }
    if (old) { /* an ended query of that name: this one replaces it */
        unlink_query(s, old);
        query_free(old);
    }
    q->id = s->next_id++;
    snprintf(q->name, sizeof q->name, "%s", start->name);
    snprintf(q->submitter, sizeof q->submitter, "%s", start->submitter);
    snprintf(q->checkpoint, sizeof q->checkpoint, "%s", start->checkpoint);
    q->owner = start->detach ? (em_session_id){0} : owner;
    q->kept = start->detach && s->state_dir;
    q->session = (em_session_id){QUERY_SESSION_BASE | q->id};
    q->interval_ms = start->interval_ms;
    q->graph = start->graph;
    start->graph = NULL;
    q->stream_node = stream_node;
    q->window_delay_ms = first_window_delay(q->graph);
    q->backpressure = q->graph->nodes[stream_node]->backpressure;
    q->event_time_max = EM_NO_WATERMARK;
    q->times = (em_event_times){EM_NO_WATERMARK, EM_NO_WATERMARK, 0};
    q->created_unix_ms = now_unix_ms;
    q->state = EM_QUERY_STARTING;
    q->last_committed = -1;
    q->next = s->queries;
    s->queries = q;
    s->n_queries++;
    em_info("query registered query=%llu name=%s checkpoint=%s interval_ms=%u mode=%s",
            (unsigned long long)q->id, q->name, q->checkpoint, q->interval_ms,
            q->owner.v ? "client" : "detached");
    changed(s);
    pthread_mutex_unlock(&s->lock);
    em_pb_free(start);
    return EMBER_OK;
}

int em_streams_live(em_streams *s, const char *name)
{
    pthread_mutex_lock(&s->lock);
    const em_query *q = find_by_name(s, name);
    int live = q && !query_ended(q);
    pthread_mutex_unlock(&s->lock);
    return live;
}

int em_streams_stop(em_streams *s, const char *name)
{
    pthread_mutex_lock(&s->lock);
    em_query *q = find_by_name(s, name);
    if (q && !query_ended(q)) {
        q->stop_requested = 1;
        em_info("query stop requested query=%llu name=%s", (unsigned long long)q->id, q->name);
        changed(s);
    }
    pthread_mutex_unlock(&s->lock);
    return q != NULL;
}

void em_streams_owner_gone(em_streams *s, em_session_id owner)
{
    if (!owner.v) return;
    pthread_mutex_lock(&s->lock);
    for (em_query *q = s->queries; q; q = q->next)
        if (q->owner.v == owner.v && !query_ended(q) && !q->stop_requested) {
            q->stop_requested = 1;
            em_info("query stops with its submitter query=%llu name=%s", (unsigned long long)q->id,
                    q->name);
            changed(s);
        }
    pthread_mutex_unlock(&s->lock);
}

static const char *phase_name(em_batch_phase p)
{
    switch (p) {
    case EM_BATCH_IDLE: return "idle";
    case EM_BATCH_SUBMIT: return "submitting";
    case EM_BATCH_RUNNING: return "running";
    default: return "committing";
    }
}

/* view_of copies q; the rates come from its kept batches */
static void view_of(const em_query *q, em_query_view *v)
{
    memset(v, 0, sizeof *v);
    v->id = q->id;
    snprintf(v->name, sizeof v->name, "%s", q->name);
    snprintf(v->submitter, sizeof v->submitter, "%s", q->submitter);
    snprintf(v->checkpoint, sizeof v->checkpoint, "%s", q->checkpoint);
    const Ember__Node *src = q->graph->nodes[q->stream_node];
    const Ember__Action *a = q->graph->action;
    snprintf(v->topic, sizeof v->topic, "%s", src->topic);
    const char *sink = a->kind == EMBER__ACTION_KIND__ACTION_SAVE_TEXT    ? a->path
                       : a->kind == EMBER__ACTION_KIND__ACTION_SAVE_REDIS ? a->redis_address
                                                                          : a->topic;
    const char *kind = a->kind == EMBER__ACTION_KIND__ACTION_SAVE_TEXT    ? "files"
                       : a->kind == EMBER__ACTION_KIND__ACTION_SAVE_REDIS ? "redis"
                                                                          : "kafka";
    snprintf(v->sink, sizeof v->sink, "%s", sink);
    snprintf(v->sink_kind, sizeof v->sink_kind, "%s", kind);
    snprintf(v->state, sizeof v->state, "%s", em_query_state_name(q->state));
    snprintf(v->error, sizeof v->error, "%s", q->error);
    snprintf(v->warning, sizeof v->warning, "%s", q->warning);
    snprintf(v->phase, sizeof v->phase, "%s",
             q->state == EM_QUERY_RUNNING ? phase_name(q->phase) : "-");
    v->detached = q->owner.v == 0;
    v->interval_ms = q->interval_ms;
    v->created_unix_ms = q->created_unix_ms;
    v->batch = q->batch;
    v->last_committed = q->last_committed;
    v->records_in = q->records_in;
    v->records_out = q->records_out;
    v->lag = q->lag;
    v->window_delay_ms = q->window_delay_ms;
    v->watermark_ms = em_query_first_watermark(q, q->times.applied);
    v->event_time_max = q->event_time_max;
    v->late_records = q->late_records;
    if (q->n_recent) {
        const em_batch_stats *last =
            &q->recent[(q->recent_next + EM_QUERY_RECENT - 1) % EM_QUERY_RECENT];
        v->state_keys = last->state_keys;
        v->state_bytes = last->state_bytes;
    }
    v->state_expired = q->state_expired;
    v->backpressure = q->backpressure;
    v->rate_limit = q->backpressure && q->rate.has_rate ? q->rate.rate : 0;
    v->n_part_lag = q->n_part_lag < EM_VIEW_PARTITIONS ? q->n_part_lag : EM_VIEW_PARTITIONS;
    if (v->n_part_lag) memcpy(v->part_lag, q->part_lag, v->n_part_lag * sizeof *v->part_lag);
    v->batches = q->batches;
    v->triggers = q->triggers;
    size_t oldest = q->n_recent < EM_QUERY_RECENT ? 0 : q->recent_next;
    int64_t records = 0, run_us = 0;
    for (size_t i = 0; i < q->n_recent; i++) {
        v->recent[i] = q->recent[(oldest + i) % EM_QUERY_RECENT];
        records += v->recent[i].records_in;
        run_us += v->recent[i].run_us;
    }
    v->n_recent = q->n_recent;
    v->n_accs = q->accs.n < EM_ACCS_MAX ? q->accs.n : EM_ACCS_MAX;
    if (v->n_accs) memcpy(v->accs, q->accs.v, v->n_accs * sizeof *v->accs);
    if (run_us > 0) v->processing_rate = (double)records * 1e6 / (double)run_us;
    /* the records of batches 1..n-1 arrived between the plans of batch 0 and batch n-1 */
    if (q->n_recent >= 2) {
        int64_t span_ms = v->recent[q->n_recent - 1].started_unix_ms - v->recent[0].started_unix_ms;
        if (span_ms > 0)
            v->input_rate = (double)(records - v->recent[0].records_in) * 1000.0 / (double)span_ms;
    }
}

size_t em_streams_view(em_streams *s, em_query_view **out)
{
    pthread_mutex_lock(&s->lock);
    em_query_view *views = s->n_queries ? malloc(s->n_queries * sizeof *views) : NULL;
    size_t n = 0;
    for (const em_query *q = s->queries; views && q; q = q->next) view_of(q, &views[n++]);
    pthread_mutex_unlock(&s->lock);
    *out = views;
    return n;
}

void em_streams_status(em_streams *s, const char *name, em_query_status_buf *out)
{
    memset(out, 0, sizeof *out);
    ember__query_status__init(&out->msg);
    out->msg.name = out->name;
    out->msg.state = out->state;
    out->msg.error = out->error;
    out->msg.warning = out->warning;
    out->msg.last_committed = -1;
    em_query_view *v = malloc(sizeof *v);
    pthread_mutex_lock(&s->lock);
    const em_query *q = find_by_name(s, name);
    if (q && v) view_of(q, v);
    pthread_mutex_unlock(&s->lock);
    if (q && v) {
        out->msg.found = 1;
        snprintf(out->name, sizeof out->name, "%s", v->name);
        snprintf(out->state, sizeof out->state, "%s", v->state);
        snprintf(out->error, sizeof out->error, "%s", v->error);
        snprintf(out->warning, sizeof out->warning, "%s", v->warning);
        out->msg.query_id = v->id;
        out->msg.last_committed = v->last_committed;
        out->msg.batches = v->batches;
        out->msg.records_in = v->records_in;
        out->msg.records_out = v->records_out;
        out->msg.lag = v->lag;
        out->msg.input_rate = v->input_rate;
        out->msg.has_watermark = v->watermark_ms != EM_NO_WATERMARK;
        out->msg.watermark_ms = out->msg.has_watermark ? v->watermark_ms : 0;
        out->msg.late_records = v->late_records;
        if (v->n_recent) out->msg.last_batch_us = em_batch_total_us(&v->recent[v->n_recent - 1]);
        memcpy(out->accs, v->accs, v->n_accs * sizeof *v->accs);
        em_accs_to_pb(&(em_accs){.v = out->accs, .n = v->n_accs}, out->acc_items, out->acc_ptrs);
        out->msg.n_accumulators = v->n_accs;
        out->msg.accumulators = out->acc_ptrs;
    }
    free(v);
}

int64_t em_batch_total_us(const em_batch_stats *b)
{
    return b->plan_us + b->log_us + b->queue_us + b->run_us + b->commit_us;
}

int em_streams_take_submit(em_streams *s, uint64_t *query, em_session_id *session,
                           Ember__SubmitJob **submit)
{
    pthread_mutex_lock(&s->lock);
    em_query *q = s->queries;
    while (q && !(q->phase == EM_BATCH_SUBMIT && q->submit)) q = q->next;
    if (q) {
        *query = q->id;
        *session = q->session;
        *submit = q->submit;
        q->submit = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    return q != NULL;
}

void em_streams_job_started(em_streams *s, uint64_t query, em_job_id job, int code, const char *why,
                            int64_t now_us)
{
    pthread_mutex_lock(&s->lock);
    em_query *q = find_by_id(s, query);
    if (q && q->phase == EM_BATCH_SUBMIT) {
        q->current.queue_us = now_us - q->submit_us;
        q->run_start_us = now_us;
        if (code == EMBER_OK) {
            q->phase = EM_BATCH_RUNNING;
            q->job = job;
        } else {
            q->phase = EM_BATCH_DONE;
            q->job_code = code;
            snprintf(q->job_error, sizeof q->job_error, "%s", why);
        }
        changed(s);
    }
    pthread_mutex_unlock(&s->lock);
}

int em_streams_job_done(em_streams *s, const em_job *job, int64_t now_us)
{
    pthread_mutex_lock(&s->lock);
    em_query *q = s->queries;
    while (q && !(q->phase == EM_BATCH_RUNNING && q->job.v == job->id.v)) q = q->next;
    if (q) {
        q->phase = EM_BATCH_DONE;
        q->job_code = job->state == EM_RUN_SUCCEEDED ? EMBER_OK
                      : job->code != EMBER_OK        ? job->code
                                                     : EMBER_ERR_JOB_FAILED;
        snprintf(q->job_error, sizeof q->job_error, "%s", job->error);
        q->current.records_in = job->records_in;
        q->current.records_out = job->records_out;
        q->current.event_time_max = job->max_event_time;
        q->current.late_records = job->late_records;
        q->current.state_keys = job->state_keys;
        q->current.state_bytes = job->state_bytes;
        q->current.state_expired = job->state_expired;
        em_accs_free(&q->batch_accs); /* (a set past its bound keeps what fits) */
        em_accs_merge_set(&q->batch_accs, &job->accs, 1);
        /* latency: from a record's timestamp to its write; windows' records carry the
         * window's start instead, so they have none */
        int timed = job->latency && q->window_delay_ms < 0;
        q->current.latency_p50_ms = timed ? em_hist_quantile(job->latency, 0.50) : -1;
        q->current.latency_p99_ms = timed ? em_hist_quantile(job->latency, 0.99) : -1;
        q->current.run_us = now_us - q->run_start_us;
        changed(s);
    }
    pthread_mutex_unlock(&s->lock);
    return q != NULL;
}

void em_query_record_batch(em_query *q, int64_t trigger_us, int64_t now_us)
{
    if (q->current.latency_p50_ms >= 0) { /* visible once committed */
        q->current.latency_p50_ms += q->current.commit_us / 1000;
        q->current.latency_p99_ms += q->current.commit_us / 1000;
    }
    q->current.batch = q->batch;
    q->recent[q->recent_next] = q->current;
    q->recent_next = (q->recent_next + 1) % EM_QUERY_RECENT;
    if (q->n_recent < EM_QUERY_RECENT) q->n_recent++;
    q->last_committed = q->batch;
    q->batches++;
    q->records_in += q->current.records_in;
    q->records_out += q->current.records_out;
    q->late_records += q->current.late_records;
    q->state_expired += q->current.state_expired;
    em_accs_merge_set(&q->accs, &q->batch_accs, 1);
    em_accs_free(&q->batch_accs);
    if (q->current.event_time_max > q->event_time_max)
        q->event_time_max = q->current.event_time_max;
    if (q->backpressure) {
        const em_batch_stats *b = &q->current;
        em_rate_update(&q->rate, now_us / 1000, b->records_in, (double)b->run_us / 1000.0,
                       (double)(b->delay_us + b->queue_us) / 1000.0,
                       (double)(b->plan_us + b->log_us + b->commit_us) / 1000.0, q->interval_ms);
    }
    q->lag = q->current.lag;
    q->batch++;
    memset(&q->current, 0, sizeof q->current);
    free(q->ranges);
    q->ranges = NULL;
    q->n_ranges = 0;
    q->phase = EM_BATCH_IDLE;
    int64_t due = trigger_us + (int64_t)q->interval_ms * 1000;
    q->due_us = due > now_us ? due : now_us;
}

void em_query_fail(em_query *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->error, sizeof q->error, fmt, ap);
    va_end(ap);
    q->state = EM_QUERY_FAILED;
    q->phase = EM_BATCH_IDLE;
    em_pb_free(q->submit);
    q->submit = NULL;
    em_warn("query failed query=%llu name=%s reason=\"%s\"", (unsigned long long)q->id, q->name,
            q->error);
}
