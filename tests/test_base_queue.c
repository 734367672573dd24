/*
 * test_base_queue.c - the blocking FIFO (proto/queue.h) with real threads: order, full queue
 * (fail at once, wait with a timeout, block until a pop), the weight bound and its one-item
 * exception, pop timeouts, close waking blocked pops and pushes, draining after close, and many
 * producers and consumers losing nothing.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "clock.h"
#include "queue.h"

#define MS (1000000ll) /* nanoseconds in a millisecond */

static void *s_item(uintptr_t n)
{
    return (void *)n;
}

Test(queue, fifo_order_and_counts)
{
    queue_t *q = queue_new(0, 0);
    cr_assert_not_null(q);
    for (uintptr_t i = 1; i <= 100; i++)
        cr_assert_eq(queue_push(q, s_item(i), i, 0), 0);
    cr_assert_eq(queue_len(q), 100);
    cr_assert_eq(queue_weight(q), 5050);
    queue_sanity(q);
    for (uintptr_t i = 1; i <= 100; i++) {
        void *item = NULL;
        uint64_t weight = 0;
        cr_assert_eq(queue_pop(q, &item, &weight, 0), 0);
        cr_assert_eq((uintptr_t)item, i);
        cr_assert_eq(weight, i);
        if (i % 7 == 0) /* interleave pushes so that the ring wraps */
            cr_assert_eq(queue_push(q, s_item(1000 + i), 0, 0), 0);
    }
    queue_sanity(q);
    cr_assert_eq(queue_len(q), 14);
    void *item = NULL;
    cr_assert_eq(queue_pop(q, &item, NULL, 0), 0);
    cr_assert_eq((uintptr_t)item, 1007);
    cr_assert_eq(queue_push(q, NULL, 0, 0), 0); /* NULL is an item like any other */
    queue_destroy(&q);
    cr_assert_null(q);
    queue_destroy(&q);
}

Test(queue, full_queue_fails_or_waits)
{
    queue_t *q = queue_new(2, 0);
    cr_assert_eq(queue_push(q, s_item(1), 0, 0), 0);
    cr_assert_eq(queue_push(q, s_item(2), 0, 0), 0);
    cr_assert_eq(queue_push(q, s_item(3), 0, 0), SHOAL_EBUSY);
    int64_t start = clock_mono_ns();
    cr_assert_eq(queue_push(q, s_item(3), 0, 30 * MS), SHOAL_EBUSY);
    cr_assert_geq(clock_mono_ns() - start, 30 * MS);
    cr_assert_eq(queue_len(q), 2);
    queue_sanity(q);
    queue_destroy(&q);
}

Test(queue, weight_bound_and_one_item_always_fits)
{
    queue_t *q = queue_new(0, 100);
    cr_assert_eq(queue_push(q, s_item(1), 500, 0), 0); /* heavier than the bound, queue empty */
    cr_assert_eq(queue_push(q, s_item(2), 1, 0), SHOAL_EBUSY);
    queue_sanity(q);
    void *item;
    cr_assert_eq(queue_pop(q, &item, NULL, 0), 0);
    cr_assert_eq(queue_push(q, s_item(3), 60, 0), 0);
    cr_assert_eq(queue_push(q, s_item(4), 40, 0), 0); /* exactly the bound */
    cr_assert_eq(queue_push(q, s_item(5), 1, 0), SHOAL_EBUSY);
    cr_assert_eq(queue_push(q, s_item(5), UINT64_MAX, 0), SHOAL_EBUSY);
    cr_assert_eq(queue_weight(q), 100);
    queue_sanity(q);
    queue_destroy(&q);
}

Test(queue, pop_times_out)
{
    queue_t *q = queue_new(0, 0);
    void *item = s_item(9);
    cr_assert_eq(queue_pop(q, &item, NULL, 0), SHOAL_ETIMEDOUT);
    int64_t start = clock_mono_ns();
    cr_assert_eq(queue_pop(q, &item, NULL, 20 * MS), SHOAL_ETIMEDOUT);
    cr_assert_geq(clock_mono_ns() - start, 20 * MS);
    cr_assert_eq((uintptr_t)item, 9); /* untouched */
    queue_destroy(&q);
}

typedef struct s_waiter {
    queue_t *q;         /* the queue */
    atomic_int started; /* set just before the call blocks */
    int rc;             /* what the call returned */
    void *item;         /* what pop gave */
} s_waiter_t;

static void *s_pop_forever(void *arg)
{
    s_waiter_t *w = arg;
    atomic_store(&w->started, 1);
    w->rc = queue_pop(w->q, &w->item, NULL, QUEUE_WAIT_FOREVER);
    return NULL;
}

static void *s_push_forever(void *arg)
{
    s_waiter_t *w = arg;
    atomic_store(&w->started, 1);
    w->rc = queue_push(w->q, s_item(77), 0, QUEUE_WAIT_FOREVER);
    return NULL;
}

/* Waits (with a deadline) until the thread has started its call, then a little more so that it
 * is really blocked in the condition variable; the result is correct either way. */
static void s_await_start(s_waiter_t *w)
{
    int64_t deadline = clock_deadline_ms(5000);
    while (!atomic_load(&w->started))
        cr_assert(!clock_expired(deadline));
    struct timespec pause = clock_timespec(20 * MS);
    nanosleep(&pause, NULL);
}

Test(queue, close_wakes_blocked_pops)
{
    queue_t *q = queue_new(0, 0);
    s_waiter_t w[3];
    pthread_t threads[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (s_waiter_t){.q = q, .rc = 1};
        cr_assert_eq(pthread_create(&threads[i], NULL, s_pop_forever, &w[i]), 0);
    }
    for (int i = 0; i < 3; i++)
        s_await_start(&w[i]);
    queue_close(q);
    cr_assert(queue_is_closed(q));
    for (int i = 0; i < 3; i++) {
        pthread_join(threads[i], NULL);
        cr_assert_eq(w[i].rc, SHOAL_ECANCELED);
    }
    cr_assert_eq(queue_push(q, s_item(1), 0, 0), SHOAL_ECANCELED);
    queue_close(q); /* idempotent */
    queue_destroy(&q);
}

Test(queue, a_pop_unblocks_a_full_push_and_close_wakes_pushers)
{
    queue_t *q = queue_new(1, 0);
    cr_assert_eq(queue_push(q, s_item(1), 0, 0), 0);
    s_waiter_t w = {.q = q, .rc = 1};
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, s_push_forever, &w), 0);
    s_await_start(&w);
    void *item;
    cr_assert_eq(queue_pop(q, &item, NULL, 0), 0);
    cr_assert_eq((uintptr_t)item, 1);
    pthread_join(thread, NULL);
    cr_assert_eq(w.rc, 0);
    cr_assert_eq(queue_pop(q, &item, NULL, 0), 0);
    cr_assert_eq((uintptr_t)item, 77);
    /* full again, then closed while a pusher waits */
    cr_assert_eq(queue_push(q, s_item(2), 0, 0), 0);
    w = (s_waiter_t){.q = q, .rc = 1};
    cr_assert_eq(pthread_create(&thread, NULL, s_push_forever, &w), 0);
    s_await_start(&w);
    queue_close(q);
    pthread_join(thread, NULL);
    cr_assert_eq(w.rc, SHOAL_ECANCELED);
    /* a closed queue still hands out what it holds, then says it is drained */
    cr_assert_eq(queue_pop(q, &item, NULL, QUEUE_WAIT_FOREVER), 0);
    cr_assert_eq((uintptr_t)item, 2);
    cr_assert_eq(queue_pop(q, &item, NULL, QUEUE_WAIT_FOREVER), SHOAL_ECANCELED);
    queue_sanity(q);
    queue_destroy(&q);
}

Test(queue, a_push_wakes_a_blocked_pop)
{
    queue_t *q = queue_new(0, 0);
    s_waiter_t w = {.q = q, .rc = 1};
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, s_pop_forever, &w), 0);
    s_await_start(&w);
    cr_assert_eq(queue_push(q, s_item(5), 0, 0), 0);
    pthread_join(thread, NULL);
    cr_assert_eq(w.rc, 0);
    cr_assert_eq((uintptr_t)w.item, 5);
    queue_destroy(&q);
}

#define S_PRODUCERS    4
#define S_CONSUMERS    4
#define S_PER_PRODUCER 20000

typedef struct s_shared {
    queue_t *q;                 /* bounded small, so both sides block often */
    atomic_uint_fast64_t sum;   /* of every item popped */
    atomic_uint_fast64_t count; /* items popped */
    uintptr_t base;             /* producer's first item */
} s_shared_t;

typedef struct s_producer {
    s_shared_t *shared; /* the queue and totals */
    uintptr_t base;     /* first item */
} s_producer_t;

static void *s_produce(void *arg)
{
    s_producer_t *p = arg;
    for (uintptr_t i = 0; i < S_PER_PRODUCER; i++)
        cr_assert_eq(queue_push(p->shared->q, s_item(p->base + i), 1, QUEUE_WAIT_FOREVER), 0);
    return NULL;
}

static void *s_consume(void *arg)
{
    s_shared_t *s = arg;
    void *item;
    while (queue_pop(s->q, &item, NULL, QUEUE_WAIT_FOREVER) == 0) {
        atomic_fetch_add(&s->sum, (uint64_t)(uintptr_t)item);
        atomic_fetch_add(&s->count, 1);
    }
    return NULL;
}

Test(queue, many_producers_and_consumers_lose_nothing)
{
    s_shared_t shared = {.q = queue_new(8, 0)};
    pthread_t producers[S_PRODUCERS], consumers[S_CONSUMERS];
    s_producer_t p[S_PRODUCERS];
    for (int i = 0; i < S_CONSUMERS; i++)
        cr_assert_eq(pthread_create(&consumers[i], NULL, s_consume, &shared), 0);
    for (int i = 0; i < S_PRODUCERS; i++) {
        p[i] = (s_producer_t){&shared, (uintptr_t)i * S_PER_PRODUCER + 1};
        cr_assert_eq(pthread_create(&producers[i], NULL, s_produce, &p[i]), 0);
    }
    for (int i = 0; i < S_PRODUCERS; i++)
        pthread_join(producers[i], NULL);
    queue_close(shared.q);
    for (int i = 0; i < S_CONSUMERS; i++)
        pthread_join(consumers[i], NULL);
    uint64_t n = (uint64_t)S_PRODUCERS * S_PER_PRODUCER;
    cr_assert_eq(atomic_load(&shared.count), n);
    cr_assert_eq(atomic_load(&shared.sum), n * (n + 1) / 2);
    cr_assert_eq(queue_len(shared.q), 0);
    cr_assert_eq(queue_weight(shared.q), 0);
    queue_sanity(shared.q);
    queue_destroy(&shared.q);
}
