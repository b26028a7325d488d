/* em_flow_run.c -- one task's nodes of a workflow, record after record (em_flow_run.h).
 *
 * The argument of a step is a one-line JSON header, {"input": ID, "nodes": [ID...],
 * "errors_of": ID or null}, a newline, and the flow document as the user wrote it; each
 * process loads and compiles the document again (the same checks as at submit: deterministic),
 * so what runs is exactly what was validated, and its tasks share it (em_flow_cache.h). Per
 * record nothing is allocated: columns live in an array, new strings in the step's scratch
 * space.
 */
#include "em_flow_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "em_flow_agg.h"
#include "em_flow_cache.h"
#include "em_flow_int.h"
#include "em_flow_lookup.h"
#include "em_flow_rules.h"
#include "em_flow_sink.h"
#include "em_row.h"

#define TIME_EVERY 32 /* a node's time is measured on one record in TIME_EVERY, and scaled */

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

struct em_flow_step {
    const em_flow *flow;          /* shared with the process's other tasks (em_flow_cache.h) */
    int input;                    /* the node the records come from */
    int nodes[EM_FLOW_NODES_MAX]; /* the nodes run, in order */
    int n;
    int errors_of; /* -1; or the deepest node with an error edge to the sink the step feeds: the
                      records failing in any node with an edge to that sink are sent */
    int table_of;  /* -1; or the topic lookup whose table rows the step makes */
    int64_t looked_up[3];          /* a topic lookup input's records in, matched, failed (no row) */
    int64_t in[EM_FLOW_NODES_MAX]; /* records each node received (by position in nodes) */
    int64_t out[EM_FLOW_NODES_MAX];    /* ... passed on */
    int64_t failed[EM_FLOW_NODES_MAX]; /* ... failed */
    int64_t ns[EM_FLOW_NODES_MAX];     /* ... time spent, sampled: every TIME_EVERY-th record */
    uint64_t records;                  /* records read */
    int timed;                         /* the record being run is timed */
    em_scratch scratch;
    uint8_t buf[EM_SCRATCH_BYTES]; /* an aggregate's accumulator or a row being emitted */
};

void *em_flow_step_arg(const em_flow *f, const char *text, size_t text_len, int input,
                       const int *nodes, int n, int errors_of, int table_of, size_t *len)
{
    json_t *ids = json_array();
    for (int k = 0; k < n && ids; k++)
        json_array_append_new(ids, json_string(f->nodes[nodes[k]].id));
    json_t *h = json_pack("{s:s, s:o, s:o}", "input", f->nodes[input].id, "nodes", ids, "errors_of",
                          errors_of >= 0 ? json_string(f->nodes[errors_of].id) : json_null());
    if (h && table_of >= 0) json_object_set_new(h, "table_of", json_string(f->nodes[table_of].id));
    char *head = h ? json_dumps(h, JSON_COMPACT) : NULL;
    json_decref(h);
    if (!head) return NULL;
    size_t hl = strlen(head);
    char *arg = malloc(hl + 1 + text_len);
    if (arg) {
        memcpy(arg, head, hl);
        arg[hl] = '\n';
        memcpy(arg + hl + 1, text, text_len);
        *len = hl + 1 + text_len;
    }
    free(head);
    return arg;
}

static int step_node(em_flow_step *st, json_t *id, char *err, size_t errlen)
{
    int k = json_is_string(id) ? em_flow_find(st->flow, json_string_value(id)) : -1;
    if (k < 0) snprintf(err, errlen, "a flow step names no node of its flow");
    return k;
}

em_flow_step *em_flow_step_open(const void *arg, size_t len, char *err, size_t errlen)
{
    const char *nl = arg ? memchr(arg, '\n', len) : NULL;
    if (!nl) {
        snprintf(err, errlen, "a flow step without its header");
        return NULL;
    }
    size_t hl = (size_t)(nl - (const char *)arg);
    em_flow_step *st = calloc(1, sizeof *st);
    json_t *h = json_loadb(arg, hl, 0, NULL), *nodes = json_object_get(h, "nodes"), *id;
    if (!st || !h || !json_is_array(nodes) || json_array_size(nodes) > EM_FLOW_NODES_MAX) {
        snprintf(err, errlen, "a flow step's header is malformed");
        goto fail;
    }
    if (!(st->flow = em_flow_cache_get(nl + 1, len - hl - 1, err, errlen))) goto fail;
    st->errors_of = st->table_of = -1;
    if ((st->input = step_node(st, json_object_get(h, "input"), err, errlen)) < 0) goto fail;
    json_t *table_of = json_object_get(h, "table_of");
    if (table_of && (st->table_of = step_node(st, table_of, err, errlen)) < 0) goto fail;
    size_t k;
    json_array_foreach(nodes, k,
                       id) if ((st->nodes[st->n++] = step_node(st, id, err, errlen)) < 0) goto fail;
    json_t *eo = json_object_get(h, "errors_of");
    if (json_is_string(eo) && (st->errors_of = step_node(st, eo, err, errlen)) < 0) goto fail;
    json_decref(h);
    return st;
fail:
    json_decref(h);
    em_flow_step_free(st);
    return NULL;
}

void em_flow_step_free(em_flow_step *st)
{
    if (!st) return;
    ember_json_free(st->scratch.json);
    em_flow_cache_put(st->flow);
    free(st);
}

/* read_input gives the columns of a record as the step's input node makes them */
static int read_input(em_flow_step *st, const ember_record *rec, em_value *cols)
{
    const em_flow_node *in = &st->flow->nodes[st->input];
    switch (in->kind) {
    case EM_N_KAFKA_SOURCE:
    case EM_N_FILE_SOURCE: /* (an empty key, the line, no timestamp) */
        cols[0].s = rec->key, cols[0].len = (uint32_t)rec->key_len;
        cols[1].s = rec->value, cols[1].len = (uint32_t)rec->value_len;
        cols[2].i = rec->timestamp;
        return 0;
    case EM_N_AGGREGATE:
        return em_agg_result(in->compiled, rec->key, rec->key_len, rec->value, rec->value_len,
                             rec->timestamp, cols);
    default: return em_row_decode(&in->out, rec->value, rec->value_len, cols);
    }
}

/* emit sends the record as the last node makes it */
static int emit(em_flow_step *st, ember_task *task, const em_value *cols, int64_t ts)
{
    const em_flow_node *last = &st->flow->nodes[st->nodes[st->n - 1]];
    char err[256];
    em_scratch *s = &st->scratch;
    if (em_flow_is_sink(last->kind)) {
        ember_record r;
        if (em_sink_record(last->compiled, cols, s, &r, err, sizeof err) != 0)
            return ember_task_fail(task, "flow node '%s': %s", last->id, err);
        r.timestamp = ts;
        return ember_emit(task, &r);
    }
    if (last->kind == EM_N_LOOKUP) { /* a topic lookup's record side, keyed by its column */
        char key[1100];
        int klen = em_lookup_key_text(last->compiled, cols, key, sizeof key);
        size_t len = em_row_encode(&last->compiled->in, cols, st->buf, sizeof st->buf);
        if (klen < 0 || len == 0)
            return ember_task_fail(task,
                                   "flow node '%s': a key over 1024 bytes, or a record over %d",
                                   last->id, EM_SCRATCH_BYTES);
        return ember_emit_kv(task, key, (size_t)klen, st->buf, len, ts);
    }
    if (last->kind == EM_N_AGGREGATE) {
        size_t klen = em_agg_key(last->compiled, cols, s->buf + s->used, sizeof s->buf - s->used);
        if (klen == 0)
            return ember_task_fail(task, "flow node '%s': a key over %d bytes", last->id,
                                   EM_SCRATCH_BYTES);
        if (em_agg_record(last->compiled, cols, st->buf, err, sizeof err) != 0)
            return ember_task_fail(task, "flow node '%s': %s", last->id, err);
        return ember_emit_kv(task, s->buf + s->used, klen, st->buf, em_agg_acc_len(last->compiled),
                             em_agg_event_time(last->compiled, cols, ts));
    }
    size_t len = em_row_encode(&last->out, cols, st->buf, sizeof st->buf);
    if (len == 0)
        return ember_task_fail(task, "flow node '%s': a record over %d bytes", last->id,
                               EM_SCRATCH_BYTES);
    return ember_emit_kv(task, NULL, 0, st->buf, len, ts);
}

/* failed notes that the record failed in the node at position k (logged once per task) */
static void failed(em_flow_step *st, int k, const char *why, int *failed_at)
{
    const em_flow_node *n = &st->flow->nodes[st->nodes[k]];
    if (st->failed[k]++ == 0)
        fprintf(stderr, "flow node '%s' (%s): a record failed: %s\n", n->id,
                em_flow_kind_name(n->kind), why);
    *failed_at = k;
}

/* run_from runs the nodes from position k over one record and emits what comes out; a rules
 * node runs the rest once per rule that holds. *failed_at is the position of the node the
 * record failed in (-1: none). Returns EMBER_OK or the error of an emit. */
static int run_from(em_flow_step *st, ember_task *task, int k, em_value *cols, int64_t ts,
                    int *failed_at)
{
    char err[512];
    for (; k < st->n; k++) {
        const em_flow_node *n = &st->flow->nodes[st->nodes[k]];
        if (em_flow_is_sink(n->kind) ||
            ((n->kind == EM_N_AGGREGATE || em_flow_is_topic_lookup(n)) && k == st->n - 1))
            break;
        st->in[k]++;
        if (n->kind == EM_N_RULES) {
            em_value alert[EM_SCHEMA_MAX];
            for (int r = 0; r < em_rules_count(n->compiled); r++) {
                memcpy(alert, cols, (size_t)n->compiled->in.n * sizeof *cols);
                int rc = em_rules_fire(n->compiled, r, alert, &st->scratch, err, sizeof err);
                if (rc < 0) {
                    failed(st, k, err, failed_at);
                    return EMBER_OK;
                }
                if (rc == 0) continue;
                st->out[k]++;
                if ((rc = run_from(st, task, k + 1, alert, ts, failed_at)) != EMBER_OK) return rc;
            }
            return EMBER_OK;
        }
        int64_t t0 = st->timed ? now_ns() : 0;
        int rc = em_node_apply(n->compiled, cols, &st->scratch, err, sizeof err);
        if (st->timed) st->ns[k] += (now_ns() - t0) * TIME_EVERY;
        if (rc < 0) failed(st, k, err, failed_at);
        if (rc <= 0) return EMBER_OK;
        st->out[k]++;
    }
    return st->errors_of >= 0 ? EMBER_OK : emit(st, task, cols, ts);
}

const char *const em_flow_counter_names[EM_FLOW_COUNTERS] = {"in", "out", "failed", "us"};

void em_flow_counter_name(char *buf, size_t cap, const char *id, int what)
{
    snprintf(buf, cap, "flow.%s.%s", id, em_flow_counter_names[what]);
}

/* add_counters adds each node's counts to the job's accumulators (an error step adds none:
 * the nodes it runs are counted by the step that sends their records on) */
static int add_counters(em_flow_step *st, ember_task *task)
{
    for (int w = 0; w < 3 && st->errors_of < 0; w++) { /* a topic lookup read as the input */
        char name[64];
        em_flow_counter_name(name, sizeof name, st->flow->nodes[st->input].id, w);
        int rc = st->looked_up[w] ? ember_acc_add(task, name, st->looked_up[w]) : EMBER_OK;
        if (rc != EMBER_OK) return rc;
    }
    for (int k = 0; k < st->n && st->errors_of < 0; k++) {
        int64_t v[EM_FLOW_COUNTERS] = {st->in[k], st->out[k], st->failed[k], st->ns[k] / 1000};
        for (int w = 0; w < EM_FLOW_COUNTERS; w++) {
            char name[64];
            em_flow_counter_name(name, sizeof name, st->flow->nodes[st->nodes[k]].id, w);
            int rc = v[w] ? ember_acc_add(task, name, v[w]) : EMBER_OK;
            if (rc != EMBER_OK) return rc;
        }
    }
    return EMBER_OK;
}

/* table_rows turns a topic's records into the lookup's rows, keyed by their key */
static int table_rows(em_flow_step *st, ember_task *task, ember_iter *in)
{
    const em_node *n = st->flow->nodes[st->table_of].compiled;
    ember_record rec;
    int rc;
    for (int64_t no = 1; (rc = ember_next(in, &rec)) == 1; no++) {
        em_value row[EM_SCHEMA_MAX];
        char err[512], *line = (char *)st->buf;
        const char *key;
        size_t key_len;
        if (rec.value_len >= sizeof st->buf)
            return ember_task_fail(task, "flow node '%s': a table line over %d bytes",
                                   st->flow->nodes[st->table_of].id, EM_SCRATCH_BYTES);
        memcpy(line, rec.value, rec.value_len);
        line[rec.value_len] = '\0';
        int got =
            em_lookup_table_row(n, line, rec.value_len, no, row, &key, &key_len, err, sizeof err);
        if (got < 0)
            return ember_task_fail(task, "flow node '%s': %s", st->flow->nodes[st->table_of].id,
                                   err);
        size_t len = got ? em_row_encode(em_lookup_row_schema(n), row, st->scratch.buf,
                                         sizeof st->scratch.buf)
                         : 0;
        if (got && (len == 0 || (rc = ember_emit_kv(task, key, key_len, st->scratch.buf, len,
                                                    rec.timestamp)) != EMBER_OK))
            return len == 0 ? ember_task_fail(task, "flow node '%s': a row over %d bytes",
                                              st->flow->nodes[st->table_of].id, EM_SCRATCH_BYTES)
                            : rc;
    }
    return rc;
}

/* looked_up runs the step over one cogroup of a topic lookup: each record of the key with the
 * table's row (none: dropped, counted as failed unless the lookup drops misses; two: the task
 * fails, naming the key) */
static int looked_up(em_flow_step *st, ember_task *task, const ember_record *grouped)
{
    const em_flow_node *lk = &st->flow->nodes[st->input];
    const em_schema *in = &lk->compiled->in, *row = em_lookup_row_schema(lk->compiled);
    ember_group_iter it, again;
    ember_record v;
    em_value cols[EM_SCHEMA_MAX];
    int side, rows = 0, rc;
    if (ember_group_open(grouped, &it) < 0) goto malformed;
    again = it;
    while (ember_group_next(&it, &v, &side)) {
        if (side == 1 && rows++ > 0)
            return ember_task_fail(task, "flow node '%s': the key \"%.*s\" twice in topic %s",
                                   lk->id, (int)(grouped->key_len > 64 ? 64 : grouped->key_len),
                                   (const char *)grouped->key, em_lookup_topic(lk->compiled));
        if (side == 1 && em_row_decode(row, v.value, v.value_len, &cols[in->n]) != 0)
            goto malformed;
    }
    while (ember_group_next(&again, &v, &side)) {
        if (side != 0) continue;
        st->scratch.used = 0;
        st->looked_up[0]++;
        if (em_row_decode(in, v.value, v.value_len, cols) != 0) goto malformed;
        if (rows == 0) {
            if (!em_lookup_drops_missing(lk->compiled)) st->looked_up[2]++;
            continue;
        }
        st->looked_up[1]++;
        st->timed = st->records++ % TIME_EVERY == 0;
        int failed_at = -1;
        if ((rc = run_from(st, task, 0, cols, v.timestamp, &failed_at)) != EMBER_OK) return rc;
    }
    return EMBER_OK;
malformed:
    return ember_task_fail(task, "flow node '%s': a record that is not what it makes", lk->id);
}

int em_flow_step_run(em_flow_step *st, ember_task *task, ember_iter *in)
{
    ember_record rec;
    em_value cols[EM_SCHEMA_MAX];
    int rc;

    if (st->table_of >= 0) return table_rows(st, task, in);
    if (em_flow_is_topic_lookup(&st->flow->nodes[st->input])) {
        while ((rc = ember_next(in, &rec)) == 1)
            if ((rc = looked_up(st, task, &rec)) != EMBER_OK) return rc;
        return rc < 0 ? rc : add_counters(st, task);
    }
    while ((rc = ember_next(in, &rec)) == 1) {
        st->scratch.used = 0;
        st->timed = st->records++ % TIME_EVERY == 0;
        if (read_input(st, &rec, cols) != 0)
            return ember_task_fail(task, "flow node '%s': a record that is not what it makes",
                                   st->flow->nodes[st->input].id);
        int failed_at = -1;
        if ((rc = run_from(st, task, 0, cols, rec.timestamp, &failed_at)) != EMBER_OK) return rc;
        if (st->errors_of >= 0 && failed_at >= 0 && /* in a node with an edge to this sink */
            st->flow->nodes[st->nodes[failed_at]].errors_to ==
                st->flow->nodes[st->errors_of].errors_to &&
            (rc = ember_emit(task, &rec)) != EMBER_OK)
            return rc;
    }
    if (rc < 0) return rc;
    return add_counters(st, task);
}
