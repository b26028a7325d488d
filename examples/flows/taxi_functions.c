/* taxi_functions.c -- the functions examples/flows/taxi.json calls: a job library made of the
 * flow runner (lib/libember_flow.a) and two aggregate functions over a taxi's points (time,
 * longitude, latitude), the folds a flow's built-in aggregates do not have:
 *
 *   taxi_track  the distance along the points in event-time order (haversine, R = 6371.0 km,
 *               examples/taxi_track.h) and their count: km, points. In a window, as
 *               examples/taxi_stream.c's taxi-distance query computes it.
 *   taxi_hop    the latest point and the speed of the hop that reached it from the one before
 *               (0 for a taxi's first point, a point not later than the one before, or one
 *               more than an hour after it): time, lon, lat, kmh. As a streaming aggregate
 *               without a window it is kept per taxi across batches, the state
 *               examples/taxi_stream.c's taxi-alerts query keeps with ember_map_with_state.
 *
 * Build: cc -shared -fPIC -O2 -I include -o taxi_flow.so examples/flows/taxi_functions.c \
 *            build/release/lib/libember_flow.a -ljansson -lm
 * Run:   ember-flow run --library taxi_flow.so examples/flows/taxi.json --checkpoint DIR
 */
#include <ember/ember.h>
#include <string.h>

#include "../taxi_track.h"

EMBER_FLOW_LIBRARY

#define HOUR_MS 3600000

/* a track: its first and last point, its length and its count (the args: time, lon, lat) */
typedef struct track {
    int64_t points;
    int64_t first_ms, last_ms;
    double first_lon, first_lat, last_lon, last_lat;
    double km;
    double kmh; /* taxi_hop: the speed of the hop to the last point */
} track;

static int track_add(void *acc, const ember_flow_value *args)
{
    track *t = acc;
    *t = (track){.points = 1,
                 .first_ms = args[0].i,
                 .last_ms = args[0].i,
                 .first_lon = args[1].f,
                 .first_lat = args[2].f,
                 .last_lon = args[1].f,
                 .last_lat = args[2].f};
    return 0;
}

/* track_merge: `later` continues acc in event time */
static int track_merge(void *acc, const void *later)
{
    track *a = acc, b;
    memcpy(&b, later, sizeof b);
    if (b.points == 0) return 0;
    if (a->points == 0) {
        *a = b;
        return 0;
    }
    a->km += taxi_haversine_km(a->last_lon, a->last_lat, b.first_lon, b.first_lat) + b.km;
    a->last_ms = b.last_ms;
    a->last_lon = b.last_lon;
    a->last_lat = b.last_lat;
    a->points += b.points;
    return 0;
}

static int track_result(const void *acc, ember_flow_value *out)
{
    const track *t = acc;
    out[0].f = t->km;
    out[1].i = t->points;
    return 0;
}

const ember_flow_aggregate taxi_track = {EMBER_FLOW_ABI, sizeof(track), "timestamp,double,double",
                                         "double,int",   track_add,     track_merge,
                                         track_result};

/* hop_merge: `later` is the taxi's next point(s); the speed is that of the last hop */
static int hop_merge(void *acc, const void *later)
{
    track *a = acc, b;
    memcpy(&b, later, sizeof b);
    if (b.points == 0) return 0;
    double kmh = b.kmh;
    if (b.points == 1) {
        int64_t gap_ms = b.first_ms - a->last_ms;
        kmh = a->points > 0 && gap_ms > 0 && gap_ms <= HOUR_MS
                  ? taxi_haversine_km(a->last_lon, a->last_lat, b.first_lon, b.first_lat) /
                        ((double)gap_ms / HOUR_MS)
                  : 0.0;
    }
    if (a->points == 0) {
        *a = b;
        return 0;
    }
    a->last_ms = b.last_ms;
    a->last_lon = b.last_lon;
    a->last_lat = b.last_lat;
    a->points += b.points;
    a->kmh = kmh;
    return 0;
}

static int hop_result(const void *acc, ember_flow_value *out)
{
    const track *t = acc;
    out[0].i = t->last_ms;
    out[1].f = t->last_lon;
    out[2].f = t->last_lat;
    out[3].f = t->kmh;
    return 0;
}

const ember_flow_aggregate taxi_hop = {EMBER_FLOW_ABI,
                                       sizeof(track),
                                       "timestamp,double,double",
                                       "timestamp,double,double,double",
                                       track_add,
                                       hop_merge,
                                       hop_result};
