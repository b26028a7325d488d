/* em_executor.h -- an executor as a library: start one, stop it.
 *
 * ember-executor (main.c) is this library plus arguments and signals; tests start several
 * executors as threads of one process (over nng's inproc:// transport, or loopback TCP).
 * em_executor_start registers with the driver and starts the executor's threads; from then
 * on it runs tasks until em_executor_stop, which says Goodbye to the driver, joins every
 * thread and frees everything (its spill files and default spill directory included).
 */
#ifndef EM_EXECUTOR_H
#define EM_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include "em_secret.h"
#include "em_tls.h"

struct em_monitor_page;

typedef struct em_executor_config {
    char driver[256];     /* driver URL */
    char listen[256];     /* block service address */
    char work_dir[1024];  /* job library cache and scratch */
    char spill_dir[4096]; /* blocks over the memory cap go here ("": a fresh directory under
                             $TMPDIR, removed at stop) */
    char ready_file[1024];
    uint32_t slots;
    uint64_t memory_cap;  /* block store cap, bytes */
    uint64_t max_message; /* largest message accepted from the driver or another executor */
    uint32_t connect_timeout_ms;
    uint32_t kafka_stall_ms;         /* a Kafka read that makes no progress this long fails */
    uint32_t cancel_grace_ms;        /* a cancelled task still running this long makes the
                                        process exit for its supervisor to restart it (0: never) */
    uint32_t stop_ms;                /* em_executor_stop waits this long for running tasks */
    int supervise;                   /* --supervise: run under a monitor process (em_monitor.h) */
    struct em_monitor_page *monitor; /* shared with the monitor (--supervise), or NULL */
    em_secret secret; /* the cluster secret (unset: connections are not authenticated, which
                         em_executor_start allows on loopback only) */
    em_tls_files tls; /* for tls+tcp:// addresses: its certificate, key, and the CA */
} em_executor_config;

typedef struct em_executor em_executor;

/* EM_EXIT_STUCK: the exit status of an executor process that exits because a task would not
 * stop; its supervisor restarts it and reports why */
#define EM_EXIT_STUCK 75

/* em_executor_config_defaults fills cfg with the documented defaults (slots: the cores). */
void em_executor_config_defaults(em_executor_config *cfg);
/* em_executor_start opens the block service, registers with the driver and starts the
 * threads. On failure nothing is left running and err says why. */
int em_executor_start(const em_executor_config *cfg, em_executor **out, char *err, size_t errlen);
/* em_executor_stop stops the executor started by em_executor_start: running tasks are asked to
 * stop, and get cfg.stop_ms to do so; it says Goodbye to the driver and frees everything.
 * Returns 0 if a task would not stop: then the executor's threads still run and nothing is
 * freed, and the process should exit (ember-executor does, at once). */
int em_executor_stop(em_executor *ex);
/* em_executor_id is the id the driver gave it (it changes when it registers again). */
uint32_t em_executor_id(em_executor *ex);
/* em_executor_address is where it serves blocks to other executors. */
const char *em_executor_address(const em_executor *ex);

#endif
