/*
 * pagestore_map.c - linear probing hash map of page keys. Removal leaves a tombstone; the
 * table is rebuilt (dropping tombstones) when live + dead slots pass 3/4 of it.
 */
#include "pagestore_map.h"

#include <stdlib.h>
#include <string.h>

#include "shoal_err.h"

typedef struct s_slot {
    uint8_t key[PAGESTORE_PAGE_KEY_SIZE]; /* the page key, valid when value is a real value */
    void *value;                          /* NULL: empty; &s_tombstone: removed; else live */
} s_slot_t;

struct pagestore_map {
    s_slot_t *slots; /* capacity slots; capacity is a power of two */
    size_t capacity; /* slots allocated */
    size_t live;     /* slots holding a value */
    size_t used;     /* live + tombstones; kept <= 3/4 capacity */
};

static char s_tombstone;

/* The file key is already a uniform hash; mix in the page index so pages of one file spread. */
static uint64_t s_hash(const uint8_t *key)
{
    uint64_t a, b;
    memcpy(&a, key, 8);
    memcpy(&b, key + 16, 8);
    uint64_t h = a ^ (b * 0x9E3779B97F4A7C15ull);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static bool s_live(const s_slot_t *slot)
{
    return slot->value != NULL && slot->value != (void *)&s_tombstone;
}

pagestore_map_t *pagestore_map_new(void)
{
    pagestore_map_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return NULL;
    self->capacity = 64;
    self->slots = calloc(self->capacity, sizeof *self->slots);
    if (self->slots == NULL) {
        free(self);
        return NULL;
    }
    return self;
}

void pagestore_map_destroy(pagestore_map_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    free((*self_p)->slots);
    free(*self_p);
    *self_p = NULL;
}

/* Returns the slot holding key, or the first free slot on its probe path (a tombstone is
 * reused only when the key is absent). */
static s_slot_t *s_find(const pagestore_map_t *self, const uint8_t *key)
{
    size_t mask = self->capacity - 1;
    size_t index = (size_t)s_hash(key) & mask;
    s_slot_t *reuse = NULL;
    for (;;) {
        s_slot_t *slot = &self->slots[index];
        if (slot->value == NULL)
            return reuse != NULL ? reuse : slot;
        if (slot->value == (void *)&s_tombstone) {
            if (reuse == NULL)
                reuse = slot;
        } else if (memcmp(slot->key, key, PAGESTORE_PAGE_KEY_SIZE) == 0) {
            return slot;
        }
        index = (index + 1) & mask;
    }
}

/* Rebuilds the table with room for twice the live keys; fails with SHOAL_ENOMEM. */
static int s_grow(pagestore_map_t *self)
{
    size_t capacity = 64;
    while (capacity < self->live * 4)
        capacity *= 2;
    s_slot_t *slots = calloc(capacity, sizeof *slots);
    if (slots == NULL)
        return SHOAL_ENOMEM;
    s_slot_t *old = self->slots;
    size_t old_capacity = self->capacity;
    self->slots = slots;
    self->capacity = capacity;
    self->used = self->live;
    for (size_t i = 0; i < old_capacity; i++) {
        if (s_live(&old[i]))
            *s_find(self, old[i].key) = old[i];
    }
    free(old);
    return 0;
}

void *pagestore_map_get(const pagestore_map_t *self, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE])
{
    s_slot_t *slot = s_find(self, key);
    return s_live(slot) ? slot->value : NULL;
}

int pagestore_map_put(pagestore_map_t *self, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE],
                      void *value, void **old_out)
{
    if ((self->used + 1) * 4 > self->capacity * 3) {
        int rc = s_grow(self);
        if (rc < 0)
            return rc;
    }
    s_slot_t *slot = s_find(self, key);
    void *old = s_live(slot) ? slot->value : NULL;
    if (old == NULL) {
        if (slot->value == NULL)
            self->used++;
        self->live++;
        memcpy(slot->key, key, PAGESTORE_PAGE_KEY_SIZE);
    }
    slot->value = value;
    if (old_out != NULL)
        *old_out = old;
    return 0;
}

void *pagestore_map_remove(pagestore_map_t *self, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE])
{
    s_slot_t *slot = s_find(self, key);
    if (!s_live(slot))
        return NULL;
    void *value = slot->value;
    slot->value = &s_tombstone;
    self->live--;
    return value;
}

size_t pagestore_map_count(const pagestore_map_t *self)
{
    return self->live;
}

bool pagestore_map_next(const pagestore_map_t *self, size_t *cursor, const uint8_t **key_out,
                        void **value_out)
{
    while (*cursor < self->capacity) {
        s_slot_t *slot = &self->slots[(*cursor)++];
        if (s_live(slot)) {
            *key_out = slot->key;
            *value_out = slot->value;
            return true;
        }
    }
    return false;
}
