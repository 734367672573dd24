/*
 * cluster.h - the node's membership in a cluster: runs a gossip agent (gossip/gossip_agent.h,
 * its own thread and port) that carries this node's id, incarnation, name, data endpoint,
 * host id and local socket path, weight (= capacity), page size and range size, joins through
 * --seeds, and feeds every new snapshot into the node's membership (membership.h). A cluster
 * whose page or range size differs refuses us: that is reported by cluster_start or, later,
 * cluster_status, and the daemon exits 2. On stop the node leaves gracefully (peers record it
 * "left", not dead).
 */
#ifndef SHOAL_NODE_CLUSTER_H
#define SHOAL_NODE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "membership.h"
#include "pagestore.h"

struct node_config; /* config.h */

typedef struct cluster cluster_t;

/* What the agent carries and feeds (pointers borrowed; they must outlive the cluster). */
typedef struct cluster_deps {
    const struct node_config *config; /* gossip settings, seeds, name, capacity */
    pagestore_t *store;               /* where the last incarnation is kept */
    membership_t *members;            /* fed with every new snapshot */
    const uint8_t *id;                /* this node's id (MSG_NODE_ID_SIZE bytes) */
    uint64_t incarnation;             /* this start's incarnation */
    uint64_t page_size;               /* cluster page size (a differing cluster refuses us) */
    uint32_t range_pages;             /* pages per range (likewise) */
    const char *local_socket;         /* local socket path advertised (<= 107 bytes); NULL or
                                       * "" = none (the host id comes from config->host_id) */
} cluster_deps_t;

/* Makes the agent and binds the gossip endpoint (--gossip; when that was not given and its
 * default port is taken, an ephemeral port is used, with a warning). `data_endpoint` is what
 * the others should use for data requests. Does not start the thread. Returns NULL with a
 * logged error. Copies `deps`. Caller owns the result. */
cluster_t *cluster_new(const cluster_deps_t *deps, const char *data_endpoint);

/* Starts the gossip thread and joins through the seeds. With seeds, waits until one answers
 * (up to 3 s; a seed that is down is not an error: the agent keeps trying) or refuses us.
 * Returns 0, or SHOAL_ECONFIG (logged, with both settings named) when the cluster refused. */
int cluster_start(cluster_t *self);

/* 0 while all is well; SHOAL_ECONFIG once the cluster refused us (message copied to
 * `message`, cap bytes; may be NULL). Thread safe. */
int cluster_status(cluster_t *self, char *message, size_t cap);

/* Leaves gracefully: announces "left" and keeps answering gossip for a short linger so the
 * news gets out. Call before stopping the data path. Safe to call once after cluster_start. */
void cluster_leave(cluster_t *self);

/* Stops the gossip thread, stores the last incarnation used in the data dir (so a restart
 * begins above it), frees, and sets *self_p to NULL. Safe on NULL. */
void cluster_destroy(cluster_t **self_p);

#endif
