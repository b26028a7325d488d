#!/usr/bin/env bash
# test_flow_batch.sh -- a workflow document run by ember-flow on a real cluster
# (tests/flows/sales.json): CSV sales from Kafka -> malformed lines to a dead-letter topic ->
# a rule -> a derived column -> totals per item (sum, count, avg, min, max, distinct_count) into a topic and
# Redis hashes, row keys into Redis strings, and the kept sales as JSON lines in files. Every
# output is compared exactly with a reference computed by Python from the same lines; the
# per-node counters ember-flow prints are checked too. Then: --validate and --explain without
# a cluster, and invalid documents refused with the node, edge or column named.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

FLOW=$EMBER_BIN/ember-flow
start_redis
start_kafka sales:4 sales-bad:1 item-totals:2 sales-alerts:2 catalog:2
cluster_up

# ---- the input: 6,000 sales, with malformed lines among them ---------------------------------
python3 - "$T/sales.csv" <<'EOF'
import sys
with open(sys.argv[1], "w") as out:
    for i in range(6000):
        item = "I%04d" % (i * 7919 % 97)
        qty, price = i % 11, 100 + i * 37 % 900       # qty 0 is filtered out by the rule
        when = "2026-12-04 %02d:%02d:%02d" % (i // 3600 % 24, i // 60 % 60, i % 60)
        line = "%s,%d,%d,%s" % (item, qty, price, when)
        if i % 101 == 0: line = "garbage line %d" % i                 # 1 field
        elif i % 103 == 0: line = "%s,x%d,%d,%s" % (item, i, price, when) # qty not an int
        elif i % 107 == 0: line = "%s,%d,%d,yesterday %d" % (item, qty, price, i)  # not a time
        elif i % 109 == 0: line = "%s,\"quoted, %d\",%d,%s" % (item, i, price, when)  # not an int
        out.write(line + "\n")
EOF
"$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic sales <"$T/sales.csv" >/dev/null

# the catalog the lookup node joins: items I0000..I0089 with a title and a list price; I0090
# and above are not in it (the lookup drops their sales)
python3 - "$T/catalog.csv" <<'EOF'
import sys
with open(sys.argv[1], "w") as out:
    out.write("item,title,list_cents\n")
    for k in range(90): out.write("I%04d,Item number %d,%d\n" % (k, k, 500 + k * 7))
EOF

# ---- the reference -----------------------------------------------------------------------
python3 - "$T/sales.csv" "$T" "$T/catalog.csv" <<'EOF'
import calendar, csv, json, sys, time
src, d = sys.argv[1], sys.argv[2]
catalog = {r["item"]: r for r in csv.DictReader(open(sys.argv[3]))}
bad, kept, totals = [], [], {}
for line in open(src).read().splitlines():
    f = next(csv.reader([line]))
    try:
        assert len(f) == 4
        item, qty, price = f[0], int(f[1]), int(f[2])
        when = calendar.timegm(time.strptime(f[3], "%Y-%m-%d %H:%M:%S"))
    except (AssertionError, ValueError):
        bad.append(line); continue
    if not (qty > 0 and item != "I0000"): continue
    kept.append((item, qty, price, f[3], when))
    t = totals.setdefault(item, [0, 0, 0, None, None, set()])
    t[0] += qty; t[1] += qty * price; t[2] += 1
    t[3] = price if t[3] is None else min(t[3], price)
    t[4] = when if t[4] is None else max(t[4], when)
    t[5].add(price)
fmt = lambda s: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s))
def num(v):  # a double as ember writes it: the shortest of %.15g, %.16g, %.17g that reads back
    for p in (15, 16, 17):
        s = "%.*g" % (p, v)
        if float(s) == v: return s
    return s
def write(name, lines):
    with open("%s/want.%s" % (d, name), "w") as o:
        for l in sorted(lines): o.write(l + "\n")
write("bad", bad)
write("totals", ["%s,%d,%d,%d,%s,%d,%s,%d" % (i, t[0], t[1], t[2], num(t[0] / t[2]), t[3], fmt(t[4]), len(t[5]))
                 for i, t in totals.items()])
write("hashes", ["item:%s %s %s" % (i, f, v) for i, t in totals.items() for f, v in
                 (("qty", t[0]), ("revenue_cents", t[1]), ("sales", t[2]), ("last_sale", fmt(t[4])))])
write("points", ["sale:%s|%s %dx%d" % (k[0], k[3], k[1], k[2]) for k in kept])
write("files", [json.dumps({"item": k[0], "qty": k[1], "when": k[3]}, separators=(",", ":"))
                for k in kept])
alerts = []
for item, qty, price, _, _ in kept:  # each rule that holds, in order
    if qty >= 9: alerts.append("big-sale,item=%s qty=%d" % (item, qty))
    if price > 950 and qty * price >= 1900:
        alerts.append("pricey,item=%s price_cents=%d revenue=%d" % (item, price, qty * price))
write("alerts", alerts)
write("named", ["%s,%s,%d,%d" % (k[0], catalog[k[0]]["title"], k[1], int(catalog[k[0]]["list_cents"]) - k[2])
                for k in kept if k[0] in catalog])
EOF
n_bad=$(wc -l <"$T/want.bad")
n_kept=$(wc -l <"$T/want.files")
n_items=$(wc -l <"$T/want.totals")

# ---- the flow ----------------------------------------------------------------------------
sed "s#@REDIS@#127.0.0.1:$RPORT#g; s#@OUT@#$T/kept#g; s#@CATALOG@#$T/catalog.csv#g" \
    "$EMBER_SRC/tests/flows/sales.json" >"$T/sales.json"
"$FLOW" run "$T/sales.json" --driver "$DRIVER" --kafka "$KAFKA" >"$T/flow.out" 2>"$T/flow.err" ||
    fail "ember-flow run failed: $(tail -5 "$T/flow.err")"
cat "$T/flow.out"

kcat -C -b "$KAFKA" -t sales-bad -e -q -f '%s\n' | LC_ALL=C sort >"$T/got.bad"
kcat -C -b "$KAFKA" -t item-totals -e -q -f '%s\n' | LC_ALL=C sort >"$T/got.totals"
redis_hashes 'item:*' >"$T/got.hashes"
rcli --scan --pattern 'sale:*' | LC_ALL=C sort >"$T/sale.keys" # (keys hold spaces: one per line)
xargs -d '\n' -n 500 redis-cli -p "$RPORT" mget <"$T/sale.keys" | paste -d' ' "$T/sale.keys" - >"$T/got.points"
cat "$T"/kept/part-* | LC_ALL=C sort >"$T/got.files"
kcat -C -b "$KAFKA" -t sales-alerts -e -q -f '%s\n' | LC_ALL=C sort >"$T/got.alerts"
cat "$T"/kept-named/part-* | LC_ALL=C sort >"$T/got.named"
for f in bad totals hashes points files alerts named; do
    LC_ALL=C sort -o "$T/want.$f" "$T/want.$f"
    cmp -s "$T/want.$f" "$T/got.$f" || {
        diff "$T/want.$f" "$T/got.$f" | head -5
        fail "$f differs from the reference ($(wc -l <"$T/want.$f") lines expected, $(wc -l <"$T/got.$f") got)"
    }
done
echo "ok: $n_bad dead letters, $n_items totals (topic and Redis), $n_kept row keys and JSON lines, $(wc -l <"$T/want.alerts") alerts, $(wc -l <"$T/want.named") sales joined with the catalog, exactly"
# the same sales read from the CSV file by a file_source (ember_text_file, at least 5 splits)
# instead of the topic, through the nodes that lead to the two files sinks: the same lines
jq --arg csv "$T/sales.csv" --arg out "$T/from-file" '
    def keep: IN("in", "parse", "positive", "big", "catalog", "discounts", "named");
    .name = "sales-from-file"
    | .nodes |= map(select(.id | keep))
    | .nodes[0] = {"id": "in", "type": "file_source", "path": $csv, "partitions": 5}
    | (.nodes[] | select(.id == "big")).dir = $out
    | (.nodes[] | select(.id == "named")).dir = ($out + "-named")
    | .edges |= map(select((.from | keep) and (.to | keep)))' "$T/sales.json" >"$T/from-file.json"
"$FLOW" --explain "$T/from-file.json" >"$T/from-file.explain" || fail "--explain of the file flow failed"
expect_contains "$(cat "$T/from-file.explain")" "file_source" "--explain: the source's type"
expect_contains "$(cat "$T/from-file.explain")" "text files $T/sales.csv" "--explain: the source's files"
"$FLOW" run "$T/from-file.json" --driver "$DRIVER" >"$T/from-file.out" 2>"$T/from-file.err" ||
    fail "the flow reading the file failed: $(tail -5 "$T/from-file.err")"
cat "$T"/from-file/part-* | LC_ALL=C sort >"$T/got-file.files"
cat "$T"/from-file-named/part-* | LC_ALL=C sort >"$T/got-file.named"
cmp -s "$T/want.files" "$T/got-file.files" || fail "the kept sales read from the file differ from the reference"
cmp -s "$T/want.named" "$T/got-file.named" || fail "the named sales read from the file differ from the reference"
echo "ok: a file_source over the CSV file gives the same $n_kept kept and $(wc -l <"$T/want.named") named sales"

# a lookup whose table is a topic (tests/flows/lookup_topic.json): the same catalog, a line per
# record, cogrouped with the sales, gives the same joined sales as the file's lookup; with
# missing "fail" the misses are counted as failed; a key twice in the topic fails the run
n_named=$(wc -l <"$T/want.named")
tail -n +2 "$T/catalog.csv" | kcat -P -b "$KAFKA" -t catalog -p -1 || fail "kcat could not produce the catalog"
topic_flow() { # MISSING OUT: runs the flow, its output in $T/OUT, its stdout in $T/OUT.out
    sed "s#@OUT@#$T/$2#g; s#@MISSING@#$1#g" "$EMBER_SRC/tests/flows/lookup_topic.json" >"$T/$2.json"
    "$FLOW" run "$T/$2.json" --driver "$DRIVER" --kafka "$KAFKA" >"$T/$2.out" 2>"$T/$2.err"
}
topic_flow drop named-topic || fail "the topic lookup flow failed: $(tail -5 "$T/named-topic.err")"
cat "$T"/named-topic/part-* | LC_ALL=C sort >"$T/got.named-topic"
cmp -s "$T/want.named" "$T/got.named-topic" || {
    diff "$T/want.named" "$T/got.named-topic" | head -5
    fail "the sales joined with the catalog topic differ from the reference"
}
expect_eq "$(awk '$1 == "catalog" { print $3, $4, $5 }' "$T/named-topic.out")" "$n_kept $n_named 0" \
    "the topic lookup's records in, matched, failed"
topic_flow fail named-fail || fail "the topic lookup flow (missing: fail) failed: $(tail -5 "$T/named-fail.err")"
expect_eq "$(awk '$1 == "catalog" { print $3, $4, $5 }' "$T/named-fail.out")" "$n_kept $n_named $((n_kept - n_named))" \
    "the topic lookup's records in, matched, failed (missing: fail)"
# the same lookup in a streaming flow (a stream-static cogroup each batch), stopped once its
# files hold every joined sale
jq --arg ck "$T/topic-ck" '.nodes[0].mode = "stream" | .nodes[0].earliest = true | .checkpoint = $ck
    | .interval_ms = 100 | (.nodes[] | select(.id == "catalog")).partitions = 2' "$T/named-topic.json" | sed "s#$T/named-topic#$T/named-stream#g" >"$T/stream.json"
jq 'del((.nodes[] | select(.id == "catalog")).partitions)' "$T/stream.json" >"$T/stream-noparts.json"
expect_contains "$("$FLOW" --validate "$T/stream-noparts.json" 2>&1 || true)" \
    "node 'catalog' (lookup): a topic lookup in a streaming flow needs 'partitions'" \
    "--validate: a streaming topic lookup without partitions"
"$FLOW" run "$T/stream.json" --driver "$DRIVER" --kafka "$KAFKA" >"$T/stream.out" 2>"$T/stream.err" &
STREAM_PID=$!
wait_until 60 bash -c "[ \"\$(cat '$T'/named-stream/*/part-* 2>/dev/null | wc -l)\" -ge $n_named ]"
"$FLOW" --stop sales-catalog-named --driver "$DRIVER" >/dev/null 2>&1 || fail "ember-flow --stop sales-catalog-named"
wait "$STREAM_PID" || fail "the streaming topic lookup flow failed: $(tail -5 "$T/stream.err")"
cat "$T"/named-stream/*/part-* | LC_ALL=C sort >"$T/got.named-stream"
cmp -s "$T/want.named" "$T/got.named-stream" || fail "the streaming flow's joined sales differ from the reference"
echo "I0001,Anvil again,1" | kcat -P -b "$KAFKA" -t catalog || fail "kcat could not produce to catalog"
if topic_flow drop named-twice; then fail "a key twice in the catalog topic was accepted"; fi
expect_contains "$(cat "$T/named-twice.err")" 'the key "I0001" twice in topic catalog' "the run's error"
echo "ok: a lookup from a topic: $n_named sales joined (batch and streaming), misses counted, a key given twice refused"
# each totals record is keyed by its item (the aggregate's `by`, the sink's default key)
expect_eq "$(kcat -C -b "$KAFKA" -t item-totals -e -q -f '%k %s\n' | awk '$1 != substr($2, 1, 5)' | wc -l)" 0 \
    "totals records whose key is not their item"

# the counters per node: what the reference says each node received, passed and failed
expect_eq "$(awk '$1 == "parse" { print $3, $4, $5 }' "$T/flow.out")" "6000 $((6000 - n_bad)) $n_bad" "parse: in, out, failed"
expect_eq "$(awk '$1 == "positive" { print $3, $4, $5 }' "$T/flow.out")" "$((6000 - n_bad)) $n_kept 0" "positive: in, out, failed"
expect_contains "$(cat "$T/flow.out")" "sink bad (kafka_sink): $n_bad records to sales-bad" "the dead-letter sink's line"
expect_contains "$(cat "$T/ex1.log" "$T/ex2.log")" "flow node 'parse' (csv): a record failed:" "the executors log why a record failed"

# ---- the flow on the status endpoint and page ------------------------------------------------
# every job of the run carries the flow's graph; their counts add up to the table's (parse ran
# once: 'positive' was cached), and node time was measured
wait_jobs_logged
jobs=$(api /api/v1/jobs | jq '[.[] | select(.description.flow.name == "sales-flow")]')
expect_eq "$(jq 'length' <<<"$jobs")" 7 "jobs carrying the flow's graph (a sink each)"
expect_eq "$(jq '[.[0].description.flow.nodes[].id] | length' <<<"$jobs")" 16 "nodes in the graph"
expect_eq "$(jq '[.[].accumulators["flow.parse.in"] // 0] | add' <<<"$jobs")" 6000 "parse's records in, over the jobs"
expect_eq "$(jq '[.[].accumulators["flow.parse.failed"] // 0] | add' <<<"$jobs")" "$n_bad" "parse's failed records, over the jobs"
[ "$(jq '[.[].accumulators["flow.parse.us"] // 0] | add' <<<"$jobs")" -gt 0 ] || fail "no time measured for parse"
big_job=$(jq '[.[] | select(.accumulators["flow.parse.in"] == 6000)][0].id' <<<"$jobs")
chromium_setup
dom "$STATUS/#flow/$big_job" "$T/flow.dom"
grep -q '<section class="panel" id="flow-panel">' "$T/flow.dom" || fail "the flow panel is not shown for #flow/$big_job"
expect_eq "$(grep -o '<g class="node[a-z ]*" data-id="[^"]*"' "$T/flow.dom" | wc -l)" 16 "node boxes drawn"
expect_contains "$(cat "$T/flow.dom")" "<g class=\"node failing\" data-id=\"parse\" data-in=\"6000\" data-out=\"$((6000 - n_bad))\" data-failed=\"$n_bad\">" \
    "the parse node with its counts"
# the counts of the whole run: the derive after the catalog ran in the last job, not this one
expect_eq "$(grep -o '<g class="node[a-z ]*" data-id="discounts"[^>]*>' "$T/flow.dom")" \
    "<g class=\"node\" data-id=\"discounts\" data-in=\"$(wc -l <"$T/want.named")\" data-out=\"$(wc -l <"$T/want.named")\" data-failed=\"0\">" \
    "a node of another of the run's jobs, with its counts"
expect_contains "$(cat "$T/flow.dom")" 'class="flow-edge error"' "the error edge drawn"
screenshot "$STATUS/#flow/$big_job" "$ARTIFACTS/status_flow.png" 1400x900
echo "ok: the flow's graph with per-node counts on the status page"

# ---- checks without a cluster ------------------------------------------------------------
# the document (and the example flows) against the JSON Schema of docs/flow-schema.json, which
# refuses a typo too
python3 - "$EMBER_SRC/docs/flow-schema.json" "$T/sales.json" "$EMBER_SRC"/examples/flows/*.json <<'EOF' || fail "the JSON Schema check"
import json, sys, jsonschema
schema, doc = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
v = jsonschema.Draft202012Validator
v.check_schema(schema)
for path in sys.argv[2:]:
    jsonschema.validate(json.load(open(path)), schema, cls=v)
doc["nodes"][3]["rul"] = doc["nodes"][3].pop("rule")
assert not v(schema).is_valid(doc), "the schema accepts an unknown parameter"
EOF
echo "ok: the document and the examples are valid under docs/flow-schema.json, a typo is not"
expect_eq "$("$FLOW" --validate "$T/sales.json")" "$T/sales.json: ok: flow sales-flow, 16 nodes" "--validate"
"$FLOW" --explain "$T/sales.json" >"$T/explain.out"
expect_contains "$(cat "$T/explain.out")" "shuffle (by its key; combined before and after)" "--explain: the aggregate's shuffle"
expect_contains "$(cat "$T/explain.out")" "cached: 'positive' feeds 3 nodes" "--explain: the fan-out cached"

# invalid documents: exit status 2, the node, the edge or the column named
refuse() { # refuse WHAT JQ-EDIT MESSAGE
    jq "$2" "$T/sales.json" >"$T/bad.json"
    if "$FLOW" --validate "$T/bad.json" >/dev/null 2>"$T/bad.err"; then fail "$1: accepted"; fi
    expect_contains "$(cat "$T/bad.err")" "$3" "$1"
}
refuse "a missing column" '(.nodes[] | select(.id == "positive") | .rule) = "qtty > 0"' \
    "node 'positive' (filter): rule \"qtty > 0\": at 1: no column 'qtty' (the columns: key string"
refuse "a type error" '(.nodes[] | select(.id == "revenue") | .expr) = "qty * item"' \
    "node 'revenue' (derive): expr \"qty * item\": at 5: '*' needs numbers, not int and string"
refuse "a malformed rule" '(.nodes[] | select(.id == "positive") | .rule) = "qty >"' \
    "rule \"qty >\": at 6: expected a value, found the end"
refuse "an unknown type" '.nodes[1].type = "csvv"' "node 'parse': unknown type 'csvv'"
refuse "an edge to nowhere" '.edges[0].to = "nope"' "edge 1: no node 'nope'"
refuse "a cycle" '.edges += [{"from": "revenue", "to": "parse"}]' "node 'parse' has two inputs ('in' and 'revenue')"
refuse "a template's column" '(.nodes[] | select(.id == "points") | .key) = "sale:{rowkey}"' \
    "node 'points' (redis_sink): key: no column 'rowkey' in its input"
refuse "a rule that is not a bool" '(.nodes[] | select(.id == "watch") | .rules[1].when) = "qty + 1"' \
    "node 'watch' (rules): rule 'pricey': when \"qty + 1\" gives a int, not a bool"
refuse "a rules file that is missing" '(.nodes[] | select(.id == "watch")) |= {id, type, file: "/nonexistent/rules.json"}' \
    "node 'watch' (rules): file /nonexistent/rules.json: unable to open"
refuse "a lookup key that is no column of the file" '(.nodes[] | select(.id == "catalog") | .key) = "sku"' \
    "node 'catalog' (lookup): key: 'sku' is not one of the file's columns"
refuse "a relative directory" '(.nodes[] | select(.id == "big") | .dir) = "out"' \
    "node 'big' (files_sink): dir: \"out\" is not an absolute path"
refuse "an unknown parameter" '.nodes[3].rul = "x"' "node 'positive' (filter): unknown parameter 'rul' (its parameters: rule, otherwise)"
refuse "a node leading nowhere" '.nodes += [{"id": "dangling", "type": "filter", "rule": "qty > 1"}] | .edges += [{"from": "positive", "to": "dangling"}]' \
    "node 'dangling' (filter) leads nowhere: add an edge from it to a sink"
refuse "a sink without input" '.edges |= map(select(.to != "big"))' "node 'big' has no input: add an edge to it"
printf '{"nodes": [' >"$T/bad.json"
if "$FLOW" --validate "$T/bad.json" 2>"$T/bad.err"; then fail "a truncated document: accepted"; fi
expect_contains "$(cat "$T/bad.err")" "not JSON: line 1, column" "a truncated document"
echo "ok: invalid documents refused with the node, edge or column named"
echo "PASS test_flow_batch"
