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
#include "hrw.h"
#include "log.h"
#include "metadisk.h"
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
    ufs_stat_t *stat;          /* its file version (a cold READ's is set on its first bytes) */
    struct s_plan *plan;       /* its span (likewise) */
    zmq_msg_t *frames;         /* plan->page_count frames (a cold READ's: allocated then) */
    bool unplanned;            /* cold: stat, plan and frames wait for the reply's headers */
    const ufs_stat_t *learnt;  /* cold: the leader's stat_out, filled from the headers */
    uint64_t range_pages_left; /* cold: plan pages from the first one to the range's end */
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
    bool cold;               /* no version: the GET learns it (version "", file_size unknown) */
    bool meta_later;         /* cold: the metadata record goes with the pages (s_pending_t) */
    ufs_stat_t learnt;       /* what the read's own reply said (ufs_read_stat's stat_out) */
    bool from_store;         /* the leader found every page stored meanwhile: nothing to store */
} s_fetch_t;

/* A fetched range whose flight this request took part in: its buffer, and, when the request
 * led the flight of a range to be stored, the held flight to end once the pages are stored. */
typedef struct s_pending {
    uint64_t range_index;                      /* the range */
    uint8_t file_key[PAGESTORE_FILE_KEY_SIZE]; /* its file version */
    range_buf_t *buf;                          /* its bytes (one reference) */
    flight_t *held;                            /* held flight, or NULL */
    bool must_store;                           /* this request stores the pages */
    bool joined;                               /* another request's flight read it */
    const char *meta_uri; /* cold leader: write this uri's record (buf->stat) after the pages */
} s_pending_t;

/* True when normalised `uri` lies under an --immutable-mount: its metadata never goes stale. */
static bool s_immutable(const read_ctx_t *ctx, const char *uri)
{
    if (ctx->immutable == NULL)
        return false;
    for (size_t i = 0; i < mount_table_count(ctx->immutable); i++)
        if (mount_is_under(uri, mount_table_get(ctx->immutable, i)))
            return true;
    return false;
}

/* A "not found" the negative cache answers: counted, with a last error. */
static int s_negative_hit(const read_ctx_t *ctx, const char *uri)
{
    stats_add(ctx->stats, STATS_NEGATIVE_HITS, 1);
    return shoal_fail(SHOAL_ENOENT, "%s: not found (remembered for the negative TTL)", uri);
}

/* On a miss of the memory cache, reads back what this node recorded of `uri` before a restart
 * (metadisk.h) as never-fresh metadata. Not on the router thread (a RocksDB read). */
static void s_recall(const read_ctx_t *ctx, const char *uri, int64_t now)
{
    ufs_stat_t recalled;
    bool fresh = false;
    if (meta_cache_get(ctx->meta, uri, now, &recalled, &fresh) == 0 ||
        meta_cache_missing(ctx->meta, uri, now) || !metadisk_get(ctx->store, uri, &recalled))
        return;
    stats_add(ctx->stats, STATS_META_RECALLED, 1);
    meta_cache_put_recalled(ctx->meta, uri, &recalled, now);
}

/* True for the object stores whose "directories" are key prefixes (s3, az, hf): there a GET's
 * "not found" says no object has that name, not that nothing is there. An HTTP origin has no
 * directories, and a file:// directory is no ENOENT. */
static bool s_has_prefixes(const char *uri)
{
    return strncmp(uri, "s3://", 5) == 0 || strncmp(uri, "az://", 5) == 0 ||
           strncmp(uri, "hf://", 5) == 0;
}

int read_resolve(const read_ctx_t *ctx, const char *uri, const char *want_version, bool may_ask_ufs,
                 ufs_stat_t *out)
{
    assert(ctx != NULL && uri != NULL && out != NULL);
    bool want = want_version != NULL && want_version[0] != '\0';
    bool fresh = false;
    int64_t now = clock_mono_ns();
    if (!want && meta_cache_missing_entirely(ctx->meta, uri, now))
        return s_negative_hit(ctx, uri);
    if (may_ask_ufs)
        s_recall(ctx, uri, now);
    if (meta_cache_get(ctx->meta, uri, now, out, &fresh) == 0) {
        if (fresh || s_immutable(ctx, uri)) {
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
    stats_add(ctx->stats, STATS_ORIGIN_HEADS, 1);
    memset(out, 0, sizeof *out);
    int rc = ufs_stat(ctx->ufs, uri, out);
    if (rc < 0) {
        stats_add(ctx->stats, STATS_UFS_ERRORS, 1);
        if (rc != SHOAL_ENOENT)
            log_warn("stat %s: %s", uri, shoal_last_error());
        else
            meta_cache_put_missing(ctx->meta, uri, clock_mono_ns());
        return rc;
    }
    meta_cache_put(ctx->meta, uri, out, clock_mono_ns());
    metadisk_put(ctx->store, uri, out);
    if (want && strcmp(out->version, want_version) != 0)
        return shoal_fail(SHOAL_ESTALE, "%s: version is now %s, not %s", uri, out->version,
                          want_version);
    return 0;
}

#define S_COLD  2 /* s_read_meta: no version known; the GET of the range learns it */
#define S_STALE 3 /* s_read_meta: metadata past its TTL (in *out): served if its pages are held */

/*
 * The version a READ is served at. Without a version: a fresh (or immutable) cache entry (0);
 * a file found missing within the negative TTL (SHOAL_ENOENT, no UFS); an entry past its TTL
 * (S_STALE, *out holds it); none (S_COLD). With a version and file_size: the cache when it
 * knows that version, SHOAL_ESTALE when its fresh entry has another, else the client's version
 * and size (0; mtime 0): no stat, the fetch carries the version as a precondition. With a
 * version and no size: read_resolve (1 when it would need the UFS but may not ask it).
 */
static uint64_t s_page_length(const read_ctx_t *ctx, uint64_t size, uint64_t index);

static int s_meta_of(const read_ctx_t *ctx, const char *uri, const char *version, uint32_t flags,
                     uint64_t file_size, bool may_ask_ufs, ufs_stat_t *out)
{
    version = version ? version : "";
    int64_t now = clock_mono_ns();
    bool fresh = false;
    if (version[0] == '\0' && (flags & MSG_READ_REVALIDATE)) {
        /* the client saw this file change (a later range's owner refused the version this
         * node gave it): whatever is cached here is the old version; go to the UFS, and mark
         * the entry refused so a still-held flight of the old version is not joined */
        stats_add(ctx->stats, STATS_REVALIDATE_READS, 1);
        meta_cache_expire(ctx->meta, uri);
        return S_COLD;
    }
    if (version[0] == '\0') {
        if (meta_cache_missing(ctx->meta, uri, now))
            return s_negative_hit(ctx, uri);
        if (may_ask_ufs)
            s_recall(ctx, uri, now);
        if (meta_cache_get(ctx->meta, uri, now, out, &fresh) != 0)
            return S_COLD;
        if (fresh || s_immutable(ctx, uri)) {
            stats_add(ctx->stats, STATS_META_HITS, 1);
            return 0;
        }
        /* past its TTL; after an ESTALE refusal the version is known wrong: go cold */
        return meta_cache_refused(ctx->meta, uri) ? S_COLD : S_STALE;
    }
    /* 0 counts as unknown too: a client that zero-fills the request (libshoal before the size
     * was sent) means "unknown", and an empty file costs one stat this way, nothing worse */
    if (file_size == MSG_SIZE_UNKNOWN || file_size == 0)
        return read_resolve(ctx, uri, version, may_ask_ufs, out);
    if (meta_cache_get(ctx->meta, uri, now, out, &fresh) == 0) {
        if (strcmp(out->version, version) == 0) {
            stats_add(ctx->stats, STATS_META_HITS, 1);
            return 0;
        }
        if (fresh)
            return shoal_fail(SHOAL_ESTALE, "%s: version is now %s, not %s", uri, out->version,
                              version);
    }
    memset(out, 0, sizeof *out);
    out->size = file_size;
    snprintf(out->version, sizeof out->version, "%s", version);
    return 0;
}

static int s_read_meta(const read_ctx_t *ctx, const node_request_t *request, bool may_ask_ufs,
                       ufs_stat_t *out)
{
    const msg_read_request_t *read = &request->msg.body.read_request;
    return s_meta_of(ctx, request->uri, read->version, read->flags, read->file_size, may_ask_ufs,
                     out);
}

int read_locate_meta(const read_ctx_t *ctx, const char *uri, const char *version,
                     uint64_t file_size, ufs_stat_t *out)
{
    assert(ctx != NULL && uri != NULL && out != NULL);
    int rc = s_meta_of(ctx, uri, version, 0, file_size, false, out);
    if (rc == S_COLD || rc == S_STALE)
        return 1;
    if (rc == 0 && out->is_dir)
        return shoal_fail(SHOAL_EISDIR, "%s is a directory", uri);
    return rc;
}

uint64_t read_page_length(const read_ctx_t *ctx, uint64_t size, uint64_t index)
{
    return s_page_length(ctx, size, index);
}

/* A READ was served from metadata past its TTL: queue the file's one background revalidation
 * unless one is in flight (reval.h). */
static void s_revalidate_later(const read_ctx_t *ctx, const char *uri)
{
    stats_add(ctx->stats, STATS_STALE_SERVED, 1);
    if (ctx->reval != NULL && meta_cache_begin_revalidate(ctx->meta, uri))
        reval_submit(ctx->reval, uri);
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
    reply.body.read_reply.mtime = stat->mtime;
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
    reply.body.read_reply.mtime = stream->stat->mtime;
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
/* A cold streamed READ's first bytes arrived: the reply's headers gave the size and version
 * (stream->learnt, where the UFS fills them early); plans the span with them and sets up its
 * frames. False while they are unknown, or when the span cannot be planned (then the READ is
 * answered once, at the end, as a READ of a connector that reports them only then). */
static bool s_stream_plan_cold(s_stream_t *stream)
{
    const ufs_stat_t *learnt = stream->learnt;
    if (learnt == NULL || learnt->version[0] == '\0' || learnt->size == 0)
        return false;
    const read_ctx_t *ctx = stream->ctx;
    const msg_read_request_t *read = &stream->request->msg.body.read_request;
    s_plan_t plan;
    zmq_msg_t *frames = NULL;
    if (s_plan(ctx, learnt->size, read->offset, read->length, &plan) != 0 || plan.page_count == 0 ||
        (frames = malloc(plan.page_count * sizeof *frames)) == NULL) {
        stream->learnt = NULL;
        return false;
    }
    *stream->stat = *learnt;
    *stream->plan = plan;
    stream->frames = frames;
    uint64_t range_end = (plan.first_page / ctx->range_pages + 1) * ctx->range_pages;
    uint64_t plan_end = plan.first_page + plan.page_count;
    stream->range_first = 0;
    stream->range_pieces =
        (uint32_t)((plan_end < range_end ? plan_end : range_end) - plan.first_page);
    stream->unplanned = false;
    return true;
}

static void s_stream_on_progress(void *arg, size_t filled)
{
    s_stream_t *stream = arg;
    if (stream->buf == NULL)
        return;
    if (stream->unplanned && !s_stream_plan_cold(stream))
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
    int rc = s_read_meta(ctx, request, false, &stat);
    if (rc == 1 || rc == S_COLD)
        return false;
    bool stale = rc == S_STALE; /* served from the held version if every page is here */
    if (stale)
        rc = 0;
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
    if (stale)
        s_revalidate_later(ctx, request->uri);
    stats_observe(ctx->stats, STATS_LAT_READ_HIT, clock_mono_ns() - request->received_ns);
    return true;
}

/*
 * The flight leader's work: one UFS read of the whole range (clipped to the end of the file)
 * with the version, so the UFS refuses (ESTALE) instead of mixing versions; a short read means
 * the file is shorter than its metadata said, which is also a changed file. A cold read has no
 * version: its GET is the stat (ufs_read_stat), the buffer carries what it learnt, and the
 * metadata cache is filled from it (a missing file goes to the negative cache). Storing the
 * pages is left to the caller (s_pending_finish), after it has answered.
 */
/*
 * Single flight's gap: a request that found a page of this range missing can reach flight_do
 * just after the flight that fetched the range stored its pages and ended, and would lead a
 * second UFS read of the same bytes. The leader of a versioned range therefore looks in the
 * store first: when every page of the range is there (of the right length), it copies them
 * into the buffer (a rare, small copy) and sets from_store, and no UFS request is made.
 */
static bool s_range_from_store(const read_ctx_t *ctx, const s_fetch_t *fetch, uint64_t want,
                               range_buf_t **buf_out)
{
    uint64_t page_size = ctx->page_size;
    uint64_t first = fetch->range_index * ctx->range_pages;
    uint64_t pages = (want + page_size - 1) / page_size;
    range_buf_t *buf = NULL;
    for (uint64_t i = 0; i < pages; i++) {
        uint64_t length = want - i * page_size < page_size ? want - i * page_size : page_size;
        pagestore_page_t *page = NULL;
        if (pagestore_get(ctx->store, fetch->file_key, first + i, &page) != 0 ||
            pagestore_page_size(page) != length) {
            pagestore_page_release(&page);
            range_buf_release(&buf);
            return false;
        }
        if (buf == NULL && (buf = range_buf_get(ctx->ranges, want)) == NULL) {
            pagestore_page_release(&page);
            return false;
        }
        memcpy(buf->data + i * page_size, pagestore_page_data(page), length);
        pagestore_page_release(&page);
    }
    if (buf == NULL)
        return false;
    buf->len = (size_t)want;
    *buf_out = buf;
    return true;
}

static int s_fetch_range(void *arg, range_buf_t **buf_out)
{
    s_fetch_t *fetch = arg;
    const read_ctx_t *ctx = fetch->ctx;
    uint64_t range_bytes = (uint64_t)ctx->page_size * ctx->range_pages;
    uint64_t offset = fetch->range_index * range_bytes;
    uint64_t want = range_bytes;
    if (!fetch->cold) {
        if (offset >= fetch->file_size)
            return shoal_fail(SHOAL_EINTERNAL, "range %llu is past the end of %s",
                              (unsigned long long)fetch->range_index, fetch->uri);
        if (fetch->file_size - offset < range_bytes)
            want = fetch->file_size - offset;
        if (fetch->forward_to != NULL && /* not the owner: ask it once, else read through */
            forward_read_range(ctx->forward, fetch->forward_to, fetch->uri, fetch->version,
                               fetch->file_size, fetch->range_index, buf_out) == 0)
            return 0;
        if (s_range_from_store(ctx, fetch, want, buf_out)) {
            stats_add(ctx->stats, STATS_FLIGHT_FROM_STORE, 1);
            fetch->from_store = true;
            return 0;
        }
    }
    range_buf_t *buf = fetch->cold ? range_buf_get_unsized(ctx->ranges, want) /* size unknown */
                                   : range_buf_get(ctx->ranges, want);
    if (buf == NULL)
        return shoal_fail(SHOAL_ENOMEM, "no memory for a %llu-byte range",
                          (unsigned long long)want);
    stats_add(ctx->stats, STATS_UFS_REQUESTS, 1);
    stats_add(ctx->stats, STATS_UFS_READS, 1);
    stats_add(ctx->stats, STATS_ORIGIN_GETS, 1);
    if (fetch->cold)
        stats_add(ctx->stats, STATS_COLD_READS, 1);
    s_stream_t *stream = fetch->stream;
    ufs_progress_t progress = {.fn = s_stream_on_progress, .arg = stream};
    if (stream) {
        stream->buf = buf;
        stream->range_offset = offset;
    }
    memset(&fetch->learnt, 0, sizeof fetch->learnt);
    int64_t got = ufs_read_stat(ctx->ufs, fetch->uri,
                                !fetch->cold && fetch->version[0] ? fetch->version : NULL, offset,
                                buf->data, want, stream ? &progress : NULL, &fetch->learnt);
    if (stream)
        stream->buf = NULL;
    if (got >= 0 && fetch->cold) {
        uint64_t size = fetch->learnt.size;
        uint64_t expect = size <= offset ? 0 : size - offset < want ? size - offset : want;
        if ((uint64_t)got != expect)
            got = shoal_fail(SHOAL_ESTALE, "%s: %lld bytes at %llu of a %llu-byte file: it changed",
                             fetch->uri, (long long)got, (unsigned long long)offset,
                             (unsigned long long)size);
    } else if (got >= 0 && (uint64_t)got < want) {
        got = shoal_fail(SHOAL_ESTALE, "%s: %lld bytes at %llu, expected %llu: the file changed",
                         fetch->uri, (long long)got, (unsigned long long)offset,
                         (unsigned long long)want);
    }
    if (got < 0) {
        stats_add(ctx->stats, STATS_UFS_ERRORS, 1);
        if (got == SHOAL_ESTALE)
            stats_add(ctx->stats, STATS_UFS_STALE, 1);
        if (got == SHOAL_ENOENT && fetch->cold && s_has_prefixes(fetch->uri))
            meta_cache_put_missing_object(ctx->meta, fetch->uri, clock_mono_ns());
        else if (got == SHOAL_ENOENT && fetch->cold)
            meta_cache_put_missing(ctx->meta, fetch->uri, clock_mono_ns());
        else
            log_warn("read %s at %llu: %s", fetch->uri, (unsigned long long)offset,
                     shoal_last_error());
        range_buf_release(&buf);
        return (int)got;
    }
    stats_add(ctx->stats, STATS_UFS_BYTES_READ, (uint64_t)got);
    buf->len = (size_t)got;
    buf->stat = fetch->learnt;
    buf->has_stat = true;
    if (fetch->cold) {
        meta_cache_put(ctx->meta, fetch->uri, &fetch->learnt, clock_mono_ns());
        if (!fetch->meta_later) /* else the store thread writes it after the pages */
            metadisk_put(ctx->store, fetch->uri, &fetch->learnt);
    }
    *buf_out = buf;
    return 0;
}

/* Ends a pending range: when this request must store it, hands it (buffer, held flight and the
 * metadata record of a cold leader) to the store queue, or with `now` (or a full queue) stores
 * it here; then ends the held flight and drops the buffer reference. */
static void s_pending_finish(const read_ctx_t *ctx, s_pending_t *pending, bool now)
{
    if (pending->must_store && !now &&
        storeq_submit(ctx->storeq, pending->file_key, pending->range_index, &pending->buf,
                      &pending->held, pending->meta_uri)) {
        pending->must_store = false;
        pending->meta_uri = NULL;
        return;
    }
    if (pending->must_store)
        storeq_store(ctx->storeq, pending->file_key, pending->range_index, pending->buf);
    if (pending->meta_uri != NULL && pending->buf != NULL)
        metadisk_put(ctx->store, pending->meta_uri, &pending->buf->stat);
    pending->meta_uri = NULL;
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
    /* a cold flight of this range (its GET learning the version) may be running or held: its
     * bytes serve when it learnt the version wanted; another version means a redo here */
    flight_key_t cold_key = {.range_index = range_index, .store = store, .cold = true};
    hrw_uri_key(uri, cold_key.file_key);
    if (flight_join(ctx->flights, &cold_key, &pending->buf) == 1 && pending->buf != NULL) {
        if (pending->buf->has_stat && strcmp(pending->buf->stat.version, stat->version) == 0) {
            stats_add(ctx->stats, STATS_SINGLEFLIGHT_JOINS, 1);
            return 0;
        }
        range_buf_release(&pending->buf);
    }
    flight_key_t key = {.range_index = range_index, .store = store};
    memcpy(key.file_key, file_key, sizeof key.file_key);
    bool joined = false;
    int rc = flight_do(ctx->flights, &key, s_fetch_range, &fetch, wait_stored, &pending->buf,
                       &joined, store ? &pending->held : NULL);
    if (joined)
        stats_add(ctx->stats, STATS_SINGLEFLIGHT_JOINS, 1);
    if (rc == SHOAL_ESTALE)
        meta_cache_expire(ctx->meta, uri);
    pending->must_store = rc >= 0 && store && !joined && !fetch.from_store;
    return rc;
}

/*
 * A cold range: `range_index` of `uri` without a version, through single flight keyed on its
 * range key (hrw_uri_range_key: uri key + range index), the leader's GET learning the version.
 * On success pending->buf->stat is the version every byte of the buffer is of, for the leader
 * and every joiner alike, and pending->file_key that version's key (the pages are stored
 * under it). Otherwise as s_range.
 */
static int s_cold_range(const read_ctx_t *ctx, const char *uri, uint64_t range_index, bool store,
                        bool wait_stored, s_stream_t *stream, s_pending_t *pending)
{
    s_fetch_t fetch = {
        .ctx = ctx,
        .uri = uri,
        .version = "",
        .range_index = range_index,
        .stream = stream,
        .cold = true,
        .meta_later = store, /* a leader that stores writes the record with its pages */
    };
    memset(pending, 0, sizeof *pending);
    pending->range_index = range_index;
    if (stream)
        stream->learnt = &fetch.learnt; /* the UFS fills it from the headers (http) */
    flight_key_t key = {.range_index = range_index, .store = store, .cold = true};
    _Static_assert(sizeof key.file_key == HRW_URI_KEY_LEN, "a flight key holds a uri key");
    hrw_uri_key(uri, key.file_key);
    bool joined = false;
    int rc = flight_do(ctx->flights, &key, s_fetch_range, &fetch, wait_stored, &pending->buf,
                       &joined, store ? &pending->held : NULL);
    if (joined)
        stats_add(ctx->stats, STATS_SINGLEFLIGHT_JOINS, 1);
    pending->joined = joined;
    if (rc == SHOAL_ESTALE)
        meta_cache_expire(ctx->meta, uri);
    if (rc >= 0 && (pending->buf == NULL || !pending->buf->has_stat)) { /* cannot happen */
        flight_release(ctx->flights, &pending->held);
        range_buf_release(&pending->buf);
        return shoal_fail(SHOAL_EINTERNAL, "cold read of %s learnt no version", uri);
    }
    if (rc >= 0)
        pagestore_file_key(uri, pending->buf->stat.version, pending->file_key);
    pending->must_store = rc >= 0 && store && !joined && pending->buf->len > 0;
    if (rc >= 0 && store && !joined) {
        if (pending->must_store)
            pending->meta_uri = uri; /* after the pages, off the reply's path */
        else
            metadisk_put(ctx->store, uri, &pending->buf->stat); /* no pages: write it now */
    }
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
    uint64_t range_bytes = (uint64_t)ctx->page_size * ctx->range_pages;
    bool store = (read->flags & MSG_READ_NO_CACHE) == 0;
    bool streamed = (read->flags & MSG_READ_STREAM) != 0;
    ufs_stat_t stat;
    memset(&stat, 0, sizeof stat);
    int rc = s_read_meta(ctx, request, true, &stat);
    if (rc == S_STALE) {
        /* past the TTL: the held version serves while one revalidation runs in the
         * background; without its pages the GET of the range learns the current one */
        bool found = false;
        uint64_t first = (read->offset < stat.size ? read->offset : 0) / ctx->page_size;
        uint8_t stale_key[PAGESTORE_FILE_KEY_SIZE];
        pagestore_file_key(request->uri, stat.version, stale_key);
        if (read->offset >= stat.size ||
            (pagestore_contains(ctx->store, stale_key, first, &found) == 0 && found)) {
            s_revalidate_later(ctx, request->uri);
            rc = 0;
        } else {
            rc = S_COLD;
        }
    }
    s_plan_t plan;
    memset(&plan, 0, sizeof plan);
    s_stream_t stream = {
        .ctx = ctx, .sink = sink, .request = request, .stat = &stat, .plan = &plan};
    zmq_msg_t *frames = NULL;
    s_pending_t cold;
    bool have_cold = false;
    if (rc == S_COLD) {
        uint64_t range_index = read->offset / range_bytes;
        char owner[MSG_ENDPOINT_MAX + 1];
        bool forward = forward_owner(ctx->forward, read->flags, request->uri, range_index, owner,
                                     sizeof owner); /* a non-owner reads through, unstored */
        stream.unplanned = true;
        /* after an ESTALE the refused version must not come back from a flight of it that
         * is still held (storing its pages): a joiner that got it waits that flight out and
         * reads once more, as the leader of a new GET */
        char refused[UFS_VERSION_MAX] = "";
        ufs_stat_t old;
        bool old_fresh = false;
        if (meta_cache_refused(ctx->meta, request->uri) &&
            meta_cache_get(ctx->meta, request->uri, clock_mono_ns(), &old, &old_fresh) == 0)
            snprintf(refused, sizeof refused, "%s", old.version);
        rc = s_cold_range(ctx, request->uri, range_index, store && !forward, refused[0] != '\0',
                          streamed ? &stream : NULL, &cold);
        if (rc >= 0 && cold.joined && refused[0] && strcmp(cold.buf->stat.version, refused) == 0) {
            s_pending_finish(ctx, &cold, true);
            rc = s_cold_range(ctx, request->uri, range_index, store && !forward, false,
                              streamed ? &stream : NULL, &cold);
        }
        if (rc >= 0) {
            have_cold = true;
            if (!stream.unplanned && strcmp(stream.stat->version, cold.buf->stat.version) != 0)
                rc = shoal_fail(SHOAL_EINTERNAL, "%s: streamed version changed", request->uri);
            stat = cold.buf->stat;
        }
        frames = stream.frames; /* set up while the bytes arrived, or NULL */
    }
    if (rc == 0 && stat.is_dir)
        rc = shoal_fail(SHOAL_EISDIR, "%s is a directory", request->uri);
    if (rc == 0 && frames == NULL) /* not planned while a cold range streamed in */
        rc = s_plan(ctx, stat.size, read->offset, read->length, &plan);
    s_pending_t *pending = NULL;
    uint32_t pending_count = 0;
    if (rc == 0 && plan.page_count && frames == NULL &&
        (frames = malloc(plan.page_count * sizeof *frames)) == NULL)
        rc = shoal_fail(SHOAL_ENOMEM, "out of memory");
    if (rc == 0 && (plan.page_count || have_cold) &&
        (pending = malloc((plan.page_count / ctx->range_pages + 2) * sizeof *pending)) == NULL)
        rc = shoal_fail(SHOAL_ENOMEM, "out of memory");
    if (rc < 0) {
        if (frames != NULL)
            s_close_frames(frames + stream.sent, stream.ready - stream.sent);
        free(frames);
        if (have_cold)
            s_pending_finish(ctx, &cold, true);
        reply_error(sink, request, rc, "%s", shoal_last_error());
        return;
    }
    stream.unplanned = false;
    stream.frames = frames;
    uint8_t file_key[PAGESTORE_FILE_KEY_SIZE];
    pagestore_file_key(request->uri, stat.version, file_key);
    uint32_t done = 0;
    if (have_cold && plan.page_count == 0) {
        pending[pending_count++] = cold; /* at or past the end: nothing to store */
    } else if (have_cold) {
        /* the cold range holds the plan's first pages: frames from its buffer (progress may
         * have set up the first ones already) */
        uint64_t range_end = (plan.first_page / ctx->range_pages + 1) * ctx->range_pages;
        uint64_t plan_end = plan.first_page + plan.page_count;
        uint32_t in_range =
            (uint32_t)((plan_end < range_end ? plan_end : range_end) - plan.first_page);
        uint64_t range_offset = cold.range_index * range_bytes;
        stats_add(ctx->stats, STATS_PAGE_MISSES, in_range);
        for (uint32_t i = stream.ready; i < in_range; i++)
            s_frame_from_range(ctx, &plan, i, cold.buf, range_offset, &frames[i]);
        pending[pending_count++] = cold;
        done = in_range;
        stream.ready = done;
        s_stream_sanity(&stream);
    }
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
        if (stat.mtime == 0 && fetched->buf->has_stat &&
            strcmp(fetched->buf->stat.version, stat.version) == 0)
            stat.mtime = fetched->buf->stat.mtime; /* a version and size from the client */
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
    int rc = 1;
    bool have_cold = false; /* the range of `offset` came cold (and is stored) */
    uint64_t cold_range = 0;
    bool fresh = false;
    const char *want = load->version ? load->version : "";
    if (!meta_cache_missing(ctx->meta, request->uri, clock_mono_ns()) &&
        meta_cache_get(ctx->meta, request->uri, clock_mono_ns(), &stat, &fresh) != 0) {
        /* no metadata: the GET of the first range is the stat (one request, no HEAD), with or
         * without a version (a LOAD of a later range from a client that learnt the version
         * from range 0 carries no size); a version it did not learn is ESTALE (the bytes it
         * fetched are stored under the version they are of) */
        s_pending_t cold;
        cold_range = load->offset / ((uint64_t)ctx->page_size * ctx->range_pages);
        rc = s_cold_range(ctx, request->uri, cold_range, true, true, NULL, &cold);
        if (rc >= 0) {
            stat = cold.buf->stat;
            have_cold = !cold.buf->stat.is_dir;
            if (want[0] && !stat.is_dir && strcmp(stat.version, want) != 0)
                rc = shoal_fail(SHOAL_ESTALE, "%s: version is now %s, not %s", request->uri,
                                stat.version, want);
        }
        s_pending_finish(ctx, &cold, true);
    }
    if (rc == 1)
        rc = read_resolve(ctx, request->uri, load->version, true, &stat);
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
            if (have_cold && range_index == cold_range) { /* fetched and stored above */
                for (uint64_t index = lo; index <= hi; index++) {
                    out->pages_loaded++;
                    out->bytes_loaded += s_page_length(ctx, stat.size, index);
                }
                continue;
            }
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
