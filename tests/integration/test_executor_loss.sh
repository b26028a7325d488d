#!/usr/bin/env bash
# test_executor_loss.sh -- an executor killed with -9 while its tasks run is marked lost
# (connection closed), its tasks run elsewhere and the job's result is exact; an executor that
# stops answering (SIGSTOP) is marked lost after the heartbeat timeout; the next job runs on
# the executor that is left; an executor stopped with SIGTERM is "stopped", not lost.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_driver --heartbeat-ms 100 --executor-timeout-ms 1000
start_executor ex1 --slots 2
start_executor ex2 --slots 2
start_executor ex3 --slots 2
wait_executors 3

# 8 partitions x 25 records x 20 ms: each task takes about 0.5 s
"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/slow_count.so" -- 200 8 20 >"$T/slow.out" 2>"$T/slow.err" &
job=$!
for _ in $(seq 100); do
    running=$(api /api/v1/executors | jq '[.[] | select(.id == 1) | .running_tasks] | add')
    [ "$running" -gt 0 ] && break
    sleep 0.02
done
[ "$running" -gt 0 ] || fail "executor 1 never got a task"
kill -9 "$ex1_PID"
wait "$job" || fail "job failed after an executor was killed: $(cat "$T/slow.err")"
expect_eq "$(cat "$T/slow.out")" "counted 200" "result of the job that lost an executor"
wait_api /api/v1/driver '.jobs_succeeded == 1'
ex1=$(api /api/v1/executors | jq -c '.[] | select(.id == 1) | {state, lost_reason}')
expect_eq "$ex1" '{"state":"lost","lost_reason":"connection closed"}' "killed executor"
relaunched=$(api /api/v1/driver | jq .tasks_relaunched)
[ "$relaunched" -ge 1 ] && [ "$relaunched" -le 4 ] || fail "relaunched $relaunched tasks, expected 1..4"
echo "ok: $relaunched tasks relaunched, only those of the lost executor"

kill -STOP "$ex2_PID"
for _ in $(seq 100); do
    state=$(api /api/v1/executors | jq -r '.[] | select(.id == 2) | .state')
    [ "$state" = lost ] && break
    sleep 0.05
done
expect_eq "$(api /api/v1/executors | jq -r '.[] | select(.id == 2) | .lost_reason')" \
    "no heartbeat for 1000 ms" "silent executor"
submit "$EMBER_JOBS/slow_count.so" -- 40 4 1 || fail "job on the last executor failed: $(cat "$T/submit.err")"
expect_eq "$(cat "$T/submit.out")" "counted 40" "job on the remaining executor"
kill -CONT "$ex2_PID"

kill -TERM "$ex3_PID"
wait_api /api/v1/executors '[.[] | select(.id == 3)][0].state == "stopped"'
echo "ok: an executor stopped with SIGTERM says goodbye and shows as stopped, not lost"
grep -q 'executor stopped executor=3' "$T/driver.log" || fail "driver did not log the stop"
echo "PASS test_executor_loss"
