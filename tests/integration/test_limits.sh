#!/usr/bin/env bash
# test_limits.sh -- what an outsider or a careless member can make a daemon hold is bounded,
# and each breach is a clear error and a counter, never the daemon's memory or descriptors:
#   1. a message announced as 250 MiB of which 200 MiB are sent: refused at its first bytes
#      (a server takes one part, 1 MiB, per message), the driver's memory unchanged;
#   2. 300 idle connections to the status endpoint from one address: at most 32 are kept,
#      closed after 10 s of idleness, and other clients are served meanwhile;
#   3. 10,000 registrations in a row: the registry keeps the live executors and the last 256
#      gone ones, and registering costs the same at the end as at the start;
#   4. a job library over --max-library-mb: refused, saying which limit (the limits on running
#      jobs per submitter and tasks per job are checked in tests/unit/test_sched.c);
#   5. a large parallelized input (a request over 1 MiB travels in parts) gives the exact
#      result.
# After each, a job on the same cluster gives the exact result.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_driver --max-library-mb 1
start_executor ex1 --slots 2
start_executor ex2 --slots 2
wait_executors 2
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$DRIVER_PID/status"; }
port=${DRIVER##*:}
status_port=${STATUS##*:}

# ---- 1. a half-sent huge message ---------------------------------------------------------------
before=$(rss_kb)
out=$(abuse halfsend 127.0.0.1 "$port" 200)
after=$(rss_kb)
echo "$out; driver RSS ${before} kB before, ${after} kB after"
[ "$((after - before))" -lt 65536 ] || fail "the driver grew by $((after - before)) kB"
went=$(sed -E 's/half send: ([0-9]+) of.*/\1/' <<<"$out")
[ "$went" -lt 16 ] || fail "the driver took $went MiB of a message it should refuse at once"
echo "ok: the connection was closed after $went MiB (what the sockets' buffers held)"
expect_tour_exact "a half-sent 200 MiB message"

# ---- 2. idle status connections -------------------------------------------------------------------
abuse idle 127.0.0.1 "$status_port" 300 127.0.0.2 30 >"$T/idle.out" &
idler=$!
wait_until 10 bash -c "ss -tn state established '( sport = :$status_port )' | grep -c 127.0.0.2 | grep -qv '^0$'"
api /api/v1/driver >/dev/null || fail "the status endpoint does not answer others beside 300 idle connections"
echo "ok: the status endpoint answers beside idle connections"
expect_tour_exact "300 idle status connections"
wait "$idler"
out=$(cat "$T/idle.out")
echo "$out"
connected=$(sed -E 's/idle: ([0-9]+) connected.*/\1/' <<<"$out")
closed=$(sed -E 's/.*, ([0-9]+) closed.*/\1/' <<<"$out")
[ "$closed" = "$connected" ] || fail "the status endpoint left $((connected - closed)) idle connections open"
held=$(ss -tn state established "( sport = :$status_port )" | grep -c 127.0.0.2 || true)
expect_eq "$held" 0 "idle connections left"

# ---- 3. 10,000 registrations ------------------------------------------------------------------------
SECONDS=0
out=$(abuse registers "$DRIVER" 10000)
expect_contains "$out" "registers: 10000 of 10000 answered" "10,000 registrations answered"
echo "ok: 10,000 registrations took $SECONDS s"
known=$(api /api/v1/executors | jq length)
[ "$known" -le $((2 + 1 + 256)) ] || fail "the driver keeps $known executors"
echo "ok: the driver keeps $known executors (2 live, the last and 256 gone)"
expect_tour_exact "10,000 registrations"

# ---- 4. the limit on job libraries --------------------------------------------------------------
head -c $((2 << 20)) /dev/urandom >"$T/big.bin"
cp "$EMBER_JOBS/api_tour.so" "$T/big.so"
cat "$T/big.bin" >>"$T/big.so" # still a loadable library: the extra bytes follow its sections
expect_fail "a 2 MiB job library" "$EMBER_BIN/ember-submit" --driver "$DRIVER" "$T/big.so"
expect_contains "$(cat "$T/fail.err")" "over the driver's limit of 1 MiB (--max-library-mb)" \
    "the library limit: the message"
expect_tour_exact "a job library over the limit"

# ---- 5. a request over 1 MiB travels in parts --------------------------------------------------------
submit --quiet "$EMBER_JOBS/big_input.so" -- 100000 ||
    fail "a job with 100,000 parallelized records failed: $(cat "$T/submit.err")"
expect_contains "$(cat "$T/submit.out")" "big_input: 100000 records, sum" "a job whose 7 MiB request came in parts"
expect_tour_exact "a request in parts"
echo "PASS test_limits"
