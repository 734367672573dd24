/*
 * ufs_az_sign.c - the Azure Storage Shared Key signature of the az:// connector: the
 * string-to-sign (verb, standard headers, canonicalized x-ms-* headers and resource) and its
 * HMAC-SHA256 under the account key (libsodium). I/O free. See ufs_az_sign.h.
 */
#include "ufs_az_sign.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "coding.h"
#include "ufs_conn.h"
#include "ufs_uri.h"

#define AZ_HEADERS_MAX 64 /* x-ms-* headers or query parameters in one request */

/* An output cursor: appends with bounds checks. */
typedef struct s_out {
    char *buf;  /* destination */
    size_t len; /* capacity of buf */
    size_t pos; /* bytes written, < len; buf[pos] == '\0' */
    int rc;     /* 0, or SHOAL_EMSGSIZE once anything did not fit */
} s_out_t;

static void s_put(s_out_t *out, const char *text, size_t len)
{
    if (out->rc < 0)
        return;
    if (out->pos + len >= out->len) {
        out->rc = SHOAL_EMSGSIZE;
        return;
    }
    memcpy(out->buf + out->pos, text, len);
    out->pos += len;
    out->buf[out->pos] = '\0';
}

static void s_puts(s_out_t *out, const char *text)
{
    s_put(out, text, strlen(text));
}

/* Value of header `name` in `headers` (trimmed, "" when absent) into value. */
static void s_header(const struct curl_slist *headers, const char *name, char *value,
                     size_t value_len)
{
    size_t name_len = strlen(name);
    value[0] = '\0';
    for (const struct curl_slist *h = headers; h; h = h->next) {
        if (strncasecmp(h->data, name, name_len) == 0 && h->data[name_len] == ':') {
            if (ufs_copy_trimmed(h->data + name_len + 1, h->data + strlen(h->data), value,
                                 value_len) < 0)
                value[0] = '\0';
            return;
        }
    }
}

/* A name:value pair for sorting canonicalized headers and query parameters. */
typedef struct s_pair {
    char *name;  /* lowercased; malloc'd */
    char *value; /* folded (headers) or decoded (query); malloc'd */
} s_pair_t;

static int s_pair_cmp(const void *a, const void *b)
{
    const s_pair_t *x = a, *y = b;
    int rc = strcmp(x->name, y->name);
    return rc ? rc : strcmp(x->value, y->value);
}

static void s_pairs_free(s_pair_t *pairs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(pairs[i].name);
        free(pairs[i].value);
    }
}

/* Lowercased copy of [start, end). */
static char *s_lower_dup(const char *start, const char *end)
{
    char *copy = strndup(start, (size_t)(end - start));
    for (char *p = copy; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return copy;
}

/* Copy of a header value with leading/trailing whitespace removed and inner runs of
 * whitespace folded to one space, as the spec's canonicalized headers require. */
static char *s_fold_dup(const char *value)
{
    char *copy = malloc(strlen(value) + 1);
    size_t pos = 0;
    bool space = false;
    if (!copy)
        return NULL;
    for (const char *p = value; *p; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            space = pos > 0;
            continue;
        }
        if (space)
            copy[pos++] = ' ';
        space = false;
        copy[pos++] = *p;
    }
    copy[pos] = '\0';
    return copy;
}

/* Appends the canonicalized x-ms-* headers. */
static int s_canonical_headers(const struct curl_slist *headers, s_out_t *out)
{
    s_pair_t pairs[AZ_HEADERS_MAX];
    size_t count = 0;
    int rc = 0;
    for (const struct curl_slist *h = headers; h && rc == 0; h = h->next) {
        const char *colon = strchr(h->data, ':');
        if (strncasecmp(h->data, "x-ms-", 5) != 0 || !colon)
            continue;
        if (count == AZ_HEADERS_MAX) {
            rc = SHOAL_EMSGSIZE;
            break;
        }
        const char *name_end = colon;
        while (name_end > h->data && (name_end[-1] == ' ' || name_end[-1] == '\t'))
            name_end--;
        pairs[count].name = s_lower_dup(h->data, name_end);
        pairs[count].value = s_fold_dup(colon + 1);
        if (!pairs[count].name || !pairs[count].value)
            rc = SHOAL_ENOMEM;
        count++;
    }
    if (rc == 0) {
        qsort(pairs, count, sizeof *pairs, s_pair_cmp);
        for (size_t i = 0; i < count; i++) {
            s_puts(out, pairs[i].name);
            s_puts(out, ":");
            s_puts(out, pairs[i].value);
            s_puts(out, "\n");
        }
    }
    s_pairs_free(pairs, count);
    return rc;
}

/* Appends the canonicalized resource for `url`: "/account" + encoded path, then the query
 * parameters, decoded and sorted. */
static int s_canonical_resource(const char *url, const char *account, s_out_t *out)
{
    const char *host = strstr(url, "://");
    if (!host)
        return SHOAL_EINVAL;
    host += 3;
    const char *query = strchr(host, '?');
    const char *path = strchr(host, '/');
    if (path && query && path > query)
        path = NULL;
    const char *path_end = query ? query : host + strlen(host);
    s_puts(out, "/");
    s_puts(out, account);
    if (path)
        s_put(out, path, (size_t)(path_end - path));
    else
        s_puts(out, "/");
    if (!query)
        return 0;

    s_pair_t pairs[AZ_HEADERS_MAX];
    size_t count = 0;
    int rc = 0;
    for (const char *param = query + 1; *param && rc == 0;) {
        const char *amp = strchr(param, '&');
        const char *param_end = amp ? amp : param + strlen(param);
        const char *equals = memchr(param, '=', (size_t)(param_end - param));
        const char *name_end = equals ? equals : param_end;
        if (param_end > param) {
            if (count == AZ_HEADERS_MAX) {
                rc = SHOAL_EMSGSIZE;
                break;
            }
            size_t value_len = equals ? (size_t)(param_end - equals - 1) : 0;
            char *name = malloc((size_t)(name_end - param) + 1);
            pairs[count].name = name;
            pairs[count].value = malloc(value_len + 1);
            count++;
            if (!name || !pairs[count - 1].value) {
                rc = SHOAL_ENOMEM;
                break;
            }
            rc =
                pct_decode(param, (size_t)(name_end - param), name, (size_t)(name_end - param) + 1);
            for (char *p = name; rc == 0 && *p; p++)
                *p = (char)tolower((unsigned char)*p);
            if (rc == 0)
                rc = pct_decode(equals ? equals + 1 : "", value_len, pairs[count - 1].value,
                                value_len + 1);
        }
        param = amp ? amp + 1 : param_end;
    }
    if (rc == 0) {
        qsort(pairs, count, sizeof *pairs, s_pair_cmp);
        for (size_t i = 0; i < count; i++) {
            bool same = i > 0 && strcmp(pairs[i].name, pairs[i - 1].name) == 0;
            if (same) {
                s_puts(out, ",");
            } else {
                s_puts(out, "\n");
                s_puts(out, pairs[i].name);
                s_puts(out, ":");
            }
            s_puts(out, pairs[i].value);
        }
    }
    s_pairs_free(pairs, count);
    return rc;
}

int ufs_az_string_to_sign(const char *method, const char *url, const struct curl_slist *headers,
                          const char *account, char *out, size_t out_len)
{
    static const char *const standard[] = {
        "Content-Encoding",
        "Content-Language",
        "Content-Length",
        "Content-MD5",
        "Content-Type",
        "Date",
        "If-Modified-Since",
        "If-Match",
        "If-None-Match",
        "If-Unmodified-Since",
        "Range",
    };
    s_out_t cursor = {.buf = out, .len = out_len, .pos = 0, .rc = 0};
    if (out_len == 0)
        return SHOAL_EMSGSIZE;
    out[0] = '\0';
    s_puts(&cursor, method);
    s_puts(&cursor, "\n");
    for (size_t i = 0; i < sizeof standard / sizeof standard[0]; i++) {
        char value[1024];
        s_header(headers, standard[i], value, sizeof value);
        if (strcmp(standard[i], "Content-Length") == 0 && strcmp(value, "0") == 0)
            value[0] = '\0';
        s_puts(&cursor, value);
        s_puts(&cursor, "\n");
    }
    int rc = s_canonical_headers(headers, &cursor);
    if (rc == 0)
        rc = s_canonical_resource(url, account, &cursor);
    if (rc == 0)
        rc = cursor.rc;
    if (rc < 0) {
        out[0] = '\0';
        return shoal_fail(rc, "az: cannot build the string to sign for %s", method);
    }
    return 0;
}

int ufs_az_sign(const char *string_to_sign, const unsigned char *key, size_t key_len, char *out,
                size_t out_len)
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state state;
    if (out_len < sodium_base64_ENCODED_LEN(sizeof mac, sodium_base64_VARIANT_ORIGINAL))
        return SHOAL_EMSGSIZE;
    crypto_auth_hmacsha256_init(&state, key, key_len);
    crypto_auth_hmacsha256_update(&state, (const unsigned char *)string_to_sign,
                                  strlen(string_to_sign));
    crypto_auth_hmacsha256_final(&state, mac);
    sodium_bin2base64(out, out_len, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(&state, sizeof state);
    return 0;
}
