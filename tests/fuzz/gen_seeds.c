/*
 * gen_seeds.c - writes the fuzz seed corpora: one valid encoding of every message type into
 * DIR/fuzz_header/<type>.bin (whole frames) and DIR/fuzz_body/<type>.bin (type byte, frames
 * byte, body), and gossip messages into DIR/fuzz_swim/<name>.bin (about the members of
 * fuzz_swim's fake cluster: ids {n, 0, ..., 0xee}, n = 1..4, at "sim:0".."sim:3"). Run as
 * `gen_seeds tests/fuzz` after changing a format.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "swim_proto.h"

static void s_write(const char *dir, const char *target, const char *name, const void *data,
                    size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s.bin", dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* Writes `m` to both corpora under `name`. */
static void s_emit(const char *dir, const msg_t *m, const char *name)
{
    msg_buf_t buf;
    msg_buf_init(&buf);
    if (msg_encode(m, &buf) != 0) {
        fprintf(stderr, "%s: %s\n", name, shoal_last_error());
        exit(1);
    }
    s_write(dir, "fuzz_header", name, buf.data, buf.len);
    msg_header_t header;
    msg_raw_body_t body;
    if (msg_header_decode(buf.data, buf.len, &header, &body) != 0)
        exit(1);
    uint8_t *seed = malloc(body.len + 2);
    seed[0] = (uint8_t)header.type;
    seed[1] = (uint8_t)header.frames;
    memcpy(seed + 2, body.data, body.len);
    s_write(dir, "fuzz_body", name, seed, body.len + 2);
    free(seed);
    msg_buf_fini(&buf);
}

/* Writes one gossip message to DIR/fuzz_swim/<name>.bin. */
static void s_swim_emit(const char *dir, const char *name, const swim_msg_t *m,
                        const swim_update_t *u, size_t n)
{
    msg_buf_t buf;
    msg_buf_init(&buf);
    if (swim_msg_encode(&buf, m, u, n) != 0) {
        fprintf(stderr, "%s: %s\n", name, shoal_last_error());
        exit(1);
    }
    s_write(dir, "fuzz_swim", name, buf.data, buf.len);
    msg_buf_fini(&buf);
}

/* A record of fuzz_swim's member n (1..4), or of a stranger (n > 4, at "sim:7"). */
static swim_update_t s_record(uint8_t n, uint8_t state, uint64_t incarnation)
{
    static const char *const eps[] = {"sim:0", "sim:1", "sim:2", "sim:3", "sim:7"};
    swim_update_t u;
    memset(&u, 0, sizeof u);
    u.id[0] = n;
    u.id[15] = 0xee;
    u.name = (swim_str_t){"node", 4};
    const char *ep = eps[n >= 1 && n <= 4 ? n - 1 : 4];
    u.gossip_ep = (swim_str_t){ep, strlen(ep)};
    u.data_ep = (swim_str_t){"tcp://127.0.0.1:9000", 20};
    u.host_id = (swim_str_t){n % 2 ? "host-b" : "host-a", 6}; /* as fuzz_swim's member n - 1 */
    if (n == 2)
        u.local_socket = (swim_str_t){"/run/shoal/1.sock", 17};
    u.incarnation = incarnation;
    u.state = state;
    u.weight = 1000;
    if (state == 1) {
        u.has_suspecter = true;
        u.suspecter[0] = 2;
        u.suspecter[15] = 0xee;
    }
    return u;
}

/* The gossip corpus: every type, from member 2 ("sim:1") to member 1. */
static void s_swim_seeds(const char *dir)
{
    swim_msg_t m;
    memset(&m, 0, sizeof m);
    m.from_id[0] = 2;
    m.from_id[15] = 0xee;
    m.from_addr = (swim_str_t){"sim:1", 5};
    m.target_id[0] = 1;
    m.target_id[15] = 0xee;
    m.seq = 1;
    m.page_size = 65536;
    m.range_pages = 16;
    swim_update_t u[6] = {s_record(3, 1, 0), s_record(1, 1, 0), s_record(9, 0, 1),
                          s_record(4, 2, 0), s_record(2, 0, 3), s_record(3, 3, 2)};
    m.type = MSG_PING;
    s_swim_emit(dir, "ping", &m, u, 2);
    m.type = MSG_ACK;
    s_swim_emit(dir, "ack", &m, u + 4, 1);
    m.type = MSG_PING_REQ;
    m.target_id[0] = 3;
    m.target_addr = (swim_str_t){"sim:2", 5};
    s_swim_emit(dir, "ping_req", &m, u, 0);
    m.type = MSG_NACK;
    s_swim_emit(dir, "nack", &m, u + 3, 1);
    m.type = MSG_SYNC;
    m.sync_kind = SWIM_SYNC_PUSH;
    s_swim_emit(dir, "sync_push", &m, u, 6);
    m.sync_kind = SWIM_SYNC_REPLY;
    s_swim_emit(dir, "sync_reply", &m, u + 2, 3);
    m.sync_kind = SWIM_SYNC_REFUSED;
    m.page_size = 1 << 20;
    s_swim_emit(dir, "sync_refused", &m, u, 0);
    m.type = MSG_JOIN;
    s_swim_emit(dir, "join_mismatch", &m, u + 2, 1);
    m.page_size = 65536;
    s_swim_emit(dir, "join", &m, u + 2, 1);
    m.type = MSG_LEAVE;
    swim_update_t left = s_record(2, 3, 4);
    s_swim_emit(dir, "leave", &m, &left, 1);
    m.type = MSG_GOSSIP;
    s_swim_emit(dir, "gossip", &m, u, 4);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_seeds DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    msg_t m;

    msg_error(&m, 1, 2, SHOAL_ENOENT, "s3://b/k: not found");
    s_emit(dir, &m, "error");
    msg_init(&m, MSG_VIEW_REQ, 1, 2);
    s_emit(dir, &m, "view_req");
    msg_member_t members[2] = {
        {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
         "host-a",
         "tcp://10.0.0.1:7070",
         "tcp://10.0.0.1:7071",
         MSG_MEMBER_ALIVE,
         3,
         1ull << 40,
         120,
         "5f3c9e0d2b7a4c1e8f6a0b9d3e2c1a7f",
         "/run/shoal/host-a.sock"},
        {{0xff}, "", "tcp://10.0.0.2:7070", "", MSG_MEMBER_SUSPECT, 0, 0, 5000, "", ""},
    };
    msg_init(&m, MSG_VIEW_REP, 1, 9);
    m.body.view_reply = (msg_view_reply_t){9, 1 << 20, 4, 2, members, 2};
    s_emit(dir, &m, "view_rep");
    msg_init(&m, MSG_STAT_REQ, 1, 2);
    m.body.stat_request.uri = "s3://bucket/train/0001.tar";
    s_emit(dir, &m, "stat_req");
    msg_init(&m, MSG_STAT_REP, 1, 2);
    m.body.stat_reply = (msg_stat_reply_t){123456789, 1700000000, "\"9b2cf535f27731c9\"", false};
    s_emit(dir, &m, "stat_rep");
    msg_init(&m, MSG_LIST_REQ, 1, 2);
    m.body.list_request = (msg_list_request_t){"s3://bucket/train/", true, "token-1", 100};
    s_emit(dir, &m, "list_req");
    msg_entry_t entries[2] = {{"s3://bucket/train/a", 10, 1700000000, "e1", false},
                              {"s3://bucket/train/sub", 0, 0, "", true}};
    msg_init(&m, MSG_LIST_REP, 1, 2);
    m.body.list_reply = (msg_list_reply_t){2, entries, "token-2"};
    s_emit(dir, &m, "list_rep");
    msg_read_request(&m, 1, 2, "s3://bucket/train/0001.tar", "etag", 4 << 20, 4 << 20,
                     MSG_READ_FORWARDED);
    s_emit(dir, &m, "read_req");
    msg_read_reply(&m, 1, 2, 10 << 20, "etag", 1000, 5000, 2, 4096);
    s_emit(dir, &m, "read_rep");
    msg_read_request(&m, 1, 2, "s3://bucket/train/0001.tar", "etag", 0, 4 << 20, MSG_READ_STREAM);
    s_emit(dir, &m, "read_req_stream");
    msg_read_reply(&m, 1, 2, 10 << 20, "etag", 4096, 8192, 2, 4096);
    m.body.read_reply.more = true;
    s_emit(dir, &m, "read_rep_partial");
    msg_init(&m, MSG_LOAD_REQ, 1, 2);
    m.body.load_request = (msg_load_request_t){"hf://datasets/o/n/x", "v", 0, 0, 2};
    s_emit(dir, &m, "load_req");
    msg_init(&m, MSG_LOAD_REP, 1, 2);
    m.body.load_reply = (msg_load_reply_t){4, 4 << 20, 1};
    s_emit(dir, &m, "load_rep");
    msg_init(&m, MSG_EVICT_REQ, 1, 2);
    m.body.evict_request = (msg_evict_request_t){"file:///data/", true};
    s_emit(dir, &m, "evict_req");
    msg_init(&m, MSG_EVICT_REP, 1, 2);
    m.body.evict_reply = (msg_evict_reply_t){3, 3 << 20};
    s_emit(dir, &m, "evict_rep");
    msg_init(&m, MSG_STATS_REQ, 1, 2);
    s_emit(dir, &m, "stats_req");
    msg_counter_t counters[2] = {{"reads", 10}, {"misses", 2}};
    uint64_t bounds[3] = {100, 1000, 10000}, counts[3] = {5, 3, 1};
    msg_histogram_t hists[1] = {{"read_latency_us", 3, bounds, counts}};
    msg_init(&m, MSG_STATS_REP, 1, 2);
    m.body.stats_reply = (msg_stats_reply_t){2, counters, 1, hists};
    s_emit(dir, &m, "stats_rep");
    msg_init(&m, MSG_LOCAL_HELLO_REQ, 1, 0);
    s_emit(dir, &m, "local_hello_req");
    msg_init(&m, MSG_LOCAL_HELLO_REP, 1, 0);
    m.body.local_hello_reply =
        (msg_local_hello_reply_t){{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
                                  0x1234567890abcdefull,
                                  "host-a",
                                  1 << 20,
                                  30000};
    s_emit(dir, &m, "local_hello_rep");
    msg_init(&m, MSG_LOCATE_REQ, 2, 0);
    m.body.locate_request.uri = "file:///data/train/0001.tar";
    m.body.locate_request.offset = 1 << 20;
    m.body.locate_request.length = 3 << 20;
    s_emit(dir, &m, "locate_req");
    uint64_t sums[17];
    for (int c = 0; c < 17; c++)
        sums[c] = 0x9e3779b97f4a7c15ull * (uint64_t)(c + 1);
    msg_local_page_t pages[2] = {{1, 3, 0, 1 << 20, 16, 7, 16, sums},
                                 {2, 4, 1 << 20, 70000, 16, 7, 2, sums + 15}};
    uint64_t fd_gens[2] = {3, 4}, gone_gens[1] = {1};
    msg_init(&m, MSG_LOCATE_REP, 2, 0);
    m.body.locate_reply = (msg_locate_reply_t){
        3 << 20,  "1048576-1700000000", 1700000000, 0x1234567890abcdefull, 2, pages, 2, fd_gens, 1,
        gone_gens};
    s_emit(dir, &m, "locate_rep");
    static const uint8_t ping_body[] = {0x82, 0x01, 0x05, 0x02, 0xa1, 'x'};
    msg_init(&m, MSG_PING, 1, 2);
    m.body.raw = (msg_raw_body_t){ping_body, sizeof ping_body};
    s_emit(dir, &m, "ping");
    s_swim_seeds(dir);
    return 0;
}
