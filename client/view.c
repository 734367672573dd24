/*
 * view.c - the client's picture of the cluster: fetches the VIEW from any seed or member,
 * keeps it as a shared immutable snapshot, refreshes it when the health record says a reply
 * carried a newer view_version or a node stopped answering, and computes the HRW targets of a
 * key.
 */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "clock.h"
#include "hostid.h"
#include "view.h"

/* Invariant: view is NULL or holds one reference of its own; with a view, the health record
 * knows its version (client_health_view_installed). */
struct client_view_cache {
    char *const *seeds;          /* seed endpoints; borrowed from the client */
    size_t seed_count;           /* entries in seeds */
    client_health_t *health;     /* stale flag and installed version; borrowed */
    client_counters_t *counters; /* view_refreshes, view_failures; borrowed */
    pthread_mutex_t mutex;       /* guards the fields below */
    client_view_t *view;         /* current view, or NULL before the first fetch */
    int64_t view_retry_after_ms; /* no fetch before this (after a failed one) */
    int64_t view_fetched_ms;     /* when the current view was fetched */
    int refused_code;            /* SHOAL_ECONFIG when the last fetch refused a view, else 0 */
    char refused[512];           /* why it was refused (both placement versions named) */
};

static pthread_once_t s_host_once = PTHREAD_ONCE_INIT;
static char s_host_id[HOST_ID_MAX + 1]; /* written once, by s_host_init */

static void s_host_init(void)
{
    if (host_id_get(s_host_id, sizeof s_host_id) < 0)
        s_host_id[0] = '\0';
}

const char *client_host_id(void)
{
    pthread_once(&s_host_once, s_host_init);
    return s_host_id;
}

const client_local_member_t *client_view_local(const client_view_t *view, size_t *count_out)
{
    *count_out = view->local_count;
    return view->local_count ? view->local : NULL;
}

/* Fills view->local with the members on this host that have a socket and are live. Returns 0 or
 * SHOAL_ENOMEM. */
static int s_find_local(client_view_t *view)
{
    const char *host = client_host_id();
    if (host[0] == '\0' || view->count == 0)
        return 0;
    view->local = calloc(view->count, sizeof *view->local);
    if (!view->local)
        return SHOAL_ENOMEM;
    for (size_t i = 0; i < view->count; i++) {
        const client_member_t *member = &view->members[i];
        bool live = member->state == MSG_MEMBER_ALIVE || member->state == MSG_MEMBER_SUSPECT;
        if (!live || member->local_socket[0] == '\0' || strcmp(member->host_id, host) != 0)
            continue;
        client_local_member_t *local = &view->local[view->local_count++];
        local->node_id = member->id;
        local->socket_path = member->local_socket;
        local->index = i;
    }
    return 0;
}

void client_range_key(const char *normal_uri, uint64_t range_index, uint8_t out[HRW_RANGE_KEY_LEN])
{
    hrw_uri_range_key(normal_uri, range_index, out);
}

void client_file_key(const char *uri, const char *version, uint8_t out[16])
{
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, 16);
    crypto_generichash_update(&state, (const unsigned char *)uri, strlen(uri));
    crypto_generichash_update(&state, (const unsigned char *)"", 1);
    crypto_generichash_update(&state, (const unsigned char *)version, strlen(version));
    crypto_generichash_final(&state, out, 16);
}

/* Debug-build check of the snapshot invariants (view.h). */
static void s_view_sanity(const client_view_t *view)
{
#ifndef NDEBUG
    assert(view->page_size > 0 && view->range_pages > 0);
    assert(view->placement == HRW_PLACEMENT_VERSION);
    assert(atomic_load(&view->refs) > 0);
    for (size_t i = 0; i < view->count; i++) {
        assert(memcmp(view->hrw[i].id, view->members[i].id, HRW_ID_LEN) == 0);
        assert(view->hrw[i].weight == view->members[i].weight);
        assert(!view->hrw[i].live || view->members[i].endpoint[0] != '\0');
    }
    for (size_t k = 0; k < view->local_count; k++) {
        assert(view->local[k].index < view->count);
        assert(view->local[k].node_id == view->members[view->local[k].index].id);
        assert(view->local[k].socket_path[0] != '\0');
    }
#else
    (void)view;
#endif
}

void client_view_ref(client_view_t *view)
{
    atomic_fetch_add(&view->refs, 1);
}

void client_view_unref(client_view_t **view_p)
{
    if (!view_p || !*view_p)
        return;
    client_view_t *view = *view_p;
    *view_p = NULL;
    if (atomic_fetch_sub(&view->refs, 1) != 1)
        return;
    for (size_t i = 0; i < view->count; i++) {
        free(view->members[i].name);
        free(view->members[i].endpoint);
        free(view->members[i].gossip_endpoint);
        free(view->members[i].host_id);
        free(view->members[i].local_socket);
    }
    free(view->local);
    free(view->members);
    free(view->hrw);
    free(view->answered_by);
    free(view);
}

/* Copies a decoded VIEW reply into a snapshot with one reference. Refuses a view that would
 * make placement impossible (no page size, no member with an endpoint) with SHOAL_EPROTO. */
static int s_view_from_reply(const msg_view_reply_t *reply, const char *answered_by,
                             client_view_t **out)
{
    if (reply->page_size == 0 || reply->range_pages == 0)
        return shoal_fail(SHOAL_EPROTO, "%s sent a view without page size", answered_by);
    if (reply->placement != HRW_PLACEMENT_VERSION)
        return shoal_fail(SHOAL_ECONFIG,
                          "%s sent a view of placement version %u, this client uses placement "
                          "version %u: it would route ranges to the wrong owners (upgrade the "
                          "client and the cluster together)",
                          answered_by, reply->placement, (unsigned)HRW_PLACEMENT_VERSION);
    client_view_t *view = calloc(1, sizeof *view);
    if (!view)
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    atomic_init(&view->refs, 1);
    view->version = reply->view_version;
    view->page_size = reply->page_size;
    view->range_pages = reply->range_pages;
    view->placement = reply->placement;
    view->members = calloc(reply->member_count ? reply->member_count : 1, sizeof *view->members);
    view->hrw = calloc(reply->member_count ? reply->member_count : 1, sizeof *view->hrw);
    view->answered_by = strdup(answered_by);
    bool ok = view->members && view->hrw && view->answered_by;
    for (uint32_t i = 0; ok && i < reply->member_count; i++) {
        const msg_member_t *from = &reply->members[i];
        client_member_t *to = &view->members[view->count];
        to->name = strdup(from->name);
        to->endpoint = strdup(from->data_endpoint);
        to->gossip_endpoint = strdup(from->gossip_endpoint);
        to->host_id = strdup(from->host_id);
        to->local_socket = strdup(from->local_socket);
        view->count++;
        if (!to->name || !to->endpoint || !to->gossip_endpoint || !to->host_id ||
            !to->local_socket) {
            ok = false;
            break;
        }
        memcpy(to->id, from->id, MSG_NODE_ID_SIZE);
        to->state = from->state;
        to->incarnation = from->incarnation;
        to->weight = from->weight;
        to->last_heard_ms = from->last_heard_ms;
        memcpy(view->hrw[i].id, from->id, HRW_ID_LEN);
        view->hrw[i].weight = from->weight;
        view->hrw[i].live = to->endpoint[0] &&
                            (from->state == MSG_MEMBER_ALIVE || from->state == MSG_MEMBER_SUSPECT);
    }
    if (!ok || s_find_local(view) != 0) {
        client_view_unref(&view);
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    }
    s_view_sanity(view);
    *out = view;
    return 0;
}

client_view_cache_t *client_view_cache_new(char *const *seeds, size_t seed_count,
                                           client_health_t *health, client_counters_t *counters)
{
    client_view_cache_t *cache = calloc(1, sizeof *cache);
    if (!cache)
        return NULL;
    cache->seeds = seeds;
    cache->seed_count = seed_count;
    cache->health = health;
    cache->counters = counters;
    pthread_mutex_init(&cache->mutex, NULL);
    return cache;
}

void client_view_cache_destroy(client_view_cache_t **cache_p)
{
    if (!cache_p || !*cache_p)
        return;
    client_view_cache_t *cache = *cache_p;
    *cache_p = NULL;
    client_view_unref(&cache->view);
    pthread_mutex_destroy(&cache->mutex);
    free(cache);
}

/* Asks every known endpoint (the members of the old view first, then the seeds) for the VIEW
 * at once and takes the first answer, so one dead seed costs nothing while another answers.
 * Returns 0 and a new snapshot, or a negative code when no node answered in timeout_ms. */
static int s_view_fetch(const client_view_cache_t *cache, client_session_t *session,
                        const client_view_t *old, client_view_t **out)
{
    size_t max = cache->seed_count + (old ? old->count : 0);
    client_op_t *ops = calloc(max, sizeof *ops);
    if (!ops)
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    size_t count = 0;
    for (size_t i = 0; i < max; i++) {
        const char *endpoint;
        if (old && i < old->count) {
            if (!old->hrw[i].live)
                continue;
            endpoint = old->members[i].endpoint;
        } else {
            endpoint = cache->seeds[i - (old ? old->count : 0)];
        }
        bool seen = false;
        for (size_t k = 0; k < count && !seen; k++)
            seen = strcmp(ops[k].targets[0].endpoint, endpoint) == 0;
        if (seen)
            continue;
        client_op_init(&ops[count], MSG_VIEW_REQ);
        ops[count].targets[0].endpoint = endpoint;
        ops[count].target_count = 1;
        ops[count].ignore_down = true;
        count++;
    }
    int rc = client_session_run(session, ops, count, old ? old->version : 0, true);
    const char *why = "no seed to ask";
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (ops[i].result != 0) {
            if (ops[i].result != SHOAL_ECANCELED)
                why = ops[i].detail;
            continue;
        }
        rc = s_view_from_reply(&ops[i].reply.body.view_reply, ops[i].targets[0].endpoint, out);
        why = NULL;
        break;
    }
    if (rc == 0 && why)
        rc = shoal_fail(SHOAL_EUNAVAIL, "no node answered VIEW: %s", why);
    for (size_t i = 0; i < count; i++)
        client_op_fini(&ops[i]);
    free(ops);
    return rc;
}

/* A view is refetched when there is none, when `force`, or when it was marked stale (at most
 * every CLIENT_VIEW_STALE_GAP_MS). After a failed fetch the next attempt waits
 * CLIENT_VIEW_RETRY_MS, so a dead cluster costs one timeout per second, not one per call;
 * meanwhile the old view (or none) is used. Several threads may fetch at once: harmless.
 * Lock order: the cache's mutex, then the health record's (which never calls out). */
client_view_t *client_view_acquire(client_view_cache_t *cache, client_session_t *session,
                                   bool force)
{
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&cache->mutex);
    client_view_t *old = cache->view;
    if (old)
        client_view_ref(old);
    bool fetch = force || !old ||
                 (client_health_stale(cache->health) &&
                  now - cache->view_fetched_ms >= CLIENT_VIEW_STALE_GAP_MS);
    if (!force && now < cache->view_retry_after_ms)
        fetch = false;
    pthread_mutex_unlock(&cache->mutex);
    if (!fetch) {
        if (!old) {
            char refused[sizeof cache->refused];
            pthread_mutex_lock(&cache->mutex);
            int refused_code = cache->refused_code;
            memcpy(refused, cache->refused, sizeof refused);
            pthread_mutex_unlock(&cache->mutex);
            if (refused_code != 0) /* a node answered, with a view this client cannot use */
                shoal_fail(refused_code, "%s", refused);
            else
                shoal_fail(SHOAL_EUNAVAIL, "no node answered VIEW recently (seeds: %s%s)",
                           cache->seeds[0], cache->seed_count > 1 ? ", ..." : "");
        }
        return old;
    }
    client_view_t *fresh = NULL;
    int rc = s_view_fetch(cache, session, old, &fresh);
    now = clock_mono_ms();
    pthread_mutex_lock(&cache->mutex);
    if (rc == 0) {
        CLIENT_COUNT(cache->counters, view_refreshes, 1);
        client_view_t *replaced = cache->view;
        client_view_ref(fresh);
        cache->view = fresh;
        client_health_view_installed(cache->health, fresh->version);
        cache->view_fetched_ms = now;
        cache->view_retry_after_ms = 0;
        cache->refused_code = 0;
        pthread_mutex_unlock(&cache->mutex);
        client_view_unref(&replaced);
        client_view_unref(&old);
        return fresh;
    }
    CLIENT_COUNT(cache->counters, view_failures, 1);
    cache->view_retry_after_ms = now + CLIENT_VIEW_RETRY_MS;
    cache->refused_code = rc == SHOAL_ECONFIG ? rc : 0;
    snprintf(cache->refused, sizeof cache->refused, "%s",
             rc == SHOAL_ECONFIG ? shoal_last_error() : "");
    pthread_mutex_unlock(&cache->mutex);
    return old; /* possibly NULL: the last error says why */
}

size_t client_view_targets(const client_view_t *view, const uint8_t *key, size_t key_len,
                           size_t owner_tries, uint32_t owner_flags, size_t other_tries,
                           uint32_t other_flags, client_target_t *out, size_t max)
{
    size_t want = owner_tries + other_tries;
    if (want > max)
        want = max;
    if (want > HRW_R_MAX)
        want = HRW_R_MAX;
    if (key_len > HRW_KEY_MAX)
        key_len = HRW_KEY_MAX;
    size_t indexes[HRW_R_MAX];
    size_t found = hrw_owners(view->hrw, view->count, key, key_len, want, indexes);
    for (size_t i = 0; i < found; i++) {
        out[i].endpoint = view->members[indexes[i]].endpoint;
        out[i].owner = i < owner_tries;
        out[i].read_flags = i < owner_tries ? owner_flags : other_flags;
    }
    return found;
}

size_t client_view_range_targets(const client_view_t *view, const char *normal_uri,
                                 uint64_t range_index, size_t owner_tries, uint32_t owner_flags,
                                 size_t other_tries, uint32_t other_flags, client_target_t *out,
                                 size_t max)
{
    uint8_t key[HRW_RANGE_KEY_LEN];
    client_range_key(normal_uri, range_index, key);
    return client_view_targets(view, key, sizeof key, owner_tries, owner_flags, other_tries,
                               other_flags, out, max);
}

const client_member_t *client_view_member_of(const client_view_t *view, const char *endpoint)
{
    for (size_t i = 0; view && endpoint && i < view->count; i++)
        if (view->members[i].endpoint == endpoint)
            return &view->members[i];
    for (size_t i = 0; view && endpoint && i < view->count; i++)
        if (strcmp(view->members[i].endpoint, endpoint) == 0)
            return &view->members[i];
    return NULL;
}
