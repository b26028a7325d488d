#!/usr/bin/env bash
# test_streaming.sh -- a streaming query while a producer writes, through failures
# (tests/jobs/stream_copy.c: the lines of topic `events` upper-cased, those holding "skip"
# dropped, a directory per batch; at most 100 records per partition per batch, so the stream
# takes many batches):
#   1. kill -9 of an executor mid-stream, a new one joining: the batches go on;
#   2. kill -9 of the submitter (client mode): the query stops with it; the same command
#      resumes it from its checkpoint;
#   3. kill -9 of the driver and its executors: a new cluster and the same command resume it,
#      a batch that was running then runs again with its logged offsets;
#   4. ember-submit --stop ends it once its running batch is committed.
# Then the batch directories hold every expected line exactly once: the produced lines,
# filtered and upper-cased by awk, compared sorted, duplicates included. A checkpoint of
# another query, or of another graph, is refused saying so.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_kafka events:4 fresh:2
cluster_up
OUT=$T/out CK=$T/checkpoint
: >"$T/produced"

# run_query [ARGS]: the query in client mode, in the background (QUERY_PID)
run_query() {
    "$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/stream_copy.so" -- --topic events \
        --name copy --checkpoint "$CK" --out "$OUT" --interval-ms 50 --max-per-partition 100 \
        --earliest --hold-file "$T/hold" "$@" >>"$T/query.out" 2>>"$T/query.err" &
    QUERY_PID=$!
}
out_lines() { cat "$OUT"/batch-*/part-* 2>/dev/null | wc -l; }
expected_lines() { awk '!/skip/' "$T/produced" | wc -l; }
wait_all_out() {
    local want
    want=$(expected_lines)
    wait_until 90 bash -c "[ \$(cat '$OUT'/batch-*/part-* 2>/dev/null | wc -l) -ge $want ]"
}

produce_events 0 3000
run_query
wait_committed 3
echo "ok: the query committed $(committed) batches"

# ---- 1. an executor killed mid-stream --------------------------------------------------------
produce_events 3000 1500
kill -9 "$ex1_PID"
after_kill=$(committed)
start_executor ex3 --slots 2
# events produced after the kill are read by batches committed after it (half before, half
# after: how far the query got before the kill depends on the machine's speed)
produce_events 4500 1500
wait_committed $((after_kill + 1))
wait_api /api/v1/streaming/queries '.[0].records_in == 6000' 60
echo "ok: batches go on after an executor was killed ($(committed) committed, every event read)"

# ---- the status endpoint follows the query ------------------------------------------------------
wait_api /api/v1/streaming/queries \
    '.[0].name == "copy" and .[0].state == "running" and .[0].batches > 0 and .[0].detached == false' 10
qid=$(api /api/v1/streaming/queries | jq '.[0].id')
api "/api/v1/streaming/queries/$qid" | jq -e '.topic == "events" and .sink_kind == "files" and
    .records_in >= .records_out and .records_out > 0 and .interval_ms == 50' >/dev/null ||
    fail "the query's document: $(api "/api/v1/streaming/queries/$qid")"
api "/api/v1/streaming/queries/$qid/batches" | jq -e 'length > 0 and all(.[];
    .records_in > 0 and .durations_ms.total >= .durations_ms.run and .durations_ms.run > 0 and
    (.records_out == 0 or (.latency_ms.p50 >= 0 and .latency_ms.p99 >= .latency_ms.p50))) and
    .[0].batch > .[-1].batch' >/dev/null ||
    fail "the query's batches: $(api "/api/v1/streaming/queries/$qid/batches" | head -c 600)"
echo "ok: /api/v1/streaming/queries lists the query and its batches, newest first"
curl -sf --max-time 5 "$STATUS/metrics" >"$T/metrics"
promtool check metrics <"$T/metrics" >/dev/null 2>&1 ||
    fail "/metrics fails promtool: $(promtool check metrics <"$T/metrics" 2>&1 | head -5)"
batches=$(awk '$1 == "ember_streaming_batches_total{query=\"copy\"}" {print $2}' "$T/metrics")
[ "${batches:-0}" -gt 0 ] || fail "no ember_streaming_batches_total for the query in /metrics"
grep -q '^ember_streaming_latency_p99_seconds{query="copy"} [0-9]' "$T/metrics" ||
    fail "no end-to-end latency for the query in /metrics"
echo "ok: /metrics counts the query's batches ($batches) and passes promtool"

# ---- 2. the submitter killed ------------------------------------------------------------------
produce_events 6000 1500
kill -9 "$QUERY_PID"
wait "$QUERY_PID" 2>/dev/null || true
wait_until 20 grep -q "query stops with its submitter query=1 name=copy" "$T/driver.log"
wait_until 20 grep -q "query stopped query=1 name=copy" "$T/driver.log"
echo "ok: the query stopped with its submitter at batch $(committed)"
stopped_at=$(committed)
# 1,500 events while it is stopped: at least 4 batches of at most 400 for the resumed query
produce_events 7500 1500
run_query
wait_committed $((stopped_at + 2))
echo "ok: the query resumed from its checkpoint"

# ---- 3. the driver killed, and its executors, while a batch runs -------------------------------
# the hold file keeps the next batch's tasks waiting (stream_copy --hold-file): the driver dies
# with that batch's offsets logged and its output incomplete
planned() { ls "$CK/offsets" | grep -c '^[0-9]*$' || true; }
touch "$T/hold"
produce_events 9000 3000
wait_until 30 bash -c "[ \$(ls '$CK/offsets' | grep -c '^[0-9]*\$') -gt \$(ls '$CK/commits' | grep -c '^[0-9]*\$') ]"
running=$(($(planned) - 1))
wait_until 30 test -d "$(printf '%s/.batch-%010d.tmp' "$OUT" "$running")"
kill -9 "$DRIVER_PID" "$ex2_PID" "$ex3_PID"
wait "$QUERY_PID" 2>/dev/null || true
expect_eq "$(committed)" "$running" "batches committed when the driver died (batch $running running)"
rm "$T/hold"
mv "$T/driver.log" "$T/driver-1.log"
cluster_up
run_query
wait_committed $((running + 2))
grep -q "query resumed query=1 name=copy batch=$running" "$T/driver.log" ||
    fail "the new driver did not resume the query at batch $running"
echo "ok: a new driver ran batch $running again and went on"

# ---- 4. stopped by name ------------------------------------------------------------------------
produce_events 12000 2000
wait_all_out
"$EMBER_BIN/ember-submit" --driver "$DRIVER" --stop copy >"$T/stop.out" 2>&1 ||
    fail "ember-submit --stop failed: $(cat "$T/stop.out")"
expect_contains "$(cat "$T/stop.out")" "query 'copy' stopped" "ember-submit --stop says it stopped"
wait "$QUERY_PID" || fail "the query's ember-submit failed after --stop: $(tail -3 "$T/query.err")"
expect_contains "$(tail -1 "$T/query.out")" "query copy ended" "the client saw its query end"

# ---- every line exactly once ------------------------------------------------------------------
awk '!/skip/ { print toupper($0) }' "$T/produced" | LC_ALL=C sort >"$T/want"
cat "$OUT"/batch-*/part-* | LC_ALL=C sort >"$T/got"
cmp -s "$T/want" "$T/got" || {
    echo "missing: $(comm -23 "$T/want" "$T/got" | wc -l), extra or repeated: $(comm -13 "$T/want" "$T/got" | wc -l)"
    diff "$T/want" "$T/got" | head
    fail "the batch directories do not hold each line exactly once"
}
echo "ok: $(wc -l <"$T/want") lines in $(ls "$OUT" | grep -c '^batch-') batch directories, each exactly once"

# ---- a new query without --earliest reads what arrives after it started -------------------------
seq 1 100 | sed 's/^/old /' | "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic fresh >/dev/null
"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/stream_copy.so" -- --topic fresh \
    --name fresh --checkpoint "$T/ck-fresh" --out "$T/out-fresh" --interval-ms 20 \
    --stop-after 50 >"$T/fresh.out" 2>&1 &
fresh=$!
# once a trigger read the topic's end (the query's start is pinned there), new lines arrive
wait_api /api/v1/streaming/queries '[.[] | select(.name == "fresh" and .triggers > 0)] | length == 1' 10
seq 1 50 | sed 's/^/new /' | "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic fresh >/dev/null
wait "$fresh" || fail "the fresh query failed: $(cat "$T/fresh.out")"
expect_eq "$(cat "$T"/out-fresh/batch-*/part-* | grep -c '^NEW ')" 50 "new lines read by a query started at the end"
expect_eq "$(cat "$T"/out-fresh/batch-*/part-* | grep -c '^OLD ' || true)" 0 "lines from before it started"

# ---- a new query started at explicit offsets: 3 records before each partition's end -------------
"$EMBER_BIN/ember-topic" offsets --bootstrap "$KAFKA" --topic fresh |
    awk '$1 ~ /^[0-9]+$/ { s = $3 - 3; if (s < $2) s = $2; print $1, s }' >"$T/starts"
starts=$(awk '{ printf "%s%s:%d", sep, $1, $2; sep = "," }' "$T/starts")
# the records at or after each start, upper-cased as the query writes them
"$EMBER_BIN/ember-topic" dump --bootstrap "$KAFKA" --topic fresh |
    awk -F'\t' 'NR == FNR { split($0, f, " "); start[f[1]] = f[2]; next }
        $2 >= start[$1] { print toupper($4) }' "$T/starts" - | LC_ALL=C sort >"$T/want-explicit"
want=$(wc -l <"$T/want-explicit")
[ "$want" -gt 0 ] || fail "no records after the explicit offsets"
"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/stream_copy.so" -- --topic fresh \
    --name explicit --checkpoint "$T/ck-explicit" --out "$T/out-explicit" --interval-ms 20 \
    --start-offsets "$starts" --stop-after "$want" >"$T/explicit.out" 2>&1 ||
    fail "the explicit query failed: $(cat "$T/explicit.out")"
cat "$T"/out-explicit/batch-*/part-* | LC_ALL=C sort >"$T/got-explicit"
cmp -s "$T/want-explicit" "$T/got-explicit" ||
    fail "lines read from explicit offsets $starts: $(diff "$T/want-explicit" "$T/got-explicit" | head -3)"
echo "ok: a query started at explicit offsets ($starts) read exactly the $want records after them"

# ---- checkpoints that do not fit -----------------------------------------------------------------
expect_fail "another graph on the checkpoint" "$EMBER_BIN/ember-submit" --driver "$DRIVER" \
    "$EMBER_JOBS/stream_copy.so" -- --topic events --name copy --checkpoint "$CK" --out "$OUT" --variant
expect_contains "$(cat "$T/fail.err")" "was written by another version of query 'copy'" \
    "another graph: the message"
expect_fail "another query's checkpoint" "$EMBER_BIN/ember-submit" --driver "$DRIVER" \
    "$EMBER_JOBS/stream_copy.so" -- --topic events --name other --checkpoint "$CK" --out "$OUT"
expect_contains "$(cat "$T/fail.err")" "belongs to query 'copy', not 'other'" \
    "another query: the message"
echo "PASS"
