#!/usr/bin/env bash
# test_stream_join.sh -- batch operations inside a query, and a static dataset
# (tests/jobs/stream_join.c: sales "item,qty" summed per item within each batch with
# reduce_by_key, inner-joined with a static catalog topic "item,price"):
#   - each batch writes one line per item it saw that the catalog has, with the catalog's
#     price; the quantities of all batches add up to awk's totals; items missing from the
#     catalog never appear;
#   - the catalog may grow between runs of the query: the same checkpoint resumes (a static
#     topic's offsets are not part of the query's identity), and the new item joins;
#   - the catalog as a text file (ember_text_file) instead: every batch joins with its prices.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_kafka sales:3 catalog:2
cluster_up
OUT=$T/out CK=$T/checkpoint
seq 0 19 | awk '{ print "i" $1 "," ($1 * 3 + 1) }' | tee "$T/catalog" |
    "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic catalog >/dev/null
: >"$T/produced"
round() { # R: one sale of each item i0..i24 (i20..i24 are not in the catalog)
    awk -v r="$1" 'BEGIN { for (i = 0; i < 25; i++) print "i" i "," ((r * 5 + i) % 9 + 1) }' |
        tee -a "$T/produced" | "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic sales >/dev/null
}
out_qty() { cat "$OUT"/batch-*/part-* 2>/dev/null | awk -F, '{ s += $2 } END { print s + 0 }'; }
want_qty() { awk -F, 'NR == FNR { known[$1] = 1; next } ($1 in known) { s += $2 } END { print s + 0 }' "$T/catalog" "$T/produced"; }
run_query() {
    "$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/stream_join.so" -- --topic sales \
        --catalog catalog --name join --checkpoint "$CK" --out "$OUT" --interval-ms 50 \
        >>"$T/query.out" 2>>"$T/query.err" &
    QUERY_PID=$!
}

run_query
for r in 1 2 3 4 5; do
    round $r
    want=$(want_qty)
    wait_until 60 bash -c "[ \"\$(cat '$OUT'/batch-*/part-* 2>/dev/null | awk -F, '{ s += \$2 } END { print s + 0 }')\" -ge $want ]"
done
batches=$(ls "$OUT" | grep -c '^batch-')
[ "$batches" -ge 3 ] || fail "only $batches batches"
expect_eq "$(out_qty)" "$(want_qty)" "quantities joined"
# every line: a catalog item at its price, once per batch
for d in "$OUT"/batch-*; do
    twice=$(cat "$d"/part-* | cut -d, -f1 | sort | uniq -d)
    [ -z "$twice" ] || fail "an item twice in $(basename "$d"): $(echo $twice | head -c 200)"
done
awk -F, 'NR == FNR { price[$1] = $2; next } !($1 in price) || price[$1] != $3 { bad++; print } END { exit bad > 0 }' \
    "$T/catalog" <(cat "$OUT"/batch-*/part-*) || fail "a line with an unknown item or a wrong price"
echo "ok: $batches batches, every item summed within its batch and joined with its price"

# ---- the catalog grows between two runs ---------------------------------------------------------
"$EMBER_BIN/ember-submit" --driver "$DRIVER" --stop join >/dev/null 2>&1 || fail "ember-submit --stop failed"
wait "$QUERY_PID" || fail "the query failed: $(tail -3 "$T/query.err")"
echo "i20,100" | tee -a "$T/catalog" | "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic catalog >/dev/null
before=$(out_qty)
run_query
round 6
want=$((before + $(awk -F, 'NR == FNR { known[$1] = 1; next } ($1 in known) { s += $2 } END { print s + 0 }' "$T/catalog" <(tail -n 25 "$T/produced"))))
wait_until 60 bash -c "[ \"\$(cat '$OUT'/batch-*/part-* | awk -F, '{ s += \$2 } END { print s + 0 }')\" -ge $want ]"
grep -q '^i20,[0-9]*,100$' <(cat "$OUT"/batch-*/part-*) || fail "the item added to the catalog did not join"
"$EMBER_BIN/ember-submit" --driver "$DRIVER" --stop join >/dev/null 2>&1 || fail "ember-submit --stop failed"
wait "$QUERY_PID" || fail "the query failed: $(tail -3 "$T/query.err")"
expect_eq "$(out_qty)" "$want" "quantities joined over both runs"
echo "ok: the same checkpoint resumed with a larger catalog, and the new item joined"

# ---- the catalog as a text file -----------------------------------------------------------------
seq 0 24 | awk '{ print "i" $1 "," ($1 * 7 + 2) }' >"$T/catalog.csv"
OUT=$T/out-file CK=$T/checkpoint-file
"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/stream_join.so" -- --topic sales \
    --catalog-file "$T/catalog.csv" --name join-file --checkpoint "$CK" --out "$OUT" --interval-ms 50 \
    >>"$T/query.out" 2>>"$T/query.err" &
QUERY_PID=$!
# the query starts at the topic's first records: every sale so far, all 25 items in the file
want=$(awk -F, '{ s += $2 } END { print s }' "$T/produced")
wait_until 60 bash -c "[ \"\$(cat '$OUT'/batch-*/part-* 2>/dev/null | awk -F, '{ s += \$2 } END { print s + 0 }')\" -ge $want ]"
"$EMBER_BIN/ember-submit" --driver "$DRIVER" --stop join-file >/dev/null 2>&1 || fail "ember-submit --stop failed"
wait "$QUERY_PID" || fail "the query over the catalog file failed: $(tail -3 "$T/query.err")"
expect_eq "$(out_qty)" "$want" "quantities joined with the catalog file"
awk -F, 'NR == FNR { price[$1] = $2; next } !($1 in price) || price[$1] != $3 { bad++; print } END { exit bad > 0 }' \
    "$T/catalog.csv" <(cat "$OUT"/batch-*/part-*) || fail "a line without the catalog file's price"
echo "ok: a query joined every batch with a catalog read from a text file"
echo "PASS"
