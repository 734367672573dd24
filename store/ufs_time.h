/*
 * ufs_time.h - parsing the times object stores write (ISO 8601 UTC, RFC 1123 HTTP dates).
 * Not for use outside store/.
 */
#ifndef SHOAL_UFS_TIME_H
#define SHOAL_UFS_TIME_H

#include <stdint.h>

/* Parses an ISO 8601 UTC time as S3 writes it ("2023-05-01T12:34:56.000Z") or an HTTP date
 * ("Mon, 01 May 2023 12:34:56 GMT"). Returns seconds since the epoch, or 0 when unparsable. */
int64_t ufs_cloud_parse_time(const char *text);

#endif
