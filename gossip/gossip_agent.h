/*
 * gossip_agent.h - a running gossip member: the SWIM core, the ZeroMQ transport, the
 * monotonic clock and a thread of its own, with start/stop and a view for other threads.
 *
 * Gossip gets its own port and thread so that bulk data traffic cannot delay probes. The
 * agent's thread is the only one that touches the core; other threads read membership
 * through gossip_agent_view() (an immutable refcounted snapshot) or get a callback on the
 * agent's thread after each change. All functions here are thread-safe unless noted.
 */
#ifndef SHOAL_GOSSIP_AGENT_H
#define SHOAL_GOSSIP_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "swim.h"
#include "view.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gossip_agent gossip_agent_t;

typedef struct gossip_agent_opts {
    swim_opts_t swim;             /* identity, cluster settings, timings (swim_opts_default);
                                   * gossip_ep: advertised endpoint, NULL = the bound one;
                                   * transport, on_event: set by the agent */
    const char *bind_ep;          /* required: ROUTER bind, e.g. "tcp://0.0.0.0:7947" or ":0" */
    const char *const *seeds;     /* seed gossip endpoints (copied by gossip_agent_start) */
    size_t n_seeds;               /* number of seeds (0: first node of a cluster) */
    const char *curve_secret_key; /* hook for CurveZMQ (not implemented: must be NULL) */
    const char *curve_public_key; /* hook for CurveZMQ (not implemented: must be NULL) */
    /* Called on the agent's thread after each batch of membership changes, and at least once
     * a second even without one (same version; fresh last_heard_ms), with the new snapshot
     * (borrowed for the call; view_ref it to keep it). Optional. */
    void (*on_view)(void *ctx, view_t *view);
    void *ctx; /* passed to on_view */
} gossip_agent_opts_t;

/* Sets up the process's one ZeroMQ context, czmq's (zsys_handler_set(NULL), then
 * zsys_init()), without czmq's SIGINT/SIGTERM handlers: for a program that takes signals
 * itself (shoald, with sigwait). Call once, early, before other threads start; a program that
 * skips it gets czmq's defaults at the first gossip_agent_new. Returns the raw libzmq context
 * (borrowed: czmq terminates it at exit, so no socket in it may outlive main) or NULL. */
void *gossip_agent_process_init(void);

/* Creates the agent and binds its socket (so gossip_agent_endpoint is known before start);
 * does not start the thread. Returns NULL with shoal_last_error() set on failure. Caller
 * owns the result. */
gossip_agent_t *gossip_agent_new(const gossip_agent_opts_t *opts);

/* Starts the thread and joins through the seeds. Returns 0 or a negative SHOAL_E* code. */
int gossip_agent_start(gossip_agent_t *agent);

/* Leaves gracefully: the thread announces "left" and keeps answering for linger_ms so the
 * LEAVE gets out; returns after that. Call gossip_agent_destroy next. Returns 0, or
 * SHOAL_EINVAL if the agent is not running. */
int gossip_agent_leave(gossip_agent_t *agent, uint32_t linger_ms);

/* Stops the thread (without leaving: to the others this looks like a crash unless
 * gossip_agent_leave came first), closes the sockets and frees; sets *agent_p to NULL. Safe
 * on NULL. */
void gossip_agent_destroy(gossip_agent_t **agent_p);

/* The bound gossip endpoint (borrowed while the agent lives). */
const char *gossip_agent_endpoint(const gossip_agent_t *agent);

/* The current membership snapshot: a new reference the caller releases with view_unref. */
view_t *gossip_agent_view(gossip_agent_t *agent);

/* 0, or the error that stopped the agent (SHOAL_ECONFIG when the cluster refused us); the
 * message is copied into `message` (may be NULL) of `cap` bytes. */
int gossip_agent_status(gossip_agent_t *agent, char *message, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
