/* em_args.h -- checked parsing of command-line values, shared by every ember program.
 *
 * Each parser names the option and the accepted range in its error, e.g.
 * "--slots: 'abc' is not a whole number in 1..4096".
 */
#ifndef EM_ARGS_H
#define EM_ARGS_H

#include <stddef.h>
#include <stdint.h>

int em_arg_u64(const char *opt, const char *val, uint64_t min, uint64_t max, uint64_t *out,
               char *err, size_t errlen);
int em_arg_u32(const char *opt, const char *val, uint32_t min, uint32_t max, uint32_t *out,
               char *err, size_t errlen);
/* em_arg_mib parses a size in MiB (min..max) and stores it in bytes. */
int em_arg_mib(const char *opt, const char *val, uint32_t min, uint32_t max, uint64_t *bytes,
               char *err, size_t errlen);
/* em_args_done fails with "unexpected argument" if arguments remain after the options. */
int em_args_done(int argc, char **argv, int optind, char *err, size_t errlen);
/* em_arg_string copies val into out (size out_len) if it fits and is not empty. */
int em_arg_string(const char *opt, const char *val, char *out, size_t out_len, char *err,
                  size_t errlen);
/* em_arg_hostport checks "host:port" with a port in 0..65535. */
int em_arg_hostport(const char *opt, const char *val, char *out, size_t out_len, char *err,
                    size_t errlen);

#endif
