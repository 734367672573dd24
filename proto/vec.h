/*
 * vec.h - the one growable array, type-generic through macros over one overflow-checked growth
 * function (the shape of kvec/stb_ds, without their hidden headers). A vector is a plain struct
 * the caller embeds: VEC(member_t *) members; vec_init(&members); vec_push(&members, m) ...
 * vec_fini(&members).
 *
 * Invariants: len <= capacity; items == NULL exactly when capacity == 0; capacity * element
 * size never overflows size_t. Growth doubles (at least VEC_MIN_CAPACITY), so n pushes cost
 * O(n) copies in all. Not thread safe. The vector owns `items`; it never owns what the items
 * point to.
 */
#ifndef SHOAL_PROTO_VEC_H
#define SHOAL_PROTO_VEC_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "shoal_err.h"

#define VEC_MIN_CAPACITY 8 /* first allocation, in elements */

/* A vector of T: declare as `VEC(T) name;` or `typedef VEC(T) name_vec_t;`. */
#define VEC(T)                                                                                     \
    struct {                                                                                       \
        T *items;        /* capacity elements, the first len in use; NULL when capacity is 0 */    \
        size_t len;      /* elements in use */                                                     \
        size_t capacity; /* elements allocated */                                                  \
    }

/* Makes room for `extra` more elements beyond `len` in the array at *items_p (a T ** passed as
 * void *), of `capacity` elements of `elem_size` bytes. Returns 0 or SHOAL_ENOMEM (out of
 * memory, or len + extra elements would overflow size_t bytes); on failure nothing changes.
 * Used through vec_reserve, and directly only by an array whose fields are a public API of
 * their own names (store's ufs_list_t). */
int vec_grow_raw(void *items_p, size_t *capacity, size_t len, size_t extra, size_t elem_size);

/* Sets an empty vector (no allocation). */
#define vec_init(v) ((v)->items = NULL, (v)->len = 0, (v)->capacity = 0)

/* Frees the array (not what its items point to) and leaves an empty vector; safe to repeat. */
#define vec_fini(v) (free((v)->items), vec_init(v))

/* Ensures room for `extra` more elements: 0 or SHOAL_ENOMEM (nothing changed). */
#define vec_reserve(v, extra)                                                                      \
    ((v)->len + (size_t)(extra) <= (v)->capacity && (v)->len + (size_t)(extra) >= (v)->len         \
         ? 0                                                                                       \
         : vec_grow_raw(&(v)->items, &(v)->capacity, (v)->len, (size_t)(extra),                    \
                        sizeof *(v)->items))

/* Appends `value`: 0 or SHOAL_ENOMEM (the vector unchanged). */
#define vec_push(v, value)                                                                         \
    (vec_reserve((v), 1) < 0 ? SHOAL_ENOMEM : ((v)->items[(v)->len++] = (value), 0))

/* Appends a zeroed element and evaluates to a pointer to it, or NULL when out of memory. */
#define vec_push_zero(v)                                                                           \
    (vec_reserve((v), 1) < 0 ? NULL : memset(&(v)->items[(v)->len++], 0, sizeof *(v)->items))

/* Appends `count` elements copied from `src`: 0 or SHOAL_ENOMEM (the vector unchanged). */
#define vec_append(v, src, count)                                                                  \
    (vec_reserve((v), (count)) < 0                                                                 \
         ? SHOAL_ENOMEM                                                                            \
         : (memcpy((v)->items + (v)->len, (src), (size_t)(count) * sizeof *(v)->items),            \
            (v)->len += (size_t)(count), 0))

/* The last element (the vector must not be empty), and removing it. */
#define vec_last(v) ((v)->items[(v)->len - 1])
#define vec_pop(v)  ((v)->items[--(v)->len])

/* Removes element i by moving the last one into its place: O(1), order not kept. */
#define vec_swap_remove(v, i) ((v)->items[(i)] = (v)->items[--(v)->len])

/* Removes element i keeping the order of the rest: O(len - i). */
#define vec_remove(v, i)                                                                           \
    (memmove((v)->items + (i), (v)->items + (i) + 1,                                               \
             ((v)->len - (size_t)(i)-1) * sizeof *(v)->items),                                     \
     (v)->len--)

/* Empties the vector, keeping its allocation. */
#define vec_clear(v) ((v)->len = 0)

/* Asserts the invariants above (debug builds only). */
#define vec_sanity(v) vec_sanity_raw((v)->items, (v)->len, (v)->capacity, sizeof *(v)->items)
void vec_sanity_raw(const void *items, size_t len, size_t capacity, size_t elem_size);

#endif
