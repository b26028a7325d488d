/* em_chunks.h -- fixed-size chunks of memory, reused across tasks and jobs.
 *
 * Shuffle buckets are written into chunks of a few sizes (powers of two from EM_CHUNK_MIN to
 * EM_CHUNK_MAX) instead of buffers that double as they grow: no copy on growth, no buffer
 * twice the size it needs, and, since a freed chunk waits in this pool for the next writer,
 * no fresh pages (each one a page fault) for every byte a job shuffles. The pool keeps a
 * chunk given back while its chunks, idle and in use, stay within the most that were in use
 * at once since the last trim: back-to-back jobs run in the same pages, and the pool never
 * makes the process bigger than its own peak. em_chunks_trim gives every idle chunk back to
 * the system (an executor calls it once it has been idle a while). Chunks are mapped with mmap,
 * so a chunk given back returns its pages at once, however fragmented the heap is.
 * Thread-safe: one lock, taken once per chunk (a chunk holds many records).
 */
#ifndef EM_CHUNKS_H
#define EM_CHUNKS_H

#include <stddef.h>
#include <stdint.h>

#define EM_CHUNK_MIN ((size_t)64 << 10)
#define EM_CHUNK_MAX ((size_t)1 << 20)
/* EM_CHUNK_SLAB: new chunks are cut from slabs of this size (a transparent huge page) */
#define EM_CHUNK_SLAB ((size_t)2 << 20)

/* em_chunk: a piece of memory from the pool and the bytes of it in use */
typedef struct em_chunk {
    uint8_t *p;
    size_t len; /* bytes in use */
    size_t cap; /* its size: a class size, or a page multiple for an oversized one */
} em_chunk;

/* em_chunk_size_for: the class size for a writer filling `ways` chunks at once within about
 * `budget` bytes (the largest class <= budget / ways, at least EM_CHUNK_MIN) */
size_t em_chunk_size_for(size_t budget, size_t ways);
/* em_chunk_get fills *c with an empty chunk of at least `size` bytes: a class size from the
 * pool (or new), or for a size above EM_CHUNK_MAX a chunk of its own. EMBER_ERR_NOMEM. */
int em_chunk_get(em_chunk *c, size_t size);
/* em_chunks_put gives n chunks back -- one of a class size to the pool, whose peak counted
 * it, an oversized one to the system -- and zeroes them; NULL or zeroed chunks are skipped. */
void em_chunks_put(em_chunk *c, size_t n);
/* em_chunks_trim gives every idle chunk back to the system and starts a new peak; returns
 * the bytes given back */
uint64_t em_chunks_trim(void);
/* em_chunks_stats: bytes of chunks idle in the pool and handed out (either may be NULL) */
void em_chunks_stats(uint64_t *idle, uint64_t *in_use);

#endif
