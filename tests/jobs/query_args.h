/* query_args.h -- the command line of the streaming test jobs: a value given after --NAME, a
 * flag, and a query's options (--name, --checkpoint, --interval-ms, --detach). Header-only:
 * each job library is built from one source file and keeps its own copy. */
#ifndef EMBER_TESTS_QUERY_ARGS_H
#define EMBER_TESTS_QUERY_ARGS_H

#include <ember/ember.h>
#include <stdlib.h>
#include <string.h>

/* arg_value: the word after `name` (def when absent) */
static inline const char *arg_value(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return def;
}

static inline int64_t arg_int(int argc, char **argv, const char *name, int64_t def)
{
    const char *v = arg_value(argc, argv, name, NULL);
    return v ? atoll(v) : def;
}

static inline int arg_flag(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0) return 1;
    return 0;
}

/* query_args: the query's identity and trigger from the command line */
static inline ember_query_options query_args(int argc, char **argv)
{
    return (ember_query_options){.name = arg_value(argc, argv, "--name", NULL),
                                 .checkpoint = arg_value(argc, argv, "--checkpoint", NULL),
                                 .interval_ms = arg_int(argc, argv, "--interval-ms", 0),
                                 .detach = arg_flag(argc, argv, "--detach")};
}

#endif
