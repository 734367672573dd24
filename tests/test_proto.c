/*
 * test_proto.c - the v1 wire codec: every message type round-trips (empty and maximal), the
 * documented bytes match, every field of every body is refused when malformed (wrong kind,
 * too long, out of range, missing, twice), whole frames are bounded, and garbage never
 * crashes. msgpack-c serves as an independent implementation for interoperability.
 */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* ---- helpers ---- */

/* Encodes, decodes, checks the copy equals the original, and returns the encoded length. */
static size_t s_roundtrip(const msg_t *m)
{
    msg_buf_t buf;
    msg_buf_init(&buf);
    int rc = msg_encode(m, &buf);
    cr_assert_eq(rc, 0, "encode %s: %s", msg_type_name(m->header.type), shoal_last_error());
    cr_assert_leq(buf.len, MSG_FRAME_MAX);
    msg_t back;
    rc = msg_decode(buf.data, buf.len, &back);
    cr_assert_eq(rc, 0, "decode %s: %s", msg_type_name(m->header.type), shoal_last_error());
    cr_assert(msg_equal(m, &back), "%s differs after a round trip", msg_type_name(m->header.type));
    cr_assert_eq(back.header.proto_version, MSG_PROTO_VERSION);
    /* encoding the decoded copy gives the same bytes */
    msg_buf_t again;
    msg_buf_init(&again);
    cr_assert_eq(msg_encode(&back, &again), 0);
    cr_assert_eq(again.len, buf.len);
    cr_assert_eq(memcmp(again.data, buf.data, buf.len), 0);
    /* every strict prefix is refused, never read past */
    size_t step = buf.len > 4096 ? buf.len / 512 : 1;
    for (size_t cut = 0; cut < buf.len; cut += step) {
        uint8_t *prefix = malloc(cut ? cut : 1);
        memcpy(prefix, buf.data, cut);
        msg_t bad;
        cr_assert_eq(msg_decode(prefix, cut, &bad), SHOAL_EPROTO, "prefix %zu of %zu", cut,
                     buf.len);
        msg_fini(&bad);
        free(prefix);
    }
    size_t len = buf.len;
    msg_fini(&back);
    msg_buf_fini(&buf);
    msg_buf_fini(&again);
    return len;
}

/* A string of `len` copies of `c`; caller frees. */
static char *s_string(size_t len, char c)
{
    char *s = malloc(len + 1);
    memset(s, c, len);
    s[len] = '\0';
    return s;
}

/* Decodes `len` bytes and expects `code`, with `needle` in the last error when not NULL. */
static void s_expect_fail(const void *data, size_t len, int code, const char *needle)
{
    msg_t m;
    shoal_clear_error();
    int rc = msg_decode(data, len, &m);
    cr_assert_eq(rc, code, "expected %d (%s), got %d; last error: %s", code, shoal_strerror(code),
                 rc, shoal_last_error());
    if (needle)
        cr_assert(strstr(shoal_last_error(), needle), "last error \"%s\" lacks \"%s\"",
                  shoal_last_error(), needle);
    msg_fini(&m);
}

/* ---- round trips ---- */

Test(proto, header_roundtrip_and_gossip_body)
{
    msg_header_t h = {
        .type = MSG_PING, .request_id = UINT64_MAX, .view_version = 1ull << 40, .frames = 0};
    msg_buf_t buf;
    msg_buf_init(&buf);
    cr_assert_eq(msg_header_encode(&h, &buf), 0);
    mp_write_array(&buf, 2); /* gossip's own body */
    mp_write_str(&buf, "x", 1);
    mp_write_int(&buf, -12345);
    cr_assert_eq(buf.err, 0);
    msg_header_t back;
    msg_raw_body_t body;
    cr_assert_eq(msg_header_decode(buf.data, buf.len, &back, &body), 0, "%s", shoal_last_error());
    cr_assert_eq(back.proto_version, MSG_PROTO_VERSION);
    cr_assert_eq(back.type, MSG_PING);
    cr_assert_eq(back.request_id, UINT64_MAX);
    cr_assert_eq(back.view_version, 1ull << 40);
    mp_reader_t reader;
    mp_reader_init(&reader, body.data, body.len);
    uint32_t count;
    const char *str;
    uint32_t len;
    int64_t value;
    cr_assert_eq(mp_read_array(&reader, &count), 0);
    cr_assert_eq(mp_read_str(&reader, &str, &len), 0);
    cr_assert_eq(mp_read_int(&reader, &value), 0);
    cr_assert_eq(value, -12345);
    cr_assert_eq(mp_reader_left(&reader), 0);

    /* msg_decode keeps a gossip body as raw bytes, and msg_encode sends it back unchanged */
    msg_t m;
    cr_assert_eq(msg_decode(buf.data, buf.len, &m), 0);
    cr_assert_eq(m.body.raw.len, body.len);
    s_roundtrip(&m);
    msg_fini(&m);
    msg_fini(&m); /* twice is safe */

    /* a gossip body that is not one value is refused on encode */
    msg_init(&m, MSG_ACK, 1, 1);
    uint8_t two[] = {0x01, 0x02};
    m.body.raw = (msg_raw_body_t){two, sizeof two};
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    msg_buf_fini(&buf);
}

Test(proto, read_request_bytes_match_the_drawing)
{
    msg_t m;
    msg_read_request(&m, 7, 3, "s3://b/k", "", 0, 10, 0);
    msg_buf_t buf;
    msg_buf_init(&buf);
    cr_assert_eq(msg_encode(&m, &buf), 0);
    static const uint8_t expect[] = {0x96, 0x01, 0x08, 0x07, 0x03, 0x00, 0x86, 0x01, 0xa8,
                                     's',  '3',  ':',  '/',  '/',  'b',  '/',  'k',  0x02,
                                     0xa0, 0x03, 0x00, 0x04, 0x0a, 0x05, 0x00, 0x06, 0xcf,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    cr_assert_eq(buf.len, sizeof expect);
    cr_assert_eq(memcmp(buf.data, expect, sizeof expect), 0);
    /* the minimal form (optional fields left out) decodes too */
    static const uint8_t minimal[] = {0x96, 0x01, 0x08, 0x07, 0x03, 0x00, 0x83,
                                      0x01, 0xa8, 's',  '3',  ':',  '/',  '/',
                                      'b',  '/',  'k',  0x03, 0x00, 0x04, 0x0a};
    msg_t back;
    cr_assert_eq(msg_decode(minimal, sizeof minimal, &back), 0, "%s", shoal_last_error());
    cr_assert(msg_equal(&m, &back));
    cr_assert_str_eq(back.body.read_request.version, "");
    cr_assert_eq(back.body.read_request.file_size, MSG_SIZE_UNKNOWN);
    msg_fini(&back);
    msg_buf_fini(&buf);
}

Test(proto, empty_bodies_and_error)
{
    msg_t m;
    msg_init(&m, MSG_VIEW_REQ, 1, 0);
    s_roundtrip(&m);
    msg_init(&m, MSG_STATS_REQ, 2, 0);
    s_roundtrip(&m);
    msg_init(&m, MSG_LOAD_REP, 0, 0);
    s_roundtrip(&m);
    msg_init(&m, MSG_EVICT_REP, 0, 0);
    s_roundtrip(&m);
    msg_error(&m, 5, 9, SHOAL_ENOENT, NULL);
    s_roundtrip(&m);
    char *message = s_string(MSG_MESSAGE_MAX, 'm');
    msg_error(&m, UINT64_MAX, UINT64_MAX, INT32_MIN, message);
    s_roundtrip(&m);
    msg_error(&m, 1, 1, 0, "zero is not an error");
    cr_assert_eq(msg_encode(&m, &(msg_buf_t){0}), SHOAL_EINVAL);
    message[MSG_MESSAGE_MAX - 1] = 'x';
    free(message);
}

Test(proto, view_reply)
{
    msg_t m;
    msg_init(&m, MSG_VIEW_REP, 1, 42);
    m.body.view_reply = (msg_view_reply_t){
        .view_version = 42, .page_size = 1 << 20, .range_pages = 4, .placement = 2};
    s_roundtrip(&m); /* no members */
    m.body.view_reply.placement = UINT32_MAX;
    s_roundtrip(&m);
    m.body.view_reply.placement = 1;

    char *name = s_string(MSG_NAME_MAX, 'n');
    char *endpoint = s_string(MSG_ENDPOINT_MAX, 'e');
    char *host_id = s_string(MSG_HOST_ID_MAX, 'h');
    char *socket_path = s_string(MSG_LOCAL_SOCKET_MAX, 's');
    msg_member_t *members = calloc(MSG_MEMBERS_MAX, sizeof *members);
    for (uint32_t i = 0; i < MSG_MEMBERS_MAX; i++) {
        memset(members[i].id, (int)(i & 0xff), MSG_NODE_ID_SIZE);
        members[i].id[0] = (uint8_t)(i >> 8);
        members[i].name = i == 0 ? name : "node";
        members[i].data_endpoint = i == 0 ? endpoint : "tcp://10.0.0.1:7070";
        members[i].gossip_endpoint = i == 0 ? endpoint : NULL;
        members[i].state = i % 4;
        members[i].incarnation = i == 0 ? UINT64_MAX : i;
        members[i].weight = UINT64_MAX - i;
        members[i].last_heard_ms = i * 1000ull;
        members[i].host_id = i == 0 ? host_id : i % 2 ? "5f3c9e0d2b7a4c1e8f6a0b9d3e2c1a7f" : NULL;
        members[i].local_socket = i == 0 ? socket_path : i % 3 ? "/run/shoal/n.sock" : NULL;
    }
    m.body.view_reply.members = members;
    m.body.view_reply.member_count = MSG_MEMBERS_MAX;
    m.body.view_reply.page_size = MSG_PAGE_SIZE_MAX;
    m.body.view_reply.range_pages = MSG_RANGE_PAGES_MAX;
    s_roundtrip(&m);

    /* one member too many, a bad state, and a too-long endpoint are refused on encode */
    msg_buf_t buf;
    msg_buf_init(&buf);
    m.body.view_reply.member_count = MSG_MEMBERS_MAX + 1;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    m.body.view_reply.member_count = 2;
    members[1].state = 4;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    cr_assert(strstr(shoal_last_error(), "members[1].state"), "%s", shoal_last_error());
    members[1].state = 0;
    char *long_endpoint = s_string(MSG_ENDPOINT_MAX + 1, 'e');
    members[1].data_endpoint = long_endpoint;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    members[1].data_endpoint = endpoint;
    char *long_host_id = s_string(MSG_HOST_ID_MAX + 1, 'h');
    members[1].host_id = long_host_id;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    cr_assert(strstr(shoal_last_error(), "members[1].host_id"), "%s", shoal_last_error());
    members[1].host_id = host_id;
    char *long_socket = s_string(MSG_LOCAL_SOCKET_MAX + 1, 's');
    members[1].local_socket = long_socket;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    cr_assert(strstr(shoal_last_error(), "members[1].local_socket"), "%s", shoal_last_error());
    members[1].local_socket = socket_path;
    cr_assert_eq(msg_encode(&m, &buf), 0);
    msg_t back;
    cr_assert_eq(msg_decode(buf.data, buf.len, &back), 0, "%s", shoal_last_error());
    cr_assert_str_eq(back.body.view_reply.members[1].host_id, host_id);
    cr_assert_str_eq(back.body.view_reply.members[1].local_socket, socket_path);
    msg_fini(&back);
    /* a too-long host id or socket path on the wire is refused by the decoder too */
    for (int which = 0; which < 2; which++) {
        msg_buf_reset(&buf);
        msg_header_t h = {.type = MSG_VIEW_REP, .request_id = 7};
        msg_header_encode(&h, &buf);
        mp_write_map(&buf, 4);
        mp_write_uint(&buf, 1), mp_write_uint(&buf, 3);
        mp_write_uint(&buf, 2), mp_write_uint(&buf, 4096);
        mp_write_uint(&buf, 3), mp_write_uint(&buf, 4);
        mp_write_uint(&buf, 4), mp_write_array(&buf, 1);
        mp_write_map(&buf, 4);
        mp_write_uint(&buf, 1), mp_write_bin(&buf, members[0].id, MSG_NODE_ID_SIZE);
        mp_write_uint(&buf, 3), mp_write_cstr(&buf, "tcp://a:1");
        mp_write_uint(&buf, 5), mp_write_uint(&buf, 0);
        mp_write_uint(&buf, which ? 10 : 9),
            mp_write_cstr(&buf, which ? long_socket : long_host_id);
        cr_assert_eq(msg_decode(buf.data, buf.len, &back), SHOAL_EPROTO);
        cr_assert(strstr(shoal_last_error(), which ? "local_socket" : "host_id"), "%s",
                  shoal_last_error());
    }
    free(long_host_id);
    free(long_socket);
    /* every member at its longest does not fit in one frame */
    for (uint32_t i = 0; i < MSG_MEMBERS_MAX; i++) {
        members[i].name = name;
        members[i].data_endpoint = endpoint;
        members[i].gossip_endpoint = endpoint;
    }
    m.body.view_reply.member_count = MSG_MEMBERS_MAX;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EMSGSIZE);
    msg_buf_fini(&buf);
    free(long_endpoint);
    free(members);
    free(name);
    free(endpoint);
    free(host_id);
    free(socket_path);
}

/* A VIEW reply from a build before placement versions has no key 5: it decodes as placement
 * version 1, which a client of version 2 refuses (client_view); 0 is no version. */
Test(proto, view_reply_without_placement_is_version_1)
{
    msg_buf_t buf;
    msg_buf_init(&buf);
    msg_header_t h = {.type = MSG_VIEW_REP, .request_id = 7};
    msg_header_encode(&h, &buf);
    mp_write_map(&buf, 4);
    mp_write_uint(&buf, 1), mp_write_uint(&buf, 3);
    mp_write_uint(&buf, 2), mp_write_uint(&buf, 4096);
    mp_write_uint(&buf, 3), mp_write_uint(&buf, 4);
    mp_write_uint(&buf, 4), mp_write_array(&buf, 0);
    msg_t back;
    cr_assert_eq(msg_decode(buf.data, buf.len, &back), 0, "%s", shoal_last_error());
    cr_assert_eq(back.body.view_reply.placement, 1);
    cr_assert_eq(back.body.view_reply.range_pages, 4);
    msg_fini(&back);

    /* a member without keys 9 and 10 (a build before host ids): both "" */
    msg_buf_reset(&buf);
    msg_header_encode(&h, &buf);
    mp_write_map(&buf, 5);
    mp_write_uint(&buf, 1), mp_write_uint(&buf, 3);
    mp_write_uint(&buf, 2), mp_write_uint(&buf, 4096);
    mp_write_uint(&buf, 3), mp_write_uint(&buf, 4);
    mp_write_uint(&buf, 4), mp_write_array(&buf, 1);
    mp_write_map(&buf, 3);
    uint8_t id[MSG_NODE_ID_SIZE] = {1};
    mp_write_uint(&buf, 1), mp_write_bin(&buf, id, sizeof id);
    mp_write_uint(&buf, 3), mp_write_cstr(&buf, "tcp://a:1");
    mp_write_uint(&buf, 5), mp_write_uint(&buf, 0);
    mp_write_uint(&buf, 5), mp_write_uint(&buf, 2);
    cr_assert_eq(msg_decode(buf.data, buf.len, &back), 0, "%s", shoal_last_error());
    cr_assert_eq(back.body.view_reply.member_count, 1);
    cr_assert_str_eq(back.body.view_reply.members[0].host_id, "");
    cr_assert_str_eq(back.body.view_reply.members[0].local_socket, "");
    msg_fini(&back);

    msg_t m;
    msg_init(&m, MSG_VIEW_REP, 1, 42);
    m.body.view_reply = (msg_view_reply_t){.view_version = 1, .page_size = 4096, .range_pages = 4};
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL); /* placement 0 */
    cr_assert(strstr(shoal_last_error(), "placement"), "%s", shoal_last_error());
    msg_buf_fini(&buf);
}

Test(proto, stat_list_load_evict)
{
    char *uri = s_string(MSG_URI_MAX, 'u');
    char *version = s_string(MSG_VERSION_MAX, 'v');
    char *cursor = s_string(MSG_CURSOR_MAX, 'c');
    msg_t m;

    msg_init(&m, MSG_STAT_REQ, 1, 1);
    m.body.stat_request.uri = "s3://bucket/key";
    s_roundtrip(&m);
    m.body.stat_request.uri = uri;
    s_roundtrip(&m);
    msg_init(&m, MSG_STAT_REP, 1, 1);
    s_roundtrip(&m);
    m.body.stat_reply = (msg_stat_reply_t){UINT64_MAX, INT64_MIN, version, true};
    s_roundtrip(&m);
    m.body.stat_reply.mtime = INT64_MAX;
    s_roundtrip(&m);

    msg_init(&m, MSG_LIST_REQ, 1, 1);
    m.body.list_request.uri = "";
    s_roundtrip(&m);
    m.body.list_request = (msg_list_request_t){uri, true, cursor, MSG_LIST_ENTRIES_MAX};
    s_roundtrip(&m);

    msg_init(&m, MSG_LIST_REP, 1, 1);
    s_roundtrip(&m);
    /* the most entries, with long uris, still fit in one frame */
    msg_entry_t *entries = calloc(MSG_LIST_ENTRIES_MAX, sizeof *entries);
    char *entry_uri = s_string(600, 'x');
    size_t budget = 64 + MSG_CURSOR_MAX;
    for (uint32_t i = 0; i < MSG_LIST_ENTRIES_MAX; i++) {
        entries[i] = (msg_entry_t){i == 0 ? uri : entry_uri, i, -(int64_t)i, version, i & 1};
        budget += msg_entry_encoded_size_max(&entries[i]);
    }
    m.body.list_reply = (msg_list_reply_t){MSG_LIST_ENTRIES_MAX, entries, cursor};
    size_t len = s_roundtrip(&m);
    cr_assert_leq(len, budget, "msg_entry_encoded_size_max underestimates");
    m.body.list_reply.entry_count = MSG_LIST_ENTRIES_MAX + 1;
    cr_assert_eq(msg_encode(&m, &(msg_buf_t){0}), SHOAL_EINVAL);
    free(entries);
    free(entry_uri);

    msg_init(&m, MSG_LOAD_REQ, 1, 1);
    m.body.load_request.uri = "file:///data/x";
    s_roundtrip(&m);
    m.body.load_request =
        (msg_load_request_t){uri, version, UINT64_MAX, UINT64_MAX, MSG_REPLICAS_MAX};
    s_roundtrip(&m);
    m.body.load_request.replicas = 0;
    cr_assert_eq(msg_encode(&m, &(msg_buf_t){0}), SHOAL_EINVAL);
    msg_init(&m, MSG_LOAD_REP, 1, 1);
    m.body.load_reply = (msg_load_reply_t){UINT64_MAX, UINT64_MAX - 1, 3};
    s_roundtrip(&m);

    msg_init(&m, MSG_EVICT_REQ, 1, 1);
    m.body.evict_request = (msg_evict_request_t){uri, true};
    s_roundtrip(&m);
    msg_init(&m, MSG_EVICT_REP, 1, 1);
    m.body.evict_reply = (msg_evict_reply_t){UINT64_MAX, 1};
    s_roundtrip(&m);

    /* one byte over a limit is refused on encode */
    char *long_uri = s_string(MSG_URI_MAX + 1, 'u');
    msg_init(&m, MSG_STAT_REQ, 1, 1);
    m.body.stat_request.uri = long_uri;
    cr_assert_eq(msg_encode(&m, &(msg_buf_t){0}), SHOAL_EINVAL);
    cr_assert(strstr(shoal_last_error(), "uri"));
    free(long_uri);
    free(uri);
    free(version);
    free(cursor);
}

Test(proto, read_request_and_reply)
{
    char *uri = s_string(MSG_URI_MAX, 'u');
    char *version = s_string(MSG_VERSION_MAX, 'v');
    msg_t m;
    msg_read_request(&m, 1, 2, "s3://b/k", "etag", 0, 0, 0);
    s_roundtrip(&m);
    msg_read_request(&m, UINT64_MAX, UINT64_MAX, uri, version, UINT64_MAX - 10, 10,
                     MSG_READ_FORWARDED | MSG_READ_NO_CACHE);
    s_roundtrip(&m);
    msg_read_request(&m, 1, 1, "x", "", 0, 1, MSG_READ_STREAM | MSG_READ_NO_CACHE);
    s_roundtrip(&m);
    /* the size of a known version travels with it; 0 is a size, not "unknown" */
    msg_read_request(&m, 1, 1, "x", "etag", 4 << 20, 1 << 20, MSG_READ_STREAM);
    m.body.read_request.file_size = 9u << 20;
    cr_assert_gt(s_roundtrip(&m), 0);
    m.body.read_request.file_size = 0;
    s_roundtrip(&m);
    msg_t sized;
    msg_read_request(&sized, 1, 1, "x", "etag", 0, 1, 0);
    cr_assert_eq(sized.body.read_request.file_size, MSG_SIZE_UNKNOWN);
    cr_assert_not(msg_equal(&m, &sized));
    /* the reply's mtime makes it the file's stat */
    msg_read_reply(&sized, 1, 1, 100, "etag", 0, 100, 1, 4096);
    cr_assert_eq(sized.body.read_reply.mtime, 0);
    sized.body.read_reply.mtime = 1700000000;
    s_roundtrip(&sized);
    sized.body.read_reply.mtime = -5;
    s_roundtrip(&sized);
    msg_read_request(&m, 1, 1, "x", "", 0, 1, 16); /* unknown flag */
    cr_assert_eq(msg_encode(&m, &(msg_buf_t){0}), SHOAL_EINVAL);
    msg_read_request(&m, 1, 1, "x", "", 1, UINT64_MAX, 0);
    cr_assert_eq(msg_encode(&m, &(msg_buf_t){0}), SHOAL_EINVAL);

    /* empty span */
    msg_read_reply(&m, 1, 1, 0, "", 0, 0, 0, 4096);
    s_roundtrip(&m);
    /* a span starting mid-page: 3 frames of 96, 4096 and 8 bytes */
    msg_read_reply(&m, 1, 1, 1 << 20, version, 4000, 4200, 3, 4096);
    s_roundtrip(&m);
    cr_assert_eq(msg_read_frame_length(&m.body.read_reply, 0), 96);
    cr_assert_eq(msg_read_frame_length(&m.body.read_reply, 1), 4096);
    cr_assert_eq(msg_read_frame_length(&m.body.read_reply, 2), 8);
    cr_assert_eq(msg_read_frame_length(&m.body.read_reply, 3), 0);
    size_t good[] = {96, 4096, 8}, bad[] = {96, 4095, 8};
    cr_assert_eq(msg_read_check_frames(&m.body.read_reply, good, 3), 0);
    cr_assert_eq(msg_read_check_frames(&m.body.read_reply, bad, 3), SHOAL_EPROTO);
    cr_assert(strstr(shoal_last_error(), "frame 1"));
    cr_assert_eq(msg_read_check_frames(&m.body.read_reply, good, 2), SHOAL_EPROTO);
    /* most pages, at the very end of the largest file */
    uint64_t page = 1 << 20;
    uint64_t length = (uint64_t)MSG_READ_PAGES_MAX * page;
    msg_read_reply(&m, 1, 1, UINT64_MAX, "v", UINT64_MAX - length, length, MSG_READ_PAGES_MAX,
                   page);
    cr_assert_eq(msg_read_page_count(UINT64_MAX - length, length, page), MSG_READ_PAGES_MAX + 1);
    uint64_t aligned = (UINT64_MAX - length) / page * page;
    msg_read_reply(&m, 1, 1, UINT64_MAX, "v", aligned, length, MSG_READ_PAGES_MAX, page);
    s_roundtrip(&m);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < MSG_READ_PAGES_MAX; i++)
        sum += msg_read_frame_length(&m.body.read_reply, i);
    cr_assert_eq(sum, length);
    /* a partial reply of a streamed READ: more survives the round trip, and is false unless
     * set */
    msg_read_reply(&m, 1, 1, 1 << 20, "v", 4096, 8192, 2, 4096);
    cr_assert_not(m.body.read_reply.more);
    m.body.read_reply.more = true;
    s_roundtrip(&m);

    msg_buf_t buf;
    msg_buf_init(&buf);
    msg_read_reply(&m, 1, 1, 100, "", 0, 10, 2, 4096); /* wrong page count */
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    msg_read_reply(&m, 1, 1, 5, "", 0, 10, 1, 4096); /* past the end of the file */
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    msg_read_reply(&m, 1, 1, 100, "", 0, 10, 1, 4096);
    m.header.frames = 2; /* header disagrees */
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    msg_read_reply(&m, 1, 1, 100, "", 0, 10, 1, 0); /* no page size */
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    msg_read_reply(&m, 1, 1, 100, "", 10, 0, 0, 4096); /* a partial reply without bytes */
    m.body.read_reply.more = true;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    msg_init(&m, MSG_STAT_REQ, 1, 1);
    m.body.stat_request.uri = "x";
    m.header.frames = 1; /* raw frames on a type without any */
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    msg_buf_fini(&buf);
    free(uri);
    free(version);
}

Test(proto, local_hello_and_locate)
{
    msg_t m;
    msg_init(&m, MSG_LOCAL_HELLO_REQ, 1, 0);
    s_roundtrip(&m);
    char *host = s_string(MSG_HOST_ID_MAX, 'h');
    msg_init(&m, MSG_LOCAL_HELLO_REP, 1, 0);
    m.body.local_hello_reply = (msg_local_hello_reply_t){
        {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, UINT64_MAX, host, 1 << 20, 30000};
    s_roundtrip(&m);
    m.body.local_hello_reply.host_id = NULL; /* "" */
    m.body.local_hello_reply.lease_ms = MSG_LEASE_MS_MAX;
    s_roundtrip(&m);
    msg_buf_t buf;
    msg_buf_init(&buf);
    m.body.local_hello_reply.lease_ms = 0; /* a lease of nothing */
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    m.body.local_hello_reply.lease_ms = 1;
    m.body.local_hello_reply.page_size = 0;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    m.body.local_hello_reply.page_size = 4096;
    char *long_host = s_string(MSG_HOST_ID_MAX + 1, 'h');
    m.body.local_hello_reply.host_id = long_host;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    cr_assert(strstr(shoal_last_error(), "host_id"), "%s", shoal_last_error());

    /* LOCATE_REQ: the size is unknown unless set; the length is bounded */
    char *uri = s_string(MSG_URI_MAX, 'u');
    char *version = s_string(MSG_VERSION_MAX, 'v');
    msg_init(&m, MSG_LOCATE_REQ, 7, 0);
    cr_assert_eq(m.body.locate_request.file_size, MSG_SIZE_UNKNOWN);
    m.body.locate_request.uri = "file:///data/a";
    m.body.locate_request.length = 1;
    s_roundtrip(&m);
    m.body.locate_request = (msg_locate_request_t){uri, version, UINT64_MAX - MSG_LOCATE_LENGTH_MAX,
                                                   MSG_LOCATE_LENGTH_MAX, 0};
    s_roundtrip(&m);
    m.body.locate_request.offset = 0;
    m.body.locate_request.length = MSG_LOCATE_LENGTH_MAX + 1;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    cr_assert(strstr(shoal_last_error(), "length"), "%s", shoal_last_error());
    m.body.locate_request.offset = UINT64_MAX;
    m.body.locate_request.length = 1;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    cr_assert(strstr(shoal_last_error(), "overflows"), "%s", shoal_last_error());
    m.body.locate_request.uri = NULL; /* "" is a uri the node refuses, not the codec */
    m.body.locate_request.offset = 0;
    s_roundtrip(&m);

    /* LOCATE_REP at its limits: 64 pages of 1 MiB (16 sums each), 16 fds, 64 gone */
    static msg_local_page_t pages[MSG_LOCATE_PAGES_MAX + 1];
    static uint64_t sums[MSG_CHUNKS_MAX];
    uint64_t fds[MSG_LOCATE_FDS_MAX + 1], gone[MSG_LOCATE_GONE_MAX + 1];
    for (uint32_t c = 0; c < MSG_CHUNKS_MAX; c++)
        sums[c] = 0x0102030405060708ull * (c + 1);
    for (uint32_t i = 0; i <= MSG_LOCATE_PAGES_MAX; i++)
        pages[i] = (msg_local_page_t){.index = 3 + 2 * (uint64_t)i,
                                      .gen = 1 + i % 5,
                                      .offset = (uint64_t)i << 20,
                                      .size = 1 << 20,
                                      .chunk_shift = 16,
                                      .seed = UINT64_MAX - i,
                                      .sum_count = 16,
                                      .sums = sums + i};
    for (uint32_t i = 0; i <= MSG_LOCATE_FDS_MAX; i++)
        fds[i] = 100 + i;
    for (uint32_t i = 0; i <= MSG_LOCATE_GONE_MAX; i++)
        gone[i] = UINT64_MAX - i;
    msg_init(&m, MSG_LOCATE_REP, 7, 0);
    cr_assert_eq(m.body.locate_reply.file_size, MSG_SIZE_UNKNOWN);
    m.body.locate_reply.store_id = 42; /* nothing held, version unknown: a miss */
    s_roundtrip(&m);
    m.body.locate_reply = (msg_locate_reply_t){.file_size = 70 << 20,
                                               .version = version,
                                               .mtime = -1,
                                               .store_id = UINT64_MAX,
                                               .page_count = MSG_LOCATE_PAGES_MAX,
                                               .pages = pages,
                                               .fd_count = MSG_LOCATE_FDS_MAX,
                                               .fd_gens = fds,
                                               .gone_count = MSG_LOCATE_GONE_MAX,
                                               .gone_gens = gone};
    size_t full = s_roundtrip(&m);
    cr_assert_leq(full, MSG_LOCAL_DATAGRAM_MAX);
    /* the decoded copy keeps every sum and every generation */
    cr_assert_eq(msg_encode(&m, &buf), 0);
    msg_t back;
    cr_assert_eq(msg_decode(buf.data, buf.len, &back), 0, "%s", shoal_last_error());
    cr_assert_eq(back.body.locate_reply.page_count, MSG_LOCATE_PAGES_MAX);
    cr_assert_eq(back.body.locate_reply.pages[63].sums[15], sums[63 + 15]);
    cr_assert_eq(back.body.locate_reply.pages[63].index, 3 + 2 * 63);
    cr_assert_eq(back.body.locate_reply.fd_gens[15], 115);
    cr_assert_eq(back.body.locate_reply.gone_gens[63], UINT64_MAX - 63);
    msg_fini(&back);
    /* sums travel as 8-byte little-endian words */
    m.body.locate_reply = (msg_locate_reply_t){.store_id = 1, .page_count = 1, .pages = pages};
    pages[0].size = 1;
    pages[0].sum_count = 1;
    cr_assert_eq(msg_encode(&m, &buf), 0);
    static const uint8_t le[] = {0xc4, 8, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
    bool found = false;
    for (size_t i = 0; i + sizeof le <= buf.len && !found; i++)
        found = memcmp(buf.data + i, le, sizeof le) == 0;
    cr_assert(found, "the sum is not little-endian on the wire");
    /* a page's sums must cover exactly its chunks: 65536 + 1 bytes at 2^16 are two chunks */
    pages[0].size = 65537;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    cr_assert(strstr(shoal_last_error(), "pages[0]sums") ||
                  strstr(shoal_last_error(), "pages[0].sums"),
              "%s", shoal_last_error());
    pages[0].sum_count = 2;
    s_roundtrip(&m);
    pages[0].size = 0; /* an empty page is never located */
    pages[0].sum_count = 0;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    pages[0].size = 1, pages[0].sum_count = 1;
    pages[0].chunk_shift = 11;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    pages[0].chunk_shift = 16;
    pages[0].gen = 0; /* generations start at 1 */
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    pages[0].gen = 1;
    pages[0].offset = UINT64_MAX; /* past any file */
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    cr_assert(strstr(shoal_last_error(), "overflows"), "%s", shoal_last_error());
    pages[0].offset = 0;
    /* pages in strictly increasing index order */
    m.body.locate_reply.page_count = 2;
    pages[1] = pages[0];
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    cr_assert(strstr(shoal_last_error(), "increasing"), "%s", shoal_last_error());
    pages[1].index = pages[0].index + 1;
    s_roundtrip(&m);
    m.body.locate_reply.page_count = MSG_LOCATE_PAGES_MAX + 1;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    m.body.locate_reply.page_count = 0;
    /* fds: at most 16, each a generation >= 1, none twice; gone likewise */
    m.body.locate_reply.fd_gens = fds;
    m.body.locate_reply.fd_count = MSG_LOCATE_FDS_MAX + 1;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    m.body.locate_reply.fd_count = 2;
    fds[1] = fds[0];
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    cr_assert(strstr(shoal_last_error(), "fds"), "%s", shoal_last_error());
    fds[1] = 0;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    fds[1] = 101;
    s_roundtrip(&m);
    m.body.locate_reply.gone_gens = gone;
    m.body.locate_reply.gone_count = MSG_LOCATE_GONE_MAX + 1;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    m.body.locate_reply.gone_count = 2;
    gone[1] = gone[0];
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    cr_assert(strstr(shoal_last_error(), "gone"), "%s", shoal_last_error());
    gone[1] = 5;
    s_roundtrip(&m);
    /* a reply that would not fit one datagram is refused: 64 pages of 16 KiB sums each */
    for (uint32_t i = 0; i < MSG_LOCATE_PAGES_MAX; i++)
        pages[i] = (msg_local_page_t){.index = i,
                                      .gen = 1,
                                      .size = MSG_PAGE_SIZE_MAX,
                                      .chunk_shift = 16,
                                      .sum_count = MSG_CHUNKS_MAX,
                                      .sums = sums};
    m.body.locate_reply =
        (msg_locate_reply_t){.store_id = 1, .page_count = MSG_LOCATE_PAGES_MAX, .pages = pages};
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EMSGSIZE);
    m.body.locate_reply.page_count = 1; /* one such page fits */
    s_roundtrip(&m);

    /* a local frame over the datagram bound is refused before its body is read */
    msg_header_t h = {.type = MSG_LOCATE_REQ};
    cr_assert_eq(msg_header_encode(&h, &buf), 0);
    mp_write_map(&buf, 1);
    mp_write_uint(&buf, 200);
    uint8_t *filler = calloc(1, MSG_LOCAL_DATAGRAM_MAX);
    mp_write_bin(&buf, filler, MSG_LOCAL_DATAGRAM_MAX);
    free(filler);
    s_expect_fail(buf.data, buf.len, SHOAL_EMSGSIZE, "LOCATE_REQ");
    /* sums that are not whole words */
    h.type = MSG_LOCATE_REP;
    cr_assert_eq(msg_header_encode(&h, &buf), 0);
    mp_write_map(&buf, 2);
    mp_write_uint(&buf, 4), mp_write_uint(&buf, 1);
    mp_write_uint(&buf, 5), mp_write_array(&buf, 1);
    mp_write_map(&buf, 7);
    for (uint32_t k = 1; k <= 6; k++)
        mp_write_uint(&buf, k), mp_write_uint(&buf, k == 4 ? 10 : k == 5 ? 16 : 1);
    mp_write_uint(&buf, 7), mp_write_bin(&buf, "12345678", 7);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "pages[0].sums: 7 bytes");

    msg_buf_fini(&buf);
    free(host);
    free(long_host);
    free(uri);
    free(version);
}

Test(proto, stats_reply)
{
    msg_t m;
    msg_init(&m, MSG_STATS_REP, 1, 1);
    s_roundtrip(&m);
    char *name = s_string(MSG_STAT_NAME_MAX, 'k');
    msg_counter_t *counters = calloc(MSG_COUNTERS_MAX, sizeof *counters);
    for (uint32_t i = 0; i < MSG_COUNTERS_MAX; i++)
        counters[i] = (msg_counter_t){name, UINT64_MAX - i};
    uint64_t bounds[MSG_BUCKETS_MAX], counts[MSG_BUCKETS_MAX];
    for (uint32_t b = 0; b < MSG_BUCKETS_MAX; b++) {
        bounds[b] = 1ull << b;
        counts[b] = UINT64_MAX - b;
    }
    msg_histogram_t *hists = calloc(MSG_HISTOGRAMS_MAX, sizeof *hists);
    for (uint32_t i = 0; i < MSG_HISTOGRAMS_MAX; i++)
        hists[i] = (msg_histogram_t){name, i % (MSG_BUCKETS_MAX + 1), bounds, counts};
    m.body.stats_reply = (msg_stats_reply_t){MSG_COUNTERS_MAX, counters, MSG_HISTOGRAMS_MAX, hists};
    s_roundtrip(&m);
    msg_buf_t buf;
    msg_buf_init(&buf);
    bounds[5] = bounds[4];
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    bounds[5] = 1ull << 5;
    hists[0].bucket_count = MSG_BUCKETS_MAX + 1;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    hists[0].bucket_count = 1;
    m.body.stats_reply.counter_count = MSG_COUNTERS_MAX + 1;
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EINVAL);
    msg_buf_fini(&buf);
    free(counters);
    free(hists);
    free(name);
}

Test(proto, type_names)
{
    for (uint32_t t = 1; t <= MSG_TYPE_DATA_LAST; t++) {
        cr_assert_str_neq(msg_type_name(t), "UNKNOWN", "type %u", t);
        cr_assert_eq(msg_type_is_request(t), t % 2 == 0);
    }
    cr_assert_str_eq(msg_type_name(MSG_READ_REQ), "READ_REQ");
    cr_assert_str_eq(msg_type_name(MSG_PING_REQ), "PING_REQ");
    cr_assert_str_eq(msg_type_name(MSG_LEAVE), "LEAVE");
    cr_assert_str_eq(msg_type_name(MSG_GOSSIP_LAST), "GOSSIP");
    cr_assert_str_eq(msg_type_name(0), "UNKNOWN");
    cr_assert_str_eq(msg_type_name(MSG_LOCATE_REQ), "LOCATE_REQ");
    cr_assert_str_eq(msg_type_name(MSG_LOCAL_HELLO_REP), "LOCAL_HELLO_REP");
    cr_assert_str_eq(msg_type_name(20), "UNKNOWN");
    /* the local types are requests of the local socket only, never of the ZeroMQ server */
    for (uint32_t t = MSG_TYPE_LOCAL_FIRST; t <= MSG_TYPE_LOCAL_LAST; t++) {
        cr_assert_str_neq(msg_type_name(t), "UNKNOWN", "type %u", t);
        cr_assert(msg_type_is_local(t));
        cr_assert_not(msg_type_is_request(t));
        cr_assert_eq(msg_type_is_local_request(t), t % 2 == 0);
    }
    cr_assert_not(msg_type_is_local(MSG_READ_REQ));
    cr_assert_not(msg_type_is_local_request(MSG_READ_REQ));
    cr_assert_str_eq(msg_type_name(80), "UNKNOWN");
    cr_assert(!msg_type_is_request(MSG_ERROR));
}

/* ---- malformed input, field by field ---- */

/* The test's own description of every body, written from the drawing in proto.h rather than
 * from the codec's tables, so a mistake in one is caught by the other. */
typedef struct tfield tfield_t;
typedef struct tspec {
    const tfield_t *fields; /* fields of the map */
    size_t count;           /* entries in fields */
} tspec_t;
struct tfield {
    uint8_t key;         /* wire key */
    char kind;           /* s str, u uint, i int, b bool, d id, m array of maps, c counters,
                            h histograms, a array of uints, x chunk sums (bin of 8-byte words) */
    bool required;       /* missing -> refused */
    uint64_t max;        /* s: max length; u: max value; m/c/h: max count */
    int64_t good;        /* a valid value for u and i */
    const tspec_t *elem; /* m: element map */
    uint64_t min;        /* u: min value */
};

#define TSPEC(a)                                                                                   \
    {                                                                                              \
        a, sizeof a / sizeof a[0]                                                                  \
    }
static const tfield_t t_member[] = {
    {1, 'd', true, 0, 0, NULL, 0},
    {2, 's', false, MSG_NAME_MAX, 0, NULL, 0},
    {3, 's', true, MSG_ENDPOINT_MAX, 0, NULL, 0},
    {4, 's', false, MSG_ENDPOINT_MAX, 0, NULL, 0},
    {5, 'u', true, 3, 1, NULL, 0},
    {6, 'u', false, UINT64_MAX, 7, NULL, 0},
    {7, 'u', false, UINT64_MAX, 1 << 30, NULL, 0},
    {8, 'u', false, UINT64_MAX, 12, NULL, 0},
};
static const tspec_t t_member_spec = TSPEC(t_member);
static const tfield_t t_entry[] = {
    {1, 's', true, MSG_URI_MAX, 0, NULL, 0}, {2, 'u', false, UINT64_MAX, 5, NULL, 0},
    {3, 'i', false, 0, -3, NULL, 0},         {4, 's', false, MSG_VERSION_MAX, 0, NULL, 0},
    {5, 'b', false, 0, 0, NULL, 0},
};
static const tspec_t t_entry_spec = TSPEC(t_entry);

static const tfield_t t_error[] = {{1, 'i', true, 0, -1, NULL, 0},
                                   {2, 's', false, MSG_MESSAGE_MAX, 0, NULL, 0}};
static const tfield_t t_view_rep[] = {
    {1, 'u', true, UINT64_MAX, 3, NULL, 0},
    {2, 'u', true, MSG_PAGE_SIZE_MAX, 4096, NULL, 1},
    {3, 'u', true, MSG_RANGE_PAGES_MAX, 4, NULL, 1},
    {4, 'm', true, MSG_MEMBERS_MAX, 0, &t_member_spec, 0},
    {5, 'u', false, UINT32_MAX, 2, NULL, 1},
};
static const tfield_t t_stat_req[] = {{1, 's', true, MSG_URI_MAX, 0, NULL, 0}};
static const tfield_t t_stat_rep[] = {{1, 'u', true, UINT64_MAX, 9, NULL, 0},
                                      {2, 'i', false, 0, 1700000000, NULL, 0},
                                      {3, 's', false, MSG_VERSION_MAX, 0, NULL, 0},
                                      {4, 'b', false, 0, 0, NULL, 0}};
static const tfield_t t_list_req[] = {{1, 's', true, MSG_URI_MAX, 0, NULL, 0},
                                      {2, 'b', false, 0, 0, NULL, 0},
                                      {3, 's', false, MSG_CURSOR_MAX, 0, NULL, 0},
                                      {4, 'u', false, MSG_LIST_ENTRIES_MAX, 10, NULL, 0}};
static const tfield_t t_list_rep[] = {{1, 'm', true, MSG_LIST_ENTRIES_MAX, 0, &t_entry_spec, 0},
                                      {2, 's', false, MSG_CURSOR_MAX, 0, NULL, 0}};
static const tfield_t t_read_req[] = {{1, 's', true, MSG_URI_MAX, 0, NULL, 0},
                                      {2, 's', false, MSG_VERSION_MAX, 0, NULL, 0},
                                      {3, 'u', true, UINT64_MAX, 0, NULL, 0},
                                      {4, 'u', true, UINT64_MAX, 10, NULL, 0},
                                      {5, 'u', false, MSG_READ_FLAGS_ALL, 1, NULL, 0}};
/* file_size 100, span [0, 10), one page: header frames = 1 */
static const tfield_t t_read_rep[] = {{1, 'u', true, UINT64_MAX, 100, NULL, 0},
                                      {2, 's', false, MSG_VERSION_MAX, 0, NULL, 0},
                                      {3, 'u', true, UINT64_MAX, 0, NULL, 0},
                                      {4, 'u', true, UINT64_MAX, 10, NULL, 0},
                                      {5, 'u', true, 1, 1, NULL, 1},
                                      {6, 'u', true, MSG_PAGE_SIZE_MAX, 4096, NULL, 1},
                                      {7, 'b', false, 0, 0, NULL, 0}};
static const tfield_t t_load_req[] = {{1, 's', true, MSG_URI_MAX, 0, NULL, 0},
                                      {2, 's', false, MSG_VERSION_MAX, 0, NULL, 0},
                                      {3, 'u', false, UINT64_MAX, 0, NULL, 0},
                                      {4, 'u', false, UINT64_MAX, 0, NULL, 0},
                                      {5, 'u', false, MSG_REPLICAS_MAX, 2, NULL, 1}};
static const tfield_t t_load_rep[] = {{1, 'u', false, UINT64_MAX, 1, NULL, 0},
                                      {2, 'u', false, UINT64_MAX, 2, NULL, 0},
                                      {3, 'u', false, UINT64_MAX, 3, NULL, 0}};
static const tfield_t t_evict_req[] = {{1, 's', true, MSG_URI_MAX, 0, NULL, 0},
                                       {2, 'b', false, 0, 0, NULL, 0}};
static const tfield_t t_evict_rep[] = {{1, 'u', false, UINT64_MAX, 1, NULL, 0},
                                       {2, 'u', false, UINT64_MAX, 2, NULL, 0}};
static const tfield_t t_stats_rep[] = {{1, 'c', false, MSG_COUNTERS_MAX, 0, NULL, 0},
                                       {2, 'h', false, MSG_HISTOGRAMS_MAX, 0, NULL, 0}};

static const tfield_t t_hello_rep[] = {{1, 'd', true, 0, 0, NULL, 0},
                                       {2, 'u', true, UINT64_MAX, 9, NULL, 0},
                                       {3, 's', false, MSG_HOST_ID_MAX, 0, NULL, 0},
                                       {4, 'u', true, MSG_PAGE_SIZE_MAX, 4096, NULL, 1},
                                       {5, 'u', true, MSG_LEASE_MS_MAX, 30000, NULL, 1}};
static const tfield_t t_locate_req[] = {{1, 's', true, MSG_URI_MAX, 0, NULL, 0},
                                        {2, 's', false, MSG_VERSION_MAX, 0, NULL, 0},
                                        {3, 'u', true, UINT64_MAX, 0, NULL, 0},
                                        {4, 'u', true, MSG_LOCATE_LENGTH_MAX, 10, NULL, 0},
                                        {5, 'u', false, UINT64_MAX, 5, NULL, 0}};
/* a 100-byte page at chunk_shift 16: one chunk, one 8-byte sum */
static const tfield_t t_local_page[] = {
    {1, 'u', true, UINT64_MAX, 0, NULL, 0},
    {2, 'u', true, UINT64_MAX, 1, NULL, 1},
    {3, 'u', true, UINT64_MAX, 0, NULL, 0},
    {4, 'u', true, MSG_PAGE_SIZE_MAX, 100, NULL, 1},
    {5, 'u', true, MSG_CHUNK_SHIFT_MAX, 16, NULL, MSG_CHUNK_SHIFT_MIN},
    {6, 'u', true, UINT64_MAX, 5, NULL, 0},
    {7, 'x', true, MSG_CHUNKS_MAX, 0, NULL, 0},
};
static const tspec_t t_local_page_spec = TSPEC(t_local_page);
static const tfield_t t_locate_rep[] = {
    {1, 'u', false, UINT64_MAX, 100, NULL, 0},
    {2, 's', false, MSG_VERSION_MAX, 0, NULL, 0},
    {3, 'i', false, 0, 1700000000, NULL, 0},
    {4, 'u', true, UINT64_MAX, 9, NULL, 0},
    {5, 'm', false, MSG_LOCATE_PAGES_MAX, 0, &t_local_page_spec, 0},
    {6, 'a', false, MSG_LOCATE_FDS_MAX, 1, NULL, 1},
    {7, 'a', false, MSG_LOCATE_GONE_MAX, 2, NULL, 1},
};

typedef struct tbody {
    uint32_t type;   /* message type */
    tspec_t spec;    /* its body */
    uint32_t frames; /* header frames for the valid form */
} tbody_t;

static const tbody_t t_bodies[] = {
    {MSG_ERROR, TSPEC(t_error), 0},
    {MSG_VIEW_REQ, {NULL, 0}, 0},
    {MSG_VIEW_REP, TSPEC(t_view_rep), 0},
    {MSG_STAT_REQ, TSPEC(t_stat_req), 0},
    {MSG_STAT_REP, TSPEC(t_stat_rep), 0},
    {MSG_LIST_REQ, TSPEC(t_list_req), 0},
    {MSG_LIST_REP, TSPEC(t_list_rep), 0},
    {MSG_READ_REQ, TSPEC(t_read_req), 0},
    {MSG_READ_REP, TSPEC(t_read_rep), 1},
    {MSG_LOAD_REQ, TSPEC(t_load_req), 0},
    {MSG_LOAD_REP, TSPEC(t_load_rep), 0},
    {MSG_EVICT_REQ, TSPEC(t_evict_req), 0},
    {MSG_EVICT_REP, TSPEC(t_evict_rep), 0},
    {MSG_STATS_REQ, {NULL, 0}, 0},
    {MSG_STATS_REP, TSPEC(t_stats_rep), 0},
    {MSG_LOCAL_HELLO_REQ, {NULL, 0}, 0},
    {MSG_LOCAL_HELLO_REP, TSPEC(t_hello_rep), 0},
    {MSG_LOCATE_REQ, TSPEC(t_locate_req), 0},
    {MSG_LOCATE_REP, TSPEC(t_locate_rep), 0},
};

enum {
    MUT_NONE,
    MUT_WRONG_KIND,
    MUT_TOO_BIG,
    MUT_TOO_SMALL,
    MUT_MISSING,
    MUT_TWICE,
    MUT_NUL,
    MUT_COUNT
};
static const char *const t_mut_names[] = {"none",    "wrong kind", "too big", "too small",
                                          "missing", "twice",      "NUL"};

static void t_write_map(msg_buf_t *buf, const tspec_t *spec, const int *path, int depth, int mut);

/* Writes n copies of a valid element of an array field. */
static void t_write_elements(msg_buf_t *buf, const tfield_t *f, uint32_t n, const int *path,
                             int depth, int mut)
{
    mp_write_array(buf, n);
    for (uint32_t i = 0; i < n; i++) {
        bool target = i == 0 && depth > 0;
        switch (f->kind) {
        case 'm':
            t_write_map(buf, f->elem, path, target ? depth : -1, mut);
            break;
        case 'c':
            mp_write_array(buf, 2);
            mp_write_cstr(buf, "reads");
            mp_write_uint(buf, i);
            break;
        case 'h':
            mp_write_array(buf, 3);
            mp_write_cstr(buf, "latency_us");
            mp_write_array(buf, 2);
            mp_write_uint(buf, 10);
            mp_write_uint(buf, 100);
            mp_write_array(buf, 2);
            mp_write_uint(buf, 1);
            mp_write_uint(buf, 2);
            break;
        }
    }
}

/* Writes one field's value, valid (mut MUT_NONE) or spoiled in the way `mut` says. */
static void t_write_value(msg_buf_t *buf, const tfield_t *f, int mut)
{
    if (mut == MUT_WRONG_KIND) {
        if (f->kind == 's' || f->kind == 'd')
            mp_write_uint(buf, 7);
        else if (f->kind == 'b')
            mp_write_uint(buf, 1);
        else if (f->kind == 'm' || f->kind == 'c' || f->kind == 'h' || f->kind == 'a')
            mp_write_map(buf, 0);
        else
            mp_write_cstr(buf, "7");
        return;
    }
    switch (f->kind) {
    case 's':
        if (mut == MUT_TOO_BIG) {
            char *s = s_string(f->max + 1, 'z');
            mp_write_str(buf, s, f->max + 1);
            free(s);
        } else if (mut == MUT_NUL) {
            mp_write_str(buf, "a\0b", 3);
        } else {
            mp_write_cstr(buf, "s3://b/k");
        }
        break;
    case 'u':
        if (mut == MUT_TOO_BIG)
            mp_write_uint(buf, f->max + 1);
        else if (mut == MUT_TOO_SMALL)
            mp_write_int(buf, f->min == 0 ? -1 : (int64_t)f->min - 1);
        else
            mp_write_uint(buf, (uint64_t)f->good);
        break;
    case 'i':
        if (mut == MUT_TOO_BIG)
            mp_write_uint(buf, f->key == 1 && f->good < 0 ? 0 : (uint64_t)INT64_MAX + 1);
        else
            mp_write_int(buf, f->good);
        break;
    case 'b':
        mp_write_bool(buf, true);
        break;
    case 'd': {
        uint8_t id[MSG_NODE_ID_SIZE + 1] = {1, 2, 3};
        mp_write_bin(buf, id, mut == MUT_TOO_BIG ? sizeof id : MSG_NODE_ID_SIZE);
        break;
    }
    case 'a': /* array of uints >= min, distinct */
        if (mut == MUT_TOO_BIG) {
            mp_write_array(buf, (uint32_t)f->max + 1);
            for (uint64_t i = 0; i <= f->max; i++)
                mp_write_uint(buf, f->min + i);
        } else {
            mp_write_array(buf, 1);
            mp_write_uint(buf, mut == MUT_TOO_SMALL ? f->min - 1 : (uint64_t)f->good);
        }
        break;
    case 'x': { /* chunk sums: bin of 8-byte words, one word for the valid page */
        size_t len = mut == MUT_TOO_BIG ? ((size_t)f->max + 1) * 8 : mut == MUT_TOO_SMALL ? 7 : 8;
        uint8_t *bytes = calloc(1, len);
        mp_write_bin(buf, bytes, len);
        free(bytes);
        break;
    }
    default:
        t_write_elements(buf, f, mut == MUT_TOO_BIG ? (uint32_t)f->max + 1 : 1, NULL, 0, 0);
    }
}

/* Writes a body map. path[0..depth) names the field to spoil (path[0] at this level, path[1]
 * inside element 0 of an array field); depth < 1 writes everything valid. */
static void t_write_map(msg_buf_t *buf, const tspec_t *spec, const int *path, int depth, int mut)
{
    size_t count = spec ? spec->count : 0;
    bool here = depth == 1;
    uint32_t entries = (uint32_t)count;
    if (here && mut == MUT_MISSING)
        entries--;
    if (here && mut == MUT_TWICE)
        entries++;
    mp_write_map(buf, entries + 1);
    mp_write_uint(buf, 200); /* an unknown key is always skipped */
    mp_write_map(buf, 1);
    mp_write_cstr(buf, "future");
    mp_write_array(buf, 0);
    for (size_t j = 0; j < count; j++) {
        const tfield_t *f = &spec->fields[j];
        bool target = depth >= 1 && path[0] == (int)j;
        if (target && here && mut == MUT_MISSING)
            continue;
        int copies = target && here && mut == MUT_TWICE ? 2 : 1;
        for (int c = 0; c < copies; c++) {
            mp_write_uint(buf, f->key);
            if (target && !here)
                t_write_elements(buf, f, 1, path + 1, depth - 1, mut);
            else
                t_write_value(buf, f, target && mut != MUT_TWICE ? mut : MUT_NONE);
        }
    }
}

/* Whether a mutation applies to a field at all. */
static bool t_applies(const tfield_t *f, int mut)
{
    switch (mut) {
    case MUT_WRONG_KIND:
    case MUT_TWICE:
        return true;
    case MUT_MISSING:
        return f->required;
    case MUT_NUL:
        return f->kind == 's';
    case MUT_TOO_BIG:
        return f->kind == 's' || f->kind == 'd' || f->kind == 'm' || f->kind == 'c' ||
               f->kind == 'h' || f->kind == 'a' || f->kind == 'x' ||
               (f->kind == 'u' && f->max < UINT64_MAX) || (f->kind == 'i' && f->good < 0);
    case MUT_TOO_SMALL:
        return f->kind == 'u' || f->kind == 'x' || (f->kind == 'a' && f->min > 0);
    }
    return false;
}

static void t_frame(msg_buf_t *buf, const tbody_t *body, const int *path, int depth, int mut)
{
    msg_header_t h = {
        .type = body->type, .request_id = 77, .view_version = 5, .frames = body->frames};
    cr_assert_eq(msg_header_encode(&h, buf), 0);
    t_write_map(buf, body->spec.count ? &body->spec : NULL, path, depth, mut);
    cr_assert_eq(buf->err, 0);
}

/* Every body: the valid form (with an unknown key) decodes, and each field spoiled in each
 * applicable way is refused with SHOAL_EPROTO and a last error naming the field. */
Test(proto, malformed_field_by_field)
{
    msg_buf_t buf;
    msg_buf_init(&buf);
    int checked = 0;
    for (size_t b = 0; b < sizeof t_bodies / sizeof t_bodies[0]; b++) {
        const tbody_t *body = &t_bodies[b];
        t_frame(&buf, body, NULL, 0, MUT_NONE);
        msg_t m;
        cr_assert_eq(msg_decode(buf.data, buf.len, &m), 0, "%s valid form: %s",
                     msg_type_name(body->type), shoal_last_error());
        cr_assert_eq(m.header.request_id, 77);
        msg_fini(&m);
        for (size_t j = 0; j < body->spec.count; j++) {
            const tfield_t *f = &body->spec.fields[j];
            for (int mut = MUT_WRONG_KIND; mut < MUT_COUNT; mut++) {
                if (t_applies(f, mut)) {
                    int path[1] = {(int)j};
                    t_frame(&buf, body, path, 1, mut);
                    cr_assert_eq(msg_decode(buf.data, buf.len, &m), SHOAL_EPROTO,
                                 "%s field %u %s was accepted", msg_type_name(body->type), f->key,
                                 t_mut_names[mut]);
                    msg_fini(&m);
                    checked++;
                }
                if (f->kind != 'm')
                    continue;
                for (size_t k = 0; k < f->elem->count; k++) { /* inside element 0 */
                    const tfield_t *e = &f->elem->fields[k];
                    if (!t_applies(e, mut))
                        continue;
                    int path[2] = {(int)j, (int)k};
                    t_frame(&buf, body, path, 2, mut);
                    cr_assert_eq(msg_decode(buf.data, buf.len, &m), SHOAL_EPROTO,
                                 "%s field %u element field %u %s was accepted",
                                 msg_type_name(body->type), f->key, e->key, t_mut_names[mut]);
                    cr_assert(strstr(shoal_last_error(), "[0]"), "%s", shoal_last_error());
                    msg_fini(&m);
                    checked++;
                }
            }
        }
    }
    cr_assert_gt(checked, 150);
    msg_buf_fini(&buf);
}

Test(proto, malformed_messages_name_the_field)
{
    msg_buf_t buf;
    msg_buf_init(&buf);
    const tbody_t *read_req = &t_bodies[7];
    cr_assert_eq(read_req->type, MSG_READ_REQ);
    int path[1] = {0};
    t_frame(&buf, read_req, path, 1, MUT_MISSING);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "READ_REQ: uri: missing");
    t_frame(&buf, read_req, path, 1, MUT_TOO_BIG);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "uri: too long");
    t_frame(&buf, read_req, path, 1, MUT_TWICE);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "uri: appears twice");
    t_frame(&buf, read_req, path, 1, MUT_NUL);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "NUL");
    path[0] = 2;
    t_frame(&buf, read_req, path, 1, MUT_WRONG_KIND);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "offset: expected an unsigned integer");

    /* cross-field checks on decode */
    msg_header_t h = {.type = MSG_READ_REP, .frames = 2};
    msg_header_encode(&h, &buf);
    mp_write_map(&buf, 5); /* page_count 2 for a one-page span */
    mp_write_uint(&buf, 1), mp_write_uint(&buf, 100);
    mp_write_uint(&buf, 3), mp_write_uint(&buf, 0);
    mp_write_uint(&buf, 4), mp_write_uint(&buf, 10);
    mp_write_uint(&buf, 5), mp_write_uint(&buf, 2);
    mp_write_uint(&buf, 6), mp_write_uint(&buf, 4096);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "page_count");
    h.frames = 0; /* header and body disagree */
    msg_header_encode(&h, &buf);
    mp_write_map(&buf, 5);
    mp_write_uint(&buf, 1), mp_write_uint(&buf, 100);
    mp_write_uint(&buf, 3), mp_write_uint(&buf, 0);
    mp_write_uint(&buf, 4), mp_write_uint(&buf, 10);
    mp_write_uint(&buf, 5), mp_write_uint(&buf, 1);
    mp_write_uint(&buf, 6), mp_write_uint(&buf, 4096);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "frames");
    h = (msg_header_t){.type = MSG_READ_REQ};
    msg_header_encode(&h, &buf);
    mp_write_map(&buf, 3); /* offset + length overflows */
    mp_write_uint(&buf, 1), mp_write_cstr(&buf, "x");
    mp_write_uint(&buf, 3), mp_write_uint(&buf, UINT64_MAX);
    mp_write_uint(&buf, 4), mp_write_uint(&buf, 1);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "overflows");
    h = (msg_header_t){.type = MSG_STAT_REQ, .frames = 3}; /* frames on a type without */
    msg_header_encode(&h, &buf);
    mp_write_map(&buf, 1);
    mp_write_uint(&buf, 1), mp_write_cstr(&buf, "x");
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "frames");
    h = (msg_header_t){.type = MSG_STATS_REP};
    msg_header_encode(&h, &buf);
    mp_write_map(&buf, 1); /* histogram with 2 bounds and 1 count */
    mp_write_uint(&buf, 2);
    mp_write_array(&buf, 1);
    mp_write_array(&buf, 3);
    mp_write_cstr(&buf, "h");
    mp_write_array(&buf, 2), mp_write_uint(&buf, 1), mp_write_uint(&buf, 2);
    mp_write_array(&buf, 1), mp_write_uint(&buf, 1);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "counts");
    msg_header_encode(&h, &buf);
    mp_write_map(&buf, 1); /* bounds not increasing */
    mp_write_uint(&buf, 2);
    mp_write_array(&buf, 1);
    mp_write_array(&buf, 3);
    mp_write_cstr(&buf, "h");
    mp_write_array(&buf, 2), mp_write_uint(&buf, 2), mp_write_uint(&buf, 2);
    mp_write_array(&buf, 2), mp_write_uint(&buf, 1), mp_write_uint(&buf, 1);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "increasing");
    msg_header_encode(&h, &buf);
    mp_write_map(&buf, 1); /* too many buckets */
    mp_write_uint(&buf, 2);
    mp_write_array(&buf, 1);
    mp_write_array(&buf, 3);
    mp_write_cstr(&buf, "h");
    mp_write_array(&buf, MSG_BUCKETS_MAX + 1);
    for (int i = 0; i <= MSG_BUCKETS_MAX; i++)
        mp_write_uint(&buf, (uint64_t)i);
    mp_write_array(&buf, 0);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "buckets");
    msg_header_encode(&h, &buf);
    mp_write_map(&buf, 1); /* counter tuple too short */
    mp_write_uint(&buf, 1);
    mp_write_array(&buf, 1);
    mp_write_array(&buf, 1);
    mp_write_cstr(&buf, "c");
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "counters[0]");
    msg_header_encode(&h, &buf);
    mp_write_map(&buf, 1); /* counter tuple with an extra element: accepted */
    mp_write_uint(&buf, 1);
    mp_write_array(&buf, 1);
    mp_write_array(&buf, 3);
    mp_write_cstr(&buf, "c"), mp_write_uint(&buf, 9), mp_write_nil(&buf);
    msg_t m;
    cr_assert_eq(msg_decode(buf.data, buf.len, &m), 0, "%s", shoal_last_error());
    cr_assert_eq(m.body.stats_reply.counters[0].value, 9);
    msg_fini(&m);
    h = (msg_header_t){.type = MSG_VIEW_REQ};
    msg_header_encode(&h, &buf);
    mp_write_array(&buf, 0); /* body not a map */
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "expected a map");
    msg_header_encode(&h, &buf);
    mp_write_map(&buf, 1); /* string key */
    mp_write_cstr(&buf, "k"), mp_write_uint(&buf, 1);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "key");
    msg_buf_fini(&buf);
}

Test(proto, envelope_checks)
{
    msg_buf_t buf;
    msg_buf_init(&buf);
    /* another protocol version, whatever follows */
    mp_write_array(&buf, 2);
    mp_write_uint(&buf, 2);
    mp_write_cstr(&buf, "v2 says hello");
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "protocol version 2, this node speaks 1");
    msg_buf_reset(&buf);
    mp_write_array(&buf, 6);
    for (int i = 0; i < 5; i++)
        mp_write_uint(&buf, 0);
    mp_write_map(&buf, 0);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "protocol version 0");
    /* too few elements */
    msg_buf_reset(&buf);
    mp_write_array(&buf, 5);
    for (int i = 0; i < 5; i++)
        mp_write_uint(&buf, 1);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "need 6");
    /* not an array */
    msg_buf_reset(&buf);
    mp_write_map(&buf, 0);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "not a msgpack array");
    s_expect_fail("", 0, SHOAL_EPROTO, NULL);
    s_expect_fail(NULL, 0, SHOAL_EPROTO, NULL);
    /* unknown type */
    msg_header_t h = {.type = 20};
    msg_header_encode(&h, &buf);
    mp_write_map(&buf, 0);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "unknown message type 20");
    h.type = 0;
    msg_header_encode(&h, &buf);
    mp_write_map(&buf, 0);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "unknown message type 0");
    /* frames over the limit */
    msg_buf_reset(&buf);
    mp_write_array(&buf, 6);
    mp_write_uint(&buf, 1), mp_write_uint(&buf, MSG_READ_REP), mp_write_uint(&buf, 1);
    mp_write_uint(&buf, 1), mp_write_uint(&buf, MSG_READ_PAGES_MAX + 1), mp_write_map(&buf, 0);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "frames");
    h.frames = MSG_READ_PAGES_MAX + 1;
    cr_assert_eq(msg_header_encode(&h, &buf), SHOAL_EINVAL);
    /* extra envelope elements are skipped; trailing bytes are not */
    h = (msg_header_t){.type = MSG_VIEW_REQ, .request_id = 3};
    msg_buf_reset(&buf);
    mp_write_array(&buf, 8);
    mp_write_uint(&buf, 1), mp_write_uint(&buf, MSG_VIEW_REQ), mp_write_uint(&buf, 3);
    mp_write_uint(&buf, 4), mp_write_uint(&buf, 0), mp_write_map(&buf, 0);
    mp_write_cstr(&buf, "later"), mp_write_array(&buf, 0);
    msg_t m;
    cr_assert_eq(msg_decode(buf.data, buf.len, &m), 0, "%s", shoal_last_error());
    cr_assert_eq(m.header.request_id, 3);
    cr_assert_eq(m.header.view_version, 4);
    msg_fini(&m);
    mp_write_nil(&buf);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "trailing");
    /* non-canonical integers are fine: type as uint64, request id as int8 */
    static const uint8_t odd[] = {0x96, 0x01, 0xcf,         0,    0,    0,    0,    0,
                                  0,    0,    MSG_VIEW_REQ, 0xd0, 0x05, 0x00, 0x00, 0x80};
    cr_assert_eq(msg_decode(odd, sizeof odd, &m), 0, "%s", shoal_last_error());
    cr_assert_eq(m.header.type, MSG_VIEW_REQ);
    cr_assert_eq(m.header.request_id, 5);
    msg_fini(&m);
    /* a negative request id is refused */
    static const uint8_t negative[] = {0x96, 0x01, 0x02, 0xff, 0x00, 0x00, 0x80};
    s_expect_fail(negative, sizeof negative, SHOAL_EPROTO, "request_id");
    /* deep nesting in an unknown value */
    msg_buf_reset(&buf);
    h = (msg_header_t){.type = MSG_VIEW_REQ};
    msg_header_encode(&h, &buf);
    mp_write_map(&buf, 1);
    mp_write_uint(&buf, 9);
    for (int i = 0; i < MP_DEPTH_MAX + 1; i++)
        mp_write_array(&buf, 1);
    mp_write_nil(&buf);
    s_expect_fail(buf.data, buf.len, SHOAL_EPROTO, "nested");
    msg_buf_fini(&buf);
}

Test(proto, frame_over_the_limit)
{
    size_t len = MSG_FRAME_MAX + 1;
    uint8_t *big = calloc(1, len);
    s_expect_fail(big, len, SHOAL_EMSGSIZE, "limit");
    msg_header_t h;
    msg_raw_body_t body;
    cr_assert_eq(msg_header_decode(big, len, &h, &body), SHOAL_EMSGSIZE);
    free(big);
    /* an encoder never produces one: a LIST reply of big entries */
    char *uri = s_string(MSG_URI_MAX, 'u');
    msg_entry_t *entries = calloc(MSG_LIST_ENTRIES_MAX, sizeof *entries);
    for (int i = 0; i < MSG_LIST_ENTRIES_MAX; i++)
        entries[i].uri = uri;
    msg_t m;
    msg_init(&m, MSG_LIST_REP, 1, 1);
    m.body.list_reply = (msg_list_reply_t){MSG_LIST_ENTRIES_MAX, entries, NULL};
    msg_buf_t buf;
    msg_buf_init(&buf);
    cr_assert_eq(msg_encode(&m, &buf), SHOAL_EMSGSIZE);
    msg_buf_fini(&buf);
    free(entries);
    free(uri);
}

/* ---- garbage ---- */

static uint64_t s_rng = 0x9e3779b97f4a7c15ull;
static uint64_t s_next(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

/* Decodes `data`; on success the result must re-encode and decode to an equal message. */
static void s_decode_any(const uint8_t *data, size_t len, msg_buf_t *buf)
{
    msg_t m;
    int rc = msg_decode(data, len, &m);
    cr_assert_leq(rc, 0);
    cr_assert_geq(rc, SHOAL_ERR_MIN);
    if (rc == 0) {
        cr_assert_eq(msg_encode(&m, buf), 0, "re-encode %s: %s", msg_type_name(m.header.type),
                     shoal_last_error());
        msg_t again;
        cr_assert_eq(msg_decode(buf->data, buf->len, &again), 0);
        cr_assert(msg_equal(&m, &again));
        msg_fini(&again);
    }
    msg_fini(&m);
}

Test(proto, random_garbage_and_mutations_never_crash)
{
    msg_buf_t buf, valid;
    msg_buf_init(&buf);
    msg_buf_init(&valid);
    uint8_t data[512];
    for (int round = 0; round < 100000; round++) {
        size_t len = s_next() % sizeof data;
        for (size_t i = 0; i < len; i++)
            data[i] = (uint8_t)s_next();
        if (len && round % 2) /* mostly-plausible start */
            data[0] = 0x96, data[1 % len] = 0x01;
        s_decode_any(data, len, &buf);
    }
    /* flip bytes of every valid body */
    for (size_t b = 0; b < sizeof t_bodies / sizeof t_bodies[0]; b++) {
        t_frame(&valid, &t_bodies[b], NULL, 0, MUT_NONE);
        cr_assert_leq(valid.len, sizeof data);
        for (int round = 0; round < 5000; round++) {
            memcpy(data, valid.data, valid.len);
            int flips = 1 + (int)(s_next() % 3);
            for (int k = 0; k < flips; k++)
                data[s_next() % valid.len] = (uint8_t)s_next();
            s_decode_any(data, valid.len - (round % 7 == 0 ? s_next() % valid.len : 0), &buf);
        }
    }
    msg_buf_fini(&buf);
    msg_buf_fini(&valid);
}

/* ---- interoperability with msgpack-c ---- */

Test(proto, interop_with_msgpack_c)
{
    /* msgpack-c encodes a READ request; we decode it */
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint32(&pk, 1);
    msgpack_pack_uint32(&pk, MSG_READ_REQ);
    msgpack_pack_uint64(&pk, 123456789012ull);
    msgpack_pack_uint64(&pk, 17);
    msgpack_pack_uint32(&pk, 0);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_str_with_body(&pk, "hf://datasets/org/name/train-0001.parquet", 41);
    msgpack_pack_uint8(&pk, 3);
    msgpack_pack_uint64(&pk, 1ull << 33);
    msgpack_pack_uint8(&pk, 4);
    msgpack_pack_uint64(&pk, 4 << 20);
    msgpack_pack_uint8(&pk, 5);
    msgpack_pack_uint8(&pk, MSG_READ_NO_CACHE);
    msg_t m;
    cr_assert_eq(msg_decode(sbuf.data, sbuf.size, &m), 0, "%s", shoal_last_error());
    cr_assert_str_eq(m.body.read_request.uri, "hf://datasets/org/name/train-0001.parquet");
    cr_assert_eq(m.body.read_request.offset, 1ull << 33);
    cr_assert_eq(m.body.read_request.flags, MSG_READ_NO_CACHE);
    cr_assert_eq(m.header.request_id, 123456789012ull);
    msg_fini(&m);
    msgpack_sbuffer_destroy(&sbuf);

    /* we encode an ERROR; msgpack-c reads the same structure */
    msg_error(&m, 9, 10, SHOAL_ESTALE, "changed");
    msg_buf_t buf;
    msg_buf_init(&buf);
    cr_assert_eq(msg_encode(&m, &buf), 0);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    cr_assert_eq(msgpack_unpack_next(&up, (const char *)buf.data, buf.len, &off),
                 MSGPACK_UNPACK_SUCCESS);
    cr_assert_eq(off, buf.len);
    msgpack_object o = up.data;
    cr_assert_eq(o.type, MSGPACK_OBJECT_ARRAY);
    cr_assert_eq(o.via.array.size, 6);
    cr_assert_eq(o.via.array.ptr[1].via.u64, MSG_ERROR);
    msgpack_object body = o.via.array.ptr[5];
    cr_assert_eq(body.type, MSGPACK_OBJECT_MAP);
    cr_assert_eq(body.via.map.ptr[0].key.via.u64, 1);
    cr_assert_eq(body.via.map.ptr[0].val.type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    cr_assert_eq(body.via.map.ptr[0].val.via.i64, SHOAL_ESTALE);
    cr_assert_eq(body.via.map.ptr[1].val.via.str.size, 7);
    msgpack_unpacked_destroy(&up);
    msg_buf_fini(&buf);
}

/* ---- the reader on its own ---- */

Test(proto, mp_reader_bounds)
{
    mp_reader_t r;
    uint64_t u;
    int64_t s;
    uint32_t n;
    const char *str;
    /* counts larger than the bytes left are refused before anything is allocated */
    static const uint8_t big_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x00};
    mp_reader_init(&r, big_array, sizeof big_array);
    cr_assert_eq(mp_read_array(&r, &n), SHOAL_EPROTO);
    cr_assert_eq(mp_reader_left(&r), sizeof big_array);
    static const uint8_t big_str[] = {0xdb, 0x00, 0x00, 0x01, 0x00, 'a'};
    mp_reader_init(&r, big_str, sizeof big_str);
    cr_assert_eq(mp_read_str(&r, &str, &n), SHOAL_EPROTO);
    static const uint8_t map2[] = {0x82, 0x01, 0x02, 0x03};
    mp_reader_init(&r, map2, sizeof map2);
    cr_assert_eq(mp_read_map(&r, &n), SHOAL_EPROTO); /* needs 4 bytes after the header */
    /* integer ranges */
    static const uint8_t u64max[] = {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    mp_reader_init(&r, u64max, sizeof u64max);
    cr_assert_eq(mp_read_int(&r, &s), SHOAL_EPROTO);
    cr_assert_eq(mp_read_uint(&r, &u), 0);
    cr_assert_eq(u, UINT64_MAX);
    static const uint8_t i64min[] = {0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0};
    mp_reader_init(&r, i64min, sizeof i64min);
    cr_assert_eq(mp_read_uint(&r, &u), SHOAL_EPROTO);
    cr_assert_eq(mp_read_int(&r, &s), 0);
    cr_assert_eq(s, INT64_MIN);
    static const uint8_t neg[] = {0xd1, 0xff, 0x00, 0xe0};
    mp_reader_init(&r, neg, sizeof neg);
    cr_assert_eq(mp_read_int(&r, &s), 0);
    cr_assert_eq(s, -256);
    cr_assert_eq(mp_read_int(&r, &s), 0);
    cr_assert_eq(s, -32);
    /* skipping every kind, including ext and float */
    static const uint8_t mixed[] = {0x94, 0xcb, 0,    0,    0,    0,    0,    0,
                                    0,    0,    0xd5, 0x01, 0xaa, 0xbb, 0xc7, 0x02,
                                    0x05, 0x01, 0x02, 0x81, 0xc0, 0xc3};
    mp_reader_init(&r, mixed, sizeof mixed);
    cr_assert_eq(mp_skip(&r), 0);
    cr_assert_eq(mp_reader_left(&r), 0);
    static const uint8_t reserved[] = {0x91, 0xc1};
    mp_reader_init(&r, reserved, sizeof reserved);
    cr_assert_eq(mp_skip(&r), SHOAL_EPROTO);
    cr_assert_eq(mp_reader_left(&r), sizeof reserved);
    /* round trip of every integer width through the writer */
    msg_buf_t buf;
    msg_buf_init(&buf);
    int64_t values[] = {0,
                        1,
                        127,
                        128,
                        255,
                        256,
                        65535,
                        65536,
                        INT32_MAX,
                        (int64_t)UINT32_MAX,
                        (int64_t)UINT32_MAX + 1,
                        INT64_MAX,
                        -1,
                        -32,
                        -33,
                        -128,
                        -129,
                        -32768,
                        -32769,
                        INT32_MIN,
                        (int64_t)INT32_MIN - 1,
                        INT64_MIN};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        mp_write_int(&buf, values[i]);
    mp_reader_init(&r, buf.data, buf.len);
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        cr_assert_eq(mp_read_int(&r, &s), 0);
        cr_assert_eq(s, values[i]);
    }
    cr_assert_eq(mp_reader_left(&r), 0);
    /* the buffer's limit is sticky */
    msg_buf_reset(&buf);
    buf.limit = 4;
    mp_write_str(&buf, "hello", 5);
    mp_write_nil(&buf);
    cr_assert_eq(buf.err, SHOAL_EMSGSIZE);
    msg_buf_fini(&buf);
    cr_assert_eq(buf.limit, 4);
}
