/* em_text_file.h -- the text file source: files cut into splits when a job is built, and a
 * split's lines read by the task of its partition.
 *
 * A split is a byte range (offset, offset + length] of one file; it holds the lines whose
 * first byte lies in that range (and the file's first line, for the split at offset 0), read
 * to their end even past the range. So every line of a file belongs to exactly one split,
 * however the file is cut, and a line is never read twice. Lines end at '\n'; a '\r' before
 * it is dropped, and a last line without '\n' is a line. A file whose name ends in ".gz" is
 * gzip (zlib inflates it, members one after another) and one split, read whole. Files are read by
 * path on the executors, which must see them as the submitter did (one machine, or a shared file
 * system): a task whose file has another size or modification time than when it was listed fails.
 */
#ifndef EM_TEXT_FILE_H
#define EM_TEXT_FILE_H

#include <ember/ember.h>
#include <stddef.h>
#include <stdint.h>

#include "em_pipeline.h"
#include "ember.pb-c.h"

#define EM_TEXT_LINE_MAX  (64u << 20) /* bytes of one line */
#define EM_TEXT_SPLIT_MAX (32u << 20) /* bytes of one split, at most (Spark's local block) */
#define EM_TEXT_FILES_MAX 100000      /* files one source reads */

/* em_text_plan lists `pattern` -- a file, a directory (its files, not those whose name starts
 * with '.' or '_'), or a glob(7) pattern -- and cuts the files into at least min_partitions
 * splits of at most EM_TEXT_SPLIT_MAX bytes, in path order (an empty file is one empty split).
 * Sets *splits (each split and the array malloc'ed; em_text_splits_free) and *n. Errors:
 * EMBER_ERR_NOT_FOUND (nothing matches), EMBER_ERR_IO, EMBER_ERR_TOO_LARGE, EMBER_ERR_NOMEM,
 * each with err. */
int em_text_plan(const char *pattern, uint32_t min_partitions, Ember__FileSplit ***splits,
                 size_t *n, char *err, size_t errlen);
void em_text_splits_free(Ember__FileSplit **splits, size_t n);
/* em_text_is_gzip: the path ends in ".gz" */
int em_text_is_gzip(const char *path);

/* em_text_source_arg: partition `partition` of a text file node (an em_source_fn). Each line is
 * a record with an empty key and the line as its value. */
typedef struct em_text_source_arg {
    const Ember__Node *node;
    uint32_t partition;
} em_text_source_arg;
int em_text_source(void *src, em_record_fn emit, void *emit_arg, char *err, size_t errlen);

#endif
