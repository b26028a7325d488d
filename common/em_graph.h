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
#define EM_SYMBOL_MAX           255

/* em_graph_validate checks structure, sources, functions and the action. data_len is the size
 * of the data part that came with the graph (parallelized records). */
int em_graph_validate(const Ember__JobGraph *g, size_t data_len, char *err, size_t errlen);

/* em_node_partitions returns the number of partitions of a node of a validated graph: those
 * of its source, or of the nearest wide node above it. */
uint32_t em_node_partitions(const Ember__JobGraph *g, uint32_t node);

/* em_node_is_source / em_node_is_wide classify kinds; a wide node starts a new stage. */
int em_node_is_source(Ember__NodeKind kind);
int em_node_is_wide(Ember__NodeKind kind);

const char *em_node_kind_name(Ember__NodeKind kind);
const char *em_action_kind_name(Ember__ActionKind kind);

#endif
