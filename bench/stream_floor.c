/* stream_floor.c -- the floor of bench/streaming: a plain librdkafka consume -> produce loop.
 *
 * Reads --topic and produces every record (key, value and timestamp unchanged) to
 * --out-topic, with no ember in between: what a hand-written Kafka pass-through achieves on
 * this machine, next to which ember's queries are measured. --filter drops the records the
 * bench's stateless query drops (stream_record.h: seq % 10 == 0), so both write the same
 * records.
 *
 * --threads T (default 2, as ember's 2 executors x 1 slot) threads, each with one consumer and
 * one producer; thread t owns partitions t, t+T, t+2T... assigned once and read continuously.
 * The consumer is a tail (stream_tail.h: ember's consumer settings, fetch.wait.max.ms
 * --fetch-wait-ms, 1 by default, since the embedded broker holds an empty fetch that long); the
 * producer is ember's Kafka sink itself (em_kafka_producer_new + em_kafka_sink: idempotent,
 * linger.ms=5). A thread takes whatever its queue holds (up to 1,000 records, without waiting),
 * or else waits for the next record (at most 10 ms), so a record is passed on as soon as it
 * arrives.
 *
 * Two ways to end:
 *   --count N  (live) the partitions are read from their beginning (a fresh topic the producer
 *              fills while the floor runs) until N records were read in all
 *   --drain    the topic's watermarks are read first and the floor reads exactly what they
 *              hold (a pre-filled topic), timed from the moment the threads start together to
 *              the moment the last one has every delivery report: its sustainable rate
 * Either way each thread then waits for every delivery report (em_kafka_sink_close, 60 s).
 * --ready-file PATH is written once every consumer is assigned (the bench starts its producer
 * after). The run fails when no record arrives for --idle-s seconds (default 30).
 *
 * Prints one line, and exits 1 unless every record was read and every kept one delivered:
 *   stream_floor consumed=N produced=P delivered=D seconds=S rate=R
 * (rate = consumed / seconds; in live mode, seconds run from the start, so rate follows the
 * producer's).
 *
 * Usage: stream_floor --bootstrap B --topic IN --out-topic OUT (--count N | --drain)
 *                     [--threads T] [--filter] [--idle-s S] [--fetch-wait-ms W]
 *                     [--ready-file PATH]
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_kafka.h"
#include "stream_record.h"
#include "stream_tail.h"

#define META_MS  10000 /* partitions and watermarks */
#define CLOSE_MS 60000 /* delivery reports at the end */
#define BATCH    1000

typedef struct shared {
    const char *bootstrap, *topic, *out_topic;
    int32_t *parts; /* partition ids */
    int64_t *from;  /* start offset per partition index (RD_KAFKA_OFFSET_BEGINNING live) */
    int64_t total;  /* records to read in all */
    int n_parts, n_threads, filter, idle_s, fetch_wait_ms;
    int64_t consumed;        /* read so far by all threads (atomic) */
    int failed;              /* any thread failed (atomic) */
    pthread_barrier_t ready; /* every thread assigned (or failed) */
    pthread_barrier_t go;    /* the main thread has published the ready file */
} shared;

typedef struct worker {
    shared *sh;
    int index;
    int64_t consumed, produced, delivered;
    pthread_t tid;
} worker;

/* assign_parts assigns this thread's partitions to its consumer; 0 or -1 (printed). */
static int assign_parts(worker *w, rd_kafka_t *rk)
{
    shared *sh = w->sh;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(sh->n_parts);
    for (int i = w->index; i < sh->n_parts; i += sh->n_threads)
        rd_kafka_topic_partition_list_add(l, sh->topic, sh->parts[i])->offset = sh->from[i];
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "stream_floor: assign: %s\n", rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

/* pass_on produces one consumed record unless the filter drops it; 0 or -1 (printed). */
static int pass_on(worker *w, em_kafka_sink *sink, const rd_kafka_message_t *m)
{
    w->consumed++;
    sr_value v;
    if (w->sh->filter && sr_decode(m->payload, m->len, &v) && !sr_kept(v.seq)) return 0;
    ember_record rec = {.key = m->key,
                        .key_len = m->key_len,
                        .value = m->payload,
                        .value_len = m->len,
                        .timestamp = rd_kafka_message_timestamp(m, NULL)};
    char err[512];
    if (em_kafka_sink_write(sink, &rec, err, sizeof err) != EMBER_OK) {
        fprintf(stderr, "stream_floor: %s\n", err);
        return -1;
    }
    w->produced++;
    return 0;
}

/* pump reads and passes on records until all were read, a thread failed, or the input idled. */
static int pump(worker *w, rd_kafka_t *rk, rd_kafka_queue_t *q, em_kafka_sink *sink)
{
    shared *sh = w->sh;
    rd_kafka_message_t *msgs[BATCH];
    int64_t last_us = sr_mono_us();
    while (__atomic_load_n(&sh->consumed, __ATOMIC_SEQ_CST) < sh->total &&
           !__atomic_load_n(&sh->failed, __ATOMIC_SEQ_CST)) {
        char err[512];
        ssize_t n = st_next(q, msgs, BATCH, 10, err, sizeof err);
        if (n < 0) {
            fprintf(stderr, "stream_floor: %s\n", err);
            return -1;
        }
        int64_t before = w->consumed;
        int rc = 0;
        for (ssize_t i = 0; i < n; i++) {
            if (rc == 0) rc = pass_on(w, sink, msgs[i]);
            rd_kafka_message_destroy(msgs[i]);
        }
        if (rc) return -1;
        int64_t now = sr_mono_us();
        if (w->consumed > before) {
            __atomic_add_fetch(&sh->consumed, w->consumed - before, __ATOMIC_SEQ_CST);
            last_us = now;
        } else if (now - last_us > (int64_t)sh->idle_s * 1000000) {
            fprintf(stderr, "stream_floor: no record for %d s (%" PRId64 " of %" PRId64 " read)\n",
                    sh->idle_s, __atomic_load_n(&sh->consumed, __ATOMIC_SEQ_CST), sh->total);
            return -1;
        }
        rd_kafka_poll(rk, 0);
    }
    return 0;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    shared *sh = w->sh;
    char err[512];
    rd_kafka_t *consumer = NULL, *producer = NULL;
    rd_kafka_queue_t *q = NULL;
    em_kafka_sink *sink = NULL;
    int ok = st_consumer_new(sh->bootstrap, sh->fetch_wait_ms, &consumer, err, sizeof err) == 0 &&
             em_kafka_producer_new(sh->bootstrap, &producer, err, sizeof err) == EMBER_OK &&
             em_kafka_sink_open(producer, sh->out_topic, &sink, err, sizeof err) == EMBER_OK;
    if (!ok) fprintf(stderr, "stream_floor: %s\n", err);
    if (ok) ok = assign_parts(w, consumer) == 0;
    if (ok) q = rd_kafka_queue_get_consumer(consumer);
    if (!ok || !q) __atomic_store_n(&sh->failed, 1, __ATOMIC_SEQ_CST);
    pthread_barrier_wait(&sh->ready);
    pthread_barrier_wait(&sh->go);
    if (ok && q && !__atomic_load_n(&sh->failed, __ATOMIC_SEQ_CST) && pump(w, producer, q, sink))
        ok = 0;
    if (sink) {
        int rc = em_kafka_sink_close(sink, CLOSE_MS, &w->delivered, err, sizeof err);
        if (rc != EMBER_OK) {
            fprintf(stderr, "stream_floor: %s\n", err);
            ok = 0;
        }
    }
    if (!ok) __atomic_store_n(&sh->failed, 1, __ATOMIC_SEQ_CST);
    if (q) rd_kafka_queue_destroy(q);
    if (consumer) {
        rd_kafka_assign(consumer, NULL);
        rd_kafka_destroy(consumer);
    }
    if (producer) rd_kafka_destroy(producer);
    return NULL;
}

/* plan fills sh->parts, sh->from and (with drain) sh->total; 0 or -1 (printed). */
static int plan(shared *sh, int drain)
{
    char err[512];
    rd_kafka_t *rk;
    if (em_kafka_consumer_new(sh->bootstrap, &rk, err, sizeof err) != EMBER_OK ||
        em_kafka_partitions(rk, sh->topic, META_MS, &sh->parts, &sh->n_parts, err, sizeof err) !=
            EMBER_OK) {
        fprintf(stderr, "stream_floor: %s\n", err);
        return -1;
    }
    int ok = (sh->from = calloc((size_t)sh->n_parts, sizeof *sh->from)) != NULL;
    if (drain) sh->total = 0;
    for (int i = 0; ok && i < sh->n_parts; i++) {
        int64_t low, high;
        sh->from[i] = RD_KAFKA_OFFSET_BEGINNING;
        if (!drain) continue;
        if (em_kafka_watermarks(rk, sh->topic, sh->parts[i], META_MS, &low, &high, err,
                                sizeof err) != EMBER_OK) {
            fprintf(stderr, "stream_floor: %s\n", err);
            ok = 0;
            break;
        }
        sh->from[i] = low;
        sh->total += high - low;
    }
    rd_kafka_destroy(rk);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    shared sh = {.bootstrap = sr_option(argc, argv, "--bootstrap", NULL),
                 .topic = sr_option(argc, argv, "--topic", NULL),
                 .out_topic = sr_option(argc, argv, "--out-topic", NULL),
                 .total = atoll(sr_option(argc, argv, "--count", "0")),
                 .n_threads = atoi(sr_option(argc, argv, "--threads", "2")),
                 .filter = sr_flag(argc, argv, "--filter"),
                 .idle_s = atoi(sr_option(argc, argv, "--idle-s", "30")),
                 .fetch_wait_ms = atoi(sr_option(argc, argv, "--fetch-wait-ms", "1"))};
    const char *ready = sr_option(argc, argv, "--ready-file", NULL);
    int drain = sr_flag(argc, argv, "--drain");
    if (!sh.bootstrap || !sh.topic || !sh.out_topic || (drain == (sh.total > 0)) ||
        sh.n_threads < 1 || sh.n_threads > 64 || sh.idle_s < 1 || sh.fetch_wait_ms < 0) {
        fprintf(stderr, "usage: stream_floor --bootstrap B --topic IN --out-topic OUT "
                        "(--count N | --drain) [--threads T] [--filter] [--idle-s S] "
                        "[--fetch-wait-ms W] [--ready-file PATH]\n");
        return 2;
    }
    if (plan(&sh, drain) != 0) return 1;
    if (sh.n_threads > sh.n_parts) sh.n_threads = sh.n_parts;
    worker *ws = calloc((size_t)sh.n_threads, sizeof *ws);
    if (!ws) return 1;
    pthread_barrier_init(&sh.ready, NULL, (unsigned)sh.n_threads + 1);
    pthread_barrier_init(&sh.go, NULL, (unsigned)sh.n_threads + 1);
    for (int t = 0; t < sh.n_threads; t++) {
        ws[t] = (worker){.sh = &sh, .index = t};
        pthread_create(&ws[t].tid, NULL, worker_main, &ws[t]);
    }
    pthread_barrier_wait(&sh.ready);
    if (ready && st_write_ready(ready) != 0) {
        fprintf(stderr, "stream_floor: cannot write %s\n", ready);
        __atomic_store_n(&sh.failed, 1, __ATOMIC_SEQ_CST);
    }
    int64_t t0 = sr_mono_us();
    pthread_barrier_wait(&sh.go);
    int64_t consumed = 0, produced = 0, delivered = 0;
    for (int t = 0; t < sh.n_threads; t++) {
        pthread_join(ws[t].tid, NULL);
        consumed += ws[t].consumed;
        produced += ws[t].produced;
        delivered += ws[t].delivered;
    }
    double seconds = (double)(sr_mono_us() - t0) / 1e6;
    printf("stream_floor consumed=%" PRId64 " produced=%" PRId64 " delivered=%" PRId64
           " seconds=%.3f rate=%.0f\n",
           consumed, produced, delivered, seconds, seconds > 0 ? (double)consumed / seconds : 0);
    int ok = !sh.failed && consumed == sh.total && delivered == produced;
    if (!ok && !sh.failed)
        fprintf(stderr,
                "stream_floor: read %" PRId64 " of %" PRId64 ", delivered %" PRId64 " of %" PRId64
                "\n",
                consumed, sh.total, delivered, produced);
    pthread_barrier_destroy(&sh.ready);
    pthread_barrier_destroy(&sh.go);
    free(ws);
    free(sh.parts);
    free(sh.from);
    return ok ? 0 : 1;
}
