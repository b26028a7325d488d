/* em_monitor.c -- ember-executor --supervise: runs the executor as a child process, reports
 * its crashes to the driver and starts it again (see em_monitor.h).
 *
 * Invariants:
 * - the monitor is single-threaded and never opens an nng socket (each report is sent by a
 *   reporter process of its own), so every fork it makes starts from a clean process;
 * - SIGCHLD, SIGTERM and SIGINT stay blocked in the monitor and are taken with sigtimedwait,
 *   so no signal is lost between a check and a wait; children get the original mask back;
 * - at most one executor process and one reporter process exist at a time;
 * - the executor process gets SIGTERM when the monitor dies (PR_SET_PDEATHSIG), so it never
 *   outlives its monitor.
 * Restarts back off: 500 ms after a crash, doubling up to 30 s while each new process dies
 * within a minute of its start; a process that ran a minute starts the backoff over.
 */
#include "em_monitor.h"

#include <ember/ember.h>

#include "em_executor_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "em_log.h"
#include "em_rpc.h"
#include "em_time.h"

#define BACKOFF_FIRST_MS  500
#define BACKOFF_MAX_MS    30000
#define STABLE_MS         60000 /* a process that ran this long starts the backoff over */
#define REPORT_TIMEOUT_MS 5000  /* to reach the driver, then for its answer */
#define WAIT_SLICE_MS     1000  /* children are reaped at least this often */

/* monitor: the monitor process's state */
typedef struct monitor {
    const em_executor_config *cfg;
    em_monitor_page *page; /* shared with the executor process */
    size_t page_size;
    sigset_t child_mask; /* the signal mask to give children (the original one) */
    pid_t self;          /* the monitor's pid */
    pid_t child;         /* the executor process; 0 when none runs */
    int child_status;    /* its wait status, once reaped */
    pid_t reporter;      /* the crash reporter process; 0 when none runs */
    int stopping;        /* SIGTERM or SIGINT received */
} monitor;

/* ---- the shared page (both processes) --------------------------------------------------- */

void em_monitor_registered(em_monitor_page *page, uint32_t executor_id)
{
    if (page) atomic_store(&page->executor_id, executor_id);
}

/* the task this thread runs, for the fatal-signal handler and exit() */
static _Thread_local uint64_t thread_task;

void em_monitor_stopping(em_monitor_page *page)
{
    if (page) atomic_store(&page->stopping, 1);
}

void em_monitor_stuck(em_monitor_page *page, uint64_t task_id, const char *reason)
{
    if (!page) return;
    snprintf(page->reason, sizeof page->reason, "%s", reason);
    atomic_store(&page->culprit, task_id);
}

void em_monitor_exit_called(em_monitor_page *page)
{
    if (!page) return;
    snprintf(page->reason, sizeof page->reason, "its process exited: a task called exit()");
    if (thread_task) atomic_store(&page->culprit, thread_task);
}

void em_monitor_spill_dir(em_monitor_page *page, const char *dir)
{
    if (page) snprintf(page->spill_dir, sizeof page->spill_dir, "%s", dir);
}

static em_monitor_page *handler_page;

/* on_fatal_signal names the task whose thread faulted (or aborted) in the page, then lets
 * the signal do what it does by default (SA_RESETHAND): the executor dies of it, the monitor
 * reports that task alone as the cause. Async-signal-safe: a TLS read and an atomic store. */
static void on_fatal_signal(int sig)
{
    (void)sig; /* returning re-runs the faulting instruction, or lets abort() raise again */
    if (handler_page && thread_task) atomic_store(&handler_page->culprit, thread_task);
}

/* watch_fatal_signals installs on_fatal_signal in the executor process. */
static void watch_fatal_signals(em_monitor_page *page)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    handler_page = page;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sa.sa_flags = (int)SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
}

int em_monitor_task_begin(em_monitor_page *page, uint64_t task_id)
{
    if (!page) return -1;
    thread_task = task_id;
    for (uint32_t i = 0; i < page->n_cells; i++) {
        uint64_t free_cell = 0;
        if (atomic_compare_exchange_strong(&page->running[i], &free_cell, task_id)) return (int)i;
    }
    return -1; /* more tasks than slots: cannot happen, and only the crash report misses it */
}

void em_monitor_task_end(em_monitor_page *page, int cell)
{
    thread_task = 0;
    if (page && cell >= 0 && (uint32_t)cell < page->n_cells) atomic_store(&page->running[cell], 0);
}

static void page_reset(em_monitor_page *page)
{
    atomic_store(&page->executor_id, 0);
    atomic_store(&page->culprit, 0);
    atomic_store(&page->stopping, 0);
    page->reason[0] = '\0';
    page->spill_dir[0] = '\0';
    for (uint32_t i = 0; i < page->n_cells; i++) atomic_store(&page->running[i], 0);
}

/* ---- what died, and cleaning up after it ------------------------------------------------ */

/* cause_text describes a wait status: "killed by signal 11 (SIGSEGV)", "exited with status 1" */
static void cause_text(int status, char *out, size_t outlen)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(sig);
        snprintf(out, outlen, "killed by signal %d (SIG%s)%s", sig, abbrev ? abbrev : "?",
                 WCOREDUMP(status) ? ", core dumped" : "");
    } else {
        snprintf(out, outlen, "exited with status %d", WEXITSTATUS(status));
    }
}

/* remove_spill_dir removes the spill directory the dead executor made for itself: no other
 * process uses it (it came from mkdtemp), so every file in it is a leftover. */
static void remove_spill_dir(em_monitor_page *page)
{
    page->spill_dir[sizeof page->spill_dir - 1] = '\0';
    if (!page->spill_dir[0]) return;
    DIR *dir = opendir(page->spill_dir);
    unsigned files = 0;
    if (dir) {
        struct dirent *e;
        while ((e = readdir(dir)))
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
                unlinkat(dirfd(dir), e->d_name, 0) == 0)
                files++;
        closedir(dir);
    }
    if (rmdir(page->spill_dir) != 0 && errno != ENOENT)
        em_warn("cannot remove the dead executor's spill directory path=%s error=\"%s\"",
                page->spill_dir, strerror(errno));
    else if (files)
        em_info("removed the dead executor's spill files path=%s files=%u", page->spill_dir, files);
}

/* ---- the crash report (reporter process) ------------------------------------------------ */

/* report sends ExecutorCrashed (c) to the driver; returns the process's exit status. */
static int report(const em_executor_config *cfg, Ember__ExecutorCrashed *c)
{
    uint32_t executor_id = c->executor_id;
    em_rpc rpc;
    em_rpc_chan ch = {0};
    em_rpc_reply reply = {0};
    char err[512] = "";
    em_rpc_opts o = {"supervisor", 1u << 20, REPORT_TIMEOUT_MS, &cfg->secret, &cfg->tls, 0};
    int rc = em_rpc_open(&rpc, cfg->driver, &o, err, sizeof err);
    if (rc != EMBER_OK) {
        em_warn("cannot report the crash to the driver executor=%u error=\"%s\"", executor_id, err);
        return 1;
    }
    if ((rc = em_rpc_chan_open(&rpc, &ch)) == EMBER_OK)
        rc = em_rpc_call(&rpc, &ch, EM_MSG_EXECUTOR_CRASHED, &c->base, NULL, 0, REPORT_TIMEOUT_MS,
                         &reply, err, sizeof err);
    Ember__ReportReply *rr =
        rc == EMBER_OK ? em_frame_unpack(&reply.frame, EM_MSG_REPORT_REPLY) : NULL;
    if (rr)
        em_info("crash reported to the driver executor=%u known=%d", executor_id, rr->known);
    else
        em_warn("cannot report the crash to the driver executor=%u error=\"%s\"", executor_id,
                rc == EMBER_OK ? "unreadable answer" : err);
    em_pb_free(rr);
    em_rpc_reply_free(&reply);
    em_rpc_chan_close(&ch);
    em_rpc_close(&rpc);
    return rr ? 0 : 1;
}

/* to_child sets up a process just forked: the original signal mask, and death with the
 * monitor (`death_sig`); a monitor that died already ends it at once. */
static void to_child(const monitor *m, int death_sig)
{
    sigprocmask(SIG_SETMASK, &m->child_mask, NULL);
    if (prctl(PR_SET_PDEATHSIG, death_sig) != 0 || getppid() != m->self) _exit(0);
}

/* ---- waiting ---------------------------------------------------------------------------- */

static void reap(monitor *m)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == m->child) {
            m->child = 0;
            m->child_status = status;
        } else if (pid == m->reporter) {
            m->reporter = 0;
        }
    }
}

/* wait_event waits for a signal, at most until deadline (ms, now_ms clock; < 0: a slice),
 * then reaps children. SIGTERM and SIGINT are passed on to the executor process. */
static void wait_event(monitor *m, int64_t deadline)
{
    int64_t left = deadline < 0 ? WAIT_SLICE_MS : deadline - em_now_ms();
    if (left > WAIT_SLICE_MS) left = WAIT_SLICE_MS;
    if (left < 0) left = 0;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    struct timespec ts = {left / 1000, (left % 1000) * 1000000};
    int sig = sigtimedwait(&set, NULL, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
        if (!m->stopping)
            em_info("monitor stopping signal=%d executor_pid=%d", sig, m->child ? m->child : 0);
        m->stopping = 1;
        if (m->child) kill(m->child, SIGTERM);
    }
    reap(m);
}

/* start_reporter forks a process that reports the crash of executor_id (wait status
 * `status`, process `dead`) to the driver. */
static void start_reporter(monitor *m, uint32_t executor_id, int status, pid_t dead)
{
    uint64_t *tasks = calloc(m->page->n_cells ? m->page->n_cells : 1, sizeof *tasks);
    size_t n = 0;
    uint64_t culprit = atomic_load(&m->page->culprit);
    if (tasks && culprit) /* the task whose thread took the signal: the others are innocent */
        tasks[n++] = culprit;
    for (uint32_t i = 0; tasks && !culprit && i < m->page->n_cells; i++) {
        uint64_t t = atomic_load(&m->page->running[i]);
        if (t) tasks[n++] = t;
    }
    if (m->reporter) { /* the previous report still hangs: this one is newer */
        kill(m->reporter, SIGKILL);
        while (m->reporter) wait_event(m, -1);
    }
    pid_t pid = fork();
    if (pid == 0) {
        to_child(m, SIGKILL);
        Ember__ExecutorCrashed c = EMBER__EXECUTOR_CRASHED__INIT;
        c.executor_id = executor_id;
        c.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        c.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
        c.pid = (int32_t)dead;
        c.task_ids = tasks;
        c.n_task_ids = n;
        c.reason = m->page->reason;
        _exit(report(m->cfg, &c));
    }
    if (pid < 0)
        em_warn("cannot report the crash: fork failed error=\"%s\"", strerror(errno));
    else
        m->reporter = pid;
    free(tasks);
}

/* finish lets a running report end (briefly) and releases the monitor's resources. */
static void finish(monitor *m)
{
    int64_t deadline = em_now_ms() + 1000;
    while (m->reporter && em_now_ms() < deadline) wait_event(m, deadline);
    if (m->reporter) {
        kill(m->reporter, SIGKILL);
        waitpid(m->reporter, NULL, 0);
    }
    munmap(m->page, m->page_size);
    sigprocmask(SIG_SETMASK, &m->child_mask, NULL);
}

/* ---- the monitor ------------------------------------------------------------------------ */

/* after_death handles a dead executor process: logs, reports and cleans up; returns how long
 * to wait before the next start. */
static uint32_t after_death(monitor *m, pid_t pid, int64_t started, uint32_t backoff)
{
    int status = m->child_status;
    int64_t uptime = em_now_ms() - started;
    uint32_t executor_id = atomic_load(&m->page->executor_id);
    uint32_t running = 0;
    for (uint32_t i = 0; i < m->page->n_cells; i++)
        running += atomic_load(&m->page->running[i]) != 0;
    char cause[96];
    cause_text(status, cause, sizeof cause);
    backoff = backoff == 0 || uptime >= STABLE_MS ? BACKOFF_FIRST_MS
              : backoff >= BACKOFF_MAX_MS / 2     ? BACKOFF_MAX_MS
                                                  : backoff * 2;
    em_warn("executor process died pid=%d executor=%u cause=\"%s\"%s%s%s running_tasks=%u "
            "uptime_ms=%lld: restarting in %u ms",
            (int)pid, executor_id, cause, m->page->reason[0] ? " reason=\"" : "", m->page->reason,
            m->page->reason[0] ? "\"" : "", running, (long long)uptime, backoff);
    if (executor_id) start_reporter(m, executor_id, status, pid);
    if (m->cfg->ready_file[0] && unlink(m->cfg->ready_file) != 0 && errno != ENOENT)
        em_warn("cannot remove the ready file path=%s error=\"%s\"", m->cfg->ready_file,
                strerror(errno));
    remove_spill_dir(m->page);
    return backoff;
}

static int monitor_init(monitor *m, const em_executor_config *cfg)
{
    memset(m, 0, sizeof *m);
    m->cfg = cfg;
    m->self = getpid();
    m->page_size = sizeof *m->page + (size_t)cfg->slots * sizeof m->page->running[0];
    m->page = mmap(NULL, m->page_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m->page == MAP_FAILED) {
        fprintf(stderr, "ember-executor: --supervise: cannot map a shared page: %s\n",
                strerror(errno));
        return EMBER_ERR_NOMEM;
    }
    m->page->n_cells = cfg->slots;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, &m->child_mask);
    em_log_init("monitor", EM_LOG_INFO);
    return EMBER_OK;
}

int em_monitor_run(const em_executor_config *cfg, em_monitor_page **page, int *exit_status)
{
    monitor m;
    *exit_status = 1;
    if (monitor_init(&m, cfg) != EMBER_OK) return 0;
    em_info("monitor started pid=%d driver=%s", (int)m.self, cfg->driver);
    uint32_t backoff = 0, restarts = 0;
    int registered_once = 0;
    while (!m.stopping) {
        page_reset(m.page);
        int64_t started = em_now_ms();
        pid_t pid = fork();
        if (pid == 0) {
            to_child(&m, SIGTERM);
            em_log_init("executor", EM_LOG_INFO);
            watch_fatal_signals(m.page);
            *page = m.page;
            return 1;
        }
        if (pid < 0) {
            em_error("cannot start the executor process: fork failed error=\"%s\"",
                     strerror(errno));
            m.child_status = 1 << 8; /* as if it exited with status 1 */
        } else {
            m.child = pid;
            em_info("executor process started pid=%d restarts=%u", (int)pid, restarts);
            while (m.child) wait_event(&m, -1);
        }
        int status = m.child_status;
        registered_once |= atomic_load(&m.page->executor_id) != 0;
        int stopped = WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
                      atomic_load(&m.page->stopping); /* it said it stops: no crash */
        if (m.stopping || stopped) {
            char cause[96];
            cause_text(status, cause, sizeof cause);
            em_info("executor process ended pid=%d cause=\"%s\": monitor exiting", (int)pid, cause);
            *exit_status = 0;
            break;
        }
        if (!registered_once && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
            /* it could not start: it said why */
            *exit_status = WEXITSTATUS(status);
            break;
        }
        backoff = after_death(&m, pid, started, backoff);
        int64_t deadline = em_now_ms() + backoff;
        while (!m.stopping && em_now_ms() < deadline) wait_event(&m, deadline);
        restarts++;
        if (m.stopping) *exit_status = 0;
    }
    finish(&m);
    return 0;
}
