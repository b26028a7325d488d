/* em_flow_agg.c -- the aggregate node: parameters, and the self-describing accumulator
 * (em_flow_agg.h). State per aggregate: `v` (an int64 or a double: the sum, min or max) and
 * `n` (records folded); min and max take the first value as it is (n == 0 means none yet).
 * A distinct_count keeps its values' hashes in a block of its own after the states
 * (em_distinct.h): 2,056 bytes (exact up to 256 values) when it is the node's only one, 1,032
 * (exact up to 128) when there are two or three.
 */
#include "em_flow_agg.h"

#define XXH_INLINE_ALL /* the job library links no xxhash */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "em_distinct.h"

#include "em_flow_fn.h"
#include "em_flow_int.h"
#include "em_row.h"

#define ACC_HEADER   16
#define DISTINCT_MAX 3 /* distinct_counts of one node */

typedef struct agg_state {
    union {
        int64_t i;
        double f;
    } v;
    int64_t n;
} agg_state;

static const char *const AGG_NAMES[] = {"sum", "min", "max", "count", "avg", "distinct_count"};

/* ---- the accumulator's layout, from its header ------------------------------------------- */

static int header_distincts(const uint8_t *h)
{
    int k = 0;
    for (int a = 0; a < h[0]; a++) k += (h[1 + a] >> 4) == AGG_DISTINCT;
    return k;
}

/* distinct_precision: the blocks' precision for k distinct_counts */
static int distinct_precision(int k) { return k == 1 ? 11 : 10; }

/* layout_len: the accumulator's bytes as its header says (the header must be valid) */
static size_t layout_len(const uint8_t *h)
{
    int k = header_distincts(h);
    return ACC_HEADER + (size_t)h[0] * sizeof(agg_state) +
           (k ? (size_t)k * em_distinct_bytes(distinct_precision(k)) : 0);
}

/* distinct_offset: where the block of aggregate a (a distinct_count) starts */
static size_t distinct_offset(const uint8_t *h, int a)
{
    int before = 0;
    for (int j = 0; j < a; j++) before += (h[1 + j] >> 4) == AGG_DISTINCT;
    return ACC_HEADER + (size_t)h[0] * sizeof(agg_state) +
           (size_t)before * em_distinct_bytes(distinct_precision(header_distincts(h)));
}

/* valid_header: a header of known aggregates and types, within the limits */
static int valid_header(const uint8_t *h)
{
    if (h[0] > AGGS_MAX) return 0;
    for (int a = 0; a < h[0]; a++)
        if ((h[1 + a] >> 4) > AGG_DISTINCT || (h[1 + a] & 15) >= EM_T_COUNT) return 0;
    return header_distincts(h) <= DISTINCT_MAX;
}

/* value_hash: the hash a distinct_count counts a value by (a double's -0 as 0) */
static uint64_t value_hash(em_type t, const em_value *v)
{
    if (t == EM_T_STRING) return XXH3_64bits(v->s, v->len);
    int64_t bits = v->i;
    if (t == EM_T_DOUBLE && v->f == 0) bits = 0;
    return XXH3_64bits(&bits, sizeof bits);
}

static int compile_one(em_node *n, json_t *spec, int k, em_schema *out, char *err, size_t errlen)
{
    static const char *const keys[] = {"op", "column", "as", NULL};
    const char *opname, *column, *as;
    if (!json_is_object(spec) || param_check(spec, keys, err, errlen) != 0 ||
        param_str(spec, "op", 1, NULL, &opname, err, errlen) != 0 ||
        param_str(spec, "column", 0, NULL, &column, err, errlen) != 0 ||
        param_str(spec, "as", 1, NULL, &as, err, errlen) != 0) {
        if (!json_is_object(spec))
            snprintf(err, errlen, "aggregates: entry %d must be {\"op\", \"column\", \"as\"}",
                     k + 1);
        return -1;
    }
    agg_spec *a = &n->aggs[k];
    int op = -1;
    for (int o = 0; o < (int)(sizeof AGG_NAMES / sizeof AGG_NAMES[0]); o++)
        if (strcmp(opname, AGG_NAMES[o]) == 0) op = o;
    if (op < 0) {
        snprintf(err, errlen,
                 "aggregates: '%s' is not an aggregate (sum, min, max, count, avg, "
                 "distinct_count)",
                 opname);
        return -1;
    }
    a->op = (agg_op)op;
    a->col = -1;
    a->type = EM_T_INT;
    if (column) {
        if ((a->col = column_of(&n->in, column, "aggregates", err, errlen)) < 0) return -1;
        a->type = n->in.types[a->col];
    } else if (a->op != AGG_COUNT) {
        snprintf(err, errlen, "aggregates: '%s' needs a column", opname);
        return -1;
    }
    if (a->op != AGG_COUNT && a->op != AGG_DISTINCT && !em_type_numeric(a->type)) {
        snprintf(err, errlen, "aggregates: %s of '%s', a %s column (it needs numbers)", opname,
                 column, em_type_name(a->type));
        return -1;
    }
    em_type result = a->op == AGG_COUNT || a->op == AGG_DISTINCT     ? EM_T_INT
                     : a->op == AGG_AVG                              ? EM_T_DOUBLE
                     : a->op == AGG_SUM && a->type == EM_T_TIMESTAMP ? EM_T_INT
                                                                     : a->type;
    return em_schema_add(out, as, result, err, errlen);
}

/* compile_window reads `window`: {"time": column, "length_s", "slide_s", "delay_s"} */
static int compile_window(em_node *n, json_t *w, char *err, size_t errlen)
{
    static const char *const keys[] = {"time", "length_s", "slide_s", "delay_s", NULL};
    const char *time_col;
    int64_t length, slide, delay;
    n->time_col = -1;
    if (!w) return 0;
    if (!json_is_object(w)) {
        snprintf(err, errlen,
                 "window: {\"time\": column, \"length_s\": N, \"slide_s\": N, "
                 "\"delay_s\": N}");
        return -1;
    }
    if (param_check(w, keys, err, errlen) != 0 ||
        param_str(w, "time", 1, NULL, &time_col, err, errlen) != 0 ||
        param_int(w, "length_s", 0, 1, 366 * 86400, &length, err, errlen) != 0 ||
        param_int(w, "slide_s", length, 1, 366 * 86400, &slide, err, errlen) != 0 ||
        param_int(w, "delay_s", 0, 0, 366 * 86400, &delay, err, errlen) != 0)
        return -1;
    if (length == 0 || length % slide != 0) {
        snprintf(err, errlen, "window: length_s (required) must be a multiple of slide_s");
        return -1;
    }
    if ((n->time_col = column_of(&n->in, time_col, "window", err, errlen)) < 0) return -1;
    if (n->in.types[n->time_col] != EM_T_TIMESTAMP) {
        snprintf(err, errlen, "window: the time column '%s' is a %s, not a timestamp", time_col,
                 em_type_name(n->in.types[n->time_col]));
        return -1;
    }
    n->window_ms = length * 1000;
    n->slide_ms = slide * 1000;
    n->delay_ms = delay * 1000;
    return 0;
}

int em_agg_compile(em_node *n, json_t *params, em_schema *out, char *err, size_t errlen)
{
    static const char *const keys[] = {"by",         "aggregates", "function",
                                       "partitions", "window",     NULL};
    json_t *aggs = json_object_get(params, "aggregates"), *spec;
    json_t *function = json_object_get(params, "function");
    int64_t partitions;
    if (param_check(params, keys, err, errlen) != 0 ||
        param_columns(params, "by", &n->in, n->cols, &n->n_cols, err, errlen) != 0 ||
        param_int(params, "partitions", 0, 0, 100000, &partitions, err, errlen) != 0)
        return -1;
    n->partitions = (int)partitions;
    if ((aggs != NULL) == (function != NULL)) {
        snprintf(err, errlen,
                 "give 'aggregates' (built-in) or 'function' (of the job library), not %s",
                 aggs ? "both" : "neither");
        return -1;
    }
    if (!function &&
        (!json_is_array(aggs) || json_array_size(aggs) == 0 || json_array_size(aggs) > AGGS_MAX)) {
        snprintf(err, errlen,
                 "the parameter 'aggregates' must be an array of 1 to %d "
                 "{\"op\", \"column\", \"as\"}",
                 AGGS_MAX);
        return -1;
    }
    if (compile_window(n, json_object_get(params, "window"), err, errlen) != 0) return -1;
    memset(out, 0, sizeof *out);
    memset(&n->key_schema, 0, sizeof n->key_schema);
    for (int k = 0; k < n->n_cols; k++) {
        const char *name = n->in.names[n->cols[k]];
        em_type t = n->in.types[n->cols[k]];
        if (em_schema_add(out, name, t, err, errlen) != 0 ||
            em_schema_add(&n->key_schema, name, t, err, errlen) != 0)
            return -1;
    }
    if (n->time_col >= 0 && (em_schema_add(out, "window_start", EM_T_TIMESTAMP, err, errlen) != 0 ||
                             em_schema_add(out, "window_end", EM_T_TIMESTAMP, err, errlen) != 0))
        return -1;
    if (function) return em_fn_compile(n, function, out, err, errlen);
    size_t k;
    json_array_foreach(aggs, k,
                       spec) if (compile_one(n, spec, (int)k, out, err, errlen) != 0) return -1;
    n->n_aggs = (int)json_array_size(aggs);
    int distincts = 0;
    for (int a = 0; a < n->n_aggs; a++) distincts += n->aggs[a].op == AGG_DISTINCT;
    if (distincts > DISTINCT_MAX) {
        snprintf(err, errlen, "aggregates: %d distinct_counts (at most %d in one node)", distincts,
                 DISTINCT_MAX);
        return -1;
    }
    uint8_t h[ACC_HEADER]; /* the layout, once: em_agg_acc_len is asked per record */
    h[0] = (uint8_t)n->n_aggs;
    for (int a = 0; a < n->n_aggs; a++) h[1 + a] = (uint8_t)(n->aggs[a].op << 4);
    n->acc_len = layout_len(h);
    return 0;
}

size_t em_agg_acc_len(const em_node *n) { return n->fn.name ? em_fn_acc_len(n) : n->acc_len; }

size_t em_agg_acc_bytes(const void *acc, size_t avail)
{
    const uint8_t *h = acc;
    if (h[0] == EM_FN_MARK) return avail >= EM_FN_HEADER ? em_fn_acc_bytes(acc) : 0;
    return valid_header(h) ? layout_len(h) : 0;
}

void em_agg_zero(const em_node *n, void *acc)
{
    if (n->fn.name) {
        em_fn_zero(n, acc);
        return;
    }
    uint8_t *h = acc;
    memset(acc, 0, em_agg_acc_len(n));
    h[0] = (uint8_t)n->n_aggs;
    for (int k = 0; k < n->n_aggs; k++) h[1 + k] = (uint8_t)(n->aggs[k].op << 4 | n->aggs[k].type);
}

int em_agg_record(const em_node *n, const em_value *cols, void *acc, char *err, size_t errlen)
{
    if (n->fn.name) return em_fn_record(n, cols, acc, err, errlen);
    em_agg_zero(n, acc);
    agg_state *st = (agg_state *)((uint8_t *)acc + ACC_HEADER);
    for (int k = 0; k < n->n_aggs; k++) {
        const agg_spec *a = &n->aggs[k];
        st[k].n = 1;
        if (a->op == AGG_DISTINCT) {
            int p = distinct_precision(header_distincts(acc));
            em_distinct_add((uint8_t *)acc + distinct_offset(acc, k), p,
                            value_hash(a->type, &cols[a->col]));
            continue;
        }
        if (a->col < 0) continue;
        if (a->op == AGG_AVG && a->type != EM_T_DOUBLE)
            st[k].v.f = (double)cols[a->col].i;
        else
            st[k].v.i = cols[a->col].i; /* the int64's or the double's bits */
    }
    return 0;
}

/* fold_one merges state b into a, for aggregate `op` over values of type t */
static int fold_one(agg_op op, em_type t, agg_state *a, const agg_state *b)
{
    int dbl = t == EM_T_DOUBLE || op == AGG_AVG;
    if (b->n == 0) return 0;
    if (a->n == 0 && (op == AGG_MIN || op == AGG_MAX)) {
        *a = *b;
        return 0;
    }
    switch (op) {
    case AGG_SUM:
    case AGG_AVG:
        if (dbl)
            a->v.f += b->v.f;
        else if (__builtin_add_overflow(a->v.i, b->v.i, &a->v.i))
            return -1;
        break;
    case AGG_MIN:
        if (dbl ? b->v.f < a->v.f : b->v.i < a->v.i) a->v = b->v;
        break;
    case AGG_MAX:
        if (dbl ? b->v.f > a->v.f : b->v.i > a->v.i) a->v = b->v;
        break;
    default: break;
    }
    a->n += b->n;
    return 0;
}

int em_agg_merge(void *acc, const void *other, size_t len, char *err, size_t errlen)
{
    uint8_t *h = acc;
    const uint8_t *o = other;
    if (h[0] == EM_FN_MARK) return em_fn_merge(acc, other, len, err, errlen);
    int n = h[0];
    if (!valid_header(h) || len != layout_len(h) || memcmp(h, o, ACC_HEADER) != 0) {
        snprintf(err, errlen, "an aggregate's accumulator of %zu bytes does not match", len);
        return -1;
    }
    agg_state *a = (agg_state *)(h + ACC_HEADER);
    for (int k = 0; k < n; k++) {
        agg_state b;
        memcpy(&b, o + ACC_HEADER + (size_t)k * sizeof b, sizeof b);
        if (fold_one((agg_op)(h[1 + k] >> 4), (em_type)(h[1 + k] & 15), &a[k], &b) != 0) {
            snprintf(err, errlen, "integer overflow in the %s of an aggregate",
                     AGG_NAMES[h[1 + k] >> 4]);
            return -1;
        }
        if ((h[1 + k] >> 4) == AGG_DISTINCT)
            em_distinct_merge(h + distinct_offset(h, k), o + distinct_offset(h, k),
                              distinct_precision(header_distincts(h)));
    }
    return 0;
}

size_t em_agg_key(const em_node *n, const em_value *cols, void *buf, size_t cap)
{
    em_value by[EM_SCHEMA_MAX];
    for (int k = 0; k < n->n_cols; k++) by[k] = cols[n->cols[k]];
    return em_row_encode(&n->key_schema, by, buf, cap);
}

int em_agg_result(const em_node *n, const void *key, size_t key_len, const void *acc,
                  size_t acc_len, int64_t window_start, em_value *cols)
{
    if (acc_len != em_agg_acc_len(n) || em_row_decode(&n->key_schema, key, key_len, cols) != 0)
        return -1;
    int first = n->n_cols;
    if (n->time_col >= 0) {
        cols[first++].i = window_start;
        cols[first++].i = window_start + n->window_ms;
    }
    if (n->fn.name) return em_fn_result(n, acc, acc_len, cols, first);
    const uint8_t *p = (const uint8_t *)acc + ACC_HEADER;
    for (int k = 0; k < n->n_aggs; k++) {
        agg_state st;
        memcpy(&st, p + (size_t)k * sizeof st, sizeof st);
        em_value *v = &cols[first + k];
        switch (n->aggs[k].op) {
        case AGG_COUNT: v->i = st.n; break;
        case AGG_DISTINCT:
            v->i = em_distinct_count((const uint8_t *)acc + distinct_offset(acc, k),
                                     distinct_precision(header_distincts(acc)));
            break;
        case AGG_AVG: v->f = st.n ? st.v.f / (double)st.n : NAN; break;
        default: v->i = st.v.i; break;
        }
    }
    return 0;
}

int64_t em_agg_event_time(const em_node *n, const em_value *cols, int64_t ts)
{
    return n->time_col >= 0 ? cols[n->time_col].i : ts;
}

int em_agg_window(const em_node *n, int64_t *length_ms, int64_t *slide_ms, int64_t *delay_ms)
{
    *length_ms = n->window_ms;
    *slide_ms = n->slide_ms;
    *delay_ms = n->delay_ms;
    return n->time_col >= 0;
}
