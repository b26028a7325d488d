/* em_cache.c -- the registry of cached partitions (see em_cache.h). */
#include "em_cache.h"

#include <ember/ember.h>
#include <stdlib.h>
#include <string.h>

#include "em_graph.h"
#include "em_log.h"
#include "em_reuse.h"

static em_cached_set *find_set(em_driver *d, uint32_t pipe, uint64_t fingerprint)
{
    for (size_t i = 0; i < d->n_cached; i++)
        if (d->cached[i].pipe == pipe && d->cached[i].fingerprint == fingerprint)
            return &d->cached[i];
    return NULL;
}

/* set_for finds or makes the set of a persisted node of job. */
static em_cached_set *set_for(em_driver *d, const em_job *job, uint64_t fingerprint)
{
    em_cached_set *set = find_set(d, job->reply.pipe, fingerprint);
    if (set) return set;
    const Ember__JobGraph *g = job->submit->graph;
    uint32_t node = 0;
    while (node < g->n_nodes && job->node_fp[node] != fingerprint) node++;
    if (node == g->n_nodes || g->nodes[node]->storage == EMBER__STORAGE_LEVEL__STORAGE_NONE)
        return NULL; /* not a persisted node of this job: ignore */
    if (d->n_cached == d->cap_cached) {
        size_t cap = d->cap_cached ? 2 * d->cap_cached : 8;
        em_cached_set *p = realloc(d->cached, cap * sizeof *p);
        if (!p) return NULL;
        d->cached = p;
        d->cap_cached = cap;
    }
    uint32_t parts = em_node_partitions(g, node);
    em_cached_set s = {.pipe = job->reply.pipe,
                       .fingerprint = fingerprint,
                       .partitions = parts,
                       .holder = calloc(parts, sizeof *s.holder),
                       .bytes = calloc(parts, sizeof *s.bytes),
                       .lost = calloc(parts, 1),
                       .storage = (int)g->nodes[node]->storage,
                       .kind = em_node_kind_name(g->nodes[node]->kind)};
    if (!s.holder || !s.bytes || !s.lost) {
        free(s.holder);
        free(s.bytes);
        free(s.lost);
        return NULL;
    }
    d->cached[d->n_cached] = s;
    return &d->cached[d->n_cached++];
}

void em_cache_stored(em_driver *d, const em_job *job, uint32_t ex_id, uint64_t fingerprint,
                     uint32_t part, uint64_t bytes)
{
    em_cached_set *set = set_for(d, job, fingerprint);
    if (!set || part >= set->partitions) return;
    set->holder[part] = ex_id;
    set->bytes[part] = bytes;
    set->lost[part] = 0;
    d->dirty = 1;
}

int em_cache_lost_reason(em_driver *d, const em_job *job, uint64_t fingerprint, uint32_t part)
{
    em_cached_set *set = find_set(d, job->reply.pipe, fingerprint);
    return set && part < set->partitions && set->lost[part] ? set->lost[part] - 1 : -1;
}

void em_cache_hit(em_driver *d, const em_job *job, uint64_t fingerprint)
{
    em_cached_set *set = find_set(d, job->reply.pipe, fingerprint);
    if (set) set->hits++;
}

void em_cache_evicted(em_driver *d, uint32_t ex_id, uint64_t fingerprint, uint32_t part)
{
    for (size_t i = 0; i < d->n_cached; i++) {
        em_cached_set *set = &d->cached[i];
        if (set->fingerprint == fingerprint && part < set->partitions &&
            set->holder[part] == ex_id) {
            set->holder[part] = 0;
            set->bytes[part] = 0;
            set->lost[part] = 1 + EM_RECOMPUTE_EVICTION;
            set->evictions++;
            d->totals.cache_evictions++;
            d->dirty = 1;
        }
    }
}

uint32_t em_cache_holder(em_driver *d, uint32_t pipe, uint64_t fingerprint, uint32_t part)
{
    em_cached_set *set = find_set(d, pipe, fingerprint);
    if (!set || part >= set->partitions || !set->holder[part]) return 0;
    em_exec *ex = em_exec_get(d, set->holder[part]);
    return ex && ex->state == EM_EXEC_ALIVE ? ex->id : 0;
}

void em_cache_forget_executor(em_driver *d, uint32_t ex_id)
{
    for (size_t i = 0; i < d->n_cached; i++)
        for (uint32_t p = 0; p < d->cached[i].partitions; p++)
            if (d->cached[i].holder[p] == ex_id) {
                d->cached[i].holder[p] = 0;
                d->cached[i].bytes[p] = 0;
                d->cached[i].lost[p] = 1 + EM_RECOMPUTE_EXECUTOR_LOST;
            }
}

void em_cache_drop(em_driver *d, uint32_t pipe, uint64_t fingerprint)
{
    for (size_t i = d->n_cached; i-- > 0;) {
        em_cached_set *set = &d->cached[i];
        if (set->pipe != pipe || (fingerprint && set->fingerprint != fingerprint)) continue;
        d->drop_cached[d->drop_cached_made++ % EM_DROPS_KEPT] = set->fingerprint;
        free(set->holder);
        free(set->bytes);
        free(set->lost);
        *set = d->cached[--d->n_cached];
        d->dirty = 1;
    }
}

void em_cache_free(em_driver *d)
{
    for (size_t i = 0; i < d->n_cached; i++) {
        free(d->cached[i].holder);
        free(d->cached[i].bytes);
        free(d->cached[i].lost);
    }
    free(d->cached);
    d->cached = NULL;
    d->n_cached = d->cap_cached = 0;
}

json_t *em_doc_storage(const em_driver *d)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < d->n_cached; i++) {
        const em_cached_set *set = &d->cached[i];
        char id[24];
        snprintf(id, sizeof id, "%016llx", (unsigned long long)set->fingerprint);
        uint32_t cached = 0;
        uint64_t bytes = 0;
        json_t *parts = json_array();
        for (uint32_t p = 0; p < set->partitions; p++) {
            cached += set->holder[p] != 0;
            bytes += set->bytes[p];
            json_array_append_new(parts,
                                  set->holder[p] ? json_integer(set->holder[p]) : json_null());
        }
        json_array_append_new(
            arr,
            json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o}", "id", id, "operation",
                      set->kind, "storage",
                      set->storage == EMBER__STORAGE_LEVEL__STORAGE_MEMORY_AND_DISK
                          ? "memory_and_disk"
                          : "memory_only",
                      "partitions", (json_int_t)set->partitions, "cached_partitions",
                      (json_int_t)cached, "bytes", (json_int_t)bytes, "hits", (json_int_t)set->hits,
                      "evictions", (json_int_t)set->evictions, "holders", parts));
    }
    return arr;
}

void em_cache_unpersist(em_driver *d, em_request *req)
{
    Ember__Unpersist *u = em_frame_unpack(&req->frame, EM_MSG_UNPERSIST);
    char why[512];
    uint64_t *fp = NULL;
    int rc = u && u->graph ? em_graph_validate(u->graph, req->frame.data_len, why, sizeof why)
                           : EMBER_ERR_MALFORMED;
    if (!u || !u->graph) snprintf(why, sizeof why, "unreadable Unpersist");
    if (rc == EMBER_OK && !(fp = malloc(u->graph->n_nodes * sizeof *fp))) rc = EMBER_ERR_NOMEM;
    em_buf data = {(uint8_t *)req->frame.data, req->frame.data_len, req->frame.data_len};
    if (rc == EMBER_OK) rc = em_fingerprint_nodes(u->graph, &data, fp);
    if (rc == EMBER_OK) {
        em_cache_drop(d, req->pipe, fp[u->graph->target]);
        Ember__ReportReply rr = EMBER__REPORT_REPLY__INIT;
        rr.known = 1;
        em_server_reply(d->srv, req, EM_MSG_REPORT_REPLY, &rr.base, NULL, 0);
    } else {
        em_server_reply_error(d->srv, req, rc, "%s", rc == EMBER_ERR_NOMEM ? "out of memory" : why);
    }
    free(fp);
    em_pb_free(u);
}
