/* test_formats.c -- the record format helpers of the job API (ember.h, "Record formats").
 *
 * CSV: a table of lines and the fields they must give (empty fields, a trailing delimiter,
 * quotes around delimiters, doubled quotes unescaped into scratch, CRLF, other delimiters),
 * fields are views into the line when nothing was unescaped; malformed lines (an open quote,
 * text after a closing quote) and too many fields or too little scratch are errors. JSON:
 * paths through objects and arrays, each getter's type check, missing paths, malformed paths,
 * a malformed document with the byte it failed at, and one document reused for the next.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <ember/ember.h>

typedef struct csv_case {
    const char *line;
    char delim;
    int n; /* fields, or the error */
    const char *fields[6];
} csv_case;

static const csv_case csv_cases[] = {
    {"a,b,c", ',', 3, {"a", "b", "c"}},
    {"a,,c", ',', 3, {"a", "", "c"}},
    {"a,b,", ',', 3, {"a", "b", ""}},
    {"", ',', 1, {""}},
    {",", ',', 2, {"", ""}},
    {"\"x,y\",z", ',', 2, {"x,y", "z"}},
    {"\"say \"\"hi\"\"\",2", ',', 2, {"say \"hi\"", "2"}},
    {"\"\",1", ',', 2, {"", "1"}},
    {"id|2026-12-03 10:00:00|116.3\r\n", '|', 3, {"id", "2026-12-03 10:00:00", "116.3"}},
    {"tab\tsep\n", '\t', 2, {"tab", "sep"}},
    {"\"open,never closed", ',', EMBER_ERR_MALFORMED, {0}},
    {"\"ab\"cd,e", ',', EMBER_ERR_MALFORMED, {0}},
    {"1,2,3,4,5,6,7", ',', EMBER_ERR_TOO_LARGE, {0}},
};

static void test_csv_table(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof csv_cases / sizeof *csv_cases; c++) {
        const csv_case *k = &csv_cases[c];
        ember_field f[6];
        char scratch[64];
        int n = ember_csv_split(k->line, strlen(k->line), k->delim, f, 6, scratch, sizeof scratch);
        if (n != k->n) fail_msg("line %zu '%s': %d fields/error, want %d", c, k->line, n, k->n);
        for (int i = 0; i < n; i++) {
            if (f[i].len != strlen(k->fields[i]) || memcmp(f[i].p, k->fields[i], f[i].len) != 0)
                fail_msg("line %zu field %d: '%.*s', want '%s'", c, i, (int)f[i].len, f[i].p,
                         k->fields[i]);
        }
    }
}

static void test_csv_views_and_scratch(void **state)
{
    (void)state;
    const char *line = "plain,\"quoted\",\"do\"\"ubled\"";
    ember_field f[3];
    char scratch[8];
    assert_int_equal(ember_csv_split(line, strlen(line), ',', f, 3, scratch, sizeof scratch), 3);
    assert_ptr_equal(f[0].p, line);     /* a view */
    assert_ptr_equal(f[1].p, line + 7); /* inside its quotes, still a view */
    assert_ptr_equal(f[2].p, scratch);  /* unescaped: in scratch */
    assert_int_equal(f[2].len, 8);
    assert_memory_equal(f[2].p, "do\"ubled", 8);
    /* no scratch, or too little, for a field that needs it */
    assert_int_equal(ember_csv_split(line, strlen(line), ',', f, 3, NULL, 0), EMBER_ERR_TOO_LARGE);
    assert_int_equal(ember_csv_split(line, strlen(line), ',', f, 3, scratch, 4),
                     EMBER_ERR_TOO_LARGE);
}

static void test_json_paths(void **state)
{
    (void)state;
    ember_json *j = ember_json_new();
    assert_non_null(j);
    const char *doc = "{\"item_id\":\"I0042\",\"qty\":3,\"price\":19.99,\"ok\":true,"
                      "\"who\":{\"tags\":[\"a\",{\"name\":\"deep\"}],\"n\":null}}";
    assert_int_equal(ember_json_parse(j, doc, strlen(doc)), EMBER_OK);
    const char *s;
    size_t len;
    int64_t i;
    double d;
    int b;
    assert_int_equal(ember_json_str(j, "item_id", &s, &len), EMBER_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(s, "I0042", 5);
    assert_int_equal(ember_json_i64(j, "qty", &i), EMBER_OK);
    assert_int_equal(i, 3);
    assert_int_equal(ember_json_f64(j, "price", &d), EMBER_OK);
    assert_true(d == 19.99);
    assert_int_equal(ember_json_f64(j, "qty", &d), EMBER_OK); /* an integer reads as a double */
    assert_true(d == 3.0);
    assert_int_equal(ember_json_bool(j, "ok", &b), EMBER_OK);
    assert_int_equal(b, 1);
    assert_int_equal(ember_json_str(j, "who.tags[0]", &s, &len), EMBER_OK);
    assert_memory_equal(s, "a", 1);
    assert_int_equal(ember_json_str(j, "who.tags[1].name", &s, &len), EMBER_OK);
    assert_memory_equal(s, "deep", 4);
    /* missing, other types, malformed paths */
    assert_int_equal(ember_json_str(j, "nope", &s, &len), EMBER_ERR_NOT_FOUND);
    assert_int_equal(ember_json_str(j, "who.tags[7]", &s, &len), EMBER_ERR_NOT_FOUND);
    assert_int_equal(ember_json_str(j, "qty.x", &s, &len), EMBER_ERR_NOT_FOUND);
    assert_int_equal(ember_json_i64(j, "price", &i), EMBER_ERR_INVALID);
    assert_int_equal(ember_json_str(j, "qty", &s, &len), EMBER_ERR_INVALID);
    assert_int_equal(ember_json_i64(j, "who.n", &i), EMBER_ERR_INVALID);
    assert_int_equal(ember_json_str(j, "who..tags", &s, &len), EMBER_ERR_INVALID);
    assert_int_equal(ember_json_str(j, "who.tags[x]", &s, &len), EMBER_ERR_INVALID);
    /* a malformed document, then the next record in the same holder */
    const char *bad = "{\"qty\": 3,,}";
    assert_int_equal(ember_json_parse(j, bad, strlen(bad)), EMBER_ERR_MALFORMED);
    assert_non_null(strstr(ember_json_error(j), "at byte"));
    assert_int_equal(ember_json_i64(j, "qty", &i), EMBER_ERR_INVALID); /* no document now */
    const char *next = "[1, 2, 3]";
    assert_int_equal(ember_json_parse(j, next, strlen(next)), EMBER_OK);
    assert_int_equal(ember_json_i64(j, "[2]", &i), EMBER_OK);
    assert_int_equal(i, 3);
    ember_json_free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_table),
        cmocka_unit_test(test_csv_views_and_scratch),
        cmocka_unit_test(test_json_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
