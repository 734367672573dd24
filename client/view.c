/*
 * view.c - the client's picture of the cluster: fetches the VIEW from any seed or member,
 * keeps it as a shared immutable snapshot, refreshes it when a reply carries a newer
 * view_version or a node stops answering, remembers nodes that timed out, and computes the
 * HRW targets of a key.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client_internal.h"

void client_file_key(const char *uri, const char *version, uint8_t out[16])
{
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, 16);
    crypto_generichash_update(&state, (const unsigned char *)uri, strlen(uri));
    crypto_generichash_update(&state, (const unsigned char *)"", 1);
    crypto_generichash_update(&state, (const unsigned char *)version, strlen(version));
    crypto_generichash_final(&state, out, 16);
}

/* Debug-build check of the snapshot invariants (client_internal.h). */
static void s_view_sanity(const client_view_t *view)
{
#ifndef NDEBUG
    assert(view->page_size > 0 && view->range_pages > 0);
    assert(atomic_load(&view->refs) > 0);
    for (size_t i = 0; i < view->count; i++) {
        assert(memcmp(view->hrw[i].id, view->members[i].id, HRW_ID_LEN) == 0);
        assert(view->hrw[i].weight == view->members[i].weight);
        assert(!view->hrw[i].live || view->members[i].endpoint[0] != '\0');
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
    }
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
    client_view_t *view = calloc(1, sizeof *view);
    if (!view)
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    atomic_init(&view->refs, 1);
    view->version = reply->view_version;
    view->page_size = reply->page_size;
    view->range_pages = reply->range_pages;
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
        view->count++;
        if (!to->name || !to->endpoint || !to->gossip_endpoint) {
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
    if (!ok) {
        client_view_unref(&view);
        return shoal_fail(SHOAL_ENOMEM, "out of memory");
    }
    s_view_sanity(view);
    *out = view;
    return 0;
}

void client_view_mark_stale(client_proc_t *proc, uint64_t seen_version)
{
    /* Every reply calls this: the common case (not newer) takes no lock. */
    if (seen_version <= atomic_load(&proc->view_version))
        return;
    pthread_mutex_lock(&proc->mutex);
    if (!proc->view || seen_version > proc->view->version)
        proc->view_stale = true;
    pthread_mutex_unlock(&proc->mutex);
}

void client_view_force_stale(client_proc_t *proc)
{
    pthread_mutex_lock(&proc->mutex);
    proc->view_stale = true;
    pthread_mutex_unlock(&proc->mutex);
}

/* Asks every known endpoint (the members of the old view first, then the seeds) for the VIEW
 * at once and takes the first answer, so one dead seed costs nothing while another answers.
 * Returns 0 and a new snapshot, or a negative code when no node answered in timeout_ms. */
static int s_view_fetch(shoal_client_t *client, client_session_t *session, const client_view_t *old,
                        client_view_t **out)
{
    size_t max = client->seed_count + (old ? old->count : 0);
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
            endpoint = client->seeds[i - (old ? old->count : 0)];
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
 * meanwhile the old view (or none) is used. Several threads may fetch at once: harmless. */
client_view_t *client_view_acquire(shoal_client_t *client, client_proc_t *proc,
                                   client_session_t *session, bool force)
{
    int64_t now = client_now_ms();
    pthread_mutex_lock(&proc->mutex);
    client_view_t *old = proc->view;
    if (old)
        client_view_ref(old);
    bool fetch = force || !old ||
                 (proc->view_stale && now - proc->view_fetched_ms >= CLIENT_VIEW_STALE_GAP_MS);
    if (!force && now < proc->view_retry_after_ms)
        fetch = false;
    pthread_mutex_unlock(&proc->mutex);
    if (!fetch) {
        if (!old)
            shoal_fail(SHOAL_EUNAVAIL, "no node answered VIEW recently (seeds: %s%s)",
                       client->seeds[0], client->seed_count > 1 ? ", ..." : "");
        return old;
    }
    client_view_t *fresh = NULL;
    int rc = s_view_fetch(client, session, old, &fresh);
    now = client_now_ms();
    pthread_mutex_lock(&proc->mutex);
    if (rc == 0) {
        CLIENT_COUNT(client, view_refreshes, 1);
        client_view_t *replaced = proc->view;
        client_view_ref(fresh);
        proc->view = fresh;
        atomic_store(&proc->view_version, fresh->version);
        proc->view_stale = false;
        proc->view_fetched_ms = now;
        proc->view_retry_after_ms = 0;
        pthread_mutex_unlock(&proc->mutex);
        client_view_unref(&replaced);
        client_view_unref(&old);
        return fresh;
    }
    CLIENT_COUNT(client, view_failures, 1);
    proc->view_retry_after_ms = now + CLIENT_VIEW_RETRY_MS;
    pthread_mutex_unlock(&proc->mutex);
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

void client_down_mark(client_proc_t *proc, const char *endpoint)
{
    int64_t until = client_now_ms() + CLIENT_DOWN_MS;
    pthread_mutex_lock(&proc->mutex);
    if (atomic_load(&proc->down_until_max) < until)
        atomic_store(&proc->down_until_max, until);
    size_t free_slot = SIZE_MAX;
    for (size_t i = 0; i < proc->down_count; i++) {
        if (strcmp(proc->down[i].endpoint, endpoint) == 0) {
            proc->down[i].until_ms = until;
            pthread_mutex_unlock(&proc->mutex);
            return;
        }
        if (proc->down[i].until_ms < client_now_ms() && free_slot == SIZE_MAX)
            free_slot = i;
    }
    char *copy = strdup(endpoint);
    if (copy && free_slot != SIZE_MAX) {
        free(proc->down[free_slot].endpoint);
        proc->down[free_slot] = (client_down_t){.endpoint = copy, .until_ms = until};
    } else if (copy) {
        client_down_t *grown = realloc(proc->down, (proc->down_count + 1) * sizeof *grown);
        if (grown) {
            proc->down = grown;
            proc->down[proc->down_count++] = (client_down_t){.endpoint = copy, .until_ms = until};
        } else {
            free(copy); /* out of memory: the node is just not skipped */
        }
    }
    pthread_mutex_unlock(&proc->mutex);
}

bool client_down_check(client_proc_t *proc, const char *endpoint)
{
    int64_t now = client_now_ms();
    if (atomic_load(&proc->down_until_max) <= now) /* nobody is down: no lock */
        return false;
    bool down = false;
    pthread_mutex_lock(&proc->mutex);
    {
        for (size_t i = 0; i < proc->down_count && !down; i++)
            down = proc->down[i].until_ms > now && strcmp(proc->down[i].endpoint, endpoint) == 0;
    }
    pthread_mutex_unlock(&proc->mutex);
    return down;
}
