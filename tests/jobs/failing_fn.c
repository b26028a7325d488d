/* failing_fn.c -- a job whose function fails on partition 3 of 4: the job must fail with a
 * message naming the stage, the partition, the executor and the function's own reason. */
#include <ember/ember.h>

int fail_on_partition_3(ember_task *task, const ember_record *in)
{
    if (ember_task_partition(task) == 3)
        return ember_task_fail(task, "value %lld is cursed", (long long)ember_value_i64(in));
    return 1;
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    int64_t n;
    return ember_count(ember_filter(ember_range(ctx, 0, 40, 4), fail_on_partition_3, NULL, 0), &n)
               ? 1
               : 0;
}
