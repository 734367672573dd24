/*
 * test_cold.c - the cold path end to end: real shoald processes (1 and 3, gossiping on
 * loopback) over tests/support/origin.py (which counts the requests it answers by kind), read
 * through libshoal. A cold small file is exactly one origin request (one GET, no HEAD), a warm
 * read none, a larger file one GET per range, a missing file one request and none for its
 * repeat within the negative TTL; 16 concurrent readers of one cold file make one GET per
 * range; a file replaced at the origin between two ranges (between two calls, and while a
 * read is in flight) is read whole-old or whole-new, every byte checked; an epoch longer than
 * the metadata TTL costs no GET and at most one HEAD per file per TTL (node/README.md's
 * policy), and none under --immutable-mount.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "proto.h"
#include "shoal.h"
#include "testproc.h"

#define PAGE_SIZE   65536
#define RANGE_PAGES 4
#define RANGE_BYTES (PAGE_SIZE * RANGE_PAGES)
#define NODES_MAX   3
#define SMALL_COUNT 12    /* small files per test */
#define SMALL_SIZE  50000 /* under one range */

typedef struct test_node {
    tp_proc_t proc;           /* the shoald process */
    int port;                 /* data port */
    int gossip_port;          /* gossip port */
    char endpoint[64];        /* "tcp://127.0.0.1:PORT" */
    char db_dir[TP_PATH_MAX]; /* its data dir */
    char log[TP_PATH_MAX];    /* its log */
} test_node_t;

static char *s_dir;                    /* temp dir: www/ (origin root), nodes */
static char s_root[TP_PATH_MAX];       /* the origin's root */
static tp_server_t s_origin;           /* origin.py */
static test_node_t s_nodes[NODES_MAX]; /* the cluster */
static int s_node_count;               /* nodes started */
static char s_seeds[NODES_MAX * 32];   /* data endpoints of every node, for clients */

static void s_setup(void)
{
    s_dir = tp_tempdir("cold");
    cr_assert_not_null(s_dir);
    snprintf(s_root, sizeof s_root, "%s/www", s_dir);
    cr_assert_eq(tp_mkdirs(s_root, 0755), 0);
    s_node_count = 0;
    memset(&s_origin, 0, sizeof s_origin);
}

static void s_teardown(void)
{
    for (int i = 0; i < s_node_count; i++)
        tp_stop(&s_nodes[i].proc, 5000);
    s_node_count = 0;
    tp_server_stop(&s_origin);
    if (s_dir) {
        tp_rmtree(s_dir);
        free(s_dir);
        s_dir = NULL;
    }
}

static void s_dump_log(const char *path)
{
    size_t len = 0;
    char *text = tp_read_file(path, &len);
    cr_log_error("%s:\n%s", path, text ? text : "(none)");
    free(text);
}

/* Writes a patterned file of `size` bytes at www/name; returns its bytes (caller frees). */
static uint8_t *s_make_file(const char *name, size_t size, uint64_t seed)
{
    uint8_t *bytes = malloc(size ? size : 1);
    cr_assert_not_null(bytes);
    tp_fill_pattern(bytes, size, seed);
    char path[TP_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", s_root, name);
    cr_assert_eq(tp_write_file(path, bytes, size), 0);
    return bytes;
}

static void s_uri(const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", s_origin.base_url, name);
}

/* ---- raw requests to one node ---- */

/* Sends `request` to node `at` and waits up to 3 s for the header of its answer. 0 or -1. */
static int s_request(int at, msg_t *request, msg_t *reply)
{
    void *context = zmq_ctx_new();
    void *socket = zmq_socket(context, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect(socket, s_nodes[at].endpoint);
    msg_buf_t out;
    msg_buf_init(&out);
    cr_assert_eq(msg_encode(request, &out), 0);
    zmq_send(socket, out.data, out.len, 0);
    msg_buf_fini(&out);
    zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
    int rc = -1;
    if (zmq_poll(&item, 1, 3000) == 1) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        zmq_msg_recv(&part, socket, 0);
        cr_assert_eq(msg_decode(zmq_msg_data(&part), zmq_msg_size(&part), reply), 0);
        zmq_msg_close(&part);
        rc = 0;
    }
    zmq_close(socket);
    zmq_ctx_term(context);
    return rc;
}

/* Members node `at` lists, all alive (-1: no answer, or one not alive). */
static int s_alive_members(int at)
{
    msg_t request, reply;
    msg_init(&request, MSG_VIEW_REQ, 1, 0);
    if (s_request(at, &request, &reply) != 0)
        return -1;
    cr_assert_eq(reply.header.type, MSG_VIEW_REP);
    int count = (int)reply.body.view_reply.member_count;
    for (uint32_t i = 0; i < reply.body.view_reply.member_count; i++)
        if (reply.body.view_reply.members[i].state != MSG_MEMBER_ALIVE)
            count = -1;
    msg_fini(&reply);
    return count;
}

/* A counter from node `at`'s STATS. */
static uint64_t s_node_counter(int at, const char *name)
{
    msg_t request, reply;
    msg_init(&request, MSG_STATS_REQ, 1, 0);
    cr_assert_eq(s_request(at, &request, &reply), 0);
    uint64_t value = UINT64_MAX;
    for (uint32_t i = 0; i < reply.body.stats_reply.counter_count; i++)
        if (strcmp(reply.body.stats_reply.counters[i].name, name) == 0)
            value = reply.body.stats_reply.counters[i].value;
    msg_fini(&reply);
    cr_assert_neq(value, UINT64_MAX, "no counter %s", name);
    return value;
}

static uint64_t s_counter_sum(const char *name)
{
    uint64_t sum = 0;
    for (int i = 0; i < s_node_count; i++)
        sum += s_node_counter(i, name);
    return sum;
}

/* A miss is answered before its pages are stored (node/storeq.c): waits until every node's
 * store queue is empty, so the next read of those pages is a hit. */
static void s_wait_stored(void)
{
    int64_t deadline = tp_now_ms() + 10000;
    while (s_counter_sum("store_queue_depth") != 0 && tp_now_ms() < deadline)
        usleep(5000);
    cr_assert_eq(s_counter_sum("store_queue_depth"), 0, "the pages were never stored");
}

/* ---- the cluster ---- */

/* Starts node `index` over origin.py, joining through node 0's gossip port unless it is node
 * 0, with `ttl` as --metadata-ttl, and the mount declared immutable when `immutable`. */
static void s_start_node(int index, const char *ttl, bool immutable)
{
    test_node_t *node = &s_nodes[index];
    const char *build = getenv("SHOAL_BUILD_DIR");
    char shoald[TP_PATH_MAX], listen[64], gossip[64], seeds[64], mount[128], name[16];
    char range[16];
    snprintf(shoald, sizeof shoald, "%s/node/shoald", build ? build : ".");
    snprintf(node->db_dir, sizeof node->db_dir, "%s/node%d", s_dir, index);
    snprintf(node->log, sizeof node->log, "%s/node%d.log", s_dir, index);
    snprintf(name, sizeof name, "n%d", index);
    snprintf(range, sizeof range, "%d", RANGE_PAGES);
    snprintf(mount, sizeof mount, "%s/", s_origin.base_url);
    for (int attempt = 0; attempt < 3; attempt++) {
        node->port = tp_free_port();
        node->gossip_port = tp_free_port();
        cr_assert(node->port > 0 && node->gossip_port > 0 && node->port != node->gossip_port);
        snprintf(node->endpoint, sizeof node->endpoint, "tcp://127.0.0.1:%d", node->port);
        snprintf(listen, sizeof listen, "127.0.0.1:%d", node->port);
        snprintf(gossip, sizeof gossip, "127.0.0.1:%d", node->gossip_port);
        snprintf(seeds, sizeof seeds, "127.0.0.1:%d", s_nodes[0].gossip_port);
        const char *argv[48] = {shoald,       "--name",
                                name,         "--data-dir",
                                node->db_dir, "--capacity",
                                "256M",       "--store",
                                "memory",     "--listen",
                                listen,       "--gossip",
                                gossip,       "--mount",
                                mount,        "--page-size",
                                "64K",        "--range-pages",
                                range,        "--threads",
                                "2",          "--fetch-threads",
                                "8",          "--metadata-ttl",
                                ttl,          "--negative-ttl",
                                "30",         "--probe-interval",
                                "200ms",      "--probe-timeout",
                                "100ms",      "--push-pull-interval",
                                "1s",         NULL};
        size_t n = 0;
        while (argv[n])
            n++;
        if (immutable) {
            argv[n++] = "--immutable-mount";
            argv[n++] = mount;
        }
        if (index > 0) {
            argv[n++] = "--seeds";
            argv[n++] = seeds;
        }
        argv[n] = NULL;
        cr_assert_eq(tp_spawn(&node->proc, argv, node->log), 0);
        if (index >= s_node_count)
            s_node_count = index + 1;
        if (tp_wait_port(node->port, 20000) == 0 && tp_alive(&node->proc))
            return;
        tp_stop(&node->proc, 2000); /* a port was taken meanwhile: try others */
    }
    s_dump_log(node->log);
    cr_assert_fail("node %d did not listen", index);
}

/* Starts origin.py (`delay_ms` per request) and `count` nodes, waits until every node lists
 * all of them alive, and fills s_seeds. */
static void s_start_cluster(int count, int delay_ms, const char *ttl, bool immutable)
{
    cr_assert_eq(tp_origin_start(&s_origin, s_root, delay_ms), 0);
    for (int i = 0; i < count; i++)
        s_start_node(i, ttl, immutable);
    int64_t start = tp_now_ms();
    for (;;) {
        bool all = true;
        for (int i = 0; i < count && all; i++)
            all = s_alive_members(i) == count;
        if (all)
            break;
        if (tp_now_ms() - start > 20000) {
            for (int i = 0; i < count; i++)
                s_dump_log(s_nodes[i].log);
            cr_assert_fail("the cluster of %d did not converge", count);
        }
        usleep(50 * 1000);
    }
    s_seeds[0] = '\0';
    for (int i = 0; i < count; i++)
        snprintf(s_seeds + strlen(s_seeds), sizeof s_seeds - strlen(s_seeds), "%s127.0.0.1:%d",
                 i ? "," : "", s_nodes[i].port);
}

/* A client of the cluster only: no UFS fallback, so every origin request is a node's. */
static shoal_client_t *s_client(void)
{
    shoal_client_options_t options = {
        .seeds = s_seeds, .timeout_ms = 10000, .no_ufs_fallback = true};
    shoal_client_t *client = shoal_client_new(&options);
    cr_assert_not_null(client, "%s", shoal_last_error());
    return client;
}

static tp_origin_counts_t s_counts(void)
{
    tp_origin_counts_t counts;
    cr_assert_eq(tp_origin_counts(&s_origin, &counts), 0);
    return counts;
}

static long s_total(const tp_origin_counts_t *c)
{
    return c->head + c->get + c->head_404 + c->get_404 + c->head_412 + c->get_412 + c->get_304;
}

/* Reads `uri` whole (expecting `size` bytes equal to `want`) through `client`. */
static void s_read_expect(shoal_client_t *client, const char *uri, const uint8_t *want, size_t size)
{
    uint8_t *buf = malloc(size + 100);
    int64_t got = shoal_pread(client, uri, buf, size + 100, 0);
    cr_assert_eq(got, (int64_t)size, "read %s: %lld (%s)", uri, (long long)got,
                 got < 0 ? shoal_last_error() : "short");
    cr_assert(memcmp(buf, want, size) == 0, "read %s: wrong bytes", uri);
    free(buf);
}

TestSuite(cold, .init = s_setup, .fini = s_teardown, .timeout = 240);

/* ---- one origin request per cold file, per range, none warm ---- */

static void s_small_and_large(int nodes)
{
    uint8_t *small[SMALL_COUNT];
    char uris[SMALL_COUNT][256];
    s_start_cluster(nodes, 0, "60", false);
    for (int i = 0; i < SMALL_COUNT; i++) {
        char name[64];
        snprintf(name, sizeof name, "small/s %d.bin", i); /* a space: %20 on the wire */
        small[i] = s_make_file(name, SMALL_SIZE, 100 + (uint64_t)i);
        snprintf(name, sizeof name, "small/s%%20%d.bin", i);
        s_uri(name, uris[i], sizeof uris[i]);
    }
    size_t large_size = 3 * RANGE_BYTES + 12345; /* four ranges, the last ragged */
    uint8_t *large = s_make_file("large.bin", large_size, 7);
    char large_uri[256];
    s_uri("large.bin", large_uri, sizeof large_uri);
    shoal_client_t *client = s_client();
    cr_assert_eq(tp_origin_reset(&s_origin), 0);

    /* cold small files: one GET each, no HEAD, and each checked on its own */
    for (int i = 0; i < SMALL_COUNT; i++) {
        tp_origin_counts_t before = s_counts();
        s_read_expect(client, uris[i], small[i], SMALL_SIZE);
        tp_origin_counts_t after = s_counts();
        cr_assert_eq(after.get - before.get, 1, "file %d: %ld GETs", i, after.get - before.get);
        cr_assert_eq(s_total(&after) - s_total(&before), 1, "file %d: %ld requests (%ld HEADs)", i,
                     s_total(&after) - s_total(&before), after.head - before.head);
    }
    /* a larger file: one GET per range, no HEAD */
    tp_origin_counts_t before = s_counts();
    s_read_expect(client, large_uri, large, large_size);
    tp_origin_counts_t after = s_counts();
    cr_assert_eq(after.get - before.get, 4, "%ld GETs for 4 ranges", after.get - before.get);
    cr_assert_eq(s_total(&after) - s_total(&before), 4, "%ld requests for 4 ranges (%ld HEADs)",
                 s_total(&after) - s_total(&before), after.head - before.head);
    cr_assert_eq(s_counter_sum("forwards"), 0, "a read went to a node that does not own it");

    /* warm, from a fresh client (nothing cached on its side) and from the same one: none */
    s_wait_stored();
    shoal_client_t *fresh = s_client();
    before = s_counts();
    for (int i = 0; i < SMALL_COUNT; i++) {
        s_read_expect(fresh, uris[i], small[i], SMALL_SIZE);
        s_read_expect(client, uris[i], small[i], SMALL_SIZE);
    }
    s_read_expect(fresh, large_uri, large, large_size);
    s_read_expect(client, large_uri, large, large_size);
    after = s_counts();
    cr_assert_eq(s_total(&after) - s_total(&before), 0, "%ld origin requests on warm reads",
                 s_total(&after) - s_total(&before));
    shoal_client_destroy(&fresh);
    shoal_client_destroy(&client);
    for (int i = 0; i < SMALL_COUNT; i++)
        free(small[i]);
    free(large);
}

Test(cold, one_get_per_cold_file_and_range_one_node)
{
    s_small_and_large(1);
}

Test(cold, one_get_per_cold_file_and_range_three_nodes)
{
    s_small_and_large(3);
}

/* ---- a missing file ---- */

static void s_missing(int nodes)
{
    s_start_cluster(nodes, 0, "60", false);
    shoal_client_t *client = s_client();
    char uri[256];
    s_uri("nothing/here.bin", uri, sizeof uri);
    uint8_t buf[64];
    cr_assert_eq(tp_origin_reset(&s_origin), 0);
    cr_assert_eq(shoal_pread(client, uri, buf, sizeof buf, 0), SHOAL_ENOENT, "%s",
                 shoal_last_error());
    tp_origin_counts_t counts = s_counts();
    cr_assert_eq(s_total(&counts), 1, "%ld requests for a missing file (%ld GET_404, %ld HEAD_404)",
                 s_total(&counts), counts.get_404, counts.head_404);
    /* its repeat, from this client and from a fresh one, within the negative TTL: none */
    shoal_client_t *fresh = s_client();
    cr_assert_eq(shoal_pread(client, uri, buf, sizeof buf, 0), SHOAL_ENOENT);
    cr_assert_eq(shoal_pread(fresh, uri, buf, sizeof buf, 0), SHOAL_ENOENT);
    counts = s_counts();
    cr_assert_eq(s_total(&counts), 1, "%ld requests after the repeats", s_total(&counts));
    shoal_client_destroy(&fresh);
    shoal_client_destroy(&client);
}

Test(cold, missing_file_one_request_then_none_one_node)
{
    s_missing(1);
}

Test(cold, missing_file_one_request_then_none_three_nodes)
{
    s_missing(3);
}

/* ---- single flight ---- */

typedef struct s_reader {
    pthread_t thread;           /* the reader */
    pthread_barrier_t *barrier; /* all start together */
    shoal_client_t *client;     /* its own client */
    const char *uri;            /* file to read */
    const uint8_t *want;        /* its bytes */
    size_t size;                /* its size */
    int64_t got;                /* bytes read or a code */
    bool same;                  /* every byte right */
} s_reader_t;

static void *s_reader_main(void *arg)
{
    s_reader_t *reader = arg;
    uint8_t *buf = malloc(reader->size + 100);
    pthread_barrier_wait(reader->barrier);
    reader->got = shoal_pread(reader->client, reader->uri, buf, reader->size + 100, 0);
    reader->same =
        reader->got == (int64_t)reader->size && memcmp(buf, reader->want, reader->size) == 0;
    free(buf);
    return NULL;
}

static void s_single_flight(int nodes)
{
    enum { READERS = 16 };
    s_start_cluster(nodes, 200, "60", false); /* a slow origin: every reader arrives in time */
    size_t size = 2 * RANGE_BYTES + 1000;     /* three ranges */
    uint8_t *want = s_make_file("shared.bin", size, 11);
    char uri[256];
    s_uri("shared.bin", uri, sizeof uri);
    s_reader_t readers[READERS];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, READERS);
    for (int i = 0; i < READERS; i++) {
        readers[i] = (s_reader_t){
            .barrier = &barrier, .client = s_client(), .uri = uri, .want = want, .size = size};
        /* each client learns the view before the race, so the reads start together */
        char *json = NULL;
        cr_assert_eq(shoal_members(readers[i].client, &json), 0, "%s", shoal_last_error());
        shoal_free(json);
    }
    cr_assert_eq(tp_origin_reset(&s_origin), 0);
    for (int i = 0; i < READERS; i++)
        cr_assert_eq(pthread_create(&readers[i].thread, NULL, s_reader_main, &readers[i]), 0);
    for (int i = 0; i < READERS; i++) {
        pthread_join(readers[i].thread, NULL);
        cr_assert(readers[i].same, "reader %d: %lld (%s)", i, (long long)readers[i].got,
                  readers[i].got < 0 ? shoal_strerror((int)readers[i].got) : "bytes");
        shoal_client_destroy(&readers[i].client);
    }
    pthread_barrier_destroy(&barrier);
    tp_origin_counts_t counts = s_counts();
    cr_assert_eq(counts.get, 3, "%ld GETs for three cold ranges and %d readers (joins %llu)",
                 counts.get, READERS, (unsigned long long)s_counter_sum("singleflight_joins"));
    cr_assert_eq(s_total(&counts), 3, "%ld requests (%ld HEADs)", s_total(&counts), counts.head);
    free(want);
}

Test(cold, sixteen_readers_one_get_per_range_one_node)
{
    s_single_flight(1);
}

Test(cold, sixteen_readers_one_get_per_range_three_nodes)
{
    s_single_flight(3);
}

/* ---- a file replaced at the origin ---- */

/* Whether buf holds `a` whole (1), `b` whole (2), or neither (0). */
static int s_which(const uint8_t *buf, const uint8_t *a, const uint8_t *b, size_t size)
{
    if (memcmp(buf, a, size) == 0)
        return 1;
    if (memcmp(buf, b, size) == 0)
        return 2;
    return 0;
}

/* Between two calls: range 0 read at version v1, the file replaced, range 1 asked at v1 fails
 * with ESTALE (no v2 bytes under v1's name), and a fresh read gets v2 whole. */
static void s_replaced_between_calls(int nodes)
{
    s_start_cluster(nodes, 0, "60", false);
    size_t size = 2 * RANGE_BYTES;
    uint8_t *v1 = s_make_file("swap.bin", size, 21);
    char uri[256];
    s_uri("swap.bin", uri, sizeof uri);
    shoal_client_t *client = s_client();
    uint8_t *buf = malloc(size + 100);
    shoal_stat_t stat;
    int64_t got = shoal_pread_stat(client, uri, NULL, buf, RANGE_BYTES, 0, &stat);
    cr_assert_eq(got, RANGE_BYTES, "%s", shoal_last_error());
    cr_assert(memcmp(buf, v1, RANGE_BYTES) == 0);
    cr_assert_eq(stat.size, size);
    usleep(20000); /* a new mtime, so a new ETag */
    uint8_t *v2 = s_make_file("swap.bin", size, 22);
    got = shoal_pread_stat(client, uri, stat.version, buf, RANGE_BYTES, RANGE_BYTES, NULL);
    cr_assert_eq(got, SHOAL_ESTALE, "range 1 at the old version: %lld, not ESTALE", (long long)got);
    /* a versionless read of the whole file, by this client and a fresh one: v2 whole */
    shoal_client_t *fresh = s_client();
    shoal_client_t *both[2] = {client, fresh};
    for (int k = 0; k < 2; k++) {
        memset(buf, 0, size);
        got = shoal_pread(both[k], uri, buf, size + 100, 0);
        cr_assert_eq(got, (int64_t)size, "%lld (%s)", (long long)got,
                     got < 0 ? shoal_last_error() : "short");
        cr_assert_eq(s_which(buf, v1, v2, size), 2, "client %d: not the new file whole", k);
    }
    shoal_client_destroy(&fresh);
    shoal_client_destroy(&client);
    free(buf);
    free(v1);
    free(v2);
}

Test(cold, replaced_between_calls_one_node)
{
    s_replaced_between_calls(1);
}

/* With three nodes, range 0's owner still holds v1's metadata (fresh within the 60 s TTL)
 * when range 1's owner refuses v1: the client's restart says REVALIDATE on its first range, so
 * that owner asks the UFS instead of serving v1 again. */
Test(cold, replaced_between_calls_three_nodes)
{
    s_replaced_between_calls(3);
}

typedef struct s_swapper {
    pthread_t thread;    /* replaces the file */
    const char *name;    /* under www/ */
    const uint8_t *data; /* the new bytes */
    size_t size;         /* their length */
    int delay_ms;        /* after the start */
} s_swapper_t;

static void *s_swapper_main(void *arg)
{
    s_swapper_t *swapper = arg;
    usleep((useconds_t)swapper->delay_ms * 1000);
    char path[TP_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", s_root, swapper->name);
    tp_write_file(path, swapper->data, swapper->size);
    return NULL;
}

/* While a read is in flight: a file of 8 ranges over a 60 ms origin, replaced 90 ms after the
 * read began (after range 0, while the later ranges are asked for); the read returns v1 whole
 * or v2 whole. Repeated with the swap at other moments and each time with a fresh name. */
static void s_replaced_in_flight(int nodes)
{
    s_start_cluster(nodes, 60, "60", false);
    size_t size = 8 * RANGE_BYTES - 777;
    shoal_client_t *client = s_client();
    uint8_t *buf = malloc(size + 100);
    int delays[] = {90, 130, 30};
    int whole_new = 0;
    for (size_t t = 0; t < sizeof delays / sizeof delays[0]; t++) {
        char name[32], uri[256];
        snprintf(name, sizeof name, "flight%zu.bin", t);
        uint8_t *v1 = s_make_file(name, size, 30 + t);
        uint8_t *v2 = malloc(size);
        tp_fill_pattern(v2, size, 60 + t);
        s_uri(name, uri, sizeof uri);
        usleep(20000); /* the swap gets a new mtime */
        s_swapper_t swapper = {.name = name, .data = v2, .size = size, .delay_ms = delays[t]};
        cr_assert_eq(pthread_create(&swapper.thread, NULL, s_swapper_main, &swapper), 0);
        memset(buf, 0, size);
        int64_t got = shoal_pread(client, uri, buf, size + 100, 0);
        pthread_join(swapper.thread, NULL);
        cr_assert_eq(got, (int64_t)size, "swap at %d ms: %lld (%s)", delays[t], (long long)got,
                     got < 0 ? shoal_last_error() : "short");
        int which = s_which(buf, v1, v2, size);
        cr_assert_neq(which, 0, "swap at %d ms: a mix of old and new bytes", delays[t]);
        whole_new += which == 2;
        /* afterwards: one file whole (the old one may be served until the 60 s TTL if every
         * page of it is held: node/README.md), and the new one if that read saw it */
        memset(buf, 0, size);
        got = shoal_pread(client, uri, buf, size + 100, 0);
        cr_assert_eq(got, (int64_t)size, "%s", got < 0 ? shoal_last_error() : "short");
        int after = s_which(buf, v1, v2, size);
        cr_assert_neq(after, 0, "after the swap: a mix of old and new bytes");
        cr_assert(which == 1 || after == 2, "the new file was read, then the old one");
        free(v1);
        free(v2);
    }
    cr_log_info("%d of 3 in-flight swaps read the new file whole (the rest the old one)",
                whole_new);
    shoal_client_destroy(&client);
    free(buf);
}

Test(cold, replaced_in_flight_one_node)
{
    s_replaced_in_flight(1);
}

Test(cold, replaced_in_flight_three_nodes)
{
    s_replaced_in_flight(3);
}

/* ---- an epoch longer than the metadata TTL ---- */

/* Reads every file once (cold), then, past the 1 s TTL, reads them all again for 2.5 s: no
 * GET (pages are held), and at most one HEAD per file per TTL (background revalidation:
 * node/README.md). Under --immutable-mount: no request at all. */
static void s_epochs(int nodes, bool immutable)
{
    enum { FILES = 8 };
    s_start_cluster(nodes, 0, "1", immutable);
    uint8_t *want[FILES];
    char uris[FILES][256];
    for (int i = 0; i < FILES; i++) {
        char name[32];
        snprintf(name, sizeof name, "epoch/e%d.bin", i);
        want[i] = s_make_file(name, i == 0 ? 2 * RANGE_BYTES + 5 : SMALL_SIZE, 40 + (uint64_t)i);
        s_uri(name, uris[i], sizeof uris[i]);
    }
    shoal_client_t *client = s_client();
    for (int i = 0; i < FILES; i++)
        s_read_expect(client, uris[i], want[i], i == 0 ? 2 * RANGE_BYTES + 5 : SMALL_SIZE);
    s_wait_stored();
    cr_assert_eq(tp_origin_reset(&s_origin), 0);
    int64_t start = tp_now_ms();
    /* past the TTL: wait until every node's metadata of the first epoch is older than 1 s */
    while (tp_now_ms() - start < 1200)
        usleep(20000);
    int epochs = 0;
    while (tp_now_ms() - start < 3700) {
        for (int i = 0; i < FILES; i++)
            s_read_expect(client, uris[i], want[i], i == 0 ? 2 * RANGE_BYTES + 5 : SMALL_SIZE);
        epochs++;
    }
    int64_t elapsed = tp_now_ms() - start;
    tp_origin_counts_t counts = s_counts();
    cr_assert_eq(counts.get, 0, "%ld GETs past the TTL (pages are held)", counts.get);
    if (immutable) {
        cr_assert_eq(s_total(&counts), 0, "%ld requests under --immutable-mount", s_total(&counts));
        cr_assert_eq(s_counter_sum("revalidations"), 0);
    } else {
        long bound = FILES * (elapsed / 1000 + 1);
        cr_assert(counts.head >= 1, "no revalidation at all past the TTL");
        cr_assert(counts.head <= bound, "%ld HEADs over %lld ms and %d epochs: more than %ld",
                  counts.head, (long long)elapsed, epochs, bound);
        cr_assert_eq(s_total(&counts), counts.head, "%ld requests that are not HEADs",
                     s_total(&counts) - counts.head);
    }
    cr_log_info("%d epochs in %lld ms past the TTL: %ld HEADs, %ld GETs", epochs,
                (long long)elapsed, counts.head, counts.get);
    shoal_client_destroy(&client);
    for (int i = 0; i < FILES; i++)
        free(want[i]);
}

Test(cold, epoch_past_the_ttl_one_node)
{
    s_epochs(1, false);
}

Test(cold, epoch_past_the_ttl_three_nodes)
{
    s_epochs(3, false);
}

Test(cold, epoch_past_the_ttl_immutable_three_nodes)
{
    s_epochs(3, true);
}

/* ---- warm-up ---- */

/* shoal_load of files nobody stat'ed (what `shoal warmup --from LIST` does): a small file is
 * one origin request (range 0's LOAD without a version: its GET is the stat), a larger one a
 * GET per range and no HEAD; the reads after it ask the origin nothing. */
static void s_load(int nodes)
{
    s_start_cluster(nodes, 0, "60", false);
    uint8_t *small = s_make_file("load/small.bin", SMALL_SIZE, 51);
    size_t large_size = 3 * RANGE_BYTES + 99;
    uint8_t *large = s_make_file("load/large.bin", large_size, 52);
    char small_uri[256], large_uri[256], missing_uri[256];
    s_uri("load/small.bin", small_uri, sizeof small_uri);
    s_uri("load/large.bin", large_uri, sizeof large_uri);
    s_uri("load/missing.bin", missing_uri, sizeof missing_uri);
    shoal_client_t *client = s_client();
    cr_assert_eq(tp_origin_reset(&s_origin), 0);
    uint64_t loaded = 0;
    cr_assert_eq(shoal_load(client, small_uri, 1, &loaded), 0, "%s", shoal_last_error());
    cr_assert_eq(loaded, SMALL_SIZE);
    tp_origin_counts_t counts = s_counts();
    cr_assert_eq(counts.get, 1, "%ld GETs to warm a small file", counts.get);
    cr_assert_eq(s_total(&counts), 1, "%ld requests (%ld HEADs)", s_total(&counts), counts.head);
    loaded = 0;
    cr_assert_eq(shoal_load(client, large_uri, 1, &loaded), 0, "%s", shoal_last_error());
    cr_assert_eq(loaded, large_size);
    counts = s_counts();
    cr_assert_eq(counts.get, 1 + 4, "%ld GETs to warm a small file and 4 ranges", counts.get);
    cr_assert_eq(s_total(&counts), 5, "%ld requests (%ld HEADs)", s_total(&counts), counts.head);
    cr_assert_eq(shoal_load(client, missing_uri, 1, NULL), SHOAL_ENOENT);
    counts = s_counts();
    cr_assert_eq(s_total(&counts), 6, "%ld requests with a missing file", s_total(&counts));
    /* warm now, for another client too */
    shoal_client_t *fresh = s_client();
    s_read_expect(fresh, small_uri, small, SMALL_SIZE);
    s_read_expect(fresh, large_uri, large, large_size);
    counts = s_counts();
    cr_assert_eq(s_total(&counts), 6, "%ld requests after reading what was warmed",
                 s_total(&counts));
    shoal_client_destroy(&fresh);
    shoal_client_destroy(&client);
    free(small);
    free(large);
}

Test(cold, load_unstated_files_one_node)
{
    s_load(1);
}

Test(cold, load_unstated_files_three_nodes)
{
    s_load(3);
}
