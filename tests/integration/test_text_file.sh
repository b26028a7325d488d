#!/usr/bin/env bash
# test_text_file.sh -- the text file source (ember_text_file) on a driver and two executors.
# A directory of files of every shape (20,000 lines of 0 to 120 bytes in three files, CRLF
# lines, a last line without '\n', an empty file, a gzip file, and a hidden and an underscore
# file that must be skipped) is read by tests/jobs/text_lines.c cut into 1 and 37 partitions and saved
# unchanged: the saved parts, in order, are the files' lines exactly (awk's reading of them).
# examples/word_count.c counts the words of a glob of them, equal to a tr/sort reference. A
# path with no file, and a file changed after the job listed it, fail with messages naming
# them; the stages show their source as text_file.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

cluster_up

in="$T/in"
mkdir -p "$in"
for f in a b c; do
    awk -v seed="$f" 'BEGIN { srand(length(seed) * 7 + index("abc", seed)); for (n = 0; n < 6667; n++) {
        len = int(rand() * 121); line = ""
        for (i = 0; i < len; i++) line = line (rand() < 0.15 ? " " : sprintf("%c", 97 + int(rand() * 26)))
        print line } }' >"$in/$f.txt"
done
printf 'crlf one\r\ncrlf two\r\n\r\ncrlf four\r\n' >"$in/d.txt"
printf 'first\nno newline at the end' >"$in/e.txt"
: >"$in/f-empty.txt"
printf 'gzip one\r\ngzip two\n' | gzip -c >"$in/g.txt.gz"
echo "hidden line" >"$in/.hidden"
echo "marker" >"$in/_SUCCESS"
# the reference: every visible file's lines in name order (gzip ones decompressed), without "\r"
for f in $(cd "$in" && LC_ALL=C ls | grep -v '^[._]'); do
    case $f in *.gz) gzip -dc "$in/$f" ;; *) cat "$in/$f" ;; esac | awk '{ sub(/\r$/, ""); print }'
done >"$T/want-lines"

for parts in 1 37; do
    submit "$EMBER_JOBS/text_lines.so" -- --files "$in" --partitions "$parts" --out "$T/out-$parts" ||
        fail "text_lines in $parts partitions: $(cat "$T/submit.err")"
    n=$(sed -n 's/^text_lines: \([0-9]*\) lines in \([0-9]*\) partitions$/\1 \2/p' "$T/submit.out")
    got_parts=${n#* }
    expect_eq "${n% *}" "$(wc -l <"$T/want-lines")" "lines read (at least $parts partitions asked for)"
    [ "$got_parts" -ge "$parts" ] || fail "$got_parts partitions, asked for at least $parts"
    cat "$T/out-$parts"/part-* >"$T/got-lines"
    cmp -s "$T/got-lines" "$T/want-lines" || {
        diff "$T/got-lines" "$T/want-lines" | head
        fail "the lines saved from $got_parts partitions are not the files' lines"
    }
    echo "ok: $got_parts partitions gave every line once, in order"
done
expect_eq "$(api /api/v1/executors | jq '[.[] | select(.tasks_completed > 0)] | length')" 2 "executors that read splits"

submit "$EMBER_JOBS/word_count.so" -- --files "$in/[abc].txt" --out "$T/words" --partitions 3 ||
    fail "word_count over text files: $(cat "$T/submit.err")"
cat "$in"/[abc].txt | tr -s ' ' '\n' | grep -v '^$' | LC_ALL=C sort | uniq -c | awk '{print $2 "\t" $1}' |
    LC_ALL=C sort >"$T/want-words"
cat "$T/words"/part-* | LC_ALL=C sort >"$T/got-words"
cmp -s "$T/got-words" "$T/want-words" || { diff "$T/got-words" "$T/want-words" | head; fail "word counts"; }
echo "ok: word_count over a glob of text files: $(wc -l <"$T/want-words") counts exact"
job=$(api /api/v1/jobs | jq '[.[] | .id] | max')
expect_eq "$(api "/api/v1/jobs/$job" | jq -c '[.stages[].source]')" '["text_file","reduce_by_key"]' "stages of the word count"

rc=0
submit "$EMBER_JOBS/text_lines.so" -- --files "$T/nothing/*.txt" --out "$T/none" || rc=$?
[ "$rc" != 0 ] || fail "a pattern matching no file succeeded"
expect_contains "$(cat "$T/submit.err")" "text files $T/nothing/*.txt: no file matches" "the error for no file"

rc=0
submit "$EMBER_JOBS/text_lines.so" -- --files "$in/d.txt" --change "$in/d.txt" --out "$T/changed" || rc=$?
[ "$rc" != 0 ] || fail "a file changed after listing was read"
expect_contains "$(cat "$T/submit.err")" "text file $in/d.txt changed since the job listed it (33 bytes then, 47 now" \
    "the error for a changed file"
echo "PASS test_text_file"
