/* em_flow_int.h -- what the flow modules share: the compiled node, templates, and the
 * helpers that read a node's JSON parameters with messages naming the parameter.
 * Not for use outside flow/.
 */
#ifndef EM_FLOW_INT_H
#define EM_FLOW_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "em_expr.h"
#include "em_flow.h"
#include "em_flow_node.h"
#include "em_value.h"

#define TEMPLATE_PARTS 32 /* literal runs and {column}s in one template */
#define AGGS_MAX       12 /* aggregates of one aggregate node (its accumulator: 16 + 16 x 12 bytes) */
#define REDIS_FIELDS   16 /* fields of a redis_sink's hash */

/* em_template: text with {column} holes ("item:{item_id}"; "{{" and "}}" are braces); a
 * number's hole may say its decimals, as printf's %.Nf: "{km:.6f}" */
typedef struct em_template {
    char *source; /* the template as written (owned) */
    char *text;   /* its literal parts, braces undone (owned) */
    int n;
    struct {
        int col;           /* column index, or -1 for literal text */
        int decimals;      /* a number's hole written {col:.Nf}: N; else -1 */
        uint32_t off, len; /* the literal's bytes in text */
    } parts[TEMPLATE_PARTS];
} em_template;

typedef enum agg_op { AGG_SUM, AGG_MIN, AGG_MAX, AGG_COUNT, AGG_AVG, AGG_DISTINCT } agg_op;

/* agg_spec: one aggregate of an aggregate node */
typedef struct agg_spec {
    agg_op op;
    int col;      /* the column it reads (-1 for count) */
    em_type type; /* that column's type (int for count) */
} agg_spec;

typedef enum sink_format { FORMAT_CSV, FORMAT_JSON, FORMAT_TEMPLATE } sink_format;

struct em_node {
    em_node_kind kind;
    em_schema in; /* the columns it receives */
    /* csv, json: the column read, and the columns made (after in's) */
    int input_col;
    char delim;
    int n_new;
    em_type new_types[EM_SCHEMA_MAX];
    char *paths[EM_SCHEMA_MAX];   /* json: each column's path (owned) */
    char *formats[EM_SCHEMA_MAX]; /* csv, cast: a timestamp column's strptime format (owned) */
    /* concat, select, key_by, aggregate (by), sinks (columns): column indexes into `in` */
    int n_cols;
    int cols[EM_SCHEMA_MAX];
    char *sep; /* concat's separator (owned) */
    /* cast: per input column, its new type, or -1 */
    int cast_to[EM_SCHEMA_MAX];
    /* filter, derive */
    em_expr *expr;
    char *expr_text;    /* as written (owned) */
    int fail_otherwise; /* filter: a record the rule does not hold for fails (error edge) */
    /* aggregate: by `cols`; window over `time_col` (length 0: none) */
    int n_aggs;
    agg_spec aggs[AGGS_MAX];
    size_t acc_len;       /* the built-in aggregates' accumulator bytes (set when compiled) */
    em_schema key_schema; /* the `by` columns: the rows that key the shuffle */
    struct {              /* a function of the library (em_flow_fn.h): a function node's, or
                             an aggregate's fold */
        char *name;       /* NULL: none (an aggregate's built-in aggregates) (owned) */
        int n_args, n_returns;
        int args[EM_SCHEMA_MAX];         /* the columns it reads */
        em_type returns[EM_SCHEMA_MAX];  /* the types of the columns it gives */
        const ember_flow_aggregate *agg; /* an aggregate's: NULL until resolved */
        const ember_flow_function *call; /* a function node's: NULL until resolved */
    } fn;
    int time_col; /* the event-time column of a window (-1: none) */
    int64_t window_ms, slide_ms, delay_ms;
    int partitions;
    /* kafka_source */
    int stream;   /* 1: a streaming query's source; 0: a batch read */
    int earliest; /* a new query starts at the topic's first records */
    int64_t max_per_partition;
    /* lookup */
    struct flow_lookup *lookup; /* owned (em_flow_lookup.c) */
    /* rules */
    int n_rules;
    struct flow_rule *rules; /* owned (em_flow_rules.c) */
    /* sinks */
    char *target; /* topic, directory or Redis address (owned; NULL for Redis's default) */
    sink_format format;
    em_template key; /* Kafka key, Redis key */
    int has_key;
    int redis_set;     /* 1: SET key value; 0: HSET key fields */
    em_template value; /* redis SET's value; a kafka or files sink's line (FORMAT_TEMPLATE) */
    int n_fields;
    em_template field_names[REDIS_FIELDS]; /* field names are templates too */
    em_template fields[REDIS_FIELDS];
    int64_t ttl_ms;
};

/* param_check: every key of params is in `allowed` (NULL-terminated); else an error naming
 * the unknown parameter and the known ones */
int param_check(json_t *params, const char *const *allowed, char *err, size_t errlen);
/* param_str: a string parameter; required ones missing are an error, else *out = dflt */
int param_str(json_t *params, const char *name, int required, const char *dflt, const char **out,
              char *err, size_t errlen);
/* param_int: an integer parameter in [min, max], else dflt */
int param_int(json_t *params, const char *name, int64_t dflt, int64_t min, int64_t max,
              int64_t *out, char *err, size_t errlen);
/* param_columns: an array of names of columns of `in` (at least one) into cols */
int param_columns(json_t *params, const char *name, const em_schema *in, int *cols, int *n,
                  char *err, size_t errlen);
/* column_of: the index of column `name` of `in`, or -1 with a message listing the columns */
int column_of(const em_schema *in, const char *name, const char *param, char *err, size_t errlen);

/* em_flow_read_file reads all of path, at most max bytes, NUL-terminated; NULL with a message
 * (cannot open it, too large, out of memory) */
char *em_flow_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);

/* template_compile reads `text` against the columns `in` */
int template_compile(em_template *t, const char *text, const em_schema *in, const char *param,
                     char *err, size_t errlen);
/* template_render writes the template for cols into buf; its length, or -1 if over cap */
int template_render(const em_template *t, const em_schema *in, const em_value *cols, char *buf,
                    size_t cap);
void template_free(em_template *t);

/* compile steps of the modules: each fills n's fields and `out` */
int em_agg_compile(em_node *n, json_t *params, em_schema *out, char *err, size_t errlen);
int em_sink_compile(em_node *n, json_t *params, em_schema *out, char *err, size_t errlen);
int em_rules_compile(em_node *n, json_t *params, em_schema *out, char *err, size_t errlen);
/* em_node_new_columns reads csv-like typed columns (`param`: names or {name, type, format}) into
 * n->new_types, n->formats and out */
int em_node_new_columns(em_node *n, json_t *params, const char *param, em_schema *out, char *err,
                        size_t errlen);
void em_rules_free(em_node *n);

#endif
