#!/usr/bin/env bash
# test_cli_status.sh -- the terminal views of a cluster: ember-submit's live progress line on
# a terminal (run under script(1) for a pty), its silence with --quiet and off a terminal for
# a one-stage job, and ember-status's summary (executors, jobs, a failed job's error, exit 1
# when the driver cannot be reached).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_driver
start_executor ex1 --slots 2
wait_executors 1

script -qec "$EMBER_BIN/ember-submit --driver $DRIVER $EMBER_JOBS/slow_count.so -- 60 3 20" /dev/null >"$T/tty.out"
tr '\r' '\n' <"$T/tty.out" | grep -E '^.*job 1: stage 1/1, tasks [0-9]+/3, [0-9]+ records in' >/dev/null ||
    fail "no progress line on a terminal: $(cat -A "$T/tty.out" | head -c 600)"
echo "ok: live progress line on a terminal"
expect_contains "$(cat "$T/tty.out")" "counted 60" "job output under a terminal"

submit "$EMBER_JOBS/slow_count.so" -- 60 3 20
expect_eq "$(grep -c 'job 2' "$T/submit.err" || true)" 0 "progress lines of a one-stage job off a terminal"
submit "$EMBER_JOBS/failing_fn.so" || true

wait_jobs_finished 3
"$EMBER_BIN/ember-status" --url "$STATUS" >"$T/status.out"
cat "$T/status.out"
expect_contains "$(cat "$T/status.out")" "1 executors alive, jobs 0 running / 2 succeeded / 1 failed" "driver line"
grep -Eq "^1 +tcp://127\.0\.0\.1:[0-9]+ +alive +2 +0 +(6|7|8|9) +4 " "$T/status.out" || fail "executor row" # the failing job's other tasks may end before it fails or be cancelled; its failing task ran 4 times
grep -Eq "^1 .* [0-9.]+s +[0-9.]+ (B|KiB|MiB|GiB) +[0-9.]+ (KiB|MiB|GiB)$" "$T/status.out" ||
    fail "executor row: block store and resident memory"
echo "ok: executor row"
grep -Eq "^3 +failing_fn.so +failed +[0-3]/4 " "$T/status.out" || fail "failed job row"
expect_contains "$(cat "$T/status.out")" "error: job 3 (failing_fn.so) failed: stage 3 partition 3" "failed job's error"
grep -Eq "^1 +slow_count.so +succeeded +3/3 +60 +60 " "$T/status.out" || fail "finished job row"
echo "ok: job rows"

stop_all
rc=0
"$EMBER_BIN/ember-status" --url "$STATUS" 2>"$T/status.err" || rc=$?
expect_eq "$rc" 1 "ember-status exit status without a driver"
expect_contains "$(cat "$T/status.err")" "cannot reach $STATUS/api/v1/driver" "ember-status error"
echo "PASS test_cli_status"
