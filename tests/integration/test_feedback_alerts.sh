#!/usr/bin/env bash
# test_feedback_alerts.sh -- examples/feedback_alerts.c: feedback from two topics in two JSON
# shapes -> sentiment -> alert topics and a per-minute average per source in Redis, through an
# executor's kill -9. 1,200 twitter and 800 slack messages, 4 a second each in event time,
# their texts made of lexicon words and neutral ones; every 40th record malformed (not JSON,
# no id, a time that is not a number, the other source's shape); one last message per source
# 10 minutes later closes every minute before it. Produced with kcat, half before and half
# after the kill. An awk pass writes the input and computes, with its own copy of the lexicon
# and the documented score ((sum + 4n) / 8n in thousandths, half up), what must come out:
#   - negative-feedback: "SOURCE,ID,SCORE,TEXT" for each score below 0.300;
#   - positive-feedback: the same for each score above 0.900;
#   - Redis feedback:avg:SOURCE {"YYYY-MM-DD HH:MM": average score "%.4f"};
#   - feedback-dead-letter: the malformed records.
# All compared exactly (topics read with kcat, Redis with redis-cli).
# With FEEDBACK_RUN=flow (test_feedback_flow.sh) the pipeline is the workflow
# examples/flows/feedback.json run by ember-flow with its function library (feedback_flow.so)
# in place of the C job: the same input, the same reference, the same kill -9.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_kafka feedback-twitter:2 feedback-slack:2 negative-feedback:2 positive-feedback:2 \
    feedback-dead-letter:1
cluster_up
start_redis

TZ=UTC awk -v BASE=1764756000000 -v T="$T" '
function score(text,    words, n, i, w, sum, k) {
    gsub(/[^A-Za-z]+/, " ", text); n = split(tolower(text), words, " "); sum = 0; k = 0
    for (i = 1; i <= n; i++) if (words[i] in LEX) { sum += LEX[words[i]]; k++ }
    if (k == 0) return 500
    return int((1000 * (sum + 4 * k) + 4 * k) / (8 * k))
}
function milli3(m) { return sprintf("%d.%03d", int(m / 1000), m % 1000) }
function emit(src, id, text, ts,    m, w, key) {
    m = score(text)
    if (m < 300) print src "," id "," milli3(m) "," text > (T "/want.negative")
    if (m > 900) print src "," id "," milli3(m) "," text > (T "/want.positive")
    if (id ~ /-end$/) return # its minute is not final
    w = sprintf("%.0f", int(ts / 60000) * 60000); key = src SUBSEP w
    SUM[key] += m; CNT[key]++
}
BEGIN {
    split("love 4 excellent 4 amazing 4 perfect 4 awesome 4 great 3 happy 3 helpful 3 good 2 nice 2 thanks 2 fast 2 easy 2 smooth 2 like 1 fine 1 works 1 hate -4 terrible -4 awful -4 worst -4 useless -4 bad -3 broken -3 crash -3 crashes -3 fail -3 fails -3 annoying -3 poor -3 slow -2 bug -2 bugs -2 error -2 wrong -2 confusing -2 refund -2 expensive -1 late -1", L, " ")
    for (i = 1; i in L; i += 2) LEX[L[i]] = L[i + 1]
    # three pools of words: glowing, furious, and mixed with neutral words
    np[0] = split("love amazing perfect excellent awesome great the app Again", P0, " ")
    np[1] = split("hate terrible awful worst useless broken crash the support", P1, " ")
    np[2] = split("love great good nice fast easy like fine works helpful amazing perfect hate terrible bad broken crash slow bug error wrong refund late poor the app today support update screen order Again", P2, " ")
    for (s = 0; s < 2; s++) {
        src = s == 0 ? "twitter" : "slack"; N = s == 0 ? 1200 : 800
        for (i = 0; i <= N; i++) {
            ts = BASE + i * 250; id = substr(src, 1, 1) i
            text = ""
            pool = i % 3
            for (j = 0; j < 3 + (i * 5 + s) % 4; j++) {
                r = 1 + (i * 7 + j * 13 + s * 3 + int(i / 11)) % np[pool]
                text = text (j ? " " : "") (pool == 0 ? P0[r] : pool == 1 ? P1[r] : P2[r])
            }
            if (i == N) { id = src "-end"; text = "the end"; ts += 600000 }
            if (i % 40 == 39) {
                k = int(i / 40) % 4
                if (k == 0) line = "{not json " i
                if (k == 1 && s == 0) line = sprintf("{\"user\":\"@u\",\"text\":\"%s\",\"ts_ms\":%.0f}", text, ts)
                if (k == 1 && s == 1) line = sprintf("{\"channel\":\"#c\",\"message\":{\"body\":\"%s\",\"ts\":\"%.3f\"}}", text, ts / 1000)
                if (k == 2 && s == 0) line = sprintf("{\"id\":\"%s\",\"text\":\"%s\",\"ts_ms\":\"soon\"}", id, text)
                if (k == 2 && s == 1) line = sprintf("{\"channel\":\"#c\",\"message\":{\"id\":\"%s\",\"body\":\"%s\",\"ts\":\"soon\"}}", id, text)
                if (k == 3 && s == 0) line = sprintf("{\"channel\":\"#c\",\"message\":{\"id\":\"%s\",\"body\":\"%s\",\"ts\":\"%.3f\"}}", id, text, ts / 1000)
                if (k == 3 && s == 1) line = sprintf("{\"id\":\"%s\",\"text\":\"%s\",\"ts_ms\":%.0f}", id, text, ts)
                print id "|" line > (T "/input." src); print line > (T "/want.dead")
                continue
            }
            if (s == 0) line = sprintf("{\"id\":\"%s\",\"user\":\"@u%d\",\"text\":\"%s\",\"ts_ms\":%.0f}", id, i % 30, text, ts)
            else line = sprintf("{\"channel\":\"#c%d\",\"message\":{\"id\":\"%s\",\"body\":\"%s\",\"ts\":\"%.3f\"}}", i % 5, id, text, ts / 1000)
            print id "|" line > (T "/input." src)
            emit(src, id, text, ts)
        }
    }
    for (key in SUM) {
        split(key, kw, SUBSEP)
        printf "feedback:avg:%s %s %.4f\n", kw[1], substr(strftime("%Y-%m-%d %H:%M:%S", kw[2] / 1000), 1, 16), SUM[key] / CNT[key] / 1000 > (T "/want.avg")
    }
}'
for f in negative positive avg dead; do LC_ALL=C sort -o "$T/want.$f" "$T/want.$f"; done
expect_eq "$(wc -l <"$T/want.dead")" 50 "malformed records in the input"
[ "$(wc -l <"$T/want.negative")" -gt 50 ] && [ "$(wc -l <"$T/want.positive")" -gt 50 ] ||
    fail "the input makes too few alerts to test: $(wc -l <"$T/want.negative") negative, $(wc -l <"$T/want.positive") positive"

collect() {
    redis_hashes 'feedback:avg:*' >"$T/got.avg"
    topic_values negative-feedback >"$T/got.negative"
    topic_values positive-feedback >"$T/got.positive"
    topic_values feedback-dead-letter >"$T/got.dead"
}
produce() { # produce SOURCE FROM_LINE [TO_LINE]
    sed -n "$2,${3:-\$}p" "$T/input.$1" | kcat -P -b "$KAFKA" -t "feedback-$1" -K '|' ||
        fail "kcat could not produce to feedback-$1"
}

produce twitter 1 600
produce slack 1 400
if [ "${FEEDBACK_RUN:-c}" = flow ]; then
    EMBER_REDIS=127.0.0.1:$RPORT "$EMBER_BIN/ember-flow" run "$EMBER_SRC/examples/flows/feedback.json" \
        --checkpoint "$T/ck" --library "$EMBER_JOBS/feedback_flow.so" --driver "$DRIVER" \
        >"$T/job.out" 2>"$T/job.err" &
else
    "$EMBER_BIN/ember-submit" --driver "$DRIVER" "$EMBER_JOBS/feedback_alerts.so" -- --earliest \
        --interval-ms 100 --checkpoint "$T/ck" --redis "127.0.0.1:$RPORT" >"$T/job.out" 2>"$T/job.err" &
fi
JOB_PID=$!
wait_until 60 bash -c "[ \$(kcat -C -b '$KAFKA' -t negative-feedback -e -q -f '%s\n' | wc -l) -ge 10 ]"
kill -9 "$ex1_PID"
start_executor ex3 --slots 2
produce twitter 601
produce slack 401
expect_outputs 150 collect negative positive avg dead
echo "ok: $(wc -l <"$T/want.negative") negative and $(wc -l <"$T/want.positive") positive alerts, $(wc -l <"$T/want.avg") per-minute averages in Redis and $(wc -l <"$T/want.dead") dead letters, exactly, through an executor's kill -9"

stop_and_wait ember-submit feedback-twitter-negative
[ "${FEEDBACK_RUN:-c}" = c ] ||
    expect_contains "$(cat "$T/job.out")" "flow feedback: its queries stopped" "the flow's closing line"
echo "PASS"
