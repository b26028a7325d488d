/* stream_tail.h -- tailing a topic with librdkafka, for bench/streaming's floor and reader.
 *
 * A tail consumer has ember's consumer settings (em_kafka_consumer_new: no group join, no
 * commits, partition EOF events, queued.min.messages=1000000, Nagle off) except its
 * fetch.wait.max.ms: the embedded broker (librdkafka 2.0.2's mock cluster) holds a fetch that
 * found nothing for the whole fetch.wait.max.ms, even when records arrive meanwhile (a real
 * broker answers as soon as they do), so a consumer that waits for new records adds up to that
 * wait to each one's latency. ember's executors read offset ranges that are already written and
 * never wait so; a tail does, so it asks for a short wait (1 ms by default in the bench).
 */
#ifndef STREAM_TAIL_H
#define STREAM_TAIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <librdkafka/rdkafka.h>

/* st_consumer_new creates a tail consumer of `bootstrap`; 0, or -1 with err filled. On
 * success *out owns the handle (rd_kafka_destroy). */
int st_consumer_new(const char *bootstrap, int fetch_wait_ms, rd_kafka_t **out, char *err,
                    size_t errlen);

/* st_next takes what q holds (up to size records) without waiting, or else waits up to
 * wait_ms for one record, so that a record is handed over as soon as it arrives. Partition EOF
 * events are dropped. Returns the number of records in msgs (each to be destroyed by the
 * caller), or -1 with err filled when the consumer reported an error (msgs then empty). */
ssize_t st_next(rd_kafka_queue_t *q, rd_kafka_message_t **msgs, size_t size, int wait_ms, char *err,
                size_t errlen);

/* st_write_ready writes "ready" to path through a temporary file and a rename; 0 or -1. */
int st_write_ready(const char *path);

#endif
