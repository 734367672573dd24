/*
 * test_cluster.c - real shoald processes forming a cluster on loopback (short gossip
 * intervals) over an nginx origin: kill -9 of a node under a reader loop (no failed read, every
 * byte right, every other node marks it dead within 10 s), its restart from the same data dir
 * at a new address (a higher incarnation, not a second member, and its old cache serves hits
 * with no new origin GET), a node with another page size refused (exit 2, both sizes named),
 * forwarding (a READ to a non-owner is answered with the owner's bytes; a FORWARDED READ to
 * a non-owner is not forwarded again), and names with spaces, escapes and non-ASCII bytes
 * routed by the client to the owner the node expects (no forward).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <zmq.h>

#include "hrw.h"
#include "proto.h"
#include "shoal.h"
#include "testproc.h"

#define PAGE_SIZE   65536
#define RANGE_PAGES 4
#define RANGE_BYTES (PAGE_SIZE * RANGE_PAGES)
#define FILE_COUNT  6
#define FILE_SIZE   (RANGE_BYTES * 3 + 12345) /* four ranges, the last one ragged */
#define NODES_MAX   5

typedef struct test_node {
    tp_proc_t proc;           /* the shoald process */
    int port;                 /* data port */
    int gossip_port;          /* gossip port */
    char endpoint[64];        /* "tcp://127.0.0.1:PORT" */
    char db_dir[TP_PATH_MAX]; /* its data dir */
    char log[TP_PATH_MAX];    /* its log */
} test_node_t;

static char *s_dir;                    /* temp dir: www/ (origin root), nodes */
static tp_server_t s_nginx;            /* the origin */
static test_node_t s_nodes[NODES_MAX]; /* the cluster */
static int s_node_count;               /* nodes started */
static uint8_t *s_data[FILE_COUNT];    /* file contents */
static char s_uris[FILE_COUNT][256];   /* file uris */
static char s_seeds[NODES_MAX * 32];   /* data endpoints of every node, for clients */

static void s_setup(void)
{
    s_dir = tp_tempdir("cluster");
    cr_assert_not_null(s_dir);
    char root[TP_PATH_MAX];
    snprintf(root, sizeof root, "%s/www", s_dir);
    for (int i = 0; i < FILE_COUNT; i++) {
        s_data[i] = malloc(FILE_SIZE);
        tp_fill_pattern(s_data[i], FILE_SIZE, (uint64_t)i + 7);
        char path[TP_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/ds/f%d.bin", root, i);
        cr_assert_eq(tp_write_file(path, s_data[i], FILE_SIZE), 0);
    }
    cr_assert_eq(tp_nginx_start(&s_nginx, root, NULL), 0);
    for (int i = 0; i < FILE_COUNT; i++)
        snprintf(s_uris[i], sizeof s_uris[i], "%s/ds/f%d.bin", s_nginx.base_url, i);
    s_node_count = 0;
}

static void s_teardown(void)
{
    for (int i = 0; i < s_node_count; i++)
        tp_stop(&s_nodes[i].proc, 5000);
    tp_server_stop(&s_nginx);
    for (int i = 0; i < FILE_COUNT; i++) {
        free(s_data[i]);
        s_data[i] = NULL;
    }
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

/* Starts node `index` on fresh ports (its data dir is kept across restarts), joining through
 * node 0's gossip endpoint unless it is node 0. `page` is its --page-size. Returns once its
 * data port accepts connections (or, with `may_exit`, once it exited). */
static void s_start_node(int index, const char *page, bool may_exit)
{
    test_node_t *node = &s_nodes[index];
    const char *build = getenv("SHOAL_BUILD_DIR");
    char shoald[TP_PATH_MAX], listen[64], gossip[64], seeds[64], mount[300], name[16];
    char range[16];
    snprintf(shoald, sizeof shoald, "%s/node/shoald", build ? build : ".");
    snprintf(node->db_dir, sizeof node->db_dir, "%s/node%d", s_dir, index);
    snprintf(node->log, sizeof node->log, "%s/node%d.log", s_dir, index);
    snprintf(name, sizeof name, "n%d", index);
    snprintf(range, sizeof range, "%d", RANGE_PAGES);
    node->port = tp_free_port();
    node->gossip_port = tp_free_port();
    cr_assert(node->port > 0 && node->gossip_port > 0 && node->port != node->gossip_port);
    snprintf(node->endpoint, sizeof node->endpoint, "tcp://127.0.0.1:%d", node->port);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", node->port);
    snprintf(gossip, sizeof gossip, "127.0.0.1:%d", node->gossip_port);
    snprintf(seeds, sizeof seeds, "127.0.0.1:%d", s_nodes[0].gossip_port);
    snprintf(mount, sizeof mount, "%s/", s_nginx.base_url);
    char file_mount[TP_PATH_MAX + 32]; /* file:// mount of odd names (names_route_to_owners) */
    snprintf(file_mount, sizeof file_mount, "file://%s/names/", s_dir);
    const char *argv[40] = {shoald,       "--name",
                            name,         "--data-dir",
                            node->db_dir, "--capacity",
                            "256M",       "--listen",
                            listen,       "--gossip",
                            gossip,       "--mount",
                            mount,        "--page-size",
                            page,         "--range-pages",
                            range,        "--threads",
                            "2",          "--fetch-threads",
                            "4",          "--probe-interval",
                            "200ms",      "--probe-timeout",
                            "100ms",      "--push-pull-interval",
                            "2s",         "--dead-forget",
                            "120s",       "--forward-timeout",
                            "1s",         "--flush-interval",
                            "300ms",      NULL};
    size_t n = 0;
    while (argv[n])
        n++;
    argv[n++] = "--mount";
    argv[n++] = file_mount;
    argv[n] = NULL;
    if (index > 0) {
        argv[n++] = "--seeds";
        argv[n++] = seeds;
        argv[n] = NULL;
    }
    cr_assert_eq(tp_spawn(&node->proc, argv, node->log), 0);
    if (index >= s_node_count)
        s_node_count = index + 1;
    if (may_exit)
        return;
    if (tp_wait_port(node->port, 20000) != 0) {
        s_dump_log(node->log);
        cr_assert_fail("node %d did not listen", index);
    }
}

static void s_make_seeds(void)
{
    s_seeds[0] = '\0';
    for (int i = 0; i < s_node_count; i++)
        snprintf(s_seeds + strlen(s_seeds), sizeof s_seeds - strlen(s_seeds), "%s127.0.0.1:%d",
                 i ? "," : "", s_nodes[i].port);
}

/* ---- raw requests to one node ---- */

/* Sends `request` to `endpoint` and waits up to 3 s for the answer: the decoded header in
 * *reply, and for READ the raw frames concatenated in *bytes (malloc'd, *len bytes). Returns 0
 * or -1 (no answer). */
static int s_request(const char *endpoint, msg_t *request, msg_t *reply, uint8_t **bytes,
                     size_t *len)
{
    void *context = zmq_ctx_new();
    void *socket = zmq_socket(context, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect(socket, endpoint);
    msg_buf_t out;
    msg_buf_init(&out);
    int rc = msg_encode(request, &out);
    cr_assert_eq(rc, 0);
    zmq_send(socket, out.data, out.len, 0);
    msg_buf_fini(&out);
    zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
    rc = -1;
    if (zmq_poll(&item, 1, 3000) == 1) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        zmq_msg_recv(&part, socket, 0);
        cr_assert_eq(msg_decode(zmq_msg_data(&part), zmq_msg_size(&part), reply), 0);
        zmq_msg_close(&part);
        size_t total = 0;
        uint8_t *data = NULL;
        int more = 0;
        size_t size = sizeof more;
        while (zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &size) == 0 && more) {
            zmq_msg_init(&part);
            zmq_msg_recv(&part, socket, 0);
            data = realloc(data, total + zmq_msg_size(&part) + 1);
            memcpy(data + total, zmq_msg_data(&part), zmq_msg_size(&part));
            total += zmq_msg_size(&part);
            zmq_msg_close(&part);
            size = sizeof more;
        }
        if (bytes) {
            *bytes = data;
            *len = total;
        } else {
            free(data);
        }
        rc = 0;
    }
    zmq_close(socket);
    zmq_ctx_term(context);
    return rc;
}

/* The state and incarnation node `at` reports for the member whose data port is `port`:
 * returns the state (MSG_MEMBER_*), -1 if absent, -2 if the node did not answer. Also counts
 * the members it lists in *count (may be NULL). */
static int s_member_state(int at, int port, uint64_t *incarnation, uint32_t *count)
{
    msg_t request, reply;
    msg_init(&request, MSG_VIEW_REQ, 1, 0);
    if (s_request(s_nodes[at].endpoint, &request, &reply, NULL, NULL) != 0)
        return -2;
    cr_assert_eq(reply.header.type, MSG_VIEW_REP);
    char want[64];
    snprintf(want, sizeof want, "tcp://127.0.0.1:%d", port);
    int state = -1;
    const msg_view_reply_t *view = &reply.body.view_reply;
    for (uint32_t i = 0; i < view->member_count; i++)
        if (strcmp(view->members[i].data_endpoint, want) == 0) {
            state = (int)view->members[i].state;
            if (incarnation)
                *incarnation = view->members[i].incarnation;
        }
    if (count)
        *count = view->member_count;
    msg_fini(&reply);
    return state;
}

/* Polls until every running node other than `skip` reports member `subject` (by data port) in
 * `state` (with an incarnation above `min_incarnation`), or the deadline. Returns the ms it
 * took, or -1. */
static int64_t s_wait_state(int subject_port, int skip, int state, uint64_t min_incarnation,
                            int timeout_ms)
{
    int64_t start = tp_now_ms();
    while (tp_now_ms() - start < timeout_ms) {
        bool all = true;
        for (int i = 0; i < s_node_count && all; i++) {
            if (i == skip || s_nodes[i].proc.pid == 0)
                continue;
            uint64_t incarnation = 0;
            all = s_member_state(i, subject_port, &incarnation, NULL) == state &&
                  incarnation > min_incarnation;
        }
        if (all)
            return tp_now_ms() - start;
        usleep(50 * 1000);
    }
    return -1;
}

/* Waits until every node lists `count` members, all alive. */
static void s_wait_converged(int count)
{
    int64_t start = tp_now_ms();
    for (;;) {
        bool all = true;
        for (int i = 0; i < s_node_count && all; i++)
            for (int j = 0; j < s_node_count && all; j++) {
                uint32_t members = 0;
                all = s_member_state(i, s_nodes[j].port, NULL, &members) == MSG_MEMBER_ALIVE &&
                      members == (uint32_t)count;
            }
        if (all)
            return;
        if (tp_now_ms() - start > 15000) {
            for (int i = 0; i < s_node_count; i++)
                s_dump_log(s_nodes[i].log);
            cr_assert_fail("the cluster of %d did not converge", count);
        }
        usleep(50 * 1000);
    }
}

/* A counter from node `at`'s STATS. */
static uint64_t s_node_counter(int at, const char *name)
{
    msg_t request, reply;
    msg_init(&request, MSG_STATS_REQ, 1, 0);
    cr_assert_eq(s_request(s_nodes[at].endpoint, &request, &reply, NULL, NULL), 0);
    uint64_t value = UINT64_MAX;
    for (uint32_t i = 0; i < reply.body.stats_reply.counter_count; i++)
        if (strcmp(reply.body.stats_reply.counters[i].name, name) == 0)
            value = reply.body.stats_reply.counters[i].value;
    msg_fini(&reply);
    cr_assert_neq(value, UINT64_MAX, "no counter %s", name);
    return value;
}

/* ---- placement ---- */

/* The version node `at` reports for file i. */
static void s_version(int at, int i, char *version, size_t size)
{
    msg_t request, reply;
    msg_init(&request, MSG_STAT_REQ, 1, 0);
    request.body.stat_request.uri = s_uris[i];
    cr_assert_eq(s_request(s_nodes[at].endpoint, &request, &reply, NULL, NULL), 0);
    cr_assert_eq(reply.header.type, MSG_STAT_REP);
    snprintf(version, size, "%s", reply.body.stat_reply.version);
    msg_fini(&reply);
}

/* The HRW owner (index into s_nodes) of range `range_index` of file i, from node 0's view, by
 * placement version 2 (the uri key of the normal uri; `version` no longer matters). */
static int s_owner(int i, const char *version, uint64_t range_index, int *second)
{
    msg_t request, reply;
    msg_init(&request, MSG_VIEW_REQ, 1, 0);
    cr_assert_eq(s_request(s_nodes[0].endpoint, &request, &reply, NULL, NULL), 0);
    const msg_view_reply_t *view = &reply.body.view_reply;
    hrw_member_t hrw[NODES_MAX];
    int node_of[NODES_MAX];
    cr_assert_leq(view->member_count, NODES_MAX);
    for (uint32_t m = 0; m < view->member_count; m++) {
        memcpy(hrw[m].id, view->members[m].id, HRW_ID_LEN);
        hrw[m].weight = view->members[m].weight;
        hrw[m].live = view->members[m].state <= MSG_MEMBER_SUSPECT;
        node_of[m] = -1;
        for (int n = 0; n < s_node_count; n++)
            if (strcmp(view->members[m].data_endpoint, s_nodes[n].endpoint) == 0)
                node_of[m] = n;
    }
    (void)version; /* placement version 2: the version no longer places a range */
    uint8_t uri_key[HRW_URI_KEY_LEN];
    crypto_generichash(uri_key, sizeof uri_key, (const unsigned char *)s_uris[i], strlen(s_uris[i]),
                       NULL, 0); /* BLAKE2b-128 of the (already normal) uri, as hrw_uri_key */
    uint8_t key[HRW_RANGE_KEY_LEN], expect[HRW_RANGE_KEY_LEN];
    hrw_range_key(uri_key, range_index, key);
    hrw_uri_range_key(s_uris[i], range_index, expect);
    cr_assert_eq(memcmp(key, expect, sizeof key), 0);
    size_t owners[2];
    cr_assert_eq(hrw_owners(hrw, view->member_count, key, sizeof key, 2, owners), 2);
    int owner = node_of[owners[0]];
    *second = node_of[owners[1]];
    msg_fini(&reply);
    return owner;
}

/* Whether `client`'s view (fetched afresh by shoal_members) has the member at data port `port`
 * live (alive or suspect: HRW places ranges on it) with an incarnation above
 * `min_incarnation`. */
static bool s_client_routes_to(shoal_client_t *client, int port, uint64_t min_incarnation)
{
    char *json = NULL;
    cr_assert_eq(shoal_members(client, &json), 0, "%s", shoal_last_error());
    json_t *root = json_loads(json, 0, NULL);
    shoal_free(json);
    cr_assert_not_null(root);
    char want[64];
    snprintf(want, sizeof want, "tcp://127.0.0.1:%d", port);
    bool live = false;
    json_t *members = json_object_get(root, "members");
    for (size_t i = 0; i < json_array_size(members); i++) {
        json_t *member = json_array_get(members, i);
        const char *data = json_string_value(json_object_get(member, "data"));
        const char *state = json_string_value(json_object_get(member, "state"));
        if (data && state && strcmp(data, want) == 0)
            live = (strcmp(state, "alive") == 0 || strcmp(state, "suspect") == 0) &&
                   (uint64_t)json_integer_value(json_object_get(member, "incarnation")) >
                       min_incarnation;
    }
    json_decref(root);
    return live;
}

/* ---- the reader ---- */

typedef struct reader {
    pthread_t thread;        /* the loop */
    atomic_bool stop;        /* ask it to end */
    atomic_long reads;       /* whole-file reads done */
    atomic_long failures;    /* reads that failed or returned wrong bytes */
    atomic_long max_read_ms; /* the longest whole-file read */
    shoal_client_t *client;  /* borrowed client to read with; NULL: its own (timeout 1 s) */
    char first_error[256];   /* the first failure */
} reader_t;

static shoal_client_t *s_client(int timeout_ms, bool no_ufs)
{
    shoal_client_options_t options = {
        .seeds = s_seeds, .timeout_ms = timeout_ms, .no_ufs_fallback = no_ufs};
    shoal_client_t *client = shoal_client_new(&options);
    cr_assert_not_null(client, "%s", shoal_last_error());
    return client;
}

/* Reads file i whole and compares it. Returns 0 or -1 (with the reason in `why`). */
static int s_read_check(shoal_client_t *client, int i, char *why, size_t why_len)
{
    static _Thread_local uint8_t buf[FILE_SIZE + 100];
    int64_t got = shoal_pread(client, s_uris[i], buf, sizeof buf, 0);
    if (got != FILE_SIZE) {
        snprintf(why, why_len, "read %s: %lld (%s)", s_uris[i], (long long)got,
                 got < 0 ? shoal_last_error() : "short");
        return -1;
    }
    if (memcmp(buf, s_data[i], FILE_SIZE) != 0) {
        snprintf(why, why_len, "read %s: wrong bytes", s_uris[i]);
        return -1;
    }
    return 0;
}

/* Reads every file over and over through the cluster only (no UFS fallback), checking bytes. */
static void *s_reader_main(void *arg)
{
    reader_t *reader = arg;
    shoal_client_t *client = reader->client ? reader->client : s_client(1000, true);
    while (!atomic_load(&reader->stop)) {
        for (int i = 0; i < FILE_COUNT && !atomic_load(&reader->stop); i++) {
            char why[256];
            int64_t start = tp_now_ms();
            if (s_read_check(client, i, why, sizeof why) != 0) {
                if (atomic_fetch_add(&reader->failures, 1) == 0)
                    snprintf(reader->first_error, sizeof reader->first_error, "%s", why);
            }
            long took = (long)(tp_now_ms() - start);
            if (took > atomic_load(&reader->max_read_ms))
                atomic_store(&reader->max_read_ms, took);
            atomic_fetch_add(&reader->reads, 1);
        }
    }
    if (!reader->client)
        shoal_client_destroy(&client);
    return NULL;
}

/* Waits until the reader has made `target` reads. A read has a 30 s timeout, so no progress
 * for 90 s means a client call hung past its deadline: fail saying so (with the counts), rather
 * than running into the suite's 240 s timeout without a word. */
static void s_wait_reads(reader_t *reader, long target)
{
    int64_t last_progress = tp_now_ms();
    long seen = atomic_load(&reader->reads);
    while (seen < target) {
        usleep(10 * 1000);
        long now_reads = atomic_load(&reader->reads);
        if (now_reads != seen) {
            seen = now_reads;
            last_progress = tp_now_ms();
        }
        cr_assert_lt(tp_now_ms() - last_progress, 90000,
                     "the reader made no progress for 90 s at %ld of %ld reads (%ld failed, "
                     "longest %ld ms): a client read hung past its timeout",
                     seen, target, atomic_load(&reader->failures),
                     atomic_load(&reader->max_read_ms));
    }
}

static void s_read_all(shoal_client_t *client)
{
    for (int i = 0; i < FILE_COUNT; i++) {
        char why[256];
        cr_assert_eq(s_read_check(client, i, why, sizeof why), 0, "%s", why);
    }
}

static long s_origin_gets(void)
{
    return tp_count_synced(&s_nginx, "GET /ds/");
}

TestSuite(cluster, .init = s_setup, .fini = s_teardown, .timeout = 240);

/*
 * Five nodes; a reader loop; the node (not node 0, the seed) that owns the most ranges killed
 * with SIGKILL: no read fails, every other node marks it dead in under 10 s; restarted from its
 * data dir on new ports: one member with a higher incarnation, alive everywhere, and its old
 * pages are hits with no new origin GET.
 */
Test(cluster, kill9_dead_and_rejoin)
{
    cr_assert_eq(sodium_init() < 0, 0);
    for (int i = 0; i < 5; i++)
        s_start_node(i, "64K", false);
    s_wait_converged(5);
    s_make_seeds();

    /* shoal_members: every member with state, incarnation, address, weight, last heard */
    shoal_client_t *client = s_client(3000, true);
    char *json = NULL;
    cr_assert_eq(shoal_members(client, &json), 0, "%s", shoal_last_error());
    json_t *root = json_loads(json, 0, NULL);
    shoal_free(json);
    json_t *members = json_object_get(root, "members");
    cr_assert_eq(json_array_size(members), 5);
    for (size_t i = 0; i < 5; i++) {
        json_t *member = json_array_get(members, i);
        cr_assert_str_eq(json_string_value(json_object_get(member, "state")), "alive");
        cr_assert(json_is_integer(json_object_get(member, "incarnation")));
        cr_assert(json_is_string(json_object_get(member, "data")));
        cr_assert_eq(json_integer_value(json_object_get(member, "weight")), 256ll << 20);
        cr_assert(json_is_integer(json_object_get(member, "last_heard_ms")));
    }
    json_decref(root);

    s_read_all(client); /* warm: every range cached on its owner */
    shoal_client_destroy(&client);
    long gets_warm = s_origin_gets();
    cr_assert_eq(gets_warm, FILE_COUNT * 4, "one GET per range, got %ld", gets_warm);

    /* The victim must own ranges, or it caches nothing and can serve no hit after its
     * restart. Placement is random per run (node ids are random, file keys hash the origin's
     * port): a fixed node owns none of the 24 ranges in (4/5)^24 = 0.5% of runs. */
    int owned[NODES_MAX] = {0};
    for (int i = 0; i < FILE_COUNT; i++) {
        char version[256];
        s_version(0, i, version, sizeof version);
        for (uint64_t range = 0; range < 4; range++) {
            int second = -1;
            owned[s_owner(i, version, range, &second)]++;
        }
    }
    int victim = 1;
    for (int n = 2; n < 5; n++)
        if (owned[n] > owned[victim])
            victim = n;
    cr_assert_gt(owned[victim], 0, "node 0 owns every range");
    cr_log_info("victim: node %d, owner of %d ranges", victim, owned[victim]);

    reader_t reader = {0};
    cr_assert_eq(pthread_create(&reader.thread, NULL, s_reader_main, &reader), 0);
    s_wait_reads(&reader, 2 * FILE_COUNT);

    /* the victim stores a fetched range after answering (store queue): wait until it is in
     * the page store, whose index writes go to RocksDB's WAL, so kill -9 loses none of it
     * (store/README.md, "Crash semantics"; no periodic flush needed) */
    int64_t store_wait = tp_now_ms();
    while ((s_node_counter(victim, "store_queue_depth") > 0 ||
            s_node_counter(victim, "pages_stored") == 0) &&
           tp_now_ms() - store_wait < 5000)
        usleep(20 * 1000);
    cr_assert_eq(s_node_counter(victim, "store_queue_depth"), 0, "the victim's queue is stuck");
    cr_assert_gt(s_node_counter(victim, "pages_stored"), 0, "the victim stored no page");
    uint64_t old_incarnation = 0;
    cr_assert_eq(s_member_state(0, s_nodes[victim].port, &old_incarnation, NULL), MSG_MEMBER_ALIVE);
    int old_port = s_nodes[victim].port;
    kill(s_nodes[victim].proc.pid, SIGKILL);
    while (tp_alive(&s_nodes[victim].proc))
        usleep(1000);
    s_nodes[victim].proc.pid = 0;
    int64_t dead_ms = s_wait_state(old_port, victim, MSG_MEMBER_DEAD, 0, 10000);
    cr_assert_neq(dead_ms, -1, "not every node marked the killed node dead within 10 s");
    cr_log_info("killed node marked dead by every other node in %lld ms", (long long)dead_ms);
    long reads_at_dead = atomic_load(&reader.reads);
    s_wait_reads(&reader, reads_at_dead + 2 * FILE_COUNT);

    /* restart from the same data dir, on new ports */
    s_start_node(victim, "64K", false);
    int64_t alive_ms =
        s_wait_state(s_nodes[victim].port, victim, MSG_MEMBER_ALIVE, old_incarnation, 10000);
    cr_assert_neq(alive_ms, -1, "the restarted node was not alive with a higher incarnation");
    uint32_t count = 0;
    s_member_state(0, s_nodes[victim].port, NULL, &count);
    cr_assert_eq(count, 5, "the restarted node at a new address must replace itself, not add");
    cr_assert_eq(s_member_state(0, old_port, NULL, NULL), -1);

    long reads_at_alive = atomic_load(&reader.reads);
    s_wait_reads(&reader, reads_at_alive + 2 * FILE_COUNT);
    atomic_store(&reader.stop, true);
    pthread_join(reader.thread, NULL);
    cr_assert_eq(atomic_load(&reader.failures), 0, "%ld of %ld reads failed; first: %s",
                 atomic_load(&reader.failures), atomic_load(&reader.reads), reader.first_error);
    cr_log_info("reader: %ld whole-file reads, none failed", atomic_load(&reader.reads));

    /* a fresh client routes to the restarted node again (its view, from whichever node
     * answers first, has it live: polled, as gossip may still be settling): its old pages are
     * hits, and the origin sees no GET (metadata may be asked again with HEAD: it is kept in
     * memory only) */
    s_make_seeds();
    /* hits over ZeroMQ and pages located for short-circuit reads (the client runs on the
     * nodes' host) */
    uint64_t hits_before =
        s_node_counter(victim, "page_hits") + s_node_counter(victim, "local_pages");
    uint64_t ufs_before = s_node_counter(victim, "ufs_reads");
    long gets_before = s_origin_gets();
    client = s_client(3000, true);
    int64_t view_wait = tp_now_ms();
    while (!s_client_routes_to(client, s_nodes[victim].port, old_incarnation) &&
           tp_now_ms() - view_wait < 10000)
        usleep(50 * 1000);
    cr_assert(s_client_routes_to(client, s_nodes[victim].port, old_incarnation),
              "the fresh client's view does not have the restarted node live");
    s_read_all(client);
    shoal_client_destroy(&client);
    cr_assert_gt(s_node_counter(victim, "page_hits") + s_node_counter(victim, "local_pages"),
                 hits_before, "the restarted node served no hit from its old cache");
    cr_assert_eq(s_node_counter(victim, "ufs_reads"), ufs_before);
    cr_assert_eq(s_origin_gets(), gets_before, "the origin saw new GETs after the restart");
}

/* A node with another page size is refused: exit status 2, both sizes named in its log, and
 * the cluster never lists it. */
Test(cluster, page_size_mismatch_refused)
{
    s_start_node(0, "64K", false);
    s_start_node(1, "128K", true);
    int status = 0;
    int64_t start = tp_now_ms();
    pid_t pid = s_nodes[1].proc.pid;
    pid_t got = 0;
    while ((got = waitpid(pid, &status, WNOHANG)) == 0 && tp_now_ms() - start < 10000)
        usleep(20 * 1000);
    cr_assert_eq(got, pid, "the mismatched node kept running");
    s_nodes[1].proc.pid = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2, "exit status %d, want 2", status);
    cr_assert_geq(tp_count_lines(s_nodes[1].log, "page size 131072 here, 65536 at"), 1,
                  "no clear refusal in the log");
    uint32_t count = 0;
    cr_assert_eq(s_member_state(0, s_nodes[0].port, NULL, &count), MSG_MEMBER_ALIVE);
    cr_assert_eq(count, 1, "the refused node must never be added");
}

/* Sends READ of range `range_index` of file i to node `at` with `flags` and checks the bytes. */
static void s_raw_read(int at, int i, const char *version, uint64_t range_index, uint32_t flags)
{
    msg_t request, reply;
    uint64_t offset = range_index * RANGE_BYTES;
    msg_read_request(&request, 9, 0, s_uris[i], version, offset, RANGE_BYTES, flags);
    uint8_t *bytes = NULL;
    size_t len = 0;
    cr_assert_eq(s_request(s_nodes[at].endpoint, &request, &reply, &bytes, &len), 0);
    cr_assert_eq(reply.header.type, MSG_READ_REP, "%s",
                 reply.header.type == MSG_ERROR ? reply.body.error.message : "?");
    cr_assert_eq(reply.body.read_reply.offset, offset);
    cr_assert_eq(len, RANGE_BYTES);
    cr_assert_eq(memcmp(bytes, s_data[i] + offset, len), 0, "wrong bytes");
    free(bytes);
    msg_fini(&reply);
}

/*
 * Three nodes. A READ to a node that does not own the range is answered with the right bytes
 * fetched from the owner (the owner counts a forwarded request; the non-owner reads no UFS);
 * a FORWARDED READ to a non-owner is served there (UFS read-through) and not forwarded again.
 */
Test(cluster, forwarding)
{
    cr_assert_eq(sodium_init() < 0, 0);
    for (int i = 0; i < 3; i++)
        s_start_node(i, "64K", false);
    s_wait_converged(3);
    msg_t request, reply;
    msg_init(&request, MSG_STAT_REQ, 1, 0);
    request.body.stat_request.uri = s_uris[0];
    cr_assert_eq(s_request(s_nodes[0].endpoint, &request, &reply, NULL, NULL), 0);
    cr_assert_eq(reply.header.type, MSG_STAT_REP);
    char version[256];
    snprintf(version, sizeof version, "%s", reply.body.stat_reply.version);
    msg_fini(&reply);

    /* range 0 of file 0 to a non-owner */
    int second = -1;
    int owner = s_owner(0, version, 0, &second);
    int other = 0;
    while (other == owner)
        other++;
    uint64_t forwarded_in = s_node_counter(owner, "forwarded_in");
    uint64_t forwards = s_node_counter(other, "forwards");
    uint64_t other_ufs = s_node_counter(other, "ufs_reads");
    s_raw_read(other, 0, version, 0, 0);
    cr_assert_eq(s_node_counter(owner, "forwarded_in"), forwarded_in + 1);
    cr_assert_eq(s_node_counter(other, "forwards"), forwards + 1);
    cr_assert_eq(s_node_counter(other, "forward_failures"), 0);
    cr_assert_eq(s_node_counter(other, "ufs_reads"), other_ufs, "the non-owner read the UFS");
    cr_assert_eq(s_node_counter(owner, "ufs_reads"), 1, "the owner reads the range once");
    /* again: the owner now hits, the non-owner still does not store the range */
    s_raw_read(other, 0, version, 0, 0);
    cr_assert_eq(s_node_counter(owner, "forwarded_in"), forwarded_in + 2);
    cr_assert_eq(s_node_counter(owner, "ufs_reads"), 1);

    /* range 1 of file 1, marked FORWARDED, to a non-owner: served there, never forwarded */
    msg_init(&request, MSG_STAT_REQ, 1, 0);
    request.body.stat_request.uri = s_uris[1];
    cr_assert_eq(s_request(s_nodes[0].endpoint, &request, &reply, NULL, NULL), 0);
    snprintf(version, sizeof version, "%s", reply.body.stat_reply.version);
    msg_fini(&reply);
    owner = s_owner(1, version, 1, &second);
    other = 0;
    while (other == owner)
        other++;
    forwards = s_node_counter(other, "forwards");
    forwarded_in = s_node_counter(owner, "forwarded_in");
    other_ufs = s_node_counter(other, "ufs_reads");
    s_raw_read(other, 1, version, 1, MSG_READ_FORWARDED);
    cr_assert_eq(s_node_counter(other, "forwards"), forwards, "a FORWARDED READ was forwarded");
    cr_assert_eq(s_node_counter(owner, "forwarded_in"), forwarded_in);
    cr_assert_eq(s_node_counter(other, "ufs_reads"), other_ufs + 1);
}

/* A client counter by name. */
static uint64_t s_client_counter(shoal_client_t *client, const char *name)
{
    char *text = NULL;
    cr_assert_eq(shoal_client_counters_json(client, &text), 0);
    json_t *root = json_loads(text, 0, NULL);
    shoal_free(text);
    cr_assert_not_null(root);
    json_t *value = json_object_get(root, name);
    cr_assert(json_is_integer(value), "no client counter %s", name);
    uint64_t result = (uint64_t)json_integer_value(value);
    json_decref(root);
    return result;
}

/*
 * Issue #5: a dead owner is left at once, not after timeout_ms. Five nodes; a reader with
 * timeout_ms 30 s and no UFS fallback reads every file over and over; twice, the owner of a
 * range it reads is killed with SIGKILL (never node 0, whose view names the owners). No read
 * fails, no read takes anywhere near the timeout, and the client counts disconnects, not
 * timeouts.
 */
Test(cluster, kill9_owner_fails_over_by_disconnect)
{
    cr_assert_eq(sodium_init() < 0, 0);
    for (int i = 0; i < 5; i++)
        s_start_node(i, "64K", false);
    s_wait_converged(5);
    s_make_seeds();
    shoal_client_t *client = s_client(30000, true);
    s_read_all(client); /* warm */

    reader_t reader = {.client = client};
    cr_assert_eq(pthread_create(&reader.thread, NULL, s_reader_main, &reader), 0);
    s_wait_reads(&reader, 2 * FILE_COUNT);
    int killed[2] = {-1, -1};
    for (int round = 0; round < 2; round++) {
        /* the first owner of some range (alive in node 0's view) that is not node 0 */
        int victim = -1;
        for (int i = 0; i < FILE_COUNT && victim < 0; i++) {
            char version[256];
            s_version(0, i, version, sizeof version);
            for (uint64_t range = 0; range < 4 && victim < 0; range++) {
                int second = -1;
                int owner = s_owner(i, version, range, &second);
                if (owner > 0 && s_nodes[owner].proc.pid != 0)
                    victim = owner;
            }
        }
        cr_assert_geq(victim, 1, "no owner other than node 0");
        killed[round] = victim;
        int port = s_nodes[victim].port;
        long reads_before = atomic_load(&reader.reads);
        kill(s_nodes[victim].proc.pid, SIGKILL);
        while (tp_alive(&s_nodes[victim].proc))
            usleep(1000);
        s_nodes[victim].proc.pid = 0;
        /* reads go on at once (the reader needs no gossip to move on) */
        s_wait_reads(&reader, reads_before + 2 * FILE_COUNT);
        /* then the cluster agrees, so the next round picks an owner from a view without it */
        cr_assert_neq(s_wait_state(port, victim, MSG_MEMBER_DEAD, 0, 10000), -1,
                      "node %d was not marked dead", victim);
        long reads_dead = atomic_load(&reader.reads);
        s_wait_reads(&reader, reads_dead + FILE_COUNT);
    }
    atomic_store(&reader.stop, true);
    pthread_join(reader.thread, NULL);
    cr_assert_eq(atomic_load(&reader.failures), 0, "%ld of %ld reads failed; first: %s",
                 atomic_load(&reader.failures), atomic_load(&reader.reads), reader.first_error);
    cr_assert_lt(atomic_load(&reader.max_read_ms), 10000,
                 "a read took %ld ms: failover waited for the 30 s timeout",
                 atomic_load(&reader.max_read_ms));
    uint64_t disconnects = s_client_counter(client, "disconnects");
    uint64_t timeouts = s_client_counter(client, "timeouts");
    cr_log_info("killed nodes %d and %d: %ld reads, longest %ld ms, %llu disconnects, "
                "%llu timeouts, %llu next-owner fallbacks",
                killed[0], killed[1], atomic_load(&reader.reads), atomic_load(&reader.max_read_ms),
                (unsigned long long)disconnects, (unsigned long long)timeouts,
                (unsigned long long)s_client_counter(client, "fallback_next_owner"));
    cr_assert_gt(disconnects, 0, "the dead owners were not found by their connections");
    cr_assert_eq(timeouts, 0, "a dead owner was found by the timeout");
    cr_assert_gt(s_client_counter(client, "fallback_next_owner"), 0);
    shoal_client_destroy(&client);
}

/* Sum of a counter over the first `count` nodes. */
static uint64_t s_node_counter_sum(int count, const char *name)
{
    uint64_t sum = 0;
    for (int i = 0; i < count; i++)
        sum += s_node_counter(i, name);
    return sum;
}

/*
 * The client places by the normal form of a uri (proto/uri.h), as the node does. Three nodes
 * over a file:// mount of files named with a space, a literal "%20" (another object than the
 * space, by design), a non-ASCII name, an escaped unreserved byte ("%41" is "A": both spellings
 * name one file), "//" and "/./" spellings and a 300-byte path. Each file spans four ranges;
 * each spelling is read whole and checked byte by byte, and no node forwards a single range
 * (a client hashing the raw spelling sends most ranges of the respelled names to a non-owner,
 * which forwards them). A uri the normaliser refuses gets the node's own refusal.
 */
Test(cluster, names_route_to_owners)
{
    cr_assert_eq(sodium_init() < 0, 0);
    enum { NAMES = 6, NAME_SIZE = RANGE_BYTES * 3 + 777 };
    char base[TP_PATH_MAX];
    snprintf(base, sizeof base, "%s/names", s_dir);
    char long_dir[400] = "";
    while (strlen(long_dir) < 300)
        strcat(long_dir, "/a-rather-long-directory-name-0123456789");
    /* on-disk name (below names/), then the spellings a caller may use */
    const char *const files[NAMES][3] = {
        {"/with space.bin", "/with space.bin", "//with space.bin"},
        {"/with%20escape.bin", "/with%20escape.bin", "/./with%20escape.bin"},
        {"/caf\xc3\xa9-\xe6\x97\xa5.bin", "/caf\xc3\xa9-\xe6\x97\xa5.bin",
         "/./caf\xc3\xa9-\xe6\x97\xa5.bin"}, /* raw bytes stay raw (an escape of them
                                              * would name another object) */
        {"/Abc.bin", "/%41bc.bin", "/%41%62%63.bin"},
        {"/sub/x~y.bin", "/sub//x%7Ey.bin", "/sub/../sub/x~y.bin"},
        {NULL, NULL, NULL}, /* the long path, filled below */
    };
    char long_names[3][TP_PATH_MAX];
    snprintf(long_names[0], sizeof long_names[0], "%s/long.bin", long_dir);
    snprintf(long_names[1], sizeof long_names[1], "%s/l%%6Fng.bin", long_dir);
    snprintf(long_names[2], sizeof long_names[2], "/%s/./long.bin", long_dir);
    uint8_t *data[NAMES];
    for (int i = 0; i < NAMES; i++) {
        const char *disk = i == NAMES - 1 ? long_names[0] : files[i][0];
        char path[2 * TP_PATH_MAX];
        snprintf(path, sizeof path, "%s%s", base, disk);
        char dir[2 * TP_PATH_MAX];
        snprintf(dir, sizeof dir, "%s", path);
        *strrchr(dir, '/') = '\0';
        cr_assert_eq(tp_mkdirs(dir, 0755), 0, "%s", dir);
        data[i] = malloc(NAME_SIZE);
        tp_fill_pattern(data[i], NAME_SIZE, (uint64_t)i + 101);
        cr_assert_eq(tp_write_file(path, data[i], NAME_SIZE), 0, "%s", path);
    }
    cr_assert_gt(strlen(long_names[0]), 300);
    for (int i = 0; i < 3; i++)
        s_start_node(i, "64K", false);
    s_wait_converged(3);
    s_make_seeds();
    shoal_client_t *client = s_client(10000, true);
    uint64_t forwards = s_node_counter_sum(3, "forwards");
    uint64_t forwarded_in = s_node_counter_sum(3, "forwarded_in");
    uint8_t *buf = malloc(NAME_SIZE + 100);
    for (int round = 0; round < 2; round++) /* cold, then cached */
        for (int i = 0; i < NAMES; i++)
            for (int k = 0; k < 3; k++) {
                const char *name = i == NAMES - 1 ? long_names[k] : files[i][k];
                char uri[4 * TP_PATH_MAX];
                cr_assert_lt(snprintf(uri, sizeof uri, "file://%s%s", base, name), (int)sizeof uri);
                memset(buf, 0, NAME_SIZE);
                int64_t got = shoal_pread(client, uri, buf, NAME_SIZE + 100, 0);
                cr_assert_eq(got, NAME_SIZE, "read %s: %lld (%s)", uri, (long long)got,
                             got < 0 ? shoal_last_error() : "short");
                cr_assert_eq(memcmp(buf, data[i], NAME_SIZE), 0, "wrong bytes from %s", uri);
                shoal_stat_t stat;
                cr_assert_eq(shoal_stat(client, uri, &stat), 0, "%s", shoal_last_error());
                cr_assert_eq(stat.size, NAME_SIZE);
            }
    cr_assert_eq(s_node_counter_sum(3, "forwards"), forwards, "a node forwarded a client read");
    cr_assert_eq(s_node_counter_sum(3, "forwarded_in"), forwarded_in);
    cr_assert_eq(s_client_counter(client, "fallback_next_owner"), 0);
    cr_assert_eq(s_client_counter(client, "fallback_no_cache"), 0);

    /* refused spellings: the client answers as the node does (EACCES, the node's reason) */
    const char *const refused[] = {"/../../etc/passwd", "/bad%zzescape.bin", "/slash%2Fin.bin",
                                   "/ctl\x01.bin"};
    for (size_t r = 0; r < sizeof refused / sizeof *refused; r++) {
        char uri[4 * TP_PATH_MAX];
        snprintf(uri, sizeof uri, "file:///%s", refused[r]);
        msg_t request, reply;
        msg_init(&request, MSG_STAT_REQ, 1, 0);
        request.body.stat_request.uri = uri;
        cr_assert_eq(s_request(s_nodes[1].endpoint, &request, &reply, NULL, NULL), 0);
        cr_assert_eq(reply.header.type, MSG_ERROR);
        cr_assert_eq(reply.body.error.code, SHOAL_EACCES);
        char node_says[512];
        snprintf(node_says, sizeof node_says, "%s", reply.body.error.message);
        msg_fini(&reply);
        cr_assert_eq(shoal_pread(client, uri, buf, 10, 0), SHOAL_EACCES, "%s", uri);
        const char *said = shoal_last_error();
        cr_assert_not_null(strstr(said, node_says), "client: '%s', node: '%s'", said, node_says);
        shoal_stat_t stat;
        cr_assert_eq(shoal_stat(client, uri, &stat), SHOAL_EACCES);
        shoal_read_t reads[2] = {{.uri = uri, .buf = buf, .length = 10},
                                 {.uri = s_uris[0], .buf = buf + 10, .length = 10}};
        shoal_pread_many(client, reads, 2);
        cr_assert_eq(reads[0].result, SHOAL_EACCES);
    }
    free(buf);
    for (int i = 0; i < NAMES; i++)
        free(data[i]);
    shoal_client_destroy(&client);
}
