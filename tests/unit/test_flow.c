/* test_flow.c -- workflow nodes one by one (flow/em_flow_node.h, em_flow_agg.h,
 * em_flow_sink.h, em_row.h), each against values worked out by hand: json paths and types,
 * casts both ways, select and concat, sinks' CSV quoting, JSON escaping and Redis hashes,
 * templates (with a number's decimals), the aggregate accumulator folded in any order,
 * distinct counts (exact, then estimated, merged in any grouping), an
 * aggregate by a library's function (resolved, its types checked, folded and read back), a rule's
 * alert text, rows, and documents refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "em_flow.h"
#include "em_flow_agg.h"
#include "em_flow_fn.h"
#include "em_flow_node.h"
#include "em_flow_rules.h"
#include "em_flow_sink.h"
#include "em_row.h"

static em_scratch scratch;

/* source_schema: what a kafka_source makes */
static em_schema source_schema(void)
{
    em_schema s = {0};
    char err[128];
    em_schema_add(&s, "key", EM_T_STRING, err, sizeof err);
    em_schema_add(&s, "value", EM_T_STRING, err, sizeof err);
    em_schema_add(&s, "timestamp", EM_T_TIMESTAMP, err, sizeof err);
    return s;
}

static em_node *compile(em_node_kind k, const char *params, const em_schema *in, em_schema *out)
{
    char err[512];
    json_t *p = json_loads(params, 0, NULL);
    assert_non_null(p);
    em_node *n = em_node_compile(k, p, in, out, err, sizeof err);
    if (!n) fail_msg("%s: %s", params, err);
    json_decref(p);
    return n;
}

static void set_str(em_value *v, const char *s)
{
    v->s = s;
    v->len = (uint32_t)strlen(s);
}

/* text of column c */
static const char *col_text(const em_schema *s, const em_value *cols, int c)
{
    static char buf[256];
    int n = em_value_text(s->types[c], &cols[c], buf, sizeof buf - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    return buf;
}

static void json_node(void **state)
{
    (void)state;
    em_schema in = source_schema(), out;
    em_node *n =
        compile(EM_N_JSON,
                "{\"fields\": [{\"name\": \"item\", \"path\": \"item_id\"},"
                "{\"name\": \"qty\", \"type\": \"int\"}, {\"name\": \"price\", \"path\": "
                "\"p.list[1]\", \"type\": \"double\"}, {\"name\": \"ok\", \"type\": \"bool\"}]}",
                &in, &out);
    assert_int_equal(out.n, 7);
    em_value cols[EM_SCHEMA_MAX] = {0};
    char err[256];
    set_str(&cols[1], "{\"item_id\":\"I7\",\"qty\":3,\"p\":{\"list\":[1,2.5]},\"ok\":true}");
    scratch.used = 0;
    assert_int_equal(em_node_apply(n, cols, &scratch, err, sizeof err), 1);
    assert_string_equal(col_text(&out, cols, 3), "I7");
    assert_int_equal(cols[4].i, 3);
    assert_true(cols[5].f == 2.5);
    assert_int_equal(cols[6].i, 1);
    set_str(&cols[1], "{\"item_id\":\"I7\",\"p\":{\"list\":[1,2.5]},\"ok\":true}");
    assert_int_equal(em_node_apply(n, cols, &scratch, err, sizeof err), -1);
    assert_string_equal(err, "qty is missing");
    set_str(&cols[1], "{\"item_id\":\"I7\",\"qty\":\"3\",\"p\":{\"list\":[1,2.5]},\"ok\":true}");
    assert_int_equal(em_node_apply(n, cols, &scratch, err, sizeof err), -1);
    assert_string_equal(err, "qty is not a int");
    set_str(&cols[1], "{not json");
    assert_int_equal(em_node_apply(n, cols, &scratch, err, sizeof err), -1);
    em_node_free(n);
    ember_json_free(scratch.json);
    scratch.json = NULL;
}

/* two json nodes on one path share the step's parser: the first one's strings stay valid; a
 * timestamp read with a format */
static void json_twice(void **state)
{
    (void)state;
    em_schema in = source_schema(), mid, out;
    em_node *a = compile(EM_N_JSON, "{\"fields\": [\"name\"]}", &in, &mid);
    em_node *b = compile(EM_N_JSON,
                         "{\"input\": \"key\", \"fields\": [{\"name\": \"day\", \"type\": "
                         "\"timestamp\", \"format\": \"%Y-%m-%d\"}]}",
                         &mid, &out);
    em_value cols[EM_SCHEMA_MAX] = {0};
    char err[256];
    set_str(&cols[0], "{\"day\":\"2026-12-04\"}");
    set_str(&cols[1], "{\"name\":\"first\"}");
    scratch.used = 0;
    assert_int_equal(em_node_apply(a, cols, &scratch, err, sizeof err), 1);
    assert_int_equal(em_node_apply(b, cols, &scratch, err, sizeof err), 1);
    assert_string_equal(col_text(&out, cols, 3), "first");
    assert_int_equal(cols[4].i, 1796342400000);
    set_str(&cols[0], "{\"day\":\"04/12/2026\"}");
    assert_int_equal(em_node_apply(b, cols, &scratch, err, sizeof err), -1);
    assert_string_equal(err, "'04/12/2026' is not a timestamp in the format %Y-%m-%d");
    em_node_free(a);
    em_node_free(b);
    ember_json_free(scratch.json);
    scratch.json = NULL;
    /* a value holding a NUL byte is not a number */
    em_value v;
    assert_int_equal(em_value_parse(EM_T_INT, NULL, "12\0junk", 7, &v, err, sizeof err), -1);
}

static void cast_node(void **state)
{
    (void)state;
    em_schema in = {0}, out;
    char err[256];
    const char *names[] = {"s_int", "s_dbl", "s_ts", "i", "ts", "d"};
    em_type types[] = {EM_T_STRING, EM_T_STRING,    EM_T_STRING,
                       EM_T_INT,    EM_T_TIMESTAMP, EM_T_DOUBLE};
    for (int k = 0; k < 6; k++) em_schema_add(&in, names[k], types[k], err, sizeof err);
    em_node *n = compile(EM_N_CAST,
                         "{\"columns\": {\"s_int\": \"int\", \"s_dbl\": \"double\", \"s_ts\": "
                         "\"timestamp\", \"i\": \"string\", \"ts\": \"string\", \"d\": \"int\"},"
                         " \"formats\": {\"s_ts\": \"%d/%m/%Y %H:%M\", \"ts\": \"%H:%M:%S\"}}",
                         &in, &out);
    assert_int_equal(out.types[0], EM_T_INT);
    assert_int_equal(out.types[3], EM_T_STRING);
    em_value cols[EM_SCHEMA_MAX] = {0};
    set_str(&cols[0], "-42");
    set_str(&cols[1], "0.125");
    set_str(&cols[2], "04/12/2026 10:30");
    cols[3].i = 7;
    cols[4].i = 1764844245123; /* 2025-12-04 10:30:45.123 UTC */
    cols[5].f = -2.9;
    scratch.used = 0;
    assert_int_equal(em_node_apply(n, cols, &scratch, err, sizeof err), 1);
    assert_int_equal(cols[0].i, -42);
    assert_true(cols[1].f == 0.125);
    assert_int_equal(cols[2].i, 1796380200000); /* 2026-12-04 10:30:00 UTC */
    assert_string_equal(col_text(&out, cols, 3), "7");
    assert_string_equal(col_text(&out, cols, 4), "10:30:45");
    assert_int_equal(cols[5].i, -2); /* toward zero */
    set_str(&cols[0], "12abc");
    assert_int_equal(em_node_apply(n, cols, &scratch, err, sizeof err), -1);
    assert_string_equal(err, "'12abc' is not a int");
    em_node_free(n);
    /* a bool cannot become a timestamp; formats only for timestamps */
    em_schema b = {0};
    em_schema_add(&b, "flag", EM_T_BOOL, err, sizeof err);
    json_t *p = json_loads("{\"columns\": {\"flag\": \"timestamp\"}}", 0, NULL);
    assert_null(em_node_compile(EM_N_CAST, p, &b, &out, err, sizeof err));
    assert_string_equal(err, "columns: a bool column ('flag') cannot become a timestamp");
    json_decref(p);
}

static void select_and_concat(void **state)
{
    (void)state;
    em_schema in = {0}, mid, out;
    char err[256];
    em_schema_add(&in, "id", EM_T_STRING, err, sizeof err);
    em_schema_add(&in, "n", EM_T_INT, err, sizeof err);
    em_schema_add(&in, "when", EM_T_TIMESTAMP, err, sizeof err);
    em_schema_add(&in, "x", EM_T_DOUBLE, err, sizeof err);
    em_node *sel = compile(EM_N_SELECT, "{\"columns\": [\"when\", \"id\", \"x\"]}", &in, &mid);
    em_node *cat = compile(EM_N_CONCAT, "{\"columns\": [\"id\", \"when\", \"x\"], \"as\": \"rk\"}",
                           &mid, &out);
    assert_int_equal(out.n, 4);
    assert_string_equal(out.names[0], "when");
    em_value cols[EM_SCHEMA_MAX] = {0};
    set_str(&cols[0], "T9");
    cols[1].i = 5;
    cols[2].i = 1796380200500; /* .500: milliseconds shown */
    cols[3].f = 0.1;
    scratch.used = 0;
    assert_int_equal(em_node_apply(sel, cols, &scratch, err, sizeof err), 1);
    assert_int_equal(em_node_apply(cat, cols, &scratch, err, sizeof err), 1);
    assert_string_equal(col_text(&out, cols, 3), "T9|2026-12-04 10:30:00.500|0.1");
    em_node_free(sel);
    em_node_free(cat);
}

static void sinks(void **state)
{
    (void)state;
    em_schema in = {0}, out;
    char err[256];
    em_schema_add(&in, "name", EM_T_STRING, err, sizeof err);
    em_schema_add(&in, "n", EM_T_INT, err, sizeof err);
    em_schema_add(&in, "ok", EM_T_BOOL, err, sizeof err);
    em_value cols[EM_SCHEMA_MAX] = {0};
    set_str(&cols[0], "a,\"b\"\n\x01");
    cols[1].i = -3;
    cols[2].i = 1;
    ember_record r;
    em_node *csv =
        compile(EM_N_KAFKA_SINK, "{\"topic\": \"t\", \"key\": \"k:{n}:{{x}}\"}", &in, &out);
    scratch.used = 0;
    assert_int_equal(em_sink_record(csv, cols, &scratch, &r, err, sizeof err), 0);
    assert_int_equal(r.key_len, strlen("k:-3:{x}"));
    assert_memory_equal(r.key, "k:-3:{x}", r.key_len);
    const char *want_csv = "\"a,\"\"b\"\"\n\x01\",-3,true";
    assert_int_equal(r.value_len, strlen(want_csv));
    assert_memory_equal(r.value, want_csv, r.value_len);
    /* a scratch space with no room left: the record does not fit, nothing is written past it */
    scratch.used = sizeof scratch.buf;
    assert_int_equal(em_sink_record(csv, cols, &scratch, &r, err, sizeof err), -1);
    em_node_free(csv);
    em_node *js =
        compile(EM_N_FILES_SINK, "{\"dir\": \"/tmp/x\", \"format\": \"json\"}", &in, &out);
    scratch.used = 0;
    assert_int_equal(em_sink_record(js, cols, &scratch, &r, err, sizeof err), 0);
    const char *want_json = "{\"name\":\"a,\\\"b\\\"\\n\\u0001\",\"n\":-3,\"ok\":true}";
    assert_int_equal(r.value_len, strlen(want_json));
    assert_memory_equal(r.value, want_json, r.value_len);
    em_node_free(js);
    em_node *rh = compile(
        EM_N_REDIS_SINK,
        "{\"key\": \"u:{n}\", \"fields\": {\"count\": \"{n}\", \"flag\": \"{ok}!\"}}", &in, &out);
    scratch.used = 0;
    assert_int_equal(em_sink_record(rh, cols, &scratch, &r, err, sizeof err), 0);
    uint8_t want[128];
    const char *fields[] = {"count", "flag"}, *values[] = {"-3", "true!"};
    size_t wl = ember_redis_fields(want, sizeof want, 2, fields, values);
    assert_int_equal(r.value_len, wl);
    assert_memory_equal(r.value, want, wl);
    em_node_free(rh);
    /* a relative directory, an unclosed template, a set without a value */
    json_t *p = json_loads("{\"dir\": \"out\"}", 0, NULL);
    assert_null(em_node_compile(EM_N_FILES_SINK, p, &in, &out, err, sizeof err));
    json_decref(p);
    p = json_loads("{\"key\": \"u:{n\", \"fields\": {\"a\": \"b\"}}", 0, NULL);
    assert_null(em_node_compile(EM_N_REDIS_SINK, p, &in, &out, err, sizeof err));
    assert_string_equal(err, "key: a '{' at 3 never closes (write {{ for a brace)");
    json_decref(p);
    p = json_loads("{\"key\": \"u\", \"command\": \"set\"}", 0, NULL);
    assert_null(em_node_compile(EM_N_REDIS_SINK, p, &in, &out, err, sizeof err));
    json_decref(p);
}

/* the aggregate's accumulators folded in two orders give the same result */
static void aggregate(void **state)
{
    (void)state;
    em_schema in = {0}, out;
    char err[256];
    em_schema_add(&in, "k", EM_T_STRING, err, sizeof err);
    em_schema_add(&in, "q", EM_T_INT, err, sizeof err);
    em_schema_add(&in, "p", EM_T_DOUBLE, err, sizeof err);
    em_node *n =
        compile(EM_N_AGGREGATE,
                "{\"by\": [\"k\"], \"aggregates\": [{\"op\": \"sum\", \"column\": \"q\", "
                "\"as\": \"sq\"}, {\"op\": \"min\", \"column\": \"p\", \"as\": \"mp\"},"
                "{\"op\": \"max\", \"column\": \"q\", \"as\": \"xq\"}, {\"op\": \"count\", "
                "\"as\": \"c\"}, {\"op\": \"avg\", \"column\": \"q\", \"as\": \"aq\"}]}",
                &in, &out);
    assert_int_equal(out.n, 6);
    assert_int_equal(out.types[5], EM_T_DOUBLE);
    int64_t qs[] = {5, -2, 9, 4};
    double ps[] = {2.5, -1.25, 8, 3};
    size_t len = em_agg_acc_len(n);
    uint8_t fwd[256], back[256], one[256], key[64];
    em_agg_zero(n, fwd);
    em_agg_zero(n, back);
    em_value cols[EM_SCHEMA_MAX] = {0};
    set_str(&cols[0], "K1");
    for (int k = 0; k < 4; k++) {
        cols[1].i = qs[k];
        cols[2].f = ps[k];
        assert_int_equal(em_agg_record(n, cols, one, err, sizeof err), 0);
        assert_int_equal(em_agg_merge(fwd, one, len, err, sizeof err), 0);
        cols[1].i = qs[3 - k];
        cols[2].f = ps[3 - k];
        assert_int_equal(em_agg_record(n, cols, one, err, sizeof err), 0);
        assert_int_equal(em_agg_merge(back, one, len, err, sizeof err), 0);
    }
    assert_memory_equal(fwd, back, len);
    size_t kl = em_agg_key(n, cols, key, sizeof key);
    assert_true(kl > 0);
    em_value res[EM_SCHEMA_MAX];
    assert_int_equal(em_agg_result(n, key, kl, fwd, len, 0, res), 0);
    assert_string_equal(col_text(&out, res, 0), "K1");
    assert_int_equal(res[1].i, 16);
    assert_true(res[2].f == -1.25);
    assert_int_equal(res[3].i, 9);
    assert_int_equal(res[4].i, 4);
    assert_true(res[5].f == 4.0);
    /* an int sum that overflows, and bytes that are not this node's accumulator */
    cols[1].i = INT64_MAX;
    assert_int_equal(em_agg_record(n, cols, one, err, sizeof err), 0);
    assert_int_equal(em_agg_merge(fwd, one, len, err, sizeof err), -1);
    assert_string_equal(err, "integer overflow in the sum of an aggregate");
    assert_int_equal(em_agg_merge(fwd, one, len - 1, err, sizeof err), -1);
    em_node_free(n);
}

/* lookup: a CSV file joined by key; a missing key fails or drops; a key twice is refused */
static void lookup_node(void **state)
{
    (void)state;
    char path[] = "/tmp/test_flow_lookup.XXXXXX", params[512], err[512];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *csv = "sku,name,weight\nA1,anvil,50\nB2,\"bolt, small\",1\n";
    assert_int_equal(write(fd, csv, strlen(csv)), (ssize_t)strlen(csv));
    close(fd);
    em_schema in = {0}, out;
    em_schema_add(&in, "item", EM_T_STRING, err, sizeof err);
    snprintf(params, sizeof params,
             "{\"file\": \"%s\", \"skip_header\": true, \"key\": \"sku\", \"on\": \"item\", "
             "\"columns\": [\"sku\", \"name\", {\"name\": \"weight\", \"type\": \"int\"}]}",
             path);
    em_node *n = compile(EM_N_LOOKUP, params, &in, &out);
    assert_int_equal(out.n, 3);
    assert_string_equal(out.names[1], "name");
    em_value cols[EM_SCHEMA_MAX] = {0};
    set_str(&cols[0], "B2");
    assert_int_equal(em_node_apply(n, cols, &scratch, err, sizeof err), 1);
    assert_string_equal(col_text(&out, cols, 1), "bolt, small"); /* quoted, with the delimiter */
    assert_int_equal(cols[2].i, 1);
    set_str(&cols[0], "C3");
    assert_int_equal(em_node_apply(n, cols, &scratch, err, sizeof err), -1);
    assert_non_null(strstr(err, "no row for \"C3\" in "));
    em_node_free(n);
    FILE *f = fopen(path, "w");
    fputs("sku,name,weight\nA1,anvil,50\nA1,again,2\n", f);
    fclose(f);
    json_t *p = json_loads(params, 0, NULL);
    assert_null(em_node_compile(EM_N_LOOKUP, p, &in, &out, err, sizeof err));
    assert_non_null(strstr(err, "line 3: the key \"A1\" again"));
    json_decref(p);
    unlink(path);
}

static void rows(void **state)
{
    (void)state;
    em_schema s = {0};
    char err[128];
    em_schema_add(&s, "a", EM_T_STRING, err, sizeof err);
    em_schema_add(&s, "b", EM_T_DOUBLE, err, sizeof err);
    em_schema_add(&s, "c", EM_T_STRING, err, sizeof err);
    em_value in[3] = {{.s = "xyz", .len = 3}, {.f = -0.5}, {.s = "", .len = 0}}, back[3];
    uint8_t buf[64];
    size_t n = em_row_encode(&s, in, buf, sizeof buf);
    assert_int_equal(n, 27);
    assert_int_equal(em_row_encode(&s, in, buf, 26), 0);
    assert_int_equal(em_row_decode(&s, buf, n, back), 0);
    assert_int_equal(back[0].len, 3);
    assert_memory_equal(back[0].s, "xyz", 3);
    assert_true(back[1].f == -0.5);
    assert_int_equal(back[2].len, 0);
    assert_int_equal(em_row_decode(&s, buf, 20, back), -1); /* cut short */
    buf[4] = 0xff;                                          /* a string outside the row */
    assert_int_equal(em_row_decode(&s, buf, n, back), -1);
}

static void documents(void **state)
{
    (void)state;
    static const struct {
        const char *doc, *want;
    } cases[] = {
        {"[]", "a flow is a JSON object"},
        {"{\"name\": \"bad name!\", \"nodes\": [{\"id\": \"s\", \"type\": \"kafka_source\", "
         "\"topic\": \"t\"}], \"edges\": []}",
         "the flow's name \"bad name!\" must be"},
        {"{\"nodes\": [], \"edges\": []}", "'nodes' must be an array of 1 to 128 nodes"},
        {"{\"nodes\": [{\"id\": \"a b\", \"type\": \"csv\"}], \"edges\": []}",
         "node 1: the id \"a b\""},
        {"{\"nodes\": [{\"id\": \"s\", \"type\": \"kafka_source\", \"topic\": \"t\"}, {\"id\": "
         "\"s\", "
         "\"type\": \"csv\"}], \"edges\": []}",
         "node 's': the id is used twice"},
        {"{\"nodes\": [{\"id\": \"s\", \"type\": \"kafka_source\", \"topic\": \"t\"}, {\"id\": "
         "\"f\", "
         "\"type\": \"filter\", \"rule\": \"true\"}, {\"id\": \"g\", \"type\": \"filter\", "
         "\"rule\": "
         "\"true\"}], \"edges\": [{\"from\": \"f\", \"to\": \"g\"}, {\"from\": \"g\", \"to\": "
         "\"f\"}]}",
         "node 's' (kafka_source) leads nowhere"},
        {"{\"nodes\": [{\"id\": \"f\", \"type\": \"filter\", \"rule\": \"true\"}, {\"id\": \"g\", "
         "\"type\": \"filter\", \"rule\": \"true\"}], \"edges\": [{\"from\": \"f\", \"to\": "
         "\"g\"}, "
         "{\"from\": \"g\", \"to\": \"f\"}]}",
         "node 'f' is on a cycle"},
        {"{\"nodes\": [{\"id\": \"s\", \"type\": \"kafka_source\", \"topic\": \"t\"}, {\"id\": "
         "\"o\", "
         "\"type\": \"kafka_sink\", \"topic\": \"u\"}], \"edges\": [{\"from\": \"s\", \"to\": "
         "\"o\", "
         "\"on\": \"error\"}]}",
         "edge 1: records do not fail in 's' (kafka_source)"},
        {"{\"nodes\": [{\"id\": \"s\", \"type\": \"kafka_source\", \"topic\": \"t\"}, {\"id\": "
         "\"f\", "
         "\"type\": \"filter\", \"rule\": \"value\"}, {\"id\": \"o\", \"type\": \"kafka_sink\", "
         "\"topic\": \"u\"}], \"edges\": [{\"from\": \"s\", \"to\": \"f\"}, {\"from\": \"f\", "
         "\"to\": "
         "\"o\"}]}",
         "node 'f' (filter): rule \"value\": gives a string, not a bool"},
        {"{\"nodes\": [{\"id\": \"s\", \"type\": \"kafka_source\", \"topic\": \"t\", \"mode\": "
         "\"stream\"}, {\"id\": \"o\", \"type\": \"kafka_sink\", \"topic\": \"u\"}], \"edges\": "
         "[{\"from\": \"s\", \"to\": \"o\"}]}",
         "a streaming flow needs 'checkpoint': an absolute directory"},
        {"{\"nodes\": [{\"id\": \"s\", \"type\": \"kafka_source\", \"topic\": \"t\", \"mode\": "
         "\"streams\"}, {\"id\": \"o\", \"type\": \"kafka_sink\", \"topic\": \"u\"}], \"edges\": "
         "[{\"from\": \"s\", \"to\": \"o\"}]}",
         "node 's' (kafka_source): mode: \"streams\" is neither \"batch\""},
        {"{\"nodes\": [{\"id\": \"s\", \"type\": \"kafka_source\", \"topic\": \"t\", \"mode\": "
         "\"stream\"}, {\"id\": \"b\", \"type\": \"kafka_source\", \"topic\": \"t\"}, {\"id\": "
         "\"o\", \"type\": \"kafka_sink\", \"topic\": \"u\"}, {\"id\": \"p\", \"type\": "
         "\"kafka_sink\", \"topic\": \"u\"}], \"edges\": [{\"from\": \"s\", \"to\": \"o\"}, "
         "{\"from\": \"b\", \"to\": \"p\"}], \"checkpoint\": \"/ck\"}",
         "the sources are 1 batch and 1 stream"},
        {"{\"nodes\": [{\"id\": \"s\", \"type\": \"kafka_source\", \"topic\": \"t\", \"mode\": "
         "\"stream\"}, {\"id\": \"b\", \"type\": \"file_source\", \"path\": \"/d\"}, {\"id\": "
         "\"o\", \"type\": \"kafka_sink\", \"topic\": \"u\"}, {\"id\": \"p\", \"type\": "
         "\"kafka_sink\", \"topic\": \"u\"}], \"edges\": [{\"from\": \"s\", \"to\": \"o\"}, "
         "{\"from\": \"b\", \"to\": \"p\"}], \"checkpoint\": \"/ck\"}",
         "the sources are 1 batch and 1 stream"},
        {"{\"nodes\": [{\"id\": \"s\", \"type\": \"file_source\"}, {\"id\": \"o\", \"type\": "
         "\"kafka_sink\", \"topic\": \"u\"}], \"edges\": [{\"from\": \"s\", \"to\": \"o\"}]}",
         "node 's' (file_source): the parameter 'path' is missing"},
        {"{\"nodes\": [{\"id\": \"s\", \"type\": \"file_source\", \"path\": \"/d\", \"topic\": "
         "\"t\"}, {\"id\": \"o\", \"type\": \"kafka_sink\", \"topic\": \"u\"}], \"edges\": "
         "[{\"from\": \"s\", \"to\": \"o\"}]}",
         "node 's' (file_source): unknown parameter 'topic'"},
        {"{\"nodes\": [{\"id\": \"s\", \"type\": \"kafka_source\", \"topic\": \"t\"}, {\"id\": "
         "\"f\", \"type\": \"file_source\", \"path\": \"/d\"}, {\"id\": \"o\", \"type\": "
         "\"kafka_sink\", \"topic\": \"u\"}], \"edges\": [{\"from\": \"s\", \"to\": \"f\"}, "
         "{\"from\": \"f\", \"to\": \"o\"}]}",
         "edge 1: 'f' is a source: nothing goes into it"},
        {"{\"nodes\": [{\"id\": \"s\", \"type\": \"kafka_source\", \"topic\": \"t\"}, {\"id\": "
         "\"a\", \"type\": \"aggregate\", \"by\": [\"key\"], \"window\": {\"time\": "
         "\"timestamp\", \"length_s\": 60}, \"aggregates\": [{\"op\": \"count\", \"as\": "
         "\"n\"}]}, {\"id\": \"o\", \"type\": \"kafka_sink\", \"topic\": \"u\"}], \"edges\": "
         "[{\"from\": \"s\", \"to\": \"a\"}, {\"from\": \"a\", \"to\": \"o\"}]}",
         "node 'a' (aggregate): a window needs a stream source"},
        {"{\"nodes\": [{\"id\": \"s\", \"type\": \"kafka_source\", \"topic\": \"t\", \"mode\": "
         "\"stream\"}, {\"id\": \"a\", \"type\": \"aggregate\", \"by\": [\"key\"], \"window\": "
         "{\"time\": \"value\", \"length_s\": 60}, \"aggregates\": [{\"op\": \"count\", \"as\": "
         "\"n\"}]}, {\"id\": \"o\", \"type\": \"kafka_sink\", \"topic\": \"u\"}], \"edges\": "
         "[{\"from\": \"s\", \"to\": \"a\"}, {\"from\": \"a\", \"to\": \"o\"}], \"checkpoint\": "
         "\"/ck\"}",
         "node 'a' (aggregate): window: the time column 'value' is a string, not a timestamp"},
        {"{\"nodes\": [{\"id\": \"s\", \"type\": \"kafka_source\", \"topic\": \"t\"}, {\"id\": "
         "\"f\", \"type\": \"filter\", \"rule\": \"true\"}, {\"id\": \"g\", \"type\": \"filter\", "
         "\"rule\": \"true\"}, {\"id\": \"o\", \"type\": \"kafka_sink\", \"topic\": \"u\"}, "
         "{\"id\": "
         "\"p\", \"type\": \"kafka_sink\", \"topic\": \"u\"}, {\"id\": \"d\", \"type\": "
         "\"kafka_sink\", \"topic\": \"v\"}], \"edges\": [{\"from\": \"s\", \"to\": \"f\"}, "
         "{\"from\": \"s\", \"to\": \"g\"}, {\"from\": \"f\", \"to\": \"o\"}, {\"from\": \"g\", "
         "\"to\": \"p\"}, {\"from\": \"f\", \"to\": \"d\", \"on\": \"error\"}, {\"from\": \"g\", "
         "\"to\": \"d\", \"on\": \"error\"}]}",
         "the error edges of 'f' and 'g' to 'd': nodes on one path only share a dead-letter sink"},
        {"{\"nodes\": [{\"id\": \"s\", \"type\": \"kafka_source\", \"topic\": \"t\"}, {\"id\": "
         "\"f\", \"type\": \"filter\", \"rule\": \"true\", \"otherwise\": \"reject\"}, {\"id\": "
         "\"o\", \"type\": \"kafka_sink\", \"topic\": \"u\"}], \"edges\": [{\"from\": \"s\", "
         "\"to\": \"f\"}, {\"from\": \"f\", \"to\": \"o\"}]}",
         "node 'f' (filter): otherwise: \"reject\" is neither \"drop\" nor \"fail\""},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char err[1024] = "";
        em_flow *f = em_flow_load(cases[k].doc, strlen(cases[k].doc), err, sizeof err);
        if (f) fail_msg("case %zu loaded", k + 1);
        if (strncmp(err, cases[k].want, strlen(cases[k].want)) != 0)
            fail_msg("case %zu: said \"%s\", not \"%s...\"", k + 1, err, cases[k].want);
    }
}

/* ---- a library's function: a span of times (first, last) and their count ---------------- */

typedef struct span {
    int64_t first, last, n;
} span;

static int span_add(void *acc, const ember_flow_value *args)
{
    span *s = acc;
    if (args[0].i < 0) return 7; /* a negative time fails the record */
    *s = (span){args[0].i, args[0].i, 1};
    return 0;
}

static int span_merge(void *acc, const void *later)
{
    span *a = acc;
    span b;
    memcpy(&b, later, sizeof b);
    if (b.n == 0) return 0;
    if (a->n == 0) a->first = b.first;
    a->last = b.last;
    a->n += b.n;
    return 0;
}

static int span_result(const void *acc, ember_flow_value *out)
{
    const span *s = acc;
    out[0].i = s->last - s->first;
    out[1].i = s->n;
    return 0;
}

static const ember_flow_aggregate test_span = {
    EMBER_FLOW_ABI, sizeof(span), "timestamp", "int, int", span_add, span_merge, span_result};

/* test_upper (a function node's call): a string upper-cased into buf, and its length; an
 * empty string fails the record */
static int upper(const ember_flow_value *args, ember_flow_value *out, char *buf, size_t cap)
{
    if (args[0].len == 0 || args[0].len > cap) return 3;
    for (uint32_t k = 0; k < args[0].len; k++)
        buf[k] =
            (char)(args[0].s[k] >= 'a' && args[0].s[k] <= 'z' ? args[0].s[k] - 32 : args[0].s[k]);
    out[0].s = buf;
    out[0].len = args[0].len;
    out[1].i = args[0].len;
    return 0;
}

static const ember_flow_function test_upper = {EMBER_FLOW_ABI, "string", "string,int", upper};

static const void *test_resolver(const char *name, size_t size)
{
    if (strcmp(name, "test_span") == 0 && size == sizeof test_span) return &test_span;
    if (strcmp(name, "test_upper") == 0 && size == sizeof test_upper) return &test_upper;
    return NULL;
}

/* a function node: its columns appended, its strings kept in the scratch space, a record it
 * fails, and a name that is an aggregate's refused */
static void function_node(void **state)
{
    (void)state;
    em_schema in = {0}, out;
    char err[512];
    em_schema_add(&in, "name", EM_T_STRING, err, sizeof err);
    em_fn_set_resolver(test_resolver);
    em_node *n = compile(EM_N_FUNCTION,
                         "{\"name\": \"test_upper\", \"args\": [\"name\"], \"returns\": "
                         "[{\"name\": \"up\", \"type\": \"string\"}, {\"name\": \"n\", "
                         "\"type\": \"int\"}]}",
                         &in, &out);
    assert_int_equal(out.n, 3);
    em_value cols[EM_SCHEMA_MAX] = {0};
    set_str(&cols[0], "ab-c");
    scratch.used = 0;
    assert_int_equal(em_node_apply(n, cols, &scratch, err, sizeof err), 1);
    assert_string_equal(col_text(&out, cols, 1), "AB-C");
    assert_int_equal(cols[2].i, 4);
    assert_int_equal(scratch.used, 4); /* kept until the next record */
    set_str(&cols[0], "");
    assert_int_equal(em_node_apply(n, cols, &scratch, err, sizeof err), -1);
    assert_string_equal(err, "function 'test_upper' returned 3");
    em_node_free(n);
    json_t *p = json_loads("{\"name\": \"test_span\", \"args\": [\"name\"], \"returns\": "
                           "[{\"name\": \"x\", \"type\": \"int\"}]}",
                           0, NULL);
    assert_null(em_node_compile(EM_N_FUNCTION, p, &in, &out, err, sizeof err));
    assert_non_null(strstr(err, "function 'test_span' is not in the job library (an exported "
                                "const ember_flow_function"));
    json_decref(p);
    em_fn_set_resolver(NULL);
}

static void function_aggregate(void **state)
{
    (void)state;
    em_schema in = {0}, out;
    char err[512];
    em_schema_add(&in, "k", EM_T_STRING, err, sizeof err);
    em_schema_add(&in, "t", EM_T_TIMESTAMP, err, sizeof err);
    em_schema_add(&in, "q", EM_T_INT, err, sizeof err);
    em_fn_set_resolver(test_resolver);
    const char *doc = "{\"by\": [\"k\"], \"function\": {\"name\": \"test_span\", \"args\": "
                      "[\"t\"], \"returns\": [{\"name\": \"ms\", \"type\": \"int\"}, {\"name\": "
                      "\"n\", \"type\": \"int\"}]}}";
    em_node *n = compile(EM_N_AGGREGATE, doc, &in, &out);
    assert_int_equal(out.n, 3);
    assert_string_equal(out.names[1], "ms");
    size_t len = em_agg_acc_len(n);
    assert_int_equal(len, EM_FN_HEADER + sizeof(span));
    uint8_t acc[256], one[256], key[64];
    em_agg_zero(n, acc);
    assert_int_equal(em_agg_acc_bytes(acc, len), len);
    em_value cols[EM_SCHEMA_MAX] = {0};
    set_str(&cols[0], "K");
    int64_t times[] = {1000, 1500, 4000};
    for (int k = 0; k < 3; k++) { /* merged in time order, as a window's panes are */
        cols[1].i = times[k];
        assert_int_equal(em_agg_record(n, cols, one, err, sizeof err), 0);
        assert_int_equal(em_agg_merge(acc, one, len, err, sizeof err), 0);
    }
    size_t kl = em_agg_key(n, cols, key, sizeof key);
    em_value res[EM_SCHEMA_MAX];
    assert_int_equal(em_agg_result(n, key, kl, acc, len, 0, res), 0);
    assert_string_equal(col_text(&out, res, 0), "K");
    assert_int_equal(res[1].i, 3000);
    assert_int_equal(res[2].i, 3);
    /* the function fails a record; bytes of another length are no accumulator of it */
    cols[1].i = -1;
    assert_int_equal(em_agg_record(n, cols, one, err, sizeof err), -1);
    assert_string_equal(err, "function 'test_span': add returned 7");
    assert_int_equal(em_agg_merge(acc, one, len - 1, err, sizeof err), -1);
    em_node_free(n);

    /* refused when loaded: a name the library lacks, args or returns of other types, both
     * kinds of aggregate */
    static const struct {
        const char *params, *message;
    } bad[] = {
        {"{\"by\": [\"k\"], \"function\": {\"name\": \"nope\", \"args\": [\"t\"], \"returns\": "
         "[{\"name\": \"x\", \"type\": \"int\"}]}}",
         "function 'nope' is not in the job library"},
        {"{\"by\": [\"k\"], \"function\": {\"name\": \"test_span\", \"args\": [\"q\"], "
         "\"returns\": [{\"name\": \"a\", \"type\": \"int\"}, {\"name\": \"b\", \"type\": "
         "\"int\"}]}}",
         "function 'test_span' takes (timestamp), the flow gives it (int)"},
        {"{\"by\": [\"k\"], \"function\": {\"name\": \"test_span\", \"args\": [\"t\"], "
         "\"returns\": [{\"name\": \"a\", \"type\": \"double\"}]}}",
         "function 'test_span' returns (int, int), the flow says (double)"},
        {"{\"by\": [\"k\"], \"function\": {\"name\": \"test span\", \"args\": [\"t\"], "
         "\"returns\": [{\"name\": \"a\", \"type\": \"int\"}]}}",
         "function: the name 'test span' is not a C identifier"},
        {"{\"by\": [\"k\"], \"aggregates\": [{\"op\": \"count\", \"as\": \"c\"}], \"function\": "
         "{\"name\": \"test_span\", \"args\": [\"t\"], \"returns\": []}}",
         "give 'aggregates' (built-in) or 'function' (of the job library), not both"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        json_t *p = json_loads(bad[k].params, 0, NULL);
        assert_non_null(p);
        assert_null(em_node_compile(EM_N_AGGREGATE, p, &in, &out, err, sizeof err));
        if (!strstr(err, bad[k].message)) fail_msg("%s: got '%s'", bad[k].params, err);
        json_decref(p);
    }
    em_fn_set_resolver(NULL);
}

/* a number's decimals in a template; a rule's own alert text */
static void formats_and_alerts(void **state)
{
    (void)state;
    em_schema in = {0}, out;
    char err[512];
    em_schema_add(&in, "id", EM_T_STRING, err, sizeof err);
    em_schema_add(&in, "kmh", EM_T_DOUBLE, err, sizeof err);
    em_schema_add(&in, "n", EM_T_INT, err, sizeof err);
    em_value cols[EM_SCHEMA_MAX] = {0};
    set_str(&cols[0], "T7");
    cols[1].f = 131.4999;
    cols[2].i = 3;
    em_node *sink = compile(EM_N_KAFKA_SINK,
                            "{\"topic\": \"t\", \"key\": \"{id}\", \"value\": "
                            "\"{id},{kmh:.0f},{kmh:.2f},{n:.1f},{kmh}\"}",
                            &in, &out);
    ember_record r;
    scratch.used = 0;
    assert_int_equal(em_sink_record(sink, cols, &scratch, &r, err, sizeof err), 0);
    assert_int_equal(r.value_len, strlen("T7,131,131.50,3.0,131.4999"));
    assert_memory_equal(r.value, "T7,131,131.50,3.0,131.4999", r.value_len);
    em_node_free(sink);
    static const char *const bad[] = {"{id:.2f}", "{kmh:.f}", "{kmh:.18f}", "{kmh:2f}",
                                      "{kmh:.2e}"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char params[128];
        snprintf(params, sizeof params, "{\"topic\": \"t\", \"value\": \"%s\"}", bad[k]);
        json_t *p = json_loads(params, 0, NULL);
        assert_null(em_node_compile(EM_N_KAFKA_SINK, p, &in, &out, err, sizeof err));
        json_decref(p);
    }

    em_node *rules = compile(EM_N_RULES,
                             "{\"rules\": [{\"name\": \"fast\", \"when\": \"kmh > 100\", "
                             "\"alert\": \"speed={kmh:.0f}\"}, {\"name\": \"listed\", \"when\": "
                             "\"n > 0\", \"emit\": [\"n\"]}]}",
                             &in, &out);
    assert_int_equal(out.n, 5);
    em_value alert[EM_SCHEMA_MAX];
    const char *want[] = {"speed=131", "n=3"};
    for (int k = 0; k < 2; k++) {
        memcpy(alert, cols, sizeof cols);
        scratch.used = 0;
        assert_int_equal(em_rules_fire(rules, k, alert, &scratch, err, sizeof err), 1);
        assert_string_equal(col_text(&out, alert, 4), want[k]);
    }
    em_node_free(rules);
}

/* fold_distinct folds values v(i), i in [from, to), into acc one record at a time */
static void fold_distinct(em_node *n, uint8_t *acc, int from, int to, int step, int modulo)
{
    char err[256], text[32];
    em_value cols[EM_SCHEMA_MAX] = {0};
    uint8_t one[EMBER_ACC_MAX];
    size_t len = em_agg_acc_len(n);
    set_str(&cols[0], "K");
    for (int i = from; i != to; i += step) {
        snprintf(text, sizeof text, "v%d", i % modulo);
        set_str(&cols[1], text);
        cols[2].i = i % 7;
        assert_int_equal(em_agg_record(n, cols, one, err, sizeof err), 0);
        assert_int_equal(em_agg_merge(acc, one, len, err, sizeof err), 0);
    }
}

/* distinct_count: exact up to 256 values (one per node) whatever the order and grouping, then
 * an estimate within a few standard errors (2.3%); with three in a node, each its own */
static void distinct_counts(void **state)
{
    (void)state;
    em_schema in = {0}, out;
    char err[256];
    em_schema_add(&in, "k", EM_T_STRING, err, sizeof err);
    em_schema_add(&in, "v", EM_T_STRING, err, sizeof err);
    em_schema_add(&in, "q", EM_T_INT, err, sizeof err);
    em_node *n = compile(EM_N_AGGREGATE,
                         "{\"by\": [\"k\"], \"aggregates\": [{\"op\": \"distinct_count\", "
                         "\"column\": \"v\", \"as\": \"values\"}, {\"op\": \"count\", \"as\": "
                         "\"c\"}]}",
                         &in, &out);
    assert_int_equal(out.types[1], EM_T_INT);
    size_t len = em_agg_acc_len(n);
    assert_int_equal(len, 16 + 2 * 16 + 8 + 2048);
    static uint8_t fwd[EMBER_ACC_MAX], back[EMBER_ACC_MAX], half[EMBER_ACC_MAX], key[64];
    em_value res[EM_SCHEMA_MAX], cols[EM_SCHEMA_MAX] = {0};
    set_str(&cols[0], "K");
    size_t kl = em_agg_key(n, cols, key, sizeof key);
    /* 1,000 records of 256 values: exact, forwards, backwards, and as two merged halves */
    em_agg_zero(n, fwd), em_agg_zero(n, back), em_agg_zero(n, half);
    fold_distinct(n, fwd, 0, 1000, 1, 256);
    fold_distinct(n, back, 999, -1, -1, 256);
    fold_distinct(n, half, 500, 1000, 1, 256);
    uint8_t first[EMBER_ACC_MAX];
    em_agg_zero(n, first);
    fold_distinct(n, first, 0, 500, 1, 256);
    assert_int_equal(em_agg_merge(half, first, len, err, sizeof err), 0);
    for (int w = 0; w < 3; w++) {
        uint8_t *acc = w == 0 ? fwd : w == 1 ? back : half;
        assert_int_equal(em_agg_result(n, key, kl, acc, len, 0, res), 0);
        assert_int_equal(res[1].i, 256);
        assert_int_equal(res[2].i, 1000);
    }
    /* 20,000 distinct values: estimated; merged halves give the same bytes as one fold */
    em_agg_zero(n, fwd), em_agg_zero(n, half), em_agg_zero(n, first);
    fold_distinct(n, fwd, 0, 20000, 1, 1 << 30);
    fold_distinct(n, first, 0, 10000, 1, 1 << 30);
    fold_distinct(n, half, 10000, 20000, 1, 1 << 30);
    assert_int_equal(em_agg_merge(half, first, len, err, sizeof err), 0);
    assert_memory_equal(fwd + 48, half + 48, len - 48); /* the registers */
    assert_int_equal(em_agg_result(n, key, kl, fwd, len, 0, res), 0);
    if (res[1].i < 20000 * 0.92 || res[1].i > 20000 * 1.08)
        fail_msg("20000 distinct values estimated as %lld", (long long)res[1].i);
    em_node_free(n);

    n = compile(
        EM_N_AGGREGATE,
        "{\"by\": [\"k\"], \"aggregates\": [{\"op\": \"distinct_count\", \"column\": "
        "\"v\", \"as\": \"a\"}, {\"op\": \"sum\", \"column\": \"q\", \"as\": \"s\"}, {\"op\": "
        "\"distinct_count\", \"column\": \"q\", \"as\": \"b\"}, {\"op\": \"distinct_count\", "
        "\"column\": \"k\", \"as\": \"c\"}]}",
        &in, &out);
    len = em_agg_acc_len(n);
    assert_int_equal(len, 16 + 4 * 16 + 3 * (8 + 1024));
    em_agg_zero(n, fwd);
    fold_distinct(n, fwd, 0, 300, 1, 100);
    assert_int_equal(em_agg_result(n, key, kl, fwd, len, 0, res), 0);
    assert_int_equal(res[1].i, 100);
    assert_int_equal(res[3].i, 7);
    assert_int_equal(res[4].i, 1);
    em_node_free(n);
    json_t *p = json_loads("{\"by\": [\"k\"], \"aggregates\": [{\"op\": \"distinct_count\", "
                           "\"column\": \"v\", \"as\": \"a\"}, {\"op\": \"distinct_count\", "
                           "\"column\": \"v\", \"as\": \"b\"}, {\"op\": \"distinct_count\", "
                           "\"column\": \"v\", \"as\": \"c\"}, {\"op\": \"distinct_count\", "
                           "\"column\": \"v\", \"as\": \"d\"}]}",
                           0, NULL);
    assert_null(em_node_compile(EM_N_AGGREGATE, p, &in, &out, err, sizeof err));
    assert_string_equal(err, "aggregates: 4 distinct_counts (at most 3 in one node)");
    json_decref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_node),          cmocka_unit_test(cast_node),
        cmocka_unit_test(select_and_concat),  cmocka_unit_test(sinks),
        cmocka_unit_test(aggregate),          cmocka_unit_test(rows),
        cmocka_unit_test(documents),          cmocka_unit_test(json_twice),
        cmocka_unit_test(lookup_node),        cmocka_unit_test(function_aggregate),
        cmocka_unit_test(formats_and_alerts), cmocka_unit_test(function_node),
        cmocka_unit_test(distinct_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
