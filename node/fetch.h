/*
 * fetch.h - the fetch pool: threads that do everything that may wait on the UFS (misses,
 * metadata past its TTL, LOAD, EVICT of a prefix). Hit workers queue requests here and move
 * on, so hits never wait behind a slow UFS. The queue is bounded: past it, requests are
 * refused with EBUSY instead of growing without limit.
 */
#ifndef SHOAL_NODE_FETCH_H
#define SHOAL_NODE_FETCH_H

#include <stddef.h>

#include "request.h"

#define FETCH_QUEUE_MAX 65536 /* queued requests before EBUSY */

typedef struct fetch_pool fetch_pool_t;

/* Makes a pool of `threads` threads that hand each request to `handler(arg, ...)`, which
 * answers it in full. `env` (each
 * thread's reply sink) and `arg` are borrowed for the pool's life. NULL when out of memory.
 * Caller owns the result. */
fetch_pool_t *fetch_pool_new(const request_env_t *env, uint32_t threads, request_handler_fn handler,
                             void *arg);

/* Starts the threads. Returns 0 or SHOAL_EIO (logged) when none could start. */
int fetch_pool_start(fetch_pool_t *self);

/* Queues `request` for a fetch thread. Returns 0 (the pool owns it now), SHOAL_EBUSY (queue
 * full) or SHOAL_ECANCELED (stopping); on error the caller still owns it and answers it. */
int fetch_pool_submit(fetch_pool_t *self, node_request_t *request);

/* Requests queued and not yet taken by a thread. */
size_t fetch_pool_depth(fetch_pool_t *self);

/* Threads waiting for a request (on the idle stack). */
size_t fetch_pool_idle(fetch_pool_t *self);

/* Stops taking requests; queued ones are answered ERROR ECANCELED by the threads, running
 * ones finish. Returns at once. */
void fetch_pool_stop(fetch_pool_t *self);

/* Waits for every thread to exit (after fetch_pool_stop). */
void fetch_pool_join(fetch_pool_t *self);

/* Frees *self_p (stopped and joined first) and sets it to NULL; safe on NULL. */
void fetch_pool_destroy(fetch_pool_t **self_p);

#endif
