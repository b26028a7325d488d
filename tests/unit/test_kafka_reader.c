/* test_kafka_reader.c -- em_kafka_reader against an in-process mock Kafka cluster.
 *
 * The reader keeps a partition assigned after a range; these tests check that it still
 * passes exactly the records of each range in offset order whatever the order of the ranges
 * (consecutive, a re-run, another partition between, records produced after the last range),
 * that it lets a partition go when idle, and that its errors are the one-shot reader's. The
 * reference for every range is the one-shot em_kafka_read_range on a fresh consumer.
 *
 * Ranges of 1000 records or more that no kept partition continues are read by the reader's own
 * fetcher (em_kafka_fetch.c): the "fetch" topic holds runs of records produced uncompressed,
 * with LZ4 and with gzip (which the fetcher hands to librdkafka in the middle of a range),
 * with null and empty keys and values and set timestamps, and every field of every record must
 * equal what librdkafka passes on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "em_kafka.h"
#include "em_time.h"

#define TOPIC       "reader"
#define PARTITIONS  2
#define STALL_MS    5000
#define FETCH_TOPIC "fetch"
#define FETCH_RUN   1500 /* records per codec run in FETCH_TOPIC */
#define FETCH_TS    1700000000000LL

typedef struct fixture {
    rd_kafka_t *host; /* the handle the mock cluster lives on */
    rd_kafka_mock_cluster_t *mc;
    const char *bootstrap;
    rd_kafka_t *producer;
    int64_t produced[PARTITIONS]; /* records produced to each partition */
    int64_t fetch_records;        /* records in FETCH_TOPIC's one partition */
} fixture;

/* seen: the values a range passed on, in order */
typedef struct seen {
    char values[4096][16];
    size_t n;
} seen;

static int collect(void *arg, const ember_record *rec)
{
    seen *s = arg;
    if (s->n == sizeof s->values / sizeof s->values[0] || rec->value_len >= 16) return -1;
    memcpy(s->values[s->n], rec->value, rec->value_len);
    s->values[s->n++][rec->value_len] = '\0';
    return 0;
}

/* produce writes n records "pP-oO" to partition p and waits for them */
static void produce(fixture *f, int32_t p, int n)
{
    for (int i = 0; i < n; i++) {
        char value[16];
        int len = snprintf(value, sizeof value, "p%d-o%lld", (int)p, (long long)f->produced[p]++);
        assert_int_equal(rd_kafka_producev(f->producer, RD_KAFKA_V_TOPIC(TOPIC),
                                           RD_KAFKA_V_PARTITION(p),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_VALUE(value, (size_t)len), RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    assert_int_equal(rd_kafka_flush(f->producer, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* fetch_record: record i of FETCH_TOPIC: a null key every 7th, an empty one every 5th, a null
 * value every 11th, an empty one every 13th, else values of 0 to 199 bytes */
static void fetch_record(int64_t i, char *key, int *key_len, char *value, int *value_len)
{
    *key_len = i % 7 == 0 ? -1 : i % 5 == 0 ? 0 : snprintf(key, 32, "key-%lld", (long long)i);
    if (i % 11 == 0) {
        *value_len = -1;
    } else if (i % 13 == 0) {
        *value_len = 0;
    } else {
        *value_len = (int)(i * 37 % 200);
        for (int j = 0; j < *value_len; j++) value[j] = (char)('a' + (i + j) % 26);
    }
}

/* produce_run writes FETCH_RUN records of FETCH_TOPIC compressed with `codec` */
static void produce_run(fixture *f, const char *codec)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(
        rd_kafka_conf_set(conf, "bootstrap.servers", f->bootstrap, errstr, sizeof errstr),
        RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "compression.codec", codec, errstr, sizeof errstr),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set(conf, "linger.ms", "20", errstr, sizeof errstr);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    assert_non_null(p);
    for (int r = 0; r < FETCH_RUN; r++, f->fetch_records++) {
        char key[32], value[200];
        int key_len, value_len;
        fetch_record(f->fetch_records, key, &key_len, value, &value_len);
        void *k = key_len < 0 ? NULL : key, *v = value_len < 0 ? NULL : value;
        size_t kn = key_len < 0 ? 0 : (size_t)key_len, vn = value_len < 0 ? 0 : (size_t)value_len;
        assert_int_equal(
            rd_kafka_producev(p, RD_KAFKA_V_TOPIC(FETCH_TOPIC), RD_KAFKA_V_PARTITION(0),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(k, kn),
                              RD_KAFKA_V_VALUE(v, vn),
                              RD_KAFKA_V_TIMESTAMP(FETCH_TS + f->fetch_records), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    assert_int_equal(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
    f->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    assert_non_null(f->host);
    f->mc = rd_kafka_mock_cluster_new(f->host, 1);
    assert_non_null(f->mc);
    assert_int_equal(rd_kafka_mock_topic_create(f->mc, TOPIC, PARTITIONS, 1), 0);
    f->bootstrap = rd_kafka_mock_cluster_bootstraps(f->mc);
    char err[256];
    assert_int_equal(em_kafka_producer_new(f->bootstrap, &f->producer, err, sizeof err), EMBER_OK);
    produce(f, 0, 300);
    produce(f, 1, 100);
    assert_int_equal(rd_kafka_mock_topic_create(f->mc, FETCH_TOPIC, 1, 1), 0);
    produce_run(f, "none");
    produce_run(f, "lz4");
    produce_run(f, "gzip"); /* not the fetcher's: librdkafka reads these */
    produce_run(f, "lz4");
    produce_run(f, "none");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    rd_kafka_destroy(f->producer);
    rd_kafka_mock_cluster_destroy(f->mc);
    rd_kafka_destroy(f->host);
    free(f);
    return 0;
}

/* expect_range reads [from, until) of partition p with the reader and checks it against the
 * one-shot reader's records */
static void expect_range(fixture *f, em_kafka_reader *rd, int32_t p, int64_t from, int64_t until)
{
    static seen got, want;
    got.n = want.n = 0;
    char err[256] = "";
    int64_t n = -1;
    int rc = em_kafka_reader_read(rd, TOPIC, p, from, until, STALL_MS, collect, &got, &n, err,
                                  sizeof err);
    if (rc != EMBER_OK) fail_msg("reader: %s", err);
    rd_kafka_t *fresh;
    assert_int_equal(em_kafka_consumer_new(f->bootstrap, &fresh, err, sizeof err), EMBER_OK);
    assert_int_equal(em_kafka_read_range(fresh, TOPIC, p, from, until, STALL_MS, collect, &want,
                                         NULL, err, sizeof err),
                     EMBER_OK);
    rd_kafka_destroy(fresh);
    assert_int_equal(n, until - from);
    assert_int_equal(got.n, (size_t)(until - from));
    assert_int_equal(want.n, got.n);
    for (size_t i = 0; i < got.n; i++) {
        char expected[16];
        snprintf(expected, sizeof expected, "p%d-o%lld", (int)p, (long long)(from + (int64_t)i));
        assert_string_equal(got.values[i], expected);
        assert_string_equal(want.values[i], expected);
    }
}

static void consecutive_ranges_rerun_and_tail(void **state)
{
    fixture *f = *state;
    em_kafka_reader *rd;
    char err[256];
    assert_int_equal(em_kafka_reader_new(f->bootstrap, &rd, err, sizeof err), EMBER_OK);
    assert_string_equal(em_kafka_reader_bootstrap(rd), f->bootstrap);
    expect_range(f, rd, 0, 0, 100); /* a batch */
    assert_int_equal(em_kafka_reader_kept(rd), 1);
    expect_range(f, rd, 0, 100, 250); /* the next one continues the kept queue */
    expect_range(f, rd, 1, 0, 40);    /* another partition beside it */
    assert_int_equal(em_kafka_reader_kept(rd), 2);
    expect_range(f, rd, 0, 100, 250); /* a re-run of the last batch starts over */
    expect_range(f, rd, 0, 250, 300);
    expect_range(f, rd, 1, 40, 100);
    produce(f, 0, 50); /* records that came after the last range */
    expect_range(f, rd, 0, 300, 350);
    expect_range(f, rd, 0, 10, 20); /* back in time */
    expect_range(f, rd, 0, 20, 20); /* empty: nothing, and no change */
    assert_int_equal(em_kafka_reader_kept(rd), 2);
    em_kafka_reader_let_go_idle(rd, em_now_ms() + EM_KAFKA_KEEP_IDLE_MS);
    assert_int_equal(em_kafka_reader_kept(rd), 0);
    expect_range(f, rd, 0, 20, 30); /* let go, it reads as before */
    em_kafka_reader_free(rd);
}

static void errors_are_the_one_shot_readers(void **state)
{
    fixture *f = *state;
    em_kafka_reader *rd;
    char err[256] = "";
    seen got = {.n = 0};
    assert_int_equal(em_kafka_reader_new(f->bootstrap, &rd, err, sizeof err), EMBER_OK);
    assert_int_equal(
        em_kafka_reader_read(rd, TOPIC, 0, 5, 2, STALL_MS, collect, &got, NULL, err, sizeof err),
        EMBER_ERR_INVALID);
    assert_non_null(strstr(err, "invalid argument"));
    /* beyond the high watermark: no record comes, the stall timer ends it with the offsets */
    int64_t end = f->produced[1];
    assert_int_equal(
        em_kafka_reader_read(rd, TOPIC, 1, end, end + 5, 300, collect, &got, NULL, err, sizeof err),
        EMBER_ERR_TIMEOUT);
    assert_non_null(strstr(err, "no record for 300 ms"));
    assert_int_equal(em_kafka_reader_kept(rd), 0); /* a failed range lets its partition go */
    expect_range(f, rd, 1, 0, 10);
    em_kafka_reader_free(rd);
    em_kafka_reader_free(NULL);
}

/* fields: what a range passed on, field by field */
typedef struct fields {
    int64_t n, next;
    int failed;
} fields;

/* check_fields compares each record with fetch_record's, at offsets from `next` on */
static int check_fields(void *arg, const ember_record *rec)
{
    fields *fl = arg;
    char key[32], value[200];
    int key_len, value_len;
    int64_t i = fl->next++;
    fl->n++;
    fetch_record(i, key, &key_len, value, &value_len);
    int ok = rec->key_len == (size_t)(key_len < 0 ? 0 : key_len) &&
             rec->value_len == (size_t)(value_len < 0 ? 0 : value_len) &&
             (key_len <= 0 || memcmp(rec->key, key, (size_t)key_len) == 0) &&
             (value_len <= 0 || memcmp(rec->value, value, (size_t)value_len) == 0) &&
             (key_len >= 0 || rec->key == NULL) && (value_len >= 0 || rec->value == NULL) &&
             rec->timestamp == FETCH_TS + i;
    if (!ok && !fl->failed++)
        print_error("record at offset %lld: key %zu bytes, value %zu bytes, ts %lld\n",
                    (long long)i, rec->key_len, rec->value_len, (long long)rec->timestamp);
    return 0;
}

/* expect_fields reads [from, until) of FETCH_TOPIC with rd (or one-shot librdkafka) */
static void expect_fields(fixture *f, em_kafka_reader *rd, int64_t from, int64_t until)
{
    fields fl = {0, from, 0};
    char err[256] = "";
    int64_t n = -1;
    int rc;
    if (rd) {
        rc = em_kafka_reader_read(rd, FETCH_TOPIC, 0, from, until, STALL_MS, check_fields, &fl, &n,
                                  err, sizeof err);
    } else {
        rd_kafka_t *fresh;
        assert_int_equal(em_kafka_consumer_new(f->bootstrap, &fresh, err, sizeof err), EMBER_OK);
        rc = em_kafka_read_range(fresh, FETCH_TOPIC, 0, from, until, STALL_MS, check_fields, &fl,
                                 &n, err, sizeof err);
        rd_kafka_destroy(fresh);
    }
    if (rc != EMBER_OK) fail_msg("[%lld, %lld): %s", (long long)from, (long long)until, err);
    assert_int_equal(fl.failed, 0);
    assert_int_equal(fl.n, until - from);
    assert_int_equal(n, until - from);
}

static void fetcher_passes_every_field(void **state)
{
    fixture *f = *state;
    em_kafka_reader *rd;
    char err[256];
    assert_int_equal(em_kafka_reader_new(f->bootstrap, &rd, err, sizeof err), EMBER_OK);
    int64_t all = f->fetch_records;
    int64_t fetched, fallbacks, before;
    expect_fields(f, NULL, 0, all); /* the reference: librdkafka passes the same fields */
    expect_fields(f, rd, 0, all);   /* none, lz4, then gzip: librdkafka reads from there */
    em_kafka_reader_fetched(rd, &fetched, &fallbacks);
    /* librdkafka sends a batch uncompressed when gzip would not shrink it (a small batch at
     * a linger boundary): the fetcher may read the first few records of the gzip run */
    assert_in_range(fetched, 2 * FETCH_RUN, 3 * FETCH_RUN - 1);
    assert_int_equal(fallbacks, 1);
    before = fetched;
    expect_fields(f, rd, FETCH_RUN + 17, 2 * FETCH_RUN - 3); /* inside the LZ4 run */
    expect_fields(f, rd, 3 * FETCH_RUN, all - 1);            /* lz4, then none */
    expect_fields(f, rd, all - 1000, all);
    em_kafka_reader_fetched(rd, &fetched, &fallbacks);
    assert_int_equal(fetched - before, (FETCH_RUN - 20) + (2 * FETCH_RUN - 1) + 1000);
    assert_int_equal(fallbacks, 1);
    expect_fields(f, rd, 3 * FETCH_RUN - 1000, 3 * FETCH_RUN + 1000); /* gzip, handed over */
    em_kafka_reader_fetched(rd, &fetched, &fallbacks);
    assert_int_equal(fallbacks, 2);
    em_kafka_reader_let_go_idle(rd, em_now_ms() + EM_KAFKA_KEEP_IDLE_MS);
    assert_int_equal(em_kafka_reader_kept(rd), 0);
    /* past the end: the fetcher passes what there is, librdkafka's stall timer ends it */
    fields fl = {0, all - 1200, 0};
    int64_t n = -1;
    assert_int_equal(em_kafka_reader_read(rd, FETCH_TOPIC, 0, all - 1200, all + 5, 300,
                                          check_fields, &fl, &n, err, sizeof err),
                     EMBER_ERR_TIMEOUT);
    assert_non_null(strstr(err, "no record for 300 ms"));
    assert_int_equal(n, 1200);
    assert_int_equal(fl.failed, 0);
    em_kafka_reader_fetched(rd, &fetched, &fallbacks);
    assert_int_equal(fallbacks, 3); /* "records not written yet" */
    em_kafka_reader_free(rd);
}

/* stop_after: the caller's function stopping a range */
static int stop_after(void *arg, const ember_record *rec)
{
    (void)rec;
    return --*(int *)arg == 0 ? EMBER_ERR_CANCELLED : 0;
}

static void fetcher_stops_when_told(void **state)
{
    fixture *f = *state;
    em_kafka_reader *rd;
    char err[256];
    assert_int_equal(em_kafka_reader_new(f->bootstrap, &rd, err, sizeof err), EMBER_OK);
    int left = 1234;
    int64_t n = -1;
    assert_int_equal(em_kafka_reader_read(rd, FETCH_TOPIC, 0, 0, f->fetch_records, STALL_MS,
                                          stop_after, &left, &n, err, sizeof err),
                     EMBER_ERR_CANCELLED);
    assert_int_equal(n, 1234);
    expect_fields(f, rd, 100, 2100); /* the next range is whole (a response was left unread) */
    int64_t fetched, fallbacks;
    em_kafka_reader_fetched(rd, &fetched, &fallbacks);
    assert_int_equal(fetched, 1234 + 2000);
    assert_int_equal(fallbacks, 0);
    assert_true(em_kafka_reader_holding(rd)); /* its fetch buffers */
    em_kafka_reader_let_go_idle(rd, em_now_ms() + EM_KAFKA_KEEP_IDLE_MS);
    assert_false(em_kafka_reader_holding(rd)); /* given back when idle */
    expect_fields(f, rd, 0, FETCH_RUN);        /* and made again */
    em_kafka_reader_fetched(rd, &fetched, &fallbacks);
    assert_int_equal(fetched, 1234 + 2000 + FETCH_RUN);
    em_kafka_reader_free(rd);
}

/* count: the records a range passed on */
static int count(void *arg, const ember_record *rec)
{
    (void)rec;
    ++*(int64_t *)arg;
    return 0;
}

/* ranges of two topics in turn: the fetcher reads them all and asks each topic's leaders once */
static void fetcher_keeps_leaders_of_several_topics(void **state)
{
    fixture *f = *state;
    const char *other = "fetch-other";
    assert_int_equal(rd_kafka_mock_topic_create(f->mc, other, 1, 1), 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(rd_kafka_producev(f->producer, RD_KAFKA_V_TOPIC(other),
                                           RD_KAFKA_V_PARTITION(0),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_VALUE("v", (size_t)1), RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(f->producer, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    em_kafka_reader *rd;
    char err[256];
    assert_int_equal(em_kafka_reader_new(f->bootstrap, &rd, err, sizeof err), EMBER_OK);
    for (int round = 0; round < 3; round++) {
        const char *topics[] = {FETCH_TOPIC, other};
        for (int t = 0; t < 2; t++) {
            int64_t n = 0, passed = 0;
            assert_int_equal(em_kafka_reader_read(rd, topics[t], 0, 0, 1000, STALL_MS, count,
                                                  &passed, &n, err, sizeof err),
                             EMBER_OK);
            assert_int_equal(n, 1000);
            assert_int_equal(passed, 1000);
        }
    }
    int64_t fetched, fallbacks;
    em_kafka_reader_fetched(rd, &fetched, &fallbacks);
    assert_int_equal(fetched, 6 * 1000); /* every range by the fetcher */
    assert_int_equal(fallbacks, 0);
    assert_int_equal(em_kafka_reader_lookups(rd), 2); /* once per topic, not per range */
    em_kafka_reader_free(rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(consecutive_ranges_rerun_and_tail),
        cmocka_unit_test(errors_are_the_one_shot_readers),
        cmocka_unit_test(fetcher_passes_every_field),
        cmocka_unit_test(fetcher_stops_when_told),
        cmocka_unit_test(fetcher_keeps_leaders_of_several_topics),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
