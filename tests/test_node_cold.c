/*
 * test_node_cold.c - shoald's cold path against tests/support/origin.py, which counts the
 * requests it answers by kind: a versionless cold READ is one GET and no HEAD, a READ with a
 * version and size is one GET, a warm read none, a missing file one request then none within
 * the negative TTL, a file replaced between two ranges is ESTALE, 16 concurrent cold READs of
 * one range share one GET, and past the metadata TTL reads keep being served with one
 * background revalidation per file per TTL.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "proto.h"
#include "testproc.h"

#define PAGE    65536u      /* --page-size 64K */
#define RANGE   (4u * PAGE) /* --range-pages 4 */
#define WAIT_MS 20000       /* longest wait for one reply */

/* One running shoald and a DEALER connected to it. */
typedef struct s_node {
    tp_proc_t proc;   /* the daemon */
    int port;         /* its data port */
    char *dir;        /* temp dir: data dir and log */
    void *context;    /* ZeroMQ context of the test */
    void *dealer;     /* connected to the node */
    uint64_t next_id; /* request ids */
} s_node_t;

/* A reply: decoded header frame and its raw frames. */
typedef struct s_reply {
    msg_t msg;            /* decoded */
    zmq_msg_t frames[64]; /* raw frames (up to 64 kept) */
    size_t frame_count;   /* raw frames received */
} s_reply_t;

static s_node_t s_node;
static char *s_origin;     /* temp dir with the files */
static tp_server_t s_http; /* origin.py, counting requests */

static void s_reply_fini(s_reply_t *reply)
{
    msg_fini(&reply->msg);
    for (size_t i = 0; i < reply->frame_count && i < 64; i++)
        zmq_msg_close(&reply->frames[i]);
    reply->frame_count = 0;
}

static const char *s_shoald(void)
{
    static char path[TP_PATH_MAX];
    const char *build = getenv("SHOAL_BUILD_DIR");
    snprintf(path, sizeof path, "%s/node/shoald", build ? build : "build");
    return path;
}

static void s_connect(s_node_t *node)
{
    if (node->context == NULL)
        node->context = zmq_ctx_new();
    node->dealer = zmq_socket(node->context, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(node->dealer, ZMQ_LINGER, &zero, sizeof zero);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", node->port);
    cr_assert_eq(zmq_connect(node->dealer, endpoint), 0);
}

static void s_spawn(const char *mount, const char *ttl, const char *flag, const char *value);

/* Starts shoald over `mount` with the metadata TTL `ttl`, plus up to two extra flags. */
static void s_start(const char *mount, const char *ttl, const char *flag, const char *value)
{
    memset(&s_node, 0, sizeof s_node);
    s_node.dir = tp_tempdir("node");
    cr_assert_not_null(s_node.dir);
    s_spawn(mount, ttl, flag, value);
}

/* Starts shoald over s_node.dir (kept: a restart finds its cache there). */
static void s_spawn(const char *mount, const char *ttl, const char *flag, const char *value)
{
    char data[TP_PATH_MAX], log[TP_PATH_MAX], listen[64];
    snprintf(data, sizeof data, "%s/data", s_node.dir);
    snprintf(log, sizeof log, "%s/shoald.log", s_node.dir);
    for (int attempt = 0; attempt < 3; attempt++) {
        s_node.port = tp_free_port();
        snprintf(listen, sizeof listen, "tcp://127.0.0.1:%d", s_node.port);
        const char *argv[] = {s_shoald(), "--listen",
                              listen,     "--data-dir",
                              data,       "--capacity",
                              "256M",     "--page-size",
                              "64K",      "--range-pages",
                              "4",        "--metadata-ttl",
                              ttl,        "--mount",
                              mount,      "--threads",
                              "2",        "--fetch-threads",
                              "8",        "--log-level",
                              "debug",    flag,
                              value,      NULL};
        cr_assert_eq(tp_spawn(&s_node.proc, argv, log), 0);
        if (tp_wait_port(s_node.port, 15000) == 0 && tp_alive(&s_node.proc))
            break;
        tp_stop(&s_node.proc, 2000); /* the port was taken meanwhile: try another */
    }
    cr_assert(tp_alive(&s_node.proc), "shoald did not start; see %s", log);
    s_connect(&s_node);
}

static void s_teardown(void)
{
    if (s_node.dealer)
        zmq_close(s_node.dealer);
    if (s_node.context)
        zmq_ctx_term(s_node.context);
    bool running = s_node.proc.pid > 0;
    int status = tp_stop(&s_node.proc, 10000);
    /* a clean stop is exit 0; under ASan a leak or error in shoald would make it non-zero */
    if (running)
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "shoald stopped with status %d",
                  status);
    if (s_node.dir) {
        tp_rmtree(s_node.dir);
        free(s_node.dir);
    }
    memset(&s_node, 0, sizeof s_node);
    tp_server_stop(&s_http);
    memset(&s_http, 0, sizeof s_http);
    if (s_origin) {
        tp_rmtree(s_origin);
        free(s_origin);
        s_origin = NULL;
    }
}

static void s_setup(void)
{
    s_origin = tp_tempdir("origin");
    cr_assert_not_null(s_origin);
}

TestSuite(node_cold, .init = s_setup, .fini = s_teardown, .timeout = 120);

/* Writes a patterned file of `size` bytes at origin/name and returns its bytes (caller frees). */
static uint8_t *s_make_file(const char *name, size_t size, uint64_t seed)
{
    uint8_t *bytes = malloc(size ? size : 1);
    tp_fill_pattern(bytes, size, seed);
    char path[TP_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", s_origin, name);
    cr_assert_eq(tp_write_file(path, bytes, size), 0);
    return bytes;
}

/* Sends one encoded request (as is) on `dealer`. */
static void s_send_raw(void *dealer, const void *data, size_t len, bool more)
{
    cr_assert(zmq_send(dealer, data, len, more ? ZMQ_SNDMORE : 0) >= 0);
}

/* Encodes and sends `request` with a fresh id; returns the id. */
static uint64_t s_send(s_node_t *node, msg_t *request)
{
    request->header.request_id = ++node->next_id;
    msg_buf_t buf;
    msg_buf_init(&buf);
    cr_assert_eq(msg_encode(request, &buf), 0, "%s", shoal_last_error());
    s_send_raw(node->dealer, buf.data, buf.len, false);
    msg_buf_fini(&buf);
    return request->header.request_id;
}

/* Receives the next reply (any id) within WAIT_MS. Returns 0 or -1 on timeout. */
static int s_recv_any(s_node_t *node, s_reply_t *reply, int timeout_ms)
{
    memset(reply, 0, sizeof *reply);
    zmq_pollitem_t item = {.socket = node->dealer, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return -1;
    zmq_msg_t header;
    zmq_msg_init(&header);
    cr_assert(zmq_msg_recv(&header, node->dealer, 0) >= 0);
    bool more = zmq_msg_more(&header);
    int rc = msg_decode(zmq_msg_data(&header), zmq_msg_size(&header), &reply->msg);
    cr_assert_eq(rc, 0, "reply does not decode: %s", shoal_last_error());
    zmq_msg_close(&header);
    while (more) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        cr_assert(zmq_msg_recv(&frame, node->dealer, 0) >= 0);
        more = zmq_msg_more(&frame);
        if (reply->frame_count < 64)
            zmq_msg_init(&reply->frames[reply->frame_count]);
        if (reply->frame_count < 64)
            zmq_msg_move(&reply->frames[reply->frame_count], &frame);
        zmq_msg_close(&frame);
        reply->frame_count++;
    }
    return 0;
}

/* Sends `request` and waits for its reply. */
static void s_call(s_node_t *node, msg_t *request, s_reply_t *reply)
{
    uint64_t id = s_send(node, request);
    cr_assert_eq(s_recv_any(node, reply, WAIT_MS), 0, "no reply to %s",
                 msg_type_name(request->header.type));
    cr_assert_eq(reply->msg.header.request_id, id);
    cr_assert(reply->msg.header.view_version >= 1, "replies carry the view version");
}

/* The error code of a reply (0 when not an ERROR). */
static int s_code(const s_reply_t *reply)
{
    return reply->msg.header.type == MSG_ERROR ? reply->msg.body.error.code : 0;
}

/* Copies the bytes [offset, offset + length) that a READ reply carries into `out` after
 * checking every frame against the reply. Returns the bytes copied. */
static uint64_t s_extract(const s_reply_t *reply, uint64_t offset, uint64_t length, uint8_t *out)
{
    const msg_read_reply_t *read = &reply->msg.body.read_reply;
    cr_assert_eq(read->page_count, reply->frame_count);
    cr_assert(reply->frame_count <= 64);
    size_t lengths[64];
    for (size_t i = 0; i < reply->frame_count; i++)
        lengths[i] = zmq_msg_size((zmq_msg_t *)&reply->frames[i]);
    cr_assert_eq(msg_read_check_frames(read, lengths, reply->frame_count), 0, "%s",
                 shoal_last_error());
    uint64_t end = offset + length;
    if (end > read->file_size)
        end = read->file_size;
    if (offset >= end)
        return 0;
    cr_assert(read->offset <= offset && read->offset + read->length >= end,
              "span [%llu, +%llu) does not cover [%llu, %llu)", (unsigned long long)read->offset,
              (unsigned long long)read->length, (unsigned long long)offset,
              (unsigned long long)end);
    uint64_t at = read->offset;
    for (size_t i = 0; i < reply->frame_count; i++) {
        const uint8_t *data = zmq_msg_data((zmq_msg_t *)&reply->frames[i]);
        uint64_t len = lengths[i];
        uint64_t lo = at > offset ? at : offset;
        uint64_t hi = at + len < end ? at + len : end;
        if (lo < hi)
            memcpy(out + (lo - offset), data + (lo - at), hi - lo);
        at += len;
    }
    return end - offset;
}

/* STAT through the node; returns 0 or the error code. */
static int s_stat(const char *uri, msg_stat_reply_t *out, char *version_out)
{
    msg_t request;
    msg_init(&request, MSG_STAT_REQ, 0, 0);
    request.body.stat_request.uri = uri;
    s_reply_t reply;
    s_call(&s_node, &request, &reply);
    int code = s_code(&reply);
    if (code == 0) {
        cr_assert_eq(reply.msg.header.type, MSG_STAT_REP);
        *out = reply.msg.body.stat_reply;
        if (version_out)
            snprintf(version_out, 256, "%s", reply.msg.body.stat_reply.version);
        out->version = NULL;
    }
    s_reply_fini(&reply);
    return code;
}

static uint64_t s_counter(const char *name);

/* A miss is answered before its pages are stored (node/storeq.c): waits until the store queue
 * is empty, so the next read of those pages is a hit. */
static void s_wait_stored(void)
{
    int64_t deadline = tp_now_ms() + 10000;
    while (s_counter("store_queue_depth") != 0 && tp_now_ms() < deadline)
        usleep(5000);
    cr_assert_eq(s_counter("store_queue_depth"), 0, "the pages were never stored");
}

/* A counter from STATS. */
static uint64_t s_counter(const char *name)
{
    msg_t request;
    msg_init(&request, MSG_STATS_REQ, 0, 0);
    s_reply_t reply;
    s_call(&s_node, &request, &reply);
    cr_assert_eq(reply.msg.header.type, MSG_STATS_REP);
    uint64_t value = UINT64_MAX;
    for (uint32_t i = 0; i < reply.msg.body.stats_reply.counter_count; i++)
        if (strcmp(reply.msg.body.stats_reply.counters[i].name, name) == 0)
            value = reply.msg.body.stats_reply.counters[i].value;
    s_reply_fini(&reply);
    cr_assert_neq(value, UINT64_MAX, "no counter %s", name);
    return value;
}

/* A READ's reply as the tests here need it. */
typedef struct s_read_info {
    int code;           /* 0 or the ERROR's code */
    uint64_t file_size; /* READ_REP file_size */
    int64_t mtime;      /* READ_REP mtime */
    char version[256];  /* READ_REP version */
    uint64_t bytes;     /* bytes of the span copied out */
} s_read_info_t;

/* READ [offset, offset + length) of `uri` with `version` and `file_size` (MSG_SIZE_UNKNOWN:
 * none), STREAM as the client sends; collects every reply into `out`. */
static s_read_info_t s_read_at(const char *uri, const char *version, uint64_t file_size,
                               uint64_t offset, uint64_t length, uint8_t *out)
{
    s_read_info_t info;
    memset(&info, 0, sizeof info);
    msg_t request;
    msg_read_request(&request, 0, 0, uri, version, offset, length, 0);
    request.body.read_request.file_size = file_size;
    s_reply_t reply;
    s_call(&s_node, &request, &reply);
    info.code = s_code(&reply);
    if (info.code == 0) {
        cr_assert_eq(reply.msg.header.type, MSG_READ_REP);
        const msg_read_reply_t *read = &reply.msg.body.read_reply;
        info.file_size = read->file_size;
        info.mtime = read->mtime;
        snprintf(info.version, sizeof info.version, "%s", read->version);
        info.bytes = s_extract(&reply, offset, length, out);
    }
    s_reply_fini(&reply);
    return info;
}

static tp_origin_counts_t s_counts(void)
{
    tp_origin_counts_t counts;
    cr_assert_eq(tp_origin_counts(&s_http, &counts), 0);
    return counts;
}

/* Starts origin.py over the origin dir and shoald over it. */
static void s_start_http(const char *ttl, const char *flag, const char *value, int delay_ms)
{
    cr_assert_eq(tp_origin_start(&s_http, s_origin, delay_ms), 0);
    char mount[128];
    snprintf(mount, sizeof mount, "%s/", s_http.base_url);
    s_start(mount, ttl, flag, value);
}

static void s_restart_node(const char *ttl)
{
    zmq_close(s_node.dealer);
    zmq_ctx_term(s_node.context);
    tp_stop(&s_node.proc, 10000);
    tp_rmtree(s_node.dir);
    free(s_node.dir);
    char mount[128];
    snprintf(mount, sizeof mount, "%s/", s_http.base_url);
    s_start(mount, ttl, "--store", "memory");
}

Test(node_cold, versionless_cold_read_is_one_get_and_warm_is_none)
{
    size_t size = 100000; /* under one range */
    uint8_t *want = s_make_file("a.bin", size, 1);
    s_start_http("60", "--store", "memory", 0);
    uint8_t *got = malloc(RANGE);
    char uri[256];
    snprintf(uri, sizeof uri, "%s/a.bin", s_http.base_url);
    cr_assert_eq(tp_origin_reset(&s_http), 0);
    s_read_info_t info = s_read_at(uri, "", MSG_SIZE_UNKNOWN, 0, RANGE, got);
    cr_assert_eq(info.code, 0);
    cr_assert_eq(info.bytes, size);
    cr_assert(memcmp(got, want, size) == 0);
    cr_assert_eq(info.file_size, size);
    cr_assert(info.version[0] != '\0');
    cr_assert(info.mtime > 0, "the reply carries the mtime");
    tp_origin_counts_t counts = s_counts();
    cr_assert_eq(counts.get, 1, "%ld GETs", counts.get);
    cr_assert_eq(counts.head, 0, "%ld HEADs", counts.head);
    cr_assert_eq(s_counter("origin_gets"), 1);
    cr_assert_eq(s_counter("origin_heads"), 0);
    cr_assert_eq(s_counter("cold_reads"), 1);
    cr_assert_eq(s_counter("origin_requests"), 1);
    /* warm: no request at all, and the metadata came from the GET (STAT costs nothing) */
    s_wait_stored();
    memset(got, 0, RANGE);
    info = s_read_at(uri, "", MSG_SIZE_UNKNOWN, 0, RANGE, got);
    cr_assert_eq(info.code, 0);
    cr_assert(memcmp(got, want, size) == 0);
    msg_stat_reply_t stat;
    cr_assert_eq(s_stat(uri, &stat, NULL), 0);
    cr_assert_eq(stat.size, size);
    counts = s_counts();
    cr_assert_eq(counts.get + counts.head, 1, "a warm read asked the origin");
    /* at or past the end: an empty span with the size */
    info = s_read_at(uri, "", MSG_SIZE_UNKNOWN, size + 10, 100, got);
    cr_assert_eq(info.code, 0);
    cr_assert_eq(info.bytes, 0);
    cr_assert_eq(info.file_size, size);
    free(got);
    free(want);
}

Test(node_cold, later_range_with_version_and_size_needs_no_stat)
{
    size_t size = 3 * RANGE + 500;
    uint8_t *want = s_make_file("b.bin", size, 2);
    s_start_http("60", "--store", "memory", 0);
    uint8_t *got = malloc(2 * RANGE);
    char uri[256];
    snprintf(uri, sizeof uri, "%s/b.bin", s_http.base_url);
    s_read_info_t first = s_read_at(uri, "", MSG_SIZE_UNKNOWN, 0, RANGE, got);
    cr_assert_eq(first.code, 0);
    cr_assert_eq(first.file_size, size);
    /* a node that knows nothing of the file (the owner of a later range) */
    s_restart_node("60");
    cr_assert_eq(tp_origin_reset(&s_http), 0);
    s_read_info_t info = s_read_at(uri, first.version, size, 2 * RANGE, RANGE, got);
    cr_assert_eq(info.code, 0, "code %d", info.code);
    cr_assert_eq(info.bytes, RANGE);
    cr_assert(memcmp(got, want + 2 * RANGE, RANGE) == 0);
    cr_assert_str_eq(info.version, first.version);
    tp_origin_counts_t counts = s_counts();
    cr_assert_eq(counts.get, 1, "%ld GETs", counts.get);
    cr_assert_eq(counts.head, 0, "%ld HEADs", counts.head);
    /* a versionless READ spanning two ranges: one GET each, the second with the learnt one */
    s_restart_node("60");
    cr_assert_eq(tp_origin_reset(&s_http), 0);
    info = s_read_at(uri, "", MSG_SIZE_UNKNOWN, RANGE - 100, RANGE, got);
    cr_assert_eq(info.code, 0);
    cr_assert(memcmp(got, want + RANGE - 100, RANGE) == 0);
    counts = s_counts();
    cr_assert_eq(counts.get, 2, "%ld GETs", counts.get);
    cr_assert_eq(counts.head, 0, "%ld HEADs", counts.head);
    free(got);
    free(want);
}

Test(node_cold, missing_file_is_one_request_then_none_within_the_negative_ttl)
{
    s_start_http("60", "--negative-ttl", "30", 0);
    char uri[256];
    snprintf(uri, sizeof uri, "%s/nothing.bin", s_http.base_url);
    uint8_t got[16];
    cr_assert_eq(tp_origin_reset(&s_http), 0);
    cr_assert_eq(s_read_at(uri, "", MSG_SIZE_UNKNOWN, 0, 16, got).code, SHOAL_ENOENT);
    tp_origin_counts_t counts = s_counts();
    cr_assert_eq(counts.get_404 + counts.head_404 + counts.get + counts.head, 1);
    cr_assert_eq(s_read_at(uri, "", MSG_SIZE_UNKNOWN, 0, 16, got).code, SHOAL_ENOENT);
    msg_stat_reply_t stat;
    cr_assert_eq(s_stat(uri, &stat, NULL), SHOAL_ENOENT);
    counts = s_counts();
    cr_assert_eq(counts.get_404 + counts.head_404 + counts.get + counts.head, 1,
                 "the repeat asked the origin");
    cr_assert_geq(s_counter("negative_hits"), 2);
    /* the file appears: a negative entry lasts its TTL, so it is still not found here */
    uint8_t *want = s_make_file("nothing.bin", 16, 3);
    cr_assert_eq(s_read_at(uri, "", MSG_SIZE_UNKNOWN, 0, 16, got).code, SHOAL_ENOENT);
    free(want);
}

Test(node_cold, negative_ttl_zero_asks_every_time)
{
    s_start_http("60", "--negative-ttl", "0", 0);
    char uri[256];
    snprintf(uri, sizeof uri, "%s/nothing.bin", s_http.base_url);
    uint8_t got[16];
    cr_assert_eq(tp_origin_reset(&s_http), 0);
    cr_assert_eq(s_read_at(uri, "", MSG_SIZE_UNKNOWN, 0, 16, got).code, SHOAL_ENOENT);
    cr_assert_eq(s_read_at(uri, "", MSG_SIZE_UNKNOWN, 0, 16, got).code, SHOAL_ENOENT);
    tp_origin_counts_t counts = s_counts();
    cr_assert_eq(counts.get_404, 2);
}

Test(node_cold, file_replaced_between_ranges_is_estale_never_mixed)
{
    size_t size = 2 * RANGE;
    uint8_t *v1 = s_make_file("c.bin", size, 4);
    s_start_http("60", "--store", "memory", 0);
    uint8_t *got = malloc(RANGE);
    char uri[256];
    snprintf(uri, sizeof uri, "%s/c.bin", s_http.base_url);
    s_read_info_t first = s_read_at(uri, "", MSG_SIZE_UNKNOWN, 0, RANGE, got);
    cr_assert_eq(first.code, 0);
    cr_assert(memcmp(got, v1, RANGE) == 0);
    usleep(20000); /* a new mtime: a new ETag */
    uint8_t *v2 = s_make_file("c.bin", size, 5);
    s_read_info_t second = s_read_at(uri, first.version, first.file_size, RANGE, RANGE, got);
    cr_assert_eq(second.code, SHOAL_ESTALE, "code %d: old and new bytes would mix", second.code);
    /* a fresh versionless read gets the new file whole */
    s_read_info_t again = s_read_at(uri, "", MSG_SIZE_UNKNOWN, 0, RANGE, got);
    cr_assert_eq(again.code, 0);
    cr_assert_str_neq(again.version, first.version);
    cr_assert(memcmp(got, v2, RANGE) == 0);
    free(got);
    free(v1);
    free(v2);
}

Test(node_cold, sixteen_concurrent_cold_reads_share_one_get)
{
    size_t size = 200000;
    uint8_t *want = s_make_file("d.bin", size, 6);
    s_start_http("60", "--store", "memory", 300); /* slow origin: every READ arrives in time */
    char uri[256];
    snprintf(uri, sizeof uri, "%s/d.bin", s_http.base_url);
    cr_assert_eq(tp_origin_reset(&s_http), 0);
    msg_t request;
    for (int i = 0; i < 16; i++) {
        msg_read_request(&request, 0, 0, uri, "", 0, RANGE, 0);
        s_send(&s_node, &request);
    }
    uint8_t *got = malloc(RANGE);
    for (int i = 0; i < 16; i++) {
        s_reply_t reply;
        cr_assert_eq(s_recv_any(&s_node, &reply, WAIT_MS), 0);
        cr_assert_eq(reply.msg.header.type, MSG_READ_REP);
        memset(got, 0, RANGE);
        cr_assert_eq(s_extract(&reply, 0, RANGE, got), size);
        cr_assert(memcmp(got, want, size) == 0);
        s_reply_fini(&reply);
    }
    tp_origin_counts_t counts = s_counts();
    cr_assert_eq(counts.get, 1, "%ld GETs for one cold range (node: %llu gets, %llu joins)",
                 counts.get, (unsigned long long)s_counter("origin_gets"),
                 (unsigned long long)s_counter("singleflight_joins"));
    cr_assert_eq(counts.head, 0);
    free(got);
    free(want);
}

Test(node_cold, epoch_longer_than_the_ttl_revalidates_in_the_background)
{
    enum { FILES = 3 };
    uint8_t *want[FILES];
    char uris[FILES][256];
    s_start_http("1", "--store", "memory", 0);
    for (int i = 0; i < FILES; i++) {
        char name[32];
        snprintf(name, sizeof name, "e%d.bin", i);
        want[i] = s_make_file(name, 50000, 10 + (uint64_t)i);
        snprintf(uris[i], sizeof uris[i], "%s/%s", s_http.base_url, name);
    }
    uint8_t *got = malloc(RANGE);
    for (int i = 0; i < FILES; i++)
        cr_assert_eq(s_read_at(uris[i], "", MSG_SIZE_UNKNOWN, 0, RANGE, got).code, 0);
    s_wait_stored();
    cr_assert_eq(tp_origin_reset(&s_http), 0);
    int64_t start = tp_now_ms();
    int reads = 0;
    while (tp_now_ms() - start < 3500) {
        for (int i = 0; i < FILES; i++) {
            s_read_info_t info = s_read_at(uris[i], "", MSG_SIZE_UNKNOWN, 0, RANGE, got);
            cr_assert_eq(info.code, 0);
            cr_assert(memcmp(got, want[i], 50000) == 0);
            reads++;
        }
        usleep(20000);
    }
    int64_t elapsed = tp_now_ms() - start;
    tp_origin_counts_t counts = s_counts();
    cr_assert_eq(counts.get, 0, "%ld GETs on the read path", counts.get);
    /* one revalidation per file per TTL at most (the first TTL ran out during the loop) */
    long bound = FILES * (elapsed / 1000 + 1);
    cr_assert(counts.head >= FILES, "%ld HEADs: no revalidation", counts.head);
    cr_assert(counts.head <= bound, "%ld HEADs over %lld ms, more than %ld", counts.head,
              (long long)elapsed, bound);
    cr_assert_eq(s_counter("revalidations"), (uint64_t)counts.head);
    cr_assert(reads > 30);
    /* a change is picked up: after the next revalidation, reads see the new version */
    usleep(20000);
    uint8_t *v2 = s_make_file("e0.bin", 50000, 99);
    int64_t deadline = tp_now_ms() + 5000;
    bool seen = false;
    while (!seen && tp_now_ms() < deadline) {
        s_read_info_t info = s_read_at(uris[0], "", MSG_SIZE_UNKNOWN, 0, RANGE, got);
        cr_assert_eq(info.code, 0);
        seen = memcmp(got, v2, 50000) == 0;
        if (!seen)
            cr_assert(memcmp(got, want[0], 50000) == 0, "a mix of old and new bytes");
        usleep(50000);
    }
    cr_assert(seen, "the new version was never served");
    free(v2);
    for (int i = 0; i < FILES; i++)
        free(want[i]);
    free(got);
}

Test(node_cold, immutable_mount_is_never_revalidated)
{
    cr_assert_eq(tp_origin_start(&s_http, s_origin, 0), 0);
    char mount[128];
    snprintf(mount, sizeof mount, "%s/", s_http.base_url);
    uint8_t *want = s_make_file("f.bin", 1000, 7);
    s_start(mount, "0.2", "--immutable-mount", mount);
    char uri[256];
    snprintf(uri, sizeof uri, "%s/f.bin", s_http.base_url);
    uint8_t got[1000];
    cr_assert_eq(s_read_at(uri, "", MSG_SIZE_UNKNOWN, 0, 1000, got).code, 0);
    s_wait_stored();
    cr_assert_eq(tp_origin_reset(&s_http), 0);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(s_read_at(uri, "", MSG_SIZE_UNKNOWN, 0, 1000, got).code, 0);
        cr_assert(memcmp(got, want, 1000) == 0);
        usleep(100000);
    }
    tp_origin_counts_t counts = s_counts();
    cr_assert_eq(counts.get + counts.head, 0);
    cr_assert_eq(s_counter("revalidations"), 0);
    free(want);
}

/* A restarted node knows which version its held pages are of (its metadata records on disk):
 * a versionless cold READ after the restart is served from the pages with no GET (one
 * background HEAD revalidates), every byte right. */
Test(node_cold, restart_serves_held_pages_without_a_get)
{
    size_t size = 3 * 65536 + 123; /* one range, four pages */
    uint8_t *want = s_make_file("kept.bin", size, 9);
    s_start_http("60", "--negative-ttl", "5", 0);
    char uri[256];
    snprintf(uri, sizeof uri, "%s/kept.bin", s_http.base_url);
    uint8_t *got = malloc(RANGE);
    s_read_info_t info = s_read_at(uri, "", MSG_SIZE_UNKNOWN, 0, RANGE, got);
    cr_assert_eq(info.code, 0);
    cr_assert_eq(info.bytes, size);
    s_wait_stored();
    char first_version[256];
    snprintf(first_version, sizeof first_version, "%s", info.version);
    /* restart on the same data dir */
    zmq_close(s_node.dealer);
    zmq_ctx_term(s_node.context);
    s_node.context = NULL;
    cr_assert_eq(tp_stop(&s_node.proc, 10000), 0);
    char mount[128];
    snprintf(mount, sizeof mount, "%s/", s_http.base_url);
    s_spawn(mount, "60", "--negative-ttl", "5");
    cr_assert_eq(tp_origin_reset(&s_http), 0);
    memset(got, 0, RANGE);
    info = s_read_at(uri, "", MSG_SIZE_UNKNOWN, 0, RANGE, got);
    cr_assert_eq(info.code, 0);
    cr_assert_eq(info.bytes, size);
    cr_assert(memcmp(got, want, size) == 0);
    cr_assert_str_eq(info.version, first_version);
    cr_assert_eq(info.file_size, size);
    cr_assert_eq(s_counts().get, 0, "the restarted node fetched pages it holds");
    cr_assert_eq(s_counter("meta_recalled"), 1);
    cr_assert_gt(s_counter("page_hits"), 0);
    free(got);
    free(want);
}
