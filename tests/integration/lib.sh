# lib.sh -- shared harness of ember's integration tests: real processes on free loopback ports.
#
# Source it from a test script (set -euo pipefail first). It makes a scratch directory $T
# and a cluster secret in it (EMBER_SECRET_FILE, used by every process the test starts),
# starts processes with start_* (each one's log in $T/<name>.log), and on exit stops every
# process it started (TERM, then KILL after 5 s), fails the test if a daemon's log holds a
# sanitizer report, prints the logs' tails if the test failed, and removes $T. A test still
# running 20 s before its ctest timeout is failed by a watchdog that prints what it runs.
# Daemons bind port 0 and publish their addresses in ready files, so tests never race for
# ports.
: "${EMBER_BIN:?EMBER_BIN must point at the bin directory of a build}"
: "${EMBER_SRC:?EMBER_SRC must point at the source tree}"
EMBER_JOBS=${EMBER_JOBS:-$(dirname "$EMBER_BIN")/jobs}
T=$(mktemp -d "${TMPDIR:-/tmp}/ember-test.XXXXXX")
PIDS=()
# every process of a test proves this cluster secret (docs/security.md); a test that wants
# none points EMBER_SECRET_FILE at a missing file (unset, ~/.ember/cluster.secret would count)
export EMBER_SECRET_FILE=$T/cluster.secret
# in ASan builds: nng 1.5.2's own message leaks are not reported (lsan.supp says why)
export LSAN_OPTIONS=${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$EMBER_SRC/tests/integration/lsan.supp
"$EMBER_BIN/ember-secret" "$EMBER_SECRET_FILE" >/dev/null 2>&1 ||
    { echo "FAIL: cannot make a cluster secret in $T" >&2; exit 1; }

# stop_all stops every process the test started, the last started first, as
# deploy/stop-cluster.sh stops executors before their driver: clients go, then executors (each
# says goodbye to a driver that is still there), then the driver, then Kafka. Each gets TERM,
# and KILL after 5 s.
stop_all() {
    local i pid
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[i]}
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}

# sanitizer_reports lists the logs holding a sanitizer report: daemons built with ASan and
# UBSan report to stderr, and such a report fails the test even when every check passed
sanitizer_reports() {
    grep -l -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T"/*.log 2>/dev/null || true
}

on_exit() {
    local rc=${1:-$?} reports
    watchdog_off
    [ ! -e "$T/.watchdog-fired" ] || rc=1
    stop_all
    reports=$(sanitizer_reports)
    if [ -n "$reports" ]; then
        for f in $reports; do
            echo "---- sanitizer report in $(basename "$f")"
            grep -E -A 30 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f" | head -60
        done
        rc=1
    fi
    if [ "$rc" != 0 ]; then
        for f in "$T"/*.log; do
            [ -f "$f" ] || continue
            echo "---- tail of $(basename "$f")"
            tail -n 25 "$f"
        done
    fi
    rm -rf "$T"
    exit "$rc"
}
trap on_exit EXIT

# The watchdog. ctest kills a test that runs into its timeout without on_exit: nothing would
# say what it was waiting for, nor show its daemons' logs. EMBER_TEST_TIMEOUT (the test's
# ctest timeout, from tests/CMakeLists.txt) less 20 seconds into the test, the watchdog
# prints the processes the test runs and ends them; the test then fails through on_exit,
# with its logs' tails.
descendants() { # PID [SKIP]: the processes under PID, but for SKIP and those under it
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        [ "$child" != "${2:-}" ] || continue
        echo "$child"
        descendants "$child" "${2:-}"
    done
}
watchdog() { # SECONDS: waits on the fifo $T/.watchdog, which watchdog_off writes a line to
    local pids me=$BASHPID
    ! read -r -t "$1" _ <>"$T/.watchdog" 2>/dev/null || return 0
    [ -d "$T" ] || return 0
    touch "$T/.watchdog-fired"
    pids=$(descendants $$ "$me" | paste -sd, -)
    echo "FAIL: still running after $1 s, near ctest's timeout; ending what it runs:" >&2
    [ -z "$pids" ] || ps -o pid,ppid,etimes,args -p "$pids" >&2 || true
    [ -z "$pids" ] || kill -TERM ${pids//,/ } 2>/dev/null || true
}
watchdog_off() {
    [ -n "${WATCHDOG_PID:-}" ] || return 0
    echo off 1<>"$T/.watchdog"
    wait "$WATCHDOG_PID" 2>/dev/null || true
    WATCHDOG_PID=
}
WATCHDOG_PID=
if [ "${EMBER_TEST_TIMEOUT:-0}" -gt 30 ] && mkfifo "$T/.watchdog"; then
    watchdog $((EMBER_TEST_TIMEOUT - 20)) &
    WATCHDOG_PID=$!
fi

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# expect_eq ACTUAL EXPECTED WHAT
expect_eq() {
    [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"
    echo "ok: $3 = $2"
}

# expect_contains TEXT NEEDLE WHAT
expect_contains() {
    case "$1" in
    *"$2"*) echo "ok: $3" ;;
    *) fail "$3: '$2' not found in: $1" ;;
    esac
}

# wait_for_file FILE [SECONDS]
wait_for_file() {
    local i
    for i in $(seq $((${2:-10} * 20))); do
        [ -s "$1" ] && return 0
        sleep 0.05
    done
    fail "timed out waiting for $1"
}

# start_redis [ARGS...] -> a redis-server of the test's own on a free loopback port, nothing
# persisted (sets RPORT; ARGS go to redis-server, e.g. --requirepass P with RPASS=P set)
start_redis() {
    command -v redis-server >/dev/null ||
        fail "redis-server not found: it is a declared test dependency (Debian package redis-server); run deploy/install-deps.sh"
    RPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no "$@" \
        >"$T/redis.log" 2>&1 &
    PIDS+=($!)
    wait_until 20 redis_up
}
# rcli ARGS...: redis-cli against the test's redis-server (with the password $RPASS if set)
rcli() { redis-cli -p "$RPORT" ${RPASS:+-a "$RPASS" --no-auth-warning} "$@"; }
redis_up() { rcli ping 2>/dev/null | grep -q PONG; }
# redis_hashes PATTERN: "KEY FIELD VALUE" for each field of the hashes matching PATTERN, sorted
redis_hashes() {
    local k
    for k in $(rcli --scan --pattern "$1"); do
        rcli hgetall "$k" | paste - - | awk -F'\t' -v k="$k" '{ print k, $1, $2 }'
    done | LC_ALL=C sort
}
# topic_values TOPIC: the value of every record of TOPIC (read with kcat), sorted
topic_values() { kcat -C -b "$KAFKA" -t "$1" -e -q -f '%s\n' | LC_ALL=C sort; }

# expect_outputs SECONDS COLLECT NAME...: runs COLLECT, which writes $T/got.NAME for each NAME,
# until every $T/got.NAME equals $T/want.NAME or SECONDS pass; then fails on one that differs
expect_outputs() {
    local deadline=$((SECONDS + $1)) collect=$2 f same
    shift 2
    while :; do
        "$collect"
        same=1
        for f in "$@"; do cmp -s "$T/want.$f" "$T/got.$f" || same=0; done
        if [ "$same" = 1 ] || [ "$SECONDS" -ge "$deadline" ]; then break; fi
        sleep 0.3
    done
    for f in "$@"; do
        cmp -s "$T/want.$f" "$T/got.$f" || {
            diff "$T/want.$f" "$T/got.$f" | head -5
            fail "$f differs from the reference ($(wc -l <"$T/want.$f") lines expected, $(wc -l <"$T/got.$f") got)"
        }
    done
}

# start_kafka TOPIC:PARTITIONS... -> sets KAFKA (bootstrap address)
start_kafka() {
    local args=() t
    for t in "$@"; do args+=(--topic "$t"); done
    "$EMBER_BIN/ember-kafka" "${args[@]}" --bootstrap-file "$T/kafka.addr" >"$T/kafka.log" 2>&1 &
    PIDS+=($!)
    wait_for_file "$T/kafka.addr"
    KAFKA=$(cat "$T/kafka.addr")
}

# start_driver [ARGS...] -> sets DRIVER (nng URL) and STATUS (http base URL)
start_driver() {
    rm -f "$T/driver.ready"
    "$EMBER_BIN/ember-driver" --listen tcp://127.0.0.1:0 --status 127.0.0.1:0 \
        ${KAFKA:+--kafka "$KAFKA"} --ready-file "$T/driver.ready" "$@" >"$T/driver.log" 2>&1 &
    PIDS+=($!)
    DRIVER_PID=$!
    wait_for_file "$T/driver.ready"
    DRIVER=$(awk '$1 == "driver" {print $2}' "$T/driver.ready")
    STATUS=$(awk '$1 == "status" {print $2}' "$T/driver.ready")
}

# start_executor NAME [ARGS...] -> sets EXECUTOR_PID and <NAME>_PID
start_executor() {
    local name=$1
    shift
    "$EMBER_BIN/ember-executor" --driver "$DRIVER" --work-dir "$T/$name" --spill-dir "$T/$name-spill" \
        --ready-file "$T/$name.ready" "$@" >"$T/$name.log" 2>&1 &
    PIDS+=($!)
    EXECUTOR_PID=$!
    printf -v "${name}_PID" '%s' "$!"
    wait_for_file "$T/$name.ready"
}

# cluster_up [DRIVER_ARGS...]: a driver and two executors ex1, ex2 of 2 slots, both alive
cluster_up() {
    start_driver "$@"
    start_executor ex1 --slots 2
    start_executor ex2 --slots 2
    wait_executors 2
}

# ---- streaming queries (their checkpoint in $CK) ----------------------------------------------
# committed: the batches the checkpoint holds committed; wait_committed N: until it holds N
committed() { ls "$CK/commits" 2>/dev/null | grep -c '^[0-9]*$' || true; }
wait_committed() {
    wait_until 60 bash -c "[ \$(ls '$CK/commits' 2>/dev/null | grep -c '^[0-9]*\$') -ge $1 ]"
}
# produce_events FIRST COUNT: lines "kI,event I" for I in FIRST..FIRST+COUNT-1 to topic events,
# every 7th one marked " skip", each also appended to $T/produced
produce_events() {
    awk -v a="$1" -v n="$2" 'BEGIN { for (i = a; i < a + n; i++)
        printf "k%d,event %d%s\n", i, i, (i % 7 == 0 ? " skip" : "") }' | tee -a "$T/produced" |
        "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic events >/dev/null
}

# stop_and_wait PROGRAM QUERY: stops the streaming query QUERY with ember-submit or ember-flow
# (PROGRAM), then waits for the job started in the background ($JOB_PID) to end well
stop_and_wait() {
    "$EMBER_BIN/$1" --stop "$2" --driver "$DRIVER" >"$T/stop.out" 2>&1 ||
        fail "$1 --stop $2 failed: $(cat "$T/stop.out")"
    wait "$JOB_PID" || fail "the job failed: $(tail -5 "$T/job.err")"
}

# api PATH: GET a status endpoint path, JSON on stdout
api() {
    curl -sf --max-time 5 "$STATUS$1"
}

# wait_executors N: until N executors are alive
wait_executors() {
    local i n
    for i in $(seq 100); do
        n=$(api /api/v1/executors | jq '[.[] | select(.state == "alive")] | length')
        [ "$n" = "$1" ] && return 0
        sleep 0.05
    done
    fail "expected $1 alive executors, have $n"
}

# submit [ARGS...]: run ember-submit against $DRIVER, output in $T/submit.out / .err
submit() {
    "$EMBER_BIN/ember-submit" --driver "$DRIVER" "$@" >"$T/submit.out" 2>"$T/submit.err"
}

# expect_tour_exact WHAT [SUBMIT_ARGS...]: the api tour job (tests/jobs/api_tour.c) runs on
# the cluster and prints exactly its expected result; WHAT says after what, for the messages
expect_tour_exact() {
    local what=$1
    shift
    rm -rf "$T/tour-out"
    submit --quiet "$@" "$EMBER_JOBS/api_tour.so" -- --out "$T/tour-out" ||
        fail "job failed after $what: $(cat "$T/submit.err")"
    head -n 7 "$EMBER_SRC/tests/integration/api_tour.expected" | diff - "$T/submit.out" ||
        fail "wrong result after $what"
    echo "ok: the next job is exact after $what"
}

# wait_api PATH JQ_EXPR [SECONDS]: until the status document at PATH satisfies JQ_EXPR (the
# snapshot is at most 50 ms behind the driver)
wait_api() {
    local i
    for i in $(seq $((${3:-2} * 20))); do
        [ "$(api "$1" | jq "$2" 2>/dev/null)" = true ] && return 0
        sleep 0.05
    done
    fail "status $1 never satisfied: $2 (now: $(api "$1" | head -c 2000))"
}

# wait_job_done ID [SECONDS]: until the status snapshot shows job ID ended (succeeded or failed).
# ember-submit returning, or a job printing its result, is not enough: the snapshot follows the
# driver up to 50 ms later. Every document is published in one snapshot, so any read after this
# one sees the job's and its stages' documents final, and executors, totals and /metrics with it
wait_job_done() {
    wait_api "/api/v1/jobs/$1" '.state == "succeeded" or .state == "failed"' "${2:-10}"
}

# wait_jobs_finished N [SECONDS]: until the snapshot counts at least N ended jobs (succeeded or
# failed) and none running; like wait_job_done, for reads after jobs whose ids are not known
wait_jobs_finished() {
    wait_api /api/v1/driver ".jobs_succeeded + .jobs_failed >= $1 and .jobs_running == 0" "${2:-10}"
}

# wait_jobs_logged [SECONDS]: wait_jobs_finished for every job that the driver of start_driver
# logged as ended: it logs a job's end before it answers the submitter, so once ember-submit
# returned, this waits for a snapshot that holds every job it ran (for tests that do not count
# their jobs: sort_by_key, for one, runs a sampling job of its own)
wait_jobs_logged() {
    local n
    n=$(grep -c ' job finished job=' "$T/driver.log" || true)
    [ "$n" -gt 0 ] || fail "no 'job finished' line in $T/driver.log"
    wait_jobs_finished "$n" "${1:-10}"
}

# wait_alive PID...: until the alive executors are exactly the executor processes PID... (after
# executors were stopped and others started, a count alone can be met by an older snapshot)
wait_alive() {
    local want
    want=$(printf '%s\n' "$@" | jq -sc sort)
    wait_api /api/v1/executors "[.[] | select(.state == \"alive\") | .pid] | sort == $want" 10
}

# at_exit COMMAND: eval COMMAND when the test exits, before lib.sh's own cleanup (for what
# start_* does not track, e.g. network namespaces); hooks run in the order added
AT_EXIT=()
at_exit() {
    AT_EXIT+=("$1")
    trap run_at_exit EXIT
}

run_at_exit() {
    local rc=$? hook
    for hook in "${AT_EXIT[@]}"; do eval "$hook" || true; done
    on_exit "$rc"
}

# expect_fail WHAT COMMAND...: COMMAND must exit non-zero; its stdout and stderr are left in
# $T/fail.out and $T/fail.err, its exit status in FAIL_STATUS
expect_fail() {
    local what=$1
    shift
    FAIL_STATUS=0
    "$@" >"$T/fail.out" 2>"$T/fail.err" || FAIL_STATUS=$?
    [ "$FAIL_STATUS" != 0 ] || fail "$what: succeeded, expected a failure (output: $(cat "$T/fail.out" "$T/fail.err"))"
    echo "ok: $what fails (status $FAIL_STATUS)"
}

# abuse ARGS...: tests/tools/wire_abuse, failing the test if it has not ended within 90 s
abuse() {
    local rc=0
    timeout 90 "$EMBER_BIN/wire_abuse" "$@" || rc=$?
    [ "$rc" != 124 ] || fail "wire_abuse $* did not end within 90 s"
    return "$rc"
}

# wait_until SECONDS COMMAND...: until COMMAND succeeds; fails the test after SECONDS
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for: $*"
        sleep 0.1
    done
}

# deploy_env: the deploy/ scripts keep their work, pid and log files in $T (logs directly in
# $T, so that a failing test prints their tails) and read the workers file $T/workers
deploy_env() {
    export EMBER_WORK_DIR=$T/work EMBER_DRIVER_STATE_DIR=$T/driver-state EMBER_PID_DIR=$T/run EMBER_LOG_DIR=$T EMBER_WORKERS_FILE=$T/workers
    DEPLOY=$EMBER_SRC/deploy
}

# ---- headless Chromium (the status page tests) ------------------------------------------------
# chromium_setup: Chromium is there; ARTIFACTS is where tests keep screenshots
# ($EMBER_ARTIFACTS, else <build>/artifacts)
chromium_setup() {
    CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
    [ -x "$CHROMIUM" ] ||
        fail "$CHROMIUM not found: headless Chromium is a declared test dependency (Debian package chromium); run deploy/install-deps.sh"
    ARTIFACTS=${EMBER_ARTIFACTS:-$(dirname "$EMBER_BIN")/artifacts}
    mkdir -p "$ARTIFACTS"
}

# browser ARGS...: headless Chromium with a fresh profile, bounded in time; leaves no process
browser() {
    local profile rc=0 pid
    profile=$(mktemp -d "$T/chrome.XXXXXX")
    timeout -k 5 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run --disable-quic \
        --user-data-dir="$profile" "$@" 2>>"$T/chromium.log" || rc=$?
    # helpers of this run that outlived it (none expected): ours, found by profile
    for pid in $(pgrep -f -- "--user-data-dir=$profile" || true); do kill -KILL "$pid" 2>/dev/null || true; done
    return "$rc"
}

# screenshot URL FILE WIDTHxHEIGHT: a screenshot kept as FILE (an artifact), after 5 s of
# (virtual) page time; checked to be a PNG of that size and not blank
screenshot() {
    local size
    rm -f "$2"
    browser --virtual-time-budget=5000 --window-size="${3/x/,}" --screenshot="$2" "$1" >/dev/null ||
        fail "chromium --screenshot of $1 failed (see chromium.log)"
    [ -f "$2" ] || fail "no screenshot at $2"
    expect_eq "$(head -c 8 "$2" | od -An -tx1 | tr -d ' \n')" 89504e470d0a1a0a "PNG signature"
    expect_eq "$(od -An -tu1 -j16 -N8 "$2" | awk '{print $3 * 256 + $4 "x" $7 * 256 + $8}')" "$3" "screenshot size"
    size=$(wc -c <"$2")
    [ "$size" -gt 20000 ] || fail "the screenshot is only $size bytes: a blank page?"
    echo "ok: screenshot $2 ($size bytes)"
}

# dom URL FILE: the DOM after 5 s of (virtual) page time on one line, scripts removed so only
# built markup stays
dom() {
    browser --virtual-time-budget=5000 --dump-dom "$1" >"$2.raw" || fail "chromium --dump-dom $1 failed (see chromium.log)"
    tr '\n' ' ' <"$2.raw" | sed 's#<script[^>]*>.*</script>##g' >"$2"
    [ -s "$2" ] || fail "chromium dumped an empty DOM for $1"
}
