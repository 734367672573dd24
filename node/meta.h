/*
 * meta.h - the node's metadata cache: STAT answers per URI and whole LIST results, each kept
 * for --metadata-ttl, in memory. After the TTL the node asks the UFS again; a URI also keeps
 * the last few versions it had, so EVICT can drop the pages of each (pages are keyed by
 * version, so an old version's pages are never served for a new one).
 */
#ifndef SHOAL_NODE_META_H
#define SHOAL_NODE_META_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ufs.h"

#define META_OLD_VERSIONS 4 /* earlier versions remembered per URI (for EVICT) */

/* The stat cache and the listing cache. Thread safe (one mutex; held only for copies). */
typedef struct meta_cache meta_cache_t;

/* Makes a cache whose entries are fresh for ttl_ns and which holds at most max_entries stats
 * (when full, expired entries go first, then arbitrary ones) and max_listings listings.
 * Returns NULL when out of memory. Caller owns it. */
meta_cache_t *meta_cache_new(int64_t ttl_ns, size_t max_entries, size_t max_listings);

/* Frees *self_p and sets it to NULL; safe on NULL. Listings still referenced stay valid until
 * released. */
void meta_cache_destroy(meta_cache_t **self_p);

/* Looks `uri` up at time `now_ns` (CLOCK_MONOTONIC): fills *out and sets *fresh (younger than
 * the TTL). Returns 0 or SHOAL_ENOENT (never seen, or forgotten). Borrows everything. */
int meta_cache_get(meta_cache_t *self, const char *uri, int64_t now_ns, ufs_stat_t *out,
                   bool *fresh);

/* Records what the UFS said about `uri` at `now_ns`. A different version than before pushes
 * the old one onto the remembered versions. Out of memory drops the entry silently (it is a
 * cache). Borrows everything. */
void meta_cache_put(meta_cache_t *self, const char *uri, const ufs_stat_t *stat, int64_t now_ns);

/* meta_cache_put of metadata read back from the node's disk after a restart (read.c): the
 * entry is never fresh, so a READ serves its held pages while one background revalidation
 * asks the UFS (the S_STALE path), and a STAT asks the UFS. Borrows everything. */
void meta_cache_put_recalled(meta_cache_t *self, const char *uri, const ufs_stat_t *stat,
                             int64_t now_ns);

/* How long a "not found" is remembered (meta_cache_put_missing); 0 (the default) = never. */
void meta_cache_set_negative_ttl(meta_cache_t *self, int64_t ttl_ns);

/* Records that the UFS said `uri` does not exist at `now_ns`: meta_cache_get answers ENOENT
 * (as for an unknown uri) and meta_cache_missing true for the negative TTL. The versions known
 * before stay (EVICT). With a negative TTL of 0 the entry is forgotten instead. */
void meta_cache_put_missing(meta_cache_t *self, const char *uri, int64_t now_ns);

/* meta_cache_put_missing for a GET's "not found": there is no object of that name, but an
 * object store's prefix of that name may still be a directory, so meta_cache_missing_entirely
 * (what a STAT asks) stays false and a STAT asks the UFS (HEAD, then LIST). */
void meta_cache_put_missing_object(meta_cache_t *self, const char *uri, int64_t now_ns);

/* True when `uri` was found missing (as an object: by a GET or a stat) less than the negative
 * TTL before `now_ns`: what a READ asks. */
bool meta_cache_missing(meta_cache_t *self, const char *uri, int64_t now_ns);

/* True when a stat found nothing at `uri` (neither an object nor a directory) less than the
 * negative TTL before `now_ns`: what a STAT asks. */
bool meta_cache_missing_entirely(meta_cache_t *self, const char *uri, int64_t now_ns);

/* Marks `uri`'s entry as being revalidated and returns true, unless it is unknown, missing or
 * already being revalidated (false): so at most one revalidation per file is in flight. It
 * ends with the next meta_cache_put, meta_cache_put_missing or meta_cache_end_revalidate. */
bool meta_cache_begin_revalidate(meta_cache_t *self, const char *uri);

/* Ends a revalidation that learnt nothing (the UFS failed, or it could not be queued). */
void meta_cache_end_revalidate(meta_cache_t *self, const char *uri);

/* Marks `uri` expired (after ESTALE) so the next lookup asks the UFS; keeps its versions. */
void meta_cache_expire(meta_cache_t *self, const char *uri);

/* True when `uri`'s entry was marked expired by meta_cache_expire (its version was refused),
 * as opposed to merely past its TTL: its pages must not be served without asking the UFS. */
bool meta_cache_refused(meta_cache_t *self, const char *uri);

/* Removes `uri` and its remembered versions (after EVICT). */
void meta_cache_forget(meta_cache_t *self, const char *uri);

/* Copies up to `max` versions known for `uri` (current first, then older ones) into
 * versions[i] (UFS_VERSION_MAX bytes each). Returns how many. */
size_t meta_cache_versions(meta_cache_t *self, const char *uri, char (*versions)[UFS_VERSION_MAX],
                           size_t max);

/* Collects the URIs of every file entry equal to or below `prefix` (segment boundaries, see
 * mount_is_under). On success *uris_out is a malloc'd array of malloc'd strings (free each and
 * the array) with *count_out entries. Returns 0 or SHOAL_ENOMEM. */
int meta_cache_uris_under(meta_cache_t *self, const char *prefix, char ***uris_out,
                          size_t *count_out);

/* One UFS listing held for paging through it with cursors. Immutable once made; reference
 * counted (any thread may hold and release one). */
typedef struct meta_listing {
    _Atomic int refs;   /* references; freed at zero */
    char *uri;          /* the directory or prefix listed */
    bool recursive;     /* recursive listing */
    ufs_list_t list;    /* entries, sorted by uri */
    int64_t fetched_ns; /* CLOCK_MONOTONIC when it came from the UFS */
} meta_listing_t;

/* Returns a new reference to the fresh listing of (uri, recursive), or NULL when there is none
 * or it is older than the TTL. The caller releases it with meta_listing_release. */
meta_listing_t *meta_cache_listing_get(meta_cache_t *self, const char *uri, bool recursive,
                                       int64_t now_ns);

/* Stores a listing just fetched (takes the entries of *list and leaves it empty), also adds a
 * stat entry for each file in it, and returns a new reference to it for the caller (release
 * with meta_listing_release), or NULL when out of memory (*list is emptied either way). */
meta_listing_t *meta_cache_listing_put(meta_cache_t *self, const char *uri, bool recursive,
                                       ufs_list_t *list, int64_t now_ns);

/* Drops a reference and sets *listing_p to NULL; safe on NULL. */
void meta_listing_release(meta_listing_t **listing_p);

/* Index of the first entry whose uri sorts after `cursor` ("" = 0): the cursor of a LIST reply
 * is the last uri it carried, so paging survives a refresh of the listing in between. */
size_t meta_listing_seek(const meta_listing_t *listing, const char *cursor);

#endif
