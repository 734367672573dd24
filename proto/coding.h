/*
 * coding.h - hex and percent coding (RFC 3986), the one copy. Pure functions on caller
 * buffers: nothing allocates, every output is NUL-terminated, and a result that does not fit
 * is refused whole rather than cut.
 */
#ifndef SHOAL_PROTO_CODING_H
#define SHOAL_PROTO_CODING_H

#include <stdbool.h>
#include <stddef.h>

#include "shoal_err.h"

/* The value of hex digit `c` (0-9, a-f, A-F), or -1 for anything else. */
int hex_digit_value(char c);

/* Writes the 2 * len hex digits of `in` and a NUL into `out` (out_len bytes): lower-case
 * (node ids, secrets) unless `upper` (percent escapes). Returns 0, or SHOAL_EMSGSIZE when
 * out_len < 2 * len + 1 (out untouched). Borrows both. */
int hex_encode(const void *in, size_t len, char *out, size_t out_len, bool upper);

/* Decodes `len` hex digits of `in` (either case, no separators, no "0x") into `out`
 * (out_cap bytes); *out_len gets len / 2. Returns 0, SHOAL_EINVAL for an odd length or a
 * non-hex character, SHOAL_EMSGSIZE when out_cap < len / 2. Borrows both. */
int hex_decode(const char *in, size_t len, void *out, size_t out_cap, size_t *out_len);

/* True for RFC 3986 unreserved bytes: ASCII letters, digits, '-', '.', '_', '~'. ASCII ranges,
 * never the locale's isalnum() (which may call bytes >= 0x80 letters). */
bool pct_is_unreserved(unsigned char c);

/* Appends `text` (NUL-terminated) to the NUL-terminated string in `out` (capacity out_len),
 * percent-encoding every byte that is not unreserved with upper-case hex ("%2F"), except '/'
 * when keep_slash (SigV4 canonical URIs, URL paths). Returns 0, or SHOAL_EMSGSIZE when the
 * result does not fit (out then holds a valid but partial string). Borrows both. */
int pct_encode_append(char *out, size_t out_len, const char *text, bool keep_slash);

/* Decodes every %XX escape of `in` (len bytes) into `out` (out_len bytes incl. the NUL). An
 * escape must have two hex digits (either case); a truncated or malformed one and an escaped
 * NUL ("%00": it would cut the name short) are SHOAL_EINVAL; SHOAL_EMSGSIZE when the result
 * and its NUL do not fit. Other bytes are copied as they are ('+' is not a space). Borrows
 * both. */
int pct_decode(const char *in, size_t len, char *out, size_t out_len);

#endif
