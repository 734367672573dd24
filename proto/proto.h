/*
 * proto.h - the shoal wire protocol, v1: message types, their C structs, and the codec that
 * turns them into and out of one msgpack header frame. No I/O: the node and the client put the
 * bytes into ZeroMQ frames. The format is drawn below so that a client in another language
 * can implement it from this file alone.
 */
#ifndef SHOAL_PROTO_H
#define SHOAL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp.h"
#include "shoal_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * WIRE FORMAT (v1)
 * ================
 *
 * A message is one ZeroMQ multipart message:
 *
 *   +-------------------+-------------+-------------+-----+-------------+
 *   | header frame      | raw frame 0 | raw frame 1 | ... | raw frame   |
 *   | (msgpack, <= 1MiB)| (bytes)     | (bytes)     |     | frames-1    |
 *   +-------------------+-------------+-------------+-----+-------------+
 *
 * (ROUTER/DEALER routing frames, if any, come before and are not part of the message.)
 * Raw frames carry page bytes and are never msgpack-encoded. Only READ replies carry raw
 * frames in v1; every other message has frames = 0.
 *
 * The header frame is exactly one msgpack array, nothing after it:
 *
 *   [ proto_version, type, request_id, view_version, frames, body ]
 *     uint (=1)      uint  uint64      uint64        uint    any (a map for every type below)
 *
 *   proto_version  MSG_PROTO_VERSION. Read first; any other value is refused with SHOAL_EPROTO
 *                  ("protocol version 2, this node speaks 1"), whatever follows.
 *   type           msg_type_t below. Requests are even, their reply is request + 1.
 *   request_id     chosen by the requester, echoed unchanged in the reply (also in ERROR).
 *   view_version   the sender's membership view version. A receiver that sees a newer one
 *                  than its own should fetch the VIEW again.
 *   frames         number of raw frames that follow the header frame (<= MSG_READ_PAGES_MAX).
 *                  The receiver checks it against the frames it actually got.
 *   body           the type's body. Gossip types (64..79) define their own body (gossip/);
 *                  all other types use a map keyed by small unsigned integers.
 *   A v1 decoder accepts (and ignores) extra array elements after `body`, so later versions
 *   may append envelope fields.
 *
 * Integers may use any msgpack integer encoding (encoders use the smallest). Strings are
 * msgpack str, UTF-8 expected but not checked, and must not contain a NUL byte. Node ids are
 * bin 16. Booleans are msgpack true/false.
 *
 * Body maps: { key: value, ... }, keys are small uints. A key not listed for the type is
 * skipped (any value, nested at most 16 deep), so new optional fields can be added without a
 * version bump. A key listed twice is refused. A missing "req" (required) field is refused
 * with SHOAL_EPROTO; a missing optional field takes the default shown.
 *
 *   type  name           body keys (key name type [default])
 *   ----  -------------  --------------------------------------------------------------------
 *     1   ERROR          1 code int req (a SHOAL_E* code, < 0)   2 message str ["" ] (<= 4096)
 *     2   VIEW_REQ       (empty map)
 *     3   VIEW_REP       1 view_version uint req   2 page_size uint req (1 .. 1 GiB)
 *                        3 range_pages uint req (1 .. 65536)
 *                        4 members array req (<= 4096) of member maps:
 *                          1 id bin16 req   2 name str [""] (<= 256)
 *                          3 data_endpoint str req (<= 256)   4 gossip_endpoint str [""] (<= 256)
 *                          5 state uint req (0 alive, 1 suspect, 2 dead, 3 left)
 *                          6 incarnation uint [0]   7 weight uint [0] (capacity bytes)
 *                          8 last_heard_ms uint [0] (ms since the sender last heard from it)
 *                        5 placement uint [1] (>= 1: the cluster's placement version,
 *                          HRW_PLACEMENT_VERSION in gossip/hrw.h; builds before placement
 *                          versions send none, hence 1; a client of another version refuses
 *                          the view rather than route by another hash)
 *     4   STAT_REQ       1 uri str req (<= 4096)
 *     5   STAT_REP       1 size uint req   2 mtime int [0] (s since epoch)
 *                        3 version str [""] (<= 255)   4 is_dir bool [false]
 *     6   LIST_REQ       1 uri str req   2 recursive bool [false]
 *                        3 cursor str [""] (<= 4096; "" = from the start)
 *                        4 max_entries uint [0] (0 = node's default; <= 1000)
 *     7   LIST_REP       1 entries array req (<= 1000) of entry maps:
 *                          1 uri str req   2 size uint [0]   3 mtime int [0]
 *                          4 version str [""]   5 is_dir bool [false]
 *                        2 next_cursor str [""] ("" = listing complete; <= 4096)
 *     8   READ_REQ       1 uri str req   2 version str [""] ("" = current version)
 *                        3 offset uint req   4 length uint req   5 flags uint [0]
 *                          (bit 0 FORWARDED, bit 1 NO_CACHE, bit 2 STREAM, bit 3
 *                          REVALIDATE; other bits refused)
 *                        6 file_size uint [MSG_SIZE_UNKNOWN] (the size of `version` when the
 *                          client knows it, so the owner of a later range needs no stat;
 *                          only meaningful with a version)
 *     9   READ_REP       1 file_size uint req   2 version str [""]   3 offset uint req
 *                        4 length uint req   5 page_count uint req   6 page_size uint req
 *                        7 more bool [false] (a partial reply: more replies for this request
 *                          id follow; only to a READ_REQ with STREAM)
 *                        8 mtime int [0] (of the version served, seconds; 0 = unknown: with
 *                          file_size and version the reply is the file's stat)
 *     10  LOAD_REQ       1 uri str req   2 version str [""]   3 offset uint [0]
 *                        4 length uint [0] (0 = to the end of the file)
 *                        5 replicas uint [1] (1 .. 16: owners that should hold each page)
 *     11  LOAD_REP       1 pages_loaded uint [0]   2 bytes_loaded uint [0]
 *                        3 pages_cached uint [0] (already present, not fetched)
 *     12  EVICT_REQ      1 uri str req   2 recursive bool [false]
 *     13  EVICT_REP      1 pages_evicted uint [0]   2 bytes_evicted uint [0]
 *     14  STATS_REQ      (empty map)
 *     15  STATS_REP      1 counters array [] (<= 1024) of [name str (<= 128), value uint]
 *                        2 histograms array [] (<= 256) of
 *                          [name str (<= 128), bounds array of uint, counts array of uint]
 *                          bounds: bucket upper bounds, strictly increasing (<= 64);
 *                          counts: same length as bounds
 *   16..19 short-circuit local reads: never sent over ZeroMQ, only as datagrams on a node's
 *          AF_UNIX SOCK_SEQPACKET socket (one datagram = one header frame, <= 256 KiB,
 *          MSG_LOCAL_DATAGRAM_MAX; descriptors ride as SCM_RIGHTS of a LOCATE_REP)
 *     16  LOCAL_HELLO_REQ (empty map)
 *     17  LOCAL_HELLO_REP 1 node_id bin16 req   2 store_id uint req (random u64 chosen at each
 *                        pagestore_open: another value = every descriptor held is void)
 *                        3 host_id str [""] (<= 128)   4 page_size uint req (1 .. 1 GiB)
 *                        5 lease_ms uint req (1 .. 1 day: close a descriptor unused this long)
 *     18  LOCATE_REQ     1 uri str req (normal form, as READ_REQ)   2 version str [""]
 *                        ("" = the version the node's metadata holds, if fresh; never asks
 *                        the origin)   3 offset uint req   4 length uint req (<= 64 MiB)
 *                        5 file_size uint [MSG_SIZE_UNKNOWN]
 *     19  LOCATE_REP     1 file_size uint [MSG_SIZE_UNKNOWN]   2 version str [""]
 *                        3 mtime int [0] (1-3: the version the pages belong to; version ""
 *                        = the node cannot name one without the origin: read the ZeroMQ way)
 *                        4 store_id uint req
 *                        5 pages array [] (<= 64) of page maps, only pages held, in strictly
 *                          increasing index order:
 *                          1 index uint req   2 gen uint req (>= 1)
 *                          3 offset uint req (in the generation's data file)
 *                          4 size uint req (1 .. 1 GiB: the page's stored length)
 *                          5 chunk_shift uint req (12 .. 30; 16 today)
 *                          6 seed uint req (XXH3-64 seed of chunk 0; chunk c uses seed + c)
 *                          7 sums bin req (8 bytes little-endian per chunk, exactly
 *                            ceil(size / 2^chunk_shift) of them, <= 16384: chunk c's
 *                            XXH3_64bits_withSeed(bytes, seed + c) over file bytes
 *                            [offset + c<<shift, min(offset + (c+1)<<shift, offset + size)))
 *                        6 fds array [] (<= 16) of gen uint (>= 1, no repeats): the
 *                          descriptors attached to this datagram, in order (O_RDONLY, each its
 *                          generation's data file; sent once per connection per generation)
 *                        7 gone array [] (<= 64) of gen uint (>= 1): generations this
 *                          connection was sent that are dropped now: close them
 *          A page absent from `pages` is a miss. ERROR answers either request on failure.
 *   64..79 gossip (PING, ACK, PING_REQ, NACK, SYNC, JOIN, LEAVE, GOSSIP; 72..79 free): its own
 *          message layout, drawn in gossip/swim_proto.h
 *
 * READ reply and its raw frames. The reply's [offset, offset + length) is the span of file
 * bytes the raw frames carry, chosen by the node to cover the request: it may start earlier
 * and end later (whole pages, sent without copying) or match it exactly; it is shorter only
 * at the end of the file (offset + length <= file_size). The span is cut at multiples of
 * page_size; frame i carries piece i, so with first = offset / page_size:
 *
 *     frame i = file bytes [max(offset, (first+i)*page_size),
 *                           min(offset+length, (first+i+1)*page_size))
 *
 * page_count is the number of pieces (0 when length is 0) and must equal header.frames;
 * msg_read_frame_length() gives the expected length of each frame, so a receiver checks every
 * frame before using it. Any request may be answered by ERROR instead of its reply.
 *
 * Streamed READ (flag STREAM, "the client accepts a READ answered by several replies"): the
 * node may answer with a sequence of READ_REPs for the one request id, every one but the last
 * with more = true, so that bytes leave while the rest of the range is still arriving from the
 * UFS. Each partial reply is a complete READ_REP by the rules above (its own span, its own
 * page_count frames cut at page_size). The spans are contiguous and in order: the first starts
 * where a single reply would, each next one starts where the previous ended, and all of them
 * together are exactly the span one reply would have carried; every partial span is non-empty.
 * The sequence ends with a reply with more = false, or with an ERROR (the bytes already received
 * are right, but the request failed: retry the whole request). A receiver refuses a partial
 * span that is not contiguous with what it got, lies outside what it asked for, or changes
 * file_size, version or page_size between replies, as it refuses a malformed reply. Without
 * STREAM (old clients, node-to-node forwards) a READ gets exactly one reply, more = false.
 *
 *   READ_REQ STREAM [0, 4 MiB) of a cold range, 1 MiB pages:
 *     READ_REP offset 0      length 1 MiB  page_count 1  more true   (page 0 arrived)
 *     READ_REP offset 1 MiB  length 2 MiB  page_count 2  more true   (pages 1-2 arrived)
 *     READ_REP offset 3 MiB  length 1 MiB  page_count 1  more false  (the last page)
 *
 * Encoders write every field of the type (optional ones too, with their defaults) in key
 * order; decoders accept the fields in any order and any subset that has the required ones.
 *
 * Example: READ_REQ id 7, view 3, uri "s3://b/k", version "", offset 0, length 10, flags 0,
 * size unknown:
 *   96 01 08 07 03 00 86 01 a8 73 33 3a 2f 2f 62 2f 6b 02 a0 03 00 04 0a 05 00
 *   06 cf ff ff ff ff ff ff ff ff
 *   (fixarray 6: version 1, type 8, id 7, view 3, frames 0,
 *    fixmap 6 {1: "s3://b/k", 2: "", 3: 0, 4: 10, 5: 0, 6: 2^64-1})
 *   The shortest form a client may send leaves out the optional keys 2, 5 and 6:
 *   96 01 08 07 03 00 83 01 a8 73 33 3a 2f 2f 62 2f 6b 03 00 04 0a
 */

#define MSG_PROTO_VERSION 1

/* Threads: every function here is reentrant; a msg_t or msg_buf_t is used by one thread at a
 * time. The last error (shoal_last_error) is per thread. */

/* Limits. A decoder refuses anything over them with SHOAL_EPROTO (or SHOAL_EMSGSIZE for a
 * whole frame); an encoder refuses to produce it (SHOAL_EMSGSIZE), so a message this node
 * encodes is always one its peers accept. The frame bound keeps one hostile header from
 * costing more than ~1 MiB of input and a bounded multiple of it in decoded structs. */
#define MSG_FRAME_MAX        (1u << 20) /* bytes in a header frame */
#define MSG_URI_MAX          4096       /* bytes in a uri, excluding the NUL */
#define MSG_VERSION_MAX      255        /* bytes in a version string; fits UFS_VERSION_MAX */
#define MSG_MESSAGE_MAX      4096       /* bytes in an ERROR message */
#define MSG_CURSOR_MAX       4096       /* bytes in a LIST cursor */
#define MSG_NAME_MAX         256        /* bytes in a member name */
#define MSG_ENDPOINT_MAX     256        /* bytes in an endpoint ("tcp://10.0.0.1:7070") */
#define MSG_MEMBERS_MAX      4096       /* members in one VIEW reply */
#define MSG_LIST_ENTRIES_MAX 1000       /* entries in one LIST reply */
#define MSG_READ_PAGES_MAX   4096       /* raw frames after one header (pages in a READ reply) */
#define MSG_PAGE_SIZE_MAX    (1u << 30) /* largest cluster page size */
#define MSG_RANGE_PAGES_MAX  65536      /* largest cluster range, in pages */
#define MSG_REPLICAS_MAX     16         /* LOAD replicas */
#define MSG_STAT_NAME_MAX    128        /* bytes in a counter or histogram name */
#define MSG_COUNTERS_MAX     1024       /* counters in one STATS reply */
#define MSG_HISTOGRAMS_MAX   256        /* histograms in one STATS reply */
#define MSG_BUCKETS_MAX      64         /* buckets in one histogram */
#define MSG_NODE_ID_SIZE     16         /* bytes in a node id */
/* Short-circuit local reads (types 16..19). */
#define MSG_LOCAL_DATAGRAM_MAX (256u << 10) /* bytes in one local datagram (header frame) */
#define MSG_HOST_ID_MAX        128          /* bytes in a host id */
#define MSG_LEASE_MS_MAX       86400000u    /* longest descriptor lease: one day */
#define MSG_LOCATE_LENGTH_MAX  (64u << 20)  /* bytes one LOCATE may ask for */
#define MSG_LOCATE_PAGES_MAX   64           /* pages in one LOCATE reply */
#define MSG_LOCATE_FDS_MAX     16           /* descriptors attached to one LOCATE reply */
#define MSG_LOCATE_GONE_MAX    64           /* dropped generations named in one LOCATE reply */
#define MSG_CHUNK_SHIFT_MIN    12           /* smallest checksummed chunk: 4 KiB */
#define MSG_CHUNK_SHIFT_MAX    30           /* largest checksummed chunk: 1 GiB */
#define MSG_CHUNKS_MAX         16384        /* chunk sums of one located page */

/* Message types. The numbers are the wire values: never renumber, only add. */
typedef enum msg_type {
    MSG_ERROR = 1,           /* reply to any request: code + message */
    MSG_VIEW_REQ = 2,        /* ask for the membership view */
    MSG_VIEW_REP = 3,        /* the view: cluster settings and members */
    MSG_STAT_REQ = 4,        /* metadata of one uri */
    MSG_STAT_REP = 5,        /* size, mtime, version, is_dir */
    MSG_LIST_REQ = 6,        /* one page of a listing */
    MSG_LIST_REP = 7,        /* entries + continuation cursor */
    MSG_READ_REQ = 8,        /* bytes of one file version */
    MSG_READ_REP = 9,        /* span description; page bytes follow as raw frames */
    MSG_LOAD_REQ = 10,       /* warm a byte range into the cache */
    MSG_LOAD_REP = 11,       /* what the load did */
    MSG_EVICT_REQ = 12,      /* drop cached pages of a uri (or prefix) */
    MSG_EVICT_REP = 13,      /* what the eviction freed */
    MSG_STATS_REQ = 14,      /* node counters and histograms */
    MSG_STATS_REP = 15,      /* counters and histograms */
    MSG_TYPE_DATA_LAST = 15, /* highest data-path (ZeroMQ) type in v1 */

    /* Short-circuit local reads: datagrams on a node's UNIX socket, never on ZeroMQ. */
    MSG_LOCAL_HELLO_REQ = 16, /* who are you: node id, store id, page size, lease */
    MSG_LOCAL_HELLO_REP = 17, /* the node and store the connection talks to */
    MSG_LOCATE_REQ = 18,      /* where are the held pages of a span of one file version */
    MSG_LOCATE_REP = 19,      /* page locations, chunk sums, descriptors, dropped generations */
    MSG_TYPE_LOCAL_FIRST = 16,
    MSG_TYPE_LOCAL_LAST = 19,
    MSG_TYPE_BODY_LAST = 19, /* highest type with a body map (the codec's tables) */

    /* Reserved for gossip/: its messages (gossip/swim_proto.h) are not data headers but travel
     * on their own socket as [version, type, from_id, from_addr, body...]; the numbers live
     * here so that the project has one enum of message types. */
    MSG_GOSSIP_FIRST = 64,
    MSG_PING = 64,     /* SWIM direct probe */
    MSG_ACK = 65,      /* answer to PING (direct or relayed) */
    MSG_PING_REQ = 66, /* ask a member to probe another for us */
    MSG_NACK = 67,     /* Lifeguard: relay could not reach the target */
    MSG_SYNC = 68,     /* push-pull anti-entropy: full state exchange */
    MSG_JOIN = 69,     /* join through a seed */
    MSG_LEAVE = 70,    /* graceful leave */
    MSG_GOSSIP = 71,   /* dissemination round: member records only */
    MSG_GOSSIP_LAST = 79,
} msg_type_t;

/* READ request flags (a bitset). */
#define MSG_READ_FORWARDED 1u /* sent by a node on behalf of a client: never forward again */
#define MSG_READ_NO_CACHE  2u /* read through to the UFS without storing the pages */
#define MSG_READ_STREAM    4u /* the client accepts several READ_REPs (partial replies) */
#define MSG_READ_REVALIDATE                                                                        \
    8u /* the client saw the file change: a versionless READ must not trust cached metadata */
#define MSG_READ_FLAGS_ALL                                                                         \
    (MSG_READ_FORWARDED | MSG_READ_NO_CACHE | MSG_READ_STREAM | MSG_READ_REVALIDATE)
/* READ_REQ file_size when the client does not know it. */
#define MSG_SIZE_UNKNOWN UINT64_MAX

/* Member states, as carried in a VIEW reply (same numbers as gossip's). */
typedef enum msg_member_state {
    MSG_MEMBER_ALIVE = 0,
    MSG_MEMBER_SUSPECT = 1,
    MSG_MEMBER_DEAD = 2,
    MSG_MEMBER_LEFT = 3,
} msg_member_state_t;

/* The envelope in front of every body. */
typedef struct msg_header {
    uint32_t proto_version; /* MSG_PROTO_VERSION; set by the encoder, checked by the decoder */
    uint32_t type;          /* a msg_type_t value */
    uint64_t request_id;    /* echoed in the reply */
    uint64_t view_version;  /* sender's view version */
    uint32_t frames;        /* raw frames after the header frame (<= MSG_READ_PAGES_MAX) */
} msg_header_t;

/*
 * Bodies. On encode every pointer is borrowed from the caller for the duration of the call,
 * and a NULL string is sent as "". On decode every pointer points into memory owned by the
 * msg_t (freed by msg_fini) and strings are NUL-terminated, never NULL; an array with a
 * count of 0 may be NULL.
 */

typedef struct msg_error {
    int32_t code;        /* a SHOAL_E* code, < 0 */
    const char *message; /* detail for a human; may be "" */
} msg_error_t;

typedef struct msg_member {
    uint8_t id[MSG_NODE_ID_SIZE]; /* node id */
    const char *name;             /* human name (--name); may be "" */
    const char *data_endpoint;    /* where to send data requests, "tcp://host:port" */
    const char *gossip_endpoint;  /* where gossip listens; may be "" */
    uint32_t state;               /* msg_member_state_t */
    uint64_t incarnation;         /* SWIM incarnation number */
    uint64_t weight;              /* cache capacity in bytes; rendezvous weight */
    uint64_t last_heard_ms;       /* ms since the sender last heard from this member */
} msg_member_t;

typedef struct msg_view_reply {
    uint64_t view_version;       /* version of this view */
    uint64_t page_size;          /* cluster page size in bytes */
    uint32_t range_pages;        /* pages per placement range */
    uint32_t member_count;       /* entries in members */
    const msg_member_t *members; /* member_count members */
    uint32_t placement;          /* placement version (>= 1; absent on the wire = 1) */
} msg_view_reply_t;

typedef struct msg_stat_request {
    const char *uri; /* object or directory */
} msg_stat_request_t;

typedef struct msg_stat_reply {
    uint64_t size;       /* bytes; 0 for directories */
    int64_t mtime;       /* seconds since the epoch; 0 when unknown */
    const char *version; /* ETag or "<size>-<mtime>"; "" for directories */
    bool is_dir;         /* a directory or common prefix */
} msg_stat_reply_t;

typedef struct msg_list_request {
    const char *uri;      /* directory or prefix */
    bool recursive;       /* every object below, not one level */
    const char *cursor;   /* next_cursor of the previous reply, "" to start */
    uint32_t max_entries; /* at most this many entries per reply; 0 = node default */
} msg_list_request_t;

typedef struct msg_entry {
    const char *uri;     /* full uri with scheme */
    uint64_t size;       /* bytes; 0 for directories */
    int64_t mtime;       /* seconds since the epoch; 0 when unknown */
    const char *version; /* as in a STAT reply */
    bool is_dir;         /* a directory or common prefix */
} msg_entry_t;

typedef struct msg_list_reply {
    uint32_t entry_count;       /* entries in this reply (<= MSG_LIST_ENTRIES_MAX) */
    const msg_entry_t *entries; /* entry_count entries */
    const char *next_cursor;    /* "" when the listing is complete */
} msg_list_reply_t;

typedef struct msg_read_request {
    const char *uri;     /* file */
    const char *version; /* the version the client expects; "" = current */
    uint64_t offset;     /* first byte wanted */
    uint64_t length;     /* bytes wanted; the node bounds it (the reply carries at most
                            MSG_READ_PAGES_MAX pages) */
    uint32_t flags;      /* MSG_READ_* bits */
    uint64_t file_size;  /* size of `version` if the client knows it, else MSG_SIZE_UNKNOWN */
} msg_read_request_t;

typedef struct msg_read_reply {
    uint64_t file_size;  /* size of the file version served */
    const char *version; /* the version served */
    uint64_t offset;     /* first file byte in raw frame 0 */
    uint64_t length;     /* bytes in all raw frames together */
    uint32_t page_count; /* raw frames that follow; equals header.frames */
    uint64_t page_size;  /* where the span is cut into frames */
    bool more;           /* a partial reply: more READ_REPs for this request follow */
    int64_t mtime;       /* of the version served, seconds since the epoch; 0 = unknown */
} msg_read_reply_t;

typedef struct msg_load_request {
    const char *uri;     /* file */
    const char *version; /* expected version; "" = current */
    uint64_t offset;     /* first byte to load */
    uint64_t length;     /* bytes to load; 0 = to the end of the file */
    uint32_t replicas;   /* owners per page that should hold it (1 .. MSG_REPLICAS_MAX) */
} msg_load_request_t;

typedef struct msg_load_reply {
    uint64_t pages_loaded; /* pages fetched from the UFS and stored */
    uint64_t bytes_loaded; /* bytes in those pages */
    uint64_t pages_cached; /* pages that were already present */
} msg_load_reply_t;

typedef struct msg_evict_request {
    const char *uri; /* file, or prefix when recursive */
    bool recursive;  /* every file below uri */
} msg_evict_request_t;

typedef struct msg_evict_reply {
    uint64_t pages_evicted; /* pages dropped */
    uint64_t bytes_evicted; /* bytes in those pages */
} msg_evict_reply_t;

typedef struct msg_counter {
    const char *name; /* "reads_total" */
    uint64_t value;   /* current value */
} msg_counter_t;

typedef struct msg_histogram {
    const char *name;       /* "read_latency_us" */
    uint32_t bucket_count;  /* entries in bounds and in counts (<= MSG_BUCKETS_MAX) */
    const uint64_t *bounds; /* bucket upper bounds, strictly increasing */
    const uint64_t *counts; /* observations per bucket */
} msg_histogram_t;

typedef struct msg_stats_reply {
    uint32_t counter_count;            /* entries in counters */
    const msg_counter_t *counters;     /* counter_count counters */
    uint32_t histogram_count;          /* entries in histograms */
    const msg_histogram_t *histograms; /* histogram_count histograms */
} msg_stats_reply_t;

typedef struct msg_local_hello_reply {
    uint8_t node_id[MSG_NODE_ID_SIZE]; /* the node's id */
    uint64_t store_id;                 /* random per pagestore_open; descriptors key on it */
    const char *host_id;               /* the host's id as gossip advertises it; may be "" */
    uint64_t page_size;                /* cluster page size in bytes */
    uint64_t lease_ms;                 /* close a descriptor not used for this long */
} msg_local_hello_reply_t;

typedef struct msg_locate_request {
    const char *uri;     /* file, normal form (uri.h) */
    const char *version; /* the version wanted; "" = the one the node's fresh metadata holds */
    uint64_t offset;     /* first byte wanted */
    uint64_t length;     /* bytes wanted (<= MSG_LOCATE_LENGTH_MAX) */
    uint64_t file_size;  /* size of `version` if the client knows it, else MSG_SIZE_UNKNOWN */
} msg_locate_request_t;

/* Where one held page lies. Invariant (checked by the codec): sum_count ==
 * ceil(size / 2^chunk_shift). */
typedef struct msg_local_page {
    uint64_t index;       /* page index in the file */
    uint64_t gen;         /* generation whose data file holds it (>= 1) */
    uint64_t offset;      /* of its first byte in that data file */
    uint64_t size;        /* its stored length in bytes */
    uint32_t chunk_shift; /* chunks of 2^chunk_shift bytes are checksummed */
    uint64_t seed;        /* XXH3-64 seed of chunk 0; chunk c's is seed + c */
    uint32_t sum_count;   /* entries in sums */
    const uint64_t *sums; /* XXH3_64bits_withSeed of each chunk (wire: bin, 8 bytes LE each) */
} msg_local_page_t;

typedef struct msg_locate_reply {
    uint64_t file_size;            /* of the version the pages belong to; MSG_SIZE_UNKNOWN */
    const char *version;           /* that version; "" = unknown without the origin */
    int64_t mtime;                 /* its mtime, seconds since the epoch; 0 = unknown */
    uint64_t store_id;             /* the store the gens belong to */
    uint32_t page_count;           /* entries in pages (<= MSG_LOCATE_PAGES_MAX) */
    const msg_local_page_t *pages; /* held pages, strictly increasing index */
    uint32_t fd_count;             /* entries in fd_gens (<= MSG_LOCATE_FDS_MAX) */
    const uint64_t *fd_gens;       /* generation of each attached descriptor, in order */
    uint32_t gone_count;           /* entries in gone_gens (<= MSG_LOCATE_GONE_MAX) */
    const uint64_t *gone_gens;     /* dropped generations whose descriptors to close */
} msg_locate_reply_t;

/* A gossip body, opaque to proto: exactly one msgpack value. */
typedef struct msg_raw_body {
    const uint8_t *data; /* the encoded value */
    size_t len;          /* its length in bytes */
} msg_raw_body_t;

struct msg_arena; /* decoded strings and arrays; private to proto.c */

/* One message. Set up with msg_init (or a constructor below) to encode, or filled by
 * msg_decode; released with msg_fini either way. `header.type` selects the body member.
 * A msg_t may be copied by value (it holds no pointers into itself); only one copy may be
 * passed to msg_fini. */
typedef struct msg {
    msg_header_t header; /* envelope */
    union {
        msg_error_t error;                         /* MSG_ERROR */
        msg_view_reply_t view_reply;               /* MSG_VIEW_REP (VIEW_REQ has no body) */
        msg_stat_request_t stat_request;           /* MSG_STAT_REQ */
        msg_stat_reply_t stat_reply;               /* MSG_STAT_REP */
        msg_list_request_t list_request;           /* MSG_LIST_REQ */
        msg_list_reply_t list_reply;               /* MSG_LIST_REP */
        msg_read_request_t read_request;           /* MSG_READ_REQ */
        msg_read_reply_t read_reply;               /* MSG_READ_REP */
        msg_load_request_t load_request;           /* MSG_LOAD_REQ */
        msg_load_reply_t load_reply;               /* MSG_LOAD_REP */
        msg_evict_request_t evict_request;         /* MSG_EVICT_REQ */
        msg_evict_reply_t evict_reply;             /* MSG_EVICT_REP */
        msg_stats_reply_t stats_reply;             /* MSG_STATS_REP (STATS_REQ has no body) */
        msg_local_hello_reply_t local_hello_reply; /* MSG_LOCAL_HELLO_REP (REQ: no body) */
        msg_locate_request_t locate_request;       /* MSG_LOCATE_REQ */
        msg_locate_reply_t locate_reply;           /* MSG_LOCATE_REP */
        msg_raw_body_t raw;                        /* MSG_GOSSIP_FIRST .. MSG_GOSSIP_LAST */
    } body;
    struct msg_arena *arena; /* memory of a decoded message; NULL when built by hand */
} msg_t;

/* Zeroes *m and sets its header (proto_version = MSG_PROTO_VERSION, frames = 0). The body is
 * all zeros except the defaults that are not zero (LOAD_REQ replicas = 1, LOCATE_REQ and
 * LOCATE_REP file_size = MSG_SIZE_UNKNOWN): fill the member for `type`. Does not allocate. */
void msg_init(msg_t *m, msg_type_t type, uint64_t request_id, uint64_t view_version);

/* Frees what msg_decode allocated and zeroes *m. Safe on a zeroed or msg_init'ed msg_t, and
 * twice in a row. */
void msg_fini(msg_t *m);

/* Constructors for the hot path and the common reply: msg_init plus the body fields. All
 * strings are borrowed until the message is encoded. */
/* Sets file_size = MSG_SIZE_UNKNOWN (set body.read_request.file_size when it is known). */
void msg_read_request(msg_t *m, uint64_t request_id, uint64_t view_version, const char *uri,
                      const char *version, uint64_t offset, uint64_t length, uint32_t flags);
/* Also sets header.frames = page_count; more = false (set body.read_reply.more for a partial
 * reply) and mtime = 0 (set body.read_reply.mtime when known). */
void msg_read_reply(msg_t *m, uint64_t request_id, uint64_t view_version, uint64_t file_size,
                    const char *version, uint64_t offset, uint64_t length, uint32_t page_count,
                    uint64_t page_size);
void msg_error(msg_t *m, uint64_t request_id, uint64_t view_version, int code, const char *message);

/* Encodes `m` as one header frame into `out`, replacing its contents (out->len is the frame
 * length on success). Validates what it writes against the limits above, so it never produces
 * a frame a peer would refuse: returns 0, SHOAL_EINVAL (a field out of range: unknown type,
 * string too long, too many entries, READ reply page_count inconsistent with its span), or
 * SHOAL_EMSGSIZE (the frame would exceed MSG_FRAME_MAX, or MSG_LOCAL_DATAGRAM_MAX for a local
 * type), SHOAL_ENOMEM; with a last error.
 * Gossip types encode m->body.raw as the body. `out` is owned by the caller; reuse it to avoid
 * allocating. Costs no allocation once `out` has grown. */
int msg_encode(const msg_t *m, msg_buf_t *out);

/* Decodes one header frame of `len` bytes at `data` into *out, which it overwrites (msg_fini
 * a previously decoded *out first). Never trusts the input: every length and count is bounded,
 * every type checked. Returns 0; SHOAL_EMSGSIZE when len > MSG_FRAME_MAX (or a local type's
 * frame is over MSG_LOCAL_DATAGRAM_MAX); SHOAL_EPROTO for a
 * wrong protocol version, unknown type, malformed msgpack, missing required field, duplicate
 * key, value of the wrong kind or out of range, or trailing bytes; SHOAL_ENOMEM. The last
 * error names the message type and the field. On failure *out is left zeroed (nothing to free,
 * msg_fini is still safe). On success *out owns copies of every string and array (`data` may
 * be freed at once); a READ request costs one allocation. Gossip types decode with the body
 * copied into body.raw. */
int msg_decode(const void *data, size_t len, msg_t *out);

/* For gossip/ and other layers that own their body: writes the envelope of `header` (with
 * proto_version forced to MSG_PROTO_VERSION) into `out`, replacing its contents; the caller
 * must then append exactly one msgpack value as the body (mp_write_* into the same buffer)
 * and check out->err and out->len <= MSG_FRAME_MAX. Returns 0 or SHOAL_EINVAL (frames over
 * MSG_READ_PAGES_MAX) / SHOAL_ENOMEM. */
int msg_header_encode(const msg_header_t *header, msg_buf_t *out);

/* Decodes only the envelope of a header frame and checks that the body is exactly one
 * well-formed msgpack value (nesting <= MP_DEPTH_MAX) followed by nothing but optional extra
 * envelope elements. Sets *header and *body to the body's bytes (borrowed from `data`).
 * Does not allocate and does not look at the type beyond reading it, so gossip can decode its
 * own types. Errors as msg_decode. */
int msg_header_decode(const void *data, size_t len, msg_header_t *header, msg_raw_body_t *body);

/* Returns the static name of a type ("READ_REQ", "PING", ...) or "UNKNOWN". */
const char *msg_type_name(uint32_t type);

/* True for a data request type (even, 2..MSG_TYPE_DATA_LAST: what a node serves over
 * ZeroMQ); its reply type is type + 1. False for the local types. */
bool msg_type_is_request(uint32_t type);

/* True for a request of the local socket (LOCAL_HELLO_REQ, LOCATE_REQ); reply is type + 1. */
bool msg_type_is_local_request(uint32_t type);

/* True for the types of the local socket (MSG_TYPE_LOCAL_FIRST .. MSG_TYPE_LOCAL_LAST). */
bool msg_type_is_local(uint32_t type);

/* Length in bytes that raw frame `index` of a READ reply must have (see the drawing), or 0 if
 * index >= page_count. Meaningful only for a reply that decoded (or encoded) successfully. */
uint64_t msg_read_frame_length(const msg_read_reply_t *reply, uint32_t index);

/* Number of page_size pieces [offset, offset+length) is cut into: the page_count a READ reply
 * for that span must carry. 0 when length or page_size is 0; saturates at UINT32_MAX. */
uint32_t msg_read_page_count(uint64_t offset, uint64_t length, uint64_t page_size);

/* Checks received raw frames against a decoded READ reply: `frame_count` must equal
 * page_count and frame i must be msg_read_frame_length(reply, i) bytes. Returns 0 or
 * SHOAL_EPROTO with a last error naming the first bad frame. */
int msg_read_check_frames(const msg_read_reply_t *reply, const size_t *frame_lengths,
                          size_t frame_count);

/* Upper bound of the bytes one LIST entry adds to an encoded LIST reply, so the node can stop
 * adding entries before a reply would exceed MSG_FRAME_MAX. */
size_t msg_entry_encoded_size_max(const msg_entry_t *entry);

/* True when two messages of the same type carry equal headers and bodies (strings compared
 * by content, NULL equal to ""). For tests and the fuzzers. */
bool msg_equal(const msg_t *a, const msg_t *b);

#ifdef __cplusplus
}
#endif
#endif
