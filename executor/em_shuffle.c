/* em_shuffle.c -- storing map outputs and reading them back in reduce tasks (em_shuffle.h). */
#include "em_shuffle.h"

#include <ember/ember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_batch.h"
#include "ember.pb-c.h"

static void block_id(char *out, size_t len, uint64_t map_stage, uint32_t map_part,
                     uint32_t reduce_part)
{
    snprintf(out, len, "shuffle_%llu_%u_%u", (unsigned long long)map_stage, map_part, reduce_part);
}

int em_shuffle_store(em_blockstore *blocks, const em_combiner *out, uint64_t map_stage,
                     uint32_t map_part, uint32_t reducers, uint64_t *bucket_bytes, char *err,
                     size_t errlen)
{
    em_batch_writer *w = calloc(reducers, sizeof *w);
    int rc = w ? EMBER_OK : EMBER_ERR_NOMEM;
    for (uint32_t r = 0; rc == EMBER_OK && r < reducers; r++) rc = em_batch_begin(&w[r]);
    for (size_t i = 0; rc == EMBER_OK && i < em_combiner_size(out); i++) {
        ember_record rec;
        uint64_t hash;
        em_combiner_get(out, i, &rec, &hash);
        rc = em_batch_add(&w[hash % reducers], &rec);
    }
    for (uint32_t r = 0; rc == EMBER_OK && r < reducers; r++) {
        char id[96];
        size_t len;
        em_batch_finish(&w[r]);
        block_id(id, sizeof id, map_stage, map_part, r);
        uint8_t *bytes = em_buf_take(&w[r].buf, &len);
        if ((rc = em_blockstore_put(blocks, id, bytes, len)) != EMBER_OK) {
            free(bytes);
            snprintf(err, errlen, "cannot keep shuffle output %s (%zu bytes): %s", id, len,
                     rc == EMBER_ERR_TOO_LARGE ? "over the executor's memory cap (--memory-mb)"
                                               : ember_strerror(rc));
        }
        bucket_bytes[r] = len;
    }
    if (rc == EMBER_ERR_NOMEM && !err[0])
        snprintf(err, errlen, "out of memory splitting shuffle output");
    for (uint32_t r = 0; w && r < reducers; r++) em_buf_free(&w[r].buf);
    free(w);
    return rc;
}

void em_peers_close(em_peers *peers)
{
    for (int i = 0; i < EM_PEERS_CACHED; i++)
        if (peers->peer[i].address[0]) {
            em_rpc_chan_close(&peers->peer[i].ch);
            em_rpc_close(&peers->peer[i].rpc);
            peers->peer[i].address[0] = '\0';
        }
}

/* peer returns the slot of a connection to address, opening one in place of the oldest. */
static int peer(em_peers *peers, const char *address, int *slot, char *err, size_t errlen)
{
    for (int i = 0; i < EM_PEERS_CACHED; i++)
        if (strcmp(peers->peer[i].address, address) == 0) {
            *slot = i;
            return EMBER_OK;
        }
    int i = peers->next_victim++ % EM_PEERS_CACHED;
    if (peers->peer[i].address[0]) {
        em_rpc_chan_close(&peers->peer[i].ch);
        em_rpc_close(&peers->peer[i].rpc);
        peers->peer[i].address[0] = '\0';
    }
    int rc = em_rpc_open(&peers->peer[i].rpc, address, "peer", 1u << 30, 5000, err, errlen);
    if (rc != EMBER_OK) return rc;
    memset(&peers->peer[i].ch, 0, sizeof peers->peer[i].ch);
    if ((rc = em_rpc_chan_open(&peers->peer[i].rpc, &peers->peer[i].ch)) != EMBER_OK) {
        em_rpc_close(&peers->peer[i].rpc);
        return rc;
    }
    snprintf(peers->peer[i].address, sizeof peers->peer[i].address, "%s", address);
    *slot = i;
    return EMBER_OK;
}

/* fold_batches adds every record of a bucket's batches to the combiner. */
static int fold_batches(em_combiner *c, const uint8_t *p, size_t len, const char *what, char *err,
                        size_t errlen)
{
    while (len > 0) {
        em_batch_reader r;
        size_t used;
        ember_record rec;
        int rc = em_batch_open(p, len, &r, &used);
        while (rc == EMBER_OK && (rc = em_batch_next(&r, &rec)) > 0) rc = em_combiner_add(c, &rec);
        if (rc < 0) {
            snprintf(err, errlen, "shuffle bucket %s is corrupt", what);
            return EMBER_ERR_MALFORMED;
        }
        p += used;
        len -= used;
    }
    return EMBER_OK;
}

/* fetch_bucket folds one bucket, local or remote, into c. */
static int fetch_bucket(em_shuffle_read_arg *a, em_combiner *c, const char *address, const char *id,
                        char *err, size_t errlen)
{
    char what[400];
    snprintf(what, sizeof what, "%s from %s", id, address);
    if (strcmp(address, a->self) == 0) {
        em_block *b = em_blockstore_get(a->blocks, id);
        if (!b) {
            snprintf(err, errlen, "shuffle bucket %s is missing on this executor", id);
            return EMBER_ERR_NOT_FOUND;
        }
        size_t len;
        const void *p = em_block_data(b, &len);
        int rc = fold_batches(c, p, len, what, err, errlen);
        em_block_release(a->blocks, b);
        return rc;
    }
    int slot;
    char why[512];
    int rc = peer(a->peers, address, &slot, why, sizeof why);
    if (rc == EMBER_OK) {
        Ember__FetchBlock fb = EMBER__FETCH_BLOCK__INIT;
        fb.block_id = (char *)id;
        em_rpc_reply reply = {0};
        rc = em_rpc_call(&a->peers->peer[slot].rpc, &a->peers->peer[slot].ch, EM_MSG_FETCH_BLOCK,
                         &fb.base, NULL, 0, 60000, &reply, why, sizeof why);
        if (rc == EMBER_OK && reply.frame.type != EM_MSG_BLOCK_DATA) {
            rc = EMBER_ERR_PROTOCOL;
            snprintf(why, sizeof why, "answered %s", em_msg_name(reply.frame.type));
        }
        if (rc == EMBER_OK) {
            rc = fold_batches(c, reply.frame.data, reply.frame.data_len, what, err, errlen);
            em_rpc_reply_free(&reply);
            return rc;
        }
    }
    snprintf(err, errlen, "cannot fetch shuffle bucket %s: %s", what, why);
    return rc;
}

int em_shuffle_read(void *src, em_record_fn emit, void *emit_arg, char *err, size_t errlen)
{
    em_shuffle_read_arg *a = src;
    em_combiner *c = em_combiner_new(a->node->reducer, 1024);
    if (!c) return EMBER_ERR_NOMEM;
    int rc = EMBER_OK;
    for (size_t i = 0; rc == EMBER_OK && i < a->def->n_shuffle_inputs; i++) {
        const Ember__ShuffleInput *in = a->def->shuffle_inputs[i];
        for (size_t m = 0; rc == EMBER_OK && m < in->n_map_addresses; m++) {
            char id[96];
            block_id(id, sizeof id, in->map_stage_id, (uint32_t)m, a->partition);
            rc = fetch_bucket(a, c, in->map_addresses[m], id, err, errlen);
        }
    }
    for (size_t i = 0; rc == EMBER_OK && i < em_combiner_size(c); i++) {
        ember_record rec;
        em_combiner_get(c, i, &rec, NULL);
        rc = emit(emit_arg, &rec);
    }
    em_combiner_free(c);
    return rc;
}
