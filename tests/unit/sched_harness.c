/* sched_harness.c -- the simulated cluster of test_sched.c (see sched_harness.h). */
#include "sched_harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ember/ember.h>

#include "em_graph.h"

/* ---- graphs ------------------------------------------------------------------------------ */

void h_graph_init(h_graph *b, Ember__ActionKind action)
{
    memset(b, 0, sizeof *b);
    ember__job_graph__init(&b->g);
    ember__action__init(&b->action);
    b->action.kind = action;
    b->g.action = &b->action;
    b->g.nodes = b->node_ptrs;
    memset(b->sha, 0x5a, sizeof b->sha);
    b->g.library_sha256.data = b->sha;
    b->g.library_sha256.len = sizeof b->sha;
    b->g.library_name = "sched_test.so";
}

static uint32_t add_node(h_graph *b, Ember__NodeKind kind, int parent)
{
    uint32_t id = (uint32_t)b->g.n_nodes++;
    assert_true(id < H_MAX_NODES);
    Ember__Node *n = &b->nodes[id];
    ember__node__init(n);
    n->id = id;
    n->kind = kind;
    if (parent >= 0) {
        b->parents[id] = (uint32_t)parent;
        n->parents = &b->parents[id];
        n->n_parents = 1;
    }
    b->node_ptrs[id] = n;
    b->g.target = id;
    return id;
}

uint32_t h_kafka(h_graph *b, uint32_t partitions)
{
    uint32_t id = add_node(b, EMBER__NODE_KIND__NODE_KAFKA, -1);
    Ember__Node *n = &b->nodes[id];
    assert_true(partitions <= H_MAX_RANGES);
    for (uint32_t p = 0; p < partitions; p++) {
        ember__kafka_range__init(&b->ranges[p]);
        b->ranges[p].partition = (int32_t)p;
        b->ranges[p].from = 0;
        b->ranges[p].until = 1000;
        b->range_ptrs[p] = &b->ranges[p];
    }
    n->topic = "events";
    n->bootstrap = "127.0.0.1:9092";
    n->ranges = b->range_ptrs;
    n->n_ranges = partitions;
    return id;
}

uint32_t h_map(h_graph *b, uint32_t parent)
{
    uint32_t id = add_node(b, EMBER__NODE_KIND__NODE_MAP, (int)parent);
    b->nodes[id].fn_symbol = "parse";
    return id;
}

uint32_t h_reduce(h_graph *b, uint32_t parent, uint32_t partitions)
{
    uint32_t id = add_node(b, EMBER__NODE_KIND__NODE_REDUCE_BY_KEY, (int)parent);
    b->nodes[id].partitions = partitions;
    b->nodes[id].reducer = EMBER__REDUCER__REDUCER_SUM_I64;
    return id;
}

void h_persist(h_graph *b, uint32_t node)
{
    b->nodes[node].storage = EMBER__STORAGE_LEVEL__STORAGE_MEMORY_ONLY;
}

em_job_id h_submit(h_cluster *c, h_graph *b, uint64_t session)
{
    char err[512] = "";
    em_job_id job;
    int rc = h_try_submit(c, b, session, &job, err, sizeof err);
    if (rc != EMBER_OK) fail_msg("submit: %s", err);
    return job;
}

int h_try_submit(h_cluster *c, h_graph *b, uint64_t session, em_job_id *job, char *err,
                 size_t errlen)
{
    assert_int_equal(em_graph_validate(&b->g, 0, err, errlen), EMBER_OK);
    Ember__SubmitJob sj = EMBER__SUBMIT_JOB__INIT;
    sj.graph = &b->g;
    sj.name = "test job";
    sj.submitter = "tester@host:1";
    sj.client_token = 7;
    sj.task_timeout_ms = c->task_timeout_ms;
    /* the scheduler owns what it is given: a message as protobuf-c unpacks it */
    size_t len = ember__submit_job__get_packed_size(&sj);
    uint8_t *bytes = malloc(len);
    assert_non_null(bytes);
    ember__submit_job__pack(&sj, bytes);
    Ember__SubmitJob *owned = ember__submit_job__unpack(NULL, len, bytes);
    free(bytes);
    assert_non_null(owned);
    int rc =
        em_sched_submit(&c->s, (em_session_id){session}, owned, NULL, 0, c->now, job, err, errlen);
    if (rc != EMBER_OK) ember__submit_job__free_unpacked(owned, NULL); /* the caller keeps it */
    h_settle(c);
    return rc;
}

/* ---- cluster ------------------------------------------------------------------------------ */

em_sched_config h_config(void)
{
    em_sched_config cfg = em_sched_config_defaults();
    cfg.queue_depth = 0;    /* every launch is one slot's task: tests count launches */
    cfg.kafka_affinity = 0; /* Kafka tasks go out in queue order (one test turns it on) */
    cfg.max_executors = 64;
    cfg.max_session_jobs = 4;
    cfg.max_job_tasks = 1000;
    cfg.executors_kept = 4;
    cfg.max_result = 1 << 20;
    return cfg;
}

void h_expect_failed(h_cluster *c, em_job_id job, int code, const char *needle)
{
    em_job *j = em_sched_job(&c->s, job);
    assert_non_null(j);
    assert_int_equal(j->state, EM_RUN_FAILED);
    if (code) assert_int_equal(j->code, code);
    if (!strstr(j->error, needle)) fail_msg("job error \"%s\" lacks \"%s\"", j->error, needle);
}

void h_cluster_init(h_cluster *c, const em_sched_config *cfg, size_t n_execs, uint32_t slots)
{
    memset(c, 0, sizeof *c);
    em_sched_init(&c->s, cfg);
    c->now = 1000000;
    for (size_t i = 0; i < n_execs; i++) {
        char address[64];
        snprintf(address, sizeof address, "tcp://10.0.0.%zu:7000", i + 1);
        em_exec_info info = {address, "host", (int32_t)(100 + i), slots, 1 << 30};
        c->exec_sessions[i] = (em_session_id){0xe000 + i};
        assert_int_equal(em_sched_register(&c->s, c->exec_sessions[i], &info, c->now, &c->execs[i]),
                         EMBER_OK);
        em_sched_wait_for_tasks(&c->s, em_sched_exec(&c->s, c->execs[i]), c->now);
    }
    c->n_execs = n_execs;
    h_settle(c);
}

void h_cluster_fini(h_cluster *c)
{
    assert_true(em_sched_sanity(&c->s));
    em_sched_fini(&c->s);
}

em_exec *h_exec(h_cluster *c, size_t i) { return em_sched_exec(&c->s, c->execs[i]); }

static void record_tasks(h_cluster *c, const em_effect *e)
{
    c->tasks_effects++;
    c->empty_tasks_effects += e->n_launches == 0;
    c->defs_seen += (int)e->n_defs;
    for (size_t i = 0; i < e->n_launches; i++) {
        const em_launch *l = &e->launches[i];
        assert_true(c->n_launches < H_MAX_LAUNCHES);
        uint32_t attempt = l->st->tasks[l->part].attempt;
        c->launches[c->n_launches++] = (h_launch){
            e->ex, l->st->id, l->part, attempt, em_task_id_of(l->st->id, attempt, l->part), 0};
    }
    for (size_t i = 0; i < e->n_drop_shuffles && c->n_drop_shuffles < 256; i++)
        c->drop_shuffles[c->n_drop_shuffles++] = e->drop_shuffles[i];
    for (size_t i = 0; i < e->n_drop_cached && c->n_drop_cached < 256; i++)
        c->drop_cached[c->n_drop_cached++] = e->drop_cached[i];
    for (size_t i = 0; i < e->n_cancel_tasks && c->n_cancels < 256; i++)
        c->cancels[c->n_cancels++] = e->cancel_tasks[i];
    c->repoll[e->ex.v] = 1;
}

void h_settle(h_cluster *c)
{
    for (int more = 1; more;) {
        em_effect e;
        while (em_sched_next_effect(&c->s, &e)) {
            switch (e.kind) {
            case EM_EFFECT_TASKS: record_tasks(c, &e); break;
            case EM_EFFECT_RELEASE_POLL: c->releases++; break;
            case EM_EFFECT_DISCONNECT: c->disconnects++; break;
            case EM_EFFECT_JOB_DONE:
                assert_true(c->n_done < 64);
                c->done[c->n_done++] = e.job;
                em_sched_job_release(&c->s, e.job);
                break;
            }
        }
        more = 0;
        for (uint32_t id = 1; id <= H_MAX_EXECS; id++) {
            em_exec *ex = em_sched_exec(&c->s, (em_exec_id){id});
            if (!c->repoll[id]) continue;
            c->repoll[id] = 0;
            if (ex && ex->state == EM_EXEC_ALIVE && !ex->closed_us && !c->silent[id]) {
                em_sched_heard(&c->s, ex, NULL, c->now);
                em_sched_wait_for_tasks(&c->s, ex, c->now);
                more = 1;
            }
        }
    }
    assert_true(em_sched_sanity(&c->s));
}

static int matches(h_cluster *c, const h_launch *l, int i, em_stage_id stage)
{
    return !l->answered && (i < 0 || l->ex.v == c->execs[i].v) &&
           (stage.v == 0 || l->stage.v == stage.v);
}

size_t h_running(h_cluster *c, int i, em_stage_id stage)
{
    size_t n = 0;
    for (size_t k = 0; k < c->n_launches; k++) n += matches(c, &c->launches[k], i, stage);
    return n;
}

int h_answer(h_cluster *c, int i, em_stage_id stage, Ember__TaskResult *res)
{
    for (size_t k = 0; k < c->n_launches; k++) {
        h_launch *l = &c->launches[k];
        if (!matches(c, l, i, stage)) continue;
        l->answered = 1;
        res->task_id = l->id.v;
        em_exec *ex = em_sched_exec(&c->s, l->ex);
        if (ex->state == EM_EXEC_ALIVE) {
            Ember__TaskResult *results[] = {res};
            em_sched_task_results(&c->s, ex, results, 1, NULL, 0, NULL, 0, c->now);
        }
        h_settle(c);
        return 1;
    }
    return 0;
}

int h_finish(h_cluster *c, int i, em_stage_id stage)
{
    Ember__TaskResult res = EMBER__TASK_RESULT__INIT;
    uint64_t buckets[64];
    res.message = "";
    res.records_in = 10;
    res.records_out = 5;
    res.duration_us = 5000;
    for (size_t k = 0; k < c->n_launches; k++) { /* a map task reports its buckets */
        const h_launch *l = &c->launches[k];
        if (!matches(c, l, i, stage)) continue;
        em_stage *st = NULL;
        for (em_job *job = c->s.jobs; job && !st; job = job->next)
            for (size_t s = 0; s < job->n_stages; s++)
                if (job->stages[s].id.v == l->stage.v) st = &job->stages[s];
        if (st && st->shuffle_out) {
            uint32_t r = st->job->submit->graph->nodes[st->plan.shuffle_node]->partitions;
            for (uint32_t b = 0; b < r && b < 64; b++) buckets[b] = 100;
            res.bucket_bytes = buckets;
            res.n_bucket_bytes = r < 64 ? r : 64;
        }
        break;
    }
    return h_answer(c, i, stage, &res);
}

int h_fail(h_cluster *c, int i, em_stage_id stage, int code, int fatal, const char *message)
{
    Ember__TaskResult res = EMBER__TASK_RESULT__INIT;
    res.code = code;
    res.fatal = fatal;
    res.message = (char *)message;
    res.duration_us = 1000;
    return h_answer(c, i, stage, &res);
}

int h_cancelled(h_cluster *c, em_task_id id)
{
    for (size_t i = 0; i < c->n_cancels; i++)
        if (c->cancels[i] == id.v) return 1;
    return 0;
}

void h_report_cancelled(h_cluster *c)
{
    for (size_t k = 0; k < c->n_launches; k++) {
        h_launch *l = &c->launches[k];
        em_exec *ex = em_sched_exec(&c->s, l->ex);
        if (l->answered || !h_cancelled(c, l->id) || ex->state != EM_EXEC_ALIVE) continue;
        l->answered = 1;
        Ember__TaskResult res = EMBER__TASK_RESULT__INIT, *results[] = {&res};
        res.task_id = l->id.v;
        res.code = EMBER_ERR_CANCELLED;
        res.message = "cancelled by the driver";
        em_sched_task_results(&c->s, ex, results, 1, NULL, 0, NULL, 0, c->now);
        h_settle(c);
    }
}

int h_job_done(h_cluster *c, em_job_id job)
{
    for (size_t i = 0; i < c->n_done; i++)
        if (c->done[i].v == job.v) return 1;
    return 0;
}

void h_finish_all(h_cluster *c, em_job_id job)
{
    while (!h_job_done(c, job) && h_finish(c, -1, (em_stage_id){0})) {
    }
}

em_stage *h_stage(h_cluster *c, em_job_id job, size_t k)
{
    em_job *j = em_sched_job(&c->s, job);
    assert_non_null(j);
    assert_true(k < j->n_stages);
    return &j->stages[k];
}

void h_advance(h_cluster *c, int64_t us)
{
    int64_t step = (int64_t)c->s.cfg.heartbeat_ms * 500;
    while (us > 0) {
        int64_t d = us < step ? us : step;
        c->now += d;
        us -= d;
        em_sched_tick(&c->s, c->now);
        h_settle(c);
    }
}
