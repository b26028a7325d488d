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

#endif
