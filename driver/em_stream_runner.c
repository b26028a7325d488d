/* em_stream_runner.c -- the driver's stream thread (see em_stream_runner.h).
 *
 * The thread holds the registry's lock while it looks for work and lets go of it around
 * every I/O step (Kafka, the checkpoint, the sink). A query it works on cannot end or be
 * freed meanwhile: only this thread ends a running query, and the registry frees ended ones
 * only. It picks one step at a time and looks again from the start of the list.
 */
#include "em_stream_runner.h"

#include <dirent.h>
#include <ember/ember.h>
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "em_frame.h"
#include "em_fs.h"
#include "em_graph.h"
#include "em_kafka.h"
#include "em_log.h"
#include "em_query_store.h"
#include "em_stream_log.h"
#include "em_time.h"

#define KAFKA_TIMEOUT_MS  5000
#define IDLE_WAIT_US      1000000 /* the longest the thread sleeps without a reason */
#define PARTITIONS_TTL_MS 1000    /* a topic's partitions are looked up again this often */

struct em_stream_runner {
    em_streams *s;
    pthread_t thread;
};

/* em_query_io: what the thread keeps per query */
/* topic_cache: a topic's partitions, as last looked up (at_ms; 0: look them up) */
typedef struct topic_cache {
    int32_t *parts;
    int n;
    int64_t at_ms;
} topic_cache;

struct em_query_io {
    rd_kafka_t *kafka;
    const char *topic;      /* in the query's graph */
    const char *sink_dir;   /* the file sink's directory (NULL: another sink) */
    const char *sink_topic; /* the Kafka sink's topic (NULL: another sink) */
    int earliest;
    int64_t cap;      /* records per partition and batch (0: none) */
    int64_t rate_cap; /* records per second per partition (0: none) */
    int backpressure; /* the query's adaptive rate bounds its batches */
    int64_t interval_ms;
    em_stream_range *next; /* per partition: where its next batch starts (sorted) */
    size_t n_next;
    int64_t trigger_us;  /* the trigger of the batch in flight */
    topic_cache in, out; /* the partitions of the topic read, and of the Kafka sink's */
};

static void io_free(struct em_query_io *io)
{
    if (!io) return;
    if (io->kafka) rd_kafka_destroy(io->kafka);
    free(io->next);
    free(io->in.parts);
    free(io->out.parts);
    free(io);
}

void em_stream_sink_paths(const char *dir, int64_t batch, char *tmp, char *final, size_t len)
{
    snprintf(tmp, len, "%s/.batch-%010" PRId64 ".tmp", dir, batch);
    snprintf(final, len, "%s/batch-%010" PRId64, dir, batch);
}

/* window_state_dirs: where each window node of a batch's graph keeps its state */
static char *window_state_dirs(const em_query *q)
{
    const Ember__JobGraph *g = q->graph;
    size_t len = strlen(q->checkpoint) + 32;
    char *dirs = calloc(g->n_nodes, len);
    for (size_t i = 0; dirs && i < g->n_nodes; i++)
        if (em_node_keeps_state(g->nodes[i]->kind))
            snprintf(dirs + i * len, len, "%s/state/%zu", q->checkpoint, i);
    return dirs;
}

/* fence_kafka_sink tags a batch's Kafka sink with the query and batch, and its marks */
static void fence_kafka_sink(Ember__Action *action, const em_query *q, int64_t batch,
                             const em_sink_marks *sink, Ember__KafkaRange *marks,
                             Ember__KafkaRange **mark_ptrs)
{
    action->kafka_query = (char *)q->name;
    action->kafka_batch = batch + 1; /* 0: no fence */
    action->kafka_recheck = sink && sink->replay;
    for (size_t i = 0; sink && i < sink->n; i++) {
        ember__kafka_range__init(&marks[i]);
        marks[i].partition = sink->marks[i].partition;
        marks[i].from = marks[i].until = sink->marks[i].from;
        mark_ptrs[i] = &marks[i];
    }
    action->n_kafka_marks = sink ? sink->n : 0;
    action->kafka_marks = mark_ptrs;
}

Ember__SubmitJob *em_stream_batch_job(const em_query *q, int64_t batch,
                                      const em_stream_range *ranges, size_t n,
                                      const em_event_times *times, const em_sink_marks *sink)
{
    const Ember__JobGraph *tpl = q->graph;
    Ember__Node **nodes = malloc(tpl->n_nodes * sizeof *nodes);
    Ember__Node *copies = malloc(tpl->n_nodes * sizeof *copies);
    Ember__KafkaRange *rs = calloc(n, sizeof *rs), **rp = calloc(n, sizeof *rp);
    size_t n_marks = sink ? sink->n : 0;
    Ember__KafkaRange *ms = calloc(n_marks + 1, sizeof *ms), **mp = calloc(n_marks + 1, sizeof *mp);
    char *dirs = window_state_dirs(q);
    size_t dir_len = strlen(q->checkpoint) + 32;
    Ember__SubmitJob *out = NULL;
    if (!nodes || !copies || !rs || !rp || !dirs || !ms || !mp) goto done;
    for (size_t i = 0; i < n; i++) {
        ember__kafka_range__init(&rs[i]);
        rs[i].partition = ranges[i].partition;
        rs[i].from = ranges[i].from;
        rs[i].until = ranges[i].until;
        rp[i] = &rs[i];
    }
    for (size_t i = 0; i < tpl->n_nodes; i++) {
        copies[i] = *tpl->nodes[i];
        nodes[i] = &copies[i];
        if (!em_node_keeps_state(copies[i].kind)) continue;
        copies[i].state_dir = dirs + i * dir_len;
        copies[i].state_version = batch;
        copies[i].batch_time_ms = times->batch_time_ms;
        if (copies[i].kind != EMBER__NODE_KIND__NODE_WINDOW) continue;
        copies[i].watermark_ms = em_query_watermark(times->applied, copies[i].watermark_delay_ms);
        copies[i].prev_watermark_ms =
            em_query_watermark(times->previous, copies[i].watermark_delay_ms);
    }
    Ember__Node *source = &copies[q->stream_node];
    source->kind = EMBER__NODE_KIND__NODE_KAFKA;
    source->n_ranges = n;
    source->ranges = rp;
    source->starting = EMBER__STARTING_OFFSETS__STARTING_LATEST;
    source->max_per_partition = 0;
    Ember__Action action = *tpl->action;
    char tmp[4096], final[4096], name[256];
    char fence[EM_QUERY_NAME_MAX + 32];
    if (action.kind == EMBER__ACTION_KIND__ACTION_SAVE_TEXT) {
        em_stream_sink_paths(tpl->action->path, batch, tmp, final, sizeof tmp);
        action.path = tmp;
    } else if (action.kind == EMBER__ACTION_KIND__ACTION_SAVE_REDIS) {
        snprintf(fence, sizeof fence, "ember:fence:%s", q->name);
        action.redis_fence = fence;
        action.redis_batch = batch + 1; /* 0: no fence */
    } else if (action.kind == EMBER__ACTION_KIND__ACTION_SAVE_KAFKA) {
        fence_kafka_sink(&action, q, batch, sink, ms, mp);
    }
    Ember__JobGraph g = *tpl;
    g.nodes = nodes;
    g.action = &action;
    snprintf(name, sizeof name, "%.100s batch %" PRId64, q->name, batch);
    Ember__SubmitJob sj = EMBER__SUBMIT_JOB__INIT;
    sj.graph = &g;
    sj.name = name;
    sj.submitter = (char *)q->submitter;
    /* through the wire format: the result is owned like any received SubmitJob */
    size_t len = ember__submit_job__get_packed_size(&sj);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf) out = ember__submit_job__unpack(NULL, ember__submit_job__pack(&sj, buf), buf);
    free(buf);
done:
    free(nodes);
    free(copies);
    free(dirs);
    free(rs);
    free(rp);
    free(ms);
    free(mp);
    return out;
}

/* ---- opening a query ------------------------------------------------------------------------ */

/* set_next records where each partition's next batch starts: after `ranges` */
static int set_next(struct em_query_io *io, const em_stream_range *ranges, size_t n)
{
    em_stream_range *next = n ? malloc(n * sizeof *next) : NULL;
    if (n && !next) return EMBER_ERR_NOMEM;
    if (n) memcpy(next, ranges, n * sizeof *next);
    free(io->next);
    io->next = next;
    io->n_next = n;
    return EMBER_OK;
}

/* set_starts: a new query's explicit starting offsets, as if a batch had ended there */
static int set_starts(struct em_query_io *io, const Ember__Node *src)
{
    em_stream_range *starts = calloc(src->n_start_offsets, sizeof *starts);
    if (!starts) return EMBER_ERR_NOMEM;
    for (size_t i = 0; i < src->n_start_offsets; i++)
        starts[i] = (em_stream_range){src->start_offsets[i]->partition, src->start_offsets[i]->from,
                                      src->start_offsets[i]->from};
    int rc = set_next(io, starts, src->n_start_offsets);
    free(starts);
    return rc;
}

static int64_t next_from(const struct em_query_io *io, int32_t partition)
{
    for (size_t i = 0; i < io->n_next; i++)
        if (io->next[i].partition == partition) return io->next[i].until;
    return -1;
}

static int dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* open_query: the checkpoint read, the Kafka handle made; the batch that was running when the
 * query last stopped is submitted again with its logged ranges. Lock held at entry and exit. */
static void open_query(em_streams *s, em_query *q)
{
    const Ember__JobGraph *g = q->graph; /* immutable while the query lives */
    const Ember__Node *src = g->nodes[q->stream_node];
    char err[1024] = "", checkpoint[sizeof q->checkpoint], name[sizeof q->name];
    snprintf(checkpoint, sizeof checkpoint, "%s", q->checkpoint);
    snprintf(name, sizeof name, "%s", q->name);
    int64_t q_interval_ms = q->interval_ms;
    pthread_mutex_unlock(&s->lock);

    struct em_query_io *io = calloc(1, sizeof *io);
    em_qlog_state st = {0};
    Ember__SubmitJob *resubmit = NULL;
    int rc = io ? EMBER_OK : EMBER_ERR_NOMEM;
    if (rc == EMBER_OK) {
        io->topic = src->topic;
        io->earliest = src->starting == EMBER__STARTING_OFFSETS__STARTING_EARLIEST;
        io->cap = src->max_per_partition;
        io->rate_cap = src->max_rate_per_partition;
        io->backpressure = src->backpressure;
        io->interval_ms = q_interval_ms;
        if (g->action->kind == EMBER__ACTION_KIND__ACTION_SAVE_TEXT) io->sink_dir = g->action->path;
        if (g->action->kind == EMBER__ACTION_KIND__ACTION_SAVE_KAFKA)
            io->sink_topic = g->action->topic;
        rc = em_qlog_open(checkpoint, name, em_query_fingerprint(g, q->stream_node), &st, err,
                          sizeof err);
    }
    if (rc == EMBER_OK && io->sink_dir && em_mkdirs(io->sink_dir) != 0) {
        snprintf(err, sizeof err, "cannot make the sink directory %s: %s", io->sink_dir,
                 strerror(errno));
        rc = EMBER_ERR_IO;
    }
    if (rc == EMBER_OK) rc = em_kafka_consumer_new(src->bootstrap, &io->kafka, err, sizeof err);
    if (rc == EMBER_OK && st.n_ranges)
        rc = set_next(io, st.ranges, st.n_ranges);
    else if (rc == EMBER_OK && src->n_start_offsets) /* a new query, told where to start */
        rc = set_starts(io, src);
    if (rc == EMBER_OK && st.last_planned > st.last_committed) {
        char tmp[4096], final[4096];
        if (io->sink_dir)
            em_stream_sink_paths(io->sink_dir, st.last_planned, tmp, final, sizeof tmp);
        if (io->sink_dir && dir_exists(final)) { /* its output was complete: log the commit */
            /* (the event times it read are not known: the watermark waits for the next batch) */
            rc = em_qlog_write_commit(checkpoint, st.last_planned, 0, 0, st.times.applied, err,
                                      sizeof err);
            em_remove_tree(tmp);
            st.last_committed = st.last_planned;
            st.committed_max = st.times.applied;
        } else if (!(resubmit = em_stream_batch_job(
                         q, st.last_planned, st.ranges, st.n_ranges, &st.times,
                         &(em_sink_marks){st.sink_marks, st.n_sink_marks, 1}))) {
            rc = EMBER_ERR_NOMEM;
        }
    }
    int64_t now = em_now_us();

    pthread_mutex_lock(&s->lock);
    if (rc != EMBER_OK) {
        em_query_fail(q, "%s", err[0] ? err : ember_strerror(rc));
        io_free(io);
        em_qlog_state_free(&st);
        s->changes++;
        return;
    }
    q->io = io;
    q->state = EM_QUERY_RUNNING;
    q->last_committed = st.last_committed;
    q->times = st.times;
    q->event_time_max = st.last_committed == st.last_planned && st.committed_max != EM_NO_WATERMARK
                            ? st.committed_max
                            : st.times.applied;
    if (resubmit) {
        q->batch = st.last_planned;
        q->ranges = st.ranges; /* taken */
        q->n_ranges = st.n_ranges;
        st.ranges = NULL;
        q->current.started_unix_ms = em_unix_ms();
        q->current.watermark_ms = em_query_first_watermark(q, st.times.applied);
        q->submit = resubmit;
        q->submit_us = now;
        q->phase = EM_BATCH_SUBMIT;
        io->trigger_us = now;
    } else {
        q->batch = st.last_planned + 1;
        q->phase = EM_BATCH_IDLE;
        q->due_us = now;
    }
    em_info("query %s query=%llu name=%s batch=%" PRId64 " checkpoint=%s",
            st.last_planned < 0 ? "started" : "resumed", (unsigned long long)q->id, q->name,
            q->batch, q->checkpoint);
    em_qlog_state_free(&st);
    s->changes++;
    if (resubmit && s->wake_loop) s->wake_loop(s->wake_arg);
}

/* ---- a trigger ----------------------------------------------------------------------------- */

/* em_batch_plan: a trigger's cut of the topic */
typedef struct batch_plan {
    em_stream_range *ranges; /* per partition (owned) */
    em_partition_lag *lag;   /* per partition, after the batch (owned) */
    size_t n;
    int64_t records, lag_total;
} batch_plan;

static void batch_plan_free(batch_plan *p)
{
    free(p->ranges);
    free(p->lag);
    memset(p, 0, sizeof *p);
}

/* topic_partitions looks a topic's partitions up when the last look is older than
 * PARTITIONS_TTL_MS: a Metadata request costs a broker round trip, and partitions are added
 * seldom (one added meanwhile joins the query up to PARTITIONS_TTL_MS later). */
static int topic_partitions(rd_kafka_t *rk, const char *topic, topic_cache *c, char *err,
                            size_t errlen)
{
    int64_t now = em_now_ms();
    if (c->parts && now - c->at_ms < PARTITIONS_TTL_MS) return EMBER_OK;
    int32_t *parts = NULL;
    int n = 0;
    int rc = em_kafka_partitions(rk, topic, KAFKA_TIMEOUT_MS, &parts, &n, err, errlen);
    if (rc != EMBER_OK) return rc;
    free(c->parts);
    *c = (topic_cache){parts, n, now};
    return EMBER_OK;
}

/* sink_marks: where each partition of the Kafka sink's topic ends now, before the batch
 * writes (none when the topic does not exist yet: it will start at 0) */
static int sink_marks(struct em_query_io *io, em_stream_range **marks, size_t *n, char *err,
                      size_t errlen)
{
    *marks = NULL;
    *n = 0;
    int rc = topic_partitions(io->kafka, io->sink_topic, &io->out, err, errlen);
    if (rc == EMBER_ERR_NOT_FOUND) return EMBER_OK;
    size_t count = rc == EMBER_OK && io->out.n > 0 ? (size_t)io->out.n : 0;
    int64_t *high = calloc(count + 1, sizeof *high);
    em_stream_range *m = calloc(count + 1, sizeof *m);
    if (rc == EMBER_OK && (!high || !m)) rc = EMBER_ERR_NOMEM;
    if (rc == EMBER_OK) /* the ends only: one request */
        rc = em_kafka_watermarks_of(io->kafka, io->sink_topic, io->out.parts, count,
                                    KAFKA_TIMEOUT_MS, NULL, high, err, errlen);
    for (size_t i = 0; rc == EMBER_OK && i < count; i++)
        m[i] = (em_stream_range){io->out.parts[i], high[i], high[i]};
    free(high);
    if (rc != EMBER_OK) {
        free(m);
        return rc;
    }
    *marks = m;
    *n = count;
    return EMBER_OK;
}

/* plan_batch reads the topic's partitions and watermarks and cuts each partition's range,
 * within the caps (em_stream_caps: the fixed ones and `adaptive`, NULL without
 * back-pressure). */
static int plan_batch(struct em_query_io *io, const em_rate *adaptive, batch_plan *p, char *err,
                      size_t errlen)
{
    memset(p, 0, sizeof *p);
    int rc = topic_partitions(io->kafka, io->topic, &io->in, err, errlen);
    int32_t *parts = io->in.parts;
    size_t count = rc == EMBER_OK && io->in.n > 0 ? (size_t)io->in.n : 0;
    int64_t *low = count ? calloc(count, sizeof *low) : NULL;
    int64_t *high = count ? calloc(count, sizeof *high) : NULL;
    int64_t *waiting = count ? calloc(count, sizeof *waiting) : NULL;
    int64_t *caps = count ? calloc(count, sizeof *caps) : NULL;
    p->ranges = count ? calloc(count, sizeof *p->ranges) : NULL;
    p->lag = count ? calloc(count, sizeof *p->lag) : NULL;
    if (count && (!low || !high || !waiting || !caps || !p->ranges || !p->lag))
        rc = EMBER_ERR_NOMEM;
    if (rc == EMBER_OK)
        rc = em_kafka_watermarks_of(io->kafka, io->topic, parts, count, KAFKA_TIMEOUT_MS, low, high,
                                    err, errlen);
    for (size_t i = 0; rc == EMBER_OK && i < count; i++) {
        int64_t ignored;
        em_stream_range all = em_stream_plan(parts[i], next_from(io, parts[i]), low[i], high[i],
                                             io->earliest, 0, &ignored);
        waiting[i] = all.until - all.from;
    }
    if (rc == EMBER_OK)
        em_stream_caps(waiting, count, io->cap, (double)io->rate_cap, adaptive, io->interval_ms,
                       caps);
    for (size_t i = 0; rc == EMBER_OK && i < count; i++) {
        int64_t left;
        p->ranges[i] = em_stream_plan(parts[i], next_from(io, parts[i]), low[i], high[i],
                                      io->earliest, caps[i], &left);
        p->lag[i] = (em_partition_lag){parts[i], left};
        p->records += p->ranges[i].until - p->ranges[i].from;
        p->lag_total += left;
    }
    p->n = count;
    free(low);
    free(high);
    free(waiting);
    free(caps);
    if (rc != EMBER_OK) batch_plan_free(p);
    return rc;
}

/* trigger plans the next batch; with records to read, logs its offsets and hands its job to
 * the loop. Lock held at entry and exit. */
static void trigger(em_streams *s, em_query *q)
{
    struct em_query_io *io = q->io;
    int64_t due = q->due_us, start = em_now_us(), batch = q->batch, interval = q->interval_ms;
    /* the batch's windows follow the event times of the batches before it */
    em_event_times times = {q->event_time_max, q->times.applied, em_unix_ms()};
    int windows_due = em_query_windows_due(q->graph, times.previous, times.applied);
    em_rate rate = q->rate; /* the adaptive rate as of the last committed batch */
    char checkpoint[sizeof q->checkpoint], err[1024] = "";
    snprintf(checkpoint, sizeof checkpoint, "%s", q->checkpoint);
    pthread_mutex_unlock(&s->lock);

    batch_plan p;
    int64_t planned = 0, logged = 0;
    Ember__SubmitJob *submit = NULL;
    int rc = plan_batch(io, io->backpressure ? &rate : NULL, &p, err, sizeof err);
    /* a batch reads what is new, or without news closes the windows the watermark passed */
    int run = p.records > 0 || (windows_due && p.n > 0);
    em_sink_marks marks = {NULL, 0, 0};
    if (rc == EMBER_OK && run && io->sink_topic)
        rc = sink_marks(io, &marks.marks, &marks.n, err, sizeof err);
    if (rc == EMBER_OK && run) {
        planned = em_now_us();
        rc = em_qlog_write_offsets(checkpoint, batch, io->topic, p.ranges, p.n, &times, marks.marks,
                                   marks.n, err, sizeof err);
        logged = em_now_us();
        if (rc == EMBER_OK &&
            !(submit = em_stream_batch_job(q, batch, p.ranges, p.n, &times, &marks)))
            rc = EMBER_ERR_NOMEM;
    }
    free(marks.marks);
    /* where the next batch starts; without records, this pins a new query's start ("latest"
     * is the end of the topic when the query first looked) */
    if (rc == EMBER_OK) rc = set_next(io, p.ranges, p.n);
    int64_t now = em_now_us();

    pthread_mutex_lock(&s->lock);
    s->changes++;
    if (rc == EMBER_OK) { /* the partitions' lag, for the status view */
        q->lag = p.lag_total;
        free(q->part_lag);
        q->part_lag = p.lag;
        q->n_part_lag = p.n;
        p.lag = NULL;
    }
    q->triggers += rc == EMBER_OK;
    if (rc == EMBER_OK && !run) { /* nothing new: the next trigger, on the beat */
        q->warning[0] = '\0';
        batch_plan_free(&p);
        do due += interval * 1000;
        while (due <= now);
        q->due_us = due;
        return;
    }
    if (rc != EMBER_OK && !submit && planned == 0) { /* Kafka: try again at the next trigger */
        if (strcmp(q->warning, err) != 0)
            em_warn("query cannot read its topic query=%llu name=%s reason=\"%s\"",
                    (unsigned long long)q->id, q->name, err);
        snprintf(q->warning, sizeof q->warning, "%s", err);
        q->due_us = now + (interval < 1000 ? 1000 : interval) * 1000;
        return;
    }
    if (rc != EMBER_OK) {
        em_pb_free(submit);
        batch_plan_free(&p);
        em_query_fail(q, "batch %" PRId64 ": %s", batch, err[0] ? err : ember_strerror(rc));
        return;
    }
    q->warning[0] = '\0';
    q->ranges = p.ranges; /* taken */
    q->n_ranges = p.n;
    p.ranges = NULL;
    int64_t lag_total = p.lag_total;
    batch_plan_free(&p);
    q->times = times;
    q->current = (em_batch_stats){.started_unix_ms = em_unix_ms(),
                                  .plan_us = planned - start,
                                  .log_us = logged - planned,
                                  .delay_us = start > due ? start - due : 0,
                                  .lag = lag_total,
                                  .watermark_ms = em_query_first_watermark(q, times.applied),
                                  .event_time_max = EM_NO_WATERMARK};
    q->current.partitions = (uint32_t)q->n_part_lag;
    memcpy(q->current.part_lag, q->part_lag,
           (q->n_part_lag < EM_BATCH_PARTITIONS ? q->n_part_lag : EM_BATCH_PARTITIONS) *
               sizeof *q->part_lag);
    q->submit = submit;
    q->submit_us = now;
    q->phase = EM_BATCH_SUBMIT;
    io->trigger_us = due;
    if (s->wake_loop) s->wake_loop(s->wake_arg);
}

/* ---- a batch's end ------------------------------------------------------------------------- */

/* commit_files moves batch's directory into place, once its parts are all there */
static int commit_files(const char *dir, int64_t batch, char *err, size_t errlen)
{
    char tmp[4096], final[4096];
    em_stream_sink_paths(dir, batch, tmp, final, sizeof tmp);
    if (dir_exists(final)) return em_remove_tree(tmp) == 0 ? EMBER_OK : EMBER_ERR_IO;
    DIR *d = opendir(tmp);
    if (!d) {
        snprintf(err, errlen,
                 "the output of batch %" PRId64 " is not in %s (%s): the driver must see the "
                 "sink directory, on a filesystem it shares with the executors",
                 batch, tmp, strerror(errno));
        return EMBER_ERR_IO;
    }
    struct dirent *e;
    while ((e = readdir(d))) /* parts of attempts that did not finish */
        if (strncmp(e->d_name, ".part-", 6) == 0) unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    if (em_fsync_dir(tmp) != 0) {
        snprintf(err, errlen, "cannot sync %s: %s", tmp, strerror(errno));
        return EMBER_ERR_IO;
    }
    return em_rename_durable(tmp, final, err, errlen);
}

/* finish commits a batch whose job succeeded, or ends the query with the job's error. Lock
 * held at entry and exit. */
static void finish(em_streams *s, em_query *q)
{
    struct em_query_io *io = q->io;
    int code = q->job_code;
    int64_t batch = q->batch, records_in = q->current.records_in,
            records_out = q->current.records_out, start = em_now_us();
    int64_t event_time_max = q->current.event_time_max > q->event_time_max
                                 ? q->current.event_time_max
                                 : q->event_time_max;
    char checkpoint[sizeof q->checkpoint], err[1024] = "";
    snprintf(checkpoint, sizeof checkpoint, "%s", q->checkpoint);
    pthread_mutex_unlock(&s->lock);

    int rc = EMBER_OK;
    if (code == EMBER_OK && io->sink_dir) rc = commit_files(io->sink_dir, batch, err, sizeof err);
    if (code == EMBER_OK && rc == EMBER_OK)
        rc = em_qlog_write_commit(checkpoint, batch, records_in, records_out, event_time_max, err,
                                  sizeof err);
    int64_t now = em_now_us();

    pthread_mutex_lock(&s->lock);
    s->changes++;
    if (code != EMBER_OK && q->stop_requested && code == EMBER_ERR_CANCELLED) {
        q->state = EM_QUERY_STOPPED;
    } else if (code != EMBER_OK) {
        em_query_fail(q, "batch %" PRId64 " failed: %s", batch, q->job_error);
    } else if (rc != EMBER_OK) {
        em_query_fail(q, "batch %" PRId64 " could not be committed: %s", batch, err);
    } else {
        q->current.commit_us = now - start;
        em_query_record_batch(q, io->trigger_us, now);
        if (q->stop_requested) q->state = EM_QUERY_STOPPED;
    }
    if (q->state == EM_QUERY_STOPPED)
        em_info("query stopped query=%llu name=%s last_committed=%" PRId64,
                (unsigned long long)q->id, q->name, q->last_committed);
}

/* ---- the thread ----------------------------------------------------------------------------- */

static int query_ended(const em_query *q)
{
    return q->state == EM_QUERY_STOPPED || q->state == EM_QUERY_FAILED;
}

/* step does one thing that is due, and returns 1; else 0 with *wake_at lowered to the next
 * trigger. Lock held. */
static int step(em_streams *s, int64_t now, int64_t *wake_at)
{
    for (em_query *q = s->queries; q; q = q->next) {
        if (query_ended(q) && q->kept) { /* a driver started again must not resume it */
            char name[sizeof q->name];
            snprintf(name, sizeof name, "%s", q->name);
            q->kept = 0;
            pthread_mutex_unlock(&s->lock);
            em_query_store_remove(s->state_dir, name);
            pthread_mutex_lock(&s->lock);
            return 1;
        }
        if (query_ended(q)) {
            if (!q->io) continue;
            struct em_query_io *io = q->io;
            q->io = NULL;
            pthread_mutex_unlock(&s->lock);
            io_free(io);
            pthread_mutex_lock(&s->lock);
            return 1;
        }
        if (q->state == EM_QUERY_STARTING) {
            open_query(s, q);
            return 1;
        }
        if (q->phase == EM_BATCH_DONE) {
            finish(s, q);
            return 1;
        }
        if (q->phase != EM_BATCH_IDLE) continue;
        if (q->stop_requested) {
            q->state = EM_QUERY_STOPPED;
            s->changes++;
            em_info("query stopped query=%llu name=%s last_committed=%" PRId64,
                    (unsigned long long)q->id, q->name, q->last_committed);
            return 1;
        }
        if (q->due_us <= now) {
            trigger(s, q);
            return 1;
        }
        if (q->due_us < *wake_at) *wake_at = q->due_us;
    }
    return 0;
}

static void *run(void *arg)
{
    em_stream_runner *r = arg;
    em_streams *s = r->s;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        int64_t now = em_now_us(), wake_at = now + IDLE_WAIT_US;
        if (step(s, now, &wake_at)) continue;
        struct timespec until = em_monotonic_after_us(wake_at - now);
        pthread_cond_timedwait(&s->changed, &s->lock, &until);
    }
    for (em_query *q = s->queries; q; q = q->next) {
        io_free(q->io);
        q->io = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int em_stream_runner_start(em_streams *streams, em_stream_runner **out, char *err, size_t errlen)
{
    em_stream_runner *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return EMBER_ERR_NOMEM;
    }
    r->s = streams;
    int e = pthread_create(&r->thread, NULL, run, r);
    if (e != 0) {
        snprintf(err, errlen, "cannot start the stream thread: %s", strerror(e));
        free(r);
        return EMBER_ERR_NOMEM;
    }
    *out = r;
    return EMBER_OK;
}

void em_stream_runner_stop(em_stream_runner *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->s->lock);
    r->s->stopping = 1;
    pthread_cond_broadcast(&r->s->changed);
    pthread_mutex_unlock(&r->s->lock);
    pthread_join(r->thread, NULL);
    free(r);
}
