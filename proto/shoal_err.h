/*
 * shoal_err.h - error codes shared by every module, and the per-thread last error.
 *
 * Functions across shoal return 0 (or a count) on success and one of these negative codes on
 * failure. shoal_strerror() names a code; shoal_last_error() holds the detail (which URL, which
 * HTTP status) of the most recent failure on the calling thread. This header has no
 * dependencies so that store/ can use the codes without depending on the codec.
 */
#ifndef SHOAL_ERR_H
#define SHOAL_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

/* The codes are part of the wire protocol (ERROR replies carry them) and of the Python
 * mapping in client/python/shoalfs: never renumber one, only add new ones at the end. */
#define SHOAL_OK        0
#define SHOAL_ENOENT    (-1)  /* not found at the under storage or in the cache */
#define SHOAL_EACCES    (-2)  /* access denied: outside every mount, or refused credentials */
#define SHOAL_EIO       (-3)  /* I/O error at the under storage (status in the last error) */
#define SHOAL_ETIMEDOUT (-4)  /* a request timed out */
#define SHOAL_EBUSY     (-5)  /* the node is overloaded or shutting down; try another */
#define SHOAL_EINVAL    (-6)  /* bad request or bad argument */
#define SHOAL_EPROTO    (-7)  /* malformed message or protocol version mismatch */
#define SHOAL_ESTALE    (-8)  /* the file changed: its version differs from the one asked for */
#define SHOAL_ENOMEM    (-9)  /* out of memory */
#define SHOAL_ENOSPC    (-10) /* no space left in the cache (quota or disk) */
#define SHOAL_EISDIR    (-11) /* a directory where a file was expected */
#define SHOAL_EROFS     (-12) /* shoal is a read cache: writes are refused */
#define SHOAL_ECORRUPT  (-13) /* stored bytes failed their checksum */
#define SHOAL_EMSGSIZE  (-14) /* a frame or field exceeds its maximum size */
#define SHOAL_ENOTSUP   (-15) /* operation or scheme not supported */
#define SHOAL_EUNAVAIL  (-16) /* no node could be reached */
#define SHOAL_ECONFIG   (-17) /* cluster settings disagree (page size, range size, key) */
#define SHOAL_ECANCELED (-18) /* the operation was cancelled (shutdown) */
#define SHOAL_EINTERNAL (-19) /* a bug: an invariant did not hold */
#define SHOAL_ERR_MIN   (-19) /* lowest code in use; keep in step with the list above */

/* Returns a static, human-readable name for `code` (never NULL; unknown codes get a generic
 * text). Caller does not own the result. */
const char *shoal_strerror(int code);

/* Returns the detail message of the last failure on this thread, or "" if none. Borrowed until
 * the next shoal call on this thread. */
const char *shoal_last_error(void);

/* Records a printf-style detail message for this thread and returns `code`, so a failure site
 * can write `return shoal_fail(SHOAL_EIO, "GET %s: HTTP %ld", url, status);`. */
int shoal_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears this thread's last error. */
void shoal_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
