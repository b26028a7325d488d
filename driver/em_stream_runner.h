/* em_stream_runner.h -- the driver's stream thread: the I/O of every query's batch cycle.
 *
 * One thread for all queries. For each it opens the checkpoint (em_stream_log.h), and then,
 * per trigger: reads the topic's partitions and watermarks, plans the batch
 * (em_stream_plan), logs its offsets, and builds its job for the driver loop to submit; once
 * the job ended, commits the sink's output (the file sink's batch directory renamed into
 * place) and logs the commit. A Kafka error leaves the query running and is retried at the
 * next trigger (status: warning); a failed batch fails the query, whose checkpoint then
 * resumes with that batch. See em_stream.h for the cycle and the lock.
 */
#ifndef EM_STREAM_RUNNER_H
#define EM_STREAM_RUNNER_H

#include <stddef.h>

#include "em_stream.h"

typedef struct em_stream_runner em_stream_runner;

int em_stream_runner_start(em_streams *streams, em_stream_runner **out, char *err, size_t errlen);
/* em_stream_runner_stop ends the thread (a batch being planned or committed is finished
 * first) and frees what it held for the queries. */
void em_stream_runner_stop(em_stream_runner *r);

/* em_stream_batch_job builds the job of batch `batch` of query q over `ranges`, its windows'
 * watermarks following `times` and their state in the checkpoint, a Kafka sink fenced with
 * `sink` (may be NULL: no marks, no replay) (for the driver's em_sched; exposed for tests).
 * NULL without memory. */
Ember__SubmitJob *em_stream_batch_job(const em_query *q, int64_t batch,
                                      const em_stream_range *ranges, size_t n,
                                      const em_event_times *times, const em_sink_marks *sink);
/* em_stream_sink_paths: the file sink's directory of a batch while it is written, and once
 * complete */
void em_stream_sink_paths(const char *dir, int64_t batch, char *tmp, char *final, size_t len);

#endif
