#!/usr/bin/env bash
# stop-cluster.sh -- stops the ember cluster start-cluster.sh started: the executor of every
# host of the workers file (through "$EMBER_SSH HOST"; localhost here directly), then the
# driver of this node. Each daemon gets SIGTERM, then SIGKILL if it has not exited within
# EMBER_STOP_TIMEOUT seconds; its pid and ready files are removed.
#
#   deploy/stop-cluster.sh           the whole cluster
#   deploy/stop-cluster.sh --local   only this node: its executor (EMBER_NODE, default the
#                                    short host name, as start-executor.sh names it) and
#                                    its driver
#
# Exit status 1 if a daemon could not be stopped or a worker could not be reached (one line
# each, "ember: WHO: problem; fix"); everything else is still stopped.
set -euo pipefail
# shellcheck source=ember-lib.sh
. "$(dirname "$0")/ember-lib.sh"
local_only=0
case "${1:-}" in
"") ;;
--local) local_only=1 ;;
-h | --help) ember_help "$0"; exit 0 ;;
*) echo "usage: $0 [--local]" >&2; exit 2 ;;
esac

ember_validate_config
failed=0
if [ "$local_only" = 1 ]; then
    node=${EMBER_NODE:-$(hostname -s)}
    (EMBER_WHO="worker $node" && ember_stop_daemon "executor-$node" ember-executor) || failed=1
else
    ember_read_workers
    ember_on_workers stop || failed=1
fi
(EMBER_WHO="driver on $EMBER_DRIVER_HOST" && ember_stop_daemon driver ember-driver) || failed=1
exit "$failed"
