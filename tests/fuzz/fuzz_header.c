/*
 * fuzz_header.c - libFuzzer target for whole header frames: the envelope decoder
 * (msg_header_decode, as gossip uses it) and the full msg_decode behind it. Input is one frame.
 */
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msg_header_t header;
    msg_raw_body_t body;
    if (msg_header_decode(data, size, &header, &body) == 0) {
        if (body.data < data || body.data + body.len > data + size || body.len == 0)
            fuzz_die("body span outside the frame");
        msg_buf_t out;
        msg_buf_init(&out);
        if (msg_header_encode(&header, &out) != 0)
            fuzz_die("a decoded header does not encode");
        msg_buf_append(&out, body.data, body.len);
        msg_header_t again;
        msg_raw_body_t again_body;
        if (msg_header_decode(out.data, out.len, &again, &again_body) != 0)
            fuzz_die("a re-encoded header does not decode");
        if (again.type != header.type || again.request_id != header.request_id ||
            again.view_version != header.view_version || again.frames != header.frames ||
            again_body.len != body.len || memcmp(again_body.data, body.data, body.len) != 0)
            fuzz_die("header round trip changed it");
        msg_buf_fini(&out);
    }
    fuzz_check_frame(data, size);
    return 0;
}
