/* em_flow_sink.h -- the sinks of a workflow: each record becomes one Kafka record, one line
 * of a file, or one Redis write, made from its columns.
 *
 *   kafka_sink  topic; value: the columns as a CSV line or a JSON object; key: a template
 *               ("{item_id}"), by default the columns of the nearest key_by or aggregate
 *   files_sink  an absolute directory (shared storage on several hosts); lines as kafka_sink's
 *   redis_sink  HSET key field value... (fields: templates) or SET key value; key: a template
 *               ("taxi:{taxi_id}"); address, optional TTL
 */
#ifndef EM_FLOW_SINK_H
#define EM_FLOW_SINK_H

#include <ember/ember.h>

#include "em_flow_node.h"

/* em_sink_record makes the record a sink writes for cols, its bytes in the scratch space;
 * -1 when they do not fit (message in err) */
int em_sink_record(const em_node *n, const em_value *cols, em_scratch *s, ember_record *out,
                   char *err, size_t errlen);

/* em_sink_default_key keys a kafka_sink without a `key` by these columns of its input, joined
 * with '|' (the nearest key_by or aggregate upstream) */
int em_sink_default_key(em_node *n, const int *cols, int count, char *err, size_t errlen);

/* em_sink_redis_options: a redis_sink's ember_redis_options (strings point into n) */
void em_sink_redis_options(const em_node *n, ember_redis_options *o);

/* em_sink_target: the topic or directory */
const char *em_sink_target(const em_node *n);

#endif
