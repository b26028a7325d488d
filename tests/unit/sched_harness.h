/* sched_harness.h -- a simulated cluster around the scheduler core, for test_sched.c.
 *
 * The harness plays every other part of the driver and the executors: it builds job graphs,
 * submits them, takes the scheduler's effects (recording each launch, re-arming a waiting
 * executor's poll as the real poller does), and answers tasks with results chosen by the
 * test. Time is a number the test moves; nothing sleeps and nothing is random, so each test
 * replays the same events and sees the same effects on every run.
 */
#ifndef SCHED_HARNESS_H
#define SCHED_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "em_sched.h"

#define H_MAX_NODES    16
#define H_MAX_EXECS    8
#define H_MAX_LAUNCHES 4096
#define H_MAX_RANGES   64

/* h_graph: a job graph under construction (nodes parents first) */
typedef struct h_graph {
    Ember__JobGraph g;
    Ember__Node nodes[H_MAX_NODES], *node_ptrs[H_MAX_NODES];
    uint32_t parents[H_MAX_NODES];
    Ember__KafkaRange ranges[H_MAX_RANGES], *range_ptrs[H_MAX_RANGES];
    Ember__Action action;
    uint8_t sha[32];
} h_graph;

/* h_launch: a task launch seen in a Tasks effect */
typedef struct h_launch {
    em_exec_id ex;
    em_stage_id stage;
    uint32_t part, attempt;
    em_task_id id;
    int answered; /* the harness or the test reported its result */
} h_launch;

typedef struct h_cluster {
    em_sched s;
    int64_t now;
    em_exec_id execs[H_MAX_EXECS];
    em_session_id exec_sessions[H_MAX_EXECS];
    size_t n_execs;
    int repoll[H_MAX_EXECS + 1]; /* by exec id: its poll was answered, re-arm it */
    int silent[H_MAX_EXECS + 1]; /* by exec id: it no longer polls (a hung process) */
    h_launch launches[H_MAX_LAUNCHES];
    size_t n_launches;
    em_job_id done[64]; /* JOB_DONE effects, in order */
    size_t n_done;
    size_t tasks_effects, empty_tasks_effects, releases, disconnects;
    uint64_t drop_shuffles[256], drop_cached[256], cancels[256];
    size_t n_drop_shuffles, n_drop_cached, n_cancels;
    uint32_t task_timeout_ms; /* given to the jobs h_submit submits */
    int defs_seen;            /* stage definitions sent */
} h_cluster;

/* graph building: each returns the new node's index */
void h_graph_init(h_graph *b, Ember__ActionKind action);
uint32_t h_kafka(h_graph *b, uint32_t partitions);
uint32_t h_map(h_graph *b, uint32_t parent);
uint32_t h_reduce(h_graph *b, uint32_t parent, uint32_t partitions);
void h_persist(h_graph *b, uint32_t node);
/* h_submit submits b (target: its last node) for session; returns the job id (asserted).
 * h_try_submit returns the scheduler's code, and its message in err. */
em_job_id h_submit(h_cluster *c, h_graph *b, uint64_t session);
int h_try_submit(h_cluster *c, h_graph *b, uint64_t session, em_job_id *job, char *err,
                 size_t errlen);

/* cluster */
void h_cluster_init(h_cluster *c, const em_sched_config *cfg, size_t n_execs, uint32_t slots);
void h_cluster_fini(h_cluster *c);
em_sched_config h_config(void); /* the driver's defaults, smaller limits, no queueing, no
                                   Kafka affinity */
/* h_expect_failed: job failed, with code (0: any) and an error holding needle */
void h_expect_failed(h_cluster *c, em_job_id job, int code, const char *needle);
em_exec *h_exec(h_cluster *c, size_t i); /* the i-th registered executor (0-based) */
/* h_settle carries out every effect, re-arming answered polls, until nothing more happens. */
void h_settle(h_cluster *c);
/* h_running: launches not yet answered, on executor i (i < 0: any), of stage (0: any) */
size_t h_running(h_cluster *c, int i, em_stage_id stage);
/* h_finish answers the oldest unanswered launch matching (executor i or any, stage or any)
 * with success; returns 0 if there is none. bucket sizes: one 100-byte bucket per reducer. */
int h_finish(h_cluster *c, int i, em_stage_id stage);
/* h_finish_all answers every unanswered launch with success, repeatedly, until the job
 * `job` is done (or nothing runs). */
void h_finish_all(h_cluster *c, em_job_id job);
/* h_fail answers the oldest matching launch with a failure */
int h_fail(h_cluster *c, int i, em_stage_id stage, int code, int fatal, const char *message);
/* h_cancelled: the launch was sent in a cancel list */
int h_cancelled(h_cluster *c, em_task_id id);
/* h_report_cancelled answers every launch the executors were told to stop, as they do:
 * EMBER_ERR_CANCELLED */
void h_report_cancelled(h_cluster *c);
/* h_answer sends res (task_id filled in from the launch) for the oldest matching launch */
int h_answer(h_cluster *c, int i, em_stage_id stage, Ember__TaskResult *res);
/* h_stage: stage k (0-based, plan order) of job */
em_stage *h_stage(h_cluster *c, em_job_id job, size_t k);
int h_job_done(h_cluster *c, em_job_id job);
/* h_advance: time passes, in steps of half a heartbeat, each ending with a tick (waiting
 * executors are answered and poll again, so live ones are heard from as real ones are) */
void h_advance(h_cluster *c, int64_t us);

#endif
