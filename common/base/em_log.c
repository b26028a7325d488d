/* em_log.c -- structured one-line logging to stderr (see em_log.h). */
#include "em_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *log_proc = "ember";
static em_log_level log_min = EM_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void em_log_init(const char *proc_name, em_log_level min_level)
{
    log_proc = proc_name;
    log_min = min_level;
    const char *env = getenv("EMBER_LOG");
    for (int i = 0; env && i < 4; i++)
        if (strcasecmp(env, level_names[i]) == 0) log_min = (em_log_level)i;
}

void em_log_set_level(em_log_level min_level) { log_min = min_level; }

void em_log(em_log_level level, const char *fmt, ...)
{
    if (level < log_min) return;
    char line[2048];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s proc=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     now.tv_nsec / 1000000, level_names[level], log_proc);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void em_assert_fail(const char *expr, const char *file, int line)
{
    em_log(EM_LOG_ERROR, "assertion failed: %s at %s:%d", expr, file, line);
    abort();
}
