#!/usr/bin/env bash
# test.sh -- installs what is missing, checks the C sources' format (.clang-format), builds
# ember twice and runs the whole test suite on both:
#   build/werror  -Wall -Wextra -Werror
#   build/asan    AddressSanitizer + UndefinedBehaviorSanitizer (leaks fail the tests)
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh
jobs=$(nproc)

echo "== ember: clang-format check"
find include common driver executor flow tools examples tests bench -name '*.[ch]' -print0 |
    xargs -0 clang-format --style=file --dry-run --Werror

run_suite() { # NAME CMAKE_ARGS...
    local name=$1
    shift
    echo "== ember: build/$name"
    cmake -S . -B "build/$name" -DEMBER_WERROR=ON "$@" >/dev/null
    cmake --build "build/$name" -j "$jobs"
    (cd "build/$name" && ctest --output-on-failure -j "$jobs")
}

run_suite werror -DCMAKE_BUILD_TYPE=RelWithDebInfo
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_suite asan -DCMAKE_BUILD_TYPE=Debug -DEMBER_SANITIZE=ON
echo "== ember: all tests passed (werror and asan builds)"
