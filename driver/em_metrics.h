/* em_metrics.h -- the driver's Prometheus metrics (/metrics, text exposition format 0.0.4). */
#ifndef EM_METRICS_H
#define EM_METRICS_H

#include <stdint.h>

#include "em_driver.h"

/* em_metrics_task_done counts a finished task (any outcome) into the totals. */
void em_metrics_task_done(em_totals *t, const struct Ember__TaskResult *res);
/* em_metrics_render returns the exposition text (malloc'd), or NULL without memory. */
char *em_metrics_render(const em_driver *d, uint64_t rejected, int64_t now);

#endif
