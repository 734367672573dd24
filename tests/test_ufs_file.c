/*
 * test_ufs_file.c - the file:// connector on a temp directory: stat, one-level and recursive
 * listings, reads at every page boundary through both io_uring and pread, versions, files
 * changed after stat, non-regular files, threads and fork, and the automatic fallback to pread
 * when a seccomp filter (as container runtimes install) refuses io_uring_setup.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <liburing.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testproc.h"
#include "ufs_conn.h"

#define PAGE (1u << 20)

static const struct {
    const char *name;
    size_t size;
} s_files[] = {
    {"empty.bin", 0},
    {"one.bin", 1},
    {"page.bin", PAGE},
    {"b/pages.bin", 40 * PAGE + 0},
    {"b/d/ragged.bin", 2 * PAGE + 12345},
};
#define FILE_COUNT (sizeof s_files / sizeof s_files[0])

static char *s_root;                      /* temp dir */
static unsigned char *s_data[FILE_COUNT]; /* expected contents */
static ufs_t *s_ufs;                      /* under test */

static void s_setup(void)
{
    s_root = tp_tempdir("file");
    cr_assert_not_null(s_root);
    char path[TP_PATH_MAX];
    for (size_t i = 0; i < FILE_COUNT; i++) {
        s_data[i] = malloc(s_files[i].size + 1);
        tp_fill_pattern(s_data[i], s_files[i].size, i + 7);
        snprintf(path, sizeof path, "%s/%s", s_root, s_files[i].name);
        cr_assert_eq(tp_write_file(path, s_data[i], s_files[i].size), 0);
    }
    snprintf(path, sizeof path, "%s/emptydir", s_root);
    cr_assert_eq(mkdir(path, 0755), 0);
}

static void s_setup_uring(void)
{
    unsetenv("SHOAL_DISABLE_IO_URING");
    s_setup();
    s_ufs = ufs_new(NULL);
}

static void s_setup_pread(void)
{
    setenv("SHOAL_DISABLE_IO_URING", "1", 1);
    s_setup();
    s_ufs = ufs_new(NULL);
}

static void s_teardown(void)
{
    ufs_destroy(&s_ufs);
    tp_rmtree(s_root);
    free(s_root);
    for (size_t i = 0; i < FILE_COUNT; i++)
        free(s_data[i]);
}

static void s_uri(char *out, size_t out_len, const char *name)
{
    snprintf(out, out_len, "file://%s/%s", s_root, name);
}

/* Whether this machine lets us make an io_uring at all. */
static bool s_uring_works(void)
{
    struct io_uring ring;
    if (io_uring_queue_init(4, &ring, 0) != 0)
        return false;
    io_uring_queue_exit(&ring);
    return true;
}

static void s_check_read(const char *uri, const char *version, size_t i, uint64_t offset,
                         size_t length)
{
    size_t size = s_files[i].size;
    size_t expect = offset >= size ? 0 : (size - offset < length ? size - offset : length);
    unsigned char *buf = malloc(length + 16);
    memset(buf, 0xA5, length + 16);
    int64_t got = ufs_read(s_ufs, uri, version, offset, buf, length);
    cr_assert_eq(got, (int64_t)expect, "%s @%" PRIu64 "+%zu: got %" PRId64 " want %zu (%s)", uri,
                 offset, length, got, expect, shoal_last_error());
    cr_assert(memcmp(buf, s_data[i] + (expect ? offset : 0), expect) == 0, "%s @%" PRIu64, uri,
              offset);
    for (size_t k = expect; k < length + 16; k++)
        cr_assert_eq(buf[k], 0xA5, "%s: byte %zu past the data was written", uri, k);
    free(buf);
}

static void s_all_boundaries(const char *want_path)
{
    char uri[TP_PATH_MAX];
    for (size_t i = 0; i < FILE_COUNT; i++) {
        s_uri(uri, sizeof uri, s_files[i].name);
        uint64_t end = s_files[i].size;
        uint64_t offsets[] = {0, PAGE - 1, PAGE, PAGE + 1, end ? end - 1 : 0, end, end + 1};
        size_t lengths[] = {1, PAGE - 1, PAGE, PAGE + 1, 3 * PAGE + 5};
        for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++)
            for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++)
                s_check_read(uri, NULL, i, offsets[o], lengths[l]);
        s_check_read(uri, NULL, i, 0, end + 3); /* whole file: 40 chunks for pages.bin */
    }
    cr_assert_str_eq(ufs_file_last_read_path(), want_path);
}

TestSuite(file, .init = s_setup_uring, .fini = s_teardown, .timeout = 120);
TestSuite(file_pread, .init = s_setup_pread, .fini = s_teardown, .timeout = 120);

Test(file, reads_io_uring)
{
    s_all_boundaries(s_uring_works() ? "io_uring" : "pread");
    if (!s_uring_works())
        cr_log_warn("io_uring refused on this machine: only the pread path was tested");
}

Test(file_pread, reads_pread)
{
    s_all_boundaries("pread");
}

Test(file, stat_files_and_dirs)
{
    char uri[TP_PATH_MAX], path[TP_PATH_MAX];
    for (size_t i = 0; i < FILE_COUNT; i++) {
        s_uri(uri, sizeof uri, s_files[i].name);
        snprintf(path, sizeof path, "%s/%s", s_root, s_files[i].name);
        struct stat fs;
        cr_assert_eq(stat(path, &fs), 0);
        ufs_stat_t st;
        cr_assert_eq(ufs_stat(s_ufs, uri, &st), 0, "%s", shoal_last_error());
        cr_assert_eq(st.size, s_files[i].size);
        cr_assert_not(st.is_dir);
        cr_assert_eq(st.mtime, (int64_t)fs.st_mtim.tv_sec);
        char want[64];
        snprintf(want, sizeof want, "%zu-%" PRId64, s_files[i].size,
                 (int64_t)fs.st_mtim.tv_sec * 1000000000 + fs.st_mtim.tv_nsec);
        cr_assert_str_eq(st.version, want);
    }
    ufs_stat_t st;
    s_uri(uri, sizeof uri, "b");
    cr_assert_eq(ufs_stat(s_ufs, uri, &st), 0);
    cr_assert(st.is_dir);
    cr_assert_eq(st.size, 0);
    cr_assert_str_eq(st.version, "");
    s_uri(uri, sizeof uri, "nope.bin");
    cr_assert_eq(ufs_stat(s_ufs, uri, &st), SHOAL_ENOENT);
    cr_assert(strstr(shoal_last_error(), "nope.bin"));
    s_uri(uri, sizeof uri, "one.bin/below");
    cr_assert_eq(ufs_stat(s_ufs, uri, &st), SHOAL_ENOENT);
    cr_assert_eq(ufs_stat(s_ufs, "file://otherhost/etc/passwd", &st), SHOAL_EINVAL);
    snprintf(uri, sizeof uri, "file://localhost%s/one.bin", s_root);
    cr_assert_eq(ufs_stat(s_ufs, uri, &st), 0);
    cr_assert_eq(st.size, 1);
}

Test(file, list_one_level_and_recursive)
{
    char uri[TP_PATH_MAX], want[TP_PATH_MAX];
    ufs_list_t list;
    ufs_list_init(&list);
    snprintf(uri, sizeof uri, "file://%s/", s_root); /* trailing slash is fine */
    cr_assert_eq(ufs_list(s_ufs, uri, false, &list), 0, "%s", shoal_last_error());
    const char *level[] = {"b", "empty.bin", "emptydir", "one.bin", "page.bin"};
    cr_assert_eq(list.count, 5);
    for (size_t k = 0; k < 5; k++) {
        s_uri(want, sizeof want, level[k]);
        cr_assert_str_eq(list.entries[k].uri, want);
    }
    cr_assert(list.entries[0].stat.is_dir);
    cr_assert(list.entries[2].stat.is_dir);
    cr_assert_eq(list.entries[4].stat.size, PAGE);
    ufs_list_fini(&list);

    /* Recursive: files only, sorted, a symlink loop does not hang it. */
    char link_path[TP_PATH_MAX];
    snprintf(link_path, sizeof link_path, "%s/b/d/loop", s_root);
    cr_assert_eq(symlink(s_root, link_path), 0);
    snprintf(uri, sizeof uri, "file://%s", s_root);
    cr_assert_eq(ufs_list(s_ufs, uri, true, &list), 0, "%s", shoal_last_error());
    const char *all[] = {"b/d/ragged.bin", "b/pages.bin", "empty.bin", "one.bin", "page.bin"};
    cr_assert_eq(list.count, 5);
    for (size_t k = 0; k < 5; k++) {
        s_uri(want, sizeof want, all[k]);
        cr_assert_str_eq(list.entries[k].uri, want);
        cr_assert_not(list.entries[k].stat.is_dir);
    }
    cr_assert_eq(list.entries[0].stat.size, 2 * PAGE + 12345);
    ufs_stat_t st;
    cr_assert_eq(ufs_stat(s_ufs, list.entries[1].uri, &st), 0);
    cr_assert_str_eq(list.entries[1].stat.version, st.version);
    ufs_list_fini(&list);

    s_uri(uri, sizeof uri, "emptydir");
    cr_assert_eq(ufs_list(s_ufs, uri, true, &list), 0);
    cr_assert_eq(list.count, 0);
    s_uri(uri, sizeof uri, "one.bin");
    cr_assert_eq(ufs_list(s_ufs, uri, false, &list), 0);
    cr_assert_eq(list.count, 1);
    cr_assert_str_eq(list.entries[0].uri, uri);
    ufs_list_fini(&list);
    s_uri(uri, sizeof uri, "missing");
    cr_assert_eq(ufs_list(s_ufs, uri, false, &list), SHOAL_ENOENT);
    ufs_list_fini(&list);
}

static void s_stale_case(void)
{
    char uri[TP_PATH_MAX], path[TP_PATH_MAX];
    s_uri(uri, sizeof uri, s_files[2].name);
    snprintf(path, sizeof path, "%s/%s", s_root, s_files[2].name);
    ufs_stat_t before;
    cr_assert_eq(ufs_stat(s_ufs, uri, &before), 0);
    s_check_read(uri, before.version, 2, 100, 1000);
    tp_fill_pattern(s_data[2], s_files[2].size, 1234);
    cr_assert_eq(tp_write_file(path, s_data[2], s_files[2].size), 0);
    struct timespec times[2] = {{before.mtime + 3, 0}, {before.mtime + 3, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, path, times, 0), 0);
    char buf[64];
    cr_assert_eq(ufs_read(s_ufs, uri, before.version, 0, buf, sizeof buf), SHOAL_ESTALE);
    cr_assert(strstr(shoal_last_error(), before.version));
    ufs_stat_t after;
    cr_assert_eq(ufs_stat(s_ufs, uri, &after), 0);
    cr_assert_str_neq(after.version, before.version);
    s_check_read(uri, after.version, 2, 0, PAGE);
}

Test(file, changed_after_stat_is_stale)
{
    s_stale_case();
}

Test(file_pread, changed_after_stat_is_stale)
{
    s_stale_case();
}

Test(file, non_regular_files_refused)
{
    char uri[TP_PATH_MAX], path[TP_PATH_MAX], buf[16];
    s_uri(uri, sizeof uri, "b");
    cr_assert_eq(ufs_read(s_ufs, uri, NULL, 0, buf, sizeof buf), SHOAL_EISDIR);
    snprintf(path, sizeof path, "%s/fifo", s_root);
    cr_assert_eq(mkfifo(path, 0644), 0);
    s_uri(uri, sizeof uri, "fifo");
    cr_assert_eq(ufs_read(s_ufs, uri, NULL, 0, buf, sizeof buf), SHOAL_EINVAL);
    cr_assert(strstr(shoal_last_error(), "not a regular file"));
    s_uri(uri, sizeof uri, "missing");
    cr_assert_eq(ufs_read(s_ufs, uri, NULL, 0, buf, sizeof buf), SHOAL_ENOENT);
}

typedef struct s_worker {
    int index;  /* which worker */
    int failed; /* reads that came back wrong */
} s_worker_t;

static void *s_worker_main(void *arg)
{
    s_worker_t *w = arg;
    char uri[TP_PATH_MAX];
    s_uri(uri, sizeof uri, s_files[3].name);
    unsigned char *buf = malloc(3 * PAGE);
    for (int k = 0; k < 8; k++) {
        uint64_t offset = (uint64_t)((w->index * 8 + k) % 37) * PAGE + (uint64_t)k * 7;
        int64_t got = ufs_read(s_ufs, uri, NULL, offset, buf, 3 * PAGE);
        if (got != 3 * PAGE || memcmp(buf, s_data[3] + offset, 3 * PAGE) != 0)
            w->failed++;
    }
    free(buf);
    return NULL;
}

Test(file, threads_share_one_handle)
{
    pthread_t threads[4];
    s_worker_t workers[4];
    for (int t = 0; t < 4; t++) {
        workers[t] = (s_worker_t){.index = t};
        cr_assert_eq(pthread_create(&threads[t], NULL, s_worker_main, &workers[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        cr_assert_eq(workers[t].failed, 0, "worker %d", t);
    }
}

Test(file, fork_child_makes_its_own_ring)
{
    char uri[TP_PATH_MAX];
    s_uri(uri, sizeof uri, s_files[4].name);
    s_check_read(uri, NULL, 4, 0, PAGE);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        unsigned char *buf = malloc(2 * PAGE);
        int64_t got = ufs_read(s_ufs, uri, NULL, 12345, buf, 2 * PAGE);
        _exit(got == 2 * PAGE && memcmp(buf, s_data[4] + 12345, 2 * PAGE) == 0 ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    s_check_read(uri, NULL, 4, PAGE, PAGE);
}

/* ---- io_uring refused by seccomp --------------------------------------------------------- */

#if defined(__x86_64__)
#define S_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define S_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#ifdef S_AUDIT_ARCH
/* Makes io_uring_setup fail with EPERM in this process from now on, as Docker's default
 * seccomp profile and gVisor do: no-new-privs (so no privilege is needed) plus a three-line
 * BPF filter. Irreversible: call it in a forked child only. 0 or -1. */
static int s_refuse_io_uring(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, S_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0 ? 0 : -1;
}

static void *s_refused_worker(void *arg)
{
    (void)arg;
    unsigned char *buf = malloc(PAGE);
    char uri[TP_PATH_MAX];
    s_uri(uri, sizeof uri, s_files[3].name);
    intptr_t failed = 0;
    for (int k = 0; k < 8; k++) {
        uint64_t offset = (uint64_t)k * 5 * PAGE + 777;
        if (ufs_read(s_ufs, uri, NULL, offset, buf, PAGE) != PAGE ||
            memcmp(buf, s_data[3] + offset, PAGE) != 0 ||
            strcmp(ufs_file_last_read_path(), "pread") != 0)
            failed++;
    }
    free(buf);
    return (void *)failed;
}

/* The child's side: stderr into `log_path`, io_uring refused, then reads from this thread and
 * four more at once. Exit status 0 when every read returned the right bytes through pread, 2 when
 * the filter could not be installed, 3 when it did not refuse io_uring, 1 for a wrong read. */
static int s_refused_child(const char *log_path, bool own_ufs)
{
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
        return 2;
    close(fd);
    if (s_refuse_io_uring() != 0)
        return 2;
    struct io_uring probe;
    int rc = io_uring_queue_init(4, &probe, 0);
    if (rc != -EPERM) {
        if (rc == 0)
            io_uring_queue_exit(&probe);
        return 3;
    }
    if (own_ufs) {
        ufs_destroy(&s_ufs);
        s_ufs = ufs_new(NULL);
    }
    /* The four threads and this one all start with no ring: whichever fails first reports. */
    pthread_t threads[4];
    bool started[4];
    for (int t = 0; t < 4; t++)
        started[t] = pthread_create(&threads[t], NULL, s_refused_worker, NULL) == 0;
    char uri[TP_PATH_MAX];
    s_uri(uri, sizeof uri, s_files[4].name);
    unsigned char *buf = malloc(3 * PAGE);
    int64_t got = ufs_read(s_ufs, uri, NULL, PAGE - 1, buf, 3 * PAGE);
    bool ok = got == (int64_t)(s_files[4].size - (PAGE - 1)) &&
              memcmp(buf, s_data[4] + PAGE - 1, (size_t)got) == 0 &&
              strcmp(ufs_file_last_read_path(), "pread") == 0;
    free(buf);
    for (int t = 0; t < 4; t++) {
        void *failed = (void *)1;
        if (started[t])
            pthread_join(threads[t], &failed);
        ok = ok && failed == NULL;
    }
    ufs_destroy(&s_ufs);
    return ok ? 0 : 1;
}

/* Runs s_refused_child in a forked child and checks what it said on stderr: exactly one line
 * about io_uring, naming the reason. */
static void s_expect_fallback(bool parent_used_uring)
{
    char log_path[TP_PATH_MAX];
    snprintf(log_path, sizeof log_path, "%s/child-stderr.log", s_root);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        _exit(s_refused_child(log_path, !parent_used_uring));
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "child died (status %d)", status);
    if (WEXITSTATUS(status) == 2)
        cr_skip_test("cannot install a seccomp filter here");
    cr_assert_neq(WEXITSTATUS(status), 3, "the seccomp filter did not refuse io_uring_setup");
    cr_assert_eq(WEXITSTATUS(status), 0, "a read through the fallback was wrong");
    size_t len;
    char *log = tp_read_file(log_path, &len);
    cr_assert_not_null(log);
    cr_assert_eq(tp_count_lines(log_path, "io_uring unavailable"), 1, "stderr:\n%s", log);
    cr_assert(strstr(log, "Operation not permitted"), "%s", log);
    cr_assert(strstr(log, "use pread"), "%s", log);
    free(log);
}

/* A process where io_uring was never used: the first read finds it refused, says so once on
 * stderr, and every read (five threads) goes through pread with the right bytes. */
Test(file, io_uring_refused_falls_back_to_pread)
{
    s_expect_fallback(false);
}

/* The same after fork() from a parent whose thread had a working ring (a daemon forked into a
 * sandbox): the child drops the inherited ring, cannot make its own, falls back once. */
Test(file, io_uring_refused_after_fork_falls_back_once)
{
    if (!s_uring_works())
        cr_skip_test("io_uring refused on this machine already");
    char uri[TP_PATH_MAX];
    s_uri(uri, sizeof uri, s_files[2].name);
    s_check_read(uri, NULL, 2, 0, PAGE);
    cr_assert_str_eq(ufs_file_last_read_path(), "io_uring");
    s_expect_fallback(true);
    s_check_read(uri, NULL, 2, 1, PAGE); /* the parent's ring still works */
    cr_assert_str_eq(ufs_file_last_read_path(), "io_uring");
}
#else
Test(file, io_uring_refused_falls_back_to_pread)
{
    cr_skip_test("no seccomp audit arch known for this CPU");
}
#endif

/* The read is the stat: fstat on the opened file gives what ufs_stat gives, one request (a
 * file system call) counted; a missing file is SHOAL_ENOENT. */
Test(file, read_is_the_stat)
{
    char uri[TP_PATH_MAX];
    for (size_t i = 0; i < FILE_COUNT; i++) {
        s_uri(uri, sizeof uri, s_files[i].name);
        char buf[64];
        ufs_stat_t got, st;
        uint64_t before = ufs_requests(s_ufs);
        size_t expect = s_files[i].size < sizeof buf ? s_files[i].size : sizeof buf;
        cr_assert_eq(ufs_read_stat(s_ufs, uri, NULL, 0, buf, sizeof buf, NULL, &got),
                     (int64_t)expect, "%s: %s", uri, shoal_last_error());
        cr_assert_eq(ufs_requests(s_ufs) - before, 1);
        cr_assert_eq(ufs_stat(s_ufs, uri, &st), 0);
        cr_assert_eq(got.size, st.size);
        cr_assert_str_eq(got.version, st.version);
        cr_assert_eq(got.mtime, st.mtime);
        cr_assert_not(got.is_dir);
        cr_assert_eq(ufs_read_stat(s_ufs, uri, got.version, got.size, buf, 1, NULL, &got), 0);
        cr_assert_str_eq(got.version, st.version);
    }
    s_uri(uri, sizeof uri, "no-such-file");
    ufs_stat_t got;
    char byte;
    cr_assert_eq(ufs_read_stat(s_ufs, uri, NULL, 0, &byte, 1, NULL, &got), SHOAL_ENOENT);
}
