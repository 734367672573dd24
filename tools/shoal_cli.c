/*
 * shoal_cli.c - the `shoal` command: look at a cluster (members, stats), read through it (ls,
 * stat, cat), warm and evict data, and make a cluster key. A thin layer over libshoal's public
 * API: everything it does, a program can do with shoal.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "clock.h"
#include "coding.h"
#include "hostid.h"
#include "shoal.h"
#include "units.h"
#include "vec.h"

#define CLI_EXIT_FAILED 1          /* the command ran and something failed */
#define CLI_EXIT_USAGE  2          /* bad command line */
#define CLI_CHUNK       (8u << 20) /* cat reads this much per call */

static const char s_usage[] =
    "usage: shoal [--seeds HOST:PORT,...] [--timeout TIME] COMMAND [ARGS]\n"
    "\n"
    "Talks to a shoal cluster through any of its nodes (the seeds: --seeds, else $SHOAL_SEEDS,\n"
    "else 127.0.0.1:7070).\n"
    "\n"
    "commands:\n"
    "  members                     the membership view: name, state, incarnation, address,\n"
    "                              weight, last heard, host id (* = this host), local\n"
    "                              socket  [--json]\n"
    "  stats [--json]              per node: hits, misses, hit ratio, bytes served, UFS bytes,\n"
    "                              used/capacity; --json prints the whole document\n"
    "  ls URI [-r]                 list a directory or prefix (-r: every file below it)\n"
    "  stat URI                    size, mtime, version of a file\n"
    "  cat URI [--offset SIZE] [--length SIZE]\n"
    "                              write a file (or a part) to stdout through the cache\n"
    "  warmup URI|--from FILE|- [--jobs N] [--replicas N]\n"
    "                              load a file, every file below a prefix, or the files a list\n"
    "                              names (FILE or stdin, one URI a line) into the cache (N\n"
    "                              files at once, default 32; replicas per range, default 1);\n"
    "                              lists the files that failed and exits 1 if any did\n"
    "  evict URI                   drop the cached pages of a file or of every file below a\n"
    "                              prefix, on every node\n"
    "  keygen -o FILE [--force]    write a new 32-byte random cluster secret (hex) to FILE,\n"
    "                              mode 0600 (refuses to overwrite without --force)\n"
    "\n"
    "global options:\n"
    "  --seeds LIST     comma-separated host:port data endpoints of any nodes\n"
    "  --timeout TIME   per-request timeout before trying another node (default 10s); a bare\n"
    "                   number is milliseconds, else 500ms, 2s, 1.5m, 1h\n"
    "  -h, --help       this text; `shoal COMMAND --help` for one command\n"
    "\n"
    "sizes (--offset, --length) and counts take shoald's size grammar: 4096, 64K, 1.5M, 2GiB\n"
    "(binary units); a fraction needs a unit.\n"
    "\n"
    "exit status: 0 success, 1 failure, 2 bad usage\n";

/* Global settings from the command line. */
typedef struct cli {
    const char *seeds; /* --seeds, $SHOAL_SEEDS or the default */
    int timeout_ms;    /* --timeout; 0 = library default */
} cli_t;

static int s_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "shoal: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'shoal --help'.\n");
    return CLI_EXIT_USAGE;
}

/* Parses a size or count in proto's size grammar (units.h, as shoald takes them: "4096", "64K",
 * "1.5M", "2GiB"). */
static bool s_parse_u64(const char *text, uint64_t *out)
{
    return text && units_parse_size(text, out) == 0;
}

/* Parses --timeout into milliseconds: a bare whole number is milliseconds (as it always was),
 * anything else is proto's duration grammar ("500ms", "2s", "1.5m"). */
static bool s_parse_timeout_ms(const char *text, uint64_t *out)
{
    if (text && *text && strspn(text, "0123456789") == strlen(text))
        return s_parse_u64(text, out);
    int64_t ns = 0;
    if (!text || units_parse_duration(text, &ns) != 0)
        return false;
    *out = (uint64_t)(ns / 1000000);
    return true;
}

/* "1.5 GiB" style (proto's units_format_size); buf holds at least 16 bytes. */
static const char *s_bytes(uint64_t bytes, char *buf, size_t size)
{
    return units_format_size(bytes, buf, size);
}

/* Monotonic seconds. */
static double s_now(void)
{
    return (double)clock_mono_ns() / 1e9;
}

static shoal_client_t *s_connect(const cli_t *cli)
{
    shoal_client_options_t options = {.seeds = cli->seeds, .timeout_ms = cli->timeout_ms};
    shoal_client_t *client = shoal_client_new(&options);
    if (!client)
        fprintf(stderr, "shoal: %s\n", shoal_last_error());
    return client;
}

/* Prints "shoal: CONTEXT: strerror (detail)" for a failed call and returns exit status 1. */
static int s_failed(const char *context, int code)
{
    const char *detail = shoal_last_error();
    if (detail[0])
        fprintf(stderr, "shoal: %s: %s (%s)\n", context, shoal_strerror(code), detail);
    else
        fprintf(stderr, "shoal: %s: %s\n", context, shoal_strerror(code));
    return CLI_EXIT_FAILED;
}

/* Parses the options of one command. `long_options` ends with a zero entry; every command
 * also takes --help. Returns -1 to go on, or an exit status. */
static int s_command_options(int argc, char **argv, const char *short_options,
                             const struct option *long_options, const char *help,
                             int (*on_option)(int option, const char *arg, void *state),
                             void *state)
{
    optind = 0; /* 0, not 1: GNU getopt then fully re-initialises its state */
    opterr = 0;
    int option;
    int index = 0;
    while ((option = getopt_long(argc, argv, short_options, long_options, &index)) != -1) {
        if (option == 'h') {
            fputs(help, stdout);
            return 0;
        }
        if (option == '?' || option == ':') {
            fprintf(stderr, "shoal %s: %s option '%s'\n%s", argv[0],
                    option == ':' ? "missing value for" : "unknown", argv[optind - 1], help);
            return CLI_EXIT_USAGE;
        }
        int rc = on_option(option, optarg, state);
        if (rc >= 0)
            return rc;
    }
    return -1;
}

/* Checks that exactly one URI is left after the options of command `name` and connects.
 * Returns -1 with *client_p set (caller owns: shoal_client_destroy) to go on, or an exit
 * status. */
static int s_uri_command(const cli_t *cli, int argc, const char *name, shoal_client_t **client_p)
{
    if (argc - optind != 1)
        return s_usage_error("%s: expected exactly one URI", name);
    *client_p = s_connect(cli);
    return *client_p ? -1 : CLI_EXIT_FAILED;
}

/* ---- members ---- */

typedef struct json_flag {
    bool json; /* --json */
} json_flag_t;

static int s_on_json(int option, const char *arg, void *state)
{
    (void)arg;
    if (option == 'j')
        ((json_flag_t *)state)->json = true;
    return -1;
}

static const struct option s_json_options[] = {
    {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};

/* Runs command `name`, which takes only --json and asks the cluster for a JSON document with
 * `fetch` (shoal_members, shoal_stats). With --json prints the document as it came. Returns -1
 * with *root_p set to the parsed document (caller owns: json_decref) to go on with a table,
 * or an exit status. */
static int s_json_command(const cli_t *cli, int argc, char **argv, const char *name,
                          const char *help, int (*fetch)(shoal_client_t *client, char **json_out),
                          json_t **root_p)
{
    json_flag_t flags = {0};
    int rc = s_command_options(argc, argv, "+h", s_json_options, help, s_on_json, &flags);
    if (rc >= 0)
        return rc;
    if (optind != argc) {
        char fmt[64];
        snprintf(fmt, sizeof fmt, "%s: unexpected argument '%%s'", name);
        return s_usage_error(fmt, argv[optind]);
    }
    shoal_client_t *client = s_connect(cli);
    if (!client)
        return CLI_EXIT_FAILED;
    char *text = NULL;
    rc = fetch(client, &text);
    shoal_client_destroy(&client);
    if (rc != 0)
        return s_failed(name, rc);
    if (flags.json) {
        printf("%s\n", text);
        shoal_free(text);
        return 0;
    }
    *root_p = json_loads(text, 0, NULL);
    shoal_free(text);
    if (!*root_p) {
        fprintf(stderr, "shoal: %s: unreadable answer\n", name);
        return CLI_EXIT_FAILED;
    }
    return -1;
}

static int s_members(const cli_t *cli, int argc, char **argv)
{
    static const char help[] = "usage: shoal members [--json]\n"
                               "Prints the membership view of the node that answers.\n";
    json_t *root = NULL;
    int rc = s_json_command(cli, argc, argv, "members", help, shoal_members, &root);
    if (rc >= 0)
        return rc;
    printf("view %" JSON_INTEGER_FORMAT ", page size %" JSON_INTEGER_FORMAT
           ", range pages %" JSON_INTEGER_FORMAT "\n",
           json_integer_value(json_object_get(root, "view_version")),
           json_integer_value(json_object_get(root, "page_size")),
           json_integer_value(json_object_get(root, "range_pages")));
    char own_host[HOST_ID_MAX + 1];
    if (host_id_get(own_host, sizeof own_host) < 0)
        own_host[0] = '\0';
    printf("%-20s %-8s %11s %-24s %10s %10s  %-14s %s\n", "NAME", "STATE", "INCARNATION", "ADDRESS",
           "WEIGHT", "LAST HEARD", "HOST", "LOCAL SOCKET");
    size_t index;
    json_t *member;
    json_array_foreach(json_object_get(root, "members"), index, member)
    {
        char weight[32], heard[32];
        s_bytes((uint64_t)json_integer_value(json_object_get(member, "weight")), weight,
                sizeof weight);
        snprintf(heard, sizeof heard, "%.1f s ago",
                 (double)json_integer_value(json_object_get(member, "last_heard_ms")) / 1000);
        const char *name = json_string_value(json_object_get(member, "name"));
        const char *address = json_string_value(json_object_get(member, "data"));
        const char *host_id = json_string_value(json_object_get(member, "host_id"));
        const char *socket_path = json_string_value(json_object_get(member, "local_socket"));
        /* the host id's first 12 bytes (a machine-id is 32), "*" when it is this host's */
        char host[32];
        snprintf(host, sizeof host, "%.12s%s", host_id && *host_id ? host_id : "-",
                 host_id && *host_id && own_host[0] && strcmp(host_id, own_host) == 0 ? "*" : "");
        printf("%-20s %-8s %11" JSON_INTEGER_FORMAT " %-24s %10s %10s  %-14s %s\n",
               name && *name ? name : "-", json_string_value(json_object_get(member, "state")),
               json_integer_value(json_object_get(member, "incarnation")), address ? address : "-",
               weight, heard, host, socket_path && *socket_path ? socket_path : "-");
    }
    json_decref(root);
    return 0;
}

/* ---- stats ---- */

/* First counter of `counters` found among `names` (NULL-terminated), or -1. */
static int64_t s_counter(json_t *counters, const char *const *names)
{
    for (; *names; names++) {
        json_t *value = json_object_get(counters, *names);
        if (json_is_integer(value))
            return (int64_t)json_integer_value(value);
    }
    return -1;
}

static const char *s_counter_text(int64_t value, bool bytes, char *buf, size_t size)
{
    if (value < 0)
        return "-";
    if (bytes)
        return s_bytes((uint64_t)value, buf, size);
    snprintf(buf, size, "%" PRId64, value);
    return buf;
}

static int s_stats(const cli_t *cli, int argc, char **argv)
{
    static const char help[] =
        "usage: shoal stats [--json]\n"
        "Asks every member for its counters. The table shows per node: page hits (over\n"
        "ZeroMQ and short-circuit), misses, hit ratio, bytes served to clients over ZeroMQ,\n"
        "bytes located for short-circuit readers on its host (LOCAL), bytes read from the\n"
        "under storage, and cache use against capacity. --json prints the whole document, with "
        "latency histograms\n"
        "and the counters of this client.\n";
    json_t *root = NULL;
    int rc = s_json_command(cli, argc, argv, "stats", help, shoal_stats, &root);
    if (rc >= 0)
        return rc;
    /* Counter names as node/ reports them (with older spellings as fallbacks). */
    static const char *const hits[] = {"page_hits", "read_hits", "hits", NULL};
    static const char *const misses[] = {"page_misses", "read_misses", "misses", NULL};
    static const char *const served[] = {"bytes_served", "read_bytes", "bytes_sent", NULL};
    static const char *const ufs[] = {"ufs_bytes", "ufs_read_bytes", "ufs_bytes_read", NULL};
    static const char *const used[] = {"store_usage_bytes", "usage_bytes", "used_bytes",
                                       "store_used_bytes", NULL};
    static const char *const capacity[] = {"store_capacity_bytes", "capacity_bytes", NULL};
    static const char *const local_pages[] = {"local_pages", NULL};
    static const char *const local_bytes[] = {"local_bytes", NULL};
    printf("%-20s %10s %10s %6s %12s %12s %12s %25s\n", "NODE", "HITS", "MISSES", "HIT%", "SERVED",
           "LOCAL", "UFS", "USED / CAPACITY");
    size_t index;
    json_t *node;
    int failures = 0;
    json_array_foreach(json_object_get(root, "nodes"), index, node)
    {
        const char *name = json_string_value(json_object_get(node, "name"));
        if (!name || !*name)
            name = json_string_value(json_object_get(node, "data"));
        json_t *error = json_object_get(node, "error");
        if (error) {
            printf("%-20s (%s)\n", name ? name : "-", json_string_value(error));
            failures++;
            continue;
        }
        json_t *counters = json_object_get(node, "counters");
        int64_t hit = s_counter(counters, hits), miss = s_counter(counters, misses);
        int64_t located = s_counter(counters, local_pages);
        if (hit >= 0 && located > 0)
            hit += located; /* a short-circuit read of a page is a hit the node answered */
        char ratio[16] = "-";
        if (hit >= 0 && miss >= 0 && hit + miss > 0)
            snprintf(ratio, sizeof ratio, "%.1f", 100.0 * (double)hit / (double)(hit + miss));
        char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32], b7[32], usage[64];
        snprintf(usage, sizeof usage, "%s / %s",
                 s_counter_text(s_counter(counters, used), true, b5, sizeof b5),
                 s_counter_text(s_counter(counters, capacity), true, b6, sizeof b6));
        printf("%-20s %10s %10s %6s %12s %12s %12s %25s\n", name ? name : "-",
               s_counter_text(hit, false, b1, sizeof b1),
               s_counter_text(miss, false, b2, sizeof b2), ratio,
               s_counter_text(s_counter(counters, served), true, b3, sizeof b3),
               s_counter_text(s_counter(counters, local_bytes), true, b7, sizeof b7),
               s_counter_text(s_counter(counters, ufs), true, b4, sizeof b4), usage);
    }
    json_t *client_counters = json_object_get(root, "client");
    printf("client: %" JSON_INTEGER_FORMAT " requests, %" JSON_INTEGER_FORMAT
           " timeouts, %" JSON_INTEGER_FORMAT " disconnects, %" JSON_INTEGER_FORMAT
           " UFS fallbacks\n",
           json_integer_value(json_object_get(client_counters, "requests")),
           json_integer_value(json_object_get(client_counters, "timeouts")),
           json_integer_value(json_object_get(client_counters, "disconnects")),
           json_integer_value(json_object_get(client_counters, "fallback_ufs")));
    json_decref(root);
    return failures ? CLI_EXIT_FAILED : 0;
}

/* ---- ls, stat ---- */

typedef struct ls_flags {
    bool recursive; /* -r */
} ls_flags_t;

static int s_on_ls(int option, const char *arg, void *state)
{
    (void)arg;
    if (option == 'r')
        ((ls_flags_t *)state)->recursive = true;
    return -1;
}

static void s_time_text(int64_t mtime, char *buf, size_t size)
{
    if (mtime <= 0) {
        snprintf(buf, size, "-");
        return;
    }
    time_t t = (time_t)mtime;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int s_ls(const cli_t *cli, int argc, char **argv)
{
    static const char help[] = "usage: shoal ls URI [-r]\n"
                               "Lists URI one level deep (directories end with /), or every\n"
                               "file below it with -r: size, mtime (UTC), URI.\n";
    static const struct option options[] = {{"recursive", no_argument, NULL, 'r'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    ls_flags_t flags = {0};
    int rc = s_command_options(argc, argv, "rh", options, help, s_on_ls, &flags);
    if (rc >= 0)
        return rc;
    shoal_client_t *client = NULL;
    rc = s_uri_command(cli, argc, "ls", &client);
    if (rc >= 0)
        return rc;
    shoal_listing_t *listing = NULL;
    rc = shoal_list(client, argv[optind], flags.recursive, &listing);
    shoal_client_destroy(&client);
    if (rc != 0)
        return s_failed(argv[optind], rc);
    for (size_t i = 0; i < shoal_listing_count(listing); i++) {
        const shoal_stat_t *stat = shoal_listing_stat(listing, i);
        char when[32];
        s_time_text(stat->mtime, when, sizeof when);
        printf("%12" PRIu64 "  %-20s  %s%s\n", stat->size, when, shoal_listing_uri(listing, i),
               stat->is_dir ? "/" : "");
    }
    shoal_listing_destroy(&listing);
    return 0;
}

static int s_on_nothing(int option, const char *arg, void *state)
{
    (void)option;
    (void)arg;
    (void)state;
    return -1;
}

static const struct option s_help_only[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};

static int s_stat(const cli_t *cli, int argc, char **argv)
{
    static const char help[] = "usage: shoal stat URI\n"
                               "Prints the size, mtime, version and kind of URI.\n";
    int rc = s_command_options(argc, argv, "h", s_help_only, help, s_on_nothing, NULL);
    if (rc >= 0)
        return rc;
    shoal_client_t *client = NULL;
    rc = s_uri_command(cli, argc, "stat", &client);
    if (rc >= 0)
        return rc;
    shoal_stat_t stat;
    rc = shoal_stat(client, argv[optind], &stat);
    shoal_client_destroy(&client);
    if (rc != 0)
        return s_failed(argv[optind], rc);
    char when[32], size[32];
    s_time_text(stat.mtime, when, sizeof when);
    printf("uri:     %s\n", argv[optind]);
    printf("type:    %s\n", stat.is_dir ? "directory" : "file");
    printf("size:    %" PRIu64 " (%s)\n", stat.size, s_bytes(stat.size, size, sizeof size));
    printf("mtime:   %s\n", when);
    printf("version: %s\n", stat.version[0] ? stat.version : "-");
    return 0;
}

/* ---- cat ---- */

typedef struct cat_flags {
    uint64_t offset; /* --offset */
    uint64_t length; /* --length */
    bool has_length; /* --length given */
    const char *bad; /* a value that did not parse */
} cat_flags_t;

static int s_on_cat(int option, const char *arg, void *state)
{
    cat_flags_t *flags = state;
    if (option == 'o' && !s_parse_u64(arg, &flags->offset))
        flags->bad = arg;
    if (option == 'l') {
        flags->has_length = true;
        if (!s_parse_u64(arg, &flags->length))
            flags->bad = arg;
    }
    return -1;
}

/* Writes all of buf to stdout; false on a write error (say, a closed pipe). */
static bool s_write_all(const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t done = write(STDOUT_FILENO, buf, len);
        if (done < 0 && errno == EINTR)
            continue;
        if (done <= 0)
            return false;
        buf += done;
        len -= (size_t)done;
    }
    return true;
}

static int s_cat(const cli_t *cli, int argc, char **argv)
{
    static const char help[] =
        "usage: shoal cat URI [--offset SIZE] [--length SIZE]\n"
        "Writes URI (or LENGTH bytes from OFFSET; K/M/G suffixes allowed) to stdout, read\n"
        "through the cache, binary safe.\n";
    static const struct option options[] = {{"offset", required_argument, NULL, 'o'},
                                            {"length", required_argument, NULL, 'l'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    cat_flags_t flags = {0};
    int rc = s_command_options(argc, argv, "h", options, help, s_on_cat, &flags);
    if (rc >= 0)
        return rc;
    if (flags.bad)
        return s_usage_error("cat: '%s' is not a size (a byte count like 4096, 64K, 1.5M, 2GiB)",
                             flags.bad);
    shoal_client_t *client = NULL;
    rc = s_uri_command(cli, argc, "cat", &client);
    if (rc >= 0)
        return rc;
    const char *uri = argv[optind];
    uint8_t *buf = malloc(CLI_CHUNK);
    if (!buf) {
        shoal_client_destroy(&client);
        fprintf(stderr, "shoal: out of memory\n");
        return CLI_EXIT_FAILED;
    }
    uint64_t offset = flags.offset;
    uint64_t left = flags.has_length ? flags.length : UINT64_MAX;
    int status = 0;
    while (left > 0) {
        size_t want = left < CLI_CHUNK ? (size_t)left : CLI_CHUNK;
        int64_t got = shoal_pread(client, uri, buf, want, offset);
        if (got < 0) {
            status = s_failed(uri, (int)got);
            break;
        }
        if (got == 0)
            break;
        if (!s_write_all(buf, (size_t)got)) {
            fprintf(stderr, "shoal: cat: write to stdout: %s\n", strerror(errno));
            status = CLI_EXIT_FAILED;
            break;
        }
        offset += (uint64_t)got;
        left -= (uint64_t)got;
        if ((size_t)got < want)
            break;
    }
    free(buf);
    shoal_client_destroy(&client);
    return status;
}

/* ---- warmup ---- */

/* Files in flight by default. Each worker has one file in flight (its LOADs, at the file's
 * owners), so this is the warm-up's concurrency at the origin: at 20 ms a request,
 * 32 keep about 1,600 requests/s going, which fills the UFS fetchers of two default nodes
 * (--fetch-threads 16) and, on one node, keeps every fetcher busy with the next file queued
 * behind it; it stays far below what an object store serves one client (S3: 5,500 GETs/s per
 * prefix) and what a keep-alive HTTP server takes without queueing. More helps larger
 * clusters: --jobs. */
#define WARM_JOBS_DEFAULT 32
#define WARM_JOBS_MAX     1024
#define WARM_SIZE_UNKNOWN UINT64_MAX /* a list's file: its bytes are what its load brought in */

typedef struct warm_flags {
    uint64_t jobs;            /* --jobs (or --parallel, its older name) */
    uint64_t replicas;        /* --replicas */
    const char *from;         /* --from FILE ("-": stdin), or NULL */
    const char *bad_jobs;     /* a --jobs value that did not parse, or NULL */
    const char *bad_replicas; /* a --replicas value that did not parse, or NULL */
} warm_flags_t;

static int s_on_warm(int option, const char *arg, void *state)
{
    warm_flags_t *flags = state;
    if (option == 'j' &&
        (!s_parse_u64(arg, &flags->jobs) || flags->jobs == 0 || flags->jobs > WARM_JOBS_MAX))
        flags->bad_jobs = arg;
    if (option == 'r' &&
        (!s_parse_u64(arg, &flags->replicas) || flags->replicas == 0 || flags->replicas > 16))
        flags->bad_replicas = arg;
    if (option == 'f')
        flags->from = arg;
    return -1;
}

/* One file to warm. */
typedef struct warm_file {
    char *uri;     /* as listed or as written in the list; owned */
    uint64_t size; /* from the listing, or WARM_SIZE_UNKNOWN until its worker stats it */
    int result;    /* 0 or a negative code, set by the worker (or at parse for a bad line) */
    char *error;   /* detail of a failure, or NULL; owned */
    bool bad_line; /* never loaded: its line in the list is not a URI (error says which) */
} warm_file_t;

/* The shared state of a warmup: workers take files by index, each writing only its own
 * files' result, error and size; the counters are the only fields written by several. */
typedef struct warm {
    shoal_client_t *client; /* shared by the workers (libshoal is thread safe) */
    int replicas;           /* per range */
    VEC(warm_file_t) files; /* the files (items owned, and each uri and error) */
    bool sizes_known;       /* every size came from a listing (the progress bar shows bytes) */
    uint64_t total_bytes;   /* bytes of all files when sizes_known */
    _Atomic size_t next;    /* next file to take */
    _Atomic size_t done;    /* files finished */
    _Atomic uint64_t bytes; /* bytes of finished files */
} warm_t;

/* Records a failure of `file`: the code and "strerror: detail" (detail from the last error
 * of this thread, or `detail` when not NULL). */
static void s_warm_fail(warm_file_t *file, int rc, const char *detail)
{
    if (!detail)
        detail = shoal_last_error();
    const char *text = shoal_strerror(rc);
    size_t len = strlen(text) + strlen(detail) + 4;
    file->result = rc;
    file->error = malloc(len);
    if (file->error)
        snprintf(file->error, len, "%s%s%s", text, detail[0] ? ": " : "", detail);
}

/* Warms one file: the LOADs of all its ranges, in flight together at their owners. A file
 * named by a list (size unknown) is not stat'ed first: shoal_load sends range 0 without a
 * version, its owner's cold GET learns the stat (one origin request for a small file), and
 * the file's bytes are then what that load brought in (the progress bar counts files). */
static void s_warm_one(warm_t *warm, warm_file_t *file)
{
    uint64_t loaded = 0;
    int rc = shoal_load(warm->client, file->uri, warm->replicas, &loaded);
    if (rc != 0)
        s_warm_fail(file, rc, rc == SHOAL_EISDIR ? "a directory, not a file" : NULL);
    else if (file->size == WARM_SIZE_UNKNOWN)
        file->size = loaded;
}

static void *s_warm_worker(void *arg)
{
    warm_t *warm = arg;
    for (;;) {
        size_t index = atomic_fetch_add(&warm->next, 1);
        if (index >= warm->files.len)
            return NULL;
        warm_file_t *file = &warm->files.items[index];
        if (!file->bad_line)
            s_warm_one(warm, file);
        if (file->result == 0)
            atomic_fetch_add(&warm->bytes, file->size);
        atomic_fetch_add(&warm->done, 1);
    }
}

/* One line of progress on a terminal: files, bytes, rate and ETA, redrawn in place. With
 * sizes from a listing the bar and ETA go by bytes, else (names from a list) by files. */
static void s_warm_progress(const warm_t *warm, double started, bool final)
{
    size_t done = atomic_load(&warm->done);
    uint64_t bytes = atomic_load(&warm->bytes);
    double elapsed = s_now() - started;
    double rate = elapsed > 0 ? (double)bytes / elapsed : 0;
    double fraction = warm->files.len ? (double)done / (double)warm->files.len : 1;
    if (warm->sizes_known && warm->total_bytes)
        fraction = (double)bytes / (double)warm->total_bytes;
    char bar[31];
    int filled = (int)(fraction * 30);
    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[30] = '\0';
    char have[32], total[32] = "?", speed[32], eta[32] = "--:--";
    if (warm->sizes_known)
        s_bytes(warm->total_bytes, total, sizeof total);
    if (fraction > 0 && fraction < 1 && elapsed > 0) {
        long seconds = (long)(elapsed * (1 - fraction) / fraction);
        snprintf(eta, sizeof eta, "%ld:%02ld", seconds / 60, seconds % 60);
    }
    fprintf(stderr, "\r[%s] %zu/%zu files  %s/%s  %s/s  ETA %s   ", bar, done, warm->files.len,
            s_bytes(bytes, have, sizeof have), total, s_bytes((uint64_t)rate, speed, sizeof speed),
            eta);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

/* Adds one file to the warm list (a copy of `uri`). */
static int s_warm_push(warm_t *warm, const char *uri, uint64_t size)
{
    char *copy = strdup(uri);
    if (!copy || vec_push(&warm->files, ((warm_file_t){.uri = copy, .size = size})) < 0) {
        free(copy);
        return SHOAL_ENOMEM;
    }
    if (size == WARM_SIZE_UNKNOWN)
        warm->sizes_known = false;
    return 0;
}

/* Collects the files to warm: URI itself when it is a file, else every file below it (a
 * directory, or a prefix that stat does not know). A URI that is neither is kept as one file,
 * so that it shows in the failure list with the error its load gets. */
static int s_warm_collect(shoal_client_t *client, const char *uri, warm_t *warm)
{
    shoal_stat_t stat;
    int rc = shoal_stat(client, uri, &stat);
    if (rc == 0 && !stat.is_dir)
        return s_warm_push(warm, uri, stat.size);
    if (rc != 0 && rc != SHOAL_ENOENT)
        return rc;
    shoal_listing_t *listing = NULL;
    int list_rc = shoal_list(client, uri, true, &listing);
    if (list_rc != 0 && list_rc != SHOAL_ENOENT)
        return list_rc;
    for (size_t i = 0; list_rc == 0 && i < shoal_listing_count(listing); i++) {
        const shoal_stat_t *entry = shoal_listing_stat(listing, i);
        if (!entry->is_dir && s_warm_push(warm, shoal_listing_uri(listing, i), entry->size) != 0)
            list_rc = SHOAL_ENOMEM;
    }
    shoal_listing_destroy(&listing);
    if (list_rc == SHOAL_ENOMEM)
        return list_rc;
    if (warm->files.len == 0 && rc == SHOAL_ENOENT)
        return s_warm_push(warm, uri, 0); /* missing: fails in the load, listed at the end */
    return 0;
}

/* Whether `text` looks like a URI: a scheme ([A-Za-z][A-Za-z0-9+.-]*), "://", at least one
 * more byte, and no control characters. What the scheme and path may be is libshoal's to
 * say (its normaliser refuses the rest, reported per file). */
static bool s_looks_like_uri(const char *text)
{
    size_t scheme = 0;
    if (!((text[0] >= 'a' && text[0] <= 'z') || (text[0] >= 'A' && text[0] <= 'Z')))
        return false;
    while (text[scheme] && strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789+.-",
                                  text[scheme]))
        scheme++;
    if (strncmp(text + scheme, "://", 3) != 0 || !text[scheme + 3])
        return false;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* Reads a list of files, one URI a line, from `path` ("-": stdin). Blank lines and lines whose
 * first non-blank is '#' are skipped; blanks around a URI are trimmed. A line that is not a
 * URI becomes a failed entry "NAME:LINE: not a URI" (never loaded), so that it shows in the
 * failure list with its line number. Returns 0, or -1 after printing why the list could not
 * be read (exit status 1). */
static int s_warm_read_list(const char *path, warm_t *warm)
{
    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "stdin" : path;
    FILE *in = is_stdin ? stdin : fopen(path, "r");
    if (!in) {
        fprintf(stderr, "shoal: warmup: cannot read the list %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t capacity = 0;
    ssize_t got;
    size_t number = 0;
    int rc = 0;
    while (rc == 0 && (got = getline(&line, &capacity, in)) >= 0) {
        number++;
        char *start = line;
        char *end = line + got;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start &&
               (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
            end--;
        *end = '\0';
        if (start == end || *start == '#')
            continue;
        if (strlen(start) != (size_t)(end - start) || !s_looks_like_uri(start)) {
            /* a NUL inside the line, or not scheme://...: listed as failed, by line number */
            rc = s_warm_push(warm, start, 0);
            if (rc == 0) {
                warm_file_t *file = &vec_last(&warm->files);
                char detail[128];
                snprintf(detail, sizeof detail, "%s:%zu: not a URI (scheme://path)", name, number);
                file->bad_line = true;
                file->result = SHOAL_EINVAL;
                file->error = strdup(detail);
            }
            continue;
        }
        rc = s_warm_push(warm, start, WARM_SIZE_UNKNOWN);
    }
    bool read_failed = ferror(in);
    free(line);
    if (!is_stdin)
        fclose(in);
    if (rc != 0 || read_failed) {
        fprintf(stderr, "shoal: warmup: reading the list %s: %s\n", name,
                rc != 0 ? shoal_strerror(rc) : strerror(errno));
        return -1;
    }
    return 0;
}

/* Runs the workers over warm->files and returns the seconds it took. With a terminal on
 * stderr, redraws the progress line five times a second meanwhile. */
static double s_warm_run(warm_t *warm, size_t jobs)
{
    size_t workers = jobs < warm->files.len ? jobs : warm->files.len;
    pthread_t *threads = calloc(workers + 1, sizeof *threads);
    double started = s_now();
    size_t started_workers = 0;
    for (; threads && started_workers < workers; started_workers++)
        if (pthread_create(&threads[started_workers], NULL, s_warm_worker, warm) != 0)
            break;
    if (started_workers == 0 && warm->files.len > 0)
        s_warm_worker(warm); /* no thread could start: do it here, one file at a time */
    bool tty = isatty(STDERR_FILENO);
    while (tty && atomic_load(&warm->done) < warm->files.len) {
        s_warm_progress(warm, started, false);
        usleep(200000); /* a redraw period, not a synchronisation: the joins below wait */
    }
    for (size_t i = 0; i < started_workers; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    double elapsed = s_now() - started;
    if (tty)
        s_warm_progress(warm, started, true);
    return elapsed;
}

static int s_warmup(const cli_t *cli, int argc, char **argv)
{
    static const char help[] =
        "usage: shoal warmup URI [--jobs N] [--replicas N]\n"
        "       shoal warmup --from FILE [--jobs N] [--replicas N]   (FILE '-': stdin)\n"
        "       shoal warmup - [--jobs N] [--replicas N]             (the list on stdin)\n"
        "Loads URI (a file) or every file below URI (a directory or prefix that the store\n"
        "can list) into the cache; or the files a list names: one URI a line, blank lines and\n"
        "'#' comments skipped (plain HTTP has no listing: name its files this way).\n"
        "--jobs N: N files at once (default 32); --parallel N is its older name. Each file's\n"
        "ranges are loaded by their own owners, each on its top `replicas` owners (default 1).\n"
        "Shows a progress bar on a terminal, a summary line otherwise, then the files that\n"
        "failed with their error (a missing file: 'not found'; a line of the list that is not\n"
        "a URI: its line number); exits 1 if any did.\n";
    static const struct option options[] = {
        {"jobs", required_argument, NULL, 'j'},     {"parallel", required_argument, NULL, 'j'},
        {"replicas", required_argument, NULL, 'r'}, {"from", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    warm_flags_t flags = {.jobs = WARM_JOBS_DEFAULT, .replicas = 1};
    int rc = s_command_options(argc, argv, "hj:", options, help, s_on_warm, &flags);
    if (rc >= 0)
        return rc;
    if (flags.bad_jobs)
        return s_usage_error("warmup: --jobs '%s' is not a count from 1 to 1024", flags.bad_jobs);
    if (flags.bad_replicas)
        return s_usage_error("warmup: --replicas '%s' is not a count from 1 to 16",
                             flags.bad_replicas);
    const char *list = flags.from;
    if (!list && argc - optind == 1 && strcmp(argv[optind], "-") == 0)
        list = "-";
    else if (list && argc != optind)
        return s_usage_error("warmup: --from takes the place of a URI ('%s' is one too many)",
                             argv[optind]);
    warm_t warm = {.replicas = (int)flags.replicas, .sizes_known = true};
    int status = 0;
    if (list && s_warm_read_list(list, &warm) != 0) {
        status = CLI_EXIT_FAILED;
        goto out;
    }
    if (list) {
        warm.client = s_connect(cli);
        if (!warm.client) {
            status = CLI_EXIT_FAILED;
            goto out;
        }
    } else {
        rc = s_uri_command(cli, argc, "warmup", &warm.client);
        if (rc >= 0)
            return rc;
        rc = s_warm_collect(warm.client, argv[optind], &warm);
        if (rc != 0) {
            status = s_failed(argv[optind], rc);
            goto out;
        }
    }
    for (size_t i = 0; warm.sizes_known && i < warm.files.len; i++)
        warm.total_bytes += warm.files.items[i].size;
    double elapsed = s_warm_run(&warm, (size_t)flags.jobs);
    size_t failed = 0;
    uint64_t warmed = atomic_load(&warm.bytes);
    for (size_t i = 0; i < warm.files.len; i++)
        failed += warm.files.items[i].result != 0;
    char bytes[32], rate[32];
    printf("warmup: %zu files, %s in %.1f s (%s/s), %zu failed\n", warm.files.len,
           s_bytes(warmed, bytes, sizeof bytes), elapsed,
           s_bytes(elapsed > 0 ? (uint64_t)((double)warmed / elapsed) : 0, rate, sizeof rate),
           failed);
    if (failed) {
        printf("failed:\n");
        for (size_t i = 0; i < warm.files.len; i++) {
            const warm_file_t *file = &warm.files.items[i];
            if (file->result == 0)
                continue;
            const char *error = file->error ? file->error : shoal_strerror(file->result);
            if (file->bad_line) /* "NAME:LINE: not a URI (scheme://path): 'text'" */
                printf("  %s: '%s'\n", file->error ? file->error : "a bad line", file->uri);
            else
                printf("  %s: %s\n", file->uri, error);
        }
        status = CLI_EXIT_FAILED;
    }
out:
    for (size_t i = 0; i < warm.files.len; i++) {
        free(warm.files.items[i].uri);
        free(warm.files.items[i].error);
    }
    vec_fini(&warm.files);
    shoal_client_destroy(&warm.client);
    return status;
}

/* ---- evict ---- */

static int s_evict(const cli_t *cli, int argc, char **argv)
{
    static const char help[] = "usage: shoal evict URI\n"
                               "Drops the cached pages of URI (a file, or every file below a\n"
                               "directory or prefix) on every node.\n";
    int rc = s_command_options(argc, argv, "h", s_help_only, help, s_on_nothing, NULL);
    if (rc >= 0)
        return rc;
    shoal_client_t *client = NULL;
    rc = s_uri_command(cli, argc, "evict", &client);
    if (rc >= 0)
        return rc;
    const char *uri = argv[optind];
    shoal_stat_t stat;
    bool recursive = shoal_stat(client, uri, &stat) != 0 || stat.is_dir;
    uint64_t evicted = 0;
    rc = shoal_evict(client, uri, recursive, &evicted);
    shoal_client_destroy(&client);
    if (rc != 0)
        return s_failed(uri, rc);
    char bytes[32];
    printf("evicted %s from the cache (%s)\n", s_bytes(evicted, bytes, sizeof bytes), uri);
    return 0;
}

/* ---- keygen ---- */

typedef struct keygen_flags {
    const char *output; /* -o FILE */
    bool force;         /* --force */
} keygen_flags_t;

static int s_on_keygen(int option, const char *arg, void *state)
{
    keygen_flags_t *flags = state;
    if (option == 'o')
        flags->output = arg;
    if (option == 'f')
        flags->force = true;
    return -1;
}

/* Writes 32 random bytes as 64 hex digits and a newline to a new file of mode 0600 (created
 * with that mode, so it is never readable by others, not even briefly). */
static int s_keygen(int argc, char **argv)
{
    static const char help[] =
        "usage: shoal keygen -o FILE [--force]\n"
        "Writes a new cluster secret (32 random bytes as hex) to FILE with mode 0600. Give\n"
        "the same file to every node (--cluster-key) and client. Refuses to replace an\n"
        "existing file unless --force.\n";
    static const struct option options[] = {{"output", required_argument, NULL, 'o'},
                                            {"force", no_argument, NULL, 'f'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    keygen_flags_t flags = {0};
    int rc = s_command_options(argc, argv, "o:fh", options, help, s_on_keygen, &flags);
    if (rc >= 0)
        return rc;
    if (!flags.output)
        return s_usage_error("%s", "keygen: -o FILE is required");
    if (optind != argc)
        return s_usage_error("keygen: unexpected argument '%s'", argv[optind]);
    if (sodium_init() < 0) {
        fprintf(stderr, "shoal: keygen: libsodium failed to initialise\n");
        return CLI_EXIT_FAILED;
    }
    uint8_t secret[32];
    char hex[2 * sizeof secret + 2];
    randombytes_buf(secret, sizeof secret);
    hex_encode(secret, sizeof secret, hex, sizeof hex, false); /* fits: cannot fail */
    sodium_memzero(secret, sizeof secret);
    size_t len = strlen(hex);
    hex[len++] = '\n';
    if (flags.force)
        unlink(flags.output);
    int fd = open(flags.output, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "shoal: keygen: %s: %s%s\n", flags.output, strerror(errno),
                errno == EEXIST ? " (use --force to replace it)" : "");
        return CLI_EXIT_FAILED;
    }
    bool ok = fchmod(fd, 0600) == 0 && write(fd, hex, len) == (ssize_t)len && fsync(fd) == 0;
    sodium_memzero(hex, sizeof hex);
    if (close(fd) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "shoal: keygen: writing %s: %s\n", flags.output, strerror(errno));
        unlink(flags.output);
        return CLI_EXIT_FAILED;
    }
    printf("wrote a new cluster key to %s (mode 0600)\n", flags.output);
    return 0;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    cli_t cli = {.seeds = getenv("SHOAL_SEEDS")};
    if (!cli.seeds || !*cli.seeds)
        cli.seeds = "127.0.0.1:7070";
    static const struct option options[] = {{"seeds", required_argument, NULL, 's'},
                                            {"timeout", required_argument, NULL, 't'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    opterr = 0;
    int option;
    while ((option = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
        switch (option) {
        case 's':
            cli.seeds = optarg;
            break;
        case 't': {
            uint64_t timeout = 0;
            if (!s_parse_timeout_ms(optarg, &timeout) || timeout == 0 || timeout > 3600000)
                return s_usage_error("--timeout: '%s' is not a time from 1ms to 1h (a bare number "
                                     "is milliseconds: 5000, 500ms, 2s, 1m)",
                                     optarg);
            cli.timeout_ms = (int)timeout;
            break;
        }
        case 'h':
            fputs(s_usage, stdout);
            return 0;
        default:
            return s_usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return s_usage_error("%s", "no command given");
    const char *command = argv[optind];
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    if (strcmp(command, "members") == 0)
        return s_members(&cli, sub_argc, sub_argv);
    if (strcmp(command, "stats") == 0)
        return s_stats(&cli, sub_argc, sub_argv);
    if (strcmp(command, "ls") == 0)
        return s_ls(&cli, sub_argc, sub_argv);
    if (strcmp(command, "stat") == 0)
        return s_stat(&cli, sub_argc, sub_argv);
    if (strcmp(command, "cat") == 0)
        return s_cat(&cli, sub_argc, sub_argv);
    if (strcmp(command, "warmup") == 0)
        return s_warmup(&cli, sub_argc, sub_argv);
    if (strcmp(command, "evict") == 0)
        return s_evict(&cli, sub_argc, sub_argv);
    if (strcmp(command, "keygen") == 0)
        return s_keygen(sub_argc, sub_argv);
    if (strcmp(command, "help") == 0) {
        fputs(s_usage, stdout);
        return 0;
    }
    return s_usage_error("unknown command '%s'", command);
}
