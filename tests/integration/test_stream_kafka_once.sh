#!/usr/bin/env bash
# test_stream_kafka_once.sh -- a streaming query into a Kafka topic writes each record once
# through kill -9 of the executors and of the driver in the middle of a batch
# (tests/jobs/stream_copy.c --out-topic: the lines of topic `events` upper-cased; with
# --hold-file @PATH a record holding "hold-here" waits while PATH exists, so its task has
# written the records before it when it is killed):
#   1. the query runs: batches of lines keyed "k..." spread over the partitions;
#   2. a batch's task writes 300 records, then holds; both executors are killed with -9 and
#      new ones join: the task runs again (attempt 2), reads the output topic back from where
#      it ended when the batch was planned, and writes only the records not there;
#   3. the same with the driver and its executors killed: the new driver runs the batch again
#      from the checkpoint, every task reading back first;
#   4. the output topic, read whole, holds every expected record exactly once, each tagged
#      with its query, batch, task and sequence in its header "ember".
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_kafka events:3 out:4
cluster_up
CK=$T/checkpoint
: >"$T/produced"

# produce_lines KEY FIRST COUNT [MARK]: values "KEY line I" under key KEY (so one partition),
# then "KEY hold-here" when MARK is given; each value also appended to $T/produced
produce_lines() {
    awk -v k="$1" -v a="$2" -v n="$3" -v m="${4:-}" 'BEGIN {
        for (i = a; i < a + n; i++) printf "%s,%s line %d\n", k, k, i
        if (m != "") printf "%s,%s hold-here %s\n", k, k, m }' |
        tee >(cut -d, -f2- >>"$T/produced") |
        "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic events --key-sep , >/dev/null
}
out_total() { "$EMBER_BIN/ember-topic" offsets --bootstrap "$KAFKA" --topic out | awk '$1 == "total" {print $2}'; }
out_at_least() { [ "$(out_total)" -ge "$1" ]; }
run_query() {
    "$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/stream_copy.so" -- --topic events \
        --name once --checkpoint "$CK" --out-topic out --interval-ms 50 --max-per-partition 1000 \
        --earliest --hold-file "@$T/hold" >>"$T/query.out" 2>>"$T/query.err" &
    QUERY_PID=$!
}

# ---- 1. running --------------------------------------------------------------------------------
for k in $(seq 1 20); do produce_lines "k$k" 0 50; done
run_query
wait_until 60 out_at_least 1000
echo "ok: the query writes to topic out ($(out_total) records)"

# hold_batch KEY FIRST: 300 records then a held one, in one partition; waits until the 300
# are in the output topic
hold_batch() {
    touch "$T/hold"
    local before
    before=$(out_total)
    produce_lines "$1" "$2" 300 "$2"
    produce_lines "$1" $(($2 + 300)) 100
    wait_until 60 out_at_least $((before + 300))
}

# ---- 2. the executors killed while a task holds --------------------------------------------------
hold_batch hot1 1000
kill -9 "$ex1_PID" "$ex2_PID"
start_executor ex3 --slots 2
start_executor ex4 --slots 2
rm "$T/hold"
wait_until 60 grep -q "kafka sink read back topic=out query=once" "$T"/ex3.log "$T"/ex4.log
grep -h "kafka sink read back" "$T"/ex3.log "$T"/ex4.log | grep -q "already_written=[1-9]" ||
    fail "the task run again found none of its records: $(grep -h 'read back' "$T"/ex3.log "$T"/ex4.log)"
echo "ok: after the executors' kill -9 the task read back what it wrote: $(grep -ho 'already_written=[0-9]*' "$T"/ex3.log "$T"/ex4.log | sort -t= -k2 -n | tail -1)"

# ---- 3. the driver and its executors killed while a task holds -----------------------------------
hold_batch hot2 2000
kill -9 "$DRIVER_PID" "$ex3_PID" "$ex4_PID"
wait "$QUERY_PID" 2>/dev/null || true
rm "$T/hold"
mv "$T/driver.log" "$T/driver-1.log"
for f in ex1 ex2; do mv "$T/$f.log" "$T/$f-1.log"; done
cluster_up
run_query
wait_until 60 grep -q "kafka sink read back topic=out query=once" "$T"/ex1.log "$T"/ex2.log
echo "ok: the new driver ran the batch again and its tasks read back first"

# ---- 4. every record exactly once ----------------------------------------------------------------
for k in $(seq 21 30); do produce_lines "k$k" 0 50; done
want=$(wc -l <"$T/produced")
wait_until 90 out_at_least "$want"
"$EMBER_BIN/ember-submit" --driver "$DRIVER" --stop once >"$T/stop.out" 2>&1 ||
    fail "ember-submit --stop failed: $(cat "$T/stop.out")"
wait "$QUERY_PID" || true
tr 'a-z' 'A-Z' <"$T/produced" | LC_ALL=C sort >"$T/want"
"$EMBER_BIN/ember-topic" dump --bootstrap "$KAFKA" --topic out | cut -f4- | LC_ALL=C sort >"$T/got"
cmp -s "$T/want" "$T/got" || {
    echo "missing: $(comm -23 "$T/want" "$T/got" | wc -l), extra or repeated: $(comm -13 "$T/want" "$T/got" | wc -l)"
    diff "$T/want" "$T/got" | head
    fail "topic out does not hold each record exactly once"
}
echo "ok: topic out holds its $(wc -l <"$T/want") records exactly once, through both kills"

# another Kafka client (kcat) sees the same records and their tags
kcat -C -b "$KAFKA" -t out -e -q -f '%h|%s\n' >"$T/kcat.out" 2>"$T/kcat.err" ||
    fail "kcat could not read topic out: $(tail -2 "$T/kcat.err")"
expect_eq "$(wc -l <"$T/kcat.out")" "$(wc -l <"$T/want")" "records kcat reads in topic out"
bad=$(grep -cvE '^ember=once/[0-9]+/[0-9]+/[0-9]+\|' "$T/kcat.out" || true)
expect_eq "$bad" 0 "records without their ember=QUERY/BATCH/TASK/SEQ header"
dups=$(cut -d'|' -f1 "$T/kcat.out" | sort | uniq -d | wc -l)
expect_eq "$dups" 0 "(query, batch, task, seq) tags seen twice"
cut -d'|' -f2- "$T/kcat.out" | LC_ALL=C sort | cmp -s - "$T/want" || fail "kcat reads other values than ember-topic"
echo "ok: kcat reads the same records, each tagged once"
echo "PASS"
