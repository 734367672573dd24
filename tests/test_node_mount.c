/*
 * test_node_mount.c - URI normalisation and the mount check (node/mount.h): escapes, `//`,
 * dot segments, traversal (raw and percent-encoded), control characters, segment boundaries.
 * Also the pure parsers of node/config.h (sizes, durations, endpoints, flags).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "mount.h"
#include "units.h"

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

Test(mount_normalize, plain_uris_are_unchanged)
{
    EXPECT_NORM("s3://bucket/data/train/0001.tar", "s3://bucket/data/train/0001.tar");
    EXPECT_NORM("file:///srv/data/x", "file:///srv/data/x");
    EXPECT_NORM("http://127.0.0.1:8080/a/b", "http://127.0.0.1:8080/a/b");
    EXPECT_NORM("hf://datasets/org/name/file.parquet", "hf://datasets/org/name/file.parquet");
}

Test(mount_normalize, scheme_and_http_host_are_lowercased)
{
    EXPECT_NORM("S3://Bucket/Key", "s3://Bucket/Key");
    EXPECT_NORM("HTTP://Example.COM/Path", "http://example.com/Path");
}

Test(mount_normalize, slashes_collapse_and_root_is_slash)
{
    EXPECT_NORM("s3://b//x///y", "s3://b/x/y");
    EXPECT_NORM("s3://b", "s3://b/");
    EXPECT_NORM("s3://b/", "s3://b/");
    EXPECT_NORM("file:///", "file:///");
    EXPECT_NORM("file:////srv//data/", "file:///srv/data/");
}

Test(mount_normalize, dot_segments_resolve)
{
    EXPECT_NORM("s3://b/./x/./y", "s3://b/x/y");
    EXPECT_NORM("s3://b/x/../y", "s3://b/y");
    EXPECT_NORM("s3://b/x/y/..", "s3://b/x/");
    EXPECT_NORM("s3://b/x/.", "s3://b/x/");
    EXPECT_NORM("s3://b/x/y/../../z", "s3://b/z");
    EXPECT_NORM("s3://b/...", "s3://b/..."); /* three dots is a name */
    EXPECT_NORM("s3://b/..x/x..", "s3://b/..x/x..");
}

Test(mount_normalize, unreserved_escapes_decode_others_stay_uppercase)
{
    EXPECT_NORM("s3://b/%41%62%2d%5f%7e", "s3://b/Ab-_~");
    EXPECT_NORM("s3://b/a%20b", "s3://b/a%20b");
    EXPECT_NORM("s3://b/a%3fb", "s3://b/a%3Fb");
    EXPECT_NORM("s3://b/%e2%82%ac", "s3://b/%E2%82%AC");
    EXPECT_NORM("s3://b/caf\xc3\xa9", "s3://b/caf\xc3\xa9"); /* raw UTF-8 is kept */
}

Test(mount_normalize, encoded_dots_are_dot_segments)
{
    EXPECT_NORM("s3://b/x/%2e%2e/y", "s3://b/y");
    EXPECT_NORM("s3://b/x/%2E/y", "s3://b/x/y");
    EXPECT_NORM("s3://b/x/.%2e/y", "s3://b/y");
    cr_assert_eq(s_norm("s3://b/%2e%2e/etc"), SHOAL_EACCES);
}

Test(mount_normalize, climbing_above_the_root_is_refused)
{
    cr_assert_eq(s_norm("file:///.."), SHOAL_EACCES);
    cr_assert_eq(s_norm("file:///srv/../../etc/passwd"), SHOAL_EACCES);
    cr_assert_eq(s_norm("s3://b/x/../../y"), SHOAL_EACCES);
}

Test(mount_normalize, malformed_is_refused)
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

Test(mount_normalize, length_limits)
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

Test(mount_normalize, min_depth_reports_the_lowest_point)
{
    size_t depth = 0;
    cr_assert_eq(uri_normalize("s3://b/x/y", s_out, sizeof s_out, &depth), 0);
    cr_assert_eq(depth, SIZE_MAX);
    cr_assert_eq(uri_normalize("s3://b/x/y/../../x/y", s_out, sizeof s_out, &depth), 0);
    cr_assert_eq(depth, 0);
    cr_assert_eq(uri_normalize("s3://b/x/y/z/../w", s_out, sizeof s_out, &depth), 0);
    cr_assert_eq(depth, 2);
}

/* A table with the mounts the check tests use. */
static mount_table_t *s_table(void)
{
    mount_table_t *table = mount_table_new();
    cr_assert_not_null(table);
    cr_assert_eq(mount_table_add(table, "file:///data/"), 0);
    cr_assert_eq(mount_table_add(table, "s3://bucket/train"), 0);
    cr_assert_eq(mount_table_add(table, "http://127.0.0.1:8080/"), 0);
    cr_assert_eq(mount_table_count(table), 3);
    return table;
}

static int s_check(mount_table_t *table, const char *uri)
{
    memset(s_out, 0, sizeof s_out);
    return mount_check(table, uri, s_out, sizeof s_out);
}

Test(mount_check, mounts_are_stored_normalised)
{
    mount_table_t *table = s_table();
    cr_assert_str_eq(mount_table_get(table, 0), "file:///data");
    cr_assert_str_eq(mount_table_get(table, 1), "s3://bucket/train");
    cr_assert_str_eq(mount_table_get(table, 2), "http://127.0.0.1:8080/");
    cr_assert_null(mount_table_get(table, 3));
    mount_table_destroy(&table);
    cr_assert_null(table);
    mount_table_destroy(&table); /* safe on NULL */
}

Test(mount_check, inside_is_allowed_and_normalised)
{
    mount_table_t *table = s_table();
    cr_assert_eq(s_check(table, "file:///data/x"), 0);
    cr_assert_str_eq(s_out, "file:///data/x");
    cr_assert_eq(s_check(table, "file:///data"), 0); /* the mount itself */
    cr_assert_eq(s_check(table, "file:///data/"), 0);
    cr_assert_eq(s_check(table, "file:////data//a/./b"), 0);
    cr_assert_str_eq(s_out, "file:///data/a/b");
    cr_assert_eq(s_check(table, "s3://bucket/train/shard-0001.tar"), 0);
    cr_assert_eq(s_check(table, "http://127.0.0.1:8080/anything/at/all"), 0);
    cr_assert_eq(s_check(table, "HTTP://127.0.0.1:8080/x"), 0);
    cr_assert_str_eq(s_out, "http://127.0.0.1:8080/x");
    cr_assert_eq(s_check(table, "file:///data/a/../b"), 0); /* stays inside */
    cr_assert_str_eq(s_out, "file:///data/b");
    mount_table_destroy(&table);
}

Test(mount_check, segment_boundaries)
{
    mount_table_t *table = s_table();
    cr_assert_eq(s_check(table, "file:///database"), SHOAL_EACCES);
    cr_assert_eq(s_check(table, "file:///database/x"), SHOAL_EACCES);
    cr_assert_eq(s_check(table, "file:///dat"), SHOAL_EACCES);
    cr_assert_eq(s_check(table, "s3://bucket/training/x"), SHOAL_EACCES);
    cr_assert_eq(s_check(table, "s3://bucket/trai"), SHOAL_EACCES);
    cr_assert_eq(s_check(table, "s3://bucket2/train/x"), SHOAL_EACCES);
    cr_assert_eq(s_check(table, "s3://bucke/train/x"), SHOAL_EACCES);
    cr_assert_eq(s_check(table, "http://127.0.0.1:80801/x"), SHOAL_EACCES);
    cr_assert_eq(s_check(table, "http://127.0.0.1:808/x"), SHOAL_EACCES);
    cr_assert_eq(s_check(table, "https://127.0.0.1:8080/x"), SHOAL_EACCES);
    mount_table_destroy(&table);
}

Test(mount_check, traversal_is_refused)
{
    mount_table_t *table = s_table();
    const char *bad[] = {
        "file:///data/../etc/passwd",
        "file:///data/%2e%2e/etc/passwd",
        "file:///data/%2E%2E/etc/passwd",
        "file:///data/.%2e/etc/passwd",
        "file:///data/x/../../etc/passwd",
        "file:///data/../data/x", /* leaves the mount and comes back */
        "file:///data/%2e%2e/data/x",
        "file:///other/../data/x", /* reaches the mount only through '..' */
        "file:///data/..%2f..%2fetc/passwd",
        "file:///data/x%00/../../etc",
        "file:///../../etc/passwd",
        "s3://bucket/train/../secret",
        "s3://bucket/train/%2E%2E/secret",
        "http://127.0.0.1:8080/../x",
        "file:///etc/passwd",
        "s3://other/x",
        "ftp://data/x",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(s_check(table, bad[i]), SHOAL_EACCES, "'%s' was allowed", bad[i]);
    cr_assert(strstr(shoal_last_error(), "refused") != NULL);
    mount_table_destroy(&table);
}

Test(mount_check, empty_table_refuses_everything)
{
    mount_table_t *table = mount_table_new();
    cr_assert_eq(s_check(table, "file:///x"), SHOAL_EACCES);
    mount_table_destroy(&table);
}

Test(mount_check, root_mount_covers_the_authority_only)
{
    mount_table_t *table = mount_table_new();
    cr_assert_eq(mount_table_add(table, "s3://bucket"), 0);
    cr_assert_str_eq(mount_table_get(table, 0), "s3://bucket/");
    cr_assert_eq(s_check(table, "s3://bucket/x/y"), 0);
    cr_assert_eq(s_check(table, "s3://bucket"), 0);
    cr_assert_eq(s_check(table, "s3://bucketx/y"), SHOAL_EACCES);
    cr_assert_eq(mount_table_add(table, "not a uri"), SHOAL_EINVAL);
    cr_assert_eq(mount_table_add(table, "file:///../x"), SHOAL_EACCES);
    mount_table_destroy(&table);
}

Test(mount_is_under, boundaries)
{
    cr_assert(mount_is_under("s3://b/a", "s3://b/a"));
    cr_assert(mount_is_under("s3://b/a/", "s3://b/a"));
    cr_assert(mount_is_under("s3://b/a/x", "s3://b/a"));
    cr_assert(!mount_is_under("s3://b/ab", "s3://b/a"));
    cr_assert(mount_is_under("s3://b/ab", "s3://b/"));
    cr_assert(!mount_is_under("s3://b", "s3://b/a"));
}

/* --- config parsers (proto/units.h, the grammar config.c uses) --- */

Test(config, sizes)
{
    uint64_t size = 0;
    cr_assert_eq(units_parse_size("4096", &size), 0);
    cr_assert_eq(size, 4096);
    cr_assert_eq(units_parse_size("10G", &size), 0);
    cr_assert_eq(size, 10ull << 30);
    cr_assert_eq(units_parse_size("512M", &size), 0);
    cr_assert_eq(size, 512ull << 20);
    cr_assert_eq(units_parse_size("1.5GiB", &size), 0);
    cr_assert_eq(size, 3ull << 29);
    cr_assert_eq(units_parse_size("4k", &size), 0);
    cr_assert_eq(size, 4096);
    cr_assert_eq(units_parse_size("2TB", &size), 0);
    cr_assert_eq(size, 2ull << 40);
    const char *bad[] = {"", "G", "-1", "10X", "10 G", "1.5", "abc", "10GG", "99999999999T"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(units_parse_size(bad[i], &size), SHOAL_EINVAL, "'%s'", bad[i]);
}

Test(config, durations)
{
    int64_t ns = 0;
    cr_assert_eq(units_parse_duration("60", &ns), 0);
    cr_assert_eq(ns, 60000000000ll);
    cr_assert_eq(units_parse_duration("0.5", &ns), 0);
    cr_assert_eq(ns, 500000000ll);
    cr_assert_eq(units_parse_duration("250ms", &ns), 0);
    cr_assert_eq(ns, 250000000ll);
    cr_assert_eq(units_parse_duration("2m", &ns), 0);
    cr_assert_eq(ns, 120000000000ll);
    cr_assert_eq(units_parse_duration("0", &ns), 0);
    cr_assert_eq(ns, 0);
    const char *bad[] = {"", "-1", "1x", "ms", "1 s", "1e300"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(units_parse_duration(bad[i], &ns), SHOAL_EINVAL, "'%s'", bad[i]);
}

Test(config, endpoints)
{
    char out[CONFIG_ENDPOINT_MAX];
    bool loopback = false;
    cr_assert_eq(config_parse_endpoint("127.0.0.1:7070", out, &loopback), 0);
    cr_assert_str_eq(out, "tcp://127.0.0.1:7070");
    cr_assert(loopback);
    cr_assert_eq(config_parse_endpoint("tcp://localhost:1", out, &loopback), 0);
    cr_assert_str_eq(out, "tcp://127.0.0.1:1");
    cr_assert(loopback);
    cr_assert_eq(config_parse_endpoint("[::1]:7070", out, &loopback), 0);
    cr_assert(loopback);
    cr_assert_eq(config_parse_endpoint("0.0.0.0:7070", out, &loopback), 0);
    cr_assert(!loopback);
    cr_assert_eq(config_parse_endpoint("*:7070", out, &loopback), 0);
    cr_assert(!loopback);
    const char *bad[] = {"7070",      "host",     "host:", "host:0", "host:65536",
                         "udp://h:1", "::1:7070", "h:12x", "a b:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(config_parse_endpoint(bad[i], out, &loopback), SHOAL_EINVAL, "'%s'", bad[i]);
}

/* Parses a NULL-terminated argv (argv[0] included) into a fresh config. */
static int s_parse(node_config_t *config, const char *const *args, char *error, size_t len)
{
    int argc = 0;
    while (args[argc])
        argc++;
    cr_assert_eq(config_init(config), 0);
    return config_parse(config, argc, (char *const *)args, error, len);
}

Test(config, flags_and_defaults)
{
    node_config_t config;
    char error[CONFIG_ERROR_MAX];
    const char *args[] = {"shoald",      "--mount",     "file:///d/",     "--mount=s3://b/",
                          "--capacity",  "1G",          "--metadata-ttl", "500ms",
                          "--threads=2", "--log-level", "debug",          NULL};
    cr_assert_eq(s_parse(&config, args, error, sizeof error), 0, "%s", error);
    cr_assert_eq(config.mounts.len, 2);
    cr_assert_eq(config.capacity_bytes, 1ull << 30);
    cr_assert_eq(config.metadata_ttl_ns, 500000000ll);
    cr_assert_eq(config.threads, 2);
    cr_assert_eq(config.page_size, 1u << 20);
    cr_assert_eq(config.range_pages, 4);
    cr_assert_eq(config.log_level, LOG_DEBUG);
    cr_assert_str_eq(config.listen, "tcp://127.0.0.1:7070");
    cr_assert_str_eq(config.gossip, "tcp://127.0.0.1:7071");
    node_config_t copy;
    cr_assert_eq(config_copy(&copy, &config), 0);
    cr_assert_str_eq(copy.mounts.items[1], "s3://b/");
    config_fini(&copy);
    config_fini(&config);
}

Test(config, bad_values_are_named)
{
    struct {
        const char *flag, *value, *needle;
    } cases[] = {
        {"--capacity", "12Q", "12Q"},        {"--metadata-ttl", "soon", "soon"},
        {"--threads", "0", "'0'"},           {"--page-size", "1K", "1K"},
        {"--range-pages", "70000", "70000"}, {"--log-level", "loud", "loud"},
        {"--listen", "nowhere", "nowhere"},  {"--listen", "10.1.2.3:7070", "10.1.2.3"},
        {"--store", "tape", "tape"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        node_config_t config;
        char error[CONFIG_ERROR_MAX] = "";
        const char *args[] = {"shoald",      "--mount",      "file:///d/",
                              cases[i].flag, cases[i].value, NULL};
        cr_expect_eq(s_parse(&config, args, error, sizeof error), SHOAL_EINVAL, "%s %s",
                     cases[i].flag, cases[i].value);
        cr_expect(strstr(error, cases[i].needle) != NULL, "error '%s' does not name '%s'", error,
                  cases[i].needle);
        config_fini(&config);
    }
}

Test(config, structure_errors)
{
    const char *const cases[][4] = {
        {"shoald", NULL},                /* no mount */
        {"shoald", "--mount", NULL},     /* missing value */
        {"shoald", "--nope", "1", NULL}, /* unknown flag */
        {"shoald", "stray", NULL},       /* not a flag */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        node_config_t config;
        char error[CONFIG_ERROR_MAX] = "";
        cr_expect_eq(s_parse(&config, cases[i], error, sizeof error), SHOAL_EINVAL, "case %zu", i);
        cr_expect(error[0] != '\0');
        config_fini(&config);
    }
    node_config_t config;
    char error[CONFIG_ERROR_MAX] = "";
    const char *help[] = {"shoald", "--capacity", "bad", "--help", NULL};
    cr_assert_eq(s_parse(&config, help, error, sizeof error), 1);
    config_fini(&config);
    const char *insecure[] = {"shoald",       "--mount",    "s3://b/", "--listen",
                              "0.0.0.0:7070", "--insecure", NULL};
    cr_assert_eq(s_parse(&config, insecure, error, sizeof error), 0, "%s", error);
    cr_assert(!config.listen_loopback);
    config_fini(&config);
}

Test(config, file_then_flags_override)
{
    char path[] = "/tmp/shoal-config-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char text[] = "# a node\n"
                        "name = alpha\n"
                        "capacity = 2G\n"
                        "mount = file:///from-file/\n"
                        "--threads = 3\n"
                        "metadata-ttl = \"5\"\n"
                        "\n"
                        "insecure = false\n";
    cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    node_config_t config;
    char error[CONFIG_ERROR_MAX] = "";
    const char *args[] = {"shoald", "--config", path, "--capacity", "3G", NULL};
    cr_assert_eq(s_parse(&config, args, error, sizeof error), 0, "%s", error);
    cr_assert_str_eq(config.name, "alpha");
    cr_assert_eq(config.capacity_bytes, 3ull << 30); /* the flag wins */
    cr_assert_eq(config.threads, 3);
    cr_assert_eq(config.metadata_ttl_ns, 5000000000ll);
    cr_assert_eq(config.mounts.len, 1);
    cr_assert_str_eq(config.mounts.items[0], "file:///from-file/");
    config_fini(&config);

    const char *replace[] = {"shoald", "--config", path, "--mount", "s3://b/", NULL};
    cr_assert_eq(s_parse(&config, replace, error, sizeof error), 0, "%s", error);
    cr_assert_eq(config.mounts.len, 1);
    cr_assert_str_eq(config.mounts.items[0], "s3://b/"); /* flag mounts replace the file's */
    config_fini(&config);

    FILE *file = fopen(path, "a");
    fputs("threads = many\n", file);
    fclose(file);
    cr_assert_eq(s_parse(&config, args, error, sizeof error), SHOAL_EINVAL);
    cr_assert(strstr(error, ":9") != NULL && strstr(error, "many") != NULL, "%s", error);
    config_fini(&config);
    unlink(path);
}

Test(config, local_socket_and_group)
{
    node_config_t config;
    char error[CONFIG_ERROR_MAX] = "";
    const char *defaults[] = {"shoald", "--mount", "file:///d/", NULL};
    cr_assert_eq(s_parse(&config, defaults, error, sizeof error), 0, "%s", error);
    cr_assert_null(config.local_socket, "the default is resolved by node_new");
    cr_assert_not(config.local_socket_off);
    cr_assert_null(config.local_group);
    config_fini(&config);
    const char *given[] = {"shoald",      "--mount",       "file:///d/", "--local-socket",
                           "/tmp/s.sock", "--local-group", "users",      NULL};
    cr_assert_eq(s_parse(&config, given, error, sizeof error), 0, "%s", error);
    cr_assert_str_eq(config.local_socket, "/tmp/s.sock");
    cr_assert(config.local_socket_given);
    cr_assert_str_eq(config.local_group, "users");
    node_config_t copy;
    cr_assert_eq(config_copy(&copy, &config), 0);
    cr_assert_str_eq(copy.local_socket, "/tmp/s.sock");
    cr_assert_str_eq(copy.local_group, "users");
    config_fini(&copy);
    config_fini(&config);
    const char *off[] = {"shoald", "--mount", "file:///d/", "--local-socket", "off", NULL};
    cr_assert_eq(s_parse(&config, off, error, sizeof error), 0, "%s", error);
    cr_assert(config.local_socket_off);
    cr_assert_null(config.local_socket);
    config_fini(&config);
    char long_path[200];
    memset(long_path, 'p', sizeof long_path - 1);
    long_path[0] = '/';
    long_path[sizeof long_path - 1] = '\0';
    const char *too_long[] = {"shoald", "--mount", "file:///d/", "--local-socket", long_path, NULL};
    cr_assert_eq(s_parse(&config, too_long, error, sizeof error), SHOAL_EINVAL);
    cr_assert(strstr(error, "107 bytes"), "%s", error);
    config_fini(&config);
}
