/*
 * ops.h - what the node does with each request type: the mount check, then VIEW, STATS and
 * cached STAT/LIST/READ at once on the hit worker, and everything needing the UFS (STAT/LIST
 * past the TTL, READ misses, LOAD, EVICT) on a fetch thread.
 */
#ifndef SHOAL_NODE_OPS_H
#define SHOAL_NODE_OPS_H

#include <stdatomic.h>
#include <stdint.h>

#include "fetch.h"
#include "membership.h"
#include "mount.h"
#include "read.h"
#include "request.h"

/* What the operations use, built by node.c (pointers borrowed; the objects outlive the
 * threads that dispatch). */
typedef struct ops_ctx {
    read_ctx_t read;                /* the read path's context; STATS, STAT, LIST, EVICT use its
                                     * store, UFS, caches, flights, counters and geometry too */
    mount_table_t *mounts;          /* what may be served */
    membership_t *members;          /* VIEW, the view counters */
    fetch_pool_t *fetch;            /* where requests needing the UFS go */
    _Atomic int64_t *inflight;      /* requests taken and not finished (STATS) */
    _Atomic uint64_t *flushed_puts; /* puts on disk at the last periodic flush (STATS) */
} ops_ctx_t;

/* On a hit worker: answers `*request_p` or queues it for the fetch pool. Takes ownership of
 * *request_p and sets it to NULL. */
void ops_dispatch(const ops_ctx_t *ctx, reply_sink_t *sink, node_request_t **request_p);

/* On a fetch thread: answers `*request_p` in full. Takes ownership and sets it to NULL. */
void ops_fetch(const ops_ctx_t *ctx, reply_sink_t *sink, node_request_t **request_p);

#endif
