/*
 * queue.h - the one blocking FIFO of pointers between threads (the fetch pool's requests, the
 * store queue's pages). Bounded by a count of items and, optionally, by a total weight (bytes),
 * with push that fails or waits when full, pop with an optional timeout, and close that wakes
 * every waiter. Thread safe: any number of producers and consumers.
 *
 * Invariants (under the lock): len <= capacity; len <= max_items when max_items != 0;
 * weight == the sum of the queued items' weights; weight <= max_weight when max_weight != 0,
 * except for a single item heavier than max_weight pushed into an empty queue (one item always
 * fits, so an oversized page still goes through); once closed, never open again.
 */
#ifndef SHOAL_PROTO_QUEUE_H
#define SHOAL_PROTO_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal_err.h"

#define QUEUE_WAIT_FOREVER (-1) /* timeout_ns that never expires */

typedef struct queue queue_t;

/* Returns an open, empty queue holding at most `max_items` items (0: no bound) of at most
 * `max_weight` in total (0: no bound), or NULL when out of memory. Caller owns it. */
queue_t *queue_new(size_t max_items, uint64_t max_weight);

/* Frees *self_p and sets it to NULL; safe on NULL. No thread may still use the queue. Items left
 * in it are not freed (drain it first: the queue does not know what they are). */
void queue_destroy(queue_t **self_p);

/*
 * Appends `item` (any pointer, NULL included) with weight `weight` (0 when only counting).
 * When the queue is full: timeout_ns == 0 returns SHOAL_EBUSY at once, > 0 waits up to that
 * many nanoseconds (then SHOAL_EBUSY), QUEUE_WAIT_FOREVER waits until there is room. Returns
 * 0 (the queue now holds the pointer; the caller hands over whatever ownership the item
 * carries), SHOAL_ECANCELED when the queue is or becomes closed, SHOAL_ENOMEM when the ring
 * cannot grow. On any error the item stays the caller's.
 */
int queue_push(queue_t *self, void *item, uint64_t weight, int64_t timeout_ns);

/*
 * Takes the oldest item into *item_p (and its weight into *weight_p when not NULL). When the
 * queue is empty: timeout_ns == 0 returns SHOAL_ETIMEDOUT at once, > 0 waits up to that many
 * nanoseconds, QUEUE_WAIT_FOREVER waits. A closed queue still hands out what it holds, then
 * returns SHOAL_ECANCELED (closed and drained). Returns 0, SHOAL_ETIMEDOUT or
 * SHOAL_ECANCELED; on success the caller owns the item.
 */
int queue_pop(queue_t *self, void **item_p, uint64_t *weight_p, int64_t timeout_ns);

/* Closes the queue: pushes are refused from now on (SHOAL_ECANCELED) and every blocked push and
 * pop wakes up. Items already queued stay for queue_pop to drain. Idempotent. */
void queue_close(queue_t *self);

/* True once queue_close was called. */
bool queue_is_closed(queue_t *self);

/* Items queued now (a snapshot). */
size_t queue_len(queue_t *self);

/* Total weight queued now (a snapshot). */
uint64_t queue_weight(queue_t *self);

/* Asserts the invariants above under the lock (debug builds only). */
void queue_sanity(queue_t *self);

#endif
