/*
 * test_proto_alloc.c - the hot path stays cheap: encoding a READ request or reply into a
 * reused buffer allocates nothing, decoding one allocates once. malloc is counted by linking
 * with -Wl,--wrap=malloc (see tests/proto.cmake), which catches the calls made by the codec.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "proto.h"

void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);

static int s_mallocs;

void *__wrap_malloc(size_t size)
{
    s_mallocs++;
    return __real_malloc(size);
}

Test(proto_alloc, read_messages_cost_at_most_one_allocation)
{
    msg_buf_t buf;
    msg_buf_init(&buf);
    msg_t m, back;
    msg_read_request(&m, 1, 2, "s3://bucket/train/shard-000123.tar", "\"etag-0123\"", 4 << 20,
                     4 << 20, MSG_READ_FORWARDED);
    cr_assert_eq(msg_encode(&m, &buf), 0); /* grows the buffer once */
    s_mallocs = 0;
    for (int i = 0; i < 100; i++)
        cr_assert_eq(msg_encode(&m, &buf), 0);
    cr_assert_eq(s_mallocs, 0, "encoding a READ request allocated %d times", s_mallocs);
    for (int i = 0; i < 100; i++) {
        s_mallocs = 0;
        cr_assert_eq(msg_decode(buf.data, buf.len, &back), 0);
        cr_assert_eq(s_mallocs, 1, "decoding a READ request allocated %d times", s_mallocs);
        msg_fini(&back);
    }
    msg_read_reply(&m, 1, 2, 1 << 30, "\"etag-0123\"", 0, 4 << 20, 4, 1 << 20);
    s_mallocs = 0;
    cr_assert_eq(msg_encode(&m, &buf), 0);
    cr_assert_eq(s_mallocs, 0);
    cr_assert_eq(msg_decode(buf.data, buf.len, &back), 0);
    cr_assert_eq(s_mallocs, 1, "decoding a READ reply allocated %d times", s_mallocs);
    msg_fini(&back);
    msg_buf_fini(&buf);
}
