/* bench_stream.c -- benchmark job: the streaming queries of bench/streaming.
 *
 * Two queries over a topic of the bench's records (bench/stream_record.h: key "kNNNN", value
 * produce time + sequence number + amount, Kafka timestamp the produce time in ms), each
 * written to a Kafka topic with ember_stream_to_kafka:
 *
 *   --mode filter   stateless: ember_filter(ember_kafka_stream(TOPIC), bst_keep) keeps the
 *                   records whose seq % 10 != 0 (90%), unchanged, so a reader of the output
 *                   finds each one's produce time (end-to-end latency)
 *   --mode window   the taxi-like windowed aggregation: bst_amount (flat_map) emits
 *                   (key, amount as int64) at the record's Kafka timestamp, then
 *                   ember_window_reduce(EMBER_SUM_I64) over windows of --length ms (10,000)
 *                   sliding --slide ms (1,000) with --delay ms (1,000) into --partitions
 *                   reduce partitions (2); each final window is (key, 8-byte sum, timestamp =
 *                   the window's start)
 *
 * Both read the topic from its first records (src.earliest); --max-per-partition N caps a
 * batch (0: none). The query runs until `ember-submit --stop NAME`; then it prints
 *   bench_stream ended name=NAME batches=B records_in=I records_out=O watermark_ms=W late=L
 * Per-batch figures come from the driver's status endpoint (bench/streaming reads them).
 *
 * Arguments (after `--`): --mode filter|window --topic T --out-topic O --name NAME
 *   --checkpoint DIR [--interval-ms N] [--max-per-partition N] [--partitions R]
 *   [--length MS] [--slide MS] [--delay MS]
 *
 * Build: ember_job(bench_stream jobs/bench_stream.c) in bench/CMakeLists.txt.
 * Run:   ember-submit --driver URL --kafka B bench_stream.so -- --mode filter --topic in ...
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../stream_record.h"

/* bst_keep (filter): the stateless query's predicate; a record not of the bench is dropped. */
int bst_keep(ember_task *task, const ember_record *in)
{
    (void)task;
    sr_value v;
    return sr_decode(in->value, in->value_len, &v) && sr_kept(v.seq);
}

/* bst_amount (flat_map): (key, amount) at the record's event time, its Kafka timestamp. */
int bst_amount(ember_task *task, const ember_record *in)
{
    sr_value v;
    if (!sr_decode(in->value, in->value_len, &v)) return EMBER_OK; /* not a bench record */
    return ember_emit_i64(task, in->key, in->key_len, v.amount, in->timestamp);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o =
        ember_opts_new(ctx, argc, argv,
                       "bench_stream.so -- --mode filter|window --topic T --out-topic O "
                       "--name NAME --checkpoint DIR [--interval-ms N] "
                       "[--max-per-partition N] [--partitions R] [--length MS] "
                       "[--slide MS] [--delay MS]");
    const char *mode = ember_opt_str(o, "--mode", "");
    const char *topic = ember_opt_str(o, "--topic", NULL);
    const char *out_topic = ember_opt_str(o, "--out-topic", NULL);
    ember_query_options q = {.name = ember_opt_str(o, "--name", NULL),
                             .checkpoint = ember_opt_str(o, "--checkpoint", NULL),
                             .interval_ms = ember_opt_int(o, "--interval-ms", 100)};
    ember_stream_source src = {.earliest = 1,
                               .max_per_partition = ember_opt_int(o, "--max-per-partition", 0)};
    ember_window w = {.length_ms = ember_opt_int(o, "--length", 10000),
                      .slide_ms = ember_opt_int(o, "--slide", 1000),
                      .delay_ms = ember_opt_int(o, "--delay", 1000)};
    int partitions = (int)ember_opt_int(o, "--partitions", 2);
    int window = strcmp(mode, "window") == 0;
    if (ember_opts_check(o) != EMBER_OK) return 2;
    if ((!window && strcmp(mode, "filter") != 0) || !topic || !out_topic || !q.name ||
        !q.checkpoint || partitions < 1) {
        fprintf(stderr, "usage: bench_stream.so -- --mode filter|window --topic T --out-topic O "
                        "--name NAME --checkpoint DIR [--interval-ms N] [--max-per-partition N] "
                        "[--partitions R] [--length MS] [--slide MS] [--delay MS]\n");
        return 2;
    }
    ember_dataset *ds = ember_kafka_stream(ctx, topic, &src);
    if (window)
        ds = ember_window_reduce(ember_flat_map(ds, bst_amount, NULL, 0), &w, EMBER_SUM_I64,
                                 partitions);
    else
        ds = ember_filter(ds, bst_keep, NULL, 0);
    ember_query *query;
    int rc = ember_stream_to_kafka(ds, out_topic, &q, &query);
    if (rc != EMBER_OK) {
        fprintf(stderr, "bench_stream: cannot start query %s: %s: %s\n", q.name, ember_err_name(rc),
                ember_last_error(ctx));
        return 1;
    }
    printf("bench_stream started name=%s\n", q.name);
    fflush(stdout);
    rc = ember_query_await(query, -1);
    ember_query_progress p = {0};
    if (rc != EMBER_OK || ember_query_status(query, &p) != EMBER_OK) {
        fprintf(stderr, "bench_stream: query %s failed: %s: %s\n", q.name, ember_err_name(rc),
                ember_last_error(ctx));
        return 1;
    }
    printf("bench_stream ended name=%s batches=%lld records_in=%lld records_out=%lld "
           "watermark_ms=%lld late=%lld\n",
           q.name, (long long)p.batches, (long long)p.records_in, (long long)p.records_out,
           (long long)p.watermark_ms, (long long)p.late_records);
    return 0;
}
