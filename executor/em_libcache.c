/* em_libcache.c -- fetch, verify, store and load job libraries (see em_libcache.h). */
#include "em_libcache.h"

#include <dlfcn.h>
#include <ember/ember.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "em_buf.h"
#include "em_elf.h"
#include "em_job_api.h"
#include "em_log.h"
#include "em_sha256.h"

typedef struct loaded {
    uint8_t sha256[32];
    void *handle;
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
        dlclose(l->handle);
        free(l);
    }
    pthread_mutex_destroy(&lc->lock);
    free(lc);
}

/* file_matches says whether path exists, hashes to sha256 and is a whole ELF object. */
static int file_matches(const char *path, const uint8_t sha256[32])
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
    int ok =
        memcmp(got, sha256, 32) == 0 && em_elf_check(b.data, b.len, why, sizeof why) == EMBER_OK;
    em_buf_free(&b);
    return ok;
}

/* fetch downloads the library from the driver into path (temp file + rename). */
static int fetch(em_libcache *lc, const uint8_t sha256[32], const char *name, const char *path,
                 char *err, size_t errlen)
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
    if (em_elf_check(reply.frame.data, reply.frame.data_len, why, sizeof why) != EMBER_OK) {
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
    em_info("job library fetched name=%s path=%s", name, path);
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
    int rc = file_matches(path, sha256) ? EMBER_OK : fetch(lc, sha256, name, path, err, errlen);
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
