/*
 * test_ufs_az.c - the az:// connector against a real Azurite on loopback (started per test):
 * Shared Key (which Azurite verifies), SAS tokens, connection strings, sizes, every range
 * boundary, listings over many pages, directories, odd names, versions, refused keys, and a
 * server that dies (badhttp.py's half-sent body, and Azurite killed).
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "coding.h"
#include "testproc.h"
#include "ufs.h"
#include "ufs_az_sign.h"
#include "ufs_uri.h"

#define PAGE      (1u << 20)
#define ACCOUNT   "devstoreaccount1"
#define CONTAINER "shoal-test"
#define DEV_KEY                                                                                    \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

static char *s_dir;         /* temp dir: Azurite's data and log */
static tp_proc_t s_azurite; /* the server */
static char s_endpoint[96]; /* "http://127.0.0.1:PORT/devstoreaccount1" */
static ufs_t *s_ufs;        /* under test */

static void s_azurite_start(void)
{
    char log_path[TP_PATH_MAX], data[TP_PATH_MAX], port_text[16], bin[TP_PATH_MAX];
    snprintf(log_path, sizeof log_path, "%s/azurite.log", s_dir);
    snprintf(data, sizeof data, "%s/data", s_dir);
    cr_assert_eq(tp_mkdirs(data, 0700), 0);
    int port = tp_free_port();
    cr_assert_gt(port, 0);
    snprintf(port_text, sizeof port_text, "%d", port);
    snprintf(bin, sizeof bin, "%s/node_modules/.bin/azurite-blob",
             getenv("SHOAL_AZURITE_DIR") ? getenv("SHOAL_AZURITE_DIR") : "/opt/shoal-azurite");
    const char *argv[] = {bin,          "--blobHost", "127.0.0.1",
                          "--blobPort", port_text,    "--location",
                          data,         "--silent",   "--skipApiVersionCheck",
                          "--loose",    NULL};
    cr_assert_eq(tp_spawn(&s_azurite, argv, log_path), 0, "cannot start %s", bin);
    cr_assert_eq(tp_wait_http(port, "/", 30000), 0, "Azurite did not answer (log %s)", log_path);
    snprintf(s_endpoint, sizeof s_endpoint, "http://127.0.0.1:%d/" ACCOUNT, port);
}

static ufs_t *s_new_ufs(void)
{
    ufs_options_t options = {.connect_timeout_ms = 2000,
                             .timeout_ms = 20000,
                             .low_speed_ms = 5000,
                             .max_retries = 2,
                             .retry_base_ms = 5};
    ufs_t *ufs = ufs_new(&options);
    cr_assert_not_null(ufs);
    return ufs;
}

static void s_env(void)
{
    static const char *const cleared[] = {"AZURE_STORAGE_CONNECTION_STRING",
                                          "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_ENDPOINT"};
    for (size_t i = 0; i < sizeof cleared / sizeof cleared[0]; i++)
        unsetenv(cleared[i]);
    setenv("AZURE_STORAGE_ACCOUNT", ACCOUNT, 1);
    setenv("AZURE_STORAGE_KEY", DEV_KEY, 1);
    setenv("AZURE_STORAGE_BLOB_ENDPOINT", s_endpoint, 1);
    setenv("SHOAL_AZ_MAX_RESULTS", "7", 1);
}

static void s_setup(void)
{
    s_dir = tp_tempdir("az");
    cr_assert_not_null(s_dir);
    s_azurite_start();
    s_env();
    s_ufs = s_new_ufs();
}

static void s_teardown(void)
{
    ufs_destroy(&s_ufs);
    tp_stop(&s_azurite, 5000);
    if (s_dir) {
        tp_rmtree(s_dir);
        free(s_dir);
        s_dir = NULL;
    }
}

/* A PUT signed with Shared Key by the connector's own signer (Azurite checks it): the
 * container when blob is NULL, else a block blob. */
static void s_put(const char *blob, const void *data, size_t len)
{
    char url[8192], line[256], sts[16384], signature[64], date[64];
    snprintf(url, sizeof url, "%s/" CONTAINER "%s", s_endpoint, blob ? "/" : "?restype=container");
    if (blob)
        cr_assert_eq(pct_encode_append(url, sizeof url, blob, true), 0);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    struct curl_slist *headers = NULL;
    snprintf(line, sizeof line, "x-ms-date: %s", date);
    headers = curl_slist_append(headers, line);
    headers = curl_slist_append(headers, "x-ms-version: 2021-08-06");
    snprintf(line, sizeof line, "Content-Length: %zu", len);
    headers = curl_slist_append(headers, line);
    headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
    if (blob)
        headers = curl_slist_append(headers, "x-ms-blob-type: BlockBlob");
    cr_assert_eq(ufs_az_string_to_sign("PUT", url, headers, ACCOUNT, sts, sizeof sts), 0);
    unsigned char key[64];
    size_t key_len;
    cr_assert_eq(sodium_base642bin(key, sizeof key, DEV_KEY, strlen(DEV_KEY), NULL, &key_len, NULL,
                                   sodium_base64_VARIANT_ORIGINAL),
                 0);
    cr_assert_eq(ufs_az_sign(sts, key, key_len, signature, sizeof signature), 0);
    snprintf(line, sizeof line, "Authorization: SharedKey " ACCOUNT ":%s", signature);
    headers = curl_slist_append(headers, line);

    CURL *curl = curl_easy_init();
    cr_assert_not_null(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, len ? data : "");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, sink);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    fclose(sink);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    cr_assert_eq(rc, CURLE_OK, "PUT %s: %s", url, curl_easy_strerror(rc));
    cr_assert_eq(status, 201, "PUT %s: HTTP %ld", url, status);
}

/* ---------------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
} s_blobs[] = {
    {"sizes/empty", 0},
    {"sizes/one", 1},
    {"sizes/page", PAGE},
    {"sizes/ragged", 5 * PAGE + 12345},
};
#define BLOB_COUNT (sizeof s_blobs / sizeof s_blobs[0])

Test(ufs_az, stat_and_read_every_boundary, .init = s_setup, .fini = s_teardown, .timeout = 240)
{
    unsigned char *data[BLOB_COUNT];
    s_put(NULL, NULL, 0);
    for (size_t i = 0; i < BLOB_COUNT; i++) {
        data[i] = malloc(s_blobs[i].size + 1);
        tp_fill_pattern(data[i], s_blobs[i].size, i);
        s_put(s_blobs[i].name, data[i], s_blobs[i].size);
    }
    unsigned char *buf = malloc(6 * PAGE);
    for (size_t i = 0; i < BLOB_COUNT; i++) {
        char uri[256];
        snprintf(uri, sizeof uri, "az://" CONTAINER "/%s", s_blobs[i].name);
        uint64_t size = s_blobs[i].size;
        ufs_stat_t st;
        cr_assert_eq(ufs_stat(s_ufs, uri, &st), 0, "%s: %s", uri, shoal_last_error());
        cr_assert_eq(st.size, size, "%s", uri);
        cr_assert_not(st.is_dir);
        cr_assert_gt(st.mtime, 1600000000);
        cr_assert(strncmp(st.version, "0x", 2) == 0, "ETag without quotes: %s", st.version);

        int64_t got = ufs_read(s_ufs, uri, st.version, 0, buf, 6 * PAGE);
        cr_assert_eq(got, (int64_t)size, "%s whole: %" PRId64 " (%s)", uri, got,
                     shoal_last_error());
        cr_assert(size == 0 || memcmp(buf, data[i], size) == 0);
        const uint64_t offsets[] = {0,    PAGE - 1, PAGE,       PAGE + 1, size ? size - 1 : 0,
                                    size, size + 1, size + PAGE};
        const size_t lengths[] = {1, 2, PAGE - 1, PAGE, PAGE + 1};
        for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++) {
            for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++) {
                uint64_t offset = offsets[o];
                size_t length = lengths[l];
                int64_t want =
                    offset >= size ? 0 : (int64_t)(size - offset < length ? size - offset : length);
                memset(buf, 0xAA, length);
                got = ufs_read(s_ufs, uri, st.version, offset, buf, length);
                cr_assert_eq(got, want,
                             "%s @%" PRIu64 "+%zu: got %" PRId64 " want %" PRId64 " (%s)", uri,
                             offset, length, got, want, shoal_last_error());
                cr_assert(want == 0 || memcmp(buf, data[i] + offset, (size_t)want) == 0,
                          "%s @%" PRIu64 "+%zu: wrong bytes", uri, offset, length);
            }
        }
        cr_assert_eq(ufs_read(s_ufs, uri, NULL, 0, buf, 1), size ? 1 : 0);
        free(data[i]);
    }
    free(buf);
}

Test(ufs_az, listing_pages_and_directories, .init = s_setup, .fini = s_teardown, .timeout = 120)
{
    s_put(NULL, NULL, 0);
    char name[64];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "many/f%02d", i);
        s_put(name, name, strlen(name));
    }
    s_put("many/sub/x", "x", 1);
    s_put("many/sub/deeper/y", "y", 1);
    s_put("many/sub2/z", "z", 1);
    s_put("top", "t", 1);

    ufs_list_t list;
    ufs_list_init(&list);
    cr_assert_eq(ufs_list(s_ufs, "az://" CONTAINER "/many", false, &list), 0, "%s",
                 shoal_last_error());
    cr_assert_eq(list.count, 22);
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "az://" CONTAINER "/many/f%02d", i);
        cr_assert_str_eq(list.entries[i].uri, name);
        cr_assert_eq(list.entries[i].stat.size, strlen(name) - strlen("az://" CONTAINER "/"));
        cr_assert_not(list.entries[i].stat.is_dir);
        cr_assert(strncmp(list.entries[i].stat.version, "0x", 2) == 0);
        cr_assert_gt(list.entries[i].stat.mtime, 1600000000);
    }
    cr_assert_str_eq(list.entries[20].uri, "az://" CONTAINER "/many/sub");
    cr_assert_str_eq(list.entries[21].uri, "az://" CONTAINER "/many/sub2");
    cr_assert(list.entries[20].stat.is_dir && list.entries[21].stat.is_dir);
    ufs_list_fini(&list);

    /* The version a listing gives is the one stat gives. */
    ufs_stat_t st;
    cr_assert_eq(ufs_list(s_ufs, "az://" CONTAINER "/many/", true, &list), 0, "%s",
                 shoal_last_error());
    cr_assert_eq(list.count, 23);
    cr_assert_str_eq(list.entries[20].uri, "az://" CONTAINER "/many/sub/deeper/y");
    cr_assert_eq(ufs_stat(s_ufs, list.entries[0].uri, &st), 0);
    cr_assert_str_eq(st.version, list.entries[0].stat.version);
    ufs_list_fini(&list);

    cr_assert_eq(ufs_list(s_ufs, "az://" CONTAINER, false, &list), 0);
    cr_assert_eq(list.count, 2);
    cr_assert_str_eq(list.entries[0].uri, "az://" CONTAINER "/many");
    cr_assert_str_eq(list.entries[1].uri, "az://" CONTAINER "/top");
    ufs_list_fini(&list);

    cr_assert_eq(ufs_list(s_ufs, "az://" CONTAINER "/nothing", false, &list), 0);
    cr_assert_eq(list.count, 0);
    cr_assert_eq(ufs_list(s_ufs, "az://no-such-container/x", false, &list), SHOAL_ENOENT);
    cr_assert(strstr(shoal_last_error(), "ContainerNotFound"), "%s", shoal_last_error());
    ufs_list_fini(&list);

    const char *dirs[] = {"az://" CONTAINER, "az://" CONTAINER "/many", "az://" CONTAINER "/many/",
                          "az://" CONTAINER "/many/sub/deeper"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        cr_assert_eq(ufs_stat(s_ufs, dirs[i], &st), 0, "%s: %s", dirs[i], shoal_last_error());
        cr_assert(st.is_dir, "%s", dirs[i]);
    }
    cr_assert_eq(ufs_stat(s_ufs, "az://" CONTAINER "/many/f0", &st), SHOAL_ENOENT);
    cr_assert_eq(ufs_stat(s_ufs, "az://no-such-container", &st), SHOAL_ENOENT);
    char byte;
    cr_assert_eq(ufs_read(s_ufs, "az://" CONTAINER "/nope", NULL, 0, &byte, 1), SHOAL_ENOENT);
    cr_assert(strstr(shoal_last_error(), "BlobNotFound"), "%s", shoal_last_error());
}

Test(ufs_az, odd_names, .init = s_setup, .fini = s_teardown, .timeout = 120)
{
    static const char *const names[] = {
        "odd/a b+c.bin",  "odd/\xc3\xbc\xe6\x97\xa5\xe6\x9c\xac.txt", "odd/q?x=1&y=2#frag",
        "odd/per%20cent", "odd/semi;colon,comma:at@$!'()*",
    };
    const size_t count = sizeof names / sizeof names[0];
    s_put(NULL, NULL, 0);
    for (size_t i = 0; i < count; i++)
        s_put(names[i], names[i], strlen(names[i]));
    char uri[512], buf[256];
    for (size_t i = 0; i < count; i++) {
        snprintf(uri, sizeof uri, "az://" CONTAINER "/%s", names[i]);
        ufs_stat_t st;
        cr_assert_eq(ufs_stat(s_ufs, uri, &st), 0, "%s: %s", uri, shoal_last_error());
        cr_assert_eq(st.size, strlen(names[i]));
        int64_t got = ufs_read(s_ufs, uri, st.version, 0, buf, sizeof buf);
        cr_assert_eq(got, (int64_t)strlen(names[i]), "%s: %s", uri, shoal_last_error());
        cr_assert_eq(memcmp(buf, names[i], (size_t)got), 0);
    }
    ufs_list_t list;
    ufs_list_init(&list);
    cr_assert_eq(ufs_list(s_ufs, "az://" CONTAINER "/odd", false, &list), 0, "%s",
                 shoal_last_error());
    cr_assert_eq(list.count, count);
    for (size_t i = 0; i < count; i++) {
        snprintf(uri, sizeof uri, "az://" CONTAINER "/%s", names[i]);
        bool found = false;
        for (size_t j = 0; j < list.count; j++)
            found = found || strcmp(list.entries[j].uri, uri) == 0;
        cr_assert(found, "%s not listed", uri);
    }
    ufs_list_fini(&list);
}

Test(ufs_az, changed_blob_is_stale, .init = s_setup, .fini = s_teardown, .timeout = 120)
{
    s_put(NULL, NULL, 0);
    s_put("v/file", "first version", 13);
    ufs_stat_t before, after;
    cr_assert_eq(ufs_stat(s_ufs, "az://" CONTAINER "/v/file", &before), 0);
    s_put("v/file", "second version!", 15);
    cr_assert_eq(ufs_stat(s_ufs, "az://" CONTAINER "/v/file", &after), 0);
    cr_assert_str_neq(before.version, after.version);
    char buf[64];
    cr_assert_eq(ufs_read(s_ufs, "az://" CONTAINER "/v/file", before.version, 0, buf, sizeof buf),
                 SHOAL_ESTALE, "%s", shoal_last_error());
    cr_assert(strstr(shoal_last_error(), "412"), "%s", shoal_last_error());
    cr_assert_eq(ufs_read(s_ufs, "az://" CONTAINER "/v/file", before.version, 100, buf, 4),
                 SHOAL_ESTALE, "%s", shoal_last_error());
    cr_assert_eq(ufs_read(s_ufs, "az://" CONTAINER "/v/file", after.version, 7, buf, sizeof buf),
                 8);
    cr_assert_eq(memcmp(buf, "version!", 8), 0);
}

/* Signs an account SAS (service blob, all resource types, read+list) with the account key, as
 * a user would get it from the portal. */
static void s_make_sas(char *out, size_t out_len, const char *key_b64)
{
    const char *version = "2019-12-12", *expiry = "2099-01-01T00:00:00Z";
    char sts[512], signature[64];
    snprintf(sts, sizeof sts, "%s\nrl\nb\nsco\n\n%s\n\nhttps,http\n%s\n", ACCOUNT, expiry, version);
    unsigned char key[64];
    size_t key_len;
    cr_assert_eq(sodium_base642bin(key, sizeof key, key_b64, strlen(key_b64), NULL, &key_len, NULL,
                                   sodium_base64_VARIANT_ORIGINAL),
                 0);
    cr_assert_eq(ufs_az_sign(sts, key, key_len, signature, sizeof signature), 0);
    snprintf(out, out_len, "?sv=%s&ss=b&srt=sco&sp=rl&se=%s&spr=https,http&sig=", version,
             "2099-01-01T00%3A00%3A00Z");
    cr_assert_eq(pct_encode_append(out, out_len, signature, false), 0);
}

/* Refused keys and SAS tokens are EACCES with the status and Azure's code; working SAS tokens
 * and connection strings read. */
Test(ufs_az, credentials, .init = s_setup, .fini = s_teardown, .timeout = 120)
{
    s_put(NULL, NULL, 0);
    s_put("k", "value", 5);
    ufs_stat_t st;
    char buf[16];
    ufs_destroy(&s_ufs);

    /* A wrong key (valid base64, another account's). */
    setenv("AZURE_STORAGE_KEY",
           "AAAAvdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq"
           "/K1SZFPTOtr/KBHBeksoGMGw==",
           1);
    s_ufs = s_new_ufs();
    cr_assert_eq(ufs_stat(s_ufs, "az://" CONTAINER "/k", &st), SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "HTTP 403"), "%s", shoal_last_error());
    cr_assert(strstr(shoal_last_error(), "Shared Key of account " ACCOUNT), "%s",
              shoal_last_error());
    cr_assert_eq(ufs_read(s_ufs, "az://" CONTAINER "/k", NULL, 0, buf, sizeof buf), SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "AuthorizationFailure") ||
                  strstr(shoal_last_error(), "AuthenticationFailed"),
              "%s", shoal_last_error());
    ufs_list_t list;
    ufs_list_init(&list);
    cr_assert_eq(ufs_list(s_ufs, "az://" CONTAINER, true, &list), SHOAL_EACCES);
    ufs_destroy(&s_ufs);

    /* A key that is not base64: a configuration error per call. */
    setenv("AZURE_STORAGE_KEY", "not base64!", 1);
    s_ufs = s_new_ufs();
    cr_assert_eq(ufs_stat(s_ufs, "az://" CONTAINER "/k", &st), SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "base64"), "%s", shoal_last_error());
    ufs_destroy(&s_ufs);

    /* A good SAS token, then one with a bad signature; the token never shows in messages. */
    unsetenv("AZURE_STORAGE_KEY");
    char sas[512];
    s_make_sas(sas, sizeof sas, DEV_KEY);
    setenv("AZURE_STORAGE_SAS_TOKEN", sas, 1);
    s_ufs = s_new_ufs();
    cr_assert_eq(ufs_stat(s_ufs, "az://" CONTAINER "/k", &st), 0, "%s", shoal_last_error());
    cr_assert_eq(st.size, 5);
    cr_assert_eq(ufs_read(s_ufs, "az://" CONTAINER "/k", st.version, 1, buf, sizeof buf), 4);
    cr_assert_eq(memcmp(buf, "alue", 4), 0);
    cr_assert_eq(ufs_list(s_ufs, "az://" CONTAINER, false, &list), 0, "%s", shoal_last_error());
    cr_assert_eq(list.count, 1);
    ufs_list_fini(&list);
    ufs_destroy(&s_ufs);
    s_make_sas(
        sas, sizeof sas,
        "AAAAvdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==");
    setenv("AZURE_STORAGE_SAS_TOKEN", sas + 1, 1); /* also without the '?' */
    s_ufs = s_new_ufs();
    cr_assert_eq(ufs_stat(s_ufs, "az://" CONTAINER "/k", &st), SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "403"), "%s", shoal_last_error());
    cr_assert(strstr(shoal_last_error(), "SAS token"), "%s", shoal_last_error());
    cr_assert_null(strstr(shoal_last_error(), "sig="), "%s", shoal_last_error());
    const char *signature = strstr(sas, "&sig=") + 5;
    cr_assert_gt(strlen(signature), 20);
    cr_assert_eq(ufs_read(s_ufs, "az://" CONTAINER "/k", NULL, 0, buf, sizeof buf), SHOAL_EACCES);
    cr_assert_null(strstr(shoal_last_error(), signature), "%s", shoal_last_error());
    cr_assert_eq(ufs_list(s_ufs, "az://" CONTAINER, true, &list), SHOAL_EACCES);
    cr_assert_null(strstr(shoal_last_error(), signature), "%s", shoal_last_error());
    ufs_destroy(&s_ufs);

    /* The same SAS against a dead endpoint: the HTTP layer's message names the URL (with the
     * SAS appended), and shows every SAS value as <redacted>. */
    char dead[128];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d/" ACCOUNT, tp_free_port());
    setenv("AZURE_STORAGE_BLOB_ENDPOINT", dead, 1);
    s_ufs = s_new_ufs();
    cr_assert_eq(ufs_read(s_ufs, "az://" CONTAINER "/k", NULL, 0, buf, sizeof buf), SHOAL_EIO);
    cr_assert(strstr(shoal_last_error(), dead), "%s", shoal_last_error());
    cr_assert(strstr(shoal_last_error(), "&sig=<redacted>"), "%s", shoal_last_error());
    cr_assert(strstr(shoal_last_error(), "sv=<redacted>&ss=<redacted>"), "%s", shoal_last_error());
    cr_assert_null(strstr(shoal_last_error(), signature), "%s", shoal_last_error());
    cr_assert_null(strstr(shoal_last_error(), "2099"), "%s", shoal_last_error());
    cr_assert_eq(ufs_list(s_ufs, "az://" CONTAINER, true, &list), SHOAL_EIO);
    cr_assert(strstr(shoal_last_error(), "comp=list"), "%s", shoal_last_error());
    cr_assert_null(strstr(shoal_last_error(), signature), "%s", shoal_last_error());
    ufs_destroy(&s_ufs);
    setenv("AZURE_STORAGE_BLOB_ENDPOINT", s_endpoint, 1);

    /* A connection string alone. */
    unsetenv("AZURE_STORAGE_SAS_TOKEN");
    unsetenv("AZURE_STORAGE_ACCOUNT");
    unsetenv("AZURE_STORAGE_BLOB_ENDPOINT");
    char connection[512];
    snprintf(connection, sizeof connection,
             "DefaultEndpointsProtocol=http;AccountName=" ACCOUNT ";AccountKey=" DEV_KEY
             ";BlobEndpoint=%s;",
             s_endpoint);
    setenv("AZURE_STORAGE_CONNECTION_STRING", connection, 1);
    s_ufs = s_new_ufs();
    cr_assert_eq(ufs_stat(s_ufs, "az://" CONTAINER "/k", &st), 0, "%s", shoal_last_error());
    cr_assert_eq(st.size, 5);
    ufs_destroy(&s_ufs);

    /* Nothing configured: a clear error. */
    unsetenv("AZURE_STORAGE_CONNECTION_STRING");
    s_ufs = s_new_ufs();
    cr_assert_eq(ufs_stat(s_ufs, "az://" CONTAINER "/k", &st), SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "AZURE_STORAGE_ACCOUNT"), "%s", shoal_last_error());
}

/* A transfer cut half way (badhttp.py's /die/ path as the container "die"), then Azurite
 * killed between a stat and a read: errors, never short data. */
Test(ufs_az, server_dies, .init = s_setup, .fini = s_teardown, .timeout = 120)
{
    char *root = tp_tempdir("azdie");
    cr_assert_not_null(root);
    char path[TP_PATH_MAX];
    snprintf(path, sizeof path, "%s/big.bin", root);
    unsigned char *data = malloc(4 * PAGE);
    tp_fill_pattern(data, 4 * PAGE, 3);
    cr_assert_eq(tp_write_file(path, data, 4 * PAGE), 0);
    tp_server_t bad;
    cr_assert_eq(tp_badhttp_start(&bad, root), 0);
    setenv("AZURE_STORAGE_BLOB_ENDPOINT", bad.base_url, 1);
    ufs_t *ufs = s_new_ufs();
    int64_t got = ufs_read(ufs, "az://die/big.bin", NULL, 0, data, 4 * PAGE);
    cr_assert_eq(got, SHOAL_EIO, "got %" PRId64 " (%s)", got, shoal_last_error());
    ufs_destroy(&ufs);
    tp_server_stop(&bad);
    tp_rmtree(root);
    free(root);

    s_put(NULL, NULL, 0);
    s_put("big", data, 4 * PAGE);
    ufs_stat_t st;
    cr_assert_eq(ufs_stat(s_ufs, "az://" CONTAINER "/big", &st), 0);
    tp_stop(&s_azurite, 5000);
    got = ufs_read(s_ufs, "az://" CONTAINER "/big", st.version, 0, data, 4 * PAGE);
    cr_assert_eq(got, SHOAL_EIO, "got %" PRId64 " (%s)", got, shoal_last_error());
    free(data);
}

/* The GET is the stat (ufs_read_stat): a cold read without a version is one request and
 * reports what stat reports; a later range with the learnt version is one request; the object
 * replaced in between is SHOAL_ESTALE; a missing object is one request; past the end the size
 * still comes back (a 416 here carries no ETag: one stat more, 2 requests). Counted with the
 * handle's own counter (ufs_requests): the server's log is not needed. */
Test(ufs_az, read_is_the_stat, .init = s_setup, .fini = s_teardown, .timeout = 120)
{
    s_put(NULL, NULL, 0);
    size_t size = 3 * 65536 + 17;
    unsigned char *data = malloc(size), *buf = malloc(size);
    tp_fill_pattern(data, size, 42);
    s_put("gs/file", data, size);
    s_put("gs/empty", "", 0);
    const char *uri = "az://" CONTAINER "/gs/file";

    uint64_t before = ufs_requests(s_ufs);
    ufs_stat_t got, st;
    cr_assert_eq(ufs_read_stat(s_ufs, uri, NULL, 0, buf, 65536, NULL, &got), 65536, "%s",
                 shoal_last_error());
    cr_assert_eq(ufs_requests(s_ufs) - before, 1);
    cr_assert_eq(memcmp(buf, data, 65536), 0);
    cr_assert_eq(ufs_stat(s_ufs, uri, &st), 0);
    cr_assert_eq(got.size, size);
    cr_assert_eq(got.size, st.size);
    cr_assert_str_eq(got.version, st.version);
    cr_assert_eq(got.mtime, st.mtime);
    cr_assert_not(got.is_dir);

    before = ufs_requests(s_ufs);
    ufs_stat_t later;
    cr_assert_eq(ufs_read_stat(s_ufs, uri, got.version, 65536, buf, size, NULL, &later),
                 (int64_t)(size - 65536), "%s", shoal_last_error());
    cr_assert_eq(ufs_requests(s_ufs) - before, 1);
    cr_assert_eq(memcmp(buf, data + 65536, size - 65536), 0);
    cr_assert_str_eq(later.version, got.version);
    cr_assert_eq(later.size, size);

    before = ufs_requests(s_ufs);
    cr_assert_eq(ufs_read_stat(s_ufs, uri, got.version, size, buf, 10, NULL, &later), 0, "%s",
                 shoal_last_error());
    cr_assert_eq(ufs_requests(s_ufs) - before, 2); /* the 416, then one HEAD */
    cr_assert_eq(later.size, size);
    cr_assert_str_eq(later.version, got.version);

    cr_assert_eq(
        ufs_read_stat(s_ufs, "az://" CONTAINER "/gs/empty", NULL, 0, buf, 10, NULL, &later), 0,
        "%s", shoal_last_error());
    cr_assert_eq(later.size, 0);
    cr_assert_eq(ufs_stat(s_ufs, "az://" CONTAINER "/gs/empty", &st), 0);
    cr_assert_str_eq(later.version, st.version);

    before = ufs_requests(s_ufs);
    cr_assert_eq(
        ufs_read_stat(s_ufs, "az://" CONTAINER "/gs/missing", NULL, 0, buf, 10, NULL, &later),
        SHOAL_ENOENT, "%s", shoal_last_error());
    cr_assert_eq(ufs_requests(s_ufs) - before, 1);
    cr_assert_eq(later.size, 0);
    cr_assert_str_eq(later.version, "");

    tp_fill_pattern(data, size - 1, 43);
    s_put("gs/file", data, size - 1);
    before = ufs_requests(s_ufs);
    cr_assert_eq(ufs_read_stat(s_ufs, uri, got.version, 65536, buf, 65536, NULL, &later),
                 SHOAL_ESTALE, "%s", shoal_last_error());
    cr_assert_eq(ufs_requests(s_ufs) - before, 1);
    cr_assert_eq(ufs_read_stat(s_ufs, uri, NULL, 0, buf, size, NULL, &later), (int64_t)(size - 1));
    cr_assert_str_neq(later.version, got.version);
    cr_assert_eq(later.size, size - 1);
    cr_assert_eq(memcmp(buf, data, size - 1), 0);
    free(data);
    free(buf);
}
