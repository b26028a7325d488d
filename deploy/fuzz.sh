#!/usr/bin/env bash
# fuzz.sh -- runs every fuzz target (tests/fuzz) with libFuzzer for a bounded time, keeps what
# it found in the corpus, and reports crashes.
#   deploy/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default 60 s, every target)
# Builds with clang, libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer in
# build/fuzz. New inputs that reach new code are merged, minimized, into
# tests/fuzz/corpus/<target>/ (commit them: ctest replays that corpus in every build); a crash
# is saved in build/fuzz/crashes/<target>/ and fails the run: add the file to the corpus once
# the bug is fixed, so that it stays fixed. Exits non-zero on a crash or a failed build.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frame batch graph values handshake http flow rule fetch)

deploy/install-deps.sh clang libclang-rt-14-dev
build=build/fuzz
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DEMBER_SANITIZE=ON -DEMBER_FUZZ=ON \
    >/dev/null
for t in "${targets[@]}" seeds; do cmake --build "$build" -j "$(nproc)" --target "fuzz_$t" >/dev/null; done
"$build/bin/fuzz_seeds" "$build/seeds" # well-formed inputs to start from

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=0
printf '%-10s %8s %10s %8s  %s\n' target seconds runs corpus result
for t in "${targets[@]}"; do
    corpus=tests/fuzz/corpus/$t found=$build/found/$t crashes=$build/crashes/$t
    mkdir -p "$corpus" "$found" "$crashes"
    log=$build/fuzz_$t.log
    result=ok
    mkdir -p "$build/seeds/$t"
    "$build/bin/fuzz_$t" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
        -artifact_prefix="$crashes/" "$found" "$corpus" "$build/seeds/$t" >"$log" 2>&1 ||
        result="CRASH: see $log and $crashes"
    [ "$result" = ok ] || failed=1
    runs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#' || true)
    # keep only the inputs that reach new code: the corpus stays small
    "$build/bin/fuzz_$t" -merge=1 "$corpus" "$found" "$build/seeds/$t" >/dev/null 2>&1 || true
    rm -rf "$found"
    printf '%-10s %8s %10s %8s  %s\n' "$t" "$seconds" "${runs:-?}" "$(ls "$corpus" | wc -l)" "$result"
done
exit "$failed"
