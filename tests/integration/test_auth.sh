#!/usr/bin/env bash
# test_auth.sh -- a cluster with a secret refuses everyone who cannot prove it, and what a
# connection's role does not allow; after each attempt the next job gives the exact result.
#   1. ember-submit with another secret, and with none: refused, with what to do;
#   2. a recorded handshake replayed, and a truncated one: refused, counted;
#   3. a submitter sending Register, a spoofed crash report (wrong pid), a crash report from
#      a submitter: refused or ignored, the executor stays alive;
#   4. block reads from an executor without the secret, and with another one: refused;
#   5. a daemon refuses a secret file others can read, and refuses to listen on a non-
#      loopback address without a secret, each with a one-line message.
# Counts come from /metrics (ember_auth_failures_total, ember_rejected_messages_total).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_driver
start_executor ex1 --slots 2
start_executor ex2 --slots 2
wait_executors 2
EX_URL=$(awk '$1 == "address" {print $2}' "$T/ex1.ready")

metric() { curl -sf --max-time 5 "$STATUS/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

expect_tour_exact "start"

# ---- 1. another secret, no secret --------------------------------------------------------------
"$EMBER_BIN/ember-secret" "$T/other.secret" >/dev/null 2>&1
expect_fail "submit with another secret" \
    "$EMBER_BIN/ember-submit" --driver "$DRIVER" --secret-file "$T/other.secret" "$EMBER_JOBS/api_tour.so"
expect_contains "$(cat "$T/fail.err")" "could not prove the cluster secret" "another secret: the message"
expect_fail "submit without a secret" env EMBER_SECRET_FILE="$T/missing.secret" \
    "$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/api_tour.so"
expect_contains "$(cat "$T/fail.err")" "requires the cluster secret" "no secret: the message"
wait_api /api/v1/driver '.auth_failures >= 2' 30
expect_tour_exact "a wrong and a missing secret"

# ---- 2. replayed and truncated handshakes ------------------------------------------------------
out=$(abuse replay "$DRIVER")
expect_contains "$out" "EMBER_ERR_UNAUTHENTICATED connection refused: authentication failed" \
    "a replayed handshake is refused"
before=$(api /api/v1/driver | jq .rejected_messages)
out=$(abuse truncated "$DRIVER")
expect_contains "$out" "answer: none" "a truncated Auth gets no answer"
wait_api /api/v1/driver ".rejected_messages > $before" 30
expect_tour_exact "a replayed and a truncated handshake"

# ---- 3. roles ---------------------------------------------------------------------------------
out=$(abuse as submitter "$DRIVER" register)
expect_contains "$out" "EMBER_ERR_PROTOCOL REGISTER may not be sent by a submitter" \
    "a submitter posing as an executor is refused"
ex1_id=$(awk '$1 == "executor" {print $2}' "$T/ex1.ready")
out=$(abuse as supervisor "$DRIVER" crash "$ex1_id" 0)
expect_contains "$out" "known=0" "a crash report without the executor's pid is ignored"
out=$(abuse as supervisor "$DRIVER" crash "$ex1_id" 1)
expect_contains "$out" "known=0" "a crash report with another pid is ignored"
out=$(abuse as submitter "$DRIVER" crash "$ex1_id" "$ex1_PID")
expect_contains "$out" "EXECUTOR_CRASHED may not be sent by a submitter" \
    "a crash report from a submitter is refused"
expect_eq "$(api /api/v1/executors | jq -c '[.[] | .state]')" '["alive","alive"]' \
    "both executors alive after the spoofed reports"
grep -q "crash report for an executor not known" "$T/driver.log" ||
    fail "the driver did not log the ignored crash reports"
expect_tour_exact "an impostor and spoofed crash reports"

# ---- 4. block reads -----------------------------------------------------------------------------
out=$(EMBER_SECRET_FILE=$T/missing.secret abuse probe "$EX_URL" peer) &&
    fail "a block read without the secret was answered: $out"
expect_contains "$out" "requires the cluster secret" "a block read without the secret is refused"
out=$(EMBER_SECRET_FILE=$T/other.secret abuse probe "$EX_URL" peer) &&
    fail "a block read with another secret was answered: $out"
expect_contains "$out" "could not prove the cluster secret" "a block read with another secret is refused"
out=$(abuse probe "$EX_URL" submitter) && fail "a submitter was served blocks: $out"
expect_contains "$out" "a role this server does not serve" "only peers read blocks"
grep -q "connection refused" "$T/ex1.log" || fail "the executor did not log the refusals"
expect_tour_exact "refused block reads"

# ---- 5. daemons refuse unsafe settings ---------------------------------------------------------
chmod 644 "$T/other.secret"
expect_fail "a readable secret" "$EMBER_BIN/ember-driver" --listen tcp://127.0.0.1:0 \
    --status off --secret-file "$T/other.secret"
expect_contains "$(cat "$T/fail.err")" "can be read by others (mode 644): chmod 600" \
    "a readable secret: the message"
expect_fail "a wide listener without a secret" env EMBER_SECRET_FILE="$T/missing.secret" \
    "$EMBER_BIN/ember-driver" --listen tcp://0.0.0.0:0 --status off
expect_contains "$(cat "$T/fail.err")" "refusing to listen on tcp://0.0.0.0:0 without a cluster secret" \
    "a wide listener without a secret: the message"
expect_fail "an executor serving blocks widely without a secret" env \
    EMBER_SECRET_FILE="$T/missing.secret" "$EMBER_BIN/ember-executor" --driver "$DRIVER" \
    --listen tcp://0.0.0.0:0 --work-dir "$T/ex9"
expect_contains "$(cat "$T/fail.err")" "refusing to serve blocks on tcp://0.0.0.0:0 without a cluster secret" \
    "an executor without a secret: the message"

# a driver without a secret has no stop token: its status endpoint stops nothing
rm -f "$T/open.ready"
EMBER_SECRET_FILE=$T/missing.secret "$EMBER_BIN/ember-driver" --listen tcp://127.0.0.1:0 \
    --status 127.0.0.1:0 --ready-file "$T/open.ready" >"$T/open-driver.log" 2>&1 &
PIDS+=($!)
wait_for_file "$T/open.ready"
open_status=$(awk '$1 == "status" {print $2}' "$T/open.ready")
code=$(curl -s --max-time 5 -o "$T/open.body" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $("$EMBER_BIN/ember-secret" --stop-token)" \
    "$open_status/api/v1/streaming/queries/any/stop")
expect_eq "$code" 403 "a stop at a driver without a secret"
expect_contains "$(cat "$T/open.body")" "runs without one: use ember-submit --stop NAME" \
    "a stop at a driver without a secret: the message"
echo "ok: a driver without a secret refuses stops over HTTP (403)"

failures=$(metric ember_auth_failures_total)
[ "${failures:-0}" -ge 3 ] || fail "ember_auth_failures_total is ${failures:-missing}, want at least 3"
echo "ok: /metrics counts $failures refused handshakes"
echo "PASS test_auth"
