#!/usr/bin/env bash
# start-cluster.sh -- starts an ember cluster from this node: the driver here
# (start-driver.sh), then one executor on every host of the workers file
# (EMBER_WORKERS_FILE, default deploy/workers) through "$EMBER_SSH HOST" (start-executor.sh
# runs there; a worker named localhost runs here directly), and waits until the driver's
# status endpoint lists every executor as alive.
#
#   deploy/start-cluster.sh         (no options; settings come from deploy/ember-env.sh and
#                                    the environment, and are passed on to the workers)
#
# Before anything starts it checks the configuration, the workers file and every worker
# (reachable, ember-executor and its libraries installed, configuration valid there), so a
# mistake there starts nothing. Each problem is one line, "ember: WHO: problem; fix", and
# the exit status is 1 if any part did not start; the parts that did start keep running
# (deploy/stop-cluster.sh stops them).
set -euo pipefail
# shellcheck source=ember-lib.sh
. "$(dirname "$0")/ember-lib.sh"
ember_no_options "$0" "$@"

ember_validate_config
ember_read_workers
command -v jq >/dev/null || ember_die "jq is missing (it reads the driver's status endpoint); install it with deploy/install-deps.sh"
n=${#EMBER_WORKERS[@]}
ember_say "checking $n worker(s) listed in $EMBER_WORKERS_FILE"
ember_on_workers probe || ember_die "nothing started: fix the worker(s) above, then run $0 again"

bash "$EMBER_DEPLOY/start-driver.sh"
status=$(awk '$1 == "status" {print $2}' "$(ember_ready_file driver)")
driver=$(awk '$1 == "driver" {print $2}' "$(ember_ready_file driver)")

ember_say "copying the cluster secret $EMBER_SECRET_FILE to the workers that lack it"
ember_on_workers secret || ember_die "the cluster secret did not reach every worker (above); the driver runs: fix it, then run deploy/stop-cluster.sh and $0 again"

ember_say "starting $n executor(s)"
failed=0
ember_on_workers start || failed=1
ids=()
for info in ${EMBER_REMOTE_INFO[@]+"${EMBER_REMOTE_INFO[@]}"}; do
    [[ "$info" =~ ^ember-remote:\ executor\ ([0-9]+)$ ]] && ids+=("${BASH_REMATCH[1]}")
done

# every executor that says it registered must be alive on the driver's status endpoint
want=$(printf '%s\n' ${ids[@]+"${ids[@]}"} | jq -s -c .)
all_alive() {
    curl -sf --max-time 2 "$status/api/v1/executors" |
        jq -e --argjson want "$want" '[.[] | select(.state == "alive") | .id] as $alive | all($want[]; IN($alive[]))' >/dev/null
}
deadline=$(ember_deadline "$EMBER_START_TIMEOUT")
until all_alive; do
    ember_before "$deadline" ||
        ember_die "the driver does not list executor(s) $want as alive after $EMBER_START_TIMEOUT s; see $status/api/v1/executors and $(ember_log_file driver)"
    sleep 0.2
done
slots=$(curl -sf --max-time 2 "$status/api/v1/executors" |
    jq --argjson want "$want" '[.[] | select(.id as $id | $want | index($id)) | .slots] | add // 0')

if [ "$failed" = 1 ]; then
    ember_die "${#ids[@]} of $n executor(s) started (the other problems are above); fix them, then run deploy/stop-cluster.sh and $0 again"
fi
ember_say "cluster up: driver $driver, $n executor(s) with $slots slots; status $status/api/v1/executors"
ember_say "logs: $(ember_log_file driver) here; $EMBER_LOG_DIR/ember-executor-WORKER.log on each worker; stop: $EMBER_DEPLOY/stop-cluster.sh"
