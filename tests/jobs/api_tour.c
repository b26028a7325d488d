/* api_tour.c -- every source, narrow operation and action of job API v1, with output that a
 * test compares byte for byte (tests/integration/api_tour.expected).
 * Arguments: --out DIR (save_text target), --topic T (a Kafka topic holding "a".."j" values). */
#include <ember/ember.h>
#include <stdio.h>
#include <string.h>

/* upper (map): upper-cases the value */
int upper(ember_task *task, const ember_record *in)
{
    char buf[256];
    size_t n = in->value_len < sizeof buf ? in->value_len : sizeof buf;
    for (size_t i = 0; i < n; i++) {
        char c = ((const char *)in->value)[i];
        buf[i] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
    }
    return ember_emit_kv(task, in->key, in->key_len, buf, n, in->timestamp);
}

/* split_words (flat_map): one record per space-separated word, keyed by the line's key */
int split_words(ember_task *task, const ember_record *in)
{
    const char *s = in->value, *end = s + in->value_len;
    while (s < end) {
        const char *w = s;
        while (s < end && *s != ' ') s++;
        if (s > w) {
            int rc = ember_emit_kv(task, in->key, in->key_len, w, (size_t)(s - w), in->timestamp);
            if (rc != EMBER_OK) return rc;
        }
        s++;
    }
    return EMBER_OK;
}

/* longer_than (filter): keeps values longer than the byte given as argument */
int longer_than(ember_task *task, const ember_record *in)
{
    size_t len;
    const unsigned char *min = ember_task_arg(task, &len);
    return len == 1 && in->value_len > *min;
}

/* even (filter) on ember_range values */
int even(ember_task *task, const ember_record *in) { return ember_value_i64(in) % 2 == 0; }

/* summarize (map_partitions): one record per partition: "p<i>:<count>:<sum of lengths>" */
int summarize(ember_task *task, ember_iter *in)
{
    ember_record rec;
    long count = 0, bytes = 0;
    while (ember_next(in, &rec)) {
        count++;
        bytes += (long)rec.value_len;
    }
    char out[64];
    int n = snprintf(out, sizeof out, "p%d:%ld:%ld", ember_task_partition(task), count, bytes);
    return ember_emit_kv(task, NULL, 0, out, (size_t)n, 0);
}

static void print_collected(const char *what, const ember_collected *c)
{
    printf("%s:", what);
    for (size_t i = 0; i < c->n; i++)
        printf(" %.*s=%.*s", (int)c->records[i].key_len, (const char *)c->records[i].key,
               (int)c->records[i].value_len, (const char *)c->records[i].value);
    printf("\n");
}

#define CHECK(call)                                                                                \
    do {                                                                                           \
        if ((call) != EMBER_OK) {                                                                  \
            fprintf(stderr, "api_tour: %s\n", ember_last_error(ctx));                              \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o = ember_opts_new(ctx, argc, argv, "api_tour.so -- [--out DIR] [--topic T]");
    const char *out = ember_opt_str(o, "--out", "tour-out"),
               *topic = ember_opt_str(o, "--topic", NULL);
    if (ember_opts_check(o) != EMBER_OK) return 2;
    ember_record lines[] = {
        {"l1", 2, "the quick brown fox", 19, 1},
        {"l2", 2, "jumps over", 10, 2},
        {"l3", 2, "", 0, 3},
        {"l4", 2, "the lazy dog", 12, 4},
        {"l5", 2, "a b c", 5, 5},
    };
    ember_dataset *text = ember_parallelize(ctx, lines, 5, 3);
    ember_collected c;
    int64_t n;
    unsigned char three = 3;

    CHECK(ember_collect(ember_map(text, upper, NULL, 0), &c));
    print_collected("upper", &c);
    ember_dataset *words = ember_flat_map(text, split_words, NULL, 0);
    CHECK(ember_collect(ember_filter(words, longer_than, &three, 1), &c));
    print_collected("long words", &c);
    CHECK(ember_count(words, &n));
    printf("words: %lld\n", (long long)n);
    CHECK(ember_collect(ember_map_partitions(words, summarize, NULL, 0), &c));
    print_collected("partitions", &c);
    CHECK(ember_count(ember_filter(ember_range(ctx, 0, 1000, 7), even, NULL, 0), &n));
    printf("even numbers below 1000: %lld\n", (long long)n);
    CHECK(ember_count(ember_range(ctx, 5, 5, 2), &n));
    printf("empty range: %lld\n", (long long)n);
    CHECK(ember_save_text(ember_map(words, upper, NULL, 0), out, &n));
    printf("saved words: %lld\n", (long long)n);
    if (topic) {
        CHECK(ember_count(ember_kafka_topic(ctx, topic), &n));
        printf("kafka records: %lld\n", (long long)n);
        ember_kafka_range first_two = {0, 0, 2};
        CHECK(ember_collect(
            ember_map(ember_kafka_ranges(ctx, topic, &first_two, 1), upper, NULL, 0), &c));
        print_collected("kafka partition 0 [0,2)", &c);
    }
    return 0;
}
