/*
 * ufs_xml.c - the listing and error replies of the s3:// and az:// connectors, parsed with
 * libxml2 (a real parser, tree walk, bounded sizes): S3 ListObjectsV2 and Azure List Blobs
 * pages, and the <Code> of an <Error> reply. I/O free. See ufs_xml.h for the contracts.
 */
#include "ufs_xml.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "ufs_time.h"
#include "coding.h"
#include "ufs_uri.h"

/* ---------------------------------------------------------------------------------------- */
/* XML                                                                                       */
/* ---------------------------------------------------------------------------------------- */

static pthread_once_t s_xml_once = PTHREAD_ONCE_INIT;

static void s_xml_init_once(void)
{
    xmlInitParser();
}

void ufs_xml_init(void)
{
    pthread_once(&s_xml_once, s_xml_init_once);
}

/* True when `node` is an element whose local name (namespace ignored: S3 puts its replies in
 * a default namespace, Azure does not) is `name`. */
static bool s_is(const xmlNode *node, const char *name)
{
    return node && node->type == XML_ELEMENT_NODE && strcmp((const char *)node->name, name) == 0;
}

/* First child element of `parent` named `name`, or NULL. */
static xmlNode *s_child(const xmlNode *parent, const char *name)
{
    for (xmlNode *child = parent ? parent->children : NULL; child; child = child->next) {
        if (s_is(child, name))
            return child;
    }
    return NULL;
}

/* Text of `node` (all descendant text), malloc'd by libxml2 (free with xmlFree), or NULL. */
static char *s_text(const xmlNode *node)
{
    return node ? (char *)xmlNodeGetContent(node) : NULL;
}

/* Parses a decimal byte count: digits only, no sign, no overflow. */
static int s_parse_u64(const char *text, uint64_t *out)
{
    uint64_t value = 0;
    if (!text || !*text)
        return SHOAL_EPROTO;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return SHOAL_EPROTO;
        uint64_t digit = (uint64_t)(*p - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return SHOAL_EPROTO;
        value = value * 10 + digit;
    }
    *out = value;
    return 0;
}

static int s_push_object(ufs_xml_listing_t *listing, ufs_xml_object_t *object)
{
    if (listing->objects.len + listing->prefixes.len >= UFS_XML_ENTRIES_MAX)
        return shoal_fail(SHOAL_EPROTO, "listing reply has over %d entries", UFS_XML_ENTRIES_MAX);
    if (vec_push(&listing->objects, *object) < 0)
        return shoal_fail(SHOAL_ENOMEM, "listing: out of memory");
    return 0;
}

/* Takes ownership of `prefix` (malloc'd) on success. */
static int s_push_prefix(ufs_xml_listing_t *listing, char *prefix)
{
    if (listing->objects.len + listing->prefixes.len >= UFS_XML_ENTRIES_MAX)
        return shoal_fail(SHOAL_EPROTO, "listing reply has over %d entries", UFS_XML_ENTRIES_MAX);
    if (vec_push(&listing->prefixes, prefix) < 0)
        return shoal_fail(SHOAL_ENOMEM, "listing: out of memory");
    return 0;
}

/* Copies the text of a name element into a malloc'd string, checking its length, and decoding
 * it when Azure marked it Encoded="true" (names with characters XML cannot carry). */
static int s_name(const xmlNode *node, const char *what, char **out)
{
    char *text = s_text(node);
    if (!text)
        return shoal_fail(SHOAL_EPROTO, "listing reply: %s without a name", what);
    size_t len = strlen(text);
    if (len == 0 || len >= UFS_URI_MAX) {
        xmlFree(text);
        return shoal_fail(len ? SHOAL_EMSGSIZE : SHOAL_EPROTO,
                          "listing reply: %s name of %zu bytes", what, len);
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        xmlFree(text);
        return shoal_fail(SHOAL_ENOMEM, "listing: out of memory");
    }
    int rc = 0;
    xmlChar *encoded = xmlGetProp(node, (const xmlChar *)"Encoded");
    if (encoded && strcmp((const char *)encoded, "true") == 0) {
        rc = pct_decode(text, len, copy, len + 1);
        if (rc < 0)
            rc = shoal_fail(SHOAL_EPROTO, "listing reply: bad encoded %s name", what);
    } else {
        memcpy(copy, text, len + 1);
    }
    xmlFree(encoded);
    xmlFree(text);
    if (rc < 0) {
        free(copy);
        return rc;
    }
    *out = copy;
    return 0;
}

/* Fills *object from an S3 <Contents> or an Azure <Blob> element. Key/Name and Size/
 * Content-Length are required; ETag and the time are optional. */
static int s_object(const xmlNode *node, ufs_xml_dialect_t dialect, ufs_xml_object_t *object)
{
    const xmlNode *props = dialect == UFS_XML_S3 ? node : s_child(node, "Properties");
    const char *what = dialect == UFS_XML_S3 ? "Contents" : "Blob";
    memset(object, 0, sizeof *object);
    if (!props)
        return shoal_fail(SHOAL_EPROTO, "listing reply: %s without Properties", what);
    const xmlNode *name = s_child(node, dialect == UFS_XML_S3 ? "Key" : "Name");
    if (!name)
        return shoal_fail(SHOAL_EPROTO, "listing reply: %s without a name", what);
    char *size_text = s_text(s_child(props, dialect == UFS_XML_S3 ? "Size" : "Content-Length"));
    int rc = s_parse_u64(size_text, &object->size);
    xmlFree(size_text);
    if (rc < 0)
        return shoal_fail(SHOAL_EPROTO, "listing reply: %s with a missing or bad size", what);
    char *etag = s_text(s_child(props, dialect == UFS_XML_S3 ? "ETag" : "Etag"));
    if (etag) {
        ufs_etag_version(etag, object->etag, sizeof object->etag);
        xmlFree(etag);
    }
    char *mtime = s_text(s_child(props, dialect == UFS_XML_S3 ? "LastModified" : "Last-Modified"));
    if (mtime) {
        object->mtime = ufs_cloud_parse_time(mtime);
        xmlFree(mtime);
    }
    return s_name(name, what, &object->name);
}

/* Adds the prefix named by `name` (S3 <Prefix>, Azure <Name> of <BlobPrefix>). */
static int s_prefix(const xmlNode *name, ufs_xml_listing_t *out)
{
    char *prefix = NULL;
    int rc = s_name(name, "prefix", &prefix);
    if (rc == 0) {
        rc = s_push_prefix(out, prefix);
        if (rc < 0)
            free(prefix);
    }
    return rc;
}

/* Walks the children of the S3 <ListBucketResult> root. */
static int s_walk_s3(const xmlNode *root, ufs_xml_listing_t *out)
{
    for (xmlNode *node = root->children; node; node = node->next) {
        int rc = 0;
        if (s_is(node, "Contents")) {
            ufs_xml_object_t object;
            rc = s_object(node, UFS_XML_S3, &object);
            if (rc == 0 && (rc = s_push_object(out, &object)) < 0)
                free(object.name);
        } else if (s_is(node, "CommonPrefixes")) {
            for (xmlNode *child = node->children; child && rc == 0; child = child->next) {
                if (s_is(child, "Prefix"))
                    rc = s_prefix(child, out);
            }
        } else if (s_is(node, "IsTruncated")) {
            char *text = s_text(node);
            out->truncated = text && strcmp(text, "true") == 0;
            xmlFree(text);
        } else if (s_is(node, "NextContinuationToken")) {
            char *text = s_text(node);
            free(out->next_token);
            out->next_token = text && *text ? strdup(text) : NULL;
            xmlFree(text);
        }
        if (rc < 0)
            return rc;
    }
    if (out->truncated && !out->next_token)
        return shoal_fail(SHOAL_EPROTO, "listing reply: truncated without a continuation token");
    return 0;
}

/* Walks the children of the Azure <EnumerationResults> root. */
static int s_walk_az(const xmlNode *root, ufs_xml_listing_t *out)
{
    const xmlNode *blobs = s_child(root, "Blobs");
    for (xmlNode *node = blobs ? blobs->children : NULL; node; node = node->next) {
        int rc = 0;
        if (s_is(node, "Blob")) {
            ufs_xml_object_t object;
            rc = s_object(node, UFS_XML_AZ, &object);
            if (rc == 0 && (rc = s_push_object(out, &object)) < 0)
                free(object.name);
        } else if (s_is(node, "BlobPrefix")) {
            const xmlNode *name = s_child(node, "Name");
            rc = name ? s_prefix(name, out)
                      : shoal_fail(SHOAL_EPROTO, "listing reply: BlobPrefix without a Name");
        }
        if (rc < 0)
            return rc;
    }
    char *marker = s_text(s_child(root, "NextMarker"));
    if (marker && *marker) {
        out->next_token = strdup(marker);
        out->truncated = true;
    }
    xmlFree(marker);
    return 0;
}

/* Parses `xml` into a document without network access, entity substitution or error output
 * on stderr. Returns NULL with a last error naming the parser's complaint. */
static xmlDoc *s_parse(const char *xml, size_t len, const char *what)
{
    if (len > UFS_XML_BODY_MAX) {
        shoal_fail(SHOAL_EMSGSIZE, "%s: reply of %zu bytes is over %u", what, len,
                   UFS_XML_BODY_MAX);
        return NULL;
    }
    xmlDoc *doc = xmlReadMemory(xml, (int)len, "reply.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        const xmlError *error = xmlGetLastError();
        const char *message = error && error->message ? error->message : "unknown error";
        /* libxml2's messages end with a newline; drop it for one-line logs. */
        int message_len = (int)strcspn(message, "\n");
        shoal_fail(SHOAL_EPROTO, "%s: malformed XML (line %d): %.*s", what, error ? error->line : 0,
                   message_len, message);
        return NULL;
    }
    return doc;
}

int ufs_xml_parse_listing(const char *xml, size_t len, ufs_xml_dialect_t dialect,
                          ufs_xml_listing_t *out)
{
    ufs_xml_init();
    const char *root_name = dialect == UFS_XML_S3 ? "ListBucketResult" : "EnumerationResults";
    memset(out, 0, sizeof *out);
    if (len > UFS_XML_BODY_MAX)
        return shoal_fail(SHOAL_EMSGSIZE, "listing reply of %zu bytes is over %u", len,
                          UFS_XML_BODY_MAX);
    xmlDoc *doc = s_parse(xml, len, "listing reply");
    if (!doc)
        return SHOAL_EPROTO;
    int rc;
    const xmlNode *root = xmlDocGetRootElement(doc);
    if (!s_is(root, root_name))
        rc = shoal_fail(SHOAL_EPROTO, "listing reply: root is <%s>, not <%s>",
                        root ? (const char *)root->name : "", root_name);
    else
        rc = dialect == UFS_XML_S3 ? s_walk_s3(root, out) : s_walk_az(root, out);
    xmlFreeDoc(doc);
    if (rc < 0)
        ufs_xml_listing_fini(out);
    return rc;
}

void ufs_xml_listing_fini(ufs_xml_listing_t *listing)
{
    for (size_t i = 0; i < listing->objects.len; i++)
        free(listing->objects.items[i].name);
    for (size_t i = 0; i < listing->prefixes.len; i++)
        free(listing->prefixes.items[i]);
    vec_fini(&listing->objects);
    vec_fini(&listing->prefixes);
    free(listing->next_token);
    memset(listing, 0, sizeof *listing);
}

int ufs_xml_error_code(const char *xml, size_t len, char *out, size_t out_len)
{
    if (out_len)
        out[0] = '\0';
    if (!xml || len == 0 || len > UFS_XML_BODY_MAX || out_len == 0)
        return SHOAL_ENOENT;
    ufs_xml_init();
    xmlDoc *doc = xmlReadMemory(xml, (int)len, "error.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return SHOAL_ENOENT;
    int rc = SHOAL_ENOENT;
    const xmlNode *root = xmlDocGetRootElement(doc);
    char *code = s_is(root, "Error") ? s_text(s_child(root, "Code")) : NULL;
    if (code && *code) {
        snprintf(out, out_len, "%s", code);
        rc = 0;
    }
    xmlFree(code);
    xmlFreeDoc(doc);
    return rc;
}
