/*
 * buf.h - msg_buf_t, the project's one growable byte buffer with a sticky error. The msgpack
 * writer (mp.h) appends to it; the data protocol (proto.c), gossip (swim_proto.c), the node
 * and the client encode into it. No I/O, no global state.
 */
#ifndef SHOAL_BUF_H
#define SHOAL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A growable byte buffer. Set up with msg_buf_init (zeroed memory is also a valid empty
 * buffer); the caller owns it and frees it with msg_buf_fini. Writers never fail one by one:
 * the first failure (out of memory, or growing past `limit`) is kept in `err` and later writes
 * do nothing, so a sequence of writes is checked once at the end.
 * Invariant: len <= cap; data is NULL iff cap == 0; limit == 0 or len <= limit. */
typedef struct msg_buf {
    uint8_t *data; /* bytes written so far; owned by the buffer */
    size_t len;    /* bytes in use */
    size_t cap;    /* bytes allocated */
    size_t limit;  /* refuse to grow past this many bytes (SHOAL_EMSGSIZE); 0 = no limit */
    int err;       /* 0, or the first error of a write since the last reset */
} msg_buf_t;

/* Sets up an empty buffer with no limit. Does not allocate. */
void msg_buf_init(msg_buf_t *buf);
/* Frees the bytes; leaves an empty buffer (limit kept) that may be used again. Safe on a
 * zeroed buffer. */
void msg_buf_fini(msg_buf_t *buf);
/* Forgets the contents and the sticky error but keeps the allocation, so a buffer reused for
 * every message costs no allocation in steady state. */
void msg_buf_reset(msg_buf_t *buf);
/* Appends `len` raw bytes (copied from the caller). Errors are sticky in buf->err. */
void msg_buf_append(msg_buf_t *buf, const void *data, size_t len);
/* Makes room for `extra` more bytes after buf->len, so that a writer may store them at
 * buf->data + buf->len and then advance buf->len. Returns false (error sticky in buf->err,
 * SHOAL_ENOMEM or SHOAL_EMSGSIZE past the limit) when it cannot, or when an earlier write
 * already failed. Grows geometrically, so a sequence of small writes is amortised O(1). */
bool msg_buf_reserve(msg_buf_t *buf, size_t extra);

#ifdef __cplusplus
}
#endif
#endif
