/*
 * local.c - the node's short-circuit local read server (see local.h): a SOCK_SEQPACKET listener
 * thread that checks each peer's credentials, and one thread per admitted connection that
 * answers LOCAL_HELLO and LOCATE and passes generation descriptors with SCM_RIGHTS.
 */
#define _GNU_SOURCE
#include "local.h"

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "vec.h"

#define S_RECV_MAX      (MSG_LOCAL_DATAGRAM_MAX + 1) /* one byte more: a longer one is refused */
#define S_FDS_IN_MAX    64                           /* descriptors a peer's datagram may carry */
#define S_REPLY_BUDGET  (MSG_LOCAL_DATAGRAM_MAX - (16u << 10)) /* bytes of pages in a reply */
#define S_PAGE_OVERHEAD 96 /* encoded bytes of one page map besides its sums (upper bound) */
#define S_SUMS_MAX      (S_REPLY_BUDGET / 8) /* chunk sums of all pages of one reply */
#define S_STACK_BYTES   (512u << 10)         /* stack of each connection thread */
#define S_BACKLOG       128                  /* listen(2) backlog */

/* One connection slot. `fd` is -1 when no connection uses it; the fields change under the
 * server's lock. A thread that ends sets done; the listener (or local_stop) joins it. */
typedef struct s_slot {
    pthread_t thread; /* the connection's thread, when running */
    bool running;     /* a thread was started and not joined yet */
    int fd;           /* its socket while it serves, else -1 */
    atomic_bool done; /* the thread has finished (join it) */
} s_slot_t;

struct local {
    local_deps_t deps;                     /* borrowed dependencies (path and group copied) */
    char *path;                            /* the socket path (owned) */
    char *group;                           /* --local-group as given, or NULL (owned) */
    gid_t gid;                             /* the resolved local group */
    uid_t uid;                             /* the node's own uid */
    int listen_fd;                         /* the listening socket, or -1 */
    int stop_fd;                           /* eventfd: readable once local_stop began */
    ino_t inode;                           /* the socket file we bound, to unlink only ours */
    pthread_t listener;                    /* the listener thread */
    bool started;                          /* the listener thread runs (until local_stop) */
    pthread_mutex_t lock;                  /* guards slots[] */
    s_slot_t slots[LOCAL_CONNECTIONS_MAX]; /* connections */
};

/* One admitted connection, owned by its thread. */
typedef struct s_conn {
    local_t *server;           /* its server */
    size_t slot;               /* its slot in server->slots */
    int fd;                    /* its socket */
    uid_t uid;                 /* the peer's uid (SO_PEERCRED) */
    uint8_t *in;               /* receive buffer of S_RECV_MAX bytes */
    msg_buf_t out;             /* encoded replies */
    VEC(uint64_t) sent;        /* generations whose descriptors this connection was sent */
    uint64_t drops_told;       /* pagestore_gen_drops when every dropped one was last told */
    pagestore_location_t *loc; /* one page's location (8 KiB: kept off the stack) */
    uint64_t *sums;            /* S_SUMS_MAX sums: the pages of one reply point into it */
    msg_local_page_t *pages;   /* MSG_LOCATE_PAGES_MAX pages of one reply */
} s_conn_t;

/* ---- admission --------------------------------------------------------------------------- */

bool local_uid_admitted(uid_t uid, uid_t node_uid, gid_t gid)
{
    if (uid == 0 || uid == node_uid)
        return true;
    struct passwd pw, *found = NULL;
    char text[4096];
    if (getpwuid_r(uid, &pw, text, sizeof text, &found) != 0 || found == NULL)
        return false;
    if (pw.pw_gid == gid)
        return true;
    int count = 64;
    gid_t *groups = malloc((size_t)count * sizeof *groups);
    if (groups == NULL)
        return false;
    if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &count) < 0) {
        gid_t *more = count > 0 ? realloc(groups, (size_t)count * sizeof *groups) : NULL;
        if (more == NULL || getgrouplist(pw.pw_name, pw.pw_gid, more, &count) < 0) {
            free(more != NULL ? more : groups);
            return false;
        }
        groups = more;
    }
    bool member = false;
    for (int i = 0; i < count && !member; i++)
        member = groups[i] == gid;
    free(groups);
    return member;
}

/* Resolves --local-group: a number is a gid, anything else a group name. */
static int s_resolve_group(const char *group, gid_t *out)
{
    if (group == NULL || group[0] == '\0') {
        *out = getgid();
        return 0;
    }
    char *end = NULL;
    errno = 0;
    unsigned long value = strtoul(group, &end, 10);
    if (errno == 0 && *end == '\0' && end != group && value <= (gid_t)-2) {
        *out = (gid_t)value;
        return 0;
    }
    struct group gr, *found = NULL;
    char text[16384];
    if (getgrnam_r(group, &gr, text, sizeof text, &found) != 0 || found == NULL)
        return shoal_fail(SHOAL_EINVAL, "--local-group '%s': no such group", group);
    *out = gr.gr_gid;
    return 0;
}

/* ---- sending ----------------------------------------------------------------------------- */

/* Sends one datagram with `fd_count` descriptors attached. Returns 0 or -errno. */
static int s_send(int fd, const msg_buf_t *buf, const int *fds, size_t fd_count, int flags)
{
    struct iovec iov = {.iov_base = buf->data, .iov_len = buf->len};
    struct msghdr header = {.msg_iov = &iov, .msg_iovlen = 1};
    union {
        char bytes[CMSG_SPACE(sizeof(int) * MSG_LOCATE_FDS_MAX)];
        struct cmsghdr align;
    } control;
    if (fd_count > 0) {
        memset(&control, 0, sizeof control);
        header.msg_control = control.bytes;
        header.msg_controllen = CMSG_SPACE(sizeof(int) * fd_count);
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&header);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fd_count);
        memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * fd_count);
    }
    for (;;) {
        ssize_t n = sendmsg(fd, &header, MSG_NOSIGNAL | flags);
        if (n >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

/* Sends an ERROR for request `request_id`. Returns 0 or -errno. */
static int s_send_error(int fd, msg_buf_t *buf, uint64_t request_id, int code, const char *message,
                        int flags)
{
    msg_t reply;
    msg_error(&reply, request_id, 0, code, message);
    char cut[MSG_MESSAGE_MAX + 1];
    if (message != NULL && strlen(message) > MSG_MESSAGE_MAX) {
        memcpy(cut, message, MSG_MESSAGE_MAX);
        cut[MSG_MESSAGE_MAX] = '\0';
        reply.body.error.message = cut;
    }
    if (msg_encode(&reply, buf) < 0)
        return -EINVAL;
    return s_send(fd, buf, NULL, 0, flags);
}

/* Sends an ERROR on a socket the listener is about to close (non-blocking: a fresh socket's
 * buffer is empty, and a peer must not stall the listener) and closes it. */
static void s_refuse(int fd, int code, const char *message)
{
    msg_buf_t buf;
    msg_buf_init(&buf);
    (void)s_send_error(fd, &buf, 0, code, message, MSG_DONTWAIT);
    msg_buf_fini(&buf);
    close(fd);
}

/* ---- requests ---------------------------------------------------------------------------- */

static int s_hello(s_conn_t *c, const msg_t *request)
{
    const local_deps_t *deps = &c->server->deps;
    msg_t reply;
    msg_init(&reply, MSG_LOCAL_HELLO_REP, request->header.request_id, 0);
    msg_local_hello_reply_t *hello = &reply.body.local_hello_reply;
    memcpy(hello->node_id, deps->node_id, MSG_NODE_ID_SIZE);
    hello->store_id = pagestore_store_id(deps->store);
    hello->host_id = deps->host_id != NULL ? deps->host_id : "";
    hello->page_size = deps->read->page_size;
    hello->lease_ms = LOCAL_LEASE_MS;
    if (msg_encode(&reply, &c->out) < 0)
        return s_send_error(c->fd, &c->out, request->header.request_id, SHOAL_EINTERNAL,
                            shoal_last_error(), 0);
    return s_send(c->fd, &c->out, NULL, 0, 0);
}

static bool s_was_sent(const s_conn_t *c, uint64_t gen)
{
    for (size_t i = 0; i < c->sent.len; i++)
        if (c->sent.items[i] == gen)
            return true;
    return false;
}

/* The generations this connection was sent that are dropped now, into `gone` (at most
 * MSG_LOCATE_GONE_MAX; the rest are named by later replies), and the store's drop count they
 * were looked up at. No generation is looked up while nothing was dropped since the last
 * reply that told them all. */
static uint32_t s_collect_gone(s_conn_t *c, uint64_t *gone, uint64_t *drops_out)
{
    *drops_out = pagestore_gen_drops(c->server->deps.store);
    if (*drops_out == c->drops_told)
        return 0;
    uint32_t count = 0;
    for (size_t i = 0; i < c->sent.len && count < MSG_LOCATE_GONE_MAX; i++)
        if (!pagestore_gen_live(c->server->deps.store, c->sent.items[i]))
            gone[count++] = c->sent.items[i];
    return count;
}

/* After a reply naming them went out: the connection no longer holds those generations. */
static void s_forget_gone(s_conn_t *c, const uint64_t *gone, uint32_t count)
{
    for (uint32_t g = 0; g < count; g++)
        for (size_t i = 0; i < c->sent.len; i++)
            if (c->sent.items[i] == gone[g]) {
                vec_swap_remove(&c->sent, i);
                break;
            }
}

/* True when `gen` is one of the `count` generations in `gone`. */
static bool s_in(const uint64_t *gone, uint32_t count, uint64_t gen)
{
    for (uint32_t i = 0; i < count; i++)
        if (gone[i] == gen)
            return true;
    return false;
}

/* The pages a LOCATE covers: [first, first + count) of the file, by the request alone (before
 * the file size is known), for the miss count. */
static uint64_t s_pages_asked(uint64_t offset, uint64_t length, uint64_t page_size)
{
    if (length == 0)
        return 0;
    return (offset + length - 1) / page_size - offset / page_size + 1;
}

/*
 * LOCATE: the version as a READ hit would resolve it (never asking the UFS), then each page of
 * the span the store holds with the right length, up to MSG_LOCATE_PAGES_MAX pages and a reply
 * that fits one datagram; a generation whose descriptor this connection has not had yet is
 * attached (at most MSG_LOCATE_FDS_MAX per reply: pages needing more are left out, as misses).
 * Pages not located are misses: the client reads them the ZeroMQ way. Returns 0, or -errno when
 * the reply could not be sent (the connection ends).
 */
static int s_locate(s_conn_t *c, const msg_t *request)
{
    const local_deps_t *deps = &c->server->deps;
    const msg_locate_request_t *locate = &request->body.locate_request;
    uint64_t id = request->header.request_id;
    char uri[URI_MAX + 2];
    if (mount_check(deps->mounts, locate->uri, uri, sizeof uri) < 0)
        return s_send_error(c->fd, &c->out, id, SHOAL_EACCES, shoal_last_error(), 0);
    ufs_stat_t stat;
    int rc = read_locate_meta(deps->read, uri, locate->version, locate->file_size, &stat);
    if (rc < 0)
        return s_send_error(c->fd, &c->out, id, rc, shoal_last_error(), 0);
    uint64_t page_size = deps->read->page_size;
    uint64_t asked = s_pages_asked(locate->offset, locate->length, page_size);
    msg_t reply;
    msg_init(&reply, MSG_LOCATE_REP, id, 0);
    msg_locate_reply_t *out = &reply.body.locate_reply;
    out->store_id = pagestore_store_id(deps->store);
    int fds[MSG_LOCATE_FDS_MAX];
    uint64_t fd_gens[MSG_LOCATE_FDS_MAX], gone[MSG_LOCATE_GONE_MAX];
    uint32_t fd_count = 0, page_count = 0;
    uint64_t bytes = 0;
    /* the generations gone are named first, and no page of theirs is listed beside them (the
     * client closes them before it reads the pages) */
    uint64_t drops = 0;
    uint32_t gone_count = s_collect_gone(c, gone, &drops);
    if (rc == 0) {
        out->file_size = stat.size;
        out->version = stat.version;
        out->mtime = stat.mtime;
        uint64_t end = locate->offset + locate->length;
        if (end > stat.size)
            end = stat.size;
        uint8_t file_key[PAGESTORE_FILE_KEY_SIZE];
        pagestore_file_key(uri, stat.version, file_key);
        size_t budget = 0, sums_used = 0;
        for (uint64_t index = locate->offset / page_size;
             locate->offset < end && index <= (end - 1) / page_size &&
             page_count < MSG_LOCATE_PAGES_MAX;
             index++) {
            pagestore_location_t *loc = c->loc;
            if (pagestore_locate(deps->store, file_key, index, loc) != 0 ||
                loc->size != read_page_length(deps->read, stat.size, index) ||
                s_in(gone, gone_count, loc->gen))
                continue;
            size_t cost = 8 * (size_t)loc->chunk_count + S_PAGE_OVERHEAD;
            if (budget + cost > S_REPLY_BUDGET || sums_used + loc->chunk_count > S_SUMS_MAX)
                break;
            bool attached = s_was_sent(c, loc->gen);
            for (uint32_t i = 0; i < fd_count && !attached; i++)
                attached = fd_gens[i] == loc->gen;
            if (!attached) {
                if (fd_count == MSG_LOCATE_FDS_MAX ||
                    pagestore_gen_fd(deps->store, loc->gen, &fds[fd_count]) != 0)
                    continue;
                fd_gens[fd_count++] = loc->gen;
            }
            memcpy(c->sums + sums_used, loc->sums, loc->chunk_count * sizeof *c->sums);
            c->pages[page_count++] = (msg_local_page_t){.index = index,
                                                        .gen = loc->gen,
                                                        .offset = loc->offset,
                                                        .size = loc->size,
                                                        .chunk_shift = loc->chunk_shift,
                                                        .seed = loc->seed,
                                                        .sum_count = loc->chunk_count,
                                                        .sums = c->sums + sums_used};
            sums_used += loc->chunk_count;
            budget += cost;
            bytes += loc->size;
        }
    }
    out->page_count = page_count;
    out->pages = c->pages;
    out->fd_count = fd_count;
    out->fd_gens = fd_gens;
    out->gone_count = gone_count;
    out->gone_gens = gone;
    int sent;
    bool replied = false; /* the reply (not an ERROR in its place) went out */
    if (msg_encode(&reply, &c->out) < 0) {
        sent = s_send_error(c->fd, &c->out, id, SHOAL_EINTERNAL, shoal_last_error(), 0);
    } else {
        /* counted before the send, so a client that asks for STATS after the reply sees them;
         * a failed send ends the connection */
        stats_add(deps->stats, STATS_LOCAL_LOCATES, 1);
        stats_add(deps->stats, STATS_LOCAL_PAGES, page_count);
        stats_add(deps->stats, STATS_LOCAL_BYTES, bytes);
        stats_add(deps->stats, STATS_LOCAL_MISSES, asked > page_count ? asked - page_count : 0);
        stats_add(deps->stats, STATS_LOCAL_FDS_SENT, fd_count);
        sent = s_send(c->fd, &c->out, fds, fd_count, 0);
        replied = sent == 0;
    }
    for (uint32_t i = 0; i < fd_count; i++)
        close(fds[i]); /* the peer has its own now (or none: the send failed) */
    if (replied) {     /* its gone list and descriptors reached the client */
        s_forget_gone(c, gone, gone_count);
        if (gone_count < MSG_LOCATE_GONE_MAX) /* all told (a full list may have left some) */
            c->drops_told = drops;
    }
    if (replied)
        for (uint32_t i = 0; i < fd_count; i++)
            if (vec_push(&c->sent, fd_gens[i]) < 0)
                log_warn("local: out of memory tracking a sent descriptor");
    return sent;
}

/* Closes every descriptor a peer attached to a datagram: they are never used. */
static void s_close_passed(struct msghdr *header)
{
    for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(header); cmsg != NULL;
         cmsg = CMSG_NXTHDR(header, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof fd);
            close(fd);
        }
    }
}

/* Answers one datagram of `len` bytes. Returns 0, or -errno when the connection must end. */
static int s_answer(s_conn_t *c, size_t len, bool truncated)
{
    stats_t *stats = c->server->deps.stats;
    stats_add(stats, STATS_REQUESTS, 1);
    if (truncated || len > MSG_LOCAL_DATAGRAM_MAX) {
        stats_add(stats, STATS_MALFORMED, 1);
        return s_send_error(c->fd, &c->out, 0, SHOAL_EMSGSIZE,
                            "datagram over the 256 KiB limit of the local socket", 0);
    }
    msg_t request;
    int rc = msg_decode(c->in, len, &request);
    if (rc < 0) {
        char why[512];
        snprintf(why, sizeof why, "malformed request: %s", shoal_last_error());
        msg_header_t header;
        msg_raw_body_t body;
        uint64_t id = msg_header_decode(c->in, len, &header, &body) == 0 ? header.request_id : 0;
        stats_add(stats, STATS_MALFORMED, 1);
        return s_send_error(c->fd, &c->out, id, rc == SHOAL_EMSGSIZE ? rc : SHOAL_EPROTO, why, 0);
    }
    switch (request.header.type) {
    case MSG_LOCAL_HELLO_REQ:
        rc = s_hello(c, &request);
        break;
    case MSG_LOCATE_REQ:
        rc = s_locate(c, &request);
        break;
    default: {
        char why[128];
        snprintf(why, sizeof why, "%s (type %" PRIu32 ") is not a request of the local socket",
                 msg_type_name(request.header.type), request.header.type);
        stats_add(stats, STATS_MALFORMED, 1);
        rc = s_send_error(c->fd, &c->out, request.header.request_id, SHOAL_EPROTO, why, 0);
        break;
    }
    }
    msg_fini(&request);
    return rc;
}

static void s_conn_free(s_conn_t *c)
{
    if (c == NULL)
        return;
    free(c->in);
    free(c->loc);
    free(c->sums);
    free(c->pages);
    vec_fini(&c->sent);
    msg_buf_fini(&c->out);
    free(c);
}

/* A connection's thread: one datagram in, one reply out, until the peer closes or local_stop
 * shuts the socket down. */
static void *s_conn_run(void *arg)
{
    s_conn_t *c = arg;
    node_thread_name("shoal-local");
    for (;;) {
        struct iovec iov = {.iov_base = c->in, .iov_len = S_RECV_MAX};
        union {
            char bytes[CMSG_SPACE(sizeof(int) * S_FDS_IN_MAX)];
            struct cmsghdr align;
        } control;
        struct msghdr header = {.msg_iov = &iov,
                                .msg_iovlen = 1,
                                .msg_control = control.bytes,
                                .msg_controllen = sizeof control.bytes};
        ssize_t n = recvmsg(c->fd, &header, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* closed by the peer, or shut down by local_stop */
        s_close_passed(&header);
        if (s_answer(c, (size_t)n, (header.msg_flags & MSG_TRUNC) != 0) < 0)
            break;
    }
    local_t *server = c->server;
    s_slot_t *slot = &server->slots[c->slot];
    pthread_mutex_lock(&server->lock);
    slot->fd = -1; /* before the close: local_stop never shuts down a reused number */
    pthread_mutex_unlock(&server->lock);
    close(c->fd);
    s_conn_free(c);
    atomic_store(&slot->done, true);
    return NULL;
}

/* ---- the listener ------------------------------------------------------------------------ */

/* Joins the threads of connections that ended; the caller holds the lock. */
static void s_reap_locked(local_t *self)
{
    for (size_t i = 0; i < LOCAL_CONNECTIONS_MAX; i++) {
        s_slot_t *slot = &self->slots[i];
        if (slot->running && atomic_load(&slot->done)) {
            pthread_join(slot->thread, NULL);
            slot->running = false;
        }
    }
}

/* Admits or refuses one accepted socket. */
static void s_admit(local_t *self, int fd)
{
    stats_t *stats = self->deps.stats;
    struct ucred cred;
    socklen_t cred_len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) != 0) {
        stats_add(stats, STATS_LOCAL_REFUSED, 1);
        s_refuse(fd, SHOAL_EACCES, "the peer's credentials cannot be read (SO_PEERCRED)");
        return;
    }
    if (!local_uid_admitted(cred.uid, self->uid, self->gid)) {
        char why[256];
        snprintf(why, sizeof why,
                 "uid %u is not admitted to the local socket: only root, uid %u (the node) and "
                 "members of group %u (--local-group) are",
                 (unsigned)cred.uid, (unsigned)self->uid, (unsigned)self->gid);
        stats_add(stats, STATS_LOCAL_REFUSED, 1);
        log_debug("local: refused pid %d: %s", (int)cred.pid, why);
        s_refuse(fd, SHOAL_EACCES, why);
        return;
    }
    s_conn_t *c = calloc(1, sizeof *c);
    if (c != NULL) {
        c->in = malloc(S_RECV_MAX);
        c->loc = malloc(sizeof *c->loc);
        c->sums = malloc(S_SUMS_MAX * sizeof *c->sums);
        c->pages = malloc(MSG_LOCATE_PAGES_MAX * sizeof *c->pages);
        msg_buf_init(&c->out);
        vec_init(&c->sent);
    }
    if (c == NULL || c->in == NULL || c->loc == NULL || c->sums == NULL || c->pages == NULL) {
        s_conn_free(c);
        stats_add(stats, STATS_LOCAL_REFUSED, 1);
        s_refuse(fd, SHOAL_ENOMEM, "the node is out of memory");
        return;
    }
    c->server = self;
    c->fd = fd;
    c->uid = cred.uid;
    pthread_mutex_lock(&self->lock);
    s_reap_locked(self);
    size_t free_slot = LOCAL_CONNECTIONS_MAX;
    for (size_t i = 0; i < LOCAL_CONNECTIONS_MAX && free_slot == LOCAL_CONNECTIONS_MAX; i++)
        if (!self->slots[i].running)
            free_slot = i;
    int rc = -1;
    if (free_slot < LOCAL_CONNECTIONS_MAX) {
        s_slot_t *slot = &self->slots[free_slot];
        c->slot = free_slot;
        slot->fd = fd;
        atomic_store(&slot->done, false);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, S_STACK_BYTES);
        stats_add(stats, STATS_LOCAL_CONNECTIONS, 1); /* before its first reply can go out */
        rc = pthread_create(&slot->thread, &attr, s_conn_run, c);
        pthread_attr_destroy(&attr);
        if (rc == 0) {
            slot->running = true;
        } else {
            slot->fd = -1;
            atomic_fetch_sub(&stats->counters[STATS_LOCAL_CONNECTIONS], 1);
        }
    }
    pthread_mutex_unlock(&self->lock);
    if (rc == 0)
        return;
    s_conn_free(c);
    stats_add(stats, STATS_LOCAL_REFUSED, 1);
    s_refuse(fd, SHOAL_EBUSY,
             free_slot == LOCAL_CONNECTIONS_MAX
                 ? "the node serves its most local connections (256): read the ZeroMQ way"
                 : "the node cannot start a thread for the connection");
}

static void *s_listen_run(void *arg)
{
    local_t *self = arg;
    node_thread_name("shoal-local-l");
    bool logged = false;
    for (;;) {
        struct pollfd fds[2] = {{.fd = self->listen_fd, .events = POLLIN},
                                {.fd = self->stop_fd, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        if (fds[1].revents)
            break;
        if (!(fds[0].revents & POLLIN))
            continue;
        int fd = accept4(self->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                if (!logged)
                    log_warn("local: accept: %s (logged once)", strerror(errno));
                logged = true;
                poll(NULL, 0, 10); /* let descriptors come back rather than spin */
            }
            continue;
        }
        s_admit(self, fd);
    }
    return NULL;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

local_t *local_new(const local_deps_t *deps)
{
    local_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        log_error("out of memory");
        return NULL;
    }
    self->deps = *deps;
    self->listen_fd = -1;
    self->stop_fd = -1;
    self->uid = geteuid();
    pthread_mutex_init(&self->lock, NULL);
    for (size_t i = 0; i < LOCAL_CONNECTIONS_MAX; i++)
        self->slots[i].fd = -1;
    self->path = deps->path != NULL ? strdup(deps->path) : NULL;
    self->group = deps->group != NULL ? strdup(deps->group) : NULL;
    if (self->path == NULL || (deps->group != NULL && self->group == NULL)) {
        log_error("out of memory");
        local_destroy(&self);
        return NULL;
    }
    self->deps.path = self->path;
    self->deps.group = self->group;
    if (s_resolve_group(self->group, &self->gid) < 0) {
        log_error("%s", shoal_last_error());
        local_destroy(&self);
        return NULL;
    }
    return self;
}

/* Makes room for the socket at `path`: nothing there, or a socket nobody listens on (left by a
 * node that died), which is removed. */
static int s_clear_path(const char *path, const struct sockaddr_un *addr)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : shoal_fail(SHOAL_EIO, "%s: %s", path, strerror(errno));
    if (!S_ISSOCK(st.st_mode))
        return shoal_fail(SHOAL_EINVAL, "%s exists and is not a socket: not replacing it", path);
    int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return shoal_fail(SHOAL_EIO, "socket: %s", strerror(errno));
    int rc = connect(probe, (const struct sockaddr *)addr, sizeof *addr);
    int error = errno;
    close(probe);
    if (rc == 0)
        return shoal_fail(SHOAL_EBUSY, "%s: another process listens there", path);
    if (error != ECONNREFUSED)
        return shoal_fail(SHOAL_EIO, "%s: %s", path, strerror(error));
    if (unlink(path) != 0 && errno != ENOENT)
        return shoal_fail(SHOAL_EIO, "cannot remove the stale socket %s: %s", path,
                          strerror(errno));
    return 0;
}

int local_start(local_t *self)
{
    if (strlen(self->path) > LOCAL_SUN_PATH_MAX) {
        log_error("--local-socket %s: longer than %d bytes", self->path, LOCAL_SUN_PATH_MAX);
        return SHOAL_EINVAL;
    }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    memcpy(addr.sun_path, self->path, strlen(self->path) + 1);
    int rc = s_clear_path(self->path, &addr);
    int fd = -1;
    if (rc == 0 && (fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0)
        rc = shoal_fail(SHOAL_EIO, "socket: %s", strerror(errno));
    if (rc == 0 && bind(fd, (const struct sockaddr *)&addr, sizeof addr) != 0)
        rc = shoal_fail(errno == EADDRINUSE ? SHOAL_EBUSY : SHOAL_EIO, "bind %s: %s", self->path,
                        strerror(errno));
    bool bound = rc == 0;
    struct stat st;
    if (rc == 0 && stat(self->path, &st) != 0)
        rc = shoal_fail(SHOAL_EIO, "stat %s: %s", self->path, strerror(errno));
    if (rc == 0) {
        self->inode = st.st_ino;
        if (chmod(self->path, 0660) != 0)
            rc = shoal_fail(SHOAL_EIO, "chmod %s: %s", self->path, strerror(errno));
    }
    if (rc == 0 && st.st_gid != self->gid && chown(self->path, (uid_t)-1, self->gid) != 0)
        rc = shoal_fail(SHOAL_EACCES, "chown %s to group %u (--local-group): %s", self->path,
                        (unsigned)self->gid, strerror(errno));
    if (rc == 0 && listen(fd, S_BACKLOG) != 0)
        rc = shoal_fail(SHOAL_EIO, "listen %s: %s", self->path, strerror(errno));
    if (rc == 0 && (self->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0)
        rc = shoal_fail(SHOAL_EIO, "eventfd: %s", strerror(errno));
    if (rc == 0) {
        self->listen_fd = fd;
        if (pthread_create(&self->listener, NULL, s_listen_run, self) != 0)
            rc = shoal_fail(SHOAL_EIO, "cannot start the local listener thread");
    }
    if (rc < 0) {
        log_error("local socket: %s", shoal_last_error());
        if (fd >= 0)
            close(fd);
        self->listen_fd = -1;
        if (bound)
            unlink(self->path);
        return rc;
    }
    self->started = true;
    log_info("short-circuit local reads on %s (mode 0660, group %u)", self->path,
             (unsigned)self->gid);
    return 0;
}

void local_stop(local_t *self)
{
    if (self == NULL || !self->started)
        return;
    self->started = false;
    (void)eventfd_write(self->stop_fd, 1);
    pthread_join(self->listener, NULL);
    close(self->listen_fd);
    self->listen_fd = -1;
    struct stat st;
    if (stat(self->path, &st) == 0 && st.st_ino == self->inode)
        unlink(self->path); /* ours: a node started since at this path keeps its socket */
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < LOCAL_CONNECTIONS_MAX; i++)
        if (self->slots[i].fd >= 0)
            shutdown(self->slots[i].fd, SHUT_RDWR);
    pthread_mutex_unlock(&self->lock);
    for (size_t i = 0; i < LOCAL_CONNECTIONS_MAX; i++) {
        s_slot_t *slot = &self->slots[i];
        if (slot->running) {
            pthread_join(slot->thread, NULL);
            slot->running = false;
        }
    }
}

void local_destroy(local_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    local_t *self = *self_p;
    local_stop(self);
    if (self->stop_fd >= 0)
        close(self->stop_fd);
    pthread_mutex_destroy(&self->lock);
    free(self->path);
    free(self->group);
    free(self);
    *self_p = NULL;
}
