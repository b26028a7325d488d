/* test_combine.c -- em_combine: every reducer, equal keys merged whatever their order,
 * insertion order kept, growth past many keys, long and short keys, empty keys, timestamps,
 * bad value sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "em_combine.h"
#include "em_hash.h"

static ember_record rec_i64(const char *key, int64_t v, int64_t ts, uint8_t buf[8])
{
    memcpy(buf, &v, 8);
    return (ember_record){key, strlen(key), buf, 8, ts};
}

static int64_t value_of(const em_combiner *c, size_t i, const char *want_key)
{
    ember_record r;
    uint64_t h;
    em_combiner_get(c, i, &r, &h);
    assert_int_equal(r.key_len, strlen(want_key));
    assert_memory_equal(r.key, want_key, r.key_len);
    assert_true(h == em_hash64(want_key, strlen(want_key)));
    int64_t v;
    memcpy(&v, r.value, 8);
    return v;
}

static void test_i64_reducers(void **state)
{
    (void)state;
    static const int64_t vals[] = {5, -3, 12, 7};
    static const Ember__Reducer reducers[] = {EMBER__REDUCER__REDUCER_SUM_I64,
                                              EMBER__REDUCER__REDUCER_MIN_I64,
                                              EMBER__REDUCER__REDUCER_MAX_I64};
    for (int r = 0; r < 3; r++) {
        em_combiner *c = em_combiner_new(reducers[r], 0);
        uint8_t buf[8];
        for (int i = 0; i < 4; i++) {
            ember_record rec = rec_i64(i % 2 ? "b" : "a", vals[i], i, buf);
            assert_int_equal(em_combiner_add(c, &rec), EMBER_OK);
        }
        assert_int_equal(em_combiner_size(c), 2);
        assert_int_equal(value_of(c, 0, "a"), r == 0 ? 17 : r == 1 ? 5 : 12); /* a: 5, 12 */
        assert_int_equal(value_of(c, 1, "b"), r == 0 ? 4 : r == 1 ? -3 : 7);  /* b: -3, 7 */
        em_combiner_free(c);
    }
}

static void test_f64_reducers(void **state)
{
    (void)state;
    static const double vals[] = {1.5, -2.25, 4.0};
    static const Ember__Reducer reducers[] = {EMBER__REDUCER__REDUCER_SUM_F64,
                                              EMBER__REDUCER__REDUCER_MIN_F64,
                                              EMBER__REDUCER__REDUCER_MAX_F64};
    static const double want[] = {3.25, -2.25, 4.0};
    for (int r = 0; r < 3; r++) {
        em_combiner *c = em_combiner_new(reducers[r], 4);
        for (int i = 0; i < 3; i++) {
            uint8_t buf[8];
            memcpy(buf, &vals[i], 8);
            ember_record rec = {"x", 1, buf, 8, 0};
            assert_int_equal(em_combiner_add(c, &rec), EMBER_OK);
        }
        ember_record out;
        em_combiner_get(c, 0, &out, NULL);
        double got;
        memcpy(&got, out.value, 8);
        assert_true(got == want[r]);
        em_combiner_free(c);
    }
}

static void test_many_keys_grow_and_keep_order(void **state)
{
    (void)state;
    em_combiner *c = em_combiner_new(EMBER__REDUCER__REDUCER_SUM_I64, 0);
    char key[16];
    uint8_t buf[8];
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < 50000; k++) {
            snprintf(key, sizeof key, "key-%d", k);
            ember_record rec = rec_i64(key, k, round * 100000 + k, buf);
            assert_int_equal(em_combiner_add(c, &rec), EMBER_OK);
        }
    assert_int_equal(em_combiner_size(c), 50000);
    for (int k = 0; k < 50000; k += 997) {
        snprintf(key, sizeof key, "key-%d", k);
        assert_int_equal(value_of(c, (size_t)k, key), 3 * k);
        ember_record r;
        em_combiner_get(c, (size_t)k, &r, NULL);
        assert_int_equal(r.timestamp, 200000 + k); /* the latest */
    }
    em_combiner_free(c);
}

/* keys longer than an entry holds inline live in the key arena: mixed with short ones */
static void test_long_and_short_keys(void **state)
{
    (void)state;
    em_combiner *c = em_combiner_new(EMBER__REDUCER__REDUCER_SUM_I64, 0);
    char key[64];
    uint8_t buf[8];
    for (int round = 0; round < 2; round++)
        for (int k = 0; k < 3000; k++) {
            int n = snprintf(key, sizeof key,
                             k % 2 ? "s%d" : "a-rather-long-key-of-many-bytes-%08d", k);
            ember_record rec = {key, (size_t)n, buf, 8, 0};
            int64_t v = k;
            memcpy(buf, &v, 8);
            assert_int_equal(em_combiner_add(c, &rec), EMBER_OK);
        }
    assert_int_equal(em_combiner_size(c), 3000);
    for (int k = 0; k < 3000; k += 7) {
        snprintf(key, sizeof key, k % 2 ? "s%d" : "a-rather-long-key-of-many-bytes-%08d", k);
        assert_int_equal(value_of(c, (size_t)k, key), 2 * k);
    }
    em_combiner_free(c);
}

static void test_empty_key_and_bad_values(void **state)
{
    (void)state;
    em_combiner *c = em_combiner_new(EMBER__REDUCER__REDUCER_SUM_I64, 0);
    uint8_t buf[8];
    ember_record empty = rec_i64("", 2, 0, buf);
    assert_int_equal(em_combiner_add(c, &empty), EMBER_OK);
    assert_int_equal(em_combiner_add(c, &empty), EMBER_OK);
    assert_int_equal(value_of(c, 0, ""), 4);
    ember_record short_value = {"k", 1, "1234", 4, 0};
    assert_int_equal(em_combiner_add(c, &short_value), EMBER_ERR_INVALID);
    assert_int_equal(em_combiner_size(c), 1);
    assert_true(em_reducer_valid(EMBER__REDUCER__REDUCER_SUM_I64));
    assert_false(em_reducer_valid(0));
    assert_false(em_reducer_valid(7));
    em_combiner_free(c);
    em_combiner_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_i64_reducers),
        cmocka_unit_test(test_f64_reducers),
        cmocka_unit_test(test_many_keys_grow_and_keep_order),
        cmocka_unit_test(test_long_and_short_keys),
        cmocka_unit_test(test_empty_key_and_bad_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
