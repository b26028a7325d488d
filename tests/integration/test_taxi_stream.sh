#!/usr/bin/env bash
# test_taxi_stream.sh -- examples/taxi_stream.c, the classic taxi pipeline as streaming
# queries: 4,000 taxi-data lines of 12 taxis (every 40th malformed) keyed by taxi id, read in
# batches of at most 150 records, so each window's state spans many batches:
#   - taxi-distance: every final 5-minute window sliding every minute, per taxi, equals an
#     independent awk reference (haversine over the taxi's points in time order, to 1e-6 km),
#     each window exactly once;
#   - taxi-alerts: one alert per well-formed point outside the bounding box, and one per point
#     reached faster than 2,000 km/h from the taxi's previous point, in any earlier batch (its
#     keyed state), both against awk, line for line (position to 5 decimals, speed in km/h);
#   - taxi-dead-letter: every malformed line, unchanged.
# The query's status shows the final watermark (the last point's time: no delay) and no late
# points (the producer writes in event-time order, one partition). Half the lines are produced
# before the job starts and half after an executor is killed with -9 (a new one joins), so
# the exact results hold through its loss.
# With TAXI_RUN=flow (test_taxi_flow.sh) the pipeline is the workflow examples/flows/taxi.json
# run by ember-flow with its function library (taxi_flow.so) in place of the C job, with the
# C job's options (window, slide, delay, speed limit, batch size) set in a copy of the document:
# the same input, the same references, the same kill -9.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_kafka taxi:1 taxi-distance:2 taxi-alerts:2 taxi-dead-letter:1
cluster_up
start_redis

"$EMBER_BIN/taxi-data" --lines 4000 --taxis 12 --seed 5 --malformed-every 40 >"$T/lines.txt"
produce_lines() { # FIRST LAST: lines FIRST..LAST, keyed by taxi id
    sed -n "$1,$2p" "$T/lines.txt" | awk '{ split($0, f, ","); print f[1] "\t" $0 }' |
        "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic taxi --key-sep '\t' >/dev/null
}
produce_lines 1 2000

if [ "${TAXI_RUN:-c}" = flow ]; then
    jq '.interval_ms = 50 | (.nodes[] | select(.id == "in")).max_per_partition = 150
        | (.nodes[] | select(.id == "windows")).window = {"time": "time", "length_s": 300, "slide_s": 60, "delay_s": 0}
        | (.nodes[] | select(.id == "watch")).rules[1].when = "kmh > 2000"' \
        "$EMBER_SRC/examples/flows/taxi.json" >"$T/taxi.json"
    # the functions it names are checked against the library before it runs
    validate() { "$EMBER_BIN/ember-flow" --validate "$1" --checkpoint "$T/ck" --library "$EMBER_JOBS/taxi_flow.so" 2>&1; }
    validate "$T/taxi.json" >/dev/null || fail "taxi.json is not valid with taxi_flow.so: $(validate "$T/taxi.json")"
    jq '(.nodes[] | select(.id == "hops")).function.name = "taxi_hopp"' "$T/taxi.json" >"$T/bad1.json"
    jq '(.nodes[] | select(.id == "windows")).function.returns[1].type = "double"' "$T/taxi.json" >"$T/bad2.json"
    if validate "$T/bad1.json" >/dev/null || validate "$T/bad2.json" >/dev/null; then fail "--validate --library accepted a bad function"; fi
    expect_contains "$(validate "$T/bad1.json")" "node 'hops' (aggregate): function 'taxi_hopp' is not in the job library" \
        "--validate --library: a function the library lacks"
    expect_contains "$(validate "$T/bad2.json")" "function 'taxi_track' returns (double,int), the flow says (double,double)" \
        "--validate --library: a function's types"
    EMBER_REDIS=127.0.0.1:$RPORT "$EMBER_BIN/ember-flow" run "$T/taxi.json" --checkpoint "$T/ck" \
        --library "$EMBER_JOBS/taxi_flow.so" --driver "$DRIVER" >"$T/job.out" 2>"$T/job.err" &
else
    "$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/taxi_stream.so" -- --earliest \
        --interval-ms 50 --max-per-batch 150 --window-min 5 --slide-s 60 --delay-s 0 \
        --max-kmh 2000 --checkpoint "$T/ck" --redis "127.0.0.1:$RPORT" >"$T/job.out" 2>"$T/job.err" &
fi
JOB_PID=$!

# ---- the reference ---------------------------------------------------------------------------
awk -v MODE=points -v MALFORMED="$T/malformed.count" -f "$EMBER_SRC/tests/integration/taxi_distance_reference.awk" \
    "$T/lines.txt" >"$T/good.txt"
last=$(tail -1 "$T/good.txt" | cut -d, -f2)
final_wm=$(TZ=UTC awk -v t="$last" 'BEGIN { gsub(/[-:]/, " ", t); printf "%.0f\n", mktime(t) * 1000 }')
# every window [s, s + 300 s), s a multiple of 60 s, that ends at or before the final watermark:
# the haversine distance along each taxi's points in it, in time order
TZ=UTC awk -F, -v W=$((final_wm / 1000)) '
    function hav(lon1, lat1, lon2, lat2,    dphi, dl, a) {
        dphi = (lat2 - lat1) * RAD; dl = (lon2 - lon1) * RAD
        a = sin(dphi / 2) ^ 2 + cos(lat1 * RAD) * cos(lat2 * RAD) * sin(dl / 2) ^ 2
        return 2 * 6371.0 * atan2(sqrt(a), sqrt(1 - a))
    }
    BEGIN { RAD = atan2(0, -1) / 180; L = 300; S = 60 }
    {
        t = $2; gsub(/[-:]/, " ", t); t = mktime(t)
        first = int(t / S) * S
        for (s = first - L + S; s <= first; s += S) {
            if (s + L > W) continue
            k = $1 SUBSEP s
            if (k in n) km[k] += hav(lon[k], lat[k], $3, $4)
            else km[k] = 0
            n[k]++; lon[k] = $3; lat[k] = $4
        }
    }
    END {
        for (k in n) {
            split(k, p, SUBSEP)
            printf "%s,%s,%s,%.6f,%d\n", p[1], strftime("%Y-%m-%d %H:%M:%S", p[2], 1),
                strftime("%Y-%m-%d %H:%M:%S", p[2] + L, 1), km[k], n[k]
        }
    }' "$T/good.txt" | LC_ALL=C sort >"$T/want_windows"
want_windows=$(wc -l <"$T/want_windows")
# alerts, as the job writes them: "taxi,time,LON,LAT,outside" for points outside the box,
# "taxi,time,LON,LAT,speed=KMH" for points reached faster than 2,000 km/h from the taxi's
# previous point
TZ=UTC awk -F, '
    function hav(lon1, lat1, lon2, lat2,    dphi, dl, a) {
        dphi = (lat2 - lat1) * RAD; dl = (lon2 - lon1) * RAD
        a = sin(dphi / 2) ^ 2 + cos(lat1 * RAD) * cos(lat2 * RAD) * sin(dl / 2) ^ 2
        return 2 * 6371.0 * atan2(sqrt(a), sqrt(1 - a))
    }
    BEGIN { RAD = atan2(0, -1) / 180 }
    {
        at = sprintf("%s,%s,%.5f,%.5f,", $1, $2, $3, $4)
        if ($3 < 116.1 || $3 > 116.7 || $4 < 39.7 || $4 > 40.1) print at "outside"
        t = $2; gsub(/[-:]/, " ", t); t = mktime(t) * 1000
        if (($1 in last) && t > last[$1] && (kmh = hav(lon[$1], lat[$1], $3, $4) / ((t - last[$1]) / 3600000)) > 2000)
            printf "%sspeed=%.0f\n", at, kmh
        last[$1] = t; lon[$1] = $3; lat[$1] = $4
    }' "$T/good.txt" | LC_ALL=C sort >"$T/want_alerts"
want_alerts=$(wc -l <"$T/want_alerts")
want_dead=$(cat "$T/malformed.count")
[ "$want_windows" -gt 500 ] && [ "$(grep -c ',speed=' "$T/want_alerts")" -gt 50 ] &&
    [ "$(grep -c ',outside$' "$T/want_alerts")" -gt 50 ] && [ "$want_dead" -gt 50 ] ||
    fail "the reference is too thin: $want_windows windows, $want_alerts alerts, $want_dead malformed"

topic_count() { "$EMBER_BIN/ember-topic" offsets --bootstrap "$KAFKA" --topic "$1" | awk '$1 == "total" {print $2}'; }
# an executor is killed once the first windows are out; a new one joins; the rest is produced
wait_until 60 bash -c "[ \"\$(\"$EMBER_BIN/ember-topic\" offsets --bootstrap $KAFKA --topic taxi-distance | awk '\$1 == \"total\" {print \$2}')\" -ge 50 ]"
kill -9 "$ex1_PID"
start_executor ex3 --slots 2
produce_lines 2001 "$(wc -l <"$T/lines.txt")"
wait_until 120 bash -c "[ \"\$(\"$EMBER_BIN/ember-topic\" offsets --bootstrap $KAFKA --topic taxi-distance | awk '\$1 == \"total\" {print \$2}')\" -ge $want_windows ]"
wait_api /api/v1/streaming/queries "[.[] | select(.name == \"taxi-distance\")][0] | .watermark_ms == $final_wm and .late_records == 0" 30
# every query has read every line (its status says so if it has not: a slow or a stuck one)
total=$(wc -l <"$T/lines.txt")
for q in taxi-dead-letter taxi-alerts; do
    wait_api /api/v1/streaming/queries "[.[] | select(.name == \"$q\")][0] | .records_in >= $total and .phase == \"idle\"" 120
done
wait_until 30 bash -c "[ \"\$(\"$EMBER_BIN/ember-topic\" offsets --bootstrap $KAFKA --topic taxi-dead-letter | awk '\$1 == \"total\" {print \$2}')\" -ge $want_dead ]"
wait_until 30 bash -c "[ \"\$(\"$EMBER_BIN/ember-topic\" offsets --bootstrap $KAFKA --topic taxi-alerts | awk '\$1 == \"total\" {print \$2}')\" -ge $want_alerts ]"
batches=$(api /api/v1/streaming/queries | jq '[.[] | select(.name == "taxi-distance")][0].batches')
[ "$batches" -gt 20 ] || fail "the windows' state spanned only $batches batches"
# the Redis queries read the same lines: each caught up before the job is stopped
wait_api /api/v1/streaming/queries "[.[] | select(.name == \"taxi-distance-now\")][0] | .watermark_ms == $final_wm and .phase == \"idle\"" 60
wait_api /api/v1/streaming/queries "[.[] | select(.name == \"taxi-points\")][0] | .records_in >= $total and .phase == \"idle\"" 60
if [ "${TAXI_RUN:-c}" = flow ]; then
    stop_and_wait ember-flow taxi-distance
    expect_contains "$(cat "$T/job.out")" "flow taxi: its queries stopped" "the flow's closing line"
else
    stop_and_wait ember-submit taxi-distance
    expect_contains "$(cat "$T/job.err")" "watermark $final_wm, 0 late" "the job's summary"
fi

# ---- every window exactly once, to 1e-6 km ------------------------------------------------------
"$EMBER_BIN/ember-topic" dump --bootstrap "$KAFKA" --topic taxi-distance | cut -f4 |
    LC_ALL=C sort >"$T/got_windows"
expect_eq "$(wc -l <"$T/got_windows")" "$want_windows" "windows written"
LC_ALL=C join -t '|' <(awk -F, '{print $1 "," $2 "|" $0}' "$T/want_windows") \
    <(awk -F, '{print $1 "," $2 "|" $0}' "$T/got_windows") |
    awk -F'|' '{ split($2, w, ","); split($3, g, ",")
        d = w[4] - g[4]; if (d < 0) d = -d
        if (d > 1e-6 || w[3] != g[3] || w[5] != g[5]) { print "differs: " $2 " / " $3; bad++ } }
        END { exit bad > 0 }' | head -5 && ok=1 || ok=0
[ "$ok" = 1 ] || fail "window results differ from the reference"
expect_eq "$(LC_ALL=C join -t '|' <(awk -F, '{print $1 "," $2 "|"}' "$T/want_windows") \
    <(awk -F, '{print $1 "," $2 "|"}' "$T/got_windows") | wc -l)" "$want_windows" "windows matched by taxi and start"
echo "ok: $want_windows final windows, each once, equal to the reference"

# ---- alerts and dead letters ------------------------------------------------------------------------
expect_eq "$(topic_count taxi-alerts)" "$want_alerts" "alerts (outside the box, too fast)"
"$EMBER_BIN/ember-topic" dump --bootstrap "$KAFKA" --topic taxi-alerts | cut -f4 |
    LC_ALL=C sort >"$T/got_alerts"
cmp -s "$T/want_alerts" "$T/got_alerts" || {
    diff "$T/want_alerts" "$T/got_alerts" | head
    fail "alerts differ from the reference"
}
echo "ok: $(grep -c ',speed=' "$T/want_alerts") speed alerts across batches and $(grep -c ',outside$' "$T/want_alerts") outside the box"
expect_eq "$(topic_count taxi-dead-letter)" "$want_dead" "dead letters (malformed lines)"
"$EMBER_BIN/ember-topic" dump --bootstrap "$KAFKA" --topic taxi-dead-letter | cut -f4 |
    LC_ALL=C sort >"$T/got_dead"
cmp -s "$T/got_dead" <(LC_ALL=C comm -23 <(LC_ALL=C sort "$T/lines.txt") <(LC_ALL=C sort "$T/good.txt")) ||
    fail "the dead letters are not the malformed lines, unchanged"

# ---- Redis: every point under its row key, each taxi's latest final window -------------------
expect_eq "$(rcli --scan --pattern '*|*' | wc -l)" "$(wc -l <"$T/good.txt")" "points in Redis"
awk -F, 'NR % 97 == 1 { printf "%s|%s\t%.5f\t%.5f\n", $1, $2, $3, $4 }' "$T/good.txt" >"$T/some_points"
checked=0
while IFS=$'\t' read -r row lon lat; do
    [ "$(rcli hget "$row" lon)" = "$lon" ] && [ "$(rcli hget "$row" lat)" = "$lat" ] ||
        fail "point $row in Redis: $(rcli hgetall "$row" | paste -sd,), expected lon $lon lat $lat"
    checked=$((checked + 1))
done <"$T/some_points"
[ "$checked" -gt 30 ] || fail "only $checked points checked"
# each taxi's latest final window (the last start in the sorted reference), to 1e-6 km
awk -F, '{ last[$1] = $4 } END { for (t in last) print t, last[t] }' "$T/want_windows" | sort >"$T/want_now"
while read -r taxi km; do
    got=$(rcli get "distance:$taxi")
    awk -v a="$got" -v b="$km" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= 1e-6) }' ||
        fail "distance:$taxi in Redis is '$got', the latest window says $km"
done <"$T/want_now"
echo "ok: $(wc -l <"$T/good.txt") points and $(wc -l <"$T/want_now") current distances in Redis"
echo "PASS"
