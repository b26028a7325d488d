/* em_stream_log.c -- a query's checkpoint directory: metadata, offsets and commits logs (see
 * em_stream_log.h). */
#include "em_stream_log.h"

#include <dirent.h>
#include <ember/ember.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_fs.h"
#include "em_graph.h"
#include "em_hash.h"

uint64_t em_query_fingerprint(const Ember__JobGraph *g, int32_t stream_node)
{
    Ember__Node **nodes = malloc(g->n_nodes * sizeof *nodes);
    Ember__Node *copies = malloc(g->n_nodes * sizeof *copies);
    if (!nodes || !copies) {
        free(nodes);
        free(copies);
        return 0;
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        copies[i] = *g->nodes[i];
        nodes[i] = &copies[i];
        if (copies[i].kind == EMBER__NODE_KIND__NODE_KAFKA) { /* a static topic may grow */
            copies[i].bootstrap = "";
            copies[i].n_ranges = 0;
            copies[i].ranges = NULL;
        }
    }
    Ember__Node *stream = &copies[stream_node];
    stream->bootstrap = "";
    stream->starting = EMBER__STARTING_OFFSETS__STARTING_LATEST;
    stream->max_per_partition = 0;
    stream->max_rate_per_partition = 0;
    stream->backpressure = 0;
    stream->n_start_offsets = 0; /* where a new query starts: not what its batches compute */
    stream->start_offsets = NULL;
    Ember__Action action = *g->action;
    action.bootstrap = "";
    action.redis_address = ""; /* where the server is, and its password, may change */
    action.redis_password = "";
    Ember__JobGraph copy = *g;
    copy.nodes = nodes;
    copy.action = &action;
    copy.library_sha256.len = 0;
    copy.library_name = "";
    copy.description = ""; /* how a query describes itself is not what it computes */
    size_t len = ember__job_graph__get_packed_size(&copy);
    uint8_t *buf = malloc(len ? len : 1);
    uint64_t fp = 0;
    if (buf) fp = em_hash64(buf, ember__job_graph__pack(&copy, buf));
    free(buf);
    free(nodes);
    free(copies);
    return fp;
}

/* entry_path: DIR/LOG/N */
static void entry_path(char *buf, size_t len, const char *dir, const char *log, int64_t batch)
{
    snprintf(buf, len, "%s/%s/%" PRId64, dir, log, batch);
}

/* last_entry: the largest batch number named in DIR/LOG (-1: none) */
static int64_t last_entry(const char *dir, const char *log)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, log);
    DIR *d = opendir(path);
    int64_t last = -1;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char *end;
        errno = 0;
        long long n = strtoll(e->d_name, &end, 10);
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && !*end && !errno && n > last) last = n;
    }
    if (d) closedir(d);
    return last;
}

static int write_json(const char *path, json_t *doc, char *err, size_t errlen)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text) {
        snprintf(err, errlen, "out of memory writing %s", path);
        return EMBER_ERR_NOMEM;
    }
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        snprintf(err, errlen, "out of memory writing %s", path);
        return EMBER_ERR_NOMEM;
    }
    memcpy(line + n, "\n", 2);
    int rc = em_write_file_atomic(path, line, err, errlen);
    free(line);
    return rc;
}

static json_t *read_json(const char *path, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc) snprintf(err, errlen, "checkpoint file %s is unreadable: %s", path, jerr.text);
    return doc;
}

static int check_metadata(const char *dir, const char *name, uint64_t fingerprint, char *err,
                          size_t errlen)
{
    char path[4096], fp_text[17];
    snprintf(path, sizeof path, "%s/metadata", dir);
    snprintf(fp_text, sizeof fp_text, "%016" PRIx64, fingerprint);
    FILE *probe = fopen(path, "r");
    if (!probe) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            return EMBER_ERR_IO;
        }
        return write_json(
            path, json_pack("{s:s, s:s, s:i}", "query", name, "graph", fp_text, "version", 1), err,
            errlen);
    }
    fclose(probe);
    json_t *doc = read_json(path, err, errlen);
    if (!doc) return EMBER_ERR_MALFORMED;
    const char *was_name = json_string_value(json_object_get(doc, "query"));
    const char *was_fp = json_string_value(json_object_get(doc, "graph"));
    int rc = EMBER_OK;
    if (!was_name || !was_fp) {
        snprintf(err, errlen, "checkpoint %s: metadata without a query name and graph", dir);
        rc = EMBER_ERR_MALFORMED;
    } else if (strcmp(was_name, name) != 0) {
        snprintf(err, errlen,
                 "checkpoint %s belongs to query '%s', not '%s': give each query its own "
                 "checkpoint directory",
                 dir, was_name, name);
        rc = EMBER_ERR_STATE;
    } else if (strcmp(was_fp, fp_text) != 0) {
        snprintf(err, errlen,
                 "checkpoint %s was written by another version of query '%s' (its operations, "
                 "topic or sink changed: graph %s, now %s); its offsets do not apply to this "
                 "one: start it on a new checkpoint directory",
                 dir, name, was_fp, fp_text);
        rc = EMBER_ERR_STATE;
    }
    json_decref(doc);
    return rc;
}

/* event_time: an event time logged under key (absent: EM_NO_WATERMARK) */
static int64_t event_time(const json_t *doc, const char *key)
{
    const json_t *v = json_object_get(doc, key);
    return json_is_integer(v) ? json_integer_value(v) : EM_NO_WATERMARK;
}

/* set_event_time logs an event time under key, unless there is none */
static void set_event_time(json_t *doc, const char *key, int64_t t)
{
    if (doc && t != EM_NO_WATERMARK) json_object_set_new(doc, key, json_integer(t));
}

/* read_marks reads a batch's Kafka sink marks ([partition, from] pairs; none when absent) */
static int read_marks(const json_t *marks, const char *path, em_qlog_state *out, char *err,
                      size_t errlen)
{
    size_t n = json_array_size(marks);
    if (!marks) return EMBER_OK;
    if (!json_is_array(marks) || n > EM_GRAPH_MAX_PARTITIONS ||
        !(out->sink_marks = calloc(n + 1, sizeof *out->sink_marks))) {
        snprintf(err, errlen, "checkpoint file %s: unreadable sink marks", path);
        return EMBER_ERR_MALFORMED;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(marks, i);
        json_int_t p = json_integer_value(json_array_get(m, 0));
        json_int_t from = json_integer_value(json_array_get(m, 1));
        if (json_array_size(m) != 2 || p < 0 || p > INT32_MAX || from < 0) {
            snprintf(err, errlen, "checkpoint file %s: sink mark %zu is not [partition, from]",
                     path, i);
            return EMBER_ERR_MALFORMED;
        }
        out->sink_marks[i] = (em_stream_range){(int32_t)p, from, from};
    }
    out->n_sink_marks = n;
    return EMBER_OK;
}

/* read_ranges reads the ranges and event times of DIR/offsets/BATCH */
static int read_ranges(const char *dir, int64_t batch, em_qlog_state *out, char *err, size_t errlen)
{
    char path[4096];
    entry_path(path, sizeof path, dir, "offsets", batch);
    json_t *doc = read_json(path, err, errlen);
    if (!doc) return EMBER_ERR_MALFORMED;
    json_t *ranges = json_object_get(doc, "ranges");
    size_t n = json_array_size(ranges);
    int rc = EMBER_OK;
    if (!json_is_array(ranges) || n == 0 || n > EM_GRAPH_MAX_PARTITIONS ||
        json_integer_value(json_object_get(doc, "batch")) != batch) {
        snprintf(err, errlen, "checkpoint file %s: not the ranges of batch %" PRId64, path, batch);
        rc = EMBER_ERR_MALFORMED;
    } else if (!(out->ranges = calloc(n, sizeof *out->ranges))) {
        rc = EMBER_ERR_NOMEM;
    }
    for (size_t i = 0; rc == EMBER_OK && i < n; i++) {
        json_t *r = json_array_get(ranges, i);
        json_int_t p = json_integer_value(json_array_get(r, 0));
        json_int_t from = json_integer_value(json_array_get(r, 1));
        json_int_t until = json_integer_value(json_array_get(r, 2));
        if (json_array_size(r) != 3 || p < 0 || p > INT32_MAX || from < 0 || until < from) {
            snprintf(err, errlen, "checkpoint file %s: range %zu is not [partition, from, until]",
                     path, i);
            rc = EMBER_ERR_MALFORMED;
        }
        out->ranges[i] = (em_stream_range){(int32_t)p, from, until};
    }
    if (rc == EMBER_OK) out->n_ranges = n;
    if (rc == EMBER_OK) rc = read_marks(json_object_get(doc, "sink_marks"), path, out, err, errlen);
    out->times.applied = event_time(doc, "event_time_applied");
    out->times.previous = event_time(doc, "event_time_previous");
    out->times.batch_time_ms = json_integer_value(json_object_get(doc, "batch_time_ms"));
    json_decref(doc);
    return rc;
}

/* read_committed_max reads the largest event time logged with DIR/commits/BATCH */
static int read_committed_max(const char *dir, int64_t batch, int64_t *out, char *err,
                              size_t errlen)
{
    char path[4096];
    entry_path(path, sizeof path, dir, "commits", batch);
    json_t *doc = read_json(path, err, errlen);
    if (!doc) return EMBER_ERR_MALFORMED;
    *out = event_time(doc, "event_time_max");
    json_decref(doc);
    return EMBER_OK;
}

int em_qlog_open(const char *dir, const char *name, uint64_t fingerprint, em_qlog_state *out,
                 char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->last_planned = out->last_committed = -1;
    out->times = (em_event_times){EM_NO_WATERMARK, EM_NO_WATERMARK, 0};
    out->committed_max = EM_NO_WATERMARK;
    char path[4096];
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, i ? "commits" : "offsets");
        if (em_mkdirs(path) != 0) {
            snprintf(err, errlen, "cannot make checkpoint directory %s: %s", path, strerror(errno));
            return EMBER_ERR_IO;
        }
    }
    int rc = check_metadata(dir, name, fingerprint, err, errlen);
    if (rc != EMBER_OK) return rc;
    out->last_planned = last_entry(dir, "offsets");
    out->last_committed = last_entry(dir, "commits");
    if (out->last_committed > out->last_planned) {
        snprintf(err, errlen,
                 "checkpoint %s: batch %" PRId64 " is committed but its offsets are not logged",
                 dir, out->last_committed);
        return EMBER_ERR_MALFORMED;
    }
    if (out->last_planned >= 0) rc = read_ranges(dir, out->last_planned, out, err, errlen);
    if (rc == EMBER_OK && out->last_committed >= 0)
        rc = read_committed_max(dir, out->last_committed, &out->committed_max, err, errlen);
    return rc;
}

void em_qlog_state_free(em_qlog_state *st)
{
    free(st->ranges);
    free(st->sink_marks);
    st->ranges = NULL;
    st->sink_marks = NULL;
    st->n_ranges = st->n_sink_marks = 0;
}

/* forget removes the entry of the batch EM_QLOG_KEEP before this one, if any */
static void forget(const char *dir, const char *log, int64_t batch)
{
    if (batch < EM_QLOG_KEEP) return;
    char path[4096];
    entry_path(path, sizeof path, dir, log, batch - EM_QLOG_KEEP);
    remove(path);
}

int em_qlog_write_offsets(const char *dir, int64_t batch, const char *topic,
                          const em_stream_range *ranges, size_t n, const em_event_times *times,
                          const em_stream_range *marks, size_t n_marks, char *err, size_t errlen)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        json_array_append_new(list,
                              json_pack("[i, I, I]", (int)ranges[i].partition,
                                        (json_int_t)ranges[i].from, (json_int_t)ranges[i].until));
    char path[4096];
    entry_path(path, sizeof path, dir, "offsets", batch);
    json_t *doc =
        json_pack("{s:I, s:s, s:o}", "batch", (json_int_t)batch, "topic", topic, "ranges", list);
    set_event_time(doc, "event_time_applied", times->applied);
    set_event_time(doc, "event_time_previous", times->previous);
    if (doc) json_object_set_new(doc, "batch_time_ms", json_integer(times->batch_time_ms));
    json_t *sink = n_marks ? json_array() : NULL;
    for (size_t i = 0; sink && i < n_marks; i++)
        json_array_append_new(
            sink, json_pack("[i, I]", (int)marks[i].partition, (json_int_t)marks[i].from));
    if (doc && sink) json_object_set_new(doc, "sink_marks", sink);
    int rc = write_json(path, doc, err, errlen);
    if (rc == EMBER_OK) forget(dir, "offsets", batch);
    return rc;
}

int em_qlog_write_commit(const char *dir, int64_t batch, int64_t records_in, int64_t records_out,
                         int64_t event_time_max, char *err, size_t errlen)
{
    char path[4096];
    entry_path(path, sizeof path, dir, "commits", batch);
    json_t *doc = json_pack("{s:I, s:I, s:I}", "batch", (json_int_t)batch, "records_in",
                            (json_int_t)records_in, "records_out", (json_int_t)records_out);
    set_event_time(doc, "event_time_max", event_time_max);
    int rc = write_json(path, doc, err, errlen);
    if (rc == EMBER_OK) forget(dir, "commits", batch);
    return rc;
}
