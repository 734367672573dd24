/*
 * fuzz_ufs_xml.c - libFuzzer target for the s3:// and az:// reply parsers (store/ufs_xml.c):
 * a listing page in either dialect, the <Error><Code> of an error reply, and the listing's
 * conversion into ufs_list entries. The first input byte picks the dialect; the rest is the
 * reply. Checks the invariants ufs_xml.h promises; any breach aborts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ufs_cloud.h"
#include "ufs_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_die(const char *what)
{
    fprintf(stderr, "fuzz_ufs_xml: %s (last error: %s)\n", what, shoal_last_error());
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    ufs_xml_init();
    ufs_xml_dialect_t dialect = (data[0] & 1) ? UFS_XML_AZ : UFS_XML_S3;
    const char *xml = (const char *)data + 1;
    size_t len = size - 1;

    ufs_xml_listing_t page;
    memset(&page, 0, sizeof page);
    int rc = ufs_xml_parse_listing(xml, len, dialect, &page);
    if (rc > 0 || rc < SHOAL_ERR_MIN)
        s_die("listing: code outside the error range");
    if (rc < 0) {
        if (page.objects.items || page.prefixes.items || page.next_token || page.objects.len ||
            page.prefixes.len)
            s_die("listing: a failed parse left entries behind");
    } else {
        if (page.objects.len > page.objects.capacity ||
            page.prefixes.len > page.prefixes.capacity ||
            page.objects.len + page.prefixes.len > UFS_XML_ENTRIES_MAX)
            s_die("listing: counts over capacities or the entry limit");
        for (size_t i = 0; i < page.objects.len; i++) {
            if (!page.objects.items[i].name || strlen(page.objects.items[i].name) > UFS_URI_MAX)
                s_die("listing: object name NULL or over UFS_URI_MAX");
            if (strnlen(page.objects.items[i].etag, UFS_VERSION_MAX) == UFS_VERSION_MAX)
                s_die("listing: etag not terminated");
        }
        for (size_t i = 0; i < page.prefixes.len; i++)
            if (!page.prefixes.items[i] || strlen(page.prefixes.items[i]) > UFS_URI_MAX)
                s_die("listing: prefix NULL or over UFS_URI_MAX");
        /* What the connectors do next with a page. */
        ufs_list_t list;
        ufs_list_init(&list);
        rc = ufs_cloud_push_listing(&list, dialect == UFS_XML_AZ ? "az" : "s3", "bucket", "p/",
                                    &page);
        if (rc != 0 && rc != SHOAL_ENOMEM)
            s_die("push_listing: unexpected error");
        if (list.count > page.objects.len + page.prefixes.len)
            s_die("push_listing: more entries than the page had");
        for (size_t i = 0; i < list.count; i++) {
            const char *uri = list.entries[i].uri;
            if (strlen(uri) > UFS_URI_MAX ||
                strncmp(uri, dialect == UFS_XML_AZ ? "az://bucket/" : "s3://bucket/", 12) != 0)
                s_die("push_listing: an entry outside the bucket or over UFS_URI_MAX");
        }
        ufs_list_fini(&list);
        ufs_xml_listing_fini(&page);
    }

    char code[128];
    rc = ufs_xml_error_code(xml, len, code, sizeof code);
    if (rc != 0 && rc != SHOAL_ENOENT)
        s_die("error_code: unexpected code");
    if (strnlen(code, sizeof code) == sizeof code || (rc != 0 && code[0]))
        s_die("error_code: out not terminated, or set on failure");
    return 0;
}
