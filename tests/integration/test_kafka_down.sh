#!/usr/bin/env bash
# test_kafka_down.sh -- the broker goes away (kill -9 of ember-kafka) under a running streaming
# query and before a batch job:
#   - the query keeps running: its status document and ember-submit's progress line say the
#     broker is out of reach (a warning, tried again at every trigger); stopped by name, it ends
#     cleanly, its batch directories holding every line it read exactly once;
#   - a batch job reading a topic of the gone broker fails with a message naming the topic and
#     the broker, within librdkafka's own timeout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_kafka events:2 lines:2
KAFKA_PID=${PIDS[-1]}
cluster_up
OUT=$T/out CK=$T/checkpoint
seq 1 500 | sed 's/^/event /' | tee "$T/produced" |
    "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic events >/dev/null
seq 1 100 | sed 's/^/line /' | "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic lines >/dev/null

"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/stream_copy.so" -- --topic events \
    --name copy --checkpoint "$CK" --out "$OUT" --interval-ms 100 --earliest \
    >"$T/query.out" 2>"$T/query.err" &
QUERY_PID=$!
PIDS+=("$QUERY_PID")
wait_until 60 bash -c "[ \"\$(cat '$OUT'/batch-*/part-* 2>/dev/null | wc -l)\" -ge 500 ]"
echo "ok: the query copied the 500 events"

kill -9 "$KAFKA_PID"
wait_api /api/v1/streaming/queries \
    ".[0].state == \"running\" and (.[0].warning | contains(\"cannot reach kafka broker $KAFKA\"))" 60
echo "ok: the query runs on, its status saying: $(api /api/v1/streaming/queries | jq -r '.[0].warning')"
wait_until 60 grep -q "query copy: running, .*, warning: cannot reach kafka broker $KAFKA" "$T/query.err"
echo "ok: ember-submit's progress line says it too"

"$EMBER_BIN/ember-submit" --driver "$DRIVER" --stop copy >"$T/stop.out" 2>&1 ||
    fail "ember-submit --stop failed: $(cat "$T/stop.out")"
wait "$QUERY_PID" || fail "the query's ember-submit failed: $(tail -3 "$T/query.err")"
awk '{ print toupper($0) }' "$T/produced" | LC_ALL=C sort >"$T/want"
cat "$OUT"/batch-*/part-* | LC_ALL=C sort >"$T/got"
cmp -s "$T/want" "$T/got" || fail "the batch directories do not hold each event once ($(wc -l <"$T/got") lines)"
echo "ok: stopped by name, the query ended; every event is in its output once"

rc=0
submit "$EMBER_JOBS/word_count.so" -- --in lines --out "$T/words" || rc=$?
[ "$rc" != 0 ] || fail "a job read a topic of a broker that is gone"
expect_contains "$(cat "$T/submit.err")" "kafka source 'lines': cannot reach kafka broker $KAFKA" \
    "the batch job's error"
echo "PASS test_kafka_down"
