#!/usr/bin/env bash
# test_status_api.sh -- the status endpoint against what jobs really did: a driver and two
# executors; slow_count runs once quietly and once under a burst of 1,000 HTTP requests (its
# result and documents must not change); every JSON document is parsed with jq and checked
# against the jobs (task counts, records, executors, stage ids, task lists); a failing job
# shows its error; /metrics passes `promtool check metrics` and agrees with the documents;
# unknown paths answer 404 JSON, /api/v1/storage an empty list without cached datasets, writes 405 with Allow; oversized requests
# are refused and the driver carries on.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null ||
    fail "promtool not found: it is a declared test dependency (Debian package prometheus); run deploy/install-deps.sh"

# req METHOD PATH: prints the HTTP status; headers in $T/headers, body in $T/body
req() {
    local method=(-X "$1")
    [ "$1" = HEAD ] && method=(-I)
    curl -s --max-time 5 "${method[@]}" -D "$T/headers" -o "$T/body" -w '%{http_code}' "$STATUS$2" || true
}
# header NAME: the value of a response header of the last req
header() {
    awk -v h="$(tr '[:upper:]' '[:lower:]' <<<"$1")" -F': ' \
        'tolower($1) == h {sub(/\r$/, ""); sub(/^[^:]*: /, ""); print; exit}' "$T/headers"
}
# metric SERIES: the value of one series in $T/metrics (a saved /metrics text)
metric() {
    awk -v s="$1" '$1 == s {print $2; found = 1} END {if (!found) print "missing"}' "$T/metrics"
}
save_metrics() {
    curl -sf --max-time 5 "$STATUS/metrics" >"$T/metrics" || fail "GET /metrics failed"
    promtool check metrics <"$T/metrics" || fail "promtool check metrics: $(promtool check metrics <"$T/metrics" 2>&1)"
    echo "ok: /metrics passes promtool check metrics"
}
# job_by_id ID: the job's document from /api/v1/jobs
job_by_id() { api /api/v1/jobs | jq -e --argjson id "$1" '.[] | select(.id == $id)'; }
# wait_job_end NAME: the id of the newest job called NAME, once the snapshot shows it ended (the
# submitter hears of the end first: the snapshot follows within 50 ms)
wait_job_end() {
    local id
    for _ in $(seq 100); do
        id=$(api /api/v1/jobs | jq --arg n "$1" '[.[] | select(.name == $n and .state != "running" and .state != "waiting") | .id] | max')
        [ "$id" != null ] && [ "$id" -gt "${2:-0}" ] && { echo "$id"; return 0; }
        sleep 0.05
    done
    fail "no job called $1 (after job ${2:-0}) ended in the status snapshot"
}
# job_summary: the parts of a finished job document that only depend on what the job computed
job_summary() {
    jq -cS '{state, action, name, tasks, tasks_done, records_in, records_out, recomputed_tasks,
             stages: [.stages[] | {state, source, tasks, tasks_done, tasks_running, tasks_pending,
                                   records_in, records_out, recomputed_tasks, n_parents: (.parents | length)}]}'
}

start_driver
start_executor ex1 --slots 2
start_executor ex2 --slots 2
wait_executors 2
known=$(api /api/v1/executors | jq -c '[.[].id] | sort')
expect_eq "$known" "[1,2]" "executor ids"
expect_eq "$(api /api/v1/driver | jq -r .url)" "$DRIVER" "driver url in /api/v1/driver"
expect_eq "$(api /api/v1/jobs)" "[]" "no job before the first submit"

# ---- 1. the job without a burst --------------------------------------------------------------
# 2400 records over 8 partitions, 20 ms each: 300 records (6 s) a task, two waves on 4 slots
SLOW_ARGS=(2400 8 20)
submit "$EMBER_JOBS/slow_count.so" -- "${SLOW_ARGS[@]}" || fail "quiet slow_count failed: $(cat "$T/submit.err")"
cp "$T/submit.out" "$T/quiet.out"
expect_eq "$(cat "$T/quiet.out")" "counted 2400" "result of the quiet run"
quiet_id=$(wait_job_end slow_count.so)

# ---- 2. the same job with a burst of requests while it runs ----------------------------------
"$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/slow_count.so" -- "${SLOW_ARGS[@]}" \
    >"$T/burst.out" 2>"$T/burst.err" &
burst_pid=$!
PIDS+=("$burst_pid")
job=""
for _ in $(seq 200); do
    job=$(api /api/v1/jobs | jq -c '.[] | select(.state == "running") | select(.stages[0].tasks_running > 0)')
    [ -n "$job" ] && break
    sleep 0.05
done
[ -n "$job" ] || fail "the second slow_count never showed as running"
burst_id=$(jq .id <<<"$job")
expect_eq "$burst_id" "$((quiet_id + 1))" "job ids are consecutive"
stage_id=$(jq '.stages[0].id' <<<"$job")
expect_eq "$(jq -r .name <<<"$job")" slow_count.so "running job's name"
now_ms=$(($(date +%s) * 1000))
jq -e --argjson now "$now_ms" '.submitted_at_ms > $now - 120000 and .submitted_at_ms < $now + 2000' \
    <<<"$job" >/dev/null || fail "submitted_at_ms is not the wall clock: $(jq .submitted_at_ms <<<"$job") (now $now_ms)"
expect_eq "$(jq -c '[.tasks, .stages[0].tasks, (.stages | length), .stages[0].job]' <<<"$job")" "[8,8,1,$burst_id]" \
    "running job: tasks, stage tasks, stages, stage's job"
jq -e '.stages[0] | .tasks_done + .tasks_running + .tasks_pending == .tasks and .tasks_running <= 4
       and .records_in == 300 * .tasks_done' <<<"$job" >/dev/null ||
    fail "running stage's counts do not add up: $(jq -c .stages[0] <<<"$job")"
echo "ok: running stage: done + running + pending = 8, at most 4 running, 300 records per done task"
expect_eq "$(api /api/v1/driver | jq .jobs_running)" 1 "jobs_running while the job runs"
running_doc=$(api "/api/v1/stages/$stage_id")
expect_eq "$(jq -c '[.id, .job, .state, .tasks_shown, (.task_list | length)]' <<<"$running_doc")" \
    "[$stage_id,$burst_id,\"running\",8,8]" "running stage document"
jq -e --argjson known "$known" '.task_list | all(
        (.state == "pending" and (has("executor") | not)) or
        (.state == "running" and ([.executor] | inside($known))) or
        (.state == "done" and ([.executor] | inside($known)) and .records_in == 300))
      and ([.[].partition] == [range(8)]) and all(.attempt == 1)' <<<"$running_doc" >/dev/null ||
    fail "running stage's task list: $(jq -c .task_list <<<"$running_doc")"
echo "ok: running task list: partitions 0..7, attempt 1, running tasks on known executors"
d1=$(api "/api/v1/jobs/$burst_id" | jq .duration_ms)
# the snapshot is published again every 50 ms while a job runs: its duration grows
wait_api "/api/v1/jobs/$burst_id" ".state == \"running\" and .duration_ms > $d1" 10
echo "ok: a running job's duration grows ($d1 ms, then $(api "/api/v1/jobs/$burst_id" | jq .duration_ms) ms)"
save_metrics
expect_eq "$(metric 'ember_jobs{state="running"}')" 1 "ember_jobs running while the job runs"
[ "$(metric 'ember_tasks{state="running"}')" -ge 1 ] || fail "ember_tasks{state=\"running\"} is $(metric 'ember_tasks{state="running"}')"
expect_eq "$(metric 'ember_stages{state="running"}')" 1 "ember_stages running while the job runs"

# 1,000 requests, 8 curls at a time, 10 URLs per curl, over every kind of path (200 of them 404)
paths=(/ /api/v1/driver /api/v1/executors /api/v1/jobs "/api/v1/jobs/$burst_id" /api/v1/stages
       "/api/v1/stages/$stage_id" /metrics /api/v1/no-such-thing /api/v1/storage/rdd-1)
for _ in $(seq 100); do
    for p in "${paths[@]}"; do printf -- '-o\n/dev/null\n%s\n' "$STATUS$p"; done
done >"$T/burst.args"
started=$(date +%s%N)
timeout 120 xargs -P 8 -n 30 curl -s --max-time 10 -w '%{http_code}\n' <"$T/burst.args" >"$T/burst.codes" || true
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
expect_eq "$(sort "$T/burst.codes" | uniq -c | awk '{printf "%s:%s ", $2, $1}')" "200:800 404:200 " \
    "status codes of 1,000 requests in ${elapsed_ms} ms"
# the burst overlapped the job: it still runs, or (a loaded machine: the burst took longer than
# the job's 12 s) it ended after the burst began
job_by_id "$burst_id" | jq -e --argjson began "$((started / 1000000))" \
    '.state == "running" or .submitted_at_ms + .duration_ms > $began' >/dev/null ||
    fail "the job ended before the burst began: $(job_by_id "$burst_id" | jq -c '[.state, .submitted_at_ms, .duration_ms]')"
echo "ok: the burst overlapped the job ($(job_by_id "$burst_id" | jq -r .state) after it)"
timeout 60 bash -c "while kill -0 $burst_pid 2>/dev/null; do sleep 0.1; done" || fail "the burst job did not end"
wait "$burst_pid" || fail "slow_count under the burst failed: $(cat "$T/burst.err")"
expect_eq "$(wait_job_end slow_count.so "$quiet_id")" "$burst_id" "the burst job ended"
cmp -s "$T/quiet.out" "$T/burst.out" || fail "output under the burst '$(cat "$T/burst.out")' differs from '$(cat "$T/quiet.out")'"
echo "ok: the job's output under the burst is the quiet run's: $(cat "$T/burst.out")"
expect_eq "$(job_by_id "$burst_id" | job_summary)" "$(job_by_id "$quiet_id" | job_summary)" \
    "the job's document under the burst matches the quiet run's"

# ---- 3. the finished jobs against what they did ----------------------------------------------
for id in "$quiet_id" "$burst_id"; do
    j=$(job_by_id "$id")
    expect_eq "$(api "/api/v1/jobs/$id" | jq -cS .)" "$(jq -cS . <<<"$j")" "/api/v1/jobs/$id is its entry in /api/v1/jobs"
    expect_eq "$(jq -c '[.state, .action, .tasks, .tasks_done, .records_in, .records_out, .recomputed_tasks]' <<<"$j")" \
        '["succeeded","count",8,8,2400,2400,0]' "job $id: state, action, tasks, records in/out"
    sid=$(jq '.stages[0].id' <<<"$j")
    expect_eq "$(jq -c '.stages[0] | [.job, .state, .source, .tasks, .tasks_done, .tasks_running, .tasks_pending, .records_in, .records_out, .parents]' <<<"$j")" \
        "[$id,\"succeeded\",\"range\",8,8,0,0,2400,2400,[]]" "job $id: its stage"
    sdoc=$(api "/api/v1/stages/$sid")
    expect_eq "$(jq -cS 'del(.task_list, .tasks_shown, .task_quantiles)' <<<"$sdoc")" "$(jq -cS '.stages[0]' <<<"$j")" \
        "/api/v1/stages/$sid summarises like the job's stage entry"
    jq -e --argjson known "$known" '.tasks_shown == 8 and (.task_list | length == 8)
        and ([.task_list[].partition] == [range(8)])
        and (.task_list | all(.state == "done" and .attempt == 1 and ([.executor] | inside($known))
                              and .records_in == 300 and .records_out == 300 and .bytes_out == 0
                              and .duration_ms >= 6000))' <<<"$sdoc" >/dev/null ||
        fail "stage $sid task list: $(jq -c .task_list <<<"$sdoc")"
    echo "ok: stage $sid: 8 done tasks, partitions 0..7, attempt 1, 300 records each, >= 6 s each, on known executors"
    expect_eq "$(jq -c '[.task_list[].executor] | unique' <<<"$sdoc")" "$known" "stage $sid ran on both executors"
done

stages=$(api /api/v1/stages)
expect_eq "$(jq -c '[.[] | {id, job}] | sort_by(.id)' <<<"$stages")" \
    "$(api /api/v1/jobs | jq -c '[.[] | .stages[] | {id, job}] | sort_by(.id)')" \
    "/api/v1/stages lists exactly the stages of /api/v1/jobs, linked to their jobs"

# tasks completed per executor = done tasks in the task lists that name it
for ex in 1 2; do
    listed=0
    for sid in $(jq '.[].id' <<<"$stages"); do
        n=$(api "/api/v1/stages/$sid" | jq --argjson ex "$ex" '[.task_list[] | select(.executor == $ex and .state == "done")] | length')
        listed=$((listed + n))
    done
    expect_eq "$(api /api/v1/executors | jq --argjson ex "$ex" '.[] | select(.id == $ex) | .tasks_completed')" \
        "$listed" "executor $ex: tasks_completed equals its done tasks in the task lists"
done
executors=$(api /api/v1/executors)
jq -e 'all(.state == "alive" and .slots == 2 and .running_tasks == 0 and .tasks_failed == 0
           and .last_heartbeat_age_ms >= 0 and .last_heartbeat_age_ms < 5000 and .memory_cap > 0
           and (.address | startswith("tcp://127.0.0.1:")) and (has("lost_reason") | not))' <<<"$executors" >/dev/null ||
    fail "executors: $executors"
echo "ok: executors alive, 2 slots, idle, recent heartbeats, loopback addresses"
expect_eq "$(api /api/v1/driver | jq -c '[.executors_alive, .jobs_running, .jobs_succeeded, .jobs_failed,
                                          .tasks_launched, .tasks_succeeded, .tasks_failed, .tasks_relaunched,
                                          .rejected_messages]')" \
    "[2,0,2,0,16,16,0,0,0]" "driver totals after two jobs"

save_metrics
expect_eq "$(metric 'ember_tasks_finished_total{outcome="succeeded"}')" 16 "ember_tasks_finished_total succeeded = tasks run"
expect_eq "$(metric 'ember_tasks_finished_total{outcome="failed"}')" 0 "ember_tasks_finished_total failed"
expect_eq "$(metric ember_tasks_launched_total)" 16 "ember_tasks_launched_total"
expect_eq "$(metric 'ember_executors{state="alive"}')" 2 "ember_executors alive"
expect_eq "$(metric 'ember_executors{state="lost"}')" 0 "ember_executors lost"
expect_eq "$(metric 'ember_executor_slots{executor="1"}') $(metric 'ember_executor_slots{executor="2"}')" "2 2" "ember_executor_slots"
expect_eq "$(metric 'ember_jobs_finished_total{outcome="succeeded"}')" 2 "ember_jobs_finished_total succeeded"
expect_eq "$(metric 'ember_jobs{state="running"}')" 0 "ember_jobs running when idle"
expect_eq "$(metric ember_records_read_total) $(metric ember_records_written_total)" "4800 4800" "ember_records_read/written_total"
expect_eq "$(metric ember_task_duration_seconds_count)" 16 "ember_task_duration_seconds_count"
expect_eq "$(metric 'ember_task_duration_seconds_bucket{le="1"}') $(metric 'ember_task_duration_seconds_bucket{le="+Inf"}')" \
    "0 16" "task duration buckets: no task under 1 s (each slept 6 s)"
jq -e -n "$(metric ember_task_duration_seconds_sum) >= 96" >/dev/null ||
    fail "ember_task_duration_seconds_sum $(metric ember_task_duration_seconds_sum) < 16 tasks x 6 s"
echo "ok: ember_task_duration_seconds_sum >= 16 tasks x 6 s"

# ---- 4. a failed job -------------------------------------------------------------------------
if submit "$EMBER_JOBS/failing_fn.so"; then fail "failing_fn.so succeeded"; fi
failed_id=$(wait_job_end failing_fn.so)
failed=$(job_by_id "$failed_id")
expect_eq "$failed_id" "$((burst_id + 1))" "failed job's id"
expect_eq "$(jq -c '[.state, .action, .tasks, .stages[0].state, .stages[0].job]' <<<"$failed")" \
    "[\"failed\",\"count\",4,\"failed\",$failed_id]" "failed job: state, action, tasks, stage state, stage's job"
error=$(jq -r .error <<<"$failed")
for needle in "job $failed_id (failing_fn.so) failed" "partition 3 failed 4 times (attempt 4 on executor" "fail_on_partition_3" \
    "value 30 is cursed" "EMBER_ERR_USER"; do
    expect_contains "$error" "$needle" "failed job's error names '$needle'"
done
expect_contains "$(cat "$T/submit.err")" "value 30 is cursed" "ember-submit reports the same error"
failed_ex=$(sed -n 's/.* on executor \([0-9]*\) .*/\1/p' <<<"$error")
jq -e -n --argjson known "$known" "[$failed_ex] | inside(\$known)" >/dev/null || fail "error names executor '$failed_ex'"
fdoc=$(api "/api/v1/stages/$(jq '.stages[0].id' <<<"$failed")")
expect_eq "$(jq -c '.task_list[] | select(.partition == 3) | [.attempt, .executor]' <<<"$fdoc")" "[4,$failed_ex]" \
    "the failed partition's task entry names the executor of the error"
expect_eq "$(jq -c '[.retried_tasks, .recomputed_tasks]' <<<"$fdoc")" "[3,0]" "the failing task was retried 3 times"
jq -e '.tasks_done < 4 and .tasks_done == ([.task_list[] | select(.partition != 3 and .state == "done")] | length)
       and .records_in == 10 * .tasks_done' <<<"$fdoc" >/dev/null || fail "failed stage's counts: $(jq -c . <<<"$fdoc")"
echo "ok: failed stage: its done tasks are the other partitions', 10 records each"
jq -e 'has("error") | not' <<<"$(job_by_id "$burst_id")" >/dev/null || fail "a succeeded job carries an error"
# a failed task runs again on the other executor when it can: 2 failures on each
expect_eq "$(api /api/v1/executors | jq -c '[.[].tasks_failed]')" "[2,2]" "tasks_failed of the executors"
failed_done=$(jq .tasks_done <<<"$failed")
driver=$(api /api/v1/driver)
expect_eq "$(jq -c '[.jobs_succeeded, .jobs_failed, .tasks_succeeded, .tasks_failed]' <<<"$driver")" \
    "[2,1,$((16 + failed_done)),4]" "driver totals after the failed job"
jq -e '.tasks_launched >= .tasks_succeeded + .tasks_failed' <<<"$driver" >/dev/null || fail "tasks_launched: $driver"
save_metrics
expect_eq "$(metric 'ember_tasks_finished_total{outcome="succeeded"}')" "$((16 + failed_done))" "ember_tasks_finished_total succeeded"
expect_eq "$(metric 'ember_tasks_finished_total{outcome="failed"}')" 4 "ember_tasks_finished_total failed"
expect_eq "$(metric ember_tasks_retried_total)" 3 "ember_tasks_retried_total"
expect_eq "$(metric 'ember_jobs_finished_total{outcome="failed"}')" 1 "ember_jobs_finished_total failed"
expect_eq "$(metric ember_records_read_total)" "$((4800 + 10 * failed_done))" "ember_records_read_total with the failed job's tasks"
expect_eq "$(api /api/v1/executors | jq '[.[].tasks_completed] | add')" "$((16 + failed_done))" \
    "tasks completed over the executors"

# ---- 5. errors: 404, 405, HEAD, query strings ------------------------------------------------
for p in /no-such-page /api/v1 /api/v1/jobs/999999 /api/v1/stages/999999 /api/v1/jobs/abc /api/v2/driver \
    "/api/v1/jobs/$(printf '9%.0s' $(seq 100))" /api/v1/storage/rdd-1; do
    expect_eq "$(req GET "$p")" 404 "GET $p"
    expect_eq "$(header Content-Type)" application/json "content type of the 404 for $p"
    expect_eq "$(jq -c '[.status, .path, (.error | length > 0)]' "$T/body")" "[404,\"$p\",true]" "404 JSON body for $p"
done
expect_eq "$(req GET /api/v1/storage)" 200 "GET /api/v1/storage"
expect_eq "$(jq -c . "$T/body")" "[]" "no cached datasets"
for m in POST PUT DELETE PATCH; do
    for p in /api/v1/jobs / /metrics /api/v1/no-such-thing; do
        expect_eq "$(req "$m" "$p")" 405 "$m $p"
        expect_eq "$(header Allow)" "GET, HEAD" "Allow header of $m $p"
        expect_eq "$(jq -c '[.status, .path]' "$T/body")" "[405,\"$p\"]" "405 JSON body for $m $p"
    done
done
expect_eq "$(req HEAD /api/v1/driver)" 200 "HEAD /api/v1/driver"
expect_eq "$(header Content-Type)" application/json "HEAD content type"
expect_eq "$(req GET '/api/v1/driver?pretty=1#x')" 200 "a query string is ignored"
jq -e .executors_alive "$T/body" >/dev/null || fail "driver document behind a query string"
expect_eq "$(req GET /metrics)" 200 "GET /metrics"
expect_eq "$(header Content-Type)" "text/plain; version=0.0.4; charset=utf-8" "content type of /metrics"
expect_eq "$(req GET /)" 200 "GET /"
expect_eq "$(header Content-Type)" "text/html; charset=utf-8" "content type of the page"
expect_eq "$(header Cache-Control)" "no-store" "Cache-Control of the page"
expect_eq "$(req GET /index.html)" 200 "GET /index.html"

# ---- 6. oversized and malformed requests -----------------------------------------------------
port=${STATUS##*:}
raw() { # raw FILE: send FILE on a fresh connection, print the first line of the answer
    (
        exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 0
        (cat "$1" >&3) 2>/dev/null || true
        timeout 10 head -n 1 <&3 || true
    ) 2>/dev/null | tr -d '\r'
}
head -c 1048576 /dev/zero | tr '\0' a >"$T/mb"
{ printf 'GET /'; cat "$T/mb"; printf ' HTTP/1.1\r\nHost: x\r\n\r\n'; } >"$T/req-url"
{ printf 'GET /api/v1/driver HTTP/1.1\r\nHost: x\r\nX-Big: '; cat "$T/mb"; printf '\r\n\r\n'; } >"$T/req-header"
{
    printf 'GET /api/v1/driver HTTP/1.1\r\nHost: x\r\n'
    for i in $(seq 50000); do printf 'X-H%d: v\r\n' "$i"; done
    printf '\r\n'
} >"$T/req-headers"
{ printf 'POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n'; cat "$T/mb"; } >"$T/req-body"
printf 'NONSENSE\r\n\r\n' >"$T/req-garbage"
printf 'GET /api/v1/driver HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n' >"$T/req-badlen"
for r in req-url req-header req-headers; do
    answer=$(raw "$T/$r")
    case "$answer" in
    *" 200"*) fail "$r (about 1 MB) was answered: $answer" ;;
    esac
    echo "ok: $r (about 1 MB) refused: '${answer:-connection closed}'"
done
for r in req-body req-garbage req-badlen; do
    answer=$(raw "$T/$r")
    case "$answer" in
    *" 200"*) fail "$r was answered 200" ;;
    esac
    echo "ok: $r not served: '${answer:-connection closed}'"
done
kill -0 "$DRIVER_PID" || fail "the driver died"
expect_eq "$(req GET /api/v1/driver)" 200 "the endpoint answers after the oversized requests"
expect_eq "$(jq -c '[.executors_alive, .rejected_messages]' "$T/body")" "[2,0]" "executors and rejected messages after them"
submit "$EMBER_JOBS/slow_count.so" -- 40 4 0 || fail "a job after the oversized requests failed: $(cat "$T/submit.err")"
expect_eq "$(cat "$T/submit.out")" "counted 40" "a job after the oversized requests"
wait_job_end slow_count.so "$burst_id" >/dev/null
save_metrics
echo "PASS test_status_api"
