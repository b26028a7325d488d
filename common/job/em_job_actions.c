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
    uint32_t *orig;      /* the context's node id of each copy */
    size_t n;
    int uses_data; /* has a parallelize node */
} subgraph;

static void subgraph_free(subgraph *sg)
{
    free(sg->copies);
    free(sg->nodes);
    free(sg->parents);
    free(sg->orig);
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
    sg->orig = calloc(n, sizeof *sg->orig);
    if (!sg->copies || !sg->nodes || !sg->parents || !sg->orig) goto out;
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
        sg->orig[sg->n] = (uint32_t)i;
        sg->nodes[sg->n++] = copy;
    }
    *new_target = new_id[target];
    rc = EMBER_OK;
out:
    free(new_id);
    free(needed);
    return rc;
}

/* feeds_persisted marks the context's nodes that a persisted node depends on (itself
 * included); returns NULL without memory. */
static uint8_t *feeds_persisted(const ember_ctx *ctx)
{
    uint8_t *mark = calloc(ctx->n_nodes + 1, 1);
    for (size_t i = ctx->n_nodes; mark && i-- > 0;) {
        const Ember__Node *n = ctx->nodes[i];
        if (n->storage != EMBER__STORAGE_LEVEL__STORAGE_NONE) mark[i] = 1;
        for (size_t p = 0; mark[i] && p < n->n_parents; p++) mark[n->parents[p]] = 1;
    }
    return mark;
}

/* reads_stream: the cut graph has a Kafka stream source */
static int reads_stream(const subgraph *sg)
{
    for (size_t i = 0; i < sg->n; i++)
        if (sg->copies[i].kind == EMBER__NODE_KIND__NODE_KAFKA_STREAM) return 1;
    return 0;
}

/* resolve_sources asks the runner for the offset ranges of whole-topic Kafka sources. The
 * ranges of a source that a persisted dataset depends on are kept in the context's node, so
 * every action reads the same offsets (and finds the same cached partitions). */
static int resolve_sources(ember_ctx *ctx, subgraph *sg)
{
    char why[1024];
    uint8_t *pinned = feeds_persisted(ctx);
    if (!pinned) return em_ctx_fail(ctx, EMBER_ERR_NOMEM, "out of memory resolving sources");
    for (size_t i = 0; i < sg->n; i++) {
        Ember__Node *n = &sg->copies[i];
        if (n->kind != EMBER__NODE_KIND__NODE_KAFKA) continue;
        int rc = EMBER_OK;
        if (!n->bootstrap[0])
            rc = em_ctx_fail(ctx, EMBER_ERR_INVALID,
                             "kafka source '%s': no broker known; give ember-submit --kafka "
                             "host:port or start the driver with --kafka",
                             n->topic);
        else if (n->n_ranges == 0 && !ctx->runner.resolve_kafka)
            rc = em_ctx_fail(ctx, EMBER_ERR_STATE, "kafka sources resolve only in ember-submit");
        if (rc != EMBER_OK) {
            free(pinned);
            return rc;
        }
        if (n->n_ranges > 0) continue;
        rc = ctx->runner.resolve_kafka(ctx->runner.arg, n, why, sizeof why);
        if (rc != EMBER_OK) {
            free(pinned);
            return em_ctx_fail(ctx, rc, "kafka source '%s': %s", n->topic, why);
        }
        if (pinned[sg->orig[i]]) { /* the context's node owns the ranges from now on */
            ctx->nodes[sg->orig[i]]->ranges = n->ranges;
            ctx->nodes[sg->orig[i]]->n_ranges = n->n_ranges;
        }
    }
    free(pinned);
    return EMBER_OK;
}

/* default_partitions gives each wide node made with 0 partitions the partition count of its
 * parent (the larger of two parents', as Spark's default partitioner), in the copy and in the
 * context's node: every later action of the job keeps that count. Runs once the sources are
 * resolved (a Kafka source's count is its topic's); a stream's count is only known batch by
 * batch, so a wide node over a stream needs its own. */
static int default_partitions(ember_ctx *ctx, subgraph *sg)
{
    Ember__JobGraph g;
    ember__job_graph__init(&g);
    g.n_nodes = sg->n;
    g.nodes = sg->nodes;
    char *on_stream = calloc(sg->n + 1, 1); /* the node reads a stream, through its parents */
    if (!on_stream) return em_ctx_fail(ctx, EMBER_ERR_NOMEM, "out of memory");
    int rc = EMBER_OK;
    for (size_t i = 0; rc == EMBER_OK && i < sg->n; i++) { /* parents come first */
        Ember__Node *n = &sg->copies[i];
        on_stream[i] = n->kind == EMBER__NODE_KIND__NODE_KAFKA_STREAM;
        uint32_t parts = 0;
        for (size_t p = 0; p < n->n_parents; p++) {
            on_stream[i] |= on_stream[n->parents[p]];
            uint32_t of_parent = em_node_is_wide(n->kind) && !n->partitions
                                     ? em_node_partitions(&g, n->parents[p])
                                     : 0;
            if (of_parent > parts) parts = of_parent;
        }
        if (!em_node_is_wide(n->kind) || n->partitions) continue;
        if (parts == 0 || on_stream[i])
            rc = em_ctx_fail(ctx, EMBER_ERR_INVALID,
                             "%s over a stream: 0 partitions (the parent's count) is not known "
                             "before the stream runs; give a partition count",
                             em_node_kind_name(n->kind));
        else
            n->partitions = ctx->nodes[sg->orig[i]]->partitions =
                parts < EM_GRAPH_MAX_PARTITIONS ? parts : EM_GRAPH_MAX_PARTITIONS;
    }
    free(on_stream);
    return rc;
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

/* ---- sort_by_key's range bounds ---------------------------------------------------------- */

static int by_key(const void *x, const void *y)
{
    const ember_record *a = x, *b = y;
    return em_key_compare(a->key, a->key_len, b->key, b->key_len);
}

/* pick_bounds keeps up to partitions - 1 increasing keys at even ranks of the sorted sample
 * in node (and in the context's node it copies, so later actions reuse them). */
static int pick_bounds(Ember__Node *ctx_node, Ember__Node *copy, ember_record *keys, size_t n)
{
    uint32_t parts = ctx_node->partitions;
    if (n > 1) qsort(keys, n, sizeof *keys, by_key); /* keys is NULL when n is 0 */
    ProtobufCBinaryData *bounds = calloc(parts, sizeof *bounds);
    if (!bounds) return EMBER_ERR_NOMEM;
    size_t nb = 0;
    for (uint32_t b = 1; n > 0 && b < parts; b++) {
        const ember_record *k = &keys[(size_t)((uint64_t)b * n / parts)];
        if (nb > 0 &&
            em_key_compare(bounds[nb - 1].data, bounds[nb - 1].len, k->key, k->key_len) >= 0)
            continue; /* skewed sample: fewer, distinct bounds */
        if (!(bounds[nb].data = malloc(k->key_len ? k->key_len : 1))) break;
        memcpy(bounds[nb].data, k->key, k->key_len);
        bounds[nb++].len = k->key_len;
    }
    ctx_node->sort_bounds = copy->sort_bounds = bounds;
    ctx_node->n_sort_bounds = copy->n_sort_bounds = nb;
    return EMBER_OK;
}

/* sample_for_sort runs a job that samples the keys of the parent of sort node sg->copies[i]
 * and sets its bounds. The sample job graph is the action's nodes before i plus a sampler. */
static int sample_for_sort(ember_ctx *ctx, subgraph *sg, size_t i)
{
    Ember__Node *sort = &sg->copies[i];
    Ember__Node sampler = EMBER__NODE__INIT;
    Ember__Node **nodes = malloc((i + 1) * sizeof *nodes);
    if (!nodes) return em_ctx_fail(ctx, EMBER_ERR_NOMEM, "sort_by_key: out of memory");
    memcpy(nodes, sg->nodes, i * sizeof *nodes);
    nodes[i] = &sampler;
    Ember__JobGraph g = EMBER__JOB_GRAPH__INIT;
    Ember__Action collect = EMBER__ACTION__INIT;
    collect.kind = EMBER__ACTION_KIND__ACTION_COLLECT;
    g.n_nodes = i + 1;
    g.nodes = nodes;
    g.target = (uint32_t)i;
    g.action = &collect;
    g.library_sha256.data = ctx->sha256;
    g.library_sha256.len = 32;
    g.library_name = (char *)ctx->lib_name;
    /* as Spark does: 20 keys per output partition in all, oversampled 3x across inputs */
    uint64_t total = 20ull * sort->partitions, inputs = em_node_partitions(&g, sort->parents[0]);
    if (total > 1000000) total = 1000000;
    uint32_t per_partition = (uint32_t)((3 * total + inputs - 1) / (inputs ? inputs : 1));
    uint8_t arg[4];
    for (int b = 0; b < 4; b++) arg[b] = (uint8_t)(per_partition >> (8 * b));
    sampler.id = (uint32_t)i;
    sampler.kind = EMBER__NODE_KIND__NODE_MAP_PARTITIONS;
    sampler.n_parents = 1;
    sampler.parents = sort->parents;
    sampler.fn_symbol = "ember_builtin_sample_keys";
    sampler.fn_arg.data = arg;
    sampler.fn_arg.len = sizeof arg;
    em_job_outcome sample = {0};
    em_buf no_data = {0};
    char name[sizeof ctx->job_name + 32], why[1024] = "";
    snprintf(name, sizeof name, "%s (sort sample)", ctx->job_name);
    int rc = ctx->runner.run(ctx->runner.arg, &g, name, sg->uses_data ? &ctx->data : &no_data,
                             &sample, why, sizeof why);
    free(nodes);
    if (rc != EMBER_OK) return em_ctx_fail(ctx, rc, "sort_by_key sampling: %s", why);
    int64_t n = 0;
    ember_record *keys = NULL;
    rc = em_batch_count(sample.batches.data, sample.batches.len, &n);
    if (rc == EMBER_OK && n > 0 && !(keys = malloc((size_t)n * sizeof *keys))) rc = EMBER_ERR_NOMEM;
    size_t got = 0;
    for (size_t off = 0; rc == EMBER_OK && off < sample.batches.len;) {
        em_batch_reader r;
        size_t used;
        em_batch_open(sample.batches.data + off, sample.batches.len - off, &r, &used);
        while (got < (size_t)n && em_batch_next(&r, &keys[got]) > 0) got++;
        off += used;
    }
    if (rc == EMBER_OK) rc = pick_bounds(ctx->nodes[sg->orig[i]], sort, keys, got);
    free(keys);
    em_buf_free(&sample.batches);
    return rc == EMBER_OK ? rc
                          : em_ctx_fail(ctx, rc, "sort_by_key sampling: %s", ember_strerror(rc));
}

/* choose_sort_bounds samples for every sort_by_key of the action that has no bounds yet,
 * parents first (a sort's sample job may contain an earlier sort, bounded by then). */
static int choose_sort_bounds(ember_ctx *ctx, subgraph *sg)
{
    for (size_t i = 0; i < sg->n; i++) {
        Ember__Node *n = &sg->copies[i];
        if (n->kind != EMBER__NODE_KIND__NODE_SORT_BY_KEY || n->partitions < 2 ||
            ctx->nodes[sg->orig[i]]->sort_bounds)
            continue;
        int rc = sample_for_sort(ctx, sg, i);
        if (rc != EMBER_OK) return rc;
    }
    return EMBER_OK;
}

/* graph_of makes the JobGraph of an action over a cut subgraph (pointers into sg and ctx). */
static void graph_of(ember_ctx *ctx, subgraph *sg, uint32_t target, Ember__Action *action,
                     Ember__JobGraph *g)
{
    ember__job_graph__init(g);
    g->n_nodes = sg->n;
    g->nodes = sg->nodes;
    g->target = target;
    g->action = action;
    g->library_sha256.data = ctx->sha256;
    g->library_sha256.len = 32;
    g->library_name = (char *)ctx->lib_name;
    g->description = ctx->description ? ctx->description : "";
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
    int ran = 0, rc = subgraph_cut(ctx, ds->node, &sg, &target);
    if (rc != EMBER_OK) {
        subgraph_free(&sg);
        return em_ctx_fail(ctx, rc, "out of memory preparing the job graph");
    }
    if (reads_stream(&sg))
        rc = em_ctx_fail(ctx, EMBER_ERR_INVALID,
                         "%s on a stream: a stream runs as a query, started by "
                         "ember_stream_to_files or ember_stream_to_kafka",
                         em_action_kind_name(action->kind));
    if (rc == EMBER_OK && (rc = resolve_sources(ctx, &sg)) == EMBER_OK &&
        (rc = default_partitions(ctx, &sg)) == EMBER_OK &&
        (rc = choose_sort_bounds(ctx, &sg)) == EMBER_OK) {
        Ember__JobGraph g;
        graph_of(ctx, &sg, target, action, &g);
        em_buf no_data = {0};
        em_buf_free(&ctx->last.batches);
        em_accs_free(&ctx->last.accs);
        memset(&ctx->last, 0, sizeof ctx->last);
        char why[1024] = "";
        ran = 1;
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
            for (size_t k = 0; rc == EMBER_OK && k < ctx->last.accs.n; k++) {
                const em_acc *a = &ctx->last.accs.v[k];
                if (em_accs_add(&ctx->accs, a->name, a->is_f64, a->i64, a->f64, 1) != EMBER_OK)
                    rc = em_ctx_fail(ctx, EMBER_ERR_INVALID,
                                     "accumulator '%s': added to as an int64 and as a double",
                                     a->name);
            }
        }
    }
    if (rc != EMBER_OK && !ran && ctx->runner.submit_failed) /* the driver lists it */
        ctx->runner.submit_failed(ctx->runner.arg, ctx->job_name, em_action_kind_name(action->kind),
                                  ember_last_error(ctx));
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

/* absolute: path made absolute against the working directory (executors and the driver run
 * elsewhere) into buf; NULL if too long */
static const char *absolute(const char *path, char buf[PATH_MAX])
{
    if (path[0] == '/') return path;
    if (!getcwd(buf, PATH_MAX - 1 - strlen(path)) || strlen(buf) + 1 + strlen(path) >= PATH_MAX)
        return NULL;
    strcat(buf, "/");
    strcat(buf, path);
    return buf;
}

/* sink_action fills a: a save_kafka to topic `where`, or a save_text to directory `where` */
static int sink_action(ember_ctx *ctx, Ember__ActionKind kind, const char *where,
                       char abs_path[PATH_MAX], Ember__Action *a)
{
    a->kind = kind;
    if (kind == EMBER__ACTION_KIND__ACTION_SAVE_KAFKA) {
        a->topic = (char *)where;
        a->bootstrap = ctx->kafka;
        if (!a->bootstrap[0])
            return em_ctx_fail(ctx, EMBER_ERR_INVALID,
                               "save_kafka '%s': no broker known; give ember-submit --kafka",
                               where);
    } else if (!(a->path = (char *)absolute(where, abs_path))) {
        return em_ctx_fail(ctx, EMBER_ERR_INVALID, "save_text: path too long");
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
    int rc = sink_action(ds->ctx, kind, where, abs_path, &a);
    if (rc == EMBER_OK) rc = run_action(ds, &a);
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

/* redis_action builds the save_redis action of o (strings borrowed from o or the
 * environment) */
static int redis_action(ember_ctx *ctx, const char *what, const ember_redis_options *o,
                        Ember__Action *a)
{
    const char *address = o && o->address ? o->address : getenv("EMBER_REDIS");
    const char *password = o && o->password ? o->password : getenv("EMBER_REDIS_PASSWORD");
    if (!o || !address || !address[0] || o->db < 0 || o->ttl_ms < 0 ||
        o->command < EMBER_REDIS_SET || o->command > EMBER_REDIS_ZADD)
        return em_ctx_fail(ctx, EMBER_ERR_INVALID,
                           "%s: a server address (or EMBER_REDIS), a command "
                           "(EMBER_REDIS_SET, _HSET, _ZADD), and no negative db or ttl_ms",
                           what);
    a->kind = EMBER__ACTION_KIND__ACTION_SAVE_REDIS;
    a->redis_address = (char *)address;
    a->redis_db = (uint32_t)o->db;
    a->redis_password = (char *)(password ? password : "");
    a->redis_command = (Ember__RedisCommand)o->command;
    a->redis_ttl_ms = o->ttl_ms;
    return EMBER_OK;
}

int ember_save_redis(ember_dataset *ds, const ember_redis_options *o, int64_t *written)
{
    if (!ds || !ds->ctx) return EMBER_ERR_INVALID;
    Ember__Action a = EMBER__ACTION__INIT;
    int rc = redis_action(ds->ctx, "save_redis", o, &a);
    if (rc == EMBER_OK) rc = run_action(ds, &a);
    if (rc == EMBER_OK && written) *written = ds->ctx->last.records_out;
    return rc;
}

size_t ember_redis_fields(void *buf, size_t cap, size_t n, const char *const *fields,
                          const char *const *values)
{
    uint8_t *out = buf;
    size_t len = 0;
    for (size_t i = 0; i < 2 * n; i++) { /* field, value, field, value... */
        const char *s = i % 2 ? values[i / 2] : fields[i / 2];
        size_t sl = strlen(s);
        if (sl > UINT32_MAX || cap - len < 4 + sl || len + 4 + sl < len) return 0;
        em_put_u32le(out + len, (uint32_t)sl);
        memcpy(out + len + 4, s, sl);
        len += 4 + sl;
    }
    return len;
}

int ember_unpersist(ember_dataset *ds)
{
    if (!ds || !ds->ctx) return EMBER_ERR_INVALID;
    ember_ctx *ctx = ds->ctx;
    Ember__Node *node = ctx->nodes[ds->node];
    if (ds->failed || node->storage == EMBER__STORAGE_LEVEL__STORAGE_NONE) return EMBER_OK;
    subgraph sg = {0};
    uint32_t target = 0;
    int rc = subgraph_cut(ctx, ds->node, &sg, &target), computed = rc == EMBER_OK;
    for (size_t i = 0; computed && i < sg.n; i++) /* never computed: nothing is cached */
        computed = sg.copies[i].kind != EMBER__NODE_KIND__NODE_KAFKA || sg.copies[i].n_ranges > 0;
    if (computed && ctx->runner.unpersist) {
        Ember__JobGraph g;
        Ember__Action count = EMBER__ACTION__INIT;
        count.kind = EMBER__ACTION_KIND__ACTION_COUNT;
        graph_of(ctx, &sg, target, &count, &g);
        em_buf no_data = {0};
        char why[1024] = "";
        rc = ctx->runner.unpersist(ctx->runner.arg, &g, sg.uses_data ? &ctx->data : &no_data, why,
                                   sizeof why);
        if (rc != EMBER_OK) em_ctx_fail(ctx, rc, "unpersist: %s", why);
    }
    subgraph_free(&sg);
    node->storage = EMBER__STORAGE_LEVEL__STORAGE_NONE;
    return rc;
}

/* ---- starting a streaming query ---------------------------------------------------------- */

/* start_query starts a query of ds into the sink of action a (built by the caller, named
 * `sink` in messages) */
static int start_query(ember_dataset *ds, const char *sink, Ember__Action *a,
                       const ember_query_options *opts, ember_query **out)
{
    if (out) *out = NULL;
    if (!ds || !ds->ctx) return EMBER_ERR_INVALID;
    ember_ctx *ctx = ds->ctx;
    if (ds->failed) return ctx->error_code ? ctx->error_code : EMBER_ERR_INVALID;
    if (!opts || !opts->name || !opts->name[0] || !opts->checkpoint || !opts->checkpoint[0])
        return em_ctx_fail(ctx, EMBER_ERR_INVALID, "%s: a query needs a name and a checkpoint",
                           sink);
    if (opts->interval_ms != 0 && (opts->interval_ms < 10 || opts->interval_ms > 86400000))
        return em_ctx_fail(ctx, EMBER_ERR_INVALID,
                           "%s: query '%s': interval_ms %lld (10..86400000, 0: 1000)", sink,
                           opts->name, (long long)opts->interval_ms);
    if (!ctx->runner.start_query)
        return em_ctx_fail(ctx, EMBER_ERR_STATE, "queries start only in ember-submit");
    char abs_checkpoint[PATH_MAX];
    int rc = EMBER_OK;
    const char *checkpoint = absolute(opts->checkpoint, abs_checkpoint);
    if (rc == EMBER_OK && !checkpoint)
        rc = em_ctx_fail(ctx, EMBER_ERR_INVALID, "%s: checkpoint path too long", sink);
    if (rc != EMBER_OK) return rc;
    subgraph sg = {0};
    uint32_t target = 0;
    if ((rc = subgraph_cut(ctx, ds->node, &sg, &target)) != EMBER_OK) {
        subgraph_free(&sg);
        return em_ctx_fail(ctx, rc, "out of memory preparing the query's graph");
    }
    if (!reads_stream(&sg))
        rc = em_ctx_fail(ctx, EMBER_ERR_INVALID,
                         "%s: query '%s' reads no stream: its source is ember_kafka_stream", sink,
                         opts->name);
    if (rc == EMBER_OK) rc = resolve_sources(ctx, &sg); /* static topics: their offsets now */
    if (rc == EMBER_OK) rc = default_partitions(ctx, &sg);
    if (rc == EMBER_OK) {
        Ember__JobGraph g;
        graph_of(ctx, &sg, target, a, &g);
        char why[1024] = "";
        ember_query_options o = *opts;
        o.detach = o.detach || ctx->runner.detach_queries;
        rc = ctx->runner.start_query(ctx->runner.arg, &g, &o, checkpoint, why, sizeof why);
        if (rc != EMBER_OK) em_ctx_fail(ctx, rc, "query '%s': %s", opts->name, why);
    }
    release_resolved(ctx, &sg);
    subgraph_free(&sg);
    if (rc != EMBER_OK) return rc;
    ember_query *q = em_query_new(ctx, opts->name);
    if (!q) return em_ctx_fail(ctx, EMBER_ERR_NOMEM, "out of memory");
    if (out) *out = q;
    return EMBER_OK;
}

/* stream_to starts a query into files or a topic */
static int stream_to(ember_dataset *ds, Ember__ActionKind kind, const char *where,
                     const ember_query_options *opts, ember_query **query)
{
    const char *sink = kind == EMBER__ACTION_KIND__ACTION_SAVE_TEXT ? "ember_stream_to_files"
                                                                    : "ember_stream_to_kafka";
    if (query) *query = NULL;
    if (!ds || !ds->ctx) return EMBER_ERR_INVALID;
    if (!where || !where[0])
        return em_ctx_fail(ds->ctx, EMBER_ERR_INVALID, "%s: missing destination", sink);
    Ember__Action a = EMBER__ACTION__INIT;
    char abs_sink[PATH_MAX];
    int rc = sink_action(ds->ctx, kind, where, abs_sink, &a);
    return rc == EMBER_OK ? start_query(ds, sink, &a, opts, query) : rc;
}

int ember_stream_to_files(ember_dataset *ds, const char *dir, const ember_query_options *opts,
                          ember_query **query)
{
    return stream_to(ds, EMBER__ACTION_KIND__ACTION_SAVE_TEXT, dir, opts, query);
}

int ember_stream_to_kafka(ember_dataset *ds, const char *topic, const ember_query_options *opts,
                          ember_query **query)
{
    return stream_to(ds, EMBER__ACTION_KIND__ACTION_SAVE_KAFKA, topic, opts, query);
}

int ember_stream_to_redis(ember_dataset *ds, const ember_redis_options *redis,
                          const ember_query_options *opts, ember_query **query)
{
    if (query) *query = NULL;
    if (!ds || !ds->ctx) return EMBER_ERR_INVALID;
    Ember__Action a = EMBER__ACTION__INIT;
    int rc = redis_action(ds->ctx, "ember_stream_to_redis", redis, &a);
    return rc == EMBER_OK ? start_query(ds, "ember_stream_to_redis", &a, opts, query) : rc;
}
