#!/usr/bin/env bash
# test_redis_sink.sh -- datasets saved to a real redis-server (tests/jobs/redis_save.c): 1,000
# SETs with a time-to-live, 1,000 HSETs of two fields, 1,000 ZADDs into one sorted set, from two
# executors, read back with redis-cli and compared with the expected contents exactly; saving
# again changes nothing (upserts); a password the server wants, given, works, and a wrong one
# fails the job with Redis's own message; an address nobody listens on fails it saying so.
# Then a query into Redis (tests/jobs/stream_redis.c, each line = the time it was written): a
# batch run again after its commit was lost writes nothing again (its fences), and through an
# executor's kill -9 every line arrives and every fence ends at the last committed batch.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

RPASS=s3cret
start_redis --requirepass "$RPASS"
PORT=$RPORT
cluster_up

save() { "$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/redis_save.so" -- "$@"; }
save --address "127.0.0.1:$PORT" --password s3cret --ttl-ms 600000 --db 2 >"$T/save.out" 2>"$T/save.err" ||
    fail "redis_save failed: $(tail -3 "$T/save.err")"
expect_eq "$(cat "$T/save.out")" "saved SET 1000, HSET 1000, ZADD 1000" "records written"
expect_eq "$(rcli -n 2 dbsize)" 2001 "keys in db 2 (1000 users, 1000 items, one sorted set)"
expect_eq "$(rcli -n 0 dbsize)" 0 "keys in db 0"
expect_eq "$(rcli -n 2 get user:417)" "name-417" "SET user:417"
ttl=$(rcli -n 2 pttl user:417)
[ "$ttl" -gt 0 ] && [ "$ttl" -le 600000 ] || fail "user:417's time-to-live: $ttl"
expect_eq "$(rcli -n 2 hgetall item:417 | paste -sd,)" "name,item 417,qty,1251" "HSET item:417"
expect_eq "$(rcli -n 2 pttl item:417)" -1 "item:417 has no time-to-live"
expect_eq "$(rcli -n 2 zcard leaders)" 1000 "members of leaders"
expect_eq "$(rcli -n 2 zrevrange leaders 0 2 withscores | paste -sd,)" \
    "player-999,1498.5,player-998,1497,player-997,1495.5" "the top of leaders"
# every user, item and player exactly as the job computed them
seq 0 999 | awk '{ print "user:" $1 " name-" $1 }' | sort >"$T/want.users"
rcli -n 2 --scan --pattern 'user:*' | sort | while read -r k; do echo "$k $(rcli -n 2 get "$k")"; done >"$T/got.users"
cmp -s "$T/want.users" "$T/got.users" || fail "users differ: $(diff "$T/want.users" "$T/got.users" | head -3)"
echo "ok: 1000 users, 1000 items and 1000 players in Redis, exactly"

save --address "127.0.0.1:$PORT" --password s3cret --ttl-ms 600000 --db 2 >/dev/null 2>"$T/save2.err" ||
    fail "redis_save again failed: $(tail -3 "$T/save2.err")"
expect_eq "$(rcli -n 2 dbsize)" 2001 "keys after saving again"
expect_eq "$(rcli -n 2 zcard leaders)" 1000 "members of leaders after saving again"

expect_fail "a wrong password" save --address "127.0.0.1:$PORT" --password wrong --count 10
expect_contains "$(cat "$T/fail.err")" "redis AUTH at 127.0.0.1:$PORT: WRONGPASS" "the wrong password: Redis's message"
expect_fail "no password" save --address "127.0.0.1:$PORT" --count 10
expect_contains "$(cat "$T/fail.err")" "NOAUTH" "no password: Redis's message"
dead=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
expect_fail "nobody listening" save --address "127.0.0.1:$dead" --count 10
expect_contains "$(cat "$T/fail.err")" "cannot connect to redis at 127.0.0.1:$dead" "nobody listening: the message"

# ---- a query into Redis, exactly once ---------------------------------------------------------
# each line becomes SET line = the time it was written: a batch applied twice would show. After
# a query stopped, its last commit is removed, as if the driver had died between the writes and
# the commit: the query starts again with that batch, whose tasks find their fence and apply
# nothing again.
start_kafka lines:8
qrun() {
    "$EMBER_BIN/ember-submit" --driver "$DRIVER" --kafka "$KAFKA" "$EMBER_JOBS/stream_redis.so" -- \
        --topic lines --name stamps --checkpoint "$T/ck" --address "127.0.0.1:$PORT" \
        --password s3cret --interval-ms 50 >>"$T/q.out" 2>>"$T/q.err" &
    QPID=$!
}
lines() { seq "$1" "$2" | sed 's/^/line-/' | "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic lines >/dev/null; }
# fences: each task's fence key and the batch it holds; line_keys_at_least N
fences() { for k in $(rcli --scan --pattern 'ember:fence:stamps:*' | sort); do echo "$k=$(rcli get "$k")"; done | paste -sd,; }
line_keys_at_least() { [ "$(rcli --scan --pattern 'line-*' | wc -l)" -ge "$1" ]; }
rcli flushall >/dev/null
qrun
lines 1 300
wait_until 60 line_keys_at_least 300
"$EMBER_BIN/ember-submit" --driver "$DRIVER" --stop stamps >/dev/null 2>&1 || fail "ember-submit --stop failed"
wait "$QPID" || fail "the query failed: $(tail -3 "$T/q.err")"
last=$(ls "$T/ck/commits" | sort -n | tail -1)
fences >"$T/fence.1"
[ -s "$T/fence.1" ] || fail "no fence keys ember:fence:stamps:PARTITION"
seq 1 300 | sed 's/^/line-/' | xargs redis-cli -p "$PORT" -a s3cret --no-auth-warning mget >"$T/stamps.1"
rm "$T/ck/commits/$last"
qrun
wait_until 30 grep -q "query resumed query=[0-9]* name=stamps batch=$last" "$T/driver.log"
wait_api /api/v1/streaming/queries "[.[] | select(.name == \"stamps\" and .last_committed >= $last)] | length == 1" 30
seq 1 300 | sed 's/^/line-/' | xargs redis-cli -p "$PORT" -a s3cret --no-auth-warning mget >"$T/stamps.2"
cmp -s "$T/stamps.1" "$T/stamps.2" || fail "batch $last, run again, wrote its records again"
expect_eq "$(fences)" "$(cat "$T/fence.1")" "the fences after the replay"
lines 301 400
wait_until 60 line_keys_at_least 400
echo "ok: batch $last ran again and applied nothing twice; the next batches went on"

# an executor killed while lines arrive: its tasks' open transactions die with their
# connections, and run again elsewhere
for r in 0 1 2 3 4; do
    lines $((401 + r * 200)) $((600 + r * 200))
    if [ "$r" = 1 ]; then
        kill -9 "$ex1_PID"
        start_executor ex3 --slots 2
    fi
done
wait_until 90 line_keys_at_least 1400
"$EMBER_BIN/ember-submit" --driver "$DRIVER" --stop stamps >/dev/null 2>&1 || fail "ember-submit --stop failed"
wait "$QPID" || fail "the query failed: $(tail -3 "$T/q.err")"
n_fences=$(rcli --scan --pattern 'ember:fence:stamps:*' | wc -l)
expect_eq "$(rcli dbsize)" $((1400 + n_fences)) "keys: 1400 lines and $n_fences fences, nothing else"
expect_eq "$(seq 1 1400 | sed 's/^/line-/' | xargs redis-cli -p "$PORT" -a s3cret --no-auth-warning exists)" 1400 \
    "every line written"
committed=$(ls "$T/ck/commits" | sort -n | tail -1)
expect_eq "$(for k in $(rcli --scan --pattern 'ember:fence:stamps:*'); do rcli get "$k"; done | sort -u | paste -sd,)" "$((committed + 1))" \
    "every partition's fence at the last committed batch"
echo "ok: an executor killed mid-stream: every line in Redis, the fences at the last batch"
echo "PASS"
