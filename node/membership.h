/*
 * membership.h - the node's membership seam: the current member list (id, endpoints, host id
 * and local socket, state, incarnation, weight, last heard) and a view version, behind one small
 * interface. The gossip agent (cluster.c) calls membership_set_members after every change; VIEW
 * replies, the view_version of every reply and the placement decisions of the read path (forward.c)
 * come from here. Without gossip (unit tests) the node sets it once to itself alone.
 *
 * The view version is comparable across nodes: it is the wall clock in milliseconds at the
 * change (or the previous version + 1 when the clock has not moved), so a client that fetched
 * its view from one node sees a later change on any other node as a newer version. A restart
 * never goes back to a smaller version. Clocks more than a change interval apart only delay
 * a refresh until the client's next timeout forces one.
 */
#ifndef SHOAL_NODE_MEMBERSHIP_H
#define SHOAL_NODE_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* One member as the node holds it (a copy; no pointers). */
typedef struct membership_member {
    uint8_t id[MSG_NODE_ID_SIZE];                /* node id (16 random bytes) */
    char name[MSG_NAME_MAX + 1];                 /* --name */
    char data_endpoint[MSG_ENDPOINT_MAX + 1];    /* "tcp://host:port" for data requests */
    char gossip_endpoint[MSG_ENDPOINT_MAX + 1];  /* gossip endpoint, may be "" */
    char host_id[MSG_HOST_ID_MAX + 1];           /* host it runs on (--host-id), may be "" */
    char local_socket[MSG_LOCAL_SOCKET_MAX + 1]; /* its local socket path, "" = none */
    uint32_t state;                              /* msg_member_state_t */
    uint64_t incarnation;                        /* SWIM incarnation */
    uint64_t weight;                             /* cache capacity in bytes */
    int64_t last_heard_ns;                       /* CLOCK_MONOTONIC of last contact; 0 = self */
} membership_member_t;

/* The membership. Thread safe: readers (any worker) and the writer (the gossip thread) may
 * call at once; the member list is replaced as a whole under a lock. */
typedef struct membership membership_t;

/* Makes an empty membership (version 0) carrying the cluster settings and this node's id.
 * Returns NULL when out of memory. Caller owns it. */
membership_t *membership_new(uint64_t page_size, uint32_t range_pages,
                             const uint8_t self_id[MSG_NODE_ID_SIZE]);

/* Frees *self_p and sets it to NULL; safe on NULL. */
void membership_destroy(membership_t **self_p);

/* Replaces the member list with a copy of `members` (count <= MSG_MEMBERS_MAX). The version
 * moves on (see above) only when something other than last_heard_ns changed, so the periodic
 * refresh of last-heard times does not make clients fetch the view again. Returns 0,
 * SHOAL_EINVAL or SHOAL_ENOMEM (the old list stays). Borrows. */
int membership_set_members(membership_t *self, const membership_member_t *members, size_t count);

/* Called after every membership_set_members (on the writer's thread, outside the lock): the
 * gossip agent sets the list after each change and at least once a second, so an observer
 * learns soon of what the writer knows (node.c uses it to notice a refusal). */
typedef void membership_observer_fn(void *ctx);

/* Sets the observer (NULL: none). Not thread safe: call before the writer starts. `ctx` is
 * borrowed and must outlive the membership or the next call. */
void membership_set_observer(membership_t *self, membership_observer_fn *observer, void *ctx);

/* The current version; lock-free, for the envelope of every reply. */
uint64_t membership_version(membership_t *self);

/* Number of members now (every state). */
size_t membership_member_count(membership_t *self);

/* Copies the member with `id` into *out. Returns 0 or SHOAL_ENOENT. */
int membership_find(membership_t *self, const uint8_t id[MSG_NODE_ID_SIZE],
                    membership_member_t *out);

/* Placement of one key (hrw.h, R = 1, over the members alive or suspect with a data
 * endpoint). Returns 1 when this node owns the key (or no member is live), 0 when another
 * member does: its data endpoint is copied to `endpoint` (cap bytes). */
int membership_owner(membership_t *self, const uint8_t *key, size_t key_len, char *endpoint,
                     size_t cap);

/* Encodes a VIEW_REP answering `request_id` into `out` (replacing its contents) from a
 * consistent snapshot. Returns msg_encode's result. */
int membership_encode_reply(membership_t *self, uint64_t request_id, msg_buf_t *out);

#endif
