/* em_persist.c -- reading and keeping persisted partitions (see em_persist.h). */
#include "em_persist.h"

#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_blockid.h"
#include "em_graph.h"
#include "em_log.h"

static const Ember__CachedNode *persisted(const Ember__StageDef *def, uint32_t node)
{
    for (size_t i = 0; i < def->n_cached; i++)
        if (def->cached[i]->node == node) return def->cached[i];
    return NULL;
}

static int copy_record(void *arg, const ember_record *rec) { return em_batch_add(arg, rec); }

int em_persist_begin(em_blockstore *bs, const Ember__StageDef *def, uint32_t partition,
                     em_persist_task *pt)
{
    memset(pt, 0, sizeof *pt);
    const Ember__JobGraph *g = def->graph;
    uint32_t id = def->final_node, part = partition;
    while (def->n_cached > 0 && pt->n < EM_PERSIST_MAX) { /* the task's chain, from its end */
        const Ember__Node *n = g->nodes[id];
        const Ember__CachedNode *c = persisted(def, id);
        if (c) {
            pt->nodes[pt->n].node = id;
            pt->nodes[pt->n].partition = part;
            pt->nodes[pt->n].fingerprint = c->fingerprint;
            pt->nodes[pt->n++].storage = (int)n->storage;
        }
        if (em_node_is_source(n->kind) || em_node_is_wide(n->kind)) break;
        id = n->parents[n->kind == EMBER__NODE_KIND__NODE_UNION ? em_node_branch(g, n, &part) : 0];
    }
    /* the chain starts after the cached partition nearest its end; the persisted nodes after
     * that one are kept as the chain passes them */
    for (size_t h = 0; h < pt->n && !pt->hit; h++) {
        char block[EM_BLOCKID_MAX];
        em_blockid_cached(block, pt->nodes[h].fingerprint, pt->nodes[h].partition);
        if ((pt->hit = em_blockstore_get(bs, block))) {
            pt->hit_node = pt->nodes[h].node;
            pt->n = h;
        }
    }
    for (size_t i = 0; i < pt->n; i++) {
        int rc = em_batch_begin(&pt->nodes[i].out);
        if (rc != EMBER_OK) return rc;
        pt->taps[pt->n_taps++] = (em_tap){pt->nodes[i].node, copy_record, &pt->nodes[i].out};
    }
    return EMBER_OK;
}

/* cached_block: a CachedBlock entry for a result (NULL without memory) */
static Ember__CachedBlock *cached_block(uint64_t fingerprint, uint32_t partition, uint64_t bytes)
{
    Ember__CachedBlock *b = malloc(sizeof *b);
    if (!b) return NULL;
    ember__cached_block__init(b);
    b->fingerprint = fingerprint;
    b->partition = partition;
    b->bytes = bytes;
    return b;
}

static void append(Ember__CachedBlock ***list, size_t *n, Ember__CachedBlock *b)
{
    Ember__CachedBlock **p = b ? realloc(*list, (*n + 1) * sizeof *p) : NULL;
    if (!p) {
        free(b);
        return; /* the driver's registry misses it: its tasks just do not find it there */
    }
    p[(*n)++] = b;
    *list = p;
}

/* note_evicted: a cached partition went to make room */
static void note_evicted(void *arg, const char *id, size_t len)
{
    ex_result *res = arg;
    uint64_t fingerprint;
    uint32_t partition;
    if (em_blockid_parse_cached(id, &fingerprint, &partition))
        append(&res->evicted, &res->n_evicted, cached_block(fingerprint, partition, len));
}

void em_persist_keep(em_blockstore *bs, em_persist_task *pt, ex_result *res)
{
    for (size_t i = 0; i < pt->n; i++) {
        char block[EM_BLOCKID_MAX], same[EM_BLOCKID_MAX], why[256] = "";
        size_t len;
        em_batch_finish(&pt->nodes[i].out);
        uint8_t *bytes = em_buf_take(&pt->nodes[i].out.buf, &len);
        em_blockid_cached(block, pt->nodes[i].fingerprint, pt->nodes[i].partition);
        em_blockid_cached_prefix(same, pt->nodes[i].fingerprint);
        int rc = pt->nodes[i].storage == EMBER__STORAGE_LEVEL__STORAGE_MEMORY_AND_DISK
                     ? em_blockstore_put(bs, block, bytes, len, why, sizeof why)
                     : em_blockstore_put_evicting(bs, block, bytes, len, EM_BLOCKID_CACHED_KIND,
                                                  same, note_evicted, res);
        if (rc != EMBER_OK) {
            free(bytes);
            em_info("partition not cached block=%s bytes=%zu reason=\"%s\"", block, len,
                    why[0] ? why : "larger than the memory cap");
            continue;
        }
        append(&res->msg.cached, &res->msg.n_cached,
               cached_block(pt->nodes[i].fingerprint, pt->nodes[i].partition, len));
    }
}

void em_persist_end(em_blockstore *bs, em_persist_task *pt)
{
    if (pt->hit) em_block_release(bs, pt->hit);
    for (size_t i = 0; i < pt->n; i++) em_buf_free(&pt->nodes[i].out.buf);
    pt->hit = NULL;
    pt->n = 0;
}
