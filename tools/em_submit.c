/* em_submit.c -- running a job library against a cluster in client mode (see em_submit.h).
 *
 * Loads job.so, uploads it to the driver (content-addressed, once), and calls its
 * ember_main. Each action the job calls sends its graph to the driver and waits for the
 * result (em_job_runner below). Kafka sources over whole topics are resolved here, at the
 * moment of the action, into one offset range per partition [low, high). A streaming query
 * the job starts is handed to the driver (StartQuery), which runs it; its handle asks the
 * driver for its status (GetQuery) or stops it (StopQuery). The session ends with Goodbye, so
 * the driver drops what it kept for this run at once, and stops its client-mode queries.
 */
#include "em_submit.h"

#include <dlfcn.h>
#include <ember/ember.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "em_elf.h"
#include "em_job_api.h"
#include "em_kafka.h"
#include "em_log.h"
#include "em_progress.h"
#include "em_rpc.h"
#include "em_secret.h"
#include "em_sha256.h"
#include "em_time.h"

typedef struct submitter {
    em_rpc rpc;
    em_rpc_chan ch;
    char identity[128];
    rd_kafka_t *kafka; /* metadata client, created on first Kafka source */
    char kafka_bootstrap[1024];
    int timeout_ms;
    em_progress *progress; /* NULL with --quiet */
    uint64_t next_token;   /* client tokens of this run's jobs */
    uint32_t task_timeout_ms;
    int rpc_open;
} submitter;

static int run_job(void *arg, const Ember__JobGraph *graph, const char *job_name,
                   const em_buf *data, em_job_outcome *out, char *err, size_t errlen)
{
    submitter *s = arg;
    Ember__SubmitJob sj = EMBER__SUBMIT_JOB__INIT;
    sj.graph = (Ember__JobGraph *)graph;
    sj.name = (char *)job_name;
    sj.submitter = s->identity;
    sj.client_token = ++s->next_token;
    sj.task_timeout_ms = s->task_timeout_ms;
    em_iov iov = {data->data, data->len};
    em_rpc_reply reply = {0};
    em_progress_begin(s->progress, sj.client_token);
    int rc = em_rpc_call(&s->rpc, &s->ch, EM_MSG_SUBMIT_JOB, &sj.base, &iov, 1, s->timeout_ms,
                         &reply, err, errlen);
    em_progress_end(s->progress);
    if (rc != EMBER_OK) return rc;
    Ember__JobResult *r = em_frame_unpack(&reply.frame, EM_MSG_JOB_RESULT);
    if (!r) {
        snprintf(err, errlen, "driver sent an unreadable job result");
        rc = EMBER_ERR_PROTOCOL;
    } else if (r->code != EMBER_OK) {
        snprintf(err, errlen, "%s", r->message);
        rc = r->code < 0 ? r->code : EMBER_ERR_JOB_FAILED;
    } else {
        out->job_id = r->job_id;
        out->records_in = r->records_in;
        out->records_out = r->records_out;
        out->tasks = r->tasks;
        out->stages = r->stages;
        out->duration_us = r->duration_us;
        rc = em_buf_append(&out->batches, reply.frame.data, reply.frame.data_len);
        if (rc == EMBER_OK &&
            em_accs_merge(&out->accs, r->accumulators, r->n_accumulators, 1) != EMBER_OK) {
            snprintf(err, errlen, "the driver sent unreadable accumulators");
            rc = EMBER_ERR_PROTOCOL;
        }
    }
    em_pb_free(r);
    em_rpc_reply_free(&reply);
    return rc;
}

static int unpersist(void *arg, const Ember__JobGraph *graph, const em_buf *data, char *err,
                     size_t errlen)
{
    submitter *s = arg;
    Ember__Unpersist u = EMBER__UNPERSIST__INIT;
    u.graph = (Ember__JobGraph *)graph;
    em_iov iov = {data->data, data->len};
    em_rpc_reply reply = {0};
    int rc = em_rpc_call(&s->rpc, &s->ch, EM_MSG_UNPERSIST, &u.base, &iov, 1, 30000, &reply, err,
                         errlen);
    em_rpc_reply_free(&reply);
    return rc;
}

/* ---- streaming queries ----------------------------------------------------------------- */

#define QUERY_CALL_MS 5000

/* query_status asks the driver for a query's status (stop: after asking it to stop), its
 * accumulator totals in out->accs (the caller frees them) */
static int query_status(void *arg, const char *name, int stop, em_query_info *out, char *err,
                        size_t errlen)
{
    submitter *s = arg;
    Ember__GetQuery get = EMBER__GET_QUERY__INIT;
    Ember__StopQuery halt = EMBER__STOP_QUERY__INIT;
    get.name = halt.name = (char *)name;
    em_rpc_reply reply = {0};
    /* answered at once by a live driver: a silence this long means it is gone */
    int rc =
        em_rpc_call(&s->rpc, &s->ch, stop ? EM_MSG_STOP_QUERY : EM_MSG_GET_QUERY,
                    stop ? &halt.base : &get.base, NULL, 0, QUERY_CALL_MS, &reply, err, errlen);
    if (rc != EMBER_OK) return rc;
    Ember__QueryStatus *st = em_frame_unpack(&reply.frame, EM_MSG_QUERY_STATUS);
    if (!st) {
        snprintf(err, errlen, "driver sent an unreadable query status");
        rc = EMBER_ERR_PROTOCOL;
    } else if (!st->found) {
        snprintf(err, errlen, "the driver has no query named '%s'", name);
        rc = EMBER_ERR_NOT_FOUND;
    } else {
        snprintf(out->state, sizeof out->state, "%s", st->state);
        snprintf(out->error, sizeof out->error, "%s", st->error);
        snprintf(out->warning, sizeof out->warning, "%s", st->warning);
        out->last_committed = st->last_committed;
        out->batches = (int64_t)st->batches;
        out->records_in = st->records_in;
        out->records_out = st->records_out;
        out->lag = st->lag;
        out->input_rate = st->input_rate;
        out->watermark_ms = st->has_watermark ? st->watermark_ms : -1;
        out->late_records = st->late_records;
        em_accs_free(&out->accs); /* (the same info asked again) */
        if (em_accs_merge(&out->accs, st->accumulators, st->n_accumulators, 1) != EMBER_OK)
            em_accs_free(&out->accs); /* (a set past its bound: no totals) */
    }
    em_pb_free(st);
    em_rpc_reply_free(&reply);
    return rc;
}

/* query: the same without the accumulators */
static int query(void *arg, const char *name, int stop, em_query_info *out, char *err,
                 size_t errlen)
{
    int rc = query_status(arg, name, stop, out, err, errlen);
    em_accs_free(&out->accs);
    return rc;
}

/* start_query hands the query to the driver and waits until it opened its checkpoint */
static int start_query(void *arg, const Ember__JobGraph *graph, const ember_query_options *opts,
                       const char *checkpoint, char *err, size_t errlen)
{
    submitter *s = arg;
    Ember__StartQuery q = EMBER__START_QUERY__INIT;
    q.graph = (Ember__JobGraph *)graph;
    q.name = (char *)opts->name;
    q.checkpoint = (char *)checkpoint;
    q.interval_ms = opts->interval_ms ? (uint32_t)opts->interval_ms : 1000;
    q.detach = opts->detach != 0;
    q.submitter = s->identity;
    em_rpc_reply reply = {0};
    int rc = em_rpc_call(&s->rpc, &s->ch, EM_MSG_START_QUERY, &q.base, NULL, 0, 30000, &reply, err,
                         errlen);
    em_rpc_reply_free(&reply);
    em_query_info info = {0};
    for (int64_t t0 = em_now_ms(); rc == EMBER_OK; em_sleep_ms(20)) {
        if ((rc = query(s, opts->name, 0, &info, err, errlen)) != EMBER_OK) break;
        if (strcmp(info.state, "failed") == 0) {
            snprintf(err, errlen, "%s", info.error);
            return EMBER_ERR_STATE;
        }
        if (strcmp(info.state, "starting") != 0) break;
        if (em_now_ms() - t0 > 30000) {
            snprintf(err, errlen, "the driver did not open the query's checkpoint within 30 s");
            return EMBER_ERR_TIMEOUT;
        }
    }
    return rc;
}

/* end_session tells the driver this submitter is done: what it cached and kept goes now,
 * not after the session grace that a lost connection gets. */
static void end_session(submitter *s)
{
    Ember__Goodbye g = EMBER__GOODBYE__INIT; /* executor_id 0: a submitter's session */
    em_rpc_reply reply = {0};
    char err[256];
    if (em_rpc_call(&s->rpc, &s->ch, EM_MSG_GOODBYE, &g.base, NULL, 0, 5000, &reply, err,
                    sizeof err) != EMBER_OK)
        em_warn("could not end the session at the driver: %s", err);
    em_rpc_reply_free(&reply);
}

static int resolve_kafka(void *arg, Ember__Node *node, char *err, size_t errlen)
{
    submitter *s = arg;
    if (s->kafka && strcmp(s->kafka_bootstrap, node->bootstrap) != 0) {
        rd_kafka_destroy(s->kafka);
        s->kafka = NULL;
    }
    if (!s->kafka) {
        int rc = em_kafka_consumer_new(node->bootstrap, &s->kafka, err, errlen);
        if (rc != EMBER_OK) return rc;
        snprintf(s->kafka_bootstrap, sizeof s->kafka_bootstrap, "%s", node->bootstrap);
    }
    int32_t *parts = NULL;
    int n = 0;
    int rc = em_kafka_partitions(s->kafka, node->topic, 10000, &parts, &n, err, errlen);
    if (rc != EMBER_OK) return rc;
    Ember__KafkaRange **ranges = calloc((size_t)n, sizeof *ranges);
    int64_t *low = calloc((size_t)n, sizeof *low), *high = calloc((size_t)n, sizeof *high);
    if (!ranges || !low || !high) rc = EMBER_ERR_NOMEM;
    if (rc == EMBER_OK)
        rc = em_kafka_watermarks_of(s->kafka, node->topic, parts, (size_t)n, 10000, low, high, err,
                                    errlen);
    for (int i = 0; rc == EMBER_OK && i < n; i++) {
        if (!(ranges[i] = malloc(sizeof **ranges))) rc = EMBER_ERR_NOMEM;
        if (rc != EMBER_OK) break;
        ember__kafka_range__init(ranges[i]);
        ranges[i]->partition = parts[i];
        ranges[i]->from = low[i];
        ranges[i]->until = high[i];
    }
    free(parts);
    free(low);
    free(high);
    if (!ranges || rc != EMBER_OK) {
        for (int i = 0; ranges && i < n; i++) free(ranges[i]);
        free(ranges);
        if (rc == EMBER_OK || rc == EMBER_ERR_NOMEM) snprintf(err, errlen, "out of memory");
        return rc == EMBER_OK ? EMBER_ERR_NOMEM : rc;
    }
    node->ranges = ranges;
    node->n_ranges = (size_t)n;
    return EMBER_OK;
}

static int read_file(const char *path, em_buf *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return EMBER_ERR_IO;
    }
    char chunk[65536];
    size_t n;
    int rc = EMBER_OK;
    while (rc == EMBER_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = em_buf_append(out, chunk, n);
    if (ferror(f)) rc = EMBER_ERR_IO;
    fclose(f);
    if (rc != EMBER_OK) snprintf(err, errlen, "cannot read %s", path);
    return rc;
}

/* upload_library sends the job library unless the driver already has it. */
static int upload_library(submitter *s, const em_buf *bytes, const uint8_t sha[32],
                          const char *name, char *err, size_t errlen)
{
    Ember__HasLibrary h = EMBER__HAS_LIBRARY__INIT;
    h.sha256.data = (uint8_t *)sha;
    h.sha256.len = 32;
    em_rpc_reply reply = {0};
    int rc = em_rpc_call(&s->rpc, &s->ch, EM_MSG_HAS_LIBRARY, &h.base, NULL, 0, 10000, &reply, err,
                         errlen);
    if (rc != EMBER_OK) return rc;
    Ember__HasLibraryReply *hr = em_frame_unpack(&reply.frame, EM_MSG_HAS_LIBRARY_REPLY);
    int present = hr && hr->present;
    em_pb_free(hr);
    em_rpc_reply_free(&reply);
    if (present) return EMBER_OK;
    Ember__PutLibrary p = EMBER__PUT_LIBRARY__INIT;
    p.sha256 = h.sha256;
    p.name = (char *)name;
    em_iov iov = {bytes->data, bytes->len};
    rc = em_rpc_call(&s->rpc, &s->ch, EM_MSG_PUT_LIBRARY, &p.base, &iov, 1, 60000, &reply, err,
                     errlen);
    em_rpc_reply_free(&reply);
    return rc;
}

/* submit_failed tells the driver about an action that failed here (its status endpoint lists
 * it); best effort: the job's own error is what counts */
static void submit_failed(void *arg, const char *job_name, const char *action, const char *error)
{
    submitter *s = arg;
    Ember__SubmitFailed f = EMBER__SUBMIT_FAILED__INIT;
    char name[128], cut_error[512];
    snprintf(name, sizeof name, "%s", job_name && job_name[0] ? job_name : "job");
    snprintf(cut_error, sizeof cut_error, "%s", error && error[0] ? error : "failed");
    for (char *c = cut_error; *c; c++) /* one printable line */
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = ' ';
    f.name = name;
    f.submitter = s->identity;
    f.action = (char *)action;
    f.error = cut_error;
    em_rpc_reply reply = {0};
    char err[256];
    if (em_rpc_call(&s->rpc, &s->ch, EM_MSG_SUBMIT_FAILED, &f.base, NULL, 0, 5000, &reply, err,
                    sizeof err) != EMBER_OK)
        em_debug("could not tell the driver about the failed job: %s", err);
    em_rpc_reply_free(&reply);
}

/* put_blob stores a broadcast value on the driver, as a library is stored (HasLibrary, then
 * PutLibrary if the driver does not have it yet) */
static int put_blob(void *arg, const uint8_t sha256[32], const void *data, size_t len, char *err,
                    size_t errlen)
{
    em_buf bytes = {(uint8_t *)data, len, len}; /* borrowed: not freed here */
    return upload_library(arg, &bytes, sha256, "broadcast value", err, errlen);
}

/* load_library reads, checks and loads the job library; entry gets its ember_main. */
static void *load_library(const char *lib_path, em_buf *bytes, uint8_t sha[32],
                          ember_main_fn *entry, char *err, size_t errlen)
{
    if (read_file(lib_path, bytes, err, errlen) != EMBER_OK) return NULL;
    em_sha256(bytes->data, bytes->len, sha);
    char why[512];
    if (em_elf_check(bytes->data, bytes->len, why, sizeof why) != EMBER_OK) {
        snprintf(err, errlen, "cannot load job library %s: %s", lib_path, why);
        return NULL;
    }
    char lib_arg[4096];
    snprintf(lib_arg, sizeof lib_arg, "%s%s", strchr(lib_path, '/') ? "" : "./", lib_path);
    void *lib = dlopen(lib_arg, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(err, errlen, "cannot load job library %s: %s", lib_path, dlerror());
        return NULL;
    }
    if (em_job_api_check(lib, lib_path, err, errlen) != EMBER_OK) {
        dlclose(lib);
        return NULL;
    }
    *entry = (ember_main_fn)dlsym(lib, EMBER_ENTRY_POINT);
    if (!*entry) {
        snprintf(err, errlen,
                 "%s has no entry point '%s': define and export "
                 "int ember_main(ember_ctx *ctx, int argc, char **argv)",
                 lib_path, EMBER_ENTRY_POINT);
        dlclose(lib);
        return NULL;
    }
    return lib;
}

/* open_session says Hello to the driver. */
static int open_session(submitter *s, const em_submit_opts *o, char *err, size_t errlen)
{
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    struct passwd *pw = getpwuid(getuid());
    snprintf(s->identity, sizeof s->identity, "%s@%s:%d", pw ? pw->pw_name : "?", host,
             (int)getpid());
    char path[1024];
    em_secret secret;
    int rc =
        em_secret_load(em_secret_path(o->secret_file, path, sizeof path), &secret, err, errlen);
    em_tls_files tls = {0};
    if (o->tls_ca) snprintf(tls.ca, sizeof tls.ca, "%s", o->tls_ca);
    em_tls_files_defaults(&tls);
    em_rpc_opts ro = {"submitter", 1u << 30, 5000, &secret, &tls, 0};
    if (rc == EMBER_OK) rc = em_rpc_open(&s->rpc, o->driver, &ro, err, errlen);
    memset(&secret, 0, sizeof secret);
    if (rc != EMBER_OK) return rc;
    s->rpc_open = 1;
    if ((rc = em_rpc_chan_open(&s->rpc, &s->ch)) != EMBER_OK)
        snprintf(err, errlen, "out of memory");
    return rc;
}

/* run_entry runs the job's ember_main and reports how it went; returns the exit status. */
static int run_entry(submitter *s, const em_submit_opts *o, void *lib, ember_main_fn entry,
                     const uint8_t sha[32], const char *lib_path, int job_argc, char **job_argv)
{
    char lib_arg[4096];
    snprintf(lib_arg, sizeof lib_arg, "%s%s", strchr(lib_path, '/') ? "" : "./", lib_path);
    const char *slash = strrchr(lib_path, '/');
    const char *lib_name = slash ? slash + 1 : lib_path;
    em_job_runner runner = {.run = run_job,
                            .resolve_kafka = resolve_kafka,
                            .unpersist = unpersist,
                            .start_query = start_query,
                            .query = query_status,
                            .submit_failed = submit_failed,
                            .put_blob = put_blob,
                            .arg = s,
                            .detach_queries = o->detach};
    ember_ctx *ctx =
        em_ctx_new(lib, lib_arg, sha, o->kafka && o->kafka[0] ? o->kafka : s->rpc.kafka, &runner);
    if (ctx && o->name && o->name[0]) ember_set_job_name(ctx, o->name);
    int64_t t0 = em_now_us();
    int job_rc = ctx ? entry(ctx, job_argc, job_argv) : 1;
    int64_t t1 = em_now_us();
    fflush(stdout); /* the job's own output first, then our summary */
    int status = 0, failed_action = ctx && em_ctx_error_code(ctx) != EMBER_OK;
    if (!ctx) {
        fprintf(stderr, "ember-submit: out of memory\n");
        status = 1;
    } else if (job_rc != 0) {
        if (failed_action)
            fprintf(stderr, "ember-submit: job failed: %s\n", ember_last_error(ctx));
        else
            fprintf(stderr, "ember-submit: job failed: ember_main returned %d\n", job_rc);
        status = job_rc > 0 && job_rc < 256 ? job_rc : 1; /* what exit() can carry */
    } else if (failed_action) { /* the job saw the failure and chose to succeed */
        fprintf(stderr, "ember-submit: an action failed and ember_main returned 0: %s\n",
                ember_last_error(ctx));
    }
    if (ctx && status == 0 && !o->quiet) {
        em_job_outcome sum;
        int actions, queries;
        char started[64] = "";
        em_ctx_totals(ctx, &sum, &actions, &queries);
        if (queries) /* their own figures are the job's to print (ember_query_status) */
            snprintf(started, sizeof started, ", %d quer%s", queries, queries == 1 ? "y" : "ies");
        fprintf(stderr,
                "ember-submit: %s succeeded: %d action%s%s, %u tasks, %lld records in, %lld "
                "records out, %.3f s\n",
                lib_name, actions, actions == 1 ? "" : "s", started, sum.tasks,
                (long long)sum.records_in, (long long)sum.records_out, (t1 - t0) / 1e6);
    }
    em_ctx_free(ctx);
    return status;
}

int em_submit_run(const em_submit_opts *o, const char *lib_path, int job_argc, char **job_argv)
{
    em_buf bytes = {0};
    uint8_t sha[32];
    char err[1024];
    ember_main_fn entry;
    void *lib = load_library(lib_path, &bytes, sha, &entry, err, sizeof err);
    if (!lib) {
        fprintf(stderr, "ember-submit: %s\n", err);
        em_buf_free(&bytes);
        return 1;
    }
    submitter s = {.timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : -1,
                   .task_timeout_ms = o->task_timeout_ms};
    const char *slash = strrchr(lib_path, '/');
    int status = 1;
    if (open_session(&s, o, err, sizeof err) != EMBER_OK ||
        upload_library(&s, &bytes, sha, slash ? slash + 1 : lib_path, err, sizeof err) !=
            EMBER_OK) {
        fprintf(stderr, "ember-submit: cannot submit to the driver: %s\n", err);
    } else {
        /* tokens only need to differ between this process's jobs; a random start keeps them
         * apart from other submitters' in the driver's logs */
        s.next_token = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) << 8;
        if (!o->quiet) s.progress = em_progress_start(&s.rpc, isatty(STDERR_FILENO));
        status = run_entry(&s, o, lib, entry, sha, lib_path, job_argc, job_argv);
        em_progress_stop(s.progress);
        end_session(&s);
    }
    em_buf_free(&bytes);
    if (s.kafka) rd_kafka_destroy(s.kafka);
    em_rpc_chan_close(&s.ch);
    if (s.rpc_open) em_rpc_close(&s.rpc);
    dlclose(lib);
    return status;
}

int em_submit_stop_query(const em_submit_opts *o, const char *name)
{
    submitter s = {.timeout_ms = -1};
    char err[1024] = "";
    em_query_info info = {0};
    int rc = open_session(&s, o, err, sizeof err);
    if (rc == EMBER_OK) rc = query(&s, name, 1, &info, err, sizeof err);
    /* the query ends once its running batch is committed */
    int64_t t0 = em_now_ms(), limit = o->timeout_ms > 0 ? o->timeout_ms : 300000;
    while (rc == EMBER_OK && strcmp(info.state, "stopped") != 0 &&
           strcmp(info.state, "failed") != 0) {
        if (em_now_ms() - t0 > limit) {
            snprintf(err, sizeof err, "query '%s' did not stop within %lld s", name,
                     (long long)limit / 1000);
            rc = EMBER_ERR_TIMEOUT;
            break;
        }
        em_sleep_ms(50);
        rc = query(&s, name, 0, &info, err, sizeof err);
    }
    if (rc != EMBER_OK)
        fprintf(stderr, "ember-submit: cannot stop query '%s': %s\n", name, err);
    else if (!o->quiet)
        fprintf(stderr, "ember-submit: query '%s' %s; last committed batch %lld%s%s\n", name,
                info.state, (long long)info.last_committed, info.error[0] ? ": " : "", info.error);
    if (s.rpc_open) end_session(&s);
    em_rpc_chan_close(&s.ch);
    if (s.rpc_open) em_rpc_close(&s.rpc);
    return rc == EMBER_OK ? 0 : 1;
}
