/*
 * test_pagestore_mmap.c - the page store's mappings and SIGBUS guard on their own: a fault in a
 * guarded range becomes an error code; a fault anywhere else still kills the process (or reaches
 * the handler that was there before); mappings live until their last reference.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pagestore_mmap.h"

#define S_FILE_SIZE (64u << 10)

static char s_path[64];
static int s_fd = -1;

/* A 64 KiB file of known bytes, unlinked at once (the open fd keeps it). */
static void s_setup(void)
{
    snprintf(s_path, sizeof s_path, "/tmp/shoal-mmap-XXXXXX");
    s_fd = mkstemp(s_path);
    cr_assert_geq(s_fd, 0);
    cr_assert_eq(unlink(s_path), 0);
    uint8_t bytes[S_FILE_SIZE];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(i * 7);
    cr_assert_eq(pwrite(s_fd, bytes, sizeof bytes, 0), (ssize_t)sizeof bytes);
}

static void s_teardown(void)
{
    if (s_fd >= 0)
        close(s_fd);
    s_fd = -1;
}

typedef struct s_sum {
    const volatile uint8_t *bytes; /* what to read */
    size_t size;                   /* how much */
    unsigned sum;                  /* out */
} s_sum_t;

/* Reads every byte (the guarded work). */
static int s_sum_bytes(void *arg)
{
    s_sum_t *sum = arg;
    for (size_t i = 0; i < sum->size; i++)
        sum->sum += sum->bytes[i];
    return 7;
}

Test(pagestore_mmap, guarded_read_returns_the_functions_result, .init = s_setup, .fini = s_teardown)
{
    pagestore_mmap_t *map = pagestore_mmap_new(s_fd, 1u << 20); /* longer than the file */
    cr_assert_not_null(map);
    cr_assert_eq(pagestore_mmap_length(map), 1u << 20);
    s_sum_t sum = {.bytes = pagestore_mmap_base(map), .size = S_FILE_SIZE};
    cr_assert_eq(pagestore_mmap_guarded((const void *)sum.bytes, sum.size, s_sum_bytes, &sum), 7);
    unsigned expected = 0;
    for (size_t i = 0; i < S_FILE_SIZE; i++)
        expected += (uint8_t)(i * 7);
    cr_assert_eq(sum.sum, expected);
    pagestore_mmap_unref(&map);
    cr_assert_null(map);
    pagestore_mmap_unref(&map); /* safe on NULL */
}

/* The file grows into a mapping made when it was shorter (the data files' appends), and a
 * write through the file is seen through the mapping (damage on disk is caught). */
Test(pagestore_mmap, mapping_sees_appends_and_writes, .init = s_setup, .fini = s_teardown)
{
    pagestore_mmap_t *map = pagestore_mmap_new(s_fd, 1u << 20);
    cr_assert_not_null(map);
    uint8_t tail[4096];
    memset(tail, 0xAB, sizeof tail);
    cr_assert_eq(pwrite(s_fd, tail, sizeof tail, 256u << 10), (ssize_t)sizeof tail);
    s_sum_t sum = {.bytes = pagestore_mmap_base(map) + (256u << 10), .size = sizeof tail};
    cr_assert_eq(pagestore_mmap_guarded((const void *)sum.bytes, sum.size, s_sum_bytes, &sum), 7);
    cr_assert_eq(sum.sum, 0xABu * sizeof tail);
    uint8_t flipped = 0x5A;
    cr_assert_eq(pwrite(s_fd, &flipped, 1, 100), 1);
    cr_assert_eq(pagestore_mmap_base(map)[100], 0x5A);
    pagestore_mmap_unref(&map);
}

/* Bytes past the end of a cut file raise SIGBUS; inside the guard that is
 * PAGESTORE_MMAP_FAULT, and the thread goes on: again, and on other threads at once. */
static void *s_fault_twice(void *arg)
{
    const uint8_t *base = arg;
    for (int i = 0; i < 100; i++) {
        s_sum_t sum = {.bytes = base, .size = S_FILE_SIZE};
        if (pagestore_mmap_guarded(base, S_FILE_SIZE, s_sum_bytes, &sum) != PAGESTORE_MMAP_FAULT)
            return (void *)1;
    }
    return NULL;
}

Test(pagestore_mmap, fault_in_a_guarded_range_is_an_error_code, .init = s_setup, .fini = s_teardown)
{
    pagestore_mmap_t *map = pagestore_mmap_new(s_fd, S_FILE_SIZE);
    cr_assert_not_null(map);
    cr_assert_eq(ftruncate(s_fd, 4096), 0); /* behind the mapping's back */
    s_sum_t sum = {.bytes = pagestore_mmap_base(map), .size = S_FILE_SIZE};
    cr_assert_eq(pagestore_mmap_guarded((const void *)sum.bytes, sum.size, s_sum_bytes, &sum),
                 PAGESTORE_MMAP_FAULT);
    /* The first 4 KiB are still there; a fault left no guard armed and SIGBUS unblocked. */
    s_sum_t head = {.bytes = pagestore_mmap_base(map), .size = 4096};
    cr_assert_eq(pagestore_mmap_guarded((const void *)head.bytes, head.size, s_sum_bytes, &head),
                 7);
    sigset_t mask;
    cr_assert_eq(pthread_sigmask(SIG_BLOCK, NULL, &mask), 0);
    cr_assert_eq(sigismember(&mask, SIGBUS), 0);
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(
            pthread_create(&threads[i], NULL, s_fault_twice, (void *)pagestore_mmap_base(map)), 0);
    for (int i = 0; i < 4; i++) {
        void *result = NULL;
        pthread_join(threads[i], &result);
        cr_assert_null(result, "a thread's guarded fault was not caught");
    }
    pagestore_mmap_unref(&map);
}

/* Runs body in a child process with core dumps off; returns its wait status. */
static int s_in_child(void (*body)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        body();
        _exit(0);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return status;
}

/* In a child: maps an unlinked 8 KiB temporary file (which installs the store's handler) and
 * stores its descriptor in *fd_out; exits 3 when that fails. */
static pagestore_mmap_t *s_child_map(int *fd_out)
{
    char path[] = "/tmp/shoal-mmap-child-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    uint8_t bytes[8192] = {1};
    if (fd < 0 || pwrite(fd, bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes)
        _exit(3);
    pagestore_mmap_t *map = pagestore_mmap_new(fd, sizeof bytes);
    if (map == NULL)
        _exit(3);
    *fd_out = fd;
    return map;
}

/* Touches a cut file's mapping outside any guard (with a guard armed for another range). */
static void s_touch_unguarded(void)
{
    int fd;
    pagestore_mmap_t *map = s_child_map(&fd);
    if (ftruncate(fd, 0) != 0)
        _exit(3);
    uint8_t bytes[8192] = {1};
    volatile const uint8_t *base = pagestore_mmap_base(map);
    s_sum_t sum = {.bytes = bytes, .size = 1};
    (void)pagestore_mmap_guarded(bytes, sizeof bytes, s_sum_bytes, &sum); /* another range */
    if (base[4096] == 0x55)                                               /* SIGBUS here */
        _exit(4);
    _exit(5); /* survived: the guard swallowed a fault that was not its own */
}

/* A SIGBUS that no guard covers still kills the process, as it would without the store. Under
 * ASan its own handler (installed before ours, so ours chains to it) reports and exits 1. */
Test(pagestore_mmap, fault_outside_a_guard_still_kills)
{
    int status = s_in_child(s_touch_unguarded);
    cr_assert(!WIFEXITED(status) || (WEXITSTATUS(status) != 5 && WEXITSTATUS(status) != 0 &&
                                     WEXITSTATUS(status) != 3),
              "the child survived an unguarded SIGBUS (status 0x%x)", status);
    if (getenv("ASAN_OPTIONS") == NULL && WIFSIGNALED(status))
        cr_assert_eq(WTERMSIG(status), SIGBUS);
}

static void s_user_handler(int sig)
{
    (void)sig;
    _exit(42);
}

/* A program's own SIGBUS handler, installed before the store's, still gets the faults that are
 * not the store's. */
static void s_touch_with_user_handler(void)
{
    struct sigaction action = {.sa_handler = s_user_handler};
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGBUS, &action, NULL) != 0)
        _exit(3);
    int fd;
    pagestore_mmap_t *map = s_child_map(&fd);
    struct sigaction now;
    if (sigaction(SIGBUS, NULL, &now) != 0 || now.sa_handler == s_user_handler)
        _exit(6); /* the store's handler is not installed on top */
    if (ftruncate(fd, 0) != 0)
        _exit(3);
    volatile const uint8_t *base = pagestore_mmap_base(map);
    if (base[4096] == 0x55)
        _exit(4);
    _exit(5);
}

Test(pagestore_mmap, fault_outside_a_guard_reaches_the_previous_handler)
{
    int status = s_in_child(s_touch_with_user_handler);
    cr_assert(WIFEXITED(status), "child status 0x%x", status);
    cr_assert_eq(WEXITSTATUS(status), 42, "child exit %d", WEXITSTATUS(status));
}

/* A reference keeps the mapping after the creator's reference and the file are gone; the last
 * unref unmaps it (mincore on an unmapped range fails with ENOMEM). Refs and unrefs from many
 * threads at once balance. */
static void *s_ref_unref(void *arg)
{
    pagestore_mmap_t *map = arg;
    for (int i = 0; i < 10000; i++) {
        pagestore_mmap_ref(map);
        pagestore_mmap_t *copy = map;
        pagestore_mmap_unref(&copy);
    }
    return NULL;
}

Test(pagestore_mmap, last_reference_unmaps, .init = s_setup, .fini = s_teardown)
{
    pagestore_mmap_t *map = pagestore_mmap_new(s_fd, S_FILE_SIZE);
    cr_assert_not_null(map);
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, s_ref_unref, map), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    pagestore_mmap_ref(map);
    pagestore_mmap_t *second = map;
    const uint8_t *base = pagestore_mmap_base(map);
    pagestore_mmap_unref(&map);
    close(s_fd);
    s_fd = -1;
    unsigned char resident[16];
    cr_assert_eq(mincore((void *)base, S_FILE_SIZE, resident), 0, "unmapped too early");
    cr_assert_eq(base[7], 49);
    pagestore_mmap_unref(&second);
    cr_assert_eq(mincore((void *)base, S_FILE_SIZE, resident), -1, "still mapped");
}
