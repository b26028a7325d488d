/* em_hash.c -- the streaming checksum of frames and batches (see em_hash.h). */
#include "em_hash.h"

#include <string.h>

uint64_t em_hash64_sealed(const uint8_t header[16], const void *body, size_t body_len)
{
    XXH3_state_t st;
    /* xxHash 0.8.1 keeps a stale secret when the uninitialized state happens to hold our
     * seed already: start from zeros so the secret is always derived afresh */
    memset(&st, 0, sizeof st);
    XXH3_64bits_reset_withSeed(&st, EM_HASH_SEED);
    XXH3_64bits_update(&st, header, 16);
    XXH3_64bits_update(&st, body, body_len);
    return XXH3_64bits_digest(&st);
}
