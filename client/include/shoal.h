/*
 * shoal.h - libshoal, the C client of a shoal cluster: stat, list and read files of the under
 * storage through the cluster's cache, warm and evict, and read cluster stats and membership.
 *
 * Every function returns 0 (or a byte count) on success and a negative SHOAL_E* code on
 * failure; shoal_strerror() names the code and shoal_last_error() gives the detail (which URI,
 * which node, which HTTP status) for the calling thread. A client is safe to use from many
 * threads at once, and in a child after fork(): the child never touches the parent's sockets;
 * it builds its own on its first call.
 */
#ifndef SHOAL_H
#define SHOAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* libshoal.so is built with -fvisibility=hidden; everything declared here is its API. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#define SHOAL_VERSION_MAX 256 /* longest version string, NUL included */

typedef struct shoal_client shoal_client_t;

/* Client settings; zero fields take the defaults in brackets. */
typedef struct shoal_client_options {
    const char *seeds;       /* "host:port[,host:port...]" data endpoints of any nodes */
    int timeout_ms;          /* [10000] per request to a node before trying the next one */
    int metadata_ttl_ms;     /* [1000] how long the client trusts a stat it made */
    bool no_ufs_fallback;    /* [false] true: never read the under storage directly */
    const char *cluster_key; /* path of the cluster key file (`shoal keygen`), or NULL */
} shoal_client_options_t;

/* What stat learns about a file or directory. */
typedef struct shoal_stat {
    uint64_t size;                   /* bytes; 0 for directories */
    int64_t mtime;                   /* seconds since the epoch; 0 when unknown */
    bool is_dir;                     /* a directory or prefix */
    char version[SHOAL_VERSION_MAX]; /* ETag or "<size>-<mtime>"; "" for directories */
} shoal_stat_t;

/* One read of shoal_pread_many. */
typedef struct shoal_read {
    const char *uri; /* file to read; borrowed for the call */
    uint64_t offset; /* first byte */
    size_t length;   /* bytes wanted */
    void *buf;       /* at least `length` bytes; borrowed for the call */
    int64_t result;  /* out: bytes read (short only at end of file) or a negative code */
} shoal_read_t;

typedef struct shoal_listing shoal_listing_t;

/* Creates a client. Returns NULL with shoal_last_error() set when options are invalid (say,
 * no seeds) or memory runs out; no node needs to be up yet. Caller owns the result. */
shoal_client_t *shoal_client_new(const shoal_client_options_t *options);

/* Destroys *client_p and sets it to NULL; safe on NULL. In-flight calls on other threads must
 * have returned. */
void shoal_client_destroy(shoal_client_t **client_p);

/* Fills *out for `uri` (s3://bucket/key, az://..., hf://..., http(s)://..., file:///...). */
int shoal_stat(shoal_client_t *client, const char *uri, shoal_stat_t *out);

/* shoal_stat for a caller that reads the file next (an fsspec `info` before an open, as Ray
 * Data does for files it did not list): a stat cached by this client is answered at once;
 * otherwise the file's first byte is read (one request to range 0's owner, one GET at the
 * origin when cold: the GET is the stat, and range 0 is then cached for the read that follows,
 * where shoal_stat would cost a HEAD now and a GET later). A directory (or an object store's
 * prefix) falls back to shoal_stat. Added after the first header: not used by older
 * bindings. */
int shoal_stat_read(shoal_client_t *client, const char *uri, shoal_stat_t *out);

/* Lists `uri` one level deep, or every file below it when `recursive`. On success *out is a
 * listing the caller owns and frees with shoal_listing_destroy. */
int shoal_list(shoal_client_t *client, const char *uri, bool recursive, shoal_listing_t **out);
/* Entries in a listing. */
size_t shoal_listing_count(const shoal_listing_t *listing);
/* URI of entry `index`; borrowed until the listing is destroyed. */
const char *shoal_listing_uri(const shoal_listing_t *listing, size_t index);
/* Stat of entry `index`; borrowed until the listing is destroyed. */
const shoal_stat_t *shoal_listing_stat(const shoal_listing_t *listing, size_t index);
void shoal_listing_destroy(shoal_listing_t **listing_p);

/* Reads up to `length` bytes at `offset` into `buf`, through the cluster: the read is split
 * into ranges that all go to their owners at once. Returns the bytes read (fewer only at the
 * end of the file) or a negative code. All bytes come from one version of the file. */
int64_t shoal_pread(shoal_client_t *client, const char *uri, void *buf, size_t length,
                    uint64_t offset);

/* shoal_pread of one version, telling which: `version` NULL or "" reads the current one (as
 * shoal_pread, restarting on a change); otherwise that version only, and a file that no longer
 * has it fails with SHOAL_ESTALE ("changed under the reader"), never with other bytes. On
 * success fills *stat_out (when not NULL) with the size, mtime and version the bytes came from
 * (learnt from the read itself when no stat was cached). Added after the first header: not
 * used by older bindings. */
int64_t shoal_pread_stat(shoal_client_t *client, const char *uri, const char *version, void *buf,
                         size_t length, uint64_t offset, shoal_stat_t *stat_out);

/* Performs `count` reads at once (all their ranges in flight together) and sets each
 * reads[i].result. Returns 0 when every read succeeded, else the first failure's code. */
int shoal_pread_many(shoal_client_t *client, shoal_read_t *reads, size_t count);

/* Warms `uri` (one file) into the cache with `replicas` copies of each range (1 = owners
 * only). Adds the bytes it loaded to *bytes_loaded when not NULL. */
int shoal_load(shoal_client_t *client, const char *uri, int replicas, uint64_t *bytes_loaded);

/* Drops every cached page of `uri` (and of every file below it when `recursive`) on every
 * node. Adds the bytes freed to *bytes_evicted when not NULL. */
int shoal_evict(shoal_client_t *client, const char *uri, bool recursive, uint64_t *bytes_evicted);

/* Cluster statistics as a JSON document: {"nodes": [{"name":..., "counters": {...},
 * "latency": {...}}, ...], "client": {...}}. On success *json_out is a NUL-terminated string
 * the caller frees with shoal_free. */
int shoal_stats(shoal_client_t *client, char **json_out);

/* The membership view as JSON: {"view_version": N, "page_size": N, "range_pages": N,
 * "members": [{"id", "name", "state", "incarnation", "data", "gossip", "weight",
 * "last_heard_ms", "host_id", "local_socket"}, ...]}: host_id names the host the node runs on
 * (members with this process's host id share its host), local_socket its AF_UNIX socket for
 * clients there ("" = none). Caller frees *json_out with shoal_free. */
int shoal_members(shoal_client_t *client, char **json_out);

/* The client-side counters of this client alone, without asking any node: {"requests": N,
 * "retries": N, "timeouts": N, "fallback_next_owner": N, "fallback_no_cache": N,
 * "fallback_ufs": N, "view_refreshes": N, ...} (the same object shoal_stats shows under
 * "client"; client/README.md lists every counter). Caller frees *json_out with shoal_free.
 * Added after the first header: not used by older bindings. */
int shoal_client_counters_json(shoal_client_t *client, char **json_out);

/* Frees memory that libshoal returned. Safe on NULL. */
void shoal_free(void *ptr);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
