/*
 * test_pagestore_util.h - helpers shared by the page-store tests: temporary directories,
 * deterministic page contents, and the disk usage of a directory.
 */
#ifndef SHOAL_TEST_PAGESTORE_UTIL_H
#define SHOAL_TEST_PAGESTORE_UTIL_H

#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pagestore.h"

/* Makes a fresh directory under /tmp; caller frees the string and removes the tree. */
static inline char *t_tempdir(void)
{
    char *dir = strdup("/tmp/shoal-pagestore-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    return dir;
}

static inline int t_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes a directory tree; safe on NULL. */
static inline void t_rmtree(const char *dir)
{
    if (dir != NULL)
        nftw(dir, t_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t t_du_total;
static inline int t_du_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F)
        t_du_total += (uint64_t)st->st_blocks * 512;
    return 0;
}

/* Bytes the files under dir take on disk (st_blocks * 512, as du). Not thread safe. */
static inline uint64_t t_disk_usage(const char *dir)
{
    t_du_total = 0;
    nftw(dir, t_du_one, 16, FTW_PHYS);
    return t_du_total;
}

/* The file key of test file number n. */
static inline void t_file_key(unsigned n, uint8_t out[PAGESTORE_FILE_KEY_SIZE])
{
    char uri[64];
    snprintf(uri, sizeof uri, "s3://bucket/file-%u", n);
    cr_assert_eq(pagestore_file_key(uri, "etag-1", out), 0);
}

/* Fills buf with the bytes page (file, index) must hold: a xorshift stream seeded by both. */
static inline void t_fill(uint8_t *buf, size_t size, unsigned file, uint64_t index)
{
    uint64_t x = (uint64_t)file * 0x9E3779B97F4A7C15ull + index * 0xD1B54A32D192ED03ull + 1;
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(buf + i, &x, 8);
    }
    for (; i < size; i++)
        buf[i] = (uint8_t)(x >> (8 * (i % 8)));
}

/* Whether data equals what t_fill makes for (file, index). */
static inline int t_check(const void *data, size_t size, unsigned file, uint64_t index)
{
    uint8_t *expected = malloc(size);
    t_fill(expected, size, file, index);
    int same = memcmp(expected, data, size) == 0;
    free(expected);
    return same;
}

/* Puts page (file, index) of `size` bytes; returns put's code. */
static inline int t_put(pagestore_t *ps, unsigned file, uint64_t index, size_t size)
{
    uint8_t key[PAGESTORE_FILE_KEY_SIZE];
    t_file_key(file, key);
    uint8_t *buf = malloc(size);
    t_fill(buf, size, file, index);
    int rc = pagestore_put(ps, key, index, buf, size);
    free(buf);
    return rc;
}

/* Gets page (file, index): 1 = hit with the right bytes and size, 0 = miss; fails the test on
 * wrong bytes or on an error other than a miss. */
static inline int t_get(pagestore_t *ps, unsigned file, uint64_t index, size_t size)
{
    uint8_t key[PAGESTORE_FILE_KEY_SIZE];
    t_file_key(file, key);
    pagestore_page_t *page = NULL;
    int rc = pagestore_get(ps, key, index, &page);
    if (rc == SHOAL_ENOENT)
        return 0;
    cr_assert_eq(rc, 0, "get %u/%llu: %s", file, (unsigned long long)index, shoal_strerror(rc));
    cr_assert_eq(pagestore_page_size(page), size);
    cr_assert(t_check(pagestore_page_data(page), size, file, index), "page %u/%llu has wrong bytes",
              file, (unsigned long long)index);
    pagestore_page_release(&page);
    cr_assert_null(page);
    return 1;
}

/* Gets bytes [offset, offset + length) of page (file, index) whose whole size is `size`: 1 =
 * hit with exactly those bytes, 0 = miss; fails the test on wrong bytes or another error. */
static inline int t_get_range(pagestore_t *ps, unsigned file, uint64_t index, size_t size,
                              size_t offset, size_t length)
{
    uint8_t key[PAGESTORE_FILE_KEY_SIZE];
    t_file_key(file, key);
    pagestore_page_t *page = NULL;
    int rc = pagestore_get_range(ps, key, index, offset, length, &page);
    if (rc == SHOAL_ENOENT)
        return 0;
    cr_assert_eq(rc, 0, "get_range %u/%llu %zu+%zu: %s", file, (unsigned long long)index, offset,
                 length, shoal_strerror(rc));
    cr_assert_eq(pagestore_page_size(page), length);
    cr_assert_eq(pagestore_page_full_size(page), size);
    uint8_t *expected = malloc(size);
    t_fill(expected, size, file, index);
    cr_assert(memcmp(pagestore_page_data(page), expected + offset, length) == 0,
              "page %u/%llu: wrong bytes at %zu+%zu", file, (unsigned long long)index, offset,
              length);
    free(expected);
    pagestore_page_release(&page);
    return 1;
}

#endif
