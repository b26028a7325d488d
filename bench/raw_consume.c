/* raw_consume.c -- the floor of bench/wordcount: read a whole topic with librdkafka, nothing else.
 *
 * Reads every partition of --topic from its low to its high watermark with the consumer
 * ember's executors use (em_kafka_consumer_new: queued.min.messages=1000000,
 * fetch.wait.max.ms=10, Nagle off; em_kafka_read_range: the partition's own queue drained
 * with rd_kafka_consume_batch_queue), and counts the records and their value bytes.
 *
 * --threads N (default: the number of online cores) threads, each with its own consumer, as
 * ember has one consumer per executor slot; thread t reads partitions t, t+N, t+2N, ... one
 * after the other (--threads 1: all partitions sequentially on one consumer). Like the
 * executors of a running cluster, each thread first creates its consumer and reads the first
 * record of its first partition (untimed: connects to the broker). Then --reps times (default
 * 3) all threads read their partitions in full; each run is timed with
 * clock_gettime(CLOCK_MONOTONIC) from the moment the threads are released together to the
 * moment the last one has finished. The watermarks are read once, before the runs.
 *
 * --reader: read with ember's executor reader instead (em_kafka_reader: long ranges straight
 * off the Fetch protocol, em_kafka_fetch.c), the read path of a job; without it the floor is
 * librdkafka's own.
 *
 * Prints one line per run and a summary, and exits 1 unless every run read exactly
 * high - low records of every partition:
 *   raw_consume run=N seconds=S records=R bytes=B
 *   raw_consume threads=T reps=N median_s=M best_s=B records=R records_per_s=X
 *
 * Usage: raw_consume --bootstrap HOST:PORT --topic T [--threads N] [--reps N] [--reader]
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "em_kafka.h"

#define TIMEOUT_MS 10000 /* metadata and watermark requests */
#define STALL_MS   30000 /* a read with no progress this long fails (the executors' default) */

typedef struct shared {
    const char *bootstrap, *topic;
    int32_t *parts;      /* partition ids */
    int64_t *low, *high; /* watermarks per partition index */
    int n_parts, n_threads, reps;
    int use_reader;          /* --reader: em_kafka_reader, not em_kafka_read_range */
    pthread_barrier_t start; /* all threads ready (or failed) for the next run */
    pthread_barrier_t done;  /* all threads finished the run */
    int failed;              /* set by any thread before the barrier it fails at */
} shared;

typedef struct worker {
    shared *sh;
    int index;
    int64_t records, bytes; /* of the current run */
    pthread_t tid;
} worker;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* count_record: the callback of em_kafka_read_range; counts, and touches the value length. */
static int count_record(void *arg, const ember_record *rec)
{
    worker *w = arg;
    w->records++;
    w->bytes += (int64_t)rec->value_len;
    return 0;
}

/* read_part reads partition index i over [from, until) on consumer rk or reader rd; 0 or -1
 * (printed). */
static int read_part(worker *w, rd_kafka_t *rk, em_kafka_reader *rd, int i, int64_t from,
                     int64_t until)
{
    char err[512];
    int64_t n = 0;
    int32_t p = w->sh->parts[i];
    int rc = rd ? em_kafka_reader_read(rd, w->sh->topic, p, from, until, STALL_MS, count_record, w,
                                       &n, err, sizeof err)
                : em_kafka_read_range(rk, w->sh->topic, p, from, until, STALL_MS, count_record, w,
                                      &n, err, sizeof err);
    if (rc != EMBER_OK) {
        fprintf(stderr, "raw_consume: partition %d: %s\n", (int)w->sh->parts[i], err);
        return -1;
    }
    if (n != until - from) {
        fprintf(stderr, "raw_consume: partition %d: read %lld records of [%lld, %lld)\n",
                (int)w->sh->parts[i], (long long)n, (long long)from, (long long)until);
        return -1;
    }
    return 0;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    shared *sh = w->sh;
    char err[512];
    rd_kafka_t *rk = NULL;
    em_kafka_reader *rd = NULL;
    int ok = 1;
    if ((sh->use_reader ? em_kafka_reader_new(sh->bootstrap, &rd, err, sizeof err)
                        : em_kafka_consumer_new(sh->bootstrap, &rk, err, sizeof err)) != EMBER_OK) {
        fprintf(stderr, "raw_consume: %s\n", err);
        ok = 0;
    }
    /* warm-up: connect by reading the first record of this thread's first partition */
    if (ok && w->index < sh->n_parts && sh->high[w->index] > sh->low[w->index])
        ok = read_part(w, rk, rd, w->index, sh->low[w->index], sh->low[w->index] + 1) == 0;
    for (int r = 0; r < sh->reps; r++) {
        if (!ok) __atomic_store_n(&sh->failed, 1, __ATOMIC_SEQ_CST);
        pthread_barrier_wait(&sh->start);
        w->records = w->bytes = 0;
        for (int i = w->index;
             ok && !__atomic_load_n(&sh->failed, __ATOMIC_SEQ_CST) && i < sh->n_parts;
             i += sh->n_threads)
            ok = read_part(w, rk, rd, i, sh->low[i], sh->high[i]) == 0;
        if (!ok) __atomic_store_n(&sh->failed, 1, __ATOMIC_SEQ_CST);
        pthread_barrier_wait(&sh->done);
    }
    if (rk) rd_kafka_destroy(rk);
    em_kafka_reader_free(rd);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *option(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return def;
}

int main(int argc, char **argv)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    char def_threads[16], err[512];
    snprintf(def_threads, sizeof def_threads, "%ld", cores > 0 ? cores : 1);
    shared sh = {.bootstrap = option(argc, argv, "--bootstrap", NULL),
                 .topic = option(argc, argv, "--topic", NULL),
                 .n_threads = atoi(option(argc, argv, "--threads", def_threads)),
                 .reps = atoi(option(argc, argv, "--reps", "3"))};
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--reader") == 0) sh.use_reader = 1;
    if (!sh.bootstrap || !sh.topic || sh.n_threads < 1 || sh.n_threads > 256 || sh.reps < 1 ||
        sh.reps > 100) {
        fprintf(stderr, "usage: raw_consume --bootstrap HOST:PORT --topic T [--threads N] "
                        "[--reps N] [--reader]\n");
        return 2;
    }

    /* partitions and watermarks, once, on a consumer of their own */
    rd_kafka_t *rk;
    if (em_kafka_consumer_new(sh.bootstrap, &rk, err, sizeof err) != EMBER_OK ||
        em_kafka_partitions(rk, sh.topic, TIMEOUT_MS, &sh.parts, &sh.n_parts, err, sizeof err) !=
            EMBER_OK) {
        fprintf(stderr, "raw_consume: %s\n", err);
        return 1;
    }
    sh.low = calloc((size_t)sh.n_parts, sizeof *sh.low);
    sh.high = calloc((size_t)sh.n_parts, sizeof *sh.high);
    if (!sh.low || !sh.high) return 1;
    int64_t expected = 0;
    for (int i = 0; i < sh.n_parts; i++) {
        if (em_kafka_watermarks(rk, sh.topic, sh.parts[i], TIMEOUT_MS, &sh.low[i], &sh.high[i], err,
                                sizeof err) != EMBER_OK) {
            fprintf(stderr, "raw_consume: %s\n", err);
            return 1;
        }
        expected += sh.high[i] - sh.low[i];
    }
    rd_kafka_destroy(rk);

    worker *ws = calloc((size_t)sh.n_threads, sizeof *ws);
    double *secs = calloc((size_t)sh.reps, sizeof *secs);
    if (!ws || !secs) return 1;
    pthread_barrier_init(&sh.start, NULL, (unsigned)sh.n_threads + 1);
    pthread_barrier_init(&sh.done, NULL, (unsigned)sh.n_threads + 1);
    for (int t = 0; t < sh.n_threads; t++) {
        ws[t] = (worker){.sh = &sh, .index = t};
        if (pthread_create(&ws[t].tid, NULL, worker_main, &ws[t]) != 0) {
            fprintf(stderr, "raw_consume: cannot start a thread\n");
            return 1;
        }
    }
    int rc = 0;
    for (int r = 0; r < sh.reps; r++) {
        pthread_barrier_wait(&sh.start); /* every thread has its consumer and is connected */
        double t0 = now_s();
        pthread_barrier_wait(&sh.done);
        secs[r] = now_s() - t0;
        int64_t records = 0, bytes = 0;
        for (int t = 0; t < sh.n_threads; t++) {
            records += ws[t].records;
            bytes += ws[t].bytes;
        }
        if (__atomic_load_n(&sh.failed, __ATOMIC_SEQ_CST) || records != expected) {
            if (!rc)
                fprintf(stderr, "raw_consume: run %d read %lld records, expected %lld\n", r + 1,
                        (long long)records, (long long)expected);
            rc = 1;
            continue; /* the threads still meet at the barriers of the remaining runs */
        }
        printf("raw_consume run=%d seconds=%.6f records=%lld bytes=%lld\n", r + 1, secs[r],
               (long long)records, (long long)bytes);
        fflush(stdout);
    }
    for (int t = 0; t < sh.n_threads; t++) pthread_join(ws[t].tid, NULL);
    if (rc == 0) {
        qsort(secs, (size_t)sh.reps, sizeof *secs, cmp_double);
        double median =
            sh.reps % 2 ? secs[sh.reps / 2] : (secs[sh.reps / 2 - 1] + secs[sh.reps / 2]) / 2;
        printf("raw_consume threads=%d reps=%d median_s=%.6f best_s=%.6f records=%lld "
               "records_per_s=%.1f\n",
               sh.n_threads, sh.reps, median, secs[0], (long long)expected,
               (double)expected / median);
    }
    pthread_barrier_destroy(&sh.start);
    pthread_barrier_destroy(&sh.done);
    free(ws);
    free(secs);
    free(sh.parts);
    free(sh.low);
    free(sh.high);
    return rc;
}
