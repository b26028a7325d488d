/* em_status.h -- the driver's HTTP status endpoint (nng's HTTP server, read-only).
 *
 * The driver loop publishes a snapshot (em_status_publish, at most every 50 ms while things
 * change, else every second): one rendered document per path. HTTP handlers, on nng's
 * threads, copy a document under a short lock and never touch scheduler state, so requests
 * cannot slow scheduling down. Paths and documents: docs/status-api.md.
 */
#ifndef EM_STATUS_H
#define EM_STATUS_H

#include <stddef.h>
#include <stdint.h>

struct em_driver;
struct em_job;
typedef struct em_status em_status;

/* em_status_start serves d->cfg.status ("host:port", port 0 picks one). */
int em_status_start(struct em_driver *d, char *err, size_t errlen);
/* em_status_publish renders a new snapshot; driver loop only. */
void em_status_publish(struct em_driver *d, uint64_t rejected);
/* em_status_freeze_job renders a finished job's stage documents (with their task lists) once
 * and releases the task arrays; driver loop only. */
void em_status_freeze_job(struct em_job *job);
/* em_status_url is the endpoint's base URL (http://host:port). */
const char *em_status_url(const em_status *st);
void em_status_stop(em_status *st);

#endif
