/* test_sched.c -- the scheduler core (driver/em_sched.h), driven by events, deterministically.
 *
 * Each case replays what an integration test checks by timing, here without processes,
 * sleeps or races (sched_harness.h simulates the executors):
 *   - a two-stage job runs map then reduce tasks, slots filled, in partition order;
 *   - an executor lost after 4 of 8 map tasks: exactly its 2 done outputs and 2 running
 *     tasks run again, counted as executor_lost;
 *   - a lost executor holding 4 of 12 map outputs of a stage whose grandchild runs: exactly
 *     those 4 and the 2 outputs of the middle stage it held run again, counted;
 *   - a fetch failure: every output of that stage on the holder recomputed, the reader waits;
 *   - retries up to the limit, elsewhere when possible, then one message with the cause; a
 *     fatal failure ends the job at once;
 *   - a crash report names the signal and blames only the task it names;
 *   - cached partitions: locality, the locality wait, eviction counted as a recomputation;
 *   - skipped stages: a second action of the same session reads the kept map output, another
 *     session's does not;
 *   - sessions: a detached one's jobs cancelled, its kept outputs dropped after the grace
 *     unless it comes back; Goodbye drops them at once;
 *   - heartbeats, executor timeouts, Goodbye, registering again, collect limits, sanity.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ember/ember.h>

#include "sched_harness.h"

#define SESSION 0x5e55
#define ANY     (-1)
#define NONE_ST ((em_stage_id){0})

/* word_count: kafka (map_parts) -> map -> reduce_by_key (reducers), counted */
static em_job_id word_count(h_cluster *c, uint32_t map_parts, uint32_t reducers, uint64_t session)
{
    h_graph b;
    h_graph_init(&b, EMBER__ACTION_KIND__ACTION_COUNT);
    h_reduce(&b, h_map(&b, h_kafka(&b, map_parts)), reducers);
    return h_submit(c, &b, session);
}

/* narrow_job: kafka (parts) -> map, one stage, for session */
static em_job_id narrow_job(h_cluster *c, Ember__ActionKind action, uint32_t parts,
                            uint64_t session)
{
    h_graph b;
    h_graph_init(&b, action);
    h_map(&b, h_kafka(&b, parts));
    return h_submit(c, &b, session);
}

static void two_stages_in_order(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    h_cluster_init(&c, &cfg, 2, 2);
    em_job_id job = word_count(&c, 8, 4, SESSION);
    em_stage *map = h_stage(&c, job, 0), *reduce = h_stage(&c, job, 1);
    assert_int_equal(map->state, EM_RUN_RUNNING);
    assert_int_equal(reduce->state, EM_RUN_WAITING);
    /* 2 slots each: partitions 0,1 on the first executor, 2,3 on the second */
    assert_int_equal(c.n_launches, 4);
    for (uint32_t k = 0; k < 4; k++) {
        assert_int_equal(c.launches[k].part, k);
        assert_int_equal(c.launches[k].ex.v, c.execs[k / 2].v);
    }
    assert_int_equal(c.defs_seen, 2); /* the map stage, once per executor */
    while (h_running(&c, ANY, map->id)) h_finish(&c, ANY, map->id);
    assert_int_equal(map->state, EM_RUN_SUCCEEDED);
    assert_int_equal(reduce->state, EM_RUN_RUNNING);
    h_finish_all(&c, job);
    em_job *j = em_sched_job(&c.s, job);
    assert_int_equal(j->state, EM_RUN_SUCCEEDED);
    assert_int_equal(j->tasks_done, 12);
    assert_int_equal(j->records_in, 80); /* 8 map tasks x 10 */
    assert_int_equal(c.s.totals.tasks_launched, 12);
    assert_int_equal(c.s.totals.jobs_succeeded, 1);
    assert_true(j->released); /* the harness delivered it */
    h_cluster_fini(&c);
}

static void lost_during_map_reruns_only_its_work(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    h_cluster_init(&c, &cfg, 2, 2);
    em_job_id job = word_count(&c, 8, 4, SESSION);
    em_stage *map = h_stage(&c, job, 0);
    for (int k = 0; k < 4; k++) h_finish(&c, ANY, map->id); /* 0..3 done: 2,3 on the second */
    assert_int_equal(map->n_done, 4);
    assert_int_equal(h_running(&c, 1, map->id), 2); /* 6,7 run there */
    em_sched_executor_lost(&c.s, h_exec(&c, 1), "killed", c.now);
    h_settle(&c);
    assert_int_equal(c.disconnects, 1);
    assert_int_equal(map->n_recomputed[EM_RECOMPUTE_EXECUTOR_LOST], 4);
    assert_int_equal(map->n_done, 2);
    h_finish_all(&c, job);
    em_job *j = em_sched_job(&c.s, job);
    assert_int_equal(j->state, EM_RUN_SUCCEEDED);
    assert_int_equal(map->n_launched, 12);    /* 8 + the 4 it lost */
    assert_int_equal(j->records_in, 80);      /* each partition counted once */
    for (size_t k = 8; k < c.n_launches; k++) /* every later launch on the survivor */
        assert_int_equal(c.launches[k].ex.v, c.execs[0].v);
    h_cluster_fini(&c);
}

static void lost_outputs_of_grandparent_recomputed_exactly(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    h_cluster_init(&c, &cfg, 3, 4);
    h_graph b; /* kafka (12) -> reduce (6) -> map -> reduce (4), counted: three stages */
    h_graph_init(&b, EMBER__ACTION_KIND__ACTION_COUNT);
    h_reduce(&b, h_map(&b, h_reduce(&b, h_kafka(&b, 12), 6)), 4);
    em_job_id job = h_submit(&c, &b, SESSION);
    em_stage *s0 = h_stage(&c, job, 0), *s1 = h_stage(&c, job, 1), *s2 = h_stage(&c, job, 2);
    while (s0->state == EM_RUN_RUNNING) h_finish(&c, ANY, s0->id);
    while (s1->state == EM_RUN_RUNNING) h_finish(&c, ANY, s1->id);
    assert_int_equal(s2->state, EM_RUN_RUNNING);
    size_t held0 = 0, held1 = 0;
    for (uint32_t p = 0; p < 12; p++) held0 += s0->map_exec[p].v == c.execs[1].v;
    for (uint32_t p = 0; p < 6; p++) held1 += s1->map_exec[p].v == c.execs[1].v;
    assert_int_equal(held0, 4);
    assert_int_equal(held1, 2);
    em_sched_executor_lost(&c.s, h_exec(&c, 1), "killed", c.now);
    h_settle(&c);
    /* the middle stage must run again for its 2 outputs, and reads every map output: the 4
     * the lost executor held are computed again too, no more */
    assert_int_equal(s0->n_recomputed[EM_RECOMPUTE_EXECUTOR_LOST], 4);
    assert_int_equal(s1->n_recomputed[EM_RECOMPUTE_EXECUTOR_LOST], 2);
    assert_int_equal(s0->state, EM_RUN_RUNNING);
    assert_int_equal(h_running(&c, ANY, s1->id), 0); /* held until its input is whole */
    /* the last stage's running tasks cannot read what the lost executor held */
    Ember__TaskResult res = EMBER__TASK_RESULT__INIT;
    res.code = EMBER_ERR_CONNECT;
    res.message = "cannot reach the holder";
    res.fetch_failed = 1;
    res.fetch_map_stage = s1->output_stage_id.v;
    res.fetch_map_partition = 4;
    while (h_running(&c, ANY, s2->id)) h_answer(&c, ANY, s2->id, &res);
    assert_int_equal(s2->n_recomputed[EM_RECOMPUTE_FETCH_FAILURE], 4);
    assert_int_equal(s1->n_recomputed[EM_RECOMPUTE_FETCH_FAILURE], 0); /* already under way */
    h_finish_all(&c, job);
    assert_int_equal(em_sched_job(&c.s, job)->state, EM_RUN_SUCCEEDED);
    assert_int_equal(s0->n_launched, 16);
    assert_int_equal(s1->n_launched, 8);
    assert_int_equal(s2->n_launched, 8);
    assert_true(s2->def_version > 0); /* its inputs moved: defined again */
    h_cluster_fini(&c);
}

static void fetch_failure_recomputes_the_holders_outputs(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    h_cluster_init(&c, &cfg, 2, 4);
    em_job_id job = word_count(&c, 8, 2, SESSION);
    em_stage *map = h_stage(&c, job, 0), *reduce = h_stage(&c, job, 1);
    while (map->state == EM_RUN_RUNNING) h_finish(&c, ANY, map->id);
    uint32_t bad = 5; /* held by the second executor, with 3 others */
    assert_int_equal(map->map_exec[bad].v, c.execs[1].v);
    assert_int_equal(h_running(&c, ANY, reduce->id), 2); /* both readers started */
    h_advance(&c, 1000);
    Ember__TaskResult res = EMBER__TASK_RESULT__INIT;
    res.code = EMBER_ERR_MALFORMED;
    res.message = "shuffle bucket is corrupt";
    res.fetch_failed = 1;
    res.fetch_map_stage = map->output_stage_id.v;
    res.fetch_map_partition = bad;
    h_answer(&c, ANY, reduce->id, &res);
    assert_int_equal(map->n_recomputed[EM_RECOMPUTE_FETCH_FAILURE], 4);
    assert_int_equal(reduce->n_recomputed[EM_RECOMPUTE_FETCH_FAILURE], 1);
    assert_int_equal(reduce->n_retried, 0); /* not the reader's fault */
    /* the 4 outputs computed again (on the same executor, say), then the other reader, started
     * before them, reports the same old failure: the new outputs stay */
    for (int k = 0; k < 4; k++) assert_true(h_finish(&c, ANY, map->id));
    assert_int_equal(map->n_done, 8);
    h_answer(&c, ANY, reduce->id, &res);
    assert_int_equal(map->n_recomputed[EM_RECOMPUTE_FETCH_FAILURE], 4);
    assert_int_equal(reduce->n_recomputed[EM_RECOMPUTE_FETCH_FAILURE], 2);
    h_finish_all(&c, job);
    assert_int_equal(em_sched_job(&c.s, job)->state, EM_RUN_SUCCEEDED);
    assert_int_equal(map->n_launched, 12);
    h_cluster_fini(&c);
}

static void retries_then_one_message(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    h_cluster_init(&c, &cfg, 2, 1);
    em_job_id job = narrow_job(&c, EMBER__ACTION_KIND__ACTION_COUNT, 1, SESSION);
    em_stage *st = h_stage(&c, job, 0);
    em_exec_id first = c.launches[0].ex;
    h_fail(&c, ANY, st->id, EMBER_ERR_USER, 0, "bad record");
    assert_int_equal(st->n_retried, 1);
    assert_int_not_equal(c.launches[1].ex.v, first.v); /* elsewhere */
    assert_int_equal(c.launches[1].attempt, 1);
    for (int k = 0; k < 3; k++) h_fail(&c, ANY, st->id, EMBER_ERR_USER, 0, "bad record");
    h_expect_failed(&c, job, EMBER_ERR_USER, "partition 0 failed 4 times");
    h_expect_failed(&c, job, EMBER_ERR_USER, "bad record [EMBER_ERR_USER]");
    assert_int_equal(c.n_launches, 4);
    assert_int_equal(c.s.totals.jobs_failed, 1);
    h_cluster_fini(&c);
}

static void fatal_failure_ends_the_job_at_once(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    h_cluster_init(&c, &cfg, 2, 2);
    em_job_id job = word_count(&c, 4, 2, SESSION);
    h_fail(&c, ANY, h_stage(&c, job, 0)->id, EMBER_ERR_SYMBOL, 1, "no symbol parse");
    h_expect_failed(&c, job, 0, "failed 1 time (attempt 1");
    assert_int_equal(em_sched_job(&c.s, job)->stages[1].state, EM_RUN_WAITING); /* never ran */
    /* the other launches' results arrive later and are ignored */
    while (h_finish(&c, ANY, NONE_ST)) {
    }
    assert_int_equal(c.n_done, 1);
    h_cluster_fini(&c);
}

static void crash_report_blames_only_its_task(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    cfg.max_attempts = 2;
    h_cluster_init(&c, &cfg, 2, 2);
    em_job_id job = narrow_job(&c, EMBER__ACTION_KIND__ACTION_COUNT, 4, SESSION);
    em_stage *st = h_stage(&c, job, 0);
    em_exec *victim = h_exec(&c, 0); /* runs partitions 0 and 1 */
    em_sched_executor_closed(&c.s, victim, c.now);
    h_settle(&c);
    assert_int_equal(victim->state, EM_EXEC_ALIVE); /* waiting for the crash report */
    uint64_t culprit = c.launches[0].id.v;
    em_crash segv = {11, 0, NULL, &culprit, 1};
    assert_true(em_sched_executor_crashed(&c.s, victim, &segv, c.now));
    h_settle(&c);
    assert_int_equal(victim->state, EM_EXEC_LOST);
    assert_string_equal(victim->lost_reason, "killed by signal 11 (SIGSEGV)");
    assert_int_equal(st->tasks[0].attempt, 1); /* blamed */
    assert_int_equal(st->tasks[1].attempt, 0); /* beside it: no attempt lost */
    /* the culprit crashes its next executor too: its job fails and says why */
    h_finish(&c, 1, st->id); /* room on the second executor for 0 and 1 */
    h_finish(&c, 1, st->id);
    assert_int_equal(h_running(&c, 1, st->id), 2);
    for (size_t k = 0; k < c.n_launches; k++)
        if (c.launches[k].part == 0 && c.launches[k].attempt == 1) culprit = c.launches[k].id.v;
    em_exec *second = h_exec(&c, 1);
    em_crash abrt = {6, 0, NULL, &culprit, 1};
    em_sched_executor_crashed(&c.s, second, &abrt, c.now);
    h_settle(&c);
    h_expect_failed(&c, job, 0, "killed by signal 6 (SIGABRT) while running this task");
    h_cluster_fini(&c);
}

static void task_timeout_fails_and_stops_the_task(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    h_cluster_init(&c, &cfg, 2, 1);
    c.task_timeout_ms = 1000;
    em_job_id job = narrow_job(&c, EMBER__ACTION_KIND__ACTION_COUNT, 1, SESSION);
    em_stage *st = h_stage(&c, job, 0);
    h_launch first = c.launches[0];
    h_advance(&c, 900 * 1000);
    assert_int_equal(st->n_retried, 0);
    h_advance(&c, 200 * 1000); /* past 1 s: failed, and its executor told to stop it */
    assert_int_equal(st->n_retried, 1);
    assert_true(h_cancelled(&c, first.id));
    assert_int_equal(c.launches[1].attempt, 1);
    assert_int_not_equal(c.launches[1].ex.v, first.ex.v); /* elsewhere */
    em_exec *ex = em_sched_exec(&c.s, first.ex);
    assert_int_equal(ex->running, 0);
    assert_int_equal(ex->assigned, 1); /* its slot is busy until it reports the task stopped */
    h_report_cancelled(&c);            /* the executor stopped it */
    assert_int_equal(ex->assigned, 0);
    for (int k = 0; k < 3; k++) { /* every attempt times out */
        h_advance(&c, 1100 * 1000);
        h_report_cancelled(&c);
    }
    h_expect_failed(&c, job, EMBER_ERR_TIMEOUT, "failed 4 times");
    h_expect_failed(&c, job, EMBER_ERR_TIMEOUT, "timed out after 1.0 s [EMBER_ERR_TIMEOUT]");
    h_cluster_fini(&c);
}

static void ended_job_stops_its_running_tasks(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    h_cluster_init(&c, &cfg, 2, 2);
    em_job_id job = narrow_job(&c, EMBER__ACTION_KIND__ACTION_COUNT, 4, SESSION);
    h_fail(&c, 0, h_stage(&c, job, 0)->id, EMBER_ERR_SYMBOL, 1, "no symbol");
    assert_int_equal(em_sched_job(&c.s, job)->state, EM_RUN_FAILED);
    for (size_t k = 1; k < 4; k++) /* the three others, on both executors */
        assert_true(h_cancelled(&c, c.launches[k].id));
    assert_false(h_cancelled(&c, c.launches[0].id)); /* it had ended */
    h_cluster_fini(&c);
}

static void closed_connection_lost_after_grace(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    h_cluster_init(&c, &cfg, 2, 2);
    em_job_id job = word_count(&c, 4, 1, SESSION);
    em_exec *ex = h_exec(&c, 1);
    em_sched_executor_closed(&c.s, ex, c.now);
    h_settle(&c);
    assert_int_equal(c.releases, 1); /* its poll let go */
    h_advance(&c, 200 * 1000);
    assert_int_equal(ex->state, EM_EXEC_ALIVE);
    h_advance(&c, 200 * 1000);
    assert_int_equal(ex->state, EM_EXEC_LOST);
    assert_string_equal(ex->lost_reason, "connection closed");
    em_crash kill9 = {9, 0, NULL, NULL, 0};
    assert_true(em_sched_executor_crashed(&c.s, ex, &kill9, c.now));
    assert_string_equal(ex->lost_reason, "killed by signal 9 (SIGKILL)"); /* a late report */
    h_finish_all(&c, job);
    assert_int_equal(em_sched_job(&c.s, job)->state, EM_RUN_SUCCEEDED);
    /* an executor that closes with nothing running is lost at once */
    em_sched_executor_closed(&c.s, h_exec(&c, 0), c.now);
    assert_int_equal(h_exec(&c, 0)->state, EM_EXEC_LOST);
    h_cluster_fini(&c);
}

static void heartbeats_timeouts_goodbye(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    h_cluster_init(&c, &cfg, 3, 1);
    size_t before = c.empty_tasks_effects;
    h_advance(&c, 999 * 1000);
    assert_int_equal(c.empty_tasks_effects, before);
    h_advance(&c, 1000);
    assert_int_equal(c.empty_tasks_effects, before + 3); /* each waiting executor answered */
    /* the third stops polling; the others are heard at every heartbeat */
    c.silent[c.execs[2].v] = 1;
    h_advance(&c, 9 * 1000 * 1000);
    assert_int_equal(h_exec(&c, 2)->state, EM_EXEC_ALIVE);
    h_advance(&c, 2 * 1000 * 1000);
    assert_int_equal(h_exec(&c, 2)->state, EM_EXEC_LOST);
    assert_string_equal(h_exec(&c, 2)->lost_reason, "no heartbeat for 10000 ms");
    assert_int_equal(h_exec(&c, 0)->state, EM_EXEC_ALIVE);
    /* Goodbye: stopped, not lost; its connection is not closed by the driver */
    size_t disconnects = c.disconnects;
    em_sched_executor_stopped(&c.s, h_exec(&c, 1), c.now);
    h_settle(&c);
    assert_int_equal(h_exec(&c, 1)->state, EM_EXEC_STOPPED);
    assert_int_equal(c.disconnects, disconnects);
    /* registering again on the same session replaces the old self */
    em_exec_info info = {"tcp://10.0.0.1:7001", "host", 100, 1, 1 << 30};
    em_exec_id again;
    assert_int_equal(em_sched_register(&c.s, c.exec_sessions[0], &info, c.now, &again), EMBER_OK);
    h_settle(&c);
    assert_int_equal(h_exec(&c, 0)->state, EM_EXEC_LOST);
    assert_string_equal(h_exec(&c, 0)->lost_reason, "registered again");
    assert_ptr_equal(em_sched_executor(&c.s, c.exec_sessions[0], again),
                     em_sched_exec(&c.s, again));
    assert_null(em_sched_executor(&c.s, c.exec_sessions[0], c.execs[0])); /* a stale claim */
    h_cluster_fini(&c);
}

static void kept_outputs_skip_stages_for_the_same_session(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    h_cluster_init(&c, &cfg, 2, 2);
    em_job_id first = word_count(&c, 4, 2, SESSION);
    h_finish_all(&c, first);
    em_job_id second = word_count(&c, 4, 2, SESSION);
    em_stage *map = h_stage(&c, second, 0);
    assert_int_equal(map->state, EM_RUN_SKIPPED);
    assert_true(map->reused);
    assert_int_equal(map->output_stage_id.v, h_stage(&c, first, 0)->id.v);
    assert_int_equal(em_sched_job(&c.s, second)->tasks_total, 2); /* the reduce tasks only */
    h_finish_all(&c, second);
    assert_int_equal(em_sched_job(&c.s, second)->state, EM_RUN_SUCCEEDED);
    /* another session computes its own */
    em_job_id other = word_count(&c, 4, 2, SESSION + 1);
    assert_int_equal(h_stage(&c, other, 0)->state, EM_RUN_RUNNING);
    h_finish_all(&c, other);
    h_cluster_fini(&c);
}

static void sessions_keep_outputs_for_a_grace(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    h_cluster_init(&c, &cfg, 2, 2);
    em_job_id first = word_count(&c, 4, 2, SESSION);
    h_finish_all(&c, first);
    uint64_t kept_stage = h_stage(&c, first, 0)->id.v;
    /* disconnected, back within the grace: the output is still there */
    em_sched_session_detached(&c.s, (em_session_id){SESSION}, c.now);
    h_advance(&c, 20 * 1000 * 1000);
    em_sched_session_attached(&c.s, (em_session_id){SESSION});
    h_advance(&c, 20 * 1000 * 1000);
    em_job_id second = word_count(&c, 4, 2, SESSION);
    assert_int_equal(h_stage(&c, second, 0)->state, EM_RUN_SKIPPED);
    /* a running job of a session that goes away is cancelled */
    em_sched_session_detached(&c.s, (em_session_id){SESSION}, c.now);
    h_settle(&c);
    h_expect_failed(&c, second, EMBER_ERR_CANCELLED, "its submitter disconnected");
    /* after the grace, its kept output is dropped: executors hear of it */
    c.n_drop_shuffles = 0;
    h_advance(&c, 31 * 1000 * 1000);
    h_advance(&c, 1000 * 1000); /* a heartbeat carries the drop list */
    int dropped = 0;
    for (size_t i = 0; i < c.n_drop_shuffles; i++) dropped |= c.drop_shuffles[i] == kept_stage;
    assert_true(dropped);
    em_job_id third = word_count(&c, 4, 2, SESSION);
    assert_int_equal(h_stage(&c, third, 0)->state, EM_RUN_RUNNING); /* computed again */
    h_finish_all(&c, third);
    /* Goodbye: dropped at once */
    em_sched_session_ended(&c.s, (em_session_id){SESSION}, c.now);
    assert_int_equal(c.s.n_kept, 0);
    assert_int_equal(c.s.n_sessions, 0);
    h_cluster_fini(&c);
}

/* cached_job: kafka (4) -> map (persisted) -> map, counted */
static em_job_id cached_job(h_cluster *c)
{
    h_graph b;
    h_graph_init(&b, EMBER__ACTION_KIND__ACTION_COUNT);
    uint32_t parsed = h_map(&b, h_kafka(&b, 4));
    h_persist(&b, parsed);
    h_map(&b, parsed);
    return h_submit(c, &b, SESSION);
}

/* finish_storing answers every running task of stage st, each storing its partition */
static void finish_storing(h_cluster *c, em_stage *st, int from_cache)
{
    while (h_running(c, ANY, st->id)) {
        uint32_t part = 0;
        for (size_t k = 0; k < c->n_launches; k++)
            if (!c->launches[k].answered && c->launches[k].stage.v == st->id.v) {
                part = c->launches[k].part;
                break;
            }
        Ember__TaskResult res = EMBER__TASK_RESULT__INIT;
        Ember__CachedBlock block = EMBER__CACHED_BLOCK__INIT, *blocks[] = {&block};
        res.message = "";
        res.from_cache = from_cache;
        block.fingerprint = st->cache_fp;
        block.partition = part;
        block.bytes = 1000;
        if (!from_cache) {
            res.cached = blocks;
            res.n_cached = 1;
        }
        h_answer(c, ANY, st->id, &res);
    }
}

static void cached_partitions_locality_and_eviction(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    h_cluster_init(&c, &cfg, 2, 4);
    em_job_id first = cached_job(&c);
    em_stage *st = h_stage(&c, first, 0);
    assert_true(st->cache_fp != 0);
    finish_storing(&c, st, 0);
    assert_int_equal(c.s.n_cached, 1);
    em_exec_id holder[4];
    for (uint32_t p = 0; p < 4; p++) holder[p] = c.s.cached[0].holder[p];
    /* every partition went to the first executor (4 slots): the next job's tasks wait for it
     * although the second executor is idle */
    assert_int_equal(holder[3].v, c.execs[0].v);
    em_job_id second = cached_job(&c);
    em_stage *st2 = h_stage(&c, second, 0);
    assert_int_equal(h_running(&c, 0, st2->id), 4);
    for (size_t k = c.n_launches - 4; k < c.n_launches; k++) {
        assert_int_equal(c.launches[k].ex.v, c.execs[0].v);
        assert_int_equal(st2->tasks[c.launches[k].part].preferred, 1);
    }
    finish_storing(&c, st2, 1);
    assert_int_equal(st2->cache_hits, 4);
    assert_int_equal(c.s.cached[0].hits, 4);
    /* partition 2 evicted: the next job recomputes it, counted as an eviction */
    Ember__CachedBlock gone = EMBER__CACHED_BLOCK__INIT, *evicted[] = {&gone};
    gone.fingerprint = st->cache_fp;
    gone.partition = 2;
    em_sched_task_results(&c.s, h_exec(&c, 0), NULL, 0, NULL, 0, evicted, 1, c.now);
    h_settle(&c);
    assert_int_equal(c.s.totals.cache_evictions, 1);
    em_job_id third = cached_job(&c);
    em_stage *st3 = h_stage(&c, third, 0);
    while (h_running(&c, ANY, st3->id)) h_finish(&c, ANY, st3->id);
    assert_int_equal(st3->n_recomputed[EM_RECOMPUTE_EVICTION], 1);
    /* unpersist: executors are told to drop it */
    em_sched_unpersist(&c.s, (em_session_id){SESSION}, st->cache_fp);
    assert_int_equal(c.s.n_cached, 0);
    h_advance(&c, 1000 * 1000);
    assert_true(c.n_drop_cached >= 1);
    h_cluster_fini(&c);
}

static void locality_wait_runs_out(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    h_cluster_init(&c, &cfg, 2, 2);
    em_job_id first = cached_job(&c);
    finish_storing(&c, h_stage(&c, first, 0), 0); /* 0,1 on the first, 2,3 on the second */
    /* the second executor is busy with another job: its cached partitions wait for it */
    em_job_id busy = narrow_job(&c, EMBER__ACTION_KIND__ACTION_COUNT, 4, SESSION + 9);
    assert_int_equal(h_running(&c, ANY, NONE_ST), 4);
    while (h_running(&c, 0, h_stage(&c, busy, 0)->id)) h_finish(&c, 0, h_stage(&c, busy, 0)->id);
    em_job_id second = cached_job(&c);
    em_stage *st = h_stage(&c, second, 0);
    assert_int_equal(h_running(&c, 0, st->id), 2); /* its own partitions only */
    h_finish(&c, 0, st->id);
    h_finish(&c, 0, st->id);
    assert_int_equal(st->q_len, 2); /* 2 and 3 wait for their holder */
    h_advance(&c, 3001 * 1000);     /* the wait is over: the first executor takes them */
    assert_int_equal(h_running(&c, 0, st->id), 2);
    h_finish_all(&c, second);
    h_finish_all(&c, busy);
    h_cluster_fini(&c);
}

/* kafka_partitions_stay_on_their_executor: with Kafka affinity each partition's task goes to
 * the executor the partition hashes to, job after job (a streaming query's batches), an idle
 * executor still takes another's task when that one is busy, and a lost executor's
 * partitions move to the survivor */
static void kafka_partitions_stay_on_their_executor(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    cfg.kafka_affinity = 1;
    h_cluster_init(&c, &cfg, 2, 8); /* room for every task at once */
    em_job_id first = narrow_job(&c, EMBER__ACTION_KIND__ACTION_COUNT, 8, SESSION);
    em_stage *st = h_stage(&c, first, 0);
    assert_int_equal(c.n_launches, 8);
    uint64_t owner[8] = {0};
    size_t on_first = 0;
    for (size_t k = 0; k < 8; k++) {
        owner[c.launches[k].part] = c.launches[k].ex.v;
        assert_int_equal(st->tasks[c.launches[k].part].preferred, 1);
        on_first += c.launches[k].ex.v == c.execs[0].v;
    }
    assert_in_range(on_first, 1, 7); /* spread over both */
    h_finish_all(&c, first);
    /* the next job: every partition where it was, though the first executor polls first */
    for (int round = 0; round < 3; round++) {
        size_t before = c.n_launches;
        em_job_id next = narrow_job(&c, EMBER__ACTION_KIND__ACTION_COUNT, 8, SESSION);
        assert_int_equal(c.n_launches - before, 8);
        for (size_t k = before; k < c.n_launches; k++)
            assert_int_equal(c.launches[k].ex.v, owner[c.launches[k].part]);
        h_finish_all(&c, next);
    }
    /* the second executor busy with other work: the first takes its tasks rather than wait */
    em_job_id busy = narrow_job(&c, EMBER__ACTION_KIND__ACTION_COUNT, 16, SESSION + 9);
    assert_int_equal(h_running(&c, 1, NONE_ST), 8);
    while (h_running(&c, 0, NONE_ST)) h_finish(&c, 0, NONE_ST);
    em_job_id stolen = narrow_job(&c, EMBER__ACTION_KIND__ACTION_COUNT, 8, SESSION);
    assert_int_equal(h_running(&c, 0, h_stage(&c, stolen, 0)->id), 8);
    h_finish_all(&c, stolen);
    h_finish_all(&c, busy);
    /* the second executor lost: its partitions go to the first */
    em_sched_executor_lost(&c.s, h_exec(&c, 1), "killed", c.now);
    h_settle(&c);
    em_job_id after = narrow_job(&c, EMBER__ACTION_KIND__ACTION_COUNT, 8, SESSION);
    assert_int_equal(h_running(&c, 0, h_stage(&c, after, 0)->id), 8);
    h_finish_all(&c, after);
    assert_int_equal(em_sched_job(&c.s, after)->state, EM_RUN_SUCCEEDED);
    h_cluster_fini(&c);
}

static void collect_over_the_limit_fails(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    cfg.max_result = 10;
    h_cluster_init(&c, &cfg, 1, 2);
    em_job_id job = narrow_job(&c, EMBER__ACTION_KIND__ACTION_COLLECT, 2, SESSION);
    em_exec *ex = h_exec(&c, 0);
    Ember__TaskResult res = EMBER__TASK_RESULT__INIT, *results[] = {&res};
    res.message = "";
    res.data_len = 8;
    res.task_id = c.launches[0].id.v;
    em_sched_task_results(&c.s, ex, results, 1, (const uint8_t *)"12345678", 8, NULL, 0, c.now);
    h_settle(&c);
    assert_int_equal(em_sched_job(&c.s, job)->state, EM_RUN_RUNNING);
    res.task_id = c.launches[1].id.v;
    em_sched_task_results(&c.s, ex, results, 1, (const uint8_t *)"abcdefgh", 8, NULL, 0, c.now);
    h_settle(&c);
    h_expect_failed(&c, job, EMBER_ERR_TOO_LARGE, "exceeds the driver's limit of 10 bytes");
    h_cluster_fini(&c);
}

static void results_kept_in_partition_order(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    h_cluster_init(&c, &cfg, 1, 2);
    em_job_id job = narrow_job(&c, EMBER__ACTION_KIND__ACTION_COLLECT, 2, SESSION);
    Ember__TaskResult r0 = EMBER__TASK_RESULT__INIT, r1 = EMBER__TASK_RESULT__INIT;
    Ember__TaskResult *results[] = {&r1, &r0}; /* one Report, partition 1's result first */
    r0.message = r1.message = "";
    r0.task_id = c.launches[0].id.v;
    r1.task_id = c.launches[1].id.v;
    r1.data_len = 3;
    r0.data_len = 2;
    /* keep the job's results: take effects without releasing it */
    em_sched_task_results(&c.s, h_exec(&c, 0), results, 2, (const uint8_t *)"oneze", 5, NULL, 0,
                          c.now);
    em_job *j = em_sched_job(&c.s, job);
    assert_int_equal(j->state, EM_RUN_SUCCEEDED);
    assert_int_equal(j->results[0].len, 2);
    assert_memory_equal(j->results[0].data, "ze", 2);
    assert_memory_equal(j->results[1].data, "one", 3);
    h_settle(&c);
    assert_null(j->results); /* released once delivered */
    h_cluster_fini(&c);
}

static void stale_and_foreign_results_ignored(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    h_cluster_init(&c, &cfg, 2, 1);
    em_job_id job = narrow_job(&c, EMBER__ACTION_KIND__ACTION_COUNT, 2, SESSION);
    Ember__TaskResult res = EMBER__TASK_RESULT__INIT, *results[] = {&res};
    res.message = "";
    res.task_id = c.launches[0].id.v; /* runs on the first executor, reported by the second */
    em_sched_task_results(&c.s, h_exec(&c, 1), results, 1, NULL, 0, NULL, 0, c.now);
    res.task_id = em_task_id_of(c.launches[0].stage, 3, 0).v; /* an attempt never launched */
    em_sched_task_results(&c.s, h_exec(&c, 0), results, 1, NULL, 0, NULL, 0, c.now);
    res.task_id = em_task_id_of((em_stage_id){999}, 0, 0).v; /* no such stage */
    em_sched_task_results(&c.s, h_exec(&c, 0), results, 1, NULL, 0, NULL, 0, c.now);
    h_settle(&c);
    assert_int_equal(h_stage(&c, job, 0)->n_done, 0);
    h_finish_all(&c, job);
    assert_int_equal(em_sched_job(&c.s, job)->state, EM_RUN_SUCCEEDED);
    h_cluster_fini(&c);
}

static void sanity_catches_broken_counts(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    h_cluster_init(&c, &cfg, 1, 1);
    em_job_id job = word_count(&c, 2, 1, SESSION);
    em_stage *st = h_stage(&c, job, 0);
    assert_true(em_sched_sanity(&c.s));
    st->n_done++;
    assert_false(em_sched_sanity(&c.s));
    st->n_done--;
    st->tasks[0].executor = (em_exec_id){42}; /* a running task on no executor */
    assert_false(em_sched_sanity(&c.s));
    st->tasks[0].executor = c.execs[0];
    h_exec(&c, 0)->assigned = 0;
    assert_false(em_sched_sanity(&c.s));
    h_exec(&c, 0)->assigned = 1;
    h_finish_all(&c, job);
    h_cluster_fini(&c);
}

static void registry_is_bounded(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config();
    cfg.max_executors = 6;
    h_cluster_init(&c, &cfg, 2, 1);
    em_exec_info info = {"tcp://10.0.0.9:7000", "host", 9, 1, 1 << 30};
    em_exec_id ids[4], extra;
    for (int k = 0; k < 4; k++)
        assert_int_equal(em_sched_register(&c.s, (em_session_id){0xf00 + k}, &info, c.now, &ids[k]),
                         EMBER_OK);
    assert_int_equal(em_sched_register(&c.s, (em_session_id){0xfff}, &info, c.now, &extra),
                     EMBER_ERR_TOO_LARGE); /* 6 alive */
    /* five go; only executors_kept (4) gone ones are remembered: the oldest is forgotten */
    for (int k = 0; k < 4; k++)
        em_sched_executor_lost(&c.s, em_sched_exec(&c.s, ids[k]), "gone", c.now);
    em_sched_executor_stopped(&c.s, h_exec(&c, 1), c.now);
    h_settle(&c);
    assert_int_equal(c.s.n_alive, 1);
    assert_int_equal(c.s.n_gone, 4);
    assert_int_equal(c.s.n_execs, 5);
    assert_null(h_exec(&c, 1)); /* the oldest gone one: forgotten */
    assert_non_null(em_sched_exec(&c.s, ids[0]));
    assert_non_null(h_exec(&c, 0));
    assert_int_equal(em_sched_register(&c.s, (em_session_id){0xfff}, &info, c.now, &extra),
                     EMBER_OK);
    assert_true(extra.v > ids[3].v); /* ids are never reused */
    h_settle(&c);
    h_cluster_fini(&c);
}

static void job_limits(void **state)
{
    (void)state;
    h_cluster c;
    em_sched_config cfg = h_config(); /* 4 running jobs per session, 1,000 tasks per job */
    h_cluster_init(&c, &cfg, 1, 1);
    h_graph b;
    em_job_id job;
    char err[512];
    for (int k = 0; k < 4; k++) narrow_job(&c, EMBER__ACTION_KIND__ACTION_COUNT, 1, SESSION);
    h_graph_init(&b, EMBER__ACTION_KIND__ACTION_COUNT);
    h_map(&b, h_kafka(&b, 1));
    assert_int_equal(h_try_submit(&c, &b, SESSION, &job, err, sizeof err), EMBER_ERR_TOO_LARGE);
    assert_non_null(strstr(err, "this submitter has 4 jobs running"));
    assert_int_equal(h_try_submit(&c, &b, SESSION + 1, &job, err, sizeof err), EMBER_OK);
    h_graph_init(&b, EMBER__ACTION_KIND__ACTION_COUNT);
    h_reduce(&b, h_kafka(&b, 2), 999); /* 1,001 tasks */
    assert_int_equal(h_try_submit(&c, &b, SESSION + 2, &job, err, sizeof err), EMBER_ERR_TOO_LARGE);
    assert_non_null(strstr(err, "the job has 1001 tasks, over the driver's limit of 1000"));
    h_cluster_fini(&c);
}

static void names_and_queries(void **state)
{
    (void)state;
    assert_string_equal(em_run_state_name(EM_RUN_SKIPPED), "skipped");
    assert_string_equal(em_task_state_name(EM_TASK_CANCELLED), "cancelled");
    assert_string_equal(em_exec_state_name(EM_EXEC_STOPPED), "stopped");
    assert_string_equal(em_recompute_reason_name(EM_RECOMPUTE_EVICTION), "eviction");
    em_task_id id = em_task_id_of((em_stage_id){77}, 3, 12345);
    assert_int_equal(em_task_stage(id).v, 77);
    assert_int_equal(em_task_attempt(id), 3);
    assert_int_equal(em_task_part(id), 12345);
    h_cluster c;
    em_sched_config cfg = h_config();
    h_cluster_init(&c, &cfg, 1, 1);
    em_job_id job = word_count(&c, 1, 1, SESSION);
    assert_non_null(em_sched_job_by_token(&c.s, (em_session_id){SESSION}, 7));
    assert_null(em_sched_job_by_token(&c.s, (em_session_id){SESSION + 1}, 7));
    assert_null(em_sched_job(&c.s, (em_job_id){job.v + 100}));
    h_finish_all(&c, job);
    assert_null(em_sched_job_by_token(&c.s, (em_session_id){SESSION}, 7)); /* finished */
    h_cluster_fini(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_stages_in_order),
        cmocka_unit_test(lost_during_map_reruns_only_its_work),
        cmocka_unit_test(lost_outputs_of_grandparent_recomputed_exactly),
        cmocka_unit_test(fetch_failure_recomputes_the_holders_outputs),
        cmocka_unit_test(retries_then_one_message),
        cmocka_unit_test(fatal_failure_ends_the_job_at_once),
        cmocka_unit_test(crash_report_blames_only_its_task),
        cmocka_unit_test(task_timeout_fails_and_stops_the_task),
        cmocka_unit_test(ended_job_stops_its_running_tasks),
        cmocka_unit_test(closed_connection_lost_after_grace),
        cmocka_unit_test(heartbeats_timeouts_goodbye),
        cmocka_unit_test(kept_outputs_skip_stages_for_the_same_session),
        cmocka_unit_test(sessions_keep_outputs_for_a_grace),
        cmocka_unit_test(cached_partitions_locality_and_eviction),
        cmocka_unit_test(locality_wait_runs_out),
        cmocka_unit_test(kafka_partitions_stay_on_their_executor),
        cmocka_unit_test(collect_over_the_limit_fails),
        cmocka_unit_test(results_kept_in_partition_order),
        cmocka_unit_test(stale_and_foreign_results_ignored),
        cmocka_unit_test(sanity_catches_broken_counts),
        cmocka_unit_test(registry_is_bounded),
        cmocka_unit_test(job_limits),
        cmocka_unit_test(names_and_queries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
