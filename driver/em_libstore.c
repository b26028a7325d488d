/* em_libstore.c -- job libraries in memory, by SHA-256 (see em_libstore.h). */
#include "em_libstore.h"

#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_log.h"
#include "em_sha256.h"
#include "em_time.h"

typedef struct em_lib {
    uint8_t sha256[32];
    char name[256];
    void *bytes;
    size_t len;
    int64_t used_us; /* last put or get, for eviction */
    struct em_lib *next;
} em_lib;

struct em_libstore {
    em_lib *libs;
    uint64_t bytes, cap;
};

em_libstore *em_libstore_new(uint64_t cap_bytes)
{
    em_libstore *ls = calloc(1, sizeof *ls);
    if (ls) ls->cap = cap_bytes;
    return ls;
}

void em_libstore_free(em_libstore *ls)
{
    if (!ls) return;
    while (ls->libs) {
        em_lib *l = ls->libs;
        ls->libs = l->next;
        free(l->bytes);
        free(l);
    }
    free(ls);
}

static em_lib *find(em_libstore *ls, const uint8_t sha256[32])
{
    for (em_lib *l = ls->libs; l; l = l->next)
        if (memcmp(l->sha256, sha256, 32) == 0) return l;
    return NULL;
}

/* evict_lru drops least recently used libraries until `need` more bytes fit. A job whose
 * library is evicted still runs on executors that cached it; others fail to fetch it. */
static void evict_lru(em_libstore *ls, size_t need)
{
    while (ls->libs && ls->bytes + need > ls->cap) {
        em_lib **oldest = &ls->libs;
        for (em_lib **p = &ls->libs; *p; p = &(*p)->next)
            if ((*p)->used_us <= (*oldest)->used_us) oldest = p; /* ties: the older entry */
        em_lib *l = *oldest;
        *oldest = l->next;
        ls->bytes -= l->len;
        em_info("job library evicted name=%s bytes=%zu", l->name, l->len);
        free(l->bytes);
        free(l);
    }
}

int em_libstore_put(em_libstore *ls, const uint8_t sha256[32], const char *name, const void *bytes,
                    size_t len, char *err, size_t errlen)
{
    uint8_t got[32];
    em_sha256(bytes, len, got);
    if (memcmp(got, sha256, 32) != 0) {
        snprintf(err, errlen, "library %s: content does not match its SHA-256", name);
        return EMBER_ERR_MALFORMED;
    }
    em_lib *l = find(ls, sha256);
    if (l) {
        l->used_us = em_now_us();
        return EMBER_OK;
    }
    if (len > ls->cap) {
        snprintf(err, errlen, "library %s: %zu bytes exceeds the driver's library cap", name, len);
        return EMBER_ERR_TOO_LARGE;
    }
    evict_lru(ls, len);
    if (!(l = calloc(1, sizeof *l)) || !(l->bytes = malloc(len ? len : 1))) {
        free(l);
        snprintf(err, errlen, "driver out of memory");
        return EMBER_ERR_NOMEM;
    }
    memcpy(l->sha256, sha256, 32);
    snprintf(l->name, sizeof l->name, "%s", name);
    memcpy(l->bytes, bytes, len);
    l->len = len;
    l->used_us = em_now_us();
    l->next = ls->libs;
    ls->libs = l;
    ls->bytes += len;
    char hex[65];
    em_sha256_hex(sha256, hex);
    em_info("job library stored name=%s bytes=%zu sha256=%s", name, len, hex);
    return EMBER_OK;
}

int em_libstore_has(em_libstore *ls, const uint8_t sha256[32]) { return find(ls, sha256) != NULL; }

const void *em_libstore_get(em_libstore *ls, const uint8_t sha256[32], size_t *len)
{
    em_lib *l = find(ls, sha256);
    if (!l) return NULL;
    l->used_us = em_now_us();
    *len = l->len;
    return l->bytes;
}
