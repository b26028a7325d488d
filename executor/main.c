/* main.c -- ember-executor: command line, supervision and signals around the executor library
 * (em_executor.h). */
#include <ember/ember.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "em_args.h"
#include "em_executor.h"
#include "em_fs.h"
#include "em_kafka_settings.h"
#include "em_log.h"
#include "em_monitor.h"
#include "em_rpc.h"

static volatile sig_atomic_t stop_requested;
static char secret_file[1024]; /* --secret-file */

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
            "  --kafka-stall-ms N      a Kafka read with no progress this long fails "
            "(30000)\n" EM_KAFKA_OPTIONS_HELP
            "  --max-message-mb N      largest message it accepts from the driver or another\n"
            "                          executor (1024)\n"
            "  --cancel-grace-ms N     a task the driver cancelled (its job ended, or it timed\n"
            "                          out) that still runs after N ms makes the executor exit,\n"
            "                          for its supervisor to restart it (5000; 0: never)\n"
            "  --tls-cert PATH, --tls-key PATH  certificate and key (PEM) for a tls+tcp://\n"
            "                          --listen (EMBER_TLS_CERT, EMBER_TLS_KEY)\n"
            "  --tls-ca PATH           the CA that signed the driver's and the other executors'\n"
            "                          certificates, for tls+tcp:// (EMBER_TLS_CA)\n"
            "  --secret-file PATH      the cluster secret (EMBER_SECRET_FILE, else\n"
            "                          ~/.ember/cluster.secret; without one, loopback only)\n"
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
                                         {"secret-file", 1, 0, 'X'},
                                         {"cancel-grace-ms", 1, 0, 'g'},
                                         {"tls-cert", 1, 0, EM_OPT_TLS_CERT},
                                         {"tls-key", 1, 0, EM_OPT_TLS_KEY},
                                         {"tls-ca", 1, 0, EM_OPT_TLS_CA},
                                         {"supervise", 0, 0, 'S'},
                                         {"kafka-config", 1, 0, EM_OPT_KAFKA_CONFIG},
                                         {"kafka-config-file", 1, 0, EM_OPT_KAFKA_CONFIG_FILE},
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
            rc = em_arg_string("--spill-dir", optarg, cfg->spill_dir, sizeof cfg->spill_dir, err,
                               sizeof err);
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
        case EM_OPT_TLS_CERT:
        case EM_OPT_TLS_KEY:
        case EM_OPT_TLS_CA: rc = em_tls_option(c, optarg, &cfg->tls, err, sizeof err); break;
        case EM_OPT_KAFKA_CONFIG:
        case EM_OPT_KAFKA_CONFIG_FILE: rc = em_kafka_option(c, optarg, err, sizeof err); break;
        case 'g':
            rc = em_arg_u32("--cancel-grace-ms", optarg, 0, 3600000, &cfg->cancel_grace_ms, err,
                            sizeof err);
            break;
        case 'X':
            rc = em_arg_string("--secret-file", optarg, secret_file, sizeof secret_file, err,
                               sizeof err);
            break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return EMBER_ERR_INVALID;
        }
    }
    if (rc == EMBER_OK) rc = em_args_done(argc, argv, optind, err, sizeof err);
    char path[1024];
    if (rc == EMBER_OK)
        rc = em_secret_load(em_secret_path(secret_file, path, sizeof path), &cfg->secret, err,
                            sizeof err);
    em_tls_files_defaults(&cfg->tls);
    if (rc != EMBER_OK && err[0]) fprintf(stderr, "ember-executor: %s\n", err);
    return rc;
}

int main(int argc, char **argv)
{
    em_executor_config cfg;
    em_executor_config_defaults(&cfg);
    em_log_init("executor", EM_LOG_INFO);
    if (parse_args(argc, argv, &cfg) != EMBER_OK) return 2;
    int exit_status;
    /* before any thread or socket: from here on this is the executor process */
    if (cfg.supervise && !em_monitor_run(&cfg, &cfg.monitor, &exit_status)) return exit_status;
    em_process_init();
    /* SIGTERM and SIGINT wait, blocked, for sigsuspend below: the executor's threads inherit
     * the mask, so the main thread alone takes them */
    sigset_t stop_signals, before;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &before);
    char err[512];
    em_executor *ex;
    if (em_executor_start(&cfg, &ex, err, sizeof err) != EMBER_OK) {
        fprintf(stderr, "ember-executor: %s\n", err);
        return 1;
    }
    if (cfg.ready_file[0]) {
        char text[600];
        snprintf(text, sizeof text, "executor %u\naddress %s\n", em_executor_id(ex),
                 em_executor_address(ex));
        if (em_write_file_atomic(cfg.ready_file, text, err, sizeof err) != EMBER_OK)
            fprintf(stderr, "ember-executor: %s\n", err);
    }
    while (!stop_requested) sigsuspend(&before);
    if (!em_executor_stop(ex)) _exit(0); /* a task would not stop: its thread still runs */
    return 0;
}
