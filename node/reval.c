/*
 * reval.c - the revalidation pool (see reval.h): proto's blocking queue of uri copies and
 * REVAL_THREADS threads that stat each one.
 */
#include "reval.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metadisk.h"
#include "queue.h"

struct reval {
    reval_deps_t deps;                /* borrowed dependencies */
    queue_t *queue;                   /* uri copies (owned); closed at stop */
    pthread_t threads[REVAL_THREADS]; /* the threads */
    uint32_t started;                 /* threads started and not joined */
};

reval_t *reval_new(const reval_deps_t *deps)
{
    assert(deps != NULL && deps->ufs != NULL && deps->meta != NULL && deps->stats != NULL);
    reval_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return NULL;
    self->deps = *deps;
    self->queue = queue_new(REVAL_QUEUE_MAX, 0);
    if (self->queue == NULL) {
        free(self);
        return NULL;
    }
    return self;
}

/* One revalidation: the file's stat now. Same version: the metadata is fresh again; another
 * version: replaced (later READs use its pages); gone: remembered as missing; an error: the
 * mark ends and the stale metadata stays until a later READ tries again. */
static void s_revalidate(reval_t *self, const char *uri)
{
    const reval_deps_t *deps = &self->deps;
    ufs_stat_t before, now;
    bool fresh = false;
    bool known = meta_cache_get(deps->meta, uri, clock_mono_ns(), &before, &fresh) == 0;
    stats_add(deps->stats, STATS_REVALIDATIONS, 1);
    stats_add(deps->stats, STATS_UFS_REQUESTS, 1);
    stats_add(deps->stats, STATS_ORIGIN_HEADS, 1);
    memset(&now, 0, sizeof now);
    int rc = ufs_stat(deps->ufs, uri, &now);
    if (rc == SHOAL_ENOENT) {
        stats_add(deps->stats, STATS_REVALIDATION_CHANGES, 1);
        meta_cache_put_missing(deps->meta, uri, clock_mono_ns());
        return;
    }
    if (rc < 0) {
        stats_add(deps->stats, STATS_UFS_ERRORS, 1);
        log_warn("revalidate %s: %s", uri, shoal_last_error());
        meta_cache_end_revalidate(deps->meta, uri);
        return;
    }
    if (!known || strcmp(before.version, now.version) != 0 || before.size != now.size) {
        stats_add(deps->stats, STATS_REVALIDATION_CHANGES, 1);
        log_debug("revalidate %s: version %s -> %s", uri, known ? before.version : "?",
                  now.version);
    }
    meta_cache_put(deps->meta, uri, &now, clock_mono_ns());
    metadisk_put(deps->store, uri, &now);
}

static void *s_main(void *arg)
{
    reval_t *self = arg;
    node_thread_name("shoal-reval");
    void *item = NULL;
    while (queue_pop(self->queue, &item, NULL, QUEUE_WAIT_FOREVER) == 0) {
        char *uri = item;
        if (queue_is_closed(self->queue))
            meta_cache_end_revalidate(self->deps.meta, uri);
        else
            s_revalidate(self, uri);
        free(uri);
    }
    return NULL;
}

int reval_start(reval_t *self)
{
    for (uint32_t i = 0; i < REVAL_THREADS; i++) {
        if (pthread_create(&self->threads[i], NULL, s_main, self) != 0)
            break;
        self->started++;
    }
    if (self->started == 0) {
        log_error("cannot start revalidation threads");
        return SHOAL_EIO;
    }
    return 0;
}

void reval_submit(reval_t *self, const char *uri)
{
    assert(uri != NULL);
    if (self == NULL)
        return;
    char *copy = strdup(uri);
    if (copy == NULL || queue_push(self->queue, copy, 0, 0) != 0) {
        free(copy);
        meta_cache_end_revalidate(self->deps.meta, uri);
    }
}

void reval_stop(reval_t *self)
{
    if (self == NULL)
        return;
    queue_close(self->queue);
    for (uint32_t i = 0; i < self->started; i++)
        pthread_join(self->threads[i], NULL);
    self->started = 0;
}

void reval_destroy(reval_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    reval_t *self = *self_p;
    reval_stop(self);
    void *item = NULL;
    while (queue_pop(self->queue, &item, NULL, 0) == 0)
        free(item);
    queue_destroy(&self->queue);
    free(self);
    *self_p = NULL;
}
