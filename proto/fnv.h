/*
 * fnv.h - the one FNV-1a 64-bit hash (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
 * For stable, unkeyed hashes of trusted text (cache keys, sharding a local structure); never
 * for tables whose keys peers choose: use htab.h (keyed SipHash) there.
 */
#ifndef SHOAL_PROTO_FNV_H
#define SHOAL_PROTO_FNV_H

#include <stddef.h>
#include <stdint.h>

#define FNV1A64_BASIS 14695981039346656037ull /* 0xcbf29ce484222325 */
#define FNV1A64_PRIME 1099511628211ull        /* 0x100000001b3 */

/* Folds `len` bytes into a running hash `hash` (start from FNV1A64_BASIS); returns the new
 * hash. Borrows `data` (may be NULL when len is 0). */
uint64_t fnv1a64_update(uint64_t hash, const void *data, size_t len);

/* FNV-1a 64 of `len` bytes. Borrows `data`. */
uint64_t fnv1a64(const void *data, size_t len);

/* FNV-1a 64 of a NUL-terminated string (its bytes, without the NUL). Borrows `text`. */
uint64_t fnv1a64_str(const char *text);

#endif
