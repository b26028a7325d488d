#!/usr/bin/env bash
# sched-coverage.sh -- line coverage of the scheduler core (driver/em_sched*.c, em_dag.c) by
# its unit tests (tests/unit/test_sched.c), measured with gcov. Prints one line per file and
# the total; it reports, it does not pass or fail (the build or the tests failing does).
#   deploy/sched-coverage.sh [BUILD_DIR]   (default build/coverage)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/coverage}

deploy/install-deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS=--coverage \
    -DCMAKE_EXE_LINKER_FLAGS=--coverage >/dev/null
cmake --build "$build" -j "$(nproc)" --target test_sched >/dev/null
find "$build/driver" -name '*.gcda' -delete
"$build/bin/test_sched" >/dev/null 2>&1

objdir=$(dirname "$(find "$build/driver" -name 'em_sched.c.gcda' | head -1)")
printf '%-28s %8s %9s\n' file lines covered
total=0 hit=0
for src in driver/em_sched*.c driver/em_dag.c; do
    name=$(basename "$src")
    line=$(cd "$objdir" && gcov -n "$name.gcda" 2>/dev/null |
        grep -A1 "^File '.*/$name'" | grep 'Lines executed' || true)
    pct=$(sed -E 's/.*executed:([0-9.]+)% of ([0-9]+).*/\1/' <<<"$line")
    n=$(sed -E 's/.*of ([0-9]+).*/\1/' <<<"$line")
    printf '%-28s %8s %8s%%\n' "$src" "$n" "$pct"
    total=$((total + n))
    hit=$(awk -v h="$hit" -v p="$pct" -v n="$n" 'BEGIN { printf "%d", h + p * n / 100 + 0.5 }')
done
awk -v h="$hit" -v t="$total" 'BEGIN { printf "%-28s %8d %8.1f%%\n", "total", t, 100 * h / t }'
