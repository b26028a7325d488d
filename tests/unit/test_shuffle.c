/* test_shuffle.c -- em_shuffle: map outputs split by key hash into stored buckets; a reduce
 * read combining a local bucket (no network) with one fetched from a peer; and a peer that
 * answers with garbage, a truncated bucket, or nothing at all gives a clear error. The peer
 * is an em_server on a loopback port, run by a thread of the test. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "em_batch.h"
#include "em_hash.h"
#include "em_server.h"
#include "em_shuffle.h"

enum peer_mode { PEER_VALID, PEER_GARBAGE, PEER_TRUNCATED, PEER_MISSING };

typedef struct fake_peer {
    em_server *srv;
    char url[128];
    enum peer_mode mode;
    em_buf bucket; /* a valid bucket to serve (or damage) */
    pthread_t thread;
    volatile int client_gone; /* the reader's connection has been torn down */
} fake_peer;

static void *serve(void *arg)
{
    fake_peer *p = arg;
    em_request req;
    int rc;
    uint32_t closed[8];
    while ((rc = em_server_recv(p->srv, &req, 10)) != EMBER_ERR_CANCELLED) {
        if (em_server_closed_pipes(p->srv, closed, 8) > 0) p->client_gone = 1;
        if (rc != EMBER_OK) continue;
        if (p->mode == PEER_MISSING) {
            em_server_reply_error(p->srv, &req, EMBER_ERR_NOT_FOUND,
                                  "block not held by this executor");
            continue;
        }
        Ember__BlockData bd = EMBER__BLOCK_DATA__INIT;
        uint8_t garbage[64];
        for (size_t i = 0; i < sizeof garbage; i++) garbage[i] = (uint8_t)(i * 37 + 11);
        em_iov iov = {p->bucket.data, p->bucket.len};
        if (p->mode == PEER_GARBAGE) iov = (em_iov){garbage, sizeof garbage};
        if (p->mode == PEER_TRUNCATED) iov.len -= 3;
        em_server_reply(p->srv, &req, EM_MSG_BLOCK_DATA, &bd.base, &iov, 1);
    }
    return NULL;
}

static em_buf bucket_of(const char *const *keys, const int64_t *values, size_t n)
{
    em_batch_writer w = {0};
    em_batch_begin(&w);
    for (size_t i = 0; i < n; i++) {
        uint8_t v[8];
        memcpy(v, &values[i], 8);
        ember_record rec = {keys[i], strlen(keys[i]), v, 8, (int64_t)i};
        em_batch_add(&w, &rec);
    }
    em_batch_finish(&w);
    return w.buf;
}

static void peer_start(fake_peer *p, enum peer_mode mode, em_buf bucket)
{
    char err[256];
    p->mode = mode;
    p->bucket = bucket;
    assert_int_equal(em_server_open(&p->srv, "tcp://127.0.0.1:0", 1 << 20, "", p->url,
                                    sizeof p->url, err, sizeof err),
                     EMBER_OK);
    assert_int_equal(pthread_create(&p->thread, NULL, serve, p), 0);
}

/* peer_stop closes the peer once the reader's connection is gone: nng 1.5 can crash when a
 * socket is closed while one of its connections is still being torn down. */
static void peer_stop(fake_peer *p)
{
    for (int i = 0; i < 200 && !p->client_gone; i++) usleep(5000);
    em_server_stop(p->srv);
    pthread_join(p->thread, NULL);
    em_server_close(p->srv);
    em_buf_free(&p->bucket);
}

typedef struct got {
    int n;
    char keys[8][8];
    int64_t values[8];
} got;

static int collect(void *arg, const ember_record *rec)
{
    got *g = arg;
    assert_true(g->n < 8 && rec->key_len < 8);
    memcpy(g->keys[g->n], rec->key, rec->key_len);
    g->keys[g->n][rec->key_len] = '\0';
    memcpy(&g->values[g->n], rec->value, 8);
    g->n++;
    return EMBER_OK;
}

/* read_partition0 reads reduce partition 0 of map stage 7 with two map partitions: map 0
 * held here ("self"), map 1 held by peer_url. */
static int read_partition0(em_blockstore *blocks, const char *peer_url, got *g, char *err,
                           size_t errlen)
{
    char *addresses[2] = {"tcp://self:1", (char *)peer_url};
    Ember__ShuffleInput in = EMBER__SHUFFLE_INPUT__INIT, *inputs[1] = {&in};
    in.map_stage_id = 7;
    in.n_map_addresses = 2;
    in.map_addresses = addresses;
    Ember__StageDef def = EMBER__STAGE_DEF__INIT;
    def.n_shuffle_inputs = 1;
    def.shuffle_inputs = inputs;
    Ember__Node node = EMBER__NODE__INIT;
    node.kind = EMBER__NODE_KIND__NODE_REDUCE_BY_KEY;
    node.partitions = 1;
    node.reducer = EMBER__REDUCER__REDUCER_SUM_I64;
    em_peers peers = {0};
    em_shuffle_read_arg a = {blocks, &peers, "tcp://self:1", &def, &node, 0, NULL};
    int rc = em_shuffle_read(&a, collect, g, err, errlen);
    em_peers_close(&peers);
    return rc;
}

/* sum_writer starts map partition map_part's output for a reduce_by_key (sum) node with
 * `reducers` partitions, as a map task would. */
static em_shuffle_writer *sum_writer(Ember__Node *node, uint32_t reducers, uint32_t map_part)
{
    ember__node__init(node);
    node->kind = EMBER__NODE_KIND__NODE_REDUCE_BY_KEY;
    node->partitions = reducers;
    node->reducer = EMBER__REDUCER__REDUCER_SUM_I64;
    em_shuffle_writer *w = NULL;
    char err[256] = "";
    assert_int_equal(em_shuffle_writer_new(node, NULL, map_part, &w, err, sizeof err), EMBER_OK);
    return w;
}

/* local_map0 stores map 0's output of stage 7 with one reducer, as a map task would. */
static em_blockstore *local_map0(void)
{
    em_blockstore *blocks = em_blockstore_new(1 << 20, NULL);
    Ember__Node node;
    em_shuffle_writer *w = sum_writer(&node, 1, 0);
    static const char *const keys[] = {"a", "b", "a"};
    static const int64_t values[] = {1, 10, 2};
    for (int i = 0; i < 3; i++) {
        uint8_t v[8];
        memcpy(v, &values[i], 8);
        ember_record rec = {keys[i], 1, v, 8, 0};
        assert_int_equal(em_shuffle_writer_add(w, &rec), EMBER_OK);
    }
    uint64_t bytes[1];
    char err[256] = "";
    assert_int_equal(em_shuffle_writer_store(w, blocks, 7, bytes, err, sizeof err), EMBER_OK);
    assert_true(bytes[0] > EM_BATCH_HEADER);
    em_shuffle_writer_free(w);
    return blocks;
}

static void test_store_splits_by_hash(void **state)
{
    (void)state;
    em_blockstore *blocks = em_blockstore_new(1 << 20, NULL);
    Ember__Node node;
    em_shuffle_writer *w = sum_writer(&node, 3, 4);
    char key[16];
    for (int k = 0; k < 100; k++) {
        uint8_t v[8] = {1};
        snprintf(key, sizeof key, "w%d", k);
        ember_record rec = {key, strlen(key), v, 8, 0};
        assert_int_equal(em_shuffle_writer_add(w, &rec), EMBER_OK);
    }
    uint64_t bytes[3];
    char err[256] = "";
    assert_int_equal(em_shuffle_writer_store(w, blocks, 9, bytes, err, sizeof err), EMBER_OK);
    int64_t total = 0;
    for (uint32_t r = 0; r < 3; r++) {
        char id[64];
        snprintf(id, sizeof id, "shuffle_9_4_%u", r);
        em_block *b = em_blockstore_get(blocks, id);
        assert_non_null(b);
        size_t len;
        const void *p = em_block_data(b, &len);
        assert_int_equal(len, bytes[r]);
        em_batch_reader rd;
        ember_record rec;
        assert_int_equal(em_batch_open(p, len, &rd, NULL), EMBER_OK);
        while (em_batch_next(&rd, &rec) > 0) {
            assert_int_equal(em_hash64(rec.key, rec.key_len) % 3, r); /* each key in its bucket */
            total++;
        }
        em_block_release(blocks, b);
    }
    assert_int_equal(total, 100);
    em_shuffle_writer_free(w);
    em_blockstore_free(blocks);
}

static void test_read_local_and_remote(void **state)
{
    (void)state;
    em_blockstore *blocks = local_map0();
    static const char *const keys[] = {"b", "c"};
    static const int64_t values[] = {5, 7};
    fake_peer peer;
    peer_start(&peer, PEER_VALID, bucket_of((const char *const *)keys, values, 2));
    got g = {0};
    char err[512] = "";
    assert_int_equal(read_partition0(blocks, peer.url, &g, err, sizeof err), EMBER_OK);
    assert_int_equal(g.n, 3); /* first-seen order: map 0's keys, then map 1's new ones */
    assert_string_equal(g.keys[0], "a");
    assert_int_equal(g.values[0], 3);
    assert_string_equal(g.keys[1], "b");
    assert_int_equal(g.values[1], 15);
    assert_string_equal(g.keys[2], "c");
    assert_int_equal(g.values[2], 7);
    peer_stop(&peer);
    em_blockstore_free(blocks);
}

static void expect_read_error(enum peer_mode mode, int want_rc, const char *want_text)
{
    em_blockstore *blocks = local_map0();
    static const char *const keys[] = {"b"};
    static const int64_t values[] = {5};
    fake_peer peer;
    peer_start(&peer, mode, bucket_of((const char *const *)keys, values, 1));
    got g = {0};
    char err[512] = "";
    assert_int_equal(read_partition0(blocks, peer.url, &g, err, sizeof err), want_rc);
    if (!strstr(err, want_text)) fail_msg("error '%s' does not say '%s'", err, want_text);
    assert_non_null(strstr(err, peer.url)); /* names the peer */
    assert_int_equal(g.n, 0);               /* nothing emitted from a failed read */
    peer_stop(&peer);
    em_blockstore_free(blocks);
}

static void test_peer_answers_garbage(void **state)
{
    (void)state;
    expect_read_error(PEER_GARBAGE, EMBER_ERR_MALFORMED, "shuffle bucket shuffle_7_1_0 from");
}

static void test_peer_answers_wrong_size(void **state)
{
    (void)state;
    expect_read_error(PEER_TRUNCATED, EMBER_ERR_MALFORMED, "is corrupt");
}

static void test_peer_lacks_the_block(void **state)
{
    (void)state;
    expect_read_error(PEER_MISSING, EMBER_ERR_NOT_FOUND, "block not held by this executor");
}

static void test_peer_unreachable(void **state)
{
    (void)state;
    em_blockstore *blocks = local_map0();
    got g = {0};
    char err[512] = "";
    int rc = read_partition0(blocks, "tcp://127.0.0.1:1", &g, err, sizeof err);
    assert_int_equal(rc, EMBER_ERR_CONNECT);
    assert_non_null(
        strstr(err, "cannot fetch shuffle bucket shuffle_7_1_0 from tcp://127.0.0.1:1"));
    em_blockstore_free(blocks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_splits_by_hash), cmocka_unit_test(test_read_local_and_remote),
        cmocka_unit_test(test_peer_answers_garbage), cmocka_unit_test(test_peer_answers_wrong_size),
        cmocka_unit_test(test_peer_lacks_the_block), cmocka_unit_test(test_peer_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
