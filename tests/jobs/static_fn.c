/* static_fn.c -- a job whose map function is static, so executors could not find it by name:
 * ember-submit must fail when the dataset is built, naming the problem. */
#include <ember/ember.h>
#include <stdio.h>

static int hidden_map(ember_task *task, const ember_record *in) { return ember_emit(task, in); }

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_record one = {"k", 1, "v", 1, 0};
    int64_t n;
    int rc = ember_count(ember_map(ember_parallelize(ctx, &one, 1, 1), hidden_map, NULL, 0), &n);
    printf("count returned %s\n", ember_err_name(rc));
    return rc == EMBER_OK ? 0 : 1;
}
