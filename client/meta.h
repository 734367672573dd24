/*
 * meta.h - the metadata engine (meta.c): the per-process stat cache and client_stat_many,
 * which stats many uris at once (cache, then every miss in flight to its metadata owner, then
 * the UFS). The public shoal_stat and shoal_list are in list.c.
 */
#ifndef SHOAL_CLIENT_META_H
#define SHOAL_CLIENT_META_H

#include <stdbool.h>
#include <stddef.h>

#include "ctx.h"
#include "shoal.h"

/* Direct-mapped stat cache of one process. Thread-safe (one mutex, held for a slot copy). */
typedef struct client_stat_cache client_stat_cache_t;

/* An empty cache keeping answers `ttl_ms` (< 0: the cache is off). Caller owns it; NULL on
 * out of memory. */
client_stat_cache_t *client_stat_cache_new(int ttl_ms);
/* Frees it and sets *cache_p to NULL; safe on NULL. Only in the process that made it. */
void client_stat_cache_destroy(client_stat_cache_t **cache_p);
/* Copies the fresh cached stat of `uri` (normal form) into *out: true, or false when there is
 * none (or the cache is off). Borrows everything. */
bool client_stat_cached(client_stat_cache_t *cache, const char *uri, shoal_stat_t *out);
/* Caches `stat` for `uri` (both copied) for the cache's TTL, replacing what the slot held: what
 * a STAT, a listing or a read's reply learnt. */
void client_stat_remember(client_stat_cache_t *cache, const char *uri, const shoal_stat_t *stat);
/* Drops the cached stat of `uri`, if any (its file changed). */
void client_stat_forget(client_stat_cache_t *cache, const char *uri);
/* Drops every cached stat (after an evict). */
void client_stat_cache_clear(client_stat_cache_t *cache);

/* Writes the normal form of `uri` (proto/uri.h) into `out` (out_len bytes): the one spelling
 * the node checks, keys its cache by and places ranges by, so the client sends, hashes and caches
 * that same string. A uri the normaliser refuses is refused as the node refuses it:
 * SHOAL_EACCES, last error "<what> <uri>: refused: <why>". No allocation for paths up to 512
 * bytes. Borrows everything. */
int client_uri_normalize(const char *what, const char *uri, char *out, size_t out_len);

/* Fills op's targets: the metadata owners of `uri` in HRW order (borrowed from the view). */
void client_meta_targets(const client_view_t *view, const char *uri, client_op_t *op);

/* Stats `count` uris at once (cache first, then all misses in flight together over the
 * call's session, then UFS). results[i] gets 0 or a negative code; stats[i] the answer.
 * `bypass_cache` skips the cache (but refreshes it). Returns 0, or a negative code when
 * nothing could run. Everything is the caller's. */
int client_stat_many(client_ctx_t *ctx, const char *const *uris, size_t count, bool bypass_cache,
                     shoal_stat_t *stats, int *results);

#endif
