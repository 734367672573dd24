/*
 * reval.h - background revalidation of metadata past its TTL: a READ whose metadata is stale
 * but whose pages are held is served from the held version at once, and queues one
 * revalidation of the file here (at most one per file: meta_cache_begin_revalidate). A small
 * pool of threads asks the UFS (ufs_stat: one HEAD) and replaces the metadata; a new version's
 * pages have other file keys, so old and new bytes never mix. node/README.md states the policy.
 */
#ifndef SHOAL_NODE_REVAL_H
#define SHOAL_NODE_REVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "meta.h"
#include "pagestore.h"
#include "stats.h"
#include "ufs.h"

#define REVAL_QUEUE_MAX 65536 /* files queued before a revalidation is skipped (retried later) */
#define REVAL_THREADS   4     /* revalidating threads: HEADs in flight at once */

/* What the revalidators use (borrowed; thread safe; outlive the pool). */
typedef struct reval_deps {
    ufs_t *ufs;         /* under storage */
    meta_cache_t *meta; /* the metadata revalidated */
    pagestore_t *store; /* where the metadata is recorded for a restart (metadisk.h), or NULL */
    stats_t *stats;     /* counters */
} reval_deps_t;

typedef struct reval reval_t;

/* Makes a stopped pool. NULL when out of memory. Caller owns it. */
reval_t *reval_new(const reval_deps_t *deps);

/* Starts the threads. Returns 0 or SHOAL_EIO when none could start. */
int reval_start(reval_t *self);

/* Queues a revalidation of normalised `uri` (copied), whose entry the caller marked with
 * meta_cache_begin_revalidate. Never blocks. When it cannot be queued (full, stopped, out of
 * memory) it ends the mark itself, so a later READ tries again. Safe on a NULL pool (does
 * that too). */
void reval_submit(reval_t *self, const char *uri);

/* Stops the threads: queued revalidations are dropped, running ones finish. */
void reval_stop(reval_t *self);

/* Frees *self_p (stopped first) and sets it to NULL; safe on NULL. */
void reval_destroy(reval_t **self_p);

#endif
