/*
 * pagestore_map.h - a small open-addressing hash map from page keys (24 bytes) to pointers,
 * used by the in-memory backend and by scans to see each page once. Not thread safe.
 */
#ifndef SHOAL_PAGESTORE_MAP_H
#define SHOAL_PAGESTORE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pagestore_backend.h"

typedef struct pagestore_map pagestore_map_t;

/* Returns an empty map or NULL when out of memory. Caller owns the result. */
pagestore_map_t *pagestore_map_new(void);

/* Frees *self_p (not the values) and sets it to NULL; safe on NULL. */
void pagestore_map_destroy(pagestore_map_t **self_p);

/* Returns the value stored for key, or NULL. Borrowed. */
void *pagestore_map_get(const pagestore_map_t *self, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE]);

/* Stores value (not NULL) for key; sets *old_out (if not NULL) to the value it replaced or
 * NULL. Returns 0 or SHOAL_ENOMEM. The map borrows value; copies the key. */
int pagestore_map_put(pagestore_map_t *self, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE],
                      void *value, void **old_out);

/* Removes key and returns its value, or NULL when absent. Caller gets the value back. */
void *pagestore_map_remove(pagestore_map_t *self, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE]);

/* Number of keys held. */
size_t pagestore_map_count(const pagestore_map_t *self);

/* Iterates: start with *cursor = 0; returns false at the end. Keys and values are borrowed;
 * removing the current key during iteration is allowed, inserting is not. */
bool pagestore_map_next(const pagestore_map_t *self, size_t *cursor, const uint8_t **key_out,
                        void **value_out);

#endif
