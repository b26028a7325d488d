/* em_hash.h -- the one hash of ember: XXH3 64-bit (xxHash 0.8) with a fixed seed.
 *
 * Used for frame and batch checksums now, and for key partitioning: it gives the same value
 * in every process, on every run and every machine (unlike a per-process randomized hash).
 * em_hash64(p, n) == XXH3_64bits_withSeed(p, n, 0x656d626572) ("ember" in ASCII).
 */
#ifndef EM_HASH_H
#define EM_HASH_H

#include <stddef.h>
#include <stdint.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#define EM_HASH_SEED UINT64_C(0x656d626572)

static inline uint64_t em_hash64(const void *p, size_t n)
{
    return XXH3_64bits_withSeed(p, n, EM_HASH_SEED);
}

/* em_hash64_sealed hashes a header's first 16 bytes and then a body: the checksum of frames
 * and record batches, which must cover their counts and lengths as well as their contents. */
uint64_t em_hash64_sealed(const uint8_t header[16], const void *body, size_t body_len);

#endif
