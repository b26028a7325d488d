/* em_keyed.h -- keyed state of a streaming query (the NODE_MAP_WITH_STATE of ember.h's
 * ember_map_with_state), on the reduce side of its shuffle.
 *
 * The map side shuffles records by key, unchanged. Reduce partition p of a batch keeps a
 * state per key between batches: entry key -> [last batch time it saw a record, 8 bytes]
 * [exists, 1 byte][the user's state, state_len bytes], in em_state_store.h's files and cache
 * (STATE_DIR/p, version = the batch). A batch first drops the keys idle for the time-to-live
 * (by the batch's trigger time, logged with its offsets, so a batch run again drops the same
 * ones), then calls the user's function for each of its records, a key's records together in
 * their shuffle order, with the key's state. A delta holds the entries the batch changed,
 * removed ones with exists = 0, which loading drops.
 */
#ifndef EM_KEYED_H
#define EM_KEYED_H

#include <ember/ember.h>
#include <stddef.h>
#include <stdint.h>

#include "em_pipeline.h"
#include "em_state_store.h"
#include "ember.pb-c.h"

/* em_keyed_stats: a reduce task's figures, for the driver */
typedef struct em_keyed_stats {
    int64_t keys, bytes; /* kept after the batch */
    int64_t expired;     /* dropped for their time-to-live */
} em_keyed_stats;

/* em_keyed_reduce runs reduce partition `partition` of map_with_state node `node` for one
 * batch over its n records (sorted by key, a key's records in their shuffle order), calling
 * the node's function from `lib`; what it emits goes to emit. */
int em_keyed_reduce(em_state_cache *states, const Ember__Node *node, uint32_t partition, void *lib,
                    const ember_record *recs, size_t n, em_record_fn emit, void *emit_arg,
                    em_keyed_stats *stats, char *err, size_t errlen);

#endif
