/*
 * ufs_redact.c - secrets kept out of messages: every http(s):// URL in a text has its password
 * and the values of its query parameters (except the listing parameters on an allowlist)
 * replaced by "<redacted>", and ufs_fail, the UFS's shoal_fail, passes every message through
 * it. See ufs_redact.h.
 */
#include "ufs_redact.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shoal_err.h"

/* Query parameters whose values are shown in messages: the listing parameters the connectors
 * send themselves (S3 ListObjectsV2, Azure List Blobs, the Hub's tree API). Every other value
 * is hidden. An allowlist, not a list of secrets: a presigned URL of a service we never heard
 * of (CloudFront "Signature", GCS "X-Goog-Signature", a SAS "sig") stays hidden too. */
static const char *const s_plain_params[] = {
    "list-type",   "prefix",        "delimiter",   "max-keys",  "continuation-token",
    "start-after", "encoding-type", "fetch-owner", "restype",   "comp",
    "maxresults",  "marker",        "include",     "recursive", "expand",
    "cursor",      "limit",
};

static bool s_plain_param(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof s_plain_params / sizeof s_plain_params[0]; i++)
        if (strlen(s_plain_params[i]) == len && strncasecmp(name, s_plain_params[i], len) == 0)
            return true;
    return false;
}

/* Whether the URL token ends at this byte: whitespace, quotes and angle brackets never occur
 * raw in the URLs we build. */
static bool s_url_end(char c)
{
    return c == '\0' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '\'' ||
           c == '<' || c == '>';
}

/* Output cursor of ufs_redact: appends while there is room, always NUL-terminated. */
typedef struct s_out {
    char *text; /* the caller's buffer */
    size_t cap; /* its size, > 0 */
    size_t len; /* bytes written */
} s_out_t;

static void s_put(s_out_t *out, const char *bytes, size_t n)
{
    size_t room = out->cap - 1 - out->len;
    if (n > room)
        n = room;
    memcpy(out->text + out->len, bytes, n);
    out->len += n;
    out->text[out->len] = '\0';
}

/* Copies one URL [url, end) into out with its password and query values hidden. */
static void s_redact_url(s_out_t *out, const char *url, const char *end)
{
    const char *authority = strstr(url, "://") + 3;
    const char *path = authority;
    while (path < end && *path != '/' && *path != '?' && *path != '#')
        path++;
    const char *at = NULL;
    for (const char *p = authority; p < path; p++)
        if (*p == '@')
            at = p;
    if (at) {
        const char *colon = memchr(authority, ':', (size_t)(at - authority));
        s_put(out, url, (size_t)((colon ? colon : at) - url));
        s_put(out, colon ? ":<redacted>@" : "@", colon ? 12 : 1);
        url = at + 1;
    }
    const char *query = memchr(url, '?', (size_t)(end - url));
    if (!query) {
        s_put(out, url, (size_t)(end - url));
        return;
    }
    s_put(out, url, (size_t)(query + 1 - url));
    for (const char *param = query + 1; param < end;) {
        const char *param_end = param;
        while (param_end < end && *param_end != '&')
            param_end++;
        const char *equals = memchr(param, '=', (size_t)(param_end - param));
        size_t name_len = (size_t)((equals ? equals : param_end) - param);
        if (s_plain_param(param, name_len)) {
            s_put(out, param, (size_t)(param_end - param));
        } else if (equals) {
            s_put(out, param, name_len + 1);
            if (param_end > equals + 1)
                s_put(out, "<redacted>", 10);
        } else if (param_end > param) {
            s_put(out, "<redacted>", 10);
        }
        if (param_end < end)
            s_put(out, "&", 1);
        param = param_end + 1;
    }
}

size_t ufs_redact(const char *text, char *out, size_t out_len)
{
    if (!out || out_len == 0)
        return 0;
    s_out_t cursor = {.text = out, .cap = out_len, .len = 0};
    out[0] = '\0';
    const char *copied = text; /* text before this is in out */
    for (const char *p = text; (p = strstr(p, "://"));) {
        /* The scheme: letters, digits, '+', '-', '.' back to a non-scheme byte. */
        const char *start = p;
        while (start > copied &&
               ((start[-1] >= 'a' && start[-1] <= 'z') || (start[-1] >= 'A' && start[-1] <= 'Z') ||
                (start[-1] >= '0' && start[-1] <= '9') || start[-1] == '+' || start[-1] == '-' ||
                start[-1] == '.'))
            start--;
        const char *end = p + 3;
        while (!s_url_end(*end))
            end++;
        /* "GET URL: detail": a ':' or ',' ending the token is punctuation, not the URL's. */
        while (end > p + 3 && (end[-1] == ':' || end[-1] == ','))
            end--;
        size_t scheme_len = (size_t)(p - start);
        if (!((scheme_len == 4 && strncasecmp(start, "http", 4) == 0) ||
              (scheme_len == 5 && strncasecmp(start, "https", 5) == 0))) {
            p += 3; /* not an HTTP URL: s3://, hf://, file:// carry no credentials */
            continue;
        }
        s_put(&cursor, copied, (size_t)(start - copied));
        s_redact_url(&cursor, start, end);
        copied = p = end;
    }
    s_put(&cursor, copied, strlen(copied));
    return cursor.len;
}

int ufs_fail(int code, const char *fmt, ...)
{
    char stack[1024], *text = stack;
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(stack, sizeof stack, fmt, ap);
    if (n >= (int)sizeof stack) {
        char *heap = malloc((size_t)n + 1);
        if (heap) {
            vsnprintf(heap, (size_t)n + 1, fmt, again);
            text = heap;
        } /* else the cut text: a value cut short is still inside its URL and still hidden */
    }
    va_end(again);
    va_end(ap);
    if (n < 0)
        stack[0] = '\0';
    char redacted[UFS_ERROR_MAX];
    ufs_redact(text, redacted, sizeof redacted);
    if (text != stack)
        free(text);
    return shoal_fail(code, "%s", redacted);
}
