/*
 * session.h - the request engine (session.c): a pool of sessions (a session is one set of
 * DEALER sockets, one per node, used by one thread at a time) and client_session_run, which
 * keeps any number of requests (ops) in flight over them. It reports what it learns about the
 * nodes to the health record (health.h) and knows nothing of views or of the client object.
 */
#ifndef SHOAL_CLIENT_SESSION_H
#define SHOAL_CLIENT_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "counters.h"
#include "health.h"
#include "proto.h"

#define CLIENT_TARGETS_MAX      4    /* nodes one request may try before the UFS */
#define CLIENT_HEARTBEAT_IVL_MS 1000 /* ZMTP PING to each node this often */
#define CLIENT_HEARTBEAT_TIMEOUT_MS                                                                \
    3000                               /* no byte from a node this long after a PING: link down    \
                                        */
#define CLIENT_CONNECT_TIMEOUT_MS 3000 /* TCP connect and ZMTP handshake bound: link down after */

/* A target of a request: one node endpoint and the READ flags to send it with. */
typedef struct client_target {
    const char *endpoint; /* borrowed from the view or the seeds for the call */
    uint32_t read_flags;  /* MSG_READ_NO_CACHE for the read-through fallback */
    bool owner;           /* an owner in HRW order (counts fallback_next_owner when not first) */
} client_target_t;

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
    uint32_t read_flags;                         /* READ: MSG_READ_* bits for every target */
    bool probe_when_all_down;                    /* all marked down: try the first anyway */
    bool served; /* done before the engine ran (short-circuit): left DONE with result 0 */
    /* READ destination: the reply's bytes for [dest_offset, +dest_length) go to dest. */
    uint8_t *dest;              /* caller's buffer at dest_offset */
    uint64_t dest_offset;       /* first file byte wanted */
    uint64_t dest_length;       /* bytes wanted (> 0) */
    uint64_t expect_size;       /* file size of the version asked for */
    const char *expect_version; /* version asked for */
    /* A READ that learns the file: its size unknown, its version too when the request's is ""
     * (the read of a file without a stat). The first reply (or part) sets expect_size and
     * expect_version (to learnt_version when none was asked) and clips dest_length at the end
     * of the file; later parts must match them. Learnt again from scratch at every target. */
    bool learn;                               /* size (and maybe version) from the reply */
    uint64_t learn_length;                    /* with learn: bytes wanted before clipping */
    int64_t learnt_mtime;                     /* with learn: mtime of the version served */
    char learnt_version[MSG_VERSION_MAX + 1]; /* with learn and no version asked: served */
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

/* The sessions of one process. Thread-safe (one mutex, held only to take or give back a
 * session). */
typedef struct client_pool client_pool_t;
/* A set of sockets (one DEALER per node endpoint) used by one thread at a time. */
typedef struct client_session client_session_t;

/* A new, empty pool whose sessions make their sockets in `zmq_context`, report to `health`,
 * count into `counters` and fail a node after `timeout_ms` without an answer (all three
 * borrowed: they must outlive the pool). Caller owns it; NULL on out of memory. */
client_pool_t *client_pool_new(void *zmq_context, client_health_t *health,
                               client_counters_t *counters, int timeout_ms);
/* Closes every session's sockets, frees them and the pool, sets *pool_p to NULL; safe on NULL.
 * Only in the process that made it (a forked child abandons its parent's pool), and before
 * the ZeroMQ context is terminated. */
void client_pool_destroy(client_pool_t **pool_p);

/* Takes an idle session of the pool (or makes one). NULL on failure with a last error.
 * Borrowed until given back with client_session_release. */
client_session_t *client_session_acquire(client_pool_t *pool);
/* Gives a session back to its pool; safe on NULL. */
void client_session_release(client_session_t *session);

/* Runs `count` ops to completion, all in flight at once: sends each to its first usable
 * target, matches replies by request id, moves an op to its next target on a timeout, an
 * ERROR that another node may not repeat, or a bad reply. `view_version` is sent in every
 * header. With `first_success_ends`, returns as soon as one op succeeds (the rest are left
 * DONE with SHOAL_ECANCELED). Returns 0 (look at each op's result) or a negative code when
 * the engine itself failed (memory). The ops stay the caller's. */
int client_session_run(client_session_t *session, client_op_t *ops, size_t count,
                       uint64_t view_version, bool first_success_ends);

#endif
