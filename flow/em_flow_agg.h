/* em_flow_agg.h -- the aggregate node: per key (its `by` columns), sum, min, max, count and
 * avg of columns, folded on both sides of a shuffle through a fixed-size accumulator.
 *
 * The accumulator describes itself: a 16-byte header (the aggregate count, then each one's
 * operation and column type) and 16 bytes of state per aggregate. So the fold that merges two
 * accumulators (em_agg_merge) needs nothing but their bytes, and runs as the seq and comb of
 * ember_aggregate_by_key: the map side turns each record into a one-record accumulator keyed
 * by the row of its `by` columns (em_agg_key), the reduce side gives the columns of the result
 * (em_agg_result). The same accumulator folds the windows of a stream (ember_window_aggregate,
 * a window on the record's time column) and the running totals of one (the keyed state of
 * ember_map_with_state). An aggregate may fold with a function of the job library instead
 * (em_flow_fn.h): its accumulator has a header of its own, and these calls hand over to it.
 */
#ifndef EM_FLOW_AGG_H
#define EM_FLOW_AGG_H

#include <stddef.h>

#include "em_flow_node.h"
#include "em_value.h"

/* em_agg_acc_len: the accumulator's bytes for node n */
size_t em_agg_acc_len(const em_node *n);

/* em_agg_zero writes the accumulator of no records */
void em_agg_zero(const em_node *n, void *acc);

/* em_agg_acc_bytes: the length of an accumulator as its header says (0: it is none); avail is
 * how many bytes may be read at acc (at least 16) */
size_t em_agg_acc_bytes(const void *acc, size_t avail);

/* em_agg_record writes the accumulator of one record (its columns cols); -1 with a message
 * when a library's function fails */
int em_agg_record(const em_node *n, const em_value *cols, void *acc, char *err, size_t errlen);

/* em_agg_merge folds `other` into acc (same node); -1 when an integer sum overflows, or the
 * two are not accumulators of the same aggregates (message in err) */
int em_agg_merge(void *acc, const void *other, size_t len, char *err, size_t errlen);

/* em_agg_key writes the row of the record's `by` columns into buf; its length, or 0 when over
 * cap */
size_t em_agg_key(const em_node *n, const em_value *cols, void *buf, size_t cap);

/* em_agg_result gives the result's columns (the `by` columns, window_start and window_end for
 * a window starting at window_start, then each aggregate) from the key row and the
 * accumulator; -1 when they are not of this node */
int em_agg_result(const em_node *n, const void *key, size_t key_len, const void *acc,
                  size_t acc_len, int64_t window_start, em_value *cols);

/* em_agg_event_time: the event time a record enters the aggregate's window at (its time
 * column), or `ts` for an aggregate without a window */
int64_t em_agg_event_time(const em_node *n, const em_value *cols, int64_t ts);

/* em_agg_window: whether the aggregate has a window, with its length, slide and delay (ms) */
int em_agg_window(const em_node *n, int64_t *length_ms, int64_t *slide_ms, int64_t *delay_ms);

#endif
