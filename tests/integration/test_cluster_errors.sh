#!/usr/bin/env bash
# test_cluster_errors.sh -- the deploy/ scripts' errors, each provoked on loopback: a bad
# config value, a bad workers file, an unreachable worker (ssh to a closed port; a network
# namespace that does not exist), a missing binary on a worker and on the driver node, a port
# in use (driver, status, executor), an executor that cannot reach its driver, a driver that
# refuses its options, and a driver that never becomes ready. Each must exit non-zero with one
# line "ember: WHO: problem; fix" naming the host and the fix, and leave nothing running.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
deploy_env
export EMBER_BIN EMBER_START_TIMEOUT=10 EMBER_STOP_TIMEOUT=5 EMBER_EXECUTOR_SLOTS=1
me=$(hostname)

# expect_error WHAT NEEDLE... : the command just run by expect_fail failed with status 1 and
# printed exactly one line on stderr, containing every NEEDLE
expect_error() {
    local what=$1 err
    shift
    err=$(cat "$T/fail.err")
    expect_eq "$FAIL_STATUS" 1 "$what: exit status"
    expect_eq "$(wc -l <"$T/fail.err")" 1 "$what: lines on stderr"
    for needle in "$@"; do expect_contains "$err" "$needle" "$what: says '$needle'"; done
}

# nothing_runs: no pid file is left and no process started by the scripts runs
nothing_runs() {
    local f
    for f in "$EMBER_PID_DIR"/*.pid; do
        [ -e "$f" ] || continue
        fail "pid file left behind: $f ($(cat "$f"))"
    done
    ! pgrep -f "$T/" >/dev/null || fail "processes left behind: $(pgrep -af "$T/")"
}

echo localhost >"$T/workers"

# --- a bad config value: nothing starts -----------------------------------------------------
expect_fail "driver port 70000" env EMBER_DRIVER_PORT=70000 "$DEPLOY/start-cluster.sh"
expect_error "driver port 70000" "ember: $me: bad config: EMBER_DRIVER_PORT='70000' is not a whole number in 1..65535" \
    "set it in the environment or in $DEPLOY/ember-env.sh"
expect_fail "executor slots 0" env EMBER_EXECUTOR_SLOTS=0 EMBER_NODE=w7 "$DEPLOY/start-executor.sh"
expect_error "executor slots 0" "ember: worker w7: bad config: EMBER_EXECUTOR_SLOTS='0' is not a whole number in 1..4096"
expect_fail "timeout under two heartbeats" env EMBER_HEARTBEAT_MS=800 EMBER_EXECUTOR_TIMEOUT_MS=1000 "$DEPLOY/start-driver.sh"
expect_error "timeout under two heartbeats" "ember: driver on 127.0.0.1: bad config: EMBER_EXECUTOR_TIMEOUT_MS='1000' is less than twice EMBER_HEARTBEAT_MS=800"
expect_fail "relative log directory" env EMBER_LOG_DIR=logs "$DEPLOY/start-driver.sh"
expect_error "relative log directory" "EMBER_LOG_DIR='logs' is not an absolute path"
nothing_runs

# --- a bad workers file ----------------------------------------------------------------------
printf '# two executors on one host\nlocalhost\n\nlocalhost  # again\n' >"$T/workers"
expect_fail "duplicate worker" "$DEPLOY/start-cluster.sh"
expect_error "duplicate worker" "ember: $me: $T/workers:4: localhost is listed twice" "remove one line"
printf 'localhost\nnode7.example\n' >"$T/workers"
expect_fail "remote worker, loopback driver" "$DEPLOY/start-cluster.sh"
expect_error "remote worker, loopback driver" "worker node7.example is another node but EMBER_DRIVER_HOST=127.0.0.1" \
    "set EMBER_DRIVER_HOST to this node's address"
expect_fail "no workers file" env EMBER_WORKERS_FILE="$T/none" "$DEPLOY/start-cluster.sh"
expect_error "no workers file" "no workers file $T/none; create it"
nothing_runs

# --- an unreachable worker: nothing starts --------------------------------------------------
# the worker 127.0.0.2 is reached with ssh on port 1, where nothing listens
if command -v ssh >/dev/null; then
    printf 'localhost\n127.0.0.2\n' >"$T/workers"
    expect_fail "worker behind a closed ssh port" env EMBER_SSH=ssh \
        EMBER_SSH_OPTS="-p 1 -o BatchMode=yes -o ConnectTimeout=5" "$DEPLOY/start-cluster.sh"
    expect_eq "$(head -n 1 "$T/fail.err")" \
        "ember: worker 127.0.0.2: unreachable with 'ssh -p 1 -o BatchMode=yes -o ConnectTimeout=5 127.0.0.2' (ssh: connect to host 127.0.0.2 port 1: Connection refused); check the host in $T/workers, that it is up and that this user logs in there without a password, or set EMBER_SSH" \
        "unreachable ssh worker"
    expect_eq "$(tail -n +2 "$T/fail.err")" "ember: $me: nothing started: fix the worker(s) above, then run $DEPLOY/start-cluster.sh again" \
        "nothing started after an unreachable worker"
else
    echo "note: no ssh client here, the ssh case is left out"
fi
# a worker reached with "ip netns exec" whose namespace does not exist (a remote worker needs
# a driver address that is not loopback; nothing starts, so nothing ever contacts it)
printf 'ember-no-such-ns-%s\n' "$$" >"$T/workers"
expect_fail "worker in a missing namespace" env EMBER_SSH="ip netns exec" EMBER_DRIVER_HOST=10.77.0.1 "$DEPLOY/start-cluster.sh"
expect_contains "$(head -n 1 "$T/fail.err")" "ember: worker ember-no-such-ns-$$: unreachable with 'ip netns exec ember-no-such-ns-$$' (" \
    "unreachable namespace worker"
expect_contains "$(head -n 1 "$T/fail.err")" "or set EMBER_SSH" "unreachable namespace worker: the fix"
expect_eq "$(wc -l <"$T/fail.err")" 2 "lines for one unreachable worker (its line and 'nothing started')"
nothing_runs

# --- a missing binary -------------------------------------------------------------------------
mkdir "$T/bin-no-executor" "$T/bin-empty"
ln -s "$EMBER_BIN/ember-driver" "$T/bin-no-executor/ember-driver"
echo localhost >"$T/workers"
expect_fail "worker without ember-executor" env EMBER_BIN="$T/bin-no-executor" "$DEPLOY/start-cluster.sh"
expect_eq "$(head -n 1 "$T/fail.err")" \
    "ember: worker localhost: ember-executor not found at $T/bin-no-executor/ember-executor; build or install ember there (same EMBER_HOME on every node), or set EMBER_BIN" \
    "missing executor binary"
expect_fail "driver node without ember-driver" env EMBER_BIN="$T/bin-empty" "$DEPLOY/start-driver.sh"
expect_error "driver node without ember-driver" "ember: driver on 127.0.0.1: ember-driver not found at $T/bin-empty/ember-driver" "or set EMBER_BIN"
nothing_runs

# --- a port in use: a driver started by lib.sh holds a listen port and a status port ----------
start_driver
dport=${DRIVER##*:}
sport=${STATUS##*:}
expect_fail "driver port in use" env EMBER_DRIVER_PORT="$dport" "$DEPLOY/start-driver.sh"
expect_error "driver port in use" "ember: driver on 127.0.0.1: port $dport is in use on this node (EMBER_DRIVER_PORT); stop the process holding it (ss -ltnp 'sport = :$dport' names it) or set EMBER_DRIVER_PORT to a free port"
# the listen address 127.0.0.2:$dport is free, the status address is not
expect_fail "status port in use" env EMBER_DRIVER_HOST=127.0.0.2 EMBER_DRIVER_PORT="$dport" \
    EMBER_STATUS_HOST=127.0.0.1 EMBER_STATUS_PORT="$sport" "$DEPLOY/start-driver.sh"
expect_error "status port in use" "ember: driver on 127.0.0.2: port $sport is in use on this node (EMBER_STATUS_PORT)" \
    "or set EMBER_STATUS_PORT to a free port"
expect_fail "executor port in use" env EMBER_NODE=w7 EMBER_DRIVER_PORT="$dport" EMBER_EXECUTOR_PORT="$dport" \
    "$DEPLOY/start-executor.sh"
expect_error "executor port in use" "ember: worker w7: port $dport is in use on this node (EMBER_EXECUTOR_PORT)"
stop_all
nothing_runs

# --- an executor whose driver does not answer -----------------------------------------------
# (the executor gives up on its own, in about 2 s under sanitizers and load: within the test's
# EMBER_START_TIMEOUT of 10 s, after which the script would say "not registered" instead)
expect_fail "executor without a driver" env EMBER_NODE=w7 EMBER_DRIVER_PORT=1 \
    "$DEPLOY/start-executor.sh"
expect_error "executor without a driver" "ember: worker w7: the driver does not answer (cannot reach tcp://127.0.0.1:1" \
    "start it first (deploy/start-driver.sh) and check that this node reaches 127.0.0.1:1"
nothing_runs

# --- a driver that refuses its options --------------------------------------------------------
expect_fail "driver with a bad option" env EMBER_DRIVER_OPTS="--max-attempts 0" "$DEPLOY/start-driver.sh"
expect_error "driver with a bad option" "ember: driver on 127.0.0.1: ember-driver refused its options (--max-attempts: '0' is not a whole number in 1..15); fix EMBER_DRIVER_OPTS"
nothing_runs

# --- a driver that never becomes ready: a stand-in that never listens ------------------------
mkdir "$T/bin-mute"
cat >"$T/bin-mute/ember-driver" <<EOF
#!/bin/sh
echo \$\$ >"$T/mute.pid"
while sleep 1; do :; done
EOF
chmod +x "$T/bin-mute/ember-driver"
ln -s "$EMBER_BIN/ember-secret" "$T/bin-mute/ember-secret"
SECONDS=0
expect_fail "driver never ready" env EMBER_BIN="$T/bin-mute" EMBER_START_TIMEOUT=2 "$DEPLOY/start-driver.sh"
# (the message below says it waited the 2 s given; this only catches a script that waits on)
[ "$SECONDS" -lt 60 ] || fail "start-driver.sh took $SECONDS s to give up on a 2 s EMBER_START_TIMEOUT"
expect_error "driver never ready" "ember: driver on 127.0.0.1: not ready after 2 s (EMBER_START_TIMEOUT): no answer on http://127.0.0.1:" \
    "see $T/ember-driver.log" "or raise EMBER_START_TIMEOUT"
kill -0 "$(cat "$T/mute.pid")" 2>/dev/null && fail "the driver that never became ready still runs"
echo "ok: the driver that never became ready was stopped"
nothing_runs
echo "PASS test_cluster_errors"
