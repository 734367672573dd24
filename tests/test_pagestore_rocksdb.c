/*
 * test_pagestore_rocksdb.c - what only the RocksDB backend has: disk usage under churn, restart,
 * corruption on disk, and a full disk.
 */
#include "test_pagestore_util.h"

#include <fcntl.h>
#include <pthread.h>

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
        .quiet = getenv("SHOAL_TEST_VERBOSE") == NULL,
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

/* The disk bound. Overhead allowed above quota * 1.1: files RocksDB keeps besides the pages
 * (MANIFEST <= 4 MiB before it rolls, OPTIONS, LOG <= 2 x 1 MiB, WAL of meta/state, the small
 * key SST files) plus one memtable being flushed (4 MiB here). Measured: see store/README.md. */
#define S_DISK_OVERHEAD (12ull << 20)

/* Writes 3x the quota of distinct 1 MiB pages and checks, after every put, that the data
 * directory's size on disk stays within 10% of the quota plus the fixed overhead. */
Test(pagestore_rocksdb, disk_usage_stays_near_quota_under_churn, .init = s_setup,
     .fini = s_teardown, .timeout = 120)
{
    const uint64_t quota = 64ull << 20;
    const uint32_t page = 1u << 20;
    pagestore_t *ps = s_open_at(s_dir, quota, page);
    uint64_t max_disk = 0;
    for (uint64_t i = 0; i < 3 * quota / page; i++) {
        cr_assert_eq(t_put(ps, 1, i, page), 0);
        uint64_t disk = t_disk_usage(s_dir);
        if (disk > max_disk)
            max_disk = disk;
        cr_assert_leq(disk, quota + quota / 10 + S_DISK_OVERHEAD,
                      "after %llu MiB written the store takes %llu MiB on disk",
                      (unsigned long long)i + 1, (unsigned long long)(disk >> 20));
    }
    cr_assert_eq(pagestore_flush(ps), 0);
    uint64_t flushed = t_disk_usage(s_dir);
    pagestore_stats_t stats;
    pagestore_stats(ps, &stats);
    cr_log_info("quota %llu MiB, 3x written: max on disk %.1f MiB, after flush %.1f MiB, "
                "usage %.1f MiB, %llu generations dropped",
                (unsigned long long)(quota >> 20), (double)max_disk / 1048576.0,
                (double)flushed / 1048576.0, (double)stats.usage_bytes / 1048576.0,
                (unsigned long long)stats.evictions);
    cr_assert_leq(flushed, quota + quota / 10 + S_DISK_OVERHEAD);
    cr_assert_gt(stats.evictions, 10);
    /* and the space really is in use by pages: at least 7/8 of the quota is kept */
    cr_assert_geq(flushed, quota * 7 / 8 - quota / 20);
    pagestore_close(&ps);
}

/* The same churn with a hot set (10% of the quota) read between waves of cold pages (20% of
 * the quota each): the hot set keeps a hit ratio >= 90% and the disk stays bounded. */
Test(pagestore_rocksdb, hot_set_survives_churn_on_disk, .init = s_setup, .fini = s_teardown,
     .timeout = 120)
{
    const uint64_t quota = 64ull << 20;
    const uint32_t page = 1u << 20;
    const uint64_t quota_pages = quota / page, hot = quota_pages / 10, wave = quota_pages / 5;
    pagestore_t *ps = s_open_at(s_dir, quota, page);
    uint64_t hits = 0, reads = 0, cold = 0, max_disk = 0;
    while (cold < 3 * quota_pages) {
        for (uint64_t i = 0; i < wave; i++, cold++)
            cr_assert_eq(t_put(ps, 2, cold, page), 0);
        for (uint64_t i = 0; i < hot; i++, reads++) {
            if (t_get(ps, 1, i, page))
                hits++;
            else
                cr_assert_eq(t_put(ps, 1, i, page), 0);
        }
        uint64_t disk = t_disk_usage(s_dir);
        if (disk > max_disk)
            max_disk = disk;
    }
    pagestore_stats_t stats;
    pagestore_stats(ps, &stats);
    /* The first read of the hot set misses (it was never stored): count from the second. */
    cr_log_info("hot set %llu pages: %llu hits / %llu reads (first round of %llu misses), "
                "%llu promotions, max on disk %.1f MiB",
                (unsigned long long)hot, (unsigned long long)hits, (unsigned long long)reads,
                (unsigned long long)hot, (unsigned long long)stats.promotions,
                (double)max_disk / 1048576.0);
    cr_assert_geq(hits * 10, (reads - hot) * 9, "hot-set hit ratio below 90%%");
    cr_assert_leq(max_disk, quota + quota / 10 + S_DISK_OVERHEAD);
    pagestore_close(&ps);
}

/* Flips `count` bytes spread evenly over [from, size - to_end) of a file. */
static int s_flip_bytes(const char *path, int count, long from, long to_end)
{
    FILE *file = fopen(path, "r+b");
    if (file == NULL)
        return -1;
    fseek(file, 0, SEEK_END);
    long size = ftell(file) - from - to_end;
    for (int i = 1; i <= count && size > 0; i++) {
        long offset = from + size * i / (count + 1);
        fseek(file, offset, SEEK_SET);
        int c = fgetc(file);
        fseek(file, offset, SEEK_SET);
        fputc(c ^ 0x5A, file);
    }
    fclose(file);
    return 0;
}

static int s_corrupted;
static bool s_corrupt_whole; /* damage headers and footers too, not just the records */

/* Damages the page data files (.dat, anywhere), the page records of .blob files of an older
 * format (past the 30-byte header, before the footer) and the first data block of the index
 * .sst files (where the keys are: the files over 4 KiB; the tiny meta/state files would be
 * damaged in blocks read at open); with s_corrupt_whole, anywhere. */
static int s_corrupt_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    size_t length = strlen(path);
    if (flag != FTW_F || length < 5)
        return 0;
    int rc = 1;
    if (!s_corrupt_whole && st->st_size < 4096)
        return 0;
    if (strcmp(path + length - 4, ".dat") == 0)
        rc = s_flip_bytes(path, 8, 0, 0); /* page data files: nothing else in them */
    else if (strcmp(path + length - 5, ".blob") == 0)
        rc = s_corrupt_whole ? s_flip_bytes(path, 8, 0, 0) : s_flip_bytes(path, 8, 64, 64);
    else if (strcmp(path + length - 4, ".sst") == 0)
        rc = s_corrupt_whole ? s_flip_bytes(path, 8, 0, 0) : s_flip_bytes(path, 1, 100, 0);
    if (rc == 0)
        s_corrupted++;
    return 0;
}

/* Pages are flushed into SST and blob files, the files are damaged on disk, and every get
 * afterwards returns either the right bytes or a miss, never wrong bytes; at least one miss. */
Test(pagestore_rocksdb, corruption_is_a_miss_never_wrong_bytes, .init = s_setup, .fini = s_teardown,
     .timeout = 60)
{
    const uint32_t page = 128u << 10;
    pagestore_t *ps = s_open_at(s_dir, 64ull << 20, page);
    for (uint64_t i = 0; i < 200; i++)
        cr_assert_eq(t_put(ps, 1, i, page), 0);
    cr_assert_eq(pagestore_flush(ps), 0);
    pagestore_close(&ps);
    s_corrupted = 0;
    s_corrupt_whole = false;
    nftw(s_dir, s_corrupt_one, 16, FTW_PHYS);
    cr_assert_gt(s_corrupted, 1, "no .sst and .dat files found to damage");

    ps = s_open_at(s_dir, 64ull << 20, page);
    uint64_t hits = 0, misses = 0;
    for (int round = 0; round < 2; round++) {
        for (uint64_t i = 0; i < 200; i++) {
            if (t_get(ps, 1, i, page)) /* fails the test on wrong bytes */
                hits += round == 0;
            else
                misses += round == 0;
        }
    }
    pagestore_stats_t stats;
    pagestore_stats(ps, &stats);
    cr_log_info("%d files damaged: %llu hits, %llu misses, %llu corruptions detected", s_corrupted,
                (unsigned long long)hits, (unsigned long long)misses,
                (unsigned long long)stats.corruptions);
    cr_assert_gt(misses, 0);
    cr_assert_gt(stats.corruptions, 0);
    /* A corrupt page was dropped: it can be stored again and read back. */
    for (uint64_t i = 0; i < 200; i++) {
        if (!t_get(ps, 1, i, page)) {
            cr_assert_eq(t_put(ps, 1, i, page), 0);
            cr_assert_eq(t_get(ps, 1, i, page), 1);
        }
    }
    pagestore_close(&ps);
}

/* The page's data file path of generation `gen` under dir. */
static void s_data_file(const char *dir, uint64_t gen, char *out, size_t size)
{
    snprintf(out, size, "%s/pages/gen-%020llu.dat", dir, (unsigned long long)gen);
}

/* One byte damaged in chunk 3 of a 4-chunk page: slices that do not cover chunk 3 are still
 * served (only the chunks covering a slice are read and checked); the first one that covers
 * it is a miss, counted, and drops the page, so the whole page is a miss afterwards. */
Test(pagestore_rocksdb, damaged_chunk_fails_the_slices_that_cover_it, .init = s_setup,
     .fini = s_teardown, .timeout = 60)
{
    const uint32_t page = 256u << 10;
    pagestore_t *ps = s_open_at(s_dir, 64ull << 20, page);
    cr_assert_eq(t_put(ps, 1, 0, page), 0);
    cr_assert_eq(t_put(ps, 1, 1, page), 0);
    pagestore_close(&ps);
    char path[4200];
    s_data_file(s_dir, 1, path, sizeof path);
    FILE *file = fopen(path, "r+b");
    cr_assert_not_null(file, "%s", path);
    long offset = 3 * 65536 + 5; /* page 0 starts at offset 0 */
    fseek(file, offset, SEEK_SET);
    int c = fgetc(file);
    fseek(file, offset, SEEK_SET);
    fputc(c ^ 1, file);
    fclose(file);

    ps = s_open_at(s_dir, 64ull << 20, page);
    cr_assert_eq(t_get_range(ps, 1, 0, page, 0, 1000), 1);
    cr_assert_eq(t_get_range(ps, 1, 0, page, 65000, 2 * 65536), 1, "chunks 0..2 are intact");
    cr_assert_eq(t_get_range(ps, 1, 0, page, 3 * 65536 + 100, 10), 0);
    pagestore_stats_t stats;
    pagestore_stats(ps, &stats);
    cr_assert_eq(stats.corruptions, 1);
    cr_assert_eq(t_get_range(ps, 1, 0, page, 0, 10), 0, "the damaged page was dropped");
    cr_assert_eq(t_get(ps, 1, 0, page), 0);
    cr_assert_eq(t_get(ps, 1, 1, page), 1, "the next page is intact");
    pagestore_stats(ps, &stats);
    cr_assert_eq(stats.corruptions, 1);
    pagestore_close(&ps);
}

/* Crash semantics: data files are not fsync'd, so after a power loss an index entry may point
 * at bytes that never reached the disk (or reached it as zeros). Simulated by cutting the data
 * file in half and zeroing a page: those pages are misses (counted as corruptions), the others
 * hits, and the store goes on (new puts append past the cut). */
Test(pagestore_rocksdb, page_bytes_lost_in_a_crash_are_misses, .init = s_setup, .fini = s_teardown,
     .timeout = 60)
{
    const uint32_t page = 128u << 10;
    pagestore_t *ps = s_open_at(s_dir, 64ull << 20, page);
    for (uint64_t i = 0; i < 20; i++)
        cr_assert_eq(t_put(ps, 1, i, page), 0);
    pagestore_close(&ps);
    char path[4200];
    s_data_file(s_dir, 1, path, sizeof path);
    cr_assert_eq(truncate(path, 10 * (off_t)page + 1000), 0);
    FILE *file = fopen(path, "r+b");
    cr_assert_not_null(file);
    static uint8_t zeros[128u << 10];
    fseek(file, 2 * (long)page, SEEK_SET);
    cr_assert_eq(fwrite(zeros, 1, sizeof zeros, file), sizeof zeros);
    fclose(file);

    ps = s_open_at(s_dir, 64ull << 20, page);
    for (uint64_t i = 0; i < 20; i++)
        cr_assert_eq(t_get(ps, 1, i, page), i < 10 && i != 2, "page %llu", (unsigned long long)i);
    pagestore_stats_t stats;
    pagestore_stats(ps, &stats);
    cr_assert_eq(stats.corruptions, 11);
    cr_assert_eq(stats.faults, 0, "bytes past the size at open are known missing: no SIGBUS");
    for (uint64_t i = 20; i < 30; i++)
        cr_assert_eq(t_put(ps, 1, i, page), 0);
    for (uint64_t i = 20; i < 30; i++)
        cr_assert_eq(t_get(ps, 1, i, page), 1);
    cr_assert_eq(t_get(ps, 1, 0, page), 1);
    pagestore_close(&ps);
}

/* ---- mapped gets ----------------------------------------------------------------------- */

/* Whether addr lies in a mapping listed in /proc/self/maps; if so, copies its path (possibly
 * with " (deleted)") to out. */
static bool s_mapping_of(const void *addr, char *out, size_t size)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    cr_assert_not_null(maps);
    char line[4600];
    bool found = false;
    while (!found && fgets(line, sizeof line, maps) != NULL) {
        unsigned long from = 0, to = 0;
        int path_at = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &from, &to, &path_at) < 2)
            continue;
        if ((uintptr_t)addr < from || (uintptr_t)addr >= to)
            continue;
        found = true;
        line[strcspn(line, "\n")] = '\0';
        snprintf(out, size, "%s", path_at > 0 ? line + path_at : "");
    }
    fclose(maps);
    return found;
}

/* A get returns a pointer into the generation's data file mapping (no copy), and so does a
 * slice. The mapping outlives the eviction of its generation (the file is unlinked: the maps
 * line says "(deleted)") and the closing of the store while a handle points into it; the last
 * release unmaps it. */
Test(pagestore_rocksdb, gets_point_into_the_data_file_mapping, .init = s_setup, .fini = s_teardown,
     .timeout = 60)
{
    const uint32_t page = 128u << 10;
    pagestore_t *ps = s_open_at(s_dir, 16ull << 20, page);
    uint8_t key[PAGESTORE_FILE_KEY_SIZE];
    t_file_key(1, key);
    cr_assert_eq(t_put(ps, 1, 0, page), 0);
    cr_assert_eq(t_put(ps, 1, 1, page), 0);
    pagestore_page_t *whole = NULL, *slice = NULL;
    cr_assert_eq(pagestore_get(ps, key, 1, &whole), 0);
    cr_assert_eq(pagestore_get_range(ps, key, 0, 70000, 1000, &slice), 0);
    char data_file[4200], mapped[4600];
    s_data_file(s_dir, 1, data_file, sizeof data_file);
    cr_assert(s_mapping_of(pagestore_page_data(whole), mapped, sizeof mapped));
    cr_assert_str_eq(mapped, data_file);
    cr_assert(s_mapping_of(pagestore_page_data(slice), mapped, sizeof mapped));
    cr_assert_str_eq(mapped, data_file);
    cr_assert_eq((const uint8_t *)pagestore_page_data(whole) -
                     (const uint8_t *)pagestore_page_data(slice),
                 (ptrdiff_t)page - 70000, "page 1 follows page 0 in the file and the mapping");

    for (uint64_t i = 2; i < 400; i++) /* churn: generation 1 is dropped */
        cr_assert_eq(t_put(ps, 2, i, page), 0);
    pagestore_stats_t stats;
    pagestore_stats(ps, &stats);
    cr_assert_gt(stats.evictions, 0);
    cr_assert_eq(access(data_file, F_OK), -1, "generation 1's file was not unlinked");
    cr_assert(s_mapping_of(pagestore_page_data(whole), mapped, sizeof mapped));
    cr_assert(strstr(mapped, "(deleted)") != NULL, "%s", mapped);
    pagestore_close(&ps);
    cr_assert(t_check(pagestore_page_data(whole), page, 1, 1));
    pagestore_page_release(&whole);
    cr_assert(s_mapping_of(pagestore_page_data(slice), mapped, sizeof mapped),
              "the slice's handle still holds the mapping");
    const void *gone = pagestore_page_data(slice);
    uint8_t expected[1000];
    uint8_t *page0 = malloc(page);
    t_fill(page0, page, 1, 0);
    memcpy(expected, page0 + 70000, sizeof expected);
    free(page0);
    cr_assert(memcmp(pagestore_page_data(slice), expected, sizeof expected) == 0);
    pagestore_page_free_fn(NULL, slice);
    cr_assert(!s_mapping_of(gone, mapped, sizeof mapped), "still mapped: %s", mapped);
}

/* Bytes damaged on disk while the store is open (written through another descriptor, as a
 * failing disk or a stray writer would) are seen through the shared mapping: the next get that
 * covers them is a miss and drops the page; other pages are still served. */
Test(pagestore_rocksdb, damage_while_open_is_a_miss, .init = s_setup, .fini = s_teardown,
     .timeout = 60)
{
    const uint32_t page = 256u << 10;
    pagestore_t *ps = s_open_at(s_dir, 64ull << 20, page);
    for (uint64_t i = 0; i < 4; i++)
        cr_assert_eq(t_put(ps, 1, i, page), 0);
    for (uint64_t i = 0; i < 4; i++)
        cr_assert_eq(t_get(ps, 1, i, page), 1); /* mapped and read once */
    char path[4200];
    s_data_file(s_dir, 1, path, sizeof path);
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    uint8_t byte = 0;
    off_t at = 2 * (off_t)page + 3 * 65536 + 17; /* page 2, chunk 3 */
    cr_assert_eq(pread(fd, &byte, 1, at), 1);
    byte ^= 0x10;
    cr_assert_eq(pwrite(fd, &byte, 1, at), 1);
    close(fd);
    cr_assert_eq(t_get_range(ps, 1, 2, page, 0, 65536), 1, "chunk 0 is intact");
    cr_assert_eq(t_get(ps, 1, 2, page), 0, "damaged page served");
    cr_assert_eq(t_get_range(ps, 1, 2, page, 0, 65536), 0, "the page was dropped");
    pagestore_stats_t stats;
    pagestore_stats(ps, &stats);
    cr_assert_eq(stats.corruptions, 1);
    cr_assert_eq(stats.faults, 0);
    cr_assert_eq(t_get(ps, 1, 1, page), 1);
    cr_assert_eq(t_get(ps, 1, 3, page), 1);
    pagestore_close(&ps);
}

/* A data file cut behind the store's back while it is open (another descriptor, ftruncate):
 * the pages in the cut part raise SIGBUS when their checksum pass touches them through the
 * mapping. Each is a miss, never a crash: counted in faults and corruptions and dropped; the
 * pages before the cut are still served, and new puts work. */
Test(pagestore_rocksdb, file_cut_while_open_is_a_miss_not_a_crash, .init = s_setup,
     .fini = s_teardown, .timeout = 60)
{
    const uint32_t page = 128u << 10;
    pagestore_t *ps = s_open_at(s_dir, 64ull << 20, page);
    for (uint64_t i = 0; i < 20; i++)
        cr_assert_eq(t_put(ps, 1, i, page), 0);
    for (uint64_t i = 0; i < 20; i++)
        cr_assert_eq(t_get(ps, 1, i, page), 1); /* faulted in: the page tables are populated */
    char path[4200];
    s_data_file(s_dir, 1, path, sizeof path);
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 10 * (off_t)page + 1000), 0);
    close(fd);

    cr_assert_eq(t_get_range(ps, 1, 12, page, 65536, 100), 0, "slice of a cut page");
    for (uint64_t i = 0; i < 20; i++)
        cr_assert_eq(t_get(ps, 1, i, page), i < 10, "page %llu", (unsigned long long)i);
    pagestore_stats_t stats;
    pagestore_stats(ps, &stats);
    cr_assert_eq(stats.faults, 10);
    cr_assert_eq(stats.corruptions, 10);
    for (uint64_t i = 10; i < 20; i++) /* dropped: a plain miss now, no fault */
        cr_assert_eq(t_get(ps, 1, i, page), 0);
    pagestore_stats(ps, &stats);
    cr_assert_eq(stats.faults, 10);
    for (uint64_t i = 10; i < 20; i++) /* stored again, past the cut */
        cr_assert_eq(t_put(ps, 1, i, page), 0);
    for (uint64_t i = 0; i < 20; i++)
        cr_assert_eq(t_get(ps, 1, i, page), 1, "page %llu", (unsigned long long)i);
    pagestore_close(&ps);
}

/* Handles are released on other threads (as ZeroMQ's I/O thread does) while puts and
 * evictions go on, and after the store is closed: every handle's bytes stay right until its
 * release (checked on the releasing thread). */
typedef struct s_handoff {
    pthread_mutex_t lock;        /* guards the fields below */
    pthread_cond_t changed;      /* signalled on every change */
    pagestore_page_t *pages[64]; /* handed over, not yet released ... */
    uint64_t indexes[64];        /* ... and their page indexes */
    size_t count;                /* entries of pages[] */
    bool done;                   /* no more handles come */
    unsigned released;           /* handles checked and released */
    unsigned wrong;              /* of which had wrong bytes */
} s_handoff_t;

static void *s_releaser(void *arg)
{
    s_handoff_t *handoff = arg;
    pthread_mutex_lock(&handoff->lock);
    for (;;) {
        while (handoff->count == 0 && !handoff->done)
            pthread_cond_wait(&handoff->changed, &handoff->lock);
        if (handoff->count == 0)
            break;
        handoff->count--;
        pagestore_page_t *page = handoff->pages[handoff->count];
        uint64_t index = handoff->indexes[handoff->count];
        pthread_cond_broadcast(&handoff->changed);
        pthread_mutex_unlock(&handoff->lock);
        bool right = pagestore_page_size(page) == (64u << 10) &&
                     t_check(pagestore_page_data(page), pagestore_page_size(page), 1, index);
        pagestore_page_free_fn(NULL, page);
        pthread_mutex_lock(&handoff->lock);
        handoff->released++;
        handoff->wrong += !right;
    }
    pthread_mutex_unlock(&handoff->lock);
    return NULL;
}

Test(pagestore_rocksdb, handles_released_on_other_threads, .init = s_setup, .fini = s_teardown,
     .timeout = 60)
{
    const uint32_t page = 64u << 10;
    pagestore_t *ps = s_open_at(s_dir, 4ull << 20, page);
    s_handoff_t handoff = {.count = 0};
    pthread_mutex_init(&handoff.lock, NULL);
    pthread_cond_init(&handoff.changed, NULL);
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, s_releaser, &handoff), 0);
    uint8_t key[PAGESTORE_FILE_KEY_SIZE];
    t_file_key(1, key);
    for (uint64_t i = 0; i < 1000; i++) {
        cr_assert_eq(t_put(ps, 1, i, page), 0); /* 4 MiB quota: generations drop all along */
        pagestore_page_t *got = NULL;
        cr_assert_eq(pagestore_get(ps, key, i, &got), 0);
        pthread_mutex_lock(&handoff.lock);
        while (handoff.count == 64)
            pthread_cond_wait(&handoff.changed, &handoff.lock);
        handoff.pages[handoff.count] = got;
        handoff.indexes[handoff.count++] = i;
        pthread_cond_broadcast(&handoff.changed);
        pthread_mutex_unlock(&handoff.lock);
    }
    pagestore_stats_t stats;
    pagestore_stats(ps, &stats);
    cr_assert_gt(stats.evictions, 10);
    pagestore_close(&ps); /* maybe with handles still out: the last release frees the store */
    pthread_mutex_lock(&handoff.lock);
    handoff.done = true;
    pthread_cond_broadcast(&handoff.changed);
    pthread_mutex_unlock(&handoff.lock);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    cr_assert_eq(handoff.released, 1000);
    cr_assert_eq(handoff.wrong, 0);
    pthread_mutex_destroy(&handoff.lock);
    pthread_cond_destroy(&handoff.changed);
}

/* Damage RocksDB cannot open past (footers, manifest-referenced metadata) makes the store start
 * empty rather than fail: every page is a miss, none has wrong bytes, and it works again. */
Test(pagestore_rocksdb, unopenable_corruption_starts_empty, .init = s_setup, .fini = s_teardown,
     .timeout = 60)
{
    const uint32_t page = 128u << 10;
    pagestore_t *ps = s_open_at(s_dir, 64ull << 20, page);
    for (uint64_t i = 0; i < 100; i++)
        cr_assert_eq(t_put(ps, 1, i, page), 0);
    cr_assert_eq(pagestore_flush(ps), 0);
    pagestore_close(&ps);
    s_corrupted = 0;
    s_corrupt_whole = true;
    nftw(s_dir, s_corrupt_one, 16, FTW_PHYS);
    cr_assert_gt(s_corrupted, 0);
    ps = s_open_at(s_dir, 64ull << 20, page);
    for (uint64_t i = 0; i < 100; i++)
        (void)t_get(ps, 1, i, page); /* hit or miss, never wrong bytes */
    cr_assert_eq(t_put(ps, 1, 0, page), 0);
    cr_assert_eq(t_get(ps, 1, 0, page), 1);
    pagestore_close(&ps);
}

/* A store written in another page format (format 1 had an XXH64 trailer and no format record)
 * is detected at open: its pages are dropped, not misread (nor counted as corrupt one by one);
 * meta and state records stay; the store then works and keeps its pages across a restart.
 * The old store is simulated by overwriting the backend's format record in the state table. */
Test(pagestore_rocksdb, other_page_format_starts_without_pages, .init = s_setup, .fini = s_teardown,
     .timeout = 60)
{
    const uint32_t page = 128u << 10;
    pagestore_t *ps = s_open_at(s_dir, 64ull << 20, page);
    for (uint64_t i = 0; i < 40; i++)
        cr_assert_eq(t_put(ps, 1, i, page), 0);
    cr_assert_eq(pagestore_state_put(ps, "incarnation", "\x07", 1), 0);
    pagestore_close(&ps);

    ps = s_open_at(s_dir, 64ull << 20, page); /* same format: nothing dropped */
    for (uint64_t i = 0; i < 40; i++)
        cr_assert_eq(t_get(ps, 1, i, page), 1, "page %llu lost", (unsigned long long)i);
    cr_assert_eq(pagestore_state_put(ps, "\x01pagestore-format", "1", 1), 0);
    pagestore_close(&ps);

    ps = s_open_at(s_dir, 64ull << 20, page);
    pagestore_stats_t stats;
    pagestore_stats(ps, &stats);
    cr_assert_eq(stats.pages, 0);
    cr_assert_lt(stats.usage_bytes, page); /* an empty generation: its memtable only */
    for (uint64_t i = 0; i < 40; i++)
        cr_assert_eq(t_get(ps, 1, i, page), 0, "page %llu of the old format served",
                     (unsigned long long)i);
    pagestore_stats(ps, &stats);
    cr_assert_eq(stats.corruptions, 0);
    void *value = NULL;
    size_t size = 0;
    cr_assert_eq(pagestore_state_get(ps, "incarnation", &value, &size), 0);
    cr_assert_eq(size, 1);
    free(value);
    for (uint64_t i = 0; i < 10; i++)
        cr_assert_eq(t_put(ps, 2, i, page), 0);
    pagestore_close(&ps);

    ps = s_open_at(s_dir, 64ull << 20, page);
    for (uint64_t i = 0; i < 10; i++)
        cr_assert_eq(t_get(ps, 2, i, page), 1, "new page %llu lost", (unsigned long long)i);
    pagestore_close(&ps);
}

/* ---- full disk: a 32 MiB tmpfs (needs root to mount; skipped otherwise) ---------------------- */

#include <errno.h>
#include <sys/mount.h>
#include <time.h>

static char *s_mount_dir;
static bool s_mounted;

static void s_mount_setup(void)
{
    s_mount_dir = t_tempdir();
    s_mounted = mount("tmpfs", s_mount_dir, "tmpfs", 0, "size=32m") == 0;
}

static void s_mount_teardown(void)
{
    if (s_mounted)
        umount2(s_mount_dir, MNT_DETACH);
    s_mounted = false;
    rmdir(s_mount_dir);
    free(s_mount_dir);
    s_mount_dir = NULL;
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The quota (256 MiB) is larger than the disk (32 MiB): puts fail with SHOAL_ENOSPC or
 * SHOAL_EIO, never crash, and keep failing fast; gets of pages already on disk still work;
 * once space is freed, puts work again (the store recovers by itself). */
Test(pagestore_rocksdb, full_disk_fails_puts_cleanly_and_recovers, .init = s_mount_setup,
     .fini = s_mount_teardown, .timeout = 60)
{
    if (!s_mounted)
        cr_skip_test("cannot mount a tmpfs at %s (%s): this test needs root", s_mount_dir,
                     strerror(errno));
    char data_dir[512], filler[512];
    snprintf(data_dir, sizeof data_dir, "%s/store", s_mount_dir);
    snprintf(filler, sizeof filler, "%s/filler", s_mount_dir);
    const uint32_t page = 1u << 20;
    pagestore_options_t options = {
        .kind = PAGESTORE_ROCKSDB,
        .data_dir = data_dir,
        .capacity_bytes = 256ull << 20,
        .page_size = page,
        .memtable_bytes = 4u << 20,
        .quiet = getenv("SHOAL_TEST_VERBOSE") == NULL,
    };
    pagestore_t *ps = NULL;
    cr_assert_eq(pagestore_open(&options, &ps), 0, "%s", shoal_last_error());
    for (uint64_t i = 0; i < 8; i++)
        cr_assert_eq(t_put(ps, 1, i, page), 0);
    cr_assert_eq(pagestore_flush(ps), 0);

    /* Take most of the rest of the disk with a file, so the store fills it quickly. */
    FILE *file = fopen(filler, "wb");
    cr_assert_not_null(file);
    static uint8_t chunk[1u << 20];
    for (int i = 0; i < 14; i++)
        cr_assert_eq(fwrite(chunk, 1, sizeof chunk, file), sizeof chunk);
    cr_assert_eq(fclose(file), 0);

    int failed = 0;
    uint64_t index = 8;
    for (; index < 200 && failed == 0; index++) {
        int rc = t_put(ps, 1, index, page);
        cr_assert(rc == 0 || rc == SHOAL_ENOSPC || rc == SHOAL_EIO, "put: %s", shoal_strerror(rc));
        failed = rc;
    }
    cr_assert_neq(failed, 0, "200 MiB of puts never failed on a 32 MiB disk");
    /* Further puts fail fast and cleanly too. */
    double start = s_now();
    for (int i = 0; i < 20; i++) {
        int rc = t_put(ps, 1, 500 + (uint64_t)i, page);
        cr_assert(rc == SHOAL_ENOSPC || rc == SHOAL_EIO, "put after failure: %d", rc);
    }
    cr_assert_lt(s_now() - start, 5.0, "failing puts are slow");
    /* Reads still work. */
    for (uint64_t i = 0; i < 8; i++)
        cr_assert_eq(t_get(ps, 1, i, page), 1, "page %llu lost", (unsigned long long)i);
    pagestore_stats_t stats;
    pagestore_stats(ps, &stats);
    cr_assert_gt(stats.write_errors, 0);

    /* Free the space: within a deadline, puts work again. */
    cr_assert_eq(unlink(filler), 0);
    double deadline = s_now() + 20.0;
    int rc = -1;
    while (rc != 0 && s_now() < deadline) {
        rc = t_put(ps, 2, 0, page);
        if (rc != 0) {
            struct timespec pause = {0, 50 * 1000 * 1000};
            nanosleep(&pause, NULL); /* poll interval, not synchronisation */
        }
    }
    cr_assert_eq(rc, 0, "the store did not recover after space was freed");
    cr_assert_eq(t_get(ps, 2, 0, page), 1);
    for (uint64_t i = 0; i < 8; i++)
        cr_assert_eq(t_get(ps, 1, i, page), 1);
    pagestore_close(&ps);
}
