/* em_dag.h -- the DAG scheduler's planning step: cuts a job graph into stages.
 *
 * A stage is the longest chain of narrow operations ending at a node; it is cut where a node
 * depends on its parent through a shuffle (em_node_is_wide). Stages are listed parents first,
 * so a stage may run once every stage before it that it depends on has finished; the last
 * stage is the one the action runs on. A union is narrow: a stage may read several sources
 * or shuffles through unions, each partition from one of them. Each stage has one task per
 * partition of its last node.
 */
#ifndef EM_DAG_H
#define EM_DAG_H

#include <stddef.h>
#include <stdint.h>

#include "ember.pb-c.h"

#define EM_DAG_MAX_PARENTS 8
#define EM_DAG_NONE        UINT32_MAX

typedef struct em_stage_plan {
    uint32_t node;         /* the stage's last node: its tasks compute this node's partitions */
    uint32_t source;       /* its first leaf (a source, or a wide node reading a shuffle); a
                              stage with unions has several, found per partition by
                              em_graph_leaf */
    uint32_t partitions;   /* tasks of the stage */
    uint32_t shuffle_node; /* a map stage: the wide node its output feeds; else EM_DAG_NONE */
    uint32_t n_parents;    /* stages (indices into the plan) whose output this stage reads */
    uint32_t parents[EM_DAG_MAX_PARENTS];
    uint32_t parent_wide[EM_DAG_MAX_PARENTS]; /* the wide node of this stage reading parents[k] */
    uint32_t parent_side[EM_DAG_MAX_PARENTS]; /* which parent of that wide node it is */
} em_stage_plan;

/* em_dag_plan plans a validated graph; *stages (caller frees) gets *n_stages entries. */
int em_dag_plan(const Ember__JobGraph *g, em_stage_plan **stages, size_t *n_stages, char *err,
                size_t errlen);

#endif
