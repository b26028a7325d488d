/* em_buf.h -- a growable byte buffer, the building block of batches and frames.
 *
 * Invariant: len <= cap; data is NULL only while cap == 0. The buffer owns data; em_buf_free
 * releases it and accepts a zeroed or already freed buffer.
 */
#ifndef EM_BUF_H
#define EM_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct em_buf {
    uint8_t *data; /* owned; grows by doubling */
    size_t len;    /* bytes in use */
    size_t cap;    /* bytes allocated */
} em_buf;

/* em_buf_reserve makes room for `extra` more bytes; returns EMBER_OK or EMBER_ERR_NOMEM. */
int em_buf_reserve(em_buf *b, size_t extra);
/* em_buf_append copies n bytes to the end. */
int em_buf_append(em_buf *b, const void *p, size_t n);
/* em_buf_put_varint appends an unsigned LEB128 varint. */
int em_buf_put_varint(em_buf *b, uint64_t v);
/* em_buf_take hands the bytes to the caller (who frees them) and empties the buffer. */
uint8_t *em_buf_take(em_buf *b, size_t *len);
void em_buf_free(em_buf *b);

/* em_varint_get decodes a varint from [*p, end); returns 0, or -1 if truncated or overlong. */
int em_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v);

static inline uint64_t em_zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t em_unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

static inline void em_put_u32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void em_put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t em_get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t em_get_u64le(const uint8_t *p)
{
    return (uint64_t)em_get_u32le(p) | (uint64_t)em_get_u32le(p + 4) << 32;
}

#endif
