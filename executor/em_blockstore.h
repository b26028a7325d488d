/* em_blockstore.h -- an executor's block store: named byte blocks in memory, spilled to disk
 * over a memory cap.
 *
 * Blocks are the unit executors keep and serve to each other (cached partitions and shuffle
 * outputs are stored as record batches under ids like "shuffle_3_1_7"). A put that fits under
 * the memory cap keeps the caller's bytes in memory; a put that would exceed it writes the
 * block to a file of its own in the spill directory and frees the bytes. A spilled block is
 * read back into pooled chunks while it is read (the blocks read that way at once within a
 * quarter of the memory cap), else through a read-only mapping of its file. A put that can
 * be kept neither way fails with EMBER_ERR_IO and a message saying why.
 * Thread-safe: every function takes the store's lock (files are written and unlinked outside
 * it). get returns a reference that the caller releases, so a block stays alive and readable
 * while it is being served, even if it is removed or replaced meanwhile.
 */
#ifndef EM_BLOCKSTORE_H
#define EM_BLOCKSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "em_chunks.h"

typedef struct em_blockstore em_blockstore;
typedef struct em_block em_block;

/* em_blockstore_new makes an empty store keeping up to cap_bytes in memory. spill_dir (copied;
 * NULL: never spill) receives blocks over the cap; it is created (mode 0700) on the first spill
 * if missing. Returns NULL when out of memory. */
em_blockstore *em_blockstore_new(uint64_t cap_bytes, const char *spill_dir);
/* em_blockstore_free frees every block, unlinks every spill file the store holds, and removes
 * the spill directory if the store created it. No block may still be referenced. NULL is
 * accepted. */
void em_blockstore_free(em_blockstore *bs);
/* em_blockstore_put stores len bytes (malloc'd) as block id, replacing any block of that id.
 * On success the store takes ownership of bytes (and frees them at once if it spilled the
 * block); on failure the caller keeps them, the store is unchanged and err says why:
 * EMBER_ERR_IO when the block is over the memory cap and cannot be spilled (no spill
 * directory, disk full, ...), EMBER_ERR_NOMEM. */
int em_blockstore_put(em_blockstore *bs, const char *id, void *bytes, size_t len, char *err,
                      size_t errlen);
/* em_blockstore_put_chunks is em_blockstore_put of a block held in pooled chunks of record
 * batches (em_batch_chunks), a malloc'd array of n; on success the store owns the array and
 * the chunks (given back to the pool when the block goes), on failure the caller keeps them.
 * *spilled (may be NULL) grows by the block's bytes if it went to a spill file. */
int em_blockstore_put_chunks(em_blockstore *bs, const char *id, em_chunk *chunks, size_t n,
                             uint64_t *spilled, char *err, size_t errlen);
/* em_blockstore_get returns a referenced block or NULL (not held, or a spill file that cannot
 * be read: logged); release it with em_block_release. */
em_block *em_blockstore_get(em_blockstore *bs, const char *id);
/* em_block_data gives a referenced block's bytes (in memory, read back, or the read-only
 * mapping of its spill file); valid until the reference is released. */
const void *em_block_data(const em_block *b, size_t *len);
/* em_block_pieces: how many pieces a referenced block's bytes are in (a block put in chunks:
 * its chunks, in memory or read back from its spill file; any other: one); record batches
 * never straddle two pieces.
 * em_block_piece gives piece i. em_block_data is for blocks of one piece. */
size_t em_block_pieces(const em_block *b);
const void *em_block_piece(const em_block *b, size_t i, size_t *len);
void em_block_release(em_blockstore *bs, em_block *b);
/* em_blockstore_remove forgets block id (its memory or spill file goes with its last
 * reference); EMBER_ERR_NOT_FOUND if not held. */
int em_blockstore_remove(em_blockstore *bs, const char *id);
/* em_blockstore_remove_prefix removes every block whose id starts with prefix; returns how many. */
size_t em_blockstore_remove_prefix(em_blockstore *bs, const char *prefix);
/* em_blockstore_put_evicting keeps a block in memory only, making room by evicting blocks
 * whose id starts with `evictable` but not with `keep` (a dataset's partitions do not evict
 * each other), least recently used (put or get) first; evicted is called (under the store's
 * lock: keep it short) for each. A block that would not fit even then is refused with
 * EMBER_ERR_TOO_LARGE, nothing evicted, and its bytes stay the caller's. */
int em_blockstore_put_evicting(em_blockstore *bs, const char *id, void *bytes, size_t len,
                               const char *evictable, const char *keep,
                               void (*evicted)(void *arg, const char *id, size_t len), void *arg);
/* em_blockstore_used is the memory blocks held in memory take (at most the cap): the bytes of
 * blocks put whole, the chunks' sizes of blocks put in chunks (more than their bytes: a
 * block's last chunk is partly used). The cap is checked against the same figure. */
uint64_t em_blockstore_used(em_blockstore *bs);
/* em_blockstore_disk_used is the bytes of blocks held in spill files. */
uint64_t em_blockstore_disk_used(em_blockstore *bs);
/* em_blockstore_spilled is the bytes of every block ever written to a spill file. */
uint64_t em_blockstore_spilled(em_blockstore *bs);
/* em_blockstore_count is the number of blocks held, in memory and on disk. */
uint64_t em_blockstore_count(em_blockstore *bs);

#endif
