/* fuzz.h -- what every fuzz target of tests/fuzz defines: libFuzzer's entry point.
 *
 * A target feeds bytes from outside to one of ember's decoders and must return 0 whatever they
 * are; a crash, a sanitizer report or a leak is the bug. Each is built twice: with libFuzzer
 * (deploy/fuzz.sh, clang) to search, and with replay.c (every build) so that ctest runs the
 * kept corpus in tests/fuzz/corpus/<target>/ as a regression test.
 */
#ifndef EM_FUZZ_H
#define EM_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
