/* em_redis_sink.c -- a task's output into Redis (see em_redis_sink.h). */
#include "em_redis_sink.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct em_redis_sink {
    redisContext *c;
    const Ember__Action *a;
    size_t owed; /* replies not read yet */
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

int em_redis_sink_open(const Ember__Action *a, em_redis_sink **out, char *err, size_t errlen)
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
        uint32_t len =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
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

int em_redis_sink_close(em_redis_sink *s, int ok, char *err, size_t errlen)
{
    if (!s) return EMBER_OK;
    int rc = ok ? drain(s, err, errlen) : EMBER_OK;
    if (s->c) redisFree(s->c);
    free(s);
    return rc;
}
