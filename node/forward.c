/*
 * forward.c - asking a range's owner on behalf of a client (see forward.h): placement over
 * the node's membership, a pool of DEALER sockets to owners, and one synchronous READ
 * FORWARDED per call, checked like a client checks a READ reply and copied into a range
 * buffer.
 */
#include "forward.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "clock.h"
#include "hrw.h"
#include "log.h"

#define FORWARD_CONNECT_MS 200 /* longest wait for a connection to the owner (send timeout) */

/* One pooled connection: a DEALER to one owner, used by one thread at a time. */
typedef struct forward_conn {
    struct forward_conn *next;           /* idle list link */
    char endpoint[MSG_ENDPOINT_MAX + 1]; /* owner data endpoint */
    void *socket;                        /* DEALER */
    uint64_t next_request_id;            /* ids are unique per socket */
} forward_conn_t;

struct forward {
    forward_deps_t deps;  /* context, membership, buffers, counters, settings */
    pthread_mutex_t lock; /* guards idle */
    forward_conn_t *idle; /* connections not in use */
};

forward_t *forward_new(const forward_deps_t *deps)
{
    assert(deps != NULL && deps->zmq_context != NULL && deps->members != NULL);
    forward_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return NULL;
    self->deps = *deps;
    pthread_mutex_init(&self->lock, NULL);
    return self;
}

static void s_conn_close(forward_conn_t **conn_p)
{
    forward_conn_t *conn = *conn_p;
    if (conn == NULL)
        return;
    if (conn->socket)
        zmq_close(conn->socket);
    free(conn);
    *conn_p = NULL;
}

void forward_destroy(forward_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    forward_t *self = *self_p;
    while (self->idle) {
        forward_conn_t *conn = self->idle;
        self->idle = conn->next;
        s_conn_close(&conn);
    }
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

bool forward_owner(forward_t *self, uint32_t flags, const char *uri, uint64_t range_index,
                   char *endpoint, size_t cap)
{
    if (flags & (MSG_READ_FORWARDED | MSG_READ_NO_CACHE))
        return false;
    uint8_t key[HRW_RANGE_KEY_LEN];
    hrw_uri_range_key(uri, range_index, key);
    return membership_owner(self->deps.members, key, sizeof key, endpoint, cap) == 0;
}

/* Takes an idle connection to `endpoint`, or makes one: LINGER 0 (a closed socket drops what
 * it queued), IMMEDIATE (no queueing for a peer that is not connected), SNDTIMEO of at most
 * FORWARD_CONNECT_MS (a send waits that long for a connection: an owner that was just killed
 * refuses connections, and the range is read from the UFS at once instead). */
static forward_conn_t *s_conn_take(forward_t *self, const char *endpoint)
{
    pthread_mutex_lock(&self->lock);
    forward_conn_t **link = &self->idle;
    while (*link && strcmp((*link)->endpoint, endpoint) != 0)
        link = &(*link)->next;
    forward_conn_t *conn = *link;
    if (conn)
        *link = conn->next;
    pthread_mutex_unlock(&self->lock);
    if (conn)
        return conn;
    conn = calloc(1, sizeof *conn);
    if (conn == NULL)
        return NULL;
    snprintf(conn->endpoint, sizeof conn->endpoint, "%s", endpoint);
    conn->next_request_id = 1;
    conn->socket = zmq_socket(self->deps.zmq_context, ZMQ_DEALER);
    if (conn->socket == NULL) {
        free(conn);
        return NULL;
    }
    int zero = 0, one = 1;
    /* a live owner is connected in a millisecond or two; a dead one must cost little */
    int send_timeout = (int)self->deps.timeout_ms;
    if (send_timeout > FORWARD_CONNECT_MS)
        send_timeout = FORWARD_CONNECT_MS;
    zmq_setsockopt(conn->socket, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(conn->socket, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt(conn->socket, ZMQ_SNDTIMEO, &send_timeout, sizeof send_timeout);
    if (zmq_connect(conn->socket, endpoint) != 0) {
        s_conn_close(&conn);
        return NULL;
    }
    return conn;
}

static void s_conn_give(forward_t *self, forward_conn_t *conn)
{
    pthread_mutex_lock(&self->lock);
    conn->next = self->idle;
    self->idle = conn;
    pthread_mutex_unlock(&self->lock);
}

static bool s_more(void *socket)
{
    int more = 0;
    size_t size = sizeof more;
    return zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &size) == 0 && more;
}

static void s_skip_rest(void *socket)
{
    while (s_more(socket)) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        int rc = zmq_msg_recv(&part, socket, 0);
        zmq_msg_close(&part);
        if (rc < 0)
            return;
    }
}

/* Copies the frames of a READ reply that cover [want_offset, want_offset + buf->len) into
 * `buf` after checking the header (version, size, span) and every frame length. */
static int s_copy_reply(const msg_t *reply, void *socket, const char *version, uint64_t file_size,
                        uint64_t want_offset, range_buf_t *buf)
{
    const msg_read_reply_t *r = &reply->body.read_reply;
    uint64_t want_end = want_offset + buf->len;
    uint64_t span_end = r->offset + r->length;
    if (r->file_size != file_size || strcmp(r->version, version) != 0)
        return shoal_fail(SHOAL_ESTALE, "owner served version '%s' size %llu, not '%s' %llu",
                          r->version, (unsigned long long)r->file_size, version,
                          (unsigned long long)file_size);
    if (r->more) /* asked without MSG_READ_STREAM: one reply only */
        return shoal_fail(SHOAL_EPROTO, "owner sent a partial READ reply to a plain READ");
    if (r->page_size == 0 || r->offset > want_offset || span_end < want_end ||
        r->page_count != reply->header.frames ||
        r->page_count != msg_read_page_count(r->offset, r->length, r->page_size))
        return shoal_fail(SHOAL_EPROTO, "owner's READ reply does not cover the range");
    uint64_t first_page = r->offset / r->page_size;
    uint64_t copied = 0;
    for (uint32_t i = 0; i < r->page_count; i++) {
        if (!s_more(socket))
            return shoal_fail(SHOAL_EPROTO, "owner's READ reply lacks frame %u", i);
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, socket, 0) < 0) {
            zmq_msg_close(&part);
            return shoal_fail(SHOAL_EPROTO, "receive: %s", zmq_strerror(errno));
        }
        uint64_t size = zmq_msg_size(&part);
        if (size != msg_read_frame_length(r, i)) {
            zmq_msg_close(&part);
            return shoal_fail(SHOAL_EPROTO, "owner's READ frame %u has %llu bytes", i,
                              (unsigned long long)size);
        }
        uint64_t start = (first_page + i) * r->page_size;
        if (start < r->offset)
            start = r->offset;
        uint64_t end = start + size;
        uint64_t lo = start > want_offset ? start : want_offset;
        uint64_t hi = end < want_end ? end : want_end;
        if (lo < hi) {
            memcpy(buf->data + (lo - want_offset),
                   (const uint8_t *)zmq_msg_data(&part) + (lo - start), hi - lo);
            copied += hi - lo;
        }
        zmq_msg_close(&part);
    }
    if (s_more(socket))
        return shoal_fail(SHOAL_EPROTO, "owner's READ reply has extra frames");
    if (copied != buf->len)
        return shoal_fail(SHOAL_EPROTO, "owner's READ reply covered %llu of %zu bytes",
                          (unsigned long long)copied, buf->len);
    return 0;
}

/* One request and its answer on `conn`, by the deadline. On any failure the caller closes
 * the connection, so a late answer can never be taken for the next request's. */
static int s_exchange(const forward_deps_t *deps, forward_conn_t *conn, const char *uri,
                      const char *version, uint64_t file_size, uint64_t offset, range_buf_t *buf,
                      int64_t deadline)
{
    uint64_t request_id = conn->next_request_id++;
    msg_t request;
    msg_read_request(&request, request_id, membership_version(deps->members), uri, version, offset,
                     buf->len, MSG_READ_FORWARDED);
    msg_buf_t out;
    msg_buf_init(&out);
    int rc = msg_encode(&request, &out);
    if (rc == 0 && zmq_send(conn->socket, out.data, out.len, 0) < 0)
        rc = shoal_fail(SHOAL_EUNAVAIL, "%s: not connected (%s)", conn->endpoint,
                        zmq_strerror(errno));
    msg_buf_fini(&out);
    while (rc == 0) {
        int64_t wait = deadline - clock_mono_ms();
        if (wait <= 0)
            return shoal_fail(SHOAL_ETIMEDOUT, "%s did not answer in %u ms", conn->endpoint,
                              deps->timeout_ms);
        zmq_pollitem_t item = {conn->socket, 0, ZMQ_POLLIN, 0};
        int ready = zmq_poll(&item, 1, (long)wait);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0)
            return shoal_fail(SHOAL_EUNAVAIL, "poll: %s", zmq_strerror(errno));
        if (ready == 0)
            continue;
        zmq_msg_t first;
        zmq_msg_init(&first);
        if (zmq_msg_recv(&first, conn->socket, 0) < 0) {
            zmq_msg_close(&first);
            return shoal_fail(SHOAL_EUNAVAIL, "receive: %s", zmq_strerror(errno));
        }
        if (zmq_msg_size(&first) == 0 && zmq_msg_more(&first)) { /* delimiter */
            zmq_msg_close(&first);
            zmq_msg_init(&first);
            if (zmq_msg_recv(&first, conn->socket, 0) < 0) {
                zmq_msg_close(&first);
                return shoal_fail(SHOAL_EUNAVAIL, "receive: %s", zmq_strerror(errno));
            }
        }
        msg_t reply;
        rc = msg_decode(zmq_msg_data(&first), zmq_msg_size(&first), &reply);
        zmq_msg_close(&first);
        if (rc != 0) {
            s_skip_rest(conn->socket);
            return rc;
        }
        if (reply.header.request_id != request_id) { /* a stray answer: not ours */
            s_skip_rest(conn->socket);
            msg_fini(&reply);
            continue;
        }
        if (reply.header.type == MSG_ERROR) {
            rc = shoal_fail(reply.body.error.code < 0 ? reply.body.error.code : SHOAL_EPROTO,
                            "%s: %s", conn->endpoint, reply.body.error.message);
        } else if (reply.header.type != MSG_READ_REP) {
            rc = shoal_fail(SHOAL_EPROTO, "%s answered %s", conn->endpoint,
                            msg_type_name(reply.header.type));
        } else {
            rc = s_copy_reply(&reply, conn->socket, version, file_size, offset, buf);
        }
        s_skip_rest(conn->socket);
        msg_fini(&reply);
        return rc;
    }
    return rc;
}

int forward_read_range(forward_t *self, const char *endpoint, const char *uri, const char *version,
                       uint64_t file_size, uint64_t range_index, range_buf_t **buf_out)
{
    assert(self != NULL && endpoint != NULL && uri != NULL && buf_out != NULL);
    const forward_deps_t *deps = &self->deps;
    uint64_t range_bytes = deps->page_size * deps->range_pages;
    uint64_t offset = range_index * range_bytes;
    if (offset >= file_size)
        return shoal_fail(SHOAL_EINTERNAL, "range %llu is past the end of %s",
                          (unsigned long long)range_index, uri);
    uint64_t want = file_size - offset < range_bytes ? file_size - offset : range_bytes;
    stats_add(deps->stats, STATS_FORWARDS, 1);
    int64_t deadline = clock_mono_ms() + deps->timeout_ms;
    range_buf_t *buf = range_buf_get(deps->ranges, want);
    forward_conn_t *conn = buf ? s_conn_take(self, endpoint) : NULL;
    int rc;
    if (buf == NULL || conn == NULL) {
        rc = shoal_fail(SHOAL_ENOMEM, "forward to %s: out of memory or sockets", endpoint);
    } else {
        buf->len = (size_t)want;
        rc = s_exchange(deps, conn, uri, version, file_size, offset, buf, deadline);
    }
    if (rc == 0) {
        s_conn_give(self, conn);
        *buf_out = buf;
        return 0;
    }
    s_conn_close(&conn);
    range_buf_release(&buf);
    stats_add(deps->stats, STATS_FORWARD_FAILURES, 1);
    log_debug("forward of %s range %llu to %s failed (%s): reading the UFS", uri,
              (unsigned long long)range_index, endpoint, shoal_last_error());
    return rc;
}
