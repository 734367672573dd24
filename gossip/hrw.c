/*
 * hrw.c - weighted rendezvous hashing: score every live member for a key, keep the top R.
 *
 * The hash is libsodium's crypto_shorthash (SipHash-2-4, 64-bit) under a fixed key, over the
 * member id followed by the key bytes. The score -w/ln(u) is the weighted form of rendezvous
 * hashing (Schindelhauer & Schomaker): a member's share of keys is w / sum(w), and a change of
 * one member moves only keys to or from that member. Range keys come from the normalised uri
 * (BLAKE2b-128, libsodium crypto_generichash) and the range index: placement version 2.
 */
#include "hrw.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#include <sodium.h>

const uint8_t hrw_hash_key[16] = {'s', 'h', 'o', 'a', 'l', '-', 'h', 'r',
                                  'w', '-', 'v', '1', 0,   0,   0,   0};

void hrw_uri_key(const char *normalised_uri, uint8_t out[HRW_URI_KEY_LEN])
{
    assert(normalised_uri != NULL && out != NULL);
    crypto_generichash(out, HRW_URI_KEY_LEN, (const unsigned char *)normalised_uri,
                       strlen(normalised_uri), NULL, 0);
}

void hrw_range_key(const uint8_t uri_key[HRW_URI_KEY_LEN], uint64_t range_index,
                   uint8_t out[HRW_RANGE_KEY_LEN])
{
    memcpy(out, uri_key, HRW_URI_KEY_LEN);
    for (int i = 0; i < 8; i++)
        out[HRW_URI_KEY_LEN + i] = (uint8_t)(range_index >> (56 - 8 * i));
}

void hrw_uri_range_key(const char *normalised_uri, uint64_t range_index,
                       uint8_t out[HRW_RANGE_KEY_LEN])
{
    uint8_t uri_key[HRW_URI_KEY_LEN];
    hrw_uri_key(normalised_uri, uri_key);
    hrw_range_key(uri_key, range_index, out);
}

uint64_t hrw_hash(const uint8_t id[HRW_ID_LEN], const uint8_t *key, size_t key_len)
{
    uint8_t input[HRW_ID_LEN + HRW_KEY_MAX];
    uint8_t out[crypto_shorthash_BYTES];
    if (key_len > HRW_KEY_MAX)
        key_len = HRW_KEY_MAX;
    memcpy(input, id, HRW_ID_LEN);
    if (key_len > 0)
        memcpy(input + HRW_ID_LEN, key, key_len);
    crypto_shorthash(out, input, HRW_ID_LEN + key_len, hrw_hash_key);
    /* crypto_shorthash writes the SipHash output little-endian, as the reference does. */
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = (h << 8) | out[i];
    return h;
}

/*
 * u must be strictly inside (0, 1) or ln(u) is 0 or -inf. (h + 0.5) / 2^64 is not exact in a
 * double (53-bit mantissa) and rounds to 1.0 for the largest h, so we keep the top 52 bits:
 * x + 0.5 with x < 2^52 needs at most 53 significant bits, and dividing by 2^52 is exact.
 */
double hrw_score(const uint8_t id[HRW_ID_LEN], uint64_t weight, const uint8_t *key, size_t key_len)
{
    uint64_t h = hrw_hash(id, key, key_len);
    double u = ((double)(h >> 12) + 0.5) / 4503599627370496.0; /* 2^52 */
    return -(double)weight / log(u);
}

/* Is candidate a (score sa) ranked before candidate b (score sb)? */
static bool s_before(double sa, const uint8_t *ida, double sb, const uint8_t *idb)
{
    if (sa != sb)
        return sa > sb;
    return memcmp(ida, idb, HRW_ID_LEN) < 0;
}

size_t hrw_owners(const hrw_member_t *members, size_t n, const uint8_t *key, size_t key_len,
                  size_t r, size_t *out_indexes)
{
    double scores[HRW_R_MAX];
    size_t count = 0;
    assert(r <= HRW_R_MAX);
    if (r > HRW_R_MAX)
        r = HRW_R_MAX;
    if (r == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!members[i].live)
            continue;
        double s = hrw_score(members[i].id, members[i].weight, key, key_len);
        if (count == r &&
            !s_before(s, members[i].id, scores[r - 1], members[out_indexes[r - 1]].id))
            continue;
        /* Insertion into the sorted top list (r is small). */
        size_t pos = count < r ? count : r - 1;
        while (pos > 0 &&
               s_before(s, members[i].id, scores[pos - 1], members[out_indexes[pos - 1]].id)) {
            scores[pos] = scores[pos - 1];
            out_indexes[pos] = out_indexes[pos - 1];
            pos--;
        }
        scores[pos] = s;
        out_indexes[pos] = i;
        if (count < r)
            count++;
    }
    return count;
}
