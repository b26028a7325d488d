/* em_driver.c -- the driver's event loop and its request handlers.
 *
 * One thread runs em_driver_run: it receives validated requests from the server socket,
 * applies them to the state in em_driver.h, dispatches tasks, checks timers, and publishes
 * the status snapshot. Handlers never block: a request that must wait (a Poll with no task,
 * a SubmitJob until its job ends) is parked and answered later.
 */
#include "em_driver.h"

#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "em_cache.h"
#include "em_libstore.h"
#include "em_log.h"
#include "em_reuse.h"
#include "em_status.h"

/* the longest the loop sleeps when nothing arrives: timers (heartbeats, executor timeouts)
 * and closed connections are looked at this often */
#define LOOP_TICK_MS 100
/* the status snapshot is rebuilt at most this often */
#define SNAPSHOT_MIN_MS 50

/* known_executor finds the registered executor behind a request, or answers it. */
static em_exec *known_executor(em_driver *d, em_request *req, uint32_t claimed_id)
{
    em_exec *ex = em_exec_by_pipe(d, req->pipe);
    if (!ex || (claimed_id && ex->id != claimed_id)) {
        em_server_reply_error(d->srv, req, EMBER_ERR_STATE, "unknown executor: register again");
        return NULL;
    }
    ex->last_seen_us = em_now_us();
    return ex;
}

/* note_store records an executor's block store figures (Poll, Report). */
static void note_store(em_driver *d, em_exec *ex, uint64_t memory_used, uint64_t blocks,
                       uint64_t disk_used, uint64_t spilled_bytes)
{
    if (ex->memory_used == memory_used && ex->blocks == blocks && ex->disk_used == disk_used &&
        ex->spilled_bytes == spilled_bytes)
        return;
    ex->memory_used = memory_used;
    ex->blocks = blocks;
    ex->disk_used = disk_used;
    ex->spilled_bytes = spilled_bytes;
    d->dirty = 1;
}

static void handle_poll(em_driver *d, em_request *req)
{
    Ember__Poll *p = em_frame_unpack(&req->frame, EM_MSG_POLL);
    em_exec *ex = known_executor(d, req, p ? p->executor_id : 0);
    if (ex && p) note_store(d, ex, p->memory_used, p->blocks, p->disk_used, p->spilled_bytes);
    em_pb_free(p);
    if (ex) em_dispatch_answer_poll(d, ex, req);
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
        for (size_t i = 0; i < r->n_evicted; i++) /* before the results that caused them */
            em_cache_evicted(d, ex->id, r->evicted[i]->fingerprint, r->evicted[i]->partition);
        uint64_t off = 0;
        for (size_t i = 0; i < r->n_results; i++) {
            const Ember__TaskResult *res = r->results[i];
            if (res->data_len > req->frame.data_len - off) {
                em_warn("report with results beyond its data executor=%u", ex->id);
                break;
            }
            if (ex->assigned > 0) ex->assigned--;
            em_job_task_result(d, ex, res, req->frame.data + off);
            off += res->data_len;
        }
        note_store(d, ex, r->memory_used, r->blocks, r->disk_used, r->spilled_bytes);
        Ember__ReportReply rr = EMBER__REPORT_REPLY__INIT;
        rr.known = 1;
        em_server_reply(d->srv, req, EM_MSG_REPORT_REPLY, &rr.base, NULL, 0);
        d->dirty = 1;
        em_dispatch(d);
    }
    em_pb_free(r);
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
    if (p && p->sha256.len == 32 && strnlen(p->name, 256) < 256)
        rc = em_libstore_put(d->libs, p->sha256.data, p->name, req->frame.data, req->frame.data_len,
                             why, sizeof why);
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
    case EM_MSG_REGISTER: em_exec_register(d, req); break;
    case EM_MSG_POLL: handle_poll(d, req); break;
    case EM_MSG_REPORT: handle_report(d, req); break;
    case EM_MSG_HAS_LIBRARY: handle_has_library(d, req); break;
    case EM_MSG_PUT_LIBRARY: handle_put_library(d, req); break;
    case EM_MSG_FETCH_LIBRARY: handle_fetch_library(d, req); break;
    case EM_MSG_JOB_PROGRESS: em_job_progress(d, req); break;
    case EM_MSG_GOODBYE: em_exec_goodbye(d, req); break;
    case EM_MSG_EXECUTOR_CRASHED: em_exec_crashed(d, req); break;
    case EM_MSG_UNPERSIST: em_cache_unpersist(d, req); break;
    case EM_MSG_SUBMIT_JOB:
        if (em_job_submit(d, req) == EMBER_OK) em_dispatch(d);
        break;
    default:
        em_warn("unexpected request type=%s pipe=%u", em_msg_name(req->frame.type), req->pipe);
        em_server_reply_error(d->srv, req, EMBER_ERR_PROTOCOL, "the driver does not serve %s",
                              em_msg_name(req->frame.type));
    }
}

static void handle_closed_pipes(em_driver *d)
{
    uint32_t pipes[64];
    int n;
    while ((n = em_server_closed_pipes(d->srv, pipes, 64)) > 0)
        for (int i = 0; i < n; i++) {
            em_exec *ex = em_exec_by_pipe(d, pipes[i]);
            if (ex) em_exec_closed(d, ex);
            em_job_submitter_gone(d, pipes[i]);
        }
}

int em_driver_start(em_driver *d, char *err, size_t errlen)
{
    d->libs = em_libstore_new(1ull << 30);
    if (!d->libs) return EMBER_ERR_NOMEM;
    int rc = em_server_open(&d->srv, d->cfg.listen, d->cfg.max_message, d->cfg.kafka, d->bound_url,
                            sizeof d->bound_url, err, errlen);
    if (rc != EMBER_OK) return rc;
    if (d->cfg.status[0] && (rc = em_status_start(d, err, errlen)) != EMBER_OK) return rc;
    em_info("driver listening url=%s status=%s kafka=%s", d->bound_url,
            d->status ? em_status_url(d->status) : "off", d->cfg.kafka[0] ? d->cfg.kafka : "none");
    return EMBER_OK;
}

/* next_wait_ms is how long the loop may sleep: a changed snapshot is published within
 * SNAPSHOT_MIN_MS, otherwise the loop wakes every LOOP_TICK_MS for its timers. */
static int next_wait_ms(const em_driver *d, int64_t now)
{
    if (!d->status || !d->dirty) return LOOP_TICK_MS;
    int64_t due_ms = (d->snapshot_us + SNAPSHOT_MIN_MS * 1000 - now) / 1000;
    return due_ms < 1 ? 1 : due_ms > LOOP_TICK_MS ? LOOP_TICK_MS : (int)due_ms;
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
        int64_t now = em_now_us();
        handle_closed_pipes(d);
        em_dispatch_expire_polls(d, now);
        em_exec_check_timeouts(d, now);
        if (d->redispatch) { /* tasks went back to their queues: idle executors take them now */
            d->redispatch = 0;
            em_dispatch(d);
        }
        if (d->status && (d->dirty || now - d->snapshot_us > 1000000) &&
            now - d->snapshot_us >= SNAPSHOT_MIN_MS * 1000) {
            em_status_publish(d, em_server_rejected(d->srv));
            d->snapshot_us = now;
            d->dirty = 0;
        }
    }
}

void em_driver_stop(em_driver *d)
{
    em_status_stop(d->status);
    d->status = NULL;
    for (size_t i = 0; i < d->n_execs; i++)
        if (d->execs[i].has_poll) em_server_drop(&d->execs[i].poll);
    em_jobs_free_all(d);
    em_reuse_free(d);
    em_cache_free(d);
    em_server_close(d->srv);
    em_libstore_free(d->libs);
    free(d->execs);
}
