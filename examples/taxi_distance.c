/* taxi_distance.c -- example job: distance travelled by each taxi, through group_by_key.
 *
 * Input: topic --in (default "taxi"), lines "taxi_id,YYYY-MM-DD HH:MM:SS,longitude,latitude"
 * (the format of examples/taxi_data.c). Lines that are not well formed (the rules of
 * examples/taxi_parse.h, the same as taxi_alerts.c) are skipped and counted.
 *
 * Pipeline:
 *   flat_map td_point: each good line -> (key taxi id, value 24 bytes: int64 time in ms, then
 *       longitude and latitude as doubles, in the machine's byte order; timestamp the time)
 *   group_by_key(--partitions, default 8): one record per taxi holding all its points
 *   map td_track: the taxi's points ordered by (time, longitude, latitude) and the haversine
 *       distances between consecutive points summed, R = 6371.0 km (examples/taxi_track.h:
 *       the order is fully determined by the points, so the result does not depend on how
 *       the lines were spread over Kafka partitions, nor on --partitions) -> (taxi id,
 *       distance in km as an 8-byte double; timestamp the taxi's latest point)
 *
 * Output (each is one action; those after the first read the shuffle output the first one
 * left, so they run only the reduce stage, and the malformed count reads the topic again):
 *   - stdout: number of taxis, total km (summed in taxi id order, so it is the same for any
 *     --partitions), malformed lines skipped, the --top N (default 5) taxis by distance (ties
 *     by id), and the seconds each action took;
 *   - topic --out (default "taxi-distance"; "-" for none): one record per taxi, key the taxi
 *     id, value the distance in km as text with 6 decimals ("%.6f", e.g. "123.456789"),
 *     timestamp the taxi's latest point;
 *   - directory --dir (default "taxi-distance"; "-" for none; relative to ember-submit's
 *     directory): "taxi_id,distance_km" lines, distance "%.6f", one file per reduce partition.
 *
 * Build: cc -shared -fPIC -O2 -I include -o taxi_distance.so examples/taxi_distance.c -lm
 *        (or `cmake --build build`, which writes build/jobs/taxi_distance.so)
 * Run:   ember-submit taxi_distance.so -- --in taxi --out taxi-distance --dir /tmp/distances
 *            --partitions 8
 */
#define _POSIX_C_SOURCE 200809L
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "taxi_parse.h"
#include "taxi_track.h"

#define POINT_BYTES 24 /* int64 time_ms, double lon, double lat */

/* td_is_malformed (filter): keeps the lines that do not parse. */
int td_is_malformed(ember_task *task, const ember_record *in)
{
    taxi_point pt;
    return taxi_parse_line(in->value, in->value_len, &pt) != 0;
}

/* td_point (flat_map): a good line -> (taxi id, time + lon + lat); a malformed one -> nothing. */
int td_point(ember_task *task, const ember_record *in)
{
    taxi_point pt;
    uint8_t v[POINT_BYTES];
    if (taxi_parse_line(in->value, in->value_len, &pt) != 0) return EMBER_OK;
    memcpy(v, &pt.time_ms, 8);
    memcpy(v + 8, &pt.lon, 8);
    memcpy(v + 16, &pt.lat, 8);
    return ember_emit_kv(task, pt.id, pt.id_len, v, sizeof v, pt.time_ms);
}

/* td_track (map over group_by_key's records): (taxi id, its points) -> (taxi id, km). */
int td_track(ember_task *task, const ember_record *in)
{
    ember_group_iter it;
    ember_record v;
    int n = ember_group_open(in, &it);
    if (n < 0) return ember_task_fail(task, "td_track: input is not a grouped record");
    taxi_fix *fix = malloc(sizeof *fix * (size_t)(n > 0 ? n : 1));
    if (!fix) return ember_task_fail(task, "td_track: no memory for %d points", n);
    size_t k = 0;
    while (k < (size_t)n && ember_group_next(&it, &v, NULL)) {
        if (v.value_len != POINT_BYTES) {
            free(fix);
            return ember_task_fail(task, "td_track: a point of %zu bytes, expected %d", v.value_len,
                                   POINT_BYTES);
        }
        memcpy(&fix[k].time_ms, v.value, 8);
        memcpy(&fix[k].lon, (const uint8_t *)v.value + 8, 8);
        memcpy(&fix[k].lat, (const uint8_t *)v.value + 16, 8);
        fix[k].seq = k;
        k++;
    }
    double km = taxi_track_km(fix, k);
    int64_t latest = k ? fix[k - 1].time_ms : in->timestamp;
    free(fix);
    return ember_emit_f64(task, in->key, in->key_len, km, latest);
}

/* td_format_value (map): (taxi id, km) -> (taxi id, "%.6f" text), for the Kafka topic. */
int td_format_value(ember_task *task, const ember_record *in)
{
    char text[64];
    int n = snprintf(text, sizeof text, "%.6f", ember_value_f64(in));
    return ember_emit_kv(task, in->key, in->key_len, text, (size_t)n, in->timestamp);
}

/* td_format_line (map): (taxi id, km) -> "taxi_id,km" with km as "%.6f", for text files. */
int td_format_line(ember_task *task, const ember_record *in)
{
    char line[128];
    int n = snprintf(line, sizeof line, "%.*s,%.6f", (int)in->key_len, (const char *)in->key,
                     ember_value_f64(in));
    return ember_emit_kv(task, in->key, in->key_len, line, (size_t)n, in->timestamp);
}

static int by_id(const void *pa, const void *pb)
{
    const ember_record *a = pa, *b = pb;
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);
    return c ? c : (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

static int by_km_then_id(const void *pa, const void *pb)
{
    double x = ember_value_f64(pa), y = ember_value_f64(pb);
    if (x != y) return x > y ? -1 : 1;
    return by_id(pa, pb);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* summary prints the taxis, their total and the top `top` by distance. */
static int summary(const ember_collected *all, int64_t malformed, int top)
{
    ember_record *sorted = malloc(sizeof *sorted * (all->n ? all->n : 1));
    double total = 0.0;
    if (!sorted) return -1;
    memcpy(sorted, all->records, sizeof *sorted * all->n);
    qsort(sorted, all->n, sizeof *sorted, by_id);
    for (size_t i = 0; i < all->n; i++) total += ember_value_f64(&sorted[i]);
    printf("taxi_distance: %zu taxis, %.6f km in all, %lld malformed lines skipped\n", all->n,
           total, (long long)malformed);
    qsort(sorted, all->n, sizeof *sorted, by_km_then_id);
    for (size_t i = 0; i < all->n && (int)i < top; i++)
        printf("%4zu. %-12.*s %14.6f km\n", i + 1, (int)sorted[i].key_len,
               (const char *)sorted[i].key, ember_value_f64(&sorted[i]));
    free(sorted);
    return 0;
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o = ember_opts_new(ctx, argc, argv,
                                   "taxi_distance.so -- [--in TOPIC] [--out TOPIC|-] [--dir DIR|-] "
                                   "[--partitions N] [--top N]");
    const char *in = ember_opt_str(o, "--in", "taxi");
    const char *out = ember_opt_str(o, "--out", "taxi-distance");
    const char *dir = ember_opt_str(o, "--dir", "taxi-distance");
    int partitions = (int)ember_opt_int(o, "--partitions", 8);
    int top = (int)ember_opt_int(o, "--top", 5);
    if (ember_opts_check(o) != EMBER_OK) return 2;
    if (partitions < 0) {
        fprintf(stderr, "taxi_distance: --partitions wants a number >= 0 (0: the topic's)\n");
        return 2;
    }
    ember_dataset *lines = ember_kafka_topic(ctx, in);
    ember_dataset *km =
        ember_map(ember_group_by_key(ember_flat_map(lines, td_point, NULL, 0), partitions),
                  td_track, NULL, 0);
    ember_collected all;
    int64_t malformed = 0, n_kafka = 0, n_text = 0;
    double t0 = now_s(), t_km, t_bad, t_kafka = 0, t_text = 0;

    ember_set_job_name(ctx, "taxi_distance: distances");
    if (ember_collect(km, &all) != EMBER_OK) goto failed;
    t_km = now_s() - t0;
    ember_set_job_name(ctx, "taxi_distance: malformed lines");
    t0 = now_s();
    if (ember_count(ember_filter(lines, td_is_malformed, NULL, 0), &malformed) != EMBER_OK)
        goto failed;
    t_bad = now_s() - t0;
    if (summary(&all, malformed, top) != 0) return 1;
    if (strcmp(out, "-") != 0) {
        ember_set_job_name(ctx, "taxi_distance: kafka output");
        t0 = now_s();
        if (ember_save_kafka(ember_map(km, td_format_value, NULL, 0), out, &n_kafka) != EMBER_OK)
            goto failed;
        t_kafka = now_s() - t0;
        printf("taxi_distance: %lld records -> topic %s\n", (long long)n_kafka, out);
    }
    if (strcmp(dir, "-") != 0) {
        ember_set_job_name(ctx, "taxi_distance: text output");
        t0 = now_s();
        if (ember_save_text(ember_map(km, td_format_line, NULL, 0), dir, &n_text) != EMBER_OK)
            goto failed;
        t_text = now_s() - t0;
        printf("taxi_distance: %lld lines -> %s/part-*\n", (long long)n_text, dir);
    }
    printf("taxi_distance timings: distances_s=%.3f malformed_s=%.3f kafka_s=%.3f text_s=%.3f\n",
           t_km, t_bad, t_kafka, t_text);
    return 0;
failed:
    fprintf(stderr, "taxi_distance: %s\n", ember_last_error(ctx));
    return 1;
}
