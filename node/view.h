/*
 * view.h - the membership seam: the node's current view (members and a version that grows on
 * every change) behind one small interface. Today the node fills it with itself alone; the
 * gossip agent (issue #5) will call view_set_members on every change and nothing else in the
 * node has to change. VIEW replies and the view_version of every reply come from here.
 */
#ifndef SHOAL_NODE_VIEW_H
#define SHOAL_NODE_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* One member as the view holds it (a copy; no pointers). */
typedef struct view_member {
    uint8_t id[MSG_NODE_ID_SIZE];                  /* node id (16 random bytes) */
    char name[MSG_NAME_MAX + 1];                   /* --name */
    char data_endpoint[MSG_ENDPOINT_MAX + 1];      /* "tcp://host:port" for data requests */
    char gossip_endpoint[MSG_ENDPOINT_MAX + 1];    /* gossip endpoint, may be "" */
    uint32_t state;                                /* msg_member_state_t */
    uint64_t incarnation;                          /* SWIM incarnation */
    uint64_t weight;                               /* cache capacity in bytes */
    int64_t last_heard_ns;                         /* CLOCK_MONOTONIC of last contact; 0 = self */
} view_member_t;

/* The view. Thread safe: readers (any worker) and the writer (the gossip agent) may call at
 * once; the member list is replaced as a whole under a lock. */
typedef struct view view_t;

/* Makes an empty view (version 0) carrying the cluster settings. Returns NULL when out of
 * memory. Caller owns it. */
view_t *view_new(uint64_t page_size, uint32_t range_pages);

/* Frees *self_p and sets it to NULL; safe on NULL. */
void view_destroy(view_t **self_p);

/* Replaces the member list with a copy of `members` (count <= MSG_MEMBERS_MAX) and bumps the
 * version by one. Returns 0, SHOAL_EINVAL or SHOAL_ENOMEM (the old list stays). Borrows. */
int view_set_members(view_t *self, const view_member_t *members, size_t count);

/* The current version; lock-free, for the envelope of every reply. */
uint64_t view_version(view_t *self);

/* Number of members now. */
size_t view_member_count(view_t *self);

/* Encodes a VIEW_REP answering `request_id` into `out` (replacing its contents) from a
 * consistent snapshot. Returns msg_encode's result. */
int view_encode_reply(view_t *self, uint64_t request_id, msg_buf_t *out);

#endif
