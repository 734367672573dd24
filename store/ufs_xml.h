/*
 * ufs_xml.h - the listing and error replies of the s3:// and az:// connectors, parsed with
 * libxml2: one S3 ListObjectsV2 or Azure List Blobs page into a ufs_xml_listing_t, and the
 * service's error code. I/O free, so unit tests and the fuzzer check it without a server.
 * Not for use outside store/.
 */
#ifndef SHOAL_UFS_XML_H
#define SHOAL_UFS_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ufs_conn.h"
#include "vec.h"

#define UFS_XML_BODY_MAX    (16u << 20) /* largest listing reply we parse (1000 keys ~ 500 KiB) */
#define UFS_XML_ENTRIES_MAX 100000      /* most objects + prefixes accepted in one reply */

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
 * ufs_xml_listing_fini. Invariant: vec.h's; every name is non-NULL. */
typedef struct ufs_xml_listing {
    VEC(ufs_xml_object_t) objects; /* objects in reply order */
    VEC(char *) prefixes; /* common prefixes (S3) / blob prefixes (Azure), with the '/' (owned) */
    bool truncated;       /* S3 IsTruncated; Azure: a non-empty NextMarker */
    char *next_token;     /* NextContinuationToken / NextMarker, or NULL when last page */
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

#endif
