/*
 * testproc.h - test support shared by every suite: free loopback ports, temp dirs, spawning and
 * stopping server processes (each in its own process group, killed if the test dies), waiting
 * for readiness by polling with a deadline, and starters for nginx, for badhttp.py (a tiny
 * HTTP server that misbehaves on request: 503s, ignored Range, dying mid-transfer) and for
 * origin.py (an object-store-like server that counts requests by kind).
 */
#ifndef SHOAL_TESTPROC_H
#define SHOAL_TESTPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TP_PATH_MAX 4096

/* Milliseconds of CLOCK_MONOTONIC: proto's clock_mono_ms, kept under this name for the tests
 * that already call it (new code calls clock_mono_ms). */
int64_t tp_now_ms(void);

/* Returns a TCP port free on 127.0.0.1 right now (bound to port 0, read back, closed), or -1.
 * Another process may take it before the caller binds it: callers start servers promptly. */
int tp_free_port(void);

/* Makes a new directory $TMPDIR/shoal-TAG-XXXXXX. Returns its path (caller frees) or NULL. */
char *tp_tempdir(const char *tag);

/* Removes `path` and everything below it (no symlink is followed). 0 or -1. */
int tp_rmtree(const char *path);

/* mkdir -p. 0 or -1. */
int tp_mkdirs(const char *path, mode_t mode);

/* Writes `len` bytes to `path`, making parent directories; replaces the file atomically (write
 * to a temp name, rename) so a server never sees it half written. 0 or -1. */
int tp_write_file(const char *path, const void *data, size_t len);

/* Reads a whole file. Returns a malloc'd buffer (caller frees; NUL-terminated beyond *len) or
 * NULL. */
char *tp_read_file(const char *path, size_t *len);

/* Fills buf with bytes that depend on (seed, position) so that misplaced ranges show. */
void tp_fill_pattern(void *buf, size_t len, uint64_t seed);

/* A spawned process. */
typedef struct tp_proc {
    pid_t pid;                  /* 0 when not running; also its process group id */
    char log_path[TP_PATH_MAX]; /* its stdout and stderr */
} tp_proc_t;

/* Starts argv[0] (PATH searched) with argv, in its own process group, stdin from /dev/null,
 * stdout and stderr appended to log_path, and PR_SET_PDEATHSIG SIGKILL so it dies with the
 * test. 0 or -1. */
int tp_spawn(tp_proc_t *proc, const char *const argv[], const char *log_path);

/* Whether the process is still running (reaps it if it exited). */
bool tp_alive(tp_proc_t *proc);

/* SIGTERM to the group, waits up to timeout_ms, then SIGKILL to the group. Safe when not
 * running. Returns the wait status, or -1 if there was nothing to stop. */
int tp_stop(tp_proc_t *proc, int timeout_ms);

/* Polls until 127.0.0.1:port accepts a TCP connection. 0, or -1 at the deadline. */
int tp_wait_port(int port, int timeout_ms);

/* Polls until GET `path` on 127.0.0.1:port gets any HTTP reply. 0, or -1 at the deadline. */
int tp_wait_http(int port, const char *path, int timeout_ms);

/* Counts lines of `path` that contain `needle` (all lines for NULL); 0 for a missing file. */
long tp_count_lines(const char *path, const char *needle);

/* Polls until tp_count_lines(path, needle) >= at_least or the deadline; returns the last
 * count (servers may write their log just after the reply went out). */
long tp_wait_lines(const char *path, const char *needle, long at_least, int timeout_ms);

/* A server started for a test. */
typedef struct tp_server {
    tp_proc_t proc;               /* the server process */
    int port;                     /* its loopback port */
    char *dir;                    /* its temp dir (config, logs, pid); removed by stop */
    char access_log[TP_PATH_MAX]; /* one line per request: "METHOD URI STATUS range=..." */
    char base_url[64];            /* "http://127.0.0.1:PORT" */
} tp_server_t;

/* Log barrier for a server with one access log written in request order (nginx with one
 * worker writes each line after its reply; badhttp.py before it): makes a request for a unique
 * sentinel path and polls until its line is in the log. Every request that completed before
 * the call is logged once this returns 0 (-1 at the deadline). This is how a test proves that
 * a line did NOT appear ("not retried", "no third request"): waiting for an absence is
 * impossible, waiting for a later presence is not. The sentinel lines contain
 * "/tp-log-sync/", so count with a needle. */
int tp_log_sync(const tp_server_t *server, int timeout_ms);

/* tp_log_sync, then tp_count_lines(server->access_log, needle): the exact count of lines of
 * the requests done so far. -1 (and a line on stderr) if the barrier failed. */
long tp_count_synced(const tp_server_t *server, const char *needle);

/* Starts nginx (/usr/sbin/nginx, or $SHOAL_NGINX) serving `root` on a free loopback port, and
 * waits until it answers. `server_extra` is pasted into the server block (locations, auth
 * checks) and may be NULL. 0 or -1 (with the error log copied to stderr). */
int tp_nginx_start(tp_server_t *server, const char *root, const char *server_extra);

/* Starts tests/support/badhttp.py (python3) serving `root`; see that file for its URL
 * prefixes (/flaky/N/, /busy/N/, /stall/, /norange/, /die/, /long/, /noetag/, /nohead/). 0 or -1.
 */
int tp_badhttp_start(tp_server_t *server, const char *root);

/* Starts tests/support/origin.py (python3) serving `root` with `delay_ms` before each answer
 * (0: none), on a free loopback port, and waits until it answers. It counts the requests it
 * answers by kind (tp_origin_counts); it writes no access log. 0 or -1. */
int tp_origin_start(tp_server_t *server, const char *root, int delay_ms);

/* The top-level counts of origin.py's GET /_counts (see origin.py): requests answered by kind,
 * control requests excluded. A 416 counts as GET, a 404 as GET_404 / HEAD_404, a 412 as
 * GET_412 / HEAD_412. */
typedef struct tp_origin_counts {
    long head;     /* HEAD answered with the object's headers */
    long get;      /* GET answered 200, 206 or 416 */
    long head_404; /* HEAD of a missing file */
    long get_404;  /* GET of a missing file */
    long head_412; /* HEAD refused by If-Match */
    long get_412;  /* GET refused by If-Match */
    long get_304;  /* GET answered 304 by If-None-Match */
    long bytes;    /* body bytes of GETs */
} tp_origin_counts_t;

/* Reads origin.py's counts over one HTTP/1.0 request on a fresh connection. Counts are
 * updated before a reply's first byte leaves, so after a client call returned they include its
 * requests. 0 or -1. */
int tp_origin_counts(const tp_server_t *server, tp_origin_counts_t *out);

/* POST /_reset: zeroes origin.py's counts. 0 or -1. */
int tp_origin_reset(const tp_server_t *server);

/* Stops the server and removes its temp dir. Safe on a server never started. */
void tp_server_stop(tp_server_t *server);

#endif
