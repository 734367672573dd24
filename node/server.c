/*
 * server.c - the router thread and the hit workers (see server.h for the picture). The router
 * thread splits the envelope from the header frame, stamps the arrival time, decodes (refusing
 * malformed requests with ERROR EPROTO when a request id can be read), and answers READ hits
 * itself, straight onto the ROUTER; every other request (and every READ while it delegates
 * after a store read that waited on the disk) goes to a hit worker, which dispatches (ops.h).
 */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include "server.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include "clock.h"
#include "log.h"

#define SERVER_WORK_ENDPOINT  "inproc://shoal-work"
#define SERVER_REPLY_ENDPOINT "inproc://shoal-replies"
#define SERVER_BATCH          256          /* messages moved per socket per poll round */
#define SERVER_DRAIN_MS       10000        /* longest wait for in-flight requests at stop */
#define SERVER_LINGER_MS      2000         /* time the ROUTER gets to flush its last replies */
#define SERVER_SNDHWM         200000       /* frames queued per client before ROUTER drops */
#define SERVER_DRAIN_POLL_MS  10           /* at stop, how often drained requests are counted */
#define SERVER_SLOW_NS        1000000ll    /* an inline request this long may have hit the disk */
#define SERVER_DELEGATE_NS    1000000000ll /* then READs go to the workers for this long */

/* What the router thread knows of a request besides its frames. */
typedef struct s_info {
    int64_t received_ns;   /* arrival time */
    uint32_t extra_frames; /* frames after the header (requests must have none) */
    uint8_t has_delimiter; /* an empty delimiter frame came before the header */
} s_info_t;

struct server {
    server_options_t options;  /* settings, env and dispatch (copied) */
    int stop_fd;               /* eventfd in the router's poll set: server_stop writes it */
    int workers_stop_fd;       /* eventfd in each hit worker's poll set: server_join writes it */
    void *frontend;            /* ROUTER, the data endpoint; router thread only */
    void *work;                /* PUSH to the workers; router thread only */
    void *replies;             /* PULL from workers and fetchers; router thread only */
    reply_sink_t sink;         /* the router thread's own replies, sent on frontend; router only */
    int64_t delegate_until_ns; /* READs go to the workers until then; router thread only */
    long io_waits;             /* router thread's major faults + block inputs at the last check */
    pthread_t router;          /* the router thread */
    bool router_running;       /* router thread started and not joined */
    pthread_t *workers;        /* hit workers */
    uint32_t worker_count;     /* started workers */
    _Atomic bool stopping;     /* set by server_stop */
};

server_t *server_new(const server_options_t *options)
{
    assert(options != NULL && options->env != NULL && options->listen != NULL &&
           options->dispatch != NULL && options->threads > 0);
    server_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return NULL;
    self->options = *options;
    self->workers = calloc(options->threads, sizeof *self->workers);
    self->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    self->workers_stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (self->workers == NULL || self->stop_fd < 0 || self->workers_stop_fd < 0) {
        if (self->stop_fd >= 0)
            close(self->stop_fd);
        if (self->workers_stop_fd >= 0)
            close(self->workers_stop_fd);
        free(self->workers);
        free(self);
        return NULL;
    }
    atomic_init(&self->stopping, false);
    return self;
}

/* Moves every frame of one multipart message from `from` to `to` (zero copy). Returns 0, or
 * -1 when nothing was waiting (with DONTWAIT) or the context is gone. */
static int s_forward(void *from, void *to)
{
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    if (zmq_msg_recv(&frame, from, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&frame);
        return -1;
    }
    for (;;) {
        bool more = zmq_msg_more(&frame);
        if (zmq_msg_send(&frame, to, more ? ZMQ_SNDMORE : 0) < 0)
            zmq_msg_close(&frame); /* unroutable client: ROUTER drops, nothing to do */
        if (!more)
            break;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, from, 0) < 0) {
            zmq_msg_close(&frame);
            return -1;
        }
    }
    return 0;
}

/* Discards the rest of a multipart message, returning how many frames it had. */
static uint32_t s_discard_rest(void *socket)
{
    uint32_t count = 0;
    int more = 1;
    size_t more_size = sizeof more;
    zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &more_size);
    while (more) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, socket, 0) < 0) {
            zmq_msg_close(&frame);
            break;
        }
        more = zmq_msg_more(&frame);
        zmq_msg_close(&frame);
        count++;
    }
    return count;
}

/* Reads a request id from a header frame that did not decode, if its envelope is readable
 * that far ([version, type, id, ...]), so even a request of another protocol version gets an
 * answer instead of a timeout. */
static bool s_salvage_header(const void *data, size_t len, msg_header_t *header)
{
    mp_reader_t reader;
    mp_reader_init(&reader, data, len);
    uint32_t count = 0;
    uint64_t version = 0, type = 0, id = 0;
    if (mp_read_array(&reader, &count) < 0 || count < 3 || mp_read_uint(&reader, &version) < 0 ||
        mp_read_uint(&reader, &type) < 0 || mp_read_uint(&reader, &id) < 0)
        return false;
    memset(header, 0, sizeof *header);
    header->proto_version = MSG_PROTO_VERSION;
    header->type = type <= UINT32_MAX ? (uint32_t)type : 0;
    header->request_id = id;
    return true;
}

/* Decodes a request taken off the ROUTER; takes `identity` and `header`. A malformed request
 * is answered ERROR on `sink` (or dropped when no request id can be read) and NULL returned;
 * else the caller owns the request (counted in env->inflight until request_finish). */
static node_request_t *s_decode(const request_env_t *env, reply_sink_t *sink, zmq_msg_t *identity,
                                const s_info_t *info, zmq_msg_t *header)
{
    node_request_t *request = calloc(1, sizeof *request);
    if (request == NULL) {
        zmq_msg_close(identity);
        zmq_msg_close(header);
        atomic_fetch_sub(env->inflight, 1);
        return NULL;
    }
    request->inflight = env->inflight;
    zmq_msg_init(&request->identity);
    zmq_msg_move(&request->identity, identity);
    request->has_delimiter = info->has_delimiter != 0;
    request->received_ns = info->received_ns;

    int rc = msg_decode(zmq_msg_data(header), zmq_msg_size(header), &request->msg);
    if (rc < 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", shoal_last_error());
        stats_add(env->stats, STATS_MALFORMED, 1);
        msg_header_t salvaged;
        bool answerable = s_salvage_header(zmq_msg_data(header), zmq_msg_size(header), &salvaged);
        zmq_msg_close(header);
        if (!answerable) {
            log_debug("dropped a malformed request: %s", why);
            stats_add(env->stats, STATS_DROPPED, 1);
            request_finish(&request);
            return NULL;
        }
        request->msg.header = salvaged;
        reply_error(sink, request, rc == SHOAL_EMSGSIZE ? SHOAL_EMSGSIZE : SHOAL_EPROTO,
                    "malformed request: %s", why);
        request_finish(&request);
        return NULL;
    }
    zmq_msg_close(header);
    if (info->extra_frames > 0 || request->msg.header.frames != 0) {
        stats_add(env->stats, STATS_MALFORMED, 1);
        reply_error(sink, request, SHOAL_EPROTO, "requests carry no raw frames (got %u)",
                    info->extra_frames);
        request_finish(&request);
        return NULL;
    }
    if (!msg_type_is_request(request->msg.header.type)) {
        stats_add(env->stats, STATS_MALFORMED, 1);
        reply_error(sink, request, SHOAL_EPROTO, "%s (type %u) is not a data request",
                    msg_type_name(request->msg.header.type), request->msg.header.type);
        request_finish(&request);
        return NULL;
    }
    return request;
}

/* Takes the next request pointer off `work` into *frame, waiting for one; returns false once
 * the stop signal is up and nothing is waiting. A busy worker never polls: it only waits (on
 * the socket and the eventfd together) when the socket is empty. */
static bool s_worker_recv(server_t *self, void *work, zmq_msg_t *frame)
{
    for (;;) {
        if (zmq_msg_recv(frame, work, ZMQ_DONTWAIT) >= 0)
            return true;
        if (zmq_errno() != EAGAIN && zmq_errno() != EINTR)
            return false; /* the socket is unusable */
        zmq_pollitem_t items[2] = {
            {.socket = work, .events = ZMQ_POLLIN},
            {.fd = self->workers_stop_fd, .events = ZMQ_POLLIN},
        };
        if (zmq_poll(items, 2, -1) < 0 && zmq_errno() != EINTR)
            return false;
        if ((items[1].revents & ZMQ_POLLIN) && !(items[0].revents & ZMQ_POLLIN))
            return false; /* stopped, and the router (gone) sends nothing more */
    }
}

/* A hit worker: receives requests (a pointer each, from the router thread, which gives up
 * ownership) and dispatches them, until its stop signal (server_join). */
static void *s_worker_main(void *arg)
{
    server_t *self = arg;
    node_thread_name("shoal-hit");
    reply_sink_t sink;
    if (reply_sink_init(&sink, self->options.env) < 0)
        return NULL;
    void *work = zmq_socket(self->options.env->zmq_context, ZMQ_PULL);
    int zero = 0;
    zmq_setsockopt(work, ZMQ_LINGER, &zero, sizeof zero);
    if (work == NULL || zmq_connect(work, SERVER_WORK_ENDPOINT) != 0) {
        log_error("worker: connect %s: %s", SERVER_WORK_ENDPOINT, zmq_strerror(zmq_errno()));
        if (work)
            zmq_close(work);
        reply_sink_fini(&sink);
        return NULL;
    }
    for (;;) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (!s_worker_recv(self, work, &frame)) {
            zmq_msg_close(&frame);
            break;
        }
        node_request_t *request = NULL;
        if (zmq_msg_size(&frame) == sizeof request) /* always: only the router sends here */
            memcpy(&request, zmq_msg_data(&frame), sizeof request);
        zmq_msg_close(&frame);
        if (request != NULL)
            self->options.dispatch(self->options.dispatch_arg, &sink, &request);
    }
    zmq_close(work);
    reply_sink_fini(&sink);
    return NULL;
}
/* Whether the router thread has waited on the disk since the last call: its major page faults
 * (a mapped page of the store read from disk) or block inputs (a RocksDB read that missed the
 * page cache) went up. A failing getrusage counts as a wait. */
static bool s_waited_on_io(server_t *self)
{
    struct rusage usage;
    if (getrusage(RUSAGE_THREAD, &usage) != 0)
        return true;
    long waits = usage.ru_majflt + usage.ru_inblock;
    bool waited = waits != self->io_waits;
    self->io_waits = waits;
    return waited;
}

/*
 * Whether the router thread answers `request` itself instead of a hit worker: READs of at most
 * one range (a hit is a few index lookups, one mapped slice and an XXH3 per 64 KiB chunk read;
 * the libshoal client never asks more than a range at once, larger spans go to the workers),
 * unless a recent inline request waited on the disk (s_serve_inline). Misses go on to the fetch
 * pool from here without waiting (fetch_pool_submit only queues).
 */
static bool s_inline_ok(const server_t *self, const node_request_t *request, int64_t now_ns)
{
    return request->msg.header.type == MSG_READ_REQ && now_ns >= self->delegate_until_ns &&
           request->msg.body.read_request.length <= self->options.inline_max_bytes;
}

/*
 * Answers a request on the router thread (see s_inline_ok) and bounds what a slow store can
 * cost: a request that took over SERVER_SLOW_NS while the thread waited on the disk (a store
 * page that was not in memory) sends every READ to the hit workers for SERVER_DELEGATE_NS, as
 * before this path existed, so a store larger than RAM stalls the router at most once a second
 * by one store read. Slowness without disk waits (preemption on a busy machine) does not.
 */
static void s_serve_inline(server_t *self, node_request_t **request_p)
{
    int64_t start = clock_mono_ns();
    self->options.dispatch(self->options.dispatch_arg, &self->sink, request_p);
    int64_t end = clock_mono_ns();
    if (end - start > SERVER_SLOW_NS && s_waited_on_io(self)) {
        self->delegate_until_ns = end + SERVER_DELEGATE_NS;
        log_debug("an inline read waited %lld us on the disk: READs go to the hit workers "
                  "for %lld ms",
                  (long long)((end - start) / 1000), SERVER_DELEGATE_NS / 1000000);
    }
}

/*
 * Takes one request off the ROUTER: routing id, optional empty delimiter, header frame, and
 * anything after (counted, discarded: requests carry no raw frames). Decodes it, then answers
 * it here (s_inline_ok) or hands it to a hit worker. Returns 0, or -1 when nothing was waiting.
 */
static int s_take_request(server_t *self)
{
    const request_env_t *env = self->options.env;
    zmq_msg_t identity, header;
    zmq_msg_init(&identity);
    if (zmq_msg_recv(&identity, self->frontend, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&identity);
        return -1;
    }
    stats_add(env->stats, STATS_REQUESTS, 1);
    s_info_t info = {.received_ns = clock_mono_ns()};
    if (!zmq_msg_more(&identity)) {
        zmq_msg_close(&identity);
        stats_add(env->stats, STATS_DROPPED, 1);
        return 0;
    }
    zmq_msg_init(&header);
    if (zmq_msg_recv(&header, self->frontend, 0) < 0) {
        zmq_msg_close(&header);
        zmq_msg_close(&identity);
        return 0;
    }
    if (zmq_msg_size(&header) == 0 && zmq_msg_more(&header)) {
        info.has_delimiter = 1;
        zmq_msg_close(&header);
        zmq_msg_init(&header);
        if (zmq_msg_recv(&header, self->frontend, 0) < 0) {
            zmq_msg_close(&header);
            zmq_msg_close(&identity);
            return 0;
        }
    }
    if (zmq_msg_more(&header))
        info.extra_frames = s_discard_rest(self->frontend);

    atomic_fetch_add(env->inflight, 1);
    node_request_t *request = s_decode(env, &self->sink, &identity, &info, &header);
    if (request == NULL)
        return 0;
    if (s_inline_ok(self, request, info.received_ns)) {
        s_serve_inline(self, &request);
        return 0;
    }
    zmq_msg_t pointer;
    zmq_msg_init_size(&pointer, sizeof request);
    memcpy(zmq_msg_data(&pointer), &request, sizeof request);
    if (zmq_msg_send(&pointer, self->work, 0) < 0) { /* only when the context is terminated */
        zmq_msg_close(&pointer);
        request_finish(&request);
    }
    return 0;
}

/*
 * The router thread. It polls the ROUTER (until stop) and the reply PULL; replies go first so
 * a flood of requests cannot starve answers. Each wake-up drains up to SERVER_BATCH messages of
 * each socket before polling again. At stop it keeps routing replies until every
 * forwarded request has been answered, or SERVER_DRAIN_MS passed.
 */
static void *s_router_main(void *arg)
{
    server_t *self = arg;
    const request_env_t *env = self->options.env;
    int64_t deadline = 0;
    node_thread_name("shoal-router");
    memset(&self->sink, 0, sizeof self->sink); /* a sink whose socket is the ROUTER itself */
    msg_buf_init(&self->sink.buf);
    self->sink.env = env;
    self->sink.socket = self->frontend;
    (void)s_waited_on_io(self); /* the baseline */
    int replies_fd = -1, frontend_fd = -1;
    size_t fd_size = sizeof replies_fd;
    zmq_getsockopt(self->replies, ZMQ_FD, &replies_fd, &fd_size);
    fd_size = sizeof frontend_fd;
    zmq_getsockopt(self->frontend, ZMQ_FD, &frontend_fd, &fd_size);
    bool replies_pending = true, requests_pending = true; /* see the comment above */
    for (;;) {
        bool stopping = atomic_load(&self->stopping);
        if (stopping) {
            if (deadline == 0)
                deadline = clock_mono_ns() + (int64_t)SERVER_DRAIN_MS * 1000000;
            if (atomic_load(env->inflight) <= 0) {
                while (s_forward(self->replies, self->frontend) == 0) {
                }
                break;
            }
            if (clock_mono_ns() > deadline) {
                log_warn("stop: %lld requests still in flight after %d ms; closing anyway",
                         (long long)atomic_load(env->inflight), SERVER_DRAIN_MS);
                break;
            }
        }
        /* the stop signal is the third fd: no timeout while serving. While draining only
         * replies are polled, with a short timeout, since a request finished without a reply
         * (dropped) signals nothing */
        struct pollfd fds[3] = {
            {.fd = replies_fd, .events = POLLIN},
            {.fd = frontend_fd, .events = POLLIN},
            {.fd = self->stop_fd, .events = POLLIN},
        };
        bool pending = replies_pending || (!stopping && requests_pending);
        int ready = poll(fds, stopping ? 1 : 3, pending ? 0 : stopping ? SERVER_DRAIN_POLL_MS : -1);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            log_error("router poll: %s", strerror(errno));
            break;
        }
        if (replies_pending || fds[0].revents != 0) {
            int moved = 0;
            while (moved < SERVER_BATCH && s_forward(self->replies, self->frontend) == 0)
                moved++;
            replies_pending = moved == SERVER_BATCH;
            if (moved > 0)
                requests_pending = true; /* the sends may have taken the ROUTER's signal */
        }
        if (!stopping && (requests_pending || fds[1].revents != 0)) {
            int taken = 0;
            while (taken < SERVER_BATCH && s_take_request(self) == 0)
                taken++;
            requests_pending = taken == SERVER_BATCH;
        }
    }
    int linger = SERVER_LINGER_MS;
    zmq_setsockopt(self->frontend, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(self->frontend);
    zmq_close(self->work);
    zmq_close(self->replies);
    self->frontend = self->work = self->replies = NULL;
    self->sink.socket = NULL;
    msg_buf_fini(&self->sink.buf);
    return NULL;
}

/* Creates and binds one socket; logs and returns NULL on failure. */
static void *s_bind(void *zmq_context, int type, const char *endpoint)
{
    void *socket = zmq_socket(zmq_context, type);
    if (socket == NULL) {
        log_error("socket: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    int zero = 0;
    zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof zero);
    if (type == ZMQ_ROUTER) {
        int64_t max_size = MSG_FRAME_MAX;
        int hwm = SERVER_SNDHWM;
        int ipv6 = strchr(endpoint, '[') != NULL;
        zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size);
        zmq_setsockopt(socket, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(socket, ZMQ_IPV6, &ipv6, sizeof ipv6);
    } else {
        zmq_setsockopt(socket, type == ZMQ_PUSH ? ZMQ_SNDHWM : ZMQ_RCVHWM, &zero, sizeof zero);
    }
    if (zmq_bind(socket, endpoint) != 0) {
        log_error("cannot bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
        zmq_close(socket);
        return NULL;
    }
    return socket;
}

int server_start(server_t *self)
{
    assert(self != NULL && !self->router_running);
    void *context = self->options.env->zmq_context;
    self->replies = s_bind(context, ZMQ_PULL, SERVER_REPLY_ENDPOINT);
    self->work = self->replies ? s_bind(context, ZMQ_PUSH, SERVER_WORK_ENDPOINT) : NULL;
    self->frontend = self->work ? s_bind(context, ZMQ_ROUTER, self->options.listen) : NULL;
    if (self->frontend == NULL) {
        if (self->work)
            zmq_close(self->work);
        if (self->replies)
            zmq_close(self->replies);
        self->work = self->replies = NULL;
        return SHOAL_EIO;
    }
    for (uint32_t i = 0; i < self->options.threads; i++) {
        if (pthread_create(&self->workers[i], NULL, s_worker_main, self) != 0) {
            log_error("cannot start hit worker %u", i);
            break;
        }
        self->worker_count++;
    }
    if (self->worker_count == 0 || pthread_create(&self->router, NULL, s_router_main, self) != 0) {
        log_error("cannot start the router thread");
        zmq_close(self->frontend);
        zmq_close(self->work);
        zmq_close(self->replies);
        self->frontend = self->work = self->replies = NULL;
        return SHOAL_EIO;
    }
    self->router_running = true;
    return 0;
}

void server_stop(server_t *self)
{
    if (self == NULL || !self->router_running)
        return;
    atomic_store(&self->stopping, true);
    uint64_t one = 1;
    if (write(self->stop_fd, &one, sizeof one) != (ssize_t)sizeof one) /* wakes the poll */
        log_warn("router stop signal: %s", strerror(errno));
    pthread_join(self->router, NULL);
    self->router_running = false;
}

void server_join(server_t *self)
{
    if (self == NULL)
        return;
    uint64_t one = 1;
    if (self->worker_count > 0 &&
        write(self->workers_stop_fd, &one, sizeof one) != (ssize_t)sizeof one) /* never read */
        log_warn("hit worker stop signal: %s", strerror(errno));
    for (uint32_t i = 0; i < self->worker_count; i++)
        pthread_join(self->workers[i], NULL);
    self->worker_count = 0;
}

void server_destroy(server_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    server_t *self = *self_p;
    server_stop(self);
    server_join(self);
    close(self->stop_fd);
    close(self->workers_stop_fd);
    free(self->workers);
    free(self);
    *self_p = NULL;
}
