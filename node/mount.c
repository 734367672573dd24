/*
 * mount.c - URI normalisation and the mount check (see mount.h for the normal form). Pure
 * string work: every refusal records a last error that names the URI and the reason.
 */
#include "mount.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOUNT_SCHEME_MAX 32 /* longest scheme accepted ("https", "s3", "file", ...) */

/* One mount: its normal form and how many path segments it has. */
typedef struct mount_entry {
    char *prefix; /* normal form without trailing '/' (unless the path is just "/") */
    size_t depth; /* path segments in prefix */
} mount_entry_t;

struct mount_table {
    mount_entry_t entries[MOUNT_MAX]; /* the mounts, in the order they were added */
    size_t count;                     /* entries in use */
};

/* A path segment: a slice of the decoded path. */
typedef struct s_segment {
    const char *start; /* first byte */
    size_t len;        /* bytes */
} s_segment_t;

static int s_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool s_is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

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
        int h = s_hex_value(path[i + 1]);
        int l = s_hex_value(path[i + 2]);
        if (h < 0 || l < 0)
            return shoal_fail(SHOAL_EINVAL, "uri has a malformed %% escape: %.200s", uri);
        unsigned char v = (unsigned char)(h * 16 + l);
        if (s_is_control(v))
            return shoal_fail(SHOAL_EINVAL, "uri has an escaped control character (%%%02X): %.200s",
                              v, uri);
        if (v == '/' || v == '\\')
            return shoal_fail(SHOAL_EINVAL, "uri has an escaped '%c' (%%%02X): %.200s", v, v, uri);
        if (s_is_unreserved(v)) {
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
    if (*pos + len + 1 > out_len || *pos + len > MOUNT_URI_MAX)
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
int mount_normalize(const char *uri, char *out, size_t out_len, size_t *min_depth)
{
    if (min_depth)
        *min_depth = SIZE_MAX;
    if (uri == NULL || out == NULL || out_len == 0)
        return shoal_fail(SHOAL_EINVAL, "mount_normalize: NULL argument");
    size_t uri_len = strnlen(uri, MOUNT_URI_MAX + 1);
    if (uri_len > MOUNT_URI_MAX)
        return shoal_fail(SHOAL_EINVAL, "uri longer than %d bytes", MOUNT_URI_MAX);
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
    if (scheme_len == 0 || scheme_len > MOUNT_SCHEME_MAX || uri_len < scheme_len + 3 ||
        strncmp(uri + scheme_len, "://", 3) != 0)
        return shoal_fail(SHOAL_EINVAL, "uri is not scheme://...: %.200s", uri);
    char scheme[MOUNT_SCHEME_MAX + 1];
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

    char *decoded = malloc(path_len + 1);
    s_segment_t *stack = malloc((path_len / 2 + 2) * sizeof *stack);
    int rc = 0;
    if (decoded == NULL || stack == NULL) {
        rc = shoal_fail(SHOAL_ENOMEM, "mount_normalize: out of memory");
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
    free(decoded);
    free(stack);
    return rc;
}

mount_table_t *mount_table_new(void)
{
    return calloc(1, sizeof(mount_table_t));
}

void mount_table_destroy(mount_table_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    mount_table_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        free(self->entries[i].prefix);
    free(self);
    *self_p = NULL;
}

/* Number of path segments of a normalised uri (slashes after the authority's). */
static size_t s_depth(const char *normal)
{
    const char *path = strstr(normal, "://");
    path = path ? strchr(path + 3, '/') : NULL;
    size_t depth = 0;
    for (const char *p = path; p && *p; p++)
        if (*p == '/' && p[1] != '\0')
            depth++;
    return depth;
}

int mount_table_add(mount_table_t *self, const char *prefix)
{
    if (self == NULL || prefix == NULL)
        return shoal_fail(SHOAL_EINVAL, "mount_table_add: NULL argument");
    if (self->count == MOUNT_MAX)
        return shoal_fail(SHOAL_EINVAL, "more than %d mounts", MOUNT_MAX);
    char normal[MOUNT_URI_MAX + 1];
    int rc = mount_normalize(prefix, normal, sizeof normal, NULL);
    if (rc < 0)
        return rc;
    size_t len = strlen(normal);
    const char *path = strchr(strstr(normal, "://") + 3, '/');
    if (len > 1 && normal[len - 1] == '/' && path != normal + len - 1)
        normal[len - 1] = '\0'; /* keep "scheme://auth/" for a root mount */
    char *copy = strdup(normal);
    if (copy == NULL)
        return shoal_fail(SHOAL_ENOMEM, "mount_table_add: out of memory");
    self->entries[self->count].prefix = copy;
    self->entries[self->count].depth = s_depth(copy);
    self->count++;
    return 0;
}

size_t mount_table_count(const mount_table_t *self)
{
    return self ? self->count : 0;
}

const char *mount_table_get(const mount_table_t *self, size_t index)
{
    return self && index < self->count ? self->entries[index].prefix : NULL;
}

bool mount_is_under(const char *uri, const char *prefix)
{
    size_t len = strlen(prefix);
    if (len == 0 || strncmp(uri, prefix, len) != 0)
        return false;
    return prefix[len - 1] == '/' || uri[len] == '\0' || uri[len] == '/';
}

int mount_check(const mount_table_t *self, const char *uri, char *out, size_t out_len)
{
    char normal[MOUNT_URI_MAX + 2];
    size_t min_depth = SIZE_MAX;
    int rc = mount_normalize(uri, normal, sizeof normal, &min_depth);
    if (rc < 0) {
        char why[256];
        snprintf(why, sizeof why, "%s", shoal_last_error());
        return shoal_fail(SHOAL_EACCES, "refused: %s", why);
    }
    for (size_t i = 0; self && i < self->count; i++) {
        const mount_entry_t *mount = &self->entries[i];
        if (!mount_is_under(normal, mount->prefix))
            continue;
        if (min_depth != SIZE_MAX && min_depth < mount->depth)
            return shoal_fail(SHOAL_EACCES, "refused: '..' climbs above mount %s: %.200s",
                              mount->prefix, uri);
        size_t len = strlen(normal);
        if (len + 1 > out_len)
            return shoal_fail(SHOAL_EACCES, "refused: uri too long: %.200s", uri);
        memcpy(out, normal, len + 1);
        return 0;
    }
    return shoal_fail(SHOAL_EACCES, "refused: not under any mount: %.200s", uri);
}
