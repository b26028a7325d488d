/* bench_sink.c -- the ember side of bench/sinks: a pre-filled topic of bench records
 * (stream_record.h) written to Redis or to Kafka, by a batch job or by a streaming query, timed.
 *
 *   bench_sink.so -- --mode batch-redis|batch-kafka|stream-redis|stream-kafka --topic T
 *                    --records N [--redis HOST:PORT] [--out-topic O] [--name Q --checkpoint DIR]
 *
 * Each record becomes SET "s:SEQ" = its 24-byte value (Redis), or is produced as it is to O
 * (Kafka, the idempotent producer). batch-*: ember_save_redis / ember_save_kafka of
 * ember_kafka_topic(T), timed around the action. stream-*: a query from the topic's start
 * (ember_stream_to_redis, fenced in MULTI/EXEC; ember_stream_to_kafka, each record tagged for
 * exactly once), timed from its start until its records_out reaches N (polled every 10 ms),
 * then stopped. Prints one line:
 *   bench_sink mode=M records=N seconds=S rate=R
 */
#include <ember/ember.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../stream_record.h"

/* bsk_set (map): a bench record -> SET "s:SEQ" value */
int bsk_set(ember_task *task, const ember_record *in)
{
    sr_value v;
    if (!sr_decode(in->value, in->value_len, &v))
        return ember_task_fail(task, "not a bench record");
    char key[32];
    int n = snprintf(key, sizeof key, "s:%" PRId64, v.seq);
    return ember_emit_kv(task, key, (size_t)n, in->value, in->value_len, in->timestamp);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* stream_until starts the query and waits until it wrote `records` (or fails); seconds, or -1 */
static double stream_until(ember_dataset *ds, const ember_redis_options *redis, const char *out,
                           const ember_query_options *q, int64_t records)
{
    ember_query *query = NULL;
    double start = now_s();
    int rc = redis ? ember_stream_to_redis(ds, redis, q, &query)
                   : ember_stream_to_kafka(ds, out, q, &query);
    if (rc != EMBER_OK) return -1;
    ember_query_progress p = {0};
    struct timespec tick = {0, 10 * 1000000L};
    while (ember_query_status(query, &p) == EMBER_OK && p.running && p.records_out < records)
        nanosleep(&tick, NULL);
    double seconds = now_s() - start;
    ember_query_stop(query);
    ember_query_await(query, -1);
    return p.records_out >= records ? seconds : -1;
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o = ember_opts_new(ctx, argc, argv,
                                   "bench_sink.so -- --mode batch-redis|batch-kafka|stream-redis|"
                                   "stream-kafka --topic T --records N [--redis HOST:PORT] "
                                   "[--out-topic O] [--name Q --checkpoint DIR]");
    const char *mode = ember_opt_str(o, "--mode", "");
    const char *topic = ember_opt_str(o, "--topic", NULL);
    const char *out = ember_opt_str(o, "--out-topic", NULL);
    int64_t records = ember_opt_int(o, "--records", 0);
    ember_redis_options redis = {.address = ember_opt_str(o, "--redis", NULL),
                                 .command = EMBER_REDIS_SET};
    ember_query_options q = {.name = ember_opt_str(o, "--name", NULL),
                             .checkpoint = ember_opt_str(o, "--checkpoint", NULL),
                             .interval_ms = 100};
    if (ember_opts_check(o) != EMBER_OK) return 2;
    int to_redis = strstr(mode, "redis") != NULL, stream = strncmp(mode, "stream-", 7) == 0;
    if (!topic || records <= 0 || (to_redis ? !redis.address : !out) ||
        (stream && (!q.name || !q.checkpoint)) ||
        (strcmp(mode, "batch-redis") && strcmp(mode, "batch-kafka") &&
         strcmp(mode, "stream-redis") && strcmp(mode, "stream-kafka"))) {
        fprintf(stderr, "usage: bench_sink.so -- --mode batch-redis|batch-kafka|stream-redis|"
                        "stream-kafka --topic T --records N [--redis HOST:PORT] [--out-topic O] "
                        "[--name Q --checkpoint DIR]\n");
        return 2;
    }
    double seconds = -1;
    int64_t written = 0;
    if (stream) {
        ember_stream_source src = {.earliest = 1};
        ember_dataset *ds = ember_kafka_stream(ctx, topic, &src);
        if (to_redis) ds = ember_map(ds, bsk_set, NULL, 0);
        seconds = stream_until(ds, to_redis ? &redis : NULL, out, &q, records);
        written = seconds >= 0 ? records : 0;
    } else {
        ember_dataset *ds = ember_kafka_topic(ctx, topic);
        double start = now_s();
        int rc = to_redis ? ember_save_redis(ember_map(ds, bsk_set, NULL, 0), &redis, &written)
                          : ember_save_kafka(ds, out, &written);
        if (rc == EMBER_OK) seconds = now_s() - start;
    }
    if (seconds < 0 || written != records) {
        fprintf(stderr, "bench_sink: %s wrote %lld of %lld records: %s\n", mode, (long long)written,
                (long long)records, ember_last_error(ctx));
        return 1;
    }
    printf("bench_sink mode=%s records=%lld seconds=%.3f rate=%.0f\n", mode, (long long)records,
           seconds, (double)records / seconds);
    return 0;
}
