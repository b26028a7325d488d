/* em_job_opts.c -- job options: "--name value" and "--name" flags after `--` (ember.h).
 *
 * Each lookup scans argv for its name and marks what it used; ember_opts_check then finds
 * the arguments nobody used, so a misspelt option is an error, not a silent default. The
 * first problem found is kept (with its argument) and printed with the usage line.
 */
#include <ember/ember.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em_job_ctx.h"

struct ember_opts {
    struct ember_opts *next; /* the context's other options */
    int argc;
    char **argv;
    char *used; /* used[i]: argv[i] was looked up (argv[0], the library, always is) */
    const char *usage;
    char problem[256]; /* the first thing wrong ("" none) */
};

ember_opts *ember_opts_new(ember_ctx *ctx, int argc, char **argv, const char *usage)
{
    if (!ctx) return NULL;
    ember_opts *o = calloc(1, sizeof *o);
    if (!o || !(o->used = calloc((size_t)(argc > 0 ? argc : 1), 1))) {
        free(o);
        return NULL;
    }
    o->argc = argc;
    o->argv = argv;
    o->usage = usage ? usage : "";
    if (argc > 0) o->used[0] = 1;
    o->next = ctx->opts;
    ctx->opts = o;
    return o;
}

void em_opts_free_all(ember_opts *o)
{
    while (o) {
        ember_opts *next = o->next;
        free(o->used);
        free(o);
        o = next;
    }
}

static void problem(ember_opts *o, const char *fmt, const char *name, const char *value)
{
    if (!o->problem[0]) snprintf(o->problem, sizeof o->problem, fmt, name, value);
}

/* find: the index of option `name` (marked used), or -1 */
static int find(ember_opts *o, const char *name)
{
    for (int i = 1; i < o->argc; i++)
        if (strcmp(o->argv[i], name) == 0) {
            o->used[i] = 1;
            return i;
        }
    return -1;
}

/* value_of: the value after option `name` (marked used), NULL if absent */
static const char *value_of(ember_opts *o, const char *name)
{
    int i = o ? find(o, name) : -1;
    if (i < 0) return NULL;
    if (i + 1 >= o->argc) {
        problem(o, "%s needs a value%s", name, "");
        return NULL;
    }
    o->used[i + 1] = 1;
    return o->argv[i + 1];
}

const char *ember_opt_str(ember_opts *o, const char *name, const char *def)
{
    const char *v = value_of(o, name);
    return v ? v : def;
}

int64_t ember_opt_int(ember_opts *o, const char *name, int64_t def)
{
    const char *v = value_of(o, name);
    if (!v) return def;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 0);
    if (end == v || *end || errno) {
        problem(o, "%s: '%s' is not an integer", name, v);
        return def;
    }
    return x;
}

double ember_opt_double(ember_opts *o, const char *name, double def)
{
    const char *v = value_of(o, name);
    if (!v) return def;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(x)) {
        problem(o, "%s: '%s' is not a number", name, v);
        return def;
    }
    return x;
}

int ember_opt_flag(ember_opts *o, const char *name) { return o && find(o, name) >= 0; }

int ember_opts_check(ember_opts *o)
{
    if (!o) return EMBER_ERR_NOMEM;
    for (int i = 1; i < o->argc && !o->problem[0]; i++)
        if (strcmp(o->argv[i], "--help") == 0)
            problem(o, "%s%s", "usage", "");
        else if (!o->used[i])
            problem(o, "unknown argument '%s'%s", o->argv[i], "");
    if (!o->problem[0]) return EMBER_OK;
    if (strcmp(o->problem, "usage") != 0) fprintf(stderr, "%s\n", o->problem);
    fprintf(stderr, "usage: %s\n", o->usage);
    return EMBER_ERR_INVALID;
}
