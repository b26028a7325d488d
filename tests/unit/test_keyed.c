/* test_keyed.c -- map_with_state's keyed state between batches (executor/em_keyed.c): counts
 * per key carried from batch to batch through the state directory, and expiry by batch
 * trigger time: a key without a record in a batch triggered ttl or more after its last one is
 * dropped and counted, a key with a record in that batch is not, however late the batch. */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "em_fs.h"
#include "em_keyed.h"

/* tk_count (map_with_state): the key's record count, emitted after each record */
int tk_count(ember_task *task, const ember_record *in, void *state, int *exists)
{
    int64_t *count = state;
    (*count)++;
    *exists = 1;
    return ember_emit_kv(task, in->key, in->key_len, count, sizeof *count, in->timestamp);
}

/* seen: the last count emitted for keys "a" and "b" */
typedef struct seen {
    int64_t a, b;
} seen;

static int collect(void *arg, const ember_record *rec)
{
    seen *s = arg;
    int64_t v;
    memcpy(&v, rec->value, sizeof v);
    if (rec->key_len == 1 && ((const char *)rec->key)[0] == 'a') s->a = v;
    if (rec->key_len == 1 && ((const char *)rec->key)[0] == 'b') s->b = v;
    return EMBER_OK;
}

/* batch runs version `version` at trigger time `now_ms` over the given keys (sorted) */
static em_keyed_stats batch(em_state_cache *states, Ember__Node *node, void *lib, int64_t version,
                            int64_t now_ms, const char *keys, seen *out)
{
    ember_record recs[8];
    size_t n = strlen(keys);
    for (size_t i = 0; i < n; i++) recs[i] = (ember_record){&keys[i], 1, "", 0, now_ms};
    node->state_version = version;
    node->batch_time_ms = now_ms;
    em_keyed_stats stats;
    char err[256] = "";
    int rc = em_keyed_reduce(states, node, 0, lib, recs, n, collect, out, &stats, err, sizeof err);
    if (rc != EMBER_OK) fail_msg("em_keyed_reduce: %s", err);
    return stats;
}

static void expiry_counts_only_keys_without_records(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_keyed.XXXXXX";
    assert_non_null(mkdtemp(dir));
    void *lib = dlopen(NULL, RTLD_NOW);
    assert_non_null(lib);
    Ember__Node node;
    ember__node__init(&node);
    node.kind = EMBER__NODE_KIND__NODE_MAP_WITH_STATE;
    node.fn_symbol = "tk_count";
    node.state_len = sizeof(int64_t);
    node.state_ttl_ms = 1000;
    node.state_dir = dir;
    em_state_cache *states = em_state_cache_new();
    seen out = {0, 0};

    em_keyed_stats st = batch(states, &node, lib, 0, 10000, "ab", &out);
    assert_int_equal(out.a, 1);
    assert_int_equal(out.b, 1);
    assert_int_equal(st.keys, 2);
    st = batch(states, &node, lib, 1, 10500, "aa", &out); /* within the ttl */
    assert_int_equal(out.a, 3);
    assert_int_equal(st.expired, 0);
    /* a batch 5 s late: "a" has a record in it and goes on; "b" has none and expires */
    st = batch(states, &node, lib, 2, 15500, "a", &out);
    assert_int_equal(out.a, 4);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.keys, 1);
    /* "b" comes back from nothing; "a", without a record 1 s after its last, expires */
    st = batch(states, &node, lib, 3, 16500, "b", &out);
    assert_int_equal(out.b, 1);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.keys, 1);

    em_state_cache_free(states);
    dlclose(lib);
    assert_int_equal(em_remove_tree(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(expiry_counts_only_keys_without_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
