/* em_state_store.c -- streaming state between batches: files and cache (see em_state_store.h). */
#include "em_state_store.h"

#include <dirent.h>
#include <ember/ember.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "em_batch.h"
#include "em_fs.h"
#include "em_graph.h"

/* ---- the cache ------------------------------------------------------------------------------ */

struct em_state_cache {
    pthread_mutex_t lock;
    struct cached {
        char dir[EM_STATE_DIR_MAX + 16]; /* "" = free */
        dev_t dev;                       /* the directory's identity: a checkpoint removed and */
        ino_t ino;                       /* made again at its path is another one */
        int64_t version;
        em_combiner *state;
        uint64_t used;
    } slot[EM_STATE_CACHED];
    uint64_t clock;
};

em_state_cache *em_state_cache_new(void)
{
    em_state_cache *s = calloc(1, sizeof *s);
    if (s) pthread_mutex_init(&s->lock, NULL);
    return s;
}

void em_state_cache_free(em_state_cache *s)
{
    if (!s) return;
    for (size_t i = 0; i < EM_STATE_CACHED; i++) em_combiner_free(s->slot[i].state);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* cache_take takes dir's state if it is at `version`; any other version of it is dropped */
static em_combiner *cache_take(em_state_cache *s, const char *dir, int64_t version)
{
    em_combiner *found = NULL, *stale = NULL;
    struct stat st;
    int exists = stat(dir, &st) == 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < EM_STATE_CACHED; i++) {
        struct cached *c = &s->slot[i];
        if (!c->dir[0] || strcmp(c->dir, dir) != 0) continue;
        if (c->version == version && exists && c->dev == st.st_dev && c->ino == st.st_ino)
            found = c->state;
        else
            stale = c->state;
        c->dir[0] = '\0';
        c->state = NULL;
        break;
    }
    pthread_mutex_unlock(&s->lock);
    em_combiner_free(stale);
    return found;
}

/* cache_put keeps dir's state at version, in place of the least recently used one */
static void cache_put(em_state_cache *s, const char *dir, int64_t version, em_combiner *state)
{
    struct stat st;
    if (stat(dir, &st) != 0) { /* not kept: its files are the truth */
        em_combiner_free(state);
        return;
    }
    pthread_mutex_lock(&s->lock);
    struct cached *victim = &s->slot[0];
    for (size_t i = 0; i < EM_STATE_CACHED; i++) {
        if (!s->slot[i].dir[0]) {
            victim = &s->slot[i];
            break;
        }
        if (s->slot[i].used < victim->used) victim = &s->slot[i];
    }
    em_combiner *old = victim->state;
    snprintf(victim->dir, sizeof victim->dir, "%s", dir);
    victim->dev = st.st_dev;
    victim->ino = st.st_ino;
    victim->version = version;
    victim->state = state;
    victim->used = ++s->clock;
    pthread_mutex_unlock(&s->lock);
    em_combiner_free(old);
}

/* ---- the files ------------------------------------------------------------------------------ */

static void file_path(char *buf, size_t len, const char *dir, int64_t version, const char *kind)
{
    snprintf(buf, len, "%s/%" PRId64 ".%s", dir, version, kind);
}

/* write_file writes a state file: the mark (8 bytes, little-endian) and the entries as record
 * batches */
static int write_file(const char *path, int64_t mark, const em_combiner *entries, char *err,
                      size_t errlen)
{
    em_batch_writer w = {0}; /* the file: the mark, then the batches after it */
    uint8_t head[8];
    em_put_u64le(head, (uint64_t)mark);
    int rc = em_buf_append(&w.buf, head, sizeof head);
    if (rc == EMBER_OK) rc = em_batch_begin(&w);
    for (size_t i = 0; rc == EMBER_OK && i < em_combiner_size(entries); i++) {
        ember_record rec;
        em_combiner_get(entries, i, &rec, NULL);
        rc = em_batch_add(&w, &rec);
        if (rc == EMBER_ERR_TOO_LARGE && em_batch_bytes(&w) > EM_BATCH_HEADER) { /* the next */
            rc = em_batch_finish(&w);
            if (rc == EMBER_OK) rc = em_batch_begin(&w);
            if (rc == EMBER_OK) rc = em_batch_add(&w, &rec);
        }
    }
    if (rc == EMBER_OK) rc = em_batch_finish(&w);
    if (rc == EMBER_OK)
        rc = em_write_bytes_atomic(path, w.buf.data, w.buf.len, err, errlen);
    else
        snprintf(err, errlen, "out of memory writing %s", path);
    em_buf_free(&w.buf);
    return rc;
}

/* apply_file folds a state file into *state: its entries, then its mark */
static int apply_file(const char *path, em_combiner **state, const em_state_ops *ops, char *err,
                      size_t errlen)
{
    em_buf data = {0};
    int rc = em_read_file(path, SIZE_MAX, &data.data, &data.len, err, errlen);
    if (rc == EMBER_ERR_NOT_FOUND) {
        snprintf(err, errlen,
                 "state %s is missing: the checkpoint must be on a filesystem every executor "
                 "shares",
                 path);
        return rc;
    }
    int64_t mark = EM_STATE_NO_MARK;
    if (rc == EMBER_OK && data.len < 8) rc = EMBER_ERR_MALFORMED;
    if (rc == EMBER_OK) mark = (int64_t)em_get_u64le(data.data);
    for (size_t off = 8; rc == EMBER_OK && off < data.len;) {
        em_batch_reader r;
        size_t used;
        if ((rc = em_batch_open(data.data + off, data.len - off, &r, &used)) != EMBER_OK) break;
        ember_record rec;
        int more;
        while (rc == EMBER_OK && (more = em_batch_next(&r, &rec)) > 0)
            rc = em_combiner_add(*state, &rec);
        if (rc == EMBER_OK && more < 0) rc = EMBER_ERR_MALFORMED;
        off += used;
    }
    if (rc == EMBER_OK) rc = ops->after_file(state, mark, ops->arg);
    em_buf_free(&data);
    if (rc != EMBER_OK && !err[0])
        snprintf(err, errlen, "state %s cannot be read: %s", path, ember_strerror(rc));
    return rc;
}

/* last_snapshot: the newest snapshot version <= version in dir (-1: none) */
static int64_t last_snapshot(const char *dir, int64_t version)
{
    DIR *d = opendir(dir);
    int64_t best = -1;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char *end;
        long long v = strtoll(e->d_name, &end, 10);
        if (end != e->d_name && strcmp(end, ".snapshot") == 0 && v <= version && v > best) best = v;
    }
    if (d) closedir(d);
    return best;
}

/* load builds dir's state at `version` from its files (-1: empty) */
static int load(const char *dir, int64_t version, const em_state_ops *ops, em_combiner **out,
                char *err, size_t errlen)
{
    *out = ops->empty(ops->arg);
    if (!*out) return EMBER_ERR_NOMEM;
    int64_t snap = version >= 0 ? last_snapshot(dir, version) : -1;
    char path[EM_STATE_DIR_MAX + 64];
    int rc = EMBER_OK;
    if (snap >= 0) {
        file_path(path, sizeof path, dir, snap, "snapshot");
        rc = apply_file(path, out, ops, err, errlen);
    }
    for (int64_t v = snap + 1; rc == EMBER_OK && v <= version; v++) {
        file_path(path, sizeof path, dir, v, "delta");
        rc = apply_file(path, out, ops, err, errlen);
    }
    return rc;
}

/* store writes version `version`: its delta, a snapshot every EM_STATE_SNAPSHOT_EVERY
 * versions (then the files before the previous snapshot go) */
static int store(const char *dir, int64_t version, int64_t mark, const em_combiner *delta,
                 const em_combiner *state, char *err, size_t errlen)
{
    char path[EM_STATE_DIR_MAX + 64];
    if (em_mkdirs(dir) != 0) {
        snprintf(err, errlen, "cannot make state directory %s: %s", dir, strerror(errno));
        return EMBER_ERR_IO;
    }
    file_path(path, sizeof path, dir, version, "delta");
    int rc = write_file(path, mark, delta, err, errlen);
    if (rc != EMBER_OK || version == 0 || version % EM_STATE_SNAPSHOT_EVERY != 0) return rc;
    file_path(path, sizeof path, dir, version, "snapshot");
    if ((rc = write_file(path, EM_STATE_NO_MARK, state, err, errlen)) != EMBER_OK) return rc;
    for (int64_t v = version - 2 * EM_STATE_SNAPSHOT_EVERY; v >= 0; v--) {
        file_path(path, sizeof path, dir, v, "delta");
        if (remove(path) != 0) break; /* removed earlier already */
        file_path(path, sizeof path, dir, v, "snapshot");
        remove(path);
    }
    return EMBER_OK;
}

/* ---- opening and committing ------------------------------------------------------------------ */

int em_state_open(em_state_cache *c, const char *dir, int64_t version, const em_state_ops *ops,
                  em_combiner **out, char *err, size_t errlen)
{
    *out = cache_take(c, dir, version);
    if (*out) return EMBER_OK;
    int rc = load(dir, version, ops, out, err, errlen);
    if (rc != EMBER_OK) {
        em_combiner_free(*out);
        *out = NULL;
    }
    return rc;
}

int em_state_commit(em_state_cache *c, const char *dir, int64_t version, int64_t mark,
                    const em_combiner *delta, em_combiner *state, char *err, size_t errlen)
{
    int rc = store(dir, version, mark, delta, state, err, errlen);
    if (rc != EMBER_OK) {
        em_combiner_free(state);
        return rc;
    }
    cache_put(c, dir, version, state);
    return EMBER_OK;
}
