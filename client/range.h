/*
 * range.h - cutting a byte span of a file into placement-range pieces (range.c). Pure; a leaf.
 */
#ifndef SHOAL_CLIENT_RANGE_H
#define SHOAL_CLIENT_RANGE_H

#include <stddef.h>
#include <stdint.h>

/* One placement range piece of a read. */
typedef struct client_range {
    uint64_t range_index; /* offset / range_bytes */
    uint64_t offset;      /* first byte of the piece */
    uint64_t length;      /* bytes in the piece (> 0) */
} client_range_t;

/* Number of pieces [offset, offset + length) splits into at multiples of range_bytes. */
size_t client_range_count(uint64_t offset, uint64_t length, uint64_t range_bytes);
/* Writes those pieces to out (client_range_count entries, caller owns). Returns the count. */
size_t client_range_split(uint64_t offset, uint64_t length, uint64_t range_bytes,
                          client_range_t *out);

#endif
