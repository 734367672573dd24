/*
 * ufs.h - the under file system (UFS): one interface over the remote stores that hold the truth
 * (s3://, az://, hf://, http(s)://, file://). Used by the node for misses and by libshoal for
 * its last-resort fallback. Configuration (credentials, endpoints) comes from the environment,
 * as each connector's section in store/README.md lists.
 */
#ifndef SHOAL_UFS_H
#define SHOAL_UFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal_err.h"

#define UFS_URI_MAX     4096 /* longest URI accepted anywhere */
#define UFS_VERSION_MAX 256  /* longest version string (ETag, or "size-mtime") incl. NUL */

/* What stat learns about one object or directory. */
typedef struct ufs_stat {
    uint64_t size;                 /* bytes; 0 for directories */
    int64_t mtime;                 /* seconds since the epoch; 0 when unknown */
    bool is_dir;                   /* a directory or a common prefix */
    char version[UFS_VERSION_MAX]; /* ETag (quotes stripped) or "<size>-<mtime>"; "" for dirs */
} ufs_stat_t;

/* One entry of a listing. */
typedef struct ufs_entry {
    char *uri;       /* full URI with scheme; directories end without a trailing slash */
    ufs_stat_t stat; /* as stat would return it */
} ufs_entry_t;

/* A listing. Set up with ufs_list_init; owns its entries; freed with ufs_list_fini. */
typedef struct ufs_list {
    ufs_entry_t *entries; /* sorted by uri */
    size_t count;         /* entries in use */
    size_t capacity;      /* entries allocated */
} ufs_list_t;

/* Tunables; zero fields take the defaults in brackets. */
typedef struct ufs_options {
    long connect_timeout_ms; /* [5000] TCP+TLS connect timeout per attempt */
    long timeout_ms;         /* [60000] whole-request timeout per attempt */
    long low_speed_ms;       /* [10000] abort an attempt that moves < 1 byte/s this long */
    int max_retries;         /* [4] retries after the first attempt on 5xx, 429, reset, timeout;
                                negative for none */
    int retry_base_ms;       /* [100] first backoff; doubles per retry, with full jitter */
} ufs_options_t;

typedef struct ufs ufs_t;

/* Creates a UFS handle with all connectors, configured from `options` (NULL for defaults) and
 * the environment. Returns NULL on allocation failure. Caller owns the result. Thread safe:
 * one handle serves many threads; a child after fork() may keep using it (connections are
 * re-made in the child). */
ufs_t *ufs_new(const ufs_options_t *options);

/* Frees *self_p and sets it to NULL; safe on NULL. */
void ufs_destroy(ufs_t **self_p);

/* Fills *out for `uri`. Returns 0, SHOAL_ENOENT, SHOAL_EACCES (refused credentials),
 * SHOAL_EIO (detail with the HTTP status in shoal_last_error()), SHOAL_ETIMEDOUT,
 * SHOAL_ENOTSUP (unknown scheme) or SHOAL_EINVAL (malformed uri). */
int ufs_stat(ufs_t *ufs, const char *uri, ufs_stat_t *out);

/* Lists `uri` as a directory/prefix: one level (directories appear as entries with is_dir),
 * or every object below it when `recursive` (no directory entries then). Appends to *out,
 * which the caller set up with ufs_list_init. Errors as ufs_stat; an empty or missing prefix
 * is SHOAL_ENOENT only where the store can tell (file://), else an empty listing. */
int ufs_list(ufs_t *ufs, const char *uri, bool recursive, ufs_list_t *out);

/* Reads up to `length` bytes at `offset` of `uri` into `buf` (ufs_read_stat without the
 * stat). When `version` is not NULL or "", the object must still have that version, else
 * SHOAL_ESTALE (never a mix of old and new bytes). Returns the number of bytes read (less than
 * `length` only at the end of the object, 0 at or past it) or a negative error as ufs_stat. A
 * transfer cut short is an error, never short data. */
int64_t ufs_read(ufs_t *ufs, const char *uri, const char *version, uint64_t offset, void *buf,
                 size_t length);

/*
 * Progress of a read, for a caller that wants to use bytes while the rest are still arriving
 * (the node streams a cold range to its client). `fn(arg, filled)` is called on the reading
 * thread, from inside the read, zero or more times with strictly increasing `filled`: the first
 * `filled` bytes of the buffer are final. They are bytes of the object at the version asked for
 * (checked before the first report: a status, Content-Range and version gate on the reply's
 * headers) and are never written again by this read: if an attempt is cut short and retried,
 * the retry compares the bytes it gets below `filled` with those in the buffer instead of
 * writing them, and a difference fails the read with SHOAL_ESTALE. If the read fails after
 * reports, the reported bytes stay right; only the rest is missing. `fn` must not call back
 * into the UFS. Which reads report (others report nothing and just return at the end):
 * s3, az, http(s), and hf once its version check is done (replies after an LFS redirect, or
 * reads without a version); file:// reports nothing.
 */
typedef struct ufs_progress {
    void (*fn)(void *arg, size_t filled); /* called with the bytes of buf that are final */
    void *arg;                            /* passed to fn */
} ufs_progress_t;

/* ufs_read with progress reports (see ufs_progress_t); `progress` may be NULL. */
int64_t ufs_read_progress(ufs_t *ufs, const char *uri, const char *version, uint64_t offset,
                          void *buf, size_t length, const ufs_progress_t *progress);

/*
 * The GET is the stat: ufs_read_progress that also reports what the read's own reply said
 * about the object, so a caller needs no ufs_stat (no HEAD) before or after a read.
 *
 * On success (a return >= 0) *stat_out holds the object as ufs_stat would give it: size (from
 * the reply's Content-Range "bytes a-b/SIZE", or the Content-Length of a 200), version (the
 * ETag, quotes stripped, "W/" kept; or "<size>-<mtime>" where the store sends no ETag: the same
 * string ufs_stat gives for that object, so versions from a stat and from a read compare equal
 * with strcmp), mtime (Last-Modified; 0 where the store does not say) and is_dir false. Where
 * the reply does not carry them (a 416 past the end without an ETag, a 206 whose total is "*")
 * the connector makes one stat request more; see store/README.md "The GET is the stat".
 * `stat_out` may be NULL (then this is ufs_read_progress); on an error it is zeroed.
 *
 * `version` NULL or "": no precondition is sent; the read takes whatever version the object has
 * and reports it, and every byte of buf is of that one version (a retried attempt that meets
 * another version fails with SHOAL_ESTALE rather than mixing). With a version: the object must
 * still have it (If-Match on s3, az, http(s) with a strong ETag; the reply's version compared
 * everywhere; size and mtime for file://), else SHOAL_ESTALE, never a mix of old and new bytes;
 * stat_out->version is then `version`.
 *
 * `progress` (may be NULL) as ufs_read_progress: with or without a version, the first report
 * comes only after the reply's headers named the version that *stat_out will carry. http(s)
 * also fills *stat_out's size, version and mtime from those headers before the first report
 * (when the reply states the size), so a caller can describe the bytes while they arrive;
 * elsewhere *stat_out is set when the read returns.
 *
 * Costs, in origin requests (ufs_requests counts them): 1 for a read of any range, also a cold
 * one without a version; 1 for a missing object (SHOAL_ENOENT, no retry, no HEAD); at or past
 * the end (offset >= size, including offset 0 of an empty object) 1 where the 416 carries an
 * ETag and a size (tests/support/origin.py, nginx) or the store answers an empty object with
 * a 200 (nginx), else 2 (the 416, then one stat: S3, Azure). A `length` of 0 is one stat
 * (ufs_stat). hf: a read whose resolve URL redirects to a CDN (LFS files) costs the redirect
 * and the CDN's reply; the CDN URL is remembered per (uri, version), so a later read with that
 * version goes straight to the CDN (one request). file:// makes no request: fstat on the opened
 * file gives size, mtime and "<size>-<mtime ns>".
 *
 * Returns the bytes read (fewer than `length` only at the object's end, 0 at or past it) or a
 * negative error as ufs_read: SHOAL_ENOENT, SHOAL_ESTALE, SHOAL_EACCES, SHOAL_EISDIR, SHOAL_EIO,
 * SHOAL_ETIMEDOUT, SHOAL_ENOTSUP, SHOAL_EINVAL. Thread safe as every call here.
 */
int64_t ufs_read_stat(ufs_t *ufs, const char *uri, const char *version, uint64_t offset, void *buf,
                      size_t length, const ufs_progress_t *progress, ufs_stat_t *stat_out);

/* How many requests this handle has made to the stores since ufs_new: every HTTP request sent
 * (each retry and each redirect hop counts), and one per file:// stat, read or listing. Only
 * grows; read it before and after a call to learn that call's cost (other threads' calls count
 * too). For tests and the node's counters. */
uint64_t ufs_requests(const ufs_t *ufs);

void ufs_list_init(ufs_list_t *list);
/* Frees every entry and the array; leaves an empty list. */
void ufs_list_fini(ufs_list_t *list);

#endif
