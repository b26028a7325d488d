/* replay.c -- runs a fuzz target over the files of corpus directories (ctest's regression run
 * of tests/fuzz/corpus/<target>/), and over a few inputs of its own so that an empty corpus
 * still exercises it. Prints how many inputs ran; any crash fails the test.
 *   fuzz_<target>_replay DIR...
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t cap = 1 << 16, len = 0, n;
    uint8_t *buf = malloc(cap);
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *grown = realloc(buf, cap *= 2);
            if (!grown) break;
            buf = grown;
        }
    }
    fclose(f);
    if (buf) LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return buf != NULL;
}

int main(int argc, char **argv)
{
    static const uint8_t builtin[][8] = {{0}, {1, 2, 3}, {0xff, 0xff, 0xff, 0xff}, {'E', 'M'}};
    long ran = 0;
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        ran += LLVMFuzzerTestOneInput(builtin[i], i + 1) == 0;
    for (int a = 1; a < argc; a++) {
        DIR *d = opendir(argv[a]);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[a], e->d_name);
            ran += run_file(path);
        }
        if (d) closedir(d);
    }
    printf("%s: %ld inputs ran\n", argv[0], ran);
    return 0;
}
