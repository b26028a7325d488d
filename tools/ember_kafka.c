/* ember_kafka.c -- ember-kafka: an embedded local Kafka broker for development and tests.
 *
 * Hosts librdkafka's mock cluster (real Kafka protocol on loopback TCP, data in memory only,
 * retention capped at about 5 MiB per partition: see FACTS.md) on a client handle with Nagle
 * off, creates the topics asked for, publishes the bootstrap address on stdout and, if asked,
 * in a file written atomically (temp file + rename), then waits for SIGTERM or SIGINT, which
 * stop it cleanly (exit 0). The brokers' ports are chosen by the kernel: 2.0.2 cannot fix them.
 * Options are read with getopt_long and checked with em_args.h. Exit codes: 0 after a signal,
 * 1 when the cluster, a topic or the bootstrap file cannot be made, 2 for bad usage (a one-line
 * error and a hint to --help).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <ember/ember.h>

#include "em_args.h"
#include "em_log.h"

#define MAX_BROKERS    64
#define MAX_PARTITIONS 100000

/* topic_spec: one --topic name:partitions option. */
typedef struct topic_spec {
    char *name;     /* topic name; owned */
    int partitions; /* partition count, 1..MAX_PARTITIONS */
} topic_spec;

/* options: the parsed command line. */
typedef struct options {
    int brokers;                   /* --brokers, default 1 */
    topic_spec *topics;            /* --topic entries; owned */
    int n_topics;                  /* their count */
    char bootstrap_file[PATH_MAX]; /* --bootstrap-file, or "" for none */
} options;

static void usage(FILE *f)
{
    fprintf(f, "usage: ember-kafka [--brokers N] [--topic NAME:PARTITIONS]... "
               "[--bootstrap-file PATH]\n"
               "Runs a local in-memory Kafka cluster (librdkafka's mock cluster) until SIGTERM or\n"
               "SIGINT. Prints 'ember-kafka: bootstrap HOST:PORT[,...]' once it is ready.\n"
               "  --brokers N              number of brokers (default 1)\n"
               "  --topic NAME:PARTITIONS  create a topic (replication 1); repeatable\n"
               "  --bootstrap-file PATH    also write the bootstrap string to PATH (atomically)\n"
               "  --help                   show this help\n");
}

/* add_topic appends the topic of one --topic NAME:PARTITIONS value. Returns EMBER_OK, or
 * EMBER_ERR_INVALID or EMBER_ERR_NOMEM with the message in err. */
static int add_topic(options *o, const char *spec, char *err, size_t errlen)
{
    const char *colon = strrchr(spec, ':');
    uint32_t parts;
    if (!colon || colon == spec ||
        em_arg_u32("--topic", colon + 1, 1, MAX_PARTITIONS, &parts, err, errlen) != EMBER_OK) {
        snprintf(err, errlen, "--topic: '%s' is not NAME:PARTITIONS (partitions 1..%d)", spec,
                 MAX_PARTITIONS);
        return EMBER_ERR_INVALID;
    }
    topic_spec *t = realloc(o->topics, sizeof *t * (size_t)(o->n_topics + 1));
    if (t) o->topics = t;
    char *name = t ? strndup(spec, (size_t)(colon - spec)) : NULL;
    if (!name) {
        snprintf(err, errlen, "out of memory");
        return EMBER_ERR_NOMEM;
    }
    o->topics[o->n_topics].name = name;
    o->topics[o->n_topics].partitions = (int)parts;
    o->n_topics++;
    return EMBER_OK;
}

static void free_topics(options *o)
{
    for (int i = 0; i < o->n_topics; i++) free(o->topics[i].name);
    free(o->topics);
}

/* parse_args fills o; returns -1 to exit 0 (help), 0 to run, or an exit code > 0 with the
 * message printed: 2 for bad usage (with a hint to --help), 1 when out of memory. */
static int parse_args(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {{"brokers", required_argument, NULL, 'b'},
                                             {"topic", required_argument, NULL, 't'},
                                             {"bootstrap-file", required_argument, NULL, 'f'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    char err[512];
    uint32_t brokers;
    int rc = EMBER_OK;
    opterr = 0; /* getopt's own messages would name argv[0]; ours say "ember-kafka: " */
    /* "+:" stops at the first word that is no option (so argv[at] is always the word being
     * read) and makes a missing value ':' rather than '?'. */
    for (int at = optind; rc == EMBER_OK; at = optind) {
        switch (getopt_long(argc, argv, "+:h", longopts, NULL)) {
        case 'b':
            rc = em_arg_u32("--brokers", optarg, 1, MAX_BROKERS, &brokers, err, sizeof err);
            if (rc == EMBER_OK) o->brokers = (int)brokers;
            break;
        case 't': rc = add_topic(o, optarg, err, sizeof err); break;
        case 'f':
            rc = em_arg_string("--bootstrap-file", optarg, o->bootstrap_file,
                               sizeof o->bootstrap_file, err, sizeof err);
            break;
        case 'h': usage(stdout); return -1;
        case ':':
            snprintf(err, sizeof err, "%s needs a value", argv[at]);
            rc = EMBER_ERR_INVALID;
            break;
        case -1:
            if (at == argc) return 0; /* else argv[at] is "--" or a word that is no option */
            /* fall through */
        default: /* '?': an unknown option, or --help=VALUE */
            snprintf(err, sizeof err, "unknown argument '%s'", argv[at]);
            rc = EMBER_ERR_INVALID;
            break;
        }
    }
    fprintf(stderr, "ember-kafka: %s\n", err);
    if (rc == EMBER_ERR_NOMEM) return 1;
    fprintf(stderr, "Try 'ember-kafka --help'.\n");
    return 2;
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
    em_log(level <= 3   ? EM_LOG_ERROR
           : level == 4 ? EM_LOG_WARN
                        : EM_LOG_INFO,
           "librdkafka: %s fac=%s", buf, fac);
}

/* host_handle creates the client handle the mock cluster lives on. Its socket settings are
 * the brokers' own (Nagle off: see FACTS.md); it connects to nothing itself, so its notices
 * (such as "No bootstrap.servers configured") are dropped with log_level=4. */
static rd_kafka_t *host_handle(void)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    static const char *const kv[] = {
        "socket.nagle.disable", "true", "client.id", "ember-kafka", "log_level", "4", NULL};
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
    if (rc == 0 && o->bootstrap_file[0] &&
        write_bootstrap_file(o->bootstrap_file, bootstrap) != 0) {
        fprintf(stderr, "ember-kafka: cannot write %s: %s\n", o->bootstrap_file, strerror(errno));
        rc = 1;
    }
    if (rc == 0) {
        em_info("broker ready bootstrap=%s brokers=%d topics=%d", bootstrap, o->brokers,
                o->n_topics);
        int sig = 0;
        while (sigwait(stop, &sig) != 0) {
        }
        em_info("broker stopping signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
        if (o->bootstrap_file[0]) unlink(o->bootstrap_file); /* no stale address left behind */
    }
    rd_kafka_mock_cluster_destroy(mc);
    return rc;
}

int main(int argc, char **argv)
{
    em_log_init("ember-kafka", EM_LOG_INFO);
    options o = {.brokers = 1};
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
