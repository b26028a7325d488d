/* bounded_actions.c -- ember_take, ember_first, ember_top, ember_reduce and ember_foreach
 * against references computed here from the same records.
 *
 * Input: 1,000 records (key "kNNNN" in a scrambled order, value an int64 in [-500, 499]) over
 * 7 partitions, and the same values as doubles. Checked: take 10 / take more than there is
 * (partition order: the input order), first, first of an empty dataset (EMBER_ERR_NOT_FOUND,
 * no job error), top 5 by int64 value and top 3 by key and by double (sorted here), reduce
 * sum / max / min over int64 and doubles, reduce of an empty dataset, foreach over every
 * record and a foreach whose function fails on one record; reduce_by_key_fn summing decimal
 * strings (values of varying length) per key. Prints one line per check and
 * "bounded_actions: all 15 checks passed", or MISMATCH lines and returns 1.
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N     1000
#define PARTS 7

static char keys[N][8];
static int64_t values[N];
static double doubles[N];
static ember_record recs[N], drecs[N];
static int checks, bad;

static void check(const char *what, int ok)
{
    printf("%s %s\n", ok ? "ok:" : "MISMATCH:", what);
    checks += ok;
    bad += !ok;
}

/* none (filter): keeps nothing */
int ba_none(ember_task *task, const ember_record *in)
{
    (void)task;
    (void)in;
    return 0;
}

/* ba_touch (foreach): fails on the key given as its argument, if any */
int ba_touch(ember_task *task, const ember_record *in)
{
    size_t len;
    const char *poison = ember_task_arg(task, &len);
    if (len && in->key_len == len && memcmp(in->key, poison, len) == 0)
        return ember_task_fail(task, "foreach: poisoned record %.*s", (int)len, poison);
    return EMBER_OK;
}

/* ba_decimal (map): (g<i % 7>, i in decimal): values of varying length */
int ba_decimal(ember_task *task, const ember_record *in)
{
    char key[8], text[24];
    int64_t i = ember_value_i64(in);
    int kl = snprintf(key, sizeof key, "g%d", (int)(i % 7)),
        tl = snprintf(text, sizeof text, "%lld", (long long)i);
    return ember_emit_kv(task, key, (size_t)kl, text, (size_t)tl, i);
}

/* ba_add_decimal (reduce_by_key_fn): the sum of two decimal numbers, in decimal */
int ba_add_decimal(ember_task *task, const void *a, size_t a_len, const void *b, size_t b_len)
{
    char x[24] = "", y[24] = "", sum[24];
    if (a_len >= sizeof x || b_len >= sizeof y) return ember_task_fail(task, "too long");
    memcpy(x, a, a_len);
    memcpy(y, b, b_len);
    int n = snprintf(sum, sizeof sum, "%lld", atoll(x) + atoll(y));
    return ember_combined(task, sum, (size_t)n);
}

static int same(const ember_record *a, const ember_record *b)
{
    return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0 &&
           a->value_len == b->value_len && memcmp(a->value, b->value, a->value_len) == 0;
}

static int by_value_desc(const void *x, const void *y) /* the reference order of top by i64 */
{
    const ember_record *a = x, *b = y;
    int64_t u = ember_value_i64(a), v = ember_value_i64(b);
    if (u != v) return u < v ? 1 : -1;
    return -memcmp(a->key, b->key, 5);
}

static int by_key_desc(const void *x, const void *y)
{
    return -memcmp(((const ember_record *)x)->key, ((const ember_record *)y)->key, 5);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    int64_t sum = 0, max = INT64_MIN, min = INT64_MAX;
    double dsum = 0;
    for (int i = 0; i < N; i++) {
        int k = (i * 389) % N; /* 389 is prime to 1000: a permutation */
        snprintf(keys[i], sizeof keys[i], "k%04d", k);
        values[i] = (int64_t)((i * 7919) % N) - 500;
        doubles[i] = (double)values[i] / 4;
        recs[i] = (ember_record){keys[i], 5, &values[i], 8, i};
        drecs[i] = (ember_record){keys[i], 5, &doubles[i], 8, i};
        sum += values[i];
        dsum += doubles[i];
        if (values[i] > max) max = values[i];
        if (values[i] < min) min = values[i];
    }
    ember_dataset *ds = ember_parallelize(ctx, recs, N, PARTS);
    ember_dataset *dd = ember_parallelize(ctx, drecs, N, PARTS);
    ember_dataset *empty = ember_filter(ds, ba_none, NULL, 0);
    ember_collected c;
    ember_record r;

    int ok = ember_take(ds, 10, &c) == EMBER_OK && c.n == 10;
    for (size_t i = 0; ok && i < 10; i++) ok = same(&c.records[i], &recs[i]);
    check("take 10: the first 10 records in partition order", ok);
    ok = ember_take(ds, 5000, &c) == EMBER_OK && c.n == N;
    for (size_t i = 0; ok && i < N; i++) ok = same(&c.records[i], &recs[i]);
    check("take 5000: all 1000 records", ok);
    check("first", ember_first(ds, &r) == EMBER_OK && same(&r, &recs[0]));
    check("first of an empty dataset: not found",
          ember_first(empty, &r) == EMBER_ERR_NOT_FOUND && ember_last_error(ctx)[0] == '\0');

    ember_record sorted[N];
    memcpy(sorted, recs, sizeof sorted);
    qsort(sorted, N, sizeof *sorted, by_value_desc);
    ok = ember_top(ds, 5, EMBER_BY_I64, &c) == EMBER_OK && c.n == 5;
    for (size_t i = 0; ok && i < 5; i++) ok = same(&c.records[i], &sorted[i]);
    check("top 5 by int64 value", ok);
    qsort(sorted, N, sizeof *sorted, by_key_desc);
    ok = ember_top(ds, 3, EMBER_BY_KEY, &c) == EMBER_OK && c.n == 3;
    for (size_t i = 0; ok && i < 3; i++) ok = same(&c.records[i], &sorted[i]);
    check("top 3 by key", ok);
    ok = ember_top(dd, 3, EMBER_BY_F64, &c) == EMBER_OK && c.n == 3 &&
         ember_value_f64(&c.records[0]) == (double)max / 4 &&
         ember_value_f64(&c.records[0]) >= ember_value_f64(&c.records[1]) &&
         ember_value_f64(&c.records[1]) >= ember_value_f64(&c.records[2]);
    check("top 3 by double value", ok);

    int64_t got = 0;
    double dgot = 0;
    check("reduce sum", ember_reduce(ds, EMBER_SUM_I64, &got) == EMBER_OK && got == sum);
    check("reduce max", ember_reduce(ds, EMBER_MAX_I64, &got) == EMBER_OK && got == max);
    check("reduce min", ember_reduce(ds, EMBER_MIN_I64, &got) == EMBER_OK && got == min);
    check("reduce sum of doubles", ember_reduce(dd, EMBER_SUM_F64, &dgot) == EMBER_OK &&
                                       dgot > dsum - 1e-6 && dgot < dsum + 1e-6);
    check("reduce of an empty dataset: not found",
          ember_reduce(empty, EMBER_SUM_I64, &got) == EMBER_ERR_NOT_FOUND);
    /* reduce_by_key_fn over values of varying length: decimal sums per key of i % 7 */
    ok = ember_collect(
             ember_reduce_by_key_fn(ember_map(ember_range(ctx, 0, N, PARTS), ba_decimal, NULL, 0),
                                    ba_add_decimal, 3),
             &c) == EMBER_OK &&
         c.n == 7;
    for (size_t i = 0; ok && i < c.n; i++) {
        int g = ((const char *)c.records[i].key)[1] - '0'; /* "g0" to "g6" */
        long long want = 0;
        for (int v = g; v < N; v += 7) want += v;
        char text[24];
        int tl = snprintf(text, sizeof text, "%lld", want);
        ok = c.records[i].value_len == (size_t)tl &&
             memcmp(c.records[i].value, text, (size_t)tl) == 0 &&
             c.records[i].timestamp == (N - 1 - (N - 1 - g) % 7); /* the latest record's */
        if (!ok)
            printf("reduce_by_key_fn: key g%d has '%.*s' at %lld, want '%s' at %d\n", g,
                   (int)c.records[i].value_len, (const char *)c.records[i].value,
                   (long long)c.records[i].timestamp, text, N - 1 - (N - 1 - g) % 7);
    }
    check("reduce_by_key_fn: decimal sums per key", ok);
    check("foreach over every record", ember_foreach(ds, ba_touch, NULL, 0) == EMBER_OK);
    check("foreach whose function fails on one record",
          ember_foreach(ds, ba_touch, keys[617], 5) == EMBER_ERR_USER &&
              strstr(ember_last_error(ctx), keys[617]) != NULL);
    if (bad) return 1;
    printf("bounded_actions: all %d checks passed\n", checks);
    return 0;
}
