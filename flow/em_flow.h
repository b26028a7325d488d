/* em_flow.h -- a workflow document: nodes and edges, checked and compiled (docs/flows.md).
 *
 *     {"name": "sales", "nodes": [{"id": "in", "type": "kafka_source", "topic": "sales"},
 *                                 {"id": "f", "type": "filter", "rule": "qty > 0"}, ...],
 *      "edges": [{"from": "in", "to": "f"}, ...]}
 *
 * em_flow_load checks everything a run would trip over, before anything runs: the document's
 * shape, unknown node types and parameters, edges to nodes that do not exist, cycles, a node
 * with no input or two, and, following the columns from each source, every column a node
 * needs and its type (an error names the node and the column). Every rule and expression is
 * compiled here, once. The same compiled flow runs the nodes inside tasks (em_flow_run.h).
 *
 * Invariants of a loaded flow: nodes are in topological order (every node after its input);
 * each non-source node has exactly one input; `in` (the input's columns) and `out` (the
 * node's) are set for every node; a node's `out` is its input's `out` plus what it adds or
 * changes.
 */
#ifndef EM_FLOW_H
#define EM_FLOW_H

#include <jansson.h>
#include <stddef.h>

#include "em_expr.h"
#include "em_value.h"

#define EM_FLOW_NODES_MAX 128       /* nodes in one flow */
#define EM_FLOW_ID_MAX    64        /* bytes of a node id, NUL included */
#define EM_FLOW_TEXT_MAX  (1 << 20) /* bytes of a flow document */

typedef enum em_node_kind {
    EM_N_KAFKA_SOURCE,
    EM_N_CSV,
    EM_N_JSON,
    EM_N_CONCAT,
    EM_N_CAST,
    EM_N_FILTER,
    EM_N_DERIVE,
    EM_N_SELECT,
    EM_N_KEY_BY,
    EM_N_AGGREGATE,
    EM_N_RULES,
    EM_N_LOOKUP,
    EM_N_FUNCTION,
    EM_N_KAFKA_SINK,
    EM_N_REDIS_SINK,
    EM_N_FILES_SINK,
    EM_N_FILE_SOURCE,
    EM_N_KINDS
} em_node_kind;

typedef struct em_node em_node; /* a node's compiled parameters (em_flow_node.c) */

/* em_flow_node: one node of a loaded flow */
typedef struct em_flow_node {
    char id[EM_FLOW_ID_MAX];
    em_node_kind kind;
    int input;         /* index of the node feeding it; -1 for a source */
    int errors_to;     /* index of the sink its failed records go to (`"on": "error"` edge), -1 */
    int outputs;       /* nodes it feeds (error edges not counted) */
    em_schema out;     /* the columns of its records */
    em_node *compiled; /* parameters, compiled; owned */
} em_flow_node;

typedef struct em_flow {
    char name[EM_FLOW_ID_MAX];
    int n;
    em_flow_node nodes[EM_FLOW_NODES_MAX];
    json_t *doc;            /* the document (owned) */
    int streaming;          /* 1: its sources are streams: each sink is a query */
    const char *checkpoint; /* a streaming flow's checkpoints: DIR/<sink id> (in doc) */
    int64_t interval_ms;    /* a streaming flow's trigger interval */
} em_flow;

/* em_flow_load parses and checks a flow document (len bytes of JSON). Returns the flow (the
 * caller frees it with em_flow_free) or NULL with a message in err naming the node, the edge
 * or the column at fault. */
em_flow *em_flow_load(const char *text, size_t len, char *err, size_t errlen);

/* em_flow_read reads the flow document at path, with its "checkpoint" set to `checkpoint` when
 * given (em_flow_with_checkpoint): malloc'd text of *len bytes, or NULL with a message. */
char *em_flow_read(const char *path, const char *checkpoint, size_t *len, char *err, size_t errlen);

/* em_flow_with_checkpoint gives the document (len bytes) with its "checkpoint" set to dir
 * (ember-flow run --checkpoint DIR): malloc'd text, *out_len bytes; NULL when the text is not a
 * JSON object (em_flow_load then says why) or out of memory. */
char *em_flow_with_checkpoint(const char *text, size_t len, const char *dir, size_t *out_len);

/* em_flow_find: the index of node `id`, or -1 */
int em_flow_find(const em_flow *f, const char *id);

/* em_flow_kind_name: "kafka_source", "csv", ... */
const char *em_flow_kind_name(em_node_kind k);
/* em_flow_is_sink: kafka_sink, redis_sink or files_sink */
int em_flow_is_sink(em_node_kind k);
/* em_flow_is_source: kafka_source or file_source (their records: key, value, timestamp) */
int em_flow_is_source(em_node_kind k);
/* em_flow_is_topic_lookup: a lookup whose table is a topic (a cogroup with its rows) */
int em_flow_is_topic_lookup(const em_flow_node *n);

/* em_flow_explain writes what running the flow does, sink by sink: the stages (operations
 * fused into one task, shuffles between them) and the columns after every node. */
void em_flow_explain(const em_flow *f, FILE *out);

void em_flow_free(em_flow *f);

#endif
