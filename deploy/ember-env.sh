# shellcheck shell=bash
# ember-env.sh -- the cluster's configuration, sourced by every deploy/start-*.sh and
# deploy/stop-cluster.sh script (not run by itself).
#
# Each value below is a default: a variable already set in the environment wins, so
#   EMBER_DRIVER_HOST=10.0.0.5 deploy/start-cluster.sh
# changes one setting for one run, and editing this file changes it for good. Keep the same
# file on every node: start-cluster.sh passes the cluster-wide values (every variable below
# except EMBER_EXECUTOR_HOST) to the workers it starts, so the node you start the cluster
# from decides them. The scripts check every value before they start anything and name the
# variable to fix when one is wrong.

# --- where ember is -----------------------------------------------------------------------
# EMBER_HOME: the ember tree (these scripts live in $EMBER_HOME/deploy). It must be at the
# same path on every node.
: "${EMBER_HOME:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
# EMBER_BIN: the directory holding ember-driver and ember-executor (build them with
# deploy/quickstart.sh, or cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release).
: "${EMBER_BIN:=$EMBER_HOME/build/release/bin}"
# EMBER_WORKERS_FILE: one worker host per line; start-cluster.sh starts one executor on each.
: "${EMBER_WORKERS_FILE:=$EMBER_HOME/deploy/workers}"

# --- the driver ---------------------------------------------------------------------------
# EMBER_DRIVER_HOST: the driver's address, as the executors reach it (an IP address or a
# host name of the driver node; the driver listens on it). 127.0.0.1 is fine only while every
# worker is localhost.
: "${EMBER_DRIVER_HOST:=127.0.0.1}"
# EMBER_DRIVER_PORT: executors and ember-submit connect to tcp://EMBER_DRIVER_HOST:PORT.
: "${EMBER_DRIVER_PORT:=7077}"
# EMBER_STATUS_HOST, EMBER_STATUS_PORT: the HTTP status endpoint (/api/v1/executors, ...).
: "${EMBER_STATUS_HOST:=$EMBER_DRIVER_HOST}"
: "${EMBER_STATUS_PORT:=4040}"
# EMBER_HEARTBEAT_MS, EMBER_EXECUTOR_TIMEOUT_MS: an executor silent for the timeout is marked
# lost and its tasks run elsewhere (the timeout must be at least twice the heartbeat).
: "${EMBER_HEARTBEAT_MS:=1000}"
: "${EMBER_EXECUTOR_TIMEOUT_MS:=10000}"
# EMBER_KAFKA: default Kafka bootstrap servers for jobs (host:port[,host:port...]); empty:
# every job names its own with ember-submit --kafka.
: "${EMBER_KAFKA=}"
# EMBER_DRIVER_OPTS: further ember-driver options, e.g. "--max-attempts 6 --queue-depth 16".
: "${EMBER_DRIVER_OPTS=}"

# --- the executors ------------------------------------------------------------------------
# EMBER_EXECUTOR_SLOTS: tasks run at once by each executor; empty: the node's core count.
: "${EMBER_EXECUTOR_SLOTS=}"
# EMBER_EXECUTOR_MEMORY_MB: each executor's block store cap.
: "${EMBER_EXECUTOR_MEMORY_MB:=1024}"
# EMBER_EXECUTOR_HOST: the address an executor's block service listens on and registers
# (peers fetch blocks there). Per node, never passed on: empty picks the address this node
# uses to reach EMBER_DRIVER_HOST.
: "${EMBER_EXECUTOR_HOST=}"
# EMBER_EXECUTOR_PORT: the block service port; 0 picks a free one (set it for firewalls).
: "${EMBER_EXECUTOR_PORT:=0}"
# EMBER_EXECUTOR_OPTS: further ember-executor options, e.g. "--kafka-stall-ms 60000".
: "${EMBER_EXECUTOR_OPTS=}"

# --- files on each node -------------------------------------------------------------------
# EMBER_WORK_DIR: executor scratch space and job library cache (one sub-directory each).
: "${EMBER_WORK_DIR:=$EMBER_HOME/work/cluster}"
# EMBER_LOG_DIR: ember-driver.log, ember-executor-<worker>.log (the previous run's as .log.1).
: "${EMBER_LOG_DIR:=$EMBER_HOME/work/logs}"
# EMBER_PID_DIR: ember-driver.pid, ember-executor-<worker>.pid and their .ready files.
: "${EMBER_PID_DIR:=$EMBER_HOME/work/run}"
# EMBER_DRIVER_STATE_DIR: on the driver node, the detached streaming queries and their job
# libraries (ember-driver --state-dir): a driver started again resumes them.
: "${EMBER_DRIVER_STATE_DIR:=$EMBER_HOME/work/driver-state}"
# EMBER_SECRET_FILE: the cluster secret every connection proves (docs/security.md), the same
# file on every node (mode 0600). start-driver.sh makes it when it is missing (ember-secret),
# start-cluster.sh copies it to the workers that lack it. The default is where every ember
# program looks without the variable.
: "${EMBER_SECRET_FILE:=$HOME/.ember/cluster.secret}"

# --- reaching the workers, and patience ------------------------------------------------
# EMBER_SSH: the command that runs a command on a worker: "$EMBER_SSH $EMBER_SSH_OPTS HOST
# bash -s", the script on standard input. Anything that takes HOST and then a command works,
# e.g. EMBER_SSH="ip netns exec" with network namespace names as hosts. A worker named
# localhost is started directly, without EMBER_SSH.
: "${EMBER_SSH:=ssh}"
# EMBER_SSH_OPTS: options put between EMBER_SSH and the host; for ssh, by default, no
# password prompts and a bounded connection time.
case "${EMBER_SSH%% *}" in
ssh | */ssh) : "${EMBER_SSH_OPTS=-o BatchMode=yes -o ConnectTimeout=10}" ;;
*) : "${EMBER_SSH_OPTS=}" ;;
esac
# EMBER_START_TIMEOUT: seconds a daemon has to become ready (driver answering on its status
# endpoint, executor registered) before the start counts as failed.
: "${EMBER_START_TIMEOUT:=30}"
# EMBER_STOP_TIMEOUT: seconds a daemon has to exit after SIGTERM before it gets SIGKILL.
: "${EMBER_STOP_TIMEOUT:=10}"

export EMBER_HOME EMBER_BIN EMBER_WORKERS_FILE EMBER_DRIVER_HOST EMBER_DRIVER_PORT \
    EMBER_STATUS_HOST EMBER_STATUS_PORT EMBER_HEARTBEAT_MS EMBER_EXECUTOR_TIMEOUT_MS EMBER_KAFKA \
    EMBER_DRIVER_OPTS EMBER_EXECUTOR_SLOTS EMBER_EXECUTOR_MEMORY_MB EMBER_EXECUTOR_HOST \
    EMBER_EXECUTOR_PORT EMBER_EXECUTOR_OPTS EMBER_WORK_DIR EMBER_LOG_DIR EMBER_PID_DIR \
    EMBER_SECRET_FILE EMBER_SSH EMBER_SSH_OPTS EMBER_START_TIMEOUT EMBER_STOP_TIMEOUT
