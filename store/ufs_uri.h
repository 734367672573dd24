/*
 * ufs_uri.h - URI splitting and value trimming. Percent coding is proto's coding.h
 * (pct_encode_append, pct_decode): every connector calls it directly. Not for use outside
 * store/.
 */
#ifndef SHOAL_UFS_URI_H
#define SHOAL_UFS_URI_H

#include <stddef.h>

/* Splits "SCHEME://container/path" into the container (copied into container, which must hold
 * 64 bytes or more) and *path (borrowed: points into uri after the first '/', "" when there is
 * none). Containers are 1..63 characters of [A-Za-z0-9._-]. Returns 0 or SHOAL_EINVAL with a
 * last error. */
int ufs_cloud_uri_split(const char *uri, const char *scheme, char *container, size_t container_len,
                        const char **path);

/* Copies [start, end) into out without leading spaces and tabs and trailing spaces, tabs and
 * '\r' (header values, INI lines). Returns 0, or SHOAL_EMSGSIZE when it does not fit. */
int ufs_copy_trimmed(const char *start, const char *end, char *out, size_t out_len);

#endif
