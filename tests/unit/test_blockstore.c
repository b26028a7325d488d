/* test_blockstore.c -- an executor's block store (executor/em_blockstore.h).
 *
 * Covers: put/get/release/remove with exact used/count accounting; a put over the cap is
 * refused with EMBER_ERR_TOO_LARGE and leaves the bytes with the caller and the store
 * unchanged (a put exactly at the cap is accepted); replacing a block counts the bytes it
 * frees; a block removed or replaced while a reader holds it stays readable until released;
 * a few threads putting, reading and removing at once leave the accounting at zero. ASan
 * checks that every block is freed exactly once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    em_blockstore *bs = em_blockstore_new(1000);
    assert_non_null(bs);
    assert_int_equal(em_blockstore_used(bs), 0);
    assert_int_equal(em_blockstore_count(bs), 0);
    assert_null(em_blockstore_get(bs, "a"));

    assert_int_equal(em_blockstore_put(bs, "shuffle_1_0_0", filled(100, 'a'), 100), EMBER_OK);
    assert_int_equal(em_blockstore_put(bs, "shuffle_1_0_1", filled(250, 'b'), 250), EMBER_OK);
    assert_int_equal(em_blockstore_put(bs, "empty", filled(0, 0), 0), EMBER_OK);
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
    em_blockstore *bs = em_blockstore_new(1000);
    assert_int_equal(em_blockstore_put(bs, "a", filled(400, 'a'), 400), EMBER_OK);

    void *big = filled(601, 'x');
    assert_int_equal(em_blockstore_put(bs, "b", big, 601), EMBER_ERR_TOO_LARGE);
    free(big); /* refused: still the caller's */
    assert_int_equal(em_blockstore_used(bs), 400);
    assert_int_equal(em_blockstore_count(bs), 1);
    assert_null(em_blockstore_get(bs, "b"));

    /* exactly the cap */
    assert_int_equal(em_blockstore_put(bs, "b", filled(600, 'b'), 600), EMBER_OK);
    assert_int_equal(em_blockstore_used(bs), 1000);
    assert_int_equal(em_blockstore_count(bs), 2);

    void *one = filled(1, 'c');
    assert_int_equal(em_blockstore_put(bs, "c", one, 1), EMBER_ERR_TOO_LARGE);
    free(one);
    assert_int_equal(em_blockstore_put(bs, "c", filled(0, 0), 0), EMBER_OK); /* nothing fits */
    assert_int_equal(em_blockstore_count(bs), 3);

    em_blockstore *zero = em_blockstore_new(0);
    void *z = filled(1, 'z');
    assert_int_equal(em_blockstore_put(zero, "z", z, 1), EMBER_ERR_TOO_LARGE);
    free(z);
    assert_int_equal(em_blockstore_count(zero), 0);
    em_blockstore_free(zero);
    em_blockstore_free(bs);
}

static void test_replace(void **state)
{
    (void)state;
    em_blockstore *bs = em_blockstore_new(1000);
    assert_int_equal(em_blockstore_put(bs, "a", filled(300, '1'), 300), EMBER_OK);
    assert_int_equal(em_blockstore_put(bs, "b", filled(600, 'b'), 600), EMBER_OK);

    /* 900 - 300 + 401 = 1001: over the cap even counting the freed bytes; old block stays */
    void *p = filled(401, '2');
    assert_int_equal(em_blockstore_put(bs, "a", p, 401), EMBER_ERR_TOO_LARGE);
    free(p);
    expect_block(bs, "a", 300, '1');
    assert_int_equal(em_blockstore_used(bs), 900);

    /* 900 - 300 + 400 = 1000: fits only because the replaced block's bytes are freed */
    assert_int_equal(em_blockstore_put(bs, "a", filled(400, '3'), 400), EMBER_OK);
    expect_block(bs, "a", 400, '3');
    assert_int_equal(em_blockstore_used(bs), 1000);
    assert_int_equal(em_blockstore_count(bs), 2);

    assert_int_equal(em_blockstore_put(bs, "a", filled(10, '4'), 10), EMBER_OK); /* shrink */
    expect_block(bs, "a", 10, '4');
    assert_int_equal(em_blockstore_used(bs), 610);
    assert_int_equal(em_blockstore_count(bs), 2);
    em_blockstore_free(bs);
}

static void test_removed_while_referenced(void **state)
{
    (void)state;
    em_blockstore *bs = em_blockstore_new(1000);
    assert_int_equal(em_blockstore_put(bs, "a", filled(100, 'a'), 100), EMBER_OK);
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
    assert_int_equal(em_blockstore_put(bs, "b", filled(20, 'o'), 20), EMBER_OK);
    em_block *old = em_blockstore_get(bs, "b");
    assert_int_equal(em_blockstore_put(bs, "b", filled(30, 'n'), 30), EMBER_OK);
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
        if (em_blockstore_put(wk->bs, id, filled(len, wk->index), len) != EMBER_OK) wk->errors++;
        em_block *b = em_blockstore_get(wk->bs, id);
        size_t got = 0;
        if (!b || ((const uint8_t *)em_block_data(b, &got))[0] != wk->index || got != len)
            wk->errors++;
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

static void test_threads(void **state)
{
    (void)state;
    em_blockstore *bs = em_blockstore_new(1 << 20);
    assert_int_equal(em_blockstore_put(bs, "shared", filled(8, 's'), 8), EMBER_OK);
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
    em_blockstore_free(bs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_remove), cmocka_unit_test(test_cap_refusal),
        cmocka_unit_test(test_replace),        cmocka_unit_test(test_removed_while_referenced),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
