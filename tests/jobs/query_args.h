/* query_args.h -- the query options of the streaming test jobs' command lines (--name,
 * --checkpoint, --interval-ms, --detach), read with ember_opt_*. Header-only: each job
 * library is built from one source file. */
#ifndef EMBER_TESTS_QUERY_ARGS_H
#define EMBER_TESTS_QUERY_ARGS_H

#include <ember/ember.h>

/* query_args: the query's identity and trigger from the command line */
static inline ember_query_options query_args(ember_opts *o)
{
    return (ember_query_options){.name = ember_opt_str(o, "--name", NULL),
                                 .checkpoint = ember_opt_str(o, "--checkpoint", NULL),
                                 .interval_ms = ember_opt_int(o, "--interval-ms", 0),
                                 .detach = ember_opt_flag(o, "--detach")};
}

#endif
