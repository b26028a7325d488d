/* em_fs.c -- durable directory and file operations (see em_fs.h). */
#define _XOPEN_SOURCE 700
#include "em_fs.h"

#include <ember/ember.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int em_mkdirs(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) return -1;
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int em_read_file(const char *path, size_t max_len, uint8_t **out, size_t *len, char *err,
                 size_t errlen)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return errno == ENOENT ? EMBER_ERR_NOT_FOUND : EMBER_ERR_IO;
    }
    struct stat st;
    int rc = fstat(fileno(f), &st) == 0 ? EMBER_OK : EMBER_ERR_IO;
    if (rc == EMBER_OK && (uint64_t)st.st_size > max_len) {
        snprintf(err, errlen, "%s is %lld bytes, more than the %zu expected at most", path,
                 (long long)st.st_size, max_len);
        rc = EMBER_ERR_TOO_LARGE;
    }
    size_t size = rc == EMBER_OK ? (size_t)st.st_size : 0;
    uint8_t *data = rc == EMBER_OK ? malloc(size ? size : 1) : NULL;
    if (rc == EMBER_OK && !data) rc = EMBER_ERR_NOMEM;
    if (rc == EMBER_OK && fread(data, 1, size, f) != size) {
        snprintf(err, errlen, "cannot read %s: %s", path,
                 ferror(f) ? strerror(errno) : "it shrank while read");
        rc = EMBER_ERR_IO;
    }
    fclose(f);
    if (rc != EMBER_OK) {
        if (!err[0]) snprintf(err, errlen, "cannot read %s: %s", path, ember_strerror(rc));
        free(data);
        return rc;
    }
    *out = data;
    *len = size;
    return EMBER_OK;
}

int em_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* parent_of writes the directory holding path into buf */
static const char *parent_of(const char *path, char *buf, size_t len)
{
    snprintf(buf, len, "%s", path);
    return dirname(buf);
}

int em_write_file_atomic(const char *path, const char *text, char *err, size_t errlen)
{
    return em_write_bytes_atomic(path, text, strlen(text), err, errlen);
}

int em_write_bytes_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
    char tmp[4096], dir[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return EMBER_ERR_IO;
    }
    int ok =
        (len == 0 || fwrite(data, 1, len, f) == len) && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0 || em_fsync_dir(parent_of(path, dir, sizeof dir)) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return EMBER_ERR_IO;
    }
    return EMBER_OK;
}

int em_rename_durable(const char *from, const char *to, char *err, size_t errlen)
{
    char dir[4096];
    if (rename(from, to) != 0 || em_fsync_dir(parent_of(to, dir, sizeof dir)) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", from, to, strerror(errno));
        return EMBER_ERR_IO;
    }
    return EMBER_OK;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

int em_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
