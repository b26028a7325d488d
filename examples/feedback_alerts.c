/* feedback_alerts.c -- example streaming job: customer feedback from two sources -> sentiment
 * -> alerts for very negative and very positive messages, and each source's average per minute
 * in Redis.
 *
 * Input, one JSON object per record (parsed with jansson, Debian's libjansson):
 *   topic --twitter (default "feedback-twitter"):
 *       {"id":"t17","user":"@ana","text":"Love the new app","ts_ms":1764756000000}
 *   topic --slack (default "feedback-slack"), another shape, the time in seconds as text:
 *       {"channel":"#support","message":{"id":"s4","body":"the app crashes","ts":"1764756000.250"}}
 * A record that is not such an object (or whose id is not 1 to 64 characters, or whose time is
 * not positive) is malformed and goes, unchanged, to --dead-letter ("feedback-dead-letter").
 *
 * Sentiment: the message's words (runs of ASCII letters, lower-cased) are looked up in the
 * word-weight lexicon below, each known word weighing -4 (very negative) to 4 (very
 * positive); the score is (sum + 4 n) / 8 n for n known words, in [0, 1], 0.5 with none. It is
 * kept in thousandths, rounded half up, so sums and averages are exact.
 *
 * Queries, for each source S (twitter, slack), each exactly once into its sink:
 *   feedback-S-negative  score below 0.3 -> --negative ("negative-feedback")
 *   feedback-S-positive  score above 0.9 -> --positive ("positive-feedback")
 *                        as "S,ID,SCORE,TEXT" (SCORE "0.xxx"), keyed by the message id
 *   feedback-S-average   the source's average score per 1-minute event-time window (final
 *                        once the latest message seen, minus --delay-s seconds (5), passes
 *                        the minute's end), into Redis: HSET feedback:avg:S "YYYY-MM-DD HH:MM"
 *                        "0.xxxx"
 *   feedback-S-dead-letter  its malformed records
 * Options: --redis HOST:PORT (default $EMBER_REDIS, else 127.0.0.1:6379), --interval-ms N
 * (1000), --earliest, --checkpoint DIR ("feedback-checkpoint"), --detach. The job runs until
 * feedback-twitter-negative is stopped; the others then stop with it.
 *
 * Build: cc -shared -fPIC -O2 -I include -o feedback_alerts.so examples/feedback_alerts.c -ljansson
 */
#define _POSIX_C_SOURCE 200809L
#include <ember/ember.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "example_job.h"
#include "feedback_score.h"

#define ID_MAX   64
#define TEXT_MAX 512
#define NEGATIVE 300 /* thousandths: below is a negative alert */
#define POSITIVE 900 /* above is a positive alert */

/* feedback: one message, parsed */
typedef struct feedback {
    const char *id, *text;
    size_t id_len, text_len;
    int64_t ts_ms;
} feedback;

/* parse reads a record of `source` ("twitter" or "slack"); *doc holds what f points into */
static int parse(const char *source, const ember_record *in, json_t **doc, feedback *f)
{
    *doc = json_loadb(in->value, in->value_len, JSON_REJECT_DUPLICATES, NULL);
    json_t *id, *text, *ts;
    if (strcmp(source, "twitter") == 0) {
        id = json_object_get(*doc, "id");
        text = json_object_get(*doc, "text");
        ts = json_object_get(*doc, "ts_ms");
        f->ts_ms = json_is_integer(ts) ? json_integer_value(ts) : -1;
    } else {
        json_t *m = json_object_get(*doc, "message");
        id = json_object_get(m, "id");
        text = json_object_get(m, "body");
        ts = json_object_get(m, "ts");
        f->ts_ms = json_is_string(ts) ? feedback_slack_ms(json_string_value(ts)) : -1;
        if (!json_is_string(json_object_get(*doc, "channel"))) f->ts_ms = -1;
    }
    if (!json_is_string(id) || !json_is_string(text) || f->ts_ms <= 0) return -1;
    f->id = json_string_value(id);
    f->id_len = json_string_length(id);
    f->text = json_string_value(text);
    f->text_len = json_string_length(text);
    return f->id_len >= 1 && f->id_len <= ID_MAX && f->text_len <= TEXT_MAX ? 0 : -1;
}

/* fb_scored (flat_map, the source's name as argument): a message -> key = source, value =
 * "MILLI|ID|TEXT", at the message's time */
int fb_scored(ember_task *task, const ember_record *in)
{
    size_t len;
    const char *source = ember_task_arg(task, &len);
    json_t *doc;
    feedback f;
    int rc = EMBER_OK;
    if (parse(source, in, &doc, &f) == 0) {
        char value[16 + ID_MAX + TEXT_MAX];
        int n = snprintf(value, sizeof value, "%" PRId64 "|%.*s|%.*s",
                         feedback_score_milli(f.text, f.text_len), (int)f.id_len, f.id,
                         (int)f.text_len, f.text);
        rc = ember_emit_kv(task, source, strlen(source), value, (size_t)n, f.ts_ms);
    }
    json_decref(doc);
    return rc;
}

/* fb_malformed (filter, the source's name as argument): the records that do not parse */
int fb_malformed(ember_task *task, const ember_record *in)
{
    size_t len;
    const char *source = ember_task_arg(task, &len);
    json_t *doc;
    feedback f;
    int bad = parse(source, in, &doc, &f) != 0;
    json_decref(doc);
    return bad;
}

static int64_t milli_of(const ember_record *in) { return atoll((const char *)in->value); }

/* fb_negative, fb_positive (filters): the alerts */
int fb_negative(ember_task *task, const ember_record *in)
{
    (void)task;
    return milli_of(in) < NEGATIVE;
}

int fb_positive(ember_task *task, const ember_record *in)
{
    (void)task;
    return milli_of(in) > POSITIVE;
}

/* fb_alert_line (map): "SOURCE,ID,0.xxx,TEXT", keyed by the message id */
int fb_alert_line(ember_task *task, const ember_record *in)
{
    const char *v = in->value, *end = v + in->value_len;
    const char *id = memchr(v, '|', in->value_len);
    const char *text = id ? memchr(id + 1, '|', (size_t)(end - id - 1)) : NULL;
    if (!text) return ember_task_fail(task, "a scored record without its id and text");
    id++;
    int64_t milli = milli_of(in);
    char line[64 + ID_MAX + TEXT_MAX];
    int n = snprintf(line, sizeof line, "%.*s,%.*s,%" PRId64 ".%03" PRId64 ",%.*s",
                     (int)in->key_len, (const char *)in->key, (int)(text - id), id, milli / 1000,
                     milli % 1000, (int)(end - text - 1), text + 1);
    return ember_emit_kv(task, id, (size_t)(text - id), line, (size_t)n, in->timestamp);
}

/* a minute's scores */
typedef struct minute {
    int64_t sum_milli, count;
} minute;

int fb_minute_add(ember_task *task, void *acc, const ember_record *in)
{
    (void)task;
    minute *m = acc;
    m->sum_milli += milli_of(in);
    m->count++;
    return EMBER_OK;
}

int fb_minute_join(ember_task *task, void *acc, const void *other)
{
    (void)task;
    minute *a = acc, b;
    memcpy(&b, other, sizeof b);
    a->sum_milli += b.sum_milli;
    a->count += b.count;
    return EMBER_OK;
}

/* fb_minute_avg (map): a final minute -> HSET feedback:avg:SOURCE "YYYY-MM-DD HH:MM" avg */
int fb_minute_avg(ember_task *task, const ember_record *in)
{
    minute m;
    memcpy(&m, in->value, sizeof m);
    char key[96], when[32], value[32];
    int kn =
        snprintf(key, sizeof key, "feedback:avg:%.*s", (int)in->key_len, (const char *)in->key);
    example_time(in->timestamp, when, sizeof when);
    when[16] = '\0'; /* "YYYY-MM-DD HH:MM" */
    snprintf(value, sizeof value, "%.4f", (double)m.sum_milli / (double)m.count / 1000.0);
    const char *fields[] = {when}, *values[] = {value};
    uint8_t hset[128];
    size_t hl = ember_redis_fields(hset, sizeof hset, 1, fields, values);
    return ember_emit_kv(task, key, (size_t)kn, hset, hl, in->timestamp);
}

int ember_main(ember_ctx *ctx, int argc, char **argv)
{
    ember_opts *o =
        ember_opts_new(ctx, argc, argv,
                       "feedback_alerts.so -- [--twitter TOPIC] [--slack TOPIC] [--negative TOPIC] "
                       "[--positive TOPIC] [--dead-letter TOPIC] [--redis HOST:PORT] [--delay-s N] "
                       "[--earliest] " EXAMPLE_QUERY_USAGE);
    example_queries eq = example_queries_of(o, ctx, "feedback_alerts", "feedback-checkpoint");
    ember_stream_source src = {.earliest = ember_opt_flag(o, "--earliest")};
    ember_redis_options redis = {.address = example_redis(o), .command = EMBER_REDIS_HSET};
    ember_window w = {
        .length_ms = 60000, .slide_ms = 60000, .delay_ms = ember_opt_int(o, "--delay-s", 5) * 1000};
    const char *negative = ember_opt_str(o, "--negative", "negative-feedback");
    const char *positive = ember_opt_str(o, "--positive", "positive-feedback");
    const char *dead = ember_opt_str(o, "--dead-letter", "feedback-dead-letter");
    const char *sources[2] = {"twitter", "slack"};
    const char *topics[2] = {ember_opt_str(o, "--twitter", "feedback-twitter"),
                             ember_opt_str(o, "--slack", "feedback-slack")};
    if (ember_opts_check(o) != EMBER_OK) return 2;
    ember_query *q[8] = {NULL};
    size_t n = 0;
    for (int s = 0; s < 2; s++) {
        const char *source = sources[s];
        size_t arg_len = strlen(source) + 1;
        char name[64];
        ember_dataset *scored =
            ember_flat_map(ember_kafka_stream(ctx, topics[s], &src), fb_scored, source, arg_len);
        snprintf(name, sizeof name, "feedback-%s-negative", source);
        q[n++] = example_start(
            &eq, ember_map(ember_filter(scored, fb_negative, NULL, 0), fb_alert_line, NULL, 0),
            name, negative, NULL);
        snprintf(name, sizeof name, "feedback-%s-positive", source);
        q[n++] = example_start(
            &eq, ember_map(ember_filter(scored, fb_positive, NULL, 0), fb_alert_line, NULL, 0),
            name, positive, NULL);
        minute zero = {0, 0};
        ember_dataset *minutes = ember_window_aggregate(scored, &w, &zero, sizeof zero,
                                                        fb_minute_add, fb_minute_join, 1);
        snprintf(name, sizeof name, "feedback-%s-average", source);
        q[n++] = example_start(&eq, ember_map(minutes, fb_minute_avg, NULL, 0), name, NULL, &redis);
        snprintf(name, sizeof name, "feedback-%s-dead-letter", source);
        q[n++] = example_start(
            &eq,
            ember_filter(ember_kafka_stream(ctx, topics[s], &src), fb_malformed, source, arg_len),
            name, dead, NULL);
    }
    for (size_t i = 0; i < n; i++)
        if (!q[i]) return 1;
    return example_await_all(&eq, q, n);
}
