/*
 * membership.c - the node's membership: a member array replaced whole under a mutex, an
 * atomic version for the hot path, and HRW placement over the live members (see
 * membership.h).
 */
#include "membership.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hrw.h"

/* Invariant: hrw[i] describes members[i] (live = alive or suspect with a data endpoint). */
struct membership {
    pthread_mutex_t lock;              /* guards members, hrw and member_count */
    membership_member_t *members;      /* member_count members, owned */
    hrw_member_t *hrw;                 /* member_count placement entries, owned */
    size_t member_count;               /* entries in members */
    _Atomic uint64_t version;          /* see membership.h */
    uint64_t page_size;                /* cluster page size, carried in VIEW replies */
    uint32_t range_pages;              /* cluster range size in pages */
    uint8_t self_id[MSG_NODE_ID_SIZE]; /* this node */
    membership_observer_fn *observer;  /* called after every set (set before the writer runs) */
    void *observer_ctx;                /* passed to observer */
};

membership_t *membership_new(uint64_t page_size, uint32_t range_pages,
                             const uint8_t self_id[MSG_NODE_ID_SIZE])
{
    membership_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return NULL;
    pthread_mutex_init(&self->lock, NULL);
    atomic_init(&self->version, 0);
    self->page_size = page_size;
    self->range_pages = range_pages;
    memcpy(self->self_id, self_id, MSG_NODE_ID_SIZE);
    return self;
}

void membership_destroy(membership_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    membership_t *self = *self_p;
    pthread_mutex_destroy(&self->lock);
    free(self->members);
    free(self->hrw);
    free(self);
    *self_p = NULL;
}

/* Whether two lists differ in anything but last_heard_ns (same order expected: the gossip
 * view is sorted by id). */
static bool s_changed(const membership_member_t *a, size_t a_count, const membership_member_t *b,
                      size_t b_count)
{
    if (a_count != b_count)
        return true;
    for (size_t i = 0; i < a_count; i++) {
        membership_member_t x = a[i], y = b[i];
        x.last_heard_ns = y.last_heard_ns = 0;
        if (memcmp(x.id, y.id, sizeof x.id) != 0 || strcmp(x.name, y.name) != 0 ||
            strcmp(x.data_endpoint, y.data_endpoint) != 0 ||
            strcmp(x.gossip_endpoint, y.gossip_endpoint) != 0 ||
            strcmp(x.host_id, y.host_id) != 0 || strcmp(x.local_socket, y.local_socket) != 0 ||
            x.state != y.state || x.incarnation != y.incarnation || x.weight != y.weight)
            return true;
    }
    return false;
}

int membership_set_members(membership_t *self, const membership_member_t *members, size_t count)
{
    if (self == NULL || (count > 0 && members == NULL) || count > MSG_MEMBERS_MAX)
        return shoal_fail(SHOAL_EINVAL, "membership_set_members: bad arguments");
    membership_member_t *copy = NULL;
    hrw_member_t *hrw = NULL;
    if (count > 0) {
        copy = malloc(count * sizeof *copy);
        hrw = calloc(count, sizeof *hrw);
        if (copy == NULL || hrw == NULL) {
            free(copy);
            free(hrw);
            return shoal_fail(SHOAL_ENOMEM, "membership_set_members: out of memory");
        }
        memcpy(copy, members, count * sizeof *copy);
        for (size_t i = 0; i < count; i++) {
            memcpy(hrw[i].id, copy[i].id, HRW_ID_LEN);
            hrw[i].weight = copy[i].weight;
            hrw[i].live = copy[i].data_endpoint[0] != '\0' && (copy[i].state == MSG_MEMBER_ALIVE ||
                                                               copy[i].state == MSG_MEMBER_SUSPECT);
        }
    }
    pthread_mutex_lock(&self->lock);
    bool changed = s_changed(self->members, self->member_count, copy, count) ||
                   atomic_load(&self->version) == 0;
    free(self->members);
    free(self->hrw);
    self->members = copy;
    self->hrw = hrw;
    self->member_count = count;
    if (changed) {
        uint64_t next = atomic_load(&self->version) + 1;
        uint64_t wall = (uint64_t)clock_real_ms();
        atomic_store(&self->version, wall > next ? wall : next);
    }
    pthread_mutex_unlock(&self->lock);
    if (self->observer != NULL)
        self->observer(self->observer_ctx);
    return 0;
}

void membership_set_observer(membership_t *self, membership_observer_fn *observer, void *ctx)
{
    assert(self != NULL);
    self->observer = observer;
    self->observer_ctx = ctx;
}

uint64_t membership_version(membership_t *self)
{
    return atomic_load_explicit(&self->version, memory_order_relaxed);
}

size_t membership_member_count(membership_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t count = self->member_count;
    pthread_mutex_unlock(&self->lock);
    return count;
}

int membership_find(membership_t *self, const uint8_t id[MSG_NODE_ID_SIZE],
                    membership_member_t *out)
{
    int rc = SHOAL_ENOENT;
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < self->member_count; i++)
        if (memcmp(self->members[i].id, id, MSG_NODE_ID_SIZE) == 0) {
            *out = self->members[i];
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int membership_owner(membership_t *self, const uint8_t *key, size_t key_len, char *endpoint,
                     size_t cap)
{
    int rc = 1;
    pthread_mutex_lock(&self->lock);
    size_t index = 0;
    if (hrw_owners(self->hrw, self->member_count, key, key_len, 1, &index) == 1 &&
        memcmp(self->members[index].id, self->self_id, MSG_NODE_ID_SIZE) != 0) {
        snprintf(endpoint, cap, "%s", self->members[index].data_endpoint);
        rc = 0;
    }
    pthread_mutex_unlock(&self->lock);
    return rc;
}

/* Encodes under the lock: the member strings are borrowed from the array, which the lock keeps
 * alive; encoding a few thousand members is cheap next to a view change. */
int membership_encode_reply(membership_t *self, uint64_t request_id, msg_buf_t *out)
{
    pthread_mutex_lock(&self->lock);
    size_t count = self->member_count;
    msg_member_t *wire = count ? calloc(count, sizeof *wire) : NULL;
    if (count && wire == NULL) {
        pthread_mutex_unlock(&self->lock);
        return shoal_fail(SHOAL_ENOMEM, "membership_encode_reply: out of memory");
    }
    int64_t now = clock_mono_ns();
    for (size_t i = 0; i < count; i++) {
        const membership_member_t *member = &self->members[i];
        memcpy(wire[i].id, member->id, MSG_NODE_ID_SIZE);
        wire[i].name = member->name;
        wire[i].data_endpoint = member->data_endpoint;
        wire[i].gossip_endpoint = member->gossip_endpoint;
        wire[i].host_id = member->host_id;
        wire[i].local_socket = member->local_socket;
        wire[i].state = member->state;
        wire[i].incarnation = member->incarnation;
        wire[i].weight = member->weight;
        wire[i].last_heard_ms = member->last_heard_ns > 0 && now > member->last_heard_ns
                                    ? (uint64_t)(now - member->last_heard_ns) / 1000000u
                                    : 0;
    }
    uint64_t version = membership_version(self);
    msg_t reply;
    msg_init(&reply, MSG_VIEW_REP, request_id, version);
    reply.body.view_reply.view_version = version;
    reply.body.view_reply.page_size = self->page_size;
    reply.body.view_reply.range_pages = self->range_pages;
    reply.body.view_reply.placement = HRW_PLACEMENT_VERSION; /* the hash membership_owner uses */
    reply.body.view_reply.member_count = (uint32_t)count;
    reply.body.view_reply.members = wire;
    int rc = msg_encode(&reply, out);
    pthread_mutex_unlock(&self->lock);
    free(wire);
    return rc;
}
