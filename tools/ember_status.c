/* ember_status.c -- ember-status: a readable summary of a cluster from the driver's status
 * endpoint (GET /api/v1/driver, /api/v1/executors, /api/v1/jobs).
 *
 *   ember-status [--url http://127.0.0.1:4040] [--jobs N]
 * Exit status: 0 when the driver answered, 1 when it could not be reached, 2 for bad usage.
 */
#include <ember/ember.h>
#include <getopt.h>
#include <jansson.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_args.h"

/* fetch GETs base+path and parses it as JSON; NULL (with err) on failure. */
static json_t *fetch(const char *base, const char *path, char *err, size_t errlen)
{
    char text[600];
    snprintf(text, sizeof text, "%s%s", base, path);
    nng_url *url = NULL;
    nng_http_client *client = NULL;
    nng_http_req *req = NULL;
    nng_http_res *res = NULL;
    nng_aio *aio = NULL;
    json_t *doc = NULL;
    int rv = nng_url_parse(&url, text);
    if (rv == 0) rv = nng_http_client_alloc(&client, url);
    if (rv == 0) rv = nng_http_req_alloc(&req, url);
    if (rv == 0) rv = nng_http_res_alloc(&res);
    if (rv == 0) rv = nng_aio_alloc(&aio, NULL, NULL);
    if (rv == 0) {
        nng_aio_set_timeout(aio, 5000);
        nng_http_client_transact(client, req, res, aio);
        nng_aio_wait(aio);
        rv = nng_aio_result(aio);
    }
    if (rv != 0) {
        snprintf(err, errlen, "cannot reach %s: %s", text, nng_strerror(rv));
    } else if (nng_http_res_get_status(res) != 200) {
        snprintf(err, errlen, "%s answered HTTP %u", text, nng_http_res_get_status(res));
    } else {
        void *body;
        size_t len;
        json_error_t jerr;
        nng_http_res_get_data(res, &body, &len);
        if (!(doc = json_loadb(body, len, 0, &jerr)))
            snprintf(err, errlen, "%s: not JSON (%s)", text, jerr.text);
    }
    if (aio) nng_aio_free(aio);
    if (res) nng_http_res_free(res);
    if (req) nng_http_req_free(req);
    if (client) nng_http_client_free(client);
    if (url) nng_url_free(url);
    return doc;
}

static long long num(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}
static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void print_driver(const json_t *d)
{
    printf("driver %s: %lld executors alive, jobs %lld running / %lld succeeded / %lld failed, "
           "%lld tasks launched, %lld rejected messages\n",
           str(d, "url"), num(d, "executors_alive"), num(d, "jobs_running"),
           num(d, "jobs_succeeded"), num(d, "jobs_failed"), num(d, "tasks_launched"),
           num(d, "rejected_messages"));
}

/* human_bytes writes n as "512 B", "6.9 MiB", "1.0 GiB" (the status page's form) */
static const char *human_bytes(long long n, char *out, size_t outlen)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof *units) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, outlen, "%lld B", n);
    else
        snprintf(out, outlen, v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
    return out;
}

static void print_executors(const json_t *execs)
{
    printf("\n%-4s %-28s %-6s %5s %7s %9s %6s %9s %9s %9s\n", "ID", "ADDRESS", "STATE", "SLOTS",
           "RUNNING", "COMPLETED", "FAILED", "HEARTBEAT", "BLOCKS", "RESIDENT");
    size_t i;
    const json_t *ex;
    json_array_foreach(execs, i, ex)
    {
        char held[32], resident[32];
        printf("%-4lld %-28s %-6s %5lld %7lld %9lld %6lld %8.1fs %9s %9s", num(ex, "id"),
               str(ex, "address"), str(ex, "state"), num(ex, "slots"), num(ex, "running_tasks"),
               num(ex, "tasks_completed"), num(ex, "tasks_failed"),
               num(ex, "last_heartbeat_age_ms") / 1000.0,
               human_bytes(num(ex, "memory_used"), held, sizeof held),
               num(ex, "rss_bytes") > 0
                   ? human_bytes(num(ex, "rss_bytes"), resident, sizeof resident)
                   : "-");
        if (json_object_get(ex, "lost_reason")) printf("  (%s)", str(ex, "lost_reason"));
        printf("\n");
    }
}

static void print_jobs(const json_t *jobs, size_t max)
{
    printf("\n%-5s %-32s %-10s %13s %12s %12s %10s\n", "JOB", "NAME", "STATE", "TASKS",
           "RECORDS IN", "RECORDS OUT", "DURATION");
    size_t i;
    const json_t *job;
    json_array_foreach(jobs, i, job)
    {
        if (i >= max) break;
        char tasks[32];
        snprintf(tasks, sizeof tasks, "%lld/%lld", num(job, "tasks_done"), num(job, "tasks"));
        printf("%-5lld %-32.32s %-10s %13s %12lld %12lld %9.2fs\n", num(job, "id"),
               str(job, "name"), str(job, "state"), tasks, num(job, "records_in"),
               num(job, "records_out"),
               json_real_value(json_object_get(job, "duration_ms")) / 1000.0);
        if (json_object_get(job, "error")) printf("      error: %s\n", str(job, "error"));
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", 1, 0, 'u'}, {"jobs", 1, 0, 'j'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    char base[512] = "http://127.0.0.1:4040", err[768] = "";
    const char *env = getenv("EMBER_STATUS_URL");
    if (env && *env) snprintf(base, sizeof base, "%s", env);
    uint32_t max_jobs = 20;
    int c, rc = EMBER_OK;
    while (rc == EMBER_OK && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'u': rc = em_arg_string("--url", optarg, base, sizeof base, err, sizeof err); break;
        case 'j': rc = em_arg_u32("--jobs", optarg, 1, 1000, &max_jobs, err, sizeof err); break;
        case 'h':
            printf("usage: ember-status [--url http://HOST:PORT (EMBER_STATUS_URL)] [--jobs N]\n");
            return 0;
        default: rc = EMBER_ERR_INVALID;
        }
    }
    if (rc != EMBER_OK || optind < argc) {
        fprintf(stderr, "ember-status: %s\n",
                err[0] ? err : "usage: ember-status [--url URL] [--jobs N]");
        return 2;
    }
    size_t n = strlen(base);
    if (n && base[n - 1] == '/') base[n - 1] = '\0';
    json_t *driver = fetch(base, "/api/v1/driver", err, sizeof err);
    json_t *execs = driver ? fetch(base, "/api/v1/executors", err, sizeof err) : NULL;
    json_t *jobs = execs ? fetch(base, "/api/v1/jobs", err, sizeof err) : NULL;
    if (jobs) {
        print_driver(driver);
        print_executors(execs);
        print_jobs(jobs, max_jobs);
    } else {
        fprintf(stderr, "ember-status: %s\n", err);
    }
    json_decref(driver);
    json_decref(execs);
    json_decref(jobs);
    return jobs ? 0 : 1;
}
