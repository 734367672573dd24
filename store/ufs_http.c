/*
 * ufs_http.c - the http:// and https:// connectors: any web server is a UFS. Stat from HEAD (or
 * a 1-byte ranged GET where HEAD is refused), reads as ranged GETs checked against the version
 * stat gave. HTTP has no listing, so list is refused.
 */
#include "ufs_conn.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct s_http {
    ufs_t *ufs; /* owner; borrowed for the state's life */
} s_http_t;

static void *s_http_init(ufs_t *ufs, const ufs_options_t *options)
{
    (void)options;
    s_http_t *state = calloc(1, sizeof *state);
    if (!state) {
        ufs_fail(SHOAL_ENOMEM, "http connector: out of memory");
        return NULL;
    }
    state->ufs = ufs;
    return state;
}

static void s_http_fini(void *state)
{
    free(state);
}

/* Whether `version` has the "<size>-<mtime>" shape this connector gives objects without an
 * ETag (digits, one dash, digits). Such a version is checked by size and mtime, not If-Match. */
static bool s_is_size_mtime(const char *version)
{
    const char *p = version;
    if (*p < '0' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p++ != '-' || *p < '0' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9')
        p++;
    return *p == '\0';
}

/* The version a response describes: its ETag, else "<size>-<mtime>" from `size` and its
 * Last-Modified. Fills out (UFS_VERSION_MAX) and *mtime. */
static void s_response_version(const ufs_http_response_t *response, uint64_t size, char *out,
                               int64_t *mtime)
{
    char value[UFS_VERSION_MAX];
    *mtime = 0;
    if (ufs_http_header(response, "Last-Modified", value, sizeof value)) {
        int64_t parsed = ufs_http_date(value);
        if (parsed > 0)
            *mtime = parsed;
    }
    if (ufs_http_header(response, "ETag", value, sizeof value) && value[0])
        ufs_etag_version(value, out, UFS_VERSION_MAX);
    else
        snprintf(out, UFS_VERSION_MAX, "%" PRIu64 "-%" PRId64, size, *mtime);
}

/* Stat by a 1-byte ranged GET, for servers that refuse HEAD: the size is the total of the
 * Content-Range; an empty object answers 416 with "bytes * /0". */
static int s_stat_by_get(s_http_t *state, const char *uri, ufs_stat_t *out)
{
    char byte;
    ufs_http_request_t request = {.method = "GET",
                                  .url = uri,
                                  .ranged = true,
                                  .range_length = 1,
                                  .buf = &byte,
                                  .buf_len = 1,
                                  .follow_redirects = true};
    ufs_http_response_t response;
    int rc = ufs_http_perform(state->ufs, &request, &response);
    if (rc == 0) {
        char what[UFS_URI_MAX + 16];
        snprintf(what, sizeof what, "GET %s", uri);
        if (response.status == 206 && response.range_total >= 0) {
            out->size = (uint64_t)response.range_total;
        } else if (response.status == 200 && response.body_len == 0) {
            out->size = 0; /* an empty object: the server ignored the Range */
        } else if (response.status == 416) {
            out->size = response.range_total > 0 ? (uint64_t)response.range_total : 0;
        } else if (response.status == 206) {
            rc = ufs_fail(SHOAL_EIO, "%s: 206 without the object's size", what);
        } else {
            rc = ufs_http_status_error(response.status, what);
            if (rc == 0)
                rc = ufs_fail(SHOAL_EIO, "%s: HTTP %ld", what, response.status);
        }
        if (rc == 0)
            s_response_version(&response, out->size, out->version, &out->mtime);
    }
    ufs_http_response_fini(&response);
    return rc;
}

/* HEAD first; 405, 403 and 501 (HEAD refused, or signed URLs valid for GET only) fall back to a
 * ranged GET, as does a 200 without Content-Length. */
static int s_http_stat(void *opaque, const char *uri, ufs_stat_t *out)
{
    s_http_t *state = opaque;
    ufs_http_request_t request = {.method = "HEAD", .url = uri, .follow_redirects = true};
    ufs_http_response_t response;
    int rc = ufs_http_perform(state->ufs, &request, &response);
    if (rc < 0) {
        ufs_http_response_fini(&response);
        return rc;
    }
    long status = response.status;
    if (status == 200 && response.content_length >= 0) {
        out->size = (uint64_t)response.content_length;
        s_response_version(&response, out->size, out->version, &out->mtime);
        ufs_http_response_fini(&response);
        return 0;
    }
    ufs_http_response_fini(&response);
    if (status == 200 || status == 405 || status == 403 || status == 501)
        return s_stat_by_get(state, uri, out);
    char what[UFS_URI_MAX + 16];
    snprintf(what, sizeof what, "HEAD %s", uri);
    rc = ufs_http_status_error(status, what);
    return rc < 0 ? rc : ufs_fail(SHOAL_EIO, "%s: HTTP %ld", what, status);
}

static int s_http_list(void *opaque, const char *uri, bool recursive, ufs_list_t *out)
{
    (void)opaque, (void)recursive, (void)out;
    return ufs_fail(SHOAL_ENOTSUP,
                    "list %s: plain HTTP has no listing; stat and read single URLs, or use a "
                    "store that lists (s3://, az://, hf://, file://)",
                    uri);
}

/* What a read's progress gate knows: the version asked for (NULL: any), and the one the first
 * gated reply named, which every later attempt's reply must name too. */
typedef struct s_pin {
    const char *want;             /* version asked for, or NULL */
    char learnt[UFS_VERSION_MAX]; /* version of the first reply gated; "" before */
    ufs_stat_t *early;            /* the read's stat_out: filled from the gated headers */
} s_pin_t;

/* The progress gate of a read (ufs_http_request_t.accept): the reply's version, as s_http_read
 * checks it after the transfer, must be pin->want (when asked) and the version an earlier
 * attempt's reply named (when one did), else SHOAL_ESTALE: the reported bytes are then all of
 * one version, the one the read reports. */
static int s_accept_version(void *arg, const ufs_http_response_t *response)
{
    s_pin_t *pin = arg;
    char seen[UFS_VERSION_MAX];
    int64_t mtime;
    uint64_t size = response->range_total >= 0 ? (uint64_t)response->range_total : 0;
    s_response_version(response, size, seen, &mtime);
    const char *expect = pin->want ? pin->want : pin->learnt[0] ? pin->learnt : NULL;
    if (expect && strcmp(seen, expect) != 0)
        return ufs_fail(SHOAL_ESTALE, "GET: the reply's version is %s, not %s", seen, expect);
    snprintf(pin->learnt, sizeof pin->learnt, "%s", seen);
    if (pin->early && response->range_total >= 0) { /* before the first progress report */
        pin->early->size = size;
        pin->early->mtime = mtime;
        snprintf(pin->early->version, sizeof pin->early->version, "%s", seen);
    }
    return 0;
}

/* Fills *out from a read's final reply (ufs_read_stat): the size the reply states, the version
 * and mtime as s_http_stat derives them. A reply that does not state the size, and a 416
 * without an ETag (its Last-Modified, if any, could not be told from a server's own clock),
 * cost one stat more. Returns 0 or an error of that stat. */
static int s_reply_stat(s_http_t *state, const char *uri, const ufs_http_response_t *response,
                        ufs_stat_t *out)
{
    char etag[UFS_VERSION_MAX];
    bool has_etag = ufs_http_header(response, "ETag", etag, sizeof etag) && etag[0];
    uint64_t size;
    if (ufs_http_reply_size(response, &size) && (response->status != 416 || has_etag)) {
        memset(out, 0, sizeof *out);
        out->size = size;
        s_response_version(response, size, out->version, &out->mtime);
        return 0;
    }
    memset(out, 0, sizeof *out);
    return s_http_stat(state, uri, out);
}

/* One ranged GET into buf. With a version: a strong ETag is sent as If-Match (the server then
 * answers 412 instead of new bytes), and whatever the server supports, the reply's own version
 * (ETag, or size and Last-Modified) must equal it, else SHOAL_ESTALE. Without one, the reply's
 * version is what the read reports. 416 (offset at or past the end) is a read of 0 bytes whose
 * size comes from "Content-Range: bytes * /SIZE"; its version from its ETag, else one stat.
 * With progress, the version check runs on the headers before the first byte is reported
 * (s_accept_version), also without a version: every attempt must name the first one's. */
static int64_t s_http_read(void *opaque, const char *uri, const char *version, uint64_t offset,
                           void *buf, size_t length, const ufs_progress_t *progress,
                           ufs_stat_t *stat_out)
{
    s_http_t *state = opaque;
    if (length == 0)
        return 0;
    struct curl_slist *headers = NULL;
    if (version && !s_is_size_mtime(version) && strncmp(version, "W/", 2) != 0) {
        char if_match[UFS_VERSION_MAX + 16];
        snprintf(if_match, sizeof if_match, "If-Match: \"%s\"", version);
        headers = curl_slist_append(NULL, if_match);
        if (!headers)
            return ufs_fail(SHOAL_ENOMEM, "read %s: out of memory", uri);
    }
    s_pin_t pin = {.want = version, .early = stat_out};
    ufs_http_request_t request = {.method = "GET",
                                  .url = uri,
                                  .headers = headers,
                                  .ranged = true,
                                  .range_offset = offset,
                                  .range_length = length,
                                  .buf = buf,
                                  .buf_len = length,
                                  .follow_redirects = true,
                                  .progress = progress,
                                  .accept = s_accept_version,
                                  .accept_arg = &pin};
    ufs_http_response_t response;
    int64_t result = ufs_http_perform(state->ufs, &request, &response);
    curl_slist_free_all(headers);
    if (result == 0) {
        char what[UFS_URI_MAX + 64];
        snprintf(what, sizeof what, "GET %s (bytes %" PRIu64 "+%zu)", uri, offset, length);
        if (response.status == 206 || response.status == 200 || response.status == 416) {
            /* 200 only with an empty body here: an empty object (ufs_http_perform) */
            result = response.status == 416 ? 0 : (int64_t)response.body_len;
            int rc = s_reply_stat(state, uri, &response, stat_out);
            if (rc < 0)
                result = rc;
            else if (version && strcmp(stat_out->version, version) != 0)
                result = ufs_fail(SHOAL_ESTALE, "%s: version is now %s, not %s", what,
                                  stat_out->version, version);
            else if (pin.learnt[0] && strcmp(stat_out->version, pin.learnt) != 0)
                result = ufs_fail(SHOAL_ESTALE, "%s: version changed from %s to %s during the read",
                                  what, pin.learnt, stat_out->version);
        } else {
            result = ufs_http_status_error(response.status, what);
            if (result == 0)
                result = ufs_fail(SHOAL_EIO, "%s: HTTP %ld", what, response.status);
        }
    }
    ufs_http_response_fini(&response);
    return result;
}

const ufs_connector_t ufs_http_connector = {
    .scheme = "http",
    .init = s_http_init,
    .fini = s_http_fini,
    .stat = s_http_stat,
    .list = s_http_list,
    .read = s_http_read,
};

const ufs_connector_t ufs_https_connector = {
    .scheme = "https",
    .init = s_http_init,
    .fini = s_http_fini,
    .stat = s_http_stat,
    .list = s_http_list,
    .read = s_http_read,
};
