/*
 * bench_store.c - page get throughput from the disk page store (pinned gets: a pointer into the
 * data file's mapping + per-chunk checksums) against pread of the same bytes from one plain
 * file on the same disk, sequential and random order; then random 64 KiB slices
 * (pagestore_get_range) against 64 KiB preads; then puts against pwrite of the same bytes
 * (MB/s and CPU per MB). Printed side by side with their ratios from one run; gets all warm
 * in the OS page cache.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "clock.h"
#include "pagestore.h"
#include "rng.h"

typedef struct s_config {
    uint64_t dataset_mb; /* --dataset-mb: bytes stored and read per round */
    uint32_t page_kb;    /* --page-kb: page size */
    int rounds;          /* --rounds: passes over the dataset per measurement */
    const char *parent;  /* --dir: where the temporary directory goes */
    uint64_t cache_mb;   /* --cache-mb: the store's block/blob cache */
    uint64_t put_mb;     /* --put-mb: bytes put per pass of the put table (0: no put table) */
} s_config_t;

static int s_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void s_usage(void)
{
    fprintf(stderr, "usage: bench_store [--dataset-mb N (256)] [--page-kb N (1024)] "
                    "[--rounds N (9)] [--cache-mb N (64)] [--put-mb N (64)] [--dir DIR (/tmp)]\n");
}

/* A page order: identity (sequential) or a Fisher-Yates shuffle with a fixed seed. */
static void s_order(uint64_t *order, uint64_t pages, int random)
{
    for (uint64_t i = 0; i < pages; i++)
        order[i] = i;
    if (!random)
        return;
    rng_t rng;
    rng_init(&rng, 0x2545F4914F6CDD1Dull);
    for (uint64_t i = pages - 1; i > 0; i--) {
        uint64_t j = rng_below(&rng, i + 1);
        uint64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* MB/s of `rounds` passes of pinned gets in `order`; exits on any failed get. */
static double s_run_store(pagestore_t *ps, const uint8_t *key, const uint64_t *order,
                          uint64_t pages, size_t page, int rounds)
{
    volatile uint8_t sink = 0;
    double start = (double)clock_mono_ns() / CLOCK_NS_PER_S;
    for (int r = 0; r < rounds; r++) {
        for (uint64_t i = 0; i < pages; i++) {
            pagestore_page_t *p = NULL;
            int rc = pagestore_get(ps, key, order[i], &p);
            if (rc != 0) {
                fprintf(stderr, "bench_store: get %llu: %s\n", (unsigned long long)order[i],
                        shoal_strerror(rc));
                exit(1);
            }
            sink ^= ((const uint8_t *)pagestore_page_data(p))[pagestore_page_size(p) - 1];
            pagestore_page_release(&p);
        }
    }
    double seconds = (double)clock_mono_ns() / CLOCK_NS_PER_S - start;
    (void)sink;
    return (double)pages * (double)page * rounds / 1e6 / seconds;
}

/* MB/s of `rounds` passes of pread into one reused buffer in `order`. */
static double s_run_pread(int fd, uint8_t *buf, const uint64_t *order, uint64_t pages, size_t page,
                          int rounds)
{
    volatile uint8_t sink = 0;
    double start = (double)clock_mono_ns() / CLOCK_NS_PER_S;
    for (int r = 0; r < rounds; r++) {
        for (uint64_t i = 0; i < pages; i++) {
            ssize_t n = pread(fd, buf, page, (off_t)(order[i] * page));
            if (n != (ssize_t)page) {
                fprintf(stderr, "bench_store: short pread\n");
                exit(1);
            }
            sink ^= buf[page - 1];
        }
    }
    double seconds = (double)clock_mono_ns() / CLOCK_NS_PER_S - start;
    (void)sink;
    return (double)pages * (double)page * rounds / 1e6 / seconds;
}

#define S_SLICE (64u << 10) /* the slice size of the second table */

/* Slices per second of one pass of 64 KiB slice gets; slot s is bytes [s * 64 KiB, +64 KiB) of
 * the dataset (page s / slots_per_page). */
static double s_run_store_slices(pagestore_t *ps, const uint8_t *key, const uint64_t *slots,
                                 uint64_t count, size_t page)
{
    volatile uint8_t sink = 0;
    uint64_t per_page = page / S_SLICE;
    double start = (double)clock_mono_ns() / CLOCK_NS_PER_S;
    for (uint64_t i = 0; i < count; i++) {
        pagestore_page_t *p = NULL;
        int rc = pagestore_get_range(ps, key, slots[i] / per_page,
                                     (size_t)(slots[i] % per_page) * S_SLICE, S_SLICE, &p);
        if (rc != 0) {
            fprintf(stderr, "bench_store: get_range: %s\n", shoal_strerror(rc));
            exit(1);
        }
        sink ^= ((const uint8_t *)pagestore_page_data(p))[S_SLICE - 1];
        pagestore_page_release(&p);
    }
    double seconds = (double)clock_mono_ns() / CLOCK_NS_PER_S - start;
    (void)sink;
    return (double)count / seconds;
}

/* Slices per second of one pass of 64 KiB preads into an aligned buffer, same slots. */
static double s_run_pread_slices(int fd, uint8_t *buf, const uint64_t *slots, uint64_t count)
{
    volatile uint8_t sink = 0;
    double start = (double)clock_mono_ns() / CLOCK_NS_PER_S;
    for (uint64_t i = 0; i < count; i++) {
        if (pread(fd, buf, S_SLICE, (off_t)(slots[i] * S_SLICE)) != (ssize_t)S_SLICE) {
            fprintf(stderr, "bench_store: short pread\n");
            exit(1);
        }
        sink ^= buf[S_SLICE - 1];
    }
    double seconds = (double)clock_mono_ns() / CLOCK_NS_PER_S - start;
    (void)sink;
    return (double)count / seconds;
}

/* CPU seconds (user + system) of the whole process so far: the store's background threads
 * (RocksDB flushes) count against it. */
static double s_cpu(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
           (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
}

/* One pass of puts of `pages` pages from `source` (pages x page bytes) under new page indexes
 * (`*next` on), into a store that evicts as it goes; *cpu_out gets CPU ms per MB. MB/s. */
static double s_run_puts(pagestore_t *ps, const uint8_t *key, const uint8_t *source, uint64_t pages,
                         size_t page, uint64_t *next, double *cpu_out)
{
    double cpu = s_cpu(), start = (double)clock_mono_ns() / CLOCK_NS_PER_S;
    for (uint64_t i = 0; i < pages; i++) {
        int rc = pagestore_put(ps, key, (*next)++, source + i * page, page);
        if (rc != 0) {
            fprintf(stderr, "bench_store: put: %s (%s)\n", shoal_strerror(rc), shoal_last_error());
            exit(1);
        }
    }
    double seconds = (double)clock_mono_ns() / CLOCK_NS_PER_S - start,
           mb = (double)pages * (double)page / 1e6;
    *cpu_out = (s_cpu() - cpu) * 1e3 / mb;
    return mb / seconds;
}

/* One pass of pwrite of the same bytes into a new plain file; the file of two passes ago is
 * unlinked first. The store under test keeps two passes' worth of pages (its quota) and
 * drops its oldest generation file as it goes: the same bytes reach the page cache, are
 * written back and are dropped. MB/s; *cpu_out gets CPU ms per MB. */
static double s_run_pwrites(const char *dir, uint64_t *pass, const uint8_t *source, uint64_t pages,
                            size_t page, double *cpu_out)
{
    char path[4300];
    double cpu = s_cpu(), start = (double)clock_mono_ns() / CLOCK_NS_PER_S;
    if (*pass >= 2) {
        snprintf(path, sizeof path, "%s/plain-puts-%llu.bin", dir, (unsigned long long)(*pass - 2));
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/plain-puts-%llu.bin", dir, (unsigned long long)(*pass)++);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror("bench_store: open");
        exit(1);
    }
    for (uint64_t i = 0; i < pages; i++) {
        if (pwrite(fd, source + i * page, page, (off_t)(i * page)) != (ssize_t)page) {
            perror("bench_store: pwrite");
            exit(1);
        }
    }
    close(fd);
    double seconds = (double)clock_mono_ns() / CLOCK_NS_PER_S - start,
           mb = (double)pages * (double)page / 1e6;
    *cpu_out = (s_cpu() - cpu) * 1e3 / mb;
    return mb / seconds;
}

/* What one timed pass reads: the store, or pread into a page-aligned or a misaligned buffer. */
enum { S_STORE, S_PREAD, S_PREAD16, S_KINDS };

static double s_run(int kind, pagestore_t *ps, const uint8_t *key, int fd, uint8_t **buffers,
                    const uint64_t *order, uint64_t pages, size_t page)
{
    if (kind == S_STORE)
        return s_run_store(ps, key, order, pages, page, 1);
    return s_run_pread(fd, buffers[kind], order, pages, page, 1);
}

static int s_compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of n values (sorts them). Machines here are shared and noisy: a median of alternating
 * passes is steadier than one long run of each. */
static double s_median(double *values, int n)
{
    qsort(values, (size_t)n, sizeof *values, s_compare_double);
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    s_config_t config = {.dataset_mb = 256,
                         .page_kb = 1024,
                         .rounds = 9,
                         .parent = "/tmp",
                         .cache_mb = 64,
                         .put_mb = 64};
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--dataset-mb") == 0 && value)
            config.dataset_mb = strtoull(value, NULL, 10), i++;
        else if (strcmp(argv[i], "--page-kb") == 0 && value)
            config.page_kb = (uint32_t)strtoul(value, NULL, 10), i++;
        else if (strcmp(argv[i], "--rounds") == 0 && value)
            config.rounds = atoi(value), i++;
        else if (strcmp(argv[i], "--cache-mb") == 0 && value)
            config.cache_mb = strtoull(value, NULL, 10), i++;
        else if (strcmp(argv[i], "--put-mb") == 0 && value)
            config.put_mb = strtoull(value, NULL, 10), i++;
        else if (strcmp(argv[i], "--dir") == 0 && value)
            config.parent = value, i++;
        else {
            s_usage();
            return 2;
        }
    }
    size_t page = (size_t)config.page_kb << 10;
    uint64_t pages = (config.dataset_mb << 20) / page;
    if (pages == 0 || config.rounds < 1) {
        s_usage();
        return 2;
    }

    char dir[4096], store_dir[4200], plain[4200];
    snprintf(dir, sizeof dir, "%s/shoal-bench-store-XXXXXX", config.parent);
    if (mkdtemp(dir) == NULL) {
        perror("bench_store: mkdtemp");
        return 1;
    }
    snprintf(store_dir, sizeof store_dir, "%s/store", dir);
    snprintf(plain, sizeof plain, "%s/plain.bin", dir);

    pagestore_options_t options = {
        .kind = PAGESTORE_ROCKSDB,
        .data_dir = store_dir,
        .capacity_bytes = (config.dataset_mb << 20) * 2,
        .page_size = (uint32_t)page,
        .cache_bytes = config.cache_mb << 20,
    };
    pagestore_t *ps = NULL;
    int rc = pagestore_open(&options, &ps);
    if (rc != 0) {
        fprintf(stderr, "bench_store: open: %s (%s)\n", shoal_strerror(rc), shoal_last_error());
        return 1;
    }
    uint8_t key[PAGESTORE_FILE_KEY_SIZE];
    pagestore_file_key("s3://bench/dataset.bin", "v1", key);
    uint8_t *buf = NULL;
    if (posix_memalign((void **)&buf, 4096, page + 4096) != 0)
        buf = NULL;
    uint8_t *buffers[S_KINDS] = {NULL, buf, buf == NULL ? NULL : buf + 16};
    uint64_t *order = malloc(pages * sizeof *order);
    int fd = open(plain, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (buf == NULL || order == NULL || fd < 0) {
        perror("bench_store: setup");
        return 1;
    }
    /* Same bytes into both: pseudo-random (incompressible, like most training data). */
    uint64_t x = 88172645463325252ull;
    for (uint64_t i = 0; i < pages; i++) {
        for (size_t j = 0; j + 8 <= page; j += 8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            memcpy(buf + j, &x, 8);
        }
        if (pagestore_put(ps, key, i, buf, page) != 0 ||
            pwrite(fd, buf, page, (off_t)(i * page)) != (ssize_t)page) {
            fprintf(stderr, "bench_store: write failed: %s\n", shoal_last_error());
            return 1;
        }
    }
    pagestore_flush(ps);
    fsync(fd);

    printf("bench_store: %llu pages of %zu KiB (%llu MiB) in %s, %d rounds, cache %llu MiB\n",
           (unsigned long long)pages, page >> 10, (unsigned long long)config.dataset_mb, dir,
           config.rounds, (unsigned long long)config.cache_mb);
    printf(
        "all warm in the OS page cache (one untimed pass each first); one thread; passes\n"
        "interleave, medians of %d shown; ratio = store/pread (the target: >= 0.8). pread reads\n"
        "into a page-aligned buffer; pread+16 into one 16 bytes past (what malloc(1 MiB) gives,\n"
        "the old baseline: the kernel copies to it about half as fast)\n",
        config.rounds);
    printf("%-12s %11s %11s %7s %13s %7s\n", "order", "store MB/s", "pread MB/s", "ratio",
           "pread+16 MB/s", "ratio");
    double *rates[S_KINDS], *ratios[S_KINDS];
    for (int k = 0; k < S_KINDS; k++) {
        rates[k] = malloc((size_t)config.rounds * sizeof *rates[k]);
        ratios[k] = malloc((size_t)config.rounds * sizeof *ratios[k]);
    }
    for (int random = 0; random <= 1; random++) {
        s_order(order, pages, random);
        for (int k = 0; k < S_KINDS; k++) /* warm: one untimed pass of each */
            (void)s_run(k, ps, key, fd, buffers, order, pages, page);
        for (int r = 0; r < config.rounds; r++) {
            /* Rotate which kind goes first, so none always follows the same one. */
            for (int i = 0; i < S_KINDS; i++) {
                int k = (r + i) % S_KINDS;
                rates[k][r] = s_run(k, ps, key, fd, buffers, order, pages, page);
            }
            for (int k = 1; k < S_KINDS; k++)
                ratios[k][r] = rates[S_STORE][r] / rates[k][r];
        }
        printf("%-12s %11.0f %11.0f %7.2f %13.0f %7.2f\n", random ? "random" : "sequential",
               s_median(rates[S_STORE], config.rounds), s_median(rates[S_PREAD], config.rounds),
               s_median(ratios[S_PREAD], config.rounds), s_median(rates[S_PREAD16], config.rounds),
               s_median(ratios[S_PREAD16], config.rounds));
    }
    /* Random 64 KiB slices: every slot of the dataset once per pass, in a shuffled order. */
    if (page % S_SLICE == 0) {
        uint64_t count = pages * (page / S_SLICE);
        uint64_t *slots = malloc(count * sizeof *slots);
        if (slots == NULL) {
            perror("bench_store: malloc");
            return 1;
        }
        s_order(slots, count, 1);
        printf("\nrandom 64 KiB slices (pagestore_get_range: reads and checks one 64 KiB chunk)\n"
               "%-12s %11s %11s %7s\n",
               "order", "store get/s", "pread get/s", "ratio");
        (void)s_run_store_slices(ps, key, slots, count, page);
        (void)s_run_pread_slices(fd, buf, slots, count);
        for (int r = 0; r < config.rounds; r++) {
            if (r % 2 == 0) {
                rates[0][r] = s_run_store_slices(ps, key, slots, count, page);
                rates[1][r] = s_run_pread_slices(fd, buf, slots, count);
            } else {
                rates[1][r] = s_run_pread_slices(fd, buf, slots, count);
                rates[0][r] = s_run_store_slices(ps, key, slots, count, page);
            }
            ratios[1][r] = rates[0][r] / rates[1][r];
        }
        printf("%-12s %11.0f %11.0f %7.2f\n", "random", s_median(rates[0], config.rounds),
               s_median(rates[1], config.rounds), s_median(ratios[1], config.rounds));
        free(slots);
    }
    pagestore_stats_t stats;
    pagestore_stats(ps, &stats);
    printf("store: %llu hits, %llu misses, %llu promotions\n", (unsigned long long)stats.hits,
           (unsigned long long)stats.misses, (unsigned long long)stats.promotions);

    /* Puts: a second store with a quota of twice the put set, so it evicts all along; a pass
     * puts put_mb of pages (from memory) under new indexes. Against pwrite of the same bytes
     * into a plain file emptied before each pass. */
    uint64_t put_pages = (config.put_mb << 20) / page;
    uint8_t *source = NULL;
    if (put_pages > 0 && posix_memalign((void **)&source, 4096, put_pages * page) == 0) {
        for (uint64_t i = 0; i < put_pages * page / 8; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            memcpy(source + i * 8, &x, 8);
        }
        char put_dir[4200];
        snprintf(put_dir, sizeof put_dir, "%s/store-puts", dir);
        pagestore_options_t put_options = options;
        put_options.data_dir = put_dir;
        put_options.capacity_bytes = 2 * put_pages * page;
        pagestore_t *put_store = NULL;
        if (pagestore_open(&put_options, &put_store) != 0) {
            fprintf(stderr, "bench_store: put setup failed: %s\n", shoal_last_error());
            return 1;
        }
        uint64_t next = 0, pass = 0;
        double cpu[2][64], cpu_ratio[64];
        int put_rounds = config.rounds > 64 ? 64 : config.rounds;
        /* warm: fill the store to its quota once, so every pass evicts */
        (void)s_run_puts(put_store, key, source, put_pages, page, &next, &cpu[0][0]);
        (void)s_run_puts(put_store, key, source, put_pages, page, &next, &cpu[0][0]);
        (void)s_run_pwrites(dir, &pass, source, put_pages, page, &cpu[1][0]);
        for (int r = 0; r < put_rounds; r++) {
            if (r % 2 == 0) {
                rates[0][r] =
                    s_run_puts(put_store, key, source, put_pages, page, &next, &cpu[0][r]);
                rates[1][r] = s_run_pwrites(dir, &pass, source, put_pages, page, &cpu[1][r]);
            } else {
                rates[1][r] = s_run_pwrites(dir, &pass, source, put_pages, page, &cpu[1][r]);
                rates[0][r] =
                    s_run_puts(put_store, key, source, put_pages, page, &next, &cpu[0][r]);
            }
            ratios[1][r] = rates[0][r] / rates[1][r];
            cpu_ratio[r] = cpu[0][r] / cpu[1][r];
        }
        printf(
            "\nputs of %llu MiB per pass (pagestore_put: checksums, pwrite, index put; the store\n"
            "evicts as it goes) against pwrite of the same bytes into a new plain file per pass,\n"
            "the one of two passes ago unlinked (the same page-cache and writeback traffic);\n"
            "CPU = user + system of the whole process per MB (RocksDB's threads included)\n"
            "%-12s %11s %11s %7s %13s %13s %7s\n",
            (unsigned long long)config.put_mb, "order", "store MB/s", "pwrite MB/s", "ratio",
            "store CPU ms/MB", "pwrite ms/MB", "ratio");
        printf("%-12s %11.0f %11.0f %7.2f %15.3f %13.3f %7.2f\n", "sequential",
               s_median(rates[0], put_rounds), s_median(rates[1], put_rounds),
               s_median(ratios[1], put_rounds), s_median(cpu[0], put_rounds),
               s_median(cpu[1], put_rounds), s_median(cpu_ratio, put_rounds));
        pagestore_close(&put_store);
        free(source);
    }
    for (int k = 0; k < S_KINDS; k++) {
        free(rates[k]);
        free(ratios[k]);
    }

    close(fd);
    free(buf);
    free(order);
    pagestore_close(&ps);
    nftw(dir, s_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
