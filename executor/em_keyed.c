/* em_keyed.c -- keyed state between a stream's batches (see em_keyed.h). */
#include "em_keyed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_buf.h"
#include "em_graph.h"

#define HEAD 9 /* last batch time (8 bytes, little-endian) and exists (1 byte) */

/* replace: an entry's accumulator is the last value added for its key */
static int replace(void *arg, uint8_t *acc, const ember_record *in, int fresh)
{
    (void)fresh;
    size_t len = *(const size_t *)arg;
    if (in->value_len != len) return EMBER_ERR_MALFORMED;
    memcpy(acc, in->value, len);
    return EMBER_OK;
}

typedef struct keyed {
    size_t entry_len; /* HEAD + state_len */
    em_fold fold;
} keyed;

static em_combiner *empty_state(void *arg)
{
    keyed *k = arg;
    return em_combiner_new_fold(&k->fold, 1024);
}

/* live_only: the state without its removed keys */
static int live_only(em_combiner **state, int64_t mark, void *arg)
{
    (void)mark;
    size_t n = em_combiner_size(*state), live = 0;
    for (size_t i = 0; i < n; i++) {
        ember_record rec;
        em_combiner_get(*state, i, &rec, NULL);
        live += ((const uint8_t *)rec.value)[8] != 0;
    }
    if (live == n) return EMBER_OK;
    em_combiner *next = empty_state(arg);
    int rc = next ? EMBER_OK : EMBER_ERR_NOMEM;
    for (size_t i = 0; rc == EMBER_OK && i < n; i++) {
        ember_record rec;
        em_combiner_get(*state, i, &rec, NULL);
        if (((const uint8_t *)rec.value)[8]) rc = em_combiner_add(next, &rec);
    }
    if (rc != EMBER_OK) {
        em_combiner_free(next);
        return rc;
    }
    em_combiner_free(*state);
    *state = next;
    return EMBER_OK;
}

/* set_entry records key's entry in the state and the batch's delta */
static int set_entry(em_combiner *state, em_combiner *delta, const void *key, size_t key_len,
                     const uint8_t *entry, size_t entry_len)
{
    ember_record rec = {key, key_len, entry, entry_len, 0};
    int rc = em_combiner_add(state, &rec);
    return rc == EMBER_OK ? em_combiner_add(delta, &rec) : rc;
}

/* expire removes the keys idle for ttl at batch time `now` (none that had a record in the
 * batch: their time is `now`) */
static int expire(em_combiner *state, em_combiner *delta, const keyed *k, int64_t ttl, int64_t now,
                  uint8_t *scratch, int64_t *expired)
{
    int rc = EMBER_OK;
    for (size_t i = 0; rc == EMBER_OK && i < em_combiner_size(state); i++) {
        ember_record rec;
        em_combiner_get(state, i, &rec, NULL);
        const uint8_t *e = rec.value;
        if (!e[8] || now - (int64_t)em_get_u64le(e) < ttl) continue;
        memset(scratch, 0, k->entry_len);
        em_put_u64le(scratch, (uint64_t)now);
        rc = set_entry(state, delta, rec.key, rec.key_len, scratch, k->entry_len);
        (*expired)++;
    }
    return rc;
}

static int same_key(const ember_record *a, const ember_record *b)
{
    return a->key_len == b->key_len && (a->key_len == 0 || memcmp(a->key, b->key, a->key_len) == 0);
}

int em_keyed_reduce(em_state_cache *states, const Ember__Node *node, uint32_t partition, void *lib,
                    const ember_record *recs, size_t n, em_record_fn emit, void *emit_arg,
                    em_keyed_stats *stats, char *err, size_t errlen)
{
    memset(stats, 0, sizeof *stats);
    char dir[EM_STATE_DIR_MAX + 16];
    snprintf(dir, sizeof dir, "%s/%u", node->state_dir, partition);
    keyed k = {HEAD + node->state_len, {replace, &k.entry_len, HEAD + node->state_len}};
    em_state_ops ops = {empty_state, live_only, &k};
    ember_state_fn fn = (ember_state_fn)em_pipeline_resolve(lib, node->fn_symbol);
    if (!fn) {
        snprintf(err, errlen, "map_with_state: function %s not found in the job library",
                 node->fn_symbol);
        return EMBER_ERR_NOT_FOUND;
    }
    ember_task *task = em_fn_task_new(node->kind, node->fn_symbol, partition, err, errlen);
    uint8_t *scratch = malloc(k.entry_len);
    void *user = malloc(node->state_len); /* the user's state: aligned as malloc aligns */
    em_combiner *state = NULL, *delta = empty_state(&k);
    int rc = task && scratch && user && delta ? EMBER_OK : EMBER_ERR_NOMEM;
    if (rc == EMBER_OK) {
        em_fn_task_bind(task, node->fn_arg.data, node->fn_arg.len, emit, emit_arg);
        rc = em_state_open(states, dir, node->state_version - 1, &ops, &state, err, errlen);
    }
    if (rc == EMBER_OK) em_combiner_set_fold(state, &k.fold); /* a cached state's is stale */
    int64_t now = node->batch_time_ms;
    for (size_t i = 0, j; rc == EMBER_OK && i < n; i = j) {
        for (j = i + 1; j < n && same_key(&recs[i], &recs[j]); j++) {
        }
        const uint8_t *had = em_combiner_find(state, recs[i].key, recs[i].key_len);
        int exists = had && had[8];
        if (exists)
            memcpy(scratch, had, k.entry_len);
        else
            memset(scratch, 0, k.entry_len);
        memcpy(user, scratch + HEAD, node->state_len);
        for (size_t r = i; rc == EMBER_OK && r < j; r++)
            rc = em_fn_task_result(task, fn(task, &recs[r], user, &exists));
        memcpy(scratch + HEAD, user, node->state_len);
        em_put_u64le(scratch, (uint64_t)now);
        scratch[8] = exists != 0;
        if (rc == EMBER_OK)
            rc = set_entry(state, delta, recs[i].key, recs[i].key_len, scratch, k.entry_len);
    }
    /* after the batch's records: a key that had one is stamped `now` and stays (as Spark's
     * timeouts, only keys without data in the batch time out) */
    if (rc == EMBER_OK && node->state_ttl_ms > 0)
        rc = expire(state, delta, &k, node->state_ttl_ms, now, scratch, &stats->expired);
    if (rc == EMBER_OK) rc = live_only(&state, EM_STATE_NO_MARK, &k);
    if (rc == EMBER_OK) {
        stats->keys = (int64_t)em_combiner_size(state);
        for (size_t i = 0; i < em_combiner_size(state); i++) {
            ember_record rec;
            em_combiner_get(state, i, &rec, NULL);
            stats->bytes += (int64_t)(rec.key_len + node->state_len);
        }
        rc = em_state_commit(states, dir, node->state_version, EM_STATE_NO_MARK, delta, state, err,
                             errlen);
        state = NULL; /* the cache's, or freed */
    }
    if (rc != EMBER_OK && !err[0])
        snprintf(err, errlen, "map_with_state of %s: %s", dir, ember_strerror(rc));
    em_combiner_free(state);
    em_combiner_free(delta);
    em_fn_task_free(task);
    free(scratch);
    free(user);
    return rc;
}
