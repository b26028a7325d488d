/* stream_copy.c -- a streaming query for the tests: the lines of a topic, upper-cased, those
 * holding "skip" dropped, into a directory per batch (or a topic), until it is stopped.
 *
 *   stream_copy --topic T --name NAME --checkpoint DIR (--out DIR | --out-topic T2)
 *               [--interval-ms N] [--max-per-partition N] [--earliest] [--detach]
 *               [--variant] [--stop-after N] [--hold-file PATH] [--work-us N]
 *               [--backpressure] [--max-rate N] [--start-offsets P:OFFSET,...]
 *
 * It waits for the query until it ends (ember-submit --stop NAME, or the driver), printing
 * "query NAME ended: ..." with its figures; --stop-after N stops it itself once N records
 * went out; --detach returns at once. --variant adds a filter: another graph, which a
 * checkpoint of the first one must refuse. --hold-file PATH: every record waits while PATH
 * exists (a test holds a batch running with it); --hold-file @PATH: only records holding
 * "hold-here" wait (a task writes what comes before, then holds). --work-us N: each record takes N
 * us more (a slow external call: the query's sustainable rate is slots * 1e6 / N records per
 * second);
 * --backpressure and --max-rate N (records per second per partition) bound its batches.
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "query_args.h"

int stream_copy_upper(ember_task *task, const ember_record *in)
{
    size_t hold_len;
    const char *hold = ember_task_arg(task, &hold_len);
    struct timespec tick = {0, 10 * 1000000L};
    int marked_only = hold_len > 1 && hold[0] == '@';
    if (marked_only && memmem(in->value, in->value_len, "hold-here", 9)) hold++;
    while (hold_len > 1 && hold[0] != '@' && access(hold, F_OK) == 0) nanosleep(&tick, NULL);
    char buf[1024];
    size_t n = in->value_len < sizeof buf ? in->value_len : sizeof buf;
    for (size_t i = 0; i < n; i++) {
        char c = ((const char *)in->value)[i];
        buf[i] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
    }
    return ember_emit_kv(task, in->key, in->key_len, buf, n, in->timestamp);
}

int stream_copy_slow(ember_task *task, const ember_record *in)
{
    size_t len;
    const int64_t *work_us = ember_task_arg(task, &len);
    struct timespec pause = {(time_t)(*work_us / 1000000), (long)(*work_us % 1000000 * 1000)};
    nanosleep(&pause, NULL);
    return ember_emit(task, in);
}

int stream_copy_keep(ember_task *task, const ember_record *in)
{
    (void)task;
    return !memmem(in->value, in->value_len, "SKIP", 4);
}

int stream_copy_nonempty(ember_task *task, const ember_record *in)
{
    (void)task;
    return in->value_len > 0;
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o = ember_opts_new(
        ctx, argc, argv,
        "stream_copy.so -- --topic T (--out DIR | --out-topic T) --name Q --checkpoint DIR "
        "[--interval-ms N] [--detach] [--earliest] [--max-per-partition N] [--max-rate N] "
        "[--backpressure] [--variant] [--stop-after N] [--work-us N] [--hold-file F] "
        "[--start-offsets P:OFFSET,...]");
    const char *topic = ember_opt_str(o, "--topic", NULL), *out = ember_opt_str(o, "--out", NULL),
               *out_topic = ember_opt_str(o, "--out-topic", NULL),
               *hold = ember_opt_str(o, "--hold-file", "");
    ember_query_options q = query_args(o);
    ember_stream_source src = {.earliest = ember_opt_flag(o, "--earliest"),
                               .max_per_partition = ember_opt_int(o, "--max-per-partition", 0),
                               .max_rate_per_partition = ember_opt_int(o, "--max-rate", 0),
                               .backpressure = ember_opt_flag(o, "--backpressure")};
    int variant = ember_opt_flag(o, "--variant");
    long long stop_after = ember_opt_int(o, "--stop-after", -1);
    int64_t work_us = ember_opt_int(o, "--work-us", 0);
    /* --start-offsets P:OFFSET,...: where a new query starts each listed partition */
    ember_kafka_range starts[16];
    const char *list = ember_opt_str(o, "--start-offsets", NULL);
    for (char *p = (char *)list; p && *p && src.n_offsets < 16;) {
        char *colon;
        starts[src.n_offsets].partition = (int32_t)strtol(p, &colon, 10);
        starts[src.n_offsets].from = strtoll(colon + 1, &p, 10);
        starts[src.n_offsets++].until = 0;
        if (*p == ',') p++;
    }
    src.offsets = src.n_offsets ? starts : NULL;
    if (ember_opts_check(o) != EMBER_OK) return 2;
    if (!topic || (!out && !out_topic)) {
        fprintf(stderr, "stream_copy: give --topic and --out or --out-topic\n");
        return 2;
    }
    ember_dataset *ds =
        ember_map(ember_kafka_stream(ctx, topic, &src), stream_copy_upper, hold, strlen(hold) + 1);
    if (work_us > 0) ds = ember_map(ds, stream_copy_slow, &work_us, sizeof work_us);
    ds = ember_filter(ds, stream_copy_keep, NULL, 0);
    if (variant) ds = ember_filter(ds, stream_copy_nonempty, NULL, 0);
    ember_query *query;
    int rc = out ? ember_stream_to_files(ds, out, &q, &query)
                 : ember_stream_to_kafka(ds, out_topic, &q, &query);
    if (rc != EMBER_OK) return 1;
    printf("query %s started\n", q.name);
    fflush(stdout);
    if (q.detach) return 0;
    ember_query_progress p = {0};
    if (stop_after >= 0) {
        while ((rc = ember_query_await(query, 100)) == EMBER_ERR_TIMEOUT &&
               ember_query_status(query, &p) == EMBER_OK && p.records_out < stop_after) {
        }
        if (rc == EMBER_ERR_TIMEOUT) rc = ember_query_stop(query);
    }
    if (rc == EMBER_OK || rc == EMBER_ERR_TIMEOUT) rc = ember_query_await(query, -1);
    if (rc != EMBER_OK) return 1;
    if (ember_query_status(query, &p) != EMBER_OK) return 1;
    printf("query %s ended: last batch %lld, %lld records in, %lld out\n", q.name,
           (long long)p.last_committed, (long long)p.records_in, (long long)p.records_out);
    return 0;
}
