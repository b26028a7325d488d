/* em_text.h -- immutable, reference-counted strings for the status endpoint's snapshot.
 *
 * A finished stage's JSON is rendered once and shared by every snapshot that lists it.
 * References are taken and dropped by the driver loop only (handlers copy the bytes under
 * the snapshot lock), so the count needs no atomics.
 */
#ifndef EM_TEXT_H
#define EM_TEXT_H

#include <stddef.h>

typedef struct em_text {
    int refs;
    size_t len;
    char data[]; /* NUL-terminated */
} em_text;

/* em_text_take makes a text of a malloc'd string (freed here); NULL in, NULL out. */
em_text *em_text_take(char *s);
static inline em_text *em_text_ref(em_text *t)
{
    if (t) t->refs++;
    return t;
}
void em_text_unref(em_text *t);

#endif
