/*
 * swim_int.h - the inside of the SWIM core, shared by its files (internal to gossip/):
 * swim.c (state, merge rules, messages, API) and swim_probe.c (the failure detector:
 * probing, indirect probes, Lifeguard suspicion and local health).
 */
#ifndef SHOAL_SWIM_INT_H
#define SHOAL_SWIM_INT_H

#include "rng.h"
#include "swim.h"
#include "swim_members.h"
#include "swim_proto.h"
#include "vec.h"

#define SWIM_RELAY_MAX 32 /* indirect probes relayed for others at once; more are dropped */
#define SWIM_STALE_MAX 8  /* stale records corrected per received message */

/* A PING we send for someone else's PING_REQ: ACK or NACK goes back to the requester. */
typedef struct swim_relay {
    bool used;                         /* slot in use */
    uint64_t my_seq;                   /* seq of our PING to the target */
    uint64_t orig_seq;                 /* requester's probe seq, echoed in ACK/NACK */
    uint64_t deadline_ms;              /* NACK the requester at this time */
    char requester[SWIM_ADDR_MAX + 1]; /* requester's gossip endpoint */
} swim_relay_t;

/* The probe in flight (at most one at a time, as in SWIM). */
typedef struct swim_probe {
    bool active;             /* a probe is in flight */
    uint8_t target[16];      /* probed member's id (looked up again: it may be forgotten) */
    uint64_t seq;            /* seq of the PING (and of the PING_REQs) */
    uint64_t timeout_at;     /* direct ack deadline: then indirect probes */
    uint64_t end_at;         /* end of the probe: no ack by then = failed */
    bool indirect_sent;      /* PING_REQs sent */
    bool acked_directly;     /* unused once done; kept for stats */
    uint32_t expected_nacks; /* PING_REQs sent (each relay NACKs if the target is silent) */
    uint32_t nacks;          /* NACKs received */
} swim_probe_t;

/* Invariants: self is in table; every member in state suspect/dead/left is in the timer list
 * and only those; n_live == number of members alive or suspect (self included while not
 * left); probe_order holds distinct non-self members. */
struct swim {
    swim_opts_t opts;                       /* settings (strings point into self) */
    swim_table_t table;                     /* every known member */
    swim_member_t *self;                    /* our own record (in table) */
    swim_dissem_t dq;                       /* records waiting to be gossiped */
    swim_member_t *timers;                  /* head of the suspect/dead/left list */
    size_t n_live;                          /* members alive or suspect */
    VEC(swim_member_t *) probe_order;       /* shuffled round-robin probe list */
    size_t probe_pos;                       /* next entry to probe */
    swim_probe_t probe;                     /* probe in flight */
    swim_relay_t relays[SWIM_RELAY_MAX];    /* indirect probes relayed for others */
    uint32_t lhm;                           /* Lifeguard local health multiplier */
    uint64_t seq;                           /* last seq used */
    uint64_t next_probe_ms;                 /* next probe start */
    uint64_t next_gossip_ms;                /* next gossip round */
    uint64_t next_push_pull_ms;             /* next SYNC push */
    uint64_t next_reconnect_ms;             /* next SYNC to a dead member */
    uint64_t next_join_ms;                  /* next JOIN to the seeds */
    char **seeds;                           /* seed endpoints (owned) */
    size_t n_seeds;                         /* number of seeds */
    bool joined;                            /* a seed (or anyone) answered */
    bool leaving;                           /* swim_leave was called */
    int status;                             /* 0 or the sticky error */
    uint64_t version;                       /* membership version */
    rng_t rng;                              /* proto/rng.h xorshift64*, seeded in swim_new */
    msg_buf_t buf;                          /* encode buffer, reused (limit SWIM_MSG_MAX) */
    VEC(swim_update_t) scratch;             /* records for a SYNC (capacity only), reused */
    swim_member_t *taken[SWIM_UPDATES_MAX]; /* piggyback choice, reused */
    swim_member_t *stale[SWIM_STALE_MAX];   /* members the current sender has old news of */
    size_t n_stale;                         /* entries in stale */
    swim_stats_t stats;                     /* counters */
};

/* swim.c */
void swim_emit(swim_t *swim, swim_member_t *member, swim_state_t old_state, bool added,
               bool removed);
void swim_set_state(swim_t *swim, swim_member_t *member, swim_state_t state, uint64_t now_ms);
void swim_queue(swim_t *swim, swim_member_t *member);
int swim_send(swim_t *swim, const char *to, swim_msg_t *msg, swim_member_t *first);
int swim_send_records(swim_t *swim, const char *to, swim_msg_t *msg, swim_member_t *const *extra,
                      size_t n_extra);
void swim_msg_init(swim_t *swim, swim_msg_t *msg, uint32_t type);

/* swim_probe.c */
void swim_probe_tick(swim_t *swim, uint64_t now_ms);
void swim_probe_relays(swim_t *swim, uint64_t now_ms);
void swim_probe_on_ack(swim_t *swim, const swim_msg_t *msg, uint64_t now_ms);
void swim_probe_on_nack(swim_t *swim, const swim_msg_t *msg);
void swim_probe_on_ping_req(swim_t *swim, const swim_msg_t *msg, uint64_t now_ms);
void swim_probe_add_member(swim_t *swim, swim_member_t *member);
void swim_probe_remove_member(swim_t *swim, swim_member_t *member);
uint64_t swim_probe_deadline(const swim_t *swim);
void swim_lhm_apply(swim_t *swim, int delta);
/* Starts (or confirms) a suspicion of `member` by `suspecter`. Returns true if anything
 * changed (new suspicion or new independent confirmation): the record is then re-gossiped. */
bool swim_suspect(swim_t *swim, swim_member_t *member, const uint8_t suspecter[16],
                  uint64_t now_ms);
/* When the suspicion of `member` expires (Lifeguard: shrinks with confirmations). */
uint64_t swim_suspicion_deadline(const swim_member_t *member);
/* When an unconfirmed suspicion is gossiped once more (the deadline if not applicable). */
uint64_t swim_suspicion_reminder(const swim_member_t *member);

#endif
