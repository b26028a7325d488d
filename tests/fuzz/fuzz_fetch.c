/* fuzz_fetch.c -- a Kafka Fetch response as the executors' own fetcher decodes it
 * (common/kafka/em_kafka_fetch.c): the bytes come from a broker. The first byte is the end of
 * the offset range read (0 to 255), the rest is the response. Every record passed must lie in
 * the range, in increasing offset order, and every byte of its key and value must be readable
 * (the sanitizers watch the reads). */
#include <stdlib.h>

#include "em_kafka_fetch.h"
#include "fuzz.h"

typedef struct seen {
    int64_t last, until;
    uint64_t sum;
} seen;

static int touch(void *arg, int64_t offset, const ember_record *rec)
{
    seen *s = arg;
    if (offset <= s->last || offset >= s->until) abort();
    s->last = offset;
    const uint8_t *key = rec->key, *value = rec->value;
    for (size_t i = 0; i < rec->key_len; i++) s->sum += key[i];
    for (size_t i = 0; i < rec->value_len; i++) s->sum += value[i];
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static em_kafka_fetcher *f; /* reused, as a slot's is: its buffers carry over */
    if (size < 1 || (!f && !(f = em_kafka_fetcher_new(NULL)))) return 0;
    seen s = {-1, data[0], 0};
    int64_t next = 0, n = 0;
    em_kafka_fetch_decode(f, data + 1, size - 1, 0, &next, s.until, touch, &s, &n);
    return 0;
}
