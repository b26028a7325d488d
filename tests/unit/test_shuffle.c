/* test_shuffle.c -- em_shuffle: map outputs split by key hash into stored buckets; a reduce
 * read combining a local bucket (no network) with one fetched from a peer; a peer that
 * answers with garbage, a truncated bucket, or nothing at all gives a clear error; several
 * fetches in flight whose replies come out of order are still used in map order; a failure
 * among fetches in flight fails the read with the first error in map order, frees the
 * other replies and leaves the connections usable. A peer is an em_server on a loopback
 * port, run by a thread of the test. */
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

/* PEER_BY_ID serves, for block shuffle_<stage>_<m>_<r>, one record "m<m>" = m. */
enum peer_mode { PEER_VALID, PEER_GARBAGE, PEER_TRUNCATED, PEER_MISSING, PEER_BY_ID };

typedef struct fake_peer {
    em_server *srv;
    char url[128];
    enum peer_mode mode;
    em_buf bucket; /* a valid bucket to serve (or damage) */
    int hold_ms;   /* > 0: hold the first request until another one has been answered, or
                    * for hold_ms */
    pthread_t thread;
    uint32_t pipes[32]; /* connections that sent requests (0: closed since) */
    int n_pipes;
    volatile int open_pipes;     /* of those, the ones not yet torn down */
    volatile int stopping;       /* serve returns after its current wait */
    volatile int answered_early; /* a later request was answered before the first */
    volatile int requests;       /* received */
} fake_peer;

static em_buf bucket_of(const char *const *keys, const int64_t *values, size_t n);

/* by_id is PEER_BY_ID's bucket for a FetchBlock */
static em_buf by_id(const em_request *req)
{
    Ember__FetchBlock *f = em_frame_unpack(&req->frame, EM_MSG_FETCH_BLOCK);
    unsigned long long stage;
    unsigned m = 0, r;
    assert_non_null(f);
    assert_int_equal(sscanf(f->block_id, "shuffle_%llu_%u_%u", &stage, &m, &r), 3);
    em_pb_free(f);
    char key[16];
    snprintf(key, sizeof key, "m%u", m);
    const char *keys[1] = {key};
    int64_t values[1] = {m};
    return bucket_of(keys, values, 1);
}

static void answer(fake_peer *p, em_request *req)
{
    if (p->mode == PEER_MISSING) {
        em_server_reply_error(p->srv, req, EMBER_ERR_NOT_FOUND, "block not held by this executor");
        return;
    }
    Ember__BlockData bd = EMBER__BLOCK_DATA__INIT;
    uint8_t garbage[64];
    for (size_t i = 0; i < sizeof garbage; i++) garbage[i] = (uint8_t)(i * 37 + 11);
    em_buf own = {0};
    if (p->mode == PEER_BY_ID) own = by_id(req);
    em_iov iov = {p->bucket.data, p->bucket.len};
    if (p->mode == PEER_BY_ID) iov = (em_iov){own.data, own.len};
    if (p->mode == PEER_GARBAGE) iov = (em_iov){garbage, sizeof garbage};
    if (p->mode == PEER_TRUNCATED) iov.len -= 3;
    em_server_reply(p->srv, req, EM_MSG_BLOCK_DATA, &bd.base, &iov, 1);
    em_buf_free(&own);
}

/* track_pipes counts the connections that sent requests and are not torn down yet. */
static void track_pipes(fake_peer *p, const em_request *req)
{
    int known = 0;
    for (int i = 0; req && i < p->n_pipes; i++) known |= p->pipes[i] == req->pipe;
    if (req && !known && p->n_pipes < 32) {
        p->pipes[p->n_pipes++] = req->pipe;
        p->open_pipes++;
    }
    em_conn closed[8];
    int n;
    while ((n = em_server_closed(p->srv, closed, 8)) > 0)
        for (int c = 0; c < n; c++)
            for (int i = 0; i < p->n_pipes; i++)
                if (p->pipes[i] == closed[c].pipe) {
                    p->pipes[i] = 0;
                    p->open_pipes--;
                }
}

static void *serve(void *arg)
{
    fake_peer *p = arg;
    em_request req, held;
    int rc, holding = 0, waited_ms = 0;
    while (!p->stopping && (rc = em_server_recv(p->srv, &req, 10)) != EMBER_ERR_CANCELLED) {
        track_pipes(p, rc == EMBER_OK ? &req : NULL);
        if (rc == EMBER_OK && p->requests++ == 0 && p->hold_ms > 0) {
            held = req;
            holding = 1;
        } else if (rc == EMBER_OK) {
            answer(p, &req);
            if (holding) p->answered_early = 1;
        }
        if (holding && rc != EMBER_OK) waited_ms += 10;
        if (holding && (p->answered_early || waited_ms >= p->hold_ms)) {
            answer(p, &held);
            holding = 0;
        }
    }
    if (holding) em_server_drop(&held);
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
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->bucket = bucket;
    em_server_opts so = {.max_recv = 1 << 20, .roles = EM_ROLE_PEER};
    assert_int_equal(
        em_server_open(&p->srv, "tcp://127.0.0.1:0", &so, p->url, sizeof p->url, err, sizeof err),
        EMBER_OK);
    assert_int_equal(pthread_create(&p->thread, NULL, serve, p), 0);
}

/* peer_stop closes the peer once the reader's connections are gone (every one: em_peers
 * reconnects to evicted peers), and once its thread no longer waits on the socket: nng 1.5
 * can crash when a socket is closed while one of its connections is still being torn down,
 * or while a receive with a timeout is pending on it (the timer thread then cancels the
 * receive on a freed socket). */
static void peer_stop(fake_peer *p)
{
    for (int i = 0; i < 200 && p->open_pipes > 0; i++) usleep(5000);
    p->stopping = 1;
    pthread_join(p->thread, NULL);
    em_server_close(p->srv);
    em_buf_free(&p->bucket);
}

typedef struct got {
    int n;
    char keys[32][8];
    int64_t values[32];
} got;

static int collect(void *arg, const ember_record *rec)
{
    got *g = arg;
    assert_true(g->n < 32 && rec->key_len < 8);
    memcpy(g->keys[g->n], rec->key, rec->key_len);
    g->keys[g->n][rec->key_len] = '\0';
    memcpy(&g->values[g->n], rec->value, 8);
    g->n++;
    return EMBER_OK;
}

#define SELF "tcp://self:1"

/* the map output the last read could not read, as a reduce task reports it to the driver */
static em_fetch_failure last_failure;

/* expect_lost_output checks that the last read named map partition 1 of stage 7 as lost. */
static void expect_lost_output(void)
{
    assert_int_equal(last_failure.failed, 1);
    assert_int_equal(last_failure.map_stage, 7);
    assert_int_equal(last_failure.map_partition, 1);
}

/* read_maps reads reduce partition 0 of map stage 7 whose map partition m is held by
 * addresses[m] (SELF: in blocks), for a node of `kind` (reduce_by_key sums). */
static int read_maps(em_blockstore *blocks, em_peers *peers, Ember__NodeKind kind, char **addresses,
                     size_t n, got *g, char *err, size_t errlen)
{
    Ember__ShuffleInput in = EMBER__SHUFFLE_INPUT__INIT, *inputs[1] = {&in};
    in.map_stage_id = 7;
    in.n_map_addresses = n;
    in.map_addresses = addresses;
    Ember__StageDef def = EMBER__STAGE_DEF__INIT;
    def.n_shuffle_inputs = 1;
    def.shuffle_inputs = inputs;
    Ember__Node node = EMBER__NODE__INIT;
    node.kind = kind;
    node.partitions = 1;
    node.reducer = EMBER__REDUCER__REDUCER_SUM_I64;
    last_failure = (em_fetch_failure){0};
    em_shuffle_read_arg a = {blocks, peers, SELF, &def, &node, 0, NULL, &last_failure, NULL, NULL};
    return em_shuffle_read(&a, collect, g, err, errlen);
}

/* read_partition0 reads reduce partition 0 of map stage 7 with two map partitions: map 0
 * held here ("self"), map 1 held by peer_url. */
static int read_partition0(em_blockstore *blocks, const char *peer_url, got *g, char *err,
                           size_t errlen)
{
    char *addresses[2] = {SELF, (char *)peer_url};
    em_peers peers = {0};
    int rc = read_maps(blocks, &peers, EMBER__NODE_KIND__NODE_REDUCE_BY_KEY, addresses, 2, g, err,
                       errlen);
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
    assert_int_equal(em_shuffle_writer_store(w, blocks, 7, bytes, NULL, err, sizeof err), EMBER_OK);
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
    assert_int_equal(em_shuffle_writer_store(w, blocks, 9, bytes, NULL, err, sizeof err), EMBER_OK);
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
    assert_int_equal(last_failure.failed, 0); /* nothing lost */
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
    expect_lost_output();                   /* the driver computes it again */
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
    expect_lost_output();
    em_blockstore_free(blocks);
}

/* store_by_id stores map partition m's bucket of stage 7 here, as PEER_BY_ID serves it. */
static void store_by_id(em_blockstore *blocks, unsigned m)
{
    char key[16], id[64], why[256];
    snprintf(key, sizeof key, "m%u", m);
    snprintf(id, sizeof id, "shuffle_7_%u_0", m);
    const char *keys[1] = {key};
    int64_t values[1] = {m};
    em_buf b = bucket_of(keys, values, 1);
    size_t len;
    uint8_t *bytes = em_buf_take(&b, &len);
    assert_int_equal(em_blockstore_put(blocks, id, bytes, len, why, sizeof why), EMBER_OK);
}

static void expect_map_order(const got *g, int n)
{
    assert_int_equal(g->n, n);
    for (int m = 0; m < n; m++) {
        char key[16];
        snprintf(key, sizeof key, "m%d", m);
        assert_string_equal(g->keys[m], key);
        assert_int_equal(g->values[m], m);
    }
}

/* 3 peers and this executor hold 14 map partitions in turn; peer 0 holds its first request
 * back until it has answered a later one, so replies come out of order. The records still
 * come out in map order, and peer 0 saw a second request while the first was unanswered. */
static void test_out_of_order_replies_in_map_order(void **state)
{
    (void)state;
    em_blockstore *blocks = em_blockstore_new(1 << 20, NULL);
    fake_peer peer[3];
    for (int i = 0; i < 3; i++) peer_start(&peer[i], PEER_BY_ID, (em_buf){0});
    peer[0].hold_ms = 2000;
    char *addresses[14];
    for (unsigned m = 0; m < 14; m++) {
        addresses[m] = m % 4 == 3 ? SELF : peer[m % 4].url;
        if (m % 4 == 3) store_by_id(blocks, m);
    }
    em_peers peers = {0};
    got g = {0};
    char err[512] = "";
    int rc = read_maps(blocks, &peers, EMBER__NODE_KIND__NODE_PARTITION_BY, addresses, 14, &g, err,
                       sizeof err);
    if (rc != EMBER_OK) fail_msg("read failed: %s", err);
    expect_map_order(&g, 14);
    assert_true(peer[0].answered_early); /* map 4 was in flight before map 0 was answered */
    /* the same connections serve a second read, with sorting holding every bucket */
    memset(&g, 0, sizeof g);
    assert_int_equal(read_maps(blocks, &peers, EMBER__NODE_KIND__NODE_SORT_BY_KEY, addresses, 10,
                               &g, err, sizeof err),
                     EMBER_OK);
    assert_int_equal(g.n, 10); /* "m0" < "m1" < "m2" ... < "m9" */
    for (int m = 0; m < 10; m++) assert_int_equal(g.values[m], m);
    em_peers_close(&peers);
    for (int i = 0; i < 3; i++) peer_stop(&peer[i]);
    em_blockstore_free(blocks);
}

/* Map 1's peer answers "missing" late, map 2's peer at once, while maps 0 and 3 succeed:
 * the read fails with map 1's error (the first in map order), after emitting map 0 only;
 * the other replies are freed (ASan) and the connections serve the next read. */
static void test_failure_among_fetches_in_flight(void **state)
{
    (void)state;
    em_blockstore *blocks = em_blockstore_new(1 << 20, NULL);
    fake_peer good, late_missing, missing;
    peer_start(&good, PEER_BY_ID, (em_buf){0});
    peer_start(&late_missing, PEER_MISSING, (em_buf){0});
    late_missing.hold_ms = 500;
    peer_start(&missing, PEER_MISSING, (em_buf){0});
    char *addresses[6] = {good.url, late_missing.url, missing.url, good.url, good.url, good.url};
    em_peers peers = {0};
    got g = {0};
    char err[512] = "";
    assert_int_equal(read_maps(blocks, &peers, EMBER__NODE_KIND__NODE_PARTITION_BY, addresses, 6,
                               &g, err, sizeof err),
                     EMBER_ERR_NOT_FOUND);
    char want[256];
    snprintf(want, sizeof want,
             "cannot fetch shuffle bucket shuffle_7_1_0 from %s: ", late_missing.url);
    if (!strstr(err, want) || !strstr(err, "block not held by this executor"))
        fail_msg("error '%s' does not say '%s...block not held'", err, want);
    expect_map_order(&g, 1);
    assert_int_equal(missing.requests, 1); /* map 2 was in flight when map 1 failed */
    /* nothing is left in flight: the same peers serve a full read */
    char *again[4] = {good.url, good.url, good.url, good.url};
    memset(&g, 0, sizeof g);
    assert_int_equal(read_maps(blocks, &peers, EMBER__NODE_KIND__NODE_PARTITION_BY, again, 4, &g,
                               err, sizeof err),
                     EMBER_OK);
    expect_map_order(&g, 4);
    em_peers_close(&peers);
    peer_stop(&good);
    peer_stop(&late_missing);
    peer_stop(&missing);
    em_blockstore_free(blocks);
}

/* More peers than em_peers caches, each holding a few map partitions in turn: peers are
 * evicted and reopened while requests to others are in flight (never one in flight). */
static void test_more_peers_than_cached(void **state)
{
    (void)state;
    enum { N_PEERS = EM_PEERS_CACHED + 2, N_MAPS = 30 };
    em_blockstore *blocks = em_blockstore_new(1 << 20, NULL);
    fake_peer peer[N_PEERS];
    for (int i = 0; i < N_PEERS; i++) peer_start(&peer[i], PEER_BY_ID, (em_buf){0});
    peer[1].hold_ms = 100;
    char *addresses[N_MAPS];
    for (int m = 0; m < N_MAPS; m++) addresses[m] = peer[m % N_PEERS].url;
    em_peers peers = {0};
    got g = {0};
    char err[512] = "";
    int rc = read_maps(blocks, &peers, EMBER__NODE_KIND__NODE_PARTITION_BY, addresses, N_MAPS, &g,
                       err, sizeof err);
    if (rc != EMBER_OK) fail_msg("read failed: %s", err);
    expect_map_order(&g, N_MAPS);
    em_peers_close(&peers);
    for (int i = 0; i < N_PEERS; i++) peer_stop(&peer[i]);
    em_blockstore_free(blocks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_splits_by_hash),
        cmocka_unit_test(test_read_local_and_remote),
        cmocka_unit_test(test_peer_answers_garbage),
        cmocka_unit_test(test_peer_answers_wrong_size),
        cmocka_unit_test(test_peer_lacks_the_block),
        cmocka_unit_test(test_peer_unreachable),
        cmocka_unit_test(test_out_of_order_replies_in_map_order),
        cmocka_unit_test(test_failure_among_fetches_in_flight),
        cmocka_unit_test(test_more_peers_than_cached),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
