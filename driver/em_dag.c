/* em_dag.c -- cut job graphs into stages at shuffle dependencies (see em_dag.h).
 *
 * A stage is identified by its last node and the wide node its output feeds (or none for
 * the action's stage): the same node read by two shuffles gives two map stages, one per
 * shuffle, while two reads of one shuffle (cogroup of a dataset with itself) share one.
 */
#include "em_dag.h"

#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_graph.h"

typedef struct planner {
    const Ember__JobGraph *g;
    em_stage_plan *stages;
    size_t n, cap;
    uint8_t *seen; /* nodes visited while walking the current stage */
} planner;

/* find_stage returns the planned stage ending at node that feeds consumer, or -1. */
static int find_stage(const planner *pl, uint32_t node, uint32_t consumer)
{
    for (size_t i = 0; i < pl->n; i++)
        if (pl->stages[i].node == node && pl->stages[i].shuffle_node == consumer) return (int)i;
    return -1;
}

/* collect_leaves walks the narrow operations (and unions) above node, listing the wide
 * nodes the stage reads in walk order (parents[0] first); *first_leaf gets the first leaf. */
static int collect_leaves(planner *pl, uint32_t node, uint32_t *wide, uint32_t *n_wide,
                          uint32_t *first_leaf, char *err, size_t errlen)
{
    if (pl->seen[node]) return EMBER_OK;
    pl->seen[node] = 1;
    const Ember__Node *n = pl->g->nodes[node];
    if (em_node_is_source(n->kind) || em_node_is_wide(n->kind)) {
        if (*first_leaf == EM_DAG_NONE) *first_leaf = node;
        if (!em_node_is_wide(n->kind)) return EMBER_OK;
        if (*n_wide == EM_DAG_MAX_PARENTS) {
            snprintf(err, errlen, "a stage reads more than %d shuffles", EM_DAG_MAX_PARENTS);
            return EMBER_ERR_INVALID;
        }
        wide[(*n_wide)++] = node;
        return EMBER_OK;
    }
    for (size_t p = 0; p < n->n_parents; p++) {
        int rc = collect_leaves(pl, n->parents[p], wide, n_wide, first_leaf, err, errlen);
        if (rc != EMBER_OK) return rc;
    }
    return EMBER_OK;
}

/* plan_stage plans the stage ending at node whose output feeds consumer (EM_DAG_NONE: the
 * action), parents first; returns its index or < 0. */
static int plan_stage(planner *pl, uint32_t node, uint32_t consumer, char *err, size_t errlen)
{
    int found = find_stage(pl, node, consumer);
    if (found >= 0) return found;
    em_stage_plan st = {.node = node,
                        .partitions = em_node_partitions(pl->g, node),
                        .shuffle_node = consumer,
                        .source = EM_DAG_NONE};
    uint32_t wide[EM_DAG_MAX_PARENTS], n_wide = 0;
    memset(pl->seen, 0, pl->g->n_nodes);
    int rc = collect_leaves(pl, node, wide, &n_wide, &st.source, err, errlen);
    if (rc != EMBER_OK) return rc;
    for (uint32_t w = 0; w < n_wide; w++) {
        const Ember__Node *wn = pl->g->nodes[wide[w]];
        for (uint32_t side = 0; side < wn->n_parents; side++) {
            if (st.n_parents == EM_DAG_MAX_PARENTS) {
                snprintf(err, errlen, "a stage reads more than %d shuffles", EM_DAG_MAX_PARENTS);
                return EMBER_ERR_INVALID;
            }
            int parent = plan_stage(pl, wn->parents[side], wide[w], err, errlen);
            if (parent < 0) return parent;
            st.parents[st.n_parents] = (uint32_t)parent;
            st.parent_wide[st.n_parents] = wide[w];
            st.parent_side[st.n_parents++] = side;
        }
    }
    if (pl->n == pl->cap) {
        size_t cap = pl->cap ? 2 * pl->cap : 8;
        em_stage_plan *p = realloc(pl->stages, cap * sizeof *p);
        if (!p) return EMBER_ERR_NOMEM;
        pl->stages = p;
        pl->cap = cap;
    }
    pl->stages[pl->n] = st;
    return (int)pl->n++;
}

int em_dag_plan(const Ember__JobGraph *g, em_stage_plan **stages, size_t *n_stages, char *err,
                size_t errlen)
{
    planner pl = {.g = g};
    if (!(pl.seen = malloc(g->n_nodes))) return EMBER_ERR_NOMEM;
    int rc = plan_stage(&pl, g->target, EM_DAG_NONE, err, errlen);
    free(pl.seen);
    if (rc < 0) {
        free(pl.stages);
        return rc;
    }
    *stages = pl.stages;
    *n_stages = pl.n;
    return EMBER_OK;
}
