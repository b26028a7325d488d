/* em_sched_cache.c -- the registry of cached partitions (ember_persist).
 *
 * A persisted node's partitions are stored by the executors that compute them, as blocks
 * named by em_blockid_cached (fingerprint: em_fingerprint_nodes, the same for the same
 * dataset in every action of a session). Executors report what they stored (TaskResult.
 * cached) and what they evicted (Report.evicted); the registry keeps, per session and
 * dataset, which executor holds each partition, so that tasks go where their partition is
 * (locality) and the status view can show it. Cached partitions are dropped when their
 * session ends or unpersists them, and forgotten when their holder is lost.
 */
#include <ember/ember.h>
#include <stdlib.h>
#include <string.h>

#include "em_graph.h"
#include "em_sched_int.h"

static em_cached_set *find_set(const em_sched *s, em_session_id session, uint64_t fingerprint)
{
    for (size_t i = 0; i < s->n_cached; i++)
        if (s->cached[i].session.v == session.v && s->cached[i].fingerprint == fingerprint)
            return &s->cached[i];
    return NULL;
}

int em_cache_known(const em_sched *s, em_session_id session, uint64_t fingerprint)
{
    return find_set(s, session, fingerprint) != NULL;
}

int em_session_owns_cached(const em_sched *s, em_session_id session)
{
    for (size_t i = 0; i < s->n_cached; i++)
        if (s->cached[i].session.v == session.v) return 1;
    return 0;
}

static void set_free(em_cached_set *set)
{
    free(set->holder);
    free(set->bytes);
    free(set->lost);
}

/* set_for finds or makes the set of a persisted node of job. */
static em_cached_set *set_for(em_sched *s, const em_job *job, uint64_t fingerprint)
{
    em_cached_set *set = find_set(s, job->session, fingerprint);
    if (set) return set;
    const Ember__JobGraph *g = job->submit->graph;
    uint32_t node = 0;
    while (node < g->n_nodes && job->node_fp[node] != fingerprint) node++;
    if (node == g->n_nodes || g->nodes[node]->storage == EMBER__STORAGE_LEVEL__STORAGE_NONE)
        return NULL; /* not a persisted node of this job: ignore */
    if (s->n_cached == s->cap_cached) {
        size_t cap = s->cap_cached ? 2 * s->cap_cached : 8;
        em_cached_set *p = realloc(s->cached, cap * sizeof *p);
        if (!p) return NULL;
        s->cached = p;
        s->cap_cached = cap;
    }
    uint32_t parts = em_node_partitions(g, node);
    em_cached_set fresh = {.session = job->session,
                           .fingerprint = fingerprint,
                           .partitions = parts,
                           .holder = calloc(parts, sizeof *fresh.holder),
                           .bytes = calloc(parts, sizeof *fresh.bytes),
                           .lost = calloc(parts, 1),
                           .storage = (int)g->nodes[node]->storage,
                           .kind = em_node_kind_name(g->nodes[node]->kind)};
    if (!fresh.holder || !fresh.bytes || !fresh.lost) {
        set_free(&fresh);
        return NULL;
    }
    s->cached[s->n_cached] = fresh;
    return &s->cached[s->n_cached++];
}

void em_cache_stored(em_sched *s, const em_job *job, em_exec_id ex, uint64_t fingerprint,
                     uint32_t part, uint64_t bytes)
{
    em_cached_set *set = set_for(s, job, fingerprint);
    if (!set || part >= set->partitions) return;
    set->holder[part] = ex;
    set->bytes[part] = bytes;
    set->lost[part] = 0;
    em_sched_changed(s);
}

int em_cache_lost_reason(em_sched *s, const em_job *job, uint64_t fingerprint, uint32_t part)
{
    em_cached_set *set = find_set(s, job->session, fingerprint);
    return set && part < set->partitions && set->lost[part] ? set->lost[part] - 1 : -1;
}

void em_cache_hit(em_sched *s, const em_job *job, uint64_t fingerprint)
{
    em_cached_set *set = find_set(s, job->session, fingerprint);
    if (set) set->hits++;
}

/* lose_partition: partition p of set is no longer cached, for reason why */
static void lose_partition(em_cached_set *set, uint32_t p, em_recompute_reason why)
{
    set->holder[p] = EM_NO_EXEC;
    set->bytes[p] = 0;
    set->lost[p] = (uint8_t)(1 + why);
}

void em_cache_evicted(em_sched *s, em_exec_id ex, uint64_t fingerprint, uint32_t part)
{
    for (size_t i = 0; i < s->n_cached; i++) {
        em_cached_set *set = &s->cached[i];
        if (set->fingerprint == fingerprint && part < set->partitions &&
            set->holder[part].v == ex.v) {
            lose_partition(set, part, EM_RECOMPUTE_EVICTION);
            set->evictions++;
            s->totals.cache_evictions++;
            em_sched_changed(s);
        }
    }
}

em_exec_id em_cache_holder(const em_sched *s, em_session_id session, uint64_t fingerprint,
                           uint32_t part)
{
    const em_cached_set *set = find_set(s, session, fingerprint);
    if (!set || part >= set->partitions) return EM_NO_EXEC;
    em_exec *ex = em_sched_exec(s, set->holder[part]);
    return em_exec_alive(ex) ? ex->id : EM_NO_EXEC;
}

void em_cache_forget_executor(em_sched *s, em_exec_id ex)
{
    for (size_t i = 0; i < s->n_cached; i++)
        for (uint32_t p = 0; p < s->cached[i].partitions; p++)
            if (s->cached[i].holder[p].v == ex.v)
                lose_partition(&s->cached[i], p, EM_RECOMPUTE_EXECUTOR_LOST);
}

void em_cache_drop(em_sched *s, em_session_id session, uint64_t fingerprint)
{
    for (size_t i = s->n_cached; i-- > 0;) {
        em_cached_set *set = &s->cached[i];
        if (set->session.v != session.v || (fingerprint && set->fingerprint != fingerprint))
            continue;
        s->drop_cached[s->drop_cached_made++ % EM_DROPS_KEPT] = set->fingerprint;
        set_free(set);
        *set = s->cached[--s->n_cached];
        em_sched_changed(s);
    }
}

void em_cache_free(em_sched *s)
{
    for (size_t i = 0; i < s->n_cached; i++) set_free(&s->cached[i]);
    free(s->cached);
    s->cached = NULL;
    s->n_cached = s->cap_cached = 0;
}
