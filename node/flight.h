/*
 * flight.h - single flight for UFS range reads: concurrent misses of the same (file key, range)
 * share one read, and misses that arrive while its leader stores the pages take its buffer.
 * Also the reference-counted byte buffer a range is read into, which READ replies hand to
 * ZeroMQ slice by slice without copying.
 */
#ifndef SHOAL_NODE_FLIGHT_H
#define SHOAL_NODE_FLIGHT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pagestore.h"
#include "ufs.h"

typedef struct range_pool range_pool_t;

/* Bytes of one range read from the UFS. Reference counted; immutable once filled. A buffer from
 * a pool goes back to it (not to the allocator) when its last reference is dropped. */
typedef struct range_buf {
    _Atomic int refs;       /* references; freed (or pooled) at zero */
    size_t len;             /* bytes of data in use */
    uint8_t *data;          /* the bytes: page aligned for pool buffers */
    range_pool_t *pool;     /* the pool it returns to, or NULL (plain malloc) */
    struct range_buf *next; /* next idle buffer while in the pool */
    bool has_stat;          /* stat is set: what the read that filled it learnt */
    ufs_stat_t stat;        /* size, version, mtime the bytes are of (cold reads), if has_stat */
} range_buf_t;

/* Allocates a buffer of `capacity` bytes with one reference (len = 0). NULL when out of
 * memory. */
range_buf_t *range_buf_new(size_t capacity);

/* Adds a reference and returns `buf`. */
range_buf_t *range_buf_ref(range_buf_t *buf);

/* Drops a reference and sets *buf_p to NULL; safe on NULL. Thread safe. */
void range_buf_release(range_buf_t **buf_p);

/* The same release shaped as a zmq_free_fn (`hint` is the buffer; one reference is dropped):
 * zmq_msg_init_data(&frame, buf->data + off, len, range_buf_free_fn, range_buf_ref(buf)). */
void range_buf_free_fn(void *data, void *hint);

/*
 * A pool of range buffers of one size (a whole range), so that a miss reuses memory that is
 * already mapped instead of faulting in 4 MiB of fresh pages (and, in a VM with free page
 * reporting, having the host map them again) for every range. Buffers are page-aligned
 * anonymous mappings (transparent huge pages asked for where the size allows). At most
 * `max_idle` idle buffers are kept; more are unmapped. Thread safe; reference counted: every
 * buffer out of the pool holds a reference, so the pool may be dropped by its owner while
 * ZeroMQ still sends from its buffers.
 */
range_pool_t *range_pool_new(size_t buffer_bytes, size_t max_idle);

/* Drops the owner's reference (idle buffers are unmapped now, buffers in use when they come
 * back) and sets *self_p to NULL; safe on NULL. */
void range_pool_destroy(range_pool_t **self_p);

/* A buffer of at least `capacity` bytes with one reference (len = 0): from `pool` when the pool
 * is not NULL and `capacity` is more than half its buffer size (a small tail range would pin a
 * whole range of memory in the store queue), else range_buf_new. NULL when out of memory. */
range_buf_t *range_buf_get(range_pool_t *pool, size_t capacity);

/* As range_buf_get, for a read whose length is not known yet (a cold GET: the reply tells the
 * file's size): a buffer mapped for it gets no huge-page advice, so that a small file costs the
 * few 4 KiB pages it fills, not a 2 MiB page the kernel zeroes (and, with THP defrag on
 * madvise, may compact memory for: 0.15-3.4 ms a buffer measured here, against 0.03 ms for the
 * 17 small pages of a 64 KiB file). Reused buffers keep the pages they have. */
range_buf_t *range_buf_get_unsized(range_pool_t *pool, size_t capacity);

/* Counters of a pool: buffers mapped in total (fresh memory) and reuses of idle ones. */
void range_pool_counts(range_pool_t *self, uint64_t *mapped, uint64_t *reused);

/* What makes two reads the same flight. A read that knows the file's version keys on the file
 * key (uri + version). A cold read (no version known yet: its GET learns it) keys on the range
 * key instead: `cold`, file_key = the uri key (hrw_uri_key, 16 bytes) and range_index, i.e.
 * hrw_uri_range_key; its leader's buffer carries the stat it learnt (has_stat), so every
 * joiner answers with that one version. */
typedef struct flight_key {
    uint8_t file_key[PAGESTORE_FILE_KEY_SIZE]; /* file version, or the uri key when cold */
    uint64_t range_index;                      /* range within it */
    bool store;                                /* the pages will be stored (not NO_CACHE) */
    bool cold;                                 /* a range key: the version is not known */
} flight_key_t;

/* The work of a flight's leader: fill *buf_out (a new buffer the caller of flight_do will own
 * a reference of) and return 0, or return a negative code. */
typedef int (*flight_fn)(void *arg, range_buf_t **buf_out);

/* The table of reads in flight. Thread safe. */
typedef struct flight_table flight_table_t;

/* A finished read its leader still holds in the table while it stores the pages (see
 * flight_do's `held_out`). */
typedef struct flight flight_t;

/* Returns a new table or NULL when out of memory. Caller owns it. */
flight_table_t *flight_table_new(void);

/* Frees *self_p and sets it to NULL; safe on NULL. No flight may be running or held. */
void flight_table_destroy(flight_table_t **self_p);

/*
 * Runs fn(arg) for `key` unless another thread is already running it (or holds its finished
 * buffer), in which case it shares that run's outcome (*joined = true). Either way returns fn's
 * result and, on success, sets *buf_out to a reference the caller releases.
 *
 * A flight has three states: running (fn is reading), held (fn succeeded, the leader stores
 * the pages), gone. A joiner waits while it runs and takes the buffer as soon as it is held,
 * so a reply never waits for the store; with `wait_stored` it waits until the flight is gone
 * (LOAD, which promises stored pages). A leader that passes `held_out` keeps its successful
 * flight in the table (*held_out set; NULL on failure or when it joined) and must end it with
 * flight_release() once the pages are stored: meanwhile new misses of the range join it
 * instead of reading the UFS again. Without `held_out` the flight is gone when fn returns.
 * Blocks the calling thread for the length of the read: flights run on fetch threads only.
 */
int flight_do(flight_table_t *self, const flight_key_t *key, flight_fn fn, void *arg,
              bool wait_stored, range_buf_t **buf_out, bool *joined, flight_t **held_out);

/* Joins the flight of `key` if there is one (waiting while it runs, as flight_do's joiners):
 * returns 1 and sets *buf_out to a reference of its buffer when it succeeded (NULL when it
 * failed), or 0 at once when no such flight is in the table. Never starts one. A versioned
 * read uses it to share a cold flight (range key) of the same range: the caller compares the
 * version the buffer learnt (buf->stat) with the one it wants. */
int flight_join(flight_table_t *self, const flight_key_t *key, range_buf_t **buf_out);

/* Ends a held flight (removes it from the table, wakes `wait_stored` joiners and quiescers)
 * and sets *held_p to NULL; safe on NULL. */
void flight_release(flight_table_t *self, flight_t **held_p);

/* Waits until every flight in the table at the time of the call is gone, so pages of reads
 * answered before it are stored (EVICT calls it before deleting, else a store finishing
 * after the delete would bring pages back). Flights started later are not waited for. */
void flight_quiesce(flight_table_t *self);

#endif
