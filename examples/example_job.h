/* example_job.h -- what the example jobs share: the query options of their command lines
 * (read with ember_opt_*), starting a streaming query into a topic or Redis with its
 * checkpoint under one directory, and times printed as "YYYY-MM-DD HH:MM:SS" (UTC). Header-only:
 * each job library is built from one source file against ember.h. */
#ifndef EMBER_EXAMPLE_JOB_H
#define EMBER_EXAMPLE_JOB_H

#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* example_time formats ms since 1970 as "YYYY-MM-DD HH:MM:SS" (UTC) */
static inline void example_time(int64_t ms, char *buf, size_t len)
{
    time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

/* example_queries: where a job's queries keep their checkpoints, and how they run */
typedef struct example_queries {
    ember_ctx *ctx;
    const char *job;         /* for messages */
    const char *checkpoints; /* each query's checkpoint is checkpoints/<name> */
    int64_t interval_ms;
    int detach;
} example_queries;

/* EXAMPLE_QUERY_USAGE: the options example_queries_of reads, for usage lines */
#define EXAMPLE_QUERY_USAGE "[--checkpoint DIR] [--interval-ms N] [--detach]"

/* example_queries_of reads --checkpoint (default_checkpoint), --interval-ms (1000) and
 * --detach */
static inline example_queries example_queries_of(ember_opts *o, ember_ctx *ctx, const char *job,
                                                 const char *default_checkpoint)
{
    return (example_queries){ctx, job, ember_opt_str(o, "--checkpoint", default_checkpoint),
                             ember_opt_int(o, "--interval-ms", 1000),
                             ember_opt_flag(o, "--detach")};
}

/* example_redis: --redis HOST:PORT, else $EMBER_REDIS, else 127.0.0.1:6379 */
static inline const char *example_redis(ember_opts *o)
{
    const char *env = getenv("EMBER_REDIS");
    return ember_opt_str(o, "--redis", env && env[0] ? env : "127.0.0.1:6379");
}

/* example_start starts query `name` over ds into `topic`, or into Redis with `redis` (when not
 * NULL); NULL (the reason printed) if it cannot */
static inline ember_query *example_start(const example_queries *eq, ember_dataset *ds,
                                         const char *name, const char *topic,
                                         const ember_redis_options *redis)
{
    char checkpoint[4096];
    snprintf(checkpoint, sizeof checkpoint, "%s/%s", eq->checkpoints, name);
    ember_query_options q = {.name = name,
                             .checkpoint = checkpoint,
                             .interval_ms = eq->interval_ms,
                             .detach = eq->detach};
    ember_query *query = NULL;
    int rc = redis ? ember_stream_to_redis(ds, redis, &q, &query)
                   : ember_stream_to_kafka(ds, topic, &q, &query);
    if (rc != EMBER_OK) {
        fprintf(stderr, "%s: query %s could not start: %s\n", eq->job, name,
                ember_last_error(eq->ctx));
        return NULL;
    }
    fprintf(stderr, "%s: query %s started, writing to %s %s\n", eq->job, name,
            redis ? "redis" : "topic", redis ? redis->address : topic);
    return query;
}

/* example_await_all waits until queries[0] ends, then stops the others and waits for them;
 * 0 when all ended well. Detached queries run on: it returns 0 at once. */
static inline int example_await_all(const example_queries *eq, ember_query **queries, size_t n)
{
    if (eq->detach) return 0;
    int rc = ember_query_await(queries[0], -1);
    for (size_t i = 1; i < n; i++)
        if (queries[i]) ember_query_stop(queries[i]);
    for (size_t i = 1; i < n; i++)
        if (queries[i] && ember_query_await(queries[i], -1) != EMBER_OK) rc = EMBER_ERR_JOB_FAILED;
    return rc == EMBER_OK ? 0 : 1;
}

#endif
