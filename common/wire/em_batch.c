/* em_batch.c -- encode and validate record batches (format in em_batch.h). */
#include "em_batch.h"

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

int em_batch_add(em_batch_writer *w, const ember_record *rec)
{
    size_t need = 30 + rec->key_len + rec->value_len;
    if (w->buf.len - w->start + need > (size_t)EM_BATCH_MAX_PAYLOAD) return EMBER_ERR_TOO_LARGE;
    int rc = em_buf_reserve(&w->buf, need);
    if (rc != EMBER_OK) return rc;
    em_buf_put_varint(&w->buf, rec->key_len);
    em_buf_put_varint(&w->buf, rec->value_len);
    em_buf_put_varint(&w->buf, em_zigzag(rec->timestamp));
    em_buf_append(&w->buf, rec->key, rec->key_len);
    em_buf_append(&w->buf, rec->value, rec->value_len);
    w->count++;
    return EMBER_OK;
}

int em_batch_finish(em_batch_writer *w)
{
    uint8_t *h = w->buf.data + w->start;
    size_t payload = w->buf.len - w->start - EM_BATCH_HEADER;
    em_put_u32le(h, EM_BATCH_MAGIC);
    em_put_u32le(h + 4, w->count);
    em_put_u32le(h + 8, (uint32_t)payload);
    em_put_u32le(h + 12, 0);
    em_put_u64le(h + 16, em_batch_checksum(h, h + EM_BATCH_HEADER, payload));
    return EMBER_OK;
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
