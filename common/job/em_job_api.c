/* em_job_api.c -- datasets as graph nodes, and actions handed to a runner (see em_job_api.h).
 *
 * Invariants: ctx->nodes[i]->id == i and parents of a node precede it; a dataset whose
 * construction failed has failed = 1 and every dataset derived from it fails the same way.
 * The context owns nodes, datasets, parallelized data and collected results.
 */
#include "em_job_api.h"

#include <dlfcn.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_batch.h"
#include "em_combine.h"
#include "em_graph.h"
#include "em_job_ctx.h"
#include "em_log.h"
#include "em_text_file.h"

ember_ctx *em_ctx_new(void *lib, const char *lib_path, const uint8_t sha256[32],
                      const char *kafka_bootstrap, const em_job_runner *runner)
{
    ember_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->lib = lib;
    if (!realpath(lib_path, ctx->lib_path))
        snprintf(ctx->lib_path, sizeof ctx->lib_path, "%s", lib_path);
    const char *slash = strrchr(ctx->lib_path, '/');
    ctx->lib_name = slash ? slash + 1 : ctx->lib_path;
    memcpy(ctx->sha256, sha256, 32);
    snprintf(ctx->kafka, sizeof ctx->kafka, "%s", kafka_bootstrap ? kafka_bootstrap : "");
    if (runner) ctx->runner = *runner;
    snprintf(ctx->job_name, sizeof ctx->job_name, "%s", ctx->lib_name);
    return ctx;
}

/* free_string frees a string field unless it is protobuf-c's shared empty default. */
static void free_string(char *s)
{
    if (s != protobuf_c_empty_string) free(s);
}

static void node_free(Ember__Node *n)
{
    free(n->parents);
    free_string(n->fn_symbol);
    free(n->fn_arg.data);
    free_string(n->topic);
    free_string(n->bootstrap);
    for (size_t i = 0; i < n->n_ranges; i++) free(n->ranges[i]);
    free(n->ranges);
    for (size_t i = 0; i < n->n_start_offsets; i++) free(n->start_offsets[i]);
    free(n->start_offsets);
    free(n->data_offsets);
    em_text_splits_free(n->splits, n->n_splits);
    free_string(n->comb_symbol);
    free_string(n->late_topic);
    for (size_t i = 0; i < n->n_sort_bounds; i++) free(n->sort_bounds[i].data);
    free(n->sort_bounds);
    free(n);
}

void em_ctx_free(ember_ctx *ctx)
{
    if (!ctx) return;
    for (size_t i = 0; i < ctx->n_nodes; i++) node_free(ctx->nodes[i]);
    free(ctx->nodes);
    free(ctx->description);
    for (size_t i = 0; i < ctx->n_datasets; i++) free(ctx->datasets[i]);
    free(ctx->datasets);
    em_buf_free(&ctx->data);
    while (ctx->results) {
        collected *c = ctx->results;
        ctx->results = c->next;
        em_buf_free(&c->batches);
        free(c->records);
        free(c);
    }
    em_buf_free(&ctx->last.batches);
    em_accs_free(&ctx->last.accs);
    em_accs_free(&ctx->accs);
    em_opts_free_all(ctx->opts);
    while (ctx->queries) {
        ember_query *q = ctx->queries;
        ctx->queries = q->next;
        free(q);
    }
    free(ctx);
}

int em_ctx_fail(ember_ctx *ctx, int code, const char *fmt, ...)
{
    if (ctx->error_code == EMBER_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
        va_end(ap);
        ctx->error_code = code;
    }
    return code;
}

int em_ctx_error_code(const ember_ctx *ctx) { return ctx->error_code; }
const em_job_outcome *em_ctx_last_outcome(const ember_ctx *ctx) { return &ctx->last; }

void em_ctx_totals(const ember_ctx *ctx, em_job_outcome *sum, int *actions, int *queries)
{
    *sum = ctx->total;
    *actions = ctx->actions;
    *queries = 0;
    for (const ember_query *q = ctx->queries; q; q = q->next) (*queries)++;
}

const char *ember_last_error(ember_ctx *ctx) { return ctx ? ctx->error : "no context"; }

void ember_set_job_name(ember_ctx *ctx, const char *name)
{
    if (ctx && name) snprintf(ctx->job_name, sizeof ctx->job_name, "%s", name);
}

int ember_describe_job(ember_ctx *ctx, const char *json)
{
    if (!ctx || !json) return EMBER_ERR_INVALID;
    json_error_t jerr;
    json_t *doc = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    int object = json_is_object(doc);
    json_decref(doc);
    if (strlen(json) > EMBER_DESCRIPTION_MAX || !object)
        return em_ctx_fail(ctx, EMBER_ERR_INVALID,
                           "describe_job: a JSON object of at most %d bytes is expected%s%s",
                           EMBER_DESCRIPTION_MAX, doc ? "" : ": ", doc ? "" : jerr.text);
    char *copy = strdup(json);
    if (!copy) return em_ctx_fail(ctx, EMBER_ERR_NOMEM, "describe_job: out of memory");
    free(ctx->description);
    ctx->description = copy;
    return EMBER_OK;
}

/* ---- building nodes -------------------------------------------------------------------- */

/* dataset_new makes a dataset owned by ctx; without memory it returns a shared failed
 * dataset with no context, which every API call treats as failed. */
static ember_dataset *dataset_new(ember_ctx *ctx, int failed)
{
    static ember_dataset nomem = {NULL, 0, 1};
    ember_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return &nomem;
    ds->ctx = ctx;
    ds->failed = failed;
    if (ctx->n_datasets == ctx->cap_datasets) {
        size_t cap = ctx->cap_datasets ? 2 * ctx->cap_datasets : 16;
        ember_dataset **p = realloc(ctx->datasets, cap * sizeof *p);
        if (!p) {
            free(ds);
            return &nomem;
        }
        ctx->datasets = p;
        ctx->cap_datasets = cap;
    }
    ctx->datasets[ctx->n_datasets++] = ds;
    return ds;
}

static ember_dataset *failed_dataset(ember_ctx *ctx) { return dataset_new(ctx, 1); }

/* new_node appends a node of `kind` (with an optional parent) and its dataset. */
static ember_dataset *new_node(ember_ctx *ctx, Ember__NodeKind kind, const ember_dataset *parent,
                               Ember__Node **out)
{
    if (ctx->n_nodes >= EM_GRAPH_MAX_NODES) {
        em_ctx_fail(ctx, EMBER_ERR_TOO_LARGE, "job graph larger than %d datasets",
                    EM_GRAPH_MAX_NODES);
        return failed_dataset(ctx);
    }
    if (ctx->n_nodes == ctx->cap_nodes) {
        size_t cap = ctx->cap_nodes ? 2 * ctx->cap_nodes : 16;
        Ember__Node **p = realloc(ctx->nodes, cap * sizeof *p);
        if (!p) goto nomem;
        ctx->nodes = p;
        ctx->cap_nodes = cap;
    }
    Ember__Node *n = calloc(1, sizeof *n);
    if (!n) goto nomem;
    ember__node__init(n);
    n->id = (uint32_t)ctx->n_nodes;
    n->kind = kind;
    if (parent) {
        if (!(n->parents = malloc(sizeof *n->parents))) {
            free(n);
            goto nomem;
        }
        n->parents[0] = parent->node;
        n->n_parents = 1;
    }
    ember_dataset *ds = dataset_new(ctx, 0);
    if (!ds->ctx) {
        node_free(n);
        goto nomem;
    }
    ds->node = n->id;
    ctx->nodes[ctx->n_nodes++] = n;
    *out = n;
    return ds;
nomem:
    em_ctx_fail(ctx, EMBER_ERR_NOMEM, "out of memory building the job graph");
    return failed_dataset(ctx);
}

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

ember_dataset *ember_kafka_topic(ember_ctx *ctx, const char *topic)
{
    return ember_kafka_ranges(ctx, topic, NULL, 0);
}

/* set_start_offsets gives a stream node explicit starting offsets; 0 (the context failed) on
 * bad input or without memory */
static int set_start_offsets(ember_ctx *ctx, Ember__Node *n, const ember_kafka_range *offsets,
                             size_t count)
{
    if (!offsets || count > EM_GRAPH_MAX_PARTITIONS) {
        em_ctx_fail(ctx, EMBER_ERR_INVALID, "kafka stream: %zu starting offsets", count);
        return 0;
    }
    for (size_t i = 0; i < count; i++)
        if (offsets[i].partition < 0 || offsets[i].from < 0) {
            em_ctx_fail(ctx, EMBER_ERR_INVALID,
                        "kafka stream: starting offset %lld of partition %d",
                        (long long)offsets[i].from, (int)offsets[i].partition);
            return 0;
        }
    n->start_offsets = calloc(count, sizeof *n->start_offsets);
    for (size_t i = 0; n->start_offsets && i < count; i++) {
        Ember__KafkaRange *r = malloc(sizeof *r);
        if (!r) break;
        ember__kafka_range__init(r);
        r->partition = offsets[i].partition;
        r->from = offsets[i].from;
        n->start_offsets[n->n_start_offsets++] = r;
    }
    if (!n->start_offsets || n->n_start_offsets != count) {
        em_ctx_fail(ctx, EMBER_ERR_NOMEM, "out of memory building the job graph");
        return 0;
    }
    return 1;
}

ember_dataset *ember_kafka_stream(ember_ctx *ctx, const char *topic,
                                  const ember_stream_source *opts)
{
    if (!ctx) return NULL;
    if (opts && (opts->max_per_partition < 0 || opts->max_rate_per_partition < 0)) {
        em_ctx_fail(ctx, EMBER_ERR_INVALID,
                    "kafka stream '%s': a negative max_per_partition or max_rate_per_partition",
                    topic ? topic : "");
        return failed_dataset(ctx);
    }
    ember_dataset *ds = ember_kafka_ranges(ctx, topic, NULL, 0);
    if (ds->failed) return ds;
    Ember__Node *n = ctx->nodes[ds->node];
    n->kind = EMBER__NODE_KIND__NODE_KAFKA_STREAM;
    n->starting = opts && opts->earliest ? EMBER__STARTING_OFFSETS__STARTING_EARLIEST
                                         : EMBER__STARTING_OFFSETS__STARTING_LATEST;
    n->max_per_partition = opts ? opts->max_per_partition : 0;
    if (opts && opts->n_offsets && !set_start_offsets(ctx, n, opts->offsets, opts->n_offsets)) {
        ds->failed = 1;
        return ds;
    }
    n->max_rate_per_partition = opts ? opts->max_rate_per_partition : 0;
    n->backpressure = opts && opts->backpressure;
    return ds;
}

ember_dataset *ember_kafka_ranges(ember_ctx *ctx, const char *topic,
                                  const ember_kafka_range *ranges, size_t n_ranges)
{
    if (!ctx) return NULL;
    if (!topic || !topic[0] || strlen(topic) > 249) {
        em_ctx_fail(ctx, EMBER_ERR_INVALID, "kafka source: bad topic name");
        return failed_dataset(ctx);
    }
    Ember__Node *n = NULL;
    ember_dataset *ds = new_node(ctx, EMBER__NODE_KIND__NODE_KAFKA, NULL, &n);
    if (ds->failed) return ds;
    n->topic = dup_or_empty(topic);
    n->bootstrap = dup_or_empty(ctx->kafka);
    if (n_ranges > 0 && (n->ranges = calloc(n_ranges, sizeof *n->ranges))) {
        for (size_t i = 0; i < n_ranges; i++) {
            Ember__KafkaRange *r = malloc(sizeof *r);
            if (!r) break;
            ember__kafka_range__init(r);
            r->partition = ranges[i].partition;
            r->from = ranges[i].from;
            r->until = ranges[i].until;
            n->ranges[n->n_ranges++] = r;
        }
    }
    if (!n->topic || !n->bootstrap || n->n_ranges != n_ranges) {
        em_ctx_fail(ctx, EMBER_ERR_NOMEM, "out of memory building the job graph");
        ds->failed = 1;
    }
    return ds;
}

ember_dataset *ember_parallelize(ember_ctx *ctx, const ember_record *records, size_t n,
                                 int partitions)
{
    if (!ctx) return NULL;
    if (partitions < 1 || partitions > EM_GRAPH_MAX_PARTITIONS || (n > 0 && !records)) {
        em_ctx_fail(ctx, EMBER_ERR_INVALID, "parallelize: %d partitions (1..%d)", partitions,
                    EM_GRAPH_MAX_PARTITIONS);
        return failed_dataset(ctx);
    }
    Ember__Node *node;
    ember_dataset *ds = new_node(ctx, EMBER__NODE_KIND__NODE_PARALLELIZE, NULL, &node);
    if (ds->failed) return ds;
    node->partitions = (uint32_t)partitions;
    node->data_offsets = calloc((size_t)partitions + 1, sizeof *node->data_offsets);
    if (!node->data_offsets) goto nomem;
    node->n_data_offsets = (size_t)partitions + 1;
    em_batch_writer w = {.buf = ctx->data};
    for (int p = 0; p < partitions; p++) {
        node->data_offsets[p] = w.buf.len;
        size_t lo = n * (size_t)p / (size_t)partitions,
               hi = n * (size_t)(p + 1) / (size_t)partitions;
        int rc = em_batch_begin(&w);
        for (size_t i = lo; rc == EMBER_OK && i < hi; i++) rc = em_batch_add(&w, &records[i]);
        if (rc == EMBER_OK) rc = em_batch_finish(&w);
        if (rc != EMBER_OK) {
            ctx->data = w.buf;
            goto nomem;
        }
    }
    node->data_offsets[partitions] = w.buf.len;
    ctx->data = w.buf;
    return ds;
nomem:
    em_ctx_fail(ctx, EMBER_ERR_NOMEM, "parallelize: out of memory copying %zu records", n);
    ds->failed = 1;
    return ds;
}

ember_dataset *ember_range(ember_ctx *ctx, int64_t start, int64_t end, int partitions)
{
    if (!ctx) return NULL;
    if (partitions < 1 || partitions > EM_GRAPH_MAX_PARTITIONS || end < start) {
        em_ctx_fail(ctx, EMBER_ERR_INVALID, "range [%lld, %lld) in %d partitions is invalid",
                    (long long)start, (long long)end, partitions);
        return failed_dataset(ctx);
    }
    Ember__Node *n = NULL;
    ember_dataset *ds = new_node(ctx, EMBER__NODE_KIND__NODE_RANGE, NULL, &n);
    if (ds->failed) return ds;
    n->range_start = start;
    n->range_end = end;
    n->partitions = (uint32_t)partitions;
    return ds;
}

ember_dataset *ember_text_file(ember_ctx *ctx, const char *path, int min_partitions)
{
    if (!ctx) return NULL;
    if (!path || !path[0] || min_partitions < 0 || min_partitions > EM_GRAPH_MAX_PARTITIONS) {
        em_ctx_fail(ctx, EMBER_ERR_INVALID, "text_file: no path, or %d partitions (0..%d)",
                    min_partitions, EM_GRAPH_MAX_PARTITIONS);
        return failed_dataset(ctx);
    }
    Ember__FileSplit **splits;
    size_t n_splits;
    char err[512];
    int rc = em_text_plan(path, (uint32_t)min_partitions, &splits, &n_splits, err, sizeof err);
    if (rc != EMBER_OK) {
        em_ctx_fail(ctx, rc, "%s", err);
        return failed_dataset(ctx);
    }
    Ember__Node *n = NULL;
    ember_dataset *ds = new_node(ctx, EMBER__NODE_KIND__NODE_TEXT_FILE, NULL, &n);
    if (ds->failed) {
        em_text_splits_free(splits, n_splits);
        return ds;
    }
    n->splits = splits;
    n->n_splits = n_splits;
    return ds;
}

int em_symbol_of(void *lib, const char *lib_path, const void *fn, char *name, size_t name_len,
                 char *err, size_t errlen)
{
    Dl_info info;
    char want[PATH_MAX], got[PATH_MAX];
    if (!fn) {
        snprintf(err, errlen, "NULL function");
        return EMBER_ERR_INVALID;
    }
    if (!dladdr(fn, &info) || !info.dli_fname || !realpath(info.dli_fname, got) ||
        !realpath(lib_path, want) || strcmp(got, want) != 0) {
        snprintf(err, errlen, "function at %p is not part of the job library %s", fn, lib_path);
        return EMBER_ERR_SYMBOL;
    }
    if (!info.dli_sname || info.dli_saddr != fn) {
        snprintf(err, errlen,
                 "function at %p (near '%s') is not an exported symbol of %s: executors find "
                 "user functions by name, so it must not be static (and must have default "
                 "visibility)",
                 fn, info.dli_sname ? info.dli_sname : "?", lib_path);
        return EMBER_ERR_SYMBOL;
    }
    if (strlen(info.dli_sname) > EM_SYMBOL_MAX || dlsym(lib, info.dli_sname) != fn) {
        snprintf(err, errlen, "symbol '%s' of %s does not resolve back to the function",
                 info.dli_sname, lib_path);
        return EMBER_ERR_SYMBOL;
    }
    snprintf(name, name_len, "%s", info.dli_sname);
    return EMBER_OK;
}

/* add_op_symbol adds a narrow operation calling the function named `symbol`. */
static ember_dataset *add_op_symbol(ember_dataset *parent, Ember__NodeKind kind, const char *symbol,
                                    const void *arg, size_t arg_len)
{
    ember_ctx *ctx = parent->ctx;
    Ember__Node *n = NULL;
    ember_dataset *ds = new_node(ctx, kind, parent, &n);
    if (ds->failed) return ds;
    n->fn_symbol = strdup(symbol);
    if (arg_len > 0 && (n->fn_arg.data = malloc(arg_len))) {
        memcpy(n->fn_arg.data, arg, arg_len);
        n->fn_arg.len = arg_len;
    }
    if (!n->fn_symbol || n->fn_arg.len != arg_len) {
        em_ctx_fail(ctx, EMBER_ERR_NOMEM, "out of memory building the job graph");
        ds->failed = 1;
    }
    return ds;
}

ember_dataset *em_add_builtin(ember_dataset *parent, Ember__NodeKind kind, const char *symbol,
                              const void *arg, size_t arg_len)
{
    if (!parent || !parent->ctx) return parent;
    if (parent->failed) return failed_dataset(parent->ctx);
    return add_op_symbol(parent, kind, symbol, arg, arg_len);
}

static ember_dataset *add_op(ember_dataset *parent, Ember__NodeKind kind, const void *fn,
                             const void *arg, size_t arg_len)
{
    if (!parent || !parent->ctx) return parent;
    ember_ctx *ctx = parent->ctx;
    if (parent->failed) return failed_dataset(ctx);
    char symbol[EM_SYMBOL_MAX + 1], why[1024];
    int rc = em_symbol_of(ctx->lib, ctx->lib_path, fn, symbol, sizeof symbol, why, sizeof why);
    if (rc != EMBER_OK) {
        em_ctx_fail(ctx, rc, "%s: %s", em_node_kind_name(kind), why);
        return failed_dataset(ctx);
    }
    return add_op_symbol(parent, kind, symbol, arg, arg_len);
}

/* add_second_parent makes `second` the second parent of node n (of dataset ds). */
static void add_second_parent(ember_dataset *ds, Ember__Node *n, const ember_dataset *second)
{
    uint32_t *p = realloc(n->parents, 2 * sizeof *p);
    if (!p) {
        em_ctx_fail(ds->ctx, EMBER_ERR_NOMEM, "out of memory building the job graph");
        ds->failed = 1;
        return;
    }
    p[1] = second->node;
    n->parents = p;
    n->n_parents = 2;
}

/* add_wide adds a wide node of `kind` reading parent (and second, for two-parent kinds). */
static ember_dataset *add_wide(ember_dataset *parent, ember_dataset *second, Ember__NodeKind kind,
                               int partitions, Ember__Node **out)
{
    if (!parent || !parent->ctx) return parent;
    ember_ctx *ctx = parent->ctx;
    if (parent->failed || (second && second->failed)) return failed_dataset(ctx);
    if (second && second->ctx != ctx) {
        em_ctx_fail(ctx, EMBER_ERR_INVALID, "%s: datasets of two different job runs",
                    em_node_kind_name(kind));
        return failed_dataset(ctx);
    }
    if (partitions < 0 || partitions > EM_GRAPH_MAX_PARTITIONS) {
        em_ctx_fail(ctx, EMBER_ERR_INVALID, "%s: %d partitions (1..%d, or 0: the parent's count)",
                    em_node_kind_name(kind), partitions, EM_GRAPH_MAX_PARTITIONS);
        return failed_dataset(ctx);
    }
    Ember__Node *n = NULL; /* 0 partitions: chosen when an action runs (default_partitions) */
    ember_dataset *ds = new_node(ctx, kind, parent, &n);
    if (ds->failed) return ds;
    n->partitions = (uint32_t)partitions;
    if (second) add_second_parent(ds, n, second);
    *out = n;
    return ds;
}

ember_dataset *ember_reduce_by_key(ember_dataset *parent, ember_reducer reducer, int partitions)
{
    if (parent && parent->ctx && !parent->failed && !em_reducer_valid((int)reducer)) {
        em_ctx_fail(parent->ctx, EMBER_ERR_INVALID, "reduce_by_key: unknown reducer %d",
                    (int)reducer);
        return failed_dataset(parent->ctx);
    }
    Ember__Node *n = NULL;
    ember_dataset *ds =
        add_wide(parent, NULL, EMBER__NODE_KIND__NODE_REDUCE_BY_KEY, partitions, &n);
    if (ds && !ds->failed) n->reducer = (Ember__Reducer)reducer;
    return ds;
}

ember_dataset *ember_count_by_key(ember_dataset *parent, int partitions)
{
    if (!parent || !parent->ctx) return parent;
    if (parent->failed) return failed_dataset(parent->ctx);
    ember_dataset *ones =
        add_op_symbol(parent, EMBER__NODE_KIND__NODE_MAP, "ember_builtin_count_one", NULL, 0);
    return ember_reduce_by_key(ones, EMBER_SUM_I64, partitions);
}

/* aggregate_node adds a wide node of `kind` folding with seq and comb from `zero` */
static ember_dataset *aggregate_node(ember_dataset *parent, Ember__NodeKind kind, const void *zero,
                                     size_t acc_len, ember_seq_fn seq, ember_comb_fn comb,
                                     int partitions, Ember__Node **out)
{
    if (!parent || !parent->ctx) return parent;
    ember_ctx *ctx = parent->ctx;
    const char *what =
        kind == EMBER__NODE_KIND__NODE_WINDOW ? "window_aggregate" : "aggregate_by_key";
    if (parent->failed) return failed_dataset(ctx);
    if (acc_len == 0 || acc_len > EMBER_ACC_MAX || !zero) {
        em_ctx_fail(ctx, EMBER_ERR_INVALID,
                    "%s: accumulator of %zu bytes (1..%d, zero value required)", what, acc_len,
                    EMBER_ACC_MAX);
        return failed_dataset(ctx);
    }
    char seq_name[EM_SYMBOL_MAX + 1], comb_name[EM_SYMBOL_MAX + 1], why[1024];
    int rc = em_symbol_of(ctx->lib, ctx->lib_path, (const void *)seq, seq_name, sizeof seq_name,
                          why, sizeof why);
    if (rc == EMBER_OK)
        rc = em_symbol_of(ctx->lib, ctx->lib_path, (const void *)comb, comb_name, sizeof comb_name,
                          why, sizeof why);
    if (rc != EMBER_OK) {
        em_ctx_fail(ctx, rc, "%s: %s", what, why);
        return failed_dataset(ctx);
    }
    Ember__Node *n = NULL;
    ember_dataset *ds = add_wide(parent, NULL, kind, partitions, &n);
    if (ds->failed) return ds;
    n->fn_symbol = strdup(seq_name);
    n->comb_symbol = strdup(comb_name);
    if ((n->fn_arg.data = malloc(acc_len))) {
        memcpy(n->fn_arg.data, zero, acc_len);
        n->fn_arg.len = acc_len;
    }
    if (!n->fn_symbol || !n->comb_symbol || !n->fn_arg.data) {
        em_ctx_fail(ctx, EMBER_ERR_NOMEM, "out of memory building the job graph");
        ds->failed = 1;
    }
    *out = n;
    return ds;
}

ember_dataset *ember_aggregate_by_key(ember_dataset *parent, const void *zero, size_t acc_len,
                                      ember_seq_fn seq, ember_comb_fn comb, int partitions)
{
    Ember__Node *n;
    return aggregate_node(parent, EMBER__NODE_KIND__NODE_AGGREGATE_BY_KEY, zero, acc_len, seq, comb,
                          partitions, &n);
}

/* ---- windows ------------------------------------------------------------------------------ */

/* window_ok checks a window's shape; fails the context if it is wrong */
static int window_ok(ember_dataset *parent, const ember_window *w)
{
    if (!parent || !parent->ctx || parent->failed) return 0;
    if (!w || w->length_ms <= 0 || w->slide_ms <= 0 || w->length_ms % w->slide_ms != 0 ||
        w->length_ms / w->slide_ms > EM_WINDOW_MAX_PANES || w->delay_ms < 0) {
        em_ctx_fail(parent->ctx, EMBER_ERR_INVALID,
                    "window: length %lld ms, slide %lld ms, delay %lld ms (the slide divides the "
                    "length, at most %d slides per window, no negative delay)",
                    w ? (long long)w->length_ms : 0LL, w ? (long long)w->slide_ms : 0LL,
                    w ? (long long)w->delay_ms : 0LL, EM_WINDOW_MAX_PANES);
        return 0;
    }
    return 1;
}

static void set_window(ember_dataset *ds, Ember__Node *n, const ember_window *w)
{
    n->window_length_ms = w->length_ms;
    n->window_slide_ms = w->slide_ms;
    n->watermark_delay_ms = w->delay_ms;
    n->window_updates = w->updates != 0;
    if (!w->late_topic || !w->late_topic[0]) return;
    n->late_topic = strdup(w->late_topic);
    n->bootstrap = dup_or_empty(ds->ctx->kafka);
    if (!n->late_topic || !n->bootstrap) {
        em_ctx_fail(ds->ctx, EMBER_ERR_NOMEM, "out of memory building the job graph");
        ds->failed = 1;
    }
}

ember_dataset *ember_window_reduce(ember_dataset *stream, const ember_window *w,
                                   ember_reducer reducer, int partitions)
{
    if (!window_ok(stream, w)) return stream && stream->ctx ? failed_dataset(stream->ctx) : NULL;
    if (!em_reducer_valid((int)reducer)) {
        em_ctx_fail(stream->ctx, EMBER_ERR_INVALID, "window_reduce: unknown reducer %d",
                    (int)reducer);
        return failed_dataset(stream->ctx);
    }
    Ember__Node *n = NULL;
    ember_dataset *ds = add_wide(stream, NULL, EMBER__NODE_KIND__NODE_WINDOW, partitions, &n);
    if (ds && !ds->failed) {
        n->reducer = (Ember__Reducer)reducer;
        set_window(ds, n, w);
    }
    return ds;
}

ember_dataset *ember_window_count(ember_dataset *stream, const ember_window *w, int partitions)
{
    ember_dataset *ds = ember_window_reduce(stream, w, EMBER_SUM_I64, partitions);
    if (ds && !ds->failed) ds->ctx->nodes[ds->node]->window_count = 1;
    return ds;
}

ember_dataset *ember_window_aggregate(ember_dataset *stream, const ember_window *w,
                                      const void *zero, size_t acc_len, ember_seq_fn seq,
                                      ember_comb_fn comb, int partitions)
{
    if (!window_ok(stream, w)) return stream && stream->ctx ? failed_dataset(stream->ctx) : NULL;
    Ember__Node *n = NULL;
    ember_dataset *ds = aggregate_node(stream, EMBER__NODE_KIND__NODE_WINDOW, zero, acc_len, seq,
                                       comb, partitions, &n);
    if (ds && !ds->failed) set_window(ds, n, w);
    return ds;
}

/* ---- keyed state ----------------------------------------------------------------------------- */

ember_dataset *ember_map_with_state(ember_dataset *stream, ember_state_fn fn, size_t state_len,
                                    int64_t ttl_ms, const void *arg, size_t arg_len, int partitions)
{
    if (!stream || !stream->ctx) return stream;
    ember_ctx *ctx = stream->ctx;
    if (stream->failed) return failed_dataset(ctx);
    if (!fn || state_len == 0 || state_len > EMBER_STATE_MAX || ttl_ms < 0) {
        em_ctx_fail(ctx, EMBER_ERR_INVALID,
                    "map_with_state: a function, a state of 1..%d bytes (not %zu) and a "
                    "time-to-live of 0 or more ms are required",
                    EMBER_STATE_MAX, state_len);
        return failed_dataset(ctx);
    }
    char name[EM_SYMBOL_MAX + 1], why[1024];
    int rc =
        em_symbol_of(ctx->lib, ctx->lib_path, (const void *)fn, name, sizeof name, why, sizeof why);
    if (rc != EMBER_OK) {
        em_ctx_fail(ctx, rc, "map_with_state: %s", why);
        return failed_dataset(ctx);
    }
    Ember__Node *n = NULL;
    ember_dataset *ds =
        add_wide(stream, NULL, EMBER__NODE_KIND__NODE_MAP_WITH_STATE, partitions, &n);
    if (ds->failed) return ds;
    n->fn_symbol = strdup(name);
    n->state_len = (uint32_t)state_len;
    n->state_ttl_ms = ttl_ms;
    if (arg_len && (n->fn_arg.data = malloc(arg_len))) {
        memcpy(n->fn_arg.data, arg, arg_len);
        n->fn_arg.len = arg_len;
    }
    if (!n->fn_symbol || (arg_len && !n->fn_arg.data)) {
        em_ctx_fail(ctx, EMBER_ERR_NOMEM, "out of memory building the job graph");
        ds->failed = 1;
    }
    return ds;
}

/* simple_wide: a wide node with no settings beyond its partitions */
static ember_dataset *simple_wide(ember_dataset *parent, ember_dataset *second,
                                  Ember__NodeKind kind, int partitions)
{
    Ember__Node *n = NULL;
    return add_wide(parent, second, kind, partitions, &n);
}

ember_dataset *ember_group_by_key(ember_dataset *parent, int partitions)
{
    return simple_wide(parent, NULL, EMBER__NODE_KIND__NODE_GROUP_BY_KEY, partitions);
}

ember_dataset *ember_reduce_by_key_fn(ember_dataset *parent, ember_combine_fn fn, int partitions)
{
    if (!parent || !parent->ctx) return parent;
    ember_ctx *ctx = parent->ctx;
    if (parent->failed) return failed_dataset(ctx);
    char symbol[EM_SYMBOL_MAX + 1], why[1024];
    int rc = em_symbol_of(ctx->lib, ctx->lib_path, (const void *)fn, symbol, sizeof symbol, why,
                          sizeof why);
    if (rc != EMBER_OK) {
        em_ctx_fail(ctx, rc, "reduce_by_key_fn: %s", why);
        return failed_dataset(ctx);
    }
    /* the groups, each folded by the built-in that calls fn by its name */
    return em_add_builtin(ember_group_by_key(parent, partitions), EMBER__NODE_KIND__NODE_MAP,
                          "ember_builtin_combine_group", symbol, strlen(symbol) + 1);
}

ember_dataset *ember_cogroup(ember_dataset *left, ember_dataset *right, int partitions)
{
    if (left && left->ctx && !left->failed && !right) {
        em_ctx_fail(left->ctx, EMBER_ERR_INVALID, "cogroup/join: no right dataset");
        return failed_dataset(left->ctx);
    }
    return simple_wide(left, right, EMBER__NODE_KIND__NODE_COGROUP, partitions);
}

static ember_dataset *join_with(ember_dataset *left, ember_dataset *right, int partitions,
                                const char *builtin)
{
    ember_dataset *grouped = ember_cogroup(left, right, partitions);
    if (!grouped || !grouped->ctx || grouped->failed) return grouped;
    return add_op_symbol(grouped, EMBER__NODE_KIND__NODE_FLAT_MAP, builtin, NULL, 0);
}

ember_dataset *ember_join(ember_dataset *left, ember_dataset *right, int partitions)
{
    return join_with(left, right, partitions, "ember_builtin_join_inner");
}

ember_dataset *ember_left_outer_join(ember_dataset *left, ember_dataset *right, int partitions)
{
    return join_with(left, right, partitions, "ember_builtin_join_left");
}

ember_dataset *ember_distinct(ember_dataset *parent, int partitions)
{
    if (!parent || !parent->ctx) return parent;
    if (parent->failed) return failed_dataset(parent->ctx);
    ember_dataset *packed =
        add_op_symbol(parent, EMBER__NODE_KIND__NODE_MAP, "ember_builtin_pack_kv", NULL, 0);
    ember_dataset *unique = simple_wide(packed, NULL, EMBER__NODE_KIND__NODE_DISTINCT, partitions);
    if (unique->failed) return unique;
    return add_op_symbol(unique, EMBER__NODE_KIND__NODE_MAP, "ember_builtin_unpack_kv", NULL, 0);
}

ember_dataset *ember_partition_by(ember_dataset *parent, int partitions)
{
    return simple_wide(parent, NULL, EMBER__NODE_KIND__NODE_PARTITION_BY, partitions);
}

ember_dataset *ember_repartition(ember_dataset *parent, int partitions)
{
    Ember__Node *n = NULL;
    ember_dataset *ds = add_wide(parent, NULL, EMBER__NODE_KIND__NODE_PARTITION_BY, partitions, &n);
    if (ds && !ds->failed) n->round_robin = 1;
    return ds;
}

ember_dataset *ember_sort_by_key(ember_dataset *parent, int ascending, int partitions)
{
    Ember__Node *n = NULL;
    ember_dataset *ds = add_wide(parent, NULL, EMBER__NODE_KIND__NODE_SORT_BY_KEY, partitions, &n);
    if (ds && !ds->failed) n->descending = !ascending;
    return ds;
}

ember_dataset *ember_union(ember_dataset *a, ember_dataset *b)
{
    if (!a || !a->ctx) return a;
    ember_ctx *ctx = a->ctx;
    if (a->failed || !b || b->failed) return failed_dataset(ctx);
    if (b->ctx != ctx) {
        em_ctx_fail(ctx, EMBER_ERR_INVALID, "union: datasets of two different job runs");
        return failed_dataset(ctx);
    }
    Ember__Node *n = NULL;
    ember_dataset *ds = new_node(ctx, EMBER__NODE_KIND__NODE_UNION, a, &n);
    if (!ds->failed) add_second_parent(ds, n, b);
    return ds;
}

ember_dataset *ember_persist(ember_dataset *ds, ember_storage level)
{
    if (!ds || !ds->ctx || ds->failed) return ds;
    if (level != EMBER_MEMORY_ONLY && level != EMBER_MEMORY_AND_DISK) {
        em_ctx_fail(ds->ctx, EMBER_ERR_INVALID, "persist: unknown storage level %d", (int)level);
        return failed_dataset(ds->ctx);
    }
    ds->ctx->nodes[ds->node]->storage = (Ember__StorageLevel)level;
    return ds;
}

ember_dataset *ember_cache(ember_dataset *ds) { return ember_persist(ds, EMBER_MEMORY_ONLY); }

ember_dataset *ember_map(ember_dataset *parent, ember_map_fn fn, const void *arg, size_t arg_len)
{
    return add_op(parent, EMBER__NODE_KIND__NODE_MAP, (const void *)fn, arg, arg_len);
}

ember_dataset *ember_flat_map(ember_dataset *parent, ember_map_fn fn, const void *arg,
                              size_t arg_len)
{
    return add_op(parent, EMBER__NODE_KIND__NODE_FLAT_MAP, (const void *)fn, arg, arg_len);
}

ember_dataset *ember_filter(ember_dataset *parent, ember_filter_fn fn, const void *arg,
                            size_t arg_len)
{
    return add_op(parent, EMBER__NODE_KIND__NODE_FILTER, (const void *)fn, arg, arg_len);
}

ember_dataset *ember_map_partitions(ember_dataset *parent, ember_partition_fn fn, const void *arg,
                                    size_t arg_len)
{
    return add_op(parent, EMBER__NODE_KIND__NODE_MAP_PARTITIONS, (const void *)fn, arg, arg_len);
}

int em_job_api_check(void *lib, const char *name, char *err, size_t errlen)
{
    const int *version = dlsym(lib, "ember_api_version");
    if (version && *version == EMBER_API_VERSION) return EMBER_OK;
    if (version)
        snprintf(err, errlen,
                 "job library %s was built against ember API version %d, this ember has version "
                 "%d: rebuild it with this ember's include/ember/ember.h",
                 name, *version, EMBER_API_VERSION);
    else
        snprintf(err, errlen,
                 "job library %s records no ember API version (built against an older ember.h, "
                 "or not a job): rebuild it with this ember's include/ember/ember.h (version %d)",
                 name, EMBER_API_VERSION);
    return EMBER_ERR_LIBRARY;
}
