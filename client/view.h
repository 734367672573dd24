/*
 * view.h - the client's picture of the cluster (view.c): the immutable view snapshot, the
 * process's current view with its refresh rules (fetched over the request engine), the HRW
 * targets of a key and the range key of a normalised uri. Sits on the engine (session.h) and
 * the health record.
 */
#ifndef SHOAL_CLIENT_VIEW_H
#define SHOAL_CLIENT_VIEW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "counters.h"
#include "health.h"
#include "hrw.h"
#include "proto.h"
#include "session.h"

#define CLIENT_VIEW_RETRY_MS     1000 /* after a failed view fetch, wait this long */
#define CLIENT_VIEW_STALE_GAP_MS 200  /* refresh on a newer view_version at most this often */

/* One member of a view, as the VIEW reply described it. Strings are owned by the view. */
typedef struct client_member {
    uint8_t id[MSG_NODE_ID_SIZE]; /* node id */
    char *name;                   /* --name of the node; may be "" */
    char *endpoint;               /* data endpoint "tcp://host:port" */
    char *gossip_endpoint;        /* gossip endpoint; may be "" */
    uint32_t state;               /* msg_member_state_t */
    uint64_t incarnation;         /* SWIM incarnation */
    uint64_t weight;              /* capacity bytes: HRW weight */
    uint64_t last_heard_ms;       /* as the answering node reported it */
    char *host_id;                /* host it runs on (proto/hostid.h); may be "" */
    char *local_socket;           /* its AF_UNIX socket for clients on that host; "" = none */
} client_member_t;

/* A member on the client's own host that advertises a local socket (client_view_local). Both
 * pointers are borrowed from the view's members, valid while the view is held. */
typedef struct client_local_member {
    const uint8_t *node_id;  /* MSG_NODE_ID_SIZE bytes */
    const char *socket_path; /* its local_socket, never "" */
    size_t index;            /* into client_view_t.members */
} client_local_member_t;

/* An immutable membership snapshot, shared by reference count between the view cache and
 * the calls using it; callers read its fields, only view.c writes them.
 * Invariant: hrw[i] describes members[i]; page_size, range_pages > 0; placement is
 * HRW_PLACEMENT_VERSION (a view of another placement version is refused, never kept). */
typedef struct client_view {
    _Atomic int refs;             /* references; freed at 0 */
    uint64_t version;             /* view_version of the answering node */
    uint64_t page_size;           /* cluster page size */
    uint32_t range_pages;         /* pages per range */
    uint32_t placement;           /* placement version of the cluster (HRW_PLACEMENT_VERSION) */
    size_t count;                 /* members */
    client_member_t *members;     /* count members */
    hrw_member_t *hrw;            /* count placement entries (live = alive or suspect) */
    char *answered_by;            /* endpoint that sent this view */
    client_local_member_t *local; /* local_count members on this host (client_view_local) */
    size_t local_count;           /* entries in local */
} client_view_t;

/* Takes a reference (the caller then owns one). */
void client_view_ref(client_view_t *view);
/* Drops a reference and sets *view_p to NULL; safe on NULL. */
void client_view_unref(client_view_t **view_p);

/* The current view of one process and when to fetch it again. Thread-safe (one mutex, never
 * held across I/O; several threads may fetch at once, which is harmless). */
typedef struct client_view_cache client_view_cache_t;

/* A cache without a view, fetching from the `seed_count` seed endpoints `seeds` (borrowed, as
 * are `health` and `counters`: they must outlive it). Caller owns it; NULL on out of memory. */
client_view_cache_t *client_view_cache_new(char *const *seeds, size_t seed_count,
                                           client_health_t *health, client_counters_t *counters);
/* Drops the cached view, frees the cache, sets *cache_p to NULL; safe on NULL. */
void client_view_cache_destroy(client_view_cache_t **cache_p);

/* Returns a referenced current view (caller unrefs), fetching one over `session` (borrowed)
 * when there is none, when the health record says it is stale, or when `force`. NULL with a
 * last error when no node answers and there is no old view to fall back on. A VIEW reply of
 * another placement version than this build's (HRW_PLACEMENT_VERSION; an absent field is 1)
 * is refused with SHOAL_ECONFIG and a last error naming both versions: its owners would be
 * computed by another hash. */
client_view_t *client_view_acquire(client_view_cache_t *cache, client_session_t *session,
                                   bool force);

/* Fills up to `max` targets for `key` in HRW order among live members: the first
 * `owner_tries` as owners with `owner_flags`, the next `other_tries` with `other_flags`.
 * Returns how many were written; their endpoints are borrowed from the view. */
size_t client_view_targets(const client_view_t *view, const uint8_t *key, size_t key_len,
                           size_t owner_tries, uint32_t owner_flags, size_t other_tries,
                           uint32_t other_flags, client_target_t *out, size_t max);

/* The placement key of range `range_index` of the file `normal_uri`, which must be the normal
 * form (client_uri_normalize, i.e. proto's uri_normalize) of the name the request carries: the
 * node hashes the same normal form (hrw_uri_range_key, gossip/hrw.h). Range 0's key also places
 * the file's metadata (STAT). No version goes in, so a READ can be routed before any stat.
 * Writes HRW_RANGE_KEY_LEN bytes to `out` (caller owns it); borrows the uri. */
void client_range_key(const char *normal_uri, uint64_t range_index, uint8_t out[HRW_RANGE_KEY_LEN]);

/* Fills up to `max` targets for range `range_index` of `normal_uri` (as client_range_key),
 * otherwise as client_view_targets. Endpoints are borrowed from the view. */
size_t client_view_range_targets(const client_view_t *view, const char *normal_uri,
                                 uint64_t range_index, size_t owner_tries, uint32_t owner_flags,
                                 size_t other_tries, uint32_t other_flags, client_target_t *out,
                                 size_t max);

/* This process's host id: host_id_get (proto/hostid.h: $SHOAL_HOST_ID, /etc/machine-id, boot
 * id, host name), read once per process and kept (thread safe; a forked child shares the
 * host). Static storage: never freed; "" only when no source names the host. */
const char *client_host_id(void);

/* The members of `view` that run on this client's host (their host_id equals client_host_id(),
 * neither empty), advertise a local socket and are live (alive or suspect), in the view's
 * member order: computed once when the view is built. Sets *count_out and returns the array
 * (borrowed from the view; NULL when the count is 0). What the short-circuit read path
 * (helper localcli's client_local_consider) is fed with; the endpoint IP cannot say "same host"
 * behind NAT or in pods. */
const client_local_member_t *client_view_local(const client_view_t *view, size_t *count_out);

/* The member whose data endpoint is `endpoint` (a target's, borrowed from this view), or NULL.
 * Borrowed from the view. */
const client_member_t *client_view_member_of(const client_view_t *view, const char *endpoint);

/* The 16-byte file key of (uri, version): BLAKE2b-128 of uri "\0" version. Placement version 1
 * placed ranges by it; version 2 does not (the node's page key still holds the version). */
void client_file_key(const char *uri, const char *version, uint8_t out[16]);

#endif
