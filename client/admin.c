/*
 * admin.c - the cluster-wide calls: shoal_load (LOAD each range on its top owners), shoal_evict
 * (EVICT on every member), shoal_stats (STATS from every member, as JSON with the client
 * counters) and shoal_members (the VIEW as JSON).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client.h"
#include "coding.h"
#include "meta.h"
#include "range.h"
#include "uri.h"

/* Owners after the top `replicas` that take a LOAD a replica missed. */
#define LOAD_SPARE_OWNERS 2

static const char *s_state_name(uint32_t state)
{
    switch (state) {
    case MSG_MEMBER_ALIVE:
        return "alive";
    case MSG_MEMBER_SUSPECT:
        return "suspect";
    case MSG_MEMBER_DEAD:
        return "dead";
    case MSG_MEMBER_LEFT:
        return "left";
    default:
        return "unknown";
    }
}

static bool s_member_reachable(const client_member_t *member)
{
    return member->endpoint[0] &&
           (member->state == MSG_MEMBER_ALIVE || member->state == MSG_MEMBER_SUSPECT);
}

/* The call needs a view (it talks to members, not to the UFS). */
static int s_need_view(client_ctx_t *ctx)
{
    if (ctx->view)
        return 0;
    char detail[512];
    snprintf(detail, sizeof detail, "%s", shoal_last_error()); /* shoal_fail overwrites it */
    return shoal_fail(SHOAL_EUNAVAIL, "%s", detail[0] ? detail : "no node answered VIEW");
}

/* One LOAD per (range, replica): replica j goes to the j-th owner in HRW order, and to the
 * owners after the top `replicas` if that one does not answer. All are in flight at once. */
/* `skip_first`: range 0's top owner already has it (s_load_first), so no LOAD goes there. */
static int s_load_once(client_ctx_t *ctx, const char *uri, const shoal_stat_t *stat,
                       uint32_t replicas, bool skip_first, uint64_t *bytes_loaded)
{
    client_view_t *view = ctx->view;
    uint64_t range_bytes = view->page_size * view->range_pages;
    size_t range_count = client_range_count(0, stat->size, range_bytes);
    client_range_t *ranges = calloc(range_count ? range_count : 1, sizeof *ranges);
    client_op_t *ops = calloc(range_count * replicas + 1, sizeof *ops);
    if (!ranges || !ops) {
        free(ranges);
        free(ops);
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    }
    client_range_split(0, stat->size, range_bytes, ranges);
    size_t n = 0;
    for (size_t r = 0; r < range_count; r++) {
        client_target_t order[HRW_R_MAX];
        size_t found =
            client_view_range_targets(view, uri, ranges[r].range_index,
                                      replicas + LOAD_SPARE_OWNERS, 0, 0, 0, order, HRW_R_MAX);
        for (uint32_t j = 0; j < replicas && j < found; j++) {
            if (skip_first && r == 0 && j == 0)
                continue;
            client_op_t *op = &ops[n++];
            client_op_init(op, MSG_LOAD_REQ);
            op->request.body.load_request = (msg_load_request_t){
                .uri = uri,
                .version = stat->version,
                .offset = ranges[r].offset,
                .length = ranges[r].length,
                .replicas = replicas,
            };
            op->targets[op->target_count++] = order[j];
            for (size_t spare = replicas; spare < found && op->target_count < CLIENT_TARGETS_MAX;
                 spare++)
                op->targets[op->target_count++] = order[spare];
            op->probe_when_all_down = true;
        }
    }
    int rc = n ? client_session_run(ctx->session, ops, n, view->version, false) : 0;
    int first_error = 0;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        if (ops[k].result == 0) {
            if (bytes_loaded)
                *bytes_loaded += ops[k].reply.body.load_reply.bytes_loaded;
        } else if (!first_error || ops[k].result == SHOAL_ESTALE) {
            first_error = shoal_fail(ops[k].result, "load %s [%llu, +%llu): %s", uri,
                                     (unsigned long long)ops[k].request.body.load_request.offset,
                                     (unsigned long long)ops[k].request.body.load_request.length,
                                     ops[k].detail);
        }
    }
    for (size_t k = 0; k < n; k++)
        client_op_fini(&ops[k]);
    free(ops);
    free(ranges);
    return rc ? rc : first_error;
}

/* The LOAD of a file whose stat the client does not have: range 0 alone, with no version, at
 * its owner (the file's metadata owner), whose cold GET of that range is the stat: one origin
 * request and no HEAD. *whole is set when the reply shows the file ends inside range 0 and
 * every byte of it was loaded now (no page was cached before, fewer bytes than a range): then
 * there is nothing more to load with one replica, and no stat to ask for. */
static int s_load_first(client_ctx_t *ctx, const char *uri, uint32_t replicas,
                        uint64_t *bytes_loaded, bool *whole)
{
    client_view_t *view = ctx->view;
    uint64_t range_bytes = view->page_size * view->range_pages;
    client_target_t order[HRW_R_MAX];
    size_t found =
        client_view_range_targets(view, uri, 0, 1 + LOAD_SPARE_OWNERS, 0, 0, 0, order, HRW_R_MAX);
    *whole = false;
    if (found == 0)
        return shoal_fail(SHOAL_EUNAVAIL, "load %s: no owner in the view", uri);
    client_op_t op;
    client_op_init(&op, MSG_LOAD_REQ);
    op.request.body.load_request = (msg_load_request_t){
        .uri = uri,
        .version = "",
        .offset = 0,
        .length = range_bytes,
        .replicas = replicas,
    };
    for (size_t k = 0; k < found && op.target_count < CLIENT_TARGETS_MAX; k++)
        op.targets[op.target_count++] = order[k];
    op.probe_when_all_down = true;
    int rc = client_session_run(ctx->session, &op, 1, view->version, false);
    if (rc == 0 && op.result != 0)
        rc = shoal_fail(op.result, "load %s [0, +%llu): %s", uri, (unsigned long long)range_bytes,
                        op.detail);
    if (rc == 0) {
        const msg_load_reply_t *reply = &op.reply.body.load_reply;
        if (bytes_loaded)
            *bytes_loaded += reply->bytes_loaded;
        *whole = replicas == 1 && reply->pages_cached == 0 && reply->bytes_loaded < range_bytes;
    }
    client_op_fini(&op);
    return rc;
}

int shoal_load(shoal_client_t *client, const char *uri, int replicas, uint64_t *bytes_loaded)
{
    if (!client || !uri)
        return shoal_fail(SHOAL_EINVAL, "shoal_load: NULL argument");
    if (replicas < 1 || replicas > MSG_REPLICAS_MAX)
        return shoal_fail(SHOAL_EINVAL, "shoal_load: replicas must be 1..%d", MSG_REPLICAS_MAX);
    char normal[URI_MAX + 1];
    int rc = client_uri_normalize("load", uri, normal, sizeof normal);
    if (rc != 0)
        return rc;
    uri = normal;
    client_ctx_t ctx;
    rc = client_ctx_begin(client, &ctx);
    if (rc == 0)
        rc = s_need_view(&ctx);
    for (int attempt = 0; rc == 0 && attempt <= CLIENT_STALE_RETRIES; attempt++) {
        shoal_stat_t stat;
        int result = 0;
        bool skip_first = false;
        if (attempt == 0 && !client_stat_cached(ctx.stats, uri, &stat)) {
            /* no stat yet: range 0 first, without one (its GET is the stat) */
            bool whole = false;
            rc = s_load_first(&ctx, uri, (uint32_t)replicas, bytes_loaded, &whole);
            if (rc != 0 || whole)
                break;
            skip_first = true; /* the stat below is the metadata owner's, learnt by that GET */
        }
        rc = client_stat_many(&ctx, &uri, 1, attempt > 0, &stat, &result);
        if (rc == 0)
            rc = result;
        if (rc == 0 && stat.is_dir)
            rc = shoal_fail(SHOAL_EISDIR, "load %s: is a directory", uri);
        if (rc != 0)
            break;
        rc = s_load_once(&ctx, uri, &stat, (uint32_t)replicas, skip_first, bytes_loaded);
        if (rc != SHOAL_ESTALE)
            break;
        if (attempt < CLIENT_STALE_RETRIES) {
            CLIENT_COUNT(ctx.counters, stale_retries, 1);
            rc = 0;
        }
    }
    client_ctx_end(&ctx);
    return rc;
}

/* Starts a call that asks every reachable member: begins the call context (with a view), and
 * builds one op of `type` per reachable member (single target, tried even if marked down).
 * On success the caller owns *ops_p and *member_of_p (free both, then client_ctx_end); *n_p
 * is the op count and (*member_of_p)[k] the member index of op k. On failure nothing is left
 * to free and the context is ended. */
static int s_fanout_begin(shoal_client_t *client, client_ctx_t *ctx, msg_type_t type,
                          client_op_t **ops_p, size_t **member_of_p, size_t *n_p)
{
    int rc = client_ctx_begin(client, ctx);
    if (rc == 0)
        rc = s_need_view(ctx);
    if (rc != 0) {
        client_ctx_end(ctx);
        return rc;
    }
    const client_view_t *view = ctx->view;
    client_op_t *ops = calloc(view->count + 1, sizeof *ops);
    size_t *member_of = calloc(view->count + 1, sizeof *member_of);
    if (!ops || !member_of) {
        free(ops);
        free(member_of);
        client_ctx_end(ctx);
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < view->count; i++) {
        if (!s_member_reachable(&view->members[i]))
            continue;
        client_op_init(&ops[n], type);
        ops[n].targets[0].endpoint = view->members[i].endpoint;
        ops[n].target_count = 1;
        ops[n].ignore_down = true;
        member_of[n++] = i;
    }
    *ops_p = ops;
    *member_of_p = member_of;
    *n_p = n;
    return 0;
}

int shoal_evict(shoal_client_t *client, const char *uri, bool recursive, uint64_t *bytes_evicted)
{
    if (!client || !uri)
        return shoal_fail(SHOAL_EINVAL, "shoal_evict: NULL argument");
    char normal[URI_MAX + 1];
    int rc = client_uri_normalize("evict", uri, normal, sizeof normal);
    if (rc != 0)
        return rc;
    uri = normal;
    client_ctx_t ctx;
    client_op_t *ops;
    size_t *member_of, n;
    rc = s_fanout_begin(client, &ctx, MSG_EVICT_REQ, &ops, &member_of, &n);
    if (rc != 0)
        return rc;
    for (size_t k = 0; k < n; k++)
        ops[k].request.body.evict_request =
            (msg_evict_request_t){.uri = uri, .recursive = recursive};
    rc = client_session_run(ctx.session, ops, n, ctx.view->version, false);
    int first_error = 0;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        if (ops[k].result == 0) {
            if (bytes_evicted)
                *bytes_evicted += ops[k].reply.body.evict_reply.bytes_evicted;
        } else if (!first_error) {
            first_error = shoal_fail(ops[k].result, "evict %s on %s: %s", uri,
                                     ctx.view->members[member_of[k]].name, ops[k].detail);
        }
    }
    client_stat_cache_clear(ctx.stats);
    for (size_t k = 0; k < n; k++)
        client_op_fini(&ops[k]);
    free(ops);
    free(member_of);
    client_ctx_end(&ctx);
    return rc ? rc : first_error;
}

/* {"id", "name", "state", "incarnation", "data", "gossip", "weight", "last_heard_ms"} */
static json_t *s_member_json(const client_member_t *member)
{
    char hex[2 * MSG_NODE_ID_SIZE + 1];
    hex_encode(member->id, MSG_NODE_ID_SIZE, hex, sizeof hex, false); /* fits: cannot fail */
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:s, s:s}", "id", hex, "name",
                     member->name, "state", s_state_name(member->state), "incarnation",
                     (json_int_t)member->incarnation, "data", member->endpoint, "gossip",
                     member->gossip_endpoint, "weight", (json_int_t)member->weight, "last_heard_ms",
                     (json_int_t)member->last_heard_ms, "host_id", member->host_id, "local_socket",
                     member->local_socket);
}

/* Serialises `root` (stealing the reference) into *json_out. */
static int s_dump(json_t *root, char **json_out)
{
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!text)
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    *json_out = text;
    return 0;
}

/* The node part of a STATS reply: {"counters": {name: value}, "latency": {name: {"bounds":
 * [...], "counts": [...]}}}, added to `node`. */
static void s_stats_reply_json(const msg_stats_reply_t *reply, json_t *node)
{
    json_t *counters = json_object();
    for (uint32_t i = 0; i < reply->counter_count; i++)
        json_object_set_new(counters, reply->counters[i].name,
                            json_integer((json_int_t)reply->counters[i].value));
    json_t *latency = json_object();
    for (uint32_t i = 0; i < reply->histogram_count; i++) {
        const msg_histogram_t *histogram = &reply->histograms[i];
        json_t *bounds = json_array();
        json_t *counts = json_array();
        for (uint32_t b = 0; b < histogram->bucket_count; b++) {
            json_array_append_new(bounds, json_integer((json_int_t)histogram->bounds[b]));
            json_array_append_new(counts, json_integer((json_int_t)histogram->counts[b]));
        }
        json_object_set_new(latency, histogram->name,
                            json_pack("{s:o, s:o}", "bounds", bounds, "counts", counts));
    }
    json_object_set_new(node, "counters", counters);
    json_object_set_new(node, "latency", latency);
}

int shoal_stats(shoal_client_t *client, char **json_out)
{
    if (!client || !json_out)
        return shoal_fail(SHOAL_EINVAL, "shoal_stats: NULL argument");
    *json_out = NULL;
    client_ctx_t ctx;
    client_op_t *ops;
    size_t *member_of, n;
    int rc = s_fanout_begin(client, &ctx, MSG_STATS_REQ, &ops, &member_of, &n);
    if (rc != 0)
        return rc;
    const client_view_t *view = ctx.view;
    rc = client_session_run(ctx.session, ops, n, view->version, false);
    json_t *nodes = json_array();
    for (size_t i = 0; rc == 0 && i < view->count; i++) {
        json_t *node = s_member_json(&view->members[i]);
        size_t k = 0;
        while (k < n && member_of[k] != i)
            k++;
        if (k == n)
            json_object_set_new(node, "error", json_string("not reachable (member state)"));
        else if (ops[k].result != 0)
            json_object_set_new(node, "error", json_string(ops[k].detail));
        else
            s_stats_reply_json(&ops[k].reply.body.stats_reply, node);
        json_array_append_new(nodes, node);
    }
    json_t *root = json_pack("{s:o, s:o, s:I, s:I, s:I}", "nodes", nodes, "client",
                             client_counters_json(ctx.counters), "view_version",
                             (json_int_t)view->version, "page_size", (json_int_t)view->page_size,
                             "range_pages", (json_int_t)view->range_pages);
    if (rc == 0)
        rc = s_dump(root, json_out);
    else
        json_decref(root);
    for (size_t k = 0; k < n; k++)
        client_op_fini(&ops[k]);
    free(ops);
    free(member_of);
    client_ctx_end(&ctx);
    return rc;
}

int shoal_members(shoal_client_t *client, char **json_out)
{
    if (!client || !json_out)
        return shoal_fail(SHOAL_EINVAL, "shoal_members: NULL argument");
    *json_out = NULL;
    client_counters_t *counters = client_counters(client);
    uint64_t fetches_before =
        atomic_load(&counters->view_refreshes) + atomic_load(&counters->view_failures);
    client_ctx_t ctx;
    int rc = client_ctx_begin(client, &ctx);
    /* Always a fresh view: fetch again unless this very call just tried (other threads'
     * fetches may make us skip one; their view is as fresh). */
    if (rc == 0 && atomic_load(&counters->view_refreshes) + atomic_load(&counters->view_failures) ==
                       fetches_before) {
        client_view_t *fresh = client_view_acquire(ctx.views, ctx.session, true);
        if (fresh) {
            client_view_unref(&ctx.view);
            ctx.view = fresh;
        }
    }
    if (rc == 0)
        rc = s_need_view(&ctx);
    if (rc == 0) {
        json_t *members = json_array();
        for (size_t i = 0; i < ctx.view->count; i++)
            json_array_append_new(members, s_member_json(&ctx.view->members[i]));
        json_t *root = json_pack(
            "{s:I, s:I, s:I, s:s, s:o}", "view_version", (json_int_t)ctx.view->version, "page_size",
            (json_int_t)ctx.view->page_size, "range_pages", (json_int_t)ctx.view->range_pages,
            "answered_by", ctx.view->answered_by, "members", members);
        rc = s_dump(root, json_out);
    }
    client_ctx_end(&ctx);
    return rc;
}
