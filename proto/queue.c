/*
 * queue.c - bounded blocking FIFO (queue.h): a ring of (pointer, weight) slots that grows by
 * doubling, one mutex, and two CLOCK_MONOTONIC condition variables (not empty, not full).
 */
#include "queue.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "clock.h"

#define QUEUE_MIN_CAPACITY 16 /* first ring allocation, in slots */

typedef struct s_slot {
    void *item;      /* the pointer pushed */
    uint64_t weight; /* its weight */
} s_slot_t;

struct queue {
    pthread_mutex_t lock;     /* guards everything below */
    pthread_cond_t not_empty; /* signalled on push and close */
    pthread_cond_t not_full;  /* signalled on pop and close */
    s_slot_t *ring;           /* capacity slots; NULL until the first push */
    size_t capacity;          /* slots allocated */
    size_t head;              /* index of the oldest item */
    size_t len;               /* items queued */
    uint64_t weight;          /* sum of the queued weights */
    size_t max_items;         /* bound on len, 0 for none */
    uint64_t max_weight;      /* bound on weight, 0 for none */
    bool closed;              /* pushes refused, waiters woken */
};

queue_t *queue_new(size_t max_items, uint64_t max_weight)
{
    queue_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->not_empty, &attr);
    pthread_cond_init(&self->not_full, &attr);
    pthread_condattr_destroy(&attr);
    self->max_items = max_items;
    self->max_weight = max_weight;
    return self;
}

void queue_destroy(queue_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    queue_t *self = *self_p;
    pthread_cond_destroy(&self->not_empty);
    pthread_cond_destroy(&self->not_full);
    pthread_mutex_destroy(&self->lock);
    free(self->ring);
    free(self);
    *self_p = NULL;
}

/* Waits on `cond` until signalled or monotonic `deadline` (CLOCK_NEVER: no limit). Returns false
 * when the deadline has passed. Called with the lock held. */
static bool s_wait(queue_t *self, pthread_cond_t *cond, int64_t deadline)
{
    if (deadline == CLOCK_NEVER) {
        pthread_cond_wait(cond, &self->lock);
        return true;
    }
    struct timespec until = clock_timespec(deadline);
    return pthread_cond_timedwait(cond, &self->lock, &until) != ETIMEDOUT;
}

static bool s_full(const queue_t *self, uint64_t weight)
{
    if (self->len == 0)
        return false; /* one item always fits */
    if (self->max_items && self->len >= self->max_items)
        return true;
    return self->max_weight &&
           (weight > self->max_weight - self->weight || self->weight > self->max_weight);
}

/* Doubles the ring, unrolling it so that the oldest item is at index 0. Lock held. */
static int s_grow(queue_t *self)
{
    size_t capacity = self->capacity ? self->capacity * 2 : QUEUE_MIN_CAPACITY;
    if (capacity < self->capacity || capacity > SIZE_MAX / sizeof(s_slot_t))
        return SHOAL_ENOMEM;
    s_slot_t *ring = malloc(capacity * sizeof *ring);
    if (ring == NULL)
        return SHOAL_ENOMEM;
    for (size_t i = 0; i < self->len; i++)
        ring[i] = self->ring[(self->head + i) % self->capacity];
    free(self->ring);
    self->ring = ring;
    self->capacity = capacity;
    self->head = 0;
    return 0;
}

int queue_push(queue_t *self, void *item, uint64_t weight, int64_t timeout_ns)
{
    int64_t deadline = timeout_ns < 0 ? CLOCK_NEVER : clock_deadline_ns(timeout_ns);
    int rc = 0;
    pthread_mutex_lock(&self->lock);
    for (;;) {
        if (self->closed) {
            rc = SHOAL_ECANCELED;
            goto done;
        }
        if (!s_full(self, weight))
            break;
        if (timeout_ns == 0 || !s_wait(self, &self->not_full, deadline)) {
            rc = self->closed ? SHOAL_ECANCELED : SHOAL_EBUSY;
            if (rc == SHOAL_EBUSY && !s_full(self, weight))
                break; /* room came with the timeout */
            goto done;
        }
    }
    if (self->len == self->capacity && (rc = s_grow(self)) < 0)
        goto done;
    self->ring[(self->head + self->len) % self->capacity] = (s_slot_t){item, weight};
    self->len++;
    self->weight += weight;
    rc = 0;
    pthread_cond_signal(&self->not_empty);
done:
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int queue_pop(queue_t *self, void **item_p, uint64_t *weight_p, int64_t timeout_ns)
{
    int64_t deadline = timeout_ns < 0 ? CLOCK_NEVER : clock_deadline_ns(timeout_ns);
    int rc = 0;
    pthread_mutex_lock(&self->lock);
    while (self->len == 0) {
        if (self->closed) {
            rc = SHOAL_ECANCELED;
            goto done;
        }
        if (timeout_ns == 0 || !s_wait(self, &self->not_empty, deadline)) {
            if (self->len > 0)
                break; /* an item came with the timeout */
            rc = self->closed ? SHOAL_ECANCELED : SHOAL_ETIMEDOUT;
            goto done;
        }
    }
    s_slot_t slot = self->ring[self->head];
    self->head = (self->head + 1) % self->capacity;
    self->len--;
    self->weight -= slot.weight;
    *item_p = slot.item;
    if (weight_p)
        *weight_p = slot.weight;
    /* a pop can make room for several small waiting pushes: wake them all to re-check */
    pthread_cond_broadcast(&self->not_full);
done:
    pthread_mutex_unlock(&self->lock);
    return rc;
}

void queue_close(queue_t *self)
{
    pthread_mutex_lock(&self->lock);
    self->closed = true;
    pthread_cond_broadcast(&self->not_empty);
    pthread_cond_broadcast(&self->not_full);
    pthread_mutex_unlock(&self->lock);
}

bool queue_is_closed(queue_t *self)
{
    pthread_mutex_lock(&self->lock);
    bool closed = self->closed;
    pthread_mutex_unlock(&self->lock);
    return closed;
}

size_t queue_len(queue_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t len = self->len;
    pthread_mutex_unlock(&self->lock);
    return len;
}

uint64_t queue_weight(queue_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t weight = self->weight;
    pthread_mutex_unlock(&self->lock);
    return weight;
}

void queue_sanity(queue_t *self)
{
#ifndef NDEBUG
    pthread_mutex_lock(&self->lock);
    assert(self->len <= self->capacity);
    assert((self->ring == NULL) == (self->capacity == 0));
    assert(self->capacity == 0 || self->head < self->capacity);
    assert(self->max_items == 0 || self->len <= self->max_items);
    uint64_t sum = 0;
    for (size_t i = 0; i < self->len; i++)
        sum += self->ring[(self->head + i) % self->capacity].weight;
    assert(sum == self->weight);
    assert(self->max_weight == 0 || self->weight <= self->max_weight || self->len == 1);
    assert(self->len == 0 || self->weight >= self->ring[self->head].weight);
    pthread_mutex_unlock(&self->lock);
#else
    (void)self;
#endif
}
