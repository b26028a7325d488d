/* em_blockstore.c -- named byte blocks under a memory cap (see em_blockstore.h).
 *
 * Invariant: used == sum of len of blocks in the list; a removed block is freed when its
 * last reference is released.
 */
#include "em_blockstore.h"

#include <ember/ember.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct em_block {
    char *id;
    void *bytes;
    size_t len;
    int refs; /* the store's own reference + readers' */
    struct em_block *next;
};

struct em_blockstore {
    pthread_mutex_t lock;
    em_block *blocks;
    uint64_t used, cap, count;
};

em_blockstore *em_blockstore_new(uint64_t cap_bytes)
{
    em_blockstore *bs = calloc(1, sizeof *bs);
    if (!bs) return NULL;
    pthread_mutex_init(&bs->lock, NULL);
    bs->cap = cap_bytes;
    return bs;
}

static void block_unref(em_block *b)
{
    if (--b->refs > 0) return;
    free(b->id);
    free(b->bytes);
    free(b);
}

void em_blockstore_free(em_blockstore *bs)
{
    if (!bs) return;
    while (bs->blocks) {
        em_block *b = bs->blocks;
        bs->blocks = b->next;
        block_unref(b);
    }
    pthread_mutex_destroy(&bs->lock);
    free(bs);
}

static em_block **find(em_blockstore *bs, const char *id)
{
    em_block **p = &bs->blocks;
    while (*p && strcmp((*p)->id, id) != 0) p = &(*p)->next;
    return p;
}

int em_blockstore_put(em_blockstore *bs, const char *id, void *bytes, size_t len)
{
    em_block *b = calloc(1, sizeof *b);
    if (!b || !(b->id = strdup(id))) {
        free(b);
        return EMBER_ERR_NOMEM;
    }
    b->bytes = bytes;
    b->len = len;
    b->refs = 1;
    pthread_mutex_lock(&bs->lock);
    em_block **old = find(bs, id);
    uint64_t replaced = *old ? (*old)->len : 0;
    if (bs->used - replaced + len > bs->cap) {
        pthread_mutex_unlock(&bs->lock);
        free(b->id);
        free(b);
        return EMBER_ERR_TOO_LARGE;
    }
    if (*old) {
        em_block *o = *old;
        *old = o->next;
        bs->used -= o->len;
        bs->count--;
        block_unref(o);
    }
    b->next = bs->blocks;
    bs->blocks = b;
    bs->used += len;
    bs->count++;
    pthread_mutex_unlock(&bs->lock);
    return EMBER_OK;
}

em_block *em_blockstore_get(em_blockstore *bs, const char *id)
{
    pthread_mutex_lock(&bs->lock);
    em_block *b = *find(bs, id);
    if (b) b->refs++;
    pthread_mutex_unlock(&bs->lock);
    return b;
}

const void *em_block_data(const em_block *b, size_t *len)
{
    *len = b->len;
    return b->bytes;
}

void em_block_release(em_blockstore *bs, em_block *b)
{
    pthread_mutex_lock(&bs->lock);
    block_unref(b);
    pthread_mutex_unlock(&bs->lock);
}

int em_blockstore_remove(em_blockstore *bs, const char *id)
{
    pthread_mutex_lock(&bs->lock);
    em_block **p = find(bs, id), *b = *p;
    if (b) {
        *p = b->next;
        bs->used -= b->len;
        bs->count--;
        block_unref(b);
    }
    pthread_mutex_unlock(&bs->lock);
    return b ? EMBER_OK : EMBER_ERR_NOT_FOUND;
}

size_t em_blockstore_remove_prefix(em_blockstore *bs, const char *prefix)
{
    size_t n = 0, len = strlen(prefix);
    pthread_mutex_lock(&bs->lock);
    for (em_block **p = &bs->blocks; *p;) {
        em_block *b = *p;
        if (strncmp(b->id, prefix, len) != 0) {
            p = &b->next;
            continue;
        }
        *p = b->next;
        bs->used -= b->len;
        bs->count--;
        block_unref(b);
        n++;
    }
    pthread_mutex_unlock(&bs->lock);
    return n;
}

uint64_t em_blockstore_used(em_blockstore *bs)
{
    pthread_mutex_lock(&bs->lock);
    uint64_t u = bs->used;
    pthread_mutex_unlock(&bs->lock);
    return u;
}

uint64_t em_blockstore_count(em_blockstore *bs)
{
    pthread_mutex_lock(&bs->lock);
    uint64_t c = bs->count;
    pthread_mutex_unlock(&bs->lock);
    return c;
}
