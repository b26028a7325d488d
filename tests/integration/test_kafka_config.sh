#!/usr/bin/env bash
# test_kafka_config.sh -- librdkafka properties passed through (--kafka-config KEY=VALUE,
# --kafka-config-file FILE) to every Kafka client of ember-topic, ember-executor, ember-driver
# and ember-submit, seen by their effect: a property librdkafka does not know, or a bad value,
# fails at startup with librdkafka's message; a file's client.id and security.protocol=ssl
# reach the client (librdkafka's own log names the client and fails the SSL handshake against
# the plaintext embedded broker); an executor given security.protocol=ssl fails its Kafka
# tasks with librdkafka's message while the same job on a plain executor is exact. Also:
# ember-topic produce, when retention dropped records it was given without compression, says
# to use --compression lz4.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_kafka lines:2 big:1
seq 1 100 | sed 's/^/w/' | "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic lines >/dev/null

# ---- ember-topic ------------------------------------------------------------------------------
rc=0
"$EMBER_BIN/ember-topic" offsets --bootstrap "$KAFKA" --topic lines --kafka-config no.such.property=1 \
    >/dev/null 2>"$T/bad.err" || rc=$?
expect_eq "$rc" 2 "ember-topic's exit status for an unknown librdkafka property"
expect_contains "$(cat "$T/bad.err")" 'No such configuration property: "no.such.property"' "librdkafka's message"
rc=0
"$EMBER_BIN/ember-submit" --driver tcp://127.0.0.1:1 --kafka-config security.protocol=bogus x.so \
    >/dev/null 2>"$T/bad2.err" || rc=$?
expect_eq "$rc" 2 "ember-submit's exit status for a bad value"
expect_contains "$(cat "$T/bad2.err")" 'Invalid value "bogus" for configuration property "security.protocol"' "librdkafka's message, from ember-submit"

cat >"$T/client.properties" <<'PROPS'
# librdkafka properties for every client of the process
client.id = ember-conf-test
security.protocol=ssl
PROPS
rc=0
"$EMBER_BIN/ember-topic" offsets --bootstrap "$KAFKA" --topic lines --timeout-ms 3000 \
    --kafka-config-file "$T/client.properties" >/dev/null 2>"$T/ssl.err" || rc=$?
expect_eq "$rc" 1 "ember-topic over SSL to a plaintext broker"
# librdkafka says so in one of two ways, depending on when the plaintext broker hangs up
SSL_TRIED='SSL handshake failed|in state SSL_HANDSHAKE'
grep -qE "$SSL_TRIED" "$T/ssl.err" || fail "librdkafka did not try SSL: $(cat "$T/ssl.err")"
echo "ok: librdkafka tried SSL"
expect_contains "$(cat "$T/ssl.err")" "client=ember-conf-test#consumer" "the file's client.id named the client"
total=$("$EMBER_BIN/ember-topic" offsets --bootstrap "$KAFKA" --topic lines --kafka-config client.id=plain-client |
    awk '$1 == "total" { print $2 }')
expect_eq "$total" 100 "records counted by a client with only a client.id set"
echo "ok: ember-topic passes librdkafka properties through"

# ---- executors ---------------------------------------------------------------------------------
rc=0
"$EMBER_BIN/ember-driver" --listen tcp://127.0.0.1:0 --status off --kafka-config-file "$T/missing.properties" \
    >/dev/null 2>"$T/driver-bad.err" || rc=$?
expect_eq "$rc" 2 "ember-driver's exit status for a missing properties file"
expect_contains "$(cat "$T/driver-bad.err")" "missing.properties" "the driver names the file"
start_driver --max-attempts 1
start_executor ssl --slots 1 --kafka-stall-ms 2000 --kafka-config security.protocol=ssl
wait_executors 1
rc=0
submit --kafka "$KAFKA" "$EMBER_JOBS/word_count.so" -- --in lines --out "$T/wc-ssl" --partitions 2 || rc=$?
[ "$rc" -ne 0 ] || fail "a word count on an executor speaking SSL to a plaintext broker succeeded"
wait_until 20 grep -qE "$SSL_TRIED" "$T/ssl.log"
echo "ok: the executor's Kafka clients used security.protocol=ssl (job failed: $(tail -1 "$T/submit.err" | cut -c1-120))"
kill -TERM "$ssl_PID"
start_executor plain --slots 1
wait_alive "$plain_PID"
submit --kafka "$KAFKA" "$EMBER_JOBS/word_count.so" -- --in lines --out "$T/wc" --partitions 2 ||
    fail "word count on a plain executor: $(tail -3 "$T/submit.err")"
expect_eq "$(cat "$T"/wc/part-* | sort | md5sum)" "$(seq 1 100 | sed 's/^/w/; s/$/\t1/' | sort | md5sum)" "word counts"
echo "ok: the same job on an executor without the setting is exact"

# ---- ember-topic produce over retention ----------------------------------------------------------
rc=0
head -c 8000000 /dev/zero | tr '\0' 'x' | fold -w 100 |
    "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic big >/dev/null 2>"$T/big.err" || rc=$?
expect_eq "$rc" 1 "ember-topic produce of 8 MB into one partition without compression"
expect_contains "$(cat "$T/big.err")" "produce with --compression lz4" "the advice"
echo "PASS test_kafka_config"
