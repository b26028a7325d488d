/* em_batch.c -- encode and validate record batches (format in em_batch.h). */
#include "em_batch.h"

#include <stdlib.h>
#include <string.h>

#include "em_hash.h"

uint64_t em_batch_checksum(const uint8_t *header, const uint8_t *payload, size_t len)
{
    return em_hash64_sealed(header, payload, len);
}

int em_batch_begin(em_batch_writer *w)
{
    w->start = w->buf.len;
    w->count = 0;
    int rc = em_buf_reserve(&w->buf, EM_BATCH_HEADER);
    if (rc != EMBER_OK) return rc;
    memset(w->buf.data + w->buf.len, 0, EM_BATCH_HEADER);
    w->buf.len += EM_BATCH_HEADER;
    return EMBER_OK;
}

/* put_varint writes v as an unsigned LEB128 varint at p; returns its length (<= 10) */
static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* RECORD_MAX_OVERHEAD: a record's three varints take at most this many bytes */
#define RECORD_MAX_OVERHEAD 30

/* encode_record writes rec at p (room for RECORD_MAX_OVERHEAD + key + value); returns its
 * length */
static size_t encode_record(uint8_t *p, const ember_record *rec)
{
    size_t n = put_varint(p, rec->key_len);
    n += put_varint(p + n, rec->value_len);
    n += put_varint(p + n, em_zigzag(rec->timestamp));
    if (rec->key_len) memcpy(p + n, rec->key, rec->key_len);
    n += rec->key_len;
    if (rec->value_len) memcpy(p + n, rec->value, rec->value_len);
    return n + rec->value_len;
}

/* seal writes the header of a batch of count records and payload bytes at h */
static void seal(uint8_t *h, uint32_t count, size_t payload)
{
    em_put_u32le(h, EM_BATCH_MAGIC);
    em_put_u32le(h + 4, count);
    em_put_u32le(h + 8, (uint32_t)payload);
    em_put_u32le(h + 12, 0);
    em_put_u64le(h + 16, em_batch_checksum(h, h + EM_BATCH_HEADER, payload));
}

int em_batch_add(em_batch_writer *w, const ember_record *rec)
{
    size_t need = RECORD_MAX_OVERHEAD + rec->key_len + rec->value_len;
    if (w->buf.len - w->start + need > (size_t)EM_BATCH_MAX_PAYLOAD) return EMBER_ERR_TOO_LARGE;
    int rc = em_buf_reserve(&w->buf, need);
    if (rc != EMBER_OK) return rc;
    w->buf.len += encode_record(w->buf.data + w->buf.len, rec);
    w->count++;
    return EMBER_OK;
}

int em_batch_finish(em_batch_writer *w)
{
    seal(w->buf.data + w->start, w->count, w->buf.len - w->start - EM_BATCH_HEADER);
    return EMBER_OK;
}

/* ---- batches in pooled chunks ------------------------------------------------------------ */

void em_batch_chunks_init(em_batch_chunks *w, size_t chunk_size)
{
    *w = (em_batch_chunks){.chunk_size = chunk_size};
}

/* close_open seals the batch open in the last chunk, if it has records */
static void close_open(em_batch_chunks *w)
{
    if (!w->n || !w->count) return;
    em_chunk *c = &w->chunks[w->n - 1];
    seal(c->p + w->start, w->count, c->len - w->start - EM_BATCH_HEADER);
    w->bytes += c->len - w->start;
    w->count = 0;
    w->start = c->len;
}

/* open_batch makes room for a batch of at least `need` payload bytes: in the last chunk if
 * it has room, else in a new one */
static int open_batch(em_batch_chunks *w, size_t need)
{
    close_open(w);
    em_chunk *last = w->n ? &w->chunks[w->n - 1] : NULL;
    if (!last || last->cap - last->len < EM_BATCH_HEADER + need) {
        if (w->n == w->cap) {
            size_t cap = w->cap ? 2 * w->cap : 4;
            em_chunk *grown = realloc(w->chunks, cap * sizeof *grown);
            if (!grown) return EMBER_ERR_NOMEM;
            w->chunks = grown;
            w->cap = cap;
        }
        size_t size = EM_CHUNK_MIN; /* doubling with each chunk, up to the writer's size */
        for (size_t i = 0; i < w->n && size < w->chunk_size; i++) size *= 2;
        if (size > w->chunk_size) size = w->chunk_size;
        if (size < EM_BATCH_HEADER + need) size = EM_BATCH_HEADER + need;
        int rc = em_chunk_get(&w->chunks[w->n], size);
        if (rc != EMBER_OK) return rc;
        last = &w->chunks[w->n++];
    }
    w->start = last->len;
    last->len += EM_BATCH_HEADER;
    return EMBER_OK;
}

int em_batch_chunks_add(em_batch_chunks *w, const ember_record *rec)
{
    size_t need = RECORD_MAX_OVERHEAD + rec->key_len + rec->value_len;
    if (need > (size_t)EM_BATCH_MAX_PAYLOAD) return EMBER_ERR_TOO_LARGE;
    em_chunk *last = w->n ? &w->chunks[w->n - 1] : NULL;
    if (!last || !w->count || last->cap - last->len < need) {
        int rc = open_batch(w, need);
        if (rc != EMBER_OK) return rc;
        last = &w->chunks[w->n - 1];
    }
    last->len += encode_record(last->p + last->len, rec);
    w->count++;
    return EMBER_OK;
}

void em_batch_chunks_finish(em_batch_chunks *w) { close_open(w); }

em_chunk *em_batch_chunks_take(em_batch_chunks *w, size_t *n)
{
    em_chunk *c = w->chunks;
    *n = w->n;
    em_batch_chunks_init(w, w->chunk_size);
    return c;
}

void em_batch_chunks_free(em_batch_chunks *w)
{
    em_chunks_put(w->chunks, w->n);
    free(w->chunks);
    em_batch_chunks_init(w, w->chunk_size);
}

int em_batch_open(const void *buf, size_t len, em_batch_reader *r, size_t *consumed)
{
    const uint8_t *h = buf;
    if (len < EM_BATCH_HEADER || em_get_u32le(h) != EM_BATCH_MAGIC) return EMBER_ERR_MALFORMED;
    uint32_t count = em_get_u32le(h + 4);
    uint32_t payload = em_get_u32le(h + 8);
    if (em_get_u32le(h + 12) != 0 || payload > len - EM_BATCH_HEADER) return EMBER_ERR_MALFORMED;
    /* each record takes at least three bytes */
    if ((uint64_t)count * 3 > payload) return EMBER_ERR_MALFORMED;
    if (em_batch_checksum(h, h + EM_BATCH_HEADER, payload) != em_get_u64le(h + 16))
        return EMBER_ERR_MALFORMED;
    r->p = h + EM_BATCH_HEADER;
    r->end = r->p + payload;
    r->left = count;
    if (consumed) *consumed = EM_BATCH_HEADER + (size_t)payload;
    return EMBER_OK;
}

int em_batch_next(em_batch_reader *r, ember_record *rec)
{
    if (r->left == 0) return r->p == r->end ? 0 : EMBER_ERR_MALFORMED;
    uint64_t klen, vlen, ts;
    if (em_varint_get(&r->p, r->end, &klen) || em_varint_get(&r->p, r->end, &vlen) ||
        em_varint_get(&r->p, r->end, &ts))
        return EMBER_ERR_MALFORMED;
    if (klen > (uint64_t)(r->end - r->p) || vlen > (uint64_t)(r->end - r->p) - klen)
        return EMBER_ERR_MALFORMED;
    rec->key = r->p;
    rec->key_len = (size_t)klen;
    rec->value = r->p + klen;
    rec->value_len = (size_t)vlen;
    rec->timestamp = em_unzigzag(ts);
    r->p += klen + vlen;
    r->left--;
    return 1;
}

int em_batch_count(const void *buf, size_t len, int64_t *count)
{
    const uint8_t *p = buf;
    int64_t total = 0;
    while (len > 0) {
        em_batch_reader r;
        size_t used;
        int rc = em_batch_open(p, len, &r, &used);
        if (rc != EMBER_OK) return rc;
        total += r.left;
        p += used;
        len -= used;
    }
    *count = total;
    return EMBER_OK;
}
