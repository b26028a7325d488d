/* test_job_opts.c -- job options (ember_opts_*, ember.h): values, flags and defaults; numbers
 * that do not parse, a value missing, an argument nobody asked for and --help are errors
 * (EMBER_ERR_INVALID, printed with the usage line); a NULL ember_opts gives defaults; the
 * context frees them all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ember/ember.h>

#include "em_job_api.h"

static ember_ctx *ctx; /* the options live as long as the context */

static ember_opts *opts(char **argv, int argc)
{
    return ember_opts_new(ctx, argc, argv, "job.so -- ...");
}

static void test_values_flags_defaults(void **state)
{
    (void)state;
    char *argv[] = {"job.so", "--in",  "lines",   "--top",  "12",
                    "--rate", "2.5e3", "--quiet", "--from", "-7"};
    ember_opts *o = opts(argv, 10);
    assert_non_null(o);
    assert_string_equal(ember_opt_str(o, "--in", "x"), "lines");
    assert_string_equal(ember_opt_str(o, "--out", "default"), "default");
    assert_int_equal(ember_opt_int(o, "--top", 10), 12);
    assert_int_equal(ember_opt_int(o, "--from", 0), -7); /* a negative value is a value */
    assert_int_equal(ember_opt_int(o, "--missing", 99), 99);
    assert_true(ember_opt_double(o, "--rate", 0) == 2500.0);
    assert_true(ember_opt_flag(o, "--quiet"));
    assert_false(ember_opt_flag(o, "--verbose"));
    assert_int_equal(ember_opts_check(o), EMBER_OK);
}

static void expect_invalid(char **argv, int argc, const char *int_name)
{
    ember_opts *o = opts(argv, argc);
    ember_opt_str(o, "--in", NULL);
    if (int_name) ember_opt_int(o, int_name, 1);
    ember_opt_double(o, "--rate", 1);
    assert_int_equal(ember_opts_check(o), EMBER_ERR_INVALID);
}

static void test_errors(void **state)
{
    (void)state;
    char *typo[] = {"job.so", "--in", "t", "--tpo", "3"}; /* nobody asks for --tpo */
    expect_invalid(typo, 5, "--top");
    char *not_int[] = {"job.so", "--top", "3x"};
    expect_invalid(not_int, 3, "--top");
    char *not_number[] = {"job.so", "--rate", "fast"};
    expect_invalid(not_number, 3, NULL);
    char *no_value[] = {"job.so", "--in"};
    expect_invalid(no_value, 2, NULL);
    char *help[] = {"job.so", "--help"};
    expect_invalid(help, 2, NULL);
    char *too_big[] = {"job.so", "--top", "99999999999999999999"};
    expect_invalid(too_big, 3, "--top");
}

static void test_null_opts(void **state)
{
    (void)state;
    assert_string_equal(ember_opt_str(NULL, "--in", "d"), "d");
    assert_int_equal(ember_opt_int(NULL, "--n", 5), 5);
    assert_false(ember_opt_flag(NULL, "--q"));
    assert_int_equal(ember_opts_check(NULL), EMBER_ERR_NOMEM);
    assert_null(ember_opts_new(NULL, 0, NULL, "x"));
}

int main(void)
{
    static const uint8_t sha[32];
    ctx = em_ctx_new(NULL, "job.so", sha, NULL, NULL);
    assert_non_null(ctx);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_flags_defaults),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_null_opts),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    em_ctx_free(ctx); /* frees every ember_opts (ASan: no leak) */
    return failed;
}
