/* em_sched_exec.c -- the executor registry: registration, liveness, loss, crash reports.
 *
 * An executor is lost when its connection drops or when nothing arrives from it for
 * executor_timeout_ms (a waiting executor is answered every heartbeat_ms and asks again at
 * once, so a live one is heard from at least that often). A lost executor's running tasks go
 * back to their stages' queues, and the map outputs it held that running stages still read
 * are computed again (em_sched_recovery.c). Ids are never reused: an executor that comes back
 * registers as a new one.
 *
 * A supervised executor's monitor reports the death of its process (the signal, the tasks it
 * was running). The report and the closed connection arrive in either order, so a connection
 * that closes while tasks run makes its executor lost only after crash_grace_ms (it gets no
 * task meanwhile); a report within the grace makes it lost at once with the signal as the
 * reason, which then names it in the failure message of a job whose task it was running.
 */
#include <ember/ember.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_log.h"
#include "em_sched_int.h"

em_exec *em_sched_exec(const em_sched *s, em_exec_id id)
{
    size_t lo = 0, hi = s->n_execs; /* execs are sorted by id */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->execs[mid]->id.v < id.v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n_execs && s->execs[lo]->id.v == id.v ? s->execs[lo] : NULL;
}

em_exec *em_sched_executor(em_sched *s, em_session_id session, em_exec_id claimed)
{
    if (claimed.v) { /* a request that says which: no scan */
        em_exec *ex = em_sched_exec(s, claimed);
        return ex && ex->state == EM_EXEC_ALIVE && ex->session.v == session.v ? ex : NULL;
    }
    for (size_t i = s->n_execs; i-- > 0;) { /* the newest first */
        em_exec *ex = s->execs[i];
        if (ex->state == EM_EXEC_ALIVE && ex->session.v == session.v) return ex;
    }
    return NULL;
}

int em_exec_others_alive(const em_sched *s, const em_exec *ex)
{
    return s->n_alive > (ex->state == EM_EXEC_ALIVE ? 1u : 0u);
}

static void lose(em_sched *s, em_exec *ex, const char *why);

/* add_exec appends a zeroed executor with the next id; NULL without memory */
static em_exec *add_exec(em_sched *s)
{
    if (s->n_execs == s->cap_execs) {
        size_t cap = s->cap_execs ? 2 * s->cap_execs : 16;
        em_exec **p = realloc(s->execs, cap * sizeof *p);
        if (!p) return NULL;
        s->execs = p;
        s->cap_execs = cap;
    }
    em_exec *ex = calloc(1, sizeof *ex);
    if (!ex) return NULL;
    ex->id = (em_exec_id){++s->last_exec_id};
    ex->index = (uint32_t)s->n_execs;
    s->execs[s->n_execs++] = ex;
    return ex;
}

void em_exec_forget_gone(em_sched *s)
{
    size_t kept = 0, gone = s->n_gone;
    for (size_t i = 0; i < s->n_execs; i++) { /* the oldest go first */
        em_exec *ex = s->execs[i];
        if (ex->state != EM_EXEC_ALIVE && gone > s->cfg.executors_kept) {
            gone--;
            free(ex);
            continue;
        }
        ex->index = (uint32_t)kept;
        s->execs[kept++] = ex;
    }
    if (kept != s->n_execs) em_sched_changed(s);
    s->n_execs = kept;
    s->n_gone = gone;
}

int em_sched_register(em_sched *s, em_session_id session, const em_exec_info *info, int64_t now,
                      em_exec_id *out)
{
    em_sched_begin(s, now);
    em_exec *old = em_sched_executor(s, session, EM_NO_EXEC);
    if (old) { /* the same connection registers anew: it stays open for the new executor */
        em_warn("executor lost executor=%u address=%s reason=\"registered again\"", old->id.v,
                old->address);
        em_exec_retire(s, old, EM_EXEC_LOST, "registered again", 0);
    }
    em_exec *ex = s->n_alive < s->cfg.max_executors ? add_exec(s) : NULL;
    if (!ex) {
        int full = s->n_alive >= s->cfg.max_executors;
        if (full)
            em_warn("registration refused host=%s reason=\"%zu executors alive, the limit\"",
                    info->host, s->n_alive);
        em_sched_end(s);
        return full ? EMBER_ERR_TOO_LARGE : EMBER_ERR_NOMEM;
    }
    s->n_alive++;
    ex->session = session;
    snprintf(ex->address, sizeof ex->address, "%s", info->address);
    snprintf(ex->host, sizeof ex->host, "%s", info->host);
    ex->pid = info->pid;
    ex->slots = info->slots;
    ex->memory_cap = info->memory_cap;
    ex->state = EM_EXEC_ALIVE;
    ex->registered_us = ex->last_seen_us = now;
    em_info("executor registered executor=%u address=%s host=%s pid=%d slots=%u", ex->id.v,
            ex->address, ex->host, ex->pid, ex->slots);
    em_sched_changed(s);
    *out = ex->id;
    em_sched_end(s);
    return EMBER_OK;
}

void em_sched_heard(em_sched *s, em_exec *ex, const em_store_stats *store, int64_t now)
{
    ex->last_seen_us = now;
    if (!store || memcmp(&ex->store, store, sizeof *store) == 0) return;
    ex->store = *store;
    em_sched_changed(s);
}

void em_sched_wait_for_tasks(em_sched *s, em_exec *ex, int64_t now)
{
    em_sched_begin(s, now);
    ex->waiting = 1;
    ex->waiting_since_us = now;
    s->want_dispatch = 1;
    em_sched_end(s);
}

/* em_exec_retire takes an executor out of service: its poll is let go, its running tasks go
 * back to their stages, what it held is forgotten, and a lost one is disconnected. */
void em_exec_retire(em_sched *s, em_exec *ex, em_exec_state state, const char *why, int disconnect)
{
    ex->state = state;
    ex->gone_us = s->now;
    s->n_alive--;
    s->n_gone++;
    snprintf(ex->lost_reason, sizeof ex->lost_reason, "%s", why);
    if (ex->waiting) {
        em_sched_push(s, EM_EFFECT_RELEASE_POLL, ex->id, (em_job_id){0});
        ex->waiting = 0;
    }
    em_recover_lost_executor(s, ex);
    em_reuse_forget_executor(s, ex->id);
    em_cache_forget_executor(s, ex->id);
    ex->assigned = ex->running = 0;
    if (disconnect) em_sched_push_disconnect(s, ex);
    s->want_dispatch = 1; /* its tasks wait in their queues for the others */
    em_sched_changed(s);
}

static void lose(em_sched *s, em_exec *ex, const char *why)
{
    if (ex->state != EM_EXEC_ALIVE) return;
    em_warn("executor lost executor=%u address=%s reason=\"%s\" running_tasks=%u", ex->id.v,
            ex->address, why, ex->assigned);
    em_exec_retire(s, ex, EM_EXEC_LOST, why, 1);
}

void em_sched_executor_lost(em_sched *s, em_exec *ex, const char *why, int64_t now)
{
    em_sched_begin(s, now);
    lose(s, ex, why);
    em_sched_end(s);
}

void em_sched_executor_stopped(em_sched *s, em_exec *ex, int64_t now)
{
    em_sched_begin(s, now);
    if (ex->state == EM_EXEC_ALIVE) {
        em_info("executor stopped executor=%u address=%s running_tasks=%u", ex->id.v, ex->address,
                ex->assigned);
        em_exec_retire(s, ex, EM_EXEC_STOPPED, "stopped by its operator", 0); /* it hangs up */
    }
    em_sched_end(s);
}

/* start_grace: ex's connection closed while it ran tasks */
static void start_grace(em_sched *s, em_exec *ex)
{
    ex->closed_us = s->now ? s->now : 1;
    if (ex->waiting) { /* nothing more for it while the grace lasts */
        em_sched_push(s, EM_EFFECT_RELEASE_POLL, ex->id, (em_job_id){0});
        ex->waiting = 0;
    }
    em_info("executor connection closed executor=%u running_tasks=%u: lost in %u ms unless its "
            "monitor reports a crash",
            ex->id.v, ex->assigned, s->cfg.crash_grace_ms);
}

void em_sched_executor_closed(em_sched *s, em_exec *ex, int64_t now)
{
    em_sched_begin(s, now);
    if (ex->state == EM_EXEC_ALIVE && !ex->closed_us) {
        if (s->cfg.crash_grace_ms == 0 || ex->assigned == 0)
            lose(s, ex, "connection closed");
        else
            start_grace(s, ex);
    }
    em_sched_end(s);
}

int em_exec_crash_ran(const em_exec *ex, em_task_id task)
{
    for (size_t i = 0; i < ex->n_crash_tasks; i++)
        if (ex->crash_tasks[i] == task.v) return 1;
    return 0;
}

/* crash_reason says how a process died: it stopped itself (and why), killed by a signal, or
 * exited */
static void crash_reason(char *why, size_t len, const em_crash *crash)
{
    int sig = crash->signal;
    const char *abbrev = sig > 0 && sig < 128 ? sigabbrev_np(sig) : NULL;
    if (crash->reason && crash->reason[0])
        snprintf(why, len, "%s", crash->reason);
    else if (sig == 0)
        snprintf(why, len, "its process exited with status %d", crash->exit_status);
    else if (abbrev)
        snprintf(why, len, "killed by signal %d (SIG%s)", sig, abbrev);
    else
        snprintf(why, len, "killed by signal %d", sig);
}

void em_exec_cancel(em_sched *s, em_exec_id id, em_task_id task)
{
    em_exec *ex = em_sched_exec(s, id);
    if (!em_exec_alive(ex)) return;
    if (ex->n_cancels == EM_CANCELS_MAX) { /* the oldest has had many chances to go out */
        memmove(ex->cancels, ex->cancels + 1, (EM_CANCELS_MAX - 1) * sizeof *ex->cancels);
        ex->n_cancels--;
    }
    ex->cancels[ex->n_cancels++] = task.v;
    s->want_dispatch = 1; /* a waiting executor hears of it at the end of the event */
}

int em_sched_executor_crashed(em_sched *s, em_exec *ex, const em_crash *crash, int64_t now)
{
    if (ex->state == EM_EXEC_STOPPED) return 0;
    em_sched_begin(s, now);
    char why[sizeof ex->lost_reason];
    crash_reason(why, sizeof why, crash);
    if (ex->state == EM_EXEC_ALIVE) {
        ex->crash_tasks = crash->task_ids;
        ex->n_crash_tasks = crash->n_task_ids;
        lose(s, ex, why);
        ex->crash_tasks = NULL;
        ex->n_crash_tasks = 0;
    } else { /* lost already (no task ran, or the report came after the grace) */
        em_info("executor crash reported executor=%u reason=\"%s\" was=\"%s\"", ex->id.v, why,
                ex->lost_reason);
        snprintf(ex->lost_reason, sizeof ex->lost_reason, "%s", why);
        em_sched_changed(s);
    }
    em_sched_end(s);
    return 1;
}

void em_exec_check_timeouts(em_sched *s)
{
    int64_t limit = (int64_t)s->cfg.executor_timeout_ms * 1000;
    int64_t grace = (int64_t)s->cfg.crash_grace_ms * 1000;
    for (size_t i = 0; i < s->n_execs; i++) {
        em_exec *ex = s->execs[i];
        if (ex->state == EM_EXEC_ALIVE && ex->closed_us && s->now - ex->closed_us >= grace)
            lose(s, ex, "connection closed");
        if (ex->state == EM_EXEC_ALIVE && s->now - ex->last_seen_us > limit) {
            char why[96];
            snprintf(why, sizeof why, "no heartbeat for %u ms", s->cfg.executor_timeout_ms);
            lose(s, ex, why);
        }
    }
}
