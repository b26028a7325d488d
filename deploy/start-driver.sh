#!/usr/bin/env bash
# start-driver.sh -- starts ember-driver on this node, in the background, as configured in
# deploy/ember-env.sh (EMBER_DRIVER_HOST, EMBER_DRIVER_PORT, EMBER_STATUS_HOST/PORT,
# EMBER_HEARTBEAT_MS, EMBER_EXECUTOR_TIMEOUT_MS, EMBER_KAFKA, EMBER_DRIVER_STATE_DIR,
# EMBER_DRIVER_OPTS), and waits
# until its status endpoint answers.
#
#   deploy/start-driver.sh          (no options; settings come from the environment)
#
# Files: EMBER_PID_DIR/ember-driver.pid and .ready (its bound addresses),
# EMBER_LOG_DIR/ember-driver.log (the previous one kept as .log.1). Refuses to start while a
# driver of this pid file runs. Exit status 0 once the driver is ready; otherwise one line
# "ember: driver on HOST: problem; fix" (port in use, bad value, not ready within
# EMBER_START_TIMEOUT seconds, ...) and status 1. Stop it with deploy/stop-cluster.sh.
set -euo pipefail
# shellcheck source=ember-lib.sh
. "$(dirname "$0")/ember-lib.sh"
ember_no_options "$0" "$@"
EMBER_WHO="driver on $EMBER_DRIVER_HOST"

ember_validate_config
ember_check_binary ember-driver
command -v curl >/dev/null || ember_die "curl is missing (it checks that the driver answers); install it with deploy/install-deps.sh"

ready=$(ember_ready_file driver)
args=(--listen "tcp://$EMBER_DRIVER_HOST:$EMBER_DRIVER_PORT"
    --status "$EMBER_STATUS_HOST:$EMBER_STATUS_PORT"
    --heartbeat-ms "$EMBER_HEARTBEAT_MS" --executor-timeout-ms "$EMBER_EXECUTOR_TIMEOUT_MS"
    --ready-file "$ready" --state-dir "$EMBER_DRIVER_STATE_DIR")
[ -z "$EMBER_KAFKA" ] || args+=(--kafka "$EMBER_KAFKA")
read -ra extra <<<"$EMBER_DRIVER_OPTS"
args+=(${extra[@]+"${extra[@]}"})

status_answers() {
    local status
    [ -s "$ready" ] || return 1
    status=$(awk '$1 == "status" {print $2}' "$ready")
    curl -sf --max-time 2 "$status/api/v1/driver" >/dev/null
}

ember_secret_ensure
args+=(--secret-file "$EMBER_SECRET_FILE")
ember_start_daemon driver ember-driver "${args[@]}"
rc=0
ember_wait_daemon status_answers || rc=$?
case $rc in
1) ember_start_failed driver ember-driver ;;
2)
    ember_abandon_start driver ember-driver
    ember_die "not ready after $EMBER_START_TIMEOUT s (EMBER_START_TIMEOUT): no answer on http://$EMBER_STATUS_HOST:$EMBER_STATUS_PORT/api/v1/driver; see $EMBER_DAEMON_LOG, check that nothing blocks that port, or raise EMBER_START_TIMEOUT"
    ;;
esac
driver=$(awk '$1 == "driver" {print $2}' "$ready")
status=$(awk '$1 == "status" {print $2}' "$ready")
ember_say "ready at $driver (pid $EMBER_DAEMON_PID), status $status/api/v1/executors; log: $EMBER_DAEMON_LOG"
