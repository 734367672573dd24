/*
 * swim_fake.h - an in-process network and a virtual clock for the SWIM core: the fake side
 * of the transport and clock seams, linked by the tests and the simulator.
 *
 * Nodes are SWIM cores addressed "sim:<index>". Messages are queued with a delivery time
 * (base delay + jitter + per-node slowness) and dropped by global, per-node or per-link loss,
 * by partitions (nodes in different groups cannot talk) and by crashes. Time only moves in
 * swim_fake_run(), so every run with the same seed is identical. Single-threaded.
 */
#ifndef SHOAL_SWIM_FAKE_H
#define SHOAL_SWIM_FAKE_H

#include <stddef.h>
#include <stdint.h>

#include "swim.h"
#include "swim_ev.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct swim_fake_net swim_fake_net_t;

/* Called for every event of every node (borrowed; must not call back into the net). */
typedef void (*swim_fake_hook_fn)(void *ctx, size_t node, const swim_event_t *event);

/* Creates an empty network at virtual time `start_ms`. Caller owns the result (NULL if out
 * of memory). */
swim_fake_net_t *swim_fake_net_new(uint64_t seed, uint64_t start_ms);
/* Destroys every node and queued message; sets *net_p to NULL. Safe on NULL. */
void swim_fake_net_destroy(swim_fake_net_t **net_p);

/* Virtual time now. */
uint64_t swim_fake_now(const swim_fake_net_t *net);
/* The clock seam over the virtual time (valid while net lives). */
swim_clock_t swim_fake_clock(swim_fake_net_t *net);

/* Adds a node. `opts` is copied with gossip_ep replaced by "sim:<index>" and the transport
 * replaced by the fake one; on_event is kept and also fed to the hook. Returns the node
 * index (>= 0) or a negative SHOAL_E* code. */
int swim_fake_add(swim_fake_net_t *net, const swim_opts_t *opts);
/* The node's core (borrowed; NULL after swim_fake_remove). */
swim_t *swim_fake_swim(swim_fake_net_t *net, size_t node);
/* The node's gossip endpoint "sim:<index>" (borrowed). */
const char *swim_fake_addr(const swim_fake_net_t *net, size_t node);
/* Number of nodes ever added. */
size_t swim_fake_count(const swim_fake_net_t *net);

/* Crashes a node: it stops ticking and everything to or from it is dropped. Its core stays
 * for inspection until swim_fake_remove. */
void swim_fake_crash(swim_fake_net_t *net, size_t node);
/* Is the node running? */
int swim_fake_is_up(const swim_fake_net_t *net, size_t node);
/* Destroys a node's core (crashing it first). */
void swim_fake_remove(swim_fake_net_t *net, size_t node);

/* Global loss probability (0..1) and delay range of every message. */
void swim_fake_set_loss(swim_fake_net_t *net, double loss);
void swim_fake_set_delay(swim_fake_net_t *net, uint32_t min_ms, uint32_t max_ms);
/* Extra loss for everything to or from one node. */
void swim_fake_set_node_loss(swim_fake_net_t *net, size_t node, double loss);
/* Loss of the directed link from -> to (overrides nothing: adds to the others). Returns 0 or
 * SHOAL_ENOMEM. */
int swim_fake_set_link_loss(swim_fake_net_t *net, size_t from, size_t to, double loss);
/* Removes every per-link loss. */
void swim_fake_clear_link_loss(swim_fake_net_t *net);
/* A slow member: everything it sends or receives is delayed by extra_ms more. */
void swim_fake_set_slow(swim_fake_net_t *net, size_t node, uint32_t extra_ms);
/* Partition group: nodes in different groups cannot exchange messages. All start in 0. */
void swim_fake_set_group(swim_fake_net_t *net, size_t node, uint32_t group);

/* Sets a hook that sees every event of every node. */
void swim_fake_set_hook(swim_fake_net_t *net, swim_fake_hook_fn hook, void *ctx);

/* Runs the network until virtual time `until_ms`: delivers messages and ticks nodes in time
 * order. */
void swim_fake_run_until(swim_fake_net_t *net, uint64_t until_ms);
/* Runs for `duration_ms` more. */
void swim_fake_run(swim_fake_net_t *net, uint64_t duration_ms);

/* Messages dropped by loss, partitions or crashes so far. */
uint64_t swim_fake_dropped(const swim_fake_net_t *net);

#ifdef __cplusplus
}
#endif
#endif
