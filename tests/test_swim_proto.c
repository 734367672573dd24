/*
 * test_swim_proto.c - the gossip wire codec: round trips of every message type, known vectors
 * written and read (the records with host_id and local_socket; the 8-element records of the
 * builds before them still read), a malformed input per field and for
 * every field a wrong type and an out-of-range value (each refused with SHOAL_EPROTO; the
 * format is positional arrays, so there are no duplicate keys), every truncation, and random
 * corruption that must never crash or read out of bounds (run under ASan in tools/test.sh).
 * msgpack-c writes the hand-made inputs: an independent implementation.
 */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal_err.h"
#include "swim_proto.h"

static swim_update_t s_update(uint8_t id0)
{
    swim_update_t u;
    memset(&u, 0, sizeof u);
    u.id[0] = id0;
    u.name = (swim_str_t){"node-a", 6};
    u.gossip_ep = (swim_str_t){"tcp://10.0.0.1:7947", 19};
    u.data_ep = (swim_str_t){"tcp://10.0.0.1:7946", 19};
    u.incarnation = 1ull << 40;
    u.state = 1;
    u.weight = 5ull << 40;
    u.has_suspecter = true;
    u.suspecter[0] = 9;
    u.host_id = (swim_str_t){"host-one", 8};
    u.local_socket = (swim_str_t){"/var/cache/shoal/shoal.sock", 27};
    return u;
}

static void s_encode(msg_buf_t *buf, uint32_t type)
{
    swim_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.from_id[0] = 7;
    m.from_addr = (swim_str_t){"tcp://10.0.0.2:7947", 19};
    m.seq = 123456789;
    m.target_id[0] = 8;
    m.target_addr = (swim_str_t){"tcp://10.0.0.3:7947", 19};
    m.sync_kind = SWIM_SYNC_REPLY;
    m.page_size = 1 << 20;
    m.range_pages = 4;
    swim_update_t u[2] = {s_update(1), s_update(2)};
    u[1].has_suspecter = false;
    u[1].state = 0;
    u[1].local_socket = (swim_str_t){"", 0};
    cr_assert_eq(swim_msg_encode(buf, &m, u, 2), 0);
}

Test(swim_proto, round_trip_every_type)
{
    static const uint32_t types[] = {MSG_PING, MSG_ACK,  MSG_PING_REQ, MSG_NACK,
                                     MSG_SYNC, MSG_JOIN, MSG_LEAVE,    MSG_GOSSIP};
    msg_buf_t buf = {0};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        s_encode(&buf, types[t]);
        swim_msg_t m;
        cr_assert_eq(swim_msg_decode(&m, buf.data, buf.len), 0, "type %u: %s", types[t],
                     shoal_last_error());
        cr_assert_eq(m.type, types[t]);
        cr_assert_eq(m.from_id[0], 7);
        cr_assert_eq(m.from_addr.len, 19);
        cr_assert_eq(m.n_updates, 2);
        if (types[t] == MSG_PING_REQ) {
            cr_assert_eq(m.seq, 123456789);
            cr_assert_eq(m.target_id[0], 8);
            cr_assert_eq(memcmp(m.target_addr.ptr, "tcp://10.0.0.3:7947", 19), 0);
        }
        if (types[t] == MSG_SYNC) {
            cr_assert_eq(m.sync_kind, SWIM_SYNC_REPLY);
            cr_assert_eq(m.page_size, 1u << 20);
            cr_assert_eq(m.range_pages, 4);
        }
        swim_update_t u;
        cr_assert_eq(swim_msg_next_update(&m, &u), 1);
        cr_assert_eq(u.id[0], 1);
        cr_assert_eq(u.incarnation, 1ull << 40);
        cr_assert_eq(u.weight, 5ull << 40);
        cr_assert_eq(u.state, 1);
        cr_assert(u.has_suspecter);
        cr_assert_eq(u.suspecter[0], 9);
        cr_assert_eq(memcmp(u.name.ptr, "node-a", 6), 0);
        cr_assert_eq(u.host_id.len, 8);
        cr_assert_eq(memcmp(u.host_id.ptr, "host-one", 8), 0);
        cr_assert_eq(u.local_socket.len, 27);
        cr_assert_eq(memcmp(u.local_socket.ptr, "/var/cache/shoal/shoal.sock", 27), 0);
        cr_assert_eq(swim_msg_next_update(&m, &u), 1);
        cr_assert_eq(u.id[0], 2);
        cr_assert_not(u.has_suspecter);
        cr_assert_eq(u.host_id.len, 8);
        cr_assert_eq(u.local_socket.len, 0);
        cr_assert_eq(swim_msg_next_update(&m, &u), 0);
    }
    msg_buf_fini(&buf);
}

Test(swim_proto, encoder_refuses_bad_input)
{
    msg_buf_t buf = {0};
    swim_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = 12;
    cr_assert_eq(swim_msg_encode(&buf, &m, NULL, 0), SHOAL_EINVAL);
    m.type = MSG_GOSSIP;
    swim_update_t u = s_update(1);
    u.state = 4;
    cr_assert_eq(swim_msg_encode(&buf, &m, &u, 1), SHOAL_EINVAL);
    u = s_update(1);
    char long_name[80];
    memset(long_name, 'x', sizeof long_name);
    u.name = (swim_str_t){long_name, 64};
    cr_assert_eq(swim_msg_encode(&buf, &m, &u, 1), SHOAL_EINVAL);
    char long_text[200];
    memset(long_text, 'y', sizeof long_text);
    u = s_update(1);
    u.host_id = (swim_str_t){long_text, SWIM_HOST_ID_MAX + 1};
    cr_assert_eq(swim_msg_encode(&buf, &m, &u, 1), SHOAL_EINVAL);
    u.host_id = (swim_str_t){long_text, SWIM_HOST_ID_MAX};
    u.local_socket = (swim_str_t){long_text, SWIM_SOCKET_MAX + 1};
    cr_assert_eq(swim_msg_encode(&buf, &m, &u, 1), SHOAL_EINVAL);
    u.local_socket = (swim_str_t){long_text, SWIM_SOCKET_MAX};
    cr_assert_eq(swim_msg_encode(&buf, &m, &u, 1), 0);
    /* [1, 71, bin16, "", [record]]: 1 + 1 + 1 + 18 + 1 + 1 bytes around the record */
    cr_assert_leq(buf.len, 23 + swim_update_size(&u), "swim_update_size is an upper bound");
    msg_buf_fini(&buf);
}

/* ---- one malformed input per field, written by hand with msgpack-c ---- */

typedef struct field_case {
    const char *name; /* which field is wrong */
    int bad;          /* which field to corrupt (index below) */
} field_case_t;

enum {
    F_NONE,
    F_TOP_NOT_ARRAY,
    F_COUNT,
    F_VERSION,
    F_TYPE,
    F_FROM_ID,
    F_FROM_ADDR_LONG,
    F_FROM_ADDR_NUL,
    F_SEQ,
    F_TARGET_ID,
    F_TARGET_ADDR,
    F_UPDATES_TYPE,
    F_UPDATES_COUNT,
    F_RECORD_COUNT,
    F_ID,
    F_NAME,
    F_GOSSIP_EP,
    F_DATA_EP,
    F_INCARNATION,
    F_STATE,
    F_WEIGHT,
    F_SUSPECTER,
    F_TRAILING,
    F_SYNC_KIND,
    F_PAGE_SIZE,
    F_RANGE_PAGES,
    F_END
};

static void s_str(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

static void s_bin(msgpack_packer *pk, size_t len)
{
    uint8_t id[32] = {1};
    msgpack_pack_bin(pk, len);
    msgpack_pack_bin_body(pk, id, len);
}

/* Writes a PING_REQ (or a SYNC for the sync fields) with field `bad` corrupted. */
static void s_write(msgpack_sbuffer *sb, int bad)
{
    msgpack_packer pk;
    char big[300];
    memset(big, 'a', sizeof big);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    bool sync = bad == F_SYNC_KIND || bad == F_PAGE_SIZE || bad == F_RANGE_PAGES;
    if (bad == F_TOP_NOT_ARRAY) {
        msgpack_pack_map(&pk, 0);
        return;
    }
    msgpack_pack_array(&pk, bad == F_COUNT ? 7 : 8);
    msgpack_pack_uint8(&pk, bad == F_VERSION ? 2 : 1);
    msgpack_pack_uint8(&pk, bad == F_TYPE ? 63 : sync ? MSG_SYNC : MSG_PING_REQ);
    s_bin(&pk, bad == F_FROM_ID ? 15 : 16);
    if (bad == F_FROM_ADDR_LONG)
        s_str(&pk, big, 256);
    else if (bad == F_FROM_ADDR_NUL)
        s_str(&pk, "ab\0cd", 5);
    else
        s_str(&pk, "tcp://a:1", 9);
    if (sync) {
        msgpack_pack_uint32(&pk, bad == F_SYNC_KIND ? 3 : 0);
        if (bad == F_PAGE_SIZE)
            msgpack_pack_uint64(&pk, 1ull << 33);
        else
            msgpack_pack_uint32(&pk, 4096);
        if (bad == F_RANGE_PAGES)
            msgpack_pack_int8(&pk, -1);
        else
            msgpack_pack_uint32(&pk, 4);
    } else {
        if (bad == F_SEQ)
            msgpack_pack_int64(&pk, -5);
        else
            msgpack_pack_uint64(&pk, 42);
        if (bad == F_TARGET_ID)
            s_str(&pk, "0123456789abcdef", 16); /* a str, not a bin */
        else
            s_bin(&pk, 16);
        if (bad == F_TARGET_ADDR)
            msgpack_pack_nil(&pk);
        else
            s_str(&pk, "tcp://b:2", 9);
    }
    if (bad == F_UPDATES_TYPE) {
        msgpack_pack_map(&pk, 1);
        return;
    }
    msgpack_pack_array(&pk, bad == F_UPDATES_COUNT ? 100000 : 1);
    msgpack_pack_array(&pk, bad == F_RECORD_COUNT ? 7 : 8);
    s_bin(&pk, bad == F_ID ? 17 : 16);
    s_str(&pk, big, bad == F_NAME ? 64 : 63);
    s_str(&pk, big, bad == F_GOSSIP_EP ? 256 : 255);
    s_str(&pk, big, bad == F_DATA_EP ? 256 : 10);
    if (bad == F_INCARNATION)
        s_str(&pk, "1", 1);
    else
        msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint8(&pk, bad == F_STATE ? 4 : 3);
    if (bad == F_WEIGHT)
        msgpack_pack_double(&pk, 1.5);
    else
        msgpack_pack_uint64(&pk, 1ull << 50);
    if (bad == F_SUSPECTER)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_nil(&pk);
    if (bad == F_TRAILING)
        msgpack_pack_nil(&pk);
}

Test(swim_proto, malformed_field_is_refused)
{
    static const char *names[] = {
        "valid",       "top level",        "field count",   "version",      "type",
        "from_id",     "from_addr length", "from_addr NUL", "seq",          "target_id",
        "target_addr", "updates type",     "updates count", "record count", "id",
        "name",        "gossip_ep",        "data_ep",       "incarnation",  "state",
        "weight",      "suspecter",        "trailing",      "sync kind",    "page_size",
        "range_pages"};
    for (int bad = F_NONE; bad < F_END; bad++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        s_write(&sb, bad);
        swim_msg_t m;
        int rc = swim_msg_decode(&m, (const uint8_t *)sb.data, sb.size);
        if (bad == F_NONE)
            cr_assert_eq(rc, 0, "valid message refused: %s", shoal_last_error());
        else
            cr_assert_eq(rc, SHOAL_EPROTO, "bad %s accepted", names[bad]);
        msgpack_sbuffer_destroy(&sb);
    }
}

/* Every prefix of a valid message is refused (truncation at every byte). */
Test(swim_proto, every_truncation_is_refused)
{
    msg_buf_t buf = {0};
    s_encode(&buf, MSG_PING_REQ);
    for (size_t len = 0; len < buf.len; len++) {
        uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan catches overreads */
        memcpy(copy, buf.data, len);
        swim_msg_t m;
        cr_assert_eq(swim_msg_decode(&m, copy, len), SHOAL_EPROTO, "prefix %zu accepted", len);
        free(copy);
    }
    msg_buf_fini(&buf);
}

/* Random corruption: never a crash, and anything accepted walks cleanly. */
Test(swim_proto, random_corruption_never_crashes)
{
    msg_buf_t buf = {0};
    uint64_t x = 88172645463325252ULL;
    for (int iter = 0; iter < 20000; iter++) {
        s_encode(&buf, (uint32_t)(MSG_PING + iter % 8));
        uint8_t *copy = malloc(buf.len);
        memcpy(copy, buf.data, buf.len);
        int flips = 1 + iter % 4;
        for (int f = 0; f < flips; f++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            copy[x % buf.len] = (uint8_t)(x >> 32);
        }
        swim_msg_t m;
        if (swim_msg_decode(&m, copy, buf.len) == 0) {
            swim_update_t u;
            uint32_t n = 0;
            while (swim_msg_next_update(&m, &u) == 1)
                n++;
            cr_assert_eq(n, m.n_updates);
        }
        free(copy);
    }
    msg_buf_fini(&buf);
}
/* ---- known vectors ---- */
/* The 8-element records of the builds before host ids (issue 11), captured from the build
 * before the codec moved onto proto/mp.h (msgpack-c's packer wrote them): the decoder must
 * still read them, with host_id and local_socket "". */
static const char *const s_vectors_v1[8] = {
    /* 64, 262 bytes */
    "970140c410070000000000000000000000000000ffd92a7463703a2f2f766572792d6c6f6e672d686f73"
    "742d6e616d652e6578616d706c652e6f72673a3739343705c41008000000000000000000000000000000"
    "9298c410000000000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f"
    "6e672d686f73742d6e616d652e6578616d706c652e6f72673a37393437a000007fc098c4100100000000"
    "00000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e"
    "616d652e6578616d706c652e6f72673a37393437a0cd03e801cf0000050000000000c410000000090000"
    "00000000000000000000",
    /* 65, 245 bytes */
    "960141c410070000000000000000000000000000ffd92a7463703a2f2f766572792d6c6f6e672d686f73"
    "742d6e616d652e6578616d706c652e6f72673a37393437ccc89298c41000000000000000000000000000"
    "0000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d"
    "706c652e6f72673a37393437a000007fc098c410010000000000000000000000000000aaa66e6f64652d"
    "61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a37"
    "393437a0cd03e801cf0000050000000000c41000000009000000000000000000000000",
    /* 66, 286 bytes */
    "980142c410070000000000000000000000000000ffd92a7463703a2f2f766572792d6c6f6e672d686f73"
    "742d6e616d652e6578616d706c652e6f72673a37393437ce00011170c410080000000000000000000000"
    "00000000b37463703a2f2f31302e302e302e333a373934379298c4100000000000000000000000000000"
    "00aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d70"
    "6c652e6f72673a37393437a000007fc098c410010000000000000000000000000000aaa66e6f64652d61"
    "d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a3739"
    "3437a0cd03e801cf0000050000000000c41000000009000000000000000000000000",
    /* 67, 252 bytes */
    "960143c410070000000000000000000000000000ffd92a7463703a2f2f766572792d6c6f6e672d686f73"
    "742d6e616d652e6578616d706c652e6f72673a37393437cf00000100000000009298c410000000000000"
    "000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e61"
    "6d652e6578616d706c652e6f72673a37393437a000007fc098c410010000000000000000000000000000"
    "aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c"
    "652e6f72673a37393437a0cd03e801cf0000050000000000c41000000009000000000000000000000000",
    /* 68, 1516 bytes */
    "980144c410070000000000000000000000000000ffd92a7463703a2f2f766572792d6c6f6e672d686f73"
    "742d6e616d652e6578616d706c652e6f72673a3739343701ce00010000cd012cdc001198c41000000000"
    "0000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d"
    "6e616d652e6578616d706c652e6f72673a37393437a000007fc098c41001000000000000000000000000"
    "0000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d"
    "706c652e6f72673a37393437a0cd03e801cf0000050000000000c4100000000900000000000000000000"
    "000098c410020000000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c"
    "6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a37393437a0cd07d0027fc098c4100300"
    "00000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73"
    "742d6e616d652e6578616d706c652e6f72673a37393437a0cd0bb803cf0000050000000000c098c41004"
    "0000000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f"
    "73742d6e616d652e6578616d706c652e6f72673a37393437a0cd0fa0007fc098c4100500000000000000"
    "00000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d65"
    "2e6578616d706c652e6f72673a37393437a0cd138801cf0000050000000000c410000000090000000000"
    "0000000000000098c410060000000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f76"
    "6572792d6c6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a37393437a0cd1770027fc0"
    "98c410070000000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e"
    "672d686f73742d6e616d652e6578616d706c652e6f72673a37393437a0cd1b5803cf0000050000000000"
    "c098c410080000000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f"
    "6e672d686f73742d6e616d652e6578616d706c652e6f72673a37393437a0cd1f40007fc098c410090000"
    "000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f7374"
    "2d6e616d652e6578616d706c652e6f72673a37393437a0cd232801cf0000050000000000c41000000009"
    "00000000000000000000000098c4100a0000000000000000000000000000aaa66e6f64652d61d92a7463"
    "703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a37393437a0cd"
    "2710027fc098c4100b0000000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572"
    "792d6c6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a37393437a0cd2af803cf000005"
    "0000000000c098c4100c0000000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f7665"
    "72792d6c6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a37393437a0cd2ee0007fc098"
    "c4100d0000000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e67"
    "2d686f73742d6e616d652e6578616d706c652e6f72673a37393437a0cd32c801cf0000050000000000c4"
    "100000000900000000000000000000000098c4100e0000000000000000000000000000aaa66e6f64652d"
    "61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a37"
    "393437a0cd36b0027fc098c4100f0000000000000000000000000000aaa66e6f64652d61d92a7463703a"
    "2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a37393437a0cd3a98"
    "03cf0000050000000000c098c410100000000000000000000000000000aaa66e6f64652d61d92a746370"
    "3a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a37393437a0cd3e"
    "80007fc0",
    /* 69, 251 bytes */
    "970145c410070000000000000000000000000000ffd92a7463703a2f2f766572792d6c6f6e672d686f73"
    "742d6e616d652e6578616d706c652e6f72673a37393437ce00010000cd012c9298c41000000000000000"
    "0000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d"
    "652e6578616d706c652e6f72673a37393437a000007fc098c410010000000000000000000000000000aa"
    "a66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c65"
    "2e6f72673a37393437a0cd03e801cf0000050000000000c41000000009000000000000000000000000",
    /* 70, 243 bytes */
    "950146c410070000000000000000000000000000ffd92a7463703a2f2f766572792d6c6f6e672d686f73"
    "742d6e616d652e6578616d706c652e6f72673a373934379298c410000000000000000000000000000000"
    "aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c"
    "652e6f72673a37393437a000007fc098c410010000000000000000000000000000aaa66e6f64652d61d9"
    "2a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a373934"
    "37a0cd03e801cf0000050000000000c41000000009000000000000000000000000",
    /* 71, 243 bytes */
    "950147c410070000000000000000000000000000ffd92a7463703a2f2f766572792d6c6f6e672d686f73"
    "742d6e616d652e6578616d706c652e6f72673a373934379298c410000000000000000000000000000000"
    "aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c"
    "652e6f72673a37393437a000007fc098c410010000000000000000000000000000aaa66e6f64652d61d9"
    "2a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a373934"
    "37a0cd03e801cf0000050000000000c41000000009000000000000000000000000",
};

/* The same messages as sent since issue 11 (changed on purpose): every record ends with
 * host_id (32 bytes: a str8) and local_socket (a fixstr), the two trailing elements. Derived
 * from s_vectors_v1 by a stand-alone msgpack script (the record's fixarray 8 -> 10, then the
 * two strings), not by our encoder; the encoder must write them and the decoder read them. */
static const char *const s_vectors[8] = {
    /* 64, 376 bytes */
    "970140c410070000000000000000000000000000ffd92a7463703a2f2f766572792d6c6f6e672d686f73"
    "742d6e616d652e6578616d706c652e6f72673a3739343705c41008000000000000000000000000000000"
    "929ac410000000000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f"
    "6e672d686f73742d6e616d652e6578616d706c652e6f72673a37393437a000007fc0d920356633633965"
    "3064326237613463316538663661306239643365326331613766b62f72756e2f73686f616c2f6e6f6465"
    "2d612e736f636b9ac410010000000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f76"
    "6572792d6c6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a37393437a0cd03e801cf00"
    "00050000000000c41000000009000000000000000000000000d920356633633965306432623761346331"
    "6538663661306239643365326331613766b62f72756e2f73686f616c2f6e6f64652d612e736f636b",
    /* 65, 359 bytes */
    "960141c410070000000000000000000000000000ffd92a7463703a2f2f766572792d6c6f6e672d686f73"
    "742d6e616d652e6578616d706c652e6f72673a37393437ccc8929ac41000000000000000000000000000"
    "0000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d"
    "706c652e6f72673a37393437a000007fc0d9203566336339653064326237613463316538663661306239"
    "643365326331613766b62f72756e2f73686f616c2f6e6f64652d612e736f636b9ac41001000000000000"
    "0000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d"
    "652e6578616d706c652e6f72673a37393437a0cd03e801cf0000050000000000c4100000000900000000"
    "0000000000000000d9203566336339653064326237613463316538663661306239643365326331613766"
    "b62f72756e2f73686f616c2f6e6f64652d612e736f636b",
    /* 66, 400 bytes */
    "980142c410070000000000000000000000000000ffd92a7463703a2f2f766572792d6c6f6e672d686f73"
    "742d6e616d652e6578616d706c652e6f72673a37393437ce00011170c410080000000000000000000000"
    "00000000b37463703a2f2f31302e302e302e333a37393437929ac4100000000000000000000000000000"
    "00aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d70"
    "6c652e6f72673a37393437a000007fc0d920356633633965306432623761346331653866366130623964"
    "3365326331613766b62f72756e2f73686f616c2f6e6f64652d612e736f636b9ac4100100000000000000"
    "00000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d65"
    "2e6578616d706c652e6f72673a37393437a0cd03e801cf0000050000000000c410000000090000000000"
    "00000000000000d9203566336339653064326237613463316538663661306239643365326331613766b6"
    "2f72756e2f73686f616c2f6e6f64652d612e736f636b",
    /* 67, 366 bytes */
    "960143c410070000000000000000000000000000ffd92a7463703a2f2f766572792d6c6f6e672d686f73"
    "742d6e616d652e6578616d706c652e6f72673a37393437cf0000010000000000929ac410000000000000"
    "000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e61"
    "6d652e6578616d706c652e6f72673a37393437a000007fc0d92035663363396530643262376134633165"
    "38663661306239643365326331613766b62f72756e2f73686f616c2f6e6f64652d612e736f636b9ac410"
    "010000000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d68"
    "6f73742d6e616d652e6578616d706c652e6f72673a37393437a0cd03e801cf0000050000000000c41000"
    "000009000000000000000000000000d92035663363396530643262376134633165386636613062396433"
    "65326331613766b62f72756e2f73686f616c2f6e6f64652d612e736f636b",
    /* 68, 2485 bytes */
    "980144c410070000000000000000000000000000ffd92a7463703a2f2f766572792d6c6f6e672d686f73"
    "742d6e616d652e6578616d706c652e6f72673a3739343701ce00010000cd012cdc00119ac41000000000"
    "0000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d"
    "6e616d652e6578616d706c652e6f72673a37393437a000007fc0d9203566336339653064326237613463"
    "316538663661306239643365326331613766b62f72756e2f73686f616c2f6e6f64652d612e736f636b9a"
    "c410010000000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e67"
    "2d686f73742d6e616d652e6578616d706c652e6f72673a37393437a0cd03e801cf0000050000000000c4"
    "1000000009000000000000000000000000d9203566336339653064326237613463316538663661306239"
    "643365326331613766b62f72756e2f73686f616c2f6e6f64652d612e736f636b9ac41002000000000000"
    "0000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d"
    "652e6578616d706c652e6f72673a37393437a0cd07d0027fc0d920356633633965306432623761346331"
    "6538663661306239643365326331613766b62f72756e2f73686f616c2f6e6f64652d612e736f636b9ac4"
    "10030000000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d"
    "686f73742d6e616d652e6578616d706c652e6f72673a37393437a0cd0bb803cf0000050000000000c0d9"
    "203566336339653064326237613463316538663661306239643365326331613766b62f72756e2f73686f"
    "616c2f6e6f64652d612e736f636b9ac410040000000000000000000000000000aaa66e6f64652d61d92a"
    "7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a37393437"
    "a0cd0fa0007fc0d9203566336339653064326237613463316538663661306239643365326331613766b6"
    "2f72756e2f73686f616c2f6e6f64652d612e736f636b9ac410050000000000000000000000000000aaa6"
    "6e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c652e"
    "6f72673a37393437a0cd138801cf0000050000000000c41000000009000000000000000000000000d920"
    "3566336339653064326237613463316538663661306239643365326331613766b62f72756e2f73686f61"
    "6c2f6e6f64652d612e736f636b9ac410060000000000000000000000000000aaa66e6f64652d61d92a74"
    "63703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a37393437a0"
    "cd1770027fc0d9203566336339653064326237613463316538663661306239643365326331613766b62f"
    "72756e2f73686f616c2f6e6f64652d612e736f636b9ac410070000000000000000000000000000aaa66e"
    "6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c652e6f"
    "72673a37393437a0cd1b5803cf0000050000000000c0d920356633633965306432623761346331653866"
    "3661306239643365326331613766b62f72756e2f73686f616c2f6e6f64652d612e736f636b9ac4100800"
    "00000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73"
    "742d6e616d652e6578616d706c652e6f72673a37393437a0cd1f40007fc0d92035663363396530643262"
    "37613463316538663661306239643365326331613766b62f72756e2f73686f616c2f6e6f64652d612e73"
    "6f636b9ac410090000000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d"
    "6c6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a37393437a0cd232801cf0000050000"
    "000000c41000000009000000000000000000000000d92035663363396530643262376134633165386636"
    "61306239643365326331613766b62f72756e2f73686f616c2f6e6f64652d612e736f636b9ac4100a0000"
    "000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f7374"
    "2d6e616d652e6578616d706c652e6f72673a37393437a0cd2710027fc0d9203566336339653064326237"
    "613463316538663661306239643365326331613766b62f72756e2f73686f616c2f6e6f64652d612e736f"
    "636b9ac4100b0000000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c"
    "6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a37393437a0cd2af803cf000005000000"
    "0000c0d9203566336339653064326237613463316538663661306239643365326331613766b62f72756e"
    "2f73686f616c2f6e6f64652d612e736f636b9ac4100c0000000000000000000000000000aaa66e6f6465"
    "2d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a"
    "37393437a0cd2ee0007fc0d9203566336339653064326237613463316538663661306239643365326331"
    "613766b62f72756e2f73686f616c2f6e6f64652d612e736f636b9ac4100d000000000000000000000000"
    "0000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d"
    "706c652e6f72673a37393437a0cd32c801cf0000050000000000c4100000000900000000000000000000"
    "0000d9203566336339653064326237613463316538663661306239643365326331613766b62f72756e2f"
    "73686f616c2f6e6f64652d612e736f636b9ac4100e0000000000000000000000000000aaa66e6f64652d"
    "61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c652e6f72673a37"
    "393437a0cd36b0027fc0d920356633633965306432623761346331653866366130623964336532633161"
    "3766b62f72756e2f73686f616c2f6e6f64652d612e736f636b9ac4100f00000000000000000000000000"
    "00aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d70"
    "6c652e6f72673a37393437a0cd3a9803cf0000050000000000c0d9203566336339653064326237613463"
    "316538663661306239643365326331613766b62f72756e2f73686f616c2f6e6f64652d612e736f636b9a"
    "c410100000000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e67"
    "2d686f73742d6e616d652e6578616d706c652e6f72673a37393437a0cd3e80007fc0d920356633633965"
    "3064326237613463316538663661306239643365326331613766b62f72756e2f73686f616c2f6e6f6465"
    "2d612e736f636b",
    /* 69, 365 bytes */
    "970145c410070000000000000000000000000000ffd92a7463703a2f2f766572792d6c6f6e672d686f73"
    "742d6e616d652e6578616d706c652e6f72673a37393437ce00010000cd012c929ac41000000000000000"
    "0000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d"
    "652e6578616d706c652e6f72673a37393437a000007fc0d9203566336339653064326237613463316538"
    "663661306239643365326331613766b62f72756e2f73686f616c2f6e6f64652d612e736f636b9ac41001"
    "0000000000000000000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f"
    "73742d6e616d652e6578616d706c652e6f72673a37393437a0cd03e801cf0000050000000000c4100000"
    "0009000000000000000000000000d9203566336339653064326237613463316538663661306239643365"
    "326331613766b62f72756e2f73686f616c2f6e6f64652d612e736f636b",
    /* 70, 357 bytes */
    "950146c410070000000000000000000000000000ffd92a7463703a2f2f766572792d6c6f6e672d686f73"
    "742d6e616d652e6578616d706c652e6f72673a37393437929ac410000000000000000000000000000000"
    "aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c"
    "652e6f72673a37393437a000007fc0d92035663363396530643262376134633165386636613062396433"
    "65326331613766b62f72756e2f73686f616c2f6e6f64652d612e736f636b9ac410010000000000000000"
    "000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e"
    "6578616d706c652e6f72673a37393437a0cd03e801cf0000050000000000c41000000009000000000000"
    "000000000000d9203566336339653064326237613463316538663661306239643365326331613766b62f"
    "72756e2f73686f616c2f6e6f64652d612e736f636b",
    /* 71, 357 bytes */
    "950147c410070000000000000000000000000000ffd92a7463703a2f2f766572792d6c6f6e672d686f73"
    "742d6e616d652e6578616d706c652e6f72673a37393437929ac410000000000000000000000000000000"
    "aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e6578616d706c"
    "652e6f72673a37393437a000007fc0d92035663363396530643262376134633165386636613062396433"
    "65326331613766b62f72756e2f73686f616c2f6e6f64652d612e736f636b9ac410010000000000000000"
    "000000000000aaa66e6f64652d61d92a7463703a2f2f766572792d6c6f6e672d686f73742d6e616d652e"
    "6578616d706c652e6f72673a37393437a0cd03e801cf0000050000000000c41000000009000000000000"
    "000000000000d9203566336339653064326237613463316538663661306239643365326331613766b62f"
    "72756e2f73686f616c2f6e6f64652d612e736f636b",
};

static const char s_host_id[] = "5f3c9e0d2b7a4c1e8f6a0b9d3e2c1a7f"; /* a machine-id */
static const char s_socket[] = "/run/shoal/node-a.sock";

static const char s_long_ep[] = "tcp://very-long-host-name.example.org:7947"; /* 42: a str8 */

/* Builds the message of vector `t` (type 64 + t) as the capture program did; `with_host`: the
 * records carry s_host_id and s_socket (s_vectors), else "" (s_vectors_v1). */
static size_t s_vector_msg(int t, swim_msg_t *m, swim_update_t u[17], bool with_host)
{
    memset(m, 0, sizeof *m);
    m->type = (uint32_t)(64 + t);
    m->from_id[0] = 7;
    m->from_id[15] = 0xff;
    m->from_addr = (swim_str_t){s_long_ep, strlen(s_long_ep)};
    m->seq = t == 0 ? 5 : t == 1 ? 200 : t == 2 ? 70000 : 1ull << 40;
    m->target_id[0] = 8;
    m->target_addr = (swim_str_t){"tcp://10.0.0.3:7947", 19};
    m->sync_kind = (uint32_t)(t % 3);
    m->page_size = 1 << 16;
    m->range_pages = 300;
    size_t n = t == 4 ? 17 : 2; /* the SYNC has an array16 of records */
    for (size_t i = 0; i < n; i++) {
        memset(&u[i], 0, sizeof u[i]);
        u[i].id[0] = (uint8_t)i;
        u[i].id[15] = 0xaa;
        u[i].name = (swim_str_t){"node-a", 6};
        u[i].gossip_ep = (swim_str_t){s_long_ep, strlen(s_long_ep)};
        u[i].data_ep = (swim_str_t){"", 0};
        u[i].incarnation = i * 1000;
        u[i].state = (uint8_t)(i % 4);
        u[i].weight = i % 2 ? (5ull << 40) : 127;
        u[i].has_suspecter = i % 4 == 1;
        u[i].suspecter[3] = 9;
        if (with_host) {
            u[i].host_id = (swim_str_t){s_host_id, strlen(s_host_id)};
            u[i].local_socket = (swim_str_t){s_socket, strlen(s_socket)};
        }
    }
    return n;
}

/* Decodes a hex string into a fresh exact-size allocation (ASan catches overreads). */
static uint8_t *s_unhex(const char *hex, size_t *len)
{
    *len = strlen(hex) / 2;
    uint8_t *bytes = malloc(*len ? *len : 1);
    for (size_t i = 0; i < *len; i++) {
        unsigned b;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &b), 1);
        bytes[i] = (uint8_t)b;
    }
    return bytes;
}

Test(swim_proto, encoder_writes_the_known_vectors)
{
    msg_buf_t buf = {0};
    for (int t = 0; t < 8; t++) {
        swim_msg_t m;
        swim_update_t u[17];
        size_t n = s_vector_msg(t, &m, u, true);
        cr_assert_eq(swim_msg_encode(&buf, &m, u, n), 0);
        size_t len;
        uint8_t *want = s_unhex(s_vectors[t], &len);
        cr_assert_eq(buf.len, len, "type %d: %zu bytes, want %zu", 64 + t, buf.len, len);
        cr_assert_eq(memcmp(buf.data, want, len), 0, "type %d: bytes differ", 64 + t);
        free(want);
    }
    msg_buf_fini(&buf);
}

Test(swim_proto, decoder_reads_the_known_vectors)
{
    for (int k = 0; k < 16; k++) {
        int t = k % 8;
        bool with_host = k < 8; /* then the 8-element records of older builds */
        swim_msg_t want, m;
        swim_update_t u[17];
        size_t n = s_vector_msg(t, &want, u, with_host);
        size_t len;
        uint8_t *bytes = s_unhex(with_host ? s_vectors[t] : s_vectors_v1[t], &len);
        cr_assert_eq(swim_msg_decode(&m, bytes, len), 0, "type %d: %s", 64 + t, shoal_last_error());
        cr_assert_eq(m.type, want.type);
        cr_assert_eq(memcmp(m.from_id, want.from_id, 16), 0);
        cr_assert_eq(m.from_addr.len, want.from_addr.len);
        cr_assert_eq(memcmp(m.from_addr.ptr, s_long_ep, m.from_addr.len), 0);
        if (t <= 3)
            cr_assert_eq(m.seq, want.seq);
        if (t == 0 || t == 2)
            cr_assert_eq(memcmp(m.target_id, want.target_id, 16), 0);
        if (t == 2)
            cr_assert_eq(memcmp(m.target_addr.ptr, "tcp://10.0.0.3:7947", 19), 0);
        if (t == 4)
            cr_assert_eq(m.sync_kind, want.sync_kind);
        if (t == 4 || t == 5) {
            cr_assert_eq(m.page_size, want.page_size);
            cr_assert_eq(m.range_pages, want.range_pages);
        }
        cr_assert_eq(m.n_updates, n);
        for (size_t i = 0; i < n; i++) {
            swim_update_t got;
            cr_assert_eq(swim_msg_next_update(&m, &got), 1);
            cr_assert_eq(memcmp(got.id, u[i].id, 16), 0);
            cr_assert_eq(got.name.len, 6);
            cr_assert_eq(got.gossip_ep.len, strlen(s_long_ep));
            cr_assert_eq(got.data_ep.len, 0);
            cr_assert_eq(got.incarnation, u[i].incarnation);
            cr_assert_eq(got.state, u[i].state);
            cr_assert_eq(got.weight, u[i].weight);
            cr_assert_eq(got.has_suspecter, u[i].has_suspecter);
            if (got.has_suspecter)
                cr_assert_eq(memcmp(got.suspecter, u[i].suspecter, 16), 0);
            cr_assert_eq(got.host_id.len, u[i].host_id.len);
            cr_assert_eq(got.local_socket.len, u[i].local_socket.len);
            cr_assert(got.host_id.ptr != NULL && got.local_socket.ptr != NULL);
            if (with_host) {
                cr_assert_eq(memcmp(got.host_id.ptr, s_host_id, got.host_id.len), 0);
                cr_assert_eq(memcmp(got.local_socket.ptr, s_socket, got.local_socket.len), 0);
            }
        }
        swim_update_t extra;
        cr_assert_eq(swim_msg_next_update(&m, &extra), 0);
        free(bytes);
    }
}

/* ---- every field: a wrong type and an out-of-range value, each refused ---- */

/* The fields of a PING_REQ (then SYNC body fields), in wire order. */
enum {
    P_VERSION,
    P_TYPE,
    P_FROM_ID,
    P_FROM_ADDR,
    P_SEQ,
    P_TARGET_ID,
    P_TARGET_ADDR,
    P_SYNC_KIND,
    P_PAGE_SIZE,
    P_RANGE_PAGES,
    P_UPDATES,
    P_RECORD,
    P_ID,
    P_NAME,
    P_GOSSIP_EP,
    P_DATA_EP,
    P_INCARNATION,
    P_STATE,
    P_WEIGHT,
    P_SUSPECTER,
    P_HOST_ID,
    P_LOCAL_SOCKET,
    P_END
};

enum { V_VALID, V_WRONG_TYPE, V_OUT_OF_RANGE };

/* Writes a field's value: `ok` when variant is valid, else the variant's bad value. A field
 * with no out-of-range value (any uint64 is a valid seq) writes the valid one for it and the
 * caller expects acceptance. */
static bool s_field(msgpack_packer *pk, int field, int which, int variant)
{
    char big[300];
    memset(big, 'a', sizeof big);
    bool bad = which == field && variant != V_VALID;
    if (bad && variant == V_WRONG_TYPE) {
        if (field == P_SUSPECTER)
            s_str(pk, "x", 1); /* nil is valid there */
        else
            msgpack_pack_nil(pk);
        return true;
    }
    switch (field) {
    case P_VERSION:
        msgpack_pack_uint8(pk, bad ? 2 : 1);
        return bad;
    case P_TYPE:
        msgpack_pack_uint8(pk, bad ? 72 : MSG_SYNC);
        return bad;
    case P_FROM_ID:
    case P_ID:
        s_bin(pk, bad ? 17 : 16);
        return bad;
    case P_SUSPECTER:
        s_bin(pk, bad ? 15 : 16);
        return bad;
    case P_FROM_ADDR:
    case P_GOSSIP_EP:
    case P_DATA_EP:
        s_str(pk, big, bad ? 256 : 255);
        return bad;
    case P_NAME:
        s_str(pk, big, bad ? 64 : 63);
        return bad;
    case P_HOST_ID:
        s_str(pk, big, bad ? 129 : 128);
        return bad;
    case P_LOCAL_SOCKET:
        s_str(pk, big, bad ? 108 : 107);
        return bad;
    case P_SYNC_KIND:
        msgpack_pack_uint32(pk, bad ? 3 : 2);
        return bad;
    case P_PAGE_SIZE:
    case P_RANGE_PAGES:
        msgpack_pack_uint64(pk, bad ? 1ull << 32 : UINT32_MAX);
        return bad;
    case P_STATE:
        msgpack_pack_uint8(pk, bad ? 4 : 3);
        return bad;
    case P_UPDATES:
        msgpack_pack_array(pk, bad ? 2 : 1); /* a count the bytes cannot hold */
        return bad;
    case P_RECORD:
        msgpack_pack_array(pk, bad ? 9 : 10);
        return bad;
    default: /* P_INCARNATION, P_WEIGHT: every uint64 is in range */
        msgpack_pack_uint64(pk, UINT64_MAX);
        return false;
    }
}

/* Writes a SYNC with every field valid except `which` (in `variant`); returns whether that
 * makes the message invalid. The SYNC carries every field kind but PING_REQ's seq, target_id
 * and target_addr, which the earlier table covers. */
static bool s_write_sync(msgpack_sbuffer *sb, int which, int variant)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    bool bad = false;
    msgpack_pack_array(&pk, 8);
    for (int f = P_VERSION; f < P_END; f++) {
        if (f == P_SEQ || f == P_TARGET_ID || f == P_TARGET_ADDR)
            continue;
        bad |= s_field(&pk, f, which, variant);
    }
    return bad;
}

Test(swim_proto, every_field_refuses_wrong_type_and_out_of_range)
{
    static const char *names[] = {
        "version",     "type",      "from_id",   "from_addr",   "seq",         "target_id",
        "target_addr", "sync kind", "page_size", "range_pages", "updates",     "record",
        "id",          "name",      "gossip_ep", "data_ep",     "incarnation", "state",
        "weight",      "suspecter", "host_id",   "local_socket"};
    for (int f = P_VERSION; f < P_END; f++) {
        if (f == P_SEQ || f == P_TARGET_ID || f == P_TARGET_ADDR)
            continue;
        for (int v = V_VALID; v <= V_OUT_OF_RANGE; v++) {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            bool bad = s_write_sync(&sb, f, v);
            uint8_t *copy = malloc(sb.size); /* exact size: ASan catches overreads */
            memcpy(copy, sb.data, sb.size);
            swim_msg_t m;
            int rc = swim_msg_decode(&m, copy, sb.size);
            if (bad)
                cr_assert_eq(rc, SHOAL_EPROTO, "%s: variant %d accepted", names[f], v);
            else
                cr_assert_eq(rc, 0, "%s: variant %d refused: %s", names[f], v, shoal_last_error());
            if (bad && v == V_WRONG_TYPE)
                cr_assert(strstr(shoal_last_error(), names[f]) != NULL,
                          "%s: error names another field: %s", names[f], shoal_last_error());
            free(copy);
            msgpack_sbuffer_destroy(&sb);
        }
    }
}

/* Integers may use any msgpack encoding of the value (proto/'s reader rule): a SYNC whose
 * uints are written in wider and in signed formats decodes to the same values. */
Test(swim_proto, any_integer_encoding_is_accepted)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    static const uint8_t wide_version[] = {0xcf, 0, 0, 0, 0, 0, 0, 0, 1}; /* uint64 1 */
    static const uint8_t signed_type[] = {0xd0, MSG_GOSSIP};              /* int8 71 */
    msgpack_pack_array(&pk, 5);
    msgpack_sbuffer_write(&sb, (const char *)wide_version, sizeof wide_version);
    msgpack_sbuffer_write(&sb, (const char *)signed_type, sizeof signed_type);
    s_bin(&pk, 16);
    s_str(&pk, "tcp://a:1", 9);
    msgpack_pack_array(&pk, 0);
    swim_msg_t m;
    cr_assert_eq(swim_msg_decode(&m, (const uint8_t *)sb.data, sb.size), 0, "%s",
                 shoal_last_error());
    cr_assert_eq(m.type, MSG_GOSSIP);
    cr_assert_eq(m.n_updates, 0);
    msgpack_sbuffer_destroy(&sb);
}

/* msgpack-c's unpacker (the independent implementation) reads what our writer wrote. */
Test(swim_proto, msgpack_c_reads_our_encoding)
{
    msg_buf_t buf = {0};
    s_encode(&buf, MSG_SYNC);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    cr_assert_eq(msgpack_unpack_next(&u, (const char *)buf.data, buf.len, &off),
                 MSGPACK_UNPACK_SUCCESS);
    cr_assert_eq(off, buf.len);
    msgpack_object top = u.data;
    cr_assert_eq(top.type, MSGPACK_OBJECT_ARRAY);
    cr_assert_eq(top.via.array.size, 8);
    msgpack_object *f = top.via.array.ptr;
    cr_assert_eq(f[0].via.u64, SWIM_PROTO_VERSION);
    cr_assert_eq(f[1].via.u64, MSG_SYNC);
    cr_assert_eq(f[2].type, MSGPACK_OBJECT_BIN);
    cr_assert_eq(f[2].via.bin.size, 16);
    cr_assert_eq(f[3].type, MSGPACK_OBJECT_STR);
    cr_assert_eq(f[4].via.u64, SWIM_SYNC_REPLY);
    cr_assert_eq(f[5].via.u64, 1u << 20);
    cr_assert_eq(f[6].via.u64, 4);
    cr_assert_eq(f[7].type, MSGPACK_OBJECT_ARRAY);
    cr_assert_eq(f[7].via.array.size, 2);
    msgpack_object *r = f[7].via.array.ptr[0].via.array.ptr;
    cr_assert_eq(f[7].via.array.ptr[0].via.array.size, SWIM_RECORD_FIELDS);
    cr_assert_eq(r[0].via.bin.ptr[0], 1);
    cr_assert_eq(r[1].via.str.size, 6);
    cr_assert_eq(r[4].via.u64, 1ull << 40);
    cr_assert_eq(r[5].via.u64, 1);
    cr_assert_eq(r[6].via.u64, 5ull << 40);
    cr_assert_eq(r[7].type, MSGPACK_OBJECT_BIN);
    cr_assert_eq(r[8].type, MSGPACK_OBJECT_STR);
    cr_assert_eq(r[8].via.str.size, 8);
    cr_assert_eq(memcmp(r[8].via.str.ptr, "host-one", 8), 0);
    cr_assert_eq(r[9].type, MSGPACK_OBJECT_STR);
    cr_assert_eq(r[9].via.str.size, 27);
    cr_assert_eq(f[7].via.array.ptr[1].via.array.ptr[9].via.str.size, 0);
    cr_assert_eq(f[7].via.array.ptr[1].via.array.ptr[7].type, MSGPACK_OBJECT_NIL);
    msgpack_unpacked_destroy(&u);
    msg_buf_fini(&buf);
}

/* ---- the placement version: the last element of SYNC and JOIN, absent meaning 1 ---- */

/* Placement 2 adds one trailing uint to the legacy form (array count + 1), and decodes back; the
 * legacy form (no element) decodes as placement 1; other types never carry it. */
Test(swim_proto, placement_version_travels_in_sync_and_join)
{
    static const uint32_t types[] = {MSG_SYNC, MSG_JOIN};
    msg_buf_t legacy = {0}, current = {0};
    for (size_t t = 0; t < 2; t++) {
        swim_msg_t m;
        memset(&m, 0, sizeof m);
        m.type = types[t];
        m.from_id[0] = 7;
        m.from_addr = (swim_str_t){"tcp://10.0.0.2:7947", 19};
        m.sync_kind = SWIM_SYNC_REFUSED;
        m.page_size = 4096;
        m.range_pages = 4;
        swim_update_t u = s_update(1);
        m.placement = HRW_PLACEMENT_LEGACY;
        cr_assert_eq(swim_msg_encode(&legacy, &m, &u, 1), 0);
        m.placement = HRW_PLACEMENT_VERSION;
        cr_assert_eq(swim_msg_encode(&current, &m, &u, 1), 0);
        cr_assert_eq(current.len, legacy.len + 1);
        cr_assert_eq(current.data[0], legacy.data[0] + 1, "fixarray count + 1");
        cr_assert_eq(memcmp(current.data + 1, legacy.data + 1, legacy.len - 1), 0);
        cr_assert_eq(current.data[current.len - 1], HRW_PLACEMENT_VERSION);

        swim_msg_t back;
        cr_assert_eq(swim_msg_decode(&back, current.data, current.len), 0, "%s",
                     shoal_last_error());
        cr_assert_eq(back.placement, HRW_PLACEMENT_VERSION);
        cr_assert_eq(back.page_size, 4096);
        cr_assert_eq(back.range_pages, 4);
        swim_update_t got;
        cr_assert_eq(swim_msg_next_update(&back, &got), 1);
        cr_assert_eq(got.id[0], 1);
        cr_assert_eq(swim_msg_next_update(&back, &got), 0);
        cr_assert_eq(swim_msg_decode(&back, legacy.data, legacy.len), 0);
        cr_assert_eq(back.placement, HRW_PLACEMENT_LEGACY);

        /* a present 0, a non-uint, a value over 32 bits and a second extra element: refused */
        const uint8_t bad_tails[][9] = {{0x00}, {0xc0}, {0xcf, 1, 0, 0, 0, 0, 0, 0, 0}};
        const size_t bad_lens[] = {1, 1, 9};
        for (size_t b = 0; b < 3; b++) {
            uint8_t *copy = malloc(legacy.len + bad_lens[b]);
            memcpy(copy, legacy.data, legacy.len);
            copy[0]++;
            memcpy(copy + legacy.len, bad_tails[b], bad_lens[b]);
            cr_assert_eq(swim_msg_decode(&back, copy, legacy.len + bad_lens[b]), SHOAL_EPROTO,
                         "bad placement %zu accepted", b);
            cr_assert(strstr(shoal_last_error(), "placement"), "%s", shoal_last_error());
            free(copy);
        }
        uint8_t *two = malloc(current.len + 1);
        memcpy(two, current.data, current.len);
        two[0]++;
        two[current.len] = 2;
        cr_assert_eq(swim_msg_decode(&back, two, current.len + 1), SHOAL_EPROTO);
        free(two);
    }
    /* a PING with a placement set is sent without it */
    swim_msg_t ping;
    memset(&ping, 0, sizeof ping);
    ping.type = MSG_PING;
    ping.placement = HRW_PLACEMENT_VERSION;
    cr_assert_eq(swim_msg_encode(&current, &ping, NULL, 0), 0);
    ping.placement = 0;
    cr_assert_eq(swim_msg_encode(&legacy, &ping, NULL, 0), 0);
    cr_assert_eq(current.len, legacy.len);
    cr_assert_eq(memcmp(current.data, legacy.data, legacy.len), 0);
    msg_buf_fini(&legacy);
    msg_buf_fini(&current);
}
