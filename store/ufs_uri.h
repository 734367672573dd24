/*
 * ufs_uri.h - URI splitting, the store's percent coding (encoder and decoder), in one place
 * so that proto/'s shared coder can replace it in one edit, and value trimming. Not for use outside
 * store/.
 */
#ifndef SHOAL_UFS_URI_H
#define SHOAL_UFS_URI_H

#include <stdbool.h>
#include <stddef.h>

/* Splits "SCHEME://container/path" into the container (copied into container, which must hold
 * 64 bytes or more) and *path (borrowed: points into uri after the first '/', "" when there is
 * none). Containers are 1..63 characters of [A-Za-z0-9._-]. Returns 0 or SHOAL_EINVAL with a
 * last error. */
int ufs_cloud_uri_split(const char *uri, const char *scheme, char *container, size_t container_len,
                        const char **path);

/* Appends `text` to `out` (capacity out_len, NUL-terminated), percent-encoding every byte
 * outside RFC 3986 unreserved characters (ASCII letters, digits, "-._~"; bytes >= 0x80 always
 * encoded, whatever the locale), except '/' when keep_slash. 0, or SHOAL_EINVAL when the
 * result does not fit. Keys and blob names are encoded with it: SigV4's canonical URI and
 * Azure's both want RFC 3986 unreserved characters kept and every other byte as %XX. */
int ufs_url_append_encoded(char *out, size_t out_len, const char *text, bool keep_slash);

/* Decodes %XX escapes of in[0..len) into out (NUL-terminated); '+' stays '+'. Returns 0,
 * SHOAL_EINVAL for a bad escape or an encoded NUL, SHOAL_EMSGSIZE when out is too small. */
int ufs_pct_decode(const char *in, size_t len, char *out, size_t out_len);

/* Copies [start, end) into out without leading spaces and tabs and trailing spaces, tabs and
 * '\r' (header values, INI lines). Returns 0, or SHOAL_EMSGSIZE when it does not fit. */
int ufs_copy_trimmed(const char *start, const char *end, char *out, size_t out_len);

#endif
