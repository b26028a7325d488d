/* em_blockstore.c -- named byte blocks in memory, spilled to files over a memory cap (see
 * em_blockstore.h).
 *
 * Invariants, under bs->lock:
 * - a block is in memory (bytes or chunks set, path NULL) or on disk (path set, bytes and
 *   chunks NULL); a disk block's file is read into pooled chunks (loaded) or mapped (map) by
 *   its first reader, under the block's own load lock, and given back or unmapped when its
 *   last reader releases it; loaded_bytes == sum of len of loaded blocks <= cap / 4;
 * - used == sum of held of listed memory blocks <= cap (held: the memory a block holds, its
 *   chunks' sizes, which a small block's last chunk can make up to about twice its bytes);
 *   disk == sum of len of listed disk blocks; count == number of listed blocks (a block
 *   removed or replaced while read is no longer counted);
 * - a block is destroyed (memory freed, spill file unlinked) once it is neither listed nor
 *   read, by whoever makes it so, after dropping the lock.
 * Spill files are written outside the lock, then listed. Their names are the block id with
 * every byte outside [A-Za-z0-9_-] escaped as %XX (so no '/' and no "..": a name never leaves
 * the directory), cut to ~96 bytes, plus ".<n>" with n unique to the store; they are created
 * with O_EXCL. So a removed block's file, unlinked by its last reader, is never the file of a
 * newer block of the same id, and two stores can share a directory.
 * A spilled block is read back with pread into chunks of the pool, one per piece it was
 * written from (so record batches still never straddle two pieces): the pool's chunks are
 * pages the executor already has, where a mapping takes a page fault per page on every read
 * and a TLB shootdown when unmapped (bench/shuffle, spilling). Blocks read at once are held
 * that way up to a quarter of the memory cap; past it (a reduce task holding many buckets to
 * group or sort them) a block's file is mapped, so its pages stay the page cache's to drop.
 */
#include "em_blockstore.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ember/ember.h>

#include "em_chunks.h"
#include "em_log.h"

#define NAME_MAX_ID 96 /* escaped id bytes in a spill file name */
/* disk blocks read into chunks at once: at most this fraction (1/x) of the memory cap */
#define EM_LOADED_SHARE_X 4

struct em_block {
    char *id;
    void *bytes;      /* memory block: the caller's malloc'd bytes, */
    em_chunk *chunks; /* or chunks of batches (n_chunks of them); both NULL on disk */
    size_t n_chunks;
    char *path;            /* disk block: its spill file; NULL in memory */
    size_t *piece_lens;    /* disk block: the pieces it was written from (NULL: one) */
    size_t n_pieces;       /* disk block: how many (at least 1) */
    pthread_mutex_t load;  /* disk block: guards loaded and map, set by its first reader */
    em_chunk *loaded;      /* disk block: its pieces while readers > 0, or NULL */
    void *map;             /* disk block: or its file mapped read-only, or NULL */
    size_t len;            /* bytes of the block */
    size_t held;           /* memory block: the memory it holds (chunk sizes, or len) */
    int readers;           /* gets not yet released */
    int listed;            /* in the store's list, found by get */
    uint64_t last_use;     /* the store's clock at its last put or get (LRU eviction) */
    struct em_block *next; /* the store's list; once unlisted, a list of blocks to destroy */
};

struct em_blockstore {
    pthread_mutex_t lock;
    em_block *blocks;       /* every listed block */
    uint64_t used;          /* bytes of listed memory blocks */
    uint64_t disk;          /* bytes of listed disk blocks */
    uint64_t spilled;       /* bytes of every block ever spilled */
    uint64_t loaded_bytes;  /* bytes of disk blocks read into chunks */
    uint64_t count;         /* listed blocks */
    uint64_t cap;           /* memory cap; immutable */
    char *spill_dir;        /* NULL: never spill; immutable */
    int dir_ready;          /* spill_dir is known to exist */
    int dir_created;        /* this store made spill_dir: free removes it */
    _Atomic uint64_t files; /* spill files named so far (the ".<n>" of names) */
    uint64_t clock;         /* ticks at every put and get */
};

em_blockstore *em_blockstore_new(uint64_t cap_bytes, const char *spill_dir)
{
    em_blockstore *bs = calloc(1, sizeof *bs);
    if (!bs) return NULL;
    if (spill_dir && !(bs->spill_dir = strdup(spill_dir))) {
        free(bs);
        return NULL;
    }
    pthread_mutex_init(&bs->lock, NULL);
    bs->cap = cap_bytes;
    atomic_init(&bs->files, 0);
    return bs;
}

/* free_memory frees a block's bytes or chunks */
static void free_memory(em_block *b)
{
    free(b->bytes);
    em_chunks_put(b->chunks, b->n_chunks);
    free(b->chunks);
    b->bytes = NULL;
    b->chunks = NULL;
    b->n_chunks = 0;
}

/* free_block frees the block itself, not its bytes, chunks or file (for a block never listed,
 * those stay the caller's) */
static void free_block(em_block *b)
{
    pthread_mutex_destroy(&b->load);
    free(b->id);
    free(b);
}

/* destroy frees a block nobody can reach any more (unlisted, no reader) and unlinks its file.
 * Called without the lock. */
static void destroy(em_block *b)
{
    EM_ASSERT(!b->listed && b->readers == 0 && !b->loaded && !b->map);
    if (b->path && unlink(b->path) != 0 && errno != ENOENT)
        em_warn("cannot remove spill file path=%s error=\"%s\"", b->path, strerror(errno));
    free(b->path);
    free(b->piece_lens);
    free_memory(b);
    free_block(b);
}

static void destroy_list(em_block *dead)
{
    while (dead) {
        em_block *next = dead->next;
        destroy(dead);
        dead = next;
    }
}

void em_blockstore_free(em_blockstore *bs)
{
    if (!bs) return;
    while (bs->blocks) {
        em_block *b = bs->blocks;
        bs->blocks = b->next;
        EM_ASSERT(b->readers == 0); /* freeing a store whose blocks are still being read */
        b->listed = 0;
        destroy(b);
    }
    if (bs->dir_created && rmdir(bs->spill_dir) != 0)
        em_warn("cannot remove spill directory path=%s error=\"%s\"", bs->spill_dir,
                strerror(errno));
    pthread_mutex_destroy(&bs->lock);
    free(bs->spill_dir);
    free(bs);
}

static em_block **find(em_blockstore *bs, const char *id)
{
    em_block **p = &bs->blocks;
    while (*p && strcmp((*p)->id, id) != 0) p = &(*p)->next;
    return p;
}

/* unlist takes *p out of the list and the accounting; returns the block if the caller must
 * destroy it (no reader), NULL if its last reader will. Needs the lock. */
static em_block *unlist(em_blockstore *bs, em_block **p)
{
    em_block *b = *p;
    *p = b->next;
    b->next = NULL;
    b->listed = 0;
    if (b->path)
        bs->disk -= b->len;
    else
        bs->used -= b->held;
    bs->count--;
    return b->readers == 0 ? b : NULL;
}

/* insert lists b in place of any block of its id; returns the replaced block if the caller
 * must destroy it. Needs the lock. */
static em_block *insert(em_blockstore *bs, em_block *b)
{
    b->last_use = ++bs->clock;
    em_block **old = find(bs, b->id), *dead = *old ? unlist(bs, old) : NULL;
    b->listed = 1;
    b->next = bs->blocks;
    bs->blocks = b;
    if (b->path) {
        bs->disk += b->len;
        bs->spilled += b->len;
    } else {
        bs->used += b->held;
    }
    bs->count++;
    return dead;
}

/* spill_dir_ready makes sure the spill directory exists. Needs the lock. */
static int spill_dir_ready(em_blockstore *bs, char *err, size_t errlen)
{
    if (!bs->spill_dir) {
        snprintf(err, errlen, "over the memory cap (%llu bytes) and no spill directory is set",
                 (unsigned long long)bs->cap);
        return EMBER_ERR_IO;
    }
    if (bs->dir_ready) return EMBER_OK;
    if (mkdir(bs->spill_dir, 0700) == 0) {
        bs->dir_created = 1;
    } else if (errno != EEXIST) {
        snprintf(err, errlen,
                 "over the memory cap (%llu bytes) and cannot create spill directory %s: %s",
                 (unsigned long long)bs->cap, bs->spill_dir, strerror(errno));
        return EMBER_ERR_IO;
    }
    bs->dir_ready = 1;
    return EMBER_OK;
}

/* file_name writes a fresh spill file name for id: escaped, cut, numbered. */
static void file_name(em_blockstore *bs, const char *id, char *name, size_t name_len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)id; *c && n + 3 <= NAME_MAX_ID; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '_' || *c == '-') {
            name[n++] = (char)*c;
        } else {
            name[n++] = '%';
            name[n++] = hex[*c >> 4];
            name[n++] = hex[*c & 15];
        }
    }
    snprintf(name + n, name_len - n, ".%llu",
             (unsigned long long)atomic_fetch_add(&bs->files, 1) + 1);
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len < (1u << 30) ? len : (1u << 30));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) {
            errno = ENOSPC;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* spill writes b's bytes (or chunks) to a new file of the spill directory and sets b->path.
 * Called without the lock; b is not listed yet. The memory stays b's: the caller frees it. */
static int spill(em_blockstore *bs, em_block *b, char *err, size_t errlen)
{
    char name[NAME_MAX_ID + 32];
    size_t path_len = strlen(bs->spill_dir) + 1 + sizeof name;
    char *path = malloc(path_len);
    if (!path) {
        snprintf(err, errlen, "out of memory spilling block %s", b->id);
        return EMBER_ERR_NOMEM;
    }
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        file_name(bs, b->id, name, sizeof name);
        snprintf(path, path_len, "%s/%s", bs->spill_dir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST) break; /* EEXIST: another store's file; next name */
    }
    size_t *lens = b->n_chunks > 1 ? malloc(b->n_chunks * sizeof *lens) : NULL;
    int ok = fd >= 0 && (b->n_chunks <= 1 || lens) &&
             (b->chunks || write_all(fd, b->bytes, b->len) == 0);
    for (size_t i = 0; ok && i < b->n_chunks; i++) {
        ok = write_all(fd, b->chunks[i].p, b->chunks[i].len) == 0;
        if (lens) lens[i] = b->chunks[i].len;
    }
    int saved = errno;
    if (fd >= 0 && close(fd) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (!ok) {
        snprintf(err, errlen, "over the memory cap (%llu bytes) and cannot be spilled: %s %s: %s",
                 (unsigned long long)bs->cap, fd >= 0 ? "write" : "create", path, strerror(saved));
        if (fd >= 0) unlink(path);
        free(path);
        free(lens);
        return EMBER_ERR_IO;
    }
    b->path = path;
    b->piece_lens = lens;
    b->n_pieces = lens ? b->n_chunks : 1;
    return EMBER_OK;
}

/* new_block makes an unlisted block of id, NULL when out of memory */
static em_block *new_block(const char *id)
{
    em_block *b = calloc(1, sizeof *b);
    if (b && !(b->id = strdup(id))) {
        free(b);
        b = NULL;
    }
    if (b) pthread_mutex_init(&b->load, NULL);
    return b;
}

/* put lists b, in memory or spilled (*spilled, if not NULL, grows by its bytes); on failure
 * b is freed but its memory is not (the caller's again) */
static int put(em_blockstore *bs, em_block *b, uint64_t *spilled, char *err, size_t errlen)
{
    size_t len = b->len;
    pthread_mutex_lock(&bs->lock);
    em_block *old = *find(bs, b->id);
    /* memory in use besides a memory block this one replaces; <= used <= cap */
    uint64_t others = bs->used - (old && !old->path ? old->held : 0);
    if (b->held <= bs->cap - others) {
        em_block *dead = insert(bs, b);
        pthread_mutex_unlock(&bs->lock);
        destroy_list(dead);
        return EMBER_OK;
    }
    int rc = spill_dir_ready(bs, err, errlen);
    pthread_mutex_unlock(&bs->lock);
    EM_ASSERT(len > 0); /* 0 bytes always fit: disk blocks are never empty */
    if (rc == EMBER_OK) rc = spill(bs, b, err, errlen);
    if (rc != EMBER_OK) {
        free_block(b);
        return rc;
    }
    em_debug("block spilled id=%s bytes=%zu path=%s", b->id, len, b->path);
    if (spilled) *spilled += len;
    free_memory(b);
    pthread_mutex_lock(&bs->lock);
    em_block *dead = insert(bs, b); /* from here on, b may be removed by another thread */
    pthread_mutex_unlock(&bs->lock);
    destroy_list(dead);
    return EMBER_OK;
}

int em_blockstore_put(em_blockstore *bs, const char *id, void *bytes, size_t len, char *err,
                      size_t errlen)
{
    em_block *b = new_block(id);
    if (!b) {
        snprintf(err, errlen, "out of memory storing block %s", id);
        return EMBER_ERR_NOMEM;
    }
    b->bytes = bytes;
    b->len = b->held = len;
    return put(bs, b, NULL, err, errlen);
}

int em_blockstore_put_chunks(em_blockstore *bs, const char *id, em_chunk *chunks, size_t n,
                             uint64_t *spilled, char *err, size_t errlen)
{
    em_block *b = new_block(id);
    if (!b) {
        snprintf(err, errlen, "out of memory storing block %s", id);
        return EMBER_ERR_NOMEM;
    }
    b->chunks = chunks;
    b->n_chunks = n;
    for (size_t i = 0; i < n; i++) {
        b->len += chunks[i].len;
        b->held += chunks[i].cap;
    }
    return put(bs, b, spilled, err, errlen);
}

static size_t piece_len(const em_block *b, size_t i)
{
    return b->piece_lens ? b->piece_lens[i] : b->len;
}

/* load_pieces reads a disk block's file into pooled chunks, one per piece; NULL on failure
 * (logged). Called without the store's lock, with a reference held. */
static em_chunk *load_pieces(const em_block *b)
{
    em_chunk *c = calloc(b->n_pieces, sizeof *c);
    int fd = open(b->path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int ok = c && fd >= 0 && fstat(fd, &st) == 0;
    if (ok && (uint64_t)st.st_size != b->len) { /* truncated by someone else */
        ok = 0;
        errno = EIO;
    }
    off_t at = 0;
    for (size_t i = 0; ok && i < b->n_pieces; i++) {
        size_t want = piece_len(b, i);
        ok = em_chunk_get(&c[i], want) == EMBER_OK;
        if (!ok) errno = ENOMEM;
        while (ok && c[i].len < want) {
            ssize_t n = pread(fd, c[i].p + c[i].len, want - c[i].len, at);
            if (n > 0) {
                c[i].len += (size_t)n;
                at += n;
            } else if (n == 0 || errno != EINTR) {
                if (n == 0) errno = EIO; /* shorter than it was written */
                ok = 0;
            }
        }
    }
    int saved = errno;
    if (fd >= 0) close(fd);
    if (ok) return c;
    em_warn("cannot read spill file id=%s path=%s error=\"%s\"", b->id, b->path, strerror(saved));
    if (c) em_chunks_put(c, b->n_pieces);
    free(c);
    return NULL;
}

/* map_file maps a disk block's file read-only; NULL on failure (logged) */
static void *map_file(const em_block *b)
{
    int fd = open(b->path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    void *m = MAP_FAILED;
    if (fd >= 0 && fstat(fd, &st) == 0) {
        if ((uint64_t)st.st_size == b->len)
            m = mmap(NULL, b->len, PROT_READ, MAP_SHARED, fd, 0);
        else
            errno = EIO; /* truncated by someone else: reading past its end would be SIGBUS */
    }
    int saved = errno;
    if (fd >= 0) close(fd);
    if (m == MAP_FAILED) {
        em_warn("cannot map spill file id=%s path=%s error=\"%s\"", b->id, b->path,
                strerror(saved));
        return NULL;
    }
    posix_madvise(m, b->len, POSIX_MADV_SEQUENTIAL);
    return m;
}

/* open_disk_block makes a referenced disk block readable: into chunks while the blocks read
 * that way stay within a quarter of the memory cap, else mapped. 0 when it cannot be read. */
static int open_disk_block(em_blockstore *bs, em_block *b)
{
    pthread_mutex_lock(&b->load); /* the first reader reads the file, the others wait */
    if (!b->loaded && !b->map) {
        pthread_mutex_lock(&bs->lock);
        uint64_t budget = bs->cap / EM_LOADED_SHARE_X;
        int fits = b->len <= budget - (bs->loaded_bytes < budget ? bs->loaded_bytes : budget);
        if (fits) bs->loaded_bytes += b->len;
        pthread_mutex_unlock(&bs->lock);
        if (fits && !(b->loaded = load_pieces(b))) {
            pthread_mutex_lock(&bs->lock);
            bs->loaded_bytes -= b->len;
            pthread_mutex_unlock(&bs->lock);
        }
        if (!fits) b->map = map_file(b);
    }
    int readable = b->loaded || b->map;
    pthread_mutex_unlock(&b->load);
    return readable;
}

/* unref drops a reference; returns the block if the caller must destroy it, and hands its
 * loaded pieces or mapping over to give back (outside the lock) */
static em_block *unref(em_blockstore *bs, em_block *b, em_chunk **pieces, void **map)
{
    em_block *dead = NULL;
    pthread_mutex_lock(&bs->lock);
    EM_ASSERT(b->readers > 0);
    if (--b->readers == 0) { /* no other reader: nothing being loaded */
        *pieces = b->loaded;
        *map = b->map;
        if (b->loaded) bs->loaded_bytes -= b->len;
        b->loaded = NULL;
        b->map = NULL;
        if (!b->listed) dead = b;
    }
    pthread_mutex_unlock(&bs->lock);
    return dead;
}

em_block *em_blockstore_get(em_blockstore *bs, const char *id)
{
    pthread_mutex_lock(&bs->lock);
    em_block *b = *find(bs, id);
    if (b) {
        b->readers++;
        b->last_use = ++bs->clock;
    }
    pthread_mutex_unlock(&bs->lock);
    /* (path is set before a block is listed, never after) */
    if (!b || !b->path || open_disk_block(bs, b)) return b;
    em_block_release(bs, b);
    return NULL;
}

/* the pieces a referenced block is read in: its chunks in memory or loaded, else one */
static const em_chunk *chunks_of(const em_block *b, size_t *n)
{
    *n = b->path ? b->n_pieces : b->n_chunks;
    return b->path ? b->loaded : b->chunks;
}

const void *em_block_data(const em_block *b, size_t *len)
{
    size_t n;
    const em_chunk *c = chunks_of(b, &n);
    EM_ASSERT(!c || n <= 1); /* a block in several pieces is read piece by piece */
    *len = b->len;
    if (c) return c[0].p;
    return b->path ? b->map : b->bytes;
}

size_t em_block_pieces(const em_block *b)
{
    size_t n;
    return chunks_of(b, &n) ? n : 1;
}

const void *em_block_piece(const em_block *b, size_t i, size_t *len)
{
    EM_ASSERT(i < em_block_pieces(b));
    size_t n;
    const em_chunk *c = chunks_of(b, &n);
    if (!c) return em_block_data(b, len);
    *len = c[i].len;
    return c[i].p;
}

void em_block_release(em_blockstore *bs, em_block *b)
{
    size_t n = b->n_pieces, len = b->len; /* b may be gone once unreferenced, unless dead */
    em_chunk *pieces = NULL;
    void *map = NULL;
    em_block *dead = unref(bs, b, &pieces, &map);
    if (pieces) em_chunks_put(pieces, n);
    free(pieces);
    if (map) munmap(map, len);
    if (dead) destroy(dead);
}

int em_blockstore_remove(em_blockstore *bs, const char *id)
{
    pthread_mutex_lock(&bs->lock);
    em_block **p = find(bs, id), *dead = NULL;
    int found = *p != NULL;
    if (found) dead = unlist(bs, p);
    pthread_mutex_unlock(&bs->lock);
    destroy_list(dead);
    return found ? EMBER_OK : EMBER_ERR_NOT_FOUND;
}

size_t em_blockstore_remove_prefix(em_blockstore *bs, const char *prefix)
{
    size_t n = 0, len = strlen(prefix);
    em_block *dead = NULL;
    pthread_mutex_lock(&bs->lock);
    for (em_block **p = &bs->blocks; *p;) {
        if (strncmp((*p)->id, prefix, len) != 0) {
            p = &(*p)->next;
            continue;
        }
        em_block *b = unlist(bs, p); /* *p is now the next block */
        if (b) {
            b->next = dead;
            dead = b;
        }
        n++;
    }
    pthread_mutex_unlock(&bs->lock);
    destroy_list(dead); /* unlinks outside the lock: big files take a while */
    return n;
}

/* evictable: a memory block whose id starts with `evictable` but not with `keep` */
static int evictable_block(const em_block *b, const char *evictable, const char *keep)
{
    return !b->path && strncmp(b->id, evictable, strlen(evictable)) == 0 &&
           strncmp(b->id, keep, strlen(keep)) != 0;
}

int em_blockstore_put_evicting(em_blockstore *bs, const char *id, void *bytes, size_t len,
                               const char *evictable, const char *keep,
                               void (*evicted)(void *arg, const char *id, size_t len), void *arg)
{
    em_block *b = new_block(id);
    if (!b) return EMBER_ERR_NOMEM;
    b->bytes = bytes;
    b->len = b->held = len;
    em_block *dead = NULL;
    pthread_mutex_lock(&bs->lock);
    /* evictable memory: could the block fit once every evictable block is gone? */
    uint64_t room = bs->cap - bs->used;
    for (em_block *o = bs->blocks; o; o = o->next)
        if (evictable_block(o, evictable, keep)) room += o->held;
    int fits = len <= room;
    while (fits && len > bs->cap - bs->used) { /* the least recently used goes first */
        em_block **victim = NULL;
        for (em_block **p = &bs->blocks; *p; p = &(*p)->next)
            if (evictable_block(*p, evictable, keep) &&
                (!victim || (*p)->last_use < (*victim)->last_use))
                victim = p;
        if (evicted) evicted(arg, (*victim)->id, (*victim)->len);
        em_block *gone = unlist(bs, victim);
        if (gone) {
            gone->next = dead;
            dead = gone;
        }
    }
    em_block *replaced = fits ? insert(bs, b) : NULL;
    if (replaced) {
        replaced->next = dead;
        dead = replaced;
    }
    pthread_mutex_unlock(&bs->lock);
    destroy_list(dead);
    if (!fits) {
        free_block(b); /* the bytes stay the caller's */
        return EMBER_ERR_TOO_LARGE;
    }
    return EMBER_OK;
}

uint64_t em_blockstore_used(em_blockstore *bs)
{
    pthread_mutex_lock(&bs->lock);
    uint64_t u = bs->used;
    pthread_mutex_unlock(&bs->lock);
    return u;
}

uint64_t em_blockstore_disk_used(em_blockstore *bs)
{
    pthread_mutex_lock(&bs->lock);
    uint64_t d = bs->disk;
    pthread_mutex_unlock(&bs->lock);
    return d;
}

uint64_t em_blockstore_spilled(em_blockstore *bs)
{
    pthread_mutex_lock(&bs->lock);
    uint64_t s = bs->spilled;
    pthread_mutex_unlock(&bs->lock);
    return s;
}

uint64_t em_blockstore_count(em_blockstore *bs)
{
    pthread_mutex_lock(&bs->lock);
    uint64_t c = bs->count;
    pthread_mutex_unlock(&bs->lock);
    return c;
}
