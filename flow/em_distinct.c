/* em_distinct.c -- distinct counts, exact then HyperLogLog (em_distinct.h). */
#include "em_distinct.h"

#include <math.h>
#include <string.h>

enum { MODE_EXACT = 0, MODE_HLL = 1 };

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, sizeof v); }

static uint64_t hash_at(const uint8_t *data, size_t k)
{
    uint64_t h;
    memcpy(&h, data + 8 * k, sizeof h);
    return h;
}

void em_distinct_init(uint8_t *block, int p) { memset(block, 0, em_distinct_bytes(p)); }

static void hll_add(uint8_t *regs, int p, uint64_t hash)
{
    size_t index = (size_t)(hash >> (64 - p));
    uint64_t rest = hash << p | (uint64_t)1 << (p - 1); /* a guard bit: at most 64 - p + 1 */
    uint8_t rank = (uint8_t)(__builtin_clzll(rest) + 1);
    if (rank > regs[index]) regs[index] = rank;
}

/* to_hll turns an exact block into registers holding its hashes */
static void to_hll(uint8_t *block, int p)
{
    uint8_t *data = block + EM_DISTINCT_HEADER;
    size_t n = get32(block + 4);
    uint64_t hashes[((size_t)1 << 12) / 8];
    for (size_t k = 0; k < n; k++) hashes[k] = hash_at(data, k);
    memset(data, 0, (size_t)1 << p);
    for (size_t k = 0; k < n; k++) hll_add(data, p, hashes[k]);
    put32(block, MODE_HLL);
    put32(block + 4, 0);
}

void em_distinct_add(uint8_t *block, int p, uint64_t hash)
{
    uint8_t *data = block + EM_DISTINCT_HEADER;
    if (get32(block) == MODE_EXACT) {
        size_t n = get32(block + 4);
        for (size_t k = 0; k < n; k++)
            if (hash_at(data, k) == hash) return;
        if (n < em_distinct_exact_max(p)) {
            memcpy(data + 8 * n, &hash, sizeof hash);
            put32(block + 4, (uint32_t)n + 1);
            return;
        }
        to_hll(block, p);
    }
    hll_add(data, p, hash);
}

void em_distinct_merge(uint8_t *a, const uint8_t *b, int p)
{
    const uint8_t *bd = b + EM_DISTINCT_HEADER;
    if (get32(b) == MODE_EXACT) {
        for (size_t k = 0, n = get32(b + 4); k < n; k++) em_distinct_add(a, p, hash_at(bd, k));
        return;
    }
    if (get32(a) == MODE_EXACT) to_hll(a, p);
    uint8_t *ad = a + EM_DISTINCT_HEADER;
    for (size_t k = 0; k < (size_t)1 << p; k++)
        if (bd[k] > ad[k]) ad[k] = bd[k];
}

int64_t em_distinct_count(const uint8_t *block, int p)
{
    if (get32(block) == MODE_EXACT) return get32(block + 4);
    const uint8_t *regs = block + EM_DISTINCT_HEADER;
    double m = (double)((size_t)1 << p), sum = 0;
    size_t zeros = 0;
    for (size_t k = 0; k < (size_t)1 << p; k++) {
        sum += ldexp(1.0, -regs[k]);
        zeros += regs[k] == 0;
    }
    double estimate = 0.7213 / (1 + 1.079 / m) * m * m / sum;
    if (estimate <= 2.5 * m && zeros > 0) estimate = m * log(m / (double)zeros);
    return llround(estimate);
}
