/* main.c -- ember-driver: command line, signals, and the driver loop. */
#include <ember/ember.h>
#include <getopt.h>
#include <nng/nng.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_args.h"
#include "em_driver.h"
#include "em_fs.h"
#include "em_kafka_settings.h"
#include "em_log.h"
#include "em_rpc.h"
#include "em_secret.h"
#include "em_status.h"

static em_driver driver;

static void on_signal(int sig)
{
    (void)sig;
    driver.stop = 1;
}

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: ember-driver [options]\n"
        "  --listen URL              executors and submitters connect here (tcp://127.0.0.1:7077)\n"
        "  --status HOST:PORT        HTTP status endpoint (127.0.0.1:4040; 'off' disables)\n"
        "  --kafka BOOTSTRAP         default Kafka brokers for jobs "
        "(host:port[,...])\n" EM_KAFKA_OPTIONS_HELP
        "  --heartbeat-ms N          executor heartbeat period (1000)\n"
        "  --executor-timeout-ms N   an executor silent this long is lost (10000)\n"
        "  --crash-grace-ms N        wait this long for a supervised executor's crash report\n"
        "                            when its connection closes while tasks run (300; 0: none)\n"
        "  --session-grace-ms N      keep a disconnected submitter's cached datasets and kept\n"
        "                            shuffle outputs this long for it to reconnect (30000)\n"
        "  --max-attempts N          launches of a task before its job fails (4)\n"
        "  --locality-wait-ms N      wait for the executor caching a task's input (3000)\n"
        "  --shuffle-locality-wait-ms N  wait for the one holding most of its shuffle input (0)\n"
        "  --queue-depth N           extra short tasks queued per executor slot (64)\n"
        "  --max-message-mb N        largest message accepted (256)\n"
        "  --max-result-mb N         largest collect() result per job (256)\n"
        "  --max-library-mb N        largest job library accepted (128)\n"
        "  --max-executors N         executors alive at once; more are refused (4096)\n"
        "  --max-session-jobs N      jobs one submitter may have running (64)\n"
        "  --max-job-tasks N         tasks of one job, every stage counted (4000000)\n"
        "  --ready-file PATH         write bound addresses here once listening\n"
        "  --state-dir DIR           keep detached streaming queries and their job libraries\n"
        "                            here; a driver started again on DIR resumes them\n"
        "  --tls-cert PATH, --tls-key PATH  certificate and key (PEM) for a tls+tcp:// --listen\n"
        "                            and an HTTPS status endpoint (EMBER_TLS_CERT, _KEY)\n"
        "  --secret-file PATH        the cluster secret (EMBER_SECRET_FILE, else\n"
        "                            ~/.ember/cluster.secret; without one, loopback only)\n");
}

static char secret_file[1024]; /* --secret-file */

static int parse_args(int argc, char **argv, em_driver_config *cfg)
{
    static const struct option opts[] = {{"listen", 1, 0, 'l'},
                                         {"status", 1, 0, 's'},
                                         {"kafka", 1, 0, 'k'},
                                         {"kafka-config", 1, 0, EM_OPT_KAFKA_CONFIG},
                                         {"kafka-config-file", 1, 0, EM_OPT_KAFKA_CONFIG_FILE},
                                         {"heartbeat-ms", 1, 0, 'h'},
                                         {"executor-timeout-ms", 1, 0, 't'},
                                         {"crash-grace-ms", 1, 0, 'g'},
                                         {"session-grace-ms", 1, 0, 'G'},
                                         {"max-library-mb", 1, 0, 'y'},
                                         {"max-executors", 1, 0, 'E'},
                                         {"max-session-jobs", 1, 0, 'J'},
                                         {"max-job-tasks", 1, 0, 'K'},
                                         {"max-attempts", 1, 0, 'a'},
                                         {"locality-wait-ms", 1, 0, 'L'},
                                         {"shuffle-locality-wait-ms", 1, 0, 'S'},
                                         {"queue-depth", 1, 0, 'q'},
                                         {"max-message-mb", 1, 0, 'm'},
                                         {"max-result-mb", 1, 0, 'r'},
                                         {"ready-file", 1, 0, 'f'},
                                         {"state-dir", 1, 0, 'D'},
                                         {"secret-file", 1, 0, 'x'},
                                         {"tls-cert", 1, 0, EM_OPT_TLS_CERT},
                                         {"tls-key", 1, 0, EM_OPT_TLS_KEY},
                                         {"help", 0, 0, 'H'},
                                         {0, 0, 0, 0}};
    char err[512] = "";
    int c, rc = EMBER_OK;
    while (rc == EMBER_OK && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            rc =
                em_arg_string("--listen", optarg, cfg->listen, sizeof cfg->listen, err, sizeof err);
            break;
        case 's':
            if (strcmp(optarg, "off") == 0)
                cfg->status[0] = '\0';
            else
                rc = em_arg_hostport("--status", optarg, cfg->status, sizeof cfg->status, err,
                                     sizeof err);
            break;
        case 'k':
            rc = em_arg_string("--kafka", optarg, cfg->kafka, sizeof cfg->kafka, err, sizeof err);
            break;
        case EM_OPT_KAFKA_CONFIG:
        case EM_OPT_KAFKA_CONFIG_FILE: rc = em_kafka_option(c, optarg, err, sizeof err); break;
        case 'h':
            rc = em_arg_u32("--heartbeat-ms", optarg, 10, 60000, &cfg->sched.heartbeat_ms, err,
                            sizeof err);
            break;
        case 't':
            rc = em_arg_u32("--executor-timeout-ms", optarg, 100, 3600000,
                            &cfg->sched.executor_timeout_ms, err, sizeof err);
            break;
        case 'g':
            rc = em_arg_u32("--crash-grace-ms", optarg, 0, 60000, &cfg->sched.crash_grace_ms, err,
                            sizeof err);
            break;
        case 'G':
            rc = em_arg_u32("--session-grace-ms", optarg, 0, 3600000, &cfg->sched.session_grace_ms,
                            err, sizeof err);
            break;
        case 'a':
            rc = em_arg_u32("--max-attempts", optarg, 1, EM_MAX_ATTEMPTS_LIMIT,
                            &cfg->sched.max_attempts, err, sizeof err);
            break;
        case 'L':
            rc = em_arg_u32("--locality-wait-ms", optarg, 0, 600000, &cfg->sched.locality_wait_ms,
                            err, sizeof err);
            break;
        case 'S':
            rc = em_arg_u32("--shuffle-locality-wait-ms", optarg, 0, 600000,
                            &cfg->sched.shuffle_locality_wait_ms, err, sizeof err);
            break;
        case 'q':
            rc = em_arg_u32("--queue-depth", optarg, 0, 1024, &cfg->sched.queue_depth, err,
                            sizeof err);
            break;
        case 'm':
            rc =
                em_arg_mib("--max-message-mb", optarg, 1, 2047, &cfg->max_message, err, sizeof err);
            break;
        case 'r':
            rc = em_arg_mib("--max-result-mb", optarg, 1, 4096, &cfg->sched.max_result, err,
                            sizeof err);
            break;
        case 'f':
            rc = em_arg_string("--ready-file", optarg, cfg->ready_file, sizeof cfg->ready_file, err,
                               sizeof err);
            break;
        case EM_OPT_TLS_CERT:
        case EM_OPT_TLS_KEY: rc = em_tls_option(c, optarg, &cfg->tls, err, sizeof err); break;
        case 'x':
            rc = em_arg_string("--secret-file", optarg, secret_file, sizeof secret_file, err,
                               sizeof err);
            break;
        case 'y':
            rc =
                em_arg_mib("--max-library-mb", optarg, 1, 2047, &cfg->max_library, err, sizeof err);
            break;
        case 'E':
            rc = em_arg_u32("--max-executors", optarg, 1, 1u << 20, &cfg->sched.max_executors, err,
                            sizeof err);
            break;
        case 'J':
            rc = em_arg_u32("--max-session-jobs", optarg, 1, 1u << 20, &cfg->sched.max_session_jobs,
                            err, sizeof err);
            break;
        case 'K':
            rc = em_arg_u32("--max-job-tasks", optarg, 1, 1u << 30, &cfg->sched.max_job_tasks, err,
                            sizeof err);
            break;
        case 'D':
            rc = em_arg_string("--state-dir", optarg, cfg->state_dir, sizeof cfg->state_dir, err,
                               sizeof err);
            break;
        case 'H': usage(stdout); exit(0);
        default: usage(stderr); return EMBER_ERR_INVALID;
        }
    }
    if (rc == EMBER_OK) rc = em_args_done(argc, argv, optind, err, sizeof err);
    if (rc == EMBER_OK && cfg->sched.heartbeat_ms * 2 > cfg->sched.executor_timeout_ms) {
        snprintf(err, sizeof err, "--executor-timeout-ms must be at least twice --heartbeat-ms");
        rc = EMBER_ERR_INVALID;
    }
    char path[1024];
    if (rc == EMBER_OK)
        rc = em_secret_load(em_secret_path(secret_file, path, sizeof path), &cfg->secret, err,
                            sizeof err);
    em_tls_files_defaults(&cfg->tls);
    if (rc != EMBER_OK && err[0]) fprintf(stderr, "ember-driver: %s\n", err);
    return rc;
}

int main(int argc, char **argv)
{
    em_driver_config *cfg = &driver.cfg;
    em_driver_config_defaults(cfg);
    em_log_init("driver", EM_LOG_INFO);
    if (parse_args(argc, argv, cfg) != EMBER_OK) return 2;
    em_process_init();
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    char err[512];
    if (em_driver_start(&driver, err, sizeof err) != EMBER_OK) {
        fprintf(stderr, "ember-driver: %s\n", err);
        em_driver_stop(&driver);
        return 1;
    }
    if (cfg->ready_file[0]) {
        char text[512];
        snprintf(text, sizeof text, "driver %s\nstatus %s\n", driver.bound_url,
                 driver.status ? em_status_url(driver.status) : "off");
        if (em_write_file_atomic(cfg->ready_file, text, err, sizeof err) != EMBER_OK) {
            fprintf(stderr, "ember-driver: %s\n", err);
            em_driver_stop(&driver);
            return 1;
        }
    }
    em_driver_run(&driver);
    em_info("driver stopping");
    em_driver_stop(&driver);
    nng_fini(); /* every socket is closed: let nng reap what its threads still hold */
    return 0;
}
