/* em_libstore.h -- job libraries held by the driver, content-addressed by SHA-256.
 *
 * Submitters upload a job .so once (PutLibrary); executors fetch it once (FetchLibrary) and
 * cache it on disk. The store keeps libraries in memory up to a byte cap, evicting the least
 * recently used library (an executor that has not fetched an evicted library yet fails its
 * task with a clear "not held by the driver"; submitting again uploads it anew).
 */
#ifndef EM_LIBSTORE_H
#define EM_LIBSTORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct em_libstore em_libstore;

em_libstore *em_libstore_new(uint64_t cap_bytes);
void em_libstore_free(em_libstore *ls);
/* em_libstore_put verifies that bytes hash to sha256 and keeps a copy. */
int em_libstore_put(em_libstore *ls, const uint8_t sha256[32], const char *name, const void *bytes,
                    size_t len, char *err, size_t errlen);
int em_libstore_has(em_libstore *ls, const uint8_t sha256[32]);
/* em_libstore_get returns the bytes (owned by the store) or NULL. */
const void *em_libstore_get(em_libstore *ls, const uint8_t sha256[32], size_t *len);

#endif
