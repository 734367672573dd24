/*
 * swim_proto.h - the gossip wire format: encode and decode SWIM messages (msgpack).
 *
 * No I/O and no state. The decoder trusts nothing: every length is bounded, every field's type
 * checked, and a message is validated whole before the core applies any part of it.
 *
 * Every message is one msgpack array (protocol version 1; the type numbers are proto.h's
 * enum msg_type, MSG_PING 64 .. MSG_GOSSIP 71, from the range 64..79 kept for gossip there):
 *
 *   [ version, type, from_id, from_addr, <body by type> ]
 *     uint=1   uint  bin16    str<=255
 *
 *   type         body
 *   64 PING      seq uint, target_id bin16, updates
 *   65 ACK       seq uint, updates
 *   66 PING_REQ  seq uint, target_id bin16, target_addr str<=255, updates
 *   67 NACK      seq uint, updates
 *   68 SYNC      kind uint (0 push, 1 reply, 2 refused), page_size uint32, range_pages uint32,
 *                members [, placement uint32]
 *   69 JOIN      page_size uint32, range_pages uint32, members (the joiner's own record)
 *                [, placement uint32]
 *   70 LEAVE     updates (the leaver's own record, state left)
 *   71 GOSSIP    updates
 *
 *   updates, members = array (<= SWIM_UPDATES_MAX; SYNC <= SWIM_SYNC_MAX) of records:
 *   [ id bin16, name str<=63, gossip_ep str<=255, data_ep str<=255, incarnation uint,
 *     state uint 0..3, weight uint, suspecter bin16 | nil,
 *     host_id str<=128, local_socket str<=107 ]
 *
 * `host_id` (proto/hostid.h) and `local_socket` (the member's AF_UNIX socket for clients on
 * its host, "" = none) were added as two trailing elements (issue 11): 10 elements are sent;
 * a record of 8 (a build before them) still decodes, with both "". Builds before them refuse
 * a 10-element record (a wrong element count), so, as with the placement version, upgrade a
 * cluster as a whole. Both are fixed for a member's lifetime (set at start), so they change
 * only with a restart, which raises the incarnation anyway.
 *
 * `suspecter` is the member whose failed probe started a suspicion (Lifeguard counts
 * independent suspecters as confirmations); nil for other states. A SYNC "refused" reply
 * carries the refuser's own page_size, range_pages and placement and no members.
 *
 * `placement` is the placement version (HRW_PLACEMENT_VERSION, gossip/hrw.h), a cluster setting
 * like page_size: the last element of SYNC and JOIN, after the members. Builds before placement
 * versions send no such element, so an absent one decodes as version 1 (HRW_PLACEMENT_LEGACY),
 * and version 1 (or 0, unset) is encoded by leaving it out (the exact old wire form); a
 * present 0 is malformed. Those older builds
 * refuse the longer SYNC and JOIN as malformed (a wrong field count): a mixed cluster never
 * forms, and the new side names both versions when it refuses.
 */
#ifndef SHOAL_SWIM_PROTO_H
#define SHOAL_SWIM_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "hrw.h"
#include "mp.h"
#include "proto.h"
#include "swim.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SWIM_PROTO_VERSION    1
#define SWIM_UPDATES_MAX      256         /* records in a non-SYNC message */
#define SWIM_SYNC_MAX         65536       /* records in a SYNC or JOIN message */
#define SWIM_MSG_MAX          (16u << 20) /* largest message accepted (a 65536-member SYNC fits) */
#define SWIM_RECORD_MIN       25          /* smallest possible encoded record, to bound counts */
#define SWIM_RECORD_FIELDS    10          /* elements of a record as sent */
#define SWIM_RECORD_FIELDS_V1 8           /* ... as builds before host_id sent it (still read) */

enum swim_sync_kind {
    SWIM_SYNC_PUSH = 0,    /* here is my state; answer with yours */
    SWIM_SYNC_REPLY = 1,   /* answer to a PUSH or a JOIN */
    SWIM_SYNC_REFUSED = 2, /* your cluster settings differ from mine: here are mine */
};

/* A string slice: borrowed bytes, not NUL-terminated. */
typedef struct swim_str {
    const char *ptr; /* first byte (borrowed) */
    size_t len;      /* byte count */
} swim_str_t;

/* One member record as it travels. Encoding borrows the strings from the caller; decoding
 * points them into the message bytes. */
typedef struct swim_update {
    uint8_t id[16];          /* member id */
    swim_str_t name;         /* <= 63 bytes */
    swim_str_t gossip_ep;    /* <= 255 bytes */
    swim_str_t data_ep;      /* <= 255 bytes */
    swim_str_t host_id;      /* <= 128 bytes; "" when absent (8-element record) */
    swim_str_t local_socket; /* <= 107 bytes; "" when absent or none */
    uint64_t incarnation;    /* member's incarnation */
    uint8_t state;           /* swim_state_t, 0..3 */
    uint64_t weight;         /* capacity bytes */
    bool has_suspecter;      /* suspecter is meaningful */
    uint8_t suspecter[16];   /* who suspected it (state suspect) */
} swim_update_t;

/* A message header. For encoding fill the fields the type uses; decoding fills them and
 * leaves a cursor on the records. Strings are borrowed as in swim_update_t. */
typedef struct swim_msg {
    uint32_t type;          /* enum msg_type (proto.h), MSG_PING .. MSG_GOSSIP */
    uint8_t from_id[16];    /* sender id */
    swim_str_t from_addr;   /* sender's gossip endpoint (replies go there) */
    uint64_t seq;           /* PING, ACK, PING_REQ, NACK: probe sequence number */
    uint8_t target_id[16];  /* PING, PING_REQ: who is being probed */
    swim_str_t target_addr; /* PING_REQ: its endpoint */
    uint32_t sync_kind;     /* SYNC: enum swim_sync_kind */
    uint32_t page_size;     /* SYNC, JOIN: cluster setting */
    uint32_t range_pages;   /* SYNC, JOIN: cluster setting */
    uint32_t placement;     /* SYNC, JOIN: placement version (decoded >= 1; <= 1 sent as none) */
    uint32_t n_updates;     /* decoded: number of records */
    mp_reader_t records;    /* decoded: over the records not yet read (internal) */
} swim_msg_t;

/* Encodes `msg` with `n` records (borrowed) into buf (the caller's msg_buf_t, reset first;
 * its limit is lowered to SWIM_MSG_MAX when unset or larger). Returns 0, SHOAL_EINVAL for an
 * unknown type or overlong field, SHOAL_ENOMEM or SHOAL_EMSGSIZE. */
int swim_msg_encode(msg_buf_t *buf, const swim_msg_t *msg, const swim_update_t *updates, size_t n);

/* Encoded size of one record (to fill a message up to a budget). */
size_t swim_update_size(const swim_update_t *update);

/* Decodes and validates a whole message, records included. On success msg's strings point
 * into `bytes` (borrowed: keep them alive while using msg) and swim_msg_next_update() walks
 * the records. Returns 0 or SHOAL_EPROTO (detail in shoal_last_error()); never reads outside
 * [bytes, bytes + len). */
int swim_msg_decode(swim_msg_t *msg, const uint8_t *bytes, size_t len);

/* Reads the next record of a decoded message into *update. Returns 1 when one was read, 0 at
 * the end. (The message was validated by swim_msg_decode, so this cannot fail.) */
int swim_msg_next_update(swim_msg_t *msg, swim_update_t *update);

#ifdef __cplusplus
}
#endif
#endif
