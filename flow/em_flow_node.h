/* em_flow_node.h -- one node of a workflow: its parameters checked and compiled against the
 * columns it receives, and what it does to one record.
 *
 * A record inside a task is an array of em_value, one per column of the schema at that point
 * (EM_SCHEMA_MAX entries, so that every node can append in place). Narrow nodes (csv, json,
 * concat, cast, filter, derive, select, key_by) change it in place with em_node_apply; new
 * strings go to the task's scratch space, emptied before each record. Aggregates and sinks
 * have their own steps (em_flow_agg.h, em_flow_sink.h).
 */
#ifndef EM_FLOW_NODE_H
#define EM_FLOW_NODE_H

#include <ember/ember.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "em_flow.h"
#include "em_value.h"

#define EM_SCRATCH_BYTES 65536 /* new string bytes one record may make */

/* em_scratch: a task's space for the strings nodes make; emptied per record */
typedef struct em_scratch {
    char buf[EM_SCRATCH_BYTES];
    size_t used;
    ember_json *json; /* the json node's parser, made at its first record (owned) */
} em_scratch;

/* em_scratch_put copies len bytes into s; NULL when they do not fit */
char *em_scratch_put(em_scratch *s, const void *p, size_t len);

/* em_node_compile checks `params` (the node's JSON object) for node kind k fed with columns
 * `in`, and fills `out` with its columns. Returns the compiled node (em_node_free), or NULL
 * with a message in err naming the parameter or column. */
em_node *em_node_compile(em_node_kind k, json_t *params, const em_schema *in, em_schema *out,
                         char *err, size_t errlen);
void em_node_free(em_node *n);

/* em_node_apply runs a narrow node over one record: cols holds its input columns on entry and
 * its output columns on return. Returns 1 (keep), 0 (a filter dropped it) or -1 (the record
 * fails this node: message in err). */
int em_node_apply(const em_node *n, em_value *cols, em_scratch *s, char *err, size_t errlen);

/* em_node_key_columns: the columns a key_by or aggregate node keys by (NULL for others) */
const int *em_node_key_columns(const em_node *n, int *count);

/* em_node_describe writes a one-line summary of the node's parameters (for --explain) */
void em_node_describe(const em_node *n, char *buf, size_t cap);

/* em_value_text renders one value as text ("%lld", the shortest exact double, the string,
 * true/false, timestamps as "YYYY-MM-DD HH:MM:SS" UTC with ".mmm" when not whole seconds)
 * into buf; returns its length, or -1 when cap is too small. */
int em_value_text(em_type t, const em_value *v, char *buf, size_t cap);

/* em_value_parse reads text as type t (ints and timestamps: decimal, or with `format` a
 * strptime format read as UTC for timestamps; doubles; bools: true/false/1/0; strings as
 * they are). -1 with a message in err when it is not such a value. */
int em_value_parse(em_type t, const char *format, const char *text, size_t len, em_value *out,
                   char *err, size_t errlen);

#endif
