/*
 * test_ufs_core.c - pure unit tests of the UFS front door: URI validation and dispatch, the
 * listing helpers, option defaults, and the small HTTP helpers (ETag versions, URL encoding).
 */
#include <criterion/criterion.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "ufs_conn.h"
#include "ufs_uri.h"

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
    cr_assert_eq(pct_encode_append(out, sizeof out, "a b/c~d%é", true), 0);
    cr_assert_str_eq(out, "http://h/a%20b/c~d%25%C3%A9");
    out[0] = '\0';
    cr_assert_eq(pct_encode_append(out, sizeof out, "refs/pr/1", false), 0);
    cr_assert_str_eq(out, "refs%2Fpr%2F1");
    char small[8] = "";
    /* proto says EMSGSIZE; the connectors map it to their SHOAL_EINVAL "url too long" */
    cr_assert_eq(pct_encode_append(small, sizeof small, "abcdefgh", false), SHOAL_EMSGSIZE);
}

/* Every byte, one at a time, under every locale we can set (a Latin-1 locale would call 0xE9
 * a letter for isalnum): only ASCII letters, digits and "-._~" (and '/' when kept) stay raw;
 * every byte >= 0x80 is %XX. */
Test(ufs_core, url_encode_every_byte_any_locale)
{
    const char *locales[] = {"C",          "C.UTF-8",         "en_US.UTF-8", "de_DE.ISO-8859-1",
                             "fr_FR@euro", "en_US.ISO-8859-1"};
    for (size_t l = 0; l < sizeof locales / sizeof locales[0]; l++) {
        if (!setlocale(LC_ALL, locales[l]))
            continue;
        for (int byte = 1; byte < 256; byte++) {
            char text[2] = {(char)byte, 0}, out[8] = "";
            cr_assert_eq(pct_encode_append(out, sizeof out, text, true), 0);
            bool plain = (byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z') ||
                         (byte >= '0' && byte <= '9') || strchr("-._~/", byte);
            char want[8];
            if (plain)
                snprintf(want, sizeof want, "%c", byte);
            else
                snprintf(want, sizeof want, "%%%02X", byte);
            cr_assert_str_eq(out, want, "byte 0x%02x under %s", byte, locales[l]);
        }
    }
    setlocale(LC_ALL, "C");
}

/* Secrets in URLs never reach a message: passwords and query values other than the listing
 * parameters are hidden, in any URL of the text; other schemes are left alone. */
Test(ufs_core, redact)
{
    char out[UFS_ERROR_MAX];
    const char *cases[][2] = {
        {"GET "
         "https://acct.blob.core.windows.net/c/b?sv=2021-08-06&ss=b&sp=rl&se=2099-01-01T00%3A00Z"
         "&sig=AbC%2Bd%3D: Couldn't connect (x) after 4 attempts",
         "GET https://acct.blob.core.windows.net/c/b?sv=<redacted>&ss=<redacted>&sp=<redacted>"
         "&se=<redacted>&sig=<redacted>: Couldn't connect (x) after 4 attempts"},
        {"GET http://127.0.0.1:1/c?restype=container&comp=list&maxresults=7&prefix=a%2F&marker=m"
         "&sig=SECRET: HTTP 403",
         "GET http://127.0.0.1:1/c?restype=container&comp=list&maxresults=7&prefix=a%2F&marker=m"
         "&sig=<redacted>: HTTP 403"},
        {"HEAD https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA"
         "%2F2024&X-Amz-Signature=f00d&X-Amz-Security-Token=tok, then http://h/x?list-type=2&"
         "max-keys=7",
         "HEAD https://b.s3.amazonaws.com/k?X-Amz-Algorithm=<redacted>&X-Amz-Credential=<redacted>"
         "&X-Amz-Signature=<redacted>&X-Amz-Security-Token=<redacted>, then "
         "http://h/x?list-type=2&max-keys=7"},
        {"GET HTTP://alice:pa55@host:8080/p?secretonly: 401",
         "GET HTTP://alice:<redacted>@host:8080/p?<redacted>: 401"},
        {"GET https://token@host/p?=v&&x=", "GET https://token@host/p?=<redacted>&&x="},
        {"s3://bucket/a?b=c and hf://datasets/o/n/x?y=z and file:///tmp/q?r=s stay",
         "s3://bucket/a?b=c and hf://datasets/o/n/x?y=z and file:///tmp/q?r=s stay"},
        {"no url: just ://text?a=b", "no url: just ://text?a=b"},
        {"<http://h/?sig=x>", "<http://h/?sig=<redacted>>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ufs_redact(cases[i][0], out, sizeof out);
        cr_assert_str_eq(out, cases[i][1], "case %zu", i);
        /* Redacting again changes nothing. */
        char again[UFS_ERROR_MAX];
        ufs_redact(out, again, sizeof again);
        cr_assert_str_eq(again, out, "case %zu twice", i);
    }
    /* Cut to fit, never past the buffer, and a cut never shows part of a value. */
    char small[40];
    ufs_redact("GET http://host/path?sig=0123456789abcdef0123456789", small, sizeof small);
    cr_assert_str_eq(small, "GET http://host/path?sig=<redacted>");
    ufs_redact("GET http://host/a-much-longer-path-than-fits?sig=0123", small, sizeof small);
    cr_assert_eq(strlen(small), sizeof small - 1);
    cr_assert_null(strstr(small, "0123"));

    /* ufs_fail redacts, also for messages over the last-error size. */
    char *long_url = malloc(8192);
    memset(long_url, 'p', 8192);
    memcpy(long_url, "http://h/", 9);
    snprintf(long_url + 6000, 8192 - 6000, "?sig=TOPSECRET");
    cr_assert_eq(ufs_fail(SHOAL_EIO, "GET %s: failed", long_url), SHOAL_EIO);
    cr_assert_null(strstr(shoal_last_error(), "TOPSECRET"));
    /* A message whose secret straddles the last error's size. */
    snprintf(long_url + 490, 8192 - 490, "?sig=TOPSECRET");
    cr_assert_eq(ufs_fail(SHOAL_EIO, "GET %s: failed", long_url), SHOAL_EIO);
    cr_assert_null(strstr(shoal_last_error(), "TOPS"), "%s", shoal_last_error());
    cr_assert(strstr(shoal_last_error(), "?sig=<red"), "%s", shoal_last_error());
    free(long_url);
    cr_assert_eq(ufs_http_status_error(403, "GET http://u:pw@h/x?sig=s1"), SHOAL_EACCES);
    cr_assert_str_eq(shoal_last_error(), "GET http://u:<redacted>@h/x?sig=<redacted>: HTTP 403 "
                                         "(access denied)");
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
