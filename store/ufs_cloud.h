/*
 * ufs_cloud.h - the request logic the s3:// and az:// connectors share: stat (HEAD, else a
 * one-key listing for directories) and listing (following continuation tokens or markers to
 * the end) and ranged reads, the conversion of a listing page to entries, and the mapping of
 * a failed reply to an error. Each connector describes its URLs, signing and error mapping in a
 * ufs_cloud_ops_t. Not for use outside store/.
 */
#ifndef SHOAL_UFS_CLOUD_H
#define SHOAL_UFS_CLOUD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ufs_conn.h"
#include "ufs_xml.h"

#define UFS_CLOUD_URL_MAX 16384 /* longest URL we build (a 4 KiB key encodes to 12 KiB) */

/* What a connector tells the shared code. `state` below is the connector's own handle,
 * borrowed for the call. The table is static and constant. */
typedef struct ufs_cloud_ops {
    const char *scheme;        /* "s3" or "az": URIs, listing entries and messages */
    const char *entry_name;    /* "object" or "blob": STAT's ENOENT message */
    const char *marker_name;   /* "continuation token" or "marker": LIST's EPROTO message */
    ufs_xml_dialect_t dialect; /* which listing XML the service answers */
    bool bad_range_past_end;   /* a read past the end may get a 206 with a reversed range */
    /* Writes the query string of one listing page of `prefix` (delimiter '/' unless
     * recursive, at most max_results entries, from `marker`, NULL first) into query.
     * Returns 0 or a negative error with a last error. */
    int (*list_query)(char *query, size_t query_len, const char *prefix, bool recursive,
                      int max_results, const char *marker);
    /* Builds the URL of `key` ("" for the container) in `container`, with `query` (may be
     * NULL) into url. Returns 0 or a negative error with a last error. */
    int (*url)(const void *state, const char *container, const char *key, const char *query,
               char *url, size_t url_len);
    /* Signs and performs request (If-Match `version` unless NULL), as ufs_http_perform. */
    int (*perform)(const void *state, ufs_http_request_t *request, const char *version,
                   ufs_http_response_t *response);
    /* Maps an unexpected reply to an error naming `method` and `uri`. Returns the error. */
    int (*fail)(const void *state, const char *method, const char *uri,
                const ufs_http_response_t *response);
    /* As fail for a failed HEAD of `url`, whose reply has no body; NULL: fail with "HEAD". */
    int (*head_fail)(const void *state, const char *uri, const char *url,
                     const ufs_http_response_t *head);
} ufs_cloud_ops_t;

/* Refuses calls with `config_error` ("" when the configuration is fine) as EACCES, else splits
 * uri as ufs_cloud_uri_split with `scheme` (container holds 64 bytes, *key is borrowed from
 * uri). Returns 0 or a negative error with a last error. */
int ufs_cloud_begin(const char *config_error, const char *scheme, const char *uri, char *container,
                    const char **key);

/* Stats uri: a HEAD of the key; on 404 (and for the container and keys ending in '/') a
 * directory when one listing page of one entry below "key/" is not empty. Fails as begin,
 * ENOENT when there is nothing, else as ops->fail / ops->head_fail. */
int ufs_cloud_stat(const ufs_cloud_ops_t *ops, const void *state, const char *config_error,
                   const char *uri, ufs_stat_t *out);

/* Lists uri one level down (sub-prefixes become directory entries) or everything below when
 * recursive, in pages of max_results, following the service's continuation token or marker to
 * the end; appends to *out. EPROTO when the server repeats a token (it would never end). */
int ufs_cloud_list(const ufs_cloud_ops_t *ops, const void *state, const char *config_error,
                   const char *uri, bool recursive, int max_results, ufs_list_t *out);

/* A ranged GET of uri straight into buf, pinned to `version` (NULL: any) with If-Match (412 ->
 * ESTALE). Returns the bytes read or a negative error; EISDIR for the container and keys ending
 * in '/'. *stat_out gets the object as ufs_cloud_stat would give it, from the GET's own reply
 * (size from Content-Range, version from ETag, else "<size>-<mtime>", mtime from
 * Last-Modified). Past the end the server answers 416 (or, with ops->bad_range_past_end, a 206
 * the HTTP layer refuses): that is a read of 0 bytes, its stat from the 416 when it carries an
 * ETag and a size, else from one stat request (which also confirms the version, and for the 206
 * that the offset is at or past the end). Reports progress (NULL for none): If-Match makes
 * every 2xx byte one of `version`; without a version the first gated reply's ETag is pinned and
 * a retry that meets another is SHOAL_ESTALE. */
int64_t ufs_cloud_read(const ufs_cloud_ops_t *ops, const void *state, const char *config_error,
                       const char *uri, const char *version, uint64_t offset, void *buf,
                       size_t length, const ufs_progress_t *progress, ufs_stat_t *stat_out);

/* Appends the entries of one listing page to *out as "SCHEME://CONTAINER/NAME". Objects named
 * exactly `prefix` or ending in '/' (the empty "directory marker" objects that consoles create)
 * are skipped, as are names whose URI would exceed UFS_URI_MAX (no other call could use them).
 * Prefixes become directory entries without their trailing '/'. An object without an ETag gets
 * the version "<size>-<mtime>". Returns 0 or SHOAL_ENOMEM. */
int ufs_cloud_push_listing(ufs_list_t *out, const char *scheme, const char *container,
                           const char *prefix, const ufs_xml_listing_t *page);

/* A read at or past the end is empty if the object still has `version` (NULL: any version).
 * The server's 416 carries no ETag, so the caller stat'ed the object into `now`. Returns 0 or
 * SHOAL_ESTALE naming both versions. */
int ufs_cloud_past_end(const char *uri, const char *version, const ufs_stat_t *now);

/* Maps a failed reply's HTTP status to a shoal error (ufs_http_status_error: 404 ENOENT,
 * 401/403 EACCES, 412 ESTALE, else EIO) and records "METHOD URI: HTTP STATUS CODE" as the last
 * error, CODE being the service's error code when known, and for 401/403 `auth_hint` (which
 * credentials were used; may be NULL). Returns the error. */
int ufs_cloud_status_fail(long status, const char *method, const char *uri, const char *code,
                          const char *auth_hint);

#endif
