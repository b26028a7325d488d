/* em_job_actions.c -- the actions of the public API: cut the graph an action needs out of the
 * context, resolve its Kafka sources, and hand it to the context's runner.
 *
 * Lives beside em_job_api.c and shares its private context layout through em_job_ctx.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "em_batch.h"
#include "em_graph.h"
#include "em_job_ctx.h"

/* subgraph: the nodes one action needs, renumbered parents first; copies are shallow. */
typedef struct subgraph {
    Ember__Node *copies; /* node structs, shallow copies of the context's nodes */
    Ember__Node **nodes; /* pointers into copies, for the JobGraph */
    uint32_t *parents;   /* renumbered parent ids, one slot per original parent */
    size_t n;
    int uses_data; /* has a parallelize node */
} subgraph;

static void subgraph_free(subgraph *sg)
{
    free(sg->copies);
    free(sg->nodes);
    free(sg->parents);
}

/* subgraph_cut copies the ancestors of `target` (itself included), renumbered. */
static int subgraph_cut(ember_ctx *ctx, uint32_t target, subgraph *sg, uint32_t *new_target)
{
    size_t total = ctx->n_nodes, n_parents = 0;
    uint32_t *new_id = malloc(total * sizeof *new_id);
    char *needed = calloc(total, 1);
    int rc = EMBER_ERR_NOMEM;
    if (!new_id || !needed) goto out;
    needed[target] = 1;
    for (size_t i = target + 1; i-- > 0;) {
        if (!needed[i]) continue;
        for (size_t p = 0; p < ctx->nodes[i]->n_parents; p++) needed[ctx->nodes[i]->parents[p]] = 1;
        n_parents += ctx->nodes[i]->n_parents;
    }
    size_t n = 0;
    for (size_t i = 0; i <= target; i++) n += needed[i];
    sg->copies = calloc(n, sizeof *sg->copies);
    sg->nodes = calloc(n, sizeof *sg->nodes);
    sg->parents = calloc(n_parents + 1, sizeof *sg->parents);
    if (!sg->copies || !sg->nodes || !sg->parents) goto out;
    uint32_t *next_parent = sg->parents;
    for (size_t i = 0; i <= target; i++) {
        if (!needed[i]) continue;
        Ember__Node *copy = &sg->copies[sg->n];
        *copy = *ctx->nodes[i];
        new_id[i] = copy->id = (uint32_t)sg->n;
        copy->parents = next_parent;
        for (size_t p = 0; p < copy->n_parents; p++)
            copy->parents[p] = new_id[ctx->nodes[i]->parents[p]];
        next_parent += copy->n_parents;
        if (copy->kind == EMBER__NODE_KIND__NODE_PARALLELIZE) sg->uses_data = 1;
        sg->nodes[sg->n++] = copy;
    }
    *new_target = new_id[target];
    rc = EMBER_OK;
out:
    free(new_id);
    free(needed);
    return rc;
}

/* resolve_sources asks the runner for the offset ranges of whole-topic Kafka sources. */
static int resolve_sources(ember_ctx *ctx, subgraph *sg)
{
    char why[1024];
    for (size_t i = 0; i < sg->n; i++) {
        Ember__Node *n = &sg->copies[i];
        if (n->kind != EMBER__NODE_KIND__NODE_KAFKA) continue;
        if (!n->bootstrap[0])
            return em_ctx_fail(ctx, EMBER_ERR_INVALID,
                               "kafka source '%s': no broker known; give ember-submit --kafka "
                               "host:port or start the driver with --kafka",
                               n->topic);
        if (n->n_ranges > 0) continue;
        if (!ctx->runner.resolve_kafka)
            return em_ctx_fail(ctx, EMBER_ERR_STATE, "kafka sources resolve only in ember-submit");
        int rc = ctx->runner.resolve_kafka(ctx->runner.arg, n, why, sizeof why);
        if (rc != EMBER_OK) return em_ctx_fail(ctx, rc, "kafka source '%s': %s", n->topic, why);
    }
    return EMBER_OK;
}

static void release_resolved(ember_ctx *ctx, subgraph *sg)
{
    for (size_t i = 0; i < sg->n; i++) {
        Ember__Node *n = &sg->copies[i];
        if (n->kind != EMBER__NODE_KIND__NODE_KAFKA) continue;
        int owned = 1; /* ranges that the context's own node does not hold */
        for (size_t j = 0; j < ctx->n_nodes; j++)
            if (ctx->nodes[j]->ranges == n->ranges) owned = 0;
        if (!owned) continue;
        for (size_t r = 0; r < n->n_ranges; r++) free(n->ranges[r]);
        free(n->ranges);
    }
}

/* run_action runs `action` on ds; the outcome lands in ctx->last. */
static int run_action(ember_dataset *ds, Ember__Action *action)
{
    if (!ds || !ds->ctx) return EMBER_ERR_INVALID;
    ember_ctx *ctx = ds->ctx;
    if (ds->failed) return ctx->error_code ? ctx->error_code : EMBER_ERR_INVALID;
    if (!ctx->runner.run)
        return em_ctx_fail(ctx, EMBER_ERR_STATE,
                           "actions run only in ember-submit, not inside a task");
    subgraph sg = {0};
    uint32_t target = 0;
    int rc = subgraph_cut(ctx, ds->node, &sg, &target);
    if (rc != EMBER_OK) {
        subgraph_free(&sg);
        return em_ctx_fail(ctx, rc, "out of memory preparing the job graph");
    }
    if ((rc = resolve_sources(ctx, &sg)) == EMBER_OK) {
        Ember__JobGraph g = EMBER__JOB_GRAPH__INIT;
        g.n_nodes = sg.n;
        g.nodes = sg.nodes;
        g.target = target;
        g.action = action;
        g.library_sha256.data = ctx->sha256;
        g.library_sha256.len = 32;
        g.library_name = (char *)ctx->lib_name;
        em_buf no_data = {0};
        em_buf_free(&ctx->last.batches);
        memset(&ctx->last, 0, sizeof ctx->last);
        char why[1024] = "";
        rc = ctx->runner.run(ctx->runner.arg, &g, ctx->job_name,
                             sg.uses_data ? &ctx->data : &no_data, &ctx->last, why, sizeof why);
        if (rc != EMBER_OK) {
            em_ctx_fail(ctx, rc, "%s", why);
        } else {
            ctx->actions++;
            ctx->total.records_in += ctx->last.records_in;
            ctx->total.records_out += ctx->last.records_out;
            ctx->total.tasks += ctx->last.tasks;
            ctx->total.stages += ctx->last.stages;
            ctx->total.duration_us += ctx->last.duration_us;
        }
    }
    release_resolved(ctx, &sg);
    subgraph_free(&sg);
    return rc;
}

int ember_count(ember_dataset *ds, int64_t *count)
{
    Ember__Action a = EMBER__ACTION__INIT;
    a.kind = EMBER__ACTION_KIND__ACTION_COUNT;
    int rc = run_action(ds, &a);
    if (rc == EMBER_OK && count) *count = ds->ctx->last.records_out;
    return rc;
}

int ember_collect(ember_dataset *ds, ember_collected *out)
{
    Ember__Action a = EMBER__ACTION__INIT;
    a.kind = EMBER__ACTION_KIND__ACTION_COLLECT;
    int rc = run_action(ds, &a);
    if (rc != EMBER_OK) return rc;
    ember_ctx *ctx = ds->ctx;
    collected *c = calloc(1, sizeof *c);
    int64_t n = 0;
    if (!c) return em_ctx_fail(ctx, EMBER_ERR_NOMEM, "collect: out of memory");
    c->batches = ctx->last.batches;
    memset(&ctx->last.batches, 0, sizeof ctx->last.batches);
    c->next = ctx->results;
    ctx->results = c;
    if (em_batch_count(c->batches.data, c->batches.len, &n) != EMBER_OK)
        return em_ctx_fail(ctx, EMBER_ERR_MALFORMED, "collect: result batches are corrupt");
    if (n > 0 && !(c->records = malloc((size_t)n * sizeof *c->records)))
        return em_ctx_fail(ctx, EMBER_ERR_NOMEM, "collect: out of memory for %lld records",
                           (long long)n);
    size_t i = 0, off = 0;
    while (off < c->batches.len) {
        em_batch_reader r;
        size_t used;
        em_batch_open(c->batches.data + off, c->batches.len - off, &r, &used);
        while (i < (size_t)n && em_batch_next(&r, &c->records[i]) > 0) i++;
        off += used;
    }
    if (i != (size_t)n)
        return em_ctx_fail(ctx, EMBER_ERR_MALFORMED, "collect: result batches are corrupt");
    if (out) {
        out->records = c->records;
        out->n = i;
    }
    return EMBER_OK;
}

static int save_action(ember_dataset *ds, Ember__ActionKind kind, const char *where,
                       int64_t *written)
{
    if (!ds || !ds->ctx) return EMBER_ERR_INVALID;
    if (!where || !where[0])
        return em_ctx_fail(ds->ctx, EMBER_ERR_INVALID, "%s: missing destination",
                           em_action_kind_name(kind));
    Ember__Action a = EMBER__ACTION__INIT;
    char abs_path[PATH_MAX];
    a.kind = kind;
    if (kind == EMBER__ACTION_KIND__ACTION_SAVE_KAFKA) {
        a.topic = (char *)where;
        a.bootstrap = ds->ctx->kafka;
        if (!a.bootstrap[0])
            return em_ctx_fail(ds->ctx, EMBER_ERR_INVALID,
                               "save_kafka '%s': no broker known; give ember-submit --kafka",
                               where);
    } else if (where[0] == '/') {
        a.path = (char *)where;
    } else { /* executors run elsewhere: make the directory absolute */
        if (!getcwd(abs_path, sizeof abs_path - 1 - strlen(where)) ||
            strlen(abs_path) + 1 + strlen(where) >= sizeof abs_path)
            return em_ctx_fail(ds->ctx, EMBER_ERR_INVALID, "save_text: path too long");
        strcat(abs_path, "/");
        strcat(abs_path, where);
        a.path = abs_path;
    }
    int rc = run_action(ds, &a);
    if (rc == EMBER_OK && written) *written = ds->ctx->last.records_out;
    return rc;
}

int ember_save_kafka(ember_dataset *ds, const char *topic, int64_t *written)
{
    return save_action(ds, EMBER__ACTION_KIND__ACTION_SAVE_KAFKA, topic, written);
}

int ember_save_text(ember_dataset *ds, const char *dir, int64_t *written)
{
    return save_action(ds, EMBER__ACTION_KIND__ACTION_SAVE_TEXT, dir, written);
}
