/*
 * swim_zmq.c - ZeroMQ transport for the SWIM core: a ROUTER to receive, a DEALER per peer to
 * send, non-blocking everywhere. Peers are kept in proto's hash table by endpoint (keyed
 * SipHash: endpoints come from peers).
 */
#include "swim_zmq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "htab.h"
#include "shoal_err.h"
#include "swim.h"
#include "swim_proto.h"

typedef struct s_peer {
    char *endpoint; /* owned; also the table's (borrowed) key */
    void *dealer;   /* DEALER connected to endpoint, owned */
} s_peer_t;

struct swim_zmq {
    void *ctx;                        /* borrowed context */
    void *router;                     /* bound ROUTER */
    char endpoint[SWIM_ADDR_MAX + 1]; /* resolved bound endpoint */
    int sndhwm;                       /* per-peer queue */
    htab_t *peers;                    /* endpoint -> s_peer_t (owned) */
};

swim_zmq_t *swim_zmq_new(void *zmq_ctx, const swim_zmq_opts_t *opts)
{
    if (opts->curve_secret_key != NULL || opts->curve_public_key != NULL) {
        shoal_fail(SHOAL_ENOTSUP, "gossip: CurveZMQ encryption is not implemented yet");
        return NULL;
    }
    swim_zmq_t *z = calloc(1, sizeof *z);
    if (z == NULL) {
        shoal_fail(SHOAL_ENOMEM, "gossip: out of memory");
        return NULL;
    }
    z->ctx = zmq_ctx;
    z->sndhwm = opts->sndhwm > 0 ? opts->sndhwm : 16;
    z->peers = htab_new(32, false);
    z->router = zmq_socket(zmq_ctx, ZMQ_ROUTER);
    if (z->peers == NULL || z->router == NULL)
        goto fail;
    int zero = 0;
    int64_t maxmsg = SWIM_MSG_MAX;
    int rcvhwm = 1000;
    zmq_setsockopt(z->router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(z->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(z->router, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
    if (zmq_bind(z->router, opts->bind_ep) != 0) {
        shoal_fail(SHOAL_EINVAL, "gossip: cannot bind %s: %s", opts->bind_ep,
                   zmq_strerror(zmq_errno()));
        swim_zmq_destroy(&z);
        return NULL;
    }
    size_t len = sizeof z->endpoint;
    if (zmq_getsockopt(z->router, ZMQ_LAST_ENDPOINT, z->endpoint, &len) != 0)
        goto fail;
    return z;
fail:
    shoal_fail(SHOAL_EIO, "gossip: cannot set up the gossip socket: %s", zmq_strerror(zmq_errno()));
    swim_zmq_destroy(&z);
    return NULL;
}

void swim_zmq_destroy(swim_zmq_t **zmq_p)
{
    swim_zmq_t *z = *zmq_p;
    if (z == NULL)
        return;
    size_t cursor = 0;
    void *value = NULL;
    while (z->peers && htab_next(z->peers, &cursor, NULL, NULL, &value)) {
        s_peer_t *p = value;
        zmq_close(p->dealer);
        free(p->endpoint);
        free(p);
    }
    htab_destroy(&z->peers);
    if (z->router)
        zmq_close(z->router);
    free(z);
    *zmq_p = NULL;
}

const char *swim_zmq_endpoint(const swim_zmq_t *zmq)
{
    return zmq->endpoint;
}

void *swim_zmq_socket(swim_zmq_t *zmq)
{
    return zmq->router;
}

/* The peer of `endpoint`, or NULL. Borrowed. */
static s_peer_t *s_find(const swim_zmq_t *z, const char *endpoint)
{
    return htab_get(z->peers, endpoint, strlen(endpoint));
}

void *swim_zmq_peer_socket(swim_zmq_t *zmq, const char *endpoint)
{
    s_peer_t *p = s_find(zmq, endpoint);
    return p ? p->dealer : NULL;
}

/* The peer of `endpoint`, connected on first use; NULL when that fails. Borrowed. */
static s_peer_t *s_peer(swim_zmq_t *z, const char *endpoint)
{
    s_peer_t *p = s_find(z, endpoint);
    if (p != NULL)
        return p;
    void *dealer = zmq_socket(z->ctx, ZMQ_DEALER);
    if (dealer == NULL)
        return NULL;
    int one = 1, zero = 0, reconnect_max = 1000;
    zmq_setsockopt(dealer, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt(dealer, ZMQ_SNDHWM, &z->sndhwm, sizeof z->sndhwm);
    zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(dealer, ZMQ_RECONNECT_IVL_MAX, &reconnect_max, sizeof reconnect_max);
    if (zmq_connect(dealer, endpoint) != 0) {
        zmq_close(dealer);
        return NULL;
    }
    p = calloc(1, sizeof *p);
    if (p != NULL)
        p->endpoint = strdup(endpoint);
    if (p == NULL || p->endpoint == NULL ||
        htab_put(z->peers, p->endpoint, strlen(p->endpoint), p, NULL) < 0) {
        if (p != NULL)
            free(p->endpoint);
        free(p);
        zmq_close(dealer);
        return NULL;
    }
    p->dealer = dealer;
    return p;
}

int swim_zmq_connect(swim_zmq_t *zmq, const char *endpoint)
{
    if (strcmp(endpoint, zmq->endpoint) == 0)
        return 0;
    return s_peer(zmq, endpoint)
               ? 0
               : shoal_fail(SHOAL_EINVAL, "gossip: cannot connect to %s", endpoint);
}

void swim_zmq_forget(swim_zmq_t *zmq, const char *endpoint)
{
    s_peer_t *p = htab_remove(zmq->peers, endpoint, strlen(endpoint));
    if (p == NULL)
        return;
    zmq_close(p->dealer);
    free(p->endpoint);
    free(p);
}

static int s_send(void *ctx, const char *to, const uint8_t *bytes, size_t len)
{
    swim_zmq_t *z = ctx;
    s_peer_t *p = s_peer(z, to);
    if (p == NULL)
        return SHOAL_EUNAVAIL;
    /* Non-blocking: no completed connection (IMMEDIATE) or a full queue means a lost
     * message, which SWIM handles. */
    if (zmq_send(p->dealer, bytes, len, ZMQ_DONTWAIT) < 0)
        return errno == EAGAIN ? SHOAL_EUNAVAIL : SHOAL_EIO;
    return 0;
}

swim_transport_t swim_zmq_transport(swim_zmq_t *zmq)
{
    swim_transport_t t = {s_send, zmq};
    return t;
}

int swim_zmq_recv(swim_zmq_t *zmq, uint8_t *buf, size_t cap)
{
    zmq_msg_t identity, payload;
    zmq_msg_init(&identity);
    if (zmq_msg_recv(&identity, zmq->router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&identity);
        return 0;
    }
    zmq_msg_close(&identity);
    int rc = 0;
    int more = 1;
    bool first = true;
    /* Read every remaining frame of this message; only [identity, payload] is valid. */
    while (more) {
        zmq_msg_init(&payload);
        if (zmq_msg_recv(&payload, zmq->router, 0) < 0) {
            zmq_msg_close(&payload);
            return SHOAL_EPROTO;
        }
        more = zmq_msg_more(&payload);
        if (!first) {
            rc = SHOAL_EPROTO;
        } else if (zmq_msg_size(&payload) > cap) {
            rc = SHOAL_EMSGSIZE;
        } else {
            memcpy(buf, zmq_msg_data(&payload), zmq_msg_size(&payload));
            rc = (int)zmq_msg_size(&payload);
        }
        first = false;
        zmq_msg_close(&payload);
    }
    return rc;
}
