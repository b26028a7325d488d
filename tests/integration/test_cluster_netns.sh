#!/usr/bin/env bash
# test_cluster_netns.sh -- a three-host ember cluster started and stopped with deploy/'s
# scripts. The hosts are network namespaces, each with its own address, joined by veth pairs
# on a bridge in the driver's namespace:
#
#   emb<pid>d   10.77.0.1  (bridge)  ember-driver (start-cluster.sh runs here), ember-kafka
#   emb<pid>w1  10.77.0.2  (veth)    worker: ember-executor
#   emb<pid>w2  10.77.0.3  (veth)    worker: ember-executor
#
# The workers file lists the worker namespaces and EMBER_SSH="ip netns exec" is the remote
# command, so start-cluster.sh reaches a worker the way it would reach one with ssh.
#
# Kafka: ember-kafka (librdkafka's mock cluster) binds 127.0.0.1:P only and advertises
# 127.0.0.1:P in its metadata. It runs in the driver's namespace, and socat forwarders make
# 127.0.0.1:P lead to it from every worker: in each worker namespace 127.0.0.1:P ->
# 10.77.0.1:P, and in the driver's namespace 10.77.0.1:P -> 127.0.0.1:P. The jobs and the
# driver use bootstrap 127.0.0.1:P everywhere. No traffic leaves these namespaces.
#
# Checks: the cluster starts (both executors registered with their own addresses), a second
# driver or executor is refused, a submitter on a worker with another secret is refused,
# taxi_alerts gives the reference's exact alerts and dead letters with tasks on both
# workers; with worker 2's link down the driver marks its executor
# lost (no heartbeat) and the next job completes on worker 1 alone; stop-cluster.sh leaves no
# ember process and no pid file. Namespaces, links and processes are removed on exit,
# whatever happens. Skips (exit 77) only where the machine refuses to create a namespace.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
deploy_env

for tool in ip socat curl jq; do
    command -v "$tool" >/dev/null || fail "$tool is missing (packages iproute2 socat curl jq)"
done
NS_D=emb$$d NS_W1=emb$$w1 NS_W2=emb$$w2
NAMESPACES=()
netns_cleanup() {
    local ns pid
    for ns in ${NAMESPACES[@]+"${NAMESPACES[@]}"}; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    done
    for ns in ${NAMESPACES[@]+"${NAMESPACES[@]}"}; do
        for _ in $(seq 50); do
            [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
            sleep 0.1
        done
        ip netns delete "$ns" 2>/dev/null || true
    done
}
at_exit netns_cleanup
trap 'exit 143' TERM INT # so that the cleanup runs when ctest or a person stops the test

# namespaces a run of this test killed with SIGKILL left behind: those of a pid that is gone
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^emb[0-9]+(d|w1|w2)$/ {print $1}'); do
    pid=${ns#emb}
    pid=${pid%%[dw]*}
    kill -0 "$pid" 2>/dev/null && continue
    NAMESPACES+=("$ns")
done
netns_cleanup
NAMESPACES=()

if ! ip netns add "$NS_D" 2>"$T/netns.err"; then
    echo "SKIP: this machine refuses to create network namespaces ($(cat "$T/netns.err")); test_cluster_netns needs root and ip netns"
    exit 77
fi
NAMESPACES+=("$NS_D")
ip -n "$NS_D" link set lo up
ip -n "$NS_D" link add br0 type bridge
ip -n "$NS_D" addr add 10.77.0.1/24 dev br0
ip -n "$NS_D" link set br0 up
n=1
for ns in "$NS_W1" "$NS_W2"; do
    n=$((n + 1))
    ip netns add "$ns"
    NAMESPACES+=("$ns")
    ip -n "$ns" link set lo up
    ip link add name eth0 netns "$ns" type veth peer name "w$n" netns "$NS_D"
    ip -n "$NS_D" link set "w$n" master br0 up
    ip -n "$ns" addr add "10.77.0.$n/24" dev eth0
    ip -n "$ns" link set eth0 up
done
echo "ok: hosts $NS_D (10.77.0.1), $NS_W1 (10.77.0.2), $NS_W2 (10.77.0.3)"

# on NS COMMAND...: run COMMAND on that host
on() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

# listening NS PORT: something listens on TCP PORT in NS
listening() {
    [ -n "$(on "$1" ss -ltnH "sport = :$2")" ]
}

# --- Kafka in the driver's namespace, reachable as 127.0.0.1:P from every host --------------
on "$NS_D" "$EMBER_BIN/ember-kafka" --topic taxi:8 --bootstrap-file "$T/kafka.addr" >"$T/kafka.log" 2>&1 &
PIDS+=($!)
wait_for_file "$T/kafka.addr"
KAFKA=$(cat "$T/kafka.addr")
kport=${KAFKA##*:}
on "$NS_D" socat "TCP-LISTEN:$kport,bind=10.77.0.1,fork,reuseaddr" "TCP:127.0.0.1:$kport" 2>"$T/socat-d.log" &
PIDS+=($!)
for ns in "$NS_W1" "$NS_W2"; do
    on "$ns" socat "TCP-LISTEN:$kport,bind=127.0.0.1,fork,reuseaddr" "TCP:10.77.0.1:$kport" 2>"$T/socat-$ns.log" &
    PIDS+=($!)
done
for ns in "$NS_D" "$NS_W1" "$NS_W2"; do wait_until 10 listening "$ns" "$kport"; done
expect_eq "$(on "$NS_W1" "$EMBER_BIN/ember-topic" offsets --bootstrap "$KAFKA" --topic taxi | awk '$1 == "total" {print $2}')" \
    0 "records in topic taxi, seen from worker 1 through the forwarders"

# --- start the cluster ------------------------------------------------------------------------
cat >"$T/workers" <<EOF
# the test's two workers, reached with EMBER_SSH="ip netns exec"
$NS_W1

$NS_W2   # the one whose link goes down
EOF
export EMBER_BIN EMBER_SSH="ip netns exec" EMBER_DRIVER_HOST=10.77.0.1 EMBER_KAFKA=$KAFKA \
    EMBER_HEARTBEAT_MS=200 EMBER_EXECUTOR_TIMEOUT_MS=1500 EMBER_EXECUTOR_SLOTS=2 \
    EMBER_START_TIMEOUT=20 EMBER_STOP_TIMEOUT=5
DRIVER=tcp://10.77.0.1:7077
STATUS=http://10.77.0.1:4040
# api PATH: the status endpoint, read from the driver's host
api() {
    on "$NS_D" curl -sf --max-time 5 "$STATUS$1"
}

on "$NS_D" "$DEPLOY/start-cluster.sh" >"$T/start.out" 2>&1 || fail "start-cluster.sh failed: $(cat "$T/start.out")"
cat "$T/start.out"
expect_contains "$(cat "$T/start.out")" "cluster up: driver $DRIVER, 2 executor(s) with 4 slots" "start-cluster.sh summary"
expect_contains "$(cat "$T/start.out")" "ember: worker $NS_W2: executor" "start-cluster.sh reports each worker"
expect_contains "$(cat "$T/start.out")" "log: $T/ember-executor-$NS_W1.log" "start-cluster.sh says where a worker's log is"
expect_contains "$(cat "$T/start.out")" "log: $T/ember-driver.log" "start-cluster.sh says where the driver's log is"
executors=$(api /api/v1/executors)
expect_eq "$(jq -c '[.[] | select(.state == "alive") | .address | sub(":[0-9]+$"; "")] | sort' <<<"$executors")" \
    '["tcp://10.77.0.2","tcp://10.77.0.3"]' "executors registered with their hosts' addresses"
w1=$(jq '.[] | select(.address | startswith("tcp://10.77.0.2:")) | .id' <<<"$executors")
w2=$(jq '.[] | select(.address | startswith("tcp://10.77.0.3:")) | .id' <<<"$executors")
for f in ember-driver.pid "ember-executor-$NS_W1.pid" "ember-executor-$NS_W2.pid"; do
    [ -s "$EMBER_PID_DIR/$f" ] || fail "no pid file $f"
done
echo "ok: pid files of the driver and both executors"

# --- a second copy is refused ----------------------------------------------------------------
expect_fail "a second driver" on "$NS_D" "$DEPLOY/start-driver.sh"
expect_contains "$(cat "$T/fail.err")" "ember: driver on 10.77.0.1: ember-driver is already running (pid $(cat "$EMBER_PID_DIR/ember-driver.pid")" \
    "second driver refused"
expect_fail "a second executor" on "$NS_W1" env EMBER_NODE="$NS_W1" "$DEPLOY/start-executor.sh"
expect_contains "$(cat "$T/fail.err")" "ember: worker $NS_W1: ember-executor is already running" "second executor refused"
expect_eq "$(api /api/v1/driver | jq .executors_alive)" 2 "executors alive after the refused copies"

# --- the cluster authenticates: a submitter on another host without its secret is refused ------
"$EMBER_BIN/ember-secret" "$T/other.secret" >/dev/null 2>&1
expect_fail "a submitter with another secret, from worker 1" on "$NS_W1" "$EMBER_BIN/ember-submit" \
    --driver "$DRIVER" --secret-file "$T/other.secret" "$EMBER_JOBS/taxi_alerts.so"
expect_contains "$(cat "$T/fail.err")" "could not prove the cluster secret" "a stranger on the network is refused"

# --- the taxi example end to end --------------------------------------------------------------
"$EMBER_BIN/taxi-data" --lines 100000 >"$T/taxi.txt"
on "$NS_D" "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic taxi <"$T/taxi.txt" >/dev/null
awk -v MALFORMED="$T/expected.malformed" -v ALERTS="$T/expected.alerts" \
    -f "$EMBER_SRC/tests/integration/taxi_reference.awk" "$T/taxi.txt"
n_malformed=$(wc -l <"$T/expected.malformed")
n_alerts=$(wc -l <"$T/expected.alerts")
LC_ALL=C sort "$T/expected.alerts" >"$T/want.alerts"
LC_ALL=C sort "$T/expected.malformed" >"$T/want.dead"

# differs GOT WANT TOPIC WHAT: fails with what GOT lacks and has extra (line counts, a few of each,
# empty lines counted apart) and the topic's offsets, so a one-off failure says what happened
differs() {
    LC_ALL=C comm -13 "$1" "$2" >"$T/missing"
    LC_ALL=C comm -23 "$1" "$2" >"$T/extra"
    echo "got $(wc -l <"$1") lines, want $(wc -l <"$2")"
    echo "missing $(wc -l <"$T/missing") (empty lines: $(grep -c '^$' "$T/missing" || true)), first:"
    grep -v '^$' "$T/missing" | head -5 || true
    echo "extra $(wc -l <"$T/extra"), first:"
    head -5 "$T/extra"
    on "$NS_D" "$EMBER_BIN/ember-topic" offsets --bootstrap "$KAFKA" --topic "$3" || true
    fail "$4"
}

# taxi_job SUFFIX: taxi_alerts into taxi-alerts-SUFFIX and taxi-dead-SUFFIX; checks the result
taxi_job() {
    on "$NS_D" "$EMBER_BIN/ember-submit" --driver "$DRIVER" --timeout-s 60 "$EMBER_JOBS/taxi_alerts.so" -- \
        --in taxi --alerts "taxi-alerts-$1" --dead-letter "taxi-dead-$1" >"$T/submit.out" 2>"$T/submit.err" ||
        fail "taxi_alerts ($1) failed: $(cat "$T/submit.err")"
    expect_contains "$(cat "$T/submit.out")" "$n_malformed malformed lines" "job $1 reports the dead-letter count"
    expect_contains "$(cat "$T/submit.out")" "$n_alerts alerts" "job $1 reports the alert count"
    on "$NS_D" "$EMBER_BIN/ember-topic" dump --bootstrap "$KAFKA" --topic "taxi-alerts-$1" | cut -f3- |
        LC_ALL=C sort >"$T/got.alerts"
    cmp -s "$T/got.alerts" "$T/want.alerts" || differs "$T/got.alerts" "$T/want.alerts" "taxi-alerts-$1" "job $1: alert records differ"
    echo "ok: job $1: $n_alerts alert records exactly as the reference"
    on "$NS_D" "$EMBER_BIN/ember-topic" dump --bootstrap "$KAFKA" --topic "taxi-dead-$1" | cut -f4- |
        LC_ALL=C sort >"$T/got.dead"
    cmp -s "$T/got.dead" "$T/want.dead" || differs "$T/got.dead" "$T/want.dead" "taxi-dead-$1" "job $1: dead letters differ"
    echo "ok: job $1: $n_malformed dead letters exactly as the reference"
}

# completed ID: tasks completed by executor ID
completed() {
    api /api/v1/executors | jq --argjson id "$1" '.[] | select(.id == $id) | .tasks_completed'
}

taxi_job 1
wait_jobs_finished 2 # taxi_alerts runs a job per save_kafka: dead letters, then alerts
w1_done=$(completed "$w1")
w2_done=$(completed "$w2")
if [ "$w1_done" = 0 ] || [ "$w2_done" = 0 ]; then
    fail "tasks ran on worker 1: $w1_done, worker 2: $w2_done; expected both"
fi
echo "ok: both workers ran tasks ($w1_done and $w2_done)"

# --- worker 2's link goes down ----------------------------------------------------------------
ip -n "$NS_W2" link set eth0 down
lost() {
    [ "$(api /api/v1/executors | jq -r --argjson id "$w2" '.[] | select(.id == $id) | .state')" = lost ]
}
wait_until 15 lost
expect_eq "$(api /api/v1/executors | jq -r --argjson id "$w2" '.[] | select(.id == $id) | .lost_reason')" \
    "no heartbeat for 1500 ms" "worker 2's executor after its link went down"
expect_eq "$(api /api/v1/driver | jq .executors_alive)" 1 "executors alive"
taxi_job 2
wait_jobs_finished 4
expect_eq "$(completed "$w2")" "$w2_done" "tasks of the lost executor"
[ "$(completed "$w1")" -gt "$w1_done" ] || fail "worker 1 ran no task of job 2"
echo "ok: job 2 ran on worker 1 alone ($(($(completed "$w1") - w1_done)) tasks)"

# --- stop the cluster -------------------------------------------------------------------------
on "$NS_D" "$DEPLOY/stop-cluster.sh" >"$T/stop.out" 2>&1 || fail "stop-cluster.sh failed: $(cat "$T/stop.out")"
cat "$T/stop.out"
expect_contains "$(cat "$T/stop.out")" "ember: worker $NS_W1: ember-executor stopped" "worker 1's executor stopped"
expect_contains "$(cat "$T/stop.out")" "ember: worker $NS_W2: ember-executor" "worker 2's executor handled"
expect_contains "$(cat "$T/stop.out")" "ember: driver on 10.77.0.1: ember-driver stopped" "driver stopped"
for ns in "$NS_D" "$NS_W1" "$NS_W2"; do
    for pid in $(ip netns pids "$ns"); do
        case "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" in
        *ember-driver* | *ember-executor*) fail "process left behind in $ns: $pid $(tr '\0' ' ' <"/proc/$pid/cmdline")" ;;
        esac
    done
done
echo "ok: no ember-driver or ember-executor process left in any namespace"
expect_contains "$(cat "$T/ember-driver.log")" "executor stopped executor=$w1 " \
    "the driver saw worker 1's executor stop before it stopped itself"
left=$(find "$EMBER_PID_DIR" -type f)
expect_eq "$left" "" "pid and ready files left"
echo "PASS test_cluster_netns"
