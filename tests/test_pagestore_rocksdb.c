/*
 * test_pagestore_rocksdb.c - what only the RocksDB backend has: disk usage under churn, restart,
 * corruption on disk, and a full disk.
 */
#include "test_pagestore_util.h"

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

static pagestore_t *s_open_at(const char *dir, uint64_t capacity, uint32_t page_size)
{
    pagestore_options_t options = {
        .kind = PAGESTORE_ROCKSDB,
        .data_dir = dir,
        .capacity_bytes = capacity,
        .page_size = page_size,
        .quiet = true,
    };
    pagestore_t *ps = NULL;
    int rc = pagestore_open(&options, &ps);
    cr_assert_eq(rc, 0, "open: %s (%s)", shoal_strerror(rc), shoal_last_error());
    return ps;
}

Test(pagestore_rocksdb, restart_keeps_every_page, .init = s_setup, .fini = s_teardown,
     .timeout = 60)
{
    const uint32_t page = 256u << 10;
    pagestore_t *ps = s_open_at(s_dir, 64ull << 20, page);
    for (uint64_t i = 0; i < 100; i++)
        cr_assert_eq(t_put(ps, 1 + (unsigned)(i % 3), i, page), 0);
    cr_assert_eq(pagestore_state_put(ps, "incarnation", "\x07", 1), 0);
    cr_assert_eq(pagestore_meta_put(ps, "s3://b/k", "m", 1, 99), 0);
    pagestore_stats_t before, after;
    pagestore_stats(ps, &before);
    pagestore_close(&ps);

    ps = s_open_at(s_dir, 64ull << 20, page);
    pagestore_stats(ps, &after);
    for (uint64_t i = 0; i < 100; i++)
        cr_assert_eq(t_get(ps, 1 + (unsigned)(i % 3), i, page), 1, "page %llu lost",
                     (unsigned long long)i);
    cr_assert_eq(after.generations, before.generations);
    cr_assert_eq(after.pages, before.pages);
    /* usage is re-read from the files: within 2% of what was counted while writing */
    cr_assert_geq(after.usage_bytes, before.usage_bytes * 98 / 100);
    cr_assert_leq(after.usage_bytes, before.usage_bytes * 102 / 100);
    void *value = NULL;
    size_t size = 0;
    cr_assert_eq(pagestore_state_get(ps, "incarnation", &value, &size), 0);
    cr_assert_eq(size, 1);
    free(value);
    int64_t fetched_at = 0;
    cr_assert_eq(pagestore_meta_get(ps, "s3://b/k", &value, &size, &fetched_at), 0);
    cr_assert_eq(fetched_at, 99);
    free(value);
    /* A restart continues the generations: churn still evicts the oldest. */
    for (uint64_t i = 100; i < 400; i++)
        cr_assert_eq(t_put(ps, 1, i, page), 0);
    cr_assert_eq(t_get(ps, 1, 399, page), 1);
    pagestore_stats(ps, &after);
    cr_assert_gt(after.evictions, 0);
    cr_assert_leq(after.usage_bytes, after.capacity_bytes);
    pagestore_close(&ps);
}
