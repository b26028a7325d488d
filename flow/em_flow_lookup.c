/* em_flow_lookup.c -- the lookup node: a join with a static dataset. A CSV file (on storage
 * every executor reads: it is loaded whenever the flow is) is read once per load into a hash
 * table keyed by one of its columns; each record finds the row whose key equals one of its
 * columns (compared as text) and gains the row's other columns. A record without a row is
 * dropped or fails (its error edge). A table in a topic (one CSV line per record) is not
 * loaded here: the flow cogroups the records with the topic's rows (ember_flow.c), and these
 * functions parse its lines and key both sides.
 */
#include "em_flow_lookup.h"

#include <ember/ember.h>
#include <search.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_flow_int.h"

#define LOOKUP_FILE_MAX (64u << 20) /* bytes of a lookup file */
#define LOOKUP_ROWS_MAX 1000000     /* its rows */
#define LOOKUP_KEY_MAX  1024        /* bytes of a key */

struct flow_lookup {
    struct hsearch_data table; /* key -> row index */
    char *text;                /* the file, its lines cut in place (owned) */
    em_value *rows;            /* n_rows x n_cols values (strings point into text) */
    int n_rows, n_cols;        /* n_cols: the file's columns but the key */
    int key;                   /* the key's index among the file's columns */
    int on;                    /* the record's column matched */
    int drop_missing;
    char *path;    /* the file (owned), or NULL */
    char *topic;   /* the topic (owned), or NULL */
    em_schema row; /* the columns a row adds (a topic's rows travel as em_row bytes) */
};

/* parse_line splits one line (ll bytes, cut in place) into the row's values and its key;
 * 1, 0 for an empty line, -1 with a message (`where` names the line) */
static int parse_line(const em_node *n, const struct flow_lookup *l, char *line, size_t ll,
                      em_value *row, const char **key, size_t *key_len, const char *where,
                      char *err, size_t errlen)
{
    if (ll && line[ll - 1] == '\n') line[--ll] = '\0';
    if (ll && line[ll - 1] == '\r') line[--ll] = '\0';
    if (ll == 0) return 0;
    ember_field f[EM_SCHEMA_MAX + 1];
    int got = ember_csv_split(line, ll, n->delim, f, EM_SCHEMA_MAX + 1, NULL, 0);
    if (got < 0) {
        snprintf(err, errlen, "%s: %s", where,
                 got == EMBER_ERR_MALFORMED ? "a quote that never closes, or text after one"
                                            : "too many fields, or a quoted field with \"\" "
                                              "(not read here)");
        return -1;
    }
    if (got != n->n_new) {
        snprintf(err, errlen, "%s: %d fields, not %d", where, got, n->n_new);
        return -1;
    }
    char why[256];
    for (int c = 0, out = 0; c < got; c++) {
        ((char *)f[c].p)[f[c].len] = '\0'; /* fields end at a delimiter or the line's end */
        if (c == l->key) continue;
        if (em_value_parse(n->new_types[c], n->formats[c], f[c].p, f[c].len, &row[out++], why,
                           sizeof why) != 0) {
            snprintf(err, errlen, "%s: %s", where, why);
            return -1;
        }
    }
    if (f[l->key].len > LOOKUP_KEY_MAX) {
        snprintf(err, errlen, "%s: a key over %d bytes", where, LOOKUP_KEY_MAX);
        return -1;
    }
    *key = f[l->key].p;
    *key_len = f[l->key].len;
    return 1;
}

/* load_rows splits the file into rows of n->new_types' columns, the key at index l->key */
static int load_rows(em_node *n, struct flow_lookup *l, int skip_header, char *err, size_t errlen)
{
    size_t len;
    if (!(l->text = em_flow_read_file(l->path, LOOKUP_FILE_MAX, &len, err, errlen))) return -1;
    if (strlen(l->text) != len) {
        snprintf(err, errlen, "file %s: a NUL byte at %zu (a text file is expected)", l->path,
                 strlen(l->text));
        return -1;
    }
    int lines = 0;
    for (size_t k = 0; k < len; k++) lines += l->text[k] == '\n';
    if (lines + 1 > LOOKUP_ROWS_MAX ||
        !(l->rows = calloc((size_t)(lines + 1) * (size_t)l->n_cols, sizeof *l->rows)) ||
        !hcreate_r((size_t)(lines + 1) * 2 + 16, &l->table)) {
        snprintf(err, errlen, "file %s: more than %d rows, or out of memory", l->path,
                 LOOKUP_ROWS_MAX);
        return -1;
    }
    char *line = l->text, *end;
    for (int no = 1; *line; line = end, no++) {
        end = strchr(line, '\n');
        end = end ? end + 1 : line + strlen(line);
        size_t ll = (size_t)(end - line);
        if (no == 1 && skip_header) continue;
        em_value *row = &l->rows[(size_t)l->n_rows * (size_t)l->n_cols];
        char where[4200];
        const char *k;
        size_t kl;
        snprintf(where, sizeof where, "file %s, line %d", l->path, no);
        int rc = parse_line(n, l, line, ll, row, &k, &kl, where, err, errlen);
        if (rc < 0) return -1;
        if (rc == 0) continue;
        ENTRY e = {.key = (char *)k, .data = (void *)(intptr_t)l->n_rows}, *found;
        if (hsearch_r(e, FIND, &found, &l->table)) {
            snprintf(err, errlen, "file %s, line %d: the key \"%s\" again", l->path, no, k);
            return -1;
        }
        if (!hsearch_r(e, ENTER, &found, &l->table)) {
            snprintf(err, errlen, "file %s: out of memory", l->path);
            return -1;
        }
        l->n_rows++;
    }
    return 0;
}

int em_lookup_compile(em_node *n, json_t *params, em_schema *out, char *err, size_t errlen)
{
    static const char *const keys[] = {"file", "topic",   "columns",     "delimiter",  "key",
                                       "on",   "missing", "skip_header", "partitions", NULL};
    int64_t partitions;
    const char *file, *topic, *key, *on, *missing, *delim;
    json_t *skip = json_object_get(params, "skip_header");
    if (param_check(params, keys, err, errlen) != 0 ||
        param_str(params, "file", 0, NULL, &file, err, errlen) != 0 ||
        param_str(params, "topic", 0, NULL, &topic, err, errlen) != 0 ||
        param_str(params, "key", 1, NULL, &key, err, errlen) != 0 ||
        param_str(params, "on", 1, NULL, &on, err, errlen) != 0 ||
        param_str(params, "missing", 0, "fail", &missing, err, errlen) != 0 ||
        param_str(params, "delimiter", 0, ",", &delim, err, errlen) != 0 ||
        param_int(params, "partitions", 0, 0, 100000, &partitions, err, errlen) != 0)
        return -1;
    n->partitions = (int)partitions;
    if ((file != NULL) == (topic != NULL) || (topic && skip) || (file && partitions)) {
        snprintf(err, errlen,
                 "give 'file' (a CSV file) or 'topic' (a CSV line per record, no header), not %s",
                 file && topic ? "both"
                 : topic       ? "skip_header with a topic"
                 : file        ? "partitions with a file (they are a topic's cogroup)"
                               : "neither");
        return -1;
    }
    if (file && file[0] != '/') {
        snprintf(err, errlen, "file: \"%s\" is not an absolute path (every task reads it)", file);
        return -1;
    }
    if (strcmp(missing, "fail") != 0 && strcmp(missing, "drop") != 0) {
        snprintf(err, errlen, "missing: \"%s\" is neither \"fail\" nor \"drop\"", missing);
        return -1;
    }
    if (strlen(delim) != 1 || (skip && !json_is_boolean(skip))) {
        snprintf(err, errlen, "delimiter: one character; skip_header: true or false");
        return -1;
    }
    struct flow_lookup *l = n->lookup = calloc(1, sizeof *l);
    if (!l || (file && !(l->path = strdup(file))) || (topic && !(l->topic = strdup(topic))))
        return snprintf(err, errlen, "out of memory"), -1;
    n->delim = delim[0];
    l->drop_missing = missing[0] == 'd';
    if ((l->on = column_of(&n->in, on, "on", err, errlen)) < 0) return -1;
    em_schema file_cols = {0};
    if (em_node_new_columns(n, params, "columns", &file_cols, err, errlen) != 0) return -1;
    int key_col = em_schema_find(&file_cols, key, strlen(key));
    if (key_col < 0) {
        snprintf(err, errlen, "key: '%s' is not one of the file's columns", key);
        return -1;
    }
    for (int c = 0; c < file_cols.n; c++)
        if (c != key_col &&
            (em_schema_add(out, file_cols.names[c], file_cols.types[c], err, errlen) != 0 ||
             em_schema_add(&l->row, file_cols.names[c], file_cols.types[c], err, errlen) != 0))
            return -1;
    l->n_cols = file_cols.n - 1;
    l->key = key_col;
    return topic ? 0 : load_rows(n, l, json_is_true(skip), err, errlen);
}

void em_lookup_free(em_node *n)
{
    struct flow_lookup *l = n->lookup;
    if (!l) return;
    if (l->rows) hdestroy_r(&l->table);
    free(l->rows);
    free(l->text);
    free(l->path);
    free(l->topic);
    free(l);
    n->lookup = NULL;
}

int em_lookup_apply(const em_node *n, em_value *cols, char *err, size_t errlen)
{
    const struct flow_lookup *l = n->lookup;
    char key[LOOKUP_KEY_MAX + 1];
    int len = em_value_text(n->in.types[l->on], &cols[l->on], key, sizeof key - 1);
    ENTRY e = {.key = key}, *found = NULL;
    if (len >= 0 && !memchr(key, '\0', (size_t)len)) { /* a key holding a NUL has no row */
        key[len] = '\0';
        hsearch_r(e, FIND, &found, (struct hsearch_data *)&l->table);
    }
    if (!found) {
        if (l->drop_missing) return 0;
        snprintf(err, errlen, "no row for \"%.*s\" in %s", len > 64 ? 64 : (len < 0 ? 0 : len), key,
                 l->path);
        return -1;
    }
    memcpy(&cols[n->in.n], &l->rows[(size_t)(intptr_t)found->data * (size_t)l->n_cols],
           (size_t)l->n_cols * sizeof *cols);
    return 1;
}

/* ---- a table in a topic --------------------------------------------------------------- */

const char *em_lookup_topic(const em_node *n) { return n->lookup ? n->lookup->topic : NULL; }

const em_schema *em_lookup_row_schema(const em_node *n) { return &n->lookup->row; }

int em_lookup_drops_missing(const em_node *n) { return n->lookup->drop_missing; }

int em_lookup_table_row(const em_node *n, char *line, size_t len, int64_t no, em_value *row,
                        const char **key, size_t *key_len, char *err, size_t errlen)
{
    char where[320];
    snprintf(where, sizeof where, "topic %s, record %lld of a partition", n->lookup->topic,
             (long long)no);
    return parse_line(n, n->lookup, line, len, row, key, key_len, where, err, errlen);
}

int em_lookup_key_text(const em_node *n, const em_value *cols, char *buf, size_t cap)
{
    const struct flow_lookup *l = n->lookup;
    int len = em_value_text(n->in.types[l->on], &cols[l->on], buf, cap);
    return len > LOOKUP_KEY_MAX ? -1 : len;
}

const char *em_lookup_on_name(const em_node *n) { return n->in.names[n->lookup->on]; }

void em_lookup_describe(const em_node *n, char *buf, size_t cap)
{
    const struct flow_lookup *l = n->lookup;
    snprintf(buf, cap, "%s %s on %s, %s when missing", l->topic ? "topic" : "file",
             l->topic ? l->topic : l->path, n->in.names[l->on], l->drop_missing ? "drop" : "fail");
}
