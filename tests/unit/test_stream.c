/* test_stream.c -- the driver's streaming queries without a cluster: the plan of a batch's
 * offsets, the checkpoint's logs (em_stream_log.h), a batch's job, and the registry's batch
 * cycle as the driver loop drives it (em_stream.h). The stream thread and real clusters are
 * tests/integration/test_streaming.sh's.
 *
 * Covers: a partition's range from its last batch, from the start (earliest / latest), under
 * a cap, past retention; the checkpoint made, reopened with its last planned and committed
 * batches and ranges, refused for another query or graph, refused when corrupt, old entries
 * removed; the fingerprint ignores what may change between runs; a batch's job validates as a
 * batch graph with its ranges and temporary sink directory; the cycle SUBMIT -> RUNNING ->
 * DONE and its failure paths; a client-mode query stops with its submitter, a detached one
 * does not; the adaptive rate (PID) and the caps per partition it gives; a windowed query's batches
 * carry their watermarks and state place, no-data batches are due when the watermark passes a
 * window end, the logs keep the event times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <ember/ember.h>

#include "em_frame.h"
#include "em_fs.h"
#include "em_graph.h"
#include "em_rate.h"
#include "em_stream.h"
#include "em_stream_log.h"
#include "em_stream_runner.h"

static const em_event_times no_times = {EM_NO_WATERMARK, EM_NO_WATERMARK, 0};

static void plan_cuts_each_partition(void **state)
{
    (void)state;
    int64_t lag;
    em_stream_range r = em_stream_plan(3, 100, 0, 250, 0, 0, &lag);
    assert_int_equal(r.partition, 3);
    assert_int_equal(r.from, 100);
    assert_int_equal(r.until, 250);
    assert_int_equal(lag, 0);
    r = em_stream_plan(0, -1, 10, 250, 1, 0, &lag); /* a new query from the first record */
    assert_int_equal(r.from, 10);
    assert_int_equal(r.until, 250);
    r = em_stream_plan(0, -1, 10, 250, 0, 0, &lag); /* a new query from what comes next */
    assert_int_equal(r.from, 250);
    assert_int_equal(r.until, 250);
    r = em_stream_plan(0, 100, 0, 250, 0, 40, &lag); /* capped: the rest waits */
    assert_int_equal(r.until, 140);
    assert_int_equal(lag, 110);
    r = em_stream_plan(0, 5, 50, 250, 0, 0, &lag); /* records before 50 are gone */
    assert_int_equal(r.from, 50);
}

static void adaptive_rate_follows_processing(void **state)
{
    (void)state;
    em_rate r = {0};
    em_rate_update(&r, 1000, 0, 50, 0, 0, 100); /* no records: nothing measured */
    assert_false(r.has_rate);
    em_rate_update(&r, 1000, 1000, 100, 0, 0, 100); /* the first batch measures: 10,000/s */
    assert_true(r.has_rate);
    assert_true(r.rate == 10000.0);
    /* faster: 2,000 in 100 ms; error -10,000 -> 20,000/s */
    em_rate_update(&r, 2000, 2000, 100, 0, 0, 100);
    assert_true(r.rate == 20000.0);
    /* slower and late: 2,000 in 200 ms (10,000/s), started 100 ms late on a 100 ms trigger:
     * error 10,000, historical error 10,000 -> 20,000 - 10,000 - 0.2 * 10,000 = 8,000/s */
    em_rate_update(&r, 3000, 2000, 200, 100, 0, 100);
    assert_true(r.rate == 8000.0);
    em_rate_update(&r, 3000, 2000, 200, 100, 0, 100); /* not later: ignored */
    assert_true(r.rate == 8000.0);
    em_rate_update(&r, 4000, 10, 10000, 100000, 0, 100); /* never below the floor */
    assert_true(r.rate == EM_RATE_MIN);
}

/* a batch whose fixed work outside its job (planning, the offsets log, the commit) outlasts
 * the trigger: simulated on a query whose job processes 4,000 records/s (four slots of 1 ms
 * records) after 5 ms of dispatch, and whose batches spend 300 ms outside the job on a
 * 100 ms trigger. The batches read what the job processes in those 300 ms; counting the
 * fixed part as processing time instead would shrink each batch to 1/3 of the last, down to
 * the floor of 100 records/s (10 records a batch). */
static void adaptive_rate_outlasts_fixed_cost(void **state)
{
    (void)state;
    em_rate r = {0};
    int64_t lag[4] = {1000000, 1000000, 1000000, 1000000}, caps[4], now_ms = 0;
    int64_t records = 0;
    for (int batch = 0; batch < 50; batch++) {
        em_stream_caps(lag, 4, 0, 0, &r, 100, caps);
        records = caps[0] + caps[1] + caps[2] + caps[3];
        double run_ms = 5.0 + (double)records / 4.0;
        now_ms += (int64_t)(run_ms + 300.0) + 1;
        em_rate_update(&r, now_ms, records, run_ms, 0, 300, 100);
    }
    /* the job's own rate, 4,000/s less its 5 ms of dispatch per batch */
    assert_true(r.rate > 3500.0 && r.rate < 4000.0);
    assert_true(records > 1000 && records < 1200); /* about 300 ms of work a batch */
}

static void caps_bound_each_partition(void **state)
{
    (void)state;
    int64_t lag[3] = {300, 100, 0}, out[3];
    em_stream_caps(lag, 3, 0, 0, NULL, 100, out); /* nothing bounds a batch */
    assert_int_equal(out[0], 0);
    em_stream_caps(lag, 3, 50, 0, NULL, 100, out); /* records per batch */
    assert_int_equal(out[0], 50);
    assert_int_equal(out[1], 50);
    em_stream_caps(lag, 3, 50, 200, NULL, 100, out); /* 200/s over 100 ms: 20 */
    assert_int_equal(out[0], 20);
    em_rate r = {0};
    em_stream_caps(lag, 3, 0, 0, &r, 100, out); /* no rate yet: the initial cap */
    assert_int_equal(out[0], EM_RATE_INITIAL_RECORDS);
    r.has_rate = 1;
    r.rate = 1000; /* 100 records a batch, shared by lag */
    em_stream_caps(lag, 3, 0, 0, &r, 100, out);
    assert_int_equal(out[0], 75);
    assert_int_equal(out[1], 25);
    assert_int_equal(out[2], 1);                 /* at least one, should records arrive */
    em_stream_caps(lag, 3, 10, 0, &r, 100, out); /* the fixed cap still holds */
    assert_int_equal(out[0], 10);
}

/* a query's graph: kafka_stream "events" -> map -> files */
typedef struct qgraph {
    Ember__JobGraph g;
    Ember__Node src, map, *nodes[2];
    uint32_t parents[1];
    Ember__Action action;
    uint8_t sha[32];
} qgraph;

static void qgraph_init(qgraph *q, const char *fn, const char *sink)
{
    ember__job_graph__init(&q->g);
    ember__node__init(&q->src);
    ember__node__init(&q->map);
    ember__action__init(&q->action);
    q->src.id = 0;
    q->src.kind = EMBER__NODE_KIND__NODE_KAFKA_STREAM;
    q->src.topic = "events";
    q->src.bootstrap = "127.0.0.1:9092";
    q->map.id = 1;
    q->map.kind = EMBER__NODE_KIND__NODE_MAP;
    q->map.fn_symbol = (char *)fn;
    q->parents[0] = 0;
    q->map.parents = q->parents;
    q->map.n_parents = 1;
    q->nodes[0] = &q->src;
    q->nodes[1] = &q->map;
    q->action.kind = EMBER__ACTION_KIND__ACTION_SAVE_TEXT;
    q->action.path = (char *)sink;
    memset(q->sha, 7, sizeof q->sha);
    q->g.nodes = q->nodes;
    q->g.n_nodes = 2;
    q->g.target = 1;
    q->g.action = &q->action;
    q->g.library_sha256.data = q->sha;
    q->g.library_sha256.len = 32;
    q->g.library_name = "job.so";
}

static void fingerprint_ignores_what_may_change(void **state)
{
    (void)state;
    qgraph a, b;
    qgraph_init(&a, "upper", "/out");
    qgraph_init(&b, "upper", "/out");
    b.src.bootstrap = "10.0.0.1:9092";
    b.src.max_per_partition = 500;
    b.src.starting = EMBER__STARTING_OFFSETS__STARTING_EARLIEST;
    memset(b.sha, 9, sizeof b.sha);
    assert_true(em_query_fingerprint(&a.g, 0) == em_query_fingerprint(&b.g, 0));
    b.map.fn_symbol = "lower";
    assert_true(em_query_fingerprint(&a.g, 0) != em_query_fingerprint(&b.g, 0));
    qgraph_init(&b, "upper", "/elsewhere");
    assert_true(em_query_fingerprint(&a.g, 0) != em_query_fingerprint(&b.g, 0));
}

static void query_graph_validation(void **state)
{
    (void)state;
    qgraph q;
    char err[512];
    int32_t sn;
    qgraph_init(&q, "upper", "/out");
    assert_int_equal(em_graph_validate_query(&q.g, &sn, err, sizeof err), EMBER_OK);
    assert_int_equal(sn, 0);
    /* a batch job must not carry a stream source */
    assert_int_not_equal(em_graph_validate(&q.g, 0, err, sizeof err), EMBER_OK);
    q.action.kind = EMBER__ACTION_KIND__ACTION_COUNT;
    assert_int_not_equal(em_graph_validate_query(&q.g, &sn, err, sizeof err), EMBER_OK);
    assert_non_null(strstr(err, "sink is files, a Kafka topic or Redis"));
    qgraph_init(&q, "upper", "/out");
    q.src.kind = EMBER__NODE_KIND__NODE_KAFKA;
    assert_int_not_equal(em_graph_validate_query(&q.g, &sn, err, sizeof err), EMBER_OK);
    assert_non_null(strstr(err, "a query needs a Kafka stream source"));
    /* a wide operation within each batch is fine; sort_by_key and parallelized data are not */
    qgraph_init(&q, "", "/out");
    q.map.kind = EMBER__NODE_KIND__NODE_REDUCE_BY_KEY;
    q.map.reducer = EMBER__REDUCER__REDUCER_SUM_I64;
    q.map.partitions = 2;
    assert_int_equal(em_graph_validate_query(&q.g, &sn, err, sizeof err), EMBER_OK);
    q.map.kind = EMBER__NODE_KIND__NODE_SORT_BY_KEY;
    assert_int_not_equal(em_graph_validate_query(&q.g, &sn, err, sizeof err), EMBER_OK);
    assert_non_null(strstr(err, "sort_by_key in a query"));
}

static char tmpdir[] = "/tmp/ember-test-stream-XXXXXX";

static void checkpoint_logs(void **state)
{
    (void)state;
    char dir[256], err[1024], path[512];
    snprintf(dir, sizeof dir, "%s/ck", tmpdir);
    em_qlog_state st;
    assert_int_equal(em_qlog_open(dir, "copy", 42, &st, err, sizeof err), EMBER_OK);
    assert_int_equal(st.last_planned, -1);
    assert_int_equal(st.last_committed, -1);
    em_stream_range r[2] = {{0, 0, 10}, {1, 5, 7}};
    for (int b = 0; b < 3; b++) {
        r[0].from = r[0].until;
        r[0].until += 10;
        assert_int_equal(
            em_qlog_write_offsets(dir, b, "events", r, 2, &no_times, NULL, 0, err, sizeof err),
            EMBER_OK);
        if (b < 2)
            assert_int_equal(em_qlog_write_commit(dir, b, 10, 9, EM_NO_WATERMARK, err, sizeof err),
                             EMBER_OK);
    }
    em_qlog_state_free(&st);
    assert_int_equal(em_qlog_open(dir, "copy", 42, &st, err, sizeof err), EMBER_OK);
    assert_int_equal(st.last_planned, 2);
    assert_int_equal(st.last_committed, 1);
    assert_int_equal(st.n_ranges, 2);
    assert_int_equal(st.ranges[0].from, 30);
    assert_int_equal(st.ranges[0].until, 40);
    assert_int_equal(st.ranges[1].partition, 1);
    assert_int_equal(st.ranges[1].until, 7);
    em_qlog_state_free(&st);

    assert_int_equal(em_qlog_open(dir, "other", 42, &st, err, sizeof err), EMBER_ERR_STATE);
    assert_non_null(strstr(err, "belongs to query 'copy', not 'other'"));
    assert_int_equal(em_qlog_open(dir, "copy", 43, &st, err, sizeof err), EMBER_ERR_STATE);
    assert_non_null(strstr(err, "another version of query 'copy'"));

    snprintf(path, sizeof path, "%s/offsets/2", dir); /* a torn file cannot be trusted */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"batch\": 2, \"ranges\": [[0, 30", f);
    fclose(f);
    assert_int_equal(em_qlog_open(dir, "copy", 42, &st, err, sizeof err), EMBER_ERR_MALFORMED);
    assert_non_null(strstr(err, "offsets/2"));
    em_qlog_state_free(&st);
}

static void checkpoint_keeps_the_last_entries(void **state)
{
    (void)state;
    char dir[256], err[1024], path[512];
    snprintf(dir, sizeof dir, "%s/long", tmpdir);
    em_qlog_state st;
    assert_int_equal(em_qlog_open(dir, "long", 1, &st, err, sizeof err), EMBER_OK);
    em_stream_range r = {0, 0, 1};
    for (int b = 0; b < EM_QLOG_KEEP + 5; b++) {
        assert_int_equal(
            em_qlog_write_offsets(dir, b, "t", &r, 1, &no_times, NULL, 0, err, sizeof err),
            EMBER_OK);
        assert_int_equal(em_qlog_write_commit(dir, b, 1, 1, EM_NO_WATERMARK, err, sizeof err),
                         EMBER_OK);
    }
    struct stat sb;
    snprintf(path, sizeof path, "%s/offsets/4", dir);
    assert_int_not_equal(stat(path, &sb), 0);
    snprintf(path, sizeof path, "%s/commits/5", dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(em_qlog_open(dir, "long", 1, &st, err, sizeof err), EMBER_OK);
    assert_int_equal(st.last_planned, EM_QLOG_KEEP + 4);
    assert_int_equal(st.last_committed, EM_QLOG_KEEP + 4);
    em_qlog_state_free(&st);
}

/* start_graph registers a query of graph g (as the driver does from a StartQuery) and returns
 * its entry */
static em_query *start_graph(em_streams *s, Ember__JobGraph *g, const char *name, int detach,
                             uint64_t owner)
{
    Ember__StartQuery sq = EMBER__START_QUERY__INIT;
    sq.graph = g;
    sq.name = (char *)name;
    sq.checkpoint = "/ck";
    sq.interval_ms = 100;
    sq.detach = detach;
    /* as received: an owned copy through the wire format */
    size_t len = ember__start_query__get_packed_size(&sq);
    uint8_t *buf = malloc(len);
    ember__start_query__pack(&sq, buf);
    Ember__StartQuery *owned = ember__start_query__unpack(NULL, len, buf);
    free(buf);
    char err[256];
    assert_int_equal(em_streams_start(s, owned, 0, (em_session_id){owner}, 1, err, sizeof err),
                     EMBER_OK);
    return s->queries;
}

static em_query *start_query(em_streams *s, const char *name, int detach, uint64_t owner)
{
    qgraph q;
    qgraph_init(&q, "upper", "/out");
    return start_graph(s, &q.g, name, detach, owner);
}

/* window_graph: the query graph with its map turned into sums over 60 s windows sliding every
 * 20 s, 5 s of allowed delay */
static void window_graph(qgraph *q)
{
    qgraph_init(q, "", "/out");
    q->map.kind = EMBER__NODE_KIND__NODE_WINDOW;
    q->map.reducer = EMBER__REDUCER__REDUCER_SUM_I64;
    q->map.partitions = 2;
    q->map.window_length_ms = 60000;
    q->map.window_slide_ms = 20000;
    q->map.watermark_delay_ms = 5000;
}

static void windows_follow_event_times(void **state)
{
    (void)state;
    qgraph q;
    window_graph(&q);
    int32_t stream_node;
    char err[512];
    assert_int_equal(em_graph_validate_query(&q.g, &stream_node, err, sizeof err), EMBER_OK);
    /* a no-data batch is due when the watermark (max - 5 s) would pass a window end (a
     * multiple of 20 s) that the last batch's did not */
    assert_false(em_query_windows_due(&q.g, EM_NO_WATERMARK, EM_NO_WATERMARK));
    assert_true(em_query_windows_due(&q.g, EM_NO_WATERMARK, 100000));
    assert_true(em_query_windows_due(&q.g, 100000, 110000));  /* 95 s -> 105 s: 100 s ends */
    assert_false(em_query_windows_due(&q.g, 100000, 104000)); /* 95 s -> 99 s: none */
    assert_false(em_query_windows_due(&q.g, 110000, 110000));

    em_streams s;
    em_streams_init(&s);
    em_query *qr = start_graph(&s, &q.g, "w", 0, 5);
    assert_int_equal(qr->window_delay_ms, 5000);
    em_stream_range r = {0, 10, 20};
    em_event_times times = {100000, 90000, 1796000000000};
    Ember__SubmitJob *job = em_stream_batch_job(qr, 7, &r, 1, &times, NULL);
    assert_non_null(job);
    assert_int_equal(em_graph_validate(job->graph, 0, err, sizeof err), EMBER_OK);
    const Ember__Node *w = job->graph->nodes[1];
    assert_int_equal(w->watermark_ms, 95000);
    assert_int_equal(w->prev_watermark_ms, 85000);
    assert_string_equal(w->state_dir, "/ck/state/1");
    assert_int_equal(w->state_version, 7);
    assert_int_equal(w->batch_time_ms, 1796000000000);
    em_pb_free(job);
    job = em_stream_batch_job(qr, 0, &r, 1, &no_times, NULL); /* no event time yet */
    assert_int_equal(job->graph->nodes[1]->watermark_ms, EM_NO_WATERMARK);
    assert_int_equal(job->graph->nodes[1]->prev_watermark_ms, EM_NO_WATERMARK);
    em_pb_free(job);
    em_streams_fini(&s);

    /* the checkpoint keeps what a batch applied, and the largest event time when committed */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/ck-times", tmpdir);
    em_qlog_state st;
    assert_int_equal(em_qlog_open(dir, "w", 1, &st, err, sizeof err), EMBER_OK);
    assert_int_equal(st.times.applied, EM_NO_WATERMARK);
    assert_int_equal(st.committed_max, EM_NO_WATERMARK);
    assert_int_equal(
        em_qlog_write_offsets(dir, 0, "events", &r, 1, &no_times, NULL, 0, err, sizeof err),
        EMBER_OK);
    assert_int_equal(em_qlog_write_commit(dir, 0, 10, 10, 90000, err, sizeof err), EMBER_OK);
    assert_int_equal(
        em_qlog_write_offsets(dir, 1, "events", &r, 1, &times, NULL, 0, err, sizeof err), EMBER_OK);
    em_qlog_state_free(&st);
    assert_int_equal(em_qlog_open(dir, "w", 1, &st, err, sizeof err), EMBER_OK);
    assert_int_equal(st.last_planned, 1);
    assert_int_equal(st.times.applied, 100000);
    assert_int_equal(st.times.previous, 90000);
    assert_int_equal(st.times.batch_time_ms, 1796000000000);
    assert_int_equal(st.committed_max, 90000);
    em_qlog_state_free(&st);
}

static void batch_job_is_a_batch_graph(void **state)
{
    (void)state;
    em_streams s;
    em_streams_init(&s);
    em_query *q = start_query(&s, "copy", 0, 5);
    em_stream_range r[2] = {{0, 10, 20}, {1, 0, 3}};
    Ember__SubmitJob *job = em_stream_batch_job(q, 7, r, 2, &no_times, NULL);
    assert_non_null(job);
    char err[512];
    assert_int_equal(em_graph_validate(job->graph, 0, err, sizeof err), EMBER_OK);
    const Ember__Node *src = job->graph->nodes[0];
    assert_int_equal(src->kind, EMBER__NODE_KIND__NODE_KAFKA);
    assert_int_equal(src->n_ranges, 2);
    assert_int_equal(src->ranges[0]->from, 10);
    assert_int_equal(src->ranges[1]->until, 3);
    assert_string_equal(job->graph->action->path, "/out/.batch-0000000007.tmp");
    assert_string_equal(job->name, "copy batch 7");
    em_pb_free(job);
    em_streams_fini(&s);
}

static void batch_cycle_through_the_loop(void **state)
{
    (void)state;
    em_streams s;
    em_streams_init(&s);
    em_query *q = start_query(&s, "copy", 0, 5);
    char err[256];
    assert_int_equal(q->state, EM_QUERY_STARTING);
    /* a second query of a running name is refused */
    Ember__StartQuery again = EMBER__START_QUERY__INIT;
    again.name = "copy";
    assert_int_equal(em_streams_start(&s, &again, 0, (em_session_id){5}, 1, err, sizeof err),
                     EMBER_ERR_STATE);
    assert_non_null(strstr(err, "is running already"));

    /* what the stream thread does on a trigger */
    em_stream_range r = {0, 0, 5};
    q->state = EM_QUERY_RUNNING;
    q->submit = em_stream_batch_job(q, 0, &r, 1, &no_times, NULL);
    q->phase = EM_BATCH_SUBMIT;
    uint64_t id;
    em_session_id session;
    Ember__SubmitJob *submit;
    assert_true(em_streams_take_submit(&s, &id, &session, &submit));
    assert_false(em_streams_take_submit(&s, &id, &session, &submit)); /* handed out once */
    assert_int_equal(id, q->id);
    assert_true(session.v != 5); /* batches run in the query's own session */
    em_pb_free(submit);          /* em_sched_submit would own it */
    em_streams_job_started(&s, id, (em_job_id){11}, EMBER_OK, "", 1000);
    assert_int_equal(q->phase, EM_BATCH_RUNNING);
    em_job job = {.id = {11}, .state = EM_RUN_SUCCEEDED, .records_in = 5, .records_out = 4};
    em_job other = {.id = {12}, .state = EM_RUN_SUCCEEDED};
    assert_false(em_streams_job_done(&s, &other, 2000)); /* not a batch of any query */
    assert_true(em_streams_job_done(&s, &job, 2000));
    assert_int_equal(q->phase, EM_BATCH_DONE);
    assert_int_equal(q->job_code, EMBER_OK);
    em_query_record_batch(q, 1000, 2000);
    assert_int_equal(q->last_committed, 0);
    assert_int_equal(q->records_out, 4);
    assert_int_equal(q->phase, EM_BATCH_IDLE);
    assert_int_equal(q->due_us, 1000 + 100 * 1000); /* on the beat */
    em_query_status_buf st;
    em_streams_status(&s, "copy", &st);
    assert_true(st.msg.found);
    assert_string_equal(st.msg.state, "running");
    assert_int_equal(st.msg.last_committed, 0);
    em_streams_status(&s, "none", &st);
    assert_false(st.msg.found);

    /* a batch the scheduler refused: DONE with the reason, for the thread to fail the query */
    q->submit = em_stream_batch_job(q, 1, &r, 1, &no_times, NULL);
    q->phase = EM_BATCH_SUBMIT;
    assert_true(em_streams_take_submit(&s, &id, &session, &submit));
    em_pb_free(submit);
    em_streams_job_started(&s, id, (em_job_id){0}, EMBER_ERR_TOO_LARGE, "too many jobs", 3000);
    assert_int_equal(q->phase, EM_BATCH_DONE);
    assert_int_equal(q->job_code, EMBER_ERR_TOO_LARGE);
    assert_string_equal(q->job_error, "too many jobs");
    em_streams_fini(&s);
}

static void client_queries_stop_with_their_submitter(void **state)
{
    (void)state;
    em_streams s;
    em_streams_init(&s);
    em_query *client = start_query(&s, "client", 0, 5);
    em_query *detached = start_query(&s, "detached", 1, 5);
    em_streams_owner_gone(&s, (em_session_id){6});
    assert_false(client->stop_requested);
    em_streams_owner_gone(&s, (em_session_id){5});
    assert_true(client->stop_requested);
    assert_false(detached->stop_requested);
    assert_true(em_streams_stop(&s, "detached"));
    assert_true(detached->stop_requested);
    assert_false(em_streams_stop(&s, "none"));
    em_streams_fini(&s);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plan_cuts_each_partition),
        cmocka_unit_test(adaptive_rate_follows_processing),
        cmocka_unit_test(adaptive_rate_outlasts_fixed_cost),
        cmocka_unit_test(caps_bound_each_partition),
        cmocka_unit_test(fingerprint_ignores_what_may_change),
        cmocka_unit_test(query_graph_validation),
        cmocka_unit_test(checkpoint_logs),
        cmocka_unit_test(checkpoint_keeps_the_last_entries),
        cmocka_unit_test(batch_job_is_a_batch_graph),
        cmocka_unit_test(windows_follow_event_times),
        cmocka_unit_test(batch_cycle_through_the_loop),
        cmocka_unit_test(client_queries_stop_with_their_submitter),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    em_remove_tree(tmpdir);
    return failed;
}
