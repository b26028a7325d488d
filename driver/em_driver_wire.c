/* em_driver_wire.c -- the messages the driver sends, built from the scheduler's state: the
 * Tasks that answer an executor's poll, and a job's result.
 *
 * A Tasks message carries the StageDef of every stage the executor does not hold yet (the
 * graph, its final node, where each map output it reads is held) and the task launches, with
 * parallelized input as slices of the frame's data part. Driver loop only: the scratch below
 * is reused between calls.
 */
#include <ember/ember.h>
#include <stdlib.h>

#include "em_driver.h"
#include "em_graph.h"

#define CACHED_MAX 16 /* persisted nodes named in one stage definition */

static Ember__TaskLaunch launch_msgs[EM_LAUNCH_MAX];
static Ember__TaskLaunch *launch_ptrs[EM_LAUNCH_MAX];
static em_iov launch_data[EM_LAUNCH_MAX];

/* stage_defs: StageDefs of one Tasks message and what they point to */
typedef struct stage_defs {
    Ember__StageDef defs[EM_DEFS_MAX], *ptrs[EM_DEFS_MAX];
    Ember__ShuffleInput inputs[EM_DEFS_MAX][EM_DAG_MAX_PARENTS],
        *input_ptrs[EM_DEFS_MAX][EM_DAG_MAX_PARENTS];
    char **addresses[EM_DEFS_MAX][EM_DAG_MAX_PARENTS]; /* malloc'd; pointers into executors */
    Ember__CachedNode cached[EM_DEFS_MAX][CACHED_MAX], *cached_ptrs[EM_DEFS_MAX][CACHED_MAX];
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

/* shuffle_input describes where the outputs of map stage `map` are held, for the reduce
 * stage's wide node reading it on `side`. */
static void shuffle_input(const em_sched *s, stage_defs *sd, size_t k, uint32_t p,
                          const em_stage *st)
{
    const em_stage *map = &st->job->stages[st->plan.parents[p]];
    Ember__ShuffleInput *in = &sd->inputs[k][p];
    ember__shuffle_input__init(in);
    in->map_stage_id = map->output_stage_id.v;
    for (uint32_t m = 0; m < map->plan.partitions; m++)
        if (map->map_stage_of[m] != map->output_stage_id.v) { /* some were recomputed */
            in->n_map_stage_ids = map->plan.partitions;
            in->map_stage_ids = map->map_stage_of;
            break;
        }
    in->wide_node = st->plan.parent_wide[p];
    in->side = st->plan.parent_side[p];
    char **addrs = sd->addresses[k][p] = calloc(map->plan.partitions, sizeof *addrs);
    for (uint32_t m = 0; addrs && m < map->plan.partitions; m++) {
        em_exec *holder = em_sched_exec(s, map->map_exec[m]);
        addrs[m] = holder ? holder->address : "";
    }
    in->n_map_addresses = addrs ? map->plan.partitions : 0;
    in->map_addresses = addrs;
    sd->input_ptrs[k][p] = in;
}

/* add_def describes stage st: its graph, final node, shuffle output, and for a reduce stage
 * where each map output of its parents is held. */
static void add_def(const em_sched *s, stage_defs *sd, const em_stage *st)
{
    size_t k = sd->n++;
    Ember__StageDef *def = &sd->defs[k];
    ember__stage_def__init(def);
    def->stage_id = st->id.v;
    def->job_id = st->job->id.v;
    def->graph = st->job->submit->graph;
    def->final_node = st->plan.node;
    def->shuffle_out = st->shuffle_out;
    def->shuffle_node = st->plan.shuffle_node;
    for (uint32_t p = 0; p < st->plan.n_parents; p++) shuffle_input(s, sd, k, p, st);
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

/* fill_launch describes launch l as message i; parallelized input goes to the data part */
static void fill_launch(size_t i, const em_launch *l, size_t *n_data, uint64_t *data_off)
{
    const em_stage *st = l->st;
    Ember__TaskLaunch *tl = &launch_msgs[i];
    ember__task_launch__init(tl);
    uint32_t attempt = st->tasks[l->part].attempt;
    tl->task_id = em_task_id_of(st->id, attempt, l->part).v;
    tl->stage_id = st->id.v;
    tl->partition = l->part;
    tl->attempt = attempt;
    const Ember__JobGraph *g = st->job->submit->graph;
    uint32_t leaf_part;
    const Ember__Node *src = g->nodes[em_graph_leaf(g, st->plan.node, l->part, &leaf_part)];
    if (src->kind == EMBER__NODE_KIND__NODE_PARALLELIZE) {
        uint64_t lo = src->data_offsets[leaf_part], hi = src->data_offsets[leaf_part + 1];
        tl->data_offset = *data_off;
        tl->data_len = hi - lo;
        launch_data[(*n_data)++] = (em_iov){st->job->data.data + lo, (size_t)(hi - lo)};
        *data_off += hi - lo;
    }
    launch_ptrs[i] = tl;
}

int em_wire_send_tasks(em_driver *d, em_request *poll, const em_effect *e)
{
    stage_defs sd;
    sd.n = 0;
    for (size_t i = 0; i < e->n_defs; i++) add_def(&d->sched, &sd, e->defs[i]);
    size_t n_data = 0;
    uint64_t data_off = 0;
    for (size_t i = 0; i < e->n_launches; i++) fill_launch(i, &e->launches[i], &n_data, &data_off);
    Ember__Tasks msg = EMBER__TASKS__INIT;
    msg.n_stages = sd.n;
    msg.stages = sd.ptrs;
    msg.n_tasks = e->n_launches;
    msg.tasks = launch_ptrs;
    msg.n_drop_shuffles = e->n_drop_shuffles;
    msg.drop_shuffles = (uint64_t *)e->drop_shuffles;
    msg.n_drop_cached = e->n_drop_cached;
    msg.drop_cached = (uint64_t *)e->drop_cached;
    msg.n_cancel_tasks = e->n_cancel_tasks;
    msg.cancel_tasks = (uint64_t *)e->cancel_tasks;
    int rc = em_server_reply(d->srv, poll, EM_MSG_TASKS, &msg.base, launch_data, n_data);
    free_defs(&sd);
    return rc;
}

int em_wire_send_result(em_driver *d, em_request *reply, const em_job *job)
{
    Ember__JobResult r = EMBER__JOB_RESULT__INIT;
    r.job_id = job->id.v;
    r.code = job->code;
    r.message = (char *)job->error;
    r.records_in = job->records_in;
    r.records_out = job->records_out;
    r.tasks = job->tasks_total;
    r.stages = (uint32_t)job->n_stages;
    r.duration_us = job->finished_us - job->submitted_us;
    Ember__Accumulator *acc_items = calloc(job->accs.n + 1, sizeof *acc_items);
    Ember__Accumulator **accs = calloc(job->accs.n + 1, sizeof *accs);
    if (acc_items && accs) {
        em_accs_to_pb(&job->accs, acc_items, accs);
        r.accumulators = accs;
        r.n_accumulators = job->accs.n;
    }
    size_t n_iov =
        job->code == EMBER_OK && job->results ? em_sched_last_stage(job)->plan.partitions : 0;
    em_iov *iov = n_iov ? malloc(n_iov * sizeof *iov) : NULL;
    if (n_iov && !iov) {
        r.code = EMBER_ERR_NOMEM;
        r.message = "driver out of memory sending the result";
        n_iov = 0;
    }
    for (size_t i = 0; i < n_iov; i++) iov[i] = (em_iov){job->results[i].data, job->results[i].len};
    int rc = em_server_reply(d->srv, reply, EM_MSG_JOB_RESULT, &r.base, iov, n_iov);
    free(iov);
    free(accs);
    free(acc_items);
    return rc;
}
