/* em_flow_cache.h -- compiled flows shared by the tasks of one process (an executor).
 *
 * Every task of a flow carries the document and compiles it (em_flow_run.h); compiling is
 * most of a small task's time (the JSON, every rule and regular expression, a lookup's table).
 * The cache keeps the compiled flow of the last few documents, keyed by their bytes and by the
 * files they read (a rules or lookup `file`: its size, modification time and inode), so a
 * changed rules file is read again, as the flow's documentation promises. A compiled flow is
 * only read while tasks run, so tasks share it; an idle one is replaced, least recently used
 * first, when a fifth document comes, one whose files changed is freed once idle, and the rest
 * stay until the library is unloaded.
 */
#ifndef EM_FLOW_CACHE_H
#define EM_FLOW_CACHE_H

#include <stddef.h>

#include "em_flow.h"

/* em_flow_cache_get gives the compiled flow of the document (len bytes), compiling it when the
 * cache has none; NULL with a message. Give it back with em_flow_cache_put. */
const em_flow *em_flow_cache_get(const char *text, size_t len, char *err, size_t errlen);
void em_flow_cache_put(const em_flow *f);

#endif
