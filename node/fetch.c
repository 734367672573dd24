/*
 * fetch.c - the fetch pool (see fetch.h): a FIFO under a mutex and condition variable, and
 * threads that each own a reply sink.
 */
#include "fetch.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>

#include "log.h"

struct fetch_pool {
    const request_env_t *env;   /* for each thread's reply sink (borrowed) */
    request_handler_fn handler; /* answers a request */
    void *arg;                  /* handler's argument (borrowed) */
    pthread_mutex_t lock;       /* guards the queue and stopping */
    pthread_cond_t ready;       /* signalled on submit and stop */
    node_request_t *head;       /* oldest queued request */
    node_request_t *tail;       /* newest queued request */
    size_t depth;               /* queued requests */
    bool stopping;              /* no more submits; drain with ECANCELED */
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
    if (self->threads == NULL) {
        free(self);
        return NULL;
    }
    self->env = env;
    self->handler = handler;
    self->arg = arg;
    self->thread_count = threads ? threads : 1;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->ready, NULL);
    return self;
}

static void *s_fetch_main(void *arg)
{
    fetch_pool_t *self = arg;
    node_thread_name("shoal-fetch");
    reply_sink_t sink;
    bool have_sink = reply_sink_init(&sink, self->env) == 0;
    for (;;) {
        pthread_mutex_lock(&self->lock);
        while (self->head == NULL && !self->stopping)
            pthread_cond_wait(&self->ready, &self->lock);
        node_request_t *request = self->head;
        if (request) {
            self->head = request->next;
            if (self->head == NULL)
                self->tail = NULL;
            self->depth--;
            request->next = NULL;
        }
        bool stopping = self->stopping;
        pthread_mutex_unlock(&self->lock);
        if (request == NULL)
            break; /* stopping and drained */
        if (!have_sink)
            request_finish(&request);
        else if (stopping) {
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
    assert(self != NULL && request != NULL && request->next == NULL);
    pthread_mutex_lock(&self->lock);
    if (self->stopping) {
        pthread_mutex_unlock(&self->lock);
        return SHOAL_ECANCELED;
    }
    if (self->depth >= FETCH_QUEUE_MAX) {
        pthread_mutex_unlock(&self->lock);
        return SHOAL_EBUSY;
    }
    request->next = NULL;
    if (self->tail)
        self->tail->next = request;
    else
        self->head = request;
    self->tail = request;
    self->depth++;
    pthread_cond_signal(&self->ready);
    pthread_mutex_unlock(&self->lock);
    return 0;
}

size_t fetch_pool_depth(fetch_pool_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t depth = self->depth;
    pthread_mutex_unlock(&self->lock);
    return depth;
}

void fetch_pool_stop(fetch_pool_t *self)
{
    if (self == NULL)
        return;
    pthread_mutex_lock(&self->lock);
    self->stopping = true;
    pthread_cond_broadcast(&self->ready);
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
    node_request_t *request = self->head;
    while (request) {
        node_request_t *next = request->next;
        request_finish(&request);
        request = next;
    }
    pthread_cond_destroy(&self->ready);
    pthread_mutex_destroy(&self->lock);
    free(self->threads);
    free(self);
    *self_p = NULL;
}
