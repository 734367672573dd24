/*
 * ufs_file.c - the file:// connector: local or NFS paths. stat(2) and readdir for metadata,
 * reads through io_uring (one ring per thread, a large read split into chunks submitted
 * together) with a plain pread fallback where io_uring is refused, as containers often do.
 */
#include "ufs_conn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_RING_DEPTH 32 /* chunks in flight per read; ring entries */
#define S_CHUNK                                                                                    \
    (1u << 20) /* bytes per chunk: big enough to amortise, small enough to                         \
                  spread one large read over many in-flight requests */

typedef struct s_file {
    ufs_t *ufs;          /* owner, for its request counter; borrowed */
    bool uring_disabled; /* SHOAL_DISABLE_IO_URING=1 at init: always pread */
} s_file_t;

/* io_uring for the whole process: 0 not tried yet, 1 works, -1 refused (said once). */
static atomic_int s_uring_state;

/* One ring per thread. A child after fork() shares the parent's ring memory: it drops its copy
 * (close and munmap act only on the child) and makes its own. */
typedef struct s_ring {
    bool ready;           /* ring set up */
    pid_t pid;            /* process that set it up */
    struct io_uring ring; /* the ring */
} s_ring_t;

static _Thread_local s_ring_t s_thread_ring;
static _Thread_local const char *s_last_path = ""; /* "io_uring" or "pread": the last read */
static pthread_key_t s_ring_key;                   /* only to run s_ring_exit at thread exit */
static pthread_once_t s_ring_once = PTHREAD_ONCE_INIT;

static void s_ring_exit(void *unused)
{
    (void)unused;
    if (s_thread_ring.ready)
        io_uring_queue_exit(&s_thread_ring.ring);
    s_thread_ring.ready = false;
}

static void s_ring_key_make(void)
{
    pthread_key_create(&s_ring_key, s_ring_exit);
}

/* Returns this thread's ring, making it on first use, or NULL when io_uring is refused: then
 * one line goes to stderr for the whole process and every read uses pread. */
static struct io_uring *s_ring_get(void)
{
    s_ring_t *r = &s_thread_ring;
    if (r->ready && r->pid != getpid())
        s_ring_exit(NULL);
    if (r->ready)
        return &r->ring;
    if (atomic_load(&s_uring_state) < 0)
        return NULL;
    pthread_once(&s_ring_once, s_ring_key_make);
    int rc = io_uring_queue_init(S_RING_DEPTH, &r->ring, 0);
    if (rc < 0) {
        /* Only the thread that moves the state from "unknown" or "works" (a forked child's
         * inherited 1) to "refused" logs, so the line appears once however many race here. */
        int seen = atomic_load(&s_uring_state);
        while (seen >= 0) {
            if (atomic_compare_exchange_weak(&s_uring_state, &seen, -1)) {
                fprintf(stderr, "shoal: io_uring unavailable (%s); file:// reads use pread\n",
                        strerror(-rc));
                break;
            }
        }
        return NULL;
    }
    atomic_store(&s_uring_state, 1);
    r->ready = true;
    r->pid = getpid();
    pthread_setspecific(s_ring_key, r);
    return &r->ring;
}

const char *ufs_file_last_read_path(void)
{
    return s_last_path;
}

static void *s_file_init(ufs_t *ufs, const ufs_options_t *options)
{
    (void)options;
    s_file_t *state = calloc(1, sizeof *state);
    if (!state) {
        shoal_fail(SHOAL_ENOMEM, "file connector: out of memory");
        return NULL;
    }
    state->ufs = ufs;
    const char *disable = getenv("SHOAL_DISABLE_IO_URING");
    state->uring_disabled = disable && disable[0] && strcmp(disable, "0") != 0;
    return state;
}

static void s_file_fini(void *state)
{
    free(state);
}

/* The path of a file:// uri: "file:///p" and "file://localhost/p" give "/p". The path is used
 * as written (no percent-decoding), as fsspec's local paths are. */
static int s_path(const char *uri, const char **path)
{
    const char *rest = uri + strlen("file://");
    if (strncasecmp(rest, "localhost/", 10) == 0)
        rest += 9;
    if (rest[0] != '/')
        return shoal_fail(SHOAL_EINVAL, "%s: file:// needs an absolute path (file:///path)", uri);
    *path = rest;
    return 0;
}

/* Maps errno of a failed system call on `uri` to a shoal error with a last error. */
static int s_errno_error(int err, const char *op, const char *uri)
{
    int code;
    switch (err) {
    case ENOENT:
    case ENOTDIR:
        code = SHOAL_ENOENT;
        break;
    case EACCES:
    case EPERM:
        code = SHOAL_EACCES;
        break;
    case ENAMETOOLONG:
    case ELOOP:
        code = SHOAL_EINVAL;
        break;
    case ENOMEM:
        code = SHOAL_ENOMEM;
        break;
    case EISDIR:
        code = SHOAL_EISDIR;
        break;
    default:
        code = SHOAL_EIO;
    }
    return shoal_fail(code, "%s %s: %s", op, uri, strerror(err));
}

/* Fills *out from a stat buffer: version "<size>-<mtime in ns>" for files, "" for dirs. */
static void s_fill_stat(const struct stat *st, ufs_stat_t *out)
{
    memset(out, 0, sizeof *out);
    out->mtime = (int64_t)st->st_mtim.tv_sec;
    if (S_ISDIR(st->st_mode)) {
        out->is_dir = true;
        return;
    }
    out->size = (uint64_t)st->st_size;
    int64_t mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    snprintf(out->version, sizeof out->version, "%" PRIu64 "-%" PRId64, out->size, mtime_ns);
}

/* stat(2) of the file a uri names, into *st; *path_p gets the path (borrowed: points into uri).
 * `op` names the operation in the error. Returns 0 or a negative SHOAL_E* with a last error. */
static int s_stat_uri(const char *uri, const char *op, const char **path_p, struct stat *st)
{
    int rc = s_path(uri, path_p);
    if (rc < 0)
        return rc;
    if (stat(*path_p, st) != 0)
        return s_errno_error(errno, op, uri);
    return 0;
}

static int s_file_stat(void *opaque, const char *uri, ufs_stat_t *out)
{
    s_file_t *state = opaque;
    ufs_requests_add(state->ufs, 1);
    const char *path = NULL;
    struct stat st;
    int rc = s_stat_uri(uri, "stat", &path, &st);
    if (rc < 0)
        return rc;
    s_fill_stat(&st, out);
    return 0;
}

/* Lists the open directory dir_fd whose uri (no trailing slash) is `base`. One level: files
 * and directories. Recursive: regular files only, descending into real directories (not into
 * symlinks to directories: no loops). Entries that vanish meanwhile, unreadable
 * subdirectories and special files (fifos, sockets, devices) are skipped. Closes dir_fd. */
static int s_list_dir(int dir_fd, const char *base, bool recursive, ufs_list_t *out)
{
    DIR *dir = fdopendir(dir_fd);
    if (!dir) {
        int err = errno;
        close(dir_fd);
        return s_errno_error(err, "opendir", base);
    }
    int rc = 0;
    struct dirent *entry;
    char *uri = malloc(UFS_URI_MAX + 1);
    if (!uri) {
        closedir(dir);
        return shoal_fail(SHOAL_ENOMEM, "list %s: out of memory", base);
    }
    while (rc == 0 && (entry = readdir(dir))) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        int n = snprintf(uri, UFS_URI_MAX + 1, "%s/%s", base, entry->d_name);
        if (n < 0 || n > UFS_URI_MAX)
            continue; /* a name that makes the uri too long cannot be read either */
        struct stat st, lst;
        if (fstatat(dirfd(dir), entry->d_name, &st, 0) != 0 ||
            fstatat(dirfd(dir), entry->d_name, &lst, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
            continue;
        ufs_stat_t info;
        s_fill_stat(&st, &info);
        if (!recursive) {
            rc = ufs_list_push(out, uri, &info);
        } else if (S_ISREG(st.st_mode)) {
            rc = ufs_list_push(out, uri, &info);
        } else if (S_ISDIR(lst.st_mode)) {
            int child =
                openat(dirfd(dir), entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (child >= 0)
                rc = s_list_dir(child, uri, true, out);
        }
    }
    free(uri);
    closedir(dir);
    return rc;
}

/* Lists a directory; a regular file lists as itself (as fsspec's ls does); missing is
 * SHOAL_ENOENT. */
static int s_file_list(void *opaque, const char *uri, bool recursive, ufs_list_t *out)
{
    s_file_t *state = opaque;
    ufs_requests_add(state->ufs, 1);
    const char *path = NULL;
    struct stat st;
    int rc = s_stat_uri(uri, "list", &path, &st);
    if (rc < 0)
        return rc;
    if (!S_ISDIR(st.st_mode)) {
        ufs_stat_t info;
        s_fill_stat(&st, &info);
        return ufs_list_push(out, uri, &info);
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return s_errno_error(errno, "list", uri);
    char base[UFS_URI_MAX + 1];
    snprintf(base, sizeof base, "%s", uri);
    size_t len = strlen(base);
    while (len > strlen("file:///") && base[len - 1] == '/')
        base[--len] = '\0';
    if (base[len - 1] == '/')
        base[--len] = '\0'; /* the root: "file://" + "/name" */
    return s_list_dir(fd, base, recursive, out);
}

/* ---- reads ------------------------------------------------------------------------------- */

/* pread until `length` bytes are in. Returns 0, SHOAL_ESTALE if the file ended early (it
 * shrank under us) or another error. */
static int s_read_pread(int fd, const char *uri, uint64_t offset, char *buf, size_t length)
{
    size_t done = 0;
    while (done < length) {
        ssize_t n = pread(fd, buf + done, length - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return s_errno_error(errno, "pread", uri);
        if (n == 0)
            return shoal_fail(SHOAL_ESTALE, "%s: file shrank during the read", uri);
        done += (size_t)n;
    }
    return 0;
}

/* One chunk of a batched read: bytes [pos, pos + len) of the request, `done` of them in. */
typedef struct s_chunk {
    size_t pos;  /* start, relative to the read's offset and buf */
    size_t len;  /* bytes in this chunk; 0 when the slot is free */
    size_t done; /* bytes completed */
    bool queued; /* submitted and not completed yet */
} s_chunk_t;

/* Reads `length` bytes with io_uring: up to S_RING_DEPTH chunks of S_CHUNK bytes in flight at
 * once, a short completion resubmitted for its remainder. Every submitted read completes
 * before this returns (they target the caller's buffer). Returns 0, SHOAL_ESTALE (file ended
 * early), or 1 when io_uring itself failed (the caller then uses pread). */
static int s_read_uring(struct io_uring *ring, int fd, const char *uri, uint64_t offset, char *buf,
                        size_t length)
{
    s_chunk_t chunks[S_RING_DEPTH] = {{0}};
    size_t next = 0, finished = 0;
    int in_flight = 0, result = 0;
    while (finished < length || in_flight > 0) {
        bool failed = result != 0;
        for (unsigned slot = 0; !failed && slot < S_RING_DEPTH; slot++) {
            s_chunk_t *c = &chunks[slot];
            if (c->queued)
                continue;
            if (c->len == 0 || c->done == c->len) {
                if (next >= length)
                    continue;
                c->pos = next;
                c->len = length - next < S_CHUNK ? length - next : S_CHUNK;
                c->done = 0;
                next += c->len;
            }
            struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
            if (!sqe)
                break;
            io_uring_prep_read(sqe, fd, buf + c->pos + c->done, (unsigned)(c->len - c->done),
                               offset + c->pos + c->done);
            io_uring_sqe_set_data64(sqe, slot);
            c->queued = true;
            in_flight++;
        }
        if (in_flight == 0)
            break;
        int rc = io_uring_submit_and_wait(ring, 1);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            /* Nothing more can be reaped safely; no read of ours is queued in the kernel
             * unless submit succeeded, so only an impossible state is left. */
            return 1;
        }
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(ring, head, cqe)
        {
            seen++;
            s_chunk_t *c = &chunks[io_uring_cqe_get_data64(cqe)];
            c->queued = false;
            in_flight--;
            int res = cqe->res;
            if (res == -EINTR || res == -EAGAIN)
                continue; /* resubmitted on the next pass */
            if (res < 0) {
                if (result == 0)
                    result = 1;
            } else if (res == 0) {
                if (result == 0)
                    result = shoal_fail(SHOAL_ESTALE, "%s: file shrank during the read", uri);
            } else {
                c->done += (size_t)res;
                finished += (size_t)res;
            }
            if (result != 0)
                c->len = c->done; /* stop this chunk */
        }
        io_uring_cq_advance(ring, seen);
        if (result != 0) {
            for (unsigned slot = 0; slot < S_RING_DEPTH; slot++)
                if (!chunks[slot].queued)
                    chunks[slot].len = chunks[slot].done;
            next = length;
            if (in_flight == 0)
                break;
        }
    }
    return result;
}

/* Reads part of a regular file. With a version, the file's "<size>-<mtime_ns>" must match
 * before the read, and in every case it must not change during the read (checked again after
 * it), else SHOAL_ESTALE. Directories are SHOAL_EISDIR, other non-regular files SHOAL_EINVAL
 * (a fifo would block, a device has no size). Reports no progress (ufs_progress_t): the read is
 * checked for a change only after it, so no byte is final before the end. *stat_out is the
 * fstat of the opened file before the read (what s_file_stat gives), unchanged after it. */
static int64_t s_file_read(void *opaque, const char *uri, const char *version, uint64_t offset,
                           void *buf, size_t length, const ufs_progress_t *progress,
                           ufs_stat_t *stat_out)
{
    (void)progress;
    s_file_t *state = opaque;
    ufs_requests_add(state->ufs, 1);
    const char *path = NULL;
    int rc = s_path(uri, &path);
    if (rc < 0)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return s_errno_error(errno, "open", uri);
    struct stat before, after;
    ufs_stat_t info_before = {0}, info_after;
    int64_t result = 0;
    if (fstat(fd, &before) != 0) {
        result = s_errno_error(errno, "fstat", uri);
        goto out;
    }
    if (S_ISDIR(before.st_mode)) {
        result = shoal_fail(SHOAL_EISDIR, "read %s: is a directory", uri);
        goto out;
    }
    if (!S_ISREG(before.st_mode)) {
        result = shoal_fail(SHOAL_EINVAL, "read %s: not a regular file", uri);
        goto out;
    }
    s_fill_stat(&before, &info_before);
    if (version && strcmp(version, info_before.version) != 0) {
        result = shoal_fail(SHOAL_ESTALE, "read %s: version is %s, not %s", uri,
                            info_before.version, version);
        goto out;
    }
    if (offset >= info_before.size || length == 0)
        goto out;
    size_t want = info_before.size - offset < length ? (size_t)(info_before.size - offset) : length;
    struct io_uring *ring = state->uring_disabled ? NULL : s_ring_get();
    rc = 1;
    if (ring) {
        s_last_path = "io_uring";
        rc = s_read_uring(ring, fd, uri, offset, buf, want);
    }
    if (rc == 1) {
        s_last_path = "pread";
        rc = s_read_pread(fd, uri, offset, buf, want);
    }
    if (rc < 0) {
        result = rc;
        goto out;
    }
    if (fstat(fd, &after) != 0) {
        result = s_errno_error(errno, "fstat", uri);
        goto out;
    }
    s_fill_stat(&after, &info_after);
    if (strcmp(info_after.version, info_before.version) != 0) {
        result = shoal_fail(SHOAL_ESTALE, "read %s: changed during the read (%s, then %s)", uri,
                            info_before.version, info_after.version);
        goto out;
    }
    result = (int64_t)want;
out:
    if (result >= 0)
        *stat_out = info_before;
    close(fd);
    return result;
}

const ufs_connector_t ufs_file_connector = {
    .scheme = "file",
    .init = s_file_init,
    .fini = s_file_fini,
    .stat = s_file_stat,
    .list = s_file_list,
    .read = s_file_read,
};
