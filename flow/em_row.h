/* em_row.h -- a workflow record's columns as bytes, between operations and across shuffles.
 *
 * A row is one 8-byte slot per column of its schema, in order, then the bytes of its strings:
 * an int, bool or timestamp slot holds the int64, a double slot the double, a string slot the
 * string's offset from the row's start (low 32 bits) and its length (high 32 bits). Decoding
 * is O(1) per column and copies nothing: strings point into the row. The schema is not in
 * the row; both sides know it from the flow document.
 */
#ifndef EM_ROW_H
#define EM_ROW_H

#include <stddef.h>
#include <stdint.h>

#include "em_value.h"

/* em_row_size: the bytes em_row_encode needs for cols */
size_t em_row_size(const em_schema *s, const em_value *cols);

/* em_row_encode writes cols (one per column of s) into buf; returns the row's length, or 0
 * when it needs more than cap bytes. */
size_t em_row_encode(const em_schema *s, const em_value *cols, void *buf, size_t cap);

/* em_row_decode reads a row of schema s into cols (strings point into row). -1 when the bytes
 * are not such a row (too short, a string outside it). */
int em_row_decode(const em_schema *s, const void *row, size_t len, em_value *cols);

#endif
