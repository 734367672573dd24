/*
 * ufs_az.c - the az:// connector: Azure Blob Storage (and Azurite). Stat is Get Blob Properties
 * (HEAD; a name with blobs below it is a directory), reads are ranged GETs pinned to a version
 * with If-Match, listings are List Blobs pages. Requests carry a SAS token or are signed with
 * Shared Key (HMAC-SHA256, ufs_az_string_to_sign); configuration comes from the AZURE_STORAGE_*
 * environment variables and the connection string, read once when the UFS handle is made.
 */
#include "ufs_cloud.h"
#include "ufs_az_sign.h"
#include "ufs_conn.h"
#include "coding.h"
#include "ufs_uri.h"
#include "ufs_xml.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#define AZ_VERSION     "2021-08-06" /* x-ms-version we speak */
#define AZ_MAX_RESULTS 5000         /* List Blobs' own maximum page */
#define AZ_KEY_MAX     128          /* decoded account key (64 bytes in practice) */

/* The connector's configuration; read-only after init, so shared by every thread.
 * Invariant: at most one of sas and key_len is set; neither means anonymous requests. */
typedef struct s_az {
    ufs_t *ufs;                    /* owner, for the HTTP layer; borrowed */
    char account[64];              /* storage account name */
    char endpoint[512];            /* blob endpoint without a trailing '/' */
    char *sas;                     /* SAS token without its '?' (malloc'd), or NULL */
    unsigned char key[AZ_KEY_MAX]; /* decoded Shared Key */
    size_t key_len;                /* bytes in key; 0 when not signing */
    char auth_source[160];         /* how requests authenticate, for error messages */
    int max_results;               /* List Blobs maxresults (SHOAL_AZ_MAX_RESULTS) */
    char config_error[512];        /* when set, every call fails with SHOAL_EACCES and this */
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
    char account[64];   /* AccountName */
    char key[256];      /* AccountKey, base64 */
    char endpoint[512]; /* BlobEndpoint */
    char sas[4096];     /* SharedAccessSignature */
    char protocol[8];   /* DefaultEndpointsProtocol: "https" or "http" */
    char suffix[128];   /* EndpointSuffix, e.g. "core.windows.net" */
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
            snprintf(state->auth_source, sizeof state->auth_source, "Shared Key of account %s",
                     state->account);
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
static int s_url(const void *opaque, const char *container, const char *blob, const char *query,
                 char *out, size_t out_len)
{
    const s_az_t *state = opaque;
    int n = snprintf(out, out_len, "%s/%s%s", state->endpoint, container, blob[0] ? "/" : "");
    if (n < 0 || (size_t)n >= out_len)
        return shoal_fail(SHOAL_EINVAL, "az: url too long");
    int rc = pct_encode_append(out, out_len, blob, true) < 0
                 ? ufs_fail(SHOAL_EINVAL, "url too long")
                 : 0;
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
static int s_perform(const void *opaque, ufs_http_request_t *request, const char *version,
                     ufs_http_response_t *response)
{
    const s_az_t *state = opaque;
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
            snprintf(line, sizeof line, "Range: bytes=%" PRIu64 "-%" PRIu64, request->range_offset,
                     request->range_offset + request->range_length - 1);
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
static int s_fail(const void *opaque, const char *method, const char *uri,
                  const ufs_http_response_t *response)
{
    const s_az_t *state = opaque;
    char code[128];
    if (!ufs_http_header(response, "x-ms-error-code", code, sizeof code))
        ufs_xml_error_code(response->body, response->body_len, code, sizeof code);
    return ufs_cloud_status_fail(response->status, method, uri, code, state->auth_source);
}

/* Writes the List Blobs query of one page of `prefix` (one level with delimiter '/', or
 * everything below it when recursive), from `marker` (NULL first). */
static int s_list_query(char *query, size_t query_len, const char *prefix, bool recursive,
                        int max_results, const char *marker)
{
    snprintf(query, query_len, "restype=container&comp=list&maxresults=%d%s", max_results,
             recursive ? "" : "&delimiter=%2F");
    int rc = 0;
    if (prefix[0]) {
        strcat(query, "&prefix=");
        rc = pct_encode_append(query, query_len, prefix, false) < 0
                 ? ufs_fail(SHOAL_EINVAL, "url too long")
                 : 0;
    }
    if (rc == 0 && marker) {
        size_t len = strlen(query);
        if (len + 8 >= query_len)
            return shoal_fail(SHOAL_EINVAL, "az: url too long");
        strcat(query, "&marker=");
        rc = pct_encode_append(query, query_len, marker, false) < 0
                 ? ufs_fail(SHOAL_EINVAL, "url too long")
                 : 0;
    }
    return rc;
}

static const ufs_cloud_ops_t s_az_ops = {
    .scheme = "az",
    .entry_name = "blob",
    .marker_name = "marker",
    .dialect = UFS_XML_AZ,
    .bad_range_past_end = true, /* Azurite: see ufs_cloud_read */
    .list_query = s_list_query,
    .url = s_url,
    .perform = s_perform,
    .fail = s_fail,
    .head_fail = NULL, /* the x-ms-error-code header names the error on HEAD replies too */
};

/* ---------------------------------------------------------------------------------------- */
/* Operations                                                                                */
/* ---------------------------------------------------------------------------------------- */

/* Get Blob Properties, else a directory when blobs are below (ufs_cloud_stat). */
static int s_az_stat(void *opaque, const char *uri, ufs_stat_t *out)
{
    const s_az_t *state = opaque;
    return ufs_cloud_stat(&s_az_ops, state, state->config_error, uri, out);
}

/* Lists one level (delimiter '/') or everything below, following NextMarker to the end. */
static int s_az_list(void *opaque, const char *uri, bool recursive, ufs_list_t *out)
{
    const s_az_t *state = opaque;
    return ufs_cloud_list(&s_az_ops, state, state->config_error, uri, recursive, state->max_results,
                          out);
}

/* A ranged GET straight into buf, pinned with If-Match (412 -> ESTALE). A 416 past the end is
 * a read of 0 bytes once a stat confirms the version (a 416 carries no ETag). */
static int64_t s_az_read(void *opaque, const char *uri, const char *version, uint64_t offset,
                         void *buf, size_t length, const ufs_progress_t *progress,
                         ufs_stat_t *stat_out)
{
    const s_az_t *state = opaque;
    return ufs_cloud_read(&s_az_ops, state, state->config_error, uri, version, offset, buf, length,
                          progress, stat_out);
}

const ufs_connector_t ufs_az_connector = {
    .scheme = "az",
    .init = s_az_init,
    .fini = s_az_fini,
    .stat = s_az_stat,
    .list = s_az_list,
    .read = s_az_read,
};
