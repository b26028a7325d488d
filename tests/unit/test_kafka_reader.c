/* test_kafka_reader.c -- em_kafka_reader against an in-process mock Kafka cluster.
 *
 * The reader keeps a partition assigned after a range; these tests check that it still
 * passes exactly the records of each range in offset order whatever the order of the ranges
 * (consecutive, a re-run, another partition between, records produced after the last range),
 * that it lets a partition go when idle, and that its errors are the one-shot reader's. The
 * reference for every range is the one-shot em_kafka_read_range on a fresh consumer.
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

#define TOPIC      "reader"
#define PARTITIONS 2
#define STALL_MS   5000

typedef struct fixture {
    rd_kafka_t *host; /* the handle the mock cluster lives on */
    rd_kafka_mock_cluster_t *mc;
    const char *bootstrap;
    rd_kafka_t *producer;
    int64_t produced[PARTITIONS]; /* records produced to each partition */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(consecutive_ranges_rerun_and_tail),
        cmocka_unit_test(errors_are_the_one_shot_readers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
