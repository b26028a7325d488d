/* test_expr.c -- the rule language of workflows (flow/em_expr.h), table by table: values
 * computed by hand for one record, malformed rules with the position of their error, type
 * errors, missing columns, and the errors of evaluation (division by zero, overflow). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "em_expr.h"

/* the record every case reads */
static em_schema schema;
static em_value cols[8];

static int setup(void **state)
{
    (void)state;
    char err[128];
    memset(&schema, 0, sizeof schema);
    const char *names[] = {"a", "b", "x", "s", "t", "ok", "odd name", "zero"};
    em_type types[] = {EM_T_INT,       EM_T_INT,  EM_T_DOUBLE, EM_T_STRING,
                       EM_T_TIMESTAMP, EM_T_BOOL, EM_T_STRING, EM_T_INT};
    for (int k = 0; k < 8; k++)
        assert_int_equal(em_schema_add(&schema, names[k], types[k], err, sizeof err), 0);
    cols[0].i = 7;         /* a */
    cols[1].i = -3;        /* b */
    cols[2].f = 2.5;       /* x */
    cols[3].s = "I0042-x"; /* s */
    cols[3].len = 7;
    cols[4].i = 1764756000000; /* t */
    cols[5].i = 1;             /* ok */
    cols[6].s = "odd";
    cols[6].len = 3;
    cols[7].i = 0; /* zero */
    return 0;
}

/* render writes a result as text: ints and bools as integers, doubles with %g, strings raw */
static void render(em_type t, em_value v, char *buf, size_t cap)
{
    if (t == EM_T_DOUBLE)
        snprintf(buf, cap, "%g", v.f);
    else if (t == EM_T_STRING)
        snprintf(buf, cap, "\"%.*s\"", (int)v.len, v.s);
    else if (t == EM_T_BOOL)
        snprintf(buf, cap, "%s", v.i ? "true" : "false");
    else
        snprintf(buf, cap, "%lld", (long long)v.i);
}

static void values(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        em_type type;
        const char *want;
    } cases[] = {
        {"a", EM_T_INT, "7"},
        {"a + b * 2", EM_T_INT, "1"},
        {"(a + b) * 2", EM_T_INT, "8"},
        {"a - b - 1", EM_T_INT, "9"}, /* left-associative */
        {"a / 2", EM_T_INT, "3"},
        {"b / 2", EM_T_INT, "-1"}, /* C's truncation */
        {"a % 4", EM_T_INT, "3"},
        {"-a", EM_T_INT, "-7"},
        {"--a", EM_T_INT, "7"},
        {"a + x", EM_T_DOUBLE, "9.5"},
        {"x * a", EM_T_DOUBLE, "17.5"},
        {"x / 2", EM_T_DOUBLE, "1.25"},
        {"1e3 + 0.5", EM_T_DOUBLE, "1000.5"},
        {"t + 1000", EM_T_INT, "1764756001000"},
        {"\"q\\\"uote\"", EM_T_STRING, "\"q\"uote\""},
        {"s", EM_T_STRING, "\"I0042-x\""},
        {"`odd name`", EM_T_STRING, "\"odd\""},
        {"a > 5", EM_T_BOOL, "true"},
        {"a >= 7 and b <= -3", EM_T_BOOL, "true"},
        {"a < 7 or b != -3", EM_T_BOOL, "false"},
        {"x == 2.5", EM_T_BOOL, "true"},
        {"a == 7.0", EM_T_BOOL, "true"},
        {"not ok", EM_T_BOOL, "false"},
        {"not not ok", EM_T_BOOL, "true"},
        {"ok == true", EM_T_BOOL, "true"},
        {"ok != false and not (a < 0)", EM_T_BOOL, "true"},
        {"true or false and false", EM_T_BOOL, "true"}, /* and binds tighter */
        {"(true or false) and false", EM_T_BOOL, "false"},
        {"a in (1, 7, 9)", EM_T_BOOL, "true"},
        {"b in (-3)", EM_T_BOOL, "true"},
        {"a not in (1, 2)", EM_T_BOOL, "true"},
        {"x in (2.5, 3)", EM_T_BOOL, "true"},
        {"s in (\"I0042\", \"I0042-x\")", EM_T_BOOL, "true"},
        {"s in (\"I0042\")", EM_T_BOOL, "false"},
        {"s starts_with \"I00\"", EM_T_BOOL, "true"},
        {"s starts_with \"I0042-xy\"", EM_T_BOOL, "false"},
        {"s contains \"-x\"", EM_T_BOOL, "true"},
        {"s contains \"\"", EM_T_BOOL, "true"},
        {"s contains \"y\"", EM_T_BOOL, "false"},
        {"s < \"J\" and s > \"I0042\"", EM_T_BOOL, "true"},
        /* the right side is not evaluated when the left decides: no division by zero */
        {"false and a / zero > 1", EM_T_BOOL, "false"},
        {"true or a / zero > 1", EM_T_BOOL, "true"},
        {"9223372036854775807", EM_T_INT, "9223372036854775807"},
        {"a + b * 2 > x", EM_T_BOOL, "false"},
        {"s matches \"^I[0-9]{4}-x$\"", EM_T_BOOL, "true"},
        {"s matches \"^[0-9]+$\"", EM_T_BOOL, "false"},
        {"s matches \"42\" and `odd name` matches \"^o\"", EM_T_BOOL, "true"},
        {"s in (\"\") or \"\" == \"\"", EM_T_BOOL, "true"}, /* only empty strings */
        /* inf - inf is NaN: unordered, so only != holds */
        {"1e308 * 10 - 1e308 * 10 == 0", EM_T_BOOL, "false"},
        {"1e308 * 10 - 1e308 * 10 < 0 or 1e308 * 10 - 1e308 * 10 >= 0", EM_T_BOOL, "false"},
        {"1e308 * 10 - 1e308 * 10 != 0", EM_T_BOOL, "true"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char err[256] = "", got[128];
        em_expr *e = em_expr_compile(cases[k].text, &schema, err, sizeof err);
        if (!e) fail_msg("%s: %s", cases[k].text, err);
        assert_int_equal(em_expr_type(e), cases[k].type);
        em_value v;
        if (em_expr_eval(e, cols, &v, err, sizeof err) != 0) fail_msg("%s: %s", cases[k].text, err);
        render(cases[k].type, v, got, sizeof got);
        if (strcmp(got, cases[k].want) != 0)
            fail_msg("%s gave %s, not %s", cases[k].text, got, cases[k].want);
        em_expr_free(e);
    }
}

/* refusal: an expression em_expr_compile refuses, and the start of its message */
typedef struct refusal {
    const char *text, *want;
} refusal;

static void expect_refused(const refusal *cases, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        char err[512] = "";
        em_expr *e = em_expr_compile(cases[k].text, &schema, err, sizeof err);
        if (e) fail_msg("%s compiled", cases[k].text);
        if (strncmp(err, cases[k].want, strlen(cases[k].want)) != 0)
            fail_msg("%s: said \"%s\", not \"%s...\"", cases[k].text, err, cases[k].want);
    }
}

static void malformed(void **state)
{
    (void)state;
    static const refusal cases[] = {
        {"", "at 1: expected a value, found the end"},
        {"a >", "at 4: expected a value, found the end"},
        {"a = 1", "at 3: '=' is not an operator: compare with =="},
        {"(a + 1", "at 7: expected ')' to close the '(' at 1"},
        {"a + 1)", "at 6: unexpected ')' after a complete expression"},
        {"a b", "at 3: unexpected 'b' after a complete expression"},
        {"\"open", "at 1: a string that never ends"},
        {"s == \"a\\q\"", "at 8: unknown escape \\q"},
        {"a # 1", "at 3: unexpected character '#'"},
        {"12abc", "at 1: a number runs into a name"},
        {"99999999999999999999", "at 1: the integer 99999999999999999999 is too large"},
        {"a in 1, 2", "at 6: expected '(' and a list after 'in'"},
        {"a in (1 2)", "at 9: expected ',' or ')' in the list of 'in'"},
        {"a in (\"x\")", "at 7: the list of 'in' must hold int constants"},
        {"a not 1", "at 7: expected 'in' after 'not' here"},
        {"`never", "at 1: a `name` that never ends"},
        {"s matches s", "at 11: 'matches' needs a string constant (a regular expression)"},
        {"s matches \"([a-z\"", "at 11: the regular expression \"([a-z\": "},
        {"and", "at 1: expected a value, found 'and'"},
    };
    expect_refused(cases, sizeof cases / sizeof cases[0]);
}

static void type_errors_and_missing_columns(void **state)
{
    (void)state;
    static const refusal cases[] = {
        {"s + 1", "at 3: '+' needs numbers, not string and int"},
        {"a * ok", "at 3: '*' needs numbers, not int and bool"},
        {"x % 2", "at 3: '%' needs two ints"},
        {"-s", "at 1: '-' needs a number, not a string"},
        {"a == s", "at 3: cannot compare int with string using '=='"},
        {"ok < true", "at 4: cannot compare bool with bool using '<'"},
        {"a and ok", "at 3: 'and' needs bools, not a int on its left"},
        {"ok or a", "at 4: 'or' needs bools, not a int on its right"},
        {"not a", "at 1: 'not' needs a bool, not a int"},
        {"a contains \"x\"", "at 3: 'contains' needs two strings, not int and string"},
        {"a matches \"1\"", "at 3: 'matches' needs a string on its left, not a int"},
        {"ok in (1)", "at 4: 'in' needs a number or a string, not a bool"},
        {"speed > 1", "at 1: no column 'speed' (the columns: a int, b int, x double, s string"},
        {"a + `nope`", "at 5: no column 'nope'"},
    };
    expect_refused(cases, sizeof cases / sizeof cases[0]);
}

static void evaluation_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"a / zero", "division by zero"},
        {"a % zero", "remainder by zero"},
        {"x / 0", "division by zero"},
        {"x / (a - 7)", "division by zero"},
        {"9223372036854775807 + 1", "integer overflow in +"},
        {"a * 9223372036854775807", "integer overflow in *"},
        {"-9223372036854775807 - 2", "integer overflow in -"},
        {"ok and a / zero > 1", "division by zero"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char err[256] = "";
        em_expr *e = em_expr_compile(cases[k].text, &schema, err, sizeof err);
        if (!e) fail_msg("%s: %s", cases[k].text, err);
        em_value v;
        if (em_expr_eval(e, cols, &v, err, sizeof err) == 0)
            fail_msg("%s evaluated", cases[k].text);
        if (strcmp(err, cases[k].want) != 0)
            fail_msg("%s: said \"%s\", not \"%s\"", cases[k].text, err, cases[k].want);
        em_expr_free(e);
    }
}

static void limits(void **state)
{
    (void)state;
    char text[EM_EXPR_TEXT_MAX + 2], err[256];
    /* nesting deeper than the stack: refused with a message, not a crash */
    size_t n = 0;
    for (int k = 0; k < 200; k++) text[n++] = '(';
    text[n++] = 'a';
    for (int k = 0; k < 200; k++) text[n++] = ')';
    text[n] = '\0';
    assert_null(em_expr_compile(text, &schema, err, sizeof err));
    assert_non_null(strstr(err, "nested too deeply"));
    /* too long */
    memset(text, ' ', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    text[0] = 'a';
    assert_null(em_expr_compile(text, &schema, err, sizeof err));
    assert_non_null(strstr(err, "an expression of 4097 bytes"));
    /* which columns an expression reads */
    em_expr *e = em_expr_compile("a + 1 > 2 and s contains \"x\"", &schema, err, sizeof err);
    assert_non_null(e);
    assert_true(em_expr_reads(e, 0));
    assert_true(em_expr_reads(e, 3));
    assert_false(em_expr_reads(e, 1));
    em_expr_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(values, setup),
        cmocka_unit_test_setup(malformed, setup),
        cmocka_unit_test_setup(type_errors_and_missing_columns, setup),
        cmocka_unit_test_setup(evaluation_errors, setup),
        cmocka_unit_test_setup(limits, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
