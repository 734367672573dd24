/*
 * ufs_s3.c - the s3:// connector: Amazon S3 and S3-compatible servers (MinIO, moto, Ceph).
 * Stat is HEAD (a key with no object but keys below it is a directory), reads are ranged GETs
 * pinned to a version with If-Match, listings are ListObjectsV2 pages. Requests are signed by
 * libcurl's CURLOPT_AWS_SIGV4; configuration comes from the AWS environment variables and the
 * shared credentials file, read once when the UFS handle is made.
 */
#include "ufs_conn.h"
#include "ufs_xml.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S3_MAX_KEYS_DEFAULT 1000    /* ListObjectsV2's own maximum page */
#define S3_CREDENTIALS_MAX  (1u << 20) /* a credentials file larger than this is refused */
/* SHA-256 of the empty body: every request we send is a GET or HEAD without one. */
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* The connector's configuration; read-only after init, so shared by every thread.
 * Invariant: signing == (userpwd != NULL); path_style whenever endpoint is custom. */
typedef struct s_s3 {
    ufs_t *ufs;                /* owner, for the HTTP layer; borrowed */
    char region[64];           /* signing region, e.g. "us-east-1" */
    char endpoint[512];        /* "scheme://host[:port][/base]" without a trailing '/' or "" */
    bool path_style;           /* ENDPOINT/BUCKET/KEY rather than BUCKET.ENDPOINT/KEY */
    bool signing;              /* sign with SigV4; false: anonymous requests */
    char sigv4[96];            /* CURLOPT_AWS_SIGV4 value "aws:amz:REGION:s3" */
    char *userpwd;             /* "KEY:SECRET" (malloc'd), or NULL when anonymous */
    char *token_header;        /* "x-amz-security-token: TOKEN" (malloc'd), or NULL */
    char credential_source[256]; /* where the credentials came from, for error messages */
    int max_keys;              /* ListObjectsV2 max-keys (SHOAL_S3_MAX_KEYS, default 1000) */
    char config_error[512];    /* when set, every call fails with SHOAL_EACCES and this */
} s_s3_t;

/* ---------------------------------------------------------------------------------------- */
/* Configuration                                                                             */
/* ---------------------------------------------------------------------------------------- */

/* Environment value or NULL when unset or empty. */
static const char *s_env(const char *name)
{
    const char *value = getenv(name);
    return value && *value ? value : NULL;
}

static bool s_env_true(const char *name)
{
    const char *value = s_env(name);
    return value && (strcmp(value, "1") == 0 || strcasecmp(value, "true") == 0 ||
                     strcasecmp(value, "yes") == 0);
}

/* Reads a whole small file; NULL if it is missing, unreadable or over S3_CREDENTIALS_MAX. */
static char *s_read_small_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return NULL;
    char *text = malloc(S3_CREDENTIALS_MAX + 1);
    size_t len = text ? fread(text, 1, S3_CREDENTIALS_MAX + 1, file) : 0;
    fclose(file);
    if (!text || len > S3_CREDENTIALS_MAX) {
        free(text);
        return NULL;
    }
    text[len] = '\0';
    return text;
}

/* Takes the keys in *creds into the state (and wipes them from *creds). */
static int s_use_credentials(s_s3_t *state, ufs_s3_credentials_t *creds)
{
    size_t len = strlen(creds->access_key) + strlen(creds->secret_key) + 2;
    state->userpwd = malloc(len);
    if (!state->userpwd)
        return SHOAL_ENOMEM;
    snprintf(state->userpwd, len, "%s:%s", creds->access_key, creds->secret_key);
    if (creds->session_token[0]) {
        len = strlen(creds->session_token) + 32;
        state->token_header = malloc(len);
        if (!state->token_header)
            return SHOAL_ENOMEM;
        snprintf(state->token_header, len, "x-amz-security-token: %s", creds->session_token);
    }
    state->signing = true;
    memset(creds, 0, sizeof *creds);
    return 0;
}

/* Credentials, in the order the AWS SDKs use for static keys: the environment, then the shared
 * credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile AWS_PROFILE or
 * "default"). None at all means anonymous requests (public buckets). A profile that was asked
 * for by name but cannot be found is a configuration error, not a silent anonymous fallback. */
static int s_load_credentials(s_s3_t *state)
{
    ufs_s3_credentials_t *creds = calloc(1, sizeof *creds);
    if (!creds)
        return SHOAL_ENOMEM;
    int rc = 0;
    const char *key = s_env("AWS_ACCESS_KEY_ID");
    const char *secret = s_env("AWS_SECRET_ACCESS_KEY");
    const char *token = s_env("AWS_SESSION_TOKEN");
    if (key && secret) {
        if (strlen(key) >= sizeof creds->access_key || strlen(secret) >= sizeof creds->secret_key ||
            (token && strlen(token) >= sizeof creds->session_token)) {
            snprintf(state->config_error, sizeof state->config_error,
                     "s3: AWS credentials in the environment are too long");
        } else {
            snprintf(creds->access_key, sizeof creds->access_key, "%s", key);
            snprintf(creds->secret_key, sizeof creds->secret_key, "%s", secret);
            snprintf(creds->session_token, sizeof creds->session_token, "%s", token ? token : "");
            snprintf(state->credential_source, sizeof state->credential_source,
                     "key %.40s from the environment", key);
            rc = s_use_credentials(state, creds);
        }
        free(creds);
        return rc;
    }

    const char *profile = s_env("AWS_PROFILE");
    const char *file = s_env("AWS_SHARED_CREDENTIALS_FILE");
    char path[4096];
    if (file) {
        snprintf(path, sizeof path, "%s", file);
    } else if (s_env("HOME")) {
        snprintf(path, sizeof path, "%s/.aws/credentials", s_env("HOME"));
    } else {
        path[0] = '\0';
    }
    char *text = path[0] ? s_read_small_file(path) : NULL;
    if (text) {
        shoal_clear_error();
        int found = ufs_s3_credentials_parse(text, profile ? profile : "default", creds);
        if (found == 0) {
            snprintf(state->credential_source, sizeof state->credential_source,
                     "key %.40s from profile [%.40s] of %.60s", creds->access_key,
                     profile ? profile : "default", path);
            rc = s_use_credentials(state, creds);
        } else if (profile || file) {
            snprintf(state->config_error, sizeof state->config_error, "s3: %s (file %s)",
                     shoal_last_error(), path);
        }
        memset(text, 0, strlen(text)); /* the file held secrets */
        free(text);
    } else if (profile || file) {
        snprintf(state->config_error, sizeof state->config_error,
                 "s3: cannot read the credentials file %s for profile [%s]", path[0] ? path : "~",
                 profile ? profile : "default");
    }
    free(creds);
    if (!state->signing && !state->config_error[0])
        snprintf(state->credential_source, sizeof state->credential_source,
                 "anonymous: no AWS credentials configured");
    return rc;
}

/* Endpoint, addressing style, region and page size. */
static void s_load_endpoint(s_s3_t *state)
{
    const char *region = s_env("AWS_REGION");
    if (!region)
        region = s_env("AWS_DEFAULT_REGION");
    if (!region)
        region = "us-east-1";
    bool region_ok = strlen(region) < sizeof state->region;
    for (const char *p = region; *p && region_ok; p++)
        region_ok = isalnum((unsigned char)*p) || *p == '-' || *p == '_';
    if (!region_ok) {
        snprintf(state->config_error, sizeof state->config_error, "s3: bad AWS region: %.80s",
                 region);
        region = "us-east-1";
    }
    snprintf(state->region, sizeof state->region, "%s", region);
    snprintf(state->sigv4, sizeof state->sigv4, "aws:amz:%s:s3", state->region);

    const char *endpoint = s_env("AWS_ENDPOINT_URL_S3");
    if (!endpoint)
        endpoint = s_env("AWS_ENDPOINT_URL");
    if (endpoint) {
        size_t len = strlen(endpoint);
        while (len > 0 && endpoint[len - 1] == '/')
            len--;
        if ((strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0) ||
            len >= sizeof state->endpoint || strchr(endpoint, '?')) {
            snprintf(state->config_error, sizeof state->config_error,
                     "s3: endpoint must be an http:// or https:// URL: %.200s", endpoint);
        } else {
            memcpy(state->endpoint, endpoint, len);
            state->endpoint[len] = '\0';
        }
        state->path_style = true; /* custom servers rarely have wildcard DNS */
    }
    if (s_env_true("AWS_S3_FORCE_PATH_STYLE") || s_env_true("SHOAL_S3_PATH_STYLE"))
        state->path_style = true;

    state->max_keys = S3_MAX_KEYS_DEFAULT;
    const char *max_keys = s_env("SHOAL_S3_MAX_KEYS");
    if (max_keys) {
        long value = strtol(max_keys, NULL, 10);
        if (value >= 1 && value <= S3_MAX_KEYS_DEFAULT)
            state->max_keys = (int)value;
    }
}

static void s_s3_fini(void *opaque)
{
    s_s3_t *state = opaque;
    if (!state)
        return;
    if (state->userpwd) {
        memset(state->userpwd, 0, strlen(state->userpwd));
        free(state->userpwd);
    }
    if (state->token_header) {
        memset(state->token_header, 0, strlen(state->token_header));
        free(state->token_header);
    }
    free(state);
}

static void *s_s3_init(ufs_t *ufs, const ufs_options_t *options)
{
    (void)options;
    ufs_xml_init();
    s_s3_t *state = calloc(1, sizeof *state);
    if (!state) {
        shoal_fail(SHOAL_ENOMEM, "s3 connector: out of memory");
        return NULL;
    }
    state->ufs = ufs;
    s_load_endpoint(state);
    if (s_load_credentials(state) < 0) {
        s_s3_fini(state);
        shoal_fail(SHOAL_ENOMEM, "s3 connector: out of memory");
        return NULL;
    }
    return state;
}

/* ---------------------------------------------------------------------------------------- */
/* Requests                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* Whether `bucket` can be a DNS label of a virtual-hosted URL: lower-case letters, digits and
 * '-'. Buckets with dots break the TLS wildcard certificate, so they go path-style, as the AWS
 * SDKs do. */
static bool s_dns_safe(const char *bucket)
{
    for (const char *p = bucket; *p; p++) {
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-')
            return false;
    }
    return true;
}

/* Builds the URL of `key` (raw; percent-encoded here, '/' kept) in `bucket`, with `query`
 * (NULL, or already encoded and sorted by name: libcurl 7.88 signs the query as given, so the
 * order we write is the canonical order). Returns 0 or SHOAL_EINVAL (too long). */
static int s_url(const s_s3_t *state, const char *bucket, const char *key, const char *query,
                 char *out, size_t out_len)
{
    int n;
    if (state->endpoint[0])
        n = snprintf(out, out_len, "%s/%s/", state->endpoint, bucket);
    else if (state->path_style || !s_dns_safe(bucket))
        n = snprintf(out, out_len, "https://s3.%s.amazonaws.com/%s/", state->region, bucket);
    else
        n = snprintf(out, out_len, "https://%s.s3.%s.amazonaws.com/", bucket, state->region);
    if (n < 0 || (size_t)n >= out_len)
        return shoal_fail(SHOAL_EINVAL, "s3: url too long for bucket %s", bucket);
    int rc = ufs_url_append_encoded(out, out_len, key, true);
    if (rc == 0 && query && *query) {
        size_t len = strlen(out);
        n = snprintf(out + len, out_len - len, "?%s", query);
        if (n < 0 || (size_t)n >= out_len - len)
            rc = shoal_fail(SHOAL_EINVAL, "s3: url too long");
    }
    return rc;
}

/* Performs `request` with the connector's signing: SigV4 over the empty payload's hash, the
 * session token, and If-Match "version" when `version` is not NULL. Returns as
 * ufs_http_perform. */
static int s_perform(const s_s3_t *state, ufs_http_request_t *request, const char *version,
                     ufs_http_response_t *response)
{
    struct curl_slist *headers = NULL, *grown;
    char if_match[UFS_VERSION_MAX + 16];
    bool ok = true;
    if (state->signing) {
        grown = curl_slist_append(headers, "x-amz-content-sha256: " S3_EMPTY_SHA256);
        ok = grown != NULL;
        headers = grown ? grown : headers;
        request->aws_sigv4 = state->sigv4;
        request->userpwd = state->userpwd;
    }
    if (ok && state->token_header) {
        grown = curl_slist_append(headers, state->token_header);
        ok = grown != NULL;
        headers = grown ? grown : headers;
    }
    if (ok && version) {
        snprintf(if_match, sizeof if_match, "If-Match: \"%s\"", version);
        grown = curl_slist_append(headers, if_match);
        ok = grown != NULL;
        headers = grown ? grown : headers;
    }
    int rc;
    if (!ok) {
        memset(response, 0, sizeof *response);
        rc = shoal_fail(SHOAL_ENOMEM, "s3: out of memory");
    } else {
        request->headers = headers;
        rc = ufs_http_perform(state->ufs, request, response);
    }
    curl_slist_free_all(headers);
    return rc;
}

/* Maps a reply that is not the success expected to an error naming the uri, the status, the
 * service's error code and, for refusals, which credentials were used. */
static int s_fail(const s_s3_t *state, const char *method, const char *uri,
                  const ufs_http_response_t *response)
{
    char code[128];
    ufs_xml_error_code(response->body, response->body_len, code, sizeof code);
    return ufs_cloud_status_fail(response->status, method, uri, code, state->credential_source);
}

/* Fetches one ListObjectsV2 page of `prefix` (one level with delimiter '/', or everything
 * below it when recursive) into *page, from continuation token `token` (NULL first). */
static int s_list_page(const s_s3_t *state, const char *uri, const char *bucket,
                       const char *prefix, bool recursive, int max_keys, const char *token,
                       ufs_xml_listing_t *page)
{
    char query[UFS_CLOUD_URL_MAX] = "";
    int rc = 0;
    if (token) {
        strcpy(query, "continuation-token=");
        rc = ufs_url_append_encoded(query, sizeof query, token, false);
        strcat(query, "&");
    }
    if (rc == 0) {
        size_t len = strlen(query);
        snprintf(query + len, sizeof query - len, "%slist-type=2&max-keys=%d%s",
                 recursive ? "" : "delimiter=%2F&", max_keys, prefix[0] ? "&prefix=" : "");
        rc = ufs_url_append_encoded(query, sizeof query, prefix, false);
    }
    char url[UFS_CLOUD_URL_MAX];
    if (rc == 0)
        rc = s_url(state, bucket, "", query, url, sizeof url);
    if (rc < 0)
        return rc;
    ufs_http_request_t request = {.method = "GET", .url = url, .collect_body = true,
                                  .body_max = UFS_XML_BODY_MAX};
    ufs_http_response_t response;
    rc = s_perform(state, &request, NULL, &response);
    if (rc == 0 && response.status != 200)
        rc = s_fail(state, "LIST", uri, &response);
    else if (rc == 0)
        rc = ufs_xml_parse_listing(response.body, response.body_len, UFS_XML_S3, page);
    ufs_http_response_fini(&response);
    return rc;
}

/* Splits uri and refuses calls when the configuration is broken. */
static int s_begin(const s_s3_t *state, const char *uri, char *bucket, const char **key)
{
    if (state->config_error[0])
        return shoal_fail(SHOAL_EACCES, "%s (for %.200s)", state->config_error, uri);
    return ufs_cloud_uri_split(uri, "s3", bucket, 64, key);
}

/* ---------------------------------------------------------------------------------------- */
/* Operations                                                                                */
/* ---------------------------------------------------------------------------------------- */

/* A directory is a prefix with at least one key below it: one ListObjectsV2 page of one key
 * tells. `dir_prefix` is "" (the bucket) or ends with '/'. ENOENT when nothing is below;
 * a missing bucket is ENOENT too. */
static int s_stat_dir(const s_s3_t *state, const char *uri, const char *bucket,
                      const char *dir_prefix, ufs_stat_t *out)
{
    ufs_xml_listing_t page;
    int rc = s_list_page(state, uri, bucket, dir_prefix, false, 1, NULL, &page);
    if (rc < 0)
        return rc;
    bool found = page.object_count + page.prefix_count > 0 || !dir_prefix[0];
    ufs_xml_listing_fini(&page);
    if (!found)
        return shoal_fail(SHOAL_ENOENT, "STAT %s: no such object or prefix", uri);
    memset(out, 0, sizeof *out);
    out->is_dir = true;
    return 0;
}

/* A HEAD reply has no body, so no error code: to name it (InvalidAccessKeyId versus
 * SignatureDoesNotMatch matters to whoever fixes the credentials), a failed HEAD is asked
 * again as a 1-byte GET, whose error document has it. Only on the failure path. */
static int s_head_fail(const s_s3_t *state, const char *uri, const char *url,
                       const ufs_http_response_t *head)
{
    char byte;
    ufs_http_request_t request = {.method = "GET", .url = url, .ranged = true,
                                  .range_length = 1, .buf = &byte, .buf_len = 1};
    ufs_http_response_t response;
    int rc = s_perform(state, &request, NULL, &response);
    if (rc == 0 && response.status == head->status)
        rc = s_fail(state, "HEAD", uri, &response);
    else
        rc = s_fail(state, "HEAD", uri, head);
    ufs_http_response_fini(&response);
    return rc;
}

/* HEAD the key; on 404 it may still be a directory (keys below "key/"). The bucket itself and
 * keys ending in '/' are directories when they exist. */
static int s_s3_stat(void *opaque, const char *uri, ufs_stat_t *out)
{
    const s_s3_t *state = opaque;
    char bucket[64];
    const char *key;
    int rc = s_begin(state, uri, bucket, &key);
    if (rc < 0)
        return rc;
    size_t key_len = strlen(key);
    if (key_len == 0 || key[key_len - 1] == '/')
        return s_stat_dir(state, uri, bucket, key, out);

    char url[UFS_CLOUD_URL_MAX];
    rc = s_url(state, bucket, key, NULL, url, sizeof url);
    if (rc < 0)
        return rc;
    ufs_http_request_t request = {.method = "HEAD", .url = url};
    ufs_http_response_t response;
    rc = s_perform(state, &request, NULL, &response);
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
            rc = shoal_fail(SHOAL_ENOMEM, "s3: out of memory");
        } else {
            snprintf(dir_prefix, key_len + 2, "%s/", key);
            rc = s_stat_dir(state, uri, bucket, dir_prefix, out);
            free(dir_prefix);
        }
    } else if (rc == 0) {
        rc = s_head_fail(state, uri, url, &response);
    }
    ufs_http_response_fini(&response);
    return rc;
}

/* Lists one level (delimiter '/': sub-prefixes come back as directory entries) or everything
 * below, following continuation tokens to the end. */
static int s_s3_list(void *opaque, const char *uri, bool recursive, ufs_list_t *out)
{
    const s_s3_t *state = opaque;
    char bucket[64];
    const char *key;
    int rc = s_begin(state, uri, bucket, &key);
    if (rc < 0)
        return rc;
    size_t key_len = strlen(key);
    char *prefix = malloc(key_len + 2);
    if (!prefix)
        return shoal_fail(SHOAL_ENOMEM, "s3: out of memory");
    snprintf(prefix, key_len + 2, "%s%s", key, key_len && key[key_len - 1] != '/' ? "/" : "");
    char *token = NULL;
    do {
        ufs_xml_listing_t page;
        rc = s_list_page(state, uri, bucket, prefix, recursive, state->max_keys, token, &page);
        if (rc < 0)
            break;
        rc = ufs_cloud_push_listing(out, "s3", bucket, prefix, &page);
        if (rc == 0 && page.next_token && token && strcmp(page.next_token, token) == 0)
            rc = shoal_fail(SHOAL_EPROTO, "LIST %s: the server repeated a continuation token",
                            uri);
        free(token);
        token = page.next_token; /* taken from the page */
        page.next_token = NULL;
        ufs_xml_listing_fini(&page);
    } while (rc == 0 && token);
    free(token);
    free(prefix);
    return rc;
}

/* A ranged GET straight into buf, pinned to `version` with If-Match (412 -> ESTALE). Past the
 * end the server answers 416: that is a read of 0 bytes, after checking with HEAD that the
 * object still has the version asked for (a 416 carries no ETag). */
static int64_t s_s3_read(void *opaque, const char *uri, const char *version, uint64_t offset,
                         void *buf, size_t length)
{
    const s_s3_t *state = opaque;
    char bucket[64];
    const char *key;
    int rc = s_begin(state, uri, bucket, &key);
    if (rc < 0)
        return rc;
    if (!key[0] || key[strlen(key) - 1] == '/')
        return shoal_fail(SHOAL_EISDIR, "read of %s: a directory", uri);
    if (length == 0)
        return 0;
    char url[UFS_CLOUD_URL_MAX];
    rc = s_url(state, bucket, key, NULL, url, sizeof url);
    if (rc < 0)
        return rc;
    ufs_http_request_t request = {.method = "GET", .url = url, .ranged = true,
                                  .range_offset = offset, .range_length = length, .buf = buf,
                                  .buf_len = length};
    ufs_http_response_t response;
    rc = s_perform(state, &request, version, &response);
    int64_t result = rc;
    if (rc == 0) {
        if (response.status == 206 || response.status == 200) {
            result = (int64_t)response.body_len; /* 200: only an empty body gets here */
        } else if (response.status == 416) {
            ufs_stat_t now;
            result = version ? s_s3_stat(opaque, uri, &now) : 0;
            if (result == 0 && version)
                result = ufs_cloud_past_end(uri, version, &now);
        } else {
            result = s_fail(state, "GET", uri, &response);
        }
    }
    ufs_http_response_fini(&response);
    return result;
}

const ufs_connector_t ufs_s3_connector = {
    .scheme = "s3",
    .init = s_s3_init,
    .fini = s_s3_fini,
    .stat = s_s3_stat,
    .list = s_s3_list,
    .read = s_s3_read,
};
