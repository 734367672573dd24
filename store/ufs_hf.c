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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_HOPS  5           /* redirects followed by hand (renamed repos, LFS to the CDN) */
#define S_TREE_MAX  (64u << 20) /* largest tree API page accepted */
#define S_MAX_PAGES 100000      /* pages of one listing: a loop guard, not a real limit */

/* Redirect memo: where the resolve URL of (uri, version) sent an LFS read (a CDN URL). The CDN
 * URL of an LFS file is content addressed (its path names the sha256), so a later read of that
 * version may go straight to it. 256 entries, least recently used replaced: a slot holds two
 * URLs (~8 KiB at most), the lookup is a linear scan under a lock, both small next to one
 * network round trip. */
#define S_MEMO_SLOTS 256

typedef struct s_hf_memo {
    char *uri;                     /* hf:// uri (malloc'd); NULL for a free slot */
    char version[UFS_VERSION_MAX]; /* the version the redirect named (X-Linked-Etag) */
    char *target;                  /* where the redirect pointed (malloc'd) */
    ufs_stat_t stat;               /* what the redirect said: size, version, mtime */
    uint64_t used;                 /* memo_tick at the last use: LRU order */
} s_hf_memo_t;

typedef struct s_hf {
    ufs_t *ufs;                     /* owner; borrowed */
    char endpoint[1024];            /* HF_ENDPOINT or https://huggingface.co, no trailing slash */
    char origin[1024];              /* scheme://host[:port] of endpoint: credentials go only here */
    struct curl_slist *auth;        /* "Authorization: Bearer $HF_TOKEN", or NULL; read-only */
    pthread_mutex_t memo_lock;      /* guards memo and memo_tick */
    s_hf_memo_t memo[S_MEMO_SLOTS]; /* redirect memo, see S_MEMO_SLOTS */
    uint64_t memo_tick;             /* grows by one per memo use */
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
    pthread_mutex_init(&state->memo_lock, NULL);
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
            pthread_mutex_destroy(&state->memo_lock);
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
    for (size_t i = 0; i < S_MEMO_SLOTS; i++) {
        free(state->memo[i].uri);
        free(state->memo[i].target);
    }
    pthread_mutex_destroy(&state->memo_lock);
    free(state);
}

/* ---- redirect memo ------------------------------------------------------------------------ */

/* Looks up (uri, version): true with the target copied into target (target_len bytes) and the
 * stat the redirect gave in *stat. */
static bool s_memo_get(s_hf_t *state, const char *uri, const char *version, char *target,
                       size_t target_len, ufs_stat_t *stat)
{
    bool found = false;
    pthread_mutex_lock(&state->memo_lock);
    for (size_t i = 0; i < S_MEMO_SLOTS && !found; i++) {
        s_hf_memo_t *slot = &state->memo[i];
        if (slot->uri && strcmp(slot->version, version) == 0 && strcmp(slot->uri, uri) == 0 &&
            strlen(slot->target) < target_len) {
            memcpy(target, slot->target, strlen(slot->target) + 1);
            *stat = slot->stat;
            slot->used = ++state->memo_tick;
            found = true;
        }
    }
    pthread_mutex_unlock(&state->memo_lock);
    return found;
}

/* Forgets (uri, version), say after its target refused a read (a signed CDN URL expired). */
static void s_memo_forget(s_hf_t *state, const char *uri, const char *version)
{
    pthread_mutex_lock(&state->memo_lock);
    for (size_t i = 0; i < S_MEMO_SLOTS; i++) {
        s_hf_memo_t *slot = &state->memo[i];
        if (slot->uri && strcmp(slot->version, version) == 0 && strcmp(slot->uri, uri) == 0) {
            free(slot->uri);
            free(slot->target);
            memset(slot, 0, sizeof *slot);
        }
    }
    pthread_mutex_unlock(&state->memo_lock);
}

/* Remembers that (uri, stat->version) redirected to target, replacing the same key or else the
 * least recently used slot. Out of memory just remembers nothing. */
static void s_memo_put(s_hf_t *state, const char *uri, const ufs_stat_t *stat, const char *target)
{
    char *uri_copy = strdup(uri), *target_copy = strdup(target);
    if (!uri_copy || !target_copy) {
        free(uri_copy);
        free(target_copy);
        return;
    }
    pthread_mutex_lock(&state->memo_lock);
    s_hf_memo_t *victim = &state->memo[0];
    for (size_t i = 0; i < S_MEMO_SLOTS; i++) {
        s_hf_memo_t *slot = &state->memo[i];
        if (slot->uri && strcmp(slot->version, stat->version) == 0 && strcmp(slot->uri, uri) == 0) {
            victim = slot;
            break;
        }
        if (!slot->uri || (victim->uri && slot->used < victim->used))
            victim = slot;
    }
    free(victim->uri);
    free(victim->target);
    victim->uri = uri_copy;
    victim->target = target_copy;
    victim->stat = *stat;
    snprintf(victim->version, sizeof victim->version, "%s", stat->version);
    victim->used = ++state->memo_tick;
    pthread_mutex_unlock(&state->memo_lock);
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
                int64_t mtime = ufs_http_date(value);
                out->mtime = mtime > 0 ? mtime : 0;
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

/* The stat a resolve reply gives, as s_hf_stat reads a HEAD: size from X-Linked-Size (an LFS
 * redirect), else `size` the reply states (has_size); version s_reply_version, else
 * "<size>-0"; mtime from Last-Modified. Returns false when the reply names no size. */
static bool s_reply_stat(const ufs_http_response_t *response, bool has_size, uint64_t size,
                         ufs_stat_t *out)
{
    char value[64];
    if (ufs_http_header(response, "X-Linked-Size", value, sizeof value)) {
        char *end;
        size = strtoull(value, &end, 10);
        has_size = end != value && *end == '\0';
    }
    if (!has_size)
        return false;
    memset(out, 0, sizeof *out);
    out->size = size;
    if (!s_reply_version(response, out->version))
        snprintf(out->version, sizeof out->version, "%" PRIu64 "-0", size);
    if (ufs_http_header(response, "Last-Modified", value, sizeof value)) {
        int64_t mtime = ufs_http_date(value);
        out->mtime = mtime > 0 ? mtime : 0;
    }
    return true;
}

/* A read's version pin (the progress gate of a reply that names the version itself): `want`
 * asked for (NULL: any), `learnt` the first gated reply's, which a retried attempt must name
 * too. */
typedef struct s_hf_pin {
    const char *want;             /* version asked for, or NULL */
    char learnt[UFS_VERSION_MAX]; /* "" before the first gated reply */
} s_hf_pin_t;

/* ufs_http_request_t.accept of a direct (not redirected) resolve reply: its version must be the
 * one asked for, and across attempts the one first seen, else SHOAL_ESTALE before a byte is
 * reported. */
static int s_accept_version(void *arg, const ufs_http_response_t *response)
{
    s_hf_pin_t *pin = arg;
    ufs_stat_t seen;
    uint64_t size = response->range_total >= 0 ? (uint64_t)response->range_total : 0;
    s_reply_stat(response, true, size, &seen);
    const char *expect = pin->want ? pin->want : pin->learnt[0] ? pin->learnt : NULL;
    if (expect && strcmp(seen.version, expect) != 0)
        return ufs_fail(SHOAL_ESTALE, "GET: the reply's version is %s, not %s", seen.version,
                        expect);
    snprintf(pin->learnt, sizeof pin->learnt, "%s", seen.version);
    return 0;
}

/* A ranged GET on the resolve URL, redirects followed by hand (credentials only to the
 * endpoint's origin). The first reply that names the file (an LFS redirect with X-Linked-Size
 * and X-Linked-Etag, or a direct 2xx/416 with its ETag) is the stat: *stat_out, as s_hf_stat
 * would give it; with a version it must match, else SHOAL_ESTALE before any byte is fetched
 * from a CDN. An LFS redirect's target is remembered per (uri, version) (s_memo_put), so a
 * later read of that version goes straight there: one request instead of two; a remembered
 * target that refuses (403, 404, 410: a signed URL expired) is forgotten and the read starts
 * over at the resolve URL. Progress is reported once the version is known: by a CDN reply after
 * the redirect or the memo, and by a direct reply through its header gate (s_accept_version). A
 * 416 at or past the end that names no version costs one stat (s_hf_stat). */
static int64_t s_hf_read(void *opaque, const char *uri, const char *version, uint64_t offset,
                         void *buf, size_t length, const ufs_progress_t *progress,
                         ufs_stat_t *stat_out)
{
    s_hf_t *state = opaque;
    if (length == 0)
        return 0;
    s_hf_uri_t *u = malloc(sizeof *u);
    char *url = malloc(2 * UFS_URI_MAX);
    int64_t rc = (!u || !url) ? ufs_fail(SHOAL_ENOMEM, "hf read: out of memory") : s_parse(uri, u);
    bool known = false;               /* *stat_out is the file's stat */
    bool from_memo = false;           /* url is a remembered redirect target */
    bool memo_new = false;            /* an LFS redirect gave the stat: remember its target */
    char named[UFS_VERSION_MAX] = ""; /* the version a redirect named (X-Linked-Etag) */
    if (rc == 0 && version && s_memo_get(state, uri, version, url, 2 * UFS_URI_MAX, stat_out))
        known = from_memo = true;
    else if (rc == 0)
        rc = s_resolve_url(state, u, url, 2 * UFS_URI_MAX);
    s_hf_pin_t pin = {.want = version};
    for (int hop = 0; rc == 0; hop++) {
        ufs_http_request_t request = {.method = "GET",
                                      .url = url,
                                      .headers = s_auth_for(state, url),
                                      .ranged = true,
                                      .range_offset = offset,
                                      .range_length = length,
                                      .buf = buf,
                                      .buf_len = length,
                                      .progress = progress,
                                      /* after a redirect named the version, the CDN's own
                                       * ETag is not the file's: nothing to compare */
                                      .accept = known || named[0] ? NULL : s_accept_version,
                                      .accept_arg = &pin};
        ufs_http_response_t response;
        rc = ufs_http_perform(state->ufs, &request, &response);
        if (rc < 0) {
            ufs_http_response_fini(&response);
            break;
        }
        long status = response.status;
        char what[UFS_URI_MAX + 64], seen[UFS_VERSION_MAX];
        snprintf(what, sizeof what, "GET %s (bytes %" PRIu64 "+%zu)", url, offset, length);
        bool redirect = status >= 300 && status < 400;
        bool body = status == 200 || status == 206 || status == 416;
        if (!known && redirect && ufs_http_header(&response, "X-Linked-Etag", seen, sizeof seen)) {
            ufs_etag_version(seen, named, sizeof named);
            if (named[0] && s_reply_stat(&response, false, 0, stat_out))
                known = memo_new = true;
        } else if (!known && body) {
            uint64_t size = 0;
            bool has_size = ufs_http_reply_size(&response, &size);
            /* a 416 that names no version leaves it to a stat, below */
            if ((status != 416 || s_reply_version(&response, seen)) &&
                s_reply_stat(&response, has_size, size, stat_out)) {
                known = true;
                if (named[0])
                    snprintf(stat_out->version, sizeof stat_out->version, "%s", named);
            }
        }
        const char *now = known ? stat_out->version : named;
        if (version && now[0] && strcmp(now, version) != 0) {
            rc = ufs_fail(SHOAL_ESTALE, "%s: version is now %s, not %s", what, now, version);
            ufs_http_response_fini(&response);
            break;
        }
        if (body && !known) {
            /* no size or no version in the reply (a 416 without ETag, a total of "*") */
            ufs_stat_t fresh;
            rc = s_hf_stat(state, uri, &fresh);
            if (rc == 0 && version && strcmp(fresh.version, version) != 0)
                rc = ufs_fail(SHOAL_ESTALE, "%s: version is now %s, not %s", what, fresh.version,
                              version);
            if (rc == 0) {
                *stat_out = fresh;
                known = true;
            }
        }
        if (rc < 0) {
            /* the stat above failed: its error stands */
        } else if (status == 206 || status == 200) {
            rc = (int64_t)response.body_len; /* 200 only for an empty object (see ufs_conn.h) */
            if (pin.learnt[0] && !named[0] && !from_memo &&
                strcmp(pin.learnt, stat_out->version) != 0)
                rc = ufs_fail(SHOAL_ESTALE, "%s: version changed from %s to %s", what, pin.learnt,
                              stat_out->version);
        } else if (status == 416) {
            rc = 0;
        } else if (redirect && response.redirect_url && hop < S_MAX_HOPS) {
            snprintf(url, 2 * UFS_URI_MAX, "%s", response.redirect_url);
            ufs_http_response_fini(&response);
            continue;
        } else if (from_memo && (status == 403 || status == 404 || status == 410)) {
            /* the remembered target refused (a signed URL expired): start over */
            s_memo_forget(state, uri, version);
            known = from_memo = false;
            memset(stat_out, 0, sizeof *stat_out);
            rc = s_resolve_url(state, u, url, 2 * UFS_URI_MAX);
            ufs_http_response_fini(&response);
            continue;
        } else {
            rc = s_status_error(status, what);
        }
        if (rc >= 0 && memo_new)
            s_memo_put(state, uri, stat_out, url);
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
