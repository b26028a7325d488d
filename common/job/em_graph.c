/* em_graph.c -- validation of job graphs received from the network (see em_graph.h). */
#include "em_graph.h"

#include "em_combine.h"

#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return EMBER_ERR_INVALID;                                                                  \
    } while (0)

const char *em_node_kind_name(Ember__NodeKind kind)
{
    switch (kind) {
    case EMBER__NODE_KIND__NODE_KAFKA: return "kafka";
    case EMBER__NODE_KIND__NODE_PARALLELIZE: return "parallelize";
    case EMBER__NODE_KIND__NODE_RANGE: return "range";
    case EMBER__NODE_KIND__NODE_KAFKA_STREAM: return "kafka_stream";
    case EMBER__NODE_KIND__NODE_TEXT_FILE: return "text_file";
    case EMBER__NODE_KIND__NODE_MAP: return "map";
    case EMBER__NODE_KIND__NODE_FLAT_MAP: return "flat_map";
    case EMBER__NODE_KIND__NODE_FILTER: return "filter";
    case EMBER__NODE_KIND__NODE_MAP_PARTITIONS: return "map_partitions";
    case EMBER__NODE_KIND__NODE_UNION: return "union";
    case EMBER__NODE_KIND__NODE_REDUCE_BY_KEY: return "reduce_by_key";
    case EMBER__NODE_KIND__NODE_AGGREGATE_BY_KEY: return "aggregate_by_key";
    case EMBER__NODE_KIND__NODE_GROUP_BY_KEY: return "group_by_key";
    case EMBER__NODE_KIND__NODE_COGROUP: return "cogroup";
    case EMBER__NODE_KIND__NODE_DISTINCT: return "distinct";
    case EMBER__NODE_KIND__NODE_PARTITION_BY: return "partition_by";
    case EMBER__NODE_KIND__NODE_SORT_BY_KEY: return "sort_by_key";
    case EMBER__NODE_KIND__NODE_WINDOW: return "window";
    case EMBER__NODE_KIND__NODE_MAP_WITH_STATE: return "map_with_state";
    default: return "unknown";
    }
}

const char *em_action_kind_name(Ember__ActionKind kind)
{
    switch (kind) {
    case EMBER__ACTION_KIND__ACTION_COUNT: return "count";
    case EMBER__ACTION_KIND__ACTION_COLLECT: return "collect";
    case EMBER__ACTION_KIND__ACTION_SAVE_KAFKA: return "save_kafka";
    case EMBER__ACTION_KIND__ACTION_SAVE_TEXT: return "save_text";
    case EMBER__ACTION_KIND__ACTION_SAVE_REDIS: return "save_redis";
    default: return "unknown";
    }
}

int em_node_is_source(Ember__NodeKind kind)
{
    return kind == EMBER__NODE_KIND__NODE_KAFKA || kind == EMBER__NODE_KIND__NODE_PARALLELIZE ||
           kind == EMBER__NODE_KIND__NODE_RANGE || kind == EMBER__NODE_KIND__NODE_TEXT_FILE;
}

int em_node_is_wide(Ember__NodeKind kind)
{
    return kind >= EMBER__NODE_KIND__NODE_REDUCE_BY_KEY &&
           kind <= EMBER__NODE_KIND__NODE_MAP_WITH_STATE;
}

int em_node_keeps_state(Ember__NodeKind kind)
{
    return kind == EMBER__NODE_KIND__NODE_WINDOW || kind == EMBER__NODE_KIND__NODE_MAP_WITH_STATE;
}

int em_node_combines(Ember__NodeKind kind)
{
    return kind == EMBER__NODE_KIND__NODE_REDUCE_BY_KEY ||
           kind == EMBER__NODE_KIND__NODE_AGGREGATE_BY_KEY ||
           kind == EMBER__NODE_KIND__NODE_DISTINCT || kind == EMBER__NODE_KIND__NODE_WINDOW;
}

int em_node_groups(Ember__NodeKind kind)
{
    return kind == EMBER__NODE_KIND__NODE_GROUP_BY_KEY || kind == EMBER__NODE_KIND__NODE_COGROUP;
}

static int is_narrow_op(Ember__NodeKind kind)
{
    return kind == EMBER__NODE_KIND__NODE_MAP || kind == EMBER__NODE_KIND__NODE_FLAT_MAP ||
           kind == EMBER__NODE_KIND__NODE_FILTER || kind == EMBER__NODE_KIND__NODE_MAP_PARTITIONS;
}

static int bounded_string(const char *s, size_t max) { return s && strnlen(s, max + 1) <= max; }

static int validate_source(const Ember__Node *n, size_t data_len, char *err, size_t errlen)
{
    switch (n->kind) {
    case EMBER__NODE_KIND__NODE_KAFKA:
        if (!bounded_string(n->topic, 249) || !n->topic[0]) FAIL("node %u: bad topic name", n->id);
        if (!bounded_string(n->bootstrap, 1024) || !n->bootstrap[0])
            FAIL("node %u: kafka source without a broker address", n->id);
        if (n->n_ranges == 0 || n->n_ranges > EM_GRAPH_MAX_PARTITIONS)
            FAIL("node %u: kafka source with %zu ranges", n->id, n->n_ranges);
        for (size_t i = 0; i < n->n_ranges; i++) {
            const Ember__KafkaRange *r = n->ranges[i];
            if (r->partition < 0 || r->from < 0 || r->until < r->from)
                FAIL("node %u: bad kafka range [%lld, %lld) of partition %d", n->id,
                     (long long)r->from, (long long)r->until, r->partition);
        }
        return EMBER_OK;
    case EMBER__NODE_KIND__NODE_PARALLELIZE:
        if (n->partitions == 0 || n->partitions > EM_GRAPH_MAX_PARTITIONS ||
            n->n_data_offsets != (size_t)n->partitions + 1)
            FAIL("node %u: parallelize with %u partitions and %zu offsets", n->id, n->partitions,
                 n->n_data_offsets);
        for (size_t i = 0; i < n->partitions; i++)
            if (n->data_offsets[i] > n->data_offsets[i + 1]) FAIL("node %u: bad offsets", n->id);
        if (n->data_offsets[n->partitions] > data_len)
            FAIL("node %u: parallelized data beyond the %zu bytes sent", n->id, data_len);
        return EMBER_OK;
    case EMBER__NODE_KIND__NODE_RANGE:
        if (n->partitions == 0 || n->partitions > EM_GRAPH_MAX_PARTITIONS)
            FAIL("node %u: range with %u partitions (1..%d)", n->id, n->partitions,
                 EM_GRAPH_MAX_PARTITIONS);
        if (n->range_end < n->range_start) FAIL("node %u: range end before start", n->id);
        return EMBER_OK;
    case EMBER__NODE_KIND__NODE_TEXT_FILE:
        if (n->n_splits == 0 || n->n_splits > EM_GRAPH_MAX_PARTITIONS)
            FAIL("node %u: text file source with %zu splits (1..%d)", n->id, n->n_splits,
                 EM_GRAPH_MAX_PARTITIONS);
        for (size_t i = 0; i < n->n_splits; i++) {
            const Ember__FileSplit *sp = n->splits[i];
            if (!bounded_string(sp->path, EM_GRAPH_MAX_PATH) || sp->path[0] != '/')
                FAIL("node %u: split %zu: not an absolute path of at most %d bytes", n->id, i,
                     EM_GRAPH_MAX_PATH);
            if (sp->offset > sp->file_size || sp->length > sp->file_size - sp->offset)
                FAIL("node %u: split %zu: bytes [%llu, +%llu) of a file of %llu", n->id, i,
                     (unsigned long long)sp->offset, (unsigned long long)sp->length,
                     (unsigned long long)sp->file_size);
        }
        return EMBER_OK;
    default: FAIL("node %u: unknown kind %d", n->id, (int)n->kind);
    }
}

static int validate_aggregate(const Ember__Node *n, char *err, size_t errlen)
{
    const char *kind = em_node_kind_name(n->kind);
    if (!bounded_string(n->fn_symbol, EM_SYMBOL_MAX) || !n->fn_symbol[0] ||
        !bounded_string(n->comb_symbol, EM_SYMBOL_MAX) || !n->comb_symbol[0])
        FAIL("node %u (%s) without its two functions", n->id, kind);
    if (n->fn_arg.len == 0 || n->fn_arg.len > EMBER_ACC_MAX)
        FAIL("node %u (%s): accumulator of %zu bytes (1..%d)", n->id, kind, n->fn_arg.len,
             EMBER_ACC_MAX);
    return EMBER_OK;
}

/* validate_state_dir: a streaming node's state, placed by the driver in a batch's graph */
static int validate_state_dir(const Ember__Node *n, char *err, size_t errlen)
{
    const char *kind = em_node_kind_name(n->kind);
    if (!bounded_string(n->state_dir, EM_STATE_DIR_MAX) || !n->state_dir[0])
        FAIL("node %u (%s): it runs only in streaming queries (ember_stream_to_files, "
             "ember_stream_to_kafka)",
             n->id, kind);
    if (n->state_dir[0] != '/' || n->state_version < 0)
        FAIL("node %u (%s): bad state directory or version", n->id, kind);
    return EMBER_OK;
}

static int validate_map_with_state(const Ember__Node *n, char *err, size_t errlen)
{
    if (!bounded_string(n->fn_symbol, EM_SYMBOL_MAX) || !n->fn_symbol[0])
        FAIL("node %u (map_with_state) without its function", n->id);
    if (n->state_len == 0 || n->state_len > EMBER_STATE_MAX)
        FAIL("node %u (map_with_state): a state of %u bytes (1..%d)", n->id, n->state_len,
             EMBER_STATE_MAX);
    if (n->state_ttl_ms < 0) FAIL("node %u (map_with_state): a negative time-to-live", n->id);
    return validate_state_dir(n, err, errlen);
}

/* validate_window: the window's shape, its fold, and (in a batch's graph) its state */
static int validate_window(const Ember__Node *n, char *err, size_t errlen)
{
    if (n->window_length_ms <= 0 || n->window_slide_ms <= 0 ||
        n->window_length_ms % n->window_slide_ms != 0 ||
        n->window_length_ms / n->window_slide_ms > EM_WINDOW_MAX_PANES)
        FAIL("node %u (window): length %lld ms and slide %lld ms (the slide must divide the "
             "length, at most %d slides per window)",
             n->id, (long long)n->window_length_ms, (long long)n->window_slide_ms,
             EM_WINDOW_MAX_PANES);
    if (n->window_length_ms > EM_EVENT_TIME_MAX / 4)
        FAIL("node %u (window): a length of %lld ms", n->id, (long long)n->window_length_ms);
    if (n->late_topic[0] && (!bounded_string(n->late_topic, 249) ||
                             !bounded_string(n->bootstrap, 1024) || !n->bootstrap[0]))
        FAIL("node %u (window): a late topic needs a valid name and the job's broker", n->id);
    if (n->watermark_delay_ms < 0 || n->watermark_delay_ms > EM_EVENT_TIME_MAX / 4)
        FAIL("node %u (window): a watermark delay of %lld ms", n->id,
             (long long)n->watermark_delay_ms);
    if (n->window_count) {
        if (n->reducer != EMBER__REDUCER__REDUCER_SUM_I64)
            FAIL("node %u (window): a count sums 8-byte ones", n->id);
    } else if (n->fn_symbol[0] || n->comb_symbol[0]) {
        int rc = validate_aggregate(n, err, errlen);
        if (rc != EMBER_OK) return rc;
    } else if (!em_reducer_valid(n->reducer)) {
        FAIL("node %u (window): unknown reducer %d", n->id, (int)n->reducer);
    }
    return validate_state_dir(n, err, errlen);
}

static int validate_wide(const Ember__Node *n, char *err, size_t errlen)
{
    const char *kind = em_node_kind_name(n->kind);
    size_t parents = n->kind == EMBER__NODE_KIND__NODE_COGROUP ? 2 : 1;
    if (n->n_parents != parents)
        FAIL("node %u (%s) needs %zu parent%s", n->id, kind, parents, parents > 1 ? "s" : "");
    if (n->partitions == 0 || n->partitions > EM_GRAPH_MAX_PARTITIONS)
        FAIL("node %u (%s) with %u partitions (1..%d)", n->id, kind, n->partitions,
             EM_GRAPH_MAX_PARTITIONS);
    switch (n->kind) {
    case EMBER__NODE_KIND__NODE_REDUCE_BY_KEY:
        if (!em_reducer_valid(n->reducer))
            FAIL("node %u: unknown reducer %d", n->id, (int)n->reducer);
        return EMBER_OK;
    case EMBER__NODE_KIND__NODE_AGGREGATE_BY_KEY: return validate_aggregate(n, err, errlen);
    case EMBER__NODE_KIND__NODE_WINDOW: return validate_window(n, err, errlen);
    case EMBER__NODE_KIND__NODE_MAP_WITH_STATE: return validate_map_with_state(n, err, errlen);
    case EMBER__NODE_KIND__NODE_SORT_BY_KEY:
        if (n->n_sort_bounds >= n->partitions)
            FAIL("node %u (sort_by_key): %zu bounds for %u partitions", n->id, n->n_sort_bounds,
                 n->partitions);
        for (size_t b = 0; b < n->n_sort_bounds; b++) {
            if (n->sort_bounds[b].len > EM_GRAPH_MAX_KEY)
                FAIL("node %u (sort_by_key): bound of %zu bytes", n->id, n->sort_bounds[b].len);
            if (b > 0 && em_key_compare(n->sort_bounds[b - 1].data, n->sort_bounds[b - 1].len,
                                        n->sort_bounds[b].data, n->sort_bounds[b].len) > 0)
                FAIL("node %u (sort_by_key): bounds out of order", n->id);
        }
        return EMBER_OK;
    default: return EMBER_OK;
    }
}

int em_key_compare(const void *a, size_t a_len, const void *b, size_t b_len)
{
    size_t n = a_len < b_len ? a_len : b_len;
    int c = n ? memcmp(a, b, n) : 0; /* an empty key may come as NULL */
    if (c != 0 || a_len == b_len) return c;
    return a_len < b_len ? -1 : 1;
}

static int validate_action(const Ember__Action *a, char *err, size_t errlen)
{
    if (!a) FAIL("graph without an action");
    switch (a->kind) {
    case EMBER__ACTION_KIND__ACTION_COUNT:
    case EMBER__ACTION_KIND__ACTION_COLLECT: return EMBER_OK;
    case EMBER__ACTION_KIND__ACTION_SAVE_KAFKA:
        if (!bounded_string(a->topic, 249) || !a->topic[0] || !bounded_string(a->bootstrap, 1024) ||
            !a->bootstrap[0])
            FAIL("save_kafka needs a topic and a broker address");
        if (!bounded_string(a->kafka_query, 512) || a->kafka_batch < 0 ||
            a->n_kafka_marks > EM_GRAPH_MAX_PARTITIONS)
            FAIL("save_kafka: a bad fence");
        for (size_t i = 0; i < a->n_kafka_marks; i++)
            if (a->kafka_marks[i]->partition < 0 || a->kafka_marks[i]->from < 0)
                FAIL("save_kafka: a bad mark of partition %d", a->kafka_marks[i]->partition);
        return EMBER_OK;
    case EMBER__ACTION_KIND__ACTION_SAVE_TEXT:
        if (!bounded_string(a->path, 4000) || !a->path[0]) FAIL("save_text needs a directory");
        if (a->path[0] != '/')
            FAIL("save_text: '%s' is not an absolute path: every executor resolves the "
                 "directory on its own host (on several hosts it must be shared storage)",
                 a->path);
        return EMBER_OK;
    case EMBER__ACTION_KIND__ACTION_SAVE_REDIS:
        if (!bounded_string(a->redis_address, 1024) || !a->redis_address[0])
            FAIL("save_redis needs a server address (host:port or unix:/path)");
        if (!bounded_string(a->redis_password, 512)) FAIL("save_redis: password too long");
        if (a->redis_command < EMBER__REDIS_COMMAND__REDIS_SET ||
            a->redis_command > EMBER__REDIS_COMMAND__REDIS_ZADD)
            FAIL("save_redis: unknown command %d", (int)a->redis_command);
        if (a->redis_ttl_ms < 0) FAIL("save_redis: a negative time-to-live");
        if (!bounded_string(a->redis_fence, 512) || a->redis_batch < 0)
            FAIL("save_redis: a bad fence");
        return EMBER_OK;
    default: FAIL("unknown action %d", (int)a->kind);
    }
}

int em_graph_validate(const Ember__JobGraph *g, size_t data_len, char *err, size_t errlen)
{
    if (g->n_nodes == 0 || g->n_nodes > EM_GRAPH_MAX_NODES)
        FAIL("graph with %zu nodes (1..%d)", g->n_nodes, EM_GRAPH_MAX_NODES);
    if (g->target >= g->n_nodes) FAIL("action on node %u of %zu", g->target, g->n_nodes);
    if (g->library_sha256.len != 32) FAIL("graph without a job library hash");
    if (!bounded_string(g->library_name, 255)) FAIL("bad library name");
    if (!bounded_string(g->description, EMBER_DESCRIPTION_MAX)) FAIL("bad job description");
    for (size_t i = 0; i < g->n_nodes; i++) {
        const Ember__Node *n = g->nodes[i];
        if (n->id != i) FAIL("node %zu has id %u", i, n->id);
        for (size_t p = 0; p < n->n_parents; p++)
            if (n->parents[p] >= i)
                FAIL("node %zu has a parent %u not before it", i, n->parents[p]);
        if (em_node_is_source(n->kind)) {
            if (n->n_parents != 0) FAIL("source node %zu has parents", i);
            int rc = validate_source(n, data_len, err, errlen);
            if (rc != EMBER_OK) return rc;
        } else if (em_node_is_wide(n->kind)) {
            int rc = validate_wide(n, err, errlen);
            if (rc != EMBER_OK) return rc;
        } else if (n->kind == EMBER__NODE_KIND__NODE_UNION) {
            if (n->n_parents != 2) FAIL("node %zu (union) needs two parents", i);
            if (em_node_partitions(g, (uint32_t)i) > EM_GRAPH_MAX_PARTITIONS)
                FAIL("node %zu (union) has more than %d partitions", i, EM_GRAPH_MAX_PARTITIONS);
        } else if (is_narrow_op(n->kind)) {
            if (n->n_parents != 1)
                FAIL("node %zu (%s) needs one parent", i, em_node_kind_name(n->kind));
            if (!bounded_string(n->fn_symbol, EM_SYMBOL_MAX) || !n->fn_symbol[0])
                FAIL("node %zu (%s) without a function symbol", i, em_node_kind_name(n->kind));
        } else {
            FAIL("node %zu has unknown kind %d", i, (int)n->kind);
        }
    }
    return validate_action(g->action, err, errlen);
}

int em_graph_validate_query(const Ember__JobGraph *g, int32_t *stream_node, char *err,
                            size_t errlen)
{
    *stream_node = -1;
    if (g->n_nodes == 0 || g->n_nodes > EM_GRAPH_MAX_NODES)
        FAIL("graph with %zu nodes (1..%d)", g->n_nodes, EM_GRAPH_MAX_NODES);
    for (size_t i = 0; i < g->n_nodes; i++) {
        const Ember__Node *n = g->nodes[i];
        if (n->kind == EMBER__NODE_KIND__NODE_KAFKA_STREAM) {
            if (*stream_node >= 0) FAIL("a query reads one Kafka stream; this one reads two");
            *stream_node = (int32_t)i;
        } else if (n->kind == EMBER__NODE_KIND__NODE_PARALLELIZE) {
            FAIL("node %zu: a query's static datasets come from Kafka topics or ranges; "
                 "parallelized records are not kept with a query",
                 i);
        } else if (n->kind == EMBER__NODE_KIND__NODE_SORT_BY_KEY) {
            FAIL("node %zu: sort_by_key in a query: its bounds are sampled from a dataset, not "
                 "from a stream's batches",
                 i);
        } else if (em_node_keeps_state(n->kind) && n->state_dir[0]) {
            FAIL("node %zu (%s): the driver places a query's state", i, em_node_kind_name(n->kind));
        }
    }
    if (*stream_node < 0) FAIL("a query needs a Kafka stream source (ember_kafka_stream)");
    const Ember__Node *s = g->nodes[*stream_node];
    if (s->n_ranges != 0) FAIL("node %d: a Kafka stream with fixed ranges", *stream_node);
    if (s->max_per_partition < 0 || s->max_rate_per_partition < 0)
        FAIL("node %d: a negative cap per partition", *stream_node);
    if (s->n_start_offsets > EM_GRAPH_MAX_PARTITIONS)
        FAIL("node %d: %zu starting offsets", *stream_node, s->n_start_offsets);
    for (size_t i = 0; i < s->n_start_offsets; i++)
        if (s->start_offsets[i]->partition < 0 || s->start_offsets[i]->from < 0)
            FAIL("node %d: starting offset %lld of partition %d", *stream_node,
                 (long long)s->start_offsets[i]->from, s->start_offsets[i]->partition);
    if (!g->action || (g->action->kind != EMBER__ACTION_KIND__ACTION_SAVE_TEXT &&
                       g->action->kind != EMBER__ACTION_KIND__ACTION_SAVE_KAFKA &&
                       g->action->kind != EMBER__ACTION_KIND__ACTION_SAVE_REDIS))
        FAIL("a query's sink is files, a Kafka topic or Redis");
    if (g->action->redis_fence[0] || g->action->kafka_query[0] || g->action->n_kafka_marks)
        FAIL("the driver places a query's fence");
    /* the rest as a batch's graph would be: the stream read as one range of one partition,
     * the windows' state placed */
    Ember__Node **nodes = malloc(g->n_nodes * sizeof *nodes);
    Ember__Node *copies = malloc(g->n_nodes * sizeof *copies);
    if (!nodes || !copies) {
        free(nodes);
        free(copies);
        FAIL("out of memory");
    }
    Ember__KafkaRange range = EMBER__KAFKA_RANGE__INIT, *ranges[1] = {&range};
    for (size_t i = 0; i < g->n_nodes; i++) {
        copies[i] = *g->nodes[i];
        nodes[i] = &copies[i];
        if (em_node_keeps_state(copies[i].kind)) copies[i].state_dir = "/state";
    }
    copies[*stream_node].kind = EMBER__NODE_KIND__NODE_KAFKA;
    copies[*stream_node].n_ranges = 1;
    copies[*stream_node].ranges = ranges;
    Ember__JobGraph batch = *g;
    batch.nodes = nodes;
    int rc = em_graph_validate(&batch, 0, err, errlen);
    free(nodes);
    free(copies);
    return rc;
}

/* partitions_of: a node's partitions, given those of the nodes before it */
static uint64_t partitions_of(const Ember__Node *n, const uint64_t *parts)
{
    if (n->kind == EMBER__NODE_KIND__NODE_KAFKA) return n->n_ranges;
    if (n->kind == EMBER__NODE_KIND__NODE_TEXT_FILE) return n->n_splits;
    if (em_node_is_source(n->kind) || em_node_is_wide(n->kind)) return n->partitions;
    if (n->kind == EMBER__NODE_KIND__NODE_UNION) return parts[n->parents[0]] + parts[n->parents[1]];
    return parts[n->parents[0]];
}

uint32_t em_node_partitions(const Ember__JobGraph *g, uint32_t node)
{
    uint64_t parts[EM_GRAPH_MAX_NODES]; /* a union's count doubles per level: no recursion */
    for (uint32_t i = 0; i <= node; i++) {
        parts[i] = partitions_of(g->nodes[i], parts);
        if (parts[i] > UINT32_MAX) parts[i] = UINT32_MAX;
    }
    return (uint32_t)parts[node];
}

uint32_t em_node_branch(const Ember__JobGraph *g, const Ember__Node *u, uint32_t *partition)
{
    uint32_t left = em_node_partitions(g, u->parents[0]);
    if (*partition < left) return 0;
    *partition -= left;
    return 1;
}

uint32_t em_graph_leaf(const Ember__JobGraph *g, uint32_t node, uint32_t partition,
                       uint32_t *leaf_partition)
{
    const Ember__Node *n = g->nodes[node];
    while (!em_node_is_source(n->kind) && !em_node_is_wide(n->kind)) {
        uint32_t branch =
            n->kind == EMBER__NODE_KIND__NODE_UNION ? em_node_branch(g, n, &partition) : 0;
        n = g->nodes[n->parents[branch]];
    }
    *leaf_partition = partition;
    return n->id;
}
