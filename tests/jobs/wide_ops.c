/* wide_ops.c -- every reducer of reduce_by_key, count_by_key, and two shuffles in a row,
 * each checked against a reference computed here in plain C. Keys are skewed (key k appears
 * about 1/k as often as key 1), some partitions are empty, and some runs have more reducers
 * than keys. Prints one line per check and "wide_ops: all N checks passed"; exits 1 on the
 * first difference. Argument: --partitions "1 3 50" (reduce partition counts to try). */
#include <ember/ember.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_RECORDS 20000
#define N_KEYS    40

static char keys[N_KEYS][8];
static ember_record records[N_RECORDS];
static uint8_t values[N_RECORDS][8];

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* make_records: skewed keys, int64 values in [-1000, 1000], records at partition ends empty */
static void make_records(void)
{
    uint64_t s = 42;
    for (int k = 0; k < N_KEYS; k++) snprintf(keys[k], sizeof keys[k], "k%02d", k);
    for (int i = 0; i < N_RECORDS; i++) {
        int k = 0;
        while (k + 1 < N_KEYS && next_random(&s) % 4 != 0) k++; /* geometric: k0 most often */
        int64_t v = (int64_t)(next_random(&s) % 2001) - 1000;
        memcpy(values[i], &v, 8);
        records[i] = (ember_record){keys[k], strlen(keys[k]), values[i], 8, i};
    }
}

/* to_f64 (map): the int64 value as a double, for the _F64 reducers */
int to_f64(ember_task *task, const ember_record *in)
{
    return ember_emit_f64(task, in->key, in->key_len, (double)ember_value_i64(in) / 4.0,
                          in->timestamp);
}

/* count_as_key (map): (word, n) -> ("n", 1): how many keys share each count */
int count_as_key(ember_task *task, const ember_record *in)
{
    char k[32];
    int n = snprintf(k, sizeof k, "%lld", (long long)ember_value_i64(in));
    return ember_emit_i64(task, k, (size_t)n, 1, 0);
}

/* key_index parses "kNN" (keys are not NUL-terminated: read exactly three bytes) */
static int key_index(const ember_record *r)
{
    const char *k = r->key;
    if (r->key_len != 3 || k[0] != 'k' || k[1] < '0' || k[1] > '9' || k[2] < '0' || k[2] > '9')
        return -1;
    return (k[1] - '0') * 10 + (k[2] - '0');
}

static int checks;

/* check compares collected (key, value) records with expected values per key index. */
static int check(const char *what, const ember_collected *c, const double *want, const int *present,
                 int as_f64)
{
    int seen[N_KEYS] = {0}, expected = 0;
    for (int k = 0; k < N_KEYS; k++) expected += present[k] != 0;
    for (size_t i = 0; i < c->n; i++) {
        int k = key_index(&c->records[i]);
        double got =
            as_f64 ? ember_value_f64(&c->records[i]) : (double)ember_value_i64(&c->records[i]);
        if (k < 0 || !present[k] || seen[k]++ || fabs(got - want[k]) > 1e-6) {
            printf("%s: MISMATCH at key %.*s: got %g, want %g\n", what, (int)c->records[i].key_len,
                   (const char *)c->records[i].key, got, k >= 0 ? want[k] : 0);
            return 1;
        }
    }
    if ((int)c->n != expected) {
        printf("%s: MISMATCH: %zu keys, want %d\n", what, c->n, expected);
        return 1;
    }
    printf("%s: %zu keys ok\n", what, c->n);
    checks++;
    return 0;
}

static int run_reducers(ember_ctx *ctx, ember_dataset *data, int parts)
{
    static const ember_reducer reducers[] = {EMBER_SUM_I64, EMBER_MIN_I64, EMBER_MAX_I64,
                                             EMBER_SUM_F64, EMBER_MIN_F64, EMBER_MAX_F64};
    static const char *const names[] = {"sum_i64", "min_i64", "max_i64",
                                        "sum_f64", "min_f64", "max_f64"};
    ember_dataset *as_f64 = ember_map(data, to_f64, NULL, 0);
    for (int r = 0; r < 6; r++) {
        double want[N_KEYS];
        int present[N_KEYS] = {0};
        for (int i = 0; i < N_RECORDS; i++) {
            int k = key_index(&records[i]);
            double v = (double)ember_value_i64(&records[i]) / (r >= 3 ? 4.0 : 1.0);
            if (!present[k]++)
                want[k] = v;
            else if (r == 0 || r == 3)
                want[k] += v;
            else if (r == 1 || r == 4)
                want[k] = v < want[k] ? v : want[k];
            else
                want[k] = v > want[k] ? v : want[k];
        }
        ember_collected c;
        char what[64];
        snprintf(what, sizeof what, "%s over %d partitions", names[r], parts);
        if (ember_collect(ember_reduce_by_key(r >= 3 ? as_f64 : data, reducers[r], parts), &c) !=
            EMBER_OK) {
            printf("%s: %s\n", what, ember_last_error(ctx));
            return 1;
        }
        if (check(what, &c, want, present, r >= 3)) return 1;
    }
    return 0;
}

static int run_counts(ember_ctx *ctx, ember_dataset *data, int parts)
{
    double want[N_KEYS] = {0};
    int present[N_KEYS] = {0};
    for (int i = 0; i < N_RECORDS; i++) {
        int k = key_index(&records[i]);
        present[k] = 1;
        want[k]++;
    }
    ember_collected c;
    char what[64];
    snprintf(what, sizeof what, "count_by_key over %d partitions", parts);
    if (ember_collect(ember_count_by_key(data, parts), &c) != EMBER_OK) {
        printf("%s: %s\n", what, ember_last_error(ctx));
        return 1;
    }
    if (check(what, &c, want, present, 0)) return 1;
    /* two shuffles: how many keys have each count */
    long total = 0;
    if (ember_collect(ember_count_by_key(
                          ember_map(ember_count_by_key(data, parts), count_as_key, NULL, 0), parts),
                      &c) != EMBER_OK) {
        printf("two shuffles: %s\n", ember_last_error(ctx));
        return 1;
    }
    for (size_t i = 0; i < c.n; i++) {
        char digits[24] = "";
        memcpy(digits, c.records[i].key, c.records[i].key_len < 23 ? c.records[i].key_len : 23);
        long count = atol(digits), keys_with_it = (long)ember_value_i64(&c.records[i]), expect = 0;
        for (int k = 0; k < N_KEYS; k++) expect += present[k] && (long)want[k] == count;
        if (keys_with_it != expect) {
            printf("two shuffles over %d partitions: MISMATCH for count %ld\n", parts, count);
            return 1;
        }
        total += keys_with_it;
    }
    int distinct = 0;
    for (int k = 0; k < N_KEYS; k++) distinct += present[k];
    if (total != distinct) {
        printf("two shuffles over %d partitions: MISMATCH: %ld keys, want %d\n", parts, total,
               distinct);
        return 1;
    }
    printf("two shuffles over %d partitions: %zu counts ok\n", parts, c.n);
    checks++;
    return 0;
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    const char *list = argc > 2 && strcmp(argv[1], "--partitions") == 0 ? argv[2] : "1 3 50";
    make_records();
    /* 7 input partitions; empty partitions are covered by the empty range at the end */
    ember_dataset *data = ember_parallelize(ctx, records, N_RECORDS, 7);
    for (const char *p = list; *p;) {
        char *end;
        long parts = strtol(p, &end, 10);
        if (end == p) break;
        if (run_reducers(ctx, data, (int)parts) || run_counts(ctx, data, (int)parts)) return 1;
        p = end;
    }
    int64_t n;
    if (ember_count(ember_count_by_key(ember_range(ctx, 0, 0, 3), 4), &n) != EMBER_OK || n != 0) {
        printf("empty input: %s\n", ember_last_error(ctx));
        return 1;
    }
    printf("empty input: 0 keys ok\nwide_ops: all %d checks passed\n", ++checks);
    return 0;
}
