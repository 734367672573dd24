/*
 * read.c - READ and LOAD (see read.h). A READ is answered with exactly the bytes asked for
 * (clipped at the end of the file), cut at page boundaries: frame i is the part of page first+i
 * inside the span, sent as a slice of pinned RocksDB memory (hits) or of the reference-counted
 * range buffer (misses), never copied by the node.
 */
#include "read.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "clock.h"
#include "forward.h"
#include "log.h"
#include "storeq.h"

/* The pages a request touches and the span answered: [offset, offset + length) clipped at the
 * end of the file. Frame i carries [max(span_offset, (first_page+i)*page),
 * min(span_end, (first_page+i+1)*page)), as proto.h's READ reply rules say. */
typedef struct s_plan {
    uint64_t first_page;  /* index of the first page */
    uint32_t page_count;  /* pages, and frames (0 for an empty span) */
    uint64_t span_offset; /* first byte answered (the request offset, or the file size if past) */
    uint64_t span_length; /* bytes answered */
} s_plan_t;

/* Smallest partial reply of a streamed READ (or half a range, if that is less), unless a range
 * boundary comes first: with the default 1 MiB pages every page goes out as soon as it is in;
 * smaller pages are grouped so that one reply's fixed cost is spread over enough bytes. */
#define S_PARTIAL_MIN_BYTES (256u << 10)

/*
 * A READ answered by partial replies (MSG_READ_STREAM, proto.h). frames[0, sent) have gone out
 * in partial replies; frames[sent, ready) are set up and wait for the next reply; the rest are
 * not set up yet. Invariant: sent <= ready <= plan->page_count, and a partial reply never
 * carries the plan's last frame, so the final reply (more = false) always has at least one.
 * While the request leads the flight of a range, the UFS reports progress (ufs_read_progress)
 * and every piece of the span inside the filled part of the range buffer becomes a frame (a
 * slice of the buffer with a reference, as for a whole reply).
 */
typedef struct s_stream {
    const read_ctx_t *ctx;     /* borrowed */
    reply_sink_t *sink;        /* the fetch thread's sink */
    node_request_t *request;   /* the READ */
    const ufs_stat_t *stat;    /* its file version */
    const struct s_plan *plan; /* its span */
    zmq_msg_t *frames;         /* plan->page_count frames */
    uint32_t sent;             /* frames sent in partial replies */
    uint32_t ready;            /* frames set up */
    uint32_t range_first;      /* while fetching: the first frame inside the range */
    uint32_t range_pieces;     /* while fetching: frames inside the range */
    uint64_t range_offset;     /* while fetching: file offset of the range buffer's byte 0 */
    range_buf_t *buf;          /* while fetching: the range buffer (borrowed) */
    bool broken;               /* a partial reply could not be sent: stop streaming */
} s_stream_t;

/* State of one range read, for the flight leader. */
typedef struct s_fetch {
    const read_ctx_t *ctx;   /* borrowed */
    const char *uri;         /* normalised uri */
    const char *version;     /* version the bytes must have */
    const uint8_t *file_key; /* key of (uri, version) */
    uint64_t range_index;    /* range to read */
    uint64_t file_size;      /* size of that version */
    const char *forward_to;  /* owner to ask first (forward.h), or NULL */
    s_stream_t *stream;      /* streamed READ to feed with progress, or NULL */
} s_fetch_t;

/* A fetched range whose flight this request took part in: its buffer, and, when the request
 * led the flight of a range to be stored, the held flight to end once the pages are stored. */
typedef struct s_pending {
    uint64_t range_index;                      /* the range */
    uint8_t file_key[PAGESTORE_FILE_KEY_SIZE]; /* its file version */
    range_buf_t *buf;                          /* its bytes (one reference) */
    flight_t *held;                            /* held flight, or NULL */
    bool must_store;                           /* this request stores the pages */
} s_pending_t;

int read_resolve(const read_ctx_t *ctx, const char *uri, const char *want_version, bool may_ask_ufs,
                 ufs_stat_t *out)
{
    assert(ctx != NULL && uri != NULL && out != NULL);
    bool want = want_version != NULL && want_version[0] != '\0';
    bool fresh = false;
    int64_t now = clock_mono_ns();
    if (meta_cache_get(ctx->meta, uri, now, out, &fresh) == 0) {
        if (fresh) {
            stats_add(ctx->stats, STATS_META_HITS, 1);
            if (want && strcmp(out->version, want_version) != 0)
                return shoal_fail(SHOAL_ESTALE, "%s: version is now %s, not %s", uri, out->version,
                                  want_version);
            return 0;
        }
        if (want && strcmp(out->version, want_version) == 0) {
            stats_add(ctx->stats, STATS_META_HITS, 1);
            return 0;
        }
    }
    if (!may_ask_ufs)
        return 1;
    stats_add(ctx->stats, STATS_META_MISSES, 1);
    stats_add(ctx->stats, STATS_UFS_REQUESTS, 1);
    memset(out, 0, sizeof *out);
    int rc = ufs_stat(ctx->ufs, uri, out);
    if (rc < 0) {
        stats_add(ctx->stats, STATS_UFS_ERRORS, 1);
        if (rc != SHOAL_ENOENT)
            log_warn("stat %s: %s", uri, shoal_last_error());
        return rc;
    }
    meta_cache_put(ctx->meta, uri, out, clock_mono_ns());
    if (want && strcmp(out->version, want_version) != 0)
        return shoal_fail(SHOAL_ESTALE, "%s: version is now %s, not %s", uri, out->version,
                          want_version);
    return 0;
}

static void s_plan_sanity(const read_ctx_t *ctx, const s_plan_t *plan);

/* Cuts [offset, offset + length) of a file of `size` bytes, clipped at the end, into pages.
 * Refuses spans over READ_BYTES_MAX or MSG_READ_PAGES_MAX pages (SHOAL_EINVAL): one reply holds
 * them all in memory, and the client splits reads into ranges anyway. */
static int s_plan(const read_ctx_t *ctx, uint64_t size, uint64_t offset, uint64_t length,
                  s_plan_t *plan)
{
    memset(plan, 0, sizeof *plan);
    if (length > READ_BYTES_MAX)
        return shoal_fail(SHOAL_EINVAL, "read of %llu bytes is over the node's limit of %llu",
                          (unsigned long long)length, (unsigned long long)READ_BYTES_MAX);
    if (offset >= size || length == 0) {
        plan->span_offset = offset < size ? offset : size;
        return 0;
    }
    uint64_t end = length > size - offset ? size : offset + length;
    uint64_t page_size = ctx->page_size;
    uint64_t first = offset / page_size;
    uint64_t last = (end - 1) / page_size;
    if (last - first + 1 > MSG_READ_PAGES_MAX)
        return shoal_fail(SHOAL_EINVAL, "read spans %llu pages, over the limit of %u",
                          (unsigned long long)(last - first + 1), MSG_READ_PAGES_MAX);
    plan->first_page = first;
    plan->page_count = (uint32_t)(last - first + 1);
    plan->span_offset = offset;
    plan->span_length = end - offset;
    s_plan_sanity(ctx, plan);
    return 0;
}

/*
 * Checks a plan's invariants (assert-only: compiled out under NDEBUG): an empty span has no
 * pages; otherwise the span lies inside pages [first_page, first_page + page_count), touching
 * the first and the last, within READ_BYTES_MAX and MSG_READ_PAGES_MAX.
 */
static void s_plan_sanity(const read_ctx_t *ctx, const s_plan_t *plan)
{
#ifndef NDEBUG
    assert((plan->page_count == 0) == (plan->span_length == 0));
    assert(plan->span_length <= READ_BYTES_MAX && plan->page_count <= MSG_READ_PAGES_MAX);
    if (plan->page_count > 0) {
        uint64_t span_end = plan->span_offset + plan->span_length;
        assert(plan->span_offset / ctx->page_size == plan->first_page);
        assert((span_end - 1) / ctx->page_size == plan->first_page + plan->page_count - 1);
    }
#else
    (void)ctx;
    (void)plan;
#endif
}

/* The file bytes frame `i` of `plan` carries: [*start, *start + *length). */
static void s_piece(const read_ctx_t *ctx, const s_plan_t *plan, uint32_t i, uint64_t *start,
                    uint64_t *length)
{
    uint64_t page_start = (plan->first_page + i) * ctx->page_size;
    uint64_t page_end = page_start + ctx->page_size;
    uint64_t span_end = plan->span_offset + plan->span_length;
    uint64_t lo = page_start > plan->span_offset ? page_start : plan->span_offset;
    uint64_t hi = page_end < span_end ? page_end : span_end;
    *start = lo;
    *length = hi > lo ? hi - lo : 0;
}

/* Bytes page `index` of a file of `size` bytes has. */
static uint64_t s_page_length(const read_ctx_t *ctx, uint64_t size, uint64_t index)
{
    uint64_t start = index * ctx->page_size;
    if (start >= size)
        return 0;
    return size - start < ctx->page_size ? size - start : ctx->page_size;
}

static void s_stream_on_progress(void *arg, size_t filled);
static void s_stream_flush(s_stream_t *stream, bool at_boundary);

/*
 * Checks a streamed READ's invariants (s_stream_t; assert-only): sent <= ready <= page_count,
 * partial replies never took the plan's last frame (sent < page_count unless the span is
 * empty), and while a range is fetched its frames lie inside the plan.
 */
static void s_stream_sanity(const s_stream_t *stream)
{
#ifndef NDEBUG
    const s_plan_t *plan = stream->plan;
    assert(stream->sent <= stream->ready && stream->ready <= plan->page_count);
    assert(plan->page_count == 0 || stream->sent < plan->page_count);
    assert(stream->buf == NULL ||
           (uint64_t)stream->range_first + stream->range_pieces <= plan->page_count);
#else
    (void)stream;
#endif
}

/* Sends the READ reply for `plan` with its frames (moved). */
static void s_reply_read(const read_ctx_t *ctx, reply_sink_t *sink, node_request_t *request,
                         const ufs_stat_t *stat, const s_plan_t *plan, zmq_msg_t *frames)
{
    msg_t reply;
    msg_read_reply(&reply, request->msg.header.request_id, 0, stat->size, stat->version,
                   plan->span_offset, plan->span_length, plan->page_count, ctx->page_size);
    stats_add(ctx->stats, STATS_READS, 1);
    stats_add(ctx->stats, STATS_BYTES_SERVED, plan->span_length);
    reply_send(sink, request, &reply, frames, plan->page_count);
}

/* Pins exactly the bytes frame `i` carries from its cached page (pagestore_get_range reads and
 * checks only the 64 KiB chunks covering them). Returns 0 or the store's code (a miss). */
static int s_get_piece(const read_ctx_t *ctx, const s_plan_t *plan, uint32_t i,
                       const uint8_t *file_key, pagestore_page_t **page)
{
    uint64_t start, length, index = plan->first_page + i;
    s_piece(ctx, plan, i, &start, &length);
    return pagestore_get_range(ctx->store, file_key, index, start - index * ctx->page_size, length,
                               page);
}

/* Turns the pinned slice frame `i` carries (from s_get_piece) into that frame, which releases
 * the pin when ZeroMQ is done with it (the free function takes the page as its hint). */
static void s_frame_from_page(zmq_msg_t *frame, pagestore_page_t *page)
{
    if (zmq_msg_init_data(frame, (void *)pagestore_page_data(page), pagestore_page_size(page),
                          pagestore_page_free_fn, page) != 0) {
        pagestore_page_release(&page); /* cannot happen with libzmq 4.3: it never fails */
        zmq_msg_init(frame);
    }
}

static void s_close_frames(zmq_msg_t *frames, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++)
        zmq_msg_close(&frames[i]);
}

/* Frame `i` of the plan as a slice of the range buffer `buf` (which holds file bytes from
 * `range_offset`), with a reference to it. */
static void s_frame_from_range(const read_ctx_t *ctx, const s_plan_t *plan, uint32_t i,
                               range_buf_t *buf, uint64_t range_offset, zmq_msg_t *frame)
{
    uint64_t start, length;
    s_piece(ctx, plan, i, &start, &length);
    zmq_msg_init_data(frame, (void *)(buf->data + (start - range_offset)), length,
                      range_buf_free_fn, range_buf_ref(buf));
}

/* Sends frames [sent, ready) as a partial reply (more = true) when there are any, the plan's
 * last frame is not among them (that one always goes in the final reply), and they carry at
 * least S_PARTIAL_MIN_BYTES or half a range, or `at_boundary` (before another range's wait). */
static void s_stream_flush(s_stream_t *stream, bool at_boundary)
{
    const s_plan_t *plan = stream->plan;
    const read_ctx_t *ctx = stream->ctx;
    s_stream_sanity(stream);
    if (stream->broken || stream->ready <= stream->sent || stream->ready >= plan->page_count)
        return;
    uint64_t first_start, last_start, last_length;
    s_piece(ctx, plan, stream->sent, &first_start, &last_length);
    s_piece(ctx, plan, stream->ready - 1, &last_start, &last_length);
    uint64_t length = last_start + last_length - first_start;
    uint64_t half_range = (uint64_t)ctx->page_size * ctx->range_pages / 2;
    if (!at_boundary && length < S_PARTIAL_MIN_BYTES && length < half_range)
        return;
    uint32_t count = stream->ready - stream->sent;
    msg_t reply;
    msg_read_reply(&reply, stream->request->msg.header.request_id, 0, stream->stat->size,
                   stream->stat->version, first_start, length, count, ctx->page_size);
    reply.body.read_reply.more = true;
    stats_add(ctx->stats, STATS_READ_PARTIAL_REPLIES, 1);
    stats_add(ctx->stats, STATS_BYTES_SERVED, length);
    if (reply_send_partial(stream->sink, stream->request, &reply, stream->frames + stream->sent,
                           count) < 0)
        stream->broken = true; /* frames were closed; the final reply will fail the same way */
    stream->sent = stream->ready;
    s_stream_sanity(stream);
}

/* ufs_read_progress callback of a streamed READ's range (see s_stream_t): every frame of the
 * range now wholly inside the first `filled` bytes of the buffer is set up, then flushed. */
static void s_stream_on_progress(void *arg, size_t filled)
{
    s_stream_t *stream = arg;
    if (stream->buf == NULL)
        return;
    uint32_t end = stream->range_first + stream->range_pieces;
    uint32_t i = stream->ready > stream->range_first ? stream->ready : stream->range_first;
    for (; i < end; i++) {
        uint64_t start, length;
        s_piece(stream->ctx, stream->plan, i, &start, &length);
        if (start + length > stream->range_offset + filled)
            break;
        s_frame_from_range(stream->ctx, stream->plan, i, stream->buf, stream->range_offset,
                           &stream->frames[i]);
        stream->ready = i + 1;
    }
    s_stream_flush(stream, false);
}

bool read_try_hit(const read_ctx_t *ctx, reply_sink_t *sink, node_request_t *request)
{
    assert(ctx != NULL && sink != NULL && request != NULL);
    assert(request->msg.header.type == MSG_READ_REQ);
    const msg_read_request_t *read = &request->msg.body.read_request;
    ufs_stat_t stat;
    int rc = read_resolve(ctx, request->uri, read->version, false, &stat);
    if (rc == 1)
        return false;
    if (rc == 0 && stat.is_dir)
        rc = shoal_fail(SHOAL_EISDIR, "%s is a directory", request->uri);
    s_plan_t plan;
    if (rc == 0)
        rc = s_plan(ctx, stat.size, read->offset, read->length, &plan);
    if (rc < 0) {
        reply_error(sink, request, rc, "%s", shoal_last_error());
        return true;
    }
    uint8_t file_key[PAGESTORE_FILE_KEY_SIZE];
    pagestore_file_key(request->uri, stat.version, file_key);
    zmq_msg_t *frames = plan.page_count ? malloc(plan.page_count * sizeof *frames) : NULL;
    if (plan.page_count && frames == NULL)
        return false;
    for (uint32_t i = 0; i < plan.page_count; i++) {
        uint64_t index = plan.first_page + i;
        pagestore_page_t *page = NULL;
        if (s_get_piece(ctx, &plan, i, file_key, &page) != 0 ||
            pagestore_page_full_size(page) != s_page_length(ctx, stat.size, index)) {
            pagestore_page_release(&page);
            s_close_frames(frames, i);
            free(frames);
            return false; /* a miss: the fetch pool does the whole request */
        }
        s_frame_from_page(&frames[i], page);
    }
    stats_add(ctx->stats, STATS_PAGE_HITS, plan.page_count);
    s_reply_read(ctx, sink, request, &stat, &plan, frames);
    free(frames);
    stats_observe(ctx->stats, STATS_LAT_READ_HIT, clock_mono_ns() - request->received_ns);
    return true;
}

/*
 * The flight leader's work: one ufs_read of the whole range (clipped to the end of the file)
 * with the version, so the UFS refuses (ESTALE) instead of mixing versions; a short read means
 * the file is shorter than its metadata said, which is also a changed file. Storing the pages
 * is left to the caller (s_pending_finish), after it has answered.
 */
static int s_fetch_range(void *arg, range_buf_t **buf_out)
{
    s_fetch_t *fetch = arg;
    const read_ctx_t *ctx = fetch->ctx;
    uint64_t range_bytes = (uint64_t)ctx->page_size * ctx->range_pages;
    uint64_t offset = fetch->range_index * range_bytes;
    if (offset >= fetch->file_size)
        return shoal_fail(SHOAL_EINTERNAL, "range %llu is past the end of %s",
                          (unsigned long long)fetch->range_index, fetch->uri);
    uint64_t want =
        fetch->file_size - offset < range_bytes ? fetch->file_size - offset : range_bytes;
    if (fetch->forward_to != NULL && /* not the owner: ask it once, else read through */
        forward_read_range(ctx->forward, fetch->forward_to, fetch->uri, fetch->version,
                           fetch->file_size, fetch->range_index, buf_out) == 0)
        return 0;
    range_buf_t *buf = range_buf_get(ctx->ranges, want);
    if (buf == NULL)
        return shoal_fail(SHOAL_ENOMEM, "no memory for a %llu-byte range",
                          (unsigned long long)want);
    stats_add(ctx->stats, STATS_UFS_REQUESTS, 1);
    stats_add(ctx->stats, STATS_UFS_READS, 1);
    s_stream_t *stream = fetch->stream;
    ufs_progress_t progress = {.fn = s_stream_on_progress, .arg = stream};
    if (stream) {
        stream->buf = buf;
        stream->range_offset = offset;
    }
    int64_t got = ufs_read_progress(ctx->ufs, fetch->uri, fetch->version[0] ? fetch->version : NULL,
                                    offset, buf->data, want, stream ? &progress : NULL);
    if (stream)
        stream->buf = NULL;
    if (got >= 0 && (uint64_t)got < want)
        got = shoal_fail(SHOAL_ESTALE, "%s: %lld bytes at %llu, expected %llu: the file changed",
                         fetch->uri, (long long)got, (unsigned long long)offset,
                         (unsigned long long)want);
    if (got < 0) {
        stats_add(ctx->stats, STATS_UFS_ERRORS, 1);
        if (got == SHOAL_ESTALE)
            stats_add(ctx->stats, STATS_UFS_STALE, 1);
        log_warn("read %s at %llu: %s", fetch->uri, (unsigned long long)offset, shoal_last_error());
        range_buf_release(&buf);
        return (int)got;
    }
    stats_add(ctx->stats, STATS_UFS_BYTES_READ, (uint64_t)got);
    buf->len = (size_t)got;
    *buf_out = buf;
    return 0;
}

/* Ends a pending range: when this request must store it, hands it (buffer and held flight) to
 * the store queue, or with `now` (or a full queue) stores it here; then ends the held flight
 * and drops the buffer reference. */
static void s_pending_finish(const read_ctx_t *ctx, s_pending_t *pending, bool now)
{
    if (pending->must_store && !now &&
        storeq_submit(ctx->storeq, pending->file_key, pending->range_index, &pending->buf,
                      &pending->held)) {
        pending->must_store = false;
        return;
    }
    if (pending->must_store)
        storeq_store(ctx->storeq, pending->file_key, pending->range_index, pending->buf);
    flight_release(ctx->flights, &pending->held);
    range_buf_release(&pending->buf);
    pending->must_store = false;
}

/*
 * Gets the bytes of range `range_index` through single flight into pending->buf (a reference).
 * When this call led the flight of a stored range, pending->must_store is set and the flight is
 * held until s_pending_finish stores the pages; call that after the reply has gone out. With
 * `wait_stored`, a joined flight is waited for until its pages are stored.
 */
static int s_range(const read_ctx_t *ctx, const char *uri, const ufs_stat_t *stat,
                   const uint8_t *file_key, uint64_t range_index, bool store, bool wait_stored,
                   const char *forward_to, s_stream_t *stream, s_pending_t *pending)
{
    s_fetch_t fetch = {
        .ctx = ctx,
        .uri = uri,
        .version = stat->version,
        .file_key = file_key,
        .range_index = range_index,
        .file_size = stat->size,
        .forward_to = forward_to,
        .stream = stream,
    };
    memset(pending, 0, sizeof *pending);
    pending->range_index = range_index;
    memcpy(pending->file_key, file_key, sizeof pending->file_key);
    flight_key_t key = {.range_index = range_index, .store = store};
    memcpy(key.file_key, file_key, sizeof key.file_key);
    bool joined = false;
    int rc = flight_do(ctx->flights, &key, s_fetch_range, &fetch, wait_stored, &pending->buf,
                       &joined, store ? &pending->held : NULL);
    if (joined)
        stats_add(ctx->stats, STATS_SINGLEFLIGHT_JOINS, 1);
    if (rc == SHOAL_ESTALE)
        meta_cache_expire(ctx->meta, uri);
    pending->must_store = rc >= 0 && store && !joined;
    return rc;
}

/*
 * Range by range: if every page of the span inside the range is in the store, those pins are
 * the frames; otherwise the range comes through single flight and its buffer provides the
 * frames (pins taken for that range are dropped: mixing would gain nothing). The reply goes out
 * first; the ranges this request fetched are stored after it, while their flights stay held so
 * that misses arriving meanwhile share the buffer instead of reading the UFS again.
 */
void read_serve(const read_ctx_t *ctx, reply_sink_t *sink, node_request_t *request)
{
    assert(ctx != NULL && sink != NULL && request != NULL);
    assert(request->msg.header.type == MSG_READ_REQ);
    const msg_read_request_t *read = &request->msg.body.read_request;
    ufs_stat_t stat;
    int rc = read_resolve(ctx, request->uri, read->version, true, &stat);
    if (rc == 0 && stat.is_dir)
        rc = shoal_fail(SHOAL_EISDIR, "%s is a directory", request->uri);
    s_plan_t plan;
    if (rc == 0)
        rc = s_plan(ctx, stat.size, read->offset, read->length, &plan);
    zmq_msg_t *frames = NULL;
    s_pending_t *pending = NULL;
    uint32_t pending_count = 0;
    if (rc == 0 && plan.page_count &&
        ((frames = malloc(plan.page_count * sizeof *frames)) == NULL ||
         (pending = malloc((plan.page_count / ctx->range_pages + 2) * sizeof *pending)) == NULL))
        rc = shoal_fail(SHOAL_ENOMEM, "out of memory");
    if (rc < 0) {
        free(frames);
        reply_error(sink, request, rc, "%s", shoal_last_error());
        return;
    }
    uint8_t file_key[PAGESTORE_FILE_KEY_SIZE];
    pagestore_file_key(request->uri, stat.version, file_key);
    bool store = (read->flags & MSG_READ_NO_CACHE) == 0;
    s_stream_t stream = {.ctx = ctx,
                         .sink = sink,
                         .request = request,
                         .stat = &stat,
                         .plan = &plan,
                         .frames = frames};
    bool streamed = (read->flags & MSG_READ_STREAM) != 0;
    uint32_t done = 0;
    while (done < plan.page_count) {
        uint64_t index = plan.first_page + done;
        uint64_t range_index = index / ctx->range_pages;
        uint64_t range_end = (range_index + 1) * ctx->range_pages; /* first page after it */
        uint32_t in_range = (uint32_t)((plan.first_page + plan.page_count < range_end
                                            ? plan.first_page + plan.page_count
                                            : range_end) -
                                       index);
        uint32_t hits = 0;
        for (; hits < in_range; hits++) {
            pagestore_page_t *page = NULL;
            if (s_get_piece(ctx, &plan, done + hits, file_key, &page) != 0 ||
                pagestore_page_full_size(page) != s_page_length(ctx, stat.size, index + hits)) {
                pagestore_page_release(&page);
                break;
            }
            s_frame_from_page(&frames[done + hits], page);
        }
        if (hits == in_range) {
            stats_add(ctx->stats, STATS_PAGE_HITS, hits);
            done += in_range;
            stream.ready = done;
            continue;
        }
        s_close_frames(frames + done, hits);
        stats_add(ctx->stats, STATS_PAGE_HITS, hits);
        stats_add(ctx->stats, STATS_PAGE_MISSES, in_range - hits);
        s_pending_t *fetched = &pending[pending_count];
        char owner[MSG_ENDPOINT_MAX + 1];
        bool forward = forward_owner(ctx->forward, read->flags, request->uri, range_index, owner,
                                     sizeof owner);
        if (streamed) {
            s_stream_flush(&stream, true); /* what is ready leaves before the wait */
            stream.range_first = done;
            stream.range_pieces = in_range;
        }
        rc = s_range(ctx, request->uri, &stat, file_key, range_index, store && !forward, false,
                     forward ? owner : NULL, streamed ? &stream : NULL, fetched);
        if (rc < 0)
            break;
        pending_count++;
        uint64_t range_offset = range_index * ctx->range_pages * ctx->page_size;
        /* s_fetch_range returned exactly the range's bytes, so every slice is in the buffer;
         * progress reports may have set up the first ones already */
        for (uint32_t i = stream.ready > done ? stream.ready - done : 0; i < in_range; i++)
            s_frame_from_range(ctx, &plan, done + i, fetched->buf, range_offset, &frames[done + i]);
        done += in_range;
        stream.ready = done;
        s_stream_sanity(&stream);
    }
    size_t to_store = 0; /* ranges stored after the reply: counted in the store queue's depth */
    for (uint32_t i = 0; i < pending_count; i++)
        to_store += pending[i].must_store;
    storeq_announce(ctx->storeq, to_store);
    if (rc < 0) {
        /* frames [0, sent) went out; the ones set up since are closed */
        uint32_t set_up = stream.ready > done ? stream.ready : done;
        s_close_frames(frames + stream.sent, set_up - stream.sent);
        reply_error(sink, request, rc, "%s", shoal_last_error());
    } else if (stream.sent > 0) {
        /* the rest of a streamed READ: frames [sent, page_count), more = false */
        s_plan_t rest = plan;
        uint64_t start, length;
        s_piece(ctx, &plan, stream.sent, &start, &length);
        rest.first_page = plan.first_page + stream.sent;
        rest.page_count = plan.page_count - stream.sent;
        rest.span_offset = start;
        rest.span_length = plan.span_offset + plan.span_length - start;
        s_reply_read(ctx, sink, request, &stat, &rest, frames + stream.sent);
        stats_observe(ctx->stats, STATS_LAT_READ_MISS, clock_mono_ns() - request->received_ns);
    } else {
        s_reply_read(ctx, sink, request, &stat, &plan, frames);
        stats_observe(ctx->stats, STATS_LAT_READ_MISS, clock_mono_ns() - request->received_ns);
    }
    free(frames);
    for (uint32_t i = 0; i < pending_count; i++)
        s_pending_finish(ctx, &pending[i], false);
    storeq_unannounce(ctx->storeq, to_store);
    free(pending);
}

void read_load(const read_ctx_t *ctx, reply_sink_t *sink, node_request_t *request)
{
    assert(ctx != NULL && sink != NULL && request != NULL);
    assert(request->msg.header.type == MSG_LOAD_REQ);
    const msg_load_request_t *load = &request->msg.body.load_request;
    ufs_stat_t stat;
    int rc = read_resolve(ctx, request->uri, load->version, true, &stat);
    if (rc == 0 && stat.is_dir)
        rc = shoal_fail(SHOAL_EISDIR, "%s is a directory: LOAD takes files", request->uri);
    if (rc < 0) {
        reply_error(sink, request, rc, "%s", shoal_last_error());
        return;
    }
    uint64_t offset = load->offset;
    uint64_t length = load->length;
    if (offset > stat.size)
        offset = stat.size;
    if (length == 0 || length > stat.size - offset)
        length = stat.size - offset;
    msg_t reply;
    msg_init(&reply, MSG_LOAD_REP, 0, 0);
    msg_load_reply_t *out = &reply.body.load_reply;
    if (length > 0) {
        uint8_t file_key[PAGESTORE_FILE_KEY_SIZE];
        pagestore_file_key(request->uri, stat.version, file_key);
        uint64_t first = offset / ctx->page_size;
        uint64_t last = (offset + length - 1) / ctx->page_size;
        for (uint64_t range_index = first / ctx->range_pages;
             range_index <= last / ctx->range_pages; range_index++) {
            uint64_t lo = range_index * ctx->range_pages;
            uint64_t hi = lo + ctx->range_pages - 1;
            lo = lo < first ? first : lo;
            hi = hi > last ? last : hi;
            uint64_t missing = 0, missing_bytes = 0;
            for (uint64_t index = lo; index <= hi; index++) {
                bool found = false;
                if (pagestore_contains(ctx->store, file_key, index, &found) == 0 && found) {
                    out->pages_cached++;
                } else {
                    missing++;
                    missing_bytes += s_page_length(ctx, stat.size, index);
                }
            }
            if (missing == 0)
                continue;
            /* LOAD promises stored pages: store before answering, or wait for the leader's */
            s_pending_t fetched;
            rc = s_range(ctx, request->uri, &stat, file_key, range_index, true, true, NULL, NULL,
                         &fetched);
            s_pending_finish(ctx, &fetched, true);
            if (rc < 0) {
                reply_error(sink, request, rc, "%s", shoal_last_error());
                return;
            }
            out->pages_loaded += missing;
            out->bytes_loaded += missing_bytes;
        }
    }
    stats_add(ctx->stats, STATS_LOAD_PAGES_LOADED, out->pages_loaded);
    stats_add(ctx->stats, STATS_LOAD_PAGES_CACHED, out->pages_cached);
    reply_send(sink, request, &reply, NULL, 0);
}
