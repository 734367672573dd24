/*
 * meta.c - the metadata engine: stat goes to the uri's metadata owner (HRW of the uri bytes)
 * through a short per-process stat cache, many uris at once, and falls back to the under
 * storage when no node answers. The public stat and list calls are in list.c.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fallback.h"
#include "fnv.h"
#include "htab.h"
#include "meta.h"
#include "uri.h"

#define META_OWNER_TRIES 3 /* metadata owners tried in HRW order before the UFS */
#define CLIENT_STAT_CACHE_SLOTS                                                                    \
    4096 /* direct-mapped stat cache entries per process (a                                        \
          * listing of a dataset fills it) */

/* One stat cache slot. */
typedef struct client_stat_slot {
    char *uri;          /* key; NULL = empty */
    shoal_stat_t stat;  /* cached answer */
    int64_t expires_ms; /* monotonic ms after which the slot is ignored */
} client_stat_slot_t;

struct client_stat_cache {
    int ttl_ms;                                        /* < 0: off */
    pthread_mutex_t mutex;                             /* guards slots */
    client_stat_slot_t slots[CLIENT_STAT_CACHE_SLOTS]; /* direct-mapped by uri hash */
};

/* The stat cache slot of a uri (FNV-1a: the uris are the caller's own, not a peer's). */
static size_t s_slot(const char *uri)
{
    return (size_t)(fnv1a64_str(uri) % CLIENT_STAT_CACHE_SLOTS);
}

client_stat_cache_t *client_stat_cache_new(int ttl_ms)
{
    client_stat_cache_t *cache = calloc(1, sizeof *cache);
    if (!cache)
        return NULL;
    cache->ttl_ms = ttl_ms;
    pthread_mutex_init(&cache->mutex, NULL);
    return cache;
}

void client_stat_cache_destroy(client_stat_cache_t **cache_p)
{
    if (!cache_p || !*cache_p)
        return;
    client_stat_cache_t *cache = *cache_p;
    *cache_p = NULL;
    for (size_t i = 0; i < CLIENT_STAT_CACHE_SLOTS; i++)
        free(cache->slots[i].uri);
    pthread_mutex_destroy(&cache->mutex);
    free(cache);
}

bool client_stat_cached(client_stat_cache_t *cache, const char *uri, shoal_stat_t *out)
{
    if (cache->ttl_ms < 0)
        return false;
    bool hit = false;
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&cache->mutex);
    client_stat_slot_t *slot = &cache->slots[s_slot(uri)];
    if (slot->uri && slot->expires_ms > now && strcmp(slot->uri, uri) == 0) {
        *out = slot->stat;
        hit = true;
    }
    pthread_mutex_unlock(&cache->mutex);
    return hit;
}

void client_stat_remember(client_stat_cache_t *cache, const char *uri, const shoal_stat_t *stat)
{
    if (cache->ttl_ms < 0)
        return;
    char *copy = strdup(uri);
    if (!copy)
        return;
    pthread_mutex_lock(&cache->mutex);
    client_stat_slot_t *slot = &cache->slots[s_slot(uri)];
    free(slot->uri);
    slot->uri = copy;
    slot->stat = *stat;
    slot->expires_ms = clock_mono_ms() + cache->ttl_ms;
    pthread_mutex_unlock(&cache->mutex);
}

void client_stat_forget(client_stat_cache_t *cache, const char *uri)
{
    pthread_mutex_lock(&cache->mutex);
    client_stat_slot_t *slot = &cache->slots[s_slot(uri)];
    if (slot->uri && strcmp(slot->uri, uri) == 0) {
        free(slot->uri);
        slot->uri = NULL;
    }
    pthread_mutex_unlock(&cache->mutex);
}

void client_stat_cache_clear(client_stat_cache_t *cache)
{
    pthread_mutex_lock(&cache->mutex);
    for (size_t i = 0; i < CLIENT_STAT_CACHE_SLOTS; i++) {
        free(cache->slots[i].uri);
        cache->slots[i].uri = NULL;
    }
    pthread_mutex_unlock(&cache->mutex);
}

int client_uri_normalize(const char *what, const char *uri, char *out, size_t out_len)
{
    if (uri_normalize(uri, out, out_len, NULL) == 0)
        return 0;
    char why[256]; /* the last-error buffer that shoal_fail rewrites */
    snprintf(why, sizeof why, "%s", shoal_last_error());
    return shoal_fail(SHOAL_EACCES, "%s %.200s: refused: %s", what, uri, why);
}

void client_meta_targets(const client_view_t *view, const char *uri, client_op_t *op)
{
    /* a file's metadata lives with its range 0, whose owner reads it through anyway */
    op->target_count = (uint32_t)client_view_range_targets(view, uri, 0, META_OWNER_TRIES, 0, 0, 0,
                                                           op->targets, CLIENT_TARGETS_MAX);
}

static void s_stat_from_reply(const msg_stat_reply_t *reply, shoal_stat_t *out)
{
    memset(out, 0, sizeof *out);
    out->size = reply->size;
    out->mtime = reply->mtime;
    out->is_dir = reply->is_dir;
    snprintf(out->version, sizeof out->version, "%s", reply->version);
}

/* Finds, for every pending uri, the first pending entry with the same uri (first[i] == i for
 * the first of each), so that a pread_many of many ranges of one file stats it once. A hash
 * table of the pending uris (borrowed keys) keeps it linear. Only called with cache misses,
 * before a round trip, so the table's allocation is not on the cached read path. */
static int s_dedupe(const char *const *uris, const int *results, size_t count, size_t *first)
{
    htab_t *seen = htab_new(count, false);
    if (!seen)
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    for (size_t i = 0; i < count; i++) {
        first[i] = i;
        if (results[i] != 1)
            continue;
        size_t len = strlen(uris[i]);
        const size_t *earlier = htab_get(seen, uris[i], len);
        if (earlier) {
            first[i] = *earlier;
        } else if (htab_put(seen, uris[i], len, &first[i], NULL) < 0) {
            htab_destroy(&seen);
            return shoal_fail(SHOAL_ENOMEM, "out of memory");
        }
    }
    htab_destroy(&seen);
    return 0;
}

/* Cache hits first; then every distinct miss in flight at once to its metadata owner; then,
 * for the stats no node could answer, the UFS one by one. The first failure sets the last
 * error. */
int client_stat_many(client_ctx_t *ctx, const char *const *uris, size_t count, bool bypass_cache,
                     shoal_stat_t *stats, int *results)
{
    client_counters_t *counters = ctx->counters;
    size_t *first = calloc(count ? count : 1, sizeof *first);
    size_t *op_for = calloc(count ? count : 1, sizeof *op_for);
    client_op_t *ops = NULL;
    if (!first || !op_for) {
        free(first);
        free(op_for);
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    }
    size_t misses = 0;
    for (size_t i = 0; i < count; i++) {
        results[i] = 1; /* pending */
        op_for[i] = SIZE_MAX;
        if (!bypass_cache && client_stat_cached(ctx->stats, uris[i], &stats[i])) {
            results[i] = 0;
            CLIENT_COUNT(counters, stat_cache_hits, 1);
        } else {
            misses++;
            CLIENT_COUNT(counters, stat_cache_misses, 1);
        }
    }
    client_view_t *view = misses ? client_view_acquire(ctx->views, ctx->session, false) : NULL;
    int rc = misses ? s_dedupe(uris, results, count, first) : 0;
    if (rc == 0 && misses > 0 && view) {
        ops = calloc(misses, sizeof *ops);
        if (!ops)
            rc = shoal_fail(SHOAL_ENOMEM, "out of memory");
    }
    size_t n = 0;
    if (rc == 0 && ops) {
        for (size_t i = 0; i < count; i++) {
            if (results[i] != 1 || first[i] != i)
                continue;
            client_op_init(&ops[n], MSG_STAT_REQ);
            ops[n].request.body.stat_request.uri = uris[i];
            ops[n].probe_when_all_down = ctx->ufs == NULL;
            client_meta_targets(view, uris[i], &ops[n]);
            op_for[i] = n++;
        }
        rc = client_session_run(ctx->session, ops, n, view->version, false);
        for (size_t i = 0; rc == 0 && i < count; i++) {
            if (op_for[i] == SIZE_MAX)
                continue;
            client_op_t *op = &ops[op_for[i]];
            if (op->result == 0) {
                s_stat_from_reply(&op->reply.body.stat_reply, &stats[i]);
                client_stat_remember(ctx->stats, uris[i], &stats[i]);
                results[i] = 0;
            } else if (!op->exhausted) {
                results[i] = op->result;
                shoal_fail(op->result, "stat %s: %s", uris[i], op->detail);
            }
        }
    }
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (results[i] != 1 || first[i] != i)
            continue;
        if (!ctx->ufs) {
            char copy[512]; /* may be the last-error buffer that shoal_fail rewrites */
            snprintf(copy, sizeof copy, "%s",
                     op_for[i] != SIZE_MAX ? ops[op_for[i]].detail
                                           : (view ? "no node to ask" : shoal_last_error()));
            results[i] =
                shoal_fail(SHOAL_EUNAVAIL, "stat %s: no node answered (%s)", uris[i], copy);
        } else {
            CLIENT_COUNT(counters, fallback_ufs, 1);
            results[i] = client_ufs_stat(ctx->ufs, uris[i], &stats[i]);
            if (results[i] == 0)
                client_stat_remember(ctx->stats, uris[i], &stats[i]);
        }
    }
    for (size_t i = 0; i < count; i++) {
        if (rc == 0 && results[i] == 1 && first[i] != i) { /* a repeat of an earlier uri */
            results[i] = results[first[i]];
            stats[i] = stats[first[i]];
        }
        if (results[i] == 1) /* only when the engine itself failed */
            results[i] = rc ? rc : SHOAL_EINTERNAL;
    }
    for (size_t k = 0; k < n; k++)
        client_op_fini(&ops[k]);
    free(ops);
    free(first);
    free(op_for);
    client_view_unref(&view);
    return rc;
}
