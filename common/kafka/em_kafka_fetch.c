/* em_kafka_fetch.c -- an offset range read straight off the Kafka Fetch protocol.
 *
 * librdkafka turns every fetched record into a message object of its own (an allocation, a
 * copy, a queue hop to the reading thread): for a job that only reads, about half its CPU. A
 * fetcher asks the partition's leader for record batches itself (Fetch v4, one partition per
 * request, on a plain TCP connection it keeps per broker), reads each response into one
 * reused buffer, decompresses an LZ4 batch into a second one, and passes records to the caller
 * as views into those buffers: nothing is allocated per record. While the caller works through
 * one response, the request for the next is already on its way (the offsets a response ends
 * at are read from its batch headers before any record is decoded).
 *
 * Only the common case is handled here: a plaintext broker, record batches of format v2,
 * uncompressed or LZ4, no aborted transactions. Anything else -- another codec or format, TLS
 * or SASL, a broker error code, a leader change, a timeout, records not written yet -- ends
 * the fetch at the offset reached, and the caller reads the rest
 * through librdkafka, whose errors and waits the user sees. Every length read off the wire is
 * checked against the bytes it claims before use.
 *
 * Wire formats: https://kafka.apache.org/protocol (Fetch v4, RecordBatch v2).
 */
#include "em_kafka_fetch.h"

#include <errno.h>
#include <limits.h>
#include <lz4frame.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "em_log.h"
#include "em_time.h"

#define FETCH_API_KEY     1
#define FETCH_API_VERSION 4
#define FETCH_MAX_WAIT_MS 100        /* a broker answers at once when records are there */
#define RESPONSE_MAX      (64 << 20) /* a longer response is refused as malformed */
#define IO_TIMEOUT_MS     5000  /* a broker slower than this (or the stall timeout): librdkafka */
#define LEADERS_TTL_MS    30000 /* partition leaders are asked again after this long */
#define LEADER_TOPICS     8     /* topics whose leaders a fetcher keeps (a slot reads several) */
#define MAX_BROKERS       64
#define BATCH_HEADER      61 /* bytes of a v2 record batch before its records */
/* bytes asked for per request (a larger first batch still comes); -DFETCH_BYTES=N builds
 * another size (docs/performance.md, "The Kafka read path") */
#ifndef FETCH_BYTES
#define FETCH_BYTES 1048576
#endif

/* internal: unwinds a fetch that cannot go on; the walk's `why` says it is a fallback (a
 * caller's function returning the same value is still the caller's) */
#define FALLBACK INT_MIN

#define ATTR_CODEC         0x07
#define ATTR_LOG_APPEND_TS 0x08
#define ATTR_CONTROL       0x20
#define CODEC_NONE         0
#define CODEC_LZ4          3

/* conn: a connection to one broker */
typedef struct conn {
    int32_t id;    /* broker id */
    int fd;        /* -1: not connected */
    int in_flight; /* a request was sent whose response is not read yet */
    int32_t corr;  /* its correlation id */
    char host[256];
    int port;
} conn;

/* leaders: where each partition of one topic is led, as of at_ms (0: an empty entry) */
typedef struct leaders {
    char *topic;
    int32_t *broker; /* broker id by partition id, -1 unknown */
    int32_t n;
    int64_t at_ms;
} leaders;

struct em_kafka_fetcher {
    rd_kafka_t *rk; /* for metadata; not owned */
    int isolation;  /* 1: read_committed (librdkafka's default), 0: read_uncommitted */
    conn brokers[MAX_BROKERS];
    int n_brokers;
    leaders lead[LEADER_TOPICS];
    int64_t lookups; /* metadata requests made for leaders */
    int32_t next_corr;
    uint8_t *resp; /* the response being read */
    size_t resp_cap;
    uint8_t *plain; /* a decompressed batch */
    size_t plain_cap;
    LZ4F_dctx *lz4;
    int64_t records, fallbacks; /* em_kafka_fetcher_stats */
    int64_t used_ms;            /* when a range was last fetched */
    int timeout_ms;             /* the current range's limit on each wait */
};

/* ---- reading the wire: a cursor that turns bad instead of reading past its end ----------- */

typedef struct cur {
    const uint8_t *p, *end;
    int bad;
} cur;

static int have(cur *c, size_t n)
{
    if (c->bad || (size_t)(c->end - c->p) < n) c->bad = 1;
    return !c->bad;
}

static uint64_t get_be(cur *c, int n)
{
    if (!have(c, (size_t)n)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | c->p[i];
    c->p += n;
    return v;
}

static int8_t get_i8(cur *c) { return (int8_t)get_be(c, 1); }
static int16_t get_i16(cur *c) { return (int16_t)get_be(c, 2); }
static int32_t get_i32(cur *c) { return (int32_t)get_be(c, 4); }
static int64_t get_i64(cur *c) { return (int64_t)get_be(c, 8); }

/* get_varint: a zig-zag varint of up to 10 bytes (Kafka's varint and varlong) */
static int64_t get_varint(cur *c)
{
    uint64_t u = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (!have(c, 1)) return 0;
        uint8_t b = *c->p++;
        u |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    }
    c->bad = 1;
    return 0;
}

/* get_bytes: n bytes as a view (n == -1: NULL, the protocol's null; below: malformed) */
static const uint8_t *get_bytes(cur *c, int64_t n)
{
    if (n < -1) c->bad = 1;
    if (n < 0 || !have(c, (size_t)n)) return NULL;
    const uint8_t *p = c->p;
    c->p += n;
    return p;
}

static void skip(cur *c, int64_t n)
{
    if (n < 0 || !have(c, (size_t)n))
        c->bad = 1;
    else
        c->p += n;
}

/* ---- connections -------------------------------------------------------------------------- */

static void conn_close(conn *b)
{
    if (b->fd >= 0) close(b->fd);
    b->fd = -1;
    b->in_flight = 0;
}

/* wait_fd waits for fd to be ready for `events` until deadline_ms; 0 when ready */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - em_now_ms();
        if (left <= 0) return -1;
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, (int)left);
        if (n > 0) return 0;
        if (n < 0 && errno != EINTR) return -1;
    }
}

/* connect_within connects fd to addr, giving up after timeout_ms; 0 when connected */
static int connect_within(int fd, const struct sockaddr *addr, socklen_t len, int timeout_ms)
{
    if (connect(fd, addr, len) == 0) return 0;
    if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, em_now_ms() + timeout_ms) != 0) return -1;
    int soerr = 0;
    socklen_t n = sizeof soerr;
    return getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &n) == 0 && soerr == 0 ? 0 : -1;
}

static int conn_open(conn *b, int timeout_ms)
{
    char port[16];
    snprintf(port, sizeof port, "%d", b->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(b->host, port, &hints, &ai) != 0) return -1;
    for (struct addrinfo *a = ai; a && b->fd < 0; a = a->ai_next) {
        int fd =
            socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) continue;
        if (connect_within(fd, a->ai_addr, a->ai_addrlen, timeout_ms) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            b->fd = fd;
        } else {
            close(fd);
        }
    }
    freeaddrinfo(ai);
    return b->fd >= 0 ? 0 : -1;
}

static int send_all(conn *b, const uint8_t *p, size_t n, int timeout_ms)
{
    int64_t deadline = em_now_ms() + timeout_ms;
    while (n) {
        ssize_t w = send(b->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return -1;
        } else if (wait_fd(b->fd, POLLOUT, deadline) != 0) {
            return -1;
        }
    }
    return 0;
}

static int recv_all(conn *b, uint8_t *p, size_t n, int64_t deadline)
{
    while (n) {
        ssize_t r = recv(b->fd, p, n, MSG_DONTWAIT);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
        } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            return -1;
        } else if (wait_fd(b->fd, POLLIN, deadline) != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- partition leaders --------------------------------------------------------------------- */

static void leaders_clear(leaders *l)
{
    free(l->topic);
    free(l->broker);
    memset(l, 0, sizeof *l);
}

/* add_broker records broker id at host:port, keeping an open connection if it did not move */
static void add_broker(em_kafka_fetcher *f, int32_t id, const char *host, int port)
{
    for (int i = 0; i < f->n_brokers; i++) {
        conn *b = &f->brokers[i];
        if (b->id != id) continue;
        if (b->port != port || strcmp(b->host, host) != 0) {
            conn_close(b);
            snprintf(b->host, sizeof b->host, "%s", host);
            b->port = port;
        }
        return;
    }
    int full = f->n_brokers == MAX_BROKERS;
    conn *b = &f->brokers[full ? (uint32_t)id % MAX_BROKERS : (uint32_t)f->n_brokers++];
    if (full) conn_close(b); /* a broker of the same slot gives way */
    *b = (conn){.id = id, .fd = -1, .port = port};
    snprintf(b->host, sizeof b->host, "%s", host);
}

/* learn_leaders asks for topic's metadata into l (the topic exists: the range was checked) */
static int learn_leaders(em_kafka_fetcher *f, const char *topic, leaders *l)
{
    leaders_clear(l);
    f->lookups++;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(f->rk, topic, NULL);
    if (!rkt) return -1;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(f->rk, 0, rkt, &md, f->timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR || !md) return -1;
    int rc = -1;
    for (int i = 0; i < md->broker_cnt; i++)
        add_broker(f, md->brokers[i].id, md->brokers[i].host, md->brokers[i].port);
    for (int t = 0; t < md->topic_cnt; t++) {
        const rd_kafka_metadata_topic_t *mt = &md->topics[t];
        if (strcmp(mt->topic, topic) != 0 || mt->err) continue;
        int32_t n = 0;
        for (int p = 0; p < mt->partition_cnt; p++)
            if (mt->partitions[p].id >= n) n = mt->partitions[p].id + 1;
        l->topic = strdup(topic);
        l->broker = malloc(sizeof *l->broker * (size_t)(n ? n : 1));
        if (!l->topic || !l->broker) break;
        for (int32_t p = 0; p < n; p++) l->broker[p] = -1;
        for (int p = 0; p < mt->partition_cnt; p++)
            if (!mt->partitions[p].err) l->broker[mt->partitions[p].id] = mt->partitions[p].leader;
        l->n = n;
        l->at_ms = em_now_ms();
        rc = 0;
    }
    rd_kafka_metadata_destroy(md);
    if (rc != 0) leaders_clear(l);
    return rc;
}

/* kept_leaders: topic's entry, NULL if none */
static leaders *kept_leaders(em_kafka_fetcher *f, const char *topic)
{
    for (int i = 0; i < LEADER_TOPICS; i++)
        if (f->lead[i].topic && strcmp(f->lead[i].topic, topic) == 0) return &f->lead[i];
    return NULL;
}

/* leaders_of: topic's leaders, asked for when not kept or older than LEADERS_TTL_MS (into the
 * oldest entry, an empty one first); NULL when they cannot be learned */
static leaders *leaders_of(em_kafka_fetcher *f, const char *topic)
{
    leaders *l = kept_leaders(f, topic);
    if (l && em_now_ms() - l->at_ms <= LEADERS_TTL_MS) return l;
    if (!l) {
        l = &f->lead[0];
        for (int i = 1; i < LEADER_TOPICS; i++)
            if (f->lead[i].at_ms < l->at_ms) l = &f->lead[i];
    }
    return learn_leaders(f, topic, l) == 0 ? l : NULL;
}

/* leader_of: a connection to the partition's leader, opened if need be; NULL if unknown */
static conn *leader_of(em_kafka_fetcher *f, const char *topic, int32_t partition)
{
    if (!f->rk) return NULL; /* a fetcher that only decodes */
    leaders *l = leaders_of(f, topic);
    if (!l || partition >= l->n || l->broker[partition] < 0) return NULL;
    for (int i = 0; i < f->n_brokers; i++) {
        conn *b = &f->brokers[i];
        if (b->id != l->broker[partition]) continue;
        if (b->fd < 0 && conn_open(b, f->timeout_ms) != 0) return NULL;
        return b;
    }
    return NULL;
}

/* ---- requests and responses ---------------------------------------------------------------- */

static uint8_t *put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) p[n - 1 - i] = (uint8_t)(v >> (8 * i));
    return p + n;
}

/* send_fetch asks b for partition records from `offset` on */
static int send_fetch(em_kafka_fetcher *f, conn *b, const char *topic, int32_t partition,
                      int64_t offset)
{
    size_t tlen = strlen(topic);
    uint8_t req[128 + 512], *p = req + 4;
    if (tlen > 249) return -1; /* Kafka's longest topic name */
    b->corr = ++f->next_corr;
    p = put_be(p, FETCH_API_KEY, 2);
    p = put_be(p, FETCH_API_VERSION, 2);
    p = put_be(p, (uint32_t)b->corr, 4);
    p = put_be(p, 5, 2);
    memcpy(p, "ember", 5), p += 5;
    p = put_be(p, (uint32_t)-1, 4); /* replica id: a consumer */
    p = put_be(p, FETCH_MAX_WAIT_MS, 4);
    p = put_be(p, 1, 4); /* min bytes */
    p = put_be(p, FETCH_BYTES, 4);
    p = put_be(p, (uint64_t)f->isolation, 1);
    p = put_be(p, 1, 4); /* one topic */
    p = put_be(p, tlen, 2);
    memcpy(p, topic, tlen), p += tlen;
    p = put_be(p, 1, 4); /* one partition */
    p = put_be(p, (uint32_t)partition, 4);
    p = put_be(p, (uint64_t)offset, 8);
    p = put_be(p, FETCH_BYTES, 4);
    put_be(req, (uint64_t)(p - req - 4), 4);
    if (send_all(b, req, (size_t)(p - req), f->timeout_ms) != 0) return -1;
    b->in_flight = 1;
    return 0;
}

/* read_response reads b's pending response into f->resp; its length in *len */
static int read_response(em_kafka_fetcher *f, conn *b, size_t *len)
{
    int64_t deadline = em_now_ms() + f->timeout_ms;
    uint8_t size_be[4];
    b->in_flight = 0;
    if (recv_all(b, size_be, 4, deadline) != 0) return -1;
    cur c = {size_be, size_be + 4, 0};
    int32_t size = get_i32(&c);
    if (size < 8 || size > RESPONSE_MAX) return -1;
    if ((size_t)size > f->resp_cap) {
        uint8_t *grown = realloc(f->resp, (size_t)size);
        if (!grown) return -1;
        f->resp = grown;
        f->resp_cap = (size_t)size;
    }
    if (recv_all(b, f->resp, (size_t)size, deadline) != 0) return -1;
    *len = (size_t)size;
    return 0;
}

/* partition_data: the one partition's part of a Fetch v4 response */
typedef struct partition_data {
    int16_t error;
    int64_t high;
    int aborted; /* aborted transactions listed */
    cur records;
} partition_data;

static int parse_response(const uint8_t *buf, size_t len, int32_t corr, int32_t partition,
                          partition_data *out)
{
    cur c = {buf, buf + len, 0};
    if (get_i32(&c) != corr) return -1;
    get_i32(&c); /* throttle time */
    if (get_i32(&c) != 1) return -1;
    skip(&c, get_i16(&c)); /* topic name */
    if (get_i32(&c) != 1 || get_i32(&c) != partition) return -1;
    out->error = get_i16(&c);
    out->high = get_i64(&c);
    get_i64(&c); /* last stable offset */
    int32_t n_aborted = get_i32(&c);
    out->aborted = n_aborted > 0;
    skip(&c, n_aborted > 0 ? (int64_t)n_aborted * 16 : 0);
    int32_t n_bytes = get_i32(&c);
    const uint8_t *records = get_bytes(&c, n_bytes < 0 ? 0 : n_bytes);
    if (c.bad) return -1;
    out->records = (cur){records, records + (n_bytes < 0 ? 0 : n_bytes), 0};
    return 0;
}

/* ---- record batches ------------------------------------------------------------------------ */

/* batch: the header of one complete record batch, and where its records are */
typedef struct batch {
    int64_t base, last; /* the first and last offsets it covers */
    int magic;          /* its format: 2 is the only one read here */
    int16_t attrs;
    int64_t first_ts, max_ts;
    int32_t count;
    const uint8_t *body, *end; /* its records (compressed as attrs say) */
} batch;

/* next_batch reads the batch at the records' position and moves past it: 1, 0 at the end
 * or at a batch cut short (a response may end inside one), -1 when its offsets are impossible
 * (*b is filled but for `last`) */
static int next_batch(cur *records, batch *b)
{
    if (!have(records, BATCH_HEADER)) return 0;
    const uint8_t *start = records->p;
    cur h = {start, start + BATCH_HEADER, 0};
    b->base = get_i64(&h);
    int32_t length = get_i32(&h);
    if (length < BATCH_HEADER - 12 || (size_t)(records->end - start) - 12 < (size_t)length)
        return 0;
    get_i32(&h); /* partition leader epoch */
    b->magic = get_i8(&h);
    get_i32(&h); /* crc (librdkafka's default check.crcs=false: not checked) */
    b->attrs = get_i16(&h);
    int32_t last_delta = get_i32(&h);
    b->first_ts = get_i64(&h);
    b->max_ts = get_i64(&h);
    skip(&h, 8 + 2 + 4); /* producer id, epoch, base sequence */
    b->count = get_i32(&h);
    b->body = start + BATCH_HEADER;
    b->end = start + 12 + length;
    records->p = b->end;
    if (b->base < 0 || b->base > INT64_MAX - INT32_MAX || last_delta < 0) return -1;
    b->last = b->base + last_delta;
    return 1;
}

/* batch_end: the offset after the last record of the complete batches in `records`, or
 * `from` when there is none (an impossible batch ends the count: pass_batches refuses it) */
static int64_t batch_end(cur records, int64_t from)
{
    int64_t end = from;
    batch b;
    while (next_batch(&records, &b) == 1)
        if (b.last + 1 > end) end = b.last + 1;
    return end;
}

/* decompress inflates an LZ4 frame into f->plain; its length in *len */
static int decompress_lz4(em_kafka_fetcher *f, const uint8_t *src, size_t n, size_t *len)
{
    size_t used = 0;
    for (;;) {
        if (used == f->plain_cap) {
            size_t cap = f->plain_cap ? 2 * f->plain_cap : 4 * n + 65536;
            if (cap > RESPONSE_MAX * (size_t)4) break;
            uint8_t *grown = realloc(f->plain, cap);
            if (!grown) break;
            f->plain = grown;
            f->plain_cap = cap;
        }
        size_t out = f->plain_cap - used, in = n;
        size_t hint = LZ4F_decompress(f->lz4, f->plain + used, &out, src, &in, NULL);
        if (LZ4F_isError(hint)) break;
        used += out;
        src += in;
        n -= in;
        if (hint == 0) { /* the frame is complete */
            *len = used;
            return 0;
        }
        if (in == 0 && out == 0) break; /* no progress: the frame is cut short */
    }
    LZ4F_resetDecompressionContext(f->lz4);
    return -1;
}

/* walk: what one response's records go through */
typedef struct walk {
    int64_t *next, until;
    em_kafka_record_fn fn;
    em_kafka_offset_fn ofn;
    void *arg;
    int64_t *n_read;
    const char *why; /* why a fallback */
} walk;

/* pass_records decodes n records of one batch and passes those in [*next, until) on */
static int pass_records(walk *w, cur *c, int32_t n, int64_t base, int64_t first_ts,
                        int64_t batch_ts, int log_append)
{
    for (int32_t i = 0; i < n; i++) {
        int64_t length = get_varint(c);
        if (c->bad || length < 0 || !have(c, (size_t)length)) break;
        cur r = {c->p, c->p + length, 0};
        c->p += length;
        get_i8(&r); /* attributes: unused */
        int64_t ts_delta = get_varint(&r);
        int64_t offset_delta = get_varint(&r);
        int64_t key_len = get_varint(&r);
        const uint8_t *key = get_bytes(&r, key_len);
        int64_t value_len = get_varint(&r);
        const uint8_t *value = get_bytes(&r, value_len);
        if (r.bad || offset_delta < 0 || offset_delta > INT32_MAX) {
            c->bad = 1;
            break;
        }
        int64_t offset = base + offset_delta; /* base <= INT64_MAX - INT32_MAX: checked */
        if (offset < *w->next) continue;
        if (offset >= w->until) return EMBER_OK;
        int64_t ts = log_append ? batch_ts : (int64_t)((uint64_t)first_ts + (uint64_t)ts_delta);
        ember_record rec = {key, key_len < 0 ? 0 : (size_t)key_len, value,
                            value_len < 0 ? 0 : (size_t)value_len, ts < 0 ? 0 : ts};
        *w->next = offset + 1;
        (*w->n_read)++;
        int rc = w->ofn ? w->ofn(w->arg, offset, &rec) : w->fn(w->arg, &rec);
        if (rc != EMBER_OK) return rc;
    }
    if (c->bad || c->p != c->end) {
        w->why = "a record batch does not parse";
        return FALLBACK;
    }
    return EMBER_OK;
}

/* pass_batches passes the records of every complete batch in `records` */
static int pass_batches(em_kafka_fetcher *f, walk *w, cur records)
{
    batch b;
    int r;
    while (*w->next < w->until && (r = next_batch(&records, &b)) != 0) {
        if (b.magic != 2) {
            w->why = "a record batch of an older format";
            return FALLBACK;
        }
        if (r < 0) {
            w->why = "a record batch with impossible offsets";
            return FALLBACK;
        }
        if (b.last < *w->next) continue;
        if (!(b.attrs & ATTR_CONTROL)) {
            cur body = {b.body, b.end, 0};
            int codec = b.attrs & ATTR_CODEC;
            if (codec == CODEC_LZ4) {
                size_t n;
                if (decompress_lz4(f, b.body, (size_t)(b.end - b.body), &n) != 0) {
                    w->why = "an LZ4 batch does not decompress";
                    return FALLBACK;
                }
                body = (cur){f->plain, f->plain + n, 0};
            } else if (codec != CODEC_NONE) {
                w->why = "a record batch compressed with a codec other than LZ4";
                return FALLBACK;
            }
            int rc = pass_records(w, &body, b.count, b.base, b.first_ts, b.max_ts,
                                  (b.attrs & ATTR_LOG_APPEND_TS) != 0);
            if (rc != EMBER_OK) return rc;
        }
        /* offsets a batch covers without records (compaction, control markers) are passed */
        if (*w->next <= b.last) *w->next = b.last + 1 < w->until ? b.last + 1 : w->until;
    }
    return EMBER_OK;
}

/* ---- the fetch loop ----------------------------------------------------------------------- */

/* conf_is: rk's property `key` is `value` */
static int conf_is(rd_kafka_t *rk, const char *key, const char *value)
{
    char got[64];
    size_t size = sizeof got;
    return rd_kafka_conf_get(rd_kafka_conf(rk), key, got, &size) == RD_KAFKA_CONF_OK &&
           strcmp(got, value) == 0;
}

em_kafka_fetcher *em_kafka_fetcher_new(rd_kafka_t *rk)
{
    const char *mode = getenv("EMBER_KAFKA_FETCH");
    if (rk && ((mode && strcmp(mode, "librdkafka") == 0) ||
               !conf_is(rk, "security.protocol", "plaintext") || conf_is(rk, "check.crcs", "true")))
        return NULL; /* TLS, SASL and CRC checks are librdkafka's */
    em_kafka_fetcher *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&f->lz4, LZ4F_VERSION))) {
        free(f);
        return NULL;
    }
    f->rk = rk;
    f->isolation = !rk || !conf_is(rk, "isolation.level", "read_uncommitted");
    return f;
}

int em_kafka_fetch_decode(em_kafka_fetcher *f, const uint8_t *resp, size_t len, int32_t partition,
                          int64_t *next, int64_t until, em_kafka_offset_fn ofn, void *arg,
                          int64_t *n_read)
{
    cur c = {resp, resp + len, 0};
    partition_data pd;
    walk w = {next, until, NULL, ofn, arg, n_read, NULL};
    if (parse_response(resp, len, get_i32(&c), partition, &pd) != 0 || pd.error || pd.aborted)
        return EMBER_ERR_PROTOCOL;
    int rc = pass_batches(f, &w, pd.records);
    return w.why ? EMBER_ERR_PROTOCOL : rc;
}

void em_kafka_fetcher_stats(const em_kafka_fetcher *f, int64_t *records, int64_t *fallbacks)
{
    *records = f ? f->records : 0;
    *fallbacks = f ? f->fallbacks : 0;
}

int64_t em_kafka_fetcher_lookups(const em_kafka_fetcher *f) { return f ? f->lookups : 0; }

int em_kafka_fetcher_holding(const em_kafka_fetcher *f) { return f && (f->resp || f->plain); }

/* release closes f's connections and frees its buffers */
static void release(em_kafka_fetcher *f)
{
    for (int i = 0; i < f->n_brokers; i++) conn_close(&f->brokers[i]);
    free(f->resp);
    free(f->plain);
    f->resp = f->plain = NULL;
    f->resp_cap = f->plain_cap = 0;
}

void em_kafka_fetcher_trim(em_kafka_fetcher *f, int64_t now_ms, int64_t idle_ms)
{
    if (em_kafka_fetcher_holding(f) && now_ms - f->used_ms >= idle_ms) release(f);
}

void em_kafka_fetcher_free(em_kafka_fetcher *f)
{
    if (!f) return;
    release(f);
    for (int i = 0; i < LEADER_TOPICS; i++) leaders_clear(&f->lead[i]);
    LZ4F_freeDecompressionContext(f->lz4);
    free(f);
}

/* fetch_loop: the range on leader b (see em_kafka_fetch_range) */
static int fetch_loop(em_kafka_fetcher *f, conn *b, const char *topic, int32_t partition, walk *w)
{
    if (send_fetch(f, b, topic, partition, *w->next) != 0) {
        w->why = "the request could not be sent";
        return FALLBACK;
    }
    while (*w->next < w->until) {
        size_t len;
        partition_data pd;
        int32_t corr = b->corr;
        int64_t t0 = em_now_us();
        int got = read_response(f, b, &len);
        em_input_wait_add(em_now_us() - t0); /* the task's time waiting for its input */
        if (got != 0 || parse_response(f->resp, len, corr, partition, &pd)) {
            w->why = "no well-formed response";
            return FALLBACK;
        }
        if (pd.error || pd.aborted) {
            w->why = pd.error ? "the broker answered with an error" : "aborted transactions";
            return FALLBACK;
        }
        int64_t ends_at = batch_end(pd.records, *w->next);
        if (ends_at <= *w->next) {
            w->why = pd.high <= *w->next ? "records not written yet" : "no complete batch";
            return FALLBACK;
        }
        /* the next request travels while this response is decoded */
        if (ends_at < w->until && send_fetch(f, b, topic, partition, ends_at) != 0) {
            w->why = "the request could not be sent";
            return FALLBACK;
        }
        int rc = pass_batches(f, w, pd.records);
        if (rc != EMBER_OK) return rc;
        if (*w->next < w->until && *w->next < ends_at) {
            w->why = "a response's batches ended early";
            return FALLBACK;
        }
    }
    return EMBER_OK;
}

int em_kafka_fetch_range(em_kafka_fetcher *f, const char *topic, int32_t partition, int64_t *next,
                         int64_t until, int timeout_ms, em_kafka_record_fn fn,
                         em_kafka_offset_fn ofn, void *arg, int64_t *n_read)
{
    if (*next >= until) return EMBER_OK;
    f->used_ms = em_now_ms();
    f->timeout_ms = timeout_ms < IO_TIMEOUT_MS ? timeout_ms : IO_TIMEOUT_MS;
    int64_t read_before = *n_read;
    walk w = {next, until, fn, ofn, arg, n_read, NULL};
    conn *b = leader_of(f, topic, partition);
    int rc = FALLBACK;
    if (!b)
        w.why = "no connection to the partition's leader";
    else
        rc = fetch_loop(f, b, topic, partition, &w);
    if (b && (rc != EMBER_OK || b->in_flight)) conn_close(b); /* a response may be pending */
    f->records += *n_read - read_before;
    if (!w.why) return rc; /* done, or the caller's function stopped it */
    f->fallbacks++;
    leaders *moved = kept_leaders(f, topic); /* the leader may have moved: ask again next time */
    if (moved) leaders_clear(moved);
    em_debug("kafka fetch falls back to librdkafka topic=%s partition=%d offset=%lld reason=\"%s\"",
             topic, (int)partition, (long long)*next, w.why);
    return EMBER_OK;
}
