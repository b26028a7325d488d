/* em_block_service.c -- the executor's block server: FetchBlock -> BlockData.
 *
 * Runs on its own thread with its own em_server, so a peer flooding it with garbage costs
 * only its own connection (em_server closes it) and never delays tasks.
 */
#include "em_block_service.h"

#include <ember/ember.h>
#include <stdlib.h>
#include <string.h>

#include "em_log.h"

static void serve_fetch(em_server *srv, em_blockstore *blocks, em_request *req)
{
    Ember__FetchBlock *f = em_frame_unpack(&req->frame, EM_MSG_FETCH_BLOCK);
    em_block *b =
        f && strnlen(f->block_id, 256) < 256 ? em_blockstore_get(blocks, f->block_id) : NULL;
    if (!b) {
        em_server_reply_error(srv, req, f ? EMBER_ERR_NOT_FOUND : EMBER_ERR_MALFORMED,
                              f ? "block not held by this executor" : "unreadable FetchBlock");
    } else {
        Ember__BlockData bd = EMBER__BLOCK_DATA__INIT;
        bd.block_id = f->block_id;
        size_t n = em_block_pieces(b);
        em_iov one, *iov = n == 1 ? &one : malloc(n * sizeof *iov);
        for (size_t i = 0; iov && i < n; i++) iov[i].p = em_block_piece(b, i, &iov[i].len);
        if (iov)
            em_server_reply(srv, req, EM_MSG_BLOCK_DATA, &bd.base, iov, n);
        else
            em_server_reply_error(srv, req, EMBER_ERR_NOMEM, "out of memory serving a block");
        if (iov != &one) free(iov);
        em_block_release(blocks, b);
    }
    em_pb_free(f);
}

void em_block_service_run(em_server *srv, em_blockstore *blocks)
{
    for (;;) {
        em_request req;
        int rc = em_server_recv(srv, &req, 1000);
        em_conn closed[64];
        while (em_server_closed(srv, closed, 64) > 0) {
        }
        if (rc == EMBER_ERR_CANCELLED) return;
        if (rc != EMBER_OK) continue;
        if (req.frame.type == EM_MSG_FETCH_BLOCK) {
            serve_fetch(srv, blocks, &req);
        } else {
            em_warn("unexpected request on block service type=%s", em_msg_name(req.frame.type));
            em_server_reply_error(srv, &req, EMBER_ERR_PROTOCOL, "executors serve FetchBlock only");
        }
    }
}
