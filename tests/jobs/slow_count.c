/* slow_count.c -- counts a range slowly (a pause per record), so that tests can kill or
 * stop an executor while its tasks are running. Arguments: records partitions pause_ms. */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* pause_then_keep (filter): sleeps the number of milliseconds given as argument, keeps all */
int pause_then_keep(ember_task *task, const ember_record *in)
{
    size_t len;
    const int *ms = ember_task_arg(task, &len);
    struct timespec ts = {0, (len == sizeof *ms ? *ms : 0) * 1000000L};
    nanosleep(&ts, NULL);
    return 1;
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    long records = argc > 1 ? atol(argv[1]) : 100;
    int partitions = argc > 2 ? atoi(argv[2]) : 8;
    int pause_ms = argc > 3 ? atoi(argv[3]) : 10;
    int64_t n;
    if (ember_count(ember_filter(ember_range(ctx, 0, records, partitions), pause_then_keep,
                                 &pause_ms, sizeof pause_ms),
                    &n) != EMBER_OK)
        return 1;
    printf("counted %lld\n", (long long)n);
    return 0;
}
