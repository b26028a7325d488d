/* em_runner.c -- slot threads: run tasks from the queue, source -> pipeline -> sink.
 *
 * A slot keeps its own Kafka reader and producer (created on first use, reused by every
 * later task of the same broker), so a task costs no connection setup; the reader keeps a
 * partition assigned after a range, so a streaming query's next batch on this slot finds its
 * records already fetched. Stage definitions
 * wait in a small cache (EX_STAGE_CACHE, larger than the EM_KNOWN_STAGES the driver assumes
 * we hold); a stage's pipeline is built by the first task that needs it.
 */
#include <ember/ember.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "em_batch.h"
#include "em_executor_int.h"
#include "em_fs.h"
#include "em_graph.h"
#include "em_hist.h"
#include "em_kafka.h"
#include "em_keyed.h"
#include "em_libcache.h"
#include "em_log.h"
#include "em_persist.h"
#include "em_redis_sink.h"
#include "em_shuffle.h"
#include "em_text_file.h"
#include "em_time.h"
#include "em_wide.h"

/* slot: one slot thread's reusable clients */
typedef struct slot {
    em_executor *ex;
    ex_slot_state *state;    /* what it runs, and whether it must stop */
    uint64_t task_id;        /* the launch it runs now */
    em_peers peers;          /* connections to other executors, for shuffle reads */
    em_kafka_reader *reader; /* keeps a streaming query's partitions assigned between batches */
    int64_t reader_fetched, reader_fallbacks; /* its figures already counted in state */
    rd_kafka_t *producer;
    char producer_bootstrap[1024];
} slot;

/* CANCEL_CHECK: records between two looks at a cancellation */
#define CANCEL_CHECK 256

/* cancelled: the driver asked to stop the task this slot runs */
static int cancelled(const slot *sl) { return atomic_load(&sl->state->cancel_id) == sl->task_id; }

/* ---- cancellation: a source that stops between records once its task is cancelled ------- */

typedef struct stoppable {
    slot *sl;
    em_source_fn fn; /* the real source */
    void *arg;
    em_record_fn emit; /* where its records go */
    void *emit_arg;
    unsigned n;
    int stopped;
} stoppable;

static int stoppable_emit(void *arg, const ember_record *rec)
{
    stoppable *s = arg;
    if (++s->n % CANCEL_CHECK == 0 && cancelled(s->sl)) {
        s->stopped = 1;
        return EMBER_ERR_CANCELLED;
    }
    return s->emit(s->emit_arg, rec);
}

static int stoppable_read(void *arg, em_record_fn emit, void *emit_arg, char *err, size_t errlen)
{
    stoppable *s = arg;
    s->emit = emit;
    s->emit_arg = emit_arg;
    int rc = s->fn(s->arg, stoppable_emit, s, err, errlen);
    if (s->stopped)
        snprintf(err, errlen, "cancelled by the driver (its job ended, or it timed out)");
    return rc;
}

/* ---- stage cache ------------------------------------------------------------------------ */

static void stage_free(ex_stage *st)
{
    if (!st) return;
    em_pipeline_free(st->pipeline);
    em_pb_free(st->def);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

void em_stage_cache_put(em_executor *ex, Ember__StageDef *def)
{
    ex_stage *st = calloc(1, sizeof *st);
    if (!st) {
        em_pb_free(def);
        return;
    }
    st->stage_id = def->stage_id;
    st->def = def;
    pthread_mutex_init(&st->lock, NULL);
    pthread_mutex_lock(&ex->lock);
    int victim = -1;
    for (int i = 0; i < EX_STAGE_CACHE; i++) {
        ex_stage *s = ex->stages[i];
        if (!s || s->stage_id == st->stage_id) {
            victim = i;
            break;
        }
        if (s->refs == 0 && (victim < 0 || s->last_used < ex->stages[victim]->last_used))
            victim = i;
    }
    if (victim < 0) { /* every cached stage is running: keep the cache as it is */
        pthread_mutex_unlock(&ex->lock);
        stage_free(st);
        return;
    }
    ex_stage *old = ex->stages[victim];
    st->last_used = ++ex->stage_clock;
    ex->stages[victim] = st;
    if (old && old->refs > 0) { /* a newer definition (moved map outputs): tasks still run it */
        old->retired = 1;
        old = NULL;
    }
    pthread_mutex_unlock(&ex->lock);
    stage_free(old);
}

void em_stage_cache_free(em_executor *ex)
{
    for (int i = 0; i < EX_STAGE_CACHE; i++) {
        stage_free(ex->stages[i]);
        ex->stages[i] = NULL;
    }
}

static ex_stage *stage_acquire(em_executor *ex, uint64_t stage_id)
{
    pthread_mutex_lock(&ex->lock);
    ex_stage *found = NULL;
    for (int i = 0; i < EX_STAGE_CACHE && !found; i++)
        if (ex->stages[i] && ex->stages[i]->stage_id == stage_id) found = ex->stages[i];
    if (found) {
        found->refs++;
        found->last_used = ++ex->stage_clock;
    }
    pthread_mutex_unlock(&ex->lock);
    return found;
}

static void stage_release(em_executor *ex, ex_stage *st)
{
    pthread_mutex_lock(&ex->lock);
    int last = --st->refs == 0 && st->retired;
    pthread_mutex_unlock(&ex->lock);
    if (last) stage_free(st);
}

/* unbuildable: a pipeline that cannot be built from this graph and library (a missing symbol,
 * an invalid node) cannot be built by any other attempt either: the failure is fatal */
static int unbuildable(int rc) { return rc != EMBER_OK && rc != EMBER_ERR_NOMEM; }

/* stage_pipeline loads the job library and builds the pipeline once per stage; a stage whose
 * chain goes through a union gets a chain per task (*own, freed by the caller). *fatal is set
 * when the pipeline cannot be built. */
static int stage_pipeline(em_executor *ex, ex_stage *st, uint32_t partition, const em_pipeline **pl,
                          em_pipeline **own, protobuf_c_boolean *fatal, char *err, size_t errlen)
{
    pthread_mutex_lock(&st->lock);
    int rc = EMBER_OK;
    const Ember__JobGraph *g = st->def->graph;
    if (!st->pipeline) {
        if (!g || g->library_sha256.len != 32) {
            snprintf(err, errlen, "stage %llu arrived without a job graph",
                     (unsigned long long)st->stage_id);
            rc = EMBER_ERR_PROTOCOL;
        }
        if (rc == EMBER_OK && !st->lib &&
            (rc = em_libcache_get(ex->libs, g->library_sha256.data, g->library_name, &st->lib, err,
                                  errlen)) == EMBER_ERR_LIBRARY)
            *fatal = 1; /* the bytes cannot be loaded (another API version): nowhere can */
        if (rc == EMBER_OK && st->def->final_node >= g->n_nodes) {
            snprintf(err, errlen, "stage %llu: final node %u outside its graph",
                     (unsigned long long)st->stage_id, st->def->final_node);
            rc = EMBER_ERR_PROTOCOL;
        }
        if (rc == EMBER_OK &&
            unbuildable(rc = em_pipeline_new(g, st->def->final_node, partition, st->lib,
                                             &st->pipeline, err, errlen)))
            *fatal = 1;
    }
    pthread_mutex_unlock(&st->lock);
    *own = NULL;
    *pl = st->pipeline;
    if (rc == EMBER_OK && em_pipeline_per_partition(st->pipeline)) {
        rc = em_pipeline_new(g, st->def->final_node, partition, st->lib, own, err, errlen);
        *fatal = (protobuf_c_boolean)unbuildable(rc);
        *pl = *own;
    }
    return rc;
}

/* count_fetches adds what the slot's reader fetched since the last count to the slot's
 * figures (the executor reports them with its heartbeat) */
static void count_fetches(slot *sl)
{
    int64_t records = 0, fallbacks = 0;
    if (!sl->reader) return;
    em_kafka_reader_fetched(sl->reader, &records, &fallbacks);
    atomic_fetch_add(&sl->state->kafka_fetched_records, (uint64_t)(records - sl->reader_fetched));
    atomic_fetch_add(&sl->state->kafka_fetch_fallbacks,
                     (uint64_t)(fallbacks - sl->reader_fallbacks));
    sl->reader_fetched = records;
    sl->reader_fallbacks = fallbacks;
}

/* ---- sources ---------------------------------------------------------------------------- */

typedef struct kafka_source {
    slot *sl;
    const Ember__Node *node;
    const Ember__KafkaRange *range;
} kafka_source;

static int kafka_read(void *src, em_record_fn emit, void *emit_arg, char *err, size_t errlen)
{
    kafka_source *ks = src;
    slot *sl = ks->sl;
    if (!sl->reader || strcmp(em_kafka_reader_bootstrap(sl->reader), ks->node->bootstrap) != 0) {
        count_fetches(sl);
        sl->reader_fetched = sl->reader_fallbacks = 0;
        em_kafka_reader_free(sl->reader);
        sl->reader = NULL;
        int rc = em_kafka_reader_new(ks->node->bootstrap, &sl->reader, err, errlen);
        if (rc != EMBER_OK) return rc;
    }
    int64_t n = 0;
    return em_kafka_reader_read(sl->reader, ks->node->topic, ks->range->partition, ks->range->from,
                                ks->range->until, (int)sl->ex->cfg.kafka_stall_ms, emit, emit_arg,
                                &n, err, errlen);
}

/* ---- sinks ------------------------------------------------------------------------------ */

#define SINK_SHUFFLE (-1) /* sink kind of a map stage: the shuffle writer */

typedef struct sink {
    slot *sl;
    unsigned n;                 /* records given to it, for cancellation checks */
    int kind;                   /* an Ember__ActionKind, or SINK_SHUFFLE */
    em_shuffle_writer *shuffle; /* a map stage's output */
    em_batch_writer collect;
    em_kafka_sink *kafka;
    em_redis_sink *redis;
    FILE *file;
    em_hist *age;   /* a final sink: its records' age when written (NULL: not kept) */
    int64_t now_ms; /* the clock for ages, read every AGE_CLOCK_EVERY records */
    char err[512];
} sink;

#define AGE_CLOCK_EVERY 64 /* records written within microseconds share a clock reading */

static int sink_record(void *arg, const ember_record *rec)
{
    sink *s = arg;
    int rc;
    if (++s->n % CANCEL_CHECK == 0 && cancelled(s->sl)) {
        snprintf(s->err, sizeof s->err, "cancelled by the driver (its job ended, or it timed out)");
        return EMBER_ERR_CANCELLED;
    }
    if (s->age && rec->timestamp > 0) {                            /* only final sinks keep ages */
        if (s->n % AGE_CLOCK_EVERY == 1) s->now_ms = em_unix_ms(); /* the first, then every 64th */
        em_hist_add(s->age, s->now_ms - rec->timestamp);
    }
    switch (s->kind) {
    case SINK_SHUFFLE: /* (a late record's Kafka error is in s->err already) */
        if ((rc = em_shuffle_writer_add(s->shuffle, rec)) != EMBER_OK && !s->err[0])
            snprintf(s->err, sizeof s->err, "%s", em_shuffle_writer_error(s->shuffle));
        return rc;
    case EMBER__ACTION_KIND__ACTION_COLLECT: return em_batch_add(&s->collect, rec);
    case EMBER__ACTION_KIND__ACTION_SAVE_KAFKA:
        return em_kafka_sink_write(s->kafka, rec, s->err, sizeof s->err);
    case EMBER__ACTION_KIND__ACTION_SAVE_REDIS:
        return em_redis_sink_write(s->redis, rec, s->err, sizeof s->err);
    case EMBER__ACTION_KIND__ACTION_SAVE_TEXT:
        if (fwrite(rec->value, 1, rec->value_len, s->file) != rec->value_len ||
            putc('\n', s->file) == EOF) {
            snprintf(s->err, sizeof s->err, "write failed: %s", strerror(errno));
            return EMBER_ERR_IO;
        }
        return EMBER_OK;
    default: return EMBER_OK; /* count */
    }
}

/* slot_producer: the slot's Kafka producer for bootstrap, made (again) when needed */
static int slot_producer(slot *sl, const char *bootstrap, char *err, size_t errlen)
{
    if (sl->producer && strcmp(sl->producer_bootstrap, bootstrap) == 0) return EMBER_OK;
    if (sl->producer) rd_kafka_destroy(sl->producer);
    sl->producer = NULL;
    int rc = em_kafka_producer_new(bootstrap, &sl->producer, err, errlen);
    if (rc == EMBER_OK)
        snprintf(sl->producer_bootstrap, sizeof sl->producer_bootstrap, "%s", bootstrap);
    return rc;
}

/* write_late: a window's late record to its dead-letter topic */
static int write_late(void *arg, const ember_record *rec)
{
    sink *s = arg;
    return em_kafka_sink_write(s->kafka, rec, s->err, sizeof s->err);
}

/* fence_kafka makes a streaming batch's Kafka sink exactly once (em_kafka_fence.c): its
 * records tagged, and, when the task may have run before, what that run wrote skipped */
static int fence_kafka(slot *sl, sink *s, const Ember__Action *a, uint32_t part, int rerun,
                       char *err, size_t errlen)
{
    int rc = em_kafka_sink_fence(s->kafka, a->kafka_query, a->kafka_batch - 1, part, err, errlen);
    if (rc != EMBER_OK || !(rerun || a->kafka_recheck)) return rc;
    em_kafka_mark *marks = calloc(a->n_kafka_marks + 1, sizeof *marks);
    if (!marks) {
        snprintf(err, errlen, "out of memory");
        return EMBER_ERR_NOMEM;
    }
    for (size_t i = 0; i < a->n_kafka_marks; i++)
        marks[i] = (em_kafka_mark){a->kafka_marks[i]->partition, a->kafka_marks[i]->from};
    rc = em_kafka_sink_recover(s->kafka, a->bootstrap, marks, a->n_kafka_marks,
                               (int)sl->ex->cfg.kafka_stall_ms, NULL, err, errlen);
    free(marks);
    return rc;
}

static int sink_open(slot *sl, sink *s, const ex_stage *st, uint32_t part, int rerun,
                     char *tmp_path, size_t tmp_len, char *err, size_t errlen)
{
    const Ember__StageDef *def = st->def;
    const Ember__Action *a = def->graph->action;
    memset(s, 0, sizeof *s);
    s->sl = sl;
    if (def->shuffle_out) {
        s->kind = SINK_SHUFFLE;
        if (def->shuffle_node >= def->graph->n_nodes ||
            !em_node_is_wide(def->graph->nodes[def->shuffle_node]->kind)) {
            snprintf(err, errlen, "stage %llu: shuffle output to node %u, not a wide node",
                     (unsigned long long)def->stage_id, def->shuffle_node);
            return EMBER_ERR_PROTOCOL;
        }
        const Ember__Node *wide = def->graph->nodes[def->shuffle_node];
        int rc = em_shuffle_writer_new(wide, st->lib, part, &s->shuffle, err, errlen);
        if (rc != EMBER_OK || !wide->late_topic[0]) return rc;
        if ((rc = slot_producer(sl, wide->bootstrap, err, errlen)) == EMBER_OK &&
            (rc = em_kafka_sink_open(sl->producer, wide->late_topic, &s->kafka, err, errlen)) ==
                EMBER_OK)
            em_shuffle_writer_on_late(s->shuffle, write_late, s);
        if (rc != EMBER_OK) em_shuffle_writer_free(s->shuffle);
        return rc;
    }
    s->kind = a->kind;
    if (a->kind == EMBER__ACTION_KIND__ACTION_SAVE_KAFKA ||
        a->kind == EMBER__ACTION_KIND__ACTION_SAVE_TEXT ||
        a->kind == EMBER__ACTION_KIND__ACTION_SAVE_REDIS)
        s->age = calloc(1, sizeof *s->age); /* without memory, no figures */
    switch (a->kind) {
    case EMBER__ACTION_KIND__ACTION_COLLECT: return em_batch_begin(&s->collect);
    case EMBER__ACTION_KIND__ACTION_SAVE_REDIS:
        return em_redis_sink_open(a, part, &s->redis, err, errlen);
    case EMBER__ACTION_KIND__ACTION_SAVE_KAFKA: {
        int rc = slot_producer(sl, a->bootstrap, err, errlen);
        if (rc == EMBER_OK) rc = em_kafka_sink_open(sl->producer, a->topic, &s->kafka, err, errlen);
        if (rc == EMBER_OK && a->kafka_batch > 0)
            rc = fence_kafka(sl, s, a, part, rerun, err, errlen);
        if (rc != EMBER_OK && s->kafka) { /* nothing written yet: it closes at once */
            char ignored[64];
            em_kafka_sink_close(s->kafka, 0, NULL, ignored, sizeof ignored);
            s->kafka = NULL;
        }
        return rc;
    }
    case EMBER__ACTION_KIND__ACTION_SAVE_TEXT:
        snprintf(tmp_path, tmp_len, "%s/.part-%05u.tmp-%d", a->path, part, (int)getpid());
        if (em_mkdirs(a->path) != 0 || !(s->file = fopen(tmp_path, "w"))) {
            snprintf(err, errlen, "cannot write to %s: %s", a->path, strerror(errno));
            return EMBER_ERR_IO;
        }
        return EMBER_OK;
    default: return EMBER_OK;
    }
}

/* report_ages puts a sink's histogram of record ages into res (sparse) */
static void report_ages(const em_hist *age, ex_result *res)
{
    size_t n = 0;
    for (uint32_t b = 0; age && b < EM_HIST_BUCKETS; b++) n += age->count[b] > 0;
    if (n == 0) return;
    uint32_t *buckets = malloc(n * sizeof *buckets);
    uint64_t *counts = malloc(n * sizeof *counts);
    if (!buckets || !counts) {
        free(buckets);
        free(counts);
        return;
    }
    size_t i = 0;
    for (uint32_t b = 0; b < EM_HIST_BUCKETS; b++)
        if (age->count[b]) {
            buckets[i] = b;
            counts[i++] = age->count[b];
        }
    res->msg.latency_buckets = buckets;
    res->msg.n_latency_buckets = n;
    res->msg.latency_counts = counts;
    res->msg.n_latency_counts = n;
}

/* sink_close finishes the output; on success a collect's batch or a shuffle's bucket sizes
 * go into res. */
static int sink_close(slot *sl, sink *s, const Ember__StageDef *def, uint32_t part,
                      const char *tmp_path, int ok, ex_result *res, char *err, size_t errlen)
{
    const Ember__Action *a = def->graph->action;
    int rc = EMBER_OK;
    int64_t delivered = 0;
    switch (s->kind) {
    case SINK_SHUFFLE:
        if (s->kafka) { /* a window's late records: delivered before the task succeeds */
            int krc = em_kafka_sink_close(s->kafka, 60000, &delivered, err, errlen);
            if (ok && krc != EMBER_OK) ok = 0, rc = krc;
        }
        if (ok) {
            uint32_t reducers = em_shuffle_writer_reducers(s->shuffle);
            uint64_t **sizes = &res->msg.bucket_bytes;
            if (!(*sizes = calloc(reducers, sizeof **sizes)))
                rc = EMBER_ERR_NOMEM;
            else
                rc = em_shuffle_writer_store(s->shuffle, sl->ex->blocks, def->stage_id, *sizes,
                                             &res->msg.spilled_bytes, err, errlen);
            res->msg.n_bucket_bytes = rc == EMBER_OK ? reducers : 0;
            int has_event_time;
            em_shuffle_writer_window(s->shuffle, &has_event_time, &res->msg.max_event_time,
                                     &res->msg.late_records);
            res->msg.has_event_time = (protobuf_c_boolean)has_event_time;
        }
        em_shuffle_writer_free(s->shuffle);
        break;
    case EMBER__ACTION_KIND__ACTION_COLLECT:
        if (ok) {
            em_batch_finish(&s->collect);
            res->data = s->collect.buf;
        } else {
            em_buf_free(&s->collect.buf);
        }
        break;
    case EMBER__ACTION_KIND__ACTION_SAVE_KAFKA:
        if (s->kafka) rc = em_kafka_sink_close(s->kafka, 60000, &delivered, err, errlen);
        if (ok && rc == EMBER_OK) report_ages(s->age, res);
        break;
    case EMBER__ACTION_KIND__ACTION_SAVE_REDIS:
        rc = em_redis_sink_close(s->redis, ok, err, errlen);
        if (ok && rc == EMBER_OK) report_ages(s->age, res);
        break;
    case EMBER__ACTION_KIND__ACTION_SAVE_TEXT:
        /* the part is on disk before its name says it is complete (a stream's batch is
         * committed on the strength of these names) */
        int synced = !s->file || !ok || (fflush(s->file) == 0 && fsync(fileno(s->file)) == 0);
        if (s->file && (fclose(s->file) != 0 || !synced) && ok) {
            snprintf(err, errlen, "cannot write %s: %s", tmp_path, strerror(errno));
            rc = EMBER_ERR_IO;
        }
        if (ok && rc == EMBER_OK) {
            char final_path[4200];
            snprintf(final_path, sizeof final_path, "%s/part-%05u", a->path, part);
            if (rename(tmp_path, final_path) != 0) {
                snprintf(err, errlen, "cannot rename %s: %s", tmp_path, strerror(errno));
                rc = EMBER_ERR_IO;
            }
        } else {
            unlink(tmp_path);
        }
        if (ok && rc == EMBER_OK) report_ages(s->age, res);
        break;
    default: break;
    }
    free(s->age);
    s->age = NULL;
    return rc;
}

/* ---- running a task --------------------------------------------------------------------- */

/* task_source: where a task's chain reads its records */
typedef struct task_source {
    em_source_fn fn;
    void *arg;
    kafka_source kafka;
    em_range_source_arg range;
    em_text_source_arg text;
    em_batches_source_arg batches; /* parallelized records, or a cached partition */
    em_shuffle_read_arg shuffle;
    em_fetch_failure failed; /* a shuffle read could not read a map output */
    em_keyed_stats keyed;    /* a map_with_state's reduce side */
} task_source;

/* pick_source sets ts to the source of chain pl for task (a cached partition on a hit). */
static void pick_source(slot *sl, const ex_stage *st, const em_pipeline *pl, const ex_task *task,
                        const em_persist_task *pt, task_source *ts)
{
    const Ember__Node *src = em_pipeline_source(pl);
    uint32_t src_part = em_pipeline_source_partition(pl, task->launch.partition);
    memset(ts, 0, sizeof *ts);
    if (pt->hit) {
        size_t len;
        const void *data = em_block_data(pt->hit, &len);
        ts->batches = (em_batches_source_arg){data, len};
        ts->fn = em_batches_source;
        ts->arg = &ts->batches;
    } else if (src->kind == EMBER__NODE_KIND__NODE_KAFKA) {
        ts->kafka = (kafka_source){sl, src, src->ranges[src_part]};
        ts->fn = kafka_read;
        ts->arg = &ts->kafka;
    } else if (src->kind == EMBER__NODE_KIND__NODE_TEXT_FILE) {
        ts->text = (em_text_source_arg){src, src_part};
        ts->fn = em_text_source;
        ts->arg = &ts->text;
    } else if (src->kind == EMBER__NODE_KIND__NODE_PARALLELIZE) {
        ts->batches = (em_batches_source_arg){task->data, task->data_len};
        ts->fn = em_batches_source;
        ts->arg = &ts->batches;
    } else if (em_node_is_wide(src->kind)) {
        ts->shuffle = (em_shuffle_read_arg){
            sl->ex->blocks, &sl->peers, sl->ex->bound_url, st->def,        src,
            src_part,       st->lib,    &ts->failed,       sl->ex->states, &ts->keyed};
        ts->fn = em_shuffle_read;
        ts->arg = &ts->shuffle;
    } else {
        ts->range = (em_range_source_arg){src, src_part};
        ts->fn = em_range_source;
        ts->arg = &ts->range;
    }
}

/* run_chain runs the task's chain from its source into the stage's sink. */
static int run_chain(slot *sl, ex_stage *st, const em_pipeline *pl, ex_task *task,
                     em_persist_task *pt, ex_result *res, char *err, size_t errlen)
{
    task_source ts;
    pick_source(sl, st, pl, task, pt, &ts);
    stoppable stop = {sl, ts.fn, ts.arg, NULL, NULL, 0, 0};
    sink out;
    char tmp_path[4200] = "";
    em_run_stats stats = {0};
    int rc = sink_open(sl, &out, st, task->launch.partition, task->launch.attempt > 0, tmp_path,
                       sizeof tmp_path, err, errlen);
    if (rc != EMBER_OK) free(out.age);
    if (rc == EMBER_OK) {
        rc = em_pipeline_run_tapped(pl, task->launch.partition, stoppable_read, &stop, sink_record,
                                    &out, pt->taps, pt->n_taps, &stats, err, errlen);
        if (rc != EMBER_OK && out.err[0]) snprintf(err, errlen, "%s", out.err); /* the cause */
        char close_err[512] = "";
        int crc = sink_close(sl, &out, st->def, task->launch.partition, tmp_path, rc == EMBER_OK,
                             res, close_err, sizeof close_err);
        if (rc == EMBER_OK && crc != EMBER_OK) {
            rc = crc;
            snprintf(err, errlen, "%s", close_err);
        }
    }
    if (rc == EMBER_OK) em_persist_keep(sl->ex->blocks, pt, res);
    if (rc != EMBER_OK && ts.failed.failed) { /* the driver recomputes that map output */
        res->msg.fetch_failed = 1;
        res->msg.fetch_map_stage = ts.failed.map_stage;
        res->msg.fetch_map_partition = ts.failed.map_partition;
    }
    res->msg.records_in = stats.records_in;
    res->msg.records_out = stats.records_out;
    res->msg.state_keys = ts.keyed.keys;
    res->msg.state_bytes = ts.keyed.bytes;
    res->msg.state_expired = ts.keyed.expired;
    res->msg.bytes_in = stats.bytes_in;
    res->msg.bytes_out = stats.bytes_out;
    return rc;
}

/* keep_accumulators copies a successful task's accumulator additions into its result (a
 * failed one's are dropped: they never count) */
static int keep_accumulators(ex_result *res, char *err, size_t errlen)
{
    const em_accs *added = em_task_accs();
    if (added->n == 0) return EMBER_OK;
    for (size_t k = 0; k < added->n; k++) {
        const em_acc *a = &added->v[k];
        if (em_accs_add(&res->accs, a->name, a->is_f64, a->i64, a->f64, 1) != EMBER_OK) {
            snprintf(err, errlen, "out of memory keeping accumulators");
            return EMBER_ERR_NOMEM;
        }
    }
    res->acc_items = calloc(res->accs.n, sizeof *res->acc_items);
    res->msg.accumulators = calloc(res->accs.n, sizeof *res->msg.accumulators);
    if (!res->acc_items || !res->msg.accumulators) {
        snprintf(err, errlen, "out of memory keeping accumulators");
        return EMBER_ERR_NOMEM;
    }
    em_accs_to_pb(&res->accs, res->acc_items, res->msg.accumulators);
    res->msg.n_accumulators = res->accs.n;
    return EMBER_OK;
}

/* compute runs the task's partition through its stage; fills res (code, counts, data). */
static void compute(slot *sl, ex_task *task, ex_result *res)
{
    char err[1024] = "";
    ex_stage *st = stage_acquire(sl->ex, task->launch.stage_id);
    int rc = EMBER_ERR_PROTOCOL;
    const em_pipeline *pl = NULL;
    em_pipeline *own_pl = NULL;
    em_persist_task pt = {0};
    em_task_accs_begin();  /* what its user functions add to accumulators */
    em_input_wait_reset(); /* how long it waits for input */
    if (!st)
        snprintf(err, sizeof err, "stage %llu is not known to this executor",
                 (unsigned long long)task->launch.stage_id);
    else
        rc = stage_pipeline(sl->ex, st, task->launch.partition, &pl, &own_pl, &res->msg.fatal, err,
                            sizeof err);
    if (rc == EMBER_OK &&
        (rc = em_persist_begin(sl->ex->blocks, st->def, task->launch.partition, &pt)))
        snprintf(err, sizeof err, "out of memory preparing to keep persisted partitions");
    if (rc == EMBER_OK && pt.hit) { /* only the operations after the cached node run */
        em_pipeline_free(own_pl);
        own_pl = NULL;
        rc = em_pipeline_new_from(st->def->graph, st->def->final_node, task->launch.partition,
                                  pt.hit_node, st->lib, &own_pl, err, sizeof err);
        pl = own_pl;
        res->msg.fatal = (protobuf_c_boolean)unbuildable(rc);
        res->msg.from_cache = 1;
    }
    if (rc == EMBER_OK) rc = run_chain(sl, st, pl, task, &pt, res, err, sizeof err);
    em_persist_end(sl->ex->blocks, &pt);
    em_pipeline_free(own_pl);
    if (st) stage_release(sl->ex, st);
    if (rc == EMBER_OK) rc = keep_accumulators(res, err, sizeof err);
    res->msg.input_wait_us = em_input_wait_us();
    res->msg.code = rc;
    snprintf(res->message, sizeof res->message, "%s", rc == EMBER_OK ? "" : err);
}

static void run_task(slot *sl, ex_task *task)
{
    em_executor *ex = sl->ex;
    ex_result *res = ex_result_new(task);
    if (!res) return; /* unreported: the driver reschedules it if this executor is lost */
    const Ember__TaskLaunch *tl = &task->launch;
    int64_t start = em_now_us();
    int cell = em_monitor_task_begin(ex->monitor, tl->task_id); /* named if the process dies */
    sl->task_id = tl->task_id;
    atomic_store(&sl->state->task_id, tl->task_id);
    compute(sl, task, res);
    count_fetches(sl);
    atomic_store(&sl->state->task_id, 0);
    atomic_fetch_add(&ex->tasks_run, 1);
    em_monitor_task_end(ex->monitor, cell);
    res->msg.duration_us = em_now_us() - start;
    if (res->msg.code != EMBER_OK)
        em_warn("task failed task=%llu stage=%llu partition=%u attempt=%u error=%s message=\"%s\"",
                (unsigned long long)tl->task_id, (unsigned long long)tl->stage_id, tl->partition,
                tl->attempt + 1, ember_err_name(res->msg.code), res->message);
    ex_result_post(ex, res);
}

/* wait_for_task waits for a task (ex->lock held); a slot keeping Kafka partitions assigned
 * (or fetch buffers) wakes now and then to let idle ones go, so that nothing fetches for a
 * query that stopped and an idle executor gives its read buffers back. */
static void wait_for_task(slot *sl)
{
    em_executor *ex = sl->ex;
    if (!em_kafka_reader_holding(sl->reader)) {
        pthread_cond_wait(&ex->task_ready, &ex->lock);
        return;
    }
    struct timespec until = em_monotonic_after_us(EM_KAFKA_KEEP_IDLE_MS * 1000LL);
    if (pthread_cond_timedwait(&ex->task_ready, &ex->lock, &until) != ETIMEDOUT) return;
    pthread_mutex_unlock(&ex->lock);
    em_kafka_reader_let_go_idle(sl->reader, em_now_ms());
    pthread_mutex_lock(&ex->lock);
}

void *em_runner_slot(void *arg)
{
    slot sl = {.ex = arg};
    sl.state = &sl.ex->slot_states[atomic_fetch_add(&sl.ex->next_slot, 1)];
    sl.peers.secret = &sl.ex->cfg.secret;
    sl.peers.max_recv = sl.ex->cfg.max_message;
    sl.peers.tls = &sl.ex->cfg.tls;
    em_executor *ex = sl.ex;
    pthread_mutex_lock(&ex->lock);
    while (!ex->stop) {
        ex_task *task = ex->tasks_head;
        if (!task) {
            wait_for_task(&sl);
            continue;
        }
        ex->tasks_head = task->next;
        if (!ex->tasks_head) ex->tasks_tail = NULL;
        pthread_mutex_unlock(&ex->lock);
        run_task(&sl, task);
        free(task->data);
        free(task);
        pthread_mutex_lock(&ex->lock);
    }
    pthread_mutex_unlock(&ex->lock);
    em_peers_close(&sl.peers);
    em_kafka_reader_free(sl.reader);
    if (sl.producer) rd_kafka_destroy(sl.producer);
    em_task_accs_end();   /* the thread's accumulator table */
    em_wide_thread_end(); /* and reduce_by_key_fn's value */
    return NULL;
}
