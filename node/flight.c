/*
 * flight.c - single flight and the range buffer pool (see flight.h). The table is a short list:
 * a fetch thread has at most the ranges of one request in it (running, or held while it stores
 * them), so a linear scan is cheaper than a hash.
 */
#include "flight.h"

#include <assert.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define S_PAGE 4096u
#define S_HUGE (2u << 20) /* transparent huge page size on x86-64 */

struct range_pool {
    pthread_mutex_t lock;    /* guards idle and idle_count */
    _Atomic int refs;        /* the owner's reference + one per buffer out of the pool */
    size_t buffer_bytes;     /* capacity of every buffer */
    size_t map_bytes;        /* bytes mapped per buffer: a page for the header, then the data */
    size_t max_idle;         /* idle buffers kept */
    size_t idle_count;       /* buffers in idle */
    range_buf_t *idle;       /* idle buffers (a stack: the most recently used is warmest) */
    bool closed;             /* the owner dropped it: no more idle buffers are kept */
    _Atomic uint64_t mapped; /* buffers mapped since creation */
    _Atomic uint64_t reused; /* buffers handed out from idle */
};

range_buf_t *range_buf_new(size_t capacity)
{
    range_buf_t *buf = malloc(sizeof *buf + (capacity ? capacity : 1));
    if (buf == NULL)
        return NULL;
    atomic_init(&buf->refs, 1);
    buf->len = 0;
    buf->data = (uint8_t *)(buf + 1);
    buf->pool = NULL;
    buf->next = NULL;
    buf->has_stat = false;
    return buf;
}

range_buf_t *range_buf_ref(range_buf_t *buf)
{
    atomic_fetch_add(&buf->refs, 1);
    return buf;
}

static void s_pool_unref(range_pool_t *pool)
{
    if (atomic_fetch_sub(&pool->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

static void s_unmap(range_pool_t *pool, range_buf_t *buf)
{
    munmap(buf, pool->map_bytes);
}

/* A buffer's last reference is gone: back to the idle stack, or unmapped when the stack is
 * full or the owner has dropped the pool. */
static void s_pool_put(range_pool_t *pool, range_buf_t *buf)
{
    pthread_mutex_lock(&pool->lock);
    bool keep = !pool->closed && pool->idle_count < pool->max_idle;
    if (keep) {
        buf->next = pool->idle;
        pool->idle = buf;
        pool->idle_count++;
    }
    pthread_mutex_unlock(&pool->lock);
    if (!keep)
        s_unmap(pool, buf);
    s_pool_unref(pool);
}

void range_buf_release(range_buf_t **buf_p)
{
    if (buf_p == NULL || *buf_p == NULL)
        return;
    range_buf_t *buf = *buf_p;
    *buf_p = NULL;
    if (atomic_fetch_sub(&buf->refs, 1) != 1)
        return;
    if (buf->pool)
        s_pool_put(buf->pool, buf);
    else
        free(buf);
}

range_pool_t *range_pool_new(size_t buffer_bytes, size_t max_idle)
{
    range_pool_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return NULL;
    pthread_mutex_init(&self->lock, NULL);
    atomic_init(&self->refs, 1);
    atomic_init(&self->mapped, 0);
    atomic_init(&self->reused, 0);
    self->buffer_bytes = buffer_bytes;
    self->map_bytes = S_PAGE + (buffer_bytes + S_PAGE - 1) / S_PAGE * S_PAGE;
    self->max_idle = max_idle;
    return self;
}

void range_pool_destroy(range_pool_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    range_pool_t *self = *self_p;
    *self_p = NULL;
    pthread_mutex_lock(&self->lock);
    self->closed = true;
    range_buf_t *idle = self->idle;
    self->idle = NULL;
    self->idle_count = 0;
    pthread_mutex_unlock(&self->lock);
    while (idle) {
        range_buf_t *next = idle->next;
        s_unmap(self, idle);
        idle = next;
    }
    s_pool_unref(self);
}

/* Maps a fresh buffer: the header in the first page, the data page-aligned after it. When the
 * data spans at least one transparent huge page, the mapping starts on a huge page boundary (it
 * is over-mapped, then trimmed), so every whole 2 MiB of it can be one huge page, and with
 * `advise` asks for them (2 faults per 4 MiB instead of 1024, fewer TLB misses in the copies; a
 * hint: the kernel may refuse, and in `madvise` THP mode this is what opts in). */
static range_buf_t *s_pool_map(range_pool_t *pool, bool advise)
{
    bool huge = pool->buffer_bytes >= S_HUGE;
    size_t slack = huge ? S_HUGE - S_PAGE : 0;
    uint8_t *raw = mmap(NULL, pool->map_bytes + slack, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uint8_t *base = raw;
    if (huge) {
        base = (uint8_t *)(((uintptr_t)raw + S_HUGE - 1) & ~(uintptr_t)(S_HUGE - 1));
        size_t head = (size_t)(base - raw);
        if (head)
            munmap(raw, head);
        if (slack - head)
            munmap(base + pool->map_bytes, slack - head);
#ifdef MADV_HUGEPAGE
        if (advise)
            (void)madvise(base, pool->map_bytes, MADV_HUGEPAGE);
#else
        (void)advise;
#endif
    }
    range_buf_t *buf = (range_buf_t *)base;
    buf->data = base + S_PAGE;
    buf->pool = pool;
    atomic_fetch_add(&pool->mapped, 1);
    return buf;
}

static range_buf_t *s_get(range_pool_t *pool, size_t capacity, bool advise)
{
    if (pool == NULL || capacity > pool->buffer_bytes || capacity <= pool->buffer_bytes / 2)
        return range_buf_new(capacity);
    pthread_mutex_lock(&pool->lock);
    range_buf_t *buf = pool->idle;
    if (buf) {
        pool->idle = buf->next;
        pool->idle_count--;
    }
    pthread_mutex_unlock(&pool->lock);
    if (buf)
        atomic_fetch_add(&pool->reused, 1);
    else if ((buf = s_pool_map(pool, advise)) == NULL)
        return range_buf_new(capacity); /* no mapping: the allocator may still have memory */
    atomic_fetch_add(&pool->refs, 1);
    atomic_init(&buf->refs, 1);
    buf->len = 0;
    buf->next = NULL;
    buf->has_stat = false;
    return buf;
}

range_buf_t *range_buf_get(range_pool_t *pool, size_t capacity)
{
    return s_get(pool, capacity, true);
}

range_buf_t *range_buf_get_unsized(range_pool_t *pool, size_t capacity)
{
    return s_get(pool, capacity, false);
}

void range_pool_counts(range_pool_t *self, uint64_t *mapped, uint64_t *reused)
{
    *mapped = atomic_load(&self->mapped);
    *reused = atomic_load(&self->reused);
}

void range_buf_free_fn(void *data, void *hint)
{
    (void)data;
    range_buf_t *buf = hint;
    range_buf_release(&buf);
}

/* One read in flight. Invariant: it is in the table's list iff !gone; done implies the leader's
 * fn returned; gone implies done. */
struct flight {
    struct flight *next; /* next in the table's list */
    flight_key_t key;    /* what is being read */
    uint64_t serial;     /* order of creation, for flight_quiesce */
    int users;           /* leader + waiters still holding it */
    bool done;           /* the leader's fn returned: result and buf are set */
    bool gone;           /* out of the table: pages stored (or never to be) */
    int result;          /* fn's result, once done */
    range_buf_t *buf;    /* fn's buffer (one reference), once done and successful */
};

struct flight_table {
    pthread_mutex_t lock;   /* guards the list, the serials and every flight's fields */
    pthread_cond_t change;  /* broadcast when a flight becomes done or gone */
    struct flight *flights; /* flights not gone */
    uint64_t next_serial;   /* serial of the next flight */
};

flight_table_t *flight_table_new(void)
{
    flight_table_t *self = calloc(1, sizeof *self);
    if (self) {
        pthread_mutex_init(&self->lock, NULL);
        pthread_cond_init(&self->change, NULL);
    }
    return self;
}

void flight_table_destroy(flight_table_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    flight_table_t *self = *self_p;
    pthread_cond_destroy(&self->change);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

static bool s_key_equal(const flight_key_t *a, const flight_key_t *b)
{
    return a->range_index == b->range_index && a->store == b->store && a->cold == b->cold &&
           memcmp(a->file_key, b->file_key, sizeof a->file_key) == 0;
}

/*
 * Checks the table's invariants (assert-only: compiled out under NDEBUG). Lock held. Every
 * flight in the list is not gone and has a user; at most one flight per key (the single
 * flight); serials are below next_serial and strictly decrease along the list (new flights go
 * first), which flight_quiesce relies on; a done flight still listed succeeded (failed ones
 * leave at once) and is held by its leader; a done cold flight (range key) has a buffer that
 * carries the stat its read learnt (its joiners answer with that version). O(n^2) in the flights,
 * which are bounded by the fetch threads plus the ranges in the store queue.
 */
static void flight_table_sanity(const flight_table_t *self)
{
#ifndef NDEBUG
    uint64_t above = self->next_serial;
    for (const flight_t *flight = self->flights; flight; flight = flight->next) {
        assert(!flight->gone);
        assert(flight->users > 0);
        assert(flight->serial < above);
        above = flight->serial;
        assert(!flight->done || flight->result >= 0);
        assert(flight->done || flight->buf == NULL);
        assert(!flight->done || !flight->key.cold || (flight->buf && flight->buf->has_stat));
        for (const flight_t *other = flight->next; other; other = other->next)
            assert(!s_key_equal(&flight->key, &other->key));
    }
#else
    (void)self;
#endif
}

/* Drops one user of a done flight; the last one frees it. Lock held. */
static void s_put(flight_t *flight)
{
    if (--flight->users > 0)
        return;
    range_buf_release(&flight->buf);
    free(flight);
}

/* Takes a flight out of the table and wakes everyone waiting on a change. Lock held. */
static void s_unlink(flight_table_t *self, flight_t *flight)
{
    for (flight_t **link = &self->flights; *link; link = &(*link)->next)
        if (*link == flight) {
            *link = flight->next;
            break;
        }
    flight->gone = true;
    pthread_cond_broadcast(&self->change);
}

int flight_do(flight_table_t *self, const flight_key_t *key, flight_fn fn, void *arg,
              bool wait_stored, range_buf_t **buf_out, bool *joined, flight_t **held_out)
{
    assert(self != NULL && key != NULL && fn != NULL && buf_out != NULL && joined != NULL);
    *buf_out = NULL;
    *joined = false;
    if (held_out)
        *held_out = NULL;
    pthread_mutex_lock(&self->lock);
    for (flight_t *flight = self->flights; flight; flight = flight->next) {
        if (!s_key_equal(&flight->key, key))
            continue;
        flight->users++;
        while (!flight->done || (wait_stored && !flight->gone))
            pthread_cond_wait(&self->change, &self->lock);
        int result = flight->result;
        if (result >= 0 && flight->buf)
            *buf_out = range_buf_ref(flight->buf);
        s_put(flight);
        pthread_mutex_unlock(&self->lock);
        *joined = true;
        return result;
    }
    flight_t *flight = calloc(1, sizeof *flight);
    if (flight == NULL) {
        pthread_mutex_unlock(&self->lock);
        return fn(arg, buf_out); /* no memory for sharing: read alone (and store before return) */
    }
    flight->key = *key;
    flight->serial = self->next_serial++;
    flight->users = 1;
    flight->next = self->flights;
    self->flights = flight;
    flight_table_sanity(self);
    pthread_mutex_unlock(&self->lock);

    range_buf_t *buf = NULL;
    int result = fn(arg, &buf);

    pthread_mutex_lock(&self->lock);
    flight->done = true;
    flight->result = result;
    flight->buf = result >= 0 ? buf : NULL;
    if (result < 0)
        range_buf_release(&buf);
    if (flight->buf)
        *buf_out = range_buf_ref(flight->buf);
    if (held_out && result >= 0) {
        *held_out = flight; /* the leader's use continues until flight_release */
        pthread_cond_broadcast(&self->change);
    } else {
        s_unlink(self, flight);
        s_put(flight);
    }
    flight_table_sanity(self);
    pthread_mutex_unlock(&self->lock);
    return result;
}

int flight_join(flight_table_t *self, const flight_key_t *key, range_buf_t **buf_out)
{
    assert(self != NULL && key != NULL && buf_out != NULL);
    *buf_out = NULL;
    pthread_mutex_lock(&self->lock);
    for (flight_t *flight = self->flights; flight; flight = flight->next) {
        if (!s_key_equal(&flight->key, key))
            continue;
        flight->users++;
        while (!flight->done)
            pthread_cond_wait(&self->change, &self->lock);
        if (flight->result >= 0 && flight->buf)
            *buf_out = range_buf_ref(flight->buf);
        s_put(flight);
        pthread_mutex_unlock(&self->lock);
        return 1;
    }
    pthread_mutex_unlock(&self->lock);
    return 0;
}

void flight_release(flight_table_t *self, flight_t **held_p)
{
    if (held_p == NULL || *held_p == NULL)
        return;
    flight_t *flight = *held_p;
    *held_p = NULL;
    pthread_mutex_lock(&self->lock);
    assert(flight->done && !flight->gone && flight->users > 0);
    s_unlink(self, flight);
    s_put(flight);
    flight_table_sanity(self);
    pthread_mutex_unlock(&self->lock);
}

void flight_quiesce(flight_table_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t horizon = self->next_serial;
    for (;;) {
        bool older = false;
        for (flight_t *flight = self->flights; flight && !older; flight = flight->next)
            older = flight->serial < horizon;
        if (!older)
            break;
        pthread_cond_wait(&self->change, &self->lock);
    }
    pthread_mutex_unlock(&self->lock);
}
