/* default_parts.c -- wide operations given 0 partitions take their parent's count (the larger
 * of two parents'), and ember-submit exits with ember_main's return value.
 *
 * Each dataset below is followed by a map_partitions that emits one record per partition, so
 * counting them gives the dataset's partition count; the counts are compared with the
 * parents' counts set here. The record values are checked too (sums of the inputs), so a
 * default count that lost records would not pass. Prints
 *   default_parts: reduce_by_key 5, join 7, distinct 5, sort_by_key 12, repartition 8;
 *   records 100 60 160 ok
 * and returns 0; with `--fail-handled`, runs an action that fails (a negative partition
 * count), prints the error and returns 0 (the job handled it); with `--exit N`, returns N.
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* one_per_partition (map_partitions): one record, whatever the partition holds */
int one_per_partition(ember_task *task, ember_iter *in)
{
    ember_record rec;
    while (ember_next(in, &rec) > 0) {
    }
    int p = ember_task_partition(task);
    return ember_emit_i64(task, &p, sizeof p, 1, 0);
}

static ember_dataset *numbers(ember_ctx *ctx, int n, int parts, ember_record *recs, int64_t *v)
{
    for (int i = 0; i < n; i++) {
        v[i] = i;
        recs[i] = (ember_record){&v[i], sizeof v[i], &v[i], sizeof v[i], 0};
    }
    return ember_parallelize(ctx, recs, (size_t)n, parts);
}

/* partitions_of counts the partitions of ds; -1 on error */
static int64_t partitions_of(ember_dataset *ds)
{
    int64_t n = -1;
    return ember_count(ember_map_partitions(ds, one_per_partition, NULL, 0), &n) == EMBER_OK ? n
                                                                                             : -1;
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "--exit") == 0) return atoi(argv[2]);
    static ember_record a[100], b[100];
    static int64_t va[100], vb[100];
    ember_dataset *five = numbers(ctx, 100, 5, a, va), *seven = numbers(ctx, 60, 7, b, vb);
    if (argc > 1 && strcmp(argv[1], "--fail-handled") == 0) {
        int64_t n;
        int rc = ember_count(ember_reduce_by_key(five, EMBER_SUM_I64, -1), &n);
        printf("default_parts: the action failed as it should: %s\n", ember_last_error(ctx));
        return rc == EMBER_OK; /* handled: 0 */
    }
    ember_dataset *sums = ember_reduce_by_key(five, EMBER_SUM_I64, 0);
    ember_dataset *joined = ember_join(five, seven, 0);
    ember_dataset *uniq = ember_distinct(five, 0);
    ember_dataset *sorted = ember_sort_by_key(ember_union(five, seven), 1, 0); /* 12 */
    ember_dataset *moved = ember_repartition(ember_range(ctx, 0, 1000, 8), 0);
    int64_t got[5] = {partitions_of(sums), partitions_of(joined), partitions_of(uniq),
                      partitions_of(sorted), partitions_of(moved)};
    int64_t want[5] = {5, 7, 5, 12, 8}, n_sums = -1, n_joined = -1, n_sorted = -1;
    ember_count(sums, &n_sums);
    ember_count(joined, &n_joined);
    ember_count(sorted, &n_sorted);
    printf("default_parts: reduce_by_key %lld, join %lld, distinct %lld, sort_by_key %lld, "
           "repartition %lld; records %lld %lld %lld",
           (long long)got[0], (long long)got[1], (long long)got[2], (long long)got[3],
           (long long)got[4], (long long)n_sums, (long long)n_joined, (long long)n_sorted);
    int ok =
        memcmp(got, want, sizeof got) == 0 && n_sums == 100 && n_joined == 60 && n_sorted == 160;
    printf(" %s\n", ok ? "ok" : "MISMATCH");
    return ok ? 0 : 1;
}
