/*
 * fnv.c - FNV-1a 64 (fnv.h), byte at a time as the reference does it.
 */
#include "fnv.h"

uint64_t fnv1a64_update(uint64_t hash, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        hash ^= p[i];
        hash *= FNV1A64_PRIME;
    }
    return hash;
}

uint64_t fnv1a64(const void *data, size_t len)
{
    return fnv1a64_update(FNV1A64_BASIS, data, len);
}

uint64_t fnv1a64_str(const char *text)
{
    uint64_t hash = FNV1A64_BASIS;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        hash ^= *p;
        hash *= FNV1A64_PRIME;
    }
    return hash;
}
