/* test_libstore.c -- job libraries held by the driver (driver/em_libstore.h, common/em_sha256.h).
 *
 * Covers: em_sha256 against the FIPS 180-2 test vectors and em_sha256_hex; a put whose bytes
 * match the SHA-256 is stored as a copy (has/get), a mismatching one is refused with
 * EMBER_ERR_MALFORMED and stores nothing; a library larger than the cap is refused with
 * EMBER_ERR_TOO_LARGE; least recently used libraries are evicted when a put would exceed the
 * cap, where a get or a repeated put counts as a use. Operations in the LRU test are 2 ms
 * apart, because the store orders uses by a microsecond clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <ember/ember.h>

#include "em_libstore.h"
#include "em_sha256.h"

static void pause_2ms(void)
{
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* lib_bytes fills a fake library of len bytes derived from seed and returns its hash. */
static void lib_bytes(uint8_t *buf, size_t len, int seed, uint8_t sha[32])
{
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)(seed * 131 + i * 7);
    em_sha256(buf, len, sha);
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    uint8_t sha[32];
    char hex[65];
    em_sha256("abc", 3, sha);
    em_sha256_hex(sha, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    em_sha256("", 0, sha);
    em_sha256_hex(sha, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    em_sha256(two_blocks, strlen(two_blocks), sha);
    em_sha256_hex(sha, hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_put_has_get(void **state)
{
    (void)state;
    em_libstore *ls = em_libstore_new(1 << 20);
    assert_non_null(ls);
    uint8_t lib[1000], sha[32];
    lib_bytes(lib, sizeof lib, 1, sha);
    char err[256] = "";
    assert_int_equal(em_libstore_has(ls, sha), 0);
    size_t len = 12345;
    assert_null(em_libstore_get(ls, sha, &len));

    assert_int_equal(em_libstore_put(ls, sha, "libtaxi.so", lib, sizeof lib, err, sizeof err),
                     EMBER_OK);
    assert_int_equal(em_libstore_has(ls, sha), 1);
    const uint8_t *got = em_libstore_get(ls, sha, &len);
    assert_non_null(got);
    assert_int_equal(len, sizeof lib);
    assert_ptr_not_equal(got, lib); /* a copy */
    memset(lib, 0, sizeof lib);
    uint8_t again[32];
    em_sha256(got, len, again);
    assert_memory_equal(again, sha, 32);

    /* a second put of the same library is accepted and stores nothing new */
    lib_bytes(lib, sizeof lib, 1, sha);
    assert_int_equal(em_libstore_put(ls, sha, "libtaxi.so", lib, sizeof lib, err, sizeof err),
                     EMBER_OK);
    assert_ptr_equal(em_libstore_get(ls, sha, &len), got);

    /* an empty library is a library too */
    uint8_t empty_sha[32];
    em_sha256("", 0, empty_sha);
    assert_int_equal(em_libstore_put(ls, empty_sha, "empty.so", "", 0, err, sizeof err), EMBER_OK);
    assert_non_null(em_libstore_get(ls, empty_sha, &len));
    assert_int_equal(len, 0);
    em_libstore_free(ls);
    em_libstore_free(NULL);
}

static void test_put_mismatch(void **state)
{
    (void)state;
    em_libstore *ls = em_libstore_new(1 << 20);
    uint8_t lib[500], sha[32];
    lib_bytes(lib, sizeof lib, 2, sha);
    char err[256] = "";

    lib[250] ^= 0x01; /* one bit differs from what was hashed */
    assert_int_equal(em_libstore_put(ls, sha, "bad.so", lib, sizeof lib, err, sizeof err),
                     EMBER_ERR_MALFORMED);
    assert_string_equal(err, "library bad.so: content does not match its SHA-256");
    assert_int_equal(em_libstore_has(ls, sha), 0);

    lib[250] ^= 0x01;
    assert_int_equal(em_libstore_put(ls, sha, "bad.so", lib, sizeof lib - 1, err, sizeof err),
                     EMBER_ERR_MALFORMED); /* truncated upload */
    sha[0] ^= 0x80;
    assert_int_equal(em_libstore_put(ls, sha, "bad.so", lib, sizeof lib, err, sizeof err),
                     EMBER_ERR_MALFORMED); /* wrong hash */
    assert_int_equal(em_libstore_has(ls, sha), 0);
    sha[0] ^= 0x80;
    assert_int_equal(em_libstore_has(ls, sha), 0);
    em_libstore_free(ls);
}

static void test_too_large(void **state)
{
    (void)state;
    em_libstore *ls = em_libstore_new(100);
    uint8_t lib[101], sha[32];
    lib_bytes(lib, sizeof lib, 3, sha);
    char err[256] = "";
    assert_int_equal(em_libstore_put(ls, sha, "big.so", lib, sizeof lib, err, sizeof err),
                     EMBER_ERR_TOO_LARGE);
    assert_string_equal(err, "library big.so: 101 bytes exceeds the driver's library cap");
    assert_int_equal(em_libstore_has(ls, sha), 0);
    lib_bytes(lib, 100, 3, sha); /* exactly the cap fits */
    assert_int_equal(em_libstore_put(ls, sha, "cap.so", lib, 100, err, sizeof err), EMBER_OK);
    assert_int_equal(em_libstore_has(ls, sha), 1);
    em_libstore_free(ls);
}

static void test_lru_eviction(void **state)
{
    (void)state;
    em_libstore *ls = em_libstore_new(300);
    uint8_t lib[5][250], sha[5][32];
    static const size_t lens[5] = {100, 100, 100, 100, 250};
    for (int i = 0; i < 5; i++) lib_bytes(lib[i], lens[i], 10 + i, sha[i]);
    char err[256] = "";
    size_t len;
#define PUT(i) em_libstore_put(ls, sha[i], "lib" #i ".so", lib[i], lens[i], err, sizeof err)
#define HAS(a, b, c, d, e)                                                                         \
    do {                                                                                           \
        assert_int_equal(em_libstore_has(ls, sha[0]), a);                                          \
        assert_int_equal(em_libstore_has(ls, sha[1]), b);                                          \
        assert_int_equal(em_libstore_has(ls, sha[2]), c);                                          \
        assert_int_equal(em_libstore_has(ls, sha[3]), d);                                          \
        assert_int_equal(em_libstore_has(ls, sha[4]), e);                                          \
    } while (0)

    assert_int_equal(PUT(0), EMBER_OK);
    pause_2ms();
    assert_int_equal(PUT(1), EMBER_OK);
    pause_2ms();
    assert_int_equal(PUT(2), EMBER_OK); /* 300 of 300 bytes */
    HAS(1, 1, 1, 0, 0);
    pause_2ms();
    assert_non_null(em_libstore_get(ls, sha[0], &len)); /* 0 is now the most recent */
    pause_2ms();

    assert_int_equal(PUT(3), EMBER_OK); /* evicts 1, the least recently used */
    HAS(1, 0, 1, 1, 0);
    pause_2ms();
    assert_int_equal(PUT(2), EMBER_OK); /* a repeated put is a use: order is now 0, 3, 2 */
    pause_2ms();

    assert_int_equal(PUT(1), EMBER_OK); /* evicts 0 */
    HAS(0, 1, 1, 1, 0);
    pause_2ms();

    /* 250 bytes need three evictions in LRU order (3, 2, then 1): only 4 remains */
    assert_int_equal(PUT(4), EMBER_OK);
    HAS(0, 0, 0, 0, 1);
    const uint8_t *got = em_libstore_get(ls, sha[4], &len);
    assert_non_null(got);
    assert_int_equal(len, 250);
    assert_memory_equal(got, lib[4], 250);
#undef PUT
#undef HAS
    em_libstore_free(ls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors), cmocka_unit_test(test_put_has_get),
        cmocka_unit_test(test_put_mismatch),   cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_lru_eviction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
