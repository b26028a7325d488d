/* em_window.h -- event-time windows on an executor (the NODE_WINDOW of a streaming query).
 *
 * Map side (em_window_mapper, inside the shuffle writer): a record's event time (its
 * timestamp) picks its pane, the slide of event time it falls in; the record is combined under
 * the composite key [pane, 8 bytes big-endian][key] and shuffled by its key alone, so that a
 * key's every pane meets in one reduce partition. A record whose event time is behind the
 * batch's watermark is late (as in Spark): counted, never combined. So every record combined
 * has all its windows open (they end after it, so after the watermark), and a final window
 * holds exactly the records of batches whose watermark was not past them. Event times beyond
 * +-EM_EVENT_TIME_MAX are counted as late too. The largest event time read is noted for
 * the driver, whose watermark follows it.
 *
 * Reduce side (em_window_reduce): reduce partition p keeps the panes of its keys between
 * batches (its state). A batch folds its combined panes into the state, emits every window
 * that its watermark made final (end in (previous watermark, watermark]: the window's panes
 * combined in event-time order), and drops the panes no window still open needs. The state is
 * version N (the batch) of STATE_DIR/p/ in em_state_store.h: each delta holds the batch's panes
 * and, as its mark, the first pane still needed (the cut).
 */
#ifndef EM_WINDOW_H
#define EM_WINDOW_H

#include <ember/ember.h>
#include <stddef.h>
#include <stdint.h>

#include "em_buf.h"
#include "em_combine.h"
#include "em_graph.h"
#include "em_pipeline.h"
#include "em_state_store.h"
#include "ember.pb-c.h"

/* ---- map side ---- */

typedef struct em_window_mapper {
    const Ember__Node *node;
    em_record_fn late_fn; /* also given each late record (the dead-letter topic), or NULL */
    void *late_arg;
    em_buf key;     /* the composite key being built */
    uint8_t one[8]; /* a count's value */
    int has_event_time;
    int64_t max_event_time;
    int64_t late;
} em_window_mapper;

void em_window_mapper_init(em_window_mapper *m, const Ember__Node *node);
void em_window_mapper_free(em_window_mapper *m);
/* em_window_map: 1 with *out the record to combine (valid until the next call), 0 for a late
 * record (counted, and given to late_fn), or the error of late_fn or out of memory. */
int em_window_map(em_window_mapper *m, const ember_record *in, ember_record *out);
/* em_window_key_hash: the hash that picks a composite record's reduce partition: its key's */
uint64_t em_window_key_hash(const ember_record *composite);

/* ---- reduce side ---- */

/* em_window_reduce runs reduce partition `partition` of window node `node` for one batch:
 * `batch` holds the batch's panes, combined (composite keys); `reducer` or `fold` (acc_len > 0:
 * aggregate) merges accumulators, as the batch's own combiner does. Final windows go to emit. */
int em_window_reduce(em_state_cache *states, const Ember__Node *node, uint32_t partition,
                     Ember__Reducer reducer, const em_fold *fold, em_combiner *batch,
                     em_record_fn emit, void *emit_arg, char *err, size_t errlen);

#endif
