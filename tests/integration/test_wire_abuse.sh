#!/usr/bin/env bash
# test_wire_abuse.sh -- hostile bytes on the driver's and an executor's ports: random
# messages, an oversized frame, a frame with a flipped byte, a request before Hello, and raw
# TCP garbage. Both daemons must keep serving: the driver still runs a job with the exact
# result, counts what it rejected, and the executor still answers a well-formed request.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_driver --max-message-mb 1
start_executor ex1 --slots 2 --max-message-mb 1
wait_executors 1
EX_URL=$(awk '$1 == "address" {print $2}' "$T/ex1.ready")

for target in driver executor; do
    url=$DRIVER role=submitter
    [ "$target" = executor ] && url=$EX_URL role=peer
    port=${url##*:}
    abuse random "$url" 50
    abuse oversized "$url" $((3 << 20))
    abuse corrupt "$url"
    out=$(abuse nohello "$url") || fail "$target: request before Hello was not refused: $out"
    expect_contains "$out" "EMBER_ERR_UNAUTHENTICATED" "$target refuses a request before Hello"
    abuse rawtcp 127.0.0.1 "$port" 100000
    kill -0 "$DRIVER_PID" || fail "driver died"
    kill -0 "$ex1_PID" || fail "executor died"
    out=$(abuse probe "$url" "$role") || fail "$target does not answer a well-formed request: $out"
    echo "ok: $target still serves ($out)"
    expect_tour_exact "abuse of the $target"
done

wait_api /api/v1/driver '.rejected_messages >= 52'
rejected=$(api /api/v1/driver | jq .rejected_messages)
[ "$rejected" -ge 52 ] || fail "driver counted $rejected rejected messages, expected at least 52"
echo "ok: driver counted $rejected rejected messages"
grep -q "rejected message" "$T/ex1.log" || fail "executor did not log rejected messages"
echo "ok: executor logged rejected messages"
expect_eq "$(api /api/v1/executors | jq -r '.[0].state')" alive "executor state"
echo "PASS test_wire_abuse"
