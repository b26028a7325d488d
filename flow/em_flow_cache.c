/* em_flow_cache.c -- compiled flows shared by a process's tasks (em_flow_cache.h). */
#define XXH_INLINE_ALL /* the job library links no xxhash */
#include "em_flow_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#define CACHED_MAX 4  /* flows kept (each may hold a lookup table of up to 64 MiB) */
#define FILES_MAX  16 /* files one flow's stamp covers; a flow reading more is not cached */

typedef struct entry {
    uint64_t key; /* the document's hash, and its files' stamps */
    size_t len;
    em_flow *flow;
    int users;     /* tasks holding it: it is not replaced while they do */
    uint64_t used; /* when it was last taken (the cache's clock) */
} entry;

static entry cache[CACHED_MAX];
static uint64_t clock_;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* stamp hashes the document with the size, modification time and inode of every file a node
 * reads ("file" parameters); 0 when a file cannot be looked at or there are too many (the
 * flow is then compiled afresh, and says why if it fails) */
static uint64_t stamp(const char *text, size_t len)
{
    json_t *doc = json_loadb(text, len, 0, NULL), *node;
    size_t k, files = 0;
    XXH3_state_t *h = XXH3_createState();
    uint64_t key = 0;
    if (!doc || !h || XXH3_64bits_reset(h) != XXH_OK) goto done;
    XXH3_64bits_update(h, text, len);
    json_array_foreach(json_object_get(doc, "nodes"), k, node)
    {
        const char *path = json_string_value(json_object_get(node, "file"));
        struct stat sb;
        if (!path) continue;
        if (++files > FILES_MAX || stat(path, &sb) != 0) goto done;
        int64_t s[5] = {(int64_t)sb.st_size, (int64_t)sb.st_mtim.tv_sec,
                        (int64_t)sb.st_mtim.tv_nsec, (int64_t)sb.st_ino, (int64_t)sb.st_dev};
        XXH3_64bits_update(h, s, sizeof s);
    }
    key = XXH3_64bits_digest(h);
    if (key == 0) key = 1;
done:
    XXH3_freeState(h);
    json_decref(doc);
    return key;
}

const em_flow *em_flow_cache_get(const char *text, size_t len, char *err, size_t errlen)
{
    uint64_t key = stamp(text, len);
    if (key != 0) {
        pthread_mutex_lock(&lock);
        for (int k = 0; k < CACHED_MAX; k++)
            if (cache[k].flow && cache[k].key == key && cache[k].len == len) {
                cache[k].users++;
                cache[k].used = ++clock_;
                pthread_mutex_unlock(&lock);
                return cache[k].flow;
            }
        pthread_mutex_unlock(&lock);
    }
    em_flow *f = em_flow_load(text, len, err, errlen); /* outside the lock: it may take a while */
    if (!f || key == 0) return f;
    pthread_mutex_lock(&lock);
    int slot = -1; /* a free slot, else the least recently used idle one */
    for (int k = 0; k < CACHED_MAX && slot < 0; k++)
        if (!cache[k].flow) slot = k;
    if (slot < 0)
        for (int k = 0; k < CACHED_MAX; k++)
            if (cache[k].users == 0 && (slot < 0 || cache[k].used < cache[slot].used)) slot = k;
    if (slot >= 0) { /* else every flow is in use: this task keeps its own */
        em_flow_free(cache[slot].flow);
        cache[slot] = (entry){.key = key, .len = len, .flow = f, .users = 1, .used = ++clock_};
    }
    pthread_mutex_unlock(&lock);
    return f;
}

void em_flow_cache_put(const em_flow *f)
{
    if (!f) return;
    pthread_mutex_lock(&lock);
    for (int k = 0; k < CACHED_MAX; k++)
        if (cache[k].flow == f) {
            cache[k].users--;
            pthread_mutex_unlock(&lock);
            return;
        }
    pthread_mutex_unlock(&lock);
    em_flow_free((em_flow *)f); /* not cached: the task's own */
}
