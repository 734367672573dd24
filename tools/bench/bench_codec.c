/*
 * bench_codec.c - which msgpack writer shoal uses: our mp_write_* into msg_buf_t against
 * msgpack-c's packer writing into the same msg_buf_t through a write callback, on the two
 * messages that matter: a READ reply header (the data path, once per reply) and a gossip SYNC
 * (the largest gossip message, once per push-pull). Both writers emit the same values in the
 * same order; the bytes are checked equal before timing. Prints ns per message of each and
 * the median per-round ratio msgpack-c / ours (> 1: ours is faster). See proto/README.md.
 *
 *   bench_codec [--rounds N] [--members N]
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "mp.h"
#include "proto.h"

/* ---- the values of the two messages ---- */

typedef struct bench_member {
    uint8_t id[16];       /* member id */
    char name[16];        /* "node-17" */
    char gossip_ep[40];   /* "tcp://10.0.3.17:7947" */
    char data_ep[40];     /* "tcp://10.0.3.17:7946" */
    uint64_t incarnation; /* a few */
    uint64_t weight;      /* about 1 TiB */
    bool suspect;         /* has a suspecter */
} bench_member_t;

static const char s_version[] = "\"0x8DC2A6F1B3E4D5C\""; /* an Azure ETag, as READ carries */

/* ---- (a) ours ---- */

static void s_ours_read_reply(msg_buf_t *buf, uint64_t request_id)
{
    msg_buf_reset(buf);
    mp_write_array(buf, 6);
    mp_write_uint(buf, MSG_PROTO_VERSION);
    mp_write_uint(buf, MSG_READ_REP);
    mp_write_uint(buf, request_id);
    mp_write_uint(buf, 42);
    mp_write_uint(buf, 16);
    mp_write_map(buf, 6);
    mp_write_uint(buf, 1);
    mp_write_uint(buf, 1ull << 34);
    mp_write_uint(buf, 2);
    mp_write_str(buf, s_version, sizeof s_version - 1);
    mp_write_uint(buf, 3);
    mp_write_uint(buf, 16ull << 20);
    mp_write_uint(buf, 4);
    mp_write_uint(buf, 16ull << 20);
    mp_write_uint(buf, 5);
    mp_write_uint(buf, 16);
    mp_write_uint(buf, 6);
    mp_write_uint(buf, 1u << 20);
}

static void s_ours_sync(msg_buf_t *buf, const bench_member_t *m, size_t n)
{
    static const uint8_t from[16] = {7};
    msg_buf_reset(buf);
    mp_write_array(buf, 8);
    mp_write_uint(buf, 1);
    mp_write_uint(buf, MSG_SYNC);
    mp_write_bin(buf, from, 16);
    mp_write_cstr(buf, "tcp://10.0.3.1:7947");
    mp_write_uint(buf, 1);
    mp_write_uint(buf, 1u << 20);
    mp_write_uint(buf, 64);
    mp_write_array(buf, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        mp_write_array(buf, 8);
        mp_write_bin(buf, m[i].id, 16);
        mp_write_cstr(buf, m[i].name);
        mp_write_cstr(buf, m[i].gossip_ep);
        mp_write_cstr(buf, m[i].data_ep);
        mp_write_uint(buf, m[i].incarnation);
        mp_write_uint(buf, m[i].suspect ? 1 : 0);
        mp_write_uint(buf, m[i].weight);
        if (m[i].suspect)
            mp_write_bin(buf, from, 16);
        else
            mp_write_nil(buf);
    }
}

/* ---- (b) msgpack-c's packer into msg_buf_t ---- */

static int s_write_cb(void *data, const char *bytes, size_t len)
{
    msg_buf_t *buf = data;
    msg_buf_append(buf, bytes, len);
    return buf->err ? -1 : 0;
}

static void s_pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t len = strlen(s);
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

static void s_pack_bin16(msgpack_packer *pk, const uint8_t *id)
{
    msgpack_pack_bin(pk, 16);
    msgpack_pack_bin_body(pk, id, 16);
}

static void s_mpc_read_reply(msg_buf_t *buf, uint64_t request_id)
{
    msgpack_packer pk;
    msg_buf_reset(buf);
    msgpack_packer_init(&pk, buf, s_write_cb);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint64(&pk, MSG_PROTO_VERSION);
    msgpack_pack_uint64(&pk, MSG_READ_REP);
    msgpack_pack_uint64(&pk, request_id);
    msgpack_pack_uint64(&pk, 42);
    msgpack_pack_uint64(&pk, 16);
    msgpack_pack_map(&pk, 6);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 1ull << 34);
    msgpack_pack_uint64(&pk, 2);
    msgpack_pack_str(&pk, sizeof s_version - 1);
    msgpack_pack_str_body(&pk, s_version, sizeof s_version - 1);
    msgpack_pack_uint64(&pk, 3);
    msgpack_pack_uint64(&pk, 16ull << 20);
    msgpack_pack_uint64(&pk, 4);
    msgpack_pack_uint64(&pk, 16ull << 20);
    msgpack_pack_uint64(&pk, 5);
    msgpack_pack_uint64(&pk, 16);
    msgpack_pack_uint64(&pk, 6);
    msgpack_pack_uint64(&pk, 1u << 20);
}

static void s_mpc_sync(msg_buf_t *buf, const bench_member_t *m, size_t n)
{
    static const uint8_t from[16] = {7};
    msgpack_packer pk;
    msg_buf_reset(buf);
    msgpack_packer_init(&pk, buf, s_write_cb);
    msgpack_pack_array(&pk, 8);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, MSG_SYNC);
    s_pack_bin16(&pk, from);
    s_pack_cstr(&pk, "tcp://10.0.3.1:7947");
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 1u << 20);
    msgpack_pack_uint64(&pk, 64);
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_array(&pk, 8);
        s_pack_bin16(&pk, m[i].id);
        s_pack_cstr(&pk, m[i].name);
        s_pack_cstr(&pk, m[i].gossip_ep);
        s_pack_cstr(&pk, m[i].data_ep);
        msgpack_pack_uint64(&pk, m[i].incarnation);
        msgpack_pack_uint64(&pk, m[i].suspect ? 1 : 0);
        msgpack_pack_uint64(&pk, m[i].weight);
        if (m[i].suspect)
            s_pack_bin16(&pk, from);
        else
            msgpack_pack_nil(&pk);
    }
}

/* ---- timing ---- */

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, s_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static volatile size_t s_sink; /* keeps the encodings from being optimised away */

/* ns per encoding of `iters` READ reply headers (which: 0 ours, 1 msgpack-c). */
static double s_time_read(msg_buf_t *buf, int which, long iters)
{
    double t0 = (double)clock_mono_ns() / CLOCK_NS_PER_S;
    for (long i = 0; i < iters; i++) {
        if (which == 0)
            s_ours_read_reply(buf, 1000000 + (uint64_t)i);
        else
            s_mpc_read_reply(buf, 1000000 + (uint64_t)i);
        s_sink += buf->len;
    }
    return ((double)clock_mono_ns() / CLOCK_NS_PER_S - t0) * 1e9 / (double)iters;
}

static double s_time_sync(msg_buf_t *buf, int which, long iters, const bench_member_t *m, size_t n)
{
    double t0 = (double)clock_mono_ns() / CLOCK_NS_PER_S;
    for (long i = 0; i < iters; i++) {
        if (which == 0)
            s_ours_sync(buf, m, n);
        else
            s_mpc_sync(buf, m, n);
        s_sink += buf->len;
    }
    return ((double)clock_mono_ns() / CLOCK_NS_PER_S - t0) * 1e9 / (double)iters;
}

static int s_same(msg_buf_t *a, msg_buf_t *b, const char *what)
{
    if (a->err || b->err || a->len != b->len || memcmp(a->data, b->data, a->len) != 0) {
        fprintf(stderr, "bench_codec: %s: the two writers disagree (%zu vs %zu bytes)\n", what,
                a->len, b->len);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rounds = 9;
    size_t members = 256;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0)
            rounds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--members") == 0)
            members = (size_t)atol(argv[i + 1]);
    }
    if (rounds < 1 || rounds > 99 || members < 1 || members > 65536) {
        fprintf(stderr, "usage: bench_codec [--rounds 1..99] [--members 1..65536]\n");
        return 2;
    }
    bench_member_t *m = calloc(members, sizeof *m);
    if (!m)
        return 1;
    for (size_t i = 0; i < members; i++) {
        m[i].id[0] = (uint8_t)i;
        m[i].id[1] = (uint8_t)(i >> 8);
        snprintf(m[i].name, sizeof m[i].name, "node-%zu", i);
        snprintf(m[i].gossip_ep, sizeof m[i].gossip_ep, "tcp://10.0.%zu.%zu:7947", i / 250,
                 i % 250);
        snprintf(m[i].data_ep, sizeof m[i].data_ep, "tcp://10.0.%zu.%zu:7946", i / 250, i % 250);
        m[i].incarnation = 3 + i % 5;
        m[i].weight = (1ull << 40) + i;
        m[i].suspect = i % 16 == 0;
    }
    msg_buf_t a, b;
    msg_buf_init(&a);
    msg_buf_init(&b);
    s_ours_read_reply(&a, 7);
    s_mpc_read_reply(&b, 7);
    int bad = s_same(&a, &b, "READ reply header");
    s_ours_sync(&a, m, members);
    s_mpc_sync(&b, m, members);
    bad |= s_same(&a, &b, "SYNC");
    if (bad)
        return 1;
    size_t sync_bytes = a.len;
    s_ours_read_reply(&a, 7);
    size_t read_bytes = a.len;

    long read_iters = 2000000, sync_iters = (long)(4000000 / members) + 1;
    double read_ns[2][99], sync_ns[2][99], read_ratio[99], sync_ratio[99];
    for (int r = 0; r < rounds; r++) {
        int first = r % 2; /* alternate which writer goes first */
        for (int k = 0; k < 2; k++) {
            int w = k ^ first;
            read_ns[w][r] = s_time_read(w ? &b : &a, w, read_iters);
        }
        for (int k = 0; k < 2; k++) {
            int w = k ^ first;
            sync_ns[w][r] = s_time_sync(w ? &b : &a, w, sync_iters, m, members);
        }
        read_ratio[r] = read_ns[1][r] / read_ns[0][r];
        sync_ratio[r] = sync_ns[1][r] / sync_ns[0][r];
    }
    printf("bench_codec: %d rounds, medians; ratio = msgpack-c / ours (> 1: ours faster)\n",
           rounds);
    printf("%-28s %10s %14s %10s\n", "message", "ours ns", "msgpack-c ns", "ratio");
    char what[64];
    snprintf(what, sizeof what, "READ reply header (%zu B)", read_bytes);
    printf("%-28s %10.1f %14.1f %10.2f\n", what, s_median(read_ns[0], rounds),
           s_median(read_ns[1], rounds), s_median(read_ratio, rounds));
    snprintf(what, sizeof what, "SYNC %zu members (%zu B)", members, sync_bytes);
    printf("%-28s %10.1f %14.1f %10.2f\n", what, s_median(sync_ns[0], rounds),
           s_median(sync_ns[1], rounds), s_median(sync_ratio, rounds));
    msg_buf_fini(&a);
    msg_buf_fini(&b);
    free(m);
    return 0;
}
