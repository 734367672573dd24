/*
 * storeq.c - the store queue (see storeq.h): a FIFO under a mutex and one thread at nice
 * STOREQ_NICE that empties it.
 */
#include "storeq.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

/* One fetched range waiting to be stored. */
typedef struct s_entry {
    struct s_entry *next;                      /* next in the queue */
    uint8_t file_key[PAGESTORE_FILE_KEY_SIZE]; /* file version */
    uint64_t range_index;                      /* range */
    range_buf_t *buf;                          /* its bytes (one reference) */
    flight_t *held;                            /* its held flight, or NULL */
} s_entry_t;

struct storeq {
    storeq_deps_t deps;   /* store, flights, counters, geometry */
    size_t max_bytes;     /* bound on queued range bytes */
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t ready; /* signalled on submit and stop */
    s_entry_t *head;      /* oldest entry */
    s_entry_t *tail;      /* newest entry */
    size_t depth;         /* entries queued or being stored */
    size_t bytes;         /* range bytes queued (entries being stored included) */
    bool started;         /* the thread runs and takes submits */
    bool stopping;        /* no more submits; the thread drains and exits */
    pthread_t thread;     /* the store thread */
};

void storeq_store(storeq_t *self, const uint8_t *file_key, uint64_t range_index,
                  const range_buf_t *buf)
{
    assert(self != NULL && file_key != NULL && buf != NULL);
    const storeq_deps_t *deps = &self->deps;
    uint64_t index = range_index * deps->range_pages;
    for (size_t at = 0; at < buf->len; at += deps->page_size, index++) {
        size_t len = buf->len - at < deps->page_size ? buf->len - at : deps->page_size;
        if (pagestore_put(deps->store, file_key, index, buf->data + at, len) < 0) {
            stats_add(deps->stats, STATS_STORE_WRITE_ERRORS, 1);
            break;
        }
    }
}

storeq_t *storeq_new(const storeq_deps_t *deps, size_t max_bytes)
{
    assert(deps != NULL && deps->store != NULL && deps->flights != NULL && deps->page_size > 0);
    storeq_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return NULL;
    self->deps = *deps;
    self->max_bytes = max_bytes;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->ready, NULL);
    return self;
}

/* The store thread: lowers its own priority (Linux nice is per thread), then stores entries in
 * order until stopped and drained. */
static void *s_store_main(void *arg)
{
    storeq_t *self = arg;
    node_thread_name("shoal-store");
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), STOREQ_NICE) != 0)
        log_debug("store thread: cannot lower its priority; storing at normal priority");
    for (;;) {
        pthread_mutex_lock(&self->lock);
        while (self->head == NULL && !self->stopping)
            pthread_cond_wait(&self->ready, &self->lock);
        s_entry_t *entry = self->head;
        if (entry) {
            self->head = entry->next;
            if (self->head == NULL)
                self->tail = NULL;
        }
        pthread_mutex_unlock(&self->lock);
        if (entry == NULL)
            break; /* stopping and drained */
        storeq_store(self, entry->file_key, entry->range_index, entry->buf);
        flight_release(self->deps.flights, &entry->held);
        pthread_mutex_lock(&self->lock);
        self->bytes -= entry->buf->len;
        self->depth--; /* counted until stored, so depth 0 means every page is in the store */
        pthread_mutex_unlock(&self->lock);
        range_buf_release(&entry->buf);
        free(entry);
    }
    return NULL;
}

int storeq_start(storeq_t *self)
{
    if (pthread_create(&self->thread, NULL, s_store_main, self) != 0) {
        log_warn("cannot start the store thread: fetch threads will store pages themselves");
        return SHOAL_EIO;
    }
    pthread_mutex_lock(&self->lock);
    self->started = true;
    pthread_mutex_unlock(&self->lock);
    return 0;
}

bool storeq_submit(storeq_t *self, const uint8_t *file_key, uint64_t range_index,
                   range_buf_t **buf_p, flight_t **held_p)
{
    assert(self != NULL && file_key != NULL && buf_p != NULL && *buf_p != NULL && held_p != NULL);
    size_t len = (*buf_p)->len;
    s_entry_t *entry = malloc(sizeof *entry);
    if (entry == NULL)
        return false;
    pthread_mutex_lock(&self->lock);
    /* one entry always fits, so a range larger than the bound is still stored in the background */
    bool room = self->bytes == 0 || self->bytes + len <= self->max_bytes;
    if (!self->started || self->stopping || !room) {
        pthread_mutex_unlock(&self->lock);
        free(entry);
        return false;
    }
    memcpy(entry->file_key, file_key, sizeof entry->file_key);
    entry->range_index = range_index;
    entry->buf = *buf_p;
    entry->held = *held_p;
    entry->next = NULL;
    *buf_p = NULL;
    *held_p = NULL;
    if (self->tail)
        self->tail->next = entry;
    else
        self->head = entry;
    self->tail = entry;
    self->depth++;
    self->bytes += len;
    pthread_cond_signal(&self->ready);
    pthread_mutex_unlock(&self->lock);
    return true;
}

size_t storeq_depth(storeq_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t depth = self->depth;
    pthread_mutex_unlock(&self->lock);
    return depth;
}

void storeq_stop(storeq_t *self)
{
    if (self == NULL)
        return;
    pthread_mutex_lock(&self->lock);
    bool join = self->started;
    self->started = false;
    self->stopping = true;
    pthread_cond_broadcast(&self->ready);
    pthread_mutex_unlock(&self->lock);
    if (join)
        pthread_join(self->thread, NULL);
}

void storeq_destroy(storeq_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    storeq_t *self = *self_p;
    storeq_stop(self);
    pthread_cond_destroy(&self->ready);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}
