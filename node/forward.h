/*
 * forward.h - forwarding (DESIGN.md, data path 6): a node that gets a READ for a range it does
 * not own (its client's view was stale) and does not have in its store asks the owner for the
 * range once, marked FORWARDED, and answers with those bytes (not stored here: the owner keeps
 * the copy). A FORWARDED request is never forwarded again, and NO_CACHE requests (the client's
 * read-through fallback) are not forwarded either, so no request visits more than two nodes
 * and two nodes whose views disagree cannot loop. If the owner does not answer within
 * --forward-timeout, the caller reads the UFS itself. Fetch threads call this; the connections
 * to owners are pooled (one DEALER per owner and concurrent user).
 */
#ifndef SHOAL_NODE_FORWARD_H
#define SHOAL_NODE_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flight.h"
#include "membership.h"
#include "stats.h"

typedef struct forward forward_t;

/* What forwarding needs (pointers borrowed for the pool's life). */
typedef struct forward_deps {
    void *zmq_context;     /* the node's context, for the DEALERs */
    membership_t *members; /* who owns a range, and the view version of a request */
    range_pool_t *ranges;  /* buffers for the forwarded bytes */
    stats_t *stats;        /* forwards, forward_failures */
    uint64_t page_size;    /* cluster page size */
    uint32_t range_pages;  /* pages per range */
    uint32_t timeout_ms;   /* --forward-timeout */
} forward_deps_t;

/* Makes the connection pool (copying `deps`). Returns NULL when out of memory. Caller owns
 * the result. */
forward_t *forward_new(const forward_deps_t *deps);

/* Closes every pooled socket (none may be in use: call after the fetch threads are joined and
 * before the ZeroMQ context is terminated), frees, sets *self_p to NULL. Safe on NULL. */
void forward_destroy(forward_t **self_p);

/* Whether range `range_index` of the file `uri` (its normal form, as mount_check leaves it in
 * the request: the client hashes the same string) should be asked of another node for a READ
 * with `flags`: true (and the owner's data endpoint in `endpoint`, cap bytes) when the flags
 * allow forwarding and another live member owns the range in the current view. The owner is
 * chosen by the range key of placement version 2 (hrw_uri_range_key: no version goes in).
 * Borrows uri. */
bool forward_owner(forward_t *self, uint32_t flags, const char *uri, uint64_t range_index,
                   char *endpoint, size_t cap);

/* Reads the whole range `range_index` (clipped at `file_size`) of (uri, version) from the node
 * at `endpoint` with READ FORWARDED, waiting at most --forward-timeout. Returns 0 with a new
 * buffer of exactly the range's bytes in *buf_out (one reference, caller releases), or a
 * negative code with a last error (no answer, an ERROR reply, a reply that does not match):
 * the caller then reads the UFS itself. Counts `forwards` and `forward_failures`. */
int forward_read_range(forward_t *self, const char *endpoint, const char *uri, const char *version,
                       uint64_t file_size, uint64_t range_index, range_buf_t **buf_out);

#endif
