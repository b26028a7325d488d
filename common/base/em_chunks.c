/* em_chunks.c -- the process's pool of fixed-size chunks (em_chunks.h).
 *
 * One free list per class size, linked through each idle chunk's first bytes. Invariants,
 * under the lock: in_use == the bytes of chunks handed out and not yet put back; idle == the
 * bytes of every listed chunk; high_water == the most in_use has been since the last trim;
 * idle + in_use <= high_water -- a get that finds no idle chunk of its size gives back idle
 * chunks of other sizes to keep it, so the pool follows the sizes in demand. The peak counts
 * the rest of a new chunk's slab only when no idle chunk was left to make room for it.
 *
 * New memory comes in slabs of EM_CHUNK_SLAB bytes aligned to it, advised as transparent
 * huge pages and faulted in at once, then cut into chunks of the size asked for (the others
 * wait in the pool, counted in its peak). Where a page fault is expensive -- a VM whose
 * page tables are shadowed, like the one in docs/performance.md -- one fault per 2 MiB
 * instead of 512 turns fresh memory from 0.56 into 12 GB/s. Where THP is off the advice is
 * ignored and the slab is faulted in page by page, as MAP_POPULATE would.
 */
#include "em_chunks.h"

#include <ember/ember.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define N_CLASSES 5 /* 64 KiB, 128 KiB, 256 KiB, 512 KiB, 1 MiB */
_Static_assert(EM_CHUNK_MIN << (N_CLASSES - 1) == EM_CHUNK_MAX, "one class per power of two");
_Static_assert(EM_CHUNK_SLAB % EM_CHUNK_MAX == 0 && EM_CHUNK_SLAB > EM_CHUNK_MAX,
               "a slab holds whole chunks of every class, two or more");

typedef struct idle_chunk {
    struct idle_chunk *next;
} idle_chunk;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static idle_chunk *free_list[N_CLASSES];
static uint64_t idle, in_use, high_water;

/* class_of: the class whose size is `size`, or -1 for any other size */
static int class_of(size_t size)
{
    for (int k = 0; k < N_CLASSES; k++)
        if (size == EM_CHUNK_MIN << k) return k;
    return -1;
}

size_t em_chunk_size_for(size_t budget, size_t ways)
{
    size_t share = budget / (ways ? ways : 1), size = EM_CHUNK_MAX;
    while (size > EM_CHUNK_MIN && size > share) size /= 2;
    return size;
}

/* map_slab maps `size` bytes aligned to EM_CHUNK_SLAB, advised as huge pages and faulted in
 * (NULL when out of memory) */
static void *map_slab(size_t size)
{
    size_t span = size + EM_CHUNK_SLAB;
    uint8_t *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    uint8_t *p =
        (uint8_t *)(((uintptr_t)raw + EM_CHUNK_SLAB - 1) & ~(uintptr_t)(EM_CHUNK_SLAB - 1));
    if (p > raw) munmap(raw, (size_t)(p - raw));
    if (raw + span > p + size) munmap(p + size, (size_t)(raw + span - (p + size)));
    madvise(p, size, MADV_HUGEPAGE); /* advice: without THP the pages are small */
    if (madvise(p, size, MADV_POPULATE_WRITE) == 0) return p;
    if (errno != EINVAL) { /* out of memory */
        munmap(p, size);
        return NULL;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE); /* before Linux 5.14: by hand */
    for (size_t off = 0; off < size; off += page) ((volatile uint8_t *)p)[off] = 0;
    return p;
}

/* unlink_over_peak moves idle chunks into `out` (one list per class) until the pool, with
 * `coming` more bytes, is within its peak; the caller holds the lock and unmaps them after it
 * lets go */
static void unlink_over_peak(idle_chunk *out[N_CLASSES], uint64_t coming)
{
    for (int k = 0; k < N_CLASSES && idle + in_use + coming > high_water; k++)
        while (free_list[k] && idle + in_use + coming > high_water) {
            idle_chunk *e = free_list[k];
            free_list[k] = e->next;
            e->next = out[k];
            out[k] = e;
            idle -= EM_CHUNK_MIN << k;
        }
}

static void unmap_lists(idle_chunk *lists[N_CLASSES])
{
    for (int k = 0; k < N_CLASSES; k++)
        while (lists[k]) {
            idle_chunk *next = lists[k]->next;
            munmap(lists[k], EM_CHUNK_MIN << k);
            lists[k] = next;
        }
}

int em_chunk_get(em_chunk *c, size_t size)
{
    size_t cap = EM_CHUNK_MIN;
    while (cap < size && cap < EM_CHUNK_MAX) cap *= 2;
    if (cap < size) { /* oversized: pages of its own */
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        cap = (size + page - 1) / page * page;
    }
    int k = class_of(cap);
    uint8_t *p = NULL;
    idle_chunk *given_back[N_CLASSES] = {0};
    pthread_mutex_lock(&lock);
    if (k >= 0 && free_list[k]) {
        p = (uint8_t *)free_list[k];
        free_list[k] = free_list[k]->next;
        idle -= cap;
    }
    in_use += cap;
    if (in_use > high_water) high_water = in_use;
    int fresh = !p;
    if (fresh) /* a new slab takes the room of idle chunks of other sizes */
        unlink_over_peak(given_back, k >= 0 ? EM_CHUNK_SLAB - cap : 0);
    pthread_mutex_unlock(&lock);
    unmap_lists(given_back);
    if (fresh && !(p = map_slab(k >= 0 ? EM_CHUNK_SLAB : cap))) {
        pthread_mutex_lock(&lock);
        in_use -= cap;
        pthread_mutex_unlock(&lock);
        *c = (em_chunk){0};
        return EMBER_ERR_NOMEM;
    }
    if (fresh && k >= 0) { /* the rest of the slab waits in the pool */
        pthread_mutex_lock(&lock);
        for (size_t off = EM_CHUNK_SLAB - cap; off >= cap; off -= cap) {
            idle_chunk *e = (idle_chunk *)(p + off);
            e->next = free_list[k];
            free_list[k] = e;
            idle += cap;
        }
        if (idle + in_use > high_water) high_water = idle + in_use;
        pthread_mutex_unlock(&lock);
    }
    *c = (em_chunk){p, 0, cap};
    return EMBER_OK;
}

void em_chunks_put(em_chunk *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        if (!c[i].p) continue;
        int k = class_of(c[i].cap), keep = k >= 0; /* within the peak: it was in use */
        pthread_mutex_lock(&lock);
        in_use -= c[i].cap;
        if (keep) {
            idle_chunk *e = (idle_chunk *)c[i].p;
            e->next = free_list[k];
            free_list[k] = e;
            idle += c[i].cap;
        }
        pthread_mutex_unlock(&lock);
        if (!keep) munmap(c[i].p, c[i].cap);
        c[i] = (em_chunk){0};
    }
}

uint64_t em_chunks_trim(void)
{
    idle_chunk *lists[N_CLASSES];
    pthread_mutex_lock(&lock);
    uint64_t freed = idle;
    memcpy(lists, free_list, sizeof lists);
    memset(free_list, 0, sizeof free_list);
    idle = 0;
    high_water = in_use;
    pthread_mutex_unlock(&lock);
    unmap_lists(lists);
    return freed;
}

void em_chunks_stats(uint64_t *idle_bytes, uint64_t *in_use_bytes)
{
    pthread_mutex_lock(&lock);
    if (idle_bytes) *idle_bytes = idle;
    if (in_use_bytes) *in_use_bytes = in_use;
    pthread_mutex_unlock(&lock);
}
