/* em_log.h -- structured one-line logging to stderr, shared by every ember process.
 *
 * Each line is `ts=<iso8601> level=<lvl> proc=<name> msg="..." key=value ...`: one event per
 * line so logs can be grepped and parsed. Thread-safe (one write(2) per line).
 */
#ifndef EM_LOG_H
#define EM_LOG_H

#include <stdarg.h>

typedef enum em_log_level { EM_LOG_DEBUG, EM_LOG_INFO, EM_LOG_WARN, EM_LOG_ERROR } em_log_level;

/* em_log_init sets the process name shown on every line and the minimum level. */
void em_log_init(const char *proc_name, em_log_level min_level);
/* em_log_set_level changes the minimum level; EMBER_LOG=debug|info|warn|error does too. */
void em_log_set_level(em_log_level min_level);
/* em_log writes one line; fmt is the event text followed by optional ` key=value` pairs. */
void em_log(em_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define em_debug(...) em_log(EM_LOG_DEBUG, __VA_ARGS__)
#define em_info(...)  em_log(EM_LOG_INFO, __VA_ARGS__)
#define em_warn(...)  em_log(EM_LOG_WARN, __VA_ARGS__)
#define em_error(...) em_log(EM_LOG_ERROR, __VA_ARGS__)

/* EM_ASSERT aborts with file and line when an invariant of ember's own code is broken.
 * Never use it on input from the network, Kafka, files or a job .so: validate those. */
#define EM_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) em_assert_fail(#cond, __FILE__, __LINE__);                                    \
    } while (0)
void em_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

#endif
