/* em_stream_log.h -- a streaming query's checkpoint directory: what makes its output exactly
 * once across crashes and restarts.
 *
 *   CHECKPOINT/metadata     the query's name and its graph's fingerprint (JSON)
 *   CHECKPOINT/offsets/N    batch N's offset ranges, written and synced before N runs, the
 *                           event times its windows' watermarks follow, and where a Kafka
 *                           sink's partitions ended (its output starts after)
 *   CHECKPOINT/commits/N    written once batch N's output is complete, with the largest event
 *                           time read so far
 *   CHECKPOINT/state/I/P/   window node I's state, reduce partition P (executor/em_window.h)
 *
 * Every file is written whole (temporary file, fsync, rename, directory fsync). On a restart,
 * the last offsets entry without a commit is the batch that was running: it runs again with
 * exactly its logged ranges and watermarks, so its output is the same; the next batch starts
 * where the last logged one ended. The last EM_QLOG_KEEP entries of each log are kept, older ones
 * removed.
 */
#ifndef EM_STREAM_LOG_H
#define EM_STREAM_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "em_stream.h"

#define EM_QLOG_KEEP 100

/* em_qlog_state: what a checkpoint says at open */
typedef struct em_qlog_state {
    int64_t last_planned;    /* the last batch in the offsets log (-1: none) */
    int64_t last_committed;  /* the last batch in the commits log (-1: none) */
    em_stream_range *ranges; /* the ranges of last_planned (owned; NULL when none) */
    size_t n_ranges;
    em_event_times times;        /* what last_planned applied (EM_NO_WATERMARK: none) */
    int64_t committed_max;       /* the largest event time as of last_committed (EM_NO_WATERMARK:
                                    none, or not logged) */
    em_stream_range *sink_marks; /* last_planned's Kafka sink marks (owned; NULL: none) */
    size_t n_sink_marks;
} em_qlog_state;

/* em_query_fingerprint: a hash of what a checkpoint's batches depend on: the graph's nodes and
 * functions, the topic and the sink; not the library's build, the broker's address, the
 * trigger interval, the caps per batch or rate, back-pressure, or the offsets of a static
 * topic (read again by every batch), which may change between runs. */
uint64_t em_query_fingerprint(const Ember__JobGraph *g, int32_t stream_node);

/* em_qlog_open makes or opens the checkpoint `dir` of query `name`: a checkpoint of another
 * query, or of another graph, is refused saying so. */
int em_qlog_open(const char *dir, const char *name, uint64_t fingerprint, em_qlog_state *out,
                 char *err, size_t errlen);
void em_qlog_state_free(em_qlog_state *st);

/* em_qlog_write_offsets logs batch's ranges, times and Kafka sink marks (n_marks may be 0) */
int em_qlog_write_offsets(const char *dir, int64_t batch, const char *topic,
                          const em_stream_range *ranges, size_t n, const em_event_times *times,
                          const em_stream_range *marks, size_t n_marks, char *err, size_t errlen);
int em_qlog_write_commit(const char *dir, int64_t batch, int64_t records_in, int64_t records_out,
                         int64_t event_time_max, char *err, size_t errlen);

#endif
