#!/usr/bin/env bash
# test_wide_ops.sh -- every wide operation beyond reduce_by_key (aggregate_by_key,
# group_by_key, cogroup, join, left_outer_join, distinct, partition_by, repartition,
# sort_by_key, union) against the references of tests/jobs/wide_ops2.c, on a driver and two
# executors, with 1, 3 and 50 reduce partitions (50 reducers for 40 keys). The job reads
# parallelized data only, so no Kafka broker runs. The expected check count is fixed: a
# check the job skipped fails the test. Then tests/jobs/default_parts.c: wide operations
# given 0 partitions take their parents' count, and ember-submit exits with ember_main's
# return value (0 for a job that handled a failed action, which is still printed).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_driver
start_executor ex1 --slots 2
start_executor ex2 --slots 2
wait_executors 2

# 17 checks per partition count, plus the API and empty-input checks. A time limit of its
# own: a crashed executor would leave the job waiting for executors until ctest's timeout,
# and the logs (with any sanitizer report) are printed only when the script itself fails.
timeout 150 "$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/wide_ops2.so" -- \
    --partitions "1 3 50" >"$T/submit.out" 2>"$T/submit.err" ||
    fail "wide_ops2: $(cat "$T/submit.out" "$T/submit.err" | grep -m1 MISMATCH || cat "$T/submit.out" "$T/submit.err" | tail -3)"
sed 's/^/  /' "$T/submit.out"
expect_contains "$(cat "$T/submit.out")" "wide_ops2: all 53 checks passed" "every wide operation against its reference"
expect_eq "$(grep -c MISMATCH "$T/submit.out" || true)" 0 "mismatches"
wait_jobs_logged

# wide operations given 0 partitions take their parent's count; ember-submit's exit status is
# ember_main's, and an action the job handled still shows on stderr
submit "$EMBER_JOBS/default_parts.so" || fail "default_parts: $(cat "$T/submit.out" "$T/submit.err" | tail -3)"
expect_eq "$(cat "$T/submit.out")" "default_parts: reduce_by_key 5, join 7, distinct 5, sort_by_key 12, repartition 8; records 100 60 160 ok" "partition counts chosen from the parents"
submit "$EMBER_JOBS/default_parts.so" -- --fail-handled || fail "a job that handled its failed action and returned 0 made ember-submit exit $?"
expect_contains "$(cat "$T/submit.out")" "partitions (1..1000000, or 0: the parent's count)" "the failed action's message, for the job"
expect_contains "$(cat "$T/submit.err")" "an action failed and ember_main returned 0" "the handled failure on stderr"
rc=0
submit "$EMBER_JOBS/default_parts.so" -- --exit 3 || rc=$?
expect_eq "$rc" 3 "ember-submit's exit status for ember_main returning 3"
expect_contains "$(cat "$T/submit.err")" "ember_main returned 3" "the cause on stderr"
echo "ok: default partition counts; exit status from ember_main"

# take, first, top, reduce, foreach against the job's own references (the last check fails a
# task on purpose, so the job ends with that error and returns 0 having seen it)
submit "$EMBER_JOBS/bounded_actions.so" || fail "bounded_actions: $(cat "$T/submit.out" "$T/submit.err" | tail -5)"
expect_contains "$(cat "$T/submit.out")" "bounded_actions: all 15 checks passed" "take, first, top, reduce, foreach, reduce_by_key_fn"
wait_jobs_logged

# broadcast values: a 3 MB table read by every task of two actions, fetched once per executor
submit "$EMBER_JOBS/broadcast_job.so" || fail "broadcast_job: $(cat "$T/submit.out" "$T/submit.err" | tail -3)"
expect_contains "$(cat "$T/submit.out")" "broadcast_job: 2 actions over a 3000000-byte value ok" "tasks read the broadcast table"
for ex in ex1 ex2; do
    n=$(grep -c 'broadcast value fetched' "$T/$ex.log" || true)
    [ "$n" -le 2 ] || fail "$ex fetched broadcast values $n times (at most once each: the table and the empty one)"
done
echo "ok: each executor fetched each broadcast value at most once"
wait_jobs_logged

executors=$(api /api/v1/executors)
expect_eq "$(jq '[.[] | select(.tasks_completed > 0)] | length' <<<"$executors")" 2 "executors that ran tasks"
expect_eq "$(api /api/v1/driver | jq '.jobs_failed')" 1 "failed jobs (bounded_actions' poisoned foreach)"
wait_api /api/v1/executors '[.[].blocks] | add == 0' 30
echo "ok: shuffle blocks dropped after the jobs"
echo "PASS test_wide_ops"
