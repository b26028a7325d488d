/* em_blockid.h -- the names of blocks in executors' block stores, in one place.
 *
 * Two kinds of block exist:
 *   shuffle_<map stage>_<map partition>_<reduce partition>   one bucket of a map output
 *   rdd_<fingerprint as 16 hex digits>_<partition>           one cached partition
 * The driver names whole groups of them by prefix when it tells executors to drop them
 * (every bucket of a map stage, every partition of a cached dataset); a prefix always ends
 * in '_', so "shuffle_1_" never matches the blocks of stage 10.
 */
#ifndef EM_BLOCKID_H
#define EM_BLOCKID_H

#include <stddef.h>
#include <stdint.h>

#define EM_BLOCKID_MAX         64     /* every id and prefix fits, NUL included */
#define EM_BLOCKID_CACHED_KIND "rdd_" /* the prefix shared by every cached partition */

/* em_blockid_shuffle names bucket reduce_part of map partition map_part of a map stage. */
void em_blockid_shuffle(char out[EM_BLOCKID_MAX], uint64_t map_stage, uint32_t map_part,
                        uint32_t reduce_part);
/* em_blockid_shuffle_prefix names every bucket of a map stage. */
void em_blockid_shuffle_prefix(char out[EM_BLOCKID_MAX], uint64_t map_stage);
/* em_blockid_cached names partition part of the persisted dataset with this fingerprint. */
void em_blockid_cached(char out[EM_BLOCKID_MAX], uint64_t fingerprint, uint32_t part);
/* em_blockid_cached_prefix names every cached partition of one persisted dataset. */
void em_blockid_cached_prefix(char out[EM_BLOCKID_MAX], uint64_t fingerprint);
/* em_blockid_parse_cached reads a cached partition's id; returns 1 when id is one. */
int em_blockid_parse_cached(const char *id, uint64_t *fingerprint, uint32_t *part);

#endif
