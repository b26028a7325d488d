/* em_executor.c -- starting and stopping an executor, and stopping its tasks (em_executor.h).
 *
 * Start order: block store (and its spill directory), block service, connection to the
 * driver, registration, then the threads: block service, poller, reporter, watchdog, slots.
 * Stop order: running tasks are asked to stop and get cfg.stop_ms; the reporter, Goodbye, the
 * connection to the driver, the poller, the block service; then everything is freed. Every
 * thread start is checked: one that fails stops the ones already running.
 *
 * A task is stopped between records (em_runner.c looks at its slot's cancel_id). One that
 * never returns to ember (a user function in a loop) cannot be stopped in a thread: the
 * watchdog makes the process exit once cfg.cancel_grace_ms have passed, telling the monitor
 * why, and the monitor restarts it (em_monitor.c).
 */
#include "em_executor.h"

#include <ember/ember.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "em_block_service.h"
#include "em_executor_int.h"
#include "em_job_api.h"
#include "em_libcache.h"
#include "em_log.h"
#include "em_mem.h"
#include "em_state_store.h"
#include "em_time.h"

#define BLOCKS_THREAD     1
#define POLLER_THREAD     2
#define REPORTER_THREAD   4
#define WATCHDOG_THREAD   8
#define WATCHDOG_MS       100  /* the watchdog looks at the slots this often */
#define IDLE_GIVE_BACK_MS 5000 /* every slot idle this long: free memory goes back (em_mem.h) */

void em_executor_config_defaults(em_executor_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->driver, sizeof cfg->driver, "tcp://127.0.0.1:7077");
    snprintf(cfg->listen, sizeof cfg->listen, "tcp://127.0.0.1:0");
    snprintf(cfg->work_dir, sizeof cfg->work_dir, "/tmp/ember-executor-%d", (int)getpid());
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->slots = cores > 0 ? (uint32_t)cores : 1;
    cfg->memory_cap = 1024u << 20;
    cfg->connect_timeout_ms = 30000;
    cfg->kafka_stall_ms = 30000;
    cfg->max_message = 1024u << 20;
    cfg->cancel_grace_ms = 5000;
    cfg->stop_ms = 1500;
}

uint32_t em_executor_id(em_executor *ex)
{
    pthread_mutex_lock(&ex->reg_lock);
    uint32_t id = ex->executor_id;
    pthread_mutex_unlock(&ex->reg_lock);
    return id;
}

const char *em_executor_address(const em_executor *ex) { return ex->bound_url; }

/* make_spill_dir makes the default spill directory, a fresh one under $TMPDIR or /tmp. */
static int make_spill_dir(em_executor *ex, char *err, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = ex->cfg.spill_dir;
    if (!tmp || !tmp[0]) tmp = "/tmp";
    if (snprintf(dir, sizeof ex->cfg.spill_dir, "%s/ember-spill-XXXXXX", tmp) >=
            (int)sizeof ex->cfg.spill_dir ||
        !mkdtemp(dir)) {
        snprintf(err, errlen, "cannot make a spill directory under %s: %s", tmp, strerror(errno));
        dir[0] = '\0';
        return EMBER_ERR_IO;
    }
    ex->spill_dir_made = 1;
    em_monitor_spill_dir(ex->monitor, dir);
    return EMBER_OK;
}

static void *block_service_thread(void *arg)
{
    em_executor *ex = arg;
    em_block_service_run(ex->srv, ex->blocks);
    return NULL;
}

/* open_block_service listens for other executors' fetches on cfg.listen: peers only, whose
 * requests are small (a block id) */
static int open_block_service(em_executor *ex, char *err, size_t errlen)
{
    if (!ex->cfg.secret.set && !em_url_is_local(ex->cfg.listen)) {
        snprintf(err, errlen,
                 "refusing to serve blocks on %s without a cluster secret: anyone reaching it "
                 "could read every shuffle block; create one with ember-secret "
                 "(docs/security.md)",
                 ex->cfg.listen);
        return EMBER_ERR_UNAUTHENTICATED;
    }
    em_server_opts so = {.max_recv = 64u << 10,
                         .secret = &ex->cfg.secret,
                         .roles = EM_ROLE_PEER,
                         .tls = &ex->cfg.tls};
    int rc = em_server_open(&ex->srv, ex->cfg.listen, &so, ex->bound_url, sizeof ex->bound_url, err,
                            errlen);
    if (rc == EMBER_OK &&
        (strstr(ex->bound_url, "://0.0.0.0:") || strstr(ex->bound_url, "://*:"))) {
        /* the driver and peers connect to the address registered: it must be a real one */
        snprintf(err, errlen,
                 "--listen %s: give the address other nodes reach this one at, e.g. "
                 "tcp://<this host's IP>:0",
                 ex->cfg.listen);
        rc = EMBER_ERR_INVALID;
    }
    return rc;
}

/* start_threads starts the block service, poller, reporter and slots; on failure the caller
 * stops those that started. */
static int start_threads(em_executor *ex, char *err, size_t errlen)
{
    int rv = pthread_create(&ex->blocks_thread, NULL, block_service_thread, ex);
    if (rv == 0) ex->threads_begun |= BLOCKS_THREAD;
    if (rv == 0 && (rv = pthread_create(&ex->poller, NULL, em_comm_poller, ex)) == 0)
        ex->threads_begun |= POLLER_THREAD;
    if (rv == 0 && (rv = pthread_create(&ex->reporter, NULL, em_comm_reporter, ex)) == 0)
        ex->threads_begun |= REPORTER_THREAD;
    if (rv == 0 && (rv = pthread_create(&ex->watchdog, NULL, em_executor_watchdog, ex)) == 0)
        ex->threads_begun |= WATCHDOG_THREAD;
    if (rv == 0 && !(ex->slots = calloc(ex->cfg.slots, sizeof *ex->slots))) rv = ENOMEM;
    while (rv == 0 && ex->n_slots < ex->cfg.slots &&
           (rv = pthread_create(&ex->slots[ex->n_slots], NULL, em_runner_slot, ex)) == 0)
        ex->n_slots++;
    if (rv == 0) return EMBER_OK;
    snprintf(err, errlen, "cannot start a thread: %s", strerror(rv));
    return EMBER_ERR_NOMEM;
}

/* An exit() while an executor runs (a user function calling it) ends the process at once:
 * the other atexit handlers (libraries' teardown while their threads still run) could crash
 * it and hide the cause. Its monitor takes any exit it was not told of for a crash. */
static _Atomic int executors_running;
static struct em_monitor_page *_Atomic running_monitor;
static pthread_once_t exit_guard_once = PTHREAD_ONCE_INIT;

static void exit_guard(void)
{
    if (atomic_load(&executors_running) == 0) return;
    em_error("exit() called while the executor runs tasks: the process ends");
    em_monitor_exit_called(atomic_load(&running_monitor));
    _exit(0);
}

static void install_exit_guard(void) { atexit(exit_guard); }

/* blob_of: a broadcast value's bytes, from the library cache (em_job_set_blob_source) */
static int blob_of(void *libs, const uint8_t sha256[32], const void **data, size_t *len, char *err,
                   size_t errlen)
{
    return em_libcache_blob(libs, sha256, data, len, err, errlen);
}

int em_executor_start(const em_executor_config *cfg, em_executor **out, char *err, size_t errlen)
{
    em_executor *ex = calloc(1, sizeof *ex);
    if (!ex) {
        snprintf(err, errlen, "out of memory");
        return EMBER_ERR_NOMEM;
    }
    ex->cfg = *cfg;
    ex->monitor = cfg->monitor;
    pthread_mutex_init(&ex->lock, NULL);
    pthread_mutex_init(&ex->reg_lock, NULL);
    pthread_condattr_t mono;
    pthread_condattr_init(&mono);
    pthread_condattr_setclock(&mono, CLOCK_MONOTONIC); /* idle slots wake on em_now_us time */
    pthread_cond_init(&ex->task_ready, &mono);
    pthread_condattr_destroy(&mono);
    pthread_cond_init(&ex->result_ready, NULL);
    int rc = ex->cfg.spill_dir[0] ? EMBER_OK : make_spill_dir(ex, err, errlen);
    if (rc == EMBER_OK && !(ex->slot_states = calloc(cfg->slots, sizeof *ex->slot_states))) {
        snprintf(err, errlen, "out of memory");
        rc = EMBER_ERR_NOMEM;
    }
    if (rc == EMBER_OK && (!(ex->blocks = em_blockstore_new(cfg->memory_cap, ex->cfg.spill_dir)) ||
                           !(ex->states = em_state_cache_new()))) {
        snprintf(err, errlen, "out of memory");
        rc = EMBER_ERR_NOMEM;
    }
    if (rc == EMBER_OK) rc = open_block_service(ex, err, errlen);
    em_rpc_opts ro = {"executor",   cfg->max_message, (int)cfg->connect_timeout_ms,
                      &cfg->secret, &cfg->tls,        0};
    if (rc == EMBER_OK && (rc = em_rpc_open(&ex->rpc, cfg->driver, &ro, err, errlen)) == EMBER_OK)
        ex->rpc_open = 1;
    if (rc == EMBER_OK) rc = em_comm_register(ex, err, errlen);
    if (rc == EMBER_OK && !(ex->libs = em_libcache_new(cfg->work_dir, &ex->rpc))) {
        snprintf(err, errlen, "out of memory");
        rc = EMBER_ERR_NOMEM;
    }
    if (rc == EMBER_OK) em_job_set_blob_source(blob_of, ex->libs); /* broadcast values */
    if (rc == EMBER_OK) {
        em_info("block store memory_cap=%llu spill_dir=%s", (unsigned long long)cfg->memory_cap,
                ex->cfg.spill_dir);
        rc = start_threads(ex, err, errlen);
    }
    if (rc != EMBER_OK) {
        em_executor_stop(ex);
        return rc;
    }
    pthread_once(&exit_guard_once, install_exit_guard);
    atomic_store(&running_monitor, ex->monitor);
    atomic_fetch_add(&executors_running, 1);
    ex->guarded = 1;
    *out = ex;
    return EMBER_OK;
}

/* free_queues frees the tasks never run and the results never sent */
static void free_queues(em_executor *ex)
{
    while (ex->tasks_head) {
        ex_task *task = ex->tasks_head;
        ex->tasks_head = task->next;
        free(task->data);
        free(task);
    }
    ex_result_free(ex->results);
    ex->results = NULL;
}

/* join_by joins thread t unless it runs past deadline (CLOCK_REALTIME, for
 * pthread_timedjoin_np); returns 1 if it was joined */
static int join_by(pthread_t t, const struct timespec *deadline)
{
    return pthread_timedjoin_np(t, NULL, deadline) == 0;
}

/* cancel_all asks every running task to stop */
static void cancel_all(em_executor *ex)
{
    for (uint32_t i = 0; ex->slot_states && i < ex->cfg.slots; i++) {
        uint64_t id = atomic_load(&ex->slot_states[i].task_id);
        if (!id) continue;
        atomic_store(&ex->slot_states[i].cancel_at_ms, em_now_ms());
        atomic_store(&ex->slot_states[i].cancel_id, id);
    }
}

/* stop_tasks stops the slots and the reporter within cfg.stop_ms; returns 0 if one of them
 * still runs (a task that would not stop) */
static int stop_tasks(em_executor *ex)
{
    pthread_mutex_lock(&ex->lock);
    ex->stop = 1;
    pthread_cond_broadcast(&ex->task_ready);
    pthread_cond_broadcast(&ex->result_ready);
    pthread_mutex_unlock(&ex->lock);
    cancel_all(ex);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += ex->cfg.stop_ms / 1000;
    deadline.tv_nsec += (long)(ex->cfg.stop_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    int clean = 1;
    for (uint32_t i = 0; i < ex->n_slots; i++) clean &= join_by(ex->slots[i], &deadline);
    if (ex->threads_begun & REPORTER_THREAD) clean &= join_by(ex->reporter, &deadline);
    if (ex->threads_begun & WATCHDOG_THREAD) clean &= join_by(ex->watchdog, &deadline);
    return clean;
}

int em_executor_stop(em_executor *ex)
{
    if (!ex) return 1;
    em_info("executor stopping executor=%u", ex->executor_id);
    em_monitor_stopping(ex->monitor);
    if (ex->guarded) atomic_fetch_sub(&executors_running, 1);
    int clean = stop_tasks(ex);
    if (ex->executor_id) em_comm_goodbye(ex);
    if (!clean) {
        em_error("executor stopped with a task still running executor=%u wait_ms=%u: exiting "
                 "without waiting for it",
                 ex->executor_id, ex->cfg.stop_ms);
        return 0;
    }
    if (ex->rpc_open) em_rpc_close(&ex->rpc);
    if (ex->threads_begun & POLLER_THREAD) pthread_join(ex->poller, NULL);
    em_server_stop(ex->srv);
    if (ex->threads_begun & BLOCKS_THREAD) pthread_join(ex->blocks_thread, NULL);
    em_server_close(ex->srv);
    free(ex->slots);
    free(ex->slot_states);
    free_queues(ex);
    em_stage_cache_free(ex);
    em_job_clear_blob_source(ex->libs); /* if it still names this executor's cache */
    em_libcache_free(ex->libs);
    em_blockstore_free(ex->blocks); /* its spill files with it */
    em_state_cache_free(ex->states);
    if (ex->spill_dir_made && rmdir(ex->cfg.spill_dir) != 0)
        em_warn("cannot remove spill directory path=%s error=\"%s\"", ex->cfg.spill_dir,
                strerror(errno));
    pthread_cond_destroy(&ex->task_ready);
    pthread_cond_destroy(&ex->result_ready);
    pthread_mutex_destroy(&ex->reg_lock);
    pthread_mutex_destroy(&ex->lock);
    memset(&ex->cfg.secret, 0, sizeof ex->cfg.secret);
    free(ex);
    return 1;
}

/* unqueue takes the launch task_id out of the queue; NULL if it is not queued */
static ex_task *unqueue(em_executor *ex, uint64_t task_id)
{
    ex_task *prev = NULL, *task;
    pthread_mutex_lock(&ex->lock);
    for (task = ex->tasks_head; task && task->launch.task_id != task_id; task = task->next)
        prev = task;
    if (task) {
        if (prev)
            prev->next = task->next;
        else
            ex->tasks_head = task->next;
        if (ex->tasks_tail == task) ex->tasks_tail = prev;
    }
    pthread_mutex_unlock(&ex->lock);
    return task;
}

void em_executor_cancel(em_executor *ex, uint64_t task_id)
{
    ex_task *queued = unqueue(ex, task_id);
    if (queued) { /* it never ran: reported cancelled, which frees its slot at the driver */
        ex_result *res = ex_result_new(queued);
        if (res) {
            res->msg.code = EMBER_ERR_CANCELLED;
            snprintf(res->message, sizeof res->message, "cancelled before it ran");
            ex_result_post(ex, res);
        }
        free(queued->data);
        free(queued);
        return;
    }
    for (uint32_t i = 0; i < ex->cfg.slots; i++)
        if (atomic_load(&ex->slot_states[i].task_id) == task_id) {
            atomic_store(&ex->slot_states[i].cancel_at_ms, em_now_ms());
            atomic_store(&ex->slot_states[i].cancel_id, task_id);
            em_info("task cancelled task=%llu slot=%u", (unsigned long long)task_id, i);
        }
}

/* stuck: a cancelled task would not stop: the process exits for its supervisor to restart */
static void stuck(em_executor *ex, uint64_t task_id, int64_t waited_ms)
{
    char reason[256];
    snprintf(reason, sizeof reason,
             "restarted: task %llu did not stop within %lld ms of being cancelled (its job "
             "ended or it timed out)",
             (unsigned long long)task_id, (long long)waited_ms);
    em_error("task would not stop task=%llu waited_ms=%lld: exiting, for the supervisor to "
             "restart this executor%s",
             (unsigned long long)task_id, (long long)waited_ms,
             ex->monitor ? "" : " (none: run ember-executor --supervise)");
    em_monitor_stuck(ex->monitor, task_id, reason);
    _exit(EM_EXIT_STUCK);
}

static int any_slot_busy(em_executor *ex)
{
    for (uint32_t i = 0; i < ex->cfg.slots; i++)
        if (atomic_load(&ex->slot_states[i].task_id)) return 1;
    return 0;
}

/* idle_give_back: when the watchdog last saw work, and whether it has given memory back since */
typedef struct idle_give_back {
    int64_t busy_at;
    uint64_t tasks_run; /* ex->tasks_run when last looked at */
    int given;
} idle_give_back;

/* give_back_when_idle returns the executor's free memory to the system once every slot has
 * been idle IDLE_GIVE_BACK_MS, then not again until a task has run: between back-to-back
 * jobs the chunks and heap stay warm, an idle executor stays small. A task counts as run even
 * if it began and ended between two looks (a short job can). */
static void give_back_when_idle(em_executor *ex, int64_t now, idle_give_back *idle)
{
    uint64_t run = atomic_load(&ex->tasks_run);
    if (any_slot_busy(ex) || run != idle->tasks_run) {
        idle->busy_at = now;
        idle->tasks_run = run;
        idle->given = 0;
    } else if (!idle->given && now - idle->busy_at >= IDLE_GIVE_BACK_MS) {
        uint64_t before = em_mem_rss(), chunks = em_mem_give_back();
        em_info("idle: memory given back chunks_bytes=%llu rss_before=%llu rss_after=%llu",
                (unsigned long long)chunks, (unsigned long long)before,
                (unsigned long long)em_mem_rss());
        idle->given = 1;
    }
}

void *em_executor_watchdog(void *arg)
{
    em_executor *ex = arg;
    idle_give_back idle = {.busy_at = em_now_ms()};
    while (!ex->stop) {
        em_sleep_ms(WATCHDOG_MS);
        int64_t now = em_now_ms();
        give_back_when_idle(ex, now, &idle);
        for (uint32_t i = 0; ex->cfg.cancel_grace_ms && i < ex->cfg.slots; i++) {
            ex_slot_state *st = &ex->slot_states[i];
            uint64_t id = atomic_load(&st->task_id);
            int64_t waited = now - atomic_load(&st->cancel_at_ms);
            if (id && atomic_load(&st->cancel_id) == id && waited > ex->cfg.cancel_grace_ms)
                stuck(ex, id, waited);
        }
    }
    return NULL;
}
