/*
 * storeq.c - the store queue (see storeq.h): proto's blocking queue (queue.h) and one thread
 * at nice STOREQ_NICE that empties it.
 */
#include "storeq.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "metadisk.h"
#include "queue.h"

/* One fetched range waiting to be stored. */
typedef struct s_entry {
    uint8_t file_key[PAGESTORE_FILE_KEY_SIZE]; /* file version */
    uint64_t range_index;                      /* range */
    range_buf_t *buf;                          /* its bytes (one reference) */
    flight_t *held;                            /* its held flight, or NULL */
    char *meta_uri; /* uri whose metadata record (buf->stat) goes after the pages, or NULL */
} s_entry_t;

/*
 * The byte bound and the depth count an entry until its pages are stored (not only while it
 * is queued), so they live here, beside the queue: depth 0 means every page is in the store,
 * and the bound covers the entry being stored too. Submits reserve bytes with a compare and
 * swap before pushing.
 */
struct storeq {
    storeq_deps_t deps;       /* store, flights, counters, geometry */
    size_t max_bytes;         /* bound on queued range bytes */
    queue_t *queue;           /* s_entry_t pointers (owned); closed at stop */
    _Atomic size_t depth;     /* entries queued or being stored */
    _Atomic size_t announced; /* ranges a READ will submit once it has replied */
    _Atomic size_t bytes;     /* range bytes queued (entries being stored included) */
    _Atomic bool started;     /* the thread runs and takes submits */
    pthread_t thread;         /* the store thread */
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
    self->queue = queue_new(0, 0); /* bounded by `bytes` above */
    if (self->queue == NULL) {
        free(self);
        return NULL;
    }
    self->deps = *deps;
    self->max_bytes = max_bytes;
    atomic_init(&self->depth, 0);
    atomic_init(&self->bytes, 0);
    atomic_init(&self->started, false);
    return self;
}

/* The store thread: lowers its own priority (Linux nice is per thread), then stores entries in
 * order until the queue is closed and drained. */
static void *s_store_main(void *arg)
{
    storeq_t *self = arg;
    node_thread_name("shoal-store");
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), STOREQ_NICE) != 0)
        log_debug("store thread: cannot lower its priority; storing at normal priority");
    void *item = NULL;
    while (queue_pop(self->queue, &item, NULL, QUEUE_WAIT_FOREVER) == 0) {
        s_entry_t *entry = item;
        storeq_store(self, entry->file_key, entry->range_index, entry->buf);
        if (entry->meta_uri != NULL)
            metadisk_put(self->deps.store, entry->meta_uri, &entry->buf->stat);
        flight_release(self->deps.flights, &entry->held);
        atomic_fetch_sub(&self->bytes, entry->buf->len);
        atomic_fetch_sub(&self->depth, 1); /* counted until stored: depth 0, all stored */
        range_buf_release(&entry->buf);
        free(entry->meta_uri);
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
    atomic_store(&self->started, true);
    return 0;
}

/* Reserves `len` bytes under the bound; one entry always fits, so a range larger than the
 * bound is still stored in the background. Returns false when there is no room. */
static bool s_reserve(storeq_t *self, size_t len)
{
    size_t bytes = atomic_load(&self->bytes);
    do {
        if (bytes != 0 && bytes + len > self->max_bytes)
            return false;
    } while (!atomic_compare_exchange_weak(&self->bytes, &bytes, bytes + len));
    return true;
}

bool storeq_submit(storeq_t *self, const uint8_t *file_key, uint64_t range_index,
                   range_buf_t **buf_p, flight_t **held_p, const char *meta_uri)
{
    assert(self != NULL && file_key != NULL && buf_p != NULL && *buf_p != NULL && held_p != NULL);
    size_t len = (*buf_p)->len;
    if (!atomic_load(&self->started) || !s_reserve(self, len))
        return false;
    s_entry_t *entry = malloc(sizeof *entry);
    char *uri_copy = meta_uri != NULL ? strdup(meta_uri) : NULL;
    if (entry == NULL || (meta_uri != NULL && uri_copy == NULL)) {
        free(entry);
        free(uri_copy);
        atomic_fetch_sub(&self->bytes, len);
        return false;
    }
    entry->meta_uri = uri_copy;
    memcpy(entry->file_key, file_key, sizeof entry->file_key);
    entry->range_index = range_index;
    entry->buf = *buf_p;
    entry->held = *held_p;
    atomic_fetch_add(&self->depth, 1); /* before the push: the thread may store it at once */
    if (queue_push(self->queue, entry, len, 0) < 0) { /* closed (stopping) or out of memory */
        atomic_fetch_sub(&self->depth, 1);
        atomic_fetch_sub(&self->bytes, len);
        free(entry->meta_uri);
        free(entry);
        return false;
    }
    *buf_p = NULL;
    *held_p = NULL;
    return true;
}

void storeq_announce(storeq_t *self, size_t count)
{
    atomic_fetch_add(&self->announced, count);
}

void storeq_unannounce(storeq_t *self, size_t count)
{
    size_t before = atomic_fetch_sub(&self->announced, count);
    assert(before >= count);
    (void)before;
}

size_t storeq_depth(storeq_t *self)
{
    /* announced first: a range moves from announced to depth, never the other way */
    size_t announced = atomic_load(&self->announced);
    return atomic_load(&self->depth) + announced;
}

void storeq_stop(storeq_t *self)
{
    if (self == NULL)
        return;
    bool join = atomic_exchange(&self->started, false);
    queue_close(self->queue); /* the thread stores what is queued, then exits */
    if (join)
        pthread_join(self->thread, NULL);
}

void storeq_destroy(storeq_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    storeq_t *self = *self_p;
    storeq_stop(self);
    queue_destroy(&self->queue); /* empty: submits need a started thread, which drained it */
    free(self);
    *self_p = NULL;
}
