/* em_dag.c -- cut job graphs into stages at shuffle dependencies (see em_dag.h). */
#include "em_dag.h"

#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>

#include "em_graph.h"

typedef struct planner {
    const Ember__JobGraph *g;
    em_stage_plan *stages;
    size_t n;
    int32_t *stage_of; /* node -> index of the stage ending at it, or -1 */
} planner;

/* plan_stage plans the stage ending at `node`, parents first; returns its index or < 0. */
static int plan_stage(planner *pl, uint32_t node, char *err, size_t errlen)
{
    if (pl->stage_of[node] >= 0) return pl->stage_of[node];
    em_stage_plan st = {.node = node, .partitions = em_node_partitions(pl->g, node)};
    uint32_t id = node;
    for (;;) { /* walk up the narrow chain */
        const Ember__Node *n = pl->g->nodes[id];
        if (em_node_is_source(n->kind)) break;
        if (em_node_is_wide(n->kind)) {
            for (size_t p = 0; p < n->n_parents; p++) {
                if (st.n_parents == EM_DAG_MAX_PARENTS) {
                    snprintf(err, errlen, "node %u reads more than %d shuffles", id,
                             EM_DAG_MAX_PARENTS);
                    return EMBER_ERR_INVALID;
                }
                int parent = plan_stage(pl, n->parents[p], err, errlen);
                if (parent < 0) return parent;
                st.parents[st.n_parents++] = (uint32_t)parent;
            }
            break;
        }
        id = n->parents[0];
    }
    st.source = id;
    pl->stages[pl->n] = st;
    pl->stage_of[node] = (int32_t)pl->n;
    return (int)pl->n++;
}

int em_dag_plan(const Ember__JobGraph *g, em_stage_plan **stages, size_t *n_stages, char *err,
                size_t errlen)
{
    planner pl = {.g = g};
    pl.stages = calloc(g->n_nodes, sizeof *pl.stages);
    pl.stage_of = malloc(g->n_nodes * sizeof *pl.stage_of);
    if (!pl.stages || !pl.stage_of) {
        free(pl.stages);
        free(pl.stage_of);
        return EMBER_ERR_NOMEM;
    }
    for (size_t i = 0; i < g->n_nodes; i++) pl.stage_of[i] = -1;
    int rc = plan_stage(&pl, g->target, err, errlen);
    free(pl.stage_of);
    if (rc < 0) {
        free(pl.stages);
        return rc;
    }
    *stages = pl.stages;
    *n_stages = pl.n;
    return EMBER_OK;
}
