/*
 * swim_fake.c - the fake network: a binary heap of messages in flight ordered by delivery
 * time, nodes that wake at swim_next_deadline(), and a seeded PRNG for loss and jitter.
 */
#include "swim_fake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "shoal_err.h"
#include "vec.h"

typedef struct s_msg {
    uint64_t at;    /* delivery time */
    uint64_t order; /* tie-break: send order, so runs are deterministic */
    uint32_t from;  /* sending node */
    uint32_t to;    /* receiving node */
    uint8_t *bytes; /* owned copy */
    size_t len;     /* bytes */
} s_msg_t;

typedef struct s_node {
    swim_fake_net_t *net; /* back pointer for the transport */
    uint32_t index;       /* own index */
    swim_t *swim;         /* the core (owned), NULL after removal */
    char addr[32];        /* "sim:<index>" */
    int up;               /* ticking and reachable */
    uint64_t wake;        /* next swim_tick time */
    double loss;          /* extra loss to or from this node */
    uint32_t slow_ms;     /* extra delay to or from this node */
    uint32_t group;       /* partition group */
    void (*user_event)(void *ctx, const swim_event_t *event); /* the caller's on_event */
    void *user_ctx;                                           /* its ctx */
} s_node_t;

typedef struct s_link {
    uint32_t from, to; /* directed link */
    double loss;       /* its loss */
} s_link_t;

struct swim_fake_net {
    uint64_t now;           /* virtual time */
    rng_t rng;              /* proto/rng.h xorshift64*: loss, delays */
    uint64_t order;         /* messages sent so far */
    uint64_t dropped;       /* messages dropped */
    double loss;            /* global loss */
    uint32_t delay_min;     /* min delay */
    uint32_t delay_max;     /* max delay */
    VEC(s_node_t *) nodes;  /* nodes (owned) */
    VEC(s_msg_t) heap;      /* messages in flight, min-heap by (at, order) */
    VEC(s_link_t) links;    /* per-link loss */
    swim_fake_hook_fn hook; /* event hook */
    void *hook_ctx;         /* its ctx */
};

static double s_rand01(swim_fake_net_t *net)
{
    return (double)(rng_next(&net->rng) >> 11) / 9007199254740992.0;
}

swim_fake_net_t *swim_fake_net_new(uint64_t seed, uint64_t start_ms)
{
    swim_fake_net_t *net = calloc(1, sizeof *net);
    if (net == NULL)
        return NULL;
    net->now = start_ms;
    rng_init(&net->rng, seed * 0x9e3779b97f4a7c15ULL + 1);
    net->delay_min = 1;
    net->delay_max = 1;
    return net;
}

void swim_fake_net_destroy(swim_fake_net_t **net_p)
{
    swim_fake_net_t *net = *net_p;
    if (net == NULL)
        return;
    for (size_t i = 0; i < net->nodes.len; i++) {
        swim_destroy(&net->nodes.items[i]->swim);
        free(net->nodes.items[i]);
    }
    for (size_t i = 0; i < net->heap.len; i++)
        free(net->heap.items[i].bytes);
    vec_fini(&net->nodes);
    vec_fini(&net->heap);
    vec_fini(&net->links);
    free(net);
    *net_p = NULL;
}

uint64_t swim_fake_now(const swim_fake_net_t *net)
{
    return net->now;
}

static uint64_t s_clock_now(void *ctx)
{
    return ((swim_fake_net_t *)ctx)->now;
}

swim_clock_t swim_fake_clock(swim_fake_net_t *net)
{
    swim_clock_t clock = {s_clock_now, net};
    return clock;
}

/* ---- heap ---- */

static int s_less(const s_msg_t *a, const s_msg_t *b)
{
    return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static int s_heap_push(swim_fake_net_t *net, s_msg_t msg)
{
    if (vec_reserve(&net->heap, 1) < 0)
        return SHOAL_ENOMEM;
    size_t i = net->heap.len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!s_less(&msg, &net->heap.items[parent]))
            break;
        net->heap.items[i] = net->heap.items[parent];
        i = parent;
    }
    net->heap.items[i] = msg;
    return 0;
}

static s_msg_t s_heap_pop(swim_fake_net_t *net)
{
    s_msg_t top = net->heap.items[0];
    s_msg_t last = net->heap.items[--net->heap.len];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= net->heap.len)
            break;
        if (child + 1 < net->heap.len &&
            s_less(&net->heap.items[child + 1], &net->heap.items[child]))
            child++;
        if (!s_less(&net->heap.items[child], &last))
            break;
        net->heap.items[i] = net->heap.items[child];
        i = child;
    }
    if (net->heap.len > 0)
        net->heap.items[i] = last;
    return top;
}

/* ---- transport ---- */

static int s_parse_addr(const swim_fake_net_t *net, const char *to, uint32_t *index)
{
    if (strncmp(to, "sim:", 4) != 0)
        return SHOAL_EINVAL;
    char *end;
    unsigned long v = strtoul(to + 4, &end, 10);
    if (*end != 0 || end == to + 4 || v >= net->nodes.len)
        return SHOAL_EINVAL;
    *index = (uint32_t)v;
    return 0;
}

static double s_link_loss(const swim_fake_net_t *net, uint32_t from, uint32_t to)
{
    double loss = 0;
    for (size_t i = 0; i < net->links.len; i++)
        if (net->links.items[i].from == from && net->links.items[i].to == to)
            loss += net->links.items[i].loss;
    return loss;
}

static int s_send(void *ctx, const char *to, const uint8_t *bytes, size_t len)
{
    s_node_t *src = ctx;
    swim_fake_net_t *net = src->net;
    uint32_t dst_index;
    if (s_parse_addr(net, to, &dst_index) != 0) {
        net->dropped++;
        return 0; /* like UDP to nowhere */
    }
    s_node_t *dst = net->nodes.items[dst_index];
    double loss = net->loss + src->loss + dst->loss;
    if (net->links.len > 0)
        loss += s_link_loss(net, src->index, dst_index);
    if (!src->up || !dst->up || src->group != dst->group || (loss > 0 && s_rand01(net) < loss)) {
        net->dropped++;
        return 0;
    }
    uint32_t span = net->delay_max > net->delay_min ? net->delay_max - net->delay_min : 0;
    uint64_t delay = net->delay_min + (span ? rng_next(&net->rng) % (span + 1) : 0) + src->slow_ms +
                     dst->slow_ms;
    s_msg_t msg = {net->now + (delay ? delay : 1), net->order++, src->index, dst_index,
                   malloc(len ? len : 1),          len};
    if (msg.bytes == NULL)
        return SHOAL_ENOMEM;
    memcpy(msg.bytes, bytes, len);
    if (s_heap_push(net, msg) != 0) {
        free(msg.bytes);
        return SHOAL_ENOMEM;
    }
    return 0;
}

static void s_on_event(void *ctx, const swim_event_t *event)
{
    s_node_t *node = ctx;
    if (node->user_event)
        node->user_event(node->user_ctx, event);
    if (node->net->hook)
        node->net->hook(node->net->hook_ctx, node->index, event);
}

/* ---- nodes ---- */

int swim_fake_add(swim_fake_net_t *net, const swim_opts_t *opts)
{
    if (vec_reserve(&net->nodes, 1) < 0)
        return SHOAL_ENOMEM;
    s_node_t *node = calloc(1, sizeof *node);
    if (node == NULL)
        return SHOAL_ENOMEM;
    node->net = net;
    node->index = (uint32_t)net->nodes.len;
    node->up = 1;
    snprintf(node->addr, sizeof node->addr, "sim:%u", node->index);
    node->user_event = opts->on_event;
    node->user_ctx = opts->event_ctx;
    swim_opts_t o = *opts;
    o.gossip_ep = node->addr;
    o.transport.send = s_send;
    o.transport.ctx = node;
    o.on_event = s_on_event;
    o.event_ctx = node;
    net->nodes.items[net->nodes.len++] = node; /* visible to s_send before swim_new returns */
    node->swim = swim_new(&o, net->now);
    if (node->swim == NULL) {
        net->nodes.len--;
        free(node);
        return SHOAL_ENOMEM;
    }
    node->wake = net->now;
    return (int)node->index;
}

swim_t *swim_fake_swim(swim_fake_net_t *net, size_t node)
{
    return node < net->nodes.len ? net->nodes.items[node]->swim : NULL;
}

const char *swim_fake_addr(const swim_fake_net_t *net, size_t node)
{
    return net->nodes.items[node]->addr;
}

size_t swim_fake_count(const swim_fake_net_t *net)
{
    return net->nodes.len;
}

void swim_fake_crash(swim_fake_net_t *net, size_t node)
{
    net->nodes.items[node]->up = 0;
}

int swim_fake_is_up(const swim_fake_net_t *net, size_t node)
{
    return net->nodes.items[node]->up;
}

void swim_fake_remove(swim_fake_net_t *net, size_t node)
{
    net->nodes.items[node]->up = 0;
    swim_destroy(&net->nodes.items[node]->swim);
}

void swim_fake_set_loss(swim_fake_net_t *net, double loss)
{
    net->loss = loss;
}

void swim_fake_set_delay(swim_fake_net_t *net, uint32_t min_ms, uint32_t max_ms)
{
    net->delay_min = min_ms;
    net->delay_max = max_ms < min_ms ? min_ms : max_ms;
}

void swim_fake_set_node_loss(swim_fake_net_t *net, size_t node, double loss)
{
    net->nodes.items[node]->loss = loss;
}

int swim_fake_set_link_loss(swim_fake_net_t *net, size_t from, size_t to, double loss)
{
    return vec_push(&net->links, ((s_link_t){(uint32_t)from, (uint32_t)to, loss}));
}

void swim_fake_clear_link_loss(swim_fake_net_t *net)
{
    vec_fini(&net->links);
}

void swim_fake_set_slow(swim_fake_net_t *net, size_t node, uint32_t extra_ms)
{
    net->nodes.items[node]->slow_ms = extra_ms;
}

void swim_fake_set_group(swim_fake_net_t *net, size_t node, uint32_t group)
{
    net->nodes.items[node]->group = group;
}

void swim_fake_set_hook(swim_fake_net_t *net, swim_fake_hook_fn hook, void *ctx)
{
    net->hook = hook;
    net->hook_ctx = ctx;
}

uint64_t swim_fake_dropped(const swim_fake_net_t *net)
{
    return net->dropped;
}

/* ---- the event loop ---- */

/* After a receive a deadline that is already due is ticked in the same instant; after a tick
 * it moves on by at least 1 ms, so the loop never spins at one instant. */
static void s_rewake(s_node_t *node, uint64_t now, int after_tick)
{
    uint64_t wake = swim_next_deadline(node->swim);
    uint64_t floor = after_tick ? now + 1 : now;
    node->wake = wake > floor ? wake : floor;
}

/*
 * Each step finds the earliest pending thing (a delivery or a node's deadline), moves the
 * clock there, and does everything due at that instant. Finding the earliest node deadline
 * is a scan over the nodes: O(N) per step but only a compare each, which keeps the wake time
 * exact without a second heap.
 */
void swim_fake_run_until(swim_fake_net_t *net, uint64_t until_ms)
{
    for (;;) {
        uint64_t next = UINT64_MAX;
        if (net->heap.len > 0)
            next = net->heap.items[0].at;
        for (size_t i = 0; i < net->nodes.len; i++) {
            s_node_t *node = net->nodes.items[i];
            if (node->up && node->wake < next)
                next = node->wake;
        }
        if (next > until_ms)
            break;
        if (next > net->now)
            net->now = next;
        while (net->heap.len > 0 && net->heap.items[0].at <= net->now) {
            s_msg_t msg = s_heap_pop(net);
            s_node_t *dst = net->nodes.items[msg.to];
            if (dst->up && dst->swim && dst->group == net->nodes.items[msg.from]->group) {
                swim_receive(dst->swim, net->now, net->nodes.items[msg.from]->addr, msg.bytes,
                             msg.len);
                s_rewake(dst, net->now, 0);
            } else {
                net->dropped++;
            }
            free(msg.bytes);
        }
        for (size_t i = 0; i < net->nodes.len; i++) {
            s_node_t *node = net->nodes.items[i];
            if (node->up && node->swim && node->wake <= net->now) {
                swim_tick(node->swim, net->now);
                s_rewake(node, net->now, 1);
            }
        }
    }
    if (until_ms > net->now)
        net->now = until_ms;
}

void swim_fake_run(swim_fake_net_t *net, uint64_t duration_ms)
{
    swim_fake_run_until(net, net->now + duration_ms);
}
