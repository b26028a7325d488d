/* em_pipeline.h -- runs a stage's chain of narrow operations over one partition.
 *
 * A pipeline is built once per stage (user functions resolved by symbol in the job library)
 * and is then read-only, so several slot threads may run tasks of it at once. A run pushes
 * each source record through the chain record by record (map, flat_map, filter call the next
 * operation directly: nothing is materialized), except that map_partitions buffers its input
 * partition to give its function an iterator. Records are views; nothing is allocated per
 * record. This file also implements the task side of the public API (ember_emit & co).
 */
#ifndef EM_PIPELINE_H
#define EM_PIPELINE_H

#include <ember/ember.h>
#include <stddef.h>
#include <stdint.h>

#include "ember.pb-c.h"

/* em_record_fn receives one record; non-zero stops the run and is returned by it. */
typedef int (*em_record_fn)(void *arg, const ember_record *rec);

/* em_source_fn feeds the records of one partition to emit; returns EMBER_OK or an error
 * (with err filled), or whatever emit returned. */
typedef int (*em_source_fn)(void *src, em_record_fn emit, void *emit_arg, char *err, size_t errlen);

typedef struct em_pipeline em_pipeline;

/* em_pipeline_new resolves the chain that ends at `target` of a validated graph for one
 * partition of it (unions make the chain depend on the partition); `lib` is the dlopen
 * handle of the job library (may be NULL for a chain without functions). */
int em_pipeline_new(const Ember__JobGraph *g, uint32_t target, uint32_t partition, void *lib,
                    em_pipeline **out, char *err, size_t errlen);
/* em_pipeline_new_from is em_pipeline_new for the chain after node `from` (which is then
 * its source: a cached partition of it is read instead of computing it). */
int em_pipeline_new_from(const Ember__JobGraph *g, uint32_t target, uint32_t partition,
                         uint32_t from, void *lib, em_pipeline **out, char *err, size_t errlen);
void em_pipeline_free(em_pipeline *pl);
/* em_pipeline_source returns the chain's source node (a source or a wide node), and
 * em_pipeline_source_partition the partition of it that the task of `partition` reads. */
const Ember__Node *em_pipeline_source(const em_pipeline *pl);
uint32_t em_pipeline_source_partition(const em_pipeline *pl, uint32_t partition);
/* em_pipeline_per_partition: the chain went through a union, so other partitions of the
 * same stage may need another chain. */
int em_pipeline_per_partition(const em_pipeline *pl);
/* em_pipeline_resolve finds a user function by name (built-ins in the process). */
void *em_pipeline_resolve(void *lib, const char *symbol);
/* em_task_resolve finds a user function of the job library the task's operation came from
 * (for built-ins that call one given by name) */
void *em_task_resolve(ember_task *task, const char *symbol);

/* em_fn_task_new makes an ember_task for calling one user function outside a chain (the
 * functions of aggregate_by_key): ember_emit fails in it, ember_task_fail's message goes to
 * err. em_fn_task_result turns the function's return value into EMBER_OK or the error,
 * with err filled. */
ember_task *em_fn_task_new(Ember__NodeKind kind, const char *symbol, uint32_t partition, char *err,
                           size_t errlen);
void em_fn_task_free(ember_task *task);
/* em_fn_task_bind gives the function its argument (ember_task_arg) and lets it emit: each
 * record goes to sink. */
void em_fn_task_bind(ember_task *task, const void *arg, size_t arg_len, em_record_fn sink,
                     void *sink_arg);
int em_fn_task_result(ember_task *task, int rc);

typedef struct em_run_stats {
    int64_t records_in;  /* records read from the source */
    int64_t records_out; /* records given to the sink */
    int64_t bytes_in;    /* key and value bytes read from the source */
    int64_t bytes_out;   /* key and value bytes given to the sink */
} em_run_stats;

/* em_pipeline_run computes one partition: source -> operations -> sink. */
int em_pipeline_run(const em_pipeline *pl, uint32_t partition, em_source_fn source, void *src,
                    em_record_fn sink, void *sink_arg, em_run_stats *stats, char *err,
                    size_t errlen);

/* em_tap: a copy of what a node of the chain outputs (its source included), e.g. to keep a
 * persisted node's partition; a tap that fails fails the run. */
typedef struct em_tap {
    uint32_t node;
    em_record_fn fn;
    void *arg;
} em_tap;
int em_pipeline_run_tapped(const em_pipeline *pl, uint32_t partition, em_source_fn source,
                           void *src, em_record_fn sink, void *sink_arg, const em_tap *taps,
                           size_t n_taps, em_run_stats *stats, char *err, size_t errlen);

/* Built-in user functions live in every process that runs tasks; their symbols start with
 * EM_BUILTIN_PREFIX and are looked up in the process rather than in the job library. */
#define EM_BUILTIN_PREFIX "ember_builtin_"
/* ember_builtin_count_one (map): (key, 1 as int64), for count_by_key */
int ember_builtin_count_one(ember_task *task, const ember_record *in);

/* Sources that need no outside system. */

/* em_range_source_arg: partition `partition` of a range node. */
typedef struct em_range_source_arg {
    const Ember__Node *node;
    uint32_t partition;
} em_range_source_arg;
int em_range_source(void *src, em_record_fn emit, void *emit_arg, char *err, size_t errlen);

/* em_batches_source_arg: records held in consecutive record batches (parallelize input). */
typedef struct em_batches_source_arg {
    const void *data;
    size_t len;
} em_batches_source_arg;
int em_batches_source(void *src, em_record_fn emit, void *emit_arg, char *err, size_t errlen);

/* em_range_bounds gives partition p's part [*lo, *hi) of [start, end) split n ways. */
void em_range_bounds(int64_t start, int64_t end, uint32_t n, uint32_t p, int64_t *lo, int64_t *hi);

#endif
