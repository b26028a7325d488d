/* em_pipeline.c -- record-by-record execution of narrow operations (see em_pipeline.h). */
#include "em_pipeline.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_batch.h"
#include "em_graph.h"

/* em_op: one resolved operation of the chain (read-only once built). */
typedef struct em_op {
    uint32_t node; /* its graph node */
    Ember__NodeKind kind;
    const char *symbol; /* for messages */
    void *fn;           /* ember_map_fn, ember_filter_fn or ember_partition_fn */
    const void *arg;
    size_t arg_len;
    void *lib; /* the job library its user functions come from (NULL: none) */
} em_op;

struct em_pipeline {
    const Ember__Node *source;
    uint32_t source_partition;
    int through_union; /* the chain depends on the partition */
    size_t n_ops;
    em_op ops[]; /* source's child first */
};

typedef struct em_run em_run;

/* ember_task: one operation's state within one run; user functions receive it. */
struct ember_task {
    const em_op *op;
    em_run *run;
    ember_task *next;         /* downstream operation; NULL means the sink */
    const em_tap *tap;        /* also given every record this operation emits (or NULL) */
    uint32_t emitted;         /* emits during the current call (map checks for exactly 1) */
    em_batch_writer buffered; /* map_partitions: the input partition */
};

struct ember_iter {
    em_batch_reader reader;
    int failed;
};

struct em_run {
    uint32_t partition;
    em_record_fn sink;
    void *sink_arg;
    const em_tap *source_tap; /* also given every source record (or NULL) */
    em_run_stats *stats;
    char *err;
    size_t errlen;
    int failed; /* err and code hold the first failure */
    int code;
    ember_task tasks[];
};

static int run_fail(em_run *run, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int run_fail(em_run *run, int code, const char *fmt, ...)
{
    if (!run->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(run->err, run->errlen, fmt, ap);
        va_end(ap);
        run->failed = 1;
        run->code = code;
    }
    return code;
}

/* starts_stage: a chain begins at a source or at the wide node that reads a shuffle */
static int starts_stage(const Ember__Node *n)
{
    return em_node_is_source(n->kind) || em_node_is_wide(n->kind);
}

/* chain_starts: the chain of a task begins here (`from`: a node whose partition is read from
 * the cache) */
static int chain_starts(const Ember__Node *n, uint32_t from)
{
    return n->id == from || starts_stage(n);
}

/* resolve finds a user function in the job library; ember's own built-in functions
 * (EM_BUILTIN_PREFIX) come from the process itself. */
static void *resolve(void *lib, const char *symbol)
{
    if (strncmp(symbol, EM_BUILTIN_PREFIX, strlen(EM_BUILTIN_PREFIX)) == 0)
        return dlsym(RTLD_DEFAULT, symbol);
    return lib ? dlsym(lib, symbol) : NULL;
}

void *em_pipeline_resolve(void *lib, const char *symbol) { return resolve(lib, symbol); }

void *em_task_resolve(ember_task *task, const char *symbol)
{
    return resolve(task && task->op ? task->op->lib : NULL, symbol);
}

/* next_up steps from node id towards the stage's leaf for *partition (unions pick a branch). */
static uint32_t next_up(const Ember__JobGraph *g, uint32_t id, uint32_t *partition)
{
    const Ember__Node *n = g->nodes[id];
    uint32_t branch = n->kind == EMBER__NODE_KIND__NODE_UNION ? em_node_branch(g, n, partition) : 0;
    return n->parents[branch];
}

int em_pipeline_new(const Ember__JobGraph *g, uint32_t target, uint32_t partition, void *lib,
                    em_pipeline **out, char *err, size_t errlen)
{
    return em_pipeline_new_from(g, target, partition, UINT32_MAX, lib, out, err, errlen);
}

int em_pipeline_new_from(const Ember__JobGraph *g, uint32_t target, uint32_t partition,
                         uint32_t from, void *lib, em_pipeline **out, char *err, size_t errlen)
{
    size_t n_ops = 0;
    uint32_t part = partition;
    for (uint32_t id = target; !chain_starts(g->nodes[id], from); id = next_up(g, id, &part))
        n_ops += g->nodes[id]->kind != EMBER__NODE_KIND__NODE_UNION;
    em_pipeline *pl = calloc(1, sizeof *pl + n_ops * sizeof(em_op));
    if (!pl) return EMBER_ERR_NOMEM;
    pl->n_ops = n_ops;
    uint32_t id = target;
    part = partition;
    for (size_t i = n_ops; !chain_starts(g->nodes[id], from); id = next_up(g, id, &part)) {
        const Ember__Node *n = g->nodes[id];
        if (n->kind == EMBER__NODE_KIND__NODE_UNION) {
            pl->through_union = 1;
            continue;
        }
        em_op *op = &pl->ops[--i];
        op->node = n->id;
        op->kind = n->kind;
        op->symbol = n->fn_symbol;
        op->arg = n->fn_arg.len ? n->fn_arg.data : NULL;
        op->arg_len = n->fn_arg.len;
        op->fn = resolve(lib, n->fn_symbol);
        op->lib = lib;
        if (!op->fn) {
            snprintf(err, errlen, "job library has no symbol '%s' (used by %s)", n->fn_symbol,
                     em_node_kind_name(n->kind));
            free(pl);
            return EMBER_ERR_SYMBOL;
        }
    }
    pl->source = g->nodes[id];
    pl->source_partition = part;
    *out = pl;
    return EMBER_OK;
}

void em_pipeline_free(em_pipeline *pl) { free(pl); }

const Ember__Node *em_pipeline_source(const em_pipeline *pl) { return pl->source; }
uint32_t em_pipeline_source_partition(const em_pipeline *pl, uint32_t partition)
{
    return pl->through_union ? pl->source_partition : partition;
}
int em_pipeline_per_partition(const em_pipeline *pl) { return pl->through_union; }

/* user_failed turns a negative return of a user function into the run's error. */
static int user_failed(ember_task *task, int rc)
{
    return run_fail(task->run, rc, "%s function '%s' failed (returned %d) on partition %u",
                    em_node_kind_name(task->op->kind), task->op->symbol, rc, task->run->partition);
}

/* tap gives a record to a tap; a tap that fails fails the run. */
static int tap(em_run *run, const em_tap *t, const ember_record *rec)
{
    int rc = t->fn(t->arg, rec);
    return rc == EMBER_OK ? rc
                          : run_fail(run, rc, "cannot keep node %u's partition: %s", t->node,
                                     ember_strerror(rc));
}

/* push delivers one record to `task` (or to the sink when task is NULL). */
static int push(em_run *run, ember_task *task, const ember_record *rec)
{
    if (run->failed) return EMBER_ERR_CANCELLED;
    if (!task) {
        run->stats->records_out++;
        run->stats->bytes_out += (int64_t)(rec->key_len + rec->value_len);
        int rc = run->sink(run->sink_arg, rec);
        return rc == EMBER_OK ? rc : run_fail(run, rc, "sink failed: %s", ember_strerror(rc));
    }
    int rc;
    switch (task->op->kind) {
    case EMBER__NODE_KIND__NODE_MAP:
        task->emitted = 0;
        rc = ((ember_map_fn)task->op->fn)(task, rec);
        if (rc < 0) return user_failed(task, rc);
        if (task->emitted != 1)
            return run_fail(run, EMBER_ERR_USER,
                            "map function '%s' emitted %u records for one input (exactly 1 "
                            "expected; use ember_flat_map for 0 or more)",
                            task->op->symbol, task->emitted);
        return EMBER_OK;
    case EMBER__NODE_KIND__NODE_FLAT_MAP:
        rc = ((ember_map_fn)task->op->fn)(task, rec);
        return rc < 0 ? user_failed(task, rc) : EMBER_OK;
    case EMBER__NODE_KIND__NODE_FILTER:
        rc = ((ember_filter_fn)task->op->fn)(task, rec);
        if (rc < 0) return user_failed(task, rc);
        if (!rc) return EMBER_OK;
        if (task->tap && (rc = tap(run, task->tap, rec)) != EMBER_OK) return rc;
        return push(run, task->next, rec);
    case EMBER__NODE_KIND__NODE_MAP_PARTITIONS:
        rc = em_batch_add(&task->buffered, rec);
        return rc == EMBER_OK ? rc
                              : run_fail(run, rc, "cannot buffer partition for '%s': %s",
                                         task->op->symbol, ember_strerror(rc));
    default: return run_fail(run, EMBER_ERR_INVALID, "unexpected operation in pipeline");
    }
}

static int push_from_source(void *arg, const ember_record *rec)
{
    em_run *run = arg;
    run->stats->records_in++;
    run->stats->bytes_in += (int64_t)(rec->key_len + rec->value_len);
    if (run->source_tap) {
        int rc = tap(run, run->source_tap, rec);
        if (rc != EMBER_OK) return rc;
    }
    return push(run, run->tasks[0].op ? &run->tasks[0] : NULL, rec);
}

/* drain_partition_op runs a map_partitions function over its buffered input. */
static int drain_partition_op(ember_task *task)
{
    em_batch_finish(&task->buffered);
    ember_iter it = {0};
    if (em_batch_open(task->buffered.buf.data, task->buffered.buf.len, &it.reader, NULL) !=
        EMBER_OK)
        return run_fail(task->run, EMBER_ERR_MALFORMED, "buffered partition is corrupt");
    int rc = ((ember_partition_fn)task->op->fn)(task, &it);
    if (rc < 0) return user_failed(task, rc);
    return it.failed ? run_fail(task->run, EMBER_ERR_MALFORMED, "buffered partition is corrupt")
                     : EMBER_OK;
}

int em_pipeline_run(const em_pipeline *pl, uint32_t partition, em_source_fn source, void *src,
                    em_record_fn sink, void *sink_arg, em_run_stats *stats, char *err,
                    size_t errlen)
{
    return em_pipeline_run_tapped(pl, partition, source, src, sink, sink_arg, NULL, 0, stats, err,
                                  errlen);
}

int em_pipeline_run_tapped(const em_pipeline *pl, uint32_t partition, em_source_fn source,
                           void *src, em_record_fn sink, void *sink_arg, const em_tap *taps,
                           size_t n_taps, em_run_stats *stats, char *err, size_t errlen)
{
    em_run *run = calloc(1, sizeof *run + (pl->n_ops + 1) * sizeof(ember_task));
    if (!run) return EMBER_ERR_NOMEM;
    *stats = (em_run_stats){0};
    *run = (em_run){.partition = partition,
                    .sink = sink,
                    .sink_arg = sink_arg,
                    .stats = stats,
                    .err = err,
                    .errlen = errlen};
    for (size_t i = 0; i < pl->n_ops; i++) {
        ember_task *task = &run->tasks[i];
        task->op = &pl->ops[i];
        task->run = run;
        task->next = i + 1 < pl->n_ops ? &run->tasks[i + 1] : NULL;
        if (task->op->kind == EMBER__NODE_KIND__NODE_MAP_PARTITIONS)
            em_batch_begin(&task->buffered);
    }
    for (size_t t = 0; t < n_taps; t++) {
        if (taps[t].node == pl->source->id) run->source_tap = &taps[t];
        for (size_t i = 0; i < pl->n_ops; i++)
            if (pl->ops[i].node == taps[t].node) run->tasks[i].tap = &taps[t];
    }
    char src_err[512] = "";
    int rc = source(src, push_from_source, run, src_err, sizeof src_err);
    if (rc != EMBER_OK && !run->failed) run_fail(run, rc, "%s", src_err);
    for (size_t i = 0; !run->failed && i < pl->n_ops; i++)
        if (run->tasks[i].op->kind == EMBER__NODE_KIND__NODE_MAP_PARTITIONS)
            drain_partition_op(&run->tasks[i]);
    /* the first failure wins, even if a user function ignored ember_emit's error */
    rc = run->failed ? run->code : EMBER_OK;
    for (size_t i = 0; i < pl->n_ops; i++) em_buf_free(&run->tasks[i].buffered.buf);
    free(run);
    return rc;
}

/* ---- user functions called outside a chain ---------------------------------------------- */

static int refuse_emit(void *arg, const ember_record *rec)
{
    (void)arg, (void)rec;
    return EMBER_ERR_STATE;
}

ember_task *em_fn_task_new(Ember__NodeKind kind, const char *symbol, uint32_t partition, char *err,
                           size_t errlen)
{
    /* one allocation: the run, its one task, then the op and the stats it points to */
    em_run *run =
        calloc(1, sizeof *run + sizeof(ember_task) + sizeof(em_op) + sizeof(em_run_stats));
    if (!run) return NULL;
    em_op *op = (em_op *)(void *)&run->tasks[1];
    em_run_stats *stats = (em_run_stats *)(void *)(op + 1);
    *op = (em_op){.kind = kind, .symbol = symbol};
    run->partition = partition;
    run->sink = refuse_emit;
    run->stats = stats;
    run->err = err;
    run->errlen = errlen;
    run->tasks[0] = (ember_task){.op = op, .run = run};
    return &run->tasks[0];
}

void em_fn_task_bind(ember_task *task, const void *arg, size_t arg_len, em_record_fn sink,
                     void *sink_arg)
{
    em_op *op = (em_op *)task->op;
    op->arg = arg;
    op->arg_len = arg_len;
    task->run->sink = sink;
    task->run->sink_arg = sink_arg;
}

void em_fn_task_free(ember_task *task)
{
    if (task) free(task->run); /* the allocation starts with the run */
}

int em_fn_task_result(ember_task *task, int rc)
{
    if (task->run->failed) return task->run->code;
    return rc < 0 ? user_failed(task, rc) : EMBER_OK;
}

/* ---- the task side of the public API ---------------------------------------------------- */

int ember_emit(ember_task *task, const ember_record *rec)
{
    if (!task || !rec) return EMBER_ERR_INVALID;
    task->emitted++;
    if (task->tap && !task->run->failed) {
        int rc = tap(task->run, task->tap, rec);
        if (rc != EMBER_OK) return rc;
    }
    return push(task->run, task->next, rec);
}

int ember_emit_kv(ember_task *task, const void *key, size_t key_len, const void *value,
                  size_t value_len, int64_t timestamp)
{
    ember_record rec = {key, key_len, value, value_len, timestamp};
    return ember_emit(task, &rec);
}

int ember_next(ember_iter *in, ember_record *rec)
{
    if (!in || in->failed) return 0;
    int rc = em_batch_next(&in->reader, rec);
    if (rc < 0) in->failed = 1;
    return rc > 0;
}

const void *ember_task_arg(ember_task *task, size_t *len)
{
    if (len) *len = task ? task->op->arg_len : 0;
    return task ? task->op->arg : NULL;
}

int ember_task_partition(ember_task *task) { return task ? (int)task->run->partition : -1; }

int ember_task_fail(ember_task *task, const char *fmt, ...)
{
    if (!task || task->run->failed) return EMBER_ERR_USER;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return run_fail(task->run, EMBER_ERR_USER, "%s function '%s' failed on partition %u: %s",
                    em_node_kind_name(task->op->kind), task->op->symbol, task->run->partition, msg);
}

int ember_emit_i64(ember_task *task, const void *key, size_t key_len, int64_t value,
                   int64_t timestamp)
{
    uint8_t v[8];
    for (int i = 0; i < 8; i++) v[i] = (uint8_t)((uint64_t)value >> (8 * i));
    return ember_emit_kv(task, key, key_len, v, 8, timestamp);
}

int ember_emit_f64(ember_task *task, const void *key, size_t key_len, double value,
                   int64_t timestamp)
{
    uint64_t bits;
    memcpy(&bits, &value, 8);
    return ember_emit_i64(task, key, key_len, (int64_t)bits, timestamp);
}

double ember_value_f64(const ember_record *rec)
{
    uint64_t bits = (uint64_t)ember_value_i64(rec);
    double v;
    memcpy(&v, &bits, 8);
    return v;
}

int ember_builtin_count_one(ember_task *task, const ember_record *in)
{
    return ember_emit_i64(task, in->key, in->key_len, 1, in->timestamp);
}

int64_t ember_value_i64(const ember_record *rec)
{
    uint64_t v = 0;
    const uint8_t *p = rec->value;
    for (size_t i = 0; i < 8 && i < rec->value_len; i++) v |= (uint64_t)p[i] << (8 * i);
    return (int64_t)v;
}

/* ---- sources that need no outside system ------------------------------------------------ */

void em_range_bounds(int64_t start, int64_t end, uint32_t n, uint32_t p, int64_t *lo, int64_t *hi)
{
    uint64_t total = (uint64_t)end - (uint64_t)start, base = total / n, extra = total % n;
    uint64_t first = base * p + (p < extra ? p : extra);
    *lo = (int64_t)((uint64_t)start + first);
    *hi = (int64_t)((uint64_t)*lo + base + (p < extra ? 1 : 0));
}

int em_range_source(void *src, em_record_fn emit, void *emit_arg, char *err, size_t errlen)
{
    em_range_source_arg *a = src;
    int64_t lo, hi;
    em_range_bounds(a->node->range_start, a->node->range_end, a->node->partitions, a->partition,
                    &lo, &hi);
    uint8_t value[8];
    ember_record rec = {NULL, 0, value, sizeof value, 0};
    for (int64_t v = lo; v < hi; v++) {
        for (int i = 0; i < 8; i++) value[i] = (uint8_t)((uint64_t)v >> (8 * i));
        int rc = emit(emit_arg, &rec);
        if (rc != EMBER_OK) return rc;
    }
    return EMBER_OK;
}

int em_batches_source(void *src, em_record_fn emit, void *emit_arg, char *err, size_t errlen)
{
    em_batches_source_arg *a = src;
    const uint8_t *p = a->data;
    size_t left = a->len;
    while (left > 0) {
        em_batch_reader r;
        size_t used;
        ember_record rec;
        int rc = em_batch_open(p, left, &r, &used);
        while (rc == EMBER_OK && (rc = em_batch_next(&r, &rec)) > 0)
            if ((rc = emit(emit_arg, &rec)) != EMBER_OK) return rc;
        if (rc < 0) {
            snprintf(err, errlen, "parallelized input is corrupt");
            return EMBER_ERR_MALFORMED;
        }
        p += used;
        left -= used;
    }
    return EMBER_OK;
}
