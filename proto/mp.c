/*
 * mp.c - the one msgpack codec: a bounded reader over (pointer, length) and a writer into
 * msg_buf_t (buf.c).
 * The reader is written for hostile input: every read checks the bytes left first, counts are
 * checked against the bytes left, and skipping is depth-bounded.
 */
#include "mp.h"

#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* writer                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* Appends `tag` followed by the low `size` bytes of `value`, big-endian. */
static void s_put_tagged(msg_buf_t *buf, uint8_t tag, uint64_t value, unsigned size)
{
    if (!msg_buf_reserve(buf, 1 + size))
        return;
    uint8_t *p = buf->data + buf->len;
    p[0] = tag;
    for (unsigned i = 0; i < size; i++)
        p[1 + i] = (uint8_t)(value >> (8 * (size - 1 - i)));
    buf->len += 1 + size;
}

static void s_put_byte(msg_buf_t *buf, uint8_t byte)
{
    if (!msg_buf_reserve(buf, 1))
        return;
    buf->data[buf->len++] = byte;
}

void mp_write_nil(msg_buf_t *buf)
{
    s_put_byte(buf, 0xc0);
}

void mp_write_bool(msg_buf_t *buf, bool value)
{
    s_put_byte(buf, value ? 0xc3 : 0xc2);
}

void mp_write_uint(msg_buf_t *buf, uint64_t value)
{
    if (value < 0x80)
        s_put_byte(buf, (uint8_t)value);
    else if (value <= UINT8_MAX)
        s_put_tagged(buf, 0xcc, value, 1);
    else if (value <= UINT16_MAX)
        s_put_tagged(buf, 0xcd, value, 2);
    else if (value <= UINT32_MAX)
        s_put_tagged(buf, 0xce, value, 4);
    else
        s_put_tagged(buf, 0xcf, value, 8);
}

void mp_write_int(msg_buf_t *buf, int64_t value)
{
    if (value >= 0) {
        mp_write_uint(buf, (uint64_t)value);
        return;
    }
    if (value >= -32)
        s_put_byte(buf, (uint8_t)(int8_t)value);
    else if (value >= INT8_MIN)
        s_put_tagged(buf, 0xd0, (uint64_t)value, 1);
    else if (value >= INT16_MIN)
        s_put_tagged(buf, 0xd1, (uint64_t)value, 2);
    else if (value >= INT32_MIN)
        s_put_tagged(buf, 0xd2, (uint64_t)value, 4);
    else
        s_put_tagged(buf, 0xd3, (uint64_t)value, 8);
}

void mp_write_str(msg_buf_t *buf, const char *str, size_t len)
{
    if (len > UINT32_MAX) {
        if (!buf->err)
            buf->err = SHOAL_EMSGSIZE;
        return;
    }
    if (len < 32)
        s_put_byte(buf, (uint8_t)(0xa0 | len));
    else if (len <= UINT8_MAX)
        s_put_tagged(buf, 0xd9, len, 1);
    else if (len <= UINT16_MAX)
        s_put_tagged(buf, 0xda, len, 2);
    else
        s_put_tagged(buf, 0xdb, len, 4);
    msg_buf_append(buf, str, len);
}

void mp_write_cstr(msg_buf_t *buf, const char *str)
{
    if (!str)
        str = "";
    mp_write_str(buf, str, strlen(str));
}

void mp_write_bin(msg_buf_t *buf, const void *data, size_t len)
{
    if (len > UINT32_MAX) {
        if (!buf->err)
            buf->err = SHOAL_EMSGSIZE;
        return;
    }
    if (len <= UINT8_MAX)
        s_put_tagged(buf, 0xc4, len, 1);
    else if (len <= UINT16_MAX)
        s_put_tagged(buf, 0xc5, len, 2);
    else
        s_put_tagged(buf, 0xc6, len, 4);
    msg_buf_append(buf, data, len);
}

void mp_write_array(msg_buf_t *buf, uint32_t count)
{
    if (count < 16)
        s_put_byte(buf, (uint8_t)(0x90 | count));
    else if (count <= UINT16_MAX)
        s_put_tagged(buf, 0xdc, count, 2);
    else
        s_put_tagged(buf, 0xdd, count, 4);
}

void mp_write_map(msg_buf_t *buf, uint32_t count)
{
    if (count < 16)
        s_put_byte(buf, (uint8_t)(0x80 | count));
    else if (count <= UINT16_MAX)
        s_put_tagged(buf, 0xde, count, 2);
    else
        s_put_tagged(buf, 0xdf, count, 4);
}

/* ---------------------------------------------------------------------------------------- */
/* reader                                                                                    */
/* ---------------------------------------------------------------------------------------- */

void mp_reader_init(mp_reader_t *reader, const void *data, size_t len)
{
    reader->pos = data;
    reader->end = data ? reader->pos + len : reader->pos; /* no arithmetic on NULL */
}

size_t mp_reader_left(const mp_reader_t *reader)
{
    return (size_t)(reader->end - reader->pos);
}

mp_kind_t mp_peek(const mp_reader_t *reader)
{
    if (reader->pos >= reader->end)
        return MP_NONE;
    uint8_t b = reader->pos[0];
    if (b <= 0x7f || b >= 0xe0)
        return MP_INT;
    if (b <= 0x8f)
        return MP_MAP;
    if (b <= 0x9f)
        return MP_ARRAY;
    if (b <= 0xbf)
        return MP_STR;
    switch (b) {
    case 0xc0:
        return MP_NIL;
    case 0xc2:
    case 0xc3:
        return MP_BOOL;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        return MP_BIN;
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        return MP_EXT;
    case 0xca:
    case 0xcb:
        return MP_FLOAT;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        return MP_INT;
    case 0xd9:
    case 0xda:
    case 0xdb:
        return MP_STR;
    case 0xdc:
    case 0xdd:
        return MP_ARRAY;
    case 0xde:
    case 0xdf:
        return MP_MAP;
    default:
        return MP_NONE; /* 0xc1 is never used */
    }
}

/* Reads `size` big-endian bytes at `p` (the caller checked they exist). */
static uint64_t s_be(const uint8_t *p, unsigned size)
{
    uint64_t value = 0;
    for (unsigned i = 0; i < size; i++)
        value = (value << 8) | p[i];
    return value;
}

/* True when at least `n` bytes are left after `p`. Written to never form a pointer past end. */
static bool s_has(const mp_reader_t *reader, const uint8_t *p, uint64_t n)
{
    return (uint64_t)(reader->end - p) >= n;
}

int mp_read_nil(mp_reader_t *reader)
{
    if (mp_peek(reader) != MP_NIL)
        return SHOAL_EPROTO;
    reader->pos++;
    return 0;
}

int mp_read_bool(mp_reader_t *reader, bool *out)
{
    if (mp_peek(reader) != MP_BOOL)
        return SHOAL_EPROTO;
    *out = reader->pos[0] == 0xc3;
    reader->pos++;
    return 0;
}

/* Reads any integer as a sign flag and magnitude bits: for negatives *neg is true and
 * *bits holds the two's-complement int64 value. */
static int s_read_integer(mp_reader_t *reader, bool *neg, uint64_t *bits)
{
    if (reader->pos >= reader->end)
        return SHOAL_EPROTO;
    uint8_t b = reader->pos[0];
    const uint8_t *p = reader->pos + 1;
    if (b <= 0x7f) {
        *neg = false;
        *bits = b;
        reader->pos = p;
        return 0;
    }
    if (b >= 0xe0) {
        *neg = true;
        *bits = (uint64_t)(int64_t)(int8_t)b;
        reader->pos = p;
        return 0;
    }
    unsigned size;
    bool is_signed;
    switch (b) {
    case 0xcc:
        size = 1, is_signed = false;
        break;
    case 0xcd:
        size = 2, is_signed = false;
        break;
    case 0xce:
        size = 4, is_signed = false;
        break;
    case 0xcf:
        size = 8, is_signed = false;
        break;
    case 0xd0:
        size = 1, is_signed = true;
        break;
    case 0xd1:
        size = 2, is_signed = true;
        break;
    case 0xd2:
        size = 4, is_signed = true;
        break;
    case 0xd3:
        size = 8, is_signed = true;
        break;
    default:
        return SHOAL_EPROTO;
    }
    if (!s_has(reader, p, size))
        return SHOAL_EPROTO;
    uint64_t raw = s_be(p, size);
    if (is_signed) {
        /* sign-extend from size bytes */
        unsigned shift = 64 - 8 * size;
        int64_t value = (int64_t)(raw << shift) >> shift;
        *neg = value < 0;
        *bits = (uint64_t)value;
    } else {
        *neg = false;
        *bits = raw;
    }
    reader->pos = p + size;
    return 0;
}

int mp_read_uint(mp_reader_t *reader, uint64_t *out)
{
    mp_reader_t saved = *reader;
    bool neg;
    uint64_t bits;
    if (s_read_integer(reader, &neg, &bits) || neg) {
        *reader = saved;
        return SHOAL_EPROTO;
    }
    *out = bits;
    return 0;
}

int mp_read_int(mp_reader_t *reader, int64_t *out)
{
    mp_reader_t saved = *reader;
    bool neg;
    uint64_t bits;
    if (s_read_integer(reader, &neg, &bits) || (!neg && bits > INT64_MAX)) {
        *reader = saved;
        return SHOAL_EPROTO;
    }
    *out = (int64_t)bits;
    return 0;
}

/* Reads the header of a str (is_bin false) or bin (true) and its payload bounds. */
static int s_read_bytes(mp_reader_t *reader, bool is_bin, const uint8_t **out, uint32_t *len)
{
    if (reader->pos >= reader->end)
        return SHOAL_EPROTO;
    uint8_t b = reader->pos[0];
    const uint8_t *p = reader->pos + 1;
    unsigned size;
    uint64_t n;
    if (!is_bin && b >= 0xa0 && b <= 0xbf) {
        size = 0;
        n = b & 0x1f;
    } else {
        switch (b) {
        case 0xd9:
            size = 1;
            break;
        case 0xda:
            size = 2;
            break;
        case 0xdb:
            size = 4;
            break;
        case 0xc4:
            size = 1;
            break;
        case 0xc5:
            size = 2;
            break;
        case 0xc6:
            size = 4;
            break;
        default:
            return SHOAL_EPROTO;
        }
        if (is_bin != (b >= 0xc4 && b <= 0xc6))
            return SHOAL_EPROTO;
        if (!s_has(reader, p, size))
            return SHOAL_EPROTO;
        n = s_be(p, size);
        p += size;
    }
    if (!s_has(reader, p, n))
        return SHOAL_EPROTO;
    *out = p;
    *len = (uint32_t)n;
    reader->pos = p + n;
    return 0;
}

int mp_read_str(mp_reader_t *reader, const char **out, uint32_t *len)
{
    const uint8_t *p;
    int rc = s_read_bytes(reader, false, &p, len);
    if (rc == 0)
        *out = (const char *)p;
    return rc;
}

int mp_read_bin(mp_reader_t *reader, const uint8_t **out, uint32_t *len)
{
    return s_read_bytes(reader, true, out, len);
}

/* Reads an array (is_map false) or map header. A count that could not possibly fit in the
 * bytes left (min_bytes per element) is refused here, so callers may size allocations by it. */
static int s_read_container(mp_reader_t *reader, bool is_map, uint32_t *count)
{
    if (reader->pos >= reader->end)
        return SHOAL_EPROTO;
    uint8_t b = reader->pos[0];
    const uint8_t *p = reader->pos + 1;
    uint64_t n;
    uint8_t fix_tag = is_map ? 0x80 : 0x90;
    uint8_t tag16 = is_map ? 0xde : 0xdc;
    if ((b & 0xf0) == fix_tag) {
        n = b & 0x0f;
    } else if (b == tag16 || b == tag16 + 1) {
        unsigned size = b == tag16 ? 2 : 4;
        if (!s_has(reader, p, size))
            return SHOAL_EPROTO;
        n = s_be(p, size);
        p += size;
    } else {
        return SHOAL_EPROTO;
    }
    if (!s_has(reader, p, n * (is_map ? 2 : 1)))
        return SHOAL_EPROTO;
    *count = (uint32_t)n;
    reader->pos = p;
    return 0;
}

int mp_read_array(mp_reader_t *reader, uint32_t *count)
{
    return s_read_container(reader, false, count);
}

int mp_read_map(mp_reader_t *reader, uint32_t *count)
{
    return s_read_container(reader, true, count);
}

/* Skips one value. Recursion is bounded by MP_DEPTH_MAX, and every element consumes at least
 * one byte, so the total work is bounded by the input length. */
static int s_skip(mp_reader_t *reader, int depth)
{
    if (depth > MP_DEPTH_MAX)
        return SHOAL_EPROTO;
    const uint8_t *p;
    uint32_t n;
    bool flag;
    uint64_t u;
    switch (mp_peek(reader)) {
    case MP_NIL:
        reader->pos++;
        return 0;
    case MP_BOOL:
        return mp_read_bool(reader, &flag);
    case MP_INT: {
        bool neg;
        return s_read_integer(reader, &neg, &u);
    }
    case MP_FLOAT: {
        unsigned size = reader->pos[0] == 0xca ? 4 : 8;
        if (!s_has(reader, reader->pos + 1, size))
            return SHOAL_EPROTO;
        reader->pos += 1 + size;
        return 0;
    }
    case MP_STR:
        return s_read_bytes(reader, false, &p, &n);
    case MP_BIN:
        return s_read_bytes(reader, true, &p, &n);
    case MP_EXT: {
        uint8_t b = reader->pos[0];
        const uint8_t *q = reader->pos + 1;
        uint64_t len;
        if (b >= 0xd4 && b <= 0xd8) {
            len = 1u << (b - 0xd4); /* fixext 1, 2, 4, 8, 16 */
        } else {
            unsigned size = b == 0xc7 ? 1 : b == 0xc8 ? 2 : 4;
            if (!s_has(reader, q, size))
                return SHOAL_EPROTO;
            len = s_be(q, size);
            q += size;
        }
        if (!s_has(reader, q, 1 + len)) /* type byte + data */
            return SHOAL_EPROTO;
        reader->pos = q + 1 + len;
        return 0;
    }
    case MP_ARRAY:
    case MP_MAP: {
        mp_reader_t saved = *reader;
        bool is_map = mp_peek(reader) == MP_MAP;
        if (s_read_container(reader, is_map, &n))
            return SHOAL_EPROTO;
        uint64_t items = (uint64_t)n * (is_map ? 2 : 1);
        for (uint64_t i = 0; i < items; i++) {
            if (s_skip(reader, depth + 1)) {
                *reader = saved;
                return SHOAL_EPROTO;
            }
        }
        return 0;
    }
    default:
        return SHOAL_EPROTO;
    }
}

int mp_skip(mp_reader_t *reader)
{
    mp_reader_t saved = *reader;
    int rc = s_skip(reader, 1);
    if (rc)
        *reader = saved;
    return rc;
}
