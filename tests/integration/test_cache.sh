#!/usr/bin/env bash
# test_cache.sh -- ember_persist: a persisted dataset used by two actions is computed once
# (the second action's tasks all read cached partitions, on the executors holding them);
# under a 1 MiB block store, MEMORY_ONLY evicts the least recently used partitions and only
# those are computed again, while MEMORY_AND_DISK spills and keeps them all; an executor
# killed between the two actions costs only its partitions; ember_unpersist removes them.
# Counts come from the status API (cache_hits, /api/v1/storage); results are exact.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_kafka numbers:8
start_driver --heartbeat-ms 200 --executor-timeout-ms 2000 --locality-wait-ms 20000
start_executor ex1 --slots 2
start_executor ex2 --slots 2
wait_executors 2

# 24,000 numbers on 8 partitions: each persisted partition is about 3,000 x 120 bytes
seq 1 24000 | "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic numbers >/dev/null
want_total=$((24000 * 24001 / 2))

# job_stage JOB INDEX: a job's stage document, with its task list
job_stage() { api "/api/v1/stages/$(api "/api/v1/jobs/$1" | jq ".stages[$2].id")"; }
last_job() { api /api/v1/jobs | jq '[.[].id] | max'; }
# JOBS: the jobs the driver ran so far, one per action: cache_job's count, its sums (then a
# second sums with --unpersist) and with --other the count of the second dataset
JOBS=0

# paused_run NAME LEVEL [ARGS]: runs cache_job in the background until its first action is
# done; the test then looks at the cluster and lets it go on with `go NAME`
paused_run() {
    local name=$1 level=$2
    shift 2
    rm -f "$T/$name.go"
    "$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/cache_job.so" -- numbers "$level" \
        --wait "$T/$name.go" "$@" >"$T/$name.out" 2>&1 &
    RUN_PID=$!
    JOBS=$((JOBS + 1))
    case " $* " in *" --other "*) JOBS=$((JOBS + 1)) ;; esac
    for _ in $(seq 300); do
        if grep -q "first action" "$T/$name.out"; then
            # a snapshot taken after the action's jobs ended also holds what they cached
            wait_jobs_finished "$JOBS"
            return 0
        fi
        sleep 0.05
    done
    fail "$name: first action did not end: $(cat "$T/$name.out")"
}
go() {
    touch "$T/$1.go"
    wait "$RUN_PID" || fail "$1: $(cat "$T/$1.out")"
    expect_contains "$(cat "$T/$1.out")" "second action: 10 keys, total $want_total" "$1: exact sums"
    JOBS=$((JOBS + 1))
    wait_jobs_finished "$JOBS"
}

# ---- 1. computed once, read from the cache by the second action -------------------------------
submit "$EMBER_JOBS/cache_job.so" -- numbers memory || fail "cache_job: $(cat "$T/submit.out" "$T/submit.err")"
expect_contains "$(cat "$T/submit.out")" "second action: 10 keys, total $want_total" "sums over the cached numbers"
JOBS=2
wait_job_done 2
expect_eq "$(job_stage 1 0 | jq -c '[.cache_hits, .tasks_launched]')" "[0,8]" "first action computes every partition"
second=$(api /api/v1/jobs/2)
expect_eq "$(jq -c '[.stages[0].cache_hits, .stages[0].tasks_launched, .stages[0].records_in]' <<<"$second")" \
    "[8,8,24000]" "second action: 8 partitions read from the cache, not from Kafka"
expect_eq "$(api /metrics | awk '$1 == "ember_cache_hits_total" {print $2}')" 8 "ember_cache_hits_total"
echo "ok: a persisted dataset used by two actions is computed once"

# a persisted dataset made from a cached one: its first action starts from the cached
# partitions (the lineage's last cached dataset, as Spark), its second from its own
submit "$EMBER_JOBS/cache_job.so" -- numbers memory --chained || fail "cache_job --chained: $(cat "$T/submit.out" "$T/submit.err")"
expect_contains "$(cat "$T/submit.out")" "chained: 12000 even numbers, twice" "counts of the chained dataset"
JOBS=$((JOBS + 4))
wait_jobs_finished "$JOBS"
expect_eq "$(job_stage $((JOBS - 2)) 0 | jq -c '[.cache_hits, .records_in]')" "[8,24000]" \
    "the chained dataset's first count: every task read the cached numbers"
expect_eq "$(job_stage $((JOBS - 1)) 0 | jq -c '[.cache_hits, .records_in]')" "[8,12000]" \
    "its second count: every task read its own cached partitions"
wait_api /api/v1/storage 'length == 0'
echo "ok: a persisted dataset made from a cached one starts from the cache"

# ---- 2. where the partitions are, and tasks going there ---------------------------------------
paused_run locality memory
storage=$(api /api/v1/storage)
expect_eq "$(jq -c '[length, .[0].operation, .[0].storage, .[0].partitions, .[0].cached_partitions]' <<<"$storage")" \
    '[1,"map","memory_only",8,8]' "storage of the persisted dataset"
holders=$(jq -c '.[0].holders' <<<"$storage")
go locality
second=$(last_job)
placed=$(job_stage "$second" 0 | jq -c '[.task_list | sort_by(.partition)[] | .executor]')
expect_eq "$placed" "$holders" "each task of the second action ran where its partition is cached"
expect_eq "$(job_stage "$second" 0 | jq .cache_hits)" 8 "second action: cache hits"
wait_api /api/v1/storage 'length == 0'
echo "ok: /api/v1/storage shows the cached partitions; tasks go to them; dropped when the run ends"

# ---- 3. a 1 MiB block store: evictions, only evicted partitions computed again ---------------
kill -TERM "$ex1_PID" "$ex2_PID"
start_executor ex3 --slots 2 --memory-mb 1
start_executor ex4 --slots 2 --memory-mb 1
wait_alive "$ex3_PID" "$ex4_PID"
paused_run tiny memory
storage=$(api /api/v1/storage)
cached=$(jq '.[0].cached_partitions' <<<"$storage")
[ "$cached" -gt 0 ] && [ "$cached" -lt 8 ] || fail "a 1 MiB store kept $cached partitions of 8"
expect_eq "$(jq '.[0].evictions' <<<"$storage")" 0 "a dataset does not evict its own partitions"
go tiny
second=$(last_job)
expect_eq "$(job_stage "$second" 0 | jq -c '[.cache_hits, .recomputed_tasks]')" "[$cached,0]" \
    "cache hits = partitions cached; the others were never cached, so not recomputations"
echo "ok: MEMORY_ONLY under 1 MiB: $cached partitions fit and were read back, the others computed again"

# a second persisted dataset evicts the least recently used partitions of the first
paused_run evict memory --other
storage=$(api /api/v1/storage)
first=$(jq -c 'sort_by(.id) | map(select(.evictions > 0)) | .[0]' <<<"$storage")
[ "$first" != null ] || fail "no dataset lost partitions to the other: $storage"
cached=$(jq .cached_partitions <<<"$first")
go evict
second=$(last_job)
expect_eq "$(job_stage "$second" 0 | jq -c '[.cache_hits, .recompute_reasons.eviction]')" \
    "[$cached,$(jq .evictions <<<"$first")]" "cache hits = partitions left; recomputed for eviction = partitions evicted"
evictions=$(api /metrics | awk '$1 == "ember_cache_evictions_total" {print $2}')
[ "$evictions" -ge "$(jq .evictions <<<"$first")" ] || fail "ember_cache_evictions_total $evictions"
echo "ok: LRU eviction by another dataset: $(jq .evictions <<<"$first") evicted, $cached hits"

paused_run spill disk
expect_eq "$(api /api/v1/storage | jq -c '[.[0].storage, .[0].cached_partitions, .[0].evictions]')" \
    '["memory_and_disk",8,0]' "MEMORY_AND_DISK keeps every partition under 1 MiB"
go spill
second=$(last_job)
expect_eq "$(job_stage "$second" 0 | jq .cache_hits)" 8 "MEMORY_AND_DISK: every partition from the cache"
echo "ok: MEMORY_AND_DISK under 1 MiB spills and keeps all 8 partitions"

# ---- 4. an executor killed between the two actions --------------------------------------------
kill -TERM "$ex3_PID" "$ex4_PID"
start_executor ex5 --slots 2
start_executor ex6 --slots 2
wait_alive "$ex5_PID" "$ex6_PID"
paused_run killed memory
ex6=$(api /api/v1/executors | jq '.[] | select(.pid == '"$ex6_PID"') | .id')
kept=$(api /api/v1/storage | jq --argjson ex "$ex6" '[.[0].holders[] | select(. != $ex)] | length')
kill -9 "$ex6_PID"
wait_api /api/v1/executors '[.[] | select(.state == "alive")] | length == 1'
go killed
second=$(last_job)
expect_eq "$(job_stage "$second" 0 | jq -c '[.cache_hits, .recompute_reasons.executor_lost]')" "[$kept,$((8 - kept))]" \
    "cache hits = partitions on the surviving executor; the others recomputed, executor lost"
echo "ok: killed after caching: the $((8 - kept)) lost partitions computed again, results exact"

# ---- 5. unpersist --------------------------------------------------------------------------------
submit "$EMBER_JOBS/cache_job.so" -- numbers memory --unpersist || fail "unpersist: $(cat "$T/submit.out" "$T/submit.err")"
expect_contains "$(cat "$T/submit.out")" "after unpersist: 10 keys, total $want_total" "sums after unpersist"
JOBS=$((JOBS + 3))
wait_jobs_finished "$JOBS"
third=$(last_job)
expect_eq "$(job_stage "$third" 0 | jq .cache_hits)" 0 "after unpersist nothing is read from the cache"
wait_api /api/v1/executors '[.[] | select(.state == "alive") | .blocks] | add == 0'
echo "ok: ember_unpersist: the partitions are dropped and computed again"
echo "PASS test_cache"
