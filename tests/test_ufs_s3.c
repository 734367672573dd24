/*
 * test_ufs_s3.c - the s3:// connector against a real moto_server on loopback (started per
 * test, IAM auth on where a test needs refusals), and badhttp.py for a transfer that dies
 * half way: sizes, every range boundary, listings over many pages, directories, odd keys,
 * versions, credentials from the environment and the shared file, anonymous access.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "testproc.h"
#include "ufs_conn.h"
#include "ufs_uri.h"

#define PAGE   (1u << 20)
#define BUCKET "shoal-test"

static char *s_dir;         /* temp dir: server log, credentials file, HOME */
static tp_proc_t s_moto;    /* moto_server */
static int s_port;          /* its port */
static char s_endpoint[64]; /* "http://127.0.0.1:PORT" */
static ufs_t *s_ufs;        /* under test */

/* Starts moto_server (or $SHOAL_MOTO_SERVER) on a free port; IAM auth on when `auth` (moto's
 * INITIAL_NO_AUTH_ACTION_COUNT=0: unknown access keys are refused with 403). */
static void s_moto_start(bool auth)
{
    char log_path[TP_PATH_MAX], port[16];
    snprintf(log_path, sizeof log_path, "%s/moto.log", s_dir);
    s_port = tp_free_port();
    cr_assert_gt(s_port, 0);
    snprintf(port, sizeof port, "%d", s_port);
    const char *moto = getenv("SHOAL_MOTO_SERVER") ? getenv("SHOAL_MOTO_SERVER") : "moto_server";
    const char *argv[] = {moto, "-H", "127.0.0.1", "-p", port, NULL};
    if (auth)
        setenv("INITIAL_NO_AUTH_ACTION_COUNT", "0", 1);
    else
        unsetenv("INITIAL_NO_AUTH_ACTION_COUNT");
    cr_assert_eq(tp_spawn(&s_moto, argv, log_path), 0, "cannot start %s", moto);
    unsetenv("INITIAL_NO_AUTH_ACTION_COUNT");
    cr_assert_eq(tp_wait_http(s_port, "/", 30000), 0, "moto_server did not answer (log %s)",
                 log_path);
    snprintf(s_endpoint, sizeof s_endpoint, "http://127.0.0.1:%d", s_port);
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

/* The environment every test starts from: this server, static keys, pages of 7 keys, and a
 * HOME without ~/.aws so nothing of the machine's leaks in. */
static void s_env(void)
{
    static const char *const cleared[] = {"AWS_ENDPOINT_URL",   "AWS_SESSION_TOKEN",
                                          "AWS_PROFILE",        "AWS_SHARED_CREDENTIALS_FILE",
                                          "AWS_DEFAULT_REGION", "AWS_S3_FORCE_PATH_STYLE",
                                          "SHOAL_S3_PATH_STYLE"};
    for (size_t i = 0; i < sizeof cleared / sizeof cleared[0]; i++)
        unsetenv(cleared[i]);
    setenv("AWS_ENDPOINT_URL_S3", s_endpoint, 1);
    setenv("AWS_ACCESS_KEY_ID", "testing", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "testing", 1);
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("SHOAL_S3_MAX_KEYS", "7", 1);
    setenv("HOME", s_dir, 1);
}

static void s_setup(void)
{
    s_dir = tp_tempdir("s3");
    cr_assert_not_null(s_dir);
    s_moto_start(false);
    s_env();
    s_ufs = s_new_ufs();
}

static void s_setup_auth(void)
{
    s_dir = tp_tempdir("s3auth");
    cr_assert_not_null(s_dir);
    s_moto_start(true);
    s_env();
}

static void s_teardown(void)
{
    ufs_destroy(&s_ufs);
    tp_stop(&s_moto, 5000);
    if (s_dir) {
        tp_rmtree(s_dir);
        free(s_dir);
        s_dir = NULL;
    }
}

/* Creates or replaces an object (or, with key NULL, the bucket) with a SigV4-signed PUT made
 * with libcurl directly: the connector under test only reads. */
static void s_put(const char *key, const void *data, size_t len)
{
    char url[8192];
    snprintf(url, sizeof url, "%s/%s%s", s_endpoint, BUCKET, key ? "/" : "");
    if (key)
        cr_assert_eq(pct_encode_append(url, sizeof url, key, true), 0);
    CURL *curl = curl_easy_init();
    cr_assert_not_null(curl);
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, len ? data : "");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
    curl_easy_setopt(curl, CURLOPT_USERPWD, "testing:testing");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, NULL);
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, sink);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    fclose(sink);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    cr_assert_eq(rc, CURLE_OK, "PUT %s: %s", url, curl_easy_strerror(rc));
    cr_assert_eq(status, 200, "PUT %s: HTTP %ld", url, status);
}

/* ---------------------------------------------------------------------------------------- */

/* The objects: name and size; contents are tp_fill_pattern(seed = index). */
static const struct {
    const char *key;
    size_t size;
} s_objects[] = {
    {"sizes/empty", 0},
    {"sizes/one", 1},
    {"sizes/page", PAGE},
    {"sizes/ragged", 5 * PAGE + 12345},
};
#define OBJECT_COUNT (sizeof s_objects / sizeof s_objects[0])

Test(ufs_s3, stat_and_read_every_boundary, .init = s_setup, .fini = s_teardown, .timeout = 240)
{
    unsigned char *data[OBJECT_COUNT];
    s_put(NULL, NULL, 0);
    for (size_t i = 0; i < OBJECT_COUNT; i++) {
        data[i] = malloc(s_objects[i].size + 1);
        tp_fill_pattern(data[i], s_objects[i].size, i);
        s_put(s_objects[i].key, data[i], s_objects[i].size);
    }
    unsigned char *buf = malloc(6 * PAGE);
    for (size_t i = 0; i < OBJECT_COUNT; i++) {
        char uri[256];
        snprintf(uri, sizeof uri, "s3://" BUCKET "/%s", s_objects[i].key);
        uint64_t size = s_objects[i].size;
        ufs_stat_t st;
        cr_assert_eq(ufs_stat(s_ufs, uri, &st), 0, "%s: %s", uri, shoal_last_error());
        cr_assert_eq(st.size, size, "%s", uri);
        cr_assert_not(st.is_dir);
        cr_assert_gt(st.mtime, 1600000000);
        cr_assert_eq(strlen(st.version), 32, "ETag without quotes: %s", st.version);

        /* Whole object, then every boundary around the first pages and the end. */
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
        /* No version: reads too. */
        cr_assert_eq(ufs_read(s_ufs, uri, NULL, 0, buf, 1), size ? 1 : 0);
        free(data[i]);
    }
    free(buf);
}

Test(ufs_s3, listing_pages_and_directories, .init = s_setup, .fini = s_teardown, .timeout = 120)
{
    s_put(NULL, NULL, 0);
    char key[64];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "many/f%02d", i);
        s_put(key, key, strlen(key));
    }
    s_put("many/sub/x", "x", 1);
    s_put("many/sub/deeper/y", "y", 1);
    s_put("many/sub2/z", "z", 1);
    s_put("many/marker/", "", 0); /* a console-made "folder" object */
    s_put("top", "t", 1);

    /* One level: 20 files and 3 directories, sorted, over 4 pages of 7. */
    ufs_list_t list;
    ufs_list_init(&list);
    cr_assert_eq(ufs_list(s_ufs, "s3://" BUCKET "/many", false, &list), 0, "%s",
                 shoal_last_error());
    cr_assert_eq(list.count, 23);
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "s3://" BUCKET "/many/f%02d", i);
        cr_assert_str_eq(list.entries[i].uri, key);
        cr_assert_eq(list.entries[i].stat.size, strlen(key) - strlen("s3://" BUCKET "/"));
        cr_assert_not(list.entries[i].stat.is_dir);
        cr_assert_eq(strlen(list.entries[i].stat.version), 32);
        cr_assert_gt(list.entries[i].stat.mtime, 1600000000);
    }
    cr_assert_str_eq(list.entries[20].uri, "s3://" BUCKET "/many/marker");
    cr_assert_str_eq(list.entries[21].uri, "s3://" BUCKET "/many/sub");
    cr_assert_str_eq(list.entries[22].uri, "s3://" BUCKET "/many/sub2");
    for (int i = 20; i < 23; i++)
        cr_assert(list.entries[i].stat.is_dir);
    ufs_list_fini(&list);

    /* A trailing slash is the same listing. */
    cr_assert_eq(ufs_list(s_ufs, "s3://" BUCKET "/many/", false, &list), 0);
    cr_assert_eq(list.count, 23);
    ufs_list_fini(&list);

    /* Recursive: every object, no directories, no marker. */
    cr_assert_eq(ufs_list(s_ufs, "s3://" BUCKET "/many", true, &list), 0, "%s", shoal_last_error());
    cr_assert_eq(list.count, 23);
    cr_assert_str_eq(list.entries[20].uri, "s3://" BUCKET "/many/sub/deeper/y");
    cr_assert_str_eq(list.entries[22].uri, "s3://" BUCKET "/many/sub2/z");
    for (size_t i = 0; i < list.count; i++)
        cr_assert_not(list.entries[i].stat.is_dir);
    ufs_list_fini(&list);

    /* The bucket root. */
    cr_assert_eq(ufs_list(s_ufs, "s3://" BUCKET, false, &list), 0);
    cr_assert_eq(list.count, 2);
    cr_assert_str_eq(list.entries[0].uri, "s3://" BUCKET "/many");
    cr_assert(list.entries[0].stat.is_dir);
    cr_assert_str_eq(list.entries[1].uri, "s3://" BUCKET "/top");
    ufs_list_fini(&list);

    /* A prefix with nothing below: empty; a missing bucket: ENOENT. */
    cr_assert_eq(ufs_list(s_ufs, "s3://" BUCKET "/nothing", false, &list), 0);
    cr_assert_eq(list.count, 0);
    cr_assert_eq(ufs_list(s_ufs, "s3://no-such-bucket/x", false, &list), SHOAL_ENOENT);
    cr_assert(strstr(shoal_last_error(), "404"), "%s", shoal_last_error());
    cr_assert(strstr(shoal_last_error(), "NoSuchBucket"), "%s", shoal_last_error());
    ufs_list_fini(&list);

    /* Directories by stat. */
    ufs_stat_t st;
    const char *dirs[] = {"s3://" BUCKET,
                          "s3://" BUCKET "/",
                          "s3://" BUCKET "/many",
                          "s3://" BUCKET "/many/",
                          "s3://" BUCKET "/many/sub/deeper",
                          "s3://" BUCKET "/many/marker"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        cr_assert_eq(ufs_stat(s_ufs, dirs[i], &st), 0, "%s: %s", dirs[i], shoal_last_error());
        cr_assert(st.is_dir, "%s", dirs[i]);
        cr_assert_eq(st.size, 0);
        cr_assert_str_eq(st.version, "");
    }
    cr_assert_eq(ufs_stat(s_ufs, "s3://" BUCKET "/many/f0", &st), SHOAL_ENOENT);
    cr_assert_eq(ufs_stat(s_ufs, "s3://" BUCKET "/nothing/", &st), SHOAL_ENOENT);
    cr_assert_eq(ufs_stat(s_ufs, "s3://no-such-bucket", &st), SHOAL_ENOENT);
    char byte;
    cr_assert_eq(ufs_read(s_ufs, "s3://" BUCKET "/many", NULL, 0, &byte, 1), SHOAL_ENOENT);
    cr_assert_eq(ufs_read(s_ufs, "s3://" BUCKET "/many/", NULL, 0, &byte, 1), SHOAL_EISDIR);
    cr_assert_eq(ufs_read(s_ufs, "s3://" BUCKET "/nope", NULL, 0, &byte, 1), SHOAL_ENOENT);
    cr_assert(strstr(shoal_last_error(), "s3://" BUCKET "/nope"), "%s", shoal_last_error());
}

/* Keys that need every encoding rule of the canonical URI: spaces, '+', UTF-8, reserved
 * characters. Stat, read and list must all agree on the name. */
Test(ufs_s3, odd_keys, .init = s_setup, .fini = s_teardown, .timeout = 120)
{
    static const char *const keys[] = {
        "odd/a b+c.bin",  "odd/\xc3\xbc\xe6\x97\xa5\xe6\x9c\xac.txt", "odd/q?x=1&y=2#frag",
        "odd/per%20cent", "odd/semi;colon,comma:at@$!'()*",           "odd/tilde~under_dash-dot.",
    };
    const size_t count = sizeof keys / sizeof keys[0];
    s_put(NULL, NULL, 0);
    for (size_t i = 0; i < count; i++)
        s_put(keys[i], keys[i], strlen(keys[i]));
    char uri[512], buf[256];
    for (size_t i = 0; i < count; i++) {
        snprintf(uri, sizeof uri, "s3://" BUCKET "/%s", keys[i]);
        ufs_stat_t st;
        cr_assert_eq(ufs_stat(s_ufs, uri, &st), 0, "%s: %s", uri, shoal_last_error());
        cr_assert_eq(st.size, strlen(keys[i]));
        int64_t got = ufs_read(s_ufs, uri, st.version, 0, buf, sizeof buf);
        cr_assert_eq(got, (int64_t)strlen(keys[i]), "%s: %s", uri, shoal_last_error());
        cr_assert_eq(memcmp(buf, keys[i], (size_t)got), 0);
    }
    ufs_list_t list;
    ufs_list_init(&list);
    cr_assert_eq(ufs_list(s_ufs, "s3://" BUCKET "/odd", false, &list), 0, "%s", shoal_last_error());
    cr_assert_eq(list.count, count);
    for (size_t i = 0; i < count; i++) {
        snprintf(uri, sizeof uri, "s3://" BUCKET "/%s", keys[i]);
        bool found = false;
        for (size_t j = 0; j < list.count; j++)
            found = found || strcmp(list.entries[j].uri, uri) == 0;
        cr_assert(found, "%s not listed", uri);
    }
    ufs_list_fini(&list);
}

/* A version pins reads: after the object changes, reads of the old version fail with ESTALE
 * (inside the object by If-Match, past its end by the HEAD check), never mixing bytes. */
Test(ufs_s3, changed_object_is_stale, .init = s_setup, .fini = s_teardown, .timeout = 120)
{
    s_put(NULL, NULL, 0);
    s_put("v/file", "first version", 13);
    ufs_stat_t before, after;
    cr_assert_eq(ufs_stat(s_ufs, "s3://" BUCKET "/v/file", &before), 0);
    s_put("v/file", "second version!", 15);
    cr_assert_eq(ufs_stat(s_ufs, "s3://" BUCKET "/v/file", &after), 0);
    cr_assert_str_neq(before.version, after.version);
    char buf[64];
    cr_assert_eq(ufs_read(s_ufs, "s3://" BUCKET "/v/file", before.version, 0, buf, sizeof buf),
                 SHOAL_ESTALE);
    cr_assert(strstr(shoal_last_error(), "412"), "%s", shoal_last_error());
    cr_assert_eq(ufs_read(s_ufs, "s3://" BUCKET "/v/file", before.version, 100, buf, 4),
                 SHOAL_ESTALE, "%s", shoal_last_error());
    cr_assert_eq(ufs_read(s_ufs, "s3://" BUCKET "/v/file", after.version, 100, buf, 4), 0);
    cr_assert_eq(ufs_read(s_ufs, "s3://" BUCKET "/v/file", after.version, 7, buf, sizeof buf), 8);
    cr_assert_eq(memcmp(buf, "version!", 8), 0);
}

/* With IAM auth on, moto refuses keys it does not know: EACCES with the status, the service's
 * code and where the key came from (environment, or a profile of the credentials file). */
Test(ufs_s3, refused_credentials, .init = s_setup_auth, .fini = s_teardown, .timeout = 120)
{
    s_ufs = s_new_ufs();
    ufs_stat_t st;
    ufs_list_t list;
    ufs_list_init(&list);
    cr_assert_eq(ufs_stat(s_ufs, "s3://" BUCKET "/k", &st), SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "HTTP 403"), "%s", shoal_last_error());
    cr_assert(strstr(shoal_last_error(), "InvalidAccessKeyId"), "%s", shoal_last_error());
    cr_assert(strstr(shoal_last_error(), "from the environment"), "%s", shoal_last_error());
    cr_assert_eq(ufs_list(s_ufs, "s3://" BUCKET "/", true, &list), SHOAL_EACCES);
    char byte;
    cr_assert_eq(ufs_read(s_ufs, "s3://" BUCKET "/k", NULL, 0, &byte, 1), SHOAL_EACCES);
    ufs_destroy(&s_ufs);

    /* The shared credentials file, profile from AWS_PROFILE. */
    char path[TP_PATH_MAX];
    snprintf(path, sizeof path, "%s/creds", s_dir);
    const char text[] = "[default]\naws_access_key_id = AKIADEFAULTKEY\n"
                        "aws_secret_access_key = x\n"
                        "[profile work]\naws_access_key_id = AKIAWORKPROFILE\n"
                        "aws_secret_access_key = y\naws_session_token = tok\n";
    cr_assert_eq(tp_write_file(path, text, sizeof text - 1), 0);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    setenv("AWS_PROFILE", "work", 1);
    s_ufs = s_new_ufs();
    cr_assert_eq(ufs_stat(s_ufs, "s3://" BUCKET "/k", &st), SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "AKIAWORKPROFILE from profile [work]"), "%s",
              shoal_last_error());
    ufs_destroy(&s_ufs);

    /* ~/.aws/credentials with the default profile. */
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    unsetenv("AWS_PROFILE");
    snprintf(path, sizeof path, "%s/.aws/credentials", s_dir);
    cr_assert_eq(tp_write_file(path, text, sizeof text - 1), 0);
    s_ufs = s_new_ufs();
    cr_assert_eq(ufs_stat(s_ufs, "s3://" BUCKET "/k", &st), SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "AKIADEFAULTKEY from profile [default]"), "%s",
              shoal_last_error());
    ufs_destroy(&s_ufs);

    /* A profile asked for by name that does not exist: a clear configuration error. */
    setenv("AWS_PROFILE", "nope", 1);
    s_ufs = s_new_ufs();
    cr_assert_eq(ufs_stat(s_ufs, "s3://" BUCKET "/k", &st), SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "no profile [nope]"), "%s", shoal_last_error());
    ufs_destroy(&s_ufs);
}

/* No credentials at all: anonymous, unsigned requests. moto (without IAM auth) refuses them on
 * objects of a private bucket, as S3 does. */
Test(ufs_s3, anonymous_requests, .init = s_setup, .fini = s_teardown, .timeout = 120)
{
    s_put(NULL, NULL, 0);
    s_put("k", "v", 1);
    ufs_destroy(&s_ufs);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    s_ufs = s_new_ufs();
    ufs_stat_t st;
    int rc = ufs_stat(s_ufs, "s3://" BUCKET "/k", &st);
    cr_assert_eq(rc, SHOAL_EACCES, "%d %s", rc, shoal_last_error());
    cr_assert(strstr(shoal_last_error(), "HTTP 403"), "%s", shoal_last_error());
    cr_assert(strstr(shoal_last_error(), "anonymous"), "%s", shoal_last_error());
}

/* A server that stops answering: reads fail with an error, never short data. First a transfer
 * cut half way (badhttp.py's /die/ path, reached as the bucket "die" of a path-style endpoint),
 * then the moto server killed between a stat and a read. */
Test(ufs_s3, server_dies, .init = s_setup, .fini = s_teardown, .timeout = 120)
{
    char *root = tp_tempdir("s3die");
    cr_assert_not_null(root);
    char path[TP_PATH_MAX];
    snprintf(path, sizeof path, "%s/big.bin", root);
    unsigned char *data = malloc(4 * PAGE);
    tp_fill_pattern(data, 4 * PAGE, 3);
    cr_assert_eq(tp_write_file(path, data, 4 * PAGE), 0);
    tp_server_t bad;
    cr_assert_eq(tp_badhttp_start(&bad, root), 0);
    setenv("AWS_ENDPOINT_URL_S3", bad.base_url, 1);
    ufs_t *ufs = s_new_ufs();
    int64_t got = ufs_read(ufs, "s3://die/big.bin", NULL, 0, data, 4 * PAGE);
    cr_assert_eq(got, SHOAL_EIO, "got %" PRId64 " (%s)", got, shoal_last_error());
    ufs_destroy(&ufs);
    tp_server_stop(&bad);
    tp_rmtree(root);
    free(root);

    s_put(NULL, NULL, 0);
    s_put("big", data, 4 * PAGE);
    ufs_stat_t st;
    cr_assert_eq(ufs_stat(s_ufs, "s3://" BUCKET "/big", &st), 0);
    tp_stop(&s_moto, 5000);
    got = ufs_read(s_ufs, "s3://" BUCKET "/big", st.version, 0, data, 4 * PAGE);
    cr_assert_eq(got, SHOAL_EIO, "got %" PRId64 " (%s)", got, shoal_last_error());
    free(data);
}

/* Configuration errors are reported per call, with the reason. */
Test(ufs_s3, bad_configuration, .init = s_setup, .fini = s_teardown)
{
    ufs_destroy(&s_ufs);
    setenv("AWS_ENDPOINT_URL_S3", "ftp://example.com", 1);
    s_ufs = s_new_ufs();
    ufs_stat_t st;
    cr_assert_eq(ufs_stat(s_ufs, "s3://" BUCKET "/k", &st), SHOAL_EACCES);
    cr_assert(strstr(shoal_last_error(), "endpoint"), "%s", shoal_last_error());
    cr_assert_eq(ufs_stat(s_ufs, "s3:///k", &st), SHOAL_EACCES);
    ufs_destroy(&s_ufs);
    s_env();
    s_ufs = s_new_ufs();
    cr_assert_eq(ufs_stat(s_ufs, "s3:///k", &st), SHOAL_EINVAL);
    cr_assert_eq(ufs_stat(s_ufs, "s3://bad bucket/k", &st), SHOAL_EINVAL);
}

/* The GET is the stat (ufs_read_stat): a cold read without a version is one request and
 * reports what stat reports; a later range with the learnt version is one request; the object
 * replaced in between is SHOAL_ESTALE; a missing object is one request; past the end the size
 * still comes back (a 416 here carries no ETag: one stat more, 2 requests). Counted with the
 * handle's own counter (ufs_requests): the server's log is not needed. */
Test(ufs_s3, read_is_the_stat, .init = s_setup, .fini = s_teardown, .timeout = 120)
{
    s_put(NULL, NULL, 0);
    size_t size = 3 * 65536 + 17;
    unsigned char *data = malloc(size), *buf = malloc(size);
    tp_fill_pattern(data, size, 42);
    s_put("gs/file", data, size);
    s_put("gs/empty", "", 0);
    const char *uri = "s3://" BUCKET "/gs/file";

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

    cr_assert_eq(ufs_read_stat(s_ufs, "s3://" BUCKET "/gs/empty", NULL, 0, buf, 10, NULL, &later),
                 0, "%s", shoal_last_error());
    cr_assert_eq(later.size, 0);
    cr_assert_eq(ufs_stat(s_ufs, "s3://" BUCKET "/gs/empty", &st), 0);
    cr_assert_str_eq(later.version, st.version);

    before = ufs_requests(s_ufs);
    cr_assert_eq(ufs_read_stat(s_ufs, "s3://" BUCKET "/gs/missing", NULL, 0, buf, 10, NULL, &later),
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
