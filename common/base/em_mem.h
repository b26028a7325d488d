/* em_mem.h -- the process's memory: how much is resident, and giving back what is free.
 *
 * An executor holds memory in three places when a job is done: the chunk pool (em_chunks.h),
 * glibc's heap (freed buffers kept up to the trim threshold em_process_init sets, so the next
 * job does not fault them in again) and its block store (what jobs still hold). Once it has
 * been idle a while, em_mem_give_back returns the first two to the system.
 */
#ifndef EM_MEM_H
#define EM_MEM_H

#include <stdint.h>

/* em_mem_rss: the process's resident set size in bytes (0 if /proc cannot tell) */
uint64_t em_mem_rss(void);
/* em_mem_give_back gives idle pool chunks and the heap's free pages back to the system;
 * returns the bytes of chunks given back (the heap's share is not counted by glibc) */
uint64_t em_mem_give_back(void);

#endif
