/*
 * pagestore_mmap.c - reference-counted read-only mappings of data files and the SIGBUS guard
 * around the first touch of mapped bytes (see pagestore_mmap.h and store/README.md, "Get").
 */
#define _GNU_SOURCE
#include "pagestore_mmap.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

struct pagestore_mmap {
    _Atomic size_t refs; /* 1 for the creator + 1 per page handle pointing into it */
    uint8_t *base;       /* first mapped byte */
    size_t length;       /* bytes mapped */
    _Atomic int cut_fd;  /* -1, or a descriptor to ftruncate(0) and close after the unmap */
};

pagestore_mmap_t *pagestore_mmap_new(int fd, size_t length)
{
    if (length == 0) {
        errno = EINVAL;
        return NULL;
    }
    pagestore_mmap_t *self = malloc(sizeof *self);
    if (self == NULL)
        return NULL;
    void *base = mmap(NULL, length, PROT_READ, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        int error = errno;
        free(self);
        errno = error;
        return NULL;
    }
    self->base = base;
    self->length = length;
    atomic_init(&self->refs, 1);
    atomic_init(&self->cut_fd, -1);
    /* Installed before any byte of the mapping can be touched. */
    (void)pagestore_mmap_guarded(NULL, 0, NULL, NULL);
    return self;
}

const uint8_t *pagestore_mmap_base(const pagestore_mmap_t *self)
{
    return self->base;
}

size_t pagestore_mmap_length(const pagestore_mmap_t *self)
{
    return self->length;
}

void pagestore_mmap_ref(pagestore_mmap_t *self)
{
    atomic_fetch_add_explicit(&self->refs, 1, memory_order_relaxed);
}

void pagestore_mmap_unref(pagestore_mmap_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pagestore_mmap_t *self = *self_p;
    *self_p = NULL;
    /* Release order on the decrement, acquire before the unmap: every access through other
     * references happens before the munmap. */
    if (atomic_fetch_sub_explicit(&self->refs, 1, memory_order_release) != 1)
        return;
    atomic_thread_fence(memory_order_acquire);
    munmap(self->base, self->length);
    int fd = atomic_load(&self->cut_fd);
    if (fd >= 0) {
        (void)ftruncate(fd, 0);
        close(fd);
    }
    free(self);
}

void pagestore_mmap_cut_on_unmap(pagestore_mmap_t *self, int fd)
{
    int old = atomic_exchange(&self->cut_fd, fd);
    if (old >= 0)
        close(old);
}

/* ---- the SIGBUS guard ---------------------------------------------------------------------
 *
 * One process-wide handler, installed once. Each thread has a pointer to its armed guard (on
 * that thread's stack) or NULL. The handler checks the faulting address against the armed
 * guard's range and siglongjmps back to pagestore_mmap_guarded; anything else goes to the
 * previous disposition. The handler runs with SA_NODEFER and an empty sa_mask, so the thread's
 * signal mask inside it is the mask it had when it faulted: jumping out without restoring a
 * mask (sigsetjmp(env, 0): no sigprocmask system call per guarded call) leaves it as it was.
 *
 * The thread-local pointer uses the initial-exec TLS model: its slot exists in every thread
 * from the start, so reading it in the handler never allocates (a dlopen'd library's dynamic
 * TLS could be allocated lazily, which a signal handler must not do). */

typedef struct s_guard {
    sigjmp_buf env; /* where pagestore_mmap_guarded resumes after a fault */
    uintptr_t from; /* guarded range [from, to) */
    uintptr_t to;
} s_guard_t;

static __thread s_guard_t *volatile s_armed __attribute__((tls_model("initial-exec")));
static struct sigaction s_previous; /* the SIGBUS disposition before ours; set once */
static pthread_once_t s_install_once = PTHREAD_ONCE_INIT;

static void s_on_sigbus(int sig, siginfo_t *info, void *context)
{
    s_guard_t *guard = s_armed;
    uintptr_t address = (uintptr_t)info->si_addr;
    if (guard != NULL && info->si_code > 0 && address >= guard->from && address < guard->to) {
        s_armed = NULL;
        siglongjmp(guard->env, 1);
    }
    /* Not ours: what would have happened without us. */
    if ((s_previous.sa_flags & SA_SIGINFO) != 0 && s_previous.sa_sigaction != NULL) {
        s_previous.sa_sigaction(sig, info, context);
        return;
    }
    if ((s_previous.sa_flags & SA_SIGINFO) == 0 && s_previous.sa_handler != SIG_DFL &&
        s_previous.sa_handler != SIG_IGN) {
        s_previous.sa_handler(sig);
        return;
    }
    /* Default (a fault cannot be ignored: the kernel forces the default on it). Restore it;
     * a fault then repeats on return and kills the process with a core dump at the faulting
     * instruction; a SIGBUS sent by kill() is raised again. */
    struct sigaction fallback = {.sa_handler = SIG_DFL};
    sigemptyset(&fallback.sa_mask);
    sigaction(SIGBUS, &fallback, NULL);
    if (info->si_code <= 0)
        raise(sig);
}

static void s_install(void)
{
    struct sigaction action = {.sa_sigaction = s_on_sigbus,
                               .sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK};
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, &s_previous);
}

int pagestore_mmap_guarded(const void *from, size_t length, int (*fn)(void *arg), void *arg)
{
    pthread_once(&s_install_once, s_install);
    if (fn == NULL)
        return 0;
    s_guard_t guard;
    guard.from = (uintptr_t)from;
    guard.to = (uintptr_t)from + length;
    if (sigsetjmp(guard.env, 0) != 0)
        return PAGESTORE_MMAP_FAULT; /* the handler disarmed the guard */
    s_armed = &guard;
    atomic_signal_fence(memory_order_seq_cst);
    int rc = fn(arg);
    atomic_signal_fence(memory_order_seq_cst);
    s_armed = NULL;
    return rc;
}
