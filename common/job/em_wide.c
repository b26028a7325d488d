/* em_wide.c -- grouped and joined value formats, order-preserving keys, and the built-in
 * functions of the wide operations (see em_wide.h). */
#include "em_wide.h"

#include <stdlib.h>
#include <string.h>

#include "em_hash.h"
#include "em_pipeline.h"

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_i64(uint8_t *p, int64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)((uint64_t)v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int64_t get_i64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return (int64_t)v;
}

/* ---- grouped values --------------------------------------------------------------------- */

int em_group_begin(em_buf *b)
{
    b->len = 0;
    static const uint8_t zero[EM_GROUP_HEADER];
    return em_buf_append(b, zero, sizeof zero);
}

int em_group_add(em_buf *b, uint32_t side, const ember_record *value)
{
    if (value->value_len > UINT32_MAX) return EMBER_ERR_TOO_LARGE;
    uint8_t head[EM_GROUP_ENTRY];
    head[0] = (uint8_t)side;
    put_u32(head + 1, (uint32_t)value->value_len);
    put_i64(head + 5, value->timestamp);
    int rc = em_buf_append(b, head, sizeof head);
    return rc == EMBER_OK ? em_buf_append(b, value->value, value->value_len) : rc;
}

void em_group_finish(em_buf *b, uint32_t count) { put_u32(b->data, count); }

int ember_group_open(const ember_record *grouped, ember_group_iter *it)
{
    if (!grouped || !it || grouped->value_len < EM_GROUP_HEADER) return EMBER_ERR_MALFORMED;
    const uint8_t *p = grouped->value, *end = p + grouped->value_len;
    uint32_t count = get_u32(p);
    /* check the whole layout once, so ember_group_next can trust it */
    const uint8_t *q = p + EM_GROUP_HEADER;
    for (uint32_t i = 0; i < count; i++) {
        if ((size_t)(end - q) < EM_GROUP_ENTRY || q[0] > 1) return EMBER_ERR_MALFORMED;
        uint32_t len = get_u32(q + 1);
        if ((size_t)(end - q - EM_GROUP_ENTRY) < len) return EMBER_ERR_MALFORMED;
        q += EM_GROUP_ENTRY + len;
    }
    if (q != end || count > INT32_MAX) return EMBER_ERR_MALFORMED;
    it->next = p + EM_GROUP_HEADER;
    it->end = end;
    return (int)count;
}

int ember_group_next(ember_group_iter *it, ember_record *value, int *side)
{
    if (!it || !value || it->next >= it->end) return 0;
    const uint8_t *p = it->next;
    uint32_t len = get_u32(p + 1);
    *value = (ember_record){NULL, 0, p + EM_GROUP_ENTRY, len, get_i64(p + 5)};
    if (side) *side = p[0];
    it->next = p + EM_GROUP_ENTRY + len;
    return 1;
}

/* ---- joins ------------------------------------------------------------------------------ */

int ember_join_values(const ember_record *joined, ember_record *left, ember_record *right)
{
    if (!joined || !left || !right || joined->value_len < 13) return EMBER_ERR_MALFORMED;
    const uint8_t *p = joined->value, *end = p + joined->value_len;
    uint32_t left_len = get_u32(p);
    if ((size_t)(end - p - 12) < (size_t)left_len + 1) return EMBER_ERR_MALFORMED;
    *left = (ember_record){NULL, 0, p + 12, left_len, get_i64(p + 4)};
    const uint8_t *r = p + 12 + left_len;
    *right = (ember_record){0};
    if (r[0] == 0) return r + 1 == end ? 0 : EMBER_ERR_MALFORMED;
    if (r[0] != 1 || end - r < 9) return EMBER_ERR_MALFORMED;
    *right = (ember_record){NULL, 0, r + 9, (size_t)(end - r - 9), get_i64(r + 1)};
    return 1;
}

/* emit_pair emits (key, left ⨝ right); right NULL: no right value */
static int emit_pair(ember_task *task, em_buf *b, const ember_record *in, const ember_record *left,
                     const ember_record *right)
{
    uint8_t head[12], mid[9];
    put_u32(head, (uint32_t)left->value_len);
    put_i64(head + 4, left->timestamp);
    mid[0] = right != NULL;
    b->len = 0;
    int rc = em_buf_append(b, head, sizeof head);
    if (rc == EMBER_OK) rc = em_buf_append(b, left->value, left->value_len);
    if (right) {
        put_i64(mid + 1, right->timestamp);
        if (rc == EMBER_OK) rc = em_buf_append(b, mid, sizeof mid);
        if (rc == EMBER_OK) rc = em_buf_append(b, right->value, right->value_len);
    } else if (rc == EMBER_OK) {
        rc = em_buf_append(b, mid, 1);
    }
    if (rc != EMBER_OK) return ember_task_fail(task, "out of memory joining");
    int64_t ts = left->timestamp;
    if (right && right->timestamp > ts) ts = right->timestamp;
    return ember_emit_kv(task, in->key, in->key_len, b->data, b->len, ts);
}

static int join(ember_task *task, const ember_record *in, int keep_unmatched_left)
{
    ember_group_iter all, lefts, rights;
    if (ember_group_open(in, &all) < 0)
        return ember_task_fail(task, "join: input record is not a cogrouped record");
    ember_record left, right;
    int side, n_right = 0, rc = EMBER_OK;
    for (ember_group_iter it = all; ember_group_next(&it, &right, &side);) n_right += side == 1;
    if (n_right == 0 && !keep_unmatched_left) return EMBER_OK;
    em_buf b = {0};
    for (lefts = all; rc == EMBER_OK && ember_group_next(&lefts, &left, &side);) {
        if (side != 0) continue;
        if (n_right == 0) rc = emit_pair(task, &b, in, &left, NULL);
        for (rights = all; rc == EMBER_OK && ember_group_next(&rights, &right, &side);)
            if (side == 1) rc = emit_pair(task, &b, in, &left, &right);
    }
    em_buf_free(&b);
    return rc;
}

int ember_builtin_join_inner(ember_task *task, const ember_record *in) { return join(task, in, 0); }
int ember_builtin_join_left(ember_task *task, const ember_record *in) { return join(task, in, 1); }

/* ---- distinct --------------------------------------------------------------------------- */

int ember_builtin_pack_kv(ember_task *task, const ember_record *in)
{
    if (in->key_len > UINT32_MAX) return ember_task_fail(task, "distinct: key too large");
    em_buf b = {0};
    uint8_t len[4];
    put_u32(len, (uint32_t)in->key_len);
    int rc = em_buf_append(&b, len, 4);
    if (rc == EMBER_OK) rc = em_buf_append(&b, in->key, in->key_len);
    if (rc == EMBER_OK) rc = em_buf_append(&b, in->value, in->value_len);
    if (rc == EMBER_OK)
        rc = ember_emit_kv(task, b.data, b.len, NULL, 0, in->timestamp);
    else
        rc = ember_task_fail(task, "distinct: out of memory");
    em_buf_free(&b);
    return rc;
}

int ember_builtin_unpack_kv(ember_task *task, const ember_record *in)
{
    const uint8_t *p = in->key;
    if (in->key_len < 4 || get_u32(p) > in->key_len - 4)
        return ember_task_fail(task, "distinct: record was not packed by distinct");
    uint32_t key_len = get_u32(p);
    return ember_emit_kv(task, p + 4, key_len, p + 4 + key_len, in->key_len - 4 - key_len,
                         in->timestamp);
}

/* ---- sort_by_key ------------------------------------------------------------------------ */

void ember_key_i64(int64_t v, uint8_t key[8])
{
    uint64_t u = (uint64_t)v ^ (1ull << 63); /* negative numbers first */
    for (int i = 0; i < 8; i++) key[i] = (uint8_t)(u >> (56 - 8 * i));
}

int64_t ember_key_to_i64(const void *key)
{
    const uint8_t *k = key;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) u = u << 8 | k[i];
    return (int64_t)(u ^ (1ull << 63));
}

int ember_builtin_sample_keys(ember_task *task, ember_iter *in)
{
    size_t arg_len;
    const uint8_t *arg = ember_task_arg(task, &arg_len);
    uint32_t want = arg_len == 4 ? get_u32(arg) : 0;
    if (want == 0) return ember_task_fail(task, "sample_keys: no sample size");
    ember_record *sample = malloc(want * sizeof *sample), rec;
    if (!sample) return ember_task_fail(task, "sample_keys: out of memory");
    uint64_t seen = 0,
             rng = (em_hash64(&seen, sizeof seen) ^ (uint64_t)ember_task_partition(task)) | 1;
    while (ember_next(in, &rec)) { /* records of a map_partitions input outlive the loop */
        if (seen < want) {
            sample[seen] = rec;
        } else {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            uint64_t j = rng % (seen + 1);
            if (j < want) sample[j] = rec;
        }
        seen++;
    }
    int rc = EMBER_OK;
    for (uint64_t i = 0; rc == EMBER_OK && i < seen && i < want; i++)
        rc = ember_emit_kv(task, sample[i].key, sample[i].key_len, NULL, 0, 0);
    free(sample);
    return rc;
}

/* ---- reduce_by_key_fn: a group's values combined by a user function ----------------------- */

/* the value being built by the running combine call (ember_combined), per slot thread */
static _Thread_local em_buf combined;
static _Thread_local int combined_set;

void em_wide_thread_end(void)
{
    em_buf_free(&combined);
    combined_set = 0;
}

int ember_combined(ember_task *task, const void *value, size_t len)
{
    combined.len = 0;
    if (em_buf_append(&combined, value, len) != EMBER_OK)
        return ember_task_fail(task, "reduce_by_key_fn: out of memory for a %zu-byte value", len);
    combined_set = 1;
    return EMBER_OK;
}

int ember_builtin_combine_group(ember_task *task, const ember_record *in)
{
    size_t arg_len;
    const char *symbol = ember_task_arg(task, &arg_len);
    ember_combine_fn fn = arg_len && symbol[arg_len - 1] == '\0'
                              ? (ember_combine_fn)em_task_resolve(task, symbol)
                              : NULL;
    if (!fn) return ember_task_fail(task, "reduce_by_key_fn: no function '%.200s'", symbol);
    ember_group_iter it;
    ember_record v;
    if (ember_group_open(in, &it) < 0)
        return ember_task_fail(task, "reduce_by_key_fn: not a group");
    em_buf acc = {0};
    int64_t latest = INT64_MIN;
    int rc = EMBER_OK, first = 1;
    while (rc == EMBER_OK && ember_group_next(&it, &v, NULL) == 1) {
        if (v.timestamp > latest) latest = v.timestamp;
        if (first) {
            rc = em_buf_append(&acc, v.value, v.value_len);
            first = 0;
            continue;
        }
        combined_set = 0;
        rc = fn(task, acc.data, acc.len, v.value, v.value_len);
        if (rc == EMBER_OK && !combined_set)
            rc = ember_task_fail(task, "reduce_by_key_fn: '%.200s' gave no value (ember_combined)",
                                 symbol);
        if (rc == EMBER_OK) { /* the combined value becomes the accumulator */
            em_buf t = acc;
            acc = combined;
            combined = t;
        }
    }
    if (rc == EMBER_OK) rc = ember_emit_kv(task, in->key, in->key_len, acc.data, acc.len, latest);
    em_buf_free(&acc);
    return rc;
}
