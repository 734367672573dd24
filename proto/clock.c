/*
 * clock.c - monotonic and realtime clocks in ns/ms, and saturating deadlines (clock.h).
 */
#include "clock.h"

static int64_t s_read(clockid_t id)
{
    struct timespec now;
    clock_gettime(id, &now);
    return (int64_t)now.tv_sec * CLOCK_NS_PER_S + (int64_t)now.tv_nsec;
}

int64_t clock_mono_ns(void)
{
    return s_read(CLOCK_MONOTONIC);
}

int64_t clock_mono_ms(void)
{
    return clock_mono_ns() / CLOCK_NS_PER_MS;
}

int64_t clock_real_ns(void)
{
    return s_read(CLOCK_REALTIME);
}

int64_t clock_real_ms(void)
{
    return clock_real_ns() / CLOCK_NS_PER_MS;
}

int64_t clock_deadline_ns(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return CLOCK_NEVER;
    int64_t now = clock_mono_ns();
    return timeout_ns > CLOCK_NEVER - now ? CLOCK_NEVER : now + timeout_ns;
}

int64_t clock_deadline_ms(int64_t timeout_ms)
{
    if (timeout_ms < 0)
        return CLOCK_NEVER;
    if (timeout_ms > CLOCK_NEVER / CLOCK_NS_PER_MS)
        return CLOCK_NEVER;
    return clock_deadline_ns(timeout_ms * CLOCK_NS_PER_MS);
}

int64_t clock_remaining_ms(int64_t deadline_ns)
{
    if (deadline_ns == CLOCK_NEVER)
        return -1;
    int64_t left = deadline_ns - clock_mono_ns();
    if (left <= 0)
        return 0;
    int64_t ms = left / CLOCK_NS_PER_MS + (left % CLOCK_NS_PER_MS != 0);
    return ms > INT32_MAX ? INT32_MAX : ms;
}

int clock_expired(int64_t deadline_ns)
{
    return deadline_ns != CLOCK_NEVER && clock_mono_ns() >= deadline_ns;
}

struct timespec clock_timespec(int64_t ns)
{
    struct timespec ts = {0, 0};
    if (ns > 0) {
        ts.tv_sec = (time_t)(ns / CLOCK_NS_PER_S);
        ts.tv_nsec = (long)(ns % CLOCK_NS_PER_S);
    }
    return ts;
}
