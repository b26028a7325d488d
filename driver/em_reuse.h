/* em_reuse.h -- shuffle outputs kept for a submitter's later actions: skipped stages.
 *
 * ember-submit runs each action of a job library as one driver job. When a job succeeds, the
 * outputs of the map stages it ran stay on the executors for as long as the submitter stays
 * connected (at most EM_KEPT_SHUFFLES per submitter, the oldest dropped first), filed under a
 * fingerprint of the stage: a hash of every node it depends on (kind, functions, arguments,
 * resolved Kafka ranges, parallelized bytes, the job library) and of the wide node it feeds.
 * A later job of the same submitter with a map stage of the same fingerprint reads the kept
 * blocks instead of running that stage and the stages only it needed, as Spark skips stages
 * whose shuffle output exists. Kept outputs are dropped when their submitter disconnects or
 * an executor holding part of them is lost.
 */
#ifndef EM_REUSE_H
#define EM_REUSE_H

#include <stdint.h>

#include "em_driver.h"

#define EM_KEPT_SHUFFLES 8

/* em_kept_shuffle: one kept map output */
typedef struct em_kept_shuffle {
    uint32_t pipe;        /* the submitter's connection */
    uint64_t fingerprint; /* of the map stage */
    uint64_t stage_id;    /* the stage that wrote the blocks: shuffle_<stage_id>_... */
    uint32_t partitions;
    uint32_t *map_exec; /* executor holding each map partition's output */
    uint64_t kept_seq;  /* order of keeping, to drop the oldest first */
} em_kept_shuffle;

/* em_fingerprint_nodes sets fp[i] to the fingerprint of node i's lineage (data: the job's
 * parallelized records). */
int em_fingerprint_nodes(const Ember__JobGraph *g, const em_buf *data, uint64_t *fp);
/* em_reuse_fingerprints sets the fingerprints of a new job's nodes (job->node_fp) and map
 * stages. */
int em_reuse_fingerprints(em_job *job);
/* em_reuse_plan marks the stages of a new job that need not run: map stages whose output the
 * submitter (pipe) kept, and stages only those needed. Skipped stages are in EM_RUN_SKIPPED;
 * a reused one reads the kept blocks (output_stage_id, map_exec). Returns the number of tasks
 * skipped, or < 0 without memory. */
int em_reuse_plan(em_driver *d, em_job *job, uint32_t pipe);
/* em_reuse_stage_done settles the output of a map stage of a job that just ended (and left
 * d->jobs): kept for the submitter when the job succeeded, else dropped unless kept or read
 * by another running job. */
void em_reuse_stage_done(em_driver *d, const em_stage *st);
/* em_reuse_forget_pipe drops every output kept for a submitter that disconnected. */
void em_reuse_forget_pipe(em_driver *d, uint32_t pipe);
/* em_reuse_forget_executor drops kept outputs that lost a part with executor ex_id. */
void em_reuse_forget_executor(em_driver *d, uint32_t ex_id);
void em_reuse_free(em_driver *d);

/* em_shuffle_drop tells executors (in their next Tasks answers) to remove a map stage's
 * blocks. */
void em_shuffle_drop(em_driver *d, uint64_t map_stage_id);

#endif
