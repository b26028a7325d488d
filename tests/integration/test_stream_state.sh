#!/usr/bin/env bash
# test_stream_state.sh -- keyed state across a stream's batches (tests/jobs/stream_state.c:
# each item's running count and total, a line "item,count,total" per record, "reset" removes
# an item's state, items idle for 5 s expire):
#   1. running totals across many batches, through an executor's kill -9 (its cached state
#      gone, the checkpoint's read back);
#   2. the five items that stop receiving records expire, counted exactly, while the items
#      that keep receiving them live on; an expired item that comes back starts again;
#   3. a reset removes an item's state.
# Every output line equals awk's running totals over the produced records, exactly once.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_kafka sales:3
cluster_up
OUT=$T/out CK=$T/checkpoint
: >"$T/produced"
# produce LINES...: "item,amount" records keyed by item (one item, one partition, in order)
produce() {
    printf '%s\n' "$@" | tee -a "$T/produced" |
        "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic sales --key-sep , >/dev/null
}
round() { # ROUND ITEMS...: one record of each item, amount derived from the round
    local r=$1 item lines=()
    shift
    for item in "$@"; do lines+=("$item,$(((r * 7 + ${item#k} * 3) % 50 + 1))"); done
    produce "${lines[@]}"
}
out_lines() { cat "$OUT"/batch-*/part-* 2>/dev/null | wc -l; }
wait_out() { wait_until 60 bash -c "[ \$(cat '$OUT'/batch-*/part-* 2>/dev/null | wc -l) -ge $1 ]"; }
query_doc() { api /api/v1/streaming/queries | jq '.[0]'; }

"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/stream_state.so" -- --topic sales \
    --name totals --checkpoint "$CK" --out "$OUT" --interval-ms 50 --ttl-ms 5000 \
    >"$T/query.out" 2>"$T/query.err" &
QUERY_PID=$!

ALL=(k0 k1 k2 k3 k4 k5 k6 k7 k8 k9) LIVE=(k0 k1 k2 k3 k4)
for r in 1 2 3 4; do round $r "${ALL[@]}"; wait_out $((r * 10)); done
echo "ok: running totals over 4 batches"

# ---- 1. an executor killed: its cached state is gone ---------------------------------------------
kill -9 "$ex1_PID"
start_executor ex3 --slots 2
for r in 5 6; do round $r "${ALL[@]}"; wait_out $((r * 10)); done
echo "ok: batches go on after an executor was killed"

# ---- 2. k5..k9 fall silent and expire; k0..k4 live on -----------------------------------------
n=60 r=7
for _ in $(seq 150); do # a round every 0.1 s keeps k0..k4 alive (their TTL is 5 s)
    round $r "${LIVE[@]}"
    n=$((n + 5)) r=$((r + 1))
    wait_out $n
    [ "$(query_doc | jq .state_expired)" = 5 ] && break
    sleep 0.1
done
expect_eq "$(query_doc | jq .state_expired)" 5 "keys expired"
expect_eq "$(query_doc | jq .state_keys)" 5 "keys kept"
echo "EXPIRE k5 k6 k7 k8 k9" >>"$T/produced"
round $r k5 k0 # k5 again: from nothing
n=$((n + 2))
# ---- 3. a reset ---------------------------------------------------------------------------------
produce "k1,reset" "k1,10"
n=$((n + 2))
wait_out $n
expect_eq "$(query_doc | jq .state_expired)" 5 "keys expired, after k5 came back"
curl -sf --max-time 5 "$STATUS/metrics" >"$T/metrics"
grep -q '^ember_streaming_state_expired_total{query="totals"} 5$' "$T/metrics" ||
    fail "expired keys in /metrics: $(grep state_ "$T/metrics")"

"$EMBER_BIN/ember-submit" --driver "$DRIVER" --stop totals >/dev/null 2>&1 || fail "ember-submit --stop failed"
wait "$QUERY_PID" || fail "the query's ember-submit failed: $(tail -3 "$T/query.err")"

# ---- every line: awk's running totals ------------------------------------------------------------
awk -F, '
    /^EXPIRE / { n = split($0, k, " "); for (i = 2; i <= n; i++) { delete c[k[i]]; delete t[k[i]] }; next }
    $2 == "reset" { delete c[$1]; delete t[$1]; print $1 ",0,0"; next }
    { c[$1]++; t[$1] += $2; print $1 "," c[$1] "," t[$1] }' "$T/produced" | LC_ALL=C sort >"$T/want"
cat "$OUT"/batch-*/part-* | LC_ALL=C sort >"$T/got"
cmp -s "$T/want" "$T/got" || {
    diff "$T/want" "$T/got" | head
    fail "the output is not the running totals, each once"
}
echo "ok: $(wc -l <"$T/want") running totals, each exactly once"
echo "PASS"
