/*
 * local.c - short-circuit local reads: connections to the nodes of this host over their
 * AF_UNIX SOCK_SEQPACKET socket (HELLO, LOCATE), the data-file descriptors they pass
 * (SCM_RIGHTS), and pread + XXH3 of located pages straight into the caller's buffer.
 * The shared spec is client/README.md "Short-circuit reads" (and proto.h, types 16..19).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <xxh_x86dispatch.h>

#include "clock.h"
#include "local.h"

#define S_DATAGRAM_MAX MSG_LOCAL_DATAGRAM_MAX
#define S_LOCATE_PAGES MSG_LOCATE_PAGES_MAX  /* pages asked for in one LOCATE */
#define S_LOCATE_BYTES MSG_LOCATE_LENGTH_MAX /* bytes asked for in one LOCATE */
#define S_BOUNCE_BYTES ((size_t)1 << CLIENT_LOCAL_CHUNK_SHIFT)
#define S_RUN_BYTES    ((uint64_t)128 << 10) /* whole chunks read (then hashed) per pread */

/* One descriptor a connection was passed. Invariant: fd >= 0 iff the slot is in use. */
typedef struct local_fd {
    _Atomic int fd;  /* O_RDONLY data file of generation `gen`, or -1 */
    uint64_t gen;    /* its generation (store: the connection's store_id) */
    int64_t used_ms; /* last pread (or arrival), clock_mono_ms */
} local_fd_t;

/* One page location a connection remembers (the location cache): what a LOCATE_REP said of page
 * `page.index` of (uri, version) at file size `file_size`, on the connection's HELLO `session`.
 * It is read with no LOCATE until located_ms + the relocate interval. Safe because generation
 * files are append-only and the key holds the version: a cut file reads short, a reused name
 * fails its sums (both a miss), and a reconnect (another session) voids it. Invariant: key != 0
 * iff in use; then page.sums and name point into blob (owned). */
typedef struct local_loc {
    uint64_t key;          /* s_loc_key of (uri, version, index), never 0; 0 = empty */
    uint64_t session;      /* the connection's session that located it */
    uint64_t file_size;    /* the file's size at that version */
    int64_t located_ms;    /* when its LOCATE answered, clock_mono_ms */
    msg_local_page_t page; /* index, gen, offset, size, chunk_shift, seed, sum_count, sums */
    const char *name;      /* "uri\0version" in blob */
    void *blob;            /* the sums, then the name: one allocation */
} local_loc_t;

#define S_LOC_WAYS 4 /* a key's set: S_LOC_WAYS neighbouring entries, the oldest replaced */

/* One connection to a local node. `busy` is under the table's mutex; the rest belongs to the
 * thread that holds it busy (or to the mutex holder while it is idle). */
typedef struct local_conn {
    _Atomic int sock;    /* the SEQPACKET socket, or -1 */
    bool busy;           /* taken by a thread */
    bool broken;         /* close at release: its state (descriptors held) is unsure */
    bool ever_connected; /* a later connect counts local_reconnects */
    uint64_t epoch;      /* the node's epoch at HELLO: another one = close it */
    uint64_t store_id;   /* from HELLO */
    uint64_t page_size;  /* from HELLO */
    uint64_t lease_ms;   /* from HELLO */
    uint64_t next_id;    /* request id of the next request */
    int64_t sweep_ms;    /* the next lease sweep is due then */
    uint64_t session;    /* bumped at every HELLO: remembered locations of another are void */
    local_loc_t *locs;   /* CLIENT_LOCAL_LOCS_MAX remembered locations (made at first use) */
    local_fd_t fds[CLIENT_LOCAL_FDS_MAX]; /* descriptors passed on this connection */
    uint8_t *in;     /* receive buffer, S_DATAGRAM_MAX bytes (made at first use) */
    uint8_t *bounce; /* two chunks, 2 * S_BOUNCE_BYTES */
    msg_buf_t out;   /* encode buffer */
} local_conn_t;

/* One local node (one socket path). */
typedef struct local_node {
    char path[CLIENT_LOCAL_PATH_MAX]; /* its socket */
    bool known;                       /* id holds the node id HELLO gave */
    uint8_t id[MSG_NODE_ID_SIZE];     /* node id */
    bool expected;                    /* the view named `expect` for this path */
    uint8_t expect[MSG_NODE_ID_SIZE]; /* with expected: the id the view gave */
    int64_t retry_ms;                 /* no connect before this (failed or refused) */
    bool refused;                     /* the pause is a refusal */
    uint64_t store_id;                /* store of the last HELLO */
    uint64_t epoch;                   /* bumped when the store changes: old descriptors void */
    local_conn_t conns[CLIENT_LOCAL_CONNS_MAX];
} local_node_t;

/* One client_local_run: indexes are taken with `next`; `done` counts finished ones. Lives on
 * the caller's stack: it returns only once no helper holds it (`holders` 0). */
typedef struct local_work {
    void (*fn)(void *arg, size_t i); /* the work of index i */
    void *arg;                       /* its argument */
    size_t count;                    /* indexes */
    _Atomic size_t next;             /* the next index to take */
    _Atomic size_t done;             /* indexes finished */
    size_t holders;                  /* helpers holding this run (under work_mutex): the caller
                                      * waits for these only, not for other threads' runs */
} local_work_t;

struct client_local {
    pid_t pid;                   /* process that made it */
    client_counters_t *counters; /* borrowed */
    int timeout_ms;              /* wait for one reply at most this long */
    int64_t relocate_ms;         /* remembered locations are read this long; 0 = not at all */
    uint64_t parallel_bytes;     /* batches and spans of this many bytes go to the helpers too */
    pthread_mutex_t mutex;       /* node table, conn busy flags, lease sweeps */
    size_t node_count;           /* nodes in use */
    _Atomic size_t known_count;  /* nodes that answered HELLO once (client_local_has's fast no) */
    _Atomic uint64_t view_seen;  /* the view version whose members on this host were last fed */
    local_node_t nodes[CLIENT_LOCAL_NODES_MAX];
    /* helpers (client_local_run), all under work_mutex */
    pthread_mutex_t work_mutex;                  /* the fields below */
    pthread_cond_t work_cond;                    /* work posted, or stop */
    pthread_cond_t idle_cond;                    /* a helper let go of a run */
    pthread_t helpers[CLIENT_LOCAL_HELPERS_MAX]; /* started ones */
    size_t helper_count;                         /* started */
    bool helpers_tried;                          /* started (or failed to) once */
    bool stop;                                   /* destroy: helpers leave */
    local_work_t *work;                          /* the run posted, or NULL */
    uint64_t work_seq;                           /* bumped per run posted */
};

/* XXH3-64 of chunk `chunk` of a page as the store computes it (store/pagestore_rocksdb.c: the
 * seed of chunk c is the page's seed + c, so that a chunk served for another position fails). */
static uint64_t s_chunk_sum(uint64_t seed, uint64_t chunk, const void *data, size_t size)
{
    return XXH3_64bits_withSeed_dispatch(data, size, seed + chunk);
}

static void s_close_fd(_Atomic int *slot)
{
    int fd = atomic_exchange(slot, -1);
    if (fd >= 0)
        close(fd);
}

/* Closes every descriptor of a connection. */
static void s_conn_drop_fds(local_conn_t *conn)
{
    for (size_t i = 0; i < CLIENT_LOCAL_FDS_MAX; i++)
        s_close_fd(&conn->fds[i].fd);
}

/* Closes a connection and every descriptor it holds. */
static void s_conn_close(local_conn_t *conn)
{
    s_close_fd(&conn->sock);
    s_conn_drop_fds(conn);
    conn->broken = false;
}

/* Every live table of this process, so that a forked child closes the descriptors it inherited
 * at fork time (pthread_atfork), before its own code can reuse their numbers (closerange, dup2)
 * and have them closed under it at its first shoal call. Slots are atomics: the child handler
 * takes no lock (a parent thread may have held it at the fork). */
#define S_TABLES_MAX 64
static _Atomic(client_local_t *) s_tables[S_TABLES_MAX];
static pthread_once_t s_atfork_once = PTHREAD_ONCE_INIT;

static void s_atfork_child(void)
{
    for (size_t i = 0; i < S_TABLES_MAX; i++) {
        client_local_t *local = atomic_load(&s_tables[i]);
        if (local)
            client_local_abandon(local);
    }
}

static void s_atfork_register(void)
{
    (void)pthread_atfork(NULL, NULL, s_atfork_child);
}

/* Lists a table for the fork handler (a table not listed, past S_TABLES_MAX, is still
 * abandoned at the child's first call, as before). */
static void s_table_add(client_local_t *local)
{
    pthread_once(&s_atfork_once, s_atfork_register);
    for (size_t i = 0; i < S_TABLES_MAX; i++) {
        client_local_t *none = NULL;
        if (atomic_compare_exchange_strong(&s_tables[i], &none, local))
            return;
    }
}

static void s_table_remove(client_local_t *local)
{
    for (size_t i = 0; i < S_TABLES_MAX; i++) {
        client_local_t *self = local;
        if (atomic_compare_exchange_strong(&s_tables[i], &self, NULL))
            return;
    }
}

client_local_t *client_local_new(client_counters_t *counters, int timeout_ms)
{
    const char *off = getenv("SHOAL_SHORT_CIRCUIT");
    if (off && strcmp(off, "0") == 0)
        return NULL;
    client_local_t *local = calloc(1, sizeof *local);
    if (!local)
        return NULL;
    local->pid = getpid();
    local->counters = counters;
    /* a LOCATE is an index lookup on this host: one that takes longer than a second means a
     * node stuck (its store locked), and the ZeroMQ path serves the read instead */
    local->timeout_ms = timeout_ms > 0 && timeout_ms < CLIENT_LOCAL_TIMEOUT_MS
                            ? timeout_ms
                            : CLIENT_LOCAL_TIMEOUT_MS;
    local->relocate_ms = CLIENT_LOCAL_RELOCATE_MS;
    local->parallel_bytes = CLIENT_LOCAL_PARALLEL_BYTES;
    const char *parallel = getenv("SHOAL_LOCAL_PARALLEL_BYTES");
    if (parallel && *parallel) {
        char *end = NULL;
        unsigned long long value = strtoull(parallel, &end, 10);
        if (end && *end == '\0' && value > 0)
            local->parallel_bytes = value;
    }
    const char *relocate = getenv("SHOAL_LOCAL_RELOCATE_MS");
    if (relocate && *relocate) {
        char *end = NULL;
        long long value = strtoll(relocate, &end, 10);
        if (end && *end == '\0' && value >= 0)
            local->relocate_ms = value;
    }
    pthread_mutex_init(&local->mutex, NULL);
    pthread_mutex_init(&local->work_mutex, NULL);
    pthread_cond_init(&local->work_cond, NULL);
    pthread_cond_init(&local->idle_cond, NULL);
    atomic_init(&local->known_count, 0);
    for (size_t n = 0; n < CLIENT_LOCAL_NODES_MAX; n++)
        for (size_t c = 0; c < CLIENT_LOCAL_CONNS_MAX; c++) {
            atomic_init(&local->nodes[n].conns[c].sock, -1);
            for (size_t f = 0; f < CLIENT_LOCAL_FDS_MAX; f++)
                atomic_init(&local->nodes[n].conns[c].fds[f].fd, -1);
        }
    const char *paths = getenv("SHOAL_LOCAL");
    if (paths && *paths) {
        char *copy = strdup(paths);
        char *save = NULL;
        for (char *item = copy ? strtok_r(copy, ",", &save) : NULL; item;
             item = strtok_r(NULL, ",", &save))
            if (*item)
                client_local_consider(local, NULL, item);
        free(copy);
    }
    s_table_add(local);
    return local;
}

void client_local_destroy(client_local_t **local_p)
{
    if (!local_p || !*local_p)
        return;
    client_local_t *local = *local_p;
    *local_p = NULL;
    s_table_remove(local);
    pthread_mutex_lock(&local->work_mutex);
    local->stop = true;
    pthread_cond_broadcast(&local->work_cond);
    pthread_mutex_unlock(&local->work_mutex);
    for (size_t i = 0; i < local->helper_count; i++)
        pthread_join(local->helpers[i], NULL);
    pthread_cond_destroy(&local->idle_cond);
    pthread_cond_destroy(&local->work_cond);
    pthread_mutex_destroy(&local->work_mutex);
    for (size_t n = 0; n < CLIENT_LOCAL_NODES_MAX; n++)
        for (size_t c = 0; c < CLIENT_LOCAL_CONNS_MAX; c++) {
            local_conn_t *conn = &local->nodes[n].conns[c];
            s_conn_close(conn);
            for (size_t l = 0; conn->locs && l < CLIENT_LOCAL_LOCS_MAX; l++)
                free(conn->locs[l].blob);
            free(conn->locs);
            free(conn->in);
            free(conn->bounce);
            msg_buf_fini(&conn->out);
        }
    pthread_mutex_destroy(&local->mutex);
    free(local);
}

void client_local_abandon(client_local_t *local)
{
    if (!local)
        return;
    for (size_t n = 0; n < CLIENT_LOCAL_NODES_MAX; n++)
        for (size_t c = 0; c < CLIENT_LOCAL_CONNS_MAX; c++)
            s_conn_close(&local->nodes[n].conns[c]);
}

/* Depth of runs this thread is inside (its own client_local_run, or a helper's share of one):
 * a run started inside one (a piece's pages read in parallel while the pieces are) is done
 * inline by the thread. Posting it would deadlock: the outer run's caller waits for the helpers
 * to let go of the outer work, while a helper inside it would wait for its own inner run. */
static __thread unsigned s_run_depth;

/* Takes and runs indexes of `work` until none is left. */
static void s_work_drain(local_work_t *work)
{
    s_run_depth++;
    for (;;) {
        size_t i = atomic_fetch_add(&work->next, 1);
        if (i >= work->count)
            break;
        work->fn(work->arg, i);
        atomic_fetch_add(&work->done, 1);
    }
    s_run_depth--;
}

/* A helper thread: waits for a run, takes a share of its indexes, and signals when it lets go
 * of it. */
static void *s_helper_main(void *arg)
{
    client_local_t *local = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&local->work_mutex);
    for (;;) {
        while (!local->stop && (!local->work || local->work_seq == seen))
            pthread_cond_wait(&local->work_cond, &local->work_mutex);
        if (local->stop)
            break;
        local_work_t *work = local->work;
        seen = local->work_seq;
        work->holders++;
        pthread_mutex_unlock(&local->work_mutex);
        s_work_drain(work);
        pthread_mutex_lock(&local->work_mutex);
        work->holders--;
        pthread_cond_broadcast(&local->idle_cond);
    }
    pthread_mutex_unlock(&local->work_mutex);
    return NULL;
}

/* Starts the helpers once (under work_mutex): cores online - 1, at most
 * CLIENT_LOCAL_HELPERS_MAX. None when that is 0 or a thread cannot be made. */
static void s_helpers_start(client_local_t *local)
{
    local->helpers_tried = true;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t want = cores > 1 ? (size_t)(cores - 1) : 0;
    if (want > CLIENT_LOCAL_HELPERS_MAX)
        want = CLIENT_LOCAL_HELPERS_MAX;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 << 10);
    while (local->helper_count < want &&
           pthread_create(&local->helpers[local->helper_count], &attr, s_helper_main, local) == 0)
        local->helper_count++;
    pthread_attr_destroy(&attr);
}

void client_local_run(client_local_t *local, size_t count, void (*fn)(void *arg, size_t i),
                      void *arg)
{
    local_work_t work = {.fn = fn, .arg = arg, .count = count};
    atomic_init(&work.next, 0);
    atomic_init(&work.done, 0);
    bool posted = false;
    if (local && count > 1 && s_run_depth == 0 && local->pid == getpid()) {
        pthread_mutex_lock(&local->work_mutex);
        if (!local->helpers_tried)
            s_helpers_start(local);
        if (local->helper_count > 0 && !local->work) {
            local->work = &work;
            local->work_seq++;
            posted = true;
            CLIENT_COUNT(local->counters, local_parallel_runs, 1);
            pthread_cond_broadcast(&local->work_cond);
        }
        pthread_mutex_unlock(&local->work_mutex);
    }
    s_work_drain(&work);
    if (!posted)
        return;
    /* every index taken; wait for the helpers' last ones, then until none holds `work` */
    pthread_mutex_lock(&local->work_mutex);
    local->work = NULL;
    while (work.holders > 0 || atomic_load(&work.done) < count)
        pthread_cond_wait(&local->idle_cond, &local->work_mutex);
    pthread_mutex_unlock(&local->work_mutex);
}

uint64_t client_local_parallel_bytes(const client_local_t *local)
{
    return local ? local->parallel_bytes : UINT64_MAX;
}

bool client_local_view_seen(client_local_t *local, uint64_t view_version)
{
    return !local || atomic_exchange(&local->view_seen, view_version) == view_version;
}

void client_local_consider(client_local_t *local, const uint8_t *node_id, const char *socket_path)
{
    if (!local || !socket_path || strlen(socket_path) >= CLIENT_LOCAL_PATH_MAX)
        return;
    pthread_mutex_lock(&local->mutex);
    local_node_t *node = NULL;
    for (size_t n = 0; n < local->node_count && !node; n++)
        if (strcmp(local->nodes[n].path, socket_path) == 0)
            node = &local->nodes[n];
    if (!node && local->node_count < CLIENT_LOCAL_NODES_MAX) {
        node = &local->nodes[local->node_count++];
        snprintf(node->path, sizeof node->path, "%s", socket_path);
    }
    if (node && node_id && !node->known) {
        node->expected = true;
        memcpy(node->expect, node_id, MSG_NODE_ID_SIZE);
    }
    pthread_mutex_unlock(&local->mutex);
}

/* Takes a connection of node `n` (under the mutex): an idle connected one of the node's current
 * epoch first, else an idle empty one (closing a stale one). NULL when all are busy. */
static local_conn_t *s_conn_take(client_local_t *local, local_node_t *node)
{
    local_conn_t *empty = NULL;
    for (size_t c = 0; c < CLIENT_LOCAL_CONNS_MAX; c++) {
        local_conn_t *conn = &node->conns[c];
        if (conn->busy)
            continue;
        if (atomic_load(&conn->sock) >= 0 && conn->epoch != node->epoch)
            s_conn_close(conn);
        if (atomic_load(&conn->sock) >= 0) {
            conn->busy = true;
            return conn;
        }
        if (!empty)
            empty = conn;
    }
    (void)local;
    if (empty)
        empty->busy = true;
    return empty;
}

/* Gives a connection back: a broken one, or one of an old epoch, is closed first. */
static void s_conn_give(client_local_t *local, local_node_t *node, local_conn_t *conn)
{
    pthread_mutex_lock(&local->mutex);
    if (conn->broken || conn->epoch != node->epoch)
        s_conn_close(conn);
    conn->busy = false;
    pthread_mutex_unlock(&local->mutex);
}

/* Sends one datagram. 0 or a negative code (the connection is then unusable). */
static int s_send(local_conn_t *conn, const msg_t *m)
{
    int rc = msg_encode(m, &conn->out);
    if (rc != 0)
        return rc;
    ssize_t sent;
    do
        sent = send(atomic_load(&conn->sock), conn->out.data, conn->out.len, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    if (sent != (ssize_t)conn->out.len)
        return shoal_fail(SHOAL_EIO, "local send: %s", sent < 0 ? strerror(errno) : "short");
    return 0;
}

/* Receives one datagram into conn->in and decodes it into *reply, with the descriptors that
 * came with it in fds[*fd_count] (at most MSG_LOCATE_FDS_MAX; owned by the caller on success,
 * closed here on failure). Waits timeout_ms at most. 0 or a negative code (connection unusable).
 */
static int s_recv(client_local_t *local, local_conn_t *conn, msg_t *reply, int *fds,
                  size_t *fd_count)
{
    *fd_count = 0;
    int sock = atomic_load(&conn->sock);
    struct pollfd pfd = {.fd = sock, .events = POLLIN};
    int ready;
    do
        ready = poll(&pfd, 1, local->timeout_ms);
    while (ready < 0 && errno == EINTR);
    if (ready <= 0)
        return shoal_fail(SHOAL_ETIMEDOUT, "local node answered nothing in %d ms",
                          local->timeout_ms);
    union {
        char space[CMSG_SPACE(sizeof(int) * MSG_LOCATE_FDS_MAX)];
        struct cmsghdr align;
    } control;
    struct iovec iov = {.iov_base = conn->in, .iov_len = S_DATAGRAM_MAX};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control.space,
                        .msg_controllen = sizeof control.space};
    ssize_t got;
    do
        got = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (got < 0 && errno == EINTR);
    /* A peer that closed with our datagram unread resets the connection, and the kernel reports
     * that before the datagram it sent first (a refusal's ERROR): take the error, then what is
     * queued. */
    if (got < 0 && errno == ECONNRESET) {
        mh.msg_controllen = sizeof control.space;
        do
            got = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        while (got < 0 && errno == EINTR);
    }
    if (got < 0)
        return shoal_fail(SHOAL_EIO, "local recvmsg: %s", strerror(errno));
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(cm);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, data + i * sizeof fd, sizeof fd);
            if (*fd_count < MSG_LOCATE_FDS_MAX)
                fds[(*fd_count)++] = fd;
            else
                close(fd);
        }
    }
    int rc = 0;
    if (got == 0)
        rc = shoal_fail(SHOAL_EIO, "local node closed the connection");
    else if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
        rc = shoal_fail(SHOAL_EPROTO, "local reply truncated");
    else
        rc = msg_decode(conn->in, (size_t)got, reply);
    if (rc != 0) {
        for (size_t i = 0; i < *fd_count; i++)
            close(fds[i]);
        *fd_count = 0;
    }
    return rc;
}

/* Pauses connects to a node: `refused` (EACCES) for CLIENT_LOCAL_REFUSED_MS, counted, else
 * CLIENT_LOCAL_RETRY_MS. */
static void s_node_pause(client_local_t *local, local_node_t *node, bool refused)
{
    pthread_mutex_lock(&local->mutex);
    node->retry_ms = clock_mono_ms() + (refused ? CLIENT_LOCAL_REFUSED_MS : CLIENT_LOCAL_RETRY_MS);
    node->refused = refused;
    pthread_mutex_unlock(&local->mutex);
    if (refused)
        CLIENT_COUNT(local->counters, local_refused, 1);
}

/* Connects a taken, closed connection of `node` and says HELLO. Learns (or checks) the node's
 * id and store: another store than the node's last one bumps its epoch (every other
 * connection's descriptors are void). 0 or a negative code (the node is paused). */
static int s_conn_open(client_local_t *local, local_node_t *node, local_conn_t *conn)
{
    if (!conn->in)
        conn->in = malloc(S_DATAGRAM_MAX);
    if (!conn->bounce)
        conn->bounce = malloc(2 * S_BOUNCE_BYTES); /* two: s_cached's first and last page */
    if (!conn->in || !conn->bounce)
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return shoal_fail(SHOAL_EIO, "socket: %s", strerror(errno));
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", node->path);
    struct timeval tv = {.tv_sec = local->timeout_ms / 1000,
                         .tv_usec = (local->timeout_ms % 1000) * 1000};
    setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(sock, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int err = errno;
        close(sock);
        s_node_pause(local, node, err == EACCES || err == EPERM);
        return shoal_fail(SHOAL_EUNAVAIL, "connect %s: %s", node->path, strerror(err));
    }
    atomic_store(&conn->sock, sock);
    s_conn_drop_fds(conn);
    if (conn->ever_connected)
        CLIENT_COUNT(local->counters, local_reconnects, 1);
    conn->ever_connected = true;
    msg_t hello;
    msg_init(&hello, MSG_LOCAL_HELLO_REQ, conn->next_id++, 0);
    /* A node that refuses us sends its ERROR at accept and closes: the send may fail (EPIPE)
     * while that ERROR waits in our queue, so receive either way (s_recv reads past the
     * reset). */
    int sent = s_send(conn, &hello);
    msg_t reply;
    memset(&reply, 0, sizeof reply);
    int fds[MSG_LOCATE_FDS_MAX];
    size_t fd_count = 0;
    int rc = s_recv(local, conn, &reply, fds, &fd_count);
    if (rc == 0 && sent != 0 && reply.header.type != MSG_ERROR)
        rc = sent;
    for (size_t i = 0; i < fd_count; i++) /* a HELLO carries none: never used */
        close(fds[i]);
    bool refused = false;
    if (rc == 0 && reply.header.type == MSG_ERROR) {
        refused = reply.body.error.code == SHOAL_EACCES;
        rc = shoal_fail(reply.body.error.code, "local node %s: %s", node->path,
                        reply.body.error.message);
    } else if (rc == 0 && (reply.header.type != MSG_LOCAL_HELLO_REP ||
                           reply.body.local_hello_reply.page_size == 0)) {
        rc = shoal_fail(SHOAL_EPROTO, "local node %s: unexpected %s", node->path,
                        msg_type_name(reply.header.type));
    }
    if (rc != 0) {
        msg_fini(&reply);
        s_conn_close(conn);
        s_node_pause(local, node, refused);
        return rc;
    }
    const msg_local_hello_reply_t *h = &reply.body.local_hello_reply;
    pthread_mutex_lock(&local->mutex);
    if (!node->known || memcmp(node->id, h->node_id, MSG_NODE_ID_SIZE) != 0 ||
        node->store_id != h->store_id) {
        node->epoch++; /* another node or another store: every old descriptor is void */
        if (!node->known)
            atomic_fetch_add(&local->known_count, 1);
        node->known = true;
        memcpy(node->id, h->node_id, MSG_NODE_ID_SIZE);
        node->store_id = h->store_id;
    }
    node->refused = false;
    node->retry_ms = 0;
    conn->epoch = node->epoch;
    pthread_mutex_unlock(&local->mutex);
    conn->store_id = h->store_id;
    conn->page_size = h->page_size;
    conn->lease_ms = h->lease_ms ? h->lease_ms : CLIENT_LOCAL_LEASE_MS;
    conn->sweep_ms = clock_mono_ms() + (int64_t)conn->lease_ms;
    conn->broken = false;
    conn->session++;
    msg_fini(&reply);
    return 0;
}

/* Closes the descriptors of an idle connection not used for its lease (under the mutex). */
static void s_conn_sweep(local_conn_t *conn, int64_t now)
{
    if (atomic_load(&conn->sock) < 0 || now < conn->sweep_ms)
        return;
    int64_t next = now + (int64_t)conn->lease_ms;
    for (size_t i = 0; i < CLIENT_LOCAL_FDS_MAX; i++) {
        local_fd_t *slot = &conn->fds[i];
        if (atomic_load(&slot->fd) < 0)
            continue;
        if (slot->used_ms + (int64_t)conn->lease_ms <= now)
            s_close_fd(&slot->fd);
        else if (slot->used_ms + (int64_t)conn->lease_ms < next)
            next = slot->used_ms + (int64_t)conn->lease_ms;
    }
    conn->sweep_ms = next;
}

void client_local_begin(client_local_t *local)
{
    if (!local)
        return;
    int64_t now = clock_mono_ms();
    local_node_t *unknown[CLIENT_LOCAL_NODES_MAX];
    local_conn_t *conns[CLIENT_LOCAL_NODES_MAX];
    size_t unknown_count = 0;
    pthread_mutex_lock(&local->mutex);
    for (size_t n = 0; n < local->node_count; n++) {
        local_node_t *node = &local->nodes[n];
        for (size_t c = 0; c < CLIENT_LOCAL_CONNS_MAX; c++)
            if (!node->conns[c].busy)
                s_conn_sweep(&node->conns[c], now);
        if (node->known || now < node->retry_ms)
            continue;
        local_conn_t *conn = s_conn_take(local, node);
        if (conn) {
            unknown[unknown_count] = node;
            conns[unknown_count++] = conn;
        }
    }
    pthread_mutex_unlock(&local->mutex);
    for (size_t i = 0; i < unknown_count; i++) {
        if (atomic_load(&conns[i]->sock) < 0)
            s_conn_open(local, unknown[i], conns[i]);
        s_conn_give(local, unknown[i], conns[i]);
    }
}

/* The node entry of `node_id` that answered HELLO and is not paused (under the mutex). */
static local_node_t *s_node_find(client_local_t *local, const uint8_t *node_id)
{
    for (size_t n = 0; n < local->node_count; n++) {
        local_node_t *node = &local->nodes[n];
        if (node->known && memcmp(node->id, node_id, MSG_NODE_ID_SIZE) == 0)
            return node->refused && clock_mono_ms() < node->retry_ms ? NULL : node;
    }
    return NULL;
}

bool client_local_has(client_local_t *local, const uint8_t *node_id)
{
    if (!local || atomic_load_explicit(&local->known_count, memory_order_relaxed) == 0)
        return false;
    if (!node_id)
        return true;
    pthread_mutex_lock(&local->mutex);
    bool found = s_node_find(local, node_id) != NULL;
    pthread_mutex_unlock(&local->mutex);
    return found;
}

/* The descriptor slot of generation `gen` on a connection, or NULL. */
static local_fd_t *s_fd_find(local_conn_t *conn, uint64_t gen)
{
    for (size_t i = 0; i < CLIENT_LOCAL_FDS_MAX; i++)
        if (atomic_load(&conn->fds[i].fd) >= 0 && conn->fds[i].gen == gen)
            return &conn->fds[i];
    return NULL;
}

/* Takes what a LOCATE_REP says about descriptors: closes the `gone` ones, installs the passed
 * ones (replacing an older one of the same generation). A full table closes the least recently
 * used descriptor; the node will not pass it again on this connection, so the connection is
 * marked broken (reconnected after this call). */
static void s_fds_take(local_conn_t *conn, const msg_locate_reply_t *r, const int *fds)
{
    for (uint32_t i = 0; i < r->gone_count; i++) {
        local_fd_t *slot = s_fd_find(conn, r->gone_gens[i]);
        if (slot)
            s_close_fd(&slot->fd);
    }
    int64_t now = clock_mono_ms();
    for (uint32_t i = 0; i < r->fd_count; i++) {
        local_fd_t *slot = s_fd_find(conn, r->fd_gens[i]);
        if (slot)
            s_close_fd(&slot->fd);
        for (size_t k = 0; !slot && k < CLIENT_LOCAL_FDS_MAX; k++)
            if (atomic_load(&conn->fds[k].fd) < 0)
                slot = &conn->fds[k];
        if (!slot) {
            slot = &conn->fds[0];
            for (size_t k = 1; k < CLIENT_LOCAL_FDS_MAX; k++)
                if (conn->fds[k].used_ms < slot->used_ms)
                    slot = &conn->fds[k];
            s_close_fd(&slot->fd);
            conn->broken = true;
        }
        slot->gen = r->fd_gens[i];
        slot->used_ms = now;
        atomic_store(&slot->fd, fds[i]);
    }
}

/* pread of exactly `len` bytes at `offset`: true when all came. */
static bool s_pread_all(int fd, void *buf, size_t len, uint64_t offset)
{
    size_t done = 0;
    while (done < len) {
        ssize_t got = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(offset + done));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        done += (size_t)got;
    }
    return true;
}

/* What reading one page's span came to (s_page_fetch). */
typedef enum page_result {
    PAGE_OK,      /* every byte in dest, every chunk used checked */
    PAGE_SHORT,   /* a short read: the generation was cut */
    PAGE_BAD_SUM, /* a chunk's XXH3 did not match */
    PAGE_INVALID, /* the page does not cover the span, odd chunking, or no bounce buffer */
} page_result_t;

/* Reads file bytes [lo, hi) of one located page from `fd` into dest (at lo - dest_offset),
 * checking the XXH3 of every chunk it uses: whole chunks straight into dest, a partly used one
 * through `bounce` (S_BOUNCE_BYTES; NULL: such a span is PAGE_INVALID). No side effect but
 * dest and bounce, so that helpers may run it at once on pages of one connection. */
static page_result_t s_page_fetch(int fd, const msg_local_page_t *page, uint64_t page_start,
                                  uint64_t lo, uint64_t hi, uint8_t *dest, uint64_t dest_offset,
                                  uint8_t *bounce)
{
    if (page->chunk_shift > CLIENT_LOCAL_CHUNK_SHIFT || page->chunk_shift < MSG_CHUNK_SHIFT_MIN ||
        page_start + page->size < hi || lo >= hi)
        return PAGE_INVALID;
    uint32_t shift = page->chunk_shift;
    uint64_t rel_lo = lo - page_start, rel_hi = hi - page_start;
    uint64_t first = rel_lo >> shift, last = (rel_hi - 1) >> shift;
    /* whole chunks: [full_lo, full_hi) */
    uint64_t full_lo = (rel_lo + ((1ull << shift) - 1)) >> shift;
    uint64_t full_hi = rel_hi >= page->size ? last + 1 : rel_hi >> shift;
    if (last >= page->sum_count)
        return PAGE_INVALID;
    /* whole chunks are read S_RUN_BYTES at a time and hashed while still in L1/L2 (one pread
     * of a whole 1 MiB page and then a second pass over it reads the page from L3 or DRAM
     * again: about 0.65x the copy's speed against 0.85x, client/README.md) */
    uint64_t run_chunks = (S_RUN_BYTES >> shift) ? (S_RUN_BYTES >> shift) : 1;
    for (uint64_t c = first; c <= last; c++) {
        uint64_t c_lo = c << shift;
        uint64_t c_hi = (c + 1) << shift < page->size ? (c + 1) << shift : page->size;
        uint64_t want_lo = c_lo > rel_lo ? c_lo : rel_lo;
        uint64_t want_hi = c_hi < rel_hi ? c_hi : rel_hi;
        uint8_t *out = dest + (page_start + want_lo - dest_offset);
        bool whole = c >= full_lo && c < full_hi;
        if (whole && (c - full_lo) % run_chunks == 0) { /* the next run of whole chunks */
            uint64_t run_end = c + run_chunks < full_hi ? c + run_chunks : full_hi;
            uint64_t run_hi = (run_end << shift) < page->size ? run_end << shift : page->size;
            if (!s_pread_all(fd, out, run_hi - c_lo, page->offset + c_lo))
                return PAGE_SHORT;
        }
        const uint8_t *data = out;
        if (!whole) {
            if (!bounce)
                return PAGE_INVALID;
            if (!s_pread_all(fd, bounce, c_hi - c_lo, page->offset + c_lo))
                return PAGE_SHORT;
            data = bounce;
        }
        if (s_chunk_sum(page->seed, c, data, c_hi - c_lo) != page->sums[c])
            return PAGE_BAD_SUM;
        if (!whole)
            memcpy(out, bounce + (want_lo - c_lo), want_hi - want_lo);
    }
    return PAGE_OK;
}

/* What a page's read says of its descriptor: a short read closes it (the generation was cut),
 * a bad sum is counted. True for PAGE_OK. */
static bool s_page_done(client_local_t *local, local_fd_t *slot, page_result_t result)
{
    if (result == PAGE_SHORT)
        s_close_fd(&slot->fd);
    else if (result == PAGE_BAD_SUM)
        CLIENT_COUNT(local->counters, local_bad_sums, 1);
    return result == PAGE_OK;
}

/* Reads file bytes [lo, hi) of one located page into dest (s_page_fetch) through the
 * connection's descriptor of its generation and bounce buffer. False on a short read (its
 * descriptor is closed: the generation was cut), a bad sum (counted), a page that does not
 * cover the span, or no descriptor (the connection is then marked broken). */
static bool s_page_read(client_local_t *local, local_conn_t *conn, const msg_local_page_t *page,
                        uint64_t page_start, uint64_t lo, uint64_t hi, uint8_t *dest,
                        uint64_t dest_offset)
{
    local_fd_t *slot = s_fd_find(conn, page->gen);
    if (!slot) { /* the node believes we hold it (lease closed, table full): start afresh */
        conn->broken = true;
        return false;
    }
    slot->used_ms = clock_mono_ms();
    return s_page_done(local, slot,
                       s_page_fetch(atomic_load(&slot->fd), page, page_start, lo, hi, dest,
                                    dest_offset, conn->bounce));
}

/* The hash of a file version's name, the start of its pages' keys. */
static uint64_t s_name_hash(const char *uri, const char *version)
{
    return XXH3_64bits_withSeed_dispatch(version, strlen(version),
                                         XXH3_64bits_dispatch(uri, strlen(uri)));
}

/* The key of page `index` of the version whose name hashes to `name_hash`: never 0. */
static uint64_t s_loc_key(uint64_t name_hash, uint64_t index)
{
    uint64_t key = name_hash ^ (index * 0x9e3779b97f4a7c15ull);
    key ^= key >> 31;
    key *= 0xbf58476d1ce4e5b9ull;
    key ^= key >> 29;
    return key ? key : 1;
}

/* The first entry of the set of `key`. */
static local_loc_t *s_loc_set(local_conn_t *conn, uint64_t key)
{
    return &conn->locs[(key % (CLIENT_LOCAL_LOCS_MAX / S_LOC_WAYS)) * S_LOC_WAYS];
}

/* Whether a remembered entry is page `index` of (uri, version) at `file_size` on the
 * connection's current session. */
static bool s_loc_is(const local_conn_t *conn, const local_loc_t *loc, uint64_t key, uint64_t index,
                     const char *uri, const char *version, uint64_t file_size)
{
    if (loc->key != key || loc->page.index != index || loc->session != conn->session ||
        loc->file_size != file_size)
        return false;
    size_t uri_len = strlen(uri);
    return memcmp(loc->name, uri, uri_len + 1) == 0 &&
           strcmp(loc->name + uri_len + 1, version) == 0;
}

/* Remembers a page located just now (LOCATE_REP `page`, of (uri, version) at `file_size`): in
 * the entry that held it, else an empty one of its set, else the set's oldest. Out of memory:
 * not remembered. */
static void s_loc_put(local_conn_t *conn, uint64_t name_hash, const char *uri, const char *version,
                      uint64_t file_size, const msg_local_page_t *page, int64_t now)
{
    if (!conn->locs) {
        conn->locs = calloc(CLIENT_LOCAL_LOCS_MAX, sizeof *conn->locs);
        if (!conn->locs)
            return;
    }
    uint64_t key = s_loc_key(name_hash, page->index);
    local_loc_t *set = s_loc_set(conn, key), *loc = NULL;
    for (size_t w = 0; w < S_LOC_WAYS && !loc; w++)
        if (s_loc_is(conn, &set[w], key, page->index, uri, version, file_size))
            loc = &set[w];
    for (size_t w = 0; w < S_LOC_WAYS && !loc; w++)
        if (set[w].key == 0 || set[w].session != conn->session)
            loc = &set[w];
    for (size_t w = 0; w < S_LOC_WAYS && !loc; w++)
        if (w == S_LOC_WAYS - 1 || set[w].located_ms <= set[w + 1].located_ms)
            loc = &set[w]; /* roughly the oldest: good enough for 4 ways */
    size_t sums = (size_t)page->sum_count * sizeof(uint64_t);
    size_t uri_len = strlen(uri), version_len = strlen(version);
    loc->key = 0;
    void *blob = realloc(loc->blob, sums + uri_len + version_len + 2);
    if (!blob)
        return; /* the old blob stays owned (freed at destroy or reuse) */
    loc->blob = blob;
    memcpy(blob, page->sums, sums);
    char *name = (char *)blob + sums;
    memcpy(name, uri, uri_len + 1);
    memcpy(name + uri_len + 1, version, version_len + 1);
    loc->page = *page;
    loc->page.sums = blob;
    loc->name = name;
    loc->session = conn->session;
    loc->file_size = file_size;
    loc->located_ms = now;
    loc->key = key;
}

/* The pages of one s_cached span read on several threads (client_local_run). */
typedef struct page_batch {
    local_loc_t *const *locs;        /* the remembered pages, in index order */
    const int *fds;                  /* their descriptors */
    uint64_t first;                  /* index of locs[0] */
    uint64_t page_size;              /* the connection's */
    uint64_t offset, end;            /* the span */
    const client_local_read_t *read; /* dest, dest offset */
    uint8_t *bounce;                 /* 2 chunks: the first page's, the last page's */
    size_t count;                    /* pages */
    page_result_t results[S_LOCATE_PAGES];
} page_batch_t;

static void s_page_batch_one(void *arg, size_t i)
{
    page_batch_t *batch = arg;
    uint64_t page_start = (batch->first + i) * batch->page_size;
    uint64_t lo = page_start > batch->offset ? page_start : batch->offset;
    uint64_t hi =
        page_start + batch->page_size < batch->end ? page_start + batch->page_size : batch->end;
    /* only the first and the last page of a span can use part of a chunk */
    uint8_t *bounce = i == 0                  ? batch->bounce
                      : i == batch->count - 1 ? batch->bounce + S_BOUNCE_BYTES
                                              : NULL;
    batch->results[i] = s_page_fetch(batch->fds[i], &batch->locs[i]->page, page_start, lo, hi,
                                     batch->read->dest, batch->read->offset, bounce);
}

/* Serves [offset, +length) of `read` (version and size known) from the locations this
 * connection remembers, with no LOCATE: true when every page of the span was located less
 * than the relocate interval ago, its descriptor is held and every chunk used checked (dest
 * then holds the span). False promises nothing of dest (the caller LOCATEs the span afresh,
 * which writes it again); a page whose read failed is forgotten. */
static bool s_cached(client_local_t *local, local_conn_t *conn, const client_local_read_t *read,
                     uint64_t name_hash, uint64_t offset, uint64_t length)
{
    int64_t relocate_ms = local->relocate_ms;
    if ((uint64_t)relocate_ms > conn->lease_ms)
        relocate_ms = (int64_t)conn->lease_ms;
    if (!conn->locs || relocate_ms <= 0 || length == 0 || conn->page_size == 0)
        return false;
    uint64_t page_size = conn->page_size, end = offset + length;
    uint64_t first = offset / page_size, last = (end - 1) / page_size;
    if (last - first >= S_LOCATE_PAGES)
        return false;
    local_loc_t *locs[S_LOCATE_PAGES];
    int64_t now = clock_mono_ms();
    for (uint64_t index = first; index <= last; index++) {
        uint64_t key = s_loc_key(name_hash, index);
        local_loc_t *set = s_loc_set(conn, key), *loc = NULL;
        for (size_t w = 0; w < S_LOC_WAYS && !loc; w++)
            if (s_loc_is(conn, &set[w], key, index, read->uri, read->version, read->file_size))
                loc = &set[w];
        if (!loc || now - loc->located_ms >= relocate_ms || !s_fd_find(conn, loc->page.gen))
            return false;
        locs[index - first] = loc;
    }
    if (length >= local->parallel_bytes && last > first) {
        /* a big span: its pages on the helpers too; every side effect after, on this thread
         * (no descriptor is closed while another thread may pread it) */
        page_batch_t batch = {.locs = locs,
                              .first = first,
                              .page_size = page_size,
                              .offset = offset,
                              .end = end,
                              .read = read,
                              .bounce = conn->bounce,
                              .count = (size_t)(last - first + 1)};
        int fds[S_LOCATE_PAGES];
        local_fd_t *slots[S_LOCATE_PAGES];
        for (size_t i = 0; i < batch.count; i++) {
            slots[i] = s_fd_find(conn, locs[i]->page.gen);
            slots[i]->used_ms = now;
            fds[i] = atomic_load(&slots[i]->fd);
        }
        batch.fds = fds;
        client_local_run(local, batch.count, s_page_batch_one, &batch);
        bool all = true;
        for (size_t i = 0; i < batch.count; i++)
            if (!s_page_done(local, slots[i], batch.results[i])) {
                locs[i]->key = 0;
                all = false;
            }
        if (all)
            CLIENT_COUNT(local->counters, local_cache_hits, 1);
        return all;
    }
    for (uint64_t index = first; index <= last; index++) {
        local_loc_t *loc = locs[index - first];
        uint64_t page_start = index * page_size;
        uint64_t lo = page_start > offset ? page_start : offset;
        uint64_t hi = page_start + page_size < end ? page_start + page_size : end;
        if (!s_page_read(local, conn, &loc->page, page_start, lo, hi, read->dest, read->offset)) {
            loc->key = 0;
            return false;
        }
    }
    CLIENT_COUNT(local->counters, local_cache_hits, 1);
    return true;
}

/* Widens the miss span [*miss_lo, *miss_hi) (empty when lo == hi == UINT64_MAX/0) by [lo, hi). */
static void s_miss(uint64_t *miss_lo, uint64_t *miss_hi, uint64_t lo, uint64_t hi)
{
    if (lo >= hi)
        return;
    if (lo < *miss_lo)
        *miss_lo = lo;
    if (hi > *miss_hi)
        *miss_hi = hi;
}

/* One LOCATE of [offset, +length) on a connection and the reads of its pages. Updates the miss
 * span. With read->file_size unknown, learns the stat from the reply. 0, or a negative code when
 * the exchange failed (the connection is marked broken) or the node named no version. */
static int s_locate(client_local_t *local, local_conn_t *conn, client_local_read_t *read,
                    uint64_t offset, uint64_t length, uint64_t *miss_lo, uint64_t *miss_hi)
{
    const char *version = read->learnt && !read->version[0] ? read->version_out : read->version;
    msg_t request;
    msg_init(&request, MSG_LOCATE_REQ, conn->next_id++, 0);
    request.body.locate_request = (msg_locate_request_t){
        .uri = read->uri,
        .version = version,
        .offset = offset,
        .length = length,
        .file_size = read->file_size,
    };
    CLIENT_COUNT(local->counters, local_locates, 1);
    int rc = s_send(conn, &request);
    msg_t reply;
    memset(&reply, 0, sizeof reply);
    int fds[MSG_LOCATE_FDS_MAX];
    size_t fd_count = 0;
    if (rc == 0)
        rc = s_recv(local, conn, &reply, fds, &fd_count);
    if (rc != 0) {
        conn->broken = true;
        return rc;
    }
    const msg_locate_reply_t *r = &reply.body.locate_reply;
    if (reply.header.type == MSG_ERROR) {
        rc = shoal_fail(reply.body.error.code, "LOCATE: %s", reply.body.error.message);
    } else if (reply.header.type != MSG_LOCATE_REP ||
               reply.header.request_id != request.header.request_id) {
        conn->broken = true;
        rc = shoal_fail(SHOAL_EPROTO, "LOCATE: unexpected %s", msg_type_name(reply.header.type));
    } else if (r->fd_count != fd_count || r->store_id != conn->store_id) {
        conn->broken = true; /* the descriptors held no longer match the node's idea */
        rc = shoal_fail(SHOAL_EPROTO, "LOCATE: %zu descriptors for %u listed, store %llu/%llu",
                        fd_count, r->fd_count, (unsigned long long)r->store_id,
                        (unsigned long long)conn->store_id);
    }
    if (rc != 0) {
        for (size_t i = 0; i < fd_count; i++)
            close(fds[i]);
        msg_fini(&reply);
        return rc;
    }
    s_fds_take(conn, r, fds);
    if (!r->version[0] || (version[0] && strcmp(r->version, version) != 0) ||
        (read->file_size != MSG_SIZE_UNKNOWN && r->file_size != read->file_size) ||
        r->file_size == MSG_SIZE_UNKNOWN) {
        msg_fini(&reply);
        return shoal_fail(SHOAL_EUNAVAIL, "LOCATE: no version named");
    }
    if (read->file_size == MSG_SIZE_UNKNOWN) { /* the stat, as a READ reply gives it */
        read->learnt = true;
        read->file_size = r->file_size;
        read->mtime = r->mtime;
        snprintf(read->version_out, sizeof read->version_out, "%s", r->version);
        uint64_t left = read->offset < r->file_size ? r->file_size - read->offset : 0;
        if (read->length > left)
            read->length = left;
        if (offset + length > read->offset + read->length)
            length =
                read->offset + read->length > offset ? read->offset + read->length - offset : 0;
    }
    uint64_t end = offset + length;
    uint64_t next = offset; /* bytes before it are accounted for */
    uint64_t page_size = conn->page_size;
    bool remember = local->relocate_ms > 0;
    uint64_t name_hash = remember ? s_name_hash(read->uri, r->version) : 0;
    int64_t now = remember ? clock_mono_ms() : 0;
    for (uint32_t i = 0; i < r->page_count && next < end; i++) {
        const msg_local_page_t *page = &r->pages[i];
        uint64_t page_start = page->index * page_size;
        uint64_t lo = page_start > offset ? page_start : offset;
        uint64_t hi = page_start + page_size < end ? page_start + page_size : end;
        if (lo >= hi || lo < next)
            continue;                       /* not wanted, or out of order */
        s_miss(miss_lo, miss_hi, next, lo); /* pages not held before this one */
        if (s_page_read(local, conn, page, page_start, lo, hi, read->dest, read->offset)) {
            next = hi;
            if (remember)
                s_loc_put(conn, name_hash, read->uri, r->version, r->file_size, page, now);
        } else {
            s_miss(miss_lo, miss_hi, lo, hi);
            next = hi;
        }
    }
    s_miss(miss_lo, miss_hi, next, end);
    msg_fini(&reply);
    return 0;
}

/* Whether the node behind `node`'s path is still `node_id` (a HELLO may have named another). */
static bool s_node_is(client_local_t *local, const local_node_t *node, const uint8_t *node_id)
{
    pthread_mutex_lock(&local->mutex);
    bool same = node->known && memcmp(node->id, node_id, MSG_NODE_ID_SIZE) == 0;
    pthread_mutex_unlock(&local->mutex);
    return same;
}

int client_local_read(client_local_t *local, const uint8_t *node_id, client_local_read_t *read)
{
    read->learnt = false;
    read->miss_offset = read->offset;
    read->miss_length = read->length;
    if (!local || !node_id || !read->version)
        return SHOAL_EINVAL;
    pthread_mutex_lock(&local->mutex);
    local_node_t *node = s_node_find(local, node_id);
    local_conn_t *conn = node ? s_conn_take(local, node) : NULL;
    bool retry_allowed = node && clock_mono_ms() >= node->retry_ms;
    pthread_mutex_unlock(&local->mutex);
    if (!conn)
        return SHOAL_EUNAVAIL;
    int rc = 0;
    bool fresh = false;
    if (atomic_load(&conn->sock) < 0) {
        rc = retry_allowed ? s_conn_open(local, node, conn) : SHOAL_EUNAVAIL;
        fresh = true;
    }
    if (rc == 0 && !s_node_is(local, node, node_id))
        rc = SHOAL_EUNAVAIL; /* the path now serves another node */
    uint64_t miss_lo = UINT64_MAX, miss_hi = 0;
    uint64_t step = conn->page_size * S_LOCATE_PAGES;
    if (step == 0 || step > S_LOCATE_BYTES)
        step = S_LOCATE_BYTES;
    uint64_t offset = read->offset;
    /* a version and size known: pieces located recently are read with no LOCATE */
    bool cacheable =
        local->relocate_ms > 0 && read->version[0] && read->file_size != MSG_SIZE_UNKNOWN;
    uint64_t name_hash = cacheable ? s_name_hash(read->uri, read->version) : 0;
    for (bool first = true; rc == 0 && (first || offset < read->offset + read->length);
         first = false) {
        uint64_t end = read->offset + read->length;
        /* pieces end at multiples of step, so a LOCATE never asks more than 64 pages */
        uint64_t piece_end = (offset / step + 1) * step;
        if (piece_end > end)
            piece_end = end;
        if (cacheable && s_cached(local, conn, read, name_hash, offset, piece_end - offset))
            rc = 0;
        else
            rc = s_locate(local, conn, read, offset, piece_end - offset, &miss_lo, &miss_hi);
        if (rc != 0 && rc != SHOAL_ETIMEDOUT && first && !fresh && conn->broken &&
            atomic_load(&conn->sock) >= 0 && !read->learnt) {
            /* a connection that went bad while idle (node restarted): once more, afresh */
            s_conn_close(conn);
            rc = s_conn_open(local, node, conn);
            fresh = true;
            if (rc == 0 && !s_node_is(local, node, node_id))
                rc = SHOAL_EUNAVAIL;
            if (rc == 0)
                rc = s_locate(local, conn, read, offset, piece_end - offset, &miss_lo, &miss_hi);
        }
        if (rc == 0)
            offset = piece_end; /* else [offset, ...) is what failed */
        if (read->length == 0)
            break;
    }
    s_conn_give(local, node, conn);
    if (rc == SHOAL_ETIMEDOUT) /* a stuck node: no reconnect, ZeroMQ serves, for a while */
        s_node_pause(local, node, false);
    if (rc != 0 && !read->learnt) {
        read->miss_offset = read->offset;
        read->miss_length = read->length;
        return rc;
    }
    if (rc != 0) /* learnt, then a later LOCATE failed: the rest is a miss */
        s_miss(&miss_lo, &miss_hi, offset, read->offset + read->length);
    if (miss_lo < miss_hi) {
        if (miss_lo < read->offset)
            miss_lo = read->offset;
        read->miss_offset = miss_lo;
        read->miss_length = miss_hi - miss_lo;
        CLIENT_COUNT(local->counters, local_misses, 1);
    } else {
        read->miss_offset = read->offset + read->length;
        read->miss_length = 0;
    }
    CLIENT_COUNT(local->counters, bytes_short_circuit, read->length - read->miss_length);
    return 0;
}
