/* stream_window.c -- a windowed streaming query for the tests: lines "key,event_ms,amount" of
 * a topic, summed (or counted) per key over event-time windows, each final window written as
 * a line "key,window_start_ms,total" into a directory per batch.
 *
 *   stream_window --topic T --name NAME --checkpoint DIR --out DIR --length MS --slide MS
 *                 [--delay MS] [--count] [--partitions N] [--interval-ms N] [--earliest]
 *                 [--hold-file PATH] [--late-topic T]
 *
 * A line that is not "key,event_ms,amount" (integers) is dropped. It waits for the query until
 * it ends (ember-submit --stop NAME), printing "query NAME ended: ..." with its watermark and
 * late records. --hold-file PATH: every record waits while PATH exists (a test holds a batch
 * running with it).
 */
#include <ember/ember.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "query_args.h"

/* parse_int reads a decimal integer filling [p, end) */
static int parse_int(const char *p, const char *end, int64_t *out)
{
    char buf[32];
    size_t n = (size_t)(end - p);
    if (n == 0 || n >= sizeof buf) return 0;
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *stop;
    errno = 0;
    long long v = strtoll(buf, &stop, 10);
    if (errno || *stop) return 0;
    *out = v;
    return 1;
}

/* stream_window_parse: "key,event_ms,amount" -> (key, amount as int64) at event time event_ms */
int stream_window_parse(ember_task *task, const ember_record *in)
{
    size_t hold_len;
    const char *hold = ember_task_arg(task, &hold_len);
    struct timespec tick = {0, 10 * 1000000L};
    while (hold_len > 1 && access(hold, F_OK) == 0) nanosleep(&tick, NULL);
    const char *line = in->value, *end = line + in->value_len;
    const char *c1 = memchr(line, ',', in->value_len);
    const char *c2 = c1 ? memchr(c1 + 1, ',', (size_t)(end - c1 - 1)) : NULL;
    int64_t event_ms, amount;
    if (!c2 || c1 == line || !parse_int(c1 + 1, c2, &event_ms) || !parse_int(c2 + 1, end, &amount))
        return EMBER_OK; /* malformed: dropped */
    return ember_emit_i64(task, line, (size_t)(c1 - line), amount, event_ms);
}

/* stream_window_format: a final window -> "key,window_start_ms,total" */
int stream_window_format(ember_task *task, const ember_record *in)
{
    int64_t total;
    memcpy(&total, in->value, sizeof total);
    char line[256];
    int n = snprintf(line, sizeof line, "%.*s,%" PRId64 ",%" PRId64, (int)in->key_len,
                     (const char *)in->key, in->timestamp, total);
    return ember_emit_kv(task, in->key, in->key_len, line, (size_t)n, in->timestamp);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o =
        ember_opts_new(ctx, argc, argv,
                       "stream_window.so -- --topic T --out DIR --name Q --checkpoint DIR --length "
                       "MS [--slide MS] [--delay MS] [--late-topic T] [--count] [--partitions N] "
                       "[--earliest] [--hold-file F] [--interval-ms N] [--detach]");
    const char *topic = ember_opt_str(o, "--topic", NULL), *out = ember_opt_str(o, "--out", NULL),
               *hold = ember_opt_str(o, "--hold-file", "");
    ember_query_options q = query_args(o);
    ember_stream_source src = {.earliest = ember_opt_flag(o, "--earliest")};
    ember_window w = {.length_ms = ember_opt_int(o, "--length", 0),
                      .slide_ms = ember_opt_int(o, "--slide", 0),
                      .delay_ms = ember_opt_int(o, "--delay", 0),
                      .late_topic = ember_opt_str(o, "--late-topic", NULL)};
    int count = ember_opt_flag(o, "--count");
    int partitions = (int)ember_opt_int(o, "--partitions", 2);
    if (ember_opts_check(o) != EMBER_OK) return 2;
    if (!topic || !out) {
        fprintf(stderr, "stream_window: give --topic and --out\n");
        return 2;
    }
    ember_dataset *ds = ember_flat_map(ember_kafka_stream(ctx, topic, &src), stream_window_parse,
                                       hold, strlen(hold) + 1);
    ds = count ? ember_window_count(ds, &w, partitions)
               : ember_window_reduce(ds, &w, EMBER_SUM_I64, partitions);
    ds = ember_map(ds, stream_window_format, NULL, 0);
    ember_query *query;
    if (ember_stream_to_files(ds, out, &q, &query) != EMBER_OK) return 1;
    printf("query %s started\n", q.name);
    fflush(stdout);
    if (ember_query_await(query, -1) != EMBER_OK) return 1;
    ember_query_progress p = {0};
    if (ember_query_status(query, &p) != EMBER_OK) return 1;
    printf("query %s ended: last batch %lld, %lld records in, %lld out, watermark %lld, "
           "%lld late\n",
           q.name, (long long)p.last_committed, (long long)p.records_in, (long long)p.records_out,
           (long long)p.watermark_ms, (long long)p.late_records);
    return 0;
}
