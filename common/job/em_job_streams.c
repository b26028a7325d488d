/* em_job_streams.c -- a job's handles on its streaming queries: their progress, waiting for
 * them, stopping them. The driver runs the queries (docs/streaming.md); ember_stream_to_files
 * and ember_stream_to_kafka, which start them, are in em_job_actions.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "em_job_ctx.h"
#include "em_time.h"

#define POLL_MS         100
#define PLAIN_REPORT_MS 10000 /* without a terminal, a progress line this often */

ember_query *em_query_new(ember_ctx *ctx, const char *name)
{
    ember_query *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->ctx = ctx;
    snprintf(q->name, sizeof q->name, "%s", name);
    q->next = ctx->queries;
    ctx->queries = q;
    return q;
}

/* ask_accs: the driver's view of q (stop: after asking it to stop), its accumulators in
 * info->accs (the caller frees them) */
static int ask_accs(ember_query *q, int stop, em_query_info *info)
{
    ember_ctx *ctx = q->ctx;
    char why[1024] = "";
    memset(info, 0, sizeof *info);
    if (!ctx->runner.query) return em_ctx_fail(ctx, EMBER_ERR_STATE, "no driver to ask");
    int rc = ctx->runner.query(ctx->runner.arg, q->name, stop, info, why, sizeof why);
    return rc == EMBER_OK ? rc : em_ctx_fail(ctx, rc, "query '%s': %s", q->name, why);
}

/* ask: the same, without the accumulators */
static int ask(ember_query *q, int stop, em_query_info *info)
{
    int rc = ask_accs(q, stop, info);
    em_accs_free(&info->accs);
    return rc;
}

static int ended(const em_query_info *info)
{
    return strcmp(info->state, "stopped") == 0 || strcmp(info->state, "failed") == 0;
}

static void fill_progress(const em_query_info *info, ember_query_progress *out)
{
    out->running = !ended(info);
    out->last_committed = info->last_committed;
    out->batches = info->batches;
    out->records_in = info->records_in;
    out->records_out = info->records_out;
    out->lag = info->lag;
    out->watermark_ms = info->watermark_ms;
    out->late_records = info->late_records;
}

int ember_query_status(ember_query *q, ember_query_progress *out)
{
    if (!q) return EMBER_ERR_INVALID;
    em_query_info info;
    int rc = ask(q, 0, &info);
    if (rc == EMBER_OK && out) fill_progress(&info, out);
    return rc;
}

int64_t ember_query_accumulator(ember_query *q, const char *name)
{
    em_query_info info;
    if (!q || !name || ask_accs(q, 0, &info) != EMBER_OK) return 0;
    const em_acc *a = em_accs_find(&info.accs, name);
    int64_t v = a && !a->is_f64 ? a->i64 : 0;
    em_accs_free(&info.accs);
    return v;
}

int ember_query_stop(ember_query *q)
{
    if (!q) return EMBER_ERR_INVALID;
    em_query_info info;
    return ask(q, 1, &info);
}

static void report(const ember_query *q, const em_query_info *info, int tty)
{
    char windows[96] = "";
    if (info->watermark_ms >= 0 || info->late_records > 0)
        snprintf(windows, sizeof windows, ", watermark %lld, %lld late",
                 (long long)info->watermark_ms, (long long)info->late_records);
    fprintf(stderr,
            "%squery %s: %s, batch %lld committed, %lld records in (%.0f/s), %lld out, "
            "lag %lld%s%s%s%s",
            tty ? "\r\033[K" : "", q->name, info->state, (long long)info->last_committed,
            (long long)info->records_in, info->input_rate, (long long)info->records_out,
            (long long)info->lag, windows, info->warning[0] ? ", warning: " : "", info->warning,
            tty ? "" : "\n");
}

int ember_query_await(ember_query *q, int64_t timeout_ms)
{
    if (!q) return EMBER_ERR_INVALID;
    if (q->ctx->runner.detach_queries) { /* the driver runs it on its own */
        fprintf(stderr, "query %s runs detached on the driver: ember-submit --stop %s stops it\n",
                q->name, q->name);
        return EMBER_OK;
    }
    int tty = isatty(STDERR_FILENO);
    int64_t start = em_now_ms(), reported = start;
    em_query_info info;
    for (;;) {
        int rc = ask(q, 0, &info);
        if (rc != EMBER_OK) return rc;
        int64_t now = em_now_ms();
        if (ended(&info)) break;
        if (tty || now - reported >= PLAIN_REPORT_MS) {
            report(q, &info, tty);
            reported = now;
        }
        if (timeout_ms >= 0 && now - start >= timeout_ms) {
            if (tty) fputs("\r\033[K", stderr);
            return EMBER_ERR_TIMEOUT;
        }
        em_sleep_ms(POLL_MS);
    }
    if (tty) fputs("\r\033[K", stderr);
    if (strcmp(info.state, "failed") == 0)
        return em_ctx_fail(q->ctx, EMBER_ERR_JOB_FAILED, "query '%s' failed: %s", q->name,
                           info.error);
    return EMBER_OK;
}
