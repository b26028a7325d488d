/* em_status_docs.h -- builders of the status endpoint's JSON documents (driver loop only).
 * Each returns a new jansson reference. */
#ifndef EM_STATUS_DOCS_H
#define EM_STATUS_DOCS_H

#include <jansson.h>
#include <stdint.h>

#include "em_sched.h"
#include "em_status.h"
#include "em_stream.h"

json_t *em_doc_driver(const em_sched *s, const char *url, const em_wire_counts *wire);
json_t *em_doc_executors(const em_sched *s, int64_t now);
/* em_doc_storage: the cached datasets (/api/v1/storage) */
json_t *em_doc_storage(const em_sched *s);
/* em_doc_submit_failures: jobs that failed in their submitter, newest first
 * (/api/v1/submissions/failed) */
json_t *em_doc_submit_failures(const em_sched *s);
/* em_doc_job: a job with the summary of each stage */
json_t *em_doc_job(const em_job *job, int64_t now);
/* em_doc_stage: one stage's summary; em_doc_stage_tasks adds its tasks (the first 1000) */
json_t *em_doc_stage(const em_stage *st, int64_t now);
json_t *em_doc_stage_tasks(const em_stage *st, int64_t now);
/* em_doc_query: a streaming query's summary; em_doc_query_batches: its recent batches, newest
 * first, with each one's durations */
json_t *em_doc_query(const em_query_view *v);
json_t *em_doc_query_batches(const em_query_view *v);

#endif
