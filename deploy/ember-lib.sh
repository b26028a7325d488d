# shellcheck shell=bash
# ember-lib.sh -- what deploy/start-driver.sh, start-executor.sh, start-cluster.sh and
# stop-cluster.sh share (sourced, not run): it loads deploy/ember-env.sh, checks the
# configuration and the workers file, starts daemons with pid files and logs, waits for them
# within a time limit, stops them, and runs the worker side of a cluster command on a worker
# through EMBER_SSH.
#
# Every failure is one line on stderr, "ember: WHO: what is wrong; what to do", and a
# non-zero exit status. WHO (EMBER_WHO) names the host: "driver on HOST", "worker HOST", or
# this node's host name.

EMBER_DEPLOY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ember-env.sh
. "$EMBER_DEPLOY/ember-env.sh"
EMBER_WHO=${EMBER_WHO:-$(hostname)}

# ember_help SCRIPT: print the comment at the top of SCRIPT (its --help)
ember_help() {
    sed -n '2,/^set -euo pipefail/p' "$1" | sed '$d; s/^# \{0,1\}//'
}

# ember_no_options SCRIPT [ARG]: the start scripts take no option but --help
ember_no_options() {
    case "${2:-}" in
    "") ;;
    -h | --help) ember_help "$1"; exit 0 ;;
    *) echo "usage: $1 (no options: settings come from deploy/ember-env.sh and the environment)" >&2; exit 2 ;;
    esac
}

# Settings start-cluster.sh and stop-cluster.sh pass to the workers (all of ember-env.sh but
# the per-node EMBER_EXECUTOR_HOST and what only the starting node uses).
EMBER_CLUSTER_VARS=(EMBER_HOME EMBER_BIN EMBER_DRIVER_HOST EMBER_DRIVER_PORT EMBER_STATUS_HOST
    EMBER_STATUS_PORT EMBER_HEARTBEAT_MS EMBER_EXECUTOR_TIMEOUT_MS EMBER_KAFKA
    EMBER_EXECUTOR_SLOTS EMBER_EXECUTOR_MEMORY_MB EMBER_EXECUTOR_PORT EMBER_EXECUTOR_OPTS
    EMBER_WORK_DIR EMBER_LOG_DIR EMBER_PID_DIR EMBER_SECRET_FILE EMBER_START_TIMEOUT
    EMBER_STOP_TIMEOUT)

ember_die() {
    echo "ember: $EMBER_WHO: $*" >&2
    exit 1
}

ember_say() {
    echo "ember: $EMBER_WHO: $*"
}

# --- configuration ----------------------------------------------------------------------

_ember_bad() { # VAR PROBLEM
    ember_die "bad config: $1='${!1}' $2; set it in the environment or in $EMBER_DEPLOY/ember-env.sh"
}

_ember_int() { # VAR MIN MAX [empty-ok]
    local v=${!1}
    [ -z "$v" ] && [ "${4:-}" = empty-ok ] && return 0
    if ! [[ "$v" =~ ^[0-9]{1,9}$ ]] || ((10#$v < $2 || 10#$v > $3)); then
        _ember_bad "$1" "is not a whole number in $2..$3"
    fi
}

_ember_host() { # VAR [empty-ok]
    local v=${!1}
    [ -z "$v" ] && [ "${2:-}" = empty-ok ] && return 0
    [[ "$v" =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] ||
        _ember_bad "$1" "is not a host name or IPv4 address (no scheme, no port)"
}

_ember_abs_path() { # VAR
    [[ "${!1}" == /* ]] || _ember_bad "$1" "is not an absolute path"
}

# ember_validate_config: every value of ember-env.sh, before anything starts
ember_validate_config() {
    _ember_host EMBER_DRIVER_HOST
    [ "$EMBER_DRIVER_HOST" != 0.0.0.0 ] ||
        _ember_bad EMBER_DRIVER_HOST "is not an address executors can connect to: use this node's address"
    _ember_int EMBER_DRIVER_PORT 1 65535
    _ember_host EMBER_STATUS_HOST
    _ember_int EMBER_STATUS_PORT 1 65535
    [ "$EMBER_STATUS_PORT" != "$EMBER_DRIVER_PORT" ] ||
        _ember_bad EMBER_STATUS_PORT "is also EMBER_DRIVER_PORT: the two need different ports"
    _ember_int EMBER_HEARTBEAT_MS 10 60000
    _ember_int EMBER_EXECUTOR_TIMEOUT_MS 100 3600000
    ((10#$EMBER_EXECUTOR_TIMEOUT_MS >= 2 * 10#$EMBER_HEARTBEAT_MS)) ||
        _ember_bad EMBER_EXECUTOR_TIMEOUT_MS "is less than twice EMBER_HEARTBEAT_MS=$EMBER_HEARTBEAT_MS"
    [ -z "$EMBER_KAFKA" ] || [[ "$EMBER_KAFKA" =~ ^[A-Za-z0-9.-]+:[0-9]+(,[A-Za-z0-9.-]+:[0-9]+)*$ ]] ||
        _ember_bad EMBER_KAFKA "is not host:port[,host:port...]"
    _ember_int EMBER_EXECUTOR_SLOTS 1 4096 empty-ok
    _ember_int EMBER_EXECUTOR_MEMORY_MB 1 16777216
    _ember_host EMBER_EXECUTOR_HOST empty-ok
    _ember_int EMBER_EXECUTOR_PORT 0 65535
    _ember_int EMBER_START_TIMEOUT 1 3600
    _ember_int EMBER_STOP_TIMEOUT 1 600
    local v
    for v in EMBER_HOME EMBER_BIN EMBER_WORK_DIR EMBER_LOG_DIR EMBER_PID_DIR EMBER_SECRET_FILE \
        EMBER_DRIVER_STATE_DIR; do
        _ember_abs_path "$v"
    done
}

# ember_deadline SECONDS: the time SECONDS from now (in ms); ember_before DEADLINE: not yet
_ember_now_ms() {
    local us=${EPOCHREALTIME//[!0-9]/} # bash 5: seconds and microseconds
    if [ -n "$us" ]; then echo $((10#$us / 1000)); else date +%s%3N; fi
}
ember_deadline() { echo $(($(_ember_now_ms) + 1000 * 10#$1)); }
ember_before() { [ "$(_ember_now_ms)" -lt "$1" ]; }

# ember_is_local HOST: a worker started on this node directly, without EMBER_SSH
ember_is_local() {
    [ "$1" = localhost ] || [ "$1" = 127.0.0.1 ]
}

_ember_is_loopback() {
    [ "$1" = localhost ] || [[ "$1" == 127.* ]] || [[ "$1" == *@localhost ]] || [[ "$1" == *@127.* ]]
}

# ember_read_workers -> EMBER_WORKERS: the hosts of EMBER_WORKERS_FILE, checked
ember_read_workers() {
    local file=$EMBER_WORKERS_FILE line host rest n=0 w
    [ -f "$file" ] || ember_die "no workers file $file; create it with one worker host per line, or set EMBER_WORKERS_FILE"
    EMBER_WORKERS=()
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        read -r host rest <<<"${line%%#*}" || true
        [ -n "$host" ] || continue
        [ -z "$rest" ] || ember_die "$file:$n: one host per line, found '$host $rest'; put each host on its own line"
        [[ "$host" =~ ^([A-Za-z0-9._-]+@)?[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$ ]] ||
            ember_die "$file:$n: '$host' is not a host name or address; fix the line"
        for w in "${EMBER_WORKERS[@]}"; do
            [ "$w" != "$host" ] || ember_die "$file:$n: $host is listed twice; ember runs one executor per worker: remove one line"
        done
        if ! _ember_is_loopback "$host" && _ember_is_loopback "$EMBER_DRIVER_HOST"; then
            ember_die "worker $host is another node but EMBER_DRIVER_HOST=$EMBER_DRIVER_HOST is this node's loopback; set EMBER_DRIVER_HOST to this node's address as $host reaches it"
        fi
        EMBER_WORKERS+=("$host")
    done <"$file"
    [ ${#EMBER_WORKERS[@]} -gt 0 ] || ember_die "$file lists no worker; add one host per line (localhost for this node)"
}

# ember_check_binary PROGRAM: it is there and its shared libraries are installed
ember_check_binary() {
    local bin=$EMBER_BIN/$1 missing
    [ -x "$bin" ] ||
        ember_die "$1 not found at $bin; build or install ember there (same EMBER_HOME on every node), or set EMBER_BIN"
    if command -v ldd >/dev/null; then
        missing=$(ldd "$bin" 2>/dev/null | awk '/not found/ {printf "%s%s", sep, $1; sep = " "}')  || true
        [ -z "$missing" ] || ember_die "$1 cannot run, libraries missing: $missing; install them with $EMBER_HOME/deploy/install-deps.sh"
    fi
}

# ember_executor_host: the address an executor of this node registers: EMBER_EXECUTOR_HOST,
# else the source address of this node's route to the driver
ember_executor_host() {
    if [ -n "$EMBER_EXECUTOR_HOST" ]; then
        echo "$EMBER_EXECUTOR_HOST"
        return
    fi
    local ip=$EMBER_DRIVER_HOST src
    if ! [[ "$ip" =~ ^[0-9.]+$ ]]; then
        ip=$(getent ahostsv4 "$EMBER_DRIVER_HOST" | awk 'NR == 1 {print $1}') || true
        [ -n "$ip" ] || ember_die "cannot resolve EMBER_DRIVER_HOST=$EMBER_DRIVER_HOST here; fix the name (DNS, /etc/hosts) or use the driver's IP address"
    fi
    src=$(ip -4 route get "$ip" 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") {print $(i + 1); exit}}') || true
    [ -n "$src" ] || ember_die "no route from this node to the driver at $ip (EMBER_DRIVER_HOST); check the network, or set EMBER_EXECUTOR_HOST to this node's address (needs iproute2 to find it by itself)"
    echo "$src"
}

# --- daemons ----------------------------------------------------------------------------
# A daemon NAME (driver, executor-HOST) runs PROGRAM from EMBER_BIN; its files are
# EMBER_PID_DIR/ember-NAME.pid and .ready, and EMBER_LOG_DIR/ember-NAME.log.

ember_pid_file() { echo "$EMBER_PID_DIR/ember-$1.pid"; }
ember_ready_file() { echo "$EMBER_PID_DIR/ember-$1.ready"; }
ember_log_file() { echo "$EMBER_LOG_DIR/ember-$1.log"; }

# ember_alive PID PROGRAM: PID is a live (not zombie) process running PROGRAM (as its
# command, or as the script its interpreter runs)
ember_alive() {
    local argv0="" argv1=""
    { IFS= read -r -d '' argv0 && IFS= read -r -d '' argv1; } 2>/dev/null <"/proc/$1/cmdline" || true
    [ "${argv0##*/}" = "$2" ] || [ "${argv1##*/}" = "$2" ]
}

# _ember_running PID: the process exists and is not a zombie (whatever it runs)
_ember_running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# ember_daemon_pid NAME PROGRAM: print the pid of the running daemon; fails if none runs
ember_daemon_pid() {
    local file pid
    file=$(ember_pid_file "$1")
    [ -f "$file" ] && read -r pid <"$file" && [[ "$pid" =~ ^[0-9]+$ ]] && ember_alive "$pid" "$2" || return 1
    echo "$pid"
}

# ember_start_daemon NAME PROGRAM ARGS...: refuses a second copy, keeps the previous log as
# .log.1, starts PROGRAM in its own session; sets EMBER_DAEMON_PID and EMBER_DAEMON_LOG
ember_start_daemon() {
    local name=$1 prog=$2 pid_file pid d
    shift 2
    pid_file=$(ember_pid_file "$name")
    if pid=$(ember_daemon_pid "$name" "$prog"); then
        ember_die "$prog is already running (pid $pid, $pid_file); stop it first with $EMBER_DEPLOY/stop-cluster.sh"
    fi
    for d in EMBER_LOG_DIR EMBER_PID_DIR EMBER_WORK_DIR; do
        mkdir -p "${!d}" 2>/dev/null || _ember_bad "$d" "cannot be created by $(id -un)"
    done
    EMBER_DAEMON_LOG=$(ember_log_file "$name")
    [ ! -f "$EMBER_DAEMON_LOG" ] || mv -f "$EMBER_DAEMON_LOG" "$EMBER_DAEMON_LOG.1"
    rm -f "$pid_file" "$(ember_ready_file "$name")"
    setsid "$EMBER_BIN/$prog" "$@" </dev/null >"$EMBER_DAEMON_LOG" 2>&1 &
    EMBER_DAEMON_PID=$!
    echo "$EMBER_DAEMON_PID" >"$pid_file"
}

# ember_wait_daemon CHECK...: waits EMBER_START_TIMEOUT seconds for CHECK to succeed
# while the daemon just started lives. Returns 0 ready, 1 exited (EMBER_DAEMON_STATUS holds
# its exit status), 2 time is up.
ember_wait_daemon() {
    local deadline
    deadline=$(ember_deadline "$EMBER_START_TIMEOUT")
    while :; do
        "$@" && return 0
        if ! _ember_running "$EMBER_DAEMON_PID"; then
            EMBER_DAEMON_STATUS=0
            wait "$EMBER_DAEMON_PID" 2>/dev/null || EMBER_DAEMON_STATUS=$?
            return 1
        fi
        ember_before "$deadline" || return 2
        sleep 0.1
    done
}

# ember_start_failed NAME PROGRAM: the daemon just started exited; one line on why, from its log
ember_start_failed() {
    local name=$1 prog=$2 kind line url port
    kind=${prog#ember-}
    kind=${kind^^} # DRIVER or EXECUTOR: EMBER_<kind>_HOST, _PORT, _OPTS
    rm -f "$(ember_pid_file "$name")"
    # its own errors start with "ember-driver: ", getopt's with its path
    line=$(grep -E "^([^ ]*/)?$prog: " "$EMBER_DAEMON_LOG" | tail -n 1) || line=$(tail -n 1 "$EMBER_DAEMON_LOG")
    line=${line#*"$prog: "}
    case "$line" in
    "cannot listen on "*"Address in use"* | "cannot serve status on "*"Address in use"*)
        url=${line#cannot * on }
        url=${url%%: *}
        port=${url##*:}
        local var=EMBER_${kind}_PORT
        [[ "$line" != "cannot serve status"* ]] || var=EMBER_STATUS_PORT
        ember_die "port $port is in use on this node ($var); stop the process holding it (ss -ltnp 'sport = :$port' names it) or set $var to a free port"
        ;;
    "cannot listen on "*"Address invalid"* | "cannot serve status on "*"Address invalid"*)
        local var=EMBER_${kind}_HOST
        [[ "$line" != "cannot serve status"* ]] || var=EMBER_STATUS_HOST
        ember_die "$var=${!var:-$(ember_executor_host)} is not an address of this node ($(hostname -I 2>/dev/null | xargs echo)); set $var to one of its addresses"
        ;;
    "cannot reach "*)
        ember_die "the driver does not answer ($line); start it first (deploy/start-driver.sh) and check that this node reaches $EMBER_DRIVER_HOST:$EMBER_DRIVER_PORT (address, firewall)"
        ;;
    esac
    [ "$EMBER_DAEMON_STATUS" != 2 ] ||
        ember_die "$prog refused its options ($line); fix EMBER_${kind}_OPTS or the value in ember-env.sh"
    ember_die "$prog exited with status $EMBER_DAEMON_STATUS while starting ($line); see $EMBER_DAEMON_LOG"
}

# ember_abandon_start NAME PROGRAM: stop the daemon that did not become ready
ember_abandon_start() {
    ember_stop_daemon "$1" "$2" >/dev/null
}

# _ember_group_alive PID: a process of the process group PID leads (its session, from setsid)
# still exists, e.g. a supervised executor's child after its monitor
_ember_group_alive() {
    kill -0 -- "-$1" 2>/dev/null
}

# ember_stop_daemon NAME PROGRAM: SIGTERM, SIGKILL after EMBER_STOP_TIMEOUT; says what it did.
# The SIGKILL goes to the daemon's whole process group (ember_start_daemon made the daemon its
# leader), so a supervised executor's child does not outlive its killed monitor.
ember_stop_daemon() {
    local name=$1 prog=$2 pid deadline
    if ! pid=$(ember_daemon_pid "$name" "$prog"); then
        rm -f "$(ember_pid_file "$name")" "$(ember_ready_file "$name")"
        ember_say "no $prog running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(ember_deadline "$EMBER_STOP_TIMEOUT")
    while ember_alive "$pid" "$prog" && ember_before "$deadline"; do sleep 0.1; done
    if ember_alive "$pid" "$prog"; then
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        deadline=$(ember_deadline 5)
        while { ember_alive "$pid" "$prog" || _ember_group_alive "$pid"; } && ember_before "$deadline"; do sleep 0.1; done
        ember_alive "$pid" "$prog" && ember_die "$prog (pid $pid) survives SIGKILL; look at it with ps -o stat,wchan -p $pid"
        ember_say "$prog (pid $pid) killed: it did not exit within $EMBER_STOP_TIMEOUT s of SIGTERM (EMBER_STOP_TIMEOUT); see $(ember_log_file "$name")"
    else
        ember_say "$prog stopped (pid $pid)"
    fi
    rm -f "$(ember_pid_file "$name")" "$(ember_ready_file "$name")"
}

# ember_secret_ensure makes the cluster secret when it is missing (mode 0600)
ember_secret_ensure() {
    local out
    ember_check_binary ember-secret
    out=$("$EMBER_BIN/ember-secret" "$EMBER_SECRET_FILE" 2>&1 >/dev/null) ||
        ember_die "cannot make the cluster secret: $out"
}

# --- workers ----------------------------------------------------------------------------

# The worker side of start-cluster.sh and stop-cluster.sh, run on the worker by ember_remote
# (which sets EMBER_NODE).
# shellcheck disable=SC2153
ember_worker_probe() {
    EMBER_WHO="worker $EMBER_NODE"
    ember_validate_config
    ember_check_binary ember-executor
    [ -f "$EMBER_DEPLOY/start-executor.sh" ] || ember_die "$EMBER_DEPLOY/start-executor.sh is missing; install ember there"
}

ember_worker_start() {
    exec bash "$EMBER_DEPLOY/start-executor.sh"
}

# ember_worker_secret writes the cluster secret that came with the script (EMBER_SECRET_TEXT)
# to EMBER_SECRET_FILE, mode 0600, unless the worker has it already
ember_worker_secret() {
    EMBER_WHO="worker $EMBER_NODE"
    [ -f "$EMBER_SECRET_FILE" ] && cmp -s "$EMBER_SECRET_FILE" <(printf '%s\n' "$EMBER_SECRET_TEXT") && return 0
    (
        umask 077
        mkdir -p "$(dirname "$EMBER_SECRET_FILE")"
        printf '%s\n' "$EMBER_SECRET_TEXT" >"$EMBER_SECRET_FILE.tmp"
        mv "$EMBER_SECRET_FILE.tmp" "$EMBER_SECRET_FILE"
    ) || ember_die "cannot write the cluster secret $EMBER_SECRET_FILE"
}

ember_worker_stop() {
    EMBER_WHO="worker $EMBER_NODE"
    ember_stop_daemon "executor-$EMBER_NODE" ember-executor
}

# ember_remote HOST ACTION: runs ember_worker_ACTION on HOST (bash reads the script from
# standard input, so only "bash -s" goes through EMBER_SSH, and any EMBER_SSH that runs a
# command works). The script passes EMBER_CLUSTER_VARS and EMBER_NODE=HOST, and first prints
# "ember-remote: reached", which tells a worker that cannot be reached from one that failed.
ember_remote() {
    local host=$1 action=$2 v limit script
    limit=$((10#$EMBER_START_TIMEOUT + 10#$EMBER_STOP_TIMEOUT + 30))
    script=$(
        echo '{'
        echo 'set -euo pipefail'
        for v in "${EMBER_CLUSTER_VARS[@]}"; do printf 'export %s=%q\n' "$v" "${!v}"; done
        printf 'export EMBER_NODE=%q EMBER_REMOTE=1\n' "$host"
        # the secret travels only to write it on a worker, inside the script (over EMBER_SSH)
        [ "$action" != secret ] || printf 'export EMBER_SECRET_TEXT=%q\n' "$(cat "$EMBER_SECRET_FILE")"
        cat <<'SCRIPT'
echo "ember-remote: reached"
lib=$EMBER_HOME/deploy/ember-lib.sh
if [ ! -f "$lib" ]; then
    echo "ember: worker $EMBER_NODE: ember is not installed at EMBER_HOME=$EMBER_HOME (no $lib); install it there, at the same path as on this node" >&2
    exit 1
fi
. "$lib"
SCRIPT
        echo "ember_worker_$action"
        echo 'exit'
        echo '}'
    )
    if ember_is_local "$host"; then
        timeout "$limit" bash -s <<<"$script"
    else
        # shellcheck disable=SC2086 # EMBER_SSH and EMBER_SSH_OPTS are command words
        timeout "$limit" $EMBER_SSH $EMBER_SSH_OPTS "$host" bash -s <<<"$script"
    fi
}

# ember_on_workers ACTION: ember_remote on every worker at once, then each one's report in
# the order of the workers file. Fails if any worker failed. Sets EMBER_REMOTE_INFO[i]: the
# "ember-remote: KEY VALUE" lines worker i printed (but "reached").
ember_on_workers() {
    local action=$1 tmp i host rc failed=0 out err
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/ember-remote.XXXXXX")
    for i in "${!EMBER_WORKERS[@]}"; do
        (
            rc=0
            ember_remote "${EMBER_WORKERS[$i]}" "$action" >"$tmp/$i.out" 2>"$tmp/$i.err" || rc=$?
            echo "$rc" >"$tmp/$i.rc"
        ) &
    done
    wait
    EMBER_REMOTE_INFO=()
    for i in "${!EMBER_WORKERS[@]}"; do
        host=${EMBER_WORKERS[$i]}
        rc=$(cat "$tmp/$i.rc")
        out=$(cat "$tmp/$i.out")
        err=$(tr -d '\r' <"$tmp/$i.err") # ssh ends its messages with CR LF
        # shellcheck disable=SC2034 # read by start-cluster.sh
        EMBER_REMOTE_INFO[i]=$(grep '^ember-remote: ' <<<"$out" | grep -v '^ember-remote: reached$' || true)
        if ! grep -qx 'ember-remote: reached' <<<"$out"; then
            failed=1
            local why
            why=$(grep -v '^[[:space:]]*$' <<<"$err" | tail -n 1 || true)
            [ "$rc" != 124 ] || why="no answer within $((10#$EMBER_START_TIMEOUT + 10#$EMBER_STOP_TIMEOUT + 30)) s"
            echo "ember: worker $host: unreachable with '$EMBER_SSH${EMBER_SSH_OPTS:+ $EMBER_SSH_OPTS} $host' (${why:-exit status $rc}); check the host in $EMBER_WORKERS_FILE, that it is up and that this user logs in there without a password, or set EMBER_SSH" >&2
            continue
        fi
        grep -v '^ember-remote: ' <<<"$out" || true
        if [ "$rc" != 0 ]; then
            failed=1
            if grep -q '^ember: ' <<<"$err"; then
                grep '^ember: ' <<<"$err" >&2
            else
                echo "ember: worker $host: failed with status $rc: $(tail -n 1 <<<"$err")" >&2
            fi
        fi
    done
    rm -rf "$tmp"
    return "$failed"
}
