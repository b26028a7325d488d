/* em_dispatch.c -- the task scheduler: hands pending tasks to executors' waiting polls.
 *
 * An idle executor keeps one Poll parked at the driver; dispatch answers it with a batch of
 * tasks (at most EM_LAUNCH_MAX), preceded by the StageDef of every stage the executor has not
 * seen. An executor gets as many tasks as it has free slots, so long tasks spread over the
 * cluster; once a stage's tasks prove short (mean under SHORT_TASK_US), it may also queue
 * queue_depth tasks per slot, which amortizes the round trip over many tasks.
 * Tasks go out in job order, then stage order, then partition order (deterministic).
 */
#include <ember/ember.h>
#include <stdlib.h>

#include "em_driver.h"
#include "em_graph.h"
#include "em_log.h"

#define SHORT_TASK_US 2000

typedef struct launch {
    em_stage *st;
    uint32_t part;
} launch;

/* per-dispatch scratch, reused between calls */
static launch scratch[EM_LAUNCH_MAX];
static Ember__TaskLaunch launch_msgs[EM_LAUNCH_MAX];
static Ember__TaskLaunch *launch_ptrs[EM_LAUNCH_MAX];
static em_iov launch_data[EM_LAUNCH_MAX];

/* ring_since copies the entries of a ring (EM_DROPS_KEPT, `made` ever added) that an executor
 * has not been sent (*sent: what it had been sent), oldest first; returns how many. */
static size_t ring_since(const uint64_t *ring, uint64_t made, uint64_t *sent, uint64_t *out)
{
    size_t n = 0;
    if (made - *sent > EM_DROPS_KEPT) *sent = made - EM_DROPS_KEPT;
    for (uint64_t i = *sent; i < made; i++) out[n++] = ring[i % EM_DROPS_KEPT];
    *sent = made;
    return n;
}

/* reply_poll answers ex's parked poll, telling it which shuffle outputs and cached
 * partitions it may drop. */
static void reply_poll(em_driver *d, em_exec *ex, Ember__Tasks *msg, const em_iov *data,
                       size_t n_data)
{
    uint64_t drops[EM_DROPS_KEPT], cached[EM_DROPS_KEPT];
    msg->n_drop_shuffles = ring_since(d->drops, d->drops_made, &ex->drops_sent, drops);
    msg->drop_shuffles = drops;
    msg->n_drop_cached =
        ring_since(d->drop_cached, d->drop_cached_made, &ex->drop_cached_sent, cached);
    msg->drop_cached = cached;
    ex->has_poll = 0;
    if (em_server_reply(d->srv, &ex->poll, EM_MSG_TASKS, &msg->base, data, n_data) != EMBER_OK)
        em_exec_lost(d, ex, "cannot send tasks");
}

/* runnable: a stage with queued tasks whose inputs are all there (a parent that lost map
 * outputs holds its children back until they are computed again) */
static int runnable(const em_stage *st)
{
    return st->state == EM_RUN_RUNNING && st->q_len > 0 && em_stage_inputs_ready(st);
}

static em_stage *next_runnable_stage(em_driver *d)
{
    for (em_job *job = d->jobs; job; job = job->next)
        for (size_t i = 0; i < job->n_stages; i++)
            if (runnable(&job->stages[i])) return &job->stages[i];
    return NULL;
}

static int short_tasks(const em_stage *st)
{
    return st->n_done > 0 && st->task_us_total / st->n_done < SHORT_TASK_US;
}

/* known_key: a stage definition as executors hold it (a new version replaces the old) */
static uint64_t known_key(const em_stage *st) { return st->id << 8 | (st->def_version & 255u); }

static int knows_stage(const em_exec *ex, const em_stage *st)
{
    for (int i = 0; i < EM_KNOWN_STAGES; i++)
        if (ex->known_stages[i] == known_key(st)) return 1;
    return 0;
}

#define DEFS_MAX   8  /* stage definitions in one Tasks message */
#define CACHED_MAX 16 /* persisted nodes named in one stage definition */

/* waits_for_preferred: task part of st would rather run on another live executor (its
 * cached partition, or most of its shuffle input, is there), and has waited less than
 * locality_wait_ms (cached) or shuffle_locality_wait_ms (shuffle input) for it */
static int waits_for_preferred(em_driver *d, em_stage *st, uint32_t part, const em_exec *ex,
                               int64_t now)
{
    uint32_t wait_ms = st->cache_fp ? d->cfg.locality_wait_ms : d->cfg.shuffle_locality_wait_ms;
    if (now - st->tasks[part].queued_us >= (int64_t)wait_ms * 1000) return 0;
    uint32_t preferred = em_preferred_executor(d, st, part);
    return preferred && preferred != ex->id;
}

/* picker: which queued tasks of a stage an executor may take now */
typedef struct picker {
    em_driver *d;
    em_exec *ex;
    int64_t now;
    int others;         /* another live executor could take the tasks ex should avoid */
    int preferred_only; /* only tasks that would rather run on ex */
} picker;

static int may_take(const picker *pk, em_stage *st, uint32_t part)
{
    if (pk->preferred_only) return em_preferred_executor(pk->d, st, part) == pk->ex->id;
    return !(pk->others && st->tasks[part].avoid_executor == pk->ex->id) &&
           !waits_for_preferred(pk->d, st, part, pk->ex, pk->now);
}

/* take_from launches up to max - *n queued tasks of st that pk allows on ex; the others keep
 * their order at the back of the queue. Returns how many it took. */
static uint32_t take_from(const picker *pk, em_stage *st, uint32_t max, launch *out, uint32_t *n)
{
    uint32_t taken = 0;
    for (uint32_t seen = 0, queued = st->q_len; *n < max && seen < queued; seen++) {
        uint32_t part = st->queue[st->q_head];
        st->q_head = (st->q_head + 1) % st->plan.partitions;
        st->q_len--;
        if (!may_take(pk, st, part)) { /* back of the queue */
            st->queue[(st->q_head + st->q_len++) % st->plan.partitions] = part;
            continue;
        }
        em_task *task = &st->tasks[part];
        task->state = EM_TASK_RUNNING;
        task->executor = pk->ex->id;
        task->launched_us = pk->now;
        task->preferred = (uint8_t)pk->preferred_only;
        st->n_running++;
        st->n_launched++;
        out[(*n)++] = (launch){st, part};
        taken++;
    }
    return taken;
}

/* take pops up to `max` pending tasks for ex into out[], from at most DEFS_MAX stages;
 * returns how many. In each stage, the tasks that would rather run on ex go first; a task
 * whose last attempt failed on ex is left for another executor, and one that would rather
 * run on another executor waits for it (up to --locality-wait-ms). */
static uint32_t take(em_driver *d, em_exec *ex, uint32_t max, launch *out)
{
    uint32_t n = 0, stages = 0;
    picker pk = {d, ex, em_now_us(), 0, 0};
    for (size_t i = 0; i < d->n_execs && !pk.others; i++)
        pk.others = &d->execs[i] != ex && d->execs[i].state == EM_EXEC_ALIVE;
    for (em_job *job = d->jobs; job && n < max && stages < DEFS_MAX; job = job->next)
        for (size_t i = 0; i < job->n_stages && n < max && stages < DEFS_MAX; i++) {
            em_stage *st = &job->stages[i];
            if (!runnable(st)) continue;
            uint32_t taken = 0;
            if (em_stage_has_preferences(d, st)) {
                pk.preferred_only = 1;
                taken = take_from(&pk, st, max, out, &n);
                pk.preferred_only = 0;
            }
            taken += take_from(&pk, st, max, out, &n);
            stages += taken > 0;
        }
    ex->assigned += n;
    d->totals.tasks_launched += n;
    return n;
}

/* stage_defs: StageDefs of one Tasks message and what they point to */
typedef struct stage_defs {
    Ember__StageDef defs[DEFS_MAX], *ptrs[DEFS_MAX];
    Ember__ShuffleInput inputs[DEFS_MAX][EM_DAG_MAX_PARENTS],
        *input_ptrs[DEFS_MAX][EM_DAG_MAX_PARENTS];
    char **addresses[DEFS_MAX][EM_DAG_MAX_PARENTS]; /* malloc'd; pointers into executors */
    Ember__CachedNode cached[DEFS_MAX][CACHED_MAX], *cached_ptrs[DEFS_MAX][CACHED_MAX];
    size_t n;
} stage_defs;

/* collect_cached lists the persisted nodes at and above node within its stage. */
static void collect_cached(const em_job *job, uint32_t node, uint8_t *seen, Ember__CachedNode *out,
                           Ember__CachedNode **ptrs, size_t *n)
{
    const Ember__JobGraph *g = job->submit->graph;
    const Ember__Node *nd = g->nodes[node];
    if (seen[node]) return;
    seen[node] = 1;
    if (nd->storage != EMBER__STORAGE_LEVEL__STORAGE_NONE && *n < CACHED_MAX) {
        ember__cached_node__init(&out[*n]);
        out[*n].node = node;
        out[*n].fingerprint = job->node_fp[node];
        ptrs[*n] = &out[*n];
        (*n)++;
    }
    if (em_node_is_source(nd->kind) || em_node_is_wide(nd->kind)) return;
    for (size_t p = 0; p < nd->n_parents; p++)
        collect_cached(job, nd->parents[p], seen, out, ptrs, n);
}

/* cached_nodes fills the persisted nodes of stage st; returns how many. */
static size_t cached_nodes(const em_stage *st, Ember__CachedNode *out, Ember__CachedNode **ptrs)
{
    size_t n = 0, n_nodes = st->job->submit->graph->n_nodes;
    uint8_t *seen = calloc(n_nodes, 1);
    if (seen) collect_cached(st->job, st->plan.node, seen, out, ptrs, &n);
    free(seen);
    return n;
}

/* add_def describes stage st: its graph, final node, shuffle output, and for a reduce stage
 * where each map output of its parents is held. */
static void add_def(em_driver *d, stage_defs *sd, em_stage *st)
{
    size_t k = sd->n++;
    Ember__StageDef *def = &sd->defs[k];
    ember__stage_def__init(def);
    def->stage_id = st->id;
    def->job_id = st->job->id;
    def->graph = st->job->submit->graph;
    def->final_node = st->plan.node;
    def->shuffle_out = st->shuffle_out;
    def->shuffle_node = st->shuffle_node;
    for (uint32_t p = 0; p < st->plan.n_parents; p++) {
        const em_stage *map = &st->job->stages[st->plan.parents[p]];
        Ember__ShuffleInput *in = &sd->inputs[k][p];
        ember__shuffle_input__init(in);
        in->map_stage_id = map->output_stage_id;
        for (uint32_t m = 0; m < map->plan.partitions; m++)
            if (map->map_stage_of[m] != map->output_stage_id) { /* some were recomputed */
                in->n_map_stage_ids = map->plan.partitions;
                in->map_stage_ids = map->map_stage_of;
                break;
            }
        in->wide_node = st->plan.parent_wide[p];
        in->side = st->plan.parent_side[p];
        char **addrs = sd->addresses[k][p] = calloc(map->plan.partitions, sizeof *addrs);
        for (uint32_t m = 0; addrs && m < map->plan.partitions; m++) {
            em_exec *holder = em_exec_get(d, map->map_exec[m]);
            addrs[m] = holder ? holder->address : "";
        }
        in->n_map_addresses = addrs ? map->plan.partitions : 0;
        in->map_addresses = addrs;
        sd->input_ptrs[k][p] = in;
    }
    def->n_cached = cached_nodes(st, sd->cached[k], sd->cached_ptrs[k]);
    def->cached = sd->cached_ptrs[k];
    def->n_shuffle_inputs = st->plan.n_parents;
    def->shuffle_inputs = sd->input_ptrs[k];
    sd->ptrs[k] = def;
}

static void free_defs(stage_defs *sd)
{
    for (size_t k = 0; k < sd->n; k++)
        for (size_t p = 0; p < sd->defs[k].n_shuffle_inputs; p++) free(sd->addresses[k][p]);
}

/* send_tasks answers ex's parked poll with n launches. */
static void send_tasks(em_driver *d, em_exec *ex, const launch *ls, uint32_t n)
{
    stage_defs sd;
    sd.n = 0;
    size_t n_data = 0;
    uint64_t data_off = 0;
    for (uint32_t i = 0; i < n; i++) {
        em_stage *st = ls[i].st;
        if (!knows_stage(ex, st)) {
            add_def(d, &sd, st);
            ex->known_stages[ex->known_next++ % EM_KNOWN_STAGES] = known_key(st);
        }
        Ember__TaskLaunch *tl = &launch_msgs[i];
        ember__task_launch__init(tl);
        tl->task_id = EM_TASK_ID(st->id, st->tasks[ls[i].part].attempt, ls[i].part);
        tl->stage_id = st->id;
        tl->partition = ls[i].part;
        tl->attempt = st->tasks[ls[i].part].attempt;
        const Ember__JobGraph *g = st->job->submit->graph;
        uint32_t leaf_part;
        const Ember__Node *src = g->nodes[em_graph_leaf(g, st->plan.node, ls[i].part, &leaf_part)];
        if (src->kind == EMBER__NODE_KIND__NODE_PARALLELIZE) {
            uint64_t lo = src->data_offsets[leaf_part], hi = src->data_offsets[leaf_part + 1];
            tl->data_offset = data_off;
            tl->data_len = hi - lo;
            launch_data[n_data++] = (em_iov){st->job->data.data + lo, (size_t)(hi - lo)};
            data_off += hi - lo;
        }
        launch_ptrs[i] = tl;
    }
    Ember__Tasks msg = EMBER__TASKS__INIT;
    msg.n_stages = sd.n;
    msg.stages = sd.ptrs;
    msg.n_tasks = n;
    msg.tasks = launch_ptrs;
    reply_poll(d, ex, &msg, launch_data, n_data);
    free_defs(&sd);
}

void em_dispatch(em_driver *d)
{
    em_stage *st;
    for (size_t i = 0; i < d->n_execs && (st = next_runnable_stage(d)); i++) {
        em_exec *ex = &d->execs[i];
        if (ex->state != EM_EXEC_ALIVE || !ex->has_poll) continue;
        uint32_t limit = ex->slots * (short_tasks(st) ? 1 + d->cfg.queue_depth : 1);
        if (ex->assigned >= limit) continue;
        uint32_t want = limit - ex->assigned;
        uint32_t n = take(d, ex, want < EM_LAUNCH_MAX ? want : EM_LAUNCH_MAX, scratch);
        if (n == 0) continue; /* all left for other executors: keep the poll parked */
        send_tasks(d, ex, scratch, n);
        d->dirty = 1;
    }
}

void em_dispatch_answer_poll(em_driver *d, em_exec *ex, em_request *req)
{
    if (ex->has_poll) { /* a newer poll replaces the parked one */
        Ember__Tasks none = EMBER__TASKS__INIT;
        reply_poll(d, ex, &none, NULL, 0);
    }
    ex->poll = *req;
    ex->has_poll = 1;
    ex->poll_since_us = em_now_us();
    em_dispatch(d);
}

void em_dispatch_expire_polls(em_driver *d, int64_t now)
{
    int64_t period = (int64_t)d->cfg.heartbeat_ms * 1000;
    for (size_t i = 0; i < d->n_execs; i++) {
        em_exec *ex = &d->execs[i];
        if (ex->state == EM_EXEC_ALIVE && ex->has_poll && now - ex->poll_since_us >= period) {
            Ember__Tasks none = EMBER__TASKS__INIT;
            reply_poll(d, ex, &none, NULL, 0);
        }
    }
}
