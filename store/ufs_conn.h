/*
 * ufs_conn.h - inside the UFS: the connector table each scheme fills in, and the shared HTTP
 * layer (libcurl handle reuse, retries with backoff and jitter, ranged reads into a caller
 * buffer) that the s3, az, hf and http connectors all use. Not for use outside store/.
 */
#ifndef SHOAL_UFS_CONN_H
#define SHOAL_UFS_CONN_H

#include <curl/curl.h>

#include "ufs.h"

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
    int64_t (*read)(void *state, const char *uri, const char *version, uint64_t offset,
                    void *buf, size_t length);
} ufs_connector_t;

extern const ufs_connector_t ufs_file_connector;
extern const ufs_connector_t ufs_http_connector;  /* http:// */
extern const ufs_connector_t ufs_https_connector; /* https:// */
extern const ufs_connector_t ufs_s3_connector;
extern const ufs_connector_t ufs_az_connector;
extern const ufs_connector_t ufs_hf_connector;

/* Appends an entry (copies uri). Returns 0 or SHOAL_ENOMEM. */
int ufs_list_push(ufs_list_t *list, const char *uri, const ufs_stat_t *stat);

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
} ufs_http_request_t;

/* What came back. Set up by ufs_http_perform; freed with ufs_http_response_fini. */
typedef struct ufs_http_response {
    long status;            /* final HTTP status */
    char *body;             /* collected body, NUL-terminated, or NULL */
    size_t body_len;        /* bytes in body, or bytes written into request.buf */
    char *header_block;     /* all response headers of the final attempt, raw */
    int64_t content_length; /* Content-Length, -1 if absent */
    int64_t range_total;    /* total from Content-Range "bytes a-b/total", -1 if absent */
} ufs_http_response_t;

/* Performs `request` on a reused libcurl handle, retrying 5xx, 429, connection resets and
 * timeouts with exponential backoff and full jitter, up to options.max_retries. A 200 to a
 * ranged request is refused (SHOAL_ENOTSUP: the server ignores Range). A body longer than the
 * buffer or a transfer cut short is SHOAL_EIO. Returns 0 once any HTTP response arrived (the
 * caller maps response.status) or a negative error with a last error naming the URL. */
int ufs_http_perform(ufs_t *ufs, const ufs_http_request_t *request,
                     ufs_http_response_t *response);

/* Returns the value of response header `name` (case-insensitive) copied into out (trimmed,
 * NUL-terminated), or NULL when absent. */
const char *ufs_http_header(const ufs_http_response_t *response, const char *name, char *out,
                            size_t out_len);

/* Maps an HTTP status to a shoal error for `what` (method and URL), recording the detail:
 * 404 -> ENOENT, 401/403 -> EACCES, 412 -> ESTALE, 416 -> 0 (empty read), else EIO. */
int ufs_http_status_error(long status, const char *what);

void ufs_http_response_fini(ufs_http_response_t *response);

/* The options in effect (defaults filled in). Borrowed for the handle's life. */
const ufs_options_t *ufs_options(const ufs_t *ufs);

#endif
