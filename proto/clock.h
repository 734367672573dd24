/*
 * clock.h - the one place shoal reads the time: monotonic nanoseconds and milliseconds for
 * timeouts and latencies, realtime milliseconds for what peers and logs compare, and deadline
 * helpers that saturate instead of overflowing. Pure functions of the system clocks.
 */
#ifndef SHOAL_PROTO_CLOCK_H
#define SHOAL_PROTO_CLOCK_H

#include <stdint.h>
#include <time.h>

#define CLOCK_NS_PER_MS 1000000LL    /* nanoseconds in a millisecond */
#define CLOCK_NS_PER_S  1000000000LL /* nanoseconds in a second */
#define CLOCK_NEVER     INT64_MAX    /* a deadline that never comes */

/* Nanoseconds of CLOCK_MONOTONIC (an arbitrary origin, never goes back). Thread safe. */
int64_t clock_mono_ns(void);

/* Milliseconds of CLOCK_MONOTONIC (clock_mono_ns / 1e6, truncated). Thread safe. */
int64_t clock_mono_ms(void);

/* Nanoseconds since the Unix epoch (CLOCK_REALTIME: may jump; for logs and peers, never for
 * timeouts). Thread safe. */
int64_t clock_real_ns(void);

/* Milliseconds since the Unix epoch (clock_real_ns / 1e6, truncated). Thread safe. */
int64_t clock_real_ms(void);

/* The monotonic deadline `timeout_ns` from now: CLOCK_NEVER for a negative timeout, saturated at
 * CLOCK_NEVER instead of overflowing. */
int64_t clock_deadline_ns(int64_t timeout_ns);

/* The monotonic deadline `timeout_ms` from now (milliseconds in, nanoseconds out), as above. */
int64_t clock_deadline_ms(int64_t timeout_ms);

/* Milliseconds left until monotonic `deadline_ns`, rounded up (so a wait for the result does
 * not wake just before the deadline): 0 once it has passed, -1 for CLOCK_NEVER (poll's and
 * zmq_poll's "forever"), at most INT32_MAX. */
int64_t clock_remaining_ms(int64_t deadline_ns);

/* True once monotonic `deadline_ns` has passed (never for CLOCK_NEVER). */
int clock_expired(int64_t deadline_ns);

/* Nanoseconds as a struct timespec (for pthread_cond_timedwait on a CLOCK_MONOTONIC condvar,
 * nanosleep, ...). Negative values give {0, 0}. */
struct timespec clock_timespec(int64_t ns);

#endif
