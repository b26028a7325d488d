/* em_sched_reuse.c -- lineage fingerprints, and shuffle outputs kept for a session's later
 * actions: skipped stages.
 *
 * ember-submit runs each action of a job library as one job. When a job succeeds, the outputs
 * of the map stages it ran stay on the executors for as long as its session lives (at most
 * EM_KEPT_SHUFFLES per session, the oldest dropped first), filed under a fingerprint of the
 * stage: a hash of every node it depends on (kind, functions, arguments, resolved Kafka
 * ranges, parallelized bytes, the job library) and of the wide node it feeds. A later job of
 * the same session with a map stage of the same fingerprint reads the kept blocks instead of
 * running that stage and the stages only it needed, as Spark skips stages whose shuffle output
 * exists. Kept outputs are dropped when their session ends or an executor holding part of
 * them is lost.
 */
#include <ember/ember.h>
#include <stdlib.h>
#include <string.h>

#include "em_hash.h"
#include "em_log.h"
#include "em_sched_int.h"

void em_shuffle_drop(em_sched *s, em_stage_id map_stage)
{
    s->drops[s->drops_made++ % EM_DROPS_KEPT] = map_stage.v;
}

/* node_content appends what a node computes, without its place in the graph: the node packed
 * with id and parents cleared, and for a parallelize node the bytes it reads. */
static int node_content(em_buf *b, const Ember__Node *n, const em_buf *data)
{
    Ember__Node bare = *n;
    bare.id = 0;
    bare.n_parents = 0;
    bare.parents = NULL;
    size_t len = ember__node__get_packed_size(&bare);
    int rc = em_buf_reserve(b, len);
    if (rc != EMBER_OK) return rc;
    b->len += ember__node__pack(&bare, b->data + b->len);
    if (n->kind == EMBER__NODE_KIND__NODE_PARALLELIZE && n->n_data_offsets > 0) {
        uint64_t lo = n->data_offsets[0], hi = n->data_offsets[n->n_data_offsets - 1];
        uint64_t h = hi <= data->len && lo <= hi ? em_hash64(data->data + lo, hi - lo) : 0;
        rc = em_buf_append(b, &h, sizeof h);
    }
    return rc;
}

int em_fingerprint_nodes(const Ember__JobGraph *g, const em_buf *data, uint64_t *fp)
{
    em_buf b = {0};
    int rc = EMBER_OK;
    for (size_t i = 0; rc == EMBER_OK && i < g->n_nodes; i++) { /* parents come first */
        const Ember__Node *n = g->nodes[i];
        b.len = 0;
        rc = em_buf_append(&b, g->library_sha256.data, g->library_sha256.len);
        if (rc == EMBER_OK) rc = node_content(&b, n, data);
        for (size_t p = 0; rc == EMBER_OK && p < n->n_parents; p++)
            rc = em_buf_append(&b, &fp[n->parents[p]], sizeof fp[0]);
        if (rc == EMBER_OK) fp[i] = em_hash64(b.data, b.len);
    }
    em_buf_free(&b);
    return rc;
}

int em_reuse_fingerprints(em_job *job)
{
    const Ember__JobGraph *g = job->submit->graph;
    uint64_t *fp = job->node_fp = malloc(g->n_nodes * sizeof *fp);
    if (!fp) return EMBER_ERR_NOMEM;
    em_buf b = {0};
    int rc = em_fingerprint_nodes(g, &job->data, fp);
    for (size_t i = 0; rc == EMBER_OK && i < job->n_stages; i++) {
        em_stage *st = &job->stages[i];
        if (!st->shuffle_out) continue;
        b.len = 0; /* the stage's lineage, and how its output is split */
        rc = em_buf_append(&b, &fp[st->plan.node], sizeof fp[0]);
        if (rc == EMBER_OK) rc = node_content(&b, g->nodes[st->plan.shuffle_node], &job->data);
        if (rc == EMBER_OK) st->fingerprint = em_hash64(b.data, b.len);
    }
    em_buf_free(&b);
    return rc;
}

static em_kept_shuffle *find_kept(em_sched *s, em_session_id session, uint64_t fingerprint)
{
    for (size_t i = 0; i < s->n_kept; i++)
        if (s->kept[i].session.v == session.v && s->kept[i].fingerprint == fingerprint)
            return &s->kept[i];
    return NULL;
}

int em_session_owns_kept(const em_sched *s, em_session_id session)
{
    for (size_t i = 0; i < s->n_kept; i++)
        if (s->kept[i].session.v == session.v) return 1;
    return 0;
}

/* reuse marks map stage st as reading the kept output k */
static void reuse(em_stage *st, const em_kept_shuffle *k)
{
    memcpy(st->map_exec, k->map_exec, k->partitions * sizeof *k->map_exec);
    st->output_stage_id = k->stage_id;
    st->reused = 1;
    for (uint32_t p = 0; p < st->plan.partitions; p++) st->tasks[p].state = EM_TASK_DONE;
    st->n_done = st->plan.partitions;
}

int em_reuse_plan(em_sched *s, em_job *job)
{
    uint8_t *needed = calloc(job->n_stages, 1);
    if (!needed) return -1;
    int skipped = 0;
    needed[job->n_stages - 1] = 1;
    for (size_t i = job->n_stages; i-- > 0;) { /* children before parents */
        em_stage *st = &job->stages[i];
        em_kept_shuffle *k =
            needed[i] && st->shuffle_out ? find_kept(s, job->session, st->fingerprint) : NULL;
        if (k && k->partitions == st->plan.partitions) {
            reuse(st, k);
        } else if (needed[i]) {
            for (uint32_t p = 0; p < st->plan.n_parents; p++) needed[st->plan.parents[p]] = 1;
            continue;
        }
        st->state = EM_RUN_SKIPPED; /* reused, or needed by no stage that runs */
        st->q_len = 0;
        skipped += (int)st->plan.partitions;
    }
    free(needed);
    return skipped;
}

/* in_use: a running job reads the blocks of stage_id through a reused stage */
static int in_use(const em_sched *s, em_stage_id stage_id)
{
    for (const em_job *job = s->jobs; job; job = job->next)
        for (size_t i = 0; i < job->n_stages; i++)
            if (job->stages[i].reused && job->stages[i].output_stage_id.v == stage_id.v) return 1;
    return 0;
}

static int is_kept(const em_sched *s, em_stage_id stage_id)
{
    for (size_t i = 0; i < s->n_kept; i++)
        if (s->kept[i].stage_id.v == stage_id.v) return 1;
    return 0;
}

/* forget removes kept output i, dropping its blocks unless a running job reads them (that job
 * drops them when it ends). */
static void forget(em_sched *s, size_t i)
{
    if (!in_use(s, s->kept[i].stage_id)) em_shuffle_drop(s, s->kept[i].stage_id);
    free(s->kept[i].map_exec);
    s->kept[i] = s->kept[--s->n_kept];
    em_sched_changed(s);
}

/* oldest_kept: the index of the oldest output kept for session, and how many it has */
static size_t oldest_kept(const em_sched *s, em_session_id session, size_t *mine)
{
    size_t oldest = 0;
    *mine = 0;
    for (size_t i = 0; i < s->n_kept; i++)
        if (s->kept[i].session.v == session.v &&
            ((*mine)++ == 0 || s->kept[i].kept_seq < s->kept[oldest].kept_seq))
            oldest = i;
    return oldest;
}

static void keep(em_sched *s, em_session_id session, const em_stage *st)
{
    size_t mine, oldest = oldest_kept(s, session, &mine);
    em_kept_shuffle k = {session, st->fingerprint, st->id, st->plan.partitions,
                         NULL,    ++s->kept_seq};
    if (s->n_kept == s->cap_kept) {
        size_t cap = s->cap_kept ? 2 * s->cap_kept : 16;
        em_kept_shuffle *p = realloc(s->kept, cap * sizeof *p);
        if (p) {
            s->kept = p;
            s->cap_kept = cap;
        }
    }
    if (s->n_kept == s->cap_kept || find_kept(s, session, st->fingerprint) ||
        !(k.map_exec = malloc(st->plan.partitions * sizeof *k.map_exec))) {
        em_shuffle_drop(s, st->id); /* not kept: no memory, or an equal output is kept */
        return;
    }
    memcpy(k.map_exec, st->map_exec, st->plan.partitions * sizeof *k.map_exec);
    if (mine >= EM_KEPT_SHUFFLES) forget(s, oldest);
    s->kept[s->n_kept++] = k;
}

void em_reuse_stage_done(em_sched *s, const em_stage *st)
{
    const em_job *job = st->job;
    if (st->reused) { /* partitions recomputed here carry this stage's id */
        for (uint32_t p = 0; p < st->plan.partitions; p++)
            if (st->map_stage_of[p] == st->id.v) {
                em_shuffle_drop(s, st->id);
                break;
            }
        if (!is_kept(s, st->output_stage_id) && !in_use(s, st->output_stage_id))
            em_shuffle_drop(s, st->output_stage_id); /* forgotten while this job read it */
    } else if (job->code == EMBER_OK && st->state == EM_RUN_SUCCEEDED &&
               st->n_done == st->plan.partitions) { /* whole: not recomputing a lost part */
        keep(s, job->session, st);
    } else if (st->state != EM_RUN_SKIPPED) {
        em_shuffle_drop(s, st->id);
    }
}

void em_reuse_forget_session(em_sched *s, em_session_id session)
{
    for (size_t i = s->n_kept; i-- > 0;)
        if (s->kept[i].session.v == session.v) forget(s, i);
}

void em_reuse_forget_executor(em_sched *s, em_exec_id ex)
{
    for (size_t i = s->n_kept; i-- > 0;) {
        int held = 0;
        for (uint32_t p = 0; p < s->kept[i].partitions && !held; p++)
            held = s->kept[i].map_exec[p].v == ex.v;
        if (held) {
            em_info("kept shuffle output lost stage=%llu executor=%u",
                    (unsigned long long)s->kept[i].stage_id.v, ex.v);
            forget(s, i);
        }
    }
}

void em_reuse_free(em_sched *s)
{
    for (size_t i = 0; i < s->n_kept; i++) free(s->kept[i].map_exec);
    free(s->kept);
    s->kept = NULL;
    s->n_kept = s->cap_kept = 0;
}
