/* em_driver.c -- the driver's loop: requests decoded into scheduler events, effects carried
 * out.
 *
 * Every request is decoded and validated here, and only here; the scheduler gets domain
 * values. Requests that must wait are parked: an executor's Poll until it gets tasks or a
 * heartbeat passes, a SubmitJob until its job ends. After each event the loop carries out the
 * scheduler's effects in order; a send that fails becomes an event of its own (the executor
 * is lost), never a call back into the middle of a transition.
 */
#include "em_driver.h"

#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "em_graph.h"
#include "em_libstore.h"
#include "em_log.h"
#include "em_status.h"
#include "em_stream_runner.h"
#include "em_time.h"

/* the longest the loop sleeps when nothing arrives: timers (heartbeats, executor timeouts)
 * and closed connections are looked at this often */
#define LOOP_TICK_MS 100
/* the status snapshot is rebuilt at most this often, and at most this share of the loop's
 * time goes to it (on a loaded machine it waits longer, not the tasks' results) */
#define SNAPSHOT_MIN_MS  50
#define SNAPSHOT_SHARE_X 5 /* 1 / 5 */
/* the scheduler's timers (heartbeats, timeouts, locality waits) are looked at this often */
#define TICK_MS 10

void em_driver_config_defaults(em_driver_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->listen, sizeof cfg->listen, "tcp://127.0.0.1:7077");
    snprintf(cfg->status, sizeof cfg->status, "127.0.0.1:4040");
    cfg->max_message = 256u << 20;
    cfg->max_library = 128u << 20;
    cfg->sched = em_sched_config_defaults();
}

/* ---- parked requests ---------------------------------------------------------------------- */

/* take_poll takes ex's parked Poll out into *out; 0 if it has none */
static int take_poll(em_driver *d, em_exec_id ex, em_request *out)
{
    for (size_t i = 0; i < d->n_polls; i++)
        if (d->polls[i].ex.v == ex.v) {
            *out = d->polls[i].req;
            d->polls[i] = d->polls[--d->n_polls];
            return 1;
        }
    return 0;
}

/* park_poll keeps ex's Poll until the scheduler answers it; an older one is answered empty. */
static int park_poll(em_driver *d, em_exec_id ex, em_request *req)
{
    em_request old;
    if (take_poll(d, ex, &old)) {
        Ember__Tasks none = EMBER__TASKS__INIT;
        em_server_reply(d->srv, &old, EM_MSG_TASKS, &none.base, NULL, 0);
    }
    if (d->n_polls == d->cap_polls) {
        size_t cap = d->cap_polls ? 2 * d->cap_polls : 16;
        em_parked_poll *p = realloc(d->polls, cap * sizeof *p);
        if (!p) return 0;
        d->polls = p;
        d->cap_polls = cap;
    }
    d->polls[d->n_polls++] = (em_parked_poll){ex, *req};
    return 1;
}

static int park_job(em_driver *d, em_job_id job, em_request *req)
{
    if (d->n_parked == d->cap_parked) {
        size_t cap = d->cap_parked ? 2 * d->cap_parked : 16;
        em_parked_job *p = realloc(d->parked, cap * sizeof *p);
        if (!p) return 0;
        d->parked = p;
        d->cap_parked = cap;
    }
    d->parked[d->n_parked++] = (em_parked_job){job, *req};
    return 1;
}

/* unpark_job takes the parked submission of a job out; 0 if there is none */
static int unpark_job(em_driver *d, em_job_id job, em_request *out)
{
    for (size_t i = 0; i < d->n_parked; i++)
        if (d->parked[i].job.v == job.v) {
            *out = d->parked[i].reply;
            d->parked[i] = d->parked[--d->n_parked];
            return 1;
        }
    return 0;
}

/* ---- effects ------------------------------------------------------------------------------ */

static void job_done(em_driver *d, em_job_id id)
{
    em_request reply;
    em_job *job = em_sched_job(&d->sched, id);
    if (job && em_streams_job_done(&d->streams, job, em_now_us())) { /* a query's batch */
        em_session_id batches = job->session;
        if (d->status) em_status_job_finished(d->status, job);
        em_sched_job_release(&d->sched, id);
        /* nothing of a batch is read by the next: its shuffle outputs go now */
        em_sched_session_ended(&d->sched, batches, em_now_us());
        return;
    }
    int parked = unpark_job(d, id, &reply);
    if (job && parked && em_wire_send_result(d, &reply, job) != EMBER_OK)
        em_warn("job result not delivered job=%llu", (unsigned long long)id.v);
    else if (parked && !job)
        em_server_drop(&reply);
    if (!job) return;
    if (d->status) em_status_job_finished(d->status, job); /* its task lists, rendered once */
    em_sched_job_release(&d->sched, id);
}

/* carry_out does what the scheduler asked, until it asks nothing more. */
static void carry_out(em_driver *d)
{
    em_effect e;
    em_request poll;
    while (em_sched_next_effect(&d->sched, &e)) {
        int parked = e.kind != EM_EFFECT_JOB_DONE && take_poll(d, e.ex, &poll);
        switch (e.kind) {
        case EM_EFFECT_TASKS:
            if (parked && em_wire_send_tasks(d, &poll, &e) != EMBER_OK) {
                em_exec *ex = em_sched_exec(&d->sched, e.ex);
                if (ex) em_sched_executor_lost(&d->sched, ex, "cannot send tasks", em_now_us());
            }
            break;
        case EM_EFFECT_RELEASE_POLL:
            if (parked) em_server_drop(&poll);
            break;
        case EM_EFFECT_DISCONNECT:
            if (parked) em_server_drop(&poll);
            em_server_close_session(d->srv, e.session.v);
            break;
        case EM_EFFECT_JOB_DONE: job_done(d, e.job); break;
        }
    }
}

/* ---- requests ----------------------------------------------------------------------------- */

static em_store_stats store_stats(const Ember__StoreStats *m)
{
    return m ? (em_store_stats){m->memory_used,          m->blocks,    m->disk_used,
                                m->spilled_bytes,        m->rss_bytes, m->kafka_fetched_records,
                                m->kafka_fetch_fallbacks}
             : (em_store_stats){0};
}

/* known_executor finds the live executor behind a request, or answers it. */
static em_exec *known_executor(em_driver *d, em_request *req, uint32_t claimed_id)
{
    em_exec *ex =
        em_sched_executor(&d->sched, (em_session_id){req->session}, (em_exec_id){claimed_id});
    if (!ex)
        em_server_reply_error(d->srv, req, EMBER_ERR_STATE, "unknown executor: register again");
    return ex;
}

int em_valid_text(const char *s, size_t max)
{
    if (!s || !s[0] || strnlen(s, max + 1) > max) return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\') return 0;
    return 1;
}

/* valid_address: a block service address executors can dial */
static int valid_address(const char *a)
{
    return em_valid_text(a, 255) &&
           (strncmp(a, "tcp://", 6) == 0 || strncmp(a, "tls+tcp://", 10) == 0 ||
            strncmp(a, "inproc://", 9) == 0) &&
           !strchr(a, ' ');
}

static void handle_register(em_driver *d, em_request *req)
{
    Ember__Register *r = em_frame_unpack(&req->frame, EM_MSG_REGISTER);
    if (!r || !valid_address(r->address) || !em_valid_text(r->host, 127) || r->slots == 0 ||
        r->slots > 4096 || r->pid <= 0) {
        em_pb_free(r);
        em_server_reply_error(d->srv, req, EMBER_ERR_INVALID,
                              "Register: need a tcp:// address, a host, a pid and 1..4096 slots");
        return;
    }
    em_exec_info info = {r->address, r->host, r->pid, r->slots, r->memory_cap};
    em_exec_id id;
    int rc = em_sched_register(&d->sched, (em_session_id){req->session}, &info, em_now_us(), &id);
    if (rc == EMBER_ERR_TOO_LARGE) {
        em_server_reply_error(d->srv, req, rc,
                              "the driver has %u executors alive, its limit (--max-executors)",
                              d->sched.cfg.max_executors);
    } else if (rc != EMBER_OK) {
        em_server_reply_error(d->srv, req, rc, "driver out of memory");
    } else {
        Ember__Registered reg = EMBER__REGISTERED__INIT;
        reg.executor_id = id.v;
        reg.heartbeat_ms = d->sched.cfg.heartbeat_ms;
        em_server_reply(d->srv, req, EM_MSG_REGISTERED, &reg.base, NULL, 0);
    }
    em_pb_free(r);
}

static void handle_poll(em_driver *d, em_request *req)
{
    Ember__Poll *p = em_frame_unpack(&req->frame, EM_MSG_POLL);
    em_exec *ex = p ? known_executor(d, req, p->executor_id) : NULL;
    if (!p) em_server_reply_error(d->srv, req, EMBER_ERR_MALFORMED, "unreadable Poll");
    if (ex) {
        int64_t now = em_now_us();
        em_store_stats store = store_stats(p->store);
        em_sched_heard(&d->sched, ex, &store, now);
        if (park_poll(d, ex->id, req))
            em_sched_wait_for_tasks(&d->sched, ex, now);
        else
            em_server_reply_error(d->srv, req, EMBER_ERR_NOMEM, "driver out of memory");
    }
    em_pb_free(p);
}

/* results_fit: the results' data lengths add up to no more than the data part */
static size_t results_fit(const Ember__Report *r, size_t data_len)
{
    uint64_t off = 0;
    for (size_t i = 0; i < r->n_results; i++) {
        if (r->results[i]->data_len > data_len - off) return i;
        off += r->results[i]->data_len;
    }
    return r->n_results;
}

static void handle_report(em_driver *d, em_request *req)
{
    Ember__Report *r = em_frame_unpack(&req->frame, EM_MSG_REPORT);
    if (!r) {
        em_server_reply_error(d->srv, req, EMBER_ERR_MALFORMED, "unreadable Report");
        return;
    }
    em_exec *ex = known_executor(d, req, r->executor_id);
    if (ex) {
        int64_t now = em_now_us();
        size_t n = results_fit(r, req->frame.data_len);
        if (n < r->n_results) em_warn("report with results beyond its data executor=%u", ex->id.v);
        em_store_stats store = store_stats(r->store);
        em_sched_heard(&d->sched, ex, &store, now);
        em_sched_task_results(&d->sched, ex, r->results, n, req->frame.data, req->frame.data_len,
                              r->evicted, r->n_evicted, now);
        Ember__ReportReply rr = EMBER__REPORT_REPLY__INIT;
        rr.known = 1;
        em_server_reply(d->srv, req, EM_MSG_REPORT_REPLY, &rr.base, NULL, 0);
    }
    em_pb_free(r);
}

static void reply_known(em_driver *d, em_request *req, int known)
{
    Ember__ReportReply rr = EMBER__REPORT_REPLY__INIT;
    rr.known = known;
    em_server_reply(d->srv, req, EM_MSG_REPORT_REPLY, &rr.base, NULL, 0);
}

static void handle_goodbye(em_driver *d, em_request *req)
{
    Ember__Goodbye *g = em_frame_unpack(&req->frame, EM_MSG_GOODBYE);
    em_session_id session = {req->session};
    em_exec *ex = g && g->executor_id ? em_sched_executor(&d->sched, session, EM_NO_EXEC) : NULL;
    if (!g) {
        em_server_reply_error(d->srv, req, EMBER_ERR_MALFORMED, "unreadable Goodbye");
    } else if (g->executor_id) {
        reply_known(d, req, ex != NULL);
        if (ex) em_sched_executor_stopped(&d->sched, ex, em_now_us());
    } else {
        reply_known(d, req, 1);
        em_sched_session_ended(&d->sched, session, em_now_us());
        em_streams_owner_gone(&d->streams, session);
    }
    em_pb_free(g);
}

/* handle_submit_failed lists a job that failed in its submitter (bounded, printable text) */
static void handle_submit_failed(em_driver *d, em_request *req)
{
    Ember__SubmitFailed *f = em_frame_unpack(&req->frame, EM_MSG_SUBMIT_FAILED);
    if (!f || !em_valid_text(f->name, 127) || !em_valid_text(f->submitter, 127) ||
        !em_valid_text(f->action, 31) || !em_valid_text(f->error, 511)) {
        em_server_reply_error(d->srv, req, EMBER_ERR_MALFORMED, "unreadable SubmitFailed");
    } else {
        em_warn("job failed in its submitter name=\"%s\" submitter=%s action=%s error=\"%s\"",
                f->name, f->submitter, f->action, f->error);
        em_sched_submit_failed(&d->sched, f->name, f->submitter, f->action, f->error, em_unix_ms());
        reply_known(d, req, 1);
    }
    em_pb_free(f);
}

static void handle_crashed(em_driver *d, em_request *req)
{
    Ember__ExecutorCrashed *c = em_frame_unpack(&req->frame, EM_MSG_EXECUTOR_CRASHED);
    em_exec *ex = c ? em_sched_exec(&d->sched, (em_exec_id){c->executor_id}) : NULL;
    if (ex && (c->pid <= 0 || c->pid != ex->pid)) ex = NULL; /* not the process we know */
    char reason[256] = "";
    if (c && em_valid_text(c->reason, sizeof reason - 1))
        snprintf(reason, sizeof reason, "%s", c->reason);
    em_crash crash = {c ? c->signal : 0, c ? c->exit_status : 0, reason, c ? c->task_ids : NULL,
                      c ? c->n_task_ids : 0};
    int applied = ex && em_sched_executor_crashed(&d->sched, ex, &crash, em_now_us());
    if (!c)
        em_server_reply_error(d->srv, req, EMBER_ERR_MALFORMED, "unreadable ExecutorCrashed");
    else
        reply_known(d, req, applied);
    if (c && !applied)
        em_warn("crash report for an executor not known executor=%u pid=%d", c->executor_id,
                c->pid);
    em_pb_free(c);
}

static void handle_submit(em_driver *d, em_request *req)
{
    char why[512];
    Ember__SubmitJob *s = em_frame_unpack(&req->frame, EM_MSG_SUBMIT_JOB);
    int rc = EMBER_ERR_INVALID;
    em_job_id job;
    if (!s || !s->graph || strnlen(s->name, 128) > 127 || strnlen(s->submitter, 128) > 127)
        snprintf(why, sizeof why, "SubmitJob: unreadable request");
    else if ((rc = em_graph_validate(s->graph, req->frame.data_len, why, sizeof why)) != EMBER_OK)
        ;
    else if (!em_libstore_has(d->libs, s->graph->library_sha256.data))
        rc = EMBER_ERR_NOT_FOUND,
        snprintf(why, sizeof why, "job library %s was not uploaded to the driver",
                 s->graph->library_name);
    else
        rc = em_sched_submit(&d->sched, (em_session_id){req->session}, s, req->frame.data,
                             req->frame.data_len, em_now_us(), &job, why, sizeof why);
    if (rc == EMBER_OK) em_driver_stamp_job(d, job);
    if (rc == EMBER_OK && !park_job(d, job, req)) {
        em_warn("job result cannot be delivered (driver out of memory) job=%llu",
                (unsigned long long)job.v);
        em_server_drop(req);
    }
    if (rc == EMBER_OK) return;
    em_pb_free(s);
    em_warn("job rejected reason=\"%s\"", why);
    em_server_reply_error(d->srv, req, rc, "%s", why);
}

static void handle_progress(em_driver *d, em_request *req)
{
    Ember__JobProgress *q = em_frame_unpack(&req->frame, EM_MSG_JOB_PROGRESS);
    Ember__JobProgressReply r = EMBER__JOB_PROGRESS_REPLY__INIT;
    const em_job *job =
        q ? em_sched_job_by_token(&d->sched, (em_session_id){req->session}, q->client_token) : NULL;
    if (job) {
        r.found = 1;
        r.job_id = job->id.v;
        r.stages = (uint32_t)job->n_stages;
        for (size_t i = 0; i < job->n_stages; i++)
            r.stages_done +=
                job->stages[i].state == EM_RUN_SUCCEEDED || job->stages[i].state == EM_RUN_SKIPPED;
        r.tasks_done = job->tasks_done;
        r.tasks = job->tasks_total;
        r.records_in = job->records_in;
        r.elapsed_us = em_now_us() - job->submitted_us;
    }
    em_pb_free(q);
    em_server_reply(d->srv, req, EM_MSG_JOB_PROGRESS_REPLY, &r.base, NULL, 0);
}

static void handle_unpersist(em_driver *d, em_request *req)
{
    Ember__Unpersist *u = em_frame_unpack(&req->frame, EM_MSG_UNPERSIST);
    char why[512] = "unreadable Unpersist";
    uint64_t *fp = NULL;
    int rc = u && u->graph ? em_graph_validate(u->graph, req->frame.data_len, why, sizeof why)
                           : EMBER_ERR_MALFORMED;
    if (rc == EMBER_OK && !(fp = malloc(u->graph->n_nodes * sizeof *fp))) rc = EMBER_ERR_NOMEM;
    em_buf data = {(uint8_t *)req->frame.data, req->frame.data_len, req->frame.data_len};
    if (rc == EMBER_OK) rc = em_fingerprint_nodes(u->graph, &data, fp);
    if (rc == EMBER_OK) {
        em_sched_unpersist(&d->sched, (em_session_id){req->session}, fp[u->graph->target]);
        reply_known(d, req, 1);
    } else {
        em_server_reply_error(d->srv, req, rc, "%s", rc == EMBER_ERR_NOMEM ? "out of memory" : why);
    }
    free(fp);
    em_pb_free(u);
}

static void handle_has_library(em_driver *d, em_request *req)
{
    Ember__HasLibrary *h = em_frame_unpack(&req->frame, EM_MSG_HAS_LIBRARY);
    if (!h || h->sha256.len != 32) {
        em_server_reply_error(d->srv, req, EMBER_ERR_MALFORMED, "HasLibrary needs a SHA-256");
    } else {
        Ember__HasLibraryReply r = EMBER__HAS_LIBRARY_REPLY__INIT;
        r.present = em_libstore_has(d->libs, h->sha256.data);
        em_server_reply(d->srv, req, EM_MSG_HAS_LIBRARY_REPLY, &r.base, NULL, 0);
    }
    em_pb_free(h);
}

static void handle_put_library(em_driver *d, em_request *req)
{
    Ember__PutLibrary *p = em_frame_unpack(&req->frame, EM_MSG_PUT_LIBRARY);
    char why[512];
    int rc = EMBER_ERR_MALFORMED;
    snprintf(why, sizeof why, "PutLibrary needs a SHA-256 and a name");
    if (p && req->frame.data_len > d->cfg.max_library) {
        rc = EMBER_ERR_TOO_LARGE;
        snprintf(why, sizeof why,
                 "job library of %zu bytes is over the driver's limit of %llu MiB "
                 "(--max-library-mb)",
                 req->frame.data_len, (unsigned long long)(d->cfg.max_library >> 20));
    } else if (p && p->sha256.len == 32 && strnlen(p->name, 256) < 256) {
        rc = em_libstore_put(d->libs, p->sha256.data, p->name, req->frame.data, req->frame.data_len,
                             why, sizeof why);
    }
    if (rc == EMBER_OK) {
        Ember__HasLibraryReply r = EMBER__HAS_LIBRARY_REPLY__INIT;
        r.present = 1;
        em_server_reply(d->srv, req, EM_MSG_HAS_LIBRARY_REPLY, &r.base, NULL, 0);
    } else {
        em_server_reply_error(d->srv, req, rc, "%s", why);
    }
    em_pb_free(p);
}

static void handle_fetch_library(em_driver *d, em_request *req)
{
    Ember__FetchLibrary *f = em_frame_unpack(&req->frame, EM_MSG_FETCH_LIBRARY);
    size_t len = 0;
    const void *bytes =
        f && f->sha256.len == 32 ? em_libstore_get(d->libs, f->sha256.data, &len) : NULL;
    if (!bytes) {
        em_server_reply_error(d->srv, req, EMBER_ERR_NOT_FOUND,
                              "job library not held by the driver");
    } else {
        Ember__LibraryData ld = EMBER__LIBRARY_DATA__INIT;
        ld.sha256 = f->sha256;
        em_iov iov = {bytes, len};
        em_server_reply(d->srv, req, EM_MSG_LIBRARY_DATA, &ld.base, &iov, 1);
    }
    em_pb_free(f);
}

static void handle_request(em_driver *d, em_request *req)
{
    switch (req->frame.type) {
    case EM_MSG_REGISTER: handle_register(d, req); break;
    case EM_MSG_POLL: handle_poll(d, req); break;
    case EM_MSG_REPORT: handle_report(d, req); break;
    case EM_MSG_SUBMIT_JOB: handle_submit(d, req); break;
    case EM_MSG_JOB_PROGRESS: handle_progress(d, req); break;
    case EM_MSG_GOODBYE: handle_goodbye(d, req); break;
    case EM_MSG_SUBMIT_FAILED: handle_submit_failed(d, req); break;
    case EM_MSG_EXECUTOR_CRASHED: handle_crashed(d, req); break;
    case EM_MSG_UNPERSIST: handle_unpersist(d, req); break;
    case EM_MSG_HAS_LIBRARY: handle_has_library(d, req); break;
    case EM_MSG_PUT_LIBRARY: handle_put_library(d, req); break;
    case EM_MSG_FETCH_LIBRARY: handle_fetch_library(d, req); break;
    case EM_MSG_START_QUERY:
    case EM_MSG_GET_QUERY:
    case EM_MSG_STOP_QUERY: em_driver_query_request(d, req); break;
    default:
        em_warn("unexpected request type=%s pipe=%u", em_msg_name(req->frame.type), req->pipe);
        em_server_reply_error(d->srv, req, EMBER_ERR_PROTOCOL, "the driver does not serve %s",
                              em_msg_name(req->frame.type));
    }
}

/* closed_connections: an executor's closed connection, or a session's last one */
static void closed_connections(em_driver *d, int64_t now)
{
    em_conn peers[64];
    int n;
    while ((n = em_server_closed(d->srv, peers, 64)) > 0)
        for (int i = 0; i < n; i++) {
            em_session_id session = {peers[i].session};
            if (!session.v || em_server_session_connected(d->srv, session.v)) continue;
            em_exec *ex = em_sched_executor(&d->sched, session, EM_NO_EXEC);
            if (ex) {
                em_sched_executor_closed(&d->sched, ex, now);
            } else {
                em_sched_session_detached(&d->sched, session, now);
                em_streams_owner_gone(&d->streams, session); /* its client-mode queries */
            }
            carry_out(d);
        }
}

/* on_hello gives each new client a session, and a reconnecting one its old session back. */
static int on_hello(void *arg, em_role role, uint64_t wanted, Ember__HelloReply *reply,
                    uint64_t *session, char *err, size_t errlen)
{
    em_driver *d = arg;
    (void)role;
    reply->kafka_bootstrap = d->cfg.kafka;
    if (wanted) {
        *session = wanted;
        em_sched_session_attached(&d->sched, (em_session_id){wanted});
        return EMBER_OK;
    }
    do
        if (getrandom(session, sizeof *session, 0) != sizeof *session) {
            snprintf(err, errlen, "driver cannot make a session id");
            return EMBER_ERR_IO;
        }
    while (*session == 0);
    return EMBER_OK;
}

void em_driver_stamp_job(em_driver *d, em_job_id id)
{
    em_job *job = em_sched_job(&d->sched, id);
    if (job) job->submitted_unix_ms = em_unix_ms();
}

static void wake_loop(void *arg) { em_server_wake(((em_driver *)arg)->srv); }

/* stop_query: the status endpoint's stop (its own thread; the query registry is locked) */
static int stop_query(void *arg, const char *name)
{
    em_driver *d = arg;
    return em_streams_stop(&d->streams, name);
}

int em_driver_start(em_driver *d, char *err, size_t errlen)
{
    em_sched_init(&d->sched, &d->cfg.sched);
    em_streams_init(&d->streams);
    d->streams_ready = 1;
    if (!d->cfg.secret.set && !em_url_is_local(d->cfg.listen)) {
        snprintf(err, errlen,
                 "refusing to listen on %s without a cluster secret: anyone reaching it could run "
                 "code on every executor; create one with ember-secret (docs/security.md)",
                 d->cfg.listen);
        return EMBER_ERR_UNAUTHENTICATED;
    }
    d->libs = em_libstore_new(1ull << 30);
    if (!d->libs) return EMBER_ERR_NOMEM;
    em_server_opts so = {.max_recv = d->cfg.max_message,
                         .tls = &d->cfg.tls,
                         .secret = &d->cfg.secret,
                         .roles = EM_ROLE_SUBMITTER | EM_ROLE_EXECUTOR | EM_ROLE_SUPERVISOR};
    int rc =
        em_server_open(&d->srv, d->cfg.listen, &so, d->bound_url, sizeof d->bound_url, err, errlen);
    if (rc != EMBER_OK) return rc;
    em_server_on_hello(d->srv, on_hello, d);
    d->streams.wake_loop = wake_loop;
    d->streams.wake_arg = d;
    if (d->cfg.state_dir[0]) d->streams.state_dir = d->cfg.state_dir;
    em_driver_restore_queries(d);
    if ((rc = em_stream_runner_start(&d->streams, &d->runner, err, errlen)) != EMBER_OK) return rc;
    if (d->cfg.status[0] &&
        (rc = em_status_start(&d->status, d->cfg.status, &d->cfg.tls, err, errlen)) != EMBER_OK)
        return rc;
    if (d->status) em_status_allow_stop(d->status, &d->cfg.secret, stop_query, d);
    em_wire_counts none = {0, 0};
    if (d->status)
        em_status_publish(d->status, &d->sched, &d->streams, d->bound_url, &none, em_now_us());
    em_info("driver listening url=%s status=%s kafka=%s authentication=%s", d->bound_url,
            d->status ? em_status_url(d->status) : "off", d->cfg.kafka[0] ? d->cfg.kafka : "none",
            d->cfg.secret.set ? "cluster secret" : "none (loopback only)");
    return EMBER_OK;
}

/* changed: the scheduler or the streaming queries changed since the last snapshot */
static int changed(em_driver *d)
{
    return d->sched.changes != d->published || d->streams.changes != d->published_streams;
}

/* snapshot_gap_us: the least time between two snapshots, SNAPSHOT_MIN_MS or longer when the
 * last one took more than a SNAPSHOT_SHARE_X-th of that */
static int64_t snapshot_gap_us(const em_driver *d)
{
    int64_t by_cost = d->snapshot_cost_us * (SNAPSHOT_SHARE_X - 1);
    return by_cost > SNAPSHOT_MIN_MS * 1000 ? by_cost : SNAPSHOT_MIN_MS * 1000;
}

/* next_wait_ms is how long the loop may sleep: a changed snapshot is published within
 * snapshot_gap_us(), otherwise the loop wakes every LOOP_TICK_MS for its timers. */
static int next_wait_ms(em_driver *d, int64_t now)
{
    if (!d->status || !(changed(d) || d->sched.jobs)) return LOOP_TICK_MS;
    int64_t due_ms = (d->snapshot_us + snapshot_gap_us(d) - now) / 1000;
    return due_ms < 1 ? 1 : due_ms > LOOP_TICK_MS ? LOOP_TICK_MS : (int)due_ms;
}

/* publish renders the status snapshot when something changed, while jobs run (their
 * durations grow), or after a second anyway -- at most every snapshot_gap_us(). */
static void publish(em_driver *d, int64_t now)
{
    if (!d->status || now - d->snapshot_us < snapshot_gap_us(d)) return;
    if (!changed(d) && !d->sched.jobs && now - d->snapshot_us < 1000000) return;
    em_wire_counts wire = {em_server_rejected(d->srv), em_server_auth_failures(d->srv)};
    em_status_publish(d->status, &d->sched, &d->streams, d->bound_url, &wire, now);
    d->snapshot_cost_us = em_now_us() - now;
    d->snapshot_us = now;
    d->published = d->sched.changes;
    d->published_streams = d->streams.changes;
}

void em_driver_run(em_driver *d)
{
    while (!d->stop) {
        em_request req;
        int rc = em_server_recv(d->srv, &req, next_wait_ms(d, em_now_us()));
        if (rc == EMBER_OK)
            handle_request(d, &req);
        else if (rc == EMBER_ERR_CANCELLED)
            break;
        carry_out(d);
        em_driver_submit_batches(d);
        carry_out(d);
        int64_t now = em_now_us();
        closed_connections(d, now);
        if (rc == EMBER_ERR_TIMEOUT || now - d->ticked_us >= TICK_MS * 1000) {
            em_sched_tick(&d->sched, now);
            carry_out(d);
            d->ticked_us = now;
        }
        publish(d, now);
    }
}

void em_driver_stop(em_driver *d)
{
    em_stream_runner_stop(d->runner); /* first: it wakes the loop through the server */
    d->runner = NULL;
    if (d->streams_ready) em_streams_fini(&d->streams);
    d->streams_ready = 0;
    em_status_stop(d->status);
    d->status = NULL;
    for (size_t i = 0; i < d->n_polls; i++) em_server_drop(&d->polls[i].req);
    for (size_t i = 0; i < d->n_parked; i++) em_server_drop(&d->parked[i].reply);
    free(d->polls);
    free(d->parked);
    d->polls = NULL;
    d->parked = NULL;
    d->n_polls = d->cap_polls = d->n_parked = 0;
    em_sched_fini(&d->sched);
    em_server_close(d->srv);
    d->srv = NULL;
    em_libstore_free(d->libs);
    d->libs = NULL;
}
