/* em_text_file.c -- the text file source (see em_text_file.h): listing and splitting files
 * where a job is built, reading a split's lines where its task runs. */
#include "em_text_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "em_graph.h"

/* ---- listing and splitting (the submitter) ------------------------------------------------- */

/* a file to split, as listed */
typedef struct listed {
    char *path;
    uint64_t size;
    int64_t mtime_ns;
} listed;

typedef struct listing {
    listed *files;
    size_t n, cap;
} listing;

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* add_file adds path if it is a regular file (made absolute); others are skipped. */
static int add_file(listing *l, const char *path, char *err, size_t errlen)
{
    char abs[PATH_MAX];
    struct stat st;
    if (!realpath(path, abs) || stat(abs, &st) != 0) {
        snprintf(err, errlen, "text file %s: %s", path, strerror(errno));
        return EMBER_ERR_IO;
    }
    if (!S_ISREG(st.st_mode)) return EMBER_OK;
    if (strlen(abs) > EM_GRAPH_MAX_PATH) {
        snprintf(err, errlen, "text file %s: path longer than %d bytes", abs, EM_GRAPH_MAX_PATH);
        return EMBER_ERR_TOO_LARGE;
    }
    if (l->n == EM_TEXT_FILES_MAX) {
        snprintf(err, errlen, "text files: more than %d files", EM_TEXT_FILES_MAX);
        return EMBER_ERR_TOO_LARGE;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        listed *f = realloc(l->files, cap * sizeof *f);
        if (!f) return EMBER_ERR_NOMEM;
        l->files = f;
        l->cap = cap;
    }
    char *copy = strdup(abs);
    if (!copy) return EMBER_ERR_NOMEM;
    l->files[l->n++] = (listed){copy, (uint64_t)st.st_size, mtime_ns(&st)};
    return EMBER_OK;
}

/* visible: a directory entry a text source reads (Hadoop's rule: not "_SUCCESS", ".crc"...) */
static int visible(const struct dirent *e) { return e->d_name[0] != '.' && e->d_name[0] != '_'; }

static int add_directory(listing *l, const char *dir, char *err, size_t errlen)
{
    struct dirent **names;
    int n = scandir(dir, &names, visible, alphasort);
    if (n < 0) {
        snprintf(err, errlen, "text files in %s: %s", dir, strerror(errno));
        return EMBER_ERR_IO;
    }
    int rc = EMBER_OK;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        if (rc == EMBER_OK) {
            if (snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name) >= (int)sizeof path) {
                snprintf(err, errlen, "text files in %s: a path too long", dir);
                rc = EMBER_ERR_TOO_LARGE;
            } else {
                rc = add_file(l, path, err, errlen);
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

static int list_files(listing *l, const char *pattern, char *err, size_t errlen)
{
    struct stat st;
    if (!strpbrk(pattern, "*?[")) {
        if (stat(pattern, &st) != 0) {
            snprintf(err, errlen, "text files %s: %s", pattern, strerror(errno));
            return errno == ENOENT ? EMBER_ERR_NOT_FOUND : EMBER_ERR_IO;
        }
        return S_ISDIR(st.st_mode) ? add_directory(l, pattern, err, errlen)
                                   : add_file(l, pattern, err, errlen);
    }
    glob_t g;
    int grc = glob(pattern, 0, NULL, &g); /* unreadable directories: no match there */
    if (grc == GLOB_NOMATCH) {
        snprintf(err, errlen, "text files %s: no file matches", pattern);
        return EMBER_ERR_NOT_FOUND;
    }
    if (grc != 0) {
        snprintf(err, errlen, "text files %s: %s", pattern,
                 grc == GLOB_NOSPACE ? "out of memory" : "cannot read a directory");
        return grc == GLOB_NOSPACE ? EMBER_ERR_NOMEM : EMBER_ERR_IO;
    }
    int rc = EMBER_OK;
    for (size_t i = 0; rc == EMBER_OK && i < g.gl_pathc; i++) /* sorted by glob */
        rc = add_file(l, g.gl_pathv[i], err, errlen);
    globfree(&g);
    return rc;
}

int em_text_is_gzip(const char *path)
{
    size_t n = strlen(path);
    return n > 3 && strcmp(path + n - 3, ".gz") == 0;
}

void em_text_splits_free(Ember__FileSplit **splits, size_t n)
{
    for (size_t i = 0; splits && i < n; i++) {
        free(splits[i]->path);
        free(splits[i]);
    }
    free(splits);
}

/* split_size: min_partitions' share of the bytes, within [1, EM_TEXT_SPLIT_MAX] */
static uint64_t split_size(const listing *l, uint32_t min_partitions)
{
    uint64_t total = 0;
    for (size_t i = 0; i < l->n; i++) total += l->files[i].size;
    uint64_t goal = total / (min_partitions ? min_partitions : 1); /* rounded down: enough splits */
    return goal < 1 ? 1 : goal > EM_TEXT_SPLIT_MAX ? EM_TEXT_SPLIT_MAX : goal;
}

static int add_split(Ember__FileSplit **out, const listed *f, uint64_t offset, uint64_t length)
{
    Ember__FileSplit *s = malloc(sizeof *s);
    if (!s) return EMBER_ERR_NOMEM;
    ember__file_split__init(s);
    if (!(s->path = strdup(f->path))) {
        free(s);
        return EMBER_ERR_NOMEM;
    }
    s->offset = offset;
    s->length = length;
    s->file_size = f->size;
    s->file_mtime_ns = f->mtime_ns;
    *out = s;
    return EMBER_OK;
}

/* piece_of: the bytes of each of a file's splits (a gzip file is one split, read whole) */
static uint64_t piece_of(const listed *f, uint64_t size)
{
    return em_text_is_gzip(f->path) ? f->size : size;
}

/* splits_of: how many splits a file is cut into (an empty file is one empty split) */
static uint64_t splits_of(const listed *f, uint64_t piece)
{
    return f->size ? (f->size + piece - 1) / piece : 1;
}

int em_text_plan(const char *pattern, uint32_t min_partitions, Ember__FileSplit ***splits,
                 size_t *n, char *err, size_t errlen)
{
    *splits = NULL;
    *n = 0;
    listing l = {0};
    int rc = list_files(&l, pattern, err, errlen);
    if (rc == EMBER_OK && l.n == 0) {
        snprintf(err, errlen, "text files %s: no file there", pattern);
        rc = EMBER_ERR_NOT_FOUND;
    }
    uint64_t size = rc == EMBER_OK ? split_size(&l, min_partitions) : 1, count = 0;
    for (size_t i = 0; i < l.n; i++) count += splits_of(&l.files[i], piece_of(&l.files[i], size));
    if (rc == EMBER_OK && count > EM_GRAPH_MAX_PARTITIONS) {
        snprintf(err, errlen, "text files %s: %llu splits, more than %d", pattern,
                 (unsigned long long)count, EM_GRAPH_MAX_PARTITIONS);
        rc = EMBER_ERR_TOO_LARGE;
    }
    Ember__FileSplit **out = rc == EMBER_OK ? calloc(count, sizeof *out) : NULL;
    if (rc == EMBER_OK && !out) rc = EMBER_ERR_NOMEM;
    size_t made = 0;
    for (size_t i = 0; rc == EMBER_OK && i < l.n; i++) {
        const listed *f = &l.files[i];
        uint64_t at = 0, piece = piece_of(f, size);
        do {
            uint64_t len = f->size - at < piece ? f->size - at : piece;
            rc = add_split(&out[made], f, at, len);
            made += rc == EMBER_OK;
            at += len;
        } while (rc == EMBER_OK && at < f->size);
    }
    for (size_t i = 0; i < l.n; i++) free(l.files[i].path);
    free(l.files);
    if (rc != EMBER_OK) {
        if (rc == EMBER_ERR_NOMEM) snprintf(err, errlen, "text files %s: out of memory", pattern);
        em_text_splits_free(out, made);
        return rc;
    }
    *splits = out;
    *n = made;
    return EMBER_OK;
}

/* ---- reading a split (the task) ------------------------------------------------------------ */

#define READ_CHUNK (1u << 20) /* bytes read from the file at once, and the first line buffer */

/* reader: a split's text read forward through one buffer, from the file as it was listed
 * (nothing past its listed size), through an inflater for a gzip file */
typedef struct reader {
    const char *path;
    int fd;
    uint64_t limit;   /* the listed size */
    uint64_t file_at; /* the next file offset to read */
    z_stream *z;      /* gzip only */
    uint8_t *zbuf;    /* gzip: compressed bytes read, the inflater's input */
    int in_member;    /* gzip: inside a member (its end not reached yet) */
    uint8_t *buf;
    size_t cap;
    size_t start, end; /* unconsumed text: buf[start, end) */
    size_t scanned;    /* of those, bytes already searched for '\n' */
    uint64_t pos;      /* the text offset of buf[start] (decompressed, for gzip) */
} reader;

/* read_file reads up to `want` bytes of the file at file_at, never past the listed size;
 * 0 at that size; <0 an error */
static ssize_t read_file(reader *r, uint8_t *dst, size_t want, char *err, size_t errlen)
{
    uint64_t left = r->limit - r->file_at;
    if (want > left) want = (size_t)left;
    if (want == 0) return 0;
    ssize_t got;
    while ((got = pread(r->fd, dst, want, (off_t)r->file_at)) < 0 && errno == EINTR) {
    }
    if (got <= 0) {
        snprintf(err, errlen, "text file %s: %s at byte %llu", r->path,
                 got < 0 ? strerror(errno) : "shorter than when the job listed it",
                 (unsigned long long)r->file_at);
        return got < 0 ? EMBER_ERR_IO : EMBER_ERR_DATA_LOST;
    }
    r->file_at += (uint64_t)got;
    return got;
}

/* inflate_some inflates at least one byte into dst (room bytes), reading the file as needed;
 * members follow one another (as gzip writes concatenated files). 0 at the end; <0 an error */
static ssize_t inflate_some(reader *r, uint8_t *dst, size_t room, char *err, size_t errlen)
{
    z_stream *z = r->z;
    z->next_out = dst;
    z->avail_out = (uInt)(room > UINT32_MAX ? UINT32_MAX : room);
    uInt before = z->avail_out;
    while (z->avail_out == before) {
        if (z->avail_in == 0) {
            ssize_t got = read_file(r, r->zbuf, READ_CHUNK, err, errlen);
            if (got < 0) return got;
            if (got == 0) {
                if (!r->in_member) return 0;
                snprintf(err, errlen, "text file %s: gzip data cut short at byte %llu", r->path,
                         (unsigned long long)r->file_at);
                return EMBER_ERR_MALFORMED;
            }
            z->next_in = r->zbuf;
            z->avail_in = (uInt)got;
        }
        int zr = inflate(z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END) {
            r->in_member = 0;
            if (inflateReset(z) != Z_OK) return EMBER_ERR_NOMEM;
        } else if (zr == Z_OK || zr == Z_BUF_ERROR) {
            r->in_member = 1;
        } else {
            snprintf(err, errlen, "text file %s: not gzip data, or corrupt, near byte %llu (%s)",
                     r->path, (unsigned long long)(r->file_at - z->avail_in),
                     z->msg ? z->msg : zError(zr));
            return zr == Z_MEM_ERROR ? EMBER_ERR_NOMEM : EMBER_ERR_MALFORMED;
        }
    }
    return (ssize_t)(before - z->avail_out);
}

/* fill adds text after buf[end], first moving the unconsumed bytes to the front and growing
 * the buffer if they fill it. 1: added some; 0: the end; <0: an error. */
static int fill(reader *r, char *err, size_t errlen)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->end == r->cap) {
        if (r->cap > EM_TEXT_LINE_MAX) {
            snprintf(err, errlen, "text file %s: the line at byte %llu is longer than %u MiB",
                     r->path, (unsigned long long)r->pos, EM_TEXT_LINE_MAX >> 20);
            return EMBER_ERR_TOO_LARGE;
        }
        uint8_t *b = realloc(r->buf, 2 * r->cap);
        if (!b) return EMBER_ERR_NOMEM;
        r->buf = b;
        r->cap *= 2;
    }
    size_t room = r->cap - r->end;
    ssize_t got = r->z ? inflate_some(r, r->buf + r->end, room, err, errlen)
                       : read_file(r, r->buf + r->end, room, err, errlen);
    if (got <= 0) return (int)got;
    r->end += (size_t)got;
    return 1;
}

/* next_line sets *line and *len to the next line (without its '\n') and consumes it.
 * 1: a line; 0: no more; <0: an error. */
static int next_line(reader *r, const uint8_t **line, size_t *len, char *err, size_t errlen)
{
    for (;;) {
        size_t from = r->start + r->scanned;
        const uint8_t *nl = memchr(r->buf + from, '\n', r->end - from);
        if (nl) {
            size_t n = (size_t)(nl - (r->buf + r->start));
            *line = r->buf + r->start;
            *len = n;
            r->start += n + 1;
            r->pos += n + 1;
            r->scanned = 0;
            return 1;
        }
        r->scanned = r->end - r->start;
        int rc = fill(r, err, errlen);
        if (rc < 0) return rc;
        if (rc == 0) { /* the end: the rest is a last line without '\n' */
            if (r->start == r->end) return 0;
            *line = r->buf + r->start;
            *len = r->end - r->start;
            r->pos += *len;
            r->start = r->end;
            r->scanned = 0;
            return 1;
        }
    }
}

/* open_split opens a split's file and checks it is the file that was listed */
static int open_split(const Ember__FileSplit *sp, int *fd, char *err, size_t errlen)
{
    struct stat st;
    *fd = open(sp->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO put there: no wait */
    if (*fd < 0 || fstat(*fd, &st) != 0) {
        int e = errno;
        if (*fd >= 0) close(*fd);
        if (e == ENOENT) {
            snprintf(err, errlen,
                     "text file %s: not found on this executor (the executors read a text "
                     "source's files at the paths the submitter listed: one machine, or a "
                     "shared file system)",
                     sp->path);
            return EMBER_ERR_NOT_FOUND;
        }
        snprintf(err, errlen, "text file %s: %s", sp->path, strerror(e));
        return EMBER_ERR_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "text file %s: no longer a regular file", sp->path);
        close(*fd);
        return EMBER_ERR_DATA_LOST;
    }
    if ((uint64_t)st.st_size != sp->file_size || mtime_ns(&st) != sp->file_mtime_ns) {
        snprintf(err, errlen,
                 "text file %s changed since the job listed it (%llu bytes then, %llu now%s)",
                 sp->path, (unsigned long long)sp->file_size, (unsigned long long)st.st_size,
                 mtime_ns(&st) != sp->file_mtime_ns ? ", modified since" : "");
        close(*fd);
        return EMBER_ERR_DATA_LOST;
    }
    posix_fadvise(*fd, (off_t)sp->offset, 0, POSIX_FADV_SEQUENTIAL);
    return EMBER_OK;
}

/* reader_open sets r up to read split sp from fd (an inflater for a gzip file) */
static int reader_open(reader *r, const Ember__FileSplit *sp, int fd)
{
    *r = (reader){.path = sp->path,
                  .fd = fd,
                  .limit = sp->file_size,
                  .file_at = sp->offset,
                  .buf = malloc(READ_CHUNK),
                  .cap = READ_CHUNK,
                  .pos = sp->offset};
    if (!r->buf) return EMBER_ERR_NOMEM;
    if (!em_text_is_gzip(sp->path)) return EMBER_OK;
    r->z = calloc(1, sizeof *r->z);
    r->zbuf = malloc(READ_CHUNK);
    /* 15 + 16: a gzip header and trailer around deflate data */
    if (!r->z || !r->zbuf || inflateInit2(r->z, 15 + 16) != Z_OK) {
        free(r->zbuf);
        free(r->z);
        r->z = NULL;
        return EMBER_ERR_NOMEM;
    }
    return EMBER_OK;
}

static void reader_close(reader *r)
{
    if (r->z) inflateEnd(r->z);
    free(r->z);
    free(r->zbuf);
    free(r->buf);
    close(r->fd);
}

int em_text_source(void *src, em_record_fn emit, void *emit_arg, char *err, size_t errlen)
{
    const em_text_source_arg *a = src;
    const Ember__FileSplit *sp = a->node->splits[a->partition];
    int fd;
    int rc = open_split(sp, &fd, err, errlen);
    if (rc != EMBER_OK) return rc;
    reader r;
    if ((rc = reader_open(&r, sp, fd)) != EMBER_OK) {
        free(r.buf);
        close(fd);
        return rc;
    }
    /* a gzip file is one split, read whole; a plain one's split holds the lines starting in
     * (offset, offset + length], and the first line for the split at 0 */
    uint64_t end = r.z ? UINT64_MAX : sp->offset + sp->length;
    const uint8_t *line;
    size_t len;
    /* past offset 0 the first line is the one after the first '\n' at or after offset: the
     * bytes before it belong to a line that started in an earlier split */
    int got = sp->offset > 0 ? next_line(&r, &line, &len, err, errlen) : 1;
    while (got > 0 && rc == EMBER_OK && r.pos <= end) {
        if ((got = next_line(&r, &line, &len, err, errlen)) <= 0) break;
        if (len > 0 && line[len - 1] == '\r') len--;
        ember_record rec = {NULL, 0, line, len, 0};
        rc = emit(emit_arg, &rec);
    }
    if (got < 0) rc = got;
    reader_close(&r);
    return rc;
}
