/*
 * swim_zmq.h - the real transport behind swim_transport.h: ZeroMQ sockets.
 *
 * One ROUTER bound on the gossip port receives; one DEALER per peer sends, with
 * ZMQ_IMMEDIATE=1 (queue only to a completed connection), a small SNDHWM and LINGER 0, and
 * every send is non-blocking: a message to a dead or slow peer is dropped, never queued,
 * exactly the loss model SWIM assumes. Not thread-safe: the gossip agent's thread owns it.
 * Plain libzmq, no czmq: the sockets are raw handles, which a czmq zpoller polls as is.
 *
 * Encryption hook: CurveZMQ is not wired yet. swim_zmq_opts_t carries the key fields it will
 * use; setting them today fails with SHOAL_ENOTSUP rather than silently sending plaintext.
 */
#ifndef SHOAL_SWIM_ZMQ_H
#define SHOAL_SWIM_ZMQ_H

#include <stddef.h>
#include <stdint.h>

#include "swim_transport.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct swim_zmq swim_zmq_t;

typedef struct swim_zmq_opts {
    const char *bind_ep;          /* required: e.g. "tcp://127.0.0.1:7947" or "...:0" (any port) */
    int sndhwm;                   /* per-peer send queue in messages (0: default 16) */
    const char *curve_secret_key; /* future: Z85 secret key of this node (NULL: plaintext) */
    const char *curve_public_key; /* future: Z85 public key of this node */
} swim_zmq_opts_t;

/* Binds the ROUTER in `zmq_ctx` (a raw libzmq context, borrowed; must outlive the transport:
 * the gossip agent passes czmq's process context from zsys_init()). Returns the transport
 * (caller owns it) or NULL with shoal_last_error() set (bind failure, or curve keys given). */
swim_zmq_t *swim_zmq_new(void *zmq_ctx, const swim_zmq_opts_t *opts);
/* Closes every socket (unsent messages are dropped: LINGER 0) and frees; sets *zmq_p to NULL.
 * Safe on NULL. */
void swim_zmq_destroy(swim_zmq_t **zmq_p);

/* The bound endpoint with the real port (after "...:0"), e.g. "tcp://127.0.0.1:40123".
 * Borrowed while the transport lives. */
const char *swim_zmq_endpoint(const swim_zmq_t *zmq);
/* The transport seam for swim_opts_t.transport (ctx is `zmq`). */
swim_transport_t swim_zmq_transport(swim_zmq_t *zmq);
/* The ROUTER socket, for zmq_poll or a czmq zpoller (borrowed). */
void *swim_zmq_socket(swim_zmq_t *zmq);
/* The DEALER open to `endpoint` (borrowed), or NULL when none is. For ZMQ_POLLOUT: with
 * ZMQ_IMMEDIATE it is writable exactly once its connection is complete. */
void *swim_zmq_peer_socket(swim_zmq_t *zmq, const char *endpoint);

/* Opens the DEALER to `endpoint` now, so that its connection is up before the first probe
 * (with ZMQ_IMMEDIATE a message to a connection still in progress is dropped). Returns 0 or
 * a negative SHOAL_E* code. */
int swim_zmq_connect(swim_zmq_t *zmq, const char *endpoint);
/* Closes the DEALER to `endpoint`, if any (the member was forgotten). */
void swim_zmq_forget(swim_zmq_t *zmq, const char *endpoint);

/* Receives one message without blocking into buf (caller's, `cap` bytes). Returns its length,
 * 0 when nothing is waiting, or SHOAL_EMSGSIZE / SHOAL_EPROTO for a message that did not fit
 * or was not [identity, payload] (it is consumed and dropped). */
int swim_zmq_recv(swim_zmq_t *zmq, uint8_t *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
