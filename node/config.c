/*
 * config.c - defaults, config file, flags, validation and --help for shoald (see config.h).
 * Every refusal names the flag (or file:line) and the value, so a typo is found at once.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "swim.h" /* swim_opts_default only: the gossip flags default to the core's values */
#include "units.h"

#define CONFIG_DEFAULT_LISTEN  "tcp://127.0.0.1:7070"
#define CONFIG_DEFAULT_GOSSIP  "tcp://127.0.0.1:7071"
#define CONFIG_LINE_MAX        8192
#define CONFIG_RANGE_BYTES_MAX (256u << 20) /* one UFS read buffer: page_size * range_pages */

/* How a flag takes its value. */
typedef enum s_kind {
    S_STRING,   /* free text */
    S_SIZE,     /* units_parse_size */
    S_DURATION, /* units_parse_duration */
    S_UINT,     /* decimal count */
    S_DOUBLE,   /* decimal number > 0 */
    S_BOOL,     /* no value on the command line; true/false in the file */
    S_ENDPOINT, /* config_parse_endpoint */
    S_LEVEL,    /* log level */
    S_MOUNT,    /* repeatable string */
    S_STORE,    /* rocksdb | memory */
    S_CONFIG,   /* --config FILE (command line only) */
    S_HELP,     /* --help */
} s_kind_t;

typedef struct s_flag {
    const char *name; /* without the leading "--" */
    s_kind_t kind;    /* value syntax */
    const char *arg;  /* value placeholder in --help */
    const char *help; /* one line (or more, with \n + indent) for --help */
} s_flag_t;

static const s_flag_t s_flags[] = {
    {"config", S_CONFIG, "FILE",
     "read settings from FILE: lines `name = value` with the flag names below\n"
     "                       (`#` starts a comment); flags on the command line override it"},
    {"name", S_STRING, "NAME", "human name of this node in the view [host name]"},
    {"data-dir", S_STRING, "DIR", "cache directory (RocksDB), created if missing [~/.cache/shoal]"},
    {"capacity", S_SIZE, "SIZE", "cache quota: bytes, or with K/M/G/T (binary): 10G, 512M [10G]"},
    {"listen", S_ENDPOINT, "ENDPOINT",
     "data endpoint: tcp://HOST:PORT or HOST:PORT [tcp://127.0.0.1:7070];\n"
     "                       non-loopback hosts need --insecure (see --cluster-key)"},
    {"gossip", S_ENDPOINT, "ENDPOINT",
     "gossip (membership) endpoint this node binds and advertises [listen port + 1]"},
    {"seeds", S_STRING, "LIST",
     "gossip endpoints of other nodes to join through, host:port,host:port\n"
     "                       [none: start a cluster; others join through this one]"},
    {"probe-interval", S_DURATION, "DURATION", "gossip: one failure probe per interval [1s]"},
    {"probe-timeout", S_DURATION, "DURATION",
     "gossip: direct ack deadline before indirect probes [500ms]"},
    {"indirect-checks", S_UINT, "N", "gossip: members asked to probe a silent one [3]"},
    {"suspicion-mult", S_DOUBLE, "X",
     "gossip: suspicion timeout = X * log10(N) * probe interval, at least 1.5 s [0.5]"},
    {"retransmit-mult", S_UINT, "N", "gossip: each update is sent N * log10(N+1) times [4]"},
    {"push-pull-interval", S_DURATION, "DURATION", "gossip: full state exchange period [30s]"},
    {"dead-forget", S_DURATION, "DURATION",
     "gossip: dead and left members are forgotten after this [30s]"},
    {"flush-interval", S_DURATION, "DURATION",
     "write newly cached pages to disk this often (pages are stored without a\n"
     "                       write-ahead log: a crash loses at most this much); 0 never [10s]"},
    {"forward-timeout", S_DURATION, "DURATION",
     "how long a non-owner waits for the owner of a range before reading\n"
     "                       the under storage itself [2s]"},
    {"mount", S_MOUNT, "URI",
     "URI prefix this node serves (repeatable; at least one): s3://bucket/data/,\n"
     "                       file:///srv/data/, http://host:port/path/. Nothing else is read"},
    {"cluster-key", S_STRING, "FILE",
     "cluster key file (shoal keygen). Accepted; CurveZMQ is not wired yet, so\n"
     "                       a non-loopback --listen still needs --insecure"},
    {"insecure", S_BOOL, NULL, "allow a non-loopback --listen without encryption"},
    {"metadata-ttl", S_DURATION, "DURATION",
     "how long STAT/LIST answers are cached: seconds (0.5), or 500ms, 2m [60]"},
    {"negative-ttl", S_DURATION, "DURATION",
     "how long a \"not found\" from the under storage is remembered; 0 = not at all [5]"},
    {"immutable-mount", S_MOUNT, "URI",
     "a --mount whose files never change in place: its metadata is never\n"
     "                       revalidated after --metadata-ttl (repeatable)"},
    {"threads", S_UINT, "N", "hit workers: answer cached reads and metadata [4]"},
    {"fetch-threads", S_UINT, "N", "fetchers: under-storage reads, stats and listings [32]"},
    {"page-size", S_SIZE, "SIZE", "page size, same on every node: 4K .. 64M [1M]"},
    {"range-pages", S_UINT, "N", "pages per range, the unit of one UFS read: 1 .. 65536 [4]"},
    {"local-socket", S_STRING, "PATH",
     "UNIX socket for short-circuit local reads by clients on this host, or off\n"
     "                       [<data-dir>/shoal.sock; /run/shoal/<name>.sock when that is over\n"
     "                       107 bytes; off with --store memory]; mode 0660"},
    {"local-group", S_STRING, "NAME|GID",
     "group whose members (and root, and the node's user) may use --local-socket\n"
     "                       [the node's primary group]"},
    {"log-level", S_LEVEL, "LEVEL", "error, warn, info or debug [info]"},
    {"store", S_STORE, "KIND", "rocksdb, or memory (nothing on disk; for tests) [rocksdb]"},
    {"help", S_HELP, NULL, "print this help and exit"},
};

#define S_FLAG_COUNT (sizeof s_flags / sizeof s_flags[0])

static int s_error(char *error, size_t error_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_error(char *error, size_t error_len, const char *fmt, ...)
{
    if (error && error_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(error, error_len, fmt, ap);
        va_end(ap);
    }
    return SHOAL_EINVAL;
}

/* Fills the gossip settings of `config` with the SWIM core's own defaults (one source for them). */
static void s_gossip_defaults(node_config_t *config)
{
    swim_opts_t swim;
    swim_opts_default(&swim);
    config->probe_interval_ms = swim.probe_interval_ms;
    config->probe_timeout_ms = swim.probe_timeout_ms;
    config->indirect_checks = swim.indirect_checks;
    config->suspicion_mult = swim.suspicion_mult;
    config->retransmit_mult = swim.retransmit_mult;
    config->push_pull_interval_ms = swim.push_pull_interval_ms;
    config->dead_forget_ms = swim.dead_forget_ms;
}

static int s_set_string(char **slot, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return SHOAL_ENOMEM;
    free(*slot);
    *slot = copy;
    return 0;
}

int config_init(node_config_t *config)
{
    memset(config, 0, sizeof *config);
    char host[256] = "shoald";
    if (gethostname(host, sizeof host - 1) != 0)
        strcpy(host, "shoald");
    host[sizeof host - 1] = '\0';
    const char *home = getenv("HOME");
    char dir[4096];
    const char *cache = getenv("XDG_CACHE_HOME");
    if (cache && cache[0])
        snprintf(dir, sizeof dir, "%s/shoal", cache);
    else
        snprintf(dir, sizeof dir, "%s/.cache/shoal", home && home[0] ? home : ".");
    if (s_set_string(&config->name, host) < 0 || s_set_string(&config->data_dir, dir) < 0 ||
        s_set_string(&config->seeds, "") < 0) {
        config_fini(config);
        return SHOAL_ENOMEM;
    }
    config->capacity_bytes = 10ull << 30;
    snprintf(config->listen, sizeof config->listen, "%s", CONFIG_DEFAULT_LISTEN);
    config->listen_loopback = true;
    config->gossip[0] = '\0';
    config->metadata_ttl_ns = 60ll * 1000000000ll;
    config->negative_ttl_ns = 5ll * 1000000000ll;
    config->threads = 4;
    config->fetch_threads = 32;
    config->page_size = 1u << 20;
    config->range_pages = 4;
    config->log_level = LOG_INFO;
    s_gossip_defaults(config);
    config->forward_timeout_ms = 2000;
    config->flush_interval_ns = 10ll * 1000000000ll;
    return 0;
}

static void s_clear_mounts(node_config_t *config)
{
    for (size_t i = 0; i < config->mounts.len; i++)
        free(config->mounts.items[i]);
    vec_fini(&config->mounts);
    for (size_t i = 0; i < config->immutable_mounts.len; i++)
        free(config->immutable_mounts.items[i]);
    vec_fini(&config->immutable_mounts);
}

void config_fini(node_config_t *config)
{
    free(config->name);
    free(config->data_dir);
    free(config->seeds);
    free(config->cluster_key);
    free(config->config_path);
    free(config->local_socket);
    free(config->local_group);
    s_clear_mounts(config);
    memset(config, 0, sizeof *config);
}

static int s_copy_string(char **to, const char *from)
{
    *to = NULL;
    return from == NULL || (*to = strdup(from)) != NULL ? 0 : SHOAL_ENOMEM;
}

int config_copy(node_config_t *to, const node_config_t *from)
{
    *to = *from;
    to->name = to->data_dir = to->seeds = to->cluster_key = to->config_path = NULL;
    to->local_socket = to->local_group = NULL;
    vec_init(&to->mounts);
    vec_init(&to->immutable_mounts);
    int rc = s_copy_string(&to->name, from->name);
    if (rc == 0)
        rc = s_copy_string(&to->data_dir, from->data_dir);
    if (rc == 0)
        rc = s_copy_string(&to->seeds, from->seeds);
    if (rc == 0)
        rc = s_copy_string(&to->cluster_key, from->cluster_key);
    if (rc == 0)
        rc = s_copy_string(&to->config_path, from->config_path);
    if (rc == 0)
        rc = s_copy_string(&to->local_socket, from->local_socket);
    if (rc == 0)
        rc = s_copy_string(&to->local_group, from->local_group);
    if (rc == 0)
        rc = vec_reserve(&to->mounts, from->mounts.len);
    for (size_t i = 0; rc == 0 && i < from->mounts.len; i++) {
        rc = s_copy_string(&to->mounts.items[i], from->mounts.items[i]);
        if (rc == 0)
            to->mounts.len++;
    }
    if (rc == 0)
        rc = vec_reserve(&to->immutable_mounts, from->immutable_mounts.len);
    for (size_t i = 0; rc == 0 && i < from->immutable_mounts.len; i++) {
        rc = s_copy_string(&to->immutable_mounts.items[i], from->immutable_mounts.items[i]);
        if (rc == 0)
            to->immutable_mounts.len++;
    }
    if (rc < 0)
        config_fini(to);
    return rc;
}

/*
 * Accepts "tcp://HOST:PORT", "HOST:PORT", "[V6]:PORT" and "*:PORT". The port must be 1..65535;
 * the host is kept as written except "localhost" (ZeroMQ binds interfaces and addresses, not
 * names). Loopback means 127.0.0.0/8, ::1 or localhost.
 */
int config_parse_endpoint(const char *text, char out[CONFIG_ENDPOINT_MAX], bool *loopback)
{
    if (text == NULL)
        return SHOAL_EINVAL;
    if (strncmp(text, "tcp://", 6) == 0)
        text += 6;
    else if (strstr(text, "://") != NULL)
        return SHOAL_EINVAL; /* only tcp */
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text)
        return SHOAL_EINVAL;
    char host[CONFIG_ENDPOINT_MAX];
    size_t host_len = (size_t)(colon - text);
    if (host_len >= sizeof host - 8)
        return SHOAL_EINVAL;
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    if (host[0] == '[') {
        if (host_len < 3 || host[host_len - 1] != ']')
            return SHOAL_EINVAL;
    } else if (strchr(host, ':') != NULL) {
        return SHOAL_EINVAL; /* a v6 address needs brackets */
    }
    for (size_t i = 0; i < host_len; i++) {
        unsigned char c = (unsigned char)host[i];
        if (!(isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']' ||
              c == '*' || c == '%'))
            return SHOAL_EINVAL;
    }
    const char *port_text = colon + 1;
    if (*port_text == '\0' || strlen(port_text) > 5)
        return SHOAL_EINVAL;
    for (const char *p = port_text; *p; p++)
        if (!isdigit((unsigned char)*p))
            return SHOAL_EINVAL;
    long port = strtol(port_text, NULL, 10);
    if (port < 1 || port > 65535)
        return SHOAL_EINVAL;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    bool is_loopback = strncmp(host, "127.", 4) == 0 || strcmp(host, "[::1]") == 0;
    if (loopback)
        *loopback = is_loopback;
    snprintf(out, CONFIG_ENDPOINT_MAX, "tcp://%s:%ld", host, port);
    return 0;
}

static const s_flag_t *s_find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < S_FLAG_COUNT; i++)
        if (strlen(s_flags[i].name) == len && strncmp(s_flags[i].name, name, len) == 0)
            return &s_flags[i];
    return NULL;
}

static int s_parse_uint(const char *text, uint64_t max, uint64_t *out)
{
    if (text == NULL || !isdigit((unsigned char)text[0]))
        return SHOAL_EINVAL;
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || value > max)
        return SHOAL_EINVAL;
    *out = value;
    return 0;
}

/* Applies one setting. `where` names its origin for messages ("--capacity", "FILE:12"). */
static int s_apply(node_config_t *config, const s_flag_t *flag, const char *value,
                   const char *where, char *error, size_t error_len)
{
    uint64_t number = 0;
    int64_t ns = 0;
    bool loopback = false;
    char endpoint[CONFIG_ENDPOINT_MAX];
    const char *name = flag->name;
    switch (flag->kind) {
    case S_STRING: {
        char **slot = strcmp(name, "name") == 0           ? &config->name
                      : strcmp(name, "data-dir") == 0     ? &config->data_dir
                      : strcmp(name, "seeds") == 0        ? &config->seeds
                      : strcmp(name, "local-socket") == 0 ? &config->local_socket
                      : strcmp(name, "local-group") == 0  ? &config->local_group
                                                          : &config->cluster_key;
        if (value[0] == '\0' && slot != &config->seeds)
            return s_error(error, error_len, "%s: empty value for --%s", where, name);
        if (strlen(value) > 4095)
            return s_error(error, error_len, "%s: value for --%s is too long", where, name);
        if (slot == &config->local_socket) {
            config->local_socket_off = strcmp(value, "off") == 0;
            config->local_socket_given = !config->local_socket_off;
            if (config->local_socket_off) {
                free(config->local_socket);
                config->local_socket = NULL;
                return 0;
            }
            if (strlen(value) > 107)
                return s_error(error, error_len,
                               "%s: --local-socket '%s' is longer than 107 bytes (sun_path)", where,
                               value);
        }
        return s_set_string(slot, value);
    }
    case S_SIZE:
        if (units_parse_size(value, &number) < 0)
            return s_error(error, error_len,
                           "%s: bad size '%s' for --%s (use bytes or 10G, 512M, 4K)", where, value,
                           name);
        if (strcmp(name, "capacity") == 0) {
            config->capacity_bytes = number;
        } else {
            if (number < 4096 || number > (64u << 20))
                return s_error(error, error_len, "%s: --page-size '%s' out of range (4K .. 64M)",
                               where, value);
            config->page_size = (uint32_t)number;
        }
        return 0;
    case S_DURATION:
        if (units_parse_duration(value, &ns) < 0)
            return s_error(error, error_len,
                           "%s: bad duration '%s' for --%s (use seconds: 60, 0.5, or 500ms, 2m)",
                           where, value, name);
        if (strcmp(name, "metadata-ttl") == 0) {
            config->metadata_ttl_ns = ns;
            return 0;
        }
        if (strcmp(name, "negative-ttl") == 0) {
            config->negative_ttl_ns = ns;
            return 0;
        }
        if (strcmp(name, "flush-interval") == 0) {
            config->flush_interval_ns = ns;
            return 0;
        }
        if (ns < 1000000 || ns > 86400ll * 1000000000ll)
            return s_error(error, error_len, "%s: --%s '%s' out of range (1ms .. 24h)", where, name,
                           value);
        uint32_t ms = (uint32_t)(ns / 1000000);
        if (strcmp(name, "probe-interval") == 0)
            config->probe_interval_ms = ms;
        else if (strcmp(name, "probe-timeout") == 0)
            config->probe_timeout_ms = ms;
        else if (strcmp(name, "push-pull-interval") == 0)
            config->push_pull_interval_ms = ms;
        else if (strcmp(name, "dead-forget") == 0)
            config->dead_forget_ms = ms;
        else
            config->forward_timeout_ms = ms;
        return 0;
    case S_DOUBLE: {
        char *end = NULL;
        errno = 0;
        double x = strtod(value, &end);
        if (errno != 0 || end == value || *end != '\0' || !isfinite(x) || x <= 0 || x > 100)
            return s_error(error, error_len, "%s: bad value '%s' for --%s (a number > 0, <= 100)",
                           where, value, name);
        config->suspicion_mult = x;
        return 0;
    }
    case S_UINT: {
        uint64_t max = strcmp(name, "range-pages") == 0 ? 65536 : 1024;
        bool zero_ok = strcmp(name, "indirect-checks") == 0;
        if (s_parse_uint(value, max, &number) < 0 || (number == 0 && !zero_ok))
            return s_error(error, error_len, "%s: bad value '%s' for --%s (a number 1 .. %llu)",
                           where, value, name, (unsigned long long)max);
        if (strcmp(name, "threads") == 0)
            config->threads = (uint32_t)number;
        else if (strcmp(name, "fetch-threads") == 0)
            config->fetch_threads = (uint32_t)number;
        else if (strcmp(name, "indirect-checks") == 0)
            config->indirect_checks = (uint32_t)number;
        else if (strcmp(name, "retransmit-mult") == 0)
            config->retransmit_mult = (uint32_t)number;
        else
            config->range_pages = (uint32_t)number;
        return 0;
    }
    case S_BOOL:
        if (value == NULL || strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 ||
            strcmp(value, "1") == 0)
            config->insecure = true;
        else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 || strcmp(value, "0") == 0)
            config->insecure = false;
        else
            return s_error(error, error_len, "%s: bad value '%s' for --%s (true or false)", where,
                           value, name);
        return 0;
    case S_ENDPOINT:
        if (config_parse_endpoint(value, endpoint, &loopback) < 0)
            return s_error(error, error_len,
                           "%s: bad endpoint '%s' for --%s (use tcp://HOST:PORT or HOST:PORT)",
                           where, value, name);
        if (strcmp(name, "listen") == 0) {
            memcpy(config->listen, endpoint, sizeof endpoint);
            config->listen_loopback = loopback;
        } else {
            memcpy(config->gossip, endpoint, sizeof endpoint);
            config->gossip_loopback = loopback;
        }
        return 0;
    case S_LEVEL:
        if (log_level_parse(value, &config->log_level) < 0)
            return s_error(error, error_len,
                           "%s: bad log level '%s' (use error, warn, info or debug)", where, value);
        return 0;
    case S_MOUNT: {
        if (value[0] == '\0' || strlen(value) > 4096)
            return s_error(error, error_len, "%s: bad --mount '%s'", where, value);
        char *mount = strdup(value);
        if (mount == NULL || vec_push(&config->mounts, mount) < 0) {
            free(mount);
            return SHOAL_ENOMEM;
        }
        if (strcmp(name, "immutable-mount") == 0) { /* a mount, and marked immutable */
            char *immutable = strdup(value);
            if (immutable == NULL || vec_push(&config->immutable_mounts, immutable) < 0) {
                free(immutable);
                return SHOAL_ENOMEM;
            }
        }
        return 0;
    }
    case S_STORE:
        if (strcmp(value, "memory") == 0)
            config->memory_store = true;
        else if (strcmp(value, "rocksdb") == 0)
            config->memory_store = false;
        else
            return s_error(error, error_len, "%s: bad --store '%s' (rocksdb or memory)", where,
                           value);
        return 0;
    case S_CONFIG:
    case S_HELP:
        return s_error(error, error_len, "%s: --%s is not allowed in a config file", where, name);
    }
    return SHOAL_EINVAL;
}

static char *s_trim(char *text)
{
    while (isspace((unsigned char)*text))
        text++;
    size_t len = strlen(text);
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        text[--len] = '\0';
    return text;
}

/* Reads the config file: `name = value` per line, `#` comments, blank lines ignored. A value
 * may be wrapped in double quotes. Unknown names and bad values are refused with file:line. */
static int s_load_file(node_config_t *config, const char *path, char *error, size_t error_len)
{
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return s_error(error, error_len, "--config: cannot open '%s': %s", path, strerror(errno));
    char line[CONFIG_LINE_MAX];
    int line_number = 0;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, file) != NULL) {
        line_number++;
        char where[4200];
        snprintf(where, sizeof where, "%s:%d", path, line_number);
        if (strchr(line, '\n') == NULL && !feof(file)) {
            rc = s_error(error, error_len, "%s: line too long", where);
            break;
        }
        char *text = s_trim(line);
        if (text[0] == '#' || text[0] == '\0')
            continue;
        char *equals = strchr(text, '=');
        if (equals == NULL) {
            rc = s_error(error, error_len, "%s: expected `name = value`, got '%s'", where, text);
            break;
        }
        *equals = '\0';
        char *name = s_trim(text);
        char *value = s_trim(equals + 1);
        if (strncmp(name, "--", 2) == 0)
            name += 2;
        size_t value_len = strlen(value);
        if (value_len >= 2 && value[0] == '"' && value[value_len - 1] == '"') {
            value[value_len - 1] = '\0';
            value++;
        }
        const s_flag_t *flag = s_find_flag(name, strlen(name));
        if (flag == NULL) {
            rc = s_error(error, error_len, "%s: unknown setting '%s'", where, name);
            break;
        }
        rc = s_apply(config, flag, value, where, error, error_len);
    }
    fclose(file);
    return rc;
}

/* Checks the settings as a whole, after the file and the flags. */
static int s_validate(node_config_t *config, char *error, size_t error_len)
{
    if (config->mounts.len == 0)
        return s_error(error, error_len,
                       "no --mount given: the node would serve nothing (e.g. --mount "
                       "s3://bucket/data/)");
    uint64_t range_bytes = (uint64_t)config->page_size * config->range_pages;
    if (range_bytes > CONFIG_RANGE_BYTES_MAX)
        return s_error(error, error_len,
                       "--page-size %u x --range-pages %u = %llu bytes per range is over the "
                       "limit of 256M",
                       config->page_size, config->range_pages, (unsigned long long)range_bytes);
    if (config->capacity_bytes < 2ull * config->page_size)
        return s_error(error, error_len, "--capacity %llu is too small for pages of %u bytes",
                       (unsigned long long)config->capacity_bytes, config->page_size);
    if (!config->listen_loopback && !config->insecure)
        return s_error(error, error_len,
                       "--listen '%s' is not a loopback address: without encryption "
                       "(CurveZMQ with --cluster-key is not wired yet) the node binds loopback "
                       "only; add --insecure to serve it unencrypted on a trusted network",
                       config->listen);
    if (config->gossip[0] == '\0') {
        /* default: same host, listen port + 1 */
        const char *colon = strrchr(config->listen, ':');
        long port = colon ? strtol(colon + 1, NULL, 10) : 7070;
        int host_len = colon ? (int)(colon - config->listen) : 0;
        snprintf(config->gossip, sizeof config->gossip, "%.*s:%ld", host_len, config->listen,
                 port < 65535 ? port + 1 : port - 1);
        config->gossip_loopback = config->listen_loopback;
        config->gossip_defaulted = true;
    }
    if (!config->gossip_loopback && !config->insecure)
        return s_error(error, error_len,
                       "--gossip '%s' is not a loopback address: add --insecure to gossip "
                       "unencrypted on a trusted network",
                       config->gossip);
    if (config->probe_timeout_ms >= config->probe_interval_ms)
        return s_error(error, error_len,
                       "--probe-timeout %ums must be shorter than --probe-interval %ums",
                       config->probe_timeout_ms, config->probe_interval_ms);
    if (strcmp(config->gossip, config->listen) == 0)
        return s_error(error, error_len, "--gossip '%s' is the same endpoint as --listen",
                       config->gossip);
    return 0;
}

/*
 * Two passes over argv: the first checks the syntax of every flag and finds --config (and
 * --help, which wins over everything); then the file is applied; the second pass applies the
 * flags, so they override the file. A --mount on the command line drops the file's mounts.
 */
int config_parse(node_config_t *config, int argc, char *const argv[], char *error, size_t error_len)
{
    if (error && error_len)
        error[0] = '\0';
    const char *config_path = NULL;
    bool mounts_on_command_line = false;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 1; i < argc; i++) {
            const char *arg = argv[i];
            if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
                return s_error(error, error_len,
                               "unexpected argument '%s' (flags are --name value)", arg);
            const char *name = arg + 2;
            const char *equals = strchr(name, '=');
            size_t name_len = equals ? (size_t)(equals - name) : strlen(name);
            const s_flag_t *flag = s_find_flag(name, name_len);
            if (flag == NULL)
                return s_error(error, error_len, "unknown flag '%s' (see --help)", arg);
            const char *value = NULL;
            if (flag->kind == S_HELP || flag->kind == S_BOOL) {
                if (equals != NULL && flag->kind == S_HELP)
                    return s_error(error, error_len, "--%s takes no value: '%s'", flag->name, arg);
                value = equals ? equals + 1 : NULL;
            } else if (equals != NULL) {
                value = equals + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                return s_error(error, error_len, "flag --%s needs a value", flag->name);
            }
            if (pass == 0) {
                if (flag->kind == S_HELP)
                    return 1;
                if (flag->kind == S_CONFIG)
                    config_path = value;
                if (flag->kind == S_MOUNT)
                    mounts_on_command_line = true;
                continue;
            }
            if (flag->kind == S_CONFIG)
                continue;
            char where[64];
            snprintf(where, sizeof where, "--%s", flag->name);
            int rc = s_apply(config, flag, value, where, error, error_len);
            if (rc < 0)
                return rc == SHOAL_ENOMEM ? s_error(error, error_len, "out of memory") : rc;
        }
        if (pass == 0 && config_path != NULL) {
            if (s_set_string(&config->config_path, config_path) < 0)
                return s_error(error, error_len, "out of memory");
            int rc = s_load_file(config, config_path, error, error_len);
            if (rc < 0)
                return rc;
        }
        if (pass == 0 && mounts_on_command_line)
            s_clear_mounts(config);
    }
    return s_validate(config, error, error_len);
}

void config_usage(FILE *out)
{
    fprintf(out, "usage: shoald --mount URI [--mount URI ...] [flags]\n"
                 "\n"
                 "shoald is one node of a shoal cluster: a read cache for files under the mounts,\n"
                 "kept on the local disk and served over ZeroMQ.\n"
                 "\n"
                 "flags (also `name = value` lines in a --config file; flags win):\n");
    for (size_t i = 0; i < S_FLAG_COUNT; i++) {
        char left[64];
        if (s_flags[i].arg)
            snprintf(left, sizeof left, "--%s %s", s_flags[i].name, s_flags[i].arg);
        else
            snprintf(left, sizeof left, "--%s", s_flags[i].name);
        fprintf(out, "  %-20s %s\n", left, s_flags[i].help);
    }
    fprintf(out, "\nSIGTERM or SIGINT stops the node cleanly. Exit status 2 means bad flags.\n");
}
