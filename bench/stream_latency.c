/* stream_latency.c -- the reader of bench/streaming's output topics: end-to-end latency of a
 * pass-through (the floor's or ember's), or a check of the windowed query's sums.
 *
 * Latency (default): reads --topic from the beginning of every partition while it is written,
 * with one tail consumer (stream_tail.h: ember's consumer settings, --fetch-wait-ms 1 by
 * default) that takes whatever its queue holds or else waits for the next record, and for each
 * record computes
 *     latency = the wall clock when the record is taken from the queue - its produce time
 * (stream_record.h: the producer writes its wall clock in the value; every process runs on this
 * machine, so both times come from one clock). Records whose sequence number is below
 * --skip-seq (the first seconds of the run: connections, first batches) are counted but not
 * measured. --produced N [--filter] says which sequence numbers must come: all of [0, N), or
 * those the filter keeps; it stops once each came, or when no new record came for --idle-s
 * seconds (default 10), and fails unless every expected record came exactly once.
 * --ready-file PATH is written once the consumer is assigned and has reached the broker.
 * Prints:
 *   stream_latency records=R distinct=D expected=E duplicates=U measured=M p50_ms=A p90_ms=B
 *                  p99_ms=C max_ms=X mean_ms=Y
 * Percentiles are nearest-rank (the ceil(q * M)-th smallest latency). --timeline FILE also
 * writes, per second of produce time from the first measured record, "second count p50_ms
 * p99_ms max_ms" (where in the run the slow records were).
 *
 * Windows (--windows PANES --length L --slide S --watermark W): reads everything the topic
 * holds now (its watermarks), each record a final window (key, value = an 8-byte sum, Kafka
 * timestamp = the window's start), sums them per window start over all keys, and compares
 * with the producer's truth (PANES: "pane_start_ms count amount_sum" per 1 s pane, as
 * stream_producer --panes writes it): every window [s, s + L) with s a multiple of S, holding
 * data and ending at or before W, must have come with the sum of its panes; none ending after
 * W may have come. Prints
 *   stream_latency windows=N expected=E matched=M wrong=X missing=Y extra=Z records=R
 * and exits 1 unless every expected window matched and none was extra.
 *
 * Usage: stream_latency --bootstrap B --topic T --produced N [--filter] [--skip-seq S]
 *                       [--idle-s S] [--fetch-wait-ms W] [--ready-file PATH] [--timeline FILE]
 *        stream_latency --bootstrap B --topic T --windows PANES --length L --slide S
 *                       --watermark W
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_kafka.h"
#include "stream_record.h"
#include "stream_tail.h"

#define META_MS 10000
#define BATCH   1000

/* reader: one consumer on every partition of a topic. */
typedef struct reader {
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    int64_t total; /* records the topic held when it was opened */
} reader;

/* reader_open assigns every partition of topic from its beginning (its low watermark) and
 * counts what the partitions hold now in r->total. 0 or -1 (printed). */
static int reader_open(reader *r, const char *bootstrap, const char *topic, int fetch_wait_ms)
{
    char err[512];
    int32_t *parts = NULL;
    int n_parts = 0, ok = 1;
    memset(r, 0, sizeof *r);
    if (st_consumer_new(bootstrap, fetch_wait_ms, &r->rk, err, sizeof err) != 0 ||
        em_kafka_partitions(r->rk, topic, META_MS, &parts, &n_parts, err, sizeof err) != EMBER_OK) {
        fprintf(stderr, "stream_latency: %s\n", err);
        return -1;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n_parts);
    for (int i = 0; ok && i < n_parts; i++) {
        int64_t low, high;
        /* also the first contact with the partition's leader, before the ready file */
        if (em_kafka_watermarks(r->rk, topic, parts[i], META_MS, &low, &high, err, sizeof err) !=
            EMBER_OK) {
            fprintf(stderr, "stream_latency: %s\n", err);
            ok = 0;
        }
        rd_kafka_topic_partition_list_add(l, topic, parts[i])->offset = low;
        r->total += high - low;
    }
    if (ok && rd_kafka_assign(r->rk, l) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "stream_latency: cannot assign %s\n", topic);
        ok = 0;
    }
    rd_kafka_topic_partition_list_destroy(l);
    free(parts);
    if (ok) r->q = rd_kafka_queue_get_consumer(r->rk);
    return ok && r->q ? 0 : -1;
}

static void reader_close(reader *r)
{
    if (r->q) rd_kafka_queue_destroy(r->q);
    if (r->rk) {
        rd_kafka_assign(r->rk, NULL);
        rd_kafka_destroy(r->rk);
    }
}

/* reader_next: st_next on the reader's queue, errors printed. */
static ssize_t reader_next(reader *r, rd_kafka_message_t **msgs)
{
    char err[512];
    ssize_t n = st_next(r->q, msgs, BATCH, 10, err, sizeof err);
    if (n < 0) fprintf(stderr, "stream_latency: %s\n", err);
    return n;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* rank_ms: the nearest-rank q-quantile of the sorted lat[0..n) (us), in ms. */
static double rank_ms(const int64_t *lat, int64_t n, double q)
{
    int64_t k = (int64_t)(q * (double)n + 0.999999);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return (double)lat[k - 1] / 1000.0;
}

/* latency: the default mode (see the top). */
/* sample: one measured record. */
typedef struct sample {
    int64_t produce_us, lat_us;
} sample;

static int cmp_produce(const void *a, const void *b)
{
    const sample *x = a, *y = b;
    return (x->produce_us > y->produce_us) - (x->produce_us < y->produce_us);
}

/* write_timeline writes, per second of produce time from the first measured record,
 * "second count p50_ms p99_ms max_ms"; sorts s[0..n) by produce time and uses lat as scratch. */
static int write_timeline(const char *path, sample *s, int64_t n, int64_t *lat)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    qsort(s, (size_t)n, sizeof *s, cmp_produce);
    for (int64_t i = 0; i < n;) {
        int64_t sec = (s[i].produce_us - s[0].produce_us) / 1000000, k = 0;
        for (; i < n && (s[i].produce_us - s[0].produce_us) / 1000000 == sec; i++)
            lat[k++] = s[i].lat_us;
        qsort(lat, (size_t)k, sizeof *lat, cmp_i64);
        fprintf(f, "%" PRId64 " %" PRId64 " %.2f %.2f %.2f\n", sec, k, rank_ms(lat, k, 0.5),
                rank_ms(lat, k, 0.99), (double)lat[k - 1] / 1000.0);
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int latency(reader *r, int64_t produced, int filter, int64_t skip_seq, int idle_s,
                   const char *timeline)
{
    int64_t expected = filter ? sr_kept_below(produced) : produced;
    unsigned char *seen = calloc((size_t)produced / 8 + 1, 1);
    int64_t *lat = malloc(sizeof *lat * (size_t)(expected > 0 ? expected : 1));
    sample *smp = malloc(sizeof *smp * (size_t)(expected > 0 ? expected : 1));
    if (!seen || !lat || !smp) return -1;
    int64_t records = 0, distinct = 0, dups = 0, foreign = 0, measured = 0, sum_us = 0;
    int64_t last_us = sr_mono_us();
    rd_kafka_message_t *msgs[BATCH];
    int ok = 1;
    while (ok && distinct < expected && sr_mono_us() - last_us < (int64_t)idle_s * 1000000) {
        ssize_t n = reader_next(r, msgs);
        if (n < 0) ok = 0;
        for (ssize_t i = 0; i < n; i++) {
            int64_t now = sr_wall_us();
            sr_value v;
            records++;
            if (!sr_decode(msgs[i]->payload, msgs[i]->len, &v) || v.seq < 0 || v.seq >= produced ||
                (filter && !sr_kept(v.seq))) {
                foreign++;
            } else if (seen[v.seq / 8] & (1u << (v.seq % 8))) {
                dups++;
            } else {
                seen[v.seq / 8] |= (unsigned char)(1u << (v.seq % 8));
                distinct++;
                if (v.seq >= skip_seq) {
                    smp[measured] = (sample){v.produce_us, now - v.produce_us};
                    lat[measured++] = now - v.produce_us;
                    sum_us += now - v.produce_us;
                }
            }
            rd_kafka_message_destroy(msgs[i]);
        }
        if (n > 0) last_us = sr_mono_us();
    }
    qsort(lat, (size_t)measured, sizeof *lat, cmp_i64);
    printf("stream_latency records=%" PRId64 " distinct=%" PRId64 " expected=%" PRId64
           " duplicates=%" PRId64 " measured=%" PRId64,
           records, distinct, expected, dups, measured);
    if (measured)
        printf(" p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f mean_ms=%.2f",
               rank_ms(lat, measured, 0.5), rank_ms(lat, measured, 0.9),
               rank_ms(lat, measured, 0.99), (double)lat[measured - 1] / 1000.0,
               (double)sum_us / (double)measured / 1000.0);
    printf("\n");
    if (distinct < expected)
        fprintf(stderr, "stream_latency: %" PRId64 " of %" PRId64 " records came (none for %d s)\n",
                distinct, expected, idle_s);
    if (foreign)
        fprintf(stderr, "stream_latency: %" PRId64 " records that should not be there\n", foreign);
    if (timeline && measured && write_timeline(timeline, smp, measured, lat) != 0) {
        fprintf(stderr, "stream_latency: cannot write %s\n", timeline);
        ok = 0;
    }
    free(seen);
    free(lat);
    free(smp);
    return ok && distinct == expected && dups == 0 && foreign == 0 ? 0 : -1;
}

/* truth: the producer's panes. */
typedef struct truth {
    int64_t *start, *sum; /* per pane, sorted by start */
    int64_t n;
} truth;

static int read_panes(const char *path, truth *t)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int64_t start, count, sum, cap = 0;
    while (fscanf(f, "%" SCNd64 " %" SCNd64 " %" SCNd64, &start, &count, &sum) == 3) {
        if (t->n == cap) {
            cap = cap ? cap * 2 : 64;
            int64_t *s1 = realloc(t->start, sizeof *s1 * (size_t)cap);
            if (s1) t->start = s1;
            int64_t *s2 = realloc(t->sum, sizeof *s2 * (size_t)cap);
            if (s2) t->sum = s2;
            if (!s1 || !s2) break;
        }
        t->start[t->n] = start;
        t->sum[t->n++] = sum;
    }
    fclose(f);
    return t->n > 0 ? 0 : -1;
}

/* got: window sums read from the topic, by window start (a small open-addressed table would
 * do; the bench has at most a few hundred windows, so a sorted insert is enough). */
typedef struct got {
    int64_t start[4096], sum[4096];
    int n;
} got;

static int got_add(got *g, int64_t start, int64_t sum)
{
    for (int i = 0; i < g->n; i++)
        if (g->start[i] == start) {
            g->sum[i] += sum;
            return 0;
        }
    if (g->n == 4096) return -1;
    g->start[g->n] = start;
    g->sum[g->n++] = sum;
    return 0;
}

static int64_t floor_to(int64_t t, int64_t step)
{
    int64_t q = t / step;
    return (t % step != 0 && t < 0 ? q - 1 : q) * step;
}

/* windows: the --windows mode (see the top). */
static int windows(reader *r, const char *panes, int64_t length, int64_t slide, int64_t watermark)
{
    truth t = {0};
    static got g;
    if (read_panes(panes, &t) != 0 || length <= 0 || slide <= 0 || length % slide) {
        fprintf(stderr, "stream_latency: no panes in %s, or a bad window\n", panes);
        return -1;
    }
    rd_kafka_message_t *msgs[BATCH];
    int64_t records = 0, last_us = sr_mono_us();
    int ok = 1;
    while (ok && records < r->total && sr_mono_us() - last_us < 10 * 1000000) {
        ssize_t n = reader_next(r, msgs);
        if (n < 0) ok = 0;
        for (ssize_t i = 0; i < n; i++) {
            int64_t sum = 0;
            if (msgs[i]->len == sizeof sum)
                memcpy(&sum, msgs[i]->payload, sizeof sum);
            else
                ok = 0; /* not a window's sum */
            if (ok && got_add(&g, rd_kafka_message_timestamp(msgs[i], NULL), sum) != 0) ok = 0;
            records++;
            rd_kafka_message_destroy(msgs[i]);
        }
        if (n > 0) last_us = sr_mono_us();
    }
    if (records < r->total) ok = 0;
    /* every window holding a pane: starts from the first pane - length + slide to the last pane */
    int64_t expected = 0, matched = 0, wrong = 0, missing = 0, extra = 0;
    int64_t first = floor_to(t.start[0] - length + slide, slide);
    for (int64_t s = first; s <= t.start[t.n - 1]; s += slide) {
        int64_t want = 0, has_data = 0;
        for (int64_t i = 0; i < t.n; i++)
            if (t.start[i] >= s && t.start[i] < s + length) {
                want += t.sum[i];
                has_data = 1;
            }
        int found = -1;
        for (int i = 0; i < g.n; i++)
            if (g.start[i] == s) found = i;
        if (!has_data || s + length > watermark) {
            extra += found >= 0;
            continue;
        }
        expected++;
        if (found < 0)
            missing++;
        else if (g.sum[found] == want)
            matched++;
        else
            wrong++;
    }
    for (int i = 0; i < g.n; i++) /* windows outside the producer's range altogether */
        if (g.start[i] < first || g.start[i] > t.start[t.n - 1]) extra++;
    printf("stream_latency windows=%d expected=%" PRId64 " matched=%" PRId64 " wrong=%" PRId64
           " missing=%" PRId64 " extra=%" PRId64 " records=%" PRId64 "\n",
           g.n, expected, matched, wrong, missing, extra, records);
    free(t.start);
    free(t.sum);
    return ok && expected > 0 && matched == expected && extra == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *bootstrap = sr_option(argc, argv, "--bootstrap", NULL);
    const char *topic = sr_option(argc, argv, "--topic", NULL);
    const char *panes = sr_option(argc, argv, "--windows", NULL);
    const char *ready = sr_option(argc, argv, "--ready-file", NULL);
    int64_t produced = atoll(sr_option(argc, argv, "--produced", "0"));
    int idle_s = atoi(sr_option(argc, argv, "--idle-s", "10"));
    if (!bootstrap || !topic || (!panes && produced < 1) || idle_s < 1) {
        fprintf(stderr, "usage: stream_latency --bootstrap B --topic T --produced N [--filter] "
                        "[--skip-seq S] [--idle-s S] [--fetch-wait-ms W] [--ready-file PATH] "
                        "[--timeline FILE]\n"
                        "       stream_latency --bootstrap B --topic T --windows PANES "
                        "--length L --slide S --watermark W\n");
        return 2;
    }
    reader r;
    if (reader_open(&r, bootstrap, topic, atoi(sr_option(argc, argv, "--fetch-wait-ms", "1"))) !=
        0) {
        reader_close(&r);
        return 1;
    }
    int rc;
    if (panes) {
        rc = windows(&r, panes, atoll(sr_option(argc, argv, "--length", "0")),
                     atoll(sr_option(argc, argv, "--slide", "0")),
                     atoll(sr_option(argc, argv, "--watermark", "0")));
    } else {
        rc = ready && st_write_ready(ready) != 0 ? -1 : 0;
        if (rc) fprintf(stderr, "stream_latency: cannot write %s\n", ready);
        if (!rc)
            rc = latency(&r, produced, sr_flag(argc, argv, "--filter"),
                         atoll(sr_option(argc, argv, "--skip-seq", "0")), idle_s,
                         sr_option(argc, argv, "--timeline", NULL));
    }
    reader_close(&r);
    return rc == 0 ? 0 : 1;
}
