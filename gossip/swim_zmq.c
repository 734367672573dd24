/*
 * swim_zmq.c - ZeroMQ transport for the SWIM core: a ROUTER to receive, a DEALER per peer to
 * send, non-blocking everywhere. Peers are kept in a small open-addressing table by endpoint.
 */
#include "swim_zmq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "shoal_err.h"
#include "swim.h"
#include "swim_proto.h"

typedef struct s_peer {
    char *endpoint; /* owned; NULL = empty slot */
    void *dealer;   /* DEALER connected to endpoint */
} s_peer_t;

struct swim_zmq {
    void *ctx;                        /* borrowed context */
    void *router;                     /* bound ROUTER */
    char endpoint[SWIM_ADDR_MAX + 1]; /* resolved bound endpoint */
    int sndhwm;                       /* per-peer queue */
    s_peer_t *peers;                  /* open addressing by endpoint hash */
    size_t n_peers;                   /* used slots */
    size_t cap_peers;                 /* slots (power of two) */
};

static size_t s_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return (size_t)h;
}

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
    z->cap_peers = 64;
    z->peers = calloc(z->cap_peers, sizeof *z->peers);
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
    for (size_t i = 0; i < z->cap_peers && z->peers; i++) {
        if (z->peers[i].endpoint == NULL)
            continue;
        zmq_close(z->peers[i].dealer);
        free(z->peers[i].endpoint);
    }
    free(z->peers);
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

static s_peer_t *s_slot(swim_zmq_t *z, const char *endpoint)
{
    size_t mask = z->cap_peers - 1;
    for (size_t i = s_hash(endpoint) & mask;; i = (i + 1) & mask)
        if (z->peers[i].endpoint == NULL || strcmp(z->peers[i].endpoint, endpoint) == 0)
            return &z->peers[i];
}

void *swim_zmq_peer_socket(swim_zmq_t *zmq, const char *endpoint)
{
    return s_slot(zmq, endpoint)->dealer;
}

/* Doubles the table when it would pass half full. */
static int s_grow(swim_zmq_t *z)
{
    if ((z->n_peers + 1) * 2 <= z->cap_peers)
        return 0;
    s_peer_t *old = z->peers;
    size_t old_cap = z->cap_peers;
    s_peer_t *peers = calloc(old_cap * 2, sizeof *peers);
    if (peers == NULL)
        return SHOAL_ENOMEM;
    z->peers = peers;
    z->cap_peers = old_cap * 2;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].endpoint != NULL)
            *s_slot(z, old[i].endpoint) = old[i];
    free(old);
    return 0;
}

static s_peer_t *s_peer(swim_zmq_t *z, const char *endpoint)
{
    s_peer_t *p = s_slot(z, endpoint);
    if (p->endpoint != NULL)
        return p;
    if (s_grow(z) != 0)
        return NULL;
    p = s_slot(z, endpoint);
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
    p->endpoint = strdup(endpoint);
    if (p->endpoint == NULL) {
        zmq_close(dealer);
        return NULL;
    }
    p->dealer = dealer;
    z->n_peers++;
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
    s_peer_t *p = s_slot(zmq, endpoint);
    if (p->endpoint == NULL)
        return;
    zmq_close(p->dealer);
    free(p->endpoint);
    p->endpoint = NULL;
    p->dealer = NULL;
    zmq->n_peers--;
    /* Re-insert the rest of the cluster so linear probing still finds every entry. */
    size_t mask = zmq->cap_peers - 1;
    for (size_t i = ((size_t)(p - zmq->peers) + 1) & mask; zmq->peers[i].endpoint != NULL;
         i = (i + 1) & mask) {
        s_peer_t moved = zmq->peers[i];
        zmq->peers[i].endpoint = NULL;
        *s_slot(zmq, moved.endpoint) = moved;
    }
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
