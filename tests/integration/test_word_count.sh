#!/usr/bin/env bash
# test_word_count.sh -- the first shuffle end to end: examples/word_count.c over 20,000 text
# lines on a 4-partition topic, two executors. Every saved count equals an awk reference;
# 1, 3 and 8 reducers give the same counts; the same job run twice writes byte-identical
# files; both executors ran map and reduce tasks; shuffle blocks are dropped once the job
# ends; tests/jobs/wide_ops.c checks every reducer against its own reference.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_kafka lines:4
start_driver
start_executor ex1 --slots 2
start_executor ex2 --slots 2
wait_executors 2

# skewed words: word i appears about 1/(i+1) as often as word 0, mixed case and punctuation
awk 'BEGIN { srand(7); for (n = 0; n < 20000; n++) { line = "";
        for (w = 0; w < 8; w++) { i = int(1 / (rand() + 0.002)) % 500; line = line (w ? " " : "") (i % 3 ? "word" i : "Word" i ",") }
        print line } }' >"$T/lines.txt"
"$EMBER_BIN/ember-topic" produce --bootstrap "$KAFKA" --topic lines <"$T/lines.txt" >/dev/null
tr 'A-Z' 'a-z' <"$T/lines.txt" | tr -c "a-z0-9'\n" ' ' | tr -s ' ' '\n' | grep -v '^$' | LC_ALL=C sort | uniq -c |
    awk '{print $2 "\t" $1}' | LC_ALL=C sort >"$T/want.txt"

for reducers in 1 3 8; do
    submit "$EMBER_JOBS/word_count.so" -- --in lines --out "$T/out-$reducers" --top 3 --partitions "$reducers" ||
        fail "word_count with $reducers reducers: $(cat "$T/submit.err")"
    expect_eq "$(ls "$T/out-$reducers" | wc -l)" "$reducers" "files written by $reducers reducers"
    cat "$T/out-$reducers"/part-* | LC_ALL=C sort >"$T/got-$reducers.txt"
    cmp -s "$T/got-$reducers.txt" "$T/want.txt" || { diff "$T/got-$reducers.txt" "$T/want.txt" | head; fail "counts with $reducers reducers"; }
    echo "ok: $(wc -l <"$T/want.txt") word counts exact with $reducers reducers"
done
top=$(sed -n 2p "$T/submit.out" | awk '{print $2}')
expect_eq "$top" "$(sort -t "$(printf '\t')" -k2,2nr -k1,1 "$T/want.txt" | head -1 | cut -f1)" "most frequent word"

submit "$EMBER_JOBS/word_count.so" -- --in lines --out "$T/again-8" --top 3 --partitions 8
for f in "$T"/out-8/part-*; do
    cmp -s "$f" "$T/again-8/$(basename "$f")" || fail "$(basename "$f") differs between two runs"
done
echo "ok: a second run wrote byte-identical files"

# 4 runs of word_count, 2 jobs each (collect, save_text): reads after this see them ended
wait_api /api/v1/driver '.jobs_succeeded == 8' 10
executors=$(api /api/v1/executors)
expect_eq "$(jq '[.[] | select(.tasks_completed > 0)] | length' <<<"$executors")" 2 "executors that ran tasks"
job=$(api /api/v1/jobs/7)
expect_eq "$(jq -c '[.stages[] | {source, tasks, parents: (.parents | length), state}]' <<<"$job")" \
    '[{"source":"kafka","tasks":4,"parents":0,"state":"succeeded"},{"source":"reduce_by_key","tasks":8,"parents":1,"state":"succeeded"}]' "stages of a word count"
# the job's second action (save_text) reads the map output its first action (collect) left
job8=$(api /api/v1/jobs/8)
expect_eq "$(jq -c '[.stages[].state]' <<<"$job8")" '["skipped","succeeded"]' "stages of the second action"
expect_eq "$(jq '.stages[0].output_of_stage' <<<"$job8")" "$(jq '.stages[0].id' <<<"$job")" "map output reused from the first action"
expect_eq "$(jq '.tasks' <<<"$job8")" 8 "tasks run by the second action"
shuffled=$(api /metrics | awk '$1 == "ember_shuffle_bytes_total" {print $2}')
[ "$shuffled" -gt 0 ] || fail "no shuffle bytes counted"
expect_eq "$(api /api/v1/executors | jq '[.[].shuffle_bytes] | add')" "$shuffled" "shuffle bytes by executor add up to /metrics"
expect_eq "$(api /api/v1/stages | jq '[.[].shuffle_bytes_written // 0] | add')" "$shuffled" "shuffle bytes by stage add up to /metrics"
wait_api /api/v1/executors '[.[].blocks] | add == 0' 30
echo "ok: shuffle blocks dropped after the jobs"

submit "$EMBER_JOBS/wide_ops.so" -- --partitions "1 3 50" || fail "wide_ops: $(cat "$T/submit.out" "$T/submit.err" | tail -3)"
expect_contains "$(cat "$T/submit.out")" "wide_ops: all 25 checks passed" "every reducer against its reference"
echo "PASS test_word_count"
