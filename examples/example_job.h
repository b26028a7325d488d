/* example_job.h -- what the example jobs share: their command line (a value after --NAME, a
 * flag), starting a streaming query into a topic or Redis with its checkpoint under one
 * directory, and times printed as "YYYY-MM-DD HH:MM:SS" (UTC). Header-only: each job library
 * is built from one source file against ember.h. */
#ifndef EMBER_EXAMPLE_JOB_H
#define EMBER_EXAMPLE_JOB_H

#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* example_option: the word after `name` (def when absent) */
static inline const char *example_option(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return def;
}

static inline int64_t example_int(int argc, char **argv, const char *name, int64_t def)
{
    const char *v = example_option(argc, argv, name, NULL);
    return v ? atoll(v) : def;
}

static inline int example_flag(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0) return 1;
    return 0;
}

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
