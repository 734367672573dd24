/*
 * swim_ev.c - the real clock behind the swim_ev.h seam: CLOCK_MONOTONIC in milliseconds.
 * (The virtual clock lives with the fake network in swim_fake.c.)
 */
#include "swim_ev.h"

#include <time.h>

static uint64_t s_monotonic_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

swim_clock_t swim_clock_monotonic(void)
{
    swim_clock_t clock = {s_monotonic_ms, NULL};
    return clock;
}
