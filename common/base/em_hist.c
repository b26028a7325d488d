/* em_hist.c -- latency histograms (see em_hist.h). */
#include "em_hist.h"

uint32_t em_hist_bucket_of(int64_t ms)
{
    if (ms < EM_HIST_SUB) return ms < 0 ? 0 : (uint32_t)ms;
    int top = 63 - __builtin_clzll((unsigned long long)ms); /* ms >= 16: top >= 4 */
    uint32_t sub = (uint32_t)(ms >> (top - 4)) & (EM_HIST_SUB - 1);
    uint32_t b = (uint32_t)(top - 3) * EM_HIST_SUB + sub;
    return b < EM_HIST_BUCKETS ? b : EM_HIST_BUCKETS - 1;
}

/* upper: the largest value of bucket b */
static int64_t upper(uint32_t b)
{
    if (b < EM_HIST_SUB) return b;
    int top = (int)(b / EM_HIST_SUB) + 3;
    int64_t base = (int64_t)1 << top, step = base / EM_HIST_SUB;
    return base + (int64_t)(b % EM_HIST_SUB + 1) * step - 1;
}

void em_hist_add(em_hist *h, int64_t ms)
{
    h->count[em_hist_bucket_of(ms)]++;
    h->total++;
}

void em_hist_add_bucket(em_hist *h, uint32_t b, uint64_t count)
{
    if (b >= EM_HIST_BUCKETS) return;
    h->count[b] += count;
    h->total += count;
}

int64_t em_hist_quantile(const em_hist *h, double q)
{
    if (h->total == 0) return -1;
    uint64_t rank = (uint64_t)(q * (double)h->total);
    if (rank >= h->total) rank = h->total - 1;
    uint64_t seen = 0;
    for (uint32_t b = 0; b < EM_HIST_BUCKETS; b++) {
        seen += h->count[b];
        if (seen > rank) return upper(b);
    }
    return upper(EM_HIST_BUCKETS - 1);
}
