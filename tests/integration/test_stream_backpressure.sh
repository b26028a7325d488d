#!/usr/bin/env bash
# test_stream_backpressure.sh -- a burst absorbed by the adaptive rate: tests/jobs/stream_copy.c
# with --work-us 1000 (each record takes 1 ms: 4 slots process at most 4,000 records/s) and
# --backpressure, on a 100 ms trigger. A few small rounds let the rate be measured; then a
# burst of 20,000 records (five seconds of work, fifty times a round) arrives at once. Every
# batch from then on reads at most what the rate allows (bounded far below the burst: the rate
# never exceeds what the batches processed), the lag returns to 0, the executors' peak memory
# is recorded and bounded, and every line comes out exactly once. The status shows the rate,
# the lag of each partition, and the Prometheus gauges.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_kafka events:4
cluster_up
OUT=$T/out CK=$T/checkpoint
: >"$T/produced"
produce() {
    awk -v a="$1" -v n="$2" 'BEGIN { for (i = a; i < a + n; i++) printf "k%d,event %d\n", i, i }' |
        tee -a "$T/produced" | "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic events >/dev/null
}
out_lines() { cat "$OUT"/batch-*/part-* 2>/dev/null | wc -l; }
wait_out() { wait_until "$2" bash -c "[ \$(cat '$OUT'/batch-*/part-* 2>/dev/null | wc -l) -ge $1 ]"; }

"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/stream_copy.so" -- --topic events \
    --name bp --checkpoint "$CK" --out "$OUT" --interval-ms 100 --earliest --work-us 1000 \
    --backpressure >"$T/query.out" 2>"$T/query.err" &
QUERY_PID=$!

# ---- the rate measured on small rounds ------------------------------------------------------------
for round in 0 1 2 3; do
    produce $((round * 200)) 200
    wait_out $(((round + 1) * 200)) 60
done
wait_api /api/v1/streaming/queries '.[0].backpressure == true and .[0].rate_limit != null' 10
rate=$(api /api/v1/streaming/queries | jq '.[0].rate_limit')
echo "ok: the adaptive rate is measured: $rate records/s"
burst_from=$(($(ls "$CK/offsets" | grep "^[0-9]*$" | sort -n | tail -1) + 1))

# ---- a burst of 20,000 records --------------------------------------------------------------------
# batch_records N: the records batch N read, from its offsets log
batch_records() { jq '[.ranges[] | .[2] - .[1]] | add' "$CK/offsets/$1"; }
produce 800 20000
# the first batches after the burst, read at once (the log keeps the last 100 batches only):
# without back-pressure, the first would read the whole burst
wait_until 60 test -e "$CK/commits/$((burst_from + 2))"
first_batches="$(batch_records "$burst_from") $(batch_records $((burst_from + 1))) $(batch_records $((burst_from + 2)))"
# the batches that left records behind say where, partition by partition
qid=$(api /api/v1/streaming/queries | jq '.[0].id')
wait_api "/api/v1/streaming/queries/$qid/batches" '[.[] | select(.lag > 0)] | length >= 1 and all(.[] | select(.lag > 0); .partitions == 4 and (.lag_by_partition | length) == 4 and ([.lag_by_partition[].lag] | add) == .lag)' 20
echo "ok: the batches behind the burst keep their lag by partition"
wait_out 20800 180
wait_api /api/v1/streaming/queries '.[0].lag == 0 and ([.[0].lag_by_partition[].lag] | add) == 0 and (.[0].lag_by_partition | length) == 4' 20
echo "ok: the burst was absorbed, the lag is back to 0 on every partition"

# every batch since the burst read at most what a rate of at most 4,000 records/s (the most 4
# slots of 1 ms records process) allows in 100 ms, with slack for the estimate: 2,000
max_batch=0
batches=$(($(ls "$CK/offsets" | grep '^[0-9]*$' | sort -n | tail -1) - burst_from + 1))
for n in $first_batches $(for f in $(ls "$CK/offsets" | grep '^[0-9]*$'); do
    [ "$f" -ge "$burst_from" ] && batch_records "$f"; done); do
    [ "$n" -gt "$max_batch" ] && max_batch=$n
done
[ "$batches" -ge 5 ] || fail "the burst was read in $batches batches"
[ "$max_batch" -le 2000 ] || fail "a batch read $max_batch records of the burst at once"
echo "ok: the burst took $batches batches of at most $max_batch records (the first: $first_batches)"

peak_kb=0
for pid in "$ex1_PID" "$ex2_PID"; do
    kb=$(awk '$1 == "VmHWM:" {print $2}' "/proc/$pid/status")
    [ "$kb" -gt "$peak_kb" ] && peak_kb=$kb
done
# AddressSanitizer's shadow memory and quarantine multiply an executor's footprint
limit_mb=256
# (ldd's output taken whole: `ldd | grep -q` fails under pipefail when grep exits first)
case "$(ldd "$EMBER_BIN/ember-executor")" in *libasan*) limit_mb=1024 ;; esac
echo "executor peak RSS: $((peak_kb / 1024)) MiB (bound $limit_mb MiB)"
[ "$peak_kb" -lt $((limit_mb * 1024)) ] || fail "an executor's peak RSS reached $((peak_kb / 1024)) MiB"

curl -sf --max-time 5 "$STATUS/metrics" >"$T/metrics"
promtool check metrics <"$T/metrics" >/dev/null 2>&1 ||
    fail "/metrics fails promtool: $(promtool check metrics <"$T/metrics" 2>&1 | head -5)"
grep -q '^ember_streaming_rate_limit{query="bp"} [0-9]' "$T/metrics" || fail "no rate limit in /metrics"
expect_eq "$(grep -c '^ember_streaming_partition_lag_records{query="bp",partition="[0-3]"} 0$' "$T/metrics")" 4 \
    "partitions with lag 0 in /metrics"

"$EMBER_BIN/ember-submit" --driver "$DRIVER" --stop bp >/dev/null 2>&1 || fail "ember-submit --stop failed"
wait "$QUERY_PID" || fail "the query's ember-submit failed: $(tail -3 "$T/query.err")"
awk '{ print toupper($0) }' "$T/produced" | LC_ALL=C sort >"$T/want"
cat "$OUT"/batch-*/part-* | LC_ALL=C sort >"$T/got"
cmp -s "$T/want" "$T/got" || fail "the output does not hold each line exactly once"
echo "ok: $(wc -l <"$T/want") lines, each exactly once"
echo "PASS"
