/* stream_join.c -- a query joining a stream with a static dataset, for the tests: sales lines
 * "item,qty" from a stream, summed per item within each batch (reduce_by_key), joined with a
 * static catalog of lines "item,price" (a topic, or with --catalog-file a text file; read
 * again by every batch), each batch's
 * result a line "item,qty,price" in a directory per batch. Items missing from the catalog
 * drop out of the (inner) join.
 *
 *   stream_join --topic T (--catalog T2 | --catalog-file F) --name NAME --checkpoint DIR --out DIR
 *               [--interval-ms N]
 */
#include <ember/ember.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query_args.h"

/* stream_join_pair: "key,number" -> (key, number as int64) */
int stream_join_pair(ember_task *task, const ember_record *in)
{
    const char *comma = memchr(in->value, ',', in->value_len);
    if (!comma) return EMBER_OK;
    char num[32] = "";
    size_t key_len = (size_t)(comma - (const char *)in->value), len = in->value_len - key_len - 1;
    if (len == 0 || len >= sizeof num) return EMBER_OK;
    memcpy(num, comma + 1, len);
    return ember_emit_i64(task, in->value, key_len, strtoll(num, NULL, 10), in->timestamp);
}

/* stream_join_line: (item, (qty, price)) -> "item,qty,price" */
int stream_join_line(ember_task *task, const ember_record *in)
{
    ember_record qty, price;
    if (ember_join_values(in, &qty, &price) != 1) return ember_task_fail(task, "not a join");
    int64_t q, p;
    memcpy(&q, qty.value, sizeof q);
    memcpy(&p, price.value, sizeof p);
    char line[256];
    int n = snprintf(line, sizeof line, "%.*s,%" PRId64 ",%" PRId64, (int)in->key_len,
                     (const char *)in->key, q, p);
    return ember_emit_kv(task, in->key, in->key_len, line, (size_t)n, in->timestamp);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o = ember_opts_new(ctx, argc, argv,
                                   "stream_join.so -- --topic T (--catalog T | --catalog-file F) "
                                   "--out DIR --name Q --checkpoint DIR [--interval-ms N] "
                                   "[--detach]");
    const char *topic = ember_opt_str(o, "--topic", NULL),
               *catalog = ember_opt_str(o, "--catalog", NULL),
               *catalog_file = ember_opt_str(o, "--catalog-file", NULL),
               *out = ember_opt_str(o, "--out", NULL);
    ember_query_options q = query_args(o);
    if (ember_opts_check(o) != EMBER_OK) return 2;
    if (!topic || !(catalog || catalog_file) || !out) {
        fprintf(stderr, "stream_join: give --topic, --catalog or --catalog-file, and --out\n");
        return 2;
    }
    ember_stream_source src = {.earliest = 1};
    ember_dataset *sales = ember_reduce_by_key(
        ember_flat_map(ember_kafka_stream(ctx, topic, &src), stream_join_pair, NULL, 0),
        EMBER_SUM_I64, 2);
    ember_dataset *prices = ember_flat_map(catalog_file ? ember_text_file(ctx, catalog_file, 2)
                                                        : ember_kafka_topic(ctx, catalog),
                                           stream_join_pair, NULL, 0);
    ember_dataset *lines = ember_map(ember_join(sales, prices, 2), stream_join_line, NULL, 0);
    ember_query *query;
    if (ember_stream_to_files(lines, out, &q, &query) != EMBER_OK) return 1;
    printf("query %s started\n", q.name);
    fflush(stdout);
    return ember_query_await(query, -1) == EMBER_OK ? 0 : 1;
}
