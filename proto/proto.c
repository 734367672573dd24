/*
 * proto.c - the v1 message codec: header envelope, body maps, limits. Bodies are described by
 * field tables (key, name, kind, bounds, offset in the body struct) so that encoding,
 * validation, decoding and comparison all follow one description of the format in proto.h.
 */
#include "proto.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* arena: the memory of a decoded message                                                    */
/* ---------------------------------------------------------------------------------------- */

/* A chunk of decoded strings and arrays. Chunks form a list headed by msg_t.arena; the data
 * follows the chunk header. Invariant: used <= cap. */
struct msg_arena {
    struct msg_arena *next; /* older chunk, or NULL */
    size_t used;            /* bytes handed out */
    size_t cap;             /* bytes after the header */
};

#define S_ARENA_HEADER ((sizeof(struct msg_arena) + 15) & ~(size_t)15)
#define S_CHUNK_MIN    ((size_t)16 * 1024)

static const char s_empty[] = "";

/* Hands out `size` bytes aligned to 8 from the message's arena, adding a chunk when the head
 * is full. The first chunk of a decode is sized from the frame length (`hint`): every string
 * copy plus its NUL fits in the bytes that encoded it, so messages made only of scalars and
 * strings (READ, STAT, ...) cost exactly one allocation. Returns NULL when out of memory. */
static void *s_arena_alloc(msg_t *m, size_t size, size_t hint)
{
    size = (size + 7) & ~(size_t)7;
    struct msg_arena *head = m->arena;
    if (!head || head->cap - head->used < size) {
        size_t cap = head ? S_CHUNK_MIN : hint;
        if (cap < size)
            cap = size;
        head = malloc(S_ARENA_HEADER + cap);
        if (!head)
            return NULL;
        head->next = m->arena;
        head->used = 0;
        head->cap = cap;
        m->arena = head;
    }
    void *p = (char *)head + S_ARENA_HEADER + head->used;
    head->used += size;
    assert(head->used <= head->cap);
    return p;
}

static void s_arena_free(struct msg_arena *arena)
{
    while (arena) {
        struct msg_arena *next = arena->next;
        free(arena);
        arena = next;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* field tables                                                                              */
/* ---------------------------------------------------------------------------------------- */

typedef enum s_kind {
    K_STR,    /* const char *, at most max bytes, no NUL inside */
    K_U64,    /* uint64_t in [min, max] */
    K_U32,    /* uint32_t in [min, max] */
    K_I64,    /* int64_t in [smin, smax] */
    K_I32,    /* int32_t in [smin, smax] */
    K_BOOL,   /* bool */
    K_ID,     /* uint8_t[MSG_NODE_ID_SIZE], as bin 16 */
    K_MAPS,   /* array (<= max) of maps described by elem_fields */
    K_CUSTOM, /* anything else: ops */
} s_kind_t;

/* Where an error happened, for the last error message: "VIEW_REP: members[3].state: ...". */
typedef struct s_ctx {
    const char *type_name; /* msg_type_name() of the message */
    const char *array;     /* name of the array being walked, or NULL */
    int64_t index;         /* element index inside it */
    int code;              /* SHOAL_EPROTO when decoding, SHOAL_EINVAL when encoding */
    msg_t *m;              /* decode target (owns the arena); NULL when encoding */
    size_t hint;           /* first arena chunk size */
    mp_reader_t reader;    /* decode input */
} s_ctx_t;

typedef struct s_field s_field_t;

/* Hooks of a K_CUSTOM field. `base` is the struct holding the field. */
typedef struct s_ops {
    int (*decode)(s_ctx_t *ctx, const s_field_t *field, void *base);
    int (*check)(s_ctx_t *ctx, const s_field_t *field, const void *base);
    void (*encode)(msg_buf_t *out, const s_field_t *field, const void *base);
    bool (*equal)(const s_field_t *field, const void *a, const void *b);
} s_ops_t;

/* One key of a body map. */
struct s_field {
    uint8_t key;                  /* wire key */
    const char *name;             /* for error messages */
    s_kind_t kind;                /* how the value is stored and sent */
    bool required;                /* missing -> SHOAL_EPROTO */
    size_t offset;                /* of the value (K_MAPS: of the array pointer) */
    size_t count_offset;          /* K_MAPS: of the uint32_t count */
    uint64_t min, max;            /* unsigned bounds; K_STR: max length; K_MAPS: max count */
    int64_t smin, smax;           /* signed bounds */
    uint64_t def;                 /* default of an unsigned field */
    const s_field_t *elem_fields; /* K_MAPS: fields of each element */
    size_t elem_field_count;      /* K_MAPS: entries in elem_fields */
    size_t elem_size;             /* K_MAPS: sizeof one element */
    const s_ops_t *ops;           /* K_CUSTOM */
};

#define F_STR(k, n, T, mem, req, maxlen)                                                           \
    {                                                                                              \
        .key = k, .name = n, .kind = K_STR, .required = req, .offset = offsetof(T, mem),           \
        .max = maxlen                                                                              \
    }
#define F_U64(k, n, T, mem, req, lo, hi, dflt)                                                     \
    {                                                                                              \
        .key = k, .name = n, .kind = K_U64, .required = req, .offset = offsetof(T, mem),           \
        .min = lo, .max = hi, .def = dflt                                                          \
    }
#define F_U32(k, n, T, mem, req, lo, hi, dflt)                                                     \
    {                                                                                              \
        .key = k, .name = n, .kind = K_U32, .required = req, .offset = offsetof(T, mem),           \
        .min = lo, .max = hi, .def = dflt                                                          \
    }
#define F_I64(k, n, T, mem, req, lo, hi)                                                           \
    {                                                                                              \
        .key = k, .name = n, .kind = K_I64, .required = req, .offset = offsetof(T, mem),           \
        .smin = lo, .smax = hi                                                                     \
    }
#define F_I32(k, n, T, mem, req, lo, hi)                                                           \
    {                                                                                              \
        .key = k, .name = n, .kind = K_I32, .required = req, .offset = offsetof(T, mem),           \
        .smin = lo, .smax = hi                                                                     \
    }
#define F_BOOL(k, n, T, mem, req)                                                                  \
    {                                                                                              \
        .key = k, .name = n, .kind = K_BOOL, .required = req, .offset = offsetof(T, mem)           \
    }
#define F_ID(k, n, T, mem, req)                                                                    \
    {                                                                                              \
        .key = k, .name = n, .kind = K_ID, .required = req, .offset = offsetof(T, mem)             \
    }
#define F_MAPS(k, n, T, mem, cnt, req, maxcount, E, efields)                                       \
    {                                                                                              \
        .key = k, .name = n, .kind = K_MAPS, .required = req, .offset = offsetof(T, mem),          \
        .count_offset = offsetof(T, cnt), .max = maxcount, .elem_fields = efields,                 \
        .elem_field_count = sizeof efields / sizeof efields[0], .elem_size = sizeof(E)             \
    }
#define F_CUSTOM(k, n, T, mem, req, maxcount, hooks)                                               \
    {                                                                                              \
        .key = k, .name = n, .kind = K_CUSTOM, .required = req, .offset = offsetof(T, mem),        \
        .max = maxcount, .ops = hooks                                                              \
    }

#define F_U64S(k, n, T, mem, cnt, req, maxcount, lo)                                               \
    {                                                                                              \
        .key = k, .name = n, .kind = K_CUSTOM, .required = req, .offset = offsetof(T, mem),        \
        .count_offset = offsetof(T, cnt), .max = maxcount, .min = lo, .ops = &s_u64s_ops           \
    }
#define F_SUMS(k, n, T, mem, cnt, req, maxcount)                                                   \
    {                                                                                              \
        .key = k, .name = n, .kind = K_CUSTOM, .required = req, .offset = offsetof(T, mem),        \
        .count_offset = offsetof(T, cnt), .max = maxcount, .ops = &s_sums_ops                      \
    }

#define S_FIELD(base, field, type)  ((type *)((char *)(base) + (field)->offset))
#define S_CFIELD(base, field, type) ((const type *)((const char *)(base) + (field)->offset))

/* Records a failure at `field` (may be NULL for the map itself) and returns ctx->code. */
__attribute__((format(printf, 3, 4))) static int s_bad(const s_ctx_t *ctx, const char *field,
                                                       const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    char where[128] = "";
    if (ctx->array)
        snprintf(where, sizeof where, "%s[%" PRId64 "]%s", ctx->array, ctx->index,
                 field ? "." : "");
    return shoal_fail(ctx->code, "%s: %s%s: %s", ctx->type_name, where, field ? field : "", reason);
}

/* ---- decoding ---- */

/* Copies a decoded string into the arena with its NUL. Refuses strings over `max` bytes and
 * strings with a NUL inside (a C consumer would see a shorter uri than was checked). */
static int s_decode_str(s_ctx_t *ctx, const char *name, uint64_t max, const char **out)
{
    const char *str;
    uint32_t len;
    if (mp_read_str(&ctx->reader, &str, &len))
        return s_bad(ctx, name, "expected a string");
    if (len > max)
        return s_bad(ctx, name, "too long (%" PRIu32 " > %" PRIu64 " bytes)", len, max);
    if (memchr(str, '\0', len))
        return s_bad(ctx, name, "contains a NUL byte");
    if (len == 0) {
        *out = s_empty;
        return 0;
    }
    char *copy = s_arena_alloc(ctx->m, (size_t)len + 1, ctx->hint);
    if (!copy)
        return shoal_fail(SHOAL_ENOMEM, "%s: out of memory", ctx->type_name);
    memcpy(copy, str, len);
    copy[len] = '\0';
    *out = copy;
    return 0;
}

static int s_decode_u64(s_ctx_t *ctx, const char *name, uint64_t min, uint64_t max, uint64_t *out)
{
    if (mp_read_uint(&ctx->reader, out))
        return s_bad(ctx, name, "expected an unsigned integer");
    if (*out < min || *out > max)
        return s_bad(ctx, name, "%" PRIu64 " out of range %" PRIu64 "..%" PRIu64, *out, min, max);
    return 0;
}

static int s_decode_map(s_ctx_t *ctx, const s_field_t *fields, size_t field_count, void *base);

/* Decodes one field's value into `base`. */
static int s_decode_field(s_ctx_t *ctx, const s_field_t *f, void *base)
{
    uint64_t u;
    int64_t s;
    int rc;
    switch (f->kind) {
    case K_STR:
        return s_decode_str(ctx, f->name, f->max, S_FIELD(base, f, const char *));
    case K_U64:
    case K_U32:
        if ((rc = s_decode_u64(ctx, f->name, f->min, f->max, &u)))
            return rc;
        if (f->kind == K_U64)
            *S_FIELD(base, f, uint64_t) = u;
        else
            *S_FIELD(base, f, uint32_t) = (uint32_t)u;
        return 0;
    case K_I64:
    case K_I32:
        if (mp_read_int(&ctx->reader, &s))
            return s_bad(ctx, f->name, "expected an integer");
        if (s < f->smin || s > f->smax)
            return s_bad(ctx, f->name, "%" PRId64 " out of range %" PRId64 "..%" PRId64, s, f->smin,
                         f->smax);
        if (f->kind == K_I64)
            *S_FIELD(base, f, int64_t) = s;
        else
            *S_FIELD(base, f, int32_t) = (int32_t)s;
        return 0;
    case K_BOOL:
        if (mp_read_bool(&ctx->reader, S_FIELD(base, f, bool)))
            return s_bad(ctx, f->name, "expected true or false");
        return 0;
    case K_ID: {
        const uint8_t *id;
        uint32_t len;
        if (mp_read_bin(&ctx->reader, &id, &len) || len != MSG_NODE_ID_SIZE)
            return s_bad(ctx, f->name, "expected bin %d", MSG_NODE_ID_SIZE);
        memcpy(S_FIELD(base, f, uint8_t), id, MSG_NODE_ID_SIZE);
        return 0;
    }
    case K_MAPS: {
        uint32_t count;
        if (mp_read_array(&ctx->reader, &count))
            return s_bad(ctx, f->name, "expected an array");
        if (count > f->max)
            return s_bad(ctx, f->name, "too many elements (%" PRIu32 " > %" PRIu64 ")", count,
                         f->max);
        char *elems = NULL;
        if (count) {
            elems = s_arena_alloc(ctx->m, (size_t)count * f->elem_size, ctx->hint);
            if (!elems)
                return shoal_fail(SHOAL_ENOMEM, "%s: out of memory", ctx->type_name);
            memset(elems, 0, (size_t)count * f->elem_size);
        }
        ctx->array = f->name;
        for (uint32_t i = 0; i < count; i++) {
            ctx->index = i;
            rc = s_decode_map(ctx, f->elem_fields, f->elem_field_count,
                              elems + (size_t)i * f->elem_size);
            if (rc)
                return rc;
        }
        ctx->array = NULL;
        *S_FIELD(base, f, const void *) = elems;
        *(uint32_t *)((char *)base + f->count_offset) = count;
        return 0;
    }
    case K_CUSTOM:
        return f->ops->decode(ctx, f, base);
    }
    return s_bad(ctx, f->name, "bad field table");
}

/* Decodes a body map described by `fields` into `base` (zeroed by the caller). Defaults are
 * set first; each known key is decoded once (a second time is refused, so a value cannot be
 * checked and then replaced); unknown keys are skipped; then every required field must have
 * been seen. Tables have at most 64 fields (one bit each in `seen`). */
static int s_decode_map(s_ctx_t *ctx, const s_field_t *fields, size_t field_count, void *base)
{
    assert(field_count <= 64);
    uint32_t count;
    if (mp_read_map(&ctx->reader, &count))
        return s_bad(ctx, NULL, "expected a map");
    for (size_t j = 0; j < field_count; j++) {
        const s_field_t *f = &fields[j];
        if (f->kind == K_STR)
            *S_FIELD(base, f, const char *) = s_empty;
        else if (f->kind == K_U64)
            *S_FIELD(base, f, uint64_t) = f->def;
        else if (f->kind == K_U32)
            *S_FIELD(base, f, uint32_t) = (uint32_t)f->def;
    }
    uint64_t seen = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t key;
        if (mp_read_uint(&ctx->reader, &key))
            return s_bad(ctx, NULL, "map key %" PRIu32 " is not an unsigned integer", i);
        size_t j = 0;
        while (j < field_count && fields[j].key != key)
            j++;
        if (j == field_count) {
            if (mp_skip(&ctx->reader))
                return s_bad(ctx, NULL, "malformed value of unknown key %" PRIu64, key);
            continue;
        }
        if (seen & ((uint64_t)1 << j))
            return s_bad(ctx, fields[j].name, "appears twice");
        seen |= (uint64_t)1 << j;
        int rc = s_decode_field(ctx, &fields[j], base);
        if (rc)
            return rc;
    }
    for (size_t j = 0; j < field_count; j++)
        if (fields[j].required && !(seen & ((uint64_t)1 << j)))
            return s_bad(ctx, fields[j].name, "missing");
    return 0;
}

/* ---- validation before encoding ---- */

static int s_check_str(s_ctx_t *ctx, const char *name, const char *str, uint64_t max)
{
    if (str && strnlen(str, max + 1) > max)
        return s_bad(ctx, name, "too long (> %" PRIu64 " bytes)", max);
    return 0;
}

static int s_check_map(s_ctx_t *ctx, const s_field_t *fields, size_t field_count, const void *base)
{
    for (size_t j = 0; j < field_count; j++) {
        const s_field_t *f = &fields[j];
        uint64_t u;
        int64_t s;
        int rc;
        switch (f->kind) {
        case K_STR:
            if ((rc = s_check_str(ctx, f->name, *S_CFIELD(base, f, char *), f->max)))
                return rc;
            break;
        case K_U64:
        case K_U32:
            u = f->kind == K_U64 ? *S_CFIELD(base, f, uint64_t) : *S_CFIELD(base, f, uint32_t);
            if (u < f->min || u > f->max)
                return s_bad(ctx, f->name, "%" PRIu64 " out of range %" PRIu64 "..%" PRIu64, u,
                             f->min, f->max);
            break;
        case K_I64:
        case K_I32:
            s = f->kind == K_I64 ? *S_CFIELD(base, f, int64_t) : *S_CFIELD(base, f, int32_t);
            if (s < f->smin || s > f->smax)
                return s_bad(ctx, f->name, "%" PRId64 " out of range %" PRId64 "..%" PRId64, s,
                             f->smin, f->smax);
            break;
        case K_BOOL:
        case K_ID:
            break;
        case K_MAPS: {
            uint32_t count = *(const uint32_t *)((const char *)base + f->count_offset);
            const char *elems = *S_CFIELD(base, f, void *);
            if (count > f->max)
                return s_bad(ctx, f->name, "too many elements (%" PRIu32 " > %" PRIu64 ")", count,
                             f->max);
            if (count && !elems)
                return s_bad(ctx, f->name, "NULL array with %" PRIu32 " elements", count);
            ctx->array = f->name;
            for (uint32_t i = 0; i < count; i++) {
                ctx->index = i;
                rc = s_check_map(ctx, f->elem_fields, f->elem_field_count,
                                 elems + (size_t)i * f->elem_size);
                if (rc)
                    return rc;
            }
            ctx->array = NULL;
            break;
        }
        case K_CUSTOM:
            if ((rc = f->ops->check(ctx, f, base)))
                return rc;
            break;
        }
    }
    return 0;
}

/* ---- encoding (after validation) ---- */

static void s_encode_map(msg_buf_t *out, const s_field_t *fields, size_t field_count,
                         const void *base)
{
    mp_write_map(out, (uint32_t)field_count);
    for (size_t j = 0; j < field_count; j++) {
        const s_field_t *f = &fields[j];
        mp_write_uint(out, f->key);
        switch (f->kind) {
        case K_STR:
            mp_write_cstr(out, *S_CFIELD(base, f, char *));
            break;
        case K_U64:
            mp_write_uint(out, *S_CFIELD(base, f, uint64_t));
            break;
        case K_U32:
            mp_write_uint(out, *S_CFIELD(base, f, uint32_t));
            break;
        case K_I64:
            mp_write_int(out, *S_CFIELD(base, f, int64_t));
            break;
        case K_I32:
            mp_write_int(out, *S_CFIELD(base, f, int32_t));
            break;
        case K_BOOL:
            mp_write_bool(out, *S_CFIELD(base, f, bool));
            break;
        case K_ID:
            mp_write_bin(out, S_CFIELD(base, f, uint8_t), MSG_NODE_ID_SIZE);
            break;
        case K_MAPS: {
            uint32_t count = *(const uint32_t *)((const char *)base + f->count_offset);
            const char *elems = *S_CFIELD(base, f, void *);
            mp_write_array(out, count);
            for (uint32_t i = 0; i < count; i++)
                s_encode_map(out, f->elem_fields, f->elem_field_count,
                             elems + (size_t)i * f->elem_size);
            break;
        }
        case K_CUSTOM:
            f->ops->encode(out, f, base);
            break;
        }
    }
}

/* ---- comparison ---- */

static bool s_str_equal(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static bool s_map_equal(const s_field_t *fields, size_t field_count, const void *a, const void *b)
{
    for (size_t j = 0; j < field_count; j++) {
        const s_field_t *f = &fields[j];
        switch (f->kind) {
        case K_STR:
            if (!s_str_equal(*S_CFIELD(a, f, char *), *S_CFIELD(b, f, char *)))
                return false;
            break;
        case K_U64:
        case K_I64:
            if (*S_CFIELD(a, f, uint64_t) != *S_CFIELD(b, f, uint64_t))
                return false;
            break;
        case K_U32:
        case K_I32:
            if (*S_CFIELD(a, f, uint32_t) != *S_CFIELD(b, f, uint32_t))
                return false;
            break;
        case K_BOOL:
            if (*S_CFIELD(a, f, bool) != *S_CFIELD(b, f, bool))
                return false;
            break;
        case K_ID:
            if (memcmp(S_CFIELD(a, f, uint8_t), S_CFIELD(b, f, uint8_t), MSG_NODE_ID_SIZE))
                return false;
            break;
        case K_MAPS: {
            uint32_t count = *(const uint32_t *)((const char *)a + f->count_offset);
            if (count != *(const uint32_t *)((const char *)b + f->count_offset))
                return false;
            const char *ea = *S_CFIELD(a, f, void *);
            const char *eb = *S_CFIELD(b, f, void *);
            for (uint32_t i = 0; i < count; i++)
                if (!s_map_equal(f->elem_fields, f->elem_field_count, ea + (size_t)i * f->elem_size,
                                 eb + (size_t)i * f->elem_size))
                    return false;
            break;
        }
        case K_CUSTOM:
            if (!f->ops->equal(f, a, b))
                return false;
            break;
        }
    }
    return true;
}

/* ---------------------------------------------------------------------------------------- */
/* STATS reply: counters [[name, value], ...] and histograms [[name, bounds, counts], ...]   */
/* ---------------------------------------------------------------------------------------- */

/* Reads the header of a tuple (array) of at least `min_len` elements; returns its length. */
static int s_decode_tuple(s_ctx_t *ctx, const char *what, uint32_t min_len, uint32_t *len)
{
    if (mp_read_array(&ctx->reader, len) || *len < min_len)
        return s_bad(ctx, NULL, "expected %s", what);
    return 0;
}

/* Skips elements a later version may append to a tuple. */
static int s_skip_rest(s_ctx_t *ctx, uint32_t len, uint32_t used)
{
    for (uint32_t i = used; i < len; i++)
        if (mp_skip(&ctx->reader))
            return s_bad(ctx, NULL, "malformed extra element");
    return 0;
}

/* Reads the array header of custom field `f` (at most f->max elements) and allocates room for
 * its elements of `elem_size` bytes in the message's arena (*elems_out NULL when empty); sets
 * ctx->array for the element errors. */
static int s_decode_elems(s_ctx_t *ctx, const s_field_t *f, size_t elem_size, uint32_t *count_out,
                          void **elems_out)
{
    uint32_t count;
    if (mp_read_array(&ctx->reader, &count))
        return s_bad(ctx, f->name, "expected an array");
    if (count > f->max)
        return s_bad(ctx, f->name, "too many elements (%" PRIu32 " > %" PRIu64 ")", count, f->max);
    void *elems = NULL;
    if (count && !(elems = s_arena_alloc(ctx->m, count * elem_size, ctx->hint)))
        return shoal_fail(SHOAL_ENOMEM, "%s: out of memory", ctx->type_name);
    ctx->array = f->name;
    *count_out = count;
    *elems_out = elems;
    return 0;
}

static int s_counters_decode(s_ctx_t *ctx, const s_field_t *f, void *base)
{
    msg_stats_reply_t *reply = base;
    uint32_t count;
    void *elems;
    int rc0 = s_decode_elems(ctx, f, sizeof(msg_counter_t), &count, &elems);
    if (rc0)
        return rc0;
    msg_counter_t *counters = elems;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len;
        int rc;
        ctx->index = i;
        if ((rc = s_decode_tuple(ctx, "[name, value]", 2, &len)) ||
            (rc = s_decode_str(ctx, "name", MSG_STAT_NAME_MAX, &counters[i].name)) ||
            (rc = s_decode_u64(ctx, "value", 0, UINT64_MAX, &counters[i].value)) ||
            (rc = s_skip_rest(ctx, len, 2)))
            return rc;
    }
    ctx->array = NULL;
    reply->counters = counters;
    reply->counter_count = count;
    return 0;
}

/* Decodes an array of at most MSG_BUCKETS_MAX uints into the arena. */
static int s_decode_u64_array(s_ctx_t *ctx, const char *name, const uint64_t **out, uint32_t *count)
{
    if (mp_read_array(&ctx->reader, count))
        return s_bad(ctx, name, "expected an array");
    if (*count > MSG_BUCKETS_MAX)
        return s_bad(ctx, name, "too many buckets (%" PRIu32 " > %d)", *count, MSG_BUCKETS_MAX);
    uint64_t *values = NULL;
    if (*count && !(values = s_arena_alloc(ctx->m, *count * sizeof *values, ctx->hint)))
        return shoal_fail(SHOAL_ENOMEM, "%s: out of memory", ctx->type_name);
    for (uint32_t i = 0; i < *count; i++) {
        int rc = s_decode_u64(ctx, name, 0, UINT64_MAX, &values[i]);
        if (rc)
            return rc;
    }
    *out = values;
    return 0;
}

/* Checks what a histogram promises: equal lengths, bounds strictly increasing. */
static int s_histogram_check(s_ctx_t *ctx, const msg_histogram_t *h)
{
    if (h->bucket_count > MSG_BUCKETS_MAX)
        return s_bad(ctx, "bounds", "too many buckets (%" PRIu32 " > %d)", h->bucket_count,
                     MSG_BUCKETS_MAX);
    if (h->bucket_count && (!h->bounds || !h->counts))
        return s_bad(ctx, "bounds", "NULL arrays");
    for (uint32_t b = 1; b < h->bucket_count; b++)
        if (h->bounds[b] <= h->bounds[b - 1])
            return s_bad(ctx, "bounds", "not strictly increasing at %" PRIu32, b);
    return 0;
}

static int s_histograms_decode(s_ctx_t *ctx, const s_field_t *f, void *base)
{
    msg_stats_reply_t *reply = base;
    uint32_t count;
    void *elems;
    int rc0 = s_decode_elems(ctx, f, sizeof(msg_histogram_t), &count, &elems);
    if (rc0)
        return rc0;
    msg_histogram_t *hists = elems;
    for (uint32_t i = 0; i < count; i++) {
        msg_histogram_t *h = &hists[i];
        uint32_t len, counts_len;
        int rc;
        ctx->index = i;
        if ((rc = s_decode_tuple(ctx, "[name, bounds, counts]", 3, &len)) ||
            (rc = s_decode_str(ctx, "name", MSG_STAT_NAME_MAX, &h->name)) ||
            (rc = s_decode_u64_array(ctx, "bounds", &h->bounds, &h->bucket_count)) ||
            (rc = s_decode_u64_array(ctx, "counts", &h->counts, &counts_len)))
            return rc;
        if (counts_len != h->bucket_count)
            return s_bad(ctx, "counts", "%" PRIu32 " counts for %" PRIu32 " bounds", counts_len,
                         h->bucket_count);
        if ((rc = s_histogram_check(ctx, h)) || (rc = s_skip_rest(ctx, len, 3)))
            return rc;
    }
    ctx->array = NULL;
    reply->histograms = hists;
    reply->histogram_count = count;
    return 0;
}

static int s_counters_check(s_ctx_t *ctx, const s_field_t *f, const void *base)
{
    const msg_stats_reply_t *reply = base;
    if (reply->counter_count > f->max)
        return s_bad(ctx, f->name, "too many elements (%" PRIu32 " > %" PRIu64 ")",
                     reply->counter_count, f->max);
    if (reply->counter_count && !reply->counters)
        return s_bad(ctx, f->name, "NULL array");
    ctx->array = f->name;
    for (uint32_t i = 0; i < reply->counter_count; i++) {
        ctx->index = i;
        int rc = s_check_str(ctx, "name", reply->counters[i].name, MSG_STAT_NAME_MAX);
        if (rc)
            return rc;
    }
    ctx->array = NULL;
    return 0;
}

static int s_histograms_check(s_ctx_t *ctx, const s_field_t *f, const void *base)
{
    const msg_stats_reply_t *reply = base;
    if (reply->histogram_count > f->max)
        return s_bad(ctx, f->name, "too many elements (%" PRIu32 " > %" PRIu64 ")",
                     reply->histogram_count, f->max);
    if (reply->histogram_count && !reply->histograms)
        return s_bad(ctx, f->name, "NULL array");
    ctx->array = f->name;
    for (uint32_t i = 0; i < reply->histogram_count; i++) {
        ctx->index = i;
        int rc;
        if ((rc = s_check_str(ctx, "name", reply->histograms[i].name, MSG_STAT_NAME_MAX)) ||
            (rc = s_histogram_check(ctx, &reply->histograms[i])))
            return rc;
    }
    ctx->array = NULL;
    return 0;
}

static void s_counters_encode(msg_buf_t *out, const s_field_t *f, const void *base)
{
    (void)f;
    const msg_stats_reply_t *reply = base;
    mp_write_array(out, reply->counter_count);
    for (uint32_t i = 0; i < reply->counter_count; i++) {
        mp_write_array(out, 2);
        mp_write_cstr(out, reply->counters[i].name);
        mp_write_uint(out, reply->counters[i].value);
    }
}

static void s_histograms_encode(msg_buf_t *out, const s_field_t *f, const void *base)
{
    (void)f;
    const msg_stats_reply_t *reply = base;
    mp_write_array(out, reply->histogram_count);
    for (uint32_t i = 0; i < reply->histogram_count; i++) {
        const msg_histogram_t *h = &reply->histograms[i];
        mp_write_array(out, 3);
        mp_write_cstr(out, h->name);
        mp_write_array(out, h->bucket_count);
        for (uint32_t b = 0; b < h->bucket_count; b++)
            mp_write_uint(out, h->bounds[b]);
        mp_write_array(out, h->bucket_count);
        for (uint32_t b = 0; b < h->bucket_count; b++)
            mp_write_uint(out, h->counts[b]);
    }
}

static bool s_counters_equal(const s_field_t *f, const void *a, const void *b)
{
    (void)f;
    const msg_stats_reply_t *ra = a, *rb = b;
    if (ra->counter_count != rb->counter_count)
        return false;
    for (uint32_t i = 0; i < ra->counter_count; i++)
        if (!s_str_equal(ra->counters[i].name, rb->counters[i].name) ||
            ra->counters[i].value != rb->counters[i].value)
            return false;
    return true;
}

static bool s_histograms_equal(const s_field_t *f, const void *a, const void *b)
{
    (void)f;
    const msg_stats_reply_t *ra = a, *rb = b;
    if (ra->histogram_count != rb->histogram_count)
        return false;
    for (uint32_t i = 0; i < ra->histogram_count; i++) {
        const msg_histogram_t *ha = &ra->histograms[i], *hb = &rb->histograms[i];
        if (!s_str_equal(ha->name, hb->name) || ha->bucket_count != hb->bucket_count)
            return false;
        for (uint32_t k = 0; k < ha->bucket_count; k++)
            if (ha->bounds[k] != hb->bounds[k] || ha->counts[k] != hb->counts[k])
                return false;
    }
    return true;
}

static const s_ops_t s_counters_ops = {s_counters_decode, s_counters_check, s_counters_encode,
                                       s_counters_equal};
static const s_ops_t s_histograms_ops = {s_histograms_decode, s_histograms_check,
                                         s_histograms_encode, s_histograms_equal};

/* ---------------------------------------------------------------------------------------- */
/* arrays of uints (LOCATE_REP fds, gone) and chunk sums (bin of 8-byte little-endian words)  */
/* ---------------------------------------------------------------------------------------- */

/* Both kinds keep a `const uint64_t *` at f->offset and its uint32_t count at f->count_offset;
 * f->max bounds the count, and (u64s) f->min the smallest element. */
#define S_COUNT(base, f)  (*(uint32_t *)((char *)(base) + (f)->count_offset))
#define S_CCOUNT(base, f) (*(const uint32_t *)((const char *)(base) + (f)->count_offset))

static int s_u64s_decode(s_ctx_t *ctx, const s_field_t *f, void *base)
{
    uint32_t count;
    if (mp_read_array(&ctx->reader, &count))
        return s_bad(ctx, f->name, "expected an array");
    if (count > f->max)
        return s_bad(ctx, f->name, "too many elements (%" PRIu32 " > %" PRIu64 ")", count, f->max);
    uint64_t *values = NULL;
    if (count && !(values = s_arena_alloc(ctx->m, count * sizeof *values, ctx->hint)))
        return shoal_fail(SHOAL_ENOMEM, "%s: out of memory", ctx->type_name);
    for (uint32_t i = 0; i < count; i++) {
        int rc = s_decode_u64(ctx, f->name, f->min, UINT64_MAX, &values[i]);
        if (rc)
            return rc;
    }
    *S_FIELD(base, f, const uint64_t *) = values;
    S_COUNT(base, f) = count;
    return 0;
}

static int s_u64s_check(s_ctx_t *ctx, const s_field_t *f, const void *base)
{
    uint32_t count = S_CCOUNT(base, f);
    const uint64_t *values = *S_CFIELD(base, f, uint64_t *);
    if (count > f->max)
        return s_bad(ctx, f->name, "too many elements (%" PRIu32 " > %" PRIu64 ")", count, f->max);
    if (count && !values)
        return s_bad(ctx, f->name, "NULL array with %" PRIu32 " elements", count);
    for (uint32_t i = 0; i < count; i++)
        if (values[i] < f->min)
            return s_bad(ctx, f->name, "element %" PRIu32 " is %" PRIu64 ", below %" PRIu64, i,
                         values[i], f->min);
    return 0;
}

static void s_u64s_encode(msg_buf_t *out, const s_field_t *f, const void *base)
{
    uint32_t count = S_CCOUNT(base, f);
    const uint64_t *values = *S_CFIELD(base, f, uint64_t *);
    mp_write_array(out, count);
    for (uint32_t i = 0; i < count; i++)
        mp_write_uint(out, values[i]);
}

static bool s_u64s_equal(const s_field_t *f, const void *a, const void *b)
{
    uint32_t count = S_CCOUNT(a, f);
    if (count != S_CCOUNT(b, f))
        return false;
    const uint64_t *va = *S_CFIELD(a, f, uint64_t *), *vb = *S_CFIELD(b, f, uint64_t *);
    return count == 0 || memcmp(va, vb, count * sizeof *va) == 0;
}

static int s_sums_decode(s_ctx_t *ctx, const s_field_t *f, void *base)
{
    const uint8_t *bytes;
    uint32_t len;
    if (mp_read_bin(&ctx->reader, &bytes, &len))
        return s_bad(ctx, f->name, "expected bin");
    if (len % 8)
        return s_bad(ctx, f->name, "%" PRIu32 " bytes, not a multiple of 8", len);
    uint32_t count = len / 8;
    if (count > f->max)
        return s_bad(ctx, f->name, "too many sums (%" PRIu32 " > %" PRIu64 ")", count, f->max);
    uint64_t *sums = NULL;
    if (count && !(sums = s_arena_alloc(ctx->m, count * sizeof *sums, ctx->hint)))
        return shoal_fail(SHOAL_ENOMEM, "%s: out of memory", ctx->type_name);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t v = 0;
        for (int b = 7; b >= 0; b--)
            v = v << 8 | bytes[8 * i + (uint32_t)b];
        sums[i] = v;
    }
    *S_FIELD(base, f, const uint64_t *) = sums;
    S_COUNT(base, f) = count;
    return 0;
}

static int s_sums_check(s_ctx_t *ctx, const s_field_t *f, const void *base)
{
    uint32_t count = S_CCOUNT(base, f);
    if (count > f->max)
        return s_bad(ctx, f->name, "too many sums (%" PRIu32 " > %" PRIu64 ")", count, f->max);
    if (count && !*S_CFIELD(base, f, uint64_t *))
        return s_bad(ctx, f->name, "NULL array with %" PRIu32 " sums", count);
    return 0;
}

/* Writes the bin header by hand (mp_write_bin wants the bytes in one piece) and then each sum
 * little-endian, so the wire bytes do not depend on the host's byte order. */
static void s_sums_encode(msg_buf_t *out, const s_field_t *f, const void *base)
{
    uint32_t count = S_CCOUNT(base, f);
    const uint64_t *sums = *S_CFIELD(base, f, uint64_t *);
    uint32_t len = count * 8;
    uint8_t head[5];
    size_t head_len;
    if (len <= UINT8_MAX) {
        head[0] = 0xc4, head[1] = (uint8_t)len, head_len = 2;
    } else if (len <= UINT16_MAX) {
        head[0] = 0xc5, head[1] = (uint8_t)(len >> 8), head[2] = (uint8_t)len, head_len = 3;
    } else {
        head[0] = 0xc6, head[1] = (uint8_t)(len >> 24), head[2] = (uint8_t)(len >> 16);
        head[3] = (uint8_t)(len >> 8), head[4] = (uint8_t)len, head_len = 5;
    }
    msg_buf_append(out, head, head_len);
    for (uint32_t i = 0; i < count; i++) {
        uint8_t word[8];
        for (int b = 0; b < 8; b++)
            word[b] = (uint8_t)(sums[i] >> (8 * b));
        msg_buf_append(out, word, sizeof word);
    }
}

static const s_ops_t s_u64s_ops = {s_u64s_decode, s_u64s_check, s_u64s_encode, s_u64s_equal};
static const s_ops_t s_sums_ops = {s_sums_decode, s_sums_check, s_sums_encode, s_u64s_equal};

/* ---------------------------------------------------------------------------------------- */
/* the tables (keep in step with the drawing in proto.h)                                     */
/* ---------------------------------------------------------------------------------------- */

#define REQ true
#define OPT false

static const s_field_t s_error_fields[] = {
    F_I32(1, "code", msg_error_t, code, REQ, INT32_MIN, -1),
    F_STR(2, "message", msg_error_t, message, OPT, MSG_MESSAGE_MAX),
};

static const s_field_t s_member_fields[] = {
    F_ID(1, "id", msg_member_t, id, REQ),
    F_STR(2, "name", msg_member_t, name, OPT, MSG_NAME_MAX),
    F_STR(3, "data_endpoint", msg_member_t, data_endpoint, REQ, MSG_ENDPOINT_MAX),
    F_STR(4, "gossip_endpoint", msg_member_t, gossip_endpoint, OPT, MSG_ENDPOINT_MAX),
    F_U32(5, "state", msg_member_t, state, REQ, 0, MSG_MEMBER_LEFT, 0),
    F_U64(6, "incarnation", msg_member_t, incarnation, OPT, 0, UINT64_MAX, 0),
    F_U64(7, "weight", msg_member_t, weight, OPT, 0, UINT64_MAX, 0),
    F_U64(8, "last_heard_ms", msg_member_t, last_heard_ms, OPT, 0, UINT64_MAX, 0),
    F_STR(9, "host_id", msg_member_t, host_id, OPT, MSG_HOST_ID_MAX),
    F_STR(10, "local_socket", msg_member_t, local_socket, OPT, MSG_LOCAL_SOCKET_MAX),
};

static const s_field_t s_view_reply_fields[] = {
    F_U64(1, "view_version", msg_view_reply_t, view_version, REQ, 0, UINT64_MAX, 0),
    F_U64(2, "page_size", msg_view_reply_t, page_size, REQ, 1, MSG_PAGE_SIZE_MAX, 0),
    F_U32(3, "range_pages", msg_view_reply_t, range_pages, REQ, 1, MSG_RANGE_PAGES_MAX, 0),
    F_MAPS(4, "members", msg_view_reply_t, members, member_count, REQ, MSG_MEMBERS_MAX,
           msg_member_t, s_member_fields),
    F_U32(5, "placement", msg_view_reply_t, placement, OPT, 1, UINT32_MAX, 1),
};

static const s_field_t s_stat_request_fields[] = {
    F_STR(1, "uri", msg_stat_request_t, uri, REQ, MSG_URI_MAX),
};

static const s_field_t s_stat_reply_fields[] = {
    F_U64(1, "size", msg_stat_reply_t, size, REQ, 0, UINT64_MAX, 0),
    F_I64(2, "mtime", msg_stat_reply_t, mtime, OPT, INT64_MIN, INT64_MAX),
    F_STR(3, "version", msg_stat_reply_t, version, OPT, MSG_VERSION_MAX),
    F_BOOL(4, "is_dir", msg_stat_reply_t, is_dir, OPT),
};

static const s_field_t s_list_request_fields[] = {
    F_STR(1, "uri", msg_list_request_t, uri, REQ, MSG_URI_MAX),
    F_BOOL(2, "recursive", msg_list_request_t, recursive, OPT),
    F_STR(3, "cursor", msg_list_request_t, cursor, OPT, MSG_CURSOR_MAX),
    F_U32(4, "max_entries", msg_list_request_t, max_entries, OPT, 0, MSG_LIST_ENTRIES_MAX, 0),
};

static const s_field_t s_entry_fields[] = {
    F_STR(1, "uri", msg_entry_t, uri, REQ, MSG_URI_MAX),
    F_U64(2, "size", msg_entry_t, size, OPT, 0, UINT64_MAX, 0),
    F_I64(3, "mtime", msg_entry_t, mtime, OPT, INT64_MIN, INT64_MAX),
    F_STR(4, "version", msg_entry_t, version, OPT, MSG_VERSION_MAX),
    F_BOOL(5, "is_dir", msg_entry_t, is_dir, OPT),
};

static const s_field_t s_list_reply_fields[] = {
    F_MAPS(1, "entries", msg_list_reply_t, entries, entry_count, REQ, MSG_LIST_ENTRIES_MAX,
           msg_entry_t, s_entry_fields),
    F_STR(2, "next_cursor", msg_list_reply_t, next_cursor, OPT, MSG_CURSOR_MAX),
};

/* flags: any value up to MSG_READ_FLAGS_ALL (bits 0 to 2) is a valid combination. */
static const s_field_t s_read_request_fields[] = {
    F_STR(1, "uri", msg_read_request_t, uri, REQ, MSG_URI_MAX),
    F_STR(2, "version", msg_read_request_t, version, OPT, MSG_VERSION_MAX),
    F_U64(3, "offset", msg_read_request_t, offset, REQ, 0, UINT64_MAX, 0),
    F_U64(4, "length", msg_read_request_t, length, REQ, 0, UINT64_MAX, 0),
    F_U32(5, "flags", msg_read_request_t, flags, OPT, 0, MSG_READ_FLAGS_ALL, 0),
    F_U64(6, "file_size", msg_read_request_t, file_size, OPT, 0, UINT64_MAX, MSG_SIZE_UNKNOWN),
};

static const s_field_t s_read_reply_fields[] = {
    F_U64(1, "file_size", msg_read_reply_t, file_size, REQ, 0, UINT64_MAX, 0),
    F_STR(2, "version", msg_read_reply_t, version, OPT, MSG_VERSION_MAX),
    F_U64(3, "offset", msg_read_reply_t, offset, REQ, 0, UINT64_MAX, 0),
    F_U64(4, "length", msg_read_reply_t, length, REQ, 0, UINT64_MAX, 0),
    F_U32(5, "page_count", msg_read_reply_t, page_count, REQ, 0, MSG_READ_PAGES_MAX, 0),
    F_U64(6, "page_size", msg_read_reply_t, page_size, REQ, 1, MSG_PAGE_SIZE_MAX, 0),
    F_BOOL(7, "more", msg_read_reply_t, more, OPT),
    F_I64(8, "mtime", msg_read_reply_t, mtime, OPT, INT64_MIN, INT64_MAX),
};

static const s_field_t s_load_request_fields[] = {
    F_STR(1, "uri", msg_load_request_t, uri, REQ, MSG_URI_MAX),
    F_STR(2, "version", msg_load_request_t, version, OPT, MSG_VERSION_MAX),
    F_U64(3, "offset", msg_load_request_t, offset, OPT, 0, UINT64_MAX, 0),
    F_U64(4, "length", msg_load_request_t, length, OPT, 0, UINT64_MAX, 0),
    F_U32(5, "replicas", msg_load_request_t, replicas, OPT, 1, MSG_REPLICAS_MAX, 1),
};

static const s_field_t s_load_reply_fields[] = {
    F_U64(1, "pages_loaded", msg_load_reply_t, pages_loaded, OPT, 0, UINT64_MAX, 0),
    F_U64(2, "bytes_loaded", msg_load_reply_t, bytes_loaded, OPT, 0, UINT64_MAX, 0),
    F_U64(3, "pages_cached", msg_load_reply_t, pages_cached, OPT, 0, UINT64_MAX, 0),
};

static const s_field_t s_evict_request_fields[] = {
    F_STR(1, "uri", msg_evict_request_t, uri, REQ, MSG_URI_MAX),
    F_BOOL(2, "recursive", msg_evict_request_t, recursive, OPT),
};

static const s_field_t s_evict_reply_fields[] = {
    F_U64(1, "pages_evicted", msg_evict_reply_t, pages_evicted, OPT, 0, UINT64_MAX, 0),
    F_U64(2, "bytes_evicted", msg_evict_reply_t, bytes_evicted, OPT, 0, UINT64_MAX, 0),
};

static const s_field_t s_stats_reply_fields[] = {
    F_CUSTOM(1, "counters", msg_stats_reply_t, counters, OPT, MSG_COUNTERS_MAX, &s_counters_ops),
    F_CUSTOM(2, "histograms", msg_stats_reply_t, histograms, OPT, MSG_HISTOGRAMS_MAX,
             &s_histograms_ops),
};

static const s_field_t s_local_hello_reply_fields[] = {
    F_ID(1, "node_id", msg_local_hello_reply_t, node_id, REQ),
    F_U64(2, "store_id", msg_local_hello_reply_t, store_id, REQ, 0, UINT64_MAX, 0),
    F_STR(3, "host_id", msg_local_hello_reply_t, host_id, OPT, MSG_HOST_ID_MAX),
    F_U64(4, "page_size", msg_local_hello_reply_t, page_size, REQ, 1, MSG_PAGE_SIZE_MAX, 0),
    F_U64(5, "lease_ms", msg_local_hello_reply_t, lease_ms, REQ, 1, MSG_LEASE_MS_MAX, 0),
};

static const s_field_t s_locate_request_fields[] = {
    F_STR(1, "uri", msg_locate_request_t, uri, REQ, MSG_URI_MAX),
    F_STR(2, "version", msg_locate_request_t, version, OPT, MSG_VERSION_MAX),
    F_U64(3, "offset", msg_locate_request_t, offset, REQ, 0, UINT64_MAX, 0),
    F_U64(4, "length", msg_locate_request_t, length, REQ, 0, MSG_LOCATE_LENGTH_MAX, 0),
    F_U64(5, "file_size", msg_locate_request_t, file_size, OPT, 0, UINT64_MAX, MSG_SIZE_UNKNOWN),
};

static const s_field_t s_local_page_fields[] = {
    F_U64(1, "index", msg_local_page_t, index, REQ, 0, UINT64_MAX, 0),
    F_U64(2, "gen", msg_local_page_t, gen, REQ, 1, UINT64_MAX, 0),
    F_U64(3, "offset", msg_local_page_t, offset, REQ, 0, UINT64_MAX, 0),
    F_U64(4, "size", msg_local_page_t, size, REQ, 1, MSG_PAGE_SIZE_MAX, 0),
    F_U32(5, "chunk_shift", msg_local_page_t, chunk_shift, REQ, MSG_CHUNK_SHIFT_MIN,
          MSG_CHUNK_SHIFT_MAX, 0),
    F_U64(6, "seed", msg_local_page_t, seed, REQ, 0, UINT64_MAX, 0),
    F_SUMS(7, "sums", msg_local_page_t, sums, sum_count, REQ, MSG_CHUNKS_MAX),
};

static const s_field_t s_locate_reply_fields[] = {
    F_U64(1, "file_size", msg_locate_reply_t, file_size, OPT, 0, UINT64_MAX, MSG_SIZE_UNKNOWN),
    F_STR(2, "version", msg_locate_reply_t, version, OPT, MSG_VERSION_MAX),
    F_I64(3, "mtime", msg_locate_reply_t, mtime, OPT, INT64_MIN, INT64_MAX),
    F_U64(4, "store_id", msg_locate_reply_t, store_id, REQ, 0, UINT64_MAX, 0),
    F_MAPS(5, "pages", msg_locate_reply_t, pages, page_count, OPT, MSG_LOCATE_PAGES_MAX,
           msg_local_page_t, s_local_page_fields),
    F_U64S(6, "fds", msg_locate_reply_t, fd_gens, fd_count, OPT, MSG_LOCATE_FDS_MAX, 1),
    F_U64S(7, "gone", msg_locate_reply_t, gone_gens, gone_count, OPT, MSG_LOCATE_GONE_MAX, 1),
};

/* Checks that involve more than one field, shared by encode and decode. */
static int s_check_read_request(s_ctx_t *ctx, const msg_t *m)
{
    const msg_read_request_t *r = &m->body.read_request;
    if (r->length > UINT64_MAX - r->offset)
        return s_bad(ctx, "length", "offset + length overflows");
    return 0;
}

static int s_check_read_reply(s_ctx_t *ctx, const msg_t *m)
{
    const msg_read_reply_t *r = &m->body.read_reply;
    if (r->length > UINT64_MAX - r->offset)
        return s_bad(ctx, "length", "offset + length overflows");
    if (r->offset + r->length > r->file_size)
        return s_bad(ctx, "length", "span ends at %" PRIu64 ", past file_size %" PRIu64,
                     r->offset + r->length, r->file_size);
    uint32_t expect = msg_read_page_count(r->offset, r->length, r->page_size);
    if (r->page_count != expect)
        return s_bad(ctx, "page_count", "%" PRIu32 ", but the span has %" PRIu32 " pages",
                     r->page_count, expect);
    if (m->header.frames != r->page_count)
        return s_bad(ctx, "page_count", "%" PRIu32 ", but the header announces %" PRIu32 " frames",
                     r->page_count, m->header.frames);
    if (r->more && r->length == 0)
        return s_bad(ctx, "more", "a partial reply must carry bytes (length is 0)");
    return 0;
}

static int s_check_locate_request(s_ctx_t *ctx, const msg_t *m)
{
    const msg_locate_request_t *r = &m->body.locate_request;
    if (r->length > UINT64_MAX - r->offset)
        return s_bad(ctx, "length", "offset + length overflows");
    return 0;
}

/* True when `count` generations at `gens` hold a repeat (counts are at most 64: quadratic). */
static bool s_has_repeat(const uint64_t *gens, uint32_t count)
{
    for (uint32_t i = 1; i < count; i++)
        for (uint32_t j = 0; j < i; j++)
            if (gens[i] == gens[j])
                return true;
    return false;
}

/* Each page: its bytes fit in a file offset, its sums cover exactly its chunks, and indexes
 * strictly increase (so a client can walk pages and its span together). */
static int s_check_locate_reply(s_ctx_t *ctx, const msg_t *m)
{
    const msg_locate_reply_t *r = &m->body.locate_reply;
    int rc = 0;
    ctx->array = "pages";
    for (uint32_t i = 0; i < r->page_count && rc == 0; i++) {
        const msg_local_page_t *p = &r->pages[i];
        ctx->index = i;
        uint64_t chunks = (p->size + ((uint64_t)1 << p->chunk_shift) - 1) >> p->chunk_shift;
        if (p->size > UINT64_MAX - p->offset)
            rc = s_bad(ctx, "size", "offset + size overflows");
        else if (p->sum_count != chunks)
            rc =
                s_bad(ctx, "sums", "%" PRIu32 " sums for %" PRIu64 " chunks", p->sum_count, chunks);
        else if (i > 0 && p->index <= r->pages[i - 1].index)
            rc = s_bad(ctx, "index", "%" PRIu64 " after %" PRIu64 ": not increasing", p->index,
                       r->pages[i - 1].index);
    }
    ctx->array = NULL;
    if (rc)
        return rc;
    if (s_has_repeat(r->fd_gens, r->fd_count))
        return s_bad(ctx, "fds", "a generation appears twice");
    if (s_has_repeat(r->gone_gens, r->gone_count))
        return s_bad(ctx, "gone", "a generation appears twice");
    return 0;
}

/* One body type. */
typedef struct s_body {
    const s_field_t *fields;                    /* NULL for an empty body */
    size_t field_count;                         /* entries in fields */
    int (*check)(s_ctx_t *ctx, const msg_t *m); /* cross-field checks, or NULL */
    const char *name;                           /* msg_type_name() */
} s_body_t;

#define BODY(t, chk, n)                                                                            \
    {                                                                                              \
        t, sizeof t / sizeof t[0], chk, n                                                          \
    }

static const s_body_t s_bodies[MSG_TYPE_BODY_LAST + 1] = {
    [MSG_ERROR] = BODY(s_error_fields, NULL, "ERROR"),
    [MSG_VIEW_REQ] = {NULL, 0, NULL, "VIEW_REQ"},
    [MSG_VIEW_REP] = BODY(s_view_reply_fields, NULL, "VIEW_REP"),
    [MSG_STAT_REQ] = BODY(s_stat_request_fields, NULL, "STAT_REQ"),
    [MSG_STAT_REP] = BODY(s_stat_reply_fields, NULL, "STAT_REP"),
    [MSG_LIST_REQ] = BODY(s_list_request_fields, NULL, "LIST_REQ"),
    [MSG_LIST_REP] = BODY(s_list_reply_fields, NULL, "LIST_REP"),
    [MSG_READ_REQ] = BODY(s_read_request_fields, s_check_read_request, "READ_REQ"),
    [MSG_READ_REP] = BODY(s_read_reply_fields, s_check_read_reply, "READ_REP"),
    [MSG_LOAD_REQ] = BODY(s_load_request_fields, NULL, "LOAD_REQ"),
    [MSG_LOAD_REP] = BODY(s_load_reply_fields, NULL, "LOAD_REP"),
    [MSG_EVICT_REQ] = BODY(s_evict_request_fields, NULL, "EVICT_REQ"),
    [MSG_EVICT_REP] = BODY(s_evict_reply_fields, NULL, "EVICT_REP"),
    [MSG_STATS_REQ] = {NULL, 0, NULL, "STATS_REQ"},
    [MSG_STATS_REP] = BODY(s_stats_reply_fields, NULL, "STATS_REP"),
    [MSG_LOCAL_HELLO_REQ] = {NULL, 0, NULL, "LOCAL_HELLO_REQ"},
    [MSG_LOCAL_HELLO_REP] = BODY(s_local_hello_reply_fields, NULL, "LOCAL_HELLO_REP"),
    [MSG_LOCATE_REQ] = BODY(s_locate_request_fields, s_check_locate_request, "LOCATE_REQ"),
    [MSG_LOCATE_REP] = BODY(s_locate_reply_fields, s_check_locate_reply, "LOCATE_REP"),
};

static const char *const s_gossip_names[] = {
    [MSG_PING - MSG_GOSSIP_FIRST] = "PING",         [MSG_ACK - MSG_GOSSIP_FIRST] = "ACK",
    [MSG_PING_REQ - MSG_GOSSIP_FIRST] = "PING_REQ", [MSG_NACK - MSG_GOSSIP_FIRST] = "NACK",
    [MSG_SYNC - MSG_GOSSIP_FIRST] = "SYNC",         [MSG_JOIN - MSG_GOSSIP_FIRST] = "JOIN",
    [MSG_LEAVE - MSG_GOSSIP_FIRST] = "LEAVE",       [MSG_GOSSIP - MSG_GOSSIP_FIRST] = "GOSSIP"};

static bool s_is_gossip(uint32_t type)
{
    return type >= MSG_GOSSIP_FIRST && type <= MSG_GOSSIP_LAST;
}

static const s_body_t *s_body_of(uint32_t type)
{
    if (type > MSG_TYPE_BODY_LAST || !s_bodies[type].name)
        return NULL;
    return &s_bodies[type];
}

/* ---------------------------------------------------------------------------------------- */
/* public API                                                                                */
/* ---------------------------------------------------------------------------------------- */

const char *msg_type_name(uint32_t type)
{
    const s_body_t *body = s_body_of(type);
    if (body)
        return body->name;
    if (type >= MSG_GOSSIP_FIRST && type <= MSG_GOSSIP)
        return s_gossip_names[type - MSG_GOSSIP_FIRST];
    if (s_is_gossip(type))
        return "GOSSIP";
    return "UNKNOWN";
}

bool msg_type_is_request(uint32_t type)
{
    return type >= 2 && type <= MSG_TYPE_DATA_LAST && type % 2 == 0;
}

bool msg_type_is_local(uint32_t type)
{
    return type >= MSG_TYPE_LOCAL_FIRST && type <= MSG_TYPE_LOCAL_LAST;
}

bool msg_type_is_local_request(uint32_t type)
{
    return msg_type_is_local(type) && type % 2 == 0;
}

/* The largest header frame of `type`: local datagrams are bounded tighter than ZeroMQ frames. */
static size_t s_frame_max(uint32_t type)
{
    return msg_type_is_local(type) ? MSG_LOCAL_DATAGRAM_MAX : MSG_FRAME_MAX;
}

void msg_init(msg_t *m, msg_type_t type, uint64_t request_id, uint64_t view_version)
{
    memset(m, 0, sizeof *m);
    m->header.proto_version = MSG_PROTO_VERSION;
    m->header.type = (uint32_t)type;
    m->header.request_id = request_id;
    m->header.view_version = view_version;
    if (type == MSG_LOAD_REQ)
        m->body.load_request.replicas = 1;
    else if (type == MSG_LOCATE_REQ)
        m->body.locate_request.file_size = MSG_SIZE_UNKNOWN;
    else if (type == MSG_LOCATE_REP)
        m->body.locate_reply.file_size = MSG_SIZE_UNKNOWN;
}

void msg_fini(msg_t *m)
{
    s_arena_free(m->arena);
    memset(m, 0, sizeof *m);
}

void msg_read_request(msg_t *m, uint64_t request_id, uint64_t view_version, const char *uri,
                      const char *version, uint64_t offset, uint64_t length, uint32_t flags)
{
    msg_init(m, MSG_READ_REQ, request_id, view_version);
    m->body.read_request = (msg_read_request_t){.uri = uri,
                                                .version = version,
                                                .offset = offset,
                                                .length = length,
                                                .flags = flags,
                                                .file_size = MSG_SIZE_UNKNOWN};
}

void msg_read_reply(msg_t *m, uint64_t request_id, uint64_t view_version, uint64_t file_size,
                    const char *version, uint64_t offset, uint64_t length, uint32_t page_count,
                    uint64_t page_size)
{
    msg_init(m, MSG_READ_REP, request_id, view_version);
    m->header.frames = page_count;
    m->body.read_reply = (msg_read_reply_t){.file_size = file_size,
                                            .version = version,
                                            .offset = offset,
                                            .length = length,
                                            .page_count = page_count,
                                            .page_size = page_size};
}

void msg_error(msg_t *m, uint64_t request_id, uint64_t view_version, int code, const char *message)
{
    msg_init(m, MSG_ERROR, request_id, view_version);
    m->body.error = (msg_error_t){.code = code, .message = message};
}

uint32_t msg_read_page_count(uint64_t offset, uint64_t length, uint64_t page_size)
{
    if (length == 0 || page_size == 0)
        return 0;
    uint64_t last_byte = length - 1 > UINT64_MAX - offset ? UINT64_MAX : offset + length - 1;
    uint64_t pages = last_byte / page_size - offset / page_size + 1;
    return pages > UINT32_MAX ? UINT32_MAX : (uint32_t)pages;
}

uint64_t msg_read_frame_length(const msg_read_reply_t *reply, uint32_t index)
{
    if (index >= reply->page_count || reply->page_size == 0)
        return 0;
    uint64_t page = reply->offset / reply->page_size + index;
    if (page > UINT64_MAX / reply->page_size)
        return 0;
    uint64_t page_start = page * reply->page_size;
    uint64_t page_end =
        page_start > UINT64_MAX - reply->page_size ? UINT64_MAX : page_start + reply->page_size;
    uint64_t span_end =
        reply->length > UINT64_MAX - reply->offset ? UINT64_MAX : reply->offset + reply->length;
    uint64_t start = page_start > reply->offset ? page_start : reply->offset;
    uint64_t end = page_end < span_end ? page_end : span_end;
    return end > start ? end - start : 0;
}

int msg_read_check_frames(const msg_read_reply_t *reply, const size_t *frame_lengths,
                          size_t frame_count)
{
    if (frame_count != reply->page_count)
        return shoal_fail(SHOAL_EPROTO, "READ_REP: %zu raw frames, page_count says %" PRIu32,
                          frame_count, reply->page_count);
    for (size_t i = 0; i < frame_count; i++) {
        uint64_t expect = msg_read_frame_length(reply, (uint32_t)i);
        if (frame_lengths[i] != expect)
            return shoal_fail(SHOAL_EPROTO,
                              "READ_REP: raw frame %zu has %zu bytes, expected %" PRIu64, i,
                              frame_lengths[i], expect);
    }
    return 0;
}

size_t msg_entry_encoded_size_max(const msg_entry_t *entry)
{
    /* map(1) + 5 keys(5) + str headers(2*5) + size(9) + mtime(9) + bool(1) */
    return 35 + (entry->uri ? strlen(entry->uri) : 0) +
           (entry->version ? strlen(entry->version) : 0);
}

int msg_header_encode(const msg_header_t *header, msg_buf_t *out)
{
    msg_buf_reset(out);
    if (header->frames > MSG_READ_PAGES_MAX)
        return shoal_fail(SHOAL_EINVAL, "%s: %" PRIu32 " frames, at most %d",
                          msg_type_name(header->type), header->frames, MSG_READ_PAGES_MAX);
    mp_write_array(out, 6);
    mp_write_uint(out, MSG_PROTO_VERSION);
    mp_write_uint(out, header->type);
    mp_write_uint(out, header->request_id);
    mp_write_uint(out, header->view_version);
    mp_write_uint(out, header->frames);
    if (out->err)
        return shoal_fail(out->err, "%s: encoding the header: %s", msg_type_name(header->type),
                          shoal_strerror(out->err));
    return 0;
}

/* Checks that `len` bytes at `data` are exactly one msgpack value. */
static bool s_is_one_value(const uint8_t *data, size_t len)
{
    mp_reader_t reader;
    mp_reader_init(&reader, data, len);
    return mp_skip(&reader) == 0 && mp_reader_left(&reader) == 0;
}

/* Encoding validates first (so nothing a peer would refuse is ever sent), then writes the
 * envelope and the body in one pass over the tables. */
int msg_encode(const msg_t *m, msg_buf_t *out)
{
    uint32_t type = m->header.type;
    const s_body_t *body = s_body_of(type);
    s_ctx_t ctx = {.type_name = msg_type_name(type), .code = SHOAL_EINVAL};
    msg_buf_reset(out);
    if (!body && !s_is_gossip(type))
        return shoal_fail(SHOAL_EINVAL, "cannot encode unknown message type %" PRIu32, type);
    if (body) {
        if (type != MSG_READ_REP && m->header.frames != 0)
            return s_bad(&ctx, "frames", "%" PRIu32 " raw frames on a type that has none",
                         m->header.frames);
        int rc = s_check_map(&ctx, body->fields, body->field_count, &m->body);
        if (rc == 0 && body->check)
            rc = body->check(&ctx, m);
        if (rc)
            return rc;
    } else if (!m->body.raw.data || !s_is_one_value(m->body.raw.data, m->body.raw.len)) {
        return s_bad(&ctx, "body", "not exactly one msgpack value");
    }
    int rc = msg_header_encode(&m->header, out);
    if (rc)
        return rc;
    if (body)
        s_encode_map(out, body->fields, body->field_count, &m->body);
    else
        msg_buf_append(out, m->body.raw.data, m->body.raw.len);
    if (out->err)
        return shoal_fail(out->err, "%s: encoding: %s", ctx.type_name, shoal_strerror(out->err));
    if (out->len > s_frame_max(type))
        return shoal_fail(SHOAL_EMSGSIZE, "%s: %zu bytes, over the %zu-byte frame limit",
                          ctx.type_name, out->len, s_frame_max(type));
    return 0;
}

/* Reads the envelope. The version is read before anything else is required of the array, so
 * a peer speaking another version gets a clear "version" error rather than a shape error. */
int msg_header_decode(const void *data, size_t len, msg_header_t *header, msg_raw_body_t *body)
{
    memset(header, 0, sizeof *header);
    memset(body, 0, sizeof *body);
    if (len > MSG_FRAME_MAX)
        return shoal_fail(SHOAL_EMSGSIZE, "header frame of %zu bytes, over the %u-byte limit", len,
                          MSG_FRAME_MAX);
    mp_reader_t reader;
    mp_reader_init(&reader, data, len);
    uint32_t count;
    uint64_t version, type, request_id, view_version, frames;
    if (mp_read_array(&reader, &count) || count < 1)
        return shoal_fail(SHOAL_EPROTO, "header frame is not a msgpack array");
    if (mp_read_uint(&reader, &version))
        return shoal_fail(SHOAL_EPROTO, "header: protocol version is not an unsigned integer");
    if (version != MSG_PROTO_VERSION)
        return shoal_fail(SHOAL_EPROTO, "protocol version %" PRIu64 ", this node speaks %d",
                          version, MSG_PROTO_VERSION);
    if (count < 6)
        return shoal_fail(SHOAL_EPROTO, "header has %" PRIu32 " elements, need 6", count);
    if (mp_read_uint(&reader, &type) || type > UINT32_MAX)
        return shoal_fail(SHOAL_EPROTO, "header: bad message type");
    if (mp_read_uint(&reader, &request_id))
        return shoal_fail(SHOAL_EPROTO, "header: request_id is not an unsigned integer");
    if (mp_read_uint(&reader, &view_version))
        return shoal_fail(SHOAL_EPROTO, "header: view_version is not an unsigned integer");
    if (mp_read_uint(&reader, &frames) || frames > MSG_READ_PAGES_MAX)
        return shoal_fail(SHOAL_EPROTO, "header: frames is not an integer in 0..%d",
                          MSG_READ_PAGES_MAX);
    const uint8_t *body_start = reader.pos;
    if (mp_skip(&reader))
        return shoal_fail(SHOAL_EPROTO,
                          "header: body is malformed msgpack (or nested deeper "
                          "than %d)",
                          MP_DEPTH_MAX);
    const uint8_t *body_end = reader.pos;
    for (uint32_t i = 6; i < count; i++)
        if (mp_skip(&reader))
            return shoal_fail(SHOAL_EPROTO, "header: malformed extra element %" PRIu32, i);
    if (mp_reader_left(&reader))
        return shoal_fail(SHOAL_EPROTO, "header frame: %zu trailing bytes",
                          mp_reader_left(&reader));
    header->proto_version = MSG_PROTO_VERSION;
    header->type = (uint32_t)type;
    header->request_id = request_id;
    header->view_version = view_version;
    header->frames = (uint32_t)frames;
    body->data = body_start;
    body->len = (size_t)(body_end - body_start);
    return 0;
}

int msg_decode(const void *data, size_t len, msg_t *out)
{
    memset(out, 0, sizeof *out);
    msg_header_t header;
    msg_raw_body_t raw;
    int rc = msg_header_decode(data, len, &header, &raw);
    if (rc)
        return rc;
    const s_body_t *body = s_body_of(header.type);
    s_ctx_t ctx = {.type_name = msg_type_name(header.type),
                   .code = SHOAL_EPROTO,
                   .m = out,
                   .hint = 2 * raw.len + 256};
    if (len > s_frame_max(header.type)) /* a local datagram over its bound */
        return shoal_fail(SHOAL_EMSGSIZE, "%s: a %zu-byte frame, over the %zu-byte limit",
                          ctx.type_name, len, s_frame_max(header.type));
    out->header = header;
    if (body) {
        if (header.type != MSG_READ_REP && header.frames != 0)
            rc = s_bad(&ctx, "frames", "%" PRIu32 " raw frames on a type that has none",
                       header.frames);
        if (rc == 0) {
            mp_reader_init(&ctx.reader, raw.data, raw.len);
            rc = s_decode_map(&ctx, body->fields, body->field_count, &out->body);
        }
        /* the body is one value (checked by msg_header_decode) and s_decode_map read one */
        assert(rc || mp_reader_left(&ctx.reader) == 0);
        if (rc == 0 && body->check)
            rc = body->check(&ctx, out);
    } else if (s_is_gossip(header.type)) {
        uint8_t *copy = s_arena_alloc(out, raw.len, raw.len);
        if (!copy) {
            rc = shoal_fail(SHOAL_ENOMEM, "%s: out of memory", ctx.type_name);
        } else {
            memcpy(copy, raw.data, raw.len);
            out->body.raw = (msg_raw_body_t){copy, raw.len};
        }
    } else {
        rc = shoal_fail(SHOAL_EPROTO, "unknown message type %" PRIu32, header.type);
    }
    if (rc)
        msg_fini(out);
    return rc;
}

bool msg_equal(const msg_t *a, const msg_t *b)
{
    if (a->header.proto_version != b->header.proto_version || a->header.type != b->header.type ||
        a->header.request_id != b->header.request_id ||
        a->header.view_version != b->header.view_version || a->header.frames != b->header.frames)
        return false;
    const s_body_t *body = s_body_of(a->header.type);
    if (body)
        return s_map_equal(body->fields, body->field_count, &a->body, &b->body);
    if (s_is_gossip(a->header.type))
        return a->body.raw.len == b->body.raw.len &&
               (a->body.raw.len == 0 ||
                memcmp(a->body.raw.data, b->body.raw.data, a->body.raw.len) == 0);
    return true;
}
