/* em_job_api.h -- the graph-building side of the public API, as ember-submit hosts it.
 *
 * ember_ctx records datasets as graph nodes (parents first) and, on an action, extracts the
 * nodes the action needs into a JobGraph and hands it to the context's runner. The runner is
 * the host's business: ember-submit sends the graph to the driver; other processes that load
 * job libraries (executors) have none, and actions there fail with EMBER_ERR_STATE.
 */
#ifndef EM_JOB_API_H
#define EM_JOB_API_H

#include <ember/ember.h>

#include "em_accs.h"
#include "em_buf.h"
#include "ember.pb-c.h"

/* em_job_outcome: what an action's job produced. The runner fills it; batches is owned. */
typedef struct em_job_outcome {
    uint64_t job_id;
    int64_t records_in, records_out;
    uint32_t tasks, stages;
    int64_t duration_us;
    em_buf batches; /* collect: record batches in partition order */
    em_accs accs;   /* the job's accumulator totals (owned) */
} em_job_outcome;

/* em_query_info: a streaming query as the driver reports it (QueryStatus) */
typedef struct em_query_info {
    char state[16]; /* "starting", "running", "stopped", "failed" */
    char error[1024];
    char warning[512]; /* a passing problem the driver tries again (the broker out of reach) */
    int64_t last_committed, batches, records_in, records_out, lag;
    double input_rate;
    int64_t watermark_ms; /* -1: none (no windows, or no event time seen yet) */
    int64_t late_records;
    em_accs accs; /* the accumulator totals of its committed batches (owned) */
} em_query_info;

/* em_job_runner runs one action's graph; `data` is the parallelized records it refers to. */
typedef struct em_job_runner {
    int (*run)(void *arg, const Ember__JobGraph *graph, const char *job_name, const em_buf *data,
               em_job_outcome *out, char *err, size_t errlen);
    /* resolve_kafka fills a kafka node's bootstrap and ranges (all partitions of its topic) */
    int (*resolve_kafka)(void *arg, Ember__Node *node, char *err, size_t errlen);
    /* unpersist tells the cluster that the persisted target of graph is no longer needed */
    int (*unpersist)(void *arg, const Ember__JobGraph *graph, const em_buf *data, char *err,
                     size_t errlen);
    /* start_query hands a streaming query to the driver (StartQuery) */
    int (*start_query)(void *arg, const Ember__JobGraph *graph, const ember_query_options *opts,
                       const char *checkpoint, char *err, size_t errlen);
    /* query asks the driver about the named query, or stops it (stop = 1) */
    int (*query)(void *arg, const char *name, int stop, em_query_info *out, char *err,
                 size_t errlen);
    /* submit_failed tells the driver an action failed here before reaching it (best effort) */
    void (*submit_failed)(void *arg, const char *job_name, const char *action, const char *error);
    /* put_blob stores bytes named by their sha256 on the driver (a broadcast value) */
    int (*put_blob)(void *arg, const uint8_t sha256[32], const void *data, size_t len, char *err,
                    size_t errlen);
    void *arg;
    int detach_queries; /* ember-submit --detach: every query starts detached, and waiting for
                           one returns at once */
} em_job_runner;

/* em_blob_source: how a process running tasks finds a broadcast value's bytes by their
 * sha256 (an executor: its library cache); em_job_set_blob_source registers it */
typedef int (*em_blob_source)(void *arg, const uint8_t sha256[32], const void **data, size_t *len,
                              char *err, size_t errlen);
void em_job_set_blob_source(em_blob_source fn, void *arg);
/* em_job_clear_blob_source forgets the source registered with arg, if it still is */
void em_job_clear_blob_source(void *arg);

/* em_job_api_check: job library lib (loaded from `name`) was built against this ember.h: its
 * ember_api_version is EMBER_API_VERSION. Else EMBER_ERR_LIBRARY, with both versions and what
 * to do in err. */
int em_job_api_check(void *lib, const char *name, char *err, size_t errlen);

/* em_ctx_new makes the context for one job library: `lib` is its dlopen handle and
 * lib_path its file (user functions must be exported symbols of that file). */
ember_ctx *em_ctx_new(void *lib, const char *lib_path, const uint8_t sha256[32],
                      const char *kafka_bootstrap, const em_job_runner *runner);
void em_ctx_free(ember_ctx *ctx);
/* em_ctx_fail records an error (the first one sticks) and returns code. */
int em_ctx_fail(ember_ctx *ctx, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* em_ctx_error_code returns the code of the first error, or EMBER_OK. */
int em_ctx_error_code(const ember_ctx *ctx);
/* em_ctx_last_outcome is the outcome of the last successful action (for summaries). */
const em_job_outcome *em_ctx_last_outcome(const ember_ctx *ctx);
/* em_ctx_totals adds up every action of the run, and counts the queries it started. */
void em_ctx_totals(const ember_ctx *ctx, em_job_outcome *sum, int *actions, int *queries);

/* em_query_new: the handle of a query the driver runs; freed with its context */
ember_query *em_query_new(ember_ctx *ctx, const char *name);

/* em_symbol_of finds the exported symbol name of fn within the library at lib_path.
 * Returns EMBER_ERR_SYMBOL with a message if fn is static or from elsewhere. */
int em_symbol_of(void *lib, const char *lib_path, const void *fn, char *name, size_t name_len,
                 char *err, size_t errlen);

#endif
