/*
 * pagestore_rocksdb.c - the disk page-store backend. Page bytes are appended to one data file
 * per generation (<data_dir>/pages/gen-<generation>.dat); RocksDB in <data_dir> holds the index
 * (column family "pages.<generation>": page key -> where the bytes are and their per-chunk
 * checksums) beside the "meta" and "state" families. Dropping a generation drops its column
 * family and unlinks its data file, so the disk space comes back at once. Gets return pointers
 * into a read-only shared mapping of the data file (pagestore_mmap.h), checked chunk by chunk
 * under a SIGBUS guard. Layout, crash semantics and measurements: store/README.md.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pagestore_backend.h"
#include "pagestore_mmap.h"
#include <xxh_x86dispatch.h>

#define S_GEN_PREFIX "pages."
#define S_NAME_MAX   64
#define S_PATH_MAX   4200
#define S_MAX_CFS    (64 + 2 + 8) /* generations + meta/state/default, with slack */
#define S_FORMAT_VERSION                                                                           \
    "3" /* 1 = XXH64 trailer, 2 = XXH3 trailer (both: pages in blob                                \
           files), 3 = data files + index with per-chunk XXH3 */
#define S_FORMAT_KEY  "\x01pagestore-format" /* its record in the state table */
#define S_PAGES_DIR   "pages"                /* data files, under data_dir */
#define S_CHUNK_SHIFT 16                     /* checksummed chunks of 64 KiB */
#define S_ALIGN       4096                   /* pages start at multiples of this in a data file */
#define S_INDEX_HEAD  16 /* index value: offset u64 | size u32 | chunk shift u8 | 3 zero bytes */
#define S_POOL_MAX    32 /* free read buffers kept (of page_size each) */
#define S_MAP_ROUND   (2u << 20) /* mapping lengths are multiples of this */

/* One generation: its index column family and its data file. Allocated one by one so gens[]
 * can be reordered while `end` (atomic) stays put. */
typedef struct s_gen {
    uint64_t gen;                           /* generation number */
    rocksdb_column_family_handle_t *handle; /* its index column family */
    int fd;                                 /* its data file, open read-write */
    int read_fd;                            /* the same file O_RDONLY: dup'd for readers in
                                               other processes (pagestore_gen_fd) */
    _Atomic uint64_t end;                   /* next free offset in it (a multiple of S_ALIGN) */
    pagestore_mmap_t *map;                  /* its data file mapped read-only from offset 0, or
                                               NULL (mmap failed: gets use pread) */
    _Atomic uint64_t written_end;           /* bytes below exist in the file: its size at
                                               open, raised past each page written since */
} s_gen_t;

/* Free read buffers of `buffer_size` bytes (page_size rounded up to S_ALIGN, S_ALIGN-aligned),
 * so a get does not malloc and fault in a fresh 1 MiB buffer each time (glibc serves that size
 * with mmap). LIFO: the buffer last released is still in the CPU caches. */
typedef struct s_pool {
    pthread_mutex_t lock;   /* guards the two fields below */
    void *free[S_POOL_MAX]; /* buffers ready for reuse */
    size_t count;           /* entries of free[] */
    size_t buffer_size;     /* size of every pooled buffer */
} s_pool_t;

/* Invariant: gens[] holds every pages.* column family of db, oldest first, each with its data
 * file open. gens[] changes only in gen_create / gen_drop / recover, which the front end never
 * runs beside other calls. */
typedef struct s_rocks {
    char *dir;                       /* data directory */
    char *pages_dir;                 /* <dir>/pages: the data files */
    rocksdb_t *db;                   /* the database */
    rocksdb_options_t *db_options;   /* DB-wide options, also for default/meta/state */
    rocksdb_options_t *page_options; /* options of every pages.* (index) family */
    rocksdb_block_based_table_options_t *table_options;    /* bloom filter + shared cache */
    rocksdb_block_based_table_options_t *kv_table_options; /* meta/state: cache only */
    rocksdb_cache_t *cache;                     /* block cache (index, filters, meta/state) */
    rocksdb_readoptions_t *read_options;        /* every read: verify_checksums on */
    rocksdb_writeoptions_t *page_write;         /* index: WAL, no fsync */
    rocksdb_writeoptions_t *meta_write;         /* meta: WAL, no fsync */
    rocksdb_writeoptions_t *state_write;        /* state: WAL and fsync */
    rocksdb_flushoptions_t *flush_wait;         /* flush and wait */
    rocksdb_flushoptions_t *flush_nowait;       /* flush in the background */
    rocksdb_column_family_handle_t *tables[2];  /* meta, state (pagestore_table_t order) */
    rocksdb_column_family_handle_t *default_cf; /* unused but must stay open */
    s_gen_t *gens[S_MAX_CFS];                   /* live generations, oldest first */
    size_t gen_count;                           /* entries of gens[] */
    s_pool_t pool;                              /* read buffers (the pread path) */
    uint64_t map_headroom;                      /* a data file is mapped this far past its size at
                                                   open: 2 x capacity / generations, rounded */
    bool quiet;                                 /* no stderr lines */
    _Atomic bool map_failure_logged;            /* a failed mmap was logged (once per store) */
    _Atomic bool fault_logged;                  /* a SIGBUS in a get was logged (once per store) */
    _Atomic uint64_t faults;                    /* gets whose mapped bytes raised SIGBUS */
} s_rocks_t;

/* A pinned page or slice: either a pointer into its generation's data-file mapping (`map` set,
 * the usual case: zero-copy), or a read buffer holding the checked chunks that cover it (the
 * pread path: no mapping, or the bytes lie past it). */
typedef struct s_pinned {
    pagestore_page_t page; /* first: what the front end sees */
    pagestore_mmap_t *map; /* a reference on the mapping the bytes are in, or NULL */
    s_rocks_t *owner;      /* whose pool the buffer goes back to (outlives every pin) */
    void *buffer;          /* from s_buffer_get (NULL when map is set) */
    size_t capacity;       /* its size */
} s_pinned_t;

/* Checks the invariant of s_rocks_t and of each s_gen_t (SQLite style: assert-only, nothing
 * under NDEBUG): gens[] oldest first with strictly growing numbers, each with its column
 * family and its data file open, its free offset a multiple of S_ALIGN. Called after every
 * call that changes gens[] (open, gen_create, gen_drop, recover), which run alone. */
static void s_rocks_sanity(const s_rocks_t *self)
{
#ifndef NDEBUG
    assert(self->gen_count <= S_MAX_CFS);
    for (size_t i = 0; i < self->gen_count; i++) {
        const s_gen_t *gen = self->gens[i];
        assert(gen != NULL && gen->handle != NULL && gen->fd >= 0);
        assert(atomic_load(&gen->end) % S_ALIGN == 0);
        assert(i == 0 || self->gens[i - 1]->gen < gen->gen);
    }
#else
    (void)self;
#endif
}

/* ---- index records and checksums ----------------------------------------------------------
 *
 * The index value of a page (little-endian; checked by RocksDB's block checksums like any
 * record), n = ceil(size / 2^shift):
 *
 *    0          8          12      13       16                      16 + 8n
 *    +----------+----------+-------+--------+-----------------------+
 *    | offset   | size     | shift | 0 0 0  | XXH3_64 of chunk 0..n-1 |
 *    | (u64)    | (u32)    | (u8)  |        | (u64 each)              |
 *    +----------+----------+-------+--------+-----------------------+
 *
 * The page's bytes are [offset, offset + size) of the generation's data file; chunk i is
 * [i << shift, (i + 1) << shift) of the page (the last may be shorter), and its checksum is
 * XXH3_64(chunk, seed = XXH3_64(page key) + i): a chunk served for another key or another
 * position fails. XXH3 comes from Debian's libxxhash with run-time SSE2/AVX2/AVX-512 dispatch
 * (~56 GB/s here). A get checks only the chunks that cover the bytes asked for. */

static uint64_t s_key_seed(const uint8_t *key)
{
    return XXH3_64bits_dispatch(key, PAGESTORE_PAGE_KEY_SIZE);
}

static uint64_t s_chunk_checksum(uint64_t key_seed, uint64_t chunk, const void *data, size_t size)
{
    return XXH3_64bits_withSeed_dispatch(data, size, key_seed + chunk);
}

static size_t s_chunks(size_t size)
{
    return (size + ((size_t)1 << S_CHUNK_SHIFT) - 1) >> S_CHUNK_SHIFT;
}

/* A decoded index value; `sums` points into the value. */
typedef struct s_entry {
    uint64_t offset;     /* where the page starts in the data file */
    uint32_t size;       /* page length */
    unsigned shift;      /* chunk size is 1 << shift */
    const uint8_t *sums; /* n checksums, u64 little-endian each */
} s_entry_t;

static uint64_t s_load_le64(const uint8_t *in)
{
    uint64_t value;
    memcpy(&value, in, 8); /* little-endian hosts only */
    return value;
}

/* Decodes an index value; false when it is malformed. */
static bool s_entry_decode(const char *value, size_t size, s_entry_t *out)
{
    if (size < S_INDEX_HEAD)
        return false;
    const uint8_t *in = (const uint8_t *)value;
    uint32_t page_size;
    memcpy(&page_size, in + 8, 4);
    out->offset = s_load_le64(in);
    out->size = page_size;
    out->shift = in[12];
    out->sums = in + S_INDEX_HEAD;
    if (out->shift < 12 || out->shift > 26 || out->size == 0 || out->size > PAGESTORE_PAGE_MAX)
        return false;
    size_t chunks = (out->size + ((size_t)1 << out->shift) - 1) >> out->shift;
    return size == S_INDEX_HEAD + 8 * chunks;
}

/* ---- read buffers ----------------------------------------------------------------------- */

/* A buffer of at least `size` bytes, S_ALIGN-aligned; *capacity_out is its real size. NULL
 * when out of memory. */
static void *s_buffer_get(s_pool_t *pool, size_t size, size_t *capacity_out)
{
    void *buffer = NULL;
    if (size <= pool->buffer_size) {
        pthread_mutex_lock(&pool->lock);
        if (pool->count > 0)
            buffer = pool->free[--pool->count];
        pthread_mutex_unlock(&pool->lock);
        size = pool->buffer_size;
    } else {
        size = (size + S_ALIGN - 1) / S_ALIGN * S_ALIGN;
    }
    if (buffer == NULL && posix_memalign(&buffer, S_ALIGN, size) != 0)
        return NULL;
    *capacity_out = size;
    return buffer;
}

static void s_buffer_put(s_pool_t *pool, void *buffer, size_t capacity)
{
    if (capacity == pool->buffer_size) {
        pthread_mutex_lock(&pool->lock);
        if (pool->count < S_POOL_MAX) {
            pool->free[pool->count++] = buffer;
            buffer = NULL;
        }
        pthread_mutex_unlock(&pool->lock);
    }
    free(buffer);
}

static void s_pool_fini(s_pool_t *pool)
{
    for (size_t i = 0; i < pool->count; i++)
        free(pool->free[i]);
    pool->count = 0;
    pthread_mutex_destroy(&pool->lock);
}

/* Maps a RocksDB error string to a code, records it as the last error and frees it. RocksDB
 * reports a full disk as "IO error: No space left on device" and a bad checksum as
 * "Corruption: ...". */
static int s_error(char *err, const char *what)
{
    int code = SHOAL_EIO;
    if (strncmp(err, "Corruption", 10) == 0)
        code = SHOAL_ECORRUPT;
    else if (strstr(err, "No space") != NULL || strstr(err, "NoSpace") != NULL)
        code = SHOAL_ENOSPC;
    shoal_fail(code, "rocksdb %s: %s", what, err);
    rocksdb_free(err);
    return code;
}

static void s_gen_name(uint64_t gen, char *out)
{
    snprintf(out, S_NAME_MAX, S_GEN_PREFIX "%020" PRIu64, gen);
}

static void s_data_path(const s_rocks_t *self, uint64_t gen, char *out)
{
    snprintf(out, S_PATH_MAX, "%s/gen-%020" PRIu64 ".dat", self->pages_dir, gen);
}

/* Parses "pages.<digits>"; returns false for other names. */
static bool s_parse_gen(const char *name, uint64_t *gen)
{
    size_t prefix = strlen(S_GEN_PREFIX);
    if (strncmp(name, S_GEN_PREFIX, prefix) != 0 || name[prefix] == '\0')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(name + prefix, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *gen = value;
    return true;
}

static int s_compare_gen(const void *a, const void *b)
{
    uint64_t x = (*(s_gen_t *const *)a)->gen, y = (*(s_gen_t *const *)b)->gen;
    return x < y ? -1 : x > y;
}

/* mkdir -p. Returns 0 or SHOAL_EIO. */
static int s_mkdirs(const char *dir)
{
    char path[S_PATH_MAX];
    if (strlen(dir) >= sizeof path)
        return shoal_fail(SHOAL_EINVAL, "pagestore: data_dir too long");
    strcpy(path, dir);
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return shoal_fail(SHOAL_EIO, "pagestore: mkdir %s: %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return shoal_fail(SHOAL_EIO, "pagestore: mkdir %s: %s", path, strerror(errno));
    return 0;
}

/* An errno from the data files as a code: a full disk (or quota) is SHOAL_ENOSPC. */
static int s_errno(int error, const char *what, const char *path)
{
    int code = error == ENOSPC || error == EDQUOT ? SHOAL_ENOSPC : SHOAL_EIO;
    return shoal_fail(code, "pagestore: %s %s: %s", what, path, strerror(error));
}

/* Builds every options object from the front end's options. The choices, measured in
 * tools/bench/bench_store.c and store/README.md:
 * - the index families hold small values (16 B + 8 B per 64 KiB chunk: 144 B for a 1 MiB
 *   page) inline in their SST files; the page bytes are in our data files, read through our
 *   own guarded mappings (RocksDB's mmap reads stay off: its SIGBUS would not be guarded);
 * - index writes use the WAL without fsync (a crashed process loses nothing; a power loss
 *   may lose the last index entries, whose pages are then misses);
 * - no compression (training data is usually compressed already; the index is small);
 * - one LRU cache, cache_bytes, for blocks (index, filters, meta/state records); every read
 *   verifies RocksDB's block checksums (cheap: cached blocks are not checked again);
 * - bloom filters (10 bits/key) so the lookups in generations without the page are cheap;
 * - a small info log, manifest and WAL. */
static int s_make_options(s_rocks_t *self, const pagestore_options_t *options)
{
    self->cache = rocksdb_cache_create_lru(options->cache_bytes);
    self->db_options = rocksdb_options_create();
    self->page_options = rocksdb_options_create();
    self->table_options = rocksdb_block_based_options_create();
    self->kv_table_options = rocksdb_block_based_options_create();
    self->read_options = rocksdb_readoptions_create();
    self->page_write = rocksdb_writeoptions_create();
    self->meta_write = rocksdb_writeoptions_create();
    self->state_write = rocksdb_writeoptions_create();
    self->flush_wait = rocksdb_flushoptions_create();
    self->flush_nowait = rocksdb_flushoptions_create();
    if (self->cache == NULL || self->db_options == NULL || self->page_options == NULL ||
        self->table_options == NULL || self->kv_table_options == NULL ||
        self->read_options == NULL || self->page_write == NULL || self->meta_write == NULL ||
        self->state_write == NULL || self->flush_wait == NULL || self->flush_nowait == NULL)
        return shoal_fail(SHOAL_ENOMEM, "pagestore: out of memory");

    rocksdb_block_based_options_set_block_cache(self->table_options, self->cache);
    rocksdb_block_based_options_set_filter_policy(self->table_options,
                                                  rocksdb_filterpolicy_create_bloom_full(10));
    rocksdb_block_based_options_set_block_cache(self->kv_table_options, self->cache);

    rocksdb_options_t *db = self->db_options;
    rocksdb_options_set_create_if_missing(db, 1);
    rocksdb_options_set_create_missing_column_families(db, 1);
    rocksdb_options_set_info_log_level(db, 2); /* WARN */
    rocksdb_options_set_keep_log_file_num(db, 2);
    rocksdb_options_set_max_log_file_size(db, 1u << 20);
    rocksdb_options_set_max_manifest_file_size(db, 4u << 20);
    rocksdb_options_set_max_total_wal_size(db, 16u << 20);
    rocksdb_options_set_max_background_jobs(db, 2);
    rocksdb_options_set_compression(db, 0);
    rocksdb_options_set_block_based_table_factory(db, self->kv_table_options);

    rocksdb_options_t *page = self->page_options;
    rocksdb_options_set_compression(page, 0);
    rocksdb_options_set_write_buffer_size(page, options->memtable_bytes);
    rocksdb_options_set_max_write_buffer_number(page, 2);
    rocksdb_options_set_block_based_table_factory(page, self->table_options);

    rocksdb_readoptions_set_verify_checksums(self->read_options, 1);
    rocksdb_writeoptions_set_sync(self->state_write, 1);
    rocksdb_flushoptions_set_wait(self->flush_wait, 1);
    rocksdb_flushoptions_set_wait(self->flush_nowait, 0);
    return 0;
}

static void s_free_options(s_rocks_t *self)
{
    if (self->flush_nowait != NULL)
        rocksdb_flushoptions_destroy(self->flush_nowait);
    if (self->flush_wait != NULL)
        rocksdb_flushoptions_destroy(self->flush_wait);
    if (self->state_write != NULL)
        rocksdb_writeoptions_destroy(self->state_write);
    if (self->meta_write != NULL)
        rocksdb_writeoptions_destroy(self->meta_write);
    if (self->page_write != NULL)
        rocksdb_writeoptions_destroy(self->page_write);
    if (self->read_options != NULL)
        rocksdb_readoptions_destroy(self->read_options);
    if (self->page_options != NULL)
        rocksdb_options_destroy(self->page_options);
    if (self->db_options != NULL)
        rocksdb_options_destroy(self->db_options);
    if (self->table_options != NULL)
        rocksdb_block_based_options_destroy(self->table_options);
    if (self->kv_table_options != NULL)
        rocksdb_block_based_options_destroy(self->kv_table_options);
    if (self->cache != NULL)
        rocksdb_cache_destroy(self->cache);
}

/* Closes a generation's file and drops its reference on the mapping: page handles pointing
 * into it keep it mapped until they are released. */
static void s_gen_free(s_gen_t *gen)
{
    if (gen->handle != NULL)
        rocksdb_column_family_handle_destroy(gen->handle);
    pagestore_mmap_unref(&gen->map);
    if (gen->fd >= 0)
        close(gen->fd);
    if (gen->read_fd >= 0)
        close(gen->read_fd);
    free(gen);
}

/* A dropped generation's file: cut it to 0 bytes once the store's own last mapping of it goes
 * (page handles may still point into it: cutting now would SIGBUS them), so its disk space
 * comes back even while other processes hold descriptors of it (pagestore_gen_fd). With a
 * mapping, the mapping takes the read-write descriptor and cuts on its last unmap; without
 * one (the pread path: pins hold copies), it is cut now. Before the store's last descriptor of
 * it closes, as a descriptor is what ftruncate needs. */
static void s_gen_cut(s_gen_t *gen)
{
    if (gen->fd < 0)
        return;
    if (gen->map != NULL) {
        pagestore_mmap_cut_on_unmap(gen->map, gen->fd);
        gen->fd = -1;
    } else {
        (void)ftruncate(gen->fd, 0);
    }
}

/* Opens (creating if missing) the data file of `gen`; its end is the file's size rounded up
 * to S_ALIGN (bytes past the last index entry, from a put that crashed, are simply skipped).
 * Then maps it read-only at its size plus map_headroom (see "Get" in store/README.md: the file
 * grows into the mapping; bytes past it are read with pread). A failed mmap is logged once and
 * leaves the generation on the pread path. */
static int s_gen_open_file(s_rocks_t *self, s_gen_t *gen, bool truncate)
{
    char path[S_PATH_MAX];
    s_data_path(self, gen->gen, path);
    gen->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0644);
    if (gen->fd < 0)
        return s_errno(errno, "open", path);
    gen->read_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (gen->read_fd < 0)
        return s_errno(errno, "open", path);
    struct stat st;
    if (fstat(gen->fd, &st) < 0)
        return s_errno(errno, "stat", path);
    uint64_t end = ((uint64_t)st.st_size + S_ALIGN - 1) / S_ALIGN * S_ALIGN;
    atomic_store(&gen->end, end);
    atomic_store(&gen->written_end, (uint64_t)st.st_size);
    uint64_t length = (end + self->map_headroom + S_MAP_ROUND - 1) / S_MAP_ROUND * S_MAP_ROUND;
    gen->map = length <= SIZE_MAX ? pagestore_mmap_new(gen->fd, (size_t)length) : NULL;
    if (gen->map == NULL && !atomic_exchange(&self->map_failure_logged, true) && !self->quiet)
        fprintf(stderr,
                "shoal pagestore: warning: mmap of %s (%" PRIu64 " bytes) failed: %s; gets "
                "from it copy with pread (logged once)\n",
                path, length, strerror(errno));
    return 0;
}

/* Closes the database, every handle and data file (not the options). */
static void s_close_db(s_rocks_t *self)
{
    if (self->db == NULL)
        return;
    for (size_t i = 0; i < self->gen_count; i++)
        s_gen_free(self->gens[i]);
    self->gen_count = 0;
    for (int t = 0; t < 2; t++) {
        if (self->tables[t] != NULL)
            rocksdb_column_family_handle_destroy(self->tables[t]);
        self->tables[t] = NULL;
    }
    if (self->default_cf != NULL)
        rocksdb_column_family_handle_destroy(self->default_cf);
    self->default_cf = NULL;
    rocksdb_close(self->db);
    self->db = NULL;
}

/* Opens the database with every column family it has (plus meta and state), fills the
 * handles and opens each generation's data file. Returns 0 or the mapped error
 * (SHOAL_ECORRUPT when RocksDB reports corruption). */
static int s_open_db(s_rocks_t *self)
{
    char *err = NULL;
    size_t listed = 0;
    char **names = rocksdb_list_column_families(self->db_options, self->dir, &listed, &err);
    if (err != NULL) {
        /* No database yet (no CURRENT file): start with the fixed families only. RocksDB
         * still returns a malloc(0) array on this path: free it, or LSan reports it. */
        rocksdb_free(err);
        err = NULL;
        free(names);
        names = NULL;
        listed = 0;
    }
    const char *open_names[S_MAX_CFS];
    const rocksdb_options_t *open_options[S_MAX_CFS];
    rocksdb_column_family_handle_t *handles[S_MAX_CFS];
    uint64_t gen_of[S_MAX_CFS];
    const char *fixed[3] = {"default", "meta", "state"};
    int count = 0;
    for (int i = 0; i < 3; i++) {
        open_names[count] = fixed[i];
        open_options[count] = self->db_options;
        gen_of[count] = 0;
        count++;
    }
    for (size_t i = 0; i < listed; i++) {
        uint64_t gen;
        if (!s_parse_gen(names[i], &gen))
            continue; /* default, meta, state */
        if (count == S_MAX_CFS) {
            rocksdb_list_column_families_destroy(names, listed);
            return shoal_fail(SHOAL_EIO, "pagestore: too many column families in %s", self->dir);
        }
        open_names[count] = names[i];
        open_options[count] = self->page_options;
        gen_of[count] = gen;
        count++;
    }
    self->db = rocksdb_open_column_families(self->db_options, self->dir, count, open_names,
                                            open_options, handles, &err);
    if (names != NULL)
        rocksdb_list_column_families_destroy(names, listed);
    if (err != NULL) {
        self->db = NULL;
        return s_error(err, "open");
    }
    self->default_cf = handles[0];
    self->tables[PAGESTORE_TABLE_META] = handles[1];
    self->tables[PAGESTORE_TABLE_STATE] = handles[2];
    self->gen_count = 0;
    int rc = 0;
    for (int i = 3; i < count; i++) {
        s_gen_t *gen = calloc(1, sizeof *gen);
        if (gen == NULL) {
            rocksdb_column_family_handle_destroy(handles[i]);
            rc = rc < 0 ? rc : shoal_fail(SHOAL_ENOMEM, "pagestore: out of memory");
            continue;
        }
        gen->gen = gen_of[i];
        gen->handle = handles[i];
        gen->fd = -1;
        gen->read_fd = -1;
        self->gens[self->gen_count++] = gen;
    }
    qsort(self->gens, self->gen_count, sizeof self->gens[0], s_compare_gen);
    for (size_t i = 0; i < self->gen_count && rc == 0; i++)
        rc = s_gen_open_file(self, self->gens[i], false);
    return rc;
}

/* Drops generation gens[i]: its column family (RocksDB deletes the family's files when the
 * handle goes), then its data file. A crash in between leaves an orphan data file, which the
 * next open removes (s_remove_orphans). */
static int s_drop_at(s_rocks_t *self, size_t i)
{
    s_gen_t *gen = self->gens[i];
    char *err = NULL;
    rocksdb_drop_column_family(self->db, gen->handle, &err);
    if (err != NULL)
        return s_error(err, "drop column family");
    char path[S_PATH_MAX];
    s_data_path(self, gen->gen, path);
    (void)unlink(path); /* if this fails, the orphan is removed at the next open */
    s_gen_cut(gen);
    s_gen_free(gen);
    memmove(&self->gens[i], &self->gens[i + 1], (self->gen_count - i - 1) * sizeof self->gens[0]);
    self->gen_count--;
    return 0;
}

/* Removes data files that belong to no generation: left by a crash between dropping a
 * family and unlinking its file, or by a database destroyed for corruption. */
static void s_remove_orphans(s_rocks_t *self)
{
    DIR *dir = opendir(self->pages_dir);
    if (dir == NULL)
        return;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        unsigned long long number = 0;
        char tail[8] = "";
        if (sscanf(entry->d_name, "gen-%20llu.%7s", &number, tail) != 2 || strcmp(tail, "dat") != 0)
            continue;
        bool live = false;
        for (size_t i = 0; i < self->gen_count && !live; i++)
            live = self->gens[i]->gen == number;
        if (live)
            continue;
        char path[S_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", self->pages_dir, entry->d_name);
        (void)unlink(path);
    }
    closedir(dir);
}

static int s_kv_put(void *self_, pagestore_table_t table, const void *key, size_t key_size,
                    const void *value, size_t value_size, bool sync);
static int s_kv_get(void *self_, pagestore_table_t table, const void *key, size_t key_size,
                    void **value_out, size_t *value_size_out);

/* The page format is a record in the state table (S_FORMAT_KEY). A store written in another
 * format (format 1 had no record: any generation without it is format 1; formats 1 and 2 kept
 * the pages in blob files) cannot be read by this code, so its page generations are dropped
 * here, with one line on stderr, and the store starts with no pages; meta and state records
 * are kept (their format did not change). The record is written (synced) after the drop, so a
 * crash in between only drops again. */
static int s_check_format(s_rocks_t *self, bool quiet)
{
    void *value = NULL;
    size_t size = 0;
    int rc =
        s_kv_get(self, PAGESTORE_TABLE_STATE, S_FORMAT_KEY, sizeof S_FORMAT_KEY - 1, &value, &size);
    bool same = rc == 0 && size == sizeof S_FORMAT_VERSION - 1 &&
                memcmp(value, S_FORMAT_VERSION, size) == 0;
    free(value);
    if (same)
        return 0;
    if (rc != 0 && rc != SHOAL_ENOENT && rc != SHOAL_ECORRUPT)
        return rc;
    if (self->gen_count > 0 && !quiet)
        fprintf(stderr,
                "shoal pagestore: warning: %s holds pages of another format (this one is "
                "format " S_FORMAT_VERSION "): dropping its %zu generations\n",
                self->dir, self->gen_count);
    while (self->gen_count > 0) {
        rc = s_drop_at(self, self->gen_count - 1);
        if (rc < 0)
            return rc;
    }
    return s_kv_put(self, PAGESTORE_TABLE_STATE, S_FORMAT_KEY, sizeof S_FORMAT_KEY - 1,
                    S_FORMAT_VERSION, sizeof S_FORMAT_VERSION - 1, true);
}

static void s_close(void *self_)
{
    s_rocks_t *self = self_;
    s_close_db(self);
    s_free_options(self);
    s_pool_fini(&self->pool);
    free(self->pages_dir);
    free(self->dir);
    free(self);
}

/* Opens or creates the database and the data directory. A database RocksDB calls corrupt at
 * open (say, a damaged MANIFEST) is useless to a cache: it is destroyed and made afresh, with
 * one line on stderr (its data files become orphans and are removed). */
static int s_open(const pagestore_options_t *options, void **self_out)
{
    s_rocks_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return shoal_fail(SHOAL_ENOMEM, "pagestore: out of memory");
    pthread_mutex_init(&self->pool.lock, NULL);
    self->pool.buffer_size = ((size_t)options->page_size + S_ALIGN - 1) / S_ALIGN * S_ALIGN;
    self->quiet = options->quiet;
    /* The front end seals a generation once it holds capacity / generations bytes; puts racing
     * the seal and promotions overshoot a little, so twice that (plus a largest page) covers a
     * generation's whole life in the mapping. */
    self->map_headroom = 2 * (options->capacity_bytes / options->generations) + PAGESTORE_PAGE_MAX;
    self->dir = strdup(options->data_dir);
    if (self->dir != NULL && asprintf(&self->pages_dir, "%s/" S_PAGES_DIR, self->dir) < 0)
        self->pages_dir = NULL;
    int rc = self->pages_dir == NULL ? shoal_fail(SHOAL_ENOMEM, "pagestore: out of memory") : 0;
    if (rc == 0 && strlen(self->pages_dir) + 32 >= S_PATH_MAX)
        rc = shoal_fail(SHOAL_EINVAL, "pagestore: data_dir too long");
    if (rc == 0)
        rc = s_mkdirs(self->pages_dir);
    if (rc == 0)
        rc = s_make_options(self, options);
    if (rc == 0)
        rc = s_open_db(self);
    if (rc == SHOAL_ECORRUPT) {
        if (!options->quiet)
            fprintf(stderr, "shoal pagestore: error: %s is corrupt (%s): starting empty\n",
                    self->dir, shoal_last_error());
        s_close_db(self);
        char *err = NULL;
        rocksdb_destroy_db(self->db_options, self->dir, &err);
        rc = err != NULL ? s_error(err, "destroy") : s_open_db(self);
    }
    if (rc == 0)
        rc = s_check_format(self, options->quiet);
    if (rc == 0)
        s_remove_orphans(self);
    if (rc < 0) {
        s_close(self);
        return rc;
    }
    s_rocks_sanity(self);
    *self_out = self;
    return 0;
}

static s_gen_t *s_find_gen(s_rocks_t *self, uint64_t gen)
{
    for (size_t i = self->gen_count; i-- > 0;) {
        if (self->gens[i]->gen == gen)
            return self->gens[i];
    }
    return NULL;
}

static uint64_t s_property(s_rocks_t *self, rocksdb_column_family_handle_t *cf, const char *name)
{
    uint64_t value = 0;
    if (rocksdb_property_int_cf(self->db, cf, name, &value) != 0)
        return 0;
    return value;
}

/* A generation's bytes: its data file (logical size: what the front end counted as page
 * bytes, plus alignment padding) and its index (SST files and memtable). */
static int s_gens(void *self_, pagestore_gen_info_t **gens_out, size_t *count_out)
{
    s_rocks_t *self = self_;
    pagestore_gen_info_t *infos = calloc(self->gen_count + 1, sizeof *infos);
    if (infos == NULL)
        return shoal_fail(SHOAL_ENOMEM, "pagestore: out of memory");
    for (size_t i = 0; i < self->gen_count; i++) {
        s_gen_t *gen = self->gens[i];
        struct stat st;
        uint64_t file_bytes = fstat(gen->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
        infos[i].gen = gen->gen;
        infos[i].bytes = file_bytes +
                         s_property(self, gen->handle, "rocksdb.total-sst-files-size") +
                         s_property(self, gen->handle, "rocksdb.cur-size-all-mem-tables");
        infos[i].pages = s_property(self, gen->handle, "rocksdb.estimate-num-keys");
    }
    *gens_out = infos;
    *count_out = self->gen_count;
    return 0;
}

/* Makes the data file first (emptied if an orphan of that number exists), then the column
 * family; a crash in between leaves an orphan file. */
static int s_gen_create(void *self_, uint64_t number)
{
    s_rocks_t *self = self_;
    if (self->gen_count == S_MAX_CFS)
        return shoal_fail(SHOAL_EINTERNAL, "pagestore: too many generations");
    s_gen_t *gen = calloc(1, sizeof *gen);
    if (gen == NULL)
        return shoal_fail(SHOAL_ENOMEM, "pagestore: out of memory");
    gen->gen = number;
    gen->fd = -1;
    gen->read_fd = -1;
    int rc = s_gen_open_file(self, gen, true);
    if (rc < 0) {
        s_gen_free(gen);
        return rc;
    }
    char name[S_NAME_MAX];
    s_gen_name(number, name);
    char *err = NULL;
    gen->handle = rocksdb_create_column_family(self->db, self->page_options, name, &err);
    if (err != NULL) {
        gen->handle = NULL;
        char path[S_PATH_MAX];
        s_data_path(self, number, path);
        s_gen_free(gen);
        (void)unlink(path);
        return s_error(err, "create column family");
    }
    self->gens[self->gen_count++] = gen;
    s_rocks_sanity(self);
    return 0;
}

/* Starts the flush of a sealed generation's index so the WAL can be recycled. Errors surface
 * on later writes. */
static void s_gen_seal(void *self_, uint64_t number)
{
    s_rocks_t *self = self_;
    s_gen_t *gen = s_find_gen(self, number);
    if (gen == NULL)
        return;
    char *err = NULL;
    rocksdb_flush_cf(self->db, self->flush_nowait, gen->handle, &err);
    if (err != NULL)
        rocksdb_free(err);
}

static int s_gen_drop(void *self_, uint64_t number)
{
    s_rocks_t *self = self_;
    for (size_t i = 0; i < self->gen_count; i++) {
        if (self->gens[i]->gen == number) {
            int rc = s_drop_at(self, i);
            if (rc == 0)
                s_rocks_sanity(self);
            return rc;
        }
    }
    return 0;
}

/* Writes all of data at offset (pwrite may write less than asked). */
static int s_pwrite_all(int fd, const void *data, size_t size, uint64_t offset,
                        const char *path_for_errors)
{
    const uint8_t *bytes = data;
    while (size > 0) {
        ssize_t n = pwrite(fd, bytes, size, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EFAULT) /* a promoted page's mapped source was cut */
            return shoal_fail(SHOAL_ECORRUPT, "pagestore: the page to put is unreadable");
        if (n < 0)
            return s_errno(errno, "write", path_for_errors);
        if (n == 0)
            return s_errno(ENOSPC, "write", path_for_errors);
        bytes += n;
        size -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

/* The checksums of a page being put, written into its index value. */
typedef struct s_sums {
    const uint8_t *data; /* the page */
    size_t size;         /* its length */
    uint64_t seed;       /* s_key_seed of its key */
    uint8_t *out;        /* the index value: checksums go at S_INDEX_HEAD + 8 * chunk */
} s_sums_t;

static int s_sum_chunks(void *arg)
{
    s_sums_t *sums = arg;
    for (size_t i = 0; i < s_chunks(sums->size); i++) {
        size_t from = i << S_CHUNK_SHIFT;
        size_t length = sums->size - from < ((size_t)1 << S_CHUNK_SHIFT)
                            ? sums->size - from
                            : (size_t)1 << S_CHUNK_SHIFT;
        uint64_t sum = s_chunk_checksum(sums->seed, i, sums->data + from, length);
        memcpy(sums->out + S_INDEX_HEAD + 8 * i, &sum, 8);
    }
    return 0;
}

/* Appends the page to the generation's data file at an offset reserved with one atomic add
 * (so puts on many threads never overlap and take no lock), then writes its index entry.
 * Neither is fsync'd: see "Crash semantics" in store/README.md. A failed write leaves a hole
 * in the file that nothing points at. */
static int s_page_put(void *self_, uint64_t number, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE],
                      const void *data, size_t size)
{
    s_rocks_t *self = self_;
    s_gen_t *gen = s_find_gen(self, number);
    if (gen == NULL)
        return shoal_fail(SHOAL_EINTERNAL, "pagestore: no generation %" PRIu64, number);
    size_t chunks = s_chunks(size);
    size_t value_size = S_INDEX_HEAD + 8 * chunks;
    uint8_t small[S_INDEX_HEAD + 8 * 64];
    uint8_t *value = value_size <= sizeof small ? small : malloc(value_size);
    if (value == NULL)
        return shoal_fail(SHOAL_ENOMEM, "pagestore: out of memory");
    s_sums_t sums = {.data = data, .size = size, .seed = s_key_seed(key), .out = value};
    if (pagestore_mmap_guarded(data, size, s_sum_chunks, &sums) == PAGESTORE_MMAP_FAULT) {
        if (value != small)
            free(value);
        return shoal_fail(SHOAL_ECORRUPT, "pagestore: the page to put is unreadable (SIGBUS)");
    }
    uint64_t reserve = ((uint64_t)size + S_ALIGN - 1) / S_ALIGN * S_ALIGN;
    uint64_t offset = atomic_fetch_add(&gen->end, reserve);
    uint32_t size32 = (uint32_t)size;
    memcpy(value, &offset, 8);
    memcpy(value + 8, &size32, 4);
    memset(value + 12, 0, 4);
    value[12] = S_CHUNK_SHIFT;
    char path[S_PATH_MAX];
    s_data_path(self, number, path);
    int rc = s_pwrite_all(gen->fd, data, size, offset, path);
    if (rc == 0) {
        /* Before the index entry: a get that finds the entry finds these bytes known. */
        uint64_t written = offset + size, known = atomic_load(&gen->written_end);
        while (known < written && !atomic_compare_exchange_weak(&gen->written_end, &known, written))
            ;
        char *err = NULL;
        rocksdb_put_cf(self->db, self->page_write, gen->handle, (const char *)key,
                       PAGESTORE_PAGE_KEY_SIZE, (const char *)value, value_size, &err);
        rc = err != NULL ? s_error(err, "put") : 0;
    }
    if (value != small)
        free(value);
    return rc;
}

static void s_pinned_release(pagestore_page_t *page)
{
    s_pinned_t *pinned = (s_pinned_t *)page;
    if (pinned->map != NULL)
        pagestore_mmap_unref(&pinned->map);
    else
        s_buffer_put(&pinned->owner->pool, pinned->buffer, pinned->capacity);
    free(pinned);
}

/* Reads all of [offset, offset + size) of a data file; a short read (the bytes never reached
 * the disk before a crash, or the file was cut) is corruption. */
static int s_pread_all(int fd, void *buffer, size_t size, uint64_t offset)
{
    uint8_t *bytes = buffer;
    while (size > 0) {
        ssize_t n = pread(fd, bytes, size, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return shoal_fail(SHOAL_EIO, "pagestore: read of a data file: %s", strerror(errno));
        if (n == 0)
            return shoal_fail(SHOAL_ECORRUPT, "pagestore: page bytes missing from the data file");
        bytes += n;
        size -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

/* The chunks [first, last] of a page to check; bytes points at chunk `first`, `to` is the end
 * of the bytes (page-relative). */
typedef struct s_verify {
    const uint8_t *bytes;   /* chunk `first` of the page */
    const s_entry_t *entry; /* the index entry: chunk size and checksums */
    uint64_t seed;          /* s_key_seed of the page key */
    size_t first, last;     /* chunk numbers */
    size_t to;              /* page-relative end of the bytes */
    size_t failed;          /* out: the chunk that failed */
} s_verify_t;

/* Checks each chunk's XXH3 against the index: 0, or -1 with v->failed set. The first pass over
 * the bytes: on the mapped path it faults them in (under the SIGBUS guard). */
static int s_verify_chunks(void *arg)
{
    s_verify_t *v = arg;
    size_t from = v->first << v->entry->shift;
    for (size_t chunk = v->first; chunk <= v->last; chunk++) {
        size_t start = chunk << v->entry->shift;
        size_t end = start + ((size_t)1 << v->entry->shift);
        if (end > v->to)
            end = v->to;
        if (s_chunk_checksum(v->seed, chunk, v->bytes + (start - from), end - start) !=
            s_load_le64(v->entry->sums + 8 * chunk)) {
            v->failed = chunk;
            return -1;
        }
    }
    return 0;
}

/* Looks up a page's index entry in generation `number`: 0 with *gen_out, *entry_out (pointing
 * into *slice_out, which the caller destroys) and the slice; SHOAL_ENOENT when absent (no
 * slice); SHOAL_ECORRUPT for a malformed record (the slice is set: destroy it). */
static int s_index_get(s_rocks_t *self, uint64_t number, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE],
                       s_gen_t **gen_out, rocksdb_pinnableslice_t **slice_out, s_entry_t *entry_out)
{
    *slice_out = NULL;
    s_gen_t *gen = *gen_out = s_find_gen(self, number);
    if (gen == NULL)
        return SHOAL_ENOENT;
    char *err = NULL;
    rocksdb_pinnableslice_t *slice =
        rocksdb_get_pinned_cf(self->db, self->read_options, gen->handle, (const char *)key,
                              PAGESTORE_PAGE_KEY_SIZE, &err);
    if (err != NULL)
        return s_error(err, "get");
    if (slice == NULL)
        return SHOAL_ENOENT;
    *slice_out = slice;
    size_t value_size = 0;
    const char *value = rocksdb_pinnableslice_value(slice, &value_size);
    if (!s_entry_decode(value, value_size, entry_out))
        return shoal_fail(SHOAL_ECORRUPT, "pagestore: malformed index record");
    return 0;
}

/* Looks the page up in the generation's index and checks the chunks that cover [offset,
 * offset + length). Usually the handle points straight into the generation's mapping: no
 * copy; the checksum pass is the first touch of the bytes and runs under the SIGBUS guard, so
 * a file cut behind our back or a disk I/O error is a corrupt page (dropped by the front end),
 * not a crash. Without a mapping, or for bytes past it, the chunks are read with one pread
 * into a pooled buffer the handle owns (one copy, as for a plain pread). */
static int s_page_get(void *self_, uint64_t number, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE],
                      size_t offset, size_t length, pagestore_page_t **out)
{
    s_rocks_t *self = self_;
    s_gen_t *gen = NULL;
    rocksdb_pinnableslice_t *slice = NULL;
    s_entry_t entry;
    int rc = s_index_get(self, number, key, &gen, &slice, &entry);
    if (slice == NULL)
        return rc;
    if (rc == 0 && length == PAGESTORE_WHOLE && offset <= entry.size)
        length = entry.size - offset;
    if (rc == 0 && (offset > entry.size || length > entry.size - offset || length == 0))
        rc = shoal_fail(SHOAL_EINVAL,
                        "pagestore: range %zu+%zu is not inside the %" PRIu32 "-byte page", offset,
                        length, entry.size);
    size_t first = 0, last = 0, from = 0, to = 0;
    if (rc == 0) {
        first = offset >> entry.shift;
        last = (offset + length - 1) >> entry.shift;
        from = first << entry.shift;
        to = (last + 1) << entry.shift;
        if (to > entry.size)
            to = entry.size;
        /* Bytes past every byte known written (a power loss kept the page's index entry but
         * not its bytes) are missing: known without touching the mapping (a SIGBUS). */
        if (entry.offset + to > atomic_load(&gen->written_end))
            rc = shoal_fail(SHOAL_ECORRUPT, "pagestore: page bytes missing from the data file");
    }
    s_pinned_t *pinned = rc == 0 ? malloc(sizeof *pinned) : NULL;
    if (rc == 0 && pinned == NULL)
        rc = shoal_fail(SHOAL_ENOMEM, "pagestore: out of memory");
    const uint8_t *bytes = NULL;
    if (rc == 0) {
        *pinned = (s_pinned_t){.owner = self};
        if (gen->map != NULL && entry.offset + to <= pagestore_mmap_length(gen->map)) {
            pinned->map = gen->map;
            pagestore_mmap_ref(pinned->map);
            bytes = pagestore_mmap_base(pinned->map) + entry.offset + from;
        } else {
            pinned->buffer = s_buffer_get(&self->pool, to - from, &pinned->capacity);
            if (pinned->buffer == NULL)
                rc = shoal_fail(SHOAL_ENOMEM, "pagestore: out of memory");
            else
                rc = s_pread_all(gen->fd, pinned->buffer, to - from, entry.offset + from);
            bytes = pinned->buffer;
        }
    }
    if (rc == 0) {
        s_verify_t verify = {.bytes = bytes,
                             .entry = &entry,
                             .seed = s_key_seed(key),
                             .first = first,
                             .last = last,
                             .to = to};
        int verdict = pinned->map != NULL
                          ? pagestore_mmap_guarded(bytes, to - from, s_verify_chunks, &verify)
                          : s_verify_chunks(&verify);
        if (verdict == PAGESTORE_MMAP_FAULT) {
            atomic_fetch_add(&self->faults, 1);
            if (!atomic_exchange(&self->fault_logged, true) && !self->quiet)
                fprintf(stderr,
                        "shoal pagestore: warning: SIGBUS reading page bytes of "
                        "generation %" PRIu64 " through its mapping (the data file was "
                        "cut, or a disk I/O error): the page is dropped; further faults "
                        "are counted in stats.faults (logged once)\n",
                        number);
            rc = shoal_fail(SHOAL_ECORRUPT,
                            "pagestore: page bytes unreadable (SIGBUS: data file cut or I/O "
                            "error)");
        } else if (verdict != 0) {
            rc = shoal_fail(SHOAL_ECORRUPT, "pagestore: chunk %zu of the page failed its checksum",
                            verify.failed);
        }
    }
    if (rc == 0) {
        pinned->page = (pagestore_page_t){.data = bytes + (offset - from),
                                          .size = length,
                                          .page_size = entry.size,
                                          .release = s_pinned_release};
        *out = &pinned->page;
    } else if (pinned != NULL) {
        s_pinned_release(&pinned->page);
    }
    rocksdb_pinnableslice_destroy(slice);
    return rc;
}

/* Where a page of `number` lies: its index entry, no page bytes read. */
static int s_page_locate(void *self_, uint64_t number, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE],
                         pagestore_location_t *out)
{
    s_rocks_t *self = self_;
    s_gen_t *gen = NULL;
    rocksdb_pinnableslice_t *slice = NULL;
    s_entry_t entry;
    int rc = s_index_get(self, number, key, &gen, &slice, &entry);
    if (slice == NULL)
        return rc;
    if (rc == 0 && entry.offset + entry.size > atomic_load(&gen->written_end))
        rc = shoal_fail(SHOAL_ECORRUPT, "pagestore: page bytes missing from the data file");
    size_t chunks = rc == 0 ? (entry.size + ((size_t)1 << entry.shift) - 1) >> entry.shift : 0;
    if (rc == 0 && chunks > PAGESTORE_LOCATE_SUMS_MAX)
        rc = shoal_fail(SHOAL_ENOTSUP, "pagestore: %zu chunk sums, more than a location holds",
                        chunks);
    if (rc == 0) {
        out->gen = number;
        out->offset = entry.offset;
        out->size = entry.size;
        out->chunk_shift = entry.shift;
        out->seed = s_key_seed(key);
        out->chunk_count = (uint32_t)chunks;
        for (size_t c = 0; c < chunks; c++)
            out->sums[c] = s_load_le64(entry.sums + 8 * c);
    }
    rocksdb_pinnableslice_destroy(slice);
    return rc;
}

/* A fresh read-only descriptor of a live generation's data file. The front end holds its lock,
 * so the generation (and read_fd) cannot be dropped meanwhile. */
static int s_gen_fd(void *self_, uint64_t number, int *fd_out)
{
    s_rocks_t *self = self_;
    s_gen_t *gen = s_find_gen(self, number);
    if (gen == NULL || gen->read_fd < 0)
        return shoal_fail(SHOAL_ENOENT, "pagestore: no generation %" PRIu64, number);
    int fd = fcntl(gen->read_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return shoal_fail(SHOAL_EIO, "pagestore: dup of a data file: %s", strerror(errno));
    *fd_out = fd;
    return 0;
}

/* Gets whose mapped bytes raised SIGBUS since open. */
static uint64_t s_faults(void *self_)
{
    s_rocks_t *self = self_;
    return atomic_load(&self->faults);
}

static int s_page_delete(void *self_, uint64_t number, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE])
{
    s_rocks_t *self = self_;
    s_gen_t *gen = s_find_gen(self, number);
    if (gen == NULL)
        return 0;
    char *err = NULL;
    rocksdb_delete_cf(self->db, self->page_write, gen->handle, (const char *)key,
                      PAGESTORE_PAGE_KEY_SIZE, &err);
    return err != NULL ? s_error(err, "delete") : 0;
}

/* The range of a file's pages: [file_key | 0^8, file_key | FF^8 | 00). Every page key is 24
 * bytes, so the 25-byte end sorts after the last possible page of the file. */
static void s_file_range(const uint8_t *file_key, uint8_t start[PAGESTORE_PAGE_KEY_SIZE],
                         uint8_t end[PAGESTORE_PAGE_KEY_SIZE + 1])
{
    memcpy(start, file_key, PAGESTORE_FILE_KEY_SIZE);
    memset(start + PAGESTORE_FILE_KEY_SIZE, 0, 8);
    memcpy(end, file_key, PAGESTORE_FILE_KEY_SIZE);
    memset(end + PAGESTORE_FILE_KEY_SIZE, 0xFF, 8);
    end[PAGESTORE_PAGE_KEY_SIZE] = 0;
}

static int s_file_delete(void *self_, uint64_t number,
                         const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE])
{
    s_rocks_t *self = self_;
    s_gen_t *gen = s_find_gen(self, number);
    if (gen == NULL)
        return 0;
    uint8_t start[PAGESTORE_PAGE_KEY_SIZE], end[PAGESTORE_PAGE_KEY_SIZE + 1];
    s_file_range(file_key, start, end);
    char *err = NULL;
    rocksdb_delete_range_cf(self->db, self->page_write, gen->handle, (const char *)start,
                            sizeof start, (const char *)end, sizeof end, &err);
    return err != NULL ? s_error(err, "delete range") : 0;
}

/* Iterates a generation's index (small records: no page bytes are read). A corrupt block ends
 * the scan of that generation with its error. */
static int s_page_scan(void *self_, uint64_t number, const uint8_t *file_key,
                       pagestore_record_fn fn, void *arg)
{
    s_rocks_t *self = self_;
    s_gen_t *gen = s_find_gen(self, number);
    if (gen == NULL)
        return 0;
    rocksdb_readoptions_t *read_options = rocksdb_readoptions_create();
    if (read_options == NULL)
        return shoal_fail(SHOAL_ENOMEM, "pagestore: out of memory");
    uint8_t start[PAGESTORE_PAGE_KEY_SIZE], end[PAGESTORE_PAGE_KEY_SIZE + 1];
    rocksdb_readoptions_set_fill_cache(read_options, 0);
    if (file_key != NULL) {
        s_file_range(file_key, start, end);
        rocksdb_readoptions_set_iterate_lower_bound(read_options, (const char *)start,
                                                    sizeof start);
        rocksdb_readoptions_set_iterate_upper_bound(read_options, (const char *)end, sizeof end);
    }
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(self->db, read_options, gen->handle);
    int rc = 0;
    for (rocksdb_iter_seek_to_first(it); rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t key_size = 0, value_size = 0;
        const char *key = rocksdb_iter_key(it, &key_size);
        const char *value = rocksdb_iter_value(it, &value_size);
        s_entry_t entry;
        if (key_size == PAGESTORE_PAGE_KEY_SIZE && s_entry_decode(value, value_size, &entry))
            rc = fn((const uint8_t *)key, entry.size, arg);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (rc == 0 && err != NULL)
        rc = s_error(err, "scan");
    else if (err != NULL)
        rocksdb_free(err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(read_options);
    return rc;
}

static int s_kv_put(void *self_, pagestore_table_t table, const void *key, size_t key_size,
                    const void *value, size_t value_size, bool sync)
{
    s_rocks_t *self = self_;
    char *err = NULL;
    rocksdb_put_cf(self->db, sync ? self->state_write : self->meta_write, self->tables[table], key,
                   key_size, value_size > 0 ? value : "", value_size, &err);
    return err != NULL ? s_error(err, "put record") : 0;
}

static int s_kv_delete(void *self_, pagestore_table_t table, const void *key, size_t key_size)
{
    s_rocks_t *self = self_;
    char *err = NULL;
    rocksdb_delete_cf(self->db, self->meta_write, self->tables[table], key, key_size, &err);
    return err != NULL ? s_error(err, "delete record") : 0;
}

/* Copies the record into a malloc'd buffer (rocksdb_get_cf's buffer must go back through
 * rocksdb_free). A corrupt record is deleted and reported as SHOAL_ECORRUPT. */
static int s_kv_get(void *self_, pagestore_table_t table, const void *key, size_t key_size,
                    void **value_out, size_t *value_size_out)
{
    s_rocks_t *self = self_;
    char *err = NULL;
    size_t size = 0;
    char *value = rocksdb_get_cf(self->db, self->read_options, self->tables[table], key, key_size,
                                 &size, &err);
    if (err != NULL) {
        int rc = s_error(err, "get record");
        if (rc == SHOAL_ECORRUPT)
            (void)s_kv_delete(self, table, key, key_size);
        return rc;
    }
    if (value == NULL)
        return shoal_fail(SHOAL_ENOENT, "pagestore: no such record");
    void *copy = NULL;
    if (size > 0) {
        copy = malloc(size);
        if (copy == NULL) {
            rocksdb_free(value);
            return shoal_fail(SHOAL_ENOMEM, "pagestore: out of memory");
        }
        memcpy(copy, value, size);
    }
    rocksdb_free(value);
    *value_out = copy;
    *value_size_out = size;
    return 0;
}

static int s_flush(void *self_)
{
    s_rocks_t *self = self_;
    char *err = NULL;
    for (size_t i = 0; i < self->gen_count && err == NULL; i++)
        rocksdb_flush_cf(self->db, self->flush_wait, self->gens[i]->handle, &err);
    for (int t = 0; t < 2 && err == NULL; t++)
        rocksdb_flush_cf(self->db, self->flush_wait, self->tables[t], &err);
    return err != NULL ? s_error(err, "flush") : 0;
}

/* After a failed write. RocksDB may have resumed by itself (it retries flushes that failed
 * with a retryable error such as ENOSPC), so first probe with a tiny synced write; if that
 * fails too, close and reopen the database, which clears a background error (the pages still
 * in the memtable are lost: they were never on disk). */
static int s_recover(void *self_)
{
    s_rocks_t *self = self_;
    static const char probe_key[] = "\x01pagestore-probe";
    int rc = s_kv_put(self, PAGESTORE_TABLE_STATE, probe_key, sizeof probe_key - 1, "", 0, true);
    if (rc == 0)
        return s_kv_delete(self, PAGESTORE_TABLE_STATE, probe_key, sizeof probe_key - 1);
    s_close_db(self);
    rc = s_open_db(self);
    if (rc < 0)
        return rc;
    rc = s_kv_put(self, PAGESTORE_TABLE_STATE, probe_key, sizeof probe_key - 1, "", 0, true);
    if (rc == 0)
        rc = s_kv_delete(self, PAGESTORE_TABLE_STATE, probe_key, sizeof probe_key - 1);
    if (rc == 0)
        s_rocks_sanity(self);
    return rc;
}

const pagestore_backend_t pagestore_rocksdb_backend = {
    .name = "rocksdb",
    .open = s_open,
    .close = s_close,
    .gens = s_gens,
    .gen_create = s_gen_create,
    .gen_seal = s_gen_seal,
    .gen_drop = s_gen_drop,
    .page_put = s_page_put,
    .page_get = s_page_get,
    .page_delete = s_page_delete,
    .file_delete = s_file_delete,
    .page_scan = s_page_scan,
    .kv_put = s_kv_put,
    .kv_get = s_kv_get,
    .kv_delete = s_kv_delete,
    .flush = s_flush,
    .recover = s_recover,
    .faults = s_faults,
    .page_locate = s_page_locate,
    .gen_fd = s_gen_fd,
};
