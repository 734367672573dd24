/*
 * test_base_uri.c - the one URI normaliser (proto/uri.h): every case of node/mount.c's tests
 * (copied, so that the move keeps the behaviour), then idempotence and node/client agreement
 * for spaces, %20, non-ASCII bytes and long paths.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "uri.h"

static char s_out[URI_MAX + 2];

/* Normalises `in` and returns the code; the result is in s_out. */
static int s_norm(const char *in)
{
    memset(s_out, 0, sizeof s_out);
    return uri_normalize(in, s_out, sizeof s_out, NULL);
}

#define EXPECT_NORM(in, want)                                                                      \
    do {                                                                                           \
        cr_assert_eq(s_norm(in), 0, "%s: %s", in, shoal_last_error());                             \
        cr_assert_str_eq(s_out, want, "%s", in);                                                   \
    } while (0)

Test(uri_normalize, plain_uris_are_unchanged)
{
    EXPECT_NORM("s3://bucket/data/train/0001.tar", "s3://bucket/data/train/0001.tar");
    EXPECT_NORM("file:///srv/data/x", "file:///srv/data/x");
    EXPECT_NORM("http://127.0.0.1:8080/a/b", "http://127.0.0.1:8080/a/b");
    EXPECT_NORM("hf://datasets/org/name/file.parquet", "hf://datasets/org/name/file.parquet");
}

Test(uri_normalize, scheme_and_http_host_are_lowercased)
{
    EXPECT_NORM("S3://Bucket/Key", "s3://Bucket/Key");
    EXPECT_NORM("HTTP://Example.COM/Path", "http://example.com/Path");
}

Test(uri_normalize, slashes_collapse_and_root_is_slash)
{
    EXPECT_NORM("s3://b//x///y", "s3://b/x/y");
    EXPECT_NORM("s3://b", "s3://b/");
    EXPECT_NORM("s3://b/", "s3://b/");
    EXPECT_NORM("file:///", "file:///");
    EXPECT_NORM("file:////srv//data/", "file:///srv/data/");
}

Test(uri_normalize, dot_segments_resolve)
{
    EXPECT_NORM("s3://b/./x/./y", "s3://b/x/y");
    EXPECT_NORM("s3://b/x/../y", "s3://b/y");
    EXPECT_NORM("s3://b/x/y/..", "s3://b/x/");
    EXPECT_NORM("s3://b/x/.", "s3://b/x/");
    EXPECT_NORM("s3://b/x/y/../../z", "s3://b/z");
    EXPECT_NORM("s3://b/...", "s3://b/..."); /* three dots is a name */
    EXPECT_NORM("s3://b/..x/x..", "s3://b/..x/x..");
}

Test(uri_normalize, unreserved_escapes_decode_others_stay_uppercase)
{
    EXPECT_NORM("s3://b/%41%62%2d%5f%7e", "s3://b/Ab-_~");
    EXPECT_NORM("s3://b/a%20b", "s3://b/a%20b");
    EXPECT_NORM("s3://b/a%3fb", "s3://b/a%3Fb");
    EXPECT_NORM("s3://b/%e2%82%ac", "s3://b/%E2%82%AC");
    EXPECT_NORM("s3://b/caf\xc3\xa9", "s3://b/caf\xc3\xa9"); /* raw UTF-8 is kept */
}

Test(uri_normalize, encoded_dots_are_dot_segments)
{
    EXPECT_NORM("s3://b/x/%2e%2e/y", "s3://b/y");
    EXPECT_NORM("s3://b/x/%2E/y", "s3://b/x/y");
    EXPECT_NORM("s3://b/x/.%2e/y", "s3://b/y");
    cr_assert_eq(s_norm("s3://b/%2e%2e/etc"), SHOAL_EACCES);
}

Test(uri_normalize, climbing_above_the_root_is_refused)
{
    cr_assert_eq(s_norm("file:///.."), SHOAL_EACCES);
    cr_assert_eq(s_norm("file:///srv/../../etc/passwd"), SHOAL_EACCES);
    cr_assert_eq(s_norm("s3://b/x/../../y"), SHOAL_EACCES);
}

Test(uri_normalize, malformed_is_refused)
{
    const char *bad[] = {
        "",                  /* empty */
        "no-scheme/path",    /* no :// */
        "s3:/b/x",           /* one slash */
        "://b/x",            /* empty scheme */
        "3s://b/x",          /* scheme starts with a digit */
        "s 3://b/x",         /* space in scheme */
        "s3://b/x%",         /* truncated escape */
        "s3://b/x%4",        /* truncated escape */
        "s3://b/x%zz",       /* not hex */
        "s3://b/x%00y",      /* escaped NUL */
        "s3://b/x%0ay",      /* escaped newline */
        "s3://b/x%7f",       /* escaped DEL */
        "s3://b/x\ny",       /* raw newline */
        "s3://b/x\ty",       /* raw tab */
        "s3://b/x\x7fy",     /* raw DEL */
        "s3://b/x%2fy",      /* escaped slash */
        "s3://b/x%2F..%2Fy", /* escaped slash traversal */
        "s3://b/x%5c..%5cy", /* escaped backslash */
        "s3://b/x?y",        /* query */
        "s3://b/x#y",        /* fragment */
        "s3://b%2f/x",       /* escape in the authority */
        "s3://b\\/x",        /* backslash in the authority */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(s_norm(bad[i]), SHOAL_EINVAL, "'%s' gave %d", bad[i], s_norm(bad[i]));
}

Test(uri_normalize, length_limits)
{
    static char uri[URI_MAX + 16];
    strcpy(uri, "s3://b/");
    memset(uri + 7, 'a', URI_MAX - 7);
    uri[URI_MAX] = '\0';
    cr_assert_eq(s_norm(uri), 0);
    cr_assert_eq(strlen(s_out), URI_MAX);
    uri[URI_MAX] = 'a';
    uri[URI_MAX + 1] = '\0';
    cr_assert_eq(s_norm(uri), SHOAL_EINVAL);
    char small[8];
    cr_assert_eq(uri_normalize("s3://bucket/key", small, sizeof small, NULL), SHOAL_EINVAL);
}

Test(uri_normalize, min_depth_reports_the_lowest_point)
{
    size_t depth = 0;
    cr_assert_eq(uri_normalize("s3://b/x/y", s_out, sizeof s_out, &depth), 0);
    cr_assert_eq(depth, SIZE_MAX);
    cr_assert_eq(uri_normalize("s3://b/x/y/../../x/y", s_out, sizeof s_out, &depth), 0);
    cr_assert_eq(depth, 0);
    cr_assert_eq(uri_normalize("s3://b/x/y/z/../w", s_out, sizeof s_out, &depth), 0);
    cr_assert_eq(depth, 2);
}

/* The normal form of a normal form is itself: a client that normalises before hashing and a
 * node that normalises what it receives agree on every accepted input. */
static void s_expect_fixed_point(const char *in)
{
    static char once[URI_MAX + 2], twice[URI_MAX + 2];
    cr_assert_eq(uri_normalize(in, once, sizeof once, NULL), 0, "%s: %s", in, shoal_last_error());
    cr_assert_eq(uri_normalize(once, twice, sizeof twice, NULL), 0, "%s", once);
    cr_assert_str_eq(once, twice, "%s", in);
}

Test(uri_normalize, normal_form_is_a_fixed_point)
{
    const char *inputs[] = {
        "s3://b/a b/c d.txt",
        "s3://b/a%20b/c%20d.txt",
        "s3://b/caf\xc3\xa9/\xe2\x82\xac",
        "s3://b/caf%c3%a9/%e2%82%ac",
        "S3://b//x/./y/../z/",
        "HTTP://Host.Example:80/%7euser/%41",
        "file:///srv/data/%2e%2e%2e",
        "hf://datasets/o/n/a%3fb%23c",
        "s3://b/!$&'()*+,;=:@",
        "s3://b/%21%24%26",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        s_expect_fixed_point(inputs[i]);
}

Test(uri_normalize, spellings_of_one_name_agree)
{
    char a[URI_MAX + 1], b[URI_MAX + 1];
    /* escaped unreserved bytes and lower-case hex are the same name as their plain spelling */
    cr_assert_eq(uri_normalize("s3://b/d%61ta/a%20b", a, sizeof a, NULL), 0);
    cr_assert_eq(uri_normalize("s3://b//data/./x/../a%20b", b, sizeof b, NULL), 0);
    cr_assert_str_eq(a, b);
    cr_assert_str_eq(a, "s3://b/data/a%20b");
    cr_assert_eq(uri_normalize("s3://b/caf%c3%a9", a, sizeof a, NULL), 0);
    cr_assert_eq(uri_normalize("s3://b/caf%C3%A9", b, sizeof b, NULL), 0);
    cr_assert_str_eq(a, b);
    /* raw bytes are kept as they came (mount.c's rule): a raw space is not rewritten */
    cr_assert_eq(uri_normalize("s3://b/a b", a, sizeof a, NULL), 0);
    cr_assert_str_eq(a, "s3://b/a b");
}

Test(uri_normalize, long_paths_of_300_bytes_and_more)
{
    char in[1024], want[1024], out[URI_MAX + 1];
    /* 300 bytes of path in 30 segments, one spelled with //, ./ and an escaped letter */
    strcpy(in, "s3://bucket");
    strcpy(want, "s3://bucket");
    for (int i = 0; i < 30; i++) {
        char seg[16];
        snprintf(seg, sizeof seg, "/seg-%04d", i);
        strcat(want, seg);
        if (i == 7)
            snprintf(seg, sizeof seg, "//./s%%65g-%04d", i); /* %65 = 'e' */
        strcat(in, seg);
    }
    cr_assert_gt(strlen(want) - strlen("s3://bucket"), 269);
    cr_assert_eq(uri_normalize(in, out, sizeof out, NULL), 0, "%s", shoal_last_error());
    cr_assert_str_eq(out, want);
    s_expect_fixed_point(in);
    /* a result that does not fit out_len is refused, not cut */
    cr_assert_eq(uri_normalize(in, out, strlen(want), NULL), SHOAL_EINVAL);
    cr_assert_eq(uri_normalize(in, out, strlen(want) + 1, NULL), 0);
}

Test(uri_normalize, refusals_name_the_problem)
{
    char out[64];
    cr_assert_eq(uri_normalize("s3://b/x%zz", out, sizeof out, NULL), SHOAL_EINVAL);
    cr_assert(strstr(shoal_last_error(), "malformed") != NULL, "%s", shoal_last_error());
    cr_assert_eq(uri_normalize("s3://b/../x", out, sizeof out, NULL), SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "..") != NULL, "%s", shoal_last_error());
    cr_assert_eq(uri_normalize(NULL, out, sizeof out, NULL), SHOAL_EINVAL);
    cr_assert_eq(uri_normalize("s3://b/x", NULL, 0, NULL), SHOAL_EINVAL);
}
