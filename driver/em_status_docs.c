/* em_status_docs.c -- the JSON documents of the status endpoint, built from driver state.
 *
 * Called by the driver loop only (em_status_publish, em_status_freeze_job). Field names and
 * an example of each document are in docs/status-api.md; keep the two in step.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "em_graph.h"
#include "em_hash.h"
#include "em_status_docs.h"

#define STAGE_TASKS_SHOWN 1000
#define DESCRIPTIONS_KEPT 16 /* parsed job descriptions kept (a flow's jobs share one) */

/* description_doc: a job's description (JSON text) as a JSON object, or NULL. Parsed once per
 * distinct text: every snapshot lists up to 100 jobs, and a streaming flow's batches all carry
 * the same graph, whose parse was most of a snapshot's time. A new reference. */
static json_t *description_doc(const char *text)
{
    static struct {
        uint64_t hash;
        size_t len;
        json_t *doc;
        uint64_t used;
    } kept[DESCRIPTIONS_KEPT];
    static uint64_t clock_;
    if (!text || !text[0]) return NULL;
    size_t len = strlen(text);
    uint64_t hash = em_hash64(text, len);
    int slot = 0;
    for (int k = 0; k < DESCRIPTIONS_KEPT; k++) {
        if (kept[k].doc && kept[k].hash == hash && kept[k].len == len) {
            kept[k].used = ++clock_;
            return json_incref(kept[k].doc);
        }
        if (kept[k].used < kept[slot].used) slot = k; /* the least recently used, or a free one */
    }
    json_t *d = json_loads(text, 0, NULL);
    if (!json_is_object(d)) {
        json_decref(d);
        return NULL;
    }
    json_decref(kept[slot].doc);
    kept[slot].hash = hash;
    kept[slot].len = len;
    kept[slot].doc = json_incref(d);
    kept[slot].used = ++clock_;
    return d;
}

static double ms_between(int64_t from_us, int64_t to_us)
{
    return from_us ? (to_us - from_us) / 1000.0 : 0;
}

json_t *em_doc_driver(const em_sched *s, const char *url, const em_wire_counts *wire)
{
    size_t alive = 0, running = 0;
    for (size_t i = 0; i < s->n_execs; i++) alive += s->execs[i]->state == EM_EXEC_ALIVE;
    for (em_job *job = s->jobs; job; job = job->next) running++;
    const em_totals *t = &s->totals;
    json_t *o = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "url", url, "executors_alive",
        (json_int_t)alive, "jobs_running", (json_int_t)running, "jobs_succeeded",
        (json_int_t)t->jobs_succeeded, "jobs_failed", (json_int_t)t->jobs_failed, "tasks_launched",
        (json_int_t)t->tasks_launched, "tasks_succeeded", (json_int_t)t->tasks_succeeded,
        "tasks_failed", (json_int_t)t->tasks_failed, "tasks_relaunched",
        (json_int_t)t->tasks_relaunched, "rejected_messages", (json_int_t)wire->rejected);
    json_object_set_new(o, "auth_failures", json_integer((json_int_t)wire->auth_failures));
    return o;
}

json_t *em_doc_executors(const em_sched *s, int64_t now)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < s->n_execs; i++) {
        const em_exec *ex = s->execs[i];
        json_t *o = json_pack("{s:I, s:s, s:s, s:i, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                              "id", (json_int_t)ex->id.v, "address", ex->address, "host", ex->host,
                              "pid", ex->pid, "state", em_exec_state_name(ex->state), "slots",
                              (json_int_t)ex->slots, "running_tasks", (json_int_t)ex->assigned,
                              "memory_used", (json_int_t)ex->store.memory_used, "memory_cap",
                              (json_int_t)ex->memory_cap, "blocks", (json_int_t)ex->store.blocks,
                              "tasks_completed", (json_int_t)ex->tasks_completed, "tasks_failed",
                              (json_int_t)ex->tasks_failed, "last_heartbeat_age_ms",
                              (json_int_t)((now - ex->last_seen_us) / 1000));
        json_object_set_new(o, "shuffle_bytes", json_integer((json_int_t)ex->shuffle_bytes));
        json_object_set_new(o, "disk_used", json_integer((json_int_t)ex->store.disk_used));
        json_object_set_new(o, "spilled_bytes", json_integer((json_int_t)ex->store.spilled_bytes));
        json_object_set_new(o, "rss_bytes", json_integer((json_int_t)ex->store.rss_bytes));
        json_object_set_new(o, "kafka_fetched_records",
                            json_integer((json_int_t)ex->store.kafka_fetched_records));
        json_object_set_new(o, "kafka_fetch_fallbacks",
                            json_integer((json_int_t)ex->store.kafka_fetch_fallbacks));
        if (ex->state != EM_EXEC_ALIVE)
            json_object_set_new(o, "lost_reason", json_string(ex->lost_reason));
        json_array_append_new(arr, o);
    }
    return arr;
}

/* recomputed: launches of a stage's tasks again because work was lost, all reasons */
static uint32_t recomputed(const em_stage *st)
{
    uint32_t n = 0;
    for (int r = 0; r < EM_RECOMPUTE_REASONS; r++) n += st->n_recomputed[r];
    return n;
}

json_t *em_doc_stage(const em_stage *st, int64_t now)
{
    const Ember__Node *src = st->job->submit->graph->nodes[st->plan.source];
    int64_t end = st->finished_us ? st->finished_us : now;
    json_t *parents = json_array();
    for (uint32_t i = 0; i < st->plan.n_parents; i++)
        json_array_append_new(parents,
                              json_integer((json_int_t)st->job->stages[st->plan.parents[i]].id.v));
    json_t *o = json_pack("{s:I, s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:o}", "id",
                          (json_int_t)st->id.v, "job", (json_int_t)st->job->id.v, "state",
                          em_run_state_name(st->state), "source", em_node_kind_name(src->kind),
                          "tasks", (json_int_t)st->plan.partitions, "tasks_done",
                          (json_int_t)st->n_done, "tasks_running", (json_int_t)st->n_running,
                          "tasks_pending", (json_int_t)st->q_len, "recomputed_tasks",
                          (json_int_t)recomputed(st), "records_in", (json_int_t)st->records_in,
                          "records_out", (json_int_t)st->records_out, "duration_ms",
                          ms_between(st->started_us, end), "parents", parents);
    if (src->topic[0]) json_object_set_new(o, "topic", json_string(src->topic));
    json_t *reasons = json_object();
    for (int r = 0; r < EM_RECOMPUTE_REASONS; r++)
        json_object_set_new(reasons, em_recompute_reason_name((em_recompute_reason)r),
                            json_integer(st->n_recomputed[r]));
    json_object_set_new(o, "recompute_reasons", reasons);
    json_object_set_new(o, "retried_tasks", json_integer(st->n_retried));
    json_object_set_new(o, "cache_hits", json_integer(st->cache_hits));
    json_object_set_new(o, "tasks_launched", json_integer(st->n_launched));
    if (st->shuffle_out)
        json_object_set_new(o, "shuffle_bytes_written",
                            json_integer((json_int_t)st->shuffle_bytes));
    if (st->reused)
        json_object_set_new(o, "output_of_stage", json_integer((json_int_t)st->output_stage_id.v));
    return o;
}

/* quantiles gives min, 25th, 50th, 75th percentile and max of v (n > 0; sorted here), the
 * nearest rank each */
static json_t *quantiles(double *v, size_t n)
{
    for (size_t i = 1; i < n; i++) /* insertion sort: a stage's task list is short */
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    json_t *a = json_array();
    for (int q = 0; q <= 4; q++) json_array_append_new(a, json_real(v[(n - 1) * (size_t)q / 4]));
    return a;
}

/* task_quantiles summarizes the done tasks among the first `shown` of st, as Spark's stage
 * page does: {"tasks": N, "duration_ms": [min, p25, p50, p75, max], ...} */
static json_t *task_quantiles(const em_stage *st, uint32_t shown)
{
    enum { DURATION, INPUT_WAIT, RECORDS_IN, RECORDS_OUT, BYTES_IN, SHUFFLE_WRITTEN, N_FIGURES };
    static const char *const names[N_FIGURES] = {"duration_ms", "input_wait_ms",
                                                 "records_in",  "records_out",
                                                 "bytes_in",    "shuffle_bytes_written"};
    double *v = shown ? malloc(sizeof *v * shown * N_FIGURES) : NULL;
    size_t n = 0;
    for (uint32_t p = 0; v && p < shown; p++) {
        const em_task *t = &st->tasks[p];
        if (t->state != EM_TASK_DONE) continue;
        v[DURATION * shown + n] = t->duration_us / 1000.0;
        v[INPUT_WAIT * shown + n] = t->input_wait_us / 1000.0;
        v[RECORDS_IN * shown + n] = (double)t->records_in;
        v[RECORDS_OUT * shown + n] = (double)t->records_out;
        v[BYTES_IN * shown + n] = (double)t->bytes_in;
        v[SHUFFLE_WRITTEN * shown + n] = (double)t->shuffle_bytes;
        n++;
    }
    json_t *o = json_pack("{s:I}", "tasks", (json_int_t)n);
    for (int f = 0; n && f < N_FIGURES; f++)
        if (f != SHUFFLE_WRITTEN || st->shuffle_out)
            json_object_set_new(o, names[f], quantiles(v + (size_t)f * shown, n));
    free(v);
    return o;
}

json_t *em_doc_stage_tasks(const em_stage *st, int64_t now)
{
    json_t *o = em_doc_stage(st, now), *tasks = json_array();
    /* a running stage's list is rendered at every snapshot: keep that cheap for big stages,
     * whose list appears once they end */
    uint32_t shown =
        st->plan.partitions < STAGE_TASKS_SHOWN ? st->plan.partitions : STAGE_TASKS_SHOWN;
    if (st->state == EM_RUN_RUNNING && st->plan.partitions > STAGE_TASKS_SHOWN) shown = 0;
    for (uint32_t p = 0; st->tasks && p < shown; p++) {
        const em_task *t = &st->tasks[p];
        json_t *tj = json_pack("{s:I, s:s, s:I}", "partition", (json_int_t)p, "state",
                               em_task_state_name((em_task_state)t->state), "attempt",
                               (json_int_t)t->attempt + 1);
        if (t->state != EM_TASK_PENDING || t->attempt > 0) {
            json_object_set_new(tj, "executor", json_integer(t->executor.v));
            json_object_set_new(tj, "launched_ms", /* since the stage started */
                                json_real((t->launched_us - st->started_us) / 1000.0));
        }
        if (t->state == EM_TASK_DONE || t->state == EM_TASK_FAILED) {
            json_object_set_new(tj, "duration_ms", json_real(t->duration_us / 1000.0));
            json_object_set_new(tj, "records_in", json_integer(t->records_in));
            json_object_set_new(tj, "records_out", json_integer(t->records_out));
            json_object_set_new(tj, "bytes_out", json_integer((json_int_t)t->bytes_out));
            json_object_set_new(tj, "bytes_in", json_integer(t->bytes_in));
            json_object_set_new(tj, "input_wait_ms", json_real(t->input_wait_us / 1000.0));
            if (st->shuffle_out) {
                json_object_set_new(tj, "shuffle_bytes_written",
                                    json_integer((json_int_t)t->shuffle_bytes));
                json_object_set_new(tj, "spilled_bytes",
                                    json_integer((json_int_t)t->spilled_bytes));
            }
        }
        json_object_set_new(tj, "locality", json_string(t->preferred ? "preferred" : "any"));
        json_array_append_new(tasks, tj);
    }
    json_object_set_new(o, "tasks_shown", json_integer(shown));
    json_object_set_new(o, "task_list", tasks);
    json_object_set_new(o, "task_quantiles", task_quantiles(st, shown));
    return o;
}

/* accs_doc: accumulators as {"name": value} */
static json_t *accs_doc(const em_acc *v, size_t n)
{
    json_t *o = json_object();
    for (size_t k = 0; k < n; k++)
        json_object_set_new(o, v[k].name,
                            v[k].is_f64 ? json_real(v[k].f64) : json_integer(v[k].i64));
    return o;
}

json_t *em_doc_job(const em_job *job, int64_t now)
{
    int64_t end = job->finished_us ? job->finished_us : now;
    uint32_t recomputed_total = 0, retried = 0;
    json_t *stages = json_array();
    for (size_t i = 0; i < job->n_stages; i++) {
        recomputed_total += recomputed(&job->stages[i]);
        retried += job->stages[i].n_retried;
        json_array_append_new(stages, em_doc_stage(&job->stages[i], now));
    }
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:o}", "id",
                          (json_int_t)job->id.v, "name", job->name, "submitter", job->submitter,
                          "state", em_run_state_name(job->state), "action",
                          em_action_kind_name(job->submit->graph->action->kind), "submitted_at_ms",
                          (json_int_t)job->submitted_unix_ms, "duration_ms",
                          ms_between(job->submitted_us, end), "tasks", (json_int_t)job->tasks_total,
                          "tasks_done", (json_int_t)job->tasks_done, "records_in",
                          (json_int_t)job->records_in, "records_out", (json_int_t)job->records_out,
                          "recomputed_tasks", (json_int_t)recomputed_total, "stages", stages);
    json_object_set_new(o, "retried_tasks", json_integer(retried));
    if (job->state == EM_RUN_FAILED) json_object_set_new(o, "error", json_string(job->error));
    /* accumulator totals so far (each done task once), and the job's own description */
    json_object_set_new(o, "accumulators", accs_doc(job->accs.v, job->accs.n));
    json_t *d = description_doc(job->submit->graph->description);
    json_object_set_new(o, "description", d ? d : json_null());
    return o;
}

json_t *em_doc_storage(const em_sched *s)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < s->n_cached; i++) {
        const em_cached_set *set = &s->cached[i];
        char id[24];
        snprintf(id, sizeof id, "%016llx", (unsigned long long)set->fingerprint);
        uint32_t cached = 0;
        uint64_t bytes = 0;
        json_t *parts = json_array();
        for (uint32_t p = 0; p < set->partitions; p++) {
            cached += set->holder[p].v != 0;
            bytes += set->bytes[p];
            json_array_append_new(parts,
                                  set->holder[p].v ? json_integer(set->holder[p].v) : json_null());
        }
        json_array_append_new(
            arr,
            json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o}", "id", id, "operation",
                      set->kind, "storage",
                      set->storage == EMBER__STORAGE_LEVEL__STORAGE_MEMORY_AND_DISK
                          ? "memory_and_disk"
                          : "memory_only",
                      "partitions", (json_int_t)set->partitions, "cached_partitions",
                      (json_int_t)cached, "bytes", (json_int_t)bytes, "hits", (json_int_t)set->hits,
                      "evictions", (json_int_t)set->evictions, "holders", parts));
    }
    return arr;
}

json_t *em_doc_submit_failures(const em_sched *s)
{
    json_t *arr = json_array();
    uint64_t kept = s->n_submit_failures < EM_SUBMIT_FAILURES_KEPT ? s->n_submit_failures
                                                                   : EM_SUBMIT_FAILURES_KEPT;
    for (uint64_t k = 1; k <= kept; k++) { /* newest first */
        const em_submit_failure *f =
            &s->submit_failures[(s->n_submit_failures - k) % EM_SUBMIT_FAILURES_KEPT];
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "name", f->name,
                                             "submitter", f->submitter, "action", f->action,
                                             "state", "failed", "error", f->error, "at_ms",
                                             (json_int_t)f->at_unix_ms));
    }
    return arr;
}

/* ---- streaming queries ------------------------------------------------------------------- */

static double ms(int64_t us) { return (double)us / 1000.0; }

/* event_time: an event time in ms, or null for none */
static json_t *event_time(int64_t t)
{
    return t == EM_NO_WATERMARK ? json_null() : json_integer(t);
}

/* latency_doc: a batch's end-to-end latency {p50, p99} in ms, or null */
/* lag_doc: [{partition, lag}] of n partitions */
static json_t *lag_doc(const em_partition_lag *lag, size_t n)
{
    json_t *parts = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(parts, json_pack("{s:i, s:I}", "partition", (int)lag[i].partition,
                                               "lag", (json_int_t)lag[i].lag));
    return parts;
}

static json_t *latency_doc(const em_batch_stats *b)
{
    if (!b || b->latency_p50_ms < 0) return json_null();
    return json_pack("{s:I, s:I}", "p50", (json_int_t)b->latency_p50_ms, "p99",
                     (json_int_t)b->latency_p99_ms);
}

/* set_state_figures: the windows' and keyed state's figures of a query or a batch */
static void set_state_figures(json_t *j, const em_batch_stats *f)
{
    json_object_set_new(j, "watermark_ms", event_time(f->watermark_ms));
    json_object_set_new(j, "event_time_max_ms", event_time(f->event_time_max));
    json_object_set_new(j, "late_records", json_integer(f->late_records));
    json_object_set_new(j, "state_keys", json_integer(f->state_keys));
    json_object_set_new(j, "state_bytes", json_integer(f->state_bytes));
    json_object_set_new(j, "state_expired", json_integer(f->state_expired));
}

json_t *em_doc_query(const em_query_view *v)
{
    json_t *j =
        json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:I, s:I}", "id",
                  (json_int_t)v->id, "name", v->name, "state", v->state, "phase", v->phase, "error",
                  v->error, "warning", v->warning, "submitter", v->submitter, "checkpoint",
                  v->checkpoint, "topic", v->topic, "sink_kind", v->sink_kind, "sink", v->sink,
                  "detached", v->detached, "interval_ms", (json_int_t)v->interval_ms,
                  "created_unix_ms", (json_int_t)v->created_unix_ms);
    json_object_set_new(j, "batch", json_integer(v->batch));
    json_object_set_new(j, "last_committed", json_integer(v->last_committed));
    json_object_set_new(j, "batches", json_integer((json_int_t)v->batches));
    json_object_set_new(j, "triggers", json_integer((json_int_t)v->triggers));
    json_object_set_new(j, "records_in", json_integer(v->records_in));
    json_object_set_new(j, "records_out", json_integer(v->records_out));
    json_object_set_new(j, "lag", json_integer(v->lag));
    json_object_set_new(j, "input_rate", json_real(v->input_rate));
    json_object_set_new(j, "processing_rate", json_real(v->processing_rate));
    json_object_set_new(j, "windows", json_boolean(v->window_delay_ms >= 0));
    set_state_figures(j, &(em_batch_stats){.watermark_ms = v->watermark_ms,
                                           .event_time_max = v->event_time_max,
                                           .late_records = v->late_records,
                                           .state_keys = v->state_keys,
                                           .state_bytes = v->state_bytes,
                                           .state_expired = v->state_expired});
    json_object_set_new(j, "backpressure", json_boolean(v->backpressure));
    json_object_set_new(j, "rate_limit",
                        v->rate_limit > 0 ? json_real(v->rate_limit) : json_null());
    json_object_set_new(j, "lag_by_partition", lag_doc(v->part_lag, v->n_part_lag));
    const em_batch_stats *last = v->n_recent ? &v->recent[v->n_recent - 1] : NULL;
    json_object_set_new(j, "last_batch_ms",
                        last ? json_real(ms(em_batch_total_us(last))) : json_null());
    json_object_set_new(j, "scheduling_delay_ms",
                        last ? json_real(ms(last->delay_us)) : json_null());
    json_object_set_new(j, "latency_ms", latency_doc(last));
    json_object_set_new(j, "accumulators", accs_doc(v->accs, v->n_accs));
    return j;
}

json_t *em_doc_query_batches(const em_query_view *v)
{
    json_t *list = json_array();
    for (size_t i = v->n_recent; i-- > 0;) { /* newest first */
        const em_batch_stats *b = &v->recent[i];
        double run_s = (double)b->run_us / 1e6;
        json_t *j =
            json_pack("{s:I, s:I, s:I, s:I, s:I}", "batch", (json_int_t)b->batch, "started_unix_ms",
                      (json_int_t)b->started_unix_ms, "records_in", (json_int_t)b->records_in,
                      "records_out", (json_int_t)b->records_out, "lag", (json_int_t)b->lag);
        json_object_set_new(j, "processing_rate",
                            json_real(run_s > 0 ? (double)b->records_in / run_s : 0));
        json_object_set_new(j, "scheduling_delay_ms", json_real(ms(b->delay_us)));
        json_object_set_new(j, "partitions", json_integer(b->partitions));
        json_object_set_new(j, "lag_by_partition", /* the first EM_BATCH_PARTITIONS */
                            lag_doc(b->part_lag, b->partitions < EM_BATCH_PARTITIONS
                                                     ? b->partitions
                                                     : EM_BATCH_PARTITIONS));
        set_state_figures(j, b);
        json_object_set_new(j, "latency_ms", latency_doc(b));
        json_object_set_new(j, "durations_ms",
                            json_pack("{s:f, s:f, s:f, s:f, s:f, s:f}", "plan", ms(b->plan_us),
                                      "log", ms(b->log_us), "queue", ms(b->queue_us), "run",
                                      ms(b->run_us), "commit", ms(b->commit_us), "total",
                                      ms(em_batch_total_us(b))));
        json_array_append_new(list, j);
    }
    return list;
}
