/* em_flow_run.h -- a workflow inside a task: the nodes one task runs over its partition.
 *
 * A flow runs as ember operations (ember_flow.c builds them): between two boundaries (a
 * source, an aggregate's shuffle, a node feeding several others, whose output is cached) the
 * nodes are fused into one map_partitions whose argument is an em_flow_step: the flow
 * document and which nodes to run. Records come in as the boundary gives them (a Kafka
 * record; an aggregate's key row and accumulator; a cached row; a topic lookup's cogroup of
 * records and the table's row) and leave as the last node makes them (a sink's record; the
 * map side of an aggregate; a topic lookup's side, keyed by the matched column; a row).
 *
 * Each node counts the records it received, passed on and failed, added to the job's
 * accumulators "flow.ID.in", "flow.ID.out" and "flow.ID.failed" when the task ends (so a
 * task run twice counts once). A record that fails a node is dropped, or in an error step
 * (errors_of) is the record sent on, as its source gave it.
 */
#ifndef EM_FLOW_RUN_H
#define EM_FLOW_RUN_H

#include <ember/ember.h>
#include <stddef.h>

#include "em_flow.h"

typedef struct em_flow_step em_flow_step;

/* em_flow_step_arg makes the argument of a step: the flow document's text, the node its
 * records come from, the nodes it runs (in order), errors_of (-1, or the node whose failed
 * records it sends) and table_of (-1, or a lookup whose topic's records the step turns into
 * rows keyed by their key; its input is that lookup and it runs no nodes). Returns malloc'd
 * bytes (*len of them), NULL when out of memory. */
void *em_flow_step_arg(const em_flow *f, const char *text, size_t text_len, int input,
                       const int *nodes, int n, int errors_of, int table_of, size_t *len);

/* em_flow_step_open loads a step from its argument (in a task); NULL with a message in err */
em_flow_step *em_flow_step_open(const void *arg, size_t len, char *err, size_t errlen);

/* em_flow_step_run runs the step over a partition; EMBER_OK, or the task fails with the
 * message (a record that is not what the step expects, an output that does not fit) */
int em_flow_step_run(em_flow_step *st, ember_task *task, ember_iter *in);

void em_flow_step_free(em_flow_step *st);

/* the counters each node keeps, as accumulators "flow.ID.WHAT" */
enum { EM_FLOW_COUNTERS = 4 };
extern const char *const em_flow_counter_names[EM_FLOW_COUNTERS]; /* in, out, failed, us */
/* em_flow_counter_name writes the accumulator name of counter `what` of node `id` */
void em_flow_counter_name(char *buf, size_t cap, const char *id, int what);

#endif
