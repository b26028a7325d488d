/* em_redis_sink.c -- a task's output into Redis (see em_redis_sink.h). */
#include "em_redis_sink.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_buf.h"

struct em_redis_sink {
    redisContext *c;
    const Ember__Action *a;
    size_t owed;     /* replies not read yet */
    char fence[600]; /* fenced: the task's fence key, redis_fence ":" partition */
    int fenced;      /* the writes go in a transaction with the fence */
    int applied;     /* fenced: the batch was applied before: write nothing */
};

/* reply_error: whether reply r (or its absence) is an error; the message in err */
static int reply_error(em_redis_sink *s, redisReply *r, const char *what, char *err, size_t errlen)
{
    int rc = EMBER_OK;
    if (!r) {
        snprintf(err, errlen, "redis %s at %s: %s", what, s->a->redis_address,
                 s->c->errstr[0] ? s->c->errstr : "connection lost");
        rc = EMBER_ERR_IO;
    } else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis %s at %s: %.*s", what, s->a->redis_address, (int)r->len,
                 r->str);
        rc = EMBER_ERR_IO;
    }
    if (r) freeReplyObject(r);
    return rc;
}

/* drain reads every reply owed */
static int drain(em_redis_sink *s, char *err, size_t errlen)
{
    int rc = EMBER_OK;
    for (; s->owed > 0; s->owed--) {
        void *r = NULL;
        if (redisGetReply(s->c, &r) != REDIS_OK) r = NULL;
        int one = reply_error(s, r, "write", err, errlen);
        if (rc == EMBER_OK) rc = one;
        if (!r && one != EMBER_OK) break; /* the connection is gone: no more replies */
    }
    return rc;
}

static int command(em_redis_sink *s, const char *what, int argc, const char **argv,
                   const size_t *lens, char *err, size_t errlen)
{
    redisReply *r = redisCommandArgv(s->c, argc, argv, lens);
    return reply_error(s, r, what, err, errlen);
}

/* fence_value: the batch the fence holds for the task (0: none); -1 on error */
static int64_t fence_value(em_redis_sink *s, char *err, size_t errlen)
{
    const char *argv[] = {"GET", s->fence};
    size_t lens[] = {3, strlen(s->fence)};
    redisReply *r = redisCommandArgv(s->c, 2, argv, lens);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        reply_error(s, r, "GET of the fence", err, errlen);
        return -1;
    }
    int64_t v = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    return v;
}

/* begin_fenced: WATCH the task's fence; the batch applied already, or MULTI. Each task has a
 * fence key of its own, so the tasks of a batch never abort each other's transactions. */
static int begin_fenced(em_redis_sink *s, char *err, size_t errlen)
{
    const char *watch[] = {"WATCH", s->fence};
    size_t wlens[] = {5, strlen(s->fence)};
    int rc = command(s, "WATCH", 2, watch, wlens, err, errlen);
    int64_t v = rc == EMBER_OK ? fence_value(s, err, errlen) : -1;
    if (v < 0) return rc == EMBER_OK ? EMBER_ERR_IO : rc;
    if (v >= s->a->redis_batch) { /* this batch ran before: its writes are there */
        s->applied = 1;
        const char *unwatch[] = {"UNWATCH"};
        size_t ulens[] = {7};
        return command(s, "UNWATCH", 1, unwatch, ulens, err, errlen);
    }
    const char *multi[] = {"MULTI"};
    size_t mlens[] = {5};
    return command(s, "MULTI", 1, multi, mlens, err, errlen);
}

int em_redis_sink_open(const Ember__Action *a, uint32_t partition, em_redis_sink **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    em_redis_sink *s = calloc(1, sizeof *s);
    if (!s) return EMBER_ERR_NOMEM;
    s->a = a;
    struct timeval tv = {EM_REDIS_TIMEOUT_MS / 1000, 0};
    const char *addr = a->redis_address;
    if (strncmp(addr, "unix:", 5) == 0) {
        s->c = redisConnectUnixWithTimeout(addr + 5, tv);
    } else {
        char host[1024];
        const char *colon = strrchr(addr, ':');
        int port = colon ? atoi(colon + 1) : 6379;
        snprintf(host, sizeof host, "%.*s", colon ? (int)(colon - addr) : (int)strlen(addr), addr);
        s->c = redisConnectWithTimeout(host, port, tv);
    }
    int rc = EMBER_OK;
    if (!s->c || s->c->err) {
        snprintf(err, errlen, "cannot connect to redis at %s: %s", addr,
                 s->c ? s->c->errstr : "out of memory");
        rc = EMBER_ERR_CONNECT;
    }
    if (rc == EMBER_OK) redisSetTimeout(s->c, tv);
    if (rc == EMBER_OK && a->redis_password[0]) {
        const char *argv[] = {"AUTH", a->redis_password};
        size_t lens[] = {4, strlen(a->redis_password)};
        rc = command(s, "AUTH", 2, argv, lens, err, errlen);
    }
    if (rc == EMBER_OK && a->redis_db) {
        char db[16];
        snprintf(db, sizeof db, "%u", a->redis_db);
        const char *argv[] = {"SELECT", db};
        size_t lens[] = {6, strlen(db)};
        rc = command(s, "SELECT", 2, argv, lens, err, errlen);
    }
    if (rc == EMBER_OK && a->redis_fence[0] && a->redis_batch > 0) {
        s->fenced = 1;
        snprintf(s->fence, sizeof s->fence, "%s:%u", a->redis_fence, partition);
        rc = begin_fenced(s, err, errlen);
    }
    if (rc != EMBER_OK) {
        em_redis_sink_close(s, 0, NULL, 0);
        return rc;
    }
    *out = s;
    return EMBER_OK;
}

/* hash_args splits an HSET value into field/value arguments after argv[0..1] */
static int hash_args(const ember_record *rec, const char **argv, size_t *lens, int max, int *argc)
{
    const uint8_t *p = rec->value, *end = p + rec->value_len;
    int n = 2;
    while (p < end) {
        if (end - p < 4 || n >= max) return EMBER_ERR_MALFORMED;
        uint32_t len = em_get_u32le(p);
        p += 4;
        if ((size_t)(end - p) < len) return EMBER_ERR_MALFORMED;
        argv[n] = (const char *)p;
        lens[n++] = len;
        p += len;
    }
    if (n == 2 || n % 2 != 0) return EMBER_ERR_MALFORMED; /* pairs, at least one */
    *argc = n;
    return EMBER_OK;
}

#define MAX_ARGS 258 /* HSET key and 128 pairs */

int em_redis_sink_write(em_redis_sink *s, const ember_record *rec, char *err, size_t errlen)
{
    if (s->applied) return EMBER_OK; /* the batch's writes are there already */
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    int argc = 0;
    char score[32];
    argv[1] = rec->key;
    lens[1] = rec->key_len;
    switch (s->a->redis_command) {
    case EMBER__REDIS_COMMAND__REDIS_SET:
        argv[0] = "SET", lens[0] = 3, argv[2] = rec->value, lens[2] = rec->value_len, argc = 3;
        break;
    case EMBER__REDIS_COMMAND__REDIS_HSET:
        argv[0] = "HSET", lens[0] = 4;
        if (hash_args(rec, argv, lens, MAX_ARGS, &argc) != EMBER_OK) {
            snprintf(err, errlen,
                     "save_redis HSET: a record value that is not 1 to 128 field/value pairs "
                     "(see ember_redis_fields)");
            return EMBER_ERR_MALFORMED;
        }
        break;
    default: { /* ZADD */
        double v;
        if (rec->value_len < sizeof v) {
            snprintf(err, errlen, "save_redis ZADD: a record value shorter than its 8-byte score");
            return EMBER_ERR_MALFORMED;
        }
        memcpy(&v, rec->value, sizeof v);
        argv[0] = "ZADD", lens[0] = 4;
        lens[2] = (size_t)snprintf(score, sizeof score, "%.17g", v);
        argv[2] = score;
        argv[3] = (const char *)rec->value + sizeof v, lens[3] = rec->value_len - sizeof v;
        argc = 4;
    }
    }
    if (redisAppendCommandArgv(s->c, argc, argv, lens) != REDIS_OK) {
        snprintf(err, errlen, "redis at %s: out of memory", s->a->redis_address);
        return EMBER_ERR_NOMEM;
    }
    s->owed++;
    if (s->a->redis_ttl_ms > 0) {
        char ttl[32];
        const char *targv[] = {"PEXPIRE", rec->key, ttl};
        size_t tlens[] = {7, rec->key_len,
                          (size_t)snprintf(ttl, sizeof ttl, "%lld", (long long)s->a->redis_ttl_ms)};
        if (redisAppendCommandArgv(s->c, 3, targv, tlens) != REDIS_OK) {
            snprintf(err, errlen, "redis at %s: out of memory", s->a->redis_address);
            return EMBER_ERR_NOMEM;
        }
        s->owed++;
    }
    return s->owed >= EM_REDIS_PIPELINE ? drain(s, err, errlen) : EMBER_OK;
}

/* commit_fenced sets the fence and EXECs the transaction; each queued write's result is
 * checked (Redis applies the others of a transaction when one fails) */
static int commit_fenced(em_redis_sink *s, char *err, size_t errlen)
{
    char batch[32];
    const char *set[] = {"SET", s->fence, batch};
    size_t slens[] = {3, strlen(s->fence),
                      (size_t)snprintf(batch, sizeof batch, "%lld", (long long)s->a->redis_batch)};
    const char *exec[] = {"EXEC"};
    size_t elens[] = {4};
    if (redisAppendCommandArgv(s->c, 3, set, slens) != REDIS_OK) return EMBER_ERR_NOMEM;
    s->owed++;
    int rc = drain(s, err, errlen); /* +QUEUED each, or an error queueing one */
    redisReply *r = rc == EMBER_OK ? redisCommandArgv(s->c, 1, exec, elens) : NULL;
    if (rc != EMBER_OK) return rc;
    if (!r || r->type == REDIS_REPLY_ERROR) return reply_error(s, r, "EXEC", err, errlen);
    if (r->type == REDIS_REPLY_NIL) { /* the fence moved: another attempt applied the batch */
        freeReplyObject(r);
        int64_t v = fence_value(s, err, errlen);
        if (v >= s->a->redis_batch) return EMBER_OK;
        if (v >= 0)
            snprintf(err, errlen, "redis at %s: the batch's transaction was aborted (fence %s)",
                     s->a->redis_address, s->fence);
        return EMBER_ERR_IO;
    }
    for (size_t i = 0; rc == EMBER_OK && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen,
                     "redis write at %s: %.*s (the rest of the batch's writes were applied)",
                     s->a->redis_address, (int)r->element[i]->len, r->element[i]->str);
            rc = EMBER_ERR_IO;
        }
    freeReplyObject(r);
    return rc;
}

int em_redis_sink_close(em_redis_sink *s, int ok, char *err, size_t errlen)
{
    if (!s) return EMBER_OK;
    int rc = EMBER_OK;
    if (ok && s->fenced && !s->applied)
        rc = commit_fenced(s, err, errlen);
    else if (ok && !s->applied)
        rc = drain(s, err, errlen);
    if (s->c) redisFree(s->c); /* an open transaction is discarded with the connection */
    free(s);
    return rc;
}
