/*
 * read.h - the read path: READ from the store when every page is there (hit workers, no UFS),
 * else read-through with whole-range UFS reads shared by single flight (fetch threads); LOAD,
 * which warms ranges the same way; and the metadata resolution both need.
 */
#ifndef SHOAL_NODE_READ_H
#define SHOAL_NODE_READ_H

#include <stdbool.h>
#include <stdint.h>

#include "flight.h"
#include "forward.h"
#include "meta.h"
#include "mount.h"
#include "pagestore.h"
#include "reval.h"
#include "request.h"
#include "stats.h"
#include "storeq.h"
#include "ufs.h"

#define READ_BYTES_MAX (256ull << 20) /* largest READ span answered at once (and <= 4096 pages) */

/* What the read path uses, built by node.c (every pointer borrowed; the objects are thread
 * safe and outlive the threads that read). */
typedef struct read_ctx {
    pagestore_t *store;             /* pages */
    ufs_t *ufs;                     /* under storage */
    flight_table_t *flights;        /* single flight of range reads */
    range_pool_t *ranges;           /* range buffers */
    meta_cache_t *meta;             /* STAT cache */
    stats_t *stats;                 /* counters */
    storeq_t *storeq;               /* background stores after replies */
    forward_t *forward;             /* ranges owned by other nodes */
    reval_t *reval;                 /* background revalidation past the TTL, or NULL (none) */
    const mount_table_t *immutable; /* --immutable-mount prefixes (never revalidated), or NULL */
    uint64_t page_size;             /* cluster page size */
    uint32_t range_pages;           /* pages per range */
} read_ctx_t;

/* Finds the current metadata of normalised `uri` (STAT; READs with a version and no size): a
 * file found missing within the negative TTL is SHOAL_ENOENT at once (no UFS); the cache when
 * fresh (or under an immutable mount, however old); the cache when stale
 * but `want_version` is given and matches (pages are keyed by version, so that version's bytes
 * are still exact); else the UFS if `may_ask_ufs` (the answer is cached). A `want_version`
 * ("" or NULL = any) that differs from a fresh answer gives SHOAL_ESTALE. Returns 0, 1 when the
 * UFS would be needed but may not be asked, or a negative code (the UFS's, SHOAL_ESTALE). */
int read_resolve(const read_ctx_t *ctx, const char *uri, const char *want_version, bool may_ask_ufs,
                 ufs_stat_t *out);

/* The version a LOCATE (node/local.c) may name, resolved as a READ hit would resolve it but
 * never asking the UFS: `version` "" takes the cached metadata only when fresh or under an
 * immutable mount; a version with `file_size` (MSG_SIZE_UNKNOWN: unknown) is taken as a READ
 * with both takes it. Returns 0 with *out set, 1 when no version can be named without the UFS
 * (no entry, or one past its TTL), SHOAL_ENOENT (the negative cache), SHOAL_ESTALE (a fresh
 * entry names another version) or SHOAL_EISDIR. */
int read_locate_meta(const read_ctx_t *ctx, const char *uri, const char *version,
                     uint64_t file_size, ufs_stat_t *out);

/* The stored length page `index` of a file of `size` bytes must have: page_size, shorter for
 * the last page, 0 past the end. */
uint64_t read_page_length(const read_ctx_t *ctx, uint64_t size, uint64_t index);

/* On a hit worker: answers the READ `request` when its metadata is cached and every page is in
 * the store (or the span is empty), or refuses it at once (bad length, stale version). Returns
 * true when it answered; false when the request must go to the fetch pool (untouched). */
bool read_try_hit(const read_ctx_t *ctx, reply_sink_t *sink, node_request_t *request);

/* On a fetch thread: answers the READ `request` in full, reading missing ranges from the UFS,
 * then (after the reply has gone out) storing them unless NO_CACHE. Always answers. */
void read_serve(const read_ctx_t *ctx, reply_sink_t *sink, node_request_t *request);

/* On a fetch thread: answers the LOAD `request`: every missing range of the span is read and
 * stored; pages already present are counted. Always answers. */
void read_load(const read_ctx_t *ctx, reply_sink_t *sink, node_request_t *request);

#endif
