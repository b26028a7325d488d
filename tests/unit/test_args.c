/* test_args.c -- command-line value parsing and atomic file writes (common/em_args.h).
 *
 * Covers: em_arg_u64/em_arg_u32 accept whole numbers at and inside their bounds and reject
 * empty, missing, negative, non-numeric, trailing-junk, overflowing and out-of-range values
 * with exactly "--opt: 'x' is not a whole number in a..b"; em_arg_string's length limit;
 * em_arg_hostport accepts "127.0.0.1:0"-style values and rejects a missing host, a missing
 * or out-of-range port; em_write_file_atomic creates and replaces a file in a temporary
 * directory without leaving its temporary file behind, and reports an unwritable path.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <ember/ember.h>

#include "em_args.h"
#include "em_fs.h"

static void test_u64_valid(void **state)
{
    (void)state;
    char err[256] = "";
    uint64_t v = 1;
    assert_int_equal(em_arg_u64("--n", "0", 0, 10, &v, err, sizeof err), EMBER_OK);
    assert_int_equal(v, 0);
    assert_int_equal(em_arg_u64("--n", "10", 0, 10, &v, err, sizeof err), EMBER_OK);
    assert_int_equal(v, 10);
    assert_int_equal(em_arg_u64("--n", "007", 0, 10, &v, err, sizeof err), EMBER_OK);
    assert_int_equal(v, 7); /* decimal, not octal */
    assert_int_equal(em_arg_u64("--n", "18446744073709551615", 0, UINT64_MAX, &v, err, sizeof err),
                     EMBER_OK);
    assert_true(v == UINT64_MAX);
    assert_string_equal(err, "");

    uint32_t v32 = 0;
    assert_int_equal(em_arg_u32("--slots", "4096", 1, 4096, &v32, err, sizeof err), EMBER_OK);
    assert_int_equal(v32, 4096);
    assert_int_equal(em_arg_u32("--x", "4294967295", 0, UINT32_MAX, &v32, err, sizeof err),
                     EMBER_OK);
    assert_int_equal(v32, UINT32_MAX);
}

/* expect_u64_error checks the refusal, its exact message, and that *out is untouched. */
static void expect_u64_error(const char *val, uint64_t min, uint64_t max, const char *want)
{
    char err[256] = "";
    uint64_t v = 12345;
    assert_int_equal(em_arg_u64("--opt", val, min, max, &v, err, sizeof err), EMBER_ERR_INVALID);
    assert_string_equal(err, want);
    assert_int_equal(v, 12345);
}

static void test_u64_invalid(void **state)
{
    (void)state;
    expect_u64_error("", 1, 10, "--opt: '' is not a whole number in 1..10");
    expect_u64_error(NULL, 1, 10, "--opt: '' is not a whole number in 1..10");
    expect_u64_error("-1", 0, 10, "--opt: '-1' is not a whole number in 0..10");
    expect_u64_error("-0", 0, 10, "--opt: '-0' is not a whole number in 0..10");
    expect_u64_error("abc", 0, 10, "--opt: 'abc' is not a whole number in 0..10");
    expect_u64_error("5x", 0, 10, "--opt: '5x' is not a whole number in 0..10");
    expect_u64_error("5 ", 0, 10, "--opt: '5 ' is not a whole number in 0..10");
    expect_u64_error("1.5", 0, 10, "--opt: '1.5' is not a whole number in 0..10");
    expect_u64_error("0x10", 0, 100, "--opt: '0x10' is not a whole number in 0..100");
    expect_u64_error("18446744073709551616", 0, UINT64_MAX,
                     "--opt: '18446744073709551616' is not a whole number in "
                     "0..18446744073709551615");
    expect_u64_error("99999999999999999999999", 0, UINT64_MAX,
                     "--opt: '99999999999999999999999' is not a whole number in "
                     "0..18446744073709551615");
    expect_u64_error("0", 1, 10, "--opt: '0' is not a whole number in 1..10");
    expect_u64_error("11", 1, 10, "--opt: '11' is not a whole number in 1..10");
    expect_u64_error("9", 10, 20, "--opt: '9' is not a whole number in 10..20");

    char err[256] = "";
    uint32_t v32 = 77;
    assert_int_equal(em_arg_u32("--slots", "4097", 1, 4096, &v32, err, sizeof err),
                     EMBER_ERR_INVALID);
    assert_string_equal(err, "--slots: '4097' is not a whole number in 1..4096");
    assert_int_equal(em_arg_u32("--slots", "abc", 1, 4096, &v32, err, sizeof err),
                     EMBER_ERR_INVALID);
    assert_string_equal(err, "--slots: 'abc' is not a whole number in 1..4096");
    assert_int_equal(em_arg_u32("--x", "4294967296", 0, UINT32_MAX, &v32, err, sizeof err),
                     EMBER_ERR_INVALID);
    assert_string_equal(err, "--x: '4294967296' is not a whole number in 0..4294967295");
    assert_int_equal(v32, 77);
}

static void test_string(void **state)
{
    (void)state;
    char out[6] = "", err[256] = "";
    assert_int_equal(em_arg_string("--name", "hello", out, sizeof out, err, sizeof err), EMBER_OK);
    assert_string_equal(out, "hello");
    assert_int_equal(em_arg_string("--name", "hello!", out, sizeof out, err, sizeof err),
                     EMBER_ERR_INVALID);
    assert_string_equal(err, "--name: needs a value of 1..5 characters");
    assert_int_equal(em_arg_string("--name", "", out, sizeof out, err, sizeof err),
                     EMBER_ERR_INVALID);
    assert_int_equal(em_arg_string("--name", NULL, out, sizeof out, err, sizeof err),
                     EMBER_ERR_INVALID);
    assert_string_equal(out, "hello"); /* untouched by the failures */
}

static void test_hostport(void **state)
{
    (void)state;
    static const char *const good[] = {"127.0.0.1:0", "localhost:9092", "h:65535", "[::1]:80"};
    for (size_t i = 0; i < 4; i++) {
        char out[64] = "", err[256] = "";
        assert_int_equal(em_arg_hostport("--kafka", good[i], out, sizeof out, err, sizeof err),
                         EMBER_OK);
        assert_string_equal(out, good[i]);
    }
    static const char *const bad[] = {"nohost", ":80",  "h:99999", "h:65536",
                                      "h:",     "h:-1", "h:80x",   ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char out[64] = "", err[256] = "", want[256];
        assert_int_equal(em_arg_hostport("--kafka", bad[i], out, sizeof out, err, sizeof err),
                         EMBER_ERR_INVALID);
        snprintf(want, sizeof want, "--kafka: '%s' is not host:port (port 0..65535)", bad[i]);
        assert_string_equal(err, want);
        assert_string_equal(out, "");
    }
    char out[64] = "", err[256] = "";
    assert_int_equal(em_arg_hostport("--kafka", NULL, out, sizeof out, err, sizeof err),
                     EMBER_ERR_INVALID);
    assert_string_equal(err, "--kafka: '' is not host:port (port 0..65535)");
    /* valid, but longer than the destination */
    char small[8];
    assert_int_equal(
        em_arg_hostport("--status", "example.org:80", small, sizeof small, err, sizeof err),
        EMBER_ERR_INVALID);
    assert_string_equal(err, "--status: needs a value of 1..7 characters");
}

/* read_text reads a whole small file into buf (NUL-terminated). */
static void read_text(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static void test_write_file_atomic(void **state)
{
    (void)state;
    char dir[] = "/tmp/ember_test_args_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], buf[256], err[512] = "";
    snprintf(path, sizeof path, "%s/state.json", dir);

    assert_int_equal(em_write_file_atomic(path, "{\"a\": 1}\n", err, sizeof err), EMBER_OK);
    read_text(path, buf, sizeof buf);
    assert_string_equal(buf, "{\"a\": 1}\n");
    assert_int_equal(count_entries(dir), 1); /* no temporary file left */

    assert_int_equal(em_write_file_atomic(path, "second", err, sizeof err), EMBER_OK);
    read_text(path, buf, sizeof buf);
    assert_string_equal(buf, "second"); /* replaced, not appended */
    assert_int_equal(count_entries(dir), 1);

    assert_int_equal(em_write_file_atomic(path, "", err, sizeof err), EMBER_OK);
    read_text(path, buf, sizeof buf);
    assert_string_equal(buf, "");

    char missing[300];
    snprintf(missing, sizeof missing, "%s/no/such/dir/file", dir);
    assert_int_equal(em_write_file_atomic(missing, "x", err, sizeof err), EMBER_ERR_IO);
    assert_non_null(strstr(err, "cannot write"));
    assert_non_null(strstr(err, "No such file or directory"));
    assert_int_equal(count_entries(dir), 1);

    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u64_valid),
        cmocka_unit_test(test_u64_invalid),
        cmocka_unit_test(test_string),
        cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_write_file_atomic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
