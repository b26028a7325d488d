#!/usr/bin/env bash
# test_stream_detached.sh -- a detached streaming query outlives its submitter and its driver
# (tests/jobs/stream_copy.c: the lines of topic `events` upper-cased, those holding "skip"
# dropped, a directory per batch):
#   1. ember-submit --detach returns at once; the driver keeps the query and its job library
#      in its --state-dir;
#   2. kill -9 of the driver and its executors mid-stream: a new driver on the same state
#      directory restores the query, which resumes from its checkpoint;
#   3. ember-submit --stop ends it and removes it from the state directory: the next driver
#      restores nothing;
#   4. the status endpoint stops a query for a request carrying the stop token (ember-secret
#      --stop-token), and refuses one without it or with another;
#   5. a state directory the driver cannot write refuses a detached query, saying why.
# The batch directories hold every expected line exactly once.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_kafka events:2
STATE=$T/driver-state
cluster_up --state-dir "$STATE"
OUT=$T/out CK=$T/checkpoint
: >"$T/produced"
kept_queries() { ls "$STATE/queries" 2>/dev/null | grep -c '\.query$' || true; }
kept_libraries() { ls "$STATE/libraries" 2>/dev/null | grep -c '\.so$' || true; }

# ---- 1. detached: ember-submit returns, the driver keeps the query -----------------------------
produce_events 0 2000
"$EMBER_BIN/ember-submit" --driver "$DRIVER" --detach "$EMBER_JOBS/stream_copy.so" -- \
    --topic events --name detached --checkpoint "$CK" --out "$OUT" --interval-ms 50 \
    --max-per-partition 100 --earliest >"$T/submit.out" 2>"$T/submit.err" ||
    fail "ember-submit --detach failed: $(cat "$T/submit.err")"
expect_contains "$(cat "$T/submit.err")" "query detached runs detached on the driver" \
    "ember-submit --detach says the query runs on"
expect_eq "$(kept_queries)" 1 "queries kept in the state directory"
expect_eq "$(kept_libraries)" 1 "job libraries kept in the state directory"
wait_committed 2
wait_api /api/v1/streaming/queries '.[0].name == "detached" and .[0].detached == true and .[0].state == "running"' 10
echo "ok: the detached query runs without its submitter ($(committed) batches committed)"

# ---- 2. the driver and its executors killed mid-stream ------------------------------------------
produce_events 2000 1000
kill -9 "$DRIVER_PID" "$ex1_PID" "$ex2_PID"
before=$(committed)
# 1,000 events while the cluster is down: at least 5 batches for the new driver, however far
# the old one got
produce_events 3000 1000
mv "$T/driver.log" "$T/driver-1.log"
cluster_up --state-dir "$STATE"
grep -q "query restored name=detached" "$T/driver.log" ||
    fail "the new driver did not restore the query: $(grep -i query "$T/driver.log" | head -3)"
wait_committed $((before + 2))
echo "ok: a new driver restored the query from its state directory and resumed it"

# ---- 3. stopped by name: forgotten by the next driver ---------------------------------------------
produce_events 4000 1000
want=$(awk '!/skip/' "$T/produced" | wc -l)
wait_until 90 bash -c "[ \$(cat '$OUT'/batch-*/part-* 2>/dev/null | wc -l) -ge $want ]"
"$EMBER_BIN/ember-submit" --driver "$DRIVER" --stop detached >"$T/stop.out" 2>&1 ||
    fail "ember-submit --stop failed: $(cat "$T/stop.out")"
wait_until 10 bash -c "[ \$(ls '$STATE/queries' | grep -c '\\.query\$') -eq 0 ]"
expect_eq "$(kept_libraries)" 0 "job libraries kept after the query was stopped"
kill -9 "$DRIVER_PID" "$ex1_PID" "$ex2_PID"
mv "$T/driver.log" "$T/driver-2.log"
cluster_up --state-dir "$STATE"
wait_api /api/v1/streaming/queries 'length == 0' 30
if grep -q "query restored" "$T/driver.log"; then fail "a stopped query was restored"; fi
echo "ok: a stopped query leaves the state directory; the next driver restores nothing"

awk '!/skip/ { print toupper($0) }' "$T/produced" | LC_ALL=C sort >"$T/want"
cat "$OUT"/batch-*/part-* | LC_ALL=C sort >"$T/got"
cmp -s "$T/want" "$T/got" || {
    echo "missing: $(comm -23 "$T/want" "$T/got" | wc -l), extra or repeated: $(comm -13 "$T/want" "$T/got" | wc -l)"
    fail "the batch directories do not hold each line exactly once"
}
echo "ok: $(wc -l <"$T/want") lines, each exactly once, across two drivers"

# ---- 4. stopped through the status endpoint, with the stop token ----------------------------------
"$EMBER_BIN/ember-submit" --driver "$DRIVER" --detach "$EMBER_JOBS/stream_copy.so" -- \
    --topic events --name viahttp --checkpoint "$T/ck-http" --out "$T/out-http" \
    --interval-ms 50 --earliest >"$T/submit-http.out" 2>&1 ||
    fail "ember-submit --detach failed: $(cat "$T/submit-http.out")"
wait_api /api/v1/streaming/queries '.[] | select(.name == "viahttp") | .state == "running"' 10
STOP_URL=$STATUS/api/v1/streaming/queries/viahttp/stop
# http_stop [CURL ARGS...]: the HTTP status of a POST to STOP_URL, its body in $T/stop.body
http_stop() { curl -s --max-time 5 -o "$T/stop.body" -w '%{http_code}' -X POST "$@" "$STOP_URL"; }
expect_eq "$(http_stop)" 401 "a stop without a token"
expect_contains "$(cat "$T/stop.body")" "ember-secret --stop-token" "a stop without a token: the message"
curl -s --max-time 5 -D "$T/stop.headers" -o /dev/null -X POST "$STOP_URL"
grep -qi '^WWW-Authenticate: Bearer' "$T/stop.headers" || fail "a 401 without WWW-Authenticate"
other=$("$EMBER_BIN/ember-secret" "$T/other.secret" >/dev/null 2>&1 &&
    "$EMBER_BIN/ember-secret" --stop-token "$T/other.secret")
expect_eq "$(http_stop -H "Authorization: Bearer $other")" 401 "a stop with another cluster's token"
TOKEN=$("$EMBER_BIN/ember-secret" --stop-token)
expect_eq "${#TOKEN}" 64 "the stop token's length"
expect_eq "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$STOP_URL")" 405 "a GET of the stop path"
expect_eq "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
    "$STATUS/api/v1/streaming/queries/nosuch/stop")" 404 "a stop of a query that does not exist"
wait_api /api/v1/streaming/queries '.[] | select(.name == "viahttp") | .state == "running"' 30
expect_eq "$(http_stop -H "Authorization: Bearer $TOKEN")" 202 "a stop with the token"
expect_contains "$(cat "$T/stop.body")" '"stop_requested":true' "a stop with the token: the answer"
wait_api /api/v1/streaming/queries '.[] | select(.name == "viahttp") | .state == "stopped"' 20
wait_until 10 bash -c "[ \$(ls '$STATE/queries' | grep -c '\\.query\$') -eq 0 ]"
grep -q "query stop refused over HTTP" "$T/driver.log" || fail "refused stops are not logged"
echo "ok: the status endpoint stops a query with the stop token only (401 without, 405 GET, 404 unknown)"

# ---- 5. a state directory the driver cannot write --------------------------------------------------
kill -9 "$DRIVER_PID" "$ex1_PID" "$ex2_PID"
: >"$T/not-a-dir"
start_driver --state-dir "$T/not-a-dir/state"
expect_fail "a detached query the driver cannot keep" "$EMBER_BIN/ember-submit" --driver "$DRIVER" \
    --detach "$EMBER_JOBS/stream_copy.so" -- --topic events --name other --checkpoint "$T/ck2" \
    --out "$T/out2"
expect_contains "$(cat "$T/fail.err")" "cannot keep it in the driver's state directory" \
    "an unwritable state directory: the message"
echo "PASS"
