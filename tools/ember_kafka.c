/* ember_kafka.c -- ember-kafka: an embedded local Kafka broker for development and tests.
 *
 * Hosts librdkafka's mock cluster (real Kafka protocol on loopback TCP, data in memory only,
 * retention capped at about 5 MiB per partition: see FACTS.md) on a client handle with Nagle
 * off, creates the topics asked for, publishes the bootstrap address on stdout and, if asked,
 * in a file written atomically (temp file + rename), then waits for SIGTERM or SIGINT, which
 * stop it cleanly (exit 0). The brokers' ports are chosen by the kernel: 2.0.2 cannot fix them.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "em_log.h"

#define MAX_BROKERS 64
#define MAX_PARTITIONS 100000

/* topic_spec: one --topic name:partitions option. */
typedef struct topic_spec {
    char *name;       /* topic name; owned */
    int partitions;   /* partition count, 1..MAX_PARTITIONS */
} topic_spec;

/* options: the parsed command line. */
typedef struct options {
    int brokers;                /* --brokers, default 1 */
    topic_spec *topics;         /* --topic entries; owned */
    int n_topics;               /* their count */
    const char *bootstrap_file; /* --bootstrap-file or NULL */
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ember-kafka [--brokers N] [--topic NAME:PARTITIONS]... "
            "[--bootstrap-file PATH]\n"
            "Runs a local in-memory Kafka cluster (librdkafka's mock cluster) until SIGTERM or\n"
            "SIGINT. Prints 'ember-kafka: bootstrap HOST:PORT[,...]' once it is ready.\n"
            "  --brokers N              number of brokers (default 1)\n"
            "  --topic NAME:PARTITIONS  create a topic (replication 1); repeatable\n"
            "  --bootstrap-file PATH    also write the bootstrap string to PATH (atomically)\n"
            "  --help                   show this help\n");
}

static int bad_usage(const char *fmt, const char *what)
{
    fprintf(stderr, "ember-kafka: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\nTry 'ember-kafka --help'.\n");
    return 2;
}

/* parse_int reads a whole decimal int in [lo, hi]; returns 0 or -1. */
static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

/* option_value returns the value of `--name value` or `--name=value`, or NULL if `arg` is not
 * that option; *i advances past a separate value. *missing is set when the value is absent. */
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

static int add_topic(options *o, const char *spec)
{
    const char *colon = strrchr(spec, ':');
    int parts;
    if (!colon || colon == spec || parse_int(colon + 1, 1, MAX_PARTITIONS, &parts) != 0) return -1;
    topic_spec *t = realloc(o->topics, sizeof *t * (size_t)(o->n_topics + 1));
    if (!t) return -1;
    o->topics = t;
    char *name = strndup(spec, (size_t)(colon - spec));
    if (!name) return -1;
    o->topics[o->n_topics].name = name;
    o->topics[o->n_topics].partitions = parts;
    o->n_topics++;
    return 0;
}

static void free_topics(options *o)
{
    for (int i = 0; i < o->n_topics; i++) free(o->topics[i].name);
    free(o->topics);
}

/* parse_args fills o; returns -1 to exit 0 (help), 0 to run, or an exit code > 0. */
static int parse_args(int argc, char **argv, options *o)
{
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return -1;
        } else if ((v = option_value("--brokers", argc, argv, &i, &missing))) {
            if (parse_int(v, 1, MAX_BROKERS, &o->brokers) != 0)
                return bad_usage("--brokers needs a number from 1 to 64, not '%s'", v);
        } else if ((v = option_value("--topic", argc, argv, &i, &missing))) {
            if (add_topic(o, v) != 0)
                return bad_usage("--topic needs NAME:PARTITIONS (partitions 1..100000), not '%s'",
                                 v);
        } else if ((v = option_value("--bootstrap-file", argc, argv, &i, &missing))) {
            if (!v[0]) return bad_usage("%s needs a path", "--bootstrap-file");
            o->bootstrap_file = v;
        } else if (missing) {
            return bad_usage("%s needs a value", argv[i]);
        } else {
            return bad_usage("unknown argument '%s'", argv[i]);
        }
    }
    return 0;
}

/* write_bootstrap_file writes "bootstrap\n" to path via a temp file renamed into place, so a
 * reader never sees a partial line. Returns 0 or -1 (errno set). */
static int write_bootstrap_file(const char *path, const char *bootstrap)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    int ok = fprintf(f, "%s\n", bootstrap) > 0;
    ok = (fflush(f) == 0) && ok;
    ok = (fsync(fileno(f)) == 0) && ok;
    int saved = errno;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        saved = errno ? errno : saved;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    return 0;
}

/* log_cb routes librdkafka's log lines (from its threads) to em_log. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    em_log(level <= 3 ? EM_LOG_ERROR : level == 4 ? EM_LOG_WARN : EM_LOG_INFO,
           "librdkafka: %s fac=%s", buf, fac);
}

/* host_handle creates the client handle the mock cluster lives on. Its socket settings are
 * the brokers' own (Nagle off: see FACTS.md); it connects to nothing itself, so its notices
 * (such as "No bootstrap.servers configured") are dropped with log_level=4. */
static rd_kafka_t *host_handle(void)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    static const char *const kv[] = {"socket.nagle.disable", "true", "client.id", "ember-kafka",
                                     "log_level", "4", NULL};
    for (int i = 0; kv[i]; i += 2) {
        if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
            em_error("cannot configure the broker host: %s", errstr);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        em_error("cannot create the broker host: %s", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* serve creates the cluster and its topics, publishes the address, and waits for a signal
 * from `stop`. Returns the exit code. */
static int serve(const options *o, rd_kafka_t *rk, const sigset_t *stop)
{
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, o->brokers);
    if (!mc) {
        em_error("cannot start the mock kafka cluster brokers=%d", o->brokers);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < o->n_topics && rc == 0; i++) {
        const topic_spec *t = &o->topics[i];
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, t->name, t->partitions, 1);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "ember-kafka: cannot create topic '%s': %s\n", t->name,
                    rd_kafka_err2str(e));
            rc = 1;
        } else {
            em_info("topic created topic=%s partitions=%d", t->name, t->partitions);
        }
    }
    /* stdout first, then the file: once the file exists, both are published. */
    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
    if (rc == 0) {
        printf("ember-kafka: bootstrap %s\n", bootstrap);
        fflush(stdout);
    }
    if (rc == 0 && o->bootstrap_file && write_bootstrap_file(o->bootstrap_file, bootstrap) != 0) {
        fprintf(stderr, "ember-kafka: cannot write %s: %s\n", o->bootstrap_file,
                strerror(errno));
        rc = 1;
    }
    if (rc == 0) {
        em_info("broker ready bootstrap=%s brokers=%d topics=%d", bootstrap, o->brokers,
                o->n_topics);
        int sig = 0;
        while (sigwait(stop, &sig) != 0) {
        }
        em_info("broker stopping signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
        if (o->bootstrap_file) unlink(o->bootstrap_file); /* no stale address left behind */
    }
    rd_kafka_mock_cluster_destroy(mc);
    return rc;
}

int main(int argc, char **argv)
{
    em_log_init("ember-kafka", EM_LOG_INFO);
    options o = {1, NULL, 0, NULL};
    int rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        free_topics(&o);
        return rc < 0 ? 0 : rc;
    }
    /* Block the stop signals before librdkafka starts its threads, which inherit the mask:
     * only sigwait in this thread receives them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    rd_kafka_t *rk = host_handle();
    if (!rk) {
        free_topics(&o);
        return 1;
    }
    rc = serve(&o, rk, &stop);
    rd_kafka_destroy(rk);
    free_topics(&o);
    em_info("broker stopped");
    return rc;
}
