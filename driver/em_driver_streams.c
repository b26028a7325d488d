/* em_driver_streams.c -- streaming queries on the driver's side of the wire: StartQuery,
 * GetQuery and StopQuery decoded and answered, and the batch jobs the stream thread prepared
 * handed to the scheduler core. The queries themselves live in em_stream.h. */
#include <ember/ember.h>
#include <stdio.h>
#include <string.h>

#include "em_driver.h"
#include "em_graph.h"
#include "em_libstore.h"
#include "em_log.h"
#include "em_query_store.h"
#include "em_time.h"

#define INTERVAL_MAX_MS 86400000u

static void reply_status(em_driver *d, em_request *req, const char *name)
{
    em_query_status_buf st;
    em_streams_status(&d->streams, name, &st);
    em_server_reply(d->srv, req, EM_MSG_QUERY_STATUS, &st.msg.base, NULL, 0);
}

/* keep: whether q is to be kept on the driver's disk: detached, with a state directory, and
 * not refused for a live query of its name (whose file it would replace) */
static int keep(em_driver *d, const Ember__StartQuery *q)
{
    return q->detach && d->cfg.state_dir[0] && !em_streams_live(&d->streams, q->name);
}

static int save(em_driver *d, const Ember__StartQuery *q, char *why, size_t whylen)
{
    size_t len;
    const void *lib = em_libstore_get(d->libs, q->graph->library_sha256.data, &len);
    char err[1024] = "";
    int rc = lib ? em_query_store_save(d->cfg.state_dir, q, lib, len, err, sizeof err)
                 : EMBER_ERR_NOT_FOUND;
    if (rc != EMBER_OK)
        snprintf(why, whylen, "query '%s': cannot keep it in the driver's state directory %s: %s",
                 q->name, d->cfg.state_dir, err[0] ? err : ember_strerror(rc));
    return rc;
}

/* restore registers a query kept by an earlier driver, with its library */
static void restore(void *arg, Ember__StartQuery *q, const void *lib, size_t lib_len)
{
    em_driver *d = arg;
    char why[1024] = "", name[EM_QUERY_NAME_MAX + 1];
    snprintf(name, sizeof name, "%s", q->name);
    int32_t stream_node = -1;
    int rc = em_libstore_put(d->libs, q->graph->library_sha256.data, q->graph->library_name, lib,
                             lib_len, why, sizeof why);
    if (rc == EMBER_OK) rc = em_graph_validate_query(q->graph, &stream_node, why, sizeof why);
    if (rc == EMBER_OK) {
        q->detach = 1;
        rc = em_streams_start(&d->streams, q, stream_node, (em_session_id){0}, em_unix_ms(), why,
                              sizeof why);
    }
    if (rc == EMBER_OK) {
        em_info("query restored name=%s", name);
        return;
    }
    em_warn("kept query not restored name=%s reason=\"%s\"", name, why);
    em_pb_free(q);
}

void em_driver_restore_queries(em_driver *d)
{
    if (!d->cfg.state_dir[0]) return;
    size_t n = em_query_store_load(d->cfg.state_dir, restore, d);
    if (n)
        em_info("queries restored from the state directory count=%zu dir=%s", n, d->cfg.state_dir);
}

static void start_query(em_driver *d, em_request *req)
{
    char why[1024] = "", name[EM_QUERY_NAME_MAX + 1] = "";
    Ember__StartQuery *q = em_frame_unpack(&req->frame, EM_MSG_START_QUERY);
    int32_t stream_node = -1;
    int rc = EMBER_ERR_INVALID, kept = 0;
    if (!q || !q->graph)
        snprintf(why, sizeof why, "StartQuery: unreadable request");
    else if (!em_valid_text(q->name, EM_QUERY_NAME_MAX))
        snprintf(why, sizeof why,
                 "a query's name is 1 to %d printable characters, without "
                 "quotes or backslashes",
                 EM_QUERY_NAME_MAX);
    else if (!em_valid_text(q->checkpoint, 1000) || q->checkpoint[0] != '/')
        snprintf(why, sizeof why, "query '%s': the checkpoint must be an absolute directory",
                 q->name);
    else if (q->interval_ms < EM_QUERY_MIN_MS || q->interval_ms > INTERVAL_MAX_MS)
        snprintf(why, sizeof why, "query '%s': a trigger interval of %u ms (%d..%u)", q->name,
                 q->interval_ms, EM_QUERY_MIN_MS, INTERVAL_MAX_MS);
    else if (q->submitter[0] && !em_valid_text(q->submitter, 127))
        snprintf(why, sizeof why, "StartQuery: bad submitter");
    else if ((rc = em_graph_validate_query(q->graph, &stream_node, why, sizeof why)) != EMBER_OK)
        ;
    else if (!em_libstore_has(d->libs, q->graph->library_sha256.data))
        rc = EMBER_ERR_NOT_FOUND, snprintf(why, sizeof why,
                                           "job library %s was not uploaded to "
                                           "the driver",
                                           q->graph->library_name);
    else if ((kept = keep(d, q)) && (rc = save(d, q, why, sizeof why)) != EMBER_OK)
        ;
    else if (snprintf(name, sizeof name, "%s", q->name),
             (rc = em_streams_start(&d->streams, q, stream_node, (em_session_id){req->session},
                                    em_unix_ms(), why, sizeof why)) == EMBER_OK)
        q = NULL; /* the registry has it */
    if (rc != EMBER_OK && kept) em_query_store_remove(d->cfg.state_dir, q->name);
    em_pb_free(q);
    if (rc == EMBER_OK) {
        reply_status(d, req, name);
        return;
    }
    em_warn("query refused reason=\"%s\"", why);
    em_server_reply_error(d->srv, req, rc, "%s", why);
}

void em_driver_query_request(em_driver *d, em_request *req)
{
    if (req->frame.type == EM_MSG_START_QUERY) {
        start_query(d, req);
        return;
    }
    const char *name = NULL;
    void *pb = NULL;
    if (req->frame.type == EM_MSG_GET_QUERY) {
        Ember__GetQuery *g = pb = em_frame_unpack(&req->frame, EM_MSG_GET_QUERY);
        name = g ? g->name : NULL;
    } else {
        Ember__StopQuery *s = pb = em_frame_unpack(&req->frame, EM_MSG_STOP_QUERY);
        name = s ? s->name : NULL;
    }
    if (!em_valid_text(name, EM_QUERY_NAME_MAX))
        em_server_reply_error(d->srv, req, EMBER_ERR_MALFORMED, "%s: no valid query name",
                              em_msg_name(req->frame.type));
    else if (req->frame.type == EM_MSG_STOP_QUERY && !em_streams_stop(&d->streams, name))
        em_server_reply_error(d->srv, req, EMBER_ERR_NOT_FOUND, "no query named '%s'", name);
    else
        reply_status(d, req, name);
    em_pb_free(pb);
}

void em_driver_submit_batches(em_driver *d)
{
    uint64_t query;
    em_session_id session;
    Ember__SubmitJob *submit;
    while (em_streams_take_submit(&d->streams, &query, &session, &submit)) {
        char why[1024] = "";
        em_job_id job = {0};
        int rc = submit ? em_graph_validate(submit->graph, 0, why, sizeof why) : EMBER_ERR_NOMEM;
        if (rc == EMBER_OK && !em_libstore_has(d->libs, submit->graph->library_sha256.data)) {
            rc = EMBER_ERR_NOT_FOUND;
            snprintf(why, sizeof why, "its job library %s is no longer on the driver",
                     submit->graph->library_name);
        }
        if (rc == EMBER_OK)
            rc = em_sched_submit(&d->sched, session, submit, NULL, 0, em_now_us(), &job, why,
                                 sizeof why);
        if (rc == EMBER_OK) em_driver_stamp_job(d, job);
        if (rc != EMBER_OK) em_pb_free(submit);
        em_streams_job_started(&d->streams, query, job, rc, why, em_now_us());
    }
}
