/* ember_topic.c -- ember-topic: a small Kafka console tool (produce, dump, offsets, create).
 *
 *   produce  reads lines from stdin and produces one record per line (value = the line
 *            without its newline; with --key-sep C the part before the first C is the key and
 *            the rest the value; a line without C gets a null key), then waits for every
 *            delivery report, and fails if the broker has already dropped some of them by
 *            retention (compares low watermarks after with high watermarks before).
 *   dump     prints every record from the low to the high watermark of every partition, in
 *            partition then offset order: `partition<TAB>offset<TAB>key<TAB>value` (key and
 *            value written as raw bytes; a null key prints as empty).
 *   offsets  prints `partition<TAB>low<TAB>high` per partition, then `total<TAB>N`.
 *   create   creates a topic with the admin API (CreateTopics). librdkafka 2.0.2's mock
 *            cluster (ember-kafka) does not implement CreateTopics: create then fails at
 *            once with a message pointing to `ember-kafka --topic NAME:PARTITIONS`.
 *
 * No command but create ever creates a topic: a missing one is a one-line error (exit 1).
 * Exit codes: 0 success, 1 failure, 2 bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "em_kafka.h"
#include "em_log.h"

#define DEFAULT_TIMEOUT_MS 10000

/* options: the parsed command line. */
typedef struct options {
    const char *command;   /* produce | dump | offsets | create */
    const char *bootstrap; /* --bootstrap */
    const char *topic;     /* --topic */
    int key_sep;           /* --key-sep character, or -1 for none */
    int partitions;        /* --partitions (create) */
    int replication;       /* --replication (create), default 1 */
    int timeout_ms;        /* --timeout-ms: metadata, stall and delivery timeout */
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ember-topic produce --bootstrap B --topic T [--key-sep C]\n"
            "       ember-topic dump    --bootstrap B --topic T\n"
            "       ember-topic offsets --bootstrap B --topic T\n"
            "       ember-topic create  --bootstrap B --topic T --partitions N "
            "[--replication R]\n"
            "common option: --timeout-ms MS (default %d)\n"
            "  produce  one record per stdin line; with --key-sep the text before the first C\n"
            "           is the key ('\\t' means TAB)\n"
            "  dump     print partition<TAB>offset<TAB>key<TAB>value for every record\n"
            "  offsets  print partition<TAB>low<TAB>high per partition and total<TAB>N\n"
            "  create   create a topic\n",
            DEFAULT_TIMEOUT_MS);
}

static int bad_usage(const char *fmt, const char *what)
{
    fprintf(stderr, "ember-topic: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\nTry 'ember-topic --help'.\n");
    return 2;
}

static int fail(const char *msg)
{
    fprintf(stderr, "ember-topic: %s\n", msg);
    return 1;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

/* option_value: see ember_kafka.c (`--name value` or `--name=value`). */
static const char *option_value(const char *name, int argc, char **argv, int *i, int *missing)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0) return NULL;
    if (arg[n] == '=') return arg + n + 1;
    if (arg[n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

/* parse_opt handles one option at argv[*i]; returns 0 or an exit code. */
static int parse_opt(int argc, char **argv, int *i, options *o)
{
    int missing = 0;
    const char *v;
    if ((v = option_value("--bootstrap", argc, argv, i, &missing))) {
        o->bootstrap = v;
    } else if ((v = option_value("--topic", argc, argv, i, &missing))) {
        o->topic = v;
    } else if ((v = option_value("--key-sep", argc, argv, i, &missing))) {
        if (strcmp(v, "\\t") == 0)
            o->key_sep = '\t';
        else if (strlen(v) == 1)
            o->key_sep = (unsigned char)v[0];
        else
            return bad_usage("--key-sep needs one character, not '%s'", v);
    } else if ((v = option_value("--partitions", argc, argv, i, &missing))) {
        if (parse_int(v, 1, 100000, &o->partitions) != 0)
            return bad_usage("--partitions needs a number from 1 to 100000, not '%s'", v);
    } else if ((v = option_value("--replication", argc, argv, i, &missing))) {
        if (parse_int(v, 1, 1000, &o->replication) != 0)
            return bad_usage("--replication needs a positive number, not '%s'", v);
    } else if ((v = option_value("--timeout-ms", argc, argv, i, &missing))) {
        if (parse_int(v, 1, 3600000, &o->timeout_ms) != 0)
            return bad_usage("--timeout-ms needs a number of milliseconds, not '%s'", v);
    } else if (missing) {
        return bad_usage("%s needs a value", argv[*i]);
    } else {
        return bad_usage("unknown argument '%s'", argv[*i]);
    }
    return 0;
}

/* parse_args fills o; returns -1 to exit 0 (help), 0 to run, or an exit code > 0. */
static int parse_args(int argc, char **argv, options *o)
{
    if (argc < 2) return bad_usage("%s", "missing command (produce, dump, offsets or create)");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return -1;
    }
    o->command = argv[1];
    if (strcmp(o->command, "produce") && strcmp(o->command, "dump")
        && strcmp(o->command, "offsets") && strcmp(o->command, "create"))
        return bad_usage("unknown command '%s'", o->command);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return -1;
        }
        int rc = parse_opt(argc, argv, &i, o);
        if (rc) return rc;
    }
    if (!o->bootstrap || !o->bootstrap[0]) return bad_usage("%s is required", "--bootstrap");
    if (!o->topic || !o->topic[0]) return bad_usage("%s is required", "--topic");
    if (strcmp(o->command, "create") == 0 && o->partitions <= 0)
        return bad_usage("%s is required by create", "--partitions");
    if (strcmp(o->command, "produce") != 0 && o->key_sep >= 0)
        return bad_usage("%s applies to produce only", "--key-sep");
    return 0;
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
        int rc = em_kafka_watermarks(rk, o->topic, parts[i], o->timeout_ms, &m->low[i],
                                     &m->high[i], err, errlen);
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
                 "ember-kafka broker keeps about 5 MiB per partition: use more partitions)",
                 (long long)lost, o->topic);
        return fail(err);
    }
    return 0;
}

static int cmd_produce(const options *o)
{
    char err[512];
    rd_kafka_t *rk;
    int32_t *parts = NULL;
    int n_parts = 0;
    if (em_kafka_producer_new(o->bootstrap, &rk, err, sizeof err) != EMBER_OK) return fail(err);
    /* Refuse a missing topic rather than let the broker create it with default settings. */
    int rc = em_kafka_partitions(rk, o->topic, o->timeout_ms, &parts, &n_parts, err, sizeof err);
    rc = rc == EMBER_OK ? produce_checked(o, rk, parts, n_parts) : fail(err);
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
    if (dump) em_info("dumped records=%lld topic=%s partitions=%d", (long long)total, o->topic,
                      n_parts);
    return 0;
}

/* ---- create ----------------------------------------------------------------------------- */

/* create_result checks the CreateTopics result event; returns 0 or 1 (message printed). */
static int create_result(const options *o, rd_kafka_event_t *ev)
{
    char msg[768];
    if (!ev) {
        snprintf(msg, sizeof msg, "creating topic '%s': no answer from %s within %d ms",
                 o->topic, o->bootstrap, o->timeout_ms);
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
    if (rc == 0)
        printf("created topic %s with %d partitions\n", o->topic, o->partitions);
    return rc;
}

int main(int argc, char **argv)
{
    em_log_init("ember-topic", EM_LOG_WARN);
    options o = {NULL, NULL, NULL, -1, 0, 1, DEFAULT_TIMEOUT_MS};
    int rc = parse_args(argc, argv, &o);
    if (rc != 0) return rc < 0 ? 0 : rc;
    if (strcmp(o.command, "produce") == 0) return cmd_produce(&o);
    if (strcmp(o.command, "dump") == 0) return cmd_read(&o, 1);
    if (strcmp(o.command, "offsets") == 0) return cmd_read(&o, 0);
    return cmd_create(&o);
}
