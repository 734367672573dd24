/*
 * test_node.c - shoald end to end: the real binary on a free loopback port, over a file://
 * origin in a temp dir and an http:// origin served by nginx, spoken to with a raw ZeroMQ
 * DEALER and the proto codec. Checks bytes against the files, origin requests against nginx's
 * access log, and the daemon's behaviour on malformed input, changed files, bad flags and
 * SIGTERM.
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
static char *s_origin;      /* temp dir with the files */
static tp_server_t s_nginx; /* http origin, when started */
static tp_server_t s_bad;   /* badhttp.py origin, when started */

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

/* Starts shoald over `mount` with the metadata TTL `ttl`, plus up to two extra flags. */
static void s_start(const char *mount, const char *ttl, const char *flag, const char *value)
{
    memset(&s_node, 0, sizeof s_node);
    s_node.dir = tp_tempdir("node");
    cr_assert_not_null(s_node.dir);
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
    tp_server_stop(&s_nginx);
    memset(&s_nginx, 0, sizeof s_nginx);
    tp_server_stop(&s_bad);
    memset(&s_bad, 0, sizeof s_bad);
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

TestSuite(node, .init = s_setup, .fini = s_teardown, .timeout = 120);

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

/* READ through the node; returns the bytes read into `out` or the error code. Copies the
 * version served into version_out (may be NULL). */
static int64_t s_read(const char *uri, const char *version, uint64_t offset, uint64_t length,
                      uint32_t flags, uint8_t *out, char *version_out)
{
    msg_t request;
    msg_read_request(&request, 0, 0, uri, version, offset, length, flags);
    s_reply_t reply;
    s_call(&s_node, &request, &reply);
    int64_t result;
    if (reply.msg.header.type == MSG_ERROR) {
        result = reply.msg.body.error.code;
    } else {
        cr_assert_eq(reply.msg.header.type, MSG_READ_REP);
        cr_assert_eq(reply.msg.body.read_reply.page_size, PAGE);
        if (version_out)
            snprintf(version_out, 256, "%s", reply.msg.body.read_reply.version);
        result = (int64_t)s_extract(&reply, offset, length, out);
    }
    s_reply_fini(&reply);
    return result;
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

static char *s_uri(const char *base, const char *name)
{
    static char uri[TP_PATH_MAX];
    size_t base_len = strlen(base), name_len = strlen(name);
    cr_assert(base_len + name_len < sizeof uri);
    memcpy(uri, base, base_len);
    memcpy(uri + base_len, name, name_len + 1);
    return uri;
}

/* The reads every data test makes: whole files, and spans around page and range boundaries. */
static void s_check_reads(const char *base, const char *name, const uint8_t *want, size_t size)
{
    uint8_t *got = malloc(size + RANGE * 2);
    struct {
        uint64_t offset, length;
    } spans[] = {
        {0, size},                /* whole file */
        {0, 1},                   /* first byte */
        {PAGE - 1, 2},            /* across a page boundary */
        {RANGE - 10, 20},         /* across a range boundary */
        {PAGE + 7, RANGE + PAGE}, /* several pages and ranges, unaligned */
        {size - 5, 5},            /* the tail */
        {size - 5, 1000},         /* past the end: clipped */
        {3 * PAGE, PAGE},         /* exactly one page */
    };
    for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++) {
        uint64_t offset = spans[i].offset, length = spans[i].length;
        if (offset >= size)
            continue;
        uint64_t expect = offset + length > size ? size - offset : length;
        memset(got, 0xEE, expect);
        int64_t n = s_read(s_uri(base, name), "", offset, length, 0, got, NULL);
        cr_assert_eq(n, (int64_t)expect, "%s [%llu,+%llu): %lld", name, (unsigned long long)offset,
                     (unsigned long long)length, (long long)n);
        cr_assert(memcmp(got, want + offset, expect) == 0, "%s [%llu,+%llu): wrong bytes", name,
                  (unsigned long long)offset, (unsigned long long)length);
    }
    /* at and past the end: an empty answer, not an error */
    cr_assert_eq(s_read(s_uri(base, name), "", size, 10, 0, got, NULL), 0);
    cr_assert_eq(s_read(s_uri(base, name), "", size + 12345, 10, 0, got, NULL), 0);
    free(got);
}

/* READ of `length` bytes at `offset` that must be answered with exactly that span: the reply's
 * offset and length are the request's, frame i is the part of page first+i inside it, and the
 * bytes equal `want` (the whole file). */
static void s_check_exact_span(const char *uri, const uint8_t *want, uint64_t offset,
                               uint64_t length, uint32_t flags)
{
    msg_t request;
    msg_read_request(&request, 0, 0, uri, "", offset, length, flags);
    s_reply_t reply;
    s_call(&s_node, &request, &reply);
    cr_assert_eq(reply.msg.header.type, MSG_READ_REP, "error %d", s_code(&reply));
    const msg_read_reply_t *read = &reply.msg.body.read_reply;
    cr_assert_eq(read->offset, offset, "span starts at %llu, not at the request's %llu",
                 (unsigned long long)read->offset, (unsigned long long)offset);
    cr_assert_eq(read->length, length, "span of %llu bytes, not the request's %llu",
                 (unsigned long long)read->length, (unsigned long long)length);
    uint32_t pages = (uint32_t)((offset + length - 1) / PAGE - offset / PAGE + 1);
    cr_assert_eq(read->page_count, pages);
    cr_assert_eq(reply.frame_count, pages);
    uint64_t at = offset;
    for (uint32_t i = 0; i < pages; i++) {
        uint64_t page_end = (offset / PAGE + i + 1) * PAGE;
        uint64_t end = page_end < offset + length ? page_end : offset + length;
        size_t size = zmq_msg_size(&reply.frames[i]);
        cr_assert_eq(size, end - at, "frame %u has %zu bytes, not %llu", i, size,
                     (unsigned long long)(end - at));
        cr_assert(memcmp(zmq_msg_data(&reply.frames[i]), want + at, size) == 0,
                  "frame %u: wrong bytes", i);
        at = end;
    }
    s_reply_fini(&reply);
}

/* A sub-page read is answered with its own bytes only (not whole pages): on a miss (slices of
 * the range buffer), on a hit (slices of pinned pages), read through with NO_CACHE, and across
 * page and range boundaries. */
Test(node, read_serves_exact_slices)
{
    size_t size = 3 * RANGE + 5 * PAGE + 123;
    uint8_t *data = s_make_file("s.bin", size, 11);
    uint8_t *other = s_make_file("nc.bin", RANGE, 12);
    char mount[TP_PATH_MAX];
    snprintf(mount, sizeof mount, "file://%s/", s_origin);
    s_start(mount, "60", "--store", "rocksdb");
    char uri[TP_PATH_MAX];
    snprintf(uri, sizeof uri, "%s", s_uri(mount, "s.bin")); /* s_uri's buffer is reused */
    uint64_t odd = 5 * PAGE + 12345;                        /* a 64 KiB read here spans two pages */
    uint64_t misses = s_counter("page_misses");
    s_check_exact_span(uri, data, odd, 65536, 0); /* miss: from the range buffer */
    cr_assert(s_counter("page_misses") > misses, "the first read was not a miss");
    s_wait_stored();
    uint64_t hits = s_counter("page_hits");
    uint64_t ufs_reads = s_counter("ufs_reads");
    s_check_exact_span(uri, data, odd, 65536, 0); /* hit: slices of pinned pages */
    cr_assert_eq(s_counter("page_hits"), hits + 2, "the second read was not two page hits");
    cr_assert_eq(s_counter("ufs_reads"), ufs_reads);
    s_check_exact_span(uri, data, odd + 1, 1, 0);             /* one byte inside a page */
    s_check_exact_span(uri, data, RANGE - 7, 14, 0);          /* across a range boundary */
    s_check_exact_span(uri, data, 2 * PAGE + 1, 3 * PAGE, 0); /* four pieces, two ranges */
    s_check_exact_span(uri, data, size - 100, 100, 0);        /* the tail */
    s_check_exact_span(uri, data, 3 * RANGE + 9, 65536, 0);   /* a miss in another range */
    s_check_exact_span(s_uri(mount, "nc.bin"), other, 3 * PAGE - 3, 70, MSG_READ_NO_CACHE);
    /* clipped at the end of the file: the span ends there */
    msg_t request;
    msg_read_request(&request, 0, 0, uri, "", size - 10, 65536, 0);
    s_reply_t reply;
    s_call(&s_node, &request, &reply);
    cr_assert_eq(reply.msg.header.type, MSG_READ_REP);
    cr_assert_eq(reply.msg.body.read_reply.offset, size - 10);
    cr_assert_eq(reply.msg.body.read_reply.length, 10);
    cr_assert_eq(reply.frame_count, 1);
    cr_assert(memcmp(zmq_msg_data(&reply.frames[0]), data + size - 10, 10) == 0);
    s_reply_fini(&reply);
    free(data);
    free(other);
}

Test(node, file_mount_stat_list_read)
{
    size_t big_size = 3 * RANGE + 5 * PAGE + 123; /* 3 ranges, 5 pages and a bit */
    uint8_t *big = s_make_file("big.bin", big_size, 1);
    uint8_t *small = s_make_file("sub/small.txt", 100, 2);
    uint8_t *page = s_make_file("sub/page.bin", PAGE, 3);
    free(s_make_file("sub/deeper/x.bin", 10, 4));
    free(s_make_file("empty.bin", 0, 5));
    char mount[TP_PATH_MAX];
    snprintf(mount, sizeof mount, "file://%s/", s_origin);
    s_start(mount, "60", "--store", "rocksdb");

    msg_stat_reply_t stat;
    char version[256];
    cr_assert_eq(s_stat(s_uri(mount, "big.bin"), &stat, version), 0);
    cr_assert_eq(stat.size, big_size);
    cr_assert(!stat.is_dir && version[0] != '\0');
    cr_assert_eq(s_stat(s_uri(mount, "sub"), &stat, NULL), 0);
    cr_assert(stat.is_dir);
    cr_assert_eq(s_stat(s_uri(mount, "missing"), &stat, NULL), SHOAL_ENOENT);

    s_check_reads(mount, "big.bin", big, big_size);
    s_check_reads(mount, "big.bin", big, big_size); /* again, from the cache */
    s_check_reads(mount, "sub/small.txt", small, 100);
    s_check_reads(mount, "sub/page.bin", page, PAGE);
    uint8_t scratch[16];
    cr_assert_eq(s_read(s_uri(mount, "empty.bin"), "", 0, 10, 0, scratch, NULL), 0);
    cr_assert_eq(s_read(s_uri(mount, "sub"), "", 0, 10, 0, scratch, NULL), SHOAL_EISDIR);
    cr_assert_eq(s_read(s_uri(mount, "nope.bin"), "", 0, 10, 0, scratch, NULL), SHOAL_ENOENT);
    cr_assert_eq(s_read(s_uri(mount, "big.bin"), "", 0, 1ull << 40, 0, scratch, NULL),
                 SHOAL_EINVAL); /* over the per-request limit */

    /* LIST, one level and recursive, paged two entries at a time with cursors */
    for (int recursive = 0; recursive < 2; recursive++) {
        char seen[4096] = "";
        const char *cursor = "";
        char cursor_copy[TP_PATH_MAX] = "";
        int pages = 0, entries = 0;
        do {
            msg_t request;
            msg_init(&request, MSG_LIST_REQ, 0, 0);
            request.body.list_request.uri = mount;
            request.body.list_request.recursive = recursive;
            request.body.list_request.cursor = cursor;
            request.body.list_request.max_entries = 2;
            s_reply_t reply;
            s_call(&s_node, &request, &reply);
            cr_assert_eq(reply.msg.header.type, MSG_LIST_REP, "LIST: %d", s_code(&reply));
            const msg_list_reply_t *list = &reply.msg.body.list_reply;
            cr_assert(list->entry_count <= 2);
            for (uint32_t i = 0; i < list->entry_count; i++) {
                const char *name = list->entries[i].uri + strlen(mount);
                strcat(seen, name);
                strcat(seen, list->entries[i].is_dir ? "/ " : " ");
                if (strcmp(name, "big.bin") == 0)
                    cr_assert_eq(list->entries[i].size, big_size);
                entries++;
            }
            snprintf(cursor_copy, sizeof cursor_copy, "%s", list->next_cursor);
            cursor = cursor_copy;
            pages++;
            s_reply_fini(&reply);
        } while (cursor[0] != '\0' && pages < 20);
        if (recursive)
            cr_assert_str_eq(seen,
                             "big.bin empty.bin sub/deeper/x.bin sub/page.bin sub/small.txt ");
        else
            cr_assert_str_eq(seen, "big.bin empty.bin sub/ ");
        cr_assert_eq(pages, (entries + 1) / 2);
    }
    free(big);
    free(small);
    free(page);
}

Test(node, outside_mount_and_traversal_are_eacces)
{
    free(s_make_file("inside/ok.bin", 10, 1));
    free(s_make_file("secret.bin", 10, 2));
    char mount[TP_PATH_MAX], base[TP_PATH_MAX];
    snprintf(mount, sizeof mount, "file://%s/inside/", s_origin);
    snprintf(base, sizeof base, "file://%s", s_origin);
    s_start(mount, "60", "--store", "memory");
    uint8_t buf[16];
    cr_assert_eq(s_read(s_uri(mount, "ok.bin"), "", 0, 10, 0, buf, NULL), 10);
    const char *bad[] = {"/secret.bin",
                         "/inside/../secret.bin",
                         "/inside/%2e%2e/secret.bin",
                         "/inside/.%2E/secret.bin",
                         "/inside/..%2fsecret.bin",
                         "/inside/x/../../secret.bin",
                         "/insidex/ok.bin",
                         "/inside/ok.bin%00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char uri[TP_PATH_MAX];
        snprintf(uri, sizeof uri, "%s%s", base, bad[i]);
        cr_expect_eq(s_read(uri, "", 0, 10, 0, buf, NULL), SHOAL_EACCES, "%s", bad[i]);
        msg_stat_reply_t stat;
        cr_expect_eq(s_stat(uri, &stat, NULL), SHOAL_EACCES, "%s", bad[i]);
    }
    cr_assert_eq(s_read("file:///etc/passwd", "", 0, 10, 0, buf, NULL), SHOAL_EACCES);
    cr_assert_eq(s_read("http://127.0.0.1:1/x", "", 0, 10, 0, buf, NULL), SHOAL_EACCES);
}

Test(node, http_mount_caches_and_coalesces)
{
    size_t size = 2 * RANGE + 3 * PAGE + 17;
    uint8_t *data = s_make_file("d/big.bin", size, 7);
    uint8_t *slow = s_make_file("slow/sf.bin", RANGE, 8);
    cr_assert_eq(tp_nginx_start(&s_nginx, s_origin, "location /slow/ { limit_rate 256k; }"), 0);
    char mount[256];
    snprintf(mount, sizeof mount, "%s/", s_nginx.base_url);
    s_start(mount, "60", "--store", "rocksdb");

    s_check_reads(mount, "d/big.bin", data, size);
    /* every range was read from the origin once; wait until nginx has logged them all */
    long ranges = (long)((size + RANGE - 1) / RANGE);
    long gets = tp_wait_lines(s_nginx.access_log, "GET /d/big.bin", ranges, 5000);
    cr_assert_eq(gets, ranges, "origin GETs: %ld, ranges: %ld", gets, ranges);
    long before = tp_count_lines(s_nginx.access_log, "/d/big.bin");
    s_wait_stored();
    s_check_reads(mount, "d/big.bin", data, size); /* all from the cache */
    cr_assert_eq(s_counter("page_hits") > 0, 1);
    cr_assert_eq(tp_count_lines(s_nginx.access_log, "/d/big.bin"), before,
                 "a cached read went to the origin");

    /* single flight: 8 identical misses at once over a slow origin make one GET */
    msg_stat_reply_t stat;
    cr_assert_eq(s_stat(s_uri(mount, "slow/sf.bin"), &stat, NULL), 0);
    enum { N = 8 };
    uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        msg_t request;
        msg_read_request(&request, 0, 0, s_uri(mount, "slow/sf.bin"), "", 0, RANGE, 0);
        ids[i] = s_send(&s_node, &request);
    }
    uint8_t *got = malloc(RANGE);
    for (int i = 0; i < N; i++) {
        s_reply_t reply;
        cr_assert_eq(s_recv_any(&s_node, &reply, WAIT_MS), 0);
        cr_assert(reply.msg.header.request_id >= ids[0] &&
                  reply.msg.header.request_id <= ids[N - 1]);
        cr_assert_eq(reply.msg.header.type, MSG_READ_REP, "error %d", s_code(&reply));
        cr_assert_eq(s_extract(&reply, 0, RANGE, got), RANGE);
        cr_assert(memcmp(got, slow, RANGE) == 0);
        s_reply_fini(&reply);
    }
    cr_assert_eq(tp_wait_lines(s_nginx.access_log, "GET /slow/sf.bin", 1, 5000), 1);
    cr_assert(s_counter("singleflight_joins") >= 1);
    cr_assert_eq(tp_count_lines(s_nginx.access_log, "GET /slow/sf.bin"), 1,
                 "identical concurrent misses made more than one origin request");

    /* NO_CACHE reads through without storing: a second one goes to the origin again */
    free(s_make_file("d/nc.bin", PAGE, 9));
    cr_assert_eq(s_read(s_uri(mount, "d/nc.bin"), "", 0, 10, MSG_READ_NO_CACHE, got, NULL), 10);
    cr_assert_eq(tp_wait_lines(s_nginx.access_log, "GET /d/nc.bin", 1, 5000), 1);
    cr_assert_eq(s_read(s_uri(mount, "d/nc.bin"), "", 0, 10, MSG_READ_NO_CACHE, got, NULL), 10);
    cr_assert_eq(tp_wait_lines(s_nginx.access_log, "GET /d/nc.bin", 2, 5000), 2);
    free(got);
    free(data);
    free(slow);
}

Test(node, changed_file_is_old_until_ttl_then_new_never_mixed)
{
    size_t size = 2 * RANGE + 100;
    uint8_t *v1 = s_make_file("f.bin", size, 11);
    char mount[TP_PATH_MAX];
    snprintf(mount, sizeof mount, "file://%s/", s_origin);
    s_start(mount, "1", "--store", "memory");
    uint8_t *got = malloc(size);
    char version1[256], version[256];
    int64_t t0 = tp_now_ms(); /* before the node's stat: its TTL ends after t0 + 1 s */
    cr_assert_eq(s_read(s_uri(mount, "f.bin"), "", 0, RANGE, 0, got, version1), RANGE);
    cr_assert(memcmp(got, v1, RANGE) == 0);

    uint8_t *v2 = s_make_file("f.bin", size, 12); /* same size, other bytes, new mtime */
    /* poll the cached range: old bytes until the TTL ends, then new; never a mix */
    int64_t seen_new = 0;
    int old_reads = 0;
    for (int64_t deadline = tp_now_ms() + 15000; !seen_new && tp_now_ms() < deadline;) {
        int64_t n = s_read(s_uri(mount, "f.bin"), "", 0, RANGE, 0, got, version);
        cr_assert_eq(n, (int64_t)RANGE, "read: %lld", (long long)n);
        if (memcmp(got, v2, RANGE) == 0) {
            seen_new = tp_now_ms();
            cr_assert_str_neq(version, version1);
        } else {
            cr_assert(memcmp(got, v1, RANGE) == 0, "a read mixed old and new bytes");
            cr_assert_str_eq(version, version1);
            old_reads++;
        }
    }
    cr_assert(seen_new, "the new version never showed");
    cr_assert(seen_new - t0 >= 1000, "new bytes after %lld ms, before the 1 s TTL",
              (long long)(seen_new - t0));
    cr_assert(old_reads > 0);
    cr_assert_eq(s_read(s_uri(mount, "f.bin"), "", 0, size, 0, got, version), (int64_t)size);
    cr_assert(memcmp(got, v2, size) == 0);
    /* asking for the old version now is ESTALE, not old or mixed bytes */
    cr_assert_eq(s_read(s_uri(mount, "f.bin"), version1, RANGE, 10, 0, got, NULL), SHOAL_ESTALE);
    free(got);
    free(v1);
    free(v2);
}

Test(node, miss_of_a_changed_file_is_estale_then_new)
{
    size_t size = 2 * RANGE;
    uint8_t *v1 = s_make_file("g.bin", size, 13);
    char mount[TP_PATH_MAX];
    snprintf(mount, sizeof mount, "file://%s/", s_origin);
    s_start(mount, "60", "--store", "memory");
    uint8_t *got = malloc(size);
    char version1[256], version[256];
    cr_assert_eq(s_read(s_uri(mount, "g.bin"), "", 0, 10, 0, got, version1), 10);
    uint8_t *v2 = s_make_file("g.bin", size, 14);
    /* the second range is not cached: its read carries version 1, which the UFS refuses */
    cr_assert_eq(s_read(s_uri(mount, "g.bin"), "", RANGE, 10, 0, got, NULL), SHOAL_ESTALE);
    /* the refusal expired the metadata: the retry sees the new version, long before the TTL */
    cr_assert_eq(s_read(s_uri(mount, "g.bin"), "", 0, size, 0, got, version), (int64_t)size);
    cr_assert_str_neq(version, version1);
    cr_assert(memcmp(got, v2, size) == 0);
    cr_assert(s_counter("ufs_stale") >= 1);
    free(got);
    free(v1);
    free(v2);
}

Test(node, load_evict_view_stats)
{
    size_t size = RANGE + 2 * PAGE + 1; /* 7 pages */
    uint8_t *data = s_make_file("w/a.bin", size, 21);
    free(s_make_file("w/b.bin", PAGE, 22));
    char mount[TP_PATH_MAX];
    snprintf(mount, sizeof mount, "file://%s/", s_origin);
    s_start(mount, "60", "--store", "rocksdb");

    msg_t request;
    s_reply_t reply;
    msg_init(&request, MSG_VIEW_REQ, 0, 0);
    s_call(&s_node, &request, &reply);
    cr_assert_eq(reply.msg.header.type, MSG_VIEW_REP);
    const msg_view_reply_t *view = &reply.msg.body.view_reply;
    cr_assert_eq(view->member_count, 1);
    cr_assert_eq(view->page_size, PAGE);
    cr_assert_eq(view->range_pages, 4);
    cr_assert_eq(view->members[0].state, MSG_MEMBER_ALIVE);
    cr_assert_eq(view->members[0].weight, 256u << 20);
    cr_assert(view->members[0].incarnation >= 1);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_node.port);
    cr_assert_str_eq(view->members[0].data_endpoint, endpoint);
    s_reply_fini(&reply);

    msg_init(&request, MSG_LOAD_REQ, 0, 0);
    request.body.load_request.uri = s_uri(mount, "w/a.bin");
    request.body.load_request.replicas = 1;
    s_call(&s_node, &request, &reply);
    cr_assert_eq(reply.msg.header.type, MSG_LOAD_REP, "LOAD: %d", s_code(&reply));
    cr_assert_eq(reply.msg.body.load_reply.pages_loaded, 7);
    cr_assert_eq(reply.msg.body.load_reply.bytes_loaded, size);
    cr_assert_eq(reply.msg.body.load_reply.pages_cached, 0);
    s_reply_fini(&reply);
    s_call(&s_node, &request, &reply);
    cr_assert_eq(reply.msg.body.load_reply.pages_loaded, 0);
    cr_assert_eq(reply.msg.body.load_reply.pages_cached, 7);
    s_reply_fini(&reply);

    uint64_t ufs_reads = s_counter("ufs_reads");
    s_check_reads(mount, "w/a.bin", data, size);
    cr_assert_eq(s_counter("ufs_reads"), ufs_reads, "a loaded file was read from the UFS");
    uint8_t byte;
    cr_assert_eq(s_read(s_uri(mount, "w/b.bin"), "", 0, 1, 0, &byte, NULL), 1);

    msg_init(&request, MSG_EVICT_REQ, 0, 0);
    request.body.evict_request.uri = s_uri(mount, "w/a.bin");
    s_call(&s_node, &request, &reply);
    cr_assert_eq(reply.msg.header.type, MSG_EVICT_REP, "EVICT: %d", s_code(&reply));
    cr_assert_eq(reply.msg.body.evict_reply.pages_evicted, 7);
    cr_assert_eq(reply.msg.body.evict_reply.bytes_evicted, size);
    s_reply_fini(&reply);
    ufs_reads = s_counter("ufs_reads");
    cr_assert_eq(s_read(s_uri(mount, "w/a.bin"), "", 0, 1, 0, &byte, NULL), 1);
    cr_assert_eq(s_counter("ufs_reads"), ufs_reads + 1, "evicted pages were still cached");

    /* recursive EVICT of the prefix drops both files */
    msg_init(&request, MSG_EVICT_REQ, 0, 0);
    request.body.evict_request.uri = s_uri(mount, "w");
    request.body.evict_request.recursive = true;
    s_call(&s_node, &request, &reply);
    cr_assert_eq(reply.msg.header.type, MSG_EVICT_REP, "EVICT: %d", s_code(&reply));
    cr_assert_eq(reply.msg.body.evict_reply.pages_evicted, 4 + 1);
    s_reply_fini(&reply);

    /* STATS: stable counters and the four histograms */
    msg_init(&request, MSG_STATS_REQ, 0, 0);
    s_call(&s_node, &request, &reply);
    const msg_stats_reply_t *stats = &reply.msg.body.stats_reply;
    const char *names[] = {"page_hits",
                           "page_misses",
                           "bytes_served",
                           "ufs_bytes_read",
                           "ufs_requests",
                           "ufs_errors",
                           "evictions",
                           "used_bytes",
                           "capacity_bytes",
                           "singleflight_joins",
                           "store_write_errors",
                           "range_buffers_mapped",
                           "range_buffers_reused",
                           "pagestore_faults",
                           "read_partial_replies"};
    for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
        bool found = false;
        for (uint32_t i = 0; i < stats->counter_count; i++)
            found = found || strcmp(stats->counters[i].name, names[n]) == 0;
        cr_expect(found, "counter %s missing", names[n]);
    }
    cr_assert_eq(stats->histogram_count, 4);
    cr_assert_str_eq(stats->histograms[0].name, "read_hit_latency_us");
    s_reply_fini(&reply);
    free(data);
}

/* Builds a header frame with an arbitrary envelope and an empty-map body. */
static void s_raw_header(msg_buf_t *buf, uint64_t version, uint64_t type, uint64_t id)
{
    msg_buf_reset(buf);
    mp_write_array(buf, 6);
    mp_write_uint(buf, version);
    mp_write_uint(buf, type);
    mp_write_uint(buf, id);
    mp_write_uint(buf, 0);
    mp_write_uint(buf, 0);
    mp_write_map(buf, 0);
}

/* Expects the next reply to be ERROR `code` for request `id`. */
static void s_expect_error(uint64_t id, int code)
{
    s_reply_t reply;
    cr_assert_eq(s_recv_any(&s_node, &reply, WAIT_MS), 0, "no reply to request %llu",
                 (unsigned long long)id);
    cr_assert_eq(reply.msg.header.request_id, id);
    cr_assert_eq(s_code(&reply), code, "request %llu: got %d", (unsigned long long)id,
                 s_code(&reply));
    s_reply_fini(&reply);
}

/* A VIEW round trip proves the node still serves (and that nothing else was queued). */
static void s_expect_alive(void)
{
    msg_t request;
    msg_init(&request, MSG_VIEW_REQ, 0, 0);
    s_reply_t reply;
    s_call(&s_node, &request, &reply);
    cr_assert_eq(reply.msg.header.type, MSG_VIEW_REP);
    s_reply_fini(&reply);
}

Test(node, malformed_requests_get_eproto_or_are_dropped)
{
    char mount[TP_PATH_MAX];
    snprintf(mount, sizeof mount, "file://%s/", s_origin);
    s_start(mount, "60", "--store", "memory");
    msg_buf_t buf;
    msg_buf_init(&buf);

    s_send_raw(s_node.dealer, "garbage", 7, false); /* no request id: dropped */
    s_send_raw(s_node.dealer, "", 0, false);        /* empty frame: dropped */
    s_expect_alive();

    s_raw_header(&buf, 1, MSG_STAT_REQ, 900); /* STAT without its uri */
    s_send_raw(s_node.dealer, buf.data, buf.len, false);
    s_expect_error(900, SHOAL_EPROTO);

    s_raw_header(&buf, 2, MSG_STAT_REQ, 901); /* another protocol version */
    s_send_raw(s_node.dealer, buf.data, buf.len, false);
    s_expect_error(901, SHOAL_EPROTO);

    s_raw_header(&buf, 1, 40, 902); /* unknown type */
    s_send_raw(s_node.dealer, buf.data, buf.len, false);
    s_expect_error(902, SHOAL_EPROTO);

    s_raw_header(&buf, 1, MSG_VIEW_REQ, 903); /* a request with a raw frame after it */
    s_send_raw(s_node.dealer, buf.data, buf.len, true);
    s_send_raw(s_node.dealer, "xx", 2, false);
    s_expect_error(903, SHOAL_EPROTO);

    s_raw_header(&buf, 1, MSG_VIEW_REP, 904); /* a reply type sent as a request */
    s_send_raw(s_node.dealer, buf.data, buf.len, false);
    s_expect_error(904, SHOAL_EPROTO);

    msg_buf_reset(&buf); /* a gossip type on the data port */
    msg_header_t header = {.type = MSG_PING, .request_id = 905};
    cr_assert_eq(msg_header_encode(&header, &buf), 0);
    mp_write_nil(&buf);
    s_send_raw(s_node.dealer, buf.data, buf.len, false);
    s_expect_error(905, SHOAL_EPROTO);

    s_raw_header(&buf, 1, MSG_READ_REQ, 906); /* truncated msgpack after a readable id */
    s_send_raw(s_node.dealer, buf.data, buf.len - 1, false);
    s_expect_error(906, SHOAL_EPROTO);

    s_expect_alive();

    /* an oversized frame: ZeroMQ drops the connection; the node serves new ones */
    size_t huge = MSG_FRAME_MAX + 1024;
    uint8_t *big = calloc(1, huge);
    s_send_raw(s_node.dealer, big, huge, false);
    free(big);
    zmq_close(s_node.dealer);
    s_connect(&s_node);
    s_expect_alive();
    cr_assert(s_counter("malformed_requests") >= 7);
    cr_assert(tp_alive(&s_node.proc));
    msg_buf_fini(&buf);
}

/* Runs shoald with `args` (NULL-terminated, after argv[0]), waits for it to exit, and returns
 * its wait status; its stderr goes to `log`. */
static int s_run_shoald(const char *const *args, const char *log)
{
    const char *argv[32] = {s_shoald()};
    int argc = 1;
    while (args[argc - 1] && argc < 31) {
        argv[argc] = args[argc - 1];
        argc++;
    }
    argv[argc] = NULL;
    tp_proc_t proc;
    cr_assert_eq(tp_spawn(&proc, argv, log), 0);
    int status = -1;
    for (int64_t deadline = tp_now_ms() + 10000; tp_now_ms() < deadline;) {
        pid_t r = waitpid(proc.pid, &status, WNOHANG);
        if (r == proc.pid) {
            proc.pid = 0;
            return status;
        }
        usleep(10000); /* polling a child's exit with a deadline */
    }
    tp_stop(&proc, 1000);
    cr_assert_fail("shoald %s did not exit", args[0]);
    return -1;
}

Test(node, bad_flags_exit_2_naming_the_value)
{
    struct {
        const char *args[8];
        const char *needle;
    } cases[] = {
        {{"--mount", "file:///tmp/", "--capacity", "12Q", NULL}, "12Q"},
        {{"--mount", "file:///tmp/", "--metadata-ttl", "later", NULL}, "later"},
        {{"--mount", "file:///tmp/", "--listen", "10.9.8.7:7070", NULL}, "10.9.8.7"},
        {{"--mount", "file:///tmp/", "--frobnicate", NULL}, "--frobnicate"},
        {{"--mount", "file:///tmp/", "--threads", "-3", NULL}, "-3"},
        {{"--mount", "file:///tmp/", "--io-threads", "17", NULL}, "17"},
        {{"--mount", "file:///tmp/", "--io-threads", "0", NULL}, "--io-threads"},
        {{"--mount", "file:///tmp/", "--log-level", "chatty", NULL}, "chatty"},
        {{"--capacity", "1G", NULL}, "--mount"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char log[TP_PATH_MAX];
        snprintf(log, sizeof log, "%s/flags-%zu.log", s_origin, i);
        int status = s_run_shoald(cases[i].args, log);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 2, "case %zu: status %d", i, status);
        cr_expect_eq(tp_count_lines(log, cases[i].needle) >= 1, 1, "case %zu: '%s' not named", i,
                     cases[i].needle);
    }
    char log[TP_PATH_MAX];
    snprintf(log, sizeof log, "%s/help.log", s_origin);
    const char *help[] = {"--help", NULL};
    int status = s_run_shoald(help, log);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *flags[] = {"--name",       "--data-dir",     "--capacity",    "--listen",
                           "--gossip",     "--seeds",        "--mount",       "--cluster-key",
                           "--insecure",   "--metadata-ttl", "--threads",     "--fetch-threads",
                           "--io-threads", "--page-size",    "--range-pages", "--log-level",
                           "--config"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        cr_expect(tp_count_lines(log, flags[i]) >= 1, "--help does not document %s", flags[i]);
}

Test(node, sigterm_stops_cleanly)
{
    uint8_t *data = s_make_file("k.bin", RANGE, 31);
    char mount[TP_PATH_MAX];
    snprintf(mount, sizeof mount, "file://%s/", s_origin);
    s_start(mount, "60", "--store", "rocksdb");
    uint8_t *got = malloc(RANGE);
    cr_assert_eq(s_read(s_uri(mount, "k.bin"), "", 0, RANGE, 0, got, NULL), RANGE);
    int64_t start = tp_now_ms();
    int status = tp_stop(&s_node.proc, 10000);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    cr_assert(tp_now_ms() - start < 5000, "stop took %lld ms", (long long)(tp_now_ms() - start));
    char log[TP_PATH_MAX];
    snprintf(log, sizeof log, "%s/shoald.log", s_node.dir);
    cr_assert(tp_count_lines(log, "stopped") >= 1);
    free(got);
    free(data);
}

Test(node, sigterm_with_requests_in_flight_answers_them)
{
    enum { FILES = 12 };
    for (int i = 0; i < FILES; i++) {
        char name[64];
        snprintf(name, sizeof name, "slow/f%02d.bin", i);
        free(s_make_file(name, RANGE, 40 + (uint64_t)i));
    }
    cr_assert_eq(tp_nginx_start(&s_nginx, s_origin, "location /slow/ { limit_rate 512k; }"), 0);
    char mount[256];
    snprintf(mount, sizeof mount, "%s/", s_nginx.base_url);
    s_start(mount, "60", "--store", "memory");
    /* 12 distinct misses for 8 fetch threads: some run (about 0.5 s each), some wait */
    for (int i = 0; i < FILES; i++) {
        char name[64];
        snprintf(name, sizeof name, "slow/f%02d.bin", i);
        msg_t request;
        msg_read_request(&request, 0, 0, s_uri(mount, name), "", 0, RANGE, 0);
        s_send(&s_node, &request);
    }
    /* wait (on a second connection) until the node has taken all of them in */
    void *first = s_node.dealer;
    s_connect(&s_node);
    uint64_t calls = 0;
    for (int64_t deadline = tp_now_ms() + 10000; tp_now_ms() < deadline;)
        if (s_counter("requests") >= FILES + ++calls)
            break;
    cr_assert(s_counter("requests") >= FILES + calls);
    zmq_close(s_node.dealer);
    s_node.dealer = first;
    cr_assert_eq(kill(s_node.proc.pid, SIGTERM), 0);
    int answered = 0, canceled = 0;
    for (int i = 0; i < FILES; i++) {
        s_reply_t reply;
        cr_assert_eq(s_recv_any(&s_node, &reply, WAIT_MS), 0, "request %d was not answered", i);
        if (reply.msg.header.type == MSG_READ_REP)
            answered++;
        else {
            cr_assert_eq(s_code(&reply), SHOAL_ECANCELED, "got %d", s_code(&reply));
            canceled++;
        }
        s_reply_fini(&reply);
    }
    cr_assert_eq(answered + canceled, FILES);
    cr_log_info("in flight at SIGTERM: %d answered, %d cancelled", answered, canceled);
    int64_t start = tp_now_ms();
    int status = tp_stop(&s_node.proc, 15000);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    cr_assert(tp_now_ms() - start < 10000);
}

/* READ hits of at most one range are answered by the router thread itself, larger spans and
 * misses by the hit workers and the fetch pool (node/README.md, Threading model). Pipelined on
 * one connection, a mix of all three gets every reply, each with exactly its bytes, and the
 * hits (inline and through a worker) read nothing from the UFS. */
Test(node, pipelined_inline_hits_worker_hits_and_misses)
{
    enum { COUNT = 48 };
    size_t size = 4 * RANGE;
    uint8_t *data = s_make_file("mix.bin", size, 21);
    char mount[TP_PATH_MAX];
    snprintf(mount, sizeof mount, "file://%s/", s_origin);
    s_start(mount, "60", "--store", "rocksdb");
    char uri[TP_PATH_MAX];
    snprintf(uri, sizeof uri, "%s", s_uri(mount, "mix.bin"));
    uint8_t *out = malloc(size);
    cr_assert_eq(s_read(uri, "", 0, 2 * RANGE, 0, out, NULL), (int64_t)(2 * RANGE));
    cr_assert(memcmp(out, data, 2 * RANGE) == 0);
    s_wait_stored(); /* ranges 0 and 1 are stored, 2 and 3 are not */
    uint64_t ufs_reads = s_counter("ufs_reads");

    uint64_t offsets[COUNT], lengths[COUNT], ids[COUNT];
    for (int i = 0; i < COUNT; i++) {
        if (i % 8 == 7) { /* a hit over two ranges: a worker's */
            offsets[i] = PAGE / 2;
            lengths[i] = RANGE + PAGE;
        } else if (i % 4 == 3) { /* a miss in range 2 or 3 */
            offsets[i] = 2 * RANGE + (uint64_t)(i % 3) * RANGE / 2 + (uint64_t)i * 1000;
            lengths[i] = PAGE;
        } else { /* a hit inside range 0 or 1, on the router thread */
            offsets[i] = (uint64_t)i * 37501 % (2 * RANGE - PAGE);
            lengths[i] = PAGE - (uint64_t)i;
        }
        msg_t request;
        msg_read_request(&request, 0, 0, uri, "", offsets[i], lengths[i], 0);
        ids[i] = s_send(&s_node, &request);
    }
    for (int answered = 0; answered < COUNT; answered++) {
        s_reply_t reply;
        cr_assert_eq(s_recv_any(&s_node, &reply, WAIT_MS), 0, "only %d of %d answered", answered,
                     COUNT);
        int i = 0;
        while (i < COUNT && ids[i] != reply.msg.header.request_id)
            i++;
        cr_assert(i < COUNT, "a reply to an unknown request id");
        ids[i] = 0; /* answered once */
        cr_assert_eq(reply.msg.header.type, MSG_READ_REP, "request %d: error %d", i,
                     s_code(&reply));
        cr_assert_eq(s_extract(&reply, offsets[i], lengths[i], out), lengths[i]);
        cr_assert(memcmp(out, data + offsets[i], lengths[i]) == 0, "request %d: wrong bytes", i);
        s_reply_fini(&reply);
    }
    uint64_t fetched = s_counter("ufs_reads") - ufs_reads;
    cr_assert(fetched >= 1 && fetched <= COUNT / 8, "%llu UFS reads for ranges 2 and 3",
              (unsigned long long)fetched);
    free(out);
    free(data);
}

/* ---- streamed READs (MSG_READ_STREAM) ---------------------------------------------------- */

/* Receives every reply of streamed READ `id` for [offset, offset + length) until one with
 * more = false or an ERROR; checks that the spans are contiguous, start at `offset` and cover
 * the request (clipped at EOF), and copies the bytes into out. Returns the replies received;
 * *error_out is the ERROR code that ended it, or 0. `first` (may be NULL) is a reply already
 * received for it. */
static int s_collect_stream(uint64_t id, uint64_t offset, uint64_t length, const s_reply_t *first,
                            uint8_t *out, int *error_out)
{
    int replies = 0;
    uint64_t at = offset;
    *error_out = 0;
    for (;;) {
        s_reply_t reply;
        if (first && replies == 0) {
            reply = *first;
        } else {
            cr_assert_eq(s_recv_any(&s_node, &reply, WAIT_MS), 0, "no reply %d", replies);
        }
        cr_assert_eq(reply.msg.header.request_id, id);
        replies++;
        if (reply.msg.header.type == MSG_ERROR) {
            *error_out = reply.msg.body.error.code;
            s_reply_fini(&reply);
            return replies;
        }
        cr_assert_eq(reply.msg.header.type, MSG_READ_REP);
        const msg_read_reply_t *r = &reply.msg.body.read_reply;
        cr_assert_eq(r->offset, at, "reply %d starts at %llu, not %llu", replies,
                     (unsigned long long)r->offset, (unsigned long long)at);
        uint64_t end = offset + length < r->file_size ? offset + length : r->file_size;
        cr_assert_leq(r->offset + r->length, end);
        cr_assert_eq(s_extract(&reply, r->offset, r->length, out + (r->offset - offset)),
                     r->length);
        at = r->offset + r->length;
        bool more = r->more;
        if (more)
            cr_assert_gt(r->length, 0);
        else
            cr_assert_eq(at, end, "the last reply ends at %llu, not %llu", (unsigned long long)at,
                         (unsigned long long)end);
        s_reply_fini(&reply);
        if (!more)
            return replies;
    }
}

/* Creates origin/.go-TOKEN: badhttp.py's /pause/TOKEN/ replies send their second half. */
static void s_release(const char *token)
{
    char path[TP_PATH_MAX];
    snprintf(path, sizeof path, "%s/.go-%s", s_origin, token);
    cr_assert_eq(tp_write_file(path, "", 0), 0);
}

Test(node, streamed_read_sends_pages_while_the_origin_sends_the_rest)
{
    size_t size = 2 * RANGE + 1000;
    uint8_t *want = s_make_file("slow.bin", size, 31);
    cr_assert_eq(tp_badhttp_start(&s_bad, s_origin), 0);
    char mount[300];
    snprintf(mount, sizeof mount, "%s/", s_bad.base_url);
    s_start(mount, "60", "--threads", "2");
    uint8_t *got = malloc(size);

    /* One cold range. The origin sends half of it (2 pages), then waits for .go-t1: the first
     * reply must arrive while it waits, so it cannot be the whole range. */
    char uri[400];
    snprintf(uri, sizeof uri, "%s/pause/t1/slow.bin", s_bad.base_url);
    msg_t request;
    msg_read_request(&request, 0, 0, uri, "", 0, RANGE, MSG_READ_STREAM);
    uint64_t id = s_send(&s_node, &request);
    s_reply_t first;
    cr_assert_eq(s_recv_any(&s_node, &first, WAIT_MS), 0);
    cr_assert_eq(first.msg.header.type, MSG_READ_REP, "%s",
                 first.msg.header.type == MSG_ERROR ? first.msg.body.error.message : "");
    cr_assert(first.msg.body.read_reply.more, "the first reply is not a partial one");
    cr_assert_eq(first.msg.body.read_reply.offset, 0);
    cr_assert_eq(first.msg.body.read_reply.length, RANGE / 2);
    s_release("t1");
    int error = 0;
    int replies = s_collect_stream(id, 0, RANGE, &first, got, &error);
    cr_assert_eq(error, 0);
    cr_assert_geq(replies, 2);
    cr_assert(memcmp(got, want, RANGE) == 0, "streamed bytes differ from the origin's");
    cr_assert_geq(s_counter("read_partial_replies"), 1);

    /* Two ranges with a ragged tail, from mid-page: partial replies in order, then the last. */
    snprintf(uri, sizeof uri, "%s/pause/t2/slow.bin", s_bad.base_url);
    s_release("t2");
    memset(got, 0, size);
    msg_read_request(&request, 0, 0, uri, "", RANGE + 100, 2 * RANGE, MSG_READ_STREAM);
    id = s_send(&s_node, &request);
    replies = s_collect_stream(id, RANGE + 100, 2 * RANGE, NULL, got, &error);
    cr_assert_eq(error, 0);
    cr_assert_geq(replies, 2);
    cr_assert(memcmp(got, want + RANGE + 100, size - RANGE - 100) == 0);

    /* Without the flag: one reply, however cold (old clients, forwards). */
    uint64_t partials = s_counter("read_partial_replies");
    snprintf(uri, sizeof uri, "%s/slow.bin", s_bad.base_url);
    memset(got, 0, size);
    cr_assert_eq(s_read(uri, "", 0, size, 0, got, NULL), (int64_t)size);
    cr_assert(memcmp(got, want, size) == 0);
    cr_assert_eq(s_counter("read_partial_replies"), partials);

    /* A hit with the flag: one reply too. */
    s_wait_stored();
    msg_read_request(&request, 0, 0, uri, "", 0, size, MSG_READ_STREAM);
    id = s_send(&s_node, &request);
    memset(got, 0, size);
    cr_assert_eq(s_collect_stream(id, 0, size, NULL, got, &error), 1);
    cr_assert_eq(error, 0);
    cr_assert(memcmp(got, want, size) == 0);
    cr_assert_eq(s_counter("read_partial_replies"), partials);

    /* The origin dies after half of every attempt: partial replies, then an ERROR for the id. */
    snprintf(uri, sizeof uri, "%s/die/slow.bin", s_bad.base_url);
    msg_read_request(&request, 0, 0, uri, "", 0, RANGE, MSG_READ_STREAM);
    id = s_send(&s_node, &request);
    memset(got, 0, size);
    replies = s_collect_stream(id, 0, RANGE, NULL, got, &error);
    cr_assert_eq(error, SHOAL_EIO, "ended with %d after %d replies", error, replies);
    cr_assert_geq(replies, 2, "no partial reply before the error");
    cr_assert(memcmp(got, want, RANGE / 2) == 0);
    s_expect_alive();
    free(got);
    free(want);
}
