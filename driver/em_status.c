/* em_status.c -- JSON snapshot and HTTP handlers of the status endpoint (see em_status.h).
 *
 * Paths: /api/v1/driver (totals), /api/v1/executors, /api/v1/jobs. JSON is built with jansson (escaping by the library).
 */
#include "em_status.h"

#include <arpa/inet.h>
#include <ember/ember.h>
#include <jansson.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_driver.h"
#include "em_graph.h"
#include "em_log.h"

enum { DOC_DRIVER, DOC_EXECUTORS, DOC_JOBS, DOC_COUNT };
static const char *const doc_paths[DOC_COUNT] = {"/api/v1/driver", "/api/v1/executors",
                                                 "/api/v1/jobs"};

struct em_status {
    nng_http_server *server;
    char url[128];
    pthread_mutex_t lock;    /* guards docs */
    char *docs[DOC_COUNT];   /* latest JSON documents */
    size_t doc_lens[DOC_COUNT];
};

/* handler data: the status and which document to serve */
typedef struct doc_ref {
    em_status *st;
    int doc;
} doc_ref;
static doc_ref refs[DOC_COUNT];

static const char *exec_state_name(em_exec_state s) { return s == EM_EXEC_ALIVE ? "alive" : "lost"; }

static const char *run_state_name(em_run_state s)
{
    static const char *const names[] = {"waiting", "running", "succeeded", "failed"};
    return names[s];
}

static json_t *executors_json(em_driver *d, int64_t now)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < d->n_execs; i++) {
        em_exec *ex = &d->execs[i];
        json_t *o = json_pack("{s:I, s:s, s:s, s:i, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                              "id", (json_int_t)ex->id, "address", ex->address, "host", ex->host,
                              "pid", ex->pid, "state", exec_state_name(ex->state), "slots",
                              (json_int_t)ex->slots, "running_tasks", (json_int_t)ex->assigned,
                              "memory_used", (json_int_t)ex->memory_used, "memory_cap",
                              (json_int_t)ex->memory_cap, "tasks_completed",
                              (json_int_t)ex->tasks_completed, "tasks_failed",
                              (json_int_t)ex->tasks_failed, "last_heartbeat_age_ms",
                              (json_int_t)((now - ex->last_seen_us) / 1000));
        if (ex->state == EM_EXEC_LOST) json_object_set_new(o, "lost_reason", json_string(ex->lost_reason));
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *stage_json(const em_stage *st)
{
    const Ember__Node *src = st->job->submit->graph->nodes[st->plan.source];
    json_t *o = json_pack("{s:I, s:s, s:I, s:I, s:I, s:s}", "id", (json_int_t)st->id, "state",
                          run_state_name(st->state), "tasks", (json_int_t)st->plan.partitions,
                          "tasks_done", (json_int_t)st->n_done, "tasks_running",
                          (json_int_t)st->n_running, "source", em_node_kind_name(src->kind));
    if (src->topic[0]) json_object_set_new(o, "topic", json_string(src->topic));
    return o;
}

static json_t *job_json(const em_job *job, int64_t now)
{
    int64_t end = job->finished_us ? job->finished_us : now;
    json_t *stages = json_array();
    for (size_t i = 0; i < job->n_stages; i++) json_array_append_new(stages, stage_json(&job->stages[i]));
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:f, s:o}", "id",
                          (json_int_t)job->id, "name", job->name, "submitter", job->submitter,
                          "state", run_state_name(job->state), "action",
                          em_action_kind_name(job->submit->graph->action->kind), "tasks",
                          (json_int_t)job->tasks_total, "tasks_done", (json_int_t)job->tasks_done,
                          "records_in", (json_int_t)job->records_in, "records_out",
                          (json_int_t)job->records_out, "duration_ms",
                          (end - job->submitted_us) / 1000.0, "stages", stages);
    if (job->state == EM_RUN_FAILED) json_object_set_new(o, "error", json_string(job->error));
    return o;
}

static json_t *jobs_json(em_driver *d, int64_t now)
{
    json_t *arr = json_array();
    for (em_job *job = d->jobs; job; job = job->next) json_array_append_new(arr, job_json(job, now));
    for (em_job *job = d->finished; job; job = job->next) json_array_append_new(arr, job_json(job, now));
    return arr;
}

static json_t *driver_json(em_driver *d, uint64_t rejected)
{
    size_t alive = 0, running = 0;
    for (size_t i = 0; i < d->n_execs; i++) alive += d->execs[i].state == EM_EXEC_ALIVE;
    for (em_job *job = d->jobs; job; job = job->next) running++;
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "url", d->bound_url,
                     "executors_alive", (json_int_t)alive, "jobs_running", (json_int_t)running,
                     "jobs_succeeded", (json_int_t)d->jobs_succeeded, "jobs_failed",
                     (json_int_t)d->jobs_failed, "tasks_launched", (json_int_t)d->tasks_launched,
                     "tasks_relaunched", (json_int_t)d->tasks_relaunched, "rejected_messages",
                     (json_int_t)rejected);
}

void em_status_publish(em_driver *d, uint64_t rejected)
{
    em_status *st = d->status;
    int64_t now = em_now_us();
    json_t *docs[DOC_COUNT] = {driver_json(d, rejected), executors_json(d, now), jobs_json(d, now)};
    for (int i = 0; i < DOC_COUNT; i++) {
        char *text = json_dumps(docs[i], JSON_COMPACT);
        json_decref(docs[i]);
        if (!text) continue;
        pthread_mutex_lock(&st->lock);
        free(st->docs[i]);
        st->docs[i] = text;
        st->doc_lens[i] = strlen(text);
        pthread_mutex_unlock(&st->lock);
    }
}

static void serve_doc(nng_aio *aio)
{
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    doc_ref *ref = nng_http_handler_get_data(h);
    nng_http_res *res;
    if (nng_http_res_alloc(&res) != 0) {
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    nng_http_res_set_header(res, "Content-Type", "application/json");
    nng_http_res_set_header(res, "Cache-Control", "no-store");
    pthread_mutex_lock(&ref->st->lock);
    int rv = ref->st->docs[ref->doc]
                 ? nng_http_res_copy_data(res, ref->st->docs[ref->doc], ref->st->doc_lens[ref->doc])
                 : nng_http_res_copy_data(res, "[]", 2);
    pthread_mutex_unlock(&ref->st->lock);
    if (rv != 0) {
        nng_http_res_free(res);
        nng_aio_finish(aio, rv);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

int em_status_start(em_driver *d, char *err, size_t errlen)
{
    em_status *st = calloc(1, sizeof *st);
    if (!st) return EMBER_ERR_NOMEM;
    pthread_mutex_init(&st->lock, NULL);
    char url_text[300];
    snprintf(url_text, sizeof url_text, "http://%s", d->cfg.status);
    nng_url *url;
    int rv = nng_url_parse(&url, url_text);
    if (rv == 0) {
        rv = nng_http_server_hold(&st->server, url);
        nng_url_free(url);
    }
    for (int i = 0; rv == 0 && i < DOC_COUNT; i++) {
        nng_http_handler *h;
        refs[i] = (doc_ref){st, i};
        if ((rv = nng_http_handler_alloc(&h, doc_paths[i], serve_doc)) == 0) {
            nng_http_handler_set_data(h, &refs[i], NULL);
            rv = nng_http_server_add_handler(st->server, h);
        }
    }
    if (rv == 0) rv = nng_http_server_start(st->server);
    if (rv != 0) {
        snprintf(err, errlen, "cannot serve status on %s: %s", d->cfg.status, nng_strerror(rv));
        if (st->server) nng_http_server_release(st->server);
        pthread_mutex_destroy(&st->lock);
        free(st);
        return rv == NNG_EADDRINUSE ? EMBER_ERR_IO : EMBER_ERR_INVALID;
    }
    nng_sockaddr sa;
    nng_http_server_get_addr(st->server, &sa);
    char host[128];
    snprintf(host, sizeof host, "%s", d->cfg.status);
    char *colon = strrchr(host, ':');
    if (colon) *colon = '\0';
    snprintf(st->url, sizeof st->url, "http://%s:%u", host, ntohs(sa.s_in.sa_port));
    d->status = st;
    em_status_publish(d, 0);
    return EMBER_OK;
}

const char *em_status_url(const em_status *st) { return st->url; }

void em_status_stop(em_status *st)
{
    if (!st) return;
    nng_http_server_stop(st->server);
    nng_http_server_release(st->server);
    for (int i = 0; i < DOC_COUNT; i++) free(st->docs[i]);
    pthread_mutex_destroy(&st->lock);
    free(st);
}
