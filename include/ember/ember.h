/* ember.h -- the one public header of ember's job API (version 1).
 *
 * A job is a shared object built against this header alone. ember-submit loads it, calls its
 * entry point `ember_main`, and the entry point builds datasets and runs actions:
 *
 *     int ember_main(ember_ctx *ctx, int argc, char **argv)
 *     {
 *         ember_dataset *lines = ember_kafka_topic(ctx, "taxi");
 *         ember_dataset *bad   = ember_filter(lines, is_malformed, NULL, 0);
 *         int64_t n;
 *         if (ember_count(bad, &n) != EMBER_OK) return 1;
 *         printf("%lld malformed lines\n", (long long)n);
 *         return 0;
 *     }
 *
 * Datasets are lazy nodes of a lineage graph; an action (count, collect, save) ships the graph
 * to the driver, which cuts it into stages of one task per partition and runs them on the
 * executors. User functions run on the executors, which load the same .so: every function
 * passed to this API must therefore be an exported (non-static) symbol of the job; a static
 * function is refused when the dataset is built, with a clear message.
 *
 * Errors are sticky: a call that fails returns NULL or a negative ember_err, and the context
 * keeps the first message (ember_last_error). Datasets built from a failed dataset fail too.
 * Datasets belong to their context and are freed with it; a job never frees them.
 */
#ifndef EMBER_EMBER_H
#define EMBER_EMBER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* EMBER_API_VERSION changes whenever a job built against another ember.h could misread
 * ember's structures. Every job library records the version it was built against (the
 * definition below, one per library), and ember-submit and the executors refuse a library of
 * another version, naming both. */
#define EMBER_API_VERSION 2
#ifndef EMBER_INTERNAL /* ember's own programs host jobs; they do not record a version */
__attribute__((weak, used, visibility("default"))) const int ember_api_version = EMBER_API_VERSION;
#endif

/* EMBER_ERRORS lists every error code once: name, value, message. */
#define EMBER_ERRORS(X)                                                                            \
    X(EMBER_OK, 0, "success")                                                                      \
    X(EMBER_ERR_NOMEM, -1, "out of memory")                                                        \
    X(EMBER_ERR_INVALID, -2, "invalid argument")                                                   \
    X(EMBER_ERR_MALFORMED, -3, "malformed or corrupt data")                                        \
    X(EMBER_ERR_TOO_LARGE, -4, "size limit exceeded")                                              \
    X(EMBER_ERR_IO, -5, "input/output error")                                                      \
    X(EMBER_ERR_NOT_FOUND, -6, "not found")                                                        \
    X(EMBER_ERR_TIMEOUT, -7, "timed out")                                                          \
    X(EMBER_ERR_CONNECT, -8, "cannot reach peer")                                                  \
    X(EMBER_ERR_PROTOCOL, -9, "protocol violation")                                                \
    X(EMBER_ERR_UNAUTHENTICATED, -10, "connection not authenticated")                              \
    X(EMBER_ERR_SYMBOL, -11, "user function is not an exported symbol of the job")                 \
    X(EMBER_ERR_LIBRARY, -12, "job library cannot be loaded")                                      \
    X(EMBER_ERR_KAFKA, -13, "kafka error")                                                         \
    X(EMBER_ERR_USER, -14, "user function failed")                                                 \
    X(EMBER_ERR_JOB_FAILED, -15, "job failed")                                                     \
    X(EMBER_ERR_EXECUTOR_LOST, -16, "executor lost")                                               \
    X(EMBER_ERR_CANCELLED, -17, "cancelled")                                                       \
    X(EMBER_ERR_STATE, -18, "operation not valid in this state")                                   \
    X(EMBER_ERR_DATA_LOST, -19, "input data no longer available")

/* ember_err: EMBER_OK or a negative error code. */
typedef enum ember_err {
#define EMBER_ERR_ENUM_(name, value, msg) name = value,
    EMBER_ERRORS(EMBER_ERR_ENUM_)
#undef EMBER_ERR_ENUM_
} ember_err;

/* ember_strerror returns the fixed message of an error code. */
const char *ember_strerror(int err);
/* ember_err_name returns the symbolic name of an error code, e.g. "EMBER_ERR_KAFKA". */
const char *ember_err_name(int err);

/* ember_record: one record, a view into memory owned by ember (valid during the call only).
 * Keys and values are byte strings, not NUL-terminated. timestamp is in milliseconds since the
 * epoch (Kafka's message timestamp for Kafka sources, 0 when unknown). */
typedef struct ember_record {
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    int64_t timestamp;
} ember_record;

typedef struct ember_ctx ember_ctx;         /* one per job run, given to ember_main */
typedef struct ember_dataset ember_dataset; /* a lazy node of the lineage graph */
typedef struct ember_task ember_task;       /* the running task, as user functions see it */
typedef struct ember_iter ember_iter;       /* a partition's records, for map_partitions */

/* ---- User functions (run on executors) --------------------------------------------------
 * Every function returns EMBER_OK (0) on success or a negative value on failure; a failure
 * fails the task with the message set by ember_task_fail (or a generic one). */

/* ember_map_fn: for map (exactly one ember_emit per input) and flat_map (zero or more). */
typedef int (*ember_map_fn)(ember_task *task, const ember_record *in);
/* ember_filter_fn returns 1 to keep the record, 0 to drop it, negative to fail. */
typedef int (*ember_filter_fn)(ember_task *task, const ember_record *in);
/* ember_partition_fn reads its input with ember_next and emits with ember_emit. */
typedef int (*ember_partition_fn)(ember_task *task, ember_iter *in);

/* ember_emit passes a record downstream; the record is copied or consumed before it returns,
 * so it may point to the function's own stack. Returns EMBER_OK or a negative error. */
int ember_emit(ember_task *task, const ember_record *rec);
/* ember_emit_kv is ember_emit for a record given field by field. */
int ember_emit_kv(ember_task *task, const void *key, size_t key_len, const void *value,
                  size_t value_len, int64_t timestamp);
/* ember_next fills *rec with the next input record; returns 1, or 0 at the end. */
int ember_next(ember_iter *in, ember_record *rec);
/* ember_task_arg returns the argument bytes given when the operation was added (or NULL). */
const void *ember_task_arg(ember_task *task, size_t *len);
/* ember_task_partition returns the index of the partition this task computes. */
int ember_task_partition(ember_task *task);
/* ember_task_fail records why the task fails (printf format) and returns EMBER_ERR_USER,
 * so a function can `return ember_task_fail(task, "bad input at %d", i);`. */
int ember_task_fail(ember_task *task, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- Sources (run in ember-submit) ------------------------------------------------------ */

/* ember_kafka_topic reads every partition of `topic` from its low to its high watermark at
 * the moment the action runs: one task per topic-partition. The broker is the one given to
 * ember-submit with --kafka, else the driver's default. */
ember_dataset *ember_kafka_topic(ember_ctx *ctx, const char *topic);

/* ember_kafka_range: one partition of a topic read from offset `from` up to `until` (exclusive). */
typedef struct ember_kafka_range {
    int32_t partition;
    int64_t from;
    int64_t until;
} ember_kafka_range;

/* ember_kafka_ranges reads exactly the given offset ranges: one task per range. */
ember_dataset *ember_kafka_ranges(ember_ctx *ctx, const char *topic,
                                  const ember_kafka_range *ranges, size_t n_ranges);

/* ember_parallelize splits records held by the submitter into `partitions` contiguous parts.
 * The records are copied. */
ember_dataset *ember_parallelize(ember_ctx *ctx, const ember_record *records, size_t n,
                                 int partitions);

/* ember_range yields the integers [start, end) split into `partitions` contiguous parts; each
 * record has an empty key and an 8-byte little-endian int64 value (see ember_value_i64). */
ember_dataset *ember_range(ember_ctx *ctx, int64_t start, int64_t end, int partitions);

/* ember_text_file reads the lines of text files, like Spark's textFile: `path` is a file, a
 * directory (its files, skipping names that start with '.' or '_') or a glob pattern ("logs/
 * *.txt"). Each line is a record with an empty key and the line as its value, without its
 * "\n" or "\r\n". The files are listed and cut into splits of at most 32 MiB here, when the
 * dataset is made, into at least min_partitions partitions (0: one split per 32 MiB); every
 * executor reads them at the same absolute paths, so they must be on one machine or a shared
 * file system, and unchanged while the job runs (a task finding a file of another size or
 * modification time fails, naming it). Lines up to 64 MiB. A file named *.gz is gzip: one
 * partition, decompressed as it is read. */
ember_dataset *ember_text_file(ember_ctx *ctx, const char *path, int min_partitions);

/* ember_value_i64 decodes a value written by ember_range (or any 8-byte little-endian int). */
int64_t ember_value_i64(const ember_record *rec);

/* ---- Narrow operations: pipelined in one task, partition by partition -------------------
 * `arg` (arg_len bytes, may be NULL) is copied and given to every call via ember_task_arg. */

ember_dataset *ember_map(ember_dataset *parent, ember_map_fn fn, const void *arg, size_t arg_len);
ember_dataset *ember_flat_map(ember_dataset *parent, ember_map_fn fn, const void *arg,
                              size_t arg_len);
ember_dataset *ember_filter(ember_dataset *parent, ember_filter_fn fn, const void *arg,
                            size_t arg_len);
ember_dataset *ember_map_partitions(ember_dataset *parent, ember_partition_fn fn, const void *arg,
                                    size_t arg_len);

/* ---- Wide operations: a shuffle regroups records by key across the cluster -------------
 * Each key goes to reducer XXH3_64bits_withSeed(key, key_len, 0x656d626572) % partitions: the
 * same in every process, on every run. A wide operation starts a new stage. `partitions` 0
 * means the parent's partition count (the larger of two parents'), chosen when the first
 * action runs (a Kafka source's count is its topic's); over a stream, give a count. */

/* ember_reducer: built-in ways to combine two values of a key. Values are 8 bytes,
 * little-endian: int64 for the _I64 reducers, IEEE double for the _F64 ones (see
 * ember_emit_i64, ember_emit_f64, ember_value_i64, ember_value_f64). */
typedef enum ember_reducer {
    EMBER_SUM_I64 = 1,
    EMBER_MIN_I64 = 2,
    EMBER_MAX_I64 = 3,
    EMBER_SUM_F64 = 4,
    EMBER_MIN_F64 = 5,
    EMBER_MAX_F64 = 6,
} ember_reducer;

/* ember_reduce_by_key combines the values of each key with `reducer` into one record per key
 * (timestamp: the latest of the key's records), in `partitions` reduce partitions. Values
 * are combined on the map side before the shuffle. A record whose value is not 8 bytes
 * fails its task. */
ember_dataset *ember_reduce_by_key(ember_dataset *parent, ember_reducer reducer, int partitions);

/* ember_count_by_key gives one record per key whose value is its number of records (int64). */
ember_dataset *ember_count_by_key(ember_dataset *parent, int partitions);

/* ember_emit_i64 / ember_emit_f64 emit (key, 8-byte value) records for the reducers. */
int ember_emit_i64(ember_task *task, const void *key, size_t key_len, int64_t value,
                   int64_t timestamp);
int ember_emit_f64(ember_task *task, const void *key, size_t key_len, double value,
                   int64_t timestamp);
/* ember_value_f64 decodes an 8-byte little-endian double value. */
double ember_value_f64(const ember_record *rec);

/* ember_aggregate_by_key folds the records of each key into an accumulator of acc_len bytes
 * (1..EMBER_ACC_MAX), Spark's aggregateByKey / combineByKey: every key's accumulator starts
 * as a copy of `zero`; `seq` folds one record into it (on the map side, before the shuffle);
 * `comb` merges two accumulators of one key (on the reduce side). Output: one record per key,
 * value = the accumulator, timestamp = the latest of the key's records. Both functions must
 * give the same result whatever the grouping: comb(seq(zero, a), seq(zero, b)) must equal
 * seq(seq(zero, a), b). Neither may call ember_emit. */
#define EMBER_ACC_MAX 4096
typedef int (*ember_seq_fn)(ember_task *task, void *acc, const ember_record *in);
typedef int (*ember_comb_fn)(ember_task *task, void *acc, const void *other);
ember_dataset *ember_aggregate_by_key(ember_dataset *parent, const void *zero, size_t acc_len,
                                      ember_seq_fn seq, ember_comb_fn comb, int partitions);

/* ember_group_by_key gives one record per key whose value holds all the key's values, in
 * input order (map partition order, then record order); read them with ember_group_open and
 * ember_group_next. No map-side combine: prefer reduce_by_key or aggregate_by_key when the
 * values can be folded. */
ember_dataset *ember_group_by_key(ember_dataset *parent, int partitions);

/* ember_combine_fn combines two values of a key, of any length, into one, which it gives with
 * ember_combined (once per call; the bytes are copied). Like a reducer it must be associative
 * and commutative: the order values meet in is not fixed. */
typedef int (*ember_combine_fn)(ember_task *task, const void *a, size_t a_len, const void *b,
                                size_t b_len);
int ember_combined(ember_task *task, const void *value, size_t len);
/* ember_reduce_by_key_fn gives one record per key, its values combined by fn (timestamp: the
 * latest of the key's records). Values move through a group_by_key: no map-side combine (a
 * built-in reducer or aggregate_by_key combines before the shuffle when values have a fixed
 * size). */
ember_dataset *ember_reduce_by_key_fn(ember_dataset *parent, ember_combine_fn fn, int partitions);

/* ember_cogroup gives one record per key present in either dataset; its value holds the
 * key's values of `left` (side 0) then those of `right` (side 1). */
ember_dataset *ember_cogroup(ember_dataset *left, ember_dataset *right, int partitions);

/* ember_group_iter walks the values of a grouped record (group_by_key, cogroup). */
typedef struct ember_group_iter {
    const uint8_t *next, *end;
} ember_group_iter;
/* ember_group_open returns the number of values of a grouped record (>= 0), or
 * EMBER_ERR_MALFORMED if the record is not one. */
int ember_group_open(const ember_record *grouped, ember_group_iter *it);
/* ember_group_next gives the next value (key empty; value and timestamp of the original
 * record) and, if side is not NULL, which dataset it came from (0 or 1). Returns 1, or 0 at
 * the end. */
int ember_group_next(ember_group_iter *it, ember_record *value, int *side);

/* ember_join (inner) gives, for each key, one record per pair of a left and a right value,
 * left values in input order, each with right values in input order; ember_left_outer_join
 * also keeps left values whose key has no right value. Timestamp: the later of the pair. */
ember_dataset *ember_join(ember_dataset *left, ember_dataset *right, int partitions);
ember_dataset *ember_left_outer_join(ember_dataset *left, ember_dataset *right, int partitions);
/* ember_join_values splits a joined record's value into the left and right records (keys
 * empty). Returns 1, or 0 when there is no right value (left outer join), or
 * EMBER_ERR_MALFORMED. */
int ember_join_values(const ember_record *joined, ember_record *left, ember_record *right);

/* ember_distinct keeps one record of each distinct (key, value) pair (timestamp: the
 * latest). */
ember_dataset *ember_distinct(ember_dataset *parent, int partitions);

/* ember_partition_by moves each record to partition hash(key) % partitions (the hash above),
 * keeping input order within a partition. ember_repartition spreads records evenly over
 * `partitions` instead (map partition m sends its i-th record to (m + i) % partitions). */
ember_dataset *ember_partition_by(ember_dataset *parent, int partitions);
ember_dataset *ember_repartition(ember_dataset *parent, int partitions);

/* ember_sort_by_key orders records by key, bytewise (memcmp, a prefix first), ascending or
 * descending; ties keep input order. When the action runs, a sampling job reads the parent
 * once to choose partitions - 1 key bounds, so partition i holds keys before those of
 * partition i + 1: reading the partitions in order gives a globally ordered dataset. Encode
 * numeric keys with ember_key_i64 to sort them by value. */
ember_dataset *ember_sort_by_key(ember_dataset *parent, int ascending, int partitions);
/* ember_key_i64 writes v as an 8-byte key whose bytewise order is numeric order;
 * ember_key_to_i64 reads it back. */
void ember_key_i64(int64_t v, uint8_t key[8]);
int64_t ember_key_to_i64(const void *key);

/* ember_union gives the partitions of a, then those of b, without a shuffle. */
ember_dataset *ember_union(ember_dataset *a, ember_dataset *b);

/* ---- Caching ---------------------------------------------------------------------------- */

/* ember_storage: where ember_persist keeps a dataset's partitions. */
typedef enum ember_storage {
    EMBER_MEMORY_ONLY = 1,     /* in memory; a partition that does not fit, or is evicted to
                                  make room (least recently used first), is computed again
                                  from its lineage when next needed */
    EMBER_MEMORY_AND_DISK = 2, /* in memory, then in the executor's spill directory */
} ember_storage;

/* ember_persist keeps the partitions of ds in the executors' block stores the first time an
 * action computes them; later actions of this job run read them there instead of computing
 * them again, and their tasks prefer the executor holding their partition. The Kafka sources
 * a persisted dataset depends on are resolved once, at the first action, and later actions
 * read the same offsets. Call it before the first action that uses ds. Returns ds. */
ember_dataset *ember_persist(ember_dataset *ds, ember_storage level);
/* ember_cache is ember_persist(ds, EMBER_MEMORY_ONLY). */
ember_dataset *ember_cache(ember_dataset *ds);
/* ember_unpersist removes ds's cached partitions now (otherwise they go when ember_main
 * returns); later actions compute ds again. */
int ember_unpersist(ember_dataset *ds);

/* ---- Actions: run the graph on the cluster and wait ------------------------------------ */

/* ember_count stores the number of records in *count. */
int ember_count(ember_dataset *ds, int64_t *count);

/* ember_collected: records of a collect, in partition order, valid until ember_main returns. */
typedef struct ember_collected {
    const ember_record *records;
    size_t n;
} ember_collected;

/* ember_collect brings every record to the submitter (bounded by the driver's result cap). */
int ember_collect(ember_dataset *ds, ember_collected *out);

/* ember_take gives the first n records of ds in partition order (those ember_collect would
 * give first), reading at most n records of each partition; out->n <= n. */
int ember_take(ember_dataset *ds, size_t n, ember_collected *out);
/* ember_first gives the first record (EMBER_ERR_NOT_FOUND, and no job error, when ds is
 * empty); valid until ember_main returns. */
int ember_first(ember_dataset *ds, ember_record *out);

/* ember_order: what ember_top ranks records by: the key's bytes (ember_key_from_i64 keys rank
 * as their numbers), or an 8-byte value as int64 or double (other values rank lowest). Ties:
 * the key's bytes, then the value's. */
typedef enum ember_order { EMBER_BY_KEY = 0, EMBER_BY_I64 = 1, EMBER_BY_F64 = 2 } ember_order;
/* ember_top gives the n largest records, largest first; each partition sends only its n
 * largest. */
int ember_top(ember_dataset *ds, size_t n, ember_order by, ember_collected *out);

/* ember_reduce folds the 8-byte values of every record with a built-in reducer into *out (an
 * int64_t for the _I64 reducers, a double for the _F64 ones); each partition folds its own
 * first. EMBER_ERR_NOT_FOUND (no job error) when ds is empty. */
int ember_reduce(ember_dataset *ds, ember_reducer reducer, void *out);

/* ember_foreach calls fn on every record, on the executors (for side effects: records fn
 * emits are dropped). */
int ember_foreach(ember_dataset *ds, ember_map_fn fn, const void *arg, size_t arg_len);

/* ember_save_kafka produces every record (key, value, timestamp) to `topic` on the job's
 * broker and waits until all are acknowledged; *written (may be NULL) gets the count. */
int ember_save_kafka(ember_dataset *ds, const char *topic, int64_t *written);

/* ember_save_text writes each partition to `dir`/part-NNNNN on the executor that computes it,
 * one record value per line; *written (may be NULL) gets the record count. */
int ember_save_text(ember_dataset *ds, const char *dir, int64_t *written);

/* ---- Redis ------------------------------------------------------------------------------ */

/* ember_redis_command: the write each record becomes */
typedef enum ember_redis_command {
    EMBER_REDIS_SET = 1,  /* SET key value */
    EMBER_REDIS_HSET = 2, /* HSET key field value ...: the value made by ember_redis_fields */
    EMBER_REDIS_ZADD = 3, /* ZADD key score member: the value is the score (8-byte double, as
                             ember_emit_f64 writes it) followed by the member's bytes */
} ember_redis_command;

/* ember_redis_options: where and how a dataset is written to Redis */
typedef struct ember_redis_options {
    const char *address;  /* "host:port" or "unix:/path/to/socket"; NULL: $EMBER_REDIS */
    int db;               /* SELECT db (0: the default) */
    const char *password; /* AUTH password (NULL: $EMBER_REDIS_PASSWORD, else none) */
    ember_redis_command command;
    int64_t ttl_ms; /* > 0: each key written expires after ttl_ms (PEXPIRE) */
} ember_redis_options;

/* ember_save_redis writes every record to Redis, from the executors, pipelined: upserts, so
 * running the job again leaves the same keys. A connection error or an error reply fails the
 * task with Redis's message (and it is retried like any task). *written (may be NULL) gets
 * the record count. */
int ember_save_redis(ember_dataset *ds, const ember_redis_options *opts, int64_t *written);

/* ember_redis_fields encodes n field/value pairs (NUL-terminated strings) into buf (cap
 * bytes) as an EMBER_REDIS_HSET record value; returns its length, or 0 if it does not fit. */
size_t ember_redis_fields(void *buf, size_t cap, size_t n, const char *const *fields,
                          const char *const *values);

/* ember_stream_to_redis: see below, with the streams. */

/* ---- Streams: continuous queries over Kafka (docs/streaming.md) -------------------------- */

/* ember_stream_source: how a Kafka stream reads its topic. Zeroed: from the records that
 * arrive after the query first starts, with no cap per batch. */
typedef struct ember_stream_source {
    int earliest;                   /* 1: a new query starts at the topic's first records */
    int64_t max_per_partition;      /* records of one partition per batch (0: no cap); a batch
                                       behind by more reads the rest in the next batches */
    int64_t max_rate_per_partition; /* records per second of one partition (0: no cap): a
                                       batch reads at most this times the trigger interval */
    int backpressure; /* 1: an adaptive rate (a PID controller on each batch's processing
                         time and scheduling delay) bounds every batch, so that a burst is
                         read at the rate the query can process (docs/streaming.md) */
    const ember_kafka_range *offsets; /* explicit starts of a new query: partition p at
                                         offsets[i].from (until is ignored); partitions not
                                         listed start as `earliest` says */
    size_t n_offsets;
} ember_stream_source;

/* ember_kafka_stream reads `topic` continuously: every batch of a query reads the records that
 * arrived since the last one, one task per partition. Every narrow operation applies to it as
 * to a dataset; the query is started by a sink (ember_stream_to_files, ember_stream_to_kafka).
 * opts may be NULL. */
ember_dataset *ember_kafka_stream(ember_ctx *ctx, const char *topic,
                                  const ember_stream_source *opts);

/* ember_window: event-time windows over a stream. A record's event time is its timestamp (ms
 * since 1970: set it in a map with ember_emit_kv's timestamp, e.g. parsed from the record);
 * it belongs to every window [start, start + length_ms) that holds it, start a multiple of
 * slide_ms (slide_ms == length_ms: tumbling windows; slide_ms must divide length_ms). The
 * watermark is the largest event time the query has seen, minus delay_ms; a window is final,
 * and emitted once, when the watermark passes its end. A record whose event time is behind the
 * watermark is late: it is counted (the query's late_records), never folded in. */
typedef struct ember_window {
    int64_t length_ms;
    int64_t slide_ms;
    int64_t delay_ms;
    int updates; /* 1: update mode (Spark's): each batch emits every window its records changed
                    that was not final before it, with its result so far, instead of each
                    window once when final */
    const char *late_topic; /* a dead-letter topic on the job's broker that receives every
                               late record as the window received it (key, value, event time;
                               at least once); NULL: late records are only counted */
} ember_window;

/* ember_window_reduce folds the values of each key in each window with `reducer` (8-byte
 * values, as ember_reduce_by_key); ember_window_count counts each key's records per window;
 * ember_window_aggregate folds them with seq and comb from `zero` (as ember_aggregate_by_key;
 * seq sees a key's records in their order within a Kafka partition, and comb(acc, other) is
 * given the accumulator of earlier event times first, so an order-dependent fold is exact when
 * each key lives in one partition of the topic). Each record is folded once, into its slide of
 * the window (a pane): a window's result combines its panes. Output, per key and final window:
 * key, value = the result (int64 for a count), timestamp = the window's start. `partitions`
 * spreads the keys' state over that many tasks per batch. */
ember_dataset *ember_window_reduce(ember_dataset *stream, const ember_window *w,
                                   ember_reducer reducer, int partitions);
ember_dataset *ember_window_count(ember_dataset *stream, const ember_window *w, int partitions);
ember_dataset *ember_window_aggregate(ember_dataset *stream, const ember_window *w,
                                      const void *zero, size_t acc_len, ember_seq_fn seq,
                                      ember_comb_fn comb, int partitions);

/* ember_state_fn: map_with_state's function, called once per record with the state of the
 * record's key (state_len bytes, aligned for any type). *exists says whether the key has a state;
 * when it is 0 the state is zeroed (a new key, or one whose state was removed or expired). The
 * function may change the state, emit records (ember_emit), and set *exists: 1 keeps the state, 0
 * removes it. Returns EMBER_OK or fails the task (a negative code, or ember_task_fail). */
typedef int (*ember_state_fn)(ember_task *task, const ember_record *in, void *state, int *exists);

#define EMBER_STATE_MAX 4096 /* bytes of one key's state */

/* ember_map_with_state keeps a state per key across a stream's batches (Spark's
 * flatMapGroupsWithState): each batch calls fn for each record, a key's records in their
 * order (within a Kafka partition: offset order), keys spread over `partitions` tasks. A key
 * without a record in a batch triggered ttl_ms or more after the last batch that had one
 * (batch trigger times; 0: never) is dropped and counted as expired; a key with a record in
 * the batch never expires in it (as Spark's timeouts). `arg` is given to fn through ember_task_arg.
 * The state is kept in the query's checkpoint, so a batch that runs again after a crash starts from
 * the same state and expires the same keys. */
ember_dataset *ember_map_with_state(ember_dataset *stream, ember_state_fn fn, size_t state_len,
                                    int64_t ttl_ms, const void *arg, size_t arg_len,
                                    int partitions);

/* ember_query_options: a query's identity and trigger. */
typedef struct ember_query_options {
    const char *name;       /* required: unique among the driver's queries */
    const char *checkpoint; /* required: a directory the driver and the executors share; a
                               query restarted on the same checkpoint resumes where it was */
    int64_t interval_ms;    /* a batch every interval_ms (default 1000, at least 10); a batch
                               that takes longer is followed by the next at once */
    int detach;             /* 1: the query keeps running after ember-submit exits (stop it
                               with ember-submit --stop NAME); 0: it stops with ember-submit */
} ember_query_options;

typedef struct ember_query ember_query;

/* ember_stream_to_files starts a query writing each batch to `dir`/batch-NNNNNNNNNN/ (one
 * part-NNNNN file per partition, one record value per line; the directory appears, by a
 * rename, only once the batch is complete, and each record of the stream is in exactly one
 * batch directory, also across failures). ember_stream_to_kafka produces each batch's records
 * to `topic`. Both return once the driver runs the query; *query then follows it. */
int ember_stream_to_files(ember_dataset *ds, const char *dir, const ember_query_options *opts,
                          ember_query **query);
/* ember_stream_to_redis starts a query writing each batch to Redis as ember_save_redis does,
 * exactly once: each task applies its batch's writes in one MULTI/EXEC together with a fence
 * (key "ember:fence:QUERY:PARTITION", value = the batch), and a task of a batch that runs
 * again after a crash finds its fence and applies nothing. */
int ember_stream_to_redis(ember_dataset *ds, const ember_redis_options *redis,
                          const ember_query_options *opts, ember_query **query);
int ember_stream_to_kafka(ember_dataset *ds, const char *topic, const ember_query_options *opts,
                          ember_query **query);

/* ember_query_progress: what a query has done since it started (or was resumed). */
typedef struct ember_query_progress {
    int running;            /* 0: stopped or failed (see ember_query_await's result) */
    int64_t last_committed; /* the last batch whose output is complete (-1: none) */
    int64_t batches;        /* batches completed by this run of the query */
    int64_t records_in, records_out;
    int64_t lag;          /* records behind the topic's end at the last trigger */
    int64_t watermark_ms; /* windows ending at or before it are final (-1: none yet) */
    int64_t late_records; /* records that came after their windows were final */
} ember_query_progress;

/* ember_query_await waits until the query ends or timeout_ms passes (-1: no limit), printing
 * a progress line on stderr while it waits. Returns EMBER_OK once the query stopped,
 * EMBER_ERR_TIMEOUT if it still runs, or the error it failed with (ember_last_error). */
int ember_query_await(ember_query *query, int64_t timeout_ms);
/* ember_query_status fills *out with the query's progress now. */
int ember_query_status(ember_query *query, ember_query_progress *out);
/* ember_query_accumulator gives the total of an int64 accumulator over the query's committed
 * batches (since the driver started it; a restarted driver starts again from 0), 0 for a name
 * nothing added to or when the driver cannot be asked. */
int64_t ember_query_accumulator(ember_query *query, const char *name);
/* ember_query_stop stops the query after its running batch, whose output is then complete. */
int ember_query_stop(ember_query *query);

/* ---- Context ---------------------------------------------------------------------------- */

/* ember_last_error returns the first error message of this job run, or "" if none. */
const char *ember_last_error(ember_ctx *ctx);

/* ember_set_job_name names the following actions' jobs on the status endpoint. */
void ember_set_job_name(ember_ctx *ctx, const char *name);

/* ember_describe_job attaches a JSON object (at most EMBER_DESCRIPTION_MAX bytes, copied) to
 * the jobs and streaming queries of the following actions; the status endpoint shows it as
 * each job's `description` (docs/status-api.md). ember-flow attaches a flow's graph, which the
 * status page draws. EMBER_ERR_INVALID when it is not such an object. */
#define EMBER_DESCRIPTION_MAX 65536
int ember_describe_job(ember_ctx *ctx, const char *json);

/* ---- Record formats: delimited lines and JSON, inside user functions ---------------------
 * ember_csv_split splits a line (a trailing "\n" or "\r\n" ignored) at `delim` into at most
 * max fields: views into the line, no copy; a field in double quotes may hold the delimiter
 * and doubled quotes (""), which are unescaped into scratch (scratch_len bytes; may be NULL
 * when no field has them). Returns the number of fields, or EMBER_ERR_MALFORMED (a quote that
 * never closes, text after a closing quote), EMBER_ERR_TOO_LARGE (more than max fields, or
 * scratch too small). "a,,b" has three fields, "" has one, empty. */
typedef struct ember_field {
    const char *p;
    size_t len;
} ember_field;
int ember_csv_split(const void *line, size_t len, char delim, ember_field *fields, size_t max,
                    char *scratch, size_t scratch_len);

/* ember_json: a JSON document parsed with jansson, kept and parsed again record after record
 * (one per task or per thread: not shared). ember_json_parse gives EMBER_ERR_MALFORMED with
 * ember_json_error saying what and at which byte. The getters follow a path of object keys
 * and array indexes, "item.tags[2].name" ("" is the document itself), and return
 * EMBER_ERR_NOT_FOUND when the path leads nowhere, EMBER_ERR_INVALID when the value is of
 * another type (or the path is malformed); strings are views valid until the next parse. */
typedef struct ember_json ember_json;
ember_json *ember_json_new(void);
int ember_json_parse(ember_json *j, const void *text, size_t len);
const char *ember_json_error(const ember_json *j);
int ember_json_str(ember_json *j, const char *path, const char **s, size_t *len);
int ember_json_i64(ember_json *j, const char *path, int64_t *out);
int ember_json_f64(ember_json *j, const char *path, double *out);
int ember_json_bool(ember_json *j, const char *path, int *out);
void ember_json_free(ember_json *j);

/* ---- Broadcast values: read-only bytes every task can read --------------------------------
 * ember_broadcast_new stores len bytes on the driver once (named by their SHA-256: the same
 * bytes are stored once), for a lookup table or a model every task reads. Pass the handle to
 * user functions in their arg; ember_broadcast_value gives the bytes: an executor fetches them
 * from the driver the first time one of its tasks asks, keeps them on disk and maps them
 * read-only for the rest of its life (any later job asking for the same bytes reads that copy).
 * Bounded by the driver's --max-library-mb. ember_broadcast_value fails the task (with the
 * reason) when the bytes cannot be had. */
typedef struct ember_broadcast {
    uint8_t sha256[32];
    uint64_t len;
} ember_broadcast;
int ember_broadcast_new(ember_ctx *ctx, const void *data, size_t len, ember_broadcast *out);
int ember_broadcast_value(ember_task *task, const ember_broadcast *b, const void **data,
                          size_t *len);

/* ---- Accumulators: counters user functions add to, read by the job ----------------------
 * ember_acc_add adds v to the job's int64 counter `name` (ember_acc_add_f64: a double
 * counter); called from user functions on the executors. A task's additions count once, when
 * its attempt succeeds: a failed attempt adds nothing, and a task run again because its
 * output was lost replaces what it added before, so totals are what one clean run gives.
 * ember_accumulator (ember_accumulator_f64) gives the total of every action so far, 0 for a
 * name nothing added to. Names are 1 to 63 bytes; a name is an int64 or a double counter, not
 * both (a task that mixes them fails); a task adds to at most 256 names. */
int ember_acc_add(ember_task *task, const char *name, int64_t v);
int ember_acc_add_f64(ember_task *task, const char *name, double v);
int64_t ember_accumulator(ember_ctx *ctx, const char *name);
double ember_accumulator_f64(ember_ctx *ctx, const char *name);

/* ---- Job options: the arguments after `--` on ember-submit's command line ----------------
 * ember_opts_new reads them as "--name value" options and "--name" flags; each ember_opt_*
 * call looks one up by its name (with the dashes) and gives its value or the default. Once all
 * are asked for, ember_opts_check prints what is wrong (an argument nobody asked for, a value
 * missing or not a number) with the usage line, and says EMBER_ERR_INVALID; "--help" prints
 * the usage line and counts as wrong too. For example:
 *     ember_opts *o = ember_opts_new(ctx, argc, argv, "word_count.so -- --in T [--top N]");
 *     const char *in = ember_opt_str(o, "--in", NULL);
 *     int64_t top = ember_opt_int(o, "--top", 10);
 *     if (ember_opts_check(o) != EMBER_OK || !in) return 2;
 * The context frees them when ember_main returns (strings point into argv). NULL when out of
 * memory; every function accepts a NULL ember_opts (defaults, then EMBER_ERR_NOMEM from the
 * check). */
typedef struct ember_opts ember_opts;
ember_opts *ember_opts_new(ember_ctx *ctx, int argc, char **argv, const char *usage);
const char *ember_opt_str(ember_opts *o, const char *name, const char *def);
int64_t ember_opt_int(ember_opts *o, const char *name, int64_t def);
double ember_opt_double(ember_opts *o, const char *name, double def);
int ember_opt_flag(ember_opts *o, const char *name);
int ember_opts_check(ember_opts *o);

/* ---- Functions for workflows (docs/flows.md, "Functions from a library") -----------------
 * A workflow (ember-flow) is built of ember's own nodes; where it needs a step they do not
 * have, a `function` node calls an ember_flow_function of a job library per record, and an
 * aggregate node may fold with an ember_flow_aggregate instead of its built-in aggregates:
 *     {"type": "aggregate", "by": ["taxi_id"], "window": {...},
 *      "function": {"name": "taxi_track", "args": ["time", "lon", "lat"],
 *                   "returns": [{"name": "km", "type": "double"}, ...]}}
 * The library defines it as an exported ember_flow_aggregate and runs the flow runner as its
 * entry point (EMBER_FLOW_LIBRARY), linked from lib/libember_flow.a:
 *     EMBER_FLOW_LIBRARY
 *     const ember_flow_aggregate taxi_track = {EMBER_FLOW_ABI, sizeof(track),
 *         "timestamp,double,double", "double,int", track_add, track_merge, track_result};
 *     cc -shared -fPIC -I include -o taxi_flow.so taxi_functions.c lib/libember_flow.a -ljansson
 *     ember-flow run --library taxi_flow.so taxi.json
 * The accumulator (acc_size bytes, at most EMBER_FLOW_ACC_MAX, aligned to 16) starts zeroed. `add`
 * folds one record (its args, in the types `args` names) into an empty accumulator; `merge` folds
 * the accumulator `later` into acc (in a window, `later` holds later records in event time; a
 * streaming aggregate without a window merges each record's into the key's running one in the
 * order they come); `result` writes the `returns` columns (a string may point into acc). Each
 * returns 0, or non-zero to fail the task. The functions must be pure: a task may run again. */
#define EMBER_FLOW_ABI     1
#define EMBER_FLOW_ACC_MAX 224

/* ember_flow_value: one column's value: `i` for int, bool (0/1) and timestamp (ms since 1970,
 * UTC), `f` for double, `s` and `len` for a string (not NUL-terminated) */
typedef struct ember_flow_value {
    union {
        int64_t i;
        double f;
        const char *s;
    };
    uint32_t len;
} ember_flow_value;

typedef struct ember_flow_aggregate {
    int abi;             /* EMBER_FLOW_ABI */
    size_t acc_size;     /* 1..EMBER_FLOW_ACC_MAX */
    const char *args;    /* the args' types, "timestamp,double,double": checked against the flow */
    const char *returns; /* the results' types, "double,int" */
    int (*add)(void *acc, const ember_flow_value *args);
    int (*merge)(void *acc, const void *later);
    int (*result)(const void *acc, ember_flow_value *returns);
} ember_flow_aggregate;

/* ember_flow_function: a function node's call, per record: reads `args`, writes `returns`
 * (a string may point into args' strings or into buf, cap bytes, valid until the next record).
 * Returns 0, or non-zero to fail the record (its node's error edge: a dead letter). */
typedef struct ember_flow_function {
    int abi;             /* EMBER_FLOW_ABI */
    const char *args;    /* the args' types, "string" */
    const char *returns; /* the results' types, "int" */
    int (*call)(const ember_flow_value *args, ember_flow_value *returns, char *buf, size_t cap);
} ember_flow_function;

/* ember_flow_main runs a workflow: `--flow FILE [--checkpoint DIR]` (lib/libember_flow.a) */
int ember_flow_main(ember_ctx *ctx, int argc, char **argv);
#define EMBER_FLOW_LIBRARY                                                                         \
    __attribute__((visibility("default"))) int ember_main(ember_ctx *ctx, int argc, char **argv)   \
    {                                                                                              \
        return ember_flow_main(ctx, argc, argv);                                                   \
    }

/* The entry point every job defines (exported): argc/argv are the arguments after `--`. */
typedef int (*ember_main_fn)(ember_ctx *ctx, int argc, char **argv);
#define EMBER_ENTRY_POINT "ember_main"

#ifdef __cplusplus
}
#endif
#endif /* EMBER_EMBER_H */
