/*
 * request.h - one request in the node, from the hit worker that decoded it to the thread that
 * answers it, and the per-thread reply sink that sends answers back to the router thread.
 * Exactly one reply (or one deliberate drop) ends every request: request_finish counts it.
 */
#ifndef SHOAL_NODE_REQUEST_H
#define SHOAL_NODE_REQUEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "membership.h"
#include "mount.h"
#include "proto.h"
#include "stats.h"

/* What every thread that answers requests shares (borrowed from the node, which outlives its
 * threads): the ZeroMQ context for each thread's PUSH, the view version each reply carries,
 * the counters, and the count of requests taken off the ROUTER and not finished yet. */
typedef struct request_env {
    void *zmq_context;         /* the node's context */
    membership_t *members;     /* membership (thread safe), for the view version */
    stats_t *stats;            /* counters (atomics) */
    _Atomic int64_t *inflight; /* requests taken and not finished */
} request_env_t;

/* A decoded request and its route back. */
typedef struct node_request {
    zmq_msg_t identity;        /* ROUTER routing id of the client (moved to the reply) */
    bool has_delimiter;        /* the client sent an empty delimiter frame (REQ style) */
    int64_t received_ns;       /* CLOCK_MONOTONIC when the router thread got it */
    msg_t msg;                 /* the decoded request (owned) */
    char uri[URI_MAX + 2];     /* its uri after mount_check, for uri-bearing types */
    _Atomic int64_t *inflight; /* counted into this when taken (borrowed; request_env_t) */
} node_request_t;

/* Frees a request that was answered (or dropped), counts it out of its `inflight`, and sets
 * *request_p to NULL; safe on NULL. */
void request_finish(node_request_t **request_p);

/* A thread's way back to the router: its own PUSH socket to inproc://replies (ZeroMQ sockets
 * are never shared between threads) and a reusable encode buffer. */
typedef struct reply_sink {
    void *socket;             /* PUSH, connected to the router thread's PULL */
    msg_buf_t buf;            /* encode buffer, reused */
    const request_env_t *env; /* for the view version and the counters (borrowed) */
} reply_sink_t;

/* What a thread does with a request it took: answers `*request_p` (or queues it on), takes
 * ownership and sets it to NULL. `arg` is the handler's own state, given with it. The hit
 * workers' dispatch (server.h) and the fetch threads' handler (fetch.h) have this shape. */
typedef void (*request_handler_fn)(void *arg, reply_sink_t *sink, node_request_t **request_p);

/* Connects a sink for the calling thread to the router's PULL. `env` is borrowed for the
 * sink's life. Returns 0 or SHOAL_EIO (logged). */
int reply_sink_init(reply_sink_t *sink, const request_env_t *env);

/* Closes the socket and frees the buffer. */
void reply_sink_fini(reply_sink_t *sink);

/*
 * Sends `reply` (its header's request id and view version are set here) to the client of
 * `request`, followed by `frame_count` raw frames, whose contents are moved (closed on any
 * outcome). Encoding failures turn into an ERROR reply. Consumes the request's identity: call
 * once per request. Returns 0 or a negative code (the reply was lost: the client times out).
 */
int reply_send(reply_sink_t *sink, node_request_t *request, msg_t *reply, zmq_msg_t *frames,
               uint32_t frame_count);

/* As reply_send, but for a partial reply of a streamed READ (reply->body.read_reply.more set):
 * sends a copy of the request's identity, so more replies can follow. Returns as reply_send. */
int reply_send_partial(reply_sink_t *sink, node_request_t *request, msg_t *reply, zmq_msg_t *frames,
                       uint32_t frame_count);

/* Sends the header already encoded in sink->buf (by membership_encode_reply, say), with no raw
 * frames. Consumes the request's identity. Returns as reply_send. */
int reply_send_encoded(reply_sink_t *sink, node_request_t *request);

/* Sends ERROR `code` with a printf-style message, and counts it. Returns as reply_send. */
int reply_error(reply_sink_t *sink, node_request_t *request, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
