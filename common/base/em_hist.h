/* em_hist.h -- a histogram of latencies in milliseconds, mergeable across tasks: exact below
 * 16 ms, then 16 buckets per power of two (relative error under 1/16), up to 2^47 ms. Sent
 * between processes as (bucket, count) pairs of its non-empty buckets.
 */
#ifndef EM_HIST_H
#define EM_HIST_H

#include <stddef.h>
#include <stdint.h>

#define EM_HIST_SUB     16
#define EM_HIST_BUCKETS (EM_HIST_SUB * 44)

typedef struct em_hist {
    uint64_t count[EM_HIST_BUCKETS];
    uint64_t total;
} em_hist;

/* em_hist_add counts one value (negative values count as 0) */
void em_hist_add(em_hist *h, int64_t ms);
/* em_hist_add_bucket adds count values of bucket b (b out of range: ignored) */
void em_hist_add_bucket(em_hist *h, uint32_t b, uint64_t count);
/* em_hist_quantile: the value at quantile q (0..1), as its bucket's upper bound; -1 when empty */
int64_t em_hist_quantile(const em_hist *h, double q);
/* em_hist_bucket_of: the bucket of a value (for tests) */
uint32_t em_hist_bucket_of(int64_t ms);

#endif
