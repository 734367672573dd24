/*
 * list.c - the public metadata calls: shoal_stat (through the metadata engine, meta.c) and
 * shoal_list, which pages through LIST replies with cursors until the listing is complete and
 * falls back to the under storage when no node answers; and the listing object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "fallback.h"
#include "meta.h"
#include "uri.h"
#include "vec.h"

int shoal_stat(shoal_client_t *client, const char *uri, shoal_stat_t *out)
{
    if (!client || !uri || !out)
        return shoal_fail(SHOAL_EINVAL, "shoal_stat: NULL argument");
    char normal[URI_MAX + 1];
    int rc = client_uri_normalize("stat", uri, normal, sizeof normal);
    if (rc != 0)
        return rc;
    const char *key = normal;
    client_ctx_t ctx;
    rc = client_ctx_begin(client, &ctx);
    int result = rc;
    if (rc == 0)
        rc = client_stat_many(&ctx, &key, 1, false, out, &result);
    client_ctx_end(&ctx);
    return rc ? rc : result;
}

int shoal_stat_read(shoal_client_t *client, const char *uri, shoal_stat_t *out)
{
    if (!client || !uri || !out)
        return shoal_fail(SHOAL_EINVAL, "shoal_stat_read: NULL argument");
    char normal[URI_MAX + 1];
    int rc = client_uri_normalize("stat", uri, normal, sizeof normal);
    if (rc != 0)
        return rc;
    client_ctx_t ctx;
    rc = client_ctx_begin(client, &ctx);
    bool cached = rc == 0 && client_stat_cached(ctx.stats, normal, out);
    if (cached)
        CLIENT_COUNT(ctx.counters, stat_cache_hits, 1);
    client_ctx_end(&ctx);
    if (rc != 0 || cached)
        return rc;
    /* The first byte, versionless: its reply is the stat (and fills the stat cache), and range
     * 0's owner keeps the range for the read that follows. A directory or prefix is no object:
     * the STAT that follows says what it is (the node remembers a GET's "not found" as "no
     * object" only, never as "nothing there"). */
    uint8_t first;
    int64_t got = shoal_pread_stat(client, uri, NULL, &first, 1, 0, out);
    if (got >= 0) {
        CLIENT_COUNT(ctx.counters, stats_by_read, 1);
        return 0;
    }
    if (got == SHOAL_ENOENT || got == SHOAL_EISDIR)
        return shoal_stat(client, uri, out);
    return (int)got;
}

struct shoal_listing {
    size_t count;            /* entries (== uris.len == stats.len) */
    VEC(char *) uris;        /* count owned strings */
    VEC(shoal_stat_t) stats; /* count stats */
};

/* Appends one entry (copying the uri). */
static int s_listing_push(void *arg, const char *uri, const shoal_stat_t *stat)
{
    shoal_listing_t *listing = arg;
    char *copy = strdup(uri);
    if (!copy || vec_reserve(&listing->uris, 1) < 0 || vec_reserve(&listing->stats, 1) < 0) {
        free(copy);
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    }
    (void)vec_push(&listing->uris, copy);   /* reserved: cannot fail */
    (void)vec_push(&listing->stats, *stat); /* reserved: cannot fail */
    listing->count++;
    return 0;
}

static void s_listing_clear(shoal_listing_t *listing)
{
    for (size_t i = 0; i < listing->count; i++)
        free(listing->uris.items[i]);
    listing->count = 0;
    vec_clear(&listing->uris);
    vec_clear(&listing->stats);
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
        op.probe_when_all_down = ctx->ufs == NULL;
        client_meta_targets(ctx->view, uri, &op);
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
    char normal[URI_MAX + 1];
    int rc = client_uri_normalize("list", uri, normal, sizeof normal);
    if (rc != 0)
        return rc;
    uri = normal;
    shoal_listing_t *listing = calloc(1, sizeof *listing);
    if (!listing)
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    client_ctx_t ctx;
    rc = client_ctx_begin(client, &ctx);
    if (rc == 0) {
        bool exhausted = ctx.view == NULL;
        if (ctx.view)
            rc = s_list_nodes(&ctx, uri, recursive, listing, &exhausted);
        if (exhausted && ctx.ufs) {
            s_listing_clear(listing);
            CLIENT_COUNT(ctx.counters, fallback_ufs, 1);
            rc = client_ufs_list(ctx.ufs, uri, recursive, s_listing_push, listing);
        } else if (exhausted && rc == 0) {
            char copy[512]; /* the last-error buffer that shoal_fail rewrites */
            snprintf(copy, sizeof copy, "%s", shoal_last_error());
            rc = shoal_fail(SHOAL_EUNAVAIL, "list %s: %s", uri, copy);
        }
    }
    /* what a listing says of its files is their stat: `info` or a read after `find` asks
     * nobody (Ray lists, then stats and opens every file) */
    for (size_t i = 0; rc == 0 && i < listing->count; i++) {
        const shoal_stat_t *stat = &listing->stats.items[i];
        char key[URI_MAX + 1];
        if (!stat->is_dir && stat->version[0] &&
            uri_normalize(listing->uris.items[i], key, sizeof key, NULL) == 0)
            client_stat_remember(ctx.stats, key, stat);
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
    return listing && index < listing->count ? listing->uris.items[index] : NULL;
}

const shoal_stat_t *shoal_listing_stat(const shoal_listing_t *listing, size_t index)
{
    return listing && index < listing->count ? &listing->stats.items[index] : NULL;
}

void shoal_listing_destroy(shoal_listing_t **listing_p)
{
    if (!listing_p || !*listing_p)
        return;
    shoal_listing_t *listing = *listing_p;
    *listing_p = NULL;
    s_listing_clear(listing);
    vec_fini(&listing->uris);
    vec_fini(&listing->stats);
    free(listing);
}
