/* em_batch.h -- record batches: how records travel and rest (results, task input, blocks).
 *
 * A batch is a 24-byte header followed by its records:
 *   offset 0  u32 magic "EMRB"      offset 4  u32 record count
 *   offset 8  u32 payload bytes     offset 12 u32 reserved (0)
 *   offset 16 u64 XXH3 (em_hash seed) of header bytes 0..15 and the payload
 * Each record is varint key_len, varint value_len, zigzag varint timestamp, key, value.
 * All integers little-endian. Readers validate every length against the buffer, so a
 * truncated or corrupt batch is an error (EMBER_ERR_MALFORMED), never a crash.
 */
#ifndef EM_BATCH_H
#define EM_BATCH_H

#include <ember/ember.h>
#include <stddef.h>
#include <stdint.h>

#include "em_buf.h"
#include "em_chunks.h"

#define EM_BATCH_MAGIC       0x42524d45u /* "EMRB" little-endian */
#define EM_BATCH_HEADER      24
#define EM_BATCH_MAX_PAYLOAD (UINT32_MAX - 64)

/* em_batch_writer accumulates records into one batch in `buf` (header written at finish). */
typedef struct em_batch_writer {
    em_buf buf;     /* header placeholder + records; owned */
    size_t start;   /* offset of this batch's header in buf */
    uint32_t count; /* records so far */
} em_batch_writer;

/* em_batch_begin starts a new batch at the end of w->buf (several may follow each other). */
int em_batch_begin(em_batch_writer *w);
/* em_batch_add appends one record (copied). */
int em_batch_add(em_batch_writer *w, const ember_record *rec);
/* em_batch_finish writes the header of the current batch. */
int em_batch_finish(em_batch_writer *w);
/* em_batch_bytes is the current batch's size so far, header included. */
static inline size_t em_batch_bytes(const em_batch_writer *w) { return w->buf.len - w->start; }

/* em_batch_chunks writes records as batches into pooled chunks (em_chunks.h), for shuffle
 * buckets: a batch never straddles two chunks, so each chunk holds whole batches and is read
 * or sent as it is; a record too big for a chunk gets a chunk of its own size. A bucket's
 * chunks double from EM_CHUNK_MIN up to chunk_size, so a small bucket holds a small chunk. */
typedef struct em_batch_chunks {
    em_chunk *chunks; /* n in use, room for cap; owned */
    size_t n, cap;
    size_t chunk_size; /* the largest size of a new chunk (em_chunk_size_for) */
    size_t start;      /* the open batch: its header's offset in the last chunk, */
    uint32_t count;    /* and its records (0: none open) */
    uint64_t bytes;    /* bytes of the sealed batches */
} em_batch_chunks;

void em_batch_chunks_init(em_batch_chunks *w, size_t chunk_size);
/* em_batch_chunks_add appends one record (copied): EMBER_ERR_NOMEM, EMBER_ERR_TOO_LARGE */
int em_batch_chunks_add(em_batch_chunks *w, const ember_record *rec);
/* em_batch_chunks_finish seals the open batch: every chunk then holds whole batches, and
 * w->bytes counts all of them */
void em_batch_chunks_finish(em_batch_chunks *w);
/* em_batch_chunks_take hands the chunks (*n of them) to the caller and empties w */
em_chunk *em_batch_chunks_take(em_batch_chunks *w, size_t *n);
/* em_batch_chunks_free gives the chunks back to the pool */
void em_batch_chunks_free(em_batch_chunks *w);

/* em_batch_reader iterates the records of one validated batch; records are views into it. */
typedef struct em_batch_reader {
    const uint8_t *p;   /* next record */
    const uint8_t *end; /* end of payload */
    uint32_t left;      /* records not yet read */
} em_batch_reader;

/* em_batch_open validates the batch at the start of [buf, buf+len) (header, lengths,
 * checksum) and sets *consumed to its total size. Returns EMBER_OK or EMBER_ERR_MALFORMED. */
int em_batch_open(const void *buf, size_t len, em_batch_reader *r, size_t *consumed);
/* em_batch_next fills *rec and returns 1, returns 0 at the end, or EMBER_ERR_MALFORMED. */
int em_batch_next(em_batch_reader *r, ember_record *rec);
/* em_batch_checksum is the checksum stored at offset 16: it covers the header's count and
 * lengths as well as the payload. */
uint64_t em_batch_checksum(const uint8_t *header, const uint8_t *payload, size_t payload_len);
/* em_batch_count validates a sequence of batches and returns the total number of records
 * through *count. */
int em_batch_count(const void *buf, size_t len, int64_t *count);

#endif
