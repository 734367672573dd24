/*
 * counters.h - the client counters: atomics kept in the client object, counted by every layer
 * of client/ through a borrowed pointer and shown under "client" in shoal_stats. A leaf.
 */
#ifndef SHOAL_CLIENT_COUNTERS_H
#define SHOAL_CLIENT_COUNTERS_H

#include <stdatomic.h>
#include <stdint.h>

/* A forked child inherits the parent's values and counts on from there. The X-macro keeps the
 * JSON names and the fields in one list. */
#define CLIENT_COUNTERS(X)                                                                         \
    X(requests)            /* requests sent to nodes */                                            \
    X(retries)             /* requests sent again to another node after a failure */               \
    X(timeouts)            /* nodes failed for answering nothing within timeout_ms */              \
    X(disconnects)         /* busy nodes failed at once because their connection dropped */        \
    X(bad_replies)         /* replies refused: malformed, wrong type, wrong frames */              \
    X(node_errors)         /* ERROR replies */                                                     \
    X(partial_replies)     /* partial READ replies (more = true) taken */                          \
    X(fallback_next_owner) /* requests sent to a later owner in HRW order */                       \
    X(fallback_no_cache)   /* reads sent to a non-owner with NO_CACHE */                           \
    X(fallback_ufs)        /* stats, lists and ranges served by the client's own UFS */            \
    X(view_refreshes)      /* views fetched */                                                     \
    X(view_failures)       /* view fetches no node answered */                                     \
    X(stale_retries)       /* read rounds repeated after ESTALE, from scratch */                   \
    X(change_restarts)     /* reads (pread_many entries) restarted because their file changed */   \
    X(reads_without_stat)  /* reads whose stat came from their first range's reply, no STAT */     \
    X(stat_cache_hits)     /* stats answered from the client's cache */                            \
    X(stat_cache_misses)   /* stats that asked a node */                                           \
    X(stats_by_read)       /* shoal_stat_read calls answered by a READ of the first byte */        \
    X(reads)               /* shoal_pread calls and shoal_pread_many entries */                    \
    X(ranges)              /* range requests those reads were split into */                        \
    X(bytes_read)          /* bytes returned by reads */                                           \
    X(forks)               /* times a forked child built its own sockets */                        \
    X(bytes_short_circuit) /* bytes read by pread from a local node's data files */                \
    X(bytes_zmq)           /* bytes copied from READ replies (ZeroMQ) */                           \
    X(bytes_ufs)           /* bytes the client read from the UFS itself */                         \
    X(local_locates)       /* LOCATE requests sent to local nodes */                               \
    X(local_misses)        /* short-circuit reads that left bytes to the ZeroMQ path */            \
    X(local_bad_sums)      /* chunks whose XXH3 did not match (never served) */                    \
    X(local_reconnects)    /* local connections made again (node restart, closed socket) */        \
    X(local_refused)       /* local nodes that refused us (EACCES): ZeroMQ serves */               \
    X(local_cache_hits)    /* LOCATEs not sent: every page of the piece was located recently */    \
    X(local_parallel_runs) /* big short-circuit batches read on helper threads too */

typedef struct client_counters {
#define CLIENT_COUNTER_FIELD(name) _Atomic uint64_t name;
    CLIENT_COUNTERS(CLIENT_COUNTER_FIELD)
#undef CLIENT_COUNTER_FIELD
} client_counters_t;

/* Adds n to one counter of `counters` (a client_counters_t *). */
#define CLIENT_COUNT(counters, name, n)                                                            \
    atomic_fetch_add_explicit(&(counters)->name, (uint64_t)(n), memory_order_relaxed)

struct json_t;

/* The counters as a JSON object {"name": value, ...} (caller decrefs); NULL on out of
 * memory. */
struct json_t *client_counters_json(const client_counters_t *counters);

#endif
