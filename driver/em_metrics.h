/* em_metrics.h -- the driver's Prometheus metrics (/metrics, text exposition format 0.0.4). */
#ifndef EM_METRICS_H
#define EM_METRICS_H

#include <stdint.h>

#include "em_sched.h"
#include "em_status.h"

/* em_metrics_render returns the exposition text (malloc'd) of the scheduler's state, the
 * count of messages the driver refused, and the streaming queries, or NULL without memory. */
char *em_metrics_render(const em_sched *s, const em_wire_counts *wire, const em_query_view *q,
                        size_t n_queries, int64_t now);

#endif
