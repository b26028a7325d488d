/* em_executor_int.h -- an executor's shared state: task queue, results, stage cache.
 *
 * Threads of an executor:
 *   poller   (em_comm.c)   keeps one Poll parked at the driver, queues the tasks it gets;
 *   reporter (em_comm.c)   sends finished task results to the driver in batches;
 *   slots    (em_runner.c) N threads that run tasks from the queue;
 *   blocks   (em_block_service.c) serves block fetches from other executors.
 * They share the structures below only through the queues and caches' own locks.
 */
#ifndef EM_EXECUTOR_INT_H
#define EM_EXECUTOR_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "em_accs.h"
#include "em_blockstore.h"
#include "em_buf.h"
#include "em_executor.h"
#include "em_pipeline.h"
#include "em_rpc.h"
#include "em_server.h"

/* ex_task: one task to run, as the driver launched it (owned by the queue, then by its
 * slot). */
typedef struct ex_task {
    Ember__TaskLaunch launch; /* its data_offset and data_len are no longer used: see data */
    uint8_t *data;            /* parallelize input (owned) */
    size_t data_len;
    struct ex_task *next;
} ex_task;

/* ex_result: one finished task, waiting for the reporter. The slot that ran it fills msg,
 * which the reporter sends as it is; msg's strings and arrays point at what ex_result owns:
 * message, msg.bucket_bytes and msg.cached (malloc'd), and data (msg.data_len bytes). */
typedef struct ex_result {
    Ember__TaskResult msg;
    char message[1024];
    em_buf data;                         /* collect output, in the Report's data part */
    struct Ember__CachedBlock **evicted; /* cached partitions evicted to make room (owned):
                                            they go in the Report, not the result */
    size_t n_evicted;
    em_accs accs;                  /* a successful task's accumulator additions, */
    Ember__Accumulator *acc_items; /* and msg.accumulators made from them (owned) */
    struct ex_result *next;
} ex_result;

/* ex_result_new makes a result for a launched task; ex_result_free frees a list of them;
 * ex_result_post hands a finished one to the reporter (takes ex->lock). */
ex_result *ex_result_new(const ex_task *task);
void ex_result_free(ex_result *r);
struct em_executor;
void ex_result_post(struct em_executor *ex, ex_result *res);

/* ex_stage: a stage definition received from the driver, and its pipeline once built. */
typedef struct ex_stage {
    uint64_t stage_id;
    Ember__StageDef *def; /* owned */
    pthread_mutex_t lock; /* guards pipeline and lib construction */
    em_pipeline *pipeline;
    void *lib;   /* dlopen handle (owned by the library cache) */
    int refs;    /* running tasks using it; guarded by the cache lock */
    int retired; /* replaced by a newer definition: freed by its last task */
    int64_t last_used;
} ex_stage;

#define EX_STAGE_CACHE 64

/* ex_slot_state: what one slot runs, for the poller (cancellations) and the watchdog. The
 * slot writes task_id; the poller sets cancel; the slot reads it between records. */
typedef struct ex_slot_state {
    _Atomic uint64_t task_id;     /* the launch it runs, 0: none */
    _Atomic uint64_t cancel_id;   /* the launch the driver asked it to stop: it stops when this
                                     is the one it runs (an id, not a flag, so that a request
                                     for the previous task cannot stop the next) */
    _Atomic int64_t cancel_at_ms; /* when (em_now_ms) */
    /* what its Kafka readers' own fetcher read, and the fetches it handed to librdkafka */
    _Atomic uint64_t kafka_fetched_records, kafka_fetch_fallbacks;
} ex_slot_state;

struct em_executor {
    em_executor_config cfg;
    char bound_url[256];
    em_rpc rpc; /* to the driver */
    int rpc_open;
    pthread_mutex_t reg_lock; /* guards executor_id and re-registration */
    uint32_t executor_id;
    uint32_t heartbeat_ms;
    pthread_mutex_t lock; /* guards the task queue, results, stage cache */
    pthread_cond_t task_ready, result_ready;
    ex_task *tasks_head, *tasks_tail;
    ex_result *results;
    ex_stage *stages[EX_STAGE_CACHE];
    int64_t stage_clock;
    volatile int stop;
    em_blockstore *blocks;
    struct em_state_cache *states; /* streaming state kept between batches (em_state_store.h) */
    struct em_libcache *libs;
    struct em_monitor_page *monitor; /* shared with the monitor (--supervise); NULL otherwise */
    em_server *srv;                  /* the block service */
    int spill_dir_made;              /* cfg.spill_dir was made here: removed at stop */
    pthread_t blocks_thread, poller, reporter, watchdog, *slots;
    uint32_t n_slots;  /* slot threads started */
    int threads_begun; /* the block service, poller, reporter, watchdog threads started (bits) */
    ex_slot_state *slot_states; /* one per slot */
    _Atomic uint32_t next_slot; /* the index the next slot thread takes */
    _Atomic uint64_t tasks_run; /* tasks the slots have finished: the watchdog sees a job that
                                   began and ended between two of its looks */
    int guarded;                /* counted by the exit() guard (em_executor.c) */
};

/* em_executor.c */
/* em_executor_cancel stops the launch task_id: unqueued if it waits (reported cancelled),
 * asked to stop between records if a slot runs it (poller thread; takes ex->lock). */
void em_executor_cancel(em_executor *ex, uint64_t task_id);
/* em_executor_watchdog: a slot whose cancelled task runs on past cfg.cancel_grace_ms cannot be
 * stopped (a thread cannot be killed safely): the process exits, and its supervisor restarts
 * it and reports why. */
void *em_executor_watchdog(void *arg);

/* em_comm.c */
int em_comm_register(em_executor *ex, char *err, size_t errlen);
void *em_comm_poller(void *arg);
void *em_comm_reporter(void *arg);
/* em_comm_goodbye tells the driver this executor is stopping on purpose (main thread). */
void em_comm_goodbye(em_executor *ex);

/* em_monitor.c: what the executor process tells its monitor (--supervise; each accepts a
 * NULL page and then does nothing) */
struct em_monitor_page;
/* em_monitor_registered records the executor id (main thread, once registered). */
void em_monitor_registered(struct em_monitor_page *page, uint32_t executor_id);
/* em_monitor_spill_dir records the spill directory the executor made for itself, removed by
 * the monitor after a crash (main thread, before any other thread starts). */
void em_monitor_spill_dir(struct em_monitor_page *page, const char *dir);
/* em_monitor_task_begin records that task_id runs (slot threads, no lock); returns the cell
 * to give em_monitor_task_end, or -1 when page is NULL. */
int em_monitor_task_begin(struct em_monitor_page *page, uint64_t task_id);
void em_monitor_task_end(struct em_monitor_page *page, int cell);
/* em_monitor_stopping records that the executor stops on purpose: its exit is no crash. */
void em_monitor_stopping(struct em_monitor_page *page);
/* em_monitor_stuck records that the executor exits because task_id would not stop (reason
 * says what happened), for the monitor's crash report. */
void em_monitor_stuck(struct em_monitor_page *page, uint64_t task_id, const char *reason);
/* em_monitor_exit_called records that the calling thread called exit() while the executor
 * ran: the task it runs, if it runs one, is to blame. */
void em_monitor_exit_called(struct em_monitor_page *page);

/* em_runner.c */
void *em_runner_slot(void *arg);
void em_stage_cache_put(em_executor *ex, Ember__StageDef *def);
void em_stage_cache_free(em_executor *ex);

#endif
