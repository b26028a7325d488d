/* em_job_bounded.c -- actions whose result is small whatever the dataset: take, first, top,
 * reduce, and foreach (no result at all).
 *
 * Each adds a map_partitions of ember's own (an ember_builtin_* below, run on the executors)
 * that keeps what its partition contributes -- its first n records, its n largest, its values
 * folded into one -- and collects only that: at most n (or one) records per partition travel
 * to the submitter, which finishes the work on them. Ties in top are broken the same way on
 * both sides, so the result depends only on the data.
 */
#include <ember/ember.h>
#include <stdlib.h>
#include <string.h>

#include "em_combine.h"
#include "em_job_ctx.h"

/* ---- ordering for top -------------------------------------------------------------------- */

typedef struct top_arg {
    uint64_t n;
    uint32_t by; /* ember_order */
} top_arg;

static int bytes_cmp(const void *a, size_t a_len, const void *b, size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    return c ? c : (a_len > b_len) - (a_len < b_len);
}

/* value_cmp compares 8-byte values as int64 or double; other sizes order before 8 bytes */
static int value_cmp(const ember_record *a, const ember_record *b, ember_order by)
{
    int a8 = a->value_len == 8, b8 = b->value_len == 8;
    if (!a8 || !b8) return a8 - b8;
    if (by == EMBER_BY_I64) {
        int64_t x = ember_value_i64(a), y = ember_value_i64(b);
        return (x > y) - (x < y);
    }
    double x = ember_value_f64(a), y = ember_value_f64(b);
    return (x > y) - (x < y);
}

/* order: > 0 when a ranks above b: by key or value, then key bytes, then value bytes */
static int order(const ember_record *a, const ember_record *b, ember_order by)
{
    int c = by == EMBER_BY_KEY ? 0 : value_cmp(a, b, by);
    if (!c) c = bytes_cmp(a->key, a->key_len, b->key, b->key_len);
    if (!c) c = bytes_cmp(a->value, a->value_len, b->value, b->value_len);
    return c;
}

/* heap: the n largest so far, smallest at the root */
typedef struct heap {
    ember_record *r;
    size_t n, cap;
    ember_order by;
} heap;

static void sift_down(heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < h->n && order(&h->r[l], &h->r[m], h->by) < 0) m = l;
        if (l + 1 < h->n && order(&h->r[l + 1], &h->r[m], h->by) < 0) m = l + 1;
        if (m == i) return;
        ember_record t = h->r[i];
        h->r[i] = h->r[m];
        h->r[m] = t;
        i = m;
    }
}

static void heap_offer(heap *h, const ember_record *rec)
{
    if (h->n < h->cap) {
        size_t i = h->n++;
        h->r[i] = *rec;
        while (i > 0 && order(&h->r[i], &h->r[(i - 1) / 2], h->by) < 0) {
            ember_record t = h->r[i];
            h->r[i] = h->r[(i - 1) / 2];
            h->r[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    } else if (h->cap > 0 && order(rec, &h->r[0], h->by) > 0) {
        h->r[0] = *rec;
        sift_down(h, 0);
    }
}

/* ---- what each partition keeps (executors) ------------------------------------------------- */

int ember_builtin_take(ember_task *task, ember_iter *in)
{
    size_t len;
    const uint64_t *n = ember_task_arg(task, &len);
    if (len != sizeof *n) return ember_task_fail(task, "take: no count");
    ember_record rec;
    int rc = EMBER_OK;
    for (uint64_t i = 0; rc == EMBER_OK && i < *n && ember_next(in, &rec) > 0; i++)
        rc = ember_emit(task, &rec);
    return rc; /* the rest of the partition is never read */
}

int ember_builtin_top(ember_task *task, ember_iter *in)
{
    size_t len;
    const top_arg *a = ember_task_arg(task, &len);
    if (len != sizeof *a) return ember_task_fail(task, "top: no count");
    heap h = {malloc((a->n ? a->n : 1) * sizeof *h.r), 0, a->n, (ember_order)a->by};
    if (!h.r)
        return ember_task_fail(task, "top: out of memory for %llu records",
                               (unsigned long long)a->n);
    ember_record rec;
    while (ember_next(in, &rec) > 0) heap_offer(&h, &rec); /* input records outlive the loop */
    int rc = EMBER_OK;
    for (size_t i = 0; rc == EMBER_OK && i < h.n; i++) rc = ember_emit(task, &h.r[i]);
    free(h.r);
    return rc;
}

/* fold_all folds the 8-byte values of n records with reducer r; 0 records: *found = 0 */
static int fold_all(ember_reducer r, const ember_record *recs, size_t n, ember_iter *in,
                    ember_task *task, uint8_t out[8], int *found)
{
    em_combiner *c = em_combiner_new((Ember__Reducer)r, 1);
    if (!c) return EMBER_ERR_NOMEM;
    ember_record rec;
    int rc = EMBER_OK;
    for (size_t i = 0; rc == EMBER_OK && (in ? ember_next(in, &rec) > 0 : i < n); i++) {
        ember_record one = in ? rec : recs[i];
        one.key_len = 0; /* every record folds into one accumulator */
        rc = em_combiner_add(c, &one);
        if (rc == EMBER_ERR_INVALID && task)
            rc = ember_task_fail(task, "reduce: a value of %zu bytes (8 expected)", one.value_len);
    }
    *found = rc == EMBER_OK && em_combiner_size(c) == 1;
    if (*found) {
        ember_record acc;
        em_combiner_get(c, 0, &acc, NULL);
        memcpy(out, acc.value, 8);
    }
    em_combiner_free(c);
    return rc;
}

int ember_builtin_reduce(ember_task *task, ember_iter *in)
{
    size_t len;
    const uint32_t *r = ember_task_arg(task, &len);
    if (len != sizeof *r) return ember_task_fail(task, "reduce: no reducer");
    uint8_t acc[8];
    int found;
    int rc = fold_all((ember_reducer)*r, NULL, 0, in, task, acc, &found);
    if (rc == EMBER_ERR_NOMEM) return ember_task_fail(task, "reduce: out of memory");
    return rc == EMBER_OK && found ? ember_emit_kv(task, "", 0, acc, 8, 0) : rc;
}

/* ---- the actions (submitter) ---------------------------------------------------------------- */

/* collect_kept collects what `symbol` keeps of each partition of ds */
static int collect_kept(ember_dataset *ds, const char *symbol, const void *arg, size_t len,
                        ember_collected *out)
{
    ember_dataset *kept =
        em_add_builtin(ds, EMBER__NODE_KIND__NODE_MAP_PARTITIONS, symbol, arg, len);
    return ember_collect(kept, out);
}

int ember_take(ember_dataset *ds, size_t n, ember_collected *out)
{
    uint64_t want = n;
    int rc = collect_kept(ds, "ember_builtin_take", &want, sizeof want, out);
    if (rc == EMBER_OK && out->n > n) out->n = n; /* partition order: the first n */
    return rc;
}

int ember_first(ember_dataset *ds, ember_record *out)
{
    ember_collected c;
    int rc = ember_take(ds, 1, &c);
    if (rc != EMBER_OK) return rc;
    if (c.n == 0) return EMBER_ERR_NOT_FOUND; /* not an error of the job: no sticky error */
    *out = c.records[0];
    return EMBER_OK;
}

static ember_order
    sort_by; /* the order for qsort below (the submitter runs one action at a time) */

static int above_first(const void *x, const void *y) { return order(y, x, sort_by); }

int ember_top(ember_dataset *ds, size_t n, ember_order by, ember_collected *out)
{
    if (!ds || !ds->ctx) return EMBER_ERR_INVALID;
    if (by != EMBER_BY_KEY && by != EMBER_BY_I64 && by != EMBER_BY_F64)
        return em_ctx_fail(ds->ctx, EMBER_ERR_INVALID, "top: unknown order %d", (int)by);
    top_arg a = {n, (uint32_t)by};
    int rc = collect_kept(ds, "ember_builtin_top", &a, sizeof a, out);
    if (rc != EMBER_OK) return rc;
    sort_by = by;
    if (out->n > 1) qsort((ember_record *)out->records, out->n, sizeof *out->records, above_first);
    if (out->n > n) out->n = n;
    return EMBER_OK;
}

int ember_reduce(ember_dataset *ds, ember_reducer reducer, void *out)
{
    if (!ds || !ds->ctx) return EMBER_ERR_INVALID;
    if (!em_reducer_valid((int)reducer))
        return em_ctx_fail(ds->ctx, EMBER_ERR_INVALID, "reduce: unknown reducer %d", (int)reducer);
    uint32_t r = (uint32_t)reducer;
    ember_collected c;
    int rc = collect_kept(ds, "ember_builtin_reduce", &r, sizeof r, &c);
    if (rc != EMBER_OK) return rc;
    uint8_t acc[8];
    int found;
    if ((rc = fold_all(reducer, c.records, c.n, NULL, NULL, acc, &found)) != EMBER_OK)
        return em_ctx_fail(ds->ctx, rc, "reduce: %s", ember_strerror(rc));
    if (!found) return EMBER_ERR_NOT_FOUND; /* an empty dataset has no reduction */
    memcpy(out, acc, 8);
    return EMBER_OK;
}

int ember_foreach(ember_dataset *ds, ember_map_fn fn, const void *arg, size_t arg_len)
{
    int64_t ignored;
    return ember_count(ember_flat_map(ds, fn, arg, arg_len), &ignored);
}
