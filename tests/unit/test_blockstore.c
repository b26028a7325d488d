/* test_blockstore.c -- an executor's block store (executor/em_blockstore.h).
 *
 * Covers, in memory: put/get/release/remove with exact used/count accounting; without a spill
 * directory a put over the cap fails with EMBER_ERR_IO and leaves the bytes with the caller
 * and the store unchanged (a put exactly at the cap is accepted); replacing a block counts the
 * bytes it frees; a block removed or replaced while a reader holds it stays readable until
 * released; a few threads putting, reading and removing at once leave the accounting at zero.
 * Chunked blocks (em_blockstore_put_chunks): counted against the cap by their chunks' sizes
 * (a block whose bytes fit but whose chunks do not is spilled), read piece by piece, spilled
 * as one file and read back into pooled chunks piece by piece (within a quarter of the cap;
 * else mapped whole), their chunks back in the pool when spilled, removed or released.
 * Spilling: a put over the cap lands in a file of the spill directory (created on demand) and
 * reads back byte for byte through a mapping; a spilled block removed or replaced while held
 * stays readable until released and its file goes with the release; remove_prefix and free
 * remove the files, free the directory it made (not one it found); ids with '/' or ".."
 * never name a file outside the directory; a write that fails (file size limit) and a
 * directory that cannot be made fail with EMBER_ERR_IO and a message, leaving nothing behind;
 * threads spilling at once. ASan checks that every block is freed (and unmapped) once.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <ember/ember.h>

#include "em_blockstore.h"

/* filled returns len malloc'd bytes of value c. */
static void *filled(size_t len, int c)
{
    void *p = malloc(len ? len : 1);
    assert_non_null(p);
    memset(p, c, len);
    return p;
}

/* put stores bytes as id and returns the code; a failure's message must not be empty. */
static int put(em_blockstore *bs, const char *id, void *bytes, size_t len)
{
    char err[512] = "";
    int rc = em_blockstore_put(bs, id, bytes, len, err, sizeof err);
    if (rc != EMBER_OK) assert_true(err[0] != '\0');
    return rc;
}

/* expect_block asserts that id holds len bytes of value c. */
static void expect_block(em_blockstore *bs, const char *id, size_t len, int c)
{
    em_block *b = em_blockstore_get(bs, id);
    assert_non_null(b);
    size_t got_len = 0;
    const uint8_t *p = em_block_data(b, &got_len);
    assert_int_equal(got_len, len);
    for (size_t i = 0; i < len; i++) assert_int_equal(p[i], (uint8_t)c);
    em_block_release(bs, b);
}

static void test_put_get_remove(void **state)
{
    (void)state;
    em_blockstore *bs = em_blockstore_new(1000, NULL);
    assert_non_null(bs);
    assert_int_equal(em_blockstore_used(bs), 0);
    assert_int_equal(em_blockstore_count(bs), 0);
    assert_null(em_blockstore_get(bs, "a"));

    assert_int_equal(put(bs, "shuffle_1_0_0", filled(100, 'a'), 100), EMBER_OK);
    assert_int_equal(put(bs, "shuffle_1_0_1", filled(250, 'b'), 250), EMBER_OK);
    assert_int_equal(put(bs, "empty", filled(0, 0), 0), EMBER_OK);
    assert_int_equal(em_blockstore_used(bs), 350);
    assert_int_equal(em_blockstore_count(bs), 3);
    expect_block(bs, "shuffle_1_0_0", 100, 'a');
    expect_block(bs, "shuffle_1_0_1", 250, 'b');
    expect_block(bs, "empty", 0, 0);
    assert_null(em_blockstore_get(bs, "shuffle_1_0"));    /* ids match exactly, */
    assert_null(em_blockstore_get(bs, "shuffle_1_0_00")); /* not by prefix */

    assert_int_equal(em_blockstore_remove(bs, "shuffle_1_0_0"), EMBER_OK);
    assert_int_equal(em_blockstore_used(bs), 250);
    assert_int_equal(em_blockstore_count(bs), 2);
    assert_null(em_blockstore_get(bs, "shuffle_1_0_0"));
    assert_int_equal(em_blockstore_remove(bs, "shuffle_1_0_0"), EMBER_ERR_NOT_FOUND);
    assert_int_equal(em_blockstore_remove(bs, "never"), EMBER_ERR_NOT_FOUND);
    assert_int_equal(em_blockstore_used(bs), 250);
    assert_int_equal(em_blockstore_count(bs), 2);
    em_blockstore_free(bs); /* frees the blocks still inside */
    em_blockstore_free(NULL);
}

static void test_cap_refusal(void **state)
{
    (void)state;
    em_blockstore *bs = em_blockstore_new(1000, NULL);
    assert_int_equal(put(bs, "a", filled(400, 'a'), 400), EMBER_OK);

    void *big = filled(601, 'x');
    char err[256] = "";
    assert_int_equal(em_blockstore_put(bs, "b", big, 601, err, sizeof err), EMBER_ERR_IO);
    assert_non_null(strstr(err, "over the memory cap (1000 bytes)"));
    assert_non_null(strstr(err, "no spill directory"));
    assert_int_equal(((uint8_t *)big)[600], 'x'); /* refused: still the caller's */
    free(big);
    assert_int_equal(em_blockstore_used(bs), 400);
    assert_int_equal(em_blockstore_count(bs), 1);
    assert_null(em_blockstore_get(bs, "b"));

    /* exactly the cap */
    assert_int_equal(put(bs, "b", filled(600, 'b'), 600), EMBER_OK);
    assert_int_equal(em_blockstore_used(bs), 1000);
    assert_int_equal(em_blockstore_count(bs), 2);

    void *one = filled(1, 'c');
    assert_int_equal(put(bs, "c", one, 1), EMBER_ERR_IO);
    free(one);
    assert_int_equal(put(bs, "c", filled(0, 0), 0), EMBER_OK); /* nothing fits */
    assert_int_equal(em_blockstore_count(bs), 3);

    em_blockstore *zero = em_blockstore_new(0, NULL);
    void *z = filled(1, 'z');
    assert_int_equal(put(zero, "z", z, 1), EMBER_ERR_IO);
    free(z);
    assert_int_equal(em_blockstore_count(zero), 0);
    em_blockstore_free(zero);
    em_blockstore_free(bs);
}

static void test_replace(void **state)
{
    (void)state;
    em_blockstore *bs = em_blockstore_new(1000, NULL);
    assert_int_equal(put(bs, "a", filled(300, '1'), 300), EMBER_OK);
    assert_int_equal(put(bs, "b", filled(600, 'b'), 600), EMBER_OK);

    /* 900 - 300 + 401 = 1001: over the cap even counting the freed bytes; old block stays */
    void *p = filled(401, '2');
    assert_int_equal(put(bs, "a", p, 401), EMBER_ERR_IO);
    free(p);
    expect_block(bs, "a", 300, '1');
    assert_int_equal(em_blockstore_used(bs), 900);

    /* 900 - 300 + 400 = 1000: fits only because the replaced block's bytes are freed */
    assert_int_equal(put(bs, "a", filled(400, '3'), 400), EMBER_OK);
    expect_block(bs, "a", 400, '3');
    assert_int_equal(em_blockstore_used(bs), 1000);
    assert_int_equal(em_blockstore_count(bs), 2);

    assert_int_equal(put(bs, "a", filled(10, '4'), 10), EMBER_OK); /* shrink */
    expect_block(bs, "a", 10, '4');
    assert_int_equal(em_blockstore_used(bs), 610);
    assert_int_equal(em_blockstore_count(bs), 2);
    em_blockstore_free(bs);
}

static void test_removed_while_referenced(void **state)
{
    (void)state;
    em_blockstore *bs = em_blockstore_new(1000, NULL);
    assert_int_equal(put(bs, "a", filled(100, 'a'), 100), EMBER_OK);
    em_block *r1 = em_blockstore_get(bs, "a");
    em_block *r2 = em_blockstore_get(bs, "a");
    assert_non_null(r1);
    assert_ptr_equal(r1, r2);

    assert_int_equal(em_blockstore_remove(bs, "a"), EMBER_OK);
    assert_int_equal(em_blockstore_used(bs), 0); /* the store no longer counts it */
    assert_int_equal(em_blockstore_count(bs), 0);
    assert_null(em_blockstore_get(bs, "a"));

    size_t len = 0;
    const uint8_t *p = em_block_data(r1, &len); /* but readers still see it */
    assert_int_equal(len, 100);
    assert_int_equal(p[0], 'a');
    assert_int_equal(p[99], 'a');
    em_block_release(bs, r1);
    p = em_block_data(r2, &len); /* one reader left */
    assert_int_equal(len, 100);
    assert_int_equal(p[50], 'a');
    em_block_release(bs, r2); /* freed here (ASan would flag a leak or a double free) */

    /* the same for a block replaced while held */
    assert_int_equal(put(bs, "b", filled(20, 'o'), 20), EMBER_OK);
    em_block *old = em_blockstore_get(bs, "b");
    assert_int_equal(put(bs, "b", filled(30, 'n'), 30), EMBER_OK);
    expect_block(bs, "b", 30, 'n');
    p = em_block_data(old, &len);
    assert_int_equal(len, 20);
    assert_int_equal(p[19], 'o');
    em_block_release(bs, old);
    assert_int_equal(em_blockstore_used(bs), 30);
    em_blockstore_free(bs);
}

/* ---- concurrency ------------------------------------------------------------------------ */

#define THREADS 4
#define ROUNDS  500

typedef struct worker {
    em_blockstore *bs;
    int index;
    int errors; /* unexpected results seen by this thread */
} worker;

static void *work(void *arg)
{
    worker *wk = arg;
    char id[32];
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(id, sizeof id, "t%d_%d", wk->index, i % 7);
        size_t len = (size_t)(i % 50) + 1;
        void *bytes = filled(len, wk->index);
        if (em_blockstore_put(wk->bs, id, bytes, len, NULL, 0) != EMBER_OK) {
            free(bytes);
            wk->errors++;
        }
        em_block *b = em_blockstore_get(wk->bs, id);
        size_t got = 0;
        const uint8_t *p = b ? em_block_data(b, &got) : NULL;
        if (!b || got != len) wk->errors++;
        for (size_t k = 0; b && k < got; k++) wk->errors += p[k] != wk->index;
        if (b) em_block_release(wk->bs, b);
        em_block *s = em_blockstore_get(wk->bs, "shared"); /* read a block others don't own */
        if (s)
            em_block_release(wk->bs, s);
        else
            wk->errors++;
        if (i % 3 == 0 && em_blockstore_remove(wk->bs, id) != EMBER_OK) wk->errors++;
    }
    for (int k = 0; k < 7; k++) {
        snprintf(id, sizeof id, "t%d_%d", wk->index, k);
        em_blockstore_remove(wk->bs, id);
    }
    return NULL;
}

/* run_threads runs THREADS workers on bs, which holds an 8-byte block "shared". */
static void run_threads(em_blockstore *bs)
{
    pthread_t th[THREADS];
    worker wk[THREADS];
    for (int i = 0; i < THREADS; i++) {
        wk[i] = (worker){bs, i + 1, 0};
        assert_int_equal(pthread_create(&th[i], NULL, work, &wk[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(wk[i].errors, 0);
    }
    assert_int_equal(em_blockstore_count(bs), 1);
    assert_int_equal(em_blockstore_used(bs), 8);
    assert_int_equal(em_blockstore_disk_used(bs), 0);
    expect_block(bs, "shared", 8, 's');
}

static void test_threads(void **state)
{
    (void)state;
    em_blockstore *bs = em_blockstore_new(1 << 20, NULL);
    assert_int_equal(put(bs, "shared", filled(8, 's'), 8), EMBER_OK);
    run_threads(bs);
    em_blockstore_free(bs);
}

/* ---- spilling --------------------------------------------------------------------------- */

/* make_root makes a fresh directory for one test in root (size len). */
static void make_root(char *root, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(root, len, "%s/test_blockstore-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    assert_non_null(mkdtemp(root));
}

/* make_spill_root makes a fresh root (see make_root) and names dir, its "spill" directory to be */
static void make_spill_root(char *root, size_t len, char *dir, size_t dir_len)
{
    make_root(root, len);
    snprintf(dir, dir_len, "%s/spill", root);
}

/* rm_tree removes path and everything under it. */
static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char sub[2048];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(sub);
        else
            unlink(sub);
    }
    closedir(d);
    rmdir(path);
}

/* entries counts the entries of dir, -1 if dir does not exist; copies the last one's name
 * into name (if not NULL). Every name must be a plain file name, never "." or "..". */
static int entries(const char *dir, char *name, size_t name_len)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        assert_null(strchr(e->d_name, '/'));
        if (name) snprintf(name, name_len, "%s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

/* pattern returns len malloc'd bytes that change from byte to byte, different per seed. */
static uint8_t *pattern(size_t len, uint32_t seed)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
    return p;
}

static void *copy_of(const void *p, size_t len)
{
    void *c = malloc(len ? len : 1);
    assert_non_null(c);
    memcpy(c, p, len);
    return c;
}

/* expect_bytes asserts that id holds exactly want[0..len). */
static void expect_bytes(em_blockstore *bs, const char *id, const uint8_t *want, size_t len)
{
    em_block *b = em_blockstore_get(bs, id);
    assert_non_null(b);
    size_t got = 0;
    const void *p = em_block_data(b, &got);
    assert_int_equal(got, len);
    assert_memory_equal(p, want, len);
    em_block_release(bs, b);
}

/* expect_file asserts that path holds exactly want[0..len). */
static void expect_file(const char *path, const uint8_t *want, size_t len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *got = malloc(len + 1);
    assert_non_null(got);
    assert_int_equal(fread(got, 1, len + 1, f), len);
    fclose(f);
    assert_memory_equal(got, want, len);
    free(got);
}

static void test_spill_reads_back(void **state)
{
    (void)state;
    char root[512], dir[600], name[256], path[1024];
    make_spill_root(root, sizeof root, dir, sizeof dir);
    em_blockstore *bs = em_blockstore_new(1000, dir);
    assert_int_equal(put(bs, "mem", filled(600, 'm'), 600), EMBER_OK);
    assert_int_equal(entries(dir, NULL, 0), -1); /* nothing spilled: no directory yet */

    /* over the cap: to a file of the directory, the bytes freed (ASan: no leak) */
    uint8_t *want = pattern(500, 1);
    assert_int_equal(put(bs, "shuffle_3_1_7", copy_of(want, 500), 500), EMBER_OK);
    assert_int_equal(em_blockstore_used(bs), 600);
    assert_int_equal(em_blockstore_disk_used(bs), 500);
    assert_int_equal(em_blockstore_count(bs), 2);
    assert_int_equal(entries(dir, name, sizeof name), 1);
    assert_non_null(strstr(name, "shuffle_3_1_7")); /* named after the block */
    snprintf(path, sizeof path, "%s/%s", dir, name);
    expect_file(path, want, 500);
    expect_bytes(bs, "shuffle_3_1_7", want, 500);
    expect_bytes(bs, "shuffle_3_1_7", want, 500); /* mapped again after the release */
    expect_block(bs, "mem", 600, 'm');

    /* a big block: many pages; two readers share one mapping */
    size_t big_len = (8u << 20) + 123;
    uint8_t *big = pattern(big_len, 2);
    assert_int_equal(put(bs, "big", copy_of(big, big_len), big_len), EMBER_OK);
    assert_int_equal(em_blockstore_disk_used(bs), 500 + big_len);
    assert_int_equal(em_blockstore_used(bs), 600);
    em_block *r1 = em_blockstore_get(bs, "big"), *r2 = em_blockstore_get(bs, "big");
    assert_non_null(r1);
    assert_ptr_equal(r1, r2);
    size_t len1 = 0, len2 = 0;
    const void *p1 = em_block_data(r1, &len1), *p2 = em_block_data(r2, &len2);
    assert_ptr_equal(p1, p2);
    assert_int_equal(len1, big_len);
    assert_memory_equal(p1, big, big_len);
    em_block_release(bs, r1);
    assert_memory_equal(em_block_data(r2, &len2), big, big_len); /* still mapped for r2 */
    em_block_release(bs, r2);
    expect_bytes(bs, "big", big, big_len);

    /* replace a spilled block by one that fits in memory: its file goes */
    assert_int_equal(put(bs, "shuffle_3_1_7", filled(100, 'r'), 100), EMBER_OK);
    expect_block(bs, "shuffle_3_1_7", 100, 'r');
    assert_int_equal(em_blockstore_used(bs), 700);
    assert_int_equal(em_blockstore_disk_used(bs), big_len);
    assert_int_equal(entries(dir, NULL, 0), 1);
    assert_int_equal(access(path, F_OK), -1);

    /* replace a memory block by one that spills: 700 - 600 + 950 > 1000 */
    uint8_t *m2 = pattern(950, 3);
    assert_int_equal(put(bs, "mem", copy_of(m2, 950), 950), EMBER_OK);
    expect_bytes(bs, "mem", m2, 950);
    assert_int_equal(em_blockstore_used(bs), 100);
    assert_int_equal(em_blockstore_disk_used(bs), big_len + 950);
    assert_int_equal(em_blockstore_count(bs), 3);
    assert_int_equal(entries(dir, NULL, 0), 2);

    em_blockstore_free(bs);
    assert_int_equal(entries(dir, NULL, 0), -1); /* the directory it made is gone */
    assert_int_equal(entries(root, NULL, 0), 0);
    free(want);
    free(big);
    free(m2);
    rm_tree(root);
}

static void test_spill_removed_while_referenced(void **state)
{
    (void)state;
    char root[512], dir[600], name[256], path[1024];
    make_spill_root(root, sizeof root, dir, sizeof dir);
    em_blockstore *bs = em_blockstore_new(100, dir);
    size_t len = 3 * 4096 + 5;
    uint8_t *want = pattern(len, 4);
    assert_int_equal(put(bs, "s", copy_of(want, len), len), EMBER_OK);
    assert_int_equal(entries(dir, name, sizeof name), 1);
    snprintf(path, sizeof path, "%s/%s", dir, name);

    em_block *r = em_blockstore_get(bs, "s");
    assert_non_null(r);
    assert_int_equal(em_blockstore_remove(bs, "s"), EMBER_OK);
    assert_int_equal(em_blockstore_count(bs), 0);
    assert_int_equal(em_blockstore_disk_used(bs), 0);
    assert_null(em_blockstore_get(bs, "s"));
    assert_int_equal(em_blockstore_remove(bs, "s"), EMBER_ERR_NOT_FOUND);
    size_t got = 0;
    const void *p = em_block_data(r, &got); /* the reader still sees every byte */
    assert_int_equal(got, len);
    assert_memory_equal(p, want, len);
    em_block_release(bs, r); /* unmapped and unlinked here */
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(entries(dir, NULL, 0), 0);

    /* replaced while held: the reader keeps the old bytes, new readers get the new ones */
    uint8_t *v1 = pattern(300, 5), *v2 = pattern(400, 6);
    assert_int_equal(put(bs, "t", copy_of(v1, 300), 300), EMBER_OK);
    em_block *old = em_blockstore_get(bs, "t");
    assert_non_null(old);
    assert_int_equal(put(bs, "t", copy_of(v2, 400), 400), EMBER_OK);
    expect_bytes(bs, "t", v2, 400);
    assert_int_equal(em_blockstore_disk_used(bs), 400);
    assert_int_equal(entries(dir, NULL, 0), 2); /* the old file lives as long as its reader */
    p = em_block_data(old, &got);
    assert_int_equal(got, 300);
    assert_memory_equal(p, v1, 300);
    em_block_release(bs, old);
    assert_int_equal(entries(dir, name, sizeof name), 1);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    expect_file(path, v2, 400);
    expect_bytes(bs, "t", v2, 400);
    assert_int_equal(em_blockstore_count(bs), 1);

    em_blockstore_free(bs);
    assert_int_equal(entries(dir, NULL, 0), -1);
    free(want);
    free(v1);
    free(v2);
    rm_tree(root);
}

static void test_spill_remove_prefix(void **state)
{
    (void)state;
    char root[512], dir[600];
    make_spill_root(root, sizeof root, dir, sizeof dir);
    em_blockstore *bs = em_blockstore_new(50, dir);
    static const char *const ids[] = {"shuffle_1_0_0", "shuffle_1_0_1", "shuffle_1_0_2",
                                      "shuffle_2_0_0", "shuffle_10_0_0"};
    uint8_t *want[5];
    for (int i = 0; i < 5; i++) {
        want[i] = pattern(100, 10 + (uint32_t)i);
        assert_int_equal(put(bs, ids[i], copy_of(want[i], 100), 100), EMBER_OK);
    }
    assert_int_equal(put(bs, "shuffle_1_1_0", filled(10, 'k'), 10), EMBER_OK); /* in memory */
    assert_int_equal(entries(dir, NULL, 0), 5);
    assert_int_equal(em_blockstore_count(bs), 6);

    em_block *held = em_blockstore_get(bs, "shuffle_1_0_1");
    assert_non_null(held);
    assert_int_equal(em_blockstore_remove_prefix(bs, "shuffle_1_"), 4); /* not shuffle_10_ */
    assert_int_equal(em_blockstore_count(bs), 2);
    assert_int_equal(em_blockstore_used(bs), 0);
    assert_int_equal(em_blockstore_disk_used(bs), 200);
    assert_int_equal(entries(dir, NULL, 0), 3); /* two left, and the held one until released */
    size_t got = 0;
    const void *p = em_block_data(held, &got);
    assert_int_equal(got, 100);
    assert_memory_equal(p, want[1], 100);
    em_block_release(bs, held);
    assert_int_equal(entries(dir, NULL, 0), 2);
    assert_null(em_blockstore_get(bs, "shuffle_1_0_0"));
    expect_bytes(bs, "shuffle_2_0_0", want[3], 100);
    expect_bytes(bs, "shuffle_10_0_0", want[4], 100);

    assert_int_equal(em_blockstore_remove_prefix(bs, "shuffle_"), 2);
    assert_int_equal(entries(dir, NULL, 0), 0);
    assert_int_equal(em_blockstore_disk_used(bs), 0);
    em_blockstore_free(bs);
    assert_int_equal(entries(dir, NULL, 0), -1);
    for (int i = 0; i < 5; i++) free(want[i]);
    rm_tree(root);
}

/* chunks_of puts len bytes of want into chunks of `size` bytes (the last one partly used) */
static em_chunk *chunks_of(const uint8_t *want, size_t len, size_t size, size_t *n)
{
    *n = (len + size - 1) / size;
    em_chunk *c = calloc(*n, sizeof *c);
    assert_non_null(c);
    for (size_t i = 0; i < *n; i++) {
        assert_int_equal(em_chunk_get(&c[i], size), EMBER_OK);
        c[i].len = len - i * size < size ? len - i * size : size;
        memcpy(c[i].p, want + i * size, c[i].len);
    }
    return c;
}

/* a block put in chunks: read piece by piece in memory, served whole from its spill file,
 * its chunks back in the pool when it goes */
static void test_chunked_blocks(void **state)
{
    (void)state;
    char root[512], dir[600];
    make_spill_root(root, sizeof root, dir, sizeof dir);
    size_t len = 3 * EM_CHUNK_MIN + 1000, n = 0;
    em_blockstore *bs = em_blockstore_new(4 * EM_CHUNK_MIN, dir);
    uint8_t *want = pattern(len, 7);
    char err[256] = "";
    em_chunk *c = chunks_of(want, len, EM_CHUNK_MIN, &n);
    assert_int_equal(n, 4);
    assert_int_equal(em_blockstore_put_chunks(bs, "shuffle_1_0_0", c, n, NULL, err, sizeof err),
                     EMBER_OK);
    assert_int_equal(em_blockstore_used(bs), 4 * EM_CHUNK_MIN); /* its chunks, not its bytes */
    em_block *b = em_blockstore_get(bs, "shuffle_1_0_0");
    assert_non_null(b);
    assert_int_equal(em_block_pieces(b), 4);
    size_t off = 0;
    for (size_t i = 0; i < 4; i++) {
        size_t piece = 0;
        const uint8_t *p = em_block_piece(b, i, &piece);
        assert_memory_equal(p, want + off, piece);
        off += piece;
    }
    assert_int_equal(off, len);
    em_block_release(bs, b);

    /* over the cap: the chunks go to one file and back to the pool; read as one piece (a
     * mapping: the block is more than a quarter of the cap) */
    uint64_t in_use = 0;
    em_chunks_stats(NULL, &in_use);
    assert_int_equal(in_use, 4 * EM_CHUNK_MIN);
    em_chunk *c2 = chunks_of(want, len, EM_CHUNK_MIN, &n);
    uint64_t spilled = 0;
    assert_int_equal(
        em_blockstore_put_chunks(bs, "shuffle_1_1_0", c2, n, &spilled, err, sizeof err), EMBER_OK);
    assert_int_equal(spilled, len);
    assert_int_equal(em_blockstore_disk_used(bs), len);
    em_chunks_stats(NULL, &in_use);
    assert_int_equal(in_use, 4 * EM_CHUNK_MIN); /* the spilled block's chunks were given back */
    b = em_blockstore_get(bs, "shuffle_1_1_0");
    assert_non_null(b);
    assert_int_equal(em_block_pieces(b), 1);
    expect_bytes(bs, "shuffle_1_1_0", want, len);
    em_block_release(bs, b);

    assert_int_equal(em_blockstore_remove(bs, "shuffle_1_0_0"), EMBER_OK);
    em_chunks_stats(NULL, &in_use);
    assert_int_equal(in_use, 0);
    em_blockstore_free(bs);
    em_chunks_trim();
    free(want);
    rm_tree(root);
}

/* the cap counts the memory a block in chunks holds, not its bytes: a block whose bytes would
 * fit but whose chunks would not is spilled; the same bytes put whole stay in memory */
static void test_chunks_count_against_the_cap(void **state)
{
    (void)state;
    char root[512], dir[600];
    make_spill_root(root, sizeof root, dir, sizeof dir);
    size_t len = 3 * EM_CHUNK_MIN + 1000, n = 0;
    em_blockstore *bs = em_blockstore_new(len + 10, dir);
    uint8_t *want = pattern(len, 11);
    char err[256] = "";
    em_chunk *c = chunks_of(want, len, EM_CHUNK_MIN, &n);
    uint64_t spilled = 0, in_use = 0;
    assert_int_equal(em_blockstore_put_chunks(bs, "shuffle_4_0_0", c, n, &spilled, err, sizeof err),
                     EMBER_OK);
    assert_int_equal(spilled, len);
    assert_int_equal(em_blockstore_disk_used(bs), len);
    assert_int_equal(em_blockstore_used(bs), 0);
    em_chunks_stats(NULL, &in_use);
    assert_int_equal(in_use, 0); /* given back once written */
    expect_bytes(bs, "shuffle_4_0_0", want, len);

    uint8_t *whole = malloc(len);
    assert_non_null(whole);
    memcpy(whole, want, len);
    assert_int_equal(put(bs, "cache_4_0", whole, len), EMBER_OK);
    assert_int_equal(em_blockstore_used(bs), len);
    assert_int_equal(em_blockstore_disk_used(bs), len); /* only the chunked block spilled */

    em_blockstore_free(bs);
    em_chunks_trim();
    free(want);
    rm_tree(root);
}

/* expect_pieces asserts that a referenced block's pieces hold want[0..len) in n pieces */
static void expect_pieces(const em_block *b, const uint8_t *want, size_t len, size_t n)
{
    assert_int_equal(em_block_pieces(b), n);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t piece = 0;
        const uint8_t *p = em_block_piece(b, i, &piece);
        assert_true(off + piece <= len);
        assert_memory_equal(p, want + off, piece);
        off += piece;
    }
    assert_int_equal(off, len);
}

/* spilled blocks within a quarter of the cap are read back into pooled chunks, a piece per
 * chunk they were written from, shared by their readers and given back with the last; past
 * that quarter, a block is mapped (one piece) */
static void test_spilled_chunks_read_into_the_pool(void **state)
{
    (void)state;
    char root[512], dir[600];
    make_spill_root(root, sizeof root, dir, sizeof dir);
    size_t len = 3 * EM_CHUNK_MIN + 1000, n = 0, cap = 5 * len;
    em_blockstore *bs = em_blockstore_new(cap, dir);
    char err[256] = "";
    assert_int_equal(put(bs, "full", filled(cap - 10, 'f'), cap - 10), EMBER_OK);
    uint8_t *a = pattern(len, 8), *b = pattern(len, 9);
    em_chunk *ca = chunks_of(a, len, EM_CHUNK_MIN, &n), *cb = chunks_of(b, len, EM_CHUNK_MIN, &n);
    assert_int_equal(em_blockstore_put_chunks(bs, "shuffle_2_0_0", ca, n, NULL, err, sizeof err),
                     EMBER_OK);
    assert_int_equal(em_blockstore_put_chunks(bs, "shuffle_2_1_0", cb, n, NULL, err, sizeof err),
                     EMBER_OK);
    assert_int_equal(em_blockstore_disk_used(bs), 2 * len);
    uint64_t in_use = 0;
    em_chunks_stats(NULL, &in_use);
    assert_int_equal(in_use, 0); /* both spilled, their chunks back in the pool */

    em_block *r1 = em_blockstore_get(bs, "shuffle_2_0_0"),
             *r2 = em_blockstore_get(bs, "shuffle_2_0_0");
    assert_non_null(r1);
    assert_ptr_equal(r1, r2);
    expect_pieces(r1, a, len, 4); /* read into chunks: 4 pieces, as written */
    em_chunks_stats(NULL, &in_use);
    assert_int_equal(in_use, 4 * EM_CHUNK_MIN);
    em_block *other = em_blockstore_get(bs, "shuffle_2_1_0"); /* the quarter is taken: mapped */
    assert_non_null(other);
    expect_pieces(other, b, len, 1);
    em_block_release(bs, other);
    em_block_release(bs, r1);
    expect_pieces(r2, a, len, 4); /* still there for the second reader */
    em_block_release(bs, r2);
    em_chunks_stats(NULL, &in_use);
    assert_int_equal(in_use, 0); /* given back with the last reader */

    other = em_blockstore_get(bs, "shuffle_2_1_0"); /* the quarter is free again */
    assert_non_null(other);
    expect_pieces(other, b, len, 4);
    assert_int_equal(em_blockstore_remove(bs, "shuffle_2_1_0"), EMBER_OK);
    expect_pieces(other, b, len, 4); /* removed while read: the reader keeps its bytes */
    em_block_release(bs, other);
    em_chunks_stats(NULL, &in_use);
    assert_int_equal(in_use, 0);
    assert_int_equal(entries(dir, NULL, 0), 1);

    em_blockstore_free(bs);
    em_chunks_trim();
    free(a);
    free(b);
    rm_tree(root);
}

static void test_free_removes_spill_files(void **state)
{
    (void)state;
    char root[512], dir[600], name[256], path[1024];
    make_root(root, sizeof root);

    /* a directory the store made: gone with its files */
    snprintf(dir, sizeof dir, "%s/made", root);
    em_blockstore *bs = em_blockstore_new(10, dir);
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "b%d", i);
        assert_int_equal(put(bs, id, pattern(64, (uint32_t)i), 64), EMBER_OK);
    }
    assert_int_equal(entries(dir, NULL, 0), 3);
    em_blockstore_free(bs); /* with the blocks still inside */
    assert_int_equal(entries(dir, NULL, 0), -1);

    /* a directory that was there: kept, and so is what the store did not write */
    snprintf(dir, sizeof dir, "%s/given", root);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/keep.txt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("mine", f);
    fclose(f);
    bs = em_blockstore_new(10, dir);
    assert_int_equal(put(bs, "x", pattern(64, 7), 64), EMBER_OK);
    assert_int_equal(put(bs, "y", pattern(64, 8), 64), EMBER_OK);
    assert_int_equal(entries(dir, NULL, 0), 3);
    em_blockstore_free(bs);
    assert_int_equal(entries(dir, name, sizeof name), 1);
    assert_string_equal(name, "keep.txt");
    expect_file(path, (const uint8_t *)"mine", 4);
    rm_tree(root);
}

static void test_spill_unsafe_ids(void **state)
{
    (void)state;
    char root[512], dir[600], path[1024];
    make_spill_root(root, sizeof root, dir, sizeof dir);
    char long_id[301];
    for (int i = 0; i < 300; i++) long_id[i] = "../"[i % 3];
    long_id[300] = '\0';
    const char *const ids[] = {"../escape",    "..",  ".", "a/b",      "/abs",
                               "../../x/../y", "%2F", "",  "sp ace\n", long_id};
    enum { N = sizeof ids / sizeof ids[0] };
    uint8_t *want[N];
    em_blockstore *bs = em_blockstore_new(0, dir); /* everything spills */
    for (int i = 0; i < N; i++) {
        want[i] = pattern(64, 20 + (uint32_t)i);
        assert_int_equal(put(bs, ids[i], copy_of(want[i], 64), 64), EMBER_OK);
    }
    assert_int_equal(em_blockstore_count(bs), N);
    assert_int_equal(entries(dir, NULL, 0), N);  /* one plain file each, all inside dir */
    assert_int_equal(entries(root, NULL, 0), 1); /* nothing beside the directory */
    snprintf(path, sizeof path, "%s/escape", root);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(access("/abs", F_OK), -1);
    for (int i = 0; i < N; i++) expect_bytes(bs, ids[i], want[i], 64);
    assert_null(em_blockstore_get(bs, "../escapE")); /* ids still match exactly */
    for (int i = 0; i < N; i++) assert_int_equal(em_blockstore_remove(bs, ids[i]), EMBER_OK);
    assert_int_equal(entries(dir, NULL, 0), 0);
    em_blockstore_free(bs);
    assert_int_equal(entries(dir, NULL, 0), -1);
    for (int i = 0; i < N; i++) free(want[i]);
    rm_tree(root);
}

static void test_spill_failures(void **state)
{
    (void)state;
    char root[512], dir[600], file[600];
    make_root(root, sizeof root);

    /* the spill directory cannot be made: under a regular file */
    snprintf(file, sizeof file, "%s/file", root);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(dir, sizeof dir, "%s/spill", file);
    em_blockstore *bs = em_blockstore_new(10, dir);
    uint8_t *want = pattern(100, 30);
    void *bytes = copy_of(want, 100);
    char err[1024] = "";
    assert_int_equal(em_blockstore_put(bs, "a", bytes, 100, err, sizeof err), EMBER_ERR_IO);
    assert_non_null(strstr(err, "cannot create spill directory"));
    assert_non_null(strstr(err, dir));
    assert_memory_equal(bytes, want, 100); /* still the caller's */
    free(bytes);
    assert_int_equal(em_blockstore_count(bs), 0);
    assert_null(em_blockstore_get(bs, "a"));
    em_blockstore_free(bs);

    /* a write that fails halfway (file size limit, as a full disk would): no file left, an
     * older block of the same id kept */
    snprintf(dir, sizeof dir, "%s/spill", root);
    bs = em_blockstore_new(10, dir);
    assert_int_equal(put(bs, "a", filled(5, 'o'), 5), EMBER_OK);
    struct rlimit lim, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &lim), 0);
    small = lim;
    small.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    uint8_t *big = pattern(10000, 31);
    bytes = copy_of(big, 10000);
    err[0] = '\0';
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = em_blockstore_put(bs, "a", bytes, 10000, err, sizeof err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    signal(SIGXFSZ, old_handler);
    assert_int_equal(rc, EMBER_ERR_IO);
    assert_non_null(strstr(err, "cannot be spilled"));
    assert_non_null(strstr(err, strerror(EFBIG)));
    assert_non_null(strstr(err, dir));
    assert_memory_equal(bytes, big, 10000);
    assert_int_equal(entries(dir, NULL, 0), 0);
    assert_int_equal(em_blockstore_disk_used(bs), 0);
    assert_int_equal(em_blockstore_count(bs), 1);
    expect_block(bs, "a", 5, 'o');

    /* the same put once the disk has room */
    assert_int_equal(put(bs, "a", bytes, 10000), EMBER_OK);
    expect_bytes(bs, "a", big, 10000);
    assert_int_equal(em_blockstore_used(bs), 0);
    assert_int_equal(em_blockstore_disk_used(bs), 10000);
    em_blockstore_free(bs);
    free(want);
    free(big);
    rm_tree(root);
}

static void test_threads_spill(void **state)
{
    (void)state;
    char root[512], dir[600];
    make_spill_root(root, sizeof root, dir, sizeof dir);
    em_blockstore *bs = em_blockstore_new(40, dir); /* small blocks fit, blocks over 32 spill */
    assert_int_equal(put(bs, "shared", filled(8, 's'), 8), EMBER_OK);
    run_threads(bs);
    assert_int_equal(entries(dir, NULL, 0), 0);
    em_blockstore_free(bs);
    assert_int_equal(entries(dir, NULL, 0), -1);
    rm_tree(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_remove),
        cmocka_unit_test(test_cap_refusal),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_removed_while_referenced),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_spill_reads_back),
        cmocka_unit_test(test_spill_removed_while_referenced),
        cmocka_unit_test(test_spill_remove_prefix),
        cmocka_unit_test(test_chunked_blocks),
        cmocka_unit_test(test_chunks_count_against_the_cap),
        cmocka_unit_test(test_spilled_chunks_read_into_the_pool),
        cmocka_unit_test(test_free_removes_spill_files),
        cmocka_unit_test(test_spill_unsafe_ids),
        cmocka_unit_test(test_spill_failures),
        cmocka_unit_test(test_threads_spill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
