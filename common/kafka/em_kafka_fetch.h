/* em_kafka_fetch.h -- an offset range read straight off the Kafka Fetch protocol (see
 * em_kafka_fetch.c); used by em_kafka_reader for ranges it does not keep, not by other layers.
 */
#ifndef EM_KAFKA_FETCH_H
#define EM_KAFKA_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "em_kafka.h"

typedef struct em_kafka_fetcher em_kafka_fetcher;

/* em_kafka_fetcher_new makes a fetcher that finds partition leaders with rk (not owned) and
 * talks to them on connections of its own. NULL when rk's transport is not plaintext (TLS and
 * SASL are librdkafka's), when rk checks CRCs (check.crcs=true), when
 * EMBER_KAFKA_FETCH=librdkafka is set, or out of memory. With
 * rk NULL: a fetcher that only decodes (em_kafka_fetch_decode). */
em_kafka_fetcher *em_kafka_fetcher_new(rd_kafka_t *rk);

/* em_kafka_fetch_range passes the records of offsets [*next, until) of topic/partition to fn
 * (or ofn, which also gets offsets), in offset order, advancing *next past each one, and
 * counting them into *n_read; no connect, request or response waits longer than timeout_ms
 * (at most 5 s) before the fetcher gives up. Returns fn's own non-zero value when fn stopped, else
 * EMBER_OK: with *next == until when the range is done, or *next < until when the fetcher cannot go
 * on (an unsupported codec or transport, a broker error, a leader change, records not written yet;
 * a debug line says which) and the rest must be read through librdkafka. It never fails a read by
 * itself: every error the user sees comes from the librdkafka path. */
int em_kafka_fetch_range(em_kafka_fetcher *f, const char *topic, int32_t partition, int64_t *next,
                         int64_t until, int timeout_ms, em_kafka_record_fn fn,
                         em_kafka_offset_fn ofn, void *arg, int64_t *n_read);

/* em_kafka_fetch_decode passes the records of one Fetch v4 response (resp: len bytes after
 * its size field) for `partition` as em_kafka_fetch_range does, from *next up to until;
 * for the fuzz target. Returns EMBER_OK, fn's value, or EMBER_ERR_PROTOCOL when the response
 * is not one the fetcher can use (another partition, an error code, a malformed batch...). */
int em_kafka_fetch_decode(em_kafka_fetcher *f, const uint8_t *resp, size_t len, int32_t partition,
                          int64_t *next, int64_t until, em_kafka_offset_fn ofn, void *arg,
                          int64_t *n_read);

/* em_kafka_fetcher_stats: records it passed on, and fetches it handed to librdkafka, so far */
void em_kafka_fetcher_stats(const em_kafka_fetcher *f, int64_t *records, int64_t *fallbacks);
/* em_kafka_fetcher_lookups: metadata requests it made for partition leaders, so far (it keeps
 * the leaders of several topics, each asked again after 30 s or a fallback) */
int64_t em_kafka_fetcher_lookups(const em_kafka_fetcher *f);

/* em_kafka_fetcher_trim frees its buffers and closes its connections when no range was
 * fetched for idle_ms before now_ms (NULL is accepted). */
void em_kafka_fetcher_trim(em_kafka_fetcher *f, int64_t now_ms, int64_t idle_ms);

/* em_kafka_fetcher_holding: it holds buffers that em_kafka_fetcher_trim would free (NULL: 0) */
int em_kafka_fetcher_holding(const em_kafka_fetcher *f);

/* em_kafka_fetcher_free closes its connections and frees f (NULL is accepted). */
void em_kafka_fetcher_free(em_kafka_fetcher *f);

#endif
