/*
 * pagestore.h - the page store: cached pages of remote files at rest on the local disk, keyed by
 * (file key, page index), under a byte quota, plus the node's file metadata and state records.
 * On disk: page bytes in one data file per generation, RocksDB in <data_dir> as their index
 * and for the records; an in-memory backend for the tests of the layers above.
 */
#ifndef SHOAL_PAGESTORE_H
#define SHOAL_PAGESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal_err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PAGESTORE_FILE_KEY_SIZE     16          /* BLAKE2b-128 of uri "\0" version */
#define PAGESTORE_PAGE_SIZE_DEFAULT 1048576     /* 1 MiB, same on every node */
#define PAGESTORE_PAGE_MAX          (64u << 20) /* largest page accepted by put (64 MiB) */
#define PAGESTORE_STATE_KEY_MAX     255         /* longest state record name */

/* Which storage the store sits on. */
typedef enum pagestore_kind {
    PAGESTORE_ROCKSDB = 0, /* data files + RocksDB index in data_dir: persistent, checksummed */
    PAGESTORE_MEMORY = 1,  /* hash tables in memory: for unit tests of the layers above */
} pagestore_kind_t;

/* Settings for pagestore_open; zero fields take the defaults in brackets. */
typedef struct pagestore_options {
    pagestore_kind_t kind;   /* [PAGESTORE_ROCKSDB] backend */
    const char *data_dir;    /* RocksDB index + pages/ data files, created if missing (unused
                                for MEMORY) */
    uint64_t capacity_bytes; /* quota of page bytes (keys included); required, > page_size */
    uint32_t page_size;      /* [1 MiB] the usual page size; pages may be shorter (file tail) */
    uint32_t generations;    /* [8] eviction granularity: the quota is cut in this many parts */
    uint64_t memtable_bytes; /* [capacity/4096 clamped to 1..16 MiB] RocksDB write buffer of
                                the page index (per generation) */
    uint64_t cache_bytes;    /* [64 MiB] RocksDB block cache (keys, filters, records), no pages */
    bool quiet;              /* [false] true: do not log errors to stderr (tests) */
} pagestore_options_t;

/* Counters since open (usage and capacity are current values). Read with pagestore_stats. */
typedef struct pagestore_stats {
    uint64_t capacity_bytes; /* the quota */
    uint64_t usage_bytes;    /* page bytes held, incl. dead copies until their generation drops */
    uint64_t pages;          /* page records held (estimate after a restart: RocksDB property) */
    uint64_t generations;    /* live generations */
    uint64_t puts;           /* pages written by pagestore_put */
    uint64_t hits;           /* gets that returned a page */
    uint64_t misses;         /* gets that found nothing (corrupt pages count here too) */
    uint64_t promotions;     /* old pages re-written into the newest generation on a hit */
    uint64_t evicted_pages;  /* page records dropped with their generation */
    uint64_t evicted_bytes;  /* bytes dropped with their generation */
    uint64_t evictions;      /* generations dropped to stay under the quota */
    uint64_t corruptions;    /* pages that failed their checksum (dropped, reported as miss) */
    uint64_t write_errors;   /* puts that failed for lack of space or an I/O error */
    uint64_t read_errors;    /* gets that failed with an I/O error other than corruption */
    uint64_t faults;         /* gets whose mapped page bytes raised SIGBUS (data file cut behind
                                the store's back, or a disk I/O error): also in corruptions */
} pagestore_stats_t;

/* Most chunk sums pagestore_locate gives for one page: a largest page at 64 KiB chunks. */
#define PAGESTORE_LOCATE_SUMS_MAX (PAGESTORE_PAGE_MAX >> 16)

/* Where a page's bytes lie on disk, for a reader in another process that was given the
 * generation's data file (pagestore_gen_fd): bytes [offset, offset + size) of that file, in
 * chunks of 2^chunk_shift bytes (the last may be shorter), chunk c checksummed as
 * XXH3_64bits_withSeed(chunk bytes, seed + c). The reader must check every chunk it uses: the
 * location may be stale by the time it reads (a dropped generation's file is cut to 0 bytes:
 * its reads come back short). */
typedef struct pagestore_location {
    uint64_t gen;                             /* generation whose data file holds it */
    uint64_t offset;                          /* of its first byte in that file */
    uint32_t size;                            /* its stored length in bytes */
    uint32_t chunk_shift;                     /* chunk size is 1 << chunk_shift (16 today) */
    uint64_t seed;                            /* chunk c's seed is seed + c */
    uint32_t chunk_count;                     /* entries of sums: ceil(size >> chunk_shift) */
    uint64_t sums[PAGESTORE_LOCATE_SUMS_MAX]; /* XXH3-64 of each chunk */
} pagestore_location_t;

/* The store. Thread safe: any number of threads may put, get and release at once. Reference
 * counted: each page handle keeps the store alive, so pagestore_close() by the owner frees the
 * store once the last page handle is released. */
typedef struct pagestore pagestore_t;

/* A pinned page: its bytes stay valid, unmoved, until the handle is released, from any thread
 * (release is cheap: an atomic decrement or two). A pinned page is never changed by later
 * puts, deletes or evictions (RocksDB backend: it points into a shared read-only mapping of a
 * data file the store only appends to; the mapping outlives eviction and pagestore_close until
 * the last handle into it is released). */
typedef struct pagestore_page pagestore_page_t;

/* Fills out[16] with the file key of one file version: BLAKE2b-128 (libsodium
 * crypto_generichash, no key) of the bytes of `uri`, one NUL byte, and the bytes of `version`.
 * Returns 0, or SHOAL_EINVAL for NULL arguments. Borrows everything. */
int pagestore_file_key(const char *uri, const char *version, uint8_t out[PAGESTORE_FILE_KEY_SIZE]);

/* Opens (creating if missing) the store described by `options` and sets *out. Returns 0,
 * SHOAL_EINVAL (bad options), SHOAL_EIO (cannot open the database; detail in the last error;
 * a database that fails to open for corruption is destroyed and started empty, logged),
 * SHOAL_ENOMEM. Borrows `options`; the caller owns *out and frees it with pagestore_close. */
int pagestore_open(const pagestore_options_t *options, pagestore_t **out);

/* Drops the caller's reference, flushes the memtables so a restart keeps every page, and sets
 * *self_p to NULL; safe on NULL. The store is freed now, or when the last page handle still
 * pinned is released. */
void pagestore_close(pagestore_t **self_p);

/* Stores `size` bytes (1..PAGESTORE_PAGE_MAX) as page `page_index` of `file_key`, replacing
 * any earlier copy, in the newest generation; drops the oldest generations when the quota is
 * exceeded. Returns 0, SHOAL_EINVAL, SHOAL_ENOSPC (the disk is full) or SHOAL_EIO (write error,
 * or the store is read-only after one: it retries at most once a second). A failed put is
 * logged once to stderr (until a put succeeds again) and counted in write_errors. Also
 * SHOAL_ECORRUPT when `data` itself cannot be read (a mapping of a file cut since: SIGBUS is
 * caught), which is not a write error. Copies the bytes; borrows everything. */
int pagestore_put(pagestore_t *self, const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE],
                  uint64_t page_index, const void *data, size_t size);

/* Looks a page up and sets *out to a pinned handle on its bytes (RocksDB backend: a pointer into
 * the generation's data-file mapping, no copy; every checksum checked before it is returned;
 * see store/README.md, "Mapped gets"). A page found close
 * to eviction (less than half a quota of writes from it) is also copied into the newest
 * generation, so pages in use survive the churn of pages read once. Returns 0, SHOAL_ENOENT (a
 * miss: absent, or found corrupt, which also deletes it and counts it), or SHOAL_EIO (read error).
 * The caller owns *out and releases it with pagestore_page_release or pagestore_page_free_fn. */
int pagestore_get(pagestore_t *self, const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE],
                  uint64_t page_index, pagestore_page_t **out);

/* Looks up bytes [offset_in_page, offset_in_page + length) of a page and sets *out to a pinned
 * handle over exactly those bytes: pagestore_page_data / pagestore_page_size give the slice,
 * pagestore_page_full_size the whole page's length. Only the checksummed chunks (64 KiB) that
 * cover the slice are read and checked, so a 64 KiB read of a 1 MiB page reads 64 or 128 KiB.
 * Promotes, counts and fails like pagestore_get; also SHOAL_EINVAL when length is 0 or the
 * range is not inside the stored page (counted as a miss). The caller owns *out. */
int pagestore_get_range(pagestore_t *self, const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE],
                        uint64_t page_index, size_t offset_in_page, size_t length,
                        pagestore_page_t **out);

/* The bytes of a pinned page (or slice). Borrowed until the page is released. */
const void *pagestore_page_data(const pagestore_page_t *page);

/* The length of a pinned page (or slice) in bytes. */
size_t pagestore_page_size(const pagestore_page_t *page);

/* The length of the whole stored page a handle was taken from (equals pagestore_page_size for
 * pagestore_get). */
size_t pagestore_page_full_size(const pagestore_page_t *page);

/* Releases *page_p and sets it to NULL; safe on NULL. Thread safe. */
void pagestore_page_release(pagestore_page_t **page_p);

/* The same release, shaped as a zmq_free_fn: zmq_msg_init_data(&msg,
 * (void *)pagestore_page_data(page), pagestore_page_size(page), pagestore_page_free_fn, page)
 * hands the page to ZeroMQ, whose I/O thread releases it after sending. `data` is ignored;
 * `hint` is the page, owned by this call. */
void pagestore_page_free_fn(void *data, void *hint);

/* Short-circuit reads (issue 11). Looks a page up like pagestore_get (newest generation
 * first; counts a hit or a miss; promotes a page close to eviction into the newest generation,
 * reading and checking it for that; the location returned may then be the old copy, which
 * stays valid until its generation drops) but reads no page bytes otherwise: fills *out with
 * where the bytes are and their chunk checksums. Returns 0, SHOAL_ENOENT (a miss: absent, its
 * bytes known missing from the data file, or found corrupt while promoting it, which also
 * deletes it), SHOAL_EIO, or SHOAL_ENOTSUP (the memory backend has no data files). Borrows
 * everything; *out is the caller's. */
int pagestore_locate(pagestore_t *self, const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE],
                     uint64_t page_index, pagestore_location_t *out);

/* Sets *fd_out to a NEW descriptor (O_RDONLY, close-on-exec) of generation `gen`'s data file,
 * for passing to a reader (SCM_RIGHTS). Made under the store's lock, so a concurrent drop
 * cannot hand out a number reused since. The caller owns it and closes it. Returns 0,
 * SHOAL_ENOENT (no such live generation), SHOAL_EIO (out of descriptors: errno in the last
 * error), or SHOAL_ENOTSUP (memory backend). When a generation drops, its data file is unlinked
 * and, once the store's own last mapping of it is unmapped, cut to 0 bytes: its disk space
 * comes back even while such descriptors stay open (their reads then return short). */
int pagestore_gen_fd(pagestore_t *self, uint64_t gen, int *fd_out);

/* A random 64-bit number chosen at each pagestore_open (never 0): generation numbers restart
 * at 1 in a new store, so a reader keys descriptors by (store id, generation). */
uint64_t pagestore_store_id(const pagestore_t *self);

/* Whether generation `gen` is live (not dropped). Takes the read lock. */
bool pagestore_gen_live(pagestore_t *self, uint64_t gen);

/* Generations dropped since the store was opened (no lock: an atomic counter, raised when a
 * drop is complete). A reader of descriptors checks pagestore_gen_live only when it moved. */
uint64_t pagestore_gen_drops(pagestore_t *self);

/* Sets *found to whether the page is held (uncorrupted). Returns 0 or SHOAL_EIO. Reads the
 * page (it is checksummed as a whole), so it is not cheaper than a get; it promotes nothing and
 * counts no hit or miss. */
int pagestore_contains(pagestore_t *self, const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE],
                       uint64_t page_index, bool *found);

/* Deletes one page (every copy). Returns 0 (also when absent), SHOAL_EIO or SHOAL_ENOSPC.
 * Disk space comes back when the generations holding it are dropped. */
int pagestore_delete(pagestore_t *self, const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE],
                     uint64_t page_index);

/* Deletes every page of a file key (evict URI), with one range tombstone per generation.
 * Returns 0, SHOAL_EIO or SHOAL_ENOSPC. Space comes back as for pagestore_delete. */
int pagestore_delete_file(pagestore_t *self, const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE]);

/* Stores the metadata record of `uri`: an opaque blob the node defines (at most 1 MiB) and the
 * time it was fetched from the UFS (the caller's clock, e.g. seconds or ns since the epoch).
 * Replaces any earlier record. Metadata does not count against the quota. Returns 0,
 * SHOAL_EINVAL, SHOAL_ENOSPC or SHOAL_EIO. Copies; borrows everything. */
int pagestore_meta_put(pagestore_t *self, const char *uri, const void *blob, size_t size,
                       int64_t fetched_at);

/* Reads the metadata record of `uri`: sets *blob_out to a malloc'd copy (caller frees it with
 * free(); NULL for an empty blob), *size_out and *fetched_at_out. Returns 0, SHOAL_ENOENT,
 * SHOAL_ENOMEM, SHOAL_EIO or SHOAL_ECORRUPT (the record failed its checksum; it is deleted). */
int pagestore_meta_get(pagestore_t *self, const char *uri, void **blob_out, size_t *size_out,
                       int64_t *fetched_at_out);

/* Deletes the metadata record of `uri`. Returns 0 (also when absent) or SHOAL_EIO. */
int pagestore_meta_delete(pagestore_t *self, const char *uri);

/* Stores a small node state record (node id, incarnation: at most 64 KiB) durably (fsync'd
 * before return). Returns 0, SHOAL_EINVAL, SHOAL_ENOSPC or SHOAL_EIO. Copies; borrows. */
int pagestore_state_put(pagestore_t *self, const char *name, const void *value, size_t size);

/* Reads state record `name`: *value_out is a malloc'd copy (caller frees with free(); NULL
 * when empty). Returns 0, SHOAL_ENOENT, SHOAL_ENOMEM, SHOAL_EIO or SHOAL_ECORRUPT. */
int pagestore_state_get(pagestore_t *self, const char *name, void **value_out, size_t *size_out);

/* Fills *out with the counters, the usage and the capacity. Never fails. */
void pagestore_stats(pagestore_t *self, pagestore_stats_t *out);

/* Called once per page by pagestore_scan: borrowed key, the page index and its length. Return
 * non-zero to stop the scan. */
typedef int (*pagestore_scan_fn)(const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE],
                                 uint64_t page_index, size_t size, void *arg);

/* Visits every page held (each once, even when kept in two generations), or only those of
 * `file_key` when it is not NULL, in no particular order. For stats and tools, not the data
 * path: it may read the pages' bytes. Returns 0, the callback's non-zero value, SHOAL_ENOMEM or
 * SHOAL_EIO. */
int pagestore_scan(pagestore_t *self, const uint8_t *file_key, pagestore_scan_fn fn, void *arg);

/* Counts the pages and page bytes held for `file_key` (NULL: all files), as pagestore_scan.
 * Returns 0 or the scan's error. */
int pagestore_count(pagestore_t *self, const uint8_t *file_key, uint64_t *pages_out,
                    uint64_t *bytes_out);

/* Writes every memtable to disk and waits (tests, benchmarks, before a planned shutdown).
 * Returns 0, SHOAL_ENOSPC or SHOAL_EIO. */
int pagestore_flush(pagestore_t *self);

/* Checks the store's invariants (generation count and order, usage == the sum of the
 * generations' bytes) with assert(); does nothing when NDEBUG is defined (RelWithDebInfo and
 * Release builds). Takes the write lock for the check. Called after every mutating call in
 * debug builds; tests may call it too. */
void pagestore_sanity(pagestore_t *self);

#ifdef __cplusplus
}
#endif
#endif
