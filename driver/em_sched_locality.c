/* em_sched_locality.c -- where a task would rather run.
 *
 * A task whose partition of a persisted dataset is cached prefers the executor holding it
 * (em_sched_cache.c). A reduce task prefers the executor holding most of its shuffle input,
 * by bytes: map tasks report their buckets' sizes, kept per map stage while the bound below
 * holds (EM_LOCALITY_MAX_BUCKETS sizes), and a reduce stage works out each partition's
 * preference once its inputs are complete (again when they move). An executor that holds
 * less than half of a partition's input is no preference at all.
 *
 * A task reading a Kafka partition prefers one executor: the live executors take a topic's
 * partitions in turn (balanced; they move only when an executor comes or goes). A streaming
 * query's batches thus read each partition on the same executor, whose reader keeps it
 * assigned and fetched ahead. It is a preference without a wait: an executor with a free slot
 * and nothing of its own takes the task.
 */
#include <ember/ember.h>
#include <stdlib.h>
#include <string.h>

#include "em_graph.h"
#include "em_hash.h"
#include "em_sched_int.h"

#define EM_LOCALITY_MAX_BUCKETS (1u << 20)

/* reducers: the partitions of the wide node a map stage feeds */
static size_t reducers(const em_stage *map)
{
    return map->job->submit->graph->nodes[map->plan.shuffle_node]->partitions;
}

void em_locality_map_output(em_stage *st, uint32_t part, const uint64_t *bucket_bytes, size_t n)
{
    size_t r_count = reducers(st);
    if (n != r_count || (uint64_t)st->plan.partitions * r_count > EM_LOCALITY_MAX_BUCKETS) return;
    if (!st->bucket_sizes &&
        !(st->bucket_sizes = calloc((size_t)st->plan.partitions * r_count, sizeof(uint64_t))))
        return;
    for (size_t r = 0; r < n; r++) st->bucket_sizes[part * r_count + r] = bucket_bytes[r];
}

/* input_holder: the executor holding at least half of reduce partition r's input, or none;
 * held is scratch of n_execs counters, by executor index */
static em_exec_id input_holder(const em_sched *s, const em_stage *st, uint32_t r, uint64_t *held)
{
    uint64_t total = 0;
    size_t best = 0;
    for (size_t i = 0; i < s->n_execs; i++) held[i] = 0;
    for (uint32_t k = 0; k < st->plan.n_parents; k++) {
        const em_stage *map = &st->job->stages[st->plan.parents[k]];
        size_t r_count = reducers(map);
        if (!map->bucket_sizes || r >= r_count) continue;
        for (uint32_t m = 0; m < map->plan.partitions; m++) {
            uint64_t bytes = map->bucket_sizes[m * r_count + r];
            const em_exec *holder = em_sched_exec(s, map->map_exec[m]);
            total += bytes;
            if (holder) held[holder->index] += bytes;
        }
    }
    for (size_t e = 1; e < s->n_execs; e++)
        if (held[e] > held[best]) best = e;
    return s->n_execs && total > 0 && 2 * held[best] >= total ? s->execs[best]->id : EM_NO_EXEC;
}

/* reduce_preferences sets st->preferred: per partition, the executor holding most of its
 * shuffle input. */
static void reduce_preferences(em_sched *s, em_stage *st)
{
    uint64_t *held = calloc(s->n_execs + 1, sizeof *held);
    if (!st->preferred) st->preferred = calloc(st->plan.partitions, sizeof *st->preferred);
    st->n_preferred = 0;
    for (uint32_t r = 0; held && st->preferred && r < st->plan.partitions; r++) {
        st->preferred[r] = input_holder(s, st, r, held);
        st->n_preferred += st->preferred[r].v != 0;
    }
    free(held);
    st->preferred_version = st->def_version + 1;
}

/* kafka_leaf: the Kafka source task part of st reads, with its range in *range, or NULL if
 * it reads none */
static const Ember__Node *kafka_leaf(const em_stage *st, uint32_t part,
                                     const Ember__KafkaRange **range)
{
    const Ember__JobGraph *g = st->job->submit->graph;
    uint32_t leaf_part;
    const Ember__Node *leaf = g->nodes[em_graph_leaf(g, st->plan.node, part, &leaf_part)];
    if (leaf->kind != EMBER__NODE_KIND__NODE_KAFKA || leaf_part >= leaf->n_ranges) return NULL;
    *range = leaf->ranges[leaf_part];
    return leaf;
}

/* kafka_reader: the live executor that reads partition `partition` of `topic`: the live
 * executors in registration order take the topic's partitions in turn, from a place given
 * by the topic's hash (so that topics with few partitions do not all start on the first) */
static em_exec_id kafka_reader(const em_sched *s, const char *topic, int32_t partition)
{
    size_t alive = 0;
    for (size_t i = 0; i < s->n_execs; i++) alive += em_exec_alive(s->execs[i]);
    if (!alive) return EM_NO_EXEC;
    uint64_t turn = (em_hash64(topic, strlen(topic)) + (uint64_t)partition) % alive;
    for (size_t i = 0; i < s->n_execs; i++)
        if (em_exec_alive(s->execs[i]) && turn-- == 0) return s->execs[i]->id;
    return EM_NO_EXEC;
}

/* may_read_kafka: the stage's tasks read sources, of which some may be Kafka partitions (a
 * union's tasks read several kinds: each task is looked at on its own) */
static int may_read_kafka(const em_stage *st)
{
    const Ember__JobGraph *g = st->job->submit->graph;
    Ember__NodeKind kind = g->nodes[st->plan.source]->kind;
    return st->plan.n_parents == 0 &&
           (kind == EMBER__NODE_KIND__NODE_KAFKA || kind == EMBER__NODE_KIND__NODE_UNION);
}

int em_stage_has_preferences(em_sched *s, em_stage *st)
{
    if (st->cache_fp || (s->cfg.kafka_affinity && may_read_kafka(st))) return 1;
    if (st->plan.n_parents == 0 || !em_stage_inputs_ready(st)) return 0;
    if (st->preferred_version != st->def_version + 1) reduce_preferences(s, st);
    return st->n_preferred > 0;
}

em_exec_id em_preferred_executor(em_sched *s, em_stage *st, uint32_t part)
{
    em_exec_id id = EM_NO_EXEC;
    if (st->cache_fp) {
        id = em_cache_holder(s, st->job->session, st->cache_fp, part);
    } else if (st->plan.n_parents > 0 && em_stage_inputs_ready(st)) {
        if (st->preferred_version != st->def_version + 1) reduce_preferences(s, st);
        id = st->preferred ? st->preferred[part] : EM_NO_EXEC;
    } else if (st->plan.n_parents == 0 && s->cfg.kafka_affinity) {
        const Ember__KafkaRange *range;
        const Ember__Node *leaf = kafka_leaf(st, part, &range);
        if (leaf) id = kafka_reader(s, leaf->topic, range->partition);
    }
    return em_exec_alive(em_sched_exec(s, id)) ? id : EM_NO_EXEC;
}
