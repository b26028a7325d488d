/* taxi_distance_baseline.c -- bench/taxi_distance's single-process C baseline: distance per taxi.
 *
 * Usage: taxi_distance_baseline [--out FILE] FILE...
 *
 * Reads each FILE (in the order given) into one reused buffer and parses its lines with
 * examples/taxi_parse.h (malformed lines are counted and skipped), groups the points by taxi
 * id in an open-addressing hash table (FNV-1a; one growing array of points per taxi), and for
 * each taxi sorts its points and sums the haversine distances with examples/taxi_track.h: the
 * very functions examples/taxi_distance.c runs in its reduce tasks, so the distances agree
 * with ember's to the bit. The total is summed in bytewise taxi id order, as the job does.
 *
 * One thread, no ember library. The time covers everything from opening the first file to the
 * last distance (files read from the page cache after the bench's first run), measured with
 * clock_gettime(CLOCK_MONOTONIC). Prints one line:
 *   taxi_distance_baseline seconds=S lines=L points=P malformed=M taxis=T total_km=K
 * and, with --out, writes "taxi_id,km" lines (km "%.6f") in id order to FILE.
 * Exit status: 0, 1 on an I/O or memory error, 2 on bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "taxi_parse.h"
#include "taxi_track.h"

/* taxi: one taxi's points; the id is a copy (NUL-terminated, at most 32 bytes). */
typedef struct taxi {
    char id[33];
    size_t id_len;
    taxi_fix *fix; /* points in input order, then sorted by taxi_track_km */
    size_t n, cap;
    double km;
} taxi;

/* table: open addressing, linear probing; slot holds a taxi index + 1, 0 when empty. */
typedef struct table {
    uint32_t *slot;
    size_t mask;
    taxi *taxis;
    size_t n, cap;
} table;

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

static int table_grow(table *t)
{
    size_t size = t->mask ? 2 * (t->mask + 1) : 1024;
    uint32_t *slot = calloc(size, sizeof *slot);
    if (!slot) return -1;
    for (size_t i = 0; i < t->n; i++) {
        size_t j = fnv1a(t->taxis[i].id, t->taxis[i].id_len) & (size - 1);
        while (slot[j]) j = (j + 1) & (size - 1);
        slot[j] = (uint32_t)(i + 1);
    }
    free(t->slot);
    t->slot = slot;
    t->mask = size - 1;
    return 0;
}

/* table_find returns the taxi of id (created if new), or NULL without memory. */
static taxi *table_find(table *t, const char *id, size_t id_len)
{
    if (2 * (t->n + 1) > t->mask + 1 && table_grow(t) != 0) return NULL;
    size_t j = fnv1a(id, id_len) & t->mask;
    for (; t->slot[j]; j = (j + 1) & t->mask) {
        taxi *tx = &t->taxis[t->slot[j] - 1];
        if (tx->id_len == id_len && memcmp(tx->id, id, id_len) == 0) return tx;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 1024;
        taxi *taxis = realloc(t->taxis, cap * sizeof *taxis);
        if (!taxis) return NULL;
        t->taxis = taxis;
        t->cap = cap;
    }
    taxi *tx = &t->taxis[t->n];
    memset(tx, 0, sizeof *tx);
    memcpy(tx->id, id, id_len);
    tx->id_len = id_len;
    t->slot[j] = (uint32_t)++t->n;
    return tx;
}

static int taxi_add(taxi *tx, const taxi_point *pt, uint64_t seq)
{
    if (tx->n == tx->cap) {
        size_t cap = tx->cap ? 2 * tx->cap : 64;
        taxi_fix *fix = realloc(tx->fix, cap * sizeof *fix);
        if (!fix) return -1;
        tx->fix = fix;
        tx->cap = cap;
    }
    tx->fix[tx->n++] = (taxi_fix){pt->time_ms, pt->lon, pt->lat, seq};
    return 0;
}

/* read_file appends the whole file to *buf (grown as needed), ending it with a newline. */
static int read_file(const char *path, char **buf, size_t *len, size_t *cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    for (;;) {
        if (*cap - *len < 1 << 20) {
            size_t c = *cap ? 2 * *cap : 8 << 20;
            char *b = realloc(*buf, c);
            if (!b) {
                fclose(f);
                return -1;
            }
            *buf = b;
            *cap = c;
        }
        size_t got = fread(*buf + *len, 1, *cap - *len, f);
        *len += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (*len > 0 && (*buf)[*len - 1] != '\n') (*buf)[(*len)++] = '\n'; /* room: >= 1 MiB */
    return err ? -1 : 0;
}

/* add_lines parses the len bytes of buf (whole lines) into the table; -1 without memory. */
static int add_lines(table *t, const char *buf, size_t len, uint64_t *lines, uint64_t *points,
                     uint64_t *malformed)
{
    for (size_t pos = 0; pos < len;) {
        const char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        taxi_point pt;
        pos += n + 1;
        ++*lines;
        if (taxi_parse_line(line, n, &pt) != 0) {
            ++*malformed;
            continue;
        }
        taxi *tx = table_find(t, pt.id, pt.id_len);
        if (!tx || taxi_add(tx, &pt, (*points)++) != 0) return -1;
    }
    return 0;
}

static int by_id(const void *pa, const void *pb)
{
    const taxi *a = pa, *b = pb;
    size_t n = a->id_len < b->id_len ? a->id_len : b->id_len;
    int c = memcmp(a->id, b->id, n);
    return c ? c : (a->id_len > b->id_len) - (a->id_len < b->id_len);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    const char *out = NULL;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "--out") == 0) out = argv[2], first = 3;
    if (first >= argc || argv[first][0] == '-') {
        fprintf(stderr, "usage: taxi_distance_baseline [--out FILE] FILE...\n");
        return 2;
    }
    double t0 = now_s();
    char *buf = NULL;
    size_t len = 0, cap = 0;
    table t = {0};
    uint64_t lines = 0, points = 0, malformed = 0;
    for (int i = first; i < argc; i++) {
        len = 0; /* one file at a time, in one reused buffer */
        if (read_file(argv[i], &buf, &len, &cap) != 0) {
            fprintf(stderr, "taxi_distance_baseline: cannot read %s: %s\n", argv[i],
                    strerror(errno ? errno : ENOMEM));
            return 1;
        }
        if (add_lines(&t, buf, len, &lines, &points, &malformed) != 0) {
            fprintf(stderr, "taxi_distance_baseline: out of memory\n");
            return 1;
        }
    }
    for (size_t i = 0; i < t.n; i++) t.taxis[i].km = taxi_track_km(t.taxis[i].fix, t.taxis[i].n);
    qsort(t.taxis, t.n, sizeof *t.taxis, by_id);
    double total = 0.0;
    for (size_t i = 0; i < t.n; i++) total += t.taxis[i].km;
    double seconds = now_s() - t0;

    printf("taxi_distance_baseline seconds=%.3f lines=%llu points=%llu malformed=%llu taxis=%zu "
           "total_km=%.6f\n",
           seconds, (unsigned long long)lines, (unsigned long long)points,
           (unsigned long long)malformed, t.n, total);
    int rc = 0;
    if (out) {
        FILE *f = fopen(out, "w");
        if (!f) rc = 1;
        for (size_t i = 0; f && i < t.n; i++) fprintf(f, "%s,%.6f\n", t.taxis[i].id, t.taxis[i].km);
        if (f && fclose(f) != 0) rc = 1;
        if (rc) fprintf(stderr, "taxi_distance_baseline: cannot write %s\n", out);
    }
    for (size_t i = 0; i < t.n; i++) free(t.taxis[i].fix);
    free(t.taxis);
    free(t.slot);
    free(buf);
    return rc;
}
