#!/usr/bin/env bash
# test_kafka_tools.sh -- ember-kafka, ember-topic and taxi-data end to end.
#
# Starts a local broker with a 4-partition topic, produces 20,000 generated taxi lines, and
# checks the counts (offsets), the exact content (dump, compared sorted), that a missing
# topic is reported and never created, that taxi-data is deterministic, and that the broker
# stops cleanly on SIGTERM.
set -euo pipefail

BIN=${EMBER_BIN:?EMBER_BIN must point at the built binaries}
N=20000
work=$(mktemp -d "${TMPDIR:-/tmp}/ember-kafka-tools.XXXXXX")
broker_pid=

cleanup() {
    if [[ -n "$broker_pid" ]] && kill -0 "$broker_pid" 2>/dev/null; then
        kill -TERM "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

die() {
    echo "FAIL: $*" >&2
    exit 1
}

# ---- broker -------------------------------------------------------------------------------
"$BIN/ember-kafka" --topic t:4 --bootstrap-file "$work/bootstrap" \
    >"$work/broker.out" 2>"$work/broker.err" &
broker_pid=$!
for _ in $(seq 1 200); do # up to 20 s
    [[ -s "$work/bootstrap" ]] && break
    kill -0 "$broker_pid" 2>/dev/null || die "ember-kafka exited early: $(cat "$work/broker.err")"
    sleep 0.1
done
[[ -s "$work/bootstrap" ]] || die "no bootstrap file after 20 s"
bs=$(cat "$work/bootstrap")
[[ "$bs" == 127.0.0.1:* ]] || die "unexpected bootstrap '$bs'"
grep -qx "ember-kafka: bootstrap $bs" "$work/broker.out" || die "bootstrap line not on stdout"
echo "broker at $bs"

# ---- bad usage ----------------------------------------------------------------------------
set +e
"$BIN/ember-kafka" --brokers zero >/dev/null 2>"$work/usage.err"; rc=$?
set -e
[[ $rc -eq 2 ]] || die "ember-kafka with a bad option exited $rc, expected 2"
grep -q "brokers" "$work/usage.err" || die "no error message for a bad option"

# ---- taxi-data ----------------------------------------------------------------------------
"$BIN/taxi-data" --lines "$N" >"$work/lines"
[[ $(wc -l <"$work/lines") -eq $N ]] || die "taxi-data did not write $N lines"
"$BIN/taxi-data" --lines "$N" | cmp -s - "$work/lines" || die "taxi-data is not deterministic"
"$BIN/taxi-data" --lines "$N" --seed 7 | cmp -s - "$work/lines" \
    && die "taxi-data with another seed gave the same lines"
head -1 "$work/lines" | grep -Eq '^T[0-9]{4},2026-03-01 00:00:00,1[0-9]{2}\.[0-9]{5},[0-9]{2}\.[0-9]{5}$' \
    || die "unexpected first line: $(head -1 "$work/lines")"
bad=$(grep -Evc '^T[0-9]{4},2026-03-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]+\.[0-9]{5},[0-9]+\.[0-9]{5}$' "$work/lines" || true)
[[ $bad -eq $((N / 97)) ]] || die "expected $((N / 97)) malformed lines, got $bad"
outside=$(awk -F, 'NF == 4 && $3 ~ /^[0-9.]+$/ && $4 ~ /^[0-9.]+$/ {
    n++; if ($3 < 116.1 || $3 > 116.7 || $4 < 39.7 || $4 > 40.1) o++ }
    END { printf "%d", 1000 * o / n }' "$work/lines")
((outside >= 20 && outside <= 100)) || die "points outside the box: ${outside} per mille"

# ---- produce, offsets, dump ---------------------------------------------------------------
out=$("$BIN/ember-topic" produce --bootstrap "$bs" --topic t <"$work/lines")
[[ "$out" == "produced $N records to t" ]] || die "produce said '$out'"

"$BIN/ember-topic" offsets --bootstrap "$bs" --topic t >"$work/offsets"
[[ $(grep -c '^[0-3]	0	[0-9]*$' "$work/offsets") -eq 4 ]] || die "offsets: $(cat "$work/offsets")"
grep -qx "total	$N" "$work/offsets" || die "offsets total is not $N: $(cat "$work/offsets")"

"$BIN/ember-topic" dump --bootstrap "$bs" --topic t >"$work/dump"
[[ $(wc -l <"$work/dump") -eq $N ]] || die "dump printed $(wc -l <"$work/dump") lines"
# partition then offset order, offsets consecutive from 0 in each partition
awk -F'\t' '$1 < p || ($1 == p && $2 != o + 1) || ($1 > p && $2 != 0) { bad = 1 }
    { p = $1; o = $2 } END { exit bad }' p=0 o=-1 "$work/dump" || die "dump is out of order"
cut -f4- "$work/dump" | LC_ALL=C sort >"$work/dumped.sorted"
LC_ALL=C sort "$work/lines" >"$work/lines.sorted"
cmp -s "$work/dumped.sorted" "$work/lines.sorted" || die "dumped values differ from the lines"

# ---- keys ---------------------------------------------------------------------------------
printf 'k1,v1\nk2,v2,x\nnokey\n' |
    "$BIN/ember-topic" produce --bootstrap "$bs" --topic t --key-sep , >/dev/null
"$BIN/ember-topic" dump --bootstrap "$bs" --topic t | cut -f3- | grep -x 'k2	v2,x' >/dev/null \
    || die "key-sep: record k2 not found"
"$BIN/ember-topic" offsets --bootstrap "$bs" --topic t | grep -qx "total	$((N + 3))" \
    || die "offsets after the keyed records"

# ---- create -------------------------------------------------------------------------------
# librdkafka 2.0.2's mock cluster has no CreateTopics: create must then fail at once with a
# clear message and create nothing; a broker that can create must give 3 empty partitions.
set +e
out=$("$BIN/ember-topic" create --bootstrap "$bs" --topic made --partitions 3 2>"$work/create.err")
rc=$?
set -e
if [[ $rc -eq 0 ]]; then
    [[ "$out" == "created topic made with 3 partitions" ]] || die "create said '$out'"
    "$BIN/ember-topic" offsets --bootstrap "$bs" --topic made >"$work/made"
    [[ $(wc -l <"$work/made") -eq 4 ]] || die "created topic: $(cat "$work/made")"
else
    [[ $rc -eq 1 ]] || die "create exited $rc"
    grep -q "cannot create topics" "$work/create.err" || die "create: $(cat "$work/create.err")"
    set +e
    "$BIN/ember-topic" offsets --bootstrap "$bs" --topic made >/dev/null 2>&1
    rc=$?
    set -e
    [[ $rc -eq 1 ]] || die "a failed create left topic 'made' behind"
fi
set +e
"$BIN/ember-topic" create --bootstrap "$bs" --topic t --partitions 3 2>"$work/create.err"
rc=$?
set -e
[[ $rc -eq 1 ]] || die "creating an existing topic exited $rc"
grep -q "already exists" "$work/create.err" || die "create t: $(cat "$work/create.err")"

# ---- missing topic ------------------------------------------------------------------------
set +e
"$BIN/ember-topic" dump --bootstrap "$bs" --topic nosuch >"$work/missing.out" 2>"$work/missing.err"
rc=$?
set -e
[[ $rc -eq 1 ]] || die "dump of a missing topic exited $rc"
grep -q "does not exist" "$work/missing.err" || die "no 'does not exist': $(cat "$work/missing.err")"
[[ $(wc -l <"$work/missing.err") -eq 1 ]] || die "error is not one line: $(cat "$work/missing.err")"
set +e
"$BIN/ember-topic" offsets --bootstrap "$bs" --topic nosuch >/dev/null 2>"$work/missing2.err"
rc=$?
echo hello | "$BIN/ember-topic" produce --bootstrap "$bs" --topic nosuch >/dev/null 2>&1
rc2=$?
"$BIN/ember-topic" offsets --bootstrap "$bs" --topic nosuch >/dev/null 2>&1
rc3=$?
set -e
[[ $rc -eq 1 && $rc2 -eq 1 && $rc3 -eq 1 ]] || die "missing topic got created ($rc $rc2 $rc3)"
grep -q "does not exist" "$work/missing2.err" || die "offsets: $(cat "$work/missing2.err")"

# ---- clean stop ---------------------------------------------------------------------------
kill -TERM "$broker_pid"
set +e
wait "$broker_pid"
rc=$?
set -e
broker_pid=
[[ $rc -eq 0 ]] || die "ember-kafka exited $rc on SIGTERM: $(cat "$work/broker.err")"
[[ ! -e "$work/bootstrap" ]] || die "bootstrap file left behind"

echo "PASS kafka_tools"
