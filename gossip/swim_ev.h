/*
 * swim_ev.h - the clock seam. The SWIM core has no clock: its driver passes `now_ms` to
 * swim_tick() and swim_receive(). The driver reads time through this seam: the gossip agent
 * uses the monotonic clock, the fake network a virtual clock that it advances itself, so a
 * test of "suspected after exactly one probe interval" runs in microseconds.
 */
#ifndef SHOAL_SWIM_EV_H
#define SHOAL_SWIM_EV_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct swim_clock {
    uint64_t (*now_ms)(void *ctx); /* milliseconds on a clock that never goes backwards */
    void *ctx;                     /* passed to now_ms; owned by whoever built the clock */
} swim_clock_t;

/* Reads the clock. */
static inline uint64_t swim_clock_now(const swim_clock_t *clock)
{
    return clock->now_ms(clock->ctx);
}

/* The real clock: CLOCK_MONOTONIC in milliseconds. Returns a value (no ownership). */
swim_clock_t swim_clock_monotonic(void);

#ifdef __cplusplus
}
#endif
#endif
