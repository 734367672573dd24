/*
 * test_ufs_http.c - the http:// connector and the shared HTTP layer against real servers on
 * loopback: nginx for the well-behaved cases (sizes, every range boundary, auth, versions,
 * connection reuse) and badhttp.py for the bad ones (503s, ignored Range, a server dying
 * mid-transfer, over-long bodies, no ETag, HEAD refused).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "testproc.h"
#include "ufs_conn.h"

#define PAGE (1u << 20)

/* The test files: name and size. Contents are tp_fill_pattern(seed = index). */
static const struct {
    const char *name;
    size_t size;
} s_files[] = {
    {"empty.bin", 0},
    {"one.bin", 1},
    {"page.bin", PAGE},
    {"pages.bin", 3 * PAGE},
    {"dir/ragged.bin", 2 * PAGE + 12345},
};
#define FILE_COUNT (sizeof s_files / sizeof s_files[0])

static char *s_root;                      /* temp dir served by the servers */
static unsigned char *s_data[FILE_COUNT]; /* expected contents */
static tp_server_t s_nginx;               /* well-behaved server */
static tp_server_t s_bad;                 /* badhttp.py */
static tp_server_t s_origin;              /* origin.py: counts requests by kind */
static ufs_t *s_ufs;                      /* under test */

static const char s_nginx_extra[] =
    "    location /private/ { if ($http_authorization != \"Bearer sesame\") { return 401; } }\n"
    "    location /basic/ { if ($http_authorization != \"Basic dXNlcjpwdw==\") { return 401; } }\n"
    "    location /forbidden/ { return 403; }\n"
    "    location /nohead/ { if ($request_method = HEAD) { return 405; } }\n";

static void s_make_files(void)
{
    s_root = tp_tempdir("http-root");
    cr_assert_not_null(s_root);
    char path[TP_PATH_MAX];
    const char *dirs[] = {"", "private/", "basic/", "forbidden/", "nohead/"};
    for (size_t i = 0; i < FILE_COUNT; i++) {
        s_data[i] = malloc(s_files[i].size + 1);
        tp_fill_pattern(s_data[i], s_files[i].size, i);
        for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
            snprintf(path, sizeof path, "%s/%s%s", s_root, dirs[d], s_files[i].name);
            cr_assert_eq(tp_write_file(path, s_data[i], s_files[i].size), 0);
        }
    }
}

static ufs_t *s_new_ufs(void)
{
    ufs_options_t options = {.connect_timeout_ms = 2000,
                             .timeout_ms = 10000,
                             .low_speed_ms = 5000,
                             .max_retries = 3,
                             .retry_base_ms = 5};
    return ufs_new(&options);
}

static void s_setup_nginx(void)
{
    s_make_files();
    cr_assert_eq(tp_nginx_start(&s_nginx, s_root, s_nginx_extra), 0);
    s_ufs = s_new_ufs();
    cr_assert_not_null(s_ufs);
}

static void s_setup_bad(void)
{
    s_make_files();
    cr_assert_eq(tp_badhttp_start(&s_bad, s_root), 0);
    s_ufs = s_new_ufs();
    cr_assert_not_null(s_ufs);
}

static void s_setup_origin(void)
{
    s_make_files();
    cr_assert_eq(tp_origin_start(&s_origin, s_root, 0), 0);
    s_ufs = s_new_ufs();
    cr_assert_not_null(s_ufs);
}

static void s_teardown(void)
{
    ufs_destroy(&s_ufs);
    tp_server_stop(&s_origin);
    tp_server_stop(&s_nginx);
    tp_server_stop(&s_bad);
    tp_rmtree(s_root);
    free(s_root);
    s_root = NULL;
    for (size_t i = 0; i < FILE_COUNT; i++) {
        free(s_data[i]);
        s_data[i] = NULL;
    }
}

/* The URL of file i under `prefix` ("" or "private/") on `server`. */
static void s_url(char *out, size_t out_len, const tp_server_t *server, const char *prefix,
                  size_t i)
{
    snprintf(out, out_len, "%s/%s%s", server->base_url, prefix, s_files[i].name);
}

/* Reads [offset, offset+length) of file i through `url` and checks every byte, and that
 * nothing past the returned count was written. */
static void s_check_read(const char *url, const char *version, size_t i, uint64_t offset,
                         size_t length)
{
    size_t size = s_files[i].size;
    size_t expect = offset >= size ? 0 : (size - offset < length ? size - offset : length);
    unsigned char *buf = malloc(length + 16);
    memset(buf, 0xA5, length + 16);
    int64_t got = ufs_read(s_ufs, url, version, offset, buf, length);
    cr_assert_eq(got, (int64_t)expect, "%s @%" PRIu64 "+%zu: got %" PRId64 " want %zu (%s)", url,
                 offset, length, got, expect, shoal_last_error());
    cr_assert(memcmp(buf, s_data[i] + (expect ? offset : 0), expect) == 0, "%s @%" PRIu64 ": bytes",
              url, offset);
    for (size_t k = expect; k < length + 16; k++)
        cr_assert_eq(buf[k], 0xA5, "%s: byte %zu past the data was written", url, k);
    free(buf);
}

TestSuite(http, .init = s_setup_nginx, .fini = s_teardown, .timeout = 120);
TestSuite(http_bad, .init = s_setup_bad, .fini = s_teardown, .timeout = 120);
TestSuite(http_origin, .init = s_setup_origin, .fini = s_teardown, .timeout = 120);

/* ufs_http_date: the IMF-fixdate parsed directly agrees with gmtime over 1970-2200 (every
 * month, leap days, the last second of a year), the obsolete forms still parse (libcurl), and
 * what is no date is -1. No server needed. */
Test(http_date, fixdate_obsolete_forms_and_garbage)
{
    for (int64_t when = 0; when < 7258118400; when += 86400 * 7 + 3601) {
        time_t t = (time_t)when;
        struct tm tm;
        char text[64];
        gmtime_r(&t, &tm);
        strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cr_assert_eq(ufs_http_date(text), when, "%s", text);
    }
    cr_assert_eq(ufs_http_date("Thu, 29 Feb 2024 23:59:59 GMT"), 1709251199);
    cr_assert_eq(ufs_http_date("Fri, 31 Dec 1999 23:59:59 GMT"), 946684799);
    cr_assert_eq(ufs_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    cr_assert_eq(ufs_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777); /* RFC 850 */
    cr_assert_eq(ufs_http_date("Sun Nov  6 08:49:37 1994"), 784111777);       /* asctime */
    cr_assert_eq(ufs_http_date("no date at all"), -1);
    cr_assert_eq(ufs_http_date(""), -1);
    cr_assert_eq(ufs_http_date(NULL), -1);
    /* fixdate-shaped but wrong in one field: never a made-up time from the fast path */
    const char *bad[] = {"Sun, 06 Nox 1994 08:49:37 GMT", "Sun, 0x Nov 1994 08:49:37 GMT",
                         "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 06 Nov 1994 08:61:37 GMT",
                         "Sun, 00 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 19x4 08:49:37 GMT"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t got = ufs_http_date(bad[i]);
        cr_assert(got == -1 || got != 784111777, "%s: %lld", bad[i], (long long)got);
    }
}

Test(http, stat_sizes_and_versions)
{
    char url[256];
    for (size_t i = 0; i < FILE_COUNT; i++) {
        s_url(url, sizeof url, &s_nginx, "", i);
        ufs_stat_t st;
        cr_assert_eq(ufs_stat(s_ufs, url, &st), 0, "%s: %s", url, shoal_last_error());
        cr_assert_eq(st.size, s_files[i].size, "%s", url);
        cr_assert_not(st.is_dir);
        cr_assert_gt(st.mtime, 0);
        struct stat fs;
        char path[TP_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", s_root, s_files[i].name);
        cr_assert_eq(stat(path, &fs), 0);
        char etag[64]; /* nginx: hex mtime - hex size */
        snprintf(etag, sizeof etag, "%lx-%lx", (unsigned long)fs.st_mtime,
                 (unsigned long)fs.st_size);
        cr_assert_str_eq(st.version, etag);
        cr_assert_eq(st.mtime, (int64_t)fs.st_mtime);
    }
}

Test(http, reads_at_every_boundary)
{
    char url[256];
    for (size_t i = 0; i < FILE_COUNT; i++) {
        s_url(url, sizeof url, &s_nginx, "", i);
        uint64_t end = s_files[i].size;
        uint64_t offsets[] = {0,   PAGE - 1, PAGE,      PAGE + 1, end ? end - 1 : 0,
                              end, end + 1,  end + PAGE};
        size_t lengths[] = {1, 4096, PAGE, PAGE + 1, 2 * PAGE + 7};
        for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++)
            for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++)
                s_check_read(url, NULL, i, offsets[o], lengths[l]);
        s_check_read(url, NULL, i, 0, end + 100); /* whole file in one go */
    }
    char buf[1];
    s_url(url, sizeof url, &s_nginx, "", 2);
    cr_assert_eq(ufs_read(s_ufs, url, NULL, 0, buf, 0), 0); /* zero length: nothing asked */
}

Test(http, missing_is_enoent_and_not_retried)
{
    char url[256];
    snprintf(url, sizeof url, "%s/no/such.bin", s_nginx.base_url);
    ufs_stat_t st;
    char buf[16];
    cr_assert_eq(ufs_stat(s_ufs, url, &st), SHOAL_ENOENT);
    cr_assert(strstr(shoal_last_error(), "404"), "%s", shoal_last_error());
    cr_assert_eq(ufs_read(s_ufs, url, NULL, 0, buf, sizeof buf), SHOAL_ENOENT);
    cr_assert_eq(tp_count_synced(&s_nginx, "/no/such.bin"), 2);
}

Test(http, credentials)
{
    char url[256];
    ufs_stat_t st;
    char buf[16];
    s_url(url, sizeof url, &s_nginx, "private/", 2);
    cr_assert_eq(ufs_stat(s_ufs, url, &st), SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "401"), "%s", shoal_last_error());
    cr_assert_eq(ufs_read(s_ufs, url, NULL, 0, buf, sizeof buf), SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "401"), "%s", shoal_last_error());

    s_url(url, sizeof url, &s_nginx, "forbidden/", 2);
    cr_assert_eq(ufs_stat(s_ufs, url, &st), SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "403"), "%s", shoal_last_error());

    /* Basic auth from the URL's userinfo (libcurl sends it): right and wrong password. */
    snprintf(url, sizeof url, "http://user:pw@127.0.0.1:%d/basic/page.bin", s_nginx.port);
    cr_assert_eq(ufs_stat(s_ufs, url, &st), 0, "%s", shoal_last_error());
    cr_assert_eq(st.size, PAGE);
    s_check_read(url, st.version, 2, PAGE - 10, 100);
    snprintf(url, sizeof url, "http://user:wrong@127.0.0.1:%d/basic/page.bin", s_nginx.port);
    cr_assert_eq(ufs_stat(s_ufs, url, &st), SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "401"), "%s", shoal_last_error());
    cr_assert(strstr(shoal_last_error(), "user:<redacted>@"), "%s", shoal_last_error());
    cr_assert_null(strstr(shoal_last_error(), "wrong"), "%s", shoal_last_error());

    /* A presigned URL: its signature never shows in a message, here a 404's nor a refused
     * connection's (the HTTP layer's own message). */
    snprintf(url, sizeof url,
             "%s/no/such.bin?X-Amz-Credential=AKIDSECRET&X-Amz-Signature=5ec2e7&prefix=p",
             s_nginx.base_url);
    cr_assert_eq(ufs_read(s_ufs, url, NULL, 0, buf, sizeof buf), SHOAL_ENOENT);
    cr_assert(strstr(shoal_last_error(), "X-Amz-Signature=<redacted>&prefix=p"), "%s",
              shoal_last_error());
    snprintf(url, sizeof url, "http://u:pw@127.0.0.1:%d/x?X-Amz-Signature=5ec2e7", tp_free_port());
    cr_assert_eq(ufs_read(s_ufs, url, NULL, 0, buf, sizeof buf), SHOAL_EIO);
    cr_assert(strstr(shoal_last_error(), "attempts"), "%s", shoal_last_error());
    cr_assert_null(strstr(shoal_last_error(), "5ec2e7"), "%s", shoal_last_error());
    cr_assert_null(strstr(shoal_last_error(), "pw"), "%s", shoal_last_error());
}

Test(http, list_is_refused)
{
    ufs_list_t list;
    ufs_list_init(&list);
    char url[256];
    snprintf(url, sizeof url, "%s/dir/", s_nginx.base_url);
    cr_assert_eq(ufs_list(s_ufs, url, false, &list), SHOAL_ENOTSUP);
    cr_assert(strstr(shoal_last_error(), "no listing"));
    cr_assert_eq(list.count, 0);
    ufs_list_fini(&list);
}

Test(http, changed_file_is_stale)
{
    char url[256], path[TP_PATH_MAX];
    s_url(url, sizeof url, &s_nginx, "", 3);
    ufs_stat_t before;
    cr_assert_eq(ufs_stat(s_ufs, url, &before), 0);
    s_check_read(url, before.version, 3, PAGE, PAGE);

    /* Same size, new bytes, mtime moved on: nginx's ETag changes with the mtime. */
    snprintf(path, sizeof path, "%s/%s", s_root, s_files[3].name);
    tp_fill_pattern(s_data[3], s_files[3].size, 99);
    cr_assert_eq(tp_write_file(path, s_data[3], s_files[3].size), 0);
    struct timespec times[2] = {{before.mtime + 10, 0}, {before.mtime + 10, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, path, times, 0), 0);

    char buf[64];
    cr_assert_eq(ufs_read(s_ufs, url, before.version, 0, buf, sizeof buf), SHOAL_ESTALE);
    cr_assert(strstr(shoal_last_error(), "412"), "%s", shoal_last_error());
    cr_assert_geq(tp_wait_lines(s_nginx.access_log, " 412 ", 1, 2000), 1);

    ufs_stat_t after;
    cr_assert_eq(ufs_stat(s_ufs, url, &after), 0);
    cr_assert_str_neq(after.version, before.version);
    s_check_read(url, after.version, 3, 5, PAGE);
}

Test(http, head_refused_falls_back_to_ranged_get)
{
    char url[256];
    for (size_t i = 0; i < FILE_COUNT; i++) {
        s_url(url, sizeof url, &s_nginx, "nohead/", i);
        ufs_stat_t st;
        cr_assert_eq(ufs_stat(s_ufs, url, &st), 0, "%s: %s", url, shoal_last_error());
        cr_assert_eq(st.size, s_files[i].size, "%s", url);
        if (s_files[i].size)
            cr_assert_neq(st.version[0], '\0');
    }
    cr_assert_geq(tp_wait_lines(s_nginx.access_log, "HEAD /nohead/page.bin 405", 1, 2000), 1);
    cr_assert_geq(
        tp_wait_lines(s_nginx.access_log, "GET /nohead/page.bin 206 range=bytes=0-0", 1, 2000), 1);
}

/* Every read on one thread reuses one pooled handle, so nginx sees one connection. */
Test(http, connection_reuse)
{
    char url[256];
    s_url(url, sizeof url, &s_nginx, "", 3);
    for (int k = 0; k < 8; k++)
        s_check_read(url, NULL, 3, (uint64_t)k * 1000, 1000);
    cr_assert_eq(tp_count_synced(&s_nginx, "GET /pages.bin"), 8);
    size_t len;
    char *log = tp_read_file(s_nginx.access_log, &len);
    char *first = strstr(log, "GET /pages.bin");
    char *conn = strstr(first, "conn=");
    char needle[32];
    snprintf(needle, sizeof needle, "conn=%ld ", strtol(conn + 5, NULL, 10));
    free(log);
    cr_assert_eq(tp_count_lines(s_nginx.access_log, needle), 8, "not all on %s", needle);
}

/* Reads of 1 MiB and more get a larger libcurl receive buffer (ufs_curl.c S_RECV_BUFFER) on the
 * same reused handle as small reads: alternating big and small reads, every byte is exact, no
 * byte past the count is written, and all of them go over one connection. */
Test(http, big_and_small_reads_alternate_on_one_connection)
{
    char url[256];
    s_url(url, sizeof url, &s_nginx, "", 4); /* 2 MiB + 12345 */
    struct {
        uint64_t offset;
        size_t length;
    } reads[] = {{0, 2 * PAGE + 12345}, {7, 1},
                 {PAGE - 3, PAGE},      {100, 4096},
                 {0, 3 * PAGE},         {2 * PAGE, 12345},
                 {PAGE + 1, PAGE + 1},  {2 * PAGE + 12344, PAGE}};
    int count = (int)(sizeof reads / sizeof reads[0]);
    for (int k = 0; k < count; k++)
        s_check_read(url, NULL, 4, reads[k].offset, reads[k].length);
    cr_assert_eq(tp_count_synced(&s_nginx, "GET /dir/ragged.bin"), count);
    size_t len;
    char *log = tp_read_file(s_nginx.access_log, &len);
    char *conn = strstr(strstr(log, "GET /dir/ragged.bin"), "conn=");
    char needle[32];
    snprintf(needle, sizeof needle, "conn=%ld ", strtol(conn + 5, NULL, 10));
    free(log);
    cr_assert_eq(tp_count_lines(s_nginx.access_log, needle), count, "not all on %s", needle);
}

/* A child after fork() makes its own connections and reads correctly; the parent goes on. */
Test(http, fork_child_reads)
{
    char url[256];
    s_url(url, sizeof url, &s_nginx, "", 4);
    s_check_read(url, NULL, 4, 0, 4096);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        unsigned char buf[4096];
        int64_t got = ufs_read(s_ufs, url, NULL, PAGE, buf, sizeof buf);
        _exit(got == (int64_t)sizeof buf && memcmp(buf, s_data[4] + PAGE, sizeof buf) == 0 ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    s_check_read(url, NULL, 4, 2 * PAGE, 12345);
}

Test(http_bad, retries_503_then_success)
{
    char url[256];
    snprintf(url, sizeof url, "%s/flaky/2/a/%s", s_bad.base_url, s_files[3].name);
    s_check_read(url, NULL, 3, PAGE - 1, PAGE + 2);
    cr_assert_eq(tp_count_synced(&s_bad, "GET /flaky/2/a/pages.bin 503"), 2);
    cr_assert_eq(tp_count_synced(&s_bad, "GET /flaky/2/a/pages.bin 206"), 1);

    snprintf(url, sizeof url, "%s/flaky/1/b/%s", s_bad.base_url, s_files[3].name);
    ufs_stat_t st;
    cr_assert_eq(ufs_stat(s_ufs, url, &st), 0, "%s", shoal_last_error());
    cr_assert_eq(st.size, 3 * PAGE);
    cr_assert_eq(tp_count_synced(&s_bad, "HEAD /flaky/1/b/pages.bin"), 2);

    /* More 503s than retries: EIO naming the status, after exactly 1 + max_retries attempts. */
    snprintf(url, sizeof url, "%s/flaky/50/c/%s", s_bad.base_url, s_files[3].name);
    char buf[16];
    cr_assert_eq(ufs_read(s_ufs, url, NULL, 0, buf, sizeof buf), SHOAL_EIO);
    cr_assert(strstr(shoal_last_error(), "503"), "%s", shoal_last_error());
    cr_assert_eq(tp_count_synced(&s_bad, "GET /flaky/50/c/pages.bin 503"), 4);
}

Test(http_bad, missing_not_retried)
{
    char url[256], buf[8];
    snprintf(url, sizeof url, "%s/nothing-here", s_bad.base_url);
    cr_assert_eq(ufs_read(s_ufs, url, NULL, 0, buf, sizeof buf), SHOAL_ENOENT);
    cr_assert_eq(tp_count_synced(&s_bad, "/nothing-here"), 1);
}

Test(http_bad, ignored_range_is_refused)
{
    char url[256];
    snprintf(url, sizeof url, "%s/norange/%s", s_bad.base_url, s_files[3].name);
    unsigned char *buf = malloc(PAGE);
    memset(buf, 0, PAGE);
    cr_assert_eq(ufs_read(s_ufs, url, NULL, PAGE, buf, PAGE), SHOAL_ENOTSUP);
    cr_assert(strstr(shoal_last_error(), "ignored Range"), "%s", shoal_last_error());
    for (size_t k = 0; k < PAGE; k++)
        cr_assert_eq(buf[k], 0, "byte %zu written", k);
    cr_assert_eq(tp_count_synced(&s_bad, "GET /norange/"), 1); /* not retried */
    free(buf);
}

Test(http_bad, death_mid_transfer_is_an_error)
{
    char url[256];
    size_t sizes[] = {1, PAGE, 3 * PAGE};
    size_t index[] = {1, 2, 3};
    unsigned char *buf = malloc(3 * PAGE);
    for (size_t k = 0; k < 3; k++) {
        snprintf(url, sizeof url, "%s/die/%s", s_bad.base_url, s_files[index[k]].name);
        cr_assert_eq(ufs_read(s_ufs, url, NULL, 0, buf, sizes[k]), SHOAL_EIO, "%s: %s", url,
                     shoal_last_error());
    }
    /* Retried as a transient failure: 1 + max_retries attempts for the last one. */
    cr_assert_eq(tp_count_synced(&s_bad, "GET /die/pages.bin"), 4);
    free(buf);
}

Test(http_bad, over_long_body_is_an_error)
{
    char url[256];
    snprintf(url, sizeof url, "%s/long/%s", s_bad.base_url, s_files[2].name);
    unsigned char buf[100];
    cr_assert_eq(ufs_read(s_ufs, url, NULL, 10, buf, sizeof buf), SHOAL_EIO);
    cr_assert(strstr(shoal_last_error(), "longer"), "%s", shoal_last_error());
}

Test(http_bad, no_etag_versions_by_size_and_mtime)
{
    char url[256], path[TP_PATH_MAX];
    snprintf(url, sizeof url, "%s/noetag/%s", s_bad.base_url, s_files[4].name);
    ufs_stat_t st;
    cr_assert_eq(ufs_stat(s_ufs, url, &st), 0, "%s", shoal_last_error());
    snprintf(path, sizeof path, "%s/%s", s_root, s_files[4].name);
    struct stat fs;
    cr_assert_eq(stat(path, &fs), 0);
    char want[64];
    snprintf(want, sizeof want, "%zu-%ld", s_files[4].size, (long)fs.st_mtime);
    cr_assert_str_eq(st.version, want);
    s_check_read(url, st.version, 4, 2 * PAGE, PAGE);

    struct timespec times[2] = {{fs.st_mtime + 5, 0}, {fs.st_mtime + 5, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, path, times, 0), 0);
    char buf[32];
    cr_assert_eq(ufs_read(s_ufs, url, st.version, 0, buf, sizeof buf), SHOAL_ESTALE);
}

Test(http_bad, head_refused_fallback_and_empty_object)
{
    char url[256];
    ufs_stat_t st;
    snprintf(url, sizeof url, "%s/nohead/%s", s_bad.base_url, s_files[4].name);
    cr_assert_eq(ufs_stat(s_ufs, url, &st), 0, "%s", shoal_last_error());
    cr_assert_eq(st.size, s_files[4].size);
    snprintf(url, sizeof url, "%s/nohead/%s", s_bad.base_url, s_files[0].name);
    cr_assert_eq(ufs_stat(s_ufs, url, &st), 0, "%s", shoal_last_error());
    cr_assert_eq(st.size, 0);
}

Test(http_bad, connection_refused_is_eio_after_retries)
{
    char url[256], buf[8];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", tp_free_port());
    cr_assert_eq(ufs_read(s_ufs, url, NULL, 0, buf, sizeof buf), SHOAL_EIO);
    cr_assert(strstr(shoal_last_error(), "4 attempts"), "%s", shoal_last_error());
}

typedef struct s_worker {
    int index;  /* which worker */
    int failed; /* reads that came back wrong */
} s_worker_t;

static void *s_worker_main(void *arg)
{
    s_worker_t *w = arg;
    char url[256];
    s_url(url, sizeof url, &s_nginx, "", 4);
    size_t size = s_files[4].size;
    unsigned char *buf = malloc(PAGE);
    for (int k = 0; k < 16; k++) {
        uint64_t offset = ((uint64_t)(w->index * 16 + k) * 131071) % size;
        size_t expect = size - offset < PAGE ? size - offset : PAGE;
        int64_t got = ufs_read(s_ufs, url, NULL, offset, buf, PAGE);
        if (got != (int64_t)expect || memcmp(buf, s_data[4] + offset, expect) != 0)
            w->failed++;
    }
    free(buf);
    return NULL;
}

/* One handle, many threads: each takes its own pooled curl handle. */
Test(http, threads_share_one_handle)
{
    pthread_t threads[4];
    s_worker_t workers[4];
    for (int t = 0; t < 4; t++) {
        workers[t] = (s_worker_t){.index = t};
        cr_assert_eq(pthread_create(&threads[t], NULL, s_worker_main, &workers[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        cr_assert_eq(workers[t].failed, 0, "worker %d", t);
    }
    cr_assert_eq(tp_count_synced(&s_nginx, "GET /dir/ragged.bin 206"), 64);
}

Test(http_bad, retries_429_then_success)
{
    char url[256];
    snprintf(url, sizeof url, "%s/busy/3/a/%s", s_bad.base_url, s_files[2].name);
    s_check_read(url, NULL, 2, 0, PAGE);
    cr_assert_eq(tp_count_synced(&s_bad, "GET /busy/3/a/page.bin 429"), 3);
    cr_assert_eq(tp_count_synced(&s_bad, "GET /busy/3/a/page.bin 206"), 1);
}

Test(http_bad, stalled_server_times_out)
{
    ufs_options_t options = {.timeout_ms = 300, .max_retries = 1, .retry_base_ms = 5};
    ufs_t *quick = ufs_new(&options);
    char url[256], buf[8];
    snprintf(url, sizeof url, "%s/stall/%s", s_bad.base_url, s_files[2].name);
    int64_t t0 = clock_mono_ms();
    cr_assert_eq(ufs_read(quick, url, NULL, 0, buf, sizeof buf), SHOAL_ETIMEDOUT, "%s",
                 shoal_last_error());
    cr_assert_lt(clock_mono_ms() - t0, 4000); /* gave up long before the server's 5 s */
    /* The client gave up before the server answered: wait for both attempts to be logged,
     * then make sure there was no third. */
    cr_assert_geq(tp_wait_lines(s_bad.access_log, "GET /stall/", 2, 5000), 2);
    cr_assert_eq(tp_count_synced(&s_bad, "GET /stall/"), 2); /* 1 + 1 retry */
    ufs_destroy(&quick);
}

/* ---- progress reports (ufs_read_progress) ------------------------------------------------- */

/* What a progress callback saw: every report must grow, and at each report the bytes reported
 * must already be the object's. */
typedef struct s_seen {
    const unsigned char *buf;    /* the read's buffer */
    const unsigned char *expect; /* the object's bytes at the read's offset */
    size_t reports;              /* calls */
    size_t last;                 /* last `filled` */
    bool bad;                    /* a report did not grow, or its bytes were wrong */
} s_seen_t;

static void s_on_progress(void *arg, size_t filled)
{
    s_seen_t *seen = arg;
    if (filled <= seen->last || memcmp(seen->buf, seen->expect, filled) != 0)
        seen->bad = true;
    seen->reports++;
    seen->last = filled;
}

/* Reads [offset, offset + length) of file i at `url` with progress; checks the bytes and the
 * reports; returns the number of reports. */
static size_t s_check_progress(const char *url, const char *version, size_t i, uint64_t offset,
                               size_t length)
{
    unsigned char *buf = calloc(1, length);
    s_seen_t seen = {.buf = buf, .expect = s_data[i] + offset};
    ufs_progress_t progress = {.fn = s_on_progress, .arg = &seen};
    int64_t got = ufs_read_progress(s_ufs, url, version, offset, buf, length, &progress);
    cr_assert_eq(got, (int64_t)length, "%s: %" PRId64 " (%s)", url, got, shoal_last_error());
    cr_assert(memcmp(buf, s_data[i] + offset, length) == 0, "%s: bytes", url);
    cr_assert_not(seen.bad, "%s: a report shrank or named bytes not yet right", url);
    cr_assert_eq(seen.last, length, "%s: last report %zu of %zu", url, seen.last, length);
    free(buf);
    return seen.reports;
}

Test(http, progress_reports_grow_to_the_whole_read)
{
    char url[256];
    s_url(url, sizeof url, &s_nginx, "", 3);
    ufs_stat_t st;
    cr_assert_eq(ufs_stat(s_ufs, url, &st), 0, "%s", shoal_last_error());
    cr_assert_geq(s_check_progress(url, NULL, 3, 0, 3 * PAGE), 1);
    cr_assert_geq(s_check_progress(url, st.version, 3, PAGE - 7, PAGE + 9), 1);
    /* NULL progress is plain ufs_read */
    unsigned char buf[64];
    cr_assert_eq(ufs_read_progress(s_ufs, url, NULL, 0, buf, sizeof buf, NULL), 64);
}

Test(http_bad, progress_survives_a_retry_of_the_same_bytes)
{
    char url[256];
    snprintf(url, sizeof url, "%s/dieonce/1/p/%s", s_bad.base_url, s_files[3].name);
    cr_assert_geq(s_check_progress(url, NULL, 3, 0, 3 * PAGE), 1);
    cr_assert_eq(tp_count_synced(&s_bad, "GET /dieonce/1/p/pages.bin"), 2);
}

Test(http_bad, progress_refuses_a_retry_with_other_bytes)
{
    char url[256];
    snprintf(url, sizeof url, "%s/dieflip/q/%s", s_bad.base_url, s_files[3].name);
    size_t length = 3 * PAGE;
    unsigned char *buf = calloc(1, length);
    s_seen_t seen = {.buf = buf, .expect = s_data[3]};
    ufs_progress_t progress = {.fn = s_on_progress, .arg = &seen};
    cr_assert_eq(ufs_read_progress(s_ufs, url, NULL, 0, buf, length, &progress), SHOAL_ESTALE, "%s",
                 shoal_last_error());
    cr_assert(strstr(shoal_last_error(), "other bytes"), "%s", shoal_last_error());
    /* the first attempt reported some bytes; they were never overwritten */
    cr_assert_gt(seen.last, 0);
    cr_assert_not(seen.bad);
    cr_assert(memcmp(buf, s_data[3], seen.last) == 0, "reported bytes were overwritten");
    free(buf);
}

Test(http_bad, progress_checks_the_version_before_the_first_report)
{
    char url[256];
    snprintf(url, sizeof url, "%s/noetag/%s", s_bad.base_url, s_files[3].name);
    unsigned char *buf = calloc(1, PAGE);
    s_seen_t seen = {.buf = buf, .expect = s_data[3]};
    ufs_progress_t progress = {.fn = s_on_progress, .arg = &seen};
    /* a size-mtime version (no If-Match is sent) that is not the object's */
    cr_assert_eq(ufs_read_progress(s_ufs, url, "1-2", 0, buf, PAGE, &progress), SHOAL_ESTALE, "%s",
                 shoal_last_error());
    cr_assert_eq(seen.reports, 0, "bytes of another version were reported");
    free(buf);
}

/* ---- the GET is the stat (ufs_read_stat) -------------------------------------------------- */

static tp_origin_counts_t s_counts(void)
{
    tp_origin_counts_t counts;
    cr_assert_eq(tp_origin_counts(&s_origin, &counts), 0);
    return counts;
}

/* Asserts that `got` (from a read) is what ufs_stat says of url. */
static void s_assert_same_stat(const char *url, const ufs_stat_t *got)
{
    ufs_stat_t st;
    cr_assert_eq(ufs_stat(s_ufs, url, &st), 0, "%s: %s", url, shoal_last_error());
    cr_assert_eq(got->size, st.size, "%s", url);
    cr_assert_str_eq(got->version, st.version, "%s", url);
    cr_assert_eq(got->mtime, st.mtime, "%s", url);
    cr_assert_gt(got->mtime, 0, "%s", url);
    cr_assert_not(got->is_dir);
}

/* A cold read without a version, of every size (0 B: origin.py's 416 "bytes * /0" with its
 * ETag), is exactly 1 GET and 0 HEAD, and says what stat says. */
Test(http_origin, cold_read_is_one_get)
{
    char url[256];
    unsigned char *buf = malloc(PAGE);
    for (size_t i = 0; i < FILE_COUNT; i++) {
        s_url(url, sizeof url, &s_origin, "", i);
        cr_assert_eq(tp_origin_reset(&s_origin), 0);
        uint64_t before = ufs_requests(s_ufs);
        ufs_stat_t got;
        size_t expect = s_files[i].size < PAGE ? s_files[i].size : PAGE;
        cr_assert_eq(ufs_read_stat(s_ufs, url, NULL, 0, buf, PAGE, NULL, &got), (int64_t)expect,
                     "%s: %s", url, shoal_last_error());
        cr_assert_eq(memcmp(buf, s_data[i], expect), 0, "%s", url);
        tp_origin_counts_t counts = s_counts();
        cr_assert_eq(counts.get, 1, "%s", url);
        cr_assert_eq(counts.head, 0, "%s", url);
        cr_assert_eq(ufs_requests(s_ufs) - before, 1, "%s", url);
        cr_assert_eq(got.size, s_files[i].size, "%s", url);
        s_assert_same_stat(url, &got);
    }
    free(buf);
}

/* A later range with the learnt version is 1 GET carrying If-Match; the file replaced in
 * between is SHOAL_ESTALE, and the 412 count proves the If-Match went out (without it the
 * server would have answered 206). Then a read without a version learns the new one. */
Test(http_origin, learnt_version_pins_later_ranges)
{
    char url[256];
    s_url(url, sizeof url, &s_origin, "", 3);
    unsigned char *buf = malloc(3 * PAGE);
    ufs_stat_t first, later;
    cr_assert_eq(ufs_read_stat(s_ufs, url, NULL, 0, buf, 4096, NULL, &first), 4096);
    cr_assert_eq(tp_origin_reset(&s_origin), 0);
    cr_assert_eq(ufs_read_stat(s_ufs, url, first.version, PAGE, buf, PAGE, NULL, &later),
                 (int64_t)PAGE, "%s", shoal_last_error());
    cr_assert_eq(memcmp(buf, s_data[3] + PAGE, PAGE), 0);
    cr_assert_str_eq(later.version, first.version);
    cr_assert_eq(later.size, 3 * PAGE);
    tp_origin_counts_t counts = s_counts();
    cr_assert_eq(counts.get, 1);
    cr_assert_eq(counts.head, 0);
    cr_assert_eq(counts.get_412, 0);

    char path[TP_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", s_root, s_files[3].name);
    unsigned char *next = malloc(3 * PAGE);
    tp_fill_pattern(next, 3 * PAGE - 5, 99);
    cr_assert_eq(tp_write_file(path, next, 3 * PAGE - 5), 0);
    cr_assert_eq(tp_origin_reset(&s_origin), 0);
    uint64_t before = ufs_requests(s_ufs);
    cr_assert_eq(ufs_read_stat(s_ufs, url, first.version, 2 * PAGE, buf, PAGE, NULL, &later),
                 SHOAL_ESTALE, "%s", shoal_last_error());
    cr_assert_str_eq(later.version, "");
    counts = s_counts();
    cr_assert_eq(counts.get_412, 1);
    cr_assert_eq(counts.get, 0);
    cr_assert_eq(counts.head, 0);
    cr_assert_eq(ufs_requests(s_ufs) - before, 1);
    cr_assert_eq(ufs_read_stat(s_ufs, url, NULL, 0, buf, 3 * PAGE, NULL, &later),
                 (int64_t)(3 * PAGE - 5));
    cr_assert_eq(memcmp(buf, next, 3 * PAGE - 5), 0);
    cr_assert_str_neq(later.version, first.version);
    s_assert_same_stat(url, &later);
    free(next);
    free(buf);
}

/* A missing file: exactly one request, SHOAL_ENOENT, no HEAD, no retry. */
Test(http_origin, missing_file_is_one_request)
{
    char url[256];
    snprintf(url, sizeof url, "%s/no/such.bin", s_origin.base_url);
    cr_assert_eq(tp_origin_reset(&s_origin), 0);
    uint64_t before = ufs_requests(s_ufs);
    char buf[64];
    ufs_stat_t got;
    cr_assert_eq(ufs_read_stat(s_ufs, url, NULL, 0, buf, sizeof buf, NULL, &got), SHOAL_ENOENT);
    tp_origin_counts_t counts = s_counts();
    cr_assert_eq(counts.get_404, 1);
    cr_assert_eq(counts.get + counts.head + counts.head_404, 0);
    cr_assert_eq(ufs_requests(s_ufs) - before, 1);
    cr_assert_eq(got.size, 0);
}

/* At and past the end: 0 bytes, the size and version from the 416 alone (origin.py sends
 * "bytes * /SIZE" and its ETag): one GET, with or without a version; a version that is gone is
 * still SHOAL_ESTALE there. A read of 0 bytes is one stat. */
Test(http_origin, past_the_end_reports_the_size)
{
    char url[256];
    s_url(url, sizeof url, &s_origin, "", 2);
    char buf[64];
    ufs_stat_t got;
    uint64_t offsets[] = {PAGE, PAGE + 1, 10 * (uint64_t)PAGE};
    for (size_t k = 0; k < 3; k++) {
        cr_assert_eq(tp_origin_reset(&s_origin), 0);
        cr_assert_eq(ufs_read_stat(s_ufs, url, NULL, offsets[k], buf, sizeof buf, NULL, &got), 0,
                     "%s", shoal_last_error());
        tp_origin_counts_t counts = s_counts();
        cr_assert_eq(counts.get, 1);
        cr_assert_eq(counts.head, 0);
        cr_assert_eq(got.size, PAGE);
        s_assert_same_stat(url, &got);
        cr_assert_eq(
            ufs_read_stat(s_ufs, url, got.version, offsets[k], buf, sizeof buf, NULL, &got), 0,
            "%s", shoal_last_error());
        cr_assert_eq(got.size, PAGE);
    }
    cr_assert_eq(ufs_read_stat(s_ufs, url, "0-0", PAGE, buf, sizeof buf, NULL, &got), SHOAL_ESTALE);
    cr_assert_eq(tp_origin_reset(&s_origin), 0);
    cr_assert_eq(ufs_read_stat(s_ufs, url, NULL, 5, buf, 0, NULL, &got), 0);
    cr_assert_eq(got.size, PAGE);
    tp_origin_counts_t counts = s_counts();
    cr_assert_eq(counts.head + counts.get, 1);
}

typedef struct s_gate_seen {
    size_t reports;     /* calls of the progress function */
    size_t last_filled; /* the last `filled` */
} s_gate_seen_t;

static void s_on_gate_progress(void *arg, size_t filled)
{
    s_gate_seen_t *seen = arg;
    cr_assert_gt(filled, seen->last_filled);
    seen->reports++;
    seen->last_filled = filled;
}

/* Progress without a version: bytes are reported, and the version the read reports is the
 * file's (the gate pinned it before the first report). */
Test(http_origin, progress_without_a_version)
{
    char url[256];
    s_url(url, sizeof url, &s_origin, "", 3);
    unsigned char *buf = malloc(3 * PAGE);
    s_gate_seen_t seen = {0};
    ufs_progress_t progress = {.fn = s_on_gate_progress, .arg = &seen};
    ufs_stat_t got;
    cr_assert_eq(ufs_read_stat(s_ufs, url, NULL, 0, buf, 3 * PAGE, &progress, &got),
                 (int64_t)(3 * PAGE), "%s", shoal_last_error());
    cr_assert_geq(seen.reports, 1);
    cr_assert_eq(seen.last_filled, 3 * PAGE);
    cr_assert_eq(memcmp(buf, s_data[3], 3 * PAGE), 0);
    s_assert_same_stat(url, &got);
    free(buf);
}

/* nginx (no ETag on its 416, an empty 200 for a 0-byte file): every size read cold is one
 * GET and no HEAD, with stat's size, version and mtime; past the end costs exactly one HEAD
 * more (nginx's 416 has no ETag), none for the empty file, and still reports the stat. Counted in
 * nginx's own access log. */
Test(http, read_is_the_stat_on_nginx)
{
    char url[256];
    unsigned char *buf = malloc(PAGE);
    for (size_t i = 0; i < FILE_COUNT; i++) {
        s_url(url, sizeof url, &s_nginx, "", i);
        char get_line[128], head_line[128];
        snprintf(get_line, sizeof get_line, "GET /%s ", s_files[i].name);
        snprintf(head_line, sizeof head_line, "HEAD /%s ", s_files[i].name);
        long gets = tp_count_synced(&s_nginx, get_line);
        long heads = tp_count_synced(&s_nginx, head_line);
        ufs_stat_t got;
        size_t expect = s_files[i].size < PAGE ? s_files[i].size : PAGE;
        cr_assert_eq(ufs_read_stat(s_ufs, url, NULL, 0, buf, PAGE, NULL, &got), (int64_t)expect,
                     "%s: %s", url, shoal_last_error());
        cr_assert_eq(memcmp(buf, s_data[i], expect), 0, "%s", url);
        cr_assert_eq(tp_count_synced(&s_nginx, get_line) - gets, 1, "%s", url);
        cr_assert_eq(tp_count_synced(&s_nginx, head_line) - heads, 0, "%s", url);
        s_assert_same_stat(url, &got);

        uint64_t before = ufs_requests(s_ufs);
        cr_assert_eq(ufs_read_stat(s_ufs, url, got.version, s_files[i].size, buf, 10, NULL, &got),
                     0, "%s: %s", url, shoal_last_error());
        /* nginx: an empty 200 for the 0-byte file; else a 416 without ETag, then a HEAD */
        cr_assert_eq(ufs_requests(s_ufs) - before, s_files[i].size == 0 ? 1 : 2, "%s", url);
        cr_assert_eq(got.size, s_files[i].size);
        s_assert_same_stat(url, &got);
    }
    free(buf);
}
