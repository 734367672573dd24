/*
 * local.h - short-circuit local reads (local.c): the nodes that share this host, a small pool
 * of AF_UNIX SOCK_SEQPACKET connections to each, the data-file descriptors each connection was
 * passed (keyed by store id and generation, leased), and the LOCATE round trip that reads held
 * pages with pread straight into the caller's buffer, checking every chunk's XXH3. Anything it
 * cannot serve exactly is a miss that the caller reads the normal (ZeroMQ) way. A leaf: it
 * counts into the client counters and knows nothing of views or sessions.
 */
#ifndef SHOAL_CLIENT_LOCAL_H
#define SHOAL_CLIENT_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "counters.h"
#include "proto.h"

#define CLIENT_LOCAL_NODES_MAX 8    /* local nodes one process talks to */
#define CLIENT_LOCAL_CONNS_MAX 16   /* connections per local node (threads at once) */
#define CLIENT_LOCAL_FDS_MAX   64   /* descriptors one connection holds */
#define CLIENT_LOCAL_RETRY_MS  1000 /* after a failed connect, wait this long */
#define CLIENT_LOCAL_TIMEOUT_MS                                                                    \
    1000                                  /* a local reply waited for at most (or the client's     \
                                           * timeout when shorter); then the node is paused */
#define CLIENT_LOCAL_REFUSED_MS     60000 /* after a refusal (EACCES), wait this long */
#define CLIENT_LOCAL_CHUNK_SHIFT    16    /* largest chunk checked through the bounce buffer */
#define CLIENT_LOCAL_PATH_MAX       108   /* sun_path */
#define CLIENT_LOCAL_LEASE_MS       30000 /* lease when a node names none */
#define CLIENT_LOCAL_LOCS_MAX       1024  /* page locations one connection remembers */
#define CLIENT_LOCAL_RELOCATE_MS    1000  /* a remembered location is LOCATEd again after this */
#define CLIENT_LOCAL_HELPERS_MAX    3     /* threads that read pieces of one call in parallel */
#define CLIENT_LOCAL_PARALLEL_BYTES (2u << 20) /* smaller spans and batches stay on the caller */

/* The local nodes of one process. Thread-safe: one mutex for the node table and for taking
 * and giving back connections, never held across I/O (a connection is used by one thread at a
 * time). One per process (it lives in the process state); a forked child calls
 * client_local_abandon on its parent's and builds its own. */
typedef struct client_local client_local_t;

/* A new table counting into `counters` (borrowed: must outlive it), waiting `timeout_ms` at most
 * for a node's answer. Reads SHOAL_SHORT_CIRCUIT (0 = off: returns NULL) and
 * SHOAL_LOCAL=PATH[,PATH] (sockets to consider; their node ids come from HELLO), and
 * SHOAL_LOCAL_RELOCATE_MS (how long a located page is read again without a LOCATE:
 * [CLIENT_LOCAL_RELOCATE_MS], 0 = LOCATE every read; never longer than the node's lease) and
 * SHOAL_LOCAL_PARALLEL_BYTES (the least bytes read on helper threads too:
 * [CLIENT_LOCAL_PARALLEL_BYTES]; for tests).
 * Caller owns it; NULL when off or out of memory (then reads just go the ZeroMQ way). */
client_local_t *client_local_new(client_counters_t *counters, int timeout_ms);
/* Closes every connection and descriptor, frees the table, sets *local_p to NULL; safe on NULL.
 * Only in the process that made it. */
void client_local_destroy(client_local_t **local_p);
/* In a forked child, on its parent's table: closes every descriptor and connection it finds
 * (lock-free: atomics only, no mutex taken, nothing freed: another parent thread may have held
 * the mutex at fork time). Safe on NULL and idempotent. */
void client_local_abandon(client_local_t *local);

/* True when `view_version` is the version last passed here (its members on this host were fed
 * to client_local_consider already), or when there is no local table; else records it and says
 * false, once per new view. */
bool client_local_view_seen(client_local_t *local, uint64_t view_version);

/* Names the node `node_id` (16 bytes, or NULL when unknown: SHOAL_LOCAL) as reachable at
 * `socket_path` (copied). The view code calls it for members of the client's host. A path
 * already known is kept; when HELLO names another node than `node_id`, the path serves the node
 * that answered. Out of room or a path over 107 bytes: ignored. */
void client_local_consider(client_local_t *local, const uint8_t *node_id, const char *socket_path);

/* Starts a read call: closes descriptors unused for their lease, and connects (HELLO) to the
 * sockets whose node is not known yet (not sooner than CLIENT_LOCAL_RETRY_MS after a failed
 * try). Safe on NULL. */
void client_local_begin(client_local_t *local);

/* Whether node `node_id` answered HELLO on a local socket (and is not in a refusal pause).
 * With `node_id` NULL: whether any node ever answered (no lock). False on a NULL table. */
bool client_local_has(client_local_t *local, const uint8_t *node_id);

/* Runs fn(arg, i) for every i in [0, count), on the calling thread and the table's helper
 * threads at once (cores online - 1 of them, at most CLIENT_LOCAL_HELPERS_MAX, made at the
 * first call that has work for them), and returns when all are done. fn must be safe to run
 * on several threads at once (client_local_read is: each call takes its own connection).
 * Runs everything on the caller when there are no helpers, count < 2, or another thread's run
 * holds them, or when the calling thread is inside a run already (a helper: nested runs go
 * inline). Safe on NULL (runs on the caller). */
void client_local_run(client_local_t *local, size_t count, void (*fn)(void *arg, size_t i),
                      void *arg);

/* The least bytes of a batch or span worth the helpers (SHOAL_LOCAL_PARALLEL_BYTES); UINT64_MAX
 * on a NULL table. */
uint64_t client_local_parallel_bytes(const client_local_t *local);

/* One short-circuit read of [offset, +length) of one file version. */
typedef struct client_local_read {
    /* in */
    const char *uri;     /* normal form (uri.h), borrowed */
    const char *version; /* the version to read; "" = learn it (the node's fresh metadata) */
    uint64_t file_size;  /* its size when known, else MSG_SIZE_UNKNOWN (learn) */
    uint64_t offset;     /* first byte wanted */
    uint64_t length;     /* bytes wanted (before clipping at the end of the file when learning) */
    uint8_t *dest;       /* the caller's buffer for [offset, +length) */
    /* out */
    bool learnt;                           /* file_size, version_out, mtime hold the node's stat */
    char version_out[MSG_VERSION_MAX + 1]; /* with learnt and version "": the version served */
    int64_t mtime;                         /* with learnt: its mtime */
    uint64_t miss_offset;                  /* [miss_offset, +miss_length): the bytes not served */
    uint64_t miss_length;                  /* 0: every wanted byte is in dest */
} client_local_read_t;

/* Serves what it can of `read` from node `node_id`'s pages: LOCATE(s) over a connection of that
 * node, pread of each located page's bytes into dest, XXH3 of every chunk used. A piece whose
 * pages this connection located less than the relocate interval ago (same uri, version and
 * size) is read with no LOCATE (local_cache_hits); any failure there is forgotten and LOCATEd
 * afresh. With
 * file_size MSG_SIZE_UNKNOWN it learns the stat first (learnt; file_size set and length clipped
 * at the end of the file). Returns 0 when the span was handled (look at miss_*: every byte
 * outside the miss span is in dest, of the version asked or learnt); a negative code when
 * nothing was (no connection, the node could not name the version, a broken reply): the
 * caller reads the whole span the normal way. Never a wrong byte outside the miss span. */
int client_local_read(client_local_t *local, const uint8_t *node_id, client_local_read_t *read);

#endif
