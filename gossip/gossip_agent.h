/*
 * gossip_agent.h - a running gossip member: the SWIM core, the ZeroMQ transport and the
 * monotonic clock driven by a czmq actor (a thread of its own with a command pipe), with
 * start/leave/stop and a view for other threads.
 *
 * Gossip gets its own port and thread so that bulk data traffic cannot delay probes. The
 * actor's thread is the only one that touches the core; other threads read membership
 * through gossip_agent_view() (an immutable refcounted snapshot) or get a callback on the
 * actor's thread after each change. gossip_agent_view, _status and _endpoint are thread-safe;
 * start, leave and destroy talk to the actor's pipe and belong to one owner thread at a time.
 * czmq stays inside gossip_agent.c: this header does not include it.
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
    /* Called on the actor's thread after each batch of membership changes, and at least once
     * a second even without one (same version; fresh last_heard_ms), with the new snapshot
     * (borrowed for the call; view_ref it to keep it). Optional. */
    void (*on_view)(void *ctx, view_t *view);
    void *ctx; /* passed to on_view */
} gossip_agent_opts_t;

/* Sets up the process's one ZeroMQ context, czmq's (zsys_handler_set(NULL), then
 * zsys_init()) with `io_threads` ZeroMQ I/O threads (0: czmq's default, 1), without czmq's
 * SIGINT/SIGTERM handlers: for a program that takes signals
 * itself (shoald, with sigwait). Call once, early, before other threads start; a program that
 * skips it gets czmq's defaults at the first gossip_agent_new. Returns the raw libzmq context
 * (borrowed: czmq terminates it at exit, so no socket in it may outlive main) or NULL. */
void *gossip_agent_process_init(size_t io_threads);

/* The process's one ZeroMQ context as a raw libzmq context (zsys_init(): the one
 * gossip_agent_process_init set up, or a new one with czmq's defaults), for code that makes raw
 * libzmq sockets without including czmq.h (the node's data path). Borrowed: never shut it
 * down or terminate it; czmq terminates it at exit, so close every socket made in it before
 * main returns, with an explicit ZMQ_LINGER (czmq's context is blocky). NULL on failure. */
void *gossip_agent_zmq_context(void);

/* Creates the agent and binds its socket in czmq's process context (so gossip_agent_endpoint
 * is known before start); does not start the actor. Returns NULL with shoal_last_error() set on
 * failure. Caller owns the result. */
gossip_agent_t *gossip_agent_new(const gossip_agent_opts_t *opts);

/* Starts the actor (zactor_new), which connects to the seeds, waits for those connections
 * (at most join_retry_ms) and joins. Returns 0, SHOAL_EINVAL when already started, or
 * SHOAL_ENOMEM. */
int gossip_agent_start(gossip_agent_t *agent);

/* Leaves gracefully: the actor announces "left" (swim_leave) and keeps answering gossip until
 * the leave is out (the "left" record was sent its retransmit count of times and a peer was
 * heard since) or linger_ms passes, whichever is first; returns then. Call
 * gossip_agent_destroy next. Returns 0, SHOAL_EINVAL if the agent is not running, or SHOAL_EIO
 * if the actor did not answer. */
int gossip_agent_leave(gossip_agent_t *agent, uint32_t linger_ms);

/* Stops the actor ($TERM, answered at once even while peers are dead; without leaving: to the
 * others this looks like a crash unless gossip_agent_leave came first), closes the sockets and
 * frees; sets *agent_p to NULL. Safe on NULL. */
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
