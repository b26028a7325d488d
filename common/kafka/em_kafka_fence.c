/* em_kafka_fence.c -- a streaming batch's writes to Kafka, exactly once on any broker.
 *
 * A fenced sink tags every record it writes with one header, "ember" =
 * "QUERY/BATCH/TASK/SEQ": the query's name, the batch, the task's partition and the record's
 * index among all the records the task gives the sink, written or not (one header, not four:
 * librdkafka allocates per header, and four cost a third of the sink's rate). A task's output is
 * the same on every run of the batch (the same offset ranges, the same functions), so (query,
 * batch, task, seq) names one output record whichever run writes it.
 *
 * A task that may have run before (a retry, or a batch replayed after the driver restarted)
 * first reads the output topic back: each partition from where it ended when the batch was
 * planned (the driver logs those marks with the batch's offsets; nothing of this batch can be
 * before them, since the batch before it was committed first) to its end now, and notes the
 * seq of every record tagged with its own query, batch and task. Those records are skipped
 * when the task gives them again; the others are written. With the idempotent producer (no
 * duplicates from retries within a run), each output record is in the topic exactly once.
 *
 * What it assumes: the output topic keeps the batch's records until it is committed
 * (retention longer than a batch), and an earlier run's writes have all landed or been
 * dropped when the new run reads back (the driver declares an executor lost only after its
 * connection or heartbeats stop; a process killed with -9 leaves nothing in flight).
 * Transactions would give the same on brokers that support them, and fence a zombie attempt;
 * the embedded broker ignores them, so ember does not depend on them (docs/streaming.md).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_kafka.h"
#include "em_kafka_int.h"
#include "em_log.h"

#define H_TAG "ember" /* the header: QUERY/BATCH/TASK/SEQ */

int em_kafka_sink_fence(em_kafka_sink *s, const char *query, int64_t batch, uint32_t task,
                        char *err, size_t errlen)
{
    if (!s || !query || !query[0] || batch < 0) {
        em_kafka_set_err(err, errlen, "kafka sink fence: invalid argument");
        return EMBER_ERR_INVALID;
    }
    free(s->fence_query);
    if (!(s->fence_query = strdup(query))) {
        em_kafka_set_err(err, errlen, "out of memory fencing a kafka sink");
        return EMBER_ERR_NOMEM;
    }
    snprintf(s->fence_batch, sizeof s->fence_batch, "%" PRId64, batch);
    snprintf(s->fence_task, sizeof s->fence_task, "%" PRIu32, task);
    int n = snprintf(s->fence_prefix, sizeof s->fence_prefix, "%s/%s/%s/", query, s->fence_batch,
                     s->fence_task);
    if (n < 0 || (size_t)n >= sizeof s->fence_prefix) {
        em_kafka_set_err(err, errlen, "kafka sink fence: query name too long");
        return EMBER_ERR_INVALID;
    }
    s->fence_prefix_len = (size_t)n;
    return EMBER_OK;
}

rd_kafka_resp_err_t em_kafka_fence_produce(em_kafka_sink *s, const ember_record *rec)
{
    char tag[sizeof s->fence_prefix + 24];
    memcpy(tag, s->fence_prefix, s->fence_prefix_len);
    int seq_len = snprintf(tag + s->fence_prefix_len, 24, "%" PRIu64, s->seq - 1);
    return rd_kafka_producev(
        s->rk, RD_KAFKA_V_RKT(s->rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY((void *)rec->key, rec->key ? rec->key_len : 0),
        RD_KAFKA_V_VALUE((void *)rec->value, rec->value ? rec->value_len : 0),
        RD_KAFKA_V_TIMESTAMP(rec->timestamp > 0 ? rec->timestamp : 0),
        RD_KAFKA_V_HEADER(H_TAG, tag, (ssize_t)(s->fence_prefix_len + (size_t)seq_len)),
        RD_KAFKA_V_OPAQUE(s), RD_KAFKA_V_END);
}

int em_kafka_fence_skip(em_kafka_sink *s)
{
    if (!s->fence_query) return 0;
    uint64_t seq = s->seq++;
    if (seq >= s->written_bits || !(s->written[seq / 8] & (1u << (seq % 8)))) return 0;
    s->skipped++;
    return 1;
}

void em_kafka_fence_free(em_kafka_sink *s)
{
    free(s->fence_query);
    free(s->written);
    s->fence_query = NULL;
    s->written = NULL;
}

int64_t em_kafka_sink_skipped(const em_kafka_sink *s) { return s ? s->skipped : 0; }

/* ---- reading back what an earlier run wrote ---------------------------------------------- */

/* note_written: m, if tagged with the sink's own query, batch and task, marks its seq as
 * written */
static int note_written(void *arg, const rd_kafka_message_t *m)
{
    em_kafka_sink *s = arg;
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t len;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR || !h ||
        rd_kafka_header_get_last(h, H_TAG, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        len <= s->fence_prefix_len || len - s->fence_prefix_len > 20 ||
        memcmp(v, s->fence_prefix, s->fence_prefix_len) != 0)
        return EMBER_OK;
    char text[24];
    memcpy(text, (const char *)v + s->fence_prefix_len, len - s->fence_prefix_len);
    text[len - s->fence_prefix_len] = '\0';
    char *end;
    unsigned long long seq = strtoull(text, &end, 10);
    if (*end || text[0] < '0' || text[0] > '9' || seq >= (1ull << 40))
        return EMBER_OK; /* not one of ours after all */
    if (seq >= s->written_bits) {
        uint64_t bits = s->written_bits ? s->written_bits : 4096;
        while (bits <= seq) bits *= 2;
        uint8_t *grown = realloc(s->written, bits / 8);
        if (!grown) return EMBER_ERR_NOMEM;
        memset(grown + s->written_bits / 8, 0, (bits - s->written_bits) / 8);
        s->written = grown;
        s->written_bits = bits;
    }
    s->written[seq / 8] |= (uint8_t)(1u << (seq % 8));
    return EMBER_OK;
}

/* mark_of: where partition p's read-back starts: its mark, else its low watermark */
static int64_t mark_of(const em_kafka_mark *marks, size_t n, int32_t p, int64_t low)
{
    for (size_t i = 0; i < n; i++)
        if (marks[i].partition == p) return marks[i].from > low ? marks[i].from : low;
    return low;
}

int em_kafka_sink_recover(em_kafka_sink *s, const char *bootstrap, const em_kafka_mark *marks,
                          size_t n_marks, int stall_timeout_ms, int64_t *found, char *err,
                          size_t errlen)
{
    if (found) *found = 0;
    if (!s || !s->fence_query) {
        em_kafka_set_err(err, errlen, "kafka sink recover: the sink is not fenced");
        return EMBER_ERR_INVALID;
    }
    rd_kafka_t *rk = NULL;
    int32_t *parts = NULL;
    int n = 0;
    int rc = em_kafka_consumer_new(bootstrap, &rk, err, errlen);
    if (rc == EMBER_OK)
        rc = em_kafka_partitions(rk, s->topic, stall_timeout_ms, &parts, &n, err, errlen);
    if (rc == EMBER_ERR_NOT_FOUND) { /* no topic yet: nothing was written */
        rd_kafka_destroy(rk);
        return EMBER_OK;
    }
    int64_t *low = n ? calloc((size_t)n, sizeof *low) : NULL;
    int64_t *high = n ? calloc((size_t)n, sizeof *high) : NULL;
    if (rc == EMBER_OK && n && (!low || !high)) rc = EMBER_ERR_NOMEM;
    if (rc == EMBER_OK)
        rc = em_kafka_watermarks_of(rk, s->topic, parts, (size_t)n, stall_timeout_ms, low, high,
                                    err, errlen);
    int64_t read = 0;
    for (int i = 0; rc == EMBER_OK && i < n; i++) {
        for (size_t k = 0; k < n_marks; k++)
            if (marks[k].partition == parts[i] && marks[k].from < low[i]) {
                em_kafka_set_err(err, errlen,
                                 "kafka topic '%s' partition %d: the batch's output from offset "
                                 "%" PRId64 " is gone (low watermark %" PRId64
                                 "): cannot tell what an earlier run wrote",
                                 s->topic, (int)parts[i], marks[k].from, low[i]);
                rc = EMBER_ERR_DATA_LOST;
            }
        int64_t from = mark_of(marks, n_marks, parts[i], low[i]), got = 0;
        if (rc == EMBER_OK && from < high[i])
            rc = em_kafka_read_range_messages(rk, s->topic, parts[i], from, high[i],
                                              stall_timeout_ms, note_written, s, &got, err, errlen);
        read += got;
    }
    if (rc == EMBER_ERR_NOMEM) em_kafka_set_err(err, errlen, "out of memory reading back");
    int64_t mine = 0;
    for (uint64_t b = 0; b < s->written_bits / 8; b++) mine += __builtin_popcount(s->written[b]);
    if (rc == EMBER_OK)
        em_info("kafka sink read back topic=%s query=%s batch=%s task=%s records_read=%" PRId64
                " already_written=%" PRId64,
                s->topic, s->fence_query, s->fence_batch, s->fence_task, read, mine);
    if (found) *found = mine;
    free(parts);
    free(low);
    free(high);
    if (rk) rd_kafka_destroy(rk);
    return rc;
}
