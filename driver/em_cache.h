/* em_cache.h -- the driver's registry of cached partitions (ember_persist).
 *
 * A persisted node's partitions are stored by the executors that compute them, as blocks
 * "rdd_<fingerprint>_<partition>" (fingerprint: em_fingerprint_nodes, the same for the same
 * dataset in every action of a submitter). Executors report what they stored (TaskResult.
 * cached) and what they evicted (Report.evicted); the registry keeps, per submitter and
 * dataset, which executor holds each partition, so that tasks go where their partition is
 * (locality) and /api/v1/storage can show it. Cached partitions are dropped when their
 * submitter disconnects or unpersists them, and forgotten when their holder is lost.
 */
#ifndef EM_CACHE_H
#define EM_CACHE_H

#include <jansson.h>
#include <stdint.h>

#include "em_driver.h"

/* em_cached_set: the cached partitions of one persisted dataset of one submitter */
typedef struct em_cached_set {
    uint32_t pipe; /* the submitter's connection */
    uint64_t fingerprint;
    uint32_t partitions;
    uint32_t *holder; /* executor id per partition, 0: not cached */
    uint64_t *bytes;
    uint8_t *lost;      /* per partition: 1 + the em_recompute_reason it went for, or 0 */
    int storage;        /* Ember__StorageLevel */
    const char *kind;   /* the node's operation, for people */
    uint64_t hits;      /* tasks that read a cached partition */
    uint64_t evictions; /* partitions evicted to make room */
} em_cached_set;

/* em_cache_stored records partition part of persisted node `node` of job, stored by ex. */
void em_cache_stored(em_driver *d, const em_job *job, uint32_t ex_id, uint64_t fingerprint,
                     uint32_t part, uint64_t bytes);
/* em_cache_lost_reason: a task of this job computed partition part of a persisted node:
 * if that partition had been cached and was lost, why (else -1). Call before the task's
 * stored partitions are recorded. */
int em_cache_lost_reason(em_driver *d, const em_job *job, uint64_t fingerprint, uint32_t part);
/* em_cache_hit counts a task that read a cached partition. */
void em_cache_hit(em_driver *d, const em_job *job, uint64_t fingerprint);
void em_cache_evicted(em_driver *d, uint32_t ex_id, uint64_t fingerprint, uint32_t part);
/* em_cache_holder: the live executor holding that partition for this submitter, or 0. */
uint32_t em_cache_holder(em_driver *d, uint32_t pipe, uint64_t fingerprint, uint32_t part);
void em_cache_forget_executor(em_driver *d, uint32_t ex_id);
/* em_cache_drop removes the cached partitions of a submitter (fingerprint 0: all). */
void em_cache_drop(em_driver *d, uint32_t pipe, uint64_t fingerprint);
void em_cache_free(em_driver *d);
/* em_doc_storage: the /api/v1/storage document */
json_t *em_doc_storage(const em_driver *d);

/* em_cache_unpersist handles ember-submit's Unpersist request. */
void em_cache_unpersist(em_driver *d, em_request *req);

#endif
