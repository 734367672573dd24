/*
 * ufs_uri.c - URI splitting and the store's percent coding: "SCHEME://container/path" split
 * for the s3:// and az:// connectors, the RFC 3986 percent-encoder every HTTP connector builds
 * URLs with, and the percent-decoder of listing names and query values. The only percent
 * coding in store/, so swapping it for proto/'s shared coder is one edit. See ufs_uri.h.
 */
#include "ufs_uri.h"

#include <ctype.h>
#include <string.h>

#include "ufs_conn.h"

int ufs_cloud_uri_split(const char *uri, const char *scheme, char *container, size_t container_len,
                        const char **path)
{
    size_t scheme_len = strlen(scheme);
    if (!uri || strncmp(uri, scheme, scheme_len) != 0 || strncmp(uri + scheme_len, "://", 3))
        return shoal_fail(SHOAL_EINVAL, "not a %s:// uri: %s", scheme, uri ? uri : "(null)");
    if (strlen(uri) >= UFS_URI_MAX)
        return shoal_fail(SHOAL_EINVAL, "%s uri longer than %d bytes", scheme, UFS_URI_MAX);
    const char *start = uri + scheme_len + 3;
    const char *slash = strchr(start, '/');
    size_t len = slash ? (size_t)(slash - start) : strlen(start);
    if (len == 0 || len > 63 || len >= container_len)
        return shoal_fail(SHOAL_EINVAL, "%s uri needs a bucket/container of 1-63 characters: %s",
                          scheme, uri);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)start[i];
        if (!isalnum(c) && c != '.' && c != '-' && c != '_')
            return shoal_fail(SHOAL_EINVAL, "bad character in bucket/container name: %s", uri);
    }
    memcpy(container, start, len);
    container[len] = '\0';
    *path = slash ? slash + 1 : start + len;
    return 0;
}

static int s_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ufs_pct_decode(const char *in, size_t len, char *out, size_t out_len)
{
    size_t pos = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= len)
                return SHOAL_EINVAL;
            int hi = s_hex(in[i + 1]), lo = s_hex(in[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return SHOAL_EINVAL;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (pos + 1 >= out_len)
            return SHOAL_EMSGSIZE;
        out[pos++] = c;
    }
    if (pos >= out_len)
        return SHOAL_EMSGSIZE;
    out[pos] = '\0';
    return 0;
}

int ufs_url_append_encoded(char *out, size_t out_len, const char *text, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(out);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        /* ASCII ranges, not isalnum(): that depends on the locale and may call bytes >= 0x80
         * letters, which would then go into the URL raw. */
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~' ||
                     (keep_slash && *p == '/');
        if (len + (plain ? 1 : 3) >= out_len)
            return ufs_fail(SHOAL_EINVAL, "url too long");
        if (plain) {
            out[len++] = (char)*p;
        } else {
            out[len++] = '%';
            out[len++] = hex[*p >> 4];
            out[len++] = hex[*p & 15];
        }
    }
    out[len] = '\0';
    return 0;
}

int ufs_copy_trimmed(const char *start, const char *end, char *out, size_t out_len)
{
    while (start < end && (*start == ' ' || *start == '\t'))
        start++;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    size_t len = (size_t)(end - start);
    if (len >= out_len)
        return SHOAL_EMSGSIZE;
    memcpy(out, start, len);
    out[len] = '\0';
    return 0;
}
