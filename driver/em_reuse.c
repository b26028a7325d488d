/* em_reuse.c -- kept shuffle outputs and skipped stages (see em_reuse.h). */
#include "em_reuse.h"

#include <ember/ember.h>
#include <stdlib.h>
#include <string.h>

#include "em_buf.h"
#include "em_hash.h"
#include "em_log.h"

void em_shuffle_drop(em_driver *d, uint64_t map_stage_id)
{
    d->drops[d->drops_made++ % EM_DROPS_KEPT] = map_stage_id;
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
    for (size_t s = 0; rc == EMBER_OK && s < job->n_stages; s++) {
        em_stage *st = &job->stages[s];
        if (!st->shuffle_out) continue;
        b.len = 0; /* the stage's lineage, and how its output is split */
        rc = em_buf_append(&b, &fp[st->plan.node], sizeof fp[0]);
        if (rc == EMBER_OK) rc = node_content(&b, g->nodes[st->shuffle_node], &job->data);
        if (rc == EMBER_OK) st->fingerprint = em_hash64(b.data, b.len);
    }
    em_buf_free(&b);
    return rc;
}

static em_kept_shuffle *find_kept(em_driver *d, uint32_t pipe, uint64_t fingerprint)
{
    for (size_t i = 0; i < d->n_kept; i++)
        if (d->kept[i].pipe == pipe && d->kept[i].fingerprint == fingerprint) return &d->kept[i];
    return NULL;
}

int em_reuse_plan(em_driver *d, em_job *job, uint32_t pipe)
{
    uint8_t *needed = calloc(job->n_stages, 1);
    if (!needed) return EMBER_ERR_NOMEM;
    int skipped = 0;
    needed[job->n_stages - 1] = 1;
    for (size_t i = job->n_stages; i-- > 0;) { /* children before parents */
        em_stage *st = &job->stages[i];
        em_kept_shuffle *k =
            needed[i] && st->shuffle_out ? find_kept(d, pipe, st->fingerprint) : NULL;
        if (k && k->partitions == st->plan.partitions) {
            memcpy(st->map_exec, k->map_exec, k->partitions * sizeof *k->map_exec);
            st->output_stage_id = k->stage_id;
            st->reused = 1;
            for (uint32_t p = 0; p < st->plan.partitions; p++) st->tasks[p].state = EM_TASK_DONE;
            st->n_done = st->plan.partitions;
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
static int in_use(const em_driver *d, uint64_t stage_id)
{
    for (const em_job *job = d->jobs; job; job = job->next)
        for (size_t i = 0; i < job->n_stages; i++)
            if (job->stages[i].reused && job->stages[i].output_stage_id == stage_id) return 1;
    return 0;
}

static int is_kept(const em_driver *d, uint64_t stage_id)
{
    for (size_t i = 0; i < d->n_kept; i++)
        if (d->kept[i].stage_id == stage_id) return 1;
    return 0;
}

/* forget removes kept output i, dropping its blocks unless a running job reads them (that job
 * drops them when it ends). */
static void forget(em_driver *d, size_t i)
{
    if (!in_use(d, d->kept[i].stage_id)) em_shuffle_drop(d, d->kept[i].stage_id);
    free(d->kept[i].map_exec);
    d->kept[i] = d->kept[--d->n_kept];
}

static void keep(em_driver *d, uint32_t pipe, const em_stage *st)
{
    size_t mine = 0, oldest = 0;
    for (size_t i = 0; i < d->n_kept; i++)
        if (d->kept[i].pipe == pipe &&
            (mine++ == 0 || d->kept[i].kept_seq < d->kept[oldest].kept_seq))
            oldest = i;
    em_kept_shuffle k = {pipe, st->fingerprint, st->id, st->plan.partitions, NULL, ++d->kept_seq};
    if (d->n_kept == d->cap_kept) {
        size_t cap = d->cap_kept ? 2 * d->cap_kept : 16;
        em_kept_shuffle *p = realloc(d->kept, cap * sizeof *p);
        if (p) {
            d->kept = p;
            d->cap_kept = cap;
        }
    }
    if (d->n_kept == d->cap_kept || find_kept(d, pipe, st->fingerprint) ||
        !(k.map_exec = malloc(st->plan.partitions * sizeof *k.map_exec))) {
        em_shuffle_drop(d, st->id); /* not kept: no memory, or an equal output is kept */
        return;
    }
    memcpy(k.map_exec, st->map_exec, st->plan.partitions * sizeof *k.map_exec);
    if (mine >= EM_KEPT_SHUFFLES) forget(d, oldest);
    d->kept[d->n_kept++] = k;
}

void em_reuse_stage_done(em_driver *d, const em_stage *st)
{
    const em_job *job = st->job;
    if (st->reused) { /* partitions recomputed here carry this stage's id */
        for (uint32_t p = 0; p < st->plan.partitions; p++)
            if (st->map_stage_of[p] == st->id) {
                em_shuffle_drop(d, st->id);
                break;
            }
        if (!is_kept(d, st->output_stage_id) && !in_use(d, st->output_stage_id))
            em_shuffle_drop(d, st->output_stage_id); /* forgotten while this job read it */
    } else if (job->code == EMBER_OK && st->state == EM_RUN_SUCCEEDED) {
        keep(d, job->reply.pipe, st);
    } else if (st->state != EM_RUN_SKIPPED) {
        em_shuffle_drop(d, st->id);
    }
}

void em_reuse_forget_pipe(em_driver *d, uint32_t pipe)
{
    for (size_t i = d->n_kept; i-- > 0;)
        if (d->kept[i].pipe == pipe) forget(d, i);
}

void em_reuse_forget_executor(em_driver *d, uint32_t ex_id)
{
    for (size_t i = d->n_kept; i-- > 0;) {
        int held = 0;
        for (uint32_t p = 0; p < d->kept[i].partitions && !held; p++)
            held = d->kept[i].map_exec[p] == ex_id;
        if (held) {
            em_info("kept shuffle output lost stage=%llu executor=%u",
                    (unsigned long long)d->kept[i].stage_id, ex_id);
            forget(d, i);
        }
    }
}

void em_reuse_free(em_driver *d)
{
    for (size_t i = 0; i < d->n_kept; i++) free(d->kept[i].map_exec);
    free(d->kept);
    d->kept = NULL;
    d->n_kept = d->cap_kept = 0;
}
