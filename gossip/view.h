/*
 * view.h - the membership view: an immutable, reference-counted snapshot of the member list
 * with a version that grows on every membership change, and a holder through which the
 * gossip thread publishes new snapshots while data-path threads read the current one.
 *
 * Thread safety: a view_t never changes after view_from_swim returns, so any number of
 * threads may read it; view_ref/view_unref are atomic. view_holder_t is safe to use from any
 * thread (a mutex guards the pointer swap; readers hold it only to take a reference).
 */
#ifndef SHOAL_VIEW_H
#define SHOAL_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "hrw.h"
#include "swim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One member in a view. */
typedef struct view_member {
    uint8_t id[SWIM_ID_LEN];                /* node id */
    char name[SWIM_NAME_MAX + 1];           /* node name */
    char gossip_ep[SWIM_ADDR_MAX + 1];      /* gossip endpoint */
    char data_ep[SWIM_ADDR_MAX + 1];        /* data endpoint (where page requests go) */
    char host_id[SWIM_HOST_ID_MAX + 1];     /* host it runs on ("" = not advertised) */
    char local_socket[SWIM_SOCKET_MAX + 1]; /* its local socket path ("" = none) */
    uint64_t incarnation;                   /* member's incarnation */
    swim_state_t state;                     /* alive, suspect, dead or left */
    uint64_t weight;                        /* capacity bytes */
    bool is_self;                           /* the local node */
    uint64_t last_heard_ms;                 /* driver time of its last message (0: never/self) */
} view_member_t;

typedef struct view view_t;

/* Snapshots the core's member list (sorted by id) and version. Caller owns the result (one
 * reference); NULL when out of memory. Must run on the thread that owns `swim`. */
view_t *view_from_swim(const swim_t *swim);

/* Builds a view from an array (copied, then sorted by id): for tests and for clients that
 * receive a member list over the wire. Caller owns the result; NULL when out of memory. */
view_t *view_new(uint64_t version, const view_member_t *members, size_t n);

/* Takes another reference (atomic). Returns `view`. */
view_t *view_ref(view_t *view);
/* Drops a reference and sets *view_p to NULL; the last one frees the view. Safe on NULL. */
void view_unref(view_t **view_p);

/* Version of the membership this view shows. */
uint64_t view_version(const view_t *view);
/* Number of members (all states). */
size_t view_count(const view_t *view);
/* Member i, 0 <= i < view_count (borrowed while the caller holds a reference). */
const view_member_t *view_member(const view_t *view, size_t i);
/* Member by id, or NULL (binary search; borrowed like view_member). */
const view_member_t *view_find(const view_t *view, const uint8_t id[SWIM_ID_LEN]);
/* Number of members alive or suspect. */
size_t view_live_count(const view_t *view);
/* The members as placement candidates, index-aligned with view_member(): pass to
 * hrw_owners(view_hrw(v), view_count(v), ...) and the indexes it returns are member
 * indexes. Live = alive or suspect. Borrowed like view_member. */
const hrw_member_t *view_hrw(const view_t *view);

/* A holder of the current view. */
typedef struct view_holder view_holder_t;

/* Creates a holder with an empty view (version 0). Caller owns it; NULL if out of memory. */
view_holder_t *view_holder_new(void);
/* Frees the holder and its reference to the current view; sets *holder_p to NULL. Safe on
 * NULL. No other thread may use the holder any more. */
void view_holder_destroy(view_holder_t **holder_p);
/* Makes `*view_p` current, taking ownership of that reference and setting *view_p to NULL.
 * An older version than the current one is ignored (and released). */
void view_holder_publish(view_holder_t *holder, view_t **view_p);
/* Returns a new reference to the current view; the caller releases it with view_unref. */
view_t *view_holder_get(view_holder_t *holder);

#ifdef __cplusplus
}
#endif
#endif
