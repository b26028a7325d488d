#!/usr/bin/env bash
# test_flow_stream.sh -- a streaming workflow (tests/flows/sales_stream.json) run by ember-flow
# as three queries: JSON sales -> malformed records to a dead-letter topic, each item's running
# totals (keyed state across batches) into Redis hashes, revenue per item per event-time minute
# into a topic, alerts by the rules of a file into another. Sales arrive in two rounds; between
# them the flow is stopped (ember-flow --stop), its rules file changed, an executor killed
# with -9, and the flow started again on its checkpoint: the second round is judged by the new
# rules, and the running totals go on from where they were. A last sale hours later moves the
# watermark past every minute. Every output is compared exactly with a reference computed by
# Python from the same records, so nothing was lost or written twice.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

FLOW=$EMBER_BIN/ember-flow
start_redis
start_kafka sales:4 sales-dead:1 sales-minutes:2 sales-alerts:2
cluster_up

# sales I in [FIRST, FIRST + COUNT): one a second of event time from a fixed start, keyed by
# item; some malformed (not JSON, a field missing, a string for a number), some invalid (a
# quantity of 0: the rule drops them); every record also appended to $T/produced
produce() {
    python3 - "$1" "$2" >"$T/round.txt" <<'EOF'
import sys
first, count = int(sys.argv[1]), int(sys.argv[2])
for i in range(first, first + count):
    item = "I%03d" % (i * 31 % 41)
    ts = 1764756000000 + i * 1000
    if i % 97 == 0: v = "not json %d" % i
    elif i % 89 == 0: v = '{"item_id":"%s","qty":2,"ts_ms":%d}' % (item, ts)
    elif i % 83 == 0: v = '{"item_id":"%s","qty":"2","price_cents":10,"ts_ms":%d}' % (item, ts)
    else: v = '{"item_id":"%s","qty":%d,"price_cents":%d,"ts_ms":%d}' % (item, i % 7, 100 + i % 13, ts)
    print("%s|%s" % (item, v))
EOF
    tee -a "$T/produced" <"$T/round.txt" | kcat -P -b "$KAFKA" -t sales -K '|'
}

# the rules, before and after the restart
RULES_V1='[{"name": "big", "when": "qty >= 6", "emit": ["item", "qty"]}]'
RULES_V2='[{"name": "big", "when": "qty >= 5", "emit": ["item", "qty"]},
           {"name": "cheap", "when": "price < 102", "emit": ["item", "price"]}]'

# reference: the expected outputs from every record produced so far ($T/want.*); `minutes`
# only for windows the watermark (the latest event time - 3600 s) has passed; alerts by the
# first rules for the first $RULES_V1_LINES records, by the second after
reference() {
    python3 - "$T/produced" "$T" "${RULES_V1_LINES:-1000000000}" <<'EOF'
import json, sys, time
src, d, v1_lines = sys.argv[1], sys.argv[2], int(sys.argv[3])
dead, totals, minutes, alerts, latest = [], {}, {}, [], 0
for n, line in enumerate(open(src).read().splitlines()):
    item, v = line.split("|", 1)
    try:
        s = json.loads(v)
        it, qty, price, ts = s["item_id"], s["qty"], s["price_cents"], s["ts_ms"]
        assert all(isinstance(x, int) for x in (qty, price, ts)) and isinstance(it, str)
    except (ValueError, KeyError, AssertionError):
        dead.append(v); continue
    latest = max(latest, ts)
    if not (1 <= qty <= 1000000 and price >= 0): continue
    t = totals.setdefault(it, [0, 0, 0]); t[0] += qty; t[1] += qty * price; t[2] += 1
    m = minutes.setdefault((it, ts // 60000 * 60000), [0, 0, 0]); m[0] += qty; m[1] += qty * price; m[2] += 1
    if n < v1_lines:
        if qty >= 6: alerts.append("big,item=%s qty=%d" % (it, qty))
    else:
        if qty >= 5: alerts.append("big,item=%s qty=%d" % (it, qty))
        if price < 102: alerts.append("cheap,item=%s price=%d" % (it, price))
fmt = lambda ms: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000))
def write(name, lines):
    with open("%s/want.%s" % (d, name), "w") as o:
        for l in sorted(lines): o.write(l + "\n")
write("dead", dead)
write("totals", ["item:%s %s %d" % (i, f, t[k]) for i, t in totals.items()
                 for k, f in enumerate(("qty", "revenue_cents", "count"))])
write("minutes", ["%s,%s,%d,%d,%d" % (i, fmt(w), m[0], m[1], m[2]) for (i, w), m in minutes.items()
                  if w + 60000 <= latest - 3600000])
write("alerts", alerts)
EOF
}
collect() {
    kcat -C -b "$KAFKA" -t sales-dead -e -q -f '%s\n' | LC_ALL=C sort >"$T/got.dead"
    redis_hashes 'item:*' >"$T/got.totals"
    kcat -C -b "$KAFKA" -t sales-minutes -e -q -f '%s\n' | LC_ALL=C sort >"$T/got.minutes"
    kcat -C -b "$KAFKA" -t sales-alerts -e -q -f '%s\n' | LC_ALL=C sort >"$T/got.alerts"
}
# run_flow: ember-flow run in the background, until its queries have started; its output in
# $T/flow.N.out (a file per run: a check must never see the last run's lines)
RUNS=0
run_flow() {
    RUNS=$((RUNS + 1))
    OUT=$T/flow.$RUNS.out ERR=$T/flow.$RUNS.err
    "$FLOW" run "$T/flow.json" --driver "$DRIVER" --kafka "$KAFKA" >"$OUT" 2>"$ERR" &
    FLOW_PID=$!
    PIDS+=("$FLOW_PID")
    wait_until 30 grep -q "query live-sales-alerts started" "$OUT"
    expect_eq "$(grep -c '^query live-sales-.* started' "$OUT")" 4 "queries started, one per sink"
}
# stop_flow: ember-flow --stop on the first sink's query; the flow ends, the others stopped
stop_flow() {
    "$FLOW" --stop live-sales-dead --driver "$DRIVER" >/dev/null 2>"$T/stop.err" || fail "ember-flow --stop: $(cat "$T/stop.err")"
    wait_until 60 bash -c "! kill -0 $FLOW_PID 2>/dev/null"
    wait "$FLOW_PID" || fail "the flow ended badly: $(tail -5 "$ERR")"
    expect_contains "$(cat "$OUT")" "flow live-sales: its queries stopped" "the flow's closing line"
}

echo "$RULES_V1" >"$T/rules.json"
sed "s#@REDIS@#127.0.0.1:$RPORT#g; s#@CK@#$T/ck#g; s#@RULES@#$T/rules.json#g" "$EMBER_SRC/tests/flows/sales_stream.json" >"$T/flow.json"
"$FLOW" --validate "$T/flow.json" >/dev/null || fail "the streaming flow is not valid"
run_flow

# ---- round 1, then the flow stopped, its rules changed, an executor killed with -9 ----------
produce 0 1500
reference
expect_outputs 60 collect dead totals minutes alerts
echo "ok: round 1: $(wc -l <"$T/want.dead") dead letters, $(($(wc -l <"$T/want.totals") / 3)) items' totals, $(wc -l <"$T/want.minutes") final minutes, $(wc -l <"$T/want.alerts") alerts"
# each query's per-node counts (its committed batches' accumulators): the queries that run the
# json node (every one but the dead letters' error step, which counts nothing) each read every
# sale through it, and it fails the malformed ones; the page shows each node's counts once
bad1=$(python3 -c 'print(sum(1 for i in range(1500) if i % 97 == 0 or i % 89 == 0 or i % 83 == 0))')
wait_api /api/v1/streaming/queries '[.[] | select(.name | startswith("live-sales-")) | .accumulators["flow.sale.in"] // empty] | length == 3 and all(. == 1500)' 30
expect_eq "$(api /api/v1/streaming/queries | jq -c '[.[] | select(.name | startswith("live-sales-")) | .accumulators["flow.sale.failed"] // empty] | unique')" \
    "[$bad1]" "the json node's failed records, in each of its queries"
expect_eq "$(api /api/v1/streaming/queries | jq -r '.[] | select(.name == "live-sales-alerts") | .accumulators["flow.watch.out"]')" \
    "$(wc -l <"$T/want.alerts")" "the rules node's alerts, in the alerts query"
# the page's flow view of a streaming flow: each node's counts since its queries started
stream_job=$(api /api/v1/jobs | jq '[.[] | select(.description.flow.name == "live-sales")][0].id')
chromium_setup
dom "$STATUS/#flow/$stream_job" "$T/flow.dom"
expect_contains "$(cat "$T/flow.dom")" "<g class=\"node failing\" data-id=\"sale\" data-in=\"1500\" data-out=\"$((1500 - bad1))\" data-failed=\"$bad1\">" \
    "the json node on the page, with its counts since the queries started"
expect_contains "$(cat "$T/flow.dom")" "counts of its 4 queries since they started" "the flow view's note"
screenshot "$STATUS/#flow/$stream_job" "$ARTIFACTS/status_flow_stream.png" 1400x900
stop_flow
# ember-flow's own table, from the queries' totals as they stopped
expect_eq "$(awk '$1 == "sale" { print $2, $3, $4, $5 }' "$OUT")" "json 1500 $((1500 - bad1)) $bad1" \
    "ember-flow's per-node table: the json node"
RULES_V1_LINES=1500
echo "$RULES_V2" >"$T/rules.json"
kill -9 "$ex2_PID"
start_executor ex3 --slots 2
run_flow

# ---- round 2 on the checkpoint, by the new rules ----------------------------------------------
produce 1500 1500
produce 10800 1 # three hours later: every minute of the rounds is final
reference
expect_outputs 90 collect dead totals minutes alerts
echo "ok: restarted with new rules, an executor killed with -9, round 2: $(wc -l <"$T/want.dead") dead letters, $(($(wc -l <"$T/want.totals") / 3)) items' totals, $(wc -l <"$T/want.minutes") final minutes, $(wc -l <"$T/want.alerts") alerts, exactly"
stop_flow

# ---- detached: ember-flow run --detach returns at once; its queries run on, each stopped alone
"$FLOW" run "$T/flow.json" --detach --driver "$DRIVER" --kafka "$KAFKA" >"$T/detached.out" 2>"$T/detached.err" ||
    fail "ember-flow run --detach: $(tail -3 "$T/detached.err")"
expect_contains "$(cat "$T/detached.out")" "flow live-sales: its 4 queries run detached on the driver" "--detach's line"
# (a query is "starting" while it opens its checkpoint)
wait_api /api/v1/streaming/queries '[.[] | select((.name | startswith("live-sales-")) and .state == "running")] | length == 4' 30
echo "ok: 4 detached queries running after ember-flow returned"
produce 10801 1
reference
expect_outputs 60 collect dead totals minutes alerts
for q in dead totals-redis minutes-topic alerts; do
    "$FLOW" --stop "live-sales-$q" --driver "$DRIVER" >/dev/null 2>"$T/stop.err" || fail "--stop live-sales-$q: $(cat "$T/stop.err")"
done
wait_until 30 bash -c "[ \"\$(curl -sf '$STATUS/api/v1/streaming/queries' | jq '[.[] | select((.name | startswith(\"live-sales-\")) and .state == \"running\")] | length')\" = 0 ]"
echo "ok: detached, the flow's queries ran on without ember-flow (one more sale counted) until each was stopped"
echo "PASS test_flow_stream"
