/*
 * config.h - the node's settings: defaults, the config file (`name = value` lines with the flag
 * names), the command-line flags (which override the file), their validation and --help.
 * Pure parsing: nothing here opens sockets or the store.
 */
#ifndef SHOAL_NODE_CONFIG_H
#define SHOAL_NODE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"
#include "shoal_err.h"
#include "vec.h"

#define CONFIG_ENDPOINT_MAX 256 /* "tcp://host:port" incl. the NUL (MSG_ENDPOINT_MAX) */
#define CONFIG_ERROR_MAX    512 /* room for a parse error message */

/* Every setting of one node. Strings are owned by the config (freed by config_fini). */
typedef struct node_config {
    char *name;                       /* --name: human name in the view [host name] */
    char *data_dir;                   /* --data-dir: RocksDB directory [~/.cache/shoal] */
    uint64_t capacity_bytes;          /* --capacity: page quota [10G] */
    char listen[CONFIG_ENDPOINT_MAX]; /* --listen: data endpoint, "tcp://host:port" */
    bool listen_loopback;             /* listen host is a loopback address */
    char gossip[CONFIG_ENDPOINT_MAX]; /* --gossip: gossip bind endpoint [listen port + 1] */
    bool gossip_loopback;             /* gossip host is a loopback address */
    bool gossip_defaulted;            /* --gossip was not given: listen port + 1 */
    char *seeds;                      /* --seeds: "host:port,..." gossip endpoints of others [""] */
    VEC(char *) mounts;               /* --mount: URI prefixes served (repeatable; owned) */
    char *cluster_key;                /* --cluster-key: key file path [NULL] (CurveZMQ later) */
    bool insecure;                    /* --insecure: allow non-loopback without a key */
    int64_t metadata_ttl_ns;          /* --metadata-ttl: STAT/LIST cache lifetime [60 s] */
    int64_t negative_ttl_ns;          /* --negative-ttl: "not found" kept this long [5 s]; 0 off */
    VEC(char *) immutable_mounts;     /* --immutable-mount: mounts never revalidated (owned) */
    uint32_t threads;                 /* --threads: hit workers [4] */
    uint32_t fetch_threads;           /* --fetch-threads: UFS fetchers [16] */
    uint32_t page_size;               /* --page-size: bytes per page [1 MiB] */
    uint32_t range_pages;             /* --range-pages: pages per range [4] */
    log_level_t log_level;            /* --log-level [info] */
    bool memory_store;                /* --store memory: pages in RAM, nothing on disk (tests) */
    char *config_path;                /* --config: the file read, or NULL */
    /* gossip timings (gossip/README.md; defaults from swim_opts_default) */
    uint32_t probe_interval_ms;     /* --probe-interval [1s] */
    uint32_t probe_timeout_ms;      /* --probe-timeout [500ms] */
    uint32_t indirect_checks;       /* --indirect-checks [3] */
    double suspicion_mult;          /* --suspicion-mult [0.5] */
    uint32_t retransmit_mult;       /* --retransmit-mult [4] */
    uint32_t push_pull_interval_ms; /* --push-pull-interval [30s] */
    uint32_t dead_forget_ms;        /* --dead-forget [30s] */
    uint32_t forward_timeout_ms;    /* --forward-timeout: wait for an owner [2s] */
    int64_t flush_interval_ns;      /* --flush-interval: write new pages to disk [10s]; 0 never */
    /* short-circuit local reads (node/local.h) */
    char *local_socket;      /* --local-socket: the UNIX socket path; NULL until node_new resolves
                                the default (<data-dir>/shoal.sock, or /run/shoal/<name or id>.sock
                                when that is over 107 bytes); stays NULL when local_socket_off */
    bool local_socket_off;   /* --local-socket off (or the memory store without an explicit
                                path): no local socket */
    bool local_socket_given; /* --local-socket PATH was given: failing to listen is fatal */
    char *local_group;       /* --local-group NAME or GID; NULL = the node's primary group */
} node_config_t;

/* Fills *config with the defaults. Allocates (the default data dir and name); returns 0 or
 * SHOAL_ENOMEM. Free with config_fini. */
int config_init(node_config_t *config);

/* Deep-copies `from` into *to (overwritten). Returns 0 or SHOAL_ENOMEM (then *to is zeroed). */
int config_copy(node_config_t *to, const node_config_t *from);

/* Frees what the config owns and zeroes it. Safe twice. */
void config_fini(node_config_t *config);

/*
 * Applies the command line (argv[1..argc-1]) over the defaults: first the file named by
 * --config if any, then every flag (flags override the file; --mount flags replace the file's
 * mounts). Flags are `--name value` or `--name=value`. Then checks the whole (ranges, at least
 * one mount, loopback rule). Returns 0; 1 when --help was asked (nothing else checked);
 * SHOAL_EINVAL with a message naming the flag and the value in `error` (error_len bytes).
 * Borrows argv.
 */
int config_parse(node_config_t *config, int argc, char *const argv[], char *error,
                 size_t error_len);

/* Writes the --help text documenting every flag. */
void config_usage(FILE *out);

/* Parses an endpoint "tcp://host:port", "host:port" or "[v6]:port" into "tcp://host:port"
 * ("localhost" becomes 127.0.0.1), and says whether the host is a loopback address. Returns 0
 * or SHOAL_EINVAL. */
int config_parse_endpoint(const char *text, char out[CONFIG_ENDPOINT_MAX], bool *loopback);

#endif
