/*
 * ufs_az_sign.h - the Azure Storage Shared Key signature (string-to-sign and HMAC-SHA256) of
 * the az:// connector. I/O free, checked by unit tests on Microsoft's example. Not for use
 * outside store/.
 */
#ifndef SHOAL_UFS_AZ_SIGN_H
#define SHOAL_UFS_AZ_SIGN_H

#include <stddef.h>

#include <curl/curl.h>

/* Builds the Shared Key string-to-sign (versions 2015-02-21 and later) for a request: the verb;
 * Content-Encoding, Content-Language, Content-Length (empty when 0), Content-MD5, Content-Type,
 * Date, If-Modified-Since, If-Match, If-None-Match, If-Unmodified-Since and Range, each from
 * `headers` ("Name: value" lines, names case-insensitive) or empty; then the x-ms-* headers
 * lowercased, sorted, "name:value\n" each with values trimmed and inner whitespace folded; then
 * the canonicalized resource "/ACCOUNT" + the URL's encoded path, then "\nname:value" for each
 * query parameter with names lowercased and sorted, values decoded, and repeated names joined
 * with ',' in sorted order. Returns 0, SHOAL_EINVAL for a URL without a path, SHOAL_EMSGSIZE
 * when out is too small, SHOAL_ENOMEM. */
int ufs_az_string_to_sign(const char *method, const char *url, const struct curl_slist *headers,
                          const char *account, char *out, size_t out_len);

/* Signs `string_to_sign` with HMAC-SHA256 under the decoded account key and writes the
 * base64 signature (44 characters + NUL) into out. Returns 0 or SHOAL_EMSGSIZE. */
int ufs_az_sign(const char *string_to_sign, const unsigned char *key, size_t key_len, char *out,
                size_t out_len);

#endif
