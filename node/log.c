/*
 * log.c - stderr logging with a level and a UTC timestamp (see log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "shoal_err.h"

static atomic_int s_level = LOG_INFO;

static const char *const s_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void log_set_level(log_level_t level)
{
    atomic_store(&s_level, (int)level);
}

log_level_t log_get_level(void)
{
    return (log_level_t)atomic_load(&s_level);
}

int log_level_parse(const char *text, log_level_t *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (text && strcmp(text, names[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    return SHOAL_EINVAL;
}

void log_write(log_level_t level, const char *fmt, ...)
{
    if ((int)level > atomic_load(&s_level))
        return;
    char line[2048];
    int64_t now_ms = clock_real_ms();
    time_t now_s = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&now_s, &tm);
    int head = snprintf(line, sizeof line,
                        "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s shoald: ", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                        (long)(now_ms % 1000), s_names[level]);
    if (head < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int body = vsnprintf(line + head, sizeof line - (size_t)head - 1, fmt, ap);
    va_end(ap);
    if (body < 0)
        return;
    size_t len = strlen(line);
    for (size_t i = (size_t)head; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = ' ';
    line[len++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void)ignored;
}

void node_thread_name(const char *name)
{
    (void)prctl(PR_SET_NAME, name, 0, 0, 0); /* a name is a convenience: never fails a thread */
}
