/* em_query_store.c -- detached queries on the driver's disk (see em_query_store.h). */
#include "em_query_store.h"

#include <dirent.h>
#include <ember/ember.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "em_frame.h"
#include "em_fs.h"
#include "em_hash.h"
#include "em_log.h"
#include "em_sha256.h"

static void query_path(char *buf, size_t len, const char *dir, const char *name)
{
    snprintf(buf, len, "%s/queries/%016" PRIx64 ".query", dir,
             em_hash64((const uint8_t *)name, strlen(name)));
}

static void library_path(char *buf, size_t len, const char *dir, const uint8_t sha[32])
{
    char hex[2 * EM_SHA256_LEN + 1];
    em_sha256_hex(sha, hex);
    snprintf(buf, len, "%s/libraries/%s.so", dir, hex);
}

static int make_dirs(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, i ? "libraries" : "queries");
        if (em_mkdirs(path) != 0) {
            snprintf(err, errlen, "cannot make %s: %s", path, strerror(errno));
            return EMBER_ERR_IO;
        }
    }
    return EMBER_OK;
}

int em_query_store_save(const char *dir, const Ember__StartQuery *q, const void *lib,
                        size_t lib_len, char *err, size_t errlen)
{
    int rc = make_dirs(dir, err, errlen);
    if (rc != EMBER_OK) return rc;
    char path[4096];
    library_path(path, sizeof path, dir, q->graph->library_sha256.data);
    rc = em_write_bytes_atomic(path, lib, lib_len, err, errlen);
    size_t len = ember__start_query__get_packed_size(q);
    uint8_t *bytes = rc == EMBER_OK ? malloc(len ? len : 1) : NULL;
    if (rc == EMBER_OK && !bytes) rc = EMBER_ERR_NOMEM;
    if (rc == EMBER_OK) {
        ember__start_query__pack(q, bytes);
        query_path(path, sizeof path, dir, q->name);
        rc = em_write_bytes_atomic(path, bytes, len, err, errlen);
    }
    free(bytes);
    return rc;
}

/* read_query reads and unpacks one query file (NULL: logged) */
static Ember__StartQuery *read_query(const char *path)
{
    uint8_t *bytes;
    size_t len;
    char err[1024] = "";
    if (em_read_file(path, EM_QUERY_STORE_MAX_FILE, &bytes, &len, err, sizeof err) != EMBER_OK) {
        em_warn("kept query unreadable path=%s reason=\"%s\"", path, err);
        return NULL;
    }
    Ember__StartQuery *q = ember__start_query__unpack(NULL, len, bytes);
    free(bytes);
    if (!q || !q->graph || q->graph->library_sha256.len != 32) {
        em_warn("kept query malformed path=%s", path);
        em_pb_free(q);
        return NULL;
    }
    return q;
}

/* each_query calls fn for each readable query file of dir, with its path */
static void each_query(const char *dir, void (*fn)(void *, const char *, Ember__StartQuery *),
                       void *arg)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/queries", dir);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 7 || strcmp(e->d_name + n - 6, ".query") != 0) continue;
        snprintf(path, sizeof path, "%s/queries/%s", dir, e->d_name);
        Ember__StartQuery *q = read_query(path);
        if (q) fn(arg, path, q);
    }
    if (d) closedir(d);
}

/* library_users: the libraries of the kept queries */
typedef struct library_users {
    uint8_t (*sha)[32];
    size_t n, cap;
} library_users;

static void note_library(void *arg, const char *path, Ember__StartQuery *q)
{
    (void)path;
    library_users *u = arg;
    if (u->n == u->cap) {
        size_t cap = u->cap ? 2 * u->cap : 8;
        uint8_t(*sha)[32] = realloc(u->sha, cap * sizeof *sha);
        if (!sha) {
            em_pb_free(q);
            return;
        }
        u->sha = sha;
        u->cap = cap;
    }
    memcpy(u->sha[u->n++], q->graph->library_sha256.data, 32);
    em_pb_free(q);
}

void em_query_store_remove(const char *dir, const char *name)
{
    char path[4096];
    query_path(path, sizeof path, dir, name);
    if (remove(path) != 0 && errno != ENOENT)
        em_warn("cannot remove kept query path=%s reason=\"%s\"", path, strerror(errno));
    library_users users = {0};
    each_query(dir, note_library, &users);
    snprintf(path, sizeof path, "%s/libraries", dir);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strlen(e->d_name) != 2 * EM_SHA256_LEN + 3) continue; /* not HEX.so */
        int used = 0;
        for (size_t i = 0; i < users.n && !used; i++) {
            char hex[2 * EM_SHA256_LEN + 1];
            em_sha256_hex(users.sha[i], hex);
            used = strncmp(hex, e->d_name, 2 * EM_SHA256_LEN) == 0;
        }
        if (!used) unlinkat(dirfd(d), e->d_name, 0);
    }
    if (d) closedir(d);
    free(users.sha);
}

typedef struct loader {
    const char *dir;
    em_query_store_fn fn;
    void *arg;
    size_t n;
} loader;

static void load_one(void *arg, const char *path, Ember__StartQuery *q)
{
    loader *l = arg;
    char lib_path[4096], err[1024] = "";
    library_path(lib_path, sizeof lib_path, l->dir, q->graph->library_sha256.data);
    uint8_t *lib;
    size_t len;
    if (em_read_file(lib_path, EM_QUERY_STORE_MAX_FILE, &lib, &len, err, sizeof err) != EMBER_OK) {
        em_warn("kept query without its library path=%s reason=\"%s\"", path, err);
        em_pb_free(q);
        return;
    }
    l->fn(l->arg, q, lib, len);
    l->n++;
    free(lib);
}

size_t em_query_store_load(const char *dir, em_query_store_fn fn, void *arg)
{
    loader l = {dir, fn, arg, 0};
    each_query(dir, load_one, &l);
    return l.n;
}
