/* feedback_functions.c -- the functions examples/flows/feedback.json calls: a job library made
 * of the flow runner (lib/libember_flow.a) and two function nodes' calls, the steps a flow's
 * built-in nodes do not have (examples/feedback_score.h, shared with feedback_alerts.c):
 *
 *   feedback_score  a message's text -> its sentiment in thousandths (0 .. 1000)
 *   slack_time      a Slack time, "SECONDS.FRACTION" as text -> a timestamp; any other text
 *                   fails the record (the node's error edge: a dead letter)
 *
 * Build: cc -shared -fPIC -O2 -I include -o feedback_flow.so examples/flows/feedback_functions.c \
 *            build/release/lib/libember_flow.a -ljansson
 * Run:   ember-flow run --library feedback_flow.so examples/flows/feedback.json --checkpoint DIR
 */
#include <ember/ember.h>
#include <string.h>

#include "../feedback_score.h"

EMBER_FLOW_LIBRARY

static int score(const ember_flow_value *args, ember_flow_value *out, char *buf, size_t cap)
{
    (void)buf, (void)cap;
    out[0].i = feedback_score_milli(args[0].s, args[0].len);
    return 0;
}

const ember_flow_function feedback_score = {EMBER_FLOW_ABI, "string", "int", score};

static int slack(const ember_flow_value *args, ember_flow_value *out, char *buf, size_t cap)
{
    if (args[0].len >= cap) return 1;
    memcpy(buf, args[0].s, args[0].len); /* NUL-terminated for the parser */
    buf[args[0].len] = '\0';
    out[0].i = feedback_slack_ms(buf);
    return out[0].i < 0 ? 1 : 0;
}

const ember_flow_function slack_time = {EMBER_FLOW_ABI, "string", "timestamp", slack};
