/*
 * vec.c - the growth step of the generic vector (vec.h).
 */
#include "vec.h"

#include <assert.h>
#include <stdint.h>

/*
 * The new capacity is the larger of twice the old one and what is needed, at least
 * VEC_MIN_CAPACITY; if doubling would overflow, exactly what is needed. The pointer is read and
 * written through memcpy so that one function serves every T * without type punning.
 */
int vec_grow_raw(void *items_p, size_t *capacity, size_t len, size_t extra, size_t elem_size)
{
    assert(elem_size > 0);
    if (extra > SIZE_MAX - len)
        return SHOAL_ENOMEM;
    size_t need = len + extra;
    if (need <= *capacity)
        return 0;
    size_t max_elems = SIZE_MAX / elem_size;
    if (need > max_elems)
        return SHOAL_ENOMEM;
    size_t grown = *capacity > max_elems / 2 ? max_elems : *capacity * 2;
    if (grown < VEC_MIN_CAPACITY)
        grown = VEC_MIN_CAPACITY < max_elems ? VEC_MIN_CAPACITY : max_elems;
    if (grown < need)
        grown = need;
    void *items;
    memcpy(&items, items_p, sizeof items);
    void *bigger = realloc(items, grown * elem_size);
    if (bigger == NULL)
        return SHOAL_ENOMEM;
    memcpy(items_p, &bigger, sizeof bigger);
    *capacity = grown;
    return 0;
}

void vec_sanity_raw(const void *items, size_t len, size_t capacity, size_t elem_size)
{
    (void)items;
    (void)len;
    (void)capacity;
    (void)elem_size;
    assert(len <= capacity);
    assert((items == NULL) == (capacity == 0));
    assert(elem_size > 0 && capacity <= SIZE_MAX / elem_size);
}
