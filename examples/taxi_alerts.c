/* taxi_alerts.c -- example job: taxi GPS lines on Kafka -> alerts for taxis outside an area.
 *
 * Input: topic `taxi` (--in), lines "taxi_id,YYYY-MM-DD HH:MM:SS,longitude,latitude".
 * Output:
 *   - every malformed line, unchanged, to the dead-letter topic (--dead-letter), and counted;
 *   - every well-formed point outside the bounding box (--bbox minlon,minlat,maxlon,maxlat,
 *     default 116.1,39.7,116.7,40.1) to --alerts, keyed by taxi id, timestamped with the
 *     point's time (UTC), the line unchanged as value.
 * Rules of a well-formed line (examples/taxi_parse.h, shared with taxi_distance.c): exactly
 * four fields; taxi id of 1..32 characters from [A-Za-z0-9_-]; a valid date and time;
 * coordinates written as plain decimals (-?digits[.digits]) within [-180, 180] and [-90, 90].
 *
 * Build: cc -shared -fPIC -I include -o taxi_alerts.so examples/taxi_alerts.c
 * Run:   ember-submit taxi_alerts.so -- --in taxi --alerts taxi-alerts
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taxi_parse.h"

typedef struct bbox {
    double min_lon, min_lat, max_lon, max_lat;
} bbox;

/* taxi_is_malformed (filter): keeps the lines that do not parse. */
int taxi_is_malformed(ember_task *task, const ember_record *in)
{
    taxi_point pt;
    return taxi_parse_line(in->value, in->value_len, &pt) != 0;
}

/* taxi_alert (flat_map): emits well-formed points outside the bounding box given as arg. */
int taxi_alert(ember_task *task, const ember_record *in)
{
    size_t len;
    const bbox *box = ember_task_arg(task, &len);
    taxi_point pt;
    if (!box || len != sizeof *box) return ember_task_fail(task, "missing bounding box");
    if (taxi_parse_line(in->value, in->value_len, &pt) != 0) return EMBER_OK;
    if (pt.lon >= box->min_lon && pt.lon <= box->max_lon && pt.lat >= box->min_lat &&
        pt.lat <= box->max_lat)
        return EMBER_OK;
    return ember_emit_kv(task, pt.id, pt.id_len, in->value, in->value_len, pt.time_ms);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o =
        ember_opts_new(ctx, argc, argv,
                       "taxi_alerts.so -- [--in TOPIC] [--alerts TOPIC] [--dead-letter TOPIC] "
                       "[--bbox MINLON,MINLAT,MAXLON,MAXLAT]");
    const char *in = ember_opt_str(o, "--in", "taxi");
    const char *alerts_topic = ember_opt_str(o, "--alerts", "taxi-alerts");
    const char *dead_topic = ember_opt_str(o, "--dead-letter", "taxi-dead-letter");
    const char *bbox_arg = ember_opt_str(o, "--bbox", "116.1,39.7,116.7,40.1");
    if (ember_opts_check(o) != EMBER_OK) return 2;
    bbox box;
    if (sscanf(bbox_arg, "%lf,%lf,%lf,%lf", &box.min_lon, &box.min_lat, &box.max_lon,
               &box.max_lat) != 4) {
        fprintf(stderr, "taxi_alerts: --bbox wants minlon,minlat,maxlon,maxlat\n");
        return 2;
    }
    ember_dataset *lines = ember_kafka_topic(ctx, in);
    int64_t malformed = 0, alerts = 0;
    ember_set_job_name(ctx, "taxi_alerts: dead letters");
    if (ember_save_kafka(ember_filter(lines, taxi_is_malformed, NULL, 0), dead_topic, &malformed))
        return 1;
    ember_set_job_name(ctx, "taxi_alerts: alerts");
    if (ember_save_kafka(ember_flat_map(lines, taxi_alert, &box, sizeof box), alerts_topic,
                         &alerts))
        return 1;
    printf("taxi_alerts: %lld malformed lines -> %s, %lld alerts (outside %g,%g..%g,%g) -> %s\n",
           (long long)malformed, dead_topic, (long long)alerts, box.min_lon, box.min_lat,
           box.max_lon, box.max_lat, alerts_topic);
    return 0;
}
