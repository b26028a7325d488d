/* em_flow.c -- a workflow document loaded: its graph checked, put in topological order, and
 * every node compiled against the columns it receives (em_flow.h).
 *
 * Checks run in the order a reader would fix them: the JSON itself, the document's keys,
 * each node (id, type), each edge, then the graph (one input per node, no cycle, sinks at the
 * ends), then the columns, node after node from the sources, so that the first error is the
 * one upstream.
 */
#include "em_flow.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_flow_agg.h"
#include "em_flow_int.h"
#include "em_flow_lookup.h"
#include "em_flow_sink.h"

#define ID_BYTES 41 /* a node id's bytes, NUL included: "flow.ID.failed" fits a counter name */

static const char *const KIND_NAMES[EM_N_KINDS] = {
    "kafka_source", "csv",        "json",       "concat",     "cast",       "filter",
    "derive",       "select",     "key_by",     "aggregate",  "rules",      "lookup",
    "function",     "kafka_sink", "redis_sink", "files_sink", "file_source"};

const char *em_flow_kind_name(em_node_kind k) { return k < EM_N_KINDS ? KIND_NAMES[k] : "?"; }

int em_flow_is_sink(em_node_kind k)
{
    return k == EM_N_KAFKA_SINK || k == EM_N_REDIS_SINK || k == EM_N_FILES_SINK;
}

int em_flow_is_source(em_node_kind k) { return k == EM_N_KAFKA_SOURCE || k == EM_N_FILE_SOURCE; }

/* can_fail: nodes whose records can fail (and so can have an error edge) */
static int can_fail(em_node_kind k)
{
    return k == EM_N_CSV || k == EM_N_JSON || k == EM_N_CONCAT || k == EM_N_CAST ||
           k == EM_N_FILTER || k == EM_N_DERIVE || k == EM_N_RULES || k == EM_N_LOOKUP ||
           k == EM_N_FUNCTION;
}

char *em_flow_with_checkpoint(const char *text, size_t len, const char *dir, size_t *out_len)
{
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    char *out = NULL;
    if (json_is_object(doc) && json_object_set_new(doc, "checkpoint", json_string(dir)) == 0)
        out = json_dumps(doc, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(doc);
    if (out) *out_len = strlen(out);
    return out;
}

char *em_flow_read(const char *path, const char *checkpoint, size_t *len, char *err, size_t errlen)
{
    char *text = em_flow_read_file(path, EM_FLOW_TEXT_MAX, len, err, errlen);
    if (!text || !checkpoint) return text;
    size_t with_len;
    char *with = em_flow_with_checkpoint(text, *len, checkpoint, &with_len);
    if (!with) return text; /* not a JSON object: em_flow_load says why */
    free(text);
    *len = with_len;
    return with;
}

int em_flow_find(const em_flow *f, const char *id)
{
    for (int k = 0; k < f->n; k++)
        if (strcmp(f->nodes[k].id, id) == 0) return k;
    return -1;
}

static int failf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n >= ID_BYTES) return 0;
    for (size_t k = 0; k < n; k++) {
        char c = id[k];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* read_nodes reads each node's id and type, in document order */
static int read_nodes(em_flow *f, json_t *nodes, json_t **objs, char *err, size_t errlen)
{
    if (!json_is_array(nodes) || json_array_size(nodes) == 0 ||
        json_array_size(nodes) > EM_FLOW_NODES_MAX)
        return failf(err, errlen, "'nodes' must be an array of 1 to %d nodes", EM_FLOW_NODES_MAX);
    size_t k;
    json_t *o;
    json_array_foreach(nodes, k, o)
    {
        const char *id = json_string_value(json_object_get(o, "id"));
        const char *type = json_string_value(json_object_get(o, "type"));
        if (!json_is_object(o) || !id || !type)
            return failf(err, errlen,
                         "node %zu: a node is an object with \"id\" and \"type\" "
                         "(strings)",
                         k + 1);
        if (!valid_id(id))
            return failf(err, errlen,
                         "node %zu: the id \"%s\" must be 1 to %d letters, digits, "
                         "'_' or '-'",
                         k + 1, id, ID_BYTES - 1);
        if (em_flow_find(f, id) >= 0)
            return failf(err, errlen, "node '%s': the id is used twice", id);
        em_flow_node *n = &f->nodes[f->n];
        int kind = -1;
        for (int t = 0; t < EM_N_KINDS; t++)
            if (strcmp(type, KIND_NAMES[t]) == 0) kind = t;
        if (kind < 0) {
            char list[512] = "";
            size_t used = 0;
            for (int t = 0; t < EM_N_KINDS; t++)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", t ? ", " : "",
                                         KIND_NAMES[t]);
            return failf(err, errlen, "node '%s': unknown type '%s' (the types: %s)", id, type,
                         list);
        }
        snprintf(n->id, sizeof n->id, "%s", id);
        n->kind = (em_node_kind)kind;
        n->input = n->errors_to = -1;
        objs[f->n++] = o;
    }
    return 0;
}

static int read_edge(em_flow *f, json_t *e, size_t k, int *error_input, char *err, size_t errlen)
{
    static const char *const keys[] = {"from", "to", "on", NULL};
    const char *from_id = json_string_value(json_object_get(e, "from"));
    const char *to_id = json_string_value(json_object_get(e, "to"));
    const char *on = json_string_value(json_object_get(e, "on"));
    if (!json_is_object(e) || !from_id || !to_id)
        return failf(err, errlen, "edge %zu: an edge is {\"from\": ID, \"to\": ID}", k + 1);
    if (param_check(e, keys, err, errlen) != 0) {
        char why[256];
        snprintf(why, sizeof why, "%s", err);
        return failf(err, errlen, "edge %zu: %s", k + 1, why);
    }
    int from = em_flow_find(f, from_id), to = em_flow_find(f, to_id);
    if (from < 0 || to < 0)
        return failf(err, errlen, "edge %zu: no node '%s'", k + 1, from < 0 ? from_id : to_id);
    em_flow_node *a = &f->nodes[from], *b = &f->nodes[to];
    if (json_object_get(e, "on") && (!on || strcmp(on, "error") != 0))
        return failf(err, errlen, "edge %zu: \"on\" can only be \"error\"", k + 1);
    if (em_flow_is_sink(a->kind))
        return failf(err, errlen, "edge %zu: '%s' is a sink: nothing comes out of it", k + 1,
                     a->id);
    if (em_flow_is_source(b->kind))
        return failf(err, errlen, "edge %zu: '%s' is a source: nothing goes into it", k + 1, b->id);
    /* one input per node; a dead-letter sink may have several error edges (error_paths_ok) */
    if (b->input >= 0 || (error_input[to] >= 0 && !on))
        return failf(err, errlen, "node '%s' has two inputs ('%s' and '%s'): each node reads one",
                     b->id, f->nodes[b->input >= 0 ? b->input : error_input[to]].id, a->id);
    if (on) {
        if (!can_fail(a->kind))
            return failf(err, errlen,
                         "edge %zu: records do not fail in '%s' (%s): only csv, json, "
                         "concat, cast, filter, derive, rules and lookup have error edges",
                         k + 1, a->id, KIND_NAMES[a->kind]);
        if (b->kind != EM_N_KAFKA_SINK && b->kind != EM_N_FILES_SINK)
            return failf(err, errlen,
                         "edge %zu: the failed records of '%s' go to a kafka_sink or a "
                         "files_sink, not to '%s' (%s)",
                         k + 1, a->id, b->id, KIND_NAMES[b->kind]);
        if (a->errors_to >= 0) return failf(err, errlen, "node '%s' has two error edges", a->id);
        a->errors_to = to;
        if (error_input[to] < 0) error_input[to] = from;
        return 0;
    }
    b->input = from;
    a->outputs++;
    return 0;
}

/* topo_order puts every node after its input; fails on a node without an input or a cycle */
static int topo_order(em_flow *f, const int *error_input, int *order, char *err, size_t errlen)
{
    int depth[EM_FLOW_NODES_MAX];
    for (int k = 0; k < f->n; k++) {
        em_flow_node *n = &f->nodes[k];
        if (!em_flow_is_source(n->kind) && n->input < 0 && error_input[k] < 0)
            return failf(err, errlen, "node '%s' has no input: add an edge to it", n->id);
        if (!em_flow_is_sink(n->kind) && n->outputs == 0 && n->errors_to < 0)
            return failf(err, errlen, "node '%s' (%s) leads nowhere: add an edge from it to a sink",
                         n->id, KIND_NAMES[n->kind]);
        int d = 0, at = k;
        while (d <= f->n && (f->nodes[at].input >= 0 || error_input[at] >= 0)) {
            at = f->nodes[at].input >= 0 ? f->nodes[at].input : error_input[at];
            d++;
        }
        if (d > f->n) return failf(err, errlen, "node '%s' is on a cycle", n->id);
        depth[k] = d;
    }
    int m = 0;
    for (int d = 0; d < f->n; d++)
        for (int k = 0; k < f->n; k++)
            if (depth[k] == d) order[m++] = k;
    return 0;
}

/* reorder applies the topological order to the nodes and their indexes; -1 without memory */
static int reorder(em_flow *f, const int *order, json_t **objs, int *error_input)
{
    em_flow_node *old = malloc(sizeof(em_flow_node) * (size_t)f->n);
    json_t *old_objs[EM_FLOW_NODES_MAX];
    int old_err[EM_FLOW_NODES_MAX], where[EM_FLOW_NODES_MAX];
    if (!old) return -1;
    memcpy(old, f->nodes, sizeof(em_flow_node) * (size_t)f->n);
    memcpy(old_objs, objs, sizeof(json_t *) * (size_t)f->n);
    memcpy(old_err, error_input, sizeof(int) * (size_t)f->n);
    for (int k = 0; k < f->n; k++) where[order[k]] = k;
    for (int k = 0; k < f->n; k++) {
        f->nodes[k] = old[order[k]];
        objs[k] = old_objs[order[k]];
        error_input[k] = old_err[order[k]] >= 0 ? where[old_err[order[k]]] : -1;
        if (f->nodes[k].input >= 0) f->nodes[k].input = where[f->nodes[k].input];
        if (f->nodes[k].errors_to >= 0) f->nodes[k].errors_to = where[f->nodes[k].errors_to];
    }
    free(old);
    return 0;
}

/* source_of: the source a node's records come from */
static int source_of(const em_flow *f, const int *error_input, int k)
{
    while (f->nodes[k].input >= 0 || error_input[k] >= 0)
        k = f->nodes[k].input >= 0 ? f->nodes[k].input : error_input[k];
    return k;
}

/* default_key keys a kafka_sink without a `key` by the nearest key_by or aggregate upstream */
static int default_key(em_flow *f, int k, char *err, size_t errlen)
{
    em_flow_node *sink = &f->nodes[k];
    for (int at = sink->input; at >= 0; at = f->nodes[at].input) {
        int count;
        const int *cols = em_node_key_columns(f->nodes[at].compiled, &count);
        if (!cols) continue;
        const em_schema *keyed = f->nodes[at].kind == EM_N_AGGREGATE
                                     ? &f->nodes[at].out
                                     : &f->nodes[f->nodes[at].input].out;
        int mine[EM_SCHEMA_MAX];
        for (int c = 0; c < count; c++) {
            const char *name =
                f->nodes[at].kind == EM_N_AGGREGATE ? keyed->names[c] : keyed->names[cols[c]];
            if ((mine[c] = em_schema_find(&sink->out, name, strlen(name))) < 0) return 0;
        }
        return em_sink_default_key(sink->compiled, mine, count, err, errlen);
    }
    return 0;
}

static int compile_nodes(em_flow *f, json_t **objs, const int *error_input, char *err,
                         size_t errlen)
{
    for (int k = 0; k < f->n; k++) {
        em_flow_node *n = &f->nodes[k];
        const em_schema *in = NULL;
        if (n->input >= 0)
            in = &f->nodes[n->input].out;
        else if (error_input[k] >= 0)
            in = &f->nodes[source_of(f, error_input, k)].out;
        char why[1024];
        em_schema out;
        if (!(n->compiled = em_node_compile(n->kind, objs[k], in, &out, why, sizeof why)))
            return failf(err, errlen, "node '%s' (%s): %s", n->id, KIND_NAMES[n->kind], why);
        /* a sink keeps its input's columns as `out`, for explanations and default keys */
        n->out = em_flow_is_sink(n->kind) ? *in : out;
        if (n->kind == EM_N_KAFKA_SINK && !n->compiled->has_key &&
            default_key(f, k, why, sizeof why) != 0)
            return failf(err, errlen, "node '%s' (kafka_sink): %s", n->id, why);
    }
    return 0;
}

/* is_upstream: node a is b or feeds it, through regular edges */
static int is_upstream(const em_flow *f, int a, int b)
{
    for (int at = b; at >= 0; at = f->nodes[at].input)
        if (at == a) return 1;
    return 0;
}

int em_flow_is_topic_lookup(const em_flow_node *n)
{
    return n->kind == EM_N_LOOKUP && em_lookup_topic(n->compiled);
}

/* is_shuffle: an aggregate, or a lookup whose table is a topic (a cogroup) */
static int is_shuffle(const em_flow_node *n)
{
    return n->kind == EM_N_AGGREGATE || em_flow_is_topic_lookup(n);
}

/* error_paths_ok: an error edge's node reads its source's records with no shuffle between
 * (its failed records are sent as the source gave them), and the nodes whose error edges go
 * to one sink are on one path (the sink's step runs that path, the deepest node last) */
static int error_paths_ok(const em_flow *f, char *err, size_t errlen)
{
    for (int k = 0; k < f->n; k++) {
        if (f->nodes[k].errors_to < 0) continue;
        if (em_flow_is_topic_lookup(&f->nodes[k]))
            return failf(err, errlen,
                         "node '%s' (lookup): a lookup from a topic has no error edge (a record "
                         "without a row is dropped, and counted as failed unless missing is "
                         "\"drop\")",
                         f->nodes[k].id);
        for (int j = 0; j < f->n; j++) /* nodes are in topological order: j > k is deeper */
            if (j > k && f->nodes[j].errors_to == f->nodes[k].errors_to && !is_upstream(f, k, j))
                return failf(err, errlen,
                             "the error edges of '%s' and '%s' to '%s': nodes on one path only "
                             "share a dead-letter sink",
                             f->nodes[k].id, f->nodes[j].id, f->nodes[f->nodes[k].errors_to].id);
        for (int at = f->nodes[k].input; at >= 0; at = f->nodes[at].input)
            if (is_shuffle(&f->nodes[at]))
                return failf(err, errlen,
                             "node '%s': an error edge after the %s '%s' (failed records are "
                             "sent as their source gave them)",
                             f->nodes[k].id, KIND_NAMES[f->nodes[at].kind], f->nodes[at].id);
    }
    return 0;
}

/* check_mode: the sources are all batch or all streams; a streaming flow has an absolute
 * checkpoint directory; windows are for streams */
static int check_mode(em_flow *f, char *err, size_t errlen)
{
    int batch = 0, stream = 0;
    for (int k = 0; k < f->n; k++)
        if (em_flow_is_source(f->nodes[k].kind)) { /* a file source is read as a batch */
            if (f->nodes[k].compiled->stream)
                stream++;
            else
                batch++;
        }
    if (batch && stream)
        return failf(err, errlen,
                     "the sources are %d batch and %d stream: a flow's sources are all "
                     "of one mode",
                     batch, stream);
    f->streaming = stream > 0;
    json_t *ck = json_object_get(f->doc, "checkpoint"),
           *iv = json_object_get(f->doc, "interval_ms");
    f->checkpoint = json_string_value(ck);
    f->interval_ms = iv ? json_integer_value(iv) : 1000;
    if ((ck && !json_is_string(ck)) ||
        (iv && (!json_is_integer(iv) || f->interval_ms < 10 || f->interval_ms > 86400000)))
        return failf(err, errlen,
                     "'checkpoint' is a directory, 'interval_ms' an integer from 10 to "
                     "86400000");
    if (!f->streaming && (ck || iv))
        return failf(err, errlen,
                     "'checkpoint' and 'interval_ms' are for streaming flows (\"mode\": "
                     "\"stream\" sources)");
    if (f->streaming && (!f->checkpoint || f->checkpoint[0] != '/'))
        return failf(err, errlen,
                     "a streaming flow needs 'checkpoint': an absolute directory the "
                     "driver and the executors share (each sink's query keeps its "
                     "progress under it)");
    for (int k = 0; k < f->n; k++) {
        int64_t len, slide, delay;
        if (f->nodes[k].kind == EM_N_AGGREGATE && !f->streaming &&
            em_agg_window(f->nodes[k].compiled, &len, &slide, &delay))
            return failf(err, errlen, "node '%s' (aggregate): a window needs a stream source",
                         f->nodes[k].id);
        if (f->streaming && em_flow_is_topic_lookup(&f->nodes[k]) &&
            f->nodes[k].compiled->partitions == 0)
            return failf(err, errlen,
                         "node '%s' (lookup): a topic lookup in a streaming flow needs "
                         "'partitions' (a stream's partition count is not known before it runs)",
                         f->nodes[k].id);
    }
    return 0;
}

em_flow *em_flow_load(const char *text, size_t len, char *err, size_t errlen)
{
    if (len > EM_FLOW_TEXT_MAX) {
        failf(err, errlen, "a flow document of %zu bytes (at most %d)", len, EM_FLOW_TEXT_MAX);
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        failf(err, errlen, "not JSON: line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    em_flow *f = calloc(1, sizeof *f);
    if (!f) {
        json_decref(doc);
        failf(err, errlen, "out of memory");
        return NULL;
    }
    f->doc = doc;
    static const char *const keys[] = {"name",       "description", "nodes", "edges",
                                       "checkpoint", "interval_ms", NULL};
    json_t *objs[EM_FLOW_NODES_MAX], *edges = json_object_get(doc, "edges"), *e;
    int error_input[EM_FLOW_NODES_MAX], order[EM_FLOW_NODES_MAX];
    const char *name = json_string_value(json_object_get(doc, "name"));
    size_t k;
    char why[1024];
    if (!json_is_object(doc)) {
        failf(err, errlen, "a flow is a JSON object with \"nodes\" and \"edges\"");
        goto fail;
    }
    if (param_check(doc, keys, why, sizeof why) != 0) {
        failf(err, errlen, "the document: %s", why);
        goto fail;
    }
    if ((json_object_get(doc, "name") && !name) || (name && !valid_id(name))) {
        failf(err, errlen,
              "the flow's name \"%s\" must be 1 to %d letters, digits, '_' or '-' (it names the "
              "job and the streaming queries)",
              name ? name : "(not a string)", ID_BYTES - 1);
        goto fail;
    }
    snprintf(f->name, sizeof f->name, "%s", name ? name : "flow");
    if (read_nodes(f, json_object_get(doc, "nodes"), objs, err, errlen) != 0) goto fail;
    if (!json_is_array(edges)) {
        failf(err, errlen, "'edges' must be an array of {\"from\": ID, \"to\": ID}");
        goto fail;
    }
    for (int n = 0; n < f->n; n++) error_input[n] = -1;
    json_array_foreach(edges, k,
                       e) if (read_edge(f, e, k, error_input, err, errlen) != 0) goto fail;
    if (topo_order(f, error_input, order, err, errlen) != 0) goto fail;
    if (reorder(f, order, objs, error_input) != 0) {
        failf(err, errlen, "out of memory");
        goto fail;
    }
    if (error_paths_ok(f, err, errlen) != 0 ||
        compile_nodes(f, objs, error_input, err, errlen) != 0 || check_mode(f, err, errlen) != 0)
        goto fail;
    return f;
fail:
    em_flow_free(f);
    return NULL;
}

void em_flow_free(em_flow *f)
{
    if (!f) return;
    for (int k = 0; k < f->n; k++) em_node_free(f->nodes[k].compiled);
    json_decref(f->doc);
    free(f);
}

/* ---- explanation ------------------------------------------------------------------------ */

static void explain_node(const em_flow *f, int k, FILE *out)
{
    const em_flow_node *n = &f->nodes[k];
    char what[256], cols[1024];
    em_node_describe(n->compiled, what, sizeof what);
    fprintf(out, "      %-14s %-20s %s\n", KIND_NAMES[n->kind], n->id, what);
    if (!em_flow_is_sink(n->kind)) {
        em_schema_list(&n->out, cols, sizeof cols);
        fprintf(out, "      %14s %-20s -> %s\n", "", "", cols);
    }
}

void em_flow_explain(const em_flow *f, FILE *out)
{
    fprintf(out, "flow %s: %d nodes\n", f->name, f->n);
    for (int s = 0; s < f->n; s++) {
        if (!em_flow_is_sink(f->nodes[s].kind)) continue;
        int path[EM_FLOW_NODES_MAX], m = 0, errors_of = -1;
        char failing[512] = "";
        size_t used = 0;
        for (int at = s; at >= 0; at = f->nodes[at].input) path[m++] = at;
        for (int k = 0; k < f->n; k++) /* fed by error edges: the deepest of their nodes */
            if (f->nodes[k].errors_to == s && used < sizeof failing) {
                errors_of = k;
                used += (size_t)snprintf(failing + used, sizeof failing - used, "%s'%s'",
                                         used ? ", " : "", f->nodes[k].id);
            }
        fprintf(out, "\nsink %s (%s)%s%s:\n", f->nodes[s].id, KIND_NAMES[f->nodes[s].kind],
                errors_of >= 0 ? ": the records that fail in " : "", failing);
        if (errors_of >= 0) {
            m = 0;
            path[m++] = s;
            for (int at = errors_of; at >= 0; at = f->nodes[at].input) path[m++] = at;
        }
        int stage = 1;
        fprintf(out, "  stage %d\n", stage);
        for (int i = m - 1; i >= 0; i--) {
            const em_flow_node *n = &f->nodes[path[i]];
            explain_node(f, path[i], out);
            if (n->kind == EM_N_AGGREGATE && i > 0) {
                int64_t len, slide, delay;
                if (em_agg_window(n->compiled, &len, &slide, &delay))
                    fprintf(out,
                            "    shuffle; windows of %lld s sliding %lld s, each final once "
                            "the watermark (latest event time - %lld s) passes its end\n",
                            (long long)(len / 1000), (long long)(slide / 1000),
                            (long long)(delay / 1000));
                else if (f->streaming)
                    fprintf(out, "    shuffle; each key's totals kept across batches, the running "
                                 "result emitted for each record\n");
                else
                    fprintf(out, "    shuffle (by its key; combined before and after)\n");
                fprintf(out, "  stage %d\n", ++stage);
            } else if (is_shuffle(n) && i > 0) {
                fprintf(out,
                        "    shuffle: cogrouped by the '%s' column with the rows of topic %s "
                        "(read again by every run%s)\n",
                        em_lookup_on_name(n->compiled), em_lookup_topic(n->compiled),
                        f->streaming ? ": every batch" : "");
                fprintf(out, "  stage %d\n", ++stage);
            } else if (!em_flow_is_source(n->kind) && n->outputs > 1 && i > 0 && !f->streaming)
                fprintf(out, "    cached: '%s' feeds %d nodes\n", n->id, n->outputs);
        }
    }
}
