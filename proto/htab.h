/*
 * htab.h - the one hash table: byte-string keys (16-byte node ids, URIs, ...) to non-NULL
 * pointers, open addressing with linear probing, keyed by SipHash-2-4 (libsodium's
 * crypto_shorthash) under a random per-table key, so that keys chosen by peers cannot be made to
 * collide without knowing that key. Not thread safe: the owner locks.
 *
 * Invariants: capacity is 0 or a power of two >= HTAB_MIN_CAPACITY; count + tombstones <
 * capacity * 3 / 4 after every insert (so a probe always ends at an empty slot); every live
 * slot's hash is the SipHash of its key, and it lies on the probe path from hash & (capacity - 1)
 * with no empty slot in between; count is the number of live slots.
 */
#ifndef SHOAL_PROTO_HTAB_H
#define SHOAL_PROTO_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal_err.h"

#define HTAB_SEED_SIZE    16 /* bytes of a table's SipHash key (crypto_shorthash_KEYBYTES) */
#define HTAB_MIN_CAPACITY 16 /* smallest slot array */

typedef struct htab htab_t;

/* Returns an empty table sized for about `expected` keys without growing (0 is fine), with a
 * seed from randombytes, or NULL when out of memory. With copy_keys the table keeps its own copy
 * of every key; without, it borrows the caller's key bytes, which must stay valid and unchanged
 * while the entry is in the table (a key stored inside the value: member->id). Caller owns the
 * table; the table never owns the values. */
htab_t *htab_new(size_t expected, bool copy_keys);

/* htab_new with a given seed (deterministic layouts for tests and the simulator). Borrows
 * `seed`. */
htab_t *htab_new_seeded(size_t expected, bool copy_keys, const uint8_t seed[HTAB_SEED_SIZE]);

/* Frees *self_p (and its key copies, not the values) and sets it to NULL; safe on NULL. */
void htab_destroy(htab_t **self_p);

/* Maps `key` (key_len bytes) to `value` (not NULL). When the key was there, its value is
 * replaced and the old one goes to *old_value_p (when not NULL), and a borrowed key now points
 * at the new `key` bytes; otherwise *old_value_p gets NULL. Returns 0, or SHOAL_ENOMEM (table
 * unchanged). The caller keeps ownership of `value`. */
int htab_put(htab_t *self, const void *key, size_t key_len, void *value, void **old_value_p);

/* The value of `key`, or NULL. Borrowed: the table does not own it. */
void *htab_get(const htab_t *self, const void *key, size_t key_len);

/* Removes `key` and returns its value (now the caller's business), or NULL when it was not
 * there. Never allocates, never fails. */
void *htab_remove(htab_t *self, const void *key, size_t key_len);

/* Number of keys. */
size_t htab_count(const htab_t *self);

/*
 * Iterates: set *cursor to 0, then each call gives the next entry (key, its length and value,
 * each out-pointer may be NULL) and returns true, or false at the end. The order is the slot
 * order (unspecified). Removing the entry just returned (htab_remove) is allowed during the
 * walk; htab_put is not (it may rehash). Keys are borrowed until that entry is removed.
 */
bool htab_next(const htab_t *self, size_t *cursor, const void **key_p, size_t *key_len_p,
               void **value_p);

/* Removes every key (frees the copies), keeping the slot array. */
void htab_clear(htab_t *self);

/* Asserts the invariants above (debug builds only; O(capacity), rehashes every key). */
void htab_sanity(const htab_t *self);

#endif
