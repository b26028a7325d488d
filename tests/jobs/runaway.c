/* runaway.c -- user code that will not end its task: for the containment tests.
 *   runaway spin RECORDS PARTS    partition 1's map function loops forever (never returns)
 *   runaway exit RECORDS PARTS    partition 1's map function calls exit(0)
 *   runaway slow RECORDS PARTS MS every record of every partition sleeps MS milliseconds
 *   runaway ok RECORDS PARTS      nothing odd
 * The other partitions of spin and exit are fine. Prints "counted N" if the job succeeds. */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile unsigned long spins;

int runaway_map(ember_task *task, const ember_record *in)
{
    size_t len;
    const char *arg = ember_task_arg(task, &len);
    if (arg[0] == 's' && arg[1] == 'p' && ember_task_partition(task) == 1)
        for (;;) spins++; /* never returns to ember */
    if (arg[0] == 'e' && ember_task_partition(task) == 1) exit(0);
    if (arg[0] == 's' && arg[1] == 'l') {
        long ms = atol(arg + 2);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return ember_emit(task, in);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "ok";
    long records = argc > 2 ? atol(argv[2]) : 40;
    int parts = argc > 3 ? atoi(argv[3]) : 4;
    char arg[32]; /* "sp", "ex", "sl<ms>" or "ok" */
    int len = snprintf(arg, sizeof arg, "%.2s%d", mode, argc > 4 ? atoi(argv[4]) : 0);
    int64_t n;
    if (ember_count(
            ember_map(ember_range(ctx, 0, records, parts), runaway_map, arg, (size_t)len + 1),
            &n) != EMBER_OK)
        return 1;
    printf("counted %lld\n", (long long)n);
    return 0;
}
