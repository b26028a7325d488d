/* test_cluster_inproc.c -- a whole cluster in one process: the driver and two executors run
 * as threads over nng's inproc:// transport, and a job library runs against them as
 * ember-submit would run it (em_submit_run).
 *
 * Covers: the driver and the executor are libraries that start and stop cleanly (the
 * sanitizer build fails on any leak); a real job library (tests/jobs/wide_ops.so, which
 * checks every result against a reference it computes itself) succeeds with its tasks spread
 * over both executors; an executor stopped between two runs is counted stopped, not lost,
 * and the next run succeeds on the other one. Nothing here waits on time: em_submit_run
 * returns when the job library is done.
 *   test_cluster_inproc JOB_LIBRARY_DIR
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <nng/nng.h>

#include <ember/ember.h>

#include "em_driver.h"
#include "em_executor.h"
#include "em_log.h"
#include "em_submit.h"

static const char *jobs_dir;

typedef struct cluster {
    em_driver driver;
    pthread_t loop;
    em_executor *execs[2];
    char work[2][64];
    char secret_file[96]; /* the cluster's secret, in work[0]: every connection proves it */
} cluster;

static void *driver_loop(void *arg)
{
    em_driver_run(arg);
    return NULL;
}

static void cluster_start(cluster *c)
{
    char err[512];
    memset(c, 0, sizeof *c);
    for (int i = 0; i < 2; i++) {
        snprintf(c->work[i], sizeof c->work[i], "/tmp/ember-inproc-XXXXXX");
        assert_non_null(mkdtemp(c->work[i]));
    }
    /* a secret of the test's own: what the environment or ~/.ember holds must not matter */
    em_secret secret;
    int created;
    snprintf(c->secret_file, sizeof c->secret_file, "%s/cluster.secret", c->work[0]);
    assert_int_equal(em_secret_create(c->secret_file, &created, err, sizeof err), EMBER_OK);
    assert_int_equal(em_secret_load(c->secret_file, &secret, err, sizeof err), EMBER_OK);
    assert_true(secret.set);
    em_driver_config_defaults(&c->driver.cfg);
    c->driver.cfg.secret = secret;
    snprintf(c->driver.cfg.listen, sizeof c->driver.cfg.listen, "inproc://ember-driver-%d",
             (int)getpid());
    c->driver.cfg.status[0] = '\0'; /* the status view is tested by the integration tests */
    assert_int_equal(em_driver_start(&c->driver, err, sizeof err), EMBER_OK);
    assert_int_equal(pthread_create(&c->loop, NULL, driver_loop, &c->driver), 0);
    for (int i = 0; i < 2; i++) {
        em_executor_config cfg;
        em_executor_config_defaults(&cfg);
        snprintf(cfg.driver, sizeof cfg.driver, "%s", c->driver.bound_url);
        snprintf(cfg.listen, sizeof cfg.listen, "inproc://ember-executor-%d-%d", (int)getpid(), i);
        cfg.secret = secret;
        snprintf(cfg.work_dir, sizeof cfg.work_dir, "%s", c->work[i]);
        cfg.slots = 2;
        cfg.memory_cap = 64u << 20;
        cfg.connect_timeout_ms = 5000;
        int rc = em_executor_start(&cfg, &c->execs[i], err, sizeof err);
        if (rc != EMBER_OK) fail_msg("executor %d: %s", i, err);
    }
}

/* cluster_stop stops what still runs; the driver loop last, so that its state can be read */
static void cluster_stop_executors(cluster *c)
{
    for (int i = 0; i < 2; i++) {
        em_executor_stop(c->execs[i]);
        c->execs[i] = NULL;
    }
}

static void cluster_stop_driver(cluster *c)
{
    c->driver.stop = 1;
    pthread_join(c->loop, NULL);
}

static void cluster_free(cluster *c)
{
    em_driver_stop(&c->driver);
    for (int i = 0; i < 2; i++) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", c->work[i]);
        assert_int_equal(system(cmd), 0);
    }
}

static int run_wide_ops(cluster *c)
{
    char lib[1024];
    snprintf(lib, sizeof lib, "%s/wide_ops.so", jobs_dir);
    char *argv[] = {lib, "--partitions", "1 3", NULL};
    em_submit_opts o = {.driver = c->driver.bound_url, .quiet = 1, .secret_file = c->secret_file};
    return em_submit_run(&o, lib, 3, argv);
}

static void job_runs_on_both_executors(void **state)
{
    (void)state;
    cluster c;
    cluster_start(&c);
    assert_int_equal(run_wide_ops(&c), 0); /* every check of the job against its reference */
    cluster_stop_executors(&c);
    cluster_stop_driver(&c);
    const em_sched *s = &c.driver.sched;
    assert_int_equal(s->n_execs, 2);
    for (size_t i = 0; i < s->n_execs; i++) {
        assert_int_equal(s->execs[i]->state, EM_EXEC_STOPPED);
        assert_true(s->execs[i]->tasks_completed > 0);
        assert_int_equal(s->execs[i]->tasks_failed, 0);
    }
    assert_true(s->totals.jobs_succeeded > 0);
    assert_int_equal(s->totals.jobs_failed, 0);
    assert_null(s->jobs);           /* none left running */
    assert_int_equal(s->n_kept, 0); /* the session ended: nothing kept for it */
    assert_true(em_sched_sanity(s));
    cluster_free(&c);
}

static void stopped_executor_leaves_the_work_to_the_other(void **state)
{
    (void)state;
    cluster c;
    cluster_start(&c);
    em_executor_stop(c.execs[1]);
    c.execs[1] = NULL;
    assert_int_equal(run_wide_ops(&c), 0);
    cluster_stop_executors(&c);
    cluster_stop_driver(&c);
    const em_sched *s = &c.driver.sched;
    assert_int_equal(s->execs[1]->state, EM_EXEC_STOPPED);
    assert_string_equal(s->execs[1]->lost_reason, "stopped by its operator");
    assert_int_equal(s->execs[1]->tasks_completed, 0);
    assert_true(s->execs[0]->tasks_completed > 0);
    assert_int_equal(s->totals.jobs_failed, 0);
    cluster_free(&c);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_cluster_inproc JOB_LIBRARY_DIR\n");
        return 2;
    }
    jobs_dir = argv[1];
    em_log_init("inproc", EM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(job_runs_on_both_executors),
        cmocka_unit_test(stopped_executor_leaves_the_work_to_the_other),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    nng_fini(); /* every socket is closed: let nng reap what its threads still hold */
    return failed;
}
