/*
 * test_base_util.c - the small pure parts of the base layer (proto/): clock, rng, fnv, hex and
 * percent coding, the size/duration grammar and its formatters, the generic vector, the host
 * id. Known answers, boundaries and overflow refusal.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "coding.h"
#include "fnv.h"
#include "hostid.h"
#include "rng.h"
#include "units.h"
#include "vec.h"

/* ---- clock -------------------------------------------------------------------------------- */

Test(clock, monotonic_moves_forward_and_units_agree)
{
    int64_t ns = clock_mono_ns();
    int64_t ms = clock_mono_ms();
    int64_t later = clock_mono_ns();
    cr_assert_geq(later, ns);
    cr_assert_geq(ms, ns / CLOCK_NS_PER_MS);
    cr_assert_leq(ms, later / CLOCK_NS_PER_MS);
    /* realtime is after 2020-01-01 and ms agrees with ns */
    int64_t real_ms = clock_real_ms();
    cr_assert_gt(real_ms, 1577836800000ll);
    cr_assert_leq(real_ms, clock_real_ns() / CLOCK_NS_PER_MS);
}

Test(clock, deadlines_saturate)
{
    cr_assert_eq(clock_deadline_ns(-1), CLOCK_NEVER);
    cr_assert_eq(clock_deadline_ns(INT64_MAX), CLOCK_NEVER);
    cr_assert_eq(clock_deadline_ms(-5), CLOCK_NEVER);
    cr_assert_eq(clock_deadline_ms(INT64_MAX / 2), CLOCK_NEVER);
    cr_assert_eq(clock_remaining_ms(CLOCK_NEVER), -1);
    cr_assert(!clock_expired(CLOCK_NEVER));
    int64_t past = clock_mono_ns() - 1;
    cr_assert(clock_expired(past));
    cr_assert_eq(clock_remaining_ms(past), 0);
    int64_t soon = clock_deadline_ms(10000);
    cr_assert(!clock_expired(soon));
    int64_t left = clock_remaining_ms(soon);
    cr_assert(left > 9000 && left <= 10000, "%lld", (long long)left);
    /* rounded up: 1 ns left is 1 ms to wait */
    cr_assert_eq(clock_remaining_ms(clock_mono_ns() + 1000000000ll * 3600 * 24 * 365 * 100),
                 INT32_MAX);
}

Test(clock, timespec)
{
    struct timespec ts = clock_timespec(2500000001ll);
    cr_assert_eq(ts.tv_sec, 2);
    cr_assert_eq(ts.tv_nsec, 500000001);
    ts = clock_timespec(-7);
    cr_assert_eq(ts.tv_sec, 0);
    cr_assert_eq(ts.tv_nsec, 0);
}

/* ---- rng ---------------------------------------------------------------------------------- */

/* The reference xorshift64* step, written out here independently of rng.c. */
static uint64_t s_reference(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 2685821657736338717ull;
}

Test(rng, matches_the_reference_and_is_deterministic)
{
    rng_t a, b;
    rng_init(&a, 42);
    rng_init(&b, 42);
    uint64_t x = 42;
    for (int i = 0; i < 1000; i++) {
        uint64_t want = s_reference(&x);
        cr_assert_eq(rng_next(&a), want);
        cr_assert_eq(rng_next(&b), want);
    }
    rng_sanity(&a);
    /* seed 0 maps to the golden-ratio state gossip always used */
    rng_init(&a, 0);
    cr_assert_eq(a.state, 0x9e3779b97f4a7c15ull);
    rng_sanity(&a);
    /* known answer: first output from state 1 */
    rng_init(&a, 1);
    cr_assert_eq(rng_next(&a), 0x47e4ce4b896cdd1dull);
}

Test(rng, below_stays_below_and_covers)
{
    rng_t r;
    rng_init(&r, 7);
    cr_assert_eq(rng_below(&r, 0), 0);
    cr_assert_eq(rng_below(&r, 1), 0);
    unsigned seen[10] = {0};
    for (int i = 0; i < 10000; i++) {
        uint64_t v = rng_below(&r, 10);
        cr_assert_lt(v, 10);
        seen[v]++;
    }
    for (int i = 0; i < 10; i++)
        cr_assert(seen[i] > 800 && seen[i] < 1200, "%d: %u", i, seen[i]);
    uint64_t big = (1ull << 63) + 1; /* worst case for rejection: still terminates, stays below */
    for (int i = 0; i < 100; i++)
        cr_assert_lt(rng_below(&r, big), big);
    cr_assert_lt(rng_below(&r, UINT64_MAX), UINT64_MAX);
}

Test(rng, random_and_per_thread_seeds)
{
    rng_t a, b;
    rng_init_random(&a);
    rng_init_random(&b);
    rng_sanity(&a);
    cr_assert_neq(rng_next(&a), rng_next(&b)); /* 2^-64 chance of a false failure */
    uint64_t x = rng_thread_next(), y = rng_thread_next();
    cr_assert_neq(x, y);
    for (int i = 0; i < 100; i++)
        cr_assert_lt(rng_thread_below(5), 5);
}

/* ---- fnv ---------------------------------------------------------------------------------- */

Test(fnv, published_vectors)
{
    cr_assert_eq(fnv1a64("", 0), 0xcbf29ce484222325ull);
    cr_assert_eq(fnv1a64("a", 1), 0xaf63dc4c8601ec8cull);
    cr_assert_eq(fnv1a64("foobar", 6), 0x85944171f73967e8ull);
    cr_assert_eq(fnv1a64_str(""), 0xcbf29ce484222325ull);
    cr_assert_eq(fnv1a64_str("a"), 0xaf63dc4c8601ec8cull);
    cr_assert_eq(fnv1a64_str("foobar"), 0x85944171f73967e8ull);
    cr_assert_eq(fnv1a64(NULL, 0), FNV1A64_BASIS);
    /* incremental equals one shot */
    cr_assert_eq(fnv1a64_update(fnv1a64("foo", 3), "bar", 3), 0x85944171f73967e8ull);
    /* bytes past a NUL count for the length-taking form */
    cr_assert_neq(fnv1a64("a\0b", 3), fnv1a64_str("a"));
}

/* ---- hex ---------------------------------------------------------------------------------- */

Test(hex, encode_decode_round_trip)
{
    const uint8_t bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char text[13];
    cr_assert_eq(hex_encode(bytes, sizeof bytes, text, sizeof text, false), 0);
    cr_assert_str_eq(text, "00017f80abff");
    cr_assert_eq(hex_encode(bytes, sizeof bytes, text, sizeof text, true), 0);
    cr_assert_str_eq(text, "00017F80ABFF");
    cr_assert_eq(hex_encode(bytes, sizeof bytes, text, sizeof text - 1, false), SHOAL_EMSGSIZE);
    cr_assert_eq(hex_encode(bytes, 0, text, 1, false), 0);
    cr_assert_str_eq(text, "");
    uint8_t back[6];
    size_t len = 0;
    cr_assert_eq(hex_decode("00017F80abFF", 12, back, sizeof back, &len), 0);
    cr_assert_eq(len, 6);
    cr_assert_arr_eq(back, bytes, 6);
    cr_assert_eq(hex_decode("abc", 3, back, sizeof back, &len), SHOAL_EINVAL);
    cr_assert_eq(hex_decode("zz", 2, back, sizeof back, &len), SHOAL_EINVAL);
    cr_assert_eq(hex_decode("0x", 2, back, sizeof back, &len), SHOAL_EINVAL);
    cr_assert_eq(hex_decode("a ", 2, back, sizeof back, &len), SHOAL_EINVAL);
    cr_assert_eq(hex_decode("00112233445566", 14, back, sizeof back, &len), SHOAL_EMSGSIZE);
    cr_assert_eq(hex_digit_value('g'), -1);
    cr_assert_eq(hex_digit_value('F'), 15);
    cr_assert_eq(hex_digit_value('0'), 0);
}

/* ---- percent ------------------------------------------------------------------------------ */

Test(pct, unreserved_is_ascii_only)
{
    const char *plain = "ABCXYZabcxyz0189-._~";
    for (const char *p = plain; *p; p++)
        cr_assert(pct_is_unreserved((unsigned char)*p), "%c", *p);
    const char *reserved = " !\"#$%&'()*+,/:;<=>?@[\\]^`{|}";
    for (const char *p = reserved; *p; p++)
        cr_assert(!pct_is_unreserved((unsigned char)*p), "%c", *p);
    for (int c = 0x80; c < 0x100; c++)
        cr_assert(!pct_is_unreserved((unsigned char)c), "0x%x", c);
    cr_assert(!pct_is_unreserved(0));
}

Test(pct, encode_like_sigv4)
{
    char out[64] = "https://h/";
    cr_assert_eq(pct_encode_append(out, sizeof out, "a b/c\xc3\xa9~+", true), 0);
    cr_assert_str_eq(out, "https://h/a%20b/c%C3%A9~%2B");
    out[0] = '\0';
    cr_assert_eq(pct_encode_append(out, sizeof out, "a/b", false), 0);
    cr_assert_str_eq(out, "a%2Fb");
    /* does not fit: refused, out stays a valid string */
    char small[5] = "";
    cr_assert_eq(pct_encode_append(small, sizeof small, "ab/", false), SHOAL_EMSGSIZE);
    cr_assert_leq(strlen(small), 4);
    char exact[6] = "";
    cr_assert_eq(pct_encode_append(exact, sizeof exact, "ab/", true), 0);
    cr_assert_eq(pct_encode_append(exact, sizeof exact, "%", true), SHOAL_EMSGSIZE);
    char fits[7] = "ab";
    cr_assert_eq(pct_encode_append(fits, sizeof fits, "%", true), 0);
    cr_assert_str_eq(fits, "ab%25");
}

Test(pct, decode_refuses_bad_escapes)
{
    char out[32];
    cr_assert_eq(pct_decode("a%20b%2Fc%2fd", 13, out, sizeof out), 0);
    cr_assert_str_eq(out, "a b/c/d");
    cr_assert_eq(pct_decode("a+b", 3, out, sizeof out), 0);
    cr_assert_str_eq(out, "a+b"); /* '+' is not a space */
    cr_assert_eq(pct_decode("%41", 3, out, sizeof out), 0);
    cr_assert_str_eq(out, "A");
    cr_assert_eq(pct_decode("", 0, out, sizeof out), 0);
    cr_assert_str_eq(out, "");
    const char *bad[] = {"%", "%4", "a%", "%zz", "%g0", "%00", "x%0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(pct_decode(bad[i], strlen(bad[i]), out, sizeof out), SHOAL_EINVAL, "%s",
                     bad[i]);
    /* a length shorter than the string: the escape is truncated */
    cr_assert_eq(pct_decode("%41", 2, out, sizeof out), SHOAL_EINVAL);
    /* sizes: "abc" needs 4 bytes */
    cr_assert_eq(pct_decode("abc", 3, out, 4), 0);
    cr_assert_eq(pct_decode("abc", 3, out, 3), SHOAL_EMSGSIZE);
    cr_assert_eq(pct_decode("", 0, out, 0), SHOAL_EMSGSIZE);
}

/* ---- units -------------------------------------------------------------------------------- */

Test(units, sizes_as_config_c_reads_them)
{
    uint64_t size = 0;
    struct {
        const char *text;
        uint64_t want;
    } good[] = {
        {"0", 0},
        {"4096", 4096},
        {"10G", 10ull << 30},
        {"512M", 512ull << 20},
        {"1.5GiB", 3ull << 29},
        {"1.5G", 3ull << 29},
        {"4k", 4096},
        {"4K", 4096},
        {"4KB", 4096},
        {"4kib", 4096},
        {"2TB", 2ull << 40},
        {"100b", 100},
        {"100B", 100},
        {"0.5K", 512},
        {"1e3", 1000},
        {"16777215T", 16777215ull << 40},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cr_expect_eq(units_parse_size(good[i].text, &size), 0, "'%s'", good[i].text);
        cr_expect_eq(size, good[i].want, "'%s'", good[i].text);
    }
    const char *bad[] = {"",     "G",    "-1",   "10X",  "10 G",      "1.5",
                         "abc",  "10GG", "1iB",  "10iB", "16777216T", "99999999999T",
                         " 10G", ".5G",  "10G ", "inf",  "nan",       "1e30"};
    size = 77;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(units_parse_size(bad[i], &size), SHOAL_EINVAL, "'%s'", bad[i]);
    cr_assert_eq(size, 77); /* nothing written on refusal */
    cr_assert_eq(units_parse_size(NULL, &size), SHOAL_EINVAL);
}

Test(units, durations_as_config_c_reads_them)
{
    int64_t ns = 0;
    struct {
        const char *text;
        int64_t want;
    } good[] = {
        {"60", 60000000000ll},
        {"0.5", 500000000ll},
        {"250ms", 250000000ll},
        {"2m", 120000000000ll},
        {"0", 0},
        {"1s", 1000000000ll},
        {"1h", 3600000000000ll},
        {".5s", 500000000ll},
        {"1.5ms", 1500000ll},
        {"2500000h", 9000000000000000000ll},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cr_expect_eq(units_parse_duration(good[i].text, &ns), 0, "'%s'", good[i].text);
        cr_expect_eq(ns, good[i].want, "'%s'", good[i].text);
    }
    const char *bad[] = {"",   "-1",  "1x",       "ms",   "1 s", "1e300",
                         "1S", "1MS", "2500001h", "1sec", "inf", " 1s"};
    ns = 77;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(units_parse_duration(bad[i], &ns), SHOAL_EINVAL, "'%s'", bad[i]);
    cr_assert_eq(ns, 77);
    cr_assert_eq(units_parse_duration(NULL, &ns), SHOAL_EINVAL);
}

Test(units, formatting)
{
    char out[UNITS_TEXT_MAX];
    cr_assert_str_eq(units_format_size(0, out, sizeof out), "0 B");
    cr_assert_str_eq(units_format_size(1023, out, sizeof out), "1023 B");
    cr_assert_str_eq(units_format_size(1024, out, sizeof out), "1.0 KiB");
    cr_assert_str_eq(units_format_size(3ull << 29, out, sizeof out), "1.5 GiB");
    cr_assert_str_eq(units_format_size(10ull << 20, out, sizeof out), "10.0 MiB");
    cr_assert_str_eq(units_format_size(UINT64_MAX, out, sizeof out), "16384.0 PiB");
    cr_assert_str_eq(units_format_duration(250, out, sizeof out), "250 ns");
    cr_assert_str_eq(units_format_duration(1500, out, sizeof out), "1.5 us");
    cr_assert_str_eq(units_format_duration(12000000, out, sizeof out), "12.0 ms");
    cr_assert_str_eq(units_format_duration(3200000000ll, out, sizeof out), "3.20 s");
    cr_assert_str_eq(units_format_duration(-1500, out, sizeof out), "-1.5 us");
    units_format_duration(INT64_MIN, out, sizeof out);
    cr_assert_eq(out[0], '-');
    /* round trip through the parser for whole units */
    uint64_t back = 0;
    cr_assert_eq(units_parse_size("1.5GiB", &back), 0);
    cr_assert_str_eq(units_format_size(back, out, sizeof out), "1.5 GiB");
}

/* ---- vec ---------------------------------------------------------------------------------- */

typedef VEC(int) int_vec_t;

Test(vec, push_grow_remove)
{
    int_vec_t v;
    vec_init(&v);
    vec_sanity(&v);
    cr_assert_null(v.items);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(vec_push(&v, i), 0);
    vec_sanity(&v);
    cr_assert_eq(v.len, 1000);
    cr_assert_geq(v.capacity, 1000);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(v.items[i], i);
    cr_assert_eq(vec_last(&v), 999);
    cr_assert_eq(vec_pop(&v), 999);
    vec_swap_remove(&v, 0); /* 998 moves to the front */
    cr_assert_eq(v.items[0], 998);
    cr_assert_eq(v.len, 998);
    vec_remove(&v, 0); /* keeps order */
    cr_assert_eq(v.items[0], 1);
    cr_assert_eq(v.items[996], 997);
    cr_assert_eq(v.len, 997);
    vec_remove(&v, v.len - 1);
    cr_assert_eq(vec_last(&v), 996);
    int more[] = {-1, -2, -3};
    cr_assert_eq(vec_append(&v, more, 3), 0);
    cr_assert_eq(vec_last(&v), -3);
    int *zero = vec_push_zero(&v);
    cr_assert_not_null(zero);
    cr_assert_eq(*zero, 0);
    size_t capacity = v.capacity;
    vec_clear(&v);
    cr_assert_eq(v.len, 0);
    cr_assert_eq(v.capacity, capacity);
    vec_sanity(&v);
    vec_fini(&v);
    cr_assert_null(v.items);
    cr_assert_eq(v.capacity, 0);
    vec_fini(&v); /* twice is fine */
}

typedef struct {
    char bytes[1 << 20];
} s_big_t;

Test(vec, overflow_is_refused_and_leaves_the_vector)
{
    int_vec_t v;
    vec_init(&v);
    cr_assert_eq(vec_push(&v, 1), 0);
    int *items = v.items;
    size_t capacity = v.capacity;
    cr_assert_eq(vec_reserve(&v, SIZE_MAX), SHOAL_ENOMEM);
    cr_assert_eq(vec_reserve(&v, SIZE_MAX / sizeof(int)), SHOAL_ENOMEM);
    cr_assert_eq(vec_grow_raw(&v.items, &v.capacity, v.len, SIZE_MAX - 1, sizeof(int)),
                 SHOAL_ENOMEM);
    cr_assert_eq(v.items, items);
    cr_assert_eq(v.capacity, capacity);
    cr_assert_eq(v.len, 1);
    cr_assert_eq(vec_reserve(&v, 0), 0);
    cr_assert_eq(vec_reserve(&v, 100), 0);
    cr_assert_geq(v.capacity, 101);
    vec_sanity(&v);
    vec_fini(&v);
    /* elements of 1 MiB: SIZE_MAX / 2^20 elements overflow size_t bytes */
    VEC(s_big_t) big;
    vec_init(&big);
    cr_assert_eq(vec_reserve(&big, SIZE_MAX / sizeof(s_big_t) + 1), SHOAL_ENOMEM);
    cr_assert_null(big.items);
    vec_fini(&big);
}

Test(vec, pointers)
{
    VEC(const char *) names;
    vec_init(&names);
    cr_assert_eq(vec_push(&names, "a"), 0);
    cr_assert_eq(vec_push(&names, "b"), 0);
    cr_assert_str_eq(names.items[1], "b");
    vec_fini(&names);
}

/* ---- host id (hostid.h) ---- */

Test(hostid, environment_wins_trimmed_and_bounded)
{
    char id[HOST_ID_MAX + 1];
    cr_assert_eq(setenv("SHOAL_HOST_ID", "  pod-host-7 \n", 1), 0);
    cr_assert_eq(host_id_get(id, sizeof id), 0);
    cr_assert_str_eq(id, "pod-host-7");

    /* a newline inside ends it; an overlong value is cut to HOST_ID_MAX */
    cr_assert_eq(setenv("SHOAL_HOST_ID", "first\nsecond", 1), 0);
    cr_assert_eq(host_id_get(id, sizeof id), 0);
    cr_assert_str_eq(id, "first");
    char long_id[300];
    memset(long_id, 'h', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    cr_assert_eq(setenv("SHOAL_HOST_ID", long_id, 1), 0);
    cr_assert_eq(host_id_get(id, sizeof id), 0);
    cr_assert_eq(strlen(id), HOST_ID_MAX);
    char small[5];
    cr_assert_eq(host_id_get(small, sizeof small), 0);
    cr_assert_str_eq(small, "hhhh");
    cr_assert_eq(host_id_get(NULL, 10), SHOAL_EINVAL);
    cr_assert_eq(host_id_get(id, 0), SHOAL_EINVAL);
    unsetenv("SHOAL_HOST_ID");
}

Test(hostid, without_environment_every_call_agrees)
{
    /* blank is not a value: the files or the host name are used instead */
    cr_assert_eq(setenv("SHOAL_HOST_ID", " \t ", 1), 0);
    char a[HOST_ID_MAX + 1], b[HOST_ID_MAX + 1];
    cr_assert_eq(host_id_get(a, sizeof a), 0);
    unsetenv("SHOAL_HOST_ID");
    cr_assert_eq(host_id_get(b, sizeof b), 0);
    cr_assert_gt(strlen(a), 0);
    cr_assert_str_eq(a, b);
    cr_assert_leq(strlen(a), HOST_ID_MAX);
    for (const char *p = a; *p; p++)
        cr_assert((unsigned char)*p >= 0x20, "control byte in host id '%s'", a);
    /* machine-id when there is one (the usual case on Linux) */
    FILE *file = fopen("/etc/machine-id", "r");
    if (file) {
        char line[256] = "";
        if (fgets(line, sizeof line, file)) {
            line[strcspn(line, "\r\n")] = '\0';
            if (line[0])
                cr_assert_str_eq(a, line);
        }
        fclose(file);
    }
}
