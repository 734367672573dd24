/*
 * rng.h - the one small pseudo-random generator: xorshift64* (Vigna 2014), 64 bits of state,
 * fast, and deterministic from a seed so that the SWIM simulator replays exactly. Not for
 * secrets: keys, nonces and table seeds come from libsodium's randombytes.
 */
#ifndef SHOAL_PROTO_RNG_H
#define SHOAL_PROTO_RNG_H

#include <stdint.h>

#define RNG_ZERO_SEED 0x9e3779b97f4a7c15ull /* the state a seed of 0 maps to (state is never 0) */

/* One generator. Not thread safe: one per thread or per owner (the SWIM core, a fake network).
 * Invariant: state != 0 (xorshift stays at 0 forever). */
typedef struct rng {
    uint64_t state; /* xorshift64* state, never 0 */
} rng_t;

/* Seeds `self` deterministically: the same seed gives the same sequence on every platform. A
 * seed of 0 is mapped to RNG_ZERO_SEED (what gossip's SWIM core has always done). */
void rng_init(rng_t *self, uint64_t seed);

/* Seeds `self` from libsodium's randombytes (unpredictable, different per call). */
void rng_init_random(rng_t *self);

/* The next 64 pseudo-random bits: x ^= x >> 12; x ^= x << 25; x ^= x >> 27; x * 0x2545F4914F6CDD1D.
 * The same sequence as gossip's swim_rand() for the same state. */
uint64_t rng_next(rng_t *self);

/* A value uniform in [0, bound) without modulo bias (rejection sampling); 0 when bound is 0. */
uint64_t rng_below(rng_t *self, uint64_t bound);

/* Asserts the invariants of `self` (debug builds only). */
void rng_sanity(const rng_t *self);

/* The next 64 bits of this thread's own generator, seeded from randombytes on the thread's
 * first call: no lock, no shared state (backoff jitter, sampling). */
uint64_t rng_thread_next(void);

/* rng_below on this thread's generator. */
uint64_t rng_thread_below(uint64_t bound);

#endif
