/* em_executors.c -- the executor registry: registration, liveness, loss.
 *
 * An executor is lost when its connection drops or when nothing arrives from it for
 * executor_timeout_ms (its long poll returns every heartbeat_ms, so a live executor is heard
 * from at least that often). A lost executor's running tasks go back to their stages' queues.
 * Ids are never reused: an executor that comes back registers as a new one.
 *
 * A supervised executor's monitor reports the death of its process (ExecutorCrashed: the
 * signal, the tasks it was running). The report and the closed connection arrive in either
 * order, so a connection that closes while tasks run makes its executor lost only after
 * crash_grace_ms (its parked poll dropped meanwhile: it gets no task); a report within the
 * grace makes it lost at once with the signal as the reason, which then names it in the
 * failure message of a job whose task it was running.
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_cache.h"
#include "em_driver.h"
#include "em_log.h"
#include "em_reuse.h"

em_exec *em_exec_by_pipe(em_driver *d, uint32_t pipe)
{
    for (size_t i = 0; i < d->n_execs; i++)
        if (d->execs[i].state == EM_EXEC_ALIVE && d->execs[i].pipe == pipe) return &d->execs[i];
    return NULL;
}

static int valid_text(const char *s, size_t max)
{
    if (!s || strnlen(s, max + 1) > max) return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\') return 0;
    return 1;
}

int em_exec_register(em_driver *d, em_request *req)
{
    Ember__Register *r = em_frame_unpack(&req->frame, EM_MSG_REGISTER);
    if (!r || !valid_text(r->address, 255) || !valid_text(r->host, 127) || r->slots == 0 ||
        r->slots > 4096) {
        em_pb_free(r);
        return em_server_reply_error(d->srv, req, EMBER_ERR_INVALID,
                                     "Register: need an address, a host and 1..4096 slots");
    }
    em_exec *old = em_exec_by_pipe(d, req->pipe);
    if (old) em_exec_lost(d, old, "registered again");
    if (d->n_execs == d->cap_execs) {
        size_t cap = d->cap_execs ? 2 * d->cap_execs : 16;
        em_exec *p = realloc(d->execs, cap * sizeof *p);
        if (!p) {
            em_pb_free(r);
            return em_server_reply_error(d->srv, req, EMBER_ERR_NOMEM, "driver out of memory");
        }
        d->execs = p;
        d->cap_execs = cap;
    }
    em_exec *ex = &d->execs[d->n_execs];
    memset(ex, 0, sizeof *ex);
    ex->id = (uint32_t)++d->n_execs;
    ex->pipe = req->pipe;
    snprintf(ex->address, sizeof ex->address, "%s", r->address);
    snprintf(ex->host, sizeof ex->host, "%s", r->host);
    ex->pid = r->pid;
    ex->slots = r->slots;
    ex->memory_cap = r->memory_cap;
    ex->state = EM_EXEC_ALIVE;
    ex->registered_us = ex->last_seen_us = em_now_us();
    em_pb_free(r);
    em_info("executor registered executor=%u address=%s host=%s pid=%d slots=%u", ex->id,
            ex->address, ex->host, ex->pid, ex->slots);
    d->dirty = 1;
    Ember__Registered reg = EMBER__REGISTERED__INIT;
    reg.executor_id = ex->id;
    reg.heartbeat_ms = d->cfg.heartbeat_ms;
    return em_server_reply(d->srv, req, EM_MSG_REGISTERED, &reg.base, NULL, 0);
}

/* retire takes an executor out of service: its parked poll is dropped, its running tasks
 * go back to their stages, and a lost one's connection is closed. */
static void retire(em_driver *d, em_exec *ex, em_exec_state state, const char *why, int close_pipe)
{
    ex->state = state;
    snprintf(ex->lost_reason, sizeof ex->lost_reason, "%s", why);
    if (ex->has_poll) {
        em_server_drop(&ex->poll);
        ex->has_poll = 0;
    }
    em_recover_lost_executor(d, ex);
    d->redispatch = 1; /* its tasks wait in their queues; idle executors' polls are parked */
    em_reuse_forget_executor(d, ex->id);
    em_cache_forget_executor(d, ex->id);
    ex->assigned = 0;
    if (close_pipe) em_server_close_pipe(d->srv, ex->pipe);
    d->dirty = 1;
}

void em_exec_lost(em_driver *d, em_exec *ex, const char *why)
{
    if (ex->state != EM_EXEC_ALIVE) return;
    em_warn("executor lost executor=%u address=%s reason=\"%s\" running_tasks=%u", ex->id,
            ex->address, why, ex->assigned);
    retire(d, ex, EM_EXEC_LOST, why, 1);
}

void em_exec_goodbye(em_driver *d, em_request *req)
{
    em_exec *ex = em_exec_by_pipe(d, req->pipe);
    Ember__ReportReply rr = EMBER__REPORT_REPLY__INIT;
    rr.known = ex != NULL;
    em_server_reply(d->srv, req, EM_MSG_REPORT_REPLY, &rr.base, NULL, 0);
    if (!ex) return;
    em_info("executor stopped executor=%u address=%s running_tasks=%u", ex->id, ex->address,
            ex->assigned);
    retire(d, ex, EM_EXEC_STOPPED, "stopped by its operator", 0); /* it hangs up itself */
}

void em_exec_closed(em_driver *d, em_exec *ex)
{
    if (ex->state != EM_EXEC_ALIVE || ex->closed_us) return;
    if (d->cfg.crash_grace_ms == 0 || ex->assigned == 0) {
        em_exec_lost(d, ex, "connection closed");
        return;
    }
    ex->closed_us = em_now_us();
    if (ex->has_poll) { /* nothing more for it while the grace lasts */
        em_server_drop(&ex->poll);
        ex->has_poll = 0;
    }
    em_info("executor connection closed executor=%u running_tasks=%u: lost in %u ms unless its "
            "monitor reports a crash",
            ex->id, ex->assigned, d->cfg.crash_grace_ms);
}

int em_exec_crash_ran(const em_exec *ex, uint64_t task_id)
{
    for (size_t i = 0; i < ex->n_crash_tasks; i++)
        if (ex->crash_tasks[i] == task_id) return 1;
    return 0;
}

void em_exec_crashed(em_driver *d, em_request *req)
{
    Ember__ExecutorCrashed *c = em_frame_unpack(&req->frame, EM_MSG_EXECUTOR_CRASHED);
    em_exec *ex = c ? em_exec_get(d, c->executor_id) : NULL;
    if (ex && c->pid && ex->pid && c->pid != ex->pid) ex = NULL; /* not the process we know */
    Ember__ReportReply rr = EMBER__REPORT_REPLY__INIT;
    rr.known = ex != NULL;
    if (!c)
        em_server_reply_error(d->srv, req, EMBER_ERR_MALFORMED, "unreadable ExecutorCrashed");
    else
        em_server_reply(d->srv, req, EM_MSG_REPORT_REPLY, &rr.base, NULL, 0);
    if (!ex || ex->state == EM_EXEC_STOPPED) {
        if (c)
            em_warn("crash report for an executor not known executor=%u pid=%d", c->executor_id,
                    c->pid);
        em_pb_free(c);
        return;
    }
    char why[sizeof ex->lost_reason];
    const char *abbrev = c->signal > 0 && c->signal < 128 ? sigabbrev_np(c->signal) : NULL;
    if (c->signal == 0)
        snprintf(why, sizeof why, "its process exited unexpectedly");
    else if (abbrev)
        snprintf(why, sizeof why, "killed by signal %d (SIG%s)", c->signal, abbrev);
    else
        snprintf(why, sizeof why, "killed by signal %d", c->signal);
    if (ex->state == EM_EXEC_ALIVE) {
        ex->crash_tasks = c->task_ids;
        ex->n_crash_tasks = c->n_task_ids;
        em_exec_lost(d, ex, why);
        ex->crash_tasks = NULL;
        ex->n_crash_tasks = 0;
    } else { /* lost already (no task ran, or the report came after the grace) */
        em_info("executor crash reported executor=%u reason=\"%s\" was=\"%s\"", ex->id, why,
                ex->lost_reason);
        snprintf(ex->lost_reason, sizeof ex->lost_reason, "%s", why);
        d->dirty = 1;
    }
    em_pb_free(c);
}

void em_exec_check_timeouts(em_driver *d, int64_t now)
{
    int64_t limit = (int64_t)d->cfg.executor_timeout_ms * 1000;
    int64_t grace = (int64_t)d->cfg.crash_grace_ms * 1000;
    for (size_t i = 0; i < d->n_execs; i++) {
        em_exec *ex = &d->execs[i];
        if (ex->state == EM_EXEC_ALIVE && ex->closed_us && now - ex->closed_us >= grace)
            em_exec_lost(d, ex, "connection closed");
        if (ex->state == EM_EXEC_ALIVE && now - ex->last_seen_us > limit) {
            char why[96];
            snprintf(why, sizeof why, "no heartbeat for %u ms", d->cfg.executor_timeout_ms);
            em_exec_lost(d, ex, why);
        }
    }
}
