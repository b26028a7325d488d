/* em_comm.c -- an executor's conversation with the driver: Register, Poll, Report.
 *
 * The poller keeps one Poll parked at the driver; the answer (tasks, or nothing after the
 * heartbeat period) is re-armed at once, which is also the executor's heartbeat. The reporter
 * sends every finished result it finds in one Report. When the driver no longer knows this
 * executor (it was declared lost, or the driver restarted) both re-register; a lost
 * executor's old tasks are rescheduled by the driver, so their results are simply dropped.
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "em_blockid.h"
#include "em_executor_int.h"
#include "em_log.h"
#include "em_mem.h"

#define RETRY_MS 200

int em_comm_register(em_executor *ex, char *err, size_t errlen)
{
    Ember__Register r = EMBER__REGISTER__INIT;
    char host[128] = "localhost";
    gethostname(host, sizeof host - 1);
    r.address = ex->bound_url;
    r.host = host;
    r.pid = (int32_t)getpid();
    r.slots = ex->cfg.slots;
    r.memory_cap = ex->cfg.memory_cap;
    em_rpc_chan ch = {0};
    em_rpc_reply reply = {0};
    int rc = em_rpc_chan_open(&ex->rpc, &ch);
    if (rc == EMBER_OK)
        rc = em_rpc_call(&ex->rpc, &ch, EM_MSG_REGISTER, &r.base, NULL, 0, 10000, &reply, err,
                         errlen);
    Ember__Registered *reg =
        rc == EMBER_OK ? em_frame_unpack(&reply.frame, EM_MSG_REGISTERED) : NULL;
    if (rc == EMBER_OK && !reg) {
        snprintf(err, errlen, "driver sent an unreadable Registered");
        rc = EMBER_ERR_PROTOCOL;
    }
    if (reg) {
        ex->executor_id = reg->executor_id;
        ex->heartbeat_ms = reg->heartbeat_ms ? reg->heartbeat_ms : 1000;
        em_info("registered executor=%u driver=%s slots=%u", ex->executor_id, ex->cfg.driver,
                ex->cfg.slots);
        em_monitor_registered(ex->monitor, ex->executor_id);
    }
    em_pb_free(reg);
    em_rpc_reply_free(&reply);
    em_rpc_chan_close(&ch);
    return rc;
}

/* reregister registers again unless another thread already did since `seen_id`. */
static void reregister(em_executor *ex, uint32_t seen_id)
{
    pthread_mutex_lock(&ex->reg_lock);
    char err[512];
    while (!ex->stop && ex->executor_id == seen_id) {
        if (em_comm_register(ex, err, sizeof err) == EMBER_OK) break;
        em_warn("cannot register with the driver: %s", err);
        usleep(RETRY_MS * 1000);
    }
    pthread_mutex_unlock(&ex->reg_lock);
}

static uint32_t current_id(em_executor *ex)
{
    pthread_mutex_lock(&ex->reg_lock);
    uint32_t id = ex->executor_id;
    pthread_mutex_unlock(&ex->reg_lock);
    return id;
}

/* drop_blocks removes the blocks named by prefix(id) for each of ids. */
static void drop_blocks(em_executor *ex, void (*prefix)(char *, uint64_t), const uint64_t *ids,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char name[EM_BLOCKID_MAX];
        prefix(name, ids[i]);
        em_blockstore_remove_prefix(ex->blocks, name);
    }
}

/* store_stats fills *out with the block store's figures; returns out */
static Ember__StoreStats *store_stats(em_executor *ex, Ember__StoreStats *out)
{
    ember__store_stats__init(out);
    out->memory_used = em_blockstore_used(ex->blocks);
    out->blocks = em_blockstore_count(ex->blocks);
    out->disk_used = em_blockstore_disk_used(ex->blocks);
    out->spilled_bytes = em_blockstore_spilled(ex->blocks);
    out->rss_bytes = em_mem_rss();
    for (uint32_t i = 0; i < ex->cfg.slots; i++) {
        out->kafka_fetched_records += atomic_load(&ex->slot_states[i].kafka_fetched_records);
        out->kafka_fetch_fallbacks += atomic_load(&ex->slot_states[i].kafka_fetch_fallbacks);
    }
    return out;
}

/* queue_tasks stores the stage definitions and queues the tasks of a Tasks message, after
 * dropping the shuffle outputs and cached partitions the driver no longer needs. */
static void queue_tasks(em_executor *ex, Ember__Tasks *t, const em_frame *f)
{
    drop_blocks(ex, em_blockid_shuffle_prefix, t->drop_shuffles, t->n_drop_shuffles);
    drop_blocks(ex, em_blockid_cached_prefix, t->drop_cached, t->n_drop_cached);
    for (size_t i = 0; i < t->n_cancel_tasks; i++) em_executor_cancel(ex, t->cancel_tasks[i]);
    for (size_t i = 0; i < t->n_stages; i++) {
        em_stage_cache_put(ex, t->stages[i]);
        t->stages[i] = NULL; /* now owned by the cache */
    }
    t->n_stages = 0;
    ex_task *head = NULL, *last = NULL;
    for (size_t i = 0; i < t->n_tasks; i++) {
        const Ember__TaskLaunch *tl = t->tasks[i];
        ex_task *task = calloc(1, sizeof *task);
        if (!task) break; /* the driver reschedules what never reports */
        task->launch = *tl;
        if (tl->data_len > 0 && tl->data_offset <= f->data_len &&
            tl->data_len <= f->data_len - tl->data_offset && (task->data = malloc(tl->data_len))) {
            memcpy(task->data, f->data + tl->data_offset, tl->data_len);
            task->data_len = tl->data_len;
        }
        if (last)
            last->next = task;
        else
            head = task;
        last = task;
    }
    if (!head) return;
    pthread_mutex_lock(&ex->lock);
    if (ex->tasks_tail)
        ex->tasks_tail->next = head;
    else
        ex->tasks_head = head;
    ex->tasks_tail = last;
    pthread_cond_broadcast(&ex->task_ready);
    pthread_mutex_unlock(&ex->lock);
}

void *em_comm_poller(void *arg)
{
    em_executor *ex = arg;
    em_rpc_chan ch = {0};
    char err[512];
    if (em_rpc_chan_open(&ex->rpc, &ch) != EMBER_OK) return NULL;
    while (!ex->stop) {
        uint32_t id = current_id(ex);
        Ember__Poll p = EMBER__POLL__INIT;
        Ember__StoreStats store;
        p.executor_id = id;
        p.store = store_stats(ex, &store);
        em_rpc_reply reply = {0};
        int rc = em_rpc_call(&ex->rpc, &ch, EM_MSG_POLL, &p.base, NULL, 0,
                             (int)ex->heartbeat_ms * 3 + 2000, &reply, err, sizeof err);
        if (rc == EMBER_ERR_STATE) {
            em_warn("driver does not know executor %u: registering again", id);
            reregister(ex, id);
            continue;
        }
        if (rc != EMBER_OK) {
            if (!ex->stop) em_warn("poll failed: %s", err);
            usleep(RETRY_MS * 1000);
            continue;
        }
        Ember__Tasks *t = em_frame_unpack(&reply.frame, EM_MSG_TASKS);
        if (t)
            queue_tasks(ex, t, &reply.frame);
        else
            em_warn("driver answered a poll with %s", em_msg_name(reply.frame.type));
        em_pb_free(t);
        em_rpc_reply_free(&reply);
    }
    em_rpc_chan_close(&ch);
    return NULL;
}

void em_comm_goodbye(em_executor *ex)
{
    Ember__Goodbye g = EMBER__GOODBYE__INIT;
    g.executor_id = current_id(ex);
    em_rpc_chan ch = {0};
    em_rpc_reply reply = {0};
    char err[256];
    if (em_rpc_chan_open(&ex->rpc, &ch) != EMBER_OK) return;
    if (em_rpc_call(&ex->rpc, &ch, EM_MSG_GOODBYE, &g.base, NULL, 0, 1000, &reply, err,
                    sizeof err) != EMBER_OK)
        em_warn("could not say goodbye to the driver: %s", err);
    em_rpc_reply_free(&reply);
    em_rpc_chan_close(&ch);
}

ex_result *ex_result_new(const ex_task *task)
{
    ex_result *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    ember__task_result__init(&r->msg);
    r->msg.task_id = task->launch.task_id;
    r->msg.message = r->message;
    return r;
}

void ex_result_post(em_executor *ex, ex_result *res)
{
    pthread_mutex_lock(&ex->lock);
    res->next = ex->results;
    ex->results = res;
    pthread_cond_signal(&ex->result_ready);
    pthread_mutex_unlock(&ex->lock);
}

void ex_result_free(ex_result *r)
{
    while (r) {
        ex_result *next = r->next;
        em_buf_free(&r->data);
        free(r->msg.bucket_bytes);
        free(r->msg.latency_buckets);
        free(r->msg.latency_counts);
        for (size_t i = 0; i < r->msg.n_cached; i++) free(r->msg.cached[i]);
        for (size_t i = 0; i < r->n_evicted; i++) free(r->evicted[i]);
        free(r->msg.cached);
        free(r->evicted);
        free(r->msg.accumulators);
        free(r->acc_items);
        em_accs_free(&r->accs);
        free(r);
        r = next;
    }
}

/* send_report sends results (oldest first) in one Report; returns the rpc code. */
static int send_report(em_executor *ex, em_rpc_chan *ch, ex_result *results, size_t n)
{
    Ember__TaskResult **ptrs = calloc(n, sizeof *ptrs);
    em_iov *iov = calloc(n, sizeof *iov);
    int rc = EMBER_ERR_NOMEM;
    size_t n_evicted = 0;
    if (ptrs && iov) {
        size_t i = 0;
        for (ex_result *r = results; r; r = r->next, i++) {
            r->msg.data_len = r->data.len;
            n_evicted += r->n_evicted;
            ptrs[i] = &r->msg;
            iov[i] = (em_iov){r->data.data, r->data.len};
        }
        Ember__Report rep = EMBER__REPORT__INIT;
        Ember__CachedBlock **evicted = n_evicted ? calloc(n_evicted, sizeof *evicted) : NULL;
        for (ex_result *r = results; evicted && r; r = r->next)
            for (size_t e = 0; e < r->n_evicted; e++) evicted[rep.n_evicted++] = r->evicted[e];
        rep.evicted = evicted;
        rep.executor_id = current_id(ex);
        rep.n_results = n;
        rep.results = ptrs;
        Ember__StoreStats store;
        rep.store = store_stats(ex, &store);
        em_rpc_reply reply = {0};
        char err[512];
        rc = em_rpc_call(&ex->rpc, ch, EM_MSG_REPORT, &rep.base, iov, n, 30000, &reply, err,
                         sizeof err);
        free(evicted);
        if (rc == EMBER_ERR_STATE)
            reregister(ex, rep.executor_id);
        else if (rc != EMBER_OK)
            em_warn("report of %zu results failed: %s", n, err);
        em_rpc_reply_free(&reply);
    }
    free(ptrs);
    free(iov);
    return rc;
}

void *em_comm_reporter(void *arg)
{
    em_executor *ex = arg;
    em_rpc_chan ch = {0};
    if (em_rpc_chan_open(&ex->rpc, &ch) != EMBER_OK) return NULL;
    pthread_mutex_lock(&ex->lock);
    while (!ex->stop) {
        if (!ex->results) {
            pthread_cond_wait(&ex->result_ready, &ex->lock);
            continue;
        }
        ex_result *newest_first = ex->results, *results = NULL;
        ex->results = NULL;
        pthread_mutex_unlock(&ex->lock);
        size_t n = 0;
        while (newest_first) { /* reverse into completion order */
            ex_result *r = newest_first;
            newest_first = r->next;
            r->next = results;
            results = r;
            n++;
        }
        send_report(ex, &ch, results, n);
        ex_result_free(results);
        pthread_mutex_lock(&ex->lock);
    }
    pthread_mutex_unlock(&ex->lock);
    em_rpc_chan_close(&ch);
    return NULL;
}
