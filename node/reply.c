/*
 * reply.c - answering requests: encode a reply header, send it with its raw frames over the
 * thread's PUSH socket to the router thread, which routes it to the client (see request.h).
 */
#include "request.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define REPLY_ENDPOINT        "inproc://shoal-replies"
#define REPLY_SEND_TIMEOUT_MS 1000 /* a send waits this long only once the router is gone */

void request_finish(node_request_t **request_p)
{
    if (request_p == NULL || *request_p == NULL)
        return;
    node_request_t *request = *request_p;
    assert(request->inflight != NULL);
    _Atomic int64_t *inflight = request->inflight;
    zmq_msg_close(&request->identity);
    msg_fini(&request->msg);
    free(request);
    *request_p = NULL;
    atomic_fetch_sub(inflight, 1);
}

int reply_sink_init(reply_sink_t *sink, const request_env_t *env)
{
    assert(sink != NULL && env != NULL && env->zmq_context != NULL);
    memset(sink, 0, sizeof *sink);
    msg_buf_init(&sink->buf);
    sink->env = env;
    sink->socket = zmq_socket(env->zmq_context, ZMQ_PUSH);
    if (sink->socket == NULL) {
        log_error("reply socket: %s", zmq_strerror(zmq_errno()));
        return SHOAL_EIO;
    }
    int zero = 0;
    zmq_setsockopt(sink->socket, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sink->socket, ZMQ_SNDHWM, &zero, sizeof zero);
    /* unbounded HWM: a send blocks only without a peer, after the router closed at stop (a
     * fetch that outlived the drain deadline); it then fails instead of hanging the thread */
    int send_timeout = REPLY_SEND_TIMEOUT_MS;
    zmq_setsockopt(sink->socket, ZMQ_SNDTIMEO, &send_timeout, sizeof send_timeout);
    if (zmq_connect(sink->socket, REPLY_ENDPOINT) != 0) {
        log_error("connect %s: %s", REPLY_ENDPOINT, zmq_strerror(zmq_errno()));
        zmq_close(sink->socket);
        sink->socket = NULL;
        return SHOAL_EIO;
    }
    return 0;
}

void reply_sink_fini(reply_sink_t *sink)
{
    if (sink->socket)
        zmq_close(sink->socket);
    sink->socket = NULL;
    msg_buf_fini(&sink->buf);
}

/* Sends one frame, moving its content. Returns 0 or SHOAL_EIO (the router is gone). */
static int s_send_frame(void *socket, zmq_msg_t *frame, bool more)
{
    if (zmq_msg_send(frame, socket, more ? ZMQ_SNDMORE : 0) < 0) {
        zmq_msg_close(frame);
        return SHOAL_EIO;
    }
    return 0;
}

static int s_send_encoded(reply_sink_t *sink, node_request_t *request, zmq_msg_t *frames,
                          uint32_t frame_count, bool keep_identity);
static int s_send(reply_sink_t *sink, node_request_t *request, msg_t *reply, zmq_msg_t *frames,
                  uint32_t frame_count, bool keep_identity);

int reply_send(reply_sink_t *sink, node_request_t *request, msg_t *reply, zmq_msg_t *frames,
               uint32_t frame_count)
{
    return s_send(sink, request, reply, frames, frame_count, false);
}

int reply_send_partial(reply_sink_t *sink, node_request_t *request, msg_t *reply, zmq_msg_t *frames,
                       uint32_t frame_count)
{
    return s_send(sink, request, reply, frames, frame_count, true);
}

/*
 * The multipart goes out as: routing id, [empty delimiter], header, raw frames. A failure in
 * the middle (only at shutdown, when the context is terminated) leaves a partial message that
 * libzmq discards with the socket; the remaining frames are closed here.
 */
static int s_send(reply_sink_t *sink, node_request_t *request, msg_t *reply, zmq_msg_t *frames,
                  uint32_t frame_count, bool keep_identity)
{
    const request_env_t *env = sink->env;
    reply->header.request_id = request->msg.header.request_id;
    reply->header.view_version = membership_version(env->members);
    int rc = msg_encode(reply, &sink->buf);
    if (rc < 0) {
        log_warn("cannot encode %s reply to request %llu: %s", msg_type_name(reply->header.type),
                 (unsigned long long)request->msg.header.request_id, shoal_last_error());
        for (uint32_t i = 0; i < frame_count; i++)
            zmq_msg_close(&frames[i]);
        frame_count = 0;
        msg_t error;
        msg_error(&error, request->msg.header.request_id, membership_version(env->members),
                  SHOAL_EINTERNAL, "the node could not encode its reply");
        if (msg_encode(&error, &sink->buf) < 0)
            return SHOAL_EINTERNAL;
        stats_add(env->stats, STATS_ERRORS_REPLIED, 1);
    }
    return s_send_encoded(sink, request, frames, frame_count, keep_identity);
}

int reply_send_encoded(reply_sink_t *sink, node_request_t *request)
{
    return s_send_encoded(sink, request, NULL, 0, false);
}

/* Sends sink->buf as the header frame, then the raw frames (moved). With keep_identity a copy
 * of the routing id goes out and the request keeps its own. */
static int s_send_encoded(reply_sink_t *sink, node_request_t *request, zmq_msg_t *frames,
                          uint32_t frame_count, bool keep_identity)
{
    int rc = 0;
    zmq_msg_t header;
    if (zmq_msg_init_size(&header, sink->buf.len) != 0) {
        for (uint32_t i = 0; i < frame_count; i++)
            zmq_msg_close(&frames[i]);
        return SHOAL_ENOMEM;
    }
    memcpy(zmq_msg_data(&header), sink->buf.data, sink->buf.len);

    if (keep_identity) {
        zmq_msg_t identity;
        zmq_msg_init(&identity);
        zmq_msg_copy(&identity, &request->identity);
        rc = s_send_frame(sink->socket, &identity, true);
    } else {
        rc = s_send_frame(sink->socket, &request->identity, true);
    }
    if (rc == 0 && request->has_delimiter) {
        zmq_msg_t delimiter;
        zmq_msg_init(&delimiter);
        rc = s_send_frame(sink->socket, &delimiter, true);
    }
    if (rc == 0)
        rc = s_send_frame(sink->socket, &header, frame_count > 0);
    else
        zmq_msg_close(&header);
    for (uint32_t i = 0; i < frame_count; i++) {
        if (rc == 0)
            rc = s_send_frame(sink->socket, &frames[i], i + 1 < frame_count);
        else
            zmq_msg_close(&frames[i]);
    }
    if (!keep_identity)
        zmq_msg_init(&request->identity); /* moved out (or closed): leave a valid empty message */
    return rc;
}

int reply_error(reply_sink_t *sink, node_request_t *request, int code, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    msg_t reply;
    msg_error(&reply, request->msg.header.request_id, 0, code < 0 ? code : SHOAL_EINTERNAL,
              message);
    stats_add(sink->env->stats, STATS_ERRORS_REPLIED, 1);
    if (code == SHOAL_ECANCELED)
        stats_add(sink->env->stats, STATS_CANCELED, 1);
    log_debug("request %llu (%s): %s: %s", (unsigned long long)request->msg.header.request_id,
              msg_type_name(request->msg.header.type), shoal_strerror(code), message);
    return reply_send(sink, request, &reply, NULL, 0);
}
