/* segfault.c -- a job whose map function kills its executor process on every record of
 * partition 1 (the other partitions are fine): with "segv" it writes through a null pointer
 * (SIGSEGV), with "abort" it calls abort() (SIGABRT), with "ok" it crashes nothing. The job
 * must fail after --max-attempts executor losses with a message naming the signal.
 * The other partitions pause PAUSE_MS per record (default 0), so that they can be running
 * beside the crash. Arguments: segv|abort|ok records partitions [pause_ms]. Prints
 * "counted N" if the job succeeds. */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int *volatile nowhere; /* NULL, and the compiler cannot know it */

/* crash_on_partition_1 (map): the crash is a real fault, not a report: UBSan (sanitizer
 * builds) would otherwise catch the null store before the processor does. */
__attribute__((no_sanitize("undefined"))) int crash_on_partition_1(ember_task *task,
                                                                   const ember_record *in)
{
    size_t len;
    const char *mode = ember_task_arg(task, &len);
    if (ember_task_partition(task) == 1) {
        if (mode[0] == 's') *nowhere = 1;
        if (mode[0] == 'a') abort();
    } else if (len > 1) { /* the pause in ms follows the mode letter */
        struct timespec ts = {0, atoi(mode + 1) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return ember_emit(task, in);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "segv";
    long records = argc > 2 ? atol(argv[2]) : 40;
    int partitions = argc > 3 ? atoi(argv[3]) : 4;
    char arg[16]; /* the mode's letter, then the pause in ms */
    int len = snprintf(arg, sizeof arg, "%c%d", mode[0], argc > 4 ? atoi(argv[4]) : 0);
    int64_t n;
    if (ember_count(ember_map(ember_range(ctx, 0, records, partitions), crash_on_partition_1, arg,
                              (size_t)len + 1),
                    &n) != EMBER_OK)
        return 1;
    printf("counted %lld\n", (long long)n);
    return 0;
}
