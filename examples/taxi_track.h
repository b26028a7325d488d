/* taxi_track.h -- the distance a taxi travelled: its points ordered, haversine summed.
 *
 * Shared by examples/taxi_distance.c (one call per taxi, in the reduce tasks) and
 * bench/taxi_distance_baseline.c (the single-process baseline), so both compute each taxi's
 * distance with the same operations in the same order, and give the same bits.
 *
 * Semantics (what tests/integration/taxi_distance_reference.awk reproduces apart):
 *   - a taxi's points are ordered by (time, longitude, latitude), ascending; points equal in
 *     all three are identical for the distance, so their relative order (input order: seq)
 *     cannot change the result. The order does not depend on which Kafka partition a point
 *     came from, so the result does not either, even when two points share a time.
 *   - the distance is the sum, in that order, of the haversine distances between consecutive
 *     points, on a sphere of radius 6371.0 km:
 *         a = sin(dlat/2)^2 + cos(lat1) cos(lat2) sin(dlon/2)^2,  d = 2 R atan2(sqrt a, sqrt(1-a))
 *     with every angle converted by one multiplication by pi/180, evaluated left to right as
 *     written in taxi_haversine_km. One point gives 0.
 */
#ifndef EMBER_EXAMPLES_TAXI_TRACK_H
#define EMBER_EXAMPLES_TAXI_TRACK_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define TAXI_EARTH_KM 6371.0
#define TAXI_PI       3.14159265358979323846 /* M_PI is not in strict C11 */

/* taxi_fix: one point of a taxi's track. */
typedef struct taxi_fix {
    int64_t time_ms; /* milliseconds since the epoch, UTC */
    double lon, lat; /* degrees */
    uint64_t seq;    /* input order: the last tie-break, for a total order */
} taxi_fix;

/* taxi_haversine_km: great-circle distance between two points given in degrees. */
static inline double taxi_haversine_km(double lon1, double lat1, double lon2, double lat2)
{
    const double rad = TAXI_PI / 180.0;
    double phi1 = lat1 * rad, phi2 = lat2 * rad;
    double dphi = (lat2 - lat1) * rad, dlambda = (lon2 - lon1) * rad;
    double s1 = sin(dphi / 2), s2 = sin(dlambda / 2);
    double a = s1 * s1 + cos(phi1) * cos(phi2) * s2 * s2;
    return 2 * TAXI_EARTH_KM * atan2(sqrt(a), sqrt(1 - a));
}

/* taxi_fix_cmp orders by time, longitude, latitude, then seq (qsort comparator). */
static inline int taxi_fix_cmp(const void *pa, const void *pb)
{
    const taxi_fix *a = pa, *b = pb;
    if (a->time_ms != b->time_ms) return a->time_ms < b->time_ms ? -1 : 1;
    if (a->lon != b->lon) return a->lon < b->lon ? -1 : 1;
    if (a->lat != b->lat) return a->lat < b->lat ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/* taxi_track_km sorts the n fixes in place (taxi_fix_cmp) and returns the distance along
 * them in km (0 for n < 2). */
static inline double taxi_track_km(taxi_fix *fix, size_t n)
{
    double km = 0.0;
    qsort(fix, n, sizeof *fix, taxi_fix_cmp);
    for (size_t i = 1; i < n; i++)
        km += taxi_haversine_km(fix[i - 1].lon, fix[i - 1].lat, fix[i].lon, fix[i].lat);
    return km;
}

#endif /* EMBER_EXAMPLES_TAXI_TRACK_H */
