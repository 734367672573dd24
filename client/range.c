/*
 * range.c - cuts a byte span of a file into placement-range pieces: a read of [offset,
 * offset + length) becomes one request per range it touches, each cut at multiples of
 * page_size * range_pages so that every piece has exactly one set of owners.
 */
#include "range.h"

size_t client_range_count(uint64_t offset, uint64_t length, uint64_t range_bytes)
{
    if (length == 0 || range_bytes == 0)
        return 0;
    uint64_t last = offset + (length - 1);
    if (last < offset) /* wraps: clamp to the end of the address space */
        last = UINT64_MAX;
    return (size_t)(last / range_bytes - offset / range_bytes + 1);
}

/* Walks from `offset` to the end of the span, cutting at each next multiple of range_bytes.
 * The first and last pieces may be partial; the ones between are whole ranges. */
size_t client_range_split(uint64_t offset, uint64_t length, uint64_t range_bytes,
                          client_range_t *out)
{
    size_t count = client_range_count(offset, length, range_bytes);
    uint64_t position = offset;
    uint64_t left = length;
    for (size_t i = 0; i < count; i++) {
        uint64_t range_index = position / range_bytes;
        uint64_t range_end_left = range_bytes - position % range_bytes;
        uint64_t piece = left < range_end_left ? left : range_end_left;
        out[i].range_index = range_index;
        out[i].offset = position;
        out[i].length = piece;
        position += piece;
        left -= piece;
    }
    return count;
}
