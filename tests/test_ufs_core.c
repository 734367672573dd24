/*
 * test_ufs_core.c - pure unit tests of the UFS front door: URI validation and dispatch, the
 * listing helpers, option defaults, and the small HTTP helpers (ETag versions, URL encoding).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ufs_conn.h"

Test(ufs_core, uri_validation)
{
    ufs_t *ufs = ufs_new(NULL);
    cr_assert_not_null(ufs);
    ufs_stat_t st;
    cr_assert_eq(ufs_stat(ufs, NULL, &st), SHOAL_EINVAL);
    cr_assert_eq(ufs_stat(ufs, "", &st), SHOAL_EINVAL);
    cr_assert_eq(ufs_stat(ufs, "no-scheme/path", &st), SHOAL_EINVAL);
    cr_assert_eq(ufs_stat(ufs, "://x", &st), SHOAL_EINVAL);
    cr_assert_eq(ufs_stat(ufs, "1x://x", &st), SHOAL_EINVAL);
    cr_assert_eq(ufs_stat(ufs, "file:///tmp/a\nb", &st), SHOAL_EINVAL);
    cr_assert(strstr(shoal_last_error(), "control character"));
    cr_assert_eq(ufs_stat(ufs, "file:///tmp/a\x7f", &st), SHOAL_EINVAL);
    cr_assert_eq(ufs_stat(ufs, "gopher://host/x", &st), SHOAL_ENOTSUP);
    cr_assert(strstr(shoal_last_error(), "gopher"));

    char *uri = malloc(UFS_URI_MAX + 2);
    memcpy(uri, "gopher://", 9);
    memset(uri + 9, 'a', UFS_URI_MAX + 1 - 9);
    uri[UFS_URI_MAX + 1] = '\0';
    cr_assert_eq(ufs_stat(ufs, uri, &st), SHOAL_EINVAL);
    uri[UFS_URI_MAX] = '\0'; /* exactly the limit: valid, then refused for its scheme */
    cr_assert_eq(ufs_stat(ufs, uri, &st), SHOAL_ENOTSUP);
    free(uri);

    char buf[4];
    cr_assert_eq(ufs_read(ufs, "http://127.0.0.1:1/x", NULL, 0, NULL, 4), SHOAL_EINVAL);
    cr_assert_eq(ufs_read(ufs, "bogus", NULL, 0, buf, sizeof buf), SHOAL_EINVAL);
    ufs_destroy(&ufs);
    cr_assert_null(ufs);
    ufs_destroy(&ufs); /* safe on NULL */
}

Test(ufs_core, scheme_parse)
{
    char scheme[16];
    cr_assert_eq(ufs_uri_scheme("HTTPS://h/x", scheme, sizeof scheme), 0);
    cr_assert_str_eq(scheme, "https");
    cr_assert_eq(ufs_uri_scheme("s3://b/k", scheme, sizeof scheme), 0);
    cr_assert_str_eq(scheme, "s3");
    cr_assert_eq(ufs_uri_scheme("s3:/b/k", scheme, sizeof scheme), SHOAL_EINVAL);
    cr_assert_eq(ufs_uri_scheme("averyveryverylongscheme://x", scheme, sizeof scheme),
                 SHOAL_EINVAL);
}

Test(ufs_core, options_defaults)
{
    ufs_t *ufs = ufs_new(NULL);
    const ufs_options_t *o = ufs_options(ufs);
    cr_assert_eq(o->connect_timeout_ms, 5000);
    cr_assert_eq(o->timeout_ms, 60000);
    cr_assert_eq(o->low_speed_ms, 10000);
    cr_assert_eq(o->max_retries, 4);
    cr_assert_eq(o->retry_base_ms, 100);
    ufs_destroy(&ufs);
    ufs_options_t mine = {.timeout_ms = 1234, .max_retries = -1};
    ufs = ufs_new(&mine);
    o = ufs_options(ufs);
    cr_assert_eq(o->timeout_ms, 1234);
    cr_assert_eq(o->max_retries, 0);
    cr_assert_eq(o->connect_timeout_ms, 5000);
    ufs_destroy(&ufs);
}

Test(ufs_core, list_push_sort_fini)
{
    ufs_list_t list;
    ufs_list_init(&list);
    ufs_stat_t st = {.size = 7};
    const char *names[] = {"file:///b", "file:///a/z", "file:///a", "file:///c"};
    for (int round = 0; round < 10; round++)
        for (size_t i = 0; i < 4; i++) {
            st.size = i;
            cr_assert_eq(ufs_list_push(&list, names[i], &st), 0);
        }
    cr_assert_eq(list.count, 40);
    cr_assert_geq(list.capacity, 40);
    ufs_list_sort(&list);
    for (size_t i = 1; i < list.count; i++)
        cr_assert_leq(strcmp(list.entries[i - 1].uri, list.entries[i].uri), 0);
    cr_assert_str_eq(list.entries[0].uri, "file:///a");
    cr_assert_eq(list.entries[0].stat.size, 2);
    cr_assert_str_eq(list.entries[39].uri, "file:///c");
    ufs_list_fini(&list);
    cr_assert_eq(list.count, 0);
    cr_assert_null(list.entries);
    ufs_list_fini(&list); /* twice is fine */
}

Test(ufs_core, etag_version)
{
    char out[UFS_VERSION_MAX];
    cr_assert_str_eq(ufs_etag_version("\"abc-12\"", out, sizeof out), "abc-12");
    cr_assert_str_eq(ufs_etag_version("W/\"abc\"", out, sizeof out), "W/abc");
    cr_assert_str_eq(ufs_etag_version("bare", out, sizeof out), "bare");
    cr_assert_str_eq(ufs_etag_version("\"", out, sizeof out), "\"");
    cr_assert_str_eq(ufs_etag_version("", out, sizeof out), "");
    cr_assert_str_eq(ufs_etag_version(NULL, out, sizeof out), "");
}

Test(ufs_core, url_encode)
{
    char out[64] = "http://h/";
    cr_assert_eq(ufs_url_append_encoded(out, sizeof out, "a b/c~d%é", true), 0);
    cr_assert_str_eq(out, "http://h/a%20b/c~d%25%C3%A9");
    out[0] = '\0';
    cr_assert_eq(ufs_url_append_encoded(out, sizeof out, "refs/pr/1", false), 0);
    cr_assert_str_eq(out, "refs%2Fpr%2F1");
    char small[8] = "";
    cr_assert_eq(ufs_url_append_encoded(small, sizeof small, "abcdefgh", false), SHOAL_EINVAL);
}

Test(ufs_core, header_lookup)
{
    ufs_http_response_t response = {0};
    response.header_block = strdup("HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\n"
                                   "etag:   \"x\"  \r\nX-Empty:\r\n\r\n");
    char value[32];
    cr_assert_str_eq(ufs_http_header(&response, "content-length", value, sizeof value), "10");
    cr_assert_str_eq(ufs_http_header(&response, "ETag", value, sizeof value), "\"x\"");
    cr_assert_str_eq(ufs_http_header(&response, "X-Empty", value, sizeof value), "");
    cr_assert_null(ufs_http_header(&response, "Content", value, sizeof value));
    cr_assert_null(ufs_http_header(&response, "Missing", value, sizeof value));
    char tiny[3];
    cr_assert_str_eq(ufs_http_header(&response, "Content-Length", tiny, sizeof tiny), "10");
    ufs_http_response_fini(&response);
    cr_assert_eq(response.content_length, -1);
}

Test(ufs_core, status_mapping)
{
    cr_assert_eq(ufs_http_status_error(404, "GET x"), SHOAL_ENOENT);
    cr_assert_eq(ufs_http_status_error(403, "GET x"), SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "403"));
    cr_assert_eq(ufs_http_status_error(401, "GET x"), SHOAL_EACCES);
    cr_assert_eq(ufs_http_status_error(412, "GET x"), SHOAL_ESTALE);
    cr_assert_eq(ufs_http_status_error(416, "GET x"), 0);
    cr_assert_eq(ufs_http_status_error(500, "GET x"), SHOAL_EIO);
    cr_assert_eq(ufs_http_status_error(504, "GET x"), SHOAL_ETIMEDOUT);
}
