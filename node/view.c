/*
 * view.c - the membership view: a member array replaced whole under a mutex, and an atomic
 * version for the hot path (see view.h).
 */
#include "view.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct view {
    pthread_mutex_t lock;     /* guards members and member_count */
    view_member_t *members;   /* member_count members, owned */
    size_t member_count;      /* entries in members */
    _Atomic uint64_t version; /* bumped by every view_set_members */
    uint64_t page_size;       /* cluster page size, carried in VIEW replies */
    uint32_t range_pages;     /* cluster range size in pages */
};

view_t *view_new(uint64_t page_size, uint32_t range_pages)
{
    view_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return NULL;
    pthread_mutex_init(&self->lock, NULL);
    atomic_init(&self->version, 0);
    self->page_size = page_size;
    self->range_pages = range_pages;
    return self;
}

void view_destroy(view_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    view_t *self = *self_p;
    pthread_mutex_destroy(&self->lock);
    free(self->members);
    free(self);
    *self_p = NULL;
}

int view_set_members(view_t *self, const view_member_t *members, size_t count)
{
    if (self == NULL || (count > 0 && members == NULL) || count > MSG_MEMBERS_MAX)
        return shoal_fail(SHOAL_EINVAL, "view_set_members: bad arguments");
    view_member_t *copy = NULL;
    if (count > 0) {
        copy = malloc(count * sizeof *copy);
        if (copy == NULL)
            return shoal_fail(SHOAL_ENOMEM, "view_set_members: out of memory");
        memcpy(copy, members, count * sizeof *copy);
    }
    pthread_mutex_lock(&self->lock);
    free(self->members);
    self->members = copy;
    self->member_count = count;
    atomic_fetch_add(&self->version, 1);
    pthread_mutex_unlock(&self->lock);
    return 0;
}

uint64_t view_version(view_t *self)
{
    return atomic_load_explicit(&self->version, memory_order_relaxed);
}

size_t view_member_count(view_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t count = self->member_count;
    pthread_mutex_unlock(&self->lock);
    return count;
}

static int64_t s_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000ll + now.tv_nsec;
}

/* Encodes under the lock: the member strings are borrowed from the array, which the lock keeps
 * alive; encoding a few thousand members is cheap next to a view change. */
int view_encode_reply(view_t *self, uint64_t request_id, msg_buf_t *out)
{
    pthread_mutex_lock(&self->lock);
    size_t count = self->member_count;
    msg_member_t *wire = count ? calloc(count, sizeof *wire) : NULL;
    if (count && wire == NULL) {
        pthread_mutex_unlock(&self->lock);
        return shoal_fail(SHOAL_ENOMEM, "view_encode_reply: out of memory");
    }
    int64_t now = s_now_ns();
    for (size_t i = 0; i < count; i++) {
        const view_member_t *member = &self->members[i];
        memcpy(wire[i].id, member->id, MSG_NODE_ID_SIZE);
        wire[i].name = member->name;
        wire[i].data_endpoint = member->data_endpoint;
        wire[i].gossip_endpoint = member->gossip_endpoint;
        wire[i].state = member->state;
        wire[i].incarnation = member->incarnation;
        wire[i].weight = member->weight;
        wire[i].last_heard_ms = member->last_heard_ns > 0 && now > member->last_heard_ns
                                    ? (uint64_t)(now - member->last_heard_ns) / 1000000u
                                    : 0;
    }
    uint64_t version = view_version(self);
    msg_t reply;
    msg_init(&reply, MSG_VIEW_REP, request_id, version);
    reply.body.view_reply.view_version = version;
    reply.body.view_reply.page_size = self->page_size;
    reply.body.view_reply.range_pages = self->range_pages;
    reply.body.view_reply.member_count = (uint32_t)count;
    reply.body.view_reply.members = wire;
    int rc = msg_encode(&reply, out);
    pthread_mutex_unlock(&self->lock);
    free(wire);
    return rc;
}
