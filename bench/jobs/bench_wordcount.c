/* bench_wordcount.c -- benchmark job: word count of text lines on a Kafka topic (bench/wordcount).
 *
 * The measured pipeline, in ember's job API:
 *
 *     ember_collect(ember_reduce_by_key(ember_flat_map(ember_kafka_topic(ctx, TOPIC),
 *                                                      bwc_split, NULL, 0),
 *                                       EMBER_SUM_I64, PARTITIONS))
 *
 * bwc_split emits (word, int64 1) with ember_emit_i64 for every run of bytes between spaces
 * (the bench's lines are words separated by single spaces; empty words are skipped);
 * reduce_by_key combines on the map side, shuffles by key into PARTITIONS reduce tasks and
 * sums; the collect brings the (word, count) records back here, where they are checked.
 *
 * Arguments (after `--`):
 *   --topic T            source topic (default "lines")
 *   --partitions R       reduce partitions (default 16)
 *   --reps N             timed word counts (default 3)
 *   --source-parts P     partitions of the topic: the warm-up reads offset [0, 1) of each
 *                        (default 16; the bench has checked that every low watermark is 0)
 *   --expect-distinct D  fail unless every run finds exactly D distinct words (0: no check)
 *   --expect-words W     fail unless the counts of every run sum to W (0: no check)
 *   --files PATH         read the lines from text files (ember_text_file: a directory or a
 *                        glob pattern) instead of the topic; the warm-up is then one untimed
 *                        run over the files, into R + 1 reducers
 *
 * Before timing, one untimed warm-up action reads the first record of every source partition
 * (ember_kafka_ranges) and counts it through the same flat_map and reduce_by_key, so that
 * every executor slot has loaded this library and connected its Kafka consumer, as the
 * executors of a long-running cluster would have. Each timed run is one ember_collect,
 * timed with clock_gettime(CLOCK_MONOTONIC) around the action alone; runs are named
 * "bench_wordcount-N" on the driver's status endpoint (bench/wordcount reads their stage
 * durations from there). Prints one line per run and a summary:
 *   bench_wordcount run=N seconds=S distinct=D words=W
 *   bench_wordcount reps=N median_s=M best_s=B distinct=D words=W
 *
 * Build: ember_job(bench_wordcount jobs/bench_wordcount.c) in bench/CMakeLists.txt.
 * Run:   ember-submit --driver URL --kafka B bench_wordcount.so -- --topic lines --reps 3
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* bwc_split (flat_map): (word, 1) for every space-separated word of the line. */
int bwc_split(ember_task *task, const ember_record *in)
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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* word_count runs one collect of the word counts of `src`; *distinct and *words get the number
 * of records and the sum of their counts. */
static int word_count(ember_ctx *ctx, ember_dataset *src, int partitions, int64_t *distinct,
                      int64_t *words)
{
    ember_collected all;
    ember_dataset *counts =
        ember_reduce_by_key(ember_flat_map(src, bwc_split, NULL, 0), EMBER_SUM_I64, partitions);
    int rc = ember_collect(counts, &all);
    if (rc != EMBER_OK) {
        fprintf(stderr, "bench_wordcount: collect failed: %s: %s\n", ember_err_name(rc),
                ember_last_error(ctx));
        return -1;
    }
    int64_t sum = 0;
    for (size_t i = 0; i < all.n; i++) sum += ember_value_i64(&all.records[i]);
    *distinct = (int64_t)all.n;
    *words = sum;
    return 0;
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o = ember_opts_new(ctx, argc, argv,
                                   "bench_wordcount.so -- [--topic T] [--partitions R] [--reps N] "
                                   "[--source-parts P] [--expect-distinct D] [--expect-words W] "
                                   "[--files PATH]");
    const char *topic = ember_opt_str(o, "--topic", "lines");
    const char *files = ember_opt_str(o, "--files", NULL);
    int partitions = (int)ember_opt_int(o, "--partitions", 16);
    int reps = (int)ember_opt_int(o, "--reps", 3);
    int source_parts = (int)ember_opt_int(o, "--source-parts", 16);
    long long expect_distinct = ember_opt_int(o, "--expect-distinct", 0);
    long long expect_words = ember_opt_int(o, "--expect-words", 0);
    if (ember_opts_check(o) != EMBER_OK) return 2;
    if (partitions < 1 || reps < 1 || reps > 100 || source_parts < 1 || source_parts > 4096) {
        fprintf(stderr, "usage: bench_wordcount.so -- [--topic T] [--partitions R] [--reps N] "
                        "[--source-parts P] [--expect-distinct D] [--expect-words W]\n");
        return 2;
    }

    /* warm-up: one record of every partition through the same pipeline (see the top), or
     * every file */
    ember_kafka_range *first = calloc((size_t)source_parts, sizeof *first);
    if (!first) return 1;
    for (int p = 0; p < source_parts; p++) first[p] = (ember_kafka_range){p, 0, 1};
    int64_t distinct = 0, words = 0;
    ember_set_job_name(ctx, "bench_wordcount-warmup");
    /* (over the files with one more reducer: another shuffle, whose map output the timed runs
     * of this session cannot reuse in place of reading the files) */
    int rc = word_count(ctx,
                        files ? ember_text_file(ctx, files, 0)
                              : ember_kafka_ranges(ctx, topic, first, (size_t)source_parts),
                        files ? partitions + 1 : partitions, &distinct, &words);
    free(first);
    if (rc != 0) return 1;
    if (words < source_parts) { /* at least one word per line */
        fprintf(stderr, "bench_wordcount: warm-up counted only %lld words in %d lines\n",
                (long long)words, source_parts);
        return 1;
    }

    double *secs = calloc((size_t)reps, sizeof *secs);
    if (!secs) return 1;
    for (int r = 0; r < reps; r++) {
        char name[64];
        snprintf(name, sizeof name, "bench_wordcount-%d", r + 1);
        ember_set_job_name(ctx, name);
        ember_dataset *src = files ? ember_text_file(ctx, files, 0) : ember_kafka_topic(ctx, topic);
        double t0 = now_s();
        rc = word_count(ctx, src, partitions, &distinct, &words);
        secs[r] = now_s() - t0;
        if (rc != 0) break;
        printf("bench_wordcount run=%d seconds=%.6f distinct=%lld words=%lld\n", r + 1, secs[r],
               (long long)distinct, (long long)words);
        fflush(stdout);
        if ((expect_distinct && distinct != expect_distinct) ||
            (expect_words && words != expect_words)) {
            fprintf(stderr,
                    "bench_wordcount: run %d found %lld distinct words summing to %lld; expected "
                    "%lld and %lld\n",
                    r + 1, (long long)distinct, (long long)words, expect_distinct, expect_words);
            rc = -1;
            break;
        }
    }
    if (rc == 0) {
        qsort(secs, (size_t)reps, sizeof *secs, cmp_double);
        double median = reps % 2 ? secs[reps / 2] : (secs[reps / 2 - 1] + secs[reps / 2]) / 2;
        printf("bench_wordcount reps=%d median_s=%.6f best_s=%.6f distinct=%lld words=%lld\n", reps,
               median, secs[0], (long long)distinct, (long long)words);
    }
    free(secs);
    return rc == 0 ? 0 : 1;
}
