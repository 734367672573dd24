/*
 * test_hrw.c - placement: shares follow weights, a join or leave moves only ~1/N of the keys
 * and only to or from the changed member, and fixed known-answer vectors that other
 * implementations (Python client) must reproduce bit for bit.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hrw.h"

#define N_MEMBERS 100
#define N_KEYS    1000000

/* Deterministic ids: 16 bytes from a splitmix64 stream. */
static uint64_t s_splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void s_fill(uint8_t *out, size_t len, uint64_t *state)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = s_splitmix(state);
        for (size_t j = 0; j < 8 && i + j < len; j++)
            out[i + j] = (uint8_t)(v >> (8 * j));
    }
}

static void s_members(hrw_member_t *members, size_t n, uint64_t seed)
{
    static const uint64_t gib = 1ULL << 30;
    static const uint64_t weights[] = {100 * gib, 200 * gib, 400 * gib, 50 * gib};
    for (size_t i = 0; i < n; i++) {
        s_fill(members[i].id, 16, &seed);
        members[i].weight = weights[i % 4];
        members[i].live = true;
    }
}

Test(hrw, shares_follow_weights_and_churn_moves_little)
{
    static hrw_member_t members[N_MEMBERS + 1];
    static uint32_t share[N_MEMBERS + 1];
    s_members(members, N_MEMBERS + 1, 42);
    /* The newcomer and the leaver both have the mean weight, so each should move 1/N. */
    members[N_MEMBERS].weight = 187500ULL << 20; /* mean of 100,200,400,50 GiB = 187.5 GiB */
    size_t leaver = 7;
    members[leaver].weight = 187500ULL << 20;
    double total = 0;
    for (size_t i = 0; i < N_MEMBERS; i++)
        total += (double)members[i].weight;

    uint64_t seed = 7;
    size_t moved_join = 0, moved_leave = 0;
    for (size_t k = 0; k < N_KEYS; k++) {
        uint8_t uri_key[HRW_URI_KEY_LEN], key[HRW_RANGE_KEY_LEN];
        if (k % 64 == 0)
            s_fill(uri_key, HRW_URI_KEY_LEN, &seed);
        hrw_range_key(uri_key, k % 64, key);
        /* Score once, derive the owner before, after a join and after a leave. */
        size_t best = SIZE_MAX, second = SIZE_MAX;
        double best_s = -1, second_s = -1;
        for (size_t i = 0; i < N_MEMBERS; i++) {
            double s = hrw_score(members[i].id, members[i].weight, key, sizeof key);
            if (s > best_s) {
                second = best, second_s = best_s;
                best = i, best_s = s;
            } else if (s > second_s) {
                second = i, second_s = s;
            }
        }
        share[best]++;
        double joiner =
            hrw_score(members[N_MEMBERS].id, members[N_MEMBERS].weight, key, sizeof key);
        if (joiner > best_s)
            moved_join++;
        if (best == leaver) {
            moved_leave++;
            cr_assert_neq(second, SIZE_MAX);
        }
        if (k % 100000 == 0) { /* spot-check hrw_owners against the manual ranking */
            size_t owners[3];
            cr_assert_eq(hrw_owners(members, N_MEMBERS, key, sizeof key, 2, owners), 2);
            cr_assert_eq(owners[0], best);
            cr_assert_eq(owners[1], second);
        }
    }
    for (size_t i = 0; i < N_MEMBERS; i++) {
        double expected = (double)members[i].weight / total * N_KEYS;
        cr_expect(share[i] > expected * 0.9 && share[i] < expected * 1.1,
                  "member %zu weight %llu: %u keys, expected %.0f", i,
                  (unsigned long long)members[i].weight, share[i], expected);
    }
    double limit = 1.2 / N_MEMBERS * N_KEYS;
    cr_expect((double)moved_join <= limit, "join moved %zu keys (limit %.0f)", moved_join, limit);
    cr_expect((double)moved_leave <= limit, "leave moved %zu keys (limit %.0f)", moved_leave,
              limit);
    cr_expect(moved_join > 0 && moved_leave > 0);
}

/* With R owners, a join only ever adds the newcomer to an owner list (dropping the last), and a
 * leave only removes the leaver (the next one moves up): nothing else moves. */
Test(hrw, churn_with_replicas_touches_only_changed_member)
{
    hrw_member_t members[21];
    s_members(members, 21, 99);
    uint64_t seed = 3;
    for (size_t k = 0; k < 20000; k++) {
        uint8_t key[HRW_RANGE_KEY_LEN];
        s_fill(key, sizeof key, &seed);
        size_t before[3], after[3];
        members[20].live = false;
        cr_assert_eq(hrw_owners(members, 21, key, sizeof key, 3, before), 3);
        members[20].live = true; /* join of member 20 */
        cr_assert_eq(hrw_owners(members, 21, key, sizeof key, 3, after), 3);
        size_t j = 0;
        for (size_t i = 0; i < 3; i++) {
            if (after[i] == 20)
                continue;
            cr_assert_eq(after[i], before[j], "key %zu: owner %zu changed", k, i);
            j++;
        }
        members[20].live = false;
        members[before[0]].live = false; /* leave of the first owner */
        cr_assert_eq(hrw_owners(members, 21, key, sizeof key, 3, after), 3);
        cr_assert_eq(after[0], before[1]);
        cr_assert_eq(after[1], before[2]);
        members[before[0]].live = true;
    }
}

Test(hrw, dead_members_never_own_and_r_is_bounded)
{
    hrw_member_t members[4];
    s_members(members, 4, 5);
    members[1].live = false;
    members[3].live = false;
    uint8_t key[HRW_RANGE_KEY_LEN] = {0};
    size_t owners[HRW_R_MAX];
    cr_assert_eq(hrw_owners(members, 4, key, sizeof key, 3, owners), 2);
    cr_assert(owners[0] == 0 || owners[0] == 2);
    cr_assert(owners[1] == 0 || owners[1] == 2);
    cr_assert_eq(hrw_owners(members, 4, key, sizeof key, 0, owners), 0);
    cr_assert_eq(hrw_owners(members, 0, key, sizeof key, 3, owners), 0);
}

/* Ties in score (equal ids cannot happen, equal scores can with weight 0) go to the smaller id. */
Test(hrw, ties_broken_by_smaller_id)
{
    hrw_member_t members[3];
    memset(members, 0, sizeof members);
    for (int i = 0; i < 3; i++) {
        members[i].id[0] = (uint8_t)(3 - i);
        members[i].live = true; /* weight 0: every score is exactly 0 */
    }
    uint8_t key[4] = {1, 2, 3, 4};
    size_t owners[3];
    cr_assert_eq(hrw_owners(members, 3, key, sizeof key, 3, owners), 3);
    cr_assert_eq(owners[0], 2);
    cr_assert_eq(owners[1], 1);
    cr_assert_eq(owners[2], 0);
}

/*
 * Known answers (placement version 2). Inputs: member i (0..4) has id bytes 16*i .. 16*i+15
 * (id[j] = 16*i + j) and weight (i + 1) GiB; the uri key is BLAKE2b-128 of the normalised uri
 * URI below, and range index r gives key uri_key || be64(r). gossip/hrw_ref.py (pure Python)
 * prints the same. The vectors pin hrw_uri_key, hrw_hash, hrw_score's u mapping and the
 * ordering; they changed on purpose with the placement version (version 1 hashed the file key).
 */
#define KAT_URI "s3://datasets/imagenet-full/train/n01440764/img 0001.JPEG"

static void s_hex(const uint8_t *bytes, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", bytes[i]);
}

Test(hrw, uri_key_known_answers)
{
    uint8_t uri_key[HRW_URI_KEY_LEN];
    char hex[2 * HRW_URI_KEY_LEN + 1];
    hrw_uri_key(KAT_URI, uri_key);
    s_hex(uri_key, sizeof uri_key, hex);
    cr_assert_str_eq(hex, "b31d9e112c8583129c78b39ee72e6b42");
    hrw_uri_key("file:///data/caf\xc3\xa9/%3F.bin", uri_key); /* non-ASCII, a kept escape */
    s_hex(uri_key, sizeof uri_key, hex);
    cr_assert_str_eq(hex, "6ea820433b1c894e912343fe3f39d12f");
    /* hrw_uri_range_key is the uri key followed by the big-endian range index */
    uint8_t key[HRW_RANGE_KEY_LEN], expect[HRW_RANGE_KEY_LEN];
    hrw_uri_key(KAT_URI, uri_key);
    hrw_range_key(uri_key, 0x0102030405060708ULL, expect);
    hrw_uri_range_key(KAT_URI, 0x0102030405060708ULL, key);
    cr_assert_arr_eq(key, expect, sizeof key);
    cr_assert_arr_eq(key, uri_key, HRW_URI_KEY_LEN);
    cr_assert_eq(key[16], 1);
    cr_assert_eq(key[23], 8);
    cr_assert_eq(HRW_PLACEMENT_VERSION, 2);
}

Test(hrw, known_answer_vectors)
{
    hrw_member_t members[5];
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < 16; j++)
            members[i].id[j] = (uint8_t)(16 * i + j);
        members[i].weight = (uint64_t)(i + 1) << 30;
        members[i].live = true;
    }
    uint8_t uri_key[HRW_URI_KEY_LEN];
    hrw_uri_key(KAT_URI, uri_key);
    uint8_t key[HRW_RANGE_KEY_LEN];
    hrw_range_key(uri_key, 0, key);
    cr_assert_eq(key[16], 0);
    hrw_range_key(uri_key, 0x0102030405060708ULL, key);
    cr_assert_eq(key[16], 1);
    cr_assert_eq(key[23], 8);

    hrw_uri_range_key(KAT_URI, 0, key);
    uint64_t h = hrw_hash(members[0].id, key, sizeof key);
    if (getenv("HRW_PRINT_VECTORS")) {
        printf("hash(m0, r0) = 0x%016llx\n", (unsigned long long)h);
        for (uint64_t r = 0; r < 8; r++) {
            size_t owners[3];
            hrw_uri_range_key(KAT_URI, r, key);
            hrw_owners(members, 5, key, sizeof key, 3, owners);
            printf("range %llu: %zu %zu %zu  score0 %.17g\n", (unsigned long long)r, owners[0],
                   owners[1], owners[2], hrw_score(members[0].id, members[0].weight, key, 24));
        }
    }
    cr_assert_eq(h, 0x736ada7dbd2b2769ULL);
    static const size_t expected[8][3] = {{2, 3, 1}, {1, 2, 3}, {1, 4, 0}, {4, 2, 3},
                                          {0, 1, 4}, {4, 2, 0}, {4, 1, 2}, {3, 2, 4}};
    hrw_uri_range_key(KAT_URI, 0, key);
    cr_assert_float_eq(hrw_score(members[0].id, members[0].weight, key, sizeof key),
                       1347868058.1715722, 1e-3);
    for (uint64_t r = 0; r < 8; r++) {
        size_t owners[3];
        hrw_uri_range_key(KAT_URI, r, key);
        cr_assert_eq(hrw_owners(members, 5, key, sizeof key, 3, owners), 3);
        for (int i = 0; i < 3; i++)
            cr_assert_eq(owners[i], expected[r][i], "range %llu owner %d", (unsigned long long)r,
                         i);
    }
}
