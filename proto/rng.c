/*
 * rng.c - xorshift64* generators (rng.h): one per owner, and one per thread.
 */
#include "rng.h"

#include <assert.h>
#include <sodium.h>

void rng_init(rng_t *self, uint64_t seed)
{
    self->state = seed ? seed : RNG_ZERO_SEED;
}

void rng_init_random(rng_t *self)
{
    uint64_t seed = 0;
    if (sodium_init() < 0)
        seed = 0; /* randombytes still works without sodium_init on every platform we run */
    randombytes_buf(&seed, sizeof seed);
    rng_init(self, seed);
}

uint64_t rng_next(rng_t *self)
{
    uint64_t x = self->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    self->state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Rejects the top partial copy of [0, bound) so that every residue is equally likely: at most
 * half the draws are rejected, for bound just above 2^63; for small bounds almost none. */
uint64_t rng_below(rng_t *self, uint64_t bound)
{
    if (bound == 0)
        return 0;
    uint64_t limit = UINT64_MAX - (UINT64_MAX % bound + 1) % bound; /* last value kept */
    uint64_t x;
    do
        x = rng_next(self);
    while (x > limit);
    return x % bound;
}

void rng_sanity(const rng_t *self)
{
    (void)self;
    assert(self != NULL);
    assert(self->state != 0);
}

static _Thread_local rng_t s_thread_rng; /* state 0 until this thread's first draw */

static rng_t *s_thread(void)
{
    if (s_thread_rng.state == 0)
        rng_init_random(&s_thread_rng);
    return &s_thread_rng;
}

uint64_t rng_thread_next(void)
{
    return rng_next(s_thread());
}

uint64_t rng_thread_below(uint64_t bound)
{
    return rng_below(s_thread(), bound);
}
