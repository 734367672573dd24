/*
 * buf.c - msg_buf_t: a growable byte buffer with a sticky error and an optional size limit.
 */
#include "buf.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* Checks the invariants written next to msg_buf_t; compiled out with NDEBUG. */
static void s_buf_sanity(const msg_buf_t *buf)
{
    assert(buf->len <= buf->cap);
    assert((buf->data == NULL) == (buf->cap == 0));
    assert(buf->limit == 0 || buf->len <= buf->limit);
    assert(buf->err <= 0);
    (void)buf;
}

void msg_buf_init(msg_buf_t *buf)
{
    memset(buf, 0, sizeof *buf);
}

void msg_buf_fini(msg_buf_t *buf)
{
    free(buf->data);
    size_t limit = buf->limit;
    memset(buf, 0, sizeof *buf);
    buf->limit = limit;
}

void msg_buf_reset(msg_buf_t *buf)
{
    buf->len = 0;
    buf->err = 0;
}

/* Doubling from 256 bytes; fails sticky with SHOAL_EMSGSIZE past the limit, which also bounds
 * what a runaway encoder can allocate. */
bool msg_buf_reserve(msg_buf_t *buf, size_t extra)
{
    s_buf_sanity(buf);
    if (buf->err)
        return false;
    if (extra > SIZE_MAX - buf->len) {
        buf->err = SHOAL_EMSGSIZE;
        return false;
    }
    size_t need = buf->len + extra;
    if (buf->limit && need > buf->limit) {
        buf->err = SHOAL_EMSGSIZE;
        return false;
    }
    if (need <= buf->cap)
        return true;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *data = realloc(buf->data, cap);
    if (!data) {
        buf->err = SHOAL_ENOMEM;
        return false;
    }
    buf->data = data;
    buf->cap = cap;
    return true;
}

void msg_buf_append(msg_buf_t *buf, const void *data, size_t len)
{
    if (!msg_buf_reserve(buf, len))
        return;
    if (len)
        memcpy(buf->data + buf->len, data, len);
    buf->len += len;
}
