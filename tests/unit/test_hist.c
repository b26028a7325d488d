/* test_hist.c -- em_hist: latency histograms. Values below 16 ms land in their own bucket;
 * above, every value's bucket bound is within 1/16 of it and never below it; quantiles of a
 * known distribution; merging by (bucket, count) gives the histogram of the union; an empty
 * histogram has no quantile; negative and huge values are clamped into the range.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "em_hist.h"

static void small_values_are_exact(void **state)
{
    (void)state;
    em_hist h = {0};
    for (int64_t v = 0; v < 16; v++) {
        em_hist_add(&h, v);
        assert_int_equal(em_hist_bucket_of(v), v);
    }
    assert_int_equal(em_hist_quantile(&h, 0.0), 0);
    assert_int_equal(em_hist_quantile(&h, 0.5), 8);
    assert_int_equal(em_hist_quantile(&h, 1.0), 15);
}

static void larger_values_within_a_sixteenth(void **state)
{
    (void)state;
    for (int64_t v = 16; v < (INT64_C(1) << 40); v = v * 3 / 2 + 1) {
        em_hist h = {0};
        em_hist_add(&h, v);
        int64_t q = em_hist_quantile(&h, 0.5);
        assert_true(q >= v);
        assert_true(q - v <= v / 16);
    }
}

static void quantiles_and_merging(void **state)
{
    (void)state;
    em_hist a = {0}, b = {0}, all = {0};
    for (int64_t v = 1; v <= 1000; v++) { /* 1..1000 ms, split in two histograms */
        em_hist_add(v % 2 ? &a : &b, v);
        em_hist_add(&all, v);
    }
    em_hist merged = {0};
    for (uint32_t i = 0; i < EM_HIST_BUCKETS; i++) {
        if (a.count[i]) em_hist_add_bucket(&merged, i, a.count[i]);
        if (b.count[i]) em_hist_add_bucket(&merged, i, b.count[i]);
    }
    assert_int_equal(merged.total, 1000);
    assert_int_equal(em_hist_quantile(&merged, 0.5), em_hist_quantile(&all, 0.5));
    int64_t p50 = em_hist_quantile(&all, 0.5), p99 = em_hist_quantile(&all, 0.99);
    assert_true(p50 >= 500 && p50 <= 500 + 500 / 16);
    assert_true(p99 >= 990 && p99 <= 990 + 990 / 16);
    em_hist_add_bucket(&merged, EM_HIST_BUCKETS, 5); /* out of range: ignored */
    assert_int_equal(merged.total, 1000);
}

static void empty_and_extremes(void **state)
{
    (void)state;
    em_hist h = {0};
    assert_int_equal(em_hist_quantile(&h, 0.5), -1);
    em_hist_add(&h, -40);
    assert_int_equal(em_hist_quantile(&h, 0.5), 0);
    assert_int_equal(em_hist_bucket_of(INT64_MAX), EM_HIST_BUCKETS - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(small_values_are_exact),
        cmocka_unit_test(larger_values_within_a_sixteenth),
        cmocka_unit_test(quantiles_and_merging),
        cmocka_unit_test(empty_and_extremes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
