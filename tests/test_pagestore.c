/*
 * test_pagestore.c - the page-store conformance suite: every test runs once against the RocksDB
 * backend and once against the in-memory one, which must behave the same.
 */
#include "test_pagestore_util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <xxhash.h>

#define PAGE (64u << 10) /* small pages keep the suite fast */

static char *s_dir;

static void s_setup(void)
{
    s_dir = t_tempdir();
}

static void s_teardown(void)
{
    t_rmtree(s_dir);
    free(s_dir);
    s_dir = NULL;
}

/* Opens a store of `kind` with room for `pages` pages of PAGE bytes. */
static pagestore_t *s_open(pagestore_kind_t kind, uint64_t pages)
{
    pagestore_options_t options = {
        .kind = kind,
        .data_dir = s_dir,
        .capacity_bytes = pages * (PAGE + 24),
        .page_size = PAGE,
        .quiet = getenv("SHOAL_TEST_VERBOSE") == NULL,
    };
    pagestore_t *ps = NULL;
    int rc = pagestore_open(&options, &ps);
    cr_assert_eq(rc, 0, "open: %s (%s)", shoal_strerror(rc), shoal_last_error());
    return ps;
}

/* Runs body(kind) as two Criterion tests, one per backend. */
#define CONFORMANCE(name, timeout_s)                                                               \
    static void name(pagestore_kind_t kind);                                                       \
    Test(pagestore_rocksdb, name, .init = s_setup, .fini = s_teardown, .timeout = timeout_s)       \
    {                                                                                              \
        name(PAGESTORE_ROCKSDB);                                                                   \
    }                                                                                              \
    Test(pagestore_memory, name, .init = s_setup, .fini = s_teardown, .timeout = timeout_s)        \
    {                                                                                              \
        name(PAGESTORE_MEMORY);                                                                    \
    }                                                                                              \
    static void name(pagestore_kind_t kind)

Test(pagestore, file_key_is_blake2b_128_of_uri_nul_version)
{
    uint8_t key[16], expected[16], other[16];
    cr_assert_eq(sodium_init() >= 0, 1);
    const char input[] = "s3://b/k\0etag"; /* uri, NUL, version */
    crypto_generichash(expected, 16, (const unsigned char *)input, sizeof input - 1, NULL, 0);
    cr_assert_eq(pagestore_file_key("s3://b/k", "etag", key), 0);
    cr_assert_arr_eq(key, expected, 16);
    cr_assert_eq(pagestore_file_key("s3://b/k", "etag2", other), 0);
    cr_assert_neq(memcmp(key, other, 16), 0, "a new version must give a new key");
    cr_assert_eq(pagestore_file_key(NULL, "x", key), SHOAL_EINVAL);
}

Test(pagestore, open_rejects_bad_options)
{
    pagestore_t *ps = NULL;
    pagestore_options_t options = {.kind = PAGESTORE_MEMORY, .capacity_bytes = 1000};
    cr_assert_eq(pagestore_open(&options, &ps), SHOAL_EINVAL);
    options = (pagestore_options_t){.kind = PAGESTORE_ROCKSDB, .capacity_bytes = 1u << 30};
    cr_assert_eq(pagestore_open(&options, &ps), SHOAL_EINVAL); /* no data_dir */
    cr_assert_null(ps);
    pagestore_close(&ps); /* safe on NULL */
}

CONFORMANCE(put_get_contains_delete, 30)
{
    pagestore_t *ps = s_open(kind, 64);
    uint8_t key[16];
    t_file_key(1, key);
    bool found = true;
    cr_assert_eq(pagestore_contains(ps, key, 0, &found), 0);
    cr_assert_not(found);
    cr_assert_eq(t_get(ps, 1, 0, PAGE), 0);
    for (uint64_t i = 0; i < 8; i++)
        cr_assert_eq(t_put(ps, 1, i, PAGE), 0);
    cr_assert_eq(t_put(ps, 1, 8, 1000), 0); /* a short tail page */
    cr_assert_eq(t_put(ps, 1, 9, 10), 0);   /* below RocksDB's blob threshold */
    for (uint64_t i = 0; i < 8; i++)
        cr_assert_eq(t_get(ps, 1, i, PAGE), 1);
    cr_assert_eq(t_get(ps, 1, 8, 1000), 1);
    cr_assert_eq(t_get(ps, 1, 9, 10), 1);
    cr_assert_eq(t_get(ps, 2, 0, PAGE), 0, "another file's page 0 is not ours");
    cr_assert_eq(pagestore_contains(ps, key, 3, &found), 0);
    cr_assert(found);

    /* Replacing a page gives the new bytes. */
    uint8_t small[100];
    t_fill(small, sizeof small, 7, 7);
    cr_assert_eq(pagestore_put(ps, key, 3, small, sizeof small), 0);
    pagestore_page_t *page = NULL;
    cr_assert_eq(pagestore_get(ps, key, 3, &page), 0);
    cr_assert_eq(pagestore_page_size(page), sizeof small);
    cr_assert_arr_eq(pagestore_page_data(page), small, sizeof small);
    pagestore_page_release(&page);

    cr_assert_eq(pagestore_delete(ps, key, 3), 0);
    cr_assert_eq(pagestore_delete(ps, key, 3), 0, "deleting an absent page is fine");
    cr_assert_eq(t_get(ps, 1, 3, PAGE), 0);
    cr_assert_eq(pagestore_contains(ps, key, 3, &found), 0);
    cr_assert_not(found);

    cr_assert_eq(pagestore_put(ps, key, 0, small, 0), SHOAL_EINVAL);
    cr_assert_eq(pagestore_put(ps, key, 0, small, PAGESTORE_PAGE_MAX + 1), SHOAL_EINVAL);

    pagestore_stats_t stats;
    pagestore_stats(ps, &stats);
    cr_assert_eq(stats.puts, 11);
    cr_assert_eq(stats.hits, 11);
    cr_assert_eq(stats.misses, 3);
    cr_assert_eq(stats.capacity_bytes, 64 * (PAGE + 24));
    cr_assert_geq(stats.usage_bytes, 8 * PAGE);
    pagestore_close(&ps);
    cr_assert_null(ps);
}

/* Slices of a page: inside one chunk, across chunk boundaries, the tail, the whole page, one
 * byte; ranges outside the page are refused; slices count as hits and keep their store alive. */
CONFORMANCE(get_range_returns_exactly_the_slice, 30)
{
    pagestore_t *ps = s_open(kind, 64);
    const size_t size = 5 * PAGE + 1234; /* 6 chunks of 64 KiB, the last short */
    cr_assert_eq(t_put(ps, 1, 0, size), 0);
    cr_assert_eq(t_put(ps, 1, 1, 10), 0);
    const size_t cases[][2] = {
        {0, 1},          {0, PAGE},     {PAGE - 1, 2},    {PAGE, PAGE},
        {100, 3 * PAGE}, {size - 1, 1}, {5 * PAGE, 1234}, {4 * PAGE + 7, PAGE + 1000},
        {0, size},       {PAGE / 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(t_get_range(ps, 1, 0, size, cases[i][0], cases[i][1]), 1, "case %zu", i);
    cr_assert_eq(t_get_range(ps, 1, 1, 10, 3, 7), 1);
    cr_assert_eq(t_get_range(ps, 1, 2, size, 0, 1), 0, "absent page: a miss");
    uint8_t key[16];
    t_file_key(1, key);
    pagestore_page_t *page = NULL;
    cr_assert_eq(pagestore_get_range(ps, key, 0, size, 1, &page), SHOAL_EINVAL);
    cr_assert_eq(pagestore_get_range(ps, key, 0, size - 10, 11, &page), SHOAL_EINVAL);
    cr_assert_eq(pagestore_get_range(ps, key, 0, 0, 0, &page), SHOAL_EINVAL);
    cr_assert_eq(pagestore_get_range(ps, key, 1, 0, 11, &page), SHOAL_EINVAL);
    cr_assert_null(page);
    /* the whole-page get reports the same full size */
    cr_assert_eq(pagestore_get(ps, key, 0, &page), 0);
    cr_assert_eq(pagestore_page_full_size(page), size);
    cr_assert_eq(pagestore_page_size(page), size);
    pagestore_page_release(&page);
    /* a slice outlives the store's closing */
    cr_assert_eq(pagestore_get_range(ps, key, 0, PAGE + 5, 100, &page), 0);
    pagestore_stats_t stats;
    pagestore_stats(ps, &stats);
    cr_assert_eq(stats.hits, 13);
    pagestore_close(&ps);
    uint8_t *expected = malloc(size);
    t_fill(expected, size, 1, 0);
    cr_assert_arr_eq(pagestore_page_data(page), expected + PAGE + 5, 100);
    free(expected);
    pagestore_page_release(&page);
}

CONFORMANCE(delete_file_and_count, 30)
{
    pagestore_t *ps = s_open(kind, 64);
    for (unsigned file = 1; file <= 3; file++)
        for (uint64_t i = 0; i < 5; i++)
            cr_assert_eq(t_put(ps, file, i, PAGE / 2), 0);
    uint8_t key[16];
    t_file_key(2, key);
    uint64_t pages = 0, bytes = 0;
    cr_assert_eq(pagestore_count(ps, key, &pages, &bytes), 0);
    cr_assert_eq(pages, 5);
    cr_assert_eq(bytes, 5 * (PAGE / 2));
    cr_assert_eq(pagestore_count(ps, NULL, &pages, &bytes), 0);
    cr_assert_eq(pages, 15);

    cr_assert_eq(pagestore_delete_file(ps, key), 0);
    for (uint64_t i = 0; i < 5; i++) {
        cr_assert_eq(t_get(ps, 2, i, PAGE / 2), 0);
        cr_assert_eq(t_get(ps, 1, i, PAGE / 2), 1);
        cr_assert_eq(t_get(ps, 3, i, PAGE / 2), 1);
    }
    cr_assert_eq(pagestore_count(ps, key, &pages, &bytes), 0);
    cr_assert_eq(pages, 0);
    cr_assert_eq(pagestore_count(ps, NULL, &pages, &bytes), 0);
    cr_assert_eq(pages, 10);
    pagestore_close(&ps);
}

/* A pinned page keeps its bytes through a delete, an overwrite, eviction of its generation and
 * the closing of the store; releasing it through the zmq_free_fn shape frees everything. */
CONFORMANCE(pinned_page_outlives_delete_and_close, 30)
{
    pagestore_t *ps = s_open(kind, 16);
    uint8_t key[16];
    t_file_key(1, key);
    cr_assert_eq(t_put(ps, 1, 0, PAGE), 0);
    pagestore_page_t *page = NULL, *second = NULL;
    cr_assert_eq(pagestore_get(ps, key, 0, &page), 0);
    cr_assert_eq(pagestore_get(ps, key, 0, &second), 0);
    cr_assert_eq(pagestore_delete(ps, key, 0), 0);
    for (uint64_t i = 1; i < 64; i++) /* churn: the first generation is dropped */
        cr_assert_eq(t_put(ps, 1, i, PAGE), 0);
    pagestore_stats_t stats;
    pagestore_stats(ps, &stats);
    cr_assert_gt(stats.evictions, 0);
    pagestore_close(&ps);
    cr_assert(t_check(pagestore_page_data(page), PAGE, 1, 0));
    pagestore_page_release(&page);
    cr_assert(t_check(pagestore_page_data(second), PAGE, 1, 0));
    pagestore_page_free_fn((void *)pagestore_page_data(second), second);
    pagestore_page_release(&page); /* safe on NULL */
}

CONFORMANCE(meta_and_state_records, 30)
{
    pagestore_t *ps = s_open(kind, 16);
    void *blob = NULL;
    size_t size = 0;
    int64_t fetched_at = 0;
    cr_assert_eq(pagestore_meta_get(ps, "s3://b/k", &blob, &size, &fetched_at), SHOAL_ENOENT);
    cr_assert_eq(pagestore_meta_put(ps, "s3://b/k", "hello", 5, 1234567890123ll), 0);
    cr_assert_eq(pagestore_meta_put(ps, "s3://b/empty", NULL, 0, -5), 0);
    cr_assert_eq(pagestore_meta_get(ps, "s3://b/k", &blob, &size, &fetched_at), 0);
    cr_assert_eq(size, 5);
    cr_assert_arr_eq(blob, "hello", 5);
    cr_assert_eq(fetched_at, 1234567890123ll);
    free(blob);
    cr_assert_eq(pagestore_meta_get(ps, "s3://b/empty", &blob, &size, &fetched_at), 0);
    cr_assert_eq(size, 0);
    cr_assert_null(blob);
    cr_assert_eq(fetched_at, -5);
    cr_assert_eq(pagestore_meta_put(ps, "s3://b/k", "bye", 3, 7), 0);
    cr_assert_eq(pagestore_meta_get(ps, "s3://b/k", &blob, &size, &fetched_at), 0);
    cr_assert_eq(size, 3);
    cr_assert_eq(fetched_at, 7);
    free(blob);
    cr_assert_eq(pagestore_meta_delete(ps, "s3://b/k"), 0);
    cr_assert_eq(pagestore_meta_get(ps, "s3://b/k", &blob, &size, &fetched_at), SHOAL_ENOENT);

    void *value = NULL;
    cr_assert_eq(pagestore_state_get(ps, "node_id", &value, &size), SHOAL_ENOENT);
    cr_assert_eq(pagestore_state_put(ps, "node_id", "n-1", 3), 0);
    uint64_t incarnation = 42;
    cr_assert_eq(pagestore_state_put(ps, "incarnation", &incarnation, 8), 0);
    cr_assert_eq(pagestore_state_get(ps, "node_id", &value, &size), 0);
    cr_assert_eq(size, 3);
    cr_assert_arr_eq(value, "n-1", 3);
    free(value);
    cr_assert_eq(pagestore_state_put(ps, "", "x", 1), SHOAL_EINVAL);
    /* Records do not collide with pages or count against the quota. */
    pagestore_stats_t stats;
    pagestore_stats(ps, &stats);
    cr_assert_eq(stats.usage_bytes, 0);
    pagestore_close(&ps);
}

/* Writing 4x the quota keeps usage under it, drops whole generations, and keeps the newest
 * pages. */
CONFORMANCE(quota_drops_oldest_generations, 60)
{
    const uint64_t quota_pages = 64;
    pagestore_t *ps = s_open(kind, quota_pages);
    pagestore_stats_t stats;
    for (uint64_t i = 0; i < 4 * quota_pages; i++) {
        cr_assert_eq(t_put(ps, 1, i, PAGE), 0);
        pagestore_stats(ps, &stats);
        cr_assert_leq(stats.usage_bytes, stats.capacity_bytes);
        cr_assert_leq(stats.generations, 9);
        pagestore_sanity(ps);
    }
    cr_assert_gt(stats.evictions, 0);
    cr_assert_gt(stats.evicted_pages, 2 * quota_pages);
    /* The newest 7/8 of a quota survive; the first pages are gone. */
    for (uint64_t i = 4 * quota_pages - quota_pages * 7 / 8; i < 4 * quota_pages; i++)
        cr_assert_eq(t_get(ps, 1, i, PAGE), 1, "page %llu", (unsigned long long)i);
    cr_assert_eq(t_get(ps, 1, 0, PAGE), 0);
    uint64_t pages = 0;
    cr_assert_eq(pagestore_count(ps, NULL, &pages, NULL), 0);
    cr_assert_leq(pages, quota_pages);
    cr_assert_geq(pages, quota_pages * 7 / 8);
    pagestore_close(&ps);
}

/* The hot-set rule: 10% of the quota read between waves of pages read once (each wave 25% of
 * the quota) keeps a hit ratio of 90% or more over 3x the quota of churn. A miss is refilled,
 * as the node does. */
CONFORMANCE(hot_set_survives_churn, 60)
{
    const uint64_t quota_pages = 160, hot_pages = 16, wave = 40;
    pagestore_t *ps = s_open(kind, quota_pages);
    for (uint64_t i = 0; i < hot_pages; i++)
        cr_assert_eq(t_put(ps, 1, i, PAGE), 0);
    uint64_t hits = 0, reads = 0, cold = 0;
    while (cold < 3 * quota_pages) {
        for (uint64_t i = 0; i < wave; i++, cold++)
            cr_assert_eq(t_put(ps, 2, cold, PAGE), 0);
        for (uint64_t i = 0; i < hot_pages; i++, reads++) {
            if (t_get(ps, 1, i, PAGE))
                hits++;
            else
                cr_assert_eq(t_put(ps, 1, i, PAGE), 0);
        }
    }
    pagestore_stats_t stats;
    pagestore_stats(ps, &stats);
    cr_log_info("%s: hot-set hit ratio %.3f (%llu/%llu), %llu promotions, %llu evictions",
                kind == PAGESTORE_ROCKSDB ? "rocksdb" : "memory", (double)hits / (double)reads,
                (unsigned long long)hits, (unsigned long long)reads,
                (unsigned long long)stats.promotions, (unsigned long long)stats.evictions);
    cr_assert_gt(stats.evictions, 3);
    cr_assert_geq(hits * 10, reads * 9, "hit ratio %llu/%llu below 90%%", (unsigned long long)hits,
                  (unsigned long long)reads);
    pagestore_close(&ps);
}

/* Many threads put and get at once under eviction: every page returned has the right bytes. */
typedef struct s_worker {
    pagestore_t *ps; /* shared store */
    unsigned seed;   /* per-thread PRNG */
    unsigned hits;   /* pages read back */
} s_worker_t;

static void *s_worker_run(void *arg)
{
    s_worker_t *worker = arg;
    for (int i = 0; i < 400; i++) {
        unsigned file = 1 + (unsigned)(rand_r(&worker->seed) % 4);
        uint64_t index = (uint64_t)(rand_r(&worker->seed) % 64);
        size_t size = PAGE + PAGE / 4 + file; /* from the key, so it can be checked; 2 chunks */
        unsigned dice = (unsigned)rand_r(&worker->seed) % 6;
        if (dice < 2)
            cr_assert_eq(t_put(worker->ps, file, index, size), 0);
        else if (dice < 4)
            worker->hits += (unsigned)t_get(worker->ps, file, index, size);
        else
            worker->hits +=
                (unsigned)t_get_range(worker->ps, file, index, size, size / 3, size / 2);
    }
    return NULL;
}

CONFORMANCE(threads_put_and_get_under_eviction, 60)
{
    pagestore_t *ps = s_open(kind, 32);
    pthread_t threads[6];
    s_worker_t workers[6];
    for (int i = 0; i < 6; i++) {
        workers[i] = (s_worker_t){.ps = ps, .seed = (unsigned)i + 1};
        cr_assert_eq(pthread_create(&threads[i], NULL, s_worker_run, &workers[i]), 0);
    }
    unsigned hits = 0;
    for (int i = 0; i < 6; i++) {
        pthread_join(threads[i], NULL);
        hits += workers[i].hits;
    }
    cr_assert_gt(hits, 0);
    pagestore_sanity(ps);
    pagestore_stats_t stats;
    pagestore_stats(ps, &stats);
    cr_assert_leq(stats.usage_bytes, stats.capacity_bytes);
    pagestore_close(&ps);
}

/* The accounting of a fresh store, seen from outside: the usage is every page written (puts
 * and promotions, page key (file key + index) + bytes each) less what the dropped generations held,
 * through churn, replaced pages and deletes (which keep their space until their generation drops).
 * In debug builds pagestore_sanity also checks usage == the sum of the generations' bytes. */
CONFORMANCE(usage_is_bytes_written_less_evicted, 60)
{
    const uint64_t quota_pages = 48;
    pagestore_t *ps = s_open(kind, quota_pages);
    pagestore_stats_t stats;
    for (uint64_t i = 0; i < 5 * quota_pages; i++) {
        cr_assert_eq(t_put(ps, 1, i % (2 * quota_pages), PAGE), 0);
        if (i % 7 == 0)
            (void)t_get(ps, 1, i / 2, PAGE); /* may promote */
        if (i % 11 == 0) {
            uint8_t key[PAGESTORE_FILE_KEY_SIZE];
            t_file_key(1, key);
            cr_assert_eq(pagestore_delete(ps, key, i / 3), 0);
        }
        pagestore_stats(ps, &stats);
        uint64_t written = (stats.puts + stats.promotions) * (PAGE + PAGESTORE_FILE_KEY_SIZE + 8);
        cr_assert_eq(stats.usage_bytes, written - stats.evicted_bytes, "after %llu puts",
                     (unsigned long long)i + 1);
        pagestore_sanity(ps);
    }
    cr_assert_gt(stats.evictions, 0);
    pagestore_close(&ps);
}

/* ---- short-circuit reads: locate, generation descriptors, store ids ---------------------- */

/* Reads `size` bytes at `offset` of fd into a malloc'd buffer; *got is what pread returned. */
static uint8_t *s_pread(int fd, uint64_t offset, size_t size, ssize_t *got)
{
    uint8_t *buf = malloc(size + 1);
    *got = pread(fd, buf, size + 1, (off_t)offset); /* one byte more: nothing past the page */
    return buf;
}

/* Checks a location against page (file, index) of `size` bytes: the descriptor holds its
 * bytes at the offset, and every chunk sum is XXH3_64bits_withSeed(chunk, seed + c). */
static void s_check_location(pagestore_t *ps, const pagestore_location_t *loc, unsigned file,
                             uint64_t index, size_t size)
{
    cr_assert_eq(loc->size, size);
    cr_assert_eq(loc->chunk_shift, 16);
    size_t chunk = (size_t)1 << loc->chunk_shift;
    cr_assert_eq(loc->chunk_count, (size + chunk - 1) / chunk);
    int fd = -1;
    cr_assert_eq(pagestore_gen_fd(ps, loc->gen, &fd), 0, "%s", shoal_last_error());
    cr_assert_geq(fd, 0);
    cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    cr_assert_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
    ssize_t got = 0;
    uint8_t *bytes = s_pread(fd, loc->offset, size, &got);
    cr_assert_geq(got, (ssize_t)size);
    cr_assert(t_check(bytes, size, file, index), "the descriptor's bytes differ from the page");
    for (uint32_t c = 0; c < loc->chunk_count; c++) {
        size_t from = (size_t)c * chunk;
        size_t len = size - from < chunk ? size - from : chunk;
        cr_assert_eq(XXH3_64bits_withSeed(bytes + from, len, loc->seed + c), loc->sums[c],
                     "chunk %u's sum", c);
    }
    free(bytes);
    close(fd);
}

CONFORMANCE(locate_agrees_with_get, 30)
{
    pagestore_t *ps = s_open(kind, 64);
    uint8_t key[PAGESTORE_FILE_KEY_SIZE];
    t_file_key(1, key);
    cr_assert_neq(pagestore_store_id(ps), 0);
    pagestore_location_t *loc = malloc(sizeof *loc);
    cr_assert_eq(t_put(ps, 1, 0, PAGE), 0);
    if (kind == PAGESTORE_MEMORY) { /* no data files to hand out */
        cr_assert_eq(pagestore_locate(ps, key, 0, loc), SHOAL_ENOTSUP);
        int fd = -1;
        cr_assert_eq(pagestore_gen_fd(ps, 1, &fd), SHOAL_ENOTSUP);
        cr_assert_eq(fd, -1);
        cr_assert(pagestore_gen_live(ps, 1));
        free(loc);
        pagestore_close(&ps);
        return;
    }
    cr_assert_eq(t_put(ps, 1, 1, 3 * PAGE / 2), 0); /* two chunks, the last one short */
    cr_assert_eq(t_put(ps, 1, 2, 1000), 0);         /* one short chunk */
    pagestore_stats_t before, after;
    pagestore_stats(ps, &before);
    size_t sizes[3] = {PAGE, 3 * PAGE / 2, 1000};
    for (uint64_t i = 0; i < 3; i++) {
        cr_assert_eq(pagestore_locate(ps, key, i, loc), 0, "%s", shoal_last_error());
        cr_assert(pagestore_gen_live(ps, loc->gen));
        s_check_location(ps, loc, 1, i, sizes[i]);
        cr_assert_eq(t_get(ps, 1, i, sizes[i]), 1); /* and get agrees */
    }
    pagestore_stats(ps, &after);
    cr_assert_eq(after.hits, before.hits + 6, "a locate counts as a hit like a get");
    cr_assert_eq(pagestore_locate(ps, key, 3, loc), SHOAL_ENOENT);
    t_file_key(2, key);
    cr_assert_eq(pagestore_locate(ps, key, 0, loc), SHOAL_ENOENT);
    pagestore_stats(ps, &after);
    cr_assert_eq(after.misses, before.misses + 2);
    int fd = -1;
    cr_assert_eq(pagestore_gen_fd(ps, 999, &fd), SHOAL_ENOENT);
    cr_assert_not(pagestore_gen_live(ps, 999));
    free(loc);
    pagestore_close(&ps);
}

/* A page located in an old generation close to eviction is promoted like a gotten one, so pages
 * read only through short-circuit do not age out first. */
Test(pagestore_rocksdb, locate_promotes_like_get, .init = s_setup, .fini = s_teardown,
     .timeout = 30)
{
    pagestore_t *ps = s_open(PAGESTORE_ROCKSDB, 16); /* 8 generations of 2 pages */
    uint8_t key[PAGESTORE_FILE_KEY_SIZE];
    t_file_key(1, key);
    cr_assert_eq(t_put(ps, 1, 0, PAGE), 0);
    for (uint64_t i = 1; i < 12; i++)
        cr_assert_eq(t_put(ps, 2, i, PAGE), 0);
    pagestore_location_t *loc = malloc(sizeof *loc);
    pagestore_stats_t before, after;
    pagestore_stats(ps, &before);
    cr_assert_eq(pagestore_locate(ps, key, 0, loc), 0, "%s", shoal_last_error());
    uint64_t old_gen = loc->gen;
    s_check_location(ps, loc, 1, 0, PAGE); /* the old location stays valid */
    pagestore_stats(ps, &after);
    cr_assert_eq(after.promotions, before.promotions + 1);
    cr_assert_eq(pagestore_locate(ps, key, 0, loc), 0);
    cr_assert_gt(loc->gen, old_gen, "the promoted copy is found first");
    s_check_location(ps, loc, 1, 0, PAGE);
    free(loc);
    pagestore_close(&ps);
}

/* Puts pages of file 9 until generation `gen` drops. */
static void s_churn_until_dropped(pagestore_t *ps, uint64_t gen)
{
    for (uint64_t i = 0; i < 1000 && pagestore_gen_live(ps, gen); i++)
        cr_assert_eq(t_put(ps, 9, i, PAGE), 0);
    cr_assert_not(pagestore_gen_live(ps, gen));
}

/* A dropped generation's file is cut to 0 bytes once the store's last pin into it goes, so the
 * disk space comes back while a reader still holds a descriptor: its reads come back short. */
Test(pagestore_rocksdb, dropped_generation_is_cut_under_held_descriptors, .init = s_setup,
     .fini = s_teardown, .timeout = 30)
{
    pagestore_t *ps = s_open(PAGESTORE_ROCKSDB, 16);
    uint8_t key[PAGESTORE_FILE_KEY_SIZE];
    t_file_key(1, key);
    cr_assert_eq(t_put(ps, 1, 0, PAGE), 0);
    cr_assert_eq(t_put(ps, 1, 1, PAGE), 0);
    pagestore_location_t *loc = malloc(sizeof *loc);
    cr_assert_eq(pagestore_locate(ps, key, 0, loc), 0);
    uint64_t gen = loc->gen;
    int fd = -1, fd2 = -1;
    cr_assert_eq(pagestore_gen_fd(ps, gen, &fd), 0);
    cr_assert_eq(pagestore_gen_fd(ps, gen, &fd2), 0);
    cr_assert_neq(fd, fd2, "every call gives a new descriptor");
    close(fd2);
    cr_assert_eq(write(fd, "x", 1), -1, "the descriptor is read-only");
    cr_assert_eq(errno, EBADF);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_gt(st.st_blocks, 0);
    /* a pin into the generation keeps its bytes until released */
    pagestore_page_t *pin = NULL;
    cr_assert_eq(pagestore_get(ps, key, 1, &pin), 0);
    s_churn_until_dropped(ps, gen);
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(st.st_nlink, 0, "the dropped file is unlinked");
    cr_assert_gt(st.st_size, 0, "not cut while the store still pins it");
    cr_assert(t_check(pagestore_page_data(pin), PAGE, 1, 1));
    pagestore_page_release(&pin);
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(st.st_size, 0, "cut once the last pin went");
    cr_assert_eq(st.st_blocks, 0, "its disk space is back");
    ssize_t got = 1;
    uint8_t *bytes = s_pread(fd, loc->offset, loc->size, &got);
    cr_assert_eq(got, 0, "a held descriptor now reads short");
    free(bytes);
    cr_assert_eq(pagestore_gen_fd(ps, gen, &fd2), SHOAL_ENOENT);
    cr_assert_eq(pagestore_locate(ps, key, 0, loc), SHOAL_ENOENT);
    close(fd);

    /* without any pin the file is cut at the drop */
    t_file_key(3, key);
    cr_assert_eq(t_put(ps, 3, 0, PAGE), 0);
    cr_assert_eq(pagestore_locate(ps, key, 0, loc), 0);
    gen = loc->gen;
    cr_assert_eq(pagestore_gen_fd(ps, gen, &fd), 0);
    s_churn_until_dropped(ps, gen);
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(st.st_size, 0);
    cr_assert_eq(st.st_blocks, 0);
    close(fd);
    free(loc);
    pagestore_close(&ps);
}

/* Generation numbers restart in a new store and a reopened store is another store: the store
 * id tells a reader its descriptors are void. */
Test(pagestore_rocksdb, store_id_changes_when_generations_restart, .init = s_setup,
     .fini = s_teardown, .timeout = 30)
{
    pagestore_t *ps = s_open(PAGESTORE_ROCKSDB, 64);
    uint8_t key[PAGESTORE_FILE_KEY_SIZE];
    t_file_key(1, key);
    cr_assert_eq(t_put(ps, 1, 0, PAGE), 0);
    pagestore_location_t *loc = malloc(sizeof *loc);
    cr_assert_eq(pagestore_locate(ps, key, 0, loc), 0);
    cr_assert_eq(loc->gen, 1);
    uint64_t first = pagestore_store_id(ps);
    pagestore_close(&ps);
    t_rmtree(s_dir); /* a new store in the same place: generation 1 again */
    cr_assert_eq(mkdir(s_dir, 0700), 0);
    ps = s_open(PAGESTORE_ROCKSDB, 64);
    cr_assert_eq(t_put(ps, 1, 0, 100), 0);
    cr_assert_eq(pagestore_locate(ps, key, 0, loc), 0);
    cr_assert_eq(loc->gen, 1, "numbers restart");
    uint64_t second = pagestore_store_id(ps);
    cr_assert_neq(second, first);
    pagestore_close(&ps);
    ps = s_open(PAGESTORE_ROCKSDB, 64); /* the same store reopened: a new id too */
    cr_assert_neq(pagestore_store_id(ps), second);
    cr_assert_neq(pagestore_store_id(ps), 0);
    cr_assert_eq(pagestore_locate(ps, key, 0, loc), 0);
    s_check_location(ps, loc, 1, 0, 100);
    free(loc);
    pagestore_close(&ps);
}
