/*
 * test_local_quota.c - the page quota and the store's learning under short-circuit reads
 * (issue 11), against a real shoald with a small --capacity: clients that hold generation
 * descriptors and idle (in this process and in forked children) do not keep the disk of dropped
 * generations (the node cuts their files to 0), and pages read only by LOCATE are promoted and
 * outlive pages of the same age nobody reads.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "shoal.h"
#include "testproc.h"

#define PAGE_SIZE    (64 << 10)
#define RANGE_PAGES  4
#define CAPACITY     (8u << 20) /* --capacity 8M: 8 generations of 1 MiB */
#define GENERATIONS  8          /* the store's default */
#define FILE_SIZE    (1 << 20)  /* every origin file */
#define PHASES       4          /* holders attached at 4 points of the fill */
#define PHASE_FILES  4          /* files warmed per phase: half the capacity */
#define STREAM_FILES 16         /* then twice the capacity streams through */
#define FILES        (PHASES * PHASE_FILES + STREAM_FILES)
/* The slack over the capacity that the store's disk may take: the newest generation filling
 * past its share (capacity / generations) while the oldest is not dropped yet, plus racing
 * puts and promotions and the 4 KiB rounding of pages (1 MiB is far more than either). */
#define SLACK ((uint64_t)CAPACITY / GENERATIONS + (1u << 20))

static char *s_dir;            /* temp dir: data/ (origin), db/ (store, a tmpfs as root), n.sock */
static char s_db[TP_PATH_MAX]; /* s_dir/db: the node's --data-dir */
static bool s_tmpfs;           /* db/ is a tmpfs of this test's own mount namespace */
static uint64_t s_used_before; /* statfs of db/ before shoald started */
static tp_proc_t s_node;       /* shoald */
static char s_seeds[64];       /* "127.0.0.1:PORT" */
static char s_socket[256];     /* its --local-socket */

/* As root, db/ becomes a tmpfs in a mount namespace of this test process (shoald inherits it),
 * so statfs of it counts exactly the store's disk, unlinked files still held included, and
 * nothing else of this shared machine. The namespace and its mount go with the processes. */
static void s_private_tmpfs(void)
{
    if (geteuid() != 0) {
        cr_log_warn("not root: no private tmpfs, statfs of the shared disk is only logged");
        return;
    }
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        cr_log_warn("no private mount namespace (%s): statfs of the shared disk only logged",
                    strerror(errno));
        return;
    }
    if (mount("tmpfs", s_db, "tmpfs", 0, "size=256m,mode=0755") != 0) {
        cr_log_warn("cannot mount a tmpfs at %s: %s", s_db, strerror(errno));
        return;
    }
    s_tmpfs = true;
}

/* Bytes in use on the file system of `path`. */
static uint64_t s_fs_used(const char *path)
{
    struct statfs fs;
    cr_assert_eq(statfs(path, &fs), 0, "statfs %s: %s", path, strerror(errno));
    return (uint64_t)(fs.f_blocks - fs.f_bfree) * (uint64_t)fs.f_bsize;
}

static void s_setup(void)
{
    s_dir = tp_tempdir("localquota");
    cr_assert_not_null(s_dir);
    snprintf(s_socket, sizeof s_socket, "%s/n.sock", s_dir);
    cr_assert_lt(strlen(s_socket), 108);
    snprintf(s_db, sizeof s_db, "%s/db", s_dir);
    cr_assert_eq(tp_mkdirs(s_db, 0755), 0);
    s_private_tmpfs();
    uint8_t *bytes = malloc(FILE_SIZE);
    char path[TP_PATH_MAX];
    for (int i = 0; i < FILES; i++) {
        tp_fill_pattern(bytes, FILE_SIZE, 500 + (uint64_t)i);
        snprintf(path, sizeof path, "%s/data/f-%d.bin", s_dir, i);
        cr_assert_eq(tp_write_file(path, bytes, FILE_SIZE), 0);
    }
    free(bytes);
    setenv("SHOAL_LOCAL", s_socket, 1);
    s_used_before = s_fs_used(s_db);

    char shoald[TP_PATH_MAX], log[TP_PATH_MAX], listen[64], mount_uri[TP_PATH_MAX + 16];
    char page[16], range[16], capacity[16];
    const char *build = getenv("SHOAL_BUILD_DIR");
    snprintf(shoald, sizeof shoald, "%s/node/shoald", build ? build : ".");
    snprintf(log, sizeof log, "%s/shoald.log", s_dir);
    int port = tp_free_port();
    cr_assert_gt(port, 0);
    snprintf(listen, sizeof listen, "tcp://127.0.0.1:%d", port);
    snprintf(s_seeds, sizeof s_seeds, "127.0.0.1:%d", port);
    snprintf(mount_uri, sizeof mount_uri, "file://%s/data/", s_dir);
    snprintf(page, sizeof page, "%d", PAGE_SIZE);
    snprintf(range, sizeof range, "%d", RANGE_PAGES);
    snprintf(capacity, sizeof capacity, "%u", CAPACITY);
    const char *argv[] = {
        shoald,   "--name",         "n1",     "--data-dir", s_db,      "--capacity",
        capacity, "--listen",       listen,   "--mount",    mount_uri, "--page-size",
        page,     "--range-pages",  range,    "--threads",  "2",       "--flush-interval",
        "0",      "--local-socket", s_socket, NULL};
    cr_assert_eq(tp_spawn(&s_node, argv, log), 0, "cannot start %s", shoald);
    int64_t deadline = tp_now_ms() + 20000;
    struct stat st;
    while ((tp_wait_port(port, 100) != 0 || stat(s_socket, &st) != 0) && tp_now_ms() < deadline &&
           tp_alive(&s_node))
        ;
    if (tp_wait_port(port, 100) != 0 || stat(s_socket, &st) != 0) {
        size_t len = 0;
        char *text = tp_read_file(log, &len);
        cr_log_error("shoald log:\n%s", text ? text : "(none)");
        free(text);
        cr_assert_fail("shoald did not listen on %d and %s", port, s_socket);
    }
}

static void s_teardown(void)
{
    tp_stop(&s_node, 5000);
    if (s_tmpfs)
        (void)umount2(s_db, MNT_DETACH);
    s_tmpfs = false;
    if (s_dir) {
        tp_rmtree(s_dir);
        free(s_dir);
        s_dir = NULL;
    }
    unsetenv("SHOAL_LOCAL");
}

/* A client whose stats stay cached for the whole test (a warm read sends no learn op). */
static shoal_client_t *s_client(void)
{
    shoal_client_options_t options = {
        .seeds = s_seeds, .timeout_ms = 5000, .metadata_ttl_ms = 600000};
    shoal_client_t *client = shoal_client_new(&options);
    cr_assert_not_null(client, "%s", shoal_last_error());
    return client;
}

/* One of the client's counters (0 when absent). */
static uint64_t s_counter(shoal_client_t *client, const char *name)
{
    char *text = NULL;
    if (shoal_client_counters_json(client, &text) != 0)
        return 0;
    json_t *root = json_loads(text, 0, NULL);
    shoal_free(text);
    uint64_t value = (uint64_t)json_integer_value(json_object_get(root, name));
    json_decref(root);
    return value;
}

/* One of the node's STATS counters, asked through `client` (0 when absent). */
static uint64_t s_node_counter(shoal_client_t *client, const char *name)
{
    char *text = NULL;
    if (shoal_stats(client, &text) != 0)
        return 0;
    json_t *root = json_loads(text, 0, NULL);
    shoal_free(text);
    json_t *node = json_array_get(json_object_get(root, "nodes"), 0);
    uint64_t value =
        (uint64_t)json_integer_value(json_object_get(json_object_get(node, "counters"), name));
    json_decref(root);
    return value;
}

/* Reads origin file `index` whole and checks every byte; false (logged) when it failed. */
static bool s_read_file(shoal_client_t *client, int index)
{
    char uri[TP_PATH_MAX + 32];
    snprintf(uri, sizeof uri, "file://%s/data/f-%d.bin", s_dir, index);
    uint8_t *got = malloc(FILE_SIZE), *want = malloc(FILE_SIZE);
    int64_t n = shoal_pread(client, uri, got, FILE_SIZE, 0);
    tp_fill_pattern(want, FILE_SIZE, 500 + (uint64_t)index);
    bool ok = n == FILE_SIZE && memcmp(got, want, FILE_SIZE) == 0;
    if (!ok)
        cr_log_error("%s: got %lld (%s)%s", uri, (long long)n, shoal_last_error(),
                     n == FILE_SIZE ? ", bytes differ" : "");
    free(got);
    free(want);
    return ok;
}

/* Reads files [first, first + count) until a whole pass takes no byte over ZeroMQ (the node
 * stores a cold range after its reply), at most 30 s. */
static bool s_warm_files(shoal_client_t *client, int first, int count)
{
    int64_t deadline = tp_now_ms() + 30000;
    for (;;) {
        uint64_t zmq = s_counter(client, "bytes_zmq");
        for (int i = first; i < first + count; i++)
            if (!s_read_file(client, i))
                return false;
        if (s_counter(client, "bytes_zmq") == zmq)
            return true;
        if (tp_now_ms() > deadline)
            return false;
        usleep(10000);
    }
}

/* Waits until the node has stored every fetched range (its store queue is empty). */
static bool s_node_settled(shoal_client_t *client)
{
    int64_t deadline = tp_now_ms() + 30000;
    while (s_node_counter(client, "store_queue_depth") != 0 ||
           s_node_counter(client, "fetch_queue_depth") != 0 ||
           s_node_counter(client, "inflight_requests") > 1)
        if (tp_now_ms() > deadline)
            return false;
        else
            usleep(10000);
    return true;
}

/* Runs `fn(first, count)` in a forked child with a client of its own, so that this process
 * makes no read call meanwhile (a call sweeps the leases of its idle descriptors) and its
 * holders stay as they are. Asserts the child succeeded. */
typedef bool (*s_child_fn)(shoal_client_t *client, int first, int count);

static bool s_stream_files(shoal_client_t *client, int first, int count)
{
    for (int i = first; i < first + count; i++)
        if (!s_read_file(client, i))
            return false;
    return s_node_settled(client);
}

static void s_in_child(s_child_fn fn, int first, int count)
{
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        shoal_client_t *client = s_client();
        _exit(fn(client, first, count) ? 0 : 1); /* no destroy: see test_local.c */
    }
    int status = 0;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's reads failed");
}

/* A forked holder: reads files [first, +count) by short-circuit with the client it inherited
 * (a forked child's first call closes what it inherited and connects afresh), says so with one
 * byte on `ready` ('y', or 'n' when a read failed or none came by short-circuit), then idles
 * with its descriptors until `hold` reaches EOF (it closes the earlier holders' `other_holds`).
 * Returns its pid. */
static pid_t s_fork_holder(shoal_client_t *client, int first, int count, int *hold_fd,
                           const int *other_holds, int other_count)
{
    int ready[2], hold[2];
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(hold), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        close(ready[0]);
        close(hold[1]);
        for (int i = 0; i < other_count; i++) /* the earlier holders' pipes: theirs to end */
            close(other_holds[i]);
        uint64_t local = s_counter(client, "bytes_short_circuit");
        bool ok = true;
        for (int i = first; i < first + count && ok; i++)
            ok = s_read_file(client, i);
        ok = ok && s_counter(client, "bytes_short_circuit") > local;
        char byte = ok ? 'y' : 'n';
        if (write(ready[1], &byte, 1) != 1)
            _exit(1);
        while (read(hold[0], &byte, 1) > 0) /* idle, attached, until the parent lets go */
            ;
        _exit(0);
    }
    close(ready[1]);
    close(hold[0]);
    struct pollfd pfd = {.fd = ready[0], .events = POLLIN};
    cr_assert_eq(poll(&pfd, 1, 60000), 1, "the holder child did not read in 60 s");
    char byte = 0;
    cr_assert_eq(read(ready[0], &byte, 1), 1);
    close(ready[0]);
    cr_assert_eq(byte, 'y', "the holder child's reads failed or none came by short-circuit");
    *hold_fd = hold[1];
    return child;
}

/* Disk the store takes, measured from outside. */
typedef struct usage {
    uint64_t gen_files;    /* st_blocks of the generation files under db/ */
    uint64_t other_files;  /* st_blocks of every other file under db/ (RocksDB) */
    uint64_t held_dropped; /* st_blocks of unlinked generation files held open by holders */
    int held_dropped_fds;  /* descriptors of unlinked generation files, all holders */
} usage_t;

static void s_walk(const char *dir, usage_t *usage)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
    struct dirent *entry;
    while ((entry = readdir(d))) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        char path[TP_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            s_walk(path, usage);
            continue;
        }
        uint64_t bytes = (uint64_t)st.st_blocks * 512;
        if (strncmp(entry->d_name, "gen-", 4) == 0)
            usage->gen_files += bytes;
        else
            usage->other_files += bytes;
    }
    closedir(d);
}

/* Adds the unlinked generation files that process `pid` holds open (/proc/PID/fd), each inode
 * once over all calls (`seen`, `seen_count`). Returns how many such descriptors it holds. */
static int s_held(pid_t pid, usage_t *usage, ino_t *seen, int *seen_count, int seen_max)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
    int held = 0;
    struct dirent *entry;
    while ((entry = readdir(d))) {
        char link[TP_PATH_MAX], target[TP_PATH_MAX];
        snprintf(link, sizeof link, "%s/%s", dir, entry->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (!strstr(target, "/gen-") || !strstr(target, " (deleted)"))
            continue;
        struct stat st;
        if (stat(link, &st) != 0)
            continue;
        held++;
        bool known = false;
        for (int i = 0; i < *seen_count && !known; i++)
            known = seen[i] == st.st_ino;
        if (known || *seen_count == seen_max)
            continue;
        seen[(*seen_count)++] = st.st_ino;
        usage->held_dropped += (uint64_t)st.st_blocks * 512;
    }
    closedir(d);
    return held;
}

TestSuite(local_quota, .init = s_setup, .fini = s_teardown, .timeout = 300);

/* Holders attach at four points of the fill: a client of this process and a forked child read
 * the files just warmed by short-circuit (getting those generations' descriptors) and idle;
 * meanwhile forked fillers stream 32 MiB through the 8 MiB store, so the holders end up with
 * descriptors of generations long dropped. The disk the store takes (statfs of its own tmpfs
 * as root; always: the generation files' st_blocks plus those of the unlinked files the
 * holders keep open) stays within the capacity plus SLACK, because the node cuts a dropped
 * generation's file to 0 bytes even while clients hold it. */
Test(local_quota, the_quota_holds_while_short_circuit_clients_hold_descriptors)
{
    shoal_client_t *holder = s_client(); /* this process's holder */
    pid_t children[PHASES];
    int holds[PHASES];
    for (int phase = 0; phase < PHASES; phase++) {
        int first = phase * PHASE_FILES;
        s_in_child(s_warm_files, first, PHASE_FILES);
        uint64_t local = s_counter(holder, "bytes_short_circuit");
        for (int i = first; i < first + PHASE_FILES; i++)
            cr_assert(s_read_file(holder, i));
        cr_assert_eq(s_counter(holder, "bytes_short_circuit") - local,
                     (uint64_t)PHASE_FILES * FILE_SIZE,
                     "this process's holder did not read the warm files by short-circuit");
        children[phase] = s_fork_holder(holder, first, PHASE_FILES, &holds[phase], holds, phase);
    }
    s_in_child(s_stream_files, PHASES * PHASE_FILES, STREAM_FILES);

    usage_t usage = {0};
    s_walk(s_db, &usage);
    ino_t seen[1024];
    int seen_count = 0;
    int held_here = s_held(getpid(), &usage, seen, &seen_count, 1024);
    int held_children = 0;
    for (int phase = 0; phase < PHASES; phase++)
        held_children += s_held(children[phase], &usage, seen, &seen_count, 1024);
    usage.held_dropped_fds = held_here + held_children;
    uint64_t used = s_fs_used(s_db) - s_used_before;
    uint64_t store_disk = usage.gen_files + usage.held_dropped;
    uint64_t evictions = s_node_counter(holder, "evictions");
    cr_log_info("capacity %u, slack %llu: generation files %llu, RocksDB files %llu, dropped "
                "but held %llu (%d descriptors: %d here, %d in children), statfs used %llu "
                "(%s), generations dropped %llu",
                CAPACITY, (unsigned long long)SLACK, (unsigned long long)usage.gen_files,
                (unsigned long long)usage.other_files, (unsigned long long)usage.held_dropped,
                usage.held_dropped_fds, held_here, held_children, (unsigned long long)used,
                s_tmpfs ? "the store's own tmpfs" : "shared file system, not asserted",
                (unsigned long long)evictions);

    cr_assert_geq(evictions, 2 * GENERATIONS, "the store did not turn over several times");
    cr_assert_gt(held_here, 0, "this process holds no dropped generation: nothing tested");
    cr_assert_gt(held_children, 0, "the children hold no dropped generation: nothing tested");
    cr_assert_leq(store_disk, (uint64_t)CAPACITY + SLACK,
                  "the store takes %llu bytes of disk (%llu in dropped generation files still "
                  "held), over the capacity %u + slack %llu",
                  (unsigned long long)store_disk, (unsigned long long)usage.held_dropped, CAPACITY,
                  (unsigned long long)SLACK);
    if (s_tmpfs)
        cr_assert_leq(used - (used > usage.other_files ? usage.other_files : used),
                      (uint64_t)CAPACITY + SLACK,
                      "statfs: %llu bytes used on the store's file system, %llu of them "
                      "RocksDB's, over the capacity %u + slack %llu",
                      (unsigned long long)used, (unsigned long long)usage.other_files, CAPACITY,
                      (unsigned long long)SLACK);

    for (int phase = 0; phase < PHASES; phase++) {
        close(holds[phase]);
        int status = 0;
        cr_assert_eq(waitpid(children[phase], &status, 0), children[phase]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    shoal_client_destroy(&holder);
}

/* The store learns what is read by short-circuit alone: hot (f-0) and cold (f-1) are warmed
 * together; then 3 capacities of other files stream through the store (ZeroMQ reads of cold
 * files), and after each file the hot one is read again, by LOCATE and pread only. A located
 * page close to eviction is promoted, so hot is read by short-circuit throughout (never
 * again over ZeroMQ, no origin read for it at the end) while cold, read once at the same
 * time, is gone (the origin is read for it). */
Test(local_quota, located_pages_are_promoted_and_outlive_unread_ones)
{
    /* Every read of the hot file LOCATEs: a client remembers locations for
     * SHOAL_LOCAL_RELOCATE_MS (1 s) and LOCATEs a page read again only after that (so a page
     * counts once a second per connection); this store turns over in milliseconds. */
    setenv("SHOAL_LOCAL_RELOCATE_MS", "0", 1);
    shoal_client_t *driver = s_client();
    shoal_client_t *hot = s_client();
    cr_assert(s_warm_files(driver, 0, 2));
    uint64_t promotions = s_node_counter(driver, "pagestore_promotions");
    uint64_t locates = s_node_counter(driver, "local_locates");
    cr_assert(s_read_file(hot, 0));
    uint64_t hot_zmq = s_counter(hot, "bytes_zmq");
    uint64_t hot_local = s_counter(hot, "bytes_short_circuit");
    int streamed = 0;
    for (int i = 2; i < FILES && streamed < 3 * (int)(CAPACITY / FILE_SIZE); i++, streamed++) {
        cr_assert(s_read_file(driver, i));
        cr_assert(s_node_settled(driver)); /* its pages stored: 1 MiB of writes per round */
        cr_assert(s_read_file(hot, 0));
    }
    cr_assert(s_node_settled(driver));
    cr_assert_eq(s_counter(hot, "bytes_zmq"), hot_zmq,
                 "a read of the hot file went over ZeroMQ: its pages aged out");
    cr_assert_eq(s_counter(hot, "bytes_short_circuit") - hot_local, (uint64_t)streamed * FILE_SIZE);
    cr_assert_gt(s_node_counter(driver, "pagestore_promotions"), promotions,
                 "no located page was promoted");
    cr_assert_geq(s_node_counter(driver, "local_locates") - locates, (uint64_t)streamed);
    cr_assert_geq(s_node_counter(driver, "evictions"), 2 * GENERATIONS);

    uint64_t ufs_reads = s_node_counter(driver, "ufs_reads");
    cr_assert(s_read_file(driver, 0));
    cr_assert_eq(s_node_counter(driver, "ufs_reads"), ufs_reads,
                 "the hot file was read from the origin again");
    cr_assert(s_read_file(driver, 1));
    cr_assert_gt(s_node_counter(driver, "ufs_reads"), ufs_reads,
                 "the cold file is still held: nothing was evicted, the test tests nothing");
    shoal_client_destroy(&hot);
    unsetenv("SHOAL_LOCAL_RELOCATE_MS");
    shoal_client_destroy(&driver);
}
