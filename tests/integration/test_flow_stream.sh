#!/usr/bin/env bash
# test_flow_stream.sh -- a streaming workflow (tests/flows/sales_stream.json) run by ember-flow
# as three queries: JSON sales -> malformed records to a dead-letter topic, each item's running
# totals (keyed state across batches) into Redis hashes, revenue per item per event-time minute
# into a topic. Sales arrive in two rounds with an executor killed with -9 between them; a
# last sale an hour and more later moves the watermark past every minute. Every output is
# compared exactly with a reference computed by Python from the same records, so nothing was
# lost or written twice. Then the flow is stopped with ember-flow --stop.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

FLOW=$EMBER_BIN/ember-flow
start_redis
start_kafka sales:4 sales-dead:1 sales-minutes:2
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

# reference NAME...: the expected outputs from every record produced so far ($T/want.*);
# `minutes` only for windows the watermark (the latest event time - 3600 s) has passed
reference() {
    python3 - "$T/produced" "$T" <<'EOF'
import json, sys, time
src, d = sys.argv[1], sys.argv[2]
dead, totals, minutes, latest = [], {}, {}, 0
for line in open(src).read().splitlines():
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
fmt = lambda ms: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000))
def write(name, lines):
    with open("%s/want.%s" % (d, name), "w") as o:
        for l in sorted(lines): o.write(l + "\n")
write("dead", dead)
write("totals", ["item:%s %s %d" % (i, f, t[k]) for i, t in totals.items()
                 for k, f in enumerate(("qty", "revenue_cents", "count"))])
write("minutes", ["%s,%s,%d,%d,%d" % (i, fmt(w), m[0], m[1], m[2]) for (i, w), m in minutes.items()
                  if w + 60000 <= latest - 3600000])
EOF
}
collect() {
    kcat -C -b "$KAFKA" -t sales-dead -e -q -f '%s\n' | LC_ALL=C sort >"$T/got.dead"
    redis_hashes 'item:*' >"$T/got.totals"
    kcat -C -b "$KAFKA" -t sales-minutes -e -q -f '%s\n' | LC_ALL=C sort >"$T/got.minutes"
}

sed "s#@REDIS@#127.0.0.1:$RPORT#g; s#@CK@#$T/ck#g" "$EMBER_SRC/tests/flows/sales_stream.json" >"$T/flow.json"
"$FLOW" --validate "$T/flow.json" >/dev/null || fail "the streaming flow is not valid"
"$FLOW" run "$T/flow.json" --driver "$DRIVER" --kafka "$KAFKA" >"$T/flow.out" 2>"$T/flow.err" &
FLOW_PID=$!
PIDS+=("$FLOW_PID")
wait_until 30 grep -q "query live-sales-minutes-topic started" "$T/flow.out"
expect_eq "$(grep -c '^query live-sales-.* started' "$T/flow.out")" 3 "queries started, one per sink"

# ---- round 1, then an executor killed with -9 and another started ---------------------------
produce 0 1500
reference
expect_outputs 60 collect dead totals minutes
echo "ok: round 1: $(wc -l <"$T/want.dead") dead letters, $(($(wc -l <"$T/want.totals") / 3)) items' totals, $(wc -l <"$T/want.minutes") final minutes"
kill -9 "$ex2_PID"
start_executor ex3 --slots 2
produce 1500 1500
produce 10800 1 # three hours later: every minute of the rounds is final
reference
expect_outputs 90 collect dead totals minutes
echo "ok: after an executor's kill -9 and round 2: $(wc -l <"$T/want.dead") dead letters, $(($(wc -l <"$T/want.totals") / 3)) items' totals, $(wc -l <"$T/want.minutes") final minutes, exactly"

# ---- stopped -----------------------------------------------------------------------------
"$FLOW" --stop live-sales-dead --driver "$DRIVER" >/dev/null 2>"$T/stop.err" || fail "ember-flow --stop: $(cat "$T/stop.err")"
wait_until 60 bash -c "! kill -0 $FLOW_PID 2>/dev/null"
wait "$FLOW_PID" || fail "the flow ended badly: $(tail -5 "$T/flow.err")"
expect_contains "$(cat "$T/flow.out")" "valid                    filter" "the per-node table at the end"
echo "PASS test_flow_stream"
