/*
 * test_ufs_hf.c - the hf:// connector against nginx laid out like the Hugging Face Hub
 * (HF_ENDPOINT points at it): resolve URLs for datasets and models, revisions, static JSON
 * files standing in for the tree API (one level, recursive, paginated by Link), a private repo
 * behind a bearer token, an LFS file answered by a 302 to a "CDN" with X-Linked-Size/-Etag,
 * and files changed after stat. Suite hf_tree checks the tree JSON parser alone, field by field.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testproc.h"
#include "ufs_conn.h"

#define PAGE (1u << 20)
#define REPO "datasets/org/name/resolve/main/"

static const struct {
    const char *name;
    size_t size;
} s_files[] = {
    {"empty.bin", 0},
    {"one.bin", 1},
    {"page.bin", PAGE},
    {"sub/pages.bin", 3 * PAGE},
    {"sub/deep/ragged.bin", 2 * PAGE + 12345},
};
#define FILE_COUNT (sizeof s_files / sizeof s_files[0])

static char *s_root;                      /* served by nginx */
static unsigned char *s_data[FILE_COUNT]; /* expected contents */
static char s_etag[FILE_COUNT][40];       /* nginx's ETag of each file (quotes stripped) */
static tp_server_t s_nginx;               /* the fake Hub */
static ufs_t *s_ufs;                      /* under test */

static const char s_nginx_extra[] =
    "    location /datasets/ { try_files $uri =404; }\n"
    "    location /org/ { try_files $uri =404; }\n"
    "    location /datasets/org/private/ {\n"
    "      if ($http_authorization != \"Bearer hf_good\") { return 401; }\n"
    "      try_files $uri =404;\n"
    "    }\n"
    "    location ~ ^/datasets/org/lfs/resolve/main/(.*)$ {\n"
    "      add_header X-Linked-Size 3145728 always;\n"
    "      add_header X-Linked-Etag '\"lfs-sha\"' always;\n"
    "      return 302 /cdn/$1;\n"
    "    }\n"
    "    location /api/ { rewrite ^(.*)$ $1.$arg_recursive.json break; }\n"
    "    location = /api/datasets/org/paged/tree/main {\n"
    "      if ($arg_cursor = \"p2\") { add_header X-Page 2; rewrite ^ /paged-p2.json break; }\n"
    "      add_header Link '</api/datasets/org/paged/tree/main?recursive=true&expand=false"
    "&cursor=p2>; rel=\"next\"';\n"
    "      rewrite ^ /paged-p1.json break;\n"
    "    }\n";

static void s_write(const char *rel, const void *data, size_t len)
{
    char path[TP_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", s_root, rel);
    cr_assert_eq(tp_write_file(path, data, len), 0, "%s", path);
}

static void s_write_text(const char *rel, const char *text)
{
    s_write(rel, text, strlen(text));
}

/* A tree API entry for file i with its nginx ETag as oid (what resolve sends as ETag). */
static void s_file_json(char *out, size_t out_len, size_t i)
{
    snprintf(out, out_len, "{\"type\":\"file\",\"oid\":\"%s\",\"size\":%zu,\"path\":\"%s\"}",
             s_etag[i], s_files[i].size, s_files[i].name);
}

static void s_setup(void)
{
    unsetenv("HF_TOKEN");
    unsetenv("HUGGING_FACE_HUB_TOKEN");
    s_root = tp_tempdir("hf-root");
    cr_assert_not_null(s_root);
    char rel[512], path[TP_PATH_MAX];
    for (size_t i = 0; i < FILE_COUNT; i++) {
        s_data[i] = malloc(s_files[i].size + 1);
        tp_fill_pattern(s_data[i], s_files[i].size, i + 3);
        snprintf(rel, sizeof rel, REPO "%s", s_files[i].name);
        s_write(rel, s_data[i], s_files[i].size);
        snprintf(path, sizeof path, "%s/%s", s_root, rel);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        snprintf(s_etag[i], sizeof s_etag[i], "%lx-%lx", (unsigned long)st.st_mtime,
                 (unsigned long)st.st_size);
    }
    s_write_text("datasets/org/name/resolve/v1.0/one.bin", "V");
    s_write_text("org/model/resolve/main/config.json", "{\"model_type\": \"tiny\"}\n");
    s_write_text("datasets/org/private/resolve/main/one.bin", "P");
    s_write("cdn/big.bin", s_data[3], s_files[3].size);

    char f[FILE_COUNT][512], json[8192];
    for (size_t i = 0; i < FILE_COUNT; i++)
        s_file_json(f[i], sizeof f[i], i);
    const char *dir_sub = "{\"type\":\"directory\",\"oid\":\"d1\",\"size\":0,\"path\":\"sub\"}";
    const char *dir_deep =
        "{\"type\":\"directory\",\"oid\":\"d2\",\"size\":0,\"path\":\"sub/deep\"}";
    snprintf(json, sizeof json, "[%s,%s,%s,%s]", f[0], f[1], f[2], dir_sub);
    s_write_text("api/datasets/org/name/tree/main.false.json", json);
    snprintf(json, sizeof json, "[%s,%s,%s,%s,%s,%s,%s]", f[0], f[1], f[2], dir_sub, f[3], dir_deep,
             f[4]);
    s_write_text("api/datasets/org/name/tree/main.true.json", json);
    snprintf(json, sizeof json, "[%s,%s]", dir_deep, f[3]);
    s_write_text("api/datasets/org/name/tree/main/sub.false.json", json);
    snprintf(json, sizeof json, "[%s,%s,%s]", f[3], dir_deep, f[4]);
    s_write_text("api/datasets/org/name/tree/main/sub.true.json", json);
    snprintf(json, sizeof json, "[%s]", f[4]);
    s_write_text("api/datasets/org/name/tree/main/sub/deep.false.json", json);
    snprintf(json, sizeof json, "[%s,%s]", f[0], f[1]);
    s_write_text("paged-p1.json", json);
    snprintf(json, sizeof json, "[%s]", f[2]);
    s_write_text("paged-p2.json", json);
    s_write_text("api/datasets/org/lfs/tree/main.true.json",
                 "[{\"type\":\"file\",\"oid\":\"gitoid\",\"size\":134,\"path\":\"big.bin\","
                 "\"lfs\":{\"oid\":\"lfs-sha\",\"size\":3145728,\"pointerSize\":134}}]");
    s_write_text("api/datasets/org/bad/tree/main.false.json", "{\"not\": \"an array\"");

    cr_assert_eq(tp_nginx_start(&s_nginx, s_root, s_nginx_extra), 0);
    setenv("HF_ENDPOINT", s_nginx.base_url, 1);
    ufs_options_t options = {.max_retries = 2, .retry_base_ms = 5, .timeout_ms = 10000};
    s_ufs = ufs_new(&options);
    cr_assert_not_null(s_ufs);
}

static void s_teardown(void)
{
    ufs_destroy(&s_ufs);
    tp_server_stop(&s_nginx);
    tp_rmtree(s_root);
    free(s_root);
    for (size_t i = 0; i < FILE_COUNT; i++)
        free(s_data[i]);
}

TestSuite(hf, .init = s_setup, .fini = s_teardown, .timeout = 120);

static void s_check_read(const char *uri, const char *version, const unsigned char *data,
                         size_t size, uint64_t offset, size_t length)
{
    size_t expect = offset >= size ? 0 : (size - offset < length ? size - offset : length);
    unsigned char *buf = malloc(length + 16);
    memset(buf, 0xA5, length + 16);
    int64_t got = ufs_read(s_ufs, uri, version, offset, buf, length);
    cr_assert_eq(got, (int64_t)expect, "%s @%" PRIu64 "+%zu: got %" PRId64 " want %zu (%s)", uri,
                 offset, length, got, expect, shoal_last_error());
    cr_assert(memcmp(buf, data + (expect ? offset : 0), expect) == 0, "%s @%" PRIu64, uri, offset);
    for (size_t k = expect; k < length + 16; k++)
        cr_assert_eq(buf[k], 0xA5, "%s: byte %zu past the data was written", uri, k);
    free(buf);
}

Test(hf, stat_and_read_every_boundary)
{
    char uri[256];
    for (size_t i = 0; i < FILE_COUNT; i++) {
        snprintf(uri, sizeof uri, "hf://datasets/org/name/%s", s_files[i].name);
        ufs_stat_t st;
        cr_assert_eq(ufs_stat(s_ufs, uri, &st), 0, "%s: %s", uri, shoal_last_error());
        cr_assert_eq(st.size, s_files[i].size);
        cr_assert_not(st.is_dir);
        cr_assert_str_eq(st.version, s_etag[i]);
        uint64_t end = s_files[i].size;
        uint64_t offsets[] = {0, PAGE - 1, PAGE, PAGE + 1, end ? end - 1 : 0, end, end + 1};
        size_t lengths[] = {1, PAGE, PAGE + 1, 3 * PAGE};
        for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++)
            for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++)
                s_check_read(uri, st.version, s_data[i], end, offsets[o], lengths[l]);
    }
    /* The explicit default revision is the same file. */
    s_check_read("hf://datasets/org/name@main/page.bin", s_etag[2], s_data[2], PAGE, 7, 100);
}

Test(hf, revisions_and_models)
{
    unsigned char byte = 0;
    cr_assert_eq(ufs_read(s_ufs, "hf://datasets/org/name@v1.0/one.bin", NULL, 0, &byte, 1), 1);
    cr_assert_eq(byte, 'V');
    cr_assert_eq(ufs_read(s_ufs, "hf://datasets/org/name/one.bin", NULL, 0, &byte, 1), 1);
    cr_assert_eq(byte, s_data[1][0]);
    cr_assert_eq(ufs_read(s_ufs, "hf://datasets/org/name@v2/one.bin", NULL, 0, &byte, 1),
                 SHOAL_ENOENT);
    cr_assert(strstr(shoal_last_error(), "/resolve/v2/one.bin"), "%s", shoal_last_error());

    const char *config = "{\"model_type\": \"tiny\"}\n";
    char buf[64] = {0};
    ufs_stat_t st;
    cr_assert_eq(ufs_stat(s_ufs, "hf://org/model/config.json", &st), 0, "%s", shoal_last_error());
    cr_assert_eq(st.size, strlen(config));
    cr_assert_eq(ufs_read(s_ufs, "hf://org/model/config.json", st.version, 0, buf, sizeof buf),
                 (int64_t)strlen(config));
    cr_assert_str_eq(buf, config);
    cr_assert_geq(
        tp_wait_lines(s_nginx.access_log, "GET /org/model/resolve/main/config.json 206", 1, 2000),
        1);
}

Test(hf, missing_and_malformed)
{
    ufs_stat_t st;
    char buf[8];
    cr_assert_eq(ufs_stat(s_ufs, "hf://datasets/org/name/nope.bin", &st), SHOAL_ENOENT);
    cr_assert_eq(ufs_read(s_ufs, "hf://datasets/org/name/nope.bin", NULL, 0, buf, 8), SHOAL_ENOENT);
    cr_assert_eq(ufs_stat(s_ufs, "hf://datasets/org/ghost/x.bin", &st), SHOAL_ENOENT);
    cr_assert_eq(ufs_stat(s_ufs, "hf://datasets/org", &st), SHOAL_EINVAL);
    cr_assert_eq(ufs_stat(s_ufs, "hf://datasets/org/name/../private/one.bin", &st), SHOAL_EINVAL);
    cr_assert_eq(ufs_stat(s_ufs, "hf://datasets/org/name/a//b", &st), SHOAL_EINVAL);
    cr_assert_eq(ufs_stat(s_ufs, "hf://datasets/org/name@%zz/a", &st), SHOAL_EINVAL);
    ufs_list_t list;
    ufs_list_init(&list);
    cr_assert_eq(ufs_list(s_ufs, "hf://datasets/org/bad", false, &list), SHOAL_EPROTO);
    cr_assert_eq(ufs_list(s_ufs, "hf://datasets/org/ghost", false, &list), SHOAL_ENOENT);
    cr_assert_eq(list.count, 0);
    ufs_list_fini(&list);
}

Test(hf, directories)
{
    ufs_stat_t st;
    cr_assert_eq(ufs_stat(s_ufs, "hf://datasets/org/name/sub", &st), 0, "%s", shoal_last_error());
    cr_assert(st.is_dir);
    cr_assert_eq(ufs_stat(s_ufs, "hf://datasets/org/name/sub/deep/", &st), 0);
    cr_assert(st.is_dir);
    cr_assert_eq(ufs_stat(s_ufs, "hf://datasets/org/name", &st), 0, "%s", shoal_last_error());
    cr_assert(st.is_dir);
}

static void s_expect_list(const char *uri, bool recursive, const char *const names[], size_t count)
{
    ufs_list_t list;
    ufs_list_init(&list);
    cr_assert_eq(ufs_list(s_ufs, uri, recursive, &list), 0, "%s: %s", uri, shoal_last_error());
    cr_assert_eq(list.count, count, "%s: %zu entries", uri, list.count);
    for (size_t k = 0; k < count; k++) {
        char want[256];
        snprintf(want, sizeof want, "hf://datasets/org/%s", names[k]);
        cr_assert_str_eq(list.entries[k].uri, want);
        if (list.entries[k].stat.is_dir)
            continue;
        ufs_stat_t st;
        cr_assert_eq(ufs_stat(s_ufs, list.entries[k].uri, &st), 0);
        cr_assert_eq(list.entries[k].stat.size, st.size, "%s", want);
        cr_assert_str_eq(list.entries[k].stat.version, st.version, "%s", want);
    }
    ufs_list_fini(&list);
}

Test(hf, listings)
{
    const char *root[] = {"name/empty.bin", "name/one.bin", "name/page.bin", "name/sub"};
    s_expect_list("hf://datasets/org/name", false, root, 4);
    const char *all[] = {"name/empty.bin", "name/one.bin", "name/page.bin",
                         "name/sub/deep/ragged.bin", "name/sub/pages.bin"};
    s_expect_list("hf://datasets/org/name/", true, all, 5);
    const char *sub[] = {"name/sub/deep", "name/sub/pages.bin"};
    s_expect_list("hf://datasets/org/name/sub", false, sub, 2);
    const char *sub_all[] = {"name/sub/deep/ragged.bin", "name/sub/pages.bin"};
    s_expect_list("hf://datasets/org/name/sub", true, sub_all, 2);
    cr_assert_geq(tp_wait_lines(s_nginx.access_log,
                                "GET /api/datasets/org/name/tree/main/sub?recursive=true", 1, 2000),
                  1);

    /* Two pages joined by a Link header; the entries keep the repo name of the uri. */
    ufs_list_t list;
    ufs_list_init(&list);
    cr_assert_eq(ufs_list(s_ufs, "hf://datasets/org/paged", true, &list), 0, "%s",
                 shoal_last_error());
    cr_assert_eq(list.count, 3);
    cr_assert_str_eq(list.entries[0].uri, "hf://datasets/org/paged/empty.bin");
    cr_assert_str_eq(list.entries[2].uri, "hf://datasets/org/paged/page.bin");
    cr_assert_eq(list.entries[2].stat.size, PAGE);
    ufs_list_fini(&list);
    cr_assert_eq(tp_count_synced(&s_nginx, "cursor=p2"), 1);
}

Test(hf, private_repo_token)
{
    ufs_stat_t st;
    unsigned char byte = 0;
    cr_assert_eq(ufs_stat(s_ufs, "hf://datasets/org/private/one.bin", &st), SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "401"), "%s", shoal_last_error());
    cr_assert(strstr(shoal_last_error(), "HF_TOKEN"), "%s", shoal_last_error());
    ufs_destroy(&s_ufs);

    setenv("HF_TOKEN", "hf_wrong", 1);
    s_ufs = ufs_new(NULL);
    cr_assert_eq(ufs_read(s_ufs, "hf://datasets/org/private/one.bin", NULL, 0, &byte, 1),
                 SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "401"), "%s", shoal_last_error());
    ufs_destroy(&s_ufs);

    setenv("HF_TOKEN", "hf_good", 1);
    s_ufs = ufs_new(NULL);
    cr_assert_eq(ufs_stat(s_ufs, "hf://datasets/org/private/one.bin", &st), 0, "%s",
                 shoal_last_error());
    cr_assert_eq(st.size, 1);
    cr_assert_eq(ufs_read(s_ufs, "hf://datasets/org/private/one.bin", st.version, 0, &byte, 1), 1);
    cr_assert_eq(byte, 'P');
}

Test(hf, lfs_redirect_to_cdn)
{
    const char *uri = "hf://datasets/org/lfs/big.bin";
    ufs_stat_t st;
    cr_assert_eq(ufs_stat(s_ufs, uri, &st), 0, "%s", shoal_last_error());
    cr_assert_eq(st.size, 3 * PAGE);
    cr_assert_str_eq(st.version, "lfs-sha");
    cr_assert_eq(tp_count_synced(&s_nginx, "/cdn/"), 0); /* HEAD stopped at the 302 */
    s_check_read(uri, "lfs-sha", s_data[3], 3 * PAGE, PAGE - 1, PAGE + 2);
    s_check_read(uri, NULL, s_data[3], 3 * PAGE, 3 * PAGE - 1, 10);
    cr_assert_eq(tp_count_synced(&s_nginx, "GET /cdn/big.bin 206"), 2);

    char buf[16];
    cr_assert_eq(ufs_read(s_ufs, uri, "other-sha", 0, buf, sizeof buf), SHOAL_ESTALE);
    cr_assert(strstr(shoal_last_error(), "lfs-sha"), "%s", shoal_last_error());
    cr_assert_eq(tp_count_synced(&s_nginx, "GET /datasets/org/lfs/resolve/main/big.bin 302"), 3);
    cr_assert_eq(tp_count_lines(s_nginx.access_log, "GET /cdn/big.bin"), 2); /* no third */

    ufs_list_t list;
    ufs_list_init(&list);
    cr_assert_eq(ufs_list(s_ufs, "hf://datasets/org/lfs", true, &list), 0);
    cr_assert_eq(list.count, 1);
    cr_assert_eq(list.entries[0].stat.size, 3 * PAGE);
    cr_assert_str_eq(list.entries[0].stat.version, st.version);
    ufs_list_fini(&list);
}

Test(hf, changed_after_stat_is_stale)
{
    const char *uri = "hf://datasets/org/name/sub/pages.bin";
    ufs_stat_t before;
    cr_assert_eq(ufs_stat(s_ufs, uri, &before), 0);
    char path[TP_PATH_MAX];
    snprintf(path, sizeof path, "%s/" REPO "%s", s_root, s_files[3].name);
    tp_fill_pattern(s_data[3], s_files[3].size, 77);
    cr_assert_eq(tp_write_file(path, s_data[3], s_files[3].size), 0);
    struct timespec times[2] = {{before.mtime + 10, 0}, {before.mtime + 10, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, path, times, 0), 0);
    char buf[32];
    cr_assert_eq(ufs_read(s_ufs, uri, before.version, 0, buf, sizeof buf), SHOAL_ESTALE);
    ufs_stat_t after;
    cr_assert_eq(ufs_stat(s_ufs, uri, &after), 0);
    cr_assert_str_neq(after.version, before.version);
    s_check_read(uri, after.version, s_data[3], 3 * PAGE, PAGE, PAGE);
}

/* ---- the tree parser alone (no server): one malformed input per field ------------------- */

static int s_tree(const char *json, bool recursive, ufs_list_t *list)
{
    ufs_list_init(list);
    return ufs_hf_parse_tree("hf://datasets/o/n", "http://hub/tree", json, strlen(json), recursive,
                             list);
}

Test(hf_tree, fields)
{
    ufs_list_t list;
    cr_assert_eq(s_tree("[{\"type\":\"file\",\"oid\":\"g\",\"size\":134,\"path\":\"a/b.bin\","
                        "\"lfs\":{\"oid\":\"sha\",\"size\":3145728}},"
                        "{\"type\":\"directory\",\"oid\":\"d\",\"size\":0,\"path\":\"a/c\"},"
                        "{\"type\":\"file\",\"oid\":\"x\",\"size\":0,\"path\":\"e\"}]",
                        false, &list),
                 0, "%s", shoal_last_error());
    cr_assert_eq(list.count, 3);
    cr_assert_str_eq(list.entries[0].uri, "hf://datasets/o/n/a/b.bin");
    cr_assert_eq(list.entries[0].stat.size, 3145728); /* lfs.size, not the pointer's */
    cr_assert_str_eq(list.entries[0].stat.version, "sha");
    cr_assert(list.entries[1].stat.is_dir);
    cr_assert_str_eq(list.entries[2].stat.version, "x");
    ufs_list_fini(&list);
    cr_assert_eq(s_tree("[{\"type\":\"directory\",\"path\":\"d\"}]", true, &list), 0);
    cr_assert_eq(list.count, 0); /* recursive: no directory entries */
    ufs_list_fini(&list);

    const char *malformed[] = {
        "",                                                    /* empty reply */
        "not json",                                            /* not JSON */
        "{\"error\":\"Repository not found\"}",                /* not an array */
        "[{\"path\":\"a\",\"size\":1}]",                       /* no type */
        "[{\"type\":\"file\",\"size\":1}]",                    /* no path */
        "[{\"type\":\"file\",\"path\":7,\"size\":1}]",         /* path not a string */
        "[{\"type\":\"file\",\"path\":\"a\"}]",                /* no size */
        "[{\"type\":\"file\",\"path\":\"a\",\"size\":\"1\"}]", /* size not an integer */
        "[{\"type\":\"file\",\"path\":\"a\",\"size\":-1}]",    /* negative size */
        "[{\"type\":\"file\",\"path\":\"a\",\"size\":1,\"lfs\":{\"oid\":\"s\"}}]", /* lfs size */
        "[1]",                                            /* entry not an object */
        "[{\"type\":\"file\",\"path\":\"a\",\"size\":1}", /* cut short */
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        cr_assert_eq(s_tree(malformed[i], false, &list), SHOAL_EPROTO, "case %zu", i);
        ufs_list_fini(&list);
    }

    /* Paths no call could use are left out, not errors. */
    cr_assert_eq(s_tree("[{\"type\":\"file\",\"path\":\"../x\",\"size\":1},"
                        "{\"type\":\"file\",\"path\":\"/abs\",\"size\":1},"
                        "{\"type\":\"file\",\"path\":\"a//b\",\"size\":1},"
                        "{\"type\":\"file\",\"path\":\"a/..\",\"size\":1},"
                        "{\"type\":\"file\",\"path\":\"\",\"size\":1},"
                        "{\"type\":\"file\",\"path\":\"a\\nb\",\"size\":1},"
                        "{\"type\":\"file\",\"path\":\"ok..name\",\"size\":1}]",
                        false, &list),
                 0, "%s", shoal_last_error());
    cr_assert_eq(list.count, 1);
    cr_assert_str_eq(list.entries[0].uri, "hf://datasets/o/n/ok..name");
    ufs_list_fini(&list);
    /* An embedded NUL is not the end of the reply. */
    cr_assert_eq(ufs_hf_parse_tree("hf://datasets/o/n", "u", "[]\0garbage", 10, false, &list),
                 SHOAL_EPROTO);
    ufs_list_fini(&list);
}

/* The GET is the stat, and an LFS redirect is remembered per (uri, version): a cold read
 * without a version costs the resolve 302 and the CDN's reply and reports stat's size, version
 * and mtime; a later range with that version goes straight to the CDN (1 request, no resolve
 * hop), also past the end; a direct file is 1 GET, no HEAD; a missing file is 1 request. A
 * remembered target that refuses is forgotten and the resolve URL asked again. */
Test(hf, read_is_the_stat_and_redirect_is_remembered)
{
    const char *uri = "hf://datasets/org/lfs/big.bin";
    const char *resolve = "GET /datasets/org/lfs/resolve/main/big.bin 302";
    unsigned char *buf = malloc(PAGE);
    ufs_stat_t got, later, st;
    cr_assert_eq(ufs_read_stat(s_ufs, uri, NULL, 0, buf, 4096, NULL, &got), 4096, "%s",
                 shoal_last_error());
    cr_assert_eq(memcmp(buf, s_data[3], 4096), 0);
    cr_assert_eq(tp_count_synced(&s_nginx, resolve), 1);
    cr_assert_eq(tp_count_synced(&s_nginx, "GET /cdn/big.bin 206"), 1);
    cr_assert_str_eq(got.version, "lfs-sha");
    cr_assert_eq(got.size, 3 * PAGE);
    cr_assert_not(got.is_dir);

    uint64_t before = ufs_requests(s_ufs);
    cr_assert_eq(ufs_read_stat(s_ufs, uri, got.version, PAGE, buf, PAGE, NULL, &later),
                 (int64_t)PAGE, "%s", shoal_last_error());
    cr_assert_eq(ufs_requests(s_ufs) - before, 1);
    cr_assert_eq(memcmp(buf, s_data[3] + PAGE, PAGE), 0);
    cr_assert_eq(tp_count_synced(&s_nginx, resolve), 1); /* no redirect hop */
    cr_assert_eq(tp_count_synced(&s_nginx, "GET /cdn/big.bin 206"), 2);
    cr_assert_str_eq(later.version, got.version);
    cr_assert_eq(later.size, got.size);
    cr_assert_eq(later.mtime, got.mtime);

    before = ufs_requests(s_ufs);
    cr_assert_eq(ufs_read_stat(s_ufs, uri, got.version, 3 * PAGE, buf, 10, NULL, &later), 0);
    cr_assert_eq(ufs_requests(s_ufs) - before, 1);
    cr_assert_eq(later.size, 3 * PAGE);
    cr_assert_eq(ufs_stat(s_ufs, uri, &st), 0);
    cr_assert_eq(got.size, st.size);
    cr_assert_str_eq(got.version, st.version);
    cr_assert_eq(got.mtime, st.mtime);

    /* the CDN copy gone: the remembered URL is forgotten, resolve is asked again */
    char path[TP_PATH_MAX], moved[TP_PATH_MAX];
    snprintf(path, sizeof path, "%s/cdn/big.bin", s_root);
    snprintf(moved, sizeof moved, "%s/cdn/big.moved", s_root);
    cr_assert_eq(rename(path, moved), 0);
    cr_assert_eq(ufs_read_stat(s_ufs, uri, got.version, 0, buf, 10, NULL, &later), SHOAL_ENOENT);
    cr_assert_eq(tp_count_synced(&s_nginx, resolve), 2);
    cr_assert_eq(rename(moved, path), 0);
    cr_assert_eq(ufs_read_stat(s_ufs, uri, got.version, 0, buf, 10, NULL, &later), 10, "%s",
                 shoal_last_error());
    cr_assert_eq(tp_count_synced(&s_nginx, resolve), 3);
    cr_assert_eq(ufs_read_stat(s_ufs, uri, got.version, 10, buf, 10, NULL, &later), 10);
    cr_assert_eq(tp_count_synced(&s_nginx, resolve), 3); /* remembered again */

    const char *direct = "hf://datasets/org/name/sub/pages.bin";
    cr_assert_eq(ufs_read_stat(s_ufs, direct, NULL, PAGE, buf, PAGE, NULL, &got), (int64_t)PAGE);
    cr_assert_eq(memcmp(buf, s_data[3] + PAGE, PAGE), 0);
    cr_assert_eq(tp_count_synced(&s_nginx, "GET /datasets/org/name/resolve/main/sub/pages.bin"), 1);
    cr_assert_eq(tp_count_synced(&s_nginx, "HEAD /datasets/org/name/resolve/main/sub/pages.bin"),
                 0);
    cr_assert_eq(ufs_stat(s_ufs, direct, &st), 0);
    cr_assert_eq(got.size, st.size);
    cr_assert_str_eq(got.version, st.version);
    cr_assert_eq(got.mtime, st.mtime);
    cr_assert_gt(got.mtime, 0);

    before = ufs_requests(s_ufs);
    cr_assert_eq(
        ufs_read_stat(s_ufs, "hf://datasets/org/name/nope.bin", NULL, 0, buf, 10, NULL, &later),
        SHOAL_ENOENT);
    cr_assert_eq(ufs_requests(s_ufs) - before, 1);
    free(buf);
}
