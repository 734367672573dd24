/*
 * client_internal.h - the inside of libshoal: the client object, its per-process state (ZeroMQ
 * context, session pool, view, stat cache), the pipelined request engine and the placement
 * helpers. Private to client/; the tests include it to reach the pure parts.
 */
#ifndef SHOAL_CLIENT_INTERNAL_H
#define SHOAL_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hrw.h"
#include "proto.h"
#include "shoal.h"

#define CLIENT_TIMEOUT_MS_DEFAULT  10000 /* options.timeout_ms when 0 */
#define CLIENT_META_TTL_MS_DEFAULT 1000  /* options.metadata_ttl_ms when 0 */
#define CLIENT_TARGETS_MAX         4     /* nodes one request may try before the UFS */
#define CLIENT_OWNER_TRIES         2     /* owners in HRW order tried with a normal READ */
#define CLIENT_NO_CACHE_TRIES      1     /* other live nodes then tried with NO_CACHE */
#define CLIENT_DOWN_MS             2000  /* a node that timed out is skipped this long */
#define CLIENT_STALE_RETRIES       2     /* re-stat and re-read this often on ESTALE */
#define CLIENT_STAT_CACHE_SLOTS    512   /* direct-mapped stat cache entries per process */
#define CLIENT_VIEW_RETRY_MS       1000  /* after a failed view fetch, wait this long */
#define CLIENT_VIEW_STALE_GAP_MS   200   /* refresh on a newer view_version at most this often */
#define CLIENT_HEARTBEAT_IVL_MS    1000  /* ZMTP PING to each node this often */
#define CLIENT_HEARTBEAT_TIMEOUT_MS                                                                \
    3000                               /* no byte from a node this long after a PING: link down    \
                                        */
#define CLIENT_CONNECT_TIMEOUT_MS 3000 /* TCP connect and ZMTP handshake bound: link down after */
#define CLIENT_MAX_SOCKETS        8192 /* ZMQ_MAX_SOCKETS per process (3 per node per session) */
#define CLIENT_MALLOC_PRIME_BYTES (16u << 20) /* glibc mmap threshold s_malloc_prime sets */

/* Client counters: atomics in the client, shown under "client" in shoal_stats. A forked child
 * inherits the parent's values and counts on from there. The X-macro keeps the JSON names and
 * the fields in one list. */
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
    X(stale_retries)       /* reads repeated after ESTALE with a fresh stat */                     \
    X(stat_cache_hits)     /* stats answered from the client's cache */                            \
    X(stat_cache_misses)   /* stats that asked a node */                                           \
    X(reads)               /* shoal_pread calls and shoal_pread_many entries */                    \
    X(ranges)              /* range requests those reads were split into */                        \
    X(bytes_read)          /* bytes returned by reads */                                           \
    X(forks)               /* times a forked child built its own sockets */

typedef struct client_counters {
#define CLIENT_COUNTER_FIELD(name) _Atomic uint64_t name;
    CLIENT_COUNTERS(CLIENT_COUNTER_FIELD)
#undef CLIENT_COUNTER_FIELD
} client_counters_t;

#define CLIENT_COUNT(client, name, n)                                                              \
    atomic_fetch_add_explicit(&(client)->counters.name, (uint64_t)(n), memory_order_relaxed)

/* One member of a view, as the VIEW reply described it. Strings point into the view. */
typedef struct client_member {
    uint8_t id[MSG_NODE_ID_SIZE]; /* node id */
    char *name;                   /* --name of the node; may be "" */
    char *endpoint;               /* data endpoint "tcp://host:port" */
    char *gossip_endpoint;        /* gossip endpoint; may be "" */
    uint32_t state;               /* msg_member_state_t */
    uint64_t incarnation;         /* SWIM incarnation */
    uint64_t weight;              /* capacity bytes: HRW weight */
    uint64_t last_heard_ms;       /* as the answering node reported it */
} client_member_t;

/* An immutable membership snapshot, shared by reference count between the process state and
 * the calls using it. Invariant: hrw[i] describes members[i]; page_size, range_pages > 0. */
typedef struct client_view client_view_t;
struct client_view {
    _Atomic int refs;         /* references; freed at 0 */
    uint64_t version;         /* view_version of the answering node */
    uint64_t page_size;       /* cluster page size */
    uint32_t range_pages;     /* pages per range */
    size_t count;             /* members */
    client_member_t *members; /* count members */
    hrw_member_t *hrw;        /* count placement entries (live = alive or suspect) */
    char *answered_by;        /* endpoint that sent this view */
};

/* A node this process recently found dead (timeout): skipped until `until_ms`. */
typedef struct client_down {
    char *endpoint;   /* data endpoint */
    int64_t until_ms; /* monotonic ms; 0 = free slot */
} client_down_t;

/* One stat cache slot. */
typedef struct client_stat_slot {
    char *uri;          /* key; NULL = empty */
    shoal_stat_t stat;  /* cached answer */
    int64_t expires_ms; /* monotonic ms after which the slot is ignored */
} client_stat_slot_t;

struct client_session;

/* Everything that belongs to one process: a forked child never uses its parent's copy (whose
 * mutex may be held by a thread that does not exist in the child, and whose ZeroMQ context
 * must not be touched); it abandons it and builds its own on first use. */
typedef struct client_proc {
    pid_t pid;                   /* process that built this state */
    void *zmq_context;           /* ZeroMQ context of this process */
    pthread_mutex_t mutex;       /* guards every field below */
    struct client_session *idle; /* sessions not in use (a stack) */
    struct client_session *all;  /* every session, for destroy */
    client_view_t *view;         /* current view, or NULL before the first fetch */
    bool view_stale;             /* a reply carried a newer view_version, or a timeout */
    int64_t view_retry_after_ms; /* no fetch before this (after a failed one) */
    int64_t view_fetched_ms;     /* when the current view was fetched */
    client_down_t *down;         /* nodes found dead recently */
    size_t down_count;           /* entries in down */
    /* Lock-free shortcuts for the per-request checks (read without the mutex): */
    _Atomic uint64_t view_version;  /* version of `view` (0 = none) */
    _Atomic int64_t down_until_max; /* no node is marked down after this (monotonic ms) */
    client_stat_slot_t stat_cache[CLIENT_STAT_CACHE_SLOTS]; /* direct-mapped by uri hash */
} client_proc_t;

/* The client. Immutable after shoal_client_new except for the atomics. */
struct shoal_client {
    char **seeds;                  /* "tcp://host:port" endpoints */
    size_t seed_count;             /* entries in seeds */
    int timeout_ms;                /* per request */
    int metadata_ttl_ms;           /* stat cache TTL; < 0 disables the cache */
    bool no_ufs_fallback;          /* never read the UFS directly */
    struct ufs *ufs;               /* connectors for the fallback; NULL without */
    _Atomic(client_proc_t *) proc; /* state of the process that last used the client */
    client_counters_t counters;    /* see CLIENT_COUNTERS */
};

/* ---- process state and time (client.c) ---- */

/* Monotonic milliseconds. */
int64_t client_now_ms(void);

/* Returns this process's state, building it (and abandoning a parent's) on first use after a
 * fork. NULL with a last error when memory or ZeroMQ fails. Borrowed for the client's life. */
client_proc_t *client_proc_get(shoal_client_t *client);

/* What every public call holds while it runs: this process's state, a session of sockets and
 * a referenced view (NULL when no node answered VIEW: the call then falls back to the UFS). */
typedef struct client_ctx {
    shoal_client_t *client;         /* the client */
    client_proc_t *proc;            /* this process's state */
    struct client_session *session; /* sockets, taken from the pool */
    struct client_view *view;       /* referenced view, or NULL */
} client_ctx_t;

/* Starts a call: clears the last error, gets the process state and a session, and the view
 * (fetching it when needed; a failure leaves view NULL and the last error set). Returns 0 or
 * a negative code (memory, ZeroMQ). */
int client_ctx_begin(shoal_client_t *client, client_ctx_t *ctx);
/* Gives the session back and drops the view. */
void client_ctx_end(client_ctx_t *ctx);

/* The client counters as a JSON object (caller decrefs); NULL on out of memory. */
struct json_t *client_counters_json(shoal_client_t *client);

/* A target of a request: one node endpoint and the READ flags to send it with. */
typedef struct client_target {
    const char *endpoint; /* borrowed from the view or the seeds for the call */
    uint32_t read_flags;  /* MSG_READ_NO_CACHE for the read-through fallback */
    bool owner;           /* an owner in HRW order (counts fallback_next_owner when not first) */
} client_target_t;

/* ---- placement and view (view.c) ---- */

void client_view_ref(client_view_t *view);
/* Drops a reference and sets *view_p to NULL; safe on NULL. */
void client_view_unref(client_view_t **view_p);

/* Returns a referenced current view (caller unrefs), fetching one when there is none, when it
 * is stale, or when `force`. NULL with a last error when no node answers and there is no old
 * view to fall back on. */
client_view_t *client_view_acquire(shoal_client_t *client, client_proc_t *proc,
                                   struct client_session *session, bool force);

/* A reply carried `seen_version`: marks the view stale when that is newer than ours. */
void client_view_mark_stale(client_proc_t *proc, uint64_t seen_version);
/* A node stopped answering: the view is fetched again on the next call. */
void client_view_force_stale(client_proc_t *proc);

/* Fills up to `max` targets for `key` in HRW order among live members: the first
 * `owner_tries` as owners with `owner_flags`, the next `other_tries` with `other_flags`.
 * Returns how many were written. */
size_t client_view_targets(const client_view_t *view, const uint8_t *key, size_t key_len,
                           size_t owner_tries, uint32_t owner_flags, size_t other_tries,
                           uint32_t other_flags, client_target_t *out, size_t max);

/* Record a node that stopped answering, and ask whether one is currently skipped. */
void client_down_mark(client_proc_t *proc, const char *endpoint);
bool client_down_check(client_proc_t *proc, const char *endpoint);

/* The 16-byte file key of (uri, version): BLAKE2b-128 of uri "\0" version. */
void client_file_key(const char *uri, const char *version, uint8_t out[16]);

/* ---- range splitting (range.c) ---- */

/* One placement range piece of a read. */
typedef struct client_range {
    uint64_t range_index; /* offset / range_bytes */
    uint64_t offset;      /* first byte of the piece */
    uint64_t length;      /* bytes in the piece (> 0) */
} client_range_t;

/* Number of pieces [offset, offset + length) splits into at multiples of range_bytes. */
size_t client_range_count(uint64_t offset, uint64_t length, uint64_t range_bytes);
/* Writes those pieces to out (client_range_count entries, caller owns). Returns the count. */
size_t client_range_split(uint64_t offset, uint64_t length, uint64_t range_bytes,
                          client_range_t *out);

/* ---- the request engine (session.c) ---- */

/* States of one request in the engine. */
enum client_op_state {
    CLIENT_OP_IDLE = 0, /* not sent yet */
    CLIENT_OP_INFLIGHT, /* sent, waiting for the reply */
    CLIENT_OP_DONE,     /* result is final */
};

/* One request: a message, the nodes to try in order, and (for READ) where the bytes go.
 * Set up by the caller with client_op_init; the engine fills the state and the result. */
typedef struct client_op {
    msg_t request;                               /* body filled by the caller; id set at send */
    client_target_t targets[CLIENT_TARGETS_MAX]; /* nodes to try, in order */
    uint32_t target_count;                       /* entries in targets */
    uint32_t target_next;                        /* next target to try */
    bool ignore_down;                            /* try targets even when marked down */
    bool probe_when_all_down;                    /* all marked down: try the first anyway */
    /* READ destination: the reply's bytes for [dest_offset, +dest_length) go to dest. */
    uint8_t *dest;              /* caller's buffer at dest_offset */
    uint64_t dest_offset;       /* first file byte wanted */
    uint64_t dest_length;       /* bytes wanted (> 0) */
    uint64_t expect_size;       /* file size of the version asked for */
    const char *expect_version; /* version asked for */
    /* engine state */
    uint32_t partials;         /* partial READ replies taken for the request
                                  in flight (MSG_READ_STREAM) */
    uint64_t stream_next;      /* with partials: where the next reply's span
                                  must start */
    uint64_t stream_page_size; /* with partials: their page_size */
    uint8_t state;             /* enum client_op_state */
    bool exhausted;            /* failed because no target answered well */
    uint32_t conn;             /* session connection while in flight */
    uint32_t sent_to;          /* index of the target in flight */
    uint64_t request_id;       /* id of the request in flight */
    int result;                /* 0 or a negative code once DONE */
    char detail[160];          /* what went wrong, for the last error */
    msg_t reply;               /* decoded reply (non-READ ops); msg_fini'd */
} client_op_t;

/* Sets up an op for a request of `type` (zeroes it, msg_init's the request). */
void client_op_init(client_op_t *op, msg_type_t type);
/* Frees the decoded reply. */
void client_op_fini(client_op_t *op);

/* A set of sockets (one DEALER per node endpoint) used by one thread at a time. */
typedef struct client_session client_session_t;

/* Takes an idle session of this process (or makes one). NULL on failure with a last error.
 * Return it with client_session_release. */
client_session_t *client_session_acquire(shoal_client_t *client, client_proc_t *proc);
void client_session_release(client_session_t *session);
/* Closes a session's sockets and frees it (only in the process that made it). */
void client_session_destroy(client_session_t *session);

/* Runs `count` ops to completion, all in flight at once: sends each to its first usable
 * target, matches replies by request id, moves an op to its next target on a timeout, an
 * ERROR that another node may not repeat, or a bad reply. `view_version` is sent in every
 * header. With `first_success_ends`, returns as soon as one op succeeds (the rest are left
 * DONE with SHOAL_ECANCELED). Returns 0 (look at each op's result) or a negative code when
 * the engine itself failed (memory). */
int client_session_run(client_session_t *session, client_op_t *ops, size_t count,
                       uint64_t view_version, bool first_success_ends);

/* ---- metadata (meta.c) ---- */

/* Stats `count` uris at once (cache first, then all misses in flight together, then UFS).
 * results[i] gets 0 or a negative code; stats[i] the answer. `bypass_cache` skips the cache
 * (but refreshes it). Returns 0, or a negative code when nothing could run. */
int client_stat_many(shoal_client_t *client, client_proc_t *proc, client_session_t *session,
                     const char *const *uris, size_t count, bool bypass_cache, shoal_stat_t *stats,
                     int *results);

/* Drops every cached stat (after an evict). */
void client_stat_cache_clear(client_proc_t *proc);

/* ---- UFS fallback (fallback.c) ---- */

struct ufs *client_ufs_new(void);
void client_ufs_destroy(struct ufs **ufs_p);
int client_ufs_stat(shoal_client_t *client, const char *uri, shoal_stat_t *out);
int64_t client_ufs_read(shoal_client_t *client, const char *uri, const char *version,
                        uint64_t offset, void *buf, size_t length);
/* Lists through the UFS, appending to the listing arrays via the callback. */
typedef int (*client_list_push_fn)(void *arg, const char *uri, const shoal_stat_t *stat);
int client_ufs_list(shoal_client_t *client, const char *uri, bool recursive,
                    client_list_push_fn push, void *arg);

#endif
