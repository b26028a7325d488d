#!/usr/bin/env bash
# test_recovery.sh -- lost work is recomputed from lineage, and only what was lost:
#   1. an executor killed with -9 during a map stage: its running tasks and the map outputs
#      it held run again, nothing else; the result is exact;
#   2. an executor killed during a reduce stage: its running reduce tasks and the map outputs
#      the other reduce tasks still need run again; the result is exact;
#   3. a task that fails once runs again on the other executor and the job succeeds;
#   (in 1 to 3 the job's accumulators are exact: a failed attempt adds nothing, a map output
#   computed again replaces what its first run added)
#   4. map outputs damaged on disk between two actions that read them: fetch failures, and
#      the damaged executor's map outputs computed again.
# Counts come from the status API (recompute_reasons, retried_tasks, tasks_launched).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_driver --heartbeat-ms 200 --executor-timeout-ms 2000
start_executor ex1 --slots 2
start_executor ex2 --slots 2
wait_executors 2

# stage_doc JOB INDEX: the status document of a job's stage, by its index in the job
stage_doc() { api "/api/v1/stages/$(api "/api/v1/jobs/$1" | jq ".stages[$2].id")"; }

# held_by STAGE_DOC EXECUTOR STATES: tasks of the stage on that executor in those states
held_by() { jq --argjson ex "$2" "[.task_list[] | select(.executor == \$ex and ($3))] | length" <<<"$1"; }

# ---- 1. kill during a map stage ---------------------------------------------------------------
# 8 map tasks of 60 records x 20 ms (1.2 s) on 4 slots: two waves
"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/recovery.so" -- slow-map 480 8 20 4 >"$T/job1.out" 2>&1 &
job=$!
wait_api /api/v1/jobs/1 '.stages[0].tasks_done == 4 and .stages[0].tasks_running == 4' 10
map=$(stage_doc 1 0)
lost=$(held_by "$map" 2 '.state == "done" or .state == "running"')
kill -9 "$ex2_PID"
wait "$job" || fail "job 1 failed after an executor was killed: $(cat "$T/job1.out")"
expect_contains "$(cat "$T/job1.out")" "recovery: slow-map ok: 50 keys, 480 records" "result of job 1"
expect_contains "$(cat "$T/job1.out")" "recovery: slow-map accumulators ok: mapped = 480" "accumulators of job 1: each record once"
wait_job_done 1
map=$(stage_doc 1 0)
expect_eq "$(jq -c '[.recompute_reasons.executor_lost, .recomputed_tasks, .tasks_launched]' <<<"$map")" \
    "[$lost,$lost,$((8 + lost))]" "map stage: the $lost partitions of the lost executor ran again, no others"
expect_eq "$(stage_doc 1 1 | jq -c '[.recomputed_tasks, .tasks_launched]')" "[0,4]" "reduce stage: no rerun"
expect_eq "$(api /api/v1/jobs/1 | jq -c '[.records_in, .stages[0].records_in]')" "[480,480]" \
    "records read by the job: each partition's records once, recomputed or not"
echo "ok: killed during the map stage: $lost map tasks recomputed of 8, result exact"

# ---- 2. kill during a reduce stage --------------------------------------------------------------
start_executor ex3 --slots 2
wait_api /api/v1/executors '[.[] | select(.state == "alive")] | length == 2'
# fast map stage; 4 reduce tasks of about 12 keys x 250 ms, all running at once
"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/recovery.so" -- slow-reduce 4000 8 250 4 >"$T/job2.out" 2>&1 &
job=$!
wait_api /api/v1/jobs/2 '.stages[1].tasks_running == 4' 10
ex3=$(api /api/v1/executors | jq '.[] | select(.pid == '"$ex3_PID"') | .id')
map_lost=$(held_by "$(stage_doc 2 0)" "$ex3" '.state == "done"')
reduce_lost=$(held_by "$(stage_doc 2 1)" "$ex3" '.state == "running"')
kill -9 "$ex3_PID"
wait "$job" || fail "job 2 failed after an executor was killed: $(cat "$T/job2.out")"
expect_contains "$(cat "$T/job2.out")" "recovery: slow-reduce ok: 50 keys, 4000 records" "result of job 2"
expect_contains "$(cat "$T/job2.out")" "recovery: slow-reduce accumulators ok: mapped = 4000" "accumulators of job 2: lost map outputs counted once"
wait_job_done 2
expect_eq "$(stage_doc 2 0 | jq -c '[.recompute_reasons.executor_lost, .tasks_launched]')" \
    "[$map_lost,$((8 + map_lost))]" "map stage: the $map_lost outputs of the lost executor computed again"
expect_eq "$(stage_doc 2 1 | jq -c '[.recompute_reasons.executor_lost, .tasks_launched]')" \
    "[$reduce_lost,$((4 + reduce_lost))]" "reduce stage: its $reduce_lost running tasks ran again"
echo "ok: killed during the reduce stage: $map_lost map outputs and $reduce_lost reduce tasks recomputed, result exact"

# ---- 3. a task that fails once ------------------------------------------------------------------
start_executor ex4 --slots 2
wait_api /api/v1/executors '[.[] | select(.state == "alive")] | length == 2'
submit "$EMBER_JOBS/recovery.so" -- flaky "$T/flaky.marker" || fail "flaky job: $(cat "$T/submit.out" "$T/submit.err")"
expect_contains "$(cat "$T/submit.out")" "recovery: flaky ok: 40 records" "result of the flaky job"
wait_job_done 3
flaky=$(stage_doc 3 0)
expect_eq "$(jq -c '[.retried_tasks, .recomputed_tasks, .tasks_launched]' <<<"$flaky")" "[1,0,5]" "flaky stage: one retry"
expect_eq "$(jq -c '.task_list[] | select(.partition == 2) | [.state, .attempt]' <<<"$flaky")" '["done",2]' "the flaky partition"
first=$(grep 'task will run again' "$T/driver.log" | grep -c 'reason=task_failure')
expect_eq "$first" 1 "driver log lines of the retry"
echo "ok: a task that failed once ran again and the job succeeded"
# ---- 4. a map output that cannot be read: fetch failure -----------------------------------------
# Two actions read one shuffle (the second reuses the first's map output). Between them the
# map output on one executor is damaged in its spill files (1 MiB stores: every bucket spills):
# the second action's reduce tasks report fetch failures, and the map partitions of that
# executor are computed again; the counts stay exact.
kill -TERM "$ex1_PID" "$ex4_PID"
start_executor ex5 --slots 2 --memory-mb 1
start_executor ex6 --slots 2 --memory-mb 1
wait_alive "$ex5_PID" "$ex6_PID"
"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/recovery.so" -- reread 100000 8 4 "$T/reread.go" >"$T/reread.out" 2>&1 &
job=$!
for _ in $(seq 600); do grep -q "reread first ok" "$T/reread.out" && break; sleep 0.05; done
expect_contains "$(cat "$T/reread.out")" "recovery: reread first ok: 50 keys, 100000 records" "first read of the shuffle"
# the first read is the 4th job; the second waits for reread.go
wait_jobs_finished 4
first=$(api /api/v1/jobs | jq '[.[].id] | max')
ex6=$(api /api/v1/executors | jq '.[] | select(.pid == '"$ex6_PID"') | .id')
damaged=$(held_by "$(stage_doc "$first" 0)" "$ex6" '.state == "done"')
[ "$damaged" -gt 0 ] || fail "executor $ex6 holds no map output"
for f in "$T"/ex6-spill/shuffle_*; do printf 'damaged' | dd of="$f" bs=1 seek=30 conv=notrunc status=none; done
touch "$T/reread.go"
wait "$job" || fail "reread: $(cat "$T/reread.out")"
expect_contains "$(cat "$T/reread.out")" "recovery: reread second ok: 50 keys, 100000 records" "second read, after the damage"
second=$((first + 1))
wait_job_done "$second"
expect_eq "$(stage_doc "$second" 0 | jq -c '[.state, .recompute_reasons.fetch_failure]')" "[\"succeeded\",$damaged]" \
    "the reused map stage computed the $damaged outputs of the damaged executor again"
[ "$(stage_doc "$second" 1 | jq .recompute_reasons.fetch_failure)" -ge 1 ] || fail "no reduce task reported a fetch failure"
grep -q 'reason=fetch_failure' "$T/driver.log" || fail "no fetch failure in the driver log"
echo "ok: fetch failures: the $damaged damaged map outputs computed again, counts exact"
echo "PASS test_recovery"
