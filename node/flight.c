/*
 * flight.c - single flight (see flight.h). The table is a short list: at most one entry per
 * fetch thread is in it at any time, so a linear scan is cheaper than a hash.
 */
#include "flight.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

range_buf_t *range_buf_new(size_t capacity)
{
    range_buf_t *buf = malloc(sizeof *buf + (capacity ? capacity : 1));
    if (buf == NULL)
        return NULL;
    atomic_init(&buf->refs, 1);
    buf->len = 0;
    return buf;
}

range_buf_t *range_buf_ref(range_buf_t *buf)
{
    atomic_fetch_add(&buf->refs, 1);
    return buf;
}

void range_buf_release(range_buf_t **buf_p)
{
    if (buf_p == NULL || *buf_p == NULL)
        return;
    range_buf_t *buf = *buf_p;
    *buf_p = NULL;
    if (atomic_fetch_sub(&buf->refs, 1) == 1)
        free(buf);
}

void range_buf_free_fn(void *data, void *hint)
{
    (void)data;
    range_buf_t *buf = hint;
    range_buf_release(&buf);
}

/* One read in flight. Invariant: it is in the table's list iff !done. */
typedef struct s_flight {
    struct s_flight *next; /* next in the table's list */
    flight_key_t key;      /* what is being read */
    int users;             /* leader + waiters still holding it */
    bool done;             /* the leader finished */
    int result;            /* fn's result, once done */
    range_buf_t *buf;      /* fn's buffer (one reference), once done */
    pthread_cond_t cond;   /* signalled when done */
} s_flight_t;

struct flight_table {
    pthread_mutex_t lock; /* guards the list and every flight's fields */
    s_flight_t *flights;  /* flights not done yet */
};

flight_table_t *flight_table_new(void)
{
    flight_table_t *self = calloc(1, sizeof *self);
    if (self)
        pthread_mutex_init(&self->lock, NULL);
    return self;
}

void flight_table_destroy(flight_table_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    flight_table_t *self = *self_p;
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

static bool s_key_equal(const flight_key_t *a, const flight_key_t *b)
{
    return a->range_index == b->range_index && a->store == b->store &&
           memcmp(a->file_key, b->file_key, sizeof a->file_key) == 0;
}

/* Drops one user of a finished flight; the last one frees it. Lock held. */
static void s_put(s_flight_t *flight)
{
    if (--flight->users > 0)
        return;
    range_buf_release(&flight->buf);
    pthread_cond_destroy(&flight->cond);
    free(flight);
}

int flight_do(flight_table_t *self, const flight_key_t *key, flight_fn fn, void *arg,
              range_buf_t **buf_out, bool *joined)
{
    *buf_out = NULL;
    *joined = false;
    pthread_mutex_lock(&self->lock);
    for (s_flight_t *flight = self->flights; flight; flight = flight->next) {
        if (!s_key_equal(&flight->key, key))
            continue;
        flight->users++;
        while (!flight->done)
            pthread_cond_wait(&flight->cond, &self->lock);
        int result = flight->result;
        if (result >= 0 && flight->buf)
            *buf_out = range_buf_ref(flight->buf);
        s_put(flight);
        pthread_mutex_unlock(&self->lock);
        *joined = true;
        return result;
    }
    s_flight_t *flight = calloc(1, sizeof *flight);
    if (flight == NULL) {
        pthread_mutex_unlock(&self->lock);
        return fn(arg, buf_out); /* no memory for sharing: read alone */
    }
    flight->key = *key;
    flight->users = 1;
    pthread_cond_init(&flight->cond, NULL);
    flight->next = self->flights;
    self->flights = flight;
    pthread_mutex_unlock(&self->lock);

    range_buf_t *buf = NULL;
    int result = fn(arg, &buf);

    pthread_mutex_lock(&self->lock);
    for (s_flight_t **link = &self->flights; *link; link = &(*link)->next)
        if (*link == flight) {
            *link = flight->next;
            break;
        }
    flight->done = true;
    flight->result = result;
    flight->buf = result >= 0 ? buf : NULL;
    if (result < 0)
        range_buf_release(&buf);
    if (flight->buf)
        *buf_out = range_buf_ref(flight->buf);
    pthread_cond_broadcast(&flight->cond);
    s_put(flight);
    pthread_mutex_unlock(&self->lock);
    return result;
}
