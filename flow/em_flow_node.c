/* em_flow_node.c -- the narrow nodes of a workflow: compiled from their parameters against the
 * columns they receive, then run record by record without allocating.
 *
 *   kafka_source  key, value (strings) and timestamp of each Kafka record
 *   file_source   the same columns for each line of text files (an empty key, no timestamp)
 *   csv           splits a column at a delimiter into named (optionally typed) columns
 *   json          picks fields of a JSON column by path into typed columns
 *   concat        joins columns as text with a separator into a new column (row keys)
 *   cast          changes columns' types (text with a format for timestamps)
 *   filter        keeps the records its rule holds for
 *   derive        adds a column computed by an expression
 *   select        keeps the columns named, in that order
 *   key_by        names the columns that key the records downstream (Kafka keys)
 * Aggregates and sinks compile in em_flow_agg.c and em_flow_sink.c.
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "em_flow_fn.h"
#include "em_flow_int.h"
#include "em_flow_lookup.h"

char *em_scratch_put(em_scratch *s, const void *p, size_t len)
{
    if (len > sizeof s->buf - s->used) return NULL;
    char *at = s->buf + s->used;
    if (len) memcpy(at, p, len);
    s->used += len;
    return at;
}

/* add_column appends a column to out, with the node's message on a clash */
static int add_column(em_schema *out, const char *name, em_type t, char *err, size_t errlen)
{
    return em_schema_add(out, name, t, err, errlen);
}

/* new_columns reads csv's `columns` or json's `fields`: names, types (default string), and
 * json's paths and csv's timestamp formats */
int em_node_new_columns(em_node *n, json_t *params, const char *param, em_schema *out, char *err,
                        size_t errlen)
{
    json_t *a = json_object_get(params, param), *v;
    size_t k;
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > EM_SCHEMA_MAX) {
        snprintf(err, errlen, "the parameter '%s' must be an array of 1 to %d columns", param,
                 EM_SCHEMA_MAX);
        return -1;
    }
    json_array_foreach(a, k, v)
    {
        const char *name = NULL, *type = "string", *path = NULL, *format = NULL;
        if (json_is_string(v))
            name = json_string_value(v);
        else if (json_is_object(v)) {
            static const char *const keys[] = {"name", "type", "path", "format", NULL};
            if (param_check(v, keys, err, errlen) != 0 ||
                param_str(v, "name", 1, NULL, &name, err, errlen) != 0 ||
                param_str(v, "type", 0, "string", &type, err, errlen) != 0 ||
                param_str(v, "path", 0, NULL, &path, err, errlen) != 0 ||
                param_str(v, "format", 0, NULL, &format, err, errlen) != 0)
                return -1;
        } else {
            snprintf(err, errlen, "'%s' entry %zu must be a name or {\"name\": ..., \"type\": ...}",
                     param, k + 1);
            return -1;
        }
        em_type t;
        if (em_type_parse(type, &t) != 0) {
            snprintf(err, errlen,
                     "column '%s': unknown type '%s' (int, double, string, bool, "
                     "timestamp)",
                     name, type);
            return -1;
        }
        if (format && t != EM_T_TIMESTAMP) {
            snprintf(err, errlen, "column '%s': a format is for timestamps only", name);
            return -1;
        }
        n->new_types[k] = t;
        n->paths[k] = strdup(path ? path : name);
        n->formats[k] = format ? strdup(format) : NULL;
        if (!n->paths[k] || (format && !n->formats[k]))
            return snprintf(err, errlen, "out of memory"), -1;
        if (add_column(out, name, t, err, errlen) != 0) return -1;
    }
    n->n_new = (int)json_array_size(a);
    return 0;
}

static int compile_split(em_node *n, json_t *params, em_schema *out, char *err, size_t errlen)
{
    static const char *const csv_keys[] = {"input", "delimiter", "columns", NULL};
    static const char *const json_keys[] = {"input", "fields", NULL};
    int csv = n->kind == EM_N_CSV;
    const char *input, *delim = ",";
    if (param_check(params, csv ? csv_keys : json_keys, err, errlen) != 0 ||
        param_str(params, "input", 0, "value", &input, err, errlen) != 0 ||
        (csv && param_str(params, "delimiter", 0, ",", &delim, err, errlen) != 0))
        return -1;
    if ((n->input_col = column_of(&n->in, input, "input", err, errlen)) < 0) return -1;
    if (n->in.types[n->input_col] != EM_T_STRING) {
        snprintf(err, errlen, "input: the column '%s' is a %s, not a string", input,
                 em_type_name(n->in.types[n->input_col]));
        return -1;
    }
    if (csv && strlen(delim) != 1) {
        snprintf(err, errlen, "delimiter: one character, not \"%s\"", delim);
        return -1;
    }
    n->delim = delim[0];
    return em_node_new_columns(n, params, csv ? "columns" : "fields", out, err, errlen);
}

static int compile_concat(em_node *n, json_t *params, em_schema *out, char *err, size_t errlen)
{
    static const char *const keys[] = {"columns", "separator", "as", NULL};
    const char *sep, *as;
    if (param_check(params, keys, err, errlen) != 0 ||
        param_columns(params, "columns", &n->in, n->cols, &n->n_cols, err, errlen) != 0 ||
        param_str(params, "separator", 0, "|", &sep, err, errlen) != 0 ||
        param_str(params, "as", 1, NULL, &as, err, errlen) != 0)
        return -1;
    if (!(n->sep = strdup(sep))) return snprintf(err, errlen, "out of memory"), -1;
    return add_column(out, as, EM_T_STRING, err, errlen);
}

/* cast_allowed: the conversions cast does */
static int cast_allowed(em_type from, em_type to)
{
    if (from == to || from == EM_T_STRING || to == EM_T_STRING) return 1;
    return em_type_numeric(from) && em_type_numeric(to);
}

static int compile_cast(em_node *n, json_t *params, em_schema *out, char *err, size_t errlen)
{
    static const char *const keys[] = {"columns", "formats", NULL};
    json_t *cols = json_object_get(params, "columns"),
           *formats = json_object_get(params, "formats");
    if (param_check(params, keys, err, errlen) != 0) return -1;
    if (!json_is_object(cols) || json_object_size(cols) == 0 ||
        (formats && !json_is_object(formats))) {
        snprintf(err, errlen,
                 "the parameter 'columns' must be an object {\"column\": \"type\"} "
                 "(and 'formats' {\"column\": \"strptime format\"})");
        return -1;
    }
    for (int k = 0; k < EM_SCHEMA_MAX; k++) n->cast_to[k] = -1;
    const char *name;
    json_t *v;
    json_object_foreach(cols, name, v)
    {
        int c = column_of(&n->in, name, "columns", err, errlen);
        em_type to;
        if (c < 0) return -1;
        if (!json_is_string(v) || em_type_parse(json_string_value(v), &to) != 0) {
            snprintf(err, errlen,
                     "columns: '%s' must be cast to int, double, string, bool or "
                     "timestamp",
                     name);
            return -1;
        }
        if (!cast_allowed(n->in.types[c], to)) {
            snprintf(err, errlen, "columns: a %s column ('%s') cannot become a %s",
                     em_type_name(n->in.types[c]), name, em_type_name(to));
            return -1;
        }
        n->cast_to[c] = (int)to;
        out->types[c] = to;
    }
    json_object_foreach(formats, name, v)
    {
        int c = column_of(&n->in, name, "formats", err, errlen);
        if (c < 0) return -1;
        if (!json_is_string(v) || n->cast_to[c] < 0 ||
            (n->cast_to[c] != EM_T_TIMESTAMP && n->in.types[c] != EM_T_TIMESTAMP)) {
            snprintf(err, errlen, "formats: '%s' is not cast from or to a timestamp", name);
            return -1;
        }
        if (!(n->formats[c] = strdup(json_string_value(v))))
            return snprintf(err, errlen, "out of memory"), -1;
    }
    return 0;
}

static int compile_expr(em_node *n, json_t *params, em_schema *out, char *err, size_t errlen)
{
    static const char *const filter_keys[] = {"rule", "otherwise", NULL};
    static const char *const derive_keys[] = {"as", "expr", NULL};
    int filter = n->kind == EM_N_FILTER;
    const char *text, *as = NULL, *otherwise = "drop";
    if (param_check(params, filter ? filter_keys : derive_keys, err, errlen) != 0 ||
        param_str(params, filter ? "rule" : "expr", 1, NULL, &text, err, errlen) != 0 ||
        (!filter && param_str(params, "as", 1, NULL, &as, err, errlen) != 0) ||
        (filter && param_str(params, "otherwise", 0, "drop", &otherwise, err, errlen) != 0))
        return -1;
    if (strcmp(otherwise, "drop") != 0 && strcmp(otherwise, "fail") != 0) {
        snprintf(err, errlen, "otherwise: \"%s\" is neither \"drop\" nor \"fail\"", otherwise);
        return -1;
    }
    n->fail_otherwise = otherwise[0] == 'f';
    char why[512];
    if (!(n->expr_text = strdup(text))) return snprintf(err, errlen, "out of memory"), -1;
    if (!(n->expr = em_expr_compile(text, &n->in, why, sizeof why))) {
        snprintf(err, errlen, "%s \"%s\": %s", filter ? "rule" : "expr", text, why);
        return -1;
    }
    if (filter && em_expr_type(n->expr) != EM_T_BOOL) {
        snprintf(err, errlen, "rule \"%s\": gives a %s, not a bool", text,
                 em_type_name(em_expr_type(n->expr)));
        return -1;
    }
    return filter ? 0 : add_column(out, as, em_expr_type(n->expr), err, errlen);
}

static int compile_select(em_node *n, json_t *params, em_schema *out, char *err, size_t errlen)
{
    static const char *const keys[] = {"columns", NULL};
    if (param_check(params, keys, err, errlen) != 0 ||
        param_columns(params, "columns", &n->in, n->cols, &n->n_cols, err, errlen) != 0)
        return -1;
    if (n->kind == EM_N_KEY_BY) return 0;
    memset(out, 0, sizeof *out);
    for (int k = 0; k < n->n_cols; k++)
        if (add_column(out, n->in.names[n->cols[k]], n->in.types[n->cols[k]], err, errlen) != 0)
            return -1;
    return 0;
}

/* source_columns: what both sources give: key, value, timestamp */
static int source_columns(em_schema *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    return add_column(out, "key", EM_T_STRING, err, errlen) ||
                   add_column(out, "value", EM_T_STRING, err, errlen) ||
                   add_column(out, "timestamp", EM_T_TIMESTAMP, err, errlen)
               ? -1
               : 0;
}

static int compile_source(em_node *n, json_t *params, em_schema *out, char *err, size_t errlen)
{
    static const char *const keys[] = {"topic", "mode", "earliest", "max_per_partition", NULL};
    const char *topic, *mode;
    json_t *earliest = json_object_get(params, "earliest");
    if (param_check(params, keys, err, errlen) != 0 ||
        param_str(params, "topic", 1, NULL, &topic, err, errlen) != 0 ||
        param_str(params, "mode", 0, "batch", &mode, err, errlen) != 0 ||
        param_int(params, "max_per_partition", 0, 0, INT32_MAX, &n->max_per_partition, err,
                  errlen) != 0)
        return -1;
    if (strcmp(mode, "batch") != 0 && strcmp(mode, "stream") != 0) {
        snprintf(err, errlen,
                 "mode: \"%s\" is neither \"batch\" (the topic's records when the "
                 "flow runs) nor \"stream\" (a query, batch after batch)",
                 mode);
        return -1;
    }
    if (earliest && !json_is_boolean(earliest)) {
        snprintf(err, errlen, "the parameter 'earliest' must be true or false");
        return -1;
    }
    n->stream = mode[0] == 's';
    n->earliest = json_is_true(earliest);
    if (!n->stream && (earliest || n->max_per_partition)) {
        snprintf(err, errlen, "'earliest' and 'max_per_partition' are for \"mode\": \"stream\"");
        return -1;
    }
    if (!(n->target = strdup(topic))) return snprintf(err, errlen, "out of memory"), -1;
    return source_columns(out, err, errlen);
}

static int compile_file_source(em_node *n, json_t *params, em_schema *out, char *err, size_t errlen)
{
    static const char *const keys[] = {"path", "partitions", NULL};
    const char *path;
    int64_t partitions;
    if (param_check(params, keys, err, errlen) != 0 ||
        param_str(params, "path", 1, NULL, &path, err, errlen) != 0 ||
        param_int(params, "partitions", 0, 0, 1000000, &partitions, err, errlen) != 0)
        return -1;
    n->partitions = (int)partitions; /* at least: ember_text_file's min_partitions */
    if (!(n->target = strdup(path))) return snprintf(err, errlen, "out of memory"), -1;
    return source_columns(out, err, errlen);
}

em_node *em_node_compile(em_node_kind k, json_t *params, const em_schema *in, em_schema *out,
                         char *err, size_t errlen)
{
    em_node *n = calloc(1, sizeof *n);
    if (!n) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n->kind = k;
    if (in) n->in = *in;
    *out = n->in;
    int rc;
    switch (k) {
    case EM_N_KAFKA_SOURCE: rc = compile_source(n, params, out, err, errlen); break;
    case EM_N_FILE_SOURCE: rc = compile_file_source(n, params, out, err, errlen); break;
    case EM_N_CSV:
    case EM_N_JSON: rc = compile_split(n, params, out, err, errlen); break;
    case EM_N_CONCAT: rc = compile_concat(n, params, out, err, errlen); break;
    case EM_N_CAST: rc = compile_cast(n, params, out, err, errlen); break;
    case EM_N_FILTER:
    case EM_N_DERIVE: rc = compile_expr(n, params, out, err, errlen); break;
    case EM_N_SELECT:
    case EM_N_KEY_BY: rc = compile_select(n, params, out, err, errlen); break;
    case EM_N_AGGREGATE: rc = em_agg_compile(n, params, out, err, errlen); break;
    case EM_N_RULES: rc = em_rules_compile(n, params, out, err, errlen); break;
    case EM_N_LOOKUP: rc = em_lookup_compile(n, params, out, err, errlen); break;
    case EM_N_FUNCTION: rc = em_fn_call_compile(n, params, out, err, errlen); break;
    default: rc = em_sink_compile(n, params, out, err, errlen); break;
    }
    if (rc != 0) {
        em_node_free(n);
        return NULL;
    }
    return n;
}

void em_node_free(em_node *n)
{
    if (!n) return;
    for (int k = 0; k < EM_SCHEMA_MAX; k++) {
        free(n->paths[k]);
        free(n->formats[k]);
    }
    for (int k = 0; k < n->n_fields; k++) {
        template_free(&n->field_names[k]);
        template_free(&n->fields[k]);
    }
    template_free(&n->key);
    template_free(&n->value);
    free(n->sep);
    free(n->target);
    em_expr_free(n->expr);
    free(n->expr_text);
    em_rules_free(n);
    em_lookup_free(n);
    em_fn_free(n);
    free(n);
}

const int *em_node_key_columns(const em_node *n, int *count)
{
    if (n->kind != EM_N_KEY_BY && n->kind != EM_N_AGGREGATE) return NULL;
    *count = n->n_cols;
    return n->cols;
}

/* ---- running narrow nodes --------------------------------------------------------------- */

static int apply_csv(const em_node *n, em_value *cols, em_scratch *s, char *err, size_t errlen)
{
    ember_field fields[EM_SCHEMA_MAX + 1];
    const em_value *in = &cols[n->input_col];
    size_t room = sizeof s->buf - s->used;
    int got = ember_csv_split(in->s, in->len, n->delim, fields, EM_SCHEMA_MAX + 1, s->buf + s->used,
                              room);
    if (got < 0) {
        snprintf(err, errlen, "%s",
                 got == EMBER_ERR_MALFORMED ? "a quote that never closes, or "
                                              "text after a closing quote"
                                            : "more fields than columns, or quoted fields "
                                              "over the scratch space");
        return -1;
    }
    if (got != n->n_new) {
        snprintf(err, errlen, "%d fields, not %d", got, n->n_new);
        return -1;
    }
    for (int k = 0; k < got; k++) {
        /* unescaped quoted fields were written to the scratch space: keep them */
        if (fields[k].p >= s->buf + s->used && fields[k].p < s->buf + sizeof s->buf)
            s->used = (size_t)(fields[k].p + fields[k].len - s->buf);
        if (em_value_parse(n->new_types[k], n->formats[k], fields[k].p, fields[k].len,
                           &cols[n->in.n + k], err, errlen) != 0)
            return -1;
    }
    return 1;
}

static int apply_json(const em_node *n, em_value *cols, em_scratch *s, char *err, size_t errlen)
{
    const em_value *in = &cols[n->input_col];
    if (!s->json && !(s->json = ember_json_new()))
        return snprintf(err, errlen, "out of memory"), -1;
    if (ember_json_parse(s->json, in->s, in->len) != EMBER_OK) {
        snprintf(err, errlen, "%s", ember_json_error(s->json));
        return -1;
    }
    for (int k = 0; k < n->n_new; k++) {
        em_value *v = &cols[n->in.n + k];
        const char *str;
        size_t len;
        int rc, b;
        int as_text = n->new_types[k] == EM_T_STRING || n->formats[k];
        if (as_text) { /* copied: the next json node of the step reuses the parser */
            rc = ember_json_str(s->json, n->paths[k], &str, &len);
            if (rc == EMBER_OK && !(str = em_scratch_put(s, str, len)))
                return snprintf(err, errlen, "the record's new strings exceed %d bytes",
                                EM_SCRATCH_BYTES),
                       -1;
            if (rc == EMBER_OK && n->formats[k])
                rc = em_value_parse(EM_T_TIMESTAMP, n->formats[k], str, len, v, err, errlen) == 0
                         ? EMBER_OK
                         : EMBER_ERR_INVALID;
            else if (rc == EMBER_OK)
                v->s = str, v->len = (uint32_t)len;
        } else
            switch (n->new_types[k]) {
            case EM_T_STRING: rc = EMBER_OK; break; /* (read above) */
            case EM_T_DOUBLE: rc = ember_json_f64(s->json, n->paths[k], &v->f); break;
            case EM_T_BOOL:
                rc = ember_json_bool(s->json, n->paths[k], &b);
                v->i = b;
                break;
            default: rc = ember_json_i64(s->json, n->paths[k], &v->i); break;
            }
        if (rc != EMBER_OK && as_text && n->formats[k] && rc == EMBER_ERR_INVALID && err[0])
            return -1; /* em_value_parse said why */
        if (rc != EMBER_OK) {
            snprintf(err, errlen, "%s %s", n->paths[k],
                     rc == EMBER_ERR_NOT_FOUND ? "is missing" : "is not a");
            if (rc != EMBER_ERR_NOT_FOUND)
                snprintf(err + strlen(err), errlen - strlen(err), " %s",
                         em_type_name(n->new_types[k]));
            return -1;
        }
    }
    return 1;
}

static int apply_concat(const em_node *n, em_value *cols, em_scratch *s, char *err, size_t errlen)
{
    char *start = s->buf + s->used;
    size_t sep = strlen(n->sep);
    for (int k = 0; k < n->n_cols; k++) {
        if (k && !em_scratch_put(s, n->sep, sep)) goto full;
        int c = n->cols[k];
        int len =
            em_value_text(n->in.types[c], &cols[c], s->buf + s->used, sizeof s->buf - s->used);
        if (len < 0) goto full;
        s->used += (size_t)len;
    }
    cols[n->in.n].s = start;
    cols[n->in.n].len = (uint32_t)(s->buf + s->used - start);
    return 1;
full:
    snprintf(err, errlen, "the record's new strings exceed %d bytes", EM_SCRATCH_BYTES);
    return -1;
}

static int apply_cast(const em_node *n, em_value *cols, em_scratch *s, char *err, size_t errlen)
{
    for (int c = 0; c < n->in.n; c++) {
        if (n->cast_to[c] < 0) continue;
        em_type from = n->in.types[c], to = (em_type)n->cast_to[c];
        em_value *v = &cols[c];
        if (from == to) continue;
        if (from == EM_T_STRING) {
            if (em_value_parse(to, n->formats[c], v->s, v->len, v, err, errlen) != 0) return -1;
        } else if (to == EM_T_STRING) {
            char *at = s->buf + s->used;
            int len;
            if (from == EM_T_TIMESTAMP && n->formats[c]) {
                time_t secs = (time_t)(v->i / 1000 - (v->i % 1000 < 0));
                struct tm tm;
                len = gmtime_r(&secs, &tm)
                          ? (int)strftime(at, sizeof s->buf - s->used, n->formats[c], &tm)
                          : -1;
                if (len == 0) len = -1;
            } else
                len = em_value_text(from, v, at, sizeof s->buf - s->used);
            if (len < 0)
                return snprintf(err, errlen, "the record's new strings exceed %d bytes",
                                EM_SCRATCH_BYTES),
                       -1;
            s->used += (size_t)len;
            v->s = at, v->len = (uint32_t)len;
        } else if (from == EM_T_DOUBLE) { /* to an int or a timestamp: toward zero */
            if (!(v->f > -9.2e18 && v->f < 9.2e18)) {
                snprintf(err, errlen, "%g does not fit an int", v->f);
                return -1;
            }
            v->i = (int64_t)v->f;
        } else if (to == EM_T_DOUBLE)
            v->f = (double)v->i;
    }
    return 1;
}

int em_node_apply(const em_node *n, em_value *cols, em_scratch *s, char *err, size_t errlen)
{
    em_value v;
    switch (n->kind) {
    case EM_N_CSV: return apply_csv(n, cols, s, err, errlen);
    case EM_N_JSON: return apply_json(n, cols, s, err, errlen);
    case EM_N_CONCAT: return apply_concat(n, cols, s, err, errlen);
    case EM_N_CAST: return apply_cast(n, cols, s, err, errlen);
    case EM_N_LOOKUP: return em_lookup_apply(n, cols, err, errlen);
    case EM_N_FUNCTION: return em_fn_call(n, cols, s, err, errlen);
    case EM_N_FILTER:
        if (em_expr_eval(n->expr, cols, &v, err, errlen) != 0) return -1;
        if (!v.i && n->fail_otherwise) {
            snprintf(err, errlen, "the rule does not hold");
            return -1;
        }
        return v.i ? 1 : 0;
    case EM_N_DERIVE:
        if (em_expr_eval(n->expr, cols, &v, err, errlen) != 0) return -1;
        cols[n->in.n] = v;
        return 1;
    case EM_N_SELECT: {
        em_value picked[EM_SCHEMA_MAX];
        for (int k = 0; k < n->n_cols; k++) picked[k] = cols[n->cols[k]];
        memcpy(cols, picked, (size_t)n->n_cols * sizeof *cols);
        return 1;
    }
    default: return 1; /* key_by: a property of the records, not a change */
    }
}

void em_node_describe(const em_node *n, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    switch (n->kind) {
    case EM_N_KAFKA_SOURCE:
    case EM_N_KAFKA_SINK: snprintf(buf, cap, "topic %s", n->target); break;
    case EM_N_FILES_SINK: snprintf(buf, cap, "directory %s", n->target); break;
    case EM_N_FILE_SOURCE: snprintf(buf, cap, "text files %s", n->target); break;
    case EM_N_REDIS_SINK:
        snprintf(buf, cap, "%s %s", n->redis_set ? "SET" : "HSET", n->key.source);
        break;
    case EM_N_FILTER:
    case EM_N_DERIVE: snprintf(buf, cap, "%s", n->expr_text); break;
    case EM_N_RULES:
        snprintf(buf, cap, "%d rules, an alert record per rule that holds", n->n_rules);
        break;
    case EM_N_FUNCTION: snprintf(buf, cap, "calls %s", n->fn.name); break;
    case EM_N_LOOKUP: em_lookup_describe(n, buf, cap); break;
    case EM_N_CSV:
    case EM_N_JSON: snprintf(buf, cap, "reads %s", n->in.names[n->input_col]); break;
    default:
        for (int k = 0; k < n->n_cols && used < cap; k++)
            used += (size_t)snprintf(buf + used, cap - used, "%s%s", k ? ", " : "by ",
                                     n->in.names[n->cols[k]]);
        if (n->fn.name && used < cap) snprintf(buf + used, cap - used, ", function %s", n->fn.name);
    }
}
