/*
 * swim.h - the SWIM membership core (with the Lifeguard refinements): a state machine with no
 * sockets, no threads and no clock of its own.
 *
 * A driver (the gossip agent, or the fake network of the tests and the simulator) calls
 * swim_tick() when swim_next_deadline() is due and swim_receive() for every message that
 * arrives; the core sends through the transport seam (swim_transport.h). Not thread-safe:
 * one driver thread owns a swim_t. Readers on other threads use view.h snapshots.
 */
#ifndef SHOAL_SWIM_H
#define SHOAL_SWIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "swim_transport.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SWIM_ID_LEN      16  /* bytes of a node id */
#define SWIM_NAME_MAX    63  /* longest node name (bytes, without the NUL) */
#define SWIM_ADDR_MAX    255 /* longest endpoint string (bytes, without the NUL) */
#define SWIM_HOST_ID_MAX 128 /* longest host id (proto/hostid.h HOST_ID_MAX), without the NUL */
#define SWIM_SOCKET_MAX  107 /* longest local socket path: sun_path's 108 bytes less the NUL */

typedef struct swim swim_t;

/* Member states. The numbers travel on the wire. */
typedef enum swim_state {
    SWIM_ALIVE = 0,   /* answering probes */
    SWIM_SUSPECT = 1, /* missed a probe; dead when the suspicion timeout expires unrefuted */
    SWIM_DEAD = 2,    /* failed: suspicion expired */
    SWIM_LEFT = 3,    /* left gracefully: not a failure */
} swim_state_t;

/* Returns "alive", "suspect", "dead" or "left" (static; "?" for anything else). */
const char *swim_state_name(int state);

/* A read-only copy of one member's record. Strings are borrowed from the core until the next
 * swim_tick, swim_receive, swim_join, swim_leave or swim_set_weight call. */
typedef struct swim_member_info {
    uint8_t id[SWIM_ID_LEN];  /* node id */
    const char *name;         /* human name (may be "") */
    const char *gossip_ep;    /* gossip endpoint, e.g. "tcp://10.0.0.5:7947" */
    const char *data_ep;      /* data endpoint for page requests */
    const char *host_id;      /* host it runs on (proto/hostid.h; may be "") */
    const char *local_socket; /* its local (AF_UNIX) socket path for same-host clients; "" none */
    uint64_t incarnation;     /* raised only by the member itself (refutation, restart, leave) */
    swim_state_t state;       /* alive, suspect, dead or left */
    uint64_t weight;          /* cache capacity in bytes (placement weight) */
    uint64_t last_heard_ms;   /* driver time of the last message from it (0: never) */
    uint64_t state_since_ms;  /* driver time of the last state change */
    bool is_self;             /* this is the local node */
} swim_member_info_t;

/* What the core tells its owner. */
typedef enum swim_event_kind {
    SWIM_EVENT_MEMBER = 1, /* a member was added, changed state/address/weight, or forgotten */
    SWIM_EVENT_ERROR = 2,  /* a fatal condition (refused by the cluster: SHOAL_ECONFIG) */
} swim_event_kind_t;

typedef struct swim_event {
    swim_event_kind_t kind;    /* which of the two */
    swim_member_info_t member; /* SWIM_EVENT_MEMBER: the member after the change */
    swim_state_t old_state;    /* state before (== member.state if only data changed) */
    bool added;                /* the member is new to this node */
    bool removed;              /* the member was forgotten (dead/left long enough) */
    int error;                 /* SWIM_EVENT_ERROR: the SHOAL_E* code */
    const char *message;       /* SWIM_EVENT_ERROR: detail (borrowed for the callback) */
    uint64_t version;          /* membership version after the change */
} swim_event_t;

/* Settings. swim_opts_default() fills the defaults (see gossip/README.md); fields marked
 * "required" have none. Strings are copied by swim_new. */
typedef struct swim_opts {
    uint8_t id[SWIM_ID_LEN];  /* required: this node's id (persist it across restarts) */
    const char *name;         /* node name ("" allowed) */
    const char *gossip_ep;    /* required: where peers reach this node's gossip */
    const char *data_ep;      /* data endpoint advertised to peers ("" allowed) */
    const char *host_id;      /* host id advertised (<= SWIM_HOST_ID_MAX; NULL/"" = none) */
    const char *local_socket; /* local socket path advertised (<= SWIM_SOCKET_MAX; NULL/"" none);
                               * host_id and local_socket are fixed for the core's lifetime */
    uint64_t weight;          /* placement weight: capacity bytes */
    uint64_t incarnation;     /* starting incarnation (persisted + 1 after a restart) */
    uint32_t page_size;       /* cluster setting: must match every member's */
    uint32_t range_pages;     /* cluster setting: must match every member's */
    uint32_t placement;       /* cluster setting: placement version (hrw.h), default current */

    uint32_t probe_interval_ms;       /* one probe per interval (x LHM+1) */
    uint32_t probe_timeout_ms;        /* direct ack deadline before indirect probes (x LHM+1) */
    uint32_t indirect_checks;         /* k: members asked to PING_REQ a silent target */
    double suspicion_mult;            /* min suspicion = mult x max(1, log10 N) x probe_interval */
    uint32_t suspicion_min_ms;        /* ... but never less than this (0: no floor) */
    uint32_t suspicion_max_mult;      /* max suspicion = this x min (Lifeguard) */
    uint32_t suspicion_confirmations; /* K: independent suspicions that shrink max to min */
    uint32_t retransmit_mult;         /* each update is sent mult x ceil(log10(N+1)) times */
    uint32_t gossip_interval_ms;      /* dedicated gossip round period (0: piggyback only) */
    uint32_t gossip_nodes;            /* members gossiped to per round */
    uint32_t max_piggyback;           /* most records carried per message */
    uint32_t piggyback_bytes;         /* stop adding records past this many bytes */
    uint32_t push_pull_interval_ms;   /* full-state SYNC period (scaled up above 32 members) */
    uint32_t reconnect_interval_ms;   /* SYNC to a random dead member (partition healing) */
    uint32_t awareness_max_mult;      /* LHM counts 0 .. this - 1; timeouts scale by LHM+1 */
    uint32_t dead_forget_ms;          /* dead/left members are forgotten after this */
    uint32_t join_retry_ms;           /* JOIN to every seed this often until one answers */
    uint32_t leave_fanout;            /* members sent the LEAVE message directly */
    uint64_t seed;                    /* PRNG seed (0: derived from the id) */

    swim_transport_t transport; /* required: how to send (borrowed; must outlive swim) */
    void (*on_event)(void *ctx, const swim_event_t *event); /* optional; must not re-enter */
    void *event_ctx;                                        /* passed to on_event */
} swim_opts_t;

/* Fills `opts` with the shoal defaults (memberlist LAN profile, tuned as gossip/README.md
 * explains) and zeroes the rest. */
void swim_opts_default(swim_opts_t *opts);

/* Sets the timing fields of `opts` to HashiCorp memberlist's DefaultLANConfig exactly (for
 * comparison in the simulator); leaves identity, settings and transport alone. */
void swim_opts_memberlist(swim_opts_t *opts);

/* Counters, for the simulator and stats. */
typedef struct swim_stats {
    uint64_t msgs_sent;      /* messages handed to the transport */
    uint64_t bytes_sent;     /* bytes handed to the transport */
    uint64_t msgs_received;  /* messages given to swim_receive */
    uint64_t bytes_received; /* bytes given to swim_receive */
    uint64_t bad_messages;   /* refused by the decoder */
    uint64_t probes;         /* probes started */
    uint64_t probe_failures; /* probes that ended in a suspicion */
    uint64_t refutations;    /* times this node refuted its own suspicion or death */
} swim_stats_t;

/* Creates a core whose only member is itself (alive). Returns NULL on bad options (with the
 * detail in shoal_last_error()) or out of memory. Caller owns the result. */
swim_t *swim_new(const swim_opts_t *opts, uint64_t now_ms);

/* Frees the core and sets *swim_p to NULL. Sends nothing (call swim_leave first for a
 * graceful exit). Safe on NULL. */
void swim_destroy(swim_t **swim_p);

/* Joins a cluster through seed gossip endpoints (copied): sends JOIN to every seed now and
 * every join_retry_ms until one answers. Seeds equal to our own endpoint are skipped; with
 * none left the node forms a cluster of its own. Returns 0 or SHOAL_ENOMEM. */
int swim_join(swim_t *swim, const char *const *seeds, size_t n_seeds, uint64_t now_ms);

/* Leaves gracefully: marks itself left with a higher incarnation and sends LEAVE to up to
 * leave_fanout members. Peers record "left", never "suspect" or "dead". After it, the core
 * answers pings and gossips the leave but probes nobody. Returns 0. */
int swim_leave(swim_t *swim, uint64_t now_ms);

/* Changes this node's placement weight and announces it (raises the incarnation). */
void swim_set_weight(swim_t *swim, uint64_t weight, uint64_t now_ms);

/* Runs the timers due at now_ms: probes, indirect probes, suspicion timeouts, gossip rounds,
 * push-pull, join retries, forgetting. Returns 0, or the sticky error (SHOAL_ECONFIG after
 * the cluster refused this node: the core then does nothing more). */
int swim_tick(swim_t *swim, uint64_t now_ms);

/* Handles one message. `bytes` are borrowed for the call; `from` (may be NULL) names the
 * transport-level source for logs only. Returns 0, SHOAL_EPROTO for a malformed message
 * (counted and dropped; never a crash), or SHOAL_ECONFIG when the message came from a node
 * with different cluster settings (refused; shoal_last_error() says which). */
int swim_receive(swim_t *swim, uint64_t now_ms, const char *from, const uint8_t *bytes, size_t len);

/* The earliest time at which swim_tick has something to do. */
uint64_t swim_next_deadline(const swim_t *swim);

/* 0, or the sticky error that stopped the core (SHOAL_ECONFIG). */
int swim_status(const swim_t *swim);

/* True once a seed answered (or none was needed). */
bool swim_is_joined(const swim_t *swim);

/* Membership version: grows by one on every change that an event reports. */
uint64_t swim_version(const swim_t *swim);

/* Number of members known, self included (dead and left ones until forgotten). */
size_t swim_member_count(const swim_t *swim);

/* Copies member i (0 <= i < swim_member_count) into *info. Order is arbitrary and changes
 * when members are forgotten. Strings are borrowed (see swim_member_info_t). */
void swim_member_at(const swim_t *swim, size_t i, swim_member_info_t *info);

/* Looks a member up by id. Returns 0 or SHOAL_ENOENT. */
int swim_member_find(const swim_t *swim, const uint8_t id[SWIM_ID_LEN], swim_member_info_t *info);

/* Records waiting to be gossiped (0 in a quiet cluster). */
size_t swim_queue_length(const swim_t *swim);

/* The local health multiplier (Lifeguard): 0 when healthy. */
uint32_t swim_lhm(const swim_t *swim);

/* Current incarnation of this node (persist it; restart with it + 1). */
uint64_t swim_incarnation(const swim_t *swim);

/* Counters since swim_new. */
void swim_get_stats(const swim_t *swim, swim_stats_t *stats);

#ifdef __cplusplus
}
#endif
#endif
