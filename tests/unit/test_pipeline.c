/* test_pipeline.c -- narrow operations run in-process (common/em_pipeline.h).
 *
 * No job library is built: the user functions are the exported tp_* functions of this test
 * executable (built with ENABLE_EXPORTS), found through dlopen(NULL). Covers: map (uppercase),
 * flat_map (split words), filter (with its argument bytes), map_partitions (count and sum,
 * concatenate) over em_range_source and em_batches_source into a collecting sink, with exact
 * outputs and em_run_stats; a map emitting twice or never fails with EMBER_ERR_USER naming the
 * function; ember_task_fail's message and a user function's own negative code propagate; a
 * failing sink and corrupt parallelized input stop the run; a missing symbol is
 * EMBER_ERR_SYMBOL at em_pipeline_new; em_range_bounds splits [start, end) exactly for many
 * (start, end, n), including n larger than the range and the full int64 range.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ember/ember.h>

#include "em_batch.h"
#include "em_graph.h"
#include "em_pipeline.h"

/* ---- user functions, resolved by name from this executable ------------------------------ */

int tp_upper(ember_task *task, const ember_record *in);
int tp_split_words(ember_task *task, const ember_record *in);
int tp_keep_min_len(ember_task *task, const ember_record *in);
int tp_keep_even(ember_task *task, const ember_record *in);
int tp_count_partition(ember_task *task, ember_iter *in);
int tp_concat(ember_task *task, ember_iter *in);
int tp_emit_twice(ember_task *task, const ember_record *in);
int tp_emit_none(ember_task *task, const ember_record *in);
int tp_fail_on_three(ember_task *task, const ember_record *in);
int tp_filter_fails(ember_task *task, const ember_record *in);
int tp_ignore_emit_errors(ember_task *task, const ember_record *in);

/* tp_upper: value uppercased (up to 256 bytes), key and timestamp kept */
int tp_upper(ember_task *task, const ember_record *in)
{
    char buf[256];
    size_t n = in->value_len < sizeof buf ? in->value_len : sizeof buf;
    for (size_t i = 0; i < n; i++) buf[i] = (char)toupper(((const unsigned char *)in->value)[i]);
    return ember_emit_kv(task, in->key, in->key_len, buf, n, in->timestamp);
}

/* tp_split_words: one record per space-separated word of the value */
int tp_split_words(ember_task *task, const ember_record *in)
{
    const char *v = in->value;
    size_t i = 0;
    while (i < in->value_len) {
        while (i < in->value_len && v[i] == ' ') i++;
        size_t start = i;
        while (i < in->value_len && v[i] != ' ') i++;
        if (i > start) {
            int rc = ember_emit_kv(task, in->key, in->key_len, v + start, i - start, in->timestamp);
            if (rc != EMBER_OK) return rc;
        }
    }
    return EMBER_OK;
}

/* tp_keep_min_len keeps values at least arg[0] bytes long */
int tp_keep_min_len(ember_task *task, const ember_record *in)
{
    size_t len = 0;
    const uint8_t *arg = ember_task_arg(task, &len);
    if (len != 1) return ember_task_fail(task, "expected a 1-byte argument, got %zu", len);
    return in->value_len >= arg[0];
}

int tp_keep_even(ember_task *task, const ember_record *in)
{
    (void)task;
    return ember_value_i64(in) % 2 == 0;
}

/* tp_count_partition emits key "p<partition>", value "<count>:<sum of int64 values>" */
int tp_count_partition(ember_task *task, ember_iter *in)
{
    ember_record rec;
    long long n = 0, sum = 0;
    while (ember_next(in, &rec)) {
        n++;
        sum += ember_value_i64(&rec);
    }
    char key[16], val[64];
    int kl = snprintf(key, sizeof key, "p%d", ember_task_partition(task));
    int vl = snprintf(val, sizeof val, "%lld:%lld", n, sum);
    return ember_emit_kv(task, key, (size_t)kl, val, (size_t)vl, 0);
}

/* tp_concat emits the partition's values joined by ',' (up to 256 bytes) */
int tp_concat(ember_task *task, ember_iter *in)
{
    char buf[256];
    size_t len = 0;
    ember_record rec;
    while (ember_next(in, &rec)) {
        if (len && len < sizeof buf) buf[len++] = ',';
        size_t n = rec.value_len < sizeof buf - len ? rec.value_len : sizeof buf - len;
        memcpy(buf + len, rec.value, n);
        len += n;
    }
    return ember_emit_kv(task, "all", 3, buf, len, 42);
}

int tp_emit_twice(ember_task *task, const ember_record *in)
{
    int rc = ember_emit(task, in);
    return rc != EMBER_OK ? rc : ember_emit(task, in);
}

int tp_emit_none(ember_task *task, const ember_record *in)
{
    (void)task;
    (void)in;
    return EMBER_OK;
}

int tp_fail_on_three(ember_task *task, const ember_record *in)
{
    long long v = (long long)ember_value_i64(in);
    if (v == 3) return ember_task_fail(task, "bad value %lld", v);
    return ember_emit(task, in);
}

/* tp_ignore_emit_errors passes records on and, carelessly, ignores what ember_emit says */
int tp_ignore_emit_errors(ember_task *task, const ember_record *in)
{
    ember_emit(task, in);
    return EMBER_OK;
}

int tp_filter_fails(ember_task *task, const ember_record *in)
{
    (void)task;
    (void)in;
    return EMBER_ERR_IO;
}

/* ---- chains: a source node and narrow operations, as a validated graph ------------------- */

#define MAX_NODES 6

typedef struct chain {
    Ember__JobGraph g;
    Ember__Node nodes[MAX_NODES];
    Ember__Node *ptrs[MAX_NODES];
    uint32_t parents[MAX_NODES];
    uint64_t offsets[2];
    Ember__Action action;
    uint8_t sha[32];
} chain;

static void chain_init(chain *c)
{
    memset(c, 0, sizeof *c);
    ember__job_graph__init(&c->g);
    ember__action__init(&c->action);
    c->action.kind = EMBER__ACTION_KIND__ACTION_COLLECT;
    c->g.action = &c->action;
    c->g.nodes = c->ptrs;
    c->g.library_sha256.data = c->sha;
    c->g.library_sha256.len = sizeof c->sha;
}

static Ember__Node *chain_node(chain *c, Ember__NodeKind kind)
{
    assert_true(c->g.n_nodes < MAX_NODES);
    uint32_t id = (uint32_t)c->g.n_nodes++;
    Ember__Node *n = &c->nodes[id];
    ember__node__init(n);
    n->id = id;
    n->kind = kind;
    c->ptrs[id] = n;
    c->g.target = id;
    if (id > 0) {
        c->parents[id] = id - 1;
        n->parents = &c->parents[id];
        n->n_parents = 1;
    }
    return n;
}

static void chain_range(chain *c, int64_t start, int64_t end, uint32_t partitions)
{
    Ember__Node *n = chain_node(c, EMBER__NODE_KIND__NODE_RANGE);
    n->range_start = start;
    n->range_end = end;
    n->partitions = partitions;
}

static void chain_parallelize(chain *c, size_t data_len)
{
    Ember__Node *n = chain_node(c, EMBER__NODE_KIND__NODE_PARALLELIZE);
    n->partitions = 1;
    c->offsets[1] = data_len;
    n->data_offsets = c->offsets;
    n->n_data_offsets = 2;
}

static void chain_op(chain *c, Ember__NodeKind kind, const char *symbol, const void *arg,
                     size_t arg_len)
{
    Ember__Node *n = chain_node(c, kind);
    n->fn_symbol = (char *)symbol;
    n->fn_arg.data = (uint8_t *)arg;
    n->fn_arg.len = arg_len;
}

/* ---- sink and inputs -------------------------------------------------------------------- */

#define MAX_OUT 64

typedef struct collector {
    size_t n;
    char key[MAX_OUT][32];
    char value[MAX_OUT][64]; /* NUL-terminated copy (values here are text or 8 bytes) */
    size_t value_len[MAX_OUT];
    int64_t ts[MAX_OUT];
    size_t fail_at; /* refuse record number fail_at (0: never) */
} collector;

static int collect(void *arg, const ember_record *rec)
{
    collector *col = arg;
    if (col->fail_at && col->n + 1 == col->fail_at) return EMBER_ERR_IO;
    assert_true(col->n < MAX_OUT);
    assert_true(rec->key_len < 32 && rec->value_len < 64);
    if (rec->key_len) memcpy(col->key[col->n], rec->key, rec->key_len);
    col->key[col->n][rec->key_len] = '\0';
    if (rec->value_len) memcpy(col->value[col->n], rec->value, rec->value_len);
    col->value[col->n][rec->value_len] = '\0';
    col->value_len[col->n] = rec->value_len;
    col->ts[col->n] = rec->timestamp;
    col->n++;
    return EMBER_OK;
}

/* text_batches writes "k<i>" -> values[i] with timestamp 1000 + i as one record batch. */
static em_buf text_batches(const char *const *values, size_t n)
{
    em_batch_writer w = {0};
    assert_int_equal(em_batch_begin(&w), EMBER_OK);
    for (size_t i = 0; i < n; i++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "k%zu", i);
        ember_record rec = {key, (size_t)kl, values[i], strlen(values[i]), 1000 + (int64_t)i};
        assert_int_equal(em_batch_add(&w, &rec), EMBER_OK);
    }
    assert_int_equal(em_batch_finish(&w), EMBER_OK);
    return w.buf;
}

static void *self_lib; /* dlopen(NULL): this executable */

/* run_chain validates c, builds its pipeline from this executable and runs one partition. */
static int run_chain(chain *c, uint32_t partition, em_source_fn source, void *src, collector *col,
                     em_run_stats *stats, char *err, size_t errlen)
{
    char verr[256] = "";
    size_t data_len = c->nodes[0].kind == EMBER__NODE_KIND__NODE_PARALLELIZE ? c->offsets[1] : 0;
    if (em_graph_validate(&c->g, data_len, verr, sizeof verr) != EMBER_OK)
        fail_msg("test chain is invalid: %s", verr);
    em_pipeline *pl = NULL;
    int rc = em_pipeline_new(&c->g, c->g.target, 0, self_lib, &pl, err, errlen);
    if (rc != EMBER_OK) fail_msg("em_pipeline_new: %d %s", rc, err);
    assert_ptr_equal(em_pipeline_source(pl), &c->nodes[0]);
    rc = em_pipeline_run(pl, partition, source, src, collect, col, stats, err, errlen);
    em_pipeline_free(pl);
    return rc;
}

/* run_text runs a chain over parallelized text values (partition 0). */
static int run_text(chain *c, const em_buf *data, collector *col, em_run_stats *stats, char *err,
                    size_t errlen)
{
    em_batches_source_arg src = {data->data, data->len};
    return run_chain(c, 0, em_batches_source, &src, col, stats, err, errlen);
}

/* run_range runs a chain whose source is a range node on partition `partition`. */
static int run_range(chain *c, uint32_t partition, collector *col, em_run_stats *stats, char *err,
                     size_t errlen)
{
    em_range_source_arg src = {&c->nodes[0], partition};
    return run_chain(c, partition, em_range_source, &src, col, stats, err, errlen);
}

static int64_t value_i64(const collector *col, size_t i)
{
    ember_record rec = {NULL, 0, col->value[i], col->value_len[i], 0};
    return ember_value_i64(&rec);
}

/* ---- tests: outputs --------------------------------------------------------------------- */

static void test_map_upper(void **state)
{
    (void)state;
    static const char *const in[] = {"hello", "World 42", ""};
    em_buf data = text_batches(in, 3);
    chain c;
    chain_init(&c);
    chain_parallelize(&c, data.len);
    chain_op(&c, EMBER__NODE_KIND__NODE_MAP, "tp_upper", NULL, 0);
    collector col = {0};
    em_run_stats stats;
    char err[512] = "";
    assert_int_equal(run_text(&c, &data, &col, &stats, err, sizeof err), EMBER_OK);
    assert_int_equal(stats.records_in, 3);
    assert_int_equal(stats.records_out, 3);
    assert_int_equal(col.n, 3);
    static const char *const want[] = {"HELLO", "WORLD 42", ""};
    for (size_t i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%zu", i);
        assert_string_equal(col.key[i], key);
        assert_string_equal(col.value[i], want[i]);
        assert_int_equal(col.ts[i], 1000 + (int64_t)i);
    }
    assert_string_equal(err, "");
    em_buf_free(&data);
}

static void test_flat_map_filter_with_arg(void **state)
{
    (void)state;
    static const char *const in[] = {"the quick  brown", "", " fox jumps over "};
    em_buf data = text_batches(in, 3);
    chain c;
    chain_init(&c);
    chain_parallelize(&c, data.len);
    chain_op(&c, EMBER__NODE_KIND__NODE_FLAT_MAP, "tp_split_words", NULL, 0);
    collector col = {0};
    em_run_stats stats;
    char err[512] = "";
    assert_int_equal(run_text(&c, &data, &col, &stats, err, sizeof err), EMBER_OK);
    static const char *const words[] = {"the", "quick", "brown", "fox", "jumps", "over"};
    static const char *const keys[] = {"k0", "k0", "k0", "k2", "k2", "k2"};
    assert_int_equal(stats.records_in, 3);
    assert_int_equal(stats.records_out, 6);
    assert_int_equal(col.n, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(col.value[i], words[i]);
        assert_string_equal(col.key[i], keys[i]);
        assert_int_equal(col.ts[i], keys[i][1] == '0' ? 1000 : 1002);
    }

    /* then keep words of at least 5 letters: the argument byte reaches the filter */
    static const uint8_t min_len = 5;
    chain_op(&c, EMBER__NODE_KIND__NODE_FILTER, "tp_keep_min_len", &min_len, 1);
    memset(&col, 0, sizeof col);
    assert_int_equal(run_text(&c, &data, &col, &stats, err, sizeof err), EMBER_OK);
    assert_int_equal(stats.records_in, 3);
    assert_int_equal(stats.records_out, 3);
    assert_int_equal(col.n, 3);
    assert_string_equal(col.value[0], "quick");
    assert_string_equal(col.value[1], "brown");
    assert_string_equal(col.value[2], "jumps");
    em_buf_free(&data);
}

/* test_taps_copy_node_outputs: taps on the source, a flat_map and a filter get exactly what
 * each outputs (what ember_persist keeps), while the sink still gets the chain's output; and
 * the chain rebuilt from the filter node (a cached partition's node) runs only what follows. */
static void test_taps_copy_node_outputs(void **state)
{
    (void)state;
    static const char *const in[] = {"the quick  brown", "", " fox jumps over "};
    static const uint8_t min_len = 5;
    em_buf data = text_batches(in, 3);
    chain c;
    chain_init(&c);
    chain_parallelize(&c, data.len);
    chain_op(&c, EMBER__NODE_KIND__NODE_FLAT_MAP, "tp_split_words", NULL, 0);
    chain_op(&c, EMBER__NODE_KIND__NODE_FILTER, "tp_keep_min_len", &min_len, 1);
    chain_op(&c, EMBER__NODE_KIND__NODE_MAP, "tp_upper", NULL, 0);
    collector source = {0}, words = {0}, kept = {0}, out = {0};
    em_tap taps[] = {{0, collect, &source}, {1, collect, &words}, {2, collect, &kept}};
    em_pipeline *pl = NULL;
    char err[512] = "";
    em_run_stats stats;
    assert_int_equal(em_pipeline_new(&c.g, c.g.target, 0, self_lib, &pl, err, sizeof err),
                     EMBER_OK);
    em_batches_source_arg src = {data.data, data.len};
    assert_int_equal(em_pipeline_run_tapped(pl, 0, em_batches_source, &src, collect, &out, taps, 3,
                                            &stats, err, sizeof err),
                     EMBER_OK);
    em_pipeline_free(pl);
    assert_int_equal(source.n, 3);
    assert_string_equal(source.value[2], " fox jumps over ");
    assert_int_equal(words.n, 6);
    assert_string_equal(words.value[3], "fox");
    assert_int_equal(kept.n, 3); /* a filter's tap gets the records it keeps, and they go on */
    assert_string_equal(kept.value[0], "quick");
    assert_string_equal(kept.value[2], "jumps");
    assert_int_equal(out.n, 3);
    assert_string_equal(out.value[1], "BROWN");

    /* from the filter's output, as a cached partition would give it: only the map runs */
    em_buf cached = {0};
    em_batch_writer w = {.buf = cached};
    assert_int_equal(em_batch_begin(&w), EMBER_OK);
    for (size_t i = 0; i < kept.n; i++) {
        ember_record rec = {kept.key[i], strlen(kept.key[i]), kept.value[i], kept.value_len[i],
                            kept.ts[i]};
        assert_int_equal(em_batch_add(&w, &rec), EMBER_OK);
    }
    assert_int_equal(em_batch_finish(&w), EMBER_OK);
    assert_int_equal(em_pipeline_new_from(&c.g, c.g.target, 0, 2, self_lib, &pl, err, sizeof err),
                     EMBER_OK);
    assert_ptr_equal(em_pipeline_source(pl), &c.nodes[2]);
    collector again = {0};
    em_batches_source_arg from_cache = {w.buf.data, w.buf.len};
    assert_int_equal(em_pipeline_run(pl, 0, em_batches_source, &from_cache, collect, &again, &stats,
                                     err, sizeof err),
                     EMBER_OK);
    em_pipeline_free(pl);
    assert_int_equal(again.n, 3);
    for (size_t i = 0; i < 3; i++) assert_string_equal(again.value[i], out.value[i]);
    em_buf_free(&w.buf);
    em_buf_free(&data);
}

static void test_map_partitions_count_per_partition(void **state)
{
    (void)state;
    chain c;
    chain_init(&c);
    chain_range(&c, 0, 10, 3); /* [0,4) [4,7) [7,10) */
    chain_op(&c, EMBER__NODE_KIND__NODE_MAP_PARTITIONS, "tp_count_partition", NULL, 0);
    static const char *const want[] = {"4:6", "3:15", "3:24"};
    static const int64_t want_in[] = {4, 3, 3};
    for (uint32_t p = 0; p < 3; p++) {
        collector col = {0};
        em_run_stats stats;
        char err[512] = "";
        assert_int_equal(run_range(&c, p, &col, &stats, err, sizeof err), EMBER_OK);
        assert_int_equal(stats.records_in, want_in[p]);
        assert_int_equal(stats.records_out, 1);
        assert_int_equal(col.n, 1);
        char key[8];
        snprintf(key, sizeof key, "p%u", p);
        assert_string_equal(col.key[0], key);
        assert_string_equal(col.value[0], want[p]);
    }

    /* range -> filter(even) -> map_partitions: partition 0 holds 0..3, evens 0 and 2 */
    chain_init(&c);
    chain_range(&c, 0, 10, 3);
    chain_op(&c, EMBER__NODE_KIND__NODE_FILTER, "tp_keep_even", NULL, 0);
    chain_op(&c, EMBER__NODE_KIND__NODE_MAP_PARTITIONS, "tp_count_partition", NULL, 0);
    collector col = {0};
    em_run_stats stats;
    char err[512] = "";
    assert_int_equal(run_range(&c, 0, &col, &stats, err, sizeof err), EMBER_OK);
    assert_int_equal(stats.records_in, 4);
    assert_int_equal(col.n, 1);
    assert_string_equal(col.value[0], "2:2");
}

static void test_map_partitions_between_operations(void **state)
{
    (void)state;
    static const char *const in[] = {"a bb", "", "ccc"};
    em_buf data = text_batches(in, 3);
    chain c;
    chain_init(&c);
    chain_parallelize(&c, data.len);
    chain_op(&c, EMBER__NODE_KIND__NODE_FLAT_MAP, "tp_split_words", NULL, 0);
    chain_op(&c, EMBER__NODE_KIND__NODE_MAP_PARTITIONS, "tp_concat", NULL, 0);
    chain_op(&c, EMBER__NODE_KIND__NODE_MAP, "tp_upper", NULL, 0);
    collector col = {0};
    em_run_stats stats;
    char err[512] = "";
    assert_int_equal(run_text(&c, &data, &col, &stats, err, sizeof err), EMBER_OK);
    assert_int_equal(stats.records_in, 3);
    assert_int_equal(stats.records_out, 1);
    assert_int_equal(col.n, 1);
    assert_string_equal(col.key[0], "all");
    assert_string_equal(col.value[0], "A,BB,CCC");
    assert_int_equal(col.ts[0], 42);
    em_buf_free(&data);
}

static void test_source_only_and_empty_partition(void **state)
{
    (void)state;
    chain c;
    chain_init(&c);
    chain_range(&c, -3, 2, 2); /* [-3,0) [0,2) */
    em_pipeline *pl = NULL;
    char err[512] = "";
    /* a chain without functions needs no library */
    assert_int_equal(em_pipeline_new(&c.g, 0, 0, NULL, &pl, err, sizeof err), EMBER_OK);
    collector col = {0};
    em_run_stats stats;
    em_range_source_arg src = {&c.nodes[0], 0};
    assert_int_equal(
        em_pipeline_run(pl, 0, em_range_source, &src, collect, &col, &stats, err, sizeof err),
        EMBER_OK);
    assert_int_equal(stats.records_in, 3);
    assert_int_equal(stats.records_out, 3);
    assert_int_equal(col.n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(col.value_len[i], 8);
        assert_string_equal(col.key[i], "");
        assert_int_equal(col.ts[i], 0);
        assert_true(value_i64(&col, i) == -3 + (int64_t)i);
    }
    em_pipeline_free(pl);

    /* an empty range gives an empty run, and map_partitions still runs once */
    chain_init(&c);
    chain_range(&c, 5, 5, 1);
    chain_op(&c, EMBER__NODE_KIND__NODE_MAP_PARTITIONS, "tp_count_partition", NULL, 0);
    memset(&col, 0, sizeof col);
    assert_int_equal(run_range(&c, 0, &col, &stats, err, sizeof err), EMBER_OK);
    assert_int_equal(stats.records_in, 0);
    assert_int_equal(stats.records_out, 1);
    assert_string_equal(col.value[0], "0:0");
}

/* ---- tests: failures -------------------------------------------------------------------- */

static void test_map_must_emit_exactly_once(void **state)
{
    (void)state;
    chain c;
    chain_init(&c);
    chain_range(&c, 0, 10, 1);
    chain_op(&c, EMBER__NODE_KIND__NODE_MAP, "tp_emit_twice", NULL, 0);
    collector col = {0};
    em_run_stats stats;
    char err[512] = "";
    assert_int_equal(run_range(&c, 0, &col, &stats, err, sizeof err), EMBER_ERR_USER);
    assert_string_equal(err, "map function 'tp_emit_twice' emitted 2 records for one input "
                             "(exactly 1 expected; use ember_flat_map for 0 or more)");
    assert_int_equal(stats.records_in, 1); /* stops at the first input */
    assert_int_equal(stats.records_out, 2);

    chain_init(&c);
    chain_range(&c, 0, 10, 1);
    chain_op(&c, EMBER__NODE_KIND__NODE_MAP, "tp_emit_none", NULL, 0);
    memset(&col, 0, sizeof col);
    assert_int_equal(run_range(&c, 0, &col, &stats, err, sizeof err), EMBER_ERR_USER);
    assert_non_null(strstr(err, "map function 'tp_emit_none' emitted 0 records"));
    assert_int_equal(stats.records_in, 1);
    assert_int_equal(stats.records_out, 0);

    /* the same functions are fine as flat_map */
    chain_init(&c);
    chain_range(&c, 0, 10, 1);
    chain_op(&c, EMBER__NODE_KIND__NODE_FLAT_MAP, "tp_emit_twice", NULL, 0);
    memset(&col, 0, sizeof col);
    assert_int_equal(run_range(&c, 0, &col, &stats, err, sizeof err), EMBER_OK);
    assert_int_equal(stats.records_out, 20);
    assert_int_equal(col.n, 20);
    assert_true(value_i64(&col, 19) == 9);
}

static void test_task_fail_message_propagates(void **state)
{
    (void)state;
    chain c;
    chain_init(&c);
    chain_range(&c, 0, 8, 2); /* partition 0: 0..3 */
    chain_op(&c, EMBER__NODE_KIND__NODE_MAP, "tp_fail_on_three", NULL, 0);
    collector col = {0};
    em_run_stats stats;
    char err[512] = "";
    assert_int_equal(run_range(&c, 0, &col, &stats, err, sizeof err), EMBER_ERR_USER);
    assert_string_equal(err, "map function 'tp_fail_on_three' failed on partition 0: bad value 3");
    assert_int_equal(stats.records_in, 4);
    assert_int_equal(stats.records_out, 3);
    assert_int_equal(col.n, 3);

    memset(&col, 0, sizeof col); /* partition 1 (4..7) has no 3 */
    assert_int_equal(run_range(&c, 1, &col, &stats, err, sizeof err), EMBER_OK);
    assert_int_equal(col.n, 4);

    /* the filter's missing argument: the message of ember_task_fail, formatted */
    chain_init(&c);
    chain_range(&c, 0, 8, 2);
    chain_op(&c, EMBER__NODE_KIND__NODE_FILTER, "tp_keep_min_len", NULL, 0);
    assert_int_equal(run_range(&c, 1, &col, &stats, err, sizeof err), EMBER_ERR_USER);
    assert_string_equal(err, "filter function 'tp_keep_min_len' failed on partition 1: expected "
                             "a 1-byte argument, got 0");
}

static void test_user_error_code_propagates(void **state)
{
    (void)state;
    chain c;
    chain_init(&c);
    chain_range(&c, 0, 8, 2);
    chain_op(&c, EMBER__NODE_KIND__NODE_FILTER, "tp_filter_fails", NULL, 0);
    collector col = {0};
    em_run_stats stats;
    char err[512] = "";
    assert_int_equal(run_range(&c, 1, &col, &stats, err, sizeof err), EMBER_ERR_IO);
    assert_string_equal(err,
                        "filter function 'tp_filter_fails' failed (returned -5) on partition 1");
    assert_int_equal(stats.records_in, 1);
    assert_int_equal(stats.records_out, 0);
}

static void test_sink_failure_stops_run(void **state)
{
    (void)state;
    chain c;
    chain_init(&c);
    chain_range(&c, 0, 100, 1);
    chain_op(&c, EMBER__NODE_KIND__NODE_MAP, "tp_upper", NULL, 0);
    collector col = {0};
    col.fail_at = 3;
    em_run_stats stats;
    char err[512] = "";
    assert_int_equal(run_range(&c, 0, &col, &stats, err, sizeof err), EMBER_ERR_IO);
    assert_string_equal(err, "sink failed: input/output error");
    assert_int_equal(col.n, 2);
    assert_int_equal(stats.records_in, 3);
}

/* A failure downstream of a function that ignores ember_emit's result still fails the run
 * with the first error, whether it happens on the last record or earlier. */
static void test_ignored_emit_error_still_fails(void **state)
{
    (void)state;
    chain c;
    chain_init(&c);
    chain_range(&c, 0, 4, 1); /* 0..3: the failure is on the last record */
    chain_op(&c, EMBER__NODE_KIND__NODE_FLAT_MAP, "tp_ignore_emit_errors", NULL, 0);
    chain_op(&c, EMBER__NODE_KIND__NODE_MAP, "tp_fail_on_three", NULL, 0);
    collector col = {0};
    em_run_stats stats;
    char err[512] = "";
    assert_int_equal(run_range(&c, 0, &col, &stats, err, sizeof err), EMBER_ERR_USER);
    assert_string_equal(err, "map function 'tp_fail_on_three' failed on partition 0: bad value 3");
    assert_int_equal(col.n, 3);

    chain_init(&c);
    chain_range(&c, 0, 8, 1); /* 0..7: the failure is in the middle */
    chain_op(&c, EMBER__NODE_KIND__NODE_FLAT_MAP, "tp_ignore_emit_errors", NULL, 0);
    chain_op(&c, EMBER__NODE_KIND__NODE_MAP, "tp_fail_on_three", NULL, 0);
    memset(&col, 0, sizeof col);
    assert_int_equal(run_range(&c, 0, &col, &stats, err, sizeof err), EMBER_ERR_USER);
    assert_int_equal(col.n, 3);

    chain_init(&c); /* a sink refusing the last record */
    chain_range(&c, 0, 3, 1);
    chain_op(&c, EMBER__NODE_KIND__NODE_FLAT_MAP, "tp_ignore_emit_errors", NULL, 0);
    memset(&col, 0, sizeof col);
    col.fail_at = 3;
    assert_int_equal(run_range(&c, 0, &col, &stats, err, sizeof err), EMBER_ERR_IO);
    assert_string_equal(err, "sink failed: input/output error");
}

static void test_corrupt_parallelized_input(void **state)
{
    (void)state;
    static const char *const in[] = {"one", "two"};
    em_buf data = text_batches(in, 2);
    data.data[data.len - 1] ^= 1; /* checksum no longer matches */
    chain c;
    chain_init(&c);
    chain_parallelize(&c, data.len);
    chain_op(&c, EMBER__NODE_KIND__NODE_MAP, "tp_upper", NULL, 0);
    collector col = {0};
    em_run_stats stats;
    char err[512] = "";
    assert_int_equal(run_text(&c, &data, &col, &stats, err, sizeof err), EMBER_ERR_MALFORMED);
    assert_string_equal(err, "parallelized input is corrupt");
    assert_int_equal(col.n, 0);
    em_buf_free(&data);
}

static void test_missing_symbol(void **state)
{
    (void)state;
    chain c;
    chain_init(&c);
    chain_range(&c, 0, 10, 1);
    chain_op(&c, EMBER__NODE_KIND__NODE_MAP, "tp_upper", NULL, 0);
    chain_op(&c, EMBER__NODE_KIND__NODE_FILTER, "tp_no_such_function", NULL, 0);
    em_pipeline *pl = NULL;
    char err[512] = "";
    assert_int_equal(em_pipeline_new(&c.g, c.g.target, 0, self_lib, &pl, err, sizeof err),
                     EMBER_ERR_SYMBOL);
    assert_null(pl);
    assert_string_equal(err, "job library has no symbol 'tp_no_such_function' (used by filter)");

    /* a chain with functions but no library */
    assert_int_equal(em_pipeline_new(&c.g, 1, 0, NULL, &pl, err, sizeof err), EMBER_ERR_SYMBOL);
    assert_string_equal(err, "job library has no symbol 'tp_upper' (used by map)");
    /* the prefix of the chain ending at a resolvable node builds */
    assert_int_equal(em_pipeline_new(&c.g, 1, 0, self_lib, &pl, err, sizeof err), EMBER_OK);
    em_pipeline_free(pl);
    em_pipeline_free(NULL);
}

/* ---- em_range_bounds -------------------------------------------------------------------- */

/* check_split asserts that the n parts of [start, end) are contiguous, in order, cover it
 * exactly and differ in size by at most one. */
static void check_split(int64_t start, int64_t end, uint32_t n)
{
    uint64_t total = (uint64_t)end - (uint64_t)start;
    uint64_t min_size = UINT64_MAX, max_size = 0;
    int64_t expect_lo = start;
    for (uint32_t p = 0; p < n; p++) {
        int64_t lo, hi;
        em_range_bounds(start, end, n, p, &lo, &hi);
        if (lo != expect_lo)
            fail_msg("[%lld,%lld)/%u part %u starts at %lld, not %lld", (long long)start,
                     (long long)end, n, p, (long long)lo, (long long)expect_lo);
        uint64_t size = (uint64_t)hi - (uint64_t)lo;
        assert_true(size <= total);
        if (size < min_size) min_size = size;
        if (size > max_size) max_size = size;
        expect_lo = hi;
    }
    assert_true(expect_lo == end);
    assert_true(max_size - min_size <= 1);
    assert_true(min_size == total / n);
}

static void test_range_bounds(void **state)
{
    (void)state;
    static const int64_t spans[][2] = {
        {0, 10},
        {-5, 5},
        {0, 0},
        {7, 7},
        {0, 3},
        {100, 101},
        {-1000003, 999999},
        {INT64_MIN, INT64_MIN + 10},
        {INT64_MAX - 10, INT64_MAX},
        {INT64_MIN, INT64_MAX},
        {INT64_MIN, 0},
        {-1, INT64_MAX},
    };
    static const uint32_t ns[] = {1, 2, 3, 4, 7, 10, 11, 64, 1000, EM_GRAPH_MAX_PARTITIONS};
    for (size_t s = 0; s < sizeof spans / sizeof spans[0]; s++)
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
            check_split(spans[s][0], spans[s][1], ns[k]);

    /* exact parts: the first (size % n) parts get one extra */
    static const int64_t want10[3][2] = {{0, 4}, {4, 7}, {7, 10}};
    for (uint32_t p = 0; p < 3; p++) {
        int64_t lo, hi;
        em_range_bounds(0, 10, 3, p, &lo, &hi);
        assert_int_equal(lo, want10[p][0]);
        assert_int_equal(hi, want10[p][1]);
    }
    /* more parts than values: ones, then empty parts at the end */
    static const int64_t want3[5][2] = {{0, 1}, {1, 2}, {2, 3}, {3, 3}, {3, 3}};
    for (uint32_t p = 0; p < 5; p++) {
        int64_t lo, hi;
        em_range_bounds(0, 3, 5, p, &lo, &hi);
        assert_int_equal(lo, want3[p][0]);
        assert_int_equal(hi, want3[p][1]);
    }
    int64_t lo, hi;
    em_range_bounds(INT64_MIN, INT64_MAX, 2, 1, &lo, &hi);
    assert_true(lo == 0 && hi == INT64_MAX); /* 2^64-1 values: the first part has 2^63 */
}

static int group_setup(void **state)
{
    (void)state;
    self_lib = dlopen(NULL, RTLD_NOW);
    return self_lib ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    dlclose(self_lib);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_upper),
        cmocka_unit_test(test_flat_map_filter_with_arg),
        cmocka_unit_test(test_taps_copy_node_outputs),
        cmocka_unit_test(test_map_partitions_count_per_partition),
        cmocka_unit_test(test_map_partitions_between_operations),
        cmocka_unit_test(test_source_only_and_empty_partition),
        cmocka_unit_test(test_map_must_emit_exactly_once),
        cmocka_unit_test(test_task_fail_message_propagates),
        cmocka_unit_test(test_user_error_code_propagates),
        cmocka_unit_test(test_sink_failure_stops_run),
        cmocka_unit_test(test_ignored_emit_error_still_fails),
        cmocka_unit_test(test_corrupt_parallelized_input),
        cmocka_unit_test(test_missing_symbol),
        cmocka_unit_test(test_range_bounds),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
