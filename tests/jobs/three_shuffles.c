/* three_shuffles.c -- test job: a word count through three shuffles, globally ordered.
 *
 * lines (Kafka topic --in) -> repartition(P1) (every raw line crosses the network) ->
 * words -> reduce_by_key(P2) -> key = (-count, word) -> sort_by_key(P3) -> "word<TAB>count"
 * lines saved under --out. Reading the part files in order gives the counts by descending
 * count, ties by word (bytewise): the same bytes whatever the cluster and partition counts.
 * Arguments: --in TOPIC --out DIR --partitions "P1 P2 P3".
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ts_words (flat_map): (word, 1) for each space-separated word */
int ts_words(ember_task *task, const ember_record *in)
{
    const char *s = in->value;
    size_t i = 0, n = in->value_len;
    while (i < n) {
        while (i < n && s[i] == ' ') i++;
        size_t start = i;
        while (i < n && s[i] != ' ') i++;
        if (i > start) {
            int rc = ember_emit_i64(task, s + start, i - start, 1, in->timestamp);
            if (rc != EMBER_OK) return rc;
        }
    }
    return EMBER_OK;
}

/* ts_order_key (map): (word, count) -> (ember_key_i64(-count) + word, "word<TAB>count") */
int ts_order_key(ember_task *task, const ember_record *in)
{
    uint8_t key[8 + 256];
    char line[300];
    if (in->key_len > 256) return ember_task_fail(task, "word of %zu bytes", in->key_len);
    ember_key_i64(-ember_value_i64(in), key);
    memcpy(key + 8, in->key, in->key_len);
    int n = snprintf(line, sizeof line, "%.*s\t%lld", (int)in->key_len, (const char *)in->key,
                     (long long)ember_value_i64(in));
    return ember_emit_kv(task, key, 8 + in->key_len, line, (size_t)n, in->timestamp);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o = ember_opts_new(ctx, argc, argv,
                                   "three_shuffles.so -- [--in T] [--out DIR] "
                                   "[--partitions \"P1 P2 P3\"]");
    const char *in = ember_opt_str(o, "--in", "lines"),
               *out = ember_opt_str(o, "--out", "three-shuffles"),
               *parts = ember_opt_str(o, "--partitions", "4 3 2");
    if (ember_opts_check(o) != EMBER_OK) return 2;
    int p1, p2, p3;
    if (sscanf(parts, "%d %d %d", &p1, &p2, &p3) != 3) {
        fprintf(stderr, "three_shuffles: --partitions \"P1 P2 P3\"\n");
        return 2;
    }
    ember_dataset *lines = ember_repartition(ember_kafka_topic(ctx, in), p1);
    ember_dataset *counts =
        ember_reduce_by_key(ember_flat_map(lines, ts_words, NULL, 0), EMBER_SUM_I64, p2);
    ember_dataset *ordered = ember_sort_by_key(ember_map(counts, ts_order_key, NULL, 0), 1, p3);
    int64_t written;
    if (ember_save_text(ordered, out, &written) != EMBER_OK) {
        fprintf(stderr, "three_shuffles: %s\n", ember_last_error(ctx));
        return 1;
    }
    printf("three_shuffles: %lld words in %d files\n", (long long)written, p3);
    return 0;
}
