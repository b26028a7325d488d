/* em_monitor.h -- ember-executor --supervise: a monitor process that runs the executor as its
 * child, reports the child's crashes to the driver and starts it again.
 *
 * The monitor forks before any thread or nng socket exists and stays single-threaded: it
 * never uses nng itself (a fork after nng has started its threads would leave the next child
 * with a library whose threads are gone), so each crash report is sent by a short-lived
 * reporter process forked for it.
 *
 * The two processes share one page (em_monitor_page, MAP_SHARED, made before the first fork
 * and reset before each one): the executor writes its id once registered and, per task being
 * run, the task id in a cell of its own; the monitor reads the page after the executor died,
 * to say which executor died and what it was running. Any end of the executor process that
 * it did not announce as a stop (em_monitor_stopping) is a crash, an exit with status 0 (a
 * user function calling exit) included: the monitor reports it and starts it again.
 */
#ifndef EM_MONITOR_H
#define EM_MONITOR_H

#include <stdatomic.h>
#include <stdint.h>

#include "em_executor.h"

/* em_monitor_page: what the executor process tells its monitor (shared memory). */
typedef struct em_monitor_page {
    _Atomic uint32_t executor_id; /* the id the driver gave it; 0 until registered */
    uint32_t n_cells;             /* cells in running[] (the executor's slots) */
    char spill_dir[4096];         /* the spill directory it made for itself ("" none): the monitor
                                     removes it after a crash; written before any thread starts */
    _Atomic uint64_t culprit;     /* the task whose thread took a fatal signal, or that would not
                                     stop (0: none known) */
    _Atomic int stopping;         /* the executor stops on purpose: its exit is no crash */
    char reason[256];             /* why it exited by itself ("": it did not say); written
                                     before it exits */
    _Atomic uint64_t running[];   /* a task id per task being run (0: free cell) */
} em_monitor_page;

/* em_monitor_run runs the monitor of --supervise (main thread, before any thread or socket).
 * It returns 1 in the executor process, with *page set: go on as an unsupervised executor
 * would. It returns 0 in the monitor once it is done (stopped by SIGTERM or SIGINT, which it
 * passes on to the executor and waits for; the executor stopped by itself; or the first
 * executor failed to start), with *exit_status to exit with. Never returns otherwise. */
int em_monitor_run(const em_executor_config *cfg, em_monitor_page **page, int *exit_status);

/* The executor process's side (em_monitor_registered, em_monitor_spill_dir,
 * em_monitor_task_begin/end) is declared in em_executor.h. */

#endif
