/* em_kafka.c -- librdkafka glue: tuned handles, metadata, exact offset ranges, counted sinks.
 *
 * Reading: one consumer handle serves many ranges one after the other. A range assigns the
 * one partition at `from`, takes the partition's own queue off the consumer queue and drains
 * it with rd_kafka_consume_batch_queue, passing records [from, until) to the caller; records
 * fetched past `until` are dropped, and the partition is unassigned before returning so the
 * next range starts clean. Invariant: `next` (the next offset owed to the caller) only grows,
 * and every record passed on satisfies from <= offset < until, in increasing offset order.
 *
 * Writing: a sink is the message opaque of everything it produces; the producer's delivery
 * callback counts each report into that sink. Reports are served only by rd_kafka_poll and
 * rd_kafka_flush, called from the sink's own thread, so the counters need no lock. A sink is
 * freed only once produced == delivered + failed, so no report can reach a freed sink.
 */
#include "em_kafka.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "em_log.h"
#include "em_time.h"

#define EM_KAFKA_BATCH         10000 /* messages taken per rd_kafka_consume_batch_queue call */
#define EM_KAFKA_POLL_MS       100   /* longest single wait inside the read loop */
#define EM_KAFKA_POLL_EVERY    1024  /* sink writes between two rd_kafka_poll(rk, 0) */
#define EM_KAFKA_PURGE_WAIT_MS 30000 /* longest wait for reports of purged messages */

/* em_kafka_sink: one topic's writes and their delivery counters (see the file comment). */
struct em_kafka_sink {
    rd_kafka_t *rk;         /* the producer; not owned */
    rd_kafka_topic_t *rkt;  /* topic handle; owned (one reference) */
    char *topic;            /* topic name; owned */
    int64_t produced;       /* records accepted by librdkafka */
    int64_t delivered;      /* delivery reports without error */
    int64_t failed;         /* delivery reports with an error */
    char first_errstr[256]; /* message of the first failed report */
};

/* ---- small helpers ---------------------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* bootstrap_of copies the handle's bootstrap.servers into buf, for messages. */
static const char *bootstrap_of(rd_kafka_t *rk, char *buf, size_t len)
{
    size_t size = len;
    if (rd_kafka_conf_get(rd_kafka_conf(rk), "bootstrap.servers", buf, &size) != RD_KAFKA_CONF_OK ||
        buf[0] == '\0')
        snprintf(buf, len, "?");
    return buf;
}

/* map_resp_err turns a librdkafka error into the closest ember error code. */
static int map_resp_err(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_NO_ERROR: return EMBER_OK;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__DESTROY: return EMBER_ERR_CONNECT;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT: return EMBER_ERR_TIMEOUT;
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION: return EMBER_ERR_NOT_FOUND;
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET: return EMBER_ERR_DATA_LOST;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE: return EMBER_ERR_TOO_LARGE;
    case RD_KAFKA_RESP_ERR__INVALID_ARG: return EMBER_ERR_INVALID;
    default: return EMBER_ERR_KAFKA;
    }
}

/* log_cb routes librdkafka's own log lines (from its threads) to em_log. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* AUTOCREATE: "allow.auto.create.topics=false not supported by broker", said on every
     * topic lookup against an old broker or the mock; em_kafka_partitions, which never names
     * a topic, is the guard against creation, so this is only debug noise. */
    if (strcmp(fac, "AUTOCREATE") == 0) level = 7;
    em_log_level lvl = level <= 3   ? EM_LOG_ERROR
                       : level == 4 ? EM_LOG_WARN
                       : level <= 6 ? EM_LOG_INFO
                                    : EM_LOG_DEBUG;
    em_log(lvl, "librdkafka: %s fac=%s client=%s", buf, fac, rd_kafka_name(rk));
}

/* conf_setv applies NULL-terminated key/value pairs to conf. */
static int conf_setv(rd_kafka_conf_t *conf, const char *const *kv, char *err, size_t errlen)
{
    char errstr[256];
    for (; kv[0]; kv += 2) {
        if (rd_kafka_conf_set(conf, kv[0], kv[1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
            set_err(err, errlen, "kafka setting %s=%s refused: %s", kv[0], kv[1], errstr);
            return EMBER_ERR_INVALID;
        }
    }
    return EMBER_OK;
}

/* handle_new builds a client of `type` with the common settings plus `kv`. */
static int handle_new(rd_kafka_type_t type, const char *bootstrap, const char *const *kv,
                      void (*dr_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
                      rd_kafka_t **out, char *err, size_t errlen)
{
    if (!out) {
        set_err(err, errlen, "kafka: no place to store the new handle");
        return EMBER_ERR_INVALID;
    }
    *out = NULL;
    if (!bootstrap || !bootstrap[0]) {
        set_err(err, errlen, "kafka: no bootstrap servers given");
        return EMBER_ERR_INVALID;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        set_err(err, errlen, "kafka: out of memory creating a configuration");
        return EMBER_ERR_NOMEM;
    }
    const char *const common[] = {"bootstrap.servers",    bootstrap, "client.id", "ember",
                                  "socket.nagle.disable", "true",    NULL};
    int rc = conf_setv(conf, common, err, errlen);
    if (rc == EMBER_OK) rc = conf_setv(conf, kv, err, errlen);
    if (rc != EMBER_OK) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    if (dr_cb) rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (!rk) { /* conf is still ours on failure */
        rd_kafka_conf_destroy(conf);
        set_err(err, errlen, "kafka: cannot create %s for %s: %s",
                type == RD_KAFKA_CONSUMER ? "consumer" : "producer", bootstrap, errstr);
        return EMBER_ERR_KAFKA;
    }
    *out = rk;
    return EMBER_OK;
}

/* ---- handles ---------------------------------------------------------------------------- */

int em_kafka_consumer_new(const char *bootstrap, rd_kafka_t **out, char *err, size_t errlen)
{
    const char *const kv[] = {"group.id",
                              "ember",
                              "enable.auto.commit",
                              "false",
                              "enable.auto.offset.store",
                              "false",
                              "auto.offset.reset",
                              "error",
                              "enable.partition.eof",
                              "true",
                              "allow.auto.create.topics",
                              "false",
                              "queued.min.messages",
                              "1000000",
                              "fetch.wait.max.ms",
                              "10",
                              NULL};
    return handle_new(RD_KAFKA_CONSUMER, bootstrap, kv, NULL, out, err, errlen);
}

/* dr_msg_cb counts one delivery report into the sink that produced the message.
 * @locality the thread calling rd_kafka_poll/flush: the sink's own thread. */
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    (void)opaque;
    em_kafka_sink *s = msg->_private;
    if (!s) return; /* produced by someone else on this handle */
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        s->delivered++;
        return;
    }
    if (s->failed++ == 0) {
        snprintf(s->first_errstr, sizeof s->first_errstr, "%s", rd_kafka_err2str(msg->err));
        em_warn("kafka delivery failed topic=%s partition=%d err=\"%s\"", s->topic,
                (int)msg->partition, s->first_errstr);
    }
}

int em_kafka_producer_new(const char *bootstrap, rd_kafka_t **out, char *err, size_t errlen)
{
    /* sticky.partitioning.linger.ms=0: records without a key go to a random partition each,
     * not to one partition per 10 ms window, so partitions fill evenly (the mock broker
     * silently drops data beyond about 5 MiB per partition). */
    const char *const kv[] = {
        "linger.ms", "5", "enable.idempotence", "true", "sticky.partitioning.linger.ms", "0", NULL};
    return handle_new(RD_KAFKA_PRODUCER, bootstrap, kv, dr_msg_cb, out, err, errlen);
}

/* ---- metadata --------------------------------------------------------------------------- */

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* topic_parts copies the sorted partition ids of mt; returns 0 or EMBER_ERR_NOMEM. */
static int topic_parts(const rd_kafka_metadata_topic_t *mt, int32_t **parts, int *n_parts)
{
    int32_t *p = malloc(sizeof *p * (size_t)(mt->partition_cnt > 0 ? mt->partition_cnt : 1));
    if (!p) return EMBER_ERR_NOMEM;
    for (int i = 0; i < mt->partition_cnt; i++) p[i] = mt->partitions[i].id;
    qsort(p, (size_t)mt->partition_cnt, sizeof *p, cmp_i32);
    *parts = p;
    *n_parts = mt->partition_cnt;
    return EMBER_OK;
}

/* metadata_error describes a failed metadata request. */
static int metadata_error(rd_kafka_resp_err_t e, const char *topic, const char *bs, int timeout_ms,
                          char *err, size_t errlen)
{
    int rc = map_resp_err(e);
    if (rc == EMBER_ERR_CONNECT)
        set_err(err, errlen, "cannot reach kafka broker %s: %s", bs, rd_kafka_err2str(e));
    else if (rc == EMBER_ERR_TIMEOUT)
        set_err(err, errlen, "kafka broker %s did not answer within %d ms (topic '%s')", bs,
                timeout_ms, topic);
    else
        set_err(err, errlen, "kafka metadata for topic '%s' failed (broker %s): %s", topic, bs,
                rd_kafka_err2str(e));
    return rc == EMBER_ERR_NOT_FOUND || rc == EMBER_ERR_DATA_LOST ? EMBER_ERR_KAFKA : rc;
}

/* topic_from_metadata finds `topic` in md and copies its partitions; EMBER_ERR_TIMEOUT means
 * "not ready yet, ask again" (a topic being created). */
static int topic_from_metadata(const struct rd_kafka_metadata *md, const char *topic,
                               const char *bs, int timeout_ms, int32_t **parts, int *n_parts,
                               char *err, size_t errlen)
{
    const rd_kafka_metadata_topic_t *mt = NULL;
    for (int i = 0; i < md->topic_cnt && !mt; i++)
        if (strcmp(md->topics[i].topic, topic) == 0) mt = &md->topics[i];
    rd_kafka_resp_err_t te = mt ? mt->err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    if (te == RD_KAFKA_RESP_ERR_NO_ERROR && mt->partition_cnt > 0) {
        int rc = topic_parts(mt, parts, n_parts);
        if (rc != EMBER_OK) set_err(err, errlen, "out of memory listing partitions");
        return rc;
    }
    if (te == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        set_err(err, errlen, "kafka topic '%s' does not exist (broker %s)", topic, bs);
        return EMBER_ERR_NOT_FOUND;
    }
    if (te == RD_KAFKA_RESP_ERR_NO_ERROR || te == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE) {
        set_err(err, errlen, "kafka topic '%s' has no partition ready within %d ms (broker %s)",
                topic, timeout_ms, bs);
        return EMBER_ERR_TIMEOUT;
    }
    int rc = map_resp_err(te);
    set_err(err, errlen, "kafka topic '%s' unavailable (broker %s): %s", topic, bs,
            rd_kafka_err2str(te));
    return rc == EMBER_ERR_NOT_FOUND || rc == EMBER_ERR_TIMEOUT ? EMBER_ERR_KAFKA : rc;
}

int em_kafka_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, int32_t **parts,
                        int *n_parts, char *err, size_t errlen)
{
    if (!rk || !topic || !topic[0] || !parts || !n_parts || timeout_ms <= 0) {
        set_err(err, errlen, "kafka partitions: invalid argument");
        return EMBER_ERR_INVALID;
    }
    *parts = NULL;
    *n_parts = 0;
    char bs[512];
    bootstrap_of(rk, bs, sizeof bs);
    int64_t deadline = em_now_ms() + timeout_ms;
    for (;;) {
        /* Ask for all topics: a request naming a missing topic may create it, whatever
         * allow.auto.create.topics says (the 2.0.2 mock broker speaks Metadata v0-v2, which
         * has no such flag, and always auto-creates). A request naming none never does. */
        const struct rd_kafka_metadata *md = NULL;
        int64_t left = deadline - em_now_ms();
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, left > 0 ? (int)left : 1);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            return metadata_error(e, topic, bs, timeout_ms, err, errlen);
        int rc = topic_from_metadata(md, topic, bs, timeout_ms, parts, n_parts, err, errlen);
        rd_kafka_metadata_destroy(md);
        if (rc != EMBER_ERR_TIMEOUT || em_now_ms() + 100 >= deadline) return rc;
        sleep_ms(100); /* a topic being created: ask again until the deadline */
    }
}

int em_kafka_watermarks(rd_kafka_t *rk, const char *topic, int32_t partition, int timeout_ms,
                        int64_t *low, int64_t *high, char *err, size_t errlen)
{
    if (!rk || !topic || !topic[0] || partition < 0 || !low || !high || timeout_ms <= 0) {
        set_err(err, errlen, "kafka watermarks: invalid argument");
        return EMBER_ERR_INVALID;
    }
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(rk, topic, partition, low, high, timeout_ms);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return EMBER_OK;
    char bs[512];
    bootstrap_of(rk, bs, sizeof bs);
    int rc = map_resp_err(e);
    switch (rc) {
    case EMBER_ERR_NOT_FOUND:
        set_err(err, errlen, "kafka topic '%s' partition %d does not exist (broker %s)", topic,
                (int)partition, bs);
        break;
    case EMBER_ERR_CONNECT:
        set_err(err, errlen, "cannot reach kafka broker %s: %s", bs, rd_kafka_err2str(e));
        break;
    case EMBER_ERR_TIMEOUT:
        set_err(err, errlen,
                "kafka watermarks of topic '%s' partition %d: no answer within %d ms (broker %s)",
                topic, (int)partition, timeout_ms, bs);
        break;
    default:
        rc = rc == EMBER_ERR_DATA_LOST ? EMBER_ERR_KAFKA : rc;
        set_err(err, errlen, "kafka watermarks of topic '%s' partition %d failed (broker %s): %s",
                topic, (int)partition, bs, rd_kafka_err2str(e));
    }
    return rc;
}

/* ---- reading an offset range ------------------------------------------------------------ */

/* range: the state of one em_kafka_read_range call. */
typedef struct range {
    rd_kafka_t *rk;         /* the consumer; not owned */
    const char *topic;      /* topic name */
    int32_t partition;      /* partition read */
    int64_t until;          /* first offset not to read */
    int64_t next;           /* next offset owed to fn: from <= next <= until */
    int64_t high;           /* high watermark seen at the start (for messages) */
    em_kafka_record_fn fn;  /* the caller's function, or NULL when ofn is set */
    em_kafka_offset_fn ofn; /* the caller's function taking offsets, or NULL */
    void *arg;              /* its argument */
    int64_t n_read;         /* records passed to fn */
    int warned;             /* transient errors already logged */
    char *err;              /* message buffer */
    size_t errlen;          /* its size */
} range;

/* data_lost reports that offset r->next is below the low watermark. */
static int data_lost(range *r)
{
    int64_t low = -1, high = -1;
    char ignored[64];
    em_kafka_watermarks(r->rk, r->topic, r->partition, 2000, &low, &high, ignored, sizeof ignored);
    set_err(r->err, r->errlen,
            "kafka topic '%s' partition %d: offset %lld is no longer available (low watermark "
            "%lld): data dropped by retention",
            r->topic, (int)r->partition, (long long)r->next, (long long)low);
    return EMBER_ERR_DATA_LOST;
}

/* range_msg handles one message or event of the partition queue; returns 0 to go on. */
static int range_msg(range *r, const rd_kafka_message_t *m)
{
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (m->offset >= r->until) r->next = r->until; /* nothing left below until */
        return EMBER_OK;
    }
    if (m->err) {
        int rc = map_resp_err(m->err);
        if (rc == EMBER_ERR_DATA_LOST) return data_lost(r);
        if (rc == EMBER_ERR_NOT_FOUND) {
            char bs[512];
            set_err(r->err, r->errlen, "kafka topic '%s' partition %d does not exist (broker %s)",
                    r->topic, (int)r->partition, bootstrap_of(r->rk, bs, sizeof bs));
            return rc;
        }
        if (m->err == RD_KAFKA_RESP_ERR__FATAL ||
            m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
            set_err(r->err, r->errlen, "kafka topic '%s' partition %d: %s", r->topic,
                    (int)r->partition, rd_kafka_message_errstr(m));
            return EMBER_ERR_KAFKA;
        }
        if (r->warned++ < 5) /* transient: librdkafka retries; the stall timer bounds it */
            em_warn("kafka consumer error topic=%s partition=%d err=\"%s\"", r->topic,
                    (int)r->partition, rd_kafka_message_errstr(m));
        return EMBER_OK;
    }
    if (m->offset < r->next) return EMBER_OK; /* already passed on */
    if (m->offset >= r->until) {              /* fetched ahead: the range is complete */
        r->next = r->until;
        return EMBER_OK;
    }
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    ember_record rec = {m->key, m->key_len, m->payload, m->len, ts < 0 ? 0 : ts};
    r->next = m->offset + 1;
    r->n_read++;
    return r->ofn ? r->ofn(r->arg, m->offset, &rec) : r->fn(r->arg, &rec);
}

/* stalled reports that no record came for stall_timeout_ms. */
static int stalled(range *r, int stall_timeout_ms)
{
    int64_t low = -1, high = r->high;
    char ignored[64];
    em_kafka_watermarks(r->rk, r->topic, r->partition, 1000, &low, &high, ignored, sizeof ignored);
    set_err(r->err, r->errlen,
            "kafka topic '%s' partition %d: no record for %d ms at offset %lld, expected "
            "records up to offset %lld (high watermark %lld)",
            r->topic, (int)r->partition, stall_timeout_ms, (long long)r->next, (long long)r->until,
            (long long)high);
    return EMBER_ERR_TIMEOUT;
}

/* consume drains the partition queue until the range is complete, fn stops, or a stall. */
static int consume(range *r, rd_kafka_queue_t *partq, int stall_timeout_ms)
{
    rd_kafka_message_t **msgs = malloc(sizeof *msgs * EM_KAFKA_BATCH);
    if (!msgs) {
        set_err(r->err, r->errlen, "out of memory reading kafka");
        return EMBER_ERR_NOMEM;
    }
    int rc = EMBER_OK;
    int64_t last_progress = em_now_ms();
    while (rc == EMBER_OK && r->next < r->until) {
        /* The call returns once it has `want` messages or after the wait: asking for no more
         * than the range still owes makes the last batch return without waiting. */
        int64_t owed = r->until - r->next;
        size_t want = owed < EM_KAFKA_BATCH ? (size_t)owed : EM_KAFKA_BATCH;
        ssize_t n = rd_kafka_consume_batch_queue(partq, EM_KAFKA_POLL_MS, msgs, want);
        if (n < 0) {
            rd_kafka_resp_err_t e = rd_kafka_last_error();
            set_err(r->err, r->errlen, "kafka topic '%s' partition %d: consume failed: %s",
                    r->topic, (int)r->partition, rd_kafka_err2str(e));
            rc = EMBER_ERR_KAFKA;
            break;
        }
        int64_t before = r->next;
        for (ssize_t i = 0; i < n; i++) {
            if (rc == EMBER_OK) rc = range_msg(r, msgs[i]);
            rd_kafka_message_destroy(msgs[i]);
        }
        if (rc != EMBER_OK || r->next >= r->until) break;
        int64_t now = em_now_ms();
        if (r->next > before)
            last_progress = now;
        else if (now - last_progress >= stall_timeout_ms)
            rc = stalled(r, stall_timeout_ms);
    }
    free(msgs);
    return rc;
}

/* drain_side_queues serves events that no range reads (errors on the main and consumer
 * queues), so they do not pile up while one handle serves many ranges. */
static void drain_side_queues(rd_kafka_t *rk)
{
    rd_kafka_poll(rk, 0);
    for (int i = 0; i < 1000; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 0);
        if (!m) break;
        if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            em_debug("kafka consumer event err=\"%s\"", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
    }
}

/* assign_one assigns exactly topic/partition at offset `from`. */
static rd_kafka_resp_err_t assign_one(rd_kafka_t *rk, const char *topic, int32_t partition,
                                      int64_t from)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, partition)->offset = from;
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    return e;
}

/* read_range runs one range for either kind of caller function (fn or ofn). */
static int read_range(rd_kafka_t *consumer, const char *topic, int32_t partition, int64_t from,
                      int64_t until, int stall_timeout_ms, em_kafka_record_fn fn,
                      em_kafka_offset_fn ofn, void *arg, int64_t *n_read, char *err, size_t errlen)
{
    if (n_read) *n_read = 0;
    if (!consumer || !topic || !topic[0] || !(fn || ofn) || partition < 0 || from < 0 ||
        until < from || stall_timeout_ms <= 0) {
        set_err(err, errlen, "kafka read range: invalid argument (partition %d, [%lld, %lld))",
                (int)partition, (long long)from, (long long)until);
        return EMBER_ERR_INVALID;
    }
    if (from == until) return EMBER_OK;
    range r = {consumer, topic, partition, until, from, -1, fn, ofn, arg, 0, 0, err, errlen};
    int64_t low;
    int rc = em_kafka_watermarks(consumer, topic, partition, stall_timeout_ms, &low, &r.high, err,
                                 errlen);
    if (rc != EMBER_OK) return rc;
    if (from < low) {
        set_err(err, errlen,
                "kafka topic '%s' partition %d: offset %lld is no longer available (low "
                "watermark %lld): data dropped by retention",
                topic, (int)partition, (long long)from, (long long)low);
        return EMBER_ERR_DATA_LOST;
    }
    rd_kafka_queue_t *partq = rd_kafka_queue_get_partition(consumer, topic, partition);
    if (!partq) {
        set_err(err, errlen, "kafka topic '%s' partition %d: no partition queue", topic,
                (int)partition);
        return EMBER_ERR_KAFKA;
    }
    rd_kafka_queue_forward(partq, NULL); /* read it here, not via the consumer queue */
    rd_kafka_resp_err_t e = assign_one(consumer, topic, partition, from);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        set_err(err, errlen, "kafka topic '%s' partition %d: assign failed: %s", topic,
                (int)partition, rd_kafka_err2str(e));
        rc = EMBER_ERR_KAFKA;
    } else {
        rc = consume(&r, partq, stall_timeout_ms);
        e = rd_kafka_assign(consumer, NULL);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            em_warn("kafka unassign failed topic=%s partition=%d err=\"%s\"", topic, (int)partition,
                    rd_kafka_err2str(e));
    }
    rd_kafka_queue_destroy(partq);
    drain_side_queues(consumer);
    if (n_read) *n_read = r.n_read;
    return rc;
}

int em_kafka_read_range(rd_kafka_t *consumer, const char *topic, int32_t partition, int64_t from,
                        int64_t until, int stall_timeout_ms, em_kafka_record_fn fn, void *arg,
                        int64_t *n_read, char *err, size_t errlen)
{
    return read_range(consumer, topic, partition, from, until, stall_timeout_ms, fn, NULL, arg,
                      n_read, err, errlen);
}

int em_kafka_read_range_offsets(rd_kafka_t *consumer, const char *topic, int32_t partition,
                                int64_t from, int64_t until, int stall_timeout_ms,
                                em_kafka_offset_fn ofn, void *arg, int64_t *n_read, char *err,
                                size_t errlen)
{
    return read_range(consumer, topic, partition, from, until, stall_timeout_ms, NULL, ofn, arg,
                      n_read, err, errlen);
}

/* ---- sink ------------------------------------------------------------------------------- */

static int64_t outstanding(const em_kafka_sink *s)
{
    return s->produced - s->delivered - s->failed;
}

static int first_failure(const em_kafka_sink *s, char *err, size_t errlen)
{
    set_err(err, errlen, "kafka delivery to topic '%s' failed: %s (%lld of %lld records failed)",
            s->topic, s->first_errstr, (long long)s->failed, (long long)s->produced);
    return EMBER_ERR_KAFKA;
}

int em_kafka_sink_open(rd_kafka_t *producer, const char *topic, em_kafka_sink **out, char *err,
                       size_t errlen)
{
    if (!producer || !topic || !topic[0] || !out) {
        set_err(err, errlen, "kafka sink: invalid argument");
        return EMBER_ERR_INVALID;
    }
    *out = NULL;
    em_kafka_sink *s = calloc(1, sizeof *s);
    if (!s || !(s->topic = strdup(topic))) {
        free(s);
        set_err(err, errlen, "out of memory opening a kafka sink");
        return EMBER_ERR_NOMEM;
    }
    s->rk = producer;
    s->rkt = rd_kafka_topic_new(producer, topic, NULL);
    if (!s->rkt) {
        set_err(err, errlen, "kafka sink: cannot use topic '%s': %s", topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        free(s->topic);
        free(s);
        return EMBER_ERR_INVALID;
    }
    *out = s;
    return EMBER_OK;
}

/* produce_one hands one copy of rec to librdkafka. */
static rd_kafka_resp_err_t produce_one(em_kafka_sink *s, const ember_record *rec)
{
    return rd_kafka_producev(s->rk, RD_KAFKA_V_RKT(s->rkt),
                             RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_KEY((void *)rec->key, rec->key ? rec->key_len : 0),
                             RD_KAFKA_V_VALUE((void *)rec->value, rec->value ? rec->value_len : 0),
                             RD_KAFKA_V_TIMESTAMP(rec->timestamp > 0 ? rec->timestamp : 0),
                             RD_KAFKA_V_OPAQUE(s), RD_KAFKA_V_END);
}

int em_kafka_sink_write(em_kafka_sink *s, const ember_record *rec, char *err, size_t errlen)
{
    if (!s || !rec) {
        set_err(err, errlen, "kafka sink write: invalid argument");
        return EMBER_ERR_INVALID;
    }
    if (s->failed) return first_failure(s, err, errlen);
    rd_kafka_resp_err_t e;
    while ((e = produce_one(s, rec)) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(s->rk, 10); /* serve reports: frees queue space */
        if (s->failed) return first_failure(s, err, errlen);
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        int rc = map_resp_err(e);
        if (e == RD_KAFKA_RESP_ERR__FATAL) {
            char reason[256];
            rd_kafka_fatal_error(s->rk, reason, sizeof reason);
            set_err(err, errlen, "kafka producer failed for topic '%s': %s", s->topic, reason);
            return EMBER_ERR_KAFKA;
        }
        set_err(err, errlen, "kafka produce to topic '%s' failed: %s", s->topic,
                rd_kafka_err2str(e));
        return rc == EMBER_OK ? EMBER_ERR_KAFKA : rc;
    }
    if (++s->produced % EM_KAFKA_POLL_EVERY == 0) rd_kafka_poll(s->rk, 0);
    return EMBER_OK;
}

/* wait_reports serves delivery reports until none is owed or the deadline passes. */
static void wait_reports(em_kafka_sink *s, int64_t deadline)
{
    while (outstanding(s) > 0) {
        int64_t left = deadline - em_now_ms();
        if (left <= 0) break;
        rd_kafka_flush(s->rk, (int)(left < EM_KAFKA_POLL_MS ? left : EM_KAFKA_POLL_MS));
    }
}

int em_kafka_sink_close(em_kafka_sink *s, int timeout_ms, int64_t *delivered, char *err,
                        size_t errlen)
{
    if (delivered) *delivered = 0;
    if (!s) return EMBER_OK;
    int rc = EMBER_OK;
    wait_reports(s, em_now_ms() + (timeout_ms > 0 ? timeout_ms : 0));
    int64_t missing = outstanding(s);
    if (missing > 0) {
        rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        wait_reports(s, em_now_ms() + EM_KAFKA_PURGE_WAIT_MS);
        set_err(err, errlen,
                "kafka delivery to topic '%s': %lld of %lld records unacknowledged after %d ms",
                s->topic, (long long)missing, (long long)s->produced, timeout_ms);
        rc = EMBER_ERR_TIMEOUT;
    } else if (s->failed) {
        rc = first_failure(s, err, errlen);
    }
    if (delivered) *delivered = s->delivered;
    if (outstanding(s) > 0) { /* reports may still come: keep s alive rather than free it */
        em_error("kafka sink leaked: reports still owed topic=%s owed=%lld", s->topic,
                 (long long)outstanding(s));
        return rc;
    }
    rd_kafka_topic_destroy(s->rkt);
    free(s->topic);
    free(s);
    return rc;
}
