/*
 * ufs_hf.c - the hf:// connector: files of Hugging Face Hub repositories (datasets, models,
 * spaces) through the Hub's resolve URLs, listings through its tree API (JSON, parsed with
 * jansson, paginated by Link headers). HF_ENDPOINT points it at a mirror or a test server.
 *
 *   hf://datasets/ORG/NAME[@REV]/PATH  -> {endpoint}/datasets/ORG/NAME/resolve/REV/PATH
 *   hf://spaces/ORG/NAME[@REV]/PATH    -> {endpoint}/spaces/ORG/NAME/resolve/REV/PATH
 *   hf://ORG/NAME[@REV]/PATH (a model) -> {endpoint}/ORG/NAME/resolve/REV/PATH
 *   list                               -> {endpoint}/api/{datasets|spaces|models}/ORG/NAME/
 *                                         tree/REV/PATH?recursive=true|false&expand=false
 */
#include "ufs_conn.h"
#include "coding.h"
#include "ufs_uri.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_HOPS  5           /* redirects followed by hand (renamed repos, LFS to the CDN) */
#define S_TREE_MAX  (64u << 20) /* largest tree API page accepted */
#define S_MAX_PAGES 100000      /* pages of one listing: a loop guard, not a real limit */

typedef struct s_hf {
    ufs_t *ufs;              /* owner; borrowed */
    char endpoint[1024];     /* HF_ENDPOINT or https://huggingface.co, no trailing slash */
    char origin[1024];       /* scheme://host[:port] of endpoint: credentials go only here */
    struct curl_slist *auth; /* "Authorization: Bearer $HF_TOKEN", or NULL; read-only */
} s_hf_t;

/* An hf:// uri taken apart. */
typedef struct s_hf_uri {
    const char *kind;       /* "datasets", "spaces" or "models" */
    char repo[512];         /* "ORG/NAME" */
    char revision[256];     /* decoded; "main" when not given */
    char path[UFS_URI_MAX]; /* inside the repo, no leading or trailing slash; may be "" */
    char base[UFS_URI_MAX]; /* the uri up to the path ("hf://datasets/o/n@rev"): for listings */
} s_hf_uri_t;

/* scheme://host[:port] of url into out ("" if url has no "://"). */
static void s_origin(const char *url, char *out, size_t out_len)
{
    const char *host = strstr(url, "://");
    if (!host) {
        out[0] = '\0';
        return;
    }
    const char *end = strchr(host + 3, '/');
    size_t len = end ? (size_t)(end - url) : strlen(url);
    snprintf(out, out_len, "%.*s", (int)len, url);
}

static void *s_hf_init(ufs_t *ufs, const ufs_options_t *options)
{
    (void)options;
    s_hf_t *state = calloc(1, sizeof *state);
    if (!state) {
        ufs_fail(SHOAL_ENOMEM, "hf connector: out of memory");
        return NULL;
    }
    state->ufs = ufs;
    const char *endpoint = getenv("HF_ENDPOINT");
    snprintf(state->endpoint, sizeof state->endpoint, "%s",
             endpoint && endpoint[0] ? endpoint : "https://huggingface.co");
    size_t len = strlen(state->endpoint);
    while (len > 0 && state->endpoint[len - 1] == '/')
        state->endpoint[--len] = '\0';
    s_origin(state->endpoint, state->origin, sizeof state->origin);
    const char *token = getenv("HF_TOKEN");
    if (!token || !token[0])
        token = getenv("HUGGING_FACE_HUB_TOKEN");
    if (token && token[0]) {
        char header[2048];
        snprintf(header, sizeof header, "Authorization: Bearer %s", token);
        state->auth = curl_slist_append(NULL, header);
        if (!state->auth) {
            free(state);
            ufs_fail(SHOAL_ENOMEM, "hf connector: out of memory");
            return NULL;
        }
    }
    return state;
}

static void s_hf_fini(void *opaque)
{
    s_hf_t *state = opaque;
    curl_slist_free_all(state->auth);
    free(state);
}

/* Splits an hf:// uri. ORG/NAME is required (legacy models without an org are not
 * addressable); "@REV" after NAME picks a branch, tag or commit ("refs%2Fpr%2F1" for
 * refs/pr/1). Returns 0 or SHOAL_EINVAL. */
static int s_parse(const char *uri, s_hf_uri_t *out)
{
    const char *p = uri + strlen("hf://");
    out->kind = "models";
    if (strncmp(p, "datasets/", 9) == 0) {
        out->kind = "datasets";
        p += 9;
    } else if (strncmp(p, "spaces/", 7) == 0) {
        out->kind = "spaces";
        p += 7;
    } else if (strncmp(p, "models/", 7) == 0) {
        p += 7;
    }
    const char *org_end = strchr(p, '/');
    if (!org_end || org_end == p)
        return ufs_fail(SHOAL_EINVAL, "%s: expected hf://[datasets/|spaces/]ORG/NAME/PATH", uri);
    const char *name = org_end + 1;
    size_t name_len = strcspn(name, "/@");
    if (name_len == 0)
        return ufs_fail(SHOAL_EINVAL, "%s: no repository name", uri);
    const char *after = name + name_len;
    snprintf(out->revision, sizeof out->revision, "main");
    if (*after == '@') {
        size_t rev_len = strcspn(after + 1, "/");
        if (pct_decode(after + 1, rev_len, out->revision, sizeof out->revision) < 0 ||
            out->revision[0] == '\0')
            return ufs_fail(SHOAL_EINVAL, "%s: bad revision", uri);
        after += 1 + rev_len;
    }
    int n = snprintf(out->repo, sizeof out->repo, "%.*s", (int)(name + name_len - p), p);
    if (n < 0 || (size_t)n >= sizeof out->repo)
        return ufs_fail(SHOAL_EINVAL, "%s: repository name too long", uri);
    snprintf(out->base, sizeof out->base, "%.*s", (int)(after - uri), uri);
    while (*after == '/')
        after++;
    snprintf(out->path, sizeof out->path, "%s", after);
    size_t len = strlen(out->path);
    while (len > 0 && out->path[len - 1] == '/')
        out->path[--len] = '\0';
    if (strstr(out->path, "//") || strcmp(out->path, "..") == 0 ||
        strncmp(out->path, "../", 3) == 0 || strstr(out->path, "/../") ||
        (len >= 3 && strcmp(out->path + len - 3, "/..") == 0))
        return ufs_fail(SHOAL_EINVAL, "%s: path has empty or '..' segments", uri);
    return 0;
}

/* {endpoint}/[datasets/|spaces/]ORG/NAME/resolve/REV/PATH */
static int s_resolve_url(const s_hf_t *state, const s_hf_uri_t *u, char *out, size_t out_len)
{
    int n = snprintf(out, out_len, "%s/%s%s%s/resolve/", state->endpoint,
                     strcmp(u->kind, "models") == 0 ? "" : u->kind,
                     strcmp(u->kind, "models") == 0 ? "" : "/", u->repo);
    if (n < 0 || (size_t)n >= out_len)
        return ufs_fail(SHOAL_EINVAL, "hf url too long");
    int rc = pct_encode_append(out, out_len, u->revision, false) < 0
                 ? ufs_fail(SHOAL_EINVAL, "url too long")
                 : 0;
    if (rc == 0 && strlen(out) + 1 < out_len)
        strcat(out, "/");
    if (rc == 0)
        rc = pct_encode_append(out, out_len, u->path, true) < 0
                 ? ufs_fail(SHOAL_EINVAL, "url too long")
                 : 0;
    return rc;
}

/* The credentials for `url`: only for the endpoint's own origin, never for a CDN. */
static const struct curl_slist *s_auth_for(const s_hf_t *state, const char *url)
{
    char origin[1024];
    s_origin(url, origin, sizeof origin);
    return strcasecmp(origin, state->origin) == 0 ? state->auth : NULL;
}

/* Maps a failed Hub reply, adding what HF means by 401 (missing, private or gated repo). */
static int s_status_error(long status, const char *what)
{
    int rc = ufs_http_status_error(status, what);
    if (status == 401)
        ufs_fail(rc,
                 "%s: HTTP 401 (bad or missing HF_TOKEN, or a private, gated or missing "
                 "repository)",
                 what);
    return rc == 0 ? ufs_fail(SHOAL_EIO, "%s: HTTP %ld", what, status) : rc;
}

/* ---- listing ----------------------------------------------------------------------------- */

/* Finds the rel="next" target of a Link header ("<url>; rel=\"next\", <url>; rel=\"last\""),
 * made absolute against the endpoint when relative. Returns true with out filled. */
static bool s_link_next(const s_hf_t *state, const char *link, char *out, size_t out_len)
{
    const char *p = link;
    while ((p = strchr(p, '<'))) {
        const char *end = strchr(p, '>');
        if (!end)
            return false;
        const char *params = end + 1;
        const char *params_end = strchr(params, '<');
        size_t params_len = params_end ? (size_t)(params_end - params) : strlen(params);
        char param_text[256];
        snprintf(param_text, sizeof param_text, "%.*s", (int)params_len, params);
        if (strstr(param_text, "rel=\"next\"") || strstr(param_text, "rel=next")) {
            int len = (int)(end - p - 1);
            if (p[1] == '/')
                snprintf(out, out_len, "%s%.*s", state->origin, len, p + 1);
            else
                snprintf(out, out_len, "%.*s", len, p + 1);
            return true;
        }
        p = end + 1;
    }
    return false;
}

/* Whether a tree entry's path is one this connector can address: non-empty, relative, no
 * empty or ".." segments (s_parse refuses those), no control characters. */
static bool s_tree_path_ok(const char *path)
{
    if (!path[0] || path[0] == '/' || strstr(path, "//"))
        return false;
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    for (const char *segment = path; segment;) {
        const char *slash = strchr(segment, '/');
        size_t len = slash ? (size_t)(slash - segment) : strlen(segment);
        if (len == 0 || (len == 2 && segment[0] == '.' && segment[1] == '.'))
            return false;
        segment = slash ? slash + 1 : NULL;
    }
    return true;
}

int ufs_hf_parse_tree(const char *base, const char *url, const char *body, size_t len,
                      bool recursive, ufs_list_t *out)
{
    json_error_t error;
    json_t *root = json_loadb(body ? body : "", body ? len : 0, 0, &error);
    if (!root || !json_is_array(root)) {
        json_decref(root);
        return ufs_fail(SHOAL_EPROTO, "GET %s: tree reply is not a JSON array (%s, line %d)", url,
                        root ? "other JSON" : error.text, error.line);
    }
    int rc = 0;
    size_t index;
    json_t *item;
    char *uri = malloc(UFS_URI_MAX + 1);
    if (!uri) {
        json_decref(root);
        return ufs_fail(SHOAL_ENOMEM, "hf list: out of memory");
    }
    json_array_foreach(root, index, item)
    {
        const char *type = json_string_value(json_object_get(item, "type"));
        const char *path = json_string_value(json_object_get(item, "path"));
        if (!type || !path) {
            rc = ufs_fail(SHOAL_EPROTO, "GET %s: entry %zu without type or path", url, index);
            break;
        }
        if (!s_tree_path_ok(path))
            continue; /* no call could use it */
        bool is_dir = strcmp(type, "directory") == 0;
        if (is_dir && recursive)
            continue;
        ufs_stat_t info = {.is_dir = is_dir};
        if (!is_dir) {
            json_t *lfs = json_object_get(item, "lfs");
            json_t *size = json_object_get(lfs ? lfs : item, "size");
            const char *oid = json_string_value(json_object_get(lfs ? lfs : item, "oid"));
            if (!json_is_integer(size) || json_integer_value(size) < 0) {
                rc = ufs_fail(SHOAL_EPROTO, "GET %s: %.200s has no size", url, path);
                break;
            }
            info.size = (uint64_t)json_integer_value(size);
            snprintf(info.version, sizeof info.version, "%s", oid ? oid : "");
        }
        int n = snprintf(uri, UFS_URI_MAX + 1, "%s/%s", base, path);
        if (n < 0 || n > UFS_URI_MAX)
            continue;
        rc = ufs_list_push(out, uri, &info);
        if (rc < 0)
            break;
    }
    free(uri);
    json_decref(root);
    return rc;
}

static int s_hf_list(void *opaque, const char *uri, bool recursive, ufs_list_t *out)
{
    s_hf_t *state = opaque;
    s_hf_uri_t *u = malloc(sizeof *u);
    char *url = malloc(2 * UFS_URI_MAX);
    if (!u || !url) {
        free(u);
        free(url);
        return ufs_fail(SHOAL_ENOMEM, "hf list: out of memory");
    }
    int rc = s_parse(uri, u);
    if (rc == 0) {
        snprintf(url, 2 * UFS_URI_MAX, "%s/api/%s/%s/tree/", state->endpoint, u->kind, u->repo);
        rc = pct_encode_append(url, 2 * UFS_URI_MAX, u->revision, false) < 0
                 ? ufs_fail(SHOAL_EINVAL, "url too long")
                 : 0;
    }
    if (rc == 0 && u->path[0]) {
        strcat(url, "/");
        rc = pct_encode_append(url, 2 * UFS_URI_MAX, u->path, true) < 0
                 ? ufs_fail(SHOAL_EINVAL, "url too long")
                 : 0;
    }
    if (rc == 0 && strlen(url) + 40 < 2 * UFS_URI_MAX)
        strcat(url, recursive ? "?recursive=true&expand=false" : "?recursive=false&expand=false");
    for (int page = 0; rc == 0 && page < S_MAX_PAGES; page++) {
        ufs_http_request_t request = {.method = "GET",
                                      .url = url,
                                      .headers = s_auth_for(state, url),
                                      .collect_body = true,
                                      .body_max = S_TREE_MAX,
                                      .follow_redirects = true};
        ufs_http_response_t response;
        rc = ufs_http_perform(state->ufs, &request, &response);
        if (rc == 0 && response.status != 200) {
            char what[UFS_URI_MAX + 16];
            snprintf(what, sizeof what, "GET %s", url);
            rc = s_status_error(response.status, what);
        }
        if (rc == 0)
            rc = ufs_hf_parse_tree(u->base, url, response.body, response.body_len, recursive, out);
        char link[UFS_URI_MAX];
        bool more = rc == 0 && ufs_http_header(&response, "Link", link, sizeof link) &&
                    s_link_next(state, link, url, 2 * UFS_URI_MAX);
        ufs_http_response_fini(&response);
        if (!more)
            break;
    }
    free(u);
    free(url);
    return rc;
}

/* ---- stat and read ----------------------------------------------------------------------- */

/* The version a resolve reply names: X-Linked-Etag (LFS sha256) first, then ETag. */
static bool s_reply_version(const ufs_http_response_t *response, char *out)
{
    char value[UFS_VERSION_MAX];
    if (!ufs_http_header(response, "X-Linked-Etag", value, sizeof value) &&
        !ufs_http_header(response, "ETag", value, sizeof value))
        return false;
    ufs_etag_version(value, out, UFS_VERSION_MAX);
    return out[0] != '\0';
}

/* Stat of a path that resolve does not know: a directory if the tree API lists it. */
static int s_stat_dir(s_hf_t *state, const char *uri, ufs_stat_t *out)
{
    ufs_list_t list;
    ufs_list_init(&list);
    int rc = s_hf_list(state, uri, false, &list);
    ufs_list_fini(&list);
    if (rc == 0) {
        memset(out, 0, sizeof *out);
        out->is_dir = true;
    }
    return rc;
}

/* HEAD on the resolve URL without following redirects: an LFS file answers 302 to its CDN
 * with X-Linked-Size and X-Linked-Etag, which are what we want (the CDN's own ETag is not the
 * file's version). A redirect without them (a renamed repo) is followed by hand, with
 * credentials only to the endpoint's origin. 404 may be a directory: the tree API decides. */
static int s_hf_stat(void *opaque, const char *uri, ufs_stat_t *out)
{
    s_hf_t *state = opaque;
    s_hf_uri_t *u = malloc(sizeof *u);
    char *url = malloc(2 * UFS_URI_MAX);
    int rc = (!u || !url) ? ufs_fail(SHOAL_ENOMEM, "hf stat: out of memory") : s_parse(uri, u);
    if (rc == 0 && u->path[0] == '\0') {
        rc = s_stat_dir(state, uri, out); /* the repository itself */
        goto done;
    }
    if (rc == 0)
        rc = s_resolve_url(state, u, url, 2 * UFS_URI_MAX);
    for (int hop = 0; rc == 0; hop++) {
        ufs_http_request_t request = {
            .method = "HEAD", .url = url, .headers = s_auth_for(state, url)};
        ufs_http_response_t response;
        rc = ufs_http_perform(state->ufs, &request, &response);
        if (rc < 0) {
            ufs_http_response_fini(&response);
            break;
        }
        char value[64], what[UFS_URI_MAX + 16];
        uint64_t size = 0;
        bool have_size = false;
        if (ufs_http_header(&response, "X-Linked-Size", value, sizeof value)) {
            char *end;
            size = strtoull(value, &end, 10);
            have_size = end != value && *end == '\0';
        } else if (response.status == 200 && response.content_length >= 0) {
            size = (uint64_t)response.content_length;
            have_size = true;
        }
        long status = response.status;
        if (have_size && (status == 200 || (status >= 300 && status < 400))) {
            out->size = size;
            out->is_dir = false;
            if (!s_reply_version(&response, out->version))
                snprintf(out->version, sizeof out->version, "%" PRIu64 "-0", size);
            if (ufs_http_header(&response, "Last-Modified", value, sizeof value)) {
                time_t mtime = curl_getdate(value, NULL);
                out->mtime = mtime > 0 ? (int64_t)mtime : 0;
            }
        } else if (status >= 300 && status < 400 && response.redirect_url && hop < S_MAX_HOPS) {
            snprintf(url, 2 * UFS_URI_MAX, "%s", response.redirect_url);
            ufs_http_response_fini(&response);
            continue;
        } else if (status == 404) {
            rc = s_stat_dir(state, uri, out);
            if (rc == SHOAL_ENOENT)
                rc = ufs_fail(SHOAL_ENOENT, "HEAD %s: HTTP 404 (not found)", url);
        } else {
            snprintf(what, sizeof what, "HEAD %s", url);
            rc = s_status_error(status, what);
        }
        ufs_http_response_fini(&response);
        break;
    }
done:
    free(u);
    free(url);
    return rc;
}

/* A ranged GET on the resolve URL, redirects followed by hand (credentials only to the
 * endpoint's origin). With a version, the first reply that names one (X-Linked-Etag on an LFS
 * redirect, else the ETag of a direct reply) must match it, else SHOAL_ESTALE before any byte
 * is fetched from a CDN. Progress is reported by a reply after that check (a CDN's after an LFS
 * redirect, or any reply when no version is asked for); a direct reply reports nothing. */
static int64_t s_hf_read(void *opaque, const char *uri, const char *version, uint64_t offset,
                         void *buf, size_t length, const ufs_progress_t *progress)
{
    s_hf_t *state = opaque;
    if (length == 0)
        return 0;
    s_hf_uri_t *u = malloc(sizeof *u);
    char *url = malloc(2 * UFS_URI_MAX);
    int64_t rc = (!u || !url) ? ufs_fail(SHOAL_ENOMEM, "hf read: out of memory") : s_parse(uri, u);
    if (rc == 0)
        rc = s_resolve_url(state, u, url, 2 * UFS_URI_MAX);
    bool checked = version == NULL;
    for (int hop = 0; rc == 0; hop++) {
        ufs_http_request_t request = {.method = "GET",
                                      .url = url,
                                      .headers = s_auth_for(state, url),
                                      .ranged = true,
                                      .range_offset = offset,
                                      .range_length = length,
                                      .buf = buf,
                                      .buf_len = length,
                                      /* progress only once the version is known to match */
                                      .progress = checked ? progress : NULL};
        ufs_http_response_t response;
        rc = ufs_http_perform(state->ufs, &request, &response);
        if (rc < 0) {
            ufs_http_response_fini(&response);
            break;
        }
        long status = response.status;
        char seen[UFS_VERSION_MAX], what[UFS_URI_MAX + 64];
        snprintf(what, sizeof what, "GET %s (bytes %" PRIu64 "+%zu)", url, offset, length);
        bool names_version =
            (status >= 300 && status < 400)
                ? ufs_http_header(&response, "X-Linked-Etag", seen, sizeof seen) != NULL
                : (status == 200 || status == 206);
        if (!checked && names_version) {
            if (s_reply_version(&response, seen)) {
                if (strcmp(seen, version) != 0) {
                    rc = ufs_fail(SHOAL_ESTALE, "%s: version is now %s, not %s", what, seen,
                                  version);
                    ufs_http_response_fini(&response);
                    break;
                }
            }
            checked = true;
        }
        if (status == 206 || status == 200) {
            rc = (int64_t)response.body_len; /* 200 only for an empty object (see ufs_conn.h) */
        } else if (status >= 300 && status < 400 && response.redirect_url && hop < S_MAX_HOPS) {
            snprintf(url, 2 * UFS_URI_MAX, "%s", response.redirect_url);
            ufs_http_response_fini(&response);
            continue;
        } else if (status != 416) {
            rc = s_status_error(status, what);
        }
        ufs_http_response_fini(&response);
        break;
    }
    free(u);
    free(url);
    return rc;
}

const ufs_connector_t ufs_hf_connector = {
    .scheme = "hf",
    .init = s_hf_init,
    .fini = s_hf_fini,
    .stat = s_hf_stat,
    .list = s_hf_list,
    .read = s_hf_read,
};
