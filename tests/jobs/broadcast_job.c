/* broadcast_job.c -- broadcast values: a 3 MB lookup table (more than one message part) made
 * in the submitter and read by every task of two actions, and an empty one.
 *
 * The table maps ids 0..N-1 to an 8-byte weight; records 0..9999 over 8 partitions are mapped
 * to (id, weight of id % N) through the table, and the job sums the weights, which must equal
 * the sum computed here; a second action (a count of the ids whose weight is odd) reads the
 * same value again. An empty value reads back as 0 bytes. Prints
 * "broadcast_job: 2 actions over a 3000000-byte value ok" or a MISMATCH line (exit 1).
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_WEIGHTS 375000 /* x 8 bytes = 3,000,000 */
#define RECORDS   10000

static int64_t weight(int64_t i) { return (i * 7919) % 1000 - 3; }

/* bj_weigh (map): (i, weight of i % N_WEIGHTS) from the broadcast table in its arg */
int bj_weigh(ember_task *task, const ember_record *in)
{
    size_t arg_len, len;
    const ember_broadcast *b = ember_task_arg(task, &arg_len);
    const void *table;
    if (arg_len != sizeof *b || ember_broadcast_value(task, b, &table, &len) != EMBER_OK)
        return EMBER_ERR_USER;
    int64_t i = ember_value_i64(in), w;
    memcpy(&w, (const char *)table + (size_t)(i % N_WEIGHTS) * 8, 8);
    return ember_emit_i64(task, &i, sizeof i, w, 0);
}

/* bj_odd (filter): the weight is odd */
int bj_odd(ember_task *task, const ember_record *in)
{
    (void)task;
    return ember_value_i64(in) % 2 != 0;
}

/* bj_empty (filter): keeps every record, after reading the empty value (0 bytes) */
int bj_empty(ember_task *task, const ember_record *in)
{
    (void)in;
    size_t arg_len, len = 1;
    const ember_broadcast *b = ember_task_arg(task, &arg_len);
    const void *data;
    if (ember_broadcast_value(task, b, &data, &len) != EMBER_OK) return EMBER_ERR_USER;
    return len == 0 ? 1 : ember_task_fail(task, "the empty value has %zu bytes", len);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    int64_t *table = malloc(sizeof *table * N_WEIGHTS);
    if (!table) return 1;
    for (int64_t i = 0; i < N_WEIGHTS; i++) table[i] = weight(i);
    int64_t want_sum = 0, want_odd = 0;
    for (int64_t i = 0; i < RECORDS; i++) {
        want_sum += weight(i % N_WEIGHTS);
        want_odd += weight(i % N_WEIGHTS) % 2 != 0;
    }
    ember_broadcast b, none;
    int rc = ember_broadcast_new(ctx, table, sizeof *table * N_WEIGHTS, &b);
    free(table); /* the driver has its copy */
    if (rc == EMBER_OK) rc = ember_broadcast_new(ctx, "", 0, &none);
    if (rc != EMBER_OK) {
        printf("broadcast_job MISMATCH: %s\n", ember_last_error(ctx));
        return 1;
    }
    ember_dataset *weighted = ember_map(ember_range(ctx, 0, RECORDS, 8), bj_weigh, &b, sizeof b);
    int64_t sum = 0, odd = -1, all = -1;
    rc = ember_reduce(weighted, EMBER_SUM_I64, &sum);
    if (rc == EMBER_OK) rc = ember_count(ember_filter(weighted, bj_odd, NULL, 0), &odd);
    if (rc == EMBER_OK)
        rc = ember_count(ember_filter(ember_range(ctx, 0, 100, 4), bj_empty, &none, sizeof none),
                         &all);
    if (rc != EMBER_OK || sum != want_sum || odd != want_odd || all != 100) {
        printf("broadcast_job MISMATCH: sum %lld (want %lld), odd %lld (want %lld), empty %lld: "
               "%s\n",
               (long long)sum, (long long)want_sum, (long long)odd, (long long)want_odd,
               (long long)all, ember_last_error(ctx));
        return 1;
    }
    printf("broadcast_job: 2 actions over a %d-byte value ok\n", N_WEIGHTS * 8);
    return 0;
}
