/* em_rate.c -- the adaptive rate of a streaming query and the caps per partition it gives
 * (see em_rate.h). */
#include "em_rate.h"

#define KP 1.0
#define KI 0.2
#define KD 0.0

void em_rate_update(em_rate *r, int64_t now_ms, int64_t records, double processing_ms,
                    double scheduling_delay_ms, double overhead_ms, int64_t interval_ms)
{
    if (records <= 0 || processing_ms <= 0 || interval_ms <= 0) return;
    if (r->measured && now_ms <= r->last_ms) return;
    r->overhead_ms = overhead_ms > 0 ? overhead_ms : 0;
    double processing_rate = (double)records / processing_ms * 1000.0;
    if (!r->measured) { /* the first batch sets the rate it could process */
        r->measured = 1;
        r->has_rate = 1;
        r->rate = processing_rate > EM_RATE_MIN ? processing_rate : EM_RATE_MIN;
        r->last_error = 0;
        r->last_ms = now_ms;
        return;
    }
    double since_s = (double)(now_ms - r->last_ms) / 1000.0;
    double error = r->rate - processing_rate;
    double historical = scheduling_delay_ms * processing_rate / (double)interval_ms;
    double d_error = (error - r->last_error) / since_s;
    double rate = r->rate - KP * error - KI * historical - KD * d_error;
    r->rate = rate > EM_RATE_MIN ? rate : EM_RATE_MIN;
    r->last_error = error;
    r->last_ms = now_ms;
}

void em_stream_caps(const int64_t *lag, size_t n, int64_t cap, double rate_cap,
                    const em_rate *adaptive, int64_t interval_ms, int64_t *out)
{
    double seconds = (double)interval_ms / 1000.0;
    double budget_s = adaptive && adaptive->overhead_ms > (double)interval_ms
                          ? adaptive->overhead_ms / 1000.0
                          : seconds;
    int64_t total_lag = 0;
    for (size_t i = 0; i < n; i++) total_lag += lag[i] > 0 ? lag[i] : 0;
    for (size_t i = 0; i < n; i++) {
        double limit = cap > 0 ? (double)cap : 0; /* 0: none yet */
        if (rate_cap > 0) {
            double by_rate = rate_cap * seconds;
            if (limit == 0 || by_rate < limit) limit = by_rate;
        }
        if (adaptive) {
            double share = EM_RATE_INITIAL_RECORDS;
            if (adaptive->has_rate) /* the batch's records, shared by lag */
                share = total_lag > 0 && lag[i] > 0
                            ? adaptive->rate * budget_s * (double)lag[i] / (double)total_lag
                            : 0;
            if (limit == 0 || share < limit) limit = share;
        }
        int64_t records = (int64_t)limit;
        if ((cap > 0 || rate_cap > 0 || adaptive) && records < 1) records = 1;
        out[i] = records;
    }
}
