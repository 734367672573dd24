/*
 * ufs_xml.h - the I/O-free parts the s3:// and az:// connectors share: listing replies parsed
 * with libxml2, the service's error code, URI splitting and percent-encoding, the AWS
 * shared-credentials file, and the Azure Shared Key signature. Kept apart from the connectors
 * so unit tests can check each piece without a server. Not for use outside store/.
 */
#ifndef SHOAL_UFS_XML_H
#define SHOAL_UFS_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "ufs_conn.h"

#define UFS_XML_BODY_MAX    (16u << 20) /* largest listing reply we parse (1000 keys ~ 500 KiB) */
#define UFS_XML_ENTRIES_MAX 100000      /* most objects + prefixes accepted in one reply */
#define UFS_CLOUD_URL_MAX   16384       /* longest URL we build (a 4 KiB key encodes to 12 KiB) */

/* Initialises libxml2 once per process (xmlInitParser is not safe to race); connectors call it
 * from their init. */
void ufs_xml_init(void);

/* ---------------------------------------------------------------------------------------- */
/* Listing replies                                                                           */
/* ---------------------------------------------------------------------------------------- */

/* Which service's XML: S3 ListObjectsV2 <ListBucketResult> or Azure List Blobs
 * <EnumerationResults>. */
typedef enum ufs_xml_dialect {
    UFS_XML_S3, /* Contents{Key,Size,ETag,LastModified}, CommonPrefixes{Prefix} */
    UFS_XML_AZ, /* Blobs{Blob{Name,Properties{Content-Length,Etag,Last-Modified}},BlobPrefix} */
} ufs_xml_dialect_t;

/* One object of a listing page. */
typedef struct ufs_xml_object {
    char *name;                 /* key or blob name, decoded; owned by the listing */
    uint64_t size;              /* bytes */
    int64_t mtime;              /* seconds since the epoch; 0 when absent or unparsable */
    char etag[UFS_VERSION_MAX]; /* ETag without quotes; "" when absent */
} ufs_xml_object_t;

/* One page of a listing. Zero-initialise, fill with ufs_xml_parse_listing, free with
 * ufs_xml_listing_fini. Invariant: counts <= capacities; every name is non-NULL. */
typedef struct ufs_xml_listing {
    ufs_xml_object_t *objects; /* objects in reply order */
    size_t object_count;       /* objects in use */
    size_t object_capacity;    /* objects allocated */
    char **prefixes;           /* common prefixes (S3) / blob prefixes (Azure), with the '/' */
    size_t prefix_count;       /* prefixes in use */
    size_t prefix_capacity;    /* prefixes allocated */
    bool truncated;            /* S3 IsTruncated; Azure: a non-empty NextMarker */
    char *next_token;          /* NextContinuationToken / NextMarker, or NULL when last page */
} ufs_xml_listing_t;

/* Parses one listing reply of `len` bytes into *out (zero-initialised by the caller). Returns
 * 0, SHOAL_EPROTO for malformed XML, a wrong root element, a missing or bad required field, or
 * more than UFS_XML_ENTRIES_MAX entries, SHOAL_EMSGSIZE for a body over UFS_XML_BODY_MAX or a
 * name over UFS_URI_MAX, SHOAL_ENOMEM. On error *out is left empty (nothing to free). */
int ufs_xml_parse_listing(const char *xml, size_t len, ufs_xml_dialect_t dialect,
                          ufs_xml_listing_t *out);

/* Frees everything *listing owns and zeroes it; safe on a zeroed listing. */
void ufs_xml_listing_fini(ufs_xml_listing_t *listing);

/* Copies the <Code> of an <Error> reply (both services use that shape) into out. Returns 0,
 * or SHOAL_ENOENT when the body is not such a reply (out is then ""). */
int ufs_xml_error_code(const char *xml, size_t len, char *out, size_t out_len);

/* ---------------------------------------------------------------------------------------- */
/* URIs, encoding, time                                                                      */
/* ---------------------------------------------------------------------------------------- */

/* Splits "SCHEME://container/path" into the container (copied into container, which must hold
 * 64 bytes or more) and *path (borrowed: points into uri after the first '/', "" when there is
 * none). Containers are 1..63 characters of [A-Za-z0-9._-]. Returns 0 or SHOAL_EINVAL with a
 * last error. */
int ufs_cloud_uri_split(const char *uri, const char *scheme, char *container, size_t container_len,
                        const char **path);

/* Keys and blob names are encoded with ufs_url_append_encoded (ufs_conn.h): SigV4's canonical
 * URI and Azure's both want RFC 3986 unreserved characters kept and every other byte as %XX. */

/* Decodes %XX escapes of in[0..len) into out (NUL-terminated); '+' stays '+'. Returns 0,
 * SHOAL_EINVAL for a bad escape or an encoded NUL, SHOAL_EMSGSIZE when out is too small. */
int ufs_pct_decode(const char *in, size_t len, char *out, size_t out_len);

/* Parses an ISO 8601 UTC time as S3 writes it ("2023-05-01T12:34:56.000Z") or an HTTP date
 * ("Mon, 01 May 2023 12:34:56 GMT"). Returns seconds since the epoch, or 0 when unparsable. */
int64_t ufs_cloud_parse_time(const char *text);

/* Appends the entries of one listing page to *out as "SCHEME://CONTAINER/NAME". Objects named
 * exactly `prefix` or ending in '/' (the empty "directory marker" objects that consoles create)
 * are skipped, as are names whose URI would exceed UFS_URI_MAX (no other call could use them).
 * Prefixes become directory entries without their trailing '/'. An object without an ETag gets
 * the version "<size>-<mtime>". Returns 0 or SHOAL_ENOMEM. */
int ufs_cloud_push_listing(ufs_list_t *out, const char *scheme, const char *container,
                           const char *prefix, const ufs_xml_listing_t *page);

/* A read at or past the end is empty if the object still has `version` (NULL: any version).
 * The server's 416 carries no ETag, so the caller stat'ed the object into `now`. Returns 0 or
 * SHOAL_ESTALE naming both versions. */
int ufs_cloud_past_end(const char *uri, const char *version, const ufs_stat_t *now);

/* Maps a failed reply's HTTP status to a shoal error (ufs_http_status_error: 404 ENOENT,
 * 401/403 EACCES, 412 ESTALE, else EIO) and records "METHOD URI: HTTP STATUS CODE" as the last
 * error, CODE being the service's error code when known, and for 401/403 `auth_hint` (which
 * credentials were used; may be NULL). Returns the error. */
int ufs_cloud_status_fail(long status, const char *method, const char *uri, const char *code,
                          const char *auth_hint);

/* ---------------------------------------------------------------------------------------- */
/* AWS credentials                                                                           */
/* ---------------------------------------------------------------------------------------- */

#define UFS_S3_KEY_MAX   256  /* access key id / secret key, incl. NUL */
#define UFS_S3_TOKEN_MAX 8192 /* session token, incl. NUL (STS tokens run to a few KiB) */

/* Static AWS credentials. */
typedef struct ufs_s3_credentials {
    char access_key[UFS_S3_KEY_MAX];      /* aws_access_key_id */
    char secret_key[UFS_S3_KEY_MAX];      /* aws_secret_access_key */
    char session_token[UFS_S3_TOKEN_MAX]; /* aws_session_token, or "" */
} ufs_s3_credentials_t;

/* Finds profile `profile` in the text of an AWS shared credentials file (INI: "[name]"
 * sections, also "[profile name]"; "key = value" lines; '#' and ';' comment lines; blank lines;
 * CRLF; keys case-insensitive; whitespace around names and values ignored; a later duplicate
 * key wins) and copies its keys into *out. Returns 0, SHOAL_ENOENT when the profile is absent
 * or lacks aws_access_key_id or aws_secret_access_key, SHOAL_EMSGSIZE when a value is too
 * long. */
int ufs_s3_credentials_parse(const char *text, const char *profile, ufs_s3_credentials_t *out);

/* ---------------------------------------------------------------------------------------- */
/* Azure Shared Key                                                                          */
/* ---------------------------------------------------------------------------------------- */

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
