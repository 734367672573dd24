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

#include "node.h"

typedef struct server server_t;

/* Makes the server of `node` (borrowed for the server's life). NULL when out of memory. */
server_t *server_new(node_t *node);

/* Binds the data endpoint and the inproc endpoints on the calling thread, then starts the
 * router thread and the hit workers. Returns 0, or SHOAL_EIO with a logged error (address in
 * use, bad interface). */
int server_start(server_t *self);

/* Asks the router thread to stop taking requests and waits until every request forwarded so
 * far has been answered (or a deadline passed), and the router thread has exited after closing
 * the ROUTER socket (its linger flushes the last replies). */
void server_stop(server_t *self);

/* Joins the hit workers; call after zmq_ctx_shutdown, which wakes them. */
void server_join(server_t *self);

/* Frees *self_p (stopped and joined first) and sets it to NULL; safe on NULL. */
void server_destroy(server_t **self_p);

#endif
