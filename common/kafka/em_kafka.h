/* em_kafka.h -- librdkafka glue shared by executors, ember-submit and the Kafka tools.
 *
 * Creates consumers and producers tuned for ember (see FACTS.md: batch fetching from the
 * partition queue, Nagle off), looks up partitions and watermarks without ever creating a
 * topic, reads an exact offset range [from, until) of one partition, and writes records to a
 * topic through a sink that counts acknowledged deliveries.
 *
 * Every function returns EMBER_OK (0) or a negative ember_err and, on failure, writes a
 * one-line human reason to `err` (errlen bytes, always NUL-terminated; err may be NULL).
 * Handles (rd_kafka_t) belong to the caller, who frees them with rd_kafka_destroy().
 *
 * Threads: a consumer handle serves one range at a time and a producer handle one sink at a
 * time; call all functions on one handle from one thread (delivery reports of a sink run
 * inside em_kafka_sink_write/close, on the calling thread).
 */
#ifndef EM_KAFKA_H
#define EM_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include <ember/ember.h>

/* em_kafka_consumer_new creates a consumer for `bootstrap` (host:port[,host:port...]) meant
 * for em_kafka_read_range: group.id "ember" (required by librdkafka, never joined), no
 * auto-commit, auto.offset.reset=error, partition EOF events, allow.auto.create.topics=false,
 * queued.min.messages=1000000, fetch.wait.max.ms=10, socket.nagle.disable=true.
 * On success *out owns the new handle. */
int em_kafka_consumer_new(const char *bootstrap, rd_kafka_t **out, char *err, size_t errlen);

/* em_kafka_producer_new creates an idempotent producer (linger.ms=5, Nagle off, records
 * without a key spread over partitions one by one: sticky.partitioning.linger.ms=0) whose
 * delivery reports feed the em_kafka_sink that produced each message. The producer keeps
 * librdkafka's default allow.auto.create.topics (true): a broker that allows it creates a
 * topic a sink writes to. On success *out owns the new handle. */
int em_kafka_producer_new(const char *bootstrap, rd_kafka_t **out, char *err, size_t errlen);
/* em_kafka_producer_lingering is em_kafka_producer_new with linger.ms = linger_ms (how long a
 * batch waits for more records: longer makes larger batches, which compress better). */
int em_kafka_producer_lingering(const char *bootstrap, int linger_ms, rd_kafka_t **out, char *err,
                                size_t errlen);

/* em_kafka_partitions stores the sorted partition ids of `topic` in *parts (n_parts entries,
 * freed by the caller with free()). Never creates the topic on any handle: it asks for the
 * metadata of all topics, because a Metadata request that names a missing topic makes brokers
 * that ignore allow.auto.create.topics create it (librdkafka 2.0.2's mock cluster speaks only
 * Metadata v0-v2, which has no such flag, and auto-creates with 4 partitions).
 * Errors: EMBER_ERR_NOT_FOUND if the topic does not exist, EMBER_ERR_CONNECT if no broker can
 * be reached, EMBER_ERR_TIMEOUT, EMBER_ERR_KAFKA. */
int em_kafka_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, int32_t **parts,
                        int *n_parts, char *err, size_t errlen);

/* em_kafka_watermarks asks the partition leader for the low (first kept) and high (next to
 * be written) offsets of one partition.
 * Warning: this and em_kafka_read_range look the topic up by name, which creates a missing
 * topic on brokers that auto-create (always the mock cluster): check that the topic exists
 * with em_kafka_partitions first. */
int em_kafka_watermarks(rd_kafka_t *rk, const char *topic, int32_t partition, int timeout_ms,
                        int64_t *low, int64_t *high, char *err, size_t errlen);

/* em_kafka_watermarks_of is em_kafka_watermarks for n partitions of topic at once (two
 * requests in all, not two per partition): low[i] and high[i] are those of parts[i]; with low
 * NULL only the high watermarks are asked for (one request). */
int em_kafka_watermarks_of(rd_kafka_t *rk, const char *topic, const int32_t *parts, size_t n,
                           int timeout_ms, int64_t *low, int64_t *high, char *err, size_t errlen);

/* em_kafka_record_fn receives one record (a view valid during the call only); a non-zero
 * return stops em_kafka_read_range, which returns that value unchanged. */
typedef int (*em_kafka_record_fn)(void *arg, const ember_record *rec);

/* em_kafka_read_range passes every record of offsets [from, until) of one partition to fn,
 * in offset order, and never one at or past `until`; an empty range returns at once.
 * *n_read (may be NULL) gets the number of records passed to fn, also on failure.
 * Errors: EMBER_ERR_DATA_LOST when `from` (or a later offset) is below the low watermark,
 * EMBER_ERR_TIMEOUT when no record arrives for stall_timeout_ms (e.g. `until` is beyond the
 * high watermark), EMBER_ERR_NOT_FOUND, EMBER_ERR_KAFKA, or fn's own non-zero value.
 * The consumer is unassigned on return, ready for the next range. */
int em_kafka_read_range(rd_kafka_t *consumer, const char *topic, int32_t partition, int64_t from,
                        int64_t until, int stall_timeout_ms, em_kafka_record_fn fn, void *arg,
                        int64_t *n_read, char *err, size_t errlen);

/* em_kafka_offset_fn is em_kafka_record_fn that also receives the record's Kafka offset. */
typedef int (*em_kafka_offset_fn)(void *arg, int64_t offset, const ember_record *rec);

/* em_kafka_read_range_offsets is em_kafka_read_range calling ofn, which also gets each
 * record's offset (offsets may have gaps: compaction, transaction markers). */
int em_kafka_read_range_offsets(rd_kafka_t *consumer, const char *topic, int32_t partition,
                                int64_t from, int64_t until, int stall_timeout_ms,
                                em_kafka_offset_fn ofn, void *arg, int64_t *n_read, char *err,
                                size_t errlen);

/* em_kafka_reader: a consumer that keeps a partition assigned after a range and fetches
 * ahead, so that the next range starting where this one ended (a streaming query's next
 * batch) reads records already queued (see em_kafka_range.c for when a partition is let go).
 * One thread uses a reader at a time. */
typedef struct em_kafka_reader em_kafka_reader;

/* a kept partition not read for this long is unassigned (by the next read, or by
 * em_kafka_reader_let_go_idle, which an idle owner calls about this often) */
#define EM_KAFKA_KEEP_IDLE_MS 3000

/* em_kafka_reader_new creates a reader on a consumer from em_kafka_consumer_new. */
int em_kafka_reader_new(const char *bootstrap, em_kafka_reader **out, char *err, size_t errlen);

/* em_kafka_reader_bootstrap: the bootstrap servers it was created for. */
const char *em_kafka_reader_bootstrap(const em_kafka_reader *rd);

/* em_kafka_reader_read is em_kafka_read_range on a reader: the same records, order and
 * errors; the partition may stay assigned afterwards. */
int em_kafka_reader_read(em_kafka_reader *rd, const char *topic, int32_t partition, int64_t from,
                         int64_t until, int stall_timeout_ms, em_kafka_record_fn fn, void *arg,
                         int64_t *n_read, char *err, size_t errlen);

/* em_kafka_reader_kept: how many partitions it keeps assigned now (0 for NULL). */
size_t em_kafka_reader_kept(const em_kafka_reader *rd);

/* em_kafka_reader_holding: it keeps partitions assigned or holds fetch buffers, which
 * em_kafka_reader_let_go_idle lets go once idle (0 for NULL) */
int em_kafka_reader_holding(const em_kafka_reader *rd);
/* em_kafka_reader_fetched: records its own fetcher passed on (ranges of at least 1000
 * records that no kept partition continues are read straight off the Fetch protocol, see
 * em_kafka_fetch.c), and how often it handed the rest of a range to librdkafka */
void em_kafka_reader_fetched(const em_kafka_reader *rd, int64_t *records, int64_t *fallbacks);
/* em_kafka_reader_lookups: metadata requests its fetcher made for partition leaders */
int64_t em_kafka_reader_lookups(const em_kafka_reader *rd);
/* em_kafka_reader_let_go_idle unassigns the partitions no range read for
 * EM_KAFKA_KEEP_IDLE_MS before now_ms, and frees its fetcher's buffers when it fetched
 * nothing for as long (NULL is accepted). */
void em_kafka_reader_let_go_idle(em_kafka_reader *rd, int64_t now_ms);

/* em_kafka_reader_free unassigns everything and frees rd (NULL is accepted). */
void em_kafka_reader_free(em_kafka_reader *rd);

/* em_kafka_message_fn receives one message of a range (headers included; valid during the
 * call only); a non-zero return stops the read, which returns that value. */
typedef int (*em_kafka_message_fn)(void *arg, const rd_kafka_message_t *m);

/* em_kafka_read_range_messages is em_kafka_read_range calling mfn with each message. */
int em_kafka_read_range_messages(rd_kafka_t *consumer, const char *topic, int32_t partition,
                                 int64_t from, int64_t until, int stall_timeout_ms,
                                 em_kafka_message_fn mfn, void *arg, int64_t *n_read, char *err,
                                 size_t errlen);

/* em_kafka_sink: records on their way to one topic, with their delivery counters. */
typedef struct em_kafka_sink em_kafka_sink;

/* em_kafka_sink_open starts a sink writing to `topic` through `producer` (a handle from
 * em_kafka_producer_new, used by one sink at a time). *out is freed by em_kafka_sink_close. */
int em_kafka_sink_open(rd_kafka_t *producer, const char *topic, em_kafka_sink **out, char *err,
                       size_t errlen);

/* em_kafka_sink_write queues a copy of rec (key, value, timestamp; a NULL key is a null key,
 * timestamp 0 means "now"); partitioned by librdkafka's default partitioner. When the local
 * queue is full it serves delivery reports and retries. Fails with EMBER_ERR_KAFKA once a
 * previous record of this sink has failed. */
int em_kafka_sink_write(em_kafka_sink *s, const ember_record *rec, char *err, size_t errlen);

/* em_kafka_mark: where a partition of a sink's topic ended when a batch was planned */
typedef struct em_kafka_mark {
    int32_t partition;
    int64_t from;
} em_kafka_mark;

/* em_kafka_sink_fence makes s a streaming batch's task output (em_kafka_fence.c): every
 * record it writes from now on carries the header "ember" = "QUERY/BATCH/TASK/SEQ" (SEQ: the
 * record's index among those given to s). */
int em_kafka_sink_fence(em_kafka_sink *s, const char *query, int64_t batch, uint32_t task,
                        char *err, size_t errlen);

/* em_kafka_sink_recover, for a fenced sink whose task may have run before: reads the topic
 * back from the marks (partitions without one from their start) to its end, and remembers
 * which of the task's records are there already; em_kafka_sink_write then skips them.
 * *found (may be NULL) gets how many. EMBER_ERR_DATA_LOST if a mark is below its partition's
 * low watermark (retention removed what must be checked). */
int em_kafka_sink_recover(em_kafka_sink *s, const char *bootstrap, const em_kafka_mark *marks,
                          size_t n_marks, int stall_timeout_ms, int64_t *found, char *err,
                          size_t errlen);

/* em_kafka_sink_skipped: records a fenced sink did not write again */
int64_t em_kafka_sink_skipped(const em_kafka_sink *s);

/* em_kafka_sink_close waits up to timeout_ms for every delivery report, then frees s (NULL is
 * accepted). *delivered (may be NULL) gets the acknowledged count. Returns EMBER_ERR_KAFKA
 * with the first delivery error if any record failed, EMBER_ERR_TIMEOUT if reports were
 * still missing at the deadline (those records are purged and count as not delivered). */
int em_kafka_sink_close(em_kafka_sink *s, int timeout_ms, int64_t *delivered, char *err,
                        size_t errlen);

#endif
