/* em_submit.h -- ember-submit's work as a library: run a job library against a cluster.
 *
 * ember-submit (ember_submit.c) is this plus its command line; tests run job libraries
 * against in-process clusters with it.
 */
#ifndef EM_SUBMIT_H
#define EM_SUBMIT_H

#include <stdint.h>

typedef struct em_submit_opts {
    const char *driver;       /* the driver's URL */
    const char *kafka;        /* Kafka brokers for the job (NULL or "": the driver's) */
    const char *name;         /* job name on the status endpoint (NULL: the library's file name) */
    int timeout_ms;           /* give up on an action after this long (<= 0: wait) */
    int quiet;                /* no progress and no summary line on stderr */
    const char *secret_file;  /* the cluster secret (NULL: EMBER_SECRET_FILE, else the default
                                 path: em_secret.h) */
    uint32_t task_timeout_ms; /* a task running longer fails and is stopped (0: no limit) */
    const char *tls_ca;       /* the CA of a tls+tcp:// driver (NULL: EMBER_TLS_CA) */
    int detach;               /* the job's queries run detached; awaiting one returns at once */
} em_submit_opts;

/* em_submit_run loads the job library at lib_path, uploads it, and runs its ember_main with
 * job_argv (job_argv[0] is the library); failures are one line on stderr. Returns the exit
 * status: 0 when ember_main returned 0 and no action failed, else 1. */
int em_submit_run(const em_submit_opts *o, const char *lib_path, int job_argc, char **job_argv);

/* em_submit_stop_query stops the driver's query `name` and waits until its running batch is
 * committed (up to timeout_ms, default 5 minutes). Returns the exit status (0: stopped). */
int em_submit_stop_query(const em_submit_opts *o, const char *name);

#endif
