/*
 * pagestore_backend.h - inside the page store: the seam between the front end (pagestore.c:
 * generations, quota, promotion, counters) and the storage under it (RocksDB or memory), as
 * SQLite's page cache sits on sqlite3_pcache_methods2. Not for use outside store/.
 */
#ifndef SHOAL_PAGESTORE_BACKEND_H
#define SHOAL_PAGESTORE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pagestore.h"

/* A page key is the file key followed by the page index, big-endian, so the pages of one file
 * sort together and in order:
 *
 *    0                 16                     24
 *    +-----------------+----------------------+
 *    | file key (16 B) | page index (u64, BE) |
 *    +-----------------+----------------------+
 */
#define PAGESTORE_PAGE_KEY_SIZE 24

/* page_get's length for "the whole page from offset". */
#define PAGESTORE_WHOLE SIZE_MAX

/* A pinned page as the backend hands it out. The backend allocates it (usually as the first
 * member of its own struct) and frees it in `release`; the front end fills `store`. `release`
 * may run on any thread (ZeroMQ's I/O thread), after the backend's page was evicted, and
 * before the backend is closed (the front end closes the backend after the last release). */
struct pagestore_page {
    const void *data;                        /* the bytes; valid until released */
    size_t size;                             /* length of data (the slice asked for) */
    size_t page_size;                        /* length of the whole stored page */
    pagestore_t *store;                      /* reference held on the store; set by front end */
    void (*release)(pagestore_page_t *page); /* backend: frees the pin and this struct */
};

/* One generation as the backend finds it at open. */
typedef struct pagestore_gen_info {
    uint64_t gen;   /* generation number; larger is newer */
    uint64_t bytes; /* bytes it holds on disk (keys + values) */
    uint64_t pages; /* records it holds (an estimate for RocksDB) */
} pagestore_gen_info_t;

/* The small key-value tables beside the pages. */
typedef enum pagestore_table {
    PAGESTORE_TABLE_META = 0,  /* uri -> fetched_at (u64 BE) | opaque blob */
    PAGESTORE_TABLE_STATE = 1, /* name -> value (node id, incarnation) */
} pagestore_table_t;

/* Called by page_scan per record; non-zero stops the scan and is returned. */
typedef int (*pagestore_record_fn)(const uint8_t key[PAGESTORE_PAGE_KEY_SIZE], size_t size,
                                   void *arg);

/* The operations of a backend. `self` is what open returned. The front end calls gen_create,
 * gen_drop, recover and close only while no other call runs (it holds its write lock); every
 * other operation may run on many threads at once and must be thread safe. Every operation
 * returns 0 or a negative SHOAL_E* code with a last error. */
typedef struct pagestore_backend {
    const char *name; /* "rocksdb", "memory" */
    /* Opens the storage described by `options` (validated by the front end). */
    int (*open)(const pagestore_options_t *options, void **self_out);
    /* Flushes and frees everything. Called once, after the last page handle was released. */
    void (*close)(void *self);
    /* Lists the generations present, oldest first, in a malloc'd array (caller frees). */
    int (*gens)(void *self, pagestore_gen_info_t **gens_out, size_t *count_out);
    /* Makes an empty generation `gen` (newer than every present one). */
    int (*gen_create)(void *self, uint64_t gen);
    /* Tells the backend that `gen` gets no more puts (RocksDB: flush it in the background). */
    void (*gen_seal)(void *self, uint64_t gen);
    /* Drops generation `gen` and every page in it, returning its disk space now. Pages pinned
     * from it stay valid until released. */
    int (*gen_drop)(void *self, uint64_t gen);
    /* Stores a page in `gen`, replacing a copy there. SHOAL_ENOSPC / SHOAL_EIO on failure. */
    int (*page_put)(void *self, uint64_t gen, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE],
                    const void *data, size_t size);
    /* Pins bytes [offset, offset + length) of a page of `gen` (length PAGESTORE_WHOLE: from
     * offset to the page's end), checking every checksum that covers them: 0, SHOAL_ENOENT,
     * SHOAL_ECORRUPT (failed checksum, or bytes missing on disk), SHOAL_EINVAL (the range is not
     * inside the page; nothing is counted) or SHOAL_EIO. */
    int (*page_get)(void *self, uint64_t gen, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE],
                    size_t offset, size_t length, pagestore_page_t **out);
    /* Deletes a page of `gen` (0 when absent). */
    int (*page_delete)(void *self, uint64_t gen, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE]);
    /* Deletes every page of `file_key` in `gen`. */
    int (*file_delete)(void *self, uint64_t gen, const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE]);
    /* Calls fn for each page of `gen` (of `file_key` only, when not NULL). */
    int (*page_scan)(void *self, uint64_t gen, const uint8_t *file_key, pagestore_record_fn fn,
                     void *arg);
    /* Stores a record in a small table; `sync` makes it durable before return. */
    int (*kv_put)(void *self, pagestore_table_t table, const void *key, size_t key_size,
                  const void *value, size_t value_size, bool sync);
    /* Reads a record: *value_out is malloc'd (caller frees; may be NULL when empty). 0,
     * SHOAL_ENOENT, SHOAL_ECORRUPT, SHOAL_EIO or SHOAL_ENOMEM. */
    int (*kv_get)(void *self, pagestore_table_t table, const void *key, size_t key_size,
                  void **value_out, size_t *value_size_out);
    /* Deletes a record (0 when absent). */
    int (*kv_delete)(void *self, pagestore_table_t table, const void *key, size_t key_size);
    /* Writes everything buffered to disk and waits. */
    int (*flush)(void *self);
    /* After a failed write: makes the storage writable again if it can (RocksDB: a probe
     * write, else close and reopen). 0 when writable. */
    int (*recover)(void *self);
    /* Gets whose bytes raised SIGBUS (mapped backends; NULL: never). Any thread. */
    uint64_t (*faults)(void *self);
    /* Short-circuit reads (NULL: not supported, the front end answers SHOAL_ENOTSUP). Where a
     * page of `gen` lies in that generation's data file, without reading its bytes: 0,
     * SHOAL_ENOENT, SHOAL_ECORRUPT (a malformed index record, or bytes known missing) or
     * SHOAL_EIO. */
    int (*page_locate)(void *self, uint64_t gen, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE],
                       pagestore_location_t *out);
    /* A new O_RDONLY | O_CLOEXEC descriptor of `gen`'s data file: 0, SHOAL_ENOENT, SHOAL_EIO. */
    int (*gen_fd)(void *self, uint64_t gen, int *fd_out);
} pagestore_backend_t;

extern const pagestore_backend_t pagestore_rocksdb_backend;
extern const pagestore_backend_t pagestore_memory_backend;

/* Builds the page key of (file_key, page_index) into out. */
void pagestore_page_key(const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE], uint64_t page_index,
                        uint8_t out[PAGESTORE_PAGE_KEY_SIZE]);

/* Reads the page index back out of a page key. */
uint64_t pagestore_page_key_index(const uint8_t key[PAGESTORE_PAGE_KEY_SIZE]);

#endif
