/*
 * swim_proto.c - encode and decode SWIM messages with proto/'s one msgpack codec: mp_write_*
 * into a msg_buf_t, and the bounded mp_reader_t for the hostile side (it checks every count
 * against the bytes left and never allocates; msgpack-c's unpacker allocates by the declared
 * sizes, which an attacker chooses). The format is drawn in swim_proto.h.
 */
#include "swim_proto.h"

#include <string.h>

#include "mp.h"
#include "shoal_err.h"

/* ---------------------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------------------- */

static void s_write_id(msg_buf_t *buf, const uint8_t *id)
{
    mp_write_bin(buf, id, 16);
}

static void s_write_str(msg_buf_t *buf, swim_str_t str)
{
    mp_write_str(buf, str.len ? str.ptr : "", str.len);
}

static bool s_update_ok(const swim_update_t *u)
{
    return u->name.len <= 63 && u->gossip_ep.len <= 255 && u->data_ep.len <= 255 &&
           u->host_id.len <= SWIM_HOST_ID_MAX && u->local_socket.len <= SWIM_SOCKET_MAX &&
           u->state <= 3;
}

size_t swim_update_size(const swim_update_t *u)
{
    /* array(1) + bin16(18) + 5 str headers (<= 2 each) + strings + 3 uints (<= 9 each)
     * + suspecter (18 or 1) */
    return 1 + 18 + 10 + u->name.len + u->gossip_ep.len + u->data_ep.len + u->host_id.len +
           u->local_socket.len + 27 + (u->has_suspecter ? 18 : 1);
}

static void s_write_update(msg_buf_t *buf, const swim_update_t *u)
{
    mp_write_array(buf, SWIM_RECORD_FIELDS);
    s_write_id(buf, u->id);
    s_write_str(buf, u->name);
    s_write_str(buf, u->gossip_ep);
    s_write_str(buf, u->data_ep);
    mp_write_uint(buf, u->incarnation);
    mp_write_uint(buf, u->state);
    mp_write_uint(buf, u->weight);
    if (u->has_suspecter)
        s_write_id(buf, u->suspecter);
    else
        mp_write_nil(buf);
    s_write_str(buf, u->host_id);
    s_write_str(buf, u->local_socket);
}

/* Fields after the four common ones, by type; 0 for a type gossip does not send. */
static uint32_t s_body_fields(uint64_t type)
{
    switch (type) {
    case MSG_PING:
        return 3;
    case MSG_ACK:
        return 2;
    case MSG_PING_REQ:
        return 4;
    case MSG_NACK:
        return 2;
    case MSG_SYNC:
        return 4;
    case MSG_JOIN:
        return 3;
    case MSG_LEAVE:
        return 1;
    case MSG_GOSSIP:
        return 1;
    default:
        return 0;
    }
}

int swim_msg_encode(msg_buf_t *buf, const swim_msg_t *msg, const swim_update_t *updates, size_t n)
{
    msg_buf_reset(buf);
    if (buf->limit == 0 || buf->limit > SWIM_MSG_MAX)
        buf->limit = SWIM_MSG_MAX;
    uint32_t body = s_body_fields(msg->type);
    if (body == 0)
        return shoal_fail(SHOAL_EINVAL, "swim: cannot encode message type %u", msg->type);
    size_t limit =
        msg->type == MSG_SYNC || msg->type == MSG_JOIN ? SWIM_SYNC_MAX : SWIM_UPDATES_MAX;
    if (n > limit || msg->from_addr.len > 255 || msg->target_addr.len > 255)
        return shoal_fail(SHOAL_EINVAL, "swim: message too large to encode");
    for (size_t i = 0; i < n; i++)
        if (!s_update_ok(&updates[i]))
            return shoal_fail(SHOAL_EINVAL, "swim: record %zu has an overlong field", i);

    /* version 1 (or 0, unset) travels as no field: the exact form of builds before versions */
    bool placement_field =
        (msg->type == MSG_SYNC || msg->type == MSG_JOIN) && msg->placement > HRW_PLACEMENT_LEGACY;
    mp_write_array(buf, 4 + body + (placement_field ? 1 : 0));
    mp_write_uint(buf, SWIM_PROTO_VERSION);
    mp_write_uint(buf, msg->type);
    s_write_id(buf, msg->from_id);
    s_write_str(buf, msg->from_addr);
    switch (msg->type) {
    case MSG_PING:
        mp_write_uint(buf, msg->seq);
        s_write_id(buf, msg->target_id);
        break;
    case MSG_PING_REQ:
        mp_write_uint(buf, msg->seq);
        s_write_id(buf, msg->target_id);
        s_write_str(buf, msg->target_addr);
        break;
    case MSG_ACK:
    case MSG_NACK:
        mp_write_uint(buf, msg->seq);
        break;
    case MSG_SYNC:
        mp_write_uint(buf, msg->sync_kind);
        mp_write_uint(buf, msg->page_size);
        mp_write_uint(buf, msg->range_pages);
        break;
    case MSG_JOIN:
        mp_write_uint(buf, msg->page_size);
        mp_write_uint(buf, msg->range_pages);
        break;
    default:
        break;
    }
    mp_write_array(buf, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        s_write_update(buf, &updates[i]);
    if (placement_field)
        mp_write_uint(buf, msg->placement);
    return buf->err;
}

/* ---------------------------------------------------------------------------------------
 * Decoding, on proto/'s bounded reader. Each helper returns false on a wrong type, a value
 * out of range or a truncation; the message is then refused whole.
 * ------------------------------------------------------------------------------------- */

/* Reads a str of at most `max` bytes with no NUL in it. */
static bool s_read_str(mp_reader_t *rd, uint32_t max, swim_str_t *out)
{
    const char *data;
    uint32_t len;
    if (mp_read_str(rd, &data, &len) || len > max)
        return false;
    out->ptr = data;
    out->len = len;
    /* Endpoints and names become C strings: an embedded NUL would silently cut them. */
    return memchr(data, 0, len) == NULL;
}

static bool s_read_id(mp_reader_t *rd, uint8_t id[16])
{
    const uint8_t *data;
    uint32_t len;
    if (mp_read_bin(rd, &data, &len) || len != 16)
        return false;
    memcpy(id, data, 16);
    return true;
}

static bool s_read_uint(mp_reader_t *rd, uint64_t max, uint64_t *out)
{
    return mp_read_uint(rd, out) == 0 && *out <= max;
}

static bool s_read_u32(mp_reader_t *rd, uint32_t max, uint32_t *out)
{
    uint64_t v;
    if (!s_read_uint(rd, max, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Reads one record; `field` names the field that failed, for the error message. */
static bool s_read_update(mp_reader_t *rd, swim_update_t *u, const char **field)
{
    uint32_t count;
    uint64_t state;
    memset(u, 0, sizeof *u);
    if ((*field = "record", mp_read_array(rd, &count) ||
                                (count != SWIM_RECORD_FIELDS && count != SWIM_RECORD_FIELDS_V1)) ||
        (*field = "id", !s_read_id(rd, u->id)) ||
        (*field = "name", !s_read_str(rd, 63, &u->name)) ||
        (*field = "gossip_ep", !s_read_str(rd, 255, &u->gossip_ep)) ||
        (*field = "data_ep", !s_read_str(rd, 255, &u->data_ep)) ||
        (*field = "incarnation", !s_read_uint(rd, UINT64_MAX, &u->incarnation)) ||
        (*field = "state", !s_read_uint(rd, 3, &state)) ||
        (*field = "weight", !s_read_uint(rd, UINT64_MAX, &u->weight)))
        return false;
    u->state = (uint8_t)state;
    *field = "suspecter";
    if (mp_peek(rd) == MP_NIL) {
        if (mp_read_nil(rd) != 0)
            return false;
    } else {
        u->has_suspecter = true;
        if (!s_read_id(rd, u->suspecter))
            return false;
    }
    u->host_id.ptr = u->local_socket.ptr = "";
    if (count == SWIM_RECORD_FIELDS_V1)
        return true; /* a build before host ids: both "" */
    return (*field = "host_id", s_read_str(rd, SWIM_HOST_ID_MAX, &u->host_id)) &&
           (*field = "local_socket", s_read_str(rd, SWIM_SOCKET_MAX, &u->local_socket));
}

int swim_msg_decode(swim_msg_t *msg, const uint8_t *bytes, size_t len)
{
    mp_reader_t rd;
    uint32_t count, body;
    uint64_t version, type;
    const char *field = "message";
    memset(msg, 0, sizeof *msg);
    if (len > SWIM_MSG_MAX)
        return shoal_fail(SHOAL_EPROTO, "swim: message of %zu bytes is too large", len);
    mp_reader_init(&rd, bytes, len);
    if (mp_read_array(&rd, &count))
        goto bad;
    field = "version";
    if (count < 4 || mp_read_uint(&rd, &version) || version != SWIM_PROTO_VERSION)
        goto bad;
    field = "type";
    if (mp_read_uint(&rd, &type) || (body = s_body_fields(type)) == 0)
        goto bad;
    msg->type = (uint32_t)type;
    field = "field count";
    /* SYNC and JOIN may end with the placement version; without it they come from a build
     * before placement versions: version 1 */
    bool placement_field = (type == MSG_SYNC || type == MSG_JOIN) && count == 5 + body;
    if (count != 4 + body && !placement_field)
        goto bad;
    msg->placement = HRW_PLACEMENT_LEGACY;
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
        if (!s_read_uint(&rd, UINT64_MAX, &msg->seq))
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
        if (!s_read_u32(&rd, SWIM_SYNC_REFUSED, &msg->sync_kind))
            goto bad;
        /* fall through */
    case MSG_JOIN:
        field = "page_size";
        if (!s_read_u32(&rd, UINT32_MAX, &msg->page_size))
            goto bad;
        field = "range_pages";
        if (!s_read_u32(&rd, UINT32_MAX, &msg->range_pages))
            goto bad;
        break;
    default:
        break;
    }
    field = "updates";
    if (mp_read_array(&rd, &msg->n_updates))
        goto bad;
    uint32_t limit = type == MSG_SYNC || type == MSG_JOIN ? SWIM_SYNC_MAX : SWIM_UPDATES_MAX;
    if (msg->n_updates > limit || msg->n_updates > mp_reader_left(&rd) / SWIM_RECORD_MIN)
        goto bad;
    msg->records = rd;
    for (uint32_t i = 0; i < msg->n_updates; i++) {
        swim_update_t update;
        if (!s_read_update(&rd, &update, &field))
            goto bad;
    }
    field = "placement";
    if (placement_field && (!s_read_u32(&rd, UINT32_MAX, &msg->placement) || msg->placement == 0))
        goto bad;
    field = "trailing bytes";
    if (mp_reader_left(&rd) != 0)
        goto bad;
    return 0;
bad:
    memset(&msg->records, 0, sizeof msg->records);
    return shoal_fail(SHOAL_EPROTO, "swim: malformed message: bad %s", field);
}

int swim_msg_next_update(swim_msg_t *msg, swim_update_t *update)
{
    const char *field;
    if (mp_reader_left(&msg->records) == 0)
        return 0;
    if (!s_read_update(&msg->records, update, &field))
        return 0; /* cannot happen after swim_msg_decode */
    return 1;
}
