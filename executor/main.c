/* main.c -- ember-executor: command line, threads, and orderly shutdown. */
#include <ember/ember.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "em_args.h"
#include "em_block_service.h"
#include "em_executor.h"
#include "em_libcache.h"
#include "em_log.h"
#include "em_monitor.h"

static em_executor executor;
static volatile sig_atomic_t stop_requested;
static char spill_dir[4096];  /* --spill-dir, or the default made by make_spill_dir */
static int spill_dir_default; /* spill_dir is ours (mkdtemp): removed at exit */

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ember-executor [options]\n"
            "  --driver URL            the driver (tcp://127.0.0.1:7077)\n"
            "  --listen URL            block service address (tcp://127.0.0.1:0: any free port)\n"
            "  --slots N               tasks run at once (number of cores)\n"
            "  --memory-mb N           block store cap (1024)\n"
            "  --work-dir DIR          job library cache and scratch (/tmp/ember-executor-<pid>)\n"
            "  --spill-dir DIR         blocks over the memory cap are written here (a new\n"
            "                          $TMPDIR/ember-spill-XXXXXX, removed at exit)\n"
            "  --connect-timeout-ms N  how long to wait for the driver at start (30000)\n"
            "  --kafka-stall-ms N      a Kafka read with no progress this long fails (30000)\n"
            "  --max-message-mb N      largest message the block service accepts (256)\n"
            "  --ready-file PATH       write the block service address here once registered\n"
            "  --supervise             run the executor as the child of a monitor process that\n"
            "                          reports its crashes to the driver and restarts it\n");
}

static int parse_args(int argc, char **argv, em_executor_config *cfg)
{
    static const struct option opts[] = {{"driver", 1, 0, 'd'},
                                         {"listen", 1, 0, 'l'},
                                         {"slots", 1, 0, 's'},
                                         {"memory-mb", 1, 0, 'm'},
                                         {"work-dir", 1, 0, 'w'},
                                         {"spill-dir", 1, 0, 'p'},
                                         {"connect-timeout-ms", 1, 0, 'c'},
                                         {"kafka-stall-ms", 1, 0, 'k'},
                                         {"ready-file", 1, 0, 'f'},
                                         {"max-message-mb", 1, 0, 'x'},
                                         {"supervise", 0, 0, 'S'},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    char err[512] = "";
    int c, rc = EMBER_OK;
    while (rc == EMBER_OK && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            rc =
                em_arg_string("--driver", optarg, cfg->driver, sizeof cfg->driver, err, sizeof err);
            break;
        case 'l':
            rc =
                em_arg_string("--listen", optarg, cfg->listen, sizeof cfg->listen, err, sizeof err);
            break;
        case 's': rc = em_arg_u32("--slots", optarg, 1, 4096, &cfg->slots, err, sizeof err); break;
        case 'm':
            rc = em_arg_mib("--memory-mb", optarg, 1, 1u << 24, &cfg->memory_cap, err, sizeof err);
            break;
        case 'w':
            rc = em_arg_string("--work-dir", optarg, cfg->work_dir, sizeof cfg->work_dir, err,
                               sizeof err);
            break;
        case 'p':
            rc = em_arg_string("--spill-dir", optarg, spill_dir, sizeof spill_dir, err, sizeof err);
            break;
        case 'c':
            rc = em_arg_u32("--connect-timeout-ms", optarg, 0, 3600000, &cfg->connect_timeout_ms,
                            err, sizeof err);
            break;
        case 'k':
            rc = em_arg_u32("--kafka-stall-ms", optarg, 100, 3600000, &cfg->kafka_stall_ms, err,
                            sizeof err);
            break;
        case 'x':
            rc =
                em_arg_mib("--max-message-mb", optarg, 1, 2047, &cfg->max_message, err, sizeof err);
            break;
        case 'f':
            rc = em_arg_string("--ready-file", optarg, cfg->ready_file, sizeof cfg->ready_file, err,
                               sizeof err);
            break;
        case 'S': cfg->supervise = 1; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return EMBER_ERR_INVALID;
        }
    }
    if (rc == EMBER_OK) rc = em_args_done(argc, argv, optind, err, sizeof err);
    if (rc != EMBER_OK && err[0]) fprintf(stderr, "ember-executor: %s\n", err);
    return rc;
}

/* make_spill_dir makes the default spill directory, a fresh one under $TMPDIR or /tmp. */
static int make_spill_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !tmp[0]) tmp = "/tmp";
    if (snprintf(spill_dir, sizeof spill_dir, "%s/ember-spill-XXXXXX", tmp) >=
            (int)sizeof spill_dir ||
        !mkdtemp(spill_dir)) {
        fprintf(stderr, "ember-executor: cannot make a spill directory under %s: %s\n", tmp,
                strerror(errno));
        return EMBER_ERR_IO;
    }
    spill_dir_default = 1;
    return EMBER_OK;
}

/* close_blocks frees the block store (its spill files with it) and the default spill dir. */
static void close_blocks(em_executor *ex)
{
    em_blockstore_free(ex->blocks);
    ex->blocks = NULL;
    if (spill_dir_default && rmdir(spill_dir) != 0)
        em_warn("cannot remove spill directory path=%s error=\"%s\"", spill_dir, strerror(errno));
}

static void *block_service_thread(void *arg)
{
    em_server *srv = arg;
    em_block_service_run(srv, executor.blocks);
    return NULL;
}

int main(int argc, char **argv)
{
    em_executor *ex = &executor;
    em_executor_config *cfg = &ex->cfg;
    snprintf(cfg->driver, sizeof cfg->driver, "tcp://127.0.0.1:7077");
    snprintf(cfg->listen, sizeof cfg->listen, "tcp://127.0.0.1:0");
    snprintf(cfg->work_dir, sizeof cfg->work_dir, "/tmp/ember-executor-%d", (int)getpid());
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->slots = cores > 0 ? (uint32_t)cores : 1;
    cfg->memory_cap = 1024u << 20;
    cfg->connect_timeout_ms = 30000;
    cfg->kafka_stall_ms = 30000;
    cfg->max_message = 256u << 20;
    em_log_init("executor", EM_LOG_INFO);
    if (parse_args(argc, argv, cfg) != EMBER_OK) return 2;
    int exit_status;
    /* before any thread or socket: from here on this is the executor process */
    if (cfg->supervise && !em_monitor_run(cfg, &ex->monitor, &exit_status)) return exit_status;
    em_process_init();
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    char err[512];
    em_server *srv = NULL;
    pthread_mutex_init(&ex->lock, NULL);
    pthread_mutex_init(&ex->reg_lock, NULL);
    pthread_cond_init(&ex->task_ready, NULL);
    pthread_cond_init(&ex->result_ready, NULL);
    if (!spill_dir[0] && make_spill_dir() != EMBER_OK) return 1;
    if (spill_dir_default) em_monitor_spill_dir(ex->monitor, spill_dir);
    ex->blocks = em_blockstore_new(cfg->memory_cap, spill_dir);
    if (!ex->blocks) {
        fprintf(stderr, "ember-executor: out of memory\n");
        close_blocks(ex);
        return 1;
    }
    em_info("block store memory_cap=%llu spill_dir=%s", (unsigned long long)cfg->memory_cap,
            spill_dir);
    int rc = em_server_open(&srv, cfg->listen, cfg->max_message, ex->bound_url,
                            sizeof ex->bound_url, err, sizeof err);
    if (rc == EMBER_OK &&
        (strstr(ex->bound_url, "://0.0.0.0:") || strstr(ex->bound_url, "://*:"))) {
        /* the driver and peers connect to the address registered: it must be a real one */
        snprintf(err, sizeof err,
                 "--listen %s: give the address other nodes reach this one at, e.g. "
                 "tcp://<this host's IP>:0",
                 cfg->listen);
        rc = EMBER_ERR_INVALID;
    }
    if (rc != EMBER_OK ||
        em_rpc_open(&ex->rpc, cfg->driver, "executor", 1u << 30, (int)cfg->connect_timeout_ms, err,
                    sizeof err) != EMBER_OK ||
        em_comm_register(ex, err, sizeof err) != EMBER_OK) {
        fprintf(stderr, "ember-executor: %s\n", err);
        em_server_close(srv);
        close_blocks(ex);
        return 1;
    }
    ex->libs = em_libcache_new(cfg->work_dir, &ex->rpc);
    em_monitor_registered(ex->monitor, ex->executor_id);
    if (cfg->ready_file[0]) {
        char text[600];
        snprintf(text, sizeof text, "executor %u\naddress %s\n", ex->executor_id, ex->bound_url);
        if (em_write_file_atomic(cfg->ready_file, text, err, sizeof err) != EMBER_OK)
            fprintf(stderr, "ember-executor: %s\n", err);
    }
    pthread_t blocks_thread, poller, reporter, *slots = calloc(cfg->slots, sizeof *slots);
    pthread_create(&blocks_thread, NULL, block_service_thread, srv);
    pthread_create(&poller, NULL, em_comm_poller, ex);
    pthread_create(&reporter, NULL, em_comm_reporter, ex);
    for (uint32_t i = 0; i < cfg->slots; i++) pthread_create(&slots[i], NULL, em_runner_slot, ex);

    while (!stop_requested) {
        usleep(50000);
        if (ex->monitor) { /* the id changes when the executor registers again */
            pthread_mutex_lock(&ex->reg_lock);
            em_monitor_registered(ex->monitor, ex->executor_id);
            pthread_mutex_unlock(&ex->reg_lock);
        }
    }
    em_info("executor stopping executor=%u", ex->executor_id);
    pthread_mutex_lock(&ex->lock);
    ex->stop = 1;
    pthread_cond_broadcast(&ex->task_ready);
    pthread_cond_broadcast(&ex->result_ready);
    pthread_mutex_unlock(&ex->lock);
    for (uint32_t i = 0; i < cfg->slots; i++) pthread_join(slots[i], NULL);
    pthread_join(reporter, NULL);
    em_comm_goodbye(ex);
    em_rpc_close(&ex->rpc);
    pthread_join(poller, NULL);
    em_server_stop(srv);
    pthread_join(blocks_thread, NULL);
    em_server_close(srv);
    free(slots);
    while (ex->tasks_head) {
        ex_task *t = ex->tasks_head;
        ex->tasks_head = t->next;
        free(t->data);
        free(t);
    }
    while (ex->results) {
        ex_result *r = ex->results;
        ex->results = r->next;
        em_buf_free(&r->data);
        free(r->bucket_bytes);
        free(r);
    }
    em_stage_cache_free(ex);
    em_libcache_free(ex->libs);
    close_blocks(ex);
    return 0;
}
