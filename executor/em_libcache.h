/* em_libcache.h -- job libraries and broadcast values on an executor: fetched once from the
 * driver, kept on disk.
 *
 * A library is named by its SHA-256: <work_dir>/libs/<sha256>.so. A file already there is
 * hashed again before use, so a damaged cache is fetched anew rather than loaded. Libraries
 * are dlopen'ed RTLD_NOW | RTLD_LOCAL and stay loaded for the executor's life.
 * Thread-safe (one lock; a fetch holds it, so a library is fetched once).
 */
#ifndef EM_LIBCACHE_H
#define EM_LIBCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "em_rpc.h"

typedef struct em_libcache em_libcache;

em_libcache *em_libcache_new(const char *work_dir, em_rpc *driver);
void em_libcache_free(em_libcache *lc);
/* em_libcache_get returns the dlopen handle of the library, fetching it if needed. */
int em_libcache_get(em_libcache *lc, const uint8_t sha256[32], const char *name, void **handle,
                    char *err, size_t errlen);
/* em_libcache_blob gives a broadcast value's bytes (<work_dir>/libs/<sha256>.bin, fetched from
 * the driver like a library but never loaded: mapped read-only for the executor's life) */
int em_libcache_blob(em_libcache *lc, const uint8_t sha256[32], const void **data, size_t *len,
                     char *err, size_t errlen);

#endif
