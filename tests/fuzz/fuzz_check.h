/*
 * fuzz_check.h - shared by the proto fuzz targets: a decoded message must re-encode, decode
 * again to an equal message, and re-encode to the same bytes. Any mismatch aborts.
 */
#ifndef SHOAL_FUZZ_CHECK_H
#define SHOAL_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* Aborts with `what` and the last error: libFuzzer records the input as a crash. */
static inline void fuzz_die(const char *what)
{
    fprintf(stderr, "fuzz: %s (last error: %s)\n", what, shoal_last_error());
    abort();
}

/* Decodes one header frame; on success checks the round trip. Returns the decode status. */
static inline int fuzz_check_frame(const uint8_t *data, size_t size)
{
    msg_t m;
    int rc = msg_decode(data, size, &m);
    if (rc > 0 || rc < SHOAL_ERR_MIN)
        fuzz_die("decode returned a code outside the error range");
    if (rc != 0)
        return rc;
    msg_buf_t first, second;
    msg_buf_init(&first);
    msg_buf_init(&second);
    if (msg_encode(&m, &first) != 0)
        fuzz_die("a decoded message does not encode");
    msg_t again;
    if (msg_decode(first.data, first.len, &again) != 0)
        fuzz_die("an encoded message does not decode");
    if (!msg_equal(&m, &again))
        fuzz_die("round trip changed the message");
    if (msg_encode(&again, &second) != 0 || second.len != first.len ||
        memcmp(first.data, second.data, first.len) != 0)
        fuzz_die("encoding is not deterministic");
    if (m.header.type == MSG_READ_REP) {
        uint64_t sum = 0;
        for (uint32_t i = 0; i < m.body.read_reply.page_count; i++)
            sum += msg_read_frame_length(&m.body.read_reply, i);
        if (sum != m.body.read_reply.length)
            fuzz_die("READ_REP frame lengths do not add up to length");
    }
    if (m.header.type == MSG_LOCATE_REP) {
        const msg_locate_reply_t *r = &m.body.locate_reply;
        for (uint32_t i = 0; i < r->page_count; i++) {
            const msg_local_page_t *p = &r->pages[i];
            uint64_t chunks = (p->size + ((uint64_t)1 << p->chunk_shift) - 1) >> p->chunk_shift;
            if (p->gen == 0 || p->sum_count != chunks || p->size > UINT64_MAX - p->offset ||
                (i > 0 && p->index <= r->pages[i - 1].index))
                fuzz_die("LOCATE_REP page accepted against its invariants");
        }
        if (size > MSG_LOCAL_DATAGRAM_MAX)
            fuzz_die("a local frame over the datagram bound was accepted");
    }
    msg_fini(&again);
    msg_fini(&m);
    msg_buf_fini(&first);
    msg_buf_fini(&second);
    return 0;
}

#endif
