/* em_args.c -- checked parsing of command-line values (see em_args.h). */
#include "em_args.h"

#include <ember/ember.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int em_arg_u64(const char *opt, const char *val, uint64_t min, uint64_t max, uint64_t *out,
               char *err, size_t errlen)
{
    char *end;
    errno = 0;
    int digits = val && *val >= '0' && *val <= '9'; /* no sign, no space */
    unsigned long long v = digits ? strtoull(val, &end, 10) : 0;
    if (!digits || errno || *end || v < min || v > max) {
        snprintf(err, errlen, "%s: '%s' is not a whole number in %llu..%llu", opt, val ? val : "",
                 (unsigned long long)min, (unsigned long long)max);
        return EMBER_ERR_INVALID;
    }
    *out = v;
    return EMBER_OK;
}

int em_arg_u32(const char *opt, const char *val, uint32_t min, uint32_t max, uint32_t *out,
               char *err, size_t errlen)
{
    uint64_t v;
    int rc = em_arg_u64(opt, val, min, max, &v, err, errlen);
    if (rc == EMBER_OK) *out = (uint32_t)v;
    return rc;
}

int em_arg_mib(const char *opt, const char *val, uint32_t min, uint32_t max, uint64_t *bytes,
               char *err, size_t errlen)
{
    uint32_t mib;
    int rc = em_arg_u32(opt, val, min, max, &mib, err, errlen);
    if (rc == EMBER_OK) *bytes = (uint64_t)mib << 20;
    return rc;
}

int em_args_done(int argc, char **argv, int optind, char *err, size_t errlen)
{
    if (optind >= argc) return EMBER_OK;
    snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
    return EMBER_ERR_INVALID;
}

int em_arg_string(const char *opt, const char *val, char *out, size_t out_len, char *err,
                  size_t errlen)
{
    if (!val || !*val || strlen(val) >= out_len) {
        snprintf(err, errlen, "%s: needs a value of 1..%zu characters", opt, out_len - 1);
        return EMBER_ERR_INVALID;
    }
    memcpy(out, val, strlen(val) + 1);
    return EMBER_OK;
}

int em_arg_hostport(const char *opt, const char *val, char *out, size_t out_len, char *err,
                    size_t errlen)
{
    const char *colon = val ? strrchr(val, ':') : NULL;
    uint32_t port;
    char perr[128];
    if (!colon || colon == val ||
        em_arg_u32(opt, colon + 1, 0, 65535, &port, perr, sizeof perr) != EMBER_OK) {
        snprintf(err, errlen, "%s: '%s' is not host:port (port 0..65535)", opt, val ? val : "");
        return EMBER_ERR_INVALID;
    }
    return em_arg_string(opt, val, out, out_len, err, errlen);
}
