/* em_row.c -- workflow rows: 8-byte slots, then string bytes (em_row.h) */
#include "em_row.h"

#include <string.h>

size_t em_row_size(const em_schema *s, const em_value *cols)
{
    size_t n = (size_t)s->n * 8;
    for (int k = 0; k < s->n; k++)
        if (s->types[k] == EM_T_STRING) n += cols[k].len;
    return n;
}

size_t em_row_encode(const em_schema *s, const em_value *cols, void *buf, size_t cap)
{
    size_t need = em_row_size(s, cols);
    if (need > cap || need > UINT32_MAX) return 0;
    uint8_t *out = buf;
    size_t heap = (size_t)s->n * 8;
    for (int k = 0; k < s->n; k++) {
        uint64_t slot;
        if (s->types[k] == EM_T_STRING) {
            slot = (uint64_t)heap | (uint64_t)cols[k].len << 32;
            if (cols[k].len) memcpy(out + heap, cols[k].s, cols[k].len);
            heap += cols[k].len;
        } else
            memcpy(&slot, &cols[k].i, 8); /* the int64 or the double's bits */
        memcpy(out + (size_t)k * 8, &slot, 8);
    }
    return need;
}

int em_row_decode(const em_schema *s, const void *row, size_t len, em_value *cols)
{
    const uint8_t *in = row;
    if (len < (size_t)s->n * 8) return -1;
    for (int k = 0; k < s->n; k++) {
        uint64_t slot;
        memcpy(&slot, in + (size_t)k * 8, 8);
        if (s->types[k] == EM_T_STRING) {
            uint32_t off = (uint32_t)slot, n = (uint32_t)(slot >> 32);
            if ((size_t)off > len || n > len - off) return -1;
            cols[k].s = (const char *)in + off;
            cols[k].len = n;
        } else
            memcpy(&cols[k].i, &slot, 8);
    }
    return 0;
}
