/*
 * stats.h - the node's counters and latency histograms: lock-free atomics bumped on the data
 * path, read by STATS. Counter names are stable snake_case (documented in node/README.md).
 */
#ifndef SHOAL_NODE_STATS_H
#define SHOAL_NODE_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/* Counters kept by the node itself (pagestore's are added when STATS is answered). Keep in step
 * with s_counter_names in stats.c and with node/README.md. */
typedef enum stats_counter {
    STATS_REQUESTS = 0,         /* requests received (well-formed or not) */
    STATS_ERRORS_REPLIED,       /* ERROR replies sent */
    STATS_MALFORMED,            /* requests refused with EPROTO, or dropped */
    STATS_DROPPED,              /* frames dropped without a reply (no request id to answer) */
    STATS_BUSY,                 /* requests refused with EBUSY (fetch queue full) */
    STATS_READS,                /* READ requests answered with data */
    STATS_PAGE_HITS,            /* pages served from the store */
    STATS_PAGE_MISSES,          /* pages that had to come from the UFS */
    STATS_BYTES_SERVED,         /* page bytes sent in READ replies */
    STATS_UFS_REQUESTS,         /* ufs_read/ufs_stat/ufs_list calls */
    STATS_UFS_READS,            /* ufs_read calls (one per missing range) */
    STATS_UFS_ERRORS,           /* UFS calls that failed (ENOENT included) */
    STATS_UFS_STALE,            /* reads refused because the file changed (ESTALE) */
    STATS_UFS_BYTES_READ,       /* bytes read from the UFS */
    STATS_SINGLEFLIGHT_JOINS,   /* misses that waited for another request's UFS read */
    STATS_STORE_WRITE_ERRORS,   /* pages that could not be stored (served anyway) */
    STATS_META_HITS,            /* STAT/LIST/version lookups answered from the metadata cache */
    STATS_META_MISSES,          /* ... that went to the UFS (absent or past the TTL) */
    STATS_LOAD_PAGES_LOADED,    /* pages fetched by LOAD */
    STATS_LOAD_PAGES_CACHED,    /* pages LOAD found already cached */
    STATS_EVICT_PAGES,          /* pages dropped by EVICT */
    STATS_EVICT_BYTES,          /* bytes dropped by EVICT */
    STATS_CANCELED,             /* requests answered ECANCELED at shutdown */
    STATS_FORWARDED_IN,         /* READs received with FORWARDED (from a non-owner) */
    STATS_FORWARDS,             /* missing ranges this node asked their owner for */
    STATS_FORWARD_FAILURES,     /* ... where the owner failed, so this node read the UFS */
    STATS_PAGE_FLUSHES,         /* periodic flushes of new pages to disk (--flush-interval) */
    STATS_READ_PARTIAL_REPLIES, /* partial READ replies (more = true) of streamed READs */
    STATS_ORIGIN_GETS,          /* UFS reads (GETs; a cold one is also the file's stat) */
    STATS_ORIGIN_HEADS,         /* UFS stats (HEADs: STAT, a version without size, revalidation) */
    STATS_ORIGIN_LISTS,         /* UFS listings */
    STATS_COLD_READS,           /* ranges read without a version: the GET learnt it */
    STATS_NEGATIVE_HITS,        /* requests answered ENOENT from the negative cache */
    STATS_REVALIDATIONS,        /* background revalidations of metadata past its TTL */
    STATS_REVALIDATION_CHANGES, /* ... that found a new version (or the file gone) */
    STATS_STALE_SERVED,         /* READs served from metadata past its TTL (revalidating) */
    STATS_META_RECALLED,        /* metadata read back from disk (recorded before a restart) */
    STATS_REVALIDATE_READS,     /* versionless READs with REVALIDATE (the client saw a change) */
    STATS_FLIGHT_FROM_STORE,    /* range flights led just after the pages were stored: no UFS */
    STATS_LOCAL_CONNECTIONS,    /* local-socket connections admitted (node/local.c) */
    STATS_LOCAL_REFUSED,        /* ... refused: peer not admitted (EACCES) or too many (EBUSY) */
    STATS_LOCAL_LOCATES,        /* LOCATE requests answered with a LOCATE_REP */
    STATS_LOCAL_PAGES,          /* pages located (held, sent to a short-circuit client) */
    STATS_LOCAL_BYTES,          /* bytes of those pages */
    STATS_LOCAL_MISSES,         /* pages a LOCATE asked for that were not located */
    STATS_LOCAL_FDS_SENT,       /* generation descriptors passed (SCM_RIGHTS) */
    STATS_COUNTER_COUNT
} stats_counter_t;

typedef enum stats_histogram {
    STATS_LAT_READ_HIT = 0, /* READ answered from the store by a hit worker */
    STATS_LAT_READ_MISS,    /* READ that needed the fetch pool */
    STATS_LAT_STAT,         /* STAT */
    STATS_LAT_LIST,         /* LIST */
    STATS_HISTOGRAM_COUNT
} stats_histogram_t;

/* Bucket i counts latencies <= 2^i microseconds (the last bucket takes everything above). */
#define STATS_BUCKETS 32

typedef struct stats {
    _Atomic uint64_t counters[STATS_COUNTER_COUNT];                 /* by stats_counter_t */
    _Atomic uint64_t buckets[STATS_HISTOGRAM_COUNT][STATS_BUCKETS]; /* by histogram, bucket */
} stats_t;

/* Zeroes every counter and bucket. */
void stats_init(stats_t *stats);

/* Adds `value` to a counter. Thread safe, lock-free. */
static inline void stats_add(stats_t *stats, stats_counter_t counter, uint64_t value)
{
    atomic_fetch_add_explicit(&stats->counters[counter], value, memory_order_relaxed);
}

/* Reads a counter. */
static inline uint64_t stats_get(stats_t *stats, stats_counter_t counter)
{
    return atomic_load_explicit(&stats->counters[counter], memory_order_relaxed);
}

/* Records one latency of `elapsed_ns` nanoseconds. Thread safe. */
void stats_observe(stats_t *stats, stats_histogram_t histogram, int64_t elapsed_ns);

/* Stable name of a counter ("page_hits") or histogram ("read_hit_latency_us"). Static. */
const char *stats_counter_name(stats_counter_t counter);
const char *stats_histogram_name(stats_histogram_t histogram);

/* Upper bound of bucket `index` in microseconds (2^index; UINT64_MAX for the last). */
uint64_t stats_bucket_bound(unsigned index);

#endif
