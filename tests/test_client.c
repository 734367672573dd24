/*
 * test_client.c - libshoal without a real node: range splitting, and a fake node (a ZeroMQ
 * ROUTER in a test thread) that serves a file correctly or misbehaves on request (wrong frame
 * length, missing or extra frame, wrong request id, garbage, another version, silence). The
 * client must return the file's bytes or an error, never wrong bytes; must fall back to the
 * next node or the UFS on silence; and must work from many threads and in forked children.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <malloc.h>
#include <xxhash.h>
#include <zmq.h>

#include "client.h"
#include "hrw.h"
#include "local.h"
#include "range.h"
#include "session.h"
#include "testproc.h"
#include "ufs.h"

/* ---- range splitting (pure) ---- */

Test(client_range, splits_at_range_boundaries)
{
    client_range_t out[8];
    cr_assert_eq(client_range_count(0, 0, 100), 0);
    cr_assert_eq(client_range_split(0, 100, 100, out), 1);
    cr_assert_eq(out[0].range_index, 0);
    cr_assert_eq(out[0].length, 100);
    cr_assert_eq(client_range_split(99, 2, 100, out), 2);
    cr_assert(out[0].offset == 99 && out[0].length == 1 && out[0].range_index == 0);
    cr_assert(out[1].offset == 100 && out[1].length == 1 && out[1].range_index == 1);
    cr_assert_eq(client_range_split(150, 300, 100, out), 4);
    uint64_t expect[4][3] = {{1, 150, 50}, {2, 200, 100}, {3, 300, 100}, {4, 400, 50}};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(out[i].range_index, expect[i][0]);
        cr_assert_eq(out[i].offset, expect[i][1]);
        cr_assert_eq(out[i].length, expect[i][2]);
    }
    cr_assert_eq(client_range_split(200, 100, 100, out), 1);
    cr_assert_eq(out[0].range_index, 2);
}

Test(client_range, pieces_cover_the_span_exactly)
{
    client_range_t out[64];
    for (uint64_t offset = 0; offset < 300; offset += 7) {
        for (uint64_t length = 1; length < 700; length += 13) {
            size_t n = client_range_split(offset, length, 64, out);
            cr_assert_eq(n, client_range_count(offset, length, 64));
            uint64_t position = offset;
            for (size_t i = 0; i < n; i++) {
                cr_assert_eq(out[i].offset, position);
                cr_assert_gt(out[i].length, 0);
                cr_assert_eq(out[i].offset / 64, out[i].range_index);
                cr_assert_eq((out[i].offset + out[i].length - 1) / 64, out[i].range_index);
                position += out[i].length;
            }
            cr_assert_eq(position, offset + length);
        }
    }
}

Test(client_range, file_key_is_blake2b_of_uri_nul_version)
{
    uint8_t a[16], b[16], c[16];
    client_file_key("s3://b/k", "v1", a);
    client_file_key("s3://b/k", "v2", b);
    client_file_key("s3://b/kv", "1", c);
    cr_assert(memcmp(a, b, 16) != 0);
    cr_assert(memcmp(a, c, 16) != 0, "the NUL separator keeps uri and version apart");
}

/* ---- the fake node ---- */

enum fake_mode {
    FAKE_GOOD = 0,
    FAKE_SHORT_FRAME,   /* last frame one byte short */
    FAKE_MISSING_FRAME, /* one frame fewer than the header says */
    FAKE_EXTRA_FRAME,   /* one frame more */
    FAKE_WRONG_ID,      /* reply to another request id */
    FAKE_GARBAGE,       /* header frame is not msgpack */
    FAKE_OTHER_VERSION, /* READ reply for another version */
    FAKE_SHORT_SPAN,    /* span does not cover the request */
    FAKE_SILENT_READS,  /* never answers READ */
    FAKE_ERROR_BUSY,    /* ERROR EBUSY to every READ */
    FAKE_CLOSE_ON_READ, /* closes its ROUTER on the first READ (a killed node) */
    FAKE_SLOW_READS,    /* answers each READ correctly after slow_ms */
    FAKE_STREAM,        /* a READ with STREAM: one reply per page, all but the last partial */
    FAKE_STREAM_GAP,    /* ... the second reply starts a byte after the first ended */
    FAKE_STREAM_PAST,   /* ... the first partial reply already covers the whole request */
    FAKE_STREAM_CUT,    /* ... only the first partial reply, then silence */
    FAKE_STREAM_ERROR,  /* ... the first partial reply, then ERROR EIO */
};

typedef struct fake_node {
    void *context;                 /* its own ZeroMQ context */
    void *router;                  /* bound to a free loopback port */
    char endpoint[64];             /* tcp://127.0.0.1:PORT */
    char other_endpoint[64];       /* a second member listed in the view ("" = none) */
    char host_ids[2][160];         /* host_id of each member in the view ("" by default) */
    char sockets[2][128];          /* local_socket of each member ("" by default) */
    uint32_t other_state;          /* state of the second member (alive by default) */
    pthread_t thread;              /* serving thread */
    atomic_bool stop;              /* ask the thread to end */
    _Atomic int mode;              /* enum fake_mode for READ replies */
    _Atomic int reads;             /* READ requests seen */
    _Atomic int stats;             /* STAT requests seen */
    char uri[512];                 /* the one file it serves */
    uint8_t *data;                 /* its bytes */
    size_t size;                   /* its size */
    char version[64];              /* its version */
    uint8_t *data_v2;              /* the file after it changed (same size), or NULL */
    atomic_bool changed;           /* serve data_v2 as version "v2" */
    uint64_t page_size;            /* view page size */
    uint32_t range_pages;          /* view range pages */
    uint32_t placement;            /* view placement version */
    _Atomic uint64_t view_version; /* sent in every header */
    int slow_ms;                   /* FAKE_SLOW_READS delay */
    atomic_bool closed;            /* FAKE_CLOSE_ON_READ closed the ROUTER (router is NULL) */
    int change_after;              /* > 0: switch to data_v2 once this many READs were served */
    int served;                    /* whole READ replies sent (the fake's thread only) */
    /* every READ request, in arrival order (written by the fake's thread before it answers) */
    struct fake_read_log {
        bool versionless;   /* version "" */
        char version[16];   /* the version asked */
        uint64_t offset;    /* first byte asked */
        uint64_t file_size; /* the size the client sent */
    } log[256];
    _Atomic int logged; /* entries in log */
} fake_node_t;

static void s_send_frames(void *router, zmq_msg_t *identity, const void *header, size_t len,
                          int more)
{
    zmq_msg_t copy;
    zmq_msg_init(&copy);
    zmq_msg_copy(&copy, identity);
    zmq_msg_send(&copy, router, ZMQ_SNDMORE);
    zmq_send(router, header, len, more ? ZMQ_SNDMORE : 0);
}

/* Sends one READ reply for [start, end) of `bytes` with its frames, `more` as given. */
static void s_fake_reply(fake_node_t *fake, zmq_msg_t *identity, uint64_t id, uint64_t vv,
                         const char *version, const uint8_t *bytes, uint64_t start, uint64_t end,
                         bool more)
{
    msg_t reply;
    msg_buf_t out;
    msg_buf_init(&out);
    uint32_t pages = msg_read_page_count(start, end - start, fake->page_size);
    msg_read_reply(&reply, id, vv, fake->size, version, start, end - start, pages, fake->page_size);
    reply.body.read_reply.more = more;
    cr_assert_eq(msg_encode(&reply, &out), 0, "%s", shoal_last_error());
    s_send_frames(fake->router, identity, out.data, out.len, pages > 0);
    for (uint32_t i = 0; i < pages; i++) {
        uint64_t piece = msg_read_frame_length(&reply.body.read_reply, i);
        uint64_t piece_start = i == 0 ? start : (start / fake->page_size + i) * fake->page_size;
        zmq_send(fake->router, bytes + piece_start, piece, i + 1 < pages ? ZMQ_SNDMORE : 0);
    }
    msg_buf_fini(&out);
}

/* A streamed answer to a READ for [start, end) (whole pages): one reply per page, spoiled as
 * `mode` says. */
static void s_fake_stream(fake_node_t *fake, zmq_msg_t *identity, uint64_t id, uint64_t vv,
                          const char *version, const uint8_t *bytes, uint64_t start, uint64_t end,
                          int mode)
{
    uint64_t page = fake->page_size;
    if (mode == FAKE_STREAM_PAST) {
        s_fake_reply(fake, identity, id, vv, version, bytes, start, end, true);
        s_fake_reply(fake, identity, id, vv, version, bytes, end - 1, end, false);
        return;
    }
    uint32_t index = 0;
    for (uint64_t at = start; at < end; index++) {
        uint64_t next = (at / page + 1) * page < end ? (at / page + 1) * page : end;
        if (mode == FAKE_STREAM_GAP && index == 1) {
            at++; /* the next reply starts one byte after the previous one ended */
            s_fake_reply(fake, identity, id, vv, version, bytes, at, end, false);
            return;
        }
        s_fake_reply(fake, identity, id, vv, version, bytes, at, next, next < end);
        if ((mode == FAKE_STREAM_CUT || mode == FAKE_STREAM_ERROR) && next < end) {
            if (mode == FAKE_STREAM_ERROR) {
                msg_t reply;
                msg_buf_t out;
                msg_buf_init(&out);
                msg_error(&reply, id, vv, SHOAL_EIO, "the origin failed mid-range");
                cr_assert_eq(msg_encode(&reply, &out), 0);
                s_send_frames(fake->router, identity, out.data, out.len, 0);
                msg_buf_fini(&out);
            }
            return;
        }
        at = next;
    }
}

/* Answers one request according to the mode. */
static void s_fake_answer(fake_node_t *fake, zmq_msg_t *identity, const msg_t *request)
{
    msg_buf_t out;
    msg_buf_init(&out);
    msg_t reply;
    uint64_t id = request->header.request_id;
    uint64_t vv = atomic_load(&fake->view_version);
    int mode = atomic_load(&fake->mode);
    switch (request->header.type) {
    case MSG_VIEW_REQ: {
        msg_member_t members[2] = {{.name = "fake",
                                    .data_endpoint = fake->endpoint,
                                    .gossip_endpoint = "",
                                    .state = MSG_MEMBER_ALIVE,
                                    .weight = 1 << 30,
                                    .host_id = fake->host_ids[0],
                                    .local_socket = fake->sockets[0]},
                                   {.name = "other",
                                    .data_endpoint = fake->other_endpoint,
                                    .gossip_endpoint = "",
                                    .state = fake->other_state,
                                    .weight = 1 << 30,
                                    .host_id = fake->host_ids[1],
                                    .local_socket = fake->sockets[1]}};
        memset(members[0].id, 0xaa, 16);
        memset(members[1].id, 0xbb, 16);
        msg_init(&reply, MSG_VIEW_REP, id, vv);
        reply.body.view_reply = (msg_view_reply_t){.view_version = vv,
                                                   .page_size = fake->page_size,
                                                   .range_pages = fake->range_pages,
                                                   .placement = fake->placement,
                                                   .member_count = fake->other_endpoint[0] ? 2 : 1,
                                                   .members = members};
        cr_assert_eq(msg_encode(&reply, &out), 0);
        s_send_frames(fake->router, identity, out.data, out.len, 0);
        break;
    }
    case MSG_STAT_REQ:
        atomic_fetch_add(&fake->stats, 1);
        if (strcmp(request->body.stat_request.uri, fake->uri) != 0) {
            msg_error(&reply, id, vv, SHOAL_ENOENT, "no such file");
        } else {
            msg_init(&reply, MSG_STAT_REP, id, vv);
            reply.body.stat_reply = (msg_stat_reply_t){
                .size = fake->size, .version = atomic_load(&fake->changed) ? "v2" : fake->version};
        }
        cr_assert_eq(msg_encode(&reply, &out), 0);
        s_send_frames(fake->router, identity, out.data, out.len, 0);
        break;
    case MSG_READ_REQ: {
        atomic_fetch_add(&fake->reads, 1);
        if (mode == FAKE_SILENT_READS)
            break;
        if (mode == FAKE_CLOSE_ON_READ) { /* like kill -9: the kernel closes its connections */
            zmq_close(fake->router);
            fake->router = NULL;
            atomic_store(&fake->closed, true);
            break;
        }
        if (mode == FAKE_SLOW_READS)
            usleep((useconds_t)fake->slow_ms * 1000); /* busy, not a synchronisation */
        if (mode == FAKE_ERROR_BUSY) {
            msg_error(&reply, id, vv, SHOAL_EBUSY, "busy");
            cr_assert_eq(msg_encode(&reply, &out), 0);
            s_send_frames(fake->router, identity, out.data, out.len, 0);
            break;
        }
        if (mode == FAKE_GARBAGE) {
            s_send_frames(fake->router, identity, "\xc1garbage", 8, 0);
            break;
        }
        const msg_read_request_t *rq = &request->body.read_request;
        int at = atomic_load(&fake->logged);
        if (at < (int)(sizeof fake->log / sizeof *fake->log)) {
            struct fake_read_log *entry = &fake->log[at];
            entry->versionless = rq->version[0] == '\0';
            snprintf(entry->version, sizeof entry->version, "%s", rq->version);
            entry->offset = rq->offset;
            entry->file_size = rq->file_size;
            atomic_store(&fake->logged, at + 1);
        }
        if (strcmp(rq->uri, fake->uri) != 0) { /* as a node answers a READ of a missing file */
            msg_error(&reply, id, vv, SHOAL_ENOENT, "no such file");
            cr_assert_eq(msg_encode(&reply, &out), 0);
            s_send_frames(fake->router, identity, out.data, out.len, 0);
            break;
        }
        bool changed = atomic_load(&fake->changed);
        const char *current = changed ? "v2" : fake->version;
        const uint8_t *bytes = changed ? fake->data_v2 : fake->data;
        if (rq->version[0] && strcmp(rq->version, current) != 0) {
            msg_error(&reply, id, vv, SHOAL_ESTALE, "the file changed");
            cr_assert_eq(msg_encode(&reply, &out), 0);
            s_send_frames(fake->router, identity, out.data, out.len, 0);
            break;
        }
        /* whole pages around the request, clipped to the file */
        uint64_t start = rq->offset / fake->page_size * fake->page_size;
        uint64_t end = rq->offset + rq->length;
        end = (end + fake->page_size - 1) / fake->page_size * fake->page_size;
        if (end > fake->size)
            end = fake->size;
        if (mode == FAKE_SHORT_SPAN)
            end = rq->offset + rq->length - 1;
        if (mode >= FAKE_STREAM) {
            cr_assert(rq->flags & MSG_READ_STREAM, "libshoal did not set MSG_READ_STREAM");
            s_fake_stream(fake, identity, id, vv, current, bytes, start, end, mode);
            break;
        }
        uint32_t pages = msg_read_page_count(start, end - start, fake->page_size);
        msg_read_reply(&reply, mode == FAKE_WRONG_ID ? id + 1000 : id, vv, fake->size,
                       mode == FAKE_OTHER_VERSION ? "other" : current, start, end - start, pages,
                       fake->page_size);
        cr_assert_eq(msg_encode(&reply, &out), 0, "%s", shoal_last_error());
        uint32_t send_pages = pages;
        if (mode == FAKE_MISSING_FRAME)
            send_pages--;
        s_send_frames(fake->router, identity, out.data, out.len, send_pages > 0);
        for (uint32_t i = 0; i < send_pages; i++) {
            uint64_t piece = msg_read_frame_length(&reply.body.read_reply, i);
            uint64_t piece_start = i == 0 ? start : (start / fake->page_size + i) * fake->page_size;
            bool last = i + 1 == send_pages;
            if (mode == FAKE_SHORT_FRAME && last)
                piece--;
            int flags = (!last || mode == FAKE_EXTRA_FRAME) ? ZMQ_SNDMORE : 0;
            zmq_send(fake->router, bytes + piece_start, piece, flags);
        }
        if (mode == FAKE_EXTRA_FRAME)
            zmq_send(fake->router, "x", 1, 0);
        if (fake->change_after > 0 && ++fake->served == fake->change_after)
            atomic_store(&fake->changed, true); /* replaced at the origin after this reply */
        break;
    }
    default:
        msg_error(&reply, id, vv, SHOAL_ENOTSUP, "fake node");
        cr_assert_eq(msg_encode(&reply, &out), 0);
        s_send_frames(fake->router, identity, out.data, out.len, 0);
        break;
    }
    msg_buf_fini(&out);
}

static void *s_fake_thread(void *arg)
{
    fake_node_t *fake = arg;
    while (!atomic_load(&fake->stop)) {
        if (atomic_load(&fake->closed)) {
            zmq_poll(NULL, 0, 20);
            continue;
        }
        zmq_pollitem_t item = {.socket = fake->router, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, 20) <= 0)
            continue;
        zmq_msg_t identity, header;
        zmq_msg_init(&identity);
        zmq_msg_init(&header);
        zmq_msg_recv(&identity, fake->router, 0);
        zmq_msg_recv(&header, fake->router, 0);
        msg_t request;
        if (msg_decode(zmq_msg_data(&header), zmq_msg_size(&header), &request) == 0) {
            s_fake_answer(fake, &identity, &request);
            msg_fini(&request);
        }
        zmq_msg_close(&identity);
        zmq_msg_close(&header);
    }
    return NULL;
}

/* Starts a fake node serving `data` as `uri` with the given version. */
static void s_fake_start(fake_node_t *fake, const char *uri, const void *data, size_t size,
                         const char *version)
{
    memset(fake, 0, sizeof *fake);
    fake->context = zmq_ctx_new();
    fake->router = zmq_socket(fake->context, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(fake->router, ZMQ_LINGER, &zero, sizeof zero);
    cr_assert_eq(zmq_bind(fake->router, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof fake->endpoint;
    zmq_getsockopt(fake->router, ZMQ_LAST_ENDPOINT, fake->endpoint, &len);
    snprintf(fake->uri, sizeof fake->uri, "%s", uri);
    fake->data = malloc(size ? size : 1);
    memcpy(fake->data, data, size);
    fake->size = size;
    snprintf(fake->version, sizeof fake->version, "%s", version);
    fake->page_size = 4096;
    fake->range_pages = 2;
    fake->placement = HRW_PLACEMENT_VERSION;
    atomic_init(&fake->view_version, 1);
    atomic_init(&fake->stop, false);
    cr_assert_eq(pthread_create(&fake->thread, NULL, s_fake_thread, fake), 0);
}

static void s_fake_stop(fake_node_t *fake)
{
    atomic_store(&fake->stop, true);
    pthread_join(fake->thread, NULL);
    if (fake->router)
        zmq_close(fake->router);
    zmq_ctx_term(fake->context);
    free(fake->data);
    free(fake->data_v2);
}

/* "127.0.0.1:PORT" of a fake node, for the seeds option. */
static const char *s_seed(const fake_node_t *fake)
{
    return fake->endpoint + strlen("tcp://");
}

static uint64_t s_counter(shoal_client_t *client, const char *name)
{
    char *text = NULL;
    cr_assert_eq(shoal_client_counters_json(client, &text), 0);
    json_t *root = json_loads(text, 0, NULL);
    cr_assert_not_null(root);
    uint64_t value = (uint64_t)json_integer_value(json_object_get(root, name));
    json_decref(root);
    shoal_free(text);
    return value;
}

#define FILE_SIZE (3 * 8192 + 1234) /* ragged: 3 whole ranges and a piece */

static uint8_t *s_pattern(size_t size, uint64_t seed)
{
    uint8_t *data = malloc(size ? size : 1);
    tp_fill_pattern(data, size, seed);
    return data;
}

/* Reads every (offset, length) pair of `uri` into `buf` (at least FILE_SIZE bytes) and checks
 * the bytes against `data` (the file's FILE_SIZE bytes), clipped at the end of the file. */
static void s_check_spans(shoal_client_t *client, const char *uri, const uint8_t *data,
                          uint8_t *buf, const uint64_t *offsets, size_t offset_count,
                          const size_t *lengths, size_t length_count)
{
    for (size_t o = 0; o < offset_count; o++) {
        for (size_t l = 0; l < length_count; l++) {
            memset(buf, 0xee, FILE_SIZE);
            int64_t got = shoal_pread(client, uri, buf, lengths[l], offsets[o]);
            uint64_t want =
                FILE_SIZE - offsets[o] < lengths[l] ? FILE_SIZE - offsets[o] : lengths[l];
            cr_assert_eq(got, (int64_t)want, "off %llu len %zu: %lld %s",
                         (unsigned long long)offsets[o], lengths[l], (long long)got,
                         shoal_last_error());
            cr_assert(memcmp(buf, data + offsets[o], want) == 0, "off %llu len %zu",
                      (unsigned long long)offsets[o], lengths[l]);
        }
    }
}

Test(client_fake, reads_whole_file_and_ranges_across_boundaries)
{
    uint8_t *data = s_pattern(FILE_SIZE, 1);
    fake_node_t fake;
    s_fake_start(&fake, "file:///fake/a", data, FILE_SIZE, "v1");
    shoal_client_options_t options = {
        .seeds = s_seed(&fake), .timeout_ms = 2000, .no_ufs_fallback = true};
    shoal_client_t *client = shoal_client_new(&options);
    cr_assert_not_null(client, "%s", shoal_last_error());

    shoal_stat_t stat;
    cr_assert_eq(shoal_stat(client, "file:///fake/a", &stat), 0, "%s", shoal_last_error());
    cr_assert_eq(stat.size, FILE_SIZE);
    cr_assert_str_eq(stat.version, "v1");
    cr_assert_eq(shoal_stat(client, "file:///fake/missing", &stat), SHOAL_ENOENT);

    uint8_t *buf = malloc(FILE_SIZE + 100);
    int64_t got = shoal_pread(client, "file:///fake/a", buf, FILE_SIZE + 100, 0);
    cr_assert_eq(got, FILE_SIZE, "%lld: %s", (long long)got, shoal_last_error());
    cr_assert(memcmp(buf, data, FILE_SIZE) == 0);

    uint64_t offsets[] = {0, 1, 4095, 4096, 8191, 8192, 8193, 16384 + 17, FILE_SIZE - 1};
    size_t lengths[] = {1, 2, 4096, 8192, 8193, 20000, 3};
    s_check_spans(client, "file:///fake/a", data, buf, offsets, sizeof offsets / sizeof *offsets,
                  lengths, sizeof lengths / sizeof *lengths);
    cr_assert_eq(shoal_pread(client, "file:///fake/a", buf, 10, FILE_SIZE), 0);
    cr_assert_eq(shoal_pread(client, "file:///fake/a", buf, 10, FILE_SIZE + 5), 0);

    /* pread_many: many reads, all in flight together */
    shoal_read_t reads[40];
    uint8_t *bufs = malloc(40 * 5000);
    for (size_t i = 0; i < 40; i++)
        reads[i] = (shoal_read_t){
            .uri = "file:///fake/a", .offset = i * 700, .length = 5000, .buf = bufs + i * 5000};
    cr_assert_eq(shoal_pread_many(client, reads, 40), 0, "%s", shoal_last_error());
    for (size_t i = 0; i < 40; i++) {
        uint64_t left = reads[i].offset >= FILE_SIZE ? 0 : FILE_SIZE - reads[i].offset;
        uint64_t want = left < 5000 ? left : 5000;
        cr_assert_eq(reads[i].result, (int64_t)want);
        cr_assert(memcmp(reads[i].buf, data + reads[i].offset, want) == 0);
    }
    /* a fresh client makes no STAT for the one file of 40 reads: each read's first range is
     * its stat (versionless), the rest ask with the version learnt */
    shoal_client_t *fresh = shoal_client_new(&options);
    int stats_before = atomic_load(&fake.stats);
    cr_assert_eq(shoal_pread_many(fresh, reads, 40), 0, "%s", shoal_last_error());
    cr_assert_eq(atomic_load(&fake.stats) - stats_before, 0, "no STAT before a read");
    cr_assert_eq(s_counter(fresh, "reads_without_stat"), 40);
    for (size_t i = 0; i < 40; i++) {
        uint64_t left = reads[i].offset >= FILE_SIZE ? 0 : FILE_SIZE - reads[i].offset;
        uint64_t want = left < 5000 ? left : 5000;
        cr_assert_eq(reads[i].result, (int64_t)want);
        cr_assert(memcmp(reads[i].buf, data + reads[i].offset, want) == 0);
    }
    shoal_client_destroy(&fresh);
    reads[0].uri = "file:///fake/missing";
    cr_assert_eq(shoal_pread_many(client, reads, 2), SHOAL_ENOENT);
    cr_assert_eq(reads[0].result, SHOAL_ENOENT);
    cr_assert_gt(reads[1].result, 0);

    cr_assert_eq(s_counter(client, "fallback_ufs"), 0);
    cr_assert_geq(s_counter(client, "view_refreshes"), 1);
    cr_assert_gt(s_counter(client, "stat_cache_hits"), 0);
    free(bufs);
    free(buf);
    shoal_client_destroy(&client);
    cr_assert_null(client);
    shoal_client_destroy(&client);
    s_fake_stop(&fake);
    free(data);
}

/* A node that answers in parts (one reply per page): the parts are put together at their
 * spans, for whole files, spans across page and range boundaries and ragged tails. */
Test(client_fake, streamed_replies_are_put_together)
{
    uint8_t *data = s_pattern(FILE_SIZE, 7);
    fake_node_t fake;
    s_fake_start(&fake, "file:///fake/s", data, FILE_SIZE, "v1");
    atomic_store(&fake.mode, FAKE_STREAM);
    shoal_client_options_t options = {
        .seeds = s_seed(&fake), .timeout_ms = 2000, .no_ufs_fallback = true};
    shoal_client_t *client = shoal_client_new(&options);
    cr_assert_not_null(client, "%s", shoal_last_error());
    uint8_t *buf = malloc(FILE_SIZE + 100);
    int64_t got = shoal_pread(client, "file:///fake/s", buf, FILE_SIZE + 100, 0);
    cr_assert_eq(got, FILE_SIZE, "%lld: %s", (long long)got, shoal_last_error());
    cr_assert(memcmp(buf, data, FILE_SIZE) == 0);
    uint64_t offsets[] = {0, 1, 4095, 4096, 8191, 8193, 16384 + 17, FILE_SIZE - 1};
    size_t lengths[] = {1, 4096, 8192, 8193, 20000};
    s_check_spans(client, "file:///fake/s", data, buf, offsets, sizeof offsets / sizeof *offsets,
                  lengths, sizeof lengths / sizeof *lengths);
    cr_assert_gt(s_counter(client, "partial_replies"), 0);
    cr_assert_eq(s_counter(client, "bad_replies"), 0);
    free(buf);
    shoal_client_destroy(&client);
    s_fake_stop(&fake);
    free(data);
}

/* A node of another placement version (here 1: the VIEW reply of a build before placement
 * versions, which has no placement key) is refused with both versions named, and nothing is
 * routed by its view: no STAT, no READ reaches it. */
Test(client_fake, view_of_another_placement_version_is_refused)
{
    uint8_t *data = s_pattern(FILE_SIZE, 9);
    fake_node_t fake;
    s_fake_start(&fake, "file:///fake/p", data, FILE_SIZE, "v1");
    fake.placement = HRW_PLACEMENT_LEGACY; /* set before any VIEW request reaches the thread */
    shoal_client_options_t options = {
        .seeds = s_seed(&fake), .timeout_ms = 2000, .no_ufs_fallback = true};
    shoal_client_t *client = shoal_client_new(&options);
    cr_assert_not_null(client, "%s", shoal_last_error());
    shoal_stat_t stat;
    int rc = shoal_stat(client, "file:///fake/p", &stat);
    cr_assert_lt(rc, 0);
    cr_assert(strstr(shoal_last_error(), "placement version 1"), "%d %s", rc, shoal_last_error());
    cr_assert(strstr(shoal_last_error(), "placement version 2"), "%s", shoal_last_error());
    uint8_t buf[100];
    cr_assert_lt(shoal_pread(client, "file:///fake/p", buf, sizeof buf, 0), 0);
    cr_assert(strstr(shoal_last_error(), "placement version 1"), "%s", shoal_last_error());
    cr_assert_eq(atomic_load(&fake.stats), 0, "a STAT was routed by a refused view");
    cr_assert_eq(atomic_load(&fake.reads), 0, "a READ was routed by a refused view");
    shoal_client_destroy(&client);
    s_fake_stop(&fake);
    free(data);
}

/* The view keeps each member's host_id and local_socket (VIEW keys 9, 10), shoal_members shows
 * them, and client_view_local lists the live members of this host that have a socket. */
Test(client_fake, view_lists_the_members_on_this_host)
{
    cr_assert_eq(setenv("SHOAL_HOST_ID", "host-of-this-test", 1), 0); /* before the first use */
    cr_assert_str_eq(client_host_id(), "host-of-this-test");
    uint8_t *data = s_pattern(FILE_SIZE, 4);
    fake_node_t fake;
    s_fake_start(&fake, "file:///fake/h", data, FILE_SIZE, "v1");
    snprintf(fake.other_endpoint, sizeof fake.other_endpoint, "tcp://127.0.0.1:1");
    snprintf(fake.host_ids[0], sizeof fake.host_ids[0], "host-of-this-test");
    snprintf(fake.sockets[0], sizeof fake.sockets[0], "/tmp/shoal-test/a.sock");
    snprintf(fake.host_ids[1], sizeof fake.host_ids[1], "another-host");
    snprintf(fake.sockets[1], sizeof fake.sockets[1], "/tmp/shoal-test/b.sock");
    shoal_client_options_t options = {.seeds = s_seed(&fake), .timeout_ms = 2000};
    shoal_client_t *client = shoal_client_new(&options);
    cr_assert_not_null(client, "%s", shoal_last_error());

    char *text = NULL;
    cr_assert_eq(shoal_members(client, &text), 0, "%s", shoal_last_error());
    json_t *root = json_loads(text, 0, NULL);
    shoal_free(text);
    json_t *members = json_object_get(root, "members");
    cr_assert_eq(json_array_size(members), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *m = json_array_get(members, i);
        bool first = strcmp(json_string_value(json_object_get(m, "name")), "fake") == 0;
        cr_assert_str_eq(json_string_value(json_object_get(m, "host_id")),
                         fake.host_ids[first ? 0 : 1]);
        cr_assert_str_eq(json_string_value(json_object_get(m, "local_socket")),
                         fake.sockets[first ? 0 : 1]);
    }
    json_decref(root);

    client_ctx_t ctx;
    cr_assert_eq(client_ctx_begin(client, &ctx), 0);
    cr_assert_not_null(ctx.view, "%s", shoal_last_error());
    size_t count = 99;
    const client_local_member_t *local = client_view_local(ctx.view, &count);
    cr_assert_eq(count, 1);
    cr_assert_str_eq(local[0].socket_path, "/tmp/shoal-test/a.sock");
    cr_assert_eq(local[0].node_id[0], 0xaa);
    cr_assert_str_eq(ctx.view->members[local[0].index].name, "fake");

    /* both on this host: both listed; then the other one without a socket, or dead: not */
    snprintf(fake.host_ids[1], sizeof fake.host_ids[1], "host-of-this-test");
    client_view_t *fresh = client_view_acquire(ctx.views, ctx.session, true);
    cr_assert_not_null(fresh);
    local = client_view_local(fresh, &count);
    cr_assert_eq(count, 2);
    cr_assert_str_eq(local[0].socket_path, "/tmp/shoal-test/a.sock");
    cr_assert_str_eq(local[1].socket_path, "/tmp/shoal-test/b.sock");
    cr_assert_eq(local[1].node_id[0], 0xbb);
    client_view_unref(&fresh);
    fake.sockets[1][0] = '\0';
    fresh = client_view_acquire(ctx.views, ctx.session, true);
    cr_assert_not_null(fresh);
    client_view_local(fresh, &count);
    cr_assert_eq(count, 1);
    client_view_unref(&fresh);
    snprintf(fake.sockets[1], sizeof fake.sockets[1], "/tmp/shoal-test/b.sock");
    fake.other_state = MSG_MEMBER_DEAD;
    fresh = client_view_acquire(ctx.views, ctx.session, true);
    cr_assert_not_null(fresh);
    local = client_view_local(fresh, &count);
    cr_assert_eq(count, 1);
    cr_assert_eq(local[0].node_id[0], 0xaa);
    client_view_unref(&fresh);
    client_ctx_end(&ctx);

    shoal_client_destroy(&client);
    s_fake_stop(&fake);
    free(data);
    unsetenv("SHOAL_HOST_ID");
}

/* Every kind of bad reply is an error (no fallback allowed), never wrong bytes. */
Test(client_fake, bad_replies_are_errors_never_wrong_bytes)
{
    uint8_t *data = s_pattern(FILE_SIZE, 2);
    fake_node_t fake;
    s_fake_start(&fake, "file:///fake/b", data, FILE_SIZE, "v1");
    shoal_client_options_t options = {
        .seeds = s_seed(&fake), .timeout_ms = 300, .no_ufs_fallback = true};
    shoal_client_t *client = shoal_client_new(&options);
    cr_assert_not_null(client);
    int modes[] = {FAKE_SHORT_FRAME, FAKE_MISSING_FRAME, FAKE_EXTRA_FRAME, FAKE_WRONG_ID,
                   FAKE_GARBAGE,     FAKE_OTHER_VERSION, FAKE_SHORT_SPAN,  FAKE_SILENT_READS,
                   FAKE_ERROR_BUSY,  FAKE_STREAM_GAP,    FAKE_STREAM_PAST, FAKE_STREAM_CUT,
                   FAKE_STREAM_ERROR};
    uint8_t *buf = malloc(FILE_SIZE);
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
        atomic_store(&fake.mode, modes[m]);
        /* A versionless read takes the version the node names, so "another version" is
         * another than the reader holds: a pinned read (shoalfs's open file). */
        int64_t got = modes[m] == FAKE_OTHER_VERSION
                          ? shoal_pread_stat(client, "file:///fake/b", "v1", buf, 5000, 3000, NULL)
                          : shoal_pread(client, "file:///fake/b", buf, 5000, 3000);
        cr_assert_lt(got, 0, "mode %d returned %lld", modes[m], (long long)got);
        cr_assert_neq(shoal_last_error()[0], '\0', "mode %d: no last error", modes[m]);
        /* and the client recovers once the node behaves */
        atomic_store(&fake.mode, FAKE_GOOD);
        got = shoal_pread(client, "file:///fake/b", buf, 5000, 3000);
        cr_assert_eq(got, 5000, "after mode %d: %lld %s", modes[m], (long long)got,
                     shoal_last_error());
        cr_assert(memcmp(buf, data + 3000, 5000) == 0, "after mode %d", modes[m]);
    }
    cr_assert_gt(s_counter(client, "bad_replies"), 0);
    cr_assert_gt(s_counter(client, "timeouts"), 0);
    free(buf);
    shoal_client_destroy(&client);
    s_fake_stop(&fake);
    free(data);
}

/* Placement is HRW over random ports and a random temp dir: with the 4 ranges of FILE_SIZE a
 * given node owned none of them in 1 run of 16 (2^-4), so tests that need every node to own a
 * range read this size: 64 ranges (2^-64). */
#define SILENT_FILE_SIZE (63 * 8192 + 1234)

/* A silent node: the read falls through to the next member (NO_CACHE or next owner), and
 * with no other member answering, to the UFS, counting each fallback. */
Test(client_fake, silent_node_falls_back_to_other_node_then_ufs)
{
    char *dir = tp_tempdir("client");
    cr_assert_not_null(dir);
    char path[TP_PATH_MAX], uri[TP_PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/f.bin", dir);
    snprintf(uri, sizeof uri, "file://%s", path);
    uint8_t *data = s_pattern(SILENT_FILE_SIZE, 3);
    cr_assert_eq(tp_write_file(path, data, SILENT_FILE_SIZE), 0);
    ufs_t *ufs = ufs_new(NULL);
    ufs_stat_t real;
    cr_assert_eq(ufs_stat(ufs, uri, &real), 0);
    ufs_destroy(&ufs);

    fake_node_t good, silent;
    s_fake_start(&good, uri, data, SILENT_FILE_SIZE, real.version);
    s_fake_start(&silent, uri, data, SILENT_FILE_SIZE, real.version);
    atomic_store(&silent.mode, FAKE_SILENT_READS);
    /* both list both, so every range has the silent node or the good one first */
    snprintf(good.other_endpoint, sizeof good.other_endpoint, "%s", silent.endpoint);
    snprintf(silent.other_endpoint, sizeof silent.other_endpoint, "%s", good.endpoint);

    shoal_client_options_t options = {.seeds = s_seed(&good), .timeout_ms = 300};
    shoal_client_t *client = shoal_client_new(&options);
    cr_assert_not_null(client);
    uint8_t *buf = malloc(SILENT_FILE_SIZE);
    int64_t got = shoal_pread(client, uri, buf, SILENT_FILE_SIZE, 0);
    cr_assert_eq(got, SILENT_FILE_SIZE, "%s", shoal_last_error());
    cr_assert(memcmp(buf, data, SILENT_FILE_SIZE) == 0);
    cr_assert_gt(atomic_load(&silent.reads), 0, "the silent node owns some range");
    cr_assert_gt(s_counter(client, "timeouts"), 0);
    cr_assert_gt(s_counter(client, "fallback_next_owner"), 0);
    cr_assert_eq(s_counter(client, "fallback_ufs"), 0);

    /* now both are silent: the UFS serves */
    atomic_store(&good.mode, FAKE_SILENT_READS);
    memset(buf, 0, SILENT_FILE_SIZE);
    got = shoal_pread(client, uri, buf, SILENT_FILE_SIZE, 0);
    cr_assert_eq(got, SILENT_FILE_SIZE, "%s", shoal_last_error());
    cr_assert(memcmp(buf, data, SILENT_FILE_SIZE) == 0);
    cr_assert_gt(s_counter(client, "fallback_ufs"), 0);

    char *json = NULL;
    cr_assert_eq(shoal_client_counters_json(client, &json), 0);
    cr_assert(strstr(json, "\"fallback_ufs\"") != NULL);
    shoal_free(json);
    free(buf);
    shoal_client_destroy(&client);
    s_fake_stop(&good);
    s_fake_stop(&silent);
    free(data);
    tp_rmtree(dir);
    free(dir);
}

/* Starts two fake nodes serving `data` as `uri`, each listing the other in its view. */
static void s_fake_pair(fake_node_t *a, fake_node_t *b, const char *uri, const uint8_t *data,
                        size_t size)
{
    s_fake_start(a, uri, data, size, "v1");
    s_fake_start(b, uri, data, size, "v1");
    snprintf(a->other_endpoint, sizeof a->other_endpoint, "%s", b->endpoint);
    snprintf(b->other_endpoint, sizeof b->other_endpoint, "%s", a->endpoint);
}

/* A node that closes its socket while reads wait on it (what kill -9 looks like to the
 * client): with timeout_ms 30 s and no UFS, the read still succeeds through the other node,
 * at once. No timeout is counted; a disconnect is. */
Test(client_fake, closed_node_fails_over_at_once_without_timeout)
{
    uint8_t *data = s_pattern(SILENT_FILE_SIZE, 11);
    fake_node_t good, closer;
    s_fake_pair(&good, &closer, "file:///fake/c", data, SILENT_FILE_SIZE);
    atomic_store(&closer.mode, FAKE_CLOSE_ON_READ);
    shoal_client_options_t options = {
        .seeds = s_seed(&good), .timeout_ms = 30000, .no_ufs_fallback = true};
    shoal_client_t *client = shoal_client_new(&options);
    cr_assert_not_null(client);
    uint8_t *buf = malloc(SILENT_FILE_SIZE);
    int64_t start = tp_now_ms();
    int64_t got = shoal_pread(client, "file:///fake/c", buf, SILENT_FILE_SIZE, 0);
    int64_t took = tp_now_ms() - start;
    cr_assert_eq(got, SILENT_FILE_SIZE, "%lld: %s", (long long)got, shoal_last_error());
    cr_assert(memcmp(buf, data, SILENT_FILE_SIZE) == 0);
    cr_assert(atomic_load(&closer.closed), "the closing node owns some range");
    cr_assert_lt(took, 10000, "the read waited %lld ms: failover waited for a timeout",
                 (long long)took);
    cr_assert_eq(s_counter(client, "timeouts"), 0);
    cr_assert_gt(s_counter(client, "disconnects"), 0);
    cr_assert_gt(s_counter(client, "fallback_next_owner"), 0);
    cr_assert_eq(s_counter(client, "fallback_ufs"), 0);

    /* the closed node stays gone: later reads skip it or find it refusing, still no timeout */
    for (int i = 0; i < 3; i++) {
        memset(buf, 0, SILENT_FILE_SIZE);
        got = shoal_pread(client, "file:///fake/c", buf, SILENT_FILE_SIZE, 0);
        cr_assert_eq(got, SILENT_FILE_SIZE, "%s", shoal_last_error());
        cr_assert(memcmp(buf, data, SILENT_FILE_SIZE) == 0);
    }
    cr_assert_eq(s_counter(client, "timeouts"), 0);
    free(buf);
    shoal_client_destroy(&client);
    s_fake_stop(&good);
    s_fake_stop(&closer);
    free(data);
}

/* A node that is slow but connected is not failed by the connection watch: it answers after
 * longer than the heartbeat timeout (its ZeroMQ I/O thread still answers PINGs), within
 * timeout_ms, and the read is served by it with no timeout and no disconnect. */
Test(client_fake, slow_connected_node_is_not_failed)
{
    uint8_t *data = s_pattern(FILE_SIZE, 12);
    fake_node_t fake;
    s_fake_start(&fake, "file:///fake/slow", data, FILE_SIZE, "v1");
    fake.slow_ms = CLIENT_HEARTBEAT_IVL_MS + CLIENT_HEARTBEAT_TIMEOUT_MS;
    atomic_store(&fake.mode, FAKE_SLOW_READS);
    shoal_client_options_t options = {
        .seeds = s_seed(&fake), .timeout_ms = 10000, .no_ufs_fallback = true};
    shoal_client_t *client = shoal_client_new(&options);
    uint8_t buf[5000];
    cr_assert_eq(shoal_pread(client, "file:///fake/slow", buf, sizeof buf, 100), 5000, "%s",
                 shoal_last_error());
    cr_assert(memcmp(buf, data + 100, sizeof buf) == 0);
    cr_assert_eq(atomic_load(&fake.reads), 1, "one READ, never sent again");
    cr_assert_eq(s_counter(client, "timeouts"), 0);
    cr_assert_eq(s_counter(client, "disconnects"), 0);
    cr_assert_eq(s_counter(client, "retries"), 0);
    shoal_client_destroy(&client);
    s_fake_stop(&fake);
    free(data);
}

/* A peer that accepts TCP but never speaks (a wedged host; the kernel completes the handshake
 * from the listen backlog): the client drops the link after the handshake bound and fails
 * over, well before timeout_ms. */
Test(client_fake, mute_peer_fails_over_before_timeout)
{
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(listener, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(listener, (struct sockaddr *)&address, sizeof address), 0);
    cr_assert_eq(listen(listener, 64), 0);
    socklen_t address_len = sizeof address;
    cr_assert_eq(getsockname(listener, (struct sockaddr *)&address, &address_len), 0);

    uint8_t *data = s_pattern(SILENT_FILE_SIZE, 13);
    fake_node_t good;
    s_fake_start(&good, "file:///fake/m", data, SILENT_FILE_SIZE, "v1");
    snprintf(good.other_endpoint, sizeof good.other_endpoint, "tcp://127.0.0.1:%d",
             ntohs(address.sin_port));
    shoal_client_options_t options = {
        .seeds = s_seed(&good), .timeout_ms = 30000, .no_ufs_fallback = true};
    shoal_client_t *client = shoal_client_new(&options);
    uint8_t *buf = malloc(SILENT_FILE_SIZE);
    int64_t start = tp_now_ms();
    int64_t got = shoal_pread(client, "file:///fake/m", buf, SILENT_FILE_SIZE, 0);
    int64_t took = tp_now_ms() - start;
    cr_assert_eq(got, SILENT_FILE_SIZE, "%lld: %s", (long long)got, shoal_last_error());
    cr_assert(memcmp(buf, data, SILENT_FILE_SIZE) == 0);
    cr_assert_lt(took, 15000, "the read waited %lld ms", (long long)took);
    cr_assert_eq(s_counter(client, "timeouts"), 0);
    cr_assert_gt(s_counter(client, "disconnects"), 0);
    free(buf);
    shoal_client_destroy(&client);
    s_fake_stop(&good);
    close(listener);
    free(data);
}

/* No node at all: the seeds do not answer; reads and stats come from the UFS. */
Test(client_fake, no_node_reads_from_ufs)
{
    char *dir = tp_tempdir("client");
    char path[TP_PATH_MAX], uri[TP_PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/g.bin", dir);
    snprintf(uri, sizeof uri, "file://%s", path);
    uint8_t *data = s_pattern(5000, 4);
    cr_assert_eq(tp_write_file(path, data, 5000), 0);
    char seed[32];
    snprintf(seed, sizeof seed, "127.0.0.1:%d", tp_free_port());
    shoal_client_options_t options = {.seeds = seed, .timeout_ms = 200};
    shoal_client_t *client = shoal_client_new(&options);
    uint8_t buf[5000];
    cr_assert_eq(shoal_pread(client, uri, buf, sizeof buf, 0), 5000, "%s", shoal_last_error());
    cr_assert(memcmp(buf, data, 5000) == 0);
    cr_assert_gt(s_counter(client, "fallback_ufs"), 0);
    shoal_listing_t *listing = NULL;
    char dir_uri[TP_PATH_MAX + 8];
    snprintf(dir_uri, sizeof dir_uri, "file://%s", dir);
    cr_assert_eq(shoal_list(client, dir_uri, true, &listing), 0, "%s", shoal_last_error());
    cr_assert_eq(shoal_listing_count(listing), 1);
    cr_assert_str_eq(shoal_listing_uri(listing, 0), uri);
    shoal_listing_destroy(&listing);
    char *json = NULL;
    cr_assert_lt(shoal_stats(client, &json), 0);
    shoal_client_destroy(&client);

    options.no_ufs_fallback = true;
    client = shoal_client_new(&options);
    cr_assert_eq(shoal_pread(client, uri, buf, sizeof buf, 0), SHOAL_EUNAVAIL);
    shoal_client_destroy(&client);
    free(data);
    tp_rmtree(dir);
    free(dir);
}

Test(client_fake, bad_options_are_refused)
{
    shoal_client_options_t options = {.seeds = ""};
    cr_assert_null(shoal_client_new(&options));
    cr_assert_neq(shoal_last_error()[0], '\0');
    options.seeds = "localhost";
    cr_assert_null(shoal_client_new(&options));
    options.seeds = "localhost:x";
    cr_assert_null(shoal_client_new(&options));
    cr_assert_null(shoal_client_new(NULL));
    options.seeds = " a:1 , tcp://b:2 ";
    shoal_client_t *client = shoal_client_new(&options);
    cr_assert_not_null(client, "%s", shoal_last_error());
    cr_assert_eq(client->seed_count, 2);
    cr_assert_str_eq(client->seeds[0], "tcp://a:1");
    cr_assert_str_eq(client->seeds[1], "tcp://b:2");
    shoal_client_destroy(&client);
}

/* ---- threads and fork against the fake node ---- */

typedef struct reader_arg {
    shoal_client_t *client; /* shared */
    const uint8_t *data;    /* expected bytes */
    unsigned seed;          /* per thread */
    int failures;           /* out */
} reader_arg_t;

static void *s_reader(void *arg)
{
    reader_arg_t *reader = arg;
    uint8_t *buf = malloc(FILE_SIZE);
    for (int i = 0; i < 50; i++) {
        uint64_t offset = (uint64_t)rand_r(&reader->seed) % FILE_SIZE;
        size_t length = (size_t)rand_r(&reader->seed) % 20000 + 1;
        int64_t got = shoal_pread(reader->client, "file:///fake/t", buf, length, offset);
        uint64_t want = FILE_SIZE - offset < length ? FILE_SIZE - offset : length;
        if (got != (int64_t)want || memcmp(buf, reader->data + offset, want) != 0)
            reader->failures++;
    }
    free(buf);
    return NULL;
}

Test(client_fake, many_threads_one_client)
{
    uint8_t *data = s_pattern(FILE_SIZE, 5);
    fake_node_t fake;
    s_fake_start(&fake, "file:///fake/t", data, FILE_SIZE, "v1");
    shoal_client_options_t options = {.seeds = s_seed(&fake), .no_ufs_fallback = true};
    shoal_client_t *client = shoal_client_new(&options);
    pthread_t threads[8];
    reader_arg_t args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (reader_arg_t){.client = client, .data = data, .seed = (unsigned)i + 1};
        pthread_create(&threads[i], NULL, s_reader, &args[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        cr_assert_eq(args[i].failures, 0, "thread %d", i);
    }
    shoal_client_destroy(&client);
    s_fake_stop(&fake);
    free(data);
}

/* The parent uses the client (so its context and sockets exist), then forks children that
 * read through the same client object and destroy it; the parent keeps reading after. */
Test(client_fake, forked_children_get_working_sockets)
{
    uint8_t *data = s_pattern(FILE_SIZE, 6);
    fake_node_t fake;
    s_fake_start(&fake, "file:///fake/t", data, FILE_SIZE, "v1");
    shoal_client_options_t options = {
        .seeds = s_seed(&fake), .no_ufs_fallback = true, .timeout_ms = 5000};
    shoal_client_t *client = shoal_client_new(&options);
    uint8_t *buf = malloc(FILE_SIZE);
    cr_assert_eq(shoal_pread(client, "file:///fake/t", buf, FILE_SIZE, 0), FILE_SIZE);
    pid_t children[4];
    for (int c = 0; c < 4; c++) {
        children[c] = fork();
        cr_assert_geq(children[c], 0);
        if (children[c] == 0) {
            reader_arg_t arg = {.client = client, .data = data, .seed = (unsigned)c + 10};
            s_reader(&arg);
            shoal_client_destroy(&client); /* must not touch the parent's context */
            _exit(arg.failures == 0 ? 0 : 1);
        }
    }
    for (int c = 0; c < 4; c++) {
        int status = 0;
        int64_t deadline = tp_now_ms() + 30000;
        pid_t done = 0;
        while ((done = waitpid(children[c], &status, WNOHANG)) == 0 && tp_now_ms() < deadline)
            usleep(10000);
        if (done == 0)
            kill(children[c], SIGKILL);
        cr_assert_eq(done, children[c], "child %d hung", c);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed", c);
    }
    cr_assert_eq(shoal_pread(client, "file:///fake/t", buf, FILE_SIZE, 0), FILE_SIZE);
    cr_assert(memcmp(buf, data, FILE_SIZE) == 0);
    free(buf);
    shoal_client_destroy(&client);
    s_fake_stop(&fake);
    free(data);
}

/* A reply with a newer view_version makes the client fetch the view again. */
Test(client_fake, newer_view_version_refreshes_the_view)
{
    uint8_t *data = s_pattern(FILE_SIZE, 7);
    fake_node_t fake;
    s_fake_start(&fake, "file:///fake/v", data, FILE_SIZE, "v1");
    shoal_client_options_t options = {.seeds = s_seed(&fake), .no_ufs_fallback = true};
    shoal_client_t *client = shoal_client_new(&options);
    uint8_t buf[100];
    cr_assert_eq(shoal_pread(client, "file:///fake/v", buf, sizeof buf, 0), 100);
    cr_assert_eq(s_counter(client, "view_refreshes"), 1);
    cr_assert_eq(shoal_pread(client, "file:///fake/v", buf, sizeof buf, 0), 100);
    cr_assert_eq(s_counter(client, "view_refreshes"), 1, "same version: no refetch");
    atomic_store(&fake.view_version, 5);
    int64_t deadline = tp_now_ms() + 5000;
    while (s_counter(client, "view_refreshes") < 2 && tp_now_ms() < deadline)
        cr_assert_eq(shoal_pread(client, "file:///fake/v", buf, sizeof buf, 0), 100);
    cr_assert_eq(s_counter(client, "view_refreshes"), 2);
    char *json = NULL;
    cr_assert_eq(shoal_members(client, &json), 0);
    cr_assert(strstr(json, "\"view_version\":5") != NULL, "%s", json);
    shoal_free(json);
    shoal_client_destroy(&client);
    s_fake_stop(&fake);
    free(data);
}

/* The file changes while the client still trusts its cached stat: the node answers ESTALE,
 * the client stats again past its cache and reads the whole span again from the new version
 * (never a mix of the two). */
Test(client_fake, estale_restats_and_reads_the_new_version)
{
    uint8_t *data = s_pattern(FILE_SIZE, 8);
    fake_node_t fake;
    s_fake_start(&fake, "file:///fake/s", data, FILE_SIZE, "v1");
    fake.data_v2 = s_pattern(FILE_SIZE, 9);
    shoal_client_options_t options = {
        .seeds = s_seed(&fake), .no_ufs_fallback = true, .metadata_ttl_ms = 60000};
    shoal_client_t *client = shoal_client_new(&options);
    uint8_t *buf = malloc(FILE_SIZE);
    cr_assert_eq(shoal_pread(client, "file:///fake/s", buf, FILE_SIZE, 0), FILE_SIZE);
    cr_assert(memcmp(buf, data, FILE_SIZE) == 0);
    atomic_store(&fake.changed, true);
    cr_assert_eq(shoal_pread(client, "file:///fake/s", buf, FILE_SIZE, 0), FILE_SIZE, "%s",
                 shoal_last_error());
    cr_assert(memcmp(buf, fake.data_v2, FILE_SIZE) == 0, "all bytes from the new version");
    cr_assert_eq(s_counter(client, "stale_retries"), 1);
    shoal_stat_t stat;
    cr_assert_eq(shoal_stat(client, "file:///fake/s", &stat), 0);
    cr_assert_str_eq(stat.version, "v2", "the re-stat refreshed the cache");
    free(buf);
    shoal_client_destroy(&client);
    s_fake_stop(&fake);
    free(data);
}

/* A read with no stat: the first range goes versionless (size unknown) to its owner, and only
 * once it answered the other ranges go out with the version and size it named. No STAT. */
Test(client_fake, first_range_is_the_stat)
{
    uint8_t *data = s_pattern(FILE_SIZE, 3);
    fake_node_t fake;
    s_fake_start(&fake, "file:///fake/f", data, FILE_SIZE, "v1");
    shoal_client_options_t options = {
        .seeds = s_seed(&fake), .no_ufs_fallback = true, .metadata_ttl_ms = 60000};
    shoal_client_t *client = shoal_client_new(&options);
    uint8_t *buf = malloc(FILE_SIZE + 100);
    shoal_stat_t stat;
    cr_assert_eq(shoal_pread_stat(client, "file:///fake/f", NULL, buf, FILE_SIZE + 100, 0, &stat),
                 FILE_SIZE, "%s", shoal_last_error());
    cr_assert(memcmp(buf, data, FILE_SIZE) == 0);
    cr_assert_eq(stat.size, FILE_SIZE);
    cr_assert_str_eq(stat.version, "v1");
    cr_assert_eq(atomic_load(&fake.stats), 0, "no STAT before a read");
    cr_assert_eq(atomic_load(&fake.logged), 4, "one READ per range");
    cr_assert(fake.log[0].versionless && fake.log[0].offset == 0);
    cr_assert_eq(fake.log[0].file_size, MSG_SIZE_UNKNOWN);
    for (int i = 1; i < 4; i++) {
        cr_assert_str_eq(fake.log[i].version, "v1", "range %d", i);
        cr_assert_eq(fake.log[i].file_size, FILE_SIZE, "range %d", i);
    }
    cr_assert_eq(s_counter(client, "reads_without_stat"), 1);
    /* warm: the stat the read learnt is cached, every range carries it */
    cr_assert_eq(shoal_pread(client, "file:///fake/f", buf, FILE_SIZE, 0), FILE_SIZE);
    cr_assert(memcmp(buf, data, FILE_SIZE) == 0);
    cr_assert_eq(atomic_load(&fake.logged), 8);
    for (int i = 4; i < 8; i++)
        cr_assert(!fake.log[i].versionless && fake.log[i].file_size == FILE_SIZE);
    cr_assert_eq(s_counter(client, "reads_without_stat"), 1);
    cr_assert_eq(shoal_stat(client, "file:///fake/f", &stat), 0);
    cr_assert_eq(atomic_load(&fake.stats), 0, "the read's stat answers shoal_stat");
    shoal_client_destroy(&client);

    /* a cold read that starts in range 2: that range goes first; a small read is one READ */
    client = shoal_client_new(&options);
    cr_assert_eq(shoal_pread(client, "file:///fake/f", buf, 100, 2 * 8192 + 5), 100);
    cr_assert(memcmp(buf, data + 2 * 8192 + 5, 100) == 0);
    cr_assert_eq(atomic_load(&fake.logged), 9);
    cr_assert(fake.log[8].versionless && fake.log[8].offset == 2 * 8192 + 5);
    shoal_client_destroy(&client);
    /* cold past the end: the reply's size says so, 0 bytes */
    client = shoal_client_new(&options);
    cr_assert_eq(shoal_pread(client, "file:///fake/f", buf, 10, FILE_SIZE + 5), 0, "%s",
                 shoal_last_error());
    cr_assert_eq(shoal_pread(client, "file:///fake/missing", buf, 10, 0), SHOAL_ENOENT);
    cr_assert_eq(atomic_load(&fake.stats), 0);
    free(buf);
    shoal_client_destroy(&client);
    s_fake_stop(&fake);
    free(data);
}

/* The file is replaced after its first range answered: a later range gets ESTALE, and the
 * whole read starts over (first range versionless again), so every byte is of the new
 * version. A read of a pinned version fails instead, "changed under the reader". */
Test(client_fake, change_between_ranges_restarts_the_whole_read)
{
    uint8_t *data = s_pattern(FILE_SIZE, 4);
    fake_node_t fake;
    s_fake_start(&fake, "file:///fake/c", data, FILE_SIZE, "v1");
    fake.data_v2 = s_pattern(FILE_SIZE, 5);
    fake.change_after = 1; /* set before any READ reaches the thread */
    shoal_client_options_t options = {
        .seeds = s_seed(&fake), .no_ufs_fallback = true, .metadata_ttl_ms = 60000};
    shoal_client_t *client = shoal_client_new(&options);
    uint8_t *buf = malloc(FILE_SIZE);
    shoal_stat_t stat;
    cr_assert_eq(shoal_pread_stat(client, "file:///fake/c", NULL, buf, FILE_SIZE, 0, &stat),
                 FILE_SIZE, "%s", shoal_last_error());
    cr_assert(memcmp(buf, fake.data_v2, FILE_SIZE) == 0, "every byte of the new version");
    cr_assert_str_eq(stat.version, "v2");
    cr_assert_eq(s_counter(client, "change_restarts"), 1);
    cr_assert_eq(s_counter(client, "reads_without_stat"), 2);
    int logged = atomic_load(&fake.logged);
    cr_assert_eq(logged, 8, "4 ranges, 3 of them refused, then 4 again: %d", logged);
    cr_assert(fake.log[0].versionless);
    int restarts = 0;
    for (int i = 1; i < logged; i++)
        restarts += fake.log[i].versionless;
    cr_assert_eq(restarts, 1);
    cr_assert_eq(atomic_load(&fake.stats), 0);
    /* pinned to the old version: an error, no bytes of the new one */
    int64_t got = shoal_pread_stat(client, "file:///fake/c", "v1", buf, FILE_SIZE, 0, NULL);
    cr_assert_eq(got, SHOAL_ESTALE);
    cr_assert(strstr(shoal_last_error(), "changed under the reader"), "%s", shoal_last_error());
    /* pinned to the current one: read */
    cr_assert_eq(shoal_pread_stat(client, "file:///fake/c", "v2", buf, FILE_SIZE, 0, NULL),
                 FILE_SIZE);
    cr_assert(memcmp(buf, fake.data_v2, FILE_SIZE) == 0);
    free(buf);
    shoal_client_destroy(&client);
    s_fake_stop(&fake);
    free(data);
}

/* glibc's malloc: once a process has client state, blocks of a READ reply's size (several
 * 1 MiB frames) come from the heap and stay there when freed, instead of being mapped, or
 * trimmed and faulted in again, per reply (client.c s_malloc_prime). Seen through mallinfo2's
 * count of mmapped blocks. Not under ASan, whose allocator has no such thresholds. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_HAS_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TEST_HAS_ASAN 1
#endif
Test(client_malloc, reply_sized_blocks_come_from_the_heap)
{
#if defined(__GLIBC__) && !defined(TEST_HAS_ASAN)
    /* A fresh process maps a 1 MiB block (and its free lifts the thresholds to 1 MiB). */
    size_t mapped = mallinfo2().hblks;
    void *volatile small = malloc(1 << 20);
    bool default_thresholds = mallinfo2().hblks == mapped + 1;
    free(small);
    if (!default_thresholds)
        cr_skip_test("this process's malloc thresholds were changed before the test");
    /* Then an 8 MiB block would be mapped too; with client state it is not. */
    shoal_client_options_t options = {.seeds = "127.0.0.1:1", .no_ufs_fallback = true};
    shoal_client_t *client = shoal_client_new(&options);
    cr_assert_not_null(client_proc_get(client));
    mapped = mallinfo2().hblks;
    void *volatile reply = malloc(8 << 20);
    cr_assert_eq(mallinfo2().hblks, mapped, "an 8 MiB block came from the heap");
    free(reply);
    shoal_client_destroy(&client);
#else
    cr_skip_test("glibc malloc only");
#endif
}

/* ---- the fake local node (short-circuit reads, local.c) ----
 * A thread that answers LOCAL_HELLO and LOCATE on a SEQPACKET socket as node 0xaa.. (the fake
 * ZeroMQ node's id in its view), from a data file of one generation that holds the file's pages
 * at an offset of their own, passing that file's descriptor once per connection. Modes make it
 * refuse, corrupt a page, hold only some pages, or attach a descriptor too many. */

enum fake_local_mode {
    LOCAL_GOOD = 0,
    LOCAL_REFUSE,     /* ERROR EACCES at accept, then close (a uid not admitted) */
    LOCAL_EXTRA_FD,   /* two descriptors attached, one listed */
    LOCAL_NO_VERSION, /* version "" in every LOCATE_REP: the node cannot name one */
};

#define LOCAL_CHUNK_SHIFT 12    /* 4 KiB chunks: 4 per page of LOCAL_PAGE */
#define LOCAL_PAGE        16384 /* the fake's page size in these tests */
#define LOCAL_BASE        777   /* the data file holds page i at LOCAL_BASE + i * LOCAL_PAGE */
#define LOCAL_FILE        (3 * 2 * LOCAL_PAGE + 1234) /* 3 ranges of 2 pages and a piece */

typedef struct fake_local {
    char dir[256];             /* temp dir of the socket and the data file */
    char path[300];            /* socket path */
    char data_path[300];       /* the generation's data file */
    int listener;              /* listening socket */
    pthread_t thread;          /* serving thread */
    atomic_bool stop;          /* ask the thread to end */
    _Atomic int mode;          /* enum fake_local_mode */
    _Atomic int accepts;       /* connections accepted */
    _Atomic int locates;       /* LOCATE requests answered */
    _Atomic uint64_t held;     /* bit i: page i is held (located) */
    _Atomic uint64_t lease_ms; /* sent in HELLO */
    atomic_bool gone_next;     /* the next LOCATE_REP says gen 1 is gone (and passes no page) */
    _Atomic uint64_t store_id; /* sent in HELLO and LOCATE_REP */
    const fake_node_t *fake;   /* the file: uri, data, size, version, page size */
} fake_local_t;

static void s_local_send(int sock, const msg_t *m, const int *fds, size_t fd_count)
{
    msg_buf_t out;
    msg_buf_init(&out);
    cr_assert_eq(msg_encode(m, &out), 0, "%s", shoal_last_error());
    struct iovec iov = {.iov_base = out.data, .iov_len = out.len};
    union {
        char space[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } control;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd_count) {
        mh.msg_control = control.space;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * fd_count);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * fd_count);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * fd_count);
    }
    sendmsg(sock, &mh, MSG_NOSIGNAL);
    msg_buf_fini(&out);
}

/* Answers one datagram of a connection; `sent` says whether its descriptor went out. */
static void s_local_answer(fake_local_t *local, int sock, const msg_t *request, bool *sent)
{
    const fake_node_t *fake = local->fake;
    msg_t reply;
    if (request->header.type == MSG_LOCAL_HELLO_REQ) {
        msg_init(&reply, MSG_LOCAL_HELLO_REP, request->header.request_id, 0);
        memset(reply.body.local_hello_reply.node_id, 0xaa, 16);
        reply.body.local_hello_reply.store_id = atomic_load(&local->store_id);
        reply.body.local_hello_reply.host_id = "";
        reply.body.local_hello_reply.page_size = fake->page_size;
        reply.body.local_hello_reply.lease_ms = atomic_load(&local->lease_ms);
        s_local_send(sock, &reply, NULL, 0);
        return;
    }
    cr_assert_eq(request->header.type, MSG_LOCATE_REQ);
    atomic_fetch_add(&local->locates, 1);
    const msg_locate_request_t *rq = &request->body.locate_request;
    if (strcmp(rq->uri, fake->uri) != 0) {
        msg_error(&reply, request->header.request_id, 0, SHOAL_ENOENT, "no such file");
        s_local_send(sock, &reply, NULL, 0);
        return;
    }
    int mode = atomic_load(&local->mode);
    if (atomic_exchange(&local->gone_next, false)) {
        static const uint64_t gone = 1;
        msg_init(&reply, MSG_LOCATE_REP, request->header.request_id, 0);
        reply.body.locate_reply = (msg_locate_reply_t){.file_size = fake->size,
                                                       .version = fake->version,
                                                       .store_id = atomic_load(&local->store_id),
                                                       .gone_count = 1,
                                                       .gone_gens = &gone};
        s_local_send(sock, &reply, NULL, 0);
        *sent = false; /* a new generation 1 would be passed again */
        return;
    }
    static msg_local_page_t pages[MSG_LOCATE_PAGES_MAX];
    static uint64_t sums[MSG_LOCATE_PAGES_MAX][LOCAL_PAGE >> LOCAL_CHUNK_SHIFT];
    uint32_t page_count = 0;
    uint64_t ps = fake->page_size;
    uint64_t end = rq->offset + rq->length < fake->size ? rq->offset + rq->length : fake->size;
    uint64_t held = atomic_load(&local->held);
    for (uint64_t i = rq->offset / ps; rq->offset < end && i * ps < end; i++) {
        if (i >= 64 || !(held & (1ull << i)) || page_count == MSG_LOCATE_PAGES_MAX)
            continue;
        uint64_t size = fake->size - i * ps < ps ? fake->size - i * ps : ps;
        uint32_t chunks = (uint32_t)((size + (1u << LOCAL_CHUNK_SHIFT) - 1) >> LOCAL_CHUNK_SHIFT);
        for (uint32_t c = 0; c < chunks; c++) {
            uint64_t lo = (uint64_t)c << LOCAL_CHUNK_SHIFT;
            uint64_t hi =
                lo + (1u << LOCAL_CHUNK_SHIFT) < size ? lo + (1u << LOCAL_CHUNK_SHIFT) : size;
            sums[page_count][c] = XXH3_64bits_withSeed(fake->data + i * ps + lo, hi - lo,
                                                       1000 + i + c); /* seed + c */
        }
        pages[page_count] = (msg_local_page_t){.index = i,
                                               .gen = 1,
                                               .offset = LOCAL_BASE + i * ps,
                                               .size = size,
                                               .chunk_shift = LOCAL_CHUNK_SHIFT,
                                               .seed = 1000 + i,
                                               .sum_count = chunks,
                                               .sums = sums[page_count]};
        page_count++;
    }
    msg_init(&reply, MSG_LOCATE_REP, request->header.request_id, 0);
    static const uint64_t gen_one = 1;
    reply.body.locate_reply = (msg_locate_reply_t){
        .file_size = fake->size,
        .version = mode == LOCAL_NO_VERSION ? "" : fake->version,
        .mtime = 7,
        .store_id = atomic_load(&local->store_id),
        .page_count = page_count,
        .pages = pages,
        .fd_count = *sent ? 0 : 1,
        .fd_gens = &gen_one,
    };
    int fds[2] = {-1, -1};
    size_t fd_count = 0;
    if (!*sent) {
        fds[0] = open(local->data_path, O_RDONLY | O_CLOEXEC);
        fds[1] = open(local->data_path, O_RDONLY | O_CLOEXEC);
        fd_count = mode == LOCAL_EXTRA_FD ? 2 : 1;
        *sent = true;
    }
    s_local_send(sock, &reply, fds, fd_count);
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

static void *s_local_thread(void *arg)
{
    fake_local_t *local = arg;
    struct pollfd pfds[9];
    bool sent[9] = {false};
    size_t count = 1;
    pfds[0] = (struct pollfd){.fd = local->listener, .events = POLLIN};
    uint8_t *in = malloc(MSG_LOCAL_DATAGRAM_MAX);
    while (!atomic_load(&local->stop)) {
        if (poll(pfds, count, 20) <= 0)
            continue;
        if ((pfds[0].revents & POLLIN) && count < 9) {
            int sock = accept(local->listener, NULL, NULL);
            if (sock >= 0) {
                atomic_fetch_add(&local->accepts, 1);
                if (atomic_load(&local->mode) == LOCAL_REFUSE) {
                    /* as shoald does: ERROR and close at once, the client's HELLO maybe unread
                     * (the client then sees ECONNRESET before the ERROR) */
                    msg_t error;
                    msg_error(&error, 0, 0, SHOAL_EACCES, "uid 0 is not in group nobody");
                    s_local_send(sock, &error, NULL, 0);
                    close(sock);
                } else {
                    sent[count] = false;
                    pfds[count++] = (struct pollfd){.fd = sock, .events = POLLIN};
                }
            }
        }
        for (size_t i = 1; i < count; i++) {
            if (!(pfds[i].revents & (POLLIN | POLLHUP)))
                continue;
            ssize_t got = recv(pfds[i].fd, in, MSG_LOCAL_DATAGRAM_MAX, 0);
            msg_t request;
            if (got > 0 && msg_decode(in, (size_t)got, &request) == 0) {
                s_local_answer(local, pfds[i].fd, &request, &sent[i]);
                msg_fini(&request);
                continue;
            }
            close(pfds[i].fd); /* closed by the client: drop it */
            pfds[i] = pfds[count - 1];
            sent[i] = sent[count - 1];
            count--;
            i--;
        }
    }
    for (size_t i = 1; i < count; i++)
        close(pfds[i].fd);
    free(in);
    return NULL;
}

/* Starts a fake local node for `fake`'s file (all pages held) and points SHOAL_LOCAL at it. */
static void s_local_start(fake_local_t *local, const fake_node_t *fake)
{
    memset(local, 0, sizeof *local);
    local->fake = fake;
    char *dir = tp_tempdir("local");
    cr_assert_not_null(dir);
    snprintf(local->dir, sizeof local->dir, "%s", dir);
    free(dir);
    snprintf(local->path, sizeof local->path, "%s/n.sock", local->dir);
    snprintf(local->data_path, sizeof local->data_path, "%s/gen-1.data", local->dir);
    size_t file_len = LOCAL_BASE + fake->size;
    uint8_t *file = calloc(1, file_len);
    memcpy(file + LOCAL_BASE, fake->data, fake->size);
    cr_assert_eq(tp_write_file(local->data_path, file, file_len), 0);
    free(file);
    local->listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    cr_assert_lt(strlen(local->path), sizeof addr.sun_path);
    memcpy(addr.sun_path, local->path, strlen(local->path) + 1);
    cr_assert_eq(bind(local->listener, (struct sockaddr *)&addr, sizeof addr), 0);
    cr_assert_eq(listen(local->listener, 16), 0);
    atomic_init(&local->held, UINT64_MAX);
    atomic_init(&local->lease_ms, 30000);
    atomic_init(&local->store_id, 42);
    cr_assert_eq(pthread_create(&local->thread, NULL, s_local_thread, local), 0);
    setenv("SHOAL_LOCAL", local->path, 1);
}

static void s_local_stop(fake_local_t *local)
{
    atomic_store(&local->stop, true);
    pthread_join(local->thread, NULL);
    close(local->listener);
    tp_rmtree(local->dir);
    unsetenv("SHOAL_LOCAL");
}

/* Flips the byte at `at_in_page` of page `index` in the fake's data file. */
static void s_local_corrupt(fake_local_t *local, uint64_t index, uint64_t at_in_page)
{
    int fd = open(local->data_path, O_RDWR);
    cr_assert_geq(fd, 0);
    off_t at = (off_t)(LOCAL_BASE + index * LOCAL_PAGE + at_in_page);
    uint8_t byte;
    cr_assert_eq(pread(fd, &byte, 1, at), 1);
    byte ^= 0x40;
    cr_assert_eq(pwrite(fd, &byte, 1, at), 1);
    close(fd);
}

static shoal_client_t *s_local_client(const fake_node_t *fake)
{
    shoal_client_options_t options = {
        .seeds = s_seed(fake), .no_ufs_fallback = true, .timeout_ms = 5000};
    shoal_client_t *client = shoal_client_new(&options);
    cr_assert_not_null(client);
    return client;
}

/* Every (offset, length) around page and chunk boundaries of a LOCAL_FILE file. */
static void s_local_spans(shoal_client_t *client, const fake_node_t *fake, uint8_t *buf)
{
    const uint64_t offsets[] = {0,
                                1,
                                4095,
                                4096,
                                4097,
                                LOCAL_PAGE - 1,
                                LOCAL_PAGE,
                                LOCAL_PAGE + 4096 + 3,
                                2 * LOCAL_PAGE - 1,
                                5 * LOCAL_PAGE + 100,
                                LOCAL_FILE - 1,
                                LOCAL_FILE};
    const size_t lengths[] = {
        1, 2, 4095, 4096, 4097, LOCAL_PAGE, LOCAL_PAGE + 1, 3 * LOCAL_PAGE, LOCAL_FILE};
    for (size_t o = 0; o < sizeof offsets / sizeof *offsets; o++)
        for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++) {
            memset(buf, 0xee, LOCAL_FILE);
            uint64_t off = offsets[o];
            int64_t got = shoal_pread(client, fake->uri, buf, lengths[l], off);
            uint64_t want = LOCAL_FILE - off < lengths[l] ? LOCAL_FILE - off : lengths[l];
            cr_assert_eq(got, (int64_t)want, "off %llu len %zu: %lld %s", (unsigned long long)off,
                         lengths[l], (long long)got, shoal_last_error());
            cr_assert(memcmp(buf, fake->data + off, want) == 0, "off %llu len %zu differs",
                      (unsigned long long)off, lengths[l]);
        }
}

static void s_local_fake_start(fake_node_t *fake, uint64_t seed)
{
    uint8_t *data = s_pattern(LOCAL_FILE, seed);
    s_fake_start(fake, "file:///fake/local", data, LOCAL_FILE, "v1");
    free(data);
    fake->page_size = LOCAL_PAGE;
    fake->range_pages = 2;
}

Test(client_local, every_span_is_served_by_short_circuit)
{
    fake_node_t fake;
    s_local_fake_start(&fake, 21);
    fake_local_t local;
    s_local_start(&local, &fake);
    shoal_client_t *client = s_local_client(&fake);
    uint8_t *buf = malloc(LOCAL_FILE);
    s_local_spans(client, &fake, buf);
    cr_assert_gt(s_counter(client, "bytes_short_circuit"), 0);
    cr_assert_eq(s_counter(client, "bytes_zmq"), 0, "a byte went the ZeroMQ way");
    cr_assert_eq(atomic_load(&fake.reads), 0, "the ZeroMQ node got a READ");
    cr_assert_eq(s_counter(client, "local_bad_sums"), 0);
    cr_assert_eq(atomic_load(&local.accepts), 1, "one connection for one thread");
    /* the learn op (no stat cached) took the stat from the LOCATE */
    shoal_stat_t stat;
    cr_assert_eq(shoal_pread_stat(client, fake.uri, NULL, buf, 10, 0, &stat), 10);
    cr_assert_eq(stat.size, LOCAL_FILE);
    cr_assert_str_eq(stat.version, "v1");
    free(buf);
    shoal_client_destroy(&client);
    s_local_stop(&local);
    s_fake_stop(&fake);
}

Test(client_local, pages_not_held_go_the_zeromq_way)
{
    fake_node_t fake;
    s_local_fake_start(&fake, 22);
    fake_local_t local;
    s_local_start(&local, &fake);
    atomic_store(&local.held, ~((1ull << 1) | (1ull << 4))); /* pages 1 and 4 not held */
    shoal_client_t *client = s_local_client(&fake);
    uint8_t *buf = malloc(LOCAL_FILE);
    s_local_spans(client, &fake, buf);
    cr_assert_gt(s_counter(client, "bytes_short_circuit"), 0);
    cr_assert_gt(s_counter(client, "bytes_zmq"), 0);
    cr_assert_gt(s_counter(client, "local_misses"), 0);
    atomic_store(&local.held, 0); /* nothing held: every byte by ZeroMQ, still right */
    s_local_spans(client, &fake, buf);
    free(buf);
    shoal_client_destroy(&client);
    s_local_stop(&local);
    s_fake_stop(&fake);
}

Test(client_local, a_flipped_byte_is_never_served)
{
    fake_node_t fake;
    s_local_fake_start(&fake, 23);
    fake_local_t local;
    s_local_start(&local, &fake);
    s_local_corrupt(&local, 0, 4096 + 5); /* chunk 1 of page 0 */
    s_local_corrupt(&local, 6, 1000);     /* the last, short page */
    shoal_client_t *client = s_local_client(&fake);
    uint8_t *buf = malloc(LOCAL_FILE);
    s_local_spans(client, &fake, buf);
    cr_assert_gt(s_counter(client, "local_bad_sums"), 0);
    cr_assert_gt(s_counter(client, "bytes_zmq"), 0);
    cr_assert_gt(s_counter(client, "bytes_short_circuit"), 0, "the good pages still local");
    free(buf);
    shoal_client_destroy(&client);
    s_local_stop(&local);
    s_fake_stop(&fake);
}

Test(client_local, refusal_is_remembered_and_zeromq_serves)
{
    fake_node_t fake;
    s_local_fake_start(&fake, 24);
    fake_local_t local;
    s_local_start(&local, &fake);
    atomic_store(&local.mode, LOCAL_REFUSE);
    shoal_client_t *client = s_local_client(&fake);
    uint8_t *buf = malloc(LOCAL_FILE);
    s_local_spans(client, &fake, buf);
    cr_assert_eq(s_counter(client, "local_refused"), 1, "refused once, then remembered");
    cr_assert_eq(atomic_load(&local.accepts), 1);
    cr_assert_eq(s_counter(client, "bytes_short_circuit"), 0);
    free(buf);
    shoal_client_destroy(&client);
    s_local_stop(&local);
    s_fake_stop(&fake);
}

Test(client_local, bad_descriptor_lists_and_unnamed_versions_are_misses)
{
    fake_node_t fake;
    s_local_fake_start(&fake, 25);
    fake_local_t local;
    s_local_start(&local, &fake);
    atomic_store(&local.mode, LOCAL_EXTRA_FD);
    shoal_client_t *client = s_local_client(&fake);
    uint8_t *buf = malloc(LOCAL_FILE);
    cr_assert_eq(shoal_pread(client, fake.uri, buf, LOCAL_FILE, 0), LOCAL_FILE);
    cr_assert(memcmp(buf, fake.data, LOCAL_FILE) == 0);
    cr_assert_eq(s_counter(client, "bytes_short_circuit"), 0);
    atomic_store(&local.mode, LOCAL_NO_VERSION);
    shoal_client_t *other = s_local_client(&fake);
    s_local_spans(other, &fake, buf);
    cr_assert_eq(s_counter(other, "bytes_short_circuit"), 0);
    cr_assert_gt(s_counter(other, "local_locates"), 0);
    atomic_store(&local.mode, LOCAL_GOOD); /* the first client reconnects and is served */
    cr_assert_eq(shoal_pread(client, fake.uri, buf, LOCAL_FILE, 0), LOCAL_FILE);
    cr_assert(memcmp(buf, fake.data, LOCAL_FILE) == 0);
    cr_assert_gt(s_counter(client, "bytes_short_circuit"), 0);
    free(buf);
    shoal_client_destroy(&other);
    shoal_client_destroy(&client);
    s_local_stop(&local);
    s_fake_stop(&fake);
}

Test(client_local, forked_child_reads_through_its_own_connection)
{
    fake_node_t fake;
    s_local_fake_start(&fake, 26);
    fake_local_t local;
    s_local_start(&local, &fake);
    shoal_client_t *client = s_local_client(&fake);
    uint8_t *buf = malloc(LOCAL_FILE);
    cr_assert_eq(shoal_pread(client, fake.uri, buf, LOCAL_FILE, 0), LOCAL_FILE);
    cr_assert_eq(atomic_load(&local.accepts), 1);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        uint64_t before = s_counter(client, "bytes_short_circuit");
        int64_t got = shoal_pread(client, fake.uri, buf, LOCAL_FILE, 0);
        bool ok = got == LOCAL_FILE && memcmp(buf, fake.data, LOCAL_FILE) == 0 &&
                  s_counter(client, "bytes_short_circuit") == before + LOCAL_FILE &&
                  s_counter(client, "bytes_zmq") == 0;
        /* no destroy: under ASan a child of this threaded process may find the allocator's
         * lock held by a parent thread at fork time, and the ZeroMQ I/O threads of its own
         * context then hang zmq_ctx_term (a child's destroy is tested with the fake node) */
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's read failed");
    cr_assert_eq(atomic_load(&local.accepts), 2, "the child made its own connection");
    cr_assert_eq(shoal_pread(client, fake.uri, buf, LOCAL_FILE, 0), LOCAL_FILE);
    cr_assert(memcmp(buf, fake.data, LOCAL_FILE) == 0);
    cr_assert_eq(atomic_load(&local.accepts), 2, "the parent kept its connection");
    free(buf);
    shoal_client_destroy(&client);
    s_local_stop(&local);
    s_fake_stop(&fake);
}

Test(client_local, short_circuit_off_reads_by_zeromq)
{
    fake_node_t fake;
    s_local_fake_start(&fake, 27);
    fake_local_t local;
    s_local_start(&local, &fake);
    setenv("SHOAL_SHORT_CIRCUIT", "0", 1);
    shoal_client_t *client = s_local_client(&fake);
    uint8_t *buf = malloc(LOCAL_FILE);
    s_local_spans(client, &fake, buf);
    cr_assert_eq(s_counter(client, "bytes_short_circuit"), 0);
    cr_assert_eq(atomic_load(&local.accepts), 0);
    unsetenv("SHOAL_SHORT_CIRCUIT");
    free(buf);
    shoal_client_destroy(&client);
    s_local_stop(&local);
    s_fake_stop(&fake);
}

/* Descriptors this process holds on the fake's data file (cut or replaced included). */
static int s_local_fds_held(const fake_local_t *local)
{
    int count = 0;
    DIR *dir = opendir("/proc/self/fd");
    cr_assert_not_null(dir);
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        char link[PATH_MAX], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%s", entry->d_name);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        count += strstr(target, "gen-1.data") != NULL &&
                 strncmp(target, local->dir, strlen(local->dir)) == 0;
    }
    closedir(dir);
    return count;
}

Test(client_local, cut_and_gone_generations_stay_correct)
{
    fake_node_t fake;
    s_local_fake_start(&fake, 28);
    fake_local_t local;
    s_local_start(&local, &fake);
    setenv("SHOAL_LOCAL_RELOCATE_MS", "0", 1); /* every read LOCATEs: `gone` comes at once */
    shoal_client_t *client = s_local_client(&fake);
    uint8_t *buf = malloc(LOCAL_FILE);
    cr_assert_eq(shoal_pread(client, fake.uri, buf, LOCAL_FILE, 0), LOCAL_FILE);
    unsetenv("SHOAL_LOCAL_RELOCATE_MS"); /* read at the first call */
    cr_assert(memcmp(buf, fake.data, LOCAL_FILE) == 0);
    cr_assert_eq(s_local_fds_held(&local), 1);
    /* the node cuts the generation (dropped while we hold it): short reads are misses */
    cr_assert_eq(truncate(local.data_path, 0), 0);
    uint64_t zmq = s_counter(client, "bytes_zmq");
    s_local_spans(client, &fake, buf);
    cr_assert_gt(s_counter(client, "bytes_zmq"), zmq);
    /* a new file of the same generation number: the next connection is passed it */
    size_t file_len = LOCAL_BASE + fake.size;
    uint8_t *file = calloc(1, file_len);
    memcpy(file + LOCAL_BASE, fake.data, fake.size);
    cr_assert_eq(tp_write_file(local.data_path, file, file_len), 0);
    free(file);
    s_local_spans(client, &fake, buf);
    uint64_t local_bytes = s_counter(client, "bytes_short_circuit");
    cr_assert_eq(shoal_pread(client, fake.uri, buf, LOCAL_FILE, 0), LOCAL_FILE);
    cr_assert(memcmp(buf, fake.data, LOCAL_FILE) == 0);
    cr_assert_eq(s_counter(client, "bytes_short_circuit"), local_bytes + LOCAL_FILE);
    cr_assert_gt(s_counter(client, "local_reconnects"), 0);
    cr_assert_eq(s_local_fds_held(&local), 1, "the cut file's descriptor is still open");
    /* `gone`: closed at once (a read of one piece: one LOCATE, whose reply passes no page) */
    atomic_store(&local.gone_next, true);
    cr_assert_eq(shoal_pread(client, fake.uri, buf, 100, 5), 100);
    cr_assert(memcmp(buf, fake.data + 5, 100) == 0);
    cr_assert_eq(s_local_fds_held(&local), 0, "a gone generation's descriptor is still open");
    s_local_spans(client, &fake, buf);
    cr_assert_eq(s_local_fds_held(&local), 1);
    free(buf);
    shoal_client_destroy(&client);
    cr_assert_eq(s_local_fds_held(&local), 0, "destroy closes every descriptor");
    s_local_stop(&local);
    s_fake_stop(&fake);
}

Test(client_local, leases_and_store_changes_drop_descriptors)
{
    fake_node_t fake;
    s_local_fake_start(&fake, 29);
    fake_local_t local;
    s_local_start(&local, &fake);
    atomic_store(&local.lease_ms, 1);
    shoal_client_t *client = s_local_client(&fake);
    uint8_t *buf = malloc(LOCAL_FILE);
    cr_assert_eq(shoal_pread(client, fake.uri, buf, LOCAL_FILE, 0), LOCAL_FILE);
    cr_assert_eq(s_local_fds_held(&local), 1);
    usleep(20000); /* the lease (1 ms) runs out: time passing, not a synchronisation */
    s_local_spans(client, &fake, buf);
    cr_assert_gt(s_counter(client, "local_reconnects"), 0, "the lease close was not seen");
    atomic_store(&local.lease_ms, 30000);
    /* another store behind the same socket (node restarted): every descriptor void */
    atomic_store(&local.store_id, 43);
    s_local_spans(client, &fake, buf);
    cr_assert_eq(shoal_pread(client, fake.uri, buf, LOCAL_FILE, 0), LOCAL_FILE);
    cr_assert(memcmp(buf, fake.data, LOCAL_FILE) == 0);
    uint64_t local_bytes = s_counter(client, "bytes_short_circuit");
    cr_assert_eq(shoal_pread(client, fake.uri, buf, LOCAL_FILE, 0), LOCAL_FILE);
    cr_assert_eq(s_counter(client, "bytes_short_circuit"), local_bytes + LOCAL_FILE);
    cr_assert_eq(s_local_fds_held(&local), 1);
    free(buf);
    shoal_client_destroy(&client);
    s_local_stop(&local);
    s_fake_stop(&fake);
}

/* Remembered locations: a warm re-read sends no LOCATE; a cut generation under a remembered
 * location is a miss (forgotten, LOCATEd afresh, the bytes by ZeroMQ), never a wrong byte. */
Test(client_local, remembered_locations_skip_locate_and_a_cut_one_is_a_miss)
{
    fake_node_t fake;
    s_local_fake_start(&fake, 30);
    fake_local_t local;
    s_local_start(&local, &fake);
    setenv("SHOAL_LOCAL_RELOCATE_MS", "600000", 1);
    shoal_client_t *client = s_local_client(&fake);
    uint8_t *buf = malloc(LOCAL_FILE);
    cr_assert_eq(shoal_pread(client, fake.uri, buf, LOCAL_FILE, 0), LOCAL_FILE);
    unsetenv("SHOAL_LOCAL_RELOCATE_MS"); /* read at the first call */
    cr_assert(memcmp(buf, fake.data, LOCAL_FILE) == 0);
    int locates = atomic_load(&local.locates);
    cr_assert_gt(locates, 0);
    s_local_spans(client, &fake, buf);
    cr_assert_eq(atomic_load(&local.locates), locates, "a remembered page was LOCATEd");
    cr_assert_gt(s_counter(client, "local_cache_hits"), 0);
    cr_assert_eq(s_counter(client, "bytes_zmq"), 0);
    /* the node cuts the generation: remembered locations read short */
    cr_assert_eq(truncate(local.data_path, 0), 0);
    s_local_spans(client, &fake, buf);
    cr_assert_gt(s_counter(client, "bytes_zmq"), 0, "the cut pages were not read by ZeroMQ");
    cr_assert_gt(atomic_load(&local.locates), locates, "a failed location was not LOCATEd again");
    free(buf);
    shoal_client_destroy(&client);
    s_local_stop(&local);
    s_fake_stop(&fake);
}

/* Every span on helper threads (SHOAL_LOCAL_PARALLEL_BYTES=1: ops and the pages of remembered
 * spans split across threads, the first and last page through their own bounce buffers):
 * right bytes; flipped bytes and a cut generation under it are misses, never served. */
Test(client_local, spans_on_helper_threads_are_right)
{
    fake_node_t fake;
    s_local_fake_start(&fake, 31);
    fake_local_t local;
    s_local_start(&local, &fake);
    setenv("SHOAL_LOCAL_PARALLEL_BYTES", "1", 1);
    setenv("SHOAL_LOCAL_RELOCATE_MS", "600000", 1);
    shoal_client_t *client = s_local_client(&fake);
    uint8_t *buf = malloc(LOCAL_FILE);
    cr_assert_eq(shoal_pread(client, fake.uri, buf, LOCAL_FILE, 0), LOCAL_FILE);
    unsetenv("SHOAL_LOCAL_PARALLEL_BYTES"); /* read at the first call */
    unsetenv("SHOAL_LOCAL_RELOCATE_MS");
    s_local_spans(client, &fake, buf);
    s_local_spans(client, &fake, buf); /* remembered: the pages of a span on the helpers */
    cr_assert_eq(s_counter(client, "bytes_zmq"), 0);
    cr_assert_gt(s_counter(client, "local_cache_hits"), 0);
    if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
        cr_assert_gt(s_counter(client, "local_parallel_runs"), 0, "no helper thread read");
    s_local_corrupt(&local, 2, 4096 + 5);
    s_local_corrupt(&local, 6, 1000); /* the last, short page */
    s_local_spans(client, &fake, buf);
    cr_assert_gt(s_counter(client, "local_bad_sums"), 0);
    cr_assert_gt(s_counter(client, "bytes_zmq"), 0);
    cr_assert_eq(truncate(local.data_path, 0), 0);
    s_local_spans(client, &fake, buf);
    free(buf);
    shoal_client_destroy(&client);
    s_local_stop(&local);
    s_fake_stop(&fake);
}

/* A run started inside a run (a piece's pages in parallel while the pieces are) must not wait
 * on the helpers: the outer caller ends its share first and waits for the helpers to let go of
 * the outer work, while the helper, inside it, runs the inner one (once a deadlock: the inner
 * run was posted and waited for a helper that was itself). */
typedef struct nested_run {
    client_local_t *local;
    _Atomic int inner_done;
    _Atomic int outer_done;
} nested_run_t;

static void s_inner_item(void *arg, size_t i)
{
    (void)i;
    nested_run_t *run = arg;
    atomic_fetch_add(&run->inner_done, 1);
}

static void s_outer_item(void *arg, size_t i)
{
    nested_run_t *run = arg;
    if (i == 0) /* the caller's: long enough for a helper to take item 1 */
        usleep(20 * 1000);
    if (i == 1) { /* a helper's, inner run started after the caller's share ended */
        usleep(60 * 1000);
        client_local_run(run->local, 3, s_inner_item, run);
    }
    atomic_fetch_add(&run->outer_done, 1);
}

Test(client_local, a_run_inside_a_run_finishes, .timeout = 60)
{
    client_counters_t counters;
    memset(&counters, 0, sizeof counters);
    client_local_t *local = client_local_new(&counters, 1000);
    cr_assert_not_null(local);
    for (int round = 0; round < 20; round++) {
        nested_run_t run = {.local = local};
        client_local_run(local, 2, s_outer_item, &run);
        cr_assert_eq(atomic_load(&run.outer_done), 2);
        cr_assert_eq(atomic_load(&run.inner_done), 3);
    }
    client_local_destroy(&local);
}
