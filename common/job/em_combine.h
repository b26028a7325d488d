/* em_combine.h -- combines the values of equal keys into one accumulator per key.
 *
 * The hash table behind the combining shuffles (reduce_by_key, aggregate_by_key, distinct)
 * and behind grouping: map tasks combine their output before the shuffle (map-side combine),
 * reduce tasks combine what they fetched. Open addressing over an index of 32-bit slots,
 * keys copied into one arena: no allocation per record once sized. Entries keep their
 * insertion order, so the output order depends only on the input order.
 *
 * A combiner either folds 8-byte values with a built-in typed reducer (any other value size
 * is an error), or calls an em_fold for accumulators of any fixed size, or (acc_len 0 and
 * no fold) only records which keys were seen.
 */
#ifndef EM_COMBINE_H
#define EM_COMBINE_H

#include <ember/ember.h>
#include <stddef.h>
#include <stdint.h>

#include "ember.pb-c.h"

typedef struct em_combiner em_combiner;

#define EM_COMBINE_ACC_MAX 8192 /* bytes of a fold's accumulator (the API allows EMBER_ACC_MAX) */

/* em_fold: folds record `in` into acc (acc_len bytes); `fresh` says acc belongs to a key seen
 * for the first time (its bytes are then undefined). Returns EMBER_OK or an error. */
typedef struct em_fold {
    int (*fn)(void *arg, uint8_t *acc, const ember_record *in, int fresh);
    void *arg;
    size_t acc_len; /* 0..EMBER_ACC_MAX */
} em_fold;

/* em_combiner_new sizes the table for about `expected` keys (it grows as needed). */
em_combiner *em_combiner_new(Ember__Reducer reducer, size_t expected);
/* em_combiner_new_fold makes a combiner whose accumulators are folded by fold (fold->fn may
 * be NULL when acc_len is 0: keys only). */
em_combiner *em_combiner_new_fold(const em_fold *fold, size_t expected);
void em_combiner_free(em_combiner *c);
/* em_combiner_set_fold gives a fold combiner another fold of the same accumulator size (the
 * same function bound to another task's arguments), for a table kept between tasks. */
void em_combiner_set_fold(em_combiner *c, const em_fold *fold);
/* em_combiner_add folds one record in; with a built-in reducer, EMBER_ERR_INVALID if its
 * value is not 8 bytes; with a fold, whatever the fold returned. */
int em_combiner_add(em_combiner *c, const ember_record *rec);
/* em_combiner_find returns the accumulator of key (acc_len bytes), or NULL if it has none. */
const uint8_t *em_combiner_find(const em_combiner *c, const void *key, size_t key_len);
/* em_combiner_last is the entry (insertion index) of the key of the last successful add. */
size_t em_combiner_last(const em_combiner *c);
/* em_combiner_reset forgets every key, keeping the allocated memory. */
void em_combiner_reset(em_combiner *c);
/* em_combiner_bytes estimates the memory the table uses. */
size_t em_combiner_bytes(const em_combiner *c);
size_t em_combiner_size(const em_combiner *c);
/* em_combiner_get gives entry i (insertion order) as a record valid until the next add, and
 * the key's hash through *hash. */
void em_combiner_get(const em_combiner *c, size_t i, ember_record *rec, uint64_t *hash);
/* em_reducer_valid says whether r is a reducer this build knows. */
int em_reducer_valid(int r);

#endif
