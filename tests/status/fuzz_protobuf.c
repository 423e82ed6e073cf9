// libFuzzer target: a status client's byte stream through the frame decoder (cap
// STATUS_MAX_FRAME) and ClientMessage handling, cut into pieces at fuzzer-chosen points, as
// the server's read callback sees it. Every reply must be a well-formed ServerMessage frame.
#include <stdint.h>
#include <string.h>

#include "coordinator/status_protocol.h"
#include "core/log.h"
#include "io/framing.h"
#include "tests/status/fake_source.h"

struct ctx {
    struct status_source *src;
    struct frame_buffer out;
};

static int on_frame(void *arg, const uint8_t *frame, size_t len) {
    struct ctx *c = arg;
    if (len > STATUS_MAX_FRAME) __builtin_trap();
    return status_protocol_handle(c->src, "fuzz", frame, len, &c->out) ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int quiet;
    if (!quiet) log_set_level(LOG_ERROR), quiet = 1;
    struct fake_coordinator f;
    struct status_source src = fake_source(&f);
    struct ctx c = {&src, {0}};
    struct frame_decoder d;
    frame_decoder_init(&d, "fuzz", STATUS_MAX_FRAME);
    // The first byte picks the piece size (1..256 bytes).
    size_t piece = size ? (size_t)data[0] + 1 : 1;
    int rc = 0;
    for (size_t i = size ? 1 : 0; i < size && rc == 0; i += piece)
        rc = frame_decoder_feed(&d, data + i, size - i < piece ? size - i : piece, on_frame, &c);
    if (rc == 0) frame_decoder_finish(&d);
    if (rc < 0) status_protocol_error(catlip_error(), &c.out);
    // Every reply frame unpacks.
    size_t pos = 0;
    while (pos < c.out.len) {
        uint64_t len;
        int n = frame_varint_decode(c.out.data + pos, c.out.len - pos, &len);
        if (n <= 0 || len > c.out.len - pos - (size_t)n) __builtin_trap();
        Catlip__ServerMessage *m =
            catlip__server_message__unpack(NULL, (size_t)len, c.out.data + pos + n);
        if (!m) __builtin_trap();
        catlip__server_message__free_unpacked(m, NULL);
        pos += (size_t)n + (size_t)len;
    }
    frame_decoder_free(&d);
    frame_buffer_free(&c.out);
    return 0;
}
