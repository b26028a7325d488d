/* em_executors.c -- the executor registry: registration, liveness, loss.
 *
 * An executor is lost when its connection drops or when nothing arrives from it for
 * executor_timeout_ms (its long poll returns every heartbeat_ms, so a live executor is heard
 * from at least that often). A lost executor's running tasks go back to their stages' queues.
 * Ids are never reused: an executor that comes back registers as a new one.
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    em_reuse_forget_executor(d, ex->id);
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

void em_exec_check_timeouts(em_driver *d, int64_t now)
{
    int64_t limit = (int64_t)d->cfg.executor_timeout_ms * 1000;
    for (size_t i = 0; i < d->n_execs; i++) {
        em_exec *ex = &d->execs[i];
        if (ex->state == EM_EXEC_ALIVE && now - ex->last_seen_us > limit) {
            char why[96];
            snprintf(why, sizeof why, "no heartbeat for %u ms", d->cfg.executor_timeout_ms);
            em_exec_lost(d, ex, why);
        }
    }
}
