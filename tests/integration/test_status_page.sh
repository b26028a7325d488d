#!/usr/bin/env bash
# test_status_page.sh -- the driver's status page in a real browser: a driver, two executors,
# the api_tour job (7 finished jobs) and a slow job still running; headless Chromium renders
# http://STATUS/ and the test reads the DOM it built from the JSON documents: both executors,
# every finished job by id, name and state, the running job with its stage and task strip, the
# driver totals. The same page opened without a driver behind it says "driver unreachable"
# instead of failing. Last, a 1280x900 screenshot is kept as a test artifact:
# $EMBER_ARTIFACTS/status_page.png, else <build>/artifacts/status_page.png.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

chromium_setup

# jobs_in DOM_FILE: one line per rendered job: "id state name"
jobs_in() {
    sed 's#<div class="job" #\n&#g' "$1" | grep '^<div class="job" ' |
        sed -n 's#^<div class="job" data-id="\([0-9]*\)" data-state="\([a-z]*\)".*<span class="job-name">\([^<]*\)</span>.*#\1 \2 \3#p'
}

start_driver
start_executor ex1 --slots 2
start_executor ex2 --slots 2
wait_executors 2

submit "$EMBER_JOBS/api_tour.so" -- --out "$T/tour-out" || fail "api_tour failed: $(cat "$T/submit.err")"
head -n 7 "$EMBER_SRC/tests/integration/api_tour.expected" >"$T/tour.expected"
cmp -s "$T/submit.out" "$T/tour.expected" || fail "api_tour output: $(cat "$T/submit.out")"
wait_jobs_finished 7
tour_jobs=$(api /api/v1/jobs | jq -r '.[] | "\(.id) \(.state) \(.name)"' | sort -n)
expect_eq "$(wc -l <<<"$tour_jobs")" 7 "api_tour jobs in /api/v1/jobs"

# 4800 records over 48 partitions, 10 ms each: 1 s a task, 12 waves on 4 slots
"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/slow_count.so" -- 4800 48 10 >"$T/slow.out" 2>"$T/slow.err" &
slow_pid=$!
PIDS+=("$slow_pid")
slow_id=""
for _ in $(seq 200); do
    slow_id=$(api /api/v1/jobs | jq '.[] | select(.state == "running" and .name == "slow_count.so") | .id')
    [ -n "$slow_id" ] && break
    sleep 0.05
done
[ -n "$slow_id" ] || fail "slow_count never showed as running"
slow_stage=$(api "/api/v1/jobs/$slow_id" | jq '.stages[0].id')

dom "$STATUS/" "$T/page.dom"
expect_contains "$(cat "$T/page.dom")" '<div id="conn" data-state="live"' "the page is live"
rows=$(grep -o '<tr class="executor [a-z]*" data-id="[0-9]*" data-state="[a-z]*"' "$T/page.dom" |
    sed 's/.*data-id="\([0-9]*\)" data-state="\([a-z]*\)"/\1 \2/' | tr '\n' ',')
expect_eq "$rows" "1 alive,2 alive," "executor rows (id state)"
resident=$(grep -o '<div class="sub" data-field="rss"[^>]*>[^<]*<' "$T/page.dom" | sed 's/.*>\([^<]*\)<$/\1/' | tr '\n' ',')
[[ "$resident" =~ ^[0-9.]+\ [KMG]iB\ resident,[0-9.]+\ [KMG]iB\ resident,$ ]] || fail "resident memory of the executors: '$resident'"
echo "ok: each executor's resident memory shown ($resident)"
expect_contains "$(cat "$T/page.dom")" 'data-field="executors_alive" id="executors-alive">2<' "executors alive in the header"
expect_contains "$(cat "$T/page.dom")" 'data-field="jobs_succeeded" id="jobs-succeeded">7<' "jobs succeeded in the header"
rendered=$(jobs_in "$T/page.dom" | sort -n)
expect_eq "$(grep -v '^'"$slow_id"' ' <<<"$rendered")" "$tour_jobs" "finished jobs rendered (id state name)"
expect_contains "$rendered" "$slow_id running slow_count.so" "the running job is rendered"
for id in $(api /api/v1/stages | jq '.[].id'); do
    grep -q "<g class=\"stage\" data-id=\"$id\" data-state=\"[a-z]*\"" "$T/page.dom" || fail "no stage box for stage $id"
done
echo "ok: a stage box for every job's stage"
expect_contains "$(cat "$T/page.dom")" "<div class=\"tasks\" data-stage=\"$slow_stage\">" "the running stage's task strip"
grep -q '<polyline class="read" points="[0-9]' "$T/page.dom" || fail "the records-per-second chart has no line"
echo "ok: the records-per-second chart has a line"

screenshot "$STATUS/" "$ARTIFACTS/status_page.png" 1280x900

# the same page without a driver behind it: no exception, a plain "driver unreachable"
curl -sf --max-time 5 "$STATUS/" >"$T/page.html"
dom "file://$T/page.html" "$T/orphan.dom"
expect_contains "$(cat "$T/orphan.dom")" '<div id="conn" data-state="unreachable"' "a page without a driver"
expect_contains "$(cat "$T/orphan.dom")" 'driver unreachable' "it says the driver is unreachable"
expect_contains "$(cat "$T/orphan.dom")" '<span id="page-error"></span>' "and shows no page error"

timeout 60 bash -c "while kill -0 $slow_pid 2>/dev/null; do sleep 0.1; done" || fail "slow_count did not end"
wait "$slow_pid" || fail "slow_count failed: $(cat "$T/slow.err")"
expect_eq "$(cat "$T/slow.out")" "counted 4800" "the slow job's result"

# ---- storage: a persisted dataset held while its job waits -----------------------------------
start_kafka nums:4
# a job that fails in ember-submit (its topic does not exist) is listed by the driver all the same
rc=0
"$EMBER_BIN/ember-submit" --driver "$DRIVER" --kafka "$KAFKA" --name lost-topic "$EMBER_JOBS/word_count.so" -- \
    --in no-such-topic --out "$T/wc" >/dev/null 2>"$T/lost.err" || rc=$?
[ "$rc" -ne 0 ] || fail "a word count of a missing topic succeeded"
wait_api /api/v1/submissions/failed 'length == 1' 10
expect_eq "$(api /api/v1/submissions/failed | jq -r '.[0] | "\(.name) \(.state) \(.action)"')" "lost-topic failed collect" "the failed submission (name state action)"
expect_contains "$(api /api/v1/submissions/failed | jq -r '.[0].error')" "no-such-topic" "its error names the topic"
seq 1 400 | "$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic nums >/dev/null
"$EMBER_BIN/ember-submit" --driver "$DRIVER" --kafka "$KAFKA" "$EMBER_JOBS/cache_job.so" -- nums memory \
    --wait "$T/cache.go" >"$T/cache.out" 2>"$T/cache.err" &
cache_pid=$!
PIDS+=("$cache_pid")
wait_api /api/v1/storage 'length == 1 and .[0].cached_partitions == 4' 30
set_id=$(api /api/v1/storage | jq -r '.[0].id')
dom "$STATUS/" "$T/storage.dom"
grep -q '<section class="panel" id="storage-panel">' "$T/storage.dom" || fail "the storage panel is hidden with a dataset cached"
expect_contains "$(cat "$T/storage.dom")" "<tr class=\"cached\" data-id=\"$set_id\" data-cached=\"4\">" "the cached dataset's row"
expect_contains "$(cat "$T/storage.dom")" "4 / 4" "its cached partitions"
grep -q '<div id="refused-panel">' "$T/storage.dom" || fail "the page hides the job that failed in ember-submit"
expect_contains "$(cat "$T/storage.dom")" '<span class="job-name">lost-topic</span>' "the page lists it by name"
touch "$T/cache.go"
wait "$cache_pid" || fail "cache_job failed: $(cat "$T/cache.err")"
echo "ok: the storage panel lists the cached dataset"

# ---- the stage view: the slow job's stage, its 48 tasks done ------------------------------------
wait_job_done "$slow_id"
doc=$(api "/api/v1/stages/$slow_stage")
expect_eq "$(jq '.task_quantiles.tasks' <<<"$doc")" 48 "tasks in the stage's quantiles"
# the quantiles again, from the task list (nearest rank: index (n - 1) * q / 4 of the sorted values)
for f in duration_ms input_wait_ms records_in bytes_in; do
    want=$(jq -c "[.task_list[] | select(.state == \"done\") | .$f] | sort | . as \$v | [0,1,2,3,4] | map(\$v[(47 * . / 4 | floor)])" <<<"$doc")
    expect_eq "$(jq -c ".task_quantiles.$f" <<<"$doc")" "$want" "$f quantiles against the task list"
done
dom "$STATUS/#stage/$slow_stage" "$T/stage.dom"
grep -q '<section class="panel" id="stage-panel">' "$T/stage.dom" || fail "the stage panel is not shown for #stage/$slow_stage"
expect_contains "$(cat "$T/stage.dom")" "Stage $slow_stage of job $slow_id" "the stage view's title"
expect_eq "$(grep -o '<tr class="task[a-z ]*" data-partition="[0-9]*" data-state="done"' "$T/stage.dom" | wc -l)" 48 "task rows"
expect_eq "$(grep -o '<rect class="task-bar done" data-partition="[0-9]*"' "$T/stage.dom" | wc -l)" 48 "timeline bars"
expect_eq "$(grep -o '<text class="lane-label"[^>]*>executor [0-9]*<' "$T/stage.dom" | sed 's/.*>executor //; s/<//' | sort | tr '\n' ' ')" "1 2 " "a timeline lane per executor"
expect_eq "$(grep -o '<tr data-figure="[a-z_]*"' "$T/stage.dom" | sed 's/.*="//; s/"//' | tr '\n' ' ')" \
    "duration_ms input_wait_ms records_in records_out bytes_in " "quantile rows"
expect_contains "$(cat "$T/stage.dom")" "48 tasks done" "the quantiles count the done tasks"
expect_contains "$(cat "$T/page.dom")" 'id="stage-legend"' "the stage boxes' legend"
expect_contains "$(cat "$T/page.dom")" "href=\"#stage/$slow_stage\"" "stage boxes open the stage view"
screenshot "$STATUS/#stage/$slow_stage" "$ARTIFACTS/status_stage.png" 1400x1000
echo "ok: the stage view (quantiles checked against the task list, 48 rows, 48 bars); $ARTIFACTS/status_stage.png"
echo "PASS test_status_page"
