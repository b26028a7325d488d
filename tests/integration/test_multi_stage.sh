#!/usr/bin/env bash
# test_multi_stage.sh -- a job of three shuffles (tests/jobs/three_shuffles.c: repartition,
# reduce_by_key, sort_by_key) writes exactly the awk reference, byte for byte, with 3, 2 and
# 1 executors and with different partition counts; and again on executors whose block store
# holds 1 MiB, so that shuffle blocks spill to disk. The two sides of a join run at once.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_kafka lines:4
start_driver
start_executor ex1 --slots 2
start_executor ex2 --slots 2
start_executor ex3 --slots 1
wait_executors 3

# 150,000 lines of 8 words from a 2,000-word vocabulary, skewed (about 7 MB of text)
awk 'BEGIN { srand(11); for (n = 0; n < 150000; n++) { line = "";
        for (w = 0; w < 8; w++) { i = int(1 / (rand() + 0.0005)) % 2000; line = line (w ? " " : "") "w" i }
        print line } }' >"$T/lines.txt"
"$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic lines <"$T/lines.txt" >/dev/null
kept=$("$EMBER_BIN/ember-topic" offsets --bootstrap "$KAFKA" --topic lines | awk '$1 == "total" {print $2}')
expect_eq "$kept" 150000 "records kept by the broker"
tr ' ' '\n' <"$T/lines.txt" | LC_ALL=C sort | uniq -c | awk '{print $2 "\t" $1}' |
    LC_ALL=C sort -t "$(printf '\t')" -k2,2nr -k1,1 >"$T/want.txt"

# run_job NAME PARTITIONS: the job's part files, concatenated in order, equal the reference
run_job() {
    local name=$1 parts=$2
    submit "$EMBER_JOBS/three_shuffles.so" -- --in lines --out "$T/$name" --partitions "$parts" ||
        fail "three_shuffles $name ($parts): $(cat "$T/submit.err")"
    wait_jobs_logged # the status documents read after a run show its jobs ended
    expect_eq "$(ls "$T/$name" | wc -l)" "${parts##* }" "files written by $name"
    cat "$T/$name"/part-* >"$T/$name.txt"
    cmp -s "$T/$name.txt" "$T/want.txt" || { diff "$T/$name.txt" "$T/want.txt" | head; fail "$name ($parts) differs from the reference"; }
    echo "ok: $name: $(wc -l <"$T/want.txt") counts in global order with partitions $parts"
}

run_job three-a "4 3 2"
run_job three-b "1 1 1"
run_job three-c "7 5 3"
last=$(api /api/v1/jobs | jq '[.[] | select(.name | test("sort sample") | not) | .id] | max')
stages=$(api "/api/v1/jobs/$last" | jq -c '[.stages[] | [.source, .state]]')
# the sampling job of sort_by_key ran the first two shuffles: the job proper reuses them
expect_eq "$stages" '[["kafka","skipped"],["partition_by","skipped"],["reduce_by_key","succeeded"],["sort_by_key","succeeded"]]' "stages of the last job"

# independent stages run at the same time: the two sides of a join, 1 s per task
"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/slow_join.so" -- 400 2 5 >"$T/join.out" 2>&1 &
join_pid=$!
wait_api /api/v1/stages '[.[] | select(.state == "running" and .source == "range")] | length == 2' 10
wait "$join_pid" || fail "slow_join: $(cat "$T/join.out")"
expect_eq "$(head -1 "$T/join.out")" "joined 200" "records of the join"
echo "ok: the two map stages of a join ran at the same time"

kill -TERM "$ex3_PID"
wait_api /api/v1/executors '[.[] | select(.state == "alive")] | length == 2'
run_job two-a "4 3 2"
run_job two-b "2 6 4"

kill -TERM "$ex2_PID"
wait_api /api/v1/executors '[.[] | select(.state == "alive")] | length == 1'
run_job one-a "4 3 2"

# a 1 MiB block store: the repartitioned lines (about 7 MB) spill to disk
start_executor ex4 --slots 2 --memory-mb 1
start_executor ex5 --slots 2 --memory-mb 1
kill -TERM "$ex1_PID"
wait_alive "$ex4_PID" "$ex5_PID"
run_job spill-a "4 3 2"
run_job spill-b "1 8 3"
spilled=$(api /api/v1/executors | jq '[.[] | select(.state == "alive") | .spilled_bytes] | add')
[ "$spilled" -gt 1000000 ] || fail "the 1 MiB executors spilled $spilled bytes: $(api /api/v1/executors)"
expect_eq "$(api /metrics | awk '$1 ~ /^ember_executor_spilled_bytes_total/ {n += $2} END {print n}')" "$spilled" "spilled bytes in /metrics"
# the same bytes again, per task: the spill jobs' shuffle-writing tasks report what they spilled
task_spilled=0
for stage in $(api /api/v1/jobs | jq '.[].stages[].id'); do
    n=$(api "/api/v1/stages/$stage" | jq '[.task_list[]?.spilled_bytes // 0] | add // 0')
    task_spilled=$((task_spilled + n))
done
expect_eq "$task_spilled" "$spilled" "spilled bytes summed over the stage pages' task lists"
wait_api /api/v1/executors '[.[] | select(.state == "alive") | .disk_used] | add == 0'
expect_eq "$(find "$T/ex4-spill" "$T/ex5-spill" -type f | wc -l)" 0 "spill files left after the jobs"
echo "ok: $spilled shuffle bytes spilled to disk under a 1 MiB cap, results identical, files removed"
echo "PASS test_multi_stage"
