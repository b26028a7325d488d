/* em_libcache.c -- fetch, verify, store and load job libraries (see em_libcache.h). */
#include "em_libcache.h"

#include <dlfcn.h>
#include <ember/ember.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "em_buf.h"
#include "em_elf.h"
#include "em_job_api.h"
#include "em_log.h"
#include "em_sha256.h"

typedef struct loaded {
    uint8_t sha256[32];
    void *handle;    /* a library: its dlopen handle; */
    const void *map; /* a blob: its read-only mapping, */
    size_t len;      /* of len bytes */
    struct loaded *next;
} loaded;

struct em_libcache {
    pthread_mutex_t lock;
    char dir[1100];
    em_rpc *driver;
    loaded *libs;
};

em_libcache *em_libcache_new(const char *work_dir, em_rpc *driver)
{
    em_libcache *lc = calloc(1, sizeof *lc);
    if (!lc) return NULL;
    pthread_mutex_init(&lc->lock, NULL);
    snprintf(lc->dir, sizeof lc->dir, "%s/libs", work_dir);
    mkdir(work_dir, 0700);
    mkdir(lc->dir, 0700);
    lc->driver = driver;
    return lc;
}

void em_libcache_free(em_libcache *lc)
{
    if (!lc) return;
    while (lc->libs) {
        loaded *l = lc->libs;
        lc->libs = l->next;
        if (l->handle) dlclose(l->handle);
        if (l->map && l->len) munmap((void *)l->map, l->len);
        free(l);
    }
    pthread_mutex_destroy(&lc->lock);
    free(lc);
}

/* file_matches says whether path exists, hashes to sha256 and (a library) is a whole ELF
 * object. */
static int file_matches(const char *path, const uint8_t sha256[32], int library)
{
    char why[256];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    em_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (em_buf_append(&b, chunk, n) != EMBER_OK) break;
    fclose(f);
    uint8_t got[32];
    em_sha256(b.data, b.len, got);
    int ok = memcmp(got, sha256, 32) == 0 &&
             (!library || em_elf_check(b.data, b.len, why, sizeof why) == EMBER_OK);
    em_buf_free(&b);
    return ok;
}

/* fetch downloads the library (or blob) from the driver into path (temp file + rename). */
static int fetch(em_libcache *lc, const uint8_t sha256[32], const char *name, int library,
                 const char *path, char *err, size_t errlen)
{
    Ember__FetchLibrary f = EMBER__FETCH_LIBRARY__INIT;
    f.sha256.data = (uint8_t *)sha256;
    f.sha256.len = 32;
    em_rpc_chan ch = {0};
    em_rpc_reply reply = {0};
    int rc = em_rpc_chan_open(lc->driver, &ch);
    if (rc == EMBER_OK)
        rc = em_rpc_call(lc->driver, &ch, EM_MSG_FETCH_LIBRARY, &f.base, NULL, 0, 60000, &reply,
                         err, errlen);
    em_rpc_chan_close(&ch);
    if (rc != EMBER_OK) return rc;
    uint8_t got[32];
    em_sha256(reply.frame.data, reply.frame.data_len, got);
    if (reply.frame.type != EM_MSG_LIBRARY_DATA || memcmp(got, sha256, 32) != 0) {
        snprintf(err, errlen, "job library %s from the driver does not match its SHA-256", name);
        em_rpc_reply_free(&reply);
        return EMBER_ERR_MALFORMED;
    }
    char why[256];
    if (library &&
        em_elf_check(reply.frame.data, reply.frame.data_len, why, sizeof why) != EMBER_OK) {
        snprintf(err, errlen, "job library %s cannot be loaded: %s", name, why);
        em_rpc_reply_free(&reply);
        return EMBER_ERR_LIBRARY;
    }
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *out = fopen(tmp, "wb");
    int ok = out && fwrite(reply.frame.data, 1, reply.frame.data_len, out) == reply.frame.data_len;
    ok = (out && fclose(out) == 0) && ok;
    em_rpc_reply_free(&reply);
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot store job library %s in %s: %s", name, lc->dir,
                 strerror(errno));
        unlink(tmp);
        return EMBER_ERR_IO;
    }
    if (library)
        em_info("job library fetched name=%s path=%s", name, path);
    else
        em_info("broadcast value fetched path=%s", path);
    return EMBER_OK;
}

int em_libcache_get(em_libcache *lc, const uint8_t sha256[32], const char *name, void **handle,
                    char *err, size_t errlen)
{
    pthread_mutex_lock(&lc->lock);
    for (loaded *l = lc->libs; l; l = l->next)
        if (memcmp(l->sha256, sha256, 32) == 0) {
            *handle = l->handle;
            pthread_mutex_unlock(&lc->lock);
            return EMBER_OK;
        }
    char hex[65], path[1300];
    em_sha256_hex(sha256, hex);
    snprintf(path, sizeof path, "%s/%s.so", lc->dir, hex);
    int rc =
        file_matches(path, sha256, 1) ? EMBER_OK : fetch(lc, sha256, name, 1, path, err, errlen);
    loaded *l = NULL;
    if (rc == EMBER_OK) {
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            snprintf(err, errlen, "job library %s cannot be loaded: %s", name, dlerror());
            rc = EMBER_ERR_LIBRARY;
        } else if ((rc = em_job_api_check(h, name, err, errlen)) != EMBER_OK) {
            dlclose(h);
        } else if (!(l = calloc(1, sizeof *l))) {
            dlclose(h);
            rc = EMBER_ERR_NOMEM;
        } else {
            memcpy(l->sha256, sha256, 32);
            l->handle = h;
            l->next = lc->libs;
            lc->libs = l;
            *handle = h;
        }
    }
    pthread_mutex_unlock(&lc->lock);
    return rc;
}

/* map_file maps path read-only (len: its size; an empty file maps to a static empty) */
static int map_file(const char *path, const void **map, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0) close(fd);
        return EMBER_ERR_IO;
    }
    *len = (size_t)st.st_size;
    void *m = *len ? mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0) : (void *)"";
    close(fd);
    if (m == MAP_FAILED) return EMBER_ERR_IO;
    *map = m;
    return EMBER_OK;
}

int em_libcache_blob(em_libcache *lc, const uint8_t sha256[32], const void **data, size_t *len,
                     char *err, size_t errlen)
{
    pthread_mutex_lock(&lc->lock);
    for (loaded *l = lc->libs; l; l = l->next)
        if (!l->handle && memcmp(l->sha256, sha256, 32) == 0) {
            *data = l->map;
            *len = l->len;
            pthread_mutex_unlock(&lc->lock);
            return EMBER_OK;
        }
    char hex[65], path[1300];
    em_sha256_hex(sha256, hex);
    snprintf(path, sizeof path, "%s/%s.bin", lc->dir, hex);
    int rc = file_matches(path, sha256, 0)
                 ? EMBER_OK
                 : fetch(lc, sha256, "broadcast value", 0, path, err, errlen);
    loaded *l = rc == EMBER_OK ? calloc(1, sizeof *l) : NULL;
    if (rc == EMBER_OK && !l) rc = EMBER_ERR_NOMEM;
    if (l && (rc = map_file(path, &l->map, &l->len)) != EMBER_OK) {
        snprintf(err, errlen, "cannot map broadcast value %s: %s", path, strerror(errno));
        free(l);
        l = NULL;
    }
    if (l) {
        memcpy(l->sha256, sha256, 32);
        l->next = lc->libs;
        lc->libs = l;
        *data = l->map;
        *len = l->len;
    }
    pthread_mutex_unlock(&lc->lock);
    return rc;
}
