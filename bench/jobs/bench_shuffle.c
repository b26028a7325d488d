/* bench_shuffle.c -- benchmark job: shuffle throughput between executors (bench/shuffle).
 *
 * The measured pipeline, in ember's job API:
 *
 *     ember_count(ember_partition_by(ember_map(ember_range(ctx, 0, N, M), bsh_record, &V, 8), R))
 *
 * ember_range makes the integers [0, N) in M map partitions on the executors (nothing comes
 * from Kafka or from the submitter); bsh_record turns integer i into a record whose key is
 * i's 8 bytes and whose value is V bytes of a fixed pseudo-random pattern starting at an
 * offset that depends on i; partition_by hashes the keys into R reduce partitions (the map
 * stage writes every record into its bucket, the reduce stage fetches every bucket, local or
 * from the other executor, checks each batch's checksum and reads every record); ember_count
 * counts what the reduce side read, and must equal N. With `--mode repartition`,
 * ember_repartition (round robin) replaces partition_by.
 *
 * Record size on the wire (em_batch.h): 1 byte key length + 2 bytes value length (V >= 128)
 * + 1 byte timestamp (0) + 8 bytes key + V bytes value; with the default V = 1012 that is
 * exactly 1024 bytes, so N records are N KiB of shuffle output (plus a 24-byte header per
 * bucket).
 *
 * Arguments (after `--`):
 *   --records N      records shuffled by the timed action (default 262144: 256 MiB)
 *   --value-bytes V  value size, 0..65536 (default 1012)
 *   --map-parts M    map partitions of ember_range (default 16)
 *   --partitions R   reduce partitions (default 16)
 *   --mode K         partition_by (default) or repartition
 *   --name NAME      job name of the timed action on the driver's status endpoint
 *                    (default "bench_shuffle"); bench/shuffle reads its stages from there
 *
 * Before the timed action, one untimed warm-up action runs the same pipeline over 16 records
 * per map partition (named NAME-warmup): every executor slot loads this library and opens its
 * connections to the other executor's block service, as in a long-running cluster. The timed
 * action is one ember_count, timed with clock_gettime(CLOCK_MONOTONIC) around the action
 * alone. One timed action per ember-submit run: an action's shuffle output stays on the
 * executors until the submitter disconnects (docs/job-api.md, "Reuse across actions"), so
 * several big actions in one run would crowd the block stores. Prints
 *   bench_shuffle records=N value_bytes=V map_parts=M partitions=R mode=K seconds=S count=C
 * and exits 1 if the count is not N.
 *
 * Build: ember_job(bench_shuffle jobs/bench_shuffle.c) in bench/CMakeLists.txt.
 * Run:   ember-submit --driver URL bench_shuffle.so -- --records 1048576
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VALUE_MAX   65536
#define PATTERN_LEN (VALUE_MAX + 4096)

/* pattern: the bytes values are cut from, filled once when the library is loaded (an
 * xorshift64 stream: not compressible, not all zeroes) */
static unsigned char pattern[PATTERN_LEN];

__attribute__((constructor)) static void fill_pattern(void)
{
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < PATTERN_LEN; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(pattern + i, &x, 8);
    }
}

/* bsh_record (map): integer i -> (key: i's 8 bytes, value: V bytes of the pattern from offset
 * i % 4096). The argument is V as an int64. */
int bsh_record(ember_task *task, const ember_record *in)
{
    int64_t v_len;
    size_t arg_len;
    const void *arg = ember_task_arg(task, &arg_len);
    if (arg_len != sizeof v_len) return ember_task_fail(task, "bsh_record: bad argument");
    memcpy(&v_len, arg, sizeof v_len);
    int64_t i = ember_value_i64(in);
    return ember_emit_kv(task, in->value, in->value_len, pattern + (uint64_t)i % 4096,
                         (size_t)v_len, 0);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* shuffle_count counts n records of v_len-byte values through the shuffle into *count. */
static int shuffle_count(ember_ctx *ctx, int64_t n, int64_t v_len, int map_parts, int partitions,
                         int round_robin, int64_t *count)
{
    ember_dataset *recs =
        ember_map(ember_range(ctx, 0, n, map_parts), bsh_record, &v_len, sizeof v_len);
    ember_dataset *moved =
        round_robin ? ember_repartition(recs, partitions) : ember_partition_by(recs, partitions);
    int rc = ember_count(moved, count);
    if (rc != EMBER_OK) {
        fprintf(stderr, "bench_shuffle: count failed: %s: %s\n", ember_err_name(rc),
                ember_last_error(ctx));
        return -1;
    }
    if (*count != n) {
        fprintf(stderr, "bench_shuffle: count returned %lld, expected %lld\n", (long long)*count,
                (long long)n);
        return -1;
    }
    return 0;
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o =
        ember_opts_new(ctx, argc, argv,
                       "bench_shuffle.so -- [--records N] [--value-bytes V] "
                       "[--map-parts M] [--partitions R] [--mode partition_by|repartition] "
                       "[--name NAME]");
    long long n = ember_opt_int(o, "--records", 262144);
    long long v_len = ember_opt_int(o, "--value-bytes", 1012);
    int map_parts = (int)ember_opt_int(o, "--map-parts", 16);
    int partitions = (int)ember_opt_int(o, "--partitions", 16);
    const char *mode = ember_opt_str(o, "--mode", "partition_by");
    const char *name = ember_opt_str(o, "--name", "bench_shuffle");
    int round_robin = strcmp(mode, "repartition") == 0;
    if (ember_opts_check(o) != EMBER_OK) return 2;
    if (n < 1 || v_len < 0 || v_len > VALUE_MAX || map_parts < 1 || map_parts > 4096 ||
        partitions < 1 || partitions > 4096 ||
        (!round_robin && strcmp(mode, "partition_by") != 0) || strlen(name) > 200) {
        fprintf(stderr, "usage: bench_shuffle.so -- [--records N] [--value-bytes V] "
                        "[--map-parts M] [--partitions R] [--mode partition_by|repartition] "
                        "[--name NAME]\n");
        return 2;
    }

    char job_name[256];
    int64_t count = 0;
    snprintf(job_name, sizeof job_name, "%s-warmup", name);
    ember_set_job_name(ctx, job_name);
    if (shuffle_count(ctx, 16LL * map_parts, v_len, map_parts, partitions, round_robin, &count))
        return 1;

    ember_set_job_name(ctx, name);
    double t0 = now_s();
    int rc = shuffle_count(ctx, n, v_len, map_parts, partitions, round_robin, &count);
    double secs = now_s() - t0;
    if (rc != 0) return 1;
    printf("bench_shuffle records=%lld value_bytes=%lld map_parts=%d partitions=%d mode=%s "
           "seconds=%.6f count=%lld\n",
           n, v_len, map_parts, partitions, mode, secs, (long long)count);
    return 0;
}
