/*
 * hrw.h - placement: weighted rendezvous (highest random weight) hashing.
 *
 * Decides which members own a range key, and builds range keys from normalised URIs. Pure
 * functions, no state, no allocation: the client links this alone (library shoal_hrw, depends
 * only on libsodium). The exact hash is written down in gossip/README.md so that every process
 * and language computes the same owners.
 */
#ifndef SHOAL_HRW_H
#define SHOAL_HRW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HRW_ID_LEN        16  /* bytes of a member id */
#define HRW_KEY_MAX       256 /* longest key hrw_score accepts (a range key is 24 bytes) */
#define HRW_URI_KEY_LEN   16  /* bytes of a uri key: BLAKE2b-128 of the normalised uri */
#define HRW_RANGE_KEY_LEN 24  /* 16-byte uri key + 8-byte big-endian range index */

/* The placement scheme this build computes, carried in gossip (SYNC, JOIN) and in VIEW replies;
 * a peer or view with another one is refused, never routed with. 1: a range's key was the
 * versioned file key BLAKE2b-128(uri "\0" version) || be64(range index), so no read could be
 * routed before a stat. 2: the key is the uri key of the normalised uri || be64(range index)
 * (hrw_uri_key, hrw_uri_range_key); the version stays in the store's page key. A message
 * without the field comes from a build before placement versions, i.e. version 1. */
#define HRW_PLACEMENT_VERSION 2
#define HRW_PLACEMENT_LEGACY  1 /* what an absent placement field means */

/* The fixed SipHash-2-4 key of placement: the ASCII bytes "shoal-hrw-v1\0\0\0\0". Changing it
 * moves every range in every cluster, so it is part of the protocol. */
extern const uint8_t hrw_hash_key[16];

/* One candidate owner. The caller owns the array; hrw only reads it. */
typedef struct hrw_member {
    uint8_t id[HRW_ID_LEN]; /* node id (random 16 bytes, stable across restarts) */
    uint64_t weight;        /* capacity in bytes; 0 never owns while a weighted member lives */
    bool live;              /* alive or suspect: only live members own ranges */
} hrw_member_t;

/* The uri key of a file: BLAKE2b-128 (libsodium crypto_generichash, no key, 16-byte output)
 * of the bytes of `normalised_uri` up to its NUL (the NUL is not hashed). The uri must already
 * be in proto's normal form (uri_normalize, proto/uri.h): the client and the node both hash the
 * normal form, so every spelling of one name (`%20` or a space, `%41` or `A`) has one key. No
 * version goes in: a range can be placed before anything is known about the file. Writes
 * HRW_URI_KEY_LEN bytes to `out` (caller owns it); borrows the uri. */
void hrw_uri_key(const char *normalised_uri, uint8_t out[HRW_URI_KEY_LEN]);

/* Builds a range key: uri_key (16 bytes, hrw_uri_key) followed by range_index as 8 bytes
 * big-endian. `out` must hold HRW_RANGE_KEY_LEN bytes (caller owns it). */
void hrw_range_key(const uint8_t uri_key[HRW_URI_KEY_LEN], uint64_t range_index,
                   uint8_t out[HRW_RANGE_KEY_LEN]);

/* hrw_range_key(hrw_uri_key(normalised_uri), range_index): the placement key of one range of a
 * file (range 0 also places the file's metadata). Writes HRW_RANGE_KEY_LEN bytes to `out`
 * (caller owns it); borrows the uri. */
void hrw_uri_range_key(const char *normalised_uri, uint64_t range_index,
                       uint8_t out[HRW_RANGE_KEY_LEN]);

/* The raw 64-bit hash of (id || key): SipHash-2-4 keyed by hrw_hash_key. key_len must be
 * <= HRW_KEY_MAX (longer keys are hashed as if cut there; callers never pass them). */
uint64_t hrw_hash(const uint8_t id[HRW_ID_LEN], const uint8_t *key, size_t key_len);

/* The score of member (id, weight) for `key`: -weight / ln(u), u = ((h >> 12) + 0.5) / 2^52,
 * h = hrw_hash(id, key). Higher wins. u is exactly representable and strictly inside (0, 1). */
double hrw_score(const uint8_t id[HRW_ID_LEN], uint64_t weight, const uint8_t *key, size_t key_len);

/* Writes the indexes (into `members`) of the top-`r` live members for `key` to out_indexes,
 * best first; ties in score are broken by the smaller id (memcmp). Returns how many were
 * written: min(r, number of live members). `r` must be <= HRW_R_MAX; out_indexes holds r
 * entries (caller owns it). O(n * r) time, no allocation. */
#define HRW_R_MAX 16
size_t hrw_owners(const hrw_member_t *members, size_t n, const uint8_t *key, size_t key_len,
                  size_t r, size_t *out_indexes);

#ifdef __cplusplus
}
#endif
#endif
