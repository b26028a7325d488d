/* text_lines.c -- the text file source end to end: the lines of --files (a file, a directory
 * or a glob pattern) cut into at least --partitions partitions, saved unchanged under --out
 * (ember_save_text: one line per record) and counted. Prints
 *   text_lines: N lines in P partitions
 * With --change FILE, FILE is appended to after the files are listed and before they are read:
 * the job must then fail, naming it.
 */
#include <ember/ember.h>
#include <stdio.h>

/* tl_one_per_partition (map_partitions): a record per partition, to count them */
int tl_one_per_partition(ember_task *task, ember_iter *in)
{
    ember_record rec;
    while (ember_next(in, &rec) > 0) {
    }
    ember_record one = {NULL, 0, "", 0, 0};
    return ember_emit(task, &one);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o = ember_opts_new(ctx, argc, argv,
                                   "text_lines.so -- --files PATH --out DIR [--partitions N] "
                                   "[--change FILE]");
    const char *files = ember_opt_str(o, "--files", NULL);
    const char *out = ember_opt_str(o, "--out", NULL);
    int partitions = (int)ember_opt_int(o, "--partitions", 0);
    const char *change = ember_opt_str(o, "--change", NULL);
    if (ember_opts_check(o) != EMBER_OK || !files || !out) return 2;
    ember_dataset *lines = ember_text_file(ctx, files, partitions);
    if (change) {
        FILE *f = fopen(change, "a");
        if (!f || fputs("one more line\n", f) < 0 || fclose(f) != 0) return 3;
    }
    int64_t saved, parts;
    if (ember_save_text(lines, out, &saved) != EMBER_OK ||
        ember_count(ember_map_partitions(lines, tl_one_per_partition, NULL, 0), &parts) !=
            EMBER_OK) {
        fprintf(stderr, "text_lines: %s\n", ember_last_error(ctx));
        return 1;
    }
    printf("text_lines: %lld lines in %lld partitions\n", (long long)saved, (long long)parts);
    return 0;
}
