/* em_value.c -- type names and schemas of workflow records */
#include "em_value.h"

#include <stdio.h>
#include <string.h>

static const char *const TYPE_NAMES[EM_T_COUNT] = {"int", "double", "string", "bool", "timestamp"};

const char *em_type_name(em_type t) { return t < EM_T_COUNT ? TYPE_NAMES[t] : "?"; }

int em_type_parse(const char *name, em_type *out)
{
    for (int t = 0; t < EM_T_COUNT; t++)
        if (strcmp(name, TYPE_NAMES[t]) == 0) {
            *out = (em_type)t;
            return 0;
        }
    return -1;
}

int em_type_numeric(em_type t) { return t == EM_T_INT || t == EM_T_DOUBLE || t == EM_T_TIMESTAMP; }

int em_schema_find(const em_schema *s, const char *name, size_t len)
{
    for (int k = 0; k < s->n; k++)
        if (strlen(s->names[k]) == len && memcmp(s->names[k], name, len) == 0) return k;
    return -1;
}

int em_schema_add(em_schema *s, const char *name, em_type t, char *err, size_t errlen)
{
    size_t len = strlen(name);
    if (len == 0 || len >= EM_NAME_MAX) {
        snprintf(err, errlen, "a column name of %zu bytes (1 to %d)", len, EM_NAME_MAX - 1);
        return -1;
    }
    if (em_schema_find(s, name, len) >= 0) {
        snprintf(err, errlen, "the column '%s' exists already", name);
        return -1;
    }
    if (s->n == EM_SCHEMA_MAX) {
        snprintf(err, errlen, "more than %d columns", EM_SCHEMA_MAX);
        return -1;
    }
    memcpy(s->names[s->n], name, len + 1);
    s->types[s->n++] = t;
    return 0;
}

void em_schema_list(const em_schema *s, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int k = 0; k < s->n && used < cap; k++) {
        int n = snprintf(buf + used, cap - used, "%s%s %s", k ? ", " : "", s->names[k],
                         em_type_name(s->types[k]));
        if (n < 0) break;
        used += (size_t)n;
    }
    if (s->n == 0) snprintf(buf, cap, "none");
}
