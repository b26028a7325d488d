/* stream_tail.c -- tailing a topic with librdkafka (see stream_tail.h). */
#include "stream_tail.h"

#include <stdio.h>

int st_consumer_new(const char *bootstrap, int fetch_wait_ms, rd_kafka_t **out, char *err,
                    size_t errlen)
{
    char wait[16];
    snprintf(wait, sizeof wait, "%d", fetch_wait_ms);
    /* allow.auto.create.topics is left out: the 2.0.2 mock broker does not know it (a warning
     * on every start); the bench's topics exist before any tail opens them */
    const char *kv[] = {"bootstrap.servers",
                        bootstrap,
                        "client.id",
                        "ember-bench-tail",
                        "socket.nagle.disable",
                        "true",
                        "group.id",
                        "ember-bench",
                        "enable.auto.commit",
                        "false",
                        "enable.auto.offset.store",
                        "false",
                        "auto.offset.reset",
                        "error",
                        "enable.partition.eof",
                        "true",
                        "queued.min.messages",
                        "1000000",
                        "fetch.wait.max.ms",
                        wait,
                        NULL};
    *out = NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (int i = 0; kv[i]; i += 2)
        if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], err, errlen) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return -1;
        }
    *out = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errlen);
    if (!*out) rd_kafka_conf_destroy(conf); /* still ours on failure */
    return *out ? 0 : -1;
}

ssize_t st_next(rd_kafka_queue_t *q, rd_kafka_message_t **msgs, size_t size, int wait_ms, char *err,
                size_t errlen)
{
    ssize_t n = rd_kafka_consume_batch_queue(q, 0, msgs, size);
    if (n == 0) {
        rd_kafka_message_t *m = rd_kafka_consume_queue(q, wait_ms);
        if (m) msgs[n++] = m;
    }
    if (n < 0) {
        snprintf(err, errlen, "consume: %s", rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    ssize_t kept = 0, failed = 0;
    for (ssize_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = msgs[i];
        if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && !failed++)
            snprintf(err, errlen, "consume: %s", rd_kafka_message_errstr(m));
        if (m->err)
            rd_kafka_message_destroy(m);
        else
            msgs[kept++] = m;
    }
    if (failed) {
        for (ssize_t i = 0; i < kept; i++) rd_kafka_message_destroy(msgs[i]);
        return -1;
    }
    return kept;
}

int st_write_ready(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    fprintf(f, "ready\n");
    if (fclose(f) != 0) return -1;
    return rename(tmp, path);
}
