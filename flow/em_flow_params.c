/* em_flow_params.c -- a node's JSON parameters read with messages naming them, templates
 * ("item:{item_id}") and values as text, both ways. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "em_flow_int.h"

int param_check(json_t *params, const char *const *allowed, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v)
    {
        int known = strcmp(key, "id") == 0 || strcmp(key, "type") == 0;
        for (const char *const *a = allowed; *a && !known; a++) known = strcmp(key, *a) == 0;
        if (!known) {
            char list[512] = "";
            size_t used = 0;
            for (const char *const *a = allowed; *a && used < sizeof list; a++)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s",
                                         a == allowed ? "" : ", ", *a);
            snprintf(err, errlen, "unknown parameter '%s' (its parameters: %s)", key,
                     *allowed ? list : "none");
            return -1;
        }
    }
    return 0;
}

int param_str(json_t *params, const char *name, int required, const char *dflt, const char **out,
              char *err, size_t errlen)
{
    json_t *v = json_object_get(params, name);
    if (!v) {
        if (required) {
            snprintf(err, errlen, "the parameter '%s' is missing", name);
            return -1;
        }
        *out = dflt;
        return 0;
    }
    if (!json_is_string(v)) {
        snprintf(err, errlen, "the parameter '%s' must be a string", name);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

int param_int(json_t *params, const char *name, int64_t dflt, int64_t min, int64_t max,
              int64_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(params, name);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(err, errlen, "the parameter '%s' must be an integer from %" PRId64 " to %" PRId64,
                 name, min, max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

int column_of(const em_schema *in, const char *name, const char *param, char *err, size_t errlen)
{
    int c = em_schema_find(in, name, strlen(name));
    if (c < 0) {
        char cols[1024];
        em_schema_list(in, cols, sizeof cols);
        snprintf(err, errlen, "%s%sno column '%s' in its input (the columns: %s)",
                 param ? param : "", param ? ": " : "", name, cols);
    }
    return c;
}

int param_columns(json_t *params, const char *name, const em_schema *in, int *cols, int *n,
                  char *err, size_t errlen)
{
    json_t *a = json_object_get(params, name), *v;
    size_t k;
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > EM_SCHEMA_MAX) {
        snprintf(err, errlen, "the parameter '%s' must be an array of 1 to %d column names", name,
                 EM_SCHEMA_MAX);
        return -1;
    }
    json_array_foreach(a, k, v)
    {
        if (!json_is_string(v)) {
            snprintf(err, errlen, "the parameter '%s' must hold column names (strings)", name);
            return -1;
        }
        if ((cols[k] = column_of(in, json_string_value(v), name, err, errlen)) < 0) return -1;
    }
    *n = (int)json_array_size(a);
    return 0;
}

char *em_flow_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "file %s: cannot open it: %s", path, strerror(errno));
        return NULL;
    }
    char *text = malloc(max + 1);
    *len = text ? fread(text, 1, max + 1, fp) : 0; /* one byte more: to see it is too large */
    fclose(fp);
    if (!text)
        snprintf(err, errlen, "out of memory");
    else if (*len > max)
        snprintf(err, errlen, "file %s: over %zu bytes", path, max);
    else {
        text[*len] = '\0';
        return text;
    }
    free(text);
    return NULL;
}

/* ---- templates -------------------------------------------------------------------------- */

/* parse_decimals reads a hole's format ":.Nf" into *decimals */
static int parse_decimals(const char *spec, int *decimals)
{
    int d = 0, digits = 0;
    if (spec[0] != ':' || spec[1] != '.') return -1;
    for (spec += 2; *spec >= '0' && *spec <= '9' && digits < 2; spec++, digits++)
        d = d * 10 + (*spec - '0');
    if (digits == 0 || d > 17 || strcmp(spec, "f") != 0) return -1;
    *decimals = d;
    return 0;
}

int template_compile(em_template *t, const char *text, const em_schema *in, const char *param,
                     char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    size_t len = strlen(text);
    if (!(t->text = malloc(len + 1)) || !(t->source = strdup(text))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* literal text is kept with its doubled braces undone, in t->text */
    size_t w = 0;
    for (size_t r = 0; r < len;) {
        if (t->n == TEMPLATE_PARTS) {
            snprintf(err, errlen, "%s: a template of more than %d parts", param, TEMPLATE_PARTS);
            return -1;
        }
        if (text[r] == '{' && text[r + 1] != '{') {
            const char *close = strchr(text + r, '}');
            if (!close) {
                snprintf(err, errlen, "%s: a '{' at %zu never closes (write {{ for a brace)", param,
                         r + 1);
                return -1;
            }
            char name[EM_NAME_MAX];
            size_t n = (size_t)(close - text - r - 1);
            if (n == 0 || n >= sizeof name) {
                snprintf(err, errlen, "%s: an empty or too long {column} at %zu", param, r + 1);
                return -1;
            }
            memcpy(name, text + r + 1, n);
            name[n] = '\0';
            int decimals = -1;
            char *spec = strchr(name, ':');
            if (spec && parse_decimals(spec, &decimals) != 0) {
                snprintf(err, errlen, "%s: {%s} at %zu: a number's format is :.Nf (N 0 to 17)",
                         param, name, r + 1);
                return -1;
            }
            if (spec) *spec = '\0';
            int col = column_of(in, name, param, err, errlen);
            if (col < 0) return -1;
            if (decimals >= 0 && !em_type_numeric(in->types[col])) {
                snprintf(err, errlen, "%s: {%s:.%df}: '%s' is a %s, not a number", param, name,
                         decimals, name, em_type_name(in->types[col]));
                return -1;
            }
            t->parts[t->n].col = col;
            t->parts[t->n].decimals = decimals;
            t->n++;
            r += n + 2;
            continue;
        }
        t->parts[t->n].col = -1;
        t->parts[t->n].off = (uint32_t)w;
        while (r < len && !(text[r] == '{' && text[r + 1] != '{')) {
            if ((text[r] == '{' || text[r] == '}') && text[r + 1] == text[r])
                r++;
            else if (text[r] == '}') {
                snprintf(err, errlen, "%s: a lone '}' at %zu (write }} for a brace)", param, r + 1);
                return -1;
            }
            t->text[w++] = text[r++];
        }
        t->parts[t->n].len = (uint32_t)(w - t->parts[t->n].off);
        t->n++;
    }
    t->text[w] = '\0';
    return 0;
}

int template_render(const em_template *t, const em_schema *in, const em_value *cols, char *buf,
                    size_t cap)
{
    size_t used = 0;
    for (int k = 0; k < t->n; k++) {
        if (t->parts[k].col < 0) {
            if (t->parts[k].len > cap - used) return -1;
            memcpy(buf + used, t->text + t->parts[k].off, t->parts[k].len);
            used += t->parts[k].len;
        } else {
            int c = t->parts[k].col, n;
            if (t->parts[k].decimals >= 0) {
                double x = in->types[c] == EM_T_DOUBLE ? cols[c].f : (double)cols[c].i;
                n = snprintf(buf + used, cap - used, "%.*f", t->parts[k].decimals, x);
                if (n < 0 || (size_t)n >= cap - used) return -1;
            } else if ((n = em_value_text(in->types[c], &cols[c], buf + used, cap - used)) < 0)
                return -1;
            used += (size_t)n;
        }
    }
    return (int)used;
}

void template_free(em_template *t)
{
    free(t->text);
    free(t->source);
    t->text = t->source = NULL;
}

/* ---- values as text --------------------------------------------------------------------- */

static int put(char *buf, size_t cap, int n) { return n < 0 || (size_t)n >= cap ? -1 : n; }

int em_value_text(em_type t, const em_value *v, char *buf, size_t cap)
{
    switch (t) {
    case EM_T_INT: return put(buf, cap, snprintf(buf, cap, "%" PRId64, v->i));
    case EM_T_BOOL: return put(buf, cap, snprintf(buf, cap, "%s", v->i ? "true" : "false"));
    case EM_T_DOUBLE: {
        /* the shortest of %.15g .. %.17g that reads back as the same double */
        int n = -1;
        for (int prec = 15; prec <= 17; prec++) {
            n = put(buf, cap, snprintf(buf, cap, "%.*g", prec, v->f));
            if (n < 0 || !isfinite(v->f) || strtod(buf, NULL) == v->f) break;
        }
        return n;
    }
    case EM_T_TIMESTAMP: {
        int64_t ms = v->i % 1000, s = v->i / 1000;
        if (ms < 0) ms += 1000, s--;
        time_t secs = (time_t)s;
        struct tm tm;
        if (!gmtime_r(&secs, &tm)) return put(buf, cap, snprintf(buf, cap, "%" PRId64, v->i));
        int n = (int)strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm);
        if (n == 0) return -1;
        if (ms) return put(buf, cap, n + snprintf(buf + n, cap - (size_t)n, ".%03d", (int)ms));
        return n;
    }
    case EM_T_STRING:
    default:
        if (v->len > cap) return -1;
        if (v->len) memcpy(buf, v->s, v->len);
        return (int)v->len;
    }
}

int em_value_parse(em_type t, const char *format, const char *text, size_t len, em_value *out,
                   char *err, size_t errlen)
{
    if (t == EM_T_STRING) {
        out->s = text;
        out->len = (uint32_t)len;
        return 0;
    }
    char tmp[128], *end;
    if (len == 0 || len >= sizeof tmp || memchr(text, '\0', len)) {
        snprintf(err, errlen, "'%.*s' is not a %s", (int)(len > 40 ? 40 : len), text,
                 em_type_name(t));
        return -1;
    }
    memcpy(tmp, text, len);
    tmp[len] = '\0';
    errno = 0;
    if (t == EM_T_TIMESTAMP && format) {
        struct tm tm = {0};
        end = strptime(tmp, format, &tm);
        if (!end || *end) goto bad;
        out->i = (int64_t)timegm(&tm) * 1000;
        return 0;
    }
    if (t == EM_T_INT || t == EM_T_TIMESTAMP) {
        out->i = strtoll(tmp, &end, 10);
        if (*end || errno == ERANGE) goto bad;
        return 0;
    }
    if (t == EM_T_DOUBLE) {
        out->f = strtod(tmp, &end);
        if (*end || errno == ERANGE || !isfinite(out->f)) goto bad;
        return 0;
    }
    if (strcmp(tmp, "true") == 0 || strcmp(tmp, "1") == 0)
        out->i = 1;
    else if (strcmp(tmp, "false") == 0 || strcmp(tmp, "0") == 0)
        out->i = 0;
    else
        goto bad;
    return 0;
bad:
    snprintf(err, errlen, "'%s' is not a %s%s%s", tmp, em_type_name(t),
             format ? " in the format " : "", format ? format : "");
    return -1;
}
