/*
 * meta.c - stat and list: stat goes to the uri's metadata owner (HRW of the uri bytes) through
 * a short per-process stat cache; list pages through LIST replies with cursors until the
 * listing is complete. Both fall back to the under storage when no node answers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

#define META_OWNER_TRIES 3 /* metadata owners tried in HRW order before the UFS */

/* FNV-1a of a uri. */
static size_t s_hash(const char *uri)
{
    uint64_t hash = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)uri; *p; p++)
        hash = (hash ^ *p) * 1099511628211ull;
    return (size_t)hash;
}

/* The stat cache slot of a uri. */
static size_t s_slot(const char *uri)
{
    return s_hash(uri) % CLIENT_STAT_CACHE_SLOTS;
}

static bool s_cache_get(shoal_client_t *client, client_proc_t *proc, const char *uri,
                        shoal_stat_t *out)
{
    if (client->metadata_ttl_ms < 0)
        return false;
    bool hit = false;
    int64_t now = client_now_ms();
    pthread_mutex_lock(&proc->mutex);
    client_stat_slot_t *slot = &proc->stat_cache[s_slot(uri)];
    if (slot->uri && slot->expires_ms > now && strcmp(slot->uri, uri) == 0) {
        *out = slot->stat;
        hit = true;
    }
    pthread_mutex_unlock(&proc->mutex);
    return hit;
}

/* Stores a stat; a collision replaces the older entry (the cache is a speed-up only). */
static void s_cache_put(shoal_client_t *client, client_proc_t *proc, const char *uri,
                        const shoal_stat_t *stat)
{
    if (client->metadata_ttl_ms < 0)
        return;
    char *copy = strdup(uri);
    if (!copy)
        return;
    pthread_mutex_lock(&proc->mutex);
    client_stat_slot_t *slot = &proc->stat_cache[s_slot(uri)];
    free(slot->uri);
    slot->uri = copy;
    slot->stat = *stat;
    slot->expires_ms = client_now_ms() + client->metadata_ttl_ms;
    pthread_mutex_unlock(&proc->mutex);
}

void client_stat_cache_clear(client_proc_t *proc)
{
    pthread_mutex_lock(&proc->mutex);
    for (size_t i = 0; i < CLIENT_STAT_CACHE_SLOTS; i++) {
        free(proc->stat_cache[i].uri);
        proc->stat_cache[i].uri = NULL;
    }
    pthread_mutex_unlock(&proc->mutex);
}

/* Fills targets: the metadata owners of `uri` in HRW order. */
static void s_meta_targets(const client_view_t *view, const char *uri, client_op_t *op)
{
    op->target_count =
        (uint32_t)client_view_targets(view, (const uint8_t *)uri, strlen(uri), META_OWNER_TRIES, 0,
                                      0, 0, op->targets, CLIENT_TARGETS_MAX);
}

static void s_stat_from_reply(const msg_stat_reply_t *reply, shoal_stat_t *out)
{
    memset(out, 0, sizeof *out);
    out->size = reply->size;
    out->mtime = reply->mtime;
    out->is_dir = reply->is_dir;
    snprintf(out->version, sizeof out->version, "%s", reply->version);
}

/* Finds, for every pending uri, the first pending entry with the same uri (first[i] == i for
 * the first of each), so that a pread_many of many ranges of one file stats it once. An
 * open-addressing table over the pending entries keeps it linear. */
static int s_dedupe(const char *const *uris, const int *results, size_t count, size_t *first)
{
    size_t cap = 16;
    while (cap < 2 * count)
        cap *= 2;
    size_t *table = malloc(cap * sizeof *table);
    if (!table)
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    for (size_t h = 0; h < cap; h++)
        table[h] = SIZE_MAX;
    for (size_t i = 0; i < count; i++) {
        first[i] = i;
        if (results[i] != 1)
            continue;
        for (size_t h = s_hash(uris[i]) & (cap - 1);; h = (h + 1) & (cap - 1)) {
            if (table[h] == SIZE_MAX) {
                table[h] = i;
                break;
            }
            if (strcmp(uris[table[h]], uris[i]) == 0) {
                first[i] = table[h];
                break;
            }
        }
    }
    free(table);
    return 0;
}

/* Cache hits first; then every distinct miss in flight at once to its metadata owner; then,
 * for the stats no node could answer, the UFS one by one. The first failure sets the last
 * error. */
int client_stat_many(shoal_client_t *client, client_proc_t *proc, client_session_t *session,
                     const char *const *uris, size_t count, bool bypass_cache, shoal_stat_t *stats,
                     int *results)
{
    size_t *first = calloc(count ? count : 1, sizeof *first);
    size_t *op_for = calloc(count ? count : 1, sizeof *op_for);
    client_op_t *ops = NULL;
    if (!first || !op_for) {
        free(first);
        free(op_for);
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    }
    size_t misses = 0;
    for (size_t i = 0; i < count; i++) {
        results[i] = 1; /* pending */
        op_for[i] = SIZE_MAX;
        if (!bypass_cache && s_cache_get(client, proc, uris[i], &stats[i])) {
            results[i] = 0;
            CLIENT_COUNT(client, stat_cache_hits, 1);
        } else {
            misses++;
            CLIENT_COUNT(client, stat_cache_misses, 1);
        }
    }
    client_view_t *view = misses ? client_view_acquire(client, proc, session, false) : NULL;
    int rc = misses ? s_dedupe(uris, results, count, first) : 0;
    if (rc == 0 && misses > 0 && view) {
        ops = calloc(misses, sizeof *ops);
        if (!ops)
            rc = shoal_fail(SHOAL_ENOMEM, "out of memory");
    }
    size_t n = 0;
    if (rc == 0 && ops) {
        for (size_t i = 0; i < count; i++) {
            if (results[i] != 1 || first[i] != i)
                continue;
            client_op_init(&ops[n], MSG_STAT_REQ);
            ops[n].request.body.stat_request.uri = uris[i];
            ops[n].probe_when_all_down = client->ufs == NULL;
            s_meta_targets(view, uris[i], &ops[n]);
            op_for[i] = n++;
        }
        rc = client_session_run(session, ops, n, view->version, false);
        for (size_t i = 0; rc == 0 && i < count; i++) {
            if (op_for[i] == SIZE_MAX)
                continue;
            client_op_t *op = &ops[op_for[i]];
            if (op->result == 0) {
                s_stat_from_reply(&op->reply.body.stat_reply, &stats[i]);
                s_cache_put(client, proc, uris[i], &stats[i]);
                results[i] = 0;
            } else if (!op->exhausted) {
                results[i] = op->result;
                shoal_fail(op->result, "stat %s: %s", uris[i], op->detail);
            }
        }
    }
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (results[i] != 1 || first[i] != i)
            continue;
        if (!client->ufs) {
            char copy[512]; /* may be the last-error buffer that shoal_fail rewrites */
            snprintf(copy, sizeof copy, "%s",
                     op_for[i] != SIZE_MAX ? ops[op_for[i]].detail
                                           : (view ? "no node to ask" : shoal_last_error()));
            results[i] =
                shoal_fail(SHOAL_EUNAVAIL, "stat %s: no node answered (%s)", uris[i], copy);
        } else {
            CLIENT_COUNT(client, fallback_ufs, 1);
            results[i] = client_ufs_stat(client, uris[i], &stats[i]);
            if (results[i] == 0)
                s_cache_put(client, proc, uris[i], &stats[i]);
        }
    }
    for (size_t i = 0; i < count; i++) {
        if (rc == 0 && results[i] == 1 && first[i] != i) { /* a repeat of an earlier uri */
            results[i] = results[first[i]];
            stats[i] = stats[first[i]];
        }
        if (results[i] == 1) /* only when the engine itself failed */
            results[i] = rc ? rc : SHOAL_EINTERNAL;
    }
    for (size_t k = 0; k < n; k++)
        client_op_fini(&ops[k]);
    free(ops);
    free(first);
    free(op_for);
    client_view_unref(&view);
    return rc;
}

int shoal_stat(shoal_client_t *client, const char *uri, shoal_stat_t *out)
{
    if (!client || !uri || !out)
        return shoal_fail(SHOAL_EINVAL, "shoal_stat: NULL argument");
    client_ctx_t ctx;
    int rc = client_ctx_begin(client, &ctx);
    int result = rc;
    if (rc == 0)
        rc = client_stat_many(client, ctx.proc, ctx.session, &uri, 1, false, out, &result);
    client_ctx_end(&ctx);
    return rc ? rc : result;
}

/* ---- listings ---- */

struct shoal_listing {
    size_t count;        /* entries */
    size_t cap;          /* entries allocated */
    char **uris;         /* count owned strings */
    shoal_stat_t *stats; /* count stats */
};

/* Appends one entry (copying the uri). */
static int s_listing_push(void *arg, const char *uri, const shoal_stat_t *stat)
{
    shoal_listing_t *listing = arg;
    if (listing->count == listing->cap) {
        size_t cap = listing->cap ? listing->cap * 2 : 64;
        char **uris = realloc(listing->uris, cap * sizeof *uris);
        if (uris)
            listing->uris = uris;
        shoal_stat_t *stats = realloc(listing->stats, cap * sizeof *stats);
        if (stats)
            listing->stats = stats;
        if (!uris || !stats)
            return shoal_fail(SHOAL_ENOMEM, "out of memory");
        listing->cap = cap;
    }
    char *copy = strdup(uri);
    if (!copy)
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    listing->uris[listing->count] = copy;
    listing->stats[listing->count] = *stat;
    listing->count++;
    return 0;
}

static void s_listing_clear(shoal_listing_t *listing)
{
    for (size_t i = 0; i < listing->count; i++)
        free(listing->uris[i]);
    listing->count = 0;
}

/* Pages through LIST replies: the first page goes to the metadata owners in HRW order, later
 * pages first to the node that answered the previous one (a cursor may be that node's own).
 * Returns 0, a final node error, or SHOAL_EUNAVAIL with *exhausted when no node answered. */
static int s_list_nodes(client_ctx_t *ctx, const char *uri, bool recursive,
                        shoal_listing_t *listing, bool *exhausted)
{
    char *cursor = strdup("");
    if (!cursor)
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    client_op_t op;
    client_op_init(&op, MSG_LIST_REQ);
    int rc = 0;
    const char *answered = NULL;
    for (;;) {
        client_op_fini(&op);
        client_op_init(&op, MSG_LIST_REQ);
        op.request.body.list_request.uri = uri;
        op.request.body.list_request.recursive = recursive;
        op.request.body.list_request.cursor = cursor;
        op.probe_when_all_down = ctx->client->ufs == NULL;
        s_meta_targets(ctx->view, uri, &op);
        if (answered) { /* move the node that answered last to the front */
            for (uint32_t i = 0; i < op.target_count; i++) {
                if (strcmp(op.targets[i].endpoint, answered) == 0) {
                    client_target_t first = op.targets[i];
                    memmove(&op.targets[1], &op.targets[0], i * sizeof first);
                    op.targets[0] = first;
                    break;
                }
            }
        }
        rc = client_session_run(ctx->session, &op, 1, ctx->view->version, false);
        if (rc != 0)
            break;
        if (op.result != 0) {
            *exhausted = op.exhausted;
            rc = shoal_fail(op.result, "list %s: %s", uri, op.detail);
            break;
        }
        answered = op.targets[op.sent_to].endpoint;
        const msg_list_reply_t *reply = &op.reply.body.list_reply;
        for (uint32_t i = 0; rc == 0 && i < reply->entry_count; i++) {
            const msg_entry_t *entry = &reply->entries[i];
            shoal_stat_t stat = {
                .size = entry->size, .mtime = entry->mtime, .is_dir = entry->is_dir};
            snprintf(stat.version, sizeof stat.version, "%s", entry->version);
            rc = s_listing_push(listing, entry->uri, &stat);
        }
        if (rc != 0 || reply->next_cursor[0] == '\0')
            break;
        if (strcmp(reply->next_cursor, cursor) == 0) {
            rc =
                shoal_fail(SHOAL_EPROTO, "list %s: %s repeated cursor '%s'", uri, answered, cursor);
            break;
        }
        free(cursor);
        cursor = strdup(reply->next_cursor);
        if (!cursor) {
            rc = shoal_fail(SHOAL_ENOMEM, "out of memory");
            break;
        }
    }
    client_op_fini(&op);
    free(cursor);
    return rc;
}

int shoal_list(shoal_client_t *client, const char *uri, bool recursive, shoal_listing_t **out)
{
    if (!client || !uri || !out)
        return shoal_fail(SHOAL_EINVAL, "shoal_list: NULL argument");
    *out = NULL;
    shoal_listing_t *listing = calloc(1, sizeof *listing);
    if (!listing)
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    client_ctx_t ctx;
    int rc = client_ctx_begin(client, &ctx);
    if (rc == 0) {
        bool exhausted = ctx.view == NULL;
        if (ctx.view)
            rc = s_list_nodes(&ctx, uri, recursive, listing, &exhausted);
        if (exhausted && client->ufs) {
            s_listing_clear(listing);
            CLIENT_COUNT(client, fallback_ufs, 1);
            rc = client_ufs_list(client, uri, recursive, s_listing_push, listing);
        } else if (exhausted && rc == 0) {
            char copy[512]; /* the last-error buffer that shoal_fail rewrites */
            snprintf(copy, sizeof copy, "%s", shoal_last_error());
            rc = shoal_fail(SHOAL_EUNAVAIL, "list %s: %s", uri, copy);
        }
    }
    client_ctx_end(&ctx);
    if (rc != 0) {
        shoal_listing_destroy(&listing);
        return rc;
    }
    *out = listing;
    return 0;
}

size_t shoal_listing_count(const shoal_listing_t *listing)
{
    return listing ? listing->count : 0;
}

const char *shoal_listing_uri(const shoal_listing_t *listing, size_t index)
{
    return listing && index < listing->count ? listing->uris[index] : NULL;
}

const shoal_stat_t *shoal_listing_stat(const shoal_listing_t *listing, size_t index)
{
    return listing && index < listing->count ? &listing->stats[index] : NULL;
}

void shoal_listing_destroy(shoal_listing_t **listing_p)
{
    if (!listing_p || !*listing_p)
        return;
    shoal_listing_t *listing = *listing_p;
    *listing_p = NULL;
    s_listing_clear(listing);
    free(listing->uris);
    free(listing->stats);
    free(listing);
}
