/*
 * uri.c - the URI normal form (uri.h): node/mount.c's normaliser, moved here unchanged so that
 * the node's mount check and the client's placement hash see one spelling of every name. Pure
 * string work: every refusal records a last error that names the URI and the reason.
 */
#include "uri.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"

#define URI_SMALL_PATH 512 /* paths up to this many bytes are normalised without allocating */

/* A path segment: a slice of the decoded path. */
typedef struct s_segment {
    const char *start; /* first byte */
    size_t len;        /* bytes */
} s_segment_t;

static bool s_is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* Decodes the escapes of `path` (length len) into `dec` (room for len + 1 bytes: decoding
 * never lengthens), keeping the escapes of reserved characters with upper-case hex digits.
 * Returns 0 or SHOAL_EINVAL for a malformed or forbidden escape or character. */
static int s_decode_path(const char *uri, const char *path, size_t len, char *dec)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (s_is_control(c))
            return shoal_fail(SHOAL_EINVAL, "uri has a control character (0x%02x): %.200s", c, uri);
        if (c == '?' || c == '#')
            return shoal_fail(SHOAL_EINVAL, "uri has a '%c' (escape it as %%%02X): %.200s", c, c,
                              uri);
        if (c != '%') {
            dec[out++] = (char)c;
            continue;
        }
        if (len - i < 3)
            return shoal_fail(SHOAL_EINVAL, "uri has a truncated %% escape: %.200s", uri);
        int h = hex_digit_value(path[i + 1]);
        int l = hex_digit_value(path[i + 2]);
        if (h < 0 || l < 0)
            return shoal_fail(SHOAL_EINVAL, "uri has a malformed %% escape: %.200s", uri);
        unsigned char v = (unsigned char)(h * 16 + l);
        if (s_is_control(v))
            return shoal_fail(SHOAL_EINVAL, "uri has an escaped control character (%%%02X): %.200s",
                              v, uri);
        if (v == '/' || v == '\\')
            return shoal_fail(SHOAL_EINVAL, "uri has an escaped '%c' (%%%02X): %.200s", v, v, uri);
        if (pct_is_unreserved(v)) {
            dec[out++] = (char)v;
        } else {
            dec[out++] = '%';
            dec[out++] = hex[v >> 4];
            dec[out++] = hex[v & 15];
        }
        i += 2;
    }
    dec[out] = '\0';
    return 0;
}

/* Appends `len` bytes to out at *pos, keeping room for the NUL. Returns 0 or SHOAL_EINVAL. */
static int s_append(char *out, size_t out_len, size_t *pos, const char *data, size_t len,
                    const char *uri)
{
    if (*pos + len + 1 > out_len || *pos + len > URI_MAX)
        return shoal_fail(SHOAL_EINVAL, "uri too long: %.200s", uri);
    memcpy(out + *pos, data, len);
    *pos += len;
    out[*pos] = '\0';
    return 0;
}

/*
 * The scheme and authority are checked and copied; the path is decoded into a scratch copy,
 * split on '/', and its dot segments are resolved with a stack of slices (RFC 3986
 * remove_dot_segments, except that a `..` at the root is an error instead of being dropped:
 * dropping it would let "/data/../../etc" look like a path below "/"). The result is written
 * only as a whole; on error `out` may hold a partial string.
 */
int uri_normalize(const char *uri, char *out, size_t out_len, size_t *min_depth)
{
    if (min_depth)
        *min_depth = SIZE_MAX;
    if (uri == NULL || out == NULL || out_len == 0)
        return shoal_fail(SHOAL_EINVAL, "uri_normalize: NULL argument");
    size_t uri_len = strnlen(uri, URI_MAX + 1);
    if (uri_len > URI_MAX)
        return shoal_fail(SHOAL_EINVAL, "uri longer than %d bytes", URI_MAX);
    if (uri_len == 0)
        return shoal_fail(SHOAL_EINVAL, "empty uri");

    /* scheme */
    size_t scheme_len = 0;
    while (scheme_len < uri_len && uri[scheme_len] != ':') {
        char c = uri[scheme_len];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (scheme_len > 0 && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'));
        if (!ok)
            return shoal_fail(SHOAL_EINVAL, "uri has no valid scheme: %.200s", uri);
        scheme_len++;
    }
    if (scheme_len == 0 || scheme_len > URI_SCHEME_MAX || uri_len < scheme_len + 3 ||
        strncmp(uri + scheme_len, "://", 3) != 0)
        return shoal_fail(SHOAL_EINVAL, "uri is not scheme://...: %.200s", uri);
    char scheme[URI_SCHEME_MAX + 1];
    for (size_t i = 0; i < scheme_len; i++) {
        char c = uri[i];
        scheme[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    scheme[scheme_len] = '\0';
    bool fold_host = strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0;

    /* authority */
    const char *authority = uri + scheme_len + 3;
    const char *path = strchr(authority, '/');
    size_t authority_len = path ? (size_t)(path - authority) : strlen(authority);
    if (path == NULL)
        path = authority + authority_len;
    for (size_t i = 0; i < authority_len; i++) {
        unsigned char c = (unsigned char)authority[i];
        if (s_is_control(c) || c == '?' || c == '#' || c == '%' || c == '\\')
            return shoal_fail(SHOAL_EINVAL, "uri has a bad character in its authority: %.200s",
                              uri);
    }
    size_t path_len = uri_len - (size_t)(path - uri);

    /* Scratch on the stack for paths up to URI_SMALL_PATH bytes (every read of the client and
     * every request of the node normalises: no allocation there), on the heap above. */
    char decoded_small[URI_SMALL_PATH + 1];
    s_segment_t stack_small[URI_SMALL_PATH / 2 + 2];
    bool small = path_len <= URI_SMALL_PATH;
    char *decoded = small ? decoded_small : malloc(path_len + 1);
    s_segment_t *stack = small ? stack_small : malloc((path_len / 2 + 2) * sizeof *stack);
    int rc = 0;
    if (decoded == NULL || stack == NULL) {
        rc = shoal_fail(SHOAL_ENOMEM, "uri_normalize: out of memory");
        goto done;
    }
    rc = s_decode_path(uri, path, path_len, decoded);
    if (rc < 0)
        goto done;

    /* resolve the segments */
    size_t depth = 0;
    bool trailing = false;
    const char *p = decoded;
    while (*p != '\0') {
        while (*p == '/')
            p++;
        if (*p == '\0') {
            trailing = true; /* the path ended with '/' */
            break;
        }
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 1 && p[0] == '.') {
            trailing = true;
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (depth == 0) {
                rc = shoal_fail(SHOAL_EACCES, "uri climbs above its root with '..': %.200s", uri);
                goto done;
            }
            depth--;
            if (min_depth && depth < *min_depth)
                *min_depth = depth;
            trailing = true;
        } else {
            stack[depth].start = p;
            stack[depth].len = len;
            depth++;
            trailing = false;
        }
        p += len;
    }

    /* write scheme://authority/seg/seg[/] */
    size_t pos = 0;
    out[0] = '\0';
    if ((rc = s_append(out, out_len, &pos, scheme, scheme_len, uri)) < 0 ||
        (rc = s_append(out, out_len, &pos, "://", 3, uri)) < 0)
        goto done;
    size_t host_start = pos;
    if ((rc = s_append(out, out_len, &pos, authority, authority_len, uri)) < 0)
        goto done;
    if (fold_host)
        for (size_t i = host_start; i < pos; i++)
            if (out[i] >= 'A' && out[i] <= 'Z')
                out[i] = (char)(out[i] - 'A' + 'a');
    for (size_t i = 0; i < depth; i++)
        if ((rc = s_append(out, out_len, &pos, "/", 1, uri)) < 0 ||
            (rc = s_append(out, out_len, &pos, stack[i].start, stack[i].len, uri)) < 0)
            goto done;
    if (depth == 0 || trailing)
        rc = s_append(out, out_len, &pos, "/", 1, uri);
done:
    if (!small) {
        free(decoded);
        free(stack);
    }
    return rc;
}
