/* em_distinct.h -- a count of distinct values in a fixed block of bytes: exact while the values
 * are few, then a HyperLogLog estimate (the distinct_count aggregate of flows).
 *
 * A block holds 8 header bytes (its mode and, while exact, how many hashes it holds) and 2^p
 * bytes of data: while exact, up to 2^p / 8 distinct 64-bit hashes of the values; past that,
 * 2^p HyperLogLog registers (Flajolet et al. 2007: a hash's first p bits pick a register, which
 * keeps the most leading zeros + 1 seen in the rest; the estimate is the bias-corrected harmonic
 * mean, or linear counting while registers are empty), standard error 1.04 / sqrt(2^p). The
 * switch depends only on the union's size, so blocks merged in any order give the same bytes
 * in HyperLogLog mode and the same count in exact mode. Blocks need no alignment.
 */
#ifndef EM_DISTINCT_H
#define EM_DISTINCT_H

#include <stddef.h>
#include <stdint.h>

#define EM_DISTINCT_HEADER 8

/* em_distinct_bytes: a block's size for precision p (4..12) */
static inline size_t em_distinct_bytes(int p) { return EM_DISTINCT_HEADER + ((size_t)1 << p); }

/* em_distinct_exact_max: how many distinct values a block of precision p counts exactly */
static inline size_t em_distinct_exact_max(int p) { return ((size_t)1 << p) / 8; }

/* em_distinct_init empties a block (all zero bytes are an empty block too) */
void em_distinct_init(uint8_t *block, int p);

/* em_distinct_add counts a value by its 64-bit hash */
void em_distinct_add(uint8_t *block, int p, uint64_t hash);

/* em_distinct_merge folds block b into block a (both of precision p) */
void em_distinct_merge(uint8_t *a, const uint8_t *b, int p);

/* em_distinct_count: the number of distinct values, exact or estimated */
int64_t em_distinct_count(const uint8_t *block, int p);

#endif
