/* em_flow_rules.h -- the rules node: named rules {name, when, emit} evaluated per record (or
 * per aggregate result, after an aggregate); each rule that holds makes one alert record: the
 * record's columns, plus `rule` (its name) and `alert` ("col=value col=value" of the columns it
 * names in `emit`).
 *
 * Rules are given inline ("rules": [...]) or in a JSON file ("file": "/path.json", an array of
 * rules) read whenever the flow is loaded: by ember-flow when it checks the flow, and by every
 * task. So a streaming flow restarted on its checkpoint after the file changed runs the new
 * rules from its next batch, its state (running totals, windows) kept: the file's path, not
 * its content, is part of the queries' identity. On several hosts the file must be on shared
 * storage.
 */
#ifndef EM_FLOW_RULES_H
#define EM_FLOW_RULES_H

#include "em_flow_node.h"

#define EM_RULES_MAX 64 /* rules of one node */

/* em_rules_count: the node's rules */
int em_rules_count(const em_node *n);

/* em_rules_fire evaluates rule r over cols; 1 when it holds, with cols[in.n] (rule) and
 * cols[in.n + 1] (alert) set, the alert's text in the scratch space; 0 when it does not; -1
 * when the evaluation fails (message in err) */
int em_rules_fire(const em_node *n, int r, em_value *cols, em_scratch *s, char *err, size_t errlen);

#endif
