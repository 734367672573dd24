/*
 * client.h - the composition root of libshoal (client.c): the client object and the
 * per-process state it builds (ZeroMQ context, session pool, health record, view cache, stat
 * cache) with its fork detection, handed to the public calls as a call context (ctx.h).
 * Included by the API files (list.c, read.c, admin.c) and the tests only.
 */
#ifndef SHOAL_CLIENT_CLIENT_H
#define SHOAL_CLIENT_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "counters.h"
#include "ctx.h"
#include "shoal.h"

/* Everything that belongs to one process (opaque; see client.c). */
typedef struct client_proc client_proc_t;

/* The client. Immutable after shoal_client_new except for the atomics. Defined here only so
 * that the tests can check the parsed seeds: the API files reach the client through the call
 * context (ctx.h) and client_counters, never through these fields. */
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

/* Returns this process's state, building it (and abandoning a parent's) on first use after a
 * fork. NULL with a last error when memory or ZeroMQ fails. Borrowed for the client's life. */
client_proc_t *client_proc_get(shoal_client_t *client);

/* The client's counters, borrowed for the client's life. */
client_counters_t *client_counters(shoal_client_t *client);

/* Starts a call: clears the last error, gets the process state and a session, and the view
 * (fetching it when needed; a failure leaves view NULL and the last error set). Returns 0 or
 * a negative code (memory, ZeroMQ); end the call with client_ctx_end either way. */
int client_ctx_begin(shoal_client_t *client, client_ctx_t *ctx);
/* Gives the session back and drops the view. */
void client_ctx_end(client_ctx_t *ctx);

#endif
