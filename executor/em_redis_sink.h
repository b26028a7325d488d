/* em_redis_sink.h -- a task's output written to Redis (the save_redis action): one connection
 * per task (hiredis), AUTH and SELECT first, then each record as one command (SET, HSET or
 * ZADD, and PEXPIRE with a time-to-live), pipelined: the replies of EM_REDIS_PIPELINE commands
 * are read before more are sent. An error reply or a lost connection fails the write with
 * Redis's own message.
 *
 * A streaming batch's task (a fence in the action) applies all its writes in one transaction:
 * WATCH the task's fence key (the action's fence, ':', the task's partition) and read it:
 * already the batch's, so the batch ran before and nothing is written again; else MULTI, the
 * writes, SET of the fence, EXEC. Each task watches a key of its own, so the tasks of one
 * batch never abort each other. A transaction another attempt won (EXEC aborted by the WATCH) is
 * fine when the fence then holds the batch.
 */
#ifndef EM_REDIS_SINK_H
#define EM_REDIS_SINK_H

#include <ember/ember.h>
#include <stddef.h>
#include <stdint.h>

#include "ember.pb-c.h"

#define EM_REDIS_PIPELINE   1000
#define EM_REDIS_TIMEOUT_MS 10000

typedef struct em_redis_sink em_redis_sink;

int em_redis_sink_open(const Ember__Action *a, uint32_t partition, em_redis_sink **out, char *err,
                       size_t errlen);
int em_redis_sink_write(em_redis_sink *s, const ember_record *rec, char *err, size_t errlen);
/* em_redis_sink_close reads the replies still owed (when ok), then frees s (NULL is fine). */
int em_redis_sink_close(em_redis_sink *s, int ok, char *err, size_t errlen);

#endif
