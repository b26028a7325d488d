/* em_graph.h -- the job graph as it crosses processes: validation and derived facts.
 *
 * A JobGraph (proto/ember.proto) lists nodes parents first: node i has id i and parents < i.
 * Every graph that arrives from the network is validated here before anything reads it; the
 * rest of ember may then rely on these invariants.
 */
#ifndef EM_GRAPH_H
#define EM_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "ember.pb-c.h"

#define EM_GRAPH_MAX_NODES      4096
#define EM_GRAPH_MAX_PARTITIONS 1000000
#define EM_GRAPH_MAX_PATH       1024 /* a text file source's paths */
#define EM_SYMBOL_MAX           255
#define EM_GRAPH_MAX_KEY        65536     /* bytes of a sort bound */
#define EM_WINDOW_MAX_PANES     100000    /* slides in one window */
#define EM_NO_WATERMARK         INT64_MIN /* a window node's watermark before any event time */
#define EM_EVENT_TIME_MAX       (INT64_C(1) << 62) /* |event time| a window takes, in ms */
#define EM_STATE_DIR_MAX        2048               /* bytes of a window's state directory */

/* em_floor_div: a / b rounded towards minus infinity (a window's pane, a watermark's slide) */
static inline int64_t em_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* em_graph_validate checks structure, sources, functions and the action. data_len is the size
 * of the data part that came with the graph (parallelized records). */
int em_graph_validate(const Ember__JobGraph *g, size_t data_len, char *err, size_t errlen);

/* em_graph_validate_query checks the graph of a streaming query (StartQuery): one
 * NODE_KAFKA_STREAM source, narrow operations, a files or Kafka sink, and otherwise what
 * em_graph_validate checks; *stream_node is the stream's index. */
int em_graph_validate_query(const Ember__JobGraph *g, int32_t *stream_node, char *err,
                            size_t errlen);

/* em_node_partitions returns the number of partitions of a node of a validated graph: those
 * of its source, or of the nearest wide node above it. */
uint32_t em_node_partitions(const Ember__JobGraph *g, uint32_t node);

/* em_node_branch: for partition *partition of union node u, which parent (0 or 1) computes
 * it; *partition becomes the index within that parent. */
uint32_t em_node_branch(const Ember__JobGraph *g, const Ember__Node *u, uint32_t *partition);

/* em_graph_leaf: the source or wide node that partition `partition` of `node` reads (through
 * its narrow operations and unions), and the partition of that leaf in *leaf_partition. */
uint32_t em_graph_leaf(const Ember__JobGraph *g, uint32_t node, uint32_t partition,
                       uint32_t *leaf_partition);

/* em_node_is_source / em_node_is_wide classify kinds; a wide node starts a new stage.
 * em_node_combines: a wide node whose map side folds values per key (em_combine);
 * em_node_groups: one whose reduce side gathers every value of a key. */
int em_node_is_source(Ember__NodeKind kind);
int em_node_is_wide(Ember__NodeKind kind);
int em_node_combines(Ember__NodeKind kind);
/* em_node_keeps_state: a streaming node whose reduce side keeps state between batches (window,
 * map_with_state) */
int em_node_keeps_state(Ember__NodeKind kind);
int em_node_groups(Ember__NodeKind kind);

/* em_key_compare orders keys bytewise (memcmp), a proper prefix first: sort_by_key's order. */
int em_key_compare(const void *a, size_t a_len, const void *b, size_t b_len);

const char *em_node_kind_name(Ember__NodeKind kind);
const char *em_action_kind_name(Ember__ActionKind kind);

#endif
