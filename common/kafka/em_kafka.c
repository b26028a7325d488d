/* em_kafka.c -- librdkafka glue: tuned handles, metadata, watermarks, counted sinks.
 *
 * Reading offset ranges is em_kafka_range.c; a streaming batch's exactly-once writes are
 * em_kafka_fence.c. Writing: a sink is the message opaque of
 * everything it produces; the producer's delivery callback counts each report into that sink.
 * Reports are served only by rd_kafka_poll and rd_kafka_flush, called from the sink's own
 * thread, so the counters need no lock. A sink is freed only once produced == delivered +
 * failed, so no report can reach a freed sink.
 */
#include "em_kafka.h"
#include "em_kafka_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "em_log.h"
#include "em_time.h"

#define EM_KAFKA_POLL_EVERY    1024  /* sink writes between two rd_kafka_poll(rk, 0) */
#define EM_KAFKA_PURGE_WAIT_MS 30000 /* longest wait for reports of purged messages */

/* ---- small helpers ---------------------------------------------------------------------- */

void em_kafka_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* bootstrap_of copies the handle's bootstrap.servers into buf, for messages. */
const char *em_kafka_bootstrap_of(rd_kafka_t *rk, char *buf, size_t len)
{
    size_t size = len;
    if (rd_kafka_conf_get(rd_kafka_conf(rk), "bootstrap.servers", buf, &size) != RD_KAFKA_CONF_OK ||
        buf[0] == '\0')
        snprintf(buf, len, "?");
    return buf;
}

/* map_resp_err turns a librdkafka error into the closest ember error code. */
int em_kafka_map_err(rd_kafka_resp_err_t e)
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
            em_kafka_set_err(err, errlen, "kafka setting %s=%s refused: %s", kv[0], kv[1], errstr);
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
        em_kafka_set_err(err, errlen, "kafka: no place to store the new handle");
        return EMBER_ERR_INVALID;
    }
    *out = NULL;
    if (!bootstrap || !bootstrap[0]) {
        em_kafka_set_err(err, errlen, "kafka: no bootstrap servers given");
        return EMBER_ERR_INVALID;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        em_kafka_set_err(err, errlen, "kafka: out of memory creating a configuration");
        return EMBER_ERR_NOMEM;
    }
    const char *const common[] = {"bootstrap.servers",    bootstrap, "client.id", "ember",
                                  "socket.nagle.disable", "true",    NULL};
    int rc = conf_setv(conf, common, err, errlen);
    if (rc == EMBER_OK) rc = em_kafka_settings_apply(conf, err, errlen); /* the user's */
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
        em_kafka_set_err(err, errlen, "kafka: cannot create %s for %s: %s",
                         type == RD_KAFKA_CONSUMER ? "consumer" : "producer", bootstrap, errstr);
        return EMBER_ERR_KAFKA;
    }
    *out = rk;
    return EMBER_OK;
}

/* ---- handles ---------------------------------------------------------------------------- */

int em_kafka_consumer_new(const char *bootstrap, rd_kafka_t **out, char *err, size_t errlen)
{
    return em_kafka_consumer_waiting(bootstrap, 10, out, err, errlen);
}

int em_kafka_consumer_waiting(const char *bootstrap, int fetch_wait_ms, rd_kafka_t **out, char *err,
                              size_t errlen)
{
    char wait[16];
    snprintf(wait, sizeof wait, "%d", fetch_wait_ms);
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
                              wait,
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
    return em_kafka_producer_lingering(bootstrap, 5, out, err, errlen);
}

int em_kafka_producer_lingering(const char *bootstrap, int linger_ms, rd_kafka_t **out, char *err,
                                size_t errlen)
{
    /* sticky.partitioning.linger.ms=0: records without a key go to a random partition each,
     * not to one partition per 10 ms window, so partitions fill evenly (the mock broker
     * silently drops data beyond about 5 MiB per partition). */
    char linger[16];
    snprintf(linger, sizeof linger, "%d", linger_ms);
    const char *const kv[] = {
        "linger.ms", linger, "enable.idempotence", "true", "sticky.partitioning.linger.ms",
        "0",         NULL};
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
    int rc = em_kafka_map_err(e);
    if (rc == EMBER_ERR_CONNECT)
        em_kafka_set_err(err, errlen, "cannot reach kafka broker %s: %s", bs, rd_kafka_err2str(e));
    else if (rc == EMBER_ERR_TIMEOUT)
        em_kafka_set_err(err, errlen, "kafka broker %s did not answer within %d ms (topic '%s')",
                         bs, timeout_ms, topic);
    else
        em_kafka_set_err(err, errlen, "kafka metadata for topic '%s' failed (broker %s): %s", topic,
                         bs, rd_kafka_err2str(e));
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
        if (rc != EMBER_OK) em_kafka_set_err(err, errlen, "out of memory listing partitions");
        return rc;
    }
    if (te == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        em_kafka_set_err(err, errlen, "kafka topic '%s' does not exist (broker %s)", topic, bs);
        return EMBER_ERR_NOT_FOUND;
    }
    if (te == RD_KAFKA_RESP_ERR_NO_ERROR || te == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE) {
        em_kafka_set_err(err, errlen,
                         "kafka topic '%s' has no partition ready within %d ms (broker %s)", topic,
                         timeout_ms, bs);
        return EMBER_ERR_TIMEOUT;
    }
    int rc = em_kafka_map_err(te);
    em_kafka_set_err(err, errlen, "kafka topic '%s' unavailable (broker %s): %s", topic, bs,
                     rd_kafka_err2str(te));
    return rc == EMBER_ERR_NOT_FOUND || rc == EMBER_ERR_TIMEOUT ? EMBER_ERR_KAFKA : rc;
}

int em_kafka_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, int32_t **parts,
                        int *n_parts, char *err, size_t errlen)
{
    if (!rk || !topic || !topic[0] || !parts || !n_parts || timeout_ms <= 0) {
        em_kafka_set_err(err, errlen, "kafka partitions: invalid argument");
        return EMBER_ERR_INVALID;
    }
    *parts = NULL;
    *n_parts = 0;
    char bs[512];
    em_kafka_bootstrap_of(rk, bs, sizeof bs);
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
        em_sleep_ms(100); /* a topic being created: ask again until the deadline */
    }
}

/* watermark_error describes a failed watermark request of topic/partition (-1: several). */
static int watermark_error(rd_kafka_t *rk, rd_kafka_resp_err_t e, const char *topic,
                           int32_t partition, int timeout_ms, char *err, size_t errlen)
{
    char bs[512], part[32] = "";
    em_kafka_bootstrap_of(rk, bs, sizeof bs);
    if (partition >= 0) snprintf(part, sizeof part, " partition %d", (int)partition);
    int rc = em_kafka_map_err(e);
    switch (rc) {
    case EMBER_ERR_NOT_FOUND:
        em_kafka_set_err(err, errlen, "kafka topic '%s'%s does not exist (broker %s)", topic, part,
                         bs);
        break;
    case EMBER_ERR_CONNECT:
        em_kafka_set_err(err, errlen, "cannot reach kafka broker %s: %s", bs, rd_kafka_err2str(e));
        break;
    case EMBER_ERR_TIMEOUT:
        em_kafka_set_err(err, errlen,
                         "kafka watermarks of topic '%s'%s: no answer within %d ms (broker %s)",
                         topic, part, timeout_ms, bs);
        break;
    default:
        rc = rc == EMBER_ERR_DATA_LOST ? EMBER_ERR_KAFKA : rc;
        em_kafka_set_err(err, errlen, "kafka watermarks of topic '%s'%s failed (broker %s): %s",
                         topic, part, bs, rd_kafka_err2str(e));
    }
    return rc;
}

int em_kafka_watermarks(rd_kafka_t *rk, const char *topic, int32_t partition, int timeout_ms,
                        int64_t *low, int64_t *high, char *err, size_t errlen)
{
    if (!rk || !topic || !topic[0] || partition < 0 || !low || !high || timeout_ms <= 0) {
        em_kafka_set_err(err, errlen, "kafka watermarks: invalid argument");
        return EMBER_ERR_INVALID;
    }
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(rk, topic, partition, low, high, timeout_ms);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return EMBER_OK;
    return watermark_error(rk, e, topic, partition, timeout_ms, err, errlen);
}

/* offsets_at asks for one bound (RD_KAFKA_OFFSET_BEGINNING or _END) of n partitions at once:
 * one ListOffsets request per leader. */
static int offsets_at(rd_kafka_t *rk, const char *topic, const int32_t *parts, size_t n,
                      int64_t bound, int timeout_ms, int64_t *out, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(list, topic, parts[i])->offset = bound;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, list, timeout_ms);
    int32_t failed = -1;
    for (size_t i = 0; !e && i < n; i++) {
        const rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(list, topic, parts[i]);
        if (!tp || tp->err || tp->offset < 0) {
            e = !tp       ? RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION
                : tp->err ? tp->err
                          : RD_KAFKA_RESP_ERR__BAD_MSG;
            failed = parts[i];
        } else {
            out[i] = tp->offset;
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
    if (!e) return EMBER_OK;
    return watermark_error(rk, e, topic, failed, timeout_ms, err, errlen);
}

int em_kafka_watermarks_of(rd_kafka_t *rk, const char *topic, const int32_t *parts, size_t n,
                           int timeout_ms, int64_t *low, int64_t *high, char *err, size_t errlen)
{
    if (!rk || !topic || !topic[0] || (n && (!parts || !high)) || timeout_ms <= 0) {
        em_kafka_set_err(err, errlen, "kafka watermarks: invalid argument");
        return EMBER_ERR_INVALID;
    }
    if (n == 0) return EMBER_OK;
    int rc = low ? offsets_at(rk, topic, parts, n, RD_KAFKA_OFFSET_BEGINNING, timeout_ms, low, err,
                              errlen)
                 : EMBER_OK;
    if (rc == EMBER_OK)
        rc = offsets_at(rk, topic, parts, n, RD_KAFKA_OFFSET_END, timeout_ms, high, err, errlen);
    return rc;
}

/* ---- sink ------------------------------------------------------------------------------- */

static int64_t outstanding(const em_kafka_sink *s)
{
    return s->produced - s->delivered - s->failed;
}

static int first_failure(const em_kafka_sink *s, char *err, size_t errlen)
{
    em_kafka_set_err(err, errlen,
                     "kafka delivery to topic '%s' failed: %s (%lld of %lld records failed)",
                     s->topic, s->first_errstr, (long long)s->failed, (long long)s->produced);
    return EMBER_ERR_KAFKA;
}

int em_kafka_sink_open(rd_kafka_t *producer, const char *topic, em_kafka_sink **out, char *err,
                       size_t errlen)
{
    if (!producer || !topic || !topic[0] || !out) {
        em_kafka_set_err(err, errlen, "kafka sink: invalid argument");
        return EMBER_ERR_INVALID;
    }
    *out = NULL;
    em_kafka_sink *s = calloc(1, sizeof *s);
    if (!s || !(s->topic = strdup(topic))) {
        free(s);
        em_kafka_set_err(err, errlen, "out of memory opening a kafka sink");
        return EMBER_ERR_NOMEM;
    }
    s->rk = producer;
    s->rkt = rd_kafka_topic_new(producer, topic, NULL);
    if (!s->rkt) {
        em_kafka_set_err(err, errlen, "kafka sink: cannot use topic '%s': %s", topic,
                         rd_kafka_err2str(rd_kafka_last_error()));
        free(s->topic);
        free(s);
        return EMBER_ERR_INVALID;
    }
    *out = s;
    return EMBER_OK;
}

/* produce_one hands one copy of rec to librdkafka (with a fenced sink's headers). */
static rd_kafka_resp_err_t produce_one(em_kafka_sink *s, const ember_record *rec)
{
    if (s->fence_query) return em_kafka_fence_produce(s, rec);
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
        em_kafka_set_err(err, errlen, "kafka sink write: invalid argument");
        return EMBER_ERR_INVALID;
    }
    if (s->failed) return first_failure(s, err, errlen);
    if (em_kafka_fence_skip(s)) return EMBER_OK; /* an earlier run of the task wrote it */
    rd_kafka_resp_err_t e;
    while ((e = produce_one(s, rec)) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(s->rk, 10); /* serve reports: frees queue space */
        if (s->failed) return first_failure(s, err, errlen);
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        int rc = em_kafka_map_err(e);
        if (e == RD_KAFKA_RESP_ERR__FATAL) {
            char reason[256];
            rd_kafka_fatal_error(s->rk, reason, sizeof reason);
            em_kafka_set_err(err, errlen, "kafka producer failed for topic '%s': %s", s->topic,
                             reason);
            return EMBER_ERR_KAFKA;
        }
        em_kafka_set_err(err, errlen, "kafka produce to topic '%s' failed: %s", s->topic,
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
        em_kafka_set_err(
            err, errlen,
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
    em_kafka_fence_free(s);
    free(s->topic);
    free(s);
    return rc;
}
