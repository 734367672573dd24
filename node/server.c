/*
 * server.c - the router thread and the hit workers (see server.h for the picture). The router
 * thread does no decoding: it splits the envelope from the header frame, stamps the arrival
 * time, and forwards; it also drops oversized and frame-less messages. Workers decode, refuse
 * malformed requests with ERROR EPROTO when a request id can be read, and dispatch (ops.h).
 */
#include "server.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "fetch.h"
#include "log.h"
#include "ops.h"
#include "request.h"

#define SERVER_WORK_ENDPOINT  "inproc://shoal-work"
#define SERVER_REPLY_ENDPOINT "inproc://shoal-replies"
#define SERVER_BATCH          256    /* messages moved per socket per poll round */
#define SERVER_DRAIN_MS       10000  /* longest wait for in-flight requests at stop */
#define SERVER_LINGER_MS      2000   /* time the ROUTER gets to flush its last replies */
#define SERVER_SNDHWM         200000 /* frames queued per client before ROUTER drops */
#define SERVER_POLL_MS        100    /* router wakes this often to check for stop */

/* What the router thread tells a worker about a request, in the frame between the routing id
 * and the header. */
typedef struct s_info {
    int64_t received_ns;   /* arrival time */
    uint32_t extra_frames; /* frames after the header (requests must have none) */
    uint8_t has_delimiter; /* an empty delimiter frame came before the header */
} s_info_t;

struct server {
    node_t *node;          /* borrowed */
    void *frontend;        /* ROUTER, the data endpoint; router thread only */
    void *work;            /* PUSH to the workers; router thread only */
    void *replies;         /* PULL from workers and fetchers; router thread only */
    pthread_t router;      /* the router thread */
    bool router_running;   /* router thread started and not joined */
    pthread_t *workers;    /* hit workers */
    uint32_t worker_count; /* started workers */
    _Atomic bool stopping; /* set by server_stop */
};

server_t *server_new(node_t *node)
{
    server_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return NULL;
    self->node = node;
    self->workers = calloc(node->config.threads, sizeof *self->workers);
    if (self->workers == NULL) {
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

/*
 * Takes one request off the ROUTER: routing id, optional empty delimiter, header frame, and
 * anything after (counted, discarded: requests carry no raw frames). Forwards
 * [routing id][info][header] to a worker. Returns 0, or -1 when nothing was waiting.
 */
static int s_take_request(server_t *self)
{
    node_t *node = self->node;
    zmq_msg_t identity, header;
    zmq_msg_init(&identity);
    if (zmq_msg_recv(&identity, self->frontend, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&identity);
        return -1;
    }
    stats_add(&node->stats, STATS_REQUESTS, 1);
    s_info_t info = {.received_ns = stats_now_ns()};
    if (!zmq_msg_more(&identity)) {
        zmq_msg_close(&identity);
        stats_add(&node->stats, STATS_DROPPED, 1);
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

    zmq_msg_t info_frame;
    zmq_msg_init_size(&info_frame, sizeof info);
    memcpy(zmq_msg_data(&info_frame), &info, sizeof info);
    atomic_fetch_add(&node->inflight, 1);
    if (zmq_msg_send(&identity, self->work, ZMQ_SNDMORE) < 0 ||
        zmq_msg_send(&info_frame, self->work, ZMQ_SNDMORE) < 0 ||
        zmq_msg_send(&header, self->work, 0) < 0) {
        atomic_fetch_sub(&node->inflight, 1);
        zmq_msg_close(&identity);
        zmq_msg_close(&info_frame);
        zmq_msg_close(&header);
    }
    return 0;
}

/*
 * The router thread. It polls the ROUTER (until stop) and the reply PULL; replies go first so
 * a flood of requests cannot starve answers. At stop it keeps routing replies until every
 * forwarded request has been answered, or SERVER_DRAIN_MS passed.
 */
static void *s_router_main(void *arg)
{
    server_t *self = arg;
    node_t *node = self->node;
    int64_t deadline = 0;
    node_thread_name("shoal-router");
    for (;;) {
        bool stopping = atomic_load(&self->stopping);
        if (stopping) {
            if (deadline == 0)
                deadline = stats_now_ns() + (int64_t)SERVER_DRAIN_MS * 1000000;
            if (atomic_load(&node->inflight) <= 0) {
                while (s_forward(self->replies, self->frontend) == 0) {
                }
                break;
            }
            if (stats_now_ns() > deadline) {
                log_warn("stop: %lld requests still in flight after %d ms; closing anyway",
                         (long long)atomic_load(&node->inflight), SERVER_DRAIN_MS);
                break;
            }
        }
        zmq_pollitem_t items[2] = {
            {.socket = self->replies, .events = ZMQ_POLLIN},
            {.socket = self->frontend, .events = ZMQ_POLLIN},
        };
        int ready = zmq_poll(items, stopping ? 1 : 2, stopping ? 10 : SERVER_POLL_MS);
        if (ready < 0) {
            if (zmq_errno() == EINTR)
                continue;
            log_error("router poll: %s", zmq_strerror(zmq_errno()));
            break;
        }
        if (items[0].revents & ZMQ_POLLIN)
            for (int i = 0; i < SERVER_BATCH && s_forward(self->replies, self->frontend) == 0;
                 i++) {
            }
        if (!stopping && (items[1].revents & ZMQ_POLLIN))
            for (int i = 0; i < SERVER_BATCH && s_take_request(self) == 0; i++) {
            }
    }
    int linger = SERVER_LINGER_MS;
    zmq_setsockopt(self->frontend, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(self->frontend);
    zmq_close(self->work);
    zmq_close(self->replies);
    self->frontend = self->work = self->replies = NULL;
    return NULL;
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

/* Decodes one forwarded request and dispatches it. Takes the three frames. */
static void s_handle(node_t *node, reply_sink_t *sink, zmq_msg_t *identity, zmq_msg_t *info_frame,
                     zmq_msg_t *header)
{
    node_request_t *request = calloc(1, sizeof *request);
    if (request == NULL) {
        zmq_msg_close(identity);
        zmq_msg_close(info_frame);
        zmq_msg_close(header);
        atomic_fetch_sub(&node->inflight, 1);
        return;
    }
    zmq_msg_init(&request->identity);
    zmq_msg_move(&request->identity, identity);
    s_info_t info = {0};
    if (zmq_msg_size(info_frame) == sizeof info)
        memcpy(&info, zmq_msg_data(info_frame), sizeof info);
    zmq_msg_close(info_frame);
    request->has_delimiter = info.has_delimiter != 0;
    request->received_ns = info.received_ns;

    int rc = msg_decode(zmq_msg_data(header), zmq_msg_size(header), &request->msg);
    if (rc < 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", shoal_last_error());
        stats_add(&node->stats, STATS_MALFORMED, 1);
        msg_header_t salvaged;
        bool answerable = s_salvage_header(zmq_msg_data(header), zmq_msg_size(header), &salvaged);
        zmq_msg_close(header);
        if (!answerable) {
            log_debug("dropped a malformed request: %s", why);
            stats_add(&node->stats, STATS_DROPPED, 1);
            request_finish(node, &request);
            return;
        }
        request->msg.header = salvaged;
        reply_error(sink, request, rc == SHOAL_EMSGSIZE ? SHOAL_EMSGSIZE : SHOAL_EPROTO,
                    "malformed request: %s", why);
        request_finish(node, &request);
        return;
    }
    zmq_msg_close(header);
    if (info.extra_frames > 0 || request->msg.header.frames != 0) {
        stats_add(&node->stats, STATS_MALFORMED, 1);
        reply_error(sink, request, SHOAL_EPROTO, "requests carry no raw frames (got %u)",
                    info.extra_frames);
        request_finish(node, &request);
        return;
    }
    if (!msg_type_is_request(request->msg.header.type)) {
        stats_add(&node->stats, STATS_MALFORMED, 1);
        reply_error(sink, request, SHOAL_EPROTO, "%s (type %u) is not a data request",
                    msg_type_name(request->msg.header.type), request->msg.header.type);
        request_finish(node, &request);
        return;
    }
    ops_dispatch(node, sink, &request);
}

/* A hit worker: receives [routing id][info][header] until the context is shut down. */
static void *s_worker_main(void *arg)
{
    server_t *self = arg;
    node_t *node = self->node;
    node_thread_name("shoal-hit");
    reply_sink_t sink;
    if (reply_sink_init(&sink, node) < 0)
        return NULL;
    void *work = zmq_socket(node->zmq_context, ZMQ_PULL);
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
        zmq_msg_t frames[3];
        int got = 0, error = 0;
        bool more = true;
        while (got < 3 && more) {
            zmq_msg_init(&frames[got]);
            if (zmq_msg_recv(&frames[got], work, 0) < 0) {
                error = zmq_errno();
                zmq_msg_close(&frames[got]);
                break;
            }
            more = zmq_msg_more(&frames[got]);
            got++;
        }
        if (got == 3 && !more) {
            s_handle(node, &sink, &frames[0], &frames[1], &frames[2]);
            continue;
        }
        for (int i = 0; i < got; i++)
            zmq_msg_close(&frames[i]);
        if (error == ETERM)
            break;
        if (got > 0 && !more)
            atomic_fetch_sub(&node->inflight, 1); /* cannot happen: the router sends 3 frames */
    }
    zmq_close(work);
    reply_sink_fini(&sink);
    return NULL;
}

/* Creates and binds one socket; logs and returns NULL on failure. */
static void *s_bind(node_t *node, int type, const char *endpoint)
{
    void *socket = zmq_socket(node->zmq_context, type);
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
    node_t *node = self->node;
    self->replies = s_bind(node, ZMQ_PULL, SERVER_REPLY_ENDPOINT);
    self->work = self->replies ? s_bind(node, ZMQ_PUSH, SERVER_WORK_ENDPOINT) : NULL;
    self->frontend = self->work ? s_bind(node, ZMQ_ROUTER, node->config.listen) : NULL;
    if (self->frontend == NULL) {
        if (self->work)
            zmq_close(self->work);
        if (self->replies)
            zmq_close(self->replies);
        self->work = self->replies = NULL;
        return SHOAL_EIO;
    }
    for (uint32_t i = 0; i < node->config.threads; i++) {
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
    pthread_join(self->router, NULL);
    self->router_running = false;
}

void server_join(server_t *self)
{
    if (self == NULL)
        return;
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
    free(self->workers);
    free(self);
    *self_p = NULL;
}
