/* bench_recovery.c -- benchmark job: bench/wordcount's word count, timed once, its counts saved.
 *
 * The pipeline is bench_wordcount.c's, unchanged:
 *
 *     ember_collect(ember_reduce_by_key(ember_flat_map(ember_kafka_topic(ctx, TOPIC),
 *                                                      brc_split, NULL, 0),
 *                                       EMBER_SUM_I64, PARTITIONS))
 *
 * brc_split is bench_wordcount.c's bwc_split: (word, int64 1) for every run of bytes between
 * single spaces. What differs is what happens around the action: bench/recovery kills an
 * executor while it runs and must show that the result is the same as without the kill, so
 * this job runs one timed action (after the same untimed warm-up as bench_wordcount) and
 * writes every (word, count) it collected, sorted by word, to a file the script compares
 * between runs and against counts made from the source files.
 *
 * Arguments (after `--`):
 *   --topic T            source topic (default "lines")
 *   --partitions R       reduce partitions (default 16)
 *   --source-parts P     partitions of the topic; the warm-up reads offset [0, 1) of each
 *                        (default 16)
 *   --out FILE           write "word count\n" lines, sorted by word (bytewise), to FILE
 *   --expect-distinct D  fail unless the run finds exactly D distinct words (0: no check)
 *   --expect-words W     fail unless the counts sum to W (0: no check)
 *
 * The timed action is named "bench_recovery-run" on the driver's status endpoint (the warm-up
 * "bench_recovery-warmup"): bench/recovery finds it there to follow its progress. Prints
 *   bench_recovery seconds=S distinct=D words=W
 * with S from clock_gettime(CLOCK_MONOTONIC) around the action alone.
 *
 * Build: ember_job(bench_recovery jobs/bench_recovery.c) in bench/CMakeLists.txt.
 * Run:   ember-submit --driver URL --kafka B bench_recovery.so -- --topic lines --out counts.txt
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* brc_split (flat_map): (word, 1) for every space-separated word of the line. */
int brc_split(ember_task *task, const ember_record *in)
{
    const char *s = in->value, *end = s + in->value_len;
    while (s < end) {
        const char *sp = memchr(s, ' ', (size_t)(end - s));
        const char *w_end = sp ? sp : end;
        if (w_end > s) {
            int rc = ember_emit_i64(task, s, (size_t)(w_end - s), 1, in->timestamp);
            if (rc != EMBER_OK) return rc;
        }
        s = w_end + 1;
    }
    return EMBER_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* cmp_key orders record pointers by key, bytewise, a shorter prefix first. */
static int cmp_key(const void *a, const void *b)
{
    const ember_record *x = *(const ember_record *const *)a, *y = *(const ember_record *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = n ? memcmp(x->key, y->key, n) : 0;
    return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* save_sorted writes the collected (word, count) records, sorted by word, to `path`. */
static int save_sorted(const ember_collected *all, const char *path)
{
    const ember_record **by_key = calloc(all->n ? all->n : 1, sizeof *by_key);
    if (!by_key) return -1;
    for (size_t i = 0; i < all->n; i++) by_key[i] = &all->records[i];
    qsort(by_key, all->n, sizeof *by_key, cmp_key);
    FILE *f = fopen(path, "w");
    int rc = f ? 0 : -1;
    for (size_t i = 0; f && i < all->n; i++)
        if (fprintf(f, "%.*s %lld\n", (int)by_key[i]->key_len, (const char *)by_key[i]->key,
                    (long long)ember_value_i64(by_key[i])) < 0)
            rc = -1;
    if (f && fclose(f) != 0) rc = -1;
    free(by_key);
    if (rc != 0) fprintf(stderr, "bench_recovery: cannot write %s\n", path);
    return rc;
}

/* word_count runs one collect of the word counts of `src` into *all. */
static int word_count(ember_ctx *ctx, ember_dataset *src, int partitions, ember_collected *all)
{
    ember_dataset *counts =
        ember_reduce_by_key(ember_flat_map(src, brc_split, NULL, 0), EMBER_SUM_I64, partitions);
    int rc = ember_collect(counts, all);
    if (rc != EMBER_OK) {
        fprintf(stderr, "bench_recovery: collect failed: %s: %s\n", ember_err_name(rc),
                ember_last_error(ctx));
        return -1;
    }
    return 0;
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o = ember_opts_new(ctx, argc, argv,
                                   "bench_recovery.so -- --out FILE [--topic T] [--partitions R] "
                                   "[--source-parts P] [--expect-distinct D] [--expect-words W]");
    const char *topic = ember_opt_str(o, "--topic", "lines");
    int partitions = (int)ember_opt_int(o, "--partitions", 16);
    int source_parts = (int)ember_opt_int(o, "--source-parts", 16);
    const char *out = ember_opt_str(o, "--out", NULL);
    long long expect_distinct = ember_opt_int(o, "--expect-distinct", 0);
    long long expect_words = ember_opt_int(o, "--expect-words", 0);
    if (ember_opts_check(o) != EMBER_OK) return 2;
    if (partitions < 1 || source_parts < 1 || source_parts > 4096 || !out) {
        fprintf(stderr, "usage: bench_recovery.so -- --out FILE [--topic T] [--partitions R] "
                        "[--source-parts P] [--expect-distinct D] [--expect-words W]\n");
        return 2;
    }

    /* warm-up: one record of every partition through the same pipeline, untimed, so every
     * executor slot has loaded this library and connected its Kafka consumer */
    ember_kafka_range *first = calloc((size_t)source_parts, sizeof *first);
    if (!first) return 1;
    for (int p = 0; p < source_parts; p++) first[p] = (ember_kafka_range){p, 0, 1};
    ember_collected all;
    ember_set_job_name(ctx, "bench_recovery-warmup");
    int rc = word_count(ctx, ember_kafka_ranges(ctx, topic, first, (size_t)source_parts),
                        partitions, &all);
    free(first);
    if (rc != 0) return 1;

    ember_set_job_name(ctx, "bench_recovery-run");
    ember_dataset *src = ember_kafka_topic(ctx, topic);
    double t0 = now_s();
    rc = word_count(ctx, src, partitions, &all);
    double secs = now_s() - t0;
    if (rc != 0) return 1;
    int64_t words = 0;
    for (size_t i = 0; i < all.n; i++) words += ember_value_i64(&all.records[i]);
    printf("bench_recovery seconds=%.6f distinct=%lld words=%lld\n", secs, (long long)all.n,
           (long long)words);
    fflush(stdout);
    if ((expect_distinct && (long long)all.n != expect_distinct) ||
        (expect_words && words != expect_words)) {
        fprintf(stderr,
                "bench_recovery: found %lld distinct words summing to %lld; expected %lld and "
                "%lld\n",
                (long long)all.n, (long long)words, expect_distinct, expect_words);
        return 1;
    }
    return save_sorted(&all, out) == 0 ? 0 : 1;
}
