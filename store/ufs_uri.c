/*
 * ufs_uri.c - URI splitting ("SCHEME://container/path" for the s3:// and az:// connectors) and
 * value trimming. Percent coding is proto's (coding.h). See ufs_uri.h.
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
