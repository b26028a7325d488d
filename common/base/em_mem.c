/* em_mem.c -- resident size from /proc, giving free memory back (em_mem.h). */
#include "em_mem.h"

#include <malloc.h>
#include <stdio.h>
#include <unistd.h>

#include "em_chunks.h"

uint64_t em_mem_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    int got = f ? fscanf(f, "%llu %llu", &size, &resident) : 0;
    if (f) fclose(f);
    return got == 2 ? (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

uint64_t em_mem_give_back(void)
{
    uint64_t chunks = em_chunks_trim();
    malloc_trim(0); /* also returns free pages in the middle of the heap (MADV_DONTNEED) */
    return chunks;
}
