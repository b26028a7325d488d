#!/usr/bin/env bash
# test_taxi_alerts.sh -- the foundation end to end: ember-kafka, a driver, two executors;
# 100,000 taxi lines over 8 partitions; taxi_alerts through ember-submit. Checks the exact
# alert records and dead letters against an independent awk reference, and from the status
# endpoint that both executors ran tasks and that the source stage had exactly 8 tasks.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_kafka taxi:8
start_driver
start_executor ex1 --slots 2
start_executor ex2 --slots 2
wait_executors 2

"$EMBER_BIN/taxi-data" --lines 100000 >"$T/taxi.txt"
"$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic taxi <"$T/taxi.txt" >/dev/null
expect_eq "$("$EMBER_BIN/ember-topic" offsets --bootstrap "$KAFKA" --topic taxi | awk '$1 == "total" {print $2}')" \
    100000 "records kept by the broker"

awk -v MALFORMED="$T/expected.malformed" -v ALERTS="$T/expected.alerts" \
    -f "$EMBER_SRC/tests/integration/taxi_reference.awk" "$T/taxi.txt"
n_malformed=$(wc -l <"$T/expected.malformed")
n_alerts=$(wc -l <"$T/expected.alerts")
[ "$n_malformed" -gt 0 ] && [ "$n_alerts" -gt 0 ] || fail "reference found no malformed lines or alerts"

submit "$EMBER_JOBS/taxi_alerts.so" -- --in taxi --alerts taxi-alerts --dead-letter taxi-dead
cat "$T/submit.out" "$T/submit.err"
expect_contains "$(cat "$T/submit.out")" "$n_malformed malformed lines" "job reports the dead-letter count"
expect_contains "$(cat "$T/submit.out")" "$n_alerts alerts" "job reports the alert count"

"$EMBER_BIN/ember-topic" dump --bootstrap "$KAFKA" --topic taxi-alerts | cut -f3- | LC_ALL=C sort >"$T/got.alerts"
LC_ALL=C sort "$T/expected.alerts" >"$T/want.alerts"
cmp -s "$T/got.alerts" "$T/want.alerts" || { diff "$T/got.alerts" "$T/want.alerts" | head; fail "alert records differ"; }
echo "ok: $n_alerts alert records (key, value) exactly as the reference"

"$EMBER_BIN/ember-topic" dump --bootstrap "$KAFKA" --topic taxi-dead | cut -f4- | LC_ALL=C sort >"$T/got.dead"
LC_ALL=C sort "$T/expected.malformed" >"$T/want.dead"
cmp -s "$T/got.dead" "$T/want.dead" || { diff "$T/got.dead" "$T/want.dead" | head; fail "dead letters differ"; }
expect_eq "$(wc -l <"$T/got.dead")" "$n_malformed" "dead-letter count"

wait_api /api/v1/driver '.jobs_succeeded == 2'
executors=$(api /api/v1/executors)
expect_eq "$(jq '[.[] | select(.tasks_completed > 0)] | length' <<<"$executors")" 2 "executors that ran tasks"
expect_eq "$(jq '[.[].tasks_completed] | add' <<<"$executors")" 16 "tasks run over both jobs"
jobs=$(api /api/v1/jobs)
alerts_job=$(jq '.[] | select(.name == "taxi_alerts: alerts")' <<<"$jobs")
expect_eq "$(jq -r .state <<<"$alerts_job")" succeeded "alerts job state"
expect_eq "$(jq '.stages | length' <<<"$alerts_job")" 1 "stages of a narrow job"
expect_eq "$(jq -r '.stages[0] | "\(.source):\(.topic) \(.tasks)"' <<<"$alerts_job")" "kafka:taxi 8" "source tasks of the alerts job"
expect_eq "$(jq .records_in <<<"$alerts_job")" 100000 "records read by the alerts job"
expect_eq "$(jq .records_out <<<"$alerts_job")" "$n_alerts" "records written by the alerts job"
value_bytes=$(($(wc -c <"$T/taxi.txt") - 100000)) # every line's value, without its newline
expect_eq "$(api /metrics | awk '$1 == "ember_bytes_read_total" {print $2}')" $((2 * value_bytes)) \
    "bytes read by the two jobs (/metrics)"
echo "PASS test_taxi_alerts"
