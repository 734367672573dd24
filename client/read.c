/*
 * read.c - shoal_pread and shoal_pread_many: stat each file (one version for all its bytes),
 * cut the wanted span into placement ranges, put every range of every read in flight at once,
 * fall back per range (next owner, NO_CACHE read-through, the UFS), and start a read over with
 * a fresh stat when the file changed under it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "fallback.h"
#include "meta.h"
#include "range.h"
#include "uri.h"

#define CLIENT_OWNER_TRIES    2 /* owners in HRW order tried with a normal READ */
#define CLIENT_NO_CACHE_TRIES 1 /* other live nodes then tried with NO_CACHE */

/* One read of a call, with what the current round learned. */
typedef struct read_job {
    shoal_read_t *read; /* the caller's request and result */
    const char *uri;    /* read->uri's normal form (uri.h): sent, hashed and cached as the node
                         * does; storage owned by the call */
    shoal_stat_t stat;  /* the version all bytes come from */
    int stat_result;    /* 0 or the stat's error */
    uint64_t length;    /* bytes to read after clipping at the end of the file */
    bool pending;       /* still to be (re)done in this round */
    bool stale;         /* the version changed: redo with a fresh stat */
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
    if ((uint64_t)got != length)
        return shoal_fail(SHOAL_ESTALE, "read %s: the under storage returned %lld of %llu bytes",
                          job->read->uri, (long long)got, (unsigned long long)length);
    return 0;
}

/* One round over the pending jobs: stat them (through the cache unless `bypass_cache`), build
 * one READ op per range of every job, run them all at once, then serve exhausted ranges from
 * the UFS. Leaves each job's error or stale flag set. */
static int s_round(client_ctx_t *ctx, read_job_t *jobs, size_t count, bool bypass_cache)
{
    size_t pending = 0;
    for (size_t i = 0; i < count; i++)
        pending += jobs[i].pending;
    const char **uris = calloc(pending ? pending : 1, sizeof *uris);
    shoal_stat_t *stats = calloc(pending ? pending : 1, sizeof *stats);
    int *results = calloc(pending ? pending : 1, sizeof *results);
    if (!uris || !stats || !results) {
        free(uris);
        free(stats);
        free(results);
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    }
    for (size_t i = 0, k = 0; i < count; i++)
        if (jobs[i].pending)
            uris[k++] = jobs[i].uri;
    int rc = client_stat_many(ctx, uris, pending, bypass_cache, stats, results);
    for (size_t i = 0, k = 0; rc == 0 && i < count; i++) {
        read_job_t *job = &jobs[i];
        if (!job->pending)
            continue;
        job->stale = false;
        job->error = 0;
        job->stat = stats[k];
        job->stat_result = results[k++];
        if (job->stat_result != 0) {
            job->error = job->stat_result;
            continue;
        }
        if (job->stat.is_dir) {
            s_job_fail(job, SHOAL_EISDIR, "is a directory", NULL);
            continue;
        }
        uint64_t offset = job->read->offset;
        job->length = offset >= job->stat.size ? 0 : job->stat.size - offset;
        if (job->length > job->read->length)
            job->length = job->read->length;
    }
    free(uris);
    free(stats);
    free(results);
    if (rc != 0)
        return rc;

    client_view_t *view = ctx->view;
    uint64_t range_bytes = view ? view->page_size * view->range_pages : 0;
    size_t op_count = 0;
    for (size_t i = 0; view && i < count; i++)
        if (jobs[i].pending && jobs[i].error == 0)
            op_count += client_range_count(jobs[i].read->offset, jobs[i].length, range_bytes);
    client_op_t *ops = op_count ? calloc(op_count, sizeof *ops) : NULL;
    size_t *op_job = op_count ? calloc(op_count, sizeof *op_job) : NULL;
    client_range_t *ranges = op_count ? calloc(op_count, sizeof *ranges) : NULL;
    if (op_count && (!ops || !op_job || !ranges)) {
        free(ops);
        free(op_job);
        free(ranges);
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; view && i < count; i++) {
        read_job_t *job = &jobs[i];
        if (!job->pending || job->error != 0 || job->length == 0)
            continue;
        size_t pieces = client_range_split(job->read->offset, job->length, range_bytes, &ranges[n]);
        for (size_t p = 0; p < pieces; p++, n++) {
            client_op_t *op = &ops[n];
            const client_range_t *range = &ranges[n];
            client_op_init(op, MSG_READ_REQ);
            op->request.body.read_request = (msg_read_request_t){
                .uri = job->uri,
                .version = job->stat.version,
                .offset = range->offset,
                .length = range->length,
            };
            op->dest = (uint8_t *)job->read->buf + (range->offset - job->read->offset);
            op->dest_offset = range->offset;
            op->dest_length = range->length;
            op->expect_size = job->stat.size;
            op->expect_version = job->stat.version;
            op->probe_when_all_down = ctx->ufs == NULL;
            op->target_count = (uint32_t)client_view_range_targets(
                view, job->uri, range->range_index, CLIENT_OWNER_TRIES, 0, CLIENT_NO_CACHE_TRIES,
                MSG_READ_NO_CACHE, op->targets, CLIENT_TARGETS_MAX);
            op_job[n] = i;
        }
    }
    CLIENT_COUNT(ctx->counters, ranges, n);
    rc = n ? client_session_run(ctx->session, ops, n, view->version, false) : 0;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        client_op_t *op = &ops[k];
        read_job_t *job = &jobs[op_job[k]];
        if (op->result == 0 || job->error != 0 || job->stale)
            continue;
        if (!op->exhausted) {
            s_job_fail(job, op->result, NULL, op->detail);
        } else if (ctx->ufs) {
            int got = s_ufs_read(ctx, job, op->dest_offset, op->dest, op->dest_length);
            if (got != 0)
                s_job_fail(job, got, NULL, shoal_last_error());
        } else {
            s_job_fail(job, op->result, NULL, op->detail);
        }
    }
    /* Without a view (no node answered VIEW) every read goes to the UFS whole. */
    for (size_t i = 0; rc == 0 && !view && i < count; i++) {
        read_job_t *job = &jobs[i];
        if (!job->pending || job->error != 0 || job->length == 0)
            continue;
        if (!ctx->ufs) {
            s_job_fail(job, SHOAL_EUNAVAIL, NULL, shoal_last_error());
            continue;
        }
        int got = s_ufs_read(ctx, job, job->read->offset, job->read->buf, job->length);
        if (got != 0)
            s_job_fail(job, got, NULL, shoal_last_error());
    }
    for (size_t k = 0; k < n; k++)
        client_op_fini(&ops[k]);
    free(ops);
    free(op_job);
    free(ranges);
    return rc;
}

/* Runs rounds until no job is stale or the retries are spent: a job whose file changed is
 * stat'ed again past the cache and read again whole, so all of its bytes come from one
 * version. */
static int s_read_jobs(shoal_client_t *client, read_job_t *jobs, size_t count)
{
    client_ctx_t ctx;
    int rc = client_ctx_begin(client, &ctx);
    for (int round = 0; rc == 0 && round <= CLIENT_STALE_RETRIES; round++) {
        rc = s_round(&ctx, jobs, count, round > 0);
        bool again = false;
        for (size_t i = 0; rc == 0 && i < count; i++) {
            jobs[i].pending = jobs[i].stale;
            again |= jobs[i].stale;
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
    if (!client || !uri || (!buf && length > 0))
        return shoal_fail(SHOAL_EINVAL, "shoal_pread: NULL argument");
    char normal[URI_MAX + 1];
    int rc = client_uri_normalize("read", uri, normal, sizeof normal);
    if (rc != 0)
        return rc;
    shoal_read_t read = {.uri = uri, .offset = offset, .length = length, .buf = buf};
    read_job_t job = {.read = &read, .uri = normal, .pending = true};
    s_read_jobs(client, &job, 1);
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
