/* fuzz_graph.c -- job graphs and stage definitions (common/job/em_graph.h, driver/em_dag.h):
 * what a submitter sends in SubmitJob and StartQuery and what executors get in a StageDef. The
 * bytes are a SubmitJob (first byte even) or a StageDef (odd); a graph that validates is planned
 * into stages, fingerprinted, and asked for each node's partitions and leaves, as the driver and
 * the executors do. */
#include <stdlib.h>

#include <ember/ember.h>

#include "em_buf.h"
#include "em_dag.h"
#include "em_graph.h"
#include "em_sched.h"
#include "em_stream_log.h"
#include "ember.pb-c.h"
#include "fuzz.h"

static void use_graph(const Ember__JobGraph *g, size_t data_len)
{
    char err[512];
    if (!g || em_graph_validate(g, data_len, err, sizeof err) != EMBER_OK) return;
    em_stage_plan *plan;
    size_t n_plan;
    if (em_dag_plan(g, &plan, &n_plan, err, sizeof err) == EMBER_OK) free(plan);
    uint64_t *fp = malloc(g->n_nodes * sizeof *fp);
    uint8_t none = 0;
    em_buf data = {&none, 0, 0};
    if (fp) em_fingerprint_nodes(g, &data, fp);
    free(fp);
    for (uint32_t n = 0; n < g->n_nodes; n++) {
        uint32_t parts = em_node_partitions(g, n), leaf_part;
        for (uint32_t p = 0; p < parts && p < 4; p++) em_graph_leaf(g, n, p, &leaf_part);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (!(data[0] & 1)) {
        Ember__SubmitJob *s = ember__submit_job__unpack(NULL, size - 1, data + 1);
        if (s) use_graph(s->graph, 1 << 20);
        /* the same graph as a streaming query's (StartQuery) */
        char err[512];
        int32_t stream_node;
        if (s && s->graph &&
            em_graph_validate_query(s->graph, &stream_node, err, sizeof err) == EMBER_OK)
            (void)em_query_fingerprint(s->graph, stream_node);
        if (s) ember__submit_job__free_unpacked(s, NULL);
    } else {
        Ember__StageDef *d = ember__stage_def__unpack(NULL, size - 1, data + 1);
        if (d) use_graph(d->graph, 0);
        if (d) ember__stage_def__free_unpacked(d, NULL);
    }
    return 0;
}
