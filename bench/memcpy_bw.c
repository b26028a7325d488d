/* memcpy_bw.c -- the memcpy baseline of bench/shuffle: one thread copying N bytes in chunks.
 *
 * Copies --bytes N bytes from one buffer of N bytes to another, --chunk C bytes per memcpy
 * call (the last call copies the rest), in order, on one thread. Two figures:
 *   warm   both buffers allocated and written once before the clock starts (no page faults
 *          while timed): the machine's single-thread copy bandwidth for this size, the
 *          baseline bench/shuffle divides by. Median of --reps runs (default 5).
 *          (The destination is filled with 0xa5, not 0: gcc turns malloc + memset(0) into
 *          calloc, which leaves fresh pages untouched, and the first run would fault.)
 *   fresh  the destination is a new anonymous mapping of N bytes (mmap) for every run, unmapped
 *          after it, so the copy also takes the page faults of memory touched for the first
 *          time, as a shuffle's growing bucket buffers and received messages do when the
 *          allocator gets them from the kernel. Median of the same number of runs.
 * Times are clock_gettime(CLOCK_MONOTONIC) around the copy loop alone. GB/s = 1e9 bytes/s.
 * After each run, the destination is compared with the source (untimed), so the copy cannot be
 * optimized away and is known to be right.
 *
 * Prints one line:
 *   memcpy_bw bytes=N chunk=C reps=K warm_s=S warm_gbps=G fresh_s=S fresh_gbps=G
 *
 * Usage: memcpy_bw --bytes N [--chunk C] [--reps K]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* copy_chunks copies n bytes from src to dst, chunk bytes per memcpy; returns the seconds. */
static double copy_chunks(unsigned char *dst, const unsigned char *src, size_t n, size_t chunk)
{
    double t0 = now_s();
    for (size_t off = 0; off < n; off += chunk)
        memcpy(dst + off, src + off, n - off < chunk ? n - off : chunk);
    return now_s() - t0;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    long long bytes = 0, chunk = 1024, reps = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--bytes") == 0)
            bytes = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--chunk") == 0)
            chunk = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--reps") == 0)
            reps = atoll(argv[i + 1]);
        else
            bytes = -1;
    }
    if (bytes < 1 || chunk < 1 || reps < 1 || reps > 1000 || argc % 2 == 0) {
        fprintf(stderr, "usage: memcpy_bw --bytes N [--chunk C] [--reps K]\n");
        return 2;
    }
    size_t n = (size_t)bytes;
    unsigned char *src = malloc(n), *dst = malloc(n);
    double *warm = calloc((size_t)reps, sizeof *warm), *fresh = calloc((size_t)reps, sizeof *fresh);
    if (!src || !dst || !warm || !fresh) {
        fprintf(stderr, "memcpy_bw: cannot allocate 2 x %zu bytes\n", n);
        return 1;
    }
    unsigned long long x = 0x9e3779b97f4a7c15ull; /* not zeroes: every page really backed */
    for (size_t i = 0; i < n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(src + i, &x, n - i < 8 ? n - i : 8);
    }
    memset(dst, 0xa5, n); /* not 0: gcc would turn malloc + memset(0) into calloc, untouched */
    for (long long r = 0; r < reps; r++) {
        warm[r] = copy_chunks(dst, src, n, (size_t)chunk);
        if (memcmp(dst, src, n) != 0) {
            fprintf(stderr, "memcpy_bw: warm copy %lld differs from its source\n", r + 1);
            return 1;
        }
        memset(dst, 0xa5, n); /* untimed: the next run copies again */
    }
    free(dst);
    for (long long r = 0; r < reps; r++) {
        unsigned char *d =
            mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (d == MAP_FAILED) {
            fprintf(stderr, "memcpy_bw: cannot map %zu bytes\n", n);
            return 1;
        }
        fresh[r] = copy_chunks(d, src, n, (size_t)chunk);
        int same = memcmp(d, src, n) == 0;
        munmap(d, n);
        if (!same) {
            fprintf(stderr, "memcpy_bw: fresh copy %lld differs from its source\n", r + 1);
            return 1;
        }
    }
    double w = median(warm, (int)reps), f = median(fresh, (int)reps);
    printf("memcpy_bw bytes=%zu chunk=%lld reps=%lld warm_s=%.6f warm_gbps=%.3f fresh_s=%.6f "
           "fresh_gbps=%.3f\n",
           n, chunk, reps, w, (double)n / w / 1e9, f, (double)n / f / 1e9);
    free(src);
    free(warm);
    free(fresh);
    return 0;
}
