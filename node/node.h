/*
 * node.h - one shoal node: owns the store, the UFS handle, the mounts, the view, the caches,
 * the counters and the threads (server.h, fetch.h), and wires them together: the composition
 * root, the only file that knows every part. Each part gets its own dependencies (or a narrow
 * context: ops.h, read.h) from node.c and never sees node_t. main.c makes one from the
 * config, starts it, and stops it on SIGTERM. Only node.c and main.c include this.
 */
#ifndef SHOAL_NODE_NODE_H
#define SHOAL_NODE_NODE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "flight.h"
#include "meta.h"
#include "mount.h"
#include "pagestore.h"
#include "stats.h"
#include "ufs.h"
#include "membership.h"
#include "ops.h"
#include "request.h"

struct server;
struct fetch_pool;
struct cluster;
struct forward;
struct storeq;
struct local;

/* Shared by every thread of the node. Fields are set up by node_new and read-only after it,
 * except those marked otherwise (which are thread safe objects or atomics). */
typedef struct node {
    node_config_t config;          /* settings (a deep copy) */
    pagestore_t *store;            /* page store (thread safe) */
    ufs_t *ufs;                    /* UFS connectors (thread safe) */
    mount_table_t *mounts;         /* what may be served (immutable) */
    mount_table_t *immutable;      /* --immutable-mount prefixes: never revalidated */
    reval_t *reval;                /* background revalidation past the metadata TTL */
    membership_t *members;         /* membership (thread safe; the gossip thread writes it) */
    meta_cache_t *meta;            /* STAT/LIST cache (thread safe) */
    flight_table_t *flights;       /* UFS range reads in flight (thread safe) */
    range_pool_t *ranges;          /* reused whole-range buffers (thread safe) */
    stats_t stats;                 /* counters (atomics) */
    uint64_t page_size;            /* cluster page size */
    uint32_t range_pages;          /* cluster range size in pages */
    uint8_t id[16];                /* node id */
    uint64_t incarnation;          /* bumped at every start */
    void *zmq_context;             /* one ZeroMQ context for every socket of the node */
    struct server *server;         /* router thread and hit workers */
    struct fetch_pool *fetch;      /* fetch threads */
    struct cluster *cluster;       /* gossip agent (cluster.h) */
    struct forward *forward;       /* connections to owners for forwarded reads (forward.h) */
    struct storeq *storeq;         /* background page stores after replies */
    struct local *local;           /* short-circuit local read socket (local.h), or NULL: off */
    _Atomic int64_t inflight;      /* requests forwarded to workers and not answered yet */
    int64_t flushed_ns;            /* last periodic flush (node_tick, main thread only) */
    _Atomic uint64_t flushed_puts; /* pagestore puts on disk by that flush (main writes) */
    int refused_fd;                /* eventfd, readable once the cluster refused the node */
    atomic_bool refused_told;      /* refused_fd was written (the gossip thread writes it once) */
    request_env_t env;             /* what the request threads share (points into this node) */
    ops_ctx_t ops;                 /* what ops.c and read.c see of this node (points into it) */
} node_t;

/* Opens the store (creating the data dir), loads the identity, builds the membership (this
 * node alone until gossip reports), the gossip agent (bound, not started), the UFS handle, the
 * mounts and the caches. Does not start threads. Returns the node or NULL with a logged error.
 * Deep-copies `config`. Caller owns the result. */
node_t *node_new(const node_config_t *config);

/* Binds the data endpoint, starts every thread, then joins the cluster. Returns 0, or a
 * negative code with a logged error (e.g. the port is taken; SHOAL_ECONFIG when the cluster
 * refused this node's page or range size); the node may then only be destroyed. */
int node_start(node_t *self);

/* 0 while the node may run; SHOAL_ECONFIG once the cluster refused it (message in `message`,
 * cap bytes). Thread safe; main asks it when node_refused_fd becomes readable. */
int node_status(node_t *self, char *message, size_t cap);

/* A descriptor that becomes readable (and stays so) once the cluster refused the node after
 * node_start: the gossip thread notices the refusal at its next membership refresh (at most
 * about a second later) and writes it. For poll(2) in main; borrowed while the node lives. */
int node_refused_fd(const node_t *self);

/* Housekeeping, called by main: every --flush-interval, writes the pages cached since the last
 * flush to disk (they are stored without a WAL, so a crash would lose them). Returns the
 * milliseconds until it wants to be called again, or -1 for never (--flush-interval 0, or the
 * memory store): a poll(2) timeout. Main thread only. */
int node_tick(node_t *self);

/* Stops cleanly: leaves the cluster (peers see "left"), stops taking requests, lets in-flight ones
 * finish (queued misses get ERROR ECANCELED), joins every thread and closes the sockets. Safe to
 * call once after node_start. */
void node_stop(node_t *self);

/* Stops the node if it runs, closes the store and frees everything; sets *self_p to NULL. */
void node_destroy(node_t **self_p);

#endif
