/*
 * server.h - the node's request plumbing. One router thread owns the ROUTER socket (the data
 * endpoint) and nothing else touches it; it forwards each request over inproc to a pool of hit
 * workers and routes back the replies that workers and fetchers push to it. Hit workers decode
 * and answer what the store and the caches can answer at once; everything that needs the UFS
 * goes to the fetch pool (fetch.h), so a slow UFS never delays a hit.
 *
 *   clients --tcp--> [ROUTER | router thread] --PUSH inproc://shoal-work--> hit workers (N)
 *                         ^                                                   | miss
 *                         +--PULL inproc://shoal-replies <-- PUSH (each) -- fetch threads (M)
 */
#ifndef SHOAL_NODE_SERVER_H
#define SHOAL_NODE_SERVER_H

#include <stdint.h>

#include "request.h"

typedef struct server server_t;

/* The server's settings and what it hands requests to. */
typedef struct server_options {
    const request_env_t *env;    /* context, membership, counters, inflight (borrowed) */
    const char *listen;          /* data endpoint to bind (borrowed) */
    uint32_t threads;            /* hit workers */
    uint64_t inline_max_bytes;   /* READs up to this length may run on the router thread */
    request_handler_fn dispatch; /* answers a decoded request or queues it on (ops_dispatch) */
    void *dispatch_arg;          /* its argument (borrowed) */
} server_options_t;

/* Makes a server (copying `options`; what they point to must outlive it). NULL when out of
 * memory or when the stop signal (an eventfd) cannot be made. Caller owns the result. */
server_t *server_new(const server_options_t *options);

/* Binds the data endpoint and the inproc endpoints on the calling thread, then starts the
 * router thread and the hit workers. Returns 0, or SHOAL_EIO with a logged error (address in
 * use, bad interface). */
int server_start(server_t *self);

/* Asks the router thread to stop taking requests and waits until every request forwarded so
 * far has been answered (or a deadline passed), and the router thread has exited after closing
 * the ROUTER socket (its linger flushes the last replies). */
void server_stop(server_t *self);

/* Signals the hit workers to stop (an eventfd each polls with its socket) and joins them; call
 * after server_stop, so that the router has handed out every request. */
void server_join(server_t *self);

/* Frees *self_p (stopped and joined first) and sets it to NULL; safe on NULL. */
void server_destroy(server_t **self_p);

#endif
