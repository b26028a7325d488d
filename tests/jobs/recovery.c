/* recovery.c -- test job for lost work: its results are checked here, exactly, whatever was
 * recomputed on the way. Modes (first argument):
 *   slow-map N PARTS PAUSE_MS REDUCERS    range -> slow map to (k<v % 50>, 1) -> sum by key
 *   slow-reduce N PARTS PAUSE_MS REDUCERS range -> map to (k<v % 50>, 1) -> sum by key ->
 *                                          slow map
 *   flaky MARKER                          a filter that fails on partition 2 until MARKER
 *                                          exists (it creates it): succeeds at attempt 2
 *   reread N PARTS REDUCERS FILE           range -> (k<v % 50>, 64-byte value) -> partition_by,
 *                                          counted per key twice: the second action reuses the
 *                                          first's shuffle output, after FILE exists
 * Prints "recovery: <mode> ok: <keys> keys, <total> records" or a MISMATCH line (exit 1).
 * Accumulators: the map of slow-map and slow-reduce adds 1 to "mapped" and 0.5 to the double
 * "mapped_halves" per record, the flaky filter 1 to "seen" per record, its failing attempt
 * included: the totals must be N, N / 2 and 40 (failed attempts and lost outputs count once).
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KEYS 50

static void pause_ms(ember_task *task)
{
    size_t len;
    const int *ms = ember_task_arg(task, &len);
    struct timespec ts = {0, (len == sizeof *ms ? *ms : 0) * 1000000L};
    nanosleep(&ts, NULL);
}

/* rc_key (map): (k<v % 50>, 1), after the pause given as argument */
int rc_key(ember_task *task, const ember_record *in)
{
    pause_ms(task);
    char key[8];
    int n = snprintf(key, sizeof key, "k%02d", (int)(ember_value_i64(in) % KEYS));
    int rc = ember_acc_add(task, "mapped", 1);
    if (rc == EMBER_OK) rc = ember_acc_add_f64(task, "mapped_halves", 0.5);
    return rc == EMBER_OK ? ember_emit_i64(task, key, (size_t)n, 1, 0) : rc;
}

/* rc_slow (map): the record unchanged, after the pause given as argument */
int rc_slow(ember_task *task, const ember_record *in)
{
    pause_ms(task);
    return ember_emit(task, in);
}

/* rc_padded (map): (k<v % 50>, 64 bytes holding v) */
int rc_padded(ember_task *task, const ember_record *in)
{
    char key[8];
    uint8_t value[64] = {0};
    int64_t v = ember_value_i64(in);
    memcpy(value, &v, sizeof v);
    int n = snprintf(key, sizeof key, "k%02d", (int)(v % KEYS));
    return ember_emit_kv(task, key, (size_t)n, value, sizeof value, 0);
}

/* rc_flaky (filter): fails on partition 2 until the marker file (argument) exists */
int rc_flaky(ember_task *task, const ember_record *in)
{
    size_t len;
    const char *marker = ember_task_arg(task, &len);
    (void)in;
    if (ember_acc_add(task, "seen", 1) != EMBER_OK) return EMBER_ERR_USER;
    if (ember_task_partition(task) != 2 || access(marker, F_OK) == 0) return 1;
    FILE *f = fopen(marker, "w");
    if (f) fclose(f);
    return ember_task_fail(task, "first attempt fails on purpose");
}

static int check_counts(ember_ctx *ctx, ember_dataset *counts, long n, const char *mode)
{
    ember_collected c;
    if (ember_collect(counts, &c) != EMBER_OK) {
        printf("recovery: %s failed: %s\n", mode, ember_last_error(ctx));
        return 1;
    }
    long total = 0;
    for (size_t i = 0; i < c.n; i++) {
        int k = atoi((const char *)c.records[i].key + 1);
        long want = n / KEYS + (k < n % KEYS), got = (long)ember_value_i64(&c.records[i]);
        if (got != want) {
            printf("recovery: %s MISMATCH: key %.*s has %ld records, want %ld\n", mode,
                   (int)c.records[i].key_len, (const char *)c.records[i].key, got, want);
            return 1;
        }
        total += got;
    }
    if (c.n != (n < KEYS ? (size_t)n : KEYS) || total != n) {
        printf("recovery: %s MISMATCH: %zu keys, %ld records\n", mode, c.n, total);
        return 1;
    }
    printf("recovery: %s ok: %zu keys, %ld records\n", mode, c.n, total);
    fflush(stdout); /* a test may wait for this line while the job goes on */
    return 0;
}

/* reread: one shuffle, read by two actions with a pause between them */
static int reread(ember_ctx *ctx, long n, int parts, int reducers, const char *wait)
{
    ember_dataset *moved =
        ember_partition_by(ember_map(ember_range(ctx, 0, n, parts), rc_padded, NULL, 0), reducers);
    ember_dataset *counts = ember_count_by_key(moved, 1);
    if (check_counts(ctx, counts, n, "reread first")) return 1;
    for (int i = 0; access(wait, F_OK) != 0 && i < 6000; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return check_counts(ctx, ember_count_by_key(moved, 2), n, "reread second");
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "reread") == 0 && argc > 5)
        return reread(ctx, atol(argv[2]), atoi(argv[3]), atoi(argv[4]), argv[5]);
    if (strcmp(mode, "flaky") == 0 && argc > 2) {
        int64_t n;
        ember_dataset *kept =
            ember_filter(ember_range(ctx, 0, 40, 4), rc_flaky, argv[2], strlen(argv[2]) + 1);
        if (ember_count(kept, &n) != EMBER_OK || n != 40) {
            printf("recovery: flaky MISMATCH: %s\n", ember_last_error(ctx));
            return 1;
        }
        if (ember_accumulator(ctx, "seen") != 40) { /* the failed attempt added nothing */
            printf("recovery: flaky MISMATCH: accumulator seen = %lld, want 40\n",
                   (long long)ember_accumulator(ctx, "seen"));
            return 1;
        }
        printf("recovery: flaky ok: 40 records\n");
        return 0;
    }
    if (argc < 6) {
        fprintf(stderr, "usage: recovery slow-map|slow-reduce N PARTS PAUSE_MS REDUCERS\n");
        return 2;
    }
    long n = atol(argv[2]);
    int parts = atoi(argv[3]), pause = atoi(argv[4]), none = 0, reducers = atoi(argv[5]);
    int slow_map = strcmp(mode, "slow-map") == 0;
    ember_dataset *keyed =
        ember_map(ember_range(ctx, 0, n, parts), rc_key, slow_map ? &pause : &none, sizeof pause);
    ember_dataset *counts = ember_reduce_by_key(keyed, EMBER_SUM_I64, reducers);
    if (!slow_map) counts = ember_map(counts, rc_slow, &pause, sizeof pause);
    if (check_counts(ctx, counts, n, mode)) return 1;
    /* every record mapped once, whatever attempts failed or outputs were computed again */
    int64_t mapped = ember_accumulator(ctx, "mapped");
    double halves = ember_accumulator_f64(ctx, "mapped_halves");
    if (mapped != n || halves != (double)n / 2) {
        printf("recovery: %s MISMATCH: accumulators mapped = %lld, mapped_halves = %.1f, want "
               "%ld and %.1f\n",
               mode, (long long)mapped, halves, n, (double)n / 2);
        return 1;
    }
    printf("recovery: %s accumulators ok: mapped = %lld\n", mode, (long long)mapped);
    return 0;
}
