/* ember_flow.c -- the flow runner: the entry point and task functions of the job library that
 * runs workflows (ember_flow.so, or a library of the user's functions linked with
 * lib/libember_flow.a), run by ember-flow as any job is run by ember-submit, so a flow goes
 * through the same upload, scheduling, retries and status as a compiled job.
 *
 * ember_flow_main loads the document (--flow FILE) and turns it into ember operations, sink by
 * sink: the nodes between two boundaries become one map_partitions (ember_flow_step, fused);
 * an aggregate is an aggregate_by_key whose accumulator describes itself (ember_flow_agg_*);
 * a node feeding several others is cached, so what is upstream of it runs once; each sink is
 * one action. Nothing here is compiled at run time: the nodes are ember's own C code.
 */

#include <dlfcn.h>
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_flow.h"
#include "em_flow_agg.h"
#include "em_flow_fn.h"
#include "em_flow_int.h"
#include "em_flow_lookup.h"
#include "em_flow_run.h"
#include "em_flow_sink.h"

/* ---- the functions tasks call (exported: executors find them by name) ----------------- */

/* the library is built with hidden symbols (its em_* names must never meet the host's): only
 * these (and the user's ember_main and functions) are visible */
#define FLOW_EXPORT __attribute__((visibility("default")))

FLOW_EXPORT int ember_flow_step(ember_task *task, ember_iter *in);
FLOW_EXPORT int ember_flow_agg_seq(ember_task *task, void *acc, const ember_record *in);
FLOW_EXPORT int ember_flow_agg_comb(ember_task *task, void *acc, const void *other);
FLOW_EXPORT int ember_flow_agg_state(ember_task *task, const ember_record *in, void *state,
                                     int *exists);
FLOW_EXPORT int ember_flow_main(ember_ctx *ctx, int argc, char **argv);

/* in_this_library finds a flow function among the library's exported symbols (the
 * library the runner is linked into, wherever it runs: ember-submit or an executor) */
static const void *in_this_library(const char *name, size_t size)
{
    Dl_info info;
    if (!dladdr((void *)ember_flow_step, &info) || !info.dli_fname) return NULL;
    void *self = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
    const void *a = em_fn_lookup(self, name, size);
    if (self) dlclose(self);
    return a;
}

/* as the library is loaded: before any task (a reduce side's merge may come first) */
__attribute__((constructor)) static void use_this_library(void)
{
    em_fn_set_resolver(in_this_library);
}

int ember_flow_step(ember_task *task, ember_iter *in)
{
    size_t len;
    const void *arg = ember_task_arg(task, &len);
    char err[1024];
    em_flow_step *st = em_flow_step_open(arg, len, err, sizeof err);
    if (!st) return ember_task_fail(task, "flow: %s", err);
    int rc = em_flow_step_run(st, task, in);
    em_flow_step_free(st);
    return rc;
}

int ember_flow_agg_seq(ember_task *task, void *acc, const ember_record *in)
{
    char err[256];
    if (em_agg_merge(acc, in->value, in->value_len, err, sizeof err) != 0)
        return ember_task_fail(task, "flow aggregate: %s", err);
    return EMBER_OK;
}

int ember_flow_agg_comb(ember_task *task, void *acc, const void *other)
{
    char err[256];
    size_t len = em_agg_acc_bytes(acc, EMBER_ACC_MAX); /* the engine's: as long as it says */
    if (em_agg_merge(acc, other, len, err, sizeof err) != 0)
        return ember_task_fail(task, "flow aggregate: %s", err);
    return EMBER_OK;
}

/* ember_flow_agg_state: a streaming aggregate without a window keeps each key's accumulator
 * across batches (map_with_state) and emits the running result after each record */
int ember_flow_agg_state(ember_task *task, const ember_record *in, void *state, int *exists)
{
    char err[256];
    if (in->value_len < 16 || in->value_len > EMBER_ACC_MAX ||
        in->value_len != em_agg_acc_bytes(in->value, in->value_len))
        return ember_task_fail(task, "flow aggregate: a record of %zu bytes is no accumulator",
                               in->value_len);
    if (!*exists)
        memcpy(state, in->value, in->value_len); /* the key's first record */
    else if (em_agg_merge(state, in->value, in->value_len, err, sizeof err) != 0)
        return ember_task_fail(task, "flow aggregate: %s", err);
    *exists = 1;
    return ember_emit_kv(task, in->key, in->key_len, state, in->value_len, in->timestamp);
}

/* ---- building the operations ------------------------------------------------------------ */

typedef struct plan {
    ember_ctx *ctx;
    const em_flow *f;
    const char *text; /* the document, shipped in every step's argument */
    size_t text_len;
    ember_dataset *made[EM_FLOW_NODES_MAX]; /* boundaries' datasets, once made */
    int detached;                           /* a streaming flow's queries run on without it */
} plan;

/* boundary: a node whose records a step reads: a source, an aggregate, a topic lookup, a node
 * feeding several (in a batch flow, where it is cached; a streaming flow's queries each run
 * it) */
static int is_boundary(const em_flow *f, int k)
{
    const em_flow_node *n = &f->nodes[k];
    return em_flow_is_source(n->kind) || n->kind == EM_N_AGGREGATE || em_flow_is_topic_lookup(n) ||
           (n->outputs > 1 && !f->streaming);
}

static ember_dataset *dataset_of(plan *p, int k);

/* step_to: the step running the nodes after the nearest boundary up to `last` (errors_of: its
 * error step instead, from the source) */
static ember_dataset *step_to(plan *p, int last, int errors_of)
{
    int path[EM_FLOW_NODES_MAX], m = 0, from = p->f->nodes[last].input;
    if (errors_of >= 0) {
        last = errors_of;
        from = p->f->nodes[last].input;
    }
    path[m++] = last;
    while (errors_of >= 0 ? !em_flow_is_source(p->f->nodes[from].kind) : !is_boundary(p->f, from)) {
        path[m++] = from;
        from = p->f->nodes[from].input;
    }
    int nodes[EM_FLOW_NODES_MAX];
    for (int i = 0; i < m; i++) nodes[i] = path[m - 1 - i];
    ember_dataset *parent = dataset_of(p, from);
    size_t len;
    void *arg = em_flow_step_arg(p->f, p->text, p->text_len, from, nodes, m, errors_of, -1, &len);
    if (!parent || !arg) {
        free(arg);
        return NULL;
    }
    ember_dataset *ds = ember_map_partitions(parent, ember_flow_step, arg, len);
    free(arg);
    return ds;
}

static ember_dataset *dataset_of(plan *p, int k)
{
    if (p->made[k]) return p->made[k];
    const em_flow_node *n = &p->f->nodes[k];
    const em_node *c = n->compiled;
    ember_dataset *ds;
    if (n->kind == EM_N_KAFKA_SOURCE && c->stream) {
        ember_stream_source src = {.earliest = c->earliest,
                                   .max_per_partition = c->max_per_partition};
        ds = ember_kafka_stream(p->ctx, c->target, &src);
    } else if (n->kind == EM_N_KAFKA_SOURCE)
        ds = ember_kafka_topic(p->ctx, c->target);
    else if (n->kind == EM_N_FILE_SOURCE)
        ds = ember_text_file(p->ctx, c->target, c->partitions);
    else if (n->kind == EM_N_AGGREGATE) {
        uint8_t zero[EMBER_ACC_MAX];
        size_t len = em_agg_acc_len(c);
        ember_window w = {0};
        em_agg_zero(c, zero);
        if (em_agg_window(c, &w.length_ms, &w.slide_ms, &w.delay_ms))
            ds = ember_window_aggregate(step_to(p, k, -1), &w, zero, len, ember_flow_agg_seq,
                                        ember_flow_agg_comb, c->partitions);
        else if (p->f->streaming) /* running totals, kept per key across batches */
            ds = ember_map_with_state(step_to(p, k, -1), ember_flow_agg_state, len, 0, NULL, 0,
                                      c->partitions);
        else
            ds = ember_aggregate_by_key(step_to(p, k, -1), zero, len, ember_flow_agg_seq,
                                        ember_flow_agg_comb, c->partitions);
    } else if (em_flow_is_topic_lookup(
                   n)) { /* the records keyed by the column, with the table's rows */
        size_t len;
        void *arg = em_flow_step_arg(p->f, p->text, p->text_len, k, NULL, 0, -1, k, &len);
        ember_dataset *rows =
            arg ? ember_map_partitions(ember_kafka_topic(p->ctx, em_lookup_topic(c)),
                                       ember_flow_step, arg, len)
                : NULL;
        free(arg);
        ds = rows ? ember_cogroup(step_to(p, k, -1), rows, c->partitions) : NULL;
    } else
        ds = ember_cache(step_to(p, k, -1));
    return p->made[k] = ds;
}

/* sink_dataset: what sink k writes (the records failing in the node of its error edge, if any) */
static ember_dataset *sink_dataset(plan *p, int k)
{
    int errors_of = -1;
    for (int j = 0; j < p->f->n; j++)
        if (p->f->nodes[j].errors_to == k) errors_of = j;
    return step_to(p, k, errors_of);
}

/* start_query starts the query of sink k of a streaming flow: named FLOW-SINK, its checkpoint
 * in CHECKPOINT/SINK */
static int start_query(plan *p, int k, ember_query **query)
{
    const em_flow_node *n = &p->f->nodes[k];
    char name[2 * EM_FLOW_ID_MAX + 2], checkpoint[4096];
    snprintf(name, sizeof name, "%s-%s", p->f->name, n->id);
    snprintf(checkpoint, sizeof checkpoint, "%s/%s", p->f->checkpoint, n->id);
    ember_query_options q = {
        .name = name, .checkpoint = checkpoint, .interval_ms = p->f->interval_ms};
    ember_dataset *ds = sink_dataset(p, k);
    int rc;
    if (!ds) return EMBER_ERR_NOMEM;
    if (n->kind == EM_N_KAFKA_SINK)
        rc = ember_stream_to_kafka(ds, n->compiled->target, &q, query);
    else if (n->kind == EM_N_FILES_SINK)
        rc = ember_stream_to_files(ds, n->compiled->target, &q, query);
    else {
        ember_redis_options o;
        em_sink_redis_options(n->compiled, &o);
        rc = ember_stream_to_redis(ds, &o, &q, query);
    }
    if (rc == EMBER_OK)
        printf("query %s started (sink %s, %s)\n", name, n->id, em_flow_kind_name(n->kind));
    else
        fprintf(stderr, "ember-flow: query %s: %s\n", name, ember_last_error(p->ctx));
    fflush(stdout);
    return rc;
}

/* first_sink: the sink written first in the document (the nodes are kept in topological
 * order, which may put another first) */
static int first_sink(const em_flow *f)
{
    json_t *node;
    size_t i;
    json_array_foreach(json_object_get(f->doc, "nodes"), i, node)
    {
        int k = em_flow_find(f, json_string_value(json_object_get(node, "id")));
        if (k >= 0 && em_flow_is_sink(f->nodes[k].kind)) return k;
    }
    return -1;
}

static void print_counters(plan *p, ember_query **q, int nq);

/* run_queries starts a query per sink, the document's first sink's first, then waits for that
 * one to end (stopped: ember-flow --stop FLOW-SINK) and stops the others; detached queries
 * (ember-flow run --detach) are left running */
static int run_queries(plan *p)
{
    ember_query *q[EM_FLOW_NODES_MAX];
    int n = 0, rc = EMBER_OK, first_k = first_sink(p->f);
    if (first_k >= 0 && (rc = start_query(p, first_k, &q[0])) == EMBER_OK) n++;
    for (int k = 0; k < p->f->n && rc == EMBER_OK; k++)
        if (k != first_k && em_flow_is_sink(p->f->nodes[k].kind) &&
            (rc = start_query(p, k, &q[n])) == EMBER_OK)
            n++;
    if (rc == EMBER_OK && n > 0) rc = ember_query_await(q[0], -1);
    ember_query_progress first_state;
    if (rc == EMBER_OK && n > 0 && ember_query_status(q[0], &first_state) == EMBER_OK &&
        first_state.running) { /* detached (ember-flow run --detach): they run on */
        printf("flow %s: its %d queries run detached on the driver\n", p->f->name, n);
        p->detached = 1;
        return EMBER_OK;
    }
    int first = rc == EMBER_OK ? 1 : 0; /* a query that could not start: stop them all */
    for (int i = first; i < n; i++) ember_query_stop(q[i]);
    for (int i = first; i < n; i++)
        if (ember_query_await(q[i], -1) != EMBER_OK && rc == EMBER_OK) rc = EMBER_ERR_JOB_FAILED;
    if (rc == EMBER_OK) print_counters(p, q, n); /* what they did since they started */
    return rc;
}

/* run_sink runs the action of sink k; prints what it wrote */
static int run_sink(plan *p, int k)
{
    const em_flow_node *n = &p->f->nodes[k];
    ember_dataset *ds = sink_dataset(p, k);
    int64_t written = 0;
    int rc;
    if (!ds) return EMBER_ERR_NOMEM;
    if (n->kind == EM_N_KAFKA_SINK)
        rc = ember_save_kafka(ds, em_sink_target(n->compiled), &written);
    else if (n->kind == EM_N_FILES_SINK)
        rc = ember_save_text(ds, em_sink_target(n->compiled), &written);
    else {
        ember_redis_options o;
        em_sink_redis_options(n->compiled, &o);
        rc = ember_save_redis(ds, &o, &written);
    }
    if (rc == EMBER_OK)
        printf("sink %s (%s): %lld records%s%s\n", n->id, em_flow_kind_name(n->kind),
               (long long)written, em_sink_target(n->compiled) ? " to " : "",
               em_sink_target(n->compiled) ? em_sink_target(n->compiled) : "");
    return rc;
}

/* counter: a node counter's total: the job's accumulator (a batch flow), or the furthest of
 * the queries' that run the node (a streaming flow: each reads the same records) */
static int64_t counter(plan *p, ember_query **q, int nq, const char *name)
{
    int64_t v = nq ? 0 : ember_accumulator(p->ctx, name);
    for (int i = 0; i < nq; i++) {
        int64_t got = ember_query_accumulator(q[i], name);
        if (got > v) v = got;
    }
    return v;
}

/* print_counters prints each node's records in, out and failed, and its time (sampled), from
 * the job's accumulators, or those of the queries q (nq of them) */
static void print_counters(plan *p, ember_query **q, int nq)
{
    printf("%-24s %-12s %12s %12s %12s %10s\n", "node", "type", "in", "out", "failed", "ms");
    for (int k = 0; k < p->f->n; k++) {
        const em_flow_node *n = &p->f->nodes[k];
        if (em_flow_is_source(n->kind) || em_flow_is_sink(n->kind) || n->kind == EM_N_AGGREGATE)
            continue;
        int64_t v[EM_FLOW_COUNTERS];
        for (int w = 0; w < EM_FLOW_COUNTERS; w++) {
            char name[64];
            em_flow_counter_name(name, sizeof name, n->id, w);
            v[w] = counter(p, q, nq, name);
        }
        printf("%-24s %-12s %12lld %12lld %12lld %10.1f\n", n->id, em_flow_kind_name(n->kind),
               (long long)v[0], (long long)v[1], (long long)v[2], (double)v[3] / 1000.0);
    }
}

/* describe attaches the flow's graph to its jobs and queries (ember_describe_job): the status
 * page draws it with the per-node counts of each job (docs/status-api.md) */
static void describe(ember_ctx *ctx, const em_flow *f)
{
    json_t *nodes = json_array();
    for (int k = 0; k < f->n && nodes; k++) {
        const em_flow_node *n = &f->nodes[k];
        char what[256];
        em_node_describe(n->compiled, what, sizeof what);
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:b}", "id", n->id, "type", em_flow_kind_name(n->kind),
                      "what", what, "sink", em_flow_is_sink(n->kind));
        if (o && n->input >= 0) json_object_set_new(o, "input", json_string(f->nodes[n->input].id));
        if (o && n->errors_to >= 0)
            json_object_set_new(o, "errors_to", json_string(f->nodes[n->errors_to].id));
        for (int j = 0; o && j < f->n; j++) /* an error sink's depth follows its first source */
            if (f->nodes[j].errors_to == k && !json_object_get(o, "errors_from"))
                json_object_set_new(o, "errors_from", json_string(f->nodes[j].id));
        json_array_append_new(nodes, o);
    }
    json_t *d = json_pack("{s:{s:s, s:b, s:o}}", "flow", "name", f->name, "streaming", f->streaming,
                          "nodes", nodes);
    char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
    if (!text || ember_describe_job(ctx, text) != EMBER_OK)
        fprintf(stderr, "ember-flow: the flow's graph is not shown on the status page (%s)\n",
                text ? ember_last_error(ctx) : "out of memory");
    free(text);
    json_decref(d);
}

int ember_flow_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o =
        ember_opts_new(ctx, argc, argv, "ember_flow.so -- --flow FILE [--checkpoint DIR]");
    const char *path = ember_opt_str(o, "--flow", NULL);
    const char *checkpoint = ember_opt_str(o, "--checkpoint", NULL);
    if (ember_opts_check(o) != EMBER_OK || !path) return 2;
    size_t len = 0;
    char err[2048], *text = em_flow_read(path, checkpoint, &len, err, sizeof err);
    if (!text) {
        fprintf(stderr, "ember-flow: %s\n", err);
        return 2;
    }
    em_flow *f = em_flow_load(text, len, err, sizeof err);
    if (!f) {
        fprintf(stderr, "ember-flow: %s: %s\n", path, err);
        free(text);
        return 2;
    }
    ember_set_job_name(ctx, f->name);
    describe(ctx, f);
    plan p = {.ctx = ctx, .f = f, .text = text, .text_len = len};
    int rc = EMBER_OK;
    if (f->streaming) rc = run_queries(&p);
    for (int k = 0; k < f->n && rc == EMBER_OK && !f->streaming; k++)
        if (em_flow_is_sink(f->nodes[k].kind)) rc = run_sink(&p, k);
    if (rc == EMBER_OK && !f->streaming) print_counters(&p, NULL, 0);
    if (rc == EMBER_OK && f->streaming && !p.detached)
        printf("flow %s: its queries stopped\n", f->name);
    em_flow_free(f);
    free(text);
    return rc == EMBER_OK ? 0 : 1;
}
