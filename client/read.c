/*
 * read.c - shoal_pread, shoal_pread_stat and shoal_pread_many: no stat before a read (the first
 * range goes versionless to its owner and its reply is the stat, unless the stat cache has a
 * fresh one), the other ranges in flight at once with the version learnt (one version for all
 * bytes), fallbacks per range (next owner, NO_CACHE read-through, the UFS), and a read started
 * over from scratch when the file changed under it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "fallback.h"
#include "local.h"
#include "meta.h"
#include "range.h"
#include "uri.h"

#define CLIENT_OWNER_TRIES        2  /* owners in HRW order tried with a normal READ */
#define CLIENT_NO_CACHE_TRIES     1  /* other live nodes then tried with NO_CACHE */
#define CLIENT_LOCAL_PARALLEL_OPS 64 /* ops of one batch read on several threads */

/* One read of a call, with what the current round learned. */
typedef struct read_job {
    shoal_read_t *read; /* the caller's request and result */
    const char *uri;    /* read->uri's normal form (uri.h): sent, hashed and cached as the node
                         * does; storage owned by the call */
    const char *pin;    /* the version the caller holds (shoal_pread_stat), or NULL: a change
                         * then fails the read instead of restarting it */
    shoal_stat_t stat;  /* the version all bytes come from (valid when known) */
    bool known;         /* stat holds the version to read: cached, stat'ed or learnt */
    bool learning;      /* this round's first range goes out without a stat (learn op) */
    uint64_t length;    /* bytes to read after clipping at the end of the file */
    bool pending;       /* still to be (re)done in this round */
    bool stale;         /* the version changed: redo from scratch */
    bool revalidate;    /* a restart after a change: its learn op says REVALIDATE */
    int error;          /* first error of this round */
} read_job_t;

/* Records the first error of a job with its detail as the thread's last error. */
static void s_job_fail(read_job_t *job, int code, const char *what, const char *detail)
{
    if (code == SHOAL_ESTALE) {
        job->stale = true;
        return;
    }
    if (job->error == 0) {
        char copy[512]; /* detail may be the last-error buffer that shoal_fail rewrites */
        snprintf(copy, sizeof copy, "%s", detail ? detail : what);
        job->error = code;
        shoal_fail(code, "read %s: %s", job->read->uri, copy);
    }
}

/* Takes a stat for a job: a version other than the pinned one is a change; a directory
 * cannot be read; else the read is clipped at the end of the file. */
static void s_job_know(read_job_t *job, const shoal_stat_t *stat)
{
    job->stat = *stat;
    job->known = true;
    if (job->pin && strcmp(stat->version, job->pin) != 0) {
        job->stale = true;
        return;
    }
    if (stat->is_dir) {
        s_job_fail(job, SHOAL_EISDIR, "is a directory", NULL);
        return;
    }
    uint64_t offset = job->read->offset;
    job->length = offset >= stat->size ? 0 : stat->size - offset;
    if (job->length > job->read->length)
        job->length = job->read->length;
}

/* Reads a span straight from the UFS into the buffer. A short answer inside the file means the
 * object changed or the transfer broke: never success with fewer bytes than the stat promised. */
static int s_ufs_read(client_ctx_t *ctx, read_job_t *job, uint64_t offset, uint8_t *dest,
                      uint64_t length)
{
    CLIENT_COUNT(ctx->counters, fallback_ufs, 1);
    int64_t got =
        client_ufs_read(ctx->ufs, job->uri, job->stat.version, offset, dest, (size_t)length);
    if (got < 0)
        return (int)got;
    CLIENT_COUNT(ctx->counters, bytes_ufs, got);
    if ((uint64_t)got != length)
        return shoal_fail(SHOAL_ESTALE, "read %s: the under storage returned %lld of %llu bytes",
                          job->read->uri, (long long)got, (unsigned long long)length);
    return 0;
}

/* The first byte wanted of a job, the end of its range and the span of its first piece. */
static client_range_t s_first_piece(const read_job_t *job, uint64_t length, uint64_t range_bytes)
{
    uint64_t offset = job->read->offset;
    uint64_t index = offset / range_bytes;
    uint64_t room = (index + 1) * range_bytes - offset;
    return (client_range_t){
        .range_index = index, .offset = offset, .length = length < room ? length : room};
}

/* Sets up the READ of one range piece of a job: with the job's version and size when known,
 * else a learn op (versionless, or of the pinned version, size unknown). */
static void s_range_op(client_ctx_t *ctx, read_job_t *job, const client_range_t *range,
                       client_op_t *op)
{
    client_op_init(op, MSG_READ_REQ);
    bool learn = !job->known;
    const char *version = learn ? (job->pin ? job->pin : "") : job->stat.version;
    op->request.body.read_request = (msg_read_request_t){
        .uri = job->uri,
        .version = version,
        .offset = range->offset,
        .length = range->length,
        .file_size = learn ? MSG_SIZE_UNKNOWN : job->stat.size,
    };
    op->dest = (uint8_t *)job->read->buf + (range->offset - job->read->offset);
    op->dest_offset = range->offset;
    op->dest_length = range->length;
    op->learn = learn;
    op->learn_length = range->length;
    /* a restart: range 0's owner may hold the old version's metadata, fresh to it */
    op->read_flags = learn && job->revalidate ? MSG_READ_REVALIDATE : 0;
    op->expect_size = learn ? MSG_SIZE_UNKNOWN : job->stat.size;
    op->expect_version = version;
    op->probe_when_all_down = ctx->ufs == NULL;
    op->target_count = (uint32_t)client_view_range_targets(
        ctx->view, job->uri, range->range_index, CLIENT_OWNER_TRIES, 0, CLIENT_NO_CACHE_TRIES,
        MSG_READ_NO_CACHE, op->targets, CLIENT_TARGETS_MAX);
}

/* A learn op that no node answered: the UFS stats the file (until store/ufs.h's GET that is
 * the stat lands, a stat and a read) and serves the first piece. */
static void s_learn_from_ufs(client_ctx_t *ctx, read_job_t *job, client_op_t *op)
{
    shoal_stat_t stat;
    CLIENT_COUNT(ctx->counters, fallback_ufs, 1);
    int rc = client_ufs_stat(ctx->ufs, job->uri, &stat);
    if (rc != 0) {
        s_job_fail(job, rc, NULL, shoal_last_error());
        return;
    }
    client_stat_remember(ctx->stats, job->uri, &stat);
    s_job_know(job, &stat);
    if (job->stale || job->error != 0)
        return;
    uint64_t end = job->read->offset + job->length;
    uint64_t piece = end > op->dest_offset ? end - op->dest_offset : 0;
    if (piece > op->learn_length)
        piece = op->learn_length;
    rc = piece ? s_ufs_read(ctx, job, op->dest_offset, op->dest, piece) : 0;
    if (rc != 0)
        s_job_fail(job, rc, NULL, shoal_last_error());
}

/* A learn op's answer (its expect_size, expect_version, learnt_mtime) is the job's stat: cached
 * and taken. */
static void s_op_learnt(client_ctx_t *ctx, read_job_t *job, const client_op_t *op)
{
    shoal_stat_t stat = {.size = op->expect_size, .mtime = op->learnt_mtime};
    snprintf(stat.version, sizeof stat.version, "%s", op->expect_version);
    client_stat_remember(ctx->stats, job->uri, &stat);
    CLIENT_COUNT(ctx->counters, reads_without_stat, 1);
    s_job_know(job, &stat);
}

/* Serves what it can of an op from its owner's pages when the owner (its first target) is a
 * node of this host (local.h): LOCATE, pread, XXH3. Every byte served: the op is `served` (the
 * engine leaves it alone). Some missing: the op is cut to the span missing and goes the
 * ZeroMQ way. A learn op takes the stat from the LOCATE (as a READ reply would give it); if
 * bytes are missing it becomes a plain READ of the version learnt, its stat taken here. Nothing
 * known (no connection, the node could not name the version, a broken reply): the op is left
 * as it was. */
static void s_local_op(client_ctx_t *ctx, read_job_t *job, client_op_t *op)
{
    if (!ctx->local || op->target_count == 0 || op->dest_length == 0 ||
        !client_local_has(ctx->local, NULL))
        return;
    /* A restart after a change learns the file anew: the READ's REVALIDATE makes range 0's
     * owner ask the origin; a LOCATE never does, and would name the old version again. */
    if (op->learn && (op->read_flags & MSG_READ_REVALIDATE))
        return;
    const client_member_t *owner = client_view_member_of(ctx->view, op->targets[0].endpoint);
    if (!owner || !client_local_has(ctx->local, owner->id))
        return;
    msg_read_request_t *request = &op->request.body.read_request;
    client_local_read_t read = {
        .uri = job->uri,
        .version = request->version,
        .file_size = op->learn ? MSG_SIZE_UNKNOWN : op->expect_size,
        .offset = op->dest_offset,
        .length = op->learn ? op->learn_length : op->dest_length,
        .dest = op->dest,
    };
    if (client_local_read(ctx->local, owner->id, &read) != 0)
        return;
    if (op->learn) {
        if (!request->version[0]) {
            snprintf(op->learnt_version, sizeof op->learnt_version, "%s", read.version_out);
            op->expect_version = op->learnt_version;
        }
        op->expect_size = read.file_size;
        op->learnt_mtime = read.mtime;
        op->dest_length = read.length;
        if (read.miss_length > 0) { /* the rest goes as a READ of the version learnt */
            s_op_learnt(ctx, job, op);
            op->learn = false;
            op->read_flags = 0;
            request->version = op->expect_version;
            request->file_size = op->expect_size;
        }
    }
    if (read.miss_length == 0) {
        op->served = true;
        return;
    }
    op->dest += read.miss_offset - op->dest_offset;
    op->dest_offset = read.miss_offset;
    op->dest_length = read.miss_length;
    request->offset = read.miss_offset;
    request->length = read.miss_length;
}

/* The ops of a batch that go short-circuit on several threads (client_local_run). */
typedef struct local_batch {
    client_ctx_t *ctx;                       /* the call's */
    read_job_t *jobs;                        /* its jobs */
    client_op_t *ops;                        /* the batch */
    const size_t *op_job;                    /* op k's job */
    size_t index[CLIENT_LOCAL_PARALLEL_OPS]; /* the ops run in parallel */
} local_batch_t;

static void s_local_batch_op(void *arg, size_t i)
{
    local_batch_t *batch = arg;
    size_t k = batch->index[i];
    s_local_op(batch->ctx, &batch->jobs[batch->op_job[k]], &batch->ops[k]);
}

/* Serves what short-circuit can of a batch: learn ops (they change their job) and small
 * batches on this thread; the plain ops of a batch of CLIENT_LOCAL_PARALLEL_BYTES or more on
 * this thread and the local table's helpers at once (each client_local_read takes a connection
 * of its own), so that one big read's pread and XXH3 use more than one core. */
static void s_local_ops(client_ctx_t *ctx, read_job_t *jobs, client_op_t *ops, const size_t *op_job,
                        size_t n)
{
    if (!ctx->local || !client_local_has(ctx->local, NULL))
        return;
    local_batch_t batch = {.ctx = ctx, .jobs = jobs, .ops = ops, .op_job = op_job};
    size_t parallel = 0;
    uint64_t bytes = 0;
    for (size_t k = 0; k < n; k++) {
        if (ops[k].learn || parallel == CLIENT_LOCAL_PARALLEL_OPS) {
            s_local_op(ctx, &jobs[op_job[k]], &ops[k]);
            continue;
        }
        batch.index[parallel++] = k;
        bytes += ops[k].dest_length;
    }
    if (bytes < client_local_parallel_bytes(ctx->local)) {
        for (size_t i = 0; i < parallel; i++)
            s_local_batch_op(&batch, i);
        return;
    }
    client_local_run(ctx->local, parallel, s_local_batch_op, &batch);
}

/* Runs a batch of ops (all at once) and takes their results into the jobs: ops whose owner is
 * a local node are served (or cut) by short-circuit first, the rest go to the engine; a learn
 * op's reply is the job's stat (cached), an exhausted op falls back to the UFS. */
static int s_run_ops(client_ctx_t *ctx, read_job_t *jobs, client_op_t *ops, const size_t *op_job,
                     size_t n)
{
    CLIENT_COUNT(ctx->counters, ranges, n);
    s_local_ops(ctx, jobs, ops, op_job, n);
    int rc = n ? client_session_run(ctx->session, ops, n, ctx->view->version, false) : 0;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        client_op_t *op = &ops[k];
        read_job_t *job = &jobs[op_job[k]];
        if (op->learn && op->result == 0) {
            s_op_learnt(ctx, job, op);
            continue;
        }
        if (op->result == 0 || job->error != 0 || job->stale)
            continue;
        if (!op->exhausted || !ctx->ufs) {
            s_job_fail(job, op->result, NULL, op->detail);
        } else if (op->learn) {
            s_learn_from_ufs(ctx, job, op);
        } else {
            int got = s_ufs_read(ctx, job, op->dest_offset, op->dest, op->dest_length);
            if (got != 0)
                s_job_fail(job, got, NULL, shoal_last_error());
        }
    }
    for (size_t k = 0; k < n; k++)
        client_op_fini(&ops[k]);
    return rc;
}

/* Without a view, or for an empty read, a job needs a stat of its own: stats them all at once
 * (cache unless `bypass_cache`, nodes, UFS). */
static int s_stat_jobs(client_ctx_t *ctx, read_job_t *jobs, size_t count, bool bypass_cache)
{
    size_t wanted = 0;
    for (size_t i = 0; i < count; i++)
        wanted += jobs[i].pending && !jobs[i].known && !jobs[i].learning;
    if (wanted == 0)
        return 0;
    const char **uris = calloc(wanted, sizeof *uris);
    shoal_stat_t *stats = calloc(wanted, sizeof *stats);
    int *results = calloc(wanted, sizeof *results);
    int rc = 0;
    if (!uris || !stats || !results)
        rc = shoal_fail(SHOAL_ENOMEM, "out of memory");
    for (size_t i = 0, k = 0; rc == 0 && i < count; i++)
        if (jobs[i].pending && !jobs[i].known && !jobs[i].learning)
            uris[k++] = jobs[i].uri;
    if (rc == 0)
        rc = client_stat_many(ctx, uris, wanted, bypass_cache, stats, results);
    for (size_t i = 0, k = 0; rc == 0 && i < count; i++) {
        read_job_t *job = &jobs[i];
        if (!job->pending || job->known || job->learning)
            continue;
        if (results[k] != 0)
            job->error = results[k];
        else
            s_job_know(job, &stats[k]);
        k++;
    }
    free(uris);
    free(stats);
    free(results);
    return rc;
}

/* One round over the pending jobs. A job whose stat is cached (unless `bypass_cache`) sends
 * every range with its version; any other sends only its first range, versionless (or with
 * the pinned version), whose reply is its stat; once those answered, their other ranges go
 * out with the version and size learnt. Exhausted ranges come from the UFS. Leaves each job's
 * error or stale flag set. */
static int s_round(client_ctx_t *ctx, read_job_t *jobs, size_t count, bool bypass_cache)
{
    client_view_t *view = ctx->view;
    for (size_t i = 0; i < count; i++) {
        read_job_t *job = &jobs[i];
        if (!job->pending)
            continue;
        job->stale = false;
        job->error = 0;
        job->known = false;
        job->learning = false;
        job->revalidate = bypass_cache;
        shoal_stat_t cached;
        if (view && job->read->length > 0) {
            if (!bypass_cache && client_stat_cached(ctx->stats, job->uri, &cached) &&
                (!job->pin || strcmp(cached.version, job->pin) == 0)) {
                CLIENT_COUNT(ctx->counters, stat_cache_hits, 1);
                s_job_know(job, &cached);
            } else {
                CLIENT_COUNT(ctx->counters, stat_cache_misses, 1);
                job->learning = true;
            }
        }
    }
    int rc = s_stat_jobs(ctx, jobs, count, bypass_cache);
    if (rc != 0)
        return rc;

    uint64_t range_bytes = view ? view->page_size * view->range_pages : 0;
    size_t op_count = 0;
    for (size_t i = 0; view && i < count; i++) {
        read_job_t *job = &jobs[i];
        if (!job->pending || job->error != 0 || job->stale)
            continue;
        op_count += job->learning
                        ? client_range_count(job->read->offset, job->read->length, range_bytes)
                        : client_range_count(job->read->offset, job->length, range_bytes);
    }
    client_op_t *ops = op_count ? calloc(op_count, sizeof *ops) : NULL;
    size_t *op_job = op_count ? calloc(op_count, sizeof *op_job) : NULL;
    client_range_t *ranges = op_count ? calloc(op_count, sizeof *ranges) : NULL;
    if (op_count && (!ops || !op_job || !ranges)) {
        free(ops);
        free(op_job);
        free(ranges);
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    }
    /* first: every range of the known jobs, the first range of the others */
    size_t n = 0;
    for (size_t i = 0; view && i < count; i++) {
        read_job_t *job = &jobs[i];
        if (!job->pending || job->error != 0 || job->stale)
            continue;
        if (job->learning) {
            ranges[n] = s_first_piece(job, job->read->length, range_bytes);
            s_range_op(ctx, job, &ranges[n], &ops[n]);
            op_job[n++] = i;
            continue;
        }
        if (job->length == 0)
            continue;
        size_t pieces = client_range_split(job->read->offset, job->length, range_bytes, &ranges[n]);
        for (size_t p = 0; p < pieces; p++, n++) {
            s_range_op(ctx, job, &ranges[n], &ops[n]);
            op_job[n] = i;
        }
    }
    rc = s_run_ops(ctx, jobs, ops, op_job, n);
    /* then: the other ranges of the jobs that learnt their stat from their first range */
    n = 0;
    for (size_t i = 0; rc == 0 && view && i < count; i++) {
        read_job_t *job = &jobs[i];
        if (!job->pending || !job->learning || job->error != 0 || job->stale)
            continue;
        client_range_t first = s_first_piece(job, job->length, range_bytes);
        if (first.length >= job->length)
            continue;
        size_t pieces = client_range_split(first.offset + first.length, job->length - first.length,
                                           range_bytes, &ranges[n]);
        for (size_t p = 0; p < pieces; p++, n++) {
            s_range_op(ctx, job, &ranges[n], &ops[n]);
            op_job[n] = i;
        }
    }
    if (rc == 0)
        rc = s_run_ops(ctx, jobs, ops, op_job, n);
    /* Without a view (no node answered VIEW) every read goes to the UFS whole. */
    for (size_t i = 0; rc == 0 && !view && i < count; i++) {
        read_job_t *job = &jobs[i];
        if (!job->pending || job->error != 0 || job->stale || job->length == 0)
            continue;
        if (!ctx->ufs) {
            s_job_fail(job, SHOAL_EUNAVAIL, NULL, shoal_last_error());
            continue;
        }
        int got = s_ufs_read(ctx, job, job->read->offset, job->read->buf, job->length);
        if (got != 0)
            s_job_fail(job, got, NULL, shoal_last_error());
    }
    free(ops);
    free(op_job);
    free(ranges);
    return rc;
}

/* Runs rounds until no job is stale or the retries are spent: a job whose file changed is
 * read again whole from scratch (its cached stat dropped, its first range versionless again),
 * so all of its bytes come from one version. A job of a pinned version is not restarted: the
 * change is its error. */
static int s_read_jobs(shoal_client_t *client, read_job_t *jobs, size_t count)
{
    client_ctx_t ctx;
    int rc = client_ctx_begin(client, &ctx);
    if (rc == 0 && ctx.view && !client_local_view_seen(ctx.local, ctx.view->version)) {
        /* a new view: its members on this host (same host id, a socket advertised) */
        size_t members = 0;
        const client_local_member_t *here = client_view_local(ctx.view, &members);
        for (size_t i = 0; i < members; i++)
            client_local_consider(ctx.local, here[i].node_id, here[i].socket_path);
    }
    if (rc == 0)
        client_local_begin(ctx.local);
    for (int round = 0; rc == 0 && round <= CLIENT_STALE_RETRIES; round++) {
        rc = s_round(&ctx, jobs, count, round > 0);
        bool again = false;
        for (size_t i = 0; rc == 0 && i < count; i++) {
            read_job_t *job = &jobs[i];
            if (job->stale)
                client_stat_forget(ctx.stats, job->uri);
            job->pending = job->stale && !job->pin;
            again |= job->pending;
            if (job->pending && round < CLIENT_STALE_RETRIES)
                CLIENT_COUNT(ctx.counters, change_restarts, 1);
        }
        if (!again)
            break;
        if (round < CLIENT_STALE_RETRIES)
            CLIENT_COUNT(ctx.counters, stale_retries, 1);
    }
    client_ctx_end(&ctx);
    CLIENT_COUNT(ctx.counters, reads, count);
    for (size_t i = 0; i < count; i++) {
        read_job_t *job = &jobs[i];
        if (rc != 0)
            job->read->result = rc;
        else if (job->stale && job->pin)
            job->read->result = shoal_fail(SHOAL_ESTALE,
                                           "read %s: changed under the reader (version '%s' is "
                                           "gone)",
                                           job->read->uri, job->pin);
        else if (job->stale)
            job->read->result =
                shoal_fail(SHOAL_ESTALE, "read %s: the file kept changing", job->read->uri);
        else if (job->error != 0)
            job->read->result = job->error;
        else {
            job->read->result = (int64_t)job->length;
            CLIENT_COUNT(ctx.counters, bytes_read, job->length);
        }
    }
    return rc;
}

int64_t shoal_pread(shoal_client_t *client, const char *uri, void *buf, size_t length,
                    uint64_t offset)
{
    return shoal_pread_stat(client, uri, NULL, buf, length, offset, NULL);
}

int64_t shoal_pread_stat(shoal_client_t *client, const char *uri, const char *version, void *buf,
                         size_t length, uint64_t offset, shoal_stat_t *stat_out)
{
    if (!client || !uri || (!buf && length > 0))
        return shoal_fail(SHOAL_EINVAL, "shoal_pread: NULL argument");
    char normal[URI_MAX + 1];
    int rc = client_uri_normalize("read", uri, normal, sizeof normal);
    if (rc != 0)
        return rc;
    shoal_read_t read = {.uri = uri, .offset = offset, .length = length, .buf = buf};
    read_job_t job = {.read = &read,
                      .uri = normal,
                      .pin = version && version[0] ? version : NULL,
                      .pending = true};
    s_read_jobs(client, &job, 1);
    if (stat_out && read.result >= 0)
        *stat_out = job.stat;
    return read.result;
}

int shoal_pread_many(shoal_client_t *client, shoal_read_t *reads, size_t count)
{
    if (!client || (!reads && count > 0))
        return shoal_fail(SHOAL_EINVAL, "shoal_pread_many: NULL argument");
    if (count == 0)
        return 0;
    /* One allocation for the jobs and their uris' normal forms (a normal form is at most one
     * byte longer than its uri: only an empty path gains a '/'). */
    size_t text = 0;
    for (size_t i = 0; i < count; i++)
        text += reads[i].uri ? strnlen(reads[i].uri, URI_MAX + 1) + 2 : 0;
    read_job_t *jobs = calloc(1, count * sizeof *jobs + text);
    if (!jobs)
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    char *normal = (char *)(jobs + count);
    int first_error = 0;
    for (size_t i = 0; i < count; i++) {
        jobs[i].read = &reads[i];
        jobs[i].pending = true;
        if (!reads[i].uri || (!reads[i].buf && reads[i].length > 0)) {
            jobs[i].pending = false;
            jobs[i].error = SHOAL_EINVAL;
            continue;
        }
        size_t room = strnlen(reads[i].uri, URI_MAX + 1) + 2;
        int rc = client_uri_normalize("read", reads[i].uri, normal, room);
        if (rc != 0) {
            jobs[i].pending = false;
            jobs[i].error = rc;
            continue;
        }
        jobs[i].uri = normal;
        normal += room;
    }
    int rc = s_read_jobs(client, jobs, count);
    for (size_t i = 0; i < count && !first_error; i++)
        if (reads[i].result < 0)
            first_error = (int)reads[i].result;
    free(jobs);
    return rc ? rc : first_error;
}
