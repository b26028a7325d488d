/* em_kafka_int.h -- what em_kafka.c shares with em_kafka_range.c; not for other layers. */
#ifndef EM_KAFKA_INT_H
#define EM_KAFKA_INT_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#define EM_KAFKA_POLL_MS 100 /* longest single wait inside a read or flush loop */

/* em_kafka_set_err writes a formatted one-line reason into err (errlen bytes; err may be
 * NULL). */
void em_kafka_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* em_kafka_bootstrap_of copies the handle's bootstrap.servers into buf, for messages. */
const char *em_kafka_bootstrap_of(rd_kafka_t *rk, char *buf, size_t len);

/* em_kafka_map_err turns a librdkafka error into the closest ember error code. */
int em_kafka_map_err(rd_kafka_resp_err_t e);

/* em_kafka_consumer_waiting is em_kafka_consumer_new with fetch.wait.max.ms = fetch_wait_ms
 * (how long a broker may hold a fetch that finds nothing new). */
int em_kafka_consumer_waiting(const char *bootstrap, int fetch_wait_ms, rd_kafka_t **out, char *err,
                              size_t errlen);

#endif
