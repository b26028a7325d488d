/* feedback_score.h -- the sentiment of a feedback message and the time of a Slack message;
 * shared by examples/feedback_alerts.c (the C job) and examples/flows/feedback_functions.c
 * (the functions of examples/flows/feedback.json), so both score every message alike.
 *
 * Sentiment: the message's words (runs of ASCII letters, lower-cased) are looked up in the
 * word-weight lexicon below, each known word weighing -4 (very negative) to 4 (very
 * positive); the score is (sum + 4 n) / 8 n for n known words, in [0, 1], 0.5 with none, kept
 * in thousandths, rounded half up, so sums and averages are exact.
 */
#ifndef EMBER_EXAMPLES_FEEDBACK_SCORE_H
#define EMBER_EXAMPLES_FEEDBACK_SCORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WEIGHT_MAX 4

/* the lexicon: a word and its weight, -4 (very negative) .. 4 (very positive) */
static const struct {
    const char *word;
    int weight;
} lexicon[] = {
    {"love", 4},       {"excellent", 4}, {"amazing", 4},    {"perfect", 4},   {"awesome", 4},
    {"great", 3},      {"happy", 3},     {"helpful", 3},    {"good", 2},      {"nice", 2},
    {"thanks", 2},     {"fast", 2},      {"easy", 2},       {"smooth", 2},    {"like", 1},
    {"fine", 1},       {"works", 1},     {"hate", -4},      {"terrible", -4}, {"awful", -4},
    {"worst", -4},     {"useless", -4},  {"bad", -3},       {"broken", -3},   {"crash", -3},
    {"crashes", -3},   {"fail", -3},     {"fails", -3},     {"annoying", -3}, {"poor", -3},
    {"slow", -2},      {"bug", -2},      {"bugs", -2},      {"error", -2},    {"wrong", -2},
    {"confusing", -2}, {"refund", -2},   {"expensive", -1}, {"late", -1},
};

static inline int feedback_word_weight(const char *w, size_t len, int *weight)
{
    for (size_t i = 0; i < sizeof lexicon / sizeof lexicon[0]; i++)
        if (strlen(lexicon[i].word) == len && memcmp(lexicon[i].word, w, len) == 0) {
            *weight = lexicon[i].weight;
            return 1;
        }
    return 0;
}

/* score_milli: the text's sentiment in thousandths, 0 .. 1000 (500 without a known word) */
static inline int64_t feedback_score_milli(const char *text, size_t len)
{
    int64_t sum = 0, n = 0;
    char word[32];
    for (size_t i = 0; i < len;) {
        size_t w = 0;
        while (i < len && ((text[i] | 32) >= 'a' && (text[i] | 32) <= 'z')) {
            if (w < sizeof word) word[w] = (char)(text[i] | 32);
            w++;
            i++;
        }
        int weight;
        if (w > 0 && w <= sizeof word && feedback_word_weight(word, w, &weight)) {
            sum += weight;
            n++;
        }
        if (w == 0) i++;
    }
    if (n == 0) return 500;
    /* (sum + 4n) / 8n, in thousandths, rounded half up: exact integers throughout */
    return (1000 * (sum + WEIGHT_MAX * n) + WEIGHT_MAX * n) / (2 * WEIGHT_MAX * n);
}

/* slack_ms: "SECONDS.FRACTION" -> ms; -1 if it is not that */
static inline int64_t feedback_slack_ms(const char *ts)
{
    int64_t secs = 0, ms = 0;
    int digits = 0;
    const char *p = ts;
    for (; *p >= '0' && *p <= '9' && digits < 12; p++, digits++) secs = secs * 10 + (*p - '0');
    if (digits == 0) return -1;
    if (*p == '.') {
        int frac = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, frac++)
            if (frac < 3) ms = ms * 10 + (*p - '0');
        for (; frac < 3; frac++) ms *= 10;
    }
    return *p ? -1 : secs * 1000 + ms;
}

#endif /* EMBER_EXAMPLES_FEEDBACK_SCORE_H */
