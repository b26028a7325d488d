#!/usr/bin/env bash
# test_executor_memory.sh -- an executor's memory: what it reports, what a shuffle costs it, and
# what it gives back once idle. One executor (1 slot) shuffles 37.5 MiB in 256 small buckets
# (bench_shuffle.so: 38,400 records of 1 KiB, 16 map and 16 reduce partitions), then, once it
# has given that back, 64 MiB (65,536 records, 4 map and 4 reduce partitions), each job's output
# held in its block store until the job ends. Checked: the status endpoint and /metrics report
# its resident memory; its peak (VmHWM) stayed within twice the data a job held at once plus its
# idle size; after each job, once idle, it logs the memory it gave back, and at the end its
# resident memory falls under 32 MiB (status endpoint and /proc both). With sanitizers the
# allocator keeps freed memory in quarantine: the bounds are skipped there, the give-back is
# still checked.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

MIB=$((1024 * 1024))
start_driver
start_executor ex1 --slots 1
wait_executors 1
rss_of() { api /api/v1/executors | jq '[.[] | select(.state == "alive") | .rss_bytes] | max'; }
peak_of() { awk '/^VmHWM/ { print $2 * 1024 }' "/proc/$ex1_PID/status"; }
# give-backs so far (an executor idle 5 s before its first job gives back too)
given_back() { grep -c 'idle: memory given back' "$T/ex1.log" || true; }
wait_until 20 bash -c "[ \"\$(curl -sf '$STATUS/api/v1/executors' | jq '.[0].rss_bytes')\" -gt 0 ]"
idle=$(awk '/^VmRSS/ { print $2 * 1024 }' "/proc/$ex1_PID/status")
echo "ok: the executor reports its resident memory ($(($(rss_of) / 1024)) KiB; /proc says $((idle / 1024)) KiB)"
# (captured first: grep -q stops reading early, and under pipefail curl's SIGPIPE would fail the check)
metrics=$(api /metrics)
grep -q "^ember_executor_rss_bytes{executor=\"[0-9]*\"} [1-9]" <<<"$metrics" ||
    fail "/metrics has no ember_executor_rss_bytes"

# small buckets first, on the fresh executor (its peak so far is this job's): 38,400 records
# over 16 x 16 partitions, about 150 KiB a bucket; each bucket's chunks start small (64 + 128
# KiB hold these), so the peak stays within twice the data (chunks of the writer's 1 MiB
# would hold 256 MiB for these 37.5 MiB)
before=$(given_back)
submit "$EMBER_JOBS/bench_shuffle.so" -- --records 38400 --map-parts 16 --partitions 16 ||
    fail "bench_shuffle, small buckets: $(tail -3 "$T/submit.err")"
expect_contains "$(cat "$T/submit.out")" "count=38400" "records counted after the small-bucket shuffle"
small_peak=$(peak_of)
small_held=$((38400 * 1024))
echo "ok: 256 small buckets (37.5 MiB): peak resident $((small_peak / MIB)) MiB"
wait_until 60 bash -c "[ \$(grep -c 'idle: memory given back' '$T/ex1.log') -gt $before ]"

before=$(given_back)
submit "$EMBER_JOBS/bench_shuffle.so" -- --records 65536 --map-parts 4 --partitions 4 ||
    fail "bench_shuffle: $(tail -3 "$T/submit.err")"
expect_contains "$(cat "$T/submit.out")" "count=65536" "records counted after the shuffle"
peak=$(peak_of) # the larger of both jobs' peaks
held=$((64 * MIB))
echo "ok: 64 MiB shuffled; peak resident $((peak / MIB)) MiB"

wait_until 60 bash -c "[ \$(grep -c 'idle: memory given back' '$T/ex1.log') -gt $before ]"
line=$(grep 'idle: memory given back' "$T/ex1.log" | tail -1)
chunks=$(sed 's/.*chunks_bytes=\([0-9]*\).*/\1/' <<<"$line")
[ "$chunks" -ge "$held" ] || fail "gave back $chunks bytes of chunks, less than the $held the job held: $line"
echo "ok: idle, the executor gave back $((chunks / MIB)) MiB of chunks"

if [ "${EMBER_SANITIZED:-OFF}" = ON ]; then
    echo "skip: resident memory bounds (sanitizers keep freed memory)"
else
    [ "$small_peak" -le $((2 * small_held + idle)) ] ||
        fail "small buckets: peak resident $((small_peak / MIB)) MiB, over twice the $((small_held / MIB)) MiB held plus the idle $((idle / MIB)) MiB"
    [ "$peak" -le $((2 * held + idle)) ] ||
        fail "peak resident $((peak / MIB)) MiB, over twice the $((held / MIB)) MiB held plus the idle $((idle / MIB)) MiB"
    wait_until 30 bash -c "[ \$(awk '/^VmRSS/ { print \$2 * 1024 }' /proc/$ex1_PID/status) -lt $((32 * MIB)) ]"
    wait_until 30 bash -c "[ \"\$(curl -sf '$STATUS/api/v1/executors' | jq '.[0].rss_bytes')\" -lt $((32 * MIB)) ]"
    echo "ok: resident memory back to $(($(rss_of) / MIB)) MiB (under 32 MiB), peaks within twice the data held"
fi
echo "PASS test_executor_memory"
