/* em_combine.c -- hash table that reduces values per key (see em_combine.h).
 *
 * Invariants: index has a power-of-two number of slots, at most 70% used; a slot holds the
 * key hash's top 32 bits and entry number + 1 (0 = empty), so most probes that miss never
 * touch an entry; keys of up to INLINE_KEY bytes live in their entry, longer ones at
 * key_off in keys, so most hits never touch a third cache line.
 */
#include "em_combine.h"

#include <stdlib.h>
#include <string.h>

#include "em_buf.h"
#include "em_hash.h"

#define INLINE_KEY 16

typedef struct entry {
    uint64_t hash;
    size_t key_off, key_len;
    uint8_t value[8];
    int64_t timestamp; /* the latest of the combined records */
    uint8_t inline_key[INLINE_KEY];
} entry;

struct em_combiner {
    Ember__Reducer reducer;
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

em_combiner *em_combiner_new(Ember__Reducer reducer, size_t expected)
{
    em_combiner *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->reducer = reducer;
    c->slots = 64;
    while (c->slots * 7 / 10 < expected) c->slots *= 2;
    c->index = calloc(c->slots, sizeof *c->index);
    if (!c->index) {
        free(c);
        return NULL;
    }
    return c;
}

void em_combiner_free(em_combiner *c)
{
    if (!c) return;
    free(c->index);
    free(c->entries);
    em_buf_free(&c->keys);
    free(c);
}

size_t em_combiner_size(const em_combiner *c) { return c->n; }

void em_combiner_get(const em_combiner *c, size_t i, ember_record *rec, uint64_t *hash)
{
    const entry *e = &c->entries[i];
    rec->key = e->key_len <= INLINE_KEY ? e->inline_key : c->keys.data + e->key_off;
    rec->key_len = e->key_len;
    rec->value = e->value;
    rec->value_len = 8;
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
    return e->key_len <= INLINE_KEY ? e->inline_key : c->keys.data + e->key_off;
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

int em_combiner_add(em_combiner *c, const ember_record *rec)
{
    if (rec->value_len != 8) return EMBER_ERR_INVALID;
    uint64_t h = em_hash64(rec->key, rec->key_len), tag = h >> 32;
    size_t s = h & (c->slots - 1);
    for (uint64_t slot; (slot = c->index[s]) != 0; s = (s + 1) & (c->slots - 1)) {
        if (slot >> 32 != tag) continue;
        entry *e = &c->entries[(uint32_t)slot - 1];
        if (e->hash == h && e->key_len == rec->key_len &&
            (rec->key_len == 0 || memcmp(entry_key(c, e), rec->key, rec->key_len) == 0)) {
            fold(c->reducer, e->value, rec->value);
            if (rec->timestamp > e->timestamp) e->timestamp = rec->timestamp;
            return EMBER_OK;
        }
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        entry *p = cap <= UINT32_MAX - 1 ? realloc(c->entries, cap * sizeof *p) : NULL;
        if (!p) return EMBER_ERR_NOMEM;
        c->entries = p;
        c->cap = cap;
    }
    entry *e = &c->entries[c->n];
    e->hash = h;
    e->key_len = rec->key_len;
    memcpy(e->value, rec->value, 8);
    e->timestamp = rec->timestamp;
    if (rec->key_len <= INLINE_KEY) {
        if (rec->key_len) memcpy(e->inline_key, rec->key, rec->key_len);
    } else {
        e->key_off = c->keys.len;
        if (em_buf_append(&c->keys, rec->key, rec->key_len) != EMBER_OK) return EMBER_ERR_NOMEM;
    }
    c->index[s] = slot_of(h, c->n++);
    if (c->n * 10 > c->slots * 7) return grow_index(c);
    return EMBER_OK;
}
