/* wide_ops2.c -- every wide operation beyond reduce_by_key (aggregate_by_key, group_by_key,
 * cogroup, join, left_outer_join, distinct, partition_by, repartition, sort_by_key, union),
 * each checked exactly against a reference computed here in plain C from the documented
 * semantics of include/ember/ember.h.
 *
 * Inputs: keys are skewed (key k appears about (3/4)^k as often as key 0, so some of the 40
 * keys never appear), every source is parallelized into 10 partitions of which a filter
 * empties partitions 2 and 5, the right side of joins is 30 records in 45 partitions (most of
 * them empty) with keys the left side lacks, and the partition counts tried include more
 * reducers than keys. Orders the API promises are compared exactly: within a key for groups
 * and joins (input order = the order of the records arrays, since parallelize makes
 * contiguous slices and a reducer reads map partitions in order), the whole collected
 * sequence for partition_by, repartition, sort_by_key and union.
 *
 * Prints one line per check and "wide_ops2: all N checks passed" (N = 17 per partition count
 * + 2); exits 1 on the first difference, with a MISMATCH line.
 * Argument: --partitions "1 3 50" (reduce partition counts to try).
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL /* the documented partitioning hash, header-only: no library to link */
#include <xxhash.h>

#define HASH_SEED 0x656d626572ULL /* "ember" */
#define IN_PARTS  10              /* input partitions of every source; 2 and 5 emptied */
#define DROP_A    2
#define DROP_B    5
#define N_RECORDS 20000
#define N_KEYS    40
#define N_SPARSE  30
#define N_SORT    20000
#define N_STR     5000
#define N_DUP     6000
#define N_TABLE   (N_KEYS + 2) /* k00..k39, then z0 and z1: keys only the right side has */

/* ---- little-endian helpers (run anywhere) ----------------------------------------------- */

static void put_i64(uint8_t *p, int64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)((uint64_t)v >> (8 * i));
}

static int64_t get_i64(const void *q)
{
    const uint8_t *p = q;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return (int64_t)v;
}

/* bytes_cmp: bytewise, a proper prefix first (sort_by_key's documented order); NULL-safe */
static int bytes_cmp(const void *a, size_t a_len, const void *b, size_t b_len)
{
    size_t n = a_len < b_len ? a_len : b_len;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0 || a_len == b_len) return c;
    return a_len < b_len ? -1 : 1;
}

/* parse_k: "kNN" -> NN, else -1 (keys are not NUL-terminated) */
static int parse_k(const void *key, size_t len)
{
    const char *k = key;
    if (len != 3 || k[0] != 'k' || k[1] < '0' || k[1] > '9' || k[2] < '0' || k[2] > '9') return -1;
    return (k[1] - '0') * 10 + (k[2] - '0');
}

/* ---- user functions (run on executors: they may not use the submitter's tables) -------- */

/* keep_partition (filter): empties input partitions DROP_A and DROP_B */
int keep_partition(ember_task *task, const ember_record *in)
{
    int p = ember_task_partition(task);
    return p != DROP_A && p != DROP_B;
}

/* acc: aggregate_by_key's accumulator, 24 bytes */
typedef struct acc {
    int64_t sum, count, min;
} acc;

/* agg_seq folds one int64 record into the accumulator */
int agg_seq(ember_task *task, void *accp, const ember_record *in)
{
    if (in->value_len != 8)
        return ember_task_fail(task, "agg_seq: value of %zu bytes", in->value_len);
    acc a;
    memcpy(&a, accp, sizeof a);
    int64_t v = ember_value_i64(in);
    a.sum += v;
    a.count++;
    if (v < a.min) a.min = v;
    memcpy(accp, &a, sizeof a);
    return EMBER_OK;
}

/* agg_comb merges two accumulators of one key */
int agg_comb(ember_task *task, void *accp, const void *otherp)
{
    acc a, b;
    memcpy(&a, accp, sizeof a);
    memcpy(&b, otherp, sizeof b);
    a.sum += b.sum;
    a.count += b.count;
    if (b.min < a.min) a.min = b.min;
    memcpy(accp, &a, sizeof a);
    return EMBER_OK;
}

/* tag_partition (map): (key, v) -> (key, v ++ int64 partition of this task) */
int tag_partition(ember_task *task, const ember_record *in)
{
    uint8_t v[16];
    if (in->value_len != 8)
        return ember_task_fail(task, "tag_partition: value of %zu bytes", in->value_len);
    memcpy(v, in->value, 8);
    put_i64(v + 8, ember_task_partition(task));
    return ember_emit_kv(task, in->key, in->key_len, v, sizeof v, in->timestamp);
}

/* count_partition (map_partitions): one record (int64 partition, int64 record count) */
int count_partition(ember_task *task, ember_iter *in)
{
    ember_record rec;
    int64_t n = 0;
    uint8_t key[8];
    while (ember_next(in, &rec)) n++;
    put_i64(key, ember_task_partition(task));
    return ember_emit_i64(task, key, sizeof key, n, 0);
}

/* sum_to_bucket (map): ("kNN", sum) -> ("gD", NN) with D = sum mod 5 */
int sum_to_bucket(ember_task *task, const ember_record *in)
{
    int k = parse_k(in->key, in->key_len);
    if (k < 0 || in->value_len != 8) return ember_task_fail(task, "sum_to_bucket: bad record");
    int64_t d = (ember_value_i64(in) % 5 + 5) % 5;
    char key[2] = {'g', (char)('0' + d)};
    return ember_emit_i64(task, key, sizeof key, k, in->timestamp);
}

/* group_summary (map): grouped ("gD", [NN...]) -> (key_i64(count) ++ "gD", sum of NN) */
int group_summary(ember_task *task, const ember_record *in)
{
    ember_group_iter it;
    ember_record v;
    int n = ember_group_open(in, &it);
    if (n < 0 || in->key_len != 2) return ember_task_fail(task, "group_summary: not a group");
    int64_t sum = 0;
    while (ember_group_next(&it, &v, NULL)) {
        if (v.value_len != 8) return ember_task_fail(task, "group_summary: bad value");
        sum += ember_value_i64(&v);
    }
    uint8_t key[10];
    ember_key_i64(n, key);
    memcpy(key + 8, in->key, 2);
    return ember_emit_i64(task, key, sizeof key, sum, in->timestamp);
}

/* ---- inputs (built in the submitter) ---------------------------------------------------- */

static char names[N_TABLE][4];
static ember_record records[N_RECORDS], sparse[N_SPARSE], sorts[N_SORT], strs[N_STR], dups[N_DUP];
static uint8_t rec_val[N_RECORDS][8], sparse_val[N_SPARSE][8], sort_key[N_SORT][8],
    sort_val[N_SORT][8], str_key[N_STR][4], str_val[N_STR][8], dup_val[N_DUP][8];
static int64_t sort_num[N_SORT];

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int geometric(uint64_t *s, int n)
{
    int k = 0;
    while (k + 1 < n && next_random(s) % 4 != 0) k++;
    return k;
}

/* kept: whether record i of n survives keep_partition (parallelize's contiguous slices) */
static int kept(size_t i, size_t n)
{
    for (size_t p = 0; p < IN_PARTS; p++)
        if (i >= n * p / IN_PARTS && i < n * (p + 1) / IN_PARTS) return p != DROP_A && p != DROP_B;
    return 0;
}

/* slice_of: the input partition of record i of n */
static int slice_of(size_t i, size_t n)
{
    for (size_t p = 0; p < IN_PARTS; p++)
        if (i < n * (p + 1) / IN_PARTS) return (int)p;
    return -1;
}

static void make_inputs(void)
{
    uint64_t s = 42;
    for (int k = 0; k < N_KEYS; k++) snprintf(names[k], sizeof names[k], "k%02d", k);
    for (int k = 0; k < 2; k++) snprintf(names[N_KEYS + k], sizeof names[0], "z%d", k);
    for (int i = 0; i < N_RECORDS; i++) {
        int k = geometric(&s, N_KEYS);
        put_i64(rec_val[i], (int64_t)(next_random(&s) % 2001) - 1000);
        records[i] = (ember_record){names[k], 3, rec_val[i], 8, i};
    }
    /* right side: some left keys (skewed and rare ones), and keys only on the right */
    static const int right_keys[] = {0, 3, 40, 0, 5, 7, 11, 41, 20, 3, 0, 39};
    for (int j = 0; j < N_SPARSE; j++) {
        int k = right_keys[j % 12];
        put_i64(sparse_val[j], 1000000 + j);
        sparse[j] =
            (ember_record){names[k], strlen(names[k]), sparse_val[j], 8, (j * 7919) % 30000};
    }
    /* sort keys: small values (many duplicates), any int64, extremes, repeats of earlier ones */
    static const int64_t extremes[] = {INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MIN + 1};
    for (int i = 0; i < N_SORT; i++) {
        uint64_t r = next_random(&s);
        int64_t v;
        if (i < 6)
            v = extremes[i];
        else if (r % 4 == 0)
            v = (int64_t)(next_random(&s) % 101) - 50;
        else if (r % 4 == 3)
            v = sort_num[next_random(&s) % (uint64_t)i];
        else
            v = (int64_t)next_random(&s);
        sort_num[i] = v;
        ember_key_i64(v, sort_key[i]);
        put_i64(sort_val[i], i);
        sorts[i] = (ember_record){sort_key[i], 8, sort_val[i], 8, i};
    }
    /* string keys of 0..4 letters of "abc": prefixes and empty keys */
    for (int i = 0; i < N_STR; i++) {
        size_t len = next_random(&s) % 5;
        for (size_t c = 0; c < len; c++) str_key[i][c] = (uint8_t)('a' + next_random(&s) % 3);
        put_i64(str_val[i], i);
        strs[i] = (ember_record){str_key[i], len, str_val[i], 8, i};
    }
    /* distinct: few (key, value) pairs, values of 8, 0 and 2 bytes, timestamps out of order */
    for (int i = 0; i < N_DUP; i++) {
        int k = geometric(&s, 10), c = (int)(next_random(&s) % 6);
        int64_t ts = (int64_t)(next_random(&s) % 100000);
        put_i64(dup_val[i], c);
        dups[i] = (ember_record){names[k], 3, c == 5 ? (const void *)"ab" : dup_val[i],
                                 c < 4    ? 8
                                 : c == 4 ? 0
                                          : 2,
                                 ts};
    }
}

/* name_index: a key of the table, or -1 */
static int name_index(const void *key, size_t len)
{
    for (int k = 0; k < N_TABLE; k++)
        if (bytes_cmp(key, len, names[k], strlen(names[k])) == 0) return k;
    return -1;
}

/* ---- comparing ---------------------------------------------------------------------------- */

/* item: one compared fact; fields mean what each check says */
typedef struct item {
    int32_t key, part;
    int64_t a, b, c, d, ts;
} item;

typedef struct list {
    item *v;
    size_t n, cap;
} list;

static int checks;

static void push(list *l, item it)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v) {
            printf("out of memory\n");
            exit(1);
        }
    }
    l->v[l->n++] = it;
}

static int cmp_i64(int64_t a, int64_t b) { return (a > b) - (a < b); }

/* item_cmp orders items field by field */
static int item_cmp(const void *x, const void *y)
{
    const item *a = x, *b = y;
    int c = cmp_i64(a->key, b->key);
    if (!c) c = cmp_i64(a->part, b->part);
    if (!c) c = cmp_i64(a->a, b->a);
    if (!c) c = cmp_i64(a->b, b->b);
    if (!c) c = cmp_i64(a->c, b->c);
    if (!c) c = cmp_i64(a->d, b->d);
    return c ? c : cmp_i64(a->ts, b->ts);
}

/* by_key: a stable counting sort of l by key (keys are table indexes) */
static void by_key(list *l)
{
    size_t start[N_TABLE + 1] = {0};
    item *out = malloc((l->n + 1) * sizeof *out);
    if (!out) exit(1);
    for (size_t i = 0; i < l->n; i++) start[l->v[i].key + 1]++;
    for (int k = 0; k < N_TABLE; k++) start[k + 1] += start[k];
    for (size_t i = 0; i < l->n; i++) out[start[l->v[i].key]++] = l->v[i];
    free(l->v);
    l->v = out;
}

static void print_item(const char *label, const item *it)
{
    printf("  %s: key %s part %d a %lld b %lld c %lld d %lld ts %lld\n", label,
           it->key >= 0 && it->key < N_TABLE ? names[it->key] : "-", it->part, (long long)it->a,
           (long long)it->b, (long long)it->c, (long long)it->d, (long long)it->ts);
}

enum { EXACT, PER_KEY, AS_SET };

/* compare_range: the lengths of got and want, then their items [from, to) in the given mode
 * (PER_KEY sorts the whole lists by key, stably; AS_SET sorts [from, to) of both) */
static int compare_range(const char *what, list *got, list *want, size_t from, size_t to, int mode)
{
    if (got->n != want->n) {
        printf("%s: MISMATCH: %zu records, want %zu\n", what, got->n, want->n);
        return 1;
    }
    if (mode == PER_KEY) {
        by_key(got);
        by_key(want);
    } else if (mode == AS_SET) {
        qsort(got->v + from, to - from, sizeof *got->v, item_cmp);
        qsort(want->v + from, to - from, sizeof *want->v, item_cmp);
    }
    for (size_t i = from; i < to; i++)
        if (item_cmp(&got->v[i], &want->v[i]) != 0) {
            printf("%s: MISMATCH at %s %zu:\n", what,
                   mode == EXACT     ? "record"
                   : mode == PER_KEY ? "sorted-by-key"
                                     : "sorted",
                   i);
            print_item("got ", &got->v[i]);
            print_item("want", &want->v[i]);
            return 1;
        }
    return 0;
}

/* finish: compare, free both lists, count and print the check */
static int finish(const char *what, list *got, list *want, int mode)
{
    int bad = compare_range(what, got, want, 0, got->n, mode);
    if (!bad) printf("%s: %zu records ok\n", what, got->n);
    free(got->v);
    free(want->v);
    *got = *want = (list){0};
    checks += !bad;
    return bad;
}

/* bail frees both lists after a MISMATCH, so that a failing run leaks nothing either */
static int bail(list *got, list *want)
{
    free(got->v);
    free(want->v);
    *got = *want = (list){0};
    return 1;
}

/* collect runs the action; the lines printed so far go out first, should it crash a process */
static int collect(ember_ctx *ctx, const char *what, ember_dataset *ds, ember_collected *c)
{
    fflush(stdout);
    int rc = ember_collect(ds, c);
    if (rc != EMBER_OK) printf("%s: MISMATCH: collect failed: %s\n", what, ember_last_error(ctx));
    return rc != EMBER_OK;
}

/* key_of: the table index of a collected record's key; prints a MISMATCH if unknown */
static int key_of(const char *what, const ember_record *r)
{
    int k = name_index(r->key, r->key_len);
    if (k < 0)
        printf("%s: MISMATCH: unknown key '%.*s'\n", what, (int)r->key_len, (const char *)r->key);
    return k;
}

/* plain: item of an (table key, int64 value) record */
static int plain(const char *what, const ember_record *r, item *it)
{
    int k = key_of(what, r);
    if (k < 0) return 1;
    if (r->value_len != 8) {
        printf("%s: MISMATCH: value of %zu bytes\n", what, r->value_len);
        return 1;
    }
    *it = (item){.key = k, .a = ember_value_i64(r), .ts = r->timestamp};
    return 0;
}

/* ---- checks ------------------------------------------------------------------------------- */

static int check_aggregate(ember_ctx *ctx, ember_dataset *data, int parts)
{
    char what[80];
    snprintf(what, sizeof what, "aggregate_by_key over %d partitions", parts);
    acc zero = {0, 0, INT64_MAX}, want_acc[N_TABLE];
    int64_t latest[N_TABLE];
    for (int k = 0; k < N_TABLE; k++) want_acc[k] = zero, latest[k] = INT64_MIN;
    for (int i = 0; i < N_RECORDS; i++) {
        if (!kept(i, N_RECORDS)) continue;
        int k = name_index(records[i].key, 3);
        int64_t v = ember_value_i64(&records[i]);
        want_acc[k].sum += v;
        want_acc[k].count++;
        if (v < want_acc[k].min) want_acc[k].min = v;
        if (records[i].timestamp > latest[k]) latest[k] = records[i].timestamp;
    }
    list got = {0}, want = {0};
    for (int k = 0; k < N_TABLE; k++)
        if (want_acc[k].count)
            push(&want,
                 (item){k, 0, want_acc[k].sum, want_acc[k].count, want_acc[k].min, 0, latest[k]});
    ember_collected c;
    if (collect(ctx, what,
                ember_aggregate_by_key(data, &zero, sizeof zero, agg_seq, agg_comb, parts), &c))
        return bail(&got, &want);
    for (size_t i = 0; i < c.n; i++) {
        const ember_record *r = &c.records[i];
        int k = key_of(what, r);
        if (k < 0) return bail(&got, &want);
        if (r->value_len != sizeof(acc)) {
            printf("%s: MISMATCH: accumulator of %zu bytes\n", what, r->value_len);
            return bail(&got, &want);
        }
        acc a;
        memcpy(&a, r->value, sizeof a);
        push(&got, (item){k, 0, a.sum, a.count, a.min, 0, r->timestamp});
    }
    return finish(what, &got, &want, AS_SET);
}

/* groups_to_items: a group header (part -1, a = count) then one item per value (part =
 * side, a = int64 value, ts = its timestamp), per grouped record */
static int groups_to_items(const char *what, const ember_collected *c, list *got)
{
    for (size_t i = 0; i < c->n; i++) {
        const ember_record *r = &c->records[i];
        ember_group_iter it;
        ember_record v;
        int side, k = key_of(what, r), n = ember_group_open(r, &it);
        if (k < 0) return 1;
        if (n < 0) {
            printf("%s: MISMATCH: ember_group_open gives %s\n", what, ember_err_name(n));
            return 1;
        }
        push(got, (item){.key = k, .part = -1, .a = n});
        while (ember_group_next(&it, &v, &side)) {
            if (v.value_len != 8 || v.key_len != 0) {
                printf("%s: MISMATCH: grouped value of %zu bytes, key of %zu\n", what, v.value_len,
                       v.key_len);
                return 1;
            }
            push(got, (item){.key = k, .part = side, .a = ember_value_i64(&v), .ts = v.timestamp});
        }
    }
    return 0;
}

/* want_groups: for each key, the header then side 0's kept records then side 1's */
static void want_groups(list *want, int with_right)
{
    for (int k = 0; k < N_TABLE; k++) {
        int n = 0;
        for (int i = 0; i < N_RECORDS; i++) n += kept(i, N_RECORDS) && records[i].key == names[k];
        for (int j = 0; with_right && j < N_SPARSE; j++) n += sparse[j].key == names[k];
        if (n == 0) continue;
        push(want, (item){.key = k, .part = -1, .a = n});
        for (int i = 0; i < N_RECORDS; i++)
            if (kept(i, N_RECORDS) && records[i].key == names[k])
                push(want, (item){.key = k,
                                  .a = ember_value_i64(&records[i]),
                                  .ts = records[i].timestamp});
        for (int j = 0; with_right && j < N_SPARSE; j++)
            if (sparse[j].key == names[k])
                push(want, (item){.key = k,
                                  .part = 1,
                                  .a = ember_value_i64(&sparse[j]),
                                  .ts = sparse[j].timestamp});
    }
}

static int check_groups(ember_ctx *ctx, ember_dataset *data, ember_dataset *right, int parts)
{
    char what[80];
    list got = {0}, want = {0};
    ember_collected c;
    snprintf(what, sizeof what, "group_by_key over %d partitions", parts);
    want_groups(&want, 0);
    if (collect(ctx, what, ember_group_by_key(data, parts), &c) ||
        groups_to_items(what, &c, &got) || finish(what, &got, &want, PER_KEY))
        return bail(&got, &want);
    snprintf(what, sizeof what, "cogroup over %d partitions", parts);
    want_groups(&want, 1);
    if (collect(ctx, what, ember_cogroup(data, right, parts), &c) ||
        groups_to_items(what, &c, &got) || finish(what, &got, &want, PER_KEY))
        return bail(&got, &want);
    return 0;
}

/* check_join: items part = ember_join_values' result, a/c = left value/timestamp, b/d = right
 * value/timestamp (0 without one), ts = the record's */
static int check_join(ember_ctx *ctx, ember_dataset *data, ember_dataset *right, int parts,
                      int outer)
{
    char what[80];
    snprintf(what, sizeof what, "%s over %d partitions", outer ? "left_outer_join" : "join", parts);
    list got = {0}, want = {0};
    for (int i = 0; i < N_RECORDS; i++) {
        if (!kept(i, N_RECORDS)) continue;
        const ember_record *l = &records[i];
        int k = name_index(l->key, 3), matched = 0;
        for (int j = 0; j < N_SPARSE; j++) {
            const ember_record *r = &sparse[j];
            if (r->key != l->key) continue;
            matched = 1;
            push(&want,
                 (item){k, 1, ember_value_i64(l), ember_value_i64(r), l->timestamp, r->timestamp,
                        l->timestamp > r->timestamp ? l->timestamp : r->timestamp});
        }
        if (!matched && outer)
            push(&want, (item){k, 0, ember_value_i64(l), 0, l->timestamp, 0, l->timestamp});
    }
    ember_collected c;
    ember_dataset *joined =
        outer ? ember_left_outer_join(data, right, parts) : ember_join(data, right, parts);
    if (collect(ctx, what, joined, &c)) return bail(&got, &want);
    for (size_t i = 0; i < c.n; i++) {
        ember_record l, r;
        int k = key_of(what, &c.records[i]), rc = ember_join_values(&c.records[i], &l, &r);
        if (k < 0) return bail(&got, &want);
        if (rc < 0 || l.value_len != 8 || (rc == 1 && r.value_len != 8)) {
            printf("%s: MISMATCH: ember_join_values gives %d (left %zu bytes, right %zu)\n", what,
                   rc, l.value_len, r.value_len);
            return bail(&got, &want);
        }
        push(&got, (item){k, rc, ember_value_i64(&l), rc ? ember_value_i64(&r) : 0, l.timestamp,
                          rc ? r.timestamp : 0, c.records[i].timestamp});
    }
    return finish(what, &got, &want, PER_KEY);
}

/* check_distinct: items a = value class (int64 0..3, 4 empty, 5 "ab"), b = value length */
static int check_distinct(ember_ctx *ctx, ember_dataset *dup_data, int parts)
{
    char what[80];
    snprintf(what, sizeof what, "distinct over %d partitions", parts);
    int64_t latest[10][6];
    for (int k = 0; k < 10; k++)
        for (int v = 0; v < 6; v++) latest[k][v] = -1;
    for (int i = 0; i < N_DUP; i++) {
        if (!kept(i, N_DUP)) continue;
        int k = name_index(dups[i].key, 3);
        int v = dups[i].value_len == 8   ? (int)ember_value_i64(&dups[i])
                : dups[i].value_len == 0 ? 4
                                         : 5;
        if (dups[i].timestamp > latest[k][v]) latest[k][v] = dups[i].timestamp;
    }
    list got = {0}, want = {0};
    for (int k = 0; k < 10; k++)
        for (int v = 0; v < 6; v++)
            if (latest[k][v] >= 0)
                push(&want, (item){.key = k,
                                   .a = v,
                                   .b = v < 4    ? 8
                                        : v == 4 ? 0
                                                 : 2,
                                   .ts = latest[k][v]});
    ember_collected c;
    if (collect(ctx, what, ember_distinct(dup_data, parts), &c)) return bail(&got, &want);
    for (size_t i = 0; i < c.n; i++) {
        const ember_record *r = &c.records[i];
        int k = key_of(what, r);
        if (k < 0) return bail(&got, &want);
        int64_t v = r->value_len == 8                                     ? ember_value_i64(r)
                    : r->value_len == 0                                   ? 4
                    : r->value_len == 2 && memcmp(r->value, "ab", 2) == 0 ? 5
                                                                          : -1;
        push(&got, (item){.key = k, .a = v, .b = (int64_t)r->value_len, .ts = r->timestamp});
    }
    return finish(what, &got, &want, AS_SET);
}

/* check_placement: partition_by (round_robin 0) or repartition, tagged with the partition
 * that holds each record; the whole collected sequence is compared */
static int check_placement(ember_ctx *ctx, ember_dataset *data, int parts, int round_robin)
{
    char what[80];
    snprintf(what, sizeof what, "%s over %d partitions",
             round_robin ? "repartition" : "partition_by", parts);
    list got = {0}, want = {0};
    int target[N_RECORDS];
    int64_t index_in_slice = 0, prev_slice = -1;
    for (int i = 0; i < N_RECORDS; i++) {
        int m = slice_of((size_t)i, N_RECORDS);
        if (m != prev_slice) index_in_slice = 0, prev_slice = m;
        target[i] =
            round_robin
                ? (int)((m + index_in_slice) % parts)
                : (int)(XXH3_64bits_withSeed(records[i].key, records[i].key_len, HASH_SEED) %
                        (uint64_t)parts);
        index_in_slice++;
    }
    for (int p = 0; p < parts; p++)
        for (int i = 0; i < N_RECORDS; i++)
            if (kept(i, N_RECORDS) && target[i] == p)
                push(&want, (item){.key = name_index(records[i].key, 3),
                                   .part = p,
                                   .a = ember_value_i64(&records[i]),
                                   .ts = records[i].timestamp});
    ember_dataset *moved =
        round_robin ? ember_repartition(data, parts) : ember_partition_by(data, parts);
    ember_collected c;
    if (collect(ctx, what, ember_map(moved, tag_partition, NULL, 0), &c)) return bail(&got, &want);
    for (size_t i = 0; i < c.n; i++) {
        const ember_record *r = &c.records[i];
        int k = key_of(what, r);
        if (k < 0) return bail(&got, &want);
        if (r->value_len != 16) {
            printf("%s: MISMATCH: tagged value of %zu bytes\n", what, r->value_len);
            return bail(&got, &want);
        }
        push(&got, (item){.key = k,
                          .part = (int32_t)get_i64((const uint8_t *)r->value + 8),
                          .a = get_i64(r->value),
                          .ts = r->timestamp});
    }
    return finish(what, &got, &want, EXACT);
}

/* sort references: indexes of kept records, stable */
static int sort_desc;
static const ember_record *sort_input;

static int by_num(const void *x, const void *y)
{
    int i = *(const int *)x, j = *(const int *)y;
    int64_t a = sort_num[i], b = sort_num[j];
    int c = a < b ? -1 : a > b;
    if (sort_desc) c = -c;
    return c ? c : (i > j) - (i < j);
}

static int by_bytes(const void *x, const void *y)
{
    int i = *(const int *)x, j = *(const int *)y;
    int c = bytes_cmp(sort_input[i].key, sort_input[i].key_len, sort_input[j].key,
                      sort_input[j].key_len);
    if (sort_desc) c = -c;
    return c ? c : (i > j) - (i < j);
}

/* str_item: a string key of <= 4 bytes as a (bytes, big-endian) and c (length) */
static item str_item(const ember_record *r)
{
    int64_t a = 0;
    for (size_t i = 0; i < r->key_len && i < 8; i++) a = a * 256 + ((const uint8_t *)r->key)[i];
    return (item){.key = -1,
                  .a = a,
                  .b = r->value_len == 8 ? ember_value_i64(r) : -1,
                  .c = (int64_t)r->key_len,
                  .ts = r->timestamp};
}

/* check_sort: numeric keys (strings 0) or string keys, ascending or not; items a = key, b =
 * input index, ts; the whole collected sequence is compared */
static int check_sort(ember_ctx *ctx, ember_dataset *ds, int parts, int strings, int ascending)
{
    char what[80];
    snprintf(what, sizeof what, "sort_by_key %s %s over %d partitions",
             strings ? "strings" : "int64", ascending ? "ascending" : "descending", parts);
    const ember_record *in = strings ? strs : sorts;
    int n_in = strings ? N_STR : N_SORT, *idx = malloc((size_t)n_in * sizeof *idx), n = 0;
    if (!idx) return 1;
    for (int i = 0; i < n_in; i++)
        if (kept((size_t)i, (size_t)n_in)) idx[n++] = i;
    sort_desc = !ascending;
    sort_input = in;
    qsort(idx, (size_t)n, sizeof *idx, strings ? by_bytes : by_num);
    list got = {0}, want = {0};
    for (int i = 0; i < n; i++)
        push(&want,
             strings
                 ? str_item(&in[idx[i]])
                 : (item){
                       .key = -1, .a = sort_num[idx[i]], .b = idx[i], .ts = in[idx[i]].timestamp});
    free(idx);
    ember_collected c;
    if (collect(ctx, what, ember_sort_by_key(ds, ascending, parts), &c)) return bail(&got, &want);
    for (size_t i = 0; i < c.n; i++) {
        const ember_record *r = &c.records[i];
        if (!strings && (r->key_len != 8 || r->value_len != 8)) {
            printf("%s: MISMATCH: key of %zu bytes\n", what, r->key_len);
            return bail(&got, &want);
        }
        push(&got, strings ? str_item(r)
                           : (item){.key = -1,
                                    .a = ember_key_to_i64(r->key),
                                    .b = ember_value_i64(r),
                                    .ts = r->timestamp});
    }
    return finish(what, &got, &want, EXACT);
}

/* check_sort_spread: with many distinct keys, every partition of a sort holds records */
static int check_sort_spread(ember_ctx *ctx, ember_dataset *ds, int parts)
{
    char what[80];
    snprintf(what, sizeof what, "sort_by_key spread over %d partitions", parts);
    int64_t total = 0, want_total = 0, least = INT64_MAX;
    for (int i = 0; i < N_SORT; i++) want_total += kept((size_t)i, N_SORT);
    ember_collected c;
    if (collect(ctx, what,
                ember_map_partitions(ember_sort_by_key(ds, 1, parts), count_partition, NULL, 0),
                &c))
        return 1;
    if (c.n != (size_t)parts) {
        printf("%s: MISMATCH: %zu partition counts, want %d\n", what, c.n, parts);
        return 1;
    }
    for (size_t p = 0; p < c.n; p++) {
        int64_t n = ember_value_i64(&c.records[p]);
        if (c.records[p].key_len != 8 || get_i64(c.records[p].key) != (int64_t)p || n < 1) {
            printf("%s: MISMATCH: partition %zu holds %lld records\n", what, p, (long long)n);
            return 1;
        }
        total += n;
        if (n < least) least = n;
    }
    if (total != want_total) {
        printf("%s: MISMATCH: %lld records, want %lld\n", what, (long long)total,
               (long long)want_total);
        return 1;
    }
    printf("%s: every partition non-empty (fewest %lld of %lld) ok\n", what, (long long)least,
           (long long)total);
    checks++;
    return 0;
}

/* want_records: (key, value, timestamp) items of the kept records then of sparse */
static void want_records(list *want, int with_left, int with_right)
{
    for (int i = 0; with_left && i < N_RECORDS; i++)
        if (kept(i, N_RECORDS))
            push(want, (item){.key = name_index(records[i].key, 3),
                              .a = ember_value_i64(&records[i]),
                              .ts = records[i].timestamp});
    for (int j = 0; with_right && j < N_SPARSE; j++)
        push(want, (item){.key = name_index(sparse[j].key, sparse[j].key_len),
                          .a = ember_value_i64(&sparse[j]),
                          .ts = sparse[j].timestamp});
}

/* want_sums: reduce_by_key(SUM_I64) of the kept records and/or sparse */
static void want_sums(list *want, int with_left, int with_right)
{
    list all = {0};
    want_records(&all, with_left, with_right);
    for (int k = 0; k < N_TABLE; k++) {
        item sum = {.key = k, .ts = INT64_MIN};
        int any = 0;
        for (size_t i = 0; i < all.n; i++)
            if (all.v[i].key == k) {
                any = 1;
                sum.a += all.v[i].a;
                if (all.v[i].ts > sum.ts) sum.ts = all.v[i].ts;
            }
        if (any) push(want, sum);
    }
    free(all.v);
}

static int records_to_items(const char *what, const ember_collected *c, list *got)
{
    for (size_t i = 0; i < c->n; i++) {
        item it;
        if (plain(what, &c->records[i], &it)) return 1;
        push(got, it);
    }
    return 0;
}

static int check_unions(ember_ctx *ctx, ember_dataset *data, ember_dataset *right, int parts)
{
    char what[80];
    list got = {0}, want = {0};
    ember_collected c;
    int64_t n = -1;
    /* a, three empty partitions, b: count and exact order (no shuffle: parts only names it) */
    snprintf(what, sizeof what, "union of two sources and an empty range (round %d)", parts);
    ember_dataset *u = ember_union(ember_union(data, ember_range(ctx, 0, 0, 3)), right);
    want_records(&want, 1, 1);
    if (ember_count(u, &n) != EMBER_OK || n != (int64_t)want.n) {
        printf("%s: MISMATCH: count %lld, want %zu (%s)\n", what, (long long)n, want.n,
               ember_last_error(ctx));
        return bail(&got, &want);
    }
    if (collect(ctx, what, u, &c) || records_to_items(what, &c, &got) ||
        finish(what, &got, &want, EXACT))
        return bail(&got, &want);
    /* a source and a shuffle in one stage: sparse exactly, then the sums in any order */
    snprintf(what, sizeof what, "union of a source and reduce_by_key over %d partitions", parts);
    want_records(&want, 0, 1);
    want_sums(&want, 1, 0);
    u = ember_union(right, ember_reduce_by_key(data, EMBER_SUM_I64, parts));
    if (collect(ctx, what, u, &c) || records_to_items(what, &c, &got)) return bail(&got, &want);
    if (compare_range(what, &got, &want, 0, N_SPARSE, EXACT) ||
        compare_range(what, &got, &want, N_SPARSE, got.n, AS_SET))
        return bail(&got, &want);
    free(got.v), free(want.v), got = want = (list){0};
    printf("%s: %zu records ok\n", what, c.n);
    checks++;
    /* union, then a shuffle */
    snprintf(what, sizeof what, "reduce_by_key of a union over %d partitions", parts);
    want_sums(&want, 1, 1);
    u = ember_reduce_by_key(ember_union(data, right), EMBER_SUM_I64, parts);
    if (collect(ctx, what, u, &c) || records_to_items(what, &c, &got) ||
        finish(what, &got, &want, AS_SET))
        return bail(&got, &want);
    return 0;
}

/* check_three_shuffles: reduce_by_key -> sum_to_bucket -> group_by_key -> group_summary ->
 * sort_by_key descending; items a = group size, b = bucket digit, c = sum of key indexes */
static int check_three_shuffles(ember_ctx *ctx, ember_dataset *data, int parts)
{
    char what[80];
    snprintf(what, sizeof what, "three shuffles over %d partitions", parts);
    list sums = {0}, got = {0}, want = {0};
    want_sums(&sums, 1, 0);
    int64_t size[5] = {0}, idx_sum[5] = {0};
    for (size_t i = 0; i < sums.n; i++) {
        int64_t d = (sums.v[i].a % 5 + 5) % 5;
        size[d]++;
        idx_sum[d] += sums.v[i].key;
    }
    free(sums.v);
    /* descending by (8-byte order-preserving size, "gD"): size first, then the digit */
    for (int64_t s = N_KEYS; s >= 1; s--)
        for (int d = 4; d >= 0; d--)
            if (size[d] == s) push(&want, (item){.key = -1, .a = s, .b = d, .c = idx_sum[d]});
    ember_dataset *ds =
        ember_map(ember_reduce_by_key(data, EMBER_SUM_I64, parts), sum_to_bucket, NULL, 0);
    ds = ember_map(ember_group_by_key(ds, parts), group_summary, NULL, 0);
    ember_collected c;
    if (collect(ctx, what, ember_sort_by_key(ds, 0, parts), &c)) return bail(&got, &want);
    for (size_t i = 0; i < c.n; i++) {
        const ember_record *r = &c.records[i];
        const char *k = r->key;
        if (r->key_len != 10 || k[8] != 'g' || r->value_len != 8) {
            printf("%s: MISMATCH: record %zu has a key of %zu bytes\n", what, i, r->key_len);
            return bail(&got, &want);
        }
        push(&got,
             (item){.key = -1, .a = ember_key_to_i64(k), .b = k[9] - '0', .c = ember_value_i64(r)});
    }
    return finish(what, &got, &want, EXACT);
}

/* check_api: grouped and joined record readers refuse other records; key_i64 round trips */
static int check_api(void)
{
    ember_group_iter it;
    ember_record l, r, empty = {names[0], 3, "", 0, 0};
    int g1 = ember_group_open(&records[0], &it), g2 = ember_group_open(&empty, &it),
        j1 = ember_join_values(&records[0], &l, &r), j2 = ember_join_values(&empty, &l, &r);
    if (g1 != EMBER_ERR_MALFORMED || g2 != EMBER_ERR_MALFORMED || j1 != EMBER_ERR_MALFORMED ||
        j2 != EMBER_ERR_MALFORMED) {
        printf("api: MISMATCH: group_open %d %d, join_values %d %d on plain records, want %d\n", g1,
               g2, j1, j2, EMBER_ERR_MALFORMED);
        return 1;
    }
    for (int i = 0; i < N_SORT; i++)
        if (ember_key_to_i64(sort_key[i]) != sort_num[i]) {
            printf("api: MISMATCH: ember_key_to_i64(ember_key_i64(%lld)) = %lld\n",
                   (long long)sort_num[i], (long long)ember_key_to_i64(sort_key[i]));
            return 1;
        }
    printf("api: plain records refused by group_open/join_values, key_i64 round trips ok\n");
    checks++;
    return 0;
}

/* check_empty: every wide operation over empty inputs */
static int check_empty(ember_ctx *ctx, ember_dataset *right)
{
    acc zero = {0, 0, INT64_MAX};
    ember_dataset *e = ember_range(ctx, 0, 0, 3);
    int right_keys = 0;
    for (int k = 0; k < N_TABLE; k++)
        for (int j = 0; j < N_SPARSE; j++)
            if (sparse[j].key == names[k]) {
                right_keys++;
                break;
            }
    struct {
        const char *what;
        ember_dataset *ds;
        int64_t want;
    } cases[] = {
        {"aggregate_by_key", ember_aggregate_by_key(e, &zero, sizeof zero, agg_seq, agg_comb, 4),
         0},
        {"group_by_key", ember_group_by_key(e, 4), 0},
        {"cogroup of two empty", ember_cogroup(e, ember_range(ctx, 5, 5, 2), 4), 0},
        {"cogroup with empty left", ember_cogroup(e, right, 4), right_keys},
        {"join with empty left", ember_join(e, right, 4), 0},
        {"join with empty right", ember_join(right, e, 4), 0},
        {"left_outer_join with empty left", ember_left_outer_join(e, right, 4), 0},
        {"left_outer_join with empty right", ember_left_outer_join(right, e, 4), N_SPARSE},
        {"distinct", ember_distinct(e, 4), 0},
        {"partition_by", ember_partition_by(e, 4), 0},
        {"repartition", ember_repartition(e, 4), 0},
        {"sort_by_key ascending", ember_sort_by_key(e, 1, 4), 0},
        {"sort_by_key descending", ember_sort_by_key(e, 0, 4), 0},
        {"union of empties", ember_union(e, ember_range(ctx, 7, 7, 2)), 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t n = -1;
        fflush(stdout);
        int rc = ember_count(cases[i].ds, &n);
        if (rc != EMBER_OK || n != cases[i].want) {
            printf("empty inputs: MISMATCH: %s counts %lld, want %lld (%s)\n", cases[i].what,
                   (long long)n, (long long)cases[i].want, rc ? ember_last_error(ctx) : "");
            return 1;
        }
    }
    printf("empty inputs: %zu wide operations ok\n", sizeof cases / sizeof cases[0]);
    checks++;
    return 0;
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    const char *list_arg = argc > 2 && strcmp(argv[1], "--partitions") == 0 ? argv[2] : "1 3 50";
    make_inputs();
    ember_dataset *data = ember_filter(ember_parallelize(ctx, records, N_RECORDS, IN_PARTS),
                                       keep_partition, NULL, 0),
                  *right = ember_parallelize(ctx, sparse, N_SPARSE, 45),
                  *sort_data = ember_filter(ember_parallelize(ctx, sorts, N_SORT, IN_PARTS),
                                            keep_partition, NULL, 0),
                  *str_data = ember_filter(ember_parallelize(ctx, strs, N_STR, IN_PARTS),
                                           keep_partition, NULL, 0),
                  *dup_data = ember_filter(ember_parallelize(ctx, dups, N_DUP, IN_PARTS),
                                           keep_partition, NULL, 0);
    if (check_api()) return 1;
    for (const char *p = list_arg; *p;) {
        char *end;
        long parts = strtol(p, &end, 10);
        if (end == p) break;
        int n = (int)parts;
        if (check_aggregate(ctx, data, n) || check_groups(ctx, data, right, n) ||
            check_join(ctx, data, right, n, 0) || check_join(ctx, data, right, n, 1) ||
            check_distinct(ctx, dup_data, n) || check_placement(ctx, data, n, 0) ||
            check_placement(ctx, data, n, 1) || check_sort(ctx, sort_data, n, 0, 1) ||
            check_sort(ctx, sort_data, n, 0, 0) || check_sort(ctx, str_data, n, 1, 1) ||
            check_sort(ctx, str_data, n, 1, 0) || check_sort_spread(ctx, sort_data, n) ||
            check_unions(ctx, data, right, n) || check_three_shuffles(ctx, data, n))
            return 1;
        p = end;
    }
    if (check_empty(ctx, right)) return 1;
    printf("wide_ops2: all %d checks passed\n", checks);
    return 0;
}
