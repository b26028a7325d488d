/* em_kafka_settings.c -- the user's librdkafka properties (em_kafka_settings.h). */
#include "em_kafka_settings.h"

#include <ember/ember.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_kafka.h"
#include "em_kafka_int.h"

#define MAX_SETTINGS 128
#define MAX_LINE     4096

static struct setting {
    char *key, *value;
} settings[MAX_SETTINGS];
static size_t n_settings;

void em_kafka_settings_clear(void)
{
    for (size_t i = 0; i < n_settings; i++) {
        free(settings[i].key);
        free(settings[i].value);
    }
    n_settings = 0;
}

/* trim cuts blanks at both ends of s in place */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* add checks key=value against librdkafka, then keeps it (a later value of a key wins) */
static int add(const char *key, const char *value, char *err, size_t errlen)
{
    char why[512];
    rd_kafka_conf_t *scratch = rd_kafka_conf_new();
    rd_kafka_conf_res_t res =
        scratch ? rd_kafka_conf_set(scratch, key, value, why, sizeof why) : RD_KAFKA_CONF_INVALID;
    if (scratch) rd_kafka_conf_destroy(scratch);
    if (res != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "kafka setting %s: %s", key, scratch ? why : "out of memory");
        return EMBER_ERR_INVALID;
    }
    size_t i = 0;
    while (i < n_settings && strcmp(settings[i].key, key) != 0) i++;
    if (i == MAX_SETTINGS) {
        snprintf(err, errlen, "more than %d kafka settings", MAX_SETTINGS);
        return EMBER_ERR_INVALID;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        snprintf(err, errlen, "out of memory keeping kafka setting %s", key);
        return EMBER_ERR_NOMEM;
    }
    if (i < n_settings) {
        free(settings[i].key);
        free(settings[i].value);
    } else {
        n_settings++;
    }
    settings[i] = (struct setting){k, v};
    return EMBER_OK;
}

/* add_line adds "KEY=VALUE" (blanks around both trimmed) */
static int add_line(char *line, const char *where, char *err, size_t errlen)
{
    char *eq = strchr(line, '=');
    if (!eq) {
        snprintf(err, errlen, "%s: '%.64s' is not KEY=VALUE", where, trim(line));
        return EMBER_ERR_INVALID;
    }
    *eq = '\0';
    char *key = trim(line), *value = trim(eq + 1);
    if (!key[0]) {
        snprintf(err, errlen, "%s: a setting without a key", where);
        return EMBER_ERR_INVALID;
    }
    return add(key, value, err, errlen);
}

int em_kafka_setting_add(const char *key_value, char *err, size_t errlen)
{
    char line[MAX_LINE];
    if (!key_value || strlen(key_value) >= sizeof line) {
        snprintf(err, errlen, "--kafka-config: a KEY=VALUE of at most %d bytes", MAX_LINE - 1);
        return EMBER_ERR_INVALID;
    }
    snprintf(line, sizeof line, "%s", key_value);
    return add_line(line, "--kafka-config", err, errlen);
}

int em_kafka_settings_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "--kafka-config-file %s: %s", path, strerror(errno));
        return EMBER_ERR_IO;
    }
    char line[MAX_LINE], where[600];
    int rc = EMBER_OK;
    for (int n = 1; rc == EMBER_OK && fgets(line, sizeof line, f); n++) {
        snprintf(where, sizeof where, "%s line %d", path, n);
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errlen, "%s: longer than %d bytes", where, MAX_LINE - 2);
            rc = EMBER_ERR_INVALID;
            break;
        }
        char *s = trim(line);
        if (s[0] && s[0] != '#') rc = add_line(s, where, err, errlen);
    }
    fclose(f);
    return rc;
}

int em_kafka_option(int opt, const char *value, char *err, size_t errlen)
{
    return opt == EM_OPT_KAFKA_CONFIG ? em_kafka_setting_add(value, err, errlen)
                                      : em_kafka_settings_file(value, err, errlen);
}

int em_kafka_settings_apply(rd_kafka_conf_t *conf, char *err, size_t errlen)
{
    char why[512];
    for (size_t i = 0; i < n_settings; i++)
        if (rd_kafka_conf_set(conf, settings[i].key, settings[i].value, why, sizeof why) !=
            RD_KAFKA_CONF_OK) {
            em_kafka_set_err(err, errlen, "kafka setting %s refused: %s", settings[i].key, why);
            return EMBER_ERR_INVALID;
        }
    return EMBER_OK;
}
