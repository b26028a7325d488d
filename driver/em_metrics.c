/* em_metrics.c -- Prometheus metrics of the driver (see em_metrics.h).
 *
 * Every family has HELP and TYPE lines; counters end in _total; durations are in seconds.
 * Gauges are computed from the live state at render time; counters come from em_totals.
 */
#include "em_metrics.h"

#include <ember/ember.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_buf.h"
#include "em_graph.h"
#include "em_status_docs.h"

#define N_BUCKETS (sizeof em_task_duration_bounds / sizeof em_task_duration_bounds[0])

static void put(em_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(em_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || em_buf_reserve(b, (size_t)n + 1) != EMBER_OK) return;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void family(em_buf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* scalar writes a family with one unlabelled sample */
static void scalar(em_buf *b, const char *name, const char *type, const char *help, uint64_t value)
{
    family(b, name, type, help);
    put(b, "%s %llu\n", name, (unsigned long long)value);
}

/* per_executor writes a family with one sample per executor: the uint64_t field at `field`
 * of em_exec; gauges for live executors only, counters for every executor ever seen. */
static void per_executor(em_buf *b, const em_sched *s, const char *name, const char *type,
                         const char *help, size_t field)
{
    int gauge = strcmp(type, "gauge") == 0;
    family(b, name, type, help);
    for (size_t i = 0; i < s->n_execs; i++) {
        const em_exec *ex = s->execs[i];
        if (gauge && ex->state != EM_EXEC_ALIVE) continue;
        uint64_t value;
        memcpy(&value, (const char *)ex + field, sizeof value);
        put(b, "%s{executor=\"%u\"} %llu\n", name, ex->id.v, (unsigned long long)value);
    }
}

static void executor_metrics(em_buf *b, const em_sched *s, int64_t now)
{
    size_t by_state[3] = {0};
    for (size_t i = 0; i < s->n_execs; i++) by_state[s->execs[i]->state]++;
    family(b, "ember_executors", "gauge", "Executors known to the driver, by state.");
    for (int state = 0; state < 3; state++)
        put(b, "ember_executors{state=\"%s\"} %zu\n", em_exec_state_name((em_exec_state)state),
            by_state[state]);
    family(b, "ember_executor_slots", "gauge", "Task slots of each live executor.");
    for (size_t i = 0; i < s->n_execs; i++)
        if (s->execs[i]->state == EM_EXEC_ALIVE)
            put(b, "ember_executor_slots{executor=\"%u\"} %u\n", s->execs[i]->id.v,
                s->execs[i]->slots);
    family(b, "ember_executor_heartbeat_age_seconds", "gauge",
           "Time since the driver last heard from each live executor.");
    for (size_t i = 0; i < s->n_execs; i++)
        if (s->execs[i]->state == EM_EXEC_ALIVE)
            put(b, "ember_executor_heartbeat_age_seconds{executor=\"%u\"} %.3f\n",
                s->execs[i]->id.v, (now - s->execs[i]->last_seen_us) / 1e6);
    static const struct {
        const char *name, *type, *help;
        size_t field;
    } figures[] = {
        {"ember_executor_memory_used_bytes", "gauge",
         "Memory the block store's blocks take in each live executor.",
         offsetof(em_exec, store.memory_used)},
        {"ember_executor_disk_used_bytes", "gauge",
         "Block store bytes in spill files of each live executor.",
         offsetof(em_exec, store.disk_used)},
        {"ember_executor_rss_bytes", "gauge", "Resident memory of each live executor process.",
         offsetof(em_exec, store.rss_bytes)},
        {"ember_executor_spilled_bytes_total", "counter",
         "Bytes each executor wrote to spill files because its memory cap was reached.",
         offsetof(em_exec, store.spilled_bytes)},
        {"ember_executor_kafka_fetched_records_total", "counter",
         "Kafka records each executor read with ember's own fetcher.",
         offsetof(em_exec, store.kafka_fetched_records)},
        {"ember_executor_kafka_fetch_fallbacks_total", "counter",
         "Kafka fetches each executor handed to librdkafka (TLS, SASL, other codecs...).",
         offsetof(em_exec, store.kafka_fetch_fallbacks)},
    };
    for (size_t i = 0; i < sizeof figures / sizeof figures[0]; i++)
        per_executor(b, s, figures[i].name, figures[i].type, figures[i].help, figures[i].field);
}

static void work_metrics(em_buf *b, const em_sched *s)
{
    const em_totals *t = &s->totals;
    uint64_t pending = 0, running = 0, jobs = 0, stages[EM_RUN_SKIPPED + 1] = {0};
    for (em_job *job = s->jobs; job; job = job->next, jobs++)
        for (size_t i = 0; i < job->n_stages; i++) {
            stages[job->stages[i].state]++;
            pending += job->stages[i].q_len;
            running += job->stages[i].n_running;
        }
    family(b, "ember_tasks", "gauge", "Tasks of running jobs, by state.");
    put(b, "ember_tasks{state=\"pending\"} %llu\nember_tasks{state=\"running\"} %llu\n",
        (unsigned long long)pending, (unsigned long long)running);
    family(b, "ember_tasks_finished_total", "counter", "Tasks finished, by outcome.");
    put(b,
        "ember_tasks_finished_total{outcome=\"succeeded\"} %llu\n"
        "ember_tasks_finished_total{outcome=\"failed\"} %llu\n",
        (unsigned long long)t->tasks_succeeded, (unsigned long long)t->tasks_failed);
    scalar(b, "ember_tasks_launched_total", "counter", "Task launches, retries included.",
           t->tasks_launched);
    scalar(b, "ember_tasks_relaunched_total", "counter",
           "Tasks queued again after their executor was lost.", t->tasks_relaunched);
    scalar(b, "ember_tasks_retried_total", "counter", "Tasks run again after they failed.",
           t->tasks_retried);
    scalar(b, "ember_cache_hits_total", "counter",
           "Tasks that read a cached partition instead of computing it.", t->cache_hits);
    scalar(b, "ember_cache_evictions_total", "counter",
           "Cached partitions evicted from a block store to make room.", t->cache_evictions);
    family(b, "ember_tasks_recomputed_total", "counter",
           "Tasks run again because work was lost, by reason.");
    for (int r = 0; r < EM_RECOMPUTE_REASONS; r++)
        put(b, "ember_tasks_recomputed_total{reason=\"%s\"} %llu\n",
            em_recompute_reason_name((em_recompute_reason)r),
            (unsigned long long)t->tasks_recomputed[r]);
    family(b, "ember_jobs", "gauge", "Jobs running now.");
    put(b, "ember_jobs{state=\"running\"} %llu\n", (unsigned long long)jobs);
    family(b, "ember_jobs_finished_total", "counter", "Jobs finished, by outcome.");
    put(b,
        "ember_jobs_finished_total{outcome=\"succeeded\"} %llu\n"
        "ember_jobs_finished_total{outcome=\"failed\"} %llu\n",
        (unsigned long long)t->jobs_succeeded, (unsigned long long)t->jobs_failed);
    family(b, "ember_stages", "gauge", "Stages of running jobs, by state.");
    put(b, "ember_stages{state=\"waiting\"} %llu\nember_stages{state=\"running\"} %llu\n",
        (unsigned long long)stages[EM_RUN_WAITING], (unsigned long long)stages[EM_RUN_RUNNING]);
    scalar(b, "ember_records_read_total", "counter", "Records read by tasks that succeeded.",
           t->records_read);
    scalar(b, "ember_records_written_total", "counter", "Records written by tasks that succeeded.",
           t->records_written);
    scalar(b, "ember_bytes_read_total", "counter",
           "Key and value bytes read by tasks that succeeded.", t->bytes_read);
    scalar(b, "ember_bytes_written_total", "counter",
           "Key and value bytes written by tasks that succeeded.", t->bytes_written);
    scalar(b, "ember_shuffle_bytes_total", "counter",
           "Bytes of shuffle output stored by map tasks.", t->bytes_shuffled);
    scalar(b, "ember_result_bytes_total", "counter", "Bytes of task results sent to the driver.",
           t->result_bytes);
}

static void duration_histogram(em_buf *b, const em_totals *t)
{
    family(b, "ember_task_duration_seconds", "histogram", "Task durations measured by executors.");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < N_BUCKETS; i++) {
        cumulative += t->task_duration_buckets[i];
        put(b, "ember_task_duration_seconds_bucket{le=\"%g\"} %llu\n", em_task_duration_bounds[i],
            (unsigned long long)cumulative);
    }
    cumulative += t->task_duration_buckets[N_BUCKETS];
    put(b, "ember_task_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
        (unsigned long long)cumulative);
    put(b, "ember_task_duration_seconds_sum %.6f\n", t->task_seconds_sum);
    put(b, "ember_task_duration_seconds_count %llu\n", (unsigned long long)cumulative);
}

/* query_metrics: one family per figure of the streaming queries, a sample per query */
static void query_metrics(em_buf *b, const em_query_view *q, size_t n)
{
    static const char *const states[] = {"starting", "running", "stopped", "failed"};
    family(b, "ember_streaming_queries", "gauge", "Streaming queries the driver knows, by state.");
    for (size_t s = 0; s < 4; s++) {
        size_t count = 0;
        for (size_t i = 0; i < n; i++) count += strcmp(q[i].state, states[s]) == 0;
        put(b, "ember_streaming_queries{state=\"%s\"} %zu\n", states[s], count);
    }
#define PER_QUERY(metric, type, help, fmt, expr)                                                   \
    do {                                                                                           \
        family(b, metric, type, help);                                                             \
        for (size_t i = 0; i < n; i++) put(b, metric "{query=\"%s\"} " fmt "\n", q[i].name, expr); \
    } while (0)
    PER_QUERY("ember_streaming_batches_total", "counter",
              "Batches a query committed since it started or resumed.", "%llu",
              (unsigned long long)q[i].batches);
    PER_QUERY("ember_streaming_records_in_total", "counter",
              "Records a query's committed batches read.", "%lld", (long long)q[i].records_in);
    PER_QUERY("ember_streaming_records_out_total", "counter",
              "Records a query's committed batches wrote.", "%lld", (long long)q[i].records_out);
    PER_QUERY("ember_streaming_last_committed_batch", "gauge",
              "The number of a query's last committed batch (-1: none).", "%lld",
              (long long)q[i].last_committed);
    PER_QUERY("ember_streaming_lag_records", "gauge",
              "Records between a query's last batch and the end of its topic when it was planned.",
              "%lld", (long long)q[i].lag);
    PER_QUERY("ember_streaming_input_rate", "gauge",
              "Records per second arriving on a query's topic, over its recent batches.", "%.3f",
              q[i].input_rate);
    PER_QUERY("ember_streaming_processing_rate", "gauge",
              "Records per second a query's batch jobs processed, over their run time.", "%.3f",
              q[i].processing_rate);
    PER_QUERY("ember_streaming_last_batch_seconds", "gauge",
              "A query's last batch, from planning to commit.", "%.6f",
              q[i].n_recent ? (double)em_batch_total_us(&q[i].recent[q[i].n_recent - 1]) / 1e6
                            : 0.0);
    PER_QUERY("ember_streaming_scheduling_delay_seconds", "gauge",
              "How late a query's last batch started after its trigger.", "%.6f",
              q[i].n_recent ? (double)q[i].recent[q[i].n_recent - 1].delay_us / 1e6 : 0.0);
    PER_QUERY("ember_streaming_state_keys", "gauge",
              "Keys a query's keyed state (map_with_state) kept after its last batch.", "%lld",
              (long long)q[i].state_keys);
    PER_QUERY("ember_streaming_state_bytes", "gauge",
              "Bytes of keys and states a query's keyed state kept after its last batch.", "%lld",
              (long long)q[i].state_bytes);
    PER_QUERY("ember_streaming_state_expired_total", "counter",
              "Keys a query's keyed state dropped after their time-to-live.", "%lld",
              (long long)q[i].state_expired);
    PER_QUERY("ember_streaming_late_records_total", "counter",
              "Records a query's windows received after they were final (not folded in).", "%lld",
              (long long)q[i].late_records);
#undef PER_QUERY
    for (int p99 = 0; p99 < 2; p99++) {
        const char *metric =
            p99 ? "ember_streaming_latency_p99_seconds" : "ember_streaming_latency_p50_seconds";
        family(b, metric, "gauge",
               p99 ? "99th percentile of the end-to-end latency of a query's last batch (queries "
                     "without windows)."
                   : "Median end-to-end latency of a query's last batch: its records' age when "
                     "written, plus the commit (queries without windows).");
        for (size_t i = 0; i < n; i++) {
            const em_batch_stats *last = q[i].n_recent ? &q[i].recent[q[i].n_recent - 1] : NULL;
            if (last && last->latency_p50_ms >= 0)
                put(b, "%s{query=\"%s\"} %.3f\n", metric, q[i].name,
                    (double)(p99 ? last->latency_p99_ms : last->latency_p50_ms) / 1e3);
        }
    }
    family(b, "ember_streaming_rate_limit", "gauge",
           "Records per second a query's adaptive rate lets a batch read (queries with "
           "back-pressure, once a batch measured it).");
    for (size_t i = 0; i < n; i++)
        if (q[i].rate_limit > 0)
            put(b, "ember_streaming_rate_limit{query=\"%s\"} %.3f\n", q[i].name, q[i].rate_limit);
    family(b, "ember_streaming_partition_lag_records", "gauge",
           "Records of a topic partition behind its end when a query's last batch was planned.");
    for (size_t i = 0; i < n; i++)
        for (size_t p = 0; p < q[i].n_part_lag; p++)
            put(b, "ember_streaming_partition_lag_records{query=\"%s\",partition=\"%d\"} %lld\n",
                q[i].name, (int)q[i].part_lag[p].partition, (long long)q[i].part_lag[p].lag);
    family(b, "ember_streaming_watermark_seconds", "gauge",
           "The event time up to which a query's first window is final (queries with windows, "
           "once an event time was seen).");
    for (size_t i = 0; i < n; i++)
        if (q[i].watermark_ms != EM_NO_WATERMARK)
            put(b, "ember_streaming_watermark_seconds{query=\"%s\"} %.3f\n", q[i].name,
                (double)q[i].watermark_ms / 1e3);
}

char *em_metrics_render(const em_sched *s, const em_wire_counts *wire, const em_query_view *q,
                        size_t n_queries, int64_t now)
{
    em_buf b = {0};
    query_metrics(&b, q, n_queries);
    executor_metrics(&b, s, now);
    work_metrics(&b, s);
    duration_histogram(&b, &s->totals);
    family(&b, "ember_rejected_messages_total", "counter",
           "Messages refused by the driver: malformed, unauthenticated or unexpected.");
    put(&b, "ember_rejected_messages_total %llu\n", (unsigned long long)wire->rejected);
    scalar(&b, "ember_auth_failures_total", "counter",
           "Connections refused at the handshake: a wrong or missing proof of the cluster "
           "secret, a role not served, too many connections.",
           wire->auth_failures);
    if (em_buf_append(&b, "", 1) != EMBER_OK) { /* NUL */
        em_buf_free(&b);
        return NULL;
    }
    return (char *)em_buf_take(&b, NULL);
}
