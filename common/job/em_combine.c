/* em_combine.c -- hash table that reduces values per key (see em_combine.h).
 *
 * Invariants: index has a power-of-two number of slots, at most 70% used; a slot holds the
 * key hash's top 32 bits and entry number + 1 (0 = empty), so most probes that miss never
 * touch an entry. An entry is one 64-byte cache line, aligned: the hash, the key's length,
 * the accumulator if it is 8 bytes or less, the latest timestamp and the key itself if it is
 * INLINE_KEY bytes or less (longer ones live at an offset in keys). So a hit on a short key
 * touches two cache lines, its index slot and its entry, and nothing else. Longer
 * accumulators live at acc_len * entry in accs.
 */
#include "em_combine.h"

#include <stdlib.h>
#include <string.h>

#include "em_buf.h"
#include "em_hash.h"

#define INLINE_KEY 32
#define LINE       64

typedef struct entry {
    uint64_t hash;
    uint64_t key_len;
    uint8_t value[8];
    int64_t timestamp; /* the latest of the combined records */
    union {
        uint8_t bytes[INLINE_KEY]; /* key_len <= INLINE_KEY */
        size_t off;                /* else: where the key starts in keys */
    } key;
} entry;
_Static_assert(sizeof(entry) == LINE, "an entry is one cache line");

struct em_combiner {
    Ember__Reducer reducer; /* REDUCER_UNSPECIFIED: fold instead */
    em_fold fold;
    size_t acc_len;
    uint8_t *accs;   /* acc_len * cap bytes when acc_len > 8 */
    size_t last;     /* entry of the last add */
    uint64_t *index; /* hash >> 32 << 32 | entry + 1 */
    size_t slots;    /* power of two */
    entry *entries;
    size_t n, cap;
    em_buf keys; /* every key, back to back */
};

int em_reducer_valid(int r)
{
    return r >= EMBER__REDUCER__REDUCER_SUM_I64 && r <= EMBER__REDUCER__REDUCER_MAX_F64;
}

static em_combiner *combiner_new(Ember__Reducer reducer, const em_fold *fold, size_t expected)
{
    em_combiner *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->reducer = reducer;
    c->acc_len = 8;
    if (fold) {
        c->fold = *fold;
        c->acc_len = fold->acc_len;
    }
    c->slots = 64;
    while (c->slots * 7 / 10 < expected) c->slots *= 2;
    c->index = calloc(c->slots, sizeof *c->index);
    if (!c->index) {
        free(c);
        return NULL;
    }
    return c;
}

em_combiner *em_combiner_new(Ember__Reducer reducer, size_t expected)
{
    return combiner_new(reducer, NULL, expected);
}

em_combiner *em_combiner_new_fold(const em_fold *fold, size_t expected)
{
    if (fold->acc_len > EM_COMBINE_ACC_MAX || (fold->acc_len > 0 && !fold->fn)) return NULL;
    return combiner_new(EMBER__REDUCER__REDUCER_UNSPECIFIED, fold, expected);
}

void em_combiner_set_fold(em_combiner *c, const em_fold *fold)
{
    if (c->reducer == EMBER__REDUCER__REDUCER_UNSPECIFIED && fold->acc_len == c->acc_len)
        c->fold = *fold;
}

void em_combiner_free(em_combiner *c)
{
    if (!c) return;
    free(c->index);
    free(c->entries);
    free(c->accs);
    em_buf_free(&c->keys);
    free(c);
}

size_t em_combiner_size(const em_combiner *c) { return c->n; }
size_t em_combiner_last(const em_combiner *c) { return c->last; }

size_t em_combiner_bytes(const em_combiner *c)
{
    size_t acc = c->acc_len > 8 ? c->acc_len : 0;
    return c->slots * sizeof *c->index + c->cap * (sizeof(entry) + acc) + c->keys.cap;
}

void em_combiner_reset(em_combiner *c)
{
    memset(c->index, 0, c->slots * sizeof *c->index);
    c->n = 0;
    c->keys.len = 0;
}

static uint8_t *entry_acc(const em_combiner *c, entry *e)
{
    return c->acc_len <= 8 ? e->value : c->accs + (size_t)(e - c->entries) * c->acc_len;
}

void em_combiner_get(const em_combiner *c, size_t i, ember_record *rec, uint64_t *hash)
{
    const entry *e = &c->entries[i];
    rec->key = e->key_len <= INLINE_KEY ? e->key.bytes : c->keys.data + e->key.off;
    rec->key_len = e->key_len;
    rec->value = entry_acc(c, (entry *)e);
    rec->value_len = c->acc_len;
    rec->timestamp = e->timestamp;
    if (hash) *hash = e->hash;
}

static uint64_t slot_of(uint64_t hash, size_t i) { return (hash >> 32 << 32) | (i + 1); }

static int grow_index(em_combiner *c)
{
    size_t slots = c->slots * 2;
    uint64_t *index = calloc(slots, sizeof *index);
    if (!index) return EMBER_ERR_NOMEM;
    for (size_t i = 0; i < c->n; i++) {
        size_t s = c->entries[i].hash & (slots - 1);
        while (index[s]) s = (s + 1) & (slots - 1);
        index[s] = slot_of(c->entries[i].hash, i);
    }
    free(c->index);
    c->index = index;
    c->slots = slots;
    return EMBER_OK;
}

static const uint8_t *entry_key(const em_combiner *c, const entry *e)
{
    return e->key_len <= INLINE_KEY ? e->key.bytes : c->keys.data + e->key.off;
}

static void fold(Ember__Reducer r, uint8_t acc[8], const uint8_t in[8])
{
    int64_t a, b;
    double x, y;
    memcpy(&a, acc, 8); /* little-endian hosts only: the value format is little-endian */
    memcpy(&b, in, 8);
    memcpy(&x, acc, 8);
    memcpy(&y, in, 8);
    switch (r) {
    case EMBER__REDUCER__REDUCER_SUM_I64: a = (int64_t)((uint64_t)a + (uint64_t)b); break;
    case EMBER__REDUCER__REDUCER_MIN_I64: a = b < a ? b : a; break;
    case EMBER__REDUCER__REDUCER_MAX_I64: a = b > a ? b : a; break;
    case EMBER__REDUCER__REDUCER_SUM_F64: x += y; break;
    case EMBER__REDUCER__REDUCER_MIN_F64: x = y < x ? y : x; break;
    case EMBER__REDUCER__REDUCER_MAX_F64: x = y > x ? y : x; break;
    default: return;
    }
    if (r <= EMBER__REDUCER__REDUCER_MAX_I64)
        memcpy(acc, &a, 8);
    else
        memcpy(acc, &x, 8);
}

/* combine folds rec into entry e's accumulator (fresh: the entry is new). */
static int combine(em_combiner *c, entry *e, const ember_record *rec, int fresh)
{
    if (c->reducer == EMBER__REDUCER__REDUCER_UNSPECIFIED)
        return c->fold.fn ? c->fold.fn(c->fold.arg, entry_acc(c, e), rec, fresh) : EMBER_OK;
    if (fresh)
        memcpy(e->value, rec->value, 8);
    else
        fold(c->reducer, e->value, rec->value);
    return EMBER_OK;
}

const uint8_t *em_combiner_find(const em_combiner *c, const void *key, size_t key_len)
{
    uint64_t h = em_hash64(key, key_len), tag = h >> 32;
    for (size_t s = h & (c->slots - 1);; s = (s + 1) & (c->slots - 1)) {
        uint64_t slot = c->index[s];
        if (slot == 0) return NULL;
        if (slot >> 32 != tag) continue;
        entry *e = &c->entries[(uint32_t)slot - 1];
        if (e->hash == h && e->key_len == key_len &&
            (key_len == 0 || memcmp(entry_key(c, e), key, key_len) == 0))
            return entry_acc(c, e);
    }
}

int em_combiner_add(em_combiner *c, const ember_record *rec)
{
    if (c->reducer != EMBER__REDUCER__REDUCER_UNSPECIFIED && rec->value_len != 8)
        return EMBER_ERR_INVALID;
    uint64_t h = em_hash64(rec->key, rec->key_len), tag = h >> 32;
    size_t s = h & (c->slots - 1);
    for (uint64_t slot; (slot = c->index[s]) != 0; s = (s + 1) & (c->slots - 1)) {
        if (slot >> 32 != tag) continue;
        entry *e = &c->entries[(uint32_t)slot - 1];
        if (e->hash == h && e->key_len == rec->key_len &&
            (rec->key_len == 0 || memcmp(entry_key(c, e), rec->key, rec->key_len) == 0)) {
            int rc = combine(c, e, rec, 0);
            if (rec->timestamp > e->timestamp) e->timestamp = rec->timestamp;
            c->last = (uint32_t)slot - 1;
            return rc;
        }
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        /* aligned, so that an entry never straddles two cache lines */
        entry *p = cap <= UINT32_MAX - 1 ? aligned_alloc(LINE, cap * sizeof *p) : NULL;
        if (!p) return EMBER_ERR_NOMEM;
        if (c->n) memcpy(p, c->entries, c->n * sizeof *p);
        free(c->entries);
        c->entries = p;
        if (c->acc_len > 8) {
            uint8_t *a = realloc(c->accs, cap * c->acc_len);
            if (!a) return EMBER_ERR_NOMEM;
            c->accs = a;
        }
        c->cap = cap;
    }
    entry *e = &c->entries[c->n];
    e->hash = h;
    e->key_len = rec->key_len;
    e->timestamp = rec->timestamp;
    int rc = combine(c, e, rec, 1);
    if (rc != EMBER_OK) return rc;
    if (rec->key_len <= INLINE_KEY) {
        if (rec->key_len) memcpy(e->key.bytes, rec->key, rec->key_len);
    } else {
        e->key.off = c->keys.len;
        if (em_buf_append(&c->keys, rec->key, rec->key_len) != EMBER_OK) return EMBER_ERR_NOMEM;
    }
    c->last = c->n;
    c->index[s] = slot_of(h, c->n++);
    if (c->n * 10 > c->slots * 7) return grow_index(c);
    return EMBER_OK;
}
