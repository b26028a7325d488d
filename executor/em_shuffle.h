/* em_shuffle.h -- both ends of a shuffle on an executor.
 *
 * Map side (em_shuffle_writer): a map task's output records are split into one bucket per
 * reduce partition -- by em_hash64(key) % R, by key range (sort_by_key's bounds), or evenly
 * (repartition) -- and kept in the block store as "shuffle_<map stage>_<map partition>_<reduce
 * partition>"; the task reports each bucket's size. Buckets are written as record batches
 * into pooled fixed-size chunks (em_batch_chunks, em_chunks.h) and kept as they are: no
 * growing buffers, and the chunks of one job serve the next. Combining kinds (reduce_by_key,
 * aggregate_by_key, distinct) fold values per key first (map-side combine), flushing the
 * table into the buckets whenever it outgrows EM_COMBINE_FLUSH_BYTES.
 *
 * Reduce side (em_shuffle_read, a pipeline source): the task of reduce partition r fetches
 * bucket r of every map partition of every shuffle its wide node reads (from its own block
 * store without a copy, from other executors with FetchBlock, up to EM_FETCHES_IN_FLIGHT
 * requests outstanding at once; replies may arrive in any order but are used in side then map
 * order), and
 *   - combining kinds: folds them and emits one record per key, in first-seen order;
 *   - partition_by: emits the records as they come;
 *   - group_by_key / cogroup: emits one grouped record per key (em_wide.h), first-seen order;
 *   - sort_by_key: emits the records ordered by key, ties in arrival order.
 * Every order depends only on the data, so reruns give identical output.
 */
#ifndef EM_SHUFFLE_H
#define EM_SHUFFLE_H

#include <stddef.h>
#include <stdint.h>

#include "em_blockstore.h"
#include "em_combine.h"
#include "em_pipeline.h"
#include "em_rpc.h"

#define EM_PEERS_CACHED        8
#define EM_FETCHES_IN_FLIGHT   4  /* FetchBlock requests a reduce task has outstanding */
#define EM_FETCH_WINDOW        16 /* buckets a reduce task looks ahead (local ones are free) */
#define EM_COMBINE_FLUSH_BYTES (64u << 20)
/* EM_SHUFFLE_WRITE_BUDGET: about the bytes of open chunks a map task fills at once (one per
 * reducer; em_chunk_size_for picks their size) */
#define EM_SHUFFLE_WRITE_BUDGET ((size_t)32 << 20)

/* em_peers: connections of one slot to other executors, by address ("" = unused). A peer
 * has one channel per request it may have in flight, opened on first use; a peer with a
 * request in flight is never evicted (with at most EM_FETCHES_IN_FLIGHT <= EM_PEERS_CACHED
 * requests out, an idle peer always exists). Between tasks no request is in flight. */
typedef struct em_peers {
    struct em_peer {
        char address[256];
        em_rpc rpc;
        em_rpc_chan ch[EM_FETCHES_IN_FLIGHT];     /* aio NULL: not open */
        unsigned char busy[EM_FETCHES_IN_FLIGHT]; /* ch[i] has a request in flight */
    } peer[EM_PEERS_CACHED];
    unsigned next_victim;
    const em_secret *secret; /* the cluster secret, for the handshake (not owned) */
    size_t max_recv;         /* largest block accepted */
    const em_tls_files *tls; /* to verify peers on tls+tcp:// (not owned) */
} em_peers;

void em_peers_close(em_peers *peers);

typedef struct em_shuffle_writer em_shuffle_writer;

/* em_shuffle_writer_new prepares map partition map_part's output for wide node `wide`;
 * lib is the job library (aggregate_by_key's functions). */
int em_shuffle_writer_new(const Ember__Node *wide, void *lib, uint32_t map_part,
                          em_shuffle_writer **out, char *err, size_t errlen);
/* em_shuffle_writer_add takes one record; on failure em_shuffle_writer_error says why. */
int em_shuffle_writer_add(em_shuffle_writer *w, const ember_record *rec);
const char *em_shuffle_writer_error(const em_shuffle_writer *w);
/* em_shuffle_writer_store stores the buckets and fills bucket_bytes (one per reducer); *spilled
 * grows by the bytes that went to spill files (the memory cap was reached). */
int em_shuffle_writer_store(em_shuffle_writer *w, em_blockstore *blocks, uint64_t map_stage,
                            uint64_t *bucket_bytes, uint64_t *spilled, char *err, size_t errlen);
uint32_t em_shuffle_writer_reducers(const em_shuffle_writer *w);
/* em_shuffle_writer_on_late: a window's map side also gives fn each late record */
void em_shuffle_writer_on_late(em_shuffle_writer *w, em_record_fn fn, void *arg);
/* em_shuffle_writer_window: a window's map side: whether it read any record, the largest event
 * time among them, and how many were late */
void em_shuffle_writer_window(const em_shuffle_writer *w, int *has_event_time,
                              int64_t *max_event_time, int64_t *late);
void em_shuffle_writer_free(em_shuffle_writer *w);

/* em_fetch_failure: which map output a reduce task could not read (holder unreachable,
 * bucket missing or corrupt), so that the driver computes it again. */
typedef struct em_fetch_failure {
    int failed;
    uint64_t map_stage; /* the stage id in the bucket's block id */
    uint32_t map_partition;
} em_fetch_failure;

/* em_shuffle_read_arg: what a reduce task reads; a source for em_pipeline_run. */
typedef struct em_shuffle_read_arg {
    em_blockstore *blocks;
    em_peers *peers;
    const char *self;                  /* this executor's block address */
    const struct Ember__StageDef *def; /* the reduce stage (its shuffle_inputs) */
    const struct Ember__Node *node;    /* the wide node read */
    uint32_t partition;                /* of the wide node */
    void *lib;                         /* the job library */
    em_fetch_failure *failed;          /* set when a map output cannot be read (may be NULL) */
    struct em_state_cache *states;     /* streaming state kept between batches (em_state_store.h) */
    struct em_keyed_stats *keyed;      /* map_with_state: its figures (may be NULL) */
} em_shuffle_read_arg;

int em_shuffle_read(void *src, em_record_fn emit, void *emit_arg, char *err, size_t errlen);

#endif
