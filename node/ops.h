/*
 * ops.h - what the node does with each request type: the mount check, then VIEW, STATS and
 * cached STAT/LIST/READ at once on the hit worker, and everything needing the UFS (STAT/LIST
 * past the TTL, READ misses, LOAD, EVICT) on a fetch thread.
 */
#ifndef SHOAL_NODE_OPS_H
#define SHOAL_NODE_OPS_H

#include "node.h"
#include "request.h"

/* On a hit worker: answers `*request_p` or queues it for the fetch pool. Takes ownership of
 * *request_p and sets it to NULL. */
void ops_dispatch(node_t *node, reply_sink_t *sink, node_request_t **request_p);

/* On a fetch thread: answers `*request_p` in full. Takes ownership and sets it to NULL. */
void ops_fetch(node_t *node, reply_sink_t *sink, node_request_t **request_p);

#endif
