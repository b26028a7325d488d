/* slow_join.c -- joins two slowly computed ranges, so that a test can watch the two
 * independent map stages of the join run at the same time. Left: keys 0..n-1, right: keys
 * n/2..n/2+n-1, each side in `partitions` partitions with a pause per record; prints the
 * number of joined records (n - n/2). Arguments: n partitions pause_ms. */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* sj_slow_key (map): pauses the argument's milliseconds, then keys the record by its value */
int sj_slow_key(ember_task *task, const ember_record *in)
{
    size_t len;
    const int *ms = ember_task_arg(task, &len);
    struct timespec ts = {0, (len == sizeof *ms ? *ms : 0) * 1000000L};
    nanosleep(&ts, NULL);
    char key[24];
    int n = snprintf(key, sizeof key, "%lld", (long long)ember_value_i64(in));
    return ember_emit_kv(task, key, (size_t)n, in->value, in->value_len, 0);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100;
    int partitions = argc > 2 ? atoi(argv[2]) : 2, pause_ms = argc > 3 ? atoi(argv[3]) : 5;
    ember_dataset *left =
        ember_map(ember_range(ctx, 0, n, partitions), sj_slow_key, &pause_ms, sizeof pause_ms);
    ember_dataset *right = ember_map(ember_range(ctx, n / 2, n / 2 + n, partitions), sj_slow_key,
                                     &pause_ms, sizeof pause_ms);
    int64_t joined;
    if (ember_count(ember_join(left, right, 3), &joined) != EMBER_OK) {
        fprintf(stderr, "slow_join: %s\n", ember_last_error(ctx));
        return 1;
    }
    printf("joined %lld\n", (long long)joined);
    return 0;
}
