/* test_frame.c -- the wire envelope (common/em_frame.h).
 *
 * Covers: em_frame_new + em_frame_parse + em_frame_unpack round trips of HELLO, REPORT (repeated
 * nested messages), BLOCK_DATA (data in several pieces) and an empty POLL; em_frame_append
 * after bytes already in the message; em_frame_unpack with the wrong type returns NULL; every
 * truncation, every single-bit flip, wrong magic or version, unknown type, non-zero flags,
 * length mismatch and trailing garbage give EMBER_ERR_MALFORMED with a non-empty reason naming
 * the problem; a checksummed frame whose protobuf part is garbage parses but does not unpack;
 * thousands of random buffers (fixed-seed PRNG) never parse. Inputs handed to the parser are
 * exactly sized heap copies so ASan sees any overread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ember/ember.h>

#include "em_buf.h"
#include "em_frame.h"
#include "em_hash.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static uint8_t *dup_exact(const void *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    assert_non_null(q);
    if (n) memcpy(q, p, n);
    return q;
}

/* reseal recomputes the checksum of a frame in [buf, buf+len) after a deliberate edit, so
 * that the edit itself, not the checksum, is what the parser must catch. */
static void reseal(uint8_t *buf, size_t len)
{
    uint8_t *tmp = malloc(16 + len - EM_FRAME_HEADER + 1);
    assert_non_null(tmp);
    memcpy(tmp, buf, 16);
    memcpy(tmp + 16, buf + EM_FRAME_HEADER, len - EM_FRAME_HEADER);
    em_put_u64le(buf + 16, em_hash64(tmp, 16 + len - EM_FRAME_HEADER));
    free(tmp);
}

/* expect_malformed parses a copy of [buf, buf+len) and checks the failure and its reason. */
static void expect_malformed(const uint8_t *buf, size_t len, const char *reason_part)
{
    uint8_t *copy = dup_exact(buf, len);
    em_frame f;
    char err[256] = "";
    int rc = em_frame_parse(copy, len, &f, err, sizeof err);
    free(copy);
    if (rc != EMBER_ERR_MALFORMED) fail_msg("len %zu: expected MALFORMED, got %d", len, rc);
    assert_true(err[0] != '\0');
    if (reason_part && !strstr(err, reason_part))
        fail_msg("reason '%s' does not mention '%s'", err, reason_part);
}

/* a REPORT with two task results and a data part, the frame used by the corruption tests */
static nng_msg *sample_frame(void)
{
    Ember__TaskResult r1 = EMBER__TASK_RESULT__INIT, r2 = EMBER__TASK_RESULT__INIT;
    r1.task_id = 7;
    r1.code = EMBER_ERR_USER;
    r1.message = "map function 'f' failed";
    r1.records_in = 12345678901;
    r2.task_id = 8;
    r2.records_out = -1;
    r2.data_len = 5;
    Ember__TaskResult *results[] = {&r1, &r2};
    Ember__Report rep = EMBER__REPORT__INIT;
    rep.executor_id = 3;
    rep.n_results = 2;
    rep.results = results;
    static Ember__StoreStats store = EMBER__STORE_STATS__INIT;
    store.memory_used = UINT64_MAX;
    rep.store = &store;
    em_iov data[] = {{"hello", 5}};
    nng_msg *msg = NULL;
    assert_int_equal(em_frame_new(&msg, EM_MSG_REPORT, &rep.base, data, 1), EMBER_OK);
    return msg;
}

/* ---- round trips ------------------------------------------------------------------------ */

static void test_hello_round_trip(void **state)
{
    (void)state;
    static const uint8_t proof[] = {0, 1, 2, 0xfe, 0xff};
    Ember__Hello h = EMBER__HELLO__INIT;
    h.protocol_version = 1;
    h.role = "executor";
    h.auth.data = (uint8_t *)proof;
    h.auth.len = sizeof proof;
    nng_msg *msg = NULL;
    assert_int_equal(em_frame_new(&msg, EM_MSG_HELLO, &h.base, NULL, 0), EMBER_OK);
    size_t plen = protobuf_c_message_get_packed_size(&h.base);
    assert_int_equal(nng_msg_len(msg), EM_FRAME_HEADER + plen);

    const uint8_t *body = nng_msg_body(msg);
    assert_memory_equal(body, "EMBF", 4);
    assert_int_equal(body[4], EM_FRAME_VERSION);
    assert_int_equal(body[5], EM_MSG_HELLO);
    assert_int_equal(body[6] | body[7], 0);
    assert_int_equal(em_get_u32le(body + 8), plen);
    assert_int_equal(em_get_u32le(body + 12), 0);

    em_frame f;
    char err[256] = "";
    assert_int_equal(em_frame_parse(body, nng_msg_len(msg), &f, err, sizeof err), EMBER_OK);
    assert_int_equal(f.type, EM_MSG_HELLO);
    assert_ptr_equal(f.proto, body + EM_FRAME_HEADER);
    assert_int_equal(f.proto_len, plen);
    assert_int_equal(f.data_len, 0);

    Ember__Hello *got = em_frame_unpack(&f, EM_MSG_HELLO);
    assert_non_null(got);
    assert_int_equal(got->protocol_version, 1);
    assert_string_equal(got->role, "executor");
    assert_int_equal(got->auth.len, sizeof proof);
    assert_memory_equal(got->auth.data, proof, sizeof proof);
    em_pb_free(got);

    /* the wrong expected type never decodes */
    assert_null(em_frame_unpack(&f, EM_MSG_HELLO_REPLY));
    assert_null(em_frame_unpack(&f, EM_MSG_SUBMIT_JOB));
    nng_msg_free(msg);
}

static void test_report_round_trip(void **state)
{
    (void)state;
    nng_msg *msg = sample_frame();
    em_frame f;
    char err[256] = "";
    assert_int_equal(em_frame_parse(nng_msg_body(msg), nng_msg_len(msg), &f, err, sizeof err),
                     EMBER_OK);
    assert_int_equal(f.type, EM_MSG_REPORT);
    assert_int_equal(f.data_len, 5);
    assert_memory_equal(f.data, "hello", 5);
    assert_int_equal(EM_FRAME_HEADER + f.proto_len + f.data_len, nng_msg_len(msg));

    Ember__Report *rep = em_frame_unpack(&f, EM_MSG_REPORT);
    assert_non_null(rep);
    assert_int_equal(rep->executor_id, 3);
    assert_non_null(rep->store);
    assert_true(rep->store->memory_used == UINT64_MAX);
    assert_int_equal(rep->n_results, 2);
    assert_int_equal(rep->results[0]->task_id, 7);
    assert_int_equal(rep->results[0]->code, EMBER_ERR_USER);
    assert_string_equal(rep->results[0]->message, "map function 'f' failed");
    assert_int_equal(rep->results[0]->records_in, 12345678901);
    assert_int_equal(rep->results[1]->task_id, 8);
    assert_true(rep->results[1]->records_out == -1);
    assert_int_equal(rep->results[1]->data_len, 5);
    assert_string_equal(rep->results[1]->message, "");
    em_pb_free(rep);
    assert_null(em_frame_unpack(&f, EM_MSG_REPORT_REPLY));
    nng_msg_free(msg);
}

static void test_block_data_pieces_and_append(void **state)
{
    (void)state;
    Ember__BlockData bd = EMBER__BLOCK_DATA__INIT;
    bd.block_id = "shuffle_3_1_7";
    uint8_t bin[256];
    for (int i = 0; i < 256; i++) bin[i] = (uint8_t)i;
    em_iov pieces[] = {{"abc", 3}, {NULL, 0}, {bin, sizeof bin}, {"z", 1}};

    /* append after routing bytes already in the body: only the appended part is a frame */
    nng_msg *msg = NULL;
    assert_int_equal(nng_msg_alloc(&msg, 0), 0);
    assert_int_equal(nng_msg_append(msg, "ROUTE", 5), 0);
    assert_int_equal(em_frame_append(msg, EM_MSG_BLOCK_DATA, &bd.base, pieces, 4), EMBER_OK);
    const uint8_t *body = nng_msg_body(msg);
    size_t len = nng_msg_len(msg);
    assert_memory_equal(body, "ROUTE", 5);

    em_frame f;
    char err[256] = "";
    assert_int_equal(em_frame_parse(body + 5, len - 5, &f, err, sizeof err), EMBER_OK);
    assert_int_equal(f.type, EM_MSG_BLOCK_DATA);
    assert_int_equal(f.data_len, 3 + 256 + 1);
    assert_memory_equal(f.data, "abc", 3);
    assert_memory_equal(f.data + 3, bin, sizeof bin);
    assert_int_equal(f.data[259], 'z');
    Ember__BlockData *got = em_frame_unpack(&f, EM_MSG_BLOCK_DATA);
    assert_non_null(got);
    assert_string_equal(got->block_id, "shuffle_3_1_7");
    em_pb_free(got);
    /* the whole body (routing bytes included) is not one frame */
    expect_malformed(body, len, "not an ember frame");

    /* BLOCK_DATA's data is record batches that check themselves: the frame's checksum
     * leaves them out (a flipped data byte still parses; em_batch_open finds it), but still
     * covers the header, the lengths and the protobuf part */
    uint8_t *copy = dup_exact(body + 5, len - 5);
    assert_int_equal(copy[6], EM_FRAME_F_BATCHES);
    copy[len - 5 - 1] ^= 0x40;
    assert_int_equal(em_frame_parse(copy, len - 5, &f, err, sizeof err), EMBER_OK);
    assert_int_equal(f.data[259], 'z' ^ 0x40);
    copy[len - 5 - 1] ^= 0x40;
    copy[EM_FRAME_HEADER] ^= 0x01; /* the protobuf part */
    expect_malformed(copy, len - 5, "checksum mismatch");
    copy[EM_FRAME_HEADER] ^= 0x01;
    copy[6] = 0; /* a BLOCK_DATA without its flag */
    expect_malformed(copy, len - 5, "unknown frame flags");
    free(copy);
    nng_msg_free(msg);
}

/* no other message type may carry EM_FRAME_F_BATCHES: its data would go unchecked */
static void test_batches_flag_only_on_block_data(void **state)
{
    (void)state;
    nng_msg *msg = sample_frame();
    size_t len = nng_msg_len(msg);
    uint8_t *copy = dup_exact(nng_msg_body(msg), len);
    assert_int_not_equal(copy[5], EM_MSG_BLOCK_DATA);
    copy[6] = EM_FRAME_F_BATCHES;
    expect_malformed(copy, len, "unknown frame flags");
    free(copy);
    nng_msg_free(msg);
}

static void test_empty_message(void **state)
{
    (void)state;
    nng_msg *msg = NULL;
    assert_int_equal(em_frame_new(&msg, EM_MSG_POLL, NULL, NULL, 0), EMBER_OK);
    assert_int_equal(nng_msg_len(msg), EM_FRAME_HEADER);
    em_frame f;
    char err[256] = "";
    assert_int_equal(em_frame_parse(nng_msg_body(msg), nng_msg_len(msg), &f, err, sizeof err),
                     EMBER_OK);
    assert_int_equal(f.type, EM_MSG_POLL);
    assert_int_equal(f.proto_len, 0);
    assert_int_equal(f.data_len, 0);
    Ember__Poll *poll = em_frame_unpack(&f, EM_MSG_POLL);
    assert_non_null(poll);
    assert_int_equal(poll->executor_id, 0);
    em_pb_free(poll);
    em_pb_free(NULL); /* accepted */
    nng_msg_free(msg);
}

static void test_msg_names(void **state)
{
    (void)state;
    assert_string_equal(em_msg_name(EM_MSG_HELLO), "HELLO");
    assert_string_equal(em_msg_name(EM_MSG_SUBMIT_JOB), "SUBMIT_JOB");
    assert_string_equal(em_msg_name(EM_MSG_BLOCK_DATA), "BLOCK_DATA");
    assert_string_equal(em_msg_name(EM_MSG_NONE), "UNKNOWN");
    assert_string_equal(em_msg_name(EM_MSG_COUNT), "UNKNOWN");
    assert_string_equal(em_msg_name(-1), "UNKNOWN");
    assert_string_equal(em_msg_name(EM_MSG_JOB_PROGRESS_REPLY), "JOB_PROGRESS_REPLY");
    assert_string_equal(em_msg_name(EM_MSG_AUTH), "AUTH");
    assert_string_equal(em_msg_name(EM_MSG_QUERY_STATUS), "QUERY_STATUS");
    assert_string_equal(em_msg_name(EM_MSG_SUBMIT_FAILED), "SUBMIT_FAILED");
    assert_int_equal(EM_MSG_COUNT, 33);
    assert_int_equal(em_msg_roles(EM_MSG_START_QUERY), EM_ROLE_SUBMITTER);
    assert_int_equal(em_msg_roles(EM_MSG_SUBMIT_FAILED), EM_ROLE_SUBMITTER);
    assert_int_equal(em_msg_roles(EM_MSG_QUERY_STATUS), 0);
    /* who may send what: the handshake and replies are no one's requests */
    assert_int_equal(em_msg_roles(EM_MSG_REGISTER), EM_ROLE_EXECUTOR);
    assert_int_equal(em_msg_roles(EM_MSG_EXECUTOR_CRASHED), EM_ROLE_SUPERVISOR);
    assert_int_equal(em_msg_roles(EM_MSG_FETCH_BLOCK), EM_ROLE_PEER);
    assert_int_equal(em_msg_roles(EM_MSG_GOODBYE), EM_ROLE_SUBMITTER | EM_ROLE_EXECUTOR);
    assert_int_equal(em_msg_roles(EM_MSG_HELLO), 0);
    assert_int_equal(em_msg_roles(EM_MSG_TASKS), 0);
    assert_int_equal(em_msg_roles(-1), 0);
    assert_int_equal(em_role_parse("peer"), EM_ROLE_PEER);
    assert_int_equal(em_role_parse("probe"), EM_ROLE_NONE);
    assert_string_equal(em_role_name(EM_ROLE_SUPERVISOR), "supervisor");
}

/* ---- corruption ------------------------------------------------------------------------- */

static void test_every_truncation_rejected(void **state)
{
    (void)state;
    nng_msg *msg = sample_frame();
    const uint8_t *body = nng_msg_body(msg);
    size_t len = nng_msg_len(msg);
    for (size_t cut = 0; cut < len; cut++)
        expect_malformed(body, cut,
                         cut < EM_FRAME_HEADER ? "shorter than its header" : "do not match");
    nng_msg_free(msg);
}

static void test_every_bit_flip_rejected(void **state)
{
    (void)state;
    nng_msg *msg = sample_frame();
    size_t len = nng_msg_len(msg);
    uint8_t *copy = dup_exact(nng_msg_body(msg), len);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            copy[i] ^= (uint8_t)(1u << bit);
            expect_malformed(copy, len, i >= 16 ? "checksum mismatch" : NULL);
            copy[i] ^= (uint8_t)(1u << bit);
        }
    }
    em_frame f;
    char err[256];
    assert_int_equal(em_frame_parse(copy, len, &f, err, sizeof err), EMBER_OK); /* restored */
    free(copy);
    nng_msg_free(msg);
}

static void test_header_fields_rejected(void **state)
{
    (void)state;
    nng_msg *msg = sample_frame();
    size_t len = nng_msg_len(msg);
    uint8_t *copy = dup_exact(nng_msg_body(msg), len);
    uint8_t *orig = dup_exact(copy, len);

    copy[0] = 'X'; /* magic */
    reseal(copy, len);
    expect_malformed(copy, len, "bad magic or version");
    memcpy(copy, orig, len);

    for (int v = 0; v < 256; v++) { /* version: only 1 */
        if (v == EM_FRAME_VERSION) continue;
        copy[4] = (uint8_t)v;
        reseal(copy, len);
        expect_malformed(copy, len, "bad magic or version");
    }
    memcpy(copy, orig, len);

    static const int bad_types[] = {EM_MSG_NONE, EM_MSG_COUNT, 100, 255};
    for (size_t i = 0; i < 4; i++) {
        copy[5] = (uint8_t)bad_types[i];
        reseal(copy, len);
        expect_malformed(copy, len, "unknown message type");
    }
    memcpy(copy, orig, len);

    copy[6] = 1; /* flags must be zero */
    reseal(copy, len);
    expect_malformed(copy, len, NULL);
    memcpy(copy, orig, len);
    copy[7] = 0x80;
    reseal(copy, len);
    expect_malformed(copy, len, NULL);
    memcpy(copy, orig, len);

    /* lengths that do not add up to the size, even with a valid checksum */
    uint32_t plen = em_get_u32le(copy + 8), dlen = em_get_u32le(copy + 12);
    em_put_u32le(copy + 8, plen + 1);
    reseal(copy, len);
    expect_malformed(copy, len, "do not match");
    memcpy(copy, orig, len);
    em_put_u32le(copy + 12, dlen - 1);
    reseal(copy, len);
    expect_malformed(copy, len, "do not match");
    memcpy(copy, orig, len);
    em_put_u32le(copy + 8, UINT32_MAX);
    em_put_u32le(copy + 12, UINT32_MAX);
    reseal(copy, len);
    expect_malformed(copy, len, "do not match");
    memcpy(copy, orig, len);

    /* moving the boundary between the protobuf and data parts keeps the sum; the checksum
     * covers the header, so this is caught too */
    em_put_u32le(copy + 8, plen + 1);
    em_put_u32le(copy + 12, dlen - 1);
    expect_malformed(copy, len, "checksum mismatch");

    /* trailing garbage after a valid frame */
    uint8_t *longer = malloc(len + 3);
    assert_non_null(longer);
    memcpy(longer, orig, len);
    memcpy(longer + len, "xyz", 3);
    expect_malformed(longer, len + 1, "do not match");
    expect_malformed(longer, len + 3, "do not match");
    free(longer);

    /* a second frame appended to the first is not "one frame" either */
    nng_msg *two = sample_frame();
    Ember__Poll poll = EMBER__POLL__INIT;
    assert_int_equal(em_frame_append(two, EM_MSG_POLL, &poll.base, NULL, 0), EMBER_OK);
    expect_malformed(nng_msg_body(two), nng_msg_len(two), "do not match");
    nng_msg_free(two);

    free(orig);
    free(copy);
    nng_msg_free(msg);
}

/* a frame whose checksum is right but whose protobuf bytes are not a message */
static void test_garbage_protobuf_does_not_unpack(void **state)
{
    (void)state;
    uint8_t junk[16];
    memset(junk, 0xff, sizeof junk);
    em_iov data[] = {{junk, sizeof junk}};
    nng_msg *msg = NULL;
    assert_int_equal(em_frame_new(&msg, EM_MSG_HELLO, NULL, data, 1), EMBER_OK);
    uint8_t *body = nng_msg_body(msg);
    size_t len = nng_msg_len(msg);
    em_put_u32le(body + 8, sizeof junk); /* move the data into the protobuf part */
    em_put_u32le(body + 12, 0);
    reseal(body, len);
    em_frame f;
    char err[256] = "";
    assert_int_equal(em_frame_parse(body, len, &f, err, sizeof err), EMBER_OK);
    assert_int_equal(f.proto_len, sizeof junk);
    assert_null(em_frame_unpack(&f, EM_MSG_HELLO));
    nng_msg_free(msg);
}

/* ---- random input ----------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng_next(void) /* xorshift64*, fixed seed: the same inputs on every run */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

static void test_random_buffers_never_parse(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 7, 23, 24, 25, 31, 64, 100, 257, 1000, 4096};
    int tried = 0;
    for (int round = 0; round < 500; round++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t len = sizes[s];
            uint8_t *buf = malloc(len ? len : 1);
            assert_non_null(buf);
            for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)rng_next();
            /* a third of them get a plausible header so they reach the deeper checks */
            if (len >= EM_FRAME_HEADER && round % 3 != 0) {
                em_put_u32le(buf, EM_FRAME_MAGIC);
                buf[4] = EM_FRAME_VERSION;
                buf[5] = (uint8_t)(1 + rng_next() % (EM_MSG_COUNT - 1));
                buf[6] = buf[7] = 0;
                if (round % 3 == 2) { /* and lengths that add up: only the checksum is wrong */
                    uint32_t body = (uint32_t)(len - EM_FRAME_HEADER);
                    uint32_t plen = (uint32_t)(rng_next() % (body + 1));
                    em_put_u32le(buf + 8, plen);
                    em_put_u32le(buf + 12, body - plen);
                }
            }
            em_frame f;
            char err[256] = "";
            int rc = em_frame_parse(buf, len, &f, err, sizeof err);
            if (rc != EMBER_ERR_MALFORMED)
                fail_msg("random buffer %d of %zu bytes parsed", tried, len);
            assert_true(err[0] != '\0');
            free(buf);
            tried++;
        }
    }
    assert_int_equal(tried, 6000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_round_trip),
        cmocka_unit_test(test_report_round_trip),
        cmocka_unit_test(test_block_data_pieces_and_append),
        cmocka_unit_test(test_empty_message),
        cmocka_unit_test(test_msg_names),
        cmocka_unit_test(test_every_truncation_rejected),
        cmocka_unit_test(test_every_bit_flip_rejected),
        cmocka_unit_test(test_batches_flag_only_on_block_data),
        cmocka_unit_test(test_header_fields_rejected),
        cmocka_unit_test(test_garbage_protobuf_does_not_unpack),
        cmocka_unit_test(test_random_buffers_never_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
