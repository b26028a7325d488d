/* em_blockid.c -- block names (see em_blockid.h). */
#include "em_blockid.h"

#include <inttypes.h>
#include <stdio.h>

void em_blockid_shuffle(char out[EM_BLOCKID_MAX], uint64_t map_stage, uint32_t map_part,
                        uint32_t reduce_part)
{
    snprintf(out, EM_BLOCKID_MAX, "shuffle_%" PRIu64 "_%" PRIu32 "_%" PRIu32, map_stage, map_part,
             reduce_part);
}

void em_blockid_shuffle_prefix(char out[EM_BLOCKID_MAX], uint64_t map_stage)
{
    snprintf(out, EM_BLOCKID_MAX, "shuffle_%" PRIu64 "_", map_stage);
}

void em_blockid_cached(char out[EM_BLOCKID_MAX], uint64_t fingerprint, uint32_t part)
{
    snprintf(out, EM_BLOCKID_MAX, EM_BLOCKID_CACHED_KIND "%016" PRIx64 "_%" PRIu32, fingerprint,
             part);
}

void em_blockid_cached_prefix(char out[EM_BLOCKID_MAX], uint64_t fingerprint)
{
    snprintf(out, EM_BLOCKID_MAX, EM_BLOCKID_CACHED_KIND "%016" PRIx64 "_", fingerprint);
}

int em_blockid_parse_cached(const char *id, uint64_t *fingerprint, uint32_t *part)
{
    int end = 0;
    return sscanf(id, EM_BLOCKID_CACHED_KIND "%16" SCNx64 "_%" SCNu32 "%n", fingerprint, part,
                  &end) == 2 &&
           id[end] == '\0';
}
