/* em_kafka_settings.h -- librdkafka properties a user passes through to every Kafka client of
 * a process: `--kafka-config KEY=VALUE` (repeatable) and `--kafka-config-file FILE` (one
 * KEY=VALUE a line, '#' comments), on ember-driver, ember-executor, ember-submit and
 * ember-topic, so a cluster secured with SASL or SSL can be read and written.
 *
 * Each setting is checked against librdkafka when it is given (an unknown property or a bad
 * value fails at startup with librdkafka's message), then applied to every client made after
 * ember's own connection settings (bootstrap.servers, client.id, socket.nagle.disable: the
 * user's win) and before the settings ember's reads and writes depend on (group.id, offsets
 * never committed, idempotence...: ember's win). Values are never logged (passwords). Add
 * settings before any thread makes a client: the list is read without a lock.
 */
#ifndef EM_KAFKA_SETTINGS_H
#define EM_KAFKA_SETTINGS_H

#include <stddef.h>

/* getopt_long values of the two options, and their usage lines */
enum { EM_OPT_KAFKA_CONFIG = 0x7200, EM_OPT_KAFKA_CONFIG_FILE };
#define EM_KAFKA_OPTIONS_HELP                                                                      \
    "  --kafka-config KEY=VALUE  a librdkafka property for every Kafka client (repeatable;\n"      \
    "                            e.g. security.protocol=SASL_SSL, sasl.username=...)\n"            \
    "  --kafka-config-file FILE  librdkafka properties, one KEY=VALUE a line ('#' comments)\n"

/* em_kafka_option handles one of the two options (err says what is wrong) */
int em_kafka_option(int opt, const char *value, char *err, size_t errlen);
/* em_kafka_setting_add adds "KEY=VALUE" */
int em_kafka_setting_add(const char *key_value, char *err, size_t errlen);
/* em_kafka_settings_file adds every KEY=VALUE line of path */
int em_kafka_settings_file(const char *path, char *err, size_t errlen);
/* em_kafka_settings_clear forgets them all (tests) */
void em_kafka_settings_clear(void);

#endif
