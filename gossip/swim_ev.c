/*
 * swim_ev.c - the real clock behind the swim_ev.h seam: proto's monotonic clock in
 * milliseconds. (The virtual clock lives with the fake network in swim_fake.c.)
 */
#include "swim_ev.h"

#include "clock.h"

static uint64_t s_monotonic_ms(void *ctx)
{
    (void)ctx;
    return (uint64_t)clock_mono_ms();
}

swim_clock_t swim_clock_monotonic(void)
{
    swim_clock_t clock = {s_monotonic_ms, NULL};
    return clock;
}
