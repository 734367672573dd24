/*
 * local.h - short-circuit local reads, the node's side (issue 11): an AF_UNIX SOCK_SEQPACKET
 * socket where clients on this host ask where the pages of a span lie (LOCATE) and receive each
 * generation's data file as a read-only descriptor (SCM_RIGHTS), then pread and check the bytes
 * themselves. Peers are checked with SO_PEERCRED against --local-group. The protocol is drawn
 * in proto/proto.h (types 16..19); the socket, admission and descriptors in node/README.md.
 */
#ifndef SHOAL_NODE_LOCAL_H
#define SHOAL_NODE_LOCAL_H

#include <stdint.h>
#include <sys/types.h>

#include "mount.h"
#include "pagestore.h"
#include "read.h"
#include "stats.h"

#define LOCAL_CONNECTIONS_MAX 256 /* connections served at once; more get ERROR EBUSY */
#define LOCAL_LEASE_MS        30000 /* HELLO's lease_ms: a client closes descriptors unused this long */
#define LOCAL_SUN_PATH_MAX    107 /* longest socket path (sun_path is 108 bytes with its NUL) */

/* What the local server uses (every pointer borrowed; the objects are thread safe and outlive
 * the server). */
typedef struct local_deps {
    const read_ctx_t *read;      /* version resolution (read_locate_meta), geometry */
    const mount_table_t *mounts; /* what may be served: LOCATE is refused outside them */
    pagestore_t *store;          /* pagestore_locate / pagestore_gen_fd */
    stats_t *stats;              /* local_* counters */
    const uint8_t *node_id;      /* 16 bytes, for HELLO */
    const char *host_id;         /* for HELLO; NULL = "" */
    const char *path;            /* where to listen (<= LOCAL_SUN_PATH_MAX bytes) */
    const char *group;           /* --local-group NAME or GID; NULL = the node's primary group */
} local_deps_t;

/* The local server: a listener thread and one thread per connection. */
typedef struct local local_t;

/* Resolves the group (SHOAL_EINVAL with a logged error when unknown) and returns a server that
 * is not listening yet, or NULL. Copies the path and group; borrows the rest. Caller owns it. */
local_t *local_new(const local_deps_t *deps);

/* Binds `path` (a stale socket there, with nobody listening, is replaced; anything else there is
 * an error), sets mode 0660 and the group, listens, and starts the listener thread. Returns 0 or
 * a negative code with a logged error: SHOAL_EBUSY (another process listens there), SHOAL_EINVAL
 * (the path is too long, or holds something that is not a socket), SHOAL_EACCES (the group
 * cannot be set), SHOAL_EIO. */
int local_start(local_t *self);

/* Stops: closes the listener, unlinks the socket path, shuts every connection down and joins
 * every thread. Safe to call twice, and on a server never started. */
void local_stop(local_t *self);

/* Stops the server if needed and frees it; sets *self_p to NULL; safe on NULL. */
void local_destroy(local_t **self_p);

/* Whether peer `uid` may connect to a node running as `node_uid` with local group `gid`: root,
 * the node's own uid, or a uid whose passwd entry's primary gid or supplementary groups
 * (getgrouplist) contain gid. Exported for the tests. */
bool local_uid_admitted(uid_t uid, uid_t node_uid, gid_t gid);

#endif
