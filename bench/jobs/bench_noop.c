/* bench_noop.c -- benchmark job: task dispatch cost of ember, with tasks that do nothing.
 *
 * Modes (the job arguments after `--`):
 *   throughput N   one warm-up action, then ember_count(ember_range(ctx, 0, N, N)): N partitions
 *                  of one record each, so N tasks. Prints
 *                  "bench_noop throughput tasks=N seconds=S tasks_per_s=R"
 *   latency REPS   one warm-up action, then REPS times ember_count(ember_range(ctx, 0, 1, 1)),
 *                  each timed on its own. Prints
 *                  "bench_noop latency reps=REPS median_ms=M p99_ms=P min_ms=A max_ms=B"
 *   once           a single ember_count(ember_range(ctx, 0, 1, 1)) and nothing else: the body of
 *                  a "cold submit", timed from outside around the whole ember-submit process.
 * Times come from clock_gettime(CLOCK_MONOTONIC) around the action alone. p99 is the
 * nearest-rank percentile (the ceil(0.99 * REPS)-th smallest sample), as in dispatch_dask.py.
 * Every count is checked against the expected number; a mismatch fails the job.
 *
 * Build: ember_job(bench_noop jobs/bench_noop.c) in bench/CMakeLists.txt.
 * Run:   ember-submit --driver URL bench_noop.so -- throughput 10000
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* count_range runs one count of [0, n) in `parts` partitions and checks the result. */
static int count_range(ember_ctx *ctx, int64_t n, int parts)
{
    int64_t got = -1;
    int rc = ember_count(ember_range(ctx, 0, n, parts), &got);
    if (rc != EMBER_OK) {
        fprintf(stderr, "bench_noop: count failed: %s: %s\n", ember_err_name(rc),
                ember_last_error(ctx));
        return -1;
    }
    if (got != n) {
        fprintf(stderr, "bench_noop: count returned %lld, expected %lld\n", (long long)got,
                (long long)n);
        return -1;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int run_throughput(ember_ctx *ctx, long n)
{
    if (n < 1 || n > 1000000) {
        fprintf(stderr, "bench_noop: throughput needs 1 <= N <= 1000000\n");
        return 2;
    }
    /* warm-up: every executor loads the job library before the timed action */
    if (count_range(ctx, 4, 4) != 0) return 1;
    double t0 = now_s();
    if (count_range(ctx, n, (int)n) != 0) return 1;
    double s = now_s() - t0;
    printf("bench_noop throughput tasks=%ld seconds=%.6f tasks_per_s=%.1f\n", n, s, (double)n / s);
    return 0;
}

static int run_latency(ember_ctx *ctx, long reps)
{
    if (reps < 1 || reps > 100000) {
        fprintf(stderr, "bench_noop: latency needs 1 <= REPS <= 100000\n");
        return 2;
    }
    double *ms = calloc((size_t)reps, sizeof *ms);
    if (!ms) return 1;
    int rc = count_range(ctx, 4, 4) == 0 ? 0 : 1; /* warm-up, as above */
    for (long i = 0; rc == 0 && i < reps; i++) {
        double t0 = now_s();
        if (count_range(ctx, 1, 1) != 0) rc = 1;
        ms[i] = (now_s() - t0) * 1e3;
    }
    if (rc == 0) {
        qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
        long p99 = (99 * reps + 99) / 100 - 1; /* ceil(0.99 * reps) - 1 */
        double median = reps % 2 ? ms[reps / 2] : (ms[reps / 2 - 1] + ms[reps / 2]) / 2;
        printf("bench_noop latency reps=%ld median_ms=%.4f p99_ms=%.4f min_ms=%.4f max_ms=%.4f\n",
               reps, median, ms[p99], ms[0], ms[reps - 1]);
    }
    free(ms);
    return rc;
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    long n = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
    ember_set_job_name(ctx, "bench_noop");
    if (strcmp(mode, "throughput") == 0) return run_throughput(ctx, n);
    if (strcmp(mode, "latency") == 0) return run_latency(ctx, n);
    if (strcmp(mode, "once") == 0) return count_range(ctx, 1, 1) == 0 ? 0 : 1;
    fprintf(stderr, "usage: bench_noop.so -- throughput N | latency REPS | once\n");
    return 2;
}
