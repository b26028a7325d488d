#!/usr/bin/env bash
# test_runaway.sh -- user code that will not end its task is contained, and the cluster goes
# on giving exact results (executors run with --supervise, as deploy/ starts them):
#   1. a map function that loops forever, with a task timeout: the task times out and is
#      cancelled; it cannot stop, so its executor exits after --cancel-grace-ms and its
#      monitor restarts it and reports why; after --max-attempts the job fails naming the
#      timeout;
#   2. a map function that calls exit(0): a crash to the monitor (not a stop), reported as
#      "its process exited with status 0", restarted; the job fails after --max-attempts;
#   3. a job whose submitter goes away while its slow tasks run: the tasks are cancelled and
#      stop between records, freeing their slots long before they would have ended;
#   4. SIGTERM to a monitor whose executor runs a task that never returns: both exit within a
#      few seconds (the executor gives its tasks 1.5 s), leaving no process.
# After each, a job on the same cluster gives the exact result.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_driver --max-attempts 2 --queue-depth 0 --heartbeat-ms 200 --executor-timeout-ms 2000 \
    --crash-grace-ms 1000
supervised() { start_executor "$1" --supervise --slots 2 --cancel-grace-ms 1000; }
supervised ex1
supervised ex2
wait_executors 2

run_ok() { # WHAT
    submit --quiet "$EMBER_JOBS/runaway.so" -- ok 400 4 || fail "job after $1 failed: $(cat "$T/submit.err")"
    expect_eq "$(cat "$T/submit.out")" "counted 400" "the job after $1"
}
alive() { api /api/v1/executors | jq '[.[] | select(.state == "alive")] | length'; }

# ---- 1. a task that loops forever ---------------------------------------------------------------
expect_fail "a task that loops forever" "$EMBER_BIN/ember-submit" --driver "$DRIVER" \
    --task-timeout-s 2 "$EMBER_JOBS/runaway.so" -- spin 40 4
err=$(cat "$T/fail.err")
expect_contains "$err" "partition 1 failed 2 times" "the job names the partition and its attempts"
expect_contains "$err" "timed out after 2.0 s [EMBER_ERR_TIMEOUT]" "the job says the task timed out"
wait_until 20 grep -q "restarted: task .* did not stop within" "$T/driver.log"
echo "ok: the stuck executor exited and its monitor reported why"
grep -q "task would not stop" "$T/ex1.log" "$T/ex2.log" || fail "no executor logged the stuck task"
wait_api /api/v1/executors '[.[] | select(.state == "alive")] | length == 2' 20
run_ok "a task that looped forever"

# ---- 2. exit(0) in a map function ---------------------------------------------------------------
expect_fail "a task that calls exit(0)" "$EMBER_BIN/ember-submit" --driver "$DRIVER" \
    "$EMBER_JOBS/runaway.so" -- exit 40 4
expect_contains "$(cat "$T/fail.err")" "a task called exit() while running this task" \
    "the job names the exit"
if grep -q "monitor exiting" "$T/ex1.log" "$T/ex2.log"; then
    fail "a monitor took the executor's exit(0) for a stop"
fi
wait_api /api/v1/executors '[.[] | select(.state == "alive")] | length == 2' 20
run_ok "a task that called exit(0)"

# ---- 3. the submitter goes away: its slow tasks are cancelled ---------------------------------------
# 4 tasks of 100 records x 100 ms (10 s each) on the 4 slots
"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/runaway.so" -- slow 400 4 100 \
    >"$T/slow.out" 2>&1 &
slow=$!
wait_api /api/v1/driver '.jobs_running == 1' 10
wait_api /api/v1/executors '[.[] | .running_tasks] | add == 4' 10
{ kill -9 "$slow" && wait "$slow"; } 2>/dev/null || true
wait_until 5 grep -q "cancelled: its submitter disconnected" "$T/driver.log"
# the tasks stop between records (within about a record's 100 ms), not after their 10 s
wait_api /api/v1/executors '[.[] | .running_tasks] | add == 0' 5
grep -q "task cancelled" "$T/ex1.log" "$T/ex2.log" || fail "no executor logged a cancelled task"
run_ok "a submitter that went away"

# ---- 4. SIGTERM while a task never returns ------------------------------------------------------
"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/runaway.so" -- spin 40 4 \
    >"$T/spin.out" 2>&1 &
spin=$!
wait_api /api/v1/jobs '[.[] | select(.state == "running")] | length == 1' 10
# partitions 0, 2 and 3 end at once; partition 1 spins
wait_api /api/v1/executors '[.[] | .running_tasks] | add == 1' 10
pids=$(api /api/v1/executors | jq -r '.[] | select(.state == "alive") | .pid')
start=$SECONDS
kill -TERM "$ex1_PID" "$ex2_PID"
gone() { local p; for p in "$ex1_PID" "$ex2_PID" $pids; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
wait_until 10 gone
echo "ok: SIGTERM stopped both monitors and executors in $((SECONDS - start)) s, a task still looping"
grep -q "exiting without waiting for it" "$T/ex1.log" "$T/ex2.log" ||
    fail "no executor said it left a task that would not stop"
{ kill -9 "$spin" && wait "$spin"; } 2>/dev/null || true
echo "PASS test_runaway"
