/* fuzz_batch.c -- record batches (common/wire/em_batch.h): task input, results, shuffle
 * blocks. First byte even: the rest is a sequence of batches to validate and count. Odd: the
 * rest is the payload of one batch of data[1] records with a good header and checksum, whose
 * records are read to the end. */
#include <stdlib.h>
#include <string.h>

#include <ember/ember.h>

#include "em_batch.h"
#include "em_buf.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t count;
    if (size < 2 || !(data[0] & 1)) {
        if (size) em_batch_count(data + 1, size - 1, &count);
        return 0;
    }
    size_t payload = size - 2;
    uint8_t *batch = malloc(EM_BATCH_HEADER + payload + 1);
    if (!batch) return 0;
    em_put_u32le(batch, EM_BATCH_MAGIC);
    em_put_u32le(batch + 4, data[1]);
    em_put_u32le(batch + 8, (uint32_t)payload);
    em_put_u32le(batch + 12, 0);
    memcpy(batch + EM_BATCH_HEADER, data + 2, payload);
    em_put_u64le(batch + 16, em_batch_checksum(batch, batch + EM_BATCH_HEADER, payload));
    em_batch_reader r;
    size_t consumed;
    if (em_batch_open(batch, EM_BATCH_HEADER + payload, &r, &consumed) == EMBER_OK) {
        ember_record rec;
        size_t seen = 0;
        while (em_batch_next(&r, &rec) == 1)
            for (size_t i = 0; i < rec.key_len + rec.value_len; i++) /* every byte it points at */
                seen += (i < rec.key_len ? ((const uint8_t *)rec.key)[i]
                                         : ((const uint8_t *)rec.value)[i - rec.key_len]) != 0;
        (void)seen;
    }
    em_batch_count(batch, EM_BATCH_HEADER + payload, &count);
    free(batch);
    return 0;
}
