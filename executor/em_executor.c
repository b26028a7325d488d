/* em_executor.c -- starting and stopping an executor (see em_executor.h).
 *
 * Start order: block store (and its spill directory), block service, connection to the
 * driver, registration, then the threads: block service, poller, reporter, slots. Stop
 * order: slots and reporter finish their work, Goodbye, the connection to the driver, the
 * poller, the block service; then everything is freed. Every thread start is checked: one
 * that fails stops the ones already running.
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
#include "em_libcache.h"
#include "em_log.h"

#define BLOCKS_THREAD   1
#define POLLER_THREAD   2
#define REPORTER_THREAD 4

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
    em_server_opts so = {.max_recv = 64u << 10, .secret = &ex->cfg.secret, .roles = EM_ROLE_PEER};
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
    if (rv == 0 && !(ex->slots = calloc(ex->cfg.slots, sizeof *ex->slots))) rv = ENOMEM;
    while (rv == 0 && ex->n_slots < ex->cfg.slots &&
           (rv = pthread_create(&ex->slots[ex->n_slots], NULL, em_runner_slot, ex)) == 0)
        ex->n_slots++;
    if (rv == 0) return EMBER_OK;
    snprintf(err, errlen, "cannot start a thread: %s", strerror(rv));
    return EMBER_ERR_NOMEM;
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
    pthread_cond_init(&ex->task_ready, NULL);
    pthread_cond_init(&ex->result_ready, NULL);
    int rc = ex->cfg.spill_dir[0] ? EMBER_OK : make_spill_dir(ex, err, errlen);
    if (rc == EMBER_OK && !(ex->blocks = em_blockstore_new(cfg->memory_cap, ex->cfg.spill_dir))) {
        snprintf(err, errlen, "out of memory");
        rc = EMBER_ERR_NOMEM;
    }
    if (rc == EMBER_OK) rc = open_block_service(ex, err, errlen);
    em_rpc_opts ro = {"executor", cfg->max_message, (int)cfg->connect_timeout_ms, &cfg->secret};
    if (rc == EMBER_OK && (rc = em_rpc_open(&ex->rpc, cfg->driver, &ro, err, errlen)) == EMBER_OK)
        ex->rpc_open = 1;
    if (rc == EMBER_OK) rc = em_comm_register(ex, err, errlen);
    if (rc == EMBER_OK && !(ex->libs = em_libcache_new(cfg->work_dir, &ex->rpc))) {
        snprintf(err, errlen, "out of memory");
        rc = EMBER_ERR_NOMEM;
    }
    if (rc == EMBER_OK) {
        em_info("block store memory_cap=%llu spill_dir=%s", (unsigned long long)cfg->memory_cap,
                ex->cfg.spill_dir);
        rc = start_threads(ex, err, errlen);
    }
    if (rc != EMBER_OK) {
        em_executor_stop(ex);
        return rc;
    }
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

void em_executor_stop(em_executor *ex)
{
    if (!ex) return;
    em_info("executor stopping executor=%u", ex->executor_id);
    pthread_mutex_lock(&ex->lock);
    ex->stop = 1;
    pthread_cond_broadcast(&ex->task_ready);
    pthread_cond_broadcast(&ex->result_ready);
    pthread_mutex_unlock(&ex->lock);
    for (uint32_t i = 0; i < ex->n_slots; i++) pthread_join(ex->slots[i], NULL);
    if (ex->threads_begun & REPORTER_THREAD) pthread_join(ex->reporter, NULL);
    if (ex->executor_id) em_comm_goodbye(ex);
    if (ex->rpc_open) em_rpc_close(&ex->rpc);
    if (ex->threads_begun & POLLER_THREAD) pthread_join(ex->poller, NULL);
    em_server_stop(ex->srv);
    if (ex->threads_begun & BLOCKS_THREAD) pthread_join(ex->blocks_thread, NULL);
    em_server_close(ex->srv);
    free(ex->slots);
    free_queues(ex);
    em_stage_cache_free(ex);
    em_libcache_free(ex->libs);
    em_blockstore_free(ex->blocks); /* its spill files with it */
    if (ex->spill_dir_made && rmdir(ex->cfg.spill_dir) != 0)
        em_warn("cannot remove spill directory path=%s error=\"%s\"", ex->cfg.spill_dir,
                strerror(errno));
    pthread_cond_destroy(&ex->task_ready);
    pthread_cond_destroy(&ex->result_ready);
    pthread_mutex_destroy(&ex->reg_lock);
    pthread_mutex_destroy(&ex->lock);
    memset(&ex->cfg.secret, 0, sizeof ex->cfg.secret);
    free(ex);
}
