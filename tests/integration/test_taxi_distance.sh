#!/usr/bin/env bash
# test_taxi_distance.sh -- group_by_key end to end: examples/taxi_distance.c (distance per
# taxi) on ember-kafka, a driver and two executors. 20,000 taxi-data lines of 50 taxis, plus
# points that share a taxi and a time with another (moved, or repeated) and hand-written odd
# lines (malformed ones, a one-point taxi, negative coordinates, long decimals), go to a
# 6-partition topic, and reversed to a 3-partition one. Every per-taxi distance (6 decimals),
# the number of taxis, the total, the malformed count and the top 5 must equal the
# independent awk reference (taxi_distance_reference.awk), in the Kafka output topic, in the
# text files and on stdout, with 8, 1 and 3 reduce partitions and from the reversed topic:
# the job orders a taxi's points by (time, lon, lat), so how lines were spread over Kafka
# partitions cannot change a result, even for points at the same time.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_kafka taxi:6 taxi-rev:3 taxi-distance:4 distance-1:1 distance-3:2 distance-rev:3
start_driver
start_executor ex1 --slots 2
start_executor ex2 --slots 2
wait_executors 2

"$EMBER_BIN/taxi-data" --lines 20000 --taxis 50 --seed 7 >"$T/base.txt"
# every 50th line again at the same time: moved in longitude, moved in latitude, unchanged
awk -F, 'NR % 50 == 0 && NF == 4 && $3 ~ /^[0-9.]+$/ && $4 ~ /^[0-9.]+$/ {
        printf "%s,%s,%.5f,%s\n", $1, $2, $3 + 0.001, $4
        printf "%s,%s,%s,%.5f\n", $1, $2, $3, $4 - 0.0005
        print }' "$T/base.txt" >"$T/ties.txt"
cat >"$T/odd.txt" <<'EOF'
T0001,2026-02-30 00:00:00,116.1,39.9
T0001,2026-03-01 00:00:00,116.,39.9
T0001,2026-03-01 00:00:00,116.1,91.0
T@01,2026-03-01 00:00:00,116.1,39.9
,2026-03-01 00:00:00,116.1,39.9
T00000000000000000000000000000001,2026-03-01 00:00:00,116.1,39.9
T0001,2026-03-01 00:00:00,+116.1,39.9
T0001,2026-03-01 00:00:00,1e2,39.9
T0001,2026-03-01 0:00:00,116.1,39.9
T9999,2026-03-02 00:00:00,116.1,39.9
T-neg_1,2026-03-01 00:00:00,-0.5,-45.25
T-neg_1,2026-03-01 00:00:10,-1.25,-45.5
T-neg_1,2026-03-01 00:00:05,180,-90
Tabcdefghijklmnopqrstuvwxyz01234,2026-03-01 00:00:00,116.123456789012345678,40
Tabcdefghijklmnopqrstuvwxyz01234,2026-03-01 00:00:01,116,39.99999999999
EOF
cat "$T/base.txt" "$T/ties.txt" "$T/odd.txt" >"$T/taxi.txt"
n_lines=$(wc -l <"$T/taxi.txt")
tac "$T/taxi.txt" >"$T/taxi-rev.txt"
"$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic taxi <"$T/taxi.txt" >/dev/null
"$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic taxi-rev <"$T/taxi-rev.txt" >/dev/null
for topic in taxi taxi-rev; do
    expect_eq "$("$EMBER_BIN/ember-topic" offsets --bootstrap "$KAFKA" --topic "$topic" | awk '$1 == "total" {print $2}')" \
        "$n_lines" "records kept by the broker in $topic"
done

ref=$EMBER_SRC/tests/integration/taxi_distance_reference.awk
awk -v MODE=points -v MALFORMED="$T/want.malformed" -f "$ref" "$T/taxi.txt" |
    LC_ALL=C sort -t, -k1,1 -k2,2 | awk -v MODE=sum -v SUMMARY="$T/want.summary" -f "$ref" >"$T/want.km"
want_taxis=$(awk '$1 == "taxis" {print $2}' "$T/want.summary")
want_total=$(awk '$1 == "total" {print $2}' "$T/want.summary")
want_malformed=$(cat "$T/want.malformed")
[ "$want_taxis" = 53 ] && [ "$want_malformed" -gt 200 ] || fail "reference: $want_taxis taxis, $want_malformed malformed lines"
LC_ALL=C sort -t, -k2,2gr -k1,1 "$T/want.km" | head -5 >"$T/want.top"
echo "reference: $want_taxis taxis, $want_total km, $want_malformed malformed lines"

# run_job NAME IN_TOPIC PARTITIONS: taxi_distance from IN_TOPIC into topic distance-NAME (or
# taxi-distance for NAME 8) and $T/out-NAME, checked against the reference
run_job() {
    local name=$1 in=$2 parts=$3 out=distance-$1
    [ "$name" = 8 ] && out=taxi-distance
    submit "$EMBER_JOBS/taxi_distance.so" -- --in "$in" --out "$out" --dir "$T/out-$name" --partitions "$parts" ||
        fail "taxi_distance $name: $(cat "$T/submit.out" "$T/submit.err" | tail -5)"
    cat "$T/submit.out"
    expect_contains "$(cat "$T/submit.out")" \
        "taxi_distance: $want_taxis taxis, $want_total km in all, $want_malformed malformed lines skipped" \
        "summary of run $name ($parts reduce partitions, from $in)"
    awk '$1 ~ /^[0-9]+\.$/ {print $2 "," $3}' "$T/submit.out" >"$T/got.top"
    cmp -s "$T/got.top" "$T/want.top" || { diff "$T/got.top" "$T/want.top"; fail "top 5 of run $name"; }
    echo "ok: top 5 of run $name"

    "$EMBER_BIN/ember-topic" dump --bootstrap "$KAFKA" --topic "$out" | cut -f3- | tr '\t' , |
        LC_ALL=C sort >"$T/got-kafka-$name.km"
    cmp -s "$T/got-kafka-$name.km" "$T/want.km" ||
        { diff "$T/got-kafka-$name.km" "$T/want.km" | head; fail "records in topic $out (run $name)"; }
    echo "ok: topic $out holds the $want_taxis distances of the reference, once each"

    expect_eq "$(ls "$T/out-$name" | wc -l)" "$parts" "files written by run $name"
    cat "$T/out-$name"/part-* | LC_ALL=C sort >"$T/got-text-$name.km"
    cmp -s "$T/got-text-$name.km" "$T/want.km" ||
        { diff "$T/got-text-$name.km" "$T/want.km" | head; fail "text files of run $name"; }
    echo "ok: text files of run $name equal the reference"
}

run_job 8 taxi 8
run_job 1 taxi 1
run_job 3 taxi 3
run_job rev taxi-rev 3
wait_jobs_logged

# the first run's distances job: a Kafka stage of 6 tasks, then 8 group_by_key tasks
job=$(api /api/v1/jobs | jq '[.[] | select(.name == "taxi_distance: distances")] | min_by(.id)')
expect_eq "$(jq -r .state <<<"$job")" succeeded "state of the first distances job"
expect_eq "$(jq -c '[.stages[] | {source, tasks, parents: (.parents | length)}]' <<<"$job")" \
    '[{"source":"kafka","tasks":6,"parents":0},{"source":"group_by_key","tasks":8,"parents":1}]' \
    "stages of the distances job"
expect_eq "$(api /api/v1/executors | jq '[.[] | select(.tasks_completed > 0)] | length')" 2 "executors that ran tasks"

# ember's own Kafka fetcher read every partition of 1,000 records or more (each at least once,
# in the four runs), librdkafka none of it: the executors' counters, on the JSON API (they come
# with the next heartbeat) and in /metrics
big=$("$EMBER_BIN/ember-topic" offsets --bootstrap "$KAFKA" --topic taxi |
    awk '$1 != "total" && $3 - $2 >= 1000 { n += $3 - $2 } END { print n + 0 }')
[ "$big" -gt 0 ] || fail "no partition of topic taxi holds 1,000 records"
want=">= $big"
[ "${EMBER_KAFKA_FETCH:-}" = librdkafka ] && want="== 0" big=0 # the fetcher turned off
wait_api /api/v1/executors "([.[].kafka_fetched_records] | add) $want" 20
fetched=$(api /api/v1/executors | jq '[.[].kafka_fetched_records] | add')
expect_eq "$(api /api/v1/executors | jq '[.[].kafka_fetch_fallbacks] | add')" 0 "fetches handed to librdkafka"
curl -sf --max-time 5 "$STATUS/metrics" >"$T/metrics"
metric_sum() { awk -v m="$1" 'index($0, m "{") == 1 { n += $2 } END { print n + 0 }' "$T/metrics"; }
[ "$(metric_sum ember_executor_kafka_fetched_records_total)" -ge "$big" ] ||
    fail "/metrics: ember_executor_kafka_fetched_records_total $(metric_sum ember_executor_kafka_fetched_records_total) < $big"
expect_eq "$(metric_sum ember_executor_kafka_fetch_fallbacks_total)" 0 "/metrics fetch fallbacks"
echo "ok: ember's fetcher read $fetched records (the partitions of 1,000 or more: $big), no fallback to librdkafka"
echo "PASS test_taxi_distance"
