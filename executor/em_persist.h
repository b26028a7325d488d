/* em_persist.h -- persisted partitions on an executor (ember_persist).
 *
 * A stage names its persisted nodes (StageDef.cached: node and lineage fingerprint). For a
 * task, em_persist_begin walks the task's chain from its end and looks in the block store
 * for the partitions of its persisted nodes ("rdd_<fingerprint>_<partition>"), nearest the
 * end first: on a hit the task runs only the operations after that node, reading the block
 * (Spark's rule: the chain starts at the last cached dataset of its lineage); every persisted
 * node after the hit (all of them, without one) gets a tap that copies its output into a record
 * batch, which em_persist_keep stores when the task succeeds -- in memory only, evicting the least
 * recently used cached partitions of other datasets to make room (MEMORY_ONLY; as in Spark,
 * a dataset does not evict its own partitions, which would only thrash), or spilling to
 * disk over the cap (MEMORY_AND_DISK) -- and reports, with the partitions it evicted, to
 * the driver.
 */
#ifndef EM_PERSIST_H
#define EM_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#include "em_batch.h"
#include "em_blockstore.h"
#include "em_executor_int.h"
#include "em_pipeline.h"

#define EM_PERSIST_MAX 8 /* persisted nodes followed on one task's chain */

typedef struct em_persist_task {
    struct {
        uint32_t node, partition;
        uint64_t fingerprint;
        int storage; /* Ember__StorageLevel */
        em_batch_writer out;
    } nodes[EM_PERSIST_MAX]; /* nearest the chain's end first */
    size_t n;
    em_block *hit;     /* the cached partition read */
    uint32_t hit_node; /* whose partition it is: the chain runs after it */
    em_tap taps[EM_PERSIST_MAX];
    size_t n_taps;
} em_persist_task;

/* em_persist_begin prepares task `partition` of stage def: pt->hit set on a cache hit, and
 * taps for em_pipeline_run_tapped on the persisted nodes after it. */
int em_persist_begin(em_blockstore *bs, const Ember__StageDef *def, uint32_t partition,
                     em_persist_task *pt);
/* em_persist_keep stores what the taps copied and lists stored and evicted partitions in res. */
void em_persist_keep(em_blockstore *bs, em_persist_task *pt, ex_result *res);
void em_persist_end(em_blockstore *bs, em_persist_task *pt);

#endif
