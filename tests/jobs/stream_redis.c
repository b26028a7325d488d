/* stream_redis.c -- a query into Redis for the tests: each line of a topic becomes SET line
 * = the wall-clock time (ns) it was written at, so a write applied twice shows.
 *
 *   stream_redis --topic T --name NAME --checkpoint DIR --address HOST:PORT [--password P]
 *                [--interval-ms N]
 */
#define _POSIX_C_SOURCE 200809L
#include <ember/ember.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "query_args.h"

int stream_redis_stamp(ember_task *task, const ember_record *in)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char stamp[32];
    int n = snprintf(stamp, sizeof stamp, "%lld%09ld", (long long)now.tv_sec, now.tv_nsec);
    return ember_emit_kv(task, in->value, in->value_len, stamp, (size_t)n, in->timestamp);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o = ember_opts_new(ctx, argc, argv,
                                   "stream_redis.so -- --address HOST:PORT [--password P] [--topic "
                                   "T] --name Q --checkpoint DIR [--interval-ms N] [--detach]");
    ember_query_options q = query_args(o);
    ember_redis_options r = {.address = ember_opt_str(o, "--address", NULL),
                             .password = ember_opt_str(o, "--password", NULL),
                             .command = EMBER_REDIS_SET};
    const char *topic = ember_opt_str(o, "--topic", "lines");
    if (ember_opts_check(o) != EMBER_OK) return 2;
    ember_stream_source src = {.earliest = 1};
    ember_dataset *ds =
        ember_map(ember_kafka_stream(ctx, topic, &src), stream_redis_stamp, NULL, 0);
    ember_query *query;
    if (ember_stream_to_redis(ds, &r, &q, &query) != EMBER_OK) return 1;
    printf("query %s started\n", q.name);
    fflush(stdout);
    return ember_query_await(query, -1) == EMBER_OK ? 0 : 1;
}
