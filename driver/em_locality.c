/* em_locality.c -- where a task would rather run (see em_driver.h, em_preferred_executor).
 *
 * A task whose partition of a persisted dataset is cached prefers the executor holding it
 * (em_cache.h). A reduce task prefers the executor holding most of its shuffle input, by
 * bytes: map tasks report their buckets' sizes, kept per map stage while the bound below
 * holds (EM_LOCALITY_MAX_BUCKETS sizes), and a reduce stage works out each partition's
 * preference once its inputs are complete (again when they move). An executor that holds
 * less than half of a partition's input is no preference at all.
 */
#include <ember/ember.h>
#include <stdlib.h>

#include "em_cache.h"
#include "em_driver.h"

#define EM_LOCALITY_MAX_BUCKETS (1u << 20)

void em_locality_map_output(em_stage *st, uint32_t part, const uint64_t *bucket_bytes, size_t n)
{
    size_t reducers = st->job->submit->graph->nodes[st->shuffle_node]->partitions;
    if (n != reducers || (uint64_t)st->plan.partitions * reducers > EM_LOCALITY_MAX_BUCKETS) return;
    if (!st->bucket_sizes &&
        !(st->bucket_sizes = calloc((size_t)st->plan.partitions * reducers, sizeof(uint64_t))))
        return;
    for (size_t r = 0; r < n; r++) st->bucket_sizes[part * reducers + r] = bucket_bytes[r];
}

/* reduce_preferences sets st->preferred: per partition, the executor holding most of its
 * shuffle input (0: none holds half). */
static void reduce_preferences(em_driver *d, em_stage *st)
{
    uint64_t *held = calloc(d->n_execs + 1, sizeof *held);
    if (!st->preferred) st->preferred = calloc(st->plan.partitions, sizeof *st->preferred);
    st->n_preferred = 0;
    for (uint32_t r = 0; held && st->preferred && r < st->plan.partitions; r++) {
        uint64_t total = 0;
        uint32_t best = 0;
        for (size_t i = 0; i <= d->n_execs; i++) held[i] = 0;
        for (uint32_t k = 0; k < st->plan.n_parents; k++) {
            const em_stage *map = &st->job->stages[st->plan.parents[k]];
            size_t reducers = st->job->submit->graph->nodes[map->shuffle_node]->partitions;
            if (!map->bucket_sizes || r >= reducers) continue;
            for (uint32_t m = 0; m < map->plan.partitions; m++) {
                uint64_t bytes = map->bucket_sizes[m * reducers + r];
                total += bytes;
                if (map->map_exec[m] <= d->n_execs) held[map->map_exec[m]] += bytes;
            }
        }
        for (uint32_t e = 1; e <= d->n_execs; e++)
            if (held[e] > held[best]) best = e;
        st->preferred[r] = best && total > 0 && 2 * held[best] >= total ? best : 0;
        st->n_preferred += st->preferred[r] != 0;
    }
    free(held);
    st->preferred_version = st->def_version + 1;
}

int em_stage_has_preferences(em_driver *d, em_stage *st)
{
    if (st->cache_fp) return 1;
    if (st->plan.n_parents == 0 || !em_stage_inputs_ready(st)) return 0;
    if (st->preferred_version != st->def_version + 1) reduce_preferences(d, st);
    return st->n_preferred > 0;
}

uint32_t em_preferred_executor(em_driver *d, em_stage *st, uint32_t part)
{
    uint32_t ex_id = 0;
    if (st->cache_fp) {
        ex_id = em_cache_holder(d, st->job->reply.pipe, st->cache_fp, part);
    } else if (st->plan.n_parents > 0 && em_stage_inputs_ready(st)) {
        if (st->preferred_version != st->def_version + 1) reduce_preferences(d, st);
        ex_id = st->preferred ? st->preferred[part] : 0;
    }
    em_exec *ex = ex_id ? em_exec_get(d, ex_id) : NULL;
    return ex && ex->state == EM_EXEC_ALIVE ? ex_id : 0;
}
