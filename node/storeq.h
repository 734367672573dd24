/*
 * storeq.h - the store queue: fetched ranges wait here, after their READ replies went out, for
 * one background thread that writes their pages to the page store at a lower CPU priority, so
 * that RocksDB's copy never sits on a client's critical path nor competes with serving. Each
 * entry keeps its single flight held (flight.h) until its pages are stored.
 */
#ifndef SHOAL_NODE_STOREQ_H
#define SHOAL_NODE_STOREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flight.h"
#include "pagestore.h"
#include "stats.h"

#define STOREQ_BYTES_MAX (128u << 20) /* range bytes waiting at most; past it callers store */
#define STOREQ_NICE      10           /* nice value of the store thread (serving runs at 0) */

/* The queue. Thread safe. */
typedef struct storeq storeq_t;

/* What the queue stores into and reports to (every pointer borrowed for the queue's life). */
typedef struct storeq_deps {
    pagestore_t *store;      /* where pages go (thread safe) */
    flight_table_t *flights; /* the table the held flights belong to */
    stats_t *stats;          /* store_write_errors */
    uint64_t page_size;      /* cluster page size */
    uint32_t range_pages;    /* pages per range */
} storeq_deps_t;

/* Returns a new, not started queue (copying `deps`) or NULL when out of memory. Caller owns
 * it. */
storeq_t *storeq_new(const storeq_deps_t *deps, size_t max_bytes);

/* Starts the store thread. Returns 0 or SHOAL_EIO (logged); without it every submit fails and
 * callers store themselves. */
int storeq_start(storeq_t *self);

/* Queues the pages of range `range_index` of `file_key` in `*buf_p` for storing, then, when
 * `meta_uri` is not NULL, the metadata record of that uri from the buffer's stat (metadisk_put:
 * a cold read's, written here after the pages rather than on the fetch thread before its
 * reply), then flight_release of `*held_p`. On success takes both (nulls the caller's
 * pointers) and returns true; returns false, taking nothing, when the queue is full, stopped
 * or not started: the caller stores now (storeq_store, then metadisk_put) and releases.
 * Borrows file_key and meta_uri (copied). */
bool storeq_submit(storeq_t *self, const uint8_t *file_key, uint64_t range_index,
                   range_buf_t **buf_p, flight_t **held_p, const char *meta_uri);

/* Stores each page of a fetched range now, on the calling thread. A failed put is counted in
 * store_write_errors and the remaining puts of the range skipped (the disk is likely full);
 * the bytes were served anyway. */
void storeq_store(storeq_t *self, const uint8_t *file_key, uint64_t range_index,
                  const range_buf_t *buf);

/* Announces `count` ranges that a caller will submit or store after it has answered: they count
 * in storeq_depth from now on, so a reader of the depth never sees 0 between a reply and its
 * pages' submit. Each announced range is ended by one storeq_unannounce, after its submit or
 * store. */
void storeq_announce(storeq_t *self, size_t count);
void storeq_unannounce(storeq_t *self, size_t count);

/* Ranges waiting, announced ones included (for STATS: 0 means every fetched page is stored). */
size_t storeq_depth(storeq_t *self);

/* Refuses new entries, stores every queued one, and joins the thread. Safe to call twice. */
void storeq_stop(storeq_t *self);

/* Stops (as storeq_stop), frees *self_p and sets it to NULL; safe on NULL. */
void storeq_destroy(storeq_t **self_p);

#endif
