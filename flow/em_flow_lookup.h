/* em_flow_lookup.h -- the lookup node: a join with a static dataset, a CSV file loaded into a
 * hash table whenever the flow loads (so on several hosts it must be on shared storage, and a
 * streaming flow restarted on its checkpoint reads the file as it is then). Each record gains
 * the columns of the file's row whose key equals its `on` column as text; a record without a
 * row is dropped or fails (`missing`).
 */
#ifndef EM_FLOW_LOOKUP_H
#define EM_FLOW_LOOKUP_H

#include <jansson.h>

#include "em_flow_node.h"

int em_lookup_compile(em_node *n, json_t *params, em_schema *out, char *err, size_t errlen);
void em_lookup_free(em_node *n);

/* em_lookup_apply: 1 with the row's columns after the input's, 0 (dropped), -1 (failed) */
int em_lookup_apply(const em_node *n, em_value *cols, char *err, size_t errlen);

/* A lookup whose table is a topic (`topic`: one CSV line per record, the file's format without
 * a header) is a cogroup of the records, keyed by their `on` column as text, with the topic's
 * rows, keyed by their key: the flow reads the topic again for every run (every batch of a
 * query), so the table is what the topic holds then. */
/* em_lookup_topic: the table's topic, or NULL for a file's */
const char *em_lookup_topic(const em_node *n);
/* em_lookup_describe: "file PATH on COLUMN, drop when missing" (for --explain) */
void em_lookup_describe(const em_node *n, char *buf, size_t cap);
/* em_lookup_on_name: the record's column matched */
const char *em_lookup_on_name(const em_node *n);
/* em_lookup_row_schema: the columns a row adds (how a topic's rows are encoded, em_row.h) */
const em_schema *em_lookup_row_schema(const em_node *n);
int em_lookup_drops_missing(const em_node *n);
/* em_lookup_table_row parses one record of the topic (len bytes of line, cut in place) into the
 * row's columns and its key (pointing into line): 1, 0 for an empty line, -1 with a message
 * naming the topic and the record (`no`: its number in the task's partition, from 1) */
int em_lookup_table_row(const em_node *n, char *line, size_t len, int64_t no, em_value *row,
                        const char **key, size_t *key_len, char *err, size_t errlen);
/* em_lookup_key_text writes a record's `on` column as text (its key in the cogroup); its
 * length, or -1 when over cap or the key limit */
int em_lookup_key_text(const em_node *n, const em_value *cols, char *buf, size_t cap);

#endif
