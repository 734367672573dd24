/*
 * ops.c - request handlers other than READ/LOAD (read.c): dispatch with the mount check, VIEW,
 * STATS, STAT and LIST through the metadata cache, and EVICT.
 */
#include "ops.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fetch.h"
#include "log.h"
#include "read.h"
#include "storeq.h"

#define OPS_LIST_DEFAULT   1000                    /* entries per LIST reply by default */
#define OPS_LIST_BUDGET    (MSG_FRAME_MAX - 16384) /* encoded bytes of entries per LIST reply */
#define OPS_EVICT_VERSIONS (META_OLD_VERSIONS + 2) /* versions of one file EVICT drops */

/* The uri of a request that has one, else NULL. */
static const char *s_request_uri(const msg_t *msg)
{
    switch (msg->header.type) {
    case MSG_STAT_REQ:
        return msg->body.stat_request.uri;
    case MSG_LIST_REQ:
        return msg->body.list_request.uri;
    case MSG_READ_REQ:
        return msg->body.read_request.uri;
    case MSG_LOAD_REQ:
        return msg->body.load_request.uri;
    case MSG_EVICT_REQ:
        return msg->body.evict_request.uri;
    default:
        return NULL;
    }
}

static void s_reply_stat(const ops_ctx_t *ctx, reply_sink_t *sink, node_request_t *request,
                         const ufs_stat_t *stat)
{
    msg_t reply;
    msg_init(&reply, MSG_STAT_REP, 0, 0);
    reply.body.stat_reply.size = stat->size;
    reply.body.stat_reply.mtime = stat->mtime;
    reply.body.stat_reply.version = stat->version;
    reply.body.stat_reply.is_dir = stat->is_dir;
    reply_send(sink, request, &reply, NULL, 0);
    stats_observe(ctx->read.stats, STATS_LAT_STAT, clock_mono_ns() - request->received_ns);
}

/* STAT, from the cache if fresh (hit worker) or from the UFS (fetch thread). Returns false
 * when it needs the UFS but may not ask it. */
static bool s_stat(const ops_ctx_t *ctx, reply_sink_t *sink, node_request_t *request,
                   bool may_ask_ufs)
{
    ufs_stat_t stat;
    int rc = read_resolve(&ctx->read, request->uri, NULL, may_ask_ufs, &stat);
    if (rc == 1)
        return false;
    if (rc < 0) {
        reply_error(sink, request, rc, "%s", shoal_last_error());
        stats_observe(ctx->read.stats, STATS_LAT_STAT, clock_mono_ns() - request->received_ns);
    } else {
        s_reply_stat(ctx, sink, request, &stat);
    }
    return true;
}

/*
 * One page of a listing: the entries after the cursor, at most max_entries (0 = the default)
 * and at most what fits in one header frame; next_cursor is the last uri sent when more
 * remain.
 */
static void s_reply_list(const ops_ctx_t *ctx, reply_sink_t *sink, node_request_t *request,
                         const meta_listing_t *listing)
{
    const msg_list_request_t *list = &request->msg.body.list_request;
    uint32_t max = list->max_entries ? list->max_entries : OPS_LIST_DEFAULT;
    if (max > MSG_LIST_ENTRIES_MAX)
        max = MSG_LIST_ENTRIES_MAX;
    size_t start = meta_listing_seek(listing, list->cursor);
    size_t left = listing->list.count - start;
    size_t count = left < max ? left : max;
    msg_entry_t *entries = count ? calloc(count, sizeof *entries) : NULL;
    if (count && entries == NULL) {
        reply_error(sink, request, SHOAL_ENOMEM, "out of memory");
        return;
    }
    size_t budget = OPS_LIST_BUDGET, used = 0;
    for (used = 0; used < count; used++) {
        const ufs_entry_t *entry = &listing->list.entries[start + used];
        msg_entry_t *out = &entries[used];
        out->uri = entry->uri;
        out->size = entry->stat.size;
        out->mtime = entry->stat.mtime;
        out->version = entry->stat.version;
        out->is_dir = entry->stat.is_dir;
        size_t cost = msg_entry_encoded_size_max(out);
        if (cost > budget)
            break;
        budget -= cost;
    }
    msg_t reply;
    msg_init(&reply, MSG_LIST_REP, 0, 0);
    reply.body.list_reply.entry_count = (uint32_t)used;
    reply.body.list_reply.entries = entries;
    reply.body.list_reply.next_cursor =
        start + used < listing->list.count && used > 0 ? entries[used - 1].uri : "";
    if (used == 0 && start < listing->list.count) {
        free(entries);
        reply_error(sink, request, SHOAL_EMSGSIZE, "a listing entry is too large to send");
        return;
    }
    reply_send(sink, request, &reply, NULL, 0);
    free(entries);
    stats_observe(ctx->read.stats, STATS_LAT_LIST, clock_mono_ns() - request->received_ns);
}

/* LIST from a fresh cached listing (hit worker) or the UFS (fetch thread). */
static bool s_list(const ops_ctx_t *ctx, reply_sink_t *sink, node_request_t *request,
                   bool may_ask_ufs)
{
    const msg_list_request_t *list = &request->msg.body.list_request;
    meta_listing_t *listing =
        meta_cache_listing_get(ctx->read.meta, request->uri, list->recursive, clock_mono_ns());
    if (listing) {
        stats_add(ctx->read.stats, STATS_META_HITS, 1);
    } else {
        if (!may_ask_ufs)
            return false;
        stats_add(ctx->read.stats, STATS_META_MISSES, 1);
        stats_add(ctx->read.stats, STATS_UFS_REQUESTS, 1);
        stats_add(ctx->read.stats, STATS_ORIGIN_LISTS, 1);
        ufs_list_t entries;
        ufs_list_init(&entries);
        int rc = ufs_list(ctx->read.ufs, request->uri, list->recursive, &entries);
        if (rc < 0) {
            stats_add(ctx->read.stats, STATS_UFS_ERRORS, 1);
            ufs_list_fini(&entries);
            if (rc != SHOAL_ENOENT)
                log_warn("list %s: %s", request->uri, shoal_last_error());
            reply_error(sink, request, rc, "%s", shoal_last_error());
            return true;
        }
        listing = meta_cache_listing_put(ctx->read.meta, request->uri, list->recursive, &entries,
                                         clock_mono_ns());
        if (listing == NULL) {
            reply_error(sink, request, SHOAL_ENOMEM, "out of memory");
            return true;
        }
    }
    s_reply_list(ctx, sink, request, listing);
    meta_listing_release(&listing);
    return true;
}

/* Appends a counter to the STATS reply being built. */
static void s_counter(msg_counter_t *counters, uint32_t *count, const char *name, uint64_t value)
{
    counters[*count].name = name;
    counters[*count].value = value;
    (*count)++;
}

static void s_stats(const ops_ctx_t *ctx, reply_sink_t *sink, node_request_t *request)
{
    msg_counter_t counters[STATS_COUNTER_COUNT + 28];
    uint32_t count = 0;
    for (int i = 0; i < STATS_COUNTER_COUNT; i++)
        s_counter(counters, &count, stats_counter_name((stats_counter_t)i),
                  stats_get(ctx->read.stats, (stats_counter_t)i));
    pagestore_stats_t store;
    pagestore_stats(ctx->read.store, &store);
    /* every request the UFS handle sent (retries, redirects, a connector's extra stat) */
    s_counter(counters, &count, "origin_requests", ufs_requests(ctx->read.ufs));
    s_counter(counters, &count, "used_bytes", store.usage_bytes);
    s_counter(counters, &count, "capacity_bytes", store.capacity_bytes);
    s_counter(counters, &count, "pages_stored", store.pages);
    s_counter(counters, &count, "evictions", store.evictions);
    s_counter(counters, &count, "evicted_pages", store.evicted_pages);
    s_counter(counters, &count, "evicted_bytes", store.evicted_bytes);
    s_counter(counters, &count, "pagestore_puts", store.puts);
    s_counter(counters, &count, "flushed_puts", atomic_load(ctx->flushed_puts));
    s_counter(counters, &count, "pagestore_hits", store.hits);
    s_counter(counters, &count, "pagestore_misses", store.misses);
    s_counter(counters, &count, "pagestore_promotions", store.promotions);
    s_counter(counters, &count, "pagestore_corruptions", store.corruptions);
    s_counter(counters, &count, "pagestore_write_errors", store.write_errors);
    s_counter(counters, &count, "pagestore_read_errors", store.read_errors);
    s_counter(counters, &count, "pagestore_faults", store.faults);
    s_counter(counters, &count, "pagestore_generations", store.generations);
    s_counter(counters, &count, "fetch_queue_depth", fetch_pool_depth(ctx->fetch));
    s_counter(counters, &count, "store_queue_depth", storeq_depth(ctx->read.storeq));
    int64_t inflight = atomic_load(ctx->inflight);
    s_counter(counters, &count, "inflight_requests", inflight > 0 ? (uint64_t)inflight : 0);
    s_counter(counters, &count, "view_version", membership_version(ctx->members));
    s_counter(counters, &count, "view_members", membership_member_count(ctx->members));
    s_counter(counters, &count, "page_size", ctx->read.page_size);
    s_counter(counters, &count, "range_pages", ctx->read.range_pages);
    uint64_t buffers_mapped, buffers_reused;
    range_pool_counts(ctx->read.ranges, &buffers_mapped, &buffers_reused);
    s_counter(counters, &count, "range_buffers_mapped", buffers_mapped);
    s_counter(counters, &count, "range_buffers_reused", buffers_reused);

    uint64_t bounds[STATS_BUCKETS];
    uint64_t counts[STATS_HISTOGRAM_COUNT][STATS_BUCKETS];
    msg_histogram_t histograms[STATS_HISTOGRAM_COUNT];
    for (unsigned b = 0; b < STATS_BUCKETS; b++)
        bounds[b] = stats_bucket_bound(b);
    for (int h = 0; h < STATS_HISTOGRAM_COUNT; h++) {
        for (int b = 0; b < STATS_BUCKETS; b++)
            counts[h][b] =
                atomic_load_explicit(&ctx->read.stats->buckets[h][b], memory_order_relaxed);
        histograms[h].name = stats_histogram_name((stats_histogram_t)h);
        histograms[h].bucket_count = STATS_BUCKETS;
        histograms[h].bounds = bounds;
        histograms[h].counts = counts[h];
    }
    msg_t reply;
    msg_init(&reply, MSG_STATS_REP, 0, 0);
    reply.body.stats_reply.counter_count = count;
    reply.body.stats_reply.counters = counters;
    reply.body.stats_reply.histogram_count = STATS_HISTOGRAM_COUNT;
    reply.body.stats_reply.histograms = histograms;
    reply_send(sink, request, &reply, NULL, 0);
}

/* Drops every page of each known version of one file (`version_hint` adds one, may be NULL),
 * asking the UFS for the current version when none is known. Adds to the totals. */
static int s_evict_file(const ops_ctx_t *ctx, const char *uri, const char *version_hint,
                        bool may_stat, uint64_t *pages, uint64_t *bytes)
{
    char versions[OPS_EVICT_VERSIONS][UFS_VERSION_MAX];
    size_t count = meta_cache_versions(ctx->read.meta, uri, versions, OPS_EVICT_VERSIONS - 1);
    if (version_hint && version_hint[0]) {
        bool known = false;
        for (size_t i = 0; i < count; i++)
            known = known || strcmp(versions[i], version_hint) == 0;
        if (!known)
            snprintf(versions[count++], UFS_VERSION_MAX, "%s", version_hint);
    }
    if (count == 0 && may_stat) {
        ufs_stat_t stat;
        stats_add(ctx->read.stats, STATS_UFS_REQUESTS, 1);
        stats_add(ctx->read.stats, STATS_ORIGIN_HEADS, 1);
        int rc = ufs_stat(ctx->read.ufs, uri, &stat);
        if (rc < 0)
            stats_add(ctx->read.stats, STATS_UFS_ERRORS, 1);
        if (rc == 0 && !stat.is_dir)
            snprintf(versions[count++], UFS_VERSION_MAX, "%s", stat.version);
        else if (rc < 0 && rc != SHOAL_ENOENT)
            return rc;
    }
    for (size_t i = 0; i < count; i++) {
        uint8_t file_key[PAGESTORE_FILE_KEY_SIZE];
        pagestore_file_key(uri, versions[i], file_key);
        uint64_t file_pages = 0, file_bytes = 0;
        pagestore_count(ctx->read.store, file_key, &file_pages, &file_bytes);
        int rc = pagestore_delete_file(ctx->read.store, file_key);
        if (rc < 0)
            return rc;
        *pages += file_pages;
        *bytes += file_bytes;
    }
    meta_cache_forget(ctx->read.meta, uri);
    return 0;
}

/*
 * EVICT: one file, or with `recursive` every file below the prefix that the UFS lists now or
 * the metadata cache remembers (files deleted at the UFS still have their pages dropped, as
 * long as the cache knows them).
 */
static void s_evict(const ops_ctx_t *ctx, reply_sink_t *sink, node_request_t *request)
{
    const msg_evict_request_t *evict = &request->msg.body.evict_request;
    uint64_t pages = 0, bytes = 0;
    int rc = 0;
    /* reads answered before this EVICT may still be storing their pages: let them finish, or
     * their puts would bring pages back after the delete */
    flight_quiesce(ctx->read.flights);
    if (!evict->recursive) {
        rc = s_evict_file(ctx, request->uri, NULL, true, &pages, &bytes);
    } else {
        ufs_list_t listing;
        ufs_list_init(&listing);
        stats_add(ctx->read.stats, STATS_UFS_REQUESTS, 1);
        stats_add(ctx->read.stats, STATS_ORIGIN_LISTS, 1);
        int list_rc = ufs_list(ctx->read.ufs, request->uri, true, &listing);
        if (list_rc < 0 && list_rc != SHOAL_ENOENT) {
            stats_add(ctx->read.stats, STATS_UFS_ERRORS, 1);
            log_warn("evict: list %s: %s (evicting what the cache knows)", request->uri,
                     shoal_last_error());
        }
        for (size_t i = 0; rc == 0 && i < listing.count; i++)
            if (!listing.entries[i].stat.is_dir)
                rc = s_evict_file(ctx, listing.entries[i].uri, listing.entries[i].stat.version,
                                  false, &pages, &bytes);
        ufs_list_fini(&listing);
        char **uris = NULL;
        size_t uri_count = 0;
        if (rc == 0)
            rc = meta_cache_uris_under(ctx->read.meta, request->uri, &uris, &uri_count);
        for (size_t i = 0; i < uri_count; i++) {
            if (rc == 0)
                rc = s_evict_file(ctx, uris[i], NULL, false, &pages, &bytes);
            free(uris[i]);
        }
        free(uris);
    }
    if (rc < 0) {
        reply_error(sink, request, rc, "evict %s: %s", request->uri, shoal_last_error());
        return;
    }
    stats_add(ctx->read.stats, STATS_EVICT_PAGES, pages);
    stats_add(ctx->read.stats, STATS_EVICT_BYTES, bytes);
    log_info("evicted %s%s: %llu pages, %llu bytes", request->uri,
             evict->recursive ? " (recursive)" : "", (unsigned long long)pages,
             (unsigned long long)bytes);
    msg_t reply;
    msg_init(&reply, MSG_EVICT_REP, 0, 0);
    reply.body.evict_reply.pages_evicted = pages;
    reply.body.evict_reply.bytes_evicted = bytes;
    reply_send(sink, request, &reply, NULL, 0);
}

void ops_dispatch(const ops_ctx_t *ctx, reply_sink_t *sink, node_request_t **request_p)
{
    assert(ctx != NULL && sink != NULL && request_p != NULL && *request_p != NULL);
    node_request_t *request = *request_p;
    *request_p = NULL;
    uint32_t type = request->msg.header.type;
    const char *uri = s_request_uri(&request->msg);
    if (uri != NULL && mount_check(ctx->mounts, uri, request->uri, sizeof request->uri) < 0) {
        reply_error(sink, request, SHOAL_EACCES, "%s", shoal_last_error());
        request_finish(&request);
        return;
    }
    bool answered = false;
    switch (type) {
    case MSG_VIEW_REQ:
        if (membership_encode_reply(ctx->members, request->msg.header.request_id, &sink->buf) == 0)
            reply_send_encoded(sink, request);
        else
            reply_error(sink, request, SHOAL_EINTERNAL, "cannot encode the view");
        answered = true;
        break;
    case MSG_STATS_REQ:
        s_stats(ctx, sink, request);
        answered = true;
        break;
    case MSG_STAT_REQ:
        answered = s_stat(ctx, sink, request, false);
        break;
    case MSG_LIST_REQ:
        answered = s_list(ctx, sink, request, false);
        break;
    case MSG_READ_REQ:
        if (request->msg.body.read_request.flags & MSG_READ_FORWARDED)
            stats_add(ctx->read.stats, STATS_FORWARDED_IN, 1);
        answered = read_try_hit(&ctx->read, sink, request);
        break;
    case MSG_LOAD_REQ:
    case MSG_EVICT_REQ:
        break;
    default:
        reply_error(sink, request, SHOAL_ENOTSUP, "%s is not served", msg_type_name(type));
        answered = true;
        break;
    }
    if (answered) {
        request_finish(&request);
        return;
    }
    int rc = fetch_pool_submit(ctx->fetch, request);
    if (rc < 0) {
        if (rc == SHOAL_EBUSY)
            stats_add(ctx->read.stats, STATS_BUSY, 1);
        reply_error(sink, request, rc,
                    rc == SHOAL_EBUSY ? "the node's fetch queue is full; try another node"
                                      : "the node is shutting down");
        request_finish(&request);
    }
}

void ops_fetch(const ops_ctx_t *ctx, reply_sink_t *sink, node_request_t **request_p)
{
    assert(ctx != NULL && sink != NULL && request_p != NULL && *request_p != NULL);
    node_request_t *request = *request_p;
    *request_p = NULL;
    switch (request->msg.header.type) {
    case MSG_STAT_REQ:
        s_stat(ctx, sink, request, true);
        break;
    case MSG_LIST_REQ:
        s_list(ctx, sink, request, true);
        break;
    case MSG_READ_REQ:
        read_serve(&ctx->read, sink, request);
        break;
    case MSG_LOAD_REQ:
        read_load(&ctx->read, sink, request);
        break;
    case MSG_EVICT_REQ:
        s_evict(ctx, sink, request);
        break;
    default:
        reply_error(sink, request, SHOAL_EINTERNAL, "unexpected %s on a fetch thread",
                    msg_type_name(request->msg.header.type));
        break;
    }
    request_finish(&request);
}
