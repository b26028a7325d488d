/* em_job_broadcast.c -- broadcast values in the job API: stored on the driver by the
 * submitter, read by tasks through the process's blob source (an executor's library cache). */
#include <ember/ember.h>
#include <stdio.h>
#include <string.h>

#include "em_job_api.h"
#include "em_job_ctx.h"
#include "em_sha256.h"

static em_blob_source blob_source;
static void *blob_source_arg;

void em_job_set_blob_source(em_blob_source fn, void *arg)
{
    blob_source = fn;
    blob_source_arg = arg;
}

void em_job_clear_blob_source(void *arg)
{
    if (blob_source_arg == arg) em_job_set_blob_source(NULL, NULL);
}

int ember_broadcast_new(ember_ctx *ctx, const void *data, size_t len, ember_broadcast *out)
{
    if (!ctx || !out || (len && !data)) return EMBER_ERR_INVALID;
    if (!ctx->runner.put_blob)
        return em_ctx_fail(ctx, EMBER_ERR_STATE, "broadcast values are made in ember-submit");
    ember_broadcast b = {.len = len};
    em_sha256(data, len, b.sha256);
    char why[1024] = "";
    int rc = ctx->runner.put_blob(ctx->runner.arg, b.sha256, data, len, why, sizeof why);
    if (rc != EMBER_OK) return em_ctx_fail(ctx, rc, "broadcast value of %zu bytes: %s", len, why);
    *out = b;
    return EMBER_OK;
}

int ember_broadcast_value(ember_task *task, const ember_broadcast *b, const void **data,
                          size_t *len)
{
    if (!b || !data || !len) return ember_task_fail(task, "broadcast: no handle");
    if (!blob_source) return ember_task_fail(task, "broadcast values are read in tasks");
    char why[1024] = "";
    int rc = blob_source(blob_source_arg, b->sha256, data, len, why, sizeof why);
    if (rc == EMBER_OK && *len != b->len)
        snprintf(why, sizeof why, "%zu bytes where the handle says %llu", *len,
                 (unsigned long long)b->len);
    if (rc == EMBER_OK && *len == b->len) return EMBER_OK;
    return ember_task_fail(task, "broadcast value: %s", why);
}
