/* big_input.c -- a job whose parallelized input is large (RECORDS x 64-byte values, 100,000 by
 * default: about 7 MiB), so that its submission travels in parts; it counts the records and
 * collects the value bytes' sum per partition, checked against the sum computed here.
 * Prints "big_input: N records, sum S ok" or a MISMATCH line (exit 1). Argument: RECORDS. */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_LEN 64
#define PARTS     5

/* value_sum (map): one record whose value is the 8-byte sum of the input value's bytes */
int value_sum(ember_task *task, const ember_record *in)
{
    int64_t sum = 0;
    for (size_t i = 0; i < in->value_len; i++) sum += ((const uint8_t *)in->value)[i];
    ember_record out = {in->key, in->key_len, &sum, sizeof sum, in->timestamp};
    return ember_emit(task, &out);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    ember_record *records = calloc((size_t)n, sizeof *records);
    uint8_t *values = malloc((size_t)n * VALUE_LEN);
    if (!records || !values) return 1;
    int64_t want = 0;
    for (long i = 0; i < n; i++) {
        for (int j = 0; j < VALUE_LEN; j++) {
            values[i * VALUE_LEN + j] = (uint8_t)(i * 31 + j * 7);
            want += values[i * VALUE_LEN + j];
        }
        records[i] = (ember_record){"k", 1, values + i * VALUE_LEN, VALUE_LEN, i};
    }
    ember_dataset *data = ember_parallelize(ctx, records, (size_t)n, PARTS);
    ember_collected sums;
    int64_t count;
    if (ember_count(data, &count) != EMBER_OK ||
        ember_collect(ember_map(data, value_sum, NULL, 0), &sums) != EMBER_OK) {
        printf("big_input: %s\n", ember_last_error(ctx));
        return 1;
    }
    int64_t got = 0;
    for (size_t i = 0; i < sums.n; i++) got += ember_value_i64(&sums.records[i]);
    free(records);
    free(values);
    if (count != n || got != want) {
        printf("big_input: MISMATCH: %lld records, sum %lld; want %ld, %lld\n", (long long)count,
               (long long)got, n, (long long)want);
        return 1;
    }
    printf("big_input: %ld records, sum %lld ok\n", n, (long long)want);
    return 0;
}
