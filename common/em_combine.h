/* em_combine.h -- combines the values of equal keys with a built-in typed reducer.
 *
 * The hash table behind reduce_by_key: map tasks combine their output before the shuffle
 * (map-side combine), reduce tasks combine what they fetched. Open addressing over an index
 * of 32-bit slots, keys copied into one arena: no allocation per record once sized. Entries
 * keep their insertion order, so the output order depends only on the input order.
 * Values are 8-byte little-endian int64 or double; any other size is an error.
 */
#ifndef EM_COMBINE_H
#define EM_COMBINE_H

#include <ember/ember.h>
#include <stddef.h>
#include <stdint.h>

#include "ember.pb-c.h"

typedef struct em_combiner em_combiner;

/* em_combiner_new sizes the table for about `expected` keys (it grows as needed). */
em_combiner *em_combiner_new(Ember__Reducer reducer, size_t expected);
void em_combiner_free(em_combiner *c);
/* em_combiner_add folds one record in; EMBER_ERR_INVALID if its value is not 8 bytes. */
int em_combiner_add(em_combiner *c, const ember_record *rec);
size_t em_combiner_size(const em_combiner *c);
/* em_combiner_get gives entry i (insertion order) as a record valid until the next add, and
 * the key's hash through *hash. */
void em_combiner_get(const em_combiner *c, size_t i, ember_record *rec, uint64_t *hash);
/* em_reducer_valid says whether r is a reducer this build knows. */
int em_reducer_valid(int r);

#endif
