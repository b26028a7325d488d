#!/usr/bin/env bash
# test_supervise.sh -- executors run with --supervise: a user function that crashes its
# executor process is an executor loss caused by that task, and the cluster keeps serving.
#   1. a map function that writes through a null pointer on partition 1 kills its executor
#      process each time: after --max-attempts (4) losses the job fails with one message
#      naming the partition, the attempts and the signal (SIGSEGV), "while running this task";
#   2. a job submitted right after succeeds with the exact result: the monitors started their
#      executors again, which registered as new executors;
#   3. the status API shows the 4 dead executors lost with the signal as the reason, and 2 alive
#      ones with new ids; each monitor logged its restarts and their backoff;
#   4. an executor process killed with -9 while a task runs: lost "killed by signal 9
#      (SIGKILL)", restarted, and the job succeeds;
#   5. SIGTERM to a monitor: its executor says goodbye ("stopped") and the monitor exits 0,
#      leaving no process;
#   6. abort() in a map function: the same, with SIGABRT;
#   7. executors with 2 slots: the tasks running beside the crashing one are relaunched
#      without losing an attempt (the crash report names the task that ran when it died).
#
# Sanitizer builds: AddressSanitizer catches SIGSEGV itself (it prints a report and exits with
# status 1 instead of dying of the signal), which is not what a release build does and not
# what this test is about. The executors of this test run with ASAN_OPTIONS handle_segv=0, so
# that the deliberate fault kills the process as it would without ASan; abort() is left to
# kill it in every build (ASan's handle_abort is off by default). Nothing else changes: every
# log is still checked for sanitizer reports.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# executors run one task at a time and get no queued tasks, so the crashing task is the only
# one an executor is running when it dies: no other partition is charged for the losses. The
# crash reports come within about 50 ms; the crash grace is 1 s rather than 300 ms only so
# that a machine loaded by other tests does not make the message say "connection closed".
start_driver --max-attempts 4 --queue-depth 0 --heartbeat-ms 200 --executor-timeout-ms 2000 \
    --crash-grace-ms 1000

# supervised NAME: an executor under its monitor (NAME_PID is the monitor's pid)
supervised() {
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_segv=0 start_executor "$1" --supervise --slots "${2:-1}"
}

# executors JQ_FILTER: the executors the filter keeps, as compact JSON lines
executors() { api /api/v1/executors | jq -c ".[] | $1"; }

# executor_of NAME: the executor id in NAME's ready file (empty while it restarts)
executor_of() { awk '$1 == "executor" {print $2}' "$T/$1.ready" 2>/dev/null || true; }

alive_count() { api /api/v1/executors | jq '[.[] | select(.state == "alive")] | length'; }

# ready_alive NAME: NAME's ready file names an alive executor
ready_alive() {
    local id
    id=$(executor_of "$1")
    [ -n "$id" ] && [ "$(executors "select(.id == $id) | .state")" = '"alive"' ]
}

supervised ex1
supervised ex2
wait_executors 2

# ---- 1. SIGSEGV in a map function ------------------------------------------------------------
if submit "$EMBER_JOBS/segfault.so" -- segv 40 4; then
    fail "the segfault job succeeded: $(cat "$T/submit.out")"
fi
err=$(cat "$T/submit.err")
expect_contains "$err" "stage 1 partition 1 lost its executor 4 times" "job failure names the partition and the attempts"
expect_contains "$err" "killed by signal 11 (SIGSEGV) while running this task)" "job failure names the signal and the task"
[ "$(grep -c 'lost its executor' <<<"$err")" = 1 ] || fail "expected one failure message: $err"

# ---- 2. a job right after --------------------------------------------------------------------
submit "$EMBER_JOBS/slow_count.so" -- 200 4 1 || fail "the job after the crashes failed: $(cat "$T/submit.err")"
expect_eq "$(cat "$T/submit.out")" "counted 200" "result of the job submitted right after"
wait_job_done 2 # and job 1 failed after its executors were lost: the reads below see it all

# ---- 3. what the driver and the monitors saw -------------------------------------------------
wait_api /api/v1/executors '[.[] | select(.state == "alive")] | length == 2' 15
expect_eq "$(executors 'select(.state == "lost") | .lost_reason' | sort | uniq -c | sed 's/^ *//')" \
    '4 "killed by signal 11 (SIGSEGV)"' "executors lost, and why"
expect_eq "$(executors 'select(.state == "alive") | .id > 2' | xargs)" "true true" "alive executors are new ones"
for name in ex1 ex2; do
    pid_var=${name}_PID
    kill -0 "${!pid_var}" || fail "monitor of $name exited"
    wait_until 10 ready_alive "$name"
done
echo "ok: both monitors run and their ready files name the new executors"
logs=$(cat "$T/ex1.log" "$T/ex2.log")
expect_eq "$(grep -c 'executor process died .*cause="killed by signal 11 (SIGSEGV)" running_tasks=1' <<<"$logs")" 4 \
    "monitor log lines of the crashes"
expect_eq "$(grep -c 'crash reported to the driver executor=[0-9]* known=1' <<<"$logs")" 4 "crash reports the driver knew"
expect_contains "$logs" "restarting in 500 ms" "first restart after 500 ms"
expect_contains "$logs" "restarting in 1000 ms" "the backoff doubles for a process that crashed within a minute"

# ---- 4. an executor process killed with -9 ---------------------------------------------------
# 4 partitions x 25 records x 20 ms: each task takes about 0.5 s
"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/slow_count.so" -- 100 4 20 >"$T/slow.out" 2>"$T/slow.err" &
job=$!
victim=$(executor_of ex1)
wait_api /api/v1/executors "[.[] | select(.id == $victim and .running_tasks > 0)] | length == 1" 10
kill -9 "$(executors "select(.id == $victim) | .pid")"
wait "$job" || fail "job failed after an executor process was killed: $(cat "$T/slow.err")"
expect_eq "$(cat "$T/slow.out")" "counted 100" "result of the job whose executor was killed"
wait_job_done 3 # its lost task ran again once the executor was lost
expect_eq "$(executors "select(.id == $victim) | [.state, .lost_reason]")" '["lost","killed by signal 9 (SIGKILL)"]' \
    "executor killed with -9 under a monitor"
wait_api /api/v1/executors '[.[] | select(.state == "alive")] | length == 2' 15
echo "ok: the killed executor came back"

# ---- 5. SIGTERM to a monitor -----------------------------------------------------------------
id=$(executor_of ex1)
child=$(executors "select(.id == $id) | .pid")
kill -TERM "$ex1_PID"
status=0
wait "$ex1_PID" || status=$?
expect_eq "$status" 0 "exit status of the monitor stopped with SIGTERM"
wait_api /api/v1/executors "[.[] | select(.id == $id)][0].state == \"stopped\""
echo "ok: its executor is stopped"
kill -0 "$child" 2>/dev/null && fail "executor process $child outlived its monitor"
sleep 1
expect_eq "$(alive_count)" 1 "executors alive a second later (no restart)"
kill -TERM "$ex2_PID"
wait "$ex2_PID" || fail "monitor of ex2 did not exit 0"
echo "ok: SIGTERM stops a monitor and its executor, which says goodbye"

# ---- 6. abort() in a map function ------------------------------------------------------------
supervised ex3
supervised ex4
wait_executors 2
if submit "$EMBER_JOBS/segfault.so" -- abort 40 4; then
    fail "the abort job succeeded: $(cat "$T/submit.out")"
fi
expect_contains "$(cat "$T/submit.err")" "partition 1 lost its executor 4 times" "abort job failure"
expect_contains "$(cat "$T/submit.err")" "killed by signal 6 (SIGABRT) while running this task)" "abort job failure names SIGABRT"
wait_job_done 4 # so that the count below is not read from before the crashes
wait_api /api/v1/executors '[.[] | select(.state == "alive")] | length == 2' 15
submit "$EMBER_JOBS/slow_count.so" -- 40 4 1 || fail "the job after the aborts failed: $(cat "$T/submit.err")"
expect_eq "$(cat "$T/submit.out")" "counted 40" "result of the job after the aborts"

# ---- 7. tasks beside the crashing one are not charged -------------------------------------------
kill -TERM "$ex3_PID" "$ex4_PID"
wait "$ex3_PID" "$ex4_PID" || true
supervised ex5 2
supervised ex6 2
wait_api /api/v1/executors '[.[] | select(.state == "alive")] | length == 2' 15
# partitions 0, 2, 3: 10 records x 150 ms each; partition 1 crashes at once
if submit "$EMBER_JOBS/segfault.so" -- segv 40 4 150; then
    fail "the segfault job with 2 slots succeeded: $(cat "$T/submit.out")"
fi
expect_contains "$(cat "$T/submit.err")" "stage" "job failure"
expect_contains "$(cat "$T/submit.err")" "partition 1 lost its executor 4 times" "only the crashing partition reaches the limit"
wait_jobs_finished 6
job=$(api /api/v1/jobs | jq '[.[].id] | max')
stage=$(api "/api/v1/stages/$(api "/api/v1/jobs/$job" | jq '.stages[0].id')")
expect_eq "$(jq -c '[.task_list[] | select(.partition != 1) | .attempt] | max' <<<"$stage")" 1 \
    "attempts of the tasks that ran beside the crashes"
[ "$(jq '.recompute_reasons.executor_lost' <<<"$stage")" -gt 3 ] || fail "no task beside a crash was relaunched: $stage"
echo "ok: the tasks running beside a crash are relaunched without losing an attempt"
echo "PASS test_supervise"
