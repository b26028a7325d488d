/* word_count.c -- example job: word frequencies of text lines on Kafka, through a shuffle.
 *
 * Lines from the topic --in (default "lines"), or from text files with --files PATH (a file, a
 * directory or a glob pattern every executor can read at that path), are split into lower-case
 * words ([a-z0-9']+; other bytes separate words); reduce_by_key sums a 1 per word over --partitions
 * reducers (default 8). The --top N (default 10) most frequent words are printed (ties by word),
 * and every count is saved as "word<TAB>count" lines under --out DIR (one file per reduce
 * partition).
 *
 * Run: ember-submit word_count.so -- --in lines --out /tmp/word-counts --top 10
 *      ember-submit word_count.so -- --files /data/books --out /tmp/word-counts
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* wc_split_words (flat_map): (word, 1) for every word of the line */
int wc_split_words(ember_task *task, const ember_record *in)
{
    const unsigned char *s = in->value;
    char word[128];
    size_t n = 0;
    for (size_t i = 0; i <= in->value_len; i++) {
        unsigned char c = i < in->value_len ? s[i] : ' ';
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\'') {
            if (n < sizeof word) word[n++] = (char)c;
            continue;
        }
        if (n > 0) {
            int rc = ember_emit_i64(task, word, n, 1, in->timestamp);
            if (rc != EMBER_OK) return rc;
        }
        n = 0;
    }
    return EMBER_OK;
}

/* wc_format (map): (word, count) -> "word<TAB>count" */
int wc_format(ember_task *task, const ember_record *in)
{
    char line[192];
    int n = snprintf(line, sizeof line, "%.*s\t%lld", (int)in->key_len, (const char *)in->key,
                     (long long)ember_value_i64(in));
    return ember_emit_kv(task, in->key, in->key_len, line, (size_t)n, in->timestamp);
}

static int by_count_then_word(const void *pa, const void *pb)
{
    const ember_record *a = pa, *b = pb;
    int64_t ca = ember_value_i64(a), cb = ember_value_i64(b);
    if (ca != cb) return ca > cb ? -1 : 1;
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);
    return c ? c : (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o = ember_opts_new(ctx, argc, argv,
                                   "word_count.so -- [--in TOPIC | --files PATH] [--out DIR] "
                                   "[--top N] [--partitions N (0: one per input partition)]");
    const char *in = ember_opt_str(o, "--in", "lines");
    const char *files = ember_opt_str(o, "--files", NULL);
    const char *out = ember_opt_str(o, "--out", "word-counts");
    int top = (int)ember_opt_int(o, "--top", 10);
    int partitions = (int)ember_opt_int(o, "--partitions", 8);
    if (ember_opts_check(o) != EMBER_OK) return 2;
    ember_dataset *lines = files ? ember_text_file(ctx, files, 0) : ember_kafka_topic(ctx, in);
    ember_dataset *counts = ember_reduce_by_key(ember_flat_map(lines, wc_split_words, NULL, 0),
                                                EMBER_SUM_I64, partitions);
    ember_collected all;
    int64_t saved;
    if (ember_collect(counts, &all) != EMBER_OK ||
        ember_save_text(ember_map(counts, wc_format, NULL, 0), out, &saved) != EMBER_OK) {
        fprintf(stderr, "word_count: %s\n", ember_last_error(ctx));
        return 1;
    }
    ember_record *sorted = malloc((all.n ? all.n : 1) * sizeof *sorted);
    if (!sorted) return 1;
    memcpy(sorted, all.records, all.n * sizeof *sorted);
    qsort(sorted, all.n, sizeof *sorted, by_count_then_word);
    printf("word_count: %zu distinct words, saved to %s\n", all.n, out);
    for (size_t i = 0; i < all.n && (int)i < top; i++)
        printf("%8lld  %.*s\n", (long long)ember_value_i64(&sorted[i]), (int)sorted[i].key_len,
               (const char *)sorted[i].key);
    free(sorted);
    return 0;
}
