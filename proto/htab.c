/*
 * htab.c - open-addressing hash table with SipHash-2-4 keys (htab.h). Deletes leave tombstones
 * (so that removing during a walk is safe); a grow rehashes and drops them.
 */
#include "htab.h"

#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

typedef struct s_slot {
    const void *key; /* NULL: never used; s_tombstone: removed; else the key bytes */
    size_t key_len;  /* bytes of key */
    uint64_t hash;   /* SipHash of the key under the table's seed */
    void *value;     /* not NULL while live */
} s_slot_t;

struct htab {
    s_slot_t *slots;              /* capacity slots (NULL when capacity is 0) */
    size_t capacity;              /* 0 or a power of two */
    size_t count;                 /* live slots */
    size_t tombstones;            /* removed slots not yet reclaimed */
    bool copy_keys;               /* keys are the table's own copies */
    uint8_t seed[HTAB_SEED_SIZE]; /* SipHash key */
};

static const char s_tombstone_byte = 0;
static const void *const s_tombstone = &s_tombstone_byte; /* marks a removed slot */

static bool s_live(const s_slot_t *slot)
{
    return slot->key != NULL && slot->key != s_tombstone;
}

static uint64_t s_hash(const htab_t *self, const void *key, size_t key_len)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, key, key_len, self->seed);
    uint64_t hash;
    memcpy(&hash, out, sizeof hash);
    return hash;
}

/* The smallest power-of-two capacity that holds `count` keys under the 3/4 load bound. */
static size_t s_capacity_for(size_t count)
{
    size_t capacity = HTAB_MIN_CAPACITY;
    while (capacity / 4 * 3 <= count) {
        if (capacity > SIZE_MAX / 2 / sizeof(s_slot_t))
            return 0;
        capacity *= 2;
    }
    return capacity;
}

htab_t *htab_new_seeded(size_t expected, bool copy_keys, const uint8_t seed[HTAB_SEED_SIZE])
{
    htab_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return NULL;
    self->copy_keys = copy_keys;
    memcpy(self->seed, seed, HTAB_SEED_SIZE);
    if (expected > 0) {
        size_t capacity = s_capacity_for(expected);
        self->slots = capacity ? calloc(capacity, sizeof *self->slots) : NULL;
        if (self->slots == NULL) {
            free(self);
            return NULL;
        }
        self->capacity = capacity;
    }
    return self;
}

htab_t *htab_new(size_t expected, bool copy_keys)
{
    uint8_t seed[HTAB_SEED_SIZE];
    if (sodium_init() < 0)
        return NULL;
    randombytes_buf(seed, sizeof seed);
    return htab_new_seeded(expected, copy_keys, seed);
}

static void s_free_key(htab_t *self, s_slot_t *slot)
{
    if (self->copy_keys && s_live(slot))
        free((void *)slot->key);
}

void htab_clear(htab_t *self)
{
    for (size_t i = 0; i < self->capacity; i++)
        s_free_key(self, &self->slots[i]);
    if (self->slots)
        memset(self->slots, 0, self->capacity * sizeof *self->slots);
    self->count = 0;
    self->tombstones = 0;
}

void htab_destroy(htab_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    htab_t *self = *self_p;
    htab_clear(self);
    free(self->slots);
    sodium_memzero(self->seed, sizeof self->seed);
    free(self);
    *self_p = NULL;
}

/* The live slot holding `key`, or NULL. */
static s_slot_t *s_find(const htab_t *self, const void *key, size_t key_len, uint64_t hash)
{
    if (self->capacity == 0)
        return NULL;
    size_t mask = self->capacity - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        s_slot_t *slot = &self->slots[i];
        if (slot->key == NULL)
            return NULL;
        if (slot->key != s_tombstone && slot->hash == hash && slot->key_len == key_len &&
            memcmp(slot->key, key, key_len) == 0)
            return slot;
    }
}

/* Moves every live slot into a new array of `capacity` slots, dropping the tombstones. */
static int s_rehash(htab_t *self, size_t capacity)
{
    s_slot_t *slots = calloc(capacity, sizeof *slots);
    if (slots == NULL)
        return SHOAL_ENOMEM;
    size_t mask = capacity - 1;
    for (size_t i = 0; i < self->capacity; i++) {
        s_slot_t *old = &self->slots[i];
        if (!s_live(old))
            continue;
        size_t j = (size_t)old->hash & mask;
        while (slots[j].key != NULL)
            j = (j + 1) & mask;
        slots[j] = *old;
    }
    free(self->slots);
    self->slots = slots;
    self->capacity = capacity;
    self->tombstones = 0;
    return 0;
}

int htab_put(htab_t *self, const void *key, size_t key_len, void *value, void **old_value_p)
{
    assert(value != NULL);
    if (old_value_p)
        *old_value_p = NULL;
    uint64_t hash = s_hash(self, key, key_len);
    s_slot_t *slot = s_find(self, key, key_len, hash);
    if (slot) {
        if (old_value_p)
            *old_value_p = slot->value;
        slot->value = value;
        if (!self->copy_keys)
            slot->key = key;
        return 0;
    }
    /* grow (or just sweep the tombstones) before the used slots would pass 3/4 */
    if (self->capacity == 0 || (self->count + self->tombstones + 1) > self->capacity / 4 * 3) {
        size_t capacity = s_capacity_for(self->count + 1);
        if (capacity == 0 || s_rehash(self, capacity) < 0)
            return SHOAL_ENOMEM;
    }
    const void *stored = key;
    if (self->copy_keys) {
        void *copy = malloc(key_len ? key_len : 1);
        if (copy == NULL)
            return SHOAL_ENOMEM;
        memcpy(copy, key, key_len);
        stored = copy;
    }
    size_t mask = self->capacity - 1;
    size_t i = (size_t)hash & mask;
    while (s_live(&self->slots[i]))
        i = (i + 1) & mask;
    if (self->slots[i].key == s_tombstone)
        self->tombstones--;
    self->slots[i] = (s_slot_t){stored, key_len, hash, value};
    self->count++;
    return 0;
}

void *htab_get(const htab_t *self, const void *key, size_t key_len)
{
    if (self->count == 0)
        return NULL;
    s_slot_t *slot = s_find(self, key, key_len, s_hash(self, key, key_len));
    return slot ? slot->value : NULL;
}

void *htab_remove(htab_t *self, const void *key, size_t key_len)
{
    if (self->count == 0)
        return NULL;
    s_slot_t *slot = s_find(self, key, key_len, s_hash(self, key, key_len));
    if (slot == NULL)
        return NULL;
    void *value = slot->value;
    s_free_key(self, slot);
    slot->key = s_tombstone;
    slot->key_len = 0;
    slot->value = NULL;
    self->count--;
    self->tombstones++;
    return value;
}

size_t htab_count(const htab_t *self)
{
    return self->count;
}

bool htab_next(const htab_t *self, size_t *cursor, const void **key_p, size_t *key_len_p,
               void **value_p)
{
    for (size_t i = *cursor; i < self->capacity; i++) {
        const s_slot_t *slot = &self->slots[i];
        if (!s_live(slot))
            continue;
        if (key_p)
            *key_p = slot->key;
        if (key_len_p)
            *key_len_p = slot->key_len;
        if (value_p)
            *value_p = slot->value;
        *cursor = i + 1;
        return true;
    }
    *cursor = self->capacity;
    return false;
}

void htab_sanity(const htab_t *self)
{
#ifndef NDEBUG
    assert(self->capacity == 0 ||
           (self->capacity >= HTAB_MIN_CAPACITY && (self->capacity & (self->capacity - 1)) == 0));
    assert((self->slots == NULL) == (self->capacity == 0));
    assert(self->capacity == 0 || self->count + self->tombstones < self->capacity);
    size_t live = 0, dead = 0;
    size_t mask = self->capacity - 1;
    for (size_t i = 0; i < self->capacity; i++) {
        const s_slot_t *slot = &self->slots[i];
        if (slot->key == s_tombstone) {
            dead++;
            continue;
        }
        if (slot->key == NULL)
            continue;
        live++;
        assert(slot->value != NULL);
        assert(slot->hash == s_hash(self, slot->key, slot->key_len));
        for (size_t j = (size_t)slot->hash & mask; j != i; j = (j + 1) & mask)
            assert(self->slots[j].key != NULL); /* no empty slot on the probe path */
    }
    assert(live == self->count);
    assert(dead == self->tombstones);
#else
    (void)self;
#endif
}
