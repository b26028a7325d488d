/* em_kafka_range.c -- reading an exact offset range [from, until) of one partition.
 *
 * A range takes the partition's own queue off the consumer queue and drains it with
 * rd_kafka_consume_batch_queue, passing records [from, until) to the caller, never asking for
 * more messages than the range still owes. Invariant: `next` (the next offset owed to the
 * caller) only grows, and every record passed on satisfies from <= offset < until, in
 * increasing offset order.
 *
 * Two ways to hold the partition:
 *   - one-shot (em_kafka_read_range): assign the one partition at `from`, read, unassign, so
 *     the next range starts clean; for tools and benchmarks.
 *   - kept (em_kafka_reader): the partition stays assigned after the range, and the consumer
 *     fetches ahead, so a range that starts where the last one ended (a streaming query's
 *     next batch) finds its records already queued: no watermark request, no assign, no
 *     first fetch. A partition is let go when a range starts elsewhere (a re-run), after an
 *     error, when a record past `until` was taken off its queue (offset gaps), when more than
 *     EM_KAFKA_KEEP_BACKLOG records wait past the range (fetching ahead would hold them all
 *     in memory), and after EM_KAFKA_KEEP_IDLE_MS without a range.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_kafka.h"
#include "em_kafka_fetch.h"
#include "em_kafka_int.h"
#include "em_log.h"
#include "em_time.h"

#define EM_KAFKA_BATCH        10000  /* messages taken per rd_kafka_consume_batch_queue call */
#define EM_KAFKA_KEEP_BACKLOG 100000 /* most records past a range for its partition to be kept */
#define EM_KAFKA_KEEP_MAX     256    /* most partitions a reader keeps assigned */
/* a reader's fetch wait: a kept partition that is up to date sees new records within about
 * this long (a broker may hold an empty fetch for all of it) */
#define EM_KAFKA_KEEP_FETCH_WAIT_MS 1
/* a range of at least this many records that no kept partition continues is fetched by the
 * reader's own fetcher (em_kafka_fetch.c); shorter ones go through librdkafka and stay kept */
#define EM_KAFKA_FETCH_MIN_RECORDS 1000

/* range: the state of one range being read. */
typedef struct range {
    rd_kafka_t *rk;          /* the consumer; not owned */
    const char *topic;       /* topic name */
    int32_t partition;       /* partition read */
    int64_t until;           /* first offset not to read */
    int64_t next;            /* next offset owed to fn: from <= next <= until */
    int64_t high;            /* high watermark seen at the start (for messages) */
    em_kafka_record_fn fn;   /* the caller's function, or NULL when ofn is set */
    em_kafka_offset_fn ofn;  /* the caller's function taking offsets, or NULL */
    em_kafka_message_fn mfn; /* the caller's function taking messages, or NULL */
    void *arg;               /* its argument */
    int64_t n_read;          /* records passed to fn */
    int warned;              /* transient errors already logged */
    int overshot;            /* a record at or past `until` was taken off the queue */
    char *err;               /* message buffer */
    size_t errlen;           /* its size */
} range;

/* data_lost reports that offset r->next is below the low watermark. */
static int data_lost(range *r)
{
    int64_t low = -1, high = -1;
    char ignored[64];
    em_kafka_watermarks(r->rk, r->topic, r->partition, 2000, &low, &high, ignored, sizeof ignored);
    em_kafka_set_err(
        r->err, r->errlen,
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
        int rc = em_kafka_map_err(m->err);
        if (rc == EMBER_ERR_DATA_LOST) return data_lost(r);
        if (rc == EMBER_ERR_NOT_FOUND) {
            char bs[512];
            em_kafka_set_err(r->err, r->errlen,
                             "kafka topic '%s' partition %d does not exist (broker %s)", r->topic,
                             (int)r->partition, em_kafka_bootstrap_of(r->rk, bs, sizeof bs));
            return rc;
        }
        if (m->err == RD_KAFKA_RESP_ERR__FATAL ||
            m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
            em_kafka_set_err(r->err, r->errlen, "kafka topic '%s' partition %d: %s", r->topic,
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
        r->overshot = 1;
        return EMBER_OK;
    }
    if (r->mfn) {
        r->next = m->offset + 1;
        r->n_read++;
        return r->mfn(r->arg, m);
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
    em_kafka_set_err(r->err, r->errlen,
                     "kafka topic '%s' partition %d: no record for %d ms at offset %lld, expected "
                     "records up to offset %lld (high watermark %lld)",
                     r->topic, (int)r->partition, stall_timeout_ms, (long long)r->next,
                     (long long)r->until, (long long)high);
    return EMBER_ERR_TIMEOUT;
}

/* consume drains the partition queue until the range is complete, fn stops, or a stall. */
static int consume(range *r, rd_kafka_queue_t *partq, int stall_timeout_ms)
{
    rd_kafka_message_t **msgs = malloc(sizeof *msgs * EM_KAFKA_BATCH);
    if (!msgs) {
        em_kafka_set_err(r->err, r->errlen, "out of memory reading kafka");
        return EMBER_ERR_NOMEM;
    }
    int rc = EMBER_OK;
    int64_t last_progress = em_now_ms();
    while (rc == EMBER_OK && r->next < r->until) {
        /* The call returns once it has `want` messages or after the wait: asking for no more
         * than the range still owes makes the last batch return without waiting. */
        int64_t owed = r->until - r->next;
        size_t want = owed < EM_KAFKA_BATCH ? (size_t)owed : EM_KAFKA_BATCH;
        int64_t t0 = em_now_us();
        ssize_t n = rd_kafka_consume_batch_queue(partq, EM_KAFKA_POLL_MS, msgs, want);
        em_input_wait_add(em_now_us() - t0);
        if (n < 0) {
            rd_kafka_resp_err_t e = rd_kafka_last_error();
            em_kafka_set_err(r->err, r->errlen, "kafka topic '%s' partition %d: consume failed: %s",
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

/* check_args refuses a range request that cannot be read (handle: the consumer or reader). */
static int check_args(const void *handle, const char *topic, int32_t partition, int64_t from,
                      int64_t until, int stall_timeout_ms, int has_fn, char *err, size_t errlen)
{
    if (handle && topic && topic[0] && has_fn && partition >= 0 && from >= 0 && until >= from &&
        stall_timeout_ms > 0)
        return EMBER_OK;
    em_kafka_set_err(err, errlen, "kafka read range: invalid argument (partition %d, [%lld, %lld))",
                     (int)partition, (long long)from, (long long)until);
    return EMBER_ERR_INVALID;
}

/* check_start asks the partition's leader whether offset `from` is still kept; *high gets the
 * high watermark (for messages). */
static int check_start(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t from,
                       int timeout_ms, int64_t *high, char *err, size_t errlen)
{
    int64_t low;
    int rc = em_kafka_watermarks(rk, topic, partition, timeout_ms, &low, high, err, errlen);
    if (rc != EMBER_OK || from >= low) return rc;
    em_kafka_set_err(err, errlen,
                     "kafka topic '%s' partition %d: offset %lld is no longer available (low "
                     "watermark %lld): data dropped by retention",
                     topic, (int)partition, (long long)from, (long long)low);
    return EMBER_ERR_DATA_LOST;
}

/* open_queue returns the partition's own queue, taken off the consumer queue so that it is
 * read here; NULL (with err) if the handle has none. */
static rd_kafka_queue_t *open_queue(rd_kafka_t *rk, const char *topic, int32_t partition, char *err,
                                    size_t errlen)
{
    rd_kafka_queue_t *q = rd_kafka_queue_get_partition(rk, topic, partition);
    if (!q)
        em_kafka_set_err(err, errlen, "kafka topic '%s' partition %d: no partition queue", topic,
                         (int)partition);
    else
        rd_kafka_queue_forward(q, NULL);
    return q;
}

/* assign_one adds topic/partition at offset `from` to the assignment: alone (the one-shot
 * read) or beside the partitions kept assigned (incremental, the reader). */
static int assign_one(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t from,
                      int incremental, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, partition)->offset = from;
    char reason[256] = "";
    if (incremental) {
        rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, list);
        if (e) snprintf(reason, sizeof reason, "%s", rd_kafka_error_string(e));
        if (e) rd_kafka_error_destroy(e);
    } else {
        rd_kafka_resp_err_t e = rd_kafka_assign(rk, list);
        if (e) snprintf(reason, sizeof reason, "%s", rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(list);
    if (!reason[0]) return EMBER_OK;
    em_kafka_set_err(err, errlen, "kafka topic '%s' partition %d: assign failed: %s", topic,
                     (int)partition, reason);
    return EMBER_ERR_KAFKA;
}

/* unassign_one takes topic/partition out of the assignment (all of it when not incremental). */
static void unassign_one(rd_kafka_t *rk, const char *topic, int32_t partition, int incremental)
{
    char reason[256] = "";
    if (incremental) {
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, topic, partition);
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, list);
        if (e) snprintf(reason, sizeof reason, "%s", rd_kafka_error_string(e));
        if (e) rd_kafka_error_destroy(e);
        rd_kafka_topic_partition_list_destroy(list);
    } else {
        rd_kafka_resp_err_t e = rd_kafka_assign(rk, NULL);
        if (e) snprintf(reason, sizeof reason, "%s", rd_kafka_err2str(e));
    }
    if (reason[0])
        em_warn("kafka unassign failed topic=%s partition=%d err=\"%s\"", topic, (int)partition,
                reason);
}

/* read_range runs one range on a consumer that holds nothing else, for either kind of caller
 * function (fn or ofn), and leaves the consumer unassigned. */
static int read_range(rd_kafka_t *consumer, const char *topic, int32_t partition, int64_t from,
                      int64_t until, int stall_timeout_ms, em_kafka_record_fn fn,
                      em_kafka_offset_fn ofn, em_kafka_message_fn mfn, void *arg, int64_t *n_read,
                      char *err, size_t errlen)
{
    if (n_read) *n_read = 0;
    int rc = check_args(consumer, topic, partition, from, until, stall_timeout_ms, fn || ofn || mfn,
                        err, errlen);
    if (rc != EMBER_OK || from == until) return rc;
    range r = {consumer, topic, partition, until, from, -1,  fn,    ofn,
               mfn,      arg,   0,         0,     0,    err, errlen};
    rc = check_start(consumer, topic, partition, from, stall_timeout_ms, &r.high, err, errlen);
    if (rc != EMBER_OK) return rc;
    rd_kafka_queue_t *partq = open_queue(consumer, topic, partition, err, errlen);
    if (!partq) return EMBER_ERR_KAFKA;
    rc = assign_one(consumer, topic, partition, from, 0, err, errlen);
    if (rc == EMBER_OK) {
        rc = consume(&r, partq, stall_timeout_ms);
        unassign_one(consumer, topic, partition, 0);
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
    return read_range(consumer, topic, partition, from, until, stall_timeout_ms, fn, NULL, NULL,
                      arg, n_read, err, errlen);
}

int em_kafka_read_range_offsets(rd_kafka_t *consumer, const char *topic, int32_t partition,
                                int64_t from, int64_t until, int stall_timeout_ms,
                                em_kafka_offset_fn ofn, void *arg, int64_t *n_read, char *err,
                                size_t errlen)
{
    return read_range(consumer, topic, partition, from, until, stall_timeout_ms, NULL, ofn, NULL,
                      arg, n_read, err, errlen);
}

int em_kafka_read_range_messages(rd_kafka_t *consumer, const char *topic, int32_t partition,
                                 int64_t from, int64_t until, int stall_timeout_ms,
                                 em_kafka_message_fn mfn, void *arg, int64_t *n_read, char *err,
                                 size_t errlen)
{
    return read_range(consumer, topic, partition, from, until, stall_timeout_ms, NULL, NULL, mfn,
                      arg, n_read, err, errlen);
}

/* ---- the reader: partitions kept assigned between ranges -------------------------------- */

/* kept: a partition left assigned after a range, fetching ahead for the next one */
typedef struct kept {
    char *topic;
    int32_t partition;
    rd_kafka_queue_t *queue; /* its own queue, off the consumer queue */
    int64_t next;            /* the offset its queue continues at */
    int64_t used_ms;         /* when a range last ended on it */
} kept;

struct em_kafka_reader {
    rd_kafka_t *rk;
    em_kafka_fetcher *fetcher; /* NULL: every range through librdkafka */
    char *bootstrap;
    kept *kept;
    size_t n_kept, cap_kept;
};

int em_kafka_reader_new(const char *bootstrap, em_kafka_reader **out, char *err, size_t errlen)
{
    *out = NULL;
    em_kafka_reader *rd = calloc(1, sizeof *rd);
    if (!rd || !(rd->bootstrap = strdup(bootstrap ? bootstrap : ""))) {
        free(rd);
        em_kafka_set_err(err, errlen, "out of memory creating a kafka reader");
        return EMBER_ERR_NOMEM;
    }
    int rc =
        em_kafka_consumer_waiting(bootstrap, EM_KAFKA_KEEP_FETCH_WAIT_MS, &rd->rk, err, errlen);
    if (rc != EMBER_OK) {
        free(rd->bootstrap);
        free(rd);
        return rc;
    }
    rd->fetcher = em_kafka_fetcher_new(rd->rk);
    *out = rd;
    return EMBER_OK;
}

const char *em_kafka_reader_bootstrap(const em_kafka_reader *rd) { return rd->bootstrap; }

/* worth_keeping: after a range that ended at `until`, the partition holds few enough records
 * past it (the last fetch's high watermark) that fetching ahead costs little memory. */
static int worth_keeping(em_kafka_reader *rd, const char *topic, int32_t partition, int64_t until)
{
    int64_t low = -1, high = -1;
    if (rd_kafka_get_watermark_offsets(rd->rk, topic, partition, &low, &high) != 0 || high < 0)
        return 0;
    return high - until <= EM_KAFKA_KEEP_BACKLOG;
}

/* let_go unassigns kept partition k and forgets it. */
static void let_go(em_kafka_reader *rd, kept *k)
{
    unassign_one(rd->rk, k->topic, k->partition, 1);
    rd_kafka_queue_destroy(k->queue);
    free(k->topic);
    *k = rd->kept[--rd->n_kept];
}

void em_kafka_reader_let_go_idle(em_kafka_reader *rd, int64_t now_ms)
{
    for (size_t i = rd ? rd->n_kept : 0; i-- > 0;)
        if (now_ms - rd->kept[i].used_ms >= EM_KAFKA_KEEP_IDLE_MS) let_go(rd, &rd->kept[i]);
    if (rd) em_kafka_fetcher_trim(rd->fetcher, now_ms, EM_KAFKA_KEEP_IDLE_MS);
}

size_t em_kafka_reader_kept(const em_kafka_reader *rd) { return rd ? rd->n_kept : 0; }

int em_kafka_reader_holding(const em_kafka_reader *rd)
{
    return rd && (rd->n_kept || em_kafka_fetcher_holding(rd->fetcher));
}

void em_kafka_reader_fetched(const em_kafka_reader *rd, int64_t *records, int64_t *fallbacks)
{
    em_kafka_fetcher_stats(rd ? rd->fetcher : NULL, records, fallbacks);
}

int64_t em_kafka_reader_lookups(const em_kafka_reader *rd)
{
    return em_kafka_fetcher_lookups(rd ? rd->fetcher : NULL);
}

void em_kafka_reader_free(em_kafka_reader *rd)
{
    if (!rd) return;
    while (rd->n_kept) let_go(rd, &rd->kept[rd->n_kept - 1]);
    free(rd->kept);
    em_kafka_fetcher_free(rd->fetcher);
    rd_kafka_destroy(rd->rk);
    free(rd->bootstrap);
    free(rd);
}

static kept *find_kept(em_kafka_reader *rd, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < rd->n_kept; i++)
        if (rd->kept[i].partition == partition && strcmp(rd->kept[i].topic, topic) == 0)
            return &rd->kept[i];
    return NULL;
}

/* keep assigns topic/partition at `from` and remembers it; *high gets the high watermark. */
static int keep(em_kafka_reader *rd, const char *topic, int32_t partition, int64_t from,
                int timeout_ms, int64_t *high, kept **out, char *err, size_t errlen)
{
    int rc = check_start(rd->rk, topic, partition, from, timeout_ms, high, err, errlen);
    if (rc != EMBER_OK) return rc;
    if (rd->n_kept == EM_KAFKA_KEEP_MAX) { /* let the longest idle one go */
        kept *oldest = &rd->kept[0];
        for (size_t i = 1; i < rd->n_kept; i++)
            if (rd->kept[i].used_ms < oldest->used_ms) oldest = &rd->kept[i];
        let_go(rd, oldest);
    }
    if (rd->n_kept == rd->cap_kept) {
        size_t cap = rd->cap_kept ? 2 * rd->cap_kept : 8;
        kept *grown = realloc(rd->kept, cap * sizeof *grown);
        if (!grown) {
            em_kafka_set_err(err, errlen, "out of memory reading kafka");
            return EMBER_ERR_NOMEM;
        }
        rd->kept = grown;
        rd->cap_kept = cap;
    }
    kept k = {strdup(topic), partition, NULL, from, em_now_ms()};
    if (!k.topic) {
        em_kafka_set_err(err, errlen, "out of memory reading kafka");
        return EMBER_ERR_NOMEM;
    }
    if (!(k.queue = open_queue(rd->rk, topic, partition, err, errlen))) rc = EMBER_ERR_KAFKA;
    if (rc == EMBER_OK) rc = assign_one(rd->rk, topic, partition, from, 1, err, errlen);
    if (rc != EMBER_OK) {
        if (k.queue) rd_kafka_queue_destroy(k.queue);
        free(k.topic);
        return rc;
    }
    rd->kept[rd->n_kept] = k;
    *out = &rd->kept[rd->n_kept++];
    return EMBER_OK;
}

int em_kafka_reader_read(em_kafka_reader *rd, const char *topic, int32_t partition, int64_t from,
                         int64_t until, int stall_timeout_ms, em_kafka_record_fn fn, void *arg,
                         int64_t *n_read, char *err, size_t errlen)
{
    if (n_read) *n_read = 0;
    int rc =
        check_args(rd, topic, partition, from, until, stall_timeout_ms, fn != NULL, err, errlen);
    if (rc != EMBER_OK || from == until) return rc;
    em_kafka_reader_let_go_idle(rd, em_now_ms());
    range r = {rd->rk, topic, partition, until, from, -1,  fn,    NULL,
               NULL,   arg,   0,         0,     0,    err, errlen};
    kept *k = find_kept(rd, topic, partition);
    if (k && k->next != from) { /* not where its queue continues (a re-run): start over */
        let_go(rd, k);
        k = NULL;
    }
    if (!k && rd->fetcher && until - from >= EM_KAFKA_FETCH_MIN_RECORDS) {
        rc = check_start(rd->rk, topic, partition, from, stall_timeout_ms, &r.high, err, errlen);
        if (rc == EMBER_OK)
            rc = em_kafka_fetch_range(rd->fetcher, topic, partition, &r.next, until,
                                      stall_timeout_ms, fn, NULL, arg, &r.n_read);
        if (rc != EMBER_OK || r.next == until) { /* else librdkafka reads the rest */
            drain_side_queues(rd->rk);
            if (n_read) *n_read = r.n_read;
            return rc;
        }
    }
    if (!k) rc = keep(rd, topic, partition, r.next, stall_timeout_ms, &r.high, &k, err, errlen);
    if (rc == EMBER_OK) {
        rc = consume(&r, k->queue, stall_timeout_ms);
        if (rc == EMBER_OK && !r.overshot && worth_keeping(rd, topic, partition, until)) {
            k->next = until;
            k->used_ms = em_now_ms();
        } else {
            let_go(rd, k);
        }
    }
    drain_side_queues(rd->rk);
    if (n_read) *n_read = r.n_read;
    return rc;
}
