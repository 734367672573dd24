/*
 * test_ufs_cloud_unit.c - unit tests, no server, of the I/O-free parts of the s3:// and az://
 * connectors (store/ufs_xml.c): listing and error XML, malformed XML, URI splitting,
 * percent-encoding, times, the AWS credentials file and the Azure Shared Key signature.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "coding.h"
#include "ufs_aws_cred.h"
#include "ufs_az_sign.h"
#include "ufs_cloud.h"
#include "ufs_time.h"
#include "ufs_uri.h"
#include "ufs_xml.h"

/* ---------------------------------------------------------------------------------------- */
/* Listing XML                                                                               */
/* ---------------------------------------------------------------------------------------- */

static const char s3_page[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>bucket</Name><Prefix>dir/</Prefix><KeyCount>3</KeyCount><MaxKeys>2</MaxKeys>"
    "<Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>"
    "<Contents><Key>dir/a b+c.bin</Key><LastModified>2023-05-01T12:34:56.000Z</LastModified>"
    "<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>1048576</Size>"
    "<StorageClass>STANDARD</StorageClass></Contents>"
    "<Contents><Key>dir/\xc3\xbc.txt</Key><Size>0</Size></Contents>"
    "<CommonPrefixes><Prefix>dir/sub/</Prefix></CommonPrefixes>"
    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
    "</ListBucketResult>";

Test(ufs_xml, s3_listing_page)
{
    ufs_xml_listing_t listing;
    cr_assert_eq(ufs_xml_parse_listing(s3_page, sizeof s3_page - 1, UFS_XML_S3, &listing), 0, "%s",
                 shoal_last_error());
    cr_assert_eq(listing.objects.len, 2);
    cr_assert_str_eq(listing.objects.items[0].name, "dir/a b+c.bin");
    cr_assert_eq(listing.objects.items[0].size, 1048576);
    cr_assert_eq(listing.objects.items[0].mtime, 1682944496);
    cr_assert_str_eq(listing.objects.items[0].etag, "9b2cf535f27731c974343645a3985328");
    cr_assert_str_eq(listing.objects.items[1].name, "dir/\xc3\xbc.txt");
    cr_assert_eq(listing.objects.items[1].size, 0);
    cr_assert_eq(listing.objects.items[1].mtime, 0);
    cr_assert_str_eq(listing.objects.items[1].etag, "");
    cr_assert_eq(listing.prefixes.len, 1);
    cr_assert_str_eq(listing.prefixes.items[0], "dir/sub/");
    cr_assert(listing.truncated);
    cr_assert_str_eq(listing.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
    ufs_xml_listing_fini(&listing);
    cr_assert_null(listing.objects.items);
    ufs_xml_listing_fini(&listing); /* twice is fine */
}

Test(ufs_xml, s3_last_page_and_empty)
{
    static const char last[] = "<ListBucketResult><IsTruncated>false</IsTruncated>"
                               "<KeyCount>0</KeyCount></ListBucketResult>";
    ufs_xml_listing_t listing;
    cr_assert_eq(ufs_xml_parse_listing(last, sizeof last - 1, UFS_XML_S3, &listing), 0);
    cr_assert_eq(listing.objects.len + listing.prefixes.len, 0);
    cr_assert_not(listing.truncated);
    cr_assert_null(listing.next_token);
    ufs_xml_listing_fini(&listing);
}

static const char az_page[] =
    "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?>"
    "<EnumerationResults ServiceEndpoint=\"http://127.0.0.1:10000/devstoreaccount1\" "
    "ContainerName=\"data\"><Prefix>dir/</Prefix><MaxResults>7</MaxResults>"
    "<Delimiter>/</Delimiter><Blobs>"
    "<Blob><Name>dir/one</Name><Properties><Creation-Time>Mon, 01 May 2023 12:00:00 GMT"
    "</Creation-Time><Last-Modified>Mon, 01 May 2023 12:34:56 GMT</Last-Modified>"
    "<Etag>0x8DB4A5F1E2C3D4E</Etag><Content-Length>5</Content-Length>"
    "<BlobType>BlockBlob</BlobType></Properties><OrMetadata /></Blob>"
    "<BlobPrefix><Name>dir/sub/</Name></BlobPrefix>"
    "<Blob><Name Encoded=\"true\">dir/%EF%BF%BFodd</Name><Properties>"
    "<Content-Length>0</Content-Length></Properties></Blob>"
    "</Blobs><NextMarker>2!88!MDAwMDE5IWRpci90d28-</NextMarker></EnumerationResults>";

Test(ufs_xml, az_listing_page)
{
    ufs_xml_listing_t listing;
    cr_assert_eq(ufs_xml_parse_listing(az_page, sizeof az_page - 1, UFS_XML_AZ, &listing), 0, "%s",
                 shoal_last_error());
    cr_assert_eq(listing.objects.len, 2);
    cr_assert_str_eq(listing.objects.items[0].name, "dir/one");
    cr_assert_eq(listing.objects.items[0].size, 5);
    cr_assert_eq(listing.objects.items[0].mtime, 1682944496);
    cr_assert_str_eq(listing.objects.items[0].etag, "0x8DB4A5F1E2C3D4E");
    cr_assert_str_eq(listing.objects.items[1].name, "dir/\xef\xbf\xbfodd");
    cr_assert_eq(listing.prefixes.len, 1);
    cr_assert_str_eq(listing.prefixes.items[0], "dir/sub/");
    cr_assert(listing.truncated);
    cr_assert_str_eq(listing.next_token, "2!88!MDAwMDE5IWRpci90d28-");
    ufs_xml_listing_fini(&listing);

    static const char last[] = "<EnumerationResults><Blobs /><NextMarker /></EnumerationResults>";
    cr_assert_eq(ufs_xml_parse_listing(last, sizeof last - 1, UFS_XML_AZ, &listing), 0);
    cr_assert_not(listing.truncated);
    cr_assert_null(listing.next_token);
    ufs_xml_listing_fini(&listing);
}

/* Every malformed reply fails cleanly (and ASan/LSan see no leak of partial results). */
Test(ufs_xml, malformed_listings)
{
    static const struct {
        ufs_xml_dialect_t dialect;
        const char *xml;
        int rc;
    } cases[] = {
        {UFS_XML_S3, "", SHOAL_EPROTO},
        {UFS_XML_S3, "not xml at all", SHOAL_EPROTO},
        {UFS_XML_S3, "<ListBucketResult><Contents><Key>a</Key><Size>1</Size>", SHOAL_EPROTO},
        {UFS_XML_S3, "<ListBucketResult><Contents><Key>a</Key></Contents></ListBucketResult>",
         SHOAL_EPROTO},
        {UFS_XML_S3,
         "<ListBucketResult><Contents><Key>a</Key><Size>12x</Size></Contents>"
         "</ListBucketResult>",
         SHOAL_EPROTO},
        {UFS_XML_S3,
         "<ListBucketResult><Contents><Key>a</Key><Size>-1</Size></Contents>"
         "</ListBucketResult>",
         SHOAL_EPROTO},
        {UFS_XML_S3,
         "<ListBucketResult><Contents><Key>a</Key><Size>99999999999999999999999</Size>"
         "</Contents></ListBucketResult>",
         SHOAL_EPROTO},
        {UFS_XML_S3, "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
         SHOAL_EPROTO},
        {UFS_XML_S3,
         "<ListBucketResult><Contents><Key></Key><Size>1</Size></Contents></ListBucketResult>",
         SHOAL_EPROTO},
        {UFS_XML_S3,
         "<ListBucketResult><Contents><Key>ok</Key><Size>1</Size></Contents>"
         "<Contents><Key>bad</Key></Contents></ListBucketResult>",
         SHOAL_EPROTO},
        {UFS_XML_S3, "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
         SHOAL_EPROTO},
        {UFS_XML_S3, "<EnumerationResults/>", SHOAL_EPROTO},
        {UFS_XML_AZ, "<ListBucketResult/>", SHOAL_EPROTO},
        {UFS_XML_AZ,
         "<EnumerationResults><Blobs><Blob><Name>a</Name></Blob></Blobs>"
         "</EnumerationResults>",
         SHOAL_EPROTO},
        {UFS_XML_AZ, "<EnumerationResults><Blobs><BlobPrefix/></Blobs></EnumerationResults>",
         SHOAL_EPROTO},
        {UFS_XML_AZ,
         "<EnumerationResults><Blobs><Blob><Name Encoded=\"true\">a%zz</Name><Properties>"
         "<Content-Length>1</Content-Length></Properties></Blob></Blobs></EnumerationResults>",
         SHOAL_EPROTO},
        {UFS_XML_AZ,
         "<!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]>"
         "<EnumerationResults><Blobs>&b;</Blobs></EnumerationResults",
         SHOAL_EPROTO},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ufs_xml_listing_t listing;
        shoal_clear_error();
        int rc =
            ufs_xml_parse_listing(cases[i].xml, strlen(cases[i].xml), cases[i].dialect, &listing);
        cr_expect_eq(rc, cases[i].rc, "case %zu: rc %d (%s)", i, rc, shoal_last_error());
        cr_expect_neq(shoal_last_error()[0], '\0', "case %zu has no message", i);
        cr_expect_null(listing.objects.items, "case %zu left objects", i);
        cr_expect_null(listing.next_token, "case %zu left a token", i);
    }
}

/* A name at the URI limit is refused with EMSGSIZE; a body over the cap is not parsed. */
Test(ufs_xml, size_bounds)
{
    size_t name_len = UFS_URI_MAX;
    size_t len = name_len + 200;
    char *xml = malloc(len);
    cr_assert_not_null(xml);
    int written = snprintf(xml, len,
                           "<ListBucketResult><Contents><Key>%0*d</Key><Size>1</Size>"
                           "</Contents></ListBucketResult>",
                           (int)name_len, 7);
    ufs_xml_listing_t listing;
    cr_assert_eq(ufs_xml_parse_listing(xml, (size_t)written, UFS_XML_S3, &listing), SHOAL_EMSGSIZE);
    free(xml);
    cr_assert_eq(ufs_xml_parse_listing("<x/>", (size_t)UFS_XML_BODY_MAX + 1, UFS_XML_S3, &listing),
                 SHOAL_EMSGSIZE);
}

Test(ufs_xml, error_code)
{
    static const char s3[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>"
                             "InvalidAccessKeyId</Code><Message>The AWS Access Key Id you "
                             "provided does not exist.</Message></Error>";
    static const char az[] = "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?><Error>"
                             "<Code>AuthenticationFailed</Code><Message>Server failed"
                             "</Message></Error>";
    char code[64];
    cr_assert_eq(ufs_xml_error_code(s3, sizeof s3 - 1, code, sizeof code), 0);
    cr_assert_str_eq(code, "InvalidAccessKeyId");
    cr_assert_eq(ufs_xml_error_code(az, sizeof az - 1, code, sizeof code), 0);
    cr_assert_str_eq(code, "AuthenticationFailed");
    cr_assert_eq(ufs_xml_error_code("<html>no</html>", 15, code, sizeof code), SHOAL_ENOENT);
    cr_assert_str_eq(code, "");
    cr_assert_eq(ufs_xml_error_code("<Error><Code>", 13, code, sizeof code), SHOAL_ENOENT);
    cr_assert_eq(ufs_xml_error_code(NULL, 0, code, sizeof code), SHOAL_ENOENT);
    char small[5];
    cr_assert_eq(ufs_xml_error_code(s3, sizeof s3 - 1, small, sizeof small), 0);
    cr_assert_str_eq(small, "Inva");
}

/* ---------------------------------------------------------------------------------------- */
/* URIs, encoding, time                                                                      */
/* ---------------------------------------------------------------------------------------- */

Test(ufs_cloud, uri_split)
{
    char container[64];
    const char *path;
    cr_assert_eq(ufs_cloud_uri_split("s3://bucket/a/b c", "s3", container, sizeof container, &path),
                 0);
    cr_assert_str_eq(container, "bucket");
    cr_assert_str_eq(path, "a/b c");
    cr_assert_eq(ufs_cloud_uri_split("s3://my.bucket-1", "s3", container, sizeof container, &path),
                 0);
    cr_assert_str_eq(container, "my.bucket-1");
    cr_assert_str_eq(path, "");
    cr_assert_eq(ufs_cloud_uri_split("az://c/", "az", container, sizeof container, &path), 0);
    cr_assert_str_eq(path, "");
    const char *bad[] = {"s3://",
                         "s3:///key",
                         "az://c/x",
                         "s3:/b/k",
                         "s3://b?x/k",
                         "s3://b k/x",
                         "s3://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(ufs_cloud_uri_split(bad[i], "s3", container, sizeof container, &path),
                     SHOAL_EINVAL, "%s", bad[i]);
}

/* Keys are encoded with proto's pct_encode_append; these are the SigV4 canonical-URI
 * rules the s3 and az connectors rely on. */
Test(ufs_cloud, percent_encoding)
{
    char out[64] = "";
    cr_assert_eq(pct_encode_append(out, sizeof out, "dir/a b+c\xc3\xbc~_-.=&?%", true), 0);
    cr_assert_str_eq(out, "dir/a%20b%2Bc%C3%BC~_-.%3D%26%3F%25");
    out[0] = '\0';
    cr_assert_eq(pct_encode_append(out, sizeof out, "x/y z", false), 0);
    cr_assert_str_eq(out, "x%2Fy%20z");
    cr_assert_eq(pct_encode_append(out, sizeof out, "/more", true), 0); /* appends */
    cr_assert_str_eq(out, "x%2Fy%20z/more");
    char tiny[4] = "";
    cr_assert_lt(pct_encode_append(tiny, sizeof tiny, "ab ", true), 0);

    char decoded[64];
    const char *encoded = "dir/a%20b%2Bc%C3%bc+";
    cr_assert_eq(pct_decode(encoded, strlen(encoded), decoded, sizeof decoded), 0);
    cr_assert_str_eq(decoded, "dir/a b+c\xc3\xbc+");
    cr_assert_eq(pct_decode("%4", 2, decoded, sizeof decoded), SHOAL_EINVAL);
    cr_assert_eq(pct_decode("%", 1, decoded, sizeof decoded), SHOAL_EINVAL);
    cr_assert_eq(pct_decode("%g0", 3, decoded, sizeof decoded), SHOAL_EINVAL);
    cr_assert_eq(pct_decode("a%00", 4, decoded, sizeof decoded), SHOAL_EINVAL);
    cr_assert_eq(pct_decode("abcd", 4, decoded, 4), SHOAL_EMSGSIZE);
    cr_assert_eq(pct_decode("%41", 3, decoded, 2), 0);
    cr_assert_str_eq(decoded, "A");
}

Test(ufs_cloud, times_and_etags)
{
    cr_assert_eq(ufs_cloud_parse_time("2023-05-01T12:34:56.000Z"), 1682944496);
    cr_assert_eq(ufs_cloud_parse_time("2023-05-01T12:34:56Z"), 1682944496);
    cr_assert_eq(ufs_cloud_parse_time("Mon, 01 May 2023 12:34:56 GMT"), 1682944496);
    cr_assert_eq(ufs_cloud_parse_time("yesterday-ish"), 0);
    cr_assert_eq(ufs_cloud_parse_time("2023-13-01T00:00:00Z"), 0);
    cr_assert_eq(ufs_cloud_parse_time(NULL), 0);
}

/* Directory markers are skipped, prefixes lose their '/', objects without an ETag get
 * "<size>-<mtime>"; a failed status names the code and, for refusals, the credentials. */
Test(ufs_cloud, push_listing_and_status)
{
    ufs_xml_object_t objects[] = {
        {.name = "dir/", .size = 0},
        {.name = "dir/a", .size = 3, .mtime = 7, .etag = "abc"},
        {.name = "dir/b", .size = 4, .mtime = 9},
        {.name = "dir/sub/", .size = 0},
    };
    char *prefixes[] = {"dir/p/"};
    ufs_xml_listing_t page = {.objects = {.items = objects, .len = 4, .capacity = 4},
                              .prefixes = {.items = prefixes, .len = 1, .capacity = 1}};
    ufs_list_t list;
    ufs_list_init(&list);
    cr_assert_eq(ufs_cloud_push_listing(&list, "s3", "bkt", "dir/", &page), 0);
    cr_assert_eq(list.count, 3);
    cr_assert_str_eq(list.entries[0].uri, "s3://bkt/dir/a");
    cr_assert_str_eq(list.entries[0].stat.version, "abc");
    cr_assert_eq(list.entries[0].stat.mtime, 7);
    cr_assert_str_eq(list.entries[1].uri, "s3://bkt/dir/b");
    cr_assert_str_eq(list.entries[1].stat.version, "4-9");
    cr_assert_str_eq(list.entries[2].uri, "s3://bkt/dir/p");
    cr_assert(list.entries[2].stat.is_dir);
    ufs_list_fini(&list);

    cr_assert_eq(ufs_cloud_status_fail(403, "GET", "s3://b/k", "InvalidAccessKeyId", "key AK"),
                 SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "HTTP 403 InvalidAccessKeyId"), "%s", shoal_last_error());
    cr_assert(strstr(shoal_last_error(), "key AK"));
    cr_assert_eq(ufs_cloud_status_fail(404, "HEAD", "s3://b/k", "", "key AK"), SHOAL_ENOENT);
    cr_assert_null(strstr(shoal_last_error(), "key AK"));
    cr_assert_eq(ufs_cloud_status_fail(412, "GET", "s3://b/k", NULL, NULL), SHOAL_ESTALE);
    cr_assert_eq(ufs_cloud_status_fail(500, "GET", "s3://b/k", "InternalError", NULL), SHOAL_EIO);
    cr_assert(strstr(shoal_last_error(), "HTTP 500"));
}

/* ---------------------------------------------------------------------------------------- */
/* AWS credentials file                                                                      */
/* ---------------------------------------------------------------------------------------- */

static const char credentials_file[] = "# shared credentials\r\n"
                                       "[default]\r\n"
                                       "aws_access_key_id = AKIADEFAULT\r\n"
                                       "aws_secret_access_key=secret/with+chars=\r\n"
                                       "\r\n"
                                       "; another comment\n"
                                       "[ profile work ]\n"
                                       "  AWS_Access_Key_Id   =   AKIAWORK   \n"
                                       "aws_secret_access_key = work secret with spaces\n"
                                       "aws_session_token = FwoGZXIvYXdzE#not-a-comment\n"
                                       "s3 =\n"
                                       "    aws_access_key_id = NESTED-IGNORED\n"
                                       "[partial]\n"
                                       "aws_access_key_id = ONLYKEY\n"
                                       "[dup]\n"
                                       "aws_access_key_id = FIRST\n"
                                       "aws_secret_access_key = s1\n"
                                       "[dup]\n"
                                       "aws_access_key_id = SECOND\n"
                                       "[default-ish]\n"
                                       "aws_access_key_id = NOPE\n"
                                       "aws_secret_access_key = NOPE";

Test(ufs_s3_credentials, profiles)
{
    ufs_s3_credentials_t creds;
    cr_assert_eq(ufs_s3_credentials_parse(credentials_file, "default", &creds), 0);
    cr_assert_str_eq(creds.access_key, "AKIADEFAULT");
    cr_assert_str_eq(creds.secret_key, "secret/with+chars=");
    cr_assert_str_eq(creds.session_token, "");

    cr_assert_eq(ufs_s3_credentials_parse(credentials_file, "work", &creds), 0, "%s",
                 shoal_last_error());
    cr_assert_str_eq(creds.access_key, "AKIAWORK");
    cr_assert_str_eq(creds.secret_key, "work secret with spaces");
    cr_assert_str_eq(creds.session_token, "FwoGZXIvYXdzE#not-a-comment");

    cr_assert_eq(ufs_s3_credentials_parse(credentials_file, "dup", &creds), 0);
    cr_assert_str_eq(creds.access_key, "SECOND");
    cr_assert_str_eq(creds.secret_key, "s1");

    cr_assert_eq(ufs_s3_credentials_parse(credentials_file, "default-ish", &creds), 0);
    cr_assert_str_eq(creds.secret_key, "NOPE");

    cr_assert_eq(ufs_s3_credentials_parse(credentials_file, "partial", &creds), SHOAL_ENOENT);
    cr_assert_str_eq(creds.access_key, "");
    cr_assert_eq(ufs_s3_credentials_parse(credentials_file, "missing", &creds), SHOAL_ENOENT);
    cr_assert(strstr(shoal_last_error(), "missing"));
    cr_assert_eq(ufs_s3_credentials_parse("", "default", &creds), SHOAL_ENOENT);
    cr_assert_eq(ufs_s3_credentials_parse("[default\naws_access_key_id=x\n"
                                          "aws_secret_access_key=y\n",
                                          "default", &creds),
                 SHOAL_ENOENT);
}

Test(ufs_s3_credentials, value_too_long)
{
    size_t len = UFS_S3_TOKEN_MAX + 100;
    char *text = malloc(len + 100);
    cr_assert_not_null(text);
    int pos = sprintf(text, "[default]\naws_session_token = ");
    memset(text + pos, 'x', len);
    text[pos + (int)len] = '\0';
    ufs_s3_credentials_t creds;
    cr_assert_eq(ufs_s3_credentials_parse(text, "default", &creds), SHOAL_EMSGSIZE);
    free(text);
}

/* ---------------------------------------------------------------------------------------- */
/* Azure Shared Key                                                                          */
/* ---------------------------------------------------------------------------------------- */

static const char devstore_key_b64[] =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6"
    "tq/K1SZFPTOtr/KBHBeksoGMGw==";

static size_t s_devstore_key(unsigned char *key, size_t key_len)
{
    size_t len = 0;
    cr_assert_eq(sodium_base642bin(key, key_len, devstore_key_b64, strlen(devstore_key_b64), NULL,
                                   &len, NULL, sodium_base64_VARIANT_ORIGINAL),
                 0);
    return len;
}

/* Microsoft's own example from "Authorize with Shared Key" (emulator-style path, the account
 * named twice). The expected signature was computed independently with Python's hmac. */
Test(ufs_az_sign, microsoft_example)
{
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "x-ms-version: 2009-09-19");
    headers = curl_slist_append(headers, "x-ms-date: Sun, 11 Oct 2009 21:49:13 GMT");
    headers = curl_slist_append(headers, "Accept: */*");
    char sts[2048];
    cr_assert_eq(ufs_az_string_to_sign("GET",
                                       "http://127.0.0.1:10000/myaccount/mycontainer?"
                                       "restype=container&comp=metadata&timeout=20",
                                       headers, "myaccount", sts, sizeof sts),
                 0);
    cr_assert_str_eq(sts, "GET\n\n\n\n\n\n\n\n\n\n\n\n"
                          "x-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\nx-ms-version:2009-09-19\n"
                          "/myaccount/myaccount/mycontainer\ncomp:metadata\nrestype:container\n"
                          "timeout:20");
    unsigned char key[64];
    size_t key_len = s_devstore_key(key, sizeof key);
    char signature[64];
    cr_assert_eq(ufs_az_sign(sts, key, key_len, signature, sizeof signature), 0);
    cr_assert_str_eq(signature, "Su5rvibNeMxB7A4I87rOtEgCDtdICsL8v5H+yJs0W+M=");
    curl_slist_free_all(headers);
}

/* Standard headers land on their lines (Content-Length 0 as empty), x-ms-* headers are
 * lowercased, sorted and folded, query values decoded, repeated names joined sorted. */
Test(ufs_az_sign, headers_and_query)
{
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "X-MS-Version: 2021-08-06");
    headers = curl_slist_append(headers, "x-ms-range:   bytes=0-1023  ");
    headers = curl_slist_append(headers, "Content-Length: 0");
    headers = curl_slist_append(headers, "If-Match: \"0x8DB\"");
    headers = curl_slist_append(headers, "Range: bytes=0-1023");
    headers = curl_slist_append(headers, "x-ms-date: Mon,  01 May 2023\t12:34:56 GMT");
    char sts[2048];
    cr_assert_eq(ufs_az_string_to_sign("GET",
                                       "http://127.0.0.1:10000/devstoreaccount1/data/dir/"
                                       "a%20b%2Bc?prefix=x%2Fy%20z&include=snapshots&COMP=list"
                                       "&include=metadata",
                                       headers, "devstoreaccount1", sts, sizeof sts),
                 0, "%s", shoal_last_error());
    cr_assert_str_eq(sts, "GET\n\n\n\n\n\n\n\n\"0x8DB\"\n\n\nbytes=0-1023\n"
                          "x-ms-date:Mon, 01 May 2023 12:34:56 GMT\nx-ms-range:bytes=0-1023\n"
                          "x-ms-version:2021-08-06\n"
                          "/devstoreaccount1/devstoreaccount1/data/dir/a%20b%2Bc\n"
                          "comp:list\ninclude:metadata,snapshots\nprefix:x/y z");
    unsigned char key[64];
    size_t key_len = s_devstore_key(key, sizeof key);
    char signature[64];
    cr_assert_eq(ufs_az_sign(sts, key, key_len, signature, sizeof signature), 0);
    cr_assert_str_eq(signature, "YK6b/QvRqPnJtM0YbtZxMOid/fNCcgpwlmPvcteg1ys=");
    cr_assert_eq(ufs_az_sign(sts, key, key_len, signature, 20), SHOAL_EMSGSIZE);

    /* No path: the resource is the account root; too small an output fails cleanly. */
    cr_assert_eq(ufs_az_string_to_sign("GET", "https://acct.blob.core.windows.net?comp=list", NULL,
                                       "acct", sts, sizeof sts),
                 0);
    cr_assert(strstr(sts, "\n/acct/\ncomp:list"), "%s", sts);
    cr_assert_eq(ufs_az_string_to_sign("GET", "https://acct.blob.core.windows.net/c", headers,
                                       "acct", sts, 40),
                 SHOAL_EMSGSIZE);
    cr_assert_eq(ufs_az_string_to_sign("GET", "no-scheme", NULL, "acct", sts, sizeof sts),
                 SHOAL_EINVAL);
    cr_assert_eq(ufs_az_string_to_sign("GET", "http://h/c?x=%zz", NULL, "acct", sts, sizeof sts),
                 SHOAL_EINVAL);
    curl_slist_free_all(headers);
}
