/*
 * ufs_az.c - the az:// connector: Azure Blob Storage (and Azurite). Stat is Get Blob Properties
 * (HEAD; a name with blobs below it is a directory), reads are ranged GETs pinned to a version
 * with If-Match, listings are List Blobs pages. Requests carry a SAS token or are signed with
 * Shared Key (HMAC-SHA256, ufs_az_string_to_sign); configuration comes from the AZURE_STORAGE_*
 * environment variables and the connection string, read once when the UFS handle is made.
 */
#include "ufs_conn.h"
#include "ufs_xml.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#define AZ_VERSION          "2021-08-06" /* x-ms-version we speak */
#define AZ_MAX_RESULTS      5000         /* List Blobs' own maximum page */
#define AZ_KEY_MAX          128          /* decoded account key (64 bytes in practice) */

/* The connector's configuration; read-only after init, so shared by every thread.
 * Invariant: at most one of sas and key_len is set; neither means anonymous requests. */
typedef struct s_az {
    ufs_t *ufs;                     /* owner, for the HTTP layer; borrowed */
    char account[64];               /* storage account name */
    char endpoint[512];             /* blob endpoint without a trailing '/' */
    char *sas;                      /* SAS token without its '?' (malloc'd), or NULL */
    unsigned char key[AZ_KEY_MAX];  /* decoded Shared Key */
    size_t key_len;                 /* bytes in key; 0 when not signing */
    char auth_source[160];          /* how requests authenticate, for error messages */
    int max_results;                /* List Blobs maxresults (SHOAL_AZ_MAX_RESULTS) */
    char config_error[512];         /* when set, every call fails with SHOAL_EACCES and this */
} s_az_t;

/* ---------------------------------------------------------------------------------------- */
/* Configuration                                                                             */
/* ---------------------------------------------------------------------------------------- */

static const char *s_env(const char *name)
{
    const char *value = getenv(name);
    return value && *value ? value : NULL;
}

/* Settings gathered from the connection string, then overridden by the single variables. */
typedef struct s_settings {
    char account[64];         /* AccountName */
    char key[256];            /* AccountKey, base64 */
    char endpoint[512];       /* BlobEndpoint */
    char sas[4096];           /* SharedAccessSignature */
    char protocol[8];         /* DefaultEndpointsProtocol: "https" or "http" */
    char suffix[128];         /* EndpointSuffix, e.g. "core.windows.net" */
} s_settings_t;

/* Parses "Name=Value;Name=Value" (values may contain '='; names case-insensitive). Unknown
 * names are ignored; UseDevelopmentStorage=true means Azurite's well-known account. */
static void s_parse_connection_string(const char *text, s_settings_t *out)
{
    static const char devstore_key[] = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz"
                                       "4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    for (const char *part = text; part && *part;) {
        const char *end = strchr(part, ';');
        size_t len = end ? (size_t)(end - part) : strlen(part);
        const char *equals = memchr(part, '=', len);
        if (equals) {
            size_t name_len = (size_t)(equals - part);
            int value_len = (int)(len - name_len - 1);
            const char *value = equals + 1;
            struct {
                const char *name;
                char *target;
                size_t size;
            } fields[] = {
                {"AccountName", out->account, sizeof out->account},
                {"AccountKey", out->key, sizeof out->key},
                {"BlobEndpoint", out->endpoint, sizeof out->endpoint},
                {"SharedAccessSignature", out->sas, sizeof out->sas},
                {"DefaultEndpointsProtocol", out->protocol, sizeof out->protocol},
                {"EndpointSuffix", out->suffix, sizeof out->suffix},
            };
            for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
                if (strlen(fields[i].name) == name_len &&
                    strncasecmp(part, fields[i].name, name_len) == 0 &&
                    (size_t)value_len < fields[i].size)
                    snprintf(fields[i].target, fields[i].size, "%.*s", value_len, value);
            }
            if (name_len == 21 && strncasecmp(part, "UseDevelopmentStorage", 21) == 0 &&
                value_len == 4 && strncasecmp(value, "true", 4) == 0) {
                snprintf(out->account, sizeof out->account, "devstoreaccount1");
                snprintf(out->key, sizeof out->key, "%s", devstore_key);
                snprintf(out->endpoint, sizeof out->endpoint,
                         "http://127.0.0.1:10000/devstoreaccount1");
            }
        }
        part = end ? end + 1 : NULL;
    }
}

/* Copies environment variable `name` into target when set and it fits. */
static void s_override(const char *name, char *target, size_t size)
{
    const char *value = s_env(name);
    if (value && strlen(value) < size)
        snprintf(target, size, "%s", value);
}

static void s_az_fini(void *opaque)
{
    s_az_t *state = opaque;
    if (!state)
        return;
    if (state->sas) {
        sodium_memzero(state->sas, strlen(state->sas));
        free(state->sas);
    }
    sodium_memzero(state->key, sizeof state->key);
    free(state);
}

/* Reads the configuration. Errors that make every call fail (no account, a key that is not
 * base64, a bad endpoint) are kept in config_error and reported per call. */
static void s_configure(s_az_t *state, s_settings_t *settings)
{
    const char *connection = s_env("AZURE_STORAGE_CONNECTION_STRING");
    if (connection)
        s_parse_connection_string(connection, settings);
    s_override("AZURE_STORAGE_ACCOUNT", settings->account, sizeof settings->account);
    s_override("AZURE_STORAGE_KEY", settings->key, sizeof settings->key);
    s_override("AZURE_STORAGE_SAS_TOKEN", settings->sas, sizeof settings->sas);
    s_override("AZURE_STORAGE_ENDPOINT", settings->endpoint, sizeof settings->endpoint);
    s_override("AZURE_STORAGE_BLOB_ENDPOINT", settings->endpoint, sizeof settings->endpoint);
    snprintf(state->account, sizeof state->account, "%s", settings->account);

    const char *max_results = s_env("SHOAL_AZ_MAX_RESULTS");
    state->max_results = AZ_MAX_RESULTS;
    if (max_results) {
        long value = strtol(max_results, NULL, 10);
        if (value >= 1 && value <= AZ_MAX_RESULTS)
            state->max_results = (int)value;
    }

    if (settings->endpoint[0]) {
        size_t len = strlen(settings->endpoint);
        while (len > 0 && settings->endpoint[len - 1] == '/')
            len--;
        settings->endpoint[len] = '\0';
        if ((strncmp(settings->endpoint, "http://", 7) != 0 &&
             strncmp(settings->endpoint, "https://", 8) != 0) ||
            strchr(settings->endpoint, '?')) {
            snprintf(state->config_error, sizeof state->config_error,
                     "az: blob endpoint must be an http:// or https:// URL: %.200s",
                     settings->endpoint);
            return;
        }
        snprintf(state->endpoint, sizeof state->endpoint, "%s", settings->endpoint);
    } else if (state->account[0]) {
        snprintf(state->endpoint, sizeof state->endpoint, "%s://%s.blob.%s",
                 settings->protocol[0] ? settings->protocol : "https", state->account,
                 settings->suffix[0] ? settings->suffix : "core.windows.net");
    } else {
        snprintf(state->config_error, sizeof state->config_error,
                 "az: no storage account: set AZURE_STORAGE_ACCOUNT (or "
                 "AZURE_STORAGE_CONNECTION_STRING)");
        return;
    }

    if (settings->sas[0]) {
        state->sas = strdup(settings->sas[0] == '?' ? settings->sas + 1 : settings->sas);
        snprintf(state->auth_source, sizeof state->auth_source, "SAS token for account %s",
                 state->account[0] ? state->account : "(unnamed)");
    } else if (settings->key[0]) {
        if (!state->account[0]) {
            snprintf(state->config_error, sizeof state->config_error,
                     "az: a Shared Key needs the account name (AZURE_STORAGE_ACCOUNT)");
        } else if (sodium_base642bin(state->key, sizeof state->key, settings->key,
                                     strlen(settings->key), NULL, &state->key_len, NULL,
                                     sodium_base64_VARIANT_ORIGINAL) != 0 ||
                   state->key_len == 0) {
            state->key_len = 0;
            snprintf(state->config_error, sizeof state->config_error,
                     "az: the account key is not valid base64");
        } else {
            snprintf(state->auth_source, sizeof state->auth_source,
                     "Shared Key of account %s", state->account);
        }
    } else {
        snprintf(state->auth_source, sizeof state->auth_source,
                 "anonymous: no SAS token or account key configured");
    }
}

static void *s_az_init(ufs_t *ufs, const ufs_options_t *options)
{
    (void)options;
    ufs_xml_init();
    if (sodium_init() < 0) {
        shoal_fail(SHOAL_EIO, "az connector: libsodium failed to initialise");
        return NULL;
    }
    s_az_t *state = calloc(1, sizeof *state);
    s_settings_t *settings = calloc(1, sizeof *settings);
    if (!state || !settings) {
        free(state);
        free(settings);
        shoal_fail(SHOAL_ENOMEM, "az connector: out of memory");
        return NULL;
    }
    state->ufs = ufs;
    s_configure(state, settings);
    sodium_memzero(settings, sizeof *settings);
    free(settings);
    return state;
}

/* ---------------------------------------------------------------------------------------- */
/* Requests                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* Builds ENDPOINT/CONTAINER/BLOB (blob percent-encoded, '/' kept) with `query` (encoded; any
 * order: Shared Key sorts it) and the SAS token. Returns 0 or SHOAL_EINVAL (too long). */
static int s_url(const s_az_t *state, const char *container, const char *blob,
                 const char *query, char *out, size_t out_len)
{
    int n = snprintf(out, out_len, "%s/%s%s", state->endpoint, container, blob[0] ? "/" : "");
    if (n < 0 || (size_t)n >= out_len)
        return shoal_fail(SHOAL_EINVAL, "az: url too long");
    int rc = ufs_url_append_encoded(out, out_len, blob, true);
    if (rc < 0)
        return rc;
    bool has_query = query && *query;
    if (has_query || state->sas) {
        size_t len = strlen(out);
        n = snprintf(out + len, out_len - len, "?%s%s%s", has_query ? query : "",
                     has_query && state->sas ? "&" : "", state->sas ? state->sas : "");
        if (n < 0 || (size_t)n >= out_len - len)
            return shoal_fail(SHOAL_EINVAL, "az: url too long");
    }
    return 0;
}

/* Writes the current time as an RFC 1123 date (x-ms-date), independent of the locale. */
static void s_http_date(char *out, size_t out_len)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(out, out_len, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* curl_slist_append that keeps the list on failure and records it in *ok. */
static struct curl_slist *s_append(struct curl_slist *list, const char *line, bool *ok)
{
    struct curl_slist *grown = *ok ? curl_slist_append(list, line) : NULL;
    if (!grown)
        *ok = false;
    return grown ? grown : list;
}

/* Performs `request`: x-ms-version, x-ms-date, If-Match "version" when `version` is set, and
 * with a Shared Key the Authorization header over all of them (and over the Range header the
 * HTTP layer adds for a ranged request). Returns as ufs_http_perform. */
static int s_perform(const s_az_t *state, ufs_http_request_t *request, const char *version,
                     ufs_http_response_t *response)
{
    struct curl_slist *headers = NULL;
    bool ok = true;
    char line[UFS_VERSION_MAX + 64], date[64];
    s_http_date(date, sizeof date);
    snprintf(line, sizeof line, "x-ms-date: %s", date);
    headers = s_append(headers, line, &ok);
    headers = s_append(headers, "x-ms-version: " AZ_VERSION, &ok);
    if (version) {
        snprintf(line, sizeof line, "If-Match: \"%s\"", version);
        headers = s_append(headers, line, &ok);
    }
    if (ok && state->key_len) {
        /* Sign what will be sent: these headers plus the Range libcurl adds (ufs_conn.h). */
        struct curl_slist *signed_headers = headers, *range = NULL;
        if (request->ranged) {
            snprintf(line, sizeof line, "Range: bytes=%" PRIu64 "-%" PRIu64,
                     request->range_offset, request->range_offset + request->range_length - 1);
            range = curl_slist_append(NULL, line);
            ok = range != NULL;
            if (range) {
                range->next = headers;
                signed_headers = range;
            }
        }
        char *sts = malloc(UFS_CLOUD_URL_MAX + 2048);
        char signature[64];
        ok = ok && sts &&
             ufs_az_string_to_sign(request->method, request->url, signed_headers, state->account,
                                   sts, UFS_CLOUD_URL_MAX + 2048) == 0 &&
             ufs_az_sign(sts, state->key, state->key_len, signature, sizeof signature) == 0;
        free(sts);
        if (range) {
            range->next = NULL;
            curl_slist_free_all(range);
        }
        if (ok) {
            snprintf(line, sizeof line, "Authorization: SharedKey %s:%s", state->account,
                     signature);
            headers = s_append(headers, line, &ok);
        }
    }
    int rc;
    if (!ok) {
        memset(response, 0, sizeof *response);
        rc = shoal_fail(SHOAL_ENOMEM, "az: cannot build the request headers");
    } else {
        request->headers = headers;
        rc = ufs_http_perform(state->ufs, request, response); /* redacts the SAS itself */
    }
    curl_slist_free_all(headers);
    return rc;
}

/* Maps an unexpected reply to an error with the uri, status and Azure's error code (the
 * x-ms-error-code header, present on HEAD replies too, else the XML body). */
static int s_fail(const s_az_t *state, const char *method, const char *uri,
                  const ufs_http_response_t *response)
{
    char code[128];
    if (!ufs_http_header(response, "x-ms-error-code", code, sizeof code))
        ufs_xml_error_code(response->body, response->body_len, code, sizeof code);
    return ufs_cloud_status_fail(response->status, method, uri, code, state->auth_source);
}

/* Fetches one List Blobs page of `prefix` (one level with delimiter '/', or everything below
 * it when recursive) into *page, from `marker` (NULL first). */
static int s_list_page(const s_az_t *state, const char *uri, const char *container,
                       const char *prefix, bool recursive, int max_results, const char *marker,
                       ufs_xml_listing_t *page)
{
    char query[UFS_CLOUD_URL_MAX];
    snprintf(query, sizeof query, "restype=container&comp=list&maxresults=%d%s", max_results,
             recursive ? "" : "&delimiter=%2F");
    int rc = 0;
    if (prefix[0]) {
        strcat(query, "&prefix=");
        rc = ufs_url_append_encoded(query, sizeof query, prefix, false);
    }
    if (rc == 0 && marker) {
        size_t len = strlen(query);
        if (len + 8 >= sizeof query)
            return shoal_fail(SHOAL_EINVAL, "az: url too long");
        strcat(query, "&marker=");
        rc = ufs_url_append_encoded(query, sizeof query, marker, false);
    }
    char url[UFS_CLOUD_URL_MAX];
    if (rc == 0)
        rc = s_url(state, container, "", query, url, sizeof url);
    if (rc < 0)
        return rc;
    ufs_http_request_t request = {.method = "GET", .url = url, .collect_body = true,
                                  .body_max = UFS_XML_BODY_MAX};
    ufs_http_response_t response;
    rc = s_perform(state, &request, NULL, &response);
    if (rc == 0 && response.status != 200)
        rc = s_fail(state, "LIST", uri, &response);
    else if (rc == 0)
        rc = ufs_xml_parse_listing(response.body, response.body_len, UFS_XML_AZ, page);
    ufs_http_response_fini(&response);
    return rc;
}

static int s_begin(const s_az_t *state, const char *uri, char *container, const char **blob)
{
    if (state->config_error[0])
        return shoal_fail(SHOAL_EACCES, "%s (for %.200s)", state->config_error, uri);
    return ufs_cloud_uri_split(uri, "az", container, 64, blob);
}

/* ---------------------------------------------------------------------------------------- */
/* Operations                                                                                */
/* ---------------------------------------------------------------------------------------- */

/* A directory is a prefix with at least one blob below it; the container itself is one when
 * it exists. `dir_prefix` is "" or ends with '/'. */
static int s_stat_dir(const s_az_t *state, const char *uri, const char *container,
                      const char *dir_prefix, ufs_stat_t *out)
{
    ufs_xml_listing_t page;
    int rc = s_list_page(state, uri, container, dir_prefix, false, 1, NULL, &page);
    if (rc < 0)
        return rc;
    bool found = page.object_count + page.prefix_count > 0 || !dir_prefix[0];
    ufs_xml_listing_fini(&page);
    if (!found)
        return shoal_fail(SHOAL_ENOENT, "STAT %s: no such blob or prefix", uri);
    memset(out, 0, sizeof *out);
    out->is_dir = true;
    return 0;
}

static int s_az_stat(void *opaque, const char *uri, ufs_stat_t *out)
{
    const s_az_t *state = opaque;
    char container[64];
    const char *blob;
    int rc = s_begin(state, uri, container, &blob);
    if (rc < 0)
        return rc;
    size_t blob_len = strlen(blob);
    if (blob_len == 0 || blob[blob_len - 1] == '/')
        return s_stat_dir(state, uri, container, blob, out);

    char url[UFS_CLOUD_URL_MAX];
    rc = s_url(state, container, blob, NULL, url, sizeof url);
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
        char *dir_prefix = malloc(blob_len + 2);
        if (!dir_prefix) {
            rc = shoal_fail(SHOAL_ENOMEM, "az: out of memory");
        } else {
            snprintf(dir_prefix, blob_len + 2, "%s/", blob);
            rc = s_stat_dir(state, uri, container, dir_prefix, out);
            free(dir_prefix);
        }
    } else if (rc == 0) {
        rc = s_fail(state, "HEAD", uri, &response);
    }
    ufs_http_response_fini(&response);
    return rc;
}

/* Lists one level (delimiter '/') or everything below, following NextMarker to the end. */
static int s_az_list(void *opaque, const char *uri, bool recursive, ufs_list_t *out)
{
    const s_az_t *state = opaque;
    char container[64];
    const char *blob;
    int rc = s_begin(state, uri, container, &blob);
    if (rc < 0)
        return rc;
    size_t blob_len = strlen(blob);
    char *prefix = malloc(blob_len + 2);
    if (!prefix)
        return shoal_fail(SHOAL_ENOMEM, "az: out of memory");
    snprintf(prefix, blob_len + 2, "%s%s", blob, blob_len && blob[blob_len - 1] != '/' ? "/" : "");
    char *marker = NULL;
    do {
        ufs_xml_listing_t page;
        rc = s_list_page(state, uri, container, prefix, recursive, state->max_results, marker,
                         &page);
        if (rc < 0)
            break;
        rc = ufs_cloud_push_listing(out, "az", container, prefix, &page);
        if (rc == 0 && page.next_token && marker && strcmp(page.next_token, marker) == 0)
            rc = shoal_fail(SHOAL_EPROTO, "LIST %s: the server repeated a marker", uri);
        free(marker);
        marker = page.next_token; /* taken from the page */
        page.next_token = NULL;
        ufs_xml_listing_fini(&page);
    } while (rc == 0 && marker);
    free(marker);
    free(prefix);
    return rc;
}

/* A ranged GET straight into buf, pinned with If-Match (412 -> ESTALE). A 416 past the end is
 * a read of 0 bytes once a stat confirms the version (a 416 carries no ETag). */
static int64_t s_az_read(void *opaque, const char *uri, const char *version, uint64_t offset,
                         void *buf, size_t length)
{
    const s_az_t *state = opaque;
    char container[64];
    const char *blob;
    int rc = s_begin(state, uri, container, &blob);
    if (rc < 0)
        return rc;
    if (!blob[0] || blob[strlen(blob) - 1] == '/')
        return shoal_fail(SHOAL_EISDIR, "read of %s: a directory", uri);
    if (length == 0)
        return 0;
    char url[UFS_CLOUD_URL_MAX];
    rc = s_url(state, container, blob, NULL, url, sizeof url);
    if (rc < 0)
        return rc;
    ufs_http_request_t request = {.method = "GET", .url = url, .ranged = true,
                                  .range_offset = offset, .range_length = length, .buf = buf,
                                  .buf_len = length};
    ufs_http_response_t response;
    rc = s_perform(state, &request, version, &response);
    int64_t result = rc;
    if (rc == SHOAL_EIO && response.status == 206) {
        /* Azurite answers a range that starts at or past the end with a 206 whose
         * Content-Range ends before it starts ("bytes 5-4/5", "bytes 0--1/0"), which the HTTP
         * layer rightly refuses. Where stat shows the offset is at or past the end, that was
         * an empty read; anything else stays the error it was. */
        char saved[512];
        snprintf(saved, sizeof saved, "%s", shoal_last_error());
        ufs_stat_t now;
        if (s_az_stat(opaque, uri, &now) == 0 && !now.is_dir && offset >= now.size)
            result = ufs_cloud_past_end(uri, version, &now);
        else
            result = shoal_fail(SHOAL_EIO, "%s", saved);
    } else if (rc == 0) {
        if (response.status == 206 || response.status == 200) {
            result = (int64_t)response.body_len; /* 200: only an empty body gets here */
        } else if (response.status == 416) {
            ufs_stat_t now;
            result = version ? s_az_stat(opaque, uri, &now) : 0;
            if (result == 0 && version)
                result = ufs_cloud_past_end(uri, version, &now);
        } else {
            result = s_fail(state, "GET", uri, &response);
        }
    }
    ufs_http_response_fini(&response);
    return result;
}

const ufs_connector_t ufs_az_connector = {
    .scheme = "az",
    .init = s_az_init,
    .fini = s_az_fini,
    .stat = s_az_stat,
    .list = s_az_list,
    .read = s_az_read,
};
