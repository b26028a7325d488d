/* em_status.c -- snapshot and HTTP routing of the status endpoint (see em_status.h).
 *
 * A snapshot is a sorted array of (path, text) documents; the page at "/" is compiled in.
 * Routing: GET or HEAD only (405 otherwise, JSON body); unknown paths get 404 with a JSON
 * body.
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

#include "em_log.h"
#include "em_metrics.h"
#include "em_status_docs.h"
#include "em_text.h"

extern const char em_status_page[]; /* status_page.html, embedded at build time */

typedef struct doc {
    char path[48];
    const char *type;
    em_text *text;
} doc;

typedef struct snapshot {
    doc *docs; /* sorted by path */
    size_t n, cap;
} snapshot;

/* frozen: a finished stage's document, task list included, rendered once */
typedef struct frozen {
    uint64_t stage_id;
    em_text *doc;
    int used; /* listed by the last snapshot */
} frozen;

struct em_status {
    nng_http_server *server;
    char url[128];
    pthread_mutex_t lock; /* guards current */
    snapshot current;
    frozen *frozen; /* driver loop only; sorted by stage id */
    size_t n_frozen, cap_frozen;
};

static const char *const json_mime = "application/json";

static void snapshot_free(snapshot *s)
{
    for (size_t i = 0; i < s->n; i++) em_text_unref(s->docs[i].text);
    free(s->docs);
    *s = (snapshot){0};
}

/* add puts a document at path; takes the reference to text. */
static void add(snapshot *s, const char *path, const char *type, em_text *text)
{
    if (!text) return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        doc *p = realloc(s->docs, cap * sizeof *p);
        if (!p) {
            em_text_unref(text);
            return;
        }
        s->docs = p;
        s->cap = cap;
    }
    doc *dc = &s->docs[s->n++];
    snprintf(dc->path, sizeof dc->path, "%s", path);
    dc->type = type;
    dc->text = text;
}

static void add_json(snapshot *s, const char *path, json_t *j)
{
    add(s, path, json_mime, em_text_take(json_dumps(j, JSON_COMPACT)));
    json_decref(j);
}

static int doc_cmp(const void *a, const void *b)
{
    return strcmp(((const doc *)a)->path, ((const doc *)b)->path);
}

static int frozen_cmp(const void *key, const void *f)
{
    uint64_t a = *(const uint64_t *)key, b = ((const frozen *)f)->stage_id;
    return a < b ? -1 : a > b;
}

static frozen *find_frozen(em_status *st, em_stage_id id)
{
    return st->n_frozen ? bsearch(&id.v, st->frozen, st->n_frozen, sizeof *st->frozen, frozen_cmp)
                        : NULL;
}

void em_status_job_finished(em_status *st, const em_job *job)
{
    for (size_t i = 0; i < job->n_stages; i++) {
        const em_stage *stage = &job->stages[i];
        if (find_frozen(st, stage->id)) continue;
        size_t at = st->n_frozen; /* ids only grow: mostly an append */
        while (at > 0 && st->frozen[at - 1].stage_id > stage->id.v) at--;
        if (st->n_frozen == st->cap_frozen) {
            size_t cap = st->cap_frozen ? 2 * st->cap_frozen : 64;
            frozen *p = realloc(st->frozen, cap * sizeof *p);
            if (!p) return; /* its summary is served instead */
            st->frozen = p;
            st->cap_frozen = cap;
        }
        json_t *j = em_doc_stage_tasks(stage, job->finished_us);
        memmove(&st->frozen[at + 1], &st->frozen[at], (st->n_frozen - at) * sizeof *st->frozen);
        st->frozen[at] = (frozen){stage->id.v, em_text_take(json_dumps(j, JSON_COMPACT)), 1};
        st->n_frozen++;
        json_decref(j);
    }
}

/* prune_frozen forgets the documents of jobs the scheduler no longer lists */
static void prune_frozen(em_status *st)
{
    size_t kept = 0;
    for (size_t i = 0; i < st->n_frozen; i++) {
        if (!st->frozen[i].used) {
            em_text_unref(st->frozen[i].doc);
            continue;
        }
        st->frozen[i].used = 0;
        st->frozen[kept++] = st->frozen[i];
    }
    st->n_frozen = kept;
}

static void add_jobs(snapshot *s, em_status *status, const em_sched *sched, int64_t now)
{
    json_t *jobs = json_array(), *stages = json_array();
    char path[48];
    for (int finished = 0; finished < 2; finished++)
        for (const em_job *job = finished ? sched->finished : sched->jobs; job; job = job->next) {
            json_t *j = em_doc_job(job, now);
            json_array_append(jobs, j);
            snprintf(path, sizeof path, "/api/v1/jobs/%llu", (unsigned long long)job->id.v);
            add_json(s, path, j);
            for (size_t i = 0; i < job->n_stages; i++) {
                const em_stage *st = &job->stages[i];
                json_array_append_new(stages, em_doc_stage(st, now));
                snprintf(path, sizeof path, "/api/v1/stages/%llu", (unsigned long long)st->id.v);
                frozen *f = finished ? find_frozen(status, st->id) : NULL;
                if (f) {
                    f->used = 1;
                    add(s, path, json_mime, em_text_ref(f->doc));
                } else {
                    add_json(s, path, em_doc_stage_tasks(st, now));
                }
            }
        }
    add_json(s, "/api/v1/jobs", jobs);
    add_json(s, "/api/v1/stages", stages);
}

void em_status_publish(em_status *st, const em_sched *sched, const char *driver_url,
                       const em_wire_counts *wire, int64_t now)
{
    snapshot next = {0};
    add_json(&next, "/api/v1/driver", em_doc_driver(sched, driver_url, wire));
    add_json(&next, "/api/v1/executors", em_doc_executors(sched, now));
    add_json(&next, "/api/v1/storage", em_doc_storage(sched));
    add_jobs(&next, st, sched, now);
    prune_frozen(st);
    add(&next, "/metrics", "text/plain; version=0.0.4; charset=utf-8",
        em_text_take(em_metrics_render(sched, wire, now)));
    qsort(next.docs, next.n, sizeof *next.docs, doc_cmp);
    pthread_mutex_lock(&st->lock);
    snapshot old = st->current;
    st->current = next;
    pthread_mutex_unlock(&st->lock);
    snapshot_free(&old);
}

/* ---- HTTP ------------------------------------------------------------------------------- */

static void respond(nng_aio *aio, uint16_t status, const char *type, const char *body, size_t len,
                    const char *allow)
{
    nng_http_res *res;
    int rv = nng_http_res_alloc(&res);
    if (rv == 0) {
        nng_http_res_set_status(res, status);
        nng_http_res_set_header(res, "Content-Type", type);
        nng_http_res_set_header(res, "Cache-Control", "no-store");
        if (allow) nng_http_res_set_header(res, "Allow", allow);
        rv = nng_http_res_copy_data(res, body, len);
        if (rv != 0) nng_http_res_free(res);
    }
    if (rv != 0) {
        nng_aio_finish(aio, rv);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

static void respond_error(nng_aio *aio, uint16_t status, const char *message, const char *path)
{
    json_t *j = json_pack("{s:s, s:s, s:i}", "error", message, "path", path, "status", status);
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    respond(aio, status, json_mime, body ? body : "{}", body ? strlen(body) : 2,
            status == 405 ? "GET, HEAD" : NULL);
    free(body);
}

static void serve(nng_aio *aio)
{
    nng_http_req *req = nng_aio_get_input(aio, 0);
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    em_status *st = nng_http_handler_get_data(h);
    const char *method = nng_http_req_get_method(req);
    char path[256];
    snprintf(path, sizeof path, "%s", nng_http_req_get_uri(req));
    path[strcspn(path, "?#")] = '\0';
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        respond_error(aio, 405, "the status endpoint is read-only: use GET", path);
        return;
    }
    if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        respond(aio, 200, "text/html; charset=utf-8", em_status_page, strlen(em_status_page), NULL);
        return;
    }
    doc key;
    snprintf(key.path, sizeof key.path, "%s", path);
    pthread_mutex_lock(&st->lock);
    doc *found = strlen(path) < sizeof key.path
                     ? bsearch(&key, st->current.docs, st->current.n, sizeof key, doc_cmp)
                     : NULL;
    if (found) respond(aio, 200, found->type, found->text->data, found->text->len, NULL);
    pthread_mutex_unlock(&st->lock);
    if (!found) respond_error(aio, 404, "no such path", path);
}

int em_status_start(em_status **out, const char *hostport, char *err, size_t errlen)
{
    em_status *st = calloc(1, sizeof *st);
    if (!st) return EMBER_ERR_NOMEM;
    pthread_mutex_init(&st->lock, NULL);
    char url_text[300];
    snprintf(url_text, sizeof url_text, "http://%s", hostport);
    nng_url *url;
    nng_http_handler *h;
    int rv = nng_url_parse(&url, url_text);
    if (rv == 0) {
        rv = nng_http_server_hold(&st->server, url);
        nng_url_free(url);
    }
    if (rv == 0 && (rv = nng_http_handler_alloc(&h, "/", serve)) == 0) {
        nng_http_handler_set_tree(h);
        nng_http_handler_set_method(h, NULL); /* every method reaches serve, which answers 405 */
        nng_http_handler_set_data(h, st, NULL);
        rv = nng_http_server_add_handler(st->server, h);
    }
    if (rv == 0) rv = nng_http_server_start(st->server);
    if (rv != 0) {
        snprintf(err, errlen, "cannot serve status on %s: %s", hostport, nng_strerror(rv));
        if (st->server) nng_http_server_release(st->server);
        pthread_mutex_destroy(&st->lock);
        free(st);
        return rv == NNG_EADDRINUSE ? EMBER_ERR_IO : EMBER_ERR_INVALID;
    }
    nng_sockaddr sa;
    nng_http_server_get_addr(st->server, &sa);
    char host[128];
    snprintf(host, sizeof host, "%s", hostport);
    char *colon = strrchr(host, ':');
    if (colon) *colon = '\0';
    snprintf(st->url, sizeof st->url, "http://%s:%u", host, ntohs(sa.s_in.sa_port));
    *out = st;
    return EMBER_OK;
}

const char *em_status_url(const em_status *st) { return st->url; }

void em_status_stop(em_status *st)
{
    if (!st) return;
    nng_http_server_stop(st->server);
    nng_http_server_release(st->server);
    snapshot_free(&st->current);
    for (size_t i = 0; i < st->n_frozen; i++) em_text_unref(st->frozen[i].doc);
    free(st->frozen);
    pthread_mutex_destroy(&st->lock);
    free(st);
}
