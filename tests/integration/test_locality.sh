#!/usr/bin/env bash
# test_locality.sh -- a reduce task prefers the executor holding most of its shuffle input:
# the map stage of a job runs on the only executor there is; a second executor that joins
# during the reduce stage gets none of its tasks while the first can take them within the
# locality wait (--shuffle-locality-wait-ms; 0 by default: then the executor holding the
# input only takes those tasks first), and the tasks say so (locality "preferred"). Caching
# locality is in test_cache.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_driver --shuffle-locality-wait-ms 30000
start_executor ex1 --slots 2
wait_executors 1

# fast map stage (8 tasks); 4 reduce tasks of about 12 keys x 150 ms: two waves on 2 slots
"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/recovery.so" -- slow-reduce 4000 8 150 4 >"$T/job.out" 2>&1 &
job=$!
wait_api /api/v1/jobs/1 '.stages[1].tasks_running == 2' 10
start_executor ex2 --slots 2
wait_executors 2
wait "$job" || fail "job: $(cat "$T/job.out")"
expect_contains "$(cat "$T/job.out")" "recovery: slow-reduce ok: 50 keys, 4000 records" "result"
wait_job_done 1
reduce=$(api "/api/v1/stages/$(api /api/v1/jobs/1 | jq '.stages[1].id')")
expect_eq "$(jq -c '[.task_list[] | [.executor, .locality]] | unique' <<<"$reduce")" '[[1,"preferred"]]' \
    "every reduce task ran on the executor holding its input, though another was idle"
expect_eq "$(api /api/v1/executors | jq '.[] | select(.id == 2) | .tasks_completed')" 0 "tasks of the idle executor"
echo "ok: reduce tasks waited for the executor holding their shuffle input"
echo "PASS test_locality"
