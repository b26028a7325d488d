#!/usr/bin/env bash
# test_bad_input.sh -- jobs that must fail, each with a clear one-line cause and a non-zero
# exit: no entry point, a static (unexported) function, a library built against another API
# version, a missing topic, a corrupt .so, a function that fails on one partition. After
# each, the cluster must still run a job right.
# Last, an executor told to listen on a wildcard address refuses to register it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_kafka letters:2
start_driver
start_executor ex1 --slots 2
start_executor ex2 --slots 2
wait_executors 2
for l in a b c d e f g h i j; do echo "$l:$l"; done |
    "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic letters --key-sep : >/dev/null

# expect_failure WHAT NEEDLE JOB [ARGS...]: ember-submit exits 1 with NEEDLE on stderr
expect_failure() {
    local what=$1 needle=$2
    shift 2
    local rc=0
    submit "$@" || rc=$?
    expect_eq "$rc" 1 "$what: exit status"
    expect_contains "$(cat "$T/submit.err")" "$needle" "$what: message"
    expect_eq "$(grep -c . "$T/submit.err")" 1 "$what: lines of error output"
}

# good_job: the api_tour job must still give its exact output
good_job() {
    rm -rf "$T/tour-out"
    submit --quiet "$EMBER_JOBS/api_tour.so" -- --out "$T/tour-out" --topic letters ||
        fail "api_tour failed after $1: $(cat "$T/submit.err")"
    diff "$T/submit.out" "$EMBER_SRC/tests/integration/api_tour.expected" ||
        fail "api_tour output differs after $1"
    cat "$T"/tour-out/part-* | LC_ALL=C sort | tr '\n' ' ' >"$T/words"
    expect_eq "$(cat "$T/words")" "A B BROWN C DOG FOX JUMPS LAZY OVER QUICK THE THE " "saved text after $1"
}

good_job "start"
expect_failure "no entry point" "has no entry point 'ember_main'" "$EMBER_JOBS/no_entry.so"
good_job "a library without entry point"
expect_failure "static function" "is not an exported symbol" "$EMBER_JOBS/static_fn.so"
expect_failure "another API version" \
    "built against ember API version 99, this ember has version 2: rebuild it" "$EMBER_JOBS/other_api.so"
good_job "a static function"
expect_failure "missing topic" "kafka topic 'no-such-topic' does not exist" \
    "$EMBER_JOBS/taxi_alerts.so" -- --in no-such-topic
if "$EMBER_BIN/ember-topic" offsets --bootstrap "$KAFKA" --topic no-such-topic >/dev/null 2>&1; then
    fail "a job on a missing topic created it"
fi
head -c 3000 "$EMBER_JOBS/taxi_alerts.so" >"$T/truncated.so"
expect_failure "truncated .so" "cannot load job library" "$T/truncated.so"
head -c 20000 /dev/urandom >"$T/random.so"
expect_failure "random bytes .so" "cannot load job library" "$T/random.so"
good_job "corrupt libraries"
expect_failure "failing function" "partition 3" "$EMBER_JOBS/failing_fn.so"
expect_contains "$(cat "$T/submit.err")" "value 30 is cursed" "failing function: its own reason"
expect_contains "$(cat "$T/submit.err")" "on executor" "failing function: the executor"
good_job "a failing function"
expect_eq "$(api /api/v1/executors | jq '[.[] | select(.state == "alive")] | length')" 2 "executors alive at the end"
rc=0
"$EMBER_BIN/ember-executor" --driver "$DRIVER" --listen tcp://0.0.0.0:0 --work-dir "$T/wild" \
    2>"$T/wild.err" || rc=$?
expect_eq "$rc" 1 "executor listening on a wildcard address: exit status"
expect_contains "$(cat "$T/wild.err")" "give the address other nodes reach this one at" \
    "executor listening on a wildcard address: message"
echo "PASS test_bad_input"
