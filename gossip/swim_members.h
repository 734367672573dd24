/*
 * swim_members.h - the member table of the SWIM core (internal to gossip/).
 *
 * Members live in a dense array (proto's vec, for uniform random choice and iteration) plus
 * an open-addressing hash by id (for O(1) lookup on every received record; kept instead of
 * proto's htab on measurement, see gossip/README.md "Base layer"). A member also
 * carries the intrusive links of the dissemination queue (swim_dissem_*, also in
 * swim_members.c) and of the timer list (suspect, dead and left members), so no per-message
 * allocation is ever needed.
 */
#ifndef SHOAL_SWIM_MEMBERS_H
#define SHOAL_SWIM_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "swim.h"
#include "swim_proto.h"
#include "vec.h"

#define SWIM_CONFIRM_MAX 8 /* most Lifeguard confirmations remembered per suspicion */

/* Lifeguard suspicion of one member; allocated while the member is suspect.
 * Invariant: n_confirmers <= k <= SWIM_CONFIRM_MAX; min_ms <= max_ms. */
typedef struct swim_suspicion {
    uint64_t start_ms;                        /* when this node started suspecting */
    uint64_t min_ms;                          /* timeout with k confirmations */
    uint64_t max_ms;                          /* timeout with none */
    uint32_t k;                               /* confirmations expected */
    uint32_t n_confirmers;                    /* independent confirmations so far */
    uint8_t confirmers[SWIM_CONFIRM_MAX][16]; /* who confirmed (first suspecter excluded) */
    uint8_t suspecter[16];                    /* the suspecter gossiped with the update */
    bool reminded;                            /* re-gossiped once halfway (swim.c) */
} swim_suspicion_t;

typedef struct swim_member swim_member_t;
struct swim_member {
    uint8_t id[SWIM_ID_LEN];     /* node id: the key of the table */
    char *name;                  /* points into strings */
    char *gossip_ep;             /* points into strings */
    char *data_ep;               /* points into strings */
    char *host_id;               /* points into strings ("" = not advertised) */
    char *local_socket;          /* points into strings ("" = none) */
    char *strings;               /* one allocation holding the five strings */
    uint64_t incarnation;        /* latest incarnation seen */
    uint64_t weight;             /* capacity bytes */
    swim_state_t state;          /* alive, suspect, dead or left */
    uint64_t last_heard_ms;      /* last message from it */
    uint64_t state_since_ms;     /* last state change */
    size_t index;                /* position in swim_table_t.members */
    swim_suspicion_t *suspicion; /* non-NULL iff state == SWIM_SUSPECT */
    /* dissemination queue (swim_dissem_*, swim_members.c) */
    swim_member_t *dq_prev; /* previous in its bucket */
    swim_member_t *dq_next; /* next in its bucket */
    int32_t dq_bucket;      /* transmissions so far, or -1 when not queued */
    /* timer list: members in state suspect, dead or left */
    swim_member_t *tm_prev; /* previous in the timer list */
    swim_member_t *tm_next; /* next in the timer list */
    bool in_timers;         /* linked into the timer list */
};

/* Invariant: members.items[i]->index == i; every member is in exactly one hash slot; slot_cap
 * is a power of two and members.len * 2 <= slot_cap. */
typedef struct swim_table {
    VEC(swim_member_t *) members; /* dense array of members.len members (owned) */
    swim_member_t **slots;        /* hash slots (NULL = empty), linear probing */
    size_t slot_cap;              /* number of slots */
} swim_table_t;

/* Sets up an empty table. Returns 0 or SHOAL_ENOMEM. */
int swim_table_init(swim_table_t *table);
/* Frees every member and the table's arrays. */
void swim_table_fini(swim_table_t *table);
/* Finds a member by id; borrowed pointer, valid until it is removed. NULL if absent. */
swim_member_t *swim_table_find(const swim_table_t *table, const uint8_t id[SWIM_ID_LEN]);
/* Adds member u->id (alive, incarnation 0, u's five strings copied: name, gossip_ep, data_ep,
 * host_id, local_socket; u is borrowed) that must not exist yet. Returns the new member
 * (owned by the table) or NULL when out of memory. */
swim_member_t *swim_table_add(swim_table_t *table, const swim_update_t *u);
/* Replaces a member's five strings with u's (copied). Returns 0 or SHOAL_ENOMEM (member
 * unchanged). */
int swim_member_set_strings(swim_member_t *member, const swim_update_t *u);
/* True if the member's five strings equal u's. */
bool swim_member_strings_equal(const swim_member_t *member, const swim_update_t *u);
/* Removes and frees a member. The caller must have unlinked it from the queue and timers. */
void swim_table_remove(swim_table_t *table, swim_member_t *member);
/* Builds a swim_str_t from a C string. */
swim_str_t swim_str(const char *cstr);

/* Dissemination queue: members whose current record still has to be gossiped, bucketed by
 * how often it was sent, so taking the least-sent records is O(taken).
 * Invariant: a member is in bucket dq_bucket iff dq_bucket >= 0. */
#define SWIM_DQ_BUCKETS 64
typedef struct swim_dissem {
    swim_member_t *head[SWIM_DQ_BUCKETS]; /* first member of each bucket */
    swim_member_t *tail[SWIM_DQ_BUCKETS]; /* last member of each bucket */
    size_t count;                         /* members queued */
} swim_dissem_t;

/* (Re)queues a member's record with zero transmissions. */
void swim_dissem_push(swim_dissem_t *dq, swim_member_t *member);
/* Unqueues a member if queued. */
void swim_dissem_remove(swim_dissem_t *dq, swim_member_t *member);
/* Takes up to `max` records (and stops once `budget` bytes are reached), least-sent first, into out
 * (caller's array); each one's count goes up by one and a record sent `limit` times leaves the
 * queue. `first` (may be NULL) is put first, queued or not (the buddy system: a probed suspect
 * hears of its suspicion in the probe itself). Returns how many were taken. */
size_t swim_dissem_take(swim_dissem_t *dq, size_t max, size_t budget, uint32_t limit,
                        swim_member_t *first, swim_member_t **out);
/* Encoded size of a member's record (upper bound), for the byte budget above. */
size_t swim_member_wire_size(const swim_member_t *member);

#endif
