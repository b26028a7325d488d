/* em_kafka_int.h -- what em_kafka.c shares with em_kafka_range.c; not for other layers. */
#ifndef EM_KAFKA_INT_H
#define EM_KAFKA_INT_H

#include <stddef.h>
#include <stdint.h>

#include <ember/ember.h>

#include <librdkafka/rdkafka.h>

#define EM_KAFKA_POLL_MS 100 /* longest single wait inside a read or flush loop */

/* em_kafka_sink: one topic's writes and their delivery counters (see em_kafka.c). */
struct em_kafka_sink {
    rd_kafka_t *rk;         /* the producer; not owned */
    rd_kafka_topic_t *rkt;  /* topic handle; owned (one reference) */
    char *topic;            /* topic name; owned */
    int64_t produced;       /* records accepted by librdkafka */
    int64_t delivered;      /* delivery reports without error */
    int64_t failed;         /* delivery reports with an error */
    char first_errstr[256]; /* message of the first failed report */
    /* a fenced sink (em_kafka_fence.c): its records' tags, and what an earlier run wrote */
    char *fence_query;      /* the query (NULL: not fenced) */
    char fence_batch[24];   /* the batch, in decimal */
    char fence_task[16];    /* the task's partition, in decimal */
    char fence_prefix[640]; /* "QUERY/BATCH/TASK/": each record's tag, before its seq */
    size_t fence_prefix_len;
    uint64_t seq;          /* records given to it so far: the next record's ember.seq */
    uint8_t *written;      /* bitmap of the seqs an earlier run wrote (NULL: none) */
    uint64_t written_bits; /* its size in bits */
    int64_t skipped;       /* records not written again */
};

/* em_kafka_settings_apply sets the user's librdkafka properties on conf
 * (em_kafka_settings.c) */
int em_kafka_settings_apply(rd_kafka_conf_t *conf, char *err, size_t errlen);
/* em_kafka_fence_skip: a fenced sink's next record was written by an earlier run (it counts
 * the record either way); 0 for a sink that is not fenced */
int em_kafka_fence_skip(em_kafka_sink *s);
/* em_kafka_fence_produce hands rec to librdkafka with the fence's headers, seq = s->seq - 1 */
rd_kafka_resp_err_t em_kafka_fence_produce(em_kafka_sink *s, const ember_record *rec);
/* em_kafka_fence_free frees the fence's part of s */
void em_kafka_fence_free(em_kafka_sink *s);

/* em_kafka_set_err writes a formatted one-line reason into err (errlen bytes; err may be
 * NULL). */
void em_kafka_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* em_kafka_bootstrap_of copies the handle's bootstrap.servers into buf, for messages. */
const char *em_kafka_bootstrap_of(rd_kafka_t *rk, char *buf, size_t len);

/* em_kafka_map_err turns a librdkafka error into the closest ember error code. */
int em_kafka_map_err(rd_kafka_resp_err_t e);

/* em_kafka_consumer_waiting is em_kafka_consumer_new with fetch.wait.max.ms = fetch_wait_ms
 * (how long a broker may hold a fetch that finds nothing new). */
int em_kafka_consumer_waiting(const char *bootstrap, int fetch_wait_ms, rd_kafka_t **out, char *err,
                              size_t errlen);

#endif
