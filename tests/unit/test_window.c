/* test_window.c -- em_window: event-time windows of a streaming query.
 *
 * Map side: a record's pane is floor(time / slide) (negative times too), its composite key the
 * pane (8 bytes big-endian) then its key, hashed as its key alone; a count replaces the value by
 * int64 1; a record is late when its event time is behind the watermark, or beyond
 * +-EM_EVENT_TIME_MAX; the largest event time is tracked, late records included.
 * Reduce side, each batch driven through the mapper and a batch combiner as the shuffle does,
 * and compared with a brute-force reference computed from the raw records: tumbling windows
 * emitted once final and never twice; sliding windows over several batches, negative times and
 * a key with hundreds of empty panes; an order-dependent aggregate (16-byte accumulators) whose
 * panes combine in event-time order, with each task's own fold; the state reloaded from its
 * files by a fresh em_state_cache (another executor); a batch run again gives its first
 * output (no double counting); more than EM_STATE_SNAPSHOT_EVERY versions stay exact, from
 * memory, from a snapshot and deltas, and old files go; more partitions than the cache holds;
 * a missing state file is an error naming it; late records are counted, never emitted; update
 * mode emits each batch's changed windows not final before it, against its own reference.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "em_batch.h"
#include "em_combine.h"
#include "em_fs.h"
#include "em_graph.h"
#include "em_hash.h"
#include "em_window.h"

#define NONE EM_NO_WATERMARK

/* ev: one raw record of the stream, and the batch that reads it */
typedef struct ev {
    const char *key;
    int64_t t; /* event time */
    int64_t v;
    int batch;
} ev;

/* query: one window node, its state directory, its records and each batch's watermark */
typedef struct query {
    Ember__Node node;
    char dir[64];
    uint32_t partition;
    const ev *evs;
    size_t n;
    const int64_t *wm; /* wm[b]: the watermark batch b applies */
    int64_t scale;     /* every value is multiplied by it (1 unless set) */
    int aggregate;     /* the aggregate below instead of a sum */
} query;

/* acc: a result. A sum or a count is h; the aggregate folds records into {h, n} by
 * h = 3h + v, n + 1 (seq) and accumulators by h = 7h + h', n + n' (comb): order-dependent, so
 * the order panes and batches combine in shows */
typedef struct acc {
    int64_t h, n;
} acc;

static acc seq(const query *q, acc a, int64_t v, int fresh)
{
    if (q->node.window_count) v = 1;
    if (!q->aggregate) return (acc){fresh ? v : a.h + v, 0};
    return fresh ? (acc){v, 1} : (acc){(int64_t)((uint64_t)a.h * 3 + (uint64_t)v), a.n + 1};
}

static acc comb(const query *q, acc a, acc b, int fresh)
{
    if (fresh) return b;
    if (!q->aggregate) return (acc){a.h + b.h, 0};
    return (acc){(int64_t)((uint64_t)a.h * 7 + (uint64_t)b.h), a.n + b.n};
}

/* out_rec: one emitted window */
typedef struct out_rec {
    char key[16];
    int64_t start;
    acc value;
} out_rec;

typedef struct collector {
    out_rec *r;
    size_t n, cap;
} collector;

static void collector_add(collector *c, const char *key, size_t key_len, int64_t start, acc value)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->r = realloc(c->r, c->cap * sizeof *c->r);
        assert_non_null(c->r);
    }
    assert_true(key_len < sizeof c->r->key);
    out_rec *o = &c->r[c->n++];
    memcpy(o->key, key, key_len);
    o->key[key_len] = '\0';
    o->start = start;
    o->value = value;
}

/* expect adds a window with a sum or count `value` */
static void expect(collector *c, const char *key, int64_t start, int64_t value)
{
    collector_add(c, key, strlen(key), start, (acc){value, 0});
}

static void collector_free(collector *c)
{
    free(c->r);
    memset(c, 0, sizeof *c);
}

/* collect is the emit function: key, value (int64 LE, or an aggregate's {h, n}), timestamp =
 * the window's start */
static int collect(void *arg, const ember_record *rec)
{
    acc v = {0, 0};
    assert_true(rec->value_len == 8 || rec->value_len == sizeof v);
    memcpy(&v, rec->value, rec->value_len);
    collector_add(arg, rec->key, rec->key_len, rec->timestamp, v);
    return EMBER_OK;
}

static void print_list(const char *what, const collector *c)
{
    print_message("%s (%zu):\n", what, c->n);
    for (size_t i = 0; i < c->n; i++)
        print_message("  %s [%lld) = %lld (n %lld)\n", c->r[i].key, (long long)c->r[i].start,
                      (long long)c->r[i].value.h, (long long)c->r[i].value.n);
}

/* assert_same: the same windows, in the same order, with the same values */
static void assert_same(const collector *got, const collector *want)
{
    int same = got->n == want->n;
    for (size_t i = 0; same && i < got->n; i++)
        same = strcmp(got->r[i].key, want->r[i].key) == 0 && got->r[i].start == want->r[i].start &&
               got->r[i].value.h == want->r[i].value.h && got->r[i].value.n == want->r[i].value.n;
    if (!same) {
        print_list("emitted", got);
        print_list("expected", want);
        fail_msg("emitted windows differ from the expected ones");
    }
}

/* ---- the reference: brute force over the raw records ---- */

static int64_t floor_of(int64_t t, int64_t slide)
{
    return t >= 0 ? t / slide * slide : -((-t + slide - 1) / slide) * slide;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* counts_in: record e counts in window [s, s + length) of a node emitting it at batch b: it lies
 * in it, was read by batch b or before, and was not behind its batch's watermark (late) */
static int counts_in(const query *q, const ev *e, int64_t s, int b)
{
    int64_t w = q->wm[e->batch];
    return e->batch <= b && s <= e->t && e->t < s + q->node.window_length_ms &&
           (w == NONE || e->t >= w);
}

/* window_value: key's window [s, s + length) as batch b emits it: each batch's records of a
 * pane folded in their order (the map side), a pane's batches combined in batch order (the
 * state), the panes combined in event-time order; 0: no record counts in it */
static int window_value(const query *q, const char *key, int64_t s, int b, acc *out)
{
    int64_t slide = q->node.window_slide_ms;
    int window_fresh = 1;
    for (int64_t pane = s; pane < s + q->node.window_length_ms; pane += slide) {
        acc pane_acc = {0, 0};
        int pane_fresh = 1;
        for (int batch = 0; batch <= b; batch++) {
            acc batch_acc = {0, 0};
            int batch_fresh = 1;
            for (size_t i = 0; i < q->n; i++) {
                const ev *e = &q->evs[i];
                if (e->batch != batch || strcmp(e->key, key) != 0 ||
                    floor_of(e->t, slide) != pane || !counts_in(q, e, s, b))
                    continue;
                batch_acc = seq(q, batch_acc, e->v * q->scale, batch_fresh);
                batch_fresh = 0;
            }
            if (batch_fresh) continue;
            pane_acc = comb(q, pane_acc, batch_acc, pane_fresh);
            pane_fresh = 0;
        }
        if (pane_fresh) continue;
        *out = comb(q, *out, pane_acc, window_fresh);
        window_fresh = 0;
    }
    return !window_fresh;
}

/* reference: the windows batch b emits: those with an end in (prev watermark, watermark]
 * holding a record that counts in them, by key then start */
static void reference(const query *q, int b, collector *want)
{
    int64_t len = q->node.window_length_ms, slide = q->node.window_slide_ms;
    int64_t w = q->wm[b], wp = b > 0 ? q->wm[b - 1] : NONE;
    if (w == NONE) return;
    const char **keys = malloc(q->n * sizeof *keys);
    size_t n_keys = 0;
    assert_non_null(keys);
    for (size_t i = 0; i < q->n; i++) {
        size_t k = 0;
        while (k < n_keys && strcmp(keys[k], q->evs[i].key) != 0) k++;
        if (k == n_keys) keys[n_keys++] = q->evs[i].key;
    }
    qsort(keys, n_keys, sizeof *keys, by_name);
    for (size_t k = 0; k < n_keys; k++) {
        int64_t min_t = INT64_MAX;
        for (size_t i = 0; i < q->n; i++)
            if (strcmp(q->evs[i].key, keys[k]) == 0 && q->evs[i].t < min_t) min_t = q->evs[i].t;
        int64_t from = floor_of(min_t, slide) - len + slide; /* the first window holding any */
        if (wp != NONE && from <= wp - len) from = floor_of(wp - len, slide) + slide;
        for (int64_t s = from; s + len <= w; s += slide) {
            acc v = {0, 0};
            if (window_value(q, keys[k], s, b, &v))
                collector_add(want, keys[k], strlen(keys[k]), s, v);
        }
    }
    free(keys);
}

/* reference_updates: the windows batch b emits in update mode: every window holding a pane of
 * the batch's records that count, and not final before the batch, by key then start */
static void reference_updates(const query *q, int b, collector *want)
{
    int64_t len = q->node.window_length_ms, slide = q->node.window_slide_ms;
    int64_t wp = b > 0 ? q->wm[b - 1] : NONE;
    int64_t done = wp == NONE ? INT64_MIN : floor_of(wp - len, slide);
    const char *keys[64];
    size_t n_keys = 0;
    for (size_t i = 0; i < q->n; i++) {
        size_t k = 0;
        while (k < n_keys && strcmp(keys[k], q->evs[i].key) != 0) k++;
        if (k == n_keys) {
            assert_true(n_keys < 64);
            keys[n_keys++] = q->evs[i].key;
        }
    }
    qsort(keys, n_keys, sizeof *keys, by_name);
    for (size_t k = 0; k < n_keys; k++) {
        int64_t lo = INT64_MAX, hi = INT64_MIN; /* the starts of windows a touched pane is in */
        for (size_t i = 0; i < q->n; i++) {
            const ev *e = &q->evs[i];
            if (strcmp(e->key, keys[k]) || e->batch != b || (q->wm[b] != NONE && e->t < q->wm[b]))
                continue;
            int64_t p = floor_of(e->t, slide);
            if (p - len + slide < lo) lo = p - len + slide;
            if (p > hi) hi = p;
        }
        for (int64_t s = lo; hi != INT64_MIN && s <= hi; s += slide) {
            int touched = 0; /* s holds one of the batch's panes of this key */
            for (size_t i = 0; i < q->n && !touched; i++) {
                const ev *e = &q->evs[i];
                touched = !strcmp(e->key, keys[k]) && e->batch == b &&
                          (q->wm[b] == NONE || e->t >= q->wm[b]) && s <= e->t && e->t < s + len;
            }
            acc v = {0, 0};
            if (touched && s > done && window_value(q, keys[k], s, b, &v))
                collector_add(want, keys[k], strlen(keys[k]), s, v);
        }
    }
}

/* late_in: the records of batch b the mapper must find late */
static int64_t late_in(const query *q, int b)
{
    int64_t late = 0;
    for (size_t i = 0; i < q->n; i++) {
        const ev *e = &q->evs[i];
        late += e->batch == b && q->wm[b] != NONE && e->t < q->wm[b];
    }
    return late;
}

/* ---- running batches ---- */

/* the state directories made, removed by the group teardown even after a failed test */
static char made_dirs[32][64];
static int n_made;

static int remove_made_dirs(void **state)
{
    (void)state;
    for (int i = 0; i < n_made; i++) em_remove_tree(made_dirs[i]);
    n_made = 0;
    return 0;
}

static void query_init(query *q, int64_t length, int64_t slide, const ev *evs, size_t n,
                       const int64_t *wm)
{
    memset(q, 0, sizeof *q);
    ember__node__init(&q->node);
    q->node.kind = EMBER__NODE_KIND__NODE_WINDOW;
    q->node.window_length_ms = length;
    q->node.window_slide_ms = slide;
    q->node.reducer = EMBER__REDUCER__REDUCER_SUM_I64;
    q->node.watermark_ms = NONE;
    q->node.prev_watermark_ms = NONE;
    snprintf(q->dir, sizeof q->dir, "/tmp/test_window.XXXXXX");
    assert_non_null(mkdtemp(q->dir));
    assert_true(n_made < 32);
    snprintf(made_dirs[n_made++], sizeof made_dirs[0], "%s", q->dir);
    q->node.state_dir = q->dir;
    q->partition = 3;
    q->evs = evs;
    q->n = n;
    q->wm = wm;
    q->scale = 1;
}

static void query_free(query *q) { assert_int_equal(em_remove_tree(q->dir), 0); }

/* the aggregate's functions: seq on the map side (a record's value), comb on the reduce side
 * (an accumulator). comb's argument is allocated for one task and freed after it, so that a
 * state kept between tasks that still called an earlier task's fold reads freed memory. */
static int agg_seq(void *arg, uint8_t *acc_bytes, const ember_record *in, int fresh)
{
    query *q = arg;
    acc a, r;
    int64_t v;
    assert_int_equal(in->value_len, 8);
    memcpy(&a, acc_bytes, sizeof a);
    memcpy(&v, in->value, 8);
    r = seq(q, a, v, fresh);
    memcpy(acc_bytes, &r, sizeof r);
    return EMBER_OK;
}

typedef struct comb_arg {
    const query *q;
} comb_arg;

static int agg_comb(void *arg, uint8_t *acc_bytes, const ember_record *in, int fresh)
{
    comb_arg *c = arg;
    acc a, b, r;
    assert_int_equal(in->value_len, sizeof b);
    memcpy(&a, acc_bytes, sizeof a);
    memcpy(&b, in->value, sizeof b);
    r = comb(c->q, a, b, fresh);
    memcpy(acc_bytes, &r, sizeof r);
    return EMBER_OK;
}

/* run_batch runs batch b as an executor would: maps its records into a combiner of panes, then
 * reduces the partition into `out`; *late (if not NULL) is the mapper's count of late records.
 * An aggregate's comb is bound to an argument of this task alone (freed after it). */
static int run_batch(query *q, em_state_cache *states, int b, collector *out, int64_t *late,
                     char *err, size_t errlen)
{
    q->node.state_version = b;
    q->node.watermark_ms = q->wm[b];
    q->node.prev_watermark_ms = b > 0 ? q->wm[b - 1] : NONE;
    em_window_mapper m;
    em_window_mapper_init(&m, &q->node);
    em_fold map_fold = {agg_seq, q, sizeof(acc)};
    em_combiner *batch = q->aggregate ? em_combiner_new_fold(&map_fold, 16)
                                      : em_combiner_new(EMBER__REDUCER__REDUCER_SUM_I64, 16);
    assert_non_null(batch);
    for (size_t i = 0; i < q->n; i++) {
        if (q->evs[i].batch != b) continue;
        int64_t v = q->evs[i].v * q->scale;
        ember_record in = {q->evs[i].key, strlen(q->evs[i].key), &v, 8, q->evs[i].t}, pane;
        int use = em_window_map(&m, &in, &pane);
        assert_true(use == 0 || use == 1);
        if (use) assert_int_equal(em_combiner_add(batch, &pane), EMBER_OK);
    }
    if (late) *late = m.late;
    em_window_mapper_free(&m);
    if (q->aggregate) { /* the reduce side merges accumulators: a combiner of comb */
        em_combiner *merged = NULL;
        comb_arg *arg = calloc(1, sizeof *arg);
        assert_non_null(arg);
        arg->q = q;
        em_fold reduce_fold = {agg_comb, arg, sizeof(acc)};
        assert_non_null(merged = em_combiner_new_fold(&reduce_fold, 16));
        for (size_t i = 0; i < em_combiner_size(batch); i++) {
            ember_record rec;
            em_combiner_get(batch, i, &rec, NULL);
            assert_int_equal(em_combiner_add(merged, &rec), EMBER_OK);
        }
        em_combiner_free(batch);
        batch = merged;
        err[0] = '\0';
        int rc =
            em_window_reduce(states, &q->node, q->partition, EMBER__REDUCER__REDUCER_UNSPECIFIED,
                             &reduce_fold, batch, collect, out, err, errlen);
        em_combiner_free(batch);
        free(arg); /* a state kept with this fold would use it after this */
        return rc;
    }
    err[0] = '\0';
    int rc = em_window_reduce(states, &q->node, q->partition, EMBER__REDUCER__REDUCER_SUM_I64, NULL,
                              batch, collect, out, err, errlen);
    em_combiner_free(batch);
    return rc;
}

/* check_batch runs batch b and compares its output and late records with the reference */
static void check_batch(query *q, em_state_cache *states, int b)
{
    collector got = {0}, want = {0};
    char err[512];
    int64_t late;
    int rc = run_batch(q, states, b, &got, &late, err, sizeof err);
    if (rc != EMBER_OK) fail_msg("batch %d: %s", b, err);
    reference(q, b, &want);
    assert_same(&got, &want);
    assert_int_equal(late, late_in(q, b));
    collector_free(&got);
    collector_free(&want);
}

/* state_file: the path of partition file `version`.`kind` */
static void state_file(const query *q, int64_t version, const char *kind, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%u/%lld.%s", q->dir, q->partition, (long long)version, kind);
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* entries_in: the panes a state file holds (its cut, 8 bytes, then a record batch) */
static int64_t entries_in(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t data[1 << 16];
    size_t len = fread(data, 1, sizeof data, f);
    assert_true(len >= 8 && len < sizeof data && feof(f));
    fclose(f);
    int64_t count;
    assert_int_equal(em_batch_count(data + 8, len - 8, &count), EMBER_OK);
    return count;
}

static int files_in(const query *q)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/%u", q->dir, q->partition);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* ---- map side ---- */

static void test_map_panes_keys_and_counts(void **state)
{
    (void)state;
    Ember__Node node;
    ember__node__init(&node);
    node.kind = EMBER__NODE_KIND__NODE_WINDOW;
    node.window_length_ms = 30;
    node.window_slide_ms = 10;
    node.watermark_ms = NONE;
    em_window_mapper m;
    em_window_mapper_init(&m, &node);
    assert_int_equal(m.has_event_time, 0);
    static const int64_t times[] = {0, 9, 10, -1, -10, -11, 1234567};
    static const int64_t panes[] = {0, 0, 1, -1, -1, -2, 123456};
    int64_t seven = 7;
    for (size_t i = 0; i < sizeof times / sizeof *times; i++) {
        ember_record in = {"key", 3, &seven, 8, times[i]}, out;
        assert_int_equal(em_window_map(&m, &in, &out), 1);
        uint8_t want[11];
        for (int k = 0; k < 8; k++) want[k] = (uint8_t)((uint64_t)panes[i] >> (56 - 8 * k));
        memcpy(want + 8, "key", 3);
        assert_int_equal(out.key_len, 11);
        assert_memory_equal(out.key, want, 11);
        assert_ptr_equal(out.value, &seven); /* not a count: the value as is */
        assert_int_equal(out.value_len, 8);
        assert_int_equal(out.timestamp, times[i]);
        assert_true(em_window_key_hash(&out) == em_hash64("key", 3));
    }
    assert_int_equal(m.has_event_time, 1);
    assert_int_equal(m.max_event_time, 1234567);
    assert_int_equal(m.late, 0);

    /* an empty key: the composite key is the pane alone */
    ember_record empty = {"", 0, &seven, 8, 25}, out;
    assert_int_equal(em_window_map(&m, &empty, &out), 1);
    assert_int_equal(out.key_len, 8);
    assert_true(em_window_key_hash(&out) == em_hash64("", 0));
    em_window_mapper_free(&m);

    /* a count: every value becomes int64 1 */
    node.window_count = 1;
    em_window_mapper_init(&m, &node);
    ember_record text = {"k", 1, "anything at all", 15, -5};
    assert_int_equal(em_window_map(&m, &text, &out), 1);
    int64_t one;
    assert_int_equal(out.value_len, 8);
    memcpy(&one, out.value, 8);
    assert_int_equal(one, 1);
    assert_int_equal(m.max_event_time, -5);
    em_window_mapper_free(&m);
}

static void test_map_late_records(void **state)
{
    (void)state;
    Ember__Node node;
    ember__node__init(&node);
    node.kind = EMBER__NODE_KIND__NODE_WINDOW;
    node.window_length_ms = 30;
    node.window_slide_ms = 10;
    node.watermark_ms = 40; /* late: event times before 40 */
    em_window_mapper m;
    em_window_mapper_init(&m, &node);
    static const struct {
        int64_t t;
        int use;
    } cases[] = {{39, 0}, {40, 1}, {10, 0}, {-1, 0}, {-1000, 0}, {45, 1}, {5, 0}};
    int64_t v = 1;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ember_record in = {"a", 1, &v, 8, cases[i].t}, out;
        assert_int_equal(em_window_map(&m, &in, &out), cases[i].use);
    }
    assert_int_equal(m.late, 5);
    assert_int_equal(m.max_event_time, 45);
    em_window_mapper_free(&m);

    /* only late records: the largest event time is still theirs */
    em_window_mapper_init(&m, &node);
    ember_record a = {"a", 1, &v, 8, -50}, b = {"a", 1, &v, 8, 3}, out;
    assert_int_equal(em_window_map(&m, &a, &out), 0);
    assert_int_equal(em_window_map(&m, &b, &out), 0);
    assert_int_equal(m.late, 2);
    assert_int_equal(m.has_event_time, 1);
    assert_int_equal(m.max_event_time, 3);
    em_window_mapper_free(&m);
}

/* ---- reduce side ---- */

static void test_tumbling_windows_emitted_once(void **state)
{
    (void)state;
    static const ev evs[] = {
        {"a", 1, 1, 0},    {"a", 9, 2, 0},   {"a", 12, 4, 0}, {"b", 15, 8, 0},
        {"b", 25, 16, 0},  {"c", -3, 32, 0}, {"a", 5, 64, 1}, /* late in batch 1 */
        {"a", 22, 128, 1},
    };
    static const int64_t wm[] = {NONE, 20, 20, 30};
    query q;
    query_init(&q, 10, 10, evs, sizeof evs / sizeof *evs, wm);
    em_state_cache *states = em_state_cache_new();
    assert_non_null(states);
    char err[512];
    int64_t late;

    collector got = {0};
    assert_int_equal(run_batch(&q, states, 0, &got, &late, err, sizeof err), EMBER_OK);
    assert_int_equal(got.n, 0); /* no watermark yet: nothing final */

    assert_int_equal(run_batch(&q, states, 1, &got, &late, err, sizeof err), EMBER_OK);
    assert_int_equal(late, 1);
    collector want = {0};
    expect(&want, "a", 0, 3);
    expect(&want, "a", 10, 4);
    expect(&want, "b", 10, 8);
    expect(&want, "c", -10, 32);
    assert_same(&got, &want);

    got.n = want.n = 0;
    assert_int_equal(run_batch(&q, states, 2, &got, &late, err, sizeof err), EMBER_OK);
    assert_int_equal(got.n, 0); /* the same watermark: never twice */

    assert_int_equal(run_batch(&q, states, 3, &got, &late, err, sizeof err), EMBER_OK);
    expect(&want, "a", 20, 128);
    expect(&want, "b", 20, 16);
    assert_same(&got, &want);

    /* the files are where the header says */
    char path[256];
    state_file(&q, 3, "delta", path, sizeof path);
    assert_true(exists(path));
    collector_free(&got);
    collector_free(&want);
    em_state_cache_free(states);
    query_free(&q);
}

/* a stream for sliding windows (length 30, slide 10): several panes per key, negative times,
 * "gap" with hundreds of empty panes between its records (panes 200 and 500 final in one
 * batch); every record arrives while all its windows are open, or after all are final */
static const ev sliding_evs[] = {
    {"a", -12, 1, 0},    {"a", 3, 2, 0},       {"b", 7, 4, 0},       {"gap", 3, 8, 0},
    {"a", 15, 16, 0},    {"a", 21, 32, 1},     {"b", 8, 64, 1},      {"c", 40, 128, 1},
    {"gap", 9, 256, 1},  {"a", 33, 512, 2},    {"c", 45, 1024, 2},   {"a", 38, 2048, 3},
    {"a", 61, 4096, 4},  {"gap", 5003, 1, 4},  {"gap", 2004, 23, 4}, {"b", 1005, 3, 5},
    {"gap", 5010, 5, 5}, {"a", 1002, 7, 5},    {"c", 6000, 11, 6},   {"a", 6010, 13, 7},
    {"b", 6001, 17, 7},  {"gap", 6005, 19, 8},
};
static const int64_t sliding_wm[] = {NONE, 5, 30, 30, 60, 1000, 6000, 6000, 6050, 9000};
#define SLIDING_BATCHES ((int)(sizeof sliding_wm / sizeof *sliding_wm))

static void test_sliding_windows_match_reference(void **state)
{
    (void)state;
    query q;
    query_init(&q, 30, 10, sliding_evs, sizeof sliding_evs / sizeof *sliding_evs, sliding_wm);
    em_state_cache *states = em_state_cache_new();
    for (int b = 0; b < SLIDING_BATCHES; b++) check_batch(&q, states, b);

    /* spot checks of the reference itself, by hand */
    collector want = {0};
    reference(&q, 1, &want); /* windows ending in (-inf, 5]: a@-12's first two */
    assert_int_equal(want.n, 2);
    assert_string_equal(want.r[0].key, "a");
    assert_int_equal(want.r[0].start, -40);
    assert_int_equal(want.r[0].value.h, 1);
    assert_int_equal(want.r[1].start, -30);
    want.n = 0;
    reference(&q, 2, &want); /* ends in (5, 30]: starts -20, -10, 0 */
    assert_int_equal(want.n, 9);
    assert_int_equal(want.r[1].start, -10); /* a: 3, 15 */
    assert_int_equal(want.r[1].value.h, 2 + 16);
    assert_int_equal(want.r[2].start, 0); /* a: 3, 15, 21 */
    assert_int_equal(want.r[2].value.h, 2 + 16 + 32);
    assert_string_equal(want.r[6].key, "gap");
    assert_int_equal(want.r[6].value.h, 8 + 256);
    collector_free(&want);
    em_state_cache_free(states);
    query_free(&q);
}

static void test_state_reloaded_from_files(void **state)
{
    (void)state;
    query q;
    query_init(&q, 30, 10, sliding_evs, sizeof sliding_evs / sizeof *sliding_evs, sliding_wm);
    em_state_cache *first = em_state_cache_new();
    for (int b = 0; b <= 4; b++) check_batch(&q, first, b);

    /* batch 5 on another executor: its state is read from 0.delta .. 4.delta */
    em_state_cache *other = em_state_cache_new();
    check_batch(&q, other, 5);
    collector from_files = {0}, from_memory = {0};
    char err[512];
    assert_int_equal(run_batch(&q, other, 6, &from_files, NULL, err, sizeof err), EMBER_OK);

    /* the first executor, whose memory holds version 4, runs batch 5 then 6 as well */
    check_batch(&q, first, 5);
    assert_int_equal(run_batch(&q, first, 6, &from_memory, NULL, err, sizeof err), EMBER_OK);
    assert_true(from_files.n > 0);
    assert_same(&from_files, &from_memory);

    /* and a third executor takes over at batch 7 */
    em_state_cache *third = em_state_cache_new();
    for (int b = 7; b < SLIDING_BATCHES; b++) check_batch(&q, third, b);
    collector_free(&from_files);
    collector_free(&from_memory);
    em_state_cache_free(first);
    em_state_cache_free(other);
    em_state_cache_free(third);
    query_free(&q);
}

static void test_batch_run_again(void **state)
{
    (void)state;
    query q;
    query_init(&q, 30, 10, sliding_evs, sizeof sliding_evs / sizeof *sliding_evs, sliding_wm);
    em_state_cache *states = em_state_cache_new();
    char err[512];
    for (int b = 0; b < SLIDING_BATCHES; b++) {
        collector once = {0}, again = {0};
        assert_int_equal(run_batch(&q, states, b, &once, NULL, err, sizeof err), EMBER_OK);
        /* a crash after the batch: it runs again from the state its first run started from */
        assert_int_equal(run_batch(&q, states, b, &again, NULL, err, sizeof err), EMBER_OK);
        assert_same(&again, &once);
        collector want = {0};
        reference(&q, b, &want);
        assert_same(&again, &want);
        collector_free(&once);
        collector_free(&again);
        collector_free(&want);
    }
    em_state_cache_free(states);
    query_free(&q);
}

#define LONG_BATCHES 165

static void test_many_versions_snapshots_and_cleanup(void **state)
{
    (void)state;
    /* each batch b: keys k0..k2 with records at 10b + 3 and 10b + 7 (one pane), read while all
     * their windows are open; the watermark trails by 25 ms */
    ev *evs = calloc(LONG_BATCHES * 2, sizeof *evs);
    int64_t *wm = calloc(LONG_BATCHES, sizeof *wm);
    static const char *const keys[] = {"k0", "k1", "k2"};
    assert_non_null(evs);
    assert_non_null(wm);
    for (int b = 0; b < LONG_BATCHES; b++) {
        evs[2 * b] = (ev){keys[b % 3], 10 * b + 3, b + 1, b};
        evs[2 * b + 1] = (ev){keys[(b + 1) % 3], 10 * b + 7, 1000 * (b + 1), b};
        wm[b] = b < 3 ? NONE : 10 * b - 25;
    }
    query q;
    query_init(&q, 30, 10, evs, LONG_BATCHES * 2, wm);
    em_state_cache *states = em_state_cache_new();
    char path[256];
    for (int b = 0; b < LONG_BATCHES; b++) {
        check_batch(&q, states, b);
        if (b == 149) assert_int_equal(files_in(&q), 149 + 2); /* deltas 1..149, 50, 100 */
        if (b == 100) {
            state_file(&q, 0, "delta", path, sizeof path); /* 100 versions back */
            assert_false(exists(path));
        }
    }
    /* after version 150: deltas 51..164, snapshots 100 and 150; versions <= 50 gone */
    assert_int_equal(files_in(&q), 114 + 2);
    for (int64_t v = 0; v <= 50; v++) {
        state_file(&q, v, "delta", path, sizeof path);
        assert_false(exists(path));
        state_file(&q, v, "snapshot", path, sizeof path);
        assert_false(exists(path));
    }
    /* snapshot 150 holds the panes open windows need alone: watermark 1475 made the windows
     * starting at 1440 or before final, so panes 145..150, each of two keys */
    state_file(&q, 150, "snapshot", path, sizeof path);
    assert_int_equal(entries_in(path), 6 * 2);

    /* fresh executors: from snapshot 150 alone, from it and deltas, from snapshot 100 and
     * deltas 101..149 (batch 150 run again), each exact */
    static const int from[] = {151, 164, 150, 160};
    for (size_t i = 0; i < sizeof from / sizeof *from; i++) {
        em_state_cache *fresh = em_state_cache_new();
        check_batch(&q, fresh, from[i]);
        em_state_cache_free(fresh);
    }
    /* the first executor, whose memory holds version 164, runs 161.. again from the files */
    for (int b = 161; b < LONG_BATCHES; b++) check_batch(&q, states, b);
    em_state_cache_free(states);
    query_free(&q);
    free(evs);
    free(wm);
}

static void test_missing_state_file(void **state)
{
    (void)state;
    query q;
    query_init(&q, 30, 10, sliding_evs, sizeof sliding_evs / sizeof *sliding_evs, sliding_wm);
    em_state_cache *states = em_state_cache_new();
    for (int b = 0; b <= 3; b++) check_batch(&q, states, b);
    char path[256];
    state_file(&q, 2, "delta", path, sizeof path);
    assert_int_equal(unlink(path), 0);

    /* another executor must read the files: an error naming the missing one */
    em_state_cache *other = em_state_cache_new();
    collector got = {0};
    char err[512];
    assert_int_equal(run_batch(&q, other, 4, &got, NULL, err, sizeof err), EMBER_ERR_NOT_FOUND);
    assert_int_equal(got.n, 0);
    if (!strstr(err, path) || !strstr(err, "missing")) fail_msg("unclear error: %s", err);
    state_file(&q, 4, "delta", path, sizeof path);
    assert_false(exists(path)); /* nothing stored */

    /* the executor holding version 3 in memory needs no file */
    check_batch(&q, states, 4);
    collector_free(&got);
    em_state_cache_free(other);
    em_state_cache_free(states);
    query_free(&q);
}

static void test_late_records_counted_not_emitted(void **state)
{
    (void)state;
    /* a count over sliding windows (30, slide 10); batch 1's watermark 40 makes a@5, b@19 and
     * a@-100 late; a@45 and b@47 are ahead of it */
    static const ev evs[] = {
        {"a", 1, 0, 0},  {"a", 2, 0, 0},  {"b", 14, 0, 0},   {"a", 5, 0, 1},  {"b", 19, 0, 1},
        {"a", 45, 0, 1}, {"b", 47, 0, 1}, {"a", -100, 0, 1}, {"b", 11, 0, 2}, /* late in 2 */
    };
    static const int64_t wm[] = {NONE, 40, 80};
    query q;
    query_init(&q, 30, 10, evs, sizeof evs / sizeof *evs, wm);
    q.node.window_count = 1;
    em_state_cache *states = em_state_cache_new();
    collector got = {0}, want = {0};
    char err[512];
    int64_t late;
    assert_int_equal(run_batch(&q, states, 0, &got, &late, err, sizeof err), EMBER_OK);
    assert_int_equal(late, 0);
    assert_int_equal(got.n, 0);

    assert_int_equal(run_batch(&q, states, 1, &got, &late, err, sizeof err), EMBER_OK);
    assert_int_equal(late, 3);
    expect(&want, "a", -20, 2); /* a@1, a@2 only */
    expect(&want, "a", -10, 2);
    expect(&want, "a", 0, 2);
    expect(&want, "b", -10, 1); /* b@14 only */
    expect(&want, "b", 0, 1);
    expect(&want, "b", 10, 1);
    assert_same(&got, &want);

    got.n = want.n = 0;
    assert_int_equal(run_batch(&q, states, 2, &got, &late, err, sizeof err), EMBER_OK);
    assert_int_equal(late, 1);
    expect(&want, "a", 20, 1); /* a@45 */
    expect(&want, "a", 30, 1);
    expect(&want, "a", 40, 1);
    expect(&want, "b", 20, 1); /* b@47 */
    expect(&want, "b", 30, 1);
    expect(&want, "b", 40, 1);
    assert_same(&got, &want);
    for (int b = 0; b < 3; b++) assert_int_equal(late_in(&q, b), b == 0 ? 0 : b == 1 ? 3 : 1);
    collector_free(&got);
    collector_free(&want);
    em_state_cache_free(states);
    query_free(&q);
}

/* an aggregate: several records per pane and batch, panes combined across batches; each batch
 * runs on the executor that ran the one before (its state in memory, given this task's fold)
 * and again on a fresh one (its state from the files) */
static const ev agg_evs[] = {
    {"x", 1, 1, 0},  {"x", 2, 2, 0},   {"x", 5, 3, 0},   {"x", 12, 4, 0},  {"y", -3, 5, 0},
    {"y", -8, 6, 0}, {"x", 3, 5, 1},   {"x", 14, 6, 1},  {"x", 25, 7, 1},  {"y", 0, 8, 1},
    {"x", 22, 9, 2}, {"x", 27, 10, 2}, {"y", 31, 11, 2}, {"x", 70, 12, 3}, {"y", 65, 13, 3},
};
static const int64_t agg_wm[] = {NONE, 0, 20, 60, 200};

static void test_aggregate_panes_in_event_time_order(void **state)
{
    (void)state;
    query q;
    query_init(&q, 30, 10, agg_evs, sizeof agg_evs / sizeof *agg_evs, agg_wm);
    q.aggregate = 1;
    q.node.reducer = EMBER__REDUCER__REDUCER_UNSPECIFIED;
    em_state_cache *states = em_state_cache_new();
    for (int b = 0; b < (int)(sizeof agg_wm / sizeof *agg_wm); b++) {
        check_batch(&q, states, b);
        em_state_cache *fresh = em_state_cache_new();
        check_batch(&q, fresh, b);
        em_state_cache_free(fresh);
    }
    /* the reference by hand: batch 1 emits [-30, 0) of y alone: y@-3 then y@-8 */
    collector want = {0};
    reference(&q, 1, &want);
    assert_int_equal(want.n, 1);
    assert_string_equal(want.r[0].key, "y");
    assert_int_equal(want.r[0].start, -30);
    assert_int_equal(want.r[0].value.h, 5 * 3 + 6);
    assert_int_equal(want.r[0].value.n, 2);
    /* and [0, 30) of x in batch 3: pane 0 = (batch 0: 1, 2, 5) then (batch 1: 3), pane 1 =
     * (batch 0: 12) then (batch 1: 14), pane 2 = (batch 1: 25) then (batch 2: 22, 27) */
    want.n = 0;
    reference(&q, 3, &want);
    int64_t pane0 = ((1 * 3 + 2) * 3 + 3) * 7 + 5, pane1 = 4 * 7 + 6, pane2 = 7 * 7 + 9 * 3 + 10;
    size_t i = 0;
    while (i < want.n && !(strcmp(want.r[i].key, "x") == 0 && want.r[i].start == 0)) i++;
    assert_true(i < want.n);
    assert_int_equal(want.r[i].value.h, (pane0 * 7 + pane1) * 7 + pane2);
    assert_int_equal(want.r[i].value.n, 9);
    collector_free(&want);
    em_state_cache_free(states);
    query_free(&q);
}

#define PARTITIONS 70 /* more than an em_window_states keeps */

static void test_more_partitions_than_cached(void **state)
{
    (void)state;
    query q;
    query_init(&q, 30, 10, sliding_evs, sizeof sliding_evs / sizeof *sliding_evs, sliding_wm);
    em_state_cache *states = em_state_cache_new();
    for (int b = 0; b < SLIDING_BATCHES; b++)
        for (int i = 0; i < PARTITIONS; i++) {
            int p = b % 2 ? PARTITIONS - 1 - i : i; /* some states in memory, others evicted */
            q.partition = (uint32_t)p;
            q.scale = p + 1; /* each partition its own values */
            check_batch(&q, states, b);
        }
    em_state_cache_free(states);
    query_free(&q);
}

static void test_update_mode_emits_changed_windows(void **state)
{
    (void)state;
    /* sliding windows (30, slide 10); each batch emits the windows its records changed that
     * were not final before it, with their values so far */
    static const ev evs[] = {
        {"a", 1, 1, 0},
        {"a", 12, 2, 0},
        {"b", 25, 4, 0},
        {"a", 14, 8, 1},
        {"b", 41, 16, 1},
        {"a", 3, 32, 2},
        /* late in 2 */ {"a", 55, 64, 2},
        {"b", 44, 128, 2},
        {"c", 70, 256, 3},
        {"a", 61, 512, 3},
    };
    static const int64_t wm[] = {NONE, 10, 30, 50};
    query q;
    query_init(&q, 30, 10, evs, sizeof evs / sizeof *evs, wm);
    q.node.window_updates = 1;
    em_state_cache *states = em_state_cache_new();
    for (int b = 0; b < 4; b++) {
        collector got = {0}, want = {0};
        char err[512];
        if (run_batch(&q, states, b, &got, NULL, err, sizeof err) != EMBER_OK)
            fail_msg("batch %d: %s", b, err);
        reference_updates(&q, b, &want);
        assert_true(want.n > 0);
        assert_same(&got, &want);
        collector_free(&got);
        collector_free(&want);
    }
    em_state_cache_free(states);
    query_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_panes_keys_and_counts),
        cmocka_unit_test(test_map_late_records),
        cmocka_unit_test(test_tumbling_windows_emitted_once),
        cmocka_unit_test(test_sliding_windows_match_reference),
        cmocka_unit_test(test_state_reloaded_from_files),
        cmocka_unit_test(test_batch_run_again),
        cmocka_unit_test(test_many_versions_snapshots_and_cleanup),
        cmocka_unit_test(test_missing_state_file),
        cmocka_unit_test(test_late_records_counted_not_emitted),
        cmocka_unit_test(test_aggregate_panes_in_event_time_order),
        cmocka_unit_test(test_more_partitions_than_cached),
        cmocka_unit_test(test_update_mode_emits_changed_windows),
    };
    return cmocka_run_group_tests(tests, NULL, remove_made_dirs);
}
