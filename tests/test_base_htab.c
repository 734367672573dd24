/*
 * test_base_htab.c - the hash table (proto/htab.h): get/put/replace/remove, many keys with
 * deletes and re-inserts (tombstone reuse and rehash), 16-byte binary ids with NULs, borrowed
 * keys, removal during a walk, seeds (same seed same layout, different seeds different hashes).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "htab.h"

static void *s_value(uintptr_t n)
{
    return (void *)n;
}

Test(htab, put_get_replace_remove)
{
    htab_t *t = htab_new(0, true);
    cr_assert_not_null(t);
    cr_assert_null(htab_get(t, "a", 1));
    cr_assert_null(htab_remove(t, "a", 1));
    void *old = s_value(99);
    cr_assert_eq(htab_put(t, "a", 1, s_value(1), &old), 0);
    cr_assert_null(old);
    cr_assert_eq(htab_put(t, "ab", 2, s_value(2), NULL), 0);
    cr_assert_eq(htab_put(t, "", 0, s_value(3), NULL), 0); /* the empty key is a key */
    cr_assert_eq(htab_count(t), 3);
    cr_assert_eq((uintptr_t)htab_get(t, "a", 1), 1);
    cr_assert_eq((uintptr_t)htab_get(t, "ab", 2), 2);
    cr_assert_eq((uintptr_t)htab_get(t, "", 0), 3);
    cr_assert_null(htab_get(t, "abc", 3));
    cr_assert_null(htab_get(t, "ab", 1) == s_value(2) ? s_value(1) : NULL);
    cr_assert_eq(htab_put(t, "a", 1, s_value(10), &old), 0);
    cr_assert_eq((uintptr_t)old, 1);
    cr_assert_eq(htab_count(t), 3);
    cr_assert_eq((uintptr_t)htab_get(t, "a", 1), 10);
    cr_assert_eq((uintptr_t)htab_remove(t, "a", 1), 10);
    cr_assert_null(htab_get(t, "a", 1));
    cr_assert_null(htab_remove(t, "a", 1));
    cr_assert_eq(htab_count(t), 2);
    htab_sanity(t);
    htab_clear(t);
    cr_assert_eq(htab_count(t), 0);
    cr_assert_null(htab_get(t, "ab", 2));
    htab_sanity(t);
    htab_destroy(&t);
    cr_assert_null(t);
    htab_destroy(&t);
}

Test(htab, many_keys_deletes_and_reinserts)
{
    htab_t *t = htab_new(0, true);
    char key[64];
    const uintptr_t n = 20000;
    for (uintptr_t i = 0; i < n; i++) {
        int len = snprintf(key, sizeof key, "s3://bucket/train/shard-%06lu.tar", (unsigned long)i);
        cr_assert_eq(htab_put(t, key, (size_t)len, s_value(i + 1), NULL), 0);
    }
    cr_assert_eq(htab_count(t), n);
    htab_sanity(t);
    /* delete the odd ones, check, re-insert half of them with new values */
    for (uintptr_t i = 1; i < n; i += 2) {
        int len = snprintf(key, sizeof key, "s3://bucket/train/shard-%06lu.tar", (unsigned long)i);
        cr_assert_eq((uintptr_t)htab_remove(t, key, (size_t)len), i + 1);
    }
    cr_assert_eq(htab_count(t), n / 2);
    htab_sanity(t);
    for (uintptr_t i = 0; i < n; i++) {
        int len = snprintf(key, sizeof key, "s3://bucket/train/shard-%06lu.tar", (unsigned long)i);
        void *v = htab_get(t, key, (size_t)len);
        if (i % 2)
            cr_assert_null(v, "%lu", (unsigned long)i);
        else
            cr_assert_eq((uintptr_t)v, i + 1);
    }
    for (uintptr_t i = 1; i < n; i += 4) {
        int len = snprintf(key, sizeof key, "s3://bucket/train/shard-%06lu.tar", (unsigned long)i);
        cr_assert_eq(htab_put(t, key, (size_t)len, s_value(n + i), NULL), 0);
    }
    cr_assert_eq(htab_count(t), n / 2 + n / 4);
    htab_sanity(t);
    /* churn: insert and delete a fresh key many times; tombstones must not fill the table */
    for (uintptr_t i = 0; i < 100000; i++) {
        int len = snprintf(key, sizeof key, "churn-%lu", (unsigned long)i);
        cr_assert_eq(htab_put(t, key, (size_t)len, s_value(1), NULL), 0);
        cr_assert_eq((uintptr_t)htab_remove(t, key, (size_t)len), 1);
    }
    cr_assert_eq(htab_count(t), n / 2 + n / 4);
    htab_sanity(t);
    for (uintptr_t i = 1; i < n; i += 4) {
        int len = snprintf(key, sizeof key, "s3://bucket/train/shard-%06lu.tar", (unsigned long)i);
        cr_assert_eq((uintptr_t)htab_get(t, key, (size_t)len), n + i);
    }
    htab_destroy(&t);
}

Test(htab, binary_ids_and_borrowed_keys)
{
    /* 16-byte ids as gossip uses them, with NULs inside, keys borrowed from the values */
    struct member {
        uint8_t id[16];
        int n;
    } members[300];
    htab_t *t = htab_new(300, false);
    for (int i = 0; i < 300; i++) {
        memset(members[i].id, 0, 16);
        members[i].id[15] = (uint8_t)i;
        members[i].id[3] = (uint8_t)(i >> 8);
        members[i].n = i;
        cr_assert_eq(htab_put(t, members[i].id, 16, &members[i], NULL), 0);
    }
    htab_sanity(t);
    uint8_t probe[16] = {0};
    probe[15] = 42;
    struct member *m = htab_get(t, probe, 16);
    cr_assert_not_null(m);
    cr_assert_eq(m->n, 42);
    cr_assert_null(htab_get(t, probe, 15)); /* the length is part of the key */
    htab_destroy(&t);
}

Test(htab, removing_during_a_walk)
{
    htab_t *t = htab_new(0, true);
    char key[16];
    for (uintptr_t i = 0; i < 1000; i++) {
        int len = snprintf(key, sizeof key, "k%lu", (unsigned long)i);
        cr_assert_eq(htab_put(t, key, (size_t)len, s_value(i + 1), NULL), 0);
    }
    size_t cursor = 0, seen = 0;
    const void *k;
    size_t k_len;
    void *v;
    uint64_t sum = 0;
    while (htab_next(t, &cursor, &k, &k_len, &v)) {
        seen++;
        sum += (uintptr_t)v;
        if ((uintptr_t)v % 2 == 0) {
            char copy[16];
            memcpy(copy, k, k_len); /* k is freed by the remove */
            cr_assert_eq(htab_remove(t, copy, k_len), v);
        }
    }
    cr_assert_eq(seen, 1000);
    cr_assert_eq(sum, 1000 * 1001 / 2);
    cr_assert_eq(htab_count(t), 500);
    cursor = 0;
    seen = 0;
    while (htab_next(t, &cursor, NULL, NULL, &v)) {
        cr_assert_eq((uintptr_t)v % 2, 1);
        seen++;
    }
    cr_assert_eq(seen, 500);
    htab_sanity(t);
    htab_destroy(&t);
}

Test(htab, seeds)
{
    uint8_t seed_a[HTAB_SEED_SIZE] = {1}, seed_b[HTAB_SEED_SIZE] = {2};
    htab_t *a1 = htab_new_seeded(0, true, seed_a);
    htab_t *a2 = htab_new_seeded(0, true, seed_a);
    htab_t *b = htab_new_seeded(0, true, seed_b);
    char key[16];
    for (uintptr_t i = 0; i < 12; i++) {
        int len = snprintf(key, sizeof key, "k%lu", (unsigned long)i);
        cr_assert_eq(htab_put(a1, key, (size_t)len, s_value(i + 1), NULL), 0);
        cr_assert_eq(htab_put(a2, key, (size_t)len, s_value(i + 1), NULL), 0);
        cr_assert_eq(htab_put(b, key, (size_t)len, s_value(i + 1), NULL), 0);
    }
    /* the same seed gives the same walk order; another seed (almost surely) another */
    size_t c1 = 0, c2 = 0, cb = 0;
    void *v1, *v2, *vb;
    bool differs = false;
    while (htab_next(a1, &c1, NULL, NULL, &v1)) {
        cr_assert(htab_next(a2, &c2, NULL, NULL, &v2));
        cr_assert(htab_next(b, &cb, NULL, NULL, &vb));
        cr_assert_eq(v1, v2);
        differs |= v1 != vb;
    }
    cr_assert(differs);
    htab_destroy(&a1);
    htab_destroy(&a2);
    htab_destroy(&b);
}
