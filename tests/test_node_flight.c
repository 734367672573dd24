/*
 * test_node_flight.c - node/flight.h's range buffers and their pool: pooled buffers are page
 * aligned and reused, small tail ranges and oversized requests bypass the pool, the idle bound
 * holds, and a pool dropped by its owner while buffers are still out (ZeroMQ sending from them)
 * is freed only when the last one comes back (ASan/LSan would report a use after free or a leak).
 * Cold flights (range keys, node/read.c's versionless reads): joiners of a running cold flight
 * share its one run and the stat its leader learnt; a versioned read finds it with flight_join
 * and sees the learnt version (which may differ from the one it wants: it then redoes its own
 * fetch); other ranges and versioned keys of the same bytes are other flights.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "flight.h"
#include "meta.h"

#define RANGE (4u << 20)

Test(range_pool, buffers_are_page_aligned_reused_and_refcounted)
{
    range_pool_t *pool = range_pool_new(RANGE, 4);
    cr_assert_not_null(pool);
    range_buf_t *a = range_buf_get(pool, RANGE);
    cr_assert_not_null(a);
    cr_assert_eq((uintptr_t)a->data % 4096, 0, "pool buffers are page aligned");
    cr_assert_eq(a->len, 0);
    memset(a->data, 0xab, RANGE); /* the whole capacity is writable */
    a->len = RANGE;
    uint8_t *first = a->data;
    range_buf_t *extra = range_buf_ref(a);
    range_buf_release(&a);
    cr_assert_null(a);
    cr_assert_eq(extra->data[RANGE - 1], 0xab, "a referenced buffer stays valid");
    range_buf_release(&extra);

    range_buf_t *b = range_buf_get(pool, RANGE / 2 + 1); /* more than half: pooled */
    cr_assert_eq(b->data, first, "the released buffer is reused");
    cr_assert_eq(b->len, 0, "a reused buffer starts empty");
    uint64_t mapped, reused;
    range_pool_counts(pool, &mapped, &reused);
    cr_assert_eq(mapped, 1);
    cr_assert_eq(reused, 1);
    range_buf_release(&b);
    range_pool_destroy(&pool);
    cr_assert_null(pool);
    range_pool_destroy(&pool); /* safe on NULL */
}

/* Whether the mapping holding `addr` carries the huge-page advice (VmFlags "hg" in smaps). */
static bool s_advised_huge(const void *addr)
{
    FILE *smaps = fopen("/proc/self/smaps", "r");
    cr_assert_not_null(smaps);
    char line[512];
    bool inside = false, advised = false;
    while (fgets(line, sizeof line, smaps)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            inside = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
        else if (inside && strncmp(line, "VmFlags:", 8) == 0)
            advised = strstr(line, " hg") != NULL;
    }
    fclose(smaps);
    return advised;
}

/* A cold read's buffer (size unknown) is pooled like any other, but one mapped for it asks for
 * no huge pages: a 64 KiB file must not make the kernel zero a 2 MiB page. A buffer of known
 * size does ask (where the kernel has THP at all). */
Test(range_pool, unsized_buffers_are_pooled_without_huge_page_advice)
{
    range_pool_t *pool = range_pool_new(RANGE, 4);
    range_buf_t *cold = range_buf_get_unsized(pool, RANGE);
    range_buf_t *sized = range_buf_get(pool, RANGE);
    cr_assert(cold && sized);
    cr_assert_eq(cold->pool, pool, "pooled");
    cr_assert_eq((uintptr_t)cold->data % 4096, 0);
    memset(cold->data, 0x5a, 65536);
    cr_assert_not(s_advised_huge(cold->data), "no MADV_HUGEPAGE on an unsized buffer");
    if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0)
        cr_assert(s_advised_huge(sized->data), "MADV_HUGEPAGE on a 4 MiB buffer of known size");
    uint8_t *first = cold->data;
    range_buf_release(&cold);
    range_buf_t *again = range_buf_get_unsized(pool, RANGE);
    cr_assert_eq(again->data, first, "reused");
    cr_assert_eq(again->len, 0);
    uint64_t mapped, reused;
    range_pool_counts(pool, &mapped, &reused);
    cr_assert_eq(mapped, 2);
    cr_assert_eq(reused, 1);
    range_buf_release(&again);
    range_buf_release(&sized);
    range_pool_destroy(&pool);
}

Test(range_pool, small_and_oversized_requests_bypass_the_pool)
{
    range_pool_t *pool = range_pool_new(RANGE, 4);
    range_buf_t *small = range_buf_get(pool, RANGE / 2); /* a short tail range */
    range_buf_t *big = range_buf_get(pool, RANGE + 1);
    range_buf_t *none = range_buf_get(NULL, 100);
    cr_assert(small && big && none);
    cr_assert_null(small->pool);
    cr_assert_null(big->pool);
    cr_assert_null(none->pool);
    memset(big->data, 1, RANGE + 1);
    uint64_t mapped, reused;
    range_pool_counts(pool, &mapped, &reused);
    cr_assert_eq(mapped, 0);
    range_buf_release(&small);
    range_buf_release(&big);
    range_buf_release(&none);
    range_pool_destroy(&pool);
}

Test(range_pool, idle_buffers_are_bounded)
{
    range_pool_t *pool = range_pool_new(RANGE, 2);
    range_buf_t *bufs[5];
    for (int i = 0; i < 5; i++) {
        bufs[i] = range_buf_get(pool, RANGE);
        cr_assert_not_null(bufs[i]);
        bufs[i]->data[0] = (uint8_t)i;
    }
    for (int i = 0; i < 5; i++)
        range_buf_release(&bufs[i]); /* 2 kept idle, 3 unmapped */
    for (int i = 0; i < 5; i++)
        bufs[i] = range_buf_get(pool, RANGE);
    uint64_t mapped, reused;
    range_pool_counts(pool, &mapped, &reused);
    cr_assert_eq(reused, 2, "only max_idle buffers were kept");
    cr_assert_eq(mapped, 5 + 3);
    for (int i = 0; i < 5; i++)
        range_buf_release(&bufs[i]);
    range_pool_destroy(&pool);
}

Test(range_pool, a_dropped_pool_lives_until_its_last_buffer_returns)
{
    range_pool_t *pool = range_pool_new(RANGE, 2);
    range_buf_t *idle = range_buf_get(pool, RANGE);
    range_buf_t *out = range_buf_get(pool, RANGE);
    range_buf_release(&idle);
    range_pool_destroy(&pool); /* the owner is gone; `out` is still being "sent" */
    memset(out->data, 7, RANGE);
    cr_assert_eq(out->data[RANGE / 2], 7);
    range_buf_free_fn(out->data, out); /* ZeroMQ's release: unmaps it and frees the pool */
}

/* ---- cold flights (range keys) ---- */

typedef struct s_cold {
    flight_table_t *table; /* shared */
    flight_key_t key;      /* the cold key */
    _Atomic int runs;      /* leader runs of fn */
    _Atomic int started;   /* fn entered */
    _Atomic int go;        /* fn may finish */
    const char *learnt;    /* the version fn "learns" */
    range_buf_t *got[8];   /* each caller's buffer */
    bool joined[8];        /* each caller joined */
    flight_t *held;        /* the leader's held flight */
    range_buf_t *seen;     /* what the versioned read's flight_join found */
    int join_rc;           /* its result */
} s_cold_t;

typedef struct s_caller {
    s_cold_t *cold; /* shared */
    int slot;       /* index into got/joined; 0 is the leader */
} s_caller_t;

static int s_cold_fn(void *arg, range_buf_t **buf_out)
{
    s_cold_t *cold = arg;
    atomic_fetch_add(&cold->runs, 1);
    atomic_store(&cold->started, 1);
    while (!atomic_load(&cold->go))
        usleep(1000);
    range_buf_t *buf = range_buf_new(64);
    memset(buf->data, 0x5a, 64);
    buf->len = 64;
    buf->has_stat = true;
    buf->stat.size = 64;
    snprintf(buf->stat.version, sizeof buf->stat.version, "%s", cold->learnt);
    *buf_out = buf;
    return 0;
}

static void *s_cold_caller(void *arg)
{
    s_caller_t *caller = arg;
    s_cold_t *cold = caller->cold;
    int rc = flight_do(cold->table, &cold->key, s_cold_fn, cold, false, &cold->got[caller->slot],
                       &cold->joined[caller->slot], caller->slot == 0 ? &cold->held : NULL);
    cr_assert_eq(rc, 0);
    return NULL;
}

/* A versioned read wanting "v1" looks for a cold flight of its range. */
static void *s_versioned_join(void *arg)
{
    s_cold_t *cold = arg;
    cold->join_rc = flight_join(cold->table, &cold->key, &cold->seen);
    return NULL;
}

static flight_key_t s_key(uint8_t fill, uint64_t range_index, bool cold)
{
    flight_key_t key;
    memset(&key, 0, sizeof key);
    memset(key.file_key, fill, 16); /* a uri key is 16 bytes (hrw_uri_key) */
    key.range_index = range_index;
    key.store = true;
    key.cold = cold;
    return key;
}

Test(cold_flight, joiners_share_one_run_and_its_learnt_version)
{
    enum { CALLERS = 6 };
    s_cold_t cold = {.table = flight_table_new(), .key = s_key(0x11, 0, true), .learnt = "v2"};
    cr_assert_not_null(cold.table);
    s_caller_t callers[CALLERS];
    pthread_t threads[CALLERS], versioned_thread;
    for (int i = 0; i < CALLERS; i++)
        callers[i] = (s_caller_t){.cold = &cold, .slot = i};
    cr_assert_eq(pthread_create(&threads[0], NULL, s_cold_caller, &callers[0]), 0);
    while (!atomic_load(&cold.started))
        usleep(1000); /* the leader runs: every caller after it joins, running or held */
    for (int i = 1; i < CALLERS; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, s_cold_caller, &callers[i]), 0);
    cr_assert_eq(pthread_create(&versioned_thread, NULL, s_versioned_join, &cold), 0);
    /* other ranges and a versioned key of the same bytes are other flights: 0 at once */
    flight_key_t other_range = s_key(0x11, 1, true);
    flight_key_t versioned = s_key(0x11, 0, false);
    flight_key_t other_uri = s_key(0x22, 0, true);
    range_buf_t *none = NULL;
    cr_assert_eq(flight_join(cold.table, &other_range, &none), 0);
    cr_assert_eq(flight_join(cold.table, &versioned, &none), 0);
    cr_assert_eq(flight_join(cold.table, &other_uri, &none), 0);
    cr_assert_null(none);
    usleep(10000); /* some callers join while it runs; the rest join it held (no timing asserted) */
    atomic_store(&cold.go, 1);
    pthread_join(threads[0], NULL); /* the leader returns holding its flight */
    cr_assert_not_null(cold.held, "the leader holds its successful flight");
    for (int i = 1; i < CALLERS; i++)
        pthread_join(threads[i], NULL);
    pthread_join(versioned_thread, NULL);
    flight_release(cold.table, &cold.held);
    cr_assert_null(cold.held);
    cr_assert_eq(atomic_load(&cold.runs), 1, "%d runs for one cold range", cold.runs);
    for (int i = 0; i < CALLERS; i++) {
        cr_assert_not_null(cold.got[i]);
        cr_assert_eq(cold.got[i], cold.got[0], "every caller has the one buffer");
        cr_assert_eq(cold.joined[i], i != 0, "caller %d: joined %d", i, cold.joined[i]);
        cr_assert_str_eq(cold.got[i]->stat.version, "v2", "joiners answer the learnt version");
    }
    /* the versioned read found the cold flight and sees the version it learnt, not the one
     * it wants ("v1"): node/read.c then redoes its own fetch with its precondition */
    cr_assert_eq(cold.join_rc, 1, "the cold flight was not found");
    cr_assert_eq(cold.seen, cold.got[0]);
    cr_assert(cold.seen->has_stat);
    cr_assert_str_neq(cold.seen->stat.version, "v1");
    range_buf_release(&cold.seen);
    for (int i = 0; i < CALLERS; i++)
        range_buf_release(&cold.got[i]);
    /* released: the flight is gone, a join finds nothing and a new call runs again */
    range_buf_t *after = NULL;
    cr_assert_eq(flight_join(cold.table, &cold.key, &after), 0);
    flight_table_destroy(&cold.table);
}

/* A GET's "not found" means no object of that name: READs answer it from the negative cache,
 * but a STAT must still ask (an object store's prefix of that name is a directory); a stat's
 * "not found" means nothing there, for both. Both expire with the negative TTL, and a put of
 * what the UFS says next clears them. */
Test(meta_cache, a_missing_object_is_not_a_missing_directory)
{
    meta_cache_t *meta = meta_cache_new(60ll * 1000000000, 64, 4);
    cr_assert_not_null(meta);
    meta_cache_set_negative_ttl(meta, 5ll * 1000000000);
    int64_t now = 1000;
    meta_cache_put_missing_object(meta, "s3://b/train", now);
    cr_assert(meta_cache_missing(meta, "s3://b/train", now + 1));
    cr_assert_not(meta_cache_missing_entirely(meta, "s3://b/train", now + 1));
    ufs_stat_t dir = {.is_dir = true};
    meta_cache_put(meta, "s3://b/train", &dir, now + 2); /* the STAT found a prefix */
    cr_assert_not(meta_cache_missing(meta, "s3://b/train", now + 3));
    ufs_stat_t got;
    bool fresh = false;
    cr_assert_eq(meta_cache_get(meta, "s3://b/train", now + 3, &got, &fresh), 0);
    cr_assert(got.is_dir && fresh);

    meta_cache_put_missing(meta, "s3://b/gone", now);
    cr_assert(meta_cache_missing(meta, "s3://b/gone", now + 1));
    cr_assert(meta_cache_missing_entirely(meta, "s3://b/gone", now + 1));
    cr_assert_not(meta_cache_missing_entirely(meta, "s3://b/gone", now + 6ll * 1000000000));
    cr_assert_not(meta_cache_missing(meta, "s3://b/gone", now + 6ll * 1000000000));
    meta_cache_destroy(&meta);
}
