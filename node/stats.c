/*
 * stats.c - counter names and the log2 latency histograms (see stats.h).
 */
#include "stats.h"

#include <string.h>

static const char *const s_counter_names[STATS_COUNTER_COUNT] = {
    [STATS_REQUESTS] = "requests",
    [STATS_ERRORS_REPLIED] = "errors_replied",
    [STATS_MALFORMED] = "malformed_requests",
    [STATS_DROPPED] = "dropped_frames",
    [STATS_BUSY] = "busy_rejections",
    [STATS_READS] = "reads",
    [STATS_PAGE_HITS] = "page_hits",
    [STATS_PAGE_MISSES] = "page_misses",
    [STATS_BYTES_SERVED] = "bytes_served",
    [STATS_UFS_REQUESTS] = "ufs_requests",
    [STATS_UFS_READS] = "ufs_reads",
    [STATS_UFS_ERRORS] = "ufs_errors",
    [STATS_UFS_STALE] = "ufs_stale",
    [STATS_UFS_BYTES_READ] = "ufs_bytes_read",
    [STATS_SINGLEFLIGHT_JOINS] = "singleflight_joins",
    [STATS_STORE_WRITE_ERRORS] = "store_write_errors",
    [STATS_META_HITS] = "meta_hits",
    [STATS_META_MISSES] = "meta_misses",
    [STATS_LOAD_PAGES_LOADED] = "load_pages_loaded",
    [STATS_LOAD_PAGES_CACHED] = "load_pages_cached",
    [STATS_EVICT_PAGES] = "evict_pages",
    [STATS_EVICT_BYTES] = "evict_bytes",
    [STATS_CANCELED] = "canceled_requests",
    [STATS_FORWARDED_IN] = "forwarded_in",
    [STATS_FORWARDS] = "forwards",
    [STATS_FORWARD_FAILURES] = "forward_failures",
    [STATS_PAGE_FLUSHES] = "page_flushes",
    [STATS_READ_PARTIAL_REPLIES] = "read_partial_replies",
    [STATS_ORIGIN_GETS] = "origin_gets",
    [STATS_ORIGIN_HEADS] = "origin_heads",
    [STATS_ORIGIN_LISTS] = "origin_lists",
    [STATS_COLD_READS] = "cold_reads",
    [STATS_NEGATIVE_HITS] = "negative_hits",
    [STATS_REVALIDATIONS] = "revalidations",
    [STATS_REVALIDATION_CHANGES] = "revalidation_changes",
    [STATS_STALE_SERVED] = "stale_served",
    [STATS_META_RECALLED] = "meta_recalled",
    [STATS_REVALIDATE_READS] = "revalidate_reads",
    [STATS_FLIGHT_FROM_STORE] = "flight_from_store",
    [STATS_LOCAL_CONNECTIONS] = "local_connections",
    [STATS_LOCAL_REFUSED] = "local_refused",
    [STATS_LOCAL_LOCATES] = "local_locates",
    [STATS_LOCAL_PAGES] = "local_pages",
    [STATS_LOCAL_BYTES] = "local_bytes",
    [STATS_LOCAL_MISSES] = "local_misses",
    [STATS_LOCAL_FDS_SENT] = "local_fds_sent",
};

static const char *const s_histogram_names[STATS_HISTOGRAM_COUNT] = {
    [STATS_LAT_READ_HIT] = "read_hit_latency_us",
    [STATS_LAT_READ_MISS] = "read_miss_latency_us",
    [STATS_LAT_STAT] = "stat_latency_us",
    [STATS_LAT_LIST] = "list_latency_us",
};

void stats_init(stats_t *stats)
{
    for (int i = 0; i < STATS_COUNTER_COUNT; i++)
        atomic_init(&stats->counters[i], 0);
    for (int h = 0; h < STATS_HISTOGRAM_COUNT; h++)
        for (int b = 0; b < STATS_BUCKETS; b++)
            atomic_init(&stats->buckets[h][b], 0);
}

void stats_observe(stats_t *stats, stats_histogram_t histogram, int64_t elapsed_ns)
{
    uint64_t us = elapsed_ns > 0 ? (uint64_t)elapsed_ns / 1000 : 0;
    unsigned bucket = 0;
    while (bucket < STATS_BUCKETS - 1 && us > (1ull << bucket))
        bucket++;
    atomic_fetch_add_explicit(&stats->buckets[histogram][bucket], 1, memory_order_relaxed);
}

const char *stats_counter_name(stats_counter_t counter)
{
    return (unsigned)counter < STATS_COUNTER_COUNT ? s_counter_names[counter] : "unknown";
}

const char *stats_histogram_name(stats_histogram_t histogram)
{
    return (unsigned)histogram < STATS_HISTOGRAM_COUNT ? s_histogram_names[histogram] : "unknown";
}

uint64_t stats_bucket_bound(unsigned index)
{
    return index >= STATS_BUCKETS - 1 ? UINT64_MAX : 1ull << index;
}
