/* em_state_store.h -- what a streaming query's reduce partitions keep between batches
 * (event-time windows, keyed state): versioned files in the checkpoint, and the latest
 * version of each in the executor's memory.
 *
 * A state is an em_combiner (key -> accumulator). Version N of the state in DIR is written by
 * batch N as DIR/N.delta (the entries the batch changed and a mark, 8 bytes) and, every
 * EM_STATE_SNAPSHOT_EVERY versions, DIR/N.snapshot (the whole state); files older than two
 * snapshots are removed. Version N is rebuilt from the last snapshot at or before it and the
 * deltas after it, each file's entries added to the state (the combiner's fold merges them)
 * and then its mark applied by the owner (em_state_ops.after_file: a window drops the panes
 * before its cut, keyed state its removed keys). So a batch that runs again, on this executor
 * or another, starts from exactly the state its first run started from.
 *
 * The cache keeps the latest state of up to EM_STATE_CACHED directories, tied to the
 * directory's identity (device and inode: a checkpoint removed and made again is another);
 * the files are read only when the cache does not hold the version a batch starts from.
 */
#ifndef EM_STATE_STORE_H
#define EM_STATE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "em_combine.h"

#define EM_STATE_SNAPSHOT_EVERY 50
#define EM_STATE_CACHED         64
#define EM_STATE_NO_MARK        INT64_MIN

/* em_state_ops: how its owner makes and trims a state */
typedef struct em_state_ops {
    em_combiner *(*empty)(void *arg); /* a new empty state (NULL: out of memory) */
    /* after_file applies a file's mark once its entries were added (may replace *state) */
    int (*after_file)(em_combiner **state, int64_t mark, void *arg);
    void *arg;
} em_state_ops;

typedef struct em_state_cache em_state_cache;

em_state_cache *em_state_cache_new(void);
void em_state_cache_free(em_state_cache *c);

/* em_state_open gives *out, the state of dir at `version` (-1: empty), from the cache or the
 * files; the caller owns it. A missing file is an error naming it. */
int em_state_open(em_state_cache *c, const char *dir, int64_t version, const em_state_ops *ops,
                  em_combiner **out, char *err, size_t errlen);
/* em_state_commit writes version `version` of dir (delta: the entries the batch changed, and
 * mark) and keeps `state` (taken, freed on failure) in the cache as that version. */
int em_state_commit(em_state_cache *c, const char *dir, int64_t version, int64_t mark,
                    const em_combiner *delta, em_combiner *state, char *err, size_t errlen);

#endif
