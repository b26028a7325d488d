#!/usr/bin/env bash
# test_status_page_streaming.sh -- the status page's streaming section in a real browser: a
# driver, two executors and the windowed query tests/jobs/stream_window.c over a topic that a
# producer feeds round by round. Headless Chromium renders http://STATUS/ and the test reads the
# DOM the page built from /api/v1/streaming/queries and its batches: no section while the
# driver knows no query; then the query's card with its name, state and figures, and its four
# charts (input rate, processing time against the trigger, scheduling delay, lag), each drawn
# through the committed batches; after ember-submit --stop, the card says stopped and keeps its
# charts. A 1280x1000 screenshot of the running query is kept as a test artifact:
# $EMBER_ARTIFACTS/status_page_streaming.png, else <build>/artifacts/status_page_streaming.png.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

chromium_setup
SHOT=$ARTIFACTS/status_page_streaming.png

# expect_charts DOM_FILE WHAT: each chart of the card has a line of at least 2 points
expect_charts() {
    local metric points
    for metric in input_rate processing_time scheduling_delay lag; do
        points=$(grep -o "<div class=\"chart\" data-metric=\"$metric\" data-points=\"[0-9]*\"" "$1" |
            head -1 | sed 's/.*data-points="\([0-9]*\)"/\1/')
        [ -n "$points" ] || fail "$2: no $metric chart"
        [ "$points" -ge 2 ] || fail "$2: the $metric chart has $points points"
        echo "ok: $2: the $metric chart has $points points"
    done
    grep -q '<polyline class="line s-in" points="[0-9]' "$1" || fail "$2: the input rate chart has no line"
    grep -q 'trigger 100 ms' "$1" || fail "$2: the processing time chart has no trigger line"
}

start_kafka taxis:3
cluster_up

dom "$STATUS/" "$T/none.dom"
expect_contains "$(cat "$T/none.dom")" '<div id="conn" data-state="live"' "the page is live"
expect_contains "$(cat "$T/none.dom")" '<section class="panel" id="streaming" hidden="">' \
    "no query: the streaming section is hidden"

"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/stream_window.so" -- --topic taxis \
    --name windows --checkpoint "$T/checkpoint" --out "$T/out" --interval-ms 100 --earliest \
    --length 10000 --slide 5000 --delay 5000 --partitions 3 >"$T/query.out" 2>"$T/query.err" &
QUERY_PID=$!
PIDS+=("$QUERY_PID")
doc='.[] | select(.name == "windows")'
wait_api /api/v1/streaming/queries "[$doc | select(.state == \"running\")] | length == 1" 30
# a stateless query beside it, whose card has an end-to-end latency chart too
"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/stream_copy.so" -- --topic taxis \
    --name copy --checkpoint "$T/checkpoint-copy" --out "$T/out-copy" --interval-ms 100 --earliest \
    >"$T/copy.out" 2>"$T/copy.err" &
COPY_PID=$!
PIDS+=("$COPY_PID")
copy_doc='.[] | select(.name == "copy")'
wait_api /api/v1/streaming/queries "[$copy_doc | select(.state == \"running\")] | length == 1" 30

# 12 rounds of 40 to 119 lines "key,event_ms,amount", round R's event times in [R s, R s + 1 s);
# each round waits until a committed batch read it, so every round is a batch of its own
records=0
for r in $(seq 0 11); do
    n=$((40 + r * 37 % 80))
    awk -v r="$r" -v n="$n" 'BEGIN { for (i = 0; i < n; i++)
        printf "k%d,%d,%d\n", i % 5, r * 1000 + i * 8, (i * 7 + r) % 100 + 1 }' |
        "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic taxis >/dev/null
    records=$((records + n))
    wait_api /api/v1/streaming/queries "[$doc | select(.records_in >= $records)] | length == 1" 30
    wait_api /api/v1/streaming/queries "[$copy_doc | select(.records_in >= $records)] | length == 1" 30
done
qid=$(api /api/v1/streaming/queries | jq "$doc | .id")
batches=$(api "/api/v1/streaming/queries/$qid/batches" | jq length)
[ "$batches" -ge 12 ] || fail "the query kept $batches batches, expected at least 12"
echo "ok: $records records in $batches committed batches"

dom "$STATUS/" "$T/page.dom"
page=$(cat "$T/page.dom")
expect_contains "$page" '<section class="panel" id="streaming">' "a query: the streaming section shows"
expect_contains "$page" '<span id="page-error"></span>' "the page shows no page error"
expect_contains "$page" "<div class=\"query-card\" data-query=\"windows\" data-state=\"running\" data-id=\"$qid\">" \
    "the query's card, running"
expect_contains "$page" '<span class="query-name">windows</span>' "the card names the query"
expect_contains "$page" '<span class="badge running">running</span>' "the card's state badge"
shown=$(sed -n 's#.*data-figure="records_in">\([0-9,]*\)<.*#\1#p' "$T/page.dom" | tr -d ,)
expect_eq "$shown" "$records" "records in on the card"
expect_contains "$page" 'data-figure="watermark_ms">' "the card shows the watermark"
expect_charts "$T/page.dom" "running"
latency=$(grep -o '<div class="chart" data-metric="latency" data-points="[0-9]*"' "$T/page.dom" |
    sed 's/.*data-points="\([0-9]*\)"/\1/')
[ "${latency:-0}" -ge 2 ] || fail "the stateless query's latency chart has ${latency:-no} points"
expect_contains "$page" 'data-figure="latency_p99">' "the stateless query's card shows its latency"
echo "ok: the stateless query's card charts its end-to-end latency ($latency points)"
"$EMBER_BIN/ember-submit" --driver "$DRIVER" --stop copy >/dev/null 2>&1 || fail "ember-submit --stop copy failed"
wait "$COPY_PID" || fail "the copy query failed: $(tail -3 "$T/copy.err")"

screenshot "$STATUS/" "$SHOT" 1280x1000

"$EMBER_BIN/ember-submit" --driver "$DRIVER" --stop windows >"$T/stop.out" 2>&1 ||
    fail "ember-submit --stop failed: $(cat "$T/stop.out")"
expect_contains "$(cat "$T/stop.out")" "query 'windows' stopped" "ember-submit --stop says it stopped"
wait "$QUERY_PID" || fail "the query's ember-submit failed after --stop: $(tail -3 "$T/query.err")"
expect_contains "$(tail -1 "$T/query.out")" "query windows ended" "the client saw its query end"
wait_api /api/v1/streaming/queries "[$doc | select(.state == \"stopped\")] | length == 1" 10

dom "$STATUS/" "$T/stopped.dom"
expect_contains "$(cat "$T/stopped.dom")" \
    "<div class=\"query-card\" data-query=\"windows\" data-state=\"stopped\" data-id=\"$qid\">" "the card of the stopped query"
expect_charts "$T/stopped.dom" "stopped"
echo "PASS test_status_page_streaming"
