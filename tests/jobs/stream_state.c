/* stream_state.c -- a keyed-state query for the tests: records keyed by item, the value an
 * amount; each item's running count and total kept between batches (ember_map_with_state),
 * each record out as a line "item,count,total" into a directory per batch. An amount of
 * "reset" removes the item's state (and writes "item,0,0"); items idle for --ttl-ms expire.
 *
 *   stream_state --topic T --name NAME --checkpoint DIR --out DIR [--ttl-ms N]
 *                [--interval-ms N] [--partitions N]
 *
 * It waits for the query until it ends (ember-submit --stop NAME).
 */
#include <ember/ember.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query_args.h"

typedef struct totals {
    int64_t count, total;
} totals;

int stream_state_update(ember_task *task, const ember_record *in, void *state, int *exists)
{
    totals *t = state;
    char amount[32] = "";
    memcpy(amount, in->value,
           in->value_len < sizeof amount - 1 ? in->value_len : sizeof amount - 1);
    if (strcmp(amount, "reset") == 0) {
        *exists = 0;
        memset(t, 0, sizeof *t);
    } else {
        char *end;
        long long v = strtoll(amount, &end, 10);
        if (*end || end == amount) return ember_task_fail(task, "bad amount '%s'", amount);
        t->count++;
        t->total += v;
        *exists = 1;
    }
    char line[256];
    int n = snprintf(line, sizeof line, "%.*s,%" PRId64 ",%" PRId64, (int)in->key_len,
                     (const char *)in->key, t->count, t->total);
    return ember_emit_kv(task, in->key, in->key_len, line, (size_t)n, in->timestamp);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o =
        ember_opts_new(ctx, argc, argv,
                       "stream_state.so -- --topic T --out DIR --name Q --checkpoint DIR [--ttl-ms "
                       "N] [--partitions N] [--interval-ms N] [--detach]");
    const char *topic = ember_opt_str(o, "--topic", NULL), *out = ember_opt_str(o, "--out", NULL);
    ember_query_options q = query_args(o);
    ember_stream_source src = {.earliest = 1};
    int64_t ttl_ms = ember_opt_int(o, "--ttl-ms", 0);
    int partitions = (int)ember_opt_int(o, "--partitions", 2);
    if (ember_opts_check(o) != EMBER_OK) return 2;
    if (!topic || !out) {
        fprintf(stderr, "stream_state: give --topic and --out\n");
        return 2;
    }
    ember_dataset *ds =
        ember_map_with_state(ember_kafka_stream(ctx, topic, &src), stream_state_update,
                             sizeof(totals), ttl_ms, NULL, 0, partitions);
    ember_query *query;
    if (ember_stream_to_files(ds, out, &q, &query) != EMBER_OK) return 1;
    printf("query %s started\n", q.name);
    fflush(stdout);
    return ember_query_await(query, -1) == EMBER_OK ? 0 : 1;
}
