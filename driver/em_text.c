/* em_text.c -- reference-counted strings (see em_text.h). */
#include "em_text.h"

#include <stdlib.h>
#include <string.h>

em_text *em_text_take(char *s)
{
    if (!s) return NULL;
    size_t len = strlen(s);
    em_text *t = malloc(sizeof *t + len + 1);
    if (t) {
        t->refs = 1;
        t->len = len;
        memcpy(t->data, s, len + 1);
    }
    free(s);
    return t;
}

void em_text_unref(em_text *t)
{
    if (t && --t->refs == 0) free(t);
}
