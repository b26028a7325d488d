/* em_fs.h -- files that must survive a crash: directories made whole, writes that land at
 * once or not at all, and renames made durable (the parent directory synced after them).
 */
#ifndef EM_FS_H
#define EM_FS_H

#include <stddef.h>
#include <stdint.h>

/* em_mkdirs makes dir and its missing parents (mode 0755); an existing one is fine. */
int em_mkdirs(const char *dir);
/* em_fsync_dir makes the entries of dir (created, renamed, removed files) durable. */
int em_fsync_dir(const char *dir);
/* em_write_file_atomic writes text to path through a temporary file, fsync and rename, then
 * syncs the directory: after a crash, path holds the old text or the new one, whole. */
int em_write_file_atomic(const char *path, const char *text, char *err, size_t errlen);
/* em_write_bytes_atomic is em_write_file_atomic for len bytes of any content. */
int em_write_bytes_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);
/* em_read_file reads all of path, at most max_len bytes, into *out (malloc'd; free it) and
 * *len. A missing file is EMBER_ERR_NOT_FOUND, a longer one EMBER_ERR_TOO_LARGE, each with
 * the path in err. */
int em_read_file(const char *path, size_t max_len, uint8_t **out, size_t *len, char *err,
                 size_t errlen);
/* em_rename_durable renames from to to (same filesystem) and syncs to's directory. */
int em_rename_durable(const char *from, const char *to, char *err, size_t errlen);
/* em_remove_tree removes path and everything below it; a missing path is fine. */
int em_remove_tree(const char *path);

#endif
