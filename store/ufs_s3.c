/*
 * ufs_s3.c - the s3:// connector: Amazon S3 and S3-compatible servers (MinIO, moto, Ceph).
 * Stat is HEAD (a key with no object but keys below it is a directory), reads are ranged GETs
 * pinned to a version with If-Match, listings are ListObjectsV2 pages. Requests are signed by
 * libcurl's CURLOPT_AWS_SIGV4; configuration comes from the AWS environment variables and the
 * shared credentials file, read once when the UFS handle is made.
 */
#include "ufs_aws_cred.h"
#include "ufs_cloud.h"
#include "ufs_conn.h"
#include "coding.h"
#include "ufs_uri.h"
#include "ufs_xml.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S3_MAX_KEYS_DEFAULT 1000 /* ListObjectsV2's own maximum page */
/* SHA-256 of the empty body: every request we send is a GET or HEAD without one. */
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* The connector's configuration; read-only after init, so shared by every thread.
 * Invariant: signing == (userpwd != NULL); path_style whenever endpoint is custom. */
typedef struct s_s3 {
    ufs_t *ufs;                  /* owner, for the HTTP layer; borrowed */
    char region[64];             /* signing region, e.g. "us-east-1" */
    char endpoint[512];          /* "scheme://host[:port][/base]" without a trailing '/' or "" */
    bool path_style;             /* ENDPOINT/BUCKET/KEY rather than BUCKET.ENDPOINT/KEY */
    bool signing;                /* sign with SigV4; false: anonymous requests */
    char sigv4[96];              /* CURLOPT_AWS_SIGV4 value "aws:amz:REGION:s3" */
    char *userpwd;               /* "KEY:SECRET" (malloc'd), or NULL when anonymous */
    char *token_header;          /* "x-amz-security-token: TOKEN" (malloc'd), or NULL */
    char credential_source[256]; /* where the credentials came from, for error messages */
    int max_keys;                /* ListObjectsV2 max-keys (SHOAL_S3_MAX_KEYS, default 1000) */
    char config_error[512];      /* when set, every call fails with SHOAL_EACCES and this */
} s_s3_t;

/* ---------------------------------------------------------------------------------------- */
/* Configuration                                                                             */
/* ---------------------------------------------------------------------------------------- */

static bool s_env_true(const char *name)
{
    const char *value = ufs_aws_env(name);
    return value && (strcmp(value, "1") == 0 || strcasecmp(value, "true") == 0 ||
                     strcasecmp(value, "yes") == 0);
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

/* Credentials from the environment or the shared credentials file (ufs_aws_cred.h). None at
 * all means anonymous requests (public buckets). */
static int s_load_credentials(s_s3_t *state)
{
    ufs_s3_credentials_t *creds = calloc(1, sizeof *creds);
    if (!creds)
        return SHOAL_ENOMEM;
    int rc = 0;
    if (ufs_aws_credentials_load(creds, state->credential_source, sizeof state->credential_source,
                                 state->config_error, sizeof state->config_error) > 0)
        rc = s_use_credentials(state, creds);
    memset(creds, 0, sizeof *creds);
    free(creds);
    if (rc == 0 && !state->signing && !state->config_error[0])
        snprintf(state->credential_source, sizeof state->credential_source,
                 "anonymous: no AWS credentials configured");
    return rc;
}

/* Endpoint, addressing style, region and page size. */
static void s_load_endpoint(s_s3_t *state)
{
    const char *region = ufs_aws_env("AWS_REGION");
    if (!region)
        region = ufs_aws_env("AWS_DEFAULT_REGION");
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

    const char *endpoint = ufs_aws_env("AWS_ENDPOINT_URL_S3");
    if (!endpoint)
        endpoint = ufs_aws_env("AWS_ENDPOINT_URL");
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
    const char *max_keys = ufs_aws_env("SHOAL_S3_MAX_KEYS");
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
static int s_url(const void *opaque, const char *bucket, const char *key, const char *query,
                 char *out, size_t out_len)
{
    const s_s3_t *state = opaque;
    int n;
    if (state->endpoint[0])
        n = snprintf(out, out_len, "%s/%s/", state->endpoint, bucket);
    else if (state->path_style || !s_dns_safe(bucket))
        n = snprintf(out, out_len, "https://s3.%s.amazonaws.com/%s/", state->region, bucket);
    else
        n = snprintf(out, out_len, "https://%s.s3.%s.amazonaws.com/", bucket, state->region);
    if (n < 0 || (size_t)n >= out_len)
        return shoal_fail(SHOAL_EINVAL, "s3: url too long for bucket %s", bucket);
    int rc =
        pct_encode_append(out, out_len, key, true) < 0 ? ufs_fail(SHOAL_EINVAL, "url too long") : 0;
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
static int s_perform(const void *opaque, ufs_http_request_t *request, const char *version,
                     ufs_http_response_t *response)
{
    const s_s3_t *state = opaque;
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
static int s_fail(const void *opaque, const char *method, const char *uri,
                  const ufs_http_response_t *response)
{
    const s_s3_t *state = opaque;
    char code[128];
    ufs_xml_error_code(response->body, response->body_len, code, sizeof code);
    return ufs_cloud_status_fail(response->status, method, uri, code, state->credential_source);
}

/* Writes the ListObjectsV2 query of one page of `prefix` (one level with delimiter '/', or
 * everything below it when recursive), from continuation token `token` (NULL first). */
static int s_list_query(char *query, size_t query_len, const char *prefix, bool recursive,
                        int max_keys, const char *token)
{
    query[0] = '\0';
    int rc = 0;
    if (token) {
        strcpy(query, "continuation-token=");
        rc = pct_encode_append(query, query_len, token, false) < 0
                 ? ufs_fail(SHOAL_EINVAL, "url too long")
                 : 0;
        strcat(query, "&");
    }
    if (rc == 0) {
        size_t len = strlen(query);
        snprintf(query + len, query_len - len, "%slist-type=2&max-keys=%d%s",
                 recursive ? "" : "delimiter=%2F&", max_keys, prefix[0] ? "&prefix=" : "");
        rc = pct_encode_append(query, query_len, prefix, false) < 0
                 ? ufs_fail(SHOAL_EINVAL, "url too long")
                 : 0;
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Operations                                                                                */
/* ---------------------------------------------------------------------------------------- */

/* A HEAD reply has no body, so no error code: to name it (InvalidAccessKeyId versus
 * SignatureDoesNotMatch matters to whoever fixes the credentials), a failed HEAD is asked
 * again as a 1-byte GET, whose error document has it. Only on the failure path. */
static int s_head_fail(const void *opaque, const char *uri, const char *url,
                       const ufs_http_response_t *head)
{
    const s_s3_t *state = opaque;
    char byte;
    ufs_http_request_t request = {
        .method = "GET", .url = url, .ranged = true, .range_length = 1, .buf = &byte, .buf_len = 1};
    ufs_http_response_t response;
    int rc = s_perform(state, &request, NULL, &response);
    if (rc == 0 && response.status == head->status)
        rc = s_fail(state, "HEAD", uri, &response);
    else
        rc = s_fail(state, "HEAD", uri, head);
    ufs_http_response_fini(&response);
    return rc;
}

static const ufs_cloud_ops_t s_s3_ops = {
    .scheme = "s3",
    .entry_name = "object",
    .marker_name = "continuation token",
    .dialect = UFS_XML_S3,
    .bad_range_past_end = false,
    .list_query = s_list_query,
    .url = s_url,
    .perform = s_perform,
    .fail = s_fail,
    .head_fail = s_head_fail,
};

/* HEAD the key; on 404 it may still be a directory (keys below "key/"). The bucket itself and
 * keys ending in '/' are directories when they exist. */
static int s_s3_stat(void *opaque, const char *uri, ufs_stat_t *out)
{
    const s_s3_t *state = opaque;
    return ufs_cloud_stat(&s_s3_ops, state, state->config_error, uri, out);
}

/* Lists one level (delimiter '/': sub-prefixes come back as directory entries) or everything
 * below, following continuation tokens to the end. */
static int s_s3_list(void *opaque, const char *uri, bool recursive, ufs_list_t *out)
{
    const s_s3_t *state = opaque;
    return ufs_cloud_list(&s_s3_ops, state, state->config_error, uri, recursive, state->max_keys,
                          out);
}

/* A ranged GET straight into buf, pinned to `version` with If-Match (412 -> ESTALE). Past the
 * end the server answers 416: that is a read of 0 bytes, after checking with HEAD that the
 * object still has the version asked for (a 416 carries no ETag). */
static int64_t s_s3_read(void *opaque, const char *uri, const char *version, uint64_t offset,
                         void *buf, size_t length, const ufs_progress_t *progress,
                         ufs_stat_t *stat_out)
{
    const s_s3_t *state = opaque;
    return ufs_cloud_read(&s_s3_ops, state, state->config_error, uri, version, offset, buf, length,
                          progress, stat_out);
}

const ufs_connector_t ufs_s3_connector = {
    .scheme = "s3",
    .init = s_s3_init,
    .fini = s_s3_fini,
    .stat = s_s3_stat,
    .list = s_s3_list,
    .read = s_s3_read,
};
