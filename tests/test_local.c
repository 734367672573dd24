/*
 * test_local.c - short-circuit local reads against a real shoald (file:// mount of a temp dir,
 * --local-socket in the temp dir, SHOAL_LOCAL pointing at it): warm bytes of every (offset,
 * length) around page and 64 KiB chunk boundaries come by pread with zero ZeroMQ bytes; a
 * flipped byte in a data file is never served; generations dropped while held stay correct; a
 * node restart and kill -9 mid-read never fail a read; a forked child reads through its own
 * connection; SHOAL_SHORT_CIRCUIT=0 reads none; remembered page locations are LOCATEd again
 * after the relocate interval.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <grp.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "shoal.h"
#include "testproc.h"

#define PAGE_SIZE   (256 << 10)
#define RANGE_PAGES 2
#define RANGE_BYTES (PAGE_SIZE * RANGE_PAGES)
#define CHUNK       65536
#define BIG_SIZE    (3 * RANGE_BYTES + 12345) /* 3 ranges and a ragged piece */
#define FILL_FILES  12                        /* files of FILL_SIZE to push generations out */
#define FILL_SIZE   (1 << 20)

static char *s_dir;        /* temp dir: data/, db/, n.sock */
static tp_proc_t s_node;   /* shoald */
static int s_port;         /* its data port */
static char s_seeds[64];   /* "127.0.0.1:PORT" */
static char s_socket[256]; /* its --local-socket */
static uint8_t *s_big;     /* big.bin's bytes */
static char s_big_uri[TP_PATH_MAX + 16];
static const char *s_capacity = "256M";

static void s_start_node(void)
{
    char shoald[TP_PATH_MAX], data_dir[TP_PATH_MAX], db_dir[TP_PATH_MAX], log[TP_PATH_MAX];
    const char *build = getenv("SHOAL_BUILD_DIR");
    snprintf(shoald, sizeof shoald, "%s/node/shoald", build ? build : ".");
    snprintf(data_dir, sizeof data_dir, "%s/data", s_dir);
    snprintf(db_dir, sizeof db_dir, "%s/db", s_dir);
    snprintf(log, sizeof log, "%s/shoald.log", s_dir);
    char listen[64], mount[TP_PATH_MAX + 16], page[16], range[16];
    if (s_port == 0)
        s_port = tp_free_port(); /* a restart keeps the port: the view names it */
    cr_assert_gt(s_port, 0);
    snprintf(listen, sizeof listen, "tcp://127.0.0.1:%d", s_port);
    snprintf(s_seeds, sizeof s_seeds, "127.0.0.1:%d", s_port);
    snprintf(mount, sizeof mount, "file://%s/", data_dir);
    snprintf(page, sizeof page, "%d", PAGE_SIZE);
    snprintf(range, sizeof range, "%d", RANGE_PAGES);
    const char *argv[] = {shoald, "--name",         "n1",       "--data-dir",
                          db_dir, "--capacity",     s_capacity, "--listen",
                          listen, "--mount",        mount,      "--page-size",
                          page,   "--range-pages",  range,      "--threads",
                          "2",    "--local-socket", s_socket,   NULL};
    cr_assert_eq(tp_spawn(&s_node, argv, log), 0, "cannot start %s", shoald);
    int64_t deadline = tp_now_ms() + 20000;
    struct stat st;
    while ((tp_wait_port(s_port, 100) != 0 || stat(s_socket, &st) != 0) && tp_now_ms() < deadline &&
           tp_alive(&s_node))
        ;
    if (tp_wait_port(s_port, 100) != 0 || stat(s_socket, &st) != 0) {
        size_t len = 0;
        char *text = tp_read_file(log, &len);
        cr_log_error("shoald log:\n%s", text ? text : "(none)");
        free(text);
        cr_assert_fail("shoald did not listen on %d and %s", s_port, s_socket);
    }
}

static void s_setup_with(const char *capacity)
{
    s_capacity = capacity;
    s_port = 0;
    s_dir = tp_tempdir("local");
    cr_assert_not_null(s_dir);
    snprintf(s_socket, sizeof s_socket, "%s/n.sock", s_dir);
    cr_assert_lt(strlen(s_socket), 108);
    s_big = malloc(BIG_SIZE);
    tp_fill_pattern(s_big, BIG_SIZE, 11);
    char path[TP_PATH_MAX];
    snprintf(path, sizeof path, "%s/data/big.bin", s_dir);
    cr_assert_eq(tp_write_file(path, s_big, BIG_SIZE), 0);
    snprintf(s_big_uri, sizeof s_big_uri, "file://%s", path);
    uint8_t *fill = malloc(FILL_SIZE);
    for (int i = 0; i < FILL_FILES; i++) {
        tp_fill_pattern(fill, FILL_SIZE, 100 + (uint64_t)i);
        snprintf(path, sizeof path, "%s/data/fill-%d.bin", s_dir, i);
        cr_assert_eq(tp_write_file(path, fill, FILL_SIZE), 0);
    }
    free(fill);
    setenv("SHOAL_LOCAL", s_socket, 1);
    s_start_node();
}

static void s_setup(void)
{
    s_setup_with("256M");
}

static void s_setup_small(void)
{
    s_setup_with("4M");
}

static void s_teardown(void)
{
    tp_stop(&s_node, 5000);
    free(s_big);
    s_big = NULL;
    if (s_dir) {
        tp_rmtree(s_dir);
        free(s_dir);
        s_dir = NULL;
    }
    unsetenv("SHOAL_LOCAL");
}

/* A client whose stats stay cached for the whole test (so a warm pass sends no learn op). */
static shoal_client_t *s_client(void)
{
    shoal_client_options_t options = {
        .seeds = s_seeds, .timeout_ms = 5000, .metadata_ttl_ms = 600000};
    shoal_client_t *client = shoal_client_new(&options);
    cr_assert_not_null(client, "%s", shoal_last_error());
    return client;
}

static uint64_t s_counter(shoal_client_t *client, const char *name)
{
    char *text = NULL;
    cr_assert_eq(shoal_client_counters_json(client, &text), 0);
    json_t *root = json_loads(text, 0, NULL);
    shoal_free(text);
    uint64_t value = (uint64_t)json_integer_value(json_object_get(root, name));
    json_decref(root);
    return value;
}

/* Reads [offset, +length) of big.bin; false (with a log line) when it failed or differs. */
static bool s_read_ok(shoal_client_t *client, uint8_t *buf, uint64_t offset, size_t length)
{
    memset(buf, 0xa5, length);
    int64_t got = shoal_pread(client, s_big_uri, buf, length, offset);
    uint64_t want = offset >= BIG_SIZE ? 0 : BIG_SIZE - offset;
    if (want > length)
        want = length;
    if (got != (int64_t)want) {
        cr_log_error("[%llu, +%zu): got %lld (%s)", (unsigned long long)offset, length,
                     (long long)got, shoal_last_error());
        return false;
    }
    if (want && memcmp(buf, s_big + offset, want) != 0) {
        cr_log_error("[%llu, +%zu) differs", (unsigned long long)offset, length);
        return false;
    }
    return true;
}

/* Every (offset, length) around page and 64 KiB chunk boundaries of big.bin. */
static void s_spans(shoal_client_t *client, uint8_t *buf)
{
    const uint64_t offsets[] = {0,
                                1,
                                CHUNK - 1,
                                CHUNK,
                                CHUNK + 1,
                                PAGE_SIZE - 1,
                                PAGE_SIZE,
                                PAGE_SIZE + CHUNK + 3,
                                RANGE_BYTES - 1,
                                RANGE_BYTES,
                                3 * RANGE_BYTES + 1,
                                BIG_SIZE - 1};
    const size_t lengths[] = {
        1, 2, CHUNK - 1, CHUNK, CHUNK + 1, PAGE_SIZE, PAGE_SIZE + 1, 600000, BIG_SIZE};
    for (size_t o = 0; o < sizeof offsets / sizeof *offsets; o++)
        for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++)
            cr_assert(s_read_ok(client, buf, offsets[o], lengths[l]), "off %llu len %zu",
                      (unsigned long long)offsets[o], lengths[l]);
}

/* Reads big.bin whole until a read takes no byte over ZeroMQ (the node stores the pages of a
 * cold read after it answered it): polling with a deadline of 30 s. */
static void s_wait_warm(shoal_client_t *client, uint8_t *buf)
{
    int64_t deadline = tp_now_ms() + 30000;
    for (;;) {
        uint64_t zmq = s_counter(client, "bytes_zmq");
        cr_assert(s_read_ok(client, buf, 0, BIG_SIZE));
        if (s_counter(client, "bytes_zmq") == zmq)
            return;
        cr_assert_lt(tp_now_ms(), deadline, "the node never held all of big.bin");
        usleep(10000);
    }
}

/* Flips one byte every 64 KiB in every generation data file under the node's db dir. Returns
 * how many bytes it flipped. */
static int s_flip_data_files(const char *dir)
{
    int flipped = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *entry;
    while ((entry = readdir(d))) {
        if (entry->d_name[0] == '.')
            continue;
        char path[TP_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            flipped += s_flip_data_files(path);
            continue;
        }
        size_t len = strlen(entry->d_name);
        if (strncmp(entry->d_name, "gen-", 4) != 0 || len < 4 ||
            strcmp(entry->d_name + len - 4, ".dat") != 0)
            continue;
        int fd = open(path, O_RDWR);
        cr_assert_geq(fd, 0);
        for (off_t at = 1000; at < st.st_size; at += CHUNK) {
            uint8_t byte;
            cr_assert_eq(pread(fd, &byte, 1, at), 1);
            byte ^= 0x01;
            cr_assert_eq(pwrite(fd, &byte, 1, at), 1);
            flipped++;
        }
        close(fd);
    }
    closedir(d);
    return flipped;
}

TestSuite(local, .init = s_setup, .fini = s_teardown, .timeout = 240);

Test(local, warm_spans_come_by_short_circuit)
{
    shoal_client_t *client = s_client();
    uint8_t *buf = malloc(BIG_SIZE);
    cr_assert(s_read_ok(client, buf, 0, BIG_SIZE)); /* cold: the node fetches and keeps it */
    s_wait_warm(client, buf);
    uint64_t zmq = s_counter(client, "bytes_zmq");
    uint64_t local_bytes = s_counter(client, "bytes_short_circuit");
    s_spans(client, buf);
    cr_assert_gt(s_counter(client, "bytes_short_circuit"), local_bytes);
    cr_assert_eq(s_counter(client, "bytes_zmq"), zmq, "the warm pass read bytes over ZeroMQ");
    cr_assert_eq(s_counter(client, "local_bad_sums"), 0);
    cr_assert_gt(s_counter(client, "local_locates"), 0);
    free(buf);
    shoal_client_destroy(&client);
}

Test(local, the_view_names_this_hosts_node_without_shoal_local)
{
    unsetenv("SHOAL_LOCAL"); /* only the view says where the node's socket is */
    shoal_client_t *client = s_client();
    uint8_t *buf = malloc(BIG_SIZE);
    cr_assert(s_read_ok(client, buf, 0, BIG_SIZE));
    s_wait_warm(client, buf);
    uint64_t local_bytes = s_counter(client, "bytes_short_circuit");
    cr_assert(s_read_ok(client, buf, 0, BIG_SIZE));
    cr_assert_eq(s_counter(client, "bytes_short_circuit"), local_bytes + BIG_SIZE,
                 "the node on this host (host id and socket from the view) was not used");
    setenv("SHOAL_LOCAL", s_socket, 1);
    free(buf);
    shoal_client_destroy(&client);
}

Test(local, a_flipped_byte_is_never_served)
{
    shoal_client_t *client = s_client();
    uint8_t *buf = malloc(BIG_SIZE);
    cr_assert(s_read_ok(client, buf, 0, BIG_SIZE));
    s_wait_warm(client, buf);
    char db[TP_PATH_MAX];
    snprintf(db, sizeof db, "%s/db", s_dir);
    cr_assert_gt(s_flip_data_files(db), 0, "no data file found under %s", db);
    s_spans(client, buf);
    cr_assert_gt(s_counter(client, "local_bad_sums"), 0);
    free(buf);
    shoal_client_destroy(&client);
}

Test(local, forked_child_reads_through_its_own_connection)
{
    shoal_client_t *client = s_client();
    uint8_t *buf = malloc(BIG_SIZE);
    cr_assert(s_read_ok(client, buf, 0, BIG_SIZE));
    s_wait_warm(client, buf);
    cr_assert_gt(s_counter(client, "bytes_short_circuit"), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        uint64_t before = s_counter(client, "bytes_short_circuit");
        bool ok = s_read_ok(client, buf, 0, BIG_SIZE) &&
                  s_counter(client, "bytes_short_circuit") > before;
        _exit(ok ? 0 : 1); /* no destroy: see test_client.c client_local forked_child_... */
    }
    int status = 0;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child did not read locally");
    cr_assert(s_read_ok(client, buf, 0, BIG_SIZE));
    free(buf);
    shoal_client_destroy(&client);
}

/* A forked child's inherited short-circuit descriptors are closed at the fork itself
 * (pthread_atfork), not at its first shoal call: a child that reuses their numbers first (here:
 * each generation descriptor closed and the number reopened on /dev/null, as closerange and
 * dup2 do) keeps what it opened, and still reads right. */
Test(local, a_forked_child_keeps_descriptors_it_reopened)
{
    shoal_client_t *client = s_client();
    uint8_t *buf = malloc(BIG_SIZE);
    cr_assert(s_read_ok(client, buf, 0, BIG_SIZE));
    s_wait_warm(client, buf);
    cr_assert_gt(s_counter(client, "bytes_short_circuit"), 0);
    int held = 0; /* generation descriptors the parent holds */
    DIR *dir = opendir("/proc/self/fd");
    cr_assert_not_null(dir);
    for (struct dirent *e; (e = readdir(dir));) {
        char link[TP_PATH_MAX], target[TP_PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        held += n > 0 && (target[n] = '\0', strstr(target, "gen-") && strstr(target, ".dat"));
    }
    closedir(dir);
    cr_assert_gt(held, 0, "the parent holds no generation descriptor");
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        /* at the fork they were closed: none is inherited */
        int inherited = 0;
        DIR *d = opendir("/proc/self/fd");
        for (struct dirent *e; d && (e = readdir(d));) {
            char link[TP_PATH_MAX], target[TP_PATH_MAX];
            snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
            ssize_t n = readlink(link, target, sizeof target - 1);
            inherited +=
                n > 0 && (target[n] = '\0', strstr(target, "gen-") && strstr(target, ".dat"));
        }
        if (d)
            closedir(d);
        /* numbers now free are reused by the child's own files */
        int mine[8], count = 0;
        for (; count < 8; count++)
            mine[count] = open("/dev/null", O_RDONLY);
        bool ok = inherited == 0 && s_read_ok(client, buf, 0, BIG_SIZE);
        for (int i = 0; i < count; i++)
            ok = ok && fcntl(mine[i], F_GETFD) >= 0; /* still open: never closed under it */
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the child inherited generation descriptors or lost its own");
    cr_assert(s_read_ok(client, buf, 0, BIG_SIZE));
    free(buf);
    shoal_client_destroy(&client);
}

Test(local, short_circuit_off_reads_by_zeromq)
{
    setenv("SHOAL_SHORT_CIRCUIT", "0", 1);
    shoal_client_t *client = s_client();
    uint8_t *buf = malloc(BIG_SIZE);
    cr_assert(s_read_ok(client, buf, 0, BIG_SIZE));
    s_spans(client, buf);
    cr_assert_eq(s_counter(client, "bytes_short_circuit"), 0);
    cr_assert_eq(s_counter(client, "local_locates"), 0);
    unsetenv("SHOAL_SHORT_CIRCUIT");
    free(buf);
    shoal_client_destroy(&client);
}

/* A read of many ranges at once (over CLIENT_LOCAL_PARALLEL_BYTES, read.c) is read on the local
 * table's helper threads too: every byte right, none by ZeroMQ; flipped bytes under it are still
 * never served. */
Test(local, a_big_read_on_helper_threads_is_right)
{
    size_t size = 12 * RANGE_BYTES + 777;
    uint8_t *want = malloc(size), *buf = malloc(size);
    tp_fill_pattern(want, size, 12);
    char path[TP_PATH_MAX], uri[TP_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/data/wide.bin", s_dir);
    cr_assert_eq(tp_write_file(path, want, size), 0);
    snprintf(uri, sizeof uri, "file://%s", path);
    setenv("SHOAL_LOCAL_PARALLEL_BYTES", "1", 1); /* every piece and span on the helpers */
    shoal_client_t *client = s_client();
    int64_t deadline = tp_now_ms() + 30000;
    uint64_t zmq;
    do { /* until the node holds it all */
        zmq = s_counter(client, "bytes_zmq");
        cr_assert_eq(shoal_pread(client, uri, buf, size, 0), (int64_t)size, "%s",
                     shoal_last_error());
        cr_assert(memcmp(buf, want, size) == 0);
        cr_assert_lt(tp_now_ms(), deadline, "the node never held all of wide.bin");
    } while (s_counter(client, "bytes_zmq") != zmq);
    const uint64_t offsets[] = {0, 1, CHUNK + 3, PAGE_SIZE - 1, RANGE_BYTES + 5};
    for (size_t i = 0; i < sizeof offsets / sizeof *offsets; i++) {
        memset(buf, 0xa5, size);
        int64_t got = shoal_pread(client, uri, buf, size, offsets[i]);
        cr_assert_eq(got, (int64_t)(size - offsets[i]));
        cr_assert(memcmp(buf, want + offsets[i], size - offsets[i]) == 0, "at %llu",
                  (unsigned long long)offsets[i]);
    }
    /* many warm reads back to back: pieces on helpers whose remembered pages are read in
     * parallel too (a run inside a run: once a deadlock when the caller's share ended first) */
    for (int round = 0; round < 300; round++) {
        cr_assert_eq(shoal_pread(client, uri, buf, size, 0), (int64_t)size);
        cr_assert(memcmp(buf, want, size) == 0, "round %d", round);
    }
    cr_assert_eq(s_counter(client, "bytes_zmq"), zmq, "a warm byte went by ZeroMQ");
    if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
        cr_assert_gt(s_counter(client, "local_parallel_runs"), 0, "no helper thread read");
    char db[TP_PATH_MAX];
    snprintf(db, sizeof db, "%s/db", s_dir);
    cr_assert_gt(s_flip_data_files(db), 0);
    memset(buf, 0xa5, size);
    cr_assert_eq(shoal_pread(client, uri, buf, size, 0), (int64_t)size);
    cr_assert(memcmp(buf, want, size) == 0, "a flipped byte was served");
    cr_assert_gt(s_counter(client, "local_bad_sums"), 0);
    unsetenv("SHOAL_LOCAL_PARALLEL_BYTES");
    free(buf);
    free(want);
    shoal_client_destroy(&client);
}

/* The node's counter `name` (STATS). */
static uint64_t s_node_counter(shoal_client_t *client, const char *name)
{
    char *text = NULL;
    cr_assert_eq(shoal_stats(client, &text), 0, "%s", shoal_last_error());
    json_t *root = json_loads(text, 0, NULL);
    shoal_free(text);
    json_t *node = json_array_get(json_object_get(root, "nodes"), 0);
    uint64_t value =
        (uint64_t)json_integer_value(json_object_get(json_object_get(node, "counters"), name));
    json_decref(root);
    return value;
}

/* Remembered locations are read with no LOCATE for SHOAL_LOCAL_RELOCATE_MS only: a page read
 * again and again is LOCATEd again (the node's local_locates grows), so the store goes on
 * learning what is read. */
Test(local, remembered_pages_are_located_again_after_the_interval)
{
    setenv("SHOAL_LOCAL_RELOCATE_MS", "100", 1);
    shoal_client_t *client = s_client();
    uint8_t *buf = malloc(BIG_SIZE);
    cr_assert(s_read_ok(client, buf, 0, BIG_SIZE));
    unsetenv("SHOAL_LOCAL_RELOCATE_MS"); /* read at the first call */
    s_wait_warm(client, buf);
    uint64_t locates = s_node_counter(client, "local_locates");
    cr_assert_gt(locates, 0);
    int64_t deadline = tp_now_ms() + 30000;
    while (s_node_counter(client, "local_locates") == locates && tp_now_ms() < deadline)
        cr_assert(s_read_ok(client, buf, PAGE_SIZE, CHUNK));
    cr_assert_gt(s_node_counter(client, "local_locates"), locates,
                 "a remembered page was never LOCATEd again");
    free(buf);
    shoal_client_destroy(&client);
}

/* A reader thread that reads big.bin in pieces until told to stop, counting failures. */
typedef struct reader {
    shoal_client_t *client;
    atomic_bool stop;
    _Atomic long reads;
    _Atomic long failures;
} reader_t;

static void *s_reader(void *arg)
{
    reader_t *reader = arg;
    uint8_t *buf = malloc(PAGE_SIZE + CHUNK);
    uint64_t offset = 0;
    while (!atomic_load(&reader->stop)) {
        size_t length = PAGE_SIZE + CHUNK / 2;
        if (!s_read_ok(reader->client, buf, offset, length))
            atomic_fetch_add(&reader->failures, 1);
        atomic_fetch_add(&reader->reads, 1);
        offset = (offset + 3 * CHUNK + 7) % BIG_SIZE;
    }
    free(buf);
    return NULL;
}

/* Waits until the reader did `more` reads beyond now (or 60 s). */
static void s_reader_progress(reader_t *reader, long more)
{
    long target = atomic_load(&reader->reads) + more;
    int64_t deadline = tp_now_ms() + 60000;
    while (atomic_load(&reader->reads) < target && tp_now_ms() < deadline)
        usleep(1000);
    cr_assert_geq(atomic_load(&reader->reads), target, "the reader made no progress");
}

Test(local, restart_and_kill9_mid_read_never_fail_a_read)
{
    /* Every read LOCATEs: with remembered locations (read with no LOCATE for up to the
     * relocate interval) the reader may not see the restart before the main thread's read
     * takes another connection, and nothing is reconnected to count. */
    setenv("SHOAL_LOCAL_RELOCATE_MS", "0", 1);
    shoal_client_t *client = s_client();
    uint8_t *buf = malloc(BIG_SIZE);
    cr_assert(s_read_ok(client, buf, 0, BIG_SIZE));
    unsetenv("SHOAL_LOCAL_RELOCATE_MS"); /* read at the first call */
    reader_t reader = {.client = client};
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, s_reader, &reader), 0);
    s_reader_progress(&reader, 20);
    tp_stop(&s_node, 5000); /* a clean restart */
    s_reader_progress(&reader, 5);
    s_start_node();
    s_reader_progress(&reader, 20);
    kill(-s_node.pid, SIGKILL); /* and kill -9 while reads go on */
    tp_stop(&s_node, 5000);
    s_reader_progress(&reader, 5);
    s_start_node();
    /* warm again after the restart: short-circuit comes back on a new connection */
    cr_assert(s_read_ok(client, buf, 0, BIG_SIZE));
    uint64_t local_bytes = s_counter(client, "bytes_short_circuit");
    int64_t deadline = tp_now_ms() + 30000;
    while (s_counter(client, "bytes_short_circuit") == local_bytes && tp_now_ms() < deadline)
        s_reader_progress(&reader, 1);
    atomic_store(&reader.stop, true);
    pthread_join(thread, NULL);
    cr_assert_eq(atomic_load(&reader.failures), 0, "reads failed across restarts");
    cr_assert_gt(s_counter(client, "bytes_short_circuit"), local_bytes,
                 "short-circuit did not come back after the restart");
    cr_assert_gt(s_counter(client, "local_reconnects"), 0);
    free(buf);
    shoal_client_destroy(&client);
}

/* A small store: reading other files pushes big.bin's generations out while the client holds
 * their descriptors (the node cuts their files): reads stay right. */
TestSuite(local_small, .init = s_setup_small, .fini = s_teardown, .timeout = 240);

Test(local_small, generations_dropped_while_held_stay_correct)
{
    shoal_client_t *client = s_client();
    uint8_t *buf = malloc(BIG_SIZE > FILL_SIZE ? BIG_SIZE : FILL_SIZE);
    uint8_t *fill = malloc(FILL_SIZE);
    cr_assert(s_read_ok(client, buf, 0, BIG_SIZE));
    cr_assert(s_read_ok(client, buf, 0, BIG_SIZE));
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < FILL_FILES; i++) {
            char uri[TP_PATH_MAX + 32];
            snprintf(uri, sizeof uri, "file://%s/data/fill-%d.bin", s_dir, i);
            cr_assert_eq(shoal_pread(client, uri, buf, FILL_SIZE, 0), FILL_SIZE, "%s",
                         shoal_last_error());
            tp_fill_pattern(fill, FILL_SIZE, 100 + (uint64_t)i);
            cr_assert(memcmp(buf, fill, FILL_SIZE) == 0, "%s differs", uri);
            cr_assert(s_read_ok(client, buf, (uint64_t)i * CHUNK, 2 * CHUNK + 5));
        }
        s_spans(client, buf);
    }
    cr_assert_gt(s_counter(client, "bytes_short_circuit"), 0);
    /* the node did drop generations while we held descriptors */
    char *text = NULL;
    cr_assert_eq(shoal_stats(client, &text), 0, "%s", shoal_last_error());
    json_t *root = json_loads(text, 0, NULL);
    shoal_free(text);
    json_t *node = json_array_get(json_object_get(root, "nodes"), 0);
    json_int_t evictions =
        json_integer_value(json_object_get(json_object_get(node, "counters"), "evictions"));
    json_decref(root);
    cr_assert_gt(evictions, 0, "no generation was dropped: the test tests nothing");
    free(fill);
    free(buf);
    shoal_client_destroy(&client);
}

/* A uid the node does not admit (run as root: a child becomes nobody; the socket and its dir
 * are opened to everyone, so the node's own SO_PEERCRED check refuses, with an ERROR): counted
 * once in local_refused, and the ZeroMQ path serves every byte. */
Test(local, a_uid_not_admitted_is_refused_and_served_by_zeromq)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to become another uid");
    cr_assert_eq(chmod(s_dir, 0711), 0);
    cr_assert_eq(chmod(s_socket, 0666), 0);
    char data_dir[TP_PATH_MAX];
    snprintf(data_dir, sizeof data_dir, "%s/data", s_dir);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(2);
        shoal_client_t *client = s_client();
        uint8_t *buf = malloc(BIG_SIZE);
        bool ok = s_read_ok(client, buf, 0, BIG_SIZE) && s_read_ok(client, buf, 0, BIG_SIZE) &&
                  s_read_ok(client, buf, 1000, 300000);
        ok = ok && s_counter(client, "local_refused") == 1 &&
             s_counter(client, "bytes_short_circuit") == 0 &&
             s_counter(client, "bytes_zmq") >= BIG_SIZE;
        free(buf);
        shoal_client_destroy(&client);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 2, "cannot become nobody");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "nobody's reads failed, or the refusal was not counted once");
}

/* Threads at once: each takes a connection of its own from the pool; all warm bytes local. */
Test(local, threads_read_warm_bytes_through_the_pool)
{
    shoal_client_t *client = s_client();
    uint8_t *buf = malloc(BIG_SIZE);
    cr_assert(s_read_ok(client, buf, 0, BIG_SIZE));
    s_wait_warm(client, buf);
    uint64_t zmq = s_counter(client, "bytes_zmq");
    reader_t readers[6];
    pthread_t threads[6];
    for (int i = 0; i < 6; i++) {
        readers[i] = (reader_t){.client = client};
        cr_assert_eq(pthread_create(&threads[i], NULL, s_reader, &readers[i]), 0);
    }
    for (int i = 0; i < 6; i++)
        s_reader_progress(&readers[i], 50);
    for (int i = 0; i < 6; i++) {
        atomic_store(&readers[i].stop, true);
        pthread_join(threads[i], NULL);
        cr_assert_eq(atomic_load(&readers[i].failures), 0);
    }
    cr_assert_eq(s_counter(client, "bytes_zmq"), zmq, "warm reads by threads went over ZeroMQ");
    free(buf);
    shoal_client_destroy(&client);
}
