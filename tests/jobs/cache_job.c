/* cache_job.c -- test job for ember_persist: a Kafka topic of decimal numbers is parsed and
 * persisted, then used by two actions (a count, then a sum per key); with --unpersist, a
 * third action runs after ember_unpersist. Between the two actions it can wait for a file
 * (--wait FILE), so that a test can change the cluster, and persist and count a second
 * dataset of the even numbers (--other), whose partitions then compete for memory with the
 * first's.
 * Arguments: TOPIC memory|disk [--other] [--wait FILE] [--unpersist]. */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* cj_parse (map): "123" -> (key "k<123 % 10>", value 123, with 100 bytes of padding) */
int cj_parse(ember_task *task, const ember_record *in)
{
    char text[32], key[8];
    size_t n = in->value_len < sizeof text - 1 ? in->value_len : sizeof text - 1;
    memcpy(text, in->value, n);
    text[n] = '\0';
    int64_t v = atoll(text);
    uint8_t value[108] = {0};
    memcpy(value, &v, 8);
    int k = snprintf(key, sizeof key, "k%d", (int)(v % 10));
    return ember_emit_kv(task, key, (size_t)k, value, sizeof value, in->timestamp);
}

/* cj_even (filter): keeps even numbers */
int cj_even(ember_task *task, const ember_record *in)
{
    (void)task;
    return ember_value_i64(in) % 2 == 0;
}

/* cj_value (map): the 8-byte number out of the padded value */
int cj_value(ember_task *task, const ember_record *in)
{
    return ember_emit_i64(task, in->key, in->key_len, ember_value_i64(in), in->timestamp);
}

static int sums(ember_ctx *ctx, ember_dataset *numbers, int64_t *total, int64_t *keys)
{
    ember_collected c;
    if (ember_collect(ember_reduce_by_key(ember_map(numbers, cj_value, NULL, 0), EMBER_SUM_I64, 3),
                      &c) != EMBER_OK)
        return 1;
    *total = 0;
    for (size_t i = 0; i < c.n; i++) *total += ember_value_i64(&c.records[i]);
    *keys = (int64_t)c.n;
    (void)ctx;
    return 0;
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: cache_job TOPIC memory|disk [--wait FILE] [--unpersist] [--other] "
                        "[--chained]\n");
        return 2;
    }
    const char *wait = NULL;
    int unpersist = 0, other = 0, chained = 0;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--other") == 0) other = 1;
        if (strcmp(argv[i], "--chained") == 0) chained = 1;
        if (strcmp(argv[i], "--wait") == 0 && i + 1 < argc) wait = argv[++i];
        if (strcmp(argv[i], "--unpersist") == 0) unpersist = 1;
    }
    ember_storage level = strcmp(argv[2], "disk") == 0 ? EMBER_MEMORY_AND_DISK : EMBER_MEMORY_ONLY;
    ember_dataset *numbers =
        ember_persist(ember_map(ember_kafka_topic(ctx, argv[1]), cj_parse, NULL, 0), level);
    int64_t count, total, keys, total2, keys2;
    if (ember_count(numbers, &count) != EMBER_OK) goto failed;
    if (other) { /* the even numbers, as another persisted dataset half as large */
        int64_t n;
        ember_dataset *evens = ember_persist(
            ember_filter(ember_map(ember_kafka_topic(ctx, argv[1]), cj_parse, NULL, 0), cj_even,
                         NULL, 0),
            level);
        if (ember_count(evens, &n) != EMBER_OK) goto failed;
        if (n != count / 2) {
            printf("cache_job: MISMATCH: %lld even numbers\n", (long long)n);
            return 1;
        }
    }
    if (chained) { /* a persisted dataset made from the cached one, counted twice: the first
                      count reads `numbers` from the cache, the second reads `evens` */
        ember_dataset *evens = ember_persist(ember_filter(numbers, cj_even, NULL, 0), level);
        int64_t n1, n2;
        if (ember_count(evens, &n1) != EMBER_OK || ember_count(evens, &n2) != EMBER_OK) goto failed;
        if (n1 != count / 2 || n2 != n1) {
            printf("cache_job: MISMATCH: %lld then %lld even numbers\n", (long long)n1,
                   (long long)n2);
            return 1;
        }
        printf("cache_job: chained: %lld even numbers, twice\n", (long long)n1);
    }
    printf("cache_job: first action: %lld records\n", (long long)count);
    fflush(stdout);
    for (int i = 0; wait && access(wait, F_OK) != 0 && i < 6000; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (sums(ctx, numbers, &total, &keys)) goto failed;
    printf("cache_job: second action: %lld keys, total %lld\n", (long long)keys, (long long)total);
    if (unpersist) {
        if (ember_unpersist(numbers) != EMBER_OK || sums(ctx, numbers, &total2, &keys2))
            goto failed;
        if (total2 != total || keys2 != keys) {
            printf("cache_job: MISMATCH after unpersist: total %lld\n", (long long)total2);
            return 1;
        }
        printf("cache_job: after unpersist: %lld keys, total %lld\n", (long long)keys2,
               (long long)total2);
    }
    return 0;
failed:
    printf("cache_job: %s\n", ember_last_error(ctx));
    return 1;
}
