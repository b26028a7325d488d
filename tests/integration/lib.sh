# lib.sh -- shared harness of ember's integration tests: real processes on free loopback ports.
#
# Source it from a test script (set -euo pipefail first). It makes a scratch directory $T,
# starts processes with start_* (each one's log in $T/<name>.log), and on exit stops every
# process it started (TERM, then KILL after 5 s), prints the logs' tails if the test failed,
# and removes $T. Daemons bind port 0 and publish their addresses in ready files, so tests
# never race for ports.
: "${EMBER_BIN:?EMBER_BIN must point at the bin directory of a build}"
: "${EMBER_SRC:?EMBER_SRC must point at the source tree}"
EMBER_JOBS=${EMBER_JOBS:-$(dirname "$EMBER_BIN")/jobs}
T=$(mktemp -d "${TMPDIR:-/tmp}/ember-test.XXXXXX")
PIDS=()

stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do
        local alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
}

on_exit() {
    local rc=$?
    stop_all
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
    "$EMBER_BIN/ember-executor" --driver "$DRIVER" --work-dir "$T/$name" \
        --ready-file "$T/$name.ready" "$@" >"$T/$name.log" 2>&1 &
    PIDS+=($!)
    EXECUTOR_PID=$!
    printf -v "${name}_PID" '%s' "$!"
    wait_for_file "$T/$name.ready"
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

# wait_api PATH JQ_EXPR [SECONDS]: until the status document at PATH satisfies JQ_EXPR (the
# snapshot is at most 50 ms behind the driver)
wait_api() {
    local i
    for i in $(seq $((${3:-2} * 20))); do
        [ "$(api "$1" | jq "$2" 2>/dev/null)" = true ] && return 0
        sleep 0.05
    done
    fail "status $1 never satisfied: $2 (now: $(api "$1" | head -c 400))"
}
