#!/usr/bin/env bash
# start-executor.sh -- starts one ember-executor on this node, in the background, as
# configured in deploy/ember-env.sh (EMBER_DRIVER_HOST/PORT to register with,
# EMBER_EXECUTOR_SLOTS, EMBER_EXECUTOR_MEMORY_MB, EMBER_EXECUTOR_HOST/PORT for its block
# service, EMBER_EXECUTOR_OPTS), and waits until the driver has registered it.
# start-cluster.sh runs it on every worker; it also adds this node to a running cluster.
#
# The executor runs supervised (ember-executor --supervise): a monitor process runs the
# executor as its child; when the child dies of a signal (a job's function crashed it, the
# kernel's OOM killer...) the monitor tells the driver why and what it was running, and starts
# it again after a backoff (500 ms, doubling up to 30 s while it keeps crashing within a
# minute of its start); it comes back as a new executor. The pid file holds the monitor's pid:
# SIGTERM to it stops the executor (which says goodbye to the driver) and then the monitor.
#
#   deploy/start-executor.sh        (no options; settings come from the environment)
#
# EMBER_NODE names this worker in file names and messages (default: the short host name):
# EMBER_PID_DIR/ember-executor-NODE.pid and .ready (executor id and block service address),
# EMBER_LOG_DIR/ember-executor-NODE.log (the previous one kept as .log.1), and
# EMBER_WORK_DIR/executor-NODE/ (job library cache and scratch). Refuses to start while an
# executor of this pid file runs. Exit status 0 once registered; otherwise one line
# "ember: worker NODE: problem; fix" (driver unreachable, port in use, missing binary, bad
# value, not registered within EMBER_START_TIMEOUT seconds, ...) and status 1.
set -euo pipefail
# shellcheck source=ember-lib.sh
. "$(dirname "$0")/ember-lib.sh"
ember_no_options "$0" "$@"
EMBER_NODE=${EMBER_NODE:-$(hostname -s)}
EMBER_WHO="worker $EMBER_NODE"
name=executor-$EMBER_NODE

ember_validate_config
ember_check_binary ember-executor
host=$(ember_executor_host)
driver=tcp://$EMBER_DRIVER_HOST:$EMBER_DRIVER_PORT
ready=$(ember_ready_file "$name")
# the executor gives up on the driver a little before this script gives up on it
connect_ms=$((10#$EMBER_START_TIMEOUT * 750))
args=(--supervise --driver "$driver" --listen "tcp://$host:$EMBER_EXECUTOR_PORT"
    --memory-mb "$EMBER_EXECUTOR_MEMORY_MB" --work-dir "$EMBER_WORK_DIR/$name"
    --connect-timeout-ms "$connect_ms" --ready-file "$ready")
[ -z "$EMBER_EXECUTOR_SLOTS" ] || args+=(--slots "$EMBER_EXECUTOR_SLOTS")
read -ra extra <<<"$EMBER_EXECUTOR_OPTS"
args+=(${extra[@]+"${extra[@]}"})

[ -f "$EMBER_SECRET_FILE" ] ||
    ember_die "no cluster secret at $EMBER_SECRET_FILE (EMBER_SECRET_FILE): copy the driver's there (start-cluster.sh does), mode 0600"
args+=(--secret-file "$EMBER_SECRET_FILE")

registered() { [ -s "$ready" ]; }

ember_start_daemon "$name" ember-executor "${args[@]}"
rc=0
ember_wait_daemon registered || rc=$?
case $rc in
1) ember_start_failed "$name" ember-executor ;;
2)
    ember_abandon_start "$name" ember-executor
    ember_die "not registered with the driver at $driver after $EMBER_START_TIMEOUT s (EMBER_START_TIMEOUT); see $EMBER_DAEMON_LOG, and check that the driver runs and that this node reaches $EMBER_DRIVER_HOST:$EMBER_DRIVER_PORT"
    ;;
esac
id=$(awk '$1 == "executor" {print $2}' "$ready")
address=$(awk '$1 == "address" {print $2}' "$ready")
[ -z "${EMBER_REMOTE:-}" ] || echo "ember-remote: executor $id" # read by start-cluster.sh
ember_say "executor $id registered with $driver (pid $EMBER_DAEMON_PID, block service $address); log: $EMBER_DAEMON_LOG"
