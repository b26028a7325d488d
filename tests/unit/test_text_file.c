/* test_text_file.c -- the text file source (em_text_file.h).
 *
 * Every line exactly once, whatever the cut: files of several shapes (a last line with and
 * without '\n', empty lines, CRLF, one character, lines of 1 to 300 bytes, a 3 MiB line that
 * outgrows the reader's first buffer) are cut into 1 to 70 partitions, down to one-byte splits,
 * every split read, and the lines compared with the file's own, in order. Listing: a directory
 * skips names starting with '.' or '_' and subdirectories, a glob pattern matches in path
 * order, an empty file is one empty split, splits stay within 32 MiB, and a path that matches
 * nothing is NOT_FOUND. A file changed or removed after it was listed fails its tasks, naming
 * it, instead of being read. Gzip files (".gz"): one split whatever the cut, read whole (2 MiB
 * of text, two members one after another), beside a plain file; cut short, or not gzip at all,
 * they fail, naming the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "em_text_file.h"

typedef struct fixture {
    char dir[64];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ember-text-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* lines_seen: what the splits emitted, one line after another, each ending in '\n' */
typedef struct lines_seen {
    char *text;
    size_t len, cap;
} lines_seen;

static int collect(void *arg, const ember_record *rec)
{
    lines_seen *s = arg;
    assert_int_equal(rec->key_len, 0);
    if (s->len + rec->value_len + 1 > s->cap) {
        s->cap = 2 * (s->len + rec->value_len + 1);
        s->text = realloc(s->text, s->cap);
        assert_non_null(s->text);
    }
    memcpy(s->text + s->len, rec->value, rec->value_len);
    s->len += rec->value_len;
    s->text[s->len++] = '\n';
    return EMBER_OK;
}

/* read_all reads every split of path cut at least `parts` ways into seen; returns the splits */
static size_t read_all(const char *path, uint32_t parts, lines_seen *seen)
{
    Ember__FileSplit **splits;
    size_t n;
    char err[512] = "";
    int rc = em_text_plan(path, parts, &splits, &n, err, sizeof err);
    if (rc != EMBER_OK) fail_msg("em_text_plan %s: %s", path, err);
    Ember__Node node = EMBER__NODE__INIT;
    node.kind = EMBER__NODE_KIND__NODE_TEXT_FILE;
    node.splits = splits;
    node.n_splits = n;
    for (uint32_t p = 0; p < n; p++) {
        em_text_source_arg a = {&node, p};
        rc = em_text_source(&a, collect, seen, err, sizeof err);
        if (rc != EMBER_OK) fail_msg("split %u of %s: %s", p, path, err);
    }
    em_text_splits_free(splits, n);
    return n;
}

/* expected_lines: the file's lines as the source must give them, each ending in '\n' */
static char *expected_lines(const char *data, size_t len, size_t *out_len)
{
    char *e = malloc(len + 2);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') {
            if (n > 0 && e[n - 1] == '\r') n--;
            e[n++] = '\n';
        } else {
            e[n++] = data[i];
        }
    }
    if (len > 0 && data[len - 1] != '\n') {
        if (n > 0 && e[n - 1] == '\r') n--;
        e[n++] = '\n';
    }
    *out_len = n;
    return e;
}

static void check_every_cut(const char *path, const char *data, size_t len, uint32_t max_parts)
{
    size_t want_len;
    char *want = expected_lines(data, len, &want_len);
    for (uint32_t parts = 1; parts <= max_parts; parts++) {
        lines_seen seen = {0};
        size_t splits = read_all(path, parts, &seen);
        assert_true(splits >= (len ? (parts < len ? parts : len) : 1));
        if (seen.len != want_len || memcmp(seen.text, want, want_len) != 0)
            fail_msg("%s cut %u ways (%zu splits): %zu bytes of lines, want %zu", path, parts,
                     splits, seen.len, want_len);
        free(seen.text);
    }
    free(want);
}

static void test_every_line_once_whatever_the_cut(void **state)
{
    fixture *f = *state;
    static const char *shapes[] = {
        "one\ntwo\nthree\n",
        "one\ntwo\nthree",
        "\n\nafter two empty lines\n\n",
        "crlf\r\nlines\r\n\r\nend\r\n",
        "x",
        "\n",
        "a\nb\nc\nd\ne\nf\ng\n",
        "no newline at all",
    };
    char path[128];
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        snprintf(path, sizeof path, "%s/shape%zu.txt", f->dir, i);
        write_file(path, shapes[i], strlen(shapes[i]));
        check_every_cut(path, shapes[i], strlen(shapes[i]), 40);
    }
    /* lines of 1 to 300 bytes (a deterministic mix), cut up to 70 ways */
    char *mixed = malloc(20000);
    size_t len = 0;
    uint32_t x = 12345;
    while (len < 19000) {
        x = x * 1103515245u + 12345u;
        size_t n = (x >> 16) % 300;
        for (size_t k = 0; k < n; k++) mixed[len++] = (char)('a' + (k + (x >> 8)) % 26);
        mixed[len++] = '\n';
    }
    snprintf(path, sizeof path, "%s/mixed.txt", f->dir);
    write_file(path, mixed, len);
    check_every_cut(path, mixed, len, 70);
    free(mixed);
}

static void test_a_line_longer_than_the_first_buffer(void **state)
{
    fixture *f = *state;
    size_t big = 3u << 20, len = big + 12;
    char *data = malloc(len);
    memcpy(data, "first\n", 6);
    memset(data + 6, 'L', big);
    memcpy(data + 6 + big, "\nlast\n", 6);
    char path[128];
    snprintf(path, sizeof path, "%s/long.txt", f->dir);
    write_file(path, data, len);
    check_every_cut(path, data, len, 3);
    free(data);
}

static void test_listing(void **state)
{
    fixture *f = *state;
    char path[160];
    const char *names[] = {"b.txt", "a.txt", ".hidden", "_SUCCESS", "empty.txt", "c.log"};
    const char *texts[] = {"b1\nb2\n", "a1\n", "hidden\n", "", "", "c1\n"};
    for (size_t i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/%s", f->dir, names[i]);
        write_file(path, texts[i], strlen(texts[i]));
    }
    snprintf(path, sizeof path, "%s/sub", f->dir);
    assert_int_equal(mkdir(path, 0700), 0);

    /* the directory: its visible files in name order, the empty one an empty split */
    lines_seen seen = {0};
    assert_int_equal(read_all(f->dir, 1, &seen), 4); /* a, b, c, empty: one split each */
    assert_int_equal(seen.len, strlen("a1\nb1\nb2\nc1\n"));
    assert_memory_equal(seen.text, "a1\nb1\nb2\nc1\n", seen.len);
    free(seen.text);

    /* a glob pattern */
    seen = (lines_seen){0};
    snprintf(path, sizeof path, "%s/*.txt", f->dir);
    read_all(path, 1, &seen);
    assert_int_equal(seen.len, strlen("a1\nb1\nb2\n"));
    assert_memory_equal(seen.text, "a1\nb1\nb2\n", seen.len);
    free(seen.text);

    /* nothing there */
    Ember__FileSplit **splits;
    size_t n;
    char err[512];
    snprintf(path, sizeof path, "%s/*.csv", f->dir);
    assert_int_equal(em_text_plan(path, 1, &splits, &n, err, sizeof err), EMBER_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "no file matches"));
    snprintf(path, sizeof path, "%s/missing.txt", f->dir);
    assert_int_equal(em_text_plan(path, 1, &splits, &n, err, sizeof err), EMBER_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "missing.txt"));

    /* the splits' paths are absolute, and each at most 32 MiB */
    assert_int_equal(chdir(f->dir), 0);
    assert_int_equal(em_text_plan("b.txt", 1, &splits, &n, err, sizeof err), EMBER_OK);
    assert_int_equal(n, 1);
    assert_int_equal(splits[0]->path[0], '/');
    em_text_splits_free(splits, n);
    snprintf(path, sizeof path, "%s/sparse.txt", f->dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(ftruncate(fileno(fp), (off_t)100 << 20), 0); /* 100 MiB, no blocks */
    fclose(fp);
    assert_int_equal(em_text_plan(path, 1, &splits, &n, err, sizeof err), EMBER_OK);
    assert_int_equal(n, 4); /* 32 + 32 + 32 + 4 MiB */
    for (size_t i = 0; i < n; i++) assert_true(splits[i]->length <= EM_TEXT_SPLIT_MAX);
    em_text_splits_free(splits, n);
    assert_int_equal(chdir("/"), 0);
}

/* read_one_split lists path (one split) and reads that split into seen: its code, err set */
static int read_one_split(const char *path, lines_seen *seen, char *err, size_t errlen)
{
    Ember__FileSplit **splits;
    size_t n;
    assert_int_equal(em_text_plan(path, 1, &splits, &n, err, errlen), EMBER_OK);
    assert_int_equal(n, 1);
    Ember__Node node = EMBER__NODE__INIT;
    node.splits = splits;
    node.n_splits = n;
    em_text_source_arg a = {&node, 0};
    int rc = em_text_source(&a, collect, seen, err, errlen);
    em_text_splits_free(splits, n);
    return rc;
}

static void test_a_file_changed_after_listing_is_not_read(void **state)
{
    fixture *f = *state;
    char path[128], err[512] = "";
    snprintf(path, sizeof path, "%s/moving.txt", f->dir);
    write_file(path, "one\ntwo\n", 8);
    Ember__FileSplit **splits;
    size_t n;
    assert_int_equal(em_text_plan(path, 1, &splits, &n, err, sizeof err), EMBER_OK);
    Ember__Node node = EMBER__NODE__INIT;
    node.splits = splits;
    node.n_splits = n;
    em_text_source_arg a = {&node, 0};
    lines_seen seen = {0};

    write_file(path, "one\ntwo\nthree\n", 14); /* appended to */
    assert_int_equal(em_text_source(&a, collect, &seen, err, sizeof err), EMBER_ERR_DATA_LOST);
    assert_non_null(strstr(err, "changed since the job listed it"));
    assert_non_null(strstr(err, "moving.txt"));
    assert_int_equal(seen.len, 0);

    assert_int_equal(unlink(path), 0);
    assert_int_equal(em_text_source(&a, collect, &seen, err, sizeof err), EMBER_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "not found on this executor"));
    em_text_splits_free(splits, n);
}

/* write_gzip writes data as gzip, appended as a new member with append */
static void write_gzip(const char *path, const char *data, size_t len, int append)
{
    gzFile gz = gzopen(path, append ? "ab" : "wb");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(gz), Z_OK);
}

static void test_gzip_files(void **state)
{
    fixture *f = *state;
    /* 2 MiB of numbered lines: more than the reader's first buffer, in several reads */
    size_t cap = 3u << 20, len = 0;
    char *text = malloc(cap);
    for (int i = 0; len < (2u << 20); i++)
        len += (size_t)snprintf(text + len, cap - len, "line %d of the gzip file%s\n", i,
                                i % 7 ? "" : " with a longer tail to vary the lengths");
    char path[160], err[512] = "";
    snprintf(path, sizeof path, "%s/big.txt.gz", f->dir);
    size_t half = len / 2;
    while (text[half - 1] != '\n') half++; /* two members, each whole lines */
    write_gzip(path, text, half, 0);
    write_gzip(path, text + half, len - half, 1);

    lines_seen seen = {0};
    assert_int_equal(read_all(path, 8, &seen), 1); /* not cut, however many asked for */
    size_t want_len;
    char *want = expected_lines(text, len, &want_len);
    assert_int_equal(seen.len, want_len);
    assert_memory_equal(seen.text, want, want_len);
    free(seen.text);

    /* beside a small plain file, in a directory, in name order */
    char plain[160];
    snprintf(plain, sizeof plain, "%s/a-plain.txt", f->dir);
    write_file(plain, "plain one\nplain two\n", 20);
    seen = (lines_seen){0};
    assert_int_equal(read_all(f->dir, 8, &seen), 2); /* each file one split */
    assert_int_equal(seen.len, 20 + want_len);
    assert_memory_equal(seen.text, "plain one\nplain two\n", 20);
    assert_memory_equal(seen.text + 20, want, want_len);
    free(seen.text);
    free(want);

    /* cut short: the last 100 bytes gone (its listing sees the shorter file) */
    char cut[160];
    snprintf(cut, sizeof cut, "%s/cut.gz", f->dir);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *gz = malloc(cap);
    size_t gz_len = fread(gz, 1, cap, fp);
    fclose(fp);
    write_file(cut, gz, gz_len - 100);
    seen = (lines_seen){0};
    assert_int_equal(read_one_split(cut, &seen, err, sizeof err), EMBER_ERR_MALFORMED);
    assert_non_null(strstr(err, "gzip data cut short"));
    assert_non_null(strstr(err, "cut.gz"));
    free(seen.text);

    /* named .gz, but plain text */
    snprintf(cut, sizeof cut, "%s/fake.gz", f->dir);
    write_file(cut, "not compressed\n", 15);
    seen = (lines_seen){0};
    assert_int_equal(read_one_split(cut, &seen, err, sizeof err), EMBER_ERR_MALFORMED);
    assert_non_null(strstr(err, "fake.gz: not gzip data"));
    assert_int_equal(seen.len, 0);
    free(gz);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_line_once_whatever_the_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_line_longer_than_the_first_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_file_changed_after_listing_is_not_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gzip_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
