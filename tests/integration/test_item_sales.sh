#!/usr/bin/env bash
# test_item_sales.sh -- examples/item_sales.c: JSON sales from Kafka to Redis and a summary
# topic, through an executor's kill -9. 3,000 sales of 20 items, 4 a second in event time (so
# 12.5 minutes of windows), every 50th record malformed (not JSON, a negative quantity, no
# price, a quantity given as a string), and a last sale 10 minutes later that makes every
# minute before it final. The input is produced with kcat (a Kafka client of its own), half
# before and half after an executor is killed with -9 (that half 20 sales at a time, each read
# by every query before the next: see below). The same awk pass that writes the input
# computes what must come out; then, compared exactly:
#   - Redis item:ITEM {qty, revenue_cents, count}: each item's running totals (redis-cli);
#   - Redis revenue:ITEM {"YYYY-MM-DD HH:MM": revenue_cents}: each final minute;
#   - topic item-sales-summary: one line per item and final minute (read with kcat);
#   - topic item-sales-dead-letter: the malformed records, each once.
# With ITEM_SALES_RUN=flow (test_item_sales_flow.sh) the pipeline is the workflow
# examples/flows/item_sales.json run by ember-flow instead of the C job: the same input, the
# same reference, the same kill -9.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_kafka item_sales:3 item-sales-summary:2 item-sales-dead-letter:1
cluster_up
start_redis

# ---- input and reference ----------------------------------------------------------------------
TZ=UTC awk -v N=3000 -v BASE=1764756000000 -v T="$T" 'BEGIN {
    for (i = 0; i <= N; i++) {
        item = sprintf("I%04d", (i * 7) % 20 + 1); qty = i % 5 + 1; price = 100 + (i * 37) % 900
        ts = BASE + i * 250
        if (i == N) { item = "Z-END"; qty = 1; price = 1; ts = BASE + N * 250 + 600000 }
        if (i % 50 == 49) {
            k = int(i / 50) % 4
            if (k == 0) line = "not json " i
            if (k == 1) line = sprintf("{\"item_id\":\"%s\",\"qty\":-2,\"price_cents\":100,\"ts_ms\":%.0f}", item, ts)
            if (k == 2) line = sprintf("{\"item_id\":\"%s\",\"qty\":3,\"ts_ms\":%.0f}", item, ts)
            if (k == 3) line = sprintf("{\"item_id\":\"%s\",\"qty\":\"3\",\"price_cents\":100,\"ts_ms\":%.0f}", item, ts)
            print "bad|" line > (T "/input"); print line > (T "/want.dead")
            continue
        }
        printf "%s|{\"item_id\":\"%s\",\"qty\":%d,\"price_cents\":%d,\"ts_ms\":%.0f}\n", item, item, qty, price, ts > (T "/input")
        tq[item] += qty; tr[item] += qty * price; tc[item]++
        if (item == "Z-END") continue # its minute is not final
        w = int(ts / 60000) * 60000; key = item SUBSEP sprintf("%.0f", w) # not CONVFMT
        wq[key] += qty; wr[key] += qty * price; wc[key]++
    }
    for (item in tq) printf "%s %d %.0f %d\n", item, tq[item], tr[item], tc[item] > (T "/want.totals")
    for (key in wq) {
        split(key, kw, SUBSEP)
        when = strftime("%Y-%m-%d %H:%M:%S", kw[2] / 1000)
        printf "%s,%s,%d,%.0f,%d\n", kw[1], when, wq[key], wr[key], wc[key] > (T "/want.summary")
        printf "revenue:%s %s %.0f\n", kw[1], substr(when, 1, 16), wr[key] > (T "/want.revenue")
    }
}'
for f in totals summary revenue dead; do LC_ALL=C sort -o "$T/want.$f" "$T/want.$f"; done
expect_eq "$(wc -l <"$T/want.dead")" 60 "malformed records in the input"

# ---- what came out ----------------------------------------------------------------------------
got_totals() {
    local k
    for k in $(rcli --scan --pattern 'item:*'); do
        echo "${k#item:} $(rcli hmget "$k" qty revenue_cents count | tr '\n' ' ' | sed 's/ $//')"
    done | LC_ALL=C sort
}
# collect: what came out, into $T/got.*
collect() {
    got_totals >"$T/got.totals"
    redis_hashes 'revenue:*' >"$T/got.revenue"
    topic_values item-sales-summary >"$T/got.summary"
    topic_values item-sales-dead-letter >"$T/got.dead"
}

# ---- the run: half the input, an executor killed, the rest -------------------------------------
head -n 1500 "$T/input" | kcat -P -b "$KAFKA" -t item_sales -K '|' ||
    fail "kcat could not produce to item_sales"
if [ "${ITEM_SALES_RUN:-c}" = flow ]; then
    EMBER_REDIS=127.0.0.1:$RPORT "$EMBER_BIN/ember-flow" run "$EMBER_SRC/examples/flows/item_sales.json" \
        --checkpoint "$T/ck" --driver "$DRIVER" >"$T/job.out" 2>"$T/job.err" &
else
    "$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/item_sales.so" -- --earliest \
        --interval-ms 100 --checkpoint "$T/ck" --redis "127.0.0.1:$RPORT" --partitions 3 \
        >"$T/job.out" 2>"$T/job.err" &
fi
JOB_PID=$!
wait_until 60 bash -c "[ \$(redis-cli -p $RPORT --scan --pattern 'item:*' | wc -l) -ge 20 ]"
kill -9 "$ex1_PID"
start_executor ex3 --slots 2
# The rest goes in 20 sales at a time (5 s of event time, the windows' delay), each slice read
# by all four queries before the next: a query's watermark is the latest sale it has read less
# 5 s, and a partition whose records became visible a batch after the others' must not be
# further behind than that, or its sales are late (counted, not folded into their minute, as
# with Spark's watermark). Produced in one go, a partition once came a whole half behind.
lines=$(wc -l <"$T/input")
for ((from = 1501; from <= lines; from += 20)); do
    to=$((from + 19 < lines ? from + 19 : lines))
    sed -n "${from},${to}p" "$T/input" | kcat -P -b "$KAFKA" -t item_sales -K '|' ||
        fail "kcat could not produce to item_sales"
    wait_api /api/v1/streaming/queries "[.[].records_in] | length == 4 and all(. >= $to)" 60
done
expect_outputs 120 collect totals revenue summary dead
echo "ok: $(wc -l <"$T/want.totals") items' totals and $(wc -l <"$T/want.revenue") final minutes in Redis, $(wc -l <"$T/want.summary") summary lines and $(wc -l <"$T/want.dead") dead letters, exactly, through an executor's kill -9"

if [ "${ITEM_SALES_RUN:-c}" = flow ]; then
    stop_and_wait ember-flow item-sales-dead-letter
    expect_contains "$(cat "$T/job.out")" "flow item-sales: its queries stopped" "the flow's closing line"
else
    stop_and_wait ember-submit sales-totals
    expect_contains "$(cat "$T/job.err")" "malformed records sent to the dead-letter topic" \
        "the job's closing line"
fi
echo "PASS"
