/*
 * units.h - the one grammar for sizes and durations, shared by shoald's config and flags and
 * by the CLI, and the matching formatters. Pure functions: no locale (the decimal point is
 * '.', as strtod reads it in the "C" locale shoal runs in), no allocation.
 *
 * Size:     NUMBER [K|M|G|T [i]] [B], units binary and case-insensitive ("4096", "4k",
 *           "10G", "1.5GiB", "2TB", "512MB", "100b"); NUMBER starts with a digit, may have a
 *           fraction with a unit ("1.5G") but not without one ("12.5" bytes is refused); the
 *           result must be below 2^64 - 1.
 * Duration: NUMBER [ms|s|m|h], case-sensitive, a bare number is seconds ("60", "0.5",
 *           "250ms", "2m", "1h", ".5s"); NUMBER starts with a digit or '.', the result is at
 *           most 9e18 ns. Fractions of a nanosecond are truncated.
 */
#ifndef SHOAL_PROTO_UNITS_H
#define SHOAL_PROTO_UNITS_H

#include <stddef.h>
#include <stdint.h>

#include "shoal_err.h"

#define UNITS_TEXT_MAX 32 /* enough for any units_format_* result, NUL included */

/* Parses a size into *bytes_out. Returns 0, or SHOAL_EINVAL (nothing written) for text outside
 * the grammar above, a negative, infinite or NaN number, or a result too large. Borrows text. */
int units_parse_size(const char *text, uint64_t *bytes_out);

/* Parses a duration into *ns_out (nanoseconds). Returns 0 or SHOAL_EINVAL (nothing written), as
 * for sizes. Borrows text. */
int units_parse_duration(const char *text, int64_t *ns_out);

/* Writes `bytes` for people: "512 B" below 1 KiB, else one decimal and a binary unit
 * ("1.5 GiB", "10.0 MiB", up to PiB). Returns out; out_len >= 16 always suffices. */
const char *units_format_size(uint64_t bytes, char *out, size_t out_len);

/* Writes a duration for people: "250 ns", "1.5 us", "12.0 ms", "3.20 s", with
 * the largest unit that keeps the value >= 1 (ns, us, ms, s). Returns out; out_len >= 24
 * always suffices. Negative durations get a '-' sign. */
const char *units_format_duration(int64_t ns, char *out, size_t out_len);

#endif
