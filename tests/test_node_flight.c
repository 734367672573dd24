/*
 * test_node_flight.c - node/flight.h's range buffers and their pool: pooled buffers are page
 * aligned and reused, small tail ranges and oversized requests bypass the pool, the idle bound
 * holds, and a pool dropped by its owner while buffers are still out (ZeroMQ sending from them)
 * is freed only when the last one comes back (ASan/LSan would report a use after free or a leak).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "flight.h"

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
