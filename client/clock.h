/*
 * clock.h - the client's monotonic clock in milliseconds, header only (the leaf every timed
 * module of client/ uses; the shared clock of proto/ replaces it in a later step).
 */
#ifndef SHOAL_CLIENT_CLOCK_H
#define SHOAL_CLIENT_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds. */
static inline int64_t client_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

#endif
