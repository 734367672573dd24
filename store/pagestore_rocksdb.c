/*
 * pagestore_rocksdb.c - the RocksDB page-store backend. One database in <data_dir> with column
 * families "meta", "state" and one "pages.<generation>" per live generation; page values live
 * in blob files, so dropping a generation's column family deletes its files and gives the disk
 * space back at once. Layout and tuning are explained in store/README.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pagestore_backend.h"
#include <xxh_x86dispatch.h>

#define S_GEN_PREFIX "pages."
#define S_NAME_MAX 64
#define S_MIN_BLOB_SIZE 4096 /* shorter values (file tails) stay inline in the SST files */
#define S_MAX_CFS (64 + 2 + 8) /* generations + meta/state/default, with slack */
#define S_FORMAT_VERSION "2"   /* page value format: 1 = XXH64 trailer, 2 = XXH3 trailer */
#define S_FORMAT_KEY "\x01pagestore-format" /* its record in the state table */

/* One generation's column family. */
typedef struct s_gen {
    uint64_t gen;                          /* generation number */
    rocksdb_column_family_handle_t *handle; /* its column family */
} s_gen_t;

/* Invariant: gens[] holds every pages.* column family of db, oldest first. gens[] changes only
 * in gen_create / gen_drop / recover, which the front end never runs beside other calls. */
typedef struct s_rocks {
    char *dir;                             /* data directory */
    rocksdb_t *db;                         /* the database */
    rocksdb_options_t *db_options;         /* DB-wide options, also for default/meta/state */
    rocksdb_options_t *page_options;       /* options of every pages.* family */
    rocksdb_block_based_table_options_t *table_options; /* bloom filter + shared cache */
    rocksdb_block_based_table_options_t *kv_table_options; /* meta/state: cache only */
    rocksdb_filterpolicy_t *filter;        /* owned by table_options once set */
    rocksdb_cache_t *cache;                /* block cache (keys, filters, meta/state records) */
    rocksdb_readoptions_t *read_options;   /* meta/state: verify_checksums on */
    rocksdb_readoptions_t *page_read;      /* pages: our own checksum instead (see s_check) */
    rocksdb_writeoptions_t *page_write;    /* pages: no WAL (a crash loses the memtable only) */
    rocksdb_writeoptions_t *meta_write;    /* meta: WAL, no fsync */
    rocksdb_writeoptions_t *state_write;   /* state: WAL and fsync */
    rocksdb_flushoptions_t *flush_wait;    /* flush and wait */
    rocksdb_flushoptions_t *flush_nowait;  /* flush in the background */
    rocksdb_column_family_handle_t *tables[2]; /* meta, state (pagestore_table_t order) */
    rocksdb_column_family_handle_t *default_cf; /* unused but must stay open */
    s_gen_t gens[S_MAX_CFS];               /* live generations, oldest first */
    size_t gen_count;                      /* entries of gens[] */
} s_rocks_t;

/* A pinned page: the slice owns RocksDB's copy of the blob (or pins a memtable or block). */
typedef struct s_pinned {
    pagestore_page_t page;         /* first: what the front end sees */
    rocksdb_pinnableslice_t *slice; /* released with the page */
} s_pinned_t;

/* ---- page checksum ------------------------------------------------------------------------
 *
 * Every page value is stored with an 8-byte trailer, and checked on every get:
 *
 *    +----------------------------+----------------------------------------------------+
 *    | page bytes (size)          | XXH3_64(page bytes, seed = XXH3_64(page key)), LE |
 *    +----------------------------+----------------------------------------------------+
 *
 * RocksDB's own check of blob records is CRC32C, which the distribution's librocksdb computes
 * in portable software code at about 0.6 GB/s: a pinned get ran at 7% of pread. XXH3 (Debian's
 * libxxhash, with its run-time SSE2/AVX2/AVX-512 dispatch) runs at ~55 GB/s on a page hot in
 * the cache, five times the portable XXH64 used before (format 1), and seeding it with the key
 * also catches a value served for the wrong key (a damaged index). So page reads use
 * verify_checksums = false and this check; meta and state reads, compactions and opening still
 * use RocksDB's checksums. The trailer's format is S_FORMAT_VERSION (see s_check_format). */

#define S_TRAILER 8

static uint64_t s_page_checksum(const uint8_t *key, const void *data, size_t size)
{
    return XXH3_64bits_withSeed_dispatch(data, size,
                                         XXH3_64bits_dispatch(key, PAGESTORE_PAGE_KEY_SIZE));
}

/* Whether a stored value (page + trailer) is intact for `key`. */
static bool s_check(const uint8_t *key, const char *value, size_t size)
{
    if (size < S_TRAILER)
        return false;
    uint64_t stored;
    memcpy(&stored, value + size - S_TRAILER, S_TRAILER); /* little-endian hosts only */
    return stored == s_page_checksum(key, value, size - S_TRAILER);
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
    uint64_t x = ((const s_gen_t *)a)->gen, y = ((const s_gen_t *)b)->gen;
    return x < y ? -1 : x > y;
}

/* mkdir -p. Returns 0 or SHOAL_EIO. */
static int s_mkdirs(const char *dir)
{
    char path[4096];
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

/* Builds every options object from the front end's options. The choices, measured in
 * tools/bench/bench_store.c and store/README.md:
 * - page values go to blob files (min 4 KiB): compactions then move only the small keys, and
 *   a generation's bytes sit in its own blob files, which drop with its column family;
 * - no compression anywhere (training data is usually compressed already);
 * - page reads go through mmap (allow_mmap_reads) and skip the blob cache: RocksDB 7.8 always
 *   copies a blob out of the file into a buffer of its own (BlobFileReader), which the pinned
 *   slice then owns and the page goes to ZeroMQ from; with pread it also copied the bytes
 *   in from the kernel first, and a blob cache added an insert and an eviction per miss, so a
 *   get did two copies instead of one. Measured in store/README.md. The cost: a read error
 *   on a mapped file (a failing disk) is a SIGBUS rather than an error code;
 * - one LRU cache, cache_bytes, for blocks (index, filters, meta/state records); the OS page
 *   cache holds the pages;
 * - bloom filters (10 bits/key) so the lookups in generations without the page are cheap;
 * - a small info log, manifest and WAL (only meta/state use the WAL). */
static int s_make_options(s_rocks_t *self, const pagestore_options_t *options)
{
    self->cache = rocksdb_cache_create_lru(options->cache_bytes);
    self->db_options = rocksdb_options_create();
    self->page_options = rocksdb_options_create();
    self->table_options = rocksdb_block_based_options_create();
    self->kv_table_options = rocksdb_block_based_options_create();
    self->read_options = rocksdb_readoptions_create();
    self->page_read = rocksdb_readoptions_create();
    self->page_write = rocksdb_writeoptions_create();
    self->meta_write = rocksdb_writeoptions_create();
    self->state_write = rocksdb_writeoptions_create();
    self->flush_wait = rocksdb_flushoptions_create();
    self->flush_nowait = rocksdb_flushoptions_create();
    if (self->cache == NULL || self->db_options == NULL || self->page_options == NULL ||
        self->table_options == NULL || self->kv_table_options == NULL ||
        self->read_options == NULL || self->page_read == NULL || self->page_write == NULL || self->meta_write == NULL ||
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
    rocksdb_options_set_allow_mmap_reads(db, 1);
    rocksdb_options_set_block_based_table_factory(db, self->kv_table_options);

    rocksdb_options_t *page = self->page_options;
    rocksdb_options_set_compression(page, 0);
    rocksdb_options_set_write_buffer_size(page, options->memtable_bytes);
    rocksdb_options_set_max_write_buffer_number(page, 2);
    rocksdb_options_set_enable_blob_files(page, 1);
    rocksdb_options_set_min_blob_size(page, S_MIN_BLOB_SIZE);
    rocksdb_options_set_blob_compression_type(page, 0);
    rocksdb_options_set_enable_blob_gc(page, 0);
    rocksdb_options_set_block_based_table_factory(page, self->table_options);

    rocksdb_readoptions_set_verify_checksums(self->read_options, 1);
    rocksdb_readoptions_set_verify_checksums(self->page_read, 0);
    rocksdb_writeoptions_disable_WAL(self->page_write, 1);
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
    if (self->page_read != NULL)
        rocksdb_readoptions_destroy(self->page_read);
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

/* Closes the database and every handle (not the options). */
static void s_close_db(s_rocks_t *self)
{
    if (self->db == NULL)
        return;
    for (size_t i = 0; i < self->gen_count; i++)
        rocksdb_column_family_handle_destroy(self->gens[i].handle);
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
 * handles. Returns 0 or the mapped error (SHOAL_ECORRUPT when RocksDB reports corruption). */
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
    for (int i = 3; i < count; i++)
        self->gens[self->gen_count++] = (s_gen_t){.gen = gen_of[i], .handle = handles[i]};
    qsort(self->gens, self->gen_count, sizeof self->gens[0], s_compare_gen);
    return 0;
}

static int s_kv_put(void *self_, pagestore_table_t table, const void *key, size_t key_size,
                    const void *value, size_t value_size, bool sync);
static int s_kv_get(void *self_, pagestore_table_t table, const void *key, size_t key_size,
                    void **value_out, size_t *value_size_out);

/* The page value format is a record in the state table (S_FORMAT_KEY). A store written in
 * another format (format 1 had no record: any generation without it is format 1) would fail
 * every checksum, so its page generations are dropped here, with one line on stderr, and the
 * store starts with no pages; meta and state records are kept (their format did not change).
 * The record is written (synced) after the drop, so a crash in between only drops again. */
static int s_check_format(s_rocks_t *self, bool quiet)
{
    void *value = NULL;
    size_t size = 0;
    int rc = s_kv_get(self, PAGESTORE_TABLE_STATE, S_FORMAT_KEY, sizeof S_FORMAT_KEY - 1,
                      &value, &size);
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
        s_gen_t *gen = &self->gens[self->gen_count - 1];
        char *err = NULL;
        rocksdb_drop_column_family(self->db, gen->handle, &err);
        if (err != NULL)
            return s_error(err, "drop column family");
        rocksdb_column_family_handle_destroy(gen->handle);
        self->gen_count--;
    }
    return s_kv_put(self, PAGESTORE_TABLE_STATE, S_FORMAT_KEY, sizeof S_FORMAT_KEY - 1,
                    S_FORMAT_VERSION, sizeof S_FORMAT_VERSION - 1, true);
}

static void s_close(void *self_)
{
    s_rocks_t *self = self_;
    s_close_db(self);
    s_free_options(self);
    free(self->dir);
    free(self);
}

/* Opens or creates the database. A database RocksDB calls corrupt at open (say, a damaged
 * MANIFEST) is useless to a cache: it is destroyed and made afresh, with one line on stderr. */
static int s_open(const pagestore_options_t *options, void **self_out)
{
    s_rocks_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return shoal_fail(SHOAL_ENOMEM, "pagestore: out of memory");
    self->dir = strdup(options->data_dir);
    int rc = self->dir == NULL ? shoal_fail(SHOAL_ENOMEM, "pagestore: out of memory") : 0;
    if (rc == 0)
        rc = s_mkdirs(self->dir);
    if (rc == 0)
        rc = s_make_options(self, options);
    if (rc == 0)
        rc = s_open_db(self);
    if (rc == SHOAL_ECORRUPT) {
        if (!options->quiet)
            fprintf(stderr, "shoal pagestore: error: %s is corrupt (%s): starting empty\n",
                    self->dir, shoal_last_error());
        char *err = NULL;
        rocksdb_destroy_db(self->db_options, self->dir, &err);
        rc = err != NULL ? s_error(err, "destroy") : s_open_db(self);
    }
    if (rc == 0)
        rc = s_check_format(self, options->quiet);
    if (rc < 0) {
        s_close(self);
        return rc;
    }
    *self_out = self;
    return 0;
}

static rocksdb_column_family_handle_t *s_handle(s_rocks_t *self, uint64_t gen)
{
    for (size_t i = self->gen_count; i-- > 0;) {
        if (self->gens[i].gen == gen)
            return self->gens[i].handle;
    }
    return NULL;
}

static uint64_t s_property(s_rocks_t *self, rocksdb_column_family_handle_t *cf,
                           const char *name)
{
    uint64_t value = 0;
    if (rocksdb_property_int_cf(self->db, cf, name, &value) != 0)
        return 0;
    return value;
}

static int s_gens(void *self_, pagestore_gen_info_t **gens_out, size_t *count_out)
{
    s_rocks_t *self = self_;
    pagestore_gen_info_t *infos = calloc(self->gen_count + 1, sizeof *infos);
    if (infos == NULL)
        return shoal_fail(SHOAL_ENOMEM, "pagestore: out of memory");
    for (size_t i = 0; i < self->gen_count; i++) {
        rocksdb_column_family_handle_t *cf = self->gens[i].handle;
        infos[i].gen = self->gens[i].gen;
        infos[i].bytes = s_property(self, cf, "rocksdb.total-blob-file-size") +
                         s_property(self, cf, "rocksdb.total-sst-files-size") +
                         s_property(self, cf, "rocksdb.cur-size-all-mem-tables");
        infos[i].pages = s_property(self, cf, "rocksdb.estimate-num-keys");
    }
    *gens_out = infos;
    *count_out = self->gen_count;
    return 0;
}

static int s_gen_create(void *self_, uint64_t gen)
{
    s_rocks_t *self = self_;
    if (self->gen_count == S_MAX_CFS)
        return shoal_fail(SHOAL_EINTERNAL, "pagestore: too many generations");
    char name[S_NAME_MAX];
    s_gen_name(gen, name);
    char *err = NULL;
    rocksdb_column_family_handle_t *handle =
        rocksdb_create_column_family(self->db, self->page_options, name, &err);
    if (err != NULL)
        return s_error(err, "create column family");
    self->gens[self->gen_count++] = (s_gen_t){.gen = gen, .handle = handle};
    return 0;
}

/* Starts the flush of a sealed generation so its memtable (pages not on disk yet, not in any
 * WAL) reaches disk soon and its memory is freed. Errors surface on later writes. */
static void s_gen_seal(void *self_, uint64_t gen)
{
    s_rocks_t *self = self_;
    rocksdb_column_family_handle_t *handle = s_handle(self, gen);
    if (handle == NULL)
        return;
    char *err = NULL;
    rocksdb_flush_cf(self->db, self->flush_nowait, handle, &err);
    if (err != NULL)
        rocksdb_free(err);
}

/* Drops the column family, then destroys the handle: the last reference going away makes
 * RocksDB delete the family's SST and blob files right there. */
static int s_gen_drop(void *self_, uint64_t gen)
{
    s_rocks_t *self = self_;
    for (size_t i = 0; i < self->gen_count; i++) {
        if (self->gens[i].gen != gen)
            continue;
        char *err = NULL;
        rocksdb_drop_column_family(self->db, self->gens[i].handle, &err);
        if (err != NULL)
            return s_error(err, "drop column family");
        rocksdb_column_family_handle_destroy(self->gens[i].handle);
        memmove(&self->gens[i], &self->gens[i + 1],
                (self->gen_count - i - 1) * sizeof self->gens[0]);
        self->gen_count--;
        return 0;
    }
    return 0;
}

/* Writes page + trailer as one value (a two-part write batch, so the page is not copied an
 * extra time to append the trailer). */
static int s_page_put(void *self_, uint64_t gen, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE],
                      const void *data, size_t size)
{
    s_rocks_t *self = self_;
    rocksdb_column_family_handle_t *handle = s_handle(self, gen);
    if (handle == NULL)
        return shoal_fail(SHOAL_EINTERNAL, "pagestore: no generation %" PRIu64, gen);
    uint64_t checksum = s_page_checksum(key, data, size);
    const char *keys[1] = {(const char *)key};
    size_t key_sizes[1] = {PAGESTORE_PAGE_KEY_SIZE};
    const char *values[2] = {data, (const char *)&checksum};
    size_t value_sizes[2] = {size, S_TRAILER};
    rocksdb_writebatch_t *batch = rocksdb_writebatch_create();
    if (batch == NULL)
        return shoal_fail(SHOAL_ENOMEM, "pagestore: out of memory");
    rocksdb_writebatch_putv_cf(batch, handle, 1, keys, key_sizes, 2, values, value_sizes);
    char *err = NULL;
    rocksdb_write(self->db, self->page_write, batch, &err);
    rocksdb_writebatch_destroy(batch);
    return err != NULL ? s_error(err, "put") : 0;
}

static void s_pinned_release(pagestore_page_t *page)
{
    s_pinned_t *pinned = (s_pinned_t *)page;
    rocksdb_pinnableslice_destroy(pinned->slice);
    free(pinned);
}

static int s_page_get(void *self_, uint64_t gen, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE],
                      pagestore_page_t **out)
{
    s_rocks_t *self = self_;
    rocksdb_column_family_handle_t *handle = s_handle(self, gen);
    if (handle == NULL)
        return SHOAL_ENOENT;
    char *err = NULL;
    rocksdb_pinnableslice_t *slice = rocksdb_get_pinned_cf(
        self->db, self->page_read, handle, (const char *)key, PAGESTORE_PAGE_KEY_SIZE, &err);
    if (err != NULL)
        return s_error(err, "get");
    if (slice == NULL)
        return SHOAL_ENOENT;
    s_pinned_t *pinned = malloc(sizeof *pinned);
    if (pinned == NULL) {
        rocksdb_pinnableslice_destroy(slice);
        return shoal_fail(SHOAL_ENOMEM, "pagestore: out of memory");
    }
    size_t size = 0;
    const char *data = rocksdb_pinnableslice_value(slice, &size);
    if (!s_check(key, data, size)) {
        rocksdb_pinnableslice_destroy(slice);
        free(pinned);
        return shoal_fail(SHOAL_ECORRUPT, "rocksdb get: Corruption: page checksum mismatch");
    }
    pinned->slice = slice;
    pinned->page = (pagestore_page_t){.data = data, .size = size - S_TRAILER,
                                      .release = s_pinned_release};
    *out = &pinned->page;
    return 0;
}

static int s_page_delete(void *self_, uint64_t gen, const uint8_t key[PAGESTORE_PAGE_KEY_SIZE])
{
    s_rocks_t *self = self_;
    rocksdb_column_family_handle_t *handle = s_handle(self, gen);
    if (handle == NULL)
        return 0;
    char *err = NULL;
    rocksdb_delete_cf(self->db, self->page_write, handle, (const char *)key,
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

static int s_file_delete(void *self_, uint64_t gen,
                         const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE])
{
    s_rocks_t *self = self_;
    rocksdb_column_family_handle_t *handle = s_handle(self, gen);
    if (handle == NULL)
        return 0;
    uint8_t start[PAGESTORE_PAGE_KEY_SIZE], end[PAGESTORE_PAGE_KEY_SIZE + 1];
    s_file_range(file_key, start, end);
    char *err = NULL;
    rocksdb_delete_range_cf(self->db, self->page_write, handle, (const char *)start,
                            sizeof start, (const char *)end, sizeof end, &err);
    return err != NULL ? s_error(err, "delete range") : 0;
}

/* Iterates a generation (RocksDB 7.8 iterators read blob values too: this is for stats). A
 * corrupt record ends the scan of that generation with SHOAL_EIO. */
static int s_page_scan(void *self_, uint64_t gen, const uint8_t *file_key,
                       pagestore_record_fn fn, void *arg)
{
    s_rocks_t *self = self_;
    rocksdb_column_family_handle_t *handle = s_handle(self, gen);
    if (handle == NULL)
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
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(self->db, read_options, handle);
    int rc = 0;
    for (rocksdb_iter_seek_to_first(it); rc == 0 && rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t key_size = 0, value_size = 0;
        const char *key = rocksdb_iter_key(it, &key_size);
        (void)rocksdb_iter_value(it, &value_size);
        if (key_size == PAGESTORE_PAGE_KEY_SIZE && value_size >= S_TRAILER)
            rc = fn((const uint8_t *)key, value_size - S_TRAILER, arg);
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
    rocksdb_put_cf(self->db, sync ? self->state_write : self->meta_write, self->tables[table],
                   key, key_size, value_size > 0 ? value : "", value_size, &err);
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
    char *value = rocksdb_get_cf(self->db, self->read_options, self->tables[table], key,
                                 key_size, &size, &err);
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
        rocksdb_flush_cf(self->db, self->flush_wait, self->gens[i].handle, &err);
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
};
