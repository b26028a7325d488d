/* em_chunks.c -- the process's pool of fixed-size chunks (em_chunks.h).
 *
 * One free list per class size, linked through each idle chunk's first bytes. Invariant,
 * under the lock: idle == the bytes of every listed chunk <= idle_cap (after a put);
 * in_use == the bytes of chunks handed out and not yet put back.
 */
#include "em_chunks.h"

#include <ember/ember.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define N_CLASSES 5 /* 64 KiB, 128 KiB, 256 KiB, 512 KiB, 1 MiB */
_Static_assert(EM_CHUNK_MIN << (N_CLASSES - 1) == EM_CHUNK_MAX, "one class per power of two");

typedef struct idle_chunk {
    struct idle_chunk *next;
} idle_chunk;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static idle_chunk *free_list[N_CLASSES];
static uint64_t idle, in_use, idle_cap = (uint64_t)256 << 20;

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

static void *map_pages(size_t size)
{
    /* MAP_POPULATE: one call faults every page in, far cheaper than one fault per page */
    void *p =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
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
    void *p = NULL;
    pthread_mutex_lock(&lock);
    if (k >= 0 && free_list[k]) {
        p = free_list[k];
        free_list[k] = free_list[k]->next;
        idle -= cap;
    }
    in_use += cap;
    pthread_mutex_unlock(&lock);
    if (!p && !(p = map_pages(cap))) {
        pthread_mutex_lock(&lock);
        in_use -= cap;
        pthread_mutex_unlock(&lock);
        *c = (em_chunk){0};
        return EMBER_ERR_NOMEM;
    }
    *c = (em_chunk){p, 0, cap};
    return EMBER_OK;
}

void em_chunks_put(em_chunk *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        if (!c[i].p) continue;
        int k = class_of(c[i].cap), keep = 0;
        pthread_mutex_lock(&lock);
        in_use -= c[i].cap;
        if (k >= 0 && idle + c[i].cap <= idle_cap) {
            idle_chunk *e = (idle_chunk *)c[i].p;
            e->next = free_list[k];
            free_list[k] = e;
            idle += c[i].cap;
            keep = 1;
        }
        pthread_mutex_unlock(&lock);
        if (!keep) munmap(c[i].p, c[i].cap);
        c[i] = (em_chunk){0};
    }
}

void em_chunks_set_idle_cap(uint64_t bytes)
{
    pthread_mutex_lock(&lock);
    idle_cap = bytes;
    pthread_mutex_unlock(&lock);
}

uint64_t em_chunks_trim(void)
{
    idle_chunk *lists[N_CLASSES];
    pthread_mutex_lock(&lock);
    uint64_t freed = idle;
    memcpy(lists, free_list, sizeof lists);
    memset(free_list, 0, sizeof free_list);
    idle = 0;
    pthread_mutex_unlock(&lock);
    for (int k = 0; k < N_CLASSES; k++)
        while (lists[k]) {
            idle_chunk *next = lists[k]->next;
            munmap(lists[k], EM_CHUNK_MIN << k);
            lists[k] = next;
        }
    return freed;
}

void em_chunks_stats(uint64_t *idle_bytes, uint64_t *in_use_bytes)
{
    pthread_mutex_lock(&lock);
    if (idle_bytes) *idle_bytes = idle;
    if (in_use_bytes) *in_use_bytes = in_use;
    pthread_mutex_unlock(&lock);
}
