#!/usr/bin/env bash
# quickstart.sh -- ember in one command: installs what is missing, builds (Release), starts
# the embedded Kafka broker, a driver and two executors on loopback, loads 100,000 sample taxi
# GPS lines, runs the taxi_alerts example through ember-submit, prints its result, and stops
# everything it started.
#
#   deploy/quickstart.sh           run the demo, then stop the cluster
#   deploy/quickstart.sh --keep    leave the cluster running and print how to reach and stop it
#   deploy/quickstart.sh --stop    stop a cluster left running by --keep
#   deploy/quickstart.sh --stream [SECONDS]
#                                  the streaming demo instead (examples/taxi_stream.c): a
#                                  producer feeds taxi points in event-time order for SECONDS
#                                  (30), ten minutes of event time per second; the distance of
#                                  each taxi over 30-minute windows sliding every 30 s is
#                                  printed as windows become final, with the status URL; a
#                                  redis-server of its own (port ${EMBER_REDIS_PORT:-6399})
#                                  holds every point and each taxi's current distance
#
# Ports: driver 127.0.0.1:${EMBER_DRIVER_PORT:-7077}, status 127.0.0.1:${EMBER_STATUS_PORT:-4040}.
# Exit status 0 only when the job succeeded.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=${EMBER_WORK:-$root/work/quickstart}
build=${EMBER_BUILD:-$root/build/release}
driver_port=${EMBER_DRIVER_PORT:-7077}
status_port=${EMBER_STATUS_PORT:-4040}
lines=${EMBER_SAMPLE_LINES:-100000}
keep=0
stream=0
stream_s=30
redis_port=${EMBER_REDIS_PORT:-6399}

stop_cluster() {
    [ -f "$work/pids" ] || return 0
    local pid
    while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done <"$work/pids"
    for _ in $(seq 50); do
        local alive=0
        while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$work/pids"
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$work/pids"
    rm -f "$work/pids"
}

case "${1:-}" in
--keep) keep=1 ;;
--stop) stop_cluster; echo "ember quickstart cluster stopped"; exit 0 ;;
--stream)
    stream=1
    stream_s=${2:-30}
    [[ "$stream_s" =~ ^[0-9]+$ ]] && [ "$stream_s" -ge 5 ] && [ "$stream_s" -le 3600 ] ||
        { echo "quickstart: --stream SECONDS takes 5..3600 seconds" >&2; exit 2; }
    ;;
"") ;;
*) echo "usage: deploy/quickstart.sh [--keep | --stop | --stream [SECONDS]]" >&2; exit 2 ;;
esac

step() { printf '\n== %s\n' "$*"; }
die() { echo "quickstart: $*" >&2; exit 1; }
wait_file() { # FILE WHAT [LOG]
    for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done
    [ -n "${3:-}" ] && tail -n 5 "$3" >&2
    die "$2 did not start (log: ${3:-none})"
}

step "installing missing packages"
deploy/install-deps.sh

step "building ember (Release) in $build"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null
bin=$build/bin

[ -f "$work/pids" ] && stop_cluster
rm -rf "$work"
mkdir -p "$work"
[ "$keep" = 1 ] || trap stop_cluster EXIT

step "making the cluster secret, if there is none (ember-secret)"
secret=$("$bin/ember-secret") || die "no cluster secret"
echo "every connection proves $secret"

step "starting ember-kafka, ember-driver and two ember-executors (logs in $work)"
"$bin/ember-kafka" --topic taxi:8 --topic taxi-alerts:4 --topic taxi-dead-letter:1 \
    --topic taxi-live:4 --topic taxi-distance:4 \
    --bootstrap-file "$work/kafka.addr" >"$work/kafka.log" 2>&1 &
echo $! >>"$work/pids"
wait_file "$work/kafka.addr" ember-kafka "$work/kafka.log"
kafka=$(cat "$work/kafka.addr")
"$bin/ember-driver" --listen "tcp://127.0.0.1:$driver_port" --status "127.0.0.1:$status_port" \
    --kafka "$kafka" --ready-file "$work/driver.ready" >"$work/driver.log" 2>&1 &
echo $! >>"$work/pids"
wait_file "$work/driver.ready" ember-driver "$work/driver.log"
driver=$(awk '$1 == "driver" {print $2}' "$work/driver.ready")
status=$(awk '$1 == "status" {print $2}' "$work/driver.ready")
for ex in 1 2; do
    "$bin/ember-executor" --driver "$driver" --slots 2 --work-dir "$work/executor-$ex" \
        --ready-file "$work/executor-$ex.ready" >"$work/executor-$ex.log" 2>&1 &
    echo $! >>"$work/pids"
done
wait_file "$work/executor-1.ready" "executor 1" "$work/executor-1.log"
wait_file "$work/executor-2.ready" "executor 2" "$work/executor-2.log"
echo "kafka $kafka, driver $driver, status $status"

# stream_demo: examples/taxi_stream.c on topic taxi-live while a producer feeds it
stream_demo() {
    local checkpoint=$work/checkpoint chunks=$work/chunks
    step "starting redis-server on 127.0.0.1:$redis_port (results a front end reads)"
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
        >"$work/redis.log" 2>&1 &
    echo $! >>"$work/pids"
    for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 || die "redis-server did not start (log: $work/redis.log)"
    step "starting examples/taxi_stream.c: ember-submit taxi_stream.so (five streaming queries)"
    "$bin/ember-submit" --driver "$driver" "$build/jobs/taxi_stream.so" -- --in taxi-live \
        --interval-ms 500 --window-min 30 --slide-s 30 --delay-s 60 --checkpoint "$checkpoint" \
        --alerts taxi-alerts --dead-letter taxi-dead-letter --redis "127.0.0.1:$redis_port" \
        >"$work/stream.out" 2>"$work/stream.err" &
    local job=$!
    step "feeding taxi points for $stream_s s (ten minutes of event time per second), keyed by taxi"
    mkdir -p "$chunks"
    # 2.5 s of event time per line on average: 240 lines are ten minutes, fed twice a second
    "$bin/taxi-data" --lines $((stream_s * 240)) --taxis 50 |
        awk '{ split($0, f, ","); print f[1] "\t" $0 }' | split -l 120 - "$chunks/part-"
    local seen=$work/windows.seen part shown=0 fresh
    : >"$seen"
    for part in "$chunks"/part-*; do
        "$bin/ember-topic" produce --bootstrap "$kafka" --topic taxi-live --key-sep '\t' <"$part" >/dev/null
        sleep 0.5
        # the windows that became final since the last look
        { "$bin/ember-topic" dump --bootstrap "$kafka" --topic taxi-distance 2>/dev/null || true; } |
            cut -f4 | LC_ALL=C sort >"$work/windows.now"
        fresh=$(LC_ALL=C comm -13 "$seen" "$work/windows.now" | wc -l)
        if [ "$fresh" -gt 0 ]; then
            LC_ALL=C comm -13 "$seen" "$work/windows.now" | awk -F, -v n="$fresh" 'NR == 1 {
                printf "%d windows final, e.g. taxi %s from %s to %s: %.3f km over %d points\n",
                    n, $1, $2, $3, $4, $5 }'
            shown=$((shown + fresh))
        fi
        mv "$work/windows.now" "$seen"
    done
    step "the queries as the driver reports them ($status/api/v1/streaming/queries)"
    curl -sf "$status/api/v1/streaming/queries" | jq -r '.[] | "\(.name): \(.state), \(.batches) batches, \(.records_in) records in, \(.records_out) out, lag \(.lag)\(if .windows then ", watermark \(.watermark_ms / 1000 | floor | todate), \(.late_records) late" else "" end)"'
    "$bin/ember-submit" --driver "$driver" --stop taxi-distance >/dev/null
    wait "$job" || die "taxi_stream failed (see $work/stream.err)"
    tail -n 1 "$work/stream.err"
    echo "$shown final windows written to topic taxi-distance; status page: $status/"
    step "in Redis: every point under taxi_id|time, each taxi's current 30-minute distance"
    echo "redis-cli -p $redis_port get distance:T0001  ->  $(redis-cli -p "$redis_port" get distance:T0001) km"
    echo "redis-cli -p $redis_port --scan --pattern 'T0001|*' | head -3"
    redis-cli -p "$redis_port" --scan --pattern 'T0001|*' | head -3
}

if [ "$stream" = 1 ]; then
    stream_demo
    step "stopping the cluster"
    exit 0
fi

step "loading $lines sample taxi lines into topic 'taxi' (8 partitions)"
"$bin/taxi-data" --lines "$lines" | "$bin/ember-topic" produce --bootstrap "$kafka" --topic taxi

step "running examples/taxi_alerts.c: ember-submit taxi_alerts.so"
"$bin/ember-submit" --driver "$driver" "$build/jobs/taxi_alerts.so" -- \
    --in taxi --alerts taxi-alerts --dead-letter taxi-dead-letter ||
    die "the job failed (logs in $work)"

step "first alerts in topic 'taxi-alerts' (partition, offset, taxi, line)"
{ "$bin/ember-topic" dump --bootstrap "$kafka" --topic taxi-alerts || true; } | head -n 5

step "jobs as the driver reports them ($status/api/v1/jobs)"
# the status endpoint serves a snapshot renewed every 50 ms: wait for the one with the job's end
for _ in $(seq 40); do
    curl -sf "$status/api/v1/jobs" | jq -e 'all(.[]; .state != "running")' >/dev/null && break
    sleep 0.05
done
curl -sf "$status/api/v1/jobs" |
    jq -r '.[] | "job \(.id) \(.name): \(.state), \(.tasks) tasks, \(.records_in) records in, \(.records_out) out, \(.duration_ms | floor) ms"'

if [ "$keep" = 1 ]; then
    step "cluster left running"
    echo "status:  $status/api/v1/executors  $status/api/v1/jobs"
    echo "submit:  $bin/ember-submit --driver $driver $build/jobs/taxi_alerts.so"
    echo "stop:    deploy/quickstart.sh --stop"
else
    step "stopping the cluster"
fi
