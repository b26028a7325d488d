/* em_job_formats.c -- the record formats pipelines carry: delimited lines (CSV) and JSON
 * documents (ember.h, "Record formats").
 *
 * CSV fields are views into the line (no copy) unless a quoted field holds doubled quotes,
 * which are unescaped into the caller's scratch buffer. JSON is parsed by jansson (Debian's
 * libjansson: small, C, long maintained, already what ember's status endpoint writes with),
 * into a document the caller keeps and reuses record after record; strings read from it are
 * views into that document, valid until the next parse.
 */
#include <ember/ember.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- delimited lines ------------------------------------------------------------------------ */

/* quoted reads the quoted field starting at p (after its opening quote) up to its closing
 * quote; the field is a view when it holds no doubled quote, else unescaped into scratch.
 * *next: just past the closing quote; NULL when the quote never closes. */
static const char *quoted(const char *p, const char *end, ember_field *f, char *scratch,
                          size_t scratch_len, size_t *scratch_used, int *rc)
{
    const char *start = p;
    int doubled = 0;
    while (p < end) {
        if (*p == '"' && p + 1 < end && p[1] == '"') {
            doubled = 1;
            p += 2;
        } else if (*p == '"') {
            break;
        } else {
            p++;
        }
    }
    if (p >= end) {
        *rc = EMBER_ERR_MALFORMED; /* no closing quote */
        return NULL;
    }
    if (!doubled) {
        *f = (ember_field){start, (size_t)(p - start)};
        return p + 1;
    }
    char *out = scratch ? scratch + *scratch_used : NULL;
    size_t n = 0;
    for (const char *q = start; q < p; q++) {
        if (*q == '"') q++; /* the first of a doubled quote */
        if (!out || *scratch_used + n >= scratch_len) {
            *rc = EMBER_ERR_TOO_LARGE; /* no room to unescape it */
            return NULL;
        }
        out[n++] = *q;
    }
    *scratch_used += n;
    *f = (ember_field){out, n};
    return p + 1;
}

int ember_csv_split(const void *line, size_t len, char delim, ember_field *fields, size_t max,
                    char *scratch, size_t scratch_len)
{
    const char *p = line, *end = p + len;
    if (len && end[-1] == '\n') end--; /* a line as read, with its newline */
    if (end > p && end[-1] == '\r') end--;
    size_t n = 0, used = 0;
    for (;;) {
        if (n == max) return EMBER_ERR_TOO_LARGE;
        ember_field f;
        int rc = EMBER_OK;
        if (p < end && *p == '"') {
            p = quoted(p + 1, end, &f, scratch, scratch_len, &used, &rc);
            if (!p) return rc;
            if (p < end && *p != delim) return EMBER_ERR_MALFORMED; /* "ab"cd */
        } else {
            const char *d = memchr(p, delim, (size_t)(end - p));
            const char *stop = d ? d : end;
            f = (ember_field){p, (size_t)(stop - p)};
            p = stop;
        }
        fields[n++] = f;
        if (p >= end) return (int)n;
        p++; /* the delimiter: another field follows, maybe empty */
        if (p == end) {
            if (n == max) return EMBER_ERR_TOO_LARGE;
            fields[n++] = (ember_field){p, 0};
            return (int)n;
        }
    }
}

/* ---- JSON -------------------------------------------------------------------------------------
 */

struct ember_json {
    json_t *doc;
    char error[200];
};

ember_json *ember_json_new(void) { return calloc(1, sizeof(ember_json)); }

void ember_json_free(ember_json *j)
{
    if (!j) return;
    json_decref(j->doc);
    free(j);
}

int ember_json_parse(ember_json *j, const void *text, size_t len)
{
    if (!j) return EMBER_ERR_INVALID;
    json_decref(j->doc);
    json_error_t e;
    j->doc = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
    if (j->doc) {
        j->error[0] = '\0';
        return EMBER_OK;
    }
    snprintf(j->error, sizeof j->error, "%s at byte %d", e.text, e.position);
    return EMBER_ERR_MALFORMED;
}

const char *ember_json_error(const ember_json *j) { return j ? j->error : "no document"; }

/* lookup follows path ("a.b[2].c"; "" is the document itself) from the document's root */
static int lookup(ember_json *j, const char *path, json_t **out)
{
    if (!j || !j->doc || !path) return EMBER_ERR_INVALID;
    json_t *v = j->doc;
    const char *p = path;
    while (*p) {
        if (*p == '[') {
            char *close;
            errno = 0;
            unsigned long i = strtoul(p + 1, &close, 10);
            if (close == p + 1 || *close != ']' || errno) return EMBER_ERR_INVALID;
            if (!json_is_array(v) || !(v = json_array_get(v, i))) return EMBER_ERR_NOT_FOUND;
            p = close + 1;
        } else {
            if (*p == '.') p++;
            size_t n = strcspn(p, ".[");
            if (n == 0) return EMBER_ERR_INVALID; /* "a..b", a trailing '.' */
            if (!json_is_object(v) || !(v = json_object_getn(v, p, n))) return EMBER_ERR_NOT_FOUND;
            p += n;
        }
    }
    *out = v;
    return EMBER_OK;
}

/* find_as looks path up and checks its value is of one of the jansson types in `types` (a
 * mask of 1 << json_type) */
static int find_as(ember_json *j, const char *path, unsigned types, json_t **v)
{
    int rc = lookup(j, path, v);
    if (rc == EMBER_OK && !(types & (1u << json_typeof(*v)))) rc = EMBER_ERR_INVALID;
    return rc;
}

#define AS(t) (1u << (t))

int ember_json_str(ember_json *j, const char *path, const char **s, size_t *len)
{
    json_t *v;
    int rc = find_as(j, path, AS(JSON_STRING), &v);
    if (rc == EMBER_OK) {
        *s = json_string_value(v);
        *len = json_string_length(v);
    }
    return rc;
}

int ember_json_i64(ember_json *j, const char *path, int64_t *out)
{
    json_t *v;
    int rc = find_as(j, path, AS(JSON_INTEGER), &v);
    if (rc == EMBER_OK) *out = (int64_t)json_integer_value(v);
    return rc;
}

int ember_json_f64(ember_json *j, const char *path, double *out)
{
    json_t *v; /* an integer reads as a double too */
    int rc = find_as(j, path, AS(JSON_INTEGER) | AS(JSON_REAL), &v);
    if (rc == EMBER_OK) *out = json_number_value(v);
    return rc;
}

int ember_json_bool(ember_json *j, const char *path, int *out)
{
    json_t *v;
    int rc = find_as(j, path, AS(JSON_TRUE) | AS(JSON_FALSE), &v);
    if (rc == EMBER_OK) *out = json_is_true(v);
    return rc;
}
