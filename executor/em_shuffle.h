/* em_shuffle.h -- both ends of a shuffle on an executor.
 *
 * Map side: a stage feeding reduce_by_key combines its output per key (em_combine), splits
 * it by em_hash64(key) % R into R record batches and keeps them in the block store as
 * "shuffle_<map stage>_<map partition>_<reduce partition>"; the task reports each bucket's
 * size. Reduce side: the task of reduce partition r fetches bucket r of every map partition
 * (from its own block store without a copy, from other executors with FetchBlock), combines
 * them, and emits one record per key, in first-seen order (deterministic: maps are read in
 * partition order).
 */
#ifndef EM_SHUFFLE_H
#define EM_SHUFFLE_H

#include <stddef.h>
#include <stdint.h>

#include "em_blockstore.h"
#include "em_combine.h"
#include "em_pipeline.h"
#include "em_rpc.h"

#define EM_PEERS_CACHED 8

/* em_peers: connections of one slot to other executors, by address ("" = unused) */
typedef struct em_peers {
    struct {
        char address[256];
        em_rpc rpc;
        em_rpc_chan ch;
    } peer[EM_PEERS_CACHED];
    unsigned next_victim;
} em_peers;

void em_peers_close(em_peers *peers);

/* em_shuffle_store splits a map task's combined output into `reducers` buckets, stores them,
 * and fills bucket_bytes (reducers entries, caller-allocated). */
int em_shuffle_store(em_blockstore *blocks, const em_combiner *out, uint64_t map_stage,
                     uint32_t map_part, uint32_t reducers, uint64_t *bucket_bytes, char *err,
                     size_t errlen);

/* em_shuffle_read_arg: what a reduce task reads; a source for em_pipeline_run. */
typedef struct em_shuffle_read_arg {
    em_blockstore *blocks;
    em_peers *peers;
    const char *self;                  /* this executor's block address */
    const struct Ember__StageDef *def; /* the reduce stage (its shuffle_inputs) */
    const struct Ember__Node *node;    /* the wide node: partitions, reducer */
    uint32_t partition;
} em_shuffle_read_arg;

int em_shuffle_read(void *src, em_record_fn emit, void *emit_arg, char *err, size_t errlen);

#endif
