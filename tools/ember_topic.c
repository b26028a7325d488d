/* ember_topic.c -- ember-topic: a small Kafka console tool (produce, dump, offsets, create).
 *
 * Usage: `ember-topic COMMAND [options]`, the command first; the options after it are read
 * with getopt_long and checked with em_args.h.
 *
 *   produce  reads lines from stdin and produces one record per line (value = the line
 *            without its newline; with --key-sep C the part before the first C is the key and
 *            the rest the value; a line without C gets a null key), then waits for every
 *            delivery report, and fails if the broker has already dropped some of them by
 *            retention (compares low watermarks after with high watermarks before).
 *            --compression CODEC (none, gzip, snappy, lz4, zstd) sets the producer's
 *            compression.codec for the topic: batches are compressed before they are sent
 *            and stored compressed by the broker, so an ember-kafka partition (about 5 MiB)
 *            keeps several times more records; such a producer lingers 100 ms (not 5) so
 *            that batches are large enough to compress well on a busy machine too.
 *   dump     prints every record from the low to the high watermark of every partition, in
 *            partition then offset order: `partition<TAB>offset<TAB>key<TAB>value` (key and
 *            value written as raw bytes; a null key prints as empty).
 *   offsets  prints `partition<TAB>low<TAB>high` per partition, then `total<TAB>N`.
 *   create   creates a topic with the admin API (CreateTopics). librdkafka 2.0.2's mock
 *            cluster (ember-kafka) does not implement CreateTopics: create then fails at
 *            once with a message pointing to `ember-kafka --topic NAME:PARTITIONS`.
 *
 * No command but create ever creates a topic: a missing one is a one-line error (exit 1).
 * Exit codes: 0 success, 1 failure, 2 bad usage (a one-line error and a hint to --help).
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "em_args.h"
#include "em_kafka.h"
#include "em_kafka_settings.h"
#include "em_log.h"

#define DEFAULT_TIMEOUT_MS 10000
#define MAX_TIMEOUT_MS     3600000
#define MAX_PARTITIONS     100000
#define MAX_REPLICATION    1000
#define MAX_TOPIC_NAME     249 /* Kafka's limit on a topic name */

/* options: the parsed command line. */
typedef struct options {
    const char *command;            /* produce | dump | offsets | create */
    char bootstrap[1024];           /* --bootstrap, as the driver's --kafka */
    char topic[MAX_TOPIC_NAME + 1]; /* --topic */
    int key_sep;                    /* --key-sep character, or -1 for none */
    char compression[8];            /* --compression codec (produce), "" for the default */
    int partitions;                 /* --partitions (create) */
    int replication;                /* --replication (create), default 1 */
    int timeout_ms;                 /* --timeout-ms: metadata, stall and delivery timeout */
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ember-topic produce --bootstrap B --topic T [--key-sep C] "
            "[--compression CODEC]\n"
            "       ember-topic dump    --bootstrap B --topic T\n"
            "       ember-topic offsets --bootstrap B --topic T\n"
            "       ember-topic create  --bootstrap B --topic T --partitions N "
            "[--replication R]\n"
            "common options: --timeout-ms MS (default %d); --kafka-config KEY=VALUE\n"
            "  (repeatable) and --kafka-config-file FILE: librdkafka properties (SASL, SSL...)\n"
            "  produce  one record per stdin line; with --key-sep the text before the first C\n"
            "           is the key ('\\t' means TAB); --compression none|gzip|snappy|lz4|zstd\n"
            "           compresses the batches (the broker stores them compressed; default:\n"
            "           librdkafka's, none)\n"
            "  dump     print partition<TAB>offset<TAB>key<TAB>value for every record\n"
            "  offsets  print partition<TAB>low<TAB>high per partition and total<TAB>N\n"
            "  create   create a topic\n",
            DEFAULT_TIMEOUT_MS);
}

static int fail(const char *msg)
{
    fprintf(stderr, "ember-topic: %s\n", msg);
    return 1;
}

/* set_key_sep reads --key-sep: one character, or the two characters \t for TAB. */
static int set_key_sep(options *o, const char *v, char *err, size_t errlen)
{
    if (strcmp(v, "\\t") == 0) {
        o->key_sep = '\t';
    } else if (strlen(v) == 1) {
        o->key_sep = (unsigned char)v[0];
    } else {
        snprintf(err, errlen, "--key-sep: '%s' is not one character ('\\t' means TAB)", v);
        return EMBER_ERR_INVALID;
    }
    return EMBER_OK;
}

#define COMPRESSED_LINGER_MS 100 /* linger.ms of a producer that compresses */

/* set_compression reads --compression: a codec librdkafka knows for compression.codec. */
static int set_compression(options *o, const char *v, char *err, size_t errlen)
{
    static const char *const codecs[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++) {
        if (strcmp(v, codecs[i]) == 0) {
            snprintf(o->compression, sizeof o->compression, "%s", v);
            return EMBER_OK;
        }
    }
    snprintf(err, errlen, "--compression: '%s' is not none, gzip, snappy, lz4 or zstd", v);
    return EMBER_ERR_INVALID;
}

/* set_option applies option c, as getopt_long returned it, with value v. Returns EMBER_OK, or
 * EMBER_ERR_INVALID with the message in err. */
static int set_option(options *o, int c, const char *v, char *err, size_t errlen)
{
    int *num; /* the field a whole-number option sets */
    uint32_t n;
    int rc;
    switch (c) {
    case 'b':
        return em_arg_string("--bootstrap", v, o->bootstrap, sizeof o->bootstrap, err, errlen);
    case 't': return em_arg_string("--topic", v, o->topic, sizeof o->topic, err, errlen);
    case 'k': return set_key_sep(o, v, err, errlen);
    case 'c': return set_compression(o, v, err, errlen);
    case EM_OPT_KAFKA_CONFIG:
    case EM_OPT_KAFKA_CONFIG_FILE: return em_kafka_option(c, v, err, errlen);
    case 'p':
        num = &o->partitions;
        rc = em_arg_u32("--partitions", v, 1, MAX_PARTITIONS, &n, err, errlen);
        break;
    case 'r':
        num = &o->replication;
        rc = em_arg_u32("--replication", v, 1, MAX_REPLICATION, &n, err, errlen);
        break;
    default: /* 'T': --timeout-ms */
        num = &o->timeout_ms;
        rc = em_arg_u32("--timeout-ms", v, 1, MAX_TIMEOUT_MS, &n, err, errlen);
        break;
    }
    if (rc == EMBER_OK) *num = (int)n;
    return rc;
}

/* check_options checks what no single option can: the required ones, and that each option
 * suits the command. Returns 0, or 2 with the message in err. */
static int check_options(const options *o, char *err, size_t errlen)
{
    const char *what = NULL;
    if (!o->bootstrap[0])
        what = "--bootstrap is required";
    else if (!o->topic[0])
        what = "--topic is required";
    else if (strcmp(o->command, "create") == 0 && o->partitions <= 0)
        what = "--partitions is required by create";
    else if (strcmp(o->command, "produce") != 0 && o->key_sep >= 0)
        what = "--key-sep applies to produce only";
    else if (strcmp(o->command, "produce") != 0 && o->compression[0])
        what = "--compression applies to produce only";
    if (what) snprintf(err, errlen, "%s", what);
    return what ? 2 : 0;
}

/* parse_args fills o from `ember-topic COMMAND [options]`; returns -1 to exit 0 (help), 0 to
 * run, or 2 (bad usage) with the message in err. */
static int parse_args(int argc, char **argv, options *o, char *err, size_t errlen)
{
    static const struct option longopts[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"key-sep", required_argument, NULL, 'k'},
        {"compression", required_argument, NULL, 'c'},
        {"partitions", required_argument, NULL, 'p'},
        {"replication", required_argument, NULL, 'r'},
        {"timeout-ms", required_argument, NULL, 'T'},
        {"kafka-config", required_argument, NULL, EM_OPT_KAFKA_CONFIG},
        {"kafka-config-file", required_argument, NULL, EM_OPT_KAFKA_CONFIG_FILE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    if (argc < 2) {
        snprintf(err, errlen, "missing command (produce, dump, offsets or create)");
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return -1;
    }
    o->command = argv[1];
    if (strcmp(o->command, "produce") && strcmp(o->command, "dump") &&
        strcmp(o->command, "offsets") && strcmp(o->command, "create")) {
        snprintf(err, errlen, "unknown command '%s'", o->command);
        return 2;
    }
    /* The options follow the command, which stands in args[0] where getopt_long expects the
     * program name. "+:" stops at the first word that is no option, so args[at] is always the
     * word being read, and makes a missing value ':' rather than '?'. */
    char **args = argv + 1;
    int nargs = argc - 1, at = optind, c, rc = EMBER_OK;
    opterr = 0; /* getopt's own messages would name argv[0]; ours say "ember-topic: " */
    while (rc == EMBER_OK && (c = getopt_long(nargs, args, "+:h", longopts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return -1;
        } else if (c == ':') {
            snprintf(err, errlen, "%s needs a value", args[at]);
            rc = EMBER_ERR_INVALID;
        } else if (c == '?') { /* an unknown option, or --help=VALUE */
            snprintf(err, errlen, "unknown argument '%s'", args[at]);
            rc = EMBER_ERR_INVALID;
        } else {
            rc = set_option(o, c, optarg, err, errlen);
        }
        at = optind;
    }
    if (rc == EMBER_OK && at < nargs) /* "--", or a word that is no option */
        snprintf(err, errlen, "unknown argument '%s'", args[at]);
    else if (rc == EMBER_OK)
        return check_options(o, err, errlen);
    return 2;
}

/* ---- produce ---------------------------------------------------------------------------- */

/* produce_lines writes one record per stdin line to the sink; returns 0 or an ember_err. */
static int produce_lines(const options *o, em_kafka_sink *sink, char *err, size_t errlen)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = EMBER_OK;
    while (rc == EMBER_OK && (len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
        ember_record rec = {NULL, 0, line, (size_t)len, 0};
        char *sep = o->key_sep >= 0 ? memchr(line, o->key_sep, (size_t)len) : NULL;
        if (sep) {
            rec.key = line;
            rec.key_len = (size_t)(sep - line);
            rec.value = sep + 1;
            rec.value_len = (size_t)(len - (sep + 1 - line));
        }
        rc = em_kafka_sink_write(sink, &rec, err, errlen);
    }
    if (rc == EMBER_OK && ferror(stdin)) {
        snprintf(err, errlen, "cannot read stdin: %s", strerror(errno));
        rc = EMBER_ERR_IO;
    }
    free(line);
    return rc;
}

/* marks: the watermarks of every partition of the topic at one moment. */
typedef struct marks {
    int64_t *low;  /* low watermark per partition (index as in the partition list) */
    int64_t *high; /* high watermark per partition */
} marks;

/* marks_take fills m (arrays of n, owned by the caller) for the partitions `parts`. */
static int marks_take(rd_kafka_t *rk, const options *o, const int32_t *parts, int n, marks *m,
                      char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        int rc = em_kafka_watermarks(rk, o->topic, parts[i], o->timeout_ms, &m->low[i], &m->high[i],
                                     err, errlen);
        if (rc != EMBER_OK) return rc;
    }
    return EMBER_OK;
}

/* dropped counts this run's records already removed by retention: offsets from the old high
 * watermark up to the new low one (the mock broker keeps only about 5 MiB per partition). */
static int64_t dropped(const marks *before, const marks *after, int n)
{
    int64_t lost = 0;
    for (int i = 0; i < n; i++) {
        int64_t first_ours = before->high[i] > before->low[i] ? before->high[i] : before->low[i];
        if (after->low[i] > first_ours) lost += after->low[i] - first_ours;
    }
    return lost;
}

/* produce_checked sends stdin to the topic and checks that every record was acknowledged and
 * is still kept by the broker. Returns the exit code. */
static int produce_checked(const options *o, rd_kafka_t *rk, const int32_t *parts, int n)
{
    char err[512];
    int64_t *w = calloc((size_t)n * 4, sizeof *w);
    if (!w) return fail("out of memory");
    marks before = {w, w + n}, after = {w + 2 * n, w + 3 * n};
    em_kafka_sink *sink = NULL;
    int rc = marks_take(rk, o, parts, n, &before, err, sizeof err);
    if (rc == EMBER_OK) rc = em_kafka_sink_open(rk, o->topic, &sink, err, sizeof err);
    if (rc == EMBER_OK) {
        rc = produce_lines(o, sink, err, sizeof err);
        char cerr[512];
        int64_t delivered = 0;
        int crc = em_kafka_sink_close(sink, o->timeout_ms * 6, &delivered, cerr, sizeof cerr);
        if (rc == EMBER_OK && crc != EMBER_OK) {
            rc = crc;
            memcpy(err, cerr, sizeof err);
        }
        if (rc == EMBER_OK) printf("produced %lld records to %s\n", (long long)delivered, o->topic);
    }
    if (rc == EMBER_OK) rc = marks_take(rk, o, parts, n, &after, err, sizeof err);
    int64_t lost = rc == EMBER_OK ? dropped(&before, &after, n) : 0;
    free(w);
    if (rc != EMBER_OK) return fail(err);
    if (lost > 0) {
        snprintf(err, sizeof err,
                 "the broker already dropped %lld of these records of %s by retention (an "
                 "ember-kafka broker keeps about 5 MiB per partition%s)",
                 (long long)lost, o->topic,
                 o->compression[0] && strcmp(o->compression, "none") != 0
                     ? ": use more partitions"
                     : ": produce with --compression lz4 (the broker keeps the batches "
                       "compressed), or use more partitions");
        return fail(err);
    }
    return 0;
}

/* compressed_topic creates the producer's handle for the topic with compression.codec set.
 * librdkafka returns an existing handle, configuration unchanged, to a later
 * rd_kafka_topic_new of the same name, so the sink (em_kafka_sink_open asks for the topic
 * with the default configuration) produces through this one while the caller holds it.
 * Called after em_kafka_partitions has found the topic: a topic handle makes the producer
 * ask for the topic's metadata by name, which auto-creates a missing topic on some brokers.
 * Returns the handle (the caller destroys it after the sink is closed), or NULL with err. */
static rd_kafka_topic_t *compressed_topic(const options *o, rd_kafka_t *rk, char *err,
                                          size_t errlen)
{
    char errstr[256];
    rd_kafka_topic_conf_t *tconf = rd_kafka_topic_conf_new();
    if (!tconf) {
        snprintf(err, errlen, "out of memory creating a topic configuration");
        return NULL;
    }
    if (rd_kafka_topic_conf_set(tconf, "compression.codec", o->compression, errstr,
                                sizeof errstr) != RD_KAFKA_CONF_OK) {
        rd_kafka_topic_conf_destroy(tconf);
        snprintf(err, errlen, "--compression %s refused: %s", o->compression, errstr);
        return NULL;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, tconf); /* takes tconf */
    if (!rkt)
        snprintf(err, errlen, "--compression %s: cannot use topic '%s': %s", o->compression,
                 o->topic, rd_kafka_err2str(rd_kafka_last_error()));
    return rkt;
}

static int cmd_produce(const options *o)
{
    char err[512];
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt = NULL; /* the topic with --compression's codec, held until done */
    int32_t *parts = NULL;
    int n_parts = 0;
    /* compressed batches linger longer: larger batches compress better, whatever the load
     * (at 5 ms a busy machine made batches so small that LZ4 saved little) */
    int compressing = o->compression[0] && strcmp(o->compression, "none") != 0;
    if (em_kafka_producer_lingering(o->bootstrap, compressing ? COMPRESSED_LINGER_MS : 5, &rk, err,
                                    sizeof err) != EMBER_OK)
        return fail(err);
    /* Refuse a missing topic rather than let the broker create it with default settings. */
    int rc = em_kafka_partitions(rk, o->topic, o->timeout_ms, &parts, &n_parts, err, sizeof err);
    if (rc == EMBER_OK && o->compression[0] && !(rkt = compressed_topic(o, rk, err, sizeof err)))
        rc = EMBER_ERR_INVALID;
    rc = rc == EMBER_OK ? produce_checked(o, rk, parts, n_parts) : fail(err);
    if (rkt) rd_kafka_topic_destroy(rkt);
    free(parts);
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- dump and offsets ------------------------------------------------------------------- */

/* dump_record prints one record of partition *arg at `offset`. */
static int dump_record(void *arg, int64_t offset, const ember_record *rec)
{
    printf("%d\t%lld\t", (int)*(const int32_t *)arg, (long long)offset);
    if (rec->key_len) fwrite(rec->key, 1, rec->key_len, stdout);
    putchar('\t');
    if (rec->value_len) fwrite(rec->value, 1, rec->value_len, stdout);
    putchar('\n');
    return ferror(stdout) ? EMBER_ERR_IO : EMBER_OK;
}

static int cmd_read(const options *o, int dump)
{
    char err[512];
    rd_kafka_t *rk;
    int32_t *parts = NULL;
    int n_parts = 0;
    if (em_kafka_consumer_new(o->bootstrap, &rk, err, sizeof err) != EMBER_OK) return fail(err);
    int rc = em_kafka_partitions(rk, o->topic, o->timeout_ms, &parts, &n_parts, err, sizeof err);
    int64_t total = 0;
    for (int i = 0; rc == EMBER_OK && i < n_parts; i++) {
        int64_t low, high, n = 0;
        rc = em_kafka_watermarks(rk, o->topic, parts[i], o->timeout_ms, &low, &high, err,
                                 sizeof err);
        if (rc != EMBER_OK) break;
        if (!dump) {
            printf("%d\t%lld\t%lld\n", (int)parts[i], (long long)low, (long long)high);
            total += high - low;
            continue;
        }
        rc = em_kafka_read_range_offsets(rk, o->topic, parts[i], low, high, o->timeout_ms,
                                         dump_record, &parts[i], &n, err, sizeof err);
        if (rc == EMBER_ERR_IO)
            snprintf(err, sizeof err, "cannot write stdout: %s", strerror(errno));
        total += n;
    }
    free(parts);
    rd_kafka_destroy(rk);
    if (rc == EMBER_OK && !dump) printf("total\t%lld\n", (long long)total);
    if (fflush(stdout) != 0 && rc == EMBER_OK) {
        snprintf(err, sizeof err, "cannot write stdout: %s", strerror(errno));
        rc = EMBER_ERR_IO;
    }
    if (rc != EMBER_OK) return fail(err);
    if (dump)
        em_info("dumped records=%lld topic=%s partitions=%d", (long long)total, o->topic, n_parts);
    return 0;
}

/* ---- create ----------------------------------------------------------------------------- */

/* create_result checks the CreateTopics result event; returns 0 or 1 (message printed). */
static int create_result(const options *o, rd_kafka_event_t *ev)
{
    char msg[768];
    if (!ev) {
        snprintf(msg, sizeof msg, "creating topic '%s': no answer from %s within %d ms", o->topic,
                 o->bootstrap, o->timeout_ms);
        return fail(msg);
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(msg, sizeof msg, "creating topic '%s' failed (broker %s): %s", o->topic,
                 o->bootstrap, rd_kafka_event_error_string(ev));
        return fail(msg);
    }
    size_t cnt = 0;
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    const rd_kafka_topic_result_t **tr =
        res ? rd_kafka_CreateTopics_result_topics(res, &cnt) : NULL;
    if (cnt != 1) {
        snprintf(msg, sizeof msg, "creating topic '%s': unexpected answer from %s", o->topic,
                 o->bootstrap);
        return fail(msg);
    }
    rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[0]);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *why = rd_kafka_topic_result_error_string(tr[0]);
        snprintf(msg, sizeof msg, "creating topic '%s' failed (broker %s): %s", o->topic,
                 o->bootstrap, why && why[0] ? why : rd_kafka_err2str(e));
        return fail(msg);
    }
    return 0;
}

/* check_creatable fails unless `topic` is missing and the cluster has a controller (which
 * CreateTopics needs). librdkafka 2.0.2's mock cluster (ember-kafka) reports controller 0,
 * which is none of its brokers, and has no CreateTopics handler: it can create topics only
 * at start (ember-kafka --topic NAME:PARTITIONS). Returns 0, or 1 with the message printed. */
static int check_creatable(const options *o, rd_kafka_t *rk)
{
    char err[768];
    int32_t *parts = NULL;
    int n_parts = 0;
    int rc = em_kafka_partitions(rk, o->topic, o->timeout_ms, &parts, &n_parts, err, sizeof err);
    free(parts);
    if (rc == EMBER_OK) {
        snprintf(err, sizeof err, "kafka topic '%s' already exists with %d partitions (broker %s)",
                 o->topic, n_parts, o->bootstrap);
        return fail(err);
    }
    if (rc != EMBER_ERR_NOT_FOUND) return fail(err);
    const struct rd_kafka_metadata *md = NULL; /* all topics: never creates one */
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, o->timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, sizeof err, "kafka metadata from %s failed: %s", o->bootstrap,
                 rd_kafka_err2str(e));
        return fail(err);
    }
    int32_t controller = rd_kafka_controllerid(rk, 0); /* as reported by that metadata */
    int found = 0;
    for (int i = 0; i < md->broker_cnt; i++) found |= md->brokers[i].id == controller;
    rd_kafka_metadata_destroy(md);
    if (!found) {
        snprintf(err, sizeof err,
                 "kafka broker %s cannot create topics (it names no controller; an ember-kafka "
                 "broker creates topics only at start: ember-kafka --topic %s:%d)",
                 o->bootstrap, o->topic, o->partitions);
        return fail(err);
    }
    return 0;
}

static int cmd_create(const options *o)
{
    char err[512];
    rd_kafka_t *rk;
    if (em_kafka_consumer_new(o->bootstrap, &rk, err, sizeof err) != EMBER_OK) return fail(err);
    if (check_creatable(o, rk) != 0) {
        rd_kafka_destroy(rk);
        return 1;
    }
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(o->topic, o->partitions, o->replication, err, sizeof err);
    if (!nt) {
        rd_kafka_destroy(rk);
        return fail(err);
    }
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opts, o->timeout_ms, err, sizeof err);
    rd_kafka_AdminOptions_set_operation_timeout(opts, o->timeout_ms, err, sizeof err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, o->timeout_ms + 2000);
    int rc = create_result(o, ev);
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
    if (rc == 0) printf("created topic %s with %d partitions\n", o->topic, o->partitions);
    return rc;
}

int main(int argc, char **argv)
{
    em_log_init("ember-topic", EM_LOG_WARN);
    options o = {.key_sep = -1, .replication = 1, .timeout_ms = DEFAULT_TIMEOUT_MS};
    char err[512];
    int rc = parse_args(argc, argv, &o, err, sizeof err);
    if (rc == 2) fprintf(stderr, "ember-topic: %s\nTry 'ember-topic --help'.\n", err);
    if (rc != 0) return rc < 0 ? 0 : rc;
    if (strcmp(o.command, "produce") == 0) return cmd_produce(&o);
    if (strcmp(o.command, "dump") == 0) return cmd_read(&o, 1);
    if (strcmp(o.command, "offsets") == 0) return cmd_read(&o, 0);
    return cmd_create(&o);
}
