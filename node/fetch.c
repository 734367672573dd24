/*
 * fetch.c - the fetch pool (see fetch.h): proto's blocking queue (queue.h) of requests, and
 * threads that each own a reply sink.
 */
#include "fetch.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>

#include "log.h"
#include "queue.h"

struct fetch_pool {
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
    self->env = env;
    self->handler = handler;
    self->arg = arg;
    self->thread_count = threads ? threads : 1;
    return self;
}

/* A fetch thread: answers requests until the queue is closed and drained; what is left at
 * the close is answered ECANCELED. */
static void *s_fetch_main(void *arg)
{
    fetch_pool_t *self = arg;
    node_thread_name("shoal-fetch");
    reply_sink_t sink;
    bool have_sink = reply_sink_init(&sink, self->env) == 0;
    void *item = NULL;
    while (queue_pop(self->queue, &item, NULL, QUEUE_WAIT_FOREVER) == 0) {
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
    return NULL;
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
    int rc = queue_push(self->queue, request, 0, 0);
    return rc == SHOAL_ENOMEM ? SHOAL_EBUSY : rc; /* 0, EBUSY (full) or ECANCELED (stopping) */
}

size_t fetch_pool_depth(fetch_pool_t *self)
{
    return queue_len(self->queue);
}

void fetch_pool_stop(fetch_pool_t *self)
{
    if (self == NULL)
        return;
    queue_close(self->queue);
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
    free(self->threads);
    free(self);
    *self_p = NULL;
}
