/* redis_save.c -- datasets written to Redis, for the tests: the numbers 0..N-1 (ember_range,
 * 4 partitions) as
 *   SET  user:I  "name-I"                     (--ttl-ms: each key expires)
 *   HSET item:I  name "item I"  qty "I*3"     (ember_redis_fields)
 *   ZADD leaders (score I * 1.5) "player-I"
 *
 *   redis_save --address A [--password P] [--db N] [--ttl-ms N] [--count N]
 *
 * Prints "saved SET N, HSET N, ZADD N" once all three actions succeeded.
 */
#include <ember/ember.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int redis_save_user(ember_task *task, const ember_record *in)
{
    int64_t i = ember_value_i64(in);
    char key[32], value[32];
    int kn = snprintf(key, sizeof key, "user:%" PRId64, i);
    int vn = snprintf(value, sizeof value, "name-%" PRId64, i);
    return ember_emit_kv(task, key, (size_t)kn, value, (size_t)vn, 0);
}

int redis_save_item(ember_task *task, const ember_record *in)
{
    int64_t i = ember_value_i64(in);
    char key[32], name[32], qty[32];
    int kn = snprintf(key, sizeof key, "item:%" PRId64, i);
    snprintf(name, sizeof name, "item %" PRId64, i);
    snprintf(qty, sizeof qty, "%" PRId64, i * 3);
    const char *fields[] = {"name", "qty"}, *values[] = {name, qty};
    uint8_t buf[128];
    size_t len = ember_redis_fields(buf, sizeof buf, 2, fields, values);
    if (!len) return ember_task_fail(task, "fields do not fit");
    return ember_emit_kv(task, key, (size_t)kn, buf, len, 0);
}

int redis_save_player(ember_task *task, const ember_record *in)
{
    int64_t i = ember_value_i64(in);
    uint8_t value[64];
    double score = (double)i * 1.5;
    memcpy(value, &score, sizeof score);
    int mn =
        snprintf((char *)value + sizeof score, sizeof value - sizeof score, "player-%" PRId64, i);
    return ember_emit_kv(task, "leaders", 7, value, sizeof score + (size_t)mn, 0);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *args = ember_opts_new(ctx, argc, argv,
                                      "redis_save.so -- --address HOST:PORT [--password P] "
                                      "[--db N] [--ttl-ms N] [--count N]");
    ember_redis_options o = {.address = ember_opt_str(args, "--address", NULL),
                             .password = ember_opt_str(args, "--password", NULL),
                             .db = (int)ember_opt_int(args, "--db", 0),
                             .ttl_ms = ember_opt_int(args, "--ttl-ms", 0)};
    int64_t count = ember_opt_int(args, "--count", 1000);
    if (ember_opts_check(args) != EMBER_OK) return 2;
    ember_dataset *numbers = ember_range(ctx, 0, count, 4);
    int64_t sets = 0, hashes = 0, players = 0;
    o.command = EMBER_REDIS_SET;
    if (ember_save_redis(ember_map(numbers, redis_save_user, NULL, 0), &o, &sets) != EMBER_OK)
        return 1;
    o.command = EMBER_REDIS_HSET;
    o.ttl_ms = 0;
    if (ember_save_redis(ember_map(numbers, redis_save_item, NULL, 0), &o, &hashes) != EMBER_OK)
        return 1;
    o.command = EMBER_REDIS_ZADD;
    if (ember_save_redis(ember_map(numbers, redis_save_player, NULL, 0), &o, &players) != EMBER_OK)
        return 1;
    printf("saved SET %lld, HSET %lld, ZADD %lld\n", (long long)sets, (long long)hashes,
           (long long)players);
    return 0;
}
