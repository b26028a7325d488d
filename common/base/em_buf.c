/* em_buf.c -- a growable byte buffer (see em_buf.h). */
#include "em_buf.h"

#include <ember/ember.h>
#include <stdlib.h>
#include <string.h>

int em_buf_reserve(em_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra) return EMBER_OK;
    if (extra > SIZE_MAX / 2 - b->len) return EMBER_ERR_NOMEM;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return EMBER_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return EMBER_OK;
}

int em_buf_append(em_buf *b, const void *p, size_t n)
{
    int rc = em_buf_reserve(b, n);
    if (rc != EMBER_OK) return rc;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return EMBER_OK;
}

int em_buf_put_varint(em_buf *b, uint64_t v)
{
    int rc = em_buf_reserve(b, 10);
    if (rc != EMBER_OK) return rc;
    uint8_t *p = b->data + b->len;
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    b->len = (size_t)(p - b->data);
    return EMBER_OK;
}

uint8_t *em_buf_take(em_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len) *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void em_buf_free(em_buf *b)
{
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int em_varint_get(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    uint64_t out = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (p >= end) return -1;
        uint8_t byte = *p++;
        if (shift == 63 && byte > 1) return -1;
        out |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *pp = p;
            *v = out;
            return 0;
        }
    }
    return -1;
}
