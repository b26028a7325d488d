/* taxi_alerts.c -- example job: taxi GPS lines on Kafka -> alerts for taxis outside an area.
 *
 * Input: topic `taxi` (--in), lines "taxi_id,YYYY-MM-DD HH:MM:SS,longitude,latitude".
 * Output:
 *   - every malformed line, unchanged, to the dead-letter topic (--dead-letter), and counted;
 *   - every well-formed point outside the bounding box (--bbox minlon,minlat,maxlon,maxlat,
 *     default 116.1,39.7,116.7,40.1) to --alerts, keyed by taxi id, timestamped with the
 *     point's time (UTC), the line unchanged as value.
 * Rules of a well-formed line: exactly four fields; taxi id of 1..32 characters from
 * [A-Za-z0-9_-]; a valid date and time; coordinates written as plain decimals
 * (-?digits[.digits]) within [-180, 180] and [-90, 90].
 *
 * Build: cc -shared -fPIC -I include -o taxi_alerts.so examples/taxi_alerts.c
 * Run:   ember-submit taxi_alerts.so -- --in taxi --alerts taxi-alerts
 */
#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bbox {
    double min_lon, min_lat, max_lon, max_lat;
} bbox;

typedef struct taxi_point {
    const char *id;
    size_t id_len;
    int64_t time_ms;
    double lon, lat;
} taxi_point;

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* days_from_civil: days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int parse_time(const char *s, size_t n, int64_t *ms)
{
    int y, mo, d, h, mi, se;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (n != 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':')
        return -1;
    if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &se))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 59) return -1;
    *ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + se * 1000;
    return 0;
}

/* parse_decimal accepts -?digits[.digits] only, the same on every machine and locale. */
static int parse_decimal(const char *s, size_t n, double *out)
{
    char buf[32];
    size_t i = s[0] == '-' ? 1 : 0, int_digits = 0, frac_digits = 0;
    if (n == 0 || n >= sizeof buf) return -1;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++, int_digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++, frac_digits++;
        if (frac_digits == 0) return -1;
    }
    if (i != n || int_digits == 0) return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = strtod(buf, NULL);
    return 0;
}

/* parse_taxi_line splits and validates one line; returns 0 or -1 when malformed. */
int parse_taxi_line(const char *line, size_t len, taxi_point *pt)
{
    const char *field[4];
    size_t flen[4], nf = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && line[i] != ',') continue;
        if (nf == 4) return -1;
        field[nf] = line + start;
        flen[nf++] = i - start;
        start = i + 1;
    }
    if (nf != 4 || flen[0] == 0 || flen[0] > 32) return -1;
    for (size_t i = 0; i < flen[0]; i++) {
        char c = field[0][i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return -1;
    }
    if (parse_time(field[1], flen[1], &pt->time_ms) || parse_decimal(field[2], flen[2], &pt->lon) ||
        parse_decimal(field[3], flen[3], &pt->lat))
        return -1;
    if (pt->lon < -180 || pt->lon > 180 || pt->lat < -90 || pt->lat > 90) return -1;
    pt->id = field[0];
    pt->id_len = flen[0];
    return 0;
}

/* taxi_is_malformed (filter): keeps the lines that do not parse. */
int taxi_is_malformed(ember_task *task, const ember_record *in)
{
    taxi_point pt;
    return parse_taxi_line(in->value, in->value_len, &pt) != 0;
}

/* taxi_alert (flat_map): emits well-formed points outside the bounding box given as arg. */
int taxi_alert(ember_task *task, const ember_record *in)
{
    size_t len;
    const bbox *box = ember_task_arg(task, &len);
    taxi_point pt;
    if (!box || len != sizeof *box) return ember_task_fail(task, "missing bounding box");
    if (parse_taxi_line(in->value, in->value_len, &pt) != 0) return EMBER_OK;
    if (pt.lon >= box->min_lon && pt.lon <= box->max_lon && pt.lat >= box->min_lat &&
        pt.lat <= box->max_lat)
        return EMBER_OK;
    return ember_emit_kv(task, pt.id, pt.id_len, in->value, in->value_len, pt.time_ms);
}

static const char *option(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return def;
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    const char *in = option(argc, argv, "--in", "taxi");
    const char *alerts_topic = option(argc, argv, "--alerts", "taxi-alerts");
    const char *dead_topic = option(argc, argv, "--dead-letter", "taxi-dead-letter");
    bbox box;
    if (sscanf(option(argc, argv, "--bbox", "116.1,39.7,116.7,40.1"), "%lf,%lf,%lf,%lf",
               &box.min_lon, &box.min_lat, &box.max_lon, &box.max_lat) != 4) {
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
