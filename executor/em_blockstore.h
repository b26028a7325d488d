/* em_blockstore.h -- an executor's block store: named byte blocks under a memory cap.
 *
 * Blocks are the unit executors keep and serve to each other (cached partitions and shuffle
 * outputs are stored as record batches under ids like "shuffle_3_1_7"). A put that would
 * exceed the cap is refused with EMBER_ERR_TOO_LARGE; callers decide whether to spill.
 * Thread-safe: every function takes the store's lock. get returns a reference that the
 * caller releases, so a block stays alive while it is being served.
 */
#ifndef EM_BLOCKSTORE_H
#define EM_BLOCKSTORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct em_blockstore em_blockstore;
typedef struct em_block em_block;

em_blockstore *em_blockstore_new(uint64_t cap_bytes);
void em_blockstore_free(em_blockstore *bs);
/* em_blockstore_put takes ownership of bytes (malloc'd) on success. */
int em_blockstore_put(em_blockstore *bs, const char *id, void *bytes, size_t len);
/* em_blockstore_get returns a referenced block or NULL; release it with em_block_release. */
em_block *em_blockstore_get(em_blockstore *bs, const char *id);
const void *em_block_data(const em_block *b, size_t *len);
void em_block_release(em_blockstore *bs, em_block *b);
int em_blockstore_remove(em_blockstore *bs, const char *id);
/* em_blockstore_remove_prefix removes every block whose id starts with prefix; returns how many. */
size_t em_blockstore_remove_prefix(em_blockstore *bs, const char *prefix);
uint64_t em_blockstore_used(em_blockstore *bs);
uint64_t em_blockstore_count(em_blockstore *bs);

#endif
