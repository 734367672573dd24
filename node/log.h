/*
 * log.h - the node's log: one line per event on stderr, "2024-05-01T12:00:00.123Z WARN  text",
 * filtered by a process-wide level (--log-level). Thread safe; each line is written with one
 * write so lines of different threads never interleave. Also names threads, the other half of
 * telling what a node's threads do (`top -H`, perf).
 */
#ifndef SHOAL_NODE_LOG_H
#define SHOAL_NODE_LOG_H

typedef enum log_level {
    LOG_ERROR = 0, /* the node cannot do what it was asked (start failed, store broken) */
    LOG_WARN = 1,  /* something is wrong but the node carries on (UFS errors, full disk) */
    LOG_INFO = 2,  /* start, stop, configuration */
    LOG_DEBUG = 3, /* one line per request */
} log_level_t;

/* Sets the level; lines above it are not written. The default is LOG_INFO. */
void log_set_level(log_level_t level);

/* The current level. */
log_level_t log_get_level(void);

/* Parses "error", "warn", "info", "debug". Returns 0 and sets *out, or SHOAL_EINVAL. */
int log_level_parse(const char *text, log_level_t *out);

/* Writes one line at `level` (printf-style; a trailing newline is added, newlines and control
 * characters in the text are replaced with spaces, so a hostile URI cannot forge log lines). */
void log_write(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Names the calling thread (at most 15 bytes show), so `top -H`, `perf report --sort pid` and
 * /proc/PID/task/TID/comm tell the router, hit workers, fetch threads and store thread apart. */
void node_thread_name(const char *name);

#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)

#endif
