/*
 * ufs_cloud.c - stat, list and read for the s3:// and az:// connectors: the same requests and the
 * same loops over either service, the differences (URLs, signing, error codes) coming from the
 * connector's ufs_cloud_ops_t. See ufs_cloud.h for the contracts.
 */
#include "ufs_cloud.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ufs_time.h"
#include "ufs_uri.h"

int ufs_cloud_begin(const char *config_error, const char *scheme, const char *uri, char *container,
                    const char **key)
{
    if (config_error[0])
        return shoal_fail(SHOAL_EACCES, "%s (for %.200s)", config_error, uri);
    return ufs_cloud_uri_split(uri, scheme, container, 64, key);
}

/* Fetches one listing page of `prefix` (one level with delimiter '/', or everything below it
 * when recursive) into *page, from `marker` (NULL first). */
static int s_list_page(const ufs_cloud_ops_t *ops, const void *state, const char *uri,
                       const char *container, const char *prefix, bool recursive, int max_results,
                       const char *marker, ufs_xml_listing_t *page)
{
    char query[UFS_CLOUD_URL_MAX];
    int rc = ops->list_query(query, sizeof query, prefix, recursive, max_results, marker);
    char url[UFS_CLOUD_URL_MAX];
    if (rc == 0)
        rc = ops->url(state, container, "", query, url, sizeof url);
    if (rc < 0)
        return rc;
    ufs_http_request_t request = {
        .method = "GET", .url = url, .collect_body = true, .body_max = UFS_XML_BODY_MAX};
    ufs_http_response_t response;
    rc = ops->perform(state, &request, NULL, &response);
    if (rc == 0 && response.status != 200)
        rc = ops->fail(state, "LIST", uri, &response);
    else if (rc == 0)
        rc = ufs_xml_parse_listing(response.body, response.body_len, ops->dialect, page);
    ufs_http_response_fini(&response);
    return rc;
}

/* A directory is a prefix with at least one key below it: one listing page of one key tells.
 * `dir_prefix` is "" (the container) or ends with '/'. ENOENT when nothing is below; the
 * container itself is one when it exists (a missing one fails the listing). */
static int s_stat_dir(const ufs_cloud_ops_t *ops, const void *state, const char *uri,
                      const char *container, const char *dir_prefix, ufs_stat_t *out)
{
    ufs_xml_listing_t page;
    int rc = s_list_page(ops, state, uri, container, dir_prefix, false, 1, NULL, &page);
    if (rc < 0)
        return rc;
    bool found = page.objects.len + page.prefixes.len > 0 || !dir_prefix[0];
    ufs_xml_listing_fini(&page);
    if (!found)
        return shoal_fail(SHOAL_ENOENT, "STAT %s: no such %s or prefix", uri, ops->entry_name);
    memset(out, 0, sizeof *out);
    out->is_dir = true;
    return 0;
}

int ufs_cloud_stat(const ufs_cloud_ops_t *ops, const void *state, const char *config_error,
                   const char *uri, ufs_stat_t *out)
{
    char container[64];
    const char *key;
    int rc = ufs_cloud_begin(config_error, ops->scheme, uri, container, &key);
    if (rc < 0)
        return rc;
    size_t key_len = strlen(key);
    if (key_len == 0 || key[key_len - 1] == '/')
        return s_stat_dir(ops, state, uri, container, key, out);

    char url[UFS_CLOUD_URL_MAX];
    rc = ops->url(state, container, key, NULL, url, sizeof url);
    if (rc < 0)
        return rc;
    ufs_http_request_t request = {.method = "HEAD", .url = url};
    ufs_http_response_t response;
    rc = ops->perform(state, &request, NULL, &response);
    if (rc == 0 && response.status == 200) {
        char value[UFS_VERSION_MAX];
        memset(out, 0, sizeof *out);
        out->size = response.content_length >= 0 ? (uint64_t)response.content_length : 0;
        if (ufs_http_header(&response, "Last-Modified", value, sizeof value))
            out->mtime = ufs_cloud_parse_time(value);
        if (ufs_http_header(&response, "ETag", value, sizeof value) && value[0])
            ufs_etag_version(value, out->version, sizeof out->version);
        else
            snprintf(out->version, sizeof out->version, "%" PRIu64 "-%" PRId64, out->size,
                     out->mtime);
        if (response.content_length < 0)
            rc = shoal_fail(SHOAL_EIO, "HEAD %s: no Content-Length", uri);
    } else if (rc == 0 && response.status == 404) {
        char *dir_prefix = malloc(key_len + 2);
        if (!dir_prefix) {
            rc = shoal_fail(SHOAL_ENOMEM, "%s: out of memory", ops->scheme);
        } else {
            snprintf(dir_prefix, key_len + 2, "%s/", key);
            rc = s_stat_dir(ops, state, uri, container, dir_prefix, out);
            free(dir_prefix);
        }
    } else if (rc == 0) {
        rc = ops->head_fail ? ops->head_fail(state, uri, url, &response)
                            : ops->fail(state, "HEAD", uri, &response);
    }
    ufs_http_response_fini(&response);
    return rc;
}

int ufs_cloud_list(const ufs_cloud_ops_t *ops, const void *state, const char *config_error,
                   const char *uri, bool recursive, int max_results, ufs_list_t *out)
{
    char container[64];
    const char *key;
    int rc = ufs_cloud_begin(config_error, ops->scheme, uri, container, &key);
    if (rc < 0)
        return rc;
    size_t key_len = strlen(key);
    char *prefix = malloc(key_len + 2);
    if (!prefix)
        return shoal_fail(SHOAL_ENOMEM, "%s: out of memory", ops->scheme);
    snprintf(prefix, key_len + 2, "%s%s", key, key_len && key[key_len - 1] != '/' ? "/" : "");
    char *marker = NULL;
    do {
        ufs_xml_listing_t page;
        rc = s_list_page(ops, state, uri, container, prefix, recursive, max_results, marker, &page);
        if (rc < 0)
            break;
        rc = ufs_cloud_push_listing(out, ops->scheme, container, prefix, &page);
        if (rc == 0 && page.next_token && marker && strcmp(page.next_token, marker) == 0)
            rc = shoal_fail(SHOAL_EPROTO, "LIST %s: the server repeated a %s", uri,
                            ops->marker_name);
        free(marker);
        marker = page.next_token; /* taken from the page */
        page.next_token = NULL;
        ufs_xml_listing_fini(&page);
    } while (rc == 0 && marker);
    free(marker);
    free(prefix);
    return rc;
}

/* The object's stat as a GET or HEAD reply of `size` bytes in all describes it: what
 * ufs_cloud_stat gives (ETag, else "<size>-<mtime>"; mtime from Last-Modified). */
static void s_reply_stat(const ufs_http_response_t *response, uint64_t size, ufs_stat_t *out)
{
    char value[UFS_VERSION_MAX];
    memset(out, 0, sizeof *out);
    out->size = size;
    if (ufs_http_header(response, "Last-Modified", value, sizeof value))
        out->mtime = ufs_cloud_parse_time(value);
    if (ufs_http_header(response, "ETag", value, sizeof value) && value[0])
        ufs_etag_version(value, out->version, sizeof out->version);
    else
        snprintf(out->version, sizeof out->version, "%" PRIu64 "-%" PRId64, size, out->mtime);
}

/* The progress gate of a read without a version: the first gated reply's version is pinned in
 * `arg` (UFS_VERSION_MAX bytes, "" before); a retried attempt whose reply names another fails
 * with SHOAL_ESTALE before it writes a byte. */
static int s_accept_pin(void *arg, const ufs_http_response_t *response)
{
    char *pinned = arg;
    ufs_stat_t seen;
    s_reply_stat(response, response->range_total >= 0 ? (uint64_t)response->range_total : 0, &seen);
    if (pinned[0] && strcmp(seen.version, pinned) != 0)
        return shoal_fail(SHOAL_ESTALE, "GET: the reply's version is %s, not %s", seen.version,
                          pinned);
    snprintf(pinned, UFS_VERSION_MAX, "%s", seen.version);
    return 0;
}

/* A read at or past the end: the stat from the 416 itself when it names both the size and an
 * ETag, else from one stat request; then the version asked for must still be the object's. */
static int s_past_end_stat(const ufs_cloud_ops_t *ops, const void *state, const char *config_error,
                           const char *uri, const char *version,
                           const ufs_http_response_t *response, ufs_stat_t *stat_out)
{
    char etag[UFS_VERSION_MAX];
    uint64_t size;
    int rc = 0;
    if (response && response->status == 416 && ufs_http_reply_size(response, &size) &&
        ufs_http_header(response, "ETag", etag, sizeof etag) && etag[0])
        s_reply_stat(response, size, stat_out);
    else
        rc = ufs_cloud_stat(ops, state, config_error, uri, stat_out);
    if (rc == 0 && stat_out->is_dir)
        rc = shoal_fail(SHOAL_ENOENT, "GET %s: no such %s", uri, ops->entry_name);
    return rc == 0 ? ufs_cloud_past_end(uri, version, stat_out) : rc;
}

int64_t ufs_cloud_read(const ufs_cloud_ops_t *ops, const void *state, const char *config_error,
                       const char *uri, const char *version, uint64_t offset, void *buf,
                       size_t length, const ufs_progress_t *progress, ufs_stat_t *stat_out)
{
    char container[64];
    const char *key;
    int rc = ufs_cloud_begin(config_error, ops->scheme, uri, container, &key);
    if (rc < 0)
        return rc;
    if (!key[0] || key[strlen(key) - 1] == '/')
        return shoal_fail(SHOAL_EISDIR, "read of %s: a directory", uri);
    if (length == 0)
        return 0;
    char url[UFS_CLOUD_URL_MAX];
    rc = ops->url(state, container, key, NULL, url, sizeof url);
    if (rc < 0)
        return rc;
    char pinned[UFS_VERSION_MAX] = "";
    ufs_http_request_t request = {.method = "GET",
                                  .url = url,
                                  .ranged = true,
                                  .range_offset = offset,
                                  .range_length = length,
                                  .buf = buf,
                                  .buf_len = length,
                                  .progress = progress,
                                  .accept = version ? NULL : s_accept_pin,
                                  .accept_arg = pinned};
    ufs_http_response_t response;
    rc = ops->perform(state, &request, version, &response);
    int64_t result = rc;
    if (rc == SHOAL_EIO && response.status == 206 && ops->bad_range_past_end) {
        /* Azurite answers a range that starts at or past the end with a 206 whose
         * Content-Range ends before it starts ("bytes 5-4/5", "bytes 0--1/0"), which the HTTP
         * layer rightly refuses. Where stat shows the offset is at or past the end, that was
         * an empty read; anything else stays the error it was. */
        char saved[512];
        snprintf(saved, sizeof saved, "%s", shoal_last_error());
        if (ufs_cloud_stat(ops, state, config_error, uri, stat_out) == 0 && !stat_out->is_dir &&
            offset >= stat_out->size)
            result = ufs_cloud_past_end(uri, version, stat_out);
        else
            result = shoal_fail(SHOAL_EIO, "%s", saved);
    } else if (rc == 0) {
        uint64_t size;
        if ((response.status == 206 || response.status == 200) &&
            ufs_http_reply_size(&response, &size)) {
            result = (int64_t)response.body_len; /* 200: only an empty body gets here */
            s_reply_stat(&response, size, stat_out);
            if (version && strcmp(stat_out->version, version) != 0)
                result = shoal_fail(SHOAL_ESTALE, "GET %s: version is now %s, not %s", uri,
                                    stat_out->version, version);
            else if (pinned[0] && strcmp(stat_out->version, pinned) != 0)
                result = shoal_fail(SHOAL_ESTALE, "GET %s: version changed from %s to %s", uri,
                                    pinned, stat_out->version);
        } else if (response.status == 206 || response.status == 200) {
            /* a total of "*": the size costs a stat, which must agree on the version */
            result = ufs_cloud_stat(ops, state, config_error, uri, stat_out);
            char etag[UFS_VERSION_MAX], seen[UFS_VERSION_MAX] = "";
            if (ufs_http_header(&response, "ETag", etag, sizeof etag))
                ufs_etag_version(etag, seen, sizeof seen);
            if (result == 0 && ((seen[0] && strcmp(seen, stat_out->version) != 0) ||
                                (version && strcmp(version, stat_out->version) != 0)))
                result = shoal_fail(SHOAL_ESTALE, "GET %s: version changed to %s", uri,
                                    stat_out->version);
            else if (result == 0)
                result = (int64_t)response.body_len;
        } else if (response.status == 416) {
            result = s_past_end_stat(ops, state, config_error, uri, version, &response, stat_out);
        } else {
            result = ops->fail(state, "GET", uri, &response);
        }
    }
    ufs_http_response_fini(&response);
    return result;
}

/* ---------------------------------------------------------------------------------------- */
/* Listing entries and errors                                                                */
/* ---------------------------------------------------------------------------------------- */

int ufs_cloud_push_listing(ufs_list_t *out, const char *scheme, const char *container,
                           const char *prefix, const ufs_xml_listing_t *page)
{
    char uri[UFS_URI_MAX + 1];
    for (size_t i = 0; i < page->objects.len; i++) {
        const ufs_xml_object_t *object = &page->objects.items[i];
        size_t len = strlen(object->name);
        if (strcmp(object->name, prefix) == 0 || object->name[len - 1] == '/')
            continue;
        int n = snprintf(uri, sizeof uri, "%s://%s/%s", scheme, container, object->name);
        if (n < 0 || n > UFS_URI_MAX)
            continue;
        ufs_stat_t stat = {.size = object->size, .mtime = object->mtime, .is_dir = false};
        if (object->etag[0])
            memcpy(stat.version, object->etag, sizeof stat.version);
        else
            snprintf(stat.version, sizeof stat.version, "%" PRIu64 "-%" PRId64, object->size,
                     object->mtime);
        int rc = ufs_list_push(out, uri, &stat);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < page->prefixes.len; i++) {
        const char *name = page->prefixes.items[i];
        int len = (int)strlen(name);
        if (len > 1 && name[len - 1] == '/')
            len--;
        int n = snprintf(uri, sizeof uri, "%s://%s/%.*s", scheme, container, len, name);
        if (n < 0 || n > UFS_URI_MAX)
            continue;
        ufs_stat_t stat = {.is_dir = true};
        int rc = ufs_list_push(out, uri, &stat);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int ufs_cloud_past_end(const char *uri, const char *version, const ufs_stat_t *now)
{
    if (version && strcmp(now->version, version) != 0)
        return shoal_fail(SHOAL_ESTALE, "GET %s: version %s is gone (now %s)", uri, version,
                          now->version);
    return 0;
}

int ufs_cloud_status_fail(long status, const char *method, const char *uri, const char *code,
                          const char *auth_hint)
{
    char what[32];
    snprintf(what, sizeof what, "%s", method);
    int rc = ufs_http_status_error(status, what);
    if (rc == 0)
        rc = SHOAL_EIO; /* 416 where no empty read was expected */
    bool refused = status == 401 || status == 403;
    return shoal_fail(rc, "%s %.300s: HTTP %ld%s%s (%s)%s%s", method, uri, status,
                      code && code[0] ? " " : "", code ? code : "", shoal_strerror(rc),
                      refused && auth_hint ? "; credentials: " : "",
                      refused && auth_hint ? auth_hint : "");
}
