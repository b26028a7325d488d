/* em_shuffle.c -- storing map outputs and reading them back in reduce tasks (em_shuffle.h). */
#include "em_shuffle.h"

#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_batch.h"
#include "em_blockid.h"
#include "em_graph.h"
#include "em_hash.h"
#include "em_keyed.h"
#include "em_log.h"
#include "em_time.h"
#include "em_wide.h"
#include "em_window.h"
#include "ember.pb-c.h"

/* ---- aggregate_by_key's user functions as combiner folds --------------------------------- */

/* aggregator: the seq (map side) or comb (reduce side) function of one task */
typedef struct aggregator {
    const Ember__Node *node;
    ember_task *task;
    void *fn; /* ember_seq_fn or ember_comb_fn */
    char err[512];
} aggregator;

static int fold_seq(void *arg, uint8_t *acc, const ember_record *in, int fresh)
{
    aggregator *ag = arg;
    if (fresh) memcpy(acc, ag->node->fn_arg.data, ag->node->fn_arg.len);
    return em_fn_task_result(ag->task, ((ember_seq_fn)ag->fn)(ag->task, acc, in));
}

static int fold_comb(void *arg, uint8_t *acc, const ember_record *in, int fresh)
{
    aggregator *ag = arg;
    if (in->value_len != ag->node->fn_arg.len) {
        snprintf(ag->err, sizeof ag->err,
                 "aggregate_by_key: a shuffled accumulator of %zu bytes (%zu expected)",
                 in->value_len, ag->node->fn_arg.len);
        return EMBER_ERR_MALFORMED;
    }
    if (fresh) {
        memcpy(acc, in->value, in->value_len);
        return EMBER_OK;
    }
    return em_fn_task_result(ag->task, ((ember_comb_fn)ag->fn)(ag->task, acc, in->value));
}

/* combiner_for makes the combiner of a combining wide node: map side (seq) or reduce side;
 * *used gets its fold (acc_len 0: a built-in reducer, or keys only). */
static int combiner_for(const Ember__Node *wide, void *lib, uint32_t partition, int map_side,
                        aggregator *ag, em_combiner **out, em_fold *used, char *err, size_t errlen)
{
    em_fold fold = {0}; /* distinct: keys only */
    int aggregates = wide->kind == EMBER__NODE_KIND__NODE_AGGREGATE_BY_KEY ||
                     (wide->kind == EMBER__NODE_KIND__NODE_WINDOW && wide->fn_symbol[0]);
    *used = fold;
    if (wide->kind == EMBER__NODE_KIND__NODE_REDUCE_BY_KEY ||
        (wide->kind == EMBER__NODE_KIND__NODE_WINDOW && !aggregates)) {
        *out = em_combiner_new(wide->reducer, 1024);
    } else if (aggregates) {
        const char *symbol = map_side ? wide->fn_symbol : wide->comb_symbol;
        ag->node = wide;
        if (!(ag->fn = em_pipeline_resolve(lib, symbol))) {
            snprintf(err, errlen, "job library has no symbol '%s' (used by aggregate_by_key)",
                     symbol);
            return EMBER_ERR_SYMBOL;
        }
        if (!(ag->task = em_fn_task_new(wide->kind, symbol, partition, ag->err, sizeof ag->err)))
            return EMBER_ERR_NOMEM;
        fold = (em_fold){map_side ? fold_seq : fold_comb, ag, wide->fn_arg.len};
        *out = em_combiner_new_fold(&fold, 1024);
        *used = fold;
    } else {
        *out = em_combiner_new_fold(&fold, 1024);
    }
    return *out ? EMBER_OK : EMBER_ERR_NOMEM;
}

/* ---- map side ----------------------------------------------------------------------------- */

struct em_shuffle_writer {
    const Ember__Node *wide;
    uint32_t reducers, map_part;
    uint64_t records;         /* added so far (repartition's round robin; combining: when to
                                 look at the table's size) */
    em_combiner *combine;     /* combining kinds */
    aggregator ag;            /* aggregate_by_key */
    em_window_mapper window;  /* windows: panes, late records, event times */
    em_batch_chunks *buckets; /* one per reducer */
    char err[512];
};

int em_shuffle_writer_new(const Ember__Node *wide, void *lib, uint32_t map_part,
                          em_shuffle_writer **out, char *err, size_t errlen)
{
    em_shuffle_writer *w = calloc(1, sizeof *w);
    if (!w) return EMBER_ERR_NOMEM;
    w->wide = wide;
    w->reducers = wide->partitions;
    w->map_part = map_part;
    int rc = (w->buckets = calloc(w->reducers, sizeof *w->buckets)) ? EMBER_OK : EMBER_ERR_NOMEM;
    size_t chunk = em_chunk_size_for(EM_SHUFFLE_WRITE_BUDGET, w->reducers);
    for (uint32_t r = 0; rc == EMBER_OK && r < w->reducers; r++)
        em_batch_chunks_init(&w->buckets[r], chunk);
    em_fold fold;
    if (rc == EMBER_OK && em_node_combines(wide->kind))
        rc = combiner_for(wide, lib, map_part, 1, &w->ag, &w->combine, &fold, err, errlen);
    em_window_mapper_init(&w->window, wide);
    if (rc != EMBER_OK) {
        if (!err[0])
            snprintf(err, errlen, "out of memory preparing %u shuffle buckets", w->reducers);
        em_shuffle_writer_free(w);
        return rc;
    }
    *out = w;
    return EMBER_OK;
}

void em_shuffle_writer_free(em_shuffle_writer *w)
{
    if (!w) return;
    for (uint32_t r = 0; w->buckets && r < w->reducers; r++) em_batch_chunks_free(&w->buckets[r]);
    free(w->buckets);
    em_combiner_free(w->combine);
    em_fn_task_free(w->ag.task);
    em_window_mapper_free(&w->window);
    free(w);
}

void em_shuffle_writer_on_late(em_shuffle_writer *w, em_record_fn fn, void *arg)
{
    w->window.late_fn = fn;
    w->window.late_arg = arg;
}

void em_shuffle_writer_window(const em_shuffle_writer *w, int *has_event_time,
                              int64_t *max_event_time, int64_t *late)
{
    *has_event_time = w->window.has_event_time;
    *max_event_time = w->window.max_event_time;
    *late = w->window.late;
}

const char *em_shuffle_writer_error(const em_shuffle_writer *w) { return w->err; }
uint32_t em_shuffle_writer_reducers(const em_shuffle_writer *w) { return w->reducers; }

/* range_bucket: sort_by_key's partition of a key (bounds are ascending upper bounds) */
static uint32_t range_bucket(const Ember__Node *n, const ember_record *rec)
{
    size_t lo = 0, hi = n->n_sort_bounds; /* first bound >= key */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (em_key_compare(n->sort_bounds[mid].data, n->sort_bounds[mid].len, rec->key,
                           rec->key_len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint32_t)(n->descending ? n->n_sort_bounds - lo : lo);
}

static int bucket_add(em_shuffle_writer *w, uint32_t bucket, const ember_record *rec)
{
    int rc = em_batch_chunks_add(&w->buckets[bucket], rec);
    if (rc != EMBER_OK)
        snprintf(w->err, sizeof w->err, "cannot add to shuffle bucket %u: %s", bucket,
                 ember_strerror(rc));
    return rc;
}

/* flush_combined moves the combined entries into the buckets and empties the table. */
static int flush_combined(em_shuffle_writer *w)
{
    int rc = EMBER_OK;
    for (size_t i = 0; rc == EMBER_OK && i < em_combiner_size(w->combine); i++) {
        ember_record rec;
        uint64_t hash;
        em_combiner_get(w->combine, i, &rec, &hash);
        if (w->wide->kind == EMBER__NODE_KIND__NODE_WINDOW) hash = em_window_key_hash(&rec);
        rc = bucket_add(w, (uint32_t)(hash % w->reducers), &rec);
    }
    em_combiner_reset(w->combine);
    return rc;
}

int em_shuffle_writer_add(em_shuffle_writer *w, const ember_record *rec)
{
    ember_record pane;
    if (w->wide->kind == EMBER__NODE_KIND__NODE_WINDOW) {
        int use = em_window_map(&w->window, rec, &pane);
        if (use < 0 && !w->err[0])
            snprintf(w->err, sizeof w->err, "window: %s",
                     use == EMBER_ERR_NOMEM ? "out of memory building a pane's key"
                                            : "its late record could not be written");
        if (use <= 0) return use;
        rec = &pane;
    }
    if (w->combine) {
        int rc = em_combiner_add(w->combine, rec);
        if (rc == EMBER_ERR_INVALID && !w->ag.fn)
            snprintf(w->err, sizeof w->err,
                     "%s: a record value of %zu bytes (8-byte int64 or double "
                     "expected; see ember_emit_i64)",
                     em_node_kind_name(w->wide->kind), rec->value_len);
        else if (rc != EMBER_OK)
            snprintf(w->err, sizeof w->err, "%s",
                     w->ag.err[0] ? w->ag.err : "out of memory combining the map output");
        /* the table only grows with new keys: its size is worth a look every 1024 adds */
        if (rc == EMBER_OK && (++w->records & 1023) == 0 &&
            em_combiner_bytes(w->combine) > EM_COMBINE_FLUSH_BYTES)
            rc = flush_combined(w);
        return rc;
    }
    uint32_t bucket;
    if (w->wide->kind == EMBER__NODE_KIND__NODE_SORT_BY_KEY)
        bucket = range_bucket(w->wide, rec);
    else if (w->wide->round_robin)
        bucket = (uint32_t)((w->map_part + w->records) % w->reducers);
    else
        bucket = (uint32_t)(em_hash64(rec->key, rec->key_len) % w->reducers);
    w->records++;
    return bucket_add(w, bucket, rec);
}

int em_shuffle_writer_store(em_shuffle_writer *w, em_blockstore *blocks, uint64_t map_stage,
                            uint64_t *bucket_bytes, uint64_t *spilled, char *err, size_t errlen)
{
    int rc = w->combine ? flush_combined(w) : EMBER_OK;
    if (rc != EMBER_OK) snprintf(err, errlen, "%s", w->err);
    for (uint32_t r = 0; rc == EMBER_OK && r < w->reducers; r++) {
        char id[EM_BLOCKID_MAX];
        size_t n;
        em_batch_chunks_finish(&w->buckets[r]);
        uint64_t len = w->buckets[r].bytes;
        em_blockid_shuffle(id, map_stage, w->map_part, r);
        em_chunk *chunks = em_batch_chunks_take(&w->buckets[r], &n);
        char why[512] = "";
        if ((rc = em_blockstore_put_chunks(blocks, id, chunks, n, spilled, why, sizeof why)) !=
            EMBER_OK) {
            em_chunks_put(chunks, n);
            free(chunks);
            snprintf(err, errlen, "cannot keep shuffle output %s (%llu bytes): %s", id,
                     (unsigned long long)len, why);
        }
        bucket_bytes[r] = len;
    }
    return rc;
}

/* ---- fetching buckets --------------------------------------------------------------------- */

_Static_assert(EM_FETCHES_IN_FLIGHT <= EM_PEERS_CACHED,
               "a new peer must always find a cached peer without requests in flight to evict");

static void peer_close(struct em_peer *p)
{
    for (int c = 0; c < EM_FETCHES_IN_FLIGHT; c++) {
        em_rpc_chan_close(&p->ch[c]);
        p->busy[c] = 0;
    }
    em_rpc_close(&p->rpc);
    p->address[0] = '\0';
}

static int peer_busy(const struct em_peer *p)
{
    for (int c = 0; c < EM_FETCHES_IN_FLIGHT; c++)
        if (p->busy[c]) return 1;
    return 0;
}

void em_peers_close(em_peers *peers)
{
    for (int i = 0; i < EM_PEERS_CACHED; i++)
        if (peers->peer[i].address[0]) peer_close(&peers->peer[i]);
}

/* peer_find returns the slot of address, or of a new connection to it in place of the next
 * peer (in turn) that has no request in flight. */
static int peer_find(em_peers *peers, const char *address, int *slot, char *err, size_t errlen)
{
    for (int i = 0; i < EM_PEERS_CACHED; i++)
        if (strcmp(peers->peer[i].address, address) == 0) {
            *slot = i;
            return EMBER_OK;
        }
    int i = -1;
    for (int tries = 0; tries < EM_PEERS_CACHED && i < 0; tries++) {
        int v = (int)(peers->next_victim++ % EM_PEERS_CACHED);
        if (!peer_busy(&peers->peer[v])) i = v;
    }
    EM_ASSERT(i >= 0); /* fewer requests in flight than cached peers */
    if (peers->peer[i].address[0]) peer_close(&peers->peer[i]);
    /* fail_fast: a peer that is gone makes a fetch failure at once (the driver then computes
     * its blocks again), not a wait for it to come back */
    em_rpc_opts o = {
        "peer", peers->max_recv ? peers->max_recv : 1u << 30, 5000, peers->secret, peers->tls, 1};
    int rc = em_rpc_open(&peers->peer[i].rpc, address, &o, err, errlen);
    if (rc != EMBER_OK) return rc;
    snprintf(peers->peer[i].address, sizeof peers->peer[i].address, "%s", address);
    *slot = i;
    return EMBER_OK;
}

/* peer_chan reserves a free channel to address (opened on first use) until peer_done. */
static int peer_chan(em_peers *peers, const char *address, int *slot, int *chan, char *err,
                     size_t errlen)
{
    int rc = peer_find(peers, address, slot, err, errlen);
    if (rc != EMBER_OK) return rc;
    struct em_peer *p = &peers->peer[*slot];
    int c = 0;
    while (c < EM_FETCHES_IN_FLIGHT && p->busy[c]) c++;
    EM_ASSERT(c < EM_FETCHES_IN_FLIGHT); /* at most EM_FETCHES_IN_FLIGHT requests in flight */
    if (!p->ch[c].aio && (rc = em_rpc_chan_open(&p->rpc, &p->ch[c])) != EMBER_OK) {
        snprintf(err, errlen, "cannot open a request context: %s", ember_strerror(rc));
        return rc;
    }
    p->busy[c] = 1;
    *chan = c;
    return EMBER_OK;
}

/* peer_done frees a channel reserved by peer_chan; abandon cancels its request (closing it,
 * which frees a reply already received; it is opened again when next needed). */
static void peer_done(em_peers *peers, int slot, int chan, int abandon)
{
    struct em_peer *p = &peers->peer[slot];
    EM_ASSERT(p->busy[chan]);
    if (abandon) em_rpc_chan_close(&p->ch[chan]);
    p->busy[chan] = 0;
}

/* bucket: one fetched bucket, held until released (a local block or a peer's reply) */
typedef struct bucket {
    const uint8_t *data; /* a peer's reply: its batches; a local block: see block */
    size_t len;
    uint32_t side;
    uint64_t map_stage; /* whose output it is: the stage id in its block id, */
    uint32_t map_part;  /* and the map partition */
    em_block *block;
    em_rpc_reply reply;
    char what[400]; /* "<id> from <address>", for messages */
} bucket;

/* lost_output tells the driver (through the task's result) which map output could not be
 * read: it computes that output again, then runs this task again. */
static void lost_output(em_shuffle_read_arg *a, const bucket *b)
{
    if (!a->failed || a->failed->failed) return;
    *a->failed = (em_fetch_failure){1, b->map_stage, b->map_part};
}

static void bucket_release(em_shuffle_read_arg *a, bucket *b)
{
    if (b->block)
        em_block_release(a->blocks, b->block);
    else
        em_rpc_reply_free(&b->reply);
    b->block = NULL;
}

/* fetch: one bucket of a reduce task's window, from when it is started until it is used */
typedef struct fetch {
    const char *address;
    char id[EM_BLOCKID_MAX];
    uint32_t side;
    uint64_t map_stage; /* the stage id in its block id */
    uint32_t map_part;
    int slot, chan;       /* a remote bucket's request: peer and channel; slot -1: none */
    int rc;               /* EMBER_OK, or why the request could not be sent (fetcher.why) */
    Ember__FetchBlock fb; /* the request, kept until its reply (a re-Hello resends it) */
} fetch;

/* fetcher: one reduce task's buckets, in side then map partition order. Buckets are started
 * ahead of use -- up to EM_FETCH_WINDOW, with at most EM_FETCHES_IN_FLIGHT requests
 * outstanding -- and used strictly in order, whatever order the replies come in. A local
 * bucket costs nothing until it is used. Invariant: in_flight counts the window's entries
 * with slot >= 0, and each of them holds one busy channel of a->peers. */
typedef struct fetcher {
    em_shuffle_read_arg *a;
    size_t input, map;          /* the next bucket to start: shuffle input, map partition */
    fetch win[EM_FETCH_WINDOW]; /* started buckets, a ring of n from head */
    size_t head, n;
    int in_flight; /* FetchBlock requests outstanding */
    int stalled;   /* the window's last bucket could not be requested: start no more */
    char why[512]; /* why it could not */
} fetcher;

/* upcoming returns the shuffle input of the next bucket to start (NULL: none left). */
static const Ember__ShuffleInput *upcoming(fetcher *f)
{
    const Ember__StageDef *def = f->a->def;
    for (; f->input < def->n_shuffle_inputs; f->input++, f->map = 0) {
        const Ember__ShuffleInput *in = def->shuffle_inputs[f->input];
        /* skips the inputs of another wide node of a union */
        if (in->wide_node == f->a->node->id && f->map < in->n_map_addresses) return in;
    }
    return NULL;
}

/* fetch_start sends a remote bucket's FetchBlock; a failure waits in e until e is used. */
static void fetch_start(fetcher *f, fetch *e)
{
    em_peers *peers = f->a->peers;
    int slot, chan;
    e->rc = peer_chan(peers, e->address, &slot, &chan, f->why, sizeof f->why);
    if (e->rc == EMBER_OK) {
        ember__fetch_block__init(&e->fb);
        e->fb.block_id = e->id;
        e->rc = em_rpc_call_start(&peers->peer[slot].rpc, &peers->peer[slot].ch[chan],
                                  EM_MSG_FETCH_BLOCK, &e->fb.base, NULL, 0, 60000, f->why,
                                  sizeof f->why);
        if (e->rc != EMBER_OK) peer_done(peers, slot, chan, 0);
    }
    if (e->rc != EMBER_OK) {
        f->stalled = 1;
        return;
    }
    e->slot = slot;
    e->chan = chan;
    f->in_flight++;
}

/* fill starts buckets until the window or the requests in flight are at their bound. */
static void fill(fetcher *f)
{
    const Ember__ShuffleInput *in;
    while (!f->stalled && f->n < EM_FETCH_WINDOW && (in = upcoming(f)) != NULL) {
        const char *address = in->map_addresses[f->map];
        int local = strcmp(address, f->a->self) == 0;
        if (!local && f->in_flight == EM_FETCHES_IN_FLIGHT) break;
        fetch *e = &f->win[(f->head + f->n) % EM_FETCH_WINDOW];
        /* partitions computed again after a loss may carry another stage id */
        uint64_t stage =
            f->map < in->n_map_stage_ids ? in->map_stage_ids[f->map] : in->map_stage_id;
        *e = (fetch){.address = address,
                     .side = in->side,
                     .map_stage = stage,
                     .map_part = (uint32_t)f->map,
                     .slot = -1,
                     .rc = EMBER_OK};
        em_blockid_shuffle(e->id, stage, (uint32_t)f->map, f->a->partition);
        f->n++;
        f->map++;
        if (!local) fetch_start(f, e);
    }
}

/* fetch_take turns a started bucket into b: the local block, or its request's reply. */
static int fetch_take(fetcher *f, fetch *e, bucket *b, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    snprintf(b->what, sizeof b->what, "%s from %s", e->id, e->address);
    b->side = e->side;
    b->map_stage = e->map_stage;
    b->map_part = e->map_part;
    if (e->rc != EMBER_OK) {
        snprintf(err, errlen, "cannot fetch shuffle bucket %s: %s", b->what, f->why);
        lost_output(f->a, b);
        return e->rc;
    }
    if (e->slot < 0) {
        if (!(b->block = em_blockstore_get(f->a->blocks, e->id))) {
            snprintf(err, errlen, "shuffle bucket %s is missing on this executor", e->id);
            lost_output(f->a, b);
            return EMBER_ERR_NOT_FOUND;
        }
        return EMBER_OK;
    }
    em_peers *peers = f->a->peers;
    char why[512];
    int64_t t0 = em_now_us();
    int rc = em_rpc_call_finish(&peers->peer[e->slot].rpc, &peers->peer[e->slot].ch[e->chan],
                                &b->reply, why, sizeof why);
    em_input_wait_add(em_now_us() - t0);
    peer_done(peers, e->slot, e->chan, 0);
    e->slot = -1;
    f->in_flight--;
    if (rc == EMBER_OK && b->reply.frame.type != EM_MSG_BLOCK_DATA) {
        snprintf(why, sizeof why, "answered %s", em_msg_name(b->reply.frame.type));
        em_rpc_reply_free(&b->reply);
        rc = EMBER_ERR_PROTOCOL;
    }
    if (rc != EMBER_OK) {
        snprintf(err, errlen, "cannot fetch shuffle bucket %s: %s", b->what, why);
        lost_output(f->a, b);
        return rc;
    }
    b->data = b->reply.frame.data;
    b->len = b->reply.frame.data_len;
    return EMBER_OK;
}

/* fetch_next gives the next bucket in order: > 0 with b filled (release it), 0 when none is
 * left, or an error. Before returning it starts more buckets, to arrive while b is read. */
static int fetch_next(fetcher *f, bucket *b, char *err, size_t errlen)
{
    fill(f);
    if (f->n == 0) return 0;
    fetch *e = &f->win[f->head];
    f->head = (f->head + 1) % EM_FETCH_WINDOW;
    f->n--;
    int rc = fetch_take(f, e, b, err, errlen); /* before fill reuses e's place */
    if (rc != EMBER_OK) return rc;
    fill(f);
    return 1;
}

/* fetch_abort cancels the requests still outstanding and frees their replies. */
static void fetch_abort(fetcher *f)
{
    for (; f->n > 0; f->n--, f->head = (f->head + 1) % EM_FETCH_WINDOW) {
        fetch *e = &f->win[f->head];
        if (e->slot < 0) continue;
        peer_done(f->a->peers, e->slot, e->chan, 1);
        f->in_flight--;
    }
    EM_ASSERT(f->in_flight == 0);
}

/* piece_records calls fn for every record of the batches in [p, p + len); returns the first
 * error of fn as is, or EMBER_ERR_MALFORMED with a message if they are corrupt (a lost output
 * for the driver). */
static int piece_records(em_shuffle_read_arg *a, const bucket *b, const uint8_t *p, size_t len,
                         int (*fn)(void *, const ember_record *, uint32_t), void *arg, char *err,
                         size_t errlen)
{
    while (len > 0) {
        em_batch_reader r;
        size_t used;
        ember_record rec;
        int got = em_batch_open(p, len, &r, &used);
        if (got == EMBER_OK)
            while ((got = em_batch_next(&r, &rec)) > 0) {
                int rc = fn(arg, &rec, b->side);
                if (rc != EMBER_OK) return rc;
            }
        if (got < 0) {
            snprintf(err, errlen, "shuffle bucket %s is corrupt", b->what);
            lost_output(a, b);
            return EMBER_ERR_MALFORMED;
        }
        p += used;
        len -= used;
    }
    return EMBER_OK;
}

/* bucket_records calls fn for every record of a bucket: a local block piece by piece (its
 * chunks, read in place), a peer's reply as one piece. */
static int bucket_records(em_shuffle_read_arg *a, const bucket *b,
                          int (*fn)(void *, const ember_record *, uint32_t), void *arg, char *err,
                          size_t errlen)
{
    if (!b->block) return piece_records(a, b, b->data, b->len, fn, arg, err, errlen);
    int rc = EMBER_OK;
    for (size_t i = 0; rc == EMBER_OK && i < em_block_pieces(b->block); i++) {
        size_t len;
        const uint8_t *p = em_block_piece(b->block, i, &len);
        rc = piece_records(a, b, p, len, fn, arg, err, errlen);
    }
    return rc;
}

/* ---- reduce side -------------------------------------------------------------------------- */

/* reader: one reduce task's state while buckets arrive */
typedef struct reader {
    em_shuffle_read_arg *a;
    em_record_fn emit;
    void *emit_arg;
    em_combiner *combine; /* combining kinds; grouping: keys only */
    aggregator ag;
    /* grouping and sorting hold every bucket and a view of every record */
    bucket *held;
    size_t n_held, cap_held;
    struct gathered {
        ember_record rec;
        uint32_t side;
        uint32_t tag; /* grouping: the key's group; sorting: the arrival index */
    } * recs;
    size_t n_recs, cap_recs;
    char *err;
    size_t errlen;
} reader;

static int combine_record(void *arg, const ember_record *rec, uint32_t side)
{
    reader *rd = arg;
    (void)side;
    int rc = em_combiner_add(rd->combine, rec);
    if (rc == EMBER_ERR_INVALID)
        snprintf(rd->err, rd->errlen, "reduce_by_key: a shuffled value of %zu bytes",
                 rec->value_len);
    else if (rc != EMBER_OK)
        snprintf(rd->err, rd->errlen, "%s", rd->ag.err[0] ? rd->ag.err : "out of memory");
    return rc == EMBER_ERR_INVALID ? EMBER_ERR_MALFORMED : rc;
}

static int pass_record(void *arg, const ember_record *rec, uint32_t side)
{
    reader *rd = arg;
    (void)side;
    return rd->emit(rd->emit_arg, rec);
}

static int gather_record(void *arg, const ember_record *rec, uint32_t side)
{
    reader *rd = arg;
    if (rd->n_recs == rd->cap_recs) {
        size_t cap = rd->cap_recs ? 2 * rd->cap_recs : 1024;
        struct gathered *p = realloc(rd->recs, cap * sizeof *p);
        if (!p) {
            snprintf(rd->err, rd->errlen, "out of memory holding %zu shuffled records", rd->n_recs);
            return EMBER_ERR_NOMEM;
        }
        rd->recs = p;
        rd->cap_recs = cap;
    }
    rd->recs[rd->n_recs++] = (struct gathered){*rec, side, 0};
    return EMBER_OK;
}

/* hold keeps a fetched bucket until the task ends. */
static int hold(reader *rd, bucket *b)
{
    if (rd->n_held == rd->cap_held) {
        size_t cap = rd->cap_held ? 2 * rd->cap_held : 16;
        bucket *p = realloc(rd->held, cap * sizeof *p);
        if (!p) return EMBER_ERR_NOMEM;
        rd->held = p;
        rd->cap_held = cap;
    }
    rd->held[rd->n_held++] = *b;
    return EMBER_OK;
}

/* emit_groups emits one grouped record per key, values in arrival order. */
static int emit_groups(reader *rd)
{
    size_t n_groups = 0;
    for (size_t i = 0; i < rd->n_recs; i++) {
        int rc = em_combiner_add(rd->combine, &rd->recs[i].rec);
        if (rc != EMBER_OK) return rc;
        rd->recs[i].tag = (uint32_t)em_combiner_last(rd->combine);
    }
    n_groups = em_combiner_size(rd->combine);
    size_t *start = calloc(n_groups + 1, sizeof *start),
           *order = malloc((rd->n_recs + 1) * sizeof *order);
    int rc = start && order ? EMBER_OK : EMBER_ERR_NOMEM;
    for (size_t i = 0; rc == EMBER_OK && i < rd->n_recs; i++) start[rd->recs[i].tag + 1]++;
    for (size_t g = 0; rc == EMBER_OK && g < n_groups; g++) start[g + 1] += start[g];
    for (size_t i = 0; rc == EMBER_OK && i < rd->n_recs; i++) /* counting sort, stable */
        order[start[rd->recs[i].tag]++] = i;
    em_buf value = {0};
    for (size_t g = 0, first = 0; rc == EMBER_OK && g < n_groups; g++) {
        size_t end = start[g]; /* start[g] now points past group g */
        rc = em_group_begin(&value);
        for (size_t j = first; rc == EMBER_OK && j < end; j++)
            rc = em_group_add(&value, rd->recs[order[j]].side, &rd->recs[order[j]].rec);
        if (rc != EMBER_OK) break;
        em_group_finish(&value, (uint32_t)(end - first));
        ember_record key;
        em_combiner_get(rd->combine, g, &key, NULL);
        ember_record grouped = {key.key, key.key_len, value.data, value.len, key.timestamp};
        rc = rd->emit(rd->emit_arg, &grouped);
        first = end;
    }
    if (rc == EMBER_ERR_NOMEM || rc == EMBER_ERR_TOO_LARGE)
        snprintf(rd->err, rd->errlen, "cannot build grouped records: %s", ember_strerror(rc));
    em_buf_free(&value);
    free(start);
    free(order);
    return rc;
}

static int by_key_ascending(const void *x, const void *y)
{
    const struct gathered *a = x, *b = y;
    int c = em_key_compare(a->rec.key, a->rec.key_len, b->rec.key, b->rec.key_len);
    return c ? c : (a->tag > b->tag) - (a->tag < b->tag);
}

static int by_key_descending(const void *x, const void *y)
{
    const struct gathered *a = x, *b = y;
    int c = em_key_compare(b->rec.key, b->rec.key_len, a->rec.key, a->rec.key_len);
    return c ? c : (a->tag > b->tag) - (a->tag < b->tag);
}

/* emit_sorted emits the records by key, ties in arrival order. */
/* sort_gathered orders the gathered records by key, ties in arrival order */
static void sort_gathered(reader *rd, int descending)
{
    for (size_t i = 0; i < rd->n_recs; i++) rd->recs[i].tag = (uint32_t)i;
    if (rd->n_recs > 1) /* recs is NULL when the partition is empty */
        qsort(rd->recs, rd->n_recs, sizeof *rd->recs,
              descending ? by_key_descending : by_key_ascending);
}

/* keep_state runs map_with_state's reduce side over the gathered records */
static int keep_state(reader *rd)
{
    sort_gathered(rd, 0);
    ember_record *recs = rd->n_recs ? malloc(rd->n_recs * sizeof *recs) : NULL;
    if (rd->n_recs && !recs) return EMBER_ERR_NOMEM;
    for (size_t i = 0; i < rd->n_recs; i++) recs[i] = rd->recs[i].rec;
    em_keyed_stats none, *stats = rd->a->keyed ? rd->a->keyed : &none;
    int rc = em_keyed_reduce(rd->a->states, rd->a->node, rd->a->partition, rd->a->lib, recs,
                             rd->n_recs, rd->emit, rd->emit_arg, stats, rd->err, rd->errlen);
    free(recs);
    return rc;
}

static int emit_sorted(reader *rd, int descending)
{
    sort_gathered(rd, descending);
    int rc = EMBER_OK;
    for (size_t i = 0; rc == EMBER_OK && i < rd->n_recs; i++)
        rc = rd->emit(rd->emit_arg, &rd->recs[i].rec);
    return rc;
}

/* read_buckets fetches every bucket of this reduce partition and feeds each to fn, in side
 * then map order; with keep, buckets are held until the task ends (fn keeps views into
 * them), else released. On failure the fetches still outstanding are cancelled. */
static int read_buckets(reader *rd, int (*fn)(void *, const ember_record *, uint32_t), int keep)
{
    fetcher f = {.a = rd->a};
    bucket b;
    int rc;
    while ((rc = fetch_next(&f, &b, rd->err, rd->errlen)) > 0) {
        if (keep && hold(rd, &b) != EMBER_OK) {
            bucket_release(rd->a, &b);
            snprintf(rd->err, rd->errlen, "out of memory holding shuffle buckets");
            rc = EMBER_ERR_NOMEM;
            break;
        }
        rc = bucket_records(rd->a, &b, fn, rd, rd->err, rd->errlen);
        if (!keep) bucket_release(rd->a, &b);
        if (rc != EMBER_OK) break;
    }
    fetch_abort(&f);
    return rc;
}

int em_shuffle_read(void *src, em_record_fn emit, void *emit_arg, char *err, size_t errlen)
{
    em_shuffle_read_arg *a = src;
    reader rd = {.a = a, .emit = emit, .emit_arg = emit_arg, .err = err, .errlen = errlen};
    Ember__NodeKind kind = a->node->kind;
    int rc = EMBER_OK;
    if (em_node_combines(kind)) {
        em_fold fold;
        rc =
            combiner_for(a->node, a->lib, a->partition, 0, &rd.ag, &rd.combine, &fold, err, errlen);
        if (rc == EMBER_OK) rc = read_buckets(&rd, combine_record, 0);
        if (rc == EMBER_OK && kind == EMBER__NODE_KIND__NODE_WINDOW)
            rc = em_window_reduce(a->states, a->node, a->partition, a->node->reducer,
                                  fold.acc_len ? &fold : NULL, rd.combine, emit, emit_arg, err,
                                  errlen);
        for (size_t i = 0; rc == EMBER_OK && kind != EMBER__NODE_KIND__NODE_WINDOW &&
                           i < em_combiner_size(rd.combine);
             i++) {
            ember_record rec;
            em_combiner_get(rd.combine, i, &rec, NULL);
            rc = emit(emit_arg, &rec);
        }
    } else if (kind == EMBER__NODE_KIND__NODE_PARTITION_BY) {
        rc = read_buckets(&rd, pass_record, 0);
    } else {
        em_fold keys_only = {0};
        if (em_node_groups(kind) && !(rd.combine = em_combiner_new_fold(&keys_only, 1024)))
            return EMBER_ERR_NOMEM;
        rc = read_buckets(&rd, gather_record, 1);
        if (rc == EMBER_OK && kind == EMBER__NODE_KIND__NODE_MAP_WITH_STATE)
            rc = keep_state(&rd);
        else if (rc == EMBER_OK)
            rc = em_node_groups(kind) ? emit_groups(&rd) : emit_sorted(&rd, a->node->descending);
    }
    for (size_t i = 0; i < rd.n_held; i++) bucket_release(a, &rd.held[i]);
    free(rd.held);
    free(rd.recs);
    em_combiner_free(rd.combine);
    em_fn_task_free(rd.ag.task);
    return rc;
}
