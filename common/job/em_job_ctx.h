/* em_job_ctx.h -- the private layout of ember_ctx and ember_dataset, shared by
 * em_job_api.c (building datasets) and em_job_actions.c (running actions). */
#ifndef EM_JOB_CTX_H
#define EM_JOB_CTX_H

#include <limits.h>

#include "em_job_api.h"

struct ember_dataset {
    ember_ctx *ctx;
    uint32_t node; /* index into ctx->nodes */
    int failed;
};

/* ember_query: a streaming query started by this context (the driver runs it) */
struct ember_query {
    ember_ctx *ctx;
    char name[128];
    struct ember_query *next;
};

/* collected: the records of one collect action, kept until the context is freed. */
typedef struct collected {
    em_buf batches;
    ember_record *records;
    struct collected *next;
} collected;

struct ember_ctx {
    void *lib;
    char lib_path[PATH_MAX];
    const char *lib_name; /* points into lib_path */
    uint8_t sha256[32];
    char kafka[1024];
    em_job_runner runner;
    char job_name[128];
    char *description; /* ember_describe_job: JSON carried by every graph (owned) */
    Ember__Node **nodes;
    size_t n_nodes, cap_nodes;
    ember_dataset **datasets;
    size_t n_datasets, cap_datasets;
    em_buf data; /* parallelized records, as record batches */
    collected *results;
    ember_query *queries;
    int error_code;
    char error[1024];
    em_job_outcome last, total;
    int actions;
    struct ember_opts *opts; /* ember_opts_new's, freed with the context */
    em_accs accs;            /* accumulator totals of every action so far */
};

/* em_add_builtin adds a node of `kind` running ember's own exported function `symbol` (an
 * ember_builtin_*) with arg (copied); a failed parent gives a failed dataset (em_job_api.c) */
ember_dataset *em_add_builtin(ember_dataset *parent, Ember__NodeKind kind, const char *symbol,
                              const void *arg, size_t arg_len);

/* em_opts_free_all frees a context's job options (em_job_opts.c) */
void em_opts_free_all(struct ember_opts *opts);

#endif
