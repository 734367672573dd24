/*
 * pagestore.c - the page store's front end: file keys, generations under the quota, promotion
 * of pages in use, counters and error reporting, over a backend (pagestore_backend.h).
 * The eviction design is explained in store/README.md ("Eviction").
 */
#include "pagestore.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "pagestore_backend.h"
#include "htab.h"

#define S_GENERATIONS_DEFAULT 8
#define S_GENERATIONS_MAX     64
#define S_META_MAX            (1u << 20)    /* largest metadata blob */
#define S_STATE_MAX           (64u << 10)   /* largest state record */
#define S_RECOVER_FIRST_NS    1000000000ll  /* first retry of a failed store after 1 s ... */
#define S_RECOVER_MAX_NS      60000000000ll /* ... doubling up to once a minute */

/* One live generation. bytes and pages grow under the read lock (puts), so they are atomic. */
typedef struct s_gen {
    uint64_t gen;           /* generation number, grows by one per rotation */
    _Atomic uint64_t bytes; /* key + value bytes written into it */
    _Atomic uint64_t pages; /* records written into it */
} s_gen_t;

/* Invariants (pagestore_sanity): 1 <= gen_count <= S_GENERATIONS_MAX + 1; gens[] is oldest
 * first with strictly growing numbers; usage == sum of gens[].bytes. The gens array changes
 * only under the write lock; every backend call on pages holds at least the read lock, so a
 * generation is never dropped under a reader. */
struct pagestore {
    const pagestore_backend_t *backend;  /* RocksDB or memory */
    void *backend_self;                  /* the backend's state */
    _Atomic int refs;                    /* 1 for the owner + 1 per page handle out */
    pthread_rwlock_t lock;               /* guards gens[] / gen_count (see above) */
    s_gen_t gens[S_GENERATIONS_MAX + 1]; /* live generations, oldest first */
    size_t gen_count;                    /* entries of gens[] in use */
    _Atomic uint64_t usage;              /* sum of gens[].bytes */
    uint64_t capacity;                   /* the quota in bytes */
    uint64_t gen_target;                 /* a generation is sealed when it holds this much */
    uint32_t page_size;                  /* the usual page size */
    bool quiet;                          /* no stderr logging */
    _Atomic int write_error;             /* 0, or the code of the last failed write */
    _Atomic bool write_error_logged;     /* the current failure streak was logged */
    _Atomic int64_t recover_at_ns;       /* when to try recovering from write_error next */
    _Atomic int64_t recover_delay_ns;    /* current backoff between recovery attempts */
    pthread_mutex_t recover_lock;        /* one recovery attempt at a time */
    uint64_t store_id;                   /* random per open, never 0 (pagestore_store_id) */
    /* counters, see pagestore_stats_t */
    _Atomic uint64_t puts, hits, misses, promotions, evicted_pages, evicted_bytes, evictions,
        corruptions, write_errors, read_errors;
};

/* Checks every invariant stated above (SQLite style: assert-only, nothing under NDEBUG). The
 * caller holds the write lock, or is alone with the store (open): puts raise a generation's
 * bytes and the usage one after the other under the read lock, so the sum holds only when no
 * put is in flight. */
static void s_sanity_locked(pagestore_t *self)
{
#ifndef NDEBUG
    assert(atomic_load(&self->refs) >= 1);
    assert(self->gen_target > 0 && self->gen_target <= self->capacity);
    assert(self->gen_count >= 1 && self->gen_count <= S_GENERATIONS_MAX + 1);
    uint64_t sum = atomic_load(&self->gens[0].bytes);
    for (size_t i = 1; i < self->gen_count; i++) {
        assert(self->gens[i - 1].gen < self->gens[i].gen);
        sum += atomic_load(&self->gens[i].bytes);
    }
    assert(atomic_load(&self->usage) == sum);
#else
    (void)self;
#endif
}

void pagestore_sanity(pagestore_t *self)
{
#ifndef NDEBUG
    pthread_rwlock_wrlock(&self->lock);
    s_sanity_locked(self);
    pthread_rwlock_unlock(&self->lock);
#else
    (void)self;
#endif
}

static void s_store_be64(uint8_t *out, uint64_t value)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)value;
        value >>= 8;
    }
}

static uint64_t s_load_be64(const uint8_t *in)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = value << 8 | in[i];
    return value;
}

void pagestore_page_key(const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE], uint64_t page_index,
                        uint8_t out[PAGESTORE_PAGE_KEY_SIZE])
{
    memcpy(out, file_key, PAGESTORE_FILE_KEY_SIZE);
    s_store_be64(out + PAGESTORE_FILE_KEY_SIZE, page_index);
}

uint64_t pagestore_page_key_index(const uint8_t key[PAGESTORE_PAGE_KEY_SIZE])
{
    return s_load_be64(key + PAGESTORE_FILE_KEY_SIZE);
}

int pagestore_file_key(const char *uri, const char *version, uint8_t out[PAGESTORE_FILE_KEY_SIZE])
{
    if (uri == NULL || version == NULL || out == NULL)
        return shoal_fail(SHOAL_EINVAL, "pagestore_file_key: NULL argument");
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, PAGESTORE_FILE_KEY_SIZE);
    crypto_generichash_update(&state, (const unsigned char *)uri, strlen(uri) + 1);
    crypto_generichash_update(&state, (const unsigned char *)version, strlen(version));
    crypto_generichash_final(&state, out, PAGESTORE_FILE_KEY_SIZE);
    return 0;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

static void s_ref(pagestore_t *self)
{
    atomic_fetch_add(&self->refs, 1);
}

static void s_unref(pagestore_t *self)
{
    if (atomic_fetch_sub(&self->refs, 1) != 1)
        return;
    self->backend->close(self->backend_self);
    pthread_rwlock_destroy(&self->lock);
    pthread_mutex_destroy(&self->recover_lock);
    free(self);
}

/* Loads the generations the backend holds into gens[] and the usage. An empty store gets
 * generation 1. More generations than fit (a store opened with a smaller `generations`) are
 * dropped oldest first. */
static int s_load_gens(pagestore_t *self)
{
    pagestore_gen_info_t *infos = NULL;
    size_t count = 0;
    int rc = self->backend->gens(self->backend_self, &infos, &count);
    if (rc < 0)
        return rc;
    size_t first = 0;
    while (count - first > S_GENERATIONS_MAX) {
        rc = self->backend->gen_drop(self->backend_self, infos[first].gen);
        if (rc < 0) {
            free(infos);
            return rc;
        }
        first++;
    }
    self->gen_count = 0;
    uint64_t usage = 0;
    for (size_t i = first; i < count; i++) {
        s_gen_t *gen = &self->gens[self->gen_count++];
        gen->gen = infos[i].gen;
        atomic_store(&gen->bytes, infos[i].bytes);
        atomic_store(&gen->pages, infos[i].pages);
        usage += infos[i].bytes;
    }
    free(infos);
    atomic_store(&self->usage, usage);
    if (self->gen_count == 0) {
        rc = self->backend->gen_create(self->backend_self, 1);
        if (rc < 0)
            return rc;
        self->gens[0].gen = 1;
        atomic_store(&self->gens[0].bytes, 0);
        atomic_store(&self->gens[0].pages, 0);
        self->gen_count = 1;
    }
    s_sanity_locked(self);
    return 0;
}

static void s_maintain_locked(pagestore_t *self);

int pagestore_open(const pagestore_options_t *options, pagestore_t **out)
{
    if (options == NULL || out == NULL)
        return shoal_fail(SHOAL_EINVAL, "pagestore_open: NULL argument");
    *out = NULL;
    pagestore_options_t opts = *options;
    if (opts.page_size == 0)
        opts.page_size = PAGESTORE_PAGE_SIZE_DEFAULT;
    if (opts.generations == 0)
        opts.generations = S_GENERATIONS_DEFAULT;
    if (opts.page_size > PAGESTORE_PAGE_MAX)
        return shoal_fail(SHOAL_EINVAL, "pagestore_open: page_size %" PRIu32 " > %u",
                          opts.page_size, PAGESTORE_PAGE_MAX);
    if (opts.generations < 2 || opts.generations > S_GENERATIONS_MAX)
        return shoal_fail(SHOAL_EINVAL, "pagestore_open: generations must be 2..%d",
                          S_GENERATIONS_MAX);
    if (opts.capacity_bytes < (uint64_t)opts.page_size * opts.generations)
        return shoal_fail(SHOAL_EINVAL,
                          "pagestore_open: capacity %" PRIu64 " below page_size x generations",
                          opts.capacity_bytes);
    if (opts.memtable_bytes == 0) {
        /* The index takes ~170 bytes per 1 MiB page: capacity/4096 holds ~20 generations'
         * worth of index entries of a 1 MiB-page store before a flush. */
        opts.memtable_bytes = opts.capacity_bytes / 4096;
        if (opts.memtable_bytes < (1u << 20))
            opts.memtable_bytes = 1u << 20;
        if (opts.memtable_bytes > (16u << 20))
            opts.memtable_bytes = 16u << 20;
    }
    if (opts.cache_bytes == 0)
        opts.cache_bytes = 64u << 20;
    const pagestore_backend_t *backend;
    switch (opts.kind) {
    case PAGESTORE_ROCKSDB:
        if (opts.data_dir == NULL || opts.data_dir[0] == '\0')
            return shoal_fail(SHOAL_EINVAL, "pagestore_open: data_dir is required");
        backend = &pagestore_rocksdb_backend;
        break;
    case PAGESTORE_MEMORY:
        backend = &pagestore_memory_backend;
        break;
    default:
        return shoal_fail(SHOAL_EINVAL, "pagestore_open: unknown kind %d", (int)opts.kind);
    }
    if (sodium_init() < 0)
        return shoal_fail(SHOAL_EINTERNAL, "pagestore_open: sodium_init failed");

    pagestore_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return shoal_fail(SHOAL_ENOMEM, "pagestore_open: out of memory");
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* Writers (rotation, drop) are rare and short; do not let a stream of gets starve them. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&self->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&self->recover_lock, NULL);
    self->backend = backend;
    self->capacity = opts.capacity_bytes;
    self->gen_target = opts.capacity_bytes / opts.generations;
    self->page_size = opts.page_size;
    self->quiet = opts.quiet;
    atomic_store(&self->refs, 1);
    atomic_store(&self->recover_delay_ns, S_RECOVER_FIRST_NS);
    while (self->store_id == 0)
        randombytes_buf(&self->store_id, sizeof self->store_id);

    int rc = backend->open(&opts, &self->backend_self);
    if (rc < 0) {
        pthread_rwlock_destroy(&self->lock);
        pthread_mutex_destroy(&self->recover_lock);
        free(self);
        return rc;
    }
    rc = s_load_gens(self);
    if (rc < 0) {
        s_unref(self);
        return rc;
    }
    /* A smaller quota than last time: drop old generations now. */
    pthread_rwlock_wrlock(&self->lock);
    s_maintain_locked(self);
    pthread_rwlock_unlock(&self->lock);
    *out = self;
    return 0;
}

void pagestore_close(pagestore_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pagestore_t *self = *self_p;
    *self_p = NULL;
    (void)pagestore_flush(self);
    s_unref(self);
}

/* ---- errors ------------------------------------------------------------------------------ */

/* Records a failed write: counts it, logs the first failure of a streak to stderr (a full disk
 * would otherwise print one line per page), and arms the recovery backoff. Returns rc. */
static int s_write_failed(pagestore_t *self, int rc, const char *what)
{
    atomic_fetch_add(&self->write_errors, 1);
    if (atomic_exchange(&self->write_error, rc) == 0) {
        atomic_store(&self->recover_delay_ns, S_RECOVER_FIRST_NS);
        atomic_store(&self->recover_at_ns, clock_mono_ns() + S_RECOVER_FIRST_NS);
    }
    if (!atomic_exchange(&self->write_error_logged, true) && !self->quiet)
        fprintf(stderr,
                "shoal pagestore: error: %s failed: %s (%s); further write errors are "
                "counted, not logged, until a write succeeds\n",
                what, shoal_strerror(rc), shoal_last_error());
    return rc;
}

static void s_write_ok(pagestore_t *self)
{
    if (atomic_load_explicit(&self->write_error_logged, memory_order_relaxed))
        atomic_store(&self->write_error_logged, false);
}

/* Called before a write while a write error is recorded. Fails fast with the recorded code
 * until the backoff expires; then asks the backend to recover (under the write lock, since
 * RocksDB may be reopened) and doubles the backoff if that fails. Returns 0 when writable. */
static int s_check_writable(pagestore_t *self)
{
    int rc = atomic_load(&self->write_error);
    if (rc == 0)
        return 0;
    if (clock_mono_ns() < atomic_load(&self->recover_at_ns) ||
        pthread_mutex_trylock(&self->recover_lock) != 0)
        return shoal_fail(rc, "pagestore: store not writable after an earlier error");
    rc = atomic_load(&self->write_error);
    if (rc != 0) {
        pthread_rwlock_wrlock(&self->lock);
        int recovered = self->backend->recover(self->backend_self);
        s_sanity_locked(self);
        pthread_rwlock_unlock(&self->lock);
        if (recovered == 0) {
            atomic_store(&self->write_error, 0);
            rc = 0;
            if (!self->quiet)
                fprintf(stderr, "shoal pagestore: info: store writable again\n");
        } else {
            int64_t delay = atomic_load(&self->recover_delay_ns) * 2;
            if (delay > S_RECOVER_MAX_NS)
                delay = S_RECOVER_MAX_NS;
            atomic_store(&self->recover_delay_ns, delay);
            atomic_store(&self->recover_at_ns, clock_mono_ns() + delay);
            shoal_fail(rc, "pagestore: store not writable after an earlier error");
        }
    }
    pthread_mutex_unlock(&self->recover_lock);
    return rc;
}

/* ---- generations ------------------------------------------------------------------------- */

/* Keeps the generations in shape; the caller holds the write lock. Seals the newest when it has
 * reached its share of the quota and opens a new one; then drops the oldest generations while
 * the usage exceeds the quota (never the newest). A failure is logged and leaves things as
 * they are: puts go on into the current generation. */
static void s_maintain_locked(pagestore_t *self)
{
    s_gen_t *newest = &self->gens[self->gen_count - 1];
    if (atomic_load(&newest->bytes) >= self->gen_target) {
        /* At S_GENERATIONS_MAX + 1 (only after a failed drop) the loop below drops first. */
        if (self->gen_count <= S_GENERATIONS_MAX) {
            uint64_t next = newest->gen + 1;
            int rc = self->backend->gen_create(self->backend_self, next);
            if (rc < 0) {
                s_write_failed(self, rc, "create generation");
            } else {
                self->backend->gen_seal(self->backend_self, newest->gen);
                s_gen_t *gen = &self->gens[self->gen_count++];
                gen->gen = next;
                atomic_store(&gen->bytes, 0);
                atomic_store(&gen->pages, 0);
            }
        }
    }
    while (self->gen_count > 1 &&
           (atomic_load(&self->usage) > self->capacity || self->gen_count > S_GENERATIONS_MAX)) {
        s_gen_t *oldest = &self->gens[0];
        int rc = self->backend->gen_drop(self->backend_self, oldest->gen);
        if (rc < 0) {
            s_write_failed(self, rc, "drop generation");
            break;
        }
        uint64_t bytes = atomic_load(&oldest->bytes);
        atomic_fetch_sub(&self->usage, bytes);
        atomic_fetch_add(&self->evicted_bytes, bytes);
        atomic_fetch_add(&self->evicted_pages, atomic_load(&oldest->pages));
        atomic_fetch_add(&self->evictions, 1);
        memmove(&self->gens[0], &self->gens[1], (self->gen_count - 1) * sizeof self->gens[0]);
        self->gen_count--;
    }
    s_sanity_locked(self);
}

/* Whether the generations need maintenance; read under either lock. */
static bool s_needs_maintenance(pagestore_t *self)
{
    return atomic_load(&self->gens[self->gen_count - 1].bytes) >= self->gen_target ||
           atomic_load(&self->usage) > self->capacity;
}

static void s_maintain(pagestore_t *self)
{
    pthread_rwlock_wrlock(&self->lock);
    if (s_needs_maintenance(self))
        s_maintain_locked(self);
    pthread_rwlock_unlock(&self->lock);
}

/* Writes a page into the newest generation and accounts for it; the caller holds the read
 * lock. Returns the backend's code. */
static int s_put_locked(pagestore_t *self, const uint8_t *key, const void *data, size_t size)
{
    s_gen_t *newest = &self->gens[self->gen_count - 1];
    int rc = self->backend->page_put(self->backend_self, newest->gen, key, data, size);
    if (rc < 0)
        return rc;
    uint64_t bytes = size + PAGESTORE_PAGE_KEY_SIZE;
    atomic_fetch_add(&newest->bytes, bytes);
    atomic_fetch_add(&newest->pages, 1);
    atomic_fetch_add(&self->usage, bytes);
    return 0;
}

/* ---- pages ------------------------------------------------------------------------------- */

int pagestore_put(pagestore_t *self, const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE],
                  uint64_t page_index, const void *data, size_t size)
{
    if (self == NULL || file_key == NULL || data == NULL || size == 0 || size > PAGESTORE_PAGE_MAX)
        return shoal_fail(SHOAL_EINVAL, "pagestore_put: bad argument (size %zu)", size);
    int rc = s_check_writable(self);
    if (rc < 0) {
        atomic_fetch_add(&self->write_errors, 1);
        return rc;
    }
    uint8_t key[PAGESTORE_PAGE_KEY_SIZE];
    pagestore_page_key(file_key, page_index, key);
    pthread_rwlock_rdlock(&self->lock);
    rc = s_put_locked(self, key, data, size);
    bool maintain = rc == 0 && s_needs_maintenance(self);
    pthread_rwlock_unlock(&self->lock);
    if (rc == SHOAL_ECORRUPT)
        return rc; /* the caller's bytes were unreadable: nothing wrong with the store */
    if (rc < 0)
        return s_write_failed(self, rc, "put page");
    s_write_ok(self);
    atomic_fetch_add(&self->puts, 1);
    if (maintain)
        s_maintain(self);
    pagestore_sanity(self);
    return 0;
}

/* Finds bytes [offset, offset + length) of a page (PAGESTORE_WHOLE: to its end), newest
 * generation first; the caller holds the read lock. A corrupt copy is deleted, counted, and
 * skipped (an older copy may still be good). Sets *gen_index to where it was found. Returns 0,
 * SHOAL_ENOENT, SHOAL_EINVAL (the range is not inside the page) or SHOAL_EIO. */
static int s_find_locked(pagestore_t *self, const uint8_t *key, size_t offset, size_t length,
                         pagestore_page_t **out, size_t *gen_index)
{
    for (size_t i = self->gen_count; i-- > 0;) {
        uint64_t gen = self->gens[i].gen;
        int rc = self->backend->page_get(self->backend_self, gen, key, offset, length, out);
        if (rc == 0) {
            *gen_index = i;
            return 0;
        }
        if (rc == SHOAL_ENOENT)
            continue;
        if (rc == SHOAL_ECORRUPT) {
            atomic_fetch_add(&self->corruptions, 1);
            if (!self->quiet)
                fprintf(stderr,
                        "shoal pagestore: warning: page %" PRIu64 " of generation %" PRIu64
                        " failed its checksum: dropped (%s)\n",
                        pagestore_page_key_index(key), gen, shoal_last_error());
            (void)self->backend->page_delete(self->backend_self, gen, key);
            continue;
        }
        if (rc != SHOAL_EINVAL)
            atomic_fetch_add(&self->read_errors, 1);
        return rc;
    }
    return shoal_fail(SHOAL_ENOENT, "pagestore: page not in the store");
}

/* Promotion: a page found close to eviction is copied into the newest generation, so pages
 * read again and again outlive pages read once. "Close" means that less than half a quota of
 * further writes would drop its generation: the free room under the quota plus the bytes of
 * its generation and all older ones. A full store thus promotes from the older half of the
 * generations only (one copy per page per half a quota of writes at most), and a store that
 * is far from full promotes nothing (an epoch over a dataset that fits writes nothing). The
 * newest generation is never at risk. The caller holds the read lock. */
static bool s_at_risk_locked(pagestore_t *self, size_t gen_index)
{
    if (gen_index + 1 >= self->gen_count)
        return false;
    uint64_t usage = atomic_load(&self->usage);
    uint64_t distance = usage < self->capacity ? self->capacity - usage : 0;
    for (size_t i = 0; i <= gen_index; i++)
        distance += atomic_load(&self->gens[i].bytes);
    return distance < self->capacity / 2;
}

/* Copies a page found at generation `gen_index` into the newest generation. A slice does not
 * hold the whole page, so the page is read again whole for that (rare: at most once per page
 * per half a quota of writes). The caller holds the read lock. Returns 0 or a put's code. */
static int s_promote_locked(pagestore_t *self, const uint8_t *key, size_t gen_index,
                            const pagestore_page_t *page)
{
    if (page->size == page->page_size)
        return s_put_locked(self, key, page->data, page->size);
    pagestore_page_t *whole = NULL;
    int rc = self->backend->page_get(self->backend_self, self->gens[gen_index].gen, key, 0,
                                     PAGESTORE_WHOLE, &whole);
    if (rc < 0)
        return 0; /* gone or damaged since: nothing to promote; the next get will tell */
    rc = s_put_locked(self, key, whole->data, whole->size);
    whole->release(whole);
    return rc;
}

/* The get behind pagestore_get and pagestore_get_range. */
static int s_get(pagestore_t *self, const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE],
                 uint64_t page_index, size_t offset, size_t length, pagestore_page_t **out)
{
    *out = NULL;
    uint8_t key[PAGESTORE_PAGE_KEY_SIZE];
    pagestore_page_key(file_key, page_index, key);
    pagestore_page_t *page = NULL;
    size_t gen_index = 0;
    bool maintain = false;
    bool promoted = false;
    pthread_rwlock_rdlock(&self->lock);
    int rc = s_find_locked(self, key, offset, length, &page, &gen_index);
    if (rc == 0 && s_at_risk_locked(self, gen_index) && atomic_load(&self->write_error) == 0) {
        int put_rc = s_promote_locked(self, key, gen_index, page);
        if (put_rc == 0) {
            atomic_fetch_add(&self->promotions, 1);
            promoted = true;
            maintain = s_needs_maintenance(self);
        } else if (put_rc != SHOAL_ECORRUPT) {
            /* SHOAL_ECORRUPT: the mapped source bytes became unreadable (file cut) since the
             * get checked them; nothing was written, and the store is fine. */
            s_write_failed(self, put_rc, "promote page");
        }
    }
    pthread_rwlock_unlock(&self->lock);
    if (promoted)
        pagestore_sanity(self);
    if (rc < 0) {
        atomic_fetch_add(&self->misses, 1);
        return rc;
    }
    atomic_fetch_add(&self->hits, 1);
    s_ref(self);
    page->store = self;
    *out = page;
    if (maintain)
        s_maintain(self);
    return 0;
}

int pagestore_get(pagestore_t *self, const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE],
                  uint64_t page_index, pagestore_page_t **out)
{
    if (self == NULL || file_key == NULL || out == NULL)
        return shoal_fail(SHOAL_EINVAL, "pagestore_get: NULL argument");
    return s_get(self, file_key, page_index, 0, PAGESTORE_WHOLE, out);
}

int pagestore_get_range(pagestore_t *self, const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE],
                        uint64_t page_index, size_t offset_in_page, size_t length,
                        pagestore_page_t **out)
{
    if (self == NULL || file_key == NULL || out == NULL || length == 0 || length == PAGESTORE_WHOLE)
        return shoal_fail(SHOAL_EINVAL, "pagestore_get_range: bad argument");
    return s_get(self, file_key, page_index, offset_in_page, length, out);
}

const void *pagestore_page_data(const pagestore_page_t *page)
{
    return page->data;
}

size_t pagestore_page_size(const pagestore_page_t *page)
{
    return page->size;
}

size_t pagestore_page_full_size(const pagestore_page_t *page)
{
    return page->page_size;
}

void pagestore_page_release(pagestore_page_t **page_p)
{
    if (page_p == NULL || *page_p == NULL)
        return;
    pagestore_page_t *page = *page_p;
    *page_p = NULL;
    pagestore_t *store = page->store;
    page->release(page);
    if (store != NULL)
        s_unref(store);
}

void pagestore_page_free_fn(void *data, void *hint)
{
    (void)data;
    pagestore_page_t *page = hint;
    pagestore_page_release(&page);
}

/* ---- short-circuit reads ----------------------------------------------------------------- */

/* Finds where a page lies, newest generation first, as s_find_locked finds its bytes; the
 * caller holds the read lock. A copy the backend calls corrupt is deleted and skipped. */
static int s_locate_locked(pagestore_t *self, const uint8_t *key, pagestore_location_t *out,
                           size_t *gen_index)
{
    for (size_t i = self->gen_count; i-- > 0;) {
        uint64_t gen = self->gens[i].gen;
        int rc = self->backend->page_locate(self->backend_self, gen, key, out);
        if (rc == 0) {
            *gen_index = i;
            return 0;
        }
        if (rc == SHOAL_ENOENT)
            continue;
        if (rc == SHOAL_ECORRUPT) {
            atomic_fetch_add(&self->corruptions, 1);
            (void)self->backend->page_delete(self->backend_self, gen, key);
            continue;
        }
        atomic_fetch_add(&self->read_errors, 1);
        return rc;
    }
    return shoal_fail(SHOAL_ENOENT, "pagestore: page not in the store");
}

/* Promotes a located page close to eviction: reads it whole (checking every chunk, as a get
 * does), writes it into the newest generation. The caller holds the read lock. Returns 0 (also
 * when nothing was promoted for a write error, which is recorded), or SHOAL_ENOENT when the
 * page turned out corrupt or gone (deleted and counted: a miss). */
static int s_locate_promote_locked(pagestore_t *self, const uint8_t *key, size_t gen_index,
                                   bool *promoted)
{
    pagestore_page_t *whole = NULL;
    int rc = self->backend->page_get(self->backend_self, self->gens[gen_index].gen, key, 0,
                                     PAGESTORE_WHOLE, &whole);
    if (rc == SHOAL_ECORRUPT) {
        atomic_fetch_add(&self->corruptions, 1);
        (void)self->backend->page_delete(self->backend_self, self->gens[gen_index].gen, key);
        return shoal_fail(SHOAL_ENOENT, "pagestore: page found corrupt");
    }
    if (rc < 0)
        return rc == SHOAL_ENOENT ? rc : 0;
    int put_rc = s_put_locked(self, key, whole->data, whole->size);
    whole->release(whole);
    if (put_rc == 0) {
        atomic_fetch_add(&self->promotions, 1);
        *promoted = true;
    } else if (put_rc != SHOAL_ECORRUPT) {
        s_write_failed(self, put_rc, "promote page");
    }
    return 0;
}

int pagestore_locate(pagestore_t *self, const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE],
                     uint64_t page_index, pagestore_location_t *out)
{
    if (self == NULL || file_key == NULL || out == NULL)
        return shoal_fail(SHOAL_EINVAL, "pagestore_locate: NULL argument");
    if (self->backend->page_locate == NULL)
        return shoal_fail(SHOAL_ENOTSUP, "pagestore_locate: the %s backend has no data files",
                          self->backend->name);
    uint8_t key[PAGESTORE_PAGE_KEY_SIZE];
    pagestore_page_key(file_key, page_index, key);
    size_t gen_index = 0;
    bool promoted = false, maintain = false;
    pthread_rwlock_rdlock(&self->lock);
    int rc = s_locate_locked(self, key, out, &gen_index);
    if (rc == 0 && s_at_risk_locked(self, gen_index) && atomic_load(&self->write_error) == 0) {
        rc = s_locate_promote_locked(self, key, gen_index, &promoted);
        maintain = promoted && s_needs_maintenance(self);
    }
    pthread_rwlock_unlock(&self->lock);
    if (promoted)
        pagestore_sanity(self);
    if (rc < 0) {
        atomic_fetch_add(&self->misses, 1);
        return rc;
    }
    atomic_fetch_add(&self->hits, 1);
    if (maintain)
        s_maintain(self);
    return 0;
}

int pagestore_gen_fd(pagestore_t *self, uint64_t gen, int *fd_out)
{
    if (self == NULL || fd_out == NULL)
        return shoal_fail(SHOAL_EINVAL, "pagestore_gen_fd: NULL argument");
    *fd_out = -1;
    if (self->backend->gen_fd == NULL)
        return shoal_fail(SHOAL_ENOTSUP, "pagestore_gen_fd: the %s backend has no data files",
                          self->backend->name);
    pthread_rwlock_rdlock(&self->lock);
    int rc = self->backend->gen_fd(self->backend_self, gen, fd_out);
    pthread_rwlock_unlock(&self->lock);
    return rc;
}

uint64_t pagestore_store_id(const pagestore_t *self)
{
    return self->store_id;
}

bool pagestore_gen_live(pagestore_t *self, uint64_t gen)
{
    bool live = false;
    pthread_rwlock_rdlock(&self->lock);
    for (size_t i = 0; i < self->gen_count && !live; i++)
        live = self->gens[i].gen == gen;
    pthread_rwlock_unlock(&self->lock);
    return live;
}

uint64_t pagestore_gen_drops(pagestore_t *self)
{
    return atomic_load(&self->evictions);
}

int pagestore_contains(pagestore_t *self, const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE],
                       uint64_t page_index, bool *found)
{
    if (self == NULL || file_key == NULL || found == NULL)
        return shoal_fail(SHOAL_EINVAL, "pagestore_contains: NULL argument");
    uint8_t key[PAGESTORE_PAGE_KEY_SIZE];
    pagestore_page_key(file_key, page_index, key);
    pagestore_page_t *page = NULL;
    size_t gen_index = 0;
    pthread_rwlock_rdlock(&self->lock);
    int rc = s_find_locked(self, key, 0, PAGESTORE_WHOLE, &page, &gen_index);
    pthread_rwlock_unlock(&self->lock);
    *found = rc == 0;
    if (rc == 0) {
        page->release(page);
        return 0;
    }
    return rc == SHOAL_ENOENT ? 0 : rc;
}

int pagestore_delete(pagestore_t *self, const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE],
                     uint64_t page_index)
{
    if (self == NULL || file_key == NULL)
        return shoal_fail(SHOAL_EINVAL, "pagestore_delete: NULL argument");
    uint8_t key[PAGESTORE_PAGE_KEY_SIZE];
    pagestore_page_key(file_key, page_index, key);
    int rc = 0;
    pthread_rwlock_rdlock(&self->lock);
    for (size_t i = 0; i < self->gen_count && rc == 0; i++)
        rc = self->backend->page_delete(self->backend_self, self->gens[i].gen, key);
    pthread_rwlock_unlock(&self->lock);
    pagestore_sanity(self);
    return rc;
}

int pagestore_delete_file(pagestore_t *self, const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE])
{
    if (self == NULL || file_key == NULL)
        return shoal_fail(SHOAL_EINVAL, "pagestore_delete_file: NULL argument");
    int rc = 0;
    pthread_rwlock_rdlock(&self->lock);
    for (size_t i = 0; i < self->gen_count && rc == 0; i++)
        rc = self->backend->file_delete(self->backend_self, self->gens[i].gen, file_key);
    pthread_rwlock_unlock(&self->lock);
    pagestore_sanity(self);
    return rc;
}

/* ---- metadata and state ------------------------------------------------------------------ */

int pagestore_meta_put(pagestore_t *self, const char *uri, const void *blob, size_t size,
                       int64_t fetched_at)
{
    if (self == NULL || uri == NULL || (blob == NULL && size > 0) || size > S_META_MAX)
        return shoal_fail(SHOAL_EINVAL, "pagestore_meta_put: bad argument");
    uint8_t *value = malloc(8 + size);
    if (value == NULL)
        return shoal_fail(SHOAL_ENOMEM, "pagestore_meta_put: out of memory");
    s_store_be64(value, (uint64_t)fetched_at);
    if (size > 0)
        memcpy(value + 8, blob, size);
    int rc = self->backend->kv_put(self->backend_self, PAGESTORE_TABLE_META, uri, strlen(uri),
                                   value, 8 + size, false);
    free(value);
    return rc;
}

int pagestore_meta_get(pagestore_t *self, const char *uri, void **blob_out, size_t *size_out,
                       int64_t *fetched_at_out)
{
    if (self == NULL || uri == NULL || blob_out == NULL || size_out == NULL ||
        fetched_at_out == NULL)
        return shoal_fail(SHOAL_EINVAL, "pagestore_meta_get: NULL argument");
    *blob_out = NULL;
    *size_out = 0;
    void *value = NULL;
    size_t value_size = 0;
    int rc = self->backend->kv_get(self->backend_self, PAGESTORE_TABLE_META, uri, strlen(uri),
                                   &value, &value_size);
    if (rc < 0)
        return rc;
    if (value_size < 8) {
        free(value);
        (void)self->backend->kv_delete(self->backend_self, PAGESTORE_TABLE_META, uri, strlen(uri));
        return shoal_fail(SHOAL_ECORRUPT, "pagestore_meta_get: record too short");
    }
    *fetched_at_out = (int64_t)s_load_be64(value);
    *size_out = value_size - 8;
    if (*size_out > 0) {
        memmove(value, (uint8_t *)value + 8, *size_out);
        *blob_out = value;
    } else {
        free(value);
    }
    return 0;
}

int pagestore_meta_delete(pagestore_t *self, const char *uri)
{
    if (self == NULL || uri == NULL)
        return shoal_fail(SHOAL_EINVAL, "pagestore_meta_delete: NULL argument");
    return self->backend->kv_delete(self->backend_self, PAGESTORE_TABLE_META, uri, strlen(uri));
}

int pagestore_state_put(pagestore_t *self, const char *name, const void *value, size_t size)
{
    if (self == NULL || name == NULL || name[0] == '\0' || strlen(name) > PAGESTORE_STATE_KEY_MAX ||
        (value == NULL && size > 0) || size > S_STATE_MAX)
        return shoal_fail(SHOAL_EINVAL, "pagestore_state_put: bad argument");
    return self->backend->kv_put(self->backend_self, PAGESTORE_TABLE_STATE, name, strlen(name),
                                 value, size, true);
}

int pagestore_state_get(pagestore_t *self, const char *name, void **value_out, size_t *size_out)
{
    if (self == NULL || name == NULL || value_out == NULL || size_out == NULL)
        return shoal_fail(SHOAL_EINVAL, "pagestore_state_get: NULL argument");
    *value_out = NULL;
    *size_out = 0;
    return self->backend->kv_get(self->backend_self, PAGESTORE_TABLE_STATE, name, strlen(name),
                                 value_out, size_out);
}

/* ---- stats ------------------------------------------------------------------------------- */

void pagestore_stats(pagestore_t *self, pagestore_stats_t *out)
{
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&self->lock);
    for (size_t i = 0; i < self->gen_count; i++)
        out->pages += atomic_load(&self->gens[i].pages);
    out->generations = self->gen_count;
    pthread_rwlock_unlock(&self->lock);
    out->capacity_bytes = self->capacity;
    out->usage_bytes = atomic_load(&self->usage);
    out->puts = atomic_load(&self->puts);
    out->hits = atomic_load(&self->hits);
    out->misses = atomic_load(&self->misses);
    out->promotions = atomic_load(&self->promotions);
    out->evicted_pages = atomic_load(&self->evicted_pages);
    out->evicted_bytes = atomic_load(&self->evicted_bytes);
    out->evictions = atomic_load(&self->evictions);
    out->corruptions = atomic_load(&self->corruptions);
    out->write_errors = atomic_load(&self->write_errors);
    out->read_errors = atomic_load(&self->read_errors);
    out->faults = self->backend->faults != NULL ? self->backend->faults(self->backend_self) : 0;
}

/* State of one scan: the seen-set makes a page kept in two generations count once. */
typedef struct s_scan {
    htab_t *seen;         /* page keys already reported (copied) */
    pagestore_scan_fn fn; /* the caller's callback */
    void *arg;            /* its argument */
} s_scan_t;

static int s_scan_record(const uint8_t key[PAGESTORE_PAGE_KEY_SIZE], size_t size, void *arg)
{
    s_scan_t *scan = arg;
    if (htab_get(scan->seen, key, PAGESTORE_PAGE_KEY_SIZE) != NULL)
        return 0;
    if (htab_put(scan->seen, key, PAGESTORE_PAGE_KEY_SIZE, scan, NULL) < 0)
        return SHOAL_ENOMEM;
    return scan->fn(key, pagestore_page_key_index(key), size, scan->arg);
}

/* Scans generations newest first (so the copy reported is the one a get would return),
 * remembering every key seen; memory is about 40 bytes per page held. */
int pagestore_scan(pagestore_t *self, const uint8_t *file_key, pagestore_scan_fn fn, void *arg)
{
    if (self == NULL || fn == NULL)
        return shoal_fail(SHOAL_EINVAL, "pagestore_scan: NULL argument");
    s_scan_t scan = {.seen = htab_new(0, true), .fn = fn, .arg = arg};
    if (scan.seen == NULL)
        return shoal_fail(SHOAL_ENOMEM, "pagestore_scan: out of memory");
    int rc = 0;
    pthread_rwlock_rdlock(&self->lock);
    for (size_t i = self->gen_count; i-- > 0 && rc == 0;)
        rc = self->backend->page_scan(self->backend_self, self->gens[i].gen, file_key,
                                      s_scan_record, &scan);
    pthread_rwlock_unlock(&self->lock);
    htab_destroy(&scan.seen);
    return rc;
}

typedef struct s_count {
    uint64_t pages; /* pages seen */
    uint64_t bytes; /* their bytes */
} s_count_t;

static int s_count_page(const uint8_t file_key[PAGESTORE_FILE_KEY_SIZE], uint64_t page_index,
                        size_t size, void *arg)
{
    (void)file_key;
    (void)page_index;
    s_count_t *count = arg;
    count->pages++;
    count->bytes += size;
    return 0;
}

int pagestore_count(pagestore_t *self, const uint8_t *file_key, uint64_t *pages_out,
                    uint64_t *bytes_out)
{
    s_count_t count = {0, 0};
    int rc = pagestore_scan(self, file_key, s_count_page, &count);
    if (pages_out != NULL)
        *pages_out = count.pages;
    if (bytes_out != NULL)
        *bytes_out = count.bytes;
    return rc;
}

int pagestore_flush(pagestore_t *self)
{
    if (self == NULL)
        return shoal_fail(SHOAL_EINVAL, "pagestore_flush: NULL argument");
    pthread_rwlock_rdlock(&self->lock);
    int rc = self->backend->flush(self->backend_self);
    pthread_rwlock_unlock(&self->lock);
    return rc;
}
