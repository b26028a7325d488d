/* stream_producer.c -- the input of bench/streaming: records produced to a topic at a fixed rate.
 *
 * Produces --count records (stream_record.h: key one of --keys, value produce time in us +
 * sequence number + amount, Kafka timestamp the produce time in ms) to --topic with
 * librdkafka, at --rate records per second (0: as fast as librdkafka takes them). Pacing: the
 * record of sequence number i is due i / rate seconds after the start; the loop produces every
 * record that is due, then sleeps until the next one is (at least 100 us at a time), so records
 * leave in small bursts of a few dozen at 100k/s. When the producer cannot keep up, records go
 * back to back and `behind_max_ms` says how far it fell behind its schedule.
 *
 * Producer settings: socket.nagle.disable=true, linger.ms=--linger-ms (default 5, librdkafka's
 * own default and ember's sink's: the embedded broker finds a fetch's offset by walking the
 * partition's record batches from the oldest, so with 1 ms batches at 100,000 records/s its
 * fetches slow down within seconds and every latency grows to seconds; see bench/streaming),
 * compression.codec=--compression (default none), a local queue of up to 1,000,000 records;
 * partitions from librdkafka's default partitioner on the key. It waits up to 60 s
 * for every delivery report and exits 1 unless every record was acknowledged.
 *
 * --panes FILE writes, per 1 s pane of event time, "pane_start_ms count amount_sum": the
 * truth bench/streaming checks the windowed query's sums against.
 *
 * Prints one line:
 *   stream_producer records=N delivered=D seconds=S rate=R target_rate=T behind_max_ms=B
 * (seconds: from the first produce call to the last; rate = N / seconds).
 *
 * Usage: stream_producer --bootstrap B --topic T --count N [--rate R] [--keys K]
 *                        [--linger-ms L] [--compression C] [--panes FILE]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "stream_record.h"

#define FLUSH_MS 60000
#define PANE_MS  1000

/* pane: the records produced in one second of event time. */
typedef struct pane {
    int64_t count, sum;
} pane;

/* counts: delivery reports, served on the main thread by rd_kafka_poll/flush. */
typedef struct counts {
    int64_t delivered, failed;
    char first_error[256];
} counts;

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    counts *c = opaque;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        c->delivered++;
        return;
    }
    if (c->failed++ == 0)
        snprintf(c->first_error, sizeof c->first_error, "%s", rd_kafka_err2str(msg->err));
}

static rd_kafka_t *producer_new(const char *bootstrap, const char *linger, const char *codec,
                                counts *c)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *kv[] = {"bootstrap.servers",
                        bootstrap,
                        "client.id",
                        "bench-stream-producer",
                        "socket.nagle.disable",
                        "true",
                        "linger.ms",
                        linger,
                        "compression.codec",
                        codec,
                        "queue.buffering.max.messages",
                        "1000000",
                        "queue.buffering.max.kbytes",
                        "1048576",
                        NULL};
    for (int i = 0; kv[i]; i += 2)
        if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "stream_producer: %s=%s: %s\n", kv[i], kv[i + 1], errstr);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "stream_producer: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* produce_one produces record seq; 0 or -1 (printed). The value's produce time is read last. */
static int produce_one(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int64_t seq, int keys,
                       int64_t *now_us)
{
    char key[16];
    int key_len = snprintf(key, sizeof key, "k%04d", (int)(seq % keys));
    unsigned char value[SR_VALUE_LEN];
    sr_value v = {.seq = seq, .amount = seq % SR_AMOUNT_MOD};
    for (;;) {
        v.produce_us = sr_wall_us();
        sr_encode(value, &v);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, (size_t)key_len),
            RD_KAFKA_V_VALUE(value, sizeof value), RD_KAFKA_V_TIMESTAMP(v.produce_us / 1000),
            RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "stream_producer: produce: %s\n", rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(rk, 5); /* the local queue is full: let deliveries free it */
    }
    *now_us = v.produce_us;
    return 0;
}

/* pane_add counts record (ts_ms, amount) into *panes (grown as needed, from the first pane). */
static int pane_add(pane **panes, int64_t *first, int64_t *n, int64_t ts_ms, int64_t amount)
{
    int64_t p = ts_ms / PANE_MS;
    if (*n == 0) *first = p;
    int64_t i = p - *first;
    if (i < 0 || i > 1000000) return -1; /* the clock jumped: no truth to check against */
    if (i >= *n) {
        pane *grown = realloc(*panes, sizeof *grown * (size_t)(i + 1));
        if (!grown) return -1;
        memset(grown + *n, 0, sizeof *grown * (size_t)(i + 1 - *n));
        *panes = grown;
        *n = i + 1;
    }
    (*panes)[i].count++;
    (*panes)[i].sum += amount;
    return 0;
}

static int write_panes(const char *path, const pane *panes, int64_t first, int64_t n)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    for (int64_t i = 0; i < n; i++)
        if (panes[i].count)
            fprintf(f, "%" PRId64 " %" PRId64 " %" PRId64 "\n", (first + i) * PANE_MS,
                    panes[i].count, panes[i].sum);
    return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *bootstrap = sr_option(argc, argv, "--bootstrap", NULL);
    const char *topic = sr_option(argc, argv, "--topic", NULL);
    const char *panes_path = sr_option(argc, argv, "--panes", NULL);
    int64_t count = atoll(sr_option(argc, argv, "--count", "0"));
    double rate = atof(sr_option(argc, argv, "--rate", "0"));
    int keys = atoi(sr_option(argc, argv, "--keys", "1000"));
    if (!bootstrap || !topic || count < 1 || rate < 0 || keys < 1 || keys > 10000) {
        fprintf(stderr, "usage: stream_producer --bootstrap B --topic T --count N [--rate R] "
                        "[--keys K<=10000] [--linger-ms L] [--compression C] [--panes FILE]\n");
        return 2;
    }
    counts c = {0};
    rd_kafka_t *rk = producer_new(bootstrap, sr_option(argc, argv, "--linger-ms", "5"),
                                  sr_option(argc, argv, "--compression", "none"), &c);
    if (!rk) return 1;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    pane *panes = NULL;
    int64_t first_pane = 0, n_panes = 0, seq = 0, first_us = 0, last_us = 0, behind_us = 0;
    int ok = rkt != NULL;
    int64_t t0 = sr_mono_us();
    while (ok && seq < count) {
        int64_t now = sr_mono_us() - t0;
        int64_t due = rate > 0 ? (int64_t)((double)now * rate / 1e6) + 1 : count;
        if (due > count) due = count;
        if (rate > 0 && seq < due) {
            int64_t late = now - (int64_t)((double)seq * 1e6 / rate);
            if (late > behind_us) behind_us = late;
        }
        for (; ok && seq < due; seq++) {
            ok = produce_one(rk, rkt, seq, keys, &last_us) == 0;
            if (seq == 0) first_us = last_us;
            if (ok && panes_path)
                ok = pane_add(&panes, &first_pane, &n_panes, last_us / 1000, seq % SR_AMOUNT_MOD) ==
                     0;
            if ((seq & 1023) == 0) rd_kafka_poll(rk, 0);
        }
        rd_kafka_poll(rk, 0);
        if (ok && seq < count && rate > 0) { /* sleep until the next record is due */
            int64_t next = (int64_t)((double)seq * 1e6 / rate) - (sr_mono_us() - t0);
            if (next < 100) next = 100;
            struct timespec ts = {(time_t)(next / 1000000), (long)(next % 1000000) * 1000};
            nanosleep(&ts, NULL);
        }
    }
    rd_kafka_flush(rk, FLUSH_MS);
    if (ok && panes_path && write_panes(panes_path, panes, first_pane, n_panes) != 0) {
        fprintf(stderr, "stream_producer: cannot write %s\n", panes_path);
        ok = 0;
    }
    double seconds = (double)(last_us - first_us) / 1e6;
    printf("stream_producer records=%" PRId64 " delivered=%" PRId64 " seconds=%.3f rate=%.0f "
           "target_rate=%.0f behind_max_ms=%.1f\n",
           seq, c.delivered, seconds, seconds > 0 ? (double)seq / seconds : 0, rate,
           (double)behind_us / 1000.0);
    if (c.failed)
        fprintf(stderr, "stream_producer: %" PRId64 " deliveries failed, first: %s\n", c.failed,
                c.first_error);
    if (c.delivered != count) ok = 0;
    free(panes);
    if (rkt) rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return ok ? 0 : 1;
}
