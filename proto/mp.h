/*
 * mp.h - the project's one msgpack codec: a bounded reader over (pointer, length) and a writer
 * into msg_buf_t (buf.h). The data protocol (proto.c) and gossip (gossip/swim_proto.c) both
 * encode with mp_write_* and decode with mp_reader_t; nothing else in shoal encodes msgpack.
 * msgpack-c is not used here: only the tests (as an independent implementation) and
 * tools/bench/bench_codec.c link it. The reader never allocates, never reads past `end`,
 * checks every count against the bytes left, and bounds nesting when skipping.
 */
#ifndef SHOAL_MP_H
#define SHOAL_MP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "shoal_err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MP_DEPTH_MAX 16 /* deepest nesting mp_skip accepts in an unknown value */

/* Writers: append one msgpack value in its smallest encoding. Errors are sticky in buf->err.
 * Strings and bins longer than UINT32_MAX set SHOAL_EMSGSIZE. */
void mp_write_nil(msg_buf_t *buf);
void mp_write_bool(msg_buf_t *buf, bool value);
void mp_write_uint(msg_buf_t *buf, uint64_t value);
void mp_write_int(msg_buf_t *buf, int64_t value);
void mp_write_str(msg_buf_t *buf, const char *str, size_t len);
/* Writes a NUL-terminated string; NULL is written as "". */
void mp_write_cstr(msg_buf_t *buf, const char *str);
void mp_write_bin(msg_buf_t *buf, const void *data, size_t len);
void mp_write_array(msg_buf_t *buf, uint32_t count);
void mp_write_map(msg_buf_t *buf, uint32_t count);

/* A cursor over untrusted bytes. Invariant: pos <= end. The bytes are borrowed. */
typedef struct mp_reader {
    const uint8_t *pos; /* next byte to read */
    const uint8_t *end; /* one past the last readable byte */
} mp_reader_t;

/* The kind of the next value, from its first byte alone. */
typedef enum mp_kind {
    MP_NONE = 0, /* no bytes left, or the reserved byte 0xc1 */
    MP_NIL,
    MP_BOOL,
    MP_INT, /* any integer, positive or negative */
    MP_FLOAT,
    MP_STR,
    MP_BIN,
    MP_ARRAY,
    MP_MAP,
    MP_EXT,
} mp_kind_t;

/* Points `reader` at `len` bytes at `data` (borrowed). */
void mp_reader_init(mp_reader_t *reader, const void *data, size_t len);
/* Bytes not yet read. */
size_t mp_reader_left(const mp_reader_t *reader);
/* Kind of the next value without consuming it. */
mp_kind_t mp_peek(const mp_reader_t *reader);

/* Readers: each consumes one value of the expected kind and returns 0, or returns SHOAL_EPROTO
 * (wrong kind, truncated, or out of range) and leaves the reader where it was. They do not set
 * the last error: the caller knows which field it was reading and says so. */
int mp_read_nil(mp_reader_t *reader);
int mp_read_bool(mp_reader_t *reader, bool *out);
/* Any msgpack integer whose value is in [0, UINT64_MAX]. */
int mp_read_uint(mp_reader_t *reader, uint64_t *out);
/* Any msgpack integer whose value is in [INT64_MIN, INT64_MAX]. */
int mp_read_int(mp_reader_t *reader, int64_t *out);
/* A str; *out points into the input (borrowed, not NUL-terminated). */
int mp_read_str(mp_reader_t *reader, const char **out, uint32_t *len);
/* A bin; *out points into the input (borrowed). */
int mp_read_bin(mp_reader_t *reader, const uint8_t **out, uint32_t *len);
/* An array header. Refuses a count larger than the bytes left (each element takes at least
 * one byte), so a count can be trusted to size an allocation up to the input size. */
int mp_read_array(mp_reader_t *reader, uint32_t *count);
/* A map header; refuses a count larger than half the bytes left. */
int mp_read_map(mp_reader_t *reader, uint32_t *count);
/* Skips one whole value of any kind, nested at most MP_DEPTH_MAX deep. */
int mp_skip(mp_reader_t *reader);

#ifdef __cplusplus
}
#endif
#endif
