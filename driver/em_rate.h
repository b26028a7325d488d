/* em_rate.h -- back-pressure for streaming queries: how many records a batch may read.
 *
 * The adaptive rate is a PID controller on each batch's figures, as Spark Streaming's
 * PIDRateEstimator: after a batch of n records whose job ran p ms, and which waited s ms to
 * start (late after its trigger, or queued in the driver), the processing rate is n / p; the
 * error is the last rate minus it, the historical error the records left waiting
 * (s * rate / interval), and the new rate is
 *
 *     rate - kp * error - ki * historical - kd * d(error)/dt,   at least min_rate
 *
 * (kp 1, ki 0.2, kd 0, min_rate 100 records/s). The first batch only measures. A batch then
 * reads at most rate * budget records, shared among the partitions by their lag, and never
 * more per partition than a fixed cap (records per batch) or rate cap (records per second)
 * allow. The budget is the trigger interval, or the batch's own fixed work outside its job
 * (planning, the offsets log, the commit) when that takes longer: a batch of rate * interval
 * records whose fixed part alone outlasts the interval would process fewer records per second
 * than its rate, and the rate would shrink batch after batch to its floor for a cost that does
 * not depend on records. Pure arithmetic: no clock, no I/O.
 */
#ifndef EM_RATE_H
#define EM_RATE_H

#include <stddef.h>
#include <stdint.h>

#define EM_RATE_MIN             100.0 /* records per second */
#define EM_RATE_INITIAL_RECORDS 10000 /* per partition and batch, until a rate is known */

typedef struct em_rate {
    double rate; /* records per second (valid once has_rate) */
    int has_rate;
    int measured;    /* a first batch was seen */
    int64_t last_ms; /* when the last batch that counted ended */
    double last_error;
    double overhead_ms; /* the last batch's fixed work outside its job */
} em_rate;

/* em_rate_update feeds one completed batch: `records` read, `processing_ms` its job ran,
 * `scheduling_delay_ms` it waited to start, `overhead_ms` of work outside its job, ending at
 * now_ms, of a query triggered every interval_ms. Batches without records or time change
 * nothing. */
void em_rate_update(em_rate *r, int64_t now_ms, int64_t records, double processing_ms,
                    double scheduling_delay_ms, double overhead_ms, int64_t interval_ms);

/* em_stream_caps: the most records each partition may read in the next batch. lag[i] is
 * partition i's records waiting; cap (records per batch, 0: none), rate_cap (records per
 * second per partition, 0: none) and the adaptive rate (NULL, or without a rate yet:
 * EM_RATE_INITIAL_RECORDS each; over the budget above) bound it; out[i] = 0 means no bound (only
 * when nothing bounds it). Every partition with a lag may read at least one record. */
void em_stream_caps(const int64_t *lag, size_t n, int64_t cap, double rate_cap,
                    const em_rate *adaptive, int64_t interval_ms, int64_t *out);

#endif
