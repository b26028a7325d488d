/* test_batch.c -- record batches (common/em_batch.h) and varints (common/em_buf.h).
 *
 * Covers: round trips of records with empty keys/values, binary bytes, extreme timestamps and
 * multi-byte lengths; several consecutive batches counted by em_batch_count; every truncation
 * and every single-bit flip of a valid batch is rejected with EMBER_ERR_MALFORMED (by
 * em_batch_open or em_batch_next), never a crash or an out-of-bounds read (each input is an
 * exactly sized heap copy so ASan sees overreads); headers whose record count disagrees with
 * the payload; varint decoding at its edges (maximum, overlong, truncated); batches written
 * into pooled chunks (em_batch_chunks: whole batches per chunk, oversized records, the pool
 * reusing a chunk given back and trimming its idle ones).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "em_batch.h"
#include "em_buf.h"
#include "em_hash.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static void write_batch(em_batch_writer *w, const ember_record *recs, size_t n)
{
    assert_int_equal(em_batch_begin(w), EMBER_OK);
    for (size_t i = 0; i < n; i++) assert_int_equal(em_batch_add(w, &recs[i]), EMBER_OK);
    assert_int_equal(em_batch_finish(w), EMBER_OK);
}

/* dup_exact copies n bytes into a heap block of exactly n bytes (ASan catches overreads). */
static uint8_t *dup_exact(const void *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    assert_non_null(q);
    if (n) memcpy(q, p, n);
    return q;
}

/* read_all opens one batch occupying all of [buf, buf+len) and reads every record.
 * Returns the number of records read, or the first error. */
static int64_t read_all(const uint8_t *buf, size_t len)
{
    em_batch_reader r;
    size_t used = 0;
    int rc = em_batch_open(buf, len, &r, &used);
    if (rc != EMBER_OK) return rc;
    ember_record rec;
    int64_t n = 0;
    while ((rc = em_batch_next(&r, &rec)) > 0) n++;
    if (rc < 0) return rc;
    return used == len ? n : -1000; /* -1000: batch ended before the buffer did */
}

/* sample_batch writes ten varied records (used by the corruption tests). */
static void sample_batch(em_batch_writer *w)
{
    static const uint8_t bin[] = {0x00, 0xff, 0x80, 0x7f, 0x01};
    char big[200];
    memset(big, 'x', sizeof big);
    ember_record recs[10];
    for (int i = 0; i < 10; i++) {
        recs[i] = (ember_record){bin, (size_t)(i % 5), big, (size_t)(i * 20), (int64_t)i * -7919};
    }
    write_batch(w, recs, 10);
}

/* ---- round trips ------------------------------------------------------------------------ */

static void test_round_trip_edge_records(void **state)
{
    (void)state;
    static const uint8_t bin[] = {0x00, 0x01, 0x80, 0xff, 0x00, 0x7f};
    uint8_t big[300]; /* 300 needs a two-byte varint length */
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 31);
    const ember_record in[] = {
        {"", 0, "", 0, 0},
        {"k", 1, "", 0, -1},
        {"", 0, "v", 1, INT64_MIN},
        {bin, sizeof bin, bin, sizeof bin, INT64_MAX},
        {big, sizeof big, "x", 1, 1700000000123},
        {"key", 3, big, sizeof big, -1700000000123},
        {NULL, 0, NULL, 0, 63},  /* zigzag 126: one-byte varint */
        {NULL, 0, NULL, 0, -65}, /* zigzag 129: two-byte varint */
    };
    const size_t n = sizeof in / sizeof in[0];
    em_batch_writer w = {0};
    write_batch(&w, in, n);

    /* header fields, as documented in em_batch.h */
    assert_int_equal(em_get_u32le(w.buf.data), EM_BATCH_MAGIC);
    assert_memory_equal(w.buf.data, "EMRB", 4);
    assert_int_equal(em_get_u32le(w.buf.data + 4), n);
    assert_int_equal(em_get_u32le(w.buf.data + 8), w.buf.len - EM_BATCH_HEADER);
    assert_int_equal(em_get_u32le(w.buf.data + 12), 0);
    assert_int_equal(em_batch_bytes(&w), w.buf.len);

    em_batch_reader r;
    size_t used = 0;
    assert_int_equal(em_batch_open(w.buf.data, w.buf.len, &r, &used), EMBER_OK);
    assert_int_equal(used, w.buf.len);
    for (size_t i = 0; i < n; i++) {
        ember_record out;
        assert_int_equal(em_batch_next(&r, &out), 1);
        assert_int_equal(out.key_len, in[i].key_len);
        assert_int_equal(out.value_len, in[i].value_len);
        if (in[i].key_len) assert_memory_equal(out.key, in[i].key, in[i].key_len);
        if (in[i].value_len) assert_memory_equal(out.value, in[i].value, in[i].value_len);
        assert_true(out.timestamp == in[i].timestamp);
    }
    ember_record out;
    assert_int_equal(em_batch_next(&r, &out), 0);
    assert_int_equal(em_batch_next(&r, &out), 0); /* stays at the end */
    em_buf_free(&w.buf);
}

static void test_empty_batch(void **state)
{
    (void)state;
    em_batch_writer w = {0};
    write_batch(&w, NULL, 0);
    assert_int_equal(w.buf.len, EM_BATCH_HEADER);
    em_batch_reader r;
    size_t used = 0;
    assert_int_equal(em_batch_open(w.buf.data, w.buf.len, &r, &used), EMBER_OK);
    assert_int_equal(used, EM_BATCH_HEADER);
    ember_record rec;
    assert_int_equal(em_batch_next(&r, &rec), 0);
    int64_t count = -1;
    assert_int_equal(em_batch_count(w.buf.data, w.buf.len, &count), EMBER_OK);
    assert_int_equal(count, 0);
    assert_int_equal(em_batch_count(NULL, 0, &count), EMBER_OK); /* no batches at all */
    assert_int_equal(count, 0);
    em_buf_free(&w.buf);
}

/* record i of the many-batches test: key "k<i>", value "<i*i>", timestamp i*1000-500000 */
static ember_record numbered(int64_t i, char *key, char *val)
{
    int kl = snprintf(key, 32, "k%lld", (long long)i);
    int vl = snprintf(val, 32, "%lld", (long long)(i * i));
    return (ember_record){key, (size_t)kl, val, (size_t)vl, i * 1000 - 500000};
}

static void test_many_records_several_batches(void **state)
{
    (void)state;
    static const int sizes[] = {0, 1, 1000, 5000, 7, 0, 250};
    const size_t n_batches = sizeof sizes / sizeof sizes[0];
    em_batch_writer w = {0};
    size_t ends[sizeof sizes / sizeof sizes[0]];
    int64_t i = 0, total = 0;
    for (size_t b = 0; b < n_batches; b++) {
        assert_int_equal(em_batch_begin(&w), EMBER_OK);
        for (int k = 0; k < sizes[b]; k++, i++) {
            char key[32], val[32];
            ember_record rec = numbered(i, key, val);
            assert_int_equal(em_batch_add(&w, &rec), EMBER_OK);
        }
        assert_int_equal(em_batch_finish(&w), EMBER_OK);
        ends[b] = w.buf.len;
        total += sizes[b];
    }
    assert_int_equal(total, 6258);

    int64_t count = -1;
    assert_int_equal(em_batch_count(w.buf.data, w.buf.len, &count), EMBER_OK);
    assert_int_equal(count, total);

    /* walk batch by batch and check every record */
    size_t off = 0;
    i = 0;
    for (size_t b = 0; b < n_batches; b++) {
        em_batch_reader r;
        size_t used = 0;
        assert_int_equal(em_batch_open(w.buf.data + off, w.buf.len - off, &r, &used), EMBER_OK);
        off += used;
        assert_int_equal(off, ends[b]);
        ember_record rec;
        int got = 0;
        while (em_batch_next(&r, &rec) > 0) {
            char key[32], val[32];
            ember_record want = numbered(i++, key, val);
            assert_int_equal(rec.key_len, want.key_len);
            assert_memory_equal(rec.key, want.key, want.key_len);
            assert_int_equal(rec.value_len, want.value_len);
            assert_memory_equal(rec.value, want.value, want.value_len);
            assert_true(rec.timestamp == want.timestamp);
            got++;
        }
        assert_int_equal(got, sizes[b]);
    }
    assert_int_equal(off, w.buf.len);
    assert_int_equal(i, total);

    /* a sequence cut anywhere but at a batch boundary is malformed: try 150 lengths spread
     * over the buffer and each batch end with its two neighbours */
    size_t lens[200], n_lens = 0, stride = w.buf.len / 150 + 1;
    for (size_t len = 0; len < w.buf.len; len += stride) lens[n_lens++] = len;
    for (size_t b = 0; b < n_batches; b++) {
        lens[n_lens++] = ends[b] - 1;
        lens[n_lens++] = ends[b];
        lens[n_lens++] = ends[b] + 1;
    }
    for (size_t k = 0; k < n_lens; k++) {
        size_t len = lens[k];
        if (len > w.buf.len) continue;
        int at_boundary = len == 0;
        int64_t want = 0;
        for (size_t b = 0; b < n_batches; b++) {
            if (len >= ends[b]) want += sizes[b];
            if (len == ends[b]) at_boundary = 1;
        }
        uint8_t *cut = dup_exact(w.buf.data, len);
        count = -1;
        int rc = em_batch_count(cut, len, &count);
        if (at_boundary) {
            assert_int_equal(rc, EMBER_OK);
            assert_int_equal(count, want);
        } else {
            assert_int_equal(rc, EMBER_ERR_MALFORMED);
        }
        free(cut);
    }
    em_buf_free(&w.buf);
}

/* ---- corruption ------------------------------------------------------------------------- */

/* read_chunks checks that every chunk holds whole batches whose records are numbered(first..)
 * in order; returns the records read */
static int64_t read_chunks(const em_chunk *c, size_t n, int64_t first)
{
    int64_t i = first;
    for (size_t k = 0; k < n; k++) {
        assert_true(c[k].len <= c[k].cap);
        const uint8_t *p = c[k].p;
        size_t left = c[k].len;
        while (left > 0) { /* batches never straddle two chunks */
            em_batch_reader r;
            size_t used = 0;
            assert_int_equal(em_batch_open(p, left, &r, &used), EMBER_OK);
            assert_true(r.left > 0); /* no empty batches */
            ember_record rec;
            while (em_batch_next(&r, &rec) == 1) {
                char key[32], val[32];
                ember_record want = numbered(i++, key, val);
                assert_int_equal(rec.key_len, want.key_len);
                assert_memory_equal(rec.key, want.key, want.key_len);
                assert_int_equal(rec.value_len, want.value_len);
                assert_memory_equal(rec.value, want.value, want.value_len);
                assert_int_equal(rec.timestamp, want.timestamp);
            }
            p += used;
            left -= used;
        }
    }
    return i - first;
}

/* em_batch_chunks: records spread over chunks of the writer's size, each holding whole
 * batches; bytes counts them all; the pool hands back a chunk given back */
static void test_batches_in_chunks(void **state)
{
    (void)state;
    em_batch_chunks w;
    em_batch_chunks_init(&w, EM_CHUNK_MIN);
    em_batch_chunks_finish(&w); /* nothing written: no chunk */
    assert_int_equal(w.n, 0);
    assert_int_equal(w.bytes, 0);
    const int64_t n = 20000; /* about 300 KB: several 64 KiB chunks */
    for (int64_t i = 0; i < n; i++) {
        char key[32], val[32];
        ember_record rec = numbered(i, key, val);
        assert_int_equal(em_batch_chunks_add(&w, &rec), EMBER_OK);
    }
    em_batch_chunks_finish(&w);
    assert_true(w.n >= 4);
    uint64_t sum = 0;
    for (size_t k = 0; k < w.n; k++) {
        assert_int_equal(w.chunks[k].cap, EM_CHUNK_MIN);
        sum += w.chunks[k].len;
    }
    assert_int_equal(w.bytes, sum);
    assert_int_equal(read_chunks(w.chunks, w.n, 0), n);

    /* more records after a finish open a new batch in the last chunk */
    for (int64_t i = n; i < n + 10; i++) {
        char key[32], val[32];
        ember_record rec = numbered(i, key, val);
        assert_int_equal(em_batch_chunks_add(&w, &rec), EMBER_OK);
    }
    em_batch_chunks_finish(&w);
    assert_int_equal(read_chunks(w.chunks, w.n, 0), n + 10);

    uint64_t in_use = 0;
    em_chunks_stats(NULL, &in_use);
    assert_true(in_use >= w.n * EM_CHUNK_MIN);
    uint8_t *last = w.chunks[w.n - 1].p;
    size_t n_chunks;
    em_chunk *c = em_batch_chunks_take(&w, &n_chunks);
    assert_int_equal(w.n, 0);
    em_chunks_put(&c[n_chunks - 1], 1);
    em_chunk again;
    assert_int_equal(em_chunk_get(&again, EM_CHUNK_MIN), EMBER_OK);
    assert_ptr_equal(again.p, last); /* reused, not mapped afresh */
    assert_int_equal(again.len, 0);
    em_chunks_put(&again, 1);
    em_chunks_put(c, n_chunks - 1);
    free(c);
    uint64_t idle = 0;
    em_chunks_stats(&idle, &in_use);
    assert_int_equal(in_use, 0);
    assert_true(idle >= n_chunks * EM_CHUNK_MIN);
    assert_int_equal(em_chunks_trim(), idle);
    em_chunks_stats(&idle, NULL);
    assert_int_equal(idle, 0);
}

/* a bucket's chunks double from the smallest size up to the writer's: a small bucket holds a
 * small chunk, a big one mostly chunks of the writer's size */
static void test_chunks_grow_to_the_writer_size(void **state)
{
    (void)state;
    em_batch_chunks w;
    em_batch_chunks_init(&w, EM_CHUNK_MAX);
    char key[32], val[32];
    ember_record rec = numbered(0, key, val);
    assert_int_equal(em_batch_chunks_add(&w, &rec), EMBER_OK);
    assert_int_equal(w.n, 1);
    assert_int_equal(w.chunks[0].cap, EM_CHUNK_MIN); /* one record: the smallest chunk */
    int64_t n = 1;
    while (w.n < 7) {
        rec = numbered(n++, key, val);
        assert_int_equal(em_batch_chunks_add(&w, &rec), EMBER_OK);
    }
    em_batch_chunks_finish(&w);
    size_t want = EM_CHUNK_MIN;
    for (size_t k = 0; k < w.n; k++, want = want < EM_CHUNK_MAX ? 2 * want : want)
        assert_int_equal(w.chunks[k].cap, want); /* 64, 128, 256, 512 KiB, then 1 MiB */
    assert_int_equal(read_chunks(w.chunks, w.n, 0), n);
    em_batch_chunks_free(&w);
}

/* a record too big for the writer's chunks gets a chunk of its own, between the others */
static void test_chunks_oversized_record(void **state)
{
    (void)state;
    size_t big_len = 3 * EM_CHUNK_MAX;
    char *big = malloc(big_len);
    assert_non_null(big);
    memset(big, 'v', big_len);
    em_batch_chunks w;
    em_batch_chunks_init(&w, EM_CHUNK_MIN);
    ember_record small = {"a", 1, "b", 1, 0}, huge = {"h", 1, big, big_len, 7};
    assert_int_equal(em_batch_chunks_add(&w, &small), EMBER_OK);
    assert_int_equal(em_batch_chunks_add(&w, &huge), EMBER_OK);
    assert_int_equal(em_batch_chunks_add(&w, &small), EMBER_OK);
    em_batch_chunks_finish(&w);
    /* the small one, then the huge one in a chunk of its own (pages: room left for the
     * last small one) */
    assert_int_equal(w.n, 2);
    assert_int_equal(w.chunks[0].cap, EM_CHUNK_MIN);
    assert_true(w.chunks[1].cap >= big_len + EM_BATCH_HEADER);
    int64_t count = -1;
    for (size_t k = 0; k < 2; k++) {
        assert_int_equal(em_batch_count(w.chunks[k].p, w.chunks[k].len, &count), EMBER_OK);
        assert_int_equal(count, (int64_t)k + 1);
    }
    em_batch_reader r;
    ember_record rec;
    assert_int_equal(em_batch_open(w.chunks[1].p, w.chunks[1].len, &r, NULL), EMBER_OK);
    assert_int_equal(em_batch_next(&r, &rec), 1);
    assert_int_equal(rec.value_len, big_len);
    assert_memory_equal(rec.value, big, big_len);
    em_batch_chunks_free(&w);
    uint64_t in_use = 1;
    em_chunks_stats(NULL, &in_use);
    assert_int_equal(in_use, 0);
    free(big);
}

/* the pool keeps what was in use at once since the last trim, and no more: new chunks are cut
 * from a slab (the rest wait in the pool); a chunk of a size with no idle one takes the room
 * of idle chunks of other sizes */
static void test_chunks_kept_within_the_peak(void **state)
{
    (void)state;
    em_chunks_trim(); /* a new peak: nothing in use */
    em_chunk small, big;
    assert_int_equal(em_chunk_get(&small, EM_CHUNK_MIN), EMBER_OK);
    assert_int_equal((uintptr_t)small.p % EM_CHUNK_SLAB, 0); /* the first of a new slab */
    uint64_t idle = 0, in_use = 0;
    em_chunks_stats(&idle, &in_use);
    assert_int_equal(in_use, EM_CHUNK_MIN);
    assert_int_equal(idle, EM_CHUNK_SLAB - EM_CHUNK_MIN); /* the rest of the slab */
    memset(small.p, 'x', small.cap);                      /* writable, all of it */
    em_chunks_put(&small, 1);
    em_chunks_stats(&idle, &in_use);
    assert_int_equal(idle, EM_CHUNK_SLAB);
    assert_int_equal(in_use, 0);

    /* none of its size idle: a new slab, whose second half waits, takes the small ones' room */
    assert_int_equal(em_chunk_get(&big, EM_CHUNK_MAX), EMBER_OK);
    em_chunks_stats(&idle, &in_use);
    assert_int_equal(in_use, EM_CHUNK_MAX);
    assert_int_equal(idle, EM_CHUNK_SLAB - EM_CHUNK_MAX);
    memset(big.p, 'y', big.cap);
    em_chunk again;
    assert_int_equal(em_chunk_get(&again, EM_CHUNK_MAX), EMBER_OK); /* the waiting half */
    assert_ptr_equal(again.p, big.p + EM_CHUNK_MAX);
    em_chunks_put(&again, 1);
    em_chunks_put(&big, 1);
    em_chunks_stats(&idle, &in_use);
    assert_int_equal(in_use, 0);
    assert_int_equal(idle, EM_CHUNK_SLAB);

    /* jobs of one size after another's: the pool stays at one slab, its peak */
    em_chunk many[EM_CHUNK_SLAB / EM_CHUNK_MIN];
    for (int round = 0; round < 4; round++) {
        size_t size = round % 2 ? EM_CHUNK_MAX : EM_CHUNK_MIN, n = EM_CHUNK_SLAB / size;
        for (size_t i = 0; i < n; i++) assert_int_equal(em_chunk_get(&many[i], size), EMBER_OK);
        em_chunks_put(many, n);
        em_chunks_stats(&idle, &in_use);
        assert_int_equal(idle, EM_CHUNK_SLAB);
    }
    assert_int_equal(em_chunks_trim(), EM_CHUNK_SLAB);

    assert_int_equal(em_chunk_get(&big, EM_CHUNK_MAX), EMBER_OK); /* after a trim: a new peak */
    em_chunks_put(&big, 1);
    em_chunks_stats(&idle, NULL);
    assert_int_equal(idle, EM_CHUNK_SLAB);
    assert_int_equal(em_chunks_trim(), EM_CHUNK_SLAB);
}

static void test_every_truncation_rejected(void **state)
{
    (void)state;
    em_batch_writer w = {0};
    sample_batch(&w);
    assert_int_equal(read_all(w.buf.data, w.buf.len), 10);
    for (size_t len = 0; len < w.buf.len; len++) {
        uint8_t *cut = dup_exact(w.buf.data, len);
        assert_int_equal(read_all(cut, len), EMBER_ERR_MALFORMED);
        int64_t count = -1;
        if (len > 0) { /* (an empty buffer is a valid sequence of zero batches) */
            assert_int_equal(em_batch_count(cut, len, &count), EMBER_ERR_MALFORMED);
            assert_int_equal(count, -1); /* untouched on failure */
        }
        free(cut);
    }
    em_buf_free(&w.buf);
}

static void test_every_bit_flip_rejected(void **state)
{
    (void)state;
    em_batch_writer w = {0};
    sample_batch(&w);
    uint8_t *copy = dup_exact(w.buf.data, w.buf.len);
    int flips = 0;
    for (size_t i = 0; i < w.buf.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            copy[i] ^= (uint8_t)(1u << bit);
            int64_t rc = read_all(copy, w.buf.len);
            if (rc != EMBER_ERR_MALFORMED)
                fail_msg("flip of bit %d of byte %zu not detected (got %lld)", bit, i,
                         (long long)rc);
            copy[i] ^= (uint8_t)(1u << bit);
            flips++;
        }
    }
    assert_int_equal(flips, 8 * w.buf.len);
    assert_int_equal(read_all(copy, w.buf.len), 10); /* restored copy is valid again */
    free(copy);
    em_buf_free(&w.buf);
}

/* reseal recomputes the checksum of a batch whose header was edited on purpose, so the
 * checks behind the checksum are exercised too (payload length taken from the header,
 * capped at what the tests allocate). */
static void reseal(uint8_t *batch)
{
    uint32_t plen = em_get_u32le(batch + 8);
    if (plen > 10) plen = 10;
    em_put_u64le(batch + 16, em_batch_checksum(batch, batch + EM_BATCH_HEADER, plen));
}

static void test_header_count_mismatch(void **state)
{
    (void)state;
    em_batch_writer w = {0};
    const ember_record recs[] = {{"a", 1, "b", 1, 1}, {"c", 1, "d", 1, 2}};
    write_batch(&w, recs, 2);
    size_t payload = w.buf.len - EM_BATCH_HEADER; /* 2 * (3 varint bytes + 2) = 10 */
    assert_int_equal(payload, 10);
    uint8_t *copy = dup_exact(w.buf.data, w.buf.len);
    em_batch_reader r;
    ember_record rec;

    /* a header changed without resealing is caught by the checksum */
    em_put_u32le(copy + 4, 3);
    assert_int_equal(em_batch_open(copy, w.buf.len, &r, NULL), EMBER_ERR_MALFORMED);

    /* more records than could possibly fit (3 bytes each): rejected by open */
    em_put_u32le(copy + 4, 4);
    reseal(copy);
    assert_int_equal(em_batch_open(copy, w.buf.len, &r, NULL), EMBER_ERR_MALFORMED);
    em_put_u32le(copy + 4, UINT32_MAX);
    reseal(copy);
    assert_int_equal(em_batch_open(copy, w.buf.len, &r, NULL), EMBER_ERR_MALFORMED);

    /* three claimed, two present: the third read fails */
    em_put_u32le(copy + 4, 3);
    reseal(copy);
    assert_int_equal(em_batch_open(copy, w.buf.len, &r, NULL), EMBER_OK);
    assert_int_equal(em_batch_next(&r, &rec), 1);
    assert_int_equal(em_batch_next(&r, &rec), 1);
    assert_int_equal(em_batch_next(&r, &rec), EMBER_ERR_MALFORMED);

    /* one claimed, two present: the leftover bytes are an error, not a silent end */
    em_put_u32le(copy + 4, 1);
    reseal(copy);
    assert_int_equal(em_batch_open(copy, w.buf.len, &r, NULL), EMBER_OK);
    assert_int_equal(em_batch_next(&r, &rec), 1);
    assert_int_equal(em_batch_next(&r, &rec), EMBER_ERR_MALFORMED);

    /* reserved field must be zero; payload length must fit the buffer */
    em_put_u32le(copy + 4, 2);
    em_put_u32le(copy + 12, 1);
    reseal(copy);
    assert_int_equal(em_batch_open(copy, w.buf.len, &r, NULL), EMBER_ERR_MALFORMED);
    em_put_u32le(copy + 12, 0);
    em_put_u32le(copy + 8, UINT32_MAX);
    reseal(copy);
    assert_int_equal(em_batch_open(copy, w.buf.len, &r, NULL), EMBER_ERR_MALFORMED);
    em_put_u32le(copy + 8, (uint32_t)payload);
    reseal(copy);
    assert_int_equal(read_all(copy, w.buf.len), 2);
    free(copy);
    em_buf_free(&w.buf);
}

/* a record whose key length runs past the payload, with a valid checksum */
static void test_record_length_beyond_payload(void **state)
{
    (void)state;
    em_batch_writer w = {0};
    const ember_record rec1 = {"ab", 2, "cd", 2, 0};
    write_batch(&w, &rec1, 1);
    uint8_t *copy = dup_exact(w.buf.data, w.buf.len);
    uint8_t *payload = copy + EM_BATCH_HEADER;
    size_t plen = w.buf.len - EM_BATCH_HEADER;
    em_batch_reader r;
    ember_record rec;
    static const uint8_t bad_lens[][2] = {{3, 2}, {2, 3}, {0x7f, 0}, {0, 0x7f}};
    for (size_t i = 0; i < 4; i++) {
        payload[0] = bad_lens[i][0];
        payload[1] = bad_lens[i][1];
        em_put_u64le(copy + 16,
                     em_batch_checksum(copy, payload, plen)); /* keep the checksum valid */
        assert_int_equal(em_batch_open(copy, w.buf.len, &r, NULL), EMBER_OK);
        assert_int_equal(em_batch_next(&r, &rec), EMBER_ERR_MALFORMED);
    }
    /* a varint length that never ends inside the payload */
    memset(payload, 0xff, plen);
    em_put_u64le(copy + 16, em_batch_checksum(copy, payload, plen));
    assert_int_equal(em_batch_open(copy, w.buf.len, &r, NULL), EMBER_OK);
    assert_int_equal(em_batch_next(&r, &rec), EMBER_ERR_MALFORMED);
    free(copy);
    em_buf_free(&w.buf);
}

/* ---- varints ---------------------------------------------------------------------------- */

static int decode(const uint8_t *p, size_t n, uint64_t *v, size_t *used)
{
    uint8_t *copy = dup_exact(p, n);
    const uint8_t *q = copy;
    *v = 0xdeadbeef;
    int rc = em_varint_get(&q, copy + n, v);
    *used = (size_t)(q - copy);
    free(copy);
    return rc;
}

static void test_varint_round_trip(void **state)
{
    (void)state;
    static const uint64_t values[] = {
        0,         1, 127, 128, 300, 16383, 16384, UINT32_MAX, (uint64_t)INT64_MAX, UINT64_MAX - 1,
        UINT64_MAX};
    static const size_t sizes[] = {1, 1, 1, 2, 2, 2, 3, 5, 9, 10, 10};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        em_buf b = {0};
        assert_int_equal(em_buf_put_varint(&b, values[i]), EMBER_OK);
        assert_int_equal(b.len, sizes[i]);
        uint64_t v;
        size_t used;
        assert_int_equal(decode(b.data, b.len, &v, &used), 0);
        assert_true(v == values[i]);
        assert_int_equal(used, sizes[i]);
        /* every proper prefix is truncated */
        for (size_t cut = 0; cut < b.len; cut++) {
            assert_int_equal(decode(b.data, cut, &v, &used), -1);
            assert_int_equal(used, 0); /* *p is not advanced on failure */
        }
        em_buf_free(&b);
    }
    static const uint8_t u64max[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    uint64_t v;
    size_t used;
    assert_int_equal(decode(u64max, sizeof u64max, &v, &used), 0);
    assert_true(v == UINT64_MAX);
    /* zigzag keeps small magnitudes small */
    assert_int_equal(em_zigzag(0), 0);
    assert_int_equal(em_zigzag(-1), 1);
    assert_int_equal(em_zigzag(1), 2);
    assert_true(em_zigzag(INT64_MIN) == UINT64_MAX);
    assert_true(em_unzigzag(UINT64_MAX) == INT64_MIN);
    assert_true(em_unzigzag(em_zigzag(INT64_MAX)) == INT64_MAX);
}

static void test_varint_overlong_and_truncated(void **state)
{
    (void)state;
    uint64_t v;
    size_t used;
    /* tenth byte above 1 would overflow 64 bits */
    static const uint8_t over10[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    assert_int_equal(decode(over10, sizeof over10, &v, &used), -1);
    static const uint8_t over10b[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f};
    assert_int_equal(decode(over10b, sizeof over10b, &v, &used), -1);
    /* tenth byte with its continuation bit set: eleven bytes are never valid */
    static const uint8_t over11[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x80, 0x81, 0x00};
    assert_int_equal(decode(over11, sizeof over11, &v, &used), -1);
    uint8_t many[64];
    memset(many, 0x80, sizeof many);
    many[63] = 0;
    assert_int_equal(decode(many, sizeof many, &v, &used), -1);
    /* continuation bit on the last byte available */
    static const uint8_t open1[] = {0x80};
    assert_int_equal(decode(open1, 1, &v, &used), -1);
    static const uint8_t open3[] = {0xff, 0xff, 0xff};
    assert_int_equal(decode(open3, 3, &v, &used), -1);
    assert_int_equal(decode(NULL, 0, &v, &used), -1);
    /* a valid varint followed by more bytes consumes only its own */
    static const uint8_t two[] = {0xac, 0x02, 0x05};
    assert_int_equal(decode(two, sizeof two, &v, &used), 0);
    assert_int_equal(v, 300);
    assert_int_equal(used, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_edge_records),
        cmocka_unit_test(test_empty_batch),
        cmocka_unit_test(test_many_records_several_batches),
        cmocka_unit_test(test_batches_in_chunks),
        cmocka_unit_test(test_chunks_grow_to_the_writer_size),
        cmocka_unit_test(test_chunks_oversized_record),
        cmocka_unit_test(test_chunks_kept_within_the_peak),
        cmocka_unit_test(test_every_truncation_rejected),
        cmocka_unit_test(test_every_bit_flip_rejected),
        cmocka_unit_test(test_header_count_mismatch),
        cmocka_unit_test(test_record_length_beyond_payload),
        cmocka_unit_test(test_varint_round_trip),
        cmocka_unit_test(test_varint_overlong_and_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
