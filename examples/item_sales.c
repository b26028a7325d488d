/* item_sales.c -- example streaming job: sales events as JSON -> running totals per item and
 * revenue per item per minute, in Redis and a summary topic.
 *
 * Input: topic --in (default "item_sales"), one JSON object per record, keyed by item id
 * (so that an item's sales stay in one partition, in order):
 *     {"item_id":"I0042","qty":3,"price_cents":1999,"ts_ms":1764756000000}
 * item_id: 1 to 32 letters, digits, '-' or '_'; qty: an integer from 1 to 1,000,000;
 * price_cents: an integer from 0 to 1,000,000,000; ts_ms: the sale's time (ms since 1970,
 * positive). Read with ember_json_* (the job API's JSON helpers, on jansson), not by hand.
 * Anything else is malformed.
 *
 * Queries (docs/streaming.md), each exactly once into its sink:
 *   sales-totals       each item's running totals, kept as keyed state across batches
 *                      (ember_map_with_state), into Redis: HSET item:ITEM qty Q
 *                      revenue_cents R count C (the hash stands for a row of the classic
 *                      Cassandra table)
 *   sales-minutes      revenue per item per 1-minute event-time window (tumbling; final once
 *                      the watermark, the latest sale seen minus --delay-s seconds (5), passes
 *                      the minute's end), to the summary topic --summary ("item-sales-summary")
 *                      as "ITEM,YYYY-MM-DD HH:MM:SS,qty,revenue_cents,count" keyed by item
 *   sales-minutes-redis  the same windows into Redis: HSET revenue:ITEM "YYYY-MM-DD HH:MM"
 *                      revenue_cents
 *   sales-dead-letter  every malformed record, unchanged, to --dead-letter
 *                      ("item-sales-dead-letter"); the query's records_out counts them
 *
 * Options: --redis HOST:PORT (default $EMBER_REDIS, else 127.0.0.1:6379), --interval-ms N
 * (1000), --earliest, --checkpoint DIR (each query's checkpoint under it; default
 * "item-sales-checkpoint"), --detach, --partitions N (of the keyed state and windows, 4).
 * The job runs until sales-totals is stopped (ember-submit --stop sales-totals, or
 * ember-submit ending); the others then stop with it.
 *
 * Build: cc -shared -fPIC -O2 -I include -o item_sales.so examples/item_sales.c
 * Run:   ember-submit item_sales.so -- --earliest --redis 127.0.0.1:6379
 */
#define _POSIX_C_SOURCE 200809L
#include <ember/ember.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "example_job.h"

#define ITEM_ID_MAX 32

/* a sale as a record value; the key is the item id, the timestamp the sale's time */
typedef struct sale {
    int64_t qty, price_cents;
} sale;

/* totals: an item's running totals, or one window's */
typedef struct totals {
    int64_t qty, revenue_cents, count;
} totals;

static int valid_item(const char *id, size_t len)
{
    if (len == 0 || len > ITEM_ID_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* integer_in: the document's field `name` is an integer in [min, max] */
static int integer_in(ember_json *j, const char *name, int64_t min, int64_t max, int64_t *out)
{
    return ember_json_i64(j, name, out) == EMBER_OK && *out >= min && *out <= max;
}

/* parse_sale reads one record's JSON; 0 when it is a well-formed sale */
static int parse_sale(const ember_record *in, char *item, size_t *item_len, sale *s, int64_t *ts_ms)
{
    ember_json *j = ember_json_new();
    const char *id;
    size_t id_len;
    int ok = j && ember_json_parse(j, in->value, in->value_len) == EMBER_OK &&
             ember_json_str(j, "item_id", &id, &id_len) == EMBER_OK && valid_item(id, id_len) &&
             integer_in(j, "qty", 1, 1000000, &s->qty) &&
             integer_in(j, "price_cents", 0, 1000000000, &s->price_cents) &&
             integer_in(j, "ts_ms", 1, INT64_MAX, ts_ms);
    if (ok) {
        *item_len = id_len;
        memcpy(item, id, id_len);
    }
    ember_json_free(j);
    return ok ? 0 : -1;
}

/* is_sale (flat_map): a well-formed record -> (item, sale) at the sale's time */
int is_sale(ember_task *task, const ember_record *in)
{
    char item[ITEM_ID_MAX];
    size_t item_len;
    sale s;
    int64_t ts;
    if (parse_sale(in, item, &item_len, &s, &ts) != 0) return EMBER_OK;
    return ember_emit_kv(task, item, item_len, &s, sizeof s, ts);
}

/* is_malformed (filter): the records that are not sales */
int is_malformed(ember_task *task, const ember_record *in)
{
    (void)task;
    char item[ITEM_ID_MAX];
    size_t item_len;
    sale s;
    int64_t ts;
    return parse_sale(in, item, &item_len, &s, &ts) != 0;
}

/* emit_hash emits HSET `key` with n fields */
static int emit_hash(ember_task *task, const char *key, size_t key_len, size_t n,
                     const char *const *fields, const char *const *values, int64_t ts)
{
    uint8_t value[256];
    size_t len = ember_redis_fields(value, sizeof value, n, fields, values);
    if (len == 0) return ember_task_fail(task, "a Redis hash of %zu fields does not fit", n);
    return ember_emit_kv(task, key, key_len, value, len, ts);
}

/* add_sale adds the sale `in` to t */
static void add_sale(totals *t, const ember_record *in)
{
    sale s;
    memcpy(&s, in->value, sizeof s);
    t->qty += s.qty;
    t->revenue_cents += s.qty * s.price_cents;
    t->count++;
}

/* running_totals (map_with_state): a sale adds to its item's totals; emits the item's hash */
int running_totals(ember_task *task, const ember_record *in, void *state, int *exists)
{
    totals *t = state;
    add_sale(t, in);
    *exists = 1;
    char key[64], qty[24], revenue[24], count[24];
    int kn = snprintf(key, sizeof key, "item:%.*s", (int)in->key_len, (const char *)in->key);
    snprintf(qty, sizeof qty, "%" PRId64, t->qty);
    snprintf(revenue, sizeof revenue, "%" PRId64, t->revenue_cents);
    snprintf(count, sizeof count, "%" PRId64, t->count);
    const char *fields[] = {"qty", "revenue_cents", "count"}, *values[] = {qty, revenue, count};
    return emit_hash(task, key, (size_t)kn, 3, fields, values, in->timestamp);
}

/* minute_add (seq) and minute_join (comb): a window's totals */
int minute_add(ember_task *task, void *acc, const ember_record *in)
{
    (void)task;
    add_sale(acc, in);
    return EMBER_OK;
}

int minute_join(ember_task *task, void *acc, const void *other)
{
    (void)task;
    totals *a = acc, b;
    memcpy(&b, other, sizeof b);
    a->qty += b.qty;
    a->revenue_cents += b.revenue_cents;
    a->count += b.count;
    return EMBER_OK;
}

/* minute_line (map): a final window -> "ITEM,start,qty,revenue_cents,count" */
int minute_line(ember_task *task, const ember_record *in)
{
    totals t;
    memcpy(&t, in->value, sizeof t);
    char start[32], line[160];
    example_time(in->timestamp, start, sizeof start);
    int n =
        snprintf(line, sizeof line, "%.*s,%s,%" PRId64 ",%" PRId64 ",%" PRId64, (int)in->key_len,
                 (const char *)in->key, start, t.qty, t.revenue_cents, t.count);
    return ember_emit_kv(task, in->key, in->key_len, line, (size_t)n, in->timestamp);
}

/* minute_hash (map): a final window -> HSET revenue:ITEM "YYYY-MM-DD HH:MM" revenue_cents */
int minute_hash(ember_task *task, const ember_record *in)
{
    totals t;
    memcpy(&t, in->value, sizeof t);
    char key[64], minute[32], revenue[24];
    int kn = snprintf(key, sizeof key, "revenue:%.*s", (int)in->key_len, (const char *)in->key);
    example_time(in->timestamp, minute, sizeof minute);
    minute[16] = '\0'; /* "YYYY-MM-DD HH:MM" */
    snprintf(revenue, sizeof revenue, "%" PRId64, t.revenue_cents);
    const char *fields[] = {minute}, *values[] = {revenue};
    return emit_hash(task, key, (size_t)kn, 1, fields, values, in->timestamp);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o = ember_opts_new(
        ctx, argc, argv,
        "item_sales.so -- [--in TOPIC] [--summary TOPIC] [--dead-letter TOPIC] "
        "[--redis HOST:PORT] [--partitions N] [--delay-s N] [--earliest] " EXAMPLE_QUERY_USAGE);
    const char *in = ember_opt_str(o, "--in", "item_sales");
    const char *summary = ember_opt_str(o, "--summary", "item-sales-summary");
    const char *dead = ember_opt_str(o, "--dead-letter", "item-sales-dead-letter");
    example_queries eq = example_queries_of(o, ctx, "item_sales", "item-sales-checkpoint");
    int partitions = (int)ember_opt_int(o, "--partitions", 4);
    ember_stream_source src = {.earliest = ember_opt_flag(o, "--earliest")};
    ember_redis_options redis = {.address = example_redis(o), .command = EMBER_REDIS_HSET};
    ember_window minute = {
        .length_ms = 60000, .slide_ms = 60000, .delay_ms = ember_opt_int(o, "--delay-s", 5) * 1000};
    if (ember_opts_check(o) != EMBER_OK) return 2;

    ember_dataset *totals_ds =
        ember_map_with_state(ember_flat_map(ember_kafka_stream(ctx, in, &src), is_sale, NULL, 0),
                             running_totals, sizeof(totals), 0, NULL, 0, partitions);
    totals zero = {0, 0, 0};
    ember_dataset *minutes =
        ember_window_aggregate(ember_flat_map(ember_kafka_stream(ctx, in, &src), is_sale, NULL, 0),
                               &minute, &zero, sizeof zero, minute_add, minute_join, partitions);
    ember_query *q[4] = {
        example_start(&eq, totals_ds, "sales-totals", NULL, &redis),
        example_start(&eq, ember_map(minutes, minute_line, NULL, 0), "sales-minutes", summary,
                      NULL),
        example_start(&eq, ember_map(minutes, minute_hash, NULL, 0), "sales-minutes-redis", NULL,
                      &redis),
        example_start(&eq, ember_filter(ember_kafka_stream(ctx, in, &src), is_malformed, NULL, 0),
                      "sales-dead-letter", dead, NULL),
    };
    for (size_t i = 0; i < 4; i++)
        if (!q[i]) return 1;
    int rc = example_await_all(&eq, q, 4);
    ember_query_progress p;
    if (ember_query_status(q[3], &p) == EMBER_OK)
        fprintf(stderr, "item_sales: %lld malformed records sent to the dead-letter topic\n",
                (long long)p.records_out);
    return rc;
}
