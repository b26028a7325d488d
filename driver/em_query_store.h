/* em_query_store.h -- detached streaming queries kept on the driver's disk, so that a driver
 * started again on the same --state-dir resumes them.
 *
 *   STATE_DIR/queries/<hash of the name>.query   the query's StartQuery (protobuf)
 *   STATE_DIR/libraries/<sha256>.so              the job library it runs
 *
 * A detached query is saved when it starts (each file written whole: temporary file, fsync,
 * rename) and removed when it ends (stopped or failed), with any library no kept query uses
 * any more. A driver that stops or dies leaves its queries' files: the next one started on
 * the directory registers each again, and each resumes from its checkpoint. Client-mode
 * queries are never kept: they end with their submitter.
 */
#ifndef EM_QUERY_STORE_H
#define EM_QUERY_STORE_H

#include <stddef.h>

#include "ember.pb-c.h"

#define EM_QUERY_STORE_MAX_FILE (512u << 20) /* the largest file read back */

/* em_query_store_save keeps query q and its library (lib_len bytes) in dir. */
int em_query_store_save(const char *dir, const Ember__StartQuery *q, const void *lib,
                        size_t lib_len, char *err, size_t errlen);
/* em_query_store_remove forgets the query `name` (a missing one is fine), and the libraries no
 * kept query uses. */
void em_query_store_remove(const char *dir, const char *name);

/* em_query_store_fn receives one kept query (owned by fn) and its library's bytes (valid
 * during the call). */
typedef void (*em_query_store_fn)(void *arg, Ember__StartQuery *q, const void *lib, size_t lib_len);
/* em_query_store_load calls fn for every kept query of dir; files that cannot be read are
 * logged and skipped. Returns how many queries fn received. */
size_t em_query_store_load(const char *dir, em_query_store_fn fn, void *arg);

#endif
