/*
 * ufs_conn.h - inside the UFS: the connector table each scheme fills in, and the shared HTTP
 * layer (libcurl handle reuse, retries with backoff and jitter, ranged reads into a caller
 * buffer) that the s3, az, hf and http connectors all use. Not for use outside store/.
 */
#ifndef SHOAL_UFS_CONN_H
#define SHOAL_UFS_CONN_H

#include <curl/curl.h>

#include "ufs.h"
#include "ufs_redact.h" /* every connector reports through ufs_fail */

/* One scheme's implementation. `state` is what init returned; ops are called from many
 * threads at once and must be thread safe. */
typedef struct ufs_connector {
    const char *scheme; /* "s3", "az", "hf", "http", "https", "file" */
    /* Reads configuration (environment, options). Returns state or NULL with a last error;
     * a connector that cannot be configured (say, no credentials) still returns state and
     * fails its calls with a clear message instead. */
    void *(*init)(ufs_t *ufs, const ufs_options_t *options);
    void (*fini)(void *state);
    int (*stat)(void *state, const char *uri, ufs_stat_t *out);
    int (*list)(void *state, const char *uri, bool recursive, ufs_list_t *out);
    /* `progress` (NULL for none): see ufs_progress_t; a connector may ignore it. `stat_out`
     * (never NULL, zeroed by the caller) gets what the read's own reply said about the object,
     * as ufs_read_stat documents (a 0-byte read that wants it is a stat instead, in ufs.c);
     * `version` is NULL or non-empty. */
    int64_t (*read)(void *state, const char *uri, const char *version, uint64_t offset, void *buf,
                    size_t length, const ufs_progress_t *progress, ufs_stat_t *stat_out);
} ufs_connector_t;

extern const ufs_connector_t ufs_file_connector;
extern const ufs_connector_t ufs_http_connector;  /* http:// */
extern const ufs_connector_t ufs_https_connector; /* https:// */
extern const ufs_connector_t ufs_s3_connector;
extern const ufs_connector_t ufs_az_connector;
extern const ufs_connector_t ufs_hf_connector;

/* Appends an entry (copies uri). Returns 0 or SHOAL_ENOMEM. */
int ufs_list_push(ufs_list_t *list, const char *uri, const ufs_stat_t *stat);

struct ufs_http_response;

/* One HTTP request for the shared layer. */
typedef struct ufs_http_request {
    const char *method;               /* "GET", "HEAD" */
    const char *url;                  /* full URL, already percent-encoded */
    const struct curl_slist *headers; /* extra request headers; borrowed */
    const char *aws_sigv4;            /* CURLOPT_AWS_SIGV4 value ("aws:amz:REGION:s3") or NULL */
    const char *userpwd;              /* "KEY:SECRET" for SigV4, or NULL */
    bool ranged;                      /* send Range: bytes=offset-(offset+length-1) */
    uint64_t range_offset;            /* with ranged */
    uint64_t range_length;            /* with ranged; > 0 */
    void *buf;                        /* body goes here (ranged reads), at most buf_len bytes */
    size_t buf_len;                   /* capacity of buf */
    bool collect_body;                /* else collect the body into response.body (malloc) */
    size_t body_max;                  /* with collect_body: refuse bodies over this (0 = 64 MiB) */
    bool follow_redirects;            /* follow 3xx (at most 8 hops); else a 3xx is the reply */
    /* Ranged reads into buf only: report final bytes (ufs_progress_t; NULL for none). Before
     * the first report of an attempt the layer checks the final reply's headers: a 206 whose
     * Content-Range starts at range_offset and ends inside the range (or at the object's end),
     * a Content-Length that agrees, then `accept` when set (say, the reply's version); a
     * failed check ends the read with that check's error, not retried. */
    const ufs_progress_t *progress;
    /* Called with the final reply's headers parsed (status, content_length, range_total,
     * header_block); returns 0 to accept the bytes, or a negative code with a last error. */
    int (*accept)(void *arg, const struct ufs_http_response *response);
    void *accept_arg; /* passed to accept */
} ufs_http_request_t;

/* What came back. Set up by ufs_http_perform; freed with ufs_http_response_fini. */
typedef struct ufs_http_response {
    long status;            /* final HTTP status */
    char *body;             /* collected body, NUL-terminated, or NULL */
    size_t body_len;        /* bytes in body, or bytes written into request.buf */
    char *header_block;     /* all response headers of the final attempt, raw */
    int64_t content_length; /* Content-Length, -1 if absent */
    int64_t range_total;    /* total from Content-Range "bytes a-b/total", -1 if absent */
    char *redirect_url;     /* absolute Location of a 3xx reply not followed, or NULL */
    int attempts;           /* attempts made (1 + retries) */
} ufs_http_response_t;

/* Performs `request` on a reused libcurl handle, retrying 5xx, 429, connection resets and
 * timeouts with exponential backoff and full jitter, up to options.max_retries. A 200 to a
 * ranged request is refused (SHOAL_ENOTSUP: the server ignores Range) unless it has no body at
 * all (an empty object: nginx answers so on 0-byte files). A body longer than the buffer or a
 * transfer cut short is SHOAL_EIO; a 206 must carry a Content-Range starting at range_offset
 * and covering every byte asked for (fewer only at the object's end). Returns 0 once any HTTP
 * response arrived (the caller maps response.status; after retries that may be a 5xx) or a
 * negative error with a last error naming the URL. For a non-2xx reply, response.body holds
 * the first 64 KiB of the error document (S3/Azure error XML), whatever collect_body says.
 * The response is always safe to pass to ufs_http_response_fini. */
int ufs_http_perform(ufs_t *ufs, const ufs_http_request_t *request, ufs_http_response_t *response);

/* Returns the value of response header `name` (case-insensitive) copied into out (trimmed,
 * NUL-terminated), or NULL when absent. */
const char *ufs_http_header(const ufs_http_response_t *response, const char *name, char *out,
                            size_t out_len);

/* Maps an HTTP status to a shoal error for `what` (method and URL), recording the detail:
 * 404 -> ENOENT, 401/403 -> EACCES, 412 -> ESTALE, 416 -> 0 (empty read), else EIO. */
int ufs_http_status_error(long status, const char *what);

void ufs_http_response_fini(ufs_http_response_t *response);

/* Adds n to the handle's request counter (ufs_requests). Thread safe (one atomic add). */
void ufs_requests_add(ufs_t *ufs, uint64_t n);

/* The object's size as a ranged GET's reply states it: the total of "Content-Range: bytes
 * a-b/SIZE" of a 206 or "bytes * /SIZE" of a 416, the Content-Length of a 200. Returns true
 * with *size, false when the reply does not say (a total of "*", a 416 without Content-Range). */
bool ufs_http_reply_size(const ufs_http_response_t *response, uint64_t *size);

/* The options in effect (defaults filled in). Borrowed for the handle's life. */
const ufs_options_t *ufs_options(const ufs_t *ufs);

/* ---- helpers shared by the connectors (added by the ufs-core branch) ---------------------- */

/* Checks `uri`: not NULL, 1..UFS_URI_MAX bytes, no control characters. 0 or SHOAL_EINVAL. */
int ufs_uri_check(const char *uri);

/* Copies the lower-cased scheme of `uri` ("s3" of "s3://b/k") into out. 0 or SHOAL_EINVAL
 * (no "scheme://" prefix, or a scheme longer than out_len - 1). */
int ufs_uri_scheme(const char *uri, char *out, size_t out_len);

/* Sorts the entries by uri (strcmp order). ufs_list calls it after every connector. */
void ufs_list_sort(ufs_list_t *list);

/* Normalises an ETag header value into a version: strips the quotes, keeps a "W/" prefix of a
 * weak tag ("W/\"x\"" -> "W/x"). Returns out, "" for NULL or empty input. */
char *ufs_etag_version(const char *etag, char *out, size_t out_len);

/* Parses an HTTP date (Last-Modified, Date) as seconds since the epoch, or -1 when it is none.
 * The IMF-fixdate every current server sends ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110
 * 5.6.7) is parsed here directly; the obsolete forms (RFC 850, asctime) go to curl_getdate,
 * which costs ~20k instructions a call (sscanf), a tenth of a cold GET's user time. */
int64_t ufs_http_date(const char *text);

/* The pool of reusable libcurl easy handles behind ufs_http_perform. One per ufs_t. Fork aware:
 * after fork() the child abandons the parent's handles (never cleans them up: that could talk
 * on the parent's TLS connections) and makes its own. */
typedef struct ufs_http_pool ufs_http_pool_t;

/* Returns a new pool or NULL (out of memory). Caller owns the result. */
ufs_http_pool_t *ufs_http_pool_new(void);

/* Frees *pool_p and its idle handles, sets it to NULL; safe on NULL. */
void ufs_http_pool_destroy(ufs_http_pool_t **pool_p);

/* The pool of `ufs`. Borrowed for the handle's life. */
ufs_http_pool_t *ufs_http_pool_of(ufs_t *ufs);

/* Parses one page of the Hub's tree API (`len` bytes of `body`: a JSON array of {type, path,
 * size, oid, lfs: {oid, size}}) and appends its entries to *out as "BASE/PATH" (`base` is the
 * uri up to the repository path, "hf://datasets/ORG/NAME[@REV]"). Versions are lfs.oid for
 * LFS files and oid otherwise, sizes lfs.size or size. Directories are skipped when
 * `recursive`; entries whose path is absolute, has empty or ".." segments or control
 * characters, or whose uri would exceed UFS_URI_MAX are skipped (no call could use them).
 * `url` only names the page in messages. Returns 0, SHOAL_EPROTO (not a JSON array, an entry
 * without type or path, a file without a size; entries before it stay in *out), SHOAL_ENOMEM.
 * I/O free: fuzzed by tests/fuzz/fuzz_ufs_json.c. */
int ufs_hf_parse_tree(const char *base, const char *url, const char *body, size_t len,
                      bool recursive, ufs_list_t *out);

/* How the calling thread's last file:// read went: "io_uring", "pread", or "" before any.
 * For tests and diagnostics. Static string. */
const char *ufs_file_last_read_path(void);

#endif
