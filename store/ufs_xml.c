/*
 * ufs_xml.c - the I/O-free parts of the s3:// and az:// connectors: listing and error replies
 * parsed with libxml2 (a real parser, tree walk, bounded sizes), URI splitting,
 * percent-encoding, time parsing, the AWS shared-credentials INI parser and the Azure Shared
 * Key string-to-sign and signature. See ufs_xml.h for the contracts.
 */
#include "ufs_xml.h"

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <sodium.h>

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
    if (listing->object_count + listing->prefix_count >= UFS_XML_ENTRIES_MAX)
        return shoal_fail(SHOAL_EPROTO, "listing reply has over %d entries", UFS_XML_ENTRIES_MAX);
    if (listing->object_count == listing->object_capacity) {
        size_t capacity = listing->object_capacity ? listing->object_capacity * 2 : 64;
        ufs_xml_object_t *grown = realloc(listing->objects, capacity * sizeof *grown);
        if (!grown)
            return shoal_fail(SHOAL_ENOMEM, "listing: out of memory");
        listing->objects = grown;
        listing->object_capacity = capacity;
    }
    listing->objects[listing->object_count++] = *object;
    return 0;
}

/* Takes ownership of `prefix` (malloc'd) on success. */
static int s_push_prefix(ufs_xml_listing_t *listing, char *prefix)
{
    if (listing->object_count + listing->prefix_count >= UFS_XML_ENTRIES_MAX)
        return shoal_fail(SHOAL_EPROTO, "listing reply has over %d entries", UFS_XML_ENTRIES_MAX);
    if (listing->prefix_count == listing->prefix_capacity) {
        size_t capacity = listing->prefix_capacity ? listing->prefix_capacity * 2 : 16;
        char **grown = realloc(listing->prefixes, capacity * sizeof *grown);
        if (!grown)
            return shoal_fail(SHOAL_ENOMEM, "listing: out of memory");
        listing->prefixes = grown;
        listing->prefix_capacity = capacity;
    }
    listing->prefixes[listing->prefix_count++] = prefix;
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
        rc = ufs_pct_decode(text, len, copy, len + 1);
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
    for (size_t i = 0; i < listing->object_count; i++)
        free(listing->objects[i].name);
    for (size_t i = 0; i < listing->prefix_count; i++)
        free(listing->prefixes[i]);
    free(listing->objects);
    free(listing->prefixes);
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

/* ---------------------------------------------------------------------------------------- */
/* URIs, encoding, time                                                                      */
/* ---------------------------------------------------------------------------------------- */

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

static int s_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ufs_pct_decode(const char *in, size_t len, char *out, size_t out_len)
{
    size_t pos = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= len)
                return SHOAL_EINVAL;
            int hi = s_hex(in[i + 1]), lo = s_hex(in[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return SHOAL_EINVAL;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (pos + 1 >= out_len)
            return SHOAL_EMSGSIZE;
        out[pos++] = c;
    }
    if (pos >= out_len)
        return SHOAL_EMSGSIZE;
    out[pos] = '\0';
    return 0;
}

int64_t ufs_cloud_parse_time(const char *text)
{
    int year, month, day, hour, minute, second;
    char t;
    if (!text)
        return 0;
    if (sscanf(text, "%4d-%2d-%2d%c%2d:%2d:%2d", &year, &month, &day, &t, &hour, &minute,
               &second) == 7 &&
        (t == 'T' || t == 't' || t == ' ')) {
        if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 ||
            second > 60)
            return 0;
        struct tm tm = {.tm_year = year - 1900,
                        .tm_mon = month - 1,
                        .tm_mday = day,
                        .tm_hour = hour,
                        .tm_min = minute,
                        .tm_sec = second};
        return (int64_t)timegm(&tm);
    }
    time_t when = curl_getdate(text, NULL);
    return when < 0 ? 0 : (int64_t)when;
}

int ufs_cloud_push_listing(ufs_list_t *out, const char *scheme, const char *container,
                           const char *prefix, const ufs_xml_listing_t *page)
{
    char uri[UFS_URI_MAX + 1];
    for (size_t i = 0; i < page->object_count; i++) {
        const ufs_xml_object_t *object = &page->objects[i];
        size_t len = strlen(object->name);
        if (strcmp(object->name, prefix) == 0 || object->name[len - 1] == '/')
            continue;
        int n = snprintf(uri, sizeof uri, "%s://%s/%s", scheme, container, object->name);
        if (n < 0 || n > UFS_URI_MAX)
            continue;
        ufs_stat_t stat = {.size = object->size, .mtime = object->mtime, .is_dir = false};
        if (object->etag[0])
            memcpy(stat.version, object->etag, sizeof stat.version);
        else
            snprintf(stat.version, sizeof stat.version, "%" PRIu64 "-%" PRId64, object->size,
                     object->mtime);
        int rc = ufs_list_push(out, uri, &stat);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < page->prefix_count; i++) {
        const char *name = page->prefixes[i];
        int len = (int)strlen(name);
        if (len > 1 && name[len - 1] == '/')
            len--;
        int n = snprintf(uri, sizeof uri, "%s://%s/%.*s", scheme, container, len, name);
        if (n < 0 || n > UFS_URI_MAX)
            continue;
        ufs_stat_t stat = {.is_dir = true};
        int rc = ufs_list_push(out, uri, &stat);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int ufs_cloud_past_end(const char *uri, const char *version, const ufs_stat_t *now)
{
    if (version && strcmp(now->version, version) != 0)
        return shoal_fail(SHOAL_ESTALE, "GET %s: version %s is gone (now %s)", uri, version,
                          now->version);
    return 0;
}

int ufs_cloud_status_fail(long status, const char *method, const char *uri, const char *code,
                          const char *auth_hint)
{
    char what[32];
    snprintf(what, sizeof what, "%s", method);
    int rc = ufs_http_status_error(status, what);
    if (rc == 0)
        rc = SHOAL_EIO; /* 416 where no empty read was expected */
    bool refused = status == 401 || status == 403;
    return shoal_fail(rc, "%s %.300s: HTTP %ld%s%s (%s)%s%s", method, uri, status,
                      code && code[0] ? " " : "", code ? code : "", shoal_strerror(rc),
                      refused && auth_hint ? "; credentials: " : "",
                      refused && auth_hint ? auth_hint : "");
}

/* ---------------------------------------------------------------------------------------- */
/* AWS shared credentials file                                                               */
/* ---------------------------------------------------------------------------------------- */

/* Copies [start, end) trimmed of spaces and tabs into out. */
static int s_copy_trimmed(const char *start, const char *end, char *out, size_t out_len)
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

/* The parser follows Python's configparser as botocore uses it: a line indented deeper than
 * the key line before it continues that key's value (botocore uses such nested values for
 * settings like "s3 =\n  addressing_style = path"); we ignore continuations, since none of
 * the three keys we read is ever continued. Sections may repeat; their keys merge. */
int ufs_s3_credentials_parse(const char *text, const char *profile, ufs_s3_credentials_t *out)
{
    char section[256] = "";
    bool in_profile = false;
    bool have_key = false; /* a key line was seen in the current section */
    size_t key_indent = 0; /* indentation of that key line */
    bool found = false;
    memset(out, 0, sizeof *out);
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        const char *next = end ? end + 1 : NULL;
        if (!end)
            end = line + strlen(line);
        size_t indent = 0;
        while (line + indent < end && (line[indent] == ' ' || line[indent] == '\t'))
            indent++;
        const char *content = line + indent;
        bool blank = content == end || *content == '\r';
        if (blank || *content == '#' || *content == ';') {
            /* comment or blank: nothing */
        } else if (have_key && indent > key_indent) {
            /* continuation of the previous key's value: ignored (see above) */
        } else if (*content == '[') {
            const char *close = memchr(content, ']', (size_t)(end - content));
            have_key = false;
            if (!close || s_copy_trimmed(content + 1, close, section, sizeof section) < 0) {
                in_profile = false; /* malformed or absurd header: skip the section */
            } else {
                const char *name = section;
                if (strncmp(name, "profile", 7) == 0 && (name[7] == ' ' || name[7] == '\t')) {
                    name += 8;
                    while (*name == ' ' || *name == '\t')
                        name++;
                }
                in_profile = strcmp(name, profile) == 0;
                found = found || in_profile;
            }
        } else {
            const char *equals = memchr(content, '=', (size_t)(end - content));
            have_key = equals != NULL;
            key_indent = indent;
            if (equals && in_profile) {
                char key[64];
                char *target = NULL;
                size_t target_len = 0;
                if (s_copy_trimmed(content, equals, key, sizeof key) == 0) {
                    for (char *p = key; *p; p++)
                        *p = (char)tolower((unsigned char)*p);
                    if (strcmp(key, "aws_access_key_id") == 0) {
                        target = out->access_key;
                        target_len = sizeof out->access_key;
                    } else if (strcmp(key, "aws_secret_access_key") == 0) {
                        target = out->secret_key;
                        target_len = sizeof out->secret_key;
                    } else if (strcmp(key, "aws_session_token") == 0) {
                        target = out->session_token;
                        target_len = sizeof out->session_token;
                    }
                }
                if (target && s_copy_trimmed(equals + 1, end, target, target_len) < 0) {
                    memset(out, 0, sizeof *out);
                    return shoal_fail(SHOAL_EMSGSIZE, "credentials: %s value too long", key);
                }
            }
        }
        line = next;
    }
    if (!found)
        return shoal_fail(SHOAL_ENOENT, "credentials: no profile [%s]", profile);
    if (!out->access_key[0] || !out->secret_key[0]) {
        memset(out, 0, sizeof *out);
        return shoal_fail(SHOAL_ENOENT,
                          "credentials: profile [%s] lacks aws_access_key_id or "
                          "aws_secret_access_key",
                          profile);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Azure Shared Key                                                                          */
/* ---------------------------------------------------------------------------------------- */

#define AZ_HEADERS_MAX 64 /* x-ms-* headers or query parameters in one request */

/* An output cursor: appends with bounds checks. */
typedef struct s_out {
    char *buf;  /* destination */
    size_t len; /* capacity of buf */
    size_t pos; /* bytes written, < len; buf[pos] == '\0' */
    int rc;     /* 0, or SHOAL_EMSGSIZE once anything did not fit */
} s_out_t;

static void s_put(s_out_t *out, const char *text, size_t len)
{
    if (out->rc < 0)
        return;
    if (out->pos + len >= out->len) {
        out->rc = SHOAL_EMSGSIZE;
        return;
    }
    memcpy(out->buf + out->pos, text, len);
    out->pos += len;
    out->buf[out->pos] = '\0';
}

static void s_puts(s_out_t *out, const char *text)
{
    s_put(out, text, strlen(text));
}

/* Value of header `name` in `headers` (trimmed, "" when absent) into value. */
static void s_header(const struct curl_slist *headers, const char *name, char *value,
                     size_t value_len)
{
    size_t name_len = strlen(name);
    value[0] = '\0';
    for (const struct curl_slist *h = headers; h; h = h->next) {
        if (strncasecmp(h->data, name, name_len) == 0 && h->data[name_len] == ':') {
            if (s_copy_trimmed(h->data + name_len + 1, h->data + strlen(h->data), value,
                               value_len) < 0)
                value[0] = '\0';
            return;
        }
    }
}

/* A name:value pair for sorting canonicalized headers and query parameters. */
typedef struct s_pair {
    char *name;  /* lowercased; malloc'd */
    char *value; /* folded (headers) or decoded (query); malloc'd */
} s_pair_t;

static int s_pair_cmp(const void *a, const void *b)
{
    const s_pair_t *x = a, *y = b;
    int rc = strcmp(x->name, y->name);
    return rc ? rc : strcmp(x->value, y->value);
}

static void s_pairs_free(s_pair_t *pairs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(pairs[i].name);
        free(pairs[i].value);
    }
}

/* Lowercased copy of [start, end). */
static char *s_lower_dup(const char *start, const char *end)
{
    char *copy = strndup(start, (size_t)(end - start));
    for (char *p = copy; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return copy;
}

/* Copy of a header value with leading/trailing whitespace removed and inner runs of
 * whitespace folded to one space, as the spec's canonicalized headers require. */
static char *s_fold_dup(const char *value)
{
    char *copy = malloc(strlen(value) + 1);
    size_t pos = 0;
    bool space = false;
    if (!copy)
        return NULL;
    for (const char *p = value; *p; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            space = pos > 0;
            continue;
        }
        if (space)
            copy[pos++] = ' ';
        space = false;
        copy[pos++] = *p;
    }
    copy[pos] = '\0';
    return copy;
}

/* Appends the canonicalized x-ms-* headers. */
static int s_canonical_headers(const struct curl_slist *headers, s_out_t *out)
{
    s_pair_t pairs[AZ_HEADERS_MAX];
    size_t count = 0;
    int rc = 0;
    for (const struct curl_slist *h = headers; h && rc == 0; h = h->next) {
        const char *colon = strchr(h->data, ':');
        if (strncasecmp(h->data, "x-ms-", 5) != 0 || !colon)
            continue;
        if (count == AZ_HEADERS_MAX) {
            rc = SHOAL_EMSGSIZE;
            break;
        }
        const char *name_end = colon;
        while (name_end > h->data && (name_end[-1] == ' ' || name_end[-1] == '\t'))
            name_end--;
        pairs[count].name = s_lower_dup(h->data, name_end);
        pairs[count].value = s_fold_dup(colon + 1);
        if (!pairs[count].name || !pairs[count].value)
            rc = SHOAL_ENOMEM;
        count++;
    }
    if (rc == 0) {
        qsort(pairs, count, sizeof *pairs, s_pair_cmp);
        for (size_t i = 0; i < count; i++) {
            s_puts(out, pairs[i].name);
            s_puts(out, ":");
            s_puts(out, pairs[i].value);
            s_puts(out, "\n");
        }
    }
    s_pairs_free(pairs, count);
    return rc;
}

/* Appends the canonicalized resource for `url`: "/account" + encoded path, then the query
 * parameters, decoded and sorted. */
static int s_canonical_resource(const char *url, const char *account, s_out_t *out)
{
    const char *host = strstr(url, "://");
    if (!host)
        return SHOAL_EINVAL;
    host += 3;
    const char *query = strchr(host, '?');
    const char *path = strchr(host, '/');
    if (path && query && path > query)
        path = NULL;
    const char *path_end = query ? query : host + strlen(host);
    s_puts(out, "/");
    s_puts(out, account);
    if (path)
        s_put(out, path, (size_t)(path_end - path));
    else
        s_puts(out, "/");
    if (!query)
        return 0;

    s_pair_t pairs[AZ_HEADERS_MAX];
    size_t count = 0;
    int rc = 0;
    for (const char *param = query + 1; *param && rc == 0;) {
        const char *amp = strchr(param, '&');
        const char *param_end = amp ? amp : param + strlen(param);
        const char *equals = memchr(param, '=', (size_t)(param_end - param));
        const char *name_end = equals ? equals : param_end;
        if (param_end > param) {
            if (count == AZ_HEADERS_MAX) {
                rc = SHOAL_EMSGSIZE;
                break;
            }
            size_t value_len = equals ? (size_t)(param_end - equals - 1) : 0;
            char *name = malloc((size_t)(name_end - param) + 1);
            pairs[count].name = name;
            pairs[count].value = malloc(value_len + 1);
            count++;
            if (!name || !pairs[count - 1].value) {
                rc = SHOAL_ENOMEM;
                break;
            }
            rc = ufs_pct_decode(param, (size_t)(name_end - param), name,
                                (size_t)(name_end - param) + 1);
            for (char *p = name; rc == 0 && *p; p++)
                *p = (char)tolower((unsigned char)*p);
            if (rc == 0)
                rc = ufs_pct_decode(equals ? equals + 1 : "", value_len, pairs[count - 1].value,
                                    value_len + 1);
        }
        param = amp ? amp + 1 : param_end;
    }
    if (rc == 0) {
        qsort(pairs, count, sizeof *pairs, s_pair_cmp);
        for (size_t i = 0; i < count; i++) {
            bool same = i > 0 && strcmp(pairs[i].name, pairs[i - 1].name) == 0;
            if (same) {
                s_puts(out, ",");
            } else {
                s_puts(out, "\n");
                s_puts(out, pairs[i].name);
                s_puts(out, ":");
            }
            s_puts(out, pairs[i].value);
        }
    }
    s_pairs_free(pairs, count);
    return rc;
}

int ufs_az_string_to_sign(const char *method, const char *url, const struct curl_slist *headers,
                          const char *account, char *out, size_t out_len)
{
    static const char *const standard[] = {
        "Content-Encoding",
        "Content-Language",
        "Content-Length",
        "Content-MD5",
        "Content-Type",
        "Date",
        "If-Modified-Since",
        "If-Match",
        "If-None-Match",
        "If-Unmodified-Since",
        "Range",
    };
    s_out_t cursor = {.buf = out, .len = out_len, .pos = 0, .rc = 0};
    if (out_len == 0)
        return SHOAL_EMSGSIZE;
    out[0] = '\0';
    s_puts(&cursor, method);
    s_puts(&cursor, "\n");
    for (size_t i = 0; i < sizeof standard / sizeof standard[0]; i++) {
        char value[1024];
        s_header(headers, standard[i], value, sizeof value);
        if (strcmp(standard[i], "Content-Length") == 0 && strcmp(value, "0") == 0)
            value[0] = '\0';
        s_puts(&cursor, value);
        s_puts(&cursor, "\n");
    }
    int rc = s_canonical_headers(headers, &cursor);
    if (rc == 0)
        rc = s_canonical_resource(url, account, &cursor);
    if (rc == 0)
        rc = cursor.rc;
    if (rc < 0) {
        out[0] = '\0';
        return shoal_fail(rc, "az: cannot build the string to sign for %s", method);
    }
    return 0;
}

int ufs_az_sign(const char *string_to_sign, const unsigned char *key, size_t key_len, char *out,
                size_t out_len)
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state state;
    if (out_len < sodium_base64_ENCODED_LEN(sizeof mac, sodium_base64_VARIANT_ORIGINAL))
        return SHOAL_EMSGSIZE;
    crypto_auth_hmacsha256_init(&state, key, key_len);
    crypto_auth_hmacsha256_update(&state, (const unsigned char *)string_to_sign,
                                  strlen(string_to_sign));
    crypto_auth_hmacsha256_final(&state, mac);
    sodium_bin2base64(out, out_len, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(&state, sizeof state);
    return 0;
}
