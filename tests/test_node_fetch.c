/*
 * test_node_fetch.c - node/fetch.h's pool: a request submitted while every thread is idle goes
 * to the thread that went idle last (LIFO), so sequential requests stay on one warm thread;
 * requests queued while the threads are busy are all answered; requests still queued at stop
 * are answered ECANCELED by the threads (on the reply endpoint), a submit after it refused.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "clock.h"
#include "fetch.h"
#include "membership.h"
#include "stats.h"

#define THREADS 4
#define ROUNDS  20

typedef struct s_seen {
    pthread_mutex_t lock;     /* guards the fields below */
    pthread_t threads[256];   /* the thread that handled request i */
    int handled;              /* requests handled */
    _Atomic int64_t inflight; /* the env's in-flight count */
    atomic_bool block;        /* handlers wait while set */
} s_seen_t;

static void s_handler(void *arg, reply_sink_t *sink, node_request_t **request_p)
{
    (void)sink;
    s_seen_t *seen = arg;
    while (atomic_load(&seen->block))
        sched_yield();
    pthread_mutex_lock(&seen->lock);
    if (seen->handled < 256)
        seen->threads[seen->handled] = pthread_self();
    seen->handled++;
    pthread_mutex_unlock(&seen->lock);
    request_finish(request_p);
}

static node_request_t *s_request(s_seen_t *seen)
{
    node_request_t *request = calloc(1, sizeof *request);
    cr_assert_not_null(request);
    zmq_msg_init(&request->identity);
    request->inflight = &seen->inflight;
    atomic_fetch_add(&seen->inflight, 1);
    return request;
}

static int s_handled(s_seen_t *seen)
{
    pthread_mutex_lock(&seen->lock);
    int handled = seen->handled;
    pthread_mutex_unlock(&seen->lock);
    return handled;
}

/* Polls until `want` threads are idle, failing after 10 s. */
static void s_wait_idle(fetch_pool_t *pool, size_t want)
{
    int64_t deadline = clock_mono_ns() + 10 * CLOCK_NS_PER_S;
    while (fetch_pool_idle(pool) != want) {
        cr_assert_lt(clock_mono_ns(), deadline, "%zu of %zu threads idle", fetch_pool_idle(pool),
                     want);
        sched_yield();
    }
}

static void s_wait_handled(s_seen_t *seen, int want)
{
    int64_t deadline = clock_mono_ns() + 10 * CLOCK_NS_PER_S;
    while (s_handled(seen) < want) {
        cr_assert_lt(clock_mono_ns(), deadline, "%d of %d requests handled", s_handled(seen), want);
        sched_yield();
    }
}

Test(fetch_pool, an_idle_pool_wakes_the_thread_that_went_idle_last)
{
    void *context = zmq_ctx_new();
    void *replies = zmq_socket(context, ZMQ_PULL); /* the router's end of the reply sinks */
    cr_assert_eq(zmq_bind(replies, "inproc://shoal-replies"), 0);
    s_seen_t seen;
    memset(&seen, 0, sizeof seen);
    pthread_mutex_init(&seen.lock, NULL);
    stats_t stats;
    stats_init(&stats);
    uint8_t id[MSG_NODE_ID_SIZE] = {1};
    membership_t *members = membership_new(1u << 20, 4, id);
    cr_assert_not_null(members);
    request_env_t env = {
        .zmq_context = context, .members = members, .stats = &stats, .inflight = &seen.inflight};
    fetch_pool_t *pool = fetch_pool_new(&env, THREADS, s_handler, &seen);
    cr_assert_not_null(pool);
    cr_assert_eq(fetch_pool_start(pool), 0);
    s_wait_idle(pool, THREADS);
    for (int i = 0; i < ROUNDS; i++) {
        cr_assert_eq(fetch_pool_submit(pool, s_request(&seen)), 0);
        s_wait_handled(&seen, i + 1);
        s_wait_idle(pool, THREADS); /* the one that served is back on the stack, on top */
    }
    for (int i = 1; i < ROUNDS; i++)
        cr_assert(pthread_equal(seen.threads[i], seen.threads[0]),
                  "request %d went to another thread: the wake-ups are not LIFO", i);

    /* busy threads: everything queued meanwhile is answered, by several threads */
    atomic_store(&seen.block, true);
    for (int i = 0; i < 3 * THREADS; i++)
        cr_assert_eq(fetch_pool_submit(pool, s_request(&seen)), 0);
    atomic_store(&seen.block, false);
    s_wait_handled(&seen, ROUNDS + 3 * THREADS);
    s_wait_idle(pool, THREADS);
    cr_assert_eq(fetch_pool_depth(pool), 0);

    /* stop with requests queued behind busy threads: each queued one is answered ECANCELED */
    atomic_store(&seen.block, true);
    for (int i = 0; i < 2 * THREADS; i++)
        cr_assert_eq(fetch_pool_submit(pool, s_request(&seen)), 0);
    int64_t deadline = clock_mono_ns() + 10 * CLOCK_NS_PER_S;
    while (fetch_pool_depth(pool) > THREADS) /* every thread holds one, in the handler */
        cr_assert_lt(clock_mono_ns(), deadline);
    fetch_pool_stop(pool);
    node_request_t *late = s_request(&seen);
    cr_assert_eq(fetch_pool_submit(pool, late), SHOAL_ECANCELED);
    request_finish(&late); /* refused: still ours */
    atomic_store(&seen.block, false);
    fetch_pool_join(pool);
    fetch_pool_destroy(&pool);
    cr_assert_null(pool);
    cr_assert_eq(s_handled(&seen), ROUNDS + 3 * THREADS + THREADS, "the running ones finished");
    cr_assert_eq(stats_get(&stats, STATS_CANCELED), THREADS, "the queued ones were canceled");
    cr_assert_eq(atomic_load(&seen.inflight), 0, "every request was finished");
    int received = 0;
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    while (zmq_msg_recv(&frame, replies, ZMQ_DONTWAIT) >= 0)
        received += !zmq_msg_more(&frame);
    zmq_msg_close(&frame);
    cr_assert_eq(received, THREADS, "one ERROR reply per canceled request");
    zmq_close(replies);
    membership_destroy(&members);
    pthread_mutex_destroy(&seen.lock);
    zmq_ctx_term(context);
}
