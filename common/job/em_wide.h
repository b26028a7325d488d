/* em_wide.h -- value formats of the wide operations, and their built-in functions.
 *
 * Grouped records (group_by_key, cogroup) carry all values of a key in their value:
 *     u32 count, then per value: u8 side, u32 length, i64 timestamp, the value bytes
 * Joined records carry a pair:
 *     u32 left length, i64 left timestamp, left bytes, u8 has_right, [i64 right timestamp,
 *     right bytes]
 * All integers little-endian. The job API reads both (ember_group_next, ember_join_values);
 * executors write them. The built-ins below are ordinary user functions found by name
 * (EM_BUILTIN_PREFIX), so the job API composes joins and distinct from simpler nodes.
 */
#ifndef EM_WIDE_H
#define EM_WIDE_H

#include <ember/ember.h>
#include <stddef.h>
#include <stdint.h>

#include "em_buf.h"

#define EM_GROUP_HEADER 4  /* u32 count */
#define EM_GROUP_ENTRY  13 /* u8 side, u32 length, i64 timestamp */

/* em_group_begin starts a grouped value in b (emptied first). */
int em_group_begin(em_buf *b);
/* em_group_add appends one value of `side`; em_group_finish writes the count. */
int em_group_add(em_buf *b, uint32_t side, const ember_record *value);
void em_group_finish(em_buf *b, uint32_t count);

/* Built-ins (user-function signatures; arguments none). */
/* join_inner / join_left (flat_map over cogrouped records): the pairs of a key */
int ember_builtin_join_inner(ember_task *task, const ember_record *in);
int ember_builtin_join_left(ember_task *task, const ember_record *in);
/* pack_kv (map): (key, value) -> (u32 key length, key, value; empty value); unpack_kv undoes
 * it: distinct is pack -> keys-only combine -> unpack */
int ember_builtin_pack_kv(ember_task *task, const ember_record *in);
int ember_builtin_unpack_kv(ember_task *task, const ember_record *in);
/* sample_keys (map_partitions; argument: u32 sample size): a uniform sample of the
 * partition's keys (reservoir, seeded by the partition: the same on every run) */
int ember_builtin_sample_keys(ember_task *task, ember_iter *in);

/* em_wide_thread_end frees what a slot thread kept for reduce_by_key_fn (as it ends) */
void em_wide_thread_end(void);

#endif
