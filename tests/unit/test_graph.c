/* test_graph.c -- job graphs (common/em_graph.h) and stage planning (driver/em_dag.h).
 *
 * Covers: a JobGraph built in memory (kafka source with 8 ranges -> map -> filter, action
 * save_kafka) survives protobuf pack/unpack field for field; em_graph_validate accepts it
 * (before and after the round trip) and rejects, with a message naming the problem, each of:
 * a parent not before its node, a source with parents, an operation without a symbol, a kafka
 * source without ranges or with from > until, parallelize offsets beyond the data sent, zero
 * partitions, a target out of range, a missing action, a library hash of the wrong length,
 * window nodes of the wrong shape or outside a query, and more; em_dag_plan cuts the narrow chain
 * into exactly one stage; em_node_partitions for every node of kafka, range and parallelize chains.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ember/ember.h>

#include "em_dag.h"
#include "em_frame.h" /* em_pb_free */
#include "em_graph.h"

#define N_RANGES 8

/* fixture: a whole graph in one struct, so each test case can build a fresh one and break
 * exactly one thing in it. Nothing is heap-allocated. */
typedef struct fixture {
    Ember__JobGraph g;
    Ember__Node nodes[3];
    Ember__Node *node_ptrs[3];
    uint32_t parents[3];
    Ember__KafkaRange ranges[N_RANGES];
    Ember__KafkaRange *range_ptrs[N_RANGES];
    uint64_t offsets[4];
    Ember__Action action;
    uint8_t sha[33];
    uint8_t arg[3];
} fixture;

/* build: kafka "rides" (8 ranges: partition i, offsets [100i, 100i+50)) -> map parse_ride
 * (arg 01 02 03) -> filter is_long; save_kafka to "long_rides". */
static void build(fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    for (int i = 0; i < N_RANGES; i++) {
        ember__kafka_range__init(&fx->ranges[i]);
        fx->ranges[i].partition = i;
        fx->ranges[i].from = 100 * i;
        fx->ranges[i].until = 100 * i + 50;
        fx->range_ptrs[i] = &fx->ranges[i];
    }
    for (uint32_t i = 0; i < 3; i++) {
        ember__node__init(&fx->nodes[i]);
        fx->nodes[i].id = i;
        fx->node_ptrs[i] = &fx->nodes[i];
    }
    Ember__Node *src = &fx->nodes[0], *map = &fx->nodes[1], *filter = &fx->nodes[2];
    src->kind = EMBER__NODE_KIND__NODE_KAFKA;
    src->topic = "rides";
    src->bootstrap = "127.0.0.1:9092";
    src->n_ranges = N_RANGES;
    src->ranges = fx->range_ptrs;

    fx->parents[1] = 0;
    fx->parents[2] = 1;
    memcpy(fx->arg, "\x01\x02\x03", 3);
    map->kind = EMBER__NODE_KIND__NODE_MAP;
    map->n_parents = 1;
    map->parents = &fx->parents[1];
    map->fn_symbol = "parse_ride";
    map->fn_arg.data = fx->arg;
    map->fn_arg.len = 3;
    filter->kind = EMBER__NODE_KIND__NODE_FILTER;
    filter->n_parents = 1;
    filter->parents = &fx->parents[2];
    filter->fn_symbol = "is_long";

    ember__action__init(&fx->action);
    fx->action.kind = EMBER__ACTION_KIND__ACTION_SAVE_KAFKA;
    fx->action.topic = "long_rides";
    fx->action.bootstrap = "127.0.0.1:9092";

    ember__job_graph__init(&fx->g);
    fx->g.n_nodes = 3;
    fx->g.nodes = fx->node_ptrs;
    fx->g.target = 2;
    fx->g.action = &fx->action;
    for (int i = 0; i < 33; i++) fx->sha[i] = (uint8_t)(0xa0 + i);
    fx->g.library_sha256.data = fx->sha;
    fx->g.library_sha256.len = 32;
    fx->g.library_name = "libtaxi.so";
}

/* use_parallelize turns node 0 into a 3-partition parallelize source over 30 bytes. */
static void use_parallelize(fixture *fx)
{
    Ember__Node *src = &fx->nodes[0];
    src->kind = EMBER__NODE_KIND__NODE_PARALLELIZE;
    src->n_ranges = 0;
    src->ranges = NULL;
    src->partitions = 3;
    fx->offsets[0] = 0;
    fx->offsets[1] = 10;
    fx->offsets[2] = 10; /* an empty partition is fine */
    fx->offsets[3] = 30;
    src->n_data_offsets = 4;
    src->data_offsets = fx->offsets;
}

/* expect_invalid validates g and checks the code and that the message contains `part`. */
static void expect_invalid(const Ember__JobGraph *g, size_t data_len, const char *part)
{
    char err[256] = "";
    int rc = em_graph_validate(g, data_len, err, sizeof err);
    if (rc != EMBER_ERR_INVALID) fail_msg("expected EMBER_ERR_INVALID for '%s', got %d", part, rc);
    if (!strstr(err, part)) fail_msg("message '%s' does not mention '%s'", err, part);
}

static void expect_valid(const Ember__JobGraph *g, size_t data_len)
{
    char err[256] = "";
    int rc = em_graph_validate(g, data_len, err, sizeof err);
    if (rc != EMBER_OK) fail_msg("valid graph refused (%d): %s", rc, err);
}

/* ---- serialization ---------------------------------------------------------------------- */

static void test_graph_pack_unpack(void **state)
{
    (void)state;
    fixture fx;
    build(&fx);
    expect_valid(&fx.g, 0);
    size_t len = protobuf_c_message_get_packed_size(&fx.g.base);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(protobuf_c_message_pack(&fx.g.base, buf), len);

    Ember__JobGraph *g = ember__job_graph__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(g);
    assert_int_equal(g->n_nodes, 3);
    assert_int_equal(g->target, 2);
    assert_int_equal(g->library_sha256.len, 32);
    assert_memory_equal(g->library_sha256.data, fx.sha, 32);
    assert_string_equal(g->library_name, "libtaxi.so");
    assert_non_null(g->action);
    assert_int_equal(g->action->kind, EMBER__ACTION_KIND__ACTION_SAVE_KAFKA);
    assert_string_equal(g->action->topic, "long_rides");
    assert_string_equal(g->action->bootstrap, "127.0.0.1:9092");
    assert_string_equal(g->action->path, "");

    const Ember__Node *src = g->nodes[0], *map = g->nodes[1], *filter = g->nodes[2];
    assert_int_equal(src->id, 0);
    assert_int_equal(src->kind, EMBER__NODE_KIND__NODE_KAFKA);
    assert_int_equal(src->n_parents, 0);
    assert_string_equal(src->topic, "rides");
    assert_string_equal(src->bootstrap, "127.0.0.1:9092");
    assert_int_equal(src->n_ranges, N_RANGES);
    for (int i = 0; i < N_RANGES; i++) {
        assert_int_equal(src->ranges[i]->partition, i);
        assert_int_equal(src->ranges[i]->from, 100 * i);
        assert_int_equal(src->ranges[i]->until, 100 * i + 50);
    }
    assert_int_equal(map->id, 1);
    assert_int_equal(map->kind, EMBER__NODE_KIND__NODE_MAP);
    assert_int_equal(map->n_parents, 1);
    assert_int_equal(map->parents[0], 0);
    assert_string_equal(map->fn_symbol, "parse_ride");
    assert_int_equal(map->fn_arg.len, 3);
    assert_memory_equal(map->fn_arg.data, "\x01\x02\x03", 3);
    assert_int_equal(filter->id, 2);
    assert_int_equal(filter->kind, EMBER__NODE_KIND__NODE_FILTER);
    assert_int_equal(filter->n_parents, 1);
    assert_int_equal(filter->parents[0], 1);
    assert_string_equal(filter->fn_symbol, "is_long");
    assert_int_equal(filter->fn_arg.len, 0);

    /* the received copy validates and plans like the original */
    expect_valid(g, 0);
    em_stage_plan *stages = NULL;
    size_t n = 0;
    char err[256] = "";
    assert_int_equal(em_dag_plan(g, &stages, &n, err, sizeof err), EMBER_OK);
    assert_int_equal(n, 1);
    assert_int_equal(stages[0].partitions, N_RANGES);
    free(stages);
    em_pb_free(g);
}

/* ---- validation ------------------------------------------------------------------------- */

static void test_validate_structure(void **state)
{
    (void)state;
    fixture fx;

    build(&fx);
    fx.parents[2] = 2; /* its own parent */
    expect_invalid(&fx.g, 0, "node 2 has a parent 2 not before it");
    build(&fx);
    fx.parents[1] = 2; /* a later node */
    expect_invalid(&fx.g, 0, "node 1 has a parent 2 not before it");

    build(&fx); /* a source in the middle that has a parent */
    fx.nodes[1].kind = EMBER__NODE_KIND__NODE_RANGE;
    fx.nodes[1].partitions = 4;
    expect_invalid(&fx.g, 0, "source node 1 has parents");

    build(&fx);
    fx.nodes[1].n_parents = 0;
    expect_invalid(&fx.g, 0, "node 1 (map) needs one parent");

    build(&fx);
    fx.nodes[1].id = 5;
    expect_invalid(&fx.g, 0, "node 1 has id 5");

    build(&fx);
    fx.nodes[2].kind = (Ember__NodeKind)99;
    expect_invalid(&fx.g, 0, "node 2 has unknown kind 99");

    build(&fx);
    fx.g.n_nodes = 0;
    expect_invalid(&fx.g, 0, "graph with 0 nodes");

    build(&fx);
    fx.g.target = 3;
    expect_invalid(&fx.g, 0, "action on node 3 of 3");
    fx.g.target = UINT32_MAX;
    expect_invalid(&fx.g, 0, "of 3");
}

static void test_validate_functions(void **state)
{
    (void)state;
    fixture fx;
    build(&fx);
    fx.nodes[1].fn_symbol = "";
    expect_invalid(&fx.g, 0, "node 1 (map) without a function symbol");
    build(&fx);
    fx.nodes[2].fn_symbol = NULL;
    expect_invalid(&fx.g, 0, "node 2 (filter) without a function symbol");

    char longest[EM_SYMBOL_MAX + 2];
    memset(longest, 's', sizeof longest);
    longest[EM_SYMBOL_MAX] = '\0'; /* exactly EM_SYMBOL_MAX characters: accepted */
    build(&fx);
    fx.nodes[1].fn_symbol = longest;
    expect_valid(&fx.g, 0);
    longest[EM_SYMBOL_MAX] = 's';
    longest[EM_SYMBOL_MAX + 1] = '\0'; /* one more: refused */
    expect_invalid(&fx.g, 0, "without a function symbol");
}

static void test_validate_kafka_source(void **state)
{
    (void)state;
    fixture fx;
    build(&fx);
    fx.nodes[0].n_ranges = 0;
    expect_invalid(&fx.g, 0, "node 0: kafka source with 0 ranges");

    build(&fx);
    fx.ranges[3].from = 360;
    fx.ranges[3].until = 350;
    expect_invalid(&fx.g, 0, "node 0: bad kafka range [360, 350) of partition 3");

    build(&fx); /* an empty range [x, x) is allowed */
    fx.ranges[3].until = fx.ranges[3].from;
    expect_valid(&fx.g, 0);

    build(&fx);
    fx.ranges[0].partition = -1;
    expect_invalid(&fx.g, 0, "of partition -1");
    build(&fx);
    fx.ranges[7].from = -5;
    expect_invalid(&fx.g, 0, "bad kafka range [-5, 750)");

    build(&fx);
    fx.nodes[0].topic = "";
    expect_invalid(&fx.g, 0, "node 0: bad topic name");
    build(&fx);
    fx.nodes[0].bootstrap = "";
    expect_invalid(&fx.g, 0, "kafka source without a broker address");
}

static void test_validate_parallelize_and_range(void **state)
{
    (void)state;
    fixture fx;
    build(&fx);
    use_parallelize(&fx);
    expect_valid(&fx.g, 30);
    expect_valid(&fx.g, 1000); /* more data than the node uses is fine */
    expect_invalid(&fx.g, 29, "node 0: parallelized data beyond the 29 bytes sent");
    expect_invalid(&fx.g, 0, "beyond the 0 bytes sent");

    build(&fx);
    use_parallelize(&fx);
    fx.offsets[2] = 9; /* decreasing */
    expect_invalid(&fx.g, 30, "node 0: bad offsets");

    build(&fx);
    use_parallelize(&fx);
    fx.nodes[0].n_data_offsets = 3; /* must be partitions + 1 */
    expect_invalid(&fx.g, 30, "parallelize with 3 partitions and 3 offsets");

    build(&fx);
    use_parallelize(&fx);
    fx.nodes[0].partitions = 0;
    fx.nodes[0].n_data_offsets = 1;
    expect_invalid(&fx.g, 30, "parallelize with 0 partitions");

    build(&fx);
    fx.nodes[0].kind = EMBER__NODE_KIND__NODE_RANGE;
    fx.nodes[0].range_start = -10;
    fx.nodes[0].range_end = 10;
    fx.nodes[0].partitions = 4;
    expect_valid(&fx.g, 0);
    fx.nodes[0].partitions = 0;
    expect_invalid(&fx.g, 0, "node 0: range with 0 partitions");
    fx.nodes[0].partitions = EM_GRAPH_MAX_PARTITIONS + 1;
    expect_invalid(&fx.g, 0, "range with 1000001 partitions");
    fx.nodes[0].partitions = 4;
    fx.nodes[0].range_end = -11;
    expect_invalid(&fx.g, 0, "node 0: range end before start");
}

static void test_validate_text_file(void **state)
{
    (void)state;
    fixture fx;
    build(&fx);
    Ember__FileSplit a = EMBER__FILE_SPLIT__INIT, b = EMBER__FILE_SPLIT__INIT;
    a.path = b.path = "/data/a.txt";
    a.length = b.offset = 100;
    b.length = 20;
    a.file_size = b.file_size = 120;
    Ember__FileSplit *splits[] = {&a, &b};
    fx.nodes[0].kind = EMBER__NODE_KIND__NODE_TEXT_FILE;
    fx.nodes[0].splits = splits;
    fx.nodes[0].n_splits = 2;
    expect_valid(&fx.g, 0);
    assert_int_equal(em_node_partitions(&fx.g, 2), 2);
    b.length = 21; /* past the file's end */
    expect_invalid(&fx.g, 0, "node 0: split 1: bytes [100, +21) of a file of 120");
    b.length = 20;
    b.offset = UINT64_MAX; /* no wrap-around */
    expect_invalid(&fx.g, 0, "node 0: split 1: bytes");
    b.offset = 100;
    a.path = "data/a.txt";
    expect_invalid(&fx.g, 0, "node 0: split 0: not an absolute path");
    a.path = "/data/a.txt";
    fx.nodes[0].n_splits = 0;
    expect_invalid(&fx.g, 0, "node 0: text file source with 0 splits");
}

static void test_validate_action_and_library(void **state)
{
    (void)state;
    fixture fx;
    build(&fx);
    fx.g.action = NULL;
    expect_invalid(&fx.g, 0, "graph without an action");

    build(&fx);
    fx.action.kind = EMBER__ACTION_KIND__ACTION_UNSPECIFIED;
    expect_invalid(&fx.g, 0, "unknown action 0");
    build(&fx);
    fx.action.topic = "";
    expect_invalid(&fx.g, 0, "save_kafka needs a topic and a broker address");
    build(&fx);
    fx.action.bootstrap = "";
    expect_invalid(&fx.g, 0, "save_kafka needs a topic and a broker address");
    build(&fx);
    fx.action.kind = EMBER__ACTION_KIND__ACTION_SAVE_TEXT;
    expect_invalid(&fx.g, 0, "save_text needs a directory");
    fx.action.path = "out";
    expect_invalid(&fx.g, 0, "'out' is not an absolute path");
    fx.action.path = "/tmp/out";
    expect_valid(&fx.g, 0);
    fx.action.kind = EMBER__ACTION_KIND__ACTION_COUNT;
    expect_valid(&fx.g, 0);

    static const size_t bad_lens[] = {0, 31, 33};
    for (size_t i = 0; i < 3; i++) {
        build(&fx);
        fx.g.library_sha256.len = bad_lens[i];
        expect_invalid(&fx.g, 0, "graph without a job library hash");
    }
    build(&fx);
    fx.g.library_name = NULL;
    expect_invalid(&fx.g, 0, "bad library name");
}

/* use_window turns the filter into a window node of a streaming batch: sums over 60 s windows
 * sliding every 20 s, its state placed by the driver */
static void use_window(fixture *fx)
{
    Ember__Node *w = &fx->nodes[2];
    w->kind = EMBER__NODE_KIND__NODE_WINDOW;
    w->fn_symbol = "";
    w->reducer = EMBER__REDUCER__REDUCER_SUM_I64;
    w->partitions = 2;
    w->window_length_ms = 60000;
    w->window_slide_ms = 20000;
    w->watermark_delay_ms = 5000;
    w->state_dir = "/ck/state/2";
    w->state_version = 3;
}

static void test_validate_window(void **state)
{
    (void)state;
    fixture fx;
    build(&fx);
    use_window(&fx);
    expect_valid(&fx.g, 0);
    fx.nodes[2].window_slide_ms = 25000;
    expect_invalid(&fx.g, 0, "the slide must divide the length");
    fx.nodes[2].window_slide_ms = 0;
    expect_invalid(&fx.g, 0, "the slide must divide the length");
    fx.nodes[2].window_slide_ms = 1;
    fx.nodes[2].window_length_ms = 100001;
    expect_invalid(&fx.g, 0, "at most 100000 slides per window");

    build(&fx);
    use_window(&fx);
    fx.nodes[2].watermark_delay_ms = -1;
    expect_invalid(&fx.g, 0, "a watermark delay of -1 ms");
    build(&fx);
    use_window(&fx);
    fx.nodes[2].window_slide_ms = fx.nodes[2].window_length_ms = INT64_C(1) << 61;
    expect_invalid(&fx.g, 0, "a length of");
    build(&fx);
    use_window(&fx);
    fx.nodes[2].window_count = 1;
    expect_valid(&fx.g, 0);
    fx.nodes[2].reducer = EMBER__REDUCER__REDUCER_MAX_I64;
    expect_invalid(&fx.g, 0, "a count sums 8-byte ones");
    build(&fx);
    use_window(&fx);
    fx.nodes[2].fn_symbol = "seq";
    expect_invalid(&fx.g, 0, "without its two functions");

    /* a job's own graph never places state: windows belong to queries */
    build(&fx);
    use_window(&fx);
    fx.nodes[2].state_dir = "";
    expect_invalid(&fx.g, 0, "it runs only in streaming queries");
    fx.nodes[2].state_dir = "relative/state";
    expect_invalid(&fx.g, 0, "bad state directory");
}

static void test_validate_map_with_state(void **state)
{
    (void)state;
    fixture fx;
    build(&fx);
    Ember__Node *m = &fx.nodes[2];
    m->kind = EMBER__NODE_KIND__NODE_MAP_WITH_STATE;
    m->fn_symbol = "track";
    m->partitions = 2;
    m->state_len = 16;
    m->state_ttl_ms = 60000;
    m->state_dir = "/ck/state/2";
    expect_valid(&fx.g, 0);
    m->state_len = 0;
    expect_invalid(&fx.g, 0, "a state of 0 bytes");
    m->state_len = EMBER_STATE_MAX + 1;
    expect_invalid(&fx.g, 0, "(1..4096)");
    m->state_len = 16;
    m->state_ttl_ms = -1;
    expect_invalid(&fx.g, 0, "a negative time-to-live");
    m->state_ttl_ms = 0;
    m->fn_symbol = "";
    expect_invalid(&fx.g, 0, "without its function");
    m->fn_symbol = "track";
    m->state_dir = "";
    expect_invalid(&fx.g, 0, "(map_with_state): it runs only in streaming queries");
}

/* ---- planning --------------------------------------------------------------------------- */

static void test_dag_plan_narrow_chain(void **state)
{
    (void)state;
    fixture fx;
    build(&fx);
    for (uint32_t target = 0; target < 3; target++) {
        fx.g.target = target;
        expect_valid(&fx.g, 0);
        em_stage_plan *stages = NULL;
        size_t n = 99;
        char err[256] = "";
        assert_int_equal(em_dag_plan(&fx.g, &stages, &n, err, sizeof err), EMBER_OK);
        assert_int_equal(n, 1);
        assert_int_equal(stages[0].node, target);
        assert_int_equal(stages[0].source, 0);
        assert_int_equal(stages[0].partitions, N_RANGES);
        assert_int_equal(stages[0].n_parents, 0);
        free(stages);
    }
}

static void test_node_partitions(void **state)
{
    (void)state;
    fixture fx;
    build(&fx);
    for (uint32_t i = 0; i < 3; i++) assert_int_equal(em_node_partitions(&fx.g, i), N_RANGES);

    build(&fx);
    use_parallelize(&fx);
    for (uint32_t i = 0; i < 3; i++) assert_int_equal(em_node_partitions(&fx.g, i), 3);

    build(&fx);
    fx.nodes[0].kind = EMBER__NODE_KIND__NODE_RANGE;
    fx.nodes[0].range_end = 100;
    fx.nodes[0].partitions = 5;
    expect_valid(&fx.g, 0);
    for (uint32_t i = 0; i < 3; i++) assert_int_equal(em_node_partitions(&fx.g, i), 5);
    em_stage_plan *stages = NULL;
    size_t n = 0;
    char err[256];
    assert_int_equal(em_dag_plan(&fx.g, &stages, &n, err, sizeof err), EMBER_OK);
    assert_int_equal(n, 1);
    assert_int_equal(stages[0].partitions, 5);
    free(stages);
}

static void test_kind_names(void **state)
{
    (void)state;
    assert_string_equal(em_node_kind_name(EMBER__NODE_KIND__NODE_KAFKA), "kafka");
    assert_string_equal(em_node_kind_name(EMBER__NODE_KIND__NODE_MAP_PARTITIONS), "map_partitions");
    assert_string_equal(em_node_kind_name(EMBER__NODE_KIND__NODE_UNSPECIFIED), "unknown");
    assert_string_equal(em_action_kind_name(EMBER__ACTION_KIND__ACTION_SAVE_KAFKA), "save_kafka");
    assert_string_equal(em_action_kind_name(EMBER__ACTION_KIND__ACTION_UNSPECIFIED), "unknown");
    assert_true(em_node_is_source(EMBER__NODE_KIND__NODE_RANGE));
    assert_true(em_node_is_source(EMBER__NODE_KIND__NODE_PARALLELIZE));
    assert_true(em_node_is_source(EMBER__NODE_KIND__NODE_TEXT_FILE));
    assert_string_equal(em_node_kind_name(EMBER__NODE_KIND__NODE_TEXT_FILE), "text_file");
    assert_false(em_node_is_source(EMBER__NODE_KIND__NODE_FILTER));
    assert_false(em_node_is_wide(EMBER__NODE_KIND__NODE_MAP)); /* API v1: narrow only */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_pack_unpack),
        cmocka_unit_test(test_validate_structure),
        cmocka_unit_test(test_validate_functions),
        cmocka_unit_test(test_validate_kafka_source),
        cmocka_unit_test(test_validate_parallelize_and_range),
        cmocka_unit_test(test_validate_text_file),
        cmocka_unit_test(test_validate_action_and_library),
        cmocka_unit_test(test_validate_window),
        cmocka_unit_test(test_validate_map_with_state),
        cmocka_unit_test(test_dag_plan_narrow_chain),
        cmocka_unit_test(test_node_partitions),
        cmocka_unit_test(test_kind_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
