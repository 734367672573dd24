/*
 * swim_transport.h - the seam through which the SWIM core sends bytes.
 *
 * The core never touches a socket: it hands each encoded message to `send` with the
 * destination's gossip endpoint. Two implementations: ZeroMQ (swim_zmq.c) and the in-process
 * fake network of the tests and the simulator (swim_fake.c). Receiving is the driver's job:
 * it calls swim_receive() with whatever arrives.
 */
#ifndef SHOAL_SWIM_TRANSPORT_H
#define SHOAL_SWIM_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct swim_transport {
    /* Sends `len` bytes (borrowed for the call only: copy them if kept) to the gossip endpoint
     * `to` (NUL-terminated). Best effort, like UDP: returns 0 when handed over, or a negative
     * SHOAL_E* code; the core treats a failure as a lost message and never retries. Must not
     * call back into the core. */
    int (*send)(void *ctx, const char *to, const uint8_t *bytes, size_t len);
    void *ctx; /* passed to send; owned by whoever set up the transport */
} swim_transport_t;

#ifdef __cplusplus
}
#endif
#endif
