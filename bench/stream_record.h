/* stream_record.h -- the records of bench/streaming, shared by its producer, its floor, its
 * latency reader and its ember job (bench/jobs/bench_stream.c), so they agree on one layout.
 *
 * A record of the bench's input topics (written by stream_producer):
 *   key       "kNNNN", the decimal index seq % keys, zero-padded to 4 digits ("k0007"): one of
 *             `keys` keys (a taxi id, say), partitioned by librdkafka's default partitioner
 *   value     24 bytes, three little-endian int64: the produce time in microseconds since 1970
 *             (CLOCK_REALTIME, read just before the record is handed to librdkafka), the
 *             record's sequence number (0, 1, 2... in produce order), and an amount
 *             (seq % 100, what the windowed query sums)
 *   timestamp the produce time in milliseconds (Kafka CreateTime): the event time of windows
 *
 * The stateless query keeps a record unless seq % SR_DROP_EVERY == 0 (90% kept); the floor
 * applies the same test. A pass-through keeps the value, so a reader of an output topic finds
 * the produce time in it and measures end-to-end latency on one machine's clock.
 */
#ifndef STREAM_RECORD_H
#define STREAM_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define SR_VALUE_LEN  24 /* produce_us, seq, amount */
#define SR_DROP_EVERY 10 /* the filter drops seq % 10 == 0 */
#define SR_AMOUNT_MOD 100

/* sr_value: the decoded value of a bench record. */
typedef struct sr_value {
    int64_t produce_us; /* wall clock, microseconds since 1970 */
    int64_t seq;        /* 0-based, in produce order */
    int64_t amount;     /* seq % SR_AMOUNT_MOD */
} sr_value;

static inline void sr_put64(unsigned char *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(u >> (8 * i));
}

static inline int64_t sr_get64(const unsigned char *p)
{
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--) u = (u << 8) | p[i];
    return (int64_t)u;
}

/* sr_encode writes v into buf (SR_VALUE_LEN bytes). */
static inline void sr_encode(unsigned char *buf, const sr_value *v)
{
    sr_put64(buf, v->produce_us);
    sr_put64(buf + 8, v->seq);
    sr_put64(buf + 16, v->amount);
}

/* sr_decode reads a value; 0 if it is not SR_VALUE_LEN bytes (not a bench record). */
static inline int sr_decode(const void *value, size_t len, sr_value *out)
{
    if (!value || len != SR_VALUE_LEN) return 0;
    const unsigned char *p = value;
    out->produce_us = sr_get64(p);
    out->seq = sr_get64(p + 8);
    out->amount = sr_get64(p + 16);
    return 1;
}

/* sr_kept: whether the stateless query (and the floor) keep the record of sequence seq. */
static inline int sr_kept(int64_t seq) { return seq % SR_DROP_EVERY != 0; }

/* sr_kept_below: how many of sequence numbers [0, n) are kept. */
static inline int64_t sr_kept_below(int64_t n)
{
    return n <= 0 ? 0 : n - (n + SR_DROP_EVERY - 1) / SR_DROP_EVERY;
}

/* sr_wall_us: the wall clock in microseconds since 1970 (every process of the bench runs on
 * one machine, so produce and receive times come from the same clock). */
static inline int64_t sr_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* sr_mono_us: the monotonic clock in microseconds, for durations and pacing. */
static inline int64_t sr_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* sr_option: the value after `name` in argv, or def. */
static inline const char *sr_option(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return def;
}

/* sr_flag: whether `name` is in argv. */
static inline int sr_flag(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0) return 1;
    return 0;
}

#endif
