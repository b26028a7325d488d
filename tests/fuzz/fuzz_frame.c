/* fuzz_frame.c -- frames (common/wire/em_frame.h): whatever arrives on a socket.
 * First byte even: the rest is a frame to parse. Odd: the rest is the protobuf part of a
 * frame of type data[1] with a good header and checksum, so that every message's decoder is
 * reached past the checksum. */
#include <stdlib.h>
#include <string.h>

#include <ember/ember.h>

#include "em_buf.h"
#include "em_frame.h"
#include "em_hash.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    em_frame f;
    if (size < 2 || !(data[0] & 1)) {
        if (size && em_frame_parse(data + 1, size - 1, &f, err, sizeof err) == EMBER_OK)
            em_pb_free(em_frame_unpack(&f, f.type));
        return 0;
    }
    size_t plen = size - 2;
    uint8_t *frame = malloc(EM_FRAME_HEADER + plen + 1);
    if (!frame) return 0;
    em_put_u32le(frame, EM_FRAME_MAGIC);
    frame[4] = EM_FRAME_VERSION;
    frame[5] = (uint8_t)(1 + data[1] % (EM_MSG_COUNT - 1));
    frame[6] = frame[7] = 0;
    em_put_u32le(frame + 8, (uint32_t)plen);
    em_put_u32le(frame + 12, 0);
    memcpy(frame + EM_FRAME_HEADER, data + 2, plen);
    em_put_u64le(frame + 16, em_hash64_sealed(frame, frame + EM_FRAME_HEADER, plen));
    if (em_frame_parse(frame, EM_FRAME_HEADER + plen, &f, err, sizeof err) == EMBER_OK)
        em_pb_free(em_frame_unpack(&f, f.type));
    free(frame);
    return 0;
}
