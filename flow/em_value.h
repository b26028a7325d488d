/* em_value.h -- the typed values that flow between the nodes of a workflow.
 *
 * A workflow's records carry named, typed columns (em_schema). Inside a task a record's
 * columns are an array of em_value, one per column of its schema; strings point into the
 * record's bytes or into the task's scratch space and live until the next record. Timestamps
 * are milliseconds since 1970 (UTC) and behave as integers in expressions.
 */
#ifndef EM_VALUE_H
#define EM_VALUE_H

#include <stddef.h>
#include <stdint.h>

typedef enum em_type {
    EM_T_INT = 0,       /* int64 */
    EM_T_DOUBLE = 1,    /* double */
    EM_T_STRING = 2,    /* bytes (usually UTF-8), not NUL-terminated */
    EM_T_BOOL = 3,      /* 0 or 1 */
    EM_T_TIMESTAMP = 4, /* int64 milliseconds since 1970, UTC */
    EM_T_COUNT
} em_type;

/* em_value: one column's value; `s`/`len` for strings, `i` for ints, timestamps and bools */
typedef struct em_value {
    union {
        int64_t i;
        double f;
        const char *s;
    };
    uint32_t len; /* string length */
} em_value;

#define EM_SCHEMA_MAX 64 /* columns of one record */
#define EM_NAME_MAX   64 /* bytes of a column name, NUL included */

/* em_schema: a record's columns, in order; names are unique */
typedef struct em_schema {
    int n;
    char names[EM_SCHEMA_MAX][EM_NAME_MAX];
    em_type types[EM_SCHEMA_MAX];
} em_schema;

/* em_type_name gives "int", "double", "string", "bool" or "timestamp". */
const char *em_type_name(em_type t);
/* em_type_parse reads such a name; -1 when it is none of them. */
int em_type_parse(const char *name, em_type *out);
/* em_type_numeric: int, double or timestamp */
int em_type_numeric(em_type t);

/* em_schema_find gives the index of column `name` (len bytes), or -1. */
int em_schema_find(const em_schema *s, const char *name, size_t len);
/* em_schema_add appends a column; -1 when the name is taken, empty, too long, or the schema
 * is full (message in err). A column named again replaces nothing: callers check first. */
int em_schema_add(em_schema *s, const char *name, em_type t, char *err, size_t errlen);
/* em_schema_list writes "a int, b string, ..." into buf (truncated to cap). */
void em_schema_list(const em_schema *s, char *buf, size_t cap);

#endif
