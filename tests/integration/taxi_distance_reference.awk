# taxi_distance_reference.awk -- an independent reference for examples/taxi_distance.c.
#
# Written apart from the job (awk, no shared code), in two passes around `sort`:
#
#   awk -v MODE=points -v MALFORMED=FILE -f taxi_distance_reference.awk LINES |
#       LC_ALL=C sort -t, -k1,1 -k2,2 |
#       awk -v MODE=sum -v SUMMARY=FILE -f taxi_distance_reference.awk
#
# MODE=points prints the well-formed lines unchanged and writes the number of malformed ones
# to MALFORMED. Well formed: four fields; an id of 1..32 of [A-Za-z0-9_-]; a valid
# "YYYY-MM-DD HH:MM:SS" (month 1..12, day within the month, February up to 29); coordinates
# -?digits[.digits], longitude within [-180, 180], latitude within [-90, 90].
#
# sort groups the lines by taxi and orders each taxi's by time: the fixed-width timestamp
# orders bytewise as it orders in time.
#
# MODE=sum orders the points of one taxi that share a time by (longitude, latitude), as
# numbers, and sums the haversine distances between consecutive points (R = 6371.0 km, angles
# times pi/180, the formula evaluated in the order the job documents). It prints
# "taxi_id,km" with km as %.6f, one line per taxi in bytewise id order, and writes
# "taxis N", "total KM" (the taxis' distances summed in that order, %.6f) to SUMMARY.
function valid_time(t,    m, d, md) {
    if (t !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]$/) return 0
    m = substr(t, 6, 2) + 0
    d = substr(t, 9, 2) + 0
    split("31 29 31 30 31 30 31 31 30 31 30 31", md, " ")
    return m >= 1 && m <= 12 && d >= 1 && d <= md[m] && substr(t, 12, 2) + 0 <= 23 &&
           substr(t, 15, 2) + 0 <= 59 && substr(t, 18, 2) + 0 <= 59
}
function plain_decimal(s) { return s ~ /^-?[0-9]+(\.[0-9]+)?$/ }
function well_formed() {
    return NF == 4 && length($1) >= 1 && length($1) <= 32 && $1 ~ /^[A-Za-z0-9_-]+$/ &&
           valid_time($2) && plain_decimal($3) && plain_decimal($4) &&
           $3 + 0 >= -180 && $3 + 0 <= 180 && $4 + 0 >= -90 && $4 + 0 <= 90
}
function haversine(lon1, lat1, lon2, lat2,    phi1, phi2, dphi, dlambda, s1, s2, a) {
    phi1 = lat1 * RAD
    phi2 = lat2 * RAD
    dphi = (lat2 - lat1) * RAD
    dlambda = (lon2 - lon1) * RAD
    s1 = sin(dphi / 2)
    s2 = sin(dlambda / 2)
    a = s1 * s1 + cos(phi1) * cos(phi2) * s2 * s2
    return 2 * 6371.0 * atan2(sqrt(a), sqrt(1 - a))
}
# flush_tie: the points of taxi `id` at one time (tie_n of them, in tie_lon/tie_lat), ordered
# by (lon, lat) with an insertion sort, added to the taxi's track
function flush_tie(    i, j, lo, la) {
    for (i = 2; i <= tie_n; i++) {
        lo = tie_lon[i]; la = tie_lat[i]
        for (j = i - 1; j >= 1 && (tie_lon[j] > lo || (tie_lon[j] == lo && tie_lat[j] > la)); j--) {
            tie_lon[j + 1] = tie_lon[j]; tie_lat[j + 1] = tie_lat[j]
        }
        tie_lon[j + 1] = lo; tie_lat[j + 1] = la
    }
    for (i = 1; i <= tie_n; i++) {
        if (have_prev) km += haversine(prev_lon, prev_lat, tie_lon[i], tie_lat[i])
        prev_lon = tie_lon[i]; prev_lat = tie_lat[i]; have_prev = 1
    }
    tie_n = 0
}
function flush_taxi() {
    flush_tie()
    if (id == "") return
    printf "%s,%.6f\n", id, km
    total += km
    taxis++
}
BEGIN {
    FS = ","
    RAD = atan2(0, -1) / 180
    if (MODE != "points" && MODE != "sum") { print "taxi_distance_reference.awk: MODE=points or MODE=sum" > "/dev/stderr"; exit 2 }
}
MODE == "points" { if (well_formed()) print; else malformed++; next }
MODE == "sum" {
    if ($1 != id) { flush_taxi(); id = $1; km = 0; have_prev = 0; time = "" }
    if ($2 != time) { flush_tie(); time = $2 }
    tie_n++
    tie_lon[tie_n] = $3 + 0
    tie_lat[tie_n] = $4 + 0
}
END {
    if (MODE == "points") print malformed + 0 > MALFORMED
    if (MODE == "sum") {
        flush_taxi()
        printf "taxis %d\ntotal %.6f\n", taxis, total > SUMMARY
    }
}
