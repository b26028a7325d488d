#!/usr/bin/env bash
# test_stream_windows.sh -- event-time windows in a streaming query, through failures
# (tests/jobs/stream_window.c: lines "key,event_ms,amount" summed per key over 60 s windows
# sliding every 20 s, watermark 60 s behind the largest event time, each final window a line
# "key,start,total"):
#   1. kill -9 of an executor between batches: the windows' state is read back from the
#      checkpoint by the executors left;
#   2. kill -9 of the driver and its executors while a batch runs: a new cluster runs that
#      batch again with its logged watermark, on the state as it was before it;
#   3. records behind the watermark are counted as late (status, metrics, the client) and sent
#      to a dead-letter topic as the window received them, never folded in; malformed lines
#      are dropped;
#   4. an idle topic still closes the windows its watermark passed (no-data batches).
# Then the output holds every final window exactly once with its exact total, against awk's
# sums over the produced lines.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

LENGTH=60000 SLIDE=20000 DELAY=60000
start_kafka taxis:3 late:1
cluster_up
OUT=$T/out CK=$T/checkpoint
: >"$T/produced"

# produce_round R: 300 lines with event times in [R * 60 s, (R + 1) * 60 s), keys k0..k4, and
# two malformed lines. Each round's times are later than the watermark any earlier round can
# make (the delay is a round long), so none of them is late, however batches cut them.
produce_round() {
    awk -v r="$1" 'BEGIN { for (i = 0; i < 300; i++)
        printf "k%d,%d,%d\n", i % 5, r * 60000 + i * 200, (i * 7 + r) % 100 + 1
        print "garbage line"; print "k1,notanumber,3" }' | tee -a "$T/produced" |
        "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic taxis >/dev/null
}
run_query() {
    "$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/stream_window.so" -- --topic taxis \
        --name windows --checkpoint "$CK" --out "$OUT" --interval-ms 50 --earliest \
        --length $LENGTH --slide $SLIDE --delay $DELAY --partitions 3 --hold-file "$T/hold" \
        --late-topic late \
        >>"$T/query.out" 2>>"$T/query.err" &
    QUERY_PID=$!
}
query_doc() { api /api/v1/streaming/queries | jq '.[] | select(.name == "windows")'; }

for r in 0 1 2; do produce_round $r; done
run_query
wait_committed 1
wait_api /api/v1/streaming/queries '.[0].windows == true and .[0].watermark_ms != null' 30
echo "ok: the query runs with a watermark ($(query_doc | jq .watermark_ms) ms)"

# ---- 1. an executor killed: its cached state is gone, the checkpoint's is not ----------------
before=$(committed)
kill -9 "$ex1_PID"
start_executor ex3 --slots 2
produce_round 3
produce_round 4
# every line of rounds 0..4 (302 each) read by committed batches, one at least after the kill
wait_committed $((before + 1))
wait_api /api/v1/streaming/queries '.[0].records_in == 1510' 60
echo "ok: batches go on after an executor was killed ($(committed) committed)"

# ---- 2. the driver and its executors killed while a batch runs ---------------------------------
planned() { ls "$CK/offsets" | grep -c '^[0-9]*$' || true; }
touch "$T/hold"
produce_round 5
wait_until 30 bash -c "[ \$(ls '$CK/offsets' | grep -c '^[0-9]*\$') -gt \$(ls '$CK/commits' | grep -c '^[0-9]*\$') ]"
running=$(($(planned) - 1))
wait_api /api/v1/streaming/queries ".[0].phase == \"running\" and .[0].batch == $running" 30
kill -9 "$DRIVER_PID" "$ex2_PID" "$ex3_PID"
wait "$QUERY_PID" 2>/dev/null || true
rm "$T/hold"
mv "$T/driver.log" "$T/driver-1.log"
cluster_up
run_query
wait_committed $((running + 1))
grep -q "query resumed query=1 name=windows batch=$running" "$T/driver.log" ||
    fail "the new driver did not resume the query at batch $running"
echo "ok: a new driver ran batch $running again"

# ---- 3. late records: behind a watermark past their windows ----------------------------------
produce_round 6
# the largest event time is 6 * 60 s + 299 * 200 ms: the watermark ends a delay behind it
max_event=$((6 * 60000 + 299 * 200))
final_wm=$((max_event - DELAY))
wait_api /api/v1/streaming/queries ".[0].watermark_ms == $final_wm" 60
awk 'BEGIN { for (i = 0; i < 10; i++) printf "k%d,%d,1000\n", i % 5, i * 100 }' |
    tee "$T/late" | "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic taxis >/dev/null
wait_api /api/v1/streaming/queries '.[0].late_records == 10' 60
# the late topic holds them as the window received them: key = the item, value = the amount
"$EMBER_BIN/ember-topic" dump --bootstrap "$KAFKA" --topic late | cut -f3 | sort >"$T/late.got"
cut -d, -f1 "$T/late" | sort | cmp -s - "$T/late.got" || fail "the late topic's keys: $(tr '\n' ' ' <"$T/late.got")"
echo "ok: 10 records behind the watermark counted as late, and sent to the late topic"
curl -sf --max-time 5 "$STATUS/metrics" >"$T/metrics"
promtool check metrics <"$T/metrics" >/dev/null 2>&1 ||
    fail "/metrics fails promtool: $(promtool check metrics <"$T/metrics" 2>&1 | head -5)"
grep -q '^ember_streaming_late_records_total{query="windows"} 10$' "$T/metrics" ||
    fail "late records in /metrics: $(grep late_records "$T/metrics")"
grep -q "^ember_streaming_watermark_seconds{query=\"windows\"} $((final_wm / 1000))\\.800$" "$T/metrics" ||
    fail "watermark in /metrics: $(grep watermark "$T/metrics")"
echo "ok: /metrics shows the watermark and the late records"

# ---- 4. every final window exactly once --------------------------------------------------------
# awk's reference: each well-formed, not late line adds its amount to every window holding it
# ([s, s + 60 s), s a multiple of 20 s) that ends at or before the final watermark
awk -F, -v L=$LENGTH -v S=$SLIDE -v W=$final_wm '
    NF == 3 && $2 ~ /^[0-9]+$/ {
        first = int($2 / S) * S
        for (s = first - L + S; s <= first; s += S) if (s + L <= W) sum[$1 "," s] += $3
    }
    END { for (k in sum) print k "," sum[k] }' "$T/produced" | LC_ALL=C sort >"$T/want"
want=$(wc -l <"$T/want")
wait_until 60 bash -c "[ \$(cat '$OUT'/batch-*/part-* 2>/dev/null | wc -l) -ge $want ]"
"$EMBER_BIN/ember-submit" --driver "$DRIVER" --stop windows >"$T/stop.out" 2>&1 ||
    fail "ember-submit --stop failed: $(cat "$T/stop.out")"
wait "$QUERY_PID" || fail "the query's ember-submit failed: $(tail -3 "$T/query.err")"
expect_contains "$(tail -1 "$T/query.out")" "watermark $final_wm, 10 late" \
    "the client saw the watermark and the late records"
cat "$OUT"/batch-*/part-* | LC_ALL=C sort >"$T/got"
cmp -s "$T/want" "$T/got" || {
    echo "missing: $(comm -23 "$T/want" "$T/got" | wc -l), extra or repeated: $(comm -13 "$T/want" "$T/got" | wc -l)"
    diff "$T/want" "$T/got" | head
    fail "the output does not hold each final window exactly once with its total"
}
echo "ok: $want final windows, each exactly once with its exact total"
echo "PASS"
