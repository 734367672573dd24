/*
 * swim_proto.c - encode SWIM messages with msgpack-c's packer, decode them with a small
 * bounded reader of our own (msgpack-c's unpacker allocates by the declared sizes, which an
 * attacker chooses). The format is drawn in swim_proto.h.
 */
#include "swim_proto.h"

#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "shoal_err.h"

/* ---------------------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------------------- */

void swim_buf_fini(swim_buf_t *buf)
{
    free(buf->data);
    memset(buf, 0, sizeof *buf);
}

/* msgpack_packer write callback: appends to a swim_buf_t, doubling its allocation. */
static int s_buf_write(void *data, const char *bytes, size_t len)
{
    swim_buf_t *buf = data;
    if (buf->err != 0)
        return -1;
    if (buf->len + len > SWIM_MSG_MAX) {
        buf->err = SHOAL_EMSGSIZE;
        return -1;
    }
    if (buf->len + len > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 1024;
        while (cap < buf->len + len)
            cap *= 2;
        uint8_t *grown = realloc(buf->data, cap);
        if (grown == NULL) {
            buf->err = SHOAL_ENOMEM;
            return -1;
        }
        buf->data = grown;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, bytes, len);
    buf->len += len;
    return 0;
}

static void s_pack_bin16(msgpack_packer *pk, const uint8_t *id)
{
    msgpack_pack_bin(pk, 16);
    msgpack_pack_bin_body(pk, id, 16);
}

static void s_pack_str(msgpack_packer *pk, swim_str_t str)
{
    msgpack_pack_str(pk, str.len);
    if (str.len > 0)
        msgpack_pack_str_body(pk, str.ptr, str.len);
}

static bool s_update_ok(const swim_update_t *u)
{
    return u->name.len <= 63 && u->gossip_ep.len <= 255 && u->data_ep.len <= 255 && u->state <= 3;
}

size_t swim_update_size(const swim_update_t *u)
{
    /* array(1) + bin16(18) + 3 str headers (<= 2 each) + strings + 3 uints (<= 9 each)
     * + suspecter (18 or 1) */
    return 1 + 18 + 6 + u->name.len + u->gossip_ep.len + u->data_ep.len + 27 +
           (u->has_suspecter ? 18 : 1);
}

static void s_pack_update(msgpack_packer *pk, const swim_update_t *u)
{
    msgpack_pack_array(pk, 8);
    s_pack_bin16(pk, u->id);
    s_pack_str(pk, u->name);
    s_pack_str(pk, u->gossip_ep);
    s_pack_str(pk, u->data_ep);
    msgpack_pack_uint64(pk, u->incarnation);
    msgpack_pack_uint8(pk, u->state);
    msgpack_pack_uint64(pk, u->weight);
    if (u->has_suspecter)
        s_pack_bin16(pk, u->suspecter);
    else
        msgpack_pack_nil(pk);
}

int swim_msg_encode(swim_buf_t *buf, const swim_msg_t *msg, const swim_update_t *updates, size_t n)
{
    msgpack_packer pk;
    size_t body;
    buf->len = 0;
    buf->err = 0;
    switch (msg->type) {
    case MSG_PING:
        body = 3;
        break;
    case MSG_ACK:
        body = 2;
        break;
    case MSG_PING_REQ:
        body = 4;
        break;
    case MSG_NACK:
        body = 2;
        break;
    case MSG_SYNC:
        body = 4;
        break;
    case MSG_JOIN:
        body = 3;
        break;
    case MSG_LEAVE:
        body = 1;
        break;
    case MSG_GOSSIP:
        body = 1;
        break;
    default:
        return shoal_fail(SHOAL_EINVAL, "swim: cannot encode message type %u", msg->type);
    }
    size_t limit =
        msg->type == MSG_SYNC || msg->type == MSG_JOIN ? SWIM_SYNC_MAX : SWIM_UPDATES_MAX;
    if (n > limit || msg->from_addr.len > 255 || msg->target_addr.len > 255)
        return shoal_fail(SHOAL_EINVAL, "swim: message too large to encode");
    for (size_t i = 0; i < n; i++)
        if (!s_update_ok(&updates[i]))
            return shoal_fail(SHOAL_EINVAL, "swim: record %zu has an overlong field", i);

    msgpack_packer_init(&pk, buf, s_buf_write);
    msgpack_pack_array(&pk, 4 + body);
    msgpack_pack_uint8(&pk, SWIM_PROTO_VERSION);
    msgpack_pack_uint8(&pk, (uint8_t)msg->type);
    s_pack_bin16(&pk, msg->from_id);
    s_pack_str(&pk, msg->from_addr);
    switch (msg->type) {
    case MSG_PING:
        msgpack_pack_uint64(&pk, msg->seq);
        s_pack_bin16(&pk, msg->target_id);
        break;
    case MSG_PING_REQ:
        msgpack_pack_uint64(&pk, msg->seq);
        s_pack_bin16(&pk, msg->target_id);
        s_pack_str(&pk, msg->target_addr);
        break;
    case MSG_ACK:
    case MSG_NACK:
        msgpack_pack_uint64(&pk, msg->seq);
        break;
    case MSG_SYNC:
        msgpack_pack_uint32(&pk, msg->sync_kind);
        msgpack_pack_uint32(&pk, msg->page_size);
        msgpack_pack_uint32(&pk, msg->range_pages);
        break;
    case MSG_JOIN:
        msgpack_pack_uint32(&pk, msg->page_size);
        msgpack_pack_uint32(&pk, msg->range_pages);
        break;
    default:
        break;
    }
    msgpack_pack_array(&pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        s_pack_update(&pk, &updates[i]);
    return buf->err;
}

/* ---------------------------------------------------------------------------------------
 * Decoding: a cursor that never reads past `end`. Each reader returns false on a type
 * mismatch or truncation and leaves the cursor unspecified (the message is then refused).
 * ------------------------------------------------------------------------------------- */

typedef struct s_rd {
    const uint8_t *pos; /* next byte */
    const uint8_t *end; /* one past the last byte */
} s_rd_t;

static bool s_take(s_rd_t *rd, size_t n, const uint8_t **out)
{
    if ((size_t)(rd->end - rd->pos) < n)
        return false;
    *out = rd->pos;
    rd->pos += n;
    return true;
}

static uint64_t s_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static bool s_read_uint(s_rd_t *rd, uint64_t *out)
{
    const uint8_t *p;
    if (!s_take(rd, 1, &p))
        return false;
    uint8_t b = p[0];
    size_t n;
    if (b <= 0x7f) {
        *out = b;
        return true;
    }
    switch (b) {
    case 0xcc:
        n = 1;
        break;
    case 0xcd:
        n = 2;
        break;
    case 0xce:
        n = 4;
        break;
    case 0xcf:
        n = 8;
        break;
    default:
        return false; /* negative ints and everything else */
    }
    if (!s_take(rd, n, &p))
        return false;
    *out = s_be(p, n);
    return true;
}

static bool s_read_array(s_rd_t *rd, uint32_t *count)
{
    const uint8_t *p;
    if (!s_take(rd, 1, &p))
        return false;
    if ((p[0] & 0xf0) == 0x90) {
        *count = p[0] & 0x0f;
        return true;
    }
    size_t n = p[0] == 0xdc ? 2 : p[0] == 0xdd ? 4 : 0;
    if (n == 0 || !s_take(rd, n, &p))
        return false;
    *count = (uint32_t)s_be(p, n);
    return true;
}

/* Reads a str (is_bin false) or bin (is_bin true) of at most `max` bytes. */
static bool s_read_bytes(s_rd_t *rd, bool is_bin, size_t max, const uint8_t **data, size_t *len)
{
    const uint8_t *p;
    size_t n = 0;
    if (!s_take(rd, 1, &p))
        return false;
    uint8_t b = p[0];
    if (!is_bin && (b & 0xe0) == 0xa0) {
        *len = b & 0x1f;
    } else {
        if (is_bin)
            n = b == 0xc4 ? 1 : b == 0xc5 ? 2 : b == 0xc6 ? 4 : 0;
        else
            n = b == 0xd9 ? 1 : b == 0xda ? 2 : b == 0xdb ? 4 : 0;
        if (n == 0 || !s_take(rd, n, &p))
            return false;
        *len = (size_t)s_be(p, n);
    }
    if (*len > max)
        return false;
    return s_take(rd, *len, data);
}

static bool s_read_id(s_rd_t *rd, uint8_t id[16])
{
    const uint8_t *data;
    size_t len;
    if (!s_read_bytes(rd, true, 16, &data, &len) || len != 16)
        return false;
    memcpy(id, data, 16);
    return true;
}

static bool s_read_str(s_rd_t *rd, size_t max, swim_str_t *out)
{
    const uint8_t *data;
    if (!s_read_bytes(rd, false, max, &data, &out->len))
        return false;
    out->ptr = (const char *)data;
    /* Endpoints and names become C strings: an embedded NUL would silently cut them. */
    return memchr(data, 0, out->len) == NULL;
}

static bool s_read_u32(s_rd_t *rd, uint32_t *out)
{
    uint64_t v;
    if (!s_read_uint(rd, &v) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Reads one record; `field` names the field that failed, for the error message. */
static bool s_read_update(s_rd_t *rd, swim_update_t *u, const char **field)
{
    uint32_t count;
    uint64_t state;
    memset(u, 0, sizeof *u);
    if ((*field = "record", !s_read_array(rd, &count) || count != 8) ||
        (*field = "id", !s_read_id(rd, u->id)) ||
        (*field = "name", !s_read_str(rd, 63, &u->name)) ||
        (*field = "gossip_ep", !s_read_str(rd, 255, &u->gossip_ep)) ||
        (*field = "data_ep", !s_read_str(rd, 255, &u->data_ep)) ||
        (*field = "incarnation", !s_read_uint(rd, &u->incarnation)) ||
        (*field = "state", !s_read_uint(rd, &state) || state > 3) ||
        (*field = "weight", !s_read_uint(rd, &u->weight)))
        return false;
    u->state = (uint8_t)state;
    *field = "suspecter";
    if (rd->pos < rd->end && *rd->pos == 0xc0) {
        rd->pos++;
        return true;
    }
    u->has_suspecter = true;
    return s_read_id(rd, u->suspecter);
}

int swim_msg_decode(swim_msg_t *msg, const uint8_t *bytes, size_t len)
{
    s_rd_t rd = {bytes, bytes + len};
    uint32_t count, body;
    uint64_t version, type;
    const char *field = "message";
    memset(msg, 0, sizeof *msg);
    if (len > SWIM_MSG_MAX)
        return shoal_fail(SHOAL_EPROTO, "swim: message of %zu bytes is too large", len);
    if (!s_read_array(&rd, &count))
        goto bad;
    field = "version";
    if (count < 4 || !s_read_uint(&rd, &version) || version != SWIM_PROTO_VERSION)
        goto bad;
    field = "type";
    if (!s_read_uint(&rd, &type))
        goto bad;
    switch (type) {
    case MSG_PING:
        body = 3;
        break;
    case MSG_ACK:
        body = 2;
        break;
    case MSG_PING_REQ:
        body = 4;
        break;
    case MSG_NACK:
        body = 2;
        break;
    case MSG_SYNC:
        body = 4;
        break;
    case MSG_JOIN:
        body = 3;
        break;
    case MSG_LEAVE:
        body = 1;
        break;
    case MSG_GOSSIP:
        body = 1;
        break;
    default:
        goto bad;
    }
    msg->type = (uint32_t)type;
    field = "field count";
    if (count != 4 + body)
        goto bad;
    field = "from_id";
    if (!s_read_id(&rd, msg->from_id))
        goto bad;
    field = "from_addr";
    if (!s_read_str(&rd, 255, &msg->from_addr))
        goto bad;
    switch (type) {
    case MSG_PING:
    case MSG_PING_REQ:
    case MSG_ACK:
    case MSG_NACK:
        field = "seq";
        if (!s_read_uint(&rd, &msg->seq))
            goto bad;
        if (type == MSG_ACK || type == MSG_NACK)
            break;
        field = "target_id";
        if (!s_read_id(&rd, msg->target_id))
            goto bad;
        field = "target_addr";
        if (type == MSG_PING_REQ && !s_read_str(&rd, 255, &msg->target_addr))
            goto bad;
        break;
    case MSG_SYNC:
        field = "sync kind";
        if (!s_read_u32(&rd, &msg->sync_kind) || msg->sync_kind > SWIM_SYNC_REFUSED)
            goto bad;
        /* fall through */
    case MSG_JOIN:
        field = "page_size";
        if (!s_read_u32(&rd, &msg->page_size))
            goto bad;
        field = "range_pages";
        if (!s_read_u32(&rd, &msg->range_pages))
            goto bad;
        break;
    default:
        break;
    }
    field = "updates";
    if (!s_read_array(&rd, &msg->n_updates))
        goto bad;
    uint32_t limit = type == MSG_SYNC || type == MSG_JOIN ? SWIM_SYNC_MAX : SWIM_UPDATES_MAX;
    if (msg->n_updates > limit || msg->n_updates > (size_t)(rd.end - rd.pos) / SWIM_RECORD_MIN)
        goto bad;
    msg->cursor = rd.pos;
    for (uint32_t i = 0; i < msg->n_updates; i++) {
        swim_update_t update;
        if (!s_read_update(&rd, &update, &field))
            goto bad;
    }
    field = "trailing bytes";
    if (rd.pos != rd.end)
        goto bad;
    msg->end = rd.end;
    return 0;
bad:
    return shoal_fail(SHOAL_EPROTO, "swim: malformed message: bad %s", field);
}

int swim_msg_next_update(swim_msg_t *msg, swim_update_t *update)
{
    const char *field;
    if (msg->cursor == NULL || msg->cursor >= msg->end)
        return 0;
    s_rd_t rd = {msg->cursor, msg->end};
    if (!s_read_update(&rd, update, &field))
        return 0; /* cannot happen after swim_msg_decode */
    msg->cursor = rd.pos;
    return 1;
}
