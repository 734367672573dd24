/*
 * fuzz_swim.c - libFuzzer target for the gossip wire: the decoder (swim_msg_decode) on
 * arbitrary bytes, with a round-trip check of whatever it accepts, and then the same bytes fed
 * into a live SWIM core so that the handlers behind the decoder are fuzzed too. Every input
 * builds a fresh 4-member cluster on the fake network and virtual clock (swim_fake.h), so a
 * crash reproduces from its input alone. Members have ids {n, 0, ..., 0xee} for n = 1..4
 * and addresses "sim:0".."sim:3"; seeds from gen_seeds speak about them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal_err.h"
#include "swim.h"
#include "swim_fake.h"
#include "swim_proto.h"

#define FUZZ_MEMBERS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_die(const char *what)
{
    fprintf(stderr, "fuzz_swim: %s (last error: %s)\n", what, shoal_last_error());
    abort();
}

static bool s_str_eq(swim_str_t a, swim_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool s_update_eq(const swim_update_t *a, const swim_update_t *b)
{
    return memcmp(a->id, b->id, 16) == 0 && s_str_eq(a->name, b->name) &&
           s_str_eq(a->gossip_ep, b->gossip_ep) && s_str_eq(a->data_ep, b->data_ep) &&
           s_str_eq(a->host_id, b->host_id) && s_str_eq(a->local_socket, b->local_socket) &&
           a->incarnation == b->incarnation && a->state == b->state && a->weight == b->weight &&
           a->has_suspecter == b->has_suspecter &&
           (!a->has_suspecter || memcmp(a->suspecter, b->suspecter, 16) == 0);
}

static bool s_msg_eq(const swim_msg_t *a, const swim_msg_t *b)
{
    return a->type == b->type && memcmp(a->from_id, b->from_id, 16) == 0 &&
           s_str_eq(a->from_addr, b->from_addr) && a->seq == b->seq &&
           memcmp(a->target_id, b->target_id, 16) == 0 &&
           s_str_eq(a->target_addr, b->target_addr) && a->sync_kind == b->sync_kind &&
           a->page_size == b->page_size && a->range_pages == b->range_pages &&
           a->n_updates == b->n_updates;
}

/* Decodes; on success walks the records, re-encodes them, and checks that the re-encoding
 * decodes to the same message and records and re-encodes to the same bytes. */
static void s_check_codec(const uint8_t *data, size_t size)
{
    swim_msg_t m;
    int rc = swim_msg_decode(&m, data, size);
    if (rc != 0) {
        if (rc != SHOAL_EPROTO)
            s_die("decode failed with something other than SHOAL_EPROTO");
        return;
    }
    if (m.from_addr.ptr && (m.from_addr.ptr < (const char *)data ||
                            m.from_addr.ptr + m.from_addr.len > (const char *)data + size))
        s_die("from_addr outside the input");
    swim_update_t *u = malloc((m.n_updates ? m.n_updates : 1) * sizeof *u);
    if (!u)
        return;
    uint32_t n = 0;
    while (n < m.n_updates && swim_msg_next_update(&m, &u[n]) == 1)
        n++;
    swim_update_t extra;
    if (n != m.n_updates || swim_msg_next_update(&m, &extra) != 0)
        s_die("record walk disagrees with n_updates");
    msg_buf_t once, twice;
    msg_buf_init(&once);
    msg_buf_init(&twice);
    if (swim_msg_encode(&once, &m, u, n) != 0)
        s_die("a decoded message does not encode");
    swim_msg_t again;
    if (swim_msg_decode(&again, once.data, once.len) != 0)
        s_die("a re-encoded message does not decode");
    if (!s_msg_eq(&m, &again))
        s_die("round trip changed the message");
    for (uint32_t i = 0; i < n; i++) {
        swim_update_t v;
        if (swim_msg_next_update(&again, &v) != 1 || !s_update_eq(&u[i], &v))
            s_die("round trip changed a record");
    }
    if (swim_msg_encode(&twice, &again, u, n) != 0 || twice.len != once.len ||
        memcmp(twice.data, once.data, once.len) != 0)
        s_die("encoding is not stable");
    msg_buf_fini(&once);
    msg_buf_fini(&twice);
    free(u);
}

/* A 4-member cluster joined through member 0, run until the joins are answered. */
static swim_fake_net_t *s_cluster(void)
{
    swim_fake_net_t *net = swim_fake_net_new(7, 1000);
    if (!net)
        return NULL;
    for (int i = 0; i < FUZZ_MEMBERS; i++) {
        swim_opts_t o;
        swim_opts_default(&o);
        o.id[0] = (uint8_t)(i + 1);
        o.id[15] = 0xee;
        o.name = "node";
        o.data_ep = "tcp://127.0.0.1:9000";
        o.host_id = i % 2 ? "host-a" : "host-b";
        o.local_socket = i == 1 ? "/run/shoal/1.sock" : "";
        o.weight = 1000;
        o.page_size = 65536;
        o.range_pages = 16;
        if (swim_fake_add(net, &o) != i)
            s_die("swim_fake_add");
        if (i > 0) {
            const char *seeds[] = {"sim:0"};
            swim_join(swim_fake_swim(net, (size_t)i), seeds, 1, swim_fake_now(net));
        }
    }
    swim_fake_run(net, 1500);
    return net;
}

static void s_check_rc(int rc)
{
    if (rc > 0 || rc < SHOAL_ERR_MIN)
        s_die("swim_receive returned a code outside the error range");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_check_codec(data, size);
    swim_fake_net_t *net = s_cluster();
    if (!net)
        return 0;
    /* Member 0 hears it from member 1 (as the transport would say), then the cluster runs:
     * replies, probes, suspicion timers, dissemination. Member 2 hears it again later, from an
     * address nobody has. */
    swim_t *swim = swim_fake_swim(net, 0);
    s_check_rc(swim_receive(swim, swim_fake_now(net), "sim:1", data, size));
    swim_fake_run(net, 2000);
    swim = swim_fake_swim(net, 2);
    s_check_rc(swim_receive(swim, swim_fake_now(net), "sim:9", data, size));
    swim_fake_run(net, 3000);
    for (size_t i = 0; i < FUZZ_MEMBERS; i++) {
        swim = swim_fake_swim(net, i);
        if (swim_member_count(swim) < 1)
            s_die("a member lost itself");
        swim_member_info_t info;
        for (size_t k = 0; k < swim_member_count(swim); k++)
            swim_member_at(swim, k, &info);
        (void)swim_next_deadline(swim);
    }
    swim_fake_net_destroy(&net);
    return 0;
}
