/* ember_submit.c -- ember-submit: runs a job library against a cluster (client mode).
 *
 *   ember-submit [--driver URL] [--kafka BROKERS] [--name NAME] [--timeout-s N] [--quiet]
 *                job.so [-- job arguments]
 *   ember-submit [--driver URL] --stop QUERY      stops a streaming query the driver runs
 * Exit status: ember_main's return value (1 for one outside 1..255), with a one-line cause when
 * it is not 0; an action that failed is printed even when ember_main then returned 0 (the job
 * handled it). 1 when the job could not be loaded or submitted; 2 for bad arguments. The work
 * is em_submit_run (em_submit.h).
 */
#include <ember/ember.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_args.h"
#include "em_kafka_settings.h"
#include "em_log.h"
#include "em_rpc.h"
#include "em_submit.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: ember-submit [options] job.so [-- job arguments]\n"
                 "       ember-submit [options] --stop QUERY\n"
                 "  --driver URL      the driver (EMBER_DRIVER, else tcp://127.0.0.1:7077)\n"
                 "  --kafka BOOTSTRAP Kafka brokers for the job (default: the driver's)\n"
                 "  --name NAME       job name on the status endpoint (default: the file name)\n"
                 "  --timeout-s N     give up on an action after N seconds (default: wait)\n"
                 "  --task-timeout-s N  a task running longer than N seconds fails and is\n"
                 "                    stopped, then retried like any failure (default: none)\n"
                 "  --quiet           no summary line on stderr\n"
                 "  --detach          the job's streaming queries run detached: the driver keeps\n"
                 "                    them running after ember-submit returns (docs/streaming.md)\n"
                 "  --stop QUERY      stop the driver's streaming query QUERY (a detached one,\n"
                 "                    docs/streaming.md) once its running batch is committed\n"
                 "  --secret-file PATH  the cluster secret (EMBER_SECRET_FILE, else\n"
                 "                    ~/.ember/cluster.secret)\n"
                 "  --tls-ca PATH     CA certificate of a tls+tcp:// driver (EMBER_TLS_CA)\n"
                 "  (the submitter's own Kafka clients: offsets of the job's "
                 "topics)\n" EM_KAFKA_OPTIONS_HELP);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"driver", 1, 0, 'd'},
                                         {"kafka", 1, 0, 'k'},
                                         {"name", 1, 0, 'n'},
                                         {"timeout-s", 1, 0, 't'},
                                         {"quiet", 0, 0, 'q'},
                                         {"secret-file", 1, 0, 's'},
                                         {"task-timeout-s", 1, 0, 'T'},
                                         {"tls-ca", 1, 0, EM_OPT_TLS_CA},
                                         {"stop", 1, 0, 'S'},
                                         {"detach", 0, 0, 'D'},
                                         {"kafka-config", 1, 0, EM_OPT_KAFKA_CONFIG},
                                         {"kafka-config-file", 1, 0, EM_OPT_KAFKA_CONFIG_FILE},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    char driver[256], kafka[1024] = "", name[128] = "", err[1024] = "", secret_file[1024] = "";
    const char *env_driver = getenv("EMBER_DRIVER");
    snprintf(driver, sizeof driver, "%s",
             env_driver && *env_driver ? env_driver : "tcp://127.0.0.1:7077");
    em_tls_files tls = {0};
    char stop_query[128] = "";
    uint32_t timeout_s = 0, task_timeout_s = 0;
    int quiet = 0, detach = 0, c, rc = EMBER_OK;
    em_log_init("submit", EM_LOG_WARN);
    while (rc == EMBER_OK && (c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            rc = em_arg_string("--driver", optarg, driver, sizeof driver, err, sizeof err);
            break;
        case 'k':
            rc = em_arg_string("--kafka", optarg, kafka, sizeof kafka, err, sizeof err);
            break;
        case 'n': rc = em_arg_string("--name", optarg, name, sizeof name, err, sizeof err); break;
        case 't':
            rc = em_arg_u32("--timeout-s", optarg, 1, 86400 * 365, &timeout_s, err, sizeof err);
            break;
        case 'q': quiet = 1; break;
        case EM_OPT_KAFKA_CONFIG:
        case EM_OPT_KAFKA_CONFIG_FILE: rc = em_kafka_option(c, optarg, err, sizeof err); break;
        case 'D': detach = 1; break;
        case 'T':
            rc = em_arg_u32("--task-timeout-s", optarg, 1, 86400 * 7, &task_timeout_s, err,
                            sizeof err);
            break;
        case 's':
            rc = em_arg_string("--secret-file", optarg, secret_file, sizeof secret_file, err,
                               sizeof err);
            break;
        case EM_OPT_TLS_CA: rc = em_tls_option(c, optarg, &tls, err, sizeof err); break;
        case 'S':
            rc = em_arg_string("--stop", optarg, stop_query, sizeof stop_query, err, sizeof err);
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (rc == EMBER_OK && stop_query[0] && optind < argc) {
        snprintf(err, sizeof err, "--stop takes no job library");
        rc = EMBER_ERR_INVALID;
    }
    if (rc == EMBER_OK && !stop_query[0] && optind >= argc) {
        snprintf(err, sizeof err, "missing job library (job.so)");
        rc = EMBER_ERR_INVALID;
    }
    if (rc != EMBER_OK) {
        fprintf(stderr, "ember-submit: %s\n", err);
        return 2;
    }
    em_submit_opts o = {.driver = driver,
                        .kafka = kafka,
                        .name = name,
                        .timeout_ms = timeout_s ? (int)(timeout_s * 1000) : 0,
                        .quiet = quiet,
                        .detach = detach,
                        .secret_file = secret_file,
                        .tls_ca = tls.ca,
                        .task_timeout_ms = task_timeout_s * 1000};
    if (stop_query[0]) {
        em_process_init();
        return em_submit_stop_query(&o, stop_query);
    }
    const char *lib_path = argv[optind++];
    if (optind < argc && strcmp(argv[optind], "--") == 0) optind++;
    em_process_init();
    /* the job sees argv[0] = its library, then the arguments after `--` */
    int job_argc = argc - optind + 1;
    char **job_argv = calloc((size_t)job_argc + 1, sizeof *job_argv);
    if (!job_argv) {
        fprintf(stderr, "ember-submit: out of memory\n");
        return 1;
    }
    job_argv[0] = (char *)lib_path;
    for (int i = 1; i < job_argc; i++) job_argv[i] = argv[optind + i - 1];
    int status = em_submit_run(&o, lib_path, job_argc, job_argv);
    free(job_argv);
    return status;
}
