/* taxi_stream.c -- example streaming job: the classic taxi pipeline, continuously.
 *
 * Input: topic --in (default "taxi"), lines "taxi_id,YYYY-MM-DD HH:MM:SS,longitude,latitude"
 * (examples/taxi_data.c), keyed by taxi id so that a taxi's points stay in one partition in
 * the order they were produced (ember-topic produce --key-sep; see deploy/quickstart.sh
 * --stream). The job starts three queries on it, each a stream of micro-batches the driver
 * runs (docs/streaming.md):
 *
 *   taxi-distance  the distance each taxi travelled over the last --window-min minutes (30),
 *                  refreshed every --slide-s seconds (30): an event-time window aggregate
 *                  whose accumulator keeps a taxi's first and last point and the haversine
 *                  distance between consecutive points (R = 6371.0 km) in event-time order;
 *                  each final window goes to --distances (topic "taxi-distance") keyed by taxi
 *                  id as "taxi_id,window_start,window_end,km,points" (times "YYYY-MM-DD
 *                  HH:MM:SS", km "%.6f"). The watermark trails the latest point by --delay-s
 *                  seconds (60); points later than that are counted as late.
 *   taxi-alerts    a point outside the bounding box (--bbox, default 116.1,39.7,116.7,40.1)
 *                  or reached faster than --max-kmh (120) from the taxi's previous point,
 *                  kept across batches as keyed state (ember_map_with_state; a taxi silent
 *                  for an hour is forgotten): "taxi_id,time,lon,lat,REASON" to --alerts
 *                  ("taxi-alerts"), REASON "outside" or "speed=KMH".
 *   taxi-dead-letter  every malformed line, unchanged, to --dead-letter ("taxi-dead-letter").
 *
 * Other options: --interval-ms N (the trigger, 1000), --earliest (a new query starts at the
 * topic's first records, else at those that arrive after it starts), --max-per-batch N
 * (records of a partition per batch, 0: all), --partitions N (of the window's state, 4).
 * With --redis HOST:PORT two more queries write into Redis, exactly once: taxi-points, every
 * point as a hash "taxi_id|YYYY-MM-DD HH:MM:SS" {lon, lat} (the HBase-style row key), and
 * taxi-distance-now, "distance:taxi_id" = the km of the taxi's latest final window.
 * Each query keeps its checkpoint in --checkpoint DIR/<query> (default
 * "taxi-stream-checkpoint" in ember-submit's directory). The job runs until its queries are
 * stopped (ember-submit --stop taxi-distance, or ember-submit ending), or with --detach keeps
 * them running on the driver. Every sink is exactly once (docs/streaming.md).
 *
 * Build: cc -shared -fPIC -O2 -I include -o taxi_stream.so examples/taxi_stream.c -lm
 * Run:   ember-submit taxi_stream.so -- --in taxi --interval-ms 500
 */
#define _POSIX_C_SOURCE 200809L
#include <ember/ember.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "example_job.h"
#include "taxi_parse.h"
#include "taxi_track.h"

/* ---- parsing -------------------------------------------------------------------------------- */

/* a point as a record value: longitude, latitude (doubles, machine byte order) */
typedef struct point_value {
    double lon, lat;
} point_value;

/* ts_point (flat_map): a well-formed line -> (taxi id, point) at the point's time */
int ts_point(ember_task *task, const ember_record *in)
{
    taxi_point pt;
    if (taxi_parse_line(in->value, in->value_len, &pt) != 0) return EMBER_OK;
    point_value v = {pt.lon, pt.lat};
    return ember_emit_kv(task, pt.id, pt.id_len, &v, sizeof v, pt.time_ms);
}

/* ts_malformed (filter): the lines that do not parse */
int ts_malformed(ember_task *task, const ember_record *in)
{
    (void)task;
    taxi_point pt;
    return taxi_parse_line(in->value, in->value_len, &pt) != 0;
}

/* ---- distance over a window: a track's ends and length ---------------------------------------
 */

typedef struct track {
    int64_t points;
    int64_t first_ms, last_ms;
    double first_lon, first_lat, last_lon, last_lat;
    double km;
} track;

/* ts_track_add (seq): one more point, later than the track's */
int ts_track_add(ember_task *task, void *acc, const ember_record *in)
{
    (void)task;
    track *t = acc;
    point_value p;
    memcpy(&p, in->value, sizeof p);
    if (t->points == 0) {
        t->first_ms = in->timestamp;
        t->first_lon = p.lon;
        t->first_lat = p.lat;
    } else {
        t->km += taxi_haversine_km(t->last_lon, t->last_lat, p.lon, p.lat);
    }
    t->last_ms = in->timestamp;
    t->last_lon = p.lon;
    t->last_lat = p.lat;
    t->points++;
    return EMBER_OK;
}

/* ts_track_join (comb): the track `other` continues `acc` (it is later in event time) */
int ts_track_join(ember_task *task, void *acc, const void *other)
{
    (void)task;
    track *a = acc;
    track b;
    memcpy(&b, other, sizeof b);
    if (b.points == 0) return EMBER_OK;
    if (a->points == 0) {
        *a = b;
        return EMBER_OK;
    }
    a->km += taxi_haversine_km(a->last_lon, a->last_lat, b.first_lon, b.first_lat) + b.km;
    a->last_ms = b.last_ms;
    a->last_lon = b.last_lon;
    a->last_lat = b.last_lat;
    a->points += b.points;
    return EMBER_OK;
}

/* ts_window_line (map): a final window -> "taxi_id,start,end,km,points"; the window's length
 * in ms is the argument */
int ts_window_line(ember_task *task, const ember_record *in)
{
    size_t len;
    const int64_t *window_ms = ember_task_arg(task, &len);
    track t;
    memcpy(&t, in->value, sizeof t);
    char start[32], end[32], line[160];
    example_time(in->timestamp, start, sizeof start);
    example_time(in->timestamp + *window_ms, end, sizeof end);
    int n = snprintf(line, sizeof line, "%.*s,%s,%s,%.6f,%" PRId64, (int)in->key_len,
                     (const char *)in->key, start, end, t.km, t.points);
    return ember_emit_kv(task, in->key, in->key_len, line, (size_t)n, in->timestamp);
}

/* ---- alerts -----------------------------------------------------------------------------------
 */

typedef struct alert_rules {
    double min_lon, min_lat, max_lon, max_lat;
    double max_kmh;
} alert_rules;

/* last_point: a taxi's state between points (map_with_state), kept across batches */
typedef struct last_point {
    int64_t time_ms;
    double lon, lat;
} last_point;

static int emit_alert(ember_task *task, const ember_record *in, const point_value *p,
                      const char *reason)
{
    char when[32], line[192];
    example_time(in->timestamp, when, sizeof when);
    int n = snprintf(line, sizeof line, "%.*s,%s,%.5f,%.5f,%s", (int)in->key_len,
                     (const char *)in->key, when, p->lon, p->lat, reason);
    return ember_emit_kv(task, in->key, in->key_len, line, (size_t)n, in->timestamp);
}

/* ts_alert (map_with_state): a taxi's point against the box and its previous point */
int ts_alert(ember_task *task, const ember_record *in, void *state, int *exists)
{
    size_t len;
    const alert_rules *rules = ember_task_arg(task, &len);
    if (!rules || len != sizeof *rules) return ember_task_fail(task, "missing alert rules");
    point_value p;
    memcpy(&p, in->value, sizeof p);
    int rc = EMBER_OK;
    if (p.lon < rules->min_lon || p.lon > rules->max_lon || p.lat < rules->min_lat ||
        p.lat > rules->max_lat)
        rc = emit_alert(task, in, &p, "outside");
    last_point *prev = state;
    if (rc == EMBER_OK && *exists && in->timestamp > prev->time_ms) {
        double km = taxi_haversine_km(prev->lon, prev->lat, p.lon, p.lat);
        double kmh = km / ((double)(in->timestamp - prev->time_ms) / 3600000.0);
        char reason[32];
        snprintf(reason, sizeof reason, "speed=%.0f", kmh);
        if (kmh > rules->max_kmh) rc = emit_alert(task, in, &p, reason);
    }
    *prev = (last_point){in->timestamp, p.lon, p.lat};
    *exists = 1;
    return rc;
}

/* ---- the job ----------------------------------------------------------------------------------
 */

/* ts_point_row (map): a point -> HSET "taxi_id|YYYY-MM-DD HH:MM:SS" lon LON lat LAT, the
 * row key of the classic HBase design */
int ts_point_row(ember_task *task, const ember_record *in)
{
    point_value p;
    memcpy(&p, in->value, sizeof p);
    char when[32], row[80], lon[32], lat[32];
    example_time(in->timestamp, when, sizeof when);
    int n = snprintf(row, sizeof row, "%.*s|%s", (int)in->key_len, (const char *)in->key, when);
    snprintf(lon, sizeof lon, "%.5f", p.lon);
    snprintf(lat, sizeof lat, "%.5f", p.lat);
    const char *fields[] = {"lon", "lat"}, *values[] = {lon, lat};
    uint8_t value[128];
    size_t len = ember_redis_fields(value, sizeof value, 2, fields, values);
    return ember_emit_kv(task, row, (size_t)n, value, len, in->timestamp);
}

/* ts_distance_now (map): a final window -> SET "distance:taxi_id" km (a taxi's windows come in
 * start order, so the key holds its latest) */
int ts_distance_now(ember_task *task, const ember_record *in)
{
    track t;
    memcpy(&t, in->value, sizeof t);
    char key[64], km[32];
    int kn = snprintf(key, sizeof key, "distance:%.*s", (int)in->key_len, (const char *)in->key);
    int vn = snprintf(km, sizeof km, "%.6f", t.km);
    return ember_emit_kv(task, key, (size_t)kn, km, (size_t)vn, in->timestamp);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o = ember_opts_new(
        ctx, argc, argv,
        "taxi_stream.so -- [--in TOPIC] [--distances TOPIC] [--alerts TOPIC] "
        "[--dead-letter TOPIC] [--redis HOST:PORT] [--window-min N] [--slide-s N] "
        "[--delay-s N] [--max-kmh X] [--bbox MINLON,MINLAT,MAXLON,MAXLAT] [--partitions N] "
        "[--max-per-batch N] [--earliest] " EXAMPLE_QUERY_USAGE);
    const char *in = ember_opt_str(o, "--in", "taxi");
    const char *distances_topic = ember_opt_str(o, "--distances", "taxi-distance");
    const char *alerts_topic = ember_opt_str(o, "--alerts", "taxi-alerts");
    const char *dead_topic = ember_opt_str(o, "--dead-letter", "taxi-dead-letter");
    example_queries eq = example_queries_of(o, ctx, "taxi_stream", "taxi-stream-checkpoint");
    ember_window w = {.length_ms = ember_opt_int(o, "--window-min", 30) * 60000,
                      .slide_ms = ember_opt_int(o, "--slide-s", 30) * 1000,
                      .delay_ms = ember_opt_int(o, "--delay-s", 60) * 1000};
    alert_rules rules = {116.1, 39.7, 116.7, 40.1, ember_opt_double(o, "--max-kmh", 120)};
    const char *bbox = ember_opt_str(o, "--bbox", NULL);
    int partitions = (int)ember_opt_int(o, "--partitions", 4);
    ember_stream_source src = {.earliest = ember_opt_flag(o, "--earliest"),
                               .max_per_partition = ember_opt_int(o, "--max-per-batch", 0)};
    /* with --redis: every point under its row key, and each taxi's current distance */
    ember_redis_options redis = {.address = ember_opt_str(o, "--redis", NULL)};
    if (ember_opts_check(o) != EMBER_OK) return 2;
    if (bbox && sscanf(bbox, "%lf,%lf,%lf,%lf", &rules.min_lon, &rules.min_lat, &rules.max_lon,
                       &rules.max_lat) != 4) {
        fprintf(stderr, "taxi_stream: --bbox minlon,minlat,maxlon,maxlat\n");
        return 2;
    }

    ember_dataset *lines = ember_kafka_stream(ctx, in, &src);
    ember_dataset *points = ember_flat_map(lines, ts_point, NULL, 0);
    track zero = {0};
    ember_dataset *windows = ember_window_aggregate(points, &w, &zero, sizeof zero, ts_track_add,
                                                    ts_track_join, partitions);
    ember_dataset *distances = ember_map(windows, ts_window_line, &w.length_ms, sizeof w.length_ms);
    ember_query *q[5] = {NULL, NULL, NULL, NULL, NULL};
    q[0] = example_start(&eq, distances, "taxi-distance", distances_topic, NULL);
    /* a taxi's last point is kept for an hour without news (it went off duty) */
    ember_dataset *alerts =
        ember_map_with_state(ember_flat_map(ember_kafka_stream(ctx, in, &src), ts_point, NULL, 0),
                             ts_alert, sizeof(last_point), 3600 * 1000, &rules, sizeof rules, 4);
    q[1] = example_start(&eq, alerts, "taxi-alerts", alerts_topic, NULL);
    ember_dataset *bad = ember_filter(ember_kafka_stream(ctx, in, &src), ts_malformed, NULL, 0);
    q[2] = example_start(&eq, bad, "taxi-dead-letter", dead_topic, NULL);
    if (!q[0] || !q[1] || !q[2]) return 1;
    if (redis.address) {
        redis.command = EMBER_REDIS_HSET;
        q[3] = example_start(
            &eq,
            ember_map(ember_flat_map(ember_kafka_stream(ctx, in, &src), ts_point, NULL, 0),
                      ts_point_row, NULL, 0),
            "taxi-points", NULL, &redis);
        ember_redis_options now = redis;
        now.command = EMBER_REDIS_SET;
        q[4] = example_start(&eq, ember_map(windows, ts_distance_now, NULL, 0), "taxi-distance-now",
                             NULL, &now);
        if (!q[3] || !q[4]) return 1;
    }
    /* until the distance query is stopped; the others then stop with it */
    int rc = example_await_all(&eq, q, redis.address ? 5 : 3);
    ember_query_progress p;
    if (!eq.detach && ember_query_status(q[0], &p) == EMBER_OK)
        fprintf(stderr,
                "taxi_stream: %lld points read, %lld windows written, watermark %lld, %lld late\n",
                (long long)p.records_in, (long long)p.records_out, (long long)p.watermark_ms,
                (long long)p.late_records);
    return rc;
}
