/*
 * fuzz_body.c - libFuzzer target for the body decoders. The first input byte picks the message
 * type, the second the header's frame count, the rest is the body; the target wraps it in a
 * valid envelope so the fuzzer spends its time inside the body decoders, not the envelope.
 */
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    msg_header_t header = {.type = data[0], .request_id = 1, .view_version = 2, .frames = data[1]};
    msg_buf_t frame;
    msg_buf_init(&frame);
    if (msg_header_encode(&header, &frame) != 0)
        fuzz_die("a valid header does not encode");
    msg_buf_append(&frame, data + 2, size - 2);
    if (frame.err)
        fuzz_die("out of memory");
    fuzz_check_frame(frame.data, frame.len);
    msg_buf_fini(&frame);
    return 0;
}
