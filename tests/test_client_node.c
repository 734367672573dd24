/*
 * test_client_node.c - libshoal against a real shoald over a file:// mount of a temp dir with
 * files of 0 B, 1 B, 1 MiB and a ragged few MiB: stat, list, whole and random-range reads
 * across page and range boundaries, pread_many, 8 threads, forked children, load/evict/stats/
 * members, and the node killed with SIGKILL mid-test (reads go on through the UFS fallback).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "shoal.h"
#include "testproc.h"

#define PAGE_SIZE   65536
#define RANGE_PAGES 4
#define RANGE_BYTES (PAGE_SIZE * RANGE_PAGES)

typedef struct test_file {
    const char *name; /* below the data dir */
    size_t size;      /* bytes */
    uint8_t *data;    /* contents */
    char uri[TP_PATH_MAX + 16];
} test_file_t;

static test_file_t s_files[] = {
    {.name = "empty.bin", .size = 0},
    {.name = "one.bin", .size = 1},
    {.name = "mib.bin", .size = 1 << 20},
    {.name = "sub/ragged.bin", .size = 3 * (1 << 20) + 12345},
};
#define FILE_COUNT (sizeof s_files / sizeof *s_files)

static char *s_dir;                       /* temp dir: data/ and db/ */
static tp_proc_t s_node;                  /* shoald */
static int s_port;                        /* its data port */
static char s_seeds[64];                  /* "127.0.0.1:PORT" */
static char s_root_uri[TP_PATH_MAX + 16]; /* file://DIR/data/ */

static void s_start_node(void)
{
    char shoald[TP_PATH_MAX], data_dir[TP_PATH_MAX], db_dir[TP_PATH_MAX], log[TP_PATH_MAX];
    const char *build = getenv("SHOAL_BUILD_DIR");
    snprintf(shoald, sizeof shoald, "%s/node/shoald", build ? build : ".");
    snprintf(data_dir, sizeof data_dir, "%s/data", s_dir);
    snprintf(db_dir, sizeof db_dir, "%s/db", s_dir);
    snprintf(log, sizeof log, "%s/shoald.log", s_dir);
    char listen[64], mount[TP_PATH_MAX + 16], page[16], range[16];
    s_port = tp_free_port();
    cr_assert_gt(s_port, 0);
    snprintf(listen, sizeof listen, "tcp://127.0.0.1:%d", s_port);
    snprintf(s_seeds, sizeof s_seeds, "127.0.0.1:%d", s_port);
    snprintf(mount, sizeof mount, "file://%s/", data_dir);
    snprintf(page, sizeof page, "%d", PAGE_SIZE);
    snprintf(range, sizeof range, "%d", RANGE_PAGES);
    const char *argv[] = {shoald, "--name",          "n1",   "--data-dir",
                          db_dir, "--capacity",      "256M", "--listen",
                          listen, "--mount",         mount,  "--page-size",
                          page,   "--range-pages",   range,  "--threads",
                          "2",    "--fetch-threads", "4",    NULL};
    cr_assert_eq(tp_spawn(&s_node, argv, log), 0, "cannot start %s", shoald);
    if (tp_wait_port(s_port, 20000) != 0) {
        size_t len = 0;
        char *text = tp_read_file(log, &len);
        cr_log_error("shoald log:\n%s", text ? text : "(none)");
        free(text);
        cr_assert_fail("shoald did not listen on %d", s_port);
    }
}

static void s_setup(void)
{
    s_dir = tp_tempdir("client-node");
    cr_assert_not_null(s_dir);
    for (size_t i = 0; i < FILE_COUNT; i++) {
        test_file_t *file = &s_files[i];
        file->data = malloc(file->size ? file->size : 1);
        tp_fill_pattern(file->data, file->size, i + 100);
        char path[TP_PATH_MAX];
        snprintf(path, sizeof path, "%s/data/%s", s_dir, file->name);
        cr_assert_eq(tp_write_file(path, file->data, file->size), 0);
        snprintf(file->uri, sizeof file->uri, "file://%s", path);
    }
    snprintf(s_root_uri, sizeof s_root_uri, "file://%s/data/", s_dir);
    s_start_node();
}

static void s_streaming_stop(void);

static void s_teardown(void)
{
    s_streaming_stop();
    tp_stop(&s_node, 5000);
    for (size_t i = 0; i < FILE_COUNT; i++) {
        free(s_files[i].data);
        s_files[i].data = NULL;
    }
    if (s_dir) {
        tp_rmtree(s_dir);
        free(s_dir);
        s_dir = NULL;
    }
}

static shoal_client_t *s_client(int timeout_ms)
{
    shoal_client_options_t options = {.seeds = s_seeds, .timeout_ms = timeout_ms};
    shoal_client_t *client = shoal_client_new(&options);
    cr_assert_not_null(client, "%s", shoal_last_error());
    return client;
}

static json_t *s_counters(shoal_client_t *client)
{
    char *text = NULL;
    cr_assert_eq(shoal_client_counters_json(client, &text), 0);
    json_t *root = json_loads(text, 0, NULL);
    shoal_free(text);
    return root;
}

static uint64_t s_counter(shoal_client_t *client, const char *name)
{
    json_t *root = s_counters(client);
    uint64_t value = (uint64_t)json_integer_value(json_object_get(root, name));
    json_decref(root);
    return value;
}

/* Reads [offset, +length) of file and compares it with the truth. */
static void s_check_read(shoal_client_t *client, const test_file_t *file, uint64_t offset,
                         size_t length, uint8_t *buf)
{
    memset(buf, 0xa5, length);
    int64_t got = shoal_pread(client, file->uri, buf, length, offset);
    uint64_t want = offset >= file->size ? 0 : file->size - offset;
    if (want > length)
        want = length;
    cr_assert_eq(got, (int64_t)want, "%s [%llu, +%zu): got %lld (%s)", file->name,
                 (unsigned long long)offset, length, (long long)got, shoal_last_error());
    if (want)
        cr_assert(memcmp(buf, file->data + offset, want) == 0, "%s [%llu, +%zu) differs",
                  file->name, (unsigned long long)offset, length);
}

TestSuite(client_node, .init = s_setup, .fini = s_teardown, .timeout = 120);

Test(client_node, stat_list_and_whole_reads)
{
    shoal_client_t *client = s_client(5000);
    for (size_t i = 0; i < FILE_COUNT; i++) {
        shoal_stat_t stat;
        cr_assert_eq(shoal_stat(client, s_files[i].uri, &stat), 0, "%s", shoal_last_error());
        cr_assert_eq(stat.size, s_files[i].size);
        cr_assert_not(stat.is_dir);
        cr_assert_neq(stat.version[0], '\0');
    }
    shoal_stat_t stat;
    char missing[TP_PATH_MAX + 32];
    snprintf(missing, sizeof missing, "%smissing.bin", s_root_uri);
    cr_assert_eq(shoal_stat(client, missing, &stat), SHOAL_ENOENT);
    uint8_t one;
    cr_assert_eq(shoal_pread(client, missing, &one, 1, 0), SHOAL_ENOENT);
    cr_assert_eq(shoal_pread(client, "file:///etc/passwd", &one, 1, 0), SHOAL_EACCES,
                 "outside the mount: %s", shoal_last_error());

    shoal_listing_t *listing = NULL;
    cr_assert_eq(shoal_list(client, s_root_uri, true, &listing), 0, "%s", shoal_last_error());
    cr_assert_eq(shoal_listing_count(listing), FILE_COUNT);
    for (size_t i = 0; i < FILE_COUNT; i++) {
        bool found = false;
        for (size_t k = 0; k < shoal_listing_count(listing); k++)
            if (strcmp(shoal_listing_uri(listing, k), s_files[i].uri) == 0) {
                found = true;
                cr_assert_eq(shoal_listing_stat(listing, k)->size, s_files[i].size);
            }
        cr_assert(found, "%s not listed", s_files[i].uri);
    }
    shoal_listing_destroy(&listing);
    /* a fresh client that listed asks nobody for the stats of the files it listed */
    shoal_client_t *lister = s_client(5000);
    cr_assert_eq(shoal_list(lister, s_root_uri, true, &listing), 0, "%s", shoal_last_error());
    shoal_listing_destroy(&listing);
    uint64_t requests = s_counter(lister, "requests");
    for (size_t i = 0; i < FILE_COUNT; i++) {
        cr_assert_eq(shoal_stat(lister, s_files[i].uri, &stat), 0, "%s", shoal_last_error());
        cr_assert_eq(stat.size, s_files[i].size);
    }
    cr_assert_eq(s_counter(lister, "requests"), requests, "a stat after a listing asked a node");
    cr_assert_eq(s_counter(lister, "stat_cache_hits"), FILE_COUNT);
    shoal_client_destroy(&lister);
    cr_assert_eq(shoal_list(client, s_root_uri, false, &listing), 0);
    size_t dirs = 0;
    for (size_t k = 0; k < shoal_listing_count(listing); k++)
        dirs += shoal_listing_stat(listing, k)->is_dir;
    cr_assert_eq(dirs, 1, "sub/ is one directory entry");
    shoal_listing_destroy(&listing);

    uint8_t *buf = malloc(4 << 20);
    for (int pass = 0; pass < 2; pass++) /* miss, then hit */
        for (size_t i = 0; i < FILE_COUNT; i++)
            s_check_read(client, &s_files[i], 0, s_files[i].size + 10, buf);
    cr_assert_eq(s_counter(client, "fallback_ufs"), 0);
    cr_assert_eq(s_counter(client, "timeouts"), 0);
    free(buf);
    shoal_client_destroy(&client);
}

Test(client_node, random_ranges_across_page_and_range_boundaries)
{
    shoal_client_t *client = s_client(5000);
    const test_file_t *file = &s_files[3];
    uint8_t *buf = malloc(file->size + 1);
    uint64_t edges[] = {0,
                        1,
                        PAGE_SIZE - 1,
                        PAGE_SIZE,
                        PAGE_SIZE + 1,
                        RANGE_BYTES - 1,
                        RANGE_BYTES,
                        RANGE_BYTES + 1,
                        3 * RANGE_BYTES + 7,
                        file->size - 1,
                        file->size};
    size_t lengths[] = {1, 2, PAGE_SIZE, RANGE_BYTES, RANGE_BYTES + 1, 3 * RANGE_BYTES - 5};
    for (size_t e = 0; e < sizeof edges / sizeof *edges; e++)
        for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++)
            s_check_read(client, file, edges[e], lengths[l], buf);
    unsigned seed = 42;
    for (int i = 0; i < 100; i++) {
        uint64_t offset = (uint64_t)rand_r(&seed) % file->size;
        size_t length = (size_t)rand_r(&seed) % (2 * RANGE_BYTES) + 1;
        s_check_read(client, file, offset, length, buf);
    }
    /* pread_many over every file at once */
    shoal_read_t reads[32];
    uint8_t *bufs = malloc(32 * (size_t)RANGE_BYTES);
    for (size_t i = 0; i < 32; i++) {
        const test_file_t *target = &s_files[i % FILE_COUNT];
        uint64_t offset = target->size ? (uint64_t)rand_r(&seed) % target->size : 0;
        reads[i] = (shoal_read_t){.uri = target->uri,
                                  .offset = offset,
                                  .length = (size_t)rand_r(&seed) % RANGE_BYTES + 1,
                                  .buf = bufs + i * (size_t)RANGE_BYTES};
    }
    cr_assert_eq(shoal_pread_many(client, reads, 32), 0, "%s", shoal_last_error());
    for (size_t i = 0; i < 32; i++) {
        const test_file_t *target = &s_files[i % FILE_COUNT];
        uint64_t left = reads[i].offset >= target->size ? 0 : target->size - reads[i].offset;
        uint64_t want = left < reads[i].length ? left : reads[i].length;
        cr_assert_eq(reads[i].result, (int64_t)want, "read %zu", i);
        cr_assert(memcmp(reads[i].buf, target->data + reads[i].offset, want) == 0);
    }
    free(bufs);
    free(buf);
    shoal_client_destroy(&client);
}

typedef struct reader {
    shoal_client_t *client; /* shared */
    unsigned seed;          /* per thread */
    int failures;           /* out */
} reader_t;

static void *s_reader(void *arg)
{
    reader_t *reader = arg;
    uint8_t *buf = malloc(2 * RANGE_BYTES);
    for (int i = 0; i < 40; i++) {
        const test_file_t *file = &s_files[2 + rand_r(&reader->seed) % 2];
        uint64_t offset = (uint64_t)rand_r(&reader->seed) % file->size;
        size_t length = (size_t)rand_r(&reader->seed) % (2 * RANGE_BYTES) + 1;
        int64_t got = shoal_pread(reader->client, file->uri, buf, length, offset);
        uint64_t want = file->size - offset < length ? file->size - offset : length;
        if (got != (int64_t)want || memcmp(buf, file->data + offset, want) != 0)
            reader->failures++;
    }
    free(buf);
    return NULL;
}

Test(client_node, eight_threads_and_forked_children)
{
    shoal_client_t *client = s_client(5000);
    pthread_t threads[8];
    reader_t readers[8];
    for (int i = 0; i < 8; i++) {
        readers[i] = (reader_t){.client = client, .seed = (unsigned)i * 7 + 1};
        cr_assert_eq(pthread_create(&threads[i], NULL, s_reader, &readers[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        cr_assert_eq(readers[i].failures, 0, "thread %d", i);
    }
    /* the parent has used the client from many threads; now fork */
    pid_t children[3];
    for (int c = 0; c < 3; c++) {
        children[c] = fork();
        cr_assert_geq(children[c], 0);
        if (children[c] == 0) {
            reader_t reader = {.client = client, .seed = (unsigned)c + 1000};
            s_reader(&reader);
            shoal_client_destroy(&client);
            _exit(reader.failures == 0 ? 0 : 1);
        }
    }
    for (int c = 0; c < 3; c++) {
        int status = 0;
        pid_t done = 0;
        int64_t deadline = tp_now_ms() + 60000;
        while ((done = waitpid(children[c], &status, WNOHANG)) == 0 && tp_now_ms() < deadline)
            usleep(10000);
        if (done == 0)
            kill(children[c], SIGKILL);
        cr_assert_eq(done, children[c], "child %d hung", c);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d read wrong bytes", c);
    }
    reader_t after = {.client = client, .seed = 5};
    s_reader(&after);
    cr_assert_eq(after.failures, 0);
    shoal_client_destroy(&client);
}

Test(client_node, load_stats_members_evict)
{
    shoal_client_t *client = s_client(5000);
    uint64_t loaded = 0;
    cr_assert_eq(shoal_load(client, s_files[3].uri, 1, &loaded), 0, "%s", shoal_last_error());
    cr_assert_eq(loaded, s_files[3].size, "a cold load fetches every byte once");
    cr_assert_eq(shoal_load(client, s_files[0].uri, 1, NULL), 0, "empty file: nothing to do");
    cr_assert_lt(shoal_load(client, s_files[3].uri, 0, NULL), 0);

    char *text = NULL;
    cr_assert_eq(shoal_stats(client, &text), 0, "%s", shoal_last_error());
    json_t *root = json_loads(text, 0, NULL);
    shoal_free(text);
    cr_assert_not_null(root);
    json_t *nodes = json_object_get(root, "nodes");
    cr_assert_eq(json_array_size(nodes), 1);
    json_t *counters = json_object_get(json_array_get(nodes, 0), "counters");
    cr_assert(json_is_object(counters), "node counters present");
    cr_assert(json_is_object(json_object_get(root, "client")));
    cr_assert(json_is_integer(json_object_get(json_object_get(root, "client"), "fallback_ufs")));
    json_decref(root);

    cr_assert_eq(shoal_members(client, &text), 0, "%s", shoal_last_error());
    root = json_loads(text, 0, NULL);
    shoal_free(text);
    json_t *members = json_object_get(root, "members");
    cr_assert_eq(json_array_size(members), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(members, 0), "name")), "n1");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(members, 0), "state")),
                     "alive");
    cr_assert_eq(json_integer_value(json_object_get(root, "page_size")), PAGE_SIZE);
    json_decref(root);

    uint64_t evicted = 0;
    cr_assert_eq(shoal_evict(client, s_root_uri, true, &evicted), 0, "%s", shoal_last_error());
    cr_assert_geq(evicted, s_files[3].size);
    shoal_client_destroy(&client);
}

/* The node dies with SIGKILL between reads: every later read still returns the right bytes,
 * from the under storage, and the client says so in its counters (a disconnect, no timeout). */
Test(client_node, node_killed_reads_fall_back_to_ufs)
{
    shoal_client_t *client = s_client(500);
    const test_file_t *file = &s_files[3];
    uint8_t *buf = malloc(file->size);
    s_check_read(client, file, 0, file->size, buf);
    cr_assert_eq(s_counter(client, "fallback_ufs"), 0);

    kill(-s_node.pid, SIGKILL);
    int64_t deadline = tp_now_ms() + 10000;
    while (tp_alive(&s_node) && tp_now_ms() < deadline)
        usleep(10000);
    cr_assert_not(tp_alive(&s_node));

    unsigned seed = 7;
    for (int i = 0; i < 10; i++) {
        uint64_t offset = (uint64_t)rand_r(&seed) % file->size;
        s_check_read(client, file, offset, (size_t)rand_r(&seed) % (3 * RANGE_BYTES) + 1, buf);
    }
    s_check_read(client, file, 0, file->size, buf);
    cr_assert_gt(s_counter(client, "fallback_ufs"), 0);
    /* found through the dropped connection (refused reconnects), not the 500 ms timeout */
    cr_assert_gt(s_counter(client, "disconnects"), 0);
    cr_assert_eq(s_counter(client, "timeouts"), 0);
    free(buf);
    shoal_client_destroy(&client);
}

/* A listing longer than one LIST reply (at most 1000 entries) is paged with cursors. */
Test(client_node, long_listing_pages_with_cursors)
{
    char path[TP_PATH_MAX];
    for (int i = 0; i < 1500; i++) {
        snprintf(path, sizeof path, "%s/data/many/f%04d", s_dir, i);
        cr_assert_eq(tp_write_file(path, "x", 1), 0);
    }
    char uri[TP_PATH_MAX + 32];
    snprintf(uri, sizeof uri, "%smany/", s_root_uri);
    shoal_client_t *client = s_client(5000);
    shoal_listing_t *listing = NULL;
    cr_assert_eq(shoal_list(client, uri, false, &listing), 0, "%s", shoal_last_error());
    cr_assert_eq(shoal_listing_count(listing), 1500);
    for (size_t i = 1; i < 1500; i++)
        cr_assert_neq(strcmp(shoal_listing_uri(listing, i - 1), shoal_listing_uri(listing, i)), 0,
                      "entry %zu repeated", i);
    shoal_listing_destroy(&listing);
    cr_assert_eq(s_counter(client, "fallback_ufs"), 0);
    cr_assert_geq(s_counter(client, "requests"), 3, "two LIST pages at least");
    shoal_client_destroy(&client);
}

/* ---- a node over an HTTP origin that streams cold ranges (MSG_READ_STREAM) ------------- */

typedef struct s_streaming {
    tp_server_t origin; /* badhttp.py over data/ */
    tp_proc_t node;     /* shoald mounted on it */
    char seeds[64];     /* its "127.0.0.1:PORT" */
} s_streaming_t;

static s_streaming_t s_st; /* stopped by s_teardown, also when a test fails */

static void s_streaming_start(s_streaming_t *st)
{
    memset(st, 0, sizeof *st);
    char root[TP_PATH_MAX];
    snprintf(root, sizeof root, "%s/data", s_dir);
    cr_assert_eq(tp_badhttp_start(&st->origin, root), 0);
    char shoald[TP_PATH_MAX], db_dir[TP_PATH_MAX], log[TP_PATH_MAX], listen[64];
    char mount[300], page[16], range[16];
    const char *build = getenv("SHOAL_BUILD_DIR");
    snprintf(shoald, sizeof shoald, "%s/node/shoald", build ? build : ".");
    snprintf(db_dir, sizeof db_dir, "%s/db-streaming", s_dir);
    snprintf(log, sizeof log, "%s/shoald-streaming.log", s_dir);
    int port = tp_free_port();
    snprintf(listen, sizeof listen, "tcp://127.0.0.1:%d", port);
    snprintf(st->seeds, sizeof st->seeds, "127.0.0.1:%d", port);
    snprintf(mount, sizeof mount, "%s/", st->origin.base_url);
    snprintf(page, sizeof page, "%d", PAGE_SIZE);
    snprintf(range, sizeof range, "%d", RANGE_PAGES);
    const char *argv[] = {
        shoald, "--name",        "n2",     "--data-dir", db_dir, "--capacity",
        "256M", "--listen",      listen,   "--mount",    mount,  "--page-size",
        page,   "--range-pages", range,    "--threads",  "2",    "--fetch-threads",
        "4",    "--store",       "memory", NULL};
    cr_assert_eq(tp_spawn(&st->node, argv, log), 0, "cannot start %s", shoald);
    cr_assert_eq(tp_wait_port(port, 20000), 0, "shoald did not listen on %d", port);
}

static void s_streaming_stop(void)
{
    if (s_st.node.pid > 0)
        tp_stop(&s_st.node, 5000);
    tp_server_stop(&s_st.origin);
    memset(&s_st, 0, sizeof s_st);
}

/* read_partial_replies of the node `admin` talks to. */
static uint64_t s_node_partials(shoal_client_t *admin)
{
    char *text = NULL;
    cr_assert_eq(shoal_stats(admin, &text), 0, "%s", shoal_last_error());
    json_t *root = json_loads(text, 0, NULL);
    shoal_free(text);
    json_t *counters =
        json_object_get(json_array_get(json_object_get(root, "nodes"), 0), "counters");
    json_t *value = json_object_get(counters, "read_partial_replies");
    cr_assert(json_is_integer(value), "no read_partial_replies counter");
    uint64_t partials = (uint64_t)json_integer_value(value);
    json_decref(root);
    return partials;
}

/* One whole-file read on its own thread (it blocks while the origin pauses). */
typedef struct s_bg_read {
    shoal_client_t *client; /* reads with it */
    char uri[400];          /* what */
    uint8_t *buf;           /* where */
    size_t length;          /* how much */
    int64_t result;         /* shoal_pread's answer */
    pthread_t thread;       /* the reader */
} s_bg_read_t;

static void *s_bg_reader(void *arg)
{
    s_bg_read_t *read = arg;
    read->result = shoal_pread(read->client, read->uri, read->buf, read->length, 0);
    return NULL;
}

/* Starts a thread reading all of `file` into `buf` (poisoned first) through the origin's
 * /pause/TOKEN/ path, which holds each range at half until s_go(TOKEN). */
static void s_bg_start(s_bg_read_t *read, shoal_client_t *client, uint8_t *buf, const char *token,
                       const test_file_t *file)
{
    *read = (s_bg_read_t){.client = client, .buf = buf, .length = file->size};
    snprintf(read->uri, sizeof read->uri, "%s/pause/%s/%s", s_st.origin.base_url, token,
             file->name);
    memset(buf, 0xa5, file->size);
    cr_assert_eq(pthread_create(&read->thread, NULL, s_bg_reader, read), 0);
}

/* Waits until the node has sent more than `before` partial replies. */
static void s_wait_partials(shoal_client_t *admin, uint64_t before)
{
    int64_t deadline = tp_now_ms() + 20000;
    while (s_node_partials(admin) <= before && tp_now_ms() < deadline)
        usleep(10000);
    cr_assert_gt(s_node_partials(admin), before, "the node sent no partial reply");
}

/* Creates data/.go-TOKEN: the origin's /pause/TOKEN/ replies send their second half. */
static void s_go(const char *token)
{
    char path[TP_PATH_MAX];
    snprintf(path, sizeof path, "%s/data/.go-%s", s_dir, token);
    cr_assert_eq(tp_write_file(path, "", 0), 0);
}

/* libshoal through a node that streams: cold reads of whole files and spans across page and
 * range boundaries get the origin's bytes, in parts while the origin is still sending; then
 * the node is killed while it streams, and the read still succeeds (from the UFS). */
Test(client_node, streaming_node_reads_and_dies_mid_stream)
{
    s_streaming_start(&s_st);
    shoal_client_options_t options = {.seeds = s_st.seeds, .timeout_ms = 5000};
    shoal_client_t *client = shoal_client_new(&options);
    shoal_client_t *admin = shoal_client_new(&options);
    cr_assert(client && admin, "%s", shoal_last_error());
    const test_file_t *file = &s_files[3]; /* 3 MiB + 12345: 13 ranges, a ragged tail */
    uint8_t *buf = malloc(file->size);

    /* Paused at half of every range: the node's partial replies are out before the rest. */
    s_bg_read_t read;
    s_bg_start(&read, client, buf, "a", file);
    s_wait_partials(admin, 0);
    s_go("a");
    pthread_join(read.thread, NULL);
    cr_assert_eq(read.result, (int64_t)file->size, "%lld: %s", (long long)read.result,
                 shoal_last_error());
    cr_assert(memcmp(buf, file->data, file->size) == 0, "streamed bytes differ");
    cr_assert_gt(s_counter(client, "partial_replies"), 0);
    cr_assert_eq(s_counter(client, "bad_replies"), 0);
    cr_assert_eq(s_counter(client, "fallback_ufs"), 0);

    /* Spans across page and range boundaries, cold (new uris) and then hot. */
    char uri[400];
    uint64_t offsets[] = {1, PAGE_SIZE - 1, RANGE_BYTES - 7, 5 * RANGE_BYTES + 3, file->size - 9};
    size_t lengths[] = {2, PAGE_SIZE + 2, 2 * RANGE_BYTES + 5, 20};
    for (int pass = 0; pass < 2; pass++) {
        for (size_t o = 0; o < sizeof offsets / sizeof *offsets; o++) {
            for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++) {
                snprintf(uri, sizeof uri, "%s/%s", s_st.origin.base_url, file->name);
                uint64_t want =
                    file->size - offsets[o] < lengths[l] ? file->size - offsets[o] : lengths[l];
                memset(buf, 0xa5, want);
                int64_t got = shoal_pread(client, uri, buf, lengths[l], offsets[o]);
                cr_assert_eq(got, (int64_t)want, "[%llu, +%zu): %lld %s",
                             (unsigned long long)offsets[o], lengths[l], (long long)got,
                             shoal_last_error());
                cr_assert(memcmp(buf, file->data + offsets[o], want) == 0, "[%llu, +%zu)",
                          (unsigned long long)offsets[o], lengths[l]);
            }
        }
    }

    /* Killed while streaming: the read goes on elsewhere (here: the client's own UFS). */
    uint64_t partials = s_node_partials(admin);
    s_bg_read_t killed;
    s_bg_start(&killed, client, buf, "b", file);
    s_wait_partials(admin, partials);
    kill(-s_st.node.pid, SIGKILL);
    int64_t deadline = tp_now_ms() + 10000;
    while (tp_alive(&s_st.node) && tp_now_ms() < deadline)
        usleep(10000);
    cr_assert_not(tp_alive(&s_st.node));
    s_go("b");
    pthread_join(killed.thread, NULL);
    cr_assert_eq(killed.result, (int64_t)file->size, "%lld: %s", (long long)killed.result,
                 shoal_last_error());
    cr_assert(memcmp(buf, file->data, file->size) == 0, "bytes differ after the node died");
    cr_assert_gt(s_counter(client, "fallback_ufs"), 0);
    free(buf);
    shoal_client_destroy(&admin);
    shoal_client_destroy(&client);
}
