/*
 * session.c - the request engine: a session is one set of DEALER sockets (one per node) used
 * by one thread at a time, and client_session_run keeps any number of requests in flight over
 * them, matches replies by request id, checks READ frames while copying them into the caller's
 * buffer, and moves a request to its next target on a timeout, a lost connection or a bad
 * answer. Each DEALER has a socket monitor (a PAIR in the same session), so a node whose TCP
 * connection drops (kill -9, restart) fails at once instead of after timeout_ms.
 */
#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <zmq.h>

#include "clock.h"
#include "session.h"
#include "vec.h"

/* One DEALER socket to one node endpoint. Index-stable inside the session.
 * Invariant: monitor is NULL whenever socket is (they are made and closed together); a
 * socket may lack a monitor when setting one up failed (then only timeouts find a dead node). */
typedef struct client_conn {
    char *endpoint;      /* "tcp://host:port"; owned */
    void *socket;        /* DEALER, or NULL after a failure (re-made on next use) */
    void *monitor;       /* PAIR receiving the DEALER's connection events, or NULL */
    int monitor_fd;      /* its ZMQ_FD, polled as a plain fd (see s_monitor_drain), or -1 */
    uint32_t inflight;   /* requests of the running call waiting on this socket */
    int64_t progress_ms; /* last sign of life while busy: a matched reply, or the send that
                          * made it busy; the node times out at progress_ms + timeout_ms */
} client_conn_t;

/* The sessions of one process, and what they share. */
struct client_pool {
    void *zmq_context;           /* context of the process; borrowed */
    client_health_t *health;     /* down-list and stale flag of the process; borrowed */
    client_counters_t *counters; /* the client's counters; borrowed */
    int timeout_ms;              /* a busy node answering nothing this long is failed */
    pthread_mutex_t mutex;       /* guards idle and all */
    struct client_session *idle; /* sessions not in use (a stack) */
    struct client_session *all;  /* every session, for destroy */
};

/* Invariant: used by one thread at a time (taken from the pool, given back). */
struct client_session {
    client_pool_t *pool;       /* the pool it belongs to */
    VEC(client_conn_t) conns;  /* connections, one per endpoint ever asked */
    msg_buf_t out;             /* encode buffer, reused */
    uint64_t next_request_id;  /* ids are unique per session (so per socket) */
    VEC(zmq_pollitem_t) items; /* poll scratch (2 per conn: DEALER and monitor) */
    VEC(uint32_t) item_conn;   /* conn index of each poll item */
    VEC(uint32_t)
    sent_ops;                         /* op index of each request id sent in the running call
                                       * (len == the call's sent) */
    struct client_session *next_idle; /* pool stack link */
    struct client_session *next_all;  /* every session of the process */
};

void client_op_init(client_op_t *op, msg_type_t type)
{
    memset(op, 0, sizeof *op);
    msg_init(&op->request, type, 0, 0);
}

void client_op_fini(client_op_t *op)
{
    msg_fini(&op->reply);
}

client_pool_t *client_pool_new(void *zmq_context, client_health_t *health,
                               client_counters_t *counters, int timeout_ms)
{
    client_pool_t *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->zmq_context = zmq_context;
    pool->health = health;
    pool->counters = counters;
    pool->timeout_ms = timeout_ms;
    pthread_mutex_init(&pool->mutex, NULL);
    return pool;
}

/* Destroys `session` and every session chained after it through next_all. */
static void s_session_destroy_all(client_session_t *session)
{
    while (session) {
        client_session_t *next = session->next_all;
        for (size_t i = 0; i < session->conns.len; i++) {
            if (session->conns.items[i].monitor)
                zmq_close(session->conns.items[i].monitor);
            if (session->conns.items[i].socket)
                zmq_close(session->conns.items[i].socket);
            free(session->conns.items[i].endpoint);
        }
        vec_fini(&session->conns);
        msg_buf_fini(&session->out);
        vec_fini(&session->items);
        vec_fini(&session->item_conn);
        vec_fini(&session->sent_ops);
        free(session);
        session = next;
    }
}

void client_pool_destroy(client_pool_t **pool_p)
{
    if (!pool_p || !*pool_p)
        return;
    client_pool_t *pool = *pool_p;
    *pool_p = NULL;
    s_session_destroy_all(pool->all);
    pthread_mutex_destroy(&pool->mutex);
    free(pool);
}

client_session_t *client_session_acquire(client_pool_t *pool)
{
    pthread_mutex_lock(&pool->mutex);
    client_session_t *session = pool->idle;
    if (session)
        pool->idle = session->next_idle;
    pthread_mutex_unlock(&pool->mutex);
    if (session)
        return session;
    session = calloc(1, sizeof *session);
    if (!session) {
        shoal_fail(SHOAL_ENOMEM, "out of memory");
        return NULL;
    }
    session->pool = pool;
    session->next_request_id = 1;
    msg_buf_init(&session->out);
    session->out.limit = MSG_FRAME_MAX;
    pthread_mutex_lock(&pool->mutex);
    session->next_all = pool->all;
    pool->all = session;
    pthread_mutex_unlock(&pool->mutex);
    return session;
}

void client_session_release(client_session_t *session)
{
    if (!session)
        return;
    client_pool_t *pool = session->pool;
    pthread_mutex_lock(&pool->mutex);
    session->next_idle = pool->idle;
    pool->idle = session;
    pthread_mutex_unlock(&pool->mutex);
}

/* Connection events that mean the node cannot answer what waits on it: an established
 * connection dropped (the peer's kernel closed it, or ZMTP heartbeats / the handshake timed
 * out), or a (re)connect attempt failed (refused, or no answer within the connect timeout). */
#define CLIENT_LINK_DOWN_EVENTS                                                                    \
    (ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CLOSED | ZMQ_EVENT_CONNECT_RETRIED)

/* Monitor endpoints are unique per process (so per context): "inproc://shoal-monitor-N". */
static _Atomic uint64_t s_monitor_seq;

/* Attaches a socket monitor to `socket` and returns the PAIR that receives its
 * CLIENT_LINK_DOWN_EVENTS, or NULL when ZeroMQ refuses (out of sockets): the caller then goes
 * on without one. Called before zmq_connect, so no event of the connection is missed (a
 * monitor drops events while nobody is connected to it). */
static void *s_monitor_new(void *context, void *socket)
{
    char name[64];
    snprintf(name, sizeof name, "inproc://shoal-monitor-%llu",
             (unsigned long long)atomic_fetch_add(&s_monitor_seq, 1));
    if (zmq_socket_monitor(socket, name, CLIENT_LINK_DOWN_EVENTS) != 0)
        return NULL;
    void *monitor = zmq_socket(context, ZMQ_PAIR);
    if (monitor) {
        int zero = 0;
        zmq_setsockopt(monitor, ZMQ_LINGER, &zero, sizeof zero);
        if (zmq_connect(monitor, name) == 0)
            return monitor;
        zmq_close(monitor);
    }
    zmq_socket_monitor(socket, NULL, 0);
    return NULL;
}

/* Reads every event waiting on a connection's monitor. Returns whether one of them said the
 * link went down. Each event is two frames: 6 bytes (uint16 event, uint32 value), then the
 * endpoint. It always reads until EAGAIN, and nothing else reads the monitor: so afterwards the
 * monitor's pipe is read empty, the next event signals its ZMQ_FD, and client_session_run can
 * poll that fd as a plain one (zmq_poll then skips the ZMQ_EVENTS query it makes of every
 * socket item before and after sleeping, a poll and a getpid each, twice a request). */
static bool s_monitor_drain(client_conn_t *conn)
{
    bool down = false;
    if (!conn->monitor)
        return false;
    for (;;) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, conn->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            if (errno == EINTR)
                continue;
            return down;
        }
        uint16_t event = 0;
        if (zmq_msg_size(&part) >= sizeof event)
            memcpy(&event, zmq_msg_data(&part), sizeof event);
        down |= (event & CLIENT_LINK_DOWN_EVENTS) != 0;
        bool more = zmq_msg_more(&part);
        zmq_msg_close(&part);
        while (more) {
            zmq_msg_init(&part);
            if (zmq_msg_recv(&part, conn->monitor, 0) < 0) {
                zmq_msg_close(&part);
                break;
            }
            more = zmq_msg_more(&part);
            zmq_msg_close(&part);
        }
    }
}

/* Returns the index of the connection to `endpoint`, creating and connecting its DEALER when
 * missing. The socket queues without limit (HWM 0): a call never has more in flight than the
 * caller's buffers hold, and a dead node's queue is dropped when the socket is closed.
 * Besides the socket monitor, the DEALER sends ZMTP heartbeats and bounds connects and
 * handshakes, so a silent peer (cut cable, frozen process) also shows up as a dropped link
 * after a few seconds. A node that is merely busy answers heartbeats from its ZeroMQ I/O
 * thread (and any byte it sends resets the heartbeat timeout), so it is never dropped. */
static int s_conn_get(client_session_t *session, const char *endpoint, uint32_t *index_out)
{
    size_t index = 0;
    for (; index < session->conns.len; index++)
        if (strcmp(session->conns.items[index].endpoint, endpoint) == 0)
            break;
    if (index == session->conns.len) {
        char *copy = strdup(endpoint);
        if (!copy || vec_push(&session->conns, ((client_conn_t){.endpoint = copy})) < 0) {
            free(copy);
            return shoal_fail(SHOAL_ENOMEM, "out of memory");
        }
    }
    client_conn_t *conn = &session->conns.items[index];
    if (!conn->socket) {
        void *socket = zmq_socket(session->pool->zmq_context, ZMQ_DEALER);
        if (!socket)
            return shoal_fail(SHOAL_EIO, "zmq_socket: %s", zmq_strerror(errno));
        int zero = 0;
        int reconnect_ms = 100;
        zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(socket, ZMQ_SNDHWM, &zero, sizeof zero);
        zmq_setsockopt(socket, ZMQ_RCVHWM, &zero, sizeof zero);
        zmq_setsockopt(socket, ZMQ_RECONNECT_IVL, &reconnect_ms, sizeof reconnect_ms);
        int heartbeat_ivl = CLIENT_HEARTBEAT_IVL_MS;
        int heartbeat_timeout = CLIENT_HEARTBEAT_TIMEOUT_MS;
        int connect_timeout = CLIENT_CONNECT_TIMEOUT_MS;
        zmq_setsockopt(socket, ZMQ_HEARTBEAT_IVL, &heartbeat_ivl, sizeof heartbeat_ivl);
        zmq_setsockopt(socket, ZMQ_HEARTBEAT_TIMEOUT, &heartbeat_timeout, sizeof heartbeat_timeout);
        zmq_setsockopt(socket, ZMQ_CONNECT_TIMEOUT, &connect_timeout, sizeof connect_timeout);
        zmq_setsockopt(socket, ZMQ_HANDSHAKE_IVL, &connect_timeout, sizeof connect_timeout);
        void *monitor = s_monitor_new(session->pool->zmq_context, socket);
        if (zmq_connect(socket, endpoint) != 0) {
            int error = errno;
            if (monitor)
                zmq_close(monitor);
            zmq_close(socket);
            return shoal_fail(SHOAL_EINVAL, "connect %s: %s", endpoint, zmq_strerror(error));
        }
        conn->socket = socket;
        conn->monitor = monitor;
        conn->monitor_fd = -1;
        size_t fd_size = sizeof conn->monitor_fd;
        if (monitor && zmq_getsockopt(monitor, ZMQ_FD, &conn->monitor_fd, &fd_size) != 0)
            conn->monitor_fd = -1;
    }
    *index_out = (uint32_t)index;
    return 0;
}

/* Closes a connection's socket and its monitor (dropping whatever they still queue). */
static void s_conn_close(client_conn_t *conn)
{
    if (conn->monitor) {
        zmq_close(conn->monitor);
        conn->monitor = NULL;
        conn->monitor_fd = -1;
    }
    if (conn->socket) {
        zmq_close(conn->socket);
        conn->socket = NULL;
    }
}

/* Whether an ERROR code from one node may be cured by asking another node (or the UFS):
 * overload, timeouts and internal trouble are; answers about the file itself are not. */
static bool s_code_retryable(int code)
{
    switch (code) {
    case SHOAL_ENOENT:
    case SHOAL_EACCES:
    case SHOAL_EISDIR:
    case SHOAL_EINVAL:
    case SHOAL_ESTALE:
    case SHOAL_ENOTSUP:
    case SHOAL_EROFS:
    case SHOAL_EIO:
        return false;
    default:
        return true;
    }
}

/* The running call: everything the helpers below share. */
typedef struct client_call {
    client_session_t *session; /* sockets */
    client_op_t *ops;          /* the call's ops */
    size_t count;              /* entries in ops */
    uint64_t id_base;          /* request id of the first send of this call */
    size_t sent;               /* sends so far: ids id_base .. id_base + sent - 1 */
    size_t inflight;           /* ops in CLIENT_OP_INFLIGHT */
    uint64_t view_version;     /* sent in every header */
    bool success_seen;         /* an op finished with 0 */
} client_call_t;

/* Debug-build check of the call's bookkeeping: every in-flight op is counted once on its
 * connection and once in the call, and idle connections have nothing in flight. */
static void s_call_sanity(const client_call_t *call)
{
#ifndef NDEBUG
    const client_session_t *session = call->session;
    size_t inflight = 0;
    for (size_t c = 0; c < session->conns.len; c++) {
        uint32_t on_conn = 0;
        for (size_t i = 0; i < call->count; i++)
            on_conn += call->ops[i].state == CLIENT_OP_INFLIGHT && call->ops[i].conn == c;
        assert(on_conn == session->conns.items[c].inflight);
        assert(on_conn == 0 || session->conns.items[c].socket != NULL);
        inflight += on_conn;
    }
    assert(inflight == call->inflight);
    assert(call->sent == session->sent_ops.len);
    vec_sanity(&session->sent_ops);
#else
    (void)call;
#endif
}

/* Finishes an op with `result` and a detail message. */
static void s_op_done(client_op_t *op, int result, bool exhausted, const char *detail)
{
    op->state = CLIENT_OP_DONE;
    op->result = result;
    op->exhausted = exhausted;
    if (detail && result != 0)
        snprintf(op->detail, sizeof op->detail, "%s", detail);
}

/* Sends `op` to its next usable target. Skips targets marked down (unless ignore_down, or
 * unless every target is down and probe_when_all_down); a send that fails locally moves on to
 * the next target. With no target left, the op is DONE, exhausted, with `last_code`. */
static int s_op_start(client_call_t *call, size_t op_index, int last_code)
{
    client_session_t *session = call->session;
    client_counters_t *counters = session->pool->counters;
    client_op_t *op = &call->ops[op_index];
    bool probe = false;
    if (op->probe_when_all_down && !op->ignore_down && op->target_next == 0) {
        probe = true;
        for (uint32_t i = 0; i < op->target_count; i++)
            if (!client_health_is_down(session->pool->health, op->targets[i].endpoint))
                probe = false;
    }
    while (op->target_next < op->target_count) {
        uint32_t target_index = op->target_next++;
        client_target_t *target = &op->targets[target_index];
        if (!op->ignore_down && !probe &&
            client_health_is_down(session->pool->health, target->endpoint)) {
            snprintf(op->detail, sizeof op->detail, "%s did not answer recently", target->endpoint);
            continue;
        }
        probe = false;
        uint32_t conn_index = 0;
        int rc = s_conn_get(session, target->endpoint, &conn_index);
        if (rc == SHOAL_ENOMEM)
            return rc;
        if (rc != 0) {
            snprintf(op->detail, sizeof op->detail, "%s", shoal_last_error());
            last_code = rc;
            continue;
        }
        if (vec_reserve(&session->sent_ops, 1) < 0)
            return shoal_fail(SHOAL_ENOMEM, "out of memory");
        uint64_t request_id = call->id_base + call->sent;
        op->request.header.request_id = request_id;
        op->request.header.view_version = call->view_version;
        if (op->request.header.type == MSG_READ_REQ) /* the node may answer in parts */
            op->request.body.read_request.flags =
                target->read_flags | op->read_flags | MSG_READ_STREAM;
        op->partials = 0;
        op->stream_next = 0;
        op->stream_page_size = 0;
        msg_buf_reset(&session->out);
        rc = msg_encode(&op->request, &session->out);
        if (rc != 0) { /* our own request is unencodable: no node will do better */
            s_op_done(op, rc, false, shoal_last_error());
            return 0;
        }
        client_conn_t *conn = &session->conns.items[conn_index];
        /* The connection becomes busy: events of its idle time are history (a drop then was
         * followed by reconnects, whose failures report again within RECONNECT_IVL). */
        if (conn->inflight == 0)
            s_monitor_drain(conn);
        if (zmq_send(conn->socket, session->out.data, session->out.len, ZMQ_DONTWAIT) < 0) {
            snprintf(op->detail, sizeof op->detail, "send to %s: %s", target->endpoint,
                     zmq_strerror(errno));
            last_code = SHOAL_EUNAVAIL;
            continue;
        }
        session->sent_ops.items[session->sent_ops.len++] = (uint32_t)op_index; /* reserved */
        call->sent++;
        CLIENT_COUNT(counters, requests, 1);
        if (target_index > 0 || op->result != 0) {
            if (op->result != 0)
                CLIENT_COUNT(counters, retries, 1);
            if (target_index > 0 && target->owner)
                CLIENT_COUNT(counters, fallback_next_owner, 1);
            else if (target_index > 0 && (target->read_flags & MSG_READ_NO_CACHE))
                CLIENT_COUNT(counters, fallback_no_cache, 1);
        }
        op->state = CLIENT_OP_INFLIGHT;
        op->conn = conn_index;
        op->sent_to = target_index;
        op->request_id = request_id;
        if (conn->inflight == 0)
            conn->progress_ms = clock_mono_ms();
        conn->inflight++;
        call->inflight++;
        return 0;
    }
    char detail[sizeof op->detail];
    memcpy(detail, op->detail, sizeof detail);
    s_op_done(op, last_code, true, detail[0] ? detail : "no node to ask");
    return 0;
}

/* An in-flight op failed at its current target with a code another node may not repeat:
 * records why and sends it on. */
static int s_op_retry(client_call_t *call, size_t op_index, int code, const char *detail)
{
    client_op_t *op = &call->ops[op_index];
    if (op->state == CLIENT_OP_INFLIGHT) {
        call->session->conns.items[op->conn].inflight--;
        call->inflight--;
    }
    op->state = CLIENT_OP_IDLE;
    op->result = code;
    snprintf(op->detail, sizeof op->detail, "%s", detail);
    return s_op_start(call, op_index, code);
}

/* A node failed as a whole (timeout, lost connection, garbage): marks it down, closes its
 * socket and moves every op waiting on it to its next target. */
static int s_conn_fail(client_call_t *call, uint32_t conn_index, int code, const char *detail)
{
    client_session_t *session = call->session;
    client_conn_t *conn = &session->conns.items[conn_index];
    client_health_mark_down(session->pool->health, conn->endpoint);
    client_health_force_stale(session->pool->health);
    s_conn_close(conn);
    for (size_t i = 0; i < call->count; i++) {
        client_op_t *op = &call->ops[i];
        if (op->state == CLIENT_OP_INFLIGHT && op->conn == conn_index) {
            int rc = s_op_retry(call, i, code, detail);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* Reads and drops the rest of a multipart message. */
static void s_skip_rest(void *socket)
{
    int more = 1;
    size_t size = sizeof more;
    while (zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &size) == 0 && more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, socket, 0) < 0) {
            zmq_msg_close(&part);
            return;
        }
        zmq_msg_close(&part);
        size = sizeof more;
    }
}

static bool s_more(void *socket)
{
    int more = 0;
    size_t size = sizeof more;
    return zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &size) == 0 && more;
}

/* Checks a READ reply against what the op asked for and copies the page frames into the
 * caller's buffer: one memcpy per frame, straight from the ZeroMQ message. The header must
 * describe the version and size asked for (else SHOAL_ESTALE), a span that covers the wanted
 * bytes and is consistent (page_count, frames), and every frame must have exactly the length
 * msg_read_frame_length gives (else SHOAL_EPROTO). Consumes every part of the message.
 * On failure the destination may hold some bytes from this reply; the op is then retried
 * elsewhere or fails, so a caller never gets a success with them.
 * A partial reply (more = true, proto.h's streamed READ) must start where the request or the
 * previous partial reply ended and end before the wanted bytes do; the reply after a partial one
 * must start where it ended, with the same page_size. A partial reply that checks out is copied
 * and returns 1: the op stays in flight for the rest. */
static int s_read_copy(client_op_t *op, const msg_t *reply, void *socket,
                       client_counters_t *counters, char *detail, size_t detail_size)
{
    const msg_read_reply_t *r = &reply->body.read_reply;
    if (op->learn && op->partials == 0) {
        const char *asked = op->request.body.read_request.version;
        if (!asked || !asked[0]) {
            snprintf(op->learnt_version, sizeof op->learnt_version, "%s", r->version);
            op->expect_version = op->learnt_version;
        } else {
            op->expect_version = asked;
        }
        op->expect_size = r->file_size;
        op->learnt_mtime = r->mtime;
        uint64_t left = op->dest_offset < r->file_size ? r->file_size - op->dest_offset : 0;
        op->dest_length = op->learn_length < left ? op->learn_length : left;
        if (op->dest_length == 0) { /* at or past the end: no byte of the reply is wanted */
            bool stale = r->version[0] && asked && asked[0] && strcmp(r->version, asked) != 0;
            s_skip_rest(socket);
            if (stale) {
                snprintf(detail, detail_size, "READ reply for version '%s', asked '%s'", r->version,
                         asked);
                return SHOAL_ESTALE;
            }
            return 0;
        }
    }
    uint64_t want_end = op->dest_offset + op->dest_length;
    uint64_t span_end = r->offset + r->length;
    int rc = 0;
    bool streamed = r->more || op->partials > 0;
    if (streamed && !(r->offset <= UINT64_MAX - r->length &&
                      (op->partials == 0 ? r->offset <= op->dest_offset
                                         : r->offset == op->stream_next &&
                                               r->page_size == op->stream_page_size) &&
                      (r->more ? r->length > 0 && span_end < want_end : true))) {
        snprintf(detail, detail_size,
                 "%s READ reply %u span [%llu, +%llu) is not the next part of [%llu, +%llu)",
                 r->more ? "partial" : "last", op->partials + 1, (unsigned long long)r->offset,
                 (unsigned long long)r->length, (unsigned long long)op->dest_offset,
                 (unsigned long long)op->dest_length);
        rc = SHOAL_EPROTO;
    } else if (r->file_size != op->expect_size ||
               (r->version[0] && strcmp(r->version, op->expect_version) != 0)) {
        snprintf(detail, detail_size, "READ reply for version '%s' size %llu, asked '%s' size %llu",
                 r->version, (unsigned long long)r->file_size, op->expect_version,
                 (unsigned long long)op->expect_size);
        rc = SHOAL_ESTALE;
    } else if (r->page_size == 0 || span_end < r->offset ||
               (op->partials == 0 && r->offset > op->dest_offset) ||
               (!r->more && span_end < want_end) || span_end > r->file_size ||
               r->page_count != reply->header.frames ||
               r->page_count != msg_read_page_count(r->offset, r->length, r->page_size)) {
        snprintf(detail, detail_size,
                 "READ reply span [%llu, +%llu) pages %u frames %u does not cover [%llu, +%llu)",
                 (unsigned long long)r->offset, (unsigned long long)r->length, r->page_count,
                 reply->header.frames, (unsigned long long)op->dest_offset,
                 (unsigned long long)op->dest_length);
        rc = SHOAL_EPROTO;
    }
    uint64_t first_page = r->page_size ? r->offset / r->page_size : 0;
    for (uint32_t i = 0; rc == 0 && i < r->page_count; i++) {
        if (!s_more(socket)) {
            snprintf(detail, detail_size, "READ reply has %u frames, header says %u", i,
                     r->page_count);
            rc = SHOAL_EPROTO;
            break;
        }
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, socket, 0) < 0) {
            zmq_msg_close(&part);
            snprintf(detail, detail_size, "receive: %s", zmq_strerror(errno));
            rc = SHOAL_EPROTO;
            break;
        }
        uint64_t size = zmq_msg_size(&part);
        uint64_t expected = msg_read_frame_length(r, i);
        if (size != expected) {
            zmq_msg_close(&part);
            snprintf(detail, detail_size, "READ reply frame %u has %llu bytes, expected %llu", i,
                     (unsigned long long)size, (unsigned long long)expected);
            rc = SHOAL_EPROTO;
            break;
        }
        uint64_t piece_start = (first_page + i) * r->page_size;
        if (piece_start < r->offset)
            piece_start = r->offset;
        uint64_t piece_end = piece_start + size;
        uint64_t lo = piece_start > op->dest_offset ? piece_start : op->dest_offset;
        uint64_t hi = piece_end < want_end ? piece_end : want_end;
        if (lo < hi) {
            memcpy(op->dest + (lo - op->dest_offset),
                   (const uint8_t *)zmq_msg_data(&part) + (lo - piece_start), hi - lo);
            CLIENT_COUNT(counters, bytes_zmq, hi - lo);
        }
        zmq_msg_close(&part);
    }
    if (rc == 0 && s_more(socket)) {
        snprintf(detail, detail_size, "READ reply has more frames than its %u pages",
                 r->page_count);
        rc = SHOAL_EPROTO;
    }
    s_skip_rest(socket);
    if (rc == 0 && r->more) {
        op->partials++;
        op->stream_next = span_end;
        op->stream_page_size = r->page_size;
        return 1;
    }
    return rc;
}

/* Handles one whole message that arrived on connection `conn_index`: decodes the header,
 * finds the op by request id (unknown ids are late answers to abandoned requests: dropped),
 * and finishes or retries the op. Undecodable input means the node is broken: it is failed
 * as a whole. */
static int s_dispatch(client_call_t *call, uint32_t conn_index, zmq_msg_t *first)
{
    client_session_t *session = call->session;
    client_counters_t *counters = session->pool->counters;
    client_conn_t *conn = &session->conns.items[conn_index];
    void *socket = conn->socket;
    char detail[sizeof((client_op_t *)0)->detail];

    msg_t reply;
    int rc = msg_decode(zmq_msg_data(first), zmq_msg_size(first), &reply);
    if (rc != 0) {
        s_skip_rest(socket);
        CLIENT_COUNT(counters, bad_replies, 1);
        snprintf(detail, sizeof detail, "bad message from %s: %s", conn->endpoint,
                 shoal_last_error());
        return s_conn_fail(call, conn_index, SHOAL_EPROTO, detail);
    }
    uint64_t id = reply.header.request_id;
    size_t op_index = SIZE_MAX;
    if (id >= call->id_base && id - call->id_base < call->sent) {
        size_t candidate = session->sent_ops.items[id - call->id_base];
        client_op_t *op = &call->ops[candidate];
        if (op->state == CLIENT_OP_INFLIGHT && op->request_id == id && op->conn == conn_index)
            op_index = candidate;
    }
    if (op_index == SIZE_MAX) {
        s_skip_rest(socket);
        msg_fini(&reply);
        return 0;
    }
    client_health_seen_version(session->pool->health, reply.header.view_version);
    conn->progress_ms = clock_mono_ms();
    client_op_t *op = &call->ops[op_index];
    uint32_t request_type = op->request.header.type;
    if (reply.header.type == MSG_ERROR) {
        s_skip_rest(socket);
        int code = reply.body.error.code;
        if (code >= 0 || code < -1000)
            code = SHOAL_EPROTO;
        CLIENT_COUNT(counters, node_errors, 1);
        snprintf(detail, sizeof detail, "%s: %s%s%s", conn->endpoint, shoal_strerror(code),
                 reply.body.error.message[0] ? ": " : "", reply.body.error.message);
        msg_fini(&reply);
        if (s_code_retryable(code))
            return s_op_retry(call, op_index, code, detail);
        conn->inflight--;
        call->inflight--;
        s_op_done(op, code, false, detail);
        return 0;
    }
    if (reply.header.type != request_type + 1) {
        s_skip_rest(socket);
        CLIENT_COUNT(counters, bad_replies, 1);
        snprintf(detail, sizeof detail, "%s answered %s to %s", conn->endpoint,
                 msg_type_name(reply.header.type), msg_type_name(request_type));
        msg_fini(&reply);
        return s_op_retry(call, op_index, SHOAL_EPROTO, detail);
    }
    if (request_type == MSG_READ_REQ) {
        int prefix = snprintf(detail, sizeof detail, "%s: ", conn->endpoint);
        if (prefix < 0 || (size_t)prefix >= sizeof detail / 2)
            prefix = 0;
        rc = s_read_copy(op, &reply, socket, counters, detail + prefix,
                         sizeof detail - (size_t)prefix);
        msg_fini(&reply);
        if (rc == 1) { /* a partial reply: the op waits for the rest (progress_ms was reset) */
            CLIENT_COUNT(counters, partial_replies, 1);
            return 0;
        }
        if (rc == SHOAL_ESTALE) {
            conn->inflight--;
            call->inflight--;
            s_op_done(op, rc, false, detail);
            return 0;
        }
        if (rc != 0) {
            CLIENT_COUNT(counters, bad_replies, 1);
            return s_op_retry(call, op_index, rc, detail);
        }
    } else {
        bool extra = reply.header.frames != 0 || s_more(socket);
        s_skip_rest(socket);
        if (extra) {
            CLIENT_COUNT(counters, bad_replies, 1);
            snprintf(detail, sizeof detail, "%s sent raw frames with %s", conn->endpoint,
                     msg_type_name(reply.header.type));
            msg_fini(&reply);
            return s_op_retry(call, op_index, SHOAL_EPROTO, detail);
        }
        msg_fini(&op->reply);
        op->reply = reply; /* ownership moves to the op */
    }
    conn->inflight--;
    call->inflight--;
    s_op_done(op, 0, false, NULL);
    call->success_seen = true;
    return 0;
}

/* Receives every whole message waiting on a connection. */
static int s_conn_receive(client_call_t *call, uint32_t conn_index)
{
    client_session_t *session = call->session;
    for (;;) {
        client_conn_t *conn = &session->conns.items[conn_index];
        if (!conn->socket)
            return 0;
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, conn->socket, ZMQ_DONTWAIT) < 0) {
            int error = errno;
            zmq_msg_close(&part);
            if (error == EAGAIN)
                return 0;
            if (error == EINTR)
                continue;
            char detail[160];
            snprintf(detail, sizeof detail, "receive from %s: %s", conn->endpoint,
                     zmq_strerror(error));
            return s_conn_fail(call, conn_index, SHOAL_EUNAVAIL, detail);
        }
        /* An empty delimiter frame (REQ-style envelope) may precede the header. */
        if (zmq_msg_size(&part) == 0 && zmq_msg_more(&part)) {
            zmq_msg_close(&part);
            zmq_msg_init(&part);
            if (zmq_msg_recv(&part, conn->socket, 0) < 0) {
                zmq_msg_close(&part);
                continue;
            }
        }
        int rc = s_dispatch(call, conn_index, &part);
        zmq_msg_close(&part);
        if (rc != 0)
            return rc;
        if (call->success_seen && call->inflight == 0)
            return 0;
    }
}

/* The monitor of busy connection `conn_index` has events. When the link went down, first
 * takes every reply the DEALER already holds (a node may answer, then close), then fails the
 * node as a timeout would, at once: whatever still waits on it was lost with the connection. */
static int s_conn_monitor_event(client_call_t *call, uint32_t conn_index)
{
    client_session_t *session = call->session;
    if (!s_monitor_drain(&session->conns.items[conn_index]))
        return 0;
    int rc = s_conn_receive(call, conn_index);
    client_conn_t *conn = &session->conns.items[conn_index];
    if (rc != 0 || conn->inflight == 0 || !conn->socket)
        return rc;
    char detail[160];
    snprintf(detail, sizeof detail, "connection to %s lost with %u requests waiting",
             conn->endpoint, conn->inflight);
    CLIENT_COUNT(session->pool->counters, disconnects, 1);
    return s_conn_fail(call, conn_index, SHOAL_EUNAVAIL, detail);
}

/* The loop: send everything, then poll the sockets that have requests waiting until every op
 * is done. Timeouts are per node, not per request: a node with requests of ours waiting
 * times out when it has answered none of them for timeout_ms (since the send that made it
 * busy, or its last matched reply). So a node working through a deep pipeline of cold
 * ranges is not failed for being busy, while a dead or wedged one is found in timeout_ms.
 * A timed-out node fails as a whole, which moves every request waiting on it to its next
 * target at once; so does a busy node whose connection drops (its monitor is polled with it),
 * without waiting for timeout_ms. */
int client_session_run(client_session_t *session, client_op_t *ops, size_t count,
                       uint64_t view_version, bool first_success_ends)
{
    client_call_t call = {
        .session = session,
        .ops = ops,
        .count = count,
        .id_base = session->next_request_id,
        .view_version = view_version,
    };
    vec_clear(&session->sent_ops);
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        ops[i].result = 0;
        ops[i].target_next = 0;
        if (ops[i].served) {
            ops[i].state = CLIENT_OP_DONE;
            continue;
        }
        ops[i].state = CLIENT_OP_IDLE;
        rc = s_op_start(&call, i, SHOAL_EUNAVAIL);
    }
    while (rc == 0 && call.inflight > 0 && !(first_success_ends && call.success_seen)) {
        s_call_sanity(&call);
        vec_clear(&session->items);
        vec_clear(&session->item_conn);
        if (vec_reserve(&session->items, 2 * session->conns.len) < 0 ||
            vec_reserve(&session->item_conn, 2 * session->conns.len) < 0) {
            rc = shoal_fail(SHOAL_ENOMEM, "out of memory");
            break;
        }
        int item_count = 0;
        for (size_t c = 0; c < session->conns.len; c++) {
            if (session->conns.items[c].inflight == 0 || !session->conns.items[c].socket)
                continue;
            session->items.items[item_count] =
                (zmq_pollitem_t){.socket = session->conns.items[c].socket, .events = ZMQ_POLLIN};
            session->item_conn.items[item_count++] = (uint32_t)c;
        }
        int dealer_count = item_count; /* then the monitors of the same connections */
        for (int k = 0; k < dealer_count; k++) {
            client_conn_t *conn = &session->conns.items[session->item_conn.items[k]];
            if (!conn->monitor)
                continue;
            session->items.items[item_count] =
                conn->monitor_fd >= 0
                    ? (zmq_pollitem_t){.fd = conn->monitor_fd, .events = ZMQ_POLLIN}
                    : (zmq_pollitem_t){.socket = conn->monitor, .events = ZMQ_POLLIN};
            session->item_conn.items[item_count++] = session->item_conn.items[k];
        }
        int64_t earliest = INT64_MAX;
        for (size_t c = 0; c < session->conns.len; c++)
            if (session->conns.items[c].inflight > 0 &&
                session->conns.items[c].progress_ms + session->pool->timeout_ms < earliest)
                earliest = session->conns.items[c].progress_ms + session->pool->timeout_ms;
        int64_t now = clock_mono_ms();
        long wait_ms = earliest <= now ? 0 : (long)(earliest - now);
        int ready = zmq_poll(session->items.items, item_count, wait_ms);
        if (ready < 0 && errno != EINTR) {
            rc = shoal_fail(SHOAL_EIO, "zmq_poll: %s", zmq_strerror(errno));
            break;
        }
        for (int k = 0; ready > 0 && k < dealer_count && rc == 0; k++)
            if (session->items.items[k].revents & ZMQ_POLLIN)
                rc = s_conn_receive(&call, session->item_conn.items[k]);
        /* Monitors after the replies; a connection failed meanwhile has no monitor left. */
        for (int k = dealer_count; ready > 0 && k < item_count && rc == 0; k++) {
            client_conn_t *conn = &session->conns.items[session->item_conn.items[k]];
            const zmq_pollitem_t *item = &session->items.items[k];
            bool same = item->socket ? item->socket == conn->monitor : item->fd == conn->monitor_fd;
            if ((item->revents & ZMQ_POLLIN) && conn->monitor && same && conn->inflight > 0)
                rc = s_conn_monitor_event(&call, session->item_conn.items[k]);
        }
        now = clock_mono_ms();
        for (size_t c = 0; c < session->conns.len && rc == 0; c++) {
            client_conn_t *conn = &session->conns.items[c];
            if (conn->inflight == 0 || conn->progress_ms + session->pool->timeout_ms > now)
                continue;
            char detail[160];
            snprintf(detail, sizeof detail, "%s answered none of %u requests within %d ms",
                     conn->endpoint, conn->inflight, session->pool->timeout_ms);
            CLIENT_COUNT(session->pool->counters, timeouts, 1);
            rc = s_conn_fail(&call, (uint32_t)c, SHOAL_ETIMEDOUT, detail);
        }
    }
    /* Abandoned requests (first success, or an engine failure): their late answers carry ids
     * this session never hands out again, and are dropped on arrival. */
    for (size_t i = 0; i < count; i++) {
        if (ops[i].state == CLIENT_OP_INFLIGHT)
            session->conns.items[ops[i].conn].inflight--;
        if (ops[i].state != CLIENT_OP_DONE)
            s_op_done(&ops[i], rc ? rc : SHOAL_ECANCELED, false, "abandoned");
    }
    session->next_request_id = call.id_base + call.sent;
    return rc;
}
