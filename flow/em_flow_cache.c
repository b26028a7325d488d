/* em_flow_cache.c -- compiled flows shared by a process's tasks (em_flow_cache.h).
 *
 * An entry is found by the document's hash and length; it is good while every file its nodes
 * read has the size, modification time and inode it had when the flow was compiled (a stat
 * each, no parse). One that is not is stale: never handed out again, freed once idle.
 */
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

typedef struct file_stamp {
    char *path; /* owned */
    struct timespec mtime;
    off_t size;
    ino_t ino;
    dev_t dev;
} file_stamp;

typedef struct entry {
    uint64_t hash; /* the document's */
    size_t len;
    em_flow *flow;
    file_stamp files[FILES_MAX];
    int n_files;
    int users;     /* tasks holding it: it is not freed while they do */
    int stale;     /* a file changed: no longer handed out */
    uint64_t used; /* when it was last taken (the cache's clock) */
} entry;

static entry cache[CACHED_MAX];
static uint64_t clock_;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int stamp_file(file_stamp *f, const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return -1;
    f->mtime = sb.st_mtim;
    f->size = sb.st_size;
    f->ino = sb.st_ino;
    f->dev = sb.st_dev;
    return 0;
}

/* unchanged: every file still as it was stamped */
static int unchanged(const entry *e)
{
    for (int k = 0; k < e->n_files; k++) {
        file_stamp now;
        const file_stamp *then = &e->files[k];
        if (stamp_file(&now, then->path) != 0 || now.size != then->size || now.ino != then->ino ||
            now.dev != then->dev || now.mtime.tv_sec != then->mtime.tv_sec ||
            now.mtime.tv_nsec != then->mtime.tv_nsec)
            return 0;
    }
    return 1;
}

static void entry_free(entry *e)
{
    em_flow_free(e->flow);
    for (int k = 0; k < e->n_files; k++) free(e->files[k].path);
    memset(e, 0, sizeof *e);
}

/* entry_make stamps the files the flow's nodes read ("file" parameters); -1 when one cannot be
 * looked at or there are too many (the flow is then not cached) */
static int entry_make(entry *e, uint64_t hash, size_t len, em_flow *f)
{
    json_t *node;
    size_t i;
    memset(e, 0, sizeof *e);
    json_array_foreach(json_object_get(f->doc, "nodes"), i, node)
    {
        const char *path = json_string_value(json_object_get(node, "file"));
        if (!path) continue;
        file_stamp *s = &e->files[e->n_files];
        if (e->n_files == FILES_MAX || stamp_file(s, path) != 0 || !(s->path = strdup(path))) {
            for (int k = 0; k < e->n_files; k++) free(e->files[k].path);
            return -1;
        }
        e->n_files++;
    }
    e->hash = hash;
    e->len = len;
    e->flow = f;
    e->users = 1;
    e->used = ++clock_;
    return 0;
}

const em_flow *em_flow_cache_get(const char *text, size_t len, char *err, size_t errlen)
{
    uint64_t hash = XXH3_64bits(text, len);
    pthread_mutex_lock(&lock);
    for (int k = 0; k < CACHED_MAX; k++) {
        entry *e = &cache[k];
        if (!e->flow || e->stale || e->hash != hash || e->len != len) continue;
        if (!unchanged(e)) { /* a rules or lookup file changed: compiled again */
            e->stale = 1;
            if (e->users == 0) entry_free(e);
            continue;
        }
        e->users++;
        e->used = ++clock_;
        pthread_mutex_unlock(&lock);
        return e->flow;
    }
    pthread_mutex_unlock(&lock);
    em_flow *f = em_flow_load(text, len, err, errlen); /* outside the lock: it may take a while */
    if (!f) return NULL;
    pthread_mutex_lock(&lock);
    int slot = -1; /* a free slot, else the least recently used idle one */
    for (int k = 0; k < CACHED_MAX && slot < 0; k++)
        if (!cache[k].flow) slot = k;
    if (slot < 0)
        for (int k = 0; k < CACHED_MAX; k++)
            if (cache[k].users == 0 && (slot < 0 || cache[k].used < cache[slot].used)) slot = k;
    entry made;
    if (slot >= 0 && entry_make(&made, hash, len, f) == 0) { /* else this task keeps its own */
        if (cache[slot].flow) entry_free(&cache[slot]);
        cache[slot] = made;
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
            if (--cache[k].users == 0 && cache[k].stale) entry_free(&cache[k]);
            pthread_mutex_unlock(&lock);
            return;
        }
    pthread_mutex_unlock(&lock);
    em_flow_free((em_flow *)f); /* not cached: the task's own */
}

/* as the library is unloaded (the executor ends): its compiled flows go with it */
__attribute__((destructor)) static void cache_unload(void)
{
    pthread_mutex_lock(&lock);
    for (int k = 0; k < CACHED_MAX; k++)
        if (cache[k].flow) entry_free(&cache[k]);
    pthread_mutex_unlock(&lock);
}
