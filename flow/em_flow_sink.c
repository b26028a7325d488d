/* em_flow_sink.c -- kafka_sink, files_sink and redis_sink: parameters, and each record's
 * bytes (em_flow_sink.h). CSV fields holding the delimiter, a quote or a line break are
 * quoted (quotes doubled, RFC 4180); JSON strings are escaped as RFC 8259 requires (quote,
 * backslash, \b \t \n \f \r, other control characters as \u00XX), written here so that no
 * allocation happens per record.
 */
#include "em_flow_sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_flow_int.h"

static int compile_columns(em_node *n, json_t *params, char *err, size_t errlen)
{
    if (json_object_get(params, "columns"))
        return param_columns(params, "columns", &n->in, n->cols, &n->n_cols, err, errlen);
    for (int k = 0; k < n->in.n; k++) n->cols[k] = k;
    n->n_cols = n->in.n;
    return 0;
}

static int compile_lines(em_node *n, json_t *params, char *err, size_t errlen)
{
    const char *format, *delim, *value;
    if (param_str(params, "value", 0, NULL, &value, err, errlen) != 0) return -1;
    if (value) { /* a template: the line as written, nothing else */
        if (json_object_get(params, "format") || json_object_get(params, "columns") ||
            json_object_get(params, "delimiter")) {
            snprintf(err, errlen,
                     "'value' (a template) makes the whole line: no 'format', "
                     "'columns' or 'delimiter' beside it");
            return -1;
        }
        n->format = FORMAT_TEMPLATE;
        return template_compile(&n->value, value, &n->in, "value", err, errlen);
    }
    if (param_str(params, "format", 0, "csv", &format, err, errlen) != 0 ||
        param_str(params, "delimiter", 0, ",", &delim, err, errlen) != 0 ||
        compile_columns(n, params, err, errlen) != 0)
        return -1;
    if (strcmp(format, "csv") != 0 && strcmp(format, "json") != 0) {
        snprintf(err, errlen, "format: \"%s\" is neither \"csv\" nor \"json\"", format);
        return -1;
    }
    if (strlen(delim) != 1 || delim[0] == '"' || delim[0] == '\n') {
        snprintf(err, errlen, "delimiter: one character other than a quote or a line break");
        return -1;
    }
    n->format = format[0] == 'j' ? FORMAT_JSON : FORMAT_CSV;
    n->delim = delim[0];
    return 0;
}

static int compile_redis(em_node *n, json_t *params, char *err, size_t errlen)
{
    const char *address, *command, *key, *value;
    int64_t ttl_s;
    json_t *fields = json_object_get(params, "fields");
    if (param_str(params, "address", 0, NULL, &address, err, errlen) != 0 ||
        param_str(params, "command", 0, "hset", &command, err, errlen) != 0 ||
        param_str(params, "key", 1, NULL, &key, err, errlen) != 0 ||
        param_str(params, "value", 0, NULL, &value, err, errlen) != 0 ||
        param_int(params, "ttl_s", 0, 0, INT32_MAX, &ttl_s, err, errlen) != 0 ||
        template_compile(&n->key, key, &n->in, "key", err, errlen) != 0)
        return -1;
    n->ttl_ms = ttl_s * 1000;
    if (address && !(n->target = strdup(address)))
        return snprintf(err, errlen, "out of memory"), -1;
    n->redis_set = strcmp(command, "set") == 0;
    if (!n->redis_set && strcmp(command, "hset") != 0) {
        snprintf(err, errlen, "command: \"%s\" is neither \"hset\" nor \"set\"", command);
        return -1;
    }
    if (n->redis_set) {
        if (!value || fields) {
            snprintf(err, errlen, "a \"set\" redis_sink needs 'value' (a template), not 'fields'");
            return -1;
        }
        return template_compile(&n->value, value, &n->in, "value", err, errlen);
    }
    if (value || !json_is_object(fields) || json_object_size(fields) == 0 ||
        json_object_size(fields) > REDIS_FIELDS) {
        snprintf(err, errlen,
                 "an \"hset\" redis_sink needs 'fields': {\"field\": \"template\"}, 1 "
                 "to %d of them (not 'value')",
                 REDIS_FIELDS);
        return -1;
    }
    const char *name;
    json_t *v;
    json_object_foreach(fields, name, v)
    {
        if (!json_is_string(v)) {
            snprintf(err, errlen, "fields: '%s' must be a template (a string)", name);
            return -1;
        }
        int k = n->n_fields++; /* counted before compiling: em_node_free frees what was made */
        if (template_compile(&n->field_names[k], name, &n->in, "fields", err, errlen) != 0 ||
            template_compile(&n->fields[k], json_string_value(v), &n->in, name, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int em_sink_compile(em_node *n, json_t *params, em_schema *out, char *err, size_t errlen)
{
    static const char *const kafka_keys[] = {"topic",     "key",   "format", "columns",
                                             "delimiter", "value", NULL};
    static const char *const files_keys[] = {"dir",       "format", "columns",
                                             "delimiter", "value",  NULL};
    static const char *const redis_keys[] = {"address", "command", "key", "fields",
                                             "value",   "ttl_s",   NULL};
    const char *target, *key;
    memset(out, 0, sizeof *out); /* a sink feeds nothing */
    switch (n->kind) {
    case EM_N_KAFKA_SINK:
        if (param_check(params, kafka_keys, err, errlen) != 0 ||
            param_str(params, "topic", 1, NULL, &target, err, errlen) != 0 ||
            param_str(params, "key", 0, NULL, &key, err, errlen) != 0 ||
            compile_lines(n, params, err, errlen) != 0)
            return -1;
        if (key && template_compile(&n->key, key, &n->in, "key", err, errlen) != 0) return -1;
        n->has_key = key != NULL;
        break;
    case EM_N_FILES_SINK:
        if (param_check(params, files_keys, err, errlen) != 0 ||
            param_str(params, "dir", 1, NULL, &target, err, errlen) != 0 ||
            compile_lines(n, params, err, errlen) != 0)
            return -1;
        if (target[0] != '/') {
            snprintf(err, errlen,
                     "dir: \"%s\" is not an absolute path (every executor writes "
                     "there: on several hosts, shared storage)",
                     target);
            return -1;
        }
        break;
    default:
        n->has_key = 1;
        return param_check(params, redis_keys, err, errlen) != 0
                   ? -1
                   : compile_redis(n, params, err, errlen);
    }
    if (!(n->target = strdup(target))) return snprintf(err, errlen, "out of memory"), -1;
    return 0;
}

int em_sink_default_key(em_node *n, const int *cols, int count, char *err, size_t errlen)
{
    char text[EM_SCHEMA_MAX * (EM_NAME_MAX + 3)];
    size_t used = 0;
    if (2 * count - 1 > TEMPLATE_PARTS) {
        snprintf(err, errlen,
                 "keyed by %d columns upstream: too many for a default Kafka key (at most %d); "
                 "give the sink a 'key' template",
                 count, TEMPLATE_PARTS / 2);
        return -1;
    }
    for (int k = 0; k < count && used < sizeof text; k++)
        used += (size_t)snprintf(text + used, sizeof text - used, "%s{%s}", k ? "|" : "",
                                 n->in.names[cols[k]]);
    if (template_compile(&n->key, text, &n->in, "key", err, errlen) != 0) return -1;
    n->has_key = 1;
    return 0;
}

/* ---- per record ------------------------------------------------------------------------- */

/* putc_ / puts_: append to the scratch space; 0, or -1 when full */
static int putc_(em_scratch *s, char c) { return em_scratch_put(s, &c, 1) ? 0 : -1; }
static int puts_(em_scratch *s, const char *p, size_t len)
{
    return em_scratch_put(s, p, len) ? 0 : -1;
}

static int csv_field(em_scratch *s, const char *p, size_t len, char delim)
{
    int quote = 0;
    for (size_t k = 0; k < len && !quote; k++)
        quote = p[k] == delim || p[k] == '"' || p[k] == '\n' || p[k] == '\r';
    if (!quote) return puts_(s, p, len);
    if (putc_(s, '"') != 0) return -1;
    for (size_t k = 0; k < len; k++)
        if ((p[k] == '"' && putc_(s, '"') != 0) || putc_(s, p[k]) != 0) return -1;
    return putc_(s, '"');
}

static int json_quoted(em_scratch *s, const char *p, size_t len)
{
    if (putc_(s, '"') != 0) return -1;
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)p[k];
        if (c == '"' || c == '\\') {
            if (putc_(s, '\\') != 0 || putc_(s, (char)c) != 0) return -1;
        } else if (c < 0x20) {
            static const char SHORT[] = "b\bt\tn\nf\fr\r"; /* pairs: letter, character */
            const char *at = memchr(SHORT, c, sizeof SHORT - 1);
            char esc[8];
            if (at && (at - SHORT) % 2 == 1) {
                esc[0] = '\\', esc[1] = at[-1];
                if (puts_(s, esc, 2) != 0) return -1;
            } else {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                if (puts_(s, esc, 6) != 0) return -1;
            }
        } else if (putc_(s, (char)c) != 0)
            return -1;
    }
    return putc_(s, '"');
}

/* line writes the columns as a CSV line or a JSON object */
static int line(const em_node *n, const em_value *cols, em_scratch *s)
{
    char text[128];
    int json = n->format == FORMAT_JSON;
    if (json && putc_(s, '{') != 0) return -1;
    for (int k = 0; k < n->n_cols; k++) {
        int c = n->cols[k];
        em_type t = n->in.types[c];
        if (k && putc_(s, json ? ',' : n->delim) != 0) return -1;
        if (json &&
            (json_quoted(s, n->in.names[c], strlen(n->in.names[c])) != 0 || putc_(s, ':') != 0))
            return -1;
        const char *p = cols[c].s;
        int len = (int)cols[c].len;
        if (t != EM_T_STRING) {
            if ((len = em_value_text(t, &cols[c], text, sizeof text)) < 0) return -1;
            p = text;
        }
        int quoted =
            json && (t == EM_T_STRING || t == EM_T_TIMESTAMP ||
                     (t == EM_T_DOUBLE && !(cols[c].f == cols[c].f && cols[c].f - cols[c].f == 0)));
        int rc = quoted ? json_quoted(s, p, (size_t)len)
                 : json ? puts_(s, p, (size_t)len)
                        : csv_field(s, p, (size_t)len, n->delim);
        if (rc != 0) return -1;
    }
    return json ? putc_(s, '}') : 0;
}

/* rendered renders a template into the scratch space, NUL-terminated when asked */
static const char *rendered(const em_template *t, const em_schema *in, const em_value *cols,
                            em_scratch *s, size_t *len, int nul)
{
    if (sizeof s->buf - s->used < 1 + (size_t)nul) return NULL; /* full: no byte to spare */
    char *at = s->buf + s->used;
    int n = template_render(t, in, cols, at, sizeof s->buf - s->used - 1);
    if (n < 0) return NULL;
    if (nul) at[n] = '\0';
    s->used += (size_t)n + (size_t)nul;
    *len = (size_t)n;
    return at;
}

static int redis_value(const em_node *n, const em_value *cols, em_scratch *s, ember_record *out)
{
    size_t len = 0;
    if (n->redis_set) {
        out->value = rendered(&n->value, &n->in, cols, s, &len, 0);
        out->value_len = len;
        return out->value ? 0 : -1;
    }
    const char *names[REDIS_FIELDS], *values[REDIS_FIELDS];
    for (int k = 0; k < n->n_fields; k++)
        if (!(names[k] = rendered(&n->field_names[k], &n->in, cols, s, &len, 1)) ||
            !(values[k] = rendered(&n->fields[k], &n->in, cols, s, &len, 1)))
            return -1;
    char *at = s->buf + s->used;
    size_t vlen =
        ember_redis_fields(at, sizeof s->buf - s->used, (size_t)n->n_fields, names, values);
    if (vlen == 0) return -1;
    s->used += vlen;
    out->value = at;
    out->value_len = vlen;
    return 0;
}

int em_sink_record(const em_node *n, const em_value *cols, em_scratch *s, ember_record *out,
                   char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t klen = 0;
    if (n->has_key && !(out->key = rendered(&n->key, &n->in, cols, s, &klen, 0))) goto full;
    out->key_len = klen;
    if (n->kind == EM_N_REDIS_SINK) {
        if (redis_value(n, cols, s, out) != 0) goto full;
        return 0;
    }
    if (n->format == FORMAT_TEMPLATE) {
        size_t len = 0;
        if (!(out->value = rendered(&n->value, &n->in, cols, s, &len, 0))) goto full;
        out->value_len = len;
        return 0;
    }
    char *start = s->buf + s->used;
    if (line(n, cols, s) != 0) goto full;
    out->value = start;
    out->value_len = (size_t)(s->buf + s->used - start);
    return 0;
full:
    snprintf(err, errlen, "the record's output exceeds %d bytes", EM_SCRATCH_BYTES);
    return -1;
}

void em_sink_redis_options(const em_node *n, ember_redis_options *o)
{
    memset(o, 0, sizeof *o);
    o->address = n->target;
    o->command = n->redis_set ? EMBER_REDIS_SET : EMBER_REDIS_HSET;
    o->ttl_ms = n->ttl_ms;
}

const char *em_sink_target(const em_node *n) { return n->target; }
