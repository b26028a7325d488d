/* em_status.c -- snapshot and HTTP routing of the status endpoint (see em_status.h).
 *
 * A snapshot is a sorted array of (path, text) documents; the page at "/" is compiled in.
 * Routing: GET or HEAD (405 otherwise, JSON body), but for POST
 * /api/v1/streaming/queries/NAME/stop with the stop token derived from the cluster secret;
 * unknown paths get 404 with a JSON body. The HTTP server is libmicrohttpd, for what nng's lacks: a
 * bound on connections (in all and per client address) and an idle timeout, so that idle or slow
 * clients cannot take the driver's file descriptors.
 */
#include "em_status.h"

#include <arpa/inet.h>
#include <ember/ember.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_driver.h"
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

/* frozen: a finished job's documents, rendered once: its own (also its element of
 * /api/v1/jobs) and, per stage, its summary (an element of /api/v1/stages) and its document
 * with the task list. A snapshot then costs the running jobs, not the hundred kept. */
typedef struct frozen {
    uint64_t job_id;
    em_text *doc;
    size_t n_stages;
    em_text **stage_summaries, **stage_docs;
    int used; /* listed by the last snapshot */
} frozen;

/* the HTTP server's bounds: connections at once, from one address, and the seconds an idle
 * connection is kept */
#define STATUS_MAX_CONNECTIONS 64
#define STATUS_MAX_PER_CLIENT  32
#define STATUS_IDLE_S          10

struct em_status {
    struct MHD_Daemon *daemon;
    char *tls_cert, *tls_key; /* PEM, for HTTPS: libmicrohttpd reads them while it runs */
    char url[128];
    pthread_mutex_t lock; /* guards current */
    snapshot current;
    frozen *frozen; /* driver loop only; sorted by job id */
    size_t n_frozen, cap_frozen;
    em_secret secret;                               /* stop tokens are checked against it */
    int (*stop_query)(void *arg, const char *name); /* NULL: stopping over HTTP is off */
    void *stop_arg;
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
    uint64_t a = *(const uint64_t *)key, b = ((const frozen *)f)->job_id;
    return a < b ? -1 : a > b;
}

static frozen *find_frozen(em_status *st, em_job_id id)
{
    return st->n_frozen ? bsearch(&id.v, st->frozen, st->n_frozen, sizeof *st->frozen, frozen_cmp)
                        : NULL;
}

static em_text *render(json_t *j)
{
    em_text *t = em_text_take(json_dumps(j, JSON_COMPACT));
    json_decref(j);
    return t;
}

static void frozen_free(frozen *f)
{
    em_text_unref(f->doc);
    for (size_t i = 0; i < f->n_stages; i++) { /* (the arrays may be missing: out of memory) */
        if (f->stage_summaries) em_text_unref(f->stage_summaries[i]);
        if (f->stage_docs) em_text_unref(f->stage_docs[i]);
    }
    free(f->stage_summaries);
    free(f->stage_docs);
}

/* freeze renders a job's documents as of `at` (a finished job's end); 0: out of memory
 * (nothing kept) */
static int freeze(frozen *f, const em_job *job, int64_t at)
{
    *f = (frozen){.job_id = job->id.v, .n_stages = job->n_stages, .used = 1};
    f->stage_summaries = calloc(job->n_stages ? job->n_stages : 1, sizeof *f->stage_summaries);
    f->stage_docs = calloc(job->n_stages ? job->n_stages : 1, sizeof *f->stage_docs);
    int ok = f->stage_summaries && f->stage_docs && (f->doc = render(em_doc_job(job, at)));
    for (size_t i = 0; ok && i < job->n_stages; i++) {
        const em_stage *stage = &job->stages[i];
        ok = (f->stage_summaries[i] = render(em_doc_stage(stage, at))) &&
             (f->stage_docs[i] = render(em_doc_stage_tasks(stage, at)));
    }
    if (!ok) frozen_free(f);
    return ok;
}

void em_status_job_finished(em_status *st, const em_job *job)
{
    if (find_frozen(st, job->id)) return;
    if (st->n_frozen == st->cap_frozen) {
        size_t cap = st->cap_frozen ? 2 * st->cap_frozen : 64;
        frozen *p = realloc(st->frozen, cap * sizeof *p);
        if (!p) return; /* rendered at every snapshot instead */
        st->frozen = p;
        st->cap_frozen = cap;
    }
    size_t at = st->n_frozen; /* ids only grow: mostly an append */
    while (at > 0 && st->frozen[at - 1].job_id > job->id.v) at--;
    frozen f;
    if (!freeze(&f, job, job->finished_us)) return;
    memmove(&st->frozen[at + 1], &st->frozen[at], (st->n_frozen - at) * sizeof *st->frozen);
    st->frozen[at] = f;
    st->n_frozen++;
}

/* prune_frozen forgets the documents of jobs the scheduler no longer lists */
static void prune_frozen(em_status *st)
{
    size_t kept = 0;
    for (size_t i = 0; i < st->n_frozen; i++) {
        if (!st->frozen[i].used) {
            frozen_free(&st->frozen[i]);
            continue;
        }
        st->frozen[i].used = 0;
        st->frozen[kept++] = st->frozen[i];
    }
    st->n_frozen = kept;
}

/* a JSON array whose elements are rendered texts, joined without parsing them again */
typedef struct text_list {
    em_text **v;
    size_t n, cap, len;
    int failed;
} text_list;

static void list_add(text_list *l, em_text *t)
{
    if (!t) {
        l->failed = 1;
        return;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        em_text **p = realloc(l->v, cap * sizeof *p);
        if (!p) {
            l->failed = 1;
            em_text_unref(t);
            return;
        }
        l->v = p;
        l->cap = cap;
    }
    l->v[l->n++] = t;
    l->len += t->len + 1;
}

/* list_finish adds "[a,b,...]" at path and drops the list's references */
static void list_finish(snapshot *s, const char *path, text_list *l)
{
    char *joined = l->failed ? NULL : malloc(l->len + 3);
    if (joined) {
        size_t at = 0;
        joined[at++] = '[';
        for (size_t i = 0; i < l->n; i++) {
            if (i) joined[at++] = ',';
            memcpy(joined + at, l->v[i]->data, l->v[i]->len);
            at += l->v[i]->len;
        }
        joined[at++] = ']';
        joined[at] = '\0';
        add(s, path, json_mime, em_text_take(joined));
    }
    for (size_t i = 0; i < l->n; i++) em_text_unref(l->v[i]);
    free(l->v);
}

/* add_job_docs serves a job's rendered documents and lists them in /api/v1/jobs and stages */
static void add_job_docs(snapshot *s, const em_job *job, const frozen *f, text_list *jobs,
                         text_list *stages)
{
    char path[48];
    snprintf(path, sizeof path, "/api/v1/jobs/%llu", (unsigned long long)job->id.v);
    add(s, path, json_mime, em_text_ref(f->doc));
    list_add(jobs, em_text_ref(f->doc));
    for (size_t i = 0; i < f->n_stages; i++) {
        list_add(stages, em_text_ref(f->stage_summaries[i]));
        snprintf(path, sizeof path, "/api/v1/stages/%llu", (unsigned long long)job->stages[i].id.v);
        add(s, path, json_mime, em_text_ref(f->stage_docs[i]));
    }
}

static void add_jobs(snapshot *s, em_status *status, const em_sched *sched, int64_t now)
{
    text_list jobs = {0}, stages = {0};
    for (int finished = 0; finished < 2; finished++)
        for (const em_job *job = finished ? sched->finished : sched->jobs; job; job = job->next) {
            frozen *f = finished ? find_frozen(status, job->id) : NULL;
            frozen now_docs;
            if (f && f->n_stages == job->n_stages) {
                f->used = 1;
                add_job_docs(s, job, f, &jobs, &stages);
            } else if (freeze(&now_docs, job, now)) { /* running: rendered for this snapshot */
                add_job_docs(s, job, &now_docs, &jobs, &stages);
                frozen_free(&now_docs);
            } else {
                jobs.failed = stages.failed = 1;
            }
        }
    list_finish(s, "/api/v1/jobs", &jobs);
    list_finish(s, "/api/v1/stages", &stages);
}

static void add_queries(snapshot *s, const em_query_view *views, size_t n)
{
    json_t *list = json_array();
    char path[48];
    for (size_t i = 0; i < n; i++) {
        json_t *q = em_doc_query(&views[i]);
        json_array_append(list, q);
        snprintf(path, sizeof path, "/api/v1/streaming/queries/%llu",
                 (unsigned long long)views[i].id);
        add_json(s, path, q);
        snprintf(path, sizeof path, "/api/v1/streaming/queries/%llu/batches",
                 (unsigned long long)views[i].id);
        add_json(s, path, em_doc_query_batches(&views[i]));
    }
    add_json(s, "/api/v1/streaming/queries", list);
}

void em_status_publish(em_status *st, const em_sched *sched, em_streams *streams,
                       const char *driver_url, const em_wire_counts *wire, int64_t now)
{
    snapshot next = {0};
    em_query_view *views = NULL;
    size_t n_views = streams ? em_streams_view(streams, &views) : 0;
    add_queries(&next, views, n_views);
    add_json(&next, "/api/v1/driver", em_doc_driver(sched, driver_url, wire));
    add_json(&next, "/api/v1/executors", em_doc_executors(sched, now));
    add_json(&next, "/api/v1/storage", em_doc_storage(sched));
    add_json(&next, "/api/v1/submissions/failed", em_doc_submit_failures(sched));
    add_jobs(&next, st, sched, now);
    prune_frozen(st);
    add(&next, "/metrics", "text/plain; version=0.0.4; charset=utf-8",
        em_text_take(em_metrics_render(sched, wire, views, n_views, now)));
    free(views);
    qsort(next.docs, next.n, sizeof *next.docs, doc_cmp);
    pthread_mutex_lock(&st->lock);
    snapshot old = st->current;
    st->current = next;
    pthread_mutex_unlock(&st->lock);
    snapshot_free(&old);
}

/* ---- HTTP (libmicrohttpd) ------------------------------------------------------------------ */

/* error_answer: a JSON error document */
static void error_answer(em_http_answer *a, unsigned status, const char *message, const char *path)
{
    json_t *j = json_pack("{s:s, s:s, s:i}", "error", message, "path", path, "status", status);
    a->status = status;
    a->type = json_mime;
    a->body = json_dumps(j, JSON_COMPACT);
    a->len = a->body ? strlen(a->body) : 0;
    a->allow = status == 405 ? "GET, HEAD" : NULL;
    json_decref(j);
}

/* ---- stopping a query: the one request that changes something ---------------------------- */

void em_status_allow_stop(em_status *st, const em_secret *secret,
                          int (*stop_query)(void *arg, const char *name), void *arg)
{
    if (!secret->set) return; /* no secret, no token: stopping over HTTP stays off */
    st->secret = *secret;
    st->stop_arg = arg;
    st->stop_query = stop_query;
}

/* stop_target: the query name of a /api/v1/streaming/queries/NAME/stop path, copied into
 * name (NULL: not such a path) */
static const char *stop_target(const char *path, char *name, size_t len)
{
    static const char prefix[] = "/api/v1/streaming/queries/", suffix[] = "/stop";
    size_t n = strlen(path);
    if (strncmp(path, prefix, sizeof prefix - 1) != 0 || n < sizeof prefix + sizeof suffix - 1 ||
        strcmp(path + n - (sizeof suffix - 1), suffix) != 0)
        return NULL;
    size_t name_len = n - (sizeof prefix - 1) - (sizeof suffix - 1);
    if (name_len >= len) name_len = len - 1;
    memcpy(name, path + sizeof prefix - 1, name_len);
    name[name_len] = '\0';
    return name;
}

/* stop_answer: POST /api/v1/streaming/queries/NAME/stop with the stop token as a bearer
 * token asks the query to stop after its running batch, as ember-submit --stop does */
static void stop_answer(em_status *st, const char *name, const char *authorization,
                        const char *path, em_http_answer *a)
{
    static const char bearer[] = "Bearer ";
    if (!st->stop_query) {
        error_answer(a, 403,
                     "stopping queries over HTTP needs the cluster secret, and this driver runs "
                     "without one: use ember-submit --stop NAME",
                     path);
        return;
    }
    if (!authorization || strncmp(authorization, bearer, sizeof bearer - 1) != 0 ||
        !em_secret_token_matches(&st->secret, EM_STOP_TOKEN_PURPOSE,
                                 authorization + sizeof bearer - 1)) {
        em_warn("query stop refused over HTTP reason=\"%s\"",
                authorization ? "wrong token" : "no token");
        error_answer(a, 401,
                     "a stop needs 'Authorization: Bearer TOKEN', TOKEN from ember-secret "
                     "--stop-token on a host holding the cluster secret",
                     path);
        a->authenticate = "Bearer realm=\"ember\"";
        return;
    }
    if (!em_valid_text(name, EM_QUERY_NAME_MAX) || strchr(name, '/')) {
        error_answer(a, 400, "no valid query name", path);
        return;
    }
    if (!st->stop_query(st->stop_arg, name)) {
        error_answer(a, 404, "no query by that name", path);
        return;
    }
    em_info("query stop asked over HTTP name=%s", name);
    json_t *j = json_pack("{s:s, s:b}", "query", name, "stop_requested", 1);
    a->status = 202;
    a->type = json_mime;
    a->body = json_dumps(j, JSON_COMPACT);
    a->len = a->body ? strlen(a->body) : 0;
    json_decref(j);
}

/* copy_answer: a copy of text */
static void copy_answer(em_http_answer *a, const char *type, const char *text, size_t len)
{
    a->status = 200;
    a->type = type;
    a->allow = NULL;
    a->body = malloc(len + 1);
    a->len = a->body ? len : 0;
    if (a->body) memcpy(a->body, text, len);
    if (!a->body) a->status = 500;
}

void em_status_answer(em_status *st, const char *method, const char *url, const char *authorization,
                      em_http_answer *a)
{
    char path[256], name[EM_QUERY_NAME_MAX + 2];
    *a = (em_http_answer){0};
    snprintf(path, sizeof path, "%s", url);
    path[strcspn(path, "?#")] = '\0';
    const char *stop = stop_target(path, name, sizeof name);
    if (stop && strcmp(method, "POST") == 0) {
        stop_answer(st, stop, authorization, path, a);
        return;
    }
    if (stop) {
        error_answer(a, 405, "stop a query with POST", path);
        a->allow = "POST";
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        error_answer(a, 405,
                     "the status endpoint is read-only (but for POST .../queries/NAME/stop): use "
                     "GET",
                     path);
        return;
    }
    if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        copy_answer(a, "text/html; charset=utf-8", em_status_page, strlen(em_status_page));
        return;
    }
    doc key;
    snprintf(key.path, sizeof key.path, "%s", path);
    pthread_mutex_lock(&st->lock);
    doc *found = strlen(path) < sizeof key.path
                     ? bsearch(&key, st->current.docs, st->current.n, sizeof key, doc_cmp)
                     : NULL;
    if (found) copy_answer(a, found->type, found->text->data, found->text->len);
    pthread_mutex_unlock(&st->lock);
    if (!found) error_answer(a, 404, "no such path", path);
}

/* serve answers one request on libmicrohttpd's thread; it never touches the driver's state */
static enum MHD_Result serve(void *arg, struct MHD_Connection *conn, const char *url,
                             const char *method, const char *version, const char *upload,
                             size_t *upload_size, void **request)
{
    (void)version;
    (void)upload;
    (void)request;
    em_http_answer a;
    em_status_answer(arg, method, url,
                     MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"), &a);
    *upload_size = 0; /* a body, if any, is not read */
    struct MHD_Response *res =
        a.body ? MHD_create_response_from_buffer(a.len, a.body, MHD_RESPMEM_MUST_FREE)
               : MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!res) {
        free(a.body);
        return MHD_NO;
    }
    MHD_add_response_header(res, "Content-Type", a.type);
    MHD_add_response_header(res, "Cache-Control", "no-store");
    if (a.allow) MHD_add_response_header(res, "Allow", a.allow);
    if (a.authenticate) MHD_add_response_header(res, "WWW-Authenticate", a.authenticate);
    enum MHD_Result rc = MHD_queue_response(conn, a.status, res);
    MHD_destroy_response(res);
    return rc;
}

/* resolve fills sa with hostport's IPv4 address and port */
static int resolve(const char *hostport, struct sockaddr_in *sa, char *host, size_t hostlen)
{
    snprintf(host, hostlen, "%s", hostport);
    char *colon = strrchr(host, ':');
    if (!colon) return 0;
    *colon = '\0';
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) return 0;
    memcpy(sa, ai->ai_addr, sizeof *sa);
    freeaddrinfo(ai);
    return 1;
}

em_status *em_status_new(void)
{
    em_status *st = calloc(1, sizeof *st);
    if (st) pthread_mutex_init(&st->lock, NULL);
    return st;
}

int em_status_start(em_status **out, const char *hostport, const em_tls_files *tls, char *err,
                    size_t errlen)
{
    em_status *st = em_status_new();
    if (!st) return EMBER_ERR_NOMEM;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (tls && tls->cert[0]) { /* HTTPS, with the driver's certificate */
        st->tls_cert = em_tls_read(tls->cert);
        st->tls_key = em_tls_read(tls->key);
        if (!st->tls_cert || !st->tls_key) {
            snprintf(err, errlen, "cannot serve status over HTTPS: cannot read %s and %s",
                     tls->cert, tls->key);
            em_status_stop(st);
            return EMBER_ERR_INVALID;
        }
        flags |= MHD_USE_TLS;
    }
    struct sockaddr_in sa;
    char host[128];
    if (!resolve(hostport, &sa, host, sizeof host)) {
        snprintf(err, errlen, "cannot serve status on %s: not an IPv4 host:port", hostport);
        em_status_stop(st);
        return EMBER_ERR_INVALID;
    }
    /* bounded: idle connections close after a while, and one client cannot take them all */
    struct MHD_OptionItem https[] = {{MHD_OPTION_HTTPS_MEM_CERT, 0, st->tls_cert},
                                     {MHD_OPTION_HTTPS_MEM_KEY, 0, st->tls_key},
                                     {MHD_OPTION_END, 0, NULL}};
    st->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, serve, st, MHD_OPTION_ARRAY, st->tls_cert ? https : https + 2,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)STATUS_MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)STATUS_MAX_PER_CLIENT, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)STATUS_IDLE_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 << 10), MHD_OPTION_END);
    if (!st->daemon) { /* the words of nng's listeners, which the deploy scripts read */
        int e = errno;
        snprintf(err, errlen, "cannot serve status on %s: %s", hostport,
                 e == EADDRINUSE      ? "Address in use"
                 : e == EADDRNOTAVAIL ? "Address invalid"
                                      : strerror(e));
        em_status_stop(st);
        return e == EADDRINUSE ? EMBER_ERR_IO : EMBER_ERR_INVALID;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(st->daemon, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(st->url, sizeof st->url, "%s://%s:%u", st->tls_cert ? "https" : "http", host,
             info ? info->port : 0);
    *out = st;
    return EMBER_OK;
}

const char *em_status_url(const em_status *st) { return st->url; }

void em_status_stop(em_status *st)
{
    if (!st) return;
    if (st->daemon) MHD_stop_daemon(st->daemon);
    free(st->tls_cert);
    free(st->tls_key);
    snapshot_free(&st->current);
    for (size_t i = 0; i < st->n_frozen; i++) frozen_free(&st->frozen[i]);
    free(st->frozen);
    pthread_mutex_destroy(&st->lock);
    free(st);
}
