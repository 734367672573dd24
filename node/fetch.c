/*
 * fetch.c - the fetch pool (see fetch.h): proto's queue (queue.h) of requests, and threads that
 * each own a reply sink. Idle threads wait on a stack, each on its own condition variable, and
 * a submit wakes the one that went idle last: under light load one or two warm threads serve
 * every request (their stacks, malloc arenas and caches hot) instead of all 32 in turn, which a
 * shared condition variable (FIFO wake-ups) did: 5.0 -> 0.8 page faults per cold 64 KiB file
 * with one reader (tools/bench/prof_cold.py, --fetch-threads 2 standing in for LIFO).
 */
#include "fetch.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>

#include "log.h"
#include "queue.h"

/* A fetch thread while it waits for work. Invariant: on the idle stack iff `idle`. */
typedef struct s_waiter {
    pthread_cond_t wake;   /* signalled when popped off the idle stack, or at stop */
    bool idle;             /* on the idle stack; cleared by the submit that wakes it */
    struct s_waiter *next; /* the next idle thread (went idle earlier) */
} s_waiter_t;

struct fetch_pool {
    pthread_mutex_t lock;       /* guards idle, every waiter, and pushes and empty pops */
    s_waiter_t *idle;           /* idle threads, the most recently idle first */
    const request_env_t *env;   /* for each thread's reply sink (borrowed) */
    request_handler_fn handler; /* answers a request */
    void *arg;                  /* handler's argument (borrowed) */
    queue_t *queue;             /* queued requests (owned); closed at stop */
    pthread_t *threads;         /* the threads */
    uint32_t thread_count;      /* threads to start */
    uint32_t started;           /* threads started and not joined */
};

fetch_pool_t *fetch_pool_new(const request_env_t *env, uint32_t threads, request_handler_fn handler,
                             void *arg)
{
    assert(env != NULL && handler != NULL);
    fetch_pool_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return NULL;
    self->threads = calloc(threads ? threads : 1, sizeof *self->threads);
    self->queue = queue_new(FETCH_QUEUE_MAX, 0);
    if (self->threads == NULL || self->queue == NULL) {
        queue_destroy(&self->queue);
        free(self->threads);
        free(self);
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    self->env = env;
    self->handler = handler;
    self->arg = arg;
    self->thread_count = threads ? threads : 1;
    return self;
}

/* Takes the next request, waiting on the idle stack while there is none. The empty check and
 * going idle happen under the pool's lock, as do submits' pushes and wake-ups, so no submit
 * is missed. Returns 0 with *item_p, or SHOAL_ECANCELED once the queue is closed and empty. */
static int s_take(fetch_pool_t *self, s_waiter_t *me, void **item_p)
{
    pthread_mutex_lock(&self->lock);
    int rc;
    while ((rc = queue_pop(self->queue, item_p, NULL, 0)) == SHOAL_ETIMEDOUT) {
        me->idle = true;
        me->next = self->idle;
        self->idle = me;
        while (me->idle)
            pthread_cond_wait(&me->wake, &self->lock);
    }
    pthread_mutex_unlock(&self->lock);
    return rc;
}

/* A fetch thread: answers requests until the queue is closed and drained; what is left at
 * the close is answered ECANCELED. */
static void *s_fetch_main(void *arg)
{
    fetch_pool_t *self = arg;
    node_thread_name("shoal-fetch");
    reply_sink_t sink;
    bool have_sink = reply_sink_init(&sink, self->env) == 0;
    s_waiter_t me = {.idle = false, .next = NULL};
    pthread_cond_init(&me.wake, NULL);
    void *item = NULL;
    while (s_take(self, &me, &item) == 0) {
        node_request_t *request = item;
        if (!have_sink)
            request_finish(&request);
        else if (queue_is_closed(self->queue)) {
            reply_error(&sink, request, SHOAL_ECANCELED, "the node is shutting down");
            request_finish(&request);
        } else {
            self->handler(self->arg, &sink, &request);
        }
    }
    if (have_sink)
        reply_sink_fini(&sink);
    pthread_cond_destroy(&me.wake);
    return NULL;
}

/* Wakes the thread that went idle last, if any. Lock held. */
static void s_wake_one(fetch_pool_t *self)
{
    s_waiter_t *waiter = self->idle;
    if (waiter == NULL)
        return; /* every thread is busy: each looks at the queue before it goes idle */
    self->idle = waiter->next;
    waiter->idle = false;
    pthread_cond_signal(&waiter->wake);
}

int fetch_pool_start(fetch_pool_t *self)
{
    for (uint32_t i = 0; i < self->thread_count; i++) {
        if (pthread_create(&self->threads[i], NULL, s_fetch_main, self) != 0)
            break;
        self->started++;
    }
    if (self->started == 0) {
        log_error("cannot start fetch threads");
        return SHOAL_EIO;
    }
    return 0;
}

int fetch_pool_submit(fetch_pool_t *self, node_request_t *request)
{
    assert(self != NULL && request != NULL);
    pthread_mutex_lock(&self->lock);
    int rc = queue_push(self->queue, request, 0, 0);
    if (rc == 0)
        s_wake_one(self);
    pthread_mutex_unlock(&self->lock);
    return rc == SHOAL_ENOMEM ? SHOAL_EBUSY : rc; /* 0, EBUSY (full) or ECANCELED (stopping) */
}

size_t fetch_pool_depth(fetch_pool_t *self)
{
    return queue_len(self->queue);
}

size_t fetch_pool_idle(fetch_pool_t *self)
{
    size_t count = 0;
    pthread_mutex_lock(&self->lock);
    for (const s_waiter_t *waiter = self->idle; waiter != NULL; waiter = waiter->next)
        count++;
    pthread_mutex_unlock(&self->lock);
    return count;
}

void fetch_pool_stop(fetch_pool_t *self)
{
    if (self == NULL)
        return;
    pthread_mutex_lock(&self->lock);
    queue_close(self->queue);
    while (self->idle != NULL) /* each drains what is queued, then exits */
        s_wake_one(self);
    pthread_mutex_unlock(&self->lock);
}

void fetch_pool_join(fetch_pool_t *self)
{
    if (self == NULL)
        return;
    for (uint32_t i = 0; i < self->started; i++)
        pthread_join(self->threads[i], NULL);
    self->started = 0;
}

void fetch_pool_destroy(fetch_pool_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    fetch_pool_t *self = *self_p;
    fetch_pool_stop(self);
    fetch_pool_join(self);
    void *item = NULL;
    while (queue_pop(self->queue, &item, NULL, 0) == 0) { /* never started: nobody drained */
        node_request_t *request = item;
        request_finish(&request);
    }
    queue_destroy(&self->queue);
    pthread_mutex_destroy(&self->lock);
    free(self->threads);
    free(self);
    *self_p = NULL;
}
