/*
 * view.c - immutable refcounted membership snapshots and the mutex-guarded holder that swaps
 * them. One allocation per view: the header, the members and the placement array.
 */
#include "view.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Invariant: members sorted by id; hrw[i] describes members[i]; refs >= 1 while reachable. */
struct view {
    atomic_uint refs;       /* references */
    uint64_t version;       /* membership version */
    size_t count;           /* members */
    size_t live;            /* members alive or suspect */
    view_member_t *members; /* points into the same allocation */
    hrw_member_t *hrw;      /* points into the same allocation */
};

static int s_cmp_id(const void *a, const void *b)
{
    return memcmp(((const view_member_t *)a)->id, ((const view_member_t *)b)->id, SWIM_ID_LEN);
}

static view_t *s_alloc(uint64_t version, size_t n)
{
    view_t *v = calloc(1, sizeof *v + n * (sizeof(view_member_t) + sizeof(hrw_member_t)));
    if (v == NULL)
        return NULL;
    atomic_init(&v->refs, 1);
    v->version = version;
    v->count = n;
    v->members = (view_member_t *)(v + 1);
    v->hrw = (hrw_member_t *)(v->members + n);
    return v;
}

/* Sorts, fills the placement array and counts live members. */
static view_t *s_finish(view_t *v)
{
    qsort(v->members, v->count, sizeof *v->members, s_cmp_id);
    for (size_t i = 0; i < v->count; i++) {
        const view_member_t *m = &v->members[i];
        memcpy(v->hrw[i].id, m->id, SWIM_ID_LEN);
        v->hrw[i].weight = m->weight;
        v->hrw[i].live = m->state == SWIM_ALIVE || m->state == SWIM_SUSPECT;
        v->live += v->hrw[i].live;
    }
    return v;
}

view_t *view_from_swim(const swim_t *swim)
{
    size_t n = swim_member_count(swim);
    view_t *v = s_alloc(swim_version(swim), n);
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        swim_member_info_t info;
        view_member_t *m = &v->members[i];
        swim_member_at(swim, i, &info);
        memcpy(m->id, info.id, SWIM_ID_LEN);
        snprintf(m->name, sizeof m->name, "%s", info.name);
        snprintf(m->gossip_ep, sizeof m->gossip_ep, "%s", info.gossip_ep);
        snprintf(m->data_ep, sizeof m->data_ep, "%s", info.data_ep);
        snprintf(m->host_id, sizeof m->host_id, "%s", info.host_id);
        snprintf(m->local_socket, sizeof m->local_socket, "%s", info.local_socket);
        m->incarnation = info.incarnation;
        m->state = info.state;
        m->weight = info.weight;
        m->is_self = info.is_self;
        m->last_heard_ms = info.last_heard_ms;
    }
    return s_finish(v);
}

view_t *view_new(uint64_t version, const view_member_t *members, size_t n)
{
    view_t *v = s_alloc(version, n);
    if (v == NULL)
        return NULL;
    if (n > 0)
        memcpy(v->members, members, n * sizeof *members);
    return s_finish(v);
}

view_t *view_ref(view_t *view)
{
    atomic_fetch_add_explicit(&view->refs, 1, memory_order_relaxed);
    return view;
}

void view_unref(view_t **view_p)
{
    view_t *v = *view_p;
    if (v == NULL)
        return;
    *view_p = NULL;
    if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1)
        free(v);
}

uint64_t view_version(const view_t *view)
{
    return view->version;
}

size_t view_count(const view_t *view)
{
    return view->count;
}

const view_member_t *view_member(const view_t *view, size_t i)
{
    return i < view->count ? &view->members[i] : NULL;
}

const view_member_t *view_find(const view_t *view, const uint8_t id[SWIM_ID_LEN])
{
    view_member_t key;
    memcpy(key.id, id, SWIM_ID_LEN);
    return bsearch(&key, view->members, view->count, sizeof key, s_cmp_id);
}

size_t view_live_count(const view_t *view)
{
    return view->live;
}

const hrw_member_t *view_hrw(const view_t *view)
{
    return view->hrw;
}

/* ---- holder ---- */

struct view_holder {
    pthread_mutex_t lock; /* guards current */
    view_t *current;      /* one reference owned by the holder, never NULL */
};

view_holder_t *view_holder_new(void)
{
    view_holder_t *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->current = view_new(0, NULL, 0);
    if (h->current == NULL) {
        free(h);
        return NULL;
    }
    pthread_mutex_init(&h->lock, NULL);
    return h;
}

void view_holder_destroy(view_holder_t **holder_p)
{
    view_holder_t *h = *holder_p;
    if (h == NULL)
        return;
    view_unref(&h->current);
    pthread_mutex_destroy(&h->lock);
    free(h);
    *holder_p = NULL;
}

void view_holder_publish(view_holder_t *holder, view_t **view_p)
{
    view_t *v = *view_p, *old = NULL;
    *view_p = NULL;
    if (v == NULL)
        return;
    pthread_mutex_lock(&holder->lock);
    if (v->version >= holder->current->version) {
        old = holder->current;
        holder->current = v;
    } else {
        old = v;
    }
    pthread_mutex_unlock(&holder->lock);
    view_unref(&old); /* outside the lock: freeing can take a while */
}

view_t *view_holder_get(view_holder_t *holder)
{
    pthread_mutex_lock(&holder->lock);
    view_t *v = view_ref(holder->current);
    pthread_mutex_unlock(&holder->lock);
    return v;
}
